"""What only the dataset-distillation studies need of the skeleton: a cell's training set and
the distilled set it keeps for the page.

A DD study's cell trains networks on the whole training split, on a class-stratified random
real subset, or on a set that a distillation method makes (:func:`training_set`); the
distilled set is made with its resumable checkpoints in the cell's checkpoint folder
(:func:`distill_cell`) and kept beside the study's runs, ``<results>/<study>/synthetic/<run_id>.pt``,
for the page to draw (:func:`save_synthetic`, :func:`load_synthetic`).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import torch

from fairdd import results
from fairdd.data import Dataset
from fairdd.distill import SyntheticSet, distill
from fairdd.evaluate import random_subset
from fairdd.paths import results_root
from fairdd.studies._study import Root, Study

__all__ = ["distill_cell", "load_synthetic", "save_synthetic", "synthetic_file", "training_set"]


def training_set(
    study: Study, cell: Any, train: Dataset, method: str, *, images_per_class: int | None, seed: int,
    distill_config: Any = None, root: Root = None,
) -> tuple[torch.Tensor, torch.Tensor, SyntheticSet | None, float]:
    """``(images, labels, synthetic, distill_seconds)`` a cell's networks train on: the whole
    set (``method="whole"``), a class-stratified random real subset of ``images_per_class``
    (``"random"``, :func:`fairdd.evaluate.random_subset`), or else the set ``distill_config``
    makes (:func:`distill_cell`, saved for the page); ``synthetic`` is ``None`` for the first two."""
    if method == "whole":
        return train.inputs, train.labels, None, 0.0
    if method == "random":
        subset = random_subset(train, images_per_class, seed=seed)
        return subset.inputs, subset.labels, None, 0.0
    synthetic, seconds = distill_cell(study, cell, train, distill_config, images_per_class=images_per_class, seed=seed,
                                      root=root)
    return synthetic.images, synthetic.labels, synthetic, seconds


def distill_cell(
    study: Study, cell: Any, train: Dataset, config: Any, *, images_per_class: int, seed: int, root: Root = None,
    save: bool = True,
) -> tuple[SyntheticSet, float]:
    """Distil ``train`` for ``cell`` (:func:`fairdd.distill.distill` with ``config``), its
    resumable checkpoints in the cell's checkpoint folder; the set and the seconds it took. With
    ``save`` the set is kept for the page (:func:`save_synthetic`)."""
    start = time.perf_counter()
    synthetic = distill(
        train,
        config,
        images_per_class=images_per_class,
        seed=seed,
        checkpoint_dir=results.checkpoint_dir(study.name, cell, root=root),
        progress=False,
    )
    seconds = time.perf_counter() - start
    if save:
        save_synthetic(study, cell, synthetic.images, synthetic.labels, root)
    return synthetic, seconds


def synthetic_file(study: Study, cell: Any, root: Root = None) -> Path:
    """Where a cell's synthetic set is kept: ``<results>/<study>/synthetic/<run_id>.pt``."""
    return (Path(root) if root is not None else results_root()) / study.name / "synthetic" / f"{results.run_id(cell)}.pt"


def save_synthetic(study: Study, cell: Any, images: torch.Tensor, labels: torch.Tensor, root: Root = None) -> None:
    results.save_checkpoint(synthetic_file(study, cell, root), {"images": images.cpu(), "labels": labels.cpu()})


def load_synthetic(study: Study, cell: Any, root: Root = None) -> dict[str, torch.Tensor]:
    """The ``{"images", "labels"}`` a cell saved; ``FileNotFoundError`` if it has not run."""
    path = synthetic_file(study, cell, root)
    saved = results.load_checkpoint(path)
    if saved is None:
        raise FileNotFoundError(
            f"no synthetic set for run {results.run_id(cell)} of study {study.name!r} at {path}; run the study first"
        )
    if set(saved) != {"images", "labels"} or len(saved["images"]) != len(saved["labels"]):
        raise ValueError(f"{path}: not a synthetic set (keys {sorted(saved)}); delete it and re-run the cell")
    return saved
