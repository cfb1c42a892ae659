"""Prepare executed chapter notebooks for the rendered book.

Papermill writes the values a build used into an ``injected-parameters`` cell right under the
notebook's own ``parameters`` cell, so a rendered page would show both (the same
``profile = "cpu"`` twice) before its first result. :func:`fold_parameters` removes the
defaults cell from the page (Jupyter Book's ``remove-cell`` tag), folds the injected cell
(``hide-input``) and puts one line above it that says which parameters this build used; the
plumbing cell right after (imports and the parameter check) is folded too. Only cell tags and
one markdown cell change: code and outputs stay as executed.

``make book`` runs ``python -m fairdd.book book/chapters/*.ipynb`` after papermill.
"""

from __future__ import annotations

import argparse
import ast
import html
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import nbformat
import numpy as np

__all__ = [
    "PARAMETERS_NOTE",
    "claims_html",
    "fold_parameters",
    "main",
    "rerun_html",
    "readable_tables",
    "rows_csv",
    "run_summary",
    "show_claims",
    "show_sources",
    "sources",
]

#: The ``fairdd-book`` metadata key marks the line this module adds (so a second run replaces it).
PARAMETERS_NOTE = "fairdd-parameters-note"


def _tags(cell: nbformat.NotebookNode) -> list[str]:
    return list(cell.get("metadata", {}).get("tags", []))


def _add_tag(cell: nbformat.NotebookNode, tag: str) -> None:
    tags = _tags(cell)
    if tag not in tags:
        cell.setdefault("metadata", {})["tags"] = [*tags, tag]


def _assignments(source: str) -> list[str]:
    """``name = value`` of each top-level assignment of a parameters cell, as written."""
    out = []
    for node in ast.parse(source).body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            out.append(f"{node.targets[0].id} = {ast.get_source_segment(source, node.value)}")
    return out


def fold_parameters(path: str | Path) -> bool:
    """Fold the parameter cells of one executed notebook in place; ``False`` if it has none.

    Raises ``ValueError`` naming the file when its ``parameters`` cell is missing but an
    injected one exists (papermill always keeps the original), or when a cell does not parse.
    """
    path = Path(path)
    nb = nbformat.read(path, as_version=4)
    cells = [c for c in nb.cells if c.get("metadata", {}).get(PARAMETERS_NOTE) is None]
    index = {tag: i for i, c in enumerate(cells) for tag in _tags(c) if tag in ("parameters", "injected-parameters")}
    if "parameters" not in index:
        if "injected-parameters" in index:
            raise ValueError(f"{path}: an injected-parameters cell but no parameters cell; re-run papermill on the source")
        return False
    defaults = cells[index["parameters"]]
    injected = cells[index["injected-parameters"]] if "injected-parameters" in index else None
    try:
        used = _assignments(injected.source if injected is not None else defaults.source)
    except SyntaxError as err:
        raise ValueError(f"{path}: its parameters cell does not parse ({err})") from None
    if injected is not None:
        _add_tag(defaults, "remove-cell")
        _add_tag(injected, "hide-input")
        shown = injected
    else:
        _add_tag(defaults, "hide-input")
        shown = defaults
    position = cells.index(shown)
    after = cells[position + 1] if position + 1 < len(cells) else None
    if after is not None and after.cell_type == "code":
        _add_tag(after, "hide-input")  # imports and the parameter check
    note = nbformat.v4.new_markdown_cell(
        "**Parameters of this build:** " + ", ".join(f"`{a}`" for a in used) + "."
        + (" (Injected by papermill; the notebook's defaults are in its source.)" if injected is not None else "")
    )
    note.metadata[PARAMETERS_NOTE] = True
    cells.insert(position, note)
    nb.cells = cells
    nbformat.write(nb, path)
    return True


