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

Nothing read back is trusted unchecked. ``DONE`` is a JSON manifest: the SHA-256 of
``config.json``, ``rows.csv`` and ``provenance.json``, the row count, and each column's
dtype (with the exact values of the few columns that mix types or hold missing values), so
rows round-trip exactly, types included (``"007"``, ``"NA"``, ``"None"`` and ``""`` stay
strings). A run whose files do not match its manifest, or whose ``config.json`` does not hash
to its folder name, is *corrupt*: :func:`run` recomputes it (with a warning; the damaged
folder is kept aside as ``.corrupt-<run_id>-...``), :func:`load` skips it with a
``RuntimeWarning`` naming its folder (one bad run does not hide a whole study), and
:func:`is_finished` says ``False``. Runs written before manifests existed (``DONE`` holds
only a time stamp) are still read, after the config-hash check. ``run(force=True)`` moves
the old run aside (``.old-<run_id>-<pid>``) before renaming the new one in; if the process
dies in between, the next :func:`run` or :func:`load` puts the old run back.

``run_id`` is the first 12 hex digits of the sha256 of the config's canonical JSON:
the class name and every field, nested dataclasses, tuples and lists included, keys
sorted. An int given to a field annotated ``float`` hashes as that float (``lr=1`` and
``lr=1.0`` are the same config). A field declared with
``dataclasses.field(..., metadata={"run_id": False})`` (e.g. a process count that does
not change the result) is left out of the hash and of the columns. A field declared with
``metadata={"run_id": "unless_default"}`` is left out while it holds its default and hashed
when it does not: an option added later (e.g. ``batched``, which changes results within float
tolerance) then leaves every earlier run id as it was and gives the runs that use it ids of
their own.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import enum
import errno
import hashlib
import importlib.metadata
import json
import os
import pickle
import platform
import re
import shutil
import subprocess
import tempfile
import time
import warnings
import zipfile
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path, PurePath
from typing import Any

import numpy as np
import pandas as pd
import torch

from fairdd.paths import REPO_ROOT, results_root

__all__ = [
    "RUN_ID_LENGTH",
    "RUN_LIST_PROVENANCE",
    "CorruptRunError",
    "DamagedFileError",
    "canonical_config",
    "check_digest",
    "cpu_capability",
    "check_root",
    "checkpoint_dir",
    "claim_file",
    "claim_holder",
    "digest_file",
    "discard_damaged",
    "disk_full",
    "is_finished",
    "load",
    "load_cache",
    "load_checkpoint",
    "load_runs",
    "pid_alive",
    "run",
    "run_dir",
    "run_id",
    "runs",
    "save_checkpoint",
]

RUN_ID_LENGTH = 12  # hex digits of sha256: 48 bits, no collision among any realistic sweep
_STUDY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
_TMP_PREFIX = ".tmp-"
_OLD_PREFIX = ".old-"  # a finished run moved aside by run(force=True) while its successor is renamed in
_CORRUPT_PREFIX = ".corrupt-"
_MANIFEST_VERSION = 1
# Columns that read-back adds from provenance.json to every row (``finished``: when the run ended, UTC).
_PROVENANCE_COLUMNS = ("commit", "dirty", "device", "finished")


# ------------------------------------------------------------------------- config hash


def _default(f: dataclasses.Field) -> Any:
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    raise ValueError(f"field {f.name!r} has metadata run_id='unless_default' but no default")


