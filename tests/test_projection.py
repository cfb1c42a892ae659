"""benchmarks/projection.py: the studies' work inputs, the projection arithmetic, the CLI's files."""

import argparse
import dataclasses
import importlib.util
import json
import math
import sys
from pathlib import Path

import pytest

from fairdd.models import NetworkSpec
from fairdd.studies import STUDIES, config_class, study_module

_PATH = Path(__file__).resolve().parent.parent / "benchmarks" / "projection.py"
_spec = importlib.util.spec_from_file_location("projection_under_test", _PATH)
projection = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = projection
_spec.loader.exec_module(projection)


def _steps(items, component: str) -> int:
    return sum(i.steps for i in items if i.component == component)


@pytest.fixture(scope="module")
def paper_items() -> dict[str, list]:
    return {name: projection.work_items(name) for name in STUDIES}


def test_every_study_has_a_rule_and_positive_work(paper_items) -> None:
    assert all(study_module(name).STUDY.work is not None for name in STUDIES)  # every study declares its work
    for name, items in paper_items.items():
        assert items, name
        for item in items:
            assert item.study == name
            assert item.steps > 0 and item.batch >= 1 and item.sample_passes > 0, item
            assert item.kind in ("train", "forward") and item.aug in ("none", "dsa", "crop"), item
            assert all(v >= 1 for v in item.input_shape) and item.num_classes >= 2, item
    components = {name: {i.component for i in items} for name, items in paper_items.items()}
    assert {"evaluation", "whole-set", "distillation:dc", "distillation:dsa", "distillation:dm", "distillation:mtt",
            "mtt:experts"} <= components["dd_methods"]
    assert {"probe", "distillation:dm_balanced"} <= components["bias_dd"]
    assert {"kd:teacher", "kd:student", "kd:teacher-forward"} <= components["kd_fairness"]
    assert {"distillation:embedding", "retrain", "standard"} <= components["embedding_dd"]
    assert {"distillation:dc_fairdd", "kd:teacher"} <= components["compare_dd_kd"]


