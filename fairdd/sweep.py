"""A study's cells as a sweep: on the local worker pool, or on a Ray cluster, one task per run.

On this machine a study's cells run on :meth:`fairdd.studies.Study.run` (the worker-process
pool, one torch thread per worker); :func:`run_ray` sends the same unfinished cells to Ray
(``ray.remote`` tasks: one per run, CPUs and GPUs declared per task, ``max_retries`` on worker
failure). The ``fairdd`` command (:mod:`fairdd.cli`) calls them.

Where results go: **the workers write the run store themselves, on a filesystem the driver
shares** (``--root`` on NFS/Lustre/..., the same absolute path on every node). Returning rows to
the driver and writing them there was the alternative; it is not enough here, because a cell
writes more than rows into the store while it runs — its resumable checkpoints (so a retried
task resumes where the dead one stopped), the synthetic set the chapter draws
(:func:`fairdd.studies._dd.save_synthetic`) — and reads shared artefacts that ``prepare`` made (MTT's expert
trajectories, the attribute probes). A run is still published by :func:`fairdd.results.run`'s
atomic rename (a POSIX rename is atomic on a network filesystem's server too), so the driver
and ``make book`` only ever see whole runs; and the rows the driver returns are read back from
the store, the single truth.

Two workers never compute one run: a Ray task first takes the run's **lease**
(:class:`Lease`, ``<root>/<study>/checkpoints/<run_id>.lease``), created atomically (``link``
of a complete file, which fails if one exists). The holder's heartbeat thread touches it every
``heartbeat_s``; a task that finds the lease held waits until the run is finished, or until the
lease is *stale* — its holder was on this machine and its process is gone (a killed worker
that Ray retries here: taken over at once), or its modification time has not changed for
``ttl_s`` by the waiter's own clock (a dead node; no clock comparison between machines, so
skewed clocks do not matter; the default 5 minutes is above NFS's attribute caching). A stale
lease is broken by renaming it aside and checking it was the one seen stale. Should two
computations of one run ever both finish (a lease broken under a live but frozen holder), the
run store keeps the first one published and discards the other: nothing is written twice.

The local pool of the ``fairdd`` command (:func:`run_local`) takes the same leases, on the
driver, for every job it sends to its workers: two ``fairdd run`` of one study into one store (or
one beside a Ray sweep) never compute one run twice — the second computes what the first has not
leased and then waits for the rest (taking over a lease whose holder died). The notebooks'
:meth:`Study.run` takes none: within one call no cell goes to two workers.

A killed sweep resumes by running the command again: finished runs are skipped, a run that
was half done resumes from its checkpoints, its stale lease is taken over.

``prepare`` (shared work such as MTT's experts) runs on the driver, with the local pool,
before any task is sent, so every task finds the artefacts it reads. Ray is imported only
by :func:`run_ray`; without it, :func:`import_ray` says how to install it.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
import socket
import sys
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from fairdd import results
from fairdd.parallel import Progress
from fairdd.paths import results_root
from fairdd.studies._study import Compute, Root, Study

__all__ = [
    "LEASE_HEARTBEAT_S",
    "LEASE_TTL_S",
    "Lease",
    "MissingDataError",
    "Progress",
    "RayConnectionError",
    "RaySummary",
    "cell_state",
    "check_data",
    "connect_ray",
    "cost_estimate",
    "import_ray",
    "lease_holder",
    "lease_path",
    "run_leased",
    "run_local",
    "run_ray",
]

LEASE_HEARTBEAT_S = 30.0  # the holder touches its lease this often
LEASE_TTL_S = 300.0  # a lease untouched this long (by the waiter's clock) is stale: its holder is gone
RAY_INSTALL = "pip install 'fairdd[ray]'  (or: pip install ray)"


# ------------------------------------------------------------------------------ leases


def _host() -> str:
    """This machine: host name and kernel boot id (so a reboot, or a container of another host
    with the same name, is another host)."""
    try:
        boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        boot = ""
    return f"{socket.gethostname()}/{boot}"


def lease_path(study: str, cell: Any, root: Root = None) -> Path:
    """``<root>/<study>/checkpoints/<run_id>.lease``: the lease of ``cell``'s run."""
    final = results.run_dir(study, cell, root=root)
    return final.parent / "checkpoints" / f"{final.name}.lease"


