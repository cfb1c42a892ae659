"""Tests for the dataset-bias chapter's report (fairdd.studies.bias_report): the claims' four
verdict classes, the experimental unit, the aligned gap's noise floor and the stored count tables."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from fairdd import stats
from fairdd.studies import bias, bias_report

K = 10  # classes = bias attribute values


def _test_split(seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Labels and attributes of a toy test set laid out like the study's: a bias-conflicting half
    (attribute != label) and a bias-aligned half (attribute == label), 50 per class each."""
    rng = np.random.default_rng(seed)
    labels = np.tile(np.repeat(np.arange(K), 50), 2)
    half = labels.size // 2
    attributes = labels.copy()
    attributes[:half] = (labels[:half] + 1 + rng.integers(0, K - 1, half)) % K
    return labels, attributes


def _counts(kind: str, seed: int) -> str:
    """A network's stored count table: ``"blind"`` is right 80 % of the time whatever the
    attribute; ``"shortcut"`` predicts the attribute 90 % of the time."""
    rng = np.random.default_rng(100 + seed)
    labels, attributes = _test_split(seed)
    if kind == "blind":
        wrong = (labels + 1 + rng.integers(0, K - 1, labels.size)) % K
        pred = np.where(rng.random(labels.size) < 0.8, labels, wrong)
    else:
        pred = np.where(rng.random(labels.size) < 0.9, attributes, labels)
    return stats.counts_to_json(stats.group_counts(labels, pred, attributes, num_classes=K, num_groups=K))


def _rows(acc: dict[tuple[str, float], list[float]], aligned: dict[tuple[str, float], float] | None = None, *,
          networks: int = 1, counts: dict[tuple[str, float], str] | None = None) -> pd.DataFrame:
    """Rows of the study's shape: per (method, ratio) one bias-conflicting accuracy per seed,
    ``networks`` evaluation networks per set (spread ±0.001 around it)."""
    aligned = aligned or {}
    out = []
    for (method, ratio), values in acc.items():
        for seed, value in enumerate(values):
            for net in range(networks):
                row = {
                    "dataset": "toy", "method": method, "bias_ratio": ratio, "seed": seed, "network": net,
                    "acc_conflicting": value + 0.001 * (net - (networks - 1) / 2), "acc_aligned": 0.99,
                    "aligned_fraction": aligned.get((method, ratio), ratio) + 0.01 * seed,
                    "attribute_entropy": 1.0 - aligned.get((method, ratio), ratio) - 0.01 * seed,
                    "pairwise_distance": 1.0,
                }
                if counts is not None:
                    row["group_counts"] = _counts(counts.get((method, ratio), "blind"), seed)
                out.append(row)
    return pd.DataFrame(out)


def _verdicts(table: pd.DataFrame) -> dict[int, str]:
    return dict(zip(table["claim"], table["verdict"]))


# --------------------------------------------------------------------------- count tables


def test_stored_count_tables_of_a_smoke_cell(tmp_path) -> None:
    """cell_rows stores each network's predictions as a valid (10, 10, 10) count table over both
    test splits whose aligned gap and accuracies are the row's own."""
    config = bias.BiasStudyConfig.for_profile("smoke", corruption_source="fashion_mnist")
    cell = config.cell("colour", 0.8, "random", 0)
    rows = bias.cell_rows(cell, root=tmp_path)
    assert rows and all("predictions" not in r for r in rows)
    for row in rows:
        counts = stats.counts_from_json(row["group_counts"], num_classes=K, num_groups=K)
        assert counts.sum() == 2 * K * cell.data.test_per_class  # both splits
        gap = stats.group_measure(counts, "aligned_gap")
        assert gap == pytest.approx(row["acc_aligned"] - row["acc_conflicting"], abs=1e-6)
        hits = np.diagonal(counts, axis1=1, axis2=2)
        eye = np.eye(K, dtype=bool)
        assert hits[~eye].sum() / counts.sum(axis=2)[~eye].sum() == pytest.approx(row["acc_conflicting"], abs=1e-6)


def test_damaged_count_table_is_refused() -> None:
    rows = _rows({("dm", 0.1): [0.9, 0.9]}, counts={})
    rows.loc[0, "group_counts"] = "[[1, 2]]"
    with pytest.raises(ValueError, match="shape"):
        bias_report.aligned_gap_checks(rows)
    with pytest.raises(KeyError, match="group_counts"):
        bias_report.aligned_gap_checks(rows.drop(columns="group_counts"))


