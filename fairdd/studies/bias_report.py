"""Tables, claims and figures of the dataset-bias study (:mod:`fairdd.studies.bias`).

Everything here reads the study's rows (:func:`fairdd.studies.bias.run_study`: one row per
cell and evaluation network) or its saved synthetic sets; nothing is computed anew except the
statistics over seeds and, from each network's stored count table, the aligned gap's interval
and noise floor (:mod:`fairdd.stats`). :func:`claims` judges the three claims of Lu et al. 2024,
"Exploring the Impact of Dataset Bias on Dataset Distillation", from the numbers, in the four
verdict classes of :func:`fairdd.stats.decide`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from fairdd import stats
from fairdd.config import check_choice
from fairdd.data import dataset_label, denormalize, normalization_stats, study_data
from fairdd.studies.bias import DEBIASED, DISTILLERS, METHOD_LABELS, METHODS, BiasStudyConfig, synthetic_images

__all__ = [
    "findings",
    "BASELINE_STYLES",
    "MEASURES",
    "aligned_gap_checks",
    "aligned_gap_table",
    "answerable",
    "claims",
    "debias_comparison",
    "plot_accuracy",
    "plot_data_examples",
    "plot_measures",
    "plot_synthetic_grids",
    "summarize",
    "summary_table",
]

# ------------------------------------------------------------------------------ tables

MEASURES = ("acc_conflicting", "acc_aligned", "aligned_fraction", "attribute_entropy", "pairwise_distance")


def _per_seed(rows: pd.DataFrame) -> pd.DataFrame:
    """One row per data set × method × ratio × seed: the mean over its evaluation networks."""
    return rows.groupby(["dataset", "method", "bias_ratio", "seed"], as_index=False)[list(MEASURES)].mean()


def summarize(rows: pd.DataFrame) -> pd.DataFrame:
    """Mean and std over seeds of every measure (each seed the mean of its networks).

    Columns: ``dataset``, ``method``, ``bias_ratio``, ``seeds``, and ``<measure>_mean`` /
    ``<measure>_std`` (sample std, NaN for one seed) for every measure of :func:`cell_rows`.
    """
    per_seed = _per_seed(rows)
    grouped = per_seed.groupby(["dataset", "method", "bias_ratio"])
    out = grouped[list(MEASURES)].agg(["mean", "std"])
    out.columns = [f"{m}_{s}" for m, s in out.columns]
    out["seeds"] = grouped["seed"].nunique()
    return out.reset_index()


def summary_table(rows: pd.DataFrame, measure: str = "acc_conflicting", *, percent: bool = True) -> pd.DataFrame:
    """The page's table: data set × method rows, one column per ratio, ``"mean ± std"`` text."""
    check_choice("measure", measure, MEASURES)
    summary = summarize(rows)
    scale = 100.0 if percent else 1.0
    digits = 1 if percent else 2

    def cell(r: pd.Series) -> str:
        mean, std = scale * r[f"{measure}_mean"], scale * r[f"{measure}_std"]
        return f"{mean:.{digits}f}" if np.isnan(std) else f"{mean:.{digits}f} ± {std:.{digits}f}"

    summary["text"] = summary.apply(cell, axis=1)
    summary["method"] = pd.Categorical(summary["method"], [m for m in METHODS if m in set(summary["method"])], ordered=True)
    table = summary.pivot_table(
        index=["dataset", "method"], columns="bias_ratio", values="text", aggfunc="first", observed=True
    )
    table.columns = [f"r = {c:g}" for c in table.columns]
    table = table.rename(index=METHOD_LABELS, level="method")
    return table


