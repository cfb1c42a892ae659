"""The methods page's study: its cells embed every config that sets a result."""

import dataclasses

import pandas as pd
import pytest

from fairdd import results
from fairdd.distill import config_for
from fairdd.studies import methods


def test_cells_embed_the_method_and_evaluation_configs():
    config = methods.MethodsStudyConfig.for_profile("smoke")
    cells = config.cells()
    assert len(cells) == len(set(cells)) == len(config.methods) * len(config.seeds)  # IPC (1,): one size
    dm = next(c for c in cells if c.method == "dm")
    assert dm.distill == config_for("dm", "smoke") and dm.evaluation.dsa == dm.distill.augment
    assert dm.evaluation.network.width == config.eval_width and dm.evaluation.epochs == config.eval_epochs
    whole = next(c for c in cells if c.method == "whole")
    assert whole.images_per_class is None and whole.distill is None and whole.evaluation.num_networks == 1


def test_a_changed_method_config_is_a_new_run():
    # Before the skeleton, the cell held only the profile's name, so an edited profile reused stale runs.
    cell = next(c for c in methods.MethodsStudyConfig.for_profile("smoke").cells() if c.method == "dm")
    edited = dataclasses.replace(cell, distill=dataclasses.replace(cell.distill, iterations=cell.distill.iterations + 1))
    assert results.run_id(edited) != results.run_id(cell)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [({"methods": ("dm", "bogus")}, "methods"), ({"seeds": (0, 0)}, "seeds"), ({"eval_width": 0}, "eval_width"),
     ({"images_per_class": ()}, "images_per_class"), ({"profile": "gpu"}, "profile")],
)
def test_bad_config_names_the_field(kwargs, field):
    with pytest.raises(ValueError, match=field):
        methods.MethodsStudyConfig(**{"profile": "smoke", **kwargs})


def test_cell_validation():
    cell = next(c for c in methods.MethodsStudyConfig.for_profile("smoke").cells() if c.method == "random")
    with pytest.raises(ValueError, match="distill"):
        dataclasses.replace(cell, distill=config_for("dm", "smoke"))
    with pytest.raises(ValueError, match="images_per_class"):
        dataclasses.replace(cell, images_per_class=None)


def test_paper_comparison_is_computed_from_the_rows():
    rows = pd.DataFrame([
        {"method": m, "images_per_class": ipc, "seed": s, "network": 0, "accuracy": acc, "distill_time_s": 1.0}
        for m, ipc, acc in (("dc", 1, 0.60), ("dm", 1, 0.70), ("random", 1, 0.50)) for s in (0, 1)
    ])
    text = methods.paper_comparison(rows)
    assert text == "Against the published full-protocol numbers: DC at IPC 1: ours 60.0 %, the paper's 70.5 % (-10.5 points)."
    assert "None of this run's" in methods.paper_comparison(rows[rows["method"] != "dc"])


def test_cpu_budget_overrides_reach_only_their_cells_and_bad_ones_are_named() -> None:
    import pytest

    from fairdd.studies.methods import MethodsStudyConfig, protocol_table

    config = MethodsStudyConfig.for_profile("cpu")
    by = {(c.method, c.images_per_class): c.distill for c in config.cells() if c.distill is not None}
    assert by[("dc", 10)].loops_for(10) == (1, 1) and by[("dsa", 10)].loops_for(10) == (1, 1)
    assert by[("mtt", 10)].iterations == 50 and by[("mtt", 1)].iterations == 100
    assert by[("dm", 10)].iterations == by[("dm", 1)].iterations
    table = protocol_table(config)
    assert len(table) == 8 and set(table["method"]) == {"dc", "dsa", "dm", "mtt"}
    for bad in ({"mtt_iterations": ((10, 0),)}, {"mtt_iterations": ((10, 5), (10, 6))}, {"dc_loops": ((10, 1),)}):
        with pytest.raises(ValueError, match=next(iter(bad))):
            MethodsStudyConfig.for_profile("cpu", **bad)


def test_eval_batched_reaches_every_cells_evaluation_and_only_then_changes_run_ids() -> None:
    from fairdd.studies import classwise

    for module, config in ((methods, methods.MethodsStudyConfig.for_profile("paper")),
                           (classwise, classwise.ClasswiseStudyConfig.for_profile("paper"))):
        on = dataclasses.replace(config, eval_batched=True)
        cells, batched_cells = config.cells(), on.cells()
        evaluations = lambda cell: getattr(cell, "evaluations", None) or (cell.evaluation,)  # noqa: E731
        assert not any(e.batched for c in cells for e in evaluations(c))
        assert all(e.batched for c in batched_cells for e in evaluations(c)), module
        assert not {results.run_id(c) for c in cells} & {results.run_id(c) for c in batched_cells}
        with pytest.raises(ValueError, match="eval_batched"):
            dataclasses.replace(config, eval_batched="yes")