def sources(rows: Any, profile: str) -> str:
    """One markdown line saying which runs a table or figure comes from, computed from the rows'
    provenance columns (:func:`fairdd.results.run`): how many runs at which ``profile``, the
    commit(s) (``+dirty`` when the working tree had uncommitted changes), the device(s), and the
    date(s) they finished — so a page built from recorded runs says so, line by line."""
    if rows is None or len(rows) == 0 or "run_id" not in rows:
        raise ValueError("sources needs the rows a table or figure was computed from (with their run_id column)")
    runs = rows.drop_duplicates("run_id")
    missing = [c for c in ("commit", "device", "finished") if c not in runs]
    if missing:
        raise ValueError(f"sources: the rows lack the provenance column(s) {missing}; read them through fairdd.results")

    def counted(values: Any) -> str:
        counts = values.fillna("unknown").astype(str).value_counts()
        if len(counts) == 1:
            return str(counts.index[0])
        return ", ".join(f"{v} ({n} run{'s' if n != 1 else ''})" for v, n in counts.items())

    commit = runs["commit"].fillna("unknown").astype(str).str[:10]
    if "dirty" in runs:
        commit = commit.where(~runs["dirty"].fillna(False).astype(bool), commit + "+dirty")
    dates = runs["finished"].dropna().astype(str).str[:10]
    when = "unknown" if dates.empty else (dates.min() if dates.min() == dates.max() else f"{dates.min()} to {dates.max()}")
    n = len(runs)
    return (
        f"*Source: {n} run{'s' if n != 1 else ''} at profile `{profile}`; commit {counted(commit)}; "
        f"device {counted(runs['device'])}; finished {when} (UTC).*"
    )


#: Where a book build writes the rows behind each table and figure (``make book`` sets it to a
#: folder that Jupyter Book copies beside the pages: ``html_extra_path`` in ``_config.yml``),
#: and the page being executed (its notebook's name).
BOOK_DATA_ENV, PAGE_ENV = "FAIRDD_BOOK_DATA", "FAIRDD_PAGE"
#: Columns whose cells are longer than this (count tables, disagreement matrices as JSON) are
#: left out of a page's CSV files; ``fairdd export`` writes every column.
CSV_CELL_LIMIT = 1000


def rows_csv(rows: Any, folder: str | Path) -> tuple[Path, list[str]]:
    """Write ``rows`` (tidy, one row per trained model) as CSV under ``folder``, named by a hash
    of its content (so the same rows under several tables are one file). Columns with a cell
    longer than :data:`CSV_CELL_LIMIT` characters are left out. Returns the path and the
    left-out columns."""
    import hashlib

    import pandas as pd

    if rows is None or len(rows) == 0:
        raise ValueError("rows_csv needs at least one row")
    wide = [c for c in rows.columns if (rows[c].dtype == object or pd.api.types.is_string_dtype(rows[c]))
            and rows[c].map(lambda v: isinstance(v, str) and len(v) > CSV_CELL_LIMIT).any()]
    text = rows.drop(columns=wide).to_csv(index=False)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"rows-{hashlib.sha256(text.encode()).hexdigest()[:12]}.csv"
    if not path.exists():
        tmp = path.with_suffix(".tmp")
        tmp.write_text(text)
        tmp.replace(path)
    return path, wide


def _csv_link(rows: Any) -> str:
    """`` · [the N rows as CSV](data/<page>/rows-….csv)`` when a book build asks for the files
    (:data:`BOOK_DATA_ENV`, :data:`PAGE_ENV` set), else ``""``."""
    import os

    folder, page = os.environ.get(BOOK_DATA_ENV), os.environ.get(PAGE_ENV)
    if not folder or not page:
        return ""
    path, wide = rows_csv(rows, Path(folder) / page)
    left = f", without the column(s) {', '.join(wide)}; `fairdd export` writes them" if wide else ""
    return f" [The {len(rows)} rows as CSV](data/{page}/{path.name}){left}."


def table_html(frame: Any) -> str:
    """A data frame as a reader's HTML table: no 0…N index column (a labelled index stays),
    "–" for a missing value, whole-number float columns as integers (counts, not 1.0); the
    display options' row and column limits as in pandas' own rendering."""
    import pandas as pd

    shown = frame.copy()
    for column in shown.columns:
        values = shown[column]
        if pd.api.types.is_float_dtype(values):
            finite = values.dropna()
            if len(finite) and np.isfinite(finite).all() and (finite == finite.round()).all() and finite.abs().max() < 2**53:
                shown[column] = pd.Series([np.nan if pd.isna(v) else int(v) for v in values], index=values.index,
                                          dtype=object)
    plain_index = isinstance(shown.index, pd.RangeIndex)
    return shown.to_html(index=not plain_index, na_rep="–", max_rows=pd.get_option("display.max_rows"),
                         max_cols=pd.get_option("display.max_columns"), border=0)


