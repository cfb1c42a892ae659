"""Run independent jobs (seeds, configs) in parallel worker processes.

Small models do not scale across threads: on a 2-core machine, one torch thread per
process in two processes trains two seeds much faster than two threads in one process
(``benchmarks/bench_threads.py`` measures it, into
``benchmarks/results/bench_threads.json``). :func:`map_processes` is that pattern.

Workers are started with the ``spawn`` method: a fresh interpreter per worker, which is
safe with torch (no forked OpenMP or CUDA state) and works from scripts, pytest and
Jupyter/papermill kernels alike. The price is that ``fn`` and its arguments are sent by
pickle: ``fn`` must be importable by name — a function defined at the top level of a
module (``fairdd`` or a script guarded by ``if __name__ == "__main__":``), or a
``functools.partial`` of one — not a lambda or a function defined in a notebook cell.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from typing import TextIO, TypeVar

__all__ = ["Progress", "available_cpus", "job_progress", "map_processes"]

T = TypeVar("T")
R = TypeVar("R")

# Thread pools that read their size from the environment when they start: OpenMP
# (torch's intra-op pool), MKL and OpenBLAS (numpy).
_THREAD_ENV = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


def available_cpus() -> int:
    """CPUs this process may run on (its affinity mask), else ``os.cpu_count()``."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return os.cpu_count() or 1


@contextlib.contextmanager
def _thread_env(threads: int) -> Iterator[None]:
    """Set the thread-count variables for processes started inside the block, then restore."""
    saved = {k: os.environ.get(k) for k in _THREAD_ENV}
    os.environ.update({k: str(threads) for k in _THREAD_ENV})
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _init_worker(threads: int) -> None:
    import torch

    torch.set_num_threads(threads)


@contextlib.contextmanager
def _torch_threads(threads: int) -> Iterator[None]:
    import torch

    saved = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(saved)


def map_processes(
    fn: Callable[[T], R],
    args_list: Iterable[T],
    *,
    processes: int | None = None,
    threads_per_process: int = 1,
    on_done: Callable[[int, R], None] | None = None,
) -> list[R]:
    """``[fn(a) for a in args_list]``, computed by parallel worker processes.

    Parameters
    ----------
    fn : callable
        One job, ``fn(arg) -> result``; importable by name (see the module docstring).
        Give it fixed keyword arguments with ``functools.partial``.
    args_list : iterable
        One argument per job, e.g. the seeds. Arguments and results travel by pickle,
        so return tensors on the CPU (or plain numbers), not CUDA tensors.
    processes : int, optional
        Number of worker processes; ``None`` means one per available CPU, and never more
        than there are jobs. ``1`` runs the jobs inline in this process, in order,
        without a pool (for debugging, CI and when a GPU is used).
    threads_per_process : int
        torch (and OpenMP/MKL/OpenBLAS) threads in each worker. Inline runs use it too,
        for the duration of the call, so results do not depend on ``processes``.
    on_done : callable, optional
        ``on_done(index, result)``, called in this process as each job finishes (in the
        order they finish; e.g. a progress line). Not called for a failed job.

    Returns
    -------
    list
        The results, in the order of ``args_list``.

    Raises
    ------
    Exception
        The first failing job's exception (in ``args_list`` order), re-raised here with
        the worker's traceback attached as its ``__cause__``; the jobs not yet started
        are cancelled (the running ones finish).
    KeyboardInterrupt, SystemExit
        Ctrl-C (or SIGTERM to the ``fairdd`` command, which raises ``KeyboardInterrupt``):
        the worker processes are terminated at once, not left to finish their jobs.
    """
    jobs: Sequence[T] = list(args_list)
    if isinstance(threads_per_process, bool) or not isinstance(threads_per_process, int) or threads_per_process < 1:
        raise ValueError(f"threads_per_process={threads_per_process!r} must be an integer >= 1")
    if processes is None:
        processes = available_cpus()
    elif isinstance(processes, bool) or not isinstance(processes, int) or processes < 1:
        raise ValueError(f"processes={processes!r} must be None or an integer >= 1")
    processes = min(processes, max(1, len(jobs)))

    if processes == 1:
        with _torch_threads(threads_per_process):
            out = []
            for i, a in enumerate(jobs):
                out.append(fn(a))
                if on_done is not None:
                    on_done(i, out[-1])
            return out

    context = multiprocessing.get_context("spawn")
    executor = ProcessPoolExecutor(
        max_workers=processes, mp_context=context, initializer=_init_worker, initargs=(threads_per_process,)
    )
    try:
        # Workers are spawned during submit(), inside the block, so they inherit the
        # thread variables before they import torch or numpy.
        with _thread_env(threads_per_process):
            futures = [executor.submit(fn, a) for a in jobs]
        if on_done is not None:
            index = {f: i for i, f in enumerate(futures)}
            for f in as_completed(futures):
                if f.exception() is not None:
                    break  # raised below, in args_list order
                on_done(index[f], f.result())
        results = [f.result() for f in futures]
    except Exception:
        executor.shutdown(wait=True, cancel_futures=True)  # a failed job: the running ones finish
        raise
    except BaseException:
        # KeyboardInterrupt (Ctrl-C; SIGTERM to the `fairdd` command) or SystemExit: stop the
        # workers now rather than after their jobs. What they finished is stored; what they were
        # computing resumes from its checkpoints next time.
        _stop_workers(executor)
        executor.shutdown(wait=False, cancel_futures=True)
        raise
    executor.shutdown(wait=True)
    return results


