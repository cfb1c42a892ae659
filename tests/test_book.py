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


def _rows():
    import pandas as pd

    return pd.DataFrame({
        "run_id": ["a", "b"], "accuracy": [0.5, 0.75], "group_counts_colour": ["[" + "0," * 600 + "0]", "[0]"],
        "commit": ["3b89ea10abcdef"] * 2, "device": ["cpu"] * 2, "finished": ["2026-12-03T14:00:00+00:00"] * 2,
    })


def test_rows_csv_is_named_by_content_and_leaves_out_long_json_columns(tmp_path) -> None:
    import pandas as pd

    rows = _rows()
    path, wide = book.rows_csv(rows, tmp_path / "page")
    assert wide == ["group_counts_colour"] and path.name.startswith("rows-") and path.suffix == ".csv"
    back = pd.read_csv(path)
    assert list(back.columns) == ["run_id", "accuracy", "commit", "device", "finished"]
    assert back["accuracy"].tolist() == [0.5, 0.75]
    assert book.rows_csv(rows, tmp_path / "page")[0] == path  # same rows, same file
    assert book.rows_csv(rows.iloc[:1], tmp_path / "page")[0] != path
    with pytest.raises(ValueError, match="at least one row"):
        book.rows_csv(rows.iloc[:0], tmp_path)


def test_source_lines_link_their_rows_only_in_a_book_build(tmp_path, monkeypatch) -> None:
    monkeypatch.delenv(book.BOOK_DATA_ENV, raising=False)
    monkeypatch.delenv(book.PAGE_ENV, raising=False)
    assert book._csv_link(_rows()) == ""
    monkeypatch.setenv(book.BOOK_DATA_ENV, str(tmp_path))
    monkeypatch.setenv(book.PAGE_ENV, "kd_fairness")
    link = book._csv_link(_rows())
    name = next((tmp_path / "kd_fairness").glob("rows-*.csv")).name
    assert f"[The 2 rows as CSV](data/kd_fairness/{name})" in link
    assert "without the column(s) group_counts_colour; `fairdd export` writes them" in link


def test_rerun_box_gives_the_commands_for_this_build() -> None:
    box = book.rerun_html("bias_dd", "bias_dd", "cpu", ["seeds=0,1", "data.train_per_class=50"],
                          options={"colour_severity": 4}, paper_runs=252)
    assert "Rerun this page" in box and "overrides: <code>seeds=0,1, data.train_per_class=50</code>" in box
    assert ("papermill -k python3 --cwd notebooks -p profile cpu -p colour_severity 4 -y "
            "&#x27;overrides: [&quot;seeds=0,1&quot;, &quot;data.train_per_class=50&quot;]&#x27; notebooks/bias_dd.ipynb") in box
    assert "fairdd run bias_dd --profile cpu --set seeds=0,1 data.train_per_class=50" in box
    assert "fairdd list bias_dd --profile cpu" in box and "fairdd export bias_dd --profile cpu --set" in box
    assert "this page is 252 runs" in box
    plain = book.rerun_html("kd_fairness", "kd_fairness", "smoke")
    assert "overrides: <code>none</code>" in plain and "--set" not in plain.split("# the same runs")[0]


def test_run_summary_counts_runs_computed_now_and_runs_read() -> None:
    import time

    import pandas as pd

    started = time.time()
    now = pd.Timestamp(started + 1, unit="s", tz="UTC").isoformat()
    rows = pd.DataFrame({"run_id": ["a", "a", "b", "c"], "device": ["cpu"] * 4,
                         "finished": ["2026-12-03T14:00:00+00:00"] * 2 + [now, now]})
    line = book.run_summary(rows, started, "cpu", what="rows")
    assert line.startswith("4 rows from 3 runs in ") and "computed 2, read 1 from the run store" in line
    assert "profile 'cpu'; runs computed on cpu" in line
    with pytest.raises(ValueError, match="run_summary"):
        book.run_summary(rows.drop(columns="finished"), started, "cpu")


def test_tables_for_readers_drop_the_plain_index_and_show_dashes_and_integers() -> None:
    import numpy as np
    import pandas as pd

    frame = pd.DataFrame({"count": [1.0, 2.0, np.nan], "accuracy": [0.5, np.nan, 1.25], "name": ["x", "y", "z"]})
    out = book.table_html(frame)
    assert "<th></th>" not in out and "<tbody>\n    <tr>\n      <td>1</td>" in out  # no 0…N index
    assert "NaN" not in out and "nan" not in out and out.count("<td>–</td>") == 2
    assert "<td>2</td>" in out and "<td>1.0</td>" not in out  # whole-number floats as integers
    assert "<td>0.50</td>" in out or "<td>0.5</td>" in out
    labelled = book.table_html(frame.set_index("name"))
    assert "<th>x</th>" in labelled  # a labelled index stays
    assert list(frame["count"].isna()) == [False, False, True]  # the caller's frame is not changed