def _read_lease(path: Path) -> tuple[dict[str, Any], int] | None:
    """The lease's content and modification time (ns); ``None`` when there is none."""
    try:
        text, mtime = path.read_text(), path.stat().st_mtime_ns
    except (FileNotFoundError, NotADirectoryError):
        return None
    try:
        info = json.loads(text)
        if not isinstance(info, dict):
            raise ValueError
    except ValueError:
        info = {}  # not a lease this module wrote: judged by its age alone
    return info, mtime


def _zombie(pid: int) -> bool:
    """Whether ``pid`` has exited but not been reaped yet (Linux ``/proc``; ``False`` elsewhere)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rfind(")") + 2 :].startswith(("Z", "X"))


def _dead_here(info: dict[str, Any]) -> bool:
    """Whether the lease's holder ran on this machine and its process is gone (or its pid now
    belongs to a younger process)."""
    pid = info.get("pid")
    if info.get("host") != _host() or not isinstance(pid, int):
        return False
    if not results.pid_alive(pid) or _zombie(pid):
        return True
    started_at = getattr(results, "_process_started_at", None)  # Linux /proc start time, if available
    started = started_at(pid) if started_at is not None else None
    return started is not None and isinstance(info.get("since"), (int, float)) and started > info["since"] + 2.0


def lease_holder(path: str | os.PathLike[str]) -> dict[str, Any] | None:
    """Who holds the lease at ``path`` (``host``, ``pid``, ``since``, ``token``); ``None`` when
    there is none or its holder is known dead (see :func:`_dead_here`)."""
    read = _read_lease(Path(path))
    if read is None or _dead_here(read[0]):
        return None
    return read[0]


class Lease:
    """The right to compute one run, held by this process while its heartbeat runs.

    Use :meth:`acquire` (``None`` when another holds it) and then the lease as a context
    manager, which stops the heartbeat and deletes the lease on exit.
    """

    def __init__(self, path: Path, token: str, heartbeat_s: float) -> None:
        self.path, self.token, self.heartbeat_s = path, token, heartbeat_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name=f"lease-{path.name}", daemon=True)
        self._thread.start()

    @classmethod
    def acquire(cls, path: str | os.PathLike[str], *, heartbeat_s: float = LEASE_HEARTBEAT_S) -> Lease | None:
        """Take the lease at ``path`` if nobody holds it (an existing lease, stale or not, is
        left alone: break it first with :func:`_break`)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        token = uuid.uuid4().hex
        info = {"token": token, "host": _host(), "pid": os.getpid(), "since": time.time()}
        tmp = path.with_name(f".{path.name}.{token}")
        tmp.write_text(json.dumps(info))
        try:
            os.link(tmp, path)  # atomic, complete, and fails if a lease exists
        except FileExistsError:
            return None
        except OSError:  # a filesystem without hard links: exclusive create (briefly empty)
            try:
                fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
            except FileExistsError:
                return None
            with os.fdopen(fd, "w") as fh:
                fh.write(json.dumps(info))
        finally:
            tmp.unlink(missing_ok=True)
        return cls(path, token, heartbeat_s)

    def _ours(self) -> bool:
        read = _read_lease(self.path)
        return read is not None and read[0].get("token") == self.token

    def _beat(self) -> None:
        while not self._stop.wait(self.heartbeat_s):
            if not self._ours():  # broken under us: stop touching it
                return
            try:
                os.utime(self.path)
            except OSError:
                pass

    def release(self) -> None:
        self._stop.set()
        self._thread.join()
        if self._ours():
            self.path.unlink(missing_ok=True)

    def __enter__(self) -> Lease:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.release()


def _break(path: Path, token: Any) -> None:
    """Remove the stale lease at ``path`` whose token is ``token``; a lease that is not that
    one (taken meanwhile by another process) is put back."""
    aside = path.with_name(f".{path.name}.broken-{uuid.uuid4().hex}")
    try:
        os.rename(path, aside)
    except FileNotFoundError:
        return
    read = _read_lease(aside)
    if read is not None and read[0].get("token") != token:
        try:
            os.link(aside, path)  # a fresh lease: restore it (unless yet another exists)
        except FileExistsError:
            pass
    aside.unlink(missing_ok=True)