def debias_comparison(rows: pd.DataFrame, *, alpha: float = 0.05) -> pd.DataFrame:
    """Each debiased method against its plain method, per data set and ratio, paired by seed.

    Columns: ``dataset``, ``method`` (the plain one), ``bias_ratio``, ``plain`` and ``balanced``
    bias-conflicting accuracy (%, mean over seeds), ``gain`` (points), ``p_value`` (one-sided
    Welch test that the balanced variant is better), ``better`` (``p_value < alpha``), the
    starting sets of the two (``random``, ``random_balanced``: the random and the
    group-balanced random real subsets), and the bias-aligned accuracies
    (``aligned_plain``, ``aligned_balanced``).
    """
    per_seed = _per_seed(rows)
    out = []
    for (dataset, ratio), group in per_seed.groupby(["dataset", "bias_ratio"]):
        for debiased in DEBIASED:
            plain_name = debiased.removesuffix("_balanced")
            plain, balanced = group[group["method"] == plain_name], group[group["method"] == debiased]
            if plain.empty or balanced.empty:
                continue
            enough = min(len(plain), len(balanced)) >= 2
            p = stats.welch(balanced["acc_conflicting"], plain["acc_conflicting"], alternative="larger") if enough else np.nan
            out.append({
                "dataset": dataset, "method": plain_name, "bias_ratio": ratio,
                "plain": 100 * plain["acc_conflicting"].mean(), "balanced": 100 * balanced["acc_conflicting"].mean(),
                "gain": 100 * (balanced["acc_conflicting"].mean() - plain["acc_conflicting"].mean()),
                "p_value": p, "better": bool(p < alpha) if p == p else False,
                "random": 100 * group.loc[group["method"] == "random", "acc_conflicting"].mean(),
                "random_balanced": 100 * group.loc[group["method"] == "random_balanced", "acc_conflicting"].mean(),
                "aligned_plain": 100 * plain["acc_aligned"].mean(), "aligned_balanced": 100 * balanced["acc_aligned"].mean(),
            })
    return pd.DataFrame(out)


# ------------------------------------------------------------------- the aligned gap's floor

GAP_KEYS = ("dataset", "method", "bias_ratio", "seed", "network")


def aligned_gap_checks(rows: pd.DataFrame) -> pd.DataFrame:
    """The aligned gap of every evaluation network beside its interval and noise floor.

    The *aligned gap* is a network's accuracy on bias-aligned test images (attribute = class)
    minus its accuracy on bias-conflicting ones (:data:`fairdd.stats.GROUP_MEASURES`
    ``"aligned_gap"``, from the row's ``group_counts``: both test splits, the bias attribute's
    values as the groups): how much of its accuracy rides on the shortcut. Beside it
    (:func:`fairdd.stats.check_measures`) a 95 % bootstrap interval over the test images and the
    **noise floor**: the 95th percentile of the gap when the attribute is permuted among the same
    predictions, what a network blind to the attribute scores here by chance. Columns
    :data:`GAP_KEYS`, then ``measure``, ``value``, ``ci_low``, ``ci_high``, ``floor``,
    ``within_floor`` (fractions).
    """
    _require_counts(rows)
    return stats.check_measures(rows, "aligned_gap", keep=list(GAP_KEYS))


def _floors(rows: pd.DataFrame, checks: pd.DataFrame | None, methods: Sequence[str]) -> pd.DataFrame | None:
    """The aligned-gap checks of ``rows``' networks of ``methods``: ``checks`` when given (they
    must cover those networks), else computed; ``None`` for rows without count tables."""
    if checks is None:
        return aligned_gap_checks(rows[rows["method"].isin(methods)]) if "group_counts" in rows.columns else None
    wanted = rows.loc[rows["method"].isin(methods), list(GAP_KEYS)]
    have = checks[list(GAP_KEYS)]
    if len(wanted.merge(have, on=list(GAP_KEYS), how="left", indicator=True).query("_merge == 'left_only'")):
        raise ValueError("checks do not cover every network of the rows: pass bias_report.aligned_gap_checks(rows)")
    return checks[checks["method"].isin(methods)]


def _require_counts(rows: pd.DataFrame) -> None:
    if "group_counts" not in rows.columns:
        raise KeyError("the rows have no 'group_counts' column: they were computed before the count tables were "
                       "stored (issue 23); recompute the cells (a fresh run store) to get the aligned gap's floor")


