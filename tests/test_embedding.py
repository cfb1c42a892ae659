"""Han et al.'s distillation of vectors: hypergradients, replay, BTEO, ADV, determinism, configs."""

import dataclasses

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from fairdd.data import Dataset
from fairdd.debias import Discriminator, StandardConfig, balanced_indices, group_counts, train_standard
from fairdd.distill.embedding import (
    DistilledSteps,
    EmbeddingDDConfig,
    distill_embeddings,
    hidden_and_logits,
    predict,
    replay,
    retrain,
    unroll,
)
from fairdd.models import MLP, init_theta0
from fairdd.seeding import stream_generator as make_generator

TINY = dict(hidden=(8, 8), batch_size=64, iterations=6, decay_every=3, size=2, distill_epochs=2)


def blobs(n: int = 400, dim: int = 5, seed: int = 0, skew: float = 0.8) -> Dataset:
    """Two Gaussian classes; the group agrees with the class in a share ``skew`` of rows."""
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 2, (n,), generator=g)
    a = torch.where(torch.rand(n, generator=g) < skew, y, 1 - y)
    x = torch.randn(n, dim, generator=g) + 1.5 * (2 * y[:, None] - 1) * torch.ones(dim) / dim**0.5
    x[:, 0] += 0.5 * a  # the group leaves a trace in the inputs
    return Dataset("blobs", "train", x.float(), y, ("a", "b"), a, "group", ("g0", "g1"))


def random_steps(size: int, classes: int, dim: int, epochs: int, dtype=torch.float32, seed: int = 0) -> DistilledSteps:
    g = torch.Generator().manual_seed(seed)
    return DistilledSteps(
        torch.randn(size, classes, dim, generator=g, dtype=dtype).requires_grad_(),
        torch.randn(size, classes, classes, generator=g, dtype=dtype).requires_grad_(),
        (torch.randn(size * epochs, generator=g, dtype=dtype) - 1.0).requires_grad_(),
    )


# ------------------------------------------------------------------ hypergradient


