"""Tests for the DD-vs-KD comparison study (fairdd.studies.compare and its report)."""

import dataclasses

import numpy as np
import pandas as pd
import pytest
import torch

from fairdd import results
from fairdd.data import Dataset
from fairdd.studies import _dd, compare, compare_report as report


def test_cells_embed_their_configs_and_variants() -> None:
    config = compare.CompareStudyConfig.for_profile("cpu")
    cells = config.cells()
    per = 1 + len(config.dd_methods) + 2 + len(config.temperatures) * len(config.alphas) + len(config.balanced_temperatures)
    assert len(cells) == per * len(config.bias_ratios) * len(config.seeds)
    assert len({results.run_id(c) for c in cells}) == len(cells)
    by = {(c.bias_ratio, c.seed, c.compression, c.kd.temperature if c.kd else None): c for c in cells}
    r, s = config.bias_ratios[0], config.seeds[0]
    assert by[(r, s, "dm_fairdd", None)].distill.matching == "synchronized"
    assert by[(r, s, "dm_balanced", None)].distill.real_sampling == "group_balanced"
    assert by[(r, s, "dm", None)].distill == config.dm
    assert by[(r, s, "random", None)].distill is None
    assert by[(r, s, "student", 1.0)].kd.alpha == 0.0
    assert {c.kd.temperature for c in cells if c.compression == "kd"} == set(config.temperatures)
    assert {c.kd.alpha for c in cells if c.compression == "kd"} == set(config.alphas)
    assert all(c.kd.balanced_batches and c.kd.alpha == config.alphas[0] for c in cells if c.compression == "kd_balanced")
    assert not any(c.kd.balanced_batches for c in cells if c.compression in ("kd", "student", "teacher"))
    # One teacher per ratio and seed, shared by the hard-label and the distilled students.
    specs = {c.kd.teacher_spec(c.seed) for c in cells if c.kd is not None and (c.bias_ratio, c.seed) == (r, s)}
    assert len(specs) == 1
    whole = by[(r, s, "whole", None)]
    assert whole.evaluation == config.whole and whole.images_per_class is None
    assert all(c.data == config.data and c.data.bias.kind == "colour" for c in cells)


def test_config_and_cell_errors_are_clear() -> None:
    with pytest.raises(ValueError, match="dd_methods"):
        compare.CompareStudyConfig.for_profile("smoke", dd_methods=("dm", "mtt"))
    with pytest.raises(ValueError, match="temperatures"):
        compare.CompareStudyConfig.for_profile("smoke", temperatures=(4.0, 4.0))
    config = compare.CompareStudyConfig.for_profile("smoke")
    with pytest.raises(ValueError, match="KD role"):
        compare.CompareCell(data=config.data, bias_ratio=0.5, compression="kd", seed=0, evaluation=config.evaluation)
    with pytest.raises(ValueError, match="colour bias"):
        compare.CompareStudyConfig.for_profile("smoke", data=dataclasses.replace(config.data, bias=None))
    table = compare.describe_profile(config).set_index("setting")
    assert list(table.columns) == ["this build", "paper"]
    assert table.loc["bias ratios"].tolist() == ["0.1, 0.9", "0.1, 0.5, 0.8, 0.95"]
    assert table.loc["whole-set baseline (DD protocol)", "paper"] == "20 ConvNet-128×3 per set, 150 epochs, batch 256"


def _test_set(n_per: int = 20) -> tuple[Dataset, int, int]:
    g = torch.Generator().manual_seed(0)
    labels = torch.arange(4).repeat(3 * n_per)
    attributes = torch.randint(0, 4, labels.shape, generator=g)
    return Dataset("toy", "test", torch.zeros(len(labels), 1, 2, 2), labels, classes=tuple("abcd"),
                   attributes=attributes, attribute_values=tuple("wxyz")), 4 * n_per, 4 * n_per


def test_measures_of_perfect_and_of_colour_predictions() -> None:
    test, n_conf, n_aligned = _test_set()
    perfect = compare.measures(test.labels, test, n_conf, n_aligned)
    assert perfect["accuracy"] == perfect["acc_conflicting"] == perfect["worst_class"] == 1.0
    assert perfect["eod"] == 0.0 and perfect["deo_max"] == 0.0 and perfect["classwise_variance"] == 0.0
    # A model that reads the colour: right exactly where colour = label.
    colour = compare.measures(test.attributes, test, n_conf, n_aligned)
    unbiased = slice(n_conf + n_aligned, len(test))
    assert colour["accuracy"] == pytest.approx(float((test.attributes[unbiased] == test.labels[unbiased]).float().mean()))
    assert colour["deo_max"] == pytest.approx(1.0) and colour["eod"] > 0.5


