"""The ``fairdd`` command: list the studies, show a sweep's state, run it locally or on Ray.

::

    fairdd list                                   the studies, their profiles and cells
    fairdd list bias_dd --profile cpu             the keys --set accepts, with their values
    fairdd status bias_dd --profile cpu           runs finished / total, each run's state
    fairdd run bias_dd --profile cpu              the unfinished runs on this machine's cores
    fairdd run bias_dd --profile paper --ray auto the unfinished runs as tasks of a Ray cluster
    fairdd run classwise_dd --profile smoke --set num_classes=100 ipcs=1,5 data.source=mnist
    fairdd run kd_fairness --profile cpu --set temperatures=1,3 --dry-run
                                                  the expanded grid and its projected cost, nothing run
    fairdd runs kd_fairness --set role=ds kd.temperature=4
                                                  the stored runs: the keys that vary, commit, date, wall
    fairdd export kd_fairness --profile cpu -o rows.csv
                                                  the rows of a config's runs as one CSV file

(``python -m fairdd ...`` is the same.) A study is named by its run store folder (a key of
:data:`fairdd.studies.STUDIES`) or its module's name (``bias``, ``methods``, ...). Its config
is ``for_profile(profile, **options)`` of its config class (:func:`fairdd.studies.config_class`),
then ``--set key=value`` replaces fields: values are parsed against the fields' types (``3``,
``0.5``, ``true``, ``none``, tuples as ``1,5,10``, pairs as ``adult:0.7``), nested configs by
dotted keys (``dc.iterations=10``; in a tuple of configs, every member: ``data.train_per_class=50``,
``protocols.epochs=3``); a key that is a keyword of ``for_profile`` (the class-wise
study's ``num_classes``) is passed to it instead. Every argument is checked, and the cells
built, before anything is computed; an error names the key and what is allowed. After ``--set``
each word holding a ``=`` is one more assignment, so the study may come after them
(``fairdd status --set ipcs=1 classwise_dd --profile smoke``). Before any run starts, ``run``
also checks that the data every run to compute reads are on disk
(:func:`fairdd.sweep.check_data`) and, with ``--ray``, connects to the cluster
(:func:`fairdd.sweep.connect_ray`): each failure is one line, with exit status 2.

``status`` and ``run --dry-run`` show the grid with the keys that vary first (the grid's axes,
then what follows from them: :func:`order_keys`); ``--dry-run`` adds what the runs to compute
cost by the projection's counting and measured rates (:func:`fairdd.sweep.cost_estimate`).
``runs`` lists what the run store holds, whatever config made it (``--set`` there filters on
the stored keys; ``--profile`` keeps the book's cells of that profile); ``export`` writes the
rows of a config's runs (``--set`` as for ``run``), refusing when some are not computed unless
``--partial``.

Rows go to the run store (``--root``, else ``$FAIRDD_RESULTS`` or ``results/``), where the
notebooks read them: ``fairdd run bias_dd --profile paper --ray auto`` on a cluster, then
``PROFILE=paper make book`` with that store gives the paper-profile chapter.
"""

from __future__ import annotations

import argparse
import dataclasses
import difflib
import functools
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

__all__ = ["CLIError", "build_config", "main", "notebook_config", "parse_value", "settable_keys", "show_rerun"]

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


def _is_config(value: Any) -> bool:
    return dataclasses.is_dataclass(value) and not isinstance(value, type)


def _members(value: Any) -> list[Any] | None:
    """The configs inside a tuple field, when it is a tuple of configs of one class
    (``data: tuple[StudyData, ...]``) or of pairs ending in one (``protocols: ((name,
    KDConfig), ...)``); ``None`` otherwise."""
    if not isinstance(value, tuple) or not value:
        return None
    members = [v if _is_config(v) else v[-1] if isinstance(v, tuple) and v and _is_config(v[-1])
               and not any(_is_config(x) for x in v[:-1]) else None for v in value]
    if any(m is None for m in members) or len({type(m) for m in members}) != 1:
        return None
    return members


