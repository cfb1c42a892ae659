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
from collections.abc import Sequence
from pathlib import Path

import nbformat

__all__ = ["PARAMETERS_NOTE", "fold_parameters", "main"]

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