def test_shared_work_is_counted_once(paper_items) -> None:
    dd = paper_items["dd_methods"]
    config = config_class("dd_methods").for_profile("paper")
    mtt = [c for c in config.cells() if c.method == "mtt"]
    assert len(mtt) > 1
    experts = [i for i in dd if i.component == "mtt:experts"]
    assert len(experts) == 1  # one expert set for every MTT cell (every size and seed)
    cfg = mtt[0].distill
    per_epoch = experts[0].sample_passes / (cfg.num_experts * cfg.expert_train_epochs)
    assert experts[0].steps == cfg.num_experts * cfg.expert_train_epochs * math.ceil(per_epoch / cfg.expert_batch)
    kd = config_class("kd_fairness").for_profile("paper")
    teachers = [i for i in paper_items["kd_fairness"] if i.component == "kd:teacher"]
    assert len(teachers) == len({(c.data, c.kd.teacher_spec(c.seed)) for c in kd.cells()}) == len(kd.data) * len(kd.seeds)
    # the KD study's students of one data set and seed can train side by side (its `side_by_side` option)
    students = [i for i in paper_items["kd_fairness"] if i.component == "kd:student"]
    per_group = {}
    for c in kd.cells():
        if c.role != "teacher":
            per_group[c.data] = per_group.get(c.data, 0) + 1
    assert {i.networks for i in students} == {n // len(kd.seeds) for n in per_group.values()}
    assert all(i.batchable for i in students)
    forward = [i for i in paper_items["kd_fairness"] if i.component == "kd:teacher-forward"]
    assert forward and all(i.batchable and i.batched_batch > i.batch for i in forward)
    # The DD vs KD study batches a ratio and seed's students per protocol (plain; group-balanced).
    config = projection.study_configs("compare_dd_kd", "paper")[0]
    compare = [i for i in paper_items["compare_dd_kd"] if i.component == "kd:student"]
    plain = 1 + len(config.temperatures) * len(config.alphas)
    assert compare and all(i.batchable for i in compare)
    assert {i.networks for i in compare} == {plain, len(config.balanced_temperatures)}
    # the 100-class task of the class-wise study is projected too (its BOOK_VARIANTS)
    assert len(projection.study_configs("classwise_dd", "paper")) == 2


def test_evaluation_steps_follow_the_protocol(paper_items) -> None:
    config = config_class("dd_methods").for_profile("paper")
    cell = next(c for c in config.cells() if c.method == "dc" and c.images_per_class == 50)
    items = projection.work_items("dd_methods", dataclasses.replace(config, methods=("dc",), images_per_class=(50,),
                                                                     seeds=(0,)))
    ev = [i for i in items if i.component == "evaluation"]
    e = cell.evaluation
    n = 10 * 50
    assert [i.steps for i in ev] == [e.num_networks * e.epochs * math.ceil(n / e.batch_size)]
    assert ev[0].batch == min(e.batch_size, n) and ev[0].sample_passes == e.num_networks * e.epochs * n
    assert ev[0].batchable and ev[0].networks == e.num_networks  # ConvNet with instance norm
    outer, inner = cell.distill.loops_for(50)
    dc = [i for i in items if i.component == "distillation:dc"]
    assert sum(i.steps for i in dc if i.batch == 50) == 2 * cell.distill.iterations * outer * 10


def test_work_changes_with_the_paper_config() -> None:
    cls = config_class("dd_methods")
    base = projection.work_items("dd_methods", cls.for_profile("paper"))
    paper = cls.for_profile("paper")
    double = projection.work_items("dd_methods", cls.for_profile(
        "paper", evaluation=dataclasses.replace(paper.evaluation, num_networks=40),
        evaluation_dsa=dataclasses.replace(paper.evaluation_dsa, num_networks=40)))
    assert _steps(double, "evaluation") == 2 * _steps(base, "evaluation")
    assert _steps(double, "distillation:dm") == _steps(base, "distillation:dm")

    bias = config_class("bias_dd").for_profile("paper")
    base = projection.work_items("bias_dd", bias)
    longer = projection.work_items("bias_dd", dataclasses.replace(bias, dm=dataclasses.replace(
        bias.dm, iterations=2 * bias.dm.iterations)))
    one_seed = projection.work_items("bias_dd", dataclasses.replace(bias, seeds=(0,)))
    for component in ("distillation:dm", "distillation:dm_balanced"):
        assert _steps(longer, component) == 2 * _steps(base, component)
    assert _steps(longer, "distillation:dc") == _steps(base, "distillation:dc")
    assert _steps(one_seed, "evaluation") * len(bias.seeds) == _steps(base, "evaluation")
    assert _steps(one_seed, "probe") == _steps(base, "probe")  # one probe per data set, whatever the seeds

    cw = config_class("classwise_dd").for_profile("paper")
    base = projection.work_items("classwise_dd", cw)
    more = projection.work_items("classwise_dd", dataclasses.replace(cw, mtt=dataclasses.replace(cw.mtt, num_experts=200)))
    assert _steps(more, "mtt:experts") == 2 * _steps(base, "mtt:experts")
    assert _steps(more, "evaluation") == _steps(base, "evaluation")

    kd = config_class("kd_fairness")
    fewer = projection.work_items("kd_fairness", kd.for_profile("paper", seeds=(0, 1)))
    full = projection.work_items("kd_fairness", kd.for_profile("paper"))
    assert _steps(full, "kd:teacher") * 2 == _steps(fewer, "kd:teacher") * 5


def _item(steps: int, batch: int, *, batchable: bool = False, study: str = "s", component: str = "c",
          width: int = 8) -> object:
    return projection.WorkItem(
        study=study, component=component, network=projection.Network(spec=NetworkSpec(width=width, depth=1)),
        input_shape=(1, 8, 8), num_classes=10, kind="train", aug="none", batch=batch, steps=steps,
        sample_passes=steps * batch, networks=4 if batchable else 1, batchable=batchable,
    )


def test_projection_arithmetic_with_injected_rates() -> None:
    a = _item(3600, 10, batchable=True, component="evaluation")
    b = _item(7200, 10, component="distillation:dm")
    c = _item(100, 10, component="other", width=16)  # a group with no rate: unmeasured
    rates = projection.Rates({(a.rate_key, "sequential"): {10: 0.5}, (a.rate_key, "batched"): {10: 0.1}})
    for device, gpu in (("cpu", False), ("cuda", True)):
        tables = projection.project([a, b, c], rates, device=device, cells={"s": 3})
        rows = {r["component"]: r for r in tables["inputs"]}
        assert rows["evaluation"]["hours_sequential"] == pytest.approx(3600 * 0.5 / 3600)
        assert rows["evaluation"]["hours_batched"] == pytest.approx(3600 * 0.1 / 3600)
        assert rows["distillation:dm"]["hours_sequential"] == pytest.approx(1.0)
        assert rows["distillation:dm"]["hours_batched"] == pytest.approx(1.0)  # no batched path: sequential
        assert rows["other"]["hours_sequential"] is None
        study = tables["studies"][0]
        assert study["study"] == "s" and study["cells"] == 3 and study["items"] == 3 and study["rows"] == 3
        assert study["steps"] == 3600 + 7200 + 100
        assert study["hours_sequential"] == pytest.approx(1.5) and study["hours_batched"] == pytest.approx(1.1)
        assert study["unmeasured_rows"] == 1 and study["unmeasured_sample_passes"] == 1000
        if gpu:
            assert study["gpu_hours"] == pytest.approx(1.5) and study["gpu_hours_batched"] == pytest.approx(1.1)
        else:
            assert study["gpu_hours"] == "unmeasured" and study["gpu_hours_batched"] == "unmeasured"
        assert tables["studies"][-1]["study"] == "all"
        # a batched teacher forward: one pass at batched_batch serves `networks` students' steps
        f = dataclasses.replace(_item(100, 10, component="fwd"), kind="forward", batchable=True, networks=4,
                                batched_batch=50)
        fr = projection.Rates({(f.rate_key, "sequential"): {10: 0.2, 50: 0.6}})
        frow = projection.project([f], fr, device=device)["inputs"][0]
        assert frow["hours_sequential"] == pytest.approx(100 * 0.2 / 3600)
        assert frow["hours_batched"] == pytest.approx(100 * 0.6 / 4 / 3600)
        target = projection.target_row(tables["studies"][-1], 4.0)
        assert target["within_target"] == "unmeasured"  # a row is unmeasured: no verdict
        complete = projection.project([a, b], rates, device=device)["studies"][-1]
        for limit, verdict in ((4.0, True), (1.2, False)):
            row = projection.target_row(complete, limit)
            assert row["within_target"] == (verdict if gpu else "unmeasured")
            assert row["within_target_batched"] == (True if gpu else "unmeasured")
        comps = {r["component"]: r for r in tables["components"]}
        assert comps["other"]["hours_sequential"] is None and comps["other"]["unmeasured_rows"] == 1


def test_rates_interpolate_and_aggregate_merges_cells() -> None:
    r = projection.Rates({("k", "sequential"): {10: 1.0, 30: 2.0}})
    assert r.seconds("k", 10) == 1.0 and r.seconds("k", 20) == pytest.approx(1.5)
    assert r.seconds("k", 60) == pytest.approx(4.0)  # in proportion above the largest
    assert r.seconds("k", 5) == 1.0  # the smallest's below it
    assert r.seconds("k", 10, "batched") is None and r.seconds("other", 10) is None
    back = projection.Rates.from_rows([{"key": "k", "path": "sequential", "batch": 10, "seconds_per_step": 1.0},
                                       {"key": "k", "path": "sequential", "batch": 30, "seconds_per_step": None}])
    assert back.seconds("k", 30) == pytest.approx(3.0)
    budget = argparse.Namespace(step_budget=1.0)
    assert projection._within_budget(256, 1, 0.01, 1, budget) == 100  # a step of 100 fits in one second
    assert projection._within_budget(256, 1, 0.01, 4, budget) == 25  # four networks side by side
    assert projection._within_budget(256, 1, 0.0, 1, budget) == 256  # nothing to predict by: as wanted
    merged = projection.aggregate([_item(5, 10), _item(7, 10), _item(5, 20)])
    assert sorted((m.batch, m.steps, m.cells) for m in merged) == [(10, 12, 2), (20, 5, 1)]


def test_measure_rates_times_every_path() -> None:
    net = projection.Network(spec=NetworkSpec(width=4, depth=1))
    items = [
        dataclasses.replace(_item(10, 4, batchable=True), network=net, networks=2),
        projection.WorkItem("s", "d", net, (1, 8, 8), 10, "forward", "dsa", 6, 3, 6.0),
        projection.WorkItem("s", "k", net, (1, 8, 8), 10, "train", "crop", 4, 3, 12.0, networks=2, batchable=True),
    ]
    args = argparse.Namespace(device="cpu", steps=1, warmup=1, min_time=0.0, max_steps=2, max_batch=0,
                              batch_points="ends", batched_networks=None, no_batched=False, skip_slower_than=30.0,
                              max_seconds=60.0, step_budget=10.0)
    rates, rows = projection.measure_rates(items, args)
    assert {(r["kind"], r["aug"], r["path"]) for r in rows} == {
        ("train", "none", "sequential"), ("train", "none", "batched"), ("forward", "dsa", "sequential"),
        ("train", "crop", "sequential"), ("train", "crop", "batched")}
    assert all(r["status"] == "measured" and r["seconds_per_step"] > 0 for r in rows), rows
    tables = projection.project(items, rates, device="cpu")
    assert all(r["hours_sequential"] > 0 for r in tables["inputs"])
    args.max_seconds = -1.0  # nothing measured: every group is left unmeasured, and said so
    _, rows = projection.measure_rates(items, args)
    assert rows and all(r["status"].startswith("unmeasured") for r in rows)


def test_cli_inputs_only_writes_the_tables(tmp_path: Path) -> None:
    out = tmp_path / "projection.json"
    assert projection.main(["--inputs-only", "--studies", "dd_methods", "kd_fairness", "--out", str(out)]) == 0
    payload = json.loads(out.read_text())
    assert payload["name"] == "projection" and (tmp_path / "projection.md").exists()
    tables = payload["tables"]
    assert set(tables) == {"studies", "components", "inputs", "target", "rates", "approximations"}
    assert tables["target"] == [{"target_gpu_hours": 4.0, "gpu_hours": "unmeasured", "within_target": "unmeasured",
                                 "gpu_hours_batched": "unmeasured", "within_target_batched": "unmeasured"}]
    assert [r["study"] for r in tables["studies"]] == ["dd_methods", "kd_fairness", "all"]
    for row in tables["studies"]:
        assert row["steps"] > 0 and row["sample_passes"] > 0
        assert row["gpu_hours"] == "unmeasured" and row["hours_sequential"] is None
    assert tables["inputs"] and tables["rates"] == [] and tables["approximations"]
    assert payload["provenance"]["params"]["inputs_only"] is True
    # the same inputs re-projected with an earlier run's (here: hand-written) rates
    key = next(r for r in tables["inputs"] if r["study"] == "kd_fairness" and r["component"] == "kd:teacher")
    rates_file = tmp_path / "rates.json"
    shape = key["input_shape"]
    rk = f"train|{key['network']}|{shape}|{key['num_classes']}|{key['aug']}"
    rates_file.write_text(json.dumps({"name": "projection", "tables": {"rates": [
        {"key": rk, "path": "sequential", "batch": key["batch"], "seconds_per_step": 0.01, "device": "cuda"}]}}))
    out2 = tmp_path / "again.json"
    assert projection.main(["--rates-from", str(rates_file), "--studies", "kd_fairness", "--out", str(out2)]) == 0
    again = json.loads(out2.read_text())["tables"]
    row = next(r for r in again["inputs"] if r["component"] == "kd:teacher" and r["network"] == key["network"]
               and r["input_shape"] == shape)
    assert row["hours_sequential"] == pytest.approx(row["steps"] * 0.01 / 3600)
    comp = next(r for r in again["components"] if r["component"] == "kd:teacher")
    assert isinstance(comp["gpu_hours"], float)  # rates from a CUDA device: a number, not "unmeasured"
    target = json.loads(out2.read_text())["tables"]["target"][0]
    assert isinstance(target["gpu_hours"], float) and target["within_target"] == "unmeasured"  # rows unmeasured
