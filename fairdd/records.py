"""Recorded runs: finished runs of the run store kept in the repository, so that the book builds
from them on any machine and shows runs made elsewhere (a ``"paper"`` run on a lent GPU).

Layout under ``records/`` (``$FAIRDD_RECORDS`` moves it), one folder per profile::

    <profile>/<study>/<run_id>/{config.json, rows.csv, provenance.json, DONE}   as in the run store
    <profile>/<study>/synthetic/<run_id>.pt   a synthetic set a page draws, images stored in 8 bits
    <profile>/<study>/weights/...             other small artefacts a page reads (the attribute probe)
    <profile>/INDEX.json                      what was recorded: runs and bytes per study, when, from where

Three operations (``python -m fairdd.records record|restore|verify``, and ``make record``,
``make book``, ``make verify``):

* :func:`record` copies every finished run of a results root (the one a fresh build of the book
  computed into) to ``records/<profile>/``, adding runs and replacing the records of the same
  runs; a record the results root does not hold is kept (a partial build never deletes records)
  unless ``--prune`` is given, which removes and lists them. Resumable
  state (``checkpoints/``) and shared caches (``cache/``: MTT experts, KD teachers) are not recorded:
  a page needs the rows, not the means of recomputing them.
* :func:`restore` copies the records of a profile into a results root, skipping runs that are there
  already (a corrupt copy there is replaced by the record), so the notebooks read them instead of
  recomputing them. Every record is checked first — a folder with its ``DONE`` manifest, files
  and rows matching it, as many runs per study as ``INDEX.json`` lists — and one that fails is
  refused with an error that names it and says how to get it back; nothing is written then.
* :func:`verify` recomputes a sample of the records from nothing in a temporary root — every
  method's cheapest recorded run (by recorded wall time), and every study at least once — and compares
  the rows with the records: bit-identical (``atol=0``) by default, which is what deterministic CPU
  code gives; ``atol`` states a tolerance for records made on another device. Columns that measure
  time are not compared. A record that is not a cell of the current code's config for its profile
  (its config changed since it was recorded) fails too. When a change to the code is meant to
  change results, re-record: ``make book FRESH=1 && make record``.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as _dt
import json
import os
import re
import shutil
import sys
import tempfile
import time
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from fairdd import results
from fairdd.config import check_profile
from fairdd.paths import REPO_ROOT, results_root

__all__ = [
    "OTHER_KERNELS_ATOL",
    "OTHER_KERNELS_RTOL",
    "RECORDED_CACHES",
    "TIMING_COLUMN",
    "Mismatch",
    "book_cells",
    "compare_rows",
    "record",
    "records_root",
    "restore",
    "verify",
]

#: Columns that measure time (never compared by :func:`verify`): ``*_s``, ``*_seconds``, ``*_time*``.
#: How far a run recomputed on other CPU kernels (:func:`fairdd.results.cpu_capability`) may be
#: from its record: ``|recorded - recomputed| <= OTHER_KERNELS_ATOL + OTHER_KERNELS_RTOL * |recorded|``.
#: Not float tolerance: a training run amplifies the kernels' different rounding into a different
#: trajectory. Set from a measurement (2026-12-07): every cpu record of the DD studies made on
#: AVX512 kernels, recomputed on AVX2 ones, differed by at most 0.1 in measures in [0, 1] (one test
#: image of a class flips a class accuracy by 0.01; a DEO by 0.1 on ten images) and by at most 2.3 %
#: in losses. Across kernels, verify can therefore catch only changes larger than these.
OTHER_KERNELS_ATOL = 0.15
OTHER_KERNELS_RTOL = 0.05

TIMING_COLUMN = re.compile(r"(_s|_seconds)$|(^|_)time(_|$)")
_RUN = re.compile(rf"^[0-9a-f]{{{results.RUN_ID_LENGTH}}}$")
_SKIPPED = ("checkpoints", "cache")  # resumable state and shared caches: never recorded
#: The trained networks a record keeps so that extending a recorded sweep reuses them (a new
#: temperature trains students only, from the very teachers the recorded students learnt from):
#: the results root's ``cache/<kind>/<key>/<file>``, recorded as ``<profile>/.cache/<kind>/<key>/<file>``
#: with the SHA-256 sidecar each is saved with (:func:`fairdd.results.save_checkpoint`).
RECORDED_CACHES = (("kd_teachers", "teacher.pt"),)
_CACHE = ".cache"


def records_root() -> Path:
    """``$FAIRDD_RECORDS`` or ``<repo>/records`` (an empty value is refused)."""
    value = os.environ.get("FAIRDD_RECORDS")
    if value is None:
        return REPO_ROOT / "records"
    if not value.strip():
        raise ValueError("$FAIRDD_RECORDS is set but empty; set it to a folder, or unset it to use <repo>/records")
    return Path(value)


def _profile_dir(profile: str, root: str | Path | None) -> Path:
    check_profile(profile)
    return Path(root if root is not None else records_root()) / profile


def _runs(study_dir: Path) -> list[Path]:
    return sorted(p for p in study_dir.iterdir() if p.is_dir() and _RUN.match(p.name) and (p / "DONE").is_file())


def _shown(path: Path) -> str:
    """``path`` relative to the repository when it is inside it (what ``git checkout`` takes)."""
    try:
        return str(Path(path).resolve().relative_to(REPO_ROOT.resolve()))
    except ValueError:
        return str(path)


def _refusal(path: Path, why: str) -> ValueError:
    """A record that cannot be used: what is wrong, and the advice for a record (not a run store's)."""
    return ValueError(
        f"record {path}: {why}. Nothing was written. A record is restored from git "
        f"(git checkout -- {_shown(path)}) or re-recorded (make book FRESH=1 && make record)"
    )


def _check_run(path: Path) -> None:
    """A run folder of a results root about to be recorded: whole, rows included."""
    try:
        results._read_run(path)
    except results.CorruptRunError as exc:
        raise ValueError(f"{exc}. A recorded run must be whole: re-record it (make book FRESH=1 && make record)") from exc


def _check_record(path: Path) -> None:
    """One record (``<study>/<run_id>``): a folder with its ``DONE`` manifest, files and rows matching it."""
    if not path.is_dir():
        raise _refusal(path, "not a folder (a record is a run folder)")
    if not (path / "DONE").is_file():
        raise _refusal(path, "no DONE manifest (an unfinished or damaged record)")
    try:
        results._read_run(path)
    except results.CorruptRunError as exc:
        raise _refusal(path, f"damaged: {exc.why}") from exc


def _records(source: Path, *, index: bool) -> dict[str, list[Path]]:
    """``{study: [record folders]}`` of a profile's records, every one checked
    (:func:`_check_record`), and with ``index`` cross-checked against ``INDEX.json`` (every
    study it lists is there with as many runs, and no other); a ``ValueError`` naming the first
    record that fails, before anything is written."""
    if not source.is_dir():
        raise _refusal(source, "not a folder")
    studies: dict[str, list[Path]] = {}
    for entry in sorted(source.iterdir()):
        if entry.name.startswith(".") or entry.name == "INDEX.json":
            continue
        if not entry.is_dir():
            raise _refusal(entry, "not a folder (a study's records are a folder of run folders)")
        found = []
        for run in sorted(p for p in entry.iterdir() if _RUN.match(p.name)):
            _check_record(run)
            found.append(run)
        studies[entry.name] = found
    if index:
        path = source / "INDEX.json"
        try:
            listed = json.loads(path.read_text())["studies"]
            counts = {name: int(s["runs"]) for name, s in listed.items()}
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            raise _refusal(path, f"missing or unreadable ({type(exc).__name__}: {exc}); it lists what was recorded") from exc
        for name, count in counts.items():
            if name not in studies:
                raise _refusal(source / name, f"INDEX.json lists study {name!r} with {count} runs; its folder is missing")
            if len(studies[name]) != count:
                raise _refusal(source / name, f"INDEX.json lists study {name!r} with {count} runs; "
                                              f"its folder holds {len(studies[name])}")
        for name in studies:
            if name not in counts:
                raise _refusal(source / name, f"study {name!r} is not in INDEX.json (not recorded by make record)")
    return studies


def _read_synthetic(path: Path, *, quantized: bool) -> dict[str, Any]:
    """A synthetic set (``quantized``: a recorded one, 8-bit images) read and checked."""
    keys = {"images_u8", "low", "high", "labels"} if quantized else {"images", "labels"}
    try:
        saved = results.load_checkpoint(path)
    except (ValueError, RuntimeError) as exc:
        if quantized:
            raise _refusal(path, f"damaged ({str(exc)[:200]})") from exc
        raise
    if not isinstance(saved, dict) or set(saved) != keys:
        found = sorted(saved) if isinstance(saved, dict) else type(saved).__name__
        what = f"not a {'recorded synthetic set' if quantized else 'synthetic set'} (holds {found}, expected {sorted(keys)})"
        if quantized:
            raise _refusal(path, what)
        raise ValueError(f"{path}: {what}")
    if quantized and saved["images_u8"].dtype != torch.uint8:
        raise _refusal(path, f"images_u8 of dtype {saved['images_u8'].dtype}, expected uint8")
    return saved


def _copy_synthetic(source: Path, target: Path, *, quantize: bool) -> None:
    """Copy a synthetic set, quantising its images to 8 bits (``quantize``, for the records) or
    back to float32 (for the run store).

    A recorded set keeps ``images_u8`` (uint8) with the ``low``/``high`` of the original images:
    ``images ≈ low + images_u8 / 255 · (high − low)``, within half a step (``(high − low) / 510``)
    of the original — ample for a page that draws the images, a quarter of float32's bytes.
    """
    saved = _read_synthetic(source, quantized=not quantize)
    if quantize:
        images = saved["images"].float()
        low, high = float(images.min()), float(images.max())
        scale = (high - low) or 1.0
        q = ((images - low) / scale * 255).round().clamp(0, 255).to(torch.uint8)
        results.save_checkpoint(target, {"images_u8": q, "low": low, "high": high, "labels": saved["labels"]})
    else:
        q = saved["images_u8"]
        low, high = float(saved["low"]), float(saved["high"])
        images = low + q.float() / 255 * ((high - low) or 1.0)
        results.save_checkpoint(target, {"images": images, "labels": saved["labels"]})


def _artefacts(study_dir: Path) -> list[Path]:
    """Every file below a study folder except run folders, skipped folders (checkpoints,
    caches) and hidden files, relative to it."""
    out = []
    for path in sorted(study_dir.rglob("*")):
        rel = path.relative_to(study_dir)
        if not path.is_file() or rel.parts[0] in _SKIPPED or _RUN.match(rel.parts[0]) or any(
            part.startswith(".") for part in rel.parts
        ):
            continue
        out.append(rel)
    return out


def _copy_artefacts(source: Path, target: Path, *, quantize: bool, replace: bool = False) -> int:
    """The artefacts of the study folder ``source`` (:func:`_artefacts`) into ``target``;
    synthetic sets quantised to 8 bits (``quantize``, recording) or back to float32 (restoring).
    Files already in ``target`` are kept unless ``replace`` or they fail their SHA-256 (then they
    are replaced, with a warning naming them)."""
    copied = 0
    for rel in _artefacts(source):
        path, out = source / rel, target / rel
        if out.exists():
            if not replace and not results.discard_damaged(out):  # a damaged copy is replaced
                continue
            out.unlink(missing_ok=True)
        out.parent.mkdir(parents=True, exist_ok=True)
        if rel.parts[0] == "synthetic" and path.suffix == ".pt":
            _copy_synthetic(path, out, quantize=quantize)
        else:
            shutil.copy2(path, out)
        copied += 1
    return copied


def _size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def _link_or_copy(src: str, dst: str) -> None:
    try:
        os.link(src, dst)  # records are never modified in place: a hard link is a copy
    except OSError:
        shutil.copy2(src, dst)


def _cached_networks(root: Path) -> list[Path]:
    """The :data:`RECORDED_CACHES` files under ``root/<cache folder>`` (``cache`` of a results
    root, ``.cache`` of a profile's records), relative to that folder."""
    out = []
    for kind, name in RECORDED_CACHES:
        folder = root / kind
        if folder.is_dir():
            out += sorted(p.relative_to(root) for p in folder.glob(f"*/{name}") if p.is_file())
    return out


def _check_cached(path: Path, *, recorded: bool) -> None:
    """A cached network's file against its SHA-256 sidecar (:func:`fairdd.results.check_digest`);
    it must have one. ``recorded``: a record's (refused with record advice)."""
    sidecar = results.digest_file(path)
    why = None
    if not sidecar.is_file():
        why = f"no SHA-256 sidecar ({sidecar.name}) beside it"
    else:
        try:
            results.check_digest(path)
        except results.DamagedFileError as exc:
            why = f"damaged: {exc.why}"
    if why is not None:
        if recorded:
            raise _refusal(path, why)
        raise ValueError(f"{path}: {why}; delete it and rerun to train it again")


def _copy_cached(source: Path, target: Path, rel: Path, *, replace: bool = False) -> bool:
    """Copy one cached network and its sidecar from ``source/rel`` to ``target/rel`` unless a
    whole copy is there (``replace``: copy anyway); whether it copied."""
    out = target / rel
    if not replace and out.is_file():
        try:
            _check_cached(out, recorded=False)
            return False
        except ValueError:
            pass
    out.parent.mkdir(parents=True, exist_ok=True)
    for src, dst in ((source / rel, out), (results.digest_file(source / rel), results.digest_file(out))):
        tmp = dst.with_name(f".tmp-{dst.name}-{os.getpid()}")
        shutil.copy2(src, tmp)
        os.replace(tmp, dst)
    return True


def record(
    profile: str, *, source: str | Path | None = None, root: str | Path | None = None, prune: bool = False
) -> dict[str, Any]:
    """Record every finished run under ``source`` (default: the results root) as ``profile``'s records.

    The runs of ``source`` are added to the records (a record of the same run is replaced);
    every record ``source`` does not hold is **kept** — a partial results root (a build that
    stopped early) never deletes records — unless ``prune``, which removes them (and their
    synthetic sets; a study ``source`` has no run of goes whole). The profile's folder is rebuilt
    in a temporary folder and renamed into place, so an interrupted call leaves the previous
    records. Synthetic sets are stored with 8-bit images (:func:`_copy_synthetic`). The trained
    networks of :data:`RECORDED_CACHES` in ``source``'s cache (KD teachers) are recorded beside
    the runs, each checked against its SHA-256 first (kept from earlier records unless ``prune``).

    Returns the index written to ``<profile>/INDEX.json``, with ``"added"``, ``"replaced"``,
    ``"kept"`` and ``"pruned"`` (lists of ``"<study>/<run_id>"``) beside it.
    """
    source = Path(source if source is not None else results_root())
    if not source.is_dir():
        raise FileNotFoundError(f"source={str(source)!r}: no results folder there; build the book first (make book FRESH=1)")
    if not isinstance(prune, bool):
        raise ValueError(f"prune={prune!r} must be True or False")
    target = _profile_dir(profile, root)
    if target.exists() and not target.is_dir():
        raise NotADirectoryError(f"the records folder {target} is not a folder; remove the file there or set FAIRDD_RECORDS")
    given: dict[str, list[Path]] = {}
    for study_dir in sorted(p for p in source.iterdir() if p.is_dir() and not p.name.startswith(".")):
        runs = _runs(study_dir)
        for run in runs:
            _check_run(run)
        if runs:
            given[study_dir.name] = runs
    if not given:
        raise ValueError(f"source={str(source)!r} holds no finished run; nothing to record")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{profile}-", dir=target.parent))
    changes: dict[str, list[str]] = {"added": [], "replaced": [], "kept": [], "pruned": []}
    try:
        if target.is_dir():
            for entry in sorted(target.iterdir()):
                if entry.name.startswith(".") or entry.name == "INDEX.json" or not entry.is_dir():
                    continue
                shutil.copytree(entry, tmp / entry.name, copy_function=_link_or_copy)
        for name, runs in given.items():
            for run in runs:
                out = tmp / name / run.name
                changes["replaced" if out.exists() else "added"].append(f"{name}/{run.name}")
                if out.exists():
                    shutil.rmtree(out)
                shutil.copytree(run, out)
            _copy_artefacts(source / name, tmp / name, quantize=True, replace=True)
        cached = _cached_networks(source / "cache")
        for rel in cached:
            _check_cached(source / "cache" / rel, recorded=False)
        if not prune and (target / _CACHE).is_dir():
            shutil.copytree(target / _CACHE, tmp / _CACHE, copy_function=_link_or_copy)
        for rel in cached:
            _copy_cached(source / "cache", tmp / _CACHE, rel, replace=True)
        for study_dir in sorted(p for p in tmp.iterdir() if p.is_dir() and not p.name.startswith(".")):
            names = {r.name for r in given.get(study_dir.name, [])}
            for run in sorted(p for p in study_dir.iterdir() if _RUN.match(p.name) and p.name not in names):
                if not prune:
                    changes["kept"].append(f"{study_dir.name}/{run.name}")
                    continue
                changes["pruned"].append(f"{study_dir.name}/{run.name}")
                shutil.rmtree(run) if run.is_dir() else run.unlink()
                (study_dir / "synthetic" / f"{run.name}.pt").unlink(missing_ok=True)
            if prune and study_dir.name not in given:
                shutil.rmtree(study_dir)
        index: dict[str, Any] = {
            "profile": profile, "recorded": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "studies": {},
        }
        for study_dir in sorted(p for p in tmp.iterdir() if p.is_dir() and not p.name.startswith(".")):
            runs = _runs(study_dir)
            commits = sorted({json.loads((r / "provenance.json").read_text()).get("commit") or "unknown" for r in runs})
            index["studies"][study_dir.name] = {
                "runs": len(runs), "artefacts": len(_artefacts(study_dir)), "bytes": _size(study_dir), "commits": commits,
            }
        networks = _cached_networks(tmp / _CACHE)
        index["cached_networks"] = {"files": len(networks), "bytes": sum((tmp / _CACHE / r).stat().st_size for r in networks)}
        index["bytes"] = sum(s["bytes"] for s in index["studies"].values()) + index["cached_networks"]["bytes"]
        (tmp / "INDEX.json").write_text(json.dumps(index, indent=2, sort_keys=True) + "\n")
        aside = target.with_name(f".old-{profile}-{os.getpid()}")
        if target.exists():
            os.rename(target, aside)
        os.rename(tmp, target)
        shutil.rmtree(aside, ignore_errors=True)
    except OSError as exc:
        full = results.disk_full(tmp, exc)
        if full is not None:
            raise full from exc
        raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return {**index, **changes}


def restore(profile: str, *, root: str | Path | None = None, records: str | Path | None = None) -> dict[str, int]:
    """Copy ``profile``'s records into the results root ``root``; whole runs already there are kept.

    Returns ``{study: runs copied}``; an empty dict when the profile has no records. Before
    anything is written every record is checked (:func:`_records`: a folder with its ``DONE``
    manifest, its files and row count matching it, as many runs per study as ``INDEX.json``
    lists; every synthetic set readable) and the results root too (a writable folder); the first
    that fails raises (``ValueError`` for a record, naming it with record advice;
    ``NotADirectoryError`` / ``PermissionError`` for the results root) and nothing is written. A
    run of the store that is corrupt is replaced by its record, with a ``RuntimeWarning`` naming it
    (the damaged copy is kept aside as ``.corrupt-<run_id>-...``). Recorded networks
    (:data:`RECORDED_CACHES`) are checked against their SHA-256 with the records and copied into
    the results root's cache where it lacks a whole copy.
    """
    source = _profile_dir(profile, records)
    if not source.exists():
        return {}
    studies = _records(source, index=True)
    for name in studies:
        for rel in _artefacts(source / name):
            if rel.parts[0] == "synthetic" and rel.suffix == ".pt":
                _read_synthetic(source / name / rel, quantized=True)
    networks = _cached_networks(source / _CACHE)
    for rel in networks:
        _check_cached(source / _CACHE / rel, recorded=True)
    target = results.check_root(root)
    copied: dict[str, int] = {}
    try:
        for name, runs in studies.items():
            out_dir = target / name
            if out_dir.exists() and not out_dir.is_dir():
                raise NotADirectoryError(f"{out_dir} in the results folder is not a folder; move that file away")
            out_dir.mkdir(parents=True, exist_ok=True)
            n = 0
            for run in runs:
                final = out_dir / run.name
                results._restore_replaced(out_dir, run.name)
                if (final / "DONE").is_file():
                    try:
                        results._read_run(final)
                        continue
                    except results.CorruptRunError as exc:
                        warnings.warn(f"{final} in the run store is corrupt ({exc.why}); replaced by the record {run}",
                                      RuntimeWarning, stacklevel=2)
                        aside = out_dir / f"{results._CORRUPT_PREFIX}{run.name}-{time.strftime('%Y%m%dT%H%M%S')}-{os.getpid()}"
                        os.rename(final, aside)
                tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{run.name}-{os.getpid()}-", dir=out_dir))
                shutil.rmtree(tmp)
                try:
                    shutil.copytree(run, tmp)
                    results._publish(tmp, final, replace=False)
                finally:
                    shutil.rmtree(tmp, ignore_errors=True)
                n += 1
            _copy_artefacts(source / name, out_dir, quantize=False)
            copied[name] = n
        for rel in networks:  # the recorded teachers, so that extending a sweep trains students only
            _copy_cached(source / _CACHE, target / "cache", rel)
    except OSError as exc:
        full = results.disk_full(target, exc)
        if full is not None:
            raise full from exc
        raise
    return copied


# ------------------------------------------------------------------------------- verify


def book_cells(study: str, profile: str) -> dict[str, Any]:
    """``{run_id: cell}`` of every cell the book runs for ``study`` at ``profile``: the cells of
    ``config_class(study).for_profile(profile, **variant)`` for each of the module's
    ``BOOK_VARIANTS`` (default: one variant, no overrides)."""
    from fairdd.studies import config_class, study_module

    cls = config_class(study)
    variants = getattr(study_module(study), "BOOK_VARIANTS", ({},))
    return {results.run_id(cell): cell for variant in variants for cell in cls.for_profile(profile, **variant).cells()}


def _method(cell: Any) -> str:
    """What :func:`verify` samples one run of: the cell's ``method`` (KD's ``role``, the
    comparison's ``compression``), with the kind of its ``data`` when that is not a
    :class:`fairdd.data.StudyData` (the embedding study's text section: another loading path)."""
    data = getattr(cell, "data", None)
    kind = f" on {type(data).__name__}" if dataclasses.is_dataclass(data) and type(data).__name__ != "StudyData" else ""
    for name in ("method", "role", "compression"):
        if hasattr(cell, name):
            return f"{getattr(cell, name)}{kind}"
    return type(cell).__name__ + kind


@dataclasses.dataclass(frozen=True)
class Mismatch:
    """One column of one recomputed run that differs from its record."""

    study: str
    run_id: str
    column: str
    detail: str


def compare_rows(
    recorded: pd.DataFrame, recomputed: pd.DataFrame, *, atol: float = 0.0, rtol: float = 0.0
) -> list[tuple[str, str]]:
    """``(column, what differs)`` for every compared column of two runs' rows that differs.

    Timing columns (:data:`TIMING_COLUMN`) and the provenance columns are skipped; floats are
    equal when ``|recorded - recomputed| <= atol + rtol * |recorded|`` (NaN equals NaN),
    everything else exactly.
    """
    if not (atol >= 0 and rtol >= 0):
        raise ValueError(f"atol={atol!r} and rtol={rtol!r} must be >= 0")
    skip = set(results._PROVENANCE_COLUMNS)
    out: list[tuple[str, str]] = []
    cols_a = [c for c in recorded.columns if c not in skip and not TIMING_COLUMN.search(c)]
    cols_b = [c for c in recomputed.columns if c not in skip and not TIMING_COLUMN.search(c)]
    if cols_a != cols_b:
        return [("<columns>", f"recorded {cols_a}, recomputed {cols_b}")]
    if len(recorded) != len(recomputed):
        return [("<rows>", f"recorded {len(recorded)} rows, recomputed {len(recomputed)}")]
    for column in cols_a:
        a, b = recorded[column].reset_index(drop=True), recomputed[column].reset_index(drop=True)
        if pd.api.types.is_float_dtype(a) and pd.api.types.is_float_dtype(b):
            x, y = a.to_numpy(float), b.to_numpy(float)
            close = (np.abs(x - y) <= atol + rtol * np.abs(x)) | (np.isnan(x) & np.isnan(y))
            if not close.all():
                i = int(np.flatnonzero(~close)[0])
                out.append((column, f"row {i}: recorded {float(x[i])!r}, recomputed {float(y[i])!r} (max |diff| "
                                    f"{np.nanmax(np.abs(x - y)):.3g}, atol {atol:g}, rtol {rtol:g})"))
        else:
            same = (a.astype(str) == b.astype(str)) | (a.isna() & b.isna())
            if not same.all():
                i = int(np.flatnonzero(~same.to_numpy())[0])
                out.append((column, f"row {i}: recorded {a[i]!r}, recomputed {b[i]!r}"))
    return out


def _candidates(study: str, profile: str, records: Path) -> tuple[list[tuple[str, str, float, Any]], list[str]]:
    """``(study, method, recorded wall seconds, cell)`` of every record of ``study`` that is a cell
    of the book's current config, and the run ids of those that are not."""
    cells = book_cells(study, profile)
    out, unknown = [], []
    folder = records / study
    if not folder.is_dir():
        raise _refusal(folder, "not a folder (a study's records are a folder of run folders)")
    for run in sorted(p for p in folder.iterdir() if _RUN.match(p.name)):
        if not run.is_dir() or not (run / "DONE").is_file():
            _check_record(run)  # raises: not a folder, or no DONE
        if run.name not in cells:
            unknown.append(run.name)
            continue
        _check_record(run)  # before any recomputation
        cell = cells[run.name]
        wall = float(json.loads((run / "provenance.json").read_text()).get("wall_s") or 0.0)
        out.append((study, _method(cell), wall, cell))
    return out, unknown


def _sample(candidates: list[tuple[str, str, float, Any]], *, per_study: bool) -> list[tuple[str, str, float, Any]]:
    """The records to recompute: the cheapest (by recorded wall time) run of every method, then the
    cheapest run of every study not yet covered (``per_study``: of every study × method)."""
    by_key: dict[tuple[str, ...], tuple[str, str, float, Any]] = {}
    for c in sorted(candidates, key=lambda c: c[2]):
        by_key.setdefault((c[0], c[1]) if per_study else (c[1],), c)
    chosen = list(by_key.values())
    for c in sorted(candidates, key=lambda c: c[2]):
        if c[0] not in {x[0] for x in chosen}:
            chosen.append(c)
    return chosen


def verify(
    profile: str = "cpu",
    *,
    studies: Sequence[str] | None = None,
    records: str | Path | None = None,
    processes: int | None = None,
    atol: float = 0.0,
    other_kernels_atol: float = OTHER_KERNELS_ATOL,
    per_study: bool = False,
    log: Any = None,
) -> list[Mismatch]:
    """Recompute a sample of ``profile``'s records from nothing and compare; the mismatches.

    The sample: the cheapest recorded run (by its recorded wall time) of every method (a cell's
    ``method``, KD's ``role``, the comparison's ``compression``) across the studies, then the
    cheapest run of each study not yet covered; ``per_study`` takes every study × method instead.
    Shared set-up the sampled cells need (MTT's experts, a KD teacher, an attribute probe) is
    recomputed too. A record made on a machine whose CPU kernels differ from this one's
    (:func:`fairdd.results.cpu_capability` in its provenance, e.g. ``AVX512`` against ``AVX2``,
    or not recorded) cannot be recomputed bit for bit: other convolution kernels round
    differently and training amplifies it; such a run is compared within
    ``max(atol, other_kernels_atol)`` and the log says so. ``studies``: the studies to check (default: every study with records). An empty list means
    every sampled run matched its record. A record whose run id is not a cell of the current
    config is reported as a mismatch of column ``<config>``.
    """
    from fairdd.studies import STUDIES, study_module

    log = log if log is not None else sys.stderr
    for name in studies or ():
        if name not in STUDIES:
            raise ValueError(f"study={name!r} is not known; choose from {sorted(STUDIES)}")
    source = _profile_dir(profile, records)
    if not source.is_dir():
        raise FileNotFoundError(f"profile={profile!r}: no records at {source}; record them first (make record)")
    names = sorted(p.name for p in source.iterdir() if p.name in STUDIES) if studies is None else list(studies)
    for name in names:
        if not (source / name).exists():
            raise FileNotFoundError(f"study={name!r} has no records at {source / name}")
    mismatches: list[Mismatch] = []
    candidates: list[tuple[str, str, float, Any]] = []
    for name in names:
        found, unknown = _candidates(name, profile, source)
        candidates += found
        for rid in unknown:
            mismatches.append(Mismatch(name, rid, "<config>", "the record is not a cell of the current config "
                                       f"for profile {profile!r}: its config changed since it was recorded; re-record "
                                       "(make book FRESH=1 && make record PRUNE=1 removes it)"))
    sample = _sample(candidates, per_study=per_study)
    if not sample and not mismatches:
        raise ValueError(
            f"verify compared nothing: {source} holds no record of {', '.join(names) or 'any study'}; "
            "a check that compares nothing does not pass. Record them (make book FRESH=1 && make record), "
            "or restore them from git (git checkout -- records/)"
        )
    with tempfile.TemporaryDirectory(prefix="fairdd-verify-") as tmp:
        for name in names:
            cells = [c[3] for c in sample if c[0] == name]
            if not cells:
                continue
            study = study_module(name).STUDY
            start = time.perf_counter()
            print(f"verify {name}: recomputing {len(cells)} of {len(_runs(source / name))} recorded runs "
                  f"({', '.join(sorted(_method(c) for c in cells))})", file=log, flush=True)
            study.run(cells, processes=processes, root=tmp)
            here = results.cpu_capability()
            for cell in cells:
                rid = results.run_id(cell)
                recorded = results._read_run(source / name / rid)
                recomputed = results._read_run(Path(tmp) / name / rid)
                tolerance, relative = atol, 0.0
                made_on = json.loads((source / name / rid / "provenance.json").read_text()).get("cpu_capability")
                if made_on != here:
                    tolerance, relative = max(atol, other_kernels_atol), OTHER_KERNELS_RTOL
                    exact = "bit-identical all the same" if not compare_rows(recorded, recomputed, atol=atol) else (
                        "not bit-identical")
                    print(f"verify {name}: run {rid} was recorded on CPU kernels {made_on or '(not recorded)'}, "
                          f"recomputed on {here}: compared within atol {tolerance:g} + rtol {relative:g}, "
                          f"not bit for bit ({exact}; re-record on this machine kind for a bit-exact check)",
                          file=log, flush=True)
                for column, detail in compare_rows(recorded, recomputed, atol=tolerance, rtol=relative):
                    mismatches.append(Mismatch(name, rid, column, detail))
            print(f"verify {name}: done in {time.perf_counter() - start:.0f} s", file=log, flush=True)
    return mismatches


# ---------------------------------------------------------------------------------- CLI


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fairdd.records", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("record", help="record every finished run of a results root (adds and replaces; --prune removes)")
    p.add_argument("--profile", required=True)
    p.add_argument("--from", dest="source", default=None, help="results root (default: $FAIRDD_RESULTS or results/)")
    p.add_argument("--root", default=None, help="records folder (default: $FAIRDD_RECORDS or records/)")
    p.add_argument("--prune", action="store_true", help="remove (and list) every record the results root does not hold")
    p = sub.add_parser("restore", help="copy a profile's records into the results root")
    p.add_argument("--profile", required=True)
    p.add_argument("--root", default=None, help="results root (default: $FAIRDD_RESULTS or results/)")
    p.add_argument("--records", default=None, help="records folder (default: $FAIRDD_RECORDS or records/)")
    p = sub.add_parser("verify", help="recompute a sample of the records and compare")
    p.add_argument("--profile", default="cpu")
    p.add_argument("--study", action="append", default=None, help="only this study (repeatable)")
    p.add_argument("--processes", type=int, default=None)
    p.add_argument("--atol", type=float, default=0.0)
    p.add_argument("--other-kernels-atol", type=float, default=OTHER_KERNELS_ATOL,
                   help="tolerance for records made on other CPU kernels (default %(default)g)")
    p.add_argument("--per-study", action="store_true", help="every study × method, not every method once")
    p.add_argument("--records", default=None, help="records folder (default: $FAIRDD_RECORDS or records/)")
    args = parser.parse_args(argv)
    try:
        return _command(args)
    except (ValueError, OSError) as exc:
        print(f"python -m fairdd.records {args.command}: error: {exc}", file=sys.stderr)
        return 2


def _command(args: argparse.Namespace) -> int:
    if args.command == "record":
        index = record(args.profile, source=args.source, root=args.root, prune=args.prune)
        for name, s in index["studies"].items():
            print(f"recorded {name}: {s['runs']} runs, {s['artefacts']} artefacts, {s['bytes'] / 1e6:.1f} MB")
        print(f"{len(index['added'])} run(s) added, {len(index['replaced'])} replaced")
        for name in index["pruned"]:
            print(f"pruned {name}")
        if index["kept"]:
            print(f"kept {len(index['kept'])} record(s) the results root does not hold "
                  f"({', '.join(index['kept'][:5])}{', ...' if len(index['kept']) > 5 else ''}); "
                  "--prune removes them")
        print(f"records/{args.profile}: {index['bytes'] / 1e6:.1f} MB in all")
        return 0
    if args.command == "restore":
        copied = restore(args.profile, root=args.root, records=args.records)
        if not copied:
            print(f"no records for profile {args.profile!r}: every run of the book is computed")
        for name, n in copied.items():
            print(f"restored {name}: {n} recorded run(s) copied into the run store")
        return 0
    start = time.perf_counter()
    mismatches = verify(args.profile, studies=args.study, records=args.records, processes=args.processes,
                        atol=args.atol, other_kernels_atol=args.other_kernels_atol, per_study=args.per_study)
    for m in mismatches:
        print(f"MISMATCH {m.study}/{m.run_id} {m.column}: {m.detail}")
    verdict = "FAILED" if mismatches else "passed"
    print(f"verify {verdict}: {len(mismatches)} mismatch(es) in {time.perf_counter() - start:.0f} s")
    return 1 if mismatches else 0


if __name__ == "__main__":
    raise SystemExit(main())