def test_aligned_gap_floor_separates_a_blind_network_from_a_shortcut() -> None:
    rows = _rows({("dm", 0.1): [0.9, 0.9, 0.9], ("dm", 0.95): [0.2, 0.2, 0.2]},
                 counts={("dm", 0.1): "blind", ("dm", 0.95): "shortcut"})
    checks = bias_report.aligned_gap_checks(rows)
    assert list(checks.columns[:5]) == list(bias_report.GAP_KEYS)
    blind, shortcut = checks[checks["bias_ratio"] == 0.1], checks[checks["bias_ratio"] == 0.95]
    assert blind["within_floor"].all() and not shortcut["within_floor"].any()
    assert (shortcut["value"] > 0.8).all() and (blind["value"].abs() < 0.1).all()
    table = bias_report.aligned_gap_table(checks)
    assert table.loc[("toy", "DM"), "r = 0.1"].endswith("≈ floor")
    assert "≈ floor" not in table.loc[("toy", "DM"), "r = 0.95"]


# ------------------------------------------------------------------------------- verdicts


def test_claims_reach_every_verdict_class_with_reasons() -> None:
    base = {("whole", 0.95): [0.50, 0.52, 0.51], ("whole", 1.0): [0.10, 0.11, 0.09], ("random", 0.95): [0.25, 0.24, 0.26]}
    # Supported: accuracy falls with the ratio; the sets encode the attribute; DM beats the whole set.
    acc = {("dm", 0.1): [0.90, 0.91, 0.89], ("dm", 0.95): [0.30, 0.32, 0.28], ("dm", 1.0): [0.20, 0.21, 0.19], **base}
    shortcut = {("dm", 0.95): "shortcut"}
    table = bias_report.claims(_rows(acc, {("dm", 0.95): 0.97, ("random", 0.95): 0.9}, counts=shortcut))
    assert _verdicts(table) == {1: "supported", 2: "supported", 3: "supported"}
    assert ": more bias than the data" in table.loc[table["claim"] == 2, "evidence"].item()
    assert "0 of 3 networks' aligned gaps are within the noise floor" in table.loc[table["claim"] == 2, "evidence"].item()
    # Contradicted: accuracy rises with the ratio, the attribute measures move the other way,
    # the whole set wins.
    acc = {("dm", 0.1): [0.50, 0.51, 0.49], ("dm", 0.95): [0.90, 0.92, 0.91], ("dm", 1.0): [0.05, 0.06, 0.04],
           **base, ("whole", 0.95): [0.95, 0.96, 0.97]}
    table = bias_report.claims(_rows(acc, {("dm", 0.1): 0.5, ("dm", 0.95): 0.05}, counts=shortcut))
    assert _verdicts(table) == {1: "contradicted", 2: "contradicted", 3: "contradicted"}
    # Absent: equal within a tight spread, well inside the 5-point margin.
    acc = {("dm", 0.1): [0.700, 0.702, 0.698], ("dm", 0.95): [0.701, 0.699, 0.700], **base}
    table = bias_report.claims(_rows(acc))
    assert _verdicts(table)[1] == "absent"
    assert "5" in table.loc[table["claim"] == 1, "reason"].item()
    # Untestable: too noisy to tell either way (inconclusive, with the MDE) ...
    acc = {("dm", 0.1): [0.9, 0.3, 0.6], ("dm", 0.95): [0.7, 0.2, 0.8], **base}
    table = bias_report.claims(_rows(acc))
    row = table[table["claim"] == 1].iloc[0]
    assert row["verdict"] == "untestable here" and "inconclusive" in row["reason"]
    assert row["mde"] > abs(row["effect"])
    # ... and claim 2 when every distilled network's aligned gap at the high ratio is within its floor.
    acc = {("dm", 0.1): [0.90, 0.91, 0.89], ("dm", 0.95): [0.30, 0.32, 0.28], **base}
    table = bias_report.claims(_rows(acc, {("dm", 0.95): 0.97}, counts={("dm", 0.95): "blind"}))
    row = table[table["claim"] == 2].iloc[0]
    assert row["verdict"] == "untestable here" and "noise floor" in row["reason"]
    # Missing settings: untestable, saying what is needed.
    table = bias_report.claims(_rows({("dm", 0.5): [0.5, 0.6]}))
    assert set(table["verdict"]) == {"untestable here"}
    assert bias_report.NEEDS_LOW_HIGH in table.loc[table["claim"] == 1, "evidence"].item()


def test_claims_table_shape_for_the_replication_summary() -> None:
    acc = {("dm", 0.1): [0.90, 0.91, 0.89], ("dm", 0.95): [0.30, 0.32, 0.28], ("dm", 1.0): [0.20, 0.21, 0.19],
           ("whole", 0.95): [0.50, 0.52, 0.51], ("whole", 1.0): [0.10, 0.11, 0.09]}
    table = bias_report.claims(_rows(acc))
    assert tuple(table.columns[: len(stats.CLAIM_COLUMNS)]) == stats.CLAIM_COLUMNS
    assert set(table["paper"]) == {"Lu et al."} and set(table["chapter"]) == {"bias_dd"}
    assert set(table["verdict"]) <= set(stats.VERDICTS)
    assert table["reason"].str.len().min() > 0 and table["paper_effect"].isna().all()
    one = table[table["claim"] == 1].iloc[0]
    effect, low, high = stats.welch_interval([90, 91, 89], [30, 32, 28])
    assert one["effect"] == pytest.approx(effect) and one["ci_low"] == pytest.approx(low)
    sd = np.sqrt((np.var([90, 91, 89], ddof=1) + np.var([30, 32, 28], ddof=1)) / 2)
    assert one["mde"] == pytest.approx(stats.minimum_detectable_effect(3, 3, sd))
    answer = bias_report.answerable(table)
    assert set(answer["detectable"]) == {"–"}  # the paper's tables are not available: no effect size
    assert list(answer["verdict"]) == list(table["verdict"])


