"""Bad inputs are refused with a clear error before any work starts."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from fairdd import metrics
from fairdd.data import Dataset, load_dataset
from fairdd.distill import DMConfig, distill
from fairdd.evaluate import EvalConfig, evaluate_synthetic
from fairdd.models import NetworkSpec
from fairdd.seeding import generator, network_seeds
from tests.test_distill_common import SMALL, toy_dataset

DM_CFG = DMConfig(iterations=2, init="real", batch_real=8, augment=False, **SMALL)

EVAL = EvalConfig(network=NetworkSpec(width=8, depth=1), epochs=1, num_networks=1)


class Boom:
    """A callback that fails the test if any iteration runs."""

    def __call__(self, *_):
        raise AssertionError("work started before the input was checked")


def test_nan_images_to_distill_are_refused_before_work() -> None:
    train = toy_dataset()
    images = train.inputs.clone()
    images[3, 0, 0, 0] = float("nan")
    bad = dataclasses.replace(train, inputs=images)
    with pytest.raises(ValueError, match=r"train\.inputs holds NaN or infinite values in 1 .*row 3"):
        distill(bad, DM_CFG, images_per_class=1, seed=0, progress=False, callback=Boom())


def test_a_checkpoint_dir_that_is_a_file_is_refused_before_work(tmp_path) -> None:
    path = tmp_path / "ck"
    path.write_text("")
    with pytest.raises(ValueError, match="is a file, not a folder"):
        distill(toy_dataset(), DM_CFG, images_per_class=1, seed=0, progress=False, checkpoint_dir=path, callback=Boom())


@pytest.mark.parametrize("seed", [2**64, -1, 2**63])
def test_out_of_range_seeds_are_refused(seed: int) -> None:
    with pytest.raises(ValueError, match=r"\[0, 2\*\*63 - 1\]"):
        distill(toy_dataset(), DM_CFG, images_per_class=1, seed=seed, progress=False, callback=Boom())
    with pytest.raises(ValueError, match="seed"):
        generator(seed)
    with pytest.raises(ValueError, match="seed"):
        network_seeds(seed, 1)


def test_nan_or_empty_training_sets_are_refused_by_evaluate() -> None:
    test = toy_dataset()
    images, labels = test.inputs.clone(), test.labels
    images[0, 0, 0, 0] = float("nan")
    with pytest.raises(ValueError, match="NaN or infinite"):
        evaluate_synthetic(images, labels, test, EVAL, seed=0)
    with pytest.raises(ValueError, match="empty"):
        evaluate_synthetic(test.inputs[:0], labels[:0], test, EVAL, seed=0)
    with pytest.raises(ValueError, match="classes"):
        evaluate_synthetic(test.inputs, labels + 50, test, EVAL, seed=0)


def test_a_test_set_of_another_image_size_is_refused_before_training() -> None:
    train = toy_dataset()
    small = dataclasses.replace(train, inputs=torch.nn.functional.interpolate(train.inputs, size=4))
    with pytest.raises(ValueError, match="resize one to the other"):
        evaluate_synthetic(train.inputs, train.labels, small, EVAL, seed=0)


@pytest.mark.parametrize("name", ["mnist", "compas", "german"])
def test_empty_splits_are_refused(name: str) -> None:
    with pytest.raises(ValueError, match=r"test_fraction=1\.0 must be < 1"):
        load_dataset(name, "train", test_fraction=1.0)


def test_a_dataset_with_labels_outside_its_classes_is_refused() -> None:
    x = torch.zeros(3, 2)
    with pytest.raises(ValueError, match=r"labels hold 0\.\.5; allowed 0\.\.1"):
        Dataset("toy", "train", x, torch.tensor([0, 1, 5]), ("a", "b"))
    with pytest.raises(ValueError, match="labels hold -1"):
        Dataset("toy", "train", x, torch.tensor([0, -1, 1]), ("a", "b"))
    with pytest.raises(ValueError, match="attributes hold 0..2"):
        Dataset("toy", "train", x, torch.tensor([0, 1, 1]), ("a", "b"), torch.tensor([0, 2, 1]), "g", ("u", "v"))
    with pytest.raises(ValueError, match="integer class indices"):
        Dataset("toy", "train", x, torch.tensor([0.0, 1.0, 1.0]), ("a", "b"))


def test_nan_group_values_are_refused_by_fairness_metrics() -> None:
    y = np.array([0, 1, 0, 1])
    groups = np.array([0.0, 1.0, np.nan, 1.0])
    for fn in (metrics.demographic_parity_difference, metrics.equalized_odds_difference, metrics.group_accuracy):
        with pytest.raises(ValueError, match="sensitive_features holds NaN"):
            fn(y, y, sensitive_features=groups)
    with pytest.raises(ValueError, match="missing values"):
        metrics.group_accuracy(y, y, sensitive_features=np.array(["a", None, "b", "a"], dtype=object))


def test_huge_class_indices_are_refused_not_allocated() -> None:
    with pytest.raises(ValueError, match="class index 1000000000.*num_classes="):
        metrics.classwise_accuracy([0, 10**9], [0, 0])
    with pytest.raises(ValueError, match="num_classes=10 but the labels hold class index 1000000000"):
        metrics.classwise_accuracy([0, 10**9], [0, 0], num_classes=10)


def test_string_labels_to_metrics_are_a_clear_error() -> None:
    with pytest.raises(ValueError, match="y_true must hold integer class indices.*map class names"):
        metrics.accuracy(["cat", "dog"], [0, 1])
    with pytest.raises(ValueError, match="NaN"):
        metrics.accuracy([0.0, float("nan")], [0, 1])