def run_leased(
    name: str,
    compute: Compute,
    cell: Any,
    root: Root,
    *,
    poll_s: float = 2.0,
    ttl_s: float = LEASE_TTL_S,
    heartbeat_s: float = LEASE_HEARTBEAT_S,
) -> bool:
    """Make sure ``cell``'s run is in the store: compute it under its lease, or wait for the
    process that holds the lease. ``True`` when this call computed it."""
    path = lease_path(name, cell, root)
    seen: tuple[Any, float] | None = None  # (the lease's token and mtime, when first seen so)
    while True:
        if results.is_finished(name, cell, root=root):
            return False
        lease = Lease.acquire(path, heartbeat_s=heartbeat_s)
        if lease is not None:
            with lease:
                if results.is_finished(name, cell, root=root):  # finished between the check and the claim
                    return False
                results.run(name, cell, functools.partial(compute, cell, root), root=root)
            return True
        read = _read_lease(path)
        if read is None:
            continue  # released meanwhile
        info, mtime = read
        state = (info.get("token"), mtime)
        now = time.monotonic()
        if _dead_here(info):
            _break(path, info.get("token"))
            continue
        if seen is None or seen[0] != state:
            seen = (state, now)
        elif now - seen[1] > ttl_s:
            _break(path, info.get("token"))
            seen = None
            continue
        time.sleep(poll_s)


def cell_state(study: Study, cell: Any, root: Root = None) -> str:
    """``"finished"``, ``"running <host> pid <pid>"`` (a live lease), ``"started"`` (checkpoints
    but no finished run) or ``"to do"``."""
    if study.is_finished(cell, root):
        return "finished"
    holder = lease_holder(lease_path(study.name, cell, root))
    if holder is not None:
        return f"running {str(holder.get('host', '?')).split('/')[0]} pid {holder.get('pid', '?')}"
    checkpoints = results.run_dir(study.name, cell, root=root).parent / "checkpoints" / results.run_id(cell)
    if checkpoints.is_dir() and any(checkpoints.iterdir()):
        return "started"
    return "to do"


# -------------------------------------------------------------------- before any work


class MissingDataError(FileNotFoundError):
    """The files of a data set that cells to compute read are absent or damaged (one line)."""


#: Sources whose loader makes the data (no files to look for).
_GENERATED_SOURCES = ("trifeature",)


def _data_specs(value: Any, out: dict[str, None]) -> None:
    """The ``source`` of every :class:`fairdd.data.StudyData` inside ``value`` (a cell), into ``out``."""
    from fairdd.data import StudyData

    if isinstance(value, StudyData):
        out[value.source] = None
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        for f in dataclasses.fields(value):
            _data_specs(getattr(value, f.name), out)
    elif isinstance(value, (tuple, list)):
        for v in value:
            _data_specs(v, out)


def check_data(cells: Sequence[Any], *, data_root: str | os.PathLike[str] | None = None) -> None:
    """Raise :class:`MissingDataError` (one line naming the data set, the files and how to get
    them, and how many of ``cells`` read it) when a data set the cells read is not on disk.

    Every :class:`fairdd.data.StudyData` inside the cells (their fields, nested configs and
    tuples) names a source; each distinct source's test split is read once
    (:func:`fairdd.data.load_dataset`, no download), which fails at once when its files are
    absent or damaged. Generated sources (Trifeature) are not read. Other errors of a loader are
    left to the run itself: this check is about the files only. Call it with the cells that are
    to be computed (finished runs read no data).
    """
    from fairdd.data import LOADERS, load_dataset
    from fairdd.data._files import DataFileError

    users: dict[str, int] = {}
    for cell in cells:
        sources: dict[str, None] = {}
        _data_specs(cell, sources)
        for source in sources:
            users[source] = users.get(source, 0) + 1
    problems = []
    for source, count in users.items():
        if source in _GENERATED_SOURCES or source not in LOADERS:
            continue
        splits = LOADERS[source].splits
        split = "test" if "test" in splits else splits[-1]
        try:
            load_dataset(source, split, root=data_root)
        except (FileNotFoundError, DataFileError) as exc:
            text = " ".join(str(exc).split())
            problems.append(f"{source} (read by {count} of the {len(cells)} runs to compute): {text}")
        except Exception:  # noqa: BLE001 - not a file problem: the run reports it with its own context
            continue
    if problems:
        raise MissingDataError("data missing, nothing computed: " + "; ".join(problems))


