"""Lu et al.'s biased splits of an image data set: the training set at a bias ratio and two test splits.

Lu et al. 2024, "Exploring the Impact of Dataset Bias on Dataset Distillation"
(``yaolu-zjut/Biased-DD@34f4231``), build, from a grey or colour image set, a training set at
bias ratio ``r`` (:func:`fairdd.data.make_biased`) and tests on *bias-conflicting* images
(``r = 0``, the paper's test set); we add a *bias-aligned* split (``r = 1``) of the same test
images. :class:`DataSpec` names one such data set (source, kind, severity, sizes, seed).

All splits of a :class:`DataSpec` are normalised with one fixed per-channel statistic
(:func:`normalization_stats`): that of the unbiased (``r = 0.1``) colouring of the training
images. With balanced classes the attribute marginal is uniform at every ratio, so the
statistic is the same up to jitter, and one fixed input space lets one attribute probe
(:mod:`fairdd.probe`) read every synthetic set.

The construction draws from seeds derived from ``DataSpec.data_seed`` and a purpose (which
images are kept, the training attributes, the two test colourings, the probe's data), see
:func:`fairdd.seeding.data_seed`; changing any of them changes every number of the bias study.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import torch

from fairdd.config import check_choice, check_int
from fairdd.data._bias import N_ATTRIBUTES, make_biased
from fairdd.data._container import Dataset
from fairdd.data._load import load_dataset
from fairdd.data._sampling import stratified_index
from fairdd.data._transforms import channel_stats, normalize_splits
from fairdd.paths import data_root
from fairdd.seeding import data_seed

__all__ = [
    "BIAS_KINDS",
    "BIAS_SOURCES",
    "BiasSplits",
    "DataSpec",
    "NUM_ATTRIBUTES",
    "dataset_label",
    "default_corruption_source",
    "make_splits",
    "normalization_stats",
    "probe_data",
    "source_images",
    "stratified_subset",
    "study_data",
]

BiasKind = Literal["colour", "corruption"]
BIAS_KINDS: tuple[str, ...] = ("colour", "corruption")
#: Source image sets each kind of bias can be built on (colour needs grey images).
BIAS_SOURCES = {"colour": ("mnist", "fashion_mnist"), "corruption": ("cifar10", "fashion_mnist", "mnist")}
NUM_ATTRIBUTES = N_ATTRIBUTES  # colours / corruptions, one per class (Lu et al.)
# Purposes of the data-construction seeds: which images are kept, the training attributes,
# the two test colourings, the probe's data. See fairdd.seeding.data_seed.
_SUBSET, _TRAIN, _CONFLICTING, _ALIGNED, _PROBE_TRAIN, _PROBE_TEST = range(6)


@dataclass(frozen=True)
class DataSpec:
    """Which biased data set: the source images, the bias kind and severity, the sizes.

    Attributes
    ----------
    source : grey (``"mnist"``, ``"fashion_mnist"``) or colour (``"cifar10"``, corruption only).
    kind : ``"colour"`` (CMNIST-DD construction, needs grey images) or ``"corruption"``.
    severity : colour jitter level 1–5 (σ = 0.05, 0.02, 0.01, 0.005, 0.002) or CIFAR-10-C
        level 1–5 (Lu et al.'s severities 1–4 are CIFAR-10-C levels 2–5).
    train_per_class : keep a class-stratified random subset of this many training images per
        class (``None``: all); every ratio uses the same images.
    test_per_class : the same for the test images (each test split has this many per class).
    data_seed : seeds the subsets, the attribute assignment and the colour/corruption draws.
    """

    source: str
    kind: BiasKind
    severity: int
    train_per_class: int | None = None
    test_per_class: int | None = None
    data_seed: int = 0

    def __post_init__(self) -> None:
        check_choice("kind", self.kind, BIAS_KINDS)
        check_choice("source", self.source, BIAS_SOURCES[self.kind])
        check_int("severity", self.severity, minimum=1, maximum=5)
        for name in ("train_per_class", "test_per_class"):
            if getattr(self, name) is not None:
                check_int(name, getattr(self, name), minimum=1)
        check_int("data_seed", self.data_seed, minimum=0)


@dataclass(frozen=True)
class BiasSplits:
    """The biased training set and the two test splits, in [0, 1] (not yet normalised)."""

    train: Dataset
    test_conflicting: Dataset
    test_aligned: Dataset


def default_corruption_source(root: str | Path | None = None) -> str:
    """``"cifar10"`` when the CIFAR-10 python batches are under the data root, else ``"fashion_mnist"``."""
    folder = Path(root if root is not None else data_root()) / "cifar-10-batches-py"
    present = all((folder / f).is_file() for f in ("data_batch_1", "test_batch", "batches.meta"))
    return "cifar10" if present else "fashion_mnist"


def dataset_label(data: DataSpec) -> str:
    """The page's name of a data set, marking the stand-in as one."""
    if data.kind == "colour":
        return "CMNIST-DD" if data.source == "mnist" else f"colour-biased {data.source} (stand-in for CMNIST-DD)"
    if data.source == "cifar10":
        return "CCIFAR10-DD"
    name = {"fashion_mnist": "Fashion-MNIST", "mnist": "MNIST"}[data.source]
    return f"corrupted {name} (stand-in for CCIFAR10-DD)"


def stratified_subset(dataset: Dataset, per_class: int | None, seed: int) -> Dataset:
    """A class-stratified random subset that keeps the data set's row order.

    The rows of :func:`fairdd.data.stratified_index` (``keep_order=True``): per class, the first
    ``per_class`` rows of a ``torch.randperm`` of the class's rows from the generator of
    ``seed`` — all of a class's rows when it has fewer — in their original order.
    ``per_class=None`` returns ``dataset`` itself.

    :func:`fairdd.evaluate.random_subset` draws the same rows but returns them class by class
    in draw order (and raises for a short class); the order matters here, since
    :func:`fairdd.data.make_biased` assigns attributes by a permutation of each class's rows
    in row order.
    """
    if per_class is None:
        return dataset
    return dataset.subset(stratified_index(dataset.labels, per_class, seed, keep_order=True).to(dataset.labels.device))


def make_splits(
    train_source: Dataset,
    test_source: Dataset,
    *,
    kind: BiasKind,
    bias_ratio: float,
    severity: int,
    seed: int = 0,
) -> BiasSplits:
    """Lu et al.'s splits from unbiased source images.

    Parameters
    ----------
    train_source, test_source : image sets with 10 classes, ``(N, C, H, W)`` in [0, 1] (grey
        for ``kind="colour"``).
    kind : ``"colour"`` or ``"corruption"``.
    bias_ratio : the training set's ratio; the test splits use 0 (every image
        bias-conflicting, the paper's test set) and 1 (every image bias-aligned).
    severity, seed : see :class:`DataSpec`; the three splits draw from distinct seeds.

    Returns
    -------
    BiasSplits, each with ``attributes`` set.
    """
    check_choice("kind", kind, BIAS_KINDS)
    make = functools.partial(make_biased, kind=kind, severity=severity)
    return BiasSplits(
        train=make(train_source, bias_ratio=bias_ratio, seed=data_seed(seed, _TRAIN)),
        test_conflicting=make(test_source, bias_ratio=0.0, seed=data_seed(seed, _CONFLICTING)),
        test_aligned=make(test_source, bias_ratio=1.0, seed=data_seed(seed, _ALIGNED)),
    )


@functools.lru_cache(maxsize=4)
def source_images(data: DataSpec) -> tuple[Dataset, Dataset]:
    """The unbiased ``(train, test)`` source images of ``data`` in [0, 1], subset to its sizes
    (:func:`stratified_subset`; cached per process)."""
    train = load_dataset(data.source, "train")
    test = load_dataset(data.source, "test")
    seed = data_seed(data.data_seed, _SUBSET)
    return stratified_subset(train, data.train_per_class, seed), stratified_subset(test, data.test_per_class, seed)


def _unbiased(data: DataSpec, source: Dataset, purpose: int) -> Dataset:
    return make_biased(
        source, kind=data.kind, bias_ratio=0.1, severity=data.severity, seed=data_seed(data.data_seed, purpose)
    )


@functools.lru_cache(maxsize=4)
def normalization_stats(data: DataSpec) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel mean and std of the unbiased (r = 0.1) training set: the fixed normalisation
    of every split of ``data`` (module docstring; cached per process)."""
    train, _ = source_images(data)
    return channel_stats(_unbiased(data, train, _PROBE_TRAIN).inputs)


@functools.lru_cache(maxsize=2)
def study_data(data: DataSpec, bias_ratio: float) -> tuple[Dataset, Dataset]:
    """Normalised ``(train, test)`` of one data set at one ratio (cached per process).

    ``test`` is the bias-conflicting split followed by the bias-aligned one, so one trained
    network gives both accuracies: :func:`fairdd.evaluate.accuracy_report`'s
    ``acc_bias_conflicting`` is then the conflicting split's accuracy and ``acc_bias_aligned``
    the aligned split's.
    """
    train_source, test_source = source_images(data)
    splits = make_splits(
        train_source, test_source, kind=data.kind, bias_ratio=bias_ratio, severity=data.severity, seed=data.data_seed
    )
    test = Dataset.concat(splits.test_conflicting, splits.test_aligned, name=f"{splits.train.name}-test")
    train, test, _ = normalize_splits(splits.train, test, stats=normalization_stats(data))
    return train, test


def probe_data(data: DataSpec) -> tuple[Dataset, Dataset]:
    """Normalised ``(train, test)`` for the attribute probe: unbiased (r = 0.1) colourings of
    the training and of the test source images, attributes independent of the labels."""
    train_source, test_source = source_images(data)
    train = _unbiased(data, train_source, _PROBE_TRAIN)
    test = _unbiased(data, test_source, _PROBE_TEST)
    train, test, _ = normalize_splits(train, test, stats=normalization_stats(data))
    return train, test
