"""The skeleton every chapter's study is written on.

A study declares four things and nothing else:

* its **config** — a frozen dataclass with a ``for_profile(profile, **overrides)`` class method
  (``"smoke"``, ``"cpu"``, ``"paper"``) and a ``cells()`` method;
* its **cells** — frozen dataclasses, one per independent run, that embed every config that
  changes a result (the cell *is* the run's identity: :func:`fairdd.results.run_id` hashes it);
* how **one cell** is computed — ``compute(cell, root) -> list[dict]``, tidy rows, one per
  trained model (and, optionally, how a job's cells are computed **together** —
  ``compute_group(cells, root) -> rows per cell``, e.g. students trained side by side);
* how rows are **summarised** — functions of the rows in the study's module (or its
  ``*_report`` module), with :func:`mean_std` for the ``"mean ± std"`` cells of a table.

:class:`Study` does the rest: it skips finished cells, runs the others through the run store
(:func:`fairdd.results.run`) in one-thread worker processes (:func:`fairdd.parallel.map_processes`),
most expensive first, and stores and loads the synthetic sets a page draws. A sweep command or a
cluster scheduler runs exactly the same cells.
"""

from __future__ import annotations

import contextlib
import functools
import os
import shutil
import time
from collections.abc import Callable, Hashable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import torch

from fairdd import results
from fairdd.data import Dataset
from fairdd.distill import SyntheticSet, distill
from fairdd.evaluate import random_subset
from fairdd.parallel import Progress, map_processes
from fairdd.paths import results_root

__all__ = ["Study", "mean_std"]

Root = str | Path | None
Compute = Callable[[Any, Root], list[dict[str, Any]]]


