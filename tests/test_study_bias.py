"""Tests for the dataset-bias study (Lu et al. 2024) (fairdd.studies.bias): splits, measures, configs, claims."""

import dataclasses
import math

import numpy as np
import pandas as pd
import pytest
import torch

from fairdd.data import Dataset, RealSampler, bias_aligned
from fairdd.distill import DMConfig
from fairdd.evaluate import EvalConfig, random_subset
from fairdd import data, metrics, probe, results
from fairdd.studies import bias, bias_report


def _grey_source(per_class: int, *, seed: int = 0, size: int = 8) -> Dataset:
    """Grey 'digits': a bright random blob on black, ``per_class`` images of each of 10 classes."""
    g = torch.Generator().manual_seed(seed)
    n = 10 * per_class
    images = (torch.rand(n, 1, size, size, generator=g) > 0.6).float() * 0.9 + 0.05
    labels = torch.arange(10).repeat_interleave(per_class)
    return Dataset("toy", "train", images, labels, tuple(str(c) for c in range(10)))


# ----------------------------------------------------------------------------- splits


@pytest.mark.parametrize("ratio", [0.0, 0.1, 0.5, 0.8, 0.95, 1.0])
def test_make_splits_attribute_counts(ratio: float) -> None:
    per_class = 40
    splits = data.make_splits(_grey_source(per_class), _grey_source(20, seed=1), kind="colour", bias_ratio=ratio, severity=4)
    train = splits.train
    assert train.inputs.shape == (400, 3, 8, 8)
    aligned = bias_aligned(train.labels, train.attributes)
    for c in range(10):
        mine = train.labels == c
        # Lu et al.'s counts: round(n · r) aligned, the rest spread evenly over the 9 others.
        assert int(aligned[mine].sum()) == round(per_class * ratio)
        others = torch.bincount(train.attributes[mine & ~aligned], minlength=10)
        assert others[c] == 0
        if ratio < 1:
            expected = per_class * (1 - ratio) / 9
            assert (others[torch.arange(10) != c] - expected).abs().max() <= 1
    # The test splits: every image conflicting, then every image aligned.
    assert not bias_aligned(splits.test_conflicting.labels, splits.test_conflicting.attributes).any()
    assert bias_aligned(splits.test_aligned.labels, splits.test_aligned.attributes).all()
    assert torch.equal(splits.test_conflicting.labels, splits.test_aligned.labels)


def test_make_splits_corruption_kind() -> None:
    splits = data.make_splits(_grey_source(2), _grey_source(1, seed=1), kind="corruption", bias_ratio=1.0, severity=2)
    assert splits.train.inputs.shape == (20, 3, 8, 8)
    assert splits.train.attribute_name == "corruption"
    assert bias_aligned(splits.train.labels, splits.train.attributes).all()


def test_data_seeds_do_not_line_up_with_experiment_seeds() -> None:
    # Regression: with the attribute permutation seeded like the experiment's random subset,
    # a "random" subset took one attribute block per class. At ratio 0.5 a random subset of
    # 10 per class must mix aligned and conflicting images in most classes, for every seed.
    source = _grey_source(100)
    splits = data.make_splits(source, _grey_source(5, seed=1), kind="colour", bias_ratio=0.5, severity=4)
    for seed in range(4):
        subset = random_subset(splits.train, 10, seed=seed)
        aligned = bias_aligned(subset.labels, subset.attributes).view(10, 10).float().mean(1)
        assert int(((aligned > 0) & (aligned < 1)).sum()) >= 7


def test_make_splits_rejects_unknown_kind() -> None:
    with pytest.raises(ValueError, match="kind"):
        data.make_splits(_grey_source(2), _grey_source(1), kind="texture", bias_ratio=0.5, severity=1)


# ---------------------------------------------------------------------------- measures


def test_attribute_alignment_hand_case() -> None:
    labels = torch.tensor([0, 0, 0, 0, 1, 1, 2])
    predicted = torch.tensor([0, 0, 3, 0, 1, 0, 5])
    got = metrics.attribute_alignment(predicted, labels, num_classes=4)
    assert got[:3].tolist() == [0.75, 0.5, 0.0]
    assert math.isnan(got[3])  # class 3 has no image


def test_attribute_entropy_hand_case() -> None:
    labels = torch.tensor([0, 0, 0, 0, 1, 1, 1, 1, 2, 2])
    predicted = torch.tensor([3, 3, 3, 3, 0, 1, 2, 3, 4, 5])
    got = metrics.attribute_entropy(predicted, labels, num_classes=3, num_attributes=10)
    assert got[0] == 0.0  # one attribute only
    assert got[1] == pytest.approx(math.log(4) / math.log(10))  # four attributes, uniform
    assert got[2] == pytest.approx(math.log(2) / math.log(10))
    # Uniform over all attributes: exactly 1.
    full = metrics.attribute_entropy(torch.arange(10), torch.zeros(10, dtype=torch.long), num_classes=1)
    assert full[0] == pytest.approx(1.0)


