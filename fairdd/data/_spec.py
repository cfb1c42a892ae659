"""The data a study trains and tests on: one spec for every study (:class:`StudyData`).

Every study names its data with a :class:`StudyData` embedded in its cells (so the data are part
of each run's id), and loads it with :meth:`StudyData.load`: the two splits of one data set of
:data:`fairdd.data.LOADERS`, each a class-stratified random subset
(:func:`fairdd.data.stratified_subset`) whose seed is derived from ``data_seed`` in
:mod:`fairdd.seeding`, and the protected attributes read on the test split. What a study then
does with the splits (normalisation, ZCA whitening, colour or corruption bias) is its own step;
the bias construction of Lu et al. reads the ``bias`` field (:func:`fairdd.data.study_data`).
"""

from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass
from typing import Any

import torch

from fairdd.config import check_choice, check_int
from fairdd.data._container import Dataset
from fairdd.data._load import DATASETS, load_dataset
from fairdd.data._sampling import stratified_subset
from fairdd.seeding import subset_seeds

__all__ = ["BIAS_KINDS", "BIAS_SOURCES", "BiasSpec", "StudyData"]

#: The biases of Lu et al.'s construction (:mod:`fairdd.data._biased_splits`).
BIAS_KINDS: tuple[str, ...] = ("colour", "corruption")
#: Source image sets each kind of bias can be built on (colour needs grey images).
BIAS_SOURCES = {"colour": ("mnist", "fashion_mnist"), "corruption": ("cifar10", "fashion_mnist", "mnist")}

#: Sources generated with shape, texture and colour features (their size fields apply).
_GENERATED = ("trifeature",)
#: Sources whose loader stores one protected attribute of its own (sex, race, ...).
_TABULAR = ("adult", "compas", "german")
_TRIFEATURE_FEATURES = ("colour", "texture")
#: Sources whose loader reads one of several protected attributes by name (``attribute=``).
_NAMED_ATTRIBUTES = {"trifeature": _TRIFEATURE_FEATURES, "hatexplain": ("gender", "race")}


@dataclass(frozen=True)
class BiasSpec:
    """A colour or corruption bias built into the data (Lu et al., "Exploring the Impact of
    Dataset Bias on Dataset Distillation"; :mod:`fairdd.data._biased_splits`).

    Attributes
    ----------
    kind : ``"colour"`` (CMNIST-DD construction, grey source images) or ``"corruption"``.
    severity : colour jitter level 1–5 or CIFAR-10-C level 1–5.
    """

    kind: str
    severity: int

    def __post_init__(self) -> None:
        check_choice("kind", self.kind, BIAS_KINDS)
        check_int("severity", self.severity, minimum=1, maximum=5)