def aligned_gap_table(checks: pd.DataFrame) -> pd.DataFrame:
    """The page's table of :func:`aligned_gap_checks`: data set × method rows, one column per ratio.

    Each entry is ``"gap [low, high] floor f"`` in points, the means over the cell's networks (one
    per seed at ``cpu``) of the gap, its interval bounds and its floor; ``≈ floor`` marks a cell
    where every network's interval reaches its floor ("within the noise floor": the test images
    cannot tell that gap from none), ``(k/n ≈ floor)`` one where k of its n networks' do.
    """
    cells = checks.groupby(["dataset", "method", "bias_ratio"]).apply(stats.checks_text, include_groups=False).rename("text")
    table = cells.reset_index()
    table["method"] = pd.Categorical(table["method"], [m for m in METHODS if m in set(table["method"])], ordered=True)
    wide = table.pivot_table(index=["dataset", "method"], columns="bias_ratio", values="text", aggfunc="first",
                             observed=True)
    wide.columns = [f"r = {c:g}" for c in wide.columns]
    return wide.rename(index=METHOD_LABELS, level="method")


# ------------------------------------------------------------------------------ claims

PAPER = "Lu et al."
CHAPTER = "bias_dd"
UNIT = "distilled (or drawn) set: one seed, the mean of its evaluation networks"
UNITS = "points (measure × 100)"
#: The equivalence margin of the "absent" verdicts, in points of each claim's measure. Lu et
#: al.'s result tables are not available to us (../shared/REFERENCES.md, seed 001), so no claim
#: has a paper effect size to take the margin from.
MARGIN = 5.0
MARGIN_SOURCE = "a stated margin of 5 points; the paper's tables are not available here"
NEEDS_LOW_HIGH = "needs ratios 0.1 and one above it, and 2 seeds of each"
NEEDS_EXTREME_WHOLE = "needs ratios >= 0.95 and the whole set, and 2 seeds of each"
CLAIM_STATEMENTS = {
    1: "Dataset bias hurts distillation (accuracy on bias-conflicting test images falls as the ratio grows)",
    2: "Synthetic sets from biased data lose diversity and encode the spurious correlation",
    3: "Above 95 % bias the synthetic set can beat the original (whole) training set",
}


def _units(rows: pd.DataFrame) -> pd.DataFrame:
    """One row per experimental unit (data set × method × ratio × seed: one set), the mean of its
    evaluation networks (:func:`fairdd.stats.unit_means`), with ``aligned_gap`` = ``acc_aligned``
    − ``acc_conflicting`` (the count tables' gap, without rounding to float32 first)."""
    frame = rows[["dataset", "method", "bias_ratio", "seed", *MEASURES]].copy()
    frame["aligned_gap"] = frame["acc_aligned"] - frame["acc_conflicting"]
    return stats.unit_means(frame, unit=["dataset", "method", "bias_ratio", "seed"],
                            value=[*MEASURES, "aligned_gap"])


def _values(data: pd.DataFrame, method: str, ratio: float, measure: str) -> np.ndarray:
    """The per-unit values of ``measure`` (× 100) of one method at one ratio."""
    sel = data[(data["method"] == method) & (data["bias_ratio"] == ratio)]
    return 100 * sel[measure].to_numpy(float)


@dataclass(frozen=True)
class _Test:
    """One test behind a claim: the paper's direction is ``mean(a) > mean(b)``."""

    label: str
    a: np.ndarray
    b: np.ndarray


def _pooled_sd(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.sqrt(((a.size - 1) * a.var(ddof=1) + (b.size - 1) * b.var(ddof=1)) / (a.size + b.size - 2)))