def settable_keys(config: Any, prefix: str = "") -> dict[str, tuple[Any, Any]]:
    """Every field ``--set`` can replace, dotted: key → (type, current value).

    Nested configs give dotted keys (``dc.iterations``). A tuple of configs of one class, or
    of pairs ending in one, gives the keys of that class, set in every member at once
    (``data.train_per_class`` for every data set of ``data``, ``protocols.epochs`` for every
    protocol); its current value is the members' value when they agree, else the tuple of
    their values."""
    hints = _hints(type(config))
    out: dict[str, tuple[Any, Any]] = {}
    for f in dataclasses.fields(config):
        if not prefix and f.name == "profile":
            continue
        value = getattr(config, f.name)
        members = _members(value)
        if _is_config(value):
            out.update(settable_keys(value, f"{prefix}{f.name}."))
        elif members is not None:
            per_member = [settable_keys(m, f"{prefix}{f.name}.") for m in members]
            for key, (annotation, _) in per_member[0].items():
                values = [keys[key][1] for keys in per_member if key in keys]
                same = all(v == values[0] for v in values)
                out[key] = (annotation, values[0] if same else tuple(values))
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
        value = getattr(config, head)
        if _members(value) is not None:  # a tuple of configs (or of pairs ending in one): every member
            top[head] = tuple(_replace(v, inner) if _is_config(v) else (*v[:-1], _replace(v[-1], inner)) for v in value)
        else:
            top[head] = _replace(value, inner)
    return dataclasses.replace(config, **top)


def _say_what_options_change(key: str, profile: str, config_cls: type, chosen: dict[str, Any],
                             keys: dict[str, tuple[Any, Any]], pairs: dict[str, str]) -> None:
    """Print (stderr) the keys a ``for_profile`` option changed besides itself, e.g. the data set
    the class-wise study's ``num_classes=100`` switches to: an explicit choice, not a silent one.
    Keys the command line sets itself are left out (the ``--set`` value wins)."""
    try:
        plain = settable_keys(config_cls.for_profile(profile))
    except (ValueError, TypeError):
        return
    changed = [f"{k} {_short(_text(plain[k][1]), 40)} -> {_short(_text(v), 40)}" for k, (_, v) in keys.items()
               if k in plain and k not in pairs and plain[k][1] != v]
    if changed:
        given = " ".join(f"{k}={_text(v)}" for k, v in chosen.items())
        print(f"{key} --profile {profile}: {given} also changes {'; '.join(changed)}", file=sys.stderr)


def build_config(
    study: str, profile: str, assignments: Sequence[str] = (), *, options: dict[str, Any] | None = None
) -> tuple[str, Any, Any, list[Any]]:
    """Study key, ``STUDY``, config and its cells for ``study --profile profile --set ...``;
    every error is a :class:`CLIError` (nothing is computed).

    ``options``: ``for_profile`` options given as values (a notebook's own parameters, e.g. the
    bias chapter's ``colour_severity``); an option given both there and in ``assignments`` is an
    error."""
    key = resolve_study(study)
    if profile not in PROFILES:
        raise CLIError(f"--profile {profile!r} is not known; choose one of {', '.join(PROFILES)}")
    study_obj, config_cls = _study(key)
    pairs = _split(assignments)
    if "profile" in pairs:
        raise CLIError("--set profile=...: give the profile with --profile")
    options_known = _profile_options(config_cls)
    given = dict(options or {})
    unknown = sorted(set(given) - set(options_known))
    if unknown:
        raise CLIError(f"{key}: for_profile has no option {unknown}; options: {', '.join(options_known) or 'none'}")
    twice = sorted(set(given) & set(pairs))
    if twice:
        raise CLIError(f"{key}: {twice} given both as a parameter and in the overrides; give each once")
    chosen = {
        name: _parse_set(name, pairs.pop(name), annotation, default)
        for name, (annotation, default) in options_known.items()
        if name in pairs
    }
    chosen.update(given)
    options = options_known
    try:
        config = config_cls.for_profile(profile, **chosen)
    except (ValueError, TypeError) as exc:
        raise CLIError(f"{key} --profile {profile} {' '.join(f'{k}={v}' for k, v in chosen.items())}: {exc}") from exc
    keys = settable_keys(config)
    if chosen:
        _say_what_options_change(key, profile, config_cls, chosen, keys, pairs)
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


