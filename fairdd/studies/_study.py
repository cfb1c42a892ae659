"""The skeleton every chapter's study is written on.

A study declares four things and nothing else:

* its **config** — a frozen dataclass with a ``for_profile(profile, **overrides)`` class method
  (``"smoke"``, ``"cpu"``, ``"paper"``) and a ``cells()`` method;
* its **cells** — frozen dataclasses, one per independent run, that embed every config that
  changes a result (the cell *is* the run's identity: :func:`fairdd.results.run_id` hashes it);
* how **one cell** is computed — ``compute(cell, root) -> list[dict]``, tidy rows, one per
  trained model (and, optionally, which cells may be computed **together** and how —
  ``together(cell) -> key`` and ``compute_together(cells, root, checkpoint) -> rows per cell``,
  e.g. students trained side by side);
* how rows are **summarised** — functions of the rows in the study's module (or its
  ``*_report`` module), with :func:`mean_std` for the ``"mean ± std"`` cells of a table.

:class:`Study` does the rest: it skips finished cells, runs the others through the run store
(:func:`fairdd.results.run`) in one-thread worker processes (:func:`fairdd.parallel.map_processes`),
most expensive first, and runs the cells that may be computed together through one call with a
resumable checkpoint of their own. A sweep command or a cluster scheduler runs exactly the same
cells. Helpers that only the dataset-distillation studies need (the training set of a cell, its
distilled set kept for the page) are in :mod:`fairdd.studies._dd`.
"""

from __future__ import annotations

import contextlib
import functools
import shutil
from collections.abc import Callable, Hashable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from fairdd import results
from fairdd.parallel import Progress, map_processes

__all__ = ["Study", "mean_std"]

Root = str | Path | None
Rows = list[dict[str, Any]]
Compute = Callable[[Any, Root], Rows]
ComputeTogether = Callable[[list[Any], Root, Path], list[Rows]]


