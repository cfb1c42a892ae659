"""The ``fairdd`` command: list the studies, show a sweep's state, run it locally or on Ray.

::

    fairdd list                                   the studies, their profiles and cells
    fairdd list bias_dd --profile cpu             the keys --set accepts, with their values
    fairdd status bias_dd --profile cpu           runs finished / total, each run's state
    fairdd run bias_dd --profile cpu              the unfinished runs on this machine's cores
    fairdd run bias_dd --profile paper --ray auto the unfinished runs as tasks of a Ray cluster
    fairdd run classwise_dd --profile smoke --set num_classes=100 ipcs=1,5 data.source=mnist

(``python -m fairdd ...`` is the same.) A study is named by its run store folder (a key of
:data:`fairdd.studies.STUDIES`) or its module's name (``bias``, ``methods``, ...). Its config
is ``for_profile(profile, **options)`` of its config class (:func:`fairdd.studies.config_class`),
then ``--set key=value`` replaces fields: values are parsed against the fields' types (``3``,
``0.5``, ``true``, ``none``, tuples as ``1,5,10``, pairs as ``adult:0.7``), nested configs by
dotted keys (``dc.iterations=10``); a key that is a keyword of ``for_profile`` (the class-wise
study's ``num_classes``) is passed to it instead. Every argument is checked, and the cells
built, before anything is computed; an error names the key and what is allowed.

Rows go to the run store (``--root``, else ``$FAIRDD_RESULTS`` or ``results/``), where the
notebooks read them: ``fairdd run bias_dd --profile paper --ray auto`` on a cluster, then
``PROFILE=paper make book`` with that store gives the paper-profile chapter.
"""

from __future__ import annotations

import argparse
import dataclasses
import difflib
import inspect
import math
import signal
import sys
import threading
import time
import types
import typing
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from fairdd.config import PROFILES

__all__ = ["CLIError", "build_config", "main", "parse_value", "settable_keys"]

_NONE = ("none", "null")
_TRUE = ("true", "yes", "on", "1")
_FALSE = ("false", "no", "off", "0")


class CLIError(ValueError):
    """A bad command line; the message says what is allowed. Raised before any work."""


# ---------------------------------------------------------------------------- studies


