"""fairdd.kd: the loss, the schedule, the students, the teacher cache (Mohammadshahi & Ioannou)."""

from __future__ import annotations

import dataclasses
import math
import os

import pytest
import torch
from torch.nn import functional as F

from fairdd import kd
from fairdd.data import Dataset, RealSampler
from fairdd.models import NetworkSpec
from fairdd.seeding import generator as seeded_generator
from fairdd.seeding import kd_seeds

torch.set_num_threads(1)

TINY = NetworkSpec(width=4, depth=1)


def _data(n: int = 24, k: int = 3, size: int = 8) -> Dataset:
    g = torch.Generator().manual_seed(0)
    labels = torch.arange(n) % k
    images = torch.rand(n, 3, size, size, generator=g) + labels[:, None, None, None] * 0.3
    return Dataset(name="toy", split="train", inputs=images, labels=labels, classes=tuple(str(c) for c in range(k)))


def _config(**kw) -> kd.KDConfig:
    base = {"teacher": NetworkSpec(width=6, depth=1), "student": TINY, "epochs": 3, "milestones": (1, 2), "batch_size": 8,
                "augment": False, "lr": 0.05, "temperature": 3.0, "alpha": 0.7}
    base.update(kw)
    return kd.KDConfig(**base)


def _params(model: torch.nn.Module) -> list[torch.Tensor]:
    return [p.detach().clone() for p in model.parameters()]


# ------------------------------------------------------------------------------ the loss


def test_kd_loss_matches_a_hand_computation() -> None:
    s, t, y, T, a = [1.0, 2.0, 0.5], [2.0, 0.0, 1.0], 1, 2.0, 0.25

    def softmax(z, temp):
        e = [math.exp(v / temp) for v in z]
        return [v / sum(e) for v in e]

    p, q = softmax(t, T), softmax(s, T)
    kl = sum(pi * math.log(pi / qi) for pi, qi in zip(p, q))
    ce = -math.log(softmax(s, 1.0)[y])
    expected = a * T**2 * kl + (1 - a) * ce
    got = kd.kd_loss(torch.tensor([s]), torch.tensor([t]), torch.tensor([y]), T, a, t_squared=True)
    assert got.item() == pytest.approx(expected, rel=1e-6)
    plain = kd.kd_loss(torch.tensor([s]), torch.tensor([t]), torch.tensor([y]), T, a, t_squared=False)
    assert plain.item() == pytest.approx(a * kl + (1 - a) * ce, rel=1e-6)


def test_t_squared_keeps_the_soft_gradient_scale_across_temperatures() -> None:
    g = torch.Generator().manual_seed(1)
    s0, t0 = torch.randn(16, 10, generator=g), torch.randn(16, 10, generator=g)
    y = torch.zeros(16, dtype=torch.long)

    def grad_norm(T: float, t_squared: bool) -> float:
        s = s0.clone().requires_grad_(True)
        kd.kd_loss(s, t0, y, T, 1.0, t_squared).backward()
        return float(s.grad.norm())

    # Hinton et al. §2: the soft gradient scales as 1/T²; the T² factor makes it T-invariant.
    assert grad_norm(40.0, True) == pytest.approx(grad_norm(20.0, True), rel=0.02)
    assert grad_norm(20.0, False) / grad_norm(40.0, False) == pytest.approx(4.0, rel=0.05)


def test_alpha_zero_is_cross_entropy_and_alpha_one_ignores_labels() -> None:
    s, t = torch.randn(5, 4), torch.randn(5, 4)
    y = torch.tensor([0, 1, 2, 3, 0])
    assert kd.kd_loss(s, t, y, 5.0, 0.0).item() == pytest.approx(F.cross_entropy(s, y).item())
    assert kd.kd_loss(s, t, y, 5.0, 1.0).item() == kd.kd_loss(s, t, y.flip(0), 5.0, 1.0).item()


# ------------------------------------------------------------------------------ schedule


def test_lr_schedule_is_the_papers() -> None:
    paper = kd.KDConfig.for_profile("paper")
    assert (paper.lr, paper.milestones, paper.epochs, paper.weight_decay) == (0.1, (30, 60, 90), 100, 1e-3)
    lrs = [kd.lr_at(paper, e) for e in (0, 29, 30, 59, 60, 89, 90, 99)]
    assert lrs == pytest.approx([0.1, 0.1, 0.01, 0.01, 1e-3, 1e-3, 1e-4, 1e-4])
    cfg = _config(alpha=0.0)
    model = TINY.build(3, 3, 8, seed=0)
    log = kd.fit(model, _data(), cfg, generator=seeded_generator(0))
    assert log.epoch_lr == pytest.approx([0.05, 0.005, 0.0005])