@dataclass(frozen=True)
class Study:
    """A sweep of independent cells through the run store.

    Attributes
    ----------
    name : the run store folder (``results/<name>/<run_id>/``).
    compute : ``compute(cell, root) -> rows``, one cell's computation; an importable module-level
        function (worker processes receive it by pickle).
    cost : ``cost(cell) -> number``, a relative cost; unfinished cells start most expensive first
        so the workers finish together. ``None``: the price of the cell's :attr:`work`
        (:func:`fairdd.studies._work.cell_cost`) when the study declares it, else the cells' own order.
    group : ``group(cell) -> key``; cells with one key run in one worker job, in order (for
        cells that share expensive set-up, e.g. one biased data set). ``None``: one job per cell.
    prepare : ``prepare(cells, root, processes)``, called once before the unfinished ``cells``
        run (shared work they all read, e.g. a probe or expert trajectories). ``None``: nothing.
    together : ``together(cell) -> key``: cells with one (non-``None``) key may be computed
        together, by one :attr:`compute_together` call — e.g. students trained side by side;
        ``None`` for a cell computed alone. Cells with one key must have one :attr:`group` key
        (the skeleton checks it). ``None``: every cell alone.
    compute_together : ``compute_together(cells, root, checkpoint) -> [rows of cells[0], ...]``,
        the unfinished cells of one :attr:`together` key in one worker job, computed together;
        each cell's rows are then stored as its own run, as :attr:`compute`'s would be. It must
        give every cell the rows :attr:`compute` gives it alone, up to what the cell's own
        config says may differ (a ``side_by_side`` cell: float tolerance), and keep its
        resumable state under ``checkpoint`` (a folder named by the cells' run ids, removed when
        the call returns, kept when it raises so the next try resumes: :meth:`group_checkpoint`).
        A key with one unfinished cell, :meth:`run_cell` and a Ray sweep (one task per cell)
        use :attr:`compute`.
    work : ``work(cell) -> [fairdd.studies._work.Work, ...]``, what one cell trains, declared once
        (:mod:`fairdd.studies._work`): the skeleton orders cells by its price (see ``cost``) and
        ``benchmarks/projection.py`` projects the study's hours from it. ``None``: not declared.
    """

    name: str
    compute: Compute
    cost: Callable[[Any], float] | None = None
    group: Callable[[Any], Hashable] | None = None
    prepare: Callable[[list[Any], Root, int | None], None] | None = None
    together: Callable[[Any], Hashable | None] | None = None
    compute_together: ComputeTogether | None = None
    work: Callable[[Any], list[Any]] | None = None

    def __post_init__(self) -> None:
        if not self.name or not self.name.replace("_", "").isalnum():
            raise ValueError(f"name={self.name!r} must be a non-empty folder name of letters, digits and '_'")
        if (self.together is None) != (self.compute_together is None):
            raise ValueError(f"study {self.name!r}: give both together and compute_together, or neither")

    # ------------------------------------------------------------------ running
    def run_cell(self, cell: Any, root: Root = None) -> pd.DataFrame:
        """One cell's rows: read if finished, else computed and stored first."""
        return results.run(self.name, cell, functools.partial(self.compute, cell, root), root=root)

    def is_finished(self, cell: Any, root: Root = None) -> bool:
        return results.is_finished(self.name, cell, root=root)

    def check_cells(self, cells: Sequence[Any]) -> list[Any]:
        """``cells`` as a list, checked before any work (by :meth:`run` and
        :func:`fairdd.sweep.run_ray`): at least one, none repeated."""
        cells = list(cells)
        if not cells:
            raise ValueError(f"study {self.name!r}: no cells to run")
        if len(set(cells)) != len(cells):
            raise ValueError(f"study {self.name!r}: the cells repeat a run")
        return cells

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
        Without ``progress``, a :class:`fairdd.parallel.Progress` line (runs done / total,
        elapsed, time left) per finished job goes to the file ``$FAIRDD_PROGRESS`` names (``make
        book`` shows it in its terminal) or to the terminal — never into a notebook's page.
        """
        cells = self.check_cells(cells)
        todo = [c for c in cells if not self.is_finished(c, root)]
        if progress is None and todo:
            progress = Progress(self.name)  # $FAIRDD_PROGRESS or the terminal, never the page
        self._run_todo(todo, processes=processes, root=root, progress=progress)
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
            job = functools.partial(_run_job, self.name, self.compute, root=root, together=self.together,
                                    compute_together=self.compute_together)
            map_processes(job, jobs, processes=processes, on_done=on_done)

    def _jobs(self, todo: list[Any]) -> list[list[Any]]:
        if self.group is None:
            jobs = [[c] for c in todo]
        else:
            by_key: dict[Hashable, list[Any]] = {}
            for c in todo:
                by_key.setdefault(self.group(c), []).append(c)
            jobs = list(by_key.values())
        if self.together is not None:
            owner: dict[Hashable, int] = {}
            for index, job in enumerate(jobs):
                for c in job:
                    key = self.together(c)
                    if key is not None and owner.setdefault(key, index) != index:
                        raise ValueError(
                            f"study {self.name!r}: cells computed together (key {key!r}) fall into two worker "
                            "jobs; their group keys must be equal"
                        )
        cost = self.cost
        if cost is None and self.work is not None:
            from fairdd.studies._work import cell_cost

            def cost(cell: Any) -> float:
                return cell_cost(self.work(cell))
        if cost is not None:
            jobs.sort(key=lambda job: -sum(cost(c) for c in job))  # stable: ties keep their order
        return jobs

    @contextlib.contextmanager
    def group_checkpoint(self, cells: Sequence[Any], root: Root = None) -> Iterator[Path]:
        """The resumable checkpoint folder of ``cells`` computed together (in
        :attr:`compute_together`), named by their run ids so that another group has its own; removed
        when the ``with`` block finishes, kept when it raises (or the process is killed), so the
        next try resumes from it."""
        folder = results.checkpoint_dir(self.name, {"side_by_side": [results.run_id(c) for c in cells]}, root=root)
        yield folder
        shutil.rmtree(folder, ignore_errors=True)

def _run_job(
    name: str, compute: Compute, job: list[Any], *, root: Root,
    together: Callable[[Any], Hashable | None] | None = None, compute_together: ComputeTogether | None = None,
) -> None:
    """One worker job: its unfinished cells, those of one :attr:`Study.together` key through
    one :attr:`Study.compute_together` call (in their group checkpoint), the others alone."""
    study = Study(name=name, compute=compute, together=together, compute_together=compute_together)
    todo = [c for c in job if not study.is_finished(c, root)]
    by_key: dict[Hashable, list[Any]] = {}
    for cell in todo:
        key = together(cell) if together is not None else None
        if key is not None:
            by_key.setdefault(key, []).append(cell)
    grouped = {id(c) for cells in by_key.values() if len(cells) > 1 for c in cells}
    for cells in by_key.values():
        if len(cells) < 2:
            continue
        assert compute_together is not None  # Study.__post_init__: both or neither
        with study.group_checkpoint(cells, root) as folder:
            rows = compute_together(cells, root, folder)
            if len(rows) != len(cells):
                raise RuntimeError(f"study {name!r}: compute_together gave rows for {len(rows)} of {len(cells)} cells")
            for cell, cell_rows in zip(cells, rows):
                results.run(name, cell, functools.partial(_given, cell_rows), root=root)
    for cell in todo:
        if id(cell) not in grouped:
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
