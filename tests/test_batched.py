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


def assert_same(seq, bat, seq_logs, bat_logs) -> None:
    assert len(seq) == len(bat) == len(bat_logs)
    for i, (a, b, la, lb) in enumerate(zip(seq, bat, seq_logs, bat_logs)):
        for (name, p), (_, q) in zip(a.named_parameters(), b.named_parameters()):
            torch.testing.assert_close(
                q,
                p,
                rtol=RTOL,
                atol=ATOL,
                msg=lambda m, i=i, name=name: f"network {i} {name}: {m}",
            )
        assert lb.epoch_lr == la.epoch_lr
        torch.testing.assert_close(
            torch.tensor(lb.epoch_loss),
            torch.tensor(la.epoch_loss),
            rtol=RTOL,
            atol=ATOL,
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
        {"dsa": True, "epochs": 2},
    ],
    ids=["default", "no-reset", "plain-sgd", "groupnorm", "layernorm", "nonorm", "dsa"],
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
        batched=True,
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
        ({"network": NetworkSpec(width=4, depth=1, norm="batchnorm")}, "batchnorm"),
        ({"compile": True}, "compile"),
        ({"channels_last": True}, "channels_last"),
        ({"precision": "bf16"}, "fp32"),
    ],
)
def test_unsupported_options_are_rejected_before_training(changes, match) -> None:
    train, test = toy(20, 0), toy(20, 1)
    cfg = dataclasses.replace(TINY, **changes)
    with pytest.raises(ValueError, match=match):
        evaluate_synthetic(train.inputs, train.labels, test, cfg, seed=0, batched=True)


def test_rejected_networks_and_arguments() -> None:
    train = toy(20, 0)
    with pytest.raises(ValueError, match="buffers"):
        check_batchable([NetworkSpec(model="resnet20").build(1, 3, 8, seed=0)])
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
    with pytest.raises(ValueError, match="batched"):
        evaluate_synthetic(
            train.inputs, train.labels, toy(20, 1), TINY, seed=0, batched=1
        )
