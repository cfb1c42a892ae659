"""Lu et al.'s biased splits of an image data set: the training set at a bias ratio and two test splits.

Lu et al. 2024, "Exploring the Impact of Dataset Bias on Dataset Distillation"
(``yaolu-zjut/Biased-DD@34f4231``), build, from a grey or colour image set, a training set at
bias ratio ``r`` (:func:`fairdd.data.make_biased`) and tests on *bias-conflicting* images
(``r = 0``, the paper's test set); we add a *bias-aligned* split (``r = 1``) of the same test
images. A :class:`fairdd.data.StudyData` with a ``bias`` (:class:`fairdd.data.BiasSpec`: kind,
severity) names one such data set (source, sizes and seed in the spec).

All splits of such a data set are normalised with one fixed per-channel statistic
(:func:`normalization_stats`): that of the unbiased (``r = 0.1``) colouring of the training
images. With balanced classes the attribute marginal is uniform at every ratio, so the
statistic is the same up to jitter, and one fixed input space lets one attribute probe
(:mod:`fairdd.probe`) read every synthetic set.

The construction draws from seeds derived from ``StudyData.data_seed`` and a purpose (which
images are kept — both splits' subsets from one seed, unlike :meth:`fairdd.data.StudyData.load`'s
:func:`fairdd.seeding.subset_seeds` —, the training attributes, the two test colourings, the
probe's data), see :func:`fairdd.seeding.data_seed`; changing any of them changes every number
of the bias study.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import torch

from fairdd.config import check_choice
from fairdd.data._bias import N_ATTRIBUTES, make_biased
from fairdd.data._container import Dataset
from fairdd.data._load import load_dataset
from fairdd.data._sampling import stratified_subset
from fairdd.data._spec import BIAS_KINDS, BIAS_SOURCES
from fairdd.data._transforms import channel_stats, normalize_splits
from fairdd.paths import data_root
from fairdd.seeding import data_seed

if TYPE_CHECKING:
    from fairdd.data._spec import BiasSpec, StudyData

__all__ = [
    "BIAS_KINDS",
    "BIAS_SOURCES",
    "BiasSplits",
    "NUM_ATTRIBUTES",
    "dataset_label",
    "default_corruption_source",
    "make_splits",
    "normalization_stats",
    "probe_data",
    "source_images",
    "study_data",
]

BiasKind = Literal["colour", "corruption"]
NUM_ATTRIBUTES = N_ATTRIBUTES  # colours / corruptions, one per class (Lu et al.)
# Purposes of the data-construction seeds: which images are kept, the training attributes,
# the two test colourings, the probe's data. See fairdd.seeding.data_seed.
_SUBSET, _TRAIN, _CONFLICTING, _ALIGNED, _PROBE_TRAIN, _PROBE_TEST = range(6)


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


def _bias(data: StudyData) -> BiasSpec:
    """The bias of ``data``; a ``ValueError`` naming the spec when it has none."""
    if getattr(data, "bias", None) is None:
        raise ValueError(f"data={data!r} has no bias (bias=fairdd.data.BiasSpec(kind, severity)); "
                         "its splits come from StudyData.load()")
    return data.bias


def dataset_label(data: StudyData) -> str:
    """The page's name of a biased data set, marking the stand-in as one."""
    if _bias(data).kind == "colour":
        return "CMNIST-DD" if data.source == "mnist" else f"colour-biased {data.source} (stand-in for CMNIST-DD)"
    if data.source == "cifar10":
        return "CCIFAR10-DD"
    name = {"fashion_mnist": "Fashion-MNIST", "mnist": "MNIST"}[data.source]
    return f"corrupted {name} (stand-in for CCIFAR10-DD)"


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
    severity : colour jitter level 1–5 (σ = 0.05, 0.02, 0.01, 0.005, 0.002) or CIFAR-10-C
        level 1–5 (Lu et al.'s severities 1–4 are CIFAR-10-C levels 2–5).
    seed : the data seed; the three splits draw from distinct seeds derived from it.

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
def source_images(data: StudyData) -> tuple[Dataset, Dataset]:
    """The unbiased ``(train, test)`` source images of ``data`` in [0, 1], subset to its sizes
    (:func:`stratified_subset`, both splits seeded ``data_seed(data.data_seed, _SUBSET)``;
    cached per process)."""
    _bias(data)
    train = load_dataset(data.source, "train")
    test = load_dataset(data.source, "test")
    seed = data_seed(data.data_seed, _SUBSET)
    return stratified_subset(train, data.train_per_class, seed), stratified_subset(test, data.test_per_class, seed)


def _unbiased(data: StudyData, source: Dataset, purpose: int) -> Dataset:
    bias = _bias(data)
    return make_biased(
        source, kind=bias.kind, bias_ratio=0.1, severity=bias.severity, seed=data_seed(data.data_seed, purpose)
    )


@functools.lru_cache(maxsize=4)
def normalization_stats(data: StudyData) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel mean and std of the unbiased (r = 0.1) training set: the fixed normalisation
    of every split of ``data`` (module docstring; cached per process)."""
    train, _ = source_images(data)
    return channel_stats(_unbiased(data, train, _PROBE_TRAIN).inputs)


@functools.lru_cache(maxsize=2)
def study_data(data: StudyData, bias_ratio: float) -> tuple[Dataset, Dataset]:
    """Normalised ``(train, test)`` of one data set at one ratio (cached per process).

    ``test`` is the bias-conflicting split followed by the bias-aligned one, so one trained
    network gives both accuracies: :func:`fairdd.evaluate.accuracy_report`'s
    ``acc_bias_conflicting`` is then the conflicting split's accuracy and ``acc_bias_aligned``
    the aligned split's.
    """
    train_source, test_source = source_images(data)
    bias = _bias(data)
    splits = make_splits(
        train_source, test_source, kind=bias.kind, bias_ratio=bias_ratio, severity=bias.severity, seed=data.data_seed
    )
    test = Dataset.concat(splits.test_conflicting, splits.test_aligned, name=f"{splits.train.name}-test")
    train, test, _ = normalize_splits(splits.train, test, stats=normalization_stats(data))
    return train, test


def probe_data(data: StudyData) -> tuple[Dataset, Dataset]:
    """Normalised ``(train, test)`` for the attribute probe: unbiased (r = 0.1) colourings of
    the training and of the test source images, attributes independent of the labels."""
    train_source, test_source = source_images(data)
    train = _unbiased(data, train_source, _PROBE_TRAIN)
    test = _unbiased(data, test_source, _PROBE_TEST)
    train, test, _ = normalize_splits(train, test, stats=normalization_stats(data))
    return train, test
