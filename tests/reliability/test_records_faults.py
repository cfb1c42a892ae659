"""Recorded runs under faults: `record` never deletes a record it was not given a replacement for,
`restore` refuses (naming it, with record advice) every record it cannot restore and writes
nothing then, and `verify` never passes on nothing."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from fairdd import records, results

PROFILE = "smoke"


def _run(root: Path, study: str, a: int) -> Path:
    results.run(study, {"a": a}, lambda: [{"seed": 0, "acc": 0.5 + a}, {"seed": 1, "acc": 0.25}], root=root)
    return results.run_dir(study, {"a": a}, root=root)


@pytest.fixture
def store(tmp_path: Path) -> Path:
    """Records of two studies (s1: 3 runs and a synthetic set, s2: 1 run) under tmp/records."""
    source = tmp_path / "source"
    for a in range(3):
        _run(source, "s1", a)
    _run(source, "s2", 7)
    synthetic = source / "s1" / "synthetic" / f"{results.run_id({'a': 0})}.pt"
    results.save_checkpoint(synthetic, {"images": torch.randn(2, 1, 3, 3), "labels": torch.tensor([0, 1])})
    records.record(PROFILE, source=source, root=tmp_path / "records")
    return tmp_path / "records"


def _record_ids(store: Path, study: str) -> set[str]:
    return {p.name for p in records._runs(store / PROFILE / study)}


# ------------------------------------------------------------------------------ record


def test_record_from_a_partial_store_keeps_the_records_it_was_not_given(store: Path, tmp_path: Path) -> None:
    before = {s: _record_ids(store, s) for s in ("s1", "s2")}
    partial = tmp_path / "partial"
    _run(partial, "s1", 0)  # one of s1's three runs, none of s2's
    _run(partial, "s1", 5)  # and a new one
    index = records.record(PROFILE, source=partial, root=store)
    assert _record_ids(store, "s1") == before["s1"] | {results.run_id({"a": 5})}
    assert _record_ids(store, "s2") == before["s2"]
    written = json.loads((store / PROFILE / "INDEX.json").read_text())
    assert written["studies"]["s1"]["runs"] == 4 and written["studies"]["s2"]["runs"] == 1
    assert index["studies"]["s1"]["runs"] == 4
    assert (store / PROFILE / "s1" / "synthetic" / f"{results.run_id({'a': 0})}.pt").is_file()


def test_record_prune_removes_and_lists_what_the_source_lacks(store: Path, tmp_path: Path, capsys) -> None:
    partial = tmp_path / "partial"
    _run(partial, "s1", 0)
    removed = {f"s1/{results.run_id({'a': a})}" for a in (1, 2)} | {f"s2/{results.run_id({'a': 7})}"}
    assert records.main(["record", "--profile", PROFILE, "--from", str(partial), "--root", str(store), "--prune"]) == 0
    out = capsys.readouterr().out
    for name in removed:
        assert f"pruned {name}" in out
    assert _record_ids(store, "s1") == {results.run_id({"a": 0})}
    assert not (store / PROFILE / "s2").exists()
    assert not (store / PROFILE / "s1" / "synthetic" / f"{results.run_id({'a': 1})}.pt").exists()


def test_record_without_prune_says_what_it_kept(store: Path, tmp_path: Path, capsys) -> None:
    partial = tmp_path / "partial"
    _run(partial, "s1", 0)
    assert records.main(["record", "--profile", PROFILE, "--from", str(partial), "--root", str(store)]) == 0
    out = capsys.readouterr().out
    assert "kept" in out and "--prune" in out


# ----------------------------------------------------------------------------- restore


def _one_record(store: Path) -> Path:
    return store / PROFILE / "s1" / results.run_id({"a": 1})


@pytest.mark.parametrize("damage", ["no_done", "folder_is_a_file", "study_is_a_file", "deleted", "rows_off_by_one"])
def test_restore_refuses_a_record_it_cannot_restore_and_writes_nothing(store: Path, tmp_path: Path, damage: str) -> None:
    run = _one_record(store)
    if damage == "no_done":
        (run / "DONE").unlink()
        match = f"{run}.*DONE"
    elif damage == "folder_is_a_file":
        shutil.rmtree(run)
        run.write_text("oops")
        match = f"{run}.*not a folder"
    elif damage == "study_is_a_file":
        shutil.rmtree(run.parent)
        run.parent.write_text("oops")
        match = f"{run.parent}.*not a folder"
    elif damage == "deleted":
        shutil.rmtree(run)
        match = "INDEX.json.*s1.*3 runs.*2"
    else:
        done = json.loads((run / "DONE").read_text())
        done["rows"] += 1
        (run / "DONE").write_text(json.dumps(done))
        match = f"{run}.*rows"
    target = tmp_path / "results"
    with pytest.raises(ValueError, match=match) as info:
        records.restore(PROFILE, root=target, records=store)
    assert "git checkout" in str(info.value) and "make record" in str(info.value)
    assert "delete" not in str(info.value).lower()
    assert not target.exists()


def test_a_record_whose_manifest_row_count_is_off_is_not_finished(store: Path, tmp_path: Path) -> None:
    target = tmp_path / "results"
    records.restore(PROFILE, root=target, records=store)
    run = target / "s1" / results.run_id({"a": 1})
    done = json.loads((run / "DONE").read_text())
    done["rows"] += 1
    (run / "DONE").write_text(json.dumps(done))
    assert not results.is_finished("s1", {"a": 1}, root=target)  # what `fairdd status` reports


def test_restore_replaces_a_corrupt_store_copy_with_the_record(store: Path, tmp_path: Path) -> None:
    target = tmp_path / "results"
    records.restore(PROFILE, root=target, records=store)
    copy = target / "s1" / results.run_id({"a": 1})
    (copy / "rows.csv").write_text((copy / "rows.csv").read_text().replace("0.25", "0.75"))
    assert not results.is_finished("s1", {"a": 1}, root=target)
    with pytest.warns(RuntimeWarning, match=f"{copy}.*corrupt.*replaced by the record"):
        copied = records.restore(PROFILE, root=target, records=store)
    assert copied == {"s1": 1, "s2": 0}
    assert results.is_finished("s1", {"a": 1}, root=target)


def test_restore_refuses_a_damaged_synthetic_set_before_copying_any_run(store: Path, tmp_path: Path) -> None:
    path = store / PROFILE / "s1" / "synthetic" / f"{results.run_id({'a': 0})}.pt"
    path.write_bytes(path.read_bytes()[:50])
    target = tmp_path / "results"
    with pytest.raises(ValueError, match=f"{path}") as info:
        records.restore(PROFILE, root=target, records=store)
    assert "git checkout" in str(info.value) and "delete it" not in str(info.value)
    assert not target.exists()


def test_restore_into_a_file_is_a_clear_error(store: Path, tmp_path: Path) -> None:
    target = tmp_path / "file"
    target.write_text("x")
    with pytest.raises(NotADirectoryError, match=f"{target}.*not a folder"):
        records.restore(PROFILE, root=target, records=store)
    assert records.main(["restore", "--profile", PROFILE, "--records", str(store), "--root", str(target)]) == 2


def test_restore_into_an_unwritable_store_is_a_clear_error(store: Path, tmp_path: Path, monkeypatch) -> None:
    target = tmp_path / "results"
    target.mkdir()

    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(records.tempfile, "mkstemp", refuse)
    with pytest.raises(PermissionError, match=f"{target}.*not writable"):
        records.restore(PROFILE, root=target, records=store)
    assert list(target.iterdir()) == []


# ------------------------------------------------------------------------------ verify


def test_verify_fails_when_it_compares_nothing(tmp_path: Path, capsys) -> None:
    """Records whose every DONE was removed: nothing to compare is a failure, not a pass."""
    store = tmp_path / "records"
    run = store / PROFILE / "embedding_dd" / "0123456789ab"
    run.mkdir(parents=True)
    (run / "rows.csv").write_text("run_id\n0123456789ab\n")
    with pytest.raises(ValueError, match=f"{run}.*DONE"):
        records.verify(PROFILE, records=store, processes=1)
    assert records.main(["verify", "--profile", PROFILE, "--records", str(store)]) != 0
    empty = tmp_path / "empty"
    (empty / PROFILE / "embedding_dd").mkdir(parents=True)
    assert records.main(["verify", "--profile", PROFILE, "--records", str(empty)]) != 0
    assert "passed" not in capsys.readouterr().out


def test_verify_checks_the_records_before_recomputing(tmp_path: Path, monkeypatch) -> None:
    from fairdd.studies import embedding

    config = embedding.EmbeddingStudyConfig.for_profile(PROFILE)
    cell = config.cells()[0]
    source = tmp_path / "source"
    results.run("embedding_dd", cell, lambda: [{"seed": 0, "accuracy": 0.5}], root=source)
    store = tmp_path / "records"
    records.record(PROFILE, source=source, root=store)
    run = store / PROFILE / "embedding_dd" / results.run_id(cell)
    (run / "rows.csv").write_text((run / "rows.csv").read_text().replace("0.5", "0.6"))

    def no_work(*args, **kwargs):
        raise AssertionError("recomputed before checking the records")

    monkeypatch.setattr(type(embedding.STUDY), "run", no_work)
    with pytest.raises(ValueError, match=f"{run}.*git checkout") as info:
        records.verify(PROFILE, records=store, processes=1)
    assert "force=True" not in str(info.value)


def test_restore_replaces_a_damaged_synthetic_set_of_the_store(store: Path, tmp_path: Path) -> None:
    target = tmp_path / "results"
    records.restore(PROFILE, root=target, records=store)
    path = target / "s1" / "synthetic" / f"{results.run_id({'a': 0})}.pt"
    good = results.load_checkpoint(path)
    raw = bytearray(path.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    path.write_bytes(bytes(raw))
    with pytest.warns(RuntimeWarning, match=f"{path}.*damaged"):
        records.restore(PROFILE, root=target, records=store)
    assert torch.equal(results.load_checkpoint(path)["images"], good["images"])