def _judge(tests: list[_Test], need: str, *, level: float, within_floor: bool = False) -> dict[str, Any]:
    """:func:`fairdd.stats.decide` on ``tests``, with the effect the verdict rests on.

    The effect (mean(a) − mean(b) with its 95 % Welch interval) is the bottleneck test's for
    ``need="all"`` (the largest p in the paper's direction) and the best test's for ``"any"``.
    The minimum detectable effect (one-sided, 80 % power, the observed pooled spread) is the
    largest over the tests for "all" (the claim is as detectable as its weakest test) and the
    smallest for "any", at level / number of tests there (Holm's first step).
    """
    if any(min(t.a.size, t.b.size) < 2 for t in tests) or not tests:
        return {"verdict": stats.decide(p_support=[], p_contradict=[]), "tests": 0}
    support = [stats.welch(t.a, t.b, alternative="larger") for t in tests]
    against = [stats.welch(t.a, t.b, alternative="smaller") for t in tests]
    absent = [stats.tost(t.a, t.b, margin=MARGIN) for t in tests]
    step = level if need == "all" else level / len(tests)
    mdes = [stats.minimum_detectable_effect(t.a.size, t.b.size, _pooled_sd(t.a, t.b), level=step) for t in tests]
    mde = max(mdes) if need == "all" else min(mdes)
    pick = int(np.argmax(support)) if need == "all" else int(np.argmin(support))
    effect, low, high = stats.welch_interval(tests[pick].a, tests[pick].b)
    verdict = stats.decide(p_support=support, p_contradict=against, need=need, p_absent=absent, margin=MARGIN,
                           margin_source=MARGIN_SOURCE, mde=mde, within_floor=within_floor, level=level)
    return {"verdict": verdict, "effect": effect, "ci_low": low, "ci_high": high, "mde": mde,
            "n": f"{tests[pick].a.size} + {tests[pick].b.size}", "tests": len(tests), "effect_of": tests[pick].label,
            "p": dict(zip((t.label for t in tests), support))}


def _claim_bias_hurts(data: pd.DataFrame, methods: list[str], low: float, high: float, level: float
                      ) -> tuple[dict[str, Any], str]:
    """Claim 1: every method's bias-conflicting accuracy is lower at ``high`` than at ``low``."""
    tests = [_Test(f"{METHOD_LABELS[m]} r = {low:g} − r = {high:g}", _values(data, m, low, "acc_conflicting"),
                   _values(data, m, high, "acc_conflicting")) for m in methods]
    judged = _judge(tests, "all", level=level)
    parts = [f"{METHOD_LABELS[m]} {t.a.mean():.1f}% → {t.b.mean():.1f}%"
             + (f" (p = {judged['p'][t.label]:.2g})" if "p" in judged else "") for m, t in zip(methods, tests)]
    for m in ("random", "whole"):
        a, b = _values(data, m, high, "acc_conflicting"), _values(data, m, low, "acc_conflicting")
        if a.size and b.size:
            parts.append(f"for comparison {METHOD_LABELS[m]} {b.mean():.1f}% → {a.mean():.1f}%")
    return judged, f"bias-conflicting accuracy at r = {low:g} → r = {high:g}: " + "; ".join(parts)


def _claim_diversity(data: pd.DataFrame, methods: list[str], low: float, high: float, level: float,
                     floors: pd.DataFrame | None) -> tuple[dict[str, Any], str]:
    """Claim 2: for every method, from ``low`` to ``high`` the probe's aligned fraction rises and
    its attribute entropy falls (the set encodes the attribute and loses its diversity), and the
    networks trained on the set gain an aligned gap (they use it)."""
    tests, parts = [], []
    for m in methods:
        name = METHOD_LABELS[m]
        al, ah = _values(data, m, low, "aligned_fraction"), _values(data, m, high, "aligned_fraction")
        el, eh = _values(data, m, low, "attribute_entropy"), _values(data, m, high, "attribute_entropy")
        gl, gh = _values(data, m, low, "aligned_gap"), _values(data, m, high, "aligned_gap")
        tests += [_Test(f"{name} aligned fraction", ah, al), _Test(f"{name} attribute entropy", el, eh),
                  _Test(f"{name} aligned gap", gh, gl)]
        parts.append(f"{name}: aligned {al.mean() / 100:.2f} → {ah.mean() / 100:.2f}, entropy {el.mean() / 100:.2f} → "
                     f"{eh.mean() / 100:.2f}, networks' aligned gap {gl.mean():.1f} → {gh.mean():.1f} points")
    within = False
    if floors is None:
        parts.append("the aligned gap's noise floor not checked (rows without group_counts)")
    else:
        at = floors[floors["method"].isin(methods) & (floors["bias_ratio"] == high)]
        within = bool(len(at)) and bool(at["within_floor"].all())
        parts.append(f"at r = {high:g} {int(at['within_floor'].sum())} of {len(at)} networks' aligned gaps are within "
                     f"the noise floor")
    judged = _judge(tests, "all", level=level, within_floor=within)
    rand = _values(data, "random", high, "aligned_fraction")
    syn = np.concatenate([_values(data, m, high, "aligned_fraction") for m in methods])
    if rand.size >= 2 and syn.size >= 2:
        # Amplification beyond the data: the distilled sets' units pooled against the random
        # real subset's (the sets they start from), one-sided Welch test. Reported, not judged.
        p = stats.welch(syn, rand, alternative="larger")
        more = "more bias than" if p < level else "no significantly more bias than"
        parts.append(f"at r = {high:g} the distilled sets' aligned fraction {syn.mean() / 100:.2f} vs a random real "
                     f"subset's {rand.mean() / 100:.2f}: {more} the data (p = {p:.2g})")
    return judged, f"r = {low:g} → r = {high:g}: " + "; ".join(parts)