def cost_estimate(
    study: str, cells: Sequence[Any], *, rates: str | os.PathLike[str] | None = None,
    work: Callable[[Any], Any] | None = None,
) -> dict[str, Any]:
    """What computing ``cells`` of ``study`` costs, by the projection's counting and rates.

    The cells' declared work (``Study(work=...)``, :mod:`fairdd.studies._work`) turned into work
    items and priced with the rates an earlier ``benchmarks/projection.py`` run measured
    (``rates``, default ``benchmarks/results/projection.json``), as that script does
    (``declared_items``, ``project``). Work that cells share (teachers, experts) counts once.
    ``work``: the study's ``work`` hook to use (default ``STUDY.work``; e.g. a memoised one when
    several estimates read the same cells: a cell's work may load its data to count it).

    Returns
    -------
    dict
        ``cells``, ``items``, ``sample_passes`` (always); when the projection and its rates are
        at hand (a source checkout), also ``hours_sequential``, ``hours_batched`` (``None``
        when some item's rate was not measured), ``unmeasured_items``, ``device``, ``measured``
        (date) and ``commit`` of the rates and ``rates_file``; otherwise ``why`` says what is
        missing.
    """
    import importlib.util

    from fairdd.paths import REPO_ROOT
    from fairdd.studies import study_module

    out: dict[str, Any] = {"cells": len(cells)}
    work = work if work is not None else study_module(study).STUDY.work
    if work is None:
        return {**out, "why": f"study {study!r} declares no work (Study(work=...))"}
    script = REPO_ROOT / "benchmarks" / "projection.py"
    rates_file = Path(rates) if rates is not None else REPO_ROOT / "benchmarks" / "results" / "projection.json"
    if not script.is_file():
        from fairdd.studies._work import cell_cost

        works = [work(c) for c in cells]
        return {**out, "items": sum(len(w) for w in works),
                "sample_passes": sum(w.sample_passes for ws in works for w in ws if w.shared is None),
                "macs": sum(cell_cost(ws) for ws in works),
                "why": f"no {script} (the projection lives in a source checkout)"}
    projection = sys.modules.get("_fairdd_projection")
    if projection is None:
        spec = importlib.util.spec_from_file_location("_fairdd_projection", script)
        assert spec is not None and spec.loader is not None
        projection = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = projection  # its dataclasses look their module up there
        try:
            spec.loader.exec_module(projection)
        except BaseException:
            del sys.modules[spec.name]
            raise
    items = projection.declared_items(study, [work(c) for c in cells])
    out.update(items=len(items), sample_passes=float(sum(i.sample_passes for i in items)))
    if not rates_file.is_file():
        return {**out, "why": f"no measured rates at {rates_file} (run benchmarks/projection.py)"}
    try:
        saved = json.loads(rates_file.read_text())
        rows = saved["tables"]["rates"]
        provenance = saved.get("provenance", {})
    except (OSError, ValueError, KeyError, TypeError) as exc:
        return {**out, "why": f"{rates_file} is unreadable ({type(exc).__name__}: {exc})"}
    rated = projection.Rates.from_rows(rows)
    device = next((r["device"] for r in rows if r.get("device")), "cpu")
    total = projection.project(items, rated, device=device)["studies"]
    total = total[-1] if total else {"hours_sequential": 0.0, "hours_batched": 0.0, "unmeasured_rows": 0}
    threads = provenance.get("torch_threads")
    return {**out, "hours_sequential": total["hours_sequential"], "hours_batched": total["hours_batched"],
            "unmeasured_items": total["unmeasured_rows"],
            "device": f"{device}" + (f" ({threads} thread{'s' if threads != 1 else ''})"
                                     if threads and not str(device).startswith("cuda") else ""),
            "measured": str(provenance.get("created_utc", "?"))[:10], "commit": str(provenance.get("commit") or "?")[:7],
            "rates_file": str(rates_file)}


# ------------------------------------------------------------------------------ local


def _take(path: Path) -> Lease | None:
    """The lease at ``path``, taken over at once when its holder is known dead; ``None`` when a
    live process (or one on another machine) holds it."""
    lease = Lease.acquire(path)
    if lease is None:
        read = _read_lease(path)
        if read is not None and _dead_here(read[0]):
            _break(path, read[0].get("token"))
            lease = Lease.acquire(path)
    return lease


