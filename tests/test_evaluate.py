"""The evaluation protocol on tiny sets: determinism, learning, schedule, reports, validation."""

import dataclasses
import math

import pytest
import torch

from fairdd.data import Dataset
from fairdd.evaluate import (
    EvalConfig,
    accuracy_report,
    evaluate_synthetic,
    evaluate_whole_set,
    network_seeds,
    random_subset,
    train_network,
)
from fairdd.models import NetworkSpec, build_model

TINY = EvalConfig(network=NetworkSpec(width=8), epochs=2, batch_size=8, num_networks=2)


def separable(n: int, seed: int, size: int = 8) -> Dataset:
    """Two classes told apart by which half of the image is bright; attribute = a random bit."""
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, 1, size, size, generator=g) * 0.3
    y = torch.arange(n) % 2
    x[y == 0, :, : size // 2] += 0.7
    x[y == 1, :, size // 2 :] += 0.7
    a = torch.randint(0, 2, (n,), generator=g)
    return Dataset("toy", "train", x, y, ("top", "bottom"), a, "bit", ("0", "1"))


def strip_times(rows: list[dict]) -> list[dict]:
    return [{k: v for k, v in r.items() if k != "train_time_s"} for r in rows]


def test_evaluation_is_deterministic_under_a_seed() -> None:
    train, test = separable(20, 0), separable(20, 1)
    a = evaluate_synthetic(train.inputs, train.labels, test, TINY, seed=7)
    b = evaluate_synthetic(train.inputs, train.labels, test, TINY, seed=7)
    assert strip_times(a) == strip_times(b)
    c = evaluate_synthetic(train.inputs, train.labels, test, TINY, seed=8)
    assert [r["final_train_loss"] for r in a] != [r["final_train_loss"] for r in c]
    assert a[0]["init_seed"] != a[1]["init_seed"]  # each network its own seed
    assert len(a) == TINY.num_networks and all(r["seed"] == 7 for r in a)


def test_dsa_evaluation_is_deterministic() -> None:
    train, test = separable(20, 0), separable(20, 1)
    cfg = dataclasses.replace(TINY, dsa=True, epochs=2, num_networks=1)
    a = evaluate_synthetic(train.inputs, train.labels, test, cfg, seed=0)
    b = evaluate_synthetic(train.inputs, train.labels, test, cfg, seed=0)
    assert strip_times(a) == strip_times(b)


def test_training_on_a_separable_set_reaches_high_accuracy() -> None:
    train, test = separable(20, 0), separable(200, 1)
    cfg = dataclasses.replace(TINY, epochs=30, num_networks=1)
    (row,) = evaluate_synthetic(train.inputs, train.labels, test, cfg, seed=0)
    assert row["accuracy"] >= 0.95
    assert row["acc_class_0"] >= 0.9 and row["acc_class_1"] >= 0.9


def test_lr_drops_at_half_the_epochs() -> None:
    train = separable(20, 0)
    model = build_model("convnet", channels=1, num_classes=2, image_size=8, seed=0, width=8)
    cfg = dataclasses.replace(TINY, epochs=4)
    log = train_network(model, train.inputs, train.labels, cfg, generator=torch.Generator().manual_seed(0))
    assert log.epoch_lr == pytest.approx([0.01, 0.01, 0.001, 0.001])
    cfg = dataclasses.replace(TINY, epochs=5)
    log = train_network(model, train.inputs, train.labels, cfg, generator=torch.Generator().manual_seed(0),
                        learning_rate=torch.tensor(0.05))
    assert log.epoch_lr == pytest.approx([0.05, 0.05, 0.005, 0.005, 0.005])
    assert len(log.epoch_loss) == 5 and all(math.isfinite(v) for v in log.epoch_loss)


def test_momentum_reset_at_decay_changes_the_trajectory() -> None:
    train = separable(20, 0)
    weights = []
    for reset in (True, False):
        model = build_model("convnet", channels=1, num_classes=2, image_size=8, seed=0, width=8)
        cfg = dataclasses.replace(TINY, epochs=4, reset_momentum_at_decay=reset)
        train_network(model, train.inputs, train.labels, cfg, generator=torch.Generator().manual_seed(0))
        weights.append(model.classifier.weight.detach().clone())
    assert not torch.allclose(weights[0], weights[1])


def test_one_hot_soft_labels_equal_hard_labels() -> None:
    train = separable(20, 0)
    soft = torch.nn.functional.one_hot(train.labels, 2).float()
    out = []
    for labels in (train.labels, soft):
        model = build_model("convnet", channels=1, num_classes=2, image_size=8, seed=0, width=8)
        log = train_network(model, train.inputs, labels, TINY, generator=torch.Generator().manual_seed(0))
        out.append((log.epoch_loss, model.classifier.weight.detach().clone()))
    assert out[0][0] == pytest.approx(out[1][0], rel=1e-5)
    torch.testing.assert_close(out[0][1], out[1][1])


def test_mlp_on_vectors_and_predictions_kept() -> None:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(40, 5, generator=g)
    y = (x[:, 0] > 0).long()
    test = Dataset("vec", "test", x, y, ("neg", "pos"))
    cfg = EvalConfig(network=NetworkSpec(model="mlp"), epochs=30, batch_size=8, num_networks=1, lr=0.05)
    (row,) = evaluate_synthetic(x, y, test, cfg, seed=0, keep_predictions=True)
    assert row["accuracy"] >= 0.9
    assert row["predictions"].shape == (40,) and row["predictions"].dtype == torch.long
    assert "acc_bias_aligned" not in row  # no attributes


def test_accuracy_report_by_hand() -> None:
    labels = torch.tensor([0, 0, 1, 1, 1, 2])
    attrs = torch.tensor([0, 1, 1, 0, 1, 2])
    preds = torch.tensor([0, 1, 1, 1, 0, 0])
    test = Dataset("t", "test", torch.zeros(6, 1), labels, ("a", "b", "c"), attrs, "g", ("x", "y", "z"))
    row = accuracy_report(preds, test)
    assert row["accuracy"] == pytest.approx(3 / 6)
    assert (row["acc_class_0"], row["acc_class_1"], row["acc_class_2"]) == pytest.approx((1 / 2, 2 / 3, 0.0))
    # groups: attr 0 → rows 0, 3 (both right); attr 1 → rows 1, 2, 4 (row 2 right); attr 2 → row 5 (wrong)
    assert (row["acc_group_0"], row["acc_group_1"], row["acc_group_2"]) == pytest.approx((1.0, 1 / 3, 0.0))
    assert row["worst_group_accuracy"] == 0.0
    # aligned (attr == label): rows 0, 2, 4, 5 → 0 right, 2 right, 4 wrong, 5 wrong
    assert row["acc_bias_aligned"] == pytest.approx(2 / 4)
    assert row["acc_bias_conflicting"] == pytest.approx(1 / 2)  # rows 1 (wrong), 3 (right)


def test_empty_subset_is_nan() -> None:
    test = Dataset("t", "test", torch.zeros(2, 1), torch.tensor([0, 0]), ("a", "b"))
    row = accuracy_report(torch.tensor([0, 1]), test)
    assert row["acc_class_0"] == 0.5 and math.isnan(row["acc_class_1"])


def test_random_subset_is_stratified_and_seeded() -> None:
    train = separable(30, 0)
    sub = random_subset(train, 4, seed=1)
    assert sub.labels.tolist() == [0] * 4 + [1] * 4
    assert torch.equal(sub.inputs, random_subset(train, 4, seed=1).inputs)
    assert not torch.equal(sub.inputs, random_subset(train, 4, seed=2).inputs)
    rows = {tuple(r.flatten().tolist()) for r in train.inputs}
    assert all(tuple(r.flatten().tolist()) in rows for r in sub.inputs)
    with pytest.raises(ValueError, match="images_per_class=16"):
        random_subset(train, 16, seed=0)


def test_whole_set_baseline_uses_the_epoch_override() -> None:
    train, test = separable(20, 0), separable(20, 1)
    rows = evaluate_whole_set(train, test, dataclasses.replace(TINY, num_networks=1), seed=0, epochs=1)
    assert rows[0]["epochs"] == 1 and rows[0]["num_train"] == 20


def test_speed_options_run_on_cpu() -> None:
    train, test = separable(20, 0), separable(20, 1)
    base = dataclasses.replace(TINY, num_networks=1)
    (plain,) = evaluate_synthetic(train.inputs, train.labels, test, base, seed=0)
    (cl,) = evaluate_synthetic(train.inputs, train.labels, test, dataclasses.replace(base, channels_last=True), seed=0)
    assert cl["final_train_loss"] == pytest.approx(plain["final_train_loss"], rel=1e-4)
    (bf,) = evaluate_synthetic(train.inputs, train.labels, test, dataclasses.replace(base, precision="bf16"), seed=0)
    assert math.isfinite(bf["final_train_loss"])


def test_config_defaults_follow_the_reference() -> None:
    cfg = EvalConfig()
    assert (cfg.epochs, cfg.lr, cfg.momentum, cfg.weight_decay, cfg.batch_size, cfg.num_networks) == (
        300, 0.01, 0.9, 5e-4, 256, 20)
    assert EvalConfig(dsa=True).epochs == 1000
    assert cfg.decay_epoch == 150
    assert cfg.network == NetworkSpec() and cfg.model == "convnet"
    small = EvalConfig(network=NetworkSpec(width=32, depth=2))
    assert dict(small.model_kwargs) == {
        "width": 32, "depth": 2, "norm": "instancenorm", "activation": "relu", "pooling": "avgpooling"}
    assert EvalConfig(network=NetworkSpec(model="lenet")).model_kwargs == ()
    hash(small)


def test_network_seeds_are_distinct_and_stable() -> None:
    seeds = network_seeds(0, 5) + network_seeds(1, 5)
    assert len({s for pair in seeds for s in pair}) == 20
    assert network_seeds(0, 5) == network_seeds(0, 5)


@pytest.mark.parametrize(
    "field,value",
    [
        ("network", {"width": 8}),
        ("network", "convnet"),
        ("epochs", 0),
        ("epochs", 2.5),
        ("lr", 0.0),
        ("momentum", 1.0),
        ("weight_decay", -1e-4),
        ("lr_decay_factor", 0.0),
        ("lr_decay_fraction", 1.5),
        ("batch_size", 0),
        ("eval_batch_size", True),
        ("dsa", "yes"),
        ("dsa_strategy", "color_blur"),
        ("dsa_params", {"prob_flip": 0.5}),
        ("num_networks", 0),
        ("compile", 1),
        ("channels_last", None),
        ("precision", "fp16"),
    ],
)
def test_bad_config_values_raise_naming_the_field(field: str, value: object) -> None:
    with pytest.raises(ValueError, match=f"^{field}="):
        EvalConfig(**{field: value})


def test_bad_call_arguments() -> None:
    train = separable(4, 0)
    model = build_model("mlp", channels=64, num_classes=2, image_size=None)
    with pytest.raises(ValueError, match="learning_rate"):
        train_network(model, train.inputs, train.labels, TINY, generator=torch.Generator(), learning_rate=-1.0)
    with pytest.raises(ValueError, match="labels"):
        train_network(model, train.inputs, train.labels[:3], TINY, generator=torch.Generator())
    with pytest.raises(ValueError, match="dsa=True"):
        train_network(model, train.inputs.flatten(1), train.labels, dataclasses.replace(TINY, dsa=True),
                      generator=torch.Generator())


@pytest.mark.slow
def test_compiled_training_matches_eager() -> None:
    # torch.compile costs seconds to tens of seconds the first time in a process (cache cold).
    train, test = separable(20, 0), separable(20, 1)
    base = dataclasses.replace(TINY, num_networks=2)
    eager = evaluate_synthetic(train.inputs, train.labels, test, base, seed=0)
    compiled = evaluate_synthetic(train.inputs, train.labels, test, dataclasses.replace(base, compile=True), seed=0)
    for e, c in zip(eager, compiled):
        assert c["final_train_loss"] == pytest.approx(e["final_train_loss"], rel=1e-3)
