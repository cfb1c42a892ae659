"""Batched training (fairdd.batched) against sequential train_network, network by network.

Tolerance: trained weights agree at rtol=1e-4, atol=1e-5 (fp32 CPU; the batched convolutions
sum in another order, so results are close, not bit-identical); per-epoch losses at the same
tolerance; learning-rate schedules exactly.
"""

import dataclasses

import pytest
import torch

from fairdd.batched import check_batchable, train_networks
from fairdd.data import Dataset
from fairdd.evaluate import EvalConfig, evaluate_synthetic, train_network
from fairdd.models import NetworkSpec

RTOL, ATOL = 1e-4, 1e-5

TINY = EvalConfig(
    network=NetworkSpec(width=4, depth=2),
    epochs=4,
    batch_size=6,  # 20 images: batches of 6, 6, 6, 2 (the smaller last batch is kept)
    lr=0.05,
    momentum=0.9,
    weight_decay=5e-3,
    num_networks=3,
)


def toy(
    n: int, seed: int, size: int = 8, classes: int = 3, channels: int = 1
) -> Dataset:
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % classes
    x = torch.rand(n, channels, size, size, generator=g) * 0.3
    for k in range(classes):
        x[y == k, :, k * size // classes : (k + 1) * size // classes] += 0.7
    a = torch.randint(0, 2, (n,), generator=g)
    return Dataset(
        "toy",
        "train",
        x,
        y,
        tuple(str(k) for k in range(classes)),
        a,
        "bit",
        ("0", "1"),
    )


def run_both(
    cfg: EvalConfig,
    images: torch.Tensor,
    labels: torch.Tensor,
    num_classes: int,
    *,
    lrs=None,
):
    size = images.shape[-1] if images.dim() == 4 else None
    build = lambda s: cfg.network.build(images.shape[1], num_classes, size, seed=s)
    seq, bat = (
        [build(s) for s in range(cfg.num_networks)],
        [build(s) for s in range(cfg.num_networks)],
    )
    gens = lambda: [
        torch.Generator().manual_seed(100 + i) for i in range(cfg.num_networks)
    ]
    seq_logs = [
        train_network(
            m,
            images,
            labels,
            cfg,
            generator=g,
            learning_rate=None if lrs is None else lrs[i],
        )
        for i, (m, g) in enumerate(zip(seq, gens()))
    ]
    bat_logs = train_networks(
        bat, images, labels, cfg, generators=gens(), learning_rate=lrs
    )
    return seq, bat, seq_logs, bat_logs


def assert_same(seq, bat, seq_logs, bat_logs, *, rtol=RTOL, atol=ATOL) -> None:
    """Network by network: the same weights and buffers (BatchNorm's running statistics and
    step count), learning-rate schedule and per-epoch losses."""
    assert len(seq) == len(bat) == len(bat_logs)
    for i, (a, b, la, lb) in enumerate(zip(seq, bat, seq_logs, bat_logs)):
        tensors_a = [*a.named_parameters(), *a.named_buffers()]
        tensors_b = [*b.named_parameters(), *b.named_buffers()]
        assert [n for n, _ in tensors_a] == [n for n, _ in tensors_b]
        for (name, p), (_, q) in zip(tensors_a, tensors_b):
            torch.testing.assert_close(
                q,
                p,
                rtol=rtol,
                atol=atol,
                msg=lambda m, i=i, name=name: f"network {i} {name}: {m}",
            )
        assert lb.epoch_lr == la.epoch_lr
        torch.testing.assert_close(
            torch.tensor(lb.epoch_loss),
            torch.tensor(la.epoch_loss),
            rtol=rtol,
            atol=atol,
        )
        assert b.training


def test_networks_differ_and_moved_from_their_init() -> None:
    train = toy(20, 0)
    _, bat, _, _ = run_both(TINY, train.inputs, train.labels, 3)
    w = [m.classifier.weight for m in bat]
    assert not torch.allclose(w[0], w[1])  # each its own θ0 / data order
    fresh = TINY.network.build(1, 3, 8, seed=0)
    assert not torch.allclose(fresh.classifier.weight, bat[0].classifier.weight)


@pytest.mark.parametrize(
    "changes",
    [
        {},  # momentum, weight decay, lr drop at half with momentum reset, ragged last batch
        {"reset_momentum_at_decay": False, "epochs": 5},
        {"momentum": 0.0, "weight_decay": 0.0},
        {
            "network": NetworkSpec(
                width=8, depth=1, norm="groupnorm", pooling="maxpooling"
            )
        },
        {
            "network": NetworkSpec(
                width=4, depth=1, norm="layernorm", activation="leakyrelu"
            )
        },
        {"network": NetworkSpec(width=4, depth=2, norm="none", activation="sigmoid")},
        {"network": NetworkSpec(width=4, depth=2, norm="batchnorm")},
        {"dsa": True, "epochs": 2},
    ],
    ids=["default", "no-reset", "plain-sgd", "groupnorm", "layernorm", "nonorm", "batchnorm", "dsa"],
)
def test_batched_equals_sequential_8x8(changes) -> None:
    cfg = dataclasses.replace(TINY, **changes)
    train = toy(20, 0)
    assert_same(*run_both(cfg, train.inputs, train.labels, 3))


def test_batched_equals_sequential_28x28_colour_dsa() -> None:
    cfg = dataclasses.replace(
        TINY,
        network=NetworkSpec(width=4, depth=2),
        epochs=2,
        batch_size=8,
        dsa=True,
        num_networks=2,
    )
    train = toy(12, 1, size=28, channels=3)
    assert_same(*run_both(cfg, train.inputs, train.labels, 3))


def test_batched_equals_sequential_soft_labels_and_own_rates() -> None:
    train = toy(20, 0)
    soft = torch.softmax(
        torch.randn(20, 3, generator=torch.Generator().manual_seed(3)), dim=1
    )
    assert_same(*run_both(TINY, train.inputs, soft, 3, lrs=[0.05, 0.02, 0.1]))


def test_batched_equals_sequential_mlp_on_vectors() -> None:
    cfg = dataclasses.replace(TINY, network=NetworkSpec(model="mlp"), epochs=3)
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(20, 16, generator=g), torch.arange(20) % 3
    assert_same(*run_both(cfg, x, y, 3))


def test_evaluate_synthetic_batched_rows_equal_sequential_rows() -> None:
    train, test = toy(20, 0), toy(60, 1)
    cfg = dataclasses.replace(TINY, epochs=6)
    seq = evaluate_synthetic(
        train.inputs, train.labels, test, cfg, seed=5, keep_predictions=True
    )
    bat = evaluate_synthetic(
        train.inputs,
        train.labels,
        test,
        cfg,
        seed=5,
        keep_predictions=True,
        side_by_side=True,
    )
    assert len(seq) == len(bat) == cfg.num_networks
    for a, b in zip(seq, bat):
        assert a.keys() == b.keys()
        for key in a:
            if key == "train_time_s":
                continue
            if key == "predictions":
                assert torch.equal(a[key], b[key])
            elif key == "final_train_loss":
                assert b[key] == pytest.approx(a[key], rel=RTOL, abs=ATOL)
            else:
                assert b[key] == a[key] or (a[key] != a[key] and b[key] != b[key]), (
                    key
                )  # NaN == NaN


@pytest.mark.parametrize(
    ("changes", "match"),
    [
        ({"compile": True}, "compile"),
        ({"channels_last": True}, "channels_last"),
    ],
)
def test_unsupported_options_are_rejected_before_training(changes, match) -> None:
    train, test = toy(20, 0), toy(20, 1)
    cfg = dataclasses.replace(TINY, **changes)
    with pytest.raises(ValueError, match=match):
        evaluate_synthetic(train.inputs, train.labels, test, cfg, seed=0, side_by_side=True)


def test_rejected_networks_and_arguments() -> None:
    train = toy(20, 0)
    with pytest.raises(ValueError, match="buffer names or shapes"):
        check_batchable([torch.nn.BatchNorm1d(4), torch.nn.BatchNorm1d(4, track_running_stats=False)])
    with pytest.raises(ValueError, match="one architecture"):
        check_batchable(
            [
                NetworkSpec(width=4).build(1, 3, 8, seed=0),
                NetworkSpec(width=8).build(1, 3, 8, seed=0),
            ]
        )
    with pytest.raises(ValueError, match="dropout"):
        check_batchable(
            [torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.Dropout(0.5))]
        )
    frozen = NetworkSpec(width=4).build(1, 3, 8, seed=0)
    frozen.classifier.bias.requires_grad_(False)
    with pytest.raises(ValueError, match="frozen"):
        check_batchable([frozen])
    with pytest.raises(ValueError, match="at least one"):
        check_batchable([])
    models = [TINY.network.build(1, 3, 8, seed=s) for s in range(2)]
    with pytest.raises(ValueError, match="generators"):
        train_networks(
            models, train.inputs, train.labels, TINY, generators=[torch.Generator()]
        )
    with pytest.raises(ValueError, match="learning rates"):
        train_networks(
            models,
            train.inputs,
            train.labels,
            TINY,
            generators=[torch.Generator()] * 2,
            learning_rate=[0.1],
        )
    with pytest.raises(ValueError, match="side_by_side"):
        evaluate_synthetic(
            train.inputs, train.labels, toy(20, 1), TINY, seed=0, side_by_side=1
        )


