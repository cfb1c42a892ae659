"""The methods page's study: its cells embed every config that sets a result."""

import dataclasses

import pandas as pd
import pytest
import torch

from fairdd import results
from fairdd.data import StudyData, load_dataset, normalize_splits, stratified_subset
from fairdd.distill import DMConfig
from fairdd.studies import methods


def test_cells_embed_the_method_and_evaluation_configs():
    config = methods.MethodsStudyConfig.for_profile("smoke")
    cells = config.cells()
    assert len(cells) == len(set(cells)) == len(config.methods) * len(config.seeds)  # IPC (1,): one size
    dm = next(c for c in cells if c.method == "dm")
    assert dm.distill == config.dm and dm.evaluation.dsa == dm.distill.augment
    assert dm.evaluation.network == dataclasses.replace(config.dm.network, width=config.evaluation.network.width)
    assert dm.evaluation.epochs == config.evaluation.epochs  # smoke: no separate DSA protocol
    assert all(c.data == config.data for c in cells)
    whole = next(c for c in cells if c.method == "whole")
    assert whole.images_per_class is None and whole.distill is None and whole.evaluation == config.whole
    random = next(c for c in cells if c.method == "random")
    assert random.evaluation == config.evaluation


def test_paper_profile_evaluates_dsa_sets_on_the_dsa_protocol():
    config = methods.MethodsStudyConfig.for_profile("paper")
    by = {c.method: c.evaluation for c in config.cells() if c.images_per_class in (1, None)}
    assert by["dc"].epochs == by["random"].epochs == 300 and not by["dc"].dsa
    assert all(by[m].epochs == 1000 and by[m].dsa for m in ("dsa", "dm", "mtt"))
    assert all(e.num_networks == 20 and e.network.width == 128 for m, e in by.items() if m != "whole")
    assert by["whole"].epochs == 20 and config.data == StudyData("fashion_mnist")


def test_a_changed_method_config_is_a_new_run():
    # Before the skeleton, the cell held only the profile's name, so an edited profile reused stale runs.
    cell = next(c for c in methods.MethodsStudyConfig.for_profile("smoke").cells() if c.method == "dm")
    edited = dataclasses.replace(cell, distill=dataclasses.replace(cell.distill, iterations=cell.distill.iterations + 1))
    assert results.run_id(edited) != results.run_id(cell)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [({"methods": ("dm", "bogus")}, "methods"), ({"seeds": (0, 0)}, "seeds"), ({"evaluation": 32}, "evaluation"),
     ({"images_per_class": ()}, "images_per_class"), ({"profile": "gpu"}, "profile"), ({"dm": "dm"}, "dm"), ({"data": "mnist"}, "data"), ({"whole": None}, "whole"),
     ({"side_by_side": "yes"}, "side_by_side"), ({"images_per_class": (7,)}, "loops")],
)
def test_bad_config_names_the_field(kwargs, field):
    with pytest.raises(ValueError, match=field):
        methods.MethodsStudyConfig(**{"profile": "smoke", **kwargs})


def test_cell_validation():
    cell = next(c for c in methods.MethodsStudyConfig.for_profile("smoke").cells() if c.method == "random")
    with pytest.raises(ValueError, match="distill"):
        dataclasses.replace(cell, distill=DMConfig())
    with pytest.raises(ValueError, match="images_per_class"):
        dataclasses.replace(cell, images_per_class=None)
    with pytest.raises(ValueError, match="data"):
        dataclasses.replace(cell, data=StudyData("adult", attributes=("sex",)))


def test_the_data_are_the_specs_stratified_subsets():
    """Smoke reads a class-stratified subset (StudyData.load), not the first rows; cpu all rows."""
    cell = methods.MethodsStudyConfig.for_profile("smoke").cells()[0]
    train, test, _ = methods._data(cell)
    assert torch.bincount(train.labels).tolist() == [60] * 10 and torch.bincount(test.labels).tolist() == [50] * 10
    raw = stratified_subset(load_dataset("fashion_mnist", "train"), 60, cell.data.data_seed)
    expected, _, _ = normalize_splits(raw, raw)
    assert torch.equal(train.inputs, expected.inputs)
    cpu = methods.MethodsStudyConfig.for_profile("cpu").cells()[0]
    assert cpu.data == StudyData("fashion_mnist")


def test_paper_comparison_is_computed_from_the_rows():
    rows = pd.DataFrame([
        {"method": m, "images_per_class": ipc, "seed": s, "network": 0, "accuracy": acc, "distill_time_s": 1.0}
        for m, ipc, acc in (("dc", 1, 0.60), ("dm", 1, 0.70), ("random", 1, 0.50)) for s in (0, 1)
    ])
    text = methods.paper_comparison(rows)
    assert text == "Against the published full-protocol numbers: DC at IPC 1: ours 60.0 %, the paper's 70.5 % (-10.5 points)."
    assert "None of this run's" in methods.paper_comparison(rows[rows["method"] != "dc"])


def test_cpu_budget_overrides_reach_only_their_cells_and_bad_ones_are_named() -> None:
    from fairdd.studies.methods import MethodsStudyConfig, describe_profile

    config = MethodsStudyConfig.for_profile("cpu")
    by = {(c.method, c.images_per_class): c.distill for c in config.cells() if c.distill is not None}
    assert by[("dc", 10)].loops_for(10) == (1, 1) and by[("dsa", 10)].loops_for(10) == (1, 1)
    assert by[("dc", 1)].loops_for(1) == (1, 1) and config.dc.loops_for(10) == (5, 5)
    assert by[("mtt", 10)].iterations == 50 and by[("mtt", 1)].iterations == 100
    assert by[("dm", 10)].iterations == by[("dm", 1)].iterations == 300
    table = describe_profile(config)
    assert list(table.columns) == ["setting", "this build", "paper"]
    mine = dict(zip(table["setting"], table["this build"]))
    assert "50 iterations" in mine["MTT at IPC 10"] and "loops 1/1" in mine["DC at IPC 10"]
    assert "loops 10/50" in dict(zip(table["setting"], table["paper"]))["DSA at IPC 10"]
    for bad in ({"mtt_iterations": ((10, 0),)}, {"mtt_iterations": ((10, 5), (10, 6))}, {"dc_loops": ((10, 1),)}):
        with pytest.raises(ValueError, match=next(iter(bad))):
            MethodsStudyConfig.for_profile("cpu", **bad)


def test_side_by_side_reaches_every_cells_evaluation_and_only_then_changes_run_ids() -> None:
    from fairdd.studies import bias, classwise

    for module, config in ((methods, methods.MethodsStudyConfig.for_profile("paper")),
                           (classwise, classwise.ClasswiseStudyConfig.for_profile("paper")),
                           (bias, bias.BiasStudyConfig.for_profile("paper", corruption_source="cifar10"))):
        on = dataclasses.replace(config, side_by_side=True)
        cells, together = config.cells(), on.cells()
        evaluations = lambda cell: getattr(cell, "evaluations", None) or (cell.evaluation,)  # noqa: E731
        assert not any(e.side_by_side for c in cells for e in evaluations(c))
        assert all(e.side_by_side for c in together for e in evaluations(c)), module
        assert not {results.run_id(c) for c in cells} & {results.run_id(c) for c in together}
        with pytest.raises(ValueError, match="side_by_side"):
            dataclasses.replace(config, side_by_side="yes")