def test_attribute_entropy_matches_scipy() -> None:
    from scipy.stats import entropy

    g = torch.Generator().manual_seed(3)
    predicted = torch.randint(0, 10, (50,), generator=g)
    labels = torch.randint(0, 3, (50,), generator=g)
    got = metrics.attribute_entropy(predicted, labels, num_classes=3)
    for c in range(3):
        counts = np.bincount(predicted[labels == c].numpy(), minlength=10)
        assert got[c] == pytest.approx(entropy(counts, base=10))


def test_attribute_entropy_rejects_out_of_range() -> None:
    with pytest.raises(ValueError, match="predicted attributes"):
        metrics.attribute_entropy(torch.tensor([10]), torch.tensor([0]), num_classes=1)


def test_pairwise_distance_hand_case() -> None:
    # Class 0: three 1×1×2 'images' (0,0), (3,4), (0,0): pair distances 5, 0, 5 → mean 10/3,
    # divided by √D = √2. Class 1: one image → NaN.
    images = torch.tensor([[0.0, 0.0], [3.0, 4.0], [0.0, 0.0], [1.0, 1.0]]).view(4, 1, 1, 2)
    labels = torch.tensor([0, 0, 0, 1])
    got = metrics.pairwise_distance(images, labels, num_classes=2)
    assert got[0] == pytest.approx(10 / 3 / math.sqrt(2))
    assert math.isnan(got[1])


def test_set_measures_with_a_constant_probe() -> None:
    class Constant(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            logits = torch.zeros(x.shape[0], 10)
            logits[:, 2] = 1.0  # always attribute 2
            return logits

    images = torch.randn(6, 1, 2, 2)
    labels = torch.tensor([0, 0, 1, 1, 2, 2])
    got = probe.set_measures(images, labels, Constant(), num_classes=3)
    assert got["aligned_fraction"] == pytest.approx(1 / 3)  # only class 2 is 'aligned'
    assert got["attribute_entropy"] == 0.0


# ----------------------------------------------------------------------------- configs


@pytest.mark.parametrize("profile", ["smoke", "cpu", "paper"])
def test_profiles_build_and_list_cells(profile: str) -> None:
    config = bias.BiasStudyConfig.for_profile(profile, corruption_source="fashion_mnist")
    cells = config.cells()
    per_ratio_seed = len(config.methods("colour")) + len(config.methods("corruption"))
    assert len(cells) == len(config.bias_ratios) * len(config.seeds) * per_ratio_seed
    assert len({c for c in cells}) == len(cells)  # distinct run ids
    table = bias.describe_profile(config)
    assert list(table.columns) == ["setting", "this build", "paper"]
    mine = dict(zip(table["setting"], table["this build"]))
    assert mine["profile"] == profile and "stand-in" in mine["data sets"]
    assert mine["images per class"] == str(config.images_per_class)


def test_paper_profile_is_the_reference_protocol() -> None:
    config = bias.BiasStudyConfig.for_profile("paper", corruption_source="cifar10")
    assert config.images_per_class == 50 and len(config.seeds) >= 3
    assert config.bias_ratios == (0.0, 0.1, 0.5, 0.8, 0.95, 1.0)
    assert config.dm.iterations == 20000 and config.dc.iterations == 1000
    assert config.dc.loops_for(50) == (50, 10)
    assert data.dataset_label(config.dataset("corruption")) == "CCIFAR10-DD"
    assert config.whole.epochs == 150 and config.dsa.augment and config.dsa.init == "real" and config.dc.init == "noise"


def test_cells_carry_the_method_settings() -> None:
    config = bias.BiasStudyConfig.for_profile("cpu", corruption_source="fashion_mnist")
    dm = config.cell("colour", 0.5, "dm", 0)
    balanced = config.cell("colour", 0.5, "dm_balanced", 0)
    assert dm.distill.real_sampling == "uniform" and balanced.distill.real_sampling == "group_balanced"
    assert dm.distill.dsa_strategy == "color_crop_cutout_scale_rotate"  # digits: no flip
    assert config.cell("corruption", 0.5, "dm", 0).distill.dsa_strategy.endswith("flip_scale_rotate")
    whole = config.cell("colour", 0.5, "whole", 0)
    assert whole.images_per_class is None and whole.evaluation == config.whole
    assert "stand-in" in data.dataset_label(config.dataset("corruption"))
    assert cells_probe_seed(config) == {0}
    # side_by_side: every set's evaluation networks side by side, in the run id only when on.
    on = dataclasses.replace(config, side_by_side=True)
    assert all(c.evaluation.side_by_side for c in on.cells())
    assert {results.run_id(c) for c in on.cells()}.isdisjoint(results.run_id(c) for c in config.cells())


def cells_probe_seed(config: bias.BiasStudyConfig) -> set[int]:
    """The attribute probes' seeds: each data set's data seed."""
    return {c.probe.seed for c in config.cells()}


def test_for_profile_options_set_the_data_sets() -> None:
    config = bias.BiasStudyConfig.for_profile("smoke", corruption_source="mnist", colour_severity=2,
                                              corruption_severity=5)
    colour, corruption = config.dataset("colour"), config.dataset("corruption")
    assert (colour.source, colour.bias) == ("mnist", data.BiasSpec("colour", 2))
    assert (corruption.source, corruption.bias) == ("mnist", data.BiasSpec("corruption", 5))
    with pytest.raises(ValueError, match="corruption_source"):
        bias.BiasStudyConfig.for_profile("smoke", corruption_source="svhn")
    with pytest.raises(ValueError, match="severity"):
        bias.BiasStudyConfig.for_profile("smoke", colour_severity=6)


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"bias_ratios": (0.1, 1.5)}, "bias_ratios"),
        ({"bias_ratios": (0.1, 0.1)}, "bias_ratios"),
        ({"bias_ratios": ()}, "bias_ratios"),
        ({"seeds": (0, 0)}, "seeds"),
        ({"seeds": (-1,)}, "seeds"),
        ({"colour_methods": ("dm", "mtt")}, "colour_methods"),
        ({"data": (bias.bias_data("mnist", "colour", 4),)}, "data"),
        ({"data": (bias.bias_data("mnist", "corruption", 4), bias.bias_data("mnist", "colour", 4))}, "data"),
        ({"data": (data.StudyData("mnist"), bias.bias_data("mnist", "corruption", 4))}, "data"),
        ({"images_per_class": 0}, "images_per_class"),
        ({"images_per_class": 7, "colour_methods": ("dc", "dm")}, "loops"),  # the DC loop table has no IPC 7
        ({"dsa": DMConfig()}, "dsa"),
        ({"evaluation": "fast"}, "evaluation"),
        ({"whole": "fast"}, "whole"),
        ({"data": (bias.bias_data("mnist", "colour", 4, train_per_class=1),
                   bias.bias_data("mnist", "corruption", 4))}, "train_per_class"),
        ({"side_by_side": 1}, "side_by_side"),
        ({"profile": "gpu"}, "profile"),
    ],
)
def test_study_config_validation(overrides: dict, field: str) -> None:
    base = bias.BiasStudyConfig.for_profile("cpu", corruption_source="fashion_mnist")
    with pytest.raises(ValueError, match=field):
        dataclasses.replace(base, **overrides)