def run_local(
    study: Study,
    cells: Sequence[Any],
    *,
    processes: int | None = None,
    root: Root = None,
    progress: Callable[[int, int], None] | None = None,
    log: Any = None,
) -> pd.DataFrame:
    """Every cell through the run store, the unfinished ones on this machine's worker pool
    (:meth:`Study.run`'s), each job under its runs' leases; all rows, in the order of ``cells``.

    The driver takes the lease of every cell of a job before sending it (a job whose cells are
    not all free is left to their holders), holds them while the pool runs and releases them at
    the end, however it ends; then it waits for the runs another process holds
    (:func:`run_leased`: computed here if that process dies). So two local sweeps into one store
    never compute one run twice. ``log`` (default stderr) gets a line when runs are left to
    another process.
    """
    cells = study.check_cells(cells)
    todo = [c for c in cells if not study.is_finished(c, root)]
    leases: list[Lease] = []
    mine: list[Any] = []
    theirs: list[Any] = []
    try:
        for job in study._jobs(todo) if todo else []:
            taken: list[Lease] = []
            for cell in job:
                lease = _take(lease_path(study.name, cell, root))
                if lease is None:
                    break
                taken.append(lease)
            if len(taken) == len(job):
                leases += taken
                mine += job
            else:
                for lease in taken:
                    lease.release()
                theirs += job
        mine = [c for c in mine if not study.is_finished(c, root)]  # finished by another meanwhile
        if theirs:
            holders = sorted({str(h.get("pid", "?")) for c in theirs
                              if (h := lease_holder(lease_path(study.name, c, root))) is not None})
            print(f"{study.name}: {len(theirs)} run(s) are being computed by another process (pid "
                  f"{', '.join(holders) or '?'}); computing the other {len(mine)}, then waiting for them",
                  file=log if log is not None else sys.stderr, flush=True)
        study._run_todo(mine, processes=processes, root=root, progress=progress)
    finally:
        for lease in leases:
            lease.release()
    for cell in theirs:
        run_leased(study.name, study.compute, cell, root)
    return pd.concat([study.run_cell(c, root) for c in cells], ignore_index=True)


# -------------------------------------------------------------------------------- Ray


def import_ray() -> Any:
    """``import ray``, or an ``ImportError`` that says how to install it."""
    try:
        import ray
    except ImportError as exc:
        raise ImportError(f"--ray needs Ray, which is not installed here; install it with: {RAY_INSTALL}") from exc
    return ray


def _ray_cell(
    name: str, compute: Compute, cell: Any, root: str, threads: int, ttl_s: float, heartbeat_s: float
) -> dict[str, Any]:
    """One Ray task: ``cell``'s run into the shared store, under its lease."""
    import torch

    torch.set_num_threads(threads)
    start = time.perf_counter()
    computed = run_leased(name, compute, cell, root, ttl_s=ttl_s, heartbeat_s=heartbeat_s)
    return {"run_id": results.run_id(cell), "computed": computed, "seconds": time.perf_counter() - start}


def _gpus_for(cell: Any, gpus_per_task: float | None, cluster_gpus: float) -> float:
    """GPUs a cell's task asks for: ``gpus_per_task`` when given; else none for a cell whose
    ``device`` field says ``"cpu"``, one for a cell that names a CUDA device, and otherwise one
    when the cluster has GPUs (cells then compute on the GPU Ray assigns them)."""
    if gpus_per_task is not None:
        return gpus_per_task
    device = getattr(cell, "device", None)
    if isinstance(device, str):
        return 1.0 if device.startswith("cuda") else 0.0
    return 1.0 if cluster_gpus > 0 else 0.0


class RayConnectionError(ConnectionError):
    """Ray could not start or reach the cluster (one line, before any task is sent)."""


def _ray_failure(address: str | None, exc: BaseException) -> str:
    first = " ".join(str(exc).split())
    where = f"--ray {address}" if address else "--ray (a new local instance or $RAY_ADDRESS)"
    if address == "auto" or (address is None and os.environ.get("RAY_ADDRESS")):
        advice = ("no running Ray cluster was found on this machine: start one (`ray start --head`) or give its "
                  "address (--ray ray://head:10001), or give --ray without an address to start a local instance")
    elif address:
        advice = f"the cluster at {address!r} cannot be reached: check the address and that its head node is up"
    else:
        advice = "a local Ray instance could not be started"
    return f"{where}: {advice}; nothing computed (Ray said: {first[:200]})"