def test_batched_equals_sequential_resnet20_batchnorm() -> None:
    """The CIFAR ResNet (BatchNorm everywhere, option-A shortcuts): weights and running
    statistics equal the sequential ones network by network."""
    cfg = dataclasses.replace(TINY, network=NetworkSpec(model="resnet20"), epochs=2, num_networks=2, lr=0.02)
    train = toy(12, 2, size=8, channels=3)
    seq, bat, seq_logs, bat_logs = run_both(cfg, train.inputs, train.labels, 3)
    assert_same(seq, bat, seq_logs, bat_logs)
    # The running statistics moved (they are not the initial 0 / 1), and the step count is the
    # number of minibatches.
    stem_bn = bat[0].stem[1]
    assert not torch.allclose(stem_bn.running_mean, torch.zeros_like(stem_bn.running_mean))
    assert int(stem_bn.num_batches_tracked) == cfg.epochs * 2  # 12 images in batches of 6


def test_batched_bf16_matches_sequential_bf16_and_keeps_accuracy() -> None:
    """bf16 autocast in the batched step: the same networks as the sequential bf16 path within a
    bf16 tolerance (bf16 keeps 8 significant bits, so the two summation orders diverge far more
    than in float32: atol/rtol 2e-2 after two epochs), and accuracy holds: on a separable toy
    task the bf16 networks' mean test accuracy is within 5 points of the float32 networks'."""
    cfg = dataclasses.replace(TINY, epochs=6, precision="bf16")
    train, test = toy(30, 0), toy(90, 1)
    short = dataclasses.replace(cfg, epochs=2)
    assert_same(*run_both(short, train.inputs, train.labels, 3), rtol=2e-2, atol=2e-2)
    bf16 = evaluate_synthetic(train.inputs, train.labels, test, cfg, seed=3, side_by_side=True)
    fp32 = evaluate_synthetic(
        train.inputs, train.labels, test, dataclasses.replace(cfg, precision="fp32"), seed=3, side_by_side=True
    )
    acc = lambda rows: sum(r["accuracy"] for r in rows) / len(rows)  # noqa: E731
    assert acc(fp32) > 0.6  # the task is learnt at all, so the comparison means something
    assert abs(acc(bf16) - acc(fp32)) <= 0.05


