"""fairdd.studies.compare_report on constructed rows: noise floors, units, verdicts, claims (issue 23)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from fairdd import stats
from fairdd.data import Dataset
from fairdd.studies import compare, compare_report as report

K = 4  # classes = colours


def _test_set(per_cell: int = 12) -> tuple[Dataset, int, int]:
    """Conflicting, aligned and unbiased splits of a 4-class, 4-colour toy test set (as compare's)."""
    g = torch.Generator().manual_seed(0)
    n = K * K * per_cell
    labels = torch.arange(K).repeat(3 * n // K)
    attributes = torch.randint(0, K, labels.shape, generator=g)
    return Dataset("toy", "test", torch.zeros(len(labels), 1, 2, 2), labels, classes=tuple("abcd"),
                   attributes=attributes, attribute_values=tuple("wxyz")), n, n


def _predict(test: Dataset, rng: np.random.Generator, *, accuracy: float, colour: float = 0.0,
             class_accuracy: dict[int, float] | None = None) -> torch.Tensor:
    """Right with probability ``accuracy`` (per class where ``class_accuracy`` says), else a wrong
    class; and, with probability ``colour``, the example's colour instead (a colour-reading model)."""
    y = test.labels.numpy()
    p_right = np.array([(class_accuracy or {}).get(int(c), accuracy) for c in y])
    right = rng.random(len(y)) < p_right
    wrong = (y + rng.integers(1, K, len(y))) % K
    pred = np.where(right, y, wrong)
    pred = np.where(rng.random(len(y)) < colour, test.attributes.numpy(), pred)
    return torch.as_tensor(pred)


def _rows(kinds: dict[str, dict], *, seeds: int = 5, networks: int = 2, ratio: float = 0.9,
          seed_offsets: dict[str, np.ndarray] | None = None, per_cell: int = 12) -> pd.DataFrame:
    """One row per model as compare.cell_rows gives them: ``kinds`` maps a compression to
    :func:`_predict`'s options; DD kinds get ``networks`` models per seed."""
    test, n_conf, n_aligned = _test_set(per_cell)
    rng = np.random.default_rng(1)
    out = []
    for compression, options in kinds.items():
        for s in range(seeds):
            opts = dict(options)
            if seed_offsets and compression in seed_offsets:
                opts["accuracy"] = opts["accuracy"] + seed_offsets[compression][s]
            for net in range(networks if compression in compare.DD_METHODS else 1):
                m = compare.measures(_predict(test, rng, **opts), test, n_conf, n_aligned)
                out.append({"compression": compression, "bias_ratio": ratio, "seed": s, "network": net,
                            "temperature": np.nan, "alpha": np.nan, "cost_s": 1.0 + s, **m})
    return pd.DataFrame(out)


def test_measures_store_the_count_table_of_the_unbiased_split() -> None:
    test, n_conf, n_aligned = _test_set()
    pred = _predict(test, np.random.default_rng(0), accuracy=0.8)
    m = compare.measures(pred, test, n_conf, n_aligned)
    counts = stats.counts_from_json(m["group_counts"], num_classes=K, num_groups=K)
    assert counts.sum() == len(test) - n_conf - n_aligned
    assert stats.group_measure(counts, "accuracy") == pytest.approx(m["accuracy"])
    assert stats.group_measure(counts, "deo_mean") == pytest.approx(m["deo_mean"])
    assert stats.group_measure(counts, "deo_max") == pytest.approx(m["deo_max"])


def test_a_colour_blind_kind_is_within_the_floor_and_a_colour_reading_one_is_not() -> None:
    rows = _rows({"teacher": {"accuracy": 0.9}, "dm": {"accuracy": 0.9, "colour": 0.6}}, seeds=2, networks=1)
    checks = report.floor_checks(rows, resamples=200)
    assert set(checks["measure"]) == {"deo_max", "deo_mean"} and len(checks) == 2 * len(rows)
    table = report.floor_table(checks).set_index(["model", "measure"])
    assert table.loc[(compare.LABELS["teacher"], "DEO_A (%)"), "mark"] == "within the noise floor"
    assert table.loc[(compare.LABELS["dm"], "DEO_A (%)"), "mark"] == "above the noise floor"
    assert table.loc[(compare.LABELS["dm"], "DEO_A (%)"), "models within the floor"] == "0 of 2"
    # The floor case: every kind blind to the colour, so the DEO front re-plots accuracy, and the
    # page says so (generated from the checks), and only then.
    blind = _rows({"teacher": {"accuracy": 0.95}, "dm": {"accuracy": 0.7}, "random": {"accuracy": 0.5}},
                  seeds=2, networks=1)
    text = report.findings(blind, report.floor_checks(blind, resamples=200))
    assert "DEO_A is within its noise floor for 3 of 3 model kinds, so this front re-plots accuracy" in text
    assert "re-plots accuracy" not in report.findings(rows, checks)


def test_classes_harmed_use_the_set_as_unit_and_tell_absolute_from_relative() -> None:
    # A uniformly weaker DD set harms every class in absolute accuracy but none relative to its own
    # accuracy; one whose class 0 alone drops harms class 0 in both forms.
    rows = _rows({"teacher": {"accuracy": 0.95}, "random": {"accuracy": 0.6},
                  "dm": {"accuracy": 0.95, "class_accuracy": {0: 0.5}}}, seeds=5, networks=2, per_cell=60)
    table = report.classes_harmed(rows).set_index(["model", "form"])
    uniform = table.loc[(compare.LABELS["random"], "absolute")]
    assert uniform["units (model / reference)"] == "5 / 5"  # 10 models, 5 sets: the set is the unit
    assert uniform["classes harmed (Holm)"] == K and uniform["verdict: harms a class"] == "supported"
    assert table.loc[(compare.LABELS["random"], "relative"), "classes harmed (Holm)"] == 0
    assert table.loc[(compare.LABELS["dm"], "absolute"), "classes harmed (Holm)"] >= 1
    assert table.loc[(compare.LABELS["dm"], "relative"), "verdict: harms a class"] == "supported"
    assert set(table["verdict: harms a class"]) <= set(stats.VERDICTS)
    assert (table["reason"].str.len() > 0).all()


def test_pseudo_replicated_networks_do_not_count_as_observations() -> None:
    # Two networks per set that agree closely, sets that differ widely: the unit test sees 3 sets
    # against 3 teachers. Counting the 6 networks as observations would make the spread look smaller.
    offsets = {"dm": np.array([-0.25, 0.0, 0.2])}
    rows = _rows({"teacher": {"accuracy": 0.9}, "dm": {"accuracy": 0.75}}, seeds=3, networks=2, seed_offsets=offsets)
    units = stats.unit_means(report._keyed(rows), unit=report.UNIT, value="accuracy")
    assert units.loc[units["compression"] == "dm", "replicates"].tolist() == [2, 2, 2]
    table = report.summary_table(rows).set_index("model")
    assert table.loc[compare.LABELS["dm"], "units"] == 3 and table.loc[compare.LABELS["dm"], "models"] == 6


def test_mitigation_verdicts_in_four_classes_with_floor_and_equivalence() -> None:
    rows = _rows({
        "dm": {"accuracy": 0.6, "colour": 0.5},  # reads the colour: high DEO, low conflicting accuracy
        "dm_balanced": {"accuracy": 0.9},  # blind to the colour
        "dm_fairdd": {"accuracy": 0.6, "colour": 0.5},  # the same as DM
    }, seeds=5, networks=2)
    checks = report.floor_checks(rows, resamples=200)
    tests = report.mitigation_tests(rows, checks).set_index(["mitigation", "against", "measure"])
    dm, bal, fair = (compare.LABELS[m] for m in ("dm", "dm_balanced", "dm_fairdd"))
    acc, deo = report.MEASURES["acc_conflicting"][0], report.MEASURES["deo_mean"][0]
    assert tests.loc[(bal, dm, acc), "verdict: improves"] == "supported"
    assert tests.loc[(bal, dm, deo), "verdict: improves"] == "supported"
    assert tests.loc[(fair, bal, acc), "verdict: improves"] == "contradicted"
    assert tests.loc[(fair, dm, acc), "verdict: improves"] in ("absent", "untestable here")
    assert tests.loc[(bal, dm, acc), "MDE"] > 0 and tests.loc[(bal, dm, acc), "units"] == "5 / 5"
    assert set(tests["verdict: improves"]) <= set(stats.VERDICTS)
    # Both sides blind to the colour: DEO_A is within the floor, the comparison untestable.
    blind = _rows({"dm": {"accuracy": 0.8}, "dm_balanced": {"accuracy": 0.8}}, seeds=3, networks=1)
    t = report.mitigation_tests(blind, report.floor_checks(blind, resamples=200)).set_index("measure")
    assert t.loc[deo, "verdict: improves"] == "untestable here"
    assert "noise floor" in t.loc[deo, "reason"]


def test_claims_table_has_the_claim_columns_first_and_judges_fairdd() -> None:
    rows = _rows({"dm": {"accuracy": 0.5, "colour": 0.6}, "dm_fairdd": {"accuracy": 0.9}}, seeds=4, networks=2)
    claims = report.claims(rows)
    assert list(claims.columns[: len(stats.CLAIM_COLUMNS)]) == list(stats.CLAIM_COLUMNS)
    assert set(claims["chapter"]) == {"compare_dd_kd"} and claims["paper"].str.contains("Zhou").all()
    dm = claims[claims["claim"].str.startswith("DM + FairDD")].set_index("claim")
    assert dm.loc["DM + FairDD vs DM: fairer", "verdict"] == "supported"
    assert dm.loc["DM + FairDD vs DM: accuracy", "verdict"] == "supported"
    assert dm["n"].tolist() == ["4 / 4", "4 / 4"]
    dc = claims[claims["claim"].str.startswith("DC + FairDD")]
    assert len(dc) == 2 and set(dc["verdict"]) == {"untestable here"} and dc["dataset"].str.contains("not run").all()
    # The page passes its checks, the replication summary does not: the same verdicts.
    pd.testing.assert_frame_equal(claims, report.claims(rows, report.floor_checks(rows)))
    table = stats.answerable(claims)
    assert len(table) == len(claims)


def test_batch_analysis_on_the_smoke_profile() -> None:
    config = compare.CompareStudyConfig.for_profile("smoke")
    table = report.batch_analysis(config).set_index("bias ratio")
    biased = table.loc[0.9]
    assert biased["largest colour's weight, DM (%)"] == pytest.approx(90.0)
    # FairDD's expected target lies between DM's and balanced sampling's, its step below |G|.
    assert (biased["largest colour's weight, DM + balanced sampling (%)"]
            < biased["largest colour's weight, DM + FairDD (%)"] < biased["largest colour's weight, DM (%)"])
    assert 1 <= biased["FairDD's step (× DM's), uniform batches"] < biased["FairDD's step (× DM's), balanced batches"]
