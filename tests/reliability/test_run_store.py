"""The run store never returns a damaged run, round-trips rows exactly, and loses no work."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from fairdd import results
from fairdd.paths import REPO_ROOT


class Counted:
    def __init__(self, rows):
        self.rows, self.calls = rows, 0

    def __call__(self):
        self.calls += 1
        return [dict(r) for r in self.rows]


ROWS = [{"seed": 0, "acc": 0.5, "name": "007"}, {"seed": 1, "acc": 0.25, "name": "x"}]


def _finished(tmp_path, config=None, rows=ROWS) -> Path:
    config = config or {"lr": 0.1}
    results.run("s", config, Counted(rows), root=tmp_path)
    return results.run_dir("s", config, root=tmp_path)


def test_rows_round_trip_exactly_types_included(tmp_path) -> None:
    rows = [
        {"code": "007", "na": "NA", "none_text": "None", "empty": "", "maybe": None, "mixed": 1, "flag": True,
         "x": 0.1 + 0.2, "big": 2**62, "nan": float("nan"), "half": "a"},
        {"code": "010", "na": "NaN", "none_text": "null", "empty": "", "maybe": "b", "mixed": "two", "flag": False,
         "x": 1e-300, "big": -1, "nan": 1.5},
    ]
    computed = results.run("s", {"a": 1}, Counted(rows), root=tmp_path)
    loaded = results.load("s", root=tmp_path)
    expected = pd.DataFrame([{"run_id": results.run_id({"a": 1}), "a": 1, **r} for r in rows])
    for frame in (computed, loaded):
        pd.testing.assert_frame_equal(frame[expected.columns], expected)
        assert frame.loc[0, "code"] == "007" and frame.loc[0, "na"] == "NA" and frame.loc[0, "none_text"] == "None"
        assert frame.loc[0, "empty"] == "" and pd.isna(frame.loc[0, "maybe"]) and frame.loc[1, "mixed"] == "two"
        assert frame.loc[0, "x"] == 0.1 + 0.2 and frame.loc[0, "big"] == 2**62


@pytest.mark.parametrize("damage", ["truncate", "edit", "swap_config", "drop_file"])
def test_a_damaged_run_is_never_returned(tmp_path, damage: str) -> None:
    folder = _finished(tmp_path)
    other = _finished(tmp_path, {"lr": 0.2})
    if damage == "truncate":
        text = (folder / "rows.csv").read_text()
        (folder / "rows.csv").write_text(text[: len(text) * 2 // 3])
    elif damage == "edit":
        (folder / "rows.csv").write_text((folder / "rows.csv").read_text().replace("0.25", "0.95"))
    elif damage == "swap_config":
        (folder / "config.json").write_text((other / "config.json").read_text())
    else:
        (folder / "provenance.json").unlink()
    assert not results.is_finished("s", {"lr": 0.1}, root=tmp_path)
    # load: the other runs still come back, with a warning naming the damaged folder
    with pytest.warns(RuntimeWarning, match=str(folder)):
        frame = results.load("s", root=tmp_path)
    assert set(frame["run_id"]) == {other.name}
    # run: recomputed (the damaged folder kept aside), never returned as it was
    compute = Counted(ROWS)
    with pytest.warns(RuntimeWarning, match="corrupt"):
        again = results.run("s", {"lr": 0.1}, compute, root=tmp_path)
    assert compute.calls == 1 and list(again["acc"]) == [0.5, 0.25]
    assert any(p.name.startswith(".corrupt-") for p in folder.parent.iterdir())
    assert results.is_finished("s", {"lr": 0.1}, root=tmp_path)


def test_a_damaged_checkpoint_names_the_file(tmp_path) -> None:
    path = tmp_path / "ck.pt"
    results.save_checkpoint(path, {"w": torch.ones(1000)})
    raw = path.read_bytes()
    for broken in (raw[: len(raw) // 2], b""):
        path.write_bytes(broken)
        with pytest.raises(ValueError, match=f"checkpoint {path} is damaged.*delete it"):
            results.load_checkpoint(path)


def test_an_unwritable_results_folder_fails_before_computing(tmp_path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    compute = Counted(ROWS)
    with pytest.raises(PermissionError, match="not writable.*nothing was computed"):
        results.run("s", {"a": 1}, compute, root=blocker)
    assert compute.calls == 0


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes to read-only folders")
def test_a_read_only_results_folder_fails_before_computing(tmp_path) -> None:
    (tmp_path / "s").mkdir()
    os.chmod(tmp_path / "s", 0o500)
    compute = Counted(ROWS)
    try:
        with pytest.raises(PermissionError, match="FAIRDD_RESULTS"):
            results.run("s", {"a": 1}, compute, root=tmp_path)
    finally:
        os.chmod(tmp_path / "s", 0o700)
    assert compute.calls == 0


def test_force_killed_between_its_renames_keeps_the_old_run(tmp_path) -> None:
    old = results.run("s", {"a": 1}, Counted(ROWS), root=tmp_path)
    code = textwrap.dedent(
        f"""
        import os
        from fairdd import results
        real = os.rename
        def dying_rename(src, dst):
            real(src, dst)
            if ".old-" in str(dst):
                os._exit(9)  # killed after moving the old run aside, before the new one is in
        results.os.rename = dying_rename
        results.run("s", {{"a": 1}}, lambda: [{{"seed": 9, "acc": 1.0}}], root={str(tmp_path)!r}, force=True)
        """
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO_ROOT)
    assert proc.returncode == 9, proc.stderr
    assert not (tmp_path / "s" / results.run_id({"a": 1})).exists()  # the gap the kill left
    pd.testing.assert_frame_equal(results.load("s", root=tmp_path), old)  # put back
    compute = Counted(ROWS)
    pd.testing.assert_frame_equal(results.run("s", {"a": 1}, compute, root=tmp_path), old)
    assert compute.calls == 0


def _live_unrelated_process() -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])


def test_a_claim_whose_pid_now_belongs_to_another_process_is_stale(tmp_path) -> None:
    if not Path("/proc/self/stat").exists():
        pytest.skip("needs /proc for process start times")
    target = tmp_path / "expert.pt"
    proc = _live_unrelated_process()
    try:
        time.sleep(0.2)
        claim = target.with_suffix(".claim")
        claim.write_text(str(proc.pid))
        hour_ago = time.time() - 3600
        os.utime(claim, (hour_ago, hour_ago))  # the claim predates the process holding its pid
        assert results.claim_holder(target) is None
        assert results.claim_file(target)
        assert claim.read_text() == str(os.getpid())
        assert results.claim_holder(target) == os.getpid()
        assert not results.claim_file(target)  # a live, genuine claim is respected
    finally:
        proc.kill()
        proc.wait()


def test_waiting_for_a_claimed_expert_times_out_with_a_message(tmp_path) -> None:
    from fairdd.distill import expert_cache_dir, train_experts
    from fairdd.distill.mtt import _expert_file
    from tests.test_distill_mtt import CFG
    from tests.test_distill_common import toy_dataset

    train = toy_dataset()
    directory = expert_cache_dir(train, CFG, root=tmp_path)
    for i in range(CFG.num_experts):
        assert results.claim_file(_expert_file(directory, i))  # "another" live process: us
    with pytest.raises(TimeoutError, match=r"\.claim \(pid \d+\).*delete those \.claim files"):
        train_experts(train, CFG, progress=False, root=tmp_path, wait_timeout_s=0.0)
