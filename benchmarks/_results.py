"""Where the benchmarks write what they measure: ``benchmarks/results/<name>.json`` and ``.md``.

Measured timings go stale, so they are kept out of docstrings and comments: each benchmark
prints its tables and also hands the same rows to :func:`save`, which writes

- ``benchmarks/results/<name>.json``: ``{"name", "provenance", "tables"}``, every table a list
  of row dicts (what a README cell, a book page or a comparison script reads back with
  :func:`load`);
- ``benchmarks/results/<name>.md``: the provenance as lines on top, then every table in
  markdown, for a human to read or diff.

The provenance says what the numbers depend on: the UTC date-time, the git commit and whether
tracked files differed from it (changes under ``benchmarks/results/`` themselves aside), the
Python, torch and numpy versions, torch's thread count, ``os.cpu_count()``, the processor,
CPU model and platform strings, the CUDA device if one is visible, the load average, the exact command line
and the parsed arguments. No host or user name: the files are meant to be committed.

Each run of a benchmark replaces that benchmark's previous files (written to a temporary
file in the same folder, then ``os.replace``: a reader never sees half a file), unless
``--out PATH`` names other files; ``--no-save`` writes nothing. :func:`add_arguments` adds
those flags (and ``--note``) to a benchmark's parser, :func:`save_from_args` honours them.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import math
import os
import platform
import shlex
import subprocess
import sys
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
RESULTS_DIR = Path(__file__).resolve().parent / "results"
FORMAT_VERSION = 1


# ---------------------------------------------------------------------------- provenance


def _git(*args: str) -> str | None:
    try:
        out = subprocess.run(["git", "-C", str(REPO_ROOT), *args], capture_output=True, text=True,
                             timeout=30, check=True)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout


def _cpu_model() -> str | None:
    """The CPU's model name (Linux ``/proc/cpuinfo``), which ``platform.processor()`` often leaves empty."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.lower().startswith(("model name", "hardware", "cpu model")):
                    return line.split(":", 1)[1].strip() or None
    except OSError:
        pass
    return None


