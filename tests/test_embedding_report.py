"""The embedding chapter's claims, noise floors and findings (fairdd.studies.embedding_report):
every verdict class reachable on hand-made rows, the paper's effects read from its Table 1, the
RMS TPR gap's floor, and the count tables the cells store."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from fairdd import stats
from fairdd.studies import embedding_report as report
from fairdd.studies.embedding import METHODS

LABELS = [label for label, _, _ in METHODS]


def _counts(kind: str, seed: int, n: int = 1000) -> str:
    """A binary model's stored count table over two groups: ``"blind"`` is right 80 % of the time
    in both groups; ``"biased"`` has TPR 0.95 in group 0 and 0.5 in group 1."""
    rng = np.random.default_rng(seed)
    labels, groups = rng.integers(0, 2, n), rng.integers(0, 2, n)
    right = rng.random(n) < (0.8 if kind == "blind" else np.where(groups == 0, 0.95, 0.5))
    pred = np.where(right, labels, 1 - labels)
    return stats.counts_to_json(stats.group_counts(labels, pred, groups, num_classes=2, num_groups=2))


def rows(values: dict[str, tuple[list[float], list[float]]] | None = None, *, counts: dict[str, str] | None = None,
         dataset: str = "adult") -> pd.DataFrame:
    """Five seeds of each Table-1 model: ``values[label] = (accuracies, fairnesses)`` (fractions);
    the defaults keep accuracy at 0.80 and fairness at 0.80 ± a little, so each test changes one thing."""
    spread = [-0.002, -0.001, 0.0, 0.001, 0.002]
    values = values or {}
    out = []
    for label, method, debias in METHODS:
        acc, fair = values.get(label, ([0.80 + s for s in spread], [0.80 - s for s in spread]))
        for seed, (a, f) in enumerate(zip(acc, fair)):
            row = {"dataset": dataset, "include_protected": True, "converged": True, "method": method, "debias": debias,
                   "method_label": label, "seed": seed, "size": 10 if method == "dd" else 0, "accuracy": a, "fairness": f}
            if counts is not None:
                row["group_counts"] = _counts(counts.get(label, "biased"), 10 * seed + LABELS.index(label))
            out.append(row)
    return pd.DataFrame(out)


def _row(table: pd.DataFrame, claim: int) -> pd.Series:
    return table.set_index("claim").loc[claim]


def test_paper_effects_are_read_from_table1() -> None:
    effects = report.paper_effects()
    assert effects["MOJI"]["dd_accuracy_drop"] == pytest.approx(72.3 - 71.3)
    assert effects["BIOS"]["dd_accuracy_drop"] == pytest.approx(82.3 - 79.7)
    assert effects["BIOS"]["bteo_fairness_gain"] == pytest.approx(90.7 - 86.7)
    assert effects["MOJI"]["adv_fairness_gain"] == pytest.approx(70.7 - 62.4)
    assert effects["BIOS"]["bteo_accuracy_change"] == pytest.approx(73.2 - 79.7)


def test_claims_table_for_the_replication_summary() -> None:
    table = report.claims(rows())
    assert tuple(table.columns[: len(stats.CLAIM_COLUMNS)]) == stats.CLAIM_COLUMNS
    assert list(table["claim"]) == [1, 2, 3, 4, 5, 6]
    assert set(table["paper"]) == {"Han et al."} and set(table["chapter"]) == {"embedding_dd"}
    assert set(table["dataset"]) == {report.DATASET_LABELS["adult"]} and "stand-in" in table["dataset"].iloc[0]
    assert set(table["verdict"]) <= set(stats.VERDICTS) and table["reason"].str.len().min() > 0
    assert _row(table, 3)["paper_effect"] == pytest.approx(4.0) and _row(table, 4)["paper_effect"] == pytest.approx(1.0)
    assert _row(table, 1)["paper_effect"] == pytest.approx(2.6)
    answer = report.answerable(table)
    assert set(answer["detectable"]) <= {"yes", "no"} and list(answer["verdict"]) == list(table["verdict"])
    # Default size: the DD size with the most seeds (10 here).
    assert report.claims(rows()).equals(report.claims(rows(), 10))


def test_every_verdict_class_is_reachable() -> None:
    base = [0.80, 0.801, 0.799, 0.802, 0.798]
    # Supported: DD + BTEO fairer than DD by 10 points; DD's accuracy equal to STANDARD's.
    table = report.claims(rows({"DD + BTEO": ([0.8] * 5, [f + 0.10 for f in base])}))
    assert _row(table, 3)["verdict"] == "supported"
    assert _row(table, 1)["verdict"] == "supported"  # TOST within 2.6 points
    row = _row(table, 3)
    a, b = 100 * np.array([f + 0.10 for f in base]), 100 * np.array([0.80 - s for s in (-0.002, -0.001, 0, 0.001, 0.002)])
    assert row["effect"] == pytest.approx(a.mean() - b.mean())
    sd = np.sqrt((a.var(ddof=1) + b.var(ddof=1)) / 2)
    assert row["mde"] == pytest.approx(stats.minimum_detectable_effect(5, 5, sd))
    # Contradicted: DD + BTEO less fair than DD; DD much less accurate than STANDARD.
    table = report.claims(rows({"DD + BTEO": ([0.8] * 5, [f - 0.10 for f in base]),
                                "DD": ([a - 0.10 for a in base], base)}))
    assert _row(table, 3)["verdict"] == "contradicted" and _row(table, 1)["verdict"] == "contradicted"
    # Absent: DD + BTEO as fair as DD within a tight spread, far inside the paper's 4-point gain.
    table = report.claims(rows())
    assert _row(table, 3)["verdict"] == "absent" and "4" in _row(table, 3)["reason"]
    # Untestable: a noisy DD + ADV cannot show the paper's 1-point gain (MDE above it) ...
    noisy = [0.70, 0.90, 0.75, 0.85, 0.80]
    table = report.claims(rows({"DD + ADV": ([0.8] * 5, noisy), "DD": ([0.8] * 5, noisy[::-1])}))
    row = _row(table, 4)
    assert row["verdict"] == "untestable here" and "could not have detected" in row["reason"] and row["mde"] > 1.0
    assert report.answerable(table).set_index("claim").loc[4, "detectable"] == "no"
    # ... and a fairness claim whose models' gaps are all within their noise floor.
    gain = {"DD + BTEO": ([0.8] * 5, [f + 0.10 for f in base])}
    within = report.claims(rows(gain, counts={"DD": "blind", "DD + BTEO": "blind"}))
    assert _row(within, 3)["verdict"] == "untestable here" and "noise floor" in _row(within, 3)["reason"]
    assert "10 of 10 models' RMS TPR gaps within the noise floor" in _row(within, 3)["evidence"]
    assert _row(report.claims(rows(gain, counts={})), 3)["verdict"] == "supported"
    # Too few converged seeds: untestable, saying so.
    few = rows()
    few.loc[(few["method_label"] == "DD + ADV") & (few["seed"] > 0), "converged"] = False
    assert "needs 2 converged seeds" in _row(report.claims(few), 4)["evidence"]


def test_fairness_floor_separates_a_blind_model_from_a_biased_one() -> None:
    df = rows(counts={"STANDARD": "blind"})
    checks = report.fairness_checks(df)
    assert list(checks.columns[:3]) == ["dataset", "method_label", "seed"]
    by = checks.groupby("method_label")["within_floor"].all()
    assert by["STANDARD"] and not checks.loc[checks["method_label"] == "DD", "within_floor"].any()
    table = report.fairness_table(checks)
    assert list(table.index) == LABELS
    assert table.loc["STANDARD", "adult"].endswith("≈ floor") and "≈ floor" not in table.loc["DD", "adult"]
    assert report.fairness_checks(rows()) is None  # rows without count tables: no floor, said on the page
    assert list(report.fairness_table(None)["note"]) == [report.NO_COUNT_TABLES]
    assert report.floor_summary(None, "adult").startswith("noise floors not computed")
    assert report.floor_summary(checks, "adult").endswith("within the noise floor")
    bad = rows(counts={})
    bad.loc[0, "group_counts"] = '{"not": "a table"}'
    with pytest.raises(ValueError):
        report.fairness_checks(bad)


def test_text_findings_are_generated_from_the_rows() -> None:
    df = rows({"DD + BTEO": ([0.8] * 5, [0.9, 0.91, 0.89, 0.9, 0.9])}, dataset="template_bios")
    lines = report.text_findings(df, 10)
    assert "5 seeds" in lines[0] and "STANDARD accuracy 80.0 ± 0.2" in lines[0]
    bteo = next(line for line in lines if "DD + BTEO improves fairness over DD" in line)
    assert "**supported**" in bteo
    df.loc[df["method_label"] == "DD + BTEO", "fairness"] = 0.60
    flipped = next(line for line in report.text_findings(df, 10) if "DD + BTEO improves fairness over DD" in line)
    assert "**contradicted**" in flipped
    assert report.text_findings(rows(), 10) == []  # no text-section rows


def test_claims_reuse_the_page_checks_and_refuse_partial_ones() -> None:
    df = rows({"DD + BTEO": ([0.8] * 5, [0.9, 0.91, 0.89, 0.9, 0.9])}, counts={})
    checks = report.fairness_checks(df)
    assert report.claims(df, checks=checks).equals(report.claims(df))
    with pytest.raises(ValueError, match="cover"):
        report.claims(df, checks=checks[checks["seed"] > 0])


def test_default_claims_are_the_chapters_own() -> None:
    """The replication summary calls claims(rows) on run_study's whole frame: it must equal the
    chapter's claims(feature rows, table size), the text section left out."""
    features = rows({"DD + BTEO": ([0.8] * 5, [0.9, 0.91, 0.89, 0.9, 0.9])}).assign(table_size=10)
    text = rows(dataset="template_bios").assign(table_size=2)
    text.loc[text["method"] == "dd", "size"] = 2
    both = pd.concat([features, text], ignore_index=True)
    chapter = report.claims(features, 10)
    assert report.claims(both).equals(chapter)
    assert set(report.claims(both, text=True)["source"]) == {"template_bios"}
    with pytest.raises(ValueError, match="no text-section model"):
        report.claims(features, text=True)