def test_unrolled_gradient_reaches_vectors_labels_and_step_sizes_gradcheck():
    model = MLP(3, 2, hidden=(4, 4)).double()
    theta0 = init_theta0(model, make_generator(0, 0))
    steps = random_steps(2, 2, 3, 2, dtype=torch.float64)
    x = torch.randn(6, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    y = torch.tensor([0, 1, 1, 0, 1, 0])

    def outer(vectors, logits, raw):
        theta = unroll(model, theta0, DistilledSteps(vectors, logits, raw), distill_epochs=2)
        return F.cross_entropy(hidden_and_logits(model, theta, x)[1], y)

    assert torch.autograd.gradcheck(outer, tuple(steps.parameters()), eps=1e-6, atol=1e-5)
    grads = torch.autograd.grad(outer(*steps.parameters()), steps.parameters())
    for name, g in zip(("vectors", "label logits", "step sizes"), grads):
        assert g.abs().sum() > 0, f"no gradient reaches the {name}"
    assert (grads[2] != 0).all(), "every unrolled step's size gets a gradient"


def test_unroll_matches_plain_sgd_on_an_nn_module():
    """Independent oracle: the same steps as ordinary backward() + p -= lr·grad on a Module."""
    model = MLP(4, 3, hidden=(6, 5))
    theta0 = init_theta0(model, make_generator(3, 0))
    steps = random_steps(3, 3, 4, 2)
    ours = replay(model, theta0, steps, distill_epochs=2)

    ref = MLP(4, 3, hidden=(6, 5))
    ref.load_state_dict(theta0)
    for t, lr in enumerate(F.softplus(steps.raw_step_sizes.detach())):
        s = t % 3
        ref.zero_grad()
        target = torch.softmax(steps.label_logits[s].detach(), -1)
        (-(target * F.log_softmax(ref(steps.vectors[s].detach()), -1)).sum(-1).mean()).backward()
        with torch.no_grad():
            for p in ref.parameters():
                p -= lr * p.grad
    for name, p in ref.named_parameters():
        torch.testing.assert_close(ours[name], p.detach(), rtol=1e-5, atol=1e-6)


def test_retraining_replays_the_learned_steps_exactly():
    train = blobs()
    cfg = EmbeddingDDConfig(**TINY)
    result = distill_embeddings(train, cfg)
    model = MLP(5, 2, hidden=cfg.hidden)
    inner = unroll(model, result.theta0, result.steps, distill_epochs=cfg.distill_epochs, create_graph=True)
    _, replayed, _ = retrain(result.steps, result.theta0, distill_epochs=cfg.distill_epochs, hidden=cfg.hidden)
    assert list(inner) == list(replayed)
    for k in inner:
        assert torch.equal(inner[k].detach(), replayed[k]), k


# ------------------------------------------------------------------ initial state


def test_theta0_is_xavier_normal_with_zero_biases_and_shared_with_standard():
    model = MLP(200, 2)
    theta = init_theta0(model, make_generator(7, 0))
    assert list(theta) == [n for n, _ in model.named_parameters()]
    w = theta["body.0.weight"]  # (300, 200)
    assert abs(w.std().item() - (2 / (200 + 300)) ** 0.5) < 0.002
    assert all(theta[k].abs().sum() == 0 for k in theta if k.endswith("bias"))
    cfg = StandardConfig(epochs=1, patience=None, hidden=(300, 300), seed=7)
    std = train_standard(blobs(dim=200, n=64), cfg)
    for k in theta:
        assert torch.equal(std.theta0[k], theta[k])


def test_initial_step_sizes_and_labels():
    cfg = EmbeddingDDConfig(**{**TINY, "iterations": 1, "lr": 1e-12, "label_init": 2.0})
    res = distill_embeddings(blobs(), cfg)
    torch.testing.assert_close(res.steps.step_sizes, torch.full((4,), 0.01), rtol=1e-6, atol=0)
    torch.testing.assert_close(res.steps.label_logits[0], 2.0 * torch.eye(2), rtol=0, atol=1e-6)
    assert res.steps.vectors.shape == (2, 2, 5)


# ------------------------------------------------------------------ BTEO


@pytest.mark.parametrize("preserve", [True, False])
def test_bteo_counts_equal_per_group_within_class(preserve):
    g = torch.Generator().manual_seed(0)
    labels = torch.cat([torch.zeros(700), torch.ones(300), torch.full((100,), 2)]).long()
    groups = torch.cat([
        (torch.rand(700, generator=g) < 0.8), (torch.rand(300, generator=g) < 0.3), (torch.rand(100, generator=g) < 0.5),
    ]).long()
    idx = balanced_indices(labels, groups, generator=torch.Generator().manual_seed(1), preserve_class_share=preserve)
    assert len(idx.unique()) == len(idx) and (idx.diff() > 0).all()
    counts = group_counts(labels[idx], groups[idx])
    before = group_counts(labels, groups)
    for y in (0, 1, 2):
        assert counts[(y, 0)] == counts[(y, 1)] > 0
        assert counts[(y, 0)] <= min(before[(y, 0)], before[(y, 1)])
    if preserve:
        # fairlib stratified_y: cell = floor(r · n_y), r = min over cells of n_(y,g) / n_y.
        r = min(before[(y, a)] / n for y, n in ((0, 700), (1, 300), (2, 100)) for a in (0, 1))
        assert [counts[(y, 0)] for y in (0, 1, 2)] == [int(r * n) for n in (700, 300, 100)]
    else:
        assert [counts[(y, 0)] for y in (0, 1, 2)] == [min(before[(y, 0)], before[(y, 1)]) for y in (0, 1, 2)]


def test_bteo_rejects_a_class_without_one_group():
    with pytest.raises(ValueError, match="class 1"):
        balanced_indices(torch.tensor([0, 0, 1, 1]), torch.tensor([0, 1, 0, 0]), generator=torch.Generator())


def test_dd_bteo_distils_from_the_balanced_subset():
    train = blobs()
    res = distill_embeddings(train, EmbeddingDDConfig(**TINY, debias="bteo"))
    expected = len(balanced_indices(train.labels, train.attributes, generator=torch.Generator()))
    assert res.train_rows == expected < len(train)


# ------------------------------------------------------------------ ADV


def test_adv_updates_the_discriminator_once_per_outer_step():
    res = distill_embeddings(blobs(), EmbeddingDDConfig(**TINY, debias="adv"))
    assert res.iterations == TINY["iterations"] == res.discriminator_steps
    assert len(res.history["adv_loss"]) == TINY["iterations"]
    assert distill_embeddings(blobs(), EmbeddingDDConfig(**TINY)).discriminator_steps == 0


def test_adv_term_changes_the_learned_set():
    plain = distill_embeddings(blobs(), EmbeddingDDConfig(**TINY, adv_lambda=0.0, debias="adv"))
    adv = distill_embeddings(blobs(), EmbeddingDDConfig(**TINY, adv_lambda=0.8, debias="adv"))
    none = distill_embeddings(blobs(), EmbeddingDDConfig(**TINY))
    assert torch.equal(plain.steps.vectors, none.steps.vectors)  # λ = 0: the adversary is inert
    assert not torch.equal(adv.steps.vectors, none.steps.vectors)


def test_discriminator_shape_and_seeded_init():
    d1 = Discriminator(300, 2, generator=torch.Generator().manual_seed(0))
    d2 = Discriminator(300, 2, generator=torch.Generator().manual_seed(0))
    assert [m.__class__ for m in d1.net] == [nn.Linear, nn.LeakyReLU, nn.Linear, nn.Linear]
    assert d1(torch.zeros(4, 300)).shape == (4, 2)
    assert all(torch.equal(a, b) for a, b in zip(d1.parameters(), d2.parameters()))
    assert d1.net[0].weight.abs().max() <= 1 / 300**0.5


def test_standard_adv_and_bteo_run_and_report():
    train = blobs()
    for debias in ("none", "bteo", "adv"):
        res = train_standard(train, StandardConfig(epochs=3, patience=1, hidden=(8, 8), batch_size=64, debias=debias))
        acc = (predict(res.model, res.params, train.inputs) == train.labels).float().mean()
        assert acc > 0.7 and 1 <= res.epochs <= 3


# ------------------------------------------------------------------ behaviour


def test_distillation_learns_a_separable_problem():
    train = blobs(n=600, skew=0.5)
    cfg = EmbeddingDDConfig(hidden=(16, 16), batch_size=128, iterations=40, decay_every=20, size=2, distill_epochs=2, lr=0.05)
    res = distill_embeddings(train, cfg)
    model, params, _ = retrain(res.steps, res.theta0, distill_epochs=2, hidden=cfg.hidden)
    before = (predict(model, res.theta0, train.inputs) == train.labels).float().mean()
    after = (predict(model, params, train.inputs) == train.labels).float().mean()
    assert after > 0.85 and after > before
    assert res.history["loss"][-1] < res.history["loss"][0]


def test_deterministic_under_seed():
    cfg = EmbeddingDDConfig(**TINY, debias="adv")
    a, b = distill_embeddings(blobs(), cfg), distill_embeddings(blobs(), cfg)
    for x, y in zip(a.steps.parameters(), b.steps.parameters()):
        assert torch.equal(x, y)
    assert a.history["loss"] == b.history["loss"] and a.history["adv_loss"] == b.history["adv_loss"]
    c = distill_embeddings(blobs(), dataclasses.replace(cfg, seed=1))
    assert not torch.equal(a.steps.vectors, c.steps.vectors)


def test_needs_attributes_and_vectors():
    train = blobs()
    no_attr = Dataset("x", "train", train.inputs, train.labels, train.classes)
    for debias in ("bteo", "adv"):
        with pytest.raises(ValueError, match="attributes"):
            distill_embeddings(no_attr, EmbeddingDDConfig(**TINY, debias=debias))
    images = Dataset("x", "train", torch.zeros(4, 1, 2, 2), torch.tensor([0, 1, 0, 1]), ("a", "b"))
    with pytest.raises(ValueError, match="feature vectors"):
        distill_embeddings(images, EmbeddingDDConfig(**TINY))


@pytest.mark.parametrize(
    "kwargs, field",
    [
        ({"size": 0}, "size"),
        ({"distill_epochs": 1.5}, "distill_epochs"),
        ({"iterations": 0}, "iterations"),
        ({"lr": 0.0}, "lr"),
        ({"init_step_size": -0.01}, "init_step_size"),
        ({"decay_factor": 1.5}, "decay_factor"),
        ({"betas": (0.5, 1.0)}, "betas"),
        ({"hidden": ()}, "hidden"),
        ({"debias": "reweight"}, "debias"),
        ({"adv_lambda": -1.0}, "adv_lambda"),
        ({"seed": -1}, "seed"),
        ({"preserve_class_share": 1}, "preserve_class_share"),
    ],
)
def test_bad_dd_config_raises(kwargs, field):
    with pytest.raises(ValueError, match=field):
        EmbeddingDDConfig(**kwargs)


@pytest.mark.parametrize(
    "kwargs, field",
    [({"epochs": 0}, "epochs"), ({"patience": 0}, "patience"), ({"validation_fraction": 0.0}, "validation_fraction"),
     ({"lr": -1.0}, "lr"), ({"debias": "fair"}, "debias")],
)
def test_bad_standard_config_raises(kwargs, field):
    with pytest.raises(ValueError, match=field):
        StandardConfig(**kwargs)


def test_standard_and_dd_configs_share_one_definition_of_the_mlp_and_debias_fields() -> None:
    """The network, debiasing and seed fields are DebiasedMLPConfig's (one default, one check),
    listed after each config's own fields: the config columns of the recorded rows keep their order."""
    import dataclasses

    from fairdd.debias import DebiasedMLPConfig

    shared = [f.name for f in dataclasses.fields(DebiasedMLPConfig)]
    assert shared == ["hidden", "debias", "adv_lambda", "adv_units", "adv_lr", "preserve_class_share", "seed"]
    for cls in (StandardConfig, EmbeddingDDConfig):
        assert issubclass(cls, DebiasedMLPConfig)
        names = [f.name for f in dataclasses.fields(cls)]
        assert names[-len(shared):] == shared and names[0] in ("epochs", "size")
        assert all(getattr(cls(), n) == getattr(DebiasedMLPConfig(), n) for n in shared)
        with pytest.raises(ValueError, match="preserve_class_share"):
            cls(preserve_class_share=1)
        with pytest.raises(ValueError, match="adv_units"):
            cls(adv_units=0)
    with pytest.raises(ValueError, match="epochs"):  # the own fields' checks still run
        StandardConfig(epochs=0)
    with pytest.raises(ValueError, match="size"):
        EmbeddingDDConfig(size=0)
