"""fairdd.book: folding the parameter cells of executed chapters."""

import nbformat
import pytest

from fairdd import book


def _notebook(tmp_path, *, injected: bool = True):
    cells = [
        nbformat.v4.new_markdown_cell("# A chapter"),
        nbformat.v4.new_code_cell('profile = "cpu"\nprocesses = None', metadata={"tags": ["parameters"]}),
    ]
    if injected:
        cells.append(nbformat.v4.new_code_cell('# Parameters\nprofile = "smoke"\n', metadata={"tags": ["injected-parameters"]}))
    cells += [nbformat.v4.new_code_cell("import fairdd"), nbformat.v4.new_code_cell("rows = 1")]
    path = tmp_path / "chapter.ipynb"
    nbformat.write(nbformat.v4.new_notebook(cells=cells), path)
    return path


def _tags(cell):
    return cell.get("metadata", {}).get("tags", [])


def test_injected_parameters_are_folded_into_one_line(tmp_path) -> None:
    path = _notebook(tmp_path)
    assert book.fold_parameters(path)
    cells = nbformat.read(path, as_version=4).cells
    assert "remove-cell" in _tags(cells[1])  # the defaults
    assert cells[2].cell_type == "markdown" and "`profile = \"smoke\"`" in cells[2].source
    assert "hide-input" in _tags(cells[3]) and "hide-input" in _tags(cells[4])  # injected, then the imports
    assert _tags(cells[5]) == []  # the story is not touched
    # A second run replaces its own line instead of adding another.
    book.fold_parameters(path)
    again = nbformat.read(path, as_version=4).cells
    assert len(again) == len(cells) and sum(c.source.startswith("**Parameters of this build") for c in again) == 1


def test_without_injection_the_defaults_are_the_build_parameters(tmp_path) -> None:
    path = _notebook(tmp_path, injected=False)
    book.fold_parameters(path)
    cells = nbformat.read(path, as_version=4).cells
    assert "`profile = \"cpu\"`, `processes = None`" in cells[1].source and "hide-input" in _tags(cells[2])


def test_bad_notebooks_are_named(tmp_path) -> None:
    path = _notebook(tmp_path)
    nb = nbformat.read(path, as_version=4)
    nb.cells[1].metadata["tags"] = []
    nbformat.write(nb, path)
    with pytest.raises(ValueError, match="chapter.ipynb: an injected-parameters cell but no parameters cell"):
        book.fold_parameters(path)
    with pytest.raises(SystemExit):
        book.main([str(tmp_path / "missing.ipynb")])


def test_sources_line_is_computed_from_the_provenance_columns() -> None:
    import pandas as pd
    import pytest

    from fairdd.book import sources

    rows = pd.DataFrame({
        "run_id": ["a", "a", "b"], "commit": ["3b89ea10abcdef"] * 2 + ["ffff00001111"], "dirty": [False, False, True],
        "device": ["cpu"] * 3, "finished": ["2026-12-03T14:00:00+00:00"] * 2 + ["2026-12-04T01:00:00+00:00"],
    })
    line = sources(rows, "cpu")
    assert line.startswith("*Source: 2 runs at profile `cpu`")
    assert "3b89ea10ab (1 run), ffff000011+dirty (1 run)" in line
    assert "device cpu" in line and "finished 2026-12-03 to 2026-12-04 (UTC)" in line
    one = sources(rows[rows["run_id"] == "a"], "paper")
    assert "1 run at profile `paper`; commit 3b89ea10ab;" in one and "finished 2026-12-03 (UTC)" in one
    with pytest.raises(ValueError, match="provenance"):
        sources(rows.drop(columns="finished"), "cpu")
    with pytest.raises(ValueError, match="rows"):
        sources(rows.iloc[:0], "cpu")