def connect_ray(address: str | None = None, *, processes: int | None = None) -> Any:
    """``ray.init`` for a sweep (the cluster at ``address``, ``$RAY_ADDRESS`` or a new local
    instance); :class:`RayConnectionError` in one line when it fails. Ray already initialised
    (a test, a notebook) is used as it is. Returns the ``ray`` module."""
    ray = import_ray()
    if not ray.is_initialized():
        options: dict[str, Any] = {"address": address, "include_dashboard": False}
        if address is None and processes is not None:
            options["num_cpus"] = processes
        try:
            ray.init(**options)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            raise RayConnectionError(_ray_failure(address, exc)) from exc
    return ray


@dataclasses.dataclass
class RaySummary:
    """What a Ray sweep did: tasks sent, runs computed by them, runs found finished by them."""

    tasks: int = 0
    computed: int = 0
    found: int = 0


def run_ray(
    study: Study,
    cells: Sequence[Any],
    *,
    root: Root = None,
    address: str | None = None,
    processes: int | None = None,
    cpus_per_task: int = 1,
    gpus_per_task: float | None = None,
    max_retries: int = 3,
    progress: Callable[[int, int], None] | None = None,
    ttl_s: float = LEASE_TTL_S,
    heartbeat_s: float = LEASE_HEARTBEAT_S,
    summary: RaySummary | None = None,
) -> pd.DataFrame:
    """Every cell through the run store, the unfinished ones as Ray tasks; all rows, in the
    order of ``cells`` (read back from the store).

    Parameters
    ----------
    study, cells : the study and the cells to run (its config's ``cells()``).
    root : the run store; must be a path every Ray node reads and writes at the same place.
    address : the cluster to connect to (``"auto"``, ``"ray://head:10001"``, ...); ``None``:
        the one ``ray.init()`` finds (``$RAY_ADDRESS``) or a new local instance. When Ray is
        already initialised (a test, a notebook), that instance is used and left running.
    processes : worker processes of ``prepare`` on the driver; CPUs of a new local instance.
    cpus_per_task, gpus_per_task : resources per task (see :func:`_gpus_for` for the GPU
        default); each task runs ``cpus_per_task`` torch threads.
    max_retries : how often Ray re-runs a task whose worker died (an exception the cell raises
        is not retried: it fails the sweep, as on the local pool).
    summary : filled in with what the tasks did.
    """
    ray = import_ray()
    cells = study.check_cells(cells)
    root = Path(root if root is not None else results_root()).resolve()
    todo = [c for c in cells if not study.is_finished(c, root)]
    summary = summary if summary is not None else RaySummary()
    if todo:
        started_here = not ray.is_initialized()
        connect_ray(address, processes=processes)  # RayConnectionError before any work
        pending: list[Any] = []
        try:
            if study.prepare is not None:
                study.prepare(todo, root, processes)
            cluster_gpus = float(ray.cluster_resources().get("GPU", 0))
            order = [c for job in study._jobs(todo) for c in job]  # the study's cost order
            task = ray.remote(_ray_cell)
            refs = {}
            for cell in order:
                ref = task.options(
                    num_cpus=cpus_per_task, num_gpus=_gpus_for(cell, gpus_per_task, cluster_gpus), max_retries=max_retries,
                    name=f"{study.name}/{results.run_id(cell)}",
                ).remote(study.name, study.compute, cell, str(root), cpus_per_task, ttl_s, heartbeat_s)
                refs[ref] = cell
            summary.tasks = len(refs)
            if progress is not None:
                progress(0, len(refs))
            pending = list(refs)
            done = 0
            while pending:
                ready, pending = ray.wait(pending, num_returns=1)
                try:
                    outcome = ray.get(ready[0])
                except Exception as exc:
                    raise RuntimeError(
                        f"study {study.name!r}: run {results.run_id(refs[ready[0]])} failed ({refs[ready[0]]!r:.300}); "
                        "the other tasks were cancelled, finished runs are kept: run the command again to resume"
                    ) from exc
                summary.computed += bool(outcome["computed"])
                summary.found += not outcome["computed"]
                done += 1
                if progress is not None:
                    progress(done, len(refs))
        finally:
            for ref in pending:
                ray.cancel(ref)
            if started_here:
                ray.shutdown()
    return pd.concat([study.run_cell(c, root) for c in cells], ignore_index=True)