def test_cell_and_data_validation() -> None:
    config = bias.BiasStudyConfig.for_profile("smoke", corruption_source="fashion_mnist")
    cell = config.cell("colour", 0.5, "dm", 0)
    with pytest.raises(ValueError, match="bias_ratio"):
        dataclasses.replace(cell, bias_ratio=1.2)
    with pytest.raises(ValueError, match="method"):
        dataclasses.replace(cell, method="mtt")
    with pytest.raises(ValueError, match="distill"):
        dataclasses.replace(cell, method="random")
    with pytest.raises(ValueError, match="images_per_class"):
        dataclasses.replace(cell, images_per_class=None)
    with pytest.raises(ValueError, match="data"):
        dataclasses.replace(cell, data=data.StudyData("mnist"))
    with pytest.raises(ValueError, match="source"):
        data.StudyData(source="cifar10", bias=data.BiasSpec("colour", 1))  # colour needs grey images
    with pytest.raises(ValueError, match="severity"):
        data.BiasSpec("colour", 0)
    with pytest.raises(ValueError, match="kind"):
        data.BiasSpec("texture", 1)
    with pytest.raises(ValueError, match="no bias"):
        data.study_data(data.StudyData("mnist"), 0.5)


def test_default_corruption_source(tmp_path) -> None:
    assert data.default_corruption_source(tmp_path) == "fashion_mnist"
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    for name in ("data_batch_1", "test_batch", "batches.meta"):
        (folder / name).write_bytes(b"")
    assert data.default_corruption_source(tmp_path) == "cifar10"


def test_balanced_baseline_is_group_balanced() -> None:
    # The draw of the "random_balanced" baseline: per class, every attribute group equally.
    splits = data.make_splits(_grey_source(90), _grey_source(1, seed=1), kind="colour", bias_ratio=0.8, severity=4)
    train = splits.train
    sampler = RealSampler(train.labels, 10, mode="group_balanced", attributes=train.attributes)
    index = sampler.sample(3, 10, torch.Generator().manual_seed(0))
    assert torch.bincount(train.attributes[index], minlength=10).tolist() == [1] * 10


# The report's tables, claims and verdicts: tests/test_bias_report.py


def test_eval_config_default_is_hashable_for_the_run_store() -> None:
    from fairdd import results

    config = bias.BiasStudyConfig.for_profile("smoke", corruption_source="fashion_mnist")
    ids = {results.run_id(c) for c in config.cells()}
    assert len(ids) == len(config.cells())
    assert isinstance(config.probe("colour").training, EvalConfig)