def _claim_beats_whole(data: pd.DataFrame, methods: list[str], extreme: list[float], level: float
                       ) -> tuple[dict[str, Any], str]:
    """Claim 3: at some ratio in ``extreme``, some method beats the whole set (one one-sided
    Welch test per method and ratio, Holm-corrected over all of them: the claim is an "any")."""
    tests = [_Test(f"{METHOD_LABELS[m]} − whole set at r = {r:g}", _values(data, m, r, "acc_conflicting"),
                   _values(data, "whole", r, "acc_conflicting")) for r in extreme for m in methods]
    tests = [t for t in tests if t.a.size and t.b.size]  # a method or ratio that did not run
    if not tests:
        return {"verdict": stats.decide(p_support=[], p_contradict=[]), "tests": 0}, "no method ran beside the whole set"
    judged = _judge(tests, "any", level=level)
    best = max(tests, key=lambda t: t.a.mean() - t.b.mean())
    evidence = (f"best case {best.label}: {best.a.mean():.1f}% vs {best.b.mean():.1f}%"
                + (f" (p = {judged['p'][best.label]:.2g})" if "p" in judged else "")
                + f", {len(tests)} test{'s' if len(tests) > 1 else ''}")
    r = float(best.label.rsplit("r = ", 1)[1])
    rand = _values(data, "random", r, "acc_conflicting")
    if rand.size:
        evidence += f"; a random real subset of the same size at r = {r:g}: {rand.mean():.1f}%"
    return judged, evidence


