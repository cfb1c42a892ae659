"""The chapters' studies, each written on one skeleton (:class:`Study`).

A study module declares its config (a frozen dataclass with ``for_profile``), its cells
(frozen dataclasses that embed every config that changes a result), one cell's computation
(``cell_rows``) and its report (tables, claims, figures); :class:`Study` runs the cells through
the run store and the worker pool. The methods themselves live in the package proper
(``fairdd.distill``, ``fairdd.debias``, ``fairdd.metrics``, ...).

:data:`STUDIES` names every chapter's study module (imported on first use); :func:`config_class`
finds a study's config class (what the ``fairdd`` command builds from ``--profile`` and ``--set``):
the module's ``CONFIG`` if it declares one, else the class that ``run_study``'s ``config``
parameter is annotated with — so a study written on the skeleton needs nothing more.
"""

from __future__ import annotations

import dataclasses
import importlib
import typing
from types import ModuleType

from fairdd.studies._study import Study, mean_std

__all__ = ["STUDIES", "Study", "config_class", "mean_std", "study_module"]

#: Run store folder name → the module that declares the study.
STUDIES: dict[str, str] = {
    "dd_methods": "fairdd.studies.methods",
    "embedding_dd": "fairdd.studies.embedding",
    "bias_dd": "fairdd.studies.bias",
    "classwise_dd": "fairdd.studies.classwise",
    "kd_fairness": "fairdd.studies.kd",
    "kd_text": "fairdd.studies.kd_text",
    "compare_dd_kd": "fairdd.studies.compare",
}


def study_module(name: str) -> ModuleType:
    """The module of study ``name`` (a key of :data:`STUDIES`)."""
    if name not in STUDIES:
        raise ValueError(f"study={name!r} is not known; choose one of {sorted(STUDIES)}")
    return importlib.import_module(STUDIES[name])


def config_class(name: str) -> type:
    """The config dataclass of study ``name``: the module's ``CONFIG``, else the annotation of
    ``run_study``'s ``config`` parameter; it has ``for_profile(profile, ...)`` and ``cells()``."""
    module = study_module(name)
    cls = getattr(module, "CONFIG", None)
    if cls is None and callable(getattr(module, "run_study", None)):
        cls = typing.get_type_hints(module.run_study).get("config")
    if not (isinstance(cls, type) and dataclasses.is_dataclass(cls) and hasattr(cls, "for_profile") and hasattr(cls, "cells")):
        raise TypeError(
            f"study {name!r} ({module.__name__}): no config class found; declare CONFIG = <the config dataclass> "
            "or annotate run_study(config: <the config dataclass>, ...)"
        )
    return cls