@pytest.mark.parametrize("max_norm", [0.05, 1e3], ids=["clips", "never-clips"])
def test_stacked_sgd_clips_each_network_as_clip_grad_norm(max_norm) -> None:
    """max_grad_norm: each network's gradient is clipped to the total norm, as
    torch.nn.utils.clip_grad_norm_ before torch.optim.SGD's step (and left alone below it)."""
    from fairdd.batched import StackedSGD

    spec = NetworkSpec(width=4, depth=1)
    g = torch.Generator().manual_seed(0)
    x = torch.rand(2, 6, 1, 8, 8, generator=g) * 10  # large inputs: large gradients, so clipping acts
    y = torch.randint(0, 3, (2, 6), generator=g)
    seq = [spec.build(1, 3, 8, seed=s) for s in range(2)]
    stack = StackedSGD([spec.build(1, 3, 8, seed=s) for s in range(2)], momentum=0.9, weight_decay=1e-3,
                       max_grad_norm=max_norm)
    for _ in range(3):
        stack.step(torch.nn.functional.cross_entropy, x, y, lr=0.1)
    for i, model in enumerate(seq):
        opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-3)
        for _ in range(3):
            opt.zero_grad()
            torch.nn.functional.cross_entropy(model(x[i]), y[i]).backward()
            norm = torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm)
            assert (norm > max_norm) == (max_norm < 1)  # the clipping acted, or did not, as meant
            opt.step()
        for name, p in model.named_parameters():
            torch.testing.assert_close(stack.params[name][i], p, rtol=RTOL, atol=ATOL)


