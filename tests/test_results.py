"""fairdd.results: skip finished runs, atomic writes, stable and sensitive run ids."""

import dataclasses
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pandas as pd
import pytest
import torch

from fairdd import results
from fairdd.paths import REPO_ROOT


@dataclasses.dataclass(frozen=True)
class Inner:
    width: int = 32
    norm: str = "instancenorm"


@dataclasses.dataclass(frozen=True)
class Config:
    lr: float = 0.01
    seeds: tuple[int, ...] = (0, 1)
    name: str = "kd"
    flag: bool = False
    model: Inner = Inner()
    workers: int = dataclasses.field(default=1, metadata={"run_id": False})


class Counter:
    """A compute that records how often it ran."""

    def __init__(self, rows=None):
        self.calls = 0
        self.rows = rows if rows is not None else [{"seed": 0, "acc": 0.5}, {"seed": 1, "acc": 0.75}]

    def __call__(self):
        self.calls += 1
        return self.rows


def test_run_id_is_stable_across_processes_and_field_order():
    cfg = Config()
    rid = results.run_id(cfg)
    assert len(rid) == results.RUN_ID_LENGTH and int(rid, 16) >= 0
    code = textwrap.dedent(
        f"""
        import dataclasses, sys
        sys.path.insert(0, {str(Path(__file__).parent)!r})
        from test_results import Config
        from fairdd.results import run_id
        print(run_id(Config()))
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO_ROOT)
    assert out.stdout.strip() == rid
    # A dict with the same content in another key order hashes the same.
    payload = results.canonical_config(cfg)
    assert results.run_id(dict(reversed(list(payload.items())))) == rid


def test_run_id_changes_with_every_field():
    base = results.run_id(Config())
    variants = [
        Config(lr=0.02),
        Config(seeds=(0, 2)),
        Config(seeds=(1, 0)),
        Config(name="dd"),
        Config(flag=True),
        Config(model=Inner(width=64)),
        Config(model=Inner(norm="batchnorm")),
    ]
    ids = {results.run_id(v) for v in variants}
    assert base not in ids and len(ids) == len(variants)
    # Excluded field, and int vs float in a float field: same run.
    assert results.run_id(Config(workers=2)) == base
    assert results.run_id(Config(lr=1)) == results.run_id(Config(lr=1.0))

    @dataclasses.dataclass(frozen=True)
    class Other:  # same fields, different class: a different kind of run
        lr: float = 0.01
        seeds: tuple[int, ...] = (0, 1)
        name: str = "kd"
        flag: bool = False
        model: Inner = Inner()

    assert results.run_id(Other()) != base


def test_bad_config_values_are_rejected():
    with pytest.raises(ValueError, match=r"config.lr=nan"):
        results.run_id(Config(lr=float("nan")))
    with pytest.raises(ValueError, match=r"config.name=.*object"):
        results.run_id(Config(name=object()))
    with pytest.raises(ValueError, match="study"):
        results.run("../x", Config(), Counter())


def test_finished_run_is_loaded_not_recomputed(tmp_path):
    compute = Counter()
    first = results.run("study", Config(), compute, root=tmp_path)
    second = results.run("study", Config(), compute, root=tmp_path)
    assert compute.calls == 1
    pd.testing.assert_frame_equal(first, second)
    assert list(first["acc"]) == [0.5, 0.75]
    assert set(first["run_id"]) == {results.run_id(Config())}
    assert first.loc[0, "model.width"] == 32 and first.loc[0, "seeds"] == "[0,1]"
    assert first.loc[0, "device"] in ("cpu",) or first.loc[0, "device"].startswith("cuda")
    d = results.run_dir("study", Config(), root=tmp_path)
    assert sorted(p.name for p in d.iterdir()) == ["DONE", "config.json", "provenance.json", "rows.csv"]
    # config.json is the canonical config: hashing it gives the run id.
    assert results.run_id(json.loads((d / "config.json").read_text())) == d.name
    prov = json.loads((d / "provenance.json").read_text())
    assert prov["seeds"] == [0, 1] and prov["wall_s"] >= 0 and prov["packages"]["torch"] == torch.__version__
    assert set(prov) >= {"commit", "dirty", "python", "device", "started", "finished"}
    # force recomputes and replaces.
    results.run("study", Config(), Counter([{"seed": 0, "acc": 1.0}]), root=tmp_path, force=True)
    assert list(results.load("study", root=tmp_path)["acc"]) == [1.0]


def test_compute_that_raises_leaves_no_run(tmp_path):
    def boom():
        raise RuntimeError("diverged")

    with pytest.raises(RuntimeError, match="diverged"):
        results.run("study", Config(), boom, root=tmp_path)
    assert not results.is_finished("study", Config(), root=tmp_path)
    assert list((tmp_path / "study").iterdir()) == []
    # Malformed rows are refused before anything is written.
    for bad in ([], [{"acc": [1, 2]}], [{"name": "other"}], [{"run_id": "x"}]):
        with pytest.raises(ValueError):
            results.run("study", Config(), Counter(bad), root=tmp_path)
    assert list((tmp_path / "study").iterdir()) == []


def test_kill_mid_write_leaves_no_done_and_is_recomputed(tmp_path):
    """A process killed while writing provenance.json leaves only a private temp folder."""
    code = textwrap.dedent(
        f"""
        import os, sys
        sys.path.insert(0, {str(Path(__file__).parent)!r})
        from test_results import Config
        from fairdd import results
        real = results._write
        def dying_write(path, text):
            if path.name == "provenance.json":
                real(path, text[: len(text) // 2])
                os._exit(9)  # as SIGKILL would: no cleanup, no finally
            real(path, text)
        results._write = dying_write
        results.run("study", Config(), lambda: [{{"acc": 0.5}}], root={str(tmp_path)!r})
        """
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO_ROOT)
    assert proc.returncode == 9, proc.stderr
    study = tmp_path / "study"
    leftovers = list(study.iterdir())
    assert len(leftovers) == 1 and leftovers[0].name.startswith(".tmp-")
    assert not (leftovers[0] / "DONE").exists()
    assert not results.is_finished("study", Config(), root=tmp_path)
    assert results.load("study", root=tmp_path).empty
    compute = Counter()
    results.run("study", Config(), compute, root=tmp_path)
    assert compute.calls == 1
    assert [p.name for p in study.iterdir()] == [results.run_id(Config())]  # stale temp removed


def test_load_concatenates_and_filters(tmp_path):
    for lr in (0.01, 0.1):
        results.run("sweep", Config(lr=lr), Counter(), root=tmp_path)
    results.run("sweep", Config(seeds=(5,)), Counter([{"seed": 5, "acc": 0.9, "extra": "x"}]), root=tmp_path)
    frame = results.load("sweep", root=tmp_path)
    assert len(frame) == 5 and frame["run_id"].nunique() == 3
    assert {"commit", "dirty", "device"} <= set(frame.columns)
    assert len(results.load("sweep", root=tmp_path, lr=0.1)) == 2
    assert list(results.load("sweep", root=tmp_path, seeds=(5,))["acc"]) == [0.9]
    assert len(results.load("sweep", root=tmp_path, **{"model.width": 32}, seed=0)) == 2
    with pytest.raises(ValueError, match="no such column"):
        results.load("sweep", root=tmp_path, temperature=4)
    assert results.load("empty", root=tmp_path).empty


def test_checkpoints_are_atomic_and_removed_when_the_run_finishes(tmp_path):
    ckpt = results.checkpoint_dir("study", Config(), root=tmp_path)
    assert ckpt == tmp_path / "study" / "checkpoints" / results.run_id(Config())
    path = ckpt / "seed0.pt"
    assert results.load_checkpoint(path) is None
    state = {"epoch": 3, "weights": torch.arange(4.0), "rng": torch.Generator().manual_seed(1).get_state()}
    results.save_checkpoint(path, state)
    back = results.load_checkpoint(path)
    assert back["epoch"] == 3 and torch.equal(back["weights"], state["weights"])
    assert torch.equal(back["rng"], state["rng"])
    assert sorted(p.name for p in ckpt.iterdir()) == [".seed0.pt.sha256", "seed0.pt"]  # its digest, no temp file

    def failing_save(obj, fh):
        fh.write(b"partial")
        raise OSError("disk full")

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(torch, "save", failing_save)
        with pytest.raises(OSError, match="disk full"):
            results.save_checkpoint(path, {"epoch": 4})
    assert results.load_checkpoint(path)["epoch"] == 3  # the old checkpoint survives
    assert sorted(p.name for p in ckpt.iterdir()) == [".seed0.pt.sha256", "seed0.pt"]
    results.run("study", Config(), Counter(), root=tmp_path)
    assert not ckpt.exists()


def test_default_root_follows_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("FAIRDD_RESULTS", str(tmp_path))
    results.run("env", {"a": 1}, Counter())
    assert os.path.isfile(tmp_path / "env" / results.run_id({"a": 1}) / "DONE")


def test_unless_default_fields_hash_only_when_set():
    """metadata run_id='unless_default': a field added later keeps the earlier ids while it holds
    its default and gives its other values ids of their own."""

    @dataclasses.dataclass(frozen=True)
    class Config:  # the same name and fields as the module's Config, plus one such field
        lr: float = 0.01
        seeds: tuple[int, ...] = (0, 1)
        name: str = "kd"
        flag: bool = False
        model: Inner = Inner()
        workers: int = dataclasses.field(default=1, metadata={"run_id": False})
        batched: bool = dataclasses.field(default=False, metadata={"run_id": "unless_default"})

    assert results.run_id(Config()) == results.run_id(globals()["Config"]())
    assert "batched" not in results.canonical_config(Config())
    assert results.canonical_config(Config(batched=True))["batched"] is True
    assert results.run_id(Config(batched=True)) != results.run_id(Config())

    @dataclasses.dataclass(frozen=True)
    class Bad:
        x: int = dataclasses.field(default=0, metadata={"run_id": "sometimes"})

    with pytest.raises(ValueError, match="run_id='sometimes'"):
        results.run_id(Bad())
