"""fairdd.distill: the shared machinery (sampling, the one call, checkpoints, bad configs)."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from fairdd.data import Dataset, RealSampler
from fairdd.distill import METHODS, DCConfig, DistillConfig, DMConfig, MTTConfig, config_for, distill
from fairdd.models import NetworkSpec

SMALL = {"network": NetworkSpec(width=8, depth=2)}


def toy_dataset(classes: int = 4, per_class: int = 16, size: int = 8, *, attributes: bool = False) -> Dataset:
    """Separable toy images: a class mean pattern plus noise, ``(K·n, 1, size, size)``."""
    g = torch.Generator().manual_seed(0)
    labels = torch.arange(classes).repeat_interleave(per_class)
    means = torch.randn(classes, 1, size, size, generator=g)
    inputs = means[labels] + 0.5 * torch.randn(classes * per_class, 1, size, size, generator=g)
    attrs = (torch.arange(classes * per_class) % 3 == 0).long() if attributes else None
    return Dataset("toy", "train", inputs, labels, classes=tuple("abcdefgh"[:classes]), attributes=attrs)


# ----------------------------------------------------------------------------- RealSampler


def test_uniform_sampler_draws_distinct_images_of_the_class() -> None:
    labels = torch.tensor([0, 1, 0, 2, 1, 0, 2, 2, 0])
    sampler = RealSampler(labels, 3)
    g = torch.Generator().manual_seed(1)
    for _ in range(20):
        idx = sampler.sample(0, 3, g)
        assert idx.numel() == 3 and idx.unique().numel() == 3
        assert (labels[idx] == 0).all()
    # Fewer images than asked: all of them (the reference's permutation[:n]).
    assert sorted(sampler.sample(1, 10, g).tolist()) == [1, 4]


def test_group_balanced_sampler_gives_every_group_an_equal_share() -> None:
    # Class 0: 8 of group 0, 2 of group 1; class 1: 5 of group 0 only.
    labels = torch.tensor([0] * 10 + [1] * 5)
    attrs = torch.tensor([0] * 8 + [1] * 2 + [0] * 5)
    sampler = RealSampler(labels, 2, mode="group_balanced", attributes=attrs)
    g = torch.Generator().manual_seed(0)
    idx = sampler.sample(0, 4, g)
    assert (labels[idx] == 0).all()
    assert torch.bincount(attrs[idx], minlength=2).tolist() == [2, 2]
    assert idx.unique().numel() == 4  # each group has at least 2: no replacement needed
    # Group 1 has only 2 images but its share of 8 is 4: 2 distinct + 2 drawn with replacement.
    idx = sampler.sample(0, 8, g)
    assert torch.bincount(attrs[idx], minlength=2).tolist() == [4, 4]
    assert set(idx[attrs[idx] == 1].tolist()) <= {8, 9}
    # Odd n: the remainder goes to one group.
    counts = sorted(torch.bincount(attrs[sampler.sample(0, 5, g)], minlength=2).tolist())
    assert counts == [2, 3]
    # One group present: plain sampling within it.
    assert sorted(sampler.sample(1, 5, g).tolist()) == [10, 11, 12, 13, 14]


def test_group_balanced_needs_attributes() -> None:
    with pytest.raises(ValueError, match="attributes"):
        RealSampler(torch.tensor([0, 1]), 2, mode="group_balanced")


def test_weighted_sampler_respects_zero_weights() -> None:
    labels = torch.tensor([0, 0, 0, 0, 1, 1])
    weights = torch.tensor([1.0, 0.0, 2.0, 0.0, 1.0, 1.0])
    sampler = RealSampler(labels, 2, weights=weights)
    g = torch.Generator().manual_seed(0)
    for _ in range(10):
        assert set(sampler.sample(0, 5, g).tolist()) == {0, 2}  # capped at the positive weights
    with pytest.raises(ValueError, match="no positive weight"):
        RealSampler(labels, 2, weights=torch.tensor([0.0, 0, 0, 0, 1, 1]))
    with pytest.raises(ValueError, match="sample_weights"):
        RealSampler(labels, 2, weights=torch.tensor([-1.0, 1, 1, 1, 1, 1]))


def test_sampler_rejects_an_empty_class() -> None:
    with pytest.raises(ValueError, match=r"classes \[1\]"):
        RealSampler(torch.tensor([0, 0, 2]), 3)


# ----------------------------------------------------------------------------- configs


@pytest.mark.parametrize(
    ("factory", "field", "value"),
    [
        (DCConfig, "iterations", 0),
        (DCConfig, "init", "zeros"),
        (DCConfig, "lr_img", 0.0),
        (DCConfig, "distance", "l1"),
        (DCConfig, "real_sampling", "stratified"),
        (DCConfig, "network", NetworkSpec(model="mlp")),  # not an image network
        (DMConfig, "network", {"width": 8}),
        (DCConfig, "dsa_strategy", "color_jitter"),
        (DMConfig, "batch_real", 0),
        (DMConfig, "momentum_img", 1.5),
        (MTTConfig, "syn_steps", 0),
        (MTTConfig, "max_start_epoch", 49),  # 48 + 3 > 50 expert epochs
        (MTTConfig, "batch_syn", 0),
    ],
)
def test_bad_config_values_name_the_field(factory: type, field: str, value: object) -> None:
    with pytest.raises(ValueError, match=field):
        factory(**{field: value})


def test_bad_loop_table() -> None:
    with pytest.raises(ValueError, match="outer_loop"):
        DCConfig(loops={1: (0, 1)})
    with pytest.raises(ValueError, match="must be"):
        DCConfig(loops={1: (1,)})


def test_unknown_method_and_profile() -> None:
    with pytest.raises(ValueError, match="method='kip'"):
        config_for("kip", "paper")
    with pytest.raises(ValueError, match="profile='laptop'"):
        config_for("dm", "laptop")
    with pytest.raises(ValueError, match="not a distillation config"):
        distill(toy_dataset(), object(), images_per_class=1, seed=0)


def test_method_table_lists_every_method() -> None:
    assert list(METHODS) == ["dc", "dsa", "dm", "mtt"]
    for name, row in METHODS.items():
        assert issubclass(row.config, DistillConfig)
        assert row.for_profile("smoke").method == name and type(row.for_profile("smoke")) is row.config


def test_common_fields_live_in_the_base_config() -> None:
    import dataclasses as dc

    common = {f.name for f in dc.fields(DistillConfig)}
    assert {"network", "iterations", "lr_img", "momentum_img", "init", "real_sampling", "augment",
            "dsa_strategy", "dsa_params", "checkpoint_every"} == common
    for cls in (DCConfig, DMConfig, MTTConfig):
        assert common <= {f.name for f in dc.fields(cls)}
    cfg = dataclasses.replace(config_for("dm", "smoke"), iterations=5, network=NetworkSpec(width=4))
    assert (cfg.iterations, cfg.network.width) == (5, 4)
    with pytest.raises(ValueError, match="iterations=0"):
        dataclasses.replace(cfg, iterations=0)


@pytest.mark.parametrize("method", ["dc", "dsa", "dm", "mtt"])
@pytest.mark.parametrize("profile", ["smoke", "paper"])
def test_every_profile_builds_a_valid_config(method: str, profile: str) -> None:
    cfg = config_for(method, profile)
    assert cfg.method == method
    if method in ("dc", "dsa"):
        assert cfg.loops_for(1) and cfg.loops_for(10)


@pytest.mark.parametrize("method", ["dc", "dsa", "dm", "mtt"])
def test_a_cpu_protocol_is_the_studies_not_the_methods(method: str) -> None:
    """Profiles live in the studies: a method config has the reference and smoke only, and a
    cpu request names where the studies state theirs."""
    with pytest.raises(ValueError, match=rf"profile='cpu'.*MethodsStudyConfig.*\.{method}"):
        config_for(method, "cpu")


def test_paper_profiles_are_the_reference_settings() -> None:
    dc, dsa, dm, mtt = (config_for(m, "paper") for m in ("dc", "dsa", "dm", "mtt"))
    assert (dc.iterations, dc.lr_img, dc.momentum_img, dc.lr_net, dc.batch_real, dc.init) == (1000, 0.1, 0.5, 0.01, 256, "noise")
    assert [dc.loops_for(i) for i in (1, 10, 20, 30, 40, 50)] == [(1, 1), (10, 50), (20, 25), (30, 20), (40, 15), (50, 10)]
    assert dc.match_1d is False and not dc.augment and dsa.augment and dsa.init == "real"
    assert (dm.iterations, dm.lr_img, dm.batch_real, dm.init, dm.augment) == (20000, 1.0, 256, "real", True)
    assert (mtt.syn_steps, mtt.expert_epochs, mtt.max_start_epoch, mtt.lr_img, mtt.lr_lr, mtt.lr_init) == (
        20, 3, 25, 1000.0, 1e-5, 0.01
    )
    assert (mtt.num_experts, mtt.expert_train_epochs, mtt.expert_lr, mtt.iterations) == (100, 50, 0.01, 5000)
    for cfg in (dc, dm, mtt):
        assert cfg.network == NetworkSpec()
        assert (cfg.network.model, cfg.network.width, cfg.network.depth, cfg.network.norm) == (
            "convnet", 128, 3, "instancenorm"
        )


def test_bad_calls_fail_before_any_work(tmp_path) -> None:
    train = toy_dataset()
    cfg = DCConfig(iterations=1, batch_real=4, **SMALL)
    with pytest.raises(ValueError, match="images_per_class=0"):
        distill(train, cfg, images_per_class=0, seed=0, checkpoint_dir=tmp_path, progress=False)
    with pytest.raises(ValueError, match="images_per_class=7 has no entry in loops"):
        distill(train, cfg, images_per_class=7, seed=0, checkpoint_dir=tmp_path, progress=False)
    with pytest.raises(ValueError, match="seed"):
        distill(train, cfg, images_per_class=1, seed=-1, checkpoint_dir=tmp_path, progress=False)
    with pytest.raises(ValueError, match="group_balanced"):
        distill(train, DMConfig(real_sampling="group_balanced", **SMALL), images_per_class=1, seed=0,
                checkpoint_dir=tmp_path, progress=False)
    assert list(tmp_path.iterdir()) == []  # nothing was written


def test_checkpoint_of_another_run_is_refused(tmp_path) -> None:
    train = toy_dataset()
    cfg = DMConfig(iterations=2, batch_real=4, augment=False, **SMALL)
    distill(train, cfg, images_per_class=1, seed=0, checkpoint_dir=tmp_path, progress=False)
    with pytest.raises(ValueError, match="another run"):
        distill(train, cfg, images_per_class=1, seed=1, checkpoint_dir=tmp_path, progress=False)


def test_a_damaged_checkpoint_is_set_aside_with_a_warning_and_the_run_recomputed(tmp_path) -> None:
    train = toy_dataset()
    cfg = DMConfig(iterations=3, batch_real=4, augment=False, checkpoint_every=2, **SMALL)
    first = distill(train, cfg, images_per_class=1, seed=0, checkpoint_dir=tmp_path, progress=False)
    checkpoint = tmp_path / "distill.pt"
    data = bytearray(checkpoint.read_bytes())
    data[len(data) // 2] ^= 0xFF  # one flipped byte: the SHA-256 written with it no longer matches
    checkpoint.write_bytes(bytes(data))
    with pytest.warns(RuntimeWarning, match="distill.pt is damaged"):
        again = distill(train, cfg, images_per_class=1, seed=0, checkpoint_dir=tmp_path, progress=False)
    assert torch.equal(first.images, again.images) and first.losses == again.losses
    assert list(tmp_path.glob(".damaged-distill.pt-*"))


def test_finished_checkpoint_makes_a_rerun_return_at_once(tmp_path) -> None:
    train = toy_dataset()
    cfg = DMConfig(iterations=3, batch_real=4, augment=False, checkpoint_every=2, **SMALL)
    first = distill(train, cfg, images_per_class=1, seed=0, checkpoint_dir=tmp_path, progress=False)
    calls: list[int] = []
    again = distill(train, cfg, images_per_class=1, seed=0, checkpoint_dir=tmp_path, progress=False,
                    callback=lambda done, loss: calls.append(done))
    assert calls == []
    assert torch.equal(first.images, again.images) and first.losses == again.losses


def test_group_balanced_run_and_labels() -> None:
    train = toy_dataset(attributes=True)
    cfg = dataclasses.replace(config_for("dm", "smoke"), real_sampling="group_balanced", batch_real=6)
    out = distill(train, cfg, images_per_class=3, seed=0, progress=False)
    assert out.images.shape == (12, 1, 8, 8)
    assert out.labels.tolist() == [0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3]
    assert out.learning_rate is None and len(out.losses) == cfg.iterations
    assert out.network == NetworkSpec(width=8, depth=2)
    assert out.evaluation_config().network == out.network


def test_optimise_reads_losses_back_at_checkpoint_boundaries_only(monkeypatch) -> None:
    # No host sync per iteration: tensors returned by the step are converted in batches at
    # multiples of checkpoint_every and at the end; with a callback, every iteration.
    from fairdd.distill import _common

    values = torch.tensor([1.1, 2.3, 0.7, 5.9, 3.3], dtype=torch.float32)
    batches: list[int] = []
    real = _common._as_floats

    def spy(pending, divisor):
        batches.append(len(pending))
        return real(pending, divisor)

    monkeypatch.setattr(_common, "_as_floats", spy)

    def run(callback=None) -> list[float]:
        return _common.optimise(
            lambda it: values[it].clone(), tensors={}, optimizers={}, generator=torch.Generator(), iterations=5,
            checkpoint_dir=None, checkpoint_every=2, run_id="x", progress=False, callback=callback, desc="t",
            loss_divisor=3,
        )

    expected = [v.item() / 3 for v in values]
    assert expected != [(v / 3).item() for v in values]  # the division must follow the conversion
    assert run() == expected and batches == [2, 2, 1]
    batches.clear()
    seen: list[tuple[int, float]] = []
    assert run(lambda done, loss: seen.append((done, loss))) == expected and batches == [1] * 5
    assert seen == list(zip(range(1, 6), expected))


def test_to_device_on_the_cpu_is_the_tensor() -> None:
    from fairdd.training import to_device

    t = torch.arange(5)
    assert to_device(t, torch.device("cpu")) is t.to("cpu")
    assert torch.equal(to_device(t, "cpu"), t)
