"""benchmarks/_results.py: the benchmarks' results files (round trip, provenance, atomic writes)."""

import importlib.util
import json
import math
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

_PATH = Path(__file__).resolve().parent.parent / "benchmarks" / "_results.py"
_spec = importlib.util.spec_from_file_location("bench_results_under_test", _PATH)
bench_results = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = bench_results
_spec.loader.exec_module(bench_results)

PROVENANCE_KEYS = {
    "created_utc", "commit", "dirty", "python", "torch", "numpy", "torch_threads", "cpu_count",
    "processor", "platform", "cuda_device", "command", "argv", "notes",
}


def test_table_round_trips_through_json_and_markdown(tmp_path: Path) -> None:
    rows = [
        {"method": "dm", "ipc": 10, "s_per_it": 0.25, "ref": None, "ok": True},
        {"method": "dc", "ipc": 1, "s_per_it": np.float64(1.5), "ref": float("nan"), "ok": np.bool_(False)},
    ]
    frame = pd.DataFrame({"n": [1, 4], "rate": [2.0, 3.5]})
    path = bench_results.save("bench_x", {"main": rows, "frame": frame}, argv=["bench_x.py", "--a", "b c"],
                              notes="smoke-sized", root=tmp_path)
    assert path == tmp_path / "bench_x.json"
    back = bench_results.load(path)
    assert back["name"] == "bench_x"
    assert back["tables"]["main"] == [
        {"method": "dm", "ipc": 10, "s_per_it": 0.25, "ref": None, "ok": True},
        {"method": "dc", "ipc": 1, "s_per_it": 1.5, "ref": None, "ok": False},
    ]
    assert back["tables"]["frame"] == [{"n": 1, "rate": 2.0}, {"n": 4, "rate": 3.5}]
    assert not any(isinstance(v, float) and math.isnan(v) for r in back["tables"]["main"] for v in r.values())
    md = (tmp_path / "bench_x.md").read_text()
    assert "## main" in md and "| method | ipc | s_per_it | ref | ok |" in md and "| dc | 1 | 1.5 |  | False |" in md
    assert "- notes: smoke-sized" in md and "`" in md.split("- command: ")[1].splitlines()[0]


def test_provenance_keys_and_command_line(tmp_path: Path) -> None:
    path = bench_results.save("bench_y", {"t": [{"a": 1}]}, argv=["benchmarks/bench_y.py", "--n", "two words"],
                              params={"n": "two words", "path": tmp_path}, root=tmp_path)
    prov = json.loads(path.read_text())["provenance"]
    assert PROVENANCE_KEYS <= set(prov)
    assert prov["argv"] == ["benchmarks/bench_y.py", "--n", "two words"]
    assert prov["command"].endswith("benchmarks/bench_y.py --n 'two words'")
    assert prov["params"] == {"n": "two words", "path": str(tmp_path)}
    assert prov["created_utc"].endswith("+00:00")
    assert prov["cpu_count"] and prov["torch_threads"] >= 1
    assert prov["commit"] is None or len(prov["commit"]) == 40


def test_each_run_replaces_its_file_and_leaves_no_temporary_files(tmp_path: Path) -> None:
    bench_results.save("bench_z", {"t": [{"a": 1}]}, argv=["x"], root=tmp_path)
    bench_results.save("bench_z", {"t": [{"a": 2}]}, argv=["x"], root=tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bench_z.json", "bench_z.md"]
    assert bench_results.load(tmp_path / "bench_z.json")["tables"]["t"] == [{"a": 2}]
    umask = bench_results._umask()
    assert (tmp_path / "bench_z.json").stat().st_mode & 0o777 == 0o666 & ~umask  # not mkstemp's 0600


def test_failed_write_keeps_the_previous_file_and_no_temporary(tmp_path: Path, monkeypatch) -> None:
    bench_results.save("bench_w", {"t": [{"a": 1}]}, argv=["x"], root=tmp_path)
    with pytest.raises(TypeError):
        bench_results.save("bench_w", {"t": "not rows"}, argv=["x"], root=tmp_path)

    def disk_full(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(bench_results.os, "fsync", disk_full)
    with pytest.raises(OSError):
        bench_results.save("bench_w", {"t": [{"a": 2}]}, argv=["x"], root=tmp_path)
    monkeypatch.undo()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bench_w.json", "bench_w.md"]
    assert bench_results.load(tmp_path / "bench_w.json")["tables"]["t"] == [{"a": 1}]


def test_out_path_overrides_the_results_folder(tmp_path: Path) -> None:
    assert bench_results.output_path("b", None, root=tmp_path) == tmp_path / "b.json"
    assert bench_results.output_path("b", tmp_path) == tmp_path / "b.json"
    assert bench_results.output_path("b", tmp_path / "run1") == tmp_path / "run1.json"
    path = bench_results.save("b", {"t": []}, argv=["x"], out=tmp_path / "sub" / "run2.json", root=tmp_path / "no")
    assert path == tmp_path / "sub" / "run2.json" and (tmp_path / "sub" / "run2.md").exists()
    assert not (tmp_path / "no").exists()