def test_stacked_sgd_state_round_trip_and_refusal() -> None:
    from fairdd.batched import StackedSGD

    spec = NetworkSpec(width=4, depth=1, norm="batchnorm")
    models = [spec.build(1, 3, 8, seed=s) for s in range(2)]
    x, y = torch.rand(2, 4, 1, 8, 8), torch.zeros(2, 4, dtype=torch.long)
    a = StackedSGD(models, momentum=0.9, weight_decay=0.0)
    a.step(torch.nn.functional.cross_entropy, x, y, lr=0.1)
    b = StackedSGD(models, momentum=0.9, weight_decay=0.0)
    b.load_state_dict(a.state_dict())
    for s in (a, b):
        s.step(torch.nn.functional.cross_entropy, x, y, lr=0.1)
    for name in a.params:
        assert torch.equal(a.params[name], b.params[name])
    for name in a.buffers:
        assert torch.equal(a.buffers[name], b.buffers[name])
    plain = StackedSGD(models, momentum=0.0, weight_decay=0.0)  # no momentum buffers to save or restore
    plain.step(torch.nn.functional.cross_entropy, x, y, lr=0.1)
    StackedSGD(models, momentum=0.0, weight_decay=0.0).load_state_dict(plain.state_dict())
    other = StackedSGD([spec.build(1, 3, 8, seed=s) for s in range(3)], momentum=0.9, weight_decay=0.0)
    with pytest.raises(ValueError, match="do not match"):
        other.load_state_dict(a.state_dict())
    with pytest.raises(ValueError, match="learning rates"):
        a.step(torch.nn.functional.cross_entropy, x, y, lr=[0.1, 0.2, 0.3])


def test_config_side_by_side_selects_the_batched_path_and_hashes_only_when_set() -> None:
    from fairdd import results

    train, test = toy(20, 0), toy(30, 1)
    cfg = dataclasses.replace(TINY, epochs=3, side_by_side=True)
    by_config = evaluate_synthetic(train.inputs, train.labels, test, cfg, seed=4)
    by_argument = evaluate_synthetic(
        train.inputs, train.labels, test, dataclasses.replace(cfg, side_by_side=False), seed=4, side_by_side=True
    )
    sequential = evaluate_synthetic(train.inputs, train.labels, test, cfg, seed=4, side_by_side=False)
    for a, b, c in zip(by_config, by_argument, sequential):
        assert a["final_train_loss"] == b["final_train_loss"]  # the same (batched) computation
        assert a["final_train_loss"] == pytest.approx(c["final_train_loss"], rel=RTOL, abs=ATOL)
    assert "side_by_side" not in results.canonical_config(TINY)
    assert results.run_id(cfg) != results.run_id(dataclasses.replace(cfg, side_by_side=False))
    with pytest.raises(ValueError, match="compile"):
        dataclasses.replace(TINY, side_by_side=True, compile=True)
    with pytest.raises(ValueError, match="side_by_side"):
        dataclasses.replace(TINY, side_by_side=1)