def readable_tables() -> None:
    """Make a notebook show every data frame through :func:`table_html`, and styled tables with
    "–" for a missing value. Call once in a page's set-up cell; outside IPython it does nothing."""
    import pandas as pd

    pd.set_option("styler.format.na_rep", "–")
    try:
        from IPython import get_ipython
    except ImportError:
        return
    shell = get_ipython()
    if shell is not None:
        shell.display_formatter.formatters["text/html"].for_type(pd.DataFrame, table_html)


def run_summary(rows: Any, started: float, profile: str, *, what: str = "models") -> str:
    """The line a page's run cell ends with: how many ``what`` (rows) from how many runs, how
    many of those runs were computed by this call (finished at or after ``started``, a
    ``time.time()`` taken just before it) and how many were read from the run store, the
    wall time, the profile and the devices the runs were computed on."""
    import time

    import pandas as pd

    if rows is None or len(rows) == 0 or "run_id" not in rows or "finished" not in rows:
        raise ValueError("run_summary needs the rows of a run_study call (with run_id and finished columns)")
    runs = rows.drop_duplicates("run_id")
    finished = pd.to_datetime(runs["finished"], utc=True, errors="coerce", format="ISO8601")
    start = pd.Timestamp(started, unit="s", tz="UTC")
    computed = int((finished >= start).sum())
    devices = ", ".join(sorted(runs["device"].astype(str).unique())) if "device" in runs else "unknown"
    return (f"{len(rows)} {what} from {len(runs)} runs in {time.time() - started:.0f} s: computed {computed}, "
            f"read {len(runs) - computed} from the run store (profile {profile!r}; runs computed on {devices})")


def show_sources(rows: Any, profile: str) -> None:
    """Display :func:`sources` under a table or figure in a notebook (open matplotlib figures
    are shown first, so the line sits under the figure it describes); in a book build, with a
    link to the rows as CSV (:func:`rows_csv`)."""
    import matplotlib.pyplot as plt
    from IPython.display import Markdown, display

    if plt.get_fignums():
        plt.show()

    display(Markdown(sources(rows, profile) + _csv_link(rows)))


def rerun_html(study: str, notebook: str, profile: str, overrides: Sequence[str] = (), *,
               options: dict[str, Any] | None = None, paper_runs: int | None = None) -> str:
    """The "Rerun this page" box: the exact papermill and ``fairdd`` commands that rebuild this
    page's runs (``overrides`` in ``--set`` grammar; ``options``: the page's other parameters),
    where the runs are stored, and what the study costs at ``paper`` (``paper_runs``, its run
    count; the projection's estimate, from ``benchmarks/results/projection.json`` when present).
    :func:`fairdd.cli.show_rerun` fills in the count from the study's config.
    """
    import json
    import shlex

    from fairdd.paths import REPO_ROOT

    overrides = list(overrides)
    params = [f"-p profile {profile}"] + [f"-p {k} {shlex.quote(str(v))}" for k, v in (options or {}).items()]
    if overrides:
        params.append("-y " + shlex.quote("overrides: " + json.dumps(overrides)))
    sets = (" --set " + " ".join(shlex.quote(o) for o in overrides)) if overrides else ""
    commands = [
        f"papermill -k python3 --cwd notebooks {' '.join(params)} notebooks/{notebook}.ipynb {notebook}-out.ipynb",
        f"fairdd run {study} --profile {profile}{sets}    # the same runs from a terminal (--dry-run: the grid and its cost)",
        f"fairdd list {study} --profile {profile}    # every key that overrides / --set accept",
        f"fairdd runs {study}    # the runs in the store, by the keys that vary",
        f"fairdd export {study} --profile {profile}{sets} -o rows.csv    # every row, every column",
    ]
    projected = ""
    rates = REPO_ROOT / "benchmarks" / "results" / "projection.json"
    if rates.is_file():
        try:
            projection = json.loads(rates.read_text())
            entry = next(e for e in projection["tables"]["studies"] if e.get("study") == study)
            prov = projection["provenance"]
            hours = float(entry["hours_sequential"])
            projected = (f" benchmarks/projection.py put the study's paper profile ({entry['cells']} runs when it ran) at "
                         f"{hours:,.0f} hours one network at a time on {entry['device']} (one thread; measured "
                         f"{str(prov.get('created_utc', '?'))[:10]} at {str(prov.get('commit', '?'))[:7]}).")
        except (KeyError, ValueError, TypeError, StopIteration):
            projected = ""
    given = ", ".join(overrides) if overrides else "none"
    return (
        '<div class="admonition tip fairdd-rerun"><p class="admonition-title">Rerun this page</p>'
        f"<p>This page ran study <code>{html.escape(study)}</code> at profile <code>{html.escape(profile)}</code>, "
        f"overrides: <code>{html.escape(given)}</code>. Change them and rerun from a checkout (<code>make data</code> "
        "first):</p><pre>" + html.escape("\n".join(commands)) + "</pre>"
        "<p>Runs are stored under <code>$FAIRDD_RESULTS</code> (else <code>results/</code> in the checkout); a run "
        "already there is read, not recomputed, so a changed override computes only the new runs. "
        + (f"At profile <code>paper</code> this page is {paper_runs} runs." if paper_runs is not None else "")
        + f"{html.escape(projected)}</p></div>"
    )


