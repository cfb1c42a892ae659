"""What the knowledge-distillation studies share: their teachers, trained before the cells, and
students trained side by side.

A teacher is trained once per protocol, seed and training set and cached
(:func:`fairdd.kd.teacher`; every student of a seed reads it). :func:`prepare_teachers` is the
``prepare`` hook's work in both KD studies (:mod:`fairdd.studies.kd`,
:mod:`fairdd.studies.compare`): every teacher the unfinished cells read, trained in parallel worker
processes before the cells run, so that the workers do not wait on one another's claims.
:func:`students_side_by_side` is the side-by-side training of a study's ``compute_together``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Hashable, Iterable
from pathlib import Path
from typing import Any

import torch

from fairdd import kd
from fairdd.data import Dataset
from fairdd.parallel import job_progress, map_processes
from fairdd.studies._study import Root
from fairdd.training import TrainLog

__all__ = ["TeacherJob", "prepare_teachers", "students_side_by_side"]

#: ``(load, args, spec)``: the teacher of ``spec`` on the training set ``load(*args)`` — ``load``
#: a module-level function (worker processes receive it by pickle), ``args`` hashable.
TeacherJob = tuple[Callable[..., Dataset], tuple[Hashable, ...], kd.TeacherSpec]


def prepare_teachers(jobs: Iterable[TeacherJob], root: Root, processes: int | None) -> None:
    """Train (or find cached) every teacher of ``jobs``, each once, in ``processes`` worker
    processes; nothing travels back (the teachers are read from the cache by the cells)."""
    unique = list(dict.fromkeys(jobs))
    if unique:
        map_processes(functools.partial(_train_teacher, root=root), unique, processes=processes,
                      on_done=job_progress("KD teachers (trained, or read from the cache)", len(unique), unit="teacher"))


def _train_teacher(job: TeacherJob, *, root: Root) -> None:
    load, args, spec = job
    kd.teacher(spec, load(*args), root=root)


def students_side_by_side(
    configs: list[kd.KDConfig], train: Dataset, *, seed: int, spec: kd.TeacherSpec, teacher_model: torch.nn.Module,
    root: Root, checkpoint: Path,
) -> list[tuple[torch.nn.Module, TrainLog]]:
    """The students of ``configs`` (one protocol; T and α may differ) of seed ``seed``, trained
    side by side (:func:`fairdd.kd.students`) from the teacher of ``spec``, with its cached
    outputs when the students do not augment; resumable from ``checkpoint/students.pt``."""
    cached: Any = None
    if any(c.alpha > 0 and not c.augment for c in configs):
        cached = kd.teacher_logits(spec, train, teacher_model, root=root, batch_size=configs[0].eval_batch_size)
    return kd.students(configs, train, seed=seed, teacher_model=teacher_model, cached_logits=cached,
                       checkpoint=Path(checkpoint) / "students.pt")
