"""The run store: every finished computation on disk, keyed by a hash of its config.

Layout under the results root (``fairdd.paths.results_root()`` unless ``root`` is given)::

    <study>/<run_id>/config.json       the canonical config; sha256 of it gives run_id
    <study>/<run_id>/rows.csv          tidy rows: run_id, config fields, then compute's rows
    <study>/<run_id>/provenance.json   commit, versions, device, seeds, times, wall seconds
    <study>/<run_id>/DONE              written last; a run without it does not exist
    <study>/checkpoints/<run_id>/      resumable state of an unfinished run (git-ignored)

A run is written into a private temporary folder and renamed into place only when
complete, so a run killed at any moment leaves no half-written run behind and is
recomputed next time; a finished run is loaded, never recomputed (unless ``force``).

``run_id`` is the first 12 hex digits of the sha256 of the config's canonical JSON:
the class name and every field, nested dataclasses, tuples and lists included, keys
sorted. An int given to a field annotated ``float`` hashes as that float (``lr=1`` and
``lr=1.0`` are the same config). A field declared with
``dataclasses.field(..., metadata={"run_id": False})`` (e.g. a process count that does
not change the result) is left out of the hash and of the columns.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import enum
import hashlib
import importlib.metadata
import json
import os
import platform
import re
import shutil
import subprocess
import tempfile
import time
import warnings
from collections.abc import Callable, Mapping
from pathlib import Path, PurePath
from typing import Any

import numpy as np
import pandas as pd
import torch

from fairdd.paths import REPO_ROOT, results_root

__all__ = [
    "pid_alive",
    "RUN_ID_LENGTH",
    "canonical_config",
    "checkpoint_dir",
    "is_finished",
    "load",
    "load_checkpoint",
    "run",
    "run_dir",
    "run_id",
    "save_checkpoint",
]

RUN_ID_LENGTH = 12  # hex digits of sha256: 48 bits, no collision among any realistic sweep
_STUDY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
_TMP_PREFIX = ".tmp-"
# Columns that read-back adds from provenance.json to every row.
_PROVENANCE_COLUMNS = ("commit", "dirty", "device")


# ------------------------------------------------------------------------- config hash


def _canonical(value: Any, where: str, annotation: Any = None) -> Any:
    """JSON-ready, order-independent form of a config value (``where`` names it in errors)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        out: dict[str, Any] = {"__class__": type(value).__name__}
        for f in dataclasses.fields(value):
            if f.metadata.get("run_id", True):
                out[f.name] = _canonical(getattr(value, f.name), f"{where}.{f.name}", f.type)
        return out
    if isinstance(value, enum.Enum):
        return _canonical(value.value, where)
    if isinstance(value, np.generic):
        return _canonical(value.item(), where, annotation)
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, int):
        return float(value) if annotation in (float, "float") else value
    if isinstance(value, float):
        if not np.isfinite(value):
            raise ValueError(f"{where}={value!r}: a config value must be finite")
        return value
    if isinstance(value, PurePath):
        return value.as_posix()
    if isinstance(value, (list, tuple)):
        return [_canonical(v, f"{where}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, Mapping):
        if not all(isinstance(k, str) for k in value):
            raise ValueError(f"{where}: mapping keys must be strings, got {list(value)!r}")
        return {k: _canonical(v, f"{where}.{k}") for k, v in value.items()}
    raise ValueError(f"{where}={value!r}: type {type(value).__name__} cannot be part of a config")


def canonical_config(config: Any) -> dict[str, Any]:
    """The dict that identifies ``config``: class name and (nested) field values.

    Parameters
    ----------
    config : dataclass instance or mapping
        A frozen config dataclass (the convention) or a plain dict of JSON-like values.

    Returns
    -------
    dict
        What ``config.json`` holds; :func:`run_id` hashes its sorted JSON.
    """
    out = _canonical(config, "config")
    if not isinstance(out, dict):
        raise ValueError(f"config={config!r} must be a dataclass instance or a mapping")
    return out


def _dumps(payload: Any) -> str:
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False)


def run_id(config: Any) -> str:
    """Short stable hash of a config: the first ``RUN_ID_LENGTH`` hex digits of sha256.

    Parameters
    ----------
    config : dataclass instance or mapping
        See :func:`canonical_config`.

    Returns
    -------
    str
        e.g. ``"3f9a0c1b2d4e"``.
    """
    return hashlib.sha256(_dumps(canonical_config(config)).encode()).hexdigest()[:RUN_ID_LENGTH]


# ---------------------------------------------------------------------------- layout


def _study_dir(study: str, root: str | os.PathLike[str] | None) -> Path:
    if not isinstance(study, str) or not _STUDY.match(study):
        raise ValueError(f"study={study!r} must match {_STUDY.pattern} (letters, digits, '_', '.', '-')")
    return Path(root if root is not None else results_root()) / study


def run_dir(study: str, config: Any, *, root: str | os.PathLike[str] | None = None) -> Path:
    """``<root>/<study>/<run_id>``: where the finished run of ``config`` lives."""
    return _study_dir(study, root) / run_id(config)


def is_finished(study: str, config: Any, *, root: str | os.PathLike[str] | None = None) -> bool:
    """Whether the run of ``config`` in ``study`` is finished (its ``DONE`` marker exists)."""
    return (run_dir(study, config, root=root) / "DONE").is_file()


def checkpoint_dir(study: str, config: Any, *, root: str | os.PathLike[str] | None = None) -> Path:
    """Folder (created) for resumable checkpoints of the unfinished run of ``config``.

    ``<root>/<study>/checkpoints/<run_id>``, outside the run folder so that the run can
    still appear atomically; :func:`run` deletes it once the run is finished unless
    asked to keep it. Use :func:`save_checkpoint` / :func:`load_checkpoint` inside it.
    """
    path = _study_dir(study, root) / "checkpoints" / run_id(config)
    path.mkdir(parents=True, exist_ok=True)
    return path


def save_checkpoint(path: str | os.PathLike[str], state: dict[str, Any]) -> None:
    """Write ``state`` with ``torch.save`` atomically: a temporary file, then ``os.replace``.

    A kill mid-write leaves the previous checkpoint (or none) in place, never a torn one.

    Parameters
    ----------
    path : path-like
        The checkpoint file, e.g. ``checkpoint_dir(study, config) / "seed0.pt"``.
    state : dict
        Tensors, numbers, strings and containers of them (model/optimiser state dicts,
        ``torch.Generator.get_state()``, the epoch reached).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            torch.save(state, fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def load_checkpoint(
    path: str | os.PathLike[str], *, map_location: str | torch.device = "cpu", weights_only: bool = True
) -> dict[str, Any] | None:
    """Read a checkpoint written by :func:`save_checkpoint`; ``None`` if there is none.

    ``weights_only=True`` (torch's safe loader) accepts tensors, numbers, strings and
    containers; pass ``False`` only for a file this project wrote itself.
    """
    path = Path(path)
    if not path.is_file():
        return None
    return torch.load(path, map_location=map_location, weights_only=weights_only)


# -------------------------------------------------------------------------- provenance


def _git(*args: str) -> str | None:
    try:
        out = subprocess.run(
            ["git", "-C", str(REPO_ROOT), *args], capture_output=True, text=True, timeout=30, check=True
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout


def _version(package: str) -> str | None:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


def _device() -> str:
    if torch.cuda.is_available():
        return f"cuda ({torch.cuda.get_device_name(0)})"
    return "cpu"


def _provenance(rid: str, study: str, payload: dict[str, Any], started: float, wall_s: float) -> dict[str, Any]:
    commit = _git("rev-parse", "HEAD")
    status = _git("status", "--porcelain", "--untracked-files=no")
    seeds = {k: payload[k] for k in ("seed", "seeds") if k in payload}

    def iso(t: float) -> str:
        return _dt.datetime.fromtimestamp(t, tz=_dt.timezone.utc).isoformat(timespec="seconds")

    # No hostname or user name: provenance is committed and shared.
    return {
        "run_id": rid,
        "study": study,
        "commit": commit.strip() if commit else None,
        "dirty": bool(status.strip()) if status is not None else None,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "packages": {
            "fairdd": _version("fairdd"),
            "torch": torch.__version__,  # with its build tag, e.g. +cu130 or +cpu
            "numpy": np.__version__,
            "scipy": _version("scipy"),
            "pandas": pd.__version__,
        },
        "device": _device(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        **seeds,
        "started": iso(started),
        "finished": iso(started + wall_s),
        "wall_s": round(wall_s, 3),
    }


# ------------------------------------------------------------------------------ rows


def _config_columns(payload: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Flatten the canonical config: nested dataclasses as ``outer.inner``, lists as JSON."""
    out: dict[str, Any] = {}
    for key, value in payload.items():
        if key == "__class__":
            continue
        if isinstance(value, dict):
            out.update(_config_columns(value, f"{prefix}{key}."))
        elif isinstance(value, list):
            out[f"{prefix}{key}"] = _dumps(value)
        else:
            out[f"{prefix}{key}"] = value
    return out


def _scalar(value: Any, where: str) -> Any:
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        value = value.item()
    if isinstance(value, np.generic):
        value = value.item()
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise ValueError(f"{where}={value!r}: row values must be scalars (one row per network/seed/...)")


def _table(rows: Any, rid: str, columns: dict[str, Any]) -> pd.DataFrame:
    if not isinstance(rows, list) or not rows or not all(isinstance(r, Mapping) for r in rows):
        raise ValueError(f"compute must return a non-empty list of dicts, got {type(rows).__name__}: {rows!r:.200}")
    table = []
    for i, row in enumerate(rows):
        clean = {"run_id": rid, **columns}
        for key, value in row.items():
            if not isinstance(key, str):
                raise ValueError(f"row {i}: column names must be strings, got {key!r}")
            value = _scalar(value, f"row {i} column {key!r}")
            if key == "run_id" or (key in columns and columns[key] != value):
                raise ValueError(
                    f"row {i} column {key!r}={value!r} clashes with "
                    f"{'the run id' if key == 'run_id' else f'config field {key}={columns[key]!r}'}; rename it"
                )
            clean[key] = value
        table.append(clean)
    return pd.DataFrame(table)


def _read_run(path: Path) -> pd.DataFrame:
    rows = pd.read_csv(path / "rows.csv")
    provenance = json.loads((path / "provenance.json").read_text())
    for column in _PROVENANCE_COLUMNS:
        rows[column] = provenance.get(column)
    return rows


# ------------------------------------------------------------------------- run / load


def _write(path: Path, text: str) -> None:
    with open(path, "w", encoding="utf-8") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())


def pid_alive(pid: int) -> bool:
    """Whether a process with this id exists (used to clear the leftovers of dead writers)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _remove_stale(study_dir: Path, rid: str) -> None:
    """Delete temporary folders of this run left by processes that no longer exist."""
    for tmp in study_dir.glob(f"{_TMP_PREFIX}{rid}-*"):
        match = re.match(rf"^{re.escape(_TMP_PREFIX)}{rid}-(\d+)-", tmp.name)
        if match and not pid_alive(int(match.group(1))):
            shutil.rmtree(tmp, ignore_errors=True)


def run(
    study: str,
    config: Any,
    compute: Callable[[], list[dict[str, Any]]],
    *,
    root: str | os.PathLike[str] | None = None,
    force: bool = False,
    keep_checkpoints: bool = False,
) -> pd.DataFrame:
    """Load the finished run of ``config``, or compute and store it first.

    Parameters
    ----------
    study : str
        Folder name of the study (e.g. ``"kd_fairness"``).
    config : dataclass instance or mapping
        What the run computes; its hash is the run id (see :func:`canonical_config`).
    compute : callable
        ``compute() -> list[dict]``: tidy rows, one per network/seed/class/...; values
        are scalars. Called only when the run is not finished (or ``force``).
    root : path-like, optional
        Results root; ``fairdd.paths.results_root()`` by default.
    force : bool
        Recompute and replace a finished run.
    keep_checkpoints : bool
        Keep ``checkpoint_dir(study, config)`` after the run finishes (default: delete).

    Returns
    -------
    pandas.DataFrame
        The run's rows as read back from ``rows.csv`` — ``run_id``, the config fields
        (nested ones dotted, sequences as JSON text), compute's columns — plus the
        provenance columns ``commit``, ``dirty``, ``device``. Identical whether the run
        was just computed or loaded.

    Raises
    ------
    ValueError
        On a malformed study name, config or rows (a row column that clashes with a
        config field of a different value included). Whatever ``compute`` raises is
        re-raised and nothing is written.
    """
    study_dir = _study_dir(study, root)
    payload = canonical_config(config)
    rid = run_id(config)
    final = study_dir / rid
    if (final / "DONE").is_file() and not force:
        return _read_run(final)

    study_dir.mkdir(parents=True, exist_ok=True)
    _remove_stale(study_dir, rid)
    started = time.time()
    t0 = time.perf_counter()
    rows = compute()
    wall_s = time.perf_counter() - t0
    table = _table(rows, rid, _config_columns(payload))

    tmp = Path(tempfile.mkdtemp(prefix=f"{_TMP_PREFIX}{rid}-{os.getpid()}-", dir=study_dir))
    try:
        _write(tmp / "config.json", json.dumps(payload, sort_keys=True, indent=2) + "\n")
        _write(tmp / "rows.csv", table.to_csv(index=False))
        provenance = _provenance(rid, study, payload, started, wall_s)
        _write(tmp / "provenance.json", json.dumps(provenance, indent=2) + "\n")
        _write(tmp / "DONE", provenance["finished"] + "\n")
        _publish(tmp, final, replace=force)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)  # gone already after a successful rename
    if not keep_checkpoints:
        shutil.rmtree(study_dir / "checkpoints" / rid, ignore_errors=True)
    return _read_run(final)


def _publish(tmp: Path, final: Path, *, replace: bool) -> None:
    """Rename the complete ``tmp`` folder to ``final``.

    An existing finished ``final`` is kept (another process finished the same run
    first) unless ``replace``; an unfinished one (no ``DONE``) is always replaced.
    """
    if final.exists():
        if (final / "DONE").is_file() and not replace:
            return
        trash = final.with_name(f"{_TMP_PREFIX}{final.name}-{os.getpid()}-old")
        os.rename(final, trash)
        try:
            os.rename(tmp, final)
        finally:
            shutil.rmtree(trash, ignore_errors=True)
        return
    try:
        os.rename(tmp, final)
    except OSError:
        if not (final / "DONE").is_file():  # not a concurrent finisher: a real error
            raise


def load(study: str, *, root: str | os.PathLike[str] | None = None, **filters: Any) -> pd.DataFrame:
    """Rows of every finished run of ``study``, optionally filtered by column values.

    Parameters
    ----------
    study : str
        Study folder name.
    root : path-like, optional
        Results root; ``fairdd.paths.results_root()`` by default.
    **filters
        ``column=value`` keeps rows whose column equals value (config fields, compute's
        columns or provenance columns; a tuple or list value matches a sequence field).

    Returns
    -------
    pandas.DataFrame
        The runs' rows as :func:`run` returns them, runs in ``run_id`` order; empty
        (no columns) when the study has no finished run.
    """
    study_dir = _study_dir(study, root)
    runs = sorted(d for d in study_dir.glob("*/DONE") if not d.parent.name.startswith("."))
    if not runs:
        return pd.DataFrame()
    with warnings.catch_warnings():
        # Runs may lack a column that others have; pandas' notice about all-NA columns
        # changing the concatenated dtype in future versions does not matter here.
        warnings.filterwarnings("ignore", message=".*concatenation with empty or all-NA.*", category=FutureWarning)
        frame = pd.concat([_read_run(d.parent) for d in runs], ignore_index=True)
    for column, value in filters.items():
        if column not in frame.columns:
            raise ValueError(f"filter {column}={value!r}: no such column; columns are {list(frame.columns)}")
        if isinstance(value, (list, tuple)):
            value = _dumps(_canonical(value, column))
        frame = frame[frame[column] == value]
    return frame.reset_index(drop=True)