def claims(rows: pd.DataFrame, *, alpha: float = stats.LEVEL, checks: pd.DataFrame | None = None) -> pd.DataFrame:
    """Lu et al.'s three claims, judged per data set from our rows (no verdict is written in).

    The unit is the set (:data:`UNIT`): a distillation or random draw, one per seed, its
    evaluation networks averaged (:func:`fairdd.stats.unit_means`); every test is one-sided
    Welch over units, and each claim gets one of :data:`fairdd.stats.VERDICTS` from
    :func:`fairdd.stats.decide` with its reason (Holm over the claim's tests; "absent" by TOST at
    :data:`MARGIN` points).

    1. *Bias hurts DD*: for every distillation method, bias-conflicting accuracy is higher at
       the unbiased ratio 0.1 than at the highest ratio below 1 (needs all).
    2. *Synthetic sets lose diversity and encode the spurious correlation*: for every
       distillation method, from 0.1 to the highest ratio below 1 the probe's aligned fraction
       rises, its attribute entropy falls and the networks' aligned gap grows (needs all);
       "untestable here" when every distilled set's network at that ratio has an aligned gap
       within its noise floor (:func:`aligned_gap_checks`). The evidence also says whether the
       sets carry more bias than a random real subset (amplification beyond the data).
    3. *Above 95 % the synthetic set can beat the original*: at some ratio ≥ 0.95, some
       distillation method's bias-conflicting accuracy is above the whole set's (needs any).

    Lu et al.'s result tables are not available to us, so ``paper_effect`` is NaN and the
    "can this profile answer" table (:func:`answerable`) can only give the MDE.

    ``checks``: :func:`aligned_gap_checks` of ``rows`` when the page has computed them already
    (they are computed here otherwise; rows without ``group_counts`` skip the floor, and say so).

    Returns
    -------
    :data:`fairdd.stats.CLAIM_COLUMNS` (effects, intervals and MDEs in :data:`UNITS`), then
    ``units``, ``effect_of`` (the test the effect is from) and ``evidence`` (the numbers).
    """
    units = _units(rows)
    floors = _floors(rows, checks, DISTILLERS)
    out: list[dict[str, Any]] = []
    for dataset, data in units.groupby("dataset", sort=False):
        methods = [m for m in DISTILLERS if m in set(data["method"])]
        ratios = sorted(set(data["bias_ratio"]))
        low = 0.1 if 0.1 in ratios else None
        high = max((r for r in ratios if r < 1.0), default=None)
        extreme = [r for r in ratios if r >= 0.95]
        low_high = low is not None and high is not None and high > low and bool(methods)
        mine = None if floors is None else floors[floors["dataset"] == dataset]
        checks: list[tuple[int, bool, str, Callable[[], tuple[dict[str, Any], str]]]] = [
            (1, low_high, NEEDS_LOW_HIGH, lambda: _claim_bias_hurts(data, methods, low, high, alpha)),
            (2, low_high, NEEDS_LOW_HIGH, lambda: _claim_diversity(data, methods, low, high, alpha, mine)),
            (3, bool(extreme) and bool(methods) and "whole" in set(data["method"]), NEEDS_EXTREME_WHOLE,
             lambda: _claim_beats_whole(data, methods, extreme, alpha)),
        ]
        for claim, testable, missing, judge in checks:
            judged, evidence = judge() if testable else (
                {"verdict": stats.decide(p_support=[], p_contradict=[]), "tests": 0}, missing)
            if judged["tests"] == 0 and testable:
                evidence = f"{missing}; {evidence}"
            out.append(stats.claim_row(
                paper=PAPER, claim=claim, statement=CLAIM_STATEMENTS[claim], chapter=CHAPTER, dataset=dataset,
                verdict=judged["verdict"], effect=judged.get("effect", np.nan), ci_low=judged.get("ci_low", np.nan),
                ci_high=judged.get("ci_high", np.nan), mde=judged.get("mde", np.nan), paper_effect=None, unit=UNIT,
                n=judged.get("n", ""), tests=judged["tests"], units=UNITS, effect_of=judged.get("effect_of", ""),
                evidence=evidence,
            ))
    return pd.DataFrame(out)


def answerable(claim_table: pd.DataFrame) -> pd.DataFrame:
    """"Can this profile answer the paper?" (:func:`fairdd.stats.answerable`) with each claim's
    statement and its verdict's reason: the smallest effect each test could detect (MDE) beside
    the paper's effect where it gives one (Lu et al.'s tables are not available: "–")."""
    table = stats.answerable(claim_table)
    table.insert(1, "statement", claim_table["statement"].to_numpy())
    table["reason"] = claim_table["reason"].to_numpy()
    return table