def test_pareto_front_keeps_only_undominated_points() -> None:
    points = pd.DataFrame({"model": list("abcd"), "cost_s": [1.0, 2.0, 3.0, 2.5], "acc_conflicting": [0.5, 0.7, 0.6, 0.9]})
    assert list(report.pareto_front(points, "acc_conflicting")["model"]) == ["a", "b", "d"]
    lower = points.rename(columns={"acc_conflicting": "deo_mean"})
    assert list(report.pareto_front(lower, "deo_mean")["model"]) == ["a"]


def test_smoke_grid_through_the_store_and_its_report(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("FAIRDD_RESULTS", str(tmp_path))  # the KD teacher cache lives there too
    config = compare.CompareStudyConfig.for_profile("smoke", bias_ratios=(0.9,), dd_methods=("random", "dm", "dm_fairdd"))
    rows = compare.run_study(config, processes=1, root=tmp_path)
    assert len(rows) == len(config.cells())  # one evaluation network, one model per KD cell
    assert set(rows["compression"]) == {"whole", "random", "dm", "dm_fairdd", "teacher", "student", "kd", "kd_balanced"}
    assert rows[["accuracy", "acc_conflicting", "dpd", "eod", "deo_mean", "cost_s", "group_counts"]].notna().all().all()
    assert set(rows["rows_version"]) == {compare.ROWS_VERSION}
    assert len(report.summary_table(rows)) == 4 + 2 + len(config.temperatures) + len(config.balanced_temperatures)
    tests = report.mitigation_tests(rows)
    assert set(tests["mitigation"]) == {"DM + FairDD", "KD student, T = 4, α = 0.8", "KD student, balanced batches, T = 4, α = 0.8"}
    assert "Bias ratio 0.9" in report.findings(rows)
    claims = report.claims(rows)  # read back from the store: the count tables survive the CSV
    assert set(claims["verdict"]) <= {"supported", "contradicted", "absent", "untestable here"}

    def boom(*args, **kwargs):
        raise AssertionError("a finished cell was computed again")

    monkeypatch.setattr(compare, "evaluate_synthetic", boom)
    monkeypatch.setattr(_dd, "distill", boom)
    monkeypatch.setattr(compare.kd, "student", boom)
    pd.testing.assert_frame_equal(compare.run_study(config, processes=1, root=tmp_path), rows)


def test_side_by_side_trains_a_ratio_and_seeds_students_together_per_protocol(tmp_path, monkeypatch) -> None:
    """side_by_side: per ratio and seed one fit_many for the plain students (hard-label and every
    T × α) and one for the group-balanced ones (here one, trained alone: the skeleton's fallback),
    and each DD evaluation's networks side by side;
    rows equal the one-by-one study's within float tolerance; students and DD cells get run ids
    of their own, teachers keep theirs."""
    monkeypatch.setenv("FAIRDD_RESULTS", str(tmp_path))
    config = compare.CompareStudyConfig.for_profile("smoke", bias_ratios=(0.9,), dd_methods=("random",))
    calls: list[int] = []
    real = compare.kd.fit_many

    def spy(models, *args, **kwargs):
        calls.append(len(models))
        return real(models, *args, **kwargs)

    monkeypatch.setattr(compare.kd, "fit_many", spy)
    alone = compare.run_study(config, processes=1, root=tmp_path / "a")
    together = compare.run_study(dataclasses.replace(config, side_by_side=True), processes=1, root=tmp_path / "b")
    plain = 1 + len(config.temperatures) * len(config.alphas)
    assert len(config.balanced_temperatures) == 1  # the one group-balanced student of a seed is trained alone
    assert calls == [plain] * len(config.seeds)
    students = together["compression"].isin(compare.STUDENTS)
    teachers = together["compression"] == "teacher"
    assert set(together.loc[students, "side_by_side"]) == {True}
    assert set(together.loc[~students & ~teachers, "evaluation.side_by_side"]) == {True}
    assert not set(alone.loc[~teachers, "run_id"]) & set(together.loc[~teachers, "run_id"])
    assert alone.loc[teachers, "run_id"].tolist() == together.loc[teachers, "run_id"].tolist()
    for column in ("accuracy", "acc_conflicting", "dpd", "eod"):
        np.testing.assert_allclose(together[column], alone[column], atol=0.03)
    assert not any((tmp_path / "b" / "compare_dd_kd" / "checkpoints").glob("*/students.pt"))
    with pytest.raises(ValueError, match="for the students"):
        dataclasses.replace(config.cells()[0], side_by_side=True)