def test_the_set_is_the_unit_not_its_networks() -> None:
    # Four networks per set: pooled as 12 independent observations per ratio the drop looks
    # significant; the sets (3 per ratio) are the unit, and on them it is not.
    acc = {("dm", 0.1): [0.80, 0.60, 0.70], ("dm", 0.95): [0.62, 0.52, 0.66]}
    rows = _rows(acc, networks=4)
    pooled = stats.welch(100 * rows.loc[rows["bias_ratio"] == 0.1, "acc_conflicting"],
                         100 * rows.loc[rows["bias_ratio"] == 0.95, "acc_conflicting"])
    units = stats.welch([80, 60, 70], [62, 52, 66])
    assert pooled < 0.05 < units
    row = bias_report.claims(rows).set_index("claim").loc[1]
    assert row["n"] == "3 + 3" and row["verdict"] == "untestable here"
    assert f"p = {units:.2g}" in row["evidence"]


def test_claim_three_is_holm_corrected_over_methods_and_ratios() -> None:
    # One method ahead of the whole set by a margin whose raw one-sided Welch p is below 0.05
    # but above 0.05 / 6: alone it is supported; among six tests (3 methods × 2 ratios) it is not.
    ahead = [0.55, 0.60, 0.65]
    whole = [0.50, 0.51, 0.52]
    raw = stats.welch(ahead, whole, alternative="larger")
    assert 0.05 / 6 < raw < 0.05
    acc = {("dm", 0.95): ahead, ("whole", 0.95): whole}
    one = bias_report.claims(_rows(acc))
    assert one.loc[one["claim"] == 3, "verdict"].item() == "supported"
    behind = [0.499, 0.5, 0.501]
    acc.update({("dc", 0.95): behind, ("dsa", 0.95): behind, ("whole", 1.0): whole,
                ("dm", 1.0): behind, ("dc", 1.0): behind, ("dsa", 1.0): behind})
    six = bias_report.claims(_rows(acc))
    row = six[six["claim"] == 3].iloc[0]
    assert row["verdict"] != "supported" and row["tests"] == 6
    assert "6 tests" in row["evidence"]


def test_summary_and_debias_tables() -> None:
    acc = {
        ("dm", 0.5): [0.60, 0.62, 0.61], ("dm_balanced", 0.5): [0.80, 0.82, 0.81],
        ("random", 0.5): [0.5, 0.5, 0.5], ("random_balanced", 0.5): [0.7, 0.7, 0.7],
    }
    rows = _rows(acc, {})
    table = bias_report.summary_table(rows)
    assert table.loc[("toy", "DM"), "r = 0.5"] == "61.0 ± 1.0"
    comparison = bias_report.debias_comparison(rows)
    assert comparison["gain"].item() == pytest.approx(20.0)
    assert bool(comparison["better"].item())
    assert comparison["random_balanced"].item() == pytest.approx(70.0)
    text = bias_report.findings(rows)
    assert "balanced DM beats plain DM at r = 0.5 by +20.0 to +20.0 points" in text
    assert "balancing the random starting subset alone gains +20.0 to +20.0 points" in text
    assert "DM 61.0 % against 50.0 % for a random real subset" in text
    assert "**untestable here**" in text  # the claims need ratios 0.1 and above


def test_findings_count_networks_within_the_floor() -> None:
    acc = {("dm", 0.1): [0.90, 0.91, 0.89], ("dm", 0.95): [0.30, 0.32, 0.28]}
    text = bias_report.findings(_rows(acc, counts={("dm", 0.95): "shortcut"}))
    assert "toy: 3 of 6 networks' aligned gaps are within their noise floor (at r = 0.1)." in text


def test_claims_reuse_the_page_checks_and_refuse_partial_ones() -> None:
    acc = {("dm", 0.1): [0.90, 0.91, 0.89], ("dm", 0.95): [0.30, 0.32, 0.28]}
    rows = _rows(acc, counts={("dm", 0.95): "shortcut"})
    checks = bias_report.aligned_gap_checks(rows)
    assert bias_report.claims(rows, checks=checks).equals(bias_report.claims(rows))
    assert bias_report.findings(rows, checks=checks) == bias_report.findings(rows)
    with pytest.raises(ValueError, match="cover"):
        bias_report.claims(rows, checks=checks[checks["seed"] > 0])
