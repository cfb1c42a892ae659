"""The ``fairdd`` command and sweeps: argument errors before work, local pool vs Ray, leases.

The Ray tests start a local Ray instance (``ray.init(num_cpus=2)``, nothing outside this
machine) and stop it; a tiny study of this module (``toy_sweep``, registered in ``STUDIES`` by
the fixture) kills its own worker on a marked cell's first attempt.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest

from fairdd import cli, results, sweep
from fairdd.config import PROFILES
from fairdd.studies import STUDIES, Study

REPO = Path(__file__).resolve().parent.parent
# A tiny grid of the embedding study at its smoke profile: 9 runs, a few seconds.
EMBEDDING = ["embedding_dd", "--profile", "smoke", "--set", "sources=adult", "seeds=0", "sizes=1", "sweep_seeds=0",
             "ablation_seeds=", "text_seeds="]


# ------------------------------------------------------------------ the toy study


@dataclass(frozen=True)
class ToySweepCell:
    index: int
    kill: bool = False


@dataclass(frozen=True)
class ToySweepConfig:
    profile: str = "smoke"
    size: int = 4
    kill: tuple[int, ...] = ()
    scale: float = 1.0

    @classmethod
    def for_profile(cls, profile: str, **overrides) -> "ToySweepConfig":
        return cls(profile=profile, **overrides)

    def cells(self) -> list[ToySweepCell]:
        return [ToySweepCell(i, i in self.kill) for i in range(self.size)]


def toy_rows(cell: ToySweepCell, root) -> list[dict]:
    """Logs each attempt (its pid) under ``root/attempts``; a ``kill`` cell's first attempt
    kills its own process, as a dying node would."""
    log = Path(root) / "attempts" / results.run_id(cell)
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "a") as fh:
        fh.write(f"{os.getpid()}\n")
    if cell.kill and len(log.read_text().split()) == 1:
        os.kill(os.getpid(), signal.SIGKILL)
    return [{"network": n, "value": cell.index * 1.5 + n / 7} for n in range(2)]


CONFIG = ToySweepConfig
STUDY = Study(name="toy_sweep", compute=toy_rows)


def attempts(root: Path) -> dict[str, int]:
    return {p.name: len(p.read_text().split()) for p in (root / "attempts").glob("*")}


@pytest.fixture
def toy(monkeypatch):
    monkeypatch.setitem(STUDIES, "toy_sweep", __name__)
    return "toy_sweep"


@pytest.fixture(scope="module")
def ray_local():
    ray = pytest.importorskip("ray")
    # The workers import this module by name (the toy study); they find it on PYTHONPATH.
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
             runtime_env={"env_vars": {"PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}})
    yield ray
    ray.shutdown()


# ------------------------------------------------------------------- arguments


@pytest.mark.parametrize(
    "argv, message",
    [
        (["run", "nosuch", "--profile", "smoke"], "unknown study 'nosuch'"),
        (["run", "embedding_dd", "--profile", "fast"], "--profile 'fast' is not known; choose one of smoke, cpu, paper"),
        (["run", "embedding_dd", "--profile", "smoke", "--set", "sead=1"], "has no key 'sead'. Did you mean 'seeds'?"),
        (["run", "embedding_dd", "--profile", "smoke", "--set", "seeds=0,x"], "--set seeds=0,x: seeds[1]='x': expected an integer"),
        (["run", "embedding_dd", "--profile", "smoke", "--set", "dd.debias=foo"], "choose one of none, bteo, adv"),
        (["run", "embedding_dd", "--profile", "smoke", "--set", "sources=adlt"], "sources[0]='adlt' is not allowed"),
        (["run", "embedding_dd", "--profile", "smoke", "--set", "dd=1"], "dd is a group of settings"),
        (["run", "embedding_dd", "--profile", "smoke", "--set", "seeds"], "expected key=value"),
        (["status", "classwise_dd", "--profile", "smoke", "--set", "num_classes=7"], "num_classes=7 is not allowed"),
        (["run", "toy_sweep", "--profile", "smoke", "--set", "size=two"], "size='two': expected an integer"),
        (["run", "toy_sweep", "--profile", "smoke", "--processes", "0"], "--processes 0: must be >= 1"),
    ],
)
def test_argument_errors_are_clear_and_come_before_any_work(toy, tmp_path, capsys, argv, message):
    assert cli.main([*argv, "--root", str(tmp_path)]) == 2
    assert message in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []  # nothing computed, nothing written


def test_values_are_parsed_against_the_field_types():
    from typing import Literal

    assert cli.parse_value("1,5,10", tuple[int, ...], "ipcs") == (1, 5, 10)
    assert cli.parse_value("", tuple[int, ...], "seeds") == ()
    assert cli.parse_value("0.5", float, "lr") == 0.5 and cli.parse_value("3", float, "lr") == 3.0
    assert cli.parse_value("none", int | None, "limit") is None and cli.parse_value("7", int | None, "limit") == 7
    assert cli.parse_value("no", bool, "flag") is False and cli.parse_value("true", bool, "flag") is True
    assert cli.parse_value("adv", Literal["none", "adv"], "debias") == "adv"
    assert cli.parse_value("adult:0.7,compas:0.5", tuple[tuple[str, float], ...], "c") == (("adult", 0.7), ("compas", 0.5))
    assert cli.parse_value("0.5,0.9", tuple[float, float], "betas") == (0.5, 0.9)
    assert cli.parse_value("4,5", None, "sizes", current=(1, 2)) == (4, 5)  # no annotation: the current value's type
    for text, annotation in (("1.5", int), ("nan", float), ("maybe", bool), ("1,2,3", tuple[float, float])):
        with pytest.raises(cli.CLIError, match="x"):
            cli.parse_value(text, annotation, "x")


def test_nested_keys_and_for_profile_options_reach_the_config():
    _, _, config, cells = cli.build_config("classwise", "smoke", ["num_classes=100", "ipcs=1,5", "data.source=mnist"])
    assert config.methods == ("mtt", "random") and config.ipcs == (1, 5) and config.data.source == "mnist"
    assert {c.images_per_class for c in cells} == {1, 5, None}
    _, _, config, _ = cli.build_config("embedding_dd", "smoke", ["dd.hidden=16", "standard.patience=none"])
    assert config.dd.hidden == (16,) and config.standard.patience is None


def test_list_names_every_study_and_its_profiles(capsys):
    assert cli.main(["list"]) == 0
    out = capsys.readouterr().out
    assert all(name in out for name in STUDIES) and all(p in out for p in PROFILES)
    assert cli.main(["list", "classwise_dd", "--profile", "smoke"]) == 0
    out = capsys.readouterr().out
    assert "num_classes" in out and "data.source" in out


def test_python_dash_m_fairdd_runs_the_command():
    done = subprocess.run([sys.executable, "-m", "fairdd", "run", "nosuch", "--profile", "smoke"],
                          capture_output=True, text=True, cwd=REPO, timeout=120)
    assert done.returncode == 2 and "unknown study 'nosuch'" in done.stderr


# --------------------------------------------------------------------- local runs


def test_local_run_then_status_then_nothing_to_do(toy, tmp_path, capsys):
    argv = ["toy_sweep", "--profile", "smoke", "--set", "size=3", "--root", str(tmp_path)]
    assert cli.main(["status", *argv]) == 0
    out = capsys.readouterr().out
    assert "0/3 runs finished" in out and out.count("to do") == 3
    assert cli.main(["run", *argv, "--processes", "1"]) == 0
    captured = capsys.readouterr()
    assert "3 computed now, 6 rows" in captured.out
    assert "3/3 runs (100%)" in captured.err and "left" in captured.err  # the progress line
    assert cli.main(["status", *argv]) == 0
    assert "3/3 runs finished" in capsys.readouterr().out
    assert cli.main(["run", *argv, "--processes", "1"]) == 0
    assert "0 computed now" in capsys.readouterr().out
    assert attempts(tmp_path) == {results.run_id(c): 1 for c in ToySweepConfig(size=3).cells()}


def test_without_ray_the_command_says_how_to_install_it(toy, tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` raises ImportError
    assert cli.main(["run", "toy_sweep", "--profile", "smoke", "--ray", "--root", str(tmp_path)]) == 2
    assert "pip install 'fairdd[ray]'" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_progress_line_counts_runs_and_estimates_the_time_left(capsys):
    ticks = iter([100.0, 110.0, 130.0])
    progress = sweep.Progress("s", clock=lambda: next(ticks))
    progress(0, 4)
    progress(1, 4)
    progress(2, 4)
    err = capsys.readouterr().err.splitlines()
    assert err == [
        "s: 4 run(s) to compute",
        "s: 1/4 runs (25%) · elapsed 0:00:10 · about 0:00:30 left",
        "s: 2/4 runs (50%) · elapsed 0:00:30 · about 0:00:30 left",
    ]


# -------------------------------------------------------------------------- leases


def test_a_lease_lets_one_of_two_concurrent_callers_compute(tmp_path):
    calls = []

    def slow(cell, root):
        calls.append(cell)
        time.sleep(0.3)
        return toy_rows(cell, root)

    cell = ToySweepCell(0)
    outcome = []
    threads = [
        threading.Thread(target=lambda: outcome.append(sweep.run_leased("toy_sweep", slow, cell, tmp_path, poll_s=0.05)))
        for _ in range(2)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcome) == [False, True] and calls == [cell]
    assert not sweep.lease_path("toy_sweep", cell, tmp_path).exists()


def test_a_dead_holders_lease_is_taken_over_a_live_one_is_not(tmp_path):
    path = tmp_path / "x.lease"
    lease = sweep.Lease.acquire(path, heartbeat_s=0.05)
    assert lease is not None and sweep.Lease.acquire(path) is None
    assert sweep.lease_holder(path)["pid"] == os.getpid()
    mtime = path.stat().st_mtime_ns
    time.sleep(0.2)
    assert path.stat().st_mtime_ns > mtime  # the heartbeat
    lease.release()
    assert not path.exists() and sweep.lease_holder(path) is None

    # A lease of a process of this machine that is gone: not held, broken at once.
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    pid = int(dead.stdout)
    path.write_text(f'{{"token": "t", "host": "{sweep._host()}", "pid": {pid}, "since": 0}}')
    assert sweep.lease_holder(path) is None
    cell = ToySweepCell(1)
    stale = sweep.lease_path("toy_sweep", cell, tmp_path)
    stale.parent.mkdir(parents=True)
    stale.write_text(path.read_text())
    assert sweep.run_leased("toy_sweep", toy_rows, cell, tmp_path, poll_s=0.01) is True

    # A lease of another machine whose heartbeat stopped: broken once it is older than the TTL.
    cell = ToySweepCell(2)
    other = sweep.lease_path("toy_sweep", cell, tmp_path)
    other.write_text('{"token": "u", "host": "elsewhere/0", "pid": 1, "since": 0}')
    start = time.monotonic()
    assert sweep.run_leased("toy_sweep", toy_rows, cell, tmp_path, poll_s=0.02, ttl_s=0.2) is True
    assert time.monotonic() - start >= 0.2
    assert attempts(tmp_path) == {results.run_id(ToySweepCell(1)): 1, results.run_id(cell): 1}


# ----------------------------------------------------------------------------- Ray


def _rows(root: Path) -> pd.DataFrame:
    frame = results.load("embedding_dd", root=root)
    # Wall/CPU times differ run to run; "dirty" and "commit" record the working tree at compute
    # time, which another process may change (or commit) between the two sweeps.
    return frame[[c for c in frame.columns if not c.endswith("seconds") and c not in ("dirty", "commit", "finished")]]


def test_ray_gives_the_local_pools_rows_and_a_second_run_computes_nothing(ray_local, tmp_path, capsys):
    local, remote = tmp_path / "local", tmp_path / "ray"
    assert cli.main(["run", *EMBEDDING, "--processes", "2", "--root", str(local)]) == 0
    assert "9/9 runs (100%)" in capsys.readouterr().err  # the pool reports each finished job
    assert cli.main(["run", *EMBEDDING, "--ray", "--root", str(remote)]) == 0
    captured = capsys.readouterr()
    assert "9 runs, 9 computed now, 9 rows" in captured.out and "9/9 runs (100%)" in captured.err
    pd.testing.assert_frame_equal(_rows(local), _rows(remote), check_exact=True)  # bit-identical values
    assert len(_rows(remote)) == 9

    stamps = {p: p.stat().st_mtime_ns for p in (remote / "embedding_dd").glob("*/DONE")}
    assert cli.main(["run", *EMBEDDING, "--ray", "--root", str(remote)]) == 0
    assert "0 computed now" in capsys.readouterr().out
    assert {p: p.stat().st_mtime_ns for p in (remote / "embedding_dd").glob("*/DONE")} == stamps
    assert ray_local.is_initialized()  # a Ray instance the command did not start is left running


def test_ray_retries_a_killed_worker_and_writes_each_run_once(toy, ray_local, tmp_path, capsys):
    argv = ["run", "toy_sweep", "--profile", "smoke", "--set", "size=4", "kill=2", "--ray", "--root", str(tmp_path)]
    assert cli.main(argv) == 0
    assert "4 runs, 4 computed now, 8 rows" in capsys.readouterr().out
    cells = ToySweepConfig(size=4, kill=(2,)).cells()
    killed = results.run_id(cells[2])
    assert attempts(tmp_path) == {results.run_id(c): 2 if c.kill else 1 for c in cells}  # the killed one retried
    store = tmp_path / "toy_sweep"
    assert sorted(p.name for p in store.iterdir() if p.name != "checkpoints") == sorted(results.run_id(c) for c in cells)
    assert list((store / "checkpoints").glob("*.lease")) == []  # every lease released or broken
    rows = results.load("toy_sweep", root=tmp_path)
    assert len(rows) == 8 and rows.groupby("run_id").size().eq(2).all()
    assert rows.loc[rows["run_id"] == killed, "value"].tolist() == [3.0, 3.0 + 1 / 7]
    assert cli.main(argv) == 0 and "0 computed now" in capsys.readouterr().out
    assert attempts(tmp_path)[killed] == 2