def findings(rows: pd.DataFrame, *, alpha: float = stats.LEVEL, checks: pd.DataFrame | None = None) -> str:
    """The page's findings as Markdown bullets, generated from ``rows`` (nothing written in):
    the claims' verdicts with their reasons, the distilled sets against the random real subset
    at the highest ratio below 1, how many networks' aligned gaps are within their noise floor,
    and what group-balanced distillation gains and costs (``checks`` as in :func:`claims`)."""
    per_seed = _per_seed(rows)
    floors = _floors(rows, checks, METHODS)
    verdicts = claims(rows, alpha=alpha, checks=floors)
    comparison = debias_comparison(rows, alpha=alpha)
    lines = []
    for dataset, data in per_seed.groupby("dataset"):
        for r in verdicts[verdicts["dataset"] == dataset].itertuples():
            lines.append(f"{dataset}, claim {r.claim}: **{r.verdict}** — {r.reason} ({r.evidence}).")
        high = max((b for b in set(data["bias_ratio"]) if b < 1.0), default=None)
        if high is not None and "random" in set(data["method"]):
            at = data[data["bias_ratio"] == high]
            mean = at.groupby("method")["acc_conflicting"].mean() * 100
            parts = [f"{m.upper()} {mean[m]:.1f} %" for m in DISTILLERS if m in mean.index]
            lines.append(f"{dataset}, r = {high:g}: bias-conflicting accuracy " + ", ".join(parts)
                         + f" against {mean['random']:.1f} % for a random real subset of the same size.")
        if floors is not None:
            mine = floors[floors["dataset"] == dataset]
            within = mine[mine["within_floor"]]
            ratios = ", ".join(f"{b:g}" for b in sorted(set(within["bias_ratio"])))
            lines.append(f"{dataset}: {len(within)} of {len(mine)} networks' aligned gaps are within their noise floor"
                         + (f" (at r = {ratios})." if len(within) else "."))
        mine = comparison[comparison["dataset"] == dataset] if len(comparison) else comparison
        for method, g in mine.groupby("method") if len(mine) else ():
            better = g[g["better"]]
            if better.empty:
                lines.append(f"{dataset}: balanced {method.upper()} is not significantly better than plain {method.upper()} at any ratio "
                             f"(one-sided Welch, p < {alpha:g}).")
                continue
            selection = better["random_balanced"] - better["random"]
            lines.append(
                f"{dataset}: balanced {method.upper()} beats plain {method.upper()} at r = {', '.join(f'{b:g}' for b in better['bias_ratio'])} "
                f"by {better['gain'].min():+.1f} to {better['gain'].max():+.1f} points of bias-conflicting accuracy "
                f"(one-sided Welch, p < {alpha:g}); balancing the random starting subset alone gains "
                f"{selection.min():+.1f} to {selection.max():+.1f} points there; the bias-aligned accuracy changes by "
                f"{(better['aligned_balanced'] - better['aligned_plain']).mean():+.1f} points on average."
            )
    return "\n".join(f"- {line}" for line in lines)


# ------------------------------------------------------------------------------ figures

BASELINE_STYLES = {
    "random": {"ls": "--", "color": "grey"},
    "random_balanced": {"ls": "-.", "color": "grey"},
    "whole": {"ls": ":", "color": "black"},
}


def plot_accuracy(rows: pd.DataFrame, *, measure: str = "acc_conflicting"):  # noqa: ANN201  (matplotlib Figure)
    """Accuracy (%) against bias ratio, one line per method (mean ± std over seeds), one panel per data set."""
    import matplotlib.pyplot as plt

    check_choice("measure", measure, ("acc_conflicting", "acc_aligned"))
    summary = summarize(rows)
    datasets = list(dict.fromkeys(summary["dataset"]))
    fig, axes = plt.subplots(1, len(datasets), figsize=(5.5 * len(datasets), 4), squeeze=False)
    for ax, dataset in zip(axes[0], datasets):
        part = summary[summary["dataset"] == dataset]
        for method in [m for m in METHODS if m in set(part["method"])]:
            line = part[part["method"] == method].sort_values("bias_ratio")
            style = BASELINE_STYLES.get(method, {})
            ax.errorbar(line["bias_ratio"], 100 * line[f"{measure}_mean"], yerr=100 * line[f"{measure}_std"].fillna(0),
                        marker="o", capsize=3, label=METHOD_LABELS[method], **style)
        ax.set_title(dataset, fontsize=9)
        ax.set_xlabel("training bias ratio")
        ax.set_ylabel(f"{'bias-conflicting' if measure == 'acc_conflicting' else 'bias-aligned'} test accuracy (%)")
        ax.set_ylim(0, 100)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def plot_measures(rows: pd.DataFrame):  # noqa: ANN201  (matplotlib Figure)
    """Aligned fraction, attribute entropy and pairwise distance against bias ratio per method."""
    import matplotlib.pyplot as plt

    summary = summarize(rows)
    summary = summary[summary["method"] != "whole"]
    datasets = list(dict.fromkeys(summary["dataset"]))
    names = {"aligned_fraction": "probe: share of class c predicted as attribute c",
             "attribute_entropy": "probe: attribute entropy / log 10",
             "pairwise_distance": "mean pairwise RMS distance"}
    fig, axes = plt.subplots(len(datasets), 3, figsize=(15, 3.6 * len(datasets)), squeeze=False)
    for i, dataset in enumerate(datasets):
        part = summary[summary["dataset"] == dataset]
        for j, measure in enumerate(names):
            ax = axes[i][j]
            for method in [m for m in METHODS if m in set(part["method"])]:
                line = part[part["method"] == method].sort_values("bias_ratio")
                style = BASELINE_STYLES.get(method, {}) if method != "whole" else {}
                ax.errorbar(line["bias_ratio"], line[f"{measure}_mean"], yerr=line[f"{measure}_std"].fillna(0),
                            marker="o", capsize=3, label=METHOD_LABELS[method], **style)
            if measure == "aligned_fraction":
                ax.plot([0, 1], [0, 1], color="black", lw=0.5, label="= bias ratio")
            ax.set_title(f"{dataset}\n{names[measure]}", fontsize=8)
            ax.set_xlabel("training bias ratio")
            ax.grid(alpha=0.3)
        axes[i][0].legend(fontsize=7)
    fig.tight_layout()
    return fig