@dataclass(frozen=True)
class Study:
    """A sweep of independent cells through the run store.

    Attributes
    ----------
    name : the run store folder (``results/<name>/<run_id>/``).
    compute : ``compute(cell, root) -> rows``, one cell's computation; an importable module-level
        function (worker processes receive it by pickle).
    cost : ``cost(cell) -> number``, a relative cost; unfinished cells start most expensive first
        so the workers finish together. ``None``: the cells' own order.
    group : ``group(cell) -> key``; cells with one key run in one worker job, in order (for
        cells that share expensive set-up, e.g. one biased data set). ``None``: one job per cell.
    prepare : ``prepare(cells, root, processes)``, called once before the unfinished ``cells``
        run (shared work they all read, e.g. a probe or expert trajectories). ``None``: nothing.
    compute_group : ``compute_group(cells, root) -> [rows of cells[0], rows of cells[1], ...]``,
        a worker job's unfinished cells computed together (the cells of one ``group`` key); each
        cell's rows are then stored as its own run, as :attr:`compute`'s would be. It must give
        every cell the rows :attr:`compute` gives it alone, up to what the cell's own config
        says may differ (e.g. a ``batched`` cell: float tolerance), and keep its own resumable
        checkpoint (in :meth:`group_checkpoint`). ``None``: cell by cell. A single cell, :meth:`run_cell` and a Ray sweep
        (one task per cell) use :attr:`compute`.
    """

    name: str
    compute: Compute
    cost: Callable[[Any], float] | None = None
    group: Callable[[Any], Hashable] | None = None
    prepare: Callable[[list[Any], Root, int | None], None] | None = None
    compute_group: Callable[[list[Any], Root], list[list[dict[str, Any]]]] | None = None

    def __post_init__(self) -> None:
        if not self.name or not self.name.replace("_", "").isalnum():
            raise ValueError(f"name={self.name!r} must be a non-empty folder name of letters, digits and '_'")

    # ------------------------------------------------------------------ running
    def run_cell(self, cell: Any, root: Root = None) -> pd.DataFrame:
        """One cell's rows: read if finished, else computed and stored first."""
        return results.run(self.name, cell, functools.partial(self.compute, cell, root), root=root)

    def is_finished(self, cell: Any, root: Root = None) -> bool:
        return results.is_finished(self.name, cell, root=root)

    def run(
        self,
        cells: Sequence[Any],
        *,
        processes: int | None = None,
        root: Root = None,
        progress: Callable[[int, int], None] | None = None,
    ) -> pd.DataFrame:
        """Every cell through the run store; all rows, in the order of ``cells``.

        Finished cells are only read. ``processes``: worker processes for the unfinished ones
        (``None``: one per CPU; use 1 on a GPU). ``progress(done, total)``, if given, is called
        with the unfinished cells' count once ``prepare`` is done (``done=0``) and again as each
        worker job finishes (``done``: cells finished so far; the ``fairdd`` command's progress line).
        Without ``progress``, when ``$FAIRDD_PROGRESS`` names a file, a progress line (runs done /
        total, elapsed, time left) is appended to it per finished job: ``make book`` shows that
        file in its terminal while the notebooks run.
        """
        cells = list(cells)
        if not cells:
            raise ValueError(f"study {self.name!r}: no cells to run")
        if len(set(cells)) != len(cells):
            raise ValueError(f"study {self.name!r}: the cells repeat a run")
        todo = [c for c in cells if not self.is_finished(c, root)]
        progress_file = None
        if progress is None and todo and os.environ.get("FAIRDD_PROGRESS"):
            # `make book` shows this in its terminal (a notebook's own output would be in the page).
            progress_file = open(os.environ["FAIRDD_PROGRESS"], "a", buffering=1, encoding="utf-8")  # noqa: SIM115
            progress = Progress(self.name, stream=progress_file)
        try:
            self._run_todo(todo, processes=processes, root=root, progress=progress)
        finally:
            if progress_file is not None:
                progress_file.close()
        return pd.concat([self.run_cell(c, root) for c in cells], ignore_index=True)

    def _run_todo(
        self, todo: list[Any], *, processes: int | None, root: Root, progress: Callable[[int, int], None] | None
    ) -> None:
        if todo:
            if self.prepare is not None:
                self.prepare(todo, root, processes)
            jobs = self._jobs(todo)
            on_done = None
            if progress is not None:
                progress(0, len(todo))
                finished = [0]

                def on_done(index: int, _: Any) -> None:
                    finished[0] += len(jobs[index])
                    progress(finished[0], len(todo))

            # Workers get the name and the compute functions only (cost/group/prepare need not pickle).
            map_processes(
                functools.partial(_run_job, self.name, self.compute, root=root, compute_group=self.compute_group),
                jobs, processes=processes, on_done=on_done,
            )

    def _jobs(self, todo: list[Any]) -> list[list[Any]]:
        if self.group is None:
            jobs = [[c] for c in todo]
        else:
            by_key: dict[Hashable, list[Any]] = {}
            for c in todo:
                by_key.setdefault(self.group(c), []).append(c)
            jobs = list(by_key.values())
        if self.cost is not None:
            jobs.sort(key=lambda job: -sum(self.cost(c) for c in job))  # stable: ties keep their order
        return jobs

    @contextlib.contextmanager
    def group_checkpoint(self, cells: Sequence[Any], root: Root = None) -> Iterator[Path]:
        """The resumable checkpoint folder of ``cells`` computed together (in
        :attr:`compute_group`), named by their run ids so that another group has its own; removed
        when the ``with`` block finishes, kept when it raises (or the process is killed), so the
        next try resumes from it."""
        folder = results.checkpoint_dir(self.name, {"side_by_side": [results.run_id(c) for c in cells]}, root=root)
        yield folder
        shutil.rmtree(folder, ignore_errors=True)

    # ----------------------------------------------------------- synthetic sets
    def training_set(
        self, cell: Any, train: Dataset, method: str, *, images_per_class: int | None, seed: int,
        distill: Any = None, root: Root = None,
    ) -> tuple[torch.Tensor, torch.Tensor, SyntheticSet | None, float]:
        """``(images, labels, synthetic, distill_seconds)`` a cell's networks train on: the whole
        set (``method="whole"``), a class-stratified random real subset of ``images_per_class``
        (``"random"``, :func:`fairdd.evaluate.random_subset`), or else the set ``distill`` makes
        (:meth:`distill_cell`, saved for the page); ``synthetic`` is ``None`` for the first two."""
        if method == "whole":
            return train.inputs, train.labels, None, 0.0
        if method == "random":
            subset = random_subset(train, images_per_class, seed=seed)
            return subset.inputs, subset.labels, None, 0.0
        synthetic, seconds = self.distill_cell(cell, train, distill, images_per_class=images_per_class, seed=seed, root=root)
        return synthetic.images, synthetic.labels, synthetic, seconds

    def distill_cell(
        self, cell: Any, train: Dataset, config: Any, *, images_per_class: int, seed: int, root: Root = None,
        save: bool = True,
    ) -> tuple[SyntheticSet, float]:
        """Distil ``train`` for ``cell`` (:func:`fairdd.distill.distill` with ``config``), its
        resumable checkpoints in the cell's run folder; the set and the seconds it took. With
        ``save`` the set is kept for the page (:meth:`save_synthetic`)."""
        start = time.perf_counter()
        synthetic = distill(
            train,
            config,
            images_per_class=images_per_class,
            seed=seed,
            checkpoint_dir=results.checkpoint_dir(self.name, cell, root=root),
            progress=False,
        )
        seconds = time.perf_counter() - start
        if save:
            self.save_synthetic(cell, synthetic.images, synthetic.labels, root)
        return synthetic, seconds

    def synthetic_file(self, cell: Any, root: Root = None) -> Path:
        """Where a cell's synthetic set is kept: ``<results>/<name>/synthetic/<run_id>.pt``."""
        return (Path(root) if root is not None else results_root()) / self.name / "synthetic" / f"{results.run_id(cell)}.pt"

    def save_synthetic(self, cell: Any, images: torch.Tensor, labels: torch.Tensor, root: Root = None) -> None:
        results.save_checkpoint(self.synthetic_file(cell, root), {"images": images.cpu(), "labels": labels.cpu()})

    def load_synthetic(self, cell: Any, root: Root = None) -> dict[str, torch.Tensor]:
        """The ``{"images", "labels"}`` a cell saved; ``FileNotFoundError`` if it has not run."""
        path = self.synthetic_file(cell, root)
        saved = results.load_checkpoint(path)
        if saved is None:
            raise FileNotFoundError(
                f"no synthetic set for run {results.run_id(cell)} of study {self.name!r} at {path}; run the study first"
            )
        if set(saved) != {"images", "labels"} or len(saved["images"]) != len(saved["labels"]):
            raise ValueError(f"{path}: not a synthetic set (keys {sorted(saved)}); delete it and re-run the cell")
        return saved


