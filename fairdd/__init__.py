"""fairdd: how dataset and knowledge distillation change fairness and bias.

The public API lives in the submodules, each imported on first use (so ``import fairdd``
stays cheap for spawned worker processes):

- :mod:`fairdd.data` — data sets as tensors, bias construction, text embedding
- :mod:`fairdd.models` — ConvNet, AlexNet, LeNet, CIFAR ResNets, the MLP of Han et al. 2022,
  "Towards Fair Supervised Dataset Distillation for Text Classification"
- :mod:`fairdd.augment` — differentiable siamese augmentation (DSA)
- :mod:`fairdd.distill` — DC, DSA, DM, MTT and embedding distillation
- :mod:`fairdd.evaluate` — the field's evaluation protocol
- :mod:`fairdd.batched` — N independent networks trained side by side in one vmapped step
- :mod:`fairdd.metrics` — accuracy, class-wise and group fairness metrics, measures of a set
- :mod:`fairdd.kd` — knowledge distillation: teachers, students, the KD loss (a sibling of
  :mod:`fairdd.distill`: neither imports the other)
- :mod:`fairdd.probe` — the attribute probe that reads a set's bias attribute
- :mod:`fairdd.seeding` — every derived seed and random stream
- :mod:`fairdd.results` — the run store (config, tidy rows, provenance)
- :mod:`fairdd.records` — the runs recorded in ``records/`` that the book builds from
- :mod:`fairdd.parallel` — independent jobs as one-thread worker processes
- :mod:`fairdd.studies` — the few functions only one chapter needs
- :mod:`fairdd.sweep`, :mod:`fairdd.cli` — the ``fairdd`` command: a study's runs on the local pool or Ray
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_SUBMODULES = (
    "augment",
    "batched",
    "book",
    "config",
    "data",
    "debias",
    "distill",
    "evaluate",
    "fetch",
    "kd",
    "metrics",
    "models",
    "parallel",
    "paths",
    "plots",
    "probe",
    "records",
    "results",
    "seeding",
    "studies",
    "sweep",
    "training",
    "cli",
)
__all__ = ["__version__", *_SUBMODULES]


def __getattr__(name: str) -> Any:
    if name in _SUBMODULES:
        return importlib.import_module(f"fairdd.{name}")
    raise AttributeError(f"module 'fairdd' has no attribute {name!r}")
