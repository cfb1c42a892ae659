"""The chapters' studies, each written on one skeleton (:class:`Study`).

A study module declares its config (a frozen dataclass with ``for_profile``), its cells
(frozen dataclasses that embed every config that changes a result), one cell's computation
(``cell_rows``) and its report (tables, claims, figures); :class:`Study` runs the cells through
the run store and the worker pool. The methods themselves live in the package proper
(``fairdd.distill``, ``fairdd.debias``, ``fairdd.metrics``, ...).

:data:`STUDIES` names every chapter's study module (imported on first use).
"""

from __future__ import annotations

import importlib
from types import ModuleType

from fairdd.studies._study import Study, mean_std

__all__ = ["STUDIES", "Study", "mean_std", "study_module"]

#: Run store folder name → the module that declares the study.
STUDIES: dict[str, str] = {
    "dd_methods": "fairdd.studies.methods",
    "embedding_dd": "fairdd.studies.embedding",
    "bias_dd": "fairdd.studies.bias",
    "classwise_dd": "fairdd.studies.classwise",
}


def study_module(name: str) -> ModuleType:
    """The module of study ``name`` (a key of :data:`STUDIES`)."""
    if name not in STUDIES:
        raise ValueError(f"study={name!r} is not known; choose one of {sorted(STUDIES)}")
    return importlib.import_module(STUDIES[name])
