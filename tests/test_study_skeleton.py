"""The shared study skeleton: cells through the run store, job grouping, cost order, cells computed
together; and the DD studies' synthetic-set helpers (:mod:`fairdd.studies._dd`)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import pandas as pd
import pytest
import torch

from fairdd import results
from fairdd.studies import Study, mean_std
from fairdd.studies import _dd


@dataclass(frozen=True)
class ToyCell:
    size: int
    seed: int


CALLS: list[ToyCell] = []


def toy_rows(cell: ToyCell, root) -> list[dict]:
    CALLS.append(cell)
    return [{"network": i, "value": cell.size * 10 + cell.seed + i / 10} for i in range(2)]


def prepare(cells, root, processes) -> None:
    CALLS.append(("prepare", len(cells)))


TOY = Study(name="toy_study", compute=toy_rows, cost=lambda c: c.size, group=lambda c: c.seed, prepare=prepare)
CELLS = [ToyCell(size, seed) for seed in (0, 1) for size in (1, 3)]


def test_run_computes_each_cell_once_in_cost_order_and_reads_back(tmp_path):
    CALLS.clear()
    rows = TOY.run(CELLS, processes=1, root=tmp_path)
    assert CALLS[0] == ("prepare", 4)
    # Groups by seed run whole, the costlier group first; within a group the cells keep their order.
    assert CALLS[1:] == [ToyCell(1, 0), ToyCell(3, 0), ToyCell(1, 1), ToyCell(3, 1)]
    assert len(rows) == 8 and list(rows["size"]) == [1, 1, 3, 3, 1, 1, 3, 3]
    assert rows["value"].tolist()[:2] == [10.0, 10.1]
    CALLS.clear()
    again = TOY.run(CELLS, processes=1, root=tmp_path)
    assert CALLS == []  # nothing recomputed, prepare not called either
    pd.testing.assert_frame_equal(rows, again)


def test_cost_orders_jobs_without_groups(tmp_path):
    CALLS.clear()
    study = dataclasses.replace(TOY, group=None, prepare=None)
    study.run(CELLS, processes=1, root=tmp_path)
    assert [c.size for c in CALLS] == [3, 3, 1, 1]


def test_worker_processes_give_the_same_rows(tmp_path):
    here = dataclasses.replace(TOY, prepare=None).run(CELLS, processes=1, root=tmp_path / "a")
    there = dataclasses.replace(TOY, prepare=None).run(CELLS, processes=2, root=tmp_path / "b")
    cols = ["run_id", "size", "seed", "network", "value"]
    pd.testing.assert_frame_equal(here[cols], there[cols])


def test_bad_input_is_refused_before_work(tmp_path):
    with pytest.raises(ValueError, match="no cells"):
        TOY.run([], root=tmp_path)
    with pytest.raises(ValueError, match="repeat"):
        TOY.run([ToyCell(1, 0), ToyCell(1, 0)], root=tmp_path)
    with pytest.raises(ValueError, match="name"):
        Study(name="bad/name", compute=toy_rows)
    assert not (tmp_path / "toy_study").exists()


def test_synthetic_sets_round_trip_and_a_missing_one_is_named(tmp_path):
    cell = ToyCell(2, 0)
    with pytest.raises(FileNotFoundError, match=results.run_id(cell)):
        _dd.load_synthetic(TOY, cell, tmp_path)
    images, labels = torch.randn(4, 1, 3, 3), torch.tensor([0, 0, 1, 1])
    _dd.save_synthetic(TOY, cell, images, labels, tmp_path)
    saved = _dd.load_synthetic(TOY, cell, tmp_path)
    assert torch.equal(saved["images"], images) and torch.equal(saved["labels"], labels)
    assert _dd.synthetic_file(TOY, cell, tmp_path).parent == tmp_path / "toy_study" / "synthetic"
    results.save_checkpoint(_dd.synthetic_file(TOY, cell, tmp_path), {"images": images})  # whole, but not a set
    with pytest.raises(ValueError, match="not a synthetic set"):
        _dd.load_synthetic(TOY, cell, tmp_path)
    torch.save({"images": images, "labels": labels}, _dd.synthetic_file(TOY, cell, tmp_path))  # not what was saved
    with pytest.raises(ValueError, match="damaged.*SHA-256"):
        _dd.load_synthetic(TOY, cell, tmp_path)


def test_mean_std_text():
    assert mean_std([0.5, 0.7], scale=100) == "60.0 ± 14.1"
    assert mean_std([0.5], scale=100) == "50.0"
    assert mean_std(pd.Series([1.0, 2.0, 3.0]), digits=2) == "2.00 ± 1.00"
    with pytest.raises(ValueError, match="no values"):
        mean_std([])


def test_progress_goes_to_the_file_named_by_fairdd_progress(tmp_path, monkeypatch):
    log = tmp_path / "progress.log"
    monkeypatch.setenv("FAIRDD_PROGRESS", str(log))
    TOY.run(CELLS, processes=1, root=tmp_path / "store")
    lines = log.read_text().splitlines()
    # One line before the work, then one per finished job (two groups of two cells).
    assert lines[0] == "toy_study: 4 run(s) to compute"
    assert lines[1].startswith("toy_study: 2/4 runs (50%)") and lines[2].startswith("toy_study: 4/4 runs (100%)")
    assert "elapsed" in lines[2] and "left" in lines[2]
    TOY.run(CELLS, processes=1, root=tmp_path / "store")  # nothing to compute: nothing written
    assert log.read_text().splitlines() == lines


def toy_together(cells, root, checkpoint) -> list[list[dict]]:
    CALLS.append(("together", tuple(cells), checkpoint.is_dir()))
    return [[{"network": i, "value": c.size * 10 + c.seed + i / 10} for i in range(2)] for c in cells]


def by_seed(cell: ToyCell):
    """Cells of one seed may be computed together, except size 5 (alone)."""
    return None if cell.size == 5 else ("seed", cell.seed)


def test_together_cells_are_one_compute_together_call_and_each_is_stored_as_its_run(tmp_path):
    CALLS.clear()
    alone = dataclasses.replace(TOY, prepare=None).run(CELLS, processes=1, root=tmp_path / "a")
    CALLS.clear()
    study = dataclasses.replace(TOY, prepare=None, together=by_seed, compute_together=toy_together)
    study.run_cell(CELLS[0], tmp_path / "b")  # one cell alone goes through compute
    assert CALLS == [CELLS[0]]
    CALLS.clear()
    grouped = study.run(CELLS, processes=1, root=tmp_path / "b")
    # Seed 1's job has two unfinished cells (one compute_together call, given an existing
    # checkpoint folder; costlier, so first); seed 0's key has one left (compute).
    assert CALLS == [("together", (CELLS[2], CELLS[3]), True), CELLS[1]]
    skip = ["finished"]
    pd.testing.assert_frame_equal(alone.drop(columns=skip), grouped.drop(columns=skip))
    assert all(study.is_finished(c, tmp_path / "b") for c in CELLS)
    assert not (tmp_path / "b" / "toy_study" / "checkpoints").exists() or not any(
        (tmp_path / "b" / "toy_study" / "checkpoints").iterdir())  # removed on success
    # A cell whose key is None is computed alone, beside the together ones of its job.
    CALLS.clear()
    extra = [ToyCell(5, 0), ToyCell(1, 0), ToyCell(3, 0)]
    study.run(extra, processes=1, root=tmp_path / "c")
    assert CALLS == [("together", (ToyCell(1, 0), ToyCell(3, 0)), True), ToyCell(5, 0)]


def test_compute_together_must_give_rows_for_every_cell_and_a_failure_keeps_its_checkpoint(tmp_path):
    def short(cells, root, checkpoint):
        (checkpoint / "state.pt").write_text("partial")
        return toy_together(cells, root, checkpoint)[:1]

    study = dataclasses.replace(TOY, prepare=None, together=by_seed, compute_together=short)
    with pytest.raises(RuntimeError, match="rows for 1 of 2 cells"):
        study.run(CELLS[2:], processes=1, root=tmp_path)
    assert not any(TOY.is_finished(c, tmp_path) for c in CELLS)
    with TOY.group_checkpoint(CELLS[2:], tmp_path) as folder:
        assert (folder / "state.pt").is_file()  # kept for the next try to resume from


def test_together_needs_its_function_pair_and_one_group_per_key(tmp_path):
    with pytest.raises(ValueError, match="both together and compute_together"):
        Study(name="toy", compute=toy_rows, together=by_seed)
    # Group by size but together by seed: cells of one key in two jobs.
    study = dataclasses.replace(TOY, prepare=None, group=lambda c: c.size, together=by_seed,
                                compute_together=toy_together)
    with pytest.raises(ValueError, match="fall into two worker jobs"):
        study.run(CELLS, processes=1, root=tmp_path)
    assert not (tmp_path / "toy_study").exists()


def test_group_checkpoint_is_kept_when_the_group_fails_and_removed_when_it_finishes(tmp_path):
    with pytest.raises(RuntimeError):
        with TOY.group_checkpoint(CELLS[:2], tmp_path) as folder:
            (folder / "state.pt").write_text("partial")
            raise RuntimeError("killed")
    assert (folder / "state.pt").is_file()  # the next try resumes from it
    with TOY.group_checkpoint(CELLS[:2], tmp_path) as again:
        assert again == folder
    assert not folder.exists()
    with TOY.group_checkpoint(CELLS[2:], tmp_path) as other:
        assert other != folder