def _stop_workers(executor: ProcessPoolExecutor, grace_s: float = 5.0) -> None:
    """Terminate the pool's worker processes (SIGTERM, then SIGKILL after ``grace_s``)."""
    workers = list((getattr(executor, "_processes", None) or {}).values())
    for process in workers:
        if process.is_alive():
            process.terminate()
    deadline = time.monotonic() + grace_s
    for process in workers:
        process.join(max(0.0, deadline - time.monotonic()))
        if process.is_alive():
            process.kill()
            process.join(1.0)


def _clock(seconds: float) -> str:
    seconds = int(round(seconds))
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


class Progress:
    """``progress(done, total)`` that prints one line per finished job: runs done / total,
    elapsed, and the estimated time left (elapsed per run × runs left).

    ``stream``: where the lines go. ``None`` (default): appended to the file ``$FAIRDD_PROGRESS``
    names when set (``make book`` shows that file in its terminal), else standard error — in a
    Jupyter kernel the process's original one (``sys.__stderr__``: the terminal that started
    papermill or Jupyter), never the page (a kernel captures ``sys.stderr`` into the notebook).
    ``unit``: what a job is called (``"run"``, ``"teacher"``, ...).
    """

    def __init__(self, label: str, *, stream: TextIO | None = None, clock: Callable[[], float] = time.monotonic,
                 unit: str = "run"):
        self.label, self.stream, self.clock, self.unit = label, stream, clock, unit
        self.start: float | None = None

    def _print(self, line: str) -> None:
        if self.stream is not None:
            print(line, file=self.stream, flush=True)
            return
        path = os.environ.get("FAIRDD_PROGRESS")
        if path:
            with open(path, "a", encoding="utf-8") as f:
                f.write(line + "\n")
            return
        print(line, file=_terminal(), flush=True)

    def __call__(self, done: int, total: int) -> None:
        now = self.clock()
        if self.start is None or done == 0:
            self.start = now
        if done == 0:
            self._print(f"{self.label}: {total} {self.unit}(s) to compute")
            return
        elapsed = now - self.start
        left = elapsed / done * (total - done)
        self._print(
            f"{self.label}: {done}/{total} {self.unit}s ({100 * done / total:.0f}%) · elapsed {_clock(elapsed)} · "
            f"about {_clock(left)} left"
        )


def _terminal() -> TextIO:
    """Standard error, or in a Jupyter kernel (whose ``sys.stderr`` is the page) the original one."""
    if type(sys.stderr).__name__ == "OutStream" and "ipykernel" in sys.modules and sys.__stderr__ is not None:
        return sys.__stderr__
    return sys.stderr


def job_progress(label: str, total: int, *, unit: str = "job") -> Callable[[int, object], None]:
    """An ``on_done`` for :func:`map_processes` that reports ``total`` jobs through a
    :class:`Progress` (its default stream): a first line now, then one per finished job — so
    preparation steps (teachers, experts, probes) show their own count and time left."""
    progress = Progress(label, unit=unit)
    progress(0, total)
    done = [0]

    def on_done(index: int, result: object) -> None:
        done[0] += 1
        progress(done[0], total)

    return on_done