def notebook_config(study: str, profile: str, overrides: Sequence[str] = (), **options: Any) -> Any:
    """The config a chapter renders: ``for_profile(profile, **options)`` with ``overrides``
    applied — ``key=value`` strings in the grammar of ``fairdd run --set`` (nested keys such as
    ``data.train_per_class=50``), parsed and checked by the same code, so a page and the command
    build the same config from the same words. Errors are :class:`CLIError` sentences, raised
    before any work."""
    if isinstance(overrides, str):
        raise CLIError(f"overrides={overrides!r} must be a list of key=value strings, e.g. ['seeds=0,1']")
    return build_config(study, profile, list(overrides), options=options)[2]


def show_rerun(study: str, notebook: str, profile: str, overrides: Sequence[str] = (), **options: Any) -> None:
    """Display a chapter's "Rerun this page" box (:func:`fairdd.book.rerun_html`) with the run
    count of the study at ``paper`` (``options``: the page's other ``for_profile`` parameters)."""
    from IPython.display import HTML, display

    from fairdd.book import rerun_html

    paper_runs = len(build_config(study, "paper", options=options)[3])
    display(HTML(rerun_html(study, notebook, profile, overrides, options=options, paper_runs=paper_runs)))


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


def _text(value: Any) -> str:
    """A flattened config value as a column shows it: lists as compact JSON, ``None`` as ``none``."""
    from fairdd.results import _dumps

    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "none"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, dict)):
        return _dumps(value)
    return str(value)


def _complex(value: Any) -> bool:
    return isinstance(value, (list, dict)) or (isinstance(value, str) and value[:1] in "[{" and len(value) > 1)


def order_keys(table: Sequence[dict[str, Any]]) -> tuple[list[str], list[str], list[str]]:
    """The keys of ``table`` (one dict per run) as ``(free, derived, constant)``.

    ``free``: the keys that vary on their own, the grid's axes (``role``, ``kd.temperature``,
    ``seed``: none follows from another); ``derived``: the other varying keys, those that follow
    from a free one (``data.train_per_class`` from ``data.source``), then lists and nested
    groups (``evaluations``); ``constant``: the keys with one value in every run. Each in
    config order. A key a run lacks counts as one more value, and a key follows from another
    only if that one is set in every run it is set in (``dd.size``, unset in the baselines' runs,
    does not make ``method`` a derived key).
    """
    keys = list(dict.fromkeys(k for row in table for k in row))
    texts = {k: [_text(row[k]) if k in row else "\x00" for row in table] for k in keys}
    varying = [k for k in keys if len(set(texts[k])) > 1]
    constant = [k for k in keys if k not in varying]
    plain = [k for k in varying if not any(_complex(row.get(k)) for row in table)]
    nested = [k for k in varying if k not in plain]
    counts = {k: len(set(texts[k])) for k in plain}

    def follows(k: str, j: str) -> bool:  # j is set wherever k is, and each value of j comes with one of k
        seen: dict[str, str] = {}
        return all((a != "\x00" or b == "\x00") and seen.setdefault(a, b) == b for a, b in zip(texts[j], texts[k]))

    free: list[str] = []
    derived: list[str] = []
    for k in plain:
        if any(follows(k, j) and (counts[j] > counts[k] or (counts[j] == counts[k] and j in free)) for j in plain if j != k):
            derived.append(k)
        else:
            free.append(k)
    return free, derived + nested, constant