def _canonical(value: Any, where: str, annotation: Any = None) -> Any:
    """JSON-ready, order-independent form of a config value (``where`` names it in errors)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        out: dict[str, Any] = {"__class__": type(value).__name__}
        for f in dataclasses.fields(value):
            mode = f.metadata.get("run_id", True)
            if mode not in (True, False, "unless_default"):
                raise ValueError(f"{where}.{f.name}: metadata run_id={mode!r} must be True, False or 'unless_default'")
            if mode == "unless_default" and getattr(value, f.name) == _default(f):
                continue
            if mode:
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
    """Whether the run of ``config`` in ``study`` is finished and whole.

    Its ``DONE`` manifest exists and its files and rows match it, row count included (a corrupt
    run is not finished: :func:`run` recomputes it). A run replaced by an interrupted
    ``run(force=True)`` is put back first.
    """
    final = run_dir(study, config, root=root)
    _restore_replaced(final.parent, final.name)
    if not (final / "DONE").is_file():
        return False
    try:
        _read_run(final)
    except CorruptRunError:
        return False
    return True


def checkpoint_dir(study: str, config: Any, *, root: str | os.PathLike[str] | None = None) -> Path:
    """Folder (created) for resumable checkpoints of the unfinished run of ``config``.

    ``<root>/<study>/checkpoints/<run_id>``, outside the run folder so that the run can
    still appear atomically; :func:`run` deletes it once the run is finished unless
    asked to keep it. Use :func:`save_checkpoint` / :func:`load_checkpoint` inside it.
    """
    path = _study_dir(study, root) / "checkpoints" / run_id(config)
    path.mkdir(parents=True, exist_ok=True)
    return path


_DISK_FULL = (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC))


def disk_full(path: str | os.PathLike[str], exc: BaseException) -> OSError | None:
    """The one clear error for a write to ``path`` that failed for want of space (an ``OSError``
    ENOSPC/EDQUOT, or torch's ``unexpected pos`` / ``file write failed`` from a short write);
    ``None`` when ``exc`` is another failure."""
    full = isinstance(exc, OSError) and exc.errno in _DISK_FULL
    full = full or (isinstance(exc, RuntimeError) and any(
        text in str(exc) for text in ("unexpected pos", "file write failed", "No space left")
    ))
    if not full:
        return None
    return OSError(
        errno.ENOSPC,
        f"the disk is full: writing {path} failed ({type(exc).__name__}: {str(exc)[:160]}). Nothing half-written "
        "was kept and finished runs are intact; free space there (or point FAIRDD_RESULTS / --root at another "
        "disk) and run the same command again to resume",
    )


def check_root(root: str | os.PathLike[str] | None = None) -> Path:
    """The run store's root (``root``, else :func:`fairdd.paths.results_root`), checked before any
    work: it exists or can be made, is a folder, and can be written. ``NotADirectoryError`` or
    ``PermissionError`` naming the folder and what to do otherwise."""
    path = Path(root if root is not None else results_root())
    where = "root= / --root" if root is not None else "FAIRDD_RESULTS"
    if path.exists() and not path.is_dir():
        raise NotADirectoryError(
            f"the results folder {path} is not a folder (a file is there); nothing was computed. Point {where} "
            "at a folder"
        )
    try:
        path.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError) as exc:
        raise NotADirectoryError(
            f"the results folder {path} cannot be made: a file is where one of its parent folders should be "
            f"({exc}); nothing was computed. Point {where} at a folder"
        ) from exc
    except OSError as exc:
        raise PermissionError(
            f"the results folder {path} cannot be made ({type(exc).__name__}: {exc}); nothing was computed. "
            f"Point {where} at a writable folder"
        ) from exc
    try:
        fd, probe = tempfile.mkstemp(prefix=f"{_TMP_PREFIX}probe-{os.getpid()}-", dir=path)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise PermissionError(
            f"the results folder {path} is not writable ({type(exc).__name__}: {exc}); nothing was computed. "
            f"Fix its permissions, or point {where} at a writable folder"
        ) from exc
    return path


class DamagedFileError(ValueError):
    """A file this project wrote (a checkpoint, a cache) that does not match the SHA-256 written
    with it, or cannot be read back; ``path`` names it and ``why`` says what is wrong."""

    path: Path | None = None
    why: str = ""


def digest_file(path: str | os.PathLike[str]) -> Path:
    """``<folder>/.<name>.sha256``: the SHA-256 :func:`save_checkpoint` writes beside ``path``
    (hidden, so that listings of artefacts, which skip hidden files, do not see it)."""
    path = Path(path)
    return path.with_name(f".{path.name}.sha256")


def _damaged(path: Path, why: str) -> DamagedFileError:
    exc = DamagedFileError(f"checkpoint {path} is damaged: {why}; delete it to restart that computation from the beginning")
    exc.path, exc.why = path, why
    return exc


def check_digest(path: str | os.PathLike[str]) -> None:
    """Check ``path`` against the SHA-256 :func:`save_checkpoint` wrote with it;
    :class:`DamagedFileError` when they differ. A file without one (written before digests, or by
    another program) passes: its content is checked by whoever reads it."""
    path = Path(path)
    try:
        expected = digest_file(path).read_text().strip()
    except FileNotFoundError:
        return
    except OSError as exc:
        raise _damaged(path, f"its SHA-256 file {digest_file(path)} cannot be read ({exc})") from exc
    if _sha256_file(path) != expected:
        raise _damaged(path, f"it does not match the SHA-256 written with it ({digest_file(path)})")


def _write_atomic(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f"{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def save_checkpoint(path: str | os.PathLike[str], state: dict[str, Any]) -> None:
    """Write ``state`` with ``torch.save`` atomically: a temporary file, then ``os.replace``; and
    its SHA-256 beside it (:func:`digest_file`), which :func:`load_checkpoint` checks.

    A kill mid-write leaves the previous checkpoint (or none) in place, never a torn one (a kill
    between the file and its digest leaves a file without one, which is read as written before
    digests). A full disk is one ``OSError`` (ENOSPC) naming the file (:func:`disk_full`).

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
        digest = _sha256_file(Path(tmp))
        digest_file(path).unlink(missing_ok=True)
        os.replace(tmp, path)
        _write_atomic(digest_file(path), digest + "\n")
    except BaseException as exc:
        Path(tmp).unlink(missing_ok=True)
        full = disk_full(path, exc)
        if full is not None:
            raise full from exc
        raise


def load_checkpoint(
    path: str | os.PathLike[str], *, map_location: str | torch.device = "cpu", weights_only: bool = True
) -> dict[str, Any] | None:
    """Read a checkpoint written by :func:`save_checkpoint`; ``None`` if there is none.

    The file is checked against its SHA-256 first (:func:`check_digest`). ``weights_only=True``
    (torch's safe loader) accepts tensors, numbers, strings and containers; pass ``False`` only
    for a file this project wrote itself. A file that fails its digest, cannot be read, or holds
    what the safe loader refuses raises :class:`DamagedFileError` (a ``ValueError``) naming it;
    :func:`load_cache` recomputes instead.
    """
    path = Path(path)
    if not path.is_file():
        return None
    check_digest(path)
    try:
        return torch.load(path, map_location=map_location, weights_only=weights_only)
    except (OSError, EOFError, RuntimeError, ValueError, pickle.UnpicklingError, zipfile.BadZipFile) as exc:
        if "Weights only load failed" in str(exc):
            first = next((line for line in str(exc).splitlines() if "WeightsUnpickler error" in line), "")
            why = f"it holds objects torch's safe loader refuses, not a checkpoint fairdd wrote ({first.strip()[:200]})"
        else:
            why = (f"it is not a torch checkpoint ({path.stat().st_size} bytes; "
                   f"{type(exc).__name__}: {str(exc)[:200] or 'no message'})")
        raise _damaged(path, why) from exc


def load_cache(path: str | os.PathLike[str], *, map_location: str | torch.device = "cpu") -> dict[str, Any] | None:
    """:func:`load_checkpoint` for a file that can be recomputed (a cache, a resumable checkpoint):
    ``None`` when there is none *or it is damaged* — then it is moved aside (as
    ``.damaged-<name>-<time>-<pid>``) with a ``RuntimeWarning`` naming it, and the caller
    recomputes it. What the file holds is the caller's to check."""
    path = Path(path)
    try:
        return load_checkpoint(path, map_location=map_location)
    except DamagedFileError as exc:
        _set_aside(path, exc, stacklevel=4)
        return None


def discard_damaged(path: str | os.PathLike[str]) -> bool:
    """Whether the file at ``path`` failed its SHA-256 (:func:`check_digest`) and was moved aside,
    with a ``RuntimeWarning`` naming it, for its writer to recompute it (a file too large to load
    just to check it: MTT's expert trajectories, read memory-mapped)."""
    path = Path(path)
    try:
        check_digest(path)
    except DamagedFileError as exc:
        _set_aside(path, exc, stacklevel=4)
        return True
    return False


def _set_aside(path: Path, exc: DamagedFileError, *, stacklevel: int) -> None:
    aside = path.with_name(f".damaged-{path.name}-{time.strftime('%Y%m%dT%H%M%S')}-{os.getpid()}")
    try:
        os.rename(path, aside)
    except OSError:
        aside = path  # moved or replaced meanwhile by another process
    digest_file(path).unlink(missing_ok=True)
    warnings.warn(f"{path} is damaged ({exc.why}); it is recomputed (the damaged file is kept as {aside.name})",
                  RuntimeWarning, stacklevel=stacklevel)


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


def cpu_capability() -> str:
    """The CPU kernels torch dispatches to on this machine (``torch.backends.cpu.get_cpu_capability()``:
    e.g. ``"AVX512"``, ``"AVX2"``, ``"DEFAULT"``). Runs on machines of different capability
    round differently (other convolution kernels), so bit-identity of a recomputed run is
    expected only on the capability it was recorded with (:func:`fairdd.records.verify`)."""
    return str(torch.backends.cpu.get_cpu_capability())


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
        "cpu_capability": cpu_capability(),
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


class CorruptRunError(ValueError):
    """A finished run whose files do not match its ``DONE`` manifest (or its run id); ``why``
    says what is wrong, without the advice (a recorded run needs other advice than a stored one)."""

    why: str = ""


_RUN_FILES = ("config.json", "rows.csv", "provenance.json")


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _column_specs(frame: pd.DataFrame) -> dict[str, Any]:
    """Per column: its dtype, and for an object column that is not all strings, its exact values."""
    specs: dict[str, Any] = {}
    for column in frame.columns:
        dtype = frame[column].dtype
        spec: dict[str, Any] = {"dtype": str(dtype)}
        textual = not (pd.api.types.is_numeric_dtype(dtype) or pd.api.types.is_bool_dtype(dtype))
        if textual and not all(isinstance(v, str) for v in frame[column]):
            # None vs NaN vs "" and mixed types cannot survive a CSV; keep the values themselves.
            spec["values"] = [
                {"nan": True} if isinstance(v, float) and v != v else {"v": v} for v in frame[column].tolist()
            ]
        specs[column] = spec
    return specs


def _manifest(folder: Path, table: pd.DataFrame, finished: str) -> str:
    manifest = {
        "version": _MANIFEST_VERSION,
        "finished": finished,
        "rows": len(table),
        "columns": _column_specs(table),
        "sha256": {name: _sha256_file(folder / name) for name in _RUN_FILES},
    }
    return json.dumps(manifest, indent=1, allow_nan=True) + "\n"


def _corrupt(path: Path, why: str) -> CorruptRunError:
    exc = CorruptRunError(
        f"run folder {path} is corrupt: {why}. Delete the folder (or call run(..., force=True)) "
        "to recompute it; results.run recomputes it by itself"
    )
    exc.why = why
    return exc


def _verify_run(path: Path) -> dict[str, Any] | None:
    """Check a finished run folder against its manifest; the manifest (``None`` for a legacy run)."""
    try:
        done = (path / "DONE").read_text()
    except OSError as exc:
        raise _corrupt(path, f"DONE cannot be read ({exc})") from exc
    manifest: dict[str, Any] | None = None
    if done.lstrip().startswith("{"):
        try:
            manifest = json.loads(done)
            digests, n_rows, columns = manifest["sha256"], manifest["rows"], manifest["columns"]
        except (ValueError, KeyError, TypeError) as exc:
            raise _corrupt(path, f"its DONE manifest is unreadable ({exc})") from exc
        for name in _RUN_FILES:
            if not (path / name).is_file():
                raise _corrupt(path, f"{name} is missing")
            if _sha256_file(path / name) != digests.get(name):
                raise _corrupt(path, f"{name} does not match the SHA-256 recorded when the run finished")
        if not isinstance(n_rows, int) or not isinstance(columns, dict):
            raise _corrupt(path, "its DONE manifest is malformed")
    else:
        for name in _RUN_FILES:
            if not (path / name).is_file():
                raise _corrupt(path, f"{name} is missing")
    try:
        payload = json.loads((path / "config.json").read_text())
        rid = hashlib.sha256(_dumps(payload).encode()).hexdigest()[:RUN_ID_LENGTH]
    except (OSError, ValueError) as exc:
        raise _corrupt(path, f"config.json is unreadable ({exc})") from exc
    if rid != path.name:
        raise _corrupt(path, f"config.json hashes to run id {rid}, not to the folder name")
    return manifest


def _read_run(path: Path) -> pd.DataFrame:
    """The rows of the finished run at ``path``, checked (``CorruptRunError`` when damaged)."""
    manifest = _verify_run(path)
    try:
        provenance = json.loads((path / "provenance.json").read_text())
        if manifest is None:  # a run from before manifests: pandas' type inference, as then
            rows = pd.read_csv(path / "rows.csv")
        else:
            rows = _read_rows(path / "rows.csv", manifest["columns"])
    except (OSError, ValueError, TypeError, KeyError, pd.errors.ParserError) as exc:
        raise _corrupt(path, f"{type(exc).__name__}: {exc}") from exc
    if manifest is not None and len(rows) != manifest["rows"]:
        raise _corrupt(path, f"rows.csv holds {len(rows)} rows; the run finished with {manifest['rows']}")
    if "run_id" not in rows.columns or not (rows["run_id"].astype(str) == path.name).all():
        raise _corrupt(path, "rows.csv's run_id column does not name this run")
    # The provenance columns joined in one step (inserted one by one, a wide frame of many dtype
    # blocks makes pandas warn about fragmentation on the page).
    extra = pd.DataFrame({column: [provenance.get(column)] * len(rows) for column in _PROVENANCE_COLUMNS},
                         index=rows.index)
    return pd.concat([rows.drop(columns=[c for c in _PROVENANCE_COLUMNS if c in rows.columns]), extra], axis=1)


def _read_rows(path: Path, columns: dict[str, Any]) -> pd.DataFrame:
    """rows.csv read back with the dtypes (and exact mixed values) the manifest records."""
    header = pd.read_csv(path, nrows=0, keep_default_na=False).columns.tolist()
    if header != list(columns):
        raise ValueError(f"rows.csv columns {header} differ from the recorded {list(columns)}")
    dtypes: dict[str, Any] = {}
    na_values: dict[str, list[str]] = {}
    for column, spec in columns.items():
        dtype = spec["dtype"]
        if dtype in ("object", "str", "string"):
            dtypes[column] = str  # every cell as written; mixed columns are replaced below
        else:
            dtypes[column] = dtype
            if dtype.startswith("float"):
                na_values[column] = [""]
    # pandas >= 3 parses floats exactly by default (and deprecates the option).
    exact = {"float_precision": "round_trip"} if int(pd.__version__.split(".")[0]) < 3 else {}
    frame = pd.read_csv(path, dtype=dtypes, keep_default_na=False, na_values=na_values, **exact)
    for column, spec in columns.items():
        if "values" in spec:
            values = [float("nan") if cell.get("nan") else cell["v"] for cell in spec["values"]]
            if len(values) != len(frame):
                raise ValueError(f"column {column!r}: {len(values)} recorded values for {len(frame)} rows")
            frame[column] = pd.Series(values, dtype=spec["dtype"], index=frame.index)
    return frame


# ------------------------------------------------------------------------- run / load


def _write(path: Path, text: str) -> None:
    try:
        with open(path, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
    except OSError as exc:
        full = disk_full(path, exc)
        if full is not None:
            raise full from exc
        raise


def pid_alive(pid: int) -> bool:
    """Whether a process with this id exists (used to clear the leftovers of dead writers)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _process_started_at(pid: int) -> float | None:
    """When process ``pid`` started (seconds since the epoch; Linux ``/proc``), or ``None``."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        boot = next(int(line.split()[1]) for line in Path("/proc/stat").read_text().splitlines() if line.startswith("btime"))
        ticks = int(stat[stat.rfind(")") + 2 :].split()[19])  # field 22; the name (field 2) may hold spaces
        return boot + ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, StopIteration):
        return None


_CLOCK_SLACK_S = 2.0  # btime has whole seconds; claims are written after their process starts


def claim_holder(path: str | os.PathLike[str]) -> int | None:
    """The pid of the live process that holds the claim on ``path``; ``None`` when there is no
    claim or it is stale.

    A claim (``<path>.claim``, holding a pid) is stale when that pid is dead, or when the
    process now running under that pid started *after* the claim was written: the machine
    rebooted or the pid was reused by an unrelated process (checked on Linux, where ``/proc``
    gives the start time).
    """
    claim = Path(path).with_suffix(".claim")
    try:
        text, written = claim.read_text().strip(), claim.stat().st_mtime
    except (FileNotFoundError, NotADirectoryError):
        return None
    if not text.isdigit() or not pid_alive(int(text)):
        return None
    started = _process_started_at(int(text))
    if started is not None and started > written + _CLOCK_SLACK_S:
        return None  # that pid belongs to a process younger than the claim
    return int(text)


def claim_file(path: str | os.PathLike[str]) -> bool:
    """Claim the right to write ``path``: create ``<path>.claim`` holding our pid, atomically.

    ``False`` if a live process holds the claim. A stale claim (see :func:`claim_holder`: its
    process is dead, or its pid now belongs to an unrelated process) is taken over. The caller
    writes ``path`` (with :func:`save_checkpoint`) and then deletes ``<path>.claim``. How several
    worker processes share one expensive artefact (MTT's expert trajectories, the teachers of
    Mohammadshahi & Ioannou, "What's Left After Distillation? How Knowledge Transfer Impacts
    Fairness and Bias"): the first to claim trains it, the others wait for the file (with a
    timeout).
    """
    claim = Path(path).with_suffix(".claim")
    claim.parent.mkdir(parents=True, exist_ok=True)
    for _ in range(3):
        try:
            fd = os.open(claim, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            try:
                text, age = claim.read_text(), time.time() - claim.stat().st_mtime
            except FileNotFoundError:
                continue  # released meanwhile: try again
            if not text and age < 10:
                return False  # just created; its pid is being written
            if text and claim_holder(path) is not None:
                return False
            claim.unlink(missing_ok=True)  # a stale claim: take it over
            continue
        with os.fdopen(fd, "w") as fh:
            fh.write(str(os.getpid()))
        return True
    return False


def _remove_stale(study_dir: Path, rid: str) -> None:
    """Delete temporary folders of this run left by processes that no longer exist."""
    for tmp in study_dir.glob(f"{_TMP_PREFIX}{rid}-*"):
        match = re.match(rf"^{re.escape(_TMP_PREFIX)}{rid}-(\d+)-", tmp.name)
        if match and not pid_alive(int(match.group(1))):
            shutil.rmtree(tmp, ignore_errors=True)


def _restore_replaced(study_dir: Path, rid: str) -> None:
    """Put back a finished run that an interrupted ``run(force=True)`` had moved aside.

    ``force`` renames the old run to ``.old-<rid>-<pid>`` before renaming the new one in; a
    process killed between the two renames leaves no run at ``<rid>``. If the replacing
    process is gone: with the new run in place the old one is deleted, else it is restored.
    """
    for old in study_dir.glob(f"{_OLD_PREFIX}{rid}-*"):
        match = re.match(rf"^{re.escape(_OLD_PREFIX)}{rid}-(\d+)$", old.name)
        if not match or pid_alive(int(match.group(1))):
            continue
        final = study_dir / rid
        if (final / "DONE").is_file():
            shutil.rmtree(old, ignore_errors=True)
            continue
        if final.exists():  # an unfinished leftover where the old run belongs
            shutil.rmtree(final, ignore_errors=True)
        try:
            os.rename(old, final)
        except OSError:
            pass  # another process restored it first


def _check_writable(study_dir: Path) -> None:
    """Fail before any computation when the run store cannot be written."""
    try:
        study_dir.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=f"{_TMP_PREFIX}probe-{os.getpid()}-", dir=study_dir)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise PermissionError(
            f"the results folder {study_dir} is not writable ({type(exc).__name__}: {exc}); nothing was "
            "computed. Fix its permissions, or point FAIRDD_RESULTS (or root=) at a writable folder"
        ) from exc


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
        provenance columns ``commit``, ``dirty``, ``device``, ``finished``. Identical whether the run
        was just computed or loaded.

    Raises
    ------
    ValueError
        On a malformed study name, config or rows (a row column that clashes with a
        config field of a different value included). Whatever ``compute`` raises is
        re-raised and nothing is written.
    PermissionError
        The results folder cannot be written; raised before ``compute`` runs.

    Warns
    -----
    RuntimeWarning
        A finished run whose files fail their check (see the module notes) is recomputed;
        the damaged folder is kept as ``<study>/.corrupt-<run_id>-<time>``.
    """
    study_dir = _study_dir(study, root)
    payload = canonical_config(config)
    rid = run_id(config)
    final = study_dir / rid
    if study_dir.is_dir():
        _restore_replaced(study_dir, rid)
    if (final / "DONE").is_file() and not force:
        try:
            return _read_run(final)
        except CorruptRunError as exc:
            warnings.warn(f"{exc}; recomputing it", RuntimeWarning, stacklevel=2)
            aside = study_dir / f"{_CORRUPT_PREFIX}{rid}-{time.strftime('%Y%m%dT%H%M%S')}-{os.getpid()}"
            try:
                os.rename(final, aside)
            except OSError:
                pass  # another process moved or replaced it meanwhile; _publish decides

    _check_writable(study_dir)
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
        _write(tmp / "DONE", _manifest(tmp, table, provenance["finished"]))
        _publish(tmp, final, replace=force)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)  # gone already after a successful rename
    if not keep_checkpoints:
        shutil.rmtree(study_dir / "checkpoints" / rid, ignore_errors=True)
    return _read_run(final)


def _publish(tmp: Path, final: Path, *, replace: bool) -> None:
    """Rename the complete ``tmp`` folder to ``final``.

    An existing finished ``final`` is kept (another process finished the same run
    first) unless ``replace``; an unfinished one (no ``DONE``) is always replaced. The
    replaced run is moved to ``.old-<run_id>-<pid>`` first and deleted only once the new
    one is in place, so a kill between the two renames loses nothing
    (:func:`_restore_replaced` puts it back).
    """
    if final.exists():
        if (final / "DONE").is_file() and not replace:
            return
        aside = final.with_name(f"{_OLD_PREFIX}{final.name}-{os.getpid()}")
        shutil.rmtree(aside, ignore_errors=True)
        os.rename(final, aside)
        try:
            os.rename(tmp, final)
        except BaseException:
            if not final.exists():
                os.rename(aside, final)  # put the old run back
            raise
        shutil.rmtree(aside, ignore_errors=True)
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

    Warns
    -----
    RuntimeWarning
        For each corrupt run (files that fail their check, see the module notes), naming
        its folder; that run is left out and the others are returned.
    """
    study_dir = _study_dir(study, root)
    for old in study_dir.glob(f"{_OLD_PREFIX}*"):
        match = re.match(rf"^{re.escape(_OLD_PREFIX)}([0-9a-f]{{{RUN_ID_LENGTH}}})-\d+$", old.name)
        if match:
            _restore_replaced(study_dir, match.group(1))
    runs = sorted(d for d in study_dir.glob("*/DONE") if not d.parent.name.startswith("."))
    parts = []
    for done in runs:
        try:
            parts.append(_read_run(done.parent))
        except CorruptRunError as exc:
            warnings.warn(f"results.load({study!r}) skips a run: {exc}", RuntimeWarning, stacklevel=2)
    if not parts:
        return pd.DataFrame()
    with warnings.catch_warnings():
        # Runs may lack a column that others have; pandas' notice about all-NA columns
        # changing the concatenated dtype in future versions does not matter here.
        warnings.filterwarnings("ignore", message=".*concatenation with empty or all-NA.*", category=FutureWarning)
        frame = pd.concat(parts, ignore_index=True)
    for column, value in filters.items():
        if column not in frame.columns:
            raise ValueError(f"filter {column}={value!r}: no such column; columns are {list(frame.columns)}")
        if isinstance(value, (list, tuple)):
            value = _dumps(_canonical(value, column))
        frame = frame[frame[column] == value]
    return frame.reset_index(drop=True)


#: The provenance fields :func:`runs` lists beside each run's config.
RUN_LIST_PROVENANCE = ("commit", "dirty", "device", "started", "finished", "wall_s")


def runs(study: str, *, root: str | os.PathLike[str] | None = None) -> pd.DataFrame:
    """One row per finished run of ``study``: what is stored, whatever config produced it.

    Parameters
    ----------
    study : str
        Study folder name.
    root : path-like, optional
        Results root; ``fairdd.paths.results_root()`` by default.

    Returns
    -------
    pandas.DataFrame
        ``run_id``, the run's config columns as its ``rows.csv`` holds them (nested fields
        dotted, lists as JSON; in ``rows.csv``'s order), then :data:`RUN_LIST_PROVENANCE` from
        its ``provenance.json`` (``wall_s``: the run's wall seconds); runs in run id order.
        Columns hold the values as stored (``object`` dtype: an int stays an int); a config
        column a run lacks holds NaN. Empty (no columns) when the study has none.

    Warns
    -----
    RuntimeWarning
        For each corrupt run (as :func:`load`), which is left out.
    """
    study_dir = _study_dir(study, root)
    out = []
    for done in sorted(d for d in study_dir.glob("*/DONE") if not d.parent.name.startswith(".")):
        path = done.parent
        try:
            manifest = _verify_run(path)
            payload = json.loads((path / "config.json").read_text())
            provenance = json.loads((path / "provenance.json").read_text())
            header = list(manifest["columns"]) if manifest is not None else \
                pd.read_csv(path / "rows.csv", nrows=0, keep_default_na=False).columns.tolist()
        except CorruptRunError as exc:
            warnings.warn(f"results.runs({study!r}) skips a run: {exc}", RuntimeWarning, stacklevel=2)
            continue
        except (OSError, ValueError, pd.errors.ParserError) as exc:
            warnings.warn(f"results.runs({study!r}) skips a run: {_corrupt(path, f'{type(exc).__name__}: {exc}')}",
                          RuntimeWarning, stacklevel=2)
            continue
        columns = _config_columns(payload if isinstance(payload, dict) else {})
        ordered = [c for c in header if c in columns] + [c for c in columns if c not in header]
        out.append({"run_id": path.name, **{c: columns[c] for c in ordered},
                    **{k: provenance.get(k) for k in RUN_LIST_PROVENANCE}})
    if not out:
        return pd.DataFrame()
    keys = list(dict.fromkeys(k for row in out for k in row if k not in RUN_LIST_PROVENANCE))
    return pd.DataFrame(out, columns=[*keys, *RUN_LIST_PROVENANCE], dtype=object)


def load_runs(
    study: str, configs: Sequence[Any], *, root: str | os.PathLike[str] | None = None
) -> tuple[pd.DataFrame, list[Any]]:
    """The rows of the finished runs of ``configs``, and the configs whose run is not there.

    Nothing is computed. Rows come in the order of ``configs`` (a config given twice is read
    once), each run's rows as :func:`load` returns them, provenance columns included; a corrupt
    run counts as not there (with a ``RuntimeWarning``). The frame is empty (no columns) when no
    run is finished.
    """
    parts, missing = [], []
    for config in dict.fromkeys(configs):
        final = run_dir(study, config, root=root)
        _restore_replaced(final.parent, final.name)
        if not (final / "DONE").is_file():
            missing.append(config)
            continue
        try:
            parts.append(_read_run(final))
        except CorruptRunError as exc:
            warnings.warn(f"results.load_runs({study!r}): {exc}", RuntimeWarning, stacklevel=2)
            missing.append(config)
    if not parts:
        return pd.DataFrame(), missing
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*concatenation with empty or all-NA.*", category=FutureWarning)
        return pd.concat(parts, ignore_index=True), missing
