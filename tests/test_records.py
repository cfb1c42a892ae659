"""Tests for recorded runs (fairdd.records): record, restore, verify — and verify failing when a
recorded row is altered, when a record is damaged, and when its config is no longer the book's."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import torch

from fairdd import records, results
from fairdd.studies import _dd, embedding

PROFILE = "smoke"


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The embedding study's smoke runs computed into a results root, then recorded."""
    base = tmp_path_factory.mktemp("records")
    source, store = base / "results", base / "records"
    config = embedding.EmbeddingStudyConfig.for_profile(PROFILE)
    embedding.STUDY.run(config.cells(), processes=1, root=source)
    # An artefact beside the runs (as the bias study keeps its probe weights) and a synthetic set.
    (source / "embedding_dd" / "weights").mkdir()
    (source / "embedding_dd" / "weights" / "w.bin").write_bytes(b"\x00\x01")
    cell = config.cells()[0]
    _dd.save_synthetic(embedding.STUDY, cell, torch.randn(3, 1, 4, 4), torch.tensor([0, 1, 2]), source)
    (source / "embedding_dd" / "checkpoints" / "junk").mkdir(parents=True)
    index = records.record(PROFILE, source=source, root=store)
    assert index["studies"]["embedding_dd"]["runs"] == len(config.cells())
    return source, store


def _copy(store: Path, tmp_path: Path) -> Path:
    import shutil

    out = tmp_path / "records"
    shutil.copytree(store, out)
    return out


def _alter_row(run: Path, column: str) -> None:
    """Change one value of a recorded run and re-seal its manifest (a deliberate edit, not damage)."""
    table = pd.read_csv(run / "rows.csv")
    table.loc[0, column] = float(table.loc[0, column]) + 0.125
    (run / "rows.csv").write_text(table.to_csv(index=False))
    finished = json.loads((run / "DONE").read_text())["finished"]
    (run / "DONE").write_text(results._manifest(run, table, finished))


def test_record_keeps_runs_and_artefacts_not_checkpoints(recorded: tuple[Path, Path]) -> None:
    _, store = recorded
    study = store / PROFILE / "embedding_dd"
    assert (study / "weights" / "w.bin").read_bytes() == b"\x00\x01"
    assert not (study / "checkpoints").exists()
    synthetic = next((study / "synthetic").glob("*.pt"))
    assert torch.load(synthetic, weights_only=True)["images_u8"].dtype == torch.uint8
    index = json.loads((store / PROFILE / "INDEX.json").read_text())
    assert index["profile"] == PROFILE and index["bytes"] > 0


def test_restore_gives_the_same_rows_and_skips_what_is_there(recorded: tuple[Path, Path], tmp_path: Path) -> None:
    source, store = recorded
    target = tmp_path / "results"
    copied = records.restore(PROFILE, root=target, records=store)
    assert copied["embedding_dd"] == len(list(records._runs(store / PROFILE / "embedding_dd")))
    pd.testing.assert_frame_equal(results.load("embedding_dd", root=target), results.load("embedding_dd", root=source))
    synthetic = next((target / "embedding_dd" / "synthetic").glob("*.pt"))
    restored = torch.load(synthetic, weights_only=True)
    original = torch.load(source / "embedding_dd" / "synthetic" / synthetic.name, weights_only=True)
    assert restored["images"].dtype == torch.float32 and torch.equal(restored["labels"], original["labels"])
    step = float(original["images"].max() - original["images"].min()) / 255
    assert float((restored["images"] - original["images"]).abs().max()) <= step / 2 + 1e-6
    assert records.restore(PROFILE, root=target, records=store) == {"embedding_dd": 0}
    assert records.restore("paper", root=target, records=store) == {}


def test_restore_refuses_a_damaged_record_before_copying(recorded: tuple[Path, Path], tmp_path: Path) -> None:
    _, store = recorded
    store = _copy(store, tmp_path)
    run = records._runs(store / PROFILE / "embedding_dd")[-1]
    (run / "rows.csv").write_text((run / "rows.csv").read_text().replace("0.", "1.", 1))
    with pytest.raises(ValueError, match=run.name):
        records.restore(PROFILE, root=tmp_path / "results", records=store)
    assert not (tmp_path / "results").exists()