def provenance(argv: Sequence[str] | None = None, *, notes: str = "",
               params: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """What a measurement depends on (see the module docstring), as a JSON-ready dict."""
    import numpy as np
    import torch

    argv = list(sys.argv if argv is None else argv)
    commit = _git("rev-parse", "HEAD")
    # Results files rewritten by earlier benchmark runs do not make the code dirty.
    status = _git("status", "--porcelain", "--untracked-files=no", "--", ".", ":(exclude)benchmarks/results")
    cuda = None
    if torch.cuda.is_available():
        cuda = torch.cuda.get_device_name(0)
    try:
        load = [round(x, 2) for x in os.getloadavg()]
    except (AttributeError, OSError):
        load = None
    return {
        "created_utc": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "commit": commit.strip() if commit else None,
        "dirty": bool(status.strip()) if status is not None else None,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": np.__version__,
        "torch_threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(),
        "processor": platform.processor() or platform.machine(),
        "cpu_model": _cpu_model(),
        "platform": platform.platform(),
        "cuda_device": cuda,
        "load_average": load,
        "command": shlex.join([Path(sys.executable).name, *argv]),
        "argv": argv,
        "params": _jsonable(dict(params)) if params is not None else None,
        "notes": notes,
    }


# ------------------------------------------------------------------------------- tables


def _jsonable(value: Any) -> Any:
    """Plain JSON values: numpy/torch scalars unwrapped, NaN and ±inf as ``None``, paths as text."""
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_jsonable(v) for v in value]
    if isinstance(value, bool) or value is None or isinstance(value, (int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    item = getattr(value, "item", None)  # numpy / torch scalars
    if callable(item):
        try:
            return _jsonable(item())
        except (TypeError, ValueError, RuntimeError):
            pass
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return str(value)


def _rows(table: Any, name: str) -> list[dict[str, Any]]:
    if hasattr(table, "to_dict") and hasattr(table, "columns"):  # a pandas DataFrame
        table = table.to_dict(orient="records")
    if not isinstance(table, Sequence) or isinstance(table, (str, bytes)):
        raise TypeError(f"table {name!r} must be a list of row dicts or a pandas DataFrame, got {type(table).__name__}")
    rows = []
    for i, row in enumerate(table):
        if not isinstance(row, Mapping):
            raise TypeError(f"table {name!r}, row {i}: expected a dict, got {type(row).__name__}")
        rows.append({str(k): _jsonable(v) for k, v in row.items()})
    return rows


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, (list, dict)):
        value = json.dumps(value, ensure_ascii=False)
    return str(value).replace("|", "\\|").replace("\n", " ")


def markdown(payload: Mapping[str, Any]) -> str:
    """The human-readable form of a results payload: provenance lines, then each table."""
    lines = [f"# {payload['name']}", ""]
    prov = payload.get("provenance", {})
    for key, value in prov.items():
        if key in ("argv", "params") or value in (None, ""):
            continue
        text = f"`{value}`" if key == "command" else _cell(value)
        lines.append(f"- {key}: {text}")
    lines.append("")
    for title, rows in payload["tables"].items():
        lines += [f"## {title}", ""]
        columns = list(dict.fromkeys(k for row in rows for k in row))
        if not columns:
            lines += ["(no rows)", ""]
            continue
        lines.append("| " + " | ".join(columns) + " |")
        lines.append("|" + "|".join("---" for _ in columns) + "|")
        for row in rows:
            lines.append("| " + " | ".join(_cell(row.get(c)) for c in columns) + " |")
        lines.append("")
    return "\n".join(lines)


# -------------------------------------------------------------------------------- files


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _write_atomic(path: Path, text: str) -> None:
    """Write ``text`` to a temporary file beside ``path``, then rename it over ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o666 & ~_umask())  # mkstemp's 0600 would make the results file private
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def output_path(name: str, out: str | os.PathLike[str] | None = None, *, root: Path = RESULTS_DIR) -> Path:
    """The JSON file :func:`save` writes: ``root/<name>.json``, or ``out`` (a folder: ``out/<name>.json``;
    otherwise its ``.json`` form, the ``.md`` beside it)."""
    if out is None:
        return Path(root) / f"{name}.json"
    text = os.fspath(out)
    out = Path(out)
    if out.is_dir() or text.endswith(("/", os.sep)):
        return out / f"{name}.json"
    return out if out.suffix == ".json" else out.with_suffix(".json")


def write_payload(payload: Mapping[str, Any], path: Path) -> Path:
    """Write a payload as ``path`` (JSON) and ``path`` with ``.md`` (markdown), each atomically."""
    payload = _jsonable(payload)
    text = json.dumps(payload, indent=1, ensure_ascii=False, allow_nan=False) + "\n"
    _write_atomic(path, text)
    _write_atomic(path.with_suffix(".md"), markdown(payload) + "\n")
    return path


def save(name: str, tables: Mapping[str, Any], *, argv: Sequence[str] | None = None, notes: str = "",
         params: Mapping[str, Any] | None = None, out: str | os.PathLike[str] | None = None,
         root: Path = RESULTS_DIR) -> Path:
    """Write ``tables`` (title → list of row dicts, or a pandas DataFrame) with their provenance.

    ``argv``: the command line (default ``sys.argv``); ``params``: the parsed arguments;
    ``notes``: free text kept with the numbers (e.g. "smoke-sized: checks the script"). Writes
    ``root/<name>.json`` and ``.md``, replacing that benchmark's previous files, or the files
    ``out`` names. Returns the JSON path.
    """
    if not name or os.sep in name or name.startswith("."):
        raise ValueError(f"name={name!r} must be a plain file stem")
    payload = {
        "name": name,
        "format": FORMAT_VERSION,
        "provenance": provenance(argv, notes=notes, params=params),
        "tables": {str(title): _rows(rows, str(title)) for title, rows in tables.items()},
    }
    return write_payload(payload, output_path(name, out, root=root))


def load(path: str | os.PathLike[str]) -> dict[str, Any]:
    """A results file read back: ``{"name", "provenance", "tables"}``; a bare name means ``RESULTS_DIR/<name>.json``."""
    path = Path(path)
    if path.suffix != ".json" and not path.exists():
        path = RESULTS_DIR / f"{path}.json"
    return json.loads(path.read_text(encoding="utf-8"))


# ----------------------------------------------------------------------------- argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``--out``, ``--no-save`` and ``--note``, the same in every benchmark."""
    group = parser.add_argument_group("results file")
    group.add_argument("--out", default=None, metavar="PATH",
                       help="write the results here (a .json path, its .md beside it, or a folder) "
                            "instead of replacing benchmarks/results/<benchmark>.json")
    group.add_argument("--no-save", action="store_true", help="only print, write no results file")
    group.add_argument("--note", default="", help="free text stored with the results (e.g. what the machine was doing)")


def save_from_args(args: argparse.Namespace, name: str, tables: Mapping[str, Any], *, notes: str = "") -> Path | None:
    """:func:`save` as the flags of :func:`add_arguments` ask; prints where the files went."""
    if getattr(args, "no_save", False):
        return None
    extra = getattr(args, "note", "")
    notes = "; ".join(n for n in (extra, notes) if n)
    params = {k: v for k, v in vars(args).items() if k not in ("out", "no_save", "note")}
    path = save(name, tables, notes=notes, params=params, out=getattr(args, "out", None))
    print(f"results: {path} and {path.with_suffix('.md').name}", flush=True)
    return path
