"""Sweeps under faults: SIGTERM stops a `fairdd run` and its workers within seconds, keeping what
finished; two local sweeps into one store compute each run once; the store is checked before any
work (MTT experts included); a full disk is one clear error; a claimed MTT expert is waited for
with the advice printed at once."""

from __future__ import annotations

import errno
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from fairdd import cli, results
from fairdd.paths import REPO_ROOT
from tests.reliability._toy import TOY, ToyCell


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return not state[state.rfind(")") + 2 :].startswith(("Z", "X"))


def _starts(log: Path) -> list[tuple[int, int]]:
    """``(pid, cell index)`` of every computation started, from the toy study's log."""
    if not log.exists():
        return []
    return [(int(p), int(i)) for p, i, what in (line.split() for line in log.read_text().splitlines()) if what == "start"]


def _until(condition, timeout: float, what: str) -> None:
    end = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > end:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def _sweep_script(root: Path, cells: str, processes: int) -> str:
    return textwrap.dedent(
        f"""
        from pathlib import Path
        from fairdd import cli, sweep
        from tests.reliability._toy import TOY, ToyCell
        getattr(cli, "_stop_on_signals", lambda: None)()  # what `fairdd run` does
        sweep.run_local(TOY, {cells}, processes={processes}, root=Path({str(root)!r}))
        """
    )


def test_sigterm_stops_a_sweep_and_its_workers_within_seconds_keeping_finished_runs(tmp_path: Path) -> None:
    root, log = tmp_path / "store", tmp_path / "log"
    cells = f"[ToyCell(0, 0.0, {str(log)!r}), ToyCell(1, 120.0, {str(log)!r}), ToyCell(2, 120.0, {str(log)!r})]"
    output = (tmp_path / "output").open("w")
    proc = subprocess.Popen([sys.executable, "-c", _sweep_script(root, cells, 2)], cwd=REPO_ROOT,
                            stdout=output, stderr=subprocess.STDOUT)
    try:
        _until(lambda: {1, 2} <= {i for _, i in _starts(log)}, 120, "both slow cells to start")
        workers = {pid for pid, _ in _starts(log)}
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=20)
        _until(lambda: not any(_alive(pid) for pid in workers), 10, "the workers to stop")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        output.close()
    assert proc.returncode != 0, (tmp_path / "output").read_text()
    assert results.is_finished("toy", ToyCell(0), root=root)  # finished before the signal: kept
    assert not results.is_finished("toy", ToyCell(1), root=root)
    # The rerun computes only what did not finish.
    again = tmp_path / "again"
    TOY.run([ToyCell(i, 0.0, str(again)) for i in range(3)], processes=1, root=root)
    assert sorted(i for _, i in _starts(again)) == [1, 2]


def test_two_local_sweeps_into_one_store_compute_each_run_once(tmp_path: Path) -> None:
    root, log = tmp_path / "store", tmp_path / "log"
    cells = f"[ToyCell(i, 1.5, {str(log)!r}) for i in range(4)]"
    script = _sweep_script(root, cells, 1)
    procs = [subprocess.Popen([sys.executable, "-c", script], cwd=REPO_ROOT, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(2)]
    for proc in procs:
        out, err = proc.communicate(timeout=180)
        assert proc.returncode == 0, err
    computed = sorted(i for _, i in _starts(log))
    assert computed == [0, 1, 2, 3], f"runs computed: {computed}"
    assert all(results.is_finished("toy", ToyCell(i), root=root) for i in range(4))


# ------------------------------------------------------------------------------ store


def test_fairdd_run_into_a_file_fails_before_any_work(tmp_path: Path, capsys) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert cli.main(["run", "embedding_dd", "--profile", "smoke", "--processes", "1", "--root", str(blocker)]) == 2
    err = capsys.readouterr().err
    assert f"results folder {blocker}" in err and "not a folder" in err and "Traceback" not in err


def test_a_full_disk_during_fairdd_run_is_one_clear_error(tmp_path: Path, monkeypatch, capsys) -> None:
    def full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(results.os, "fsync", full)
    root = tmp_path / "store"
    code = cli.main(["run", "embedding_dd", "--profile", "smoke", "--processes", "1", "--root", str(root)])
    err = capsys.readouterr().err
    assert code == 1, err
    assert "disk is full" in err and str(root) in err and "run the same command again" in err
    assert "Traceback" not in err


def test_mtt_experts_check_the_store_before_any_work(tmp_path: Path) -> None:
    from fairdd.distill import train_experts
    from tests.test_distill_common import toy_dataset
    from tests.test_distill_mtt import CFG

    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(NotADirectoryError, match=f"results folder {blocker / 'store'}.*nothing was computed"):
        train_experts(toy_dataset(), CFG, progress=False, root=blocker / "store")


def test_waiting_for_a_claimed_expert_says_how_to_clear_a_stale_claim_at_once(tmp_path: Path, capsys) -> None:
    from fairdd.distill import expert_cache_dir, train_experts
    from fairdd.distill.mtt import _expert_file
    from tests.test_distill_common import toy_dataset
    from tests.test_distill_mtt import CFG

    train = toy_dataset()
    directory = expert_cache_dir(train, CFG, root=tmp_path)
    for i in range(CFG.num_experts):
        assert results.claim_file(_expert_file(directory, i))  # "another" live process: us
    with pytest.raises(TimeoutError):
        train_experts(train, CFG, progress=False, root=tmp_path, wait_timeout_s=0.5)
    captured = capsys.readouterr()
    first = next(line for line in (captured.out + captured.err).splitlines() if "waiting" in line)
    assert "delete" in first and ".claim" in first and "FAIRDD_CLAIM_TIMEOUT_S" in first


def test_a_damaged_expert_is_trained_again_with_a_warning_naming_it(tmp_path: Path) -> None:
    import torch

    from fairdd.distill import train_experts
    from fairdd.distill.mtt import load_trajectory
    from tests.test_distill_common import toy_dataset
    from tests.test_distill_mtt import CFG

    train = toy_dataset()
    paths = train_experts(train, CFG, progress=False, root=tmp_path)
    before = load_trajectory(paths[0]).clone()
    raw = bytearray(paths[0].read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    paths[0].write_bytes(bytes(raw))
    with pytest.warns(RuntimeWarning, match=f"{paths[0]}.*damaged"):
        again = train_experts(train, CFG, progress=False, root=tmp_path)
    assert torch.equal(load_trajectory(again[0]), before)