def _grid(ids: Sequence[str], first: Sequence[tuple[str, Sequence[str]]], table: Sequence[dict[str, Any]],
          free: Sequence[str], derived: Sequence[str], last: Sequence[tuple[str, Sequence[str]]] = (),
          width: int | None = None) -> list[str]:
    """The lines of a runs table: ``run_id``, the ``first`` columns, every free key, then as many
    derived keys as fit in ``width`` characters (default: the terminal's, at least 120), then the
    ``last`` columns; a last line names the derived keys left out."""
    import shutil

    width = width if width is not None else max(120, shutil.get_terminal_size((160, 24)).columns)

    def column(key: str) -> list[str]:
        return [_short(_text(row[key]) if key in row else "–", 32) for row in table]

    columns = [("run_id", list(ids)), *[(h, [_short(v, 32) for v in vals]) for h, vals in first],
               *[(k, column(k)) for k in free]]
    tail = [(h, [_short(v, 32) for v in vals]) for h, vals in last]

    def size(cols: Sequence[tuple[str, list[str]]]) -> int:
        return sum(max([len(h), *map(len, vals)]) + 2 for h, vals in cols)

    shown, left = [], []
    for k in derived:
        if not left and size([*columns, *shown, (k, column(k)), *tail]) <= width:
            shown.append((k, column(k)))
        else:
            left.append(k)
    cols = [*columns, *shown, *tail]
    widths = [max([len(h), *map(len, vals)]) for h, vals in cols]
    lines = ["  ".join(h.ljust(w) for (h, _), w in zip(cols, widths)).rstrip()]
    for i in range(len(ids)):
        lines.append("  ".join(vals[i].ljust(w) for (_, vals), w in zip(cols, widths)).rstrip())
    if left:
        named = ", ".join(left[:8]) + (", ..." if len(left) > 8 else "")
        lines.append(f"({len(left)} more varying keys follow from the ones shown or are groups: {named}; "
                     "--format csv lists every key)")
    return lines


def _cell_table(cells: Sequence[Any]) -> list[dict[str, Any]]:
    return [_flat(c) for c in cells]


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


def _csv_out(frame: Any, output: str | None) -> None:
    """``frame`` as CSV (no index) to ``output`` (``-`` or ``None``: stdout), written atomically:
    a file is complete or absent."""
    import os
    import tempfile

    if output in (None, "-"):
        frame.to_csv(sys.stdout, index=False)
        return
    target = Path(output)
    if target.is_dir():
        raise CLIError(f"-o {output}: is a folder; give a file name (e.g. {target / 'rows.csv'})")
    if not target.parent.is_dir():
        raise CLIError(f"-o {output}: the folder {target.parent} does not exist")
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "w", newline="") as fh:
            frame.to_csv(fh, index=False)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _cmd_status(args: argparse.Namespace) -> int:
    from fairdd.sweep import cell_state

    key, study, _, cells = build_config(args.study, args.profile, args.set)
    root = Path(args.root) if args.root else None
    states = [cell_state(study, c, root) for c in cells]
    finished = sum(s == "finished" for s in states)
    from fairdd import results

    where = results.run_dir(key, cells[0], root=root).parent
    table = _cell_table(cells)
    free, derived, constant = order_keys(table)
    ids = [results.run_id(c) for c in cells]
    if args.format == "csv":
        import pandas as pd

        frame = pd.DataFrame([{"run_id": i, "state": s, **{k: _text(row[k]) if k in row else "" for k in
                                                           [*free, *derived, *constant]}}
                              for i, s, row in zip(ids, states, table)])
        _csv_out(frame, None)
        return 0
    print(f"{key} --profile {args.profile}: {finished}/{len(cells)} runs finished ({where})")
    for line in _grid(ids, [("state", states)], table, free, derived):
        print(line)
    if constant:
        print(f"({len(constant)} keys are the same in every run: fairdd list {key} --profile {args.profile})")
    return 0


def _matches(value: Any, text: str) -> bool:
    """Whether a stored column value equals ``text`` as ``--set`` writes it (``3``, ``0.5``,
    ``true``, ``none``, ``a,b``; for a scalar, a comma-separated list means any of them)."""
    import json

    if isinstance(value, str) and value[:1] == "[":
        try:
            value = json.loads(value)
        except ValueError:
            pass
    if isinstance(value, list):
        parts = [p.strip() for p in text.split(",")] if text.strip() else []
        return len(parts) == len(value) and all(_matches(v, p) for v, p in zip(value, parts))
    options = [p.strip() for p in text.split(",")]
    for option in options:
        low = option.lower()
        if value is None or (isinstance(value, float) and math.isnan(value)):
            if low in _NONE or low == "":
                return True
        elif isinstance(value, bool):
            if (low in _TRUE and value) or (low in _FALSE and not value):
                return True
        elif isinstance(value, (int, float)):
            try:
                if float(option) == float(value):
                    return True
            except ValueError:
                pass
        elif str(value) == option:
            return True
    return False