def _run_job(
    name: str, compute: Compute, job: list[Any], *, root: Root,
    compute_group: Callable[[list[Any], Root], list[list[dict[str, Any]]]] | None = None,
) -> None:
    study = Study(name=name, compute=compute)
    todo = [c for c in job if not study.is_finished(c, root)]
    if compute_group is not None and len(todo) > 1:
        grouped = compute_group(todo, root)
        if len(grouped) != len(todo):
            raise RuntimeError(f"study {name!r}: compute_group gave rows for {len(grouped)} of {len(todo)} cells")
        for cell, rows in zip(todo, grouped):
            results.run(name, cell, functools.partial(_given, rows), root=root)
        return
    for cell in todo:
        study.run_cell(cell, root)


def _given(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return rows


def mean_std(values: pd.Series | Sequence[float], *, scale: float = 1.0, digits: int = 1) -> str:
    """``"mean ± std"`` text of ``values × scale`` (sample std, ddof 1); just the mean for one value."""
    x = pd.Series(values, dtype=float) * scale
    if len(x) == 0:
        raise ValueError("mean_std of no values")
    if len(x) == 1 or x.isna().all():
        return f"{x.mean():.{digits}f}"
    return f"{x.mean():.{digits}f} ± {x.std(ddof=1):.{digits}f}"
