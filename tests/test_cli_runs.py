"""The ``fairdd`` command's browsing and checking parts: ``runs``, ``export``, ``run --dry-run``,
``status``'s key order, and the checks that fail before any work in one line (missing data, Ray
without a cluster, unknown nested keys, a study name after ``--set``).

The toy study of :mod:`tests.test_cli` (``toy_sweep``, registered by its ``toy`` fixture) computes
in milliseconds; the real studies are only configured here (their cells built, nothing trained).
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest

from fairdd import cli, results, sweep
from fairdd.data import StudyData
from tests.test_cli import ToySweepConfig, attempts, toy  # noqa: F401 - the fixture

TOY = ["toy_sweep", "--profile", "smoke"]


def _run_toy(root: Path, size: int = 3) -> None:
    assert cli.main(["run", *TOY, "--set", f"size={size}", "--root", str(root), "--processes", "1"]) == 0


def _one_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


# ------------------------------------------------------------------------- --set parsing


def test_a_study_name_after_set_is_the_study_not_a_value(toy, tmp_path, capsys):
    assert cli.main(["status", "--set", "size=2", "kill=1", "toy_sweep", "--profile", "smoke", "--root", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "toy_sweep --profile smoke: 0/2 runs finished" in out
    # The classwise study, as the issue ran it: --set before the study name.
    assert cli.main(["status", "--set", "ipcs=1", "classwise_dd", "--profile", "smoke", "--root", str(tmp_path)]) == 0
    assert "classwise_dd --profile smoke:" in capsys.readouterr().out
    # The word right after --set is still its value (so a forgotten '=' is reported, not taken as a study).
    assert cli.main(["status", *TOY, "--set", "seeds", "--root", str(tmp_path)]) == 2
    assert "expected key=value" in capsys.readouterr().err
    assert cli._expand_set(["run", "s", "--set", "a=1", "b=2", "--set", "c=3", "x"]) == [
        "run", "s", "--set=a=1", "--set=b=2", "--set=c=3", "x"]
    assert list(tmp_path.iterdir()) == []


def test_unknown_nested_keys_fail_in_one_line_before_work(tmp_path, capsys):
    assert cli.main(["run", "kd_fairness", "--profile", "smoke", "--set", "kd.tempreature=3", "--root", str(tmp_path)]) == 2
    line = _one_line(capsys.readouterr().err)
    assert "no key 'kd.tempreature'" in line and "fairdd list kd_fairness" in line
    assert cli.main(["run", "embedding_dd", "--profile", "smoke", "--set", "dd.hiden=8", "--root", str(tmp_path)]) == 2
    assert "Did you mean 'dd.hidden'?" in _one_line(capsys.readouterr().err)
    assert list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------------------- key order


def test_order_keys_puts_the_grid_axes_first_then_what_follows_then_groups():
    table = [
        {"data.source": s, "data.size": {"a": 10, "b": 20}[s], "role": r, "kd.temperature": t, "seed": seed,
         "evaluations": [{"epochs": 1 if s == "a" else 2}], "lr": 0.1, **({"dd.size": 3} if r == "ds" else {})}
        for s in ("a", "b") for r, t in (("teacher", 1.0), ("nds", 1.0), ("ds", 4.0), ("ds", 7.0)) for seed in (0, 1)
    ]
    free, derived, constant = cli.order_keys(table)
    assert free == ["data.source", "role", "kd.temperature", "seed"]
    assert derived == ["data.size", "dd.size", "evaluations"]  # dd.size is unset where role is set: role stays free
    assert constant == ["lr"]


def test_status_shows_the_varying_keys_first_and_cuts_no_line(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "160")  # the grid's width
    assert cli.main(["status", "kd_fairness", "--profile", "smoke", "--root", str(tmp_path)]) == 0
    out = capsys.readouterr().out.splitlines()
    header = out[1].split()
    assert header[:2] == ["run_id", "state"]
    assert {"role", "kd.temperature", "seed", "data.source"} <= set(header[2:7])
    assert all(len(line) <= 160 for line in out[1:-2])  # the grid fits; nothing is cut mid-line
    assert not any(line.rstrip().endswith("...") for line in out)
    assert cli.main(["status", "kd_fairness", "--profile", "smoke", "--root", str(tmp_path), "--format", "csv"]) == 0
    frame = pd.read_csv(__import__("io").StringIO(capsys.readouterr().out))
    cells = cli.build_config("kd_fairness", "smoke")[3]
    assert list(frame.columns[:3]) == ["run_id", "state", "data.source"] and len(frame) == len(cells)
    assert list(frame["run_id"]) == [results.run_id(c) for c in cells]
    assert "kd.temperature" in frame.columns and (frame["state"] == "to do").all()


def test_grid_keeps_every_free_key_and_names_the_ones_left_out():
    table = [{"a": a, "b": b, "long.derived.key": f"value-{a}", "g": [b]} for a in (0, 1) for b in (0, 1)]
    free, derived, _ = cli.order_keys(table)
    assert free == ["a", "b"] and derived == ["long.derived.key", "g"]
    lines = cli._grid(["r0", "r1", "r2", "r3"], [], table, free, derived, width=20)
    assert lines[0].split() == ["run_id", "a", "b"]
    assert lines[-1].startswith("(2 more varying keys") and "long.derived.key, g" in lines[-1]


# ------------------------------------------------------------------------------- runs


def test_runs_lists_stored_runs_with_provenance_and_filters(toy, tmp_path, capsys):
    _run_toy(tmp_path)
    capsys.readouterr()
    assert cli.main(["runs", "toy_sweep", "--root", str(tmp_path)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("toy_sweep: 3 of 3 stored runs")
    assert out[1].split()[:2] == ["run_id", "index"] and "commit" in out[1] and "wall" in out[1]
    ids = {results.run_id(c) for c in ToySweepConfig(size=3).cells()}
    assert {line.split()[0] for line in out[2:5]} == ids
    assert cli.main(["runs", "toy_sweep", "--root", str(tmp_path), "--set", "index=0,2", "--format", "csv"]) == 0
    frame = pd.read_csv(__import__("io").StringIO(capsys.readouterr().out))
    assert sorted(frame["index"]) == [0, 2]
    assert list(frame.columns) == ["run_id", "index", "kill", *results.RUN_LIST_PROVENANCE]
    stored = json.loads((tmp_path / "toy_sweep" / frame["run_id"][0] / "provenance.json").read_text())
    assert frame["wall_s"][0] == stored["wall_s"] and frame["commit"][0] == stored["commit"]
    assert cli.main(["runs", "toy_sweep", "--root", str(tmp_path), "--set", "kill=true"]) == 0
    assert "0 of 3 stored runs, matching kill=true" in capsys.readouterr().out
    assert cli.main(["runs", "toy_sweep", "--root", str(tmp_path), "--set", "indx=1"]) == 2
    assert "Did you mean 'index'?" in _one_line(capsys.readouterr().err)
    _run_toy(tmp_path, size=5)  # index 4 is no cell of the smoke profile (size 4)
    capsys.readouterr()
    assert cli.main(["runs", "toy_sweep", "--root", str(tmp_path), "--profile", "smoke"]) == 0
    assert "toy_sweep: 4 of 5 stored runs, cells of --profile smoke" in capsys.readouterr().out


def test_results_runs_skips_a_corrupt_run_with_a_warning(toy, tmp_path):
    _run_toy(tmp_path, size=2)
    first = sorted(p for p in (tmp_path / "toy_sweep").iterdir() if (p / "DONE").is_file())[0]
    (first / "rows.csv").write_text("run_id\nbad\n")
    with pytest.warns(RuntimeWarning, match="skips a run"):
        frame = results.runs("toy_sweep", root=tmp_path)
    assert len(frame) == 1 and first.name not in set(frame["run_id"])
    assert results.runs("nothing_here", root=tmp_path).empty


# ----------------------------------------------------------------------------- export


def test_export_writes_the_configs_rows_or_refuses_when_runs_are_missing(toy, tmp_path, capsys):
    _run_toy(tmp_path, size=2)
    capsys.readouterr()
    target = tmp_path / "rows.csv"
    argv = ["export", *TOY, "--root", str(tmp_path), "-o", str(target)]
    assert cli.main([*argv, "--set", "size=3"]) == 2  # one of three runs is not computed
    line = _one_line(capsys.readouterr().err)
    assert "1 of the 3 runs of toy_sweep" in line and "nothing written" in line and "--partial" in line
    assert not target.exists()
    assert cli.main([*argv, "--set", "size=2"]) == 0
    got = pd.read_csv(target)
    want = results.load("toy_sweep", root=tmp_path)
    assert len(got) == 4 and set(got["run_id"]) == set(want["run_id"])
    assert got["value"].tolist() == pytest.approx(
        want.set_index(["run_id", "network"]).loc[list(zip(got["run_id"], got["network"])), "value"].tolist())
    assert cli.main([*argv, "--set", "size=3", "--partial"]) == 0
    assert "1 runs not finished, left out" in capsys.readouterr().err and len(pd.read_csv(target)) == 4
    assert cli.main(["export", *TOY, "--root", str(tmp_path), "--set", "size=1"]) == 0  # -o - : stdout
    assert pd.read_csv(__import__("io").StringIO(capsys.readouterr().out))["index"].tolist() == [0, 0]


# ---------------------------------------------------------------------------- dry run


def test_dry_run_prints_the_grid_and_computes_nothing(toy, tmp_path, capsys):
    _run_toy(tmp_path, size=1)
    capsys.readouterr()
    assert cli.main(["run", *TOY, "--set", "size=3", "--root", str(tmp_path), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "3 runs, 1 finished, 2 to compute" in out and "dry run: nothing is computed" in out
    assert out.count("to do") == 2 and out.count("finished ") >= 1
    assert "no time estimate: study 'toy_sweep' declares no work" in out
    assert len(attempts(tmp_path)) == 1  # only the run computed before


def test_cost_estimate_prices_the_declared_work_with_the_given_rates(tmp_path):
    """Every rate at 1 s a step: the estimate is the cells' steps in hours, as the projection counts them."""
    from fairdd.cli import build_config

    key, study, _, cells = build_config("embedding_dd", "smoke", ["sources=adult", "seeds=0", "sizes=1",
                                                                  "sweep_seeds=0", "ablation_seeds=", "text_seeds="])
    bare = sweep.cost_estimate(key, cells, rates=tmp_path / "absent.json")
    assert bare["cells"] == len(cells) and bare["items"] > 0 and bare["sample_passes"] > 0
    assert "no measured rates" in bare["why"]
    projection = sys.modules["_fairdd_projection"]
    items = projection.declared_items(key, [study.work(c) for c in cells])
    rows = [{"key": i.rate_key, "path": path, "batch": i.batch, "seconds_per_step": 1.0, "device": "cuda:0"}
            for i in items for path in ("sequential", "batched")]
    rates = tmp_path / "projection.json"
    rates.write_text(json.dumps({"provenance": {"created_utc": "2026-01-02T00:00:00+00:00", "commit": "abcdef0123"},
                                 "tables": {"rates": rows}}))
    est = sweep.cost_estimate(key, cells, rates=rates)
    assert est["hours_sequential"] == pytest.approx(sum(i.steps for i in items) / 3600)
    assert est["unmeasured_items"] == 0 and est["device"] == "cuda:0" and est["measured"] == "2026-01-02"
    half = sweep.cost_estimate(key, cells[: len(cells) // 2], rates=rates)
    assert 0 < half["hours_sequential"] < est["hours_sequential"]


# ------------------------------------------------------------------- before any work


def test_missing_data_fails_before_any_run_in_one_line(tmp_path, capsys, monkeypatch):
    empty = tmp_path / "data"
    empty.mkdir()
    monkeypatch.setenv("FAIRDD_DATA", str(empty))
    root = tmp_path / "store"
    argv = ["run", "classwise_dd", "--profile", "smoke", "--set", "data.source=cifar10", "--root", str(root)]
    assert cli.main(argv) == 2
    line = _one_line(capsys.readouterr().err)
    assert "data missing, nothing computed: cifar10 (read by" in line and "cifar-10" in line
    assert not root.exists()  # not even the store's folder
    assert cli.main([*argv, "--dry-run"]) == 2  # the grid, then the same one line
    captured = capsys.readouterr()
    assert "to compute" in captured.out and "data missing" in _one_line(captured.err)
    # Generated data are not looked for; finished runs read no data.
    sweep.check_data([StudyData("trifeature", samples_per_combination=1, image_size=16)], data_root=empty)
    sweep.check_data([])


def test_check_data_names_each_missing_source_and_its_runs(tmp_path):
    @dataclass(frozen=True)
    class Cell:
        data: StudyData
        others: tuple[StudyData, ...] = ()

    cells = [Cell(StudyData("cifar10")), Cell(StudyData("adult"), (StudyData("svhn"),)), Cell(StudyData("cifar10"))]
    with pytest.raises(sweep.MissingDataError) as caught:
        sweep.check_data(cells, data_root=tmp_path)
    text = str(caught.value)
    assert "cifar10 (read by 2 of the 3 runs to compute)" in text and "svhn (read by 1 of the 3" in text
    assert "adult (read by 1" in text and "\n" not in text


def test_ray_auto_without_a_cluster_fails_in_one_line(toy, tmp_path, capsys, monkeypatch):
    """``ray.init(address="auto")`` with no cluster raises Ray's ConnectionError (its text below,
    from Ray 2.60); the command says what to do in one line and computes nothing."""

    class NoCluster:
        @staticmethod
        def is_initialized() -> bool:
            return False

        @staticmethod
        def init(**options):
            raise ConnectionError("Could not find any running Ray instance. Please specify the one to connect to "
                                  "by setting `--address` flag or `RAY_ADDRESS` environment variable.")

    monkeypatch.setitem(sys.modules, "ray", NoCluster)
    assert cli.main(["run", *TOY, "--root", str(tmp_path), "--ray", "auto"]) == 2
    line = _one_line(capsys.readouterr().err)
    assert "--ray auto: no running Ray cluster was found" in line and "ray start --head" in line
    assert "nothing computed" in line
    assert not (tmp_path / "attempts").exists() and not (tmp_path / "toy_sweep").exists()


def test_a_tuple_of_configs_takes_nested_keys_for_every_member():
    """``data`` (data specs) and ``protocols`` ((name, KDConfig) pairs) of the KD study: a nested
    key sets the field in every member; the keys are listed with the members' values; a bad
    nested key or value is refused as for any other key."""
    _, _, base, _ = cli.build_config("kd_fairness", "smoke")
    _, _, config, cells = cli.build_config("kd_fairness", "smoke", ["protocols.epochs=3", "data.data_seed=1",
                                                                    "protocols.teacher.width=16"])
    assert [p[0] for p in config.protocols] == [p[0] for p in base.protocols]
    assert all(p[1].epochs == 3 and p[1].teacher.width == 16 for p in config.protocols)
    assert all(d.data_seed == 1 for d in config.data) and {c.kd.epochs for c in cells} == {3}
    keys = cli.settable_keys(base)
    assert keys["protocols.epochs"][1] == base.protocols[0][1].epochs  # the members agree
    assert keys["data.source"][1] == tuple(d.source for d in base.data)  # they differ: each member's
    for assignment, message in (("protocols.epoch=3", "Did you mean 'protocols.epochs'?"),
                                ("protocols.epochs=two", "protocols.epochs='two': expected an integer"),
                                ("data=adult", "data is a group of settings")):
        with pytest.raises(cli.CLIError, match=message):
            cli.build_config("kd_fairness", "smoke", [assignment])


def test_what_a_for_profile_option_changes_is_said_not_silent(capsys):
    """The class-wise study's ``num_classes=100`` at smoke moves to another data set; the command
    says so (stderr), naming each key it changed, and leaves out the keys given with --set."""
    _, _, config, _ = cli.build_config("classwise_dd", "smoke", ["num_classes=100"])
    base = cli.build_config("classwise_dd", "smoke")[2]
    err = capsys.readouterr().err
    assert "classwise_dd --profile smoke: num_classes=100 also changes" in err
    if config.data.source != base.data.source:
        assert f"data.source {base.data.source} -> {config.data.source}" in err
    cli.build_config("classwise_dd", "smoke", ["num_classes=100", "data.source=cifar100"])
    assert "data.source" not in capsys.readouterr().err
    cli.build_config("classwise_dd", "smoke", ["ipcs=1"])  # no for_profile option: nothing to say
    assert capsys.readouterr().err == ""