def test_verify_passes_on_the_records_and_fails_on_an_altered_row(recorded: tuple[Path, Path], tmp_path: Path) -> None:
    _, store = recorded
    assert records.verify(PROFILE, records=store, processes=1) == []
    altered = _copy(store, tmp_path)
    # Alter every run's accuracy: whichever run the sample picks, verify must see it.
    for run in records._runs(altered / PROFILE / "embedding_dd"):
        _alter_row(run, "accuracy")
    mismatches = records.verify(PROFILE, records=altered, processes=1)
    assert mismatches and {m.column for m in mismatches} == {"accuracy"}
    assert "recorded" in mismatches[0].detail and "recomputed" in mismatches[0].detail


def test_verify_fails_on_a_record_whose_config_is_not_the_books(recorded: tuple[Path, Path], tmp_path: Path) -> None:
    _, store = recorded
    store = _copy(store, tmp_path)
    stale = store / PROFILE / "embedding_dd" / "0123456789ab"
    (stale / "x").parent.mkdir(parents=True)
    (stale / "DONE").write_text("{}")
    found, unknown = records._candidates("embedding_dd", PROFILE, store / PROFILE)
    assert unknown == ["0123456789ab"] and found
    mismatches = records.verify(PROFILE, records=store, processes=1)
    assert [(m.run_id, m.column) for m in mismatches] == [("0123456789ab", "<config>")]


def test_sample_covers_every_method_and_every_study_at_least_cost() -> None:
    c = [("a", "dm", 5.0, 1), ("a", "dm", 1.0, 2), ("a", "mtt", 9.0, 3), ("b", "dm", 0.5, 4), ("c", "kd", 3.0, 5),
         ("b", "mtt", 2.0, 6), ("a", "random", 7.0, 7)]
    chosen = records._sample(c, per_study=False)
    # dm once (b, 0.5 s), mtt once (b, 2 s), kd (c), random (a); study a is covered by random.
    assert sorted(x[3] for x in chosen) == [4, 5, 6, 7]
    per = records._sample(c, per_study=True)
    assert {(x[0], x[1]) for x in per} == {("a", "dm"), ("a", "mtt"), ("b", "dm"), ("c", "kd"), ("b", "mtt"), ("a", "random")}


def test_compare_rows_skips_timing_and_compares_the_rest() -> None:
    a = pd.DataFrame({"run_id": ["r"], "accuracy": [0.5], "train_time_s": [1.0], "label": ["x"], "commit": ["c1"]})
    b = a.assign(train_time_s=[9.0], commit=["c2"])
    assert records.compare_rows(a, b) == []
    assert [c for c, _ in records.compare_rows(a, b.assign(accuracy=[0.5 + 1e-9]))] == ["accuracy"]
    assert records.compare_rows(a, b.assign(accuracy=[0.5 + 1e-9]), atol=1e-6) == []
    assert [c for c, _ in records.compare_rows(a, b.assign(label=["y"]))] == ["label"]
    assert records.compare_rows(a, b.drop(columns="label"))[0][0] == "<columns>"
    nan = a.assign(accuracy=[float("nan")])
    assert records.compare_rows(nan, nan) == []


def test_bad_input_is_named() -> None:
    with pytest.raises(ValueError, match="profile"):
        records.restore("gpu")
    with pytest.raises(FileNotFoundError, match="no results folder"):
        records.record("cpu", source="/nonexistent/fairdd")
    with pytest.raises(ValueError, match="study='nope'"):
        records.verify("smoke", studies=["nope"], records=Path(__file__).parent)


def test_compare_rows_relative_tolerance() -> None:
    a = pd.DataFrame({"loss": [20.0], "accuracy": [0.5]})
    assert records.compare_rows(a, a.assign(loss=[20.9]), rtol=0.05) == []
    assert [c for c, _ in records.compare_rows(a, a.assign(loss=[20.9]), rtol=0.01)] == ["loss"]
    with pytest.raises(ValueError, match="rtol"):
        records.compare_rows(a, a, rtol=-1.0)


def _recorded_on(run: Path, capability: str | None) -> None:
    """Say in a record's provenance which CPU kernels made it, and re-seal its manifest."""
    provenance = json.loads((run / "provenance.json").read_text())
    provenance["cpu_capability"] = capability
    (run / "provenance.json").write_text(json.dumps(provenance))
    finished = json.loads((run / "DONE").read_text())["finished"]
    (run / "DONE").write_text(results._manifest(run, pd.read_csv(run / "rows.csv"), finished))