def _select_runs(frame: Any, assignments: Sequence[str], study: str) -> Any:
    """``frame`` (one row per stored run) keeping the runs whose columns match every ``--set``."""
    pairs = _split(assignments)
    for name, text in pairs.items():
        if name not in frame.columns:
            columns = [c for c in frame.columns]
            close = difflib.get_close_matches(name, columns, n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise CLIError(f"--set {name}=: the stored runs of {study} have no key {name!r}.{hint} "
                           f"Keys: {', '.join(columns)}")
        frame = frame[[_matches(v, text) for v in frame[name]]]
    return frame


def _cmd_runs(args: argparse.Namespace) -> int:
    import warnings

    from fairdd import results

    key = resolve_study(args.study)
    root = Path(args.root) if args.root else None
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        frame = results.runs(key, root=root)
    for w in caught:
        print(f"fairdd runs: warning: {' '.join(str(w.message).split())}", file=sys.stderr)
    where = results._study_dir(key, root)
    if frame.empty:
        print(f"{key}: no finished runs in {where}", file=sys.stderr)
        return 0
    total = len(frame)
    if args.profile is not None:
        if args.profile not in PROFILES:
            raise CLIError(f"--profile {args.profile!r} is not known; choose one of {', '.join(PROFILES)}")
        from fairdd.records import book_cells

        try:
            cells = book_cells(key, args.profile)
        except (ValueError, TypeError) as exc:
            raise CLIError(f"{key} --profile {args.profile}: {exc}") from exc
        frame = frame[frame["run_id"].isin(cells)]
    frame = _select_runs(frame, args.set, key)
    provenance = list(results.RUN_LIST_PROVENANCE)
    config_keys = [c for c in frame.columns if c not in provenance and c != "run_id"]
    records = frame.to_dict("records")
    table = [{k: v for k, v in row.items() if k in config_keys and not _missing(v)} for row in records]
    free, derived, constant = order_keys(table) if table else ([], [], config_keys)
    if args.format == "csv":
        _csv_out(frame[["run_id", *free, *derived, *constant, *provenance]], None)
        return 0
    print(f"{key}: {len(frame)} of {total} stored runs" + (f", cells of --profile {args.profile}" if args.profile else "")
          + (f", matching {' '.join(args.set)}" if args.set else "") + f" ({where})")
    if frame.empty:
        return 0
    last = [
        ("commit", [str(r.get("commit") or "–")[:7] + ("+" if r.get("dirty") else "") for r in records]),
        ("finished (UTC)", [str(r.get("finished") or "–")[:16].replace("T", " ") for r in records]),
        ("wall", ["–" if _missing(r.get("wall_s")) else _duration(float(r["wall_s"])) for r in records]),
    ]
    for line in _grid([r["run_id"] for r in records], [], table, free, derived, last):
        print(line)
    if constant:
        print(f"({len(constant)} keys are the same in every listed run; commit+: made with uncommitted changes)")
    return 0


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


def _cmd_export(args: argparse.Namespace) -> int:
    from fairdd import results

    key, _, _, cells = build_config(args.study, args.profile, args.set)
    root = Path(args.root) if args.root else None
    frame, missing = results.load_runs(key, cells, root=root)
    if missing and not args.partial:
        given = f" --set {' '.join(args.set)}" if args.set else ""
        raise CLIError(
            f"{len(missing)} of the {len(set(cells))} runs of {key} --profile {args.profile}{given} are not in "
            f"{results._study_dir(key, root)}; nothing written. Compute them (fairdd run {key} --profile "
            f"{args.profile}{given}) or export the finished ones (--partial)"
        )
    if frame.empty:
        raise CLIError(f"none of the {len(set(cells))} runs of {key} --profile {args.profile} is finished; nothing written")
    _csv_out(frame, args.output)
    if args.output not in (None, "-"):
        note = f"; {len(missing)} runs not finished, left out" if missing else ""
        print(f"{key} --profile {args.profile}: {len(frame)} rows of {frame['run_id'].nunique()} runs -> "
              f"{args.output}{note}", file=sys.stderr)
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

    if args.dry_run:
        return _dry_run(args, key, study, cells, root)
    todo = [c for c in cells if not study.is_finished(c, root)]
    finished = len(cells) - len(todo)
    try:
        sweep.check_data(todo)  # before any work: every data set the runs to compute read is there
    except sweep.MissingDataError as exc:
        raise CLIError(str(exc)) from None
    try:
        results.check_root(root)  # before any work, teachers and experts included
    except (NotADirectoryError, PermissionError) as exc:
        raise CLIError(str(exc)) from None
    ray = None
    if args.ray is not None and todo:
        ray = sweep.import_ray()
        started_here = not ray.is_initialized()
        try:
            sweep.connect_ray(args.ray or None, processes=args.processes)  # before any work
        except sweep.RayConnectionError as exc:
            raise CLIError(str(exc)) from None
        if not started_here:
            ray = None  # someone else's instance (a notebook, a test): left running
    try:
        return _run_connected(args, key, study, config, cells, root, finished)
    finally:
        if ray is not None:
            ray.shutdown()


def _run_connected(args: argparse.Namespace, key: str, study: Any, config: Any, cells: list[Any], root: Path | None,
                   finished: int) -> int:
    from fairdd import sweep

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
        try:
            rows = sweep.run_ray(
                study, cells, root=root, address=args.ray or None, processes=args.processes,
                gpus_per_task=args.gpus_per_task, max_retries=args.max_retries, progress=progress, summary=summary,
            )
        except sweep.RayConnectionError as exc:  # raised before any task is sent
            raise CLIError(str(exc)) from None
        computed = summary.computed
    print(
        f"{key} --profile {args.profile}: {len(cells)} runs, {computed} computed now, "
        f"{len(rows)} rows in {results_dir(key, cells[0], root)} ({time.perf_counter() - start:.1f} s)"
    )
    return 0


def _dry_run(args: argparse.Namespace, key: str, study: Any, cells: list[Any], root: Path | None) -> int:
    """``run --dry-run``: the expanded grid (each run's state and the keys that vary) and what
    computing the unfinished runs would cost (:func:`fairdd.sweep.cost_estimate`); nothing is
    computed or written. Exit status 2 when data the runs to compute read are missing."""
    from fairdd import results, sweep

    states = [sweep.cell_state(study, c, root) for c in cells]
    todo = [c for c, s in zip(cells, states) if s != "finished"]
    table = _cell_table(cells)
    free, derived, _ = order_keys(table)
    given = f" --set {' '.join(args.set)}" if args.set else ""
    print(f"{key} --profile {args.profile}{given}: {len(cells)} runs, {len(cells) - len(todo)} finished, "
          f"{len(todo)} to compute ({results._study_dir(key, root)}); dry run: nothing is computed")
    for line in _grid([results.run_id(c) for c in cells], [("state", states)], table, free, derived):
        print(line)
    try:
        sweep.check_data(todo)  # before the estimate, which may read the data to count its work
    except sweep.MissingDataError as exc:
        raise CLIError(str(exc)) from None
    work = functools.lru_cache(maxsize=None)(study.work) if study.work is not None else None
    for label, chosen in (("to compute", todo), ("all runs", cells)):
        if (label == "all runs" and len(todo) == len(cells)) or not chosen:
            continue
        est = sweep.cost_estimate(key, chosen, work=work)
        line = f"cost, {label} ({est['cells']} runs): {est.get('sample_passes', 0):.3g} sample-passes"
        unmeasured = est.get("unmeasured_items") or 0
        if est.get("hours_sequential") is not None:
            line += (f"; projected {_duration(3600 * est['hours_sequential'])} one network at a time, "
                     f"{_duration(3600 * est['hours_batched'])} with the batched paths, on {est['device']}"
                     f" (rates of {est['rates_file']}, measured {est['measured']} at {est['commit']}"
                     + (f"; {unmeasured} of {est['items']} work items have no measured rate and are not counted"
                        if unmeasured else "") + ")")
        elif "rates_file" in est:
            line += (f"; no time estimate: none of its {est['items']} work items has a measured rate in "
                     f"{est['rates_file']} (benchmarks/projection.py measures the networks of the profile it is "
                     "run for)")
        else:
            line += f"; no time estimate: {est.get('why')}"
        print(line)
    return 0


def results_dir(key: str, cell: Any, root: Path | None) -> Path:
    from fairdd import results

    return results.run_dir(key, cell, root=root).parent


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fairdd", description="Run the book's studies: list them, show a sweep's state, run it locally or on Ray."
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="{list,status,run,runs,export}")

    def common(p: argparse.ArgumentParser, *, profile_required: bool) -> None:
        p.add_argument("--profile", required=profile_required, default=None if profile_required else "smoke",
                       help=f"one of {', '.join(PROFILES)}")
        p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                       help="replace config fields (e.g. seeds=0,1 data.source=mnist num_classes=100); one or "
                            "more KEY=VALUE after each --set")

    p = commands.add_parser("list", help="the studies (or one study's --set keys)")
    p.add_argument("study", nargs="?")
    common(p, profile_required=False)
    p.set_defaults(handler=_cmd_list)

    for name, handler, text in (("status", _cmd_status, "runs finished / total, each run's state"),
                                ("run", _cmd_run, "compute the unfinished runs"),
                                ("export", _cmd_export, "the rows of a config's runs as one CSV file")):
        p = commands.add_parser(name, help=text)
        p.add_argument("study")
        common(p, profile_required=True)
        p.add_argument("--root", help="the run store (default $FAIRDD_RESULTS or results/)")
        p.set_defaults(handler=handler)
        if name == "status":
            p.add_argument("--format", choices=("table", "csv"), default="table")
        if name == "export":
            p.add_argument("-o", "--output", default="-", metavar="FILE", help="the CSV file (default -: stdout)")
            p.add_argument("--partial", action="store_true",
                           help="write the finished runs when some are not (default: refuse)")
        if name == "run":
            p.add_argument("--dry-run", action="store_true",
                           help="print the expanded grid and the projected cost; compute nothing")
            p.add_argument("--processes", type=int, help="local worker processes (default: one per CPU)")
            p.add_argument("--ray", nargs="?", const="", default=None, metavar="ADDRESS",
                           help="run on Ray: a cluster address ('auto', 'ray://head:10001'), or none for "
                                "$RAY_ADDRESS or a new local instance")
            p.add_argument("--gpus-per-task", type=float, default=None,
                           help="GPUs per Ray task (default: 1 when the cluster has GPUs, 0 for CPU-only cells)")
            p.add_argument("--max-retries", type=int, default=3, help="Ray retries of a task whose worker died")
    p = commands.add_parser("runs", help="the stored runs of a study: the keys that vary, commit, date, wall time")
    p.add_argument("study")
    p.add_argument("--profile", default=None,
                   help=f"only the runs that are cells of the book at this profile ({', '.join(PROFILES)})")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="keep the runs whose stored KEY equals VALUE (e.g. kd.temperature=4 role=ds seed=0,1)")
    p.add_argument("--format", choices=("table", "csv"), default="table",
                   help="csv: every key of every listed run, with its provenance")
    p.add_argument("--root", help="the run store (default $FAIRDD_RESULTS or results/)")
    p.set_defaults(handler=_cmd_runs)
    return parser


def _expand_set(argv: Sequence[str]) -> list[str]:
    """``--set a=1 b=2 study`` as ``--set=a=1 --set=b=2 study``: after ``--set`` the next word is
    its value, and each following word is one more while it holds a ``=`` (a study name never
    does), so ``--set ipcs=1 classwise_dd`` leaves the study name to the study."""
    out: list[str] = []
    words = list(argv)
    i = 0
    while i < len(words):
        word = words[i]
        if word == "--":
            out += words[i:]
            break
        if word == "--set" and i + 1 < len(words) and not words[i + 1].startswith("-"):
            out.append(f"--set={words[i + 1]}")
            i += 2
            while i < len(words) and "=" in words[i] and not words[i].startswith("-"):
                out.append(f"--set={words[i]}")
                i += 1
            continue
        out.append(word)
        i += 1
    return out


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

    args = _parser().parse_args(_expand_set(sys.argv[1:] if argv is None else argv))
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