def _number(x: Any, digits: int = 2) -> str:
    try:
        value = float(x)
    except (TypeError, ValueError):
        return "–"
    return f"{value:.{digits}f}" if math.isfinite(value) else "–"


def claims_html(claims: Any, *, statement: bool = True) -> str:
    """A chapter's claim verdicts (:data:`fairdd.stats.CLAIM_COLUMNS` rows) as one HTML table.

    Columns: the claim (and its statement), the data set, the verdict with its generated reason,
    our effect with its 95 % interval, the minimum detectable effect, the paper's effect, the
    experimental unit and n. Each row carries ``data-claim-key`` (paper | claim | data set) and
    ``data-verdict``, so the book's browser test can check that the replication summary and every
    chapter show the same verdicts.
    """
    from fairdd.stats import CLAIM_COLUMNS, VERDICTS

    missing = [c for c in CLAIM_COLUMNS if c not in getattr(claims, "columns", ())]
    if missing:
        raise ValueError(f"claims lack the columns {missing}; build them with fairdd.stats.claim_row")
    bad = sorted(set(claims["verdict"]) - set(VERDICTS))
    if bad:
        raise ValueError(f"claims hold verdicts {bad}; allowed: {list(VERDICTS)}")
    head = ["claim", *(["statement"] if statement else []), "data set", "verdict", "why",
            "our effect [95 % CI]", "minimum detectable effect", "paper's effect", "unit (n)"]
    out = ['<table class="fairdd-claims">', "<thead><tr>" + "".join(f"<th>{h}</th>" for h in head) + "</tr></thead>",
           "<tbody>"]
    for r in claims.itertuples(index=False):
        key = html.escape(f"{r.paper} | {r.claim} | {r.dataset}", quote=True)
        effect = _number(r.effect)
        if effect != "–" and _number(r.ci_low) != "–":
            effect += f" [{_number(r.ci_low)}, {_number(r.ci_high)}]"
        cells = [str(r.claim), *([str(r.statement)] if statement else []), str(r.dataset), f"<b>{r.verdict}</b>",
                 str(r.reason), effect, _number(r.mde), _number(r.paper_effect), f"{r.unit} ({r.n})" if r.unit else "–"]
        escaped = [c if c.startswith("<b>") else html.escape(c) for c in cells]
        out.append(f'<tr data-claim-key="{key}" data-verdict="{html.escape(str(r.verdict), quote=True)}">'
                   + "".join(f"<td>{c}</td>" for c in escaped) + "</tr>")
    out.append("</tbody></table>")
    return "\n".join(out)


def show_claims(claims: Any, *, statement: bool = True) -> None:
    """Display :func:`claims_html` in a notebook."""
    from IPython.display import HTML, display

    display(HTML(claims_html(claims, statement=statement)))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fairdd.book", description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="+", type=Path, help="executed chapter notebooks (changed in place)")
    args = parser.parse_args(argv)
    missing = [str(p) for p in args.notebooks if not p.is_file()]
    if missing:
        parser.error(f"no such notebook(s): {', '.join(missing)}")
    for p in args.notebooks:
        fold_parameters(p)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