def test_kd_config_profiles_are_the_papers_and_a_unit_test_size() -> None:
    """The studies state their cpu protocols; KDConfig has none (a cpu request names where it is)."""
    assert kd.KDConfig.for_profile("paper") == kd.KDConfig()
    assert kd.KDConfig.for_profile("smoke").epochs == 2
    with pytest.raises(ValueError, match="fairdd.studies.kd"):
        kd.KDConfig.for_profile("cpu")


# ------------------------------------------------------------------------------ students


def test_alpha_zero_student_equals_plain_cross_entropy_training() -> None:
    data, cfg = _data(), _config(alpha=0.0)
    model, _ = kd.student(cfg, data, seed=3)
    # The same training written out: SGD on cross-entropy, same θ0 and batch order.
    init_seed, data_seed = kd_seeds(3, kd.STUDENT)
    ref = TINY.build(3, 3, 8, seed=init_seed)
    opt = torch.optim.SGD(ref.parameters(), lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    g = seeded_generator(data_seed)
    for epoch in range(cfg.epochs):
        for group in opt.param_groups:
            group["lr"] = kd.lr_at(cfg, epoch)
        order = torch.randperm(len(data), generator=g)
        for i in range(0, len(data), cfg.batch_size):
            idx = order[i : i + cfg.batch_size]
            loss = F.cross_entropy(ref(data.inputs[idx]), data.labels[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    for a, b in zip(_params(model), _params(ref)):
        assert torch.equal(a, b)
    # α = 0 never reads a teacher: a different temperature or teacher changes nothing.
    teacher = NetworkSpec(width=6, depth=1).build(3, 3, 8, seed=9)
    other, _ = kd.student(dataclasses.replace(cfg, temperature=7.0), data, seed=3, teacher_model=teacher)
    assert all(torch.equal(a, b) for a, b in zip(_params(model), _params(other)))


def test_alpha_one_student_ignores_labels() -> None:
    data = _data()
    teacher = NetworkSpec(width=6, depth=1).build(3, 3, 8, seed=9).eval()
    cfg = _config(alpha=1.0)
    shuffled = dataclasses.replace(data, labels=data.labels[torch.randperm(len(data), generator=torch.Generator().manual_seed(5))])
    assert not torch.equal(shuffled.labels, data.labels)
    a, _ = kd.student(cfg, data, seed=1, teacher_model=teacher)
    b, _ = kd.student(cfg, shuffled, seed=1, teacher_model=teacher)
    assert all(torch.equal(x, y) for x, y in zip(_params(a), _params(b)))
    c, _ = kd.student(_config(alpha=0.5), data, seed=1, teacher_model=teacher)
    d, _ = kd.student(_config(alpha=0.5), shuffled, seed=1, teacher_model=teacher)
    assert not all(torch.equal(x, y) for x, y in zip(_params(c), _params(d)))


def test_cached_teacher_logits_give_the_same_student(tmp_path) -> None:
    data, cfg = _data(), _config()
    spec = cfg.teacher_spec(0)
    teacher, _ = kd.teacher(spec, data, root=tmp_path)
    logits = kd.teacher_logits(spec, data, teacher, root=tmp_path, batch_size=8)
    with_cache, _ = kd.student(cfg, data, seed=2, cached_logits=logits)
    per_batch, _ = kd.student(cfg, data, seed=2, teacher_model=teacher)
    for a, b in zip(_params(with_cache), _params(per_batch)):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-7)
    # Distillation moved the student away from its non-distilled twin.
    nds, _ = kd.student(dataclasses.replace(cfg, alpha=0.0), data, seed=2)
    assert not all(torch.equal(a, b) for a, b in zip(_params(with_cache), _params(nds)))
    # Cached on disk: a second call reads the file.
    again = kd.teacher_logits(spec, data, teacher, root=tmp_path)
    assert torch.equal(again, logits)


def test_teacher_is_trained_once_and_shared(tmp_path, monkeypatch) -> None:
    data, cfg = _data(), _config()
    calls = []
    real_fit = kd.fit
    monkeypatch.setattr(kd, "fit", lambda *a, **k: calls.append(1) or real_fit(*a, **k))
    spec = cfg.teacher_spec(0)
    first, record = kd.teacher(spec, data, root=tmp_path)
    # A different temperature, α or student shares the teacher.
    other = dataclasses.replace(cfg, temperature=9.0, alpha=0.6, student=NetworkSpec(width=3, depth=1))
    assert other.teacher_spec(0) == spec
    second, _ = kd.teacher(other.teacher_spec(0), data, root=tmp_path)
    assert len(calls) == 1 and record["train_time_s"] > 0
    assert all(torch.equal(a, b) for a, b in zip(_params(first), _params(second)))
    assert not first.training
    # A dead process's claim is taken over; a new seed is a new teacher.
    spec1 = cfg.teacher_spec(1)
    claim = kd.teacher_dir(spec1, data, root=tmp_path) / "teacher.claim"
    claim.parent.mkdir(parents=True)
    claim.write_text(str(2**22 + 12345))  # beyond pid_max defaults: not a live process
    os.utime(claim, (0, 0))
    kd.teacher(spec1, data, root=tmp_path)
    assert len(calls) == 2 and not claim.exists()


def _straight_and_resumed(cfg: kd.KDConfig, data: Dataset, teacher: torch.nn.Module, path) -> torch.nn.Module:
    """Train ``cfg``'s student straight through, and again stopped after 2 epochs and resumed
    from its checkpoint at ``path``; assert the two are bit-identical; return the straight one."""
    straight, log = kd.student(cfg, data, seed=0, teacher_model=teacher)
    kd.student(dataclasses.replace(cfg, epochs=2), data, seed=0, teacher_model=teacher, checkpoint=path)
    resumed, log2 = kd.student(cfg, data, seed=0, teacher_model=teacher, checkpoint=path)
    assert all(torch.equal(a, b) for a, b in zip(_params(straight), _params(resumed)))
    assert log2.epoch_loss == log.epoch_loss
    return straight


def test_resume_from_checkpoint_is_bit_identical(tmp_path) -> None:
    data, cfg = _data(), _config(epochs=4, milestones=(2,), augment=True, crop_padding=1)
    teacher = NetworkSpec(width=6, depth=1).build(3, 3, 8, seed=9).eval()
    _straight_and_resumed(cfg, data, teacher, tmp_path / "ckpt.pt")


def test_crop_flip() -> None:
    x = torch.arange(2 * 1 * 4 * 4, dtype=torch.float32).reshape(2, 1, 4, 4)
    g = torch.Generator().manual_seed(0)
    assert torch.equal(kd.crop_flip(x, padding=0, flip=False, generator=g), x)
    flipped = [kd.crop_flip(x, padding=0, flip=True, generator=torch.Generator().manual_seed(s)) for s in range(8)]
    assert all(torch.equal(f[i], x[i]) or torch.equal(f[i], x[i].flip(2)) for f in flipped for i in range(2))
    assert any(torch.equal(f[0], x[0].flip(2)) for f in flipped) and any(torch.equal(f[0], x[0]) for f in flipped)
    crops = kd.crop_flip(x, padding=1, flip=False, generator=g)
    padded = F.pad(x, (1, 1, 1, 1))
    for i in range(2):  # each crop is a 4×4 window of the padded image
        windows = [padded[i, :, a : a + 4, b : b + 4] for a in range(3) for b in range(3)]
        assert any(torch.equal(crops[i], w) for w in windows)


# ------------------------------------------------------------------------ validation


@pytest.mark.parametrize(
    "field,value",
    [("temperature", 0.0), ("temperature", -1.0), ("alpha", 1.5), ("alpha", -0.1), ("epochs", 0),
     ("milestones", (30, 20)), ("weight_decay", -1.0), ("t_squared", 1)],
)
def test_bad_config_names_the_field(field: str, value) -> None:
    with pytest.raises(ValueError, match=field):
        kd.KDConfig(**{field: value})


def test_unknown_model_and_missing_teacher_fail_before_any_work() -> None:
    with pytest.raises(ValueError, match="model"):
        kd.KDConfig(student=NetworkSpec(model="vgg11"))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="teacher"):
        kd.student(_config(alpha=0.5), _data(), seed=0)
    with pytest.raises(ValueError, match="augment"):
        tab = Dataset(name="t", split="train", inputs=torch.rand(4, 3), labels=torch.tensor([0, 1, 0, 1]), classes=("a", "b"))
        kd.student(kd.KDConfig(student=NetworkSpec(model="mlp_small"), alpha=0.0, augment=True), tab, seed=0)
    with pytest.raises(ValueError, match="temperature"):
        kd.kd_loss(torch.zeros(1, 2), torch.zeros(1, 2), torch.zeros(1, dtype=torch.long), 0.0, 0.5)


def test_max_grad_norm_is_validated_and_bounds_each_step() -> None:
    with pytest.raises(ValueError, match="max_grad_norm"):
        kd.KDConfig(max_grad_norm=0.0)
    # One SGD step (no momentum, no weight decay) moves the parameters by lr × the clipped
    # gradient, so its norm is at most lr × max_grad_norm.
    x = torch.randn(16, 4) * 100
    y = torch.randint(0, 3, (16,))
    train = Dataset("toy", "train", x, y, classes=("a", "b", "c"))
    config = kd.KDConfig(teacher=NetworkSpec(model="mlp"), student=NetworkSpec(model="mlp"), alpha=0.0, epochs=1,
                         milestones=(1,), lr=0.5, momentum=0.0, weight_decay=0.0, batch_size=16, augment=False,
                         max_grad_norm=0.1)
    model = torch.nn.Linear(4, 3)
    before = torch.cat([p.detach().flatten().clone() for p in model.parameters()])
    kd.fit(model, train, config, generator=torch.Generator().manual_seed(0))
    after = torch.cat([p.detach().flatten() for p in model.parameters()])
    assert float((after - before).norm()) <= 0.5 * 0.1 + 1e-6


def _grouped(n: int = 24) -> Dataset:
    data = _data(n)
    attributes = (torch.arange(n) % 4 == 0).long()  # one sample in four in group 1
    return dataclasses.replace(data, attributes=attributes, attribute_values=("a", "b"))


def test_balanced_batches_give_every_group_an_equal_share_of_each_class(monkeypatch) -> None:
    data = _grouped()
    # Cached "teacher logits" that carry each sample's index, read back from the loss's input.
    marks = torch.zeros(len(data), 3)
    marks[:, 0] = torch.arange(len(data), dtype=torch.float32)
    visited: list[torch.Tensor] = []
    real_kd_loss = kd.kd_loss

    def spy(student_logits, teacher_logits, labels, *args, **kwargs):
        visited.append(teacher_logits[:, 0].long().clone())
        return real_kd_loss(student_logits, teacher_logits, labels, *args, **kwargs)

    monkeypatch.setattr(kd, "kd_loss", spy)
    for balanced, expected in ((True, [4, 4]), (False, [6, 2])):
        visited.clear()
        cfg = _config(epochs=1, batch_size=64, balanced_batches=balanced)
        kd.fit(TINY.build(3, 3, 8, seed=0), data, cfg, generator=torch.Generator().manual_seed(0), cached_logits=marks)
        (index,) = visited
        assert len(index) == len(data)  # the epoch keeps its size and its class sizes
        for c in range(3):
            in_class = index[data.labels[index] == c]
            assert torch.bincount(data.attributes[in_class], minlength=2).tolist() == expected
    with pytest.raises(ValueError, match="balanced_batches=True needs a training set with attributes"):
        kd.fit(TINY.build(3, 3, 8, seed=0), _data(), _config(balanced_batches=True), generator=torch.Generator().manual_seed(0),
               cached_logits=marks)


def test_balanced_batches_draw_equal_group_counts_and_resume_bit_identically(tmp_path) -> None:
    data = _grouped()
    sampler = RealSampler(data.labels, 3, mode="group_balanced", attributes=data.attributes)
    g = torch.Generator().manual_seed(1)
    for c in range(3):
        idx = sampler.sample(c, 8, g)
        assert torch.bincount(data.attributes[idx], minlength=2).tolist() == [4, 4]
    cfg = _config(epochs=4, milestones=(2,), balanced_batches=True)
    teacher = NetworkSpec(width=6, depth=1).build(3, 3, 8, seed=9).eval()
    straight = _straight_and_resumed(cfg, data, teacher, tmp_path / "ckpt.pt")
    plain, _ = kd.student(dataclasses.replace(cfg, balanced_batches=False), data, seed=0, teacher_model=teacher)
    assert not all(torch.equal(a, b) for a, b in zip(_params(straight), _params(plain)))