@dataclass(frozen=True)
class StudyData:
    """Which data a study uses.

    Attributes
    ----------
    source : a data set of :data:`fairdd.data.DATASETS`.
    train_per_class, test_per_class : class-stratified random subsets of the splits
        (``None``: every row).
    data_seed : seeds the subsets (through :func:`fairdd.seeding.subset_seeds`), Trifeature's
        generator and the bias construction.
    attributes : the protected attributes read on the test split. Trifeature: ``"colour"``
        and/or ``"texture"``; Adult, COMPAS, German: their loader's one attribute (name it, e.g.
        ``"sex"``); HateXplain: ``"gender"`` and/or ``"race"`` (the groups its posts target); empty:
        none.
    samples_per_combination, image_size : Trifeature's size (800 / 200 combinations × this many
        images per split; canvas side). ``None`` for every other source.
    test_samples_per_combination : Trifeature's test images per combination when they differ
        from the training split's (``None``: ``samples_per_combination``). Test images are cheap to
        generate, and a group measure needs many per (class, group) cell (issue 23). Part of the
        run id only when set.
    zca : ZCA-whiten the splits after normalisation (MTT's reference pipeline for CIFAR); a study
        that whitens reads it.
    bias : the colour or corruption bias of Lu et al. built into the splits (read by
        :func:`fairdd.data.study_data`); ``None``: the data as they are.
    """

    source: str
    train_per_class: int | None = None
    test_per_class: int | None = None
    data_seed: int = 0
    attributes: tuple[str, ...] = ()
    samples_per_combination: int | None = None
    image_size: int | None = None
    zca: bool = False
    bias: BiasSpec | None = None
    test_samples_per_combination: int | None = dataclasses.field(default=None, metadata={"run_id": "unless_default"})

    def __post_init__(self) -> None:
        check_choice("source", self.source, DATASETS)
        for name in ("train_per_class", "test_per_class"):
            if getattr(self, name) is not None:
                check_int(name, getattr(self, name), minimum=1)
        check_int("data_seed", self.data_seed, minimum=0)
        if not isinstance(self.attributes, tuple) or len(set(self.attributes)) != len(self.attributes):
            raise ValueError(f"attributes={self.attributes!r} must be a tuple of distinct attribute names")
        if self.source == "trifeature":
            for a in self.attributes:
                check_choice("attributes", a, _TRIFEATURE_FEATURES)
            check_int("samples_per_combination", self.samples_per_combination, minimum=1)
            check_int("image_size", self.image_size, minimum=16)
            if self.test_samples_per_combination is not None:
                check_int("test_samples_per_combination", self.test_samples_per_combination, minimum=1)
        else:
            for name in ("samples_per_combination", "image_size", "test_samples_per_combination"):
                if getattr(self, name) is not None:
                    raise ValueError(f"{name}={getattr(self, name)!r} is for source 'trifeature' only (source={self.source!r})")
            if self.source in _NAMED_ATTRIBUTES:
                for a in self.attributes:
                    check_choice("attributes", a, _NAMED_ATTRIBUTES[self.source])
            elif self.attributes and self.source not in _TABULAR:
                raise ValueError(
                    f"attributes={self.attributes!r}: source {self.source!r} stores no protected attribute "
                    f"(only {_GENERATED + _TABULAR + tuple(_NAMED_ATTRIBUTES)} do)"
                )
            elif len(self.attributes) > 1:
                raise ValueError(f"attributes={self.attributes!r}: source {self.source!r} stores one attribute")
        if not isinstance(self.zca, bool):
            raise ValueError(f"zca={self.zca!r} must be True or False")
        if self.bias is not None:
            if not isinstance(self.bias, BiasSpec):
                raise ValueError(f"bias={self.bias!r} must be a fairdd.data.BiasSpec or None")
            if self.source not in BIAS_SOURCES[self.bias.kind]:
                raise ValueError(
                    f"source={self.source!r}: a {self.bias.kind} bias is built on one of {BIAS_SOURCES[self.bias.kind]}"
                )
            if self.attributes or self.zca:
                raise ValueError(f"{self!r}: a biased data set carries its own attribute and is not whitened")

    def load(self, **options: Any) -> tuple[Dataset, Dataset, dict[str, torch.Tensor]]:
        """``(train, test, {attribute: test attributes})``: the raw splits (images in [0, 1]),
        each a class-stratified subset, and the attributes of :attr:`attributes` read on the
        test rows. Cached per process. Not for a ``bias`` spec (its splits are built by
        :func:`fairdd.data.study_data`). ``options`` go to the loader: what a study's own
        step sets rather than the data, e.g. a text source's ``tokenizer`` and ``max_length``
        (:func:`fairdd.data.load_dataset`)."""
        if self.bias is not None:
            raise ValueError(f"{self!r} has a bias: its splits come from fairdd.data.study_data(data, bias_ratio)")
        return _load(self, tuple(sorted(options.items())))


@functools.lru_cache(maxsize=4)
def _load(data: StudyData, loader_options: tuple[tuple[str, Any], ...] = ()) -> tuple[Dataset, Dataset, dict[str, torch.Tensor]]:
    options = dict(loader_options)
    if data.source == "trifeature":
        options.update({"samples_per_combination": data.samples_per_combination, "image_size": data.image_size,
                        "seed": data.data_seed})
    first = data.attributes[0] if data.source in _NAMED_ATTRIBUTES and data.attributes else None
    if first is not None:
        options["attribute"] = first
    test_options = dict(options)
    if data.source == "trifeature" and data.test_samples_per_combination is not None:
        test_options["samples_per_combination"] = data.test_samples_per_combination
    train = load_dataset(data.source, "train", **options)
    test = load_dataset(data.source, "test", **test_options)
    train_seed, test_seed = subset_seeds(data.data_seed)
    train = stratified_subset(train, data.train_per_class, train_seed)
    attributes: dict[str, torch.Tensor] = {}
    for name in data.attributes:
        if data.source in _NAMED_ATTRIBUTES and name != first:
            # The same rows (Trifeature: same seed and combinations); only the stored attribute differs.
            values = load_dataset(data.source, "test", **{**test_options, "attribute": name}).attributes
        else:
            values = test.attributes
        if values is None or (data.source not in _NAMED_ATTRIBUTES and test.attribute_name != name):
            raise ValueError(
                f"attributes={data.attributes!r}: source {data.source!r} stores "
                f"{test.attribute_name!r} as its protected attribute"
            )
        # The test split's draw (same labels, same seed: the same rows), kept for this attribute.
        attributes[name] = stratified_subset(dataclasses.replace(test, attributes=values), data.test_per_class,
                                             test_seed).attributes
    test = stratified_subset(test, data.test_per_class, test_seed)
    return train, test, attributes