def resolve_study(name: str) -> str:
    """The :data:`~fairdd.studies.STUDIES` key of ``name`` (the key itself or its module's name)."""
    from fairdd.studies import STUDIES

    if name in STUDIES:
        return name
    by_module = {module.rsplit(".", 1)[-1]: key for key, module in STUDIES.items()}
    if name in by_module:
        return by_module[name]
    close = difflib.get_close_matches(name, [*STUDIES, *by_module], n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    raise CLIError(f"unknown study {name!r}{hint} Studies: {', '.join(sorted(STUDIES))} (`fairdd list` describes them)")


def _study(key: str) -> tuple[Any, type]:
    from fairdd.studies import config_class, study_module

    return study_module(key).STUDY, config_class(key)


# ----------------------------------------------------------------------------- values


def _hints(obj: Any) -> dict[str, Any]:
    try:
        return typing.get_type_hints(obj)
    except Exception:  # an annotation that does not resolve: fall back on the current values
        return {}


def _describe(annotation: Any) -> str:
    if annotation is None:
        return "value"
    if isinstance(annotation, type):
        return annotation.__name__
    return str(annotation).replace("typing.", "")


def _infer(current: Any) -> Any:
    """A type for a field without a usable annotation, from its current value."""
    if isinstance(current, tuple):
        return tuple[_infer(current[0]), ...] if current else tuple[str, ...]
    if current is None:
        return str | None
    return type(current)


def _holds_dataclass(annotation: Any) -> bool:
    if isinstance(annotation, type) and dataclasses.is_dataclass(annotation):
        return True
    return any(_holds_dataclass(a) for a in typing.get_args(annotation))


def parse_value(text: str, annotation: Any, key: str, current: Any = None) -> Any:
    """``text`` read as a value of ``annotation`` (a field's type); ``CLIError`` naming ``key``
    and what it accepts otherwise."""
    if annotation is None or annotation is Any:
        annotation = _infer(current)
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        options = [a for a in args if a is not type(None)]
        if type(None) in args and text.strip().lower() in _NONE:
            return None
        errors = []
        for option in options:
            try:
                return parse_value(text, option, key, current)
            except CLIError as exc:
                errors.append(str(exc))
        allowed = " or ".join([*(_describe(o) for o in options), *(["none"] if type(None) in args else [])])
        raise CLIError(f"{key}={text!r}: expected {allowed}")
    if origin is typing.Literal:
        for arg in args:
            if str(arg) == text:
                return arg
        raise CLIError(f"{key}={text!r} is not allowed; choose one of {', '.join(map(str, args))}")
    if origin in (tuple, list):
        if _holds_dataclass(annotation):
            raise CLIError(
                f"{key} ({_describe(annotation)}) cannot be set from the command line; "
                "use a profile, or build the config in Python"
            )
        parts = [p.strip() for p in text.split(",")] if text.strip() else []
        if origin is tuple and args and args[-1] is not Ellipsis:
            if len(parts) != len(args):
                raise CLIError(f"{key}={text!r}: expected {len(args)} comma-separated values ({_describe(annotation)})")
            return tuple(parse_value(p, a, f"{key}[{i}]") for i, (p, a) in enumerate(zip(parts, args)))
        element = args[0] if args else (_infer(current[0]) if current else str)
        if typing.get_origin(element) is tuple:  # pairs and triples: "adult:0.7,compas:0.5"
            values = [parse_value(p.replace(":", ","), element, f"{key}[{i}]") for i, p in enumerate(parts)]
        else:
            values = [parse_value(p, element, f"{key}[{i}]") for i, p in enumerate(parts)]
        return tuple(values) if origin is tuple else values
    if isinstance(annotation, type) and dataclasses.is_dataclass(annotation):
        fields = ", ".join(f"{key}.{f.name}" for f in dataclasses.fields(annotation))
        raise CLIError(f"{key} is a group of settings ({annotation.__name__}); set its fields instead: {fields}")
    if annotation is bool:
        low = text.strip().lower()
        if low in _TRUE or low in _FALSE:
            return low in _TRUE
        raise CLIError(f"{key}={text!r}: expected true or false")
    if annotation is int:
        try:
            return int(text)
        except ValueError:
            raise CLIError(f"{key}={text!r}: expected an integer") from None
    if annotation is float:
        try:
            value = float(text)
        except ValueError:
            raise CLIError(f"{key}={text!r}: expected a number") from None
        if not math.isfinite(value):
            raise CLIError(f"{key}={text!r}: expected a finite number")
        return value
    if annotation is str:
        return text
    if annotation is Path:
        return Path(text)
    raise CLIError(f"{key} (of type {_describe(annotation)}) cannot be set from the command line")


# ----------------------------------------------------------------------------- config


def _profile_options(config_cls: type) -> dict[str, tuple[Any, Any]]:
    """``for_profile``'s keyword options (beyond ``profile``): name → (type, default)."""
    hints = _hints(config_cls.for_profile)
    out = {}
    parameters = list(inspect.signature(config_cls.for_profile).parameters.values())[1:]  # after profile
    for p in parameters:
        if p.kind in (p.VAR_KEYWORD, p.VAR_POSITIONAL):
            continue
        default = None if p.default is inspect.Parameter.empty else p.default
        out[p.name] = (hints.get(p.name), default)
    return out


def settable_keys(config: Any, prefix: str = "") -> dict[str, tuple[Any, Any]]:
    """Every field ``--set`` can replace, dotted: key → (type, current value)."""
    hints = _hints(type(config))
    out: dict[str, tuple[Any, Any]] = {}
    for f in dataclasses.fields(config):
        if not prefix and f.name == "profile":
            continue
        value = getattr(config, f.name)
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            out.update(settable_keys(value, f"{prefix}{f.name}."))
        else:
            out[f"{prefix}{f.name}"] = (hints.get(f.name), value)
    return out


def _split(assignments: Sequence[str]) -> dict[str, str]:
    pairs: dict[str, str] = {}
    for item in assignments:
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise CLIError(f"--set {item!r}: expected key=value (e.g. seeds=0,1 or data.source=mnist)")
        if key in pairs:
            raise CLIError(f"--set {key}= is given twice")
        pairs[key] = value
    return pairs


def _parse_set(name: str, text: str, annotation: Any, current: Any) -> Any:
    try:
        return parse_value(text, annotation, name, current)
    except CLIError as exc:
        kind = _describe(annotation if annotation is not None else _infer(current))
        raise CLIError(f"--set {name}={text}: {exc} ({name} is {kind}; now {_short(current, 60)})") from None


def _replace(config: Any, values: dict[str, Any]) -> Any:
    """``config`` with dotted ``values`` replaced (nested dataclasses rebuilt bottom-up)."""
    top: dict[str, Any] = {}
    nested: dict[str, dict[str, Any]] = {}
    for key, value in values.items():
        head, dot, rest = key.partition(".")
        if dot:
            nested.setdefault(head, {})[rest] = value
        else:
            top[key] = value
    for head, inner in nested.items():
        top[head] = _replace(getattr(config, head), inner)
    return dataclasses.replace(config, **top)


def build_config(study: str, profile: str, assignments: Sequence[str] = ()) -> tuple[str, Any, Any, list[Any]]:
    """Study key, ``STUDY``, config and its cells for ``study --profile profile --set ...``;
    every error is a :class:`CLIError` (nothing is computed)."""
    key = resolve_study(study)
    if profile not in PROFILES:
        raise CLIError(f"--profile {profile!r} is not known; choose one of {', '.join(PROFILES)}")
    study_obj, config_cls = _study(key)
    pairs = _split(assignments)
    if "profile" in pairs:
        raise CLIError("--set profile=...: give the profile with --profile")
    options = _profile_options(config_cls)
    chosen = {
        name: _parse_set(name, pairs.pop(name), annotation, default)
        for name, (annotation, default) in options.items()
        if name in pairs
    }
    try:
        config = config_cls.for_profile(profile, **chosen)
    except (ValueError, TypeError) as exc:
        raise CLIError(f"{key} --profile {profile} {' '.join(f'{k}={v}' for k, v in chosen.items())}: {exc}") from exc
    keys = settable_keys(config)
    values = {}
    for name, text in pairs.items():
        group = sorted(k for k in keys if k.startswith(f"{name}."))
        if group:
            raise CLIError(f"--set {name}=: {name} is a group of settings; set its fields instead, e.g. {', '.join(group[:6])}")
        if name not in keys:
            close = difflib.get_close_matches(name, [*keys, *options], n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            top = sorted({k.split(".")[0] for k in keys})
            raise CLIError(
                f"--set {name}=: study {key} has no key {name!r}.{hint} Keys: {', '.join(top)}"
                + (f"; for_profile options: {', '.join(options)}" if options else "")
                + f" (nested keys, types and values: fairdd list {key} --profile {profile})"
            )
        annotation, current = keys[name]
        values[name] = _parse_set(name, text, annotation, current)
    try:
        config = _replace(config, values) if values else config
        cells = config.cells()
    except (ValueError, TypeError) as exc:
        given = " ".join(f"{k}={v}" for k, v in pairs.items())
        raise CLIError(f"{key} --profile {profile}{' --set ' + given if given else ''}: {exc}") from exc
    if not cells:
        raise CLIError(f"{key} --profile {profile}: the config has no cells to run")
    return key, study_obj, config, list(cells)


# --------------------------------------------------------------------------- commands


def _flat(value: Any, prefix: str = "") -> dict[str, Any]:
    from fairdd.results import canonical_config

    payload = canonical_config(value) if not prefix else value
    out: dict[str, Any] = {}
    for k, v in payload.items():
        if k == "__class__":
            continue
        if isinstance(v, dict):
            out.update(_flat(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def _varying(cells: list[Any]) -> list[dict[str, Any]]:
    """Per cell, the (flattened) fields whose values differ between the cells."""
    flats = [_flat(c) for c in cells]
    keys = list(dict.fromkeys(k for f in flats for k in f))
    varying = [k for k in keys if len({repr(f[k]) for f in flats if k in f}) > 1]
    return [{k: f[k] for k in varying if k in f} for f in flats]


def _short(value: Any, width: int = 40) -> str:
    text = value if isinstance(value, str) else repr(value)
    return text if len(text) <= width else text[: width - 3] + "..."


def _cmd_list(args: argparse.Namespace) -> int:
    from fairdd.studies import STUDIES

    if args.study is None:
        for key in STUDIES:
            try:
                _, config_cls = _study(key)
            except Exception as exc:  # noqa: BLE001 - one broken study does not hide the others
                print(f"{key:<14} {STUDIES[key]:<28} cannot be loaded: {type(exc).__name__}: {_short(str(exc), 80)}")
                continue
            options = ", ".join(_profile_options(config_cls)) or "-"
            counts = []
            for profile in PROFILES:
                try:
                    counts.append(f"{profile} {len(config_cls.for_profile(profile).cells())}")
                except Exception as exc:  # noqa: BLE001 - a profile that cannot be built here
                    counts.append(f"{profile} ? ({type(exc).__name__})")
            print(f"{key:<14} {STUDIES[key]:<28} runs: {', '.join(counts)}; for_profile options: {options}")
        print(f"\nprofiles: {', '.join(PROFILES)}; `fairdd list <study> --profile P` shows the keys of --set")
        return 0
    key, _, config, cells = build_config(args.study, args.profile, args.set)
    print(f"{key} --profile {args.profile}: {type(config).__name__}, {len(cells)} runs")
    options = _profile_options(type(config))
    for name, (annotation, default) in options.items():
        print(f"  {name:<32} {_describe(annotation):<28} for_profile option (default {default!r})")
    for name, (annotation, value) in settable_keys(config).items():
        print(f"  {name:<32} {_describe(annotation):<28} {_short(value, 60)}")
    return 0


def _cmd_status(args: argparse.Namespace) -> int:
    from fairdd.sweep import cell_state

    key, study, _, cells = build_config(args.study, args.profile, args.set)
    root = Path(args.root) if args.root else None
    states = [cell_state(study, c, root) for c in cells]
    finished = sum(s == "finished" for s in states)
    from fairdd import results

    where = results.run_dir(key, cells[0], root=root).parent
    print(f"{key} --profile {args.profile}: {finished}/{len(cells)} runs finished ({where})")
    for cell, state, fields in zip(cells, states, _varying(cells)):
        described = " ".join(f"{k}={_short(v)}" for k, v in fields.items())
        print(f"  {results.run_id(cell)}  {state:<12}  {_short(described, 150)}")
    return 0


def _cmd_run(args: argparse.Namespace) -> int:
    from fairdd import sweep

    if args.processes is not None and args.processes < 1:
        raise CLIError(f"--processes {args.processes}: must be >= 1")
    key, study, config, cells = build_config(args.study, args.profile, args.set)
    if args.ray is not None:
        try:
            sweep.import_ray()  # before any work: says how to install it
        except ImportError as exc:
            raise CLIError(str(exc)) from exc
    root = Path(args.root) if args.root else None
    from fairdd import results

    try:
        results.check_root(root)  # before any work, teachers and experts included
    except (NotADirectoryError, PermissionError) as exc:
        raise CLIError(str(exc)) from None
    finished = sum(study.is_finished(c, root) for c in cells)
    print(f"{key} --profile {args.profile}: {len(cells)} runs, {finished} finished", file=sys.stderr)
    progress = sweep.Progress(key)
    start = time.perf_counter()
    if args.ray is None:
        processes = args.processes
        if getattr(config, "device", "cpu") != "cpu":
            processes = 1  # one process per GPU
        rows = sweep.run_local(study, cells, processes=processes, root=root, progress=progress)
        computed = len(cells) - finished
    else:
        summary = sweep.RaySummary()
        rows = sweep.run_ray(
            study, cells, root=root, address=args.ray or None, processes=args.processes,
            gpus_per_task=args.gpus_per_task, max_retries=args.max_retries, progress=progress, summary=summary,
        )
        computed = summary.computed
    print(
        f"{key} --profile {args.profile}: {len(cells)} runs, {computed} computed now, "
        f"{len(rows)} rows in {results_dir(key, cells[0], root)} ({time.perf_counter() - start:.1f} s)"
    )
    return 0


def results_dir(key: str, cell: Any, root: Path | None) -> Path:
    from fairdd import results

    return results.run_dir(key, cell, root=root).parent


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fairdd", description="Run the book's studies: list them, show a sweep's state, run it locally or on Ray."
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="{list,status,run}")

    def common(p: argparse.ArgumentParser, *, profile_required: bool) -> None:
        p.add_argument("--profile", required=profile_required, default=None if profile_required else "smoke",
                       help=f"one of {', '.join(PROFILES)}")
        p.add_argument("--set", action="extend", nargs="+", default=[], metavar="KEY=VALUE",
                       help="replace config fields (e.g. seeds=0,1 data.source=mnist num_classes=100)")

    p = commands.add_parser("list", help="the studies (or one study's --set keys)")
    p.add_argument("study", nargs="?")
    common(p, profile_required=False)
    p.set_defaults(handler=_cmd_list)

    for name, handler, text in (("status", _cmd_status, "runs finished / total, each run's state"),
                                ("run", _cmd_run, "compute the unfinished runs")):
        p = commands.add_parser(name, help=text)
        p.add_argument("study")
        common(p, profile_required=True)
        p.add_argument("--root", help="the run store (default $FAIRDD_RESULTS or results/)")
        p.set_defaults(handler=handler)
        if name == "run":
            p.add_argument("--processes", type=int, help="local worker processes (default: one per CPU)")
            p.add_argument("--ray", nargs="?", const="", default=None, metavar="ADDRESS",
                           help="run on Ray: a cluster address ('auto', 'ray://head:10001'), or none for "
                                "$RAY_ADDRESS or a new local instance")
            p.add_argument("--gpus-per-task", type=float, default=None,
                           help="GPUs per Ray task (default: 1 when the cluster has GPUs, 0 for CPU-only cells)")
            p.add_argument("--max-retries", type=int, default=3, help="Ray retries of a task whose worker died")
    return parser


_SIGNALLED: list[int] = []


def _raise_interrupt(signum: int, frame: Any) -> None:
    _SIGNALLED.append(signum)
    raise KeyboardInterrupt(signal.Signals(signum).name)


def _stop_on_signals() -> dict[int, Any]:
    """SIGTERM (and SIGINT, as Python's default) raise ``KeyboardInterrupt`` in this process, so
    that a sweep stops its workers at once (:func:`fairdd.parallel.map_processes`) and releases
    its leases; finished runs are stored already, unfinished ones resume from their checkpoints.
    Returns the handlers it replaced."""
    return {signum: signal.signal(signum, _raise_interrupt) for signum in (signal.SIGTERM, signal.SIGINT)}


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line ``argv`` (default ``sys.argv[1:]``); the exit status."""
    from fairdd.results import _DISK_FULL

    args = _parser().parse_args(argv)
    replaced: dict[int, Any] = {}
    if args.command == "run" and threading.current_thread() is threading.main_thread():
        replaced = _stop_on_signals()
    try:
        return args.handler(args)
    except CLIError as exc:
        print(f"fairdd {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        signum = _SIGNALLED[-1] if _SIGNALLED else signal.SIGINT
        print(f"fairdd {args.command}: stopped by {signal.Signals(signum).name}; the workers were stopped, finished "
              "runs are kept: run the same command again to resume", file=sys.stderr)
        return 128 + int(signum)
    except BrokenPipeError:  # `fairdd status ... | head`
        sys.stderr.close()
        return 0
    except OSError as exc:
        if exc.errno not in _DISK_FULL:
            raise
        print(f"fairdd {args.command}: error: {exc.strerror or exc}", file=sys.stderr)
        return 1
    finally:
        for signum, handler in replaced.items():
            signal.signal(signum, handler)


if __name__ == "__main__":
    sys.exit(main())