def test_verify_is_bit_exact_on_the_same_kernels_and_within_the_stated_tolerance_on_others(
    recorded: tuple[Path, Path], tmp_path: Path
) -> None:
    _, store = recorded
    runs = records._runs(store / PROFILE / "embedding_dd")
    assert {json.loads((r / "provenance.json").read_text())["cpu_capability"] for r in runs} == {results.cpu_capability()}
    # A change of 0.125: a mismatch on the same kernels (the test above), within tolerance on others ...
    small = _copy(store, tmp_path / "small")
    for run in records._runs(small / PROFILE / "embedding_dd"):
        _alter_row(run, "accuracy")
        _recorded_on(run, "SOME_OTHER_KERNELS")
    log = tmp_path / "log.txt"
    with log.open("w") as stream:
        assert records.verify(PROFILE, records=small, processes=1, log=stream) == []
    assert "recorded on CPU kernels SOME_OTHER_KERNELS" in log.read_text() and "not bit for bit" in log.read_text()
    # ... but a change beyond it fails there too, and so does a record that does not say its kernels.
    large = _copy(store, tmp_path / "large")
    for run in records._runs(large / PROFILE / "embedding_dd"):
        for _ in range(3):
            _alter_row(run, "accuracy")
        _recorded_on(run, None)
    with (tmp_path / "log2.txt").open("w") as stream:
        mismatches = records.verify(PROFILE, records=large, processes=1, log=stream)
    assert mismatches and {m.column for m in mismatches} == {"accuracy"}


def test_kd_teachers_are_recorded_so_a_new_temperature_trains_students_only(tmp_path: Path, monkeypatch) -> None:
    """Extending a restored KD sweep by one temperature trains the new students from the recorded
    teachers (the ones the recorded students learnt from), and no teacher."""
    import dataclasses

    from fairdd import kd as kd_lib
    from fairdd.studies import kd

    config = kd.KDStudyConfig.for_profile("smoke", data=(kd.study_data_spec("compas", 60, 30),), temperatures=(1.0,),
                                          seeds=(0, 1))
    source, store, target = tmp_path / "results", tmp_path / "records", tmp_path / "restored"
    kd.STUDY.run(config.cells(), processes=1, root=source)
    index = records.record(PROFILE, source=source, root=store)
    assert index["cached_networks"]["files"] == 2  # one teacher per seed
    records.restore(PROFILE, root=target, records=store)
    assert len(list((target / "cache" / "kd_teachers").glob("*/teacher.pt"))) == 2
    trained = []
    fit = kd_lib.fit
    monkeypatch.setattr(kd_lib, "fit", lambda model, *a, **k: trained.append(type(model).__name__) or fit(model, *a, **k))
    wider = dataclasses.replace(config, temperatures=(1.0, 3.0))
    rows = kd.STUDY.run(wider.cells(), processes=1, root=target)
    assert len(trained) == 2 and len(rows) == len(wider.cells())  # the two new students, no teacher
    teacher_rows = rows[rows["role"] == "teacher"]
    assert set(teacher_rows["run_id"]) <= set(results.load("kd_fairness", root=source)["run_id"])


def test_a_damaged_recorded_teacher_is_refused_before_anything_is_written(tmp_path: Path) -> None:
    from fairdd.studies import kd

    config = kd.KDStudyConfig.for_profile("smoke", data=(kd.study_data_spec("compas", 60, 30),), temperatures=(1.0,),
                                          seeds=(0, 1))
    source, store, target = tmp_path / "results", tmp_path / "records", tmp_path / "restored"
    kd.STUDY.run(config.cells(), processes=1, root=source)
    records.record(PROFILE, source=source, root=store)
    teacher = next((store / PROFILE / ".cache" / "kd_teachers").glob("*/teacher.pt"))
    teacher.write_bytes(teacher.read_bytes()[:-3] + b"xyz")
    with pytest.raises(ValueError, match="damaged"):
        records.restore(PROFILE, root=target, records=store)
    assert not target.exists() or not any(target.iterdir())