def plot_synthetic_grids(
    config: BiasStudyConfig,
    kind: str,
    *,
    methods: Sequence[str],
    ratios: Sequence[float],
    seed: int | None = None,
    root: str | Path | None = None,
):  # noqa: ANN201  (matplotlib Figure)
    """Synthetic sets as image grids: rows = ratios, columns = methods; each panel one row per
    class (at most 10 images each), from ``seed`` (default: the first)."""
    import matplotlib.pyplot as plt
    from torchvision.utils import make_grid

    seed = config.seeds[0] if seed is None else seed
    ipc = config.images_per_class
    shown = min(ipc, 10)
    fig, axes = plt.subplots(len(ratios), len(methods), figsize=(3.2 * len(methods), 3.4 * len(ratios)), squeeze=False)
    for i, ratio in enumerate(ratios):
        for j, method in enumerate(methods):
            ax = axes[i][j]
            images = synthetic_images(config.cell(kind, ratio, method, seed), root=root)
            images = images.view(-1, ipc, *images.shape[1:])[:, :shown].flatten(0, 1)  # (K·shown, C, H, W)
            grid = make_grid(images, nrow=shown, padding=1, pad_value=1.0)
            ax.imshow(grid.permute(1, 2, 0).numpy())
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_title(f"{METHOD_LABELS[method]}, r = {ratio:g}", fontsize=9)
    fig.suptitle(f"{dataset_label(config.dataset(kind))}: synthetic images, one row per class (seed {seed})", fontsize=10)
    fig.tight_layout()
    return fig


def plot_data_examples(config: BiasStudyConfig, kind: str, *, bias_ratio: float = 0.95, per_class: int = 6):  # noqa: ANN201
    """The data: training images at ``bias_ratio`` and the two test splits, one row per class."""
    import matplotlib.pyplot as plt
    from torchvision.utils import make_grid

    data = config.dataset(kind)
    train, test = study_data(data, bias_ratio)
    mean, std = normalization_stats(data)
    half = len(test) // 2  # conflicting split first, then the aligned one (study_data)
    panels = [
        (f"training set, r = {bias_ratio:g}", train),
        ("test: bias-conflicting (r = 0)", test.subset(torch.arange(half))),
        ("test: bias-aligned (r = 1)", test.subset(torch.arange(half, len(test)))),
    ]
    fig, axes = plt.subplots(1, 3, figsize=(11, 4.2))
    for ax, (title, part) in zip(axes, panels):
        rows = [part.inputs[(part.labels == c).nonzero().flatten()[:per_class]] for c in range(part.num_classes)]
        images = denormalize(torch.cat(rows), mean, std).clamp(0, 1)
        ax.imshow(make_grid(images, nrow=per_class, padding=1, pad_value=1.0).permute(1, 2, 0).numpy())
        ax.set_title(title, fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle(dataset_label(data), fontsize=10)
    fig.tight_layout()
    return fig
