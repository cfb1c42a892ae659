"""fairdd.studies._work: a cell's work declared once, read by the skeleton's cost order and by the projection."""

import dataclasses
import math

import pytest
import torch

from fairdd.evaluate import EvalConfig
from fairdd.models import NetworkSpec
from fairdd.studies import Study, _work, config_class, study_module
from fairdd.studies._work import Network, Work


def test_work_counts_and_validation():
    w = Work("evaluation", Network(spec=NetworkSpec()), (3, 32, 32), 10, steps=4, batch=8)
    assert w.sample_passes == 32.0 and w.input_shape == (3, 32, 32)
    f = Work("x", Network(hidden=(8,)), (5,), 2, steps=3, batch=9, kind="forward")
    assert f.sample_passes == pytest.approx(9.0)  # forward-only passes weigh a third
    with pytest.raises(ValueError, match="kind"):
        Work("x", Network(hidden=(8,)), (5,), 2, steps=1, batch=1, kind="backward")
    with pytest.raises(ValueError, match="batch"):
        Work("x", Network(hidden=(8,)), (5,), 2, steps=1, batch=0)
    with pytest.raises(ValueError, match="exactly one"):
        Network(hidden=(8,), discriminator_units=4)


def test_evaluation_rule_follows_the_protocol():
    e = EvalConfig(num_networks=3, epochs=5, batch_size=256)
    (w,) = _work.evaluation(e, 500, (3, 32, 32), 10)
    assert w.steps == 3 * 5 * math.ceil(500 / 256) and w.batch == 256 and w.sample_passes == 3 * 5 * 500
    assert w.networks == 3 and w.batched == (e.compile, e.channels_last, e.precision) and w.shared is None


def test_price_counts_multiply_accumulates_and_orders_networks():
    mlp = Network(hidden=(300, 300))
    (w,) = [Work("standard", mlp, (100,), 2, steps=1, batch=1)]
    assert _work.price(w) == pytest.approx(3 * (100 * 300 + 300 * 300 + 300 * 2))
    small = Work("e", Network(spec=NetworkSpec(width=16, depth=1)), (1, 28, 28), 10, steps=10, batch=10)
    large = dataclasses.replace(small, network=Network(spec=NetworkSpec(width=128, depth=3)))
    assert _work.price(large) > 10 * _work.price(small)
    assert _work.price(dataclasses.replace(small, steps=20)) == pytest.approx(2 * _work.price(small))


def test_cell_cost_leaves_shared_work_out():
    own = Work("e", Network(hidden=(8,)), (4,), 2, steps=10, batch=4)
    shared = dataclasses.replace(own, component="mtt:experts", steps=1000, shared=("experts", 0))
    assert _work.cell_cost([own, shared]) == _work.price(own)


def _rows(cell, root):
    return [{"x": cell}]


def _work_of(cell):
    return [Work("train", Network(hidden=(8,)), (4,), 2, steps=cell, batch=1)]


def test_the_skeleton_orders_jobs_by_declared_work():
    study = Study(name="toy_work", compute=_rows, work=_work_of)
    assert [job[0] for job in study._jobs([1, 30, 5, 30])] == [30, 30, 5, 1]  # most work first; ties keep order
    assert [job[0] for job in Study(name="toy_work", compute=_rows)._jobs([1, 30, 5])] == [1, 30, 5]
    cost_wins = Study(name="toy_work", compute=_rows, work=_work_of, cost=lambda c: -c)
    assert [job[0] for job in cost_wins._jobs([1, 30, 5])] == [1, 5, 30]


@pytest.mark.parametrize("name", ["embedding_dd", "kd_fairness"])
def test_a_studys_cost_is_its_declared_work(name):
    study = study_module(name).STUDY
    assert study.cost is None and study.work is not None
    cells = config_class(name).for_profile("smoke").cells()
    costs = {c: _work.cell_cost(study.work(c)) for c in cells}
    assert all(v >= 0 for v in costs.values()) and any(v > 0 for v in costs.values())  # a KD teacher's is shared
    totals = [sum(costs[c] for c in job) for job in study._jobs(cells)]
    assert totals == sorted(totals, reverse=True)


def test_mtt_experts_are_shared_by_every_distillation_that_reads_them():
    from fairdd.distill import MTTConfig

    cfg = MTTConfig.for_profile("smoke")
    one, ten = (_work.distillation("mtt", cfg, n=600, shape=(1, 28, 28), classes=10, ipc=ipc, data_key="d")
                for ipc in (1, 10))
    experts = [[w for w in works if w.component == "mtt:experts"] for works in (one, ten)]
    assert all(len(e) == 1 for e in experts) and experts[0] == experts[1] and experts[0][0].shared is not None
    assert _work.cell_cost(one) < _work.cell_cost(ten)  # the experts are not in a cell's own cost


def test_kd_students_of_a_group_share_the_teacher_and_a_together_key():
    config = config_class("kd_fairness").for_profile("smoke")
    study = study_module("kd_fairness").STUDY
    students = [c for c in config.cells() if c.role != "teacher"]
    works = [study.work(c) for c in students]
    teachers = {w.shared for ws in works for w in ws if w.component == "kd:teacher"}
    assert len(teachers) == len({(c.data, c.seed) for c in config.cells()})
    assert {w.together for ws in works for w in ws if w.component == "kd:student"} == {(c.data, c.seed) for c in students}


def test_probe_work_is_shared_per_probe():
    spec = config_class("bias_dd").for_profile("smoke").cells()[0].probe
    (w,) = _work.probe(spec, 100, (3, 32, 32), 10)
    t = spec.training
    assert w.shared == ("probe", spec) and w.steps == t.epochs * math.ceil(100 / t.batch_size)
    assert torch.Size(w.input_shape) == torch.Size([3, 32, 32])
