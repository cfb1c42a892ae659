"""Claims, noise floors and findings of the embedding chapter (:mod:`fairdd.studies.embedding`).

Han et al. 2022, *Towards Fair Supervised Dataset Distillation for Text Classification*
(SustaiNLP): "DD achieves similar accuracy to STANDARD", distilled sets "retain" the data's bias
("fairness improves marginally: ... retained 97.9 % and 89.2 % of the bias"), and DD + BTEO and
DD + ADV "substantially improve fairness while retaining accuracy compared to DD" (on BIOS DD +
BTEO's accuracy "drops appreciably"). :func:`claims` judges these per data set from the study's
rows in the four verdict classes of :func:`fairdd.stats.decide`, each test beside the smallest
effect it could detect and the paper's effect from its Table 1 (:data:`~fairdd.studies.embedding.PAPER_TABLE1`,
MOJI and BIOS; ours are Adult and COMPAS, stand-ins). :func:`fairness_checks` puts every model's RMS
TPR gap beside its bootstrap interval and its noise floor, from the count table each row stores.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from fairdd import stats
from fairdd.studies.embedding import METHODS, PAPER_TABLE1, TEMPLATE, feature_rows, table1, text_rows

__all__ = [
    "CHAPTER",
    "PAPER",
    "answerable",
    "claims",
    "fairness_checks",
    "fairness_table",
    "paper_effects",
    "text_findings",
]

PAPER = "Han et al."
CHAPTER = "embedding_dd"
UNIT = "one seed: a STANDARD model, or a distilled set and the one model retrained on it"
UNITS = "points (%)"
#: How each data set appears in the claims: ours are stand-ins for the paper's MOJI and BIOS.
DATASET_LABELS = {
    "adult": "Adult, sex (stand-in for the paper's MOJI and BIOS)",
    "compas": "COMPAS, race (stand-in for the paper's MOJI and BIOS)",
    "german": "German credit, sex (stand-in for the paper's MOJI and BIOS)",
    "moji": "MOJI", "bios": "BIOS",
    TEMPLATE: "template biographies, gender (toy text written for this book)",
}
_LABELS = [label for label, _, _ in METHODS]


def paper_effects() -> dict[str, dict[str, float]]:
    """The paper's effects, in points, from its Table 1 (:data:`PAPER_TABLE1`), per data set
    (MOJI, BIOS): ``dd_accuracy_drop`` (STANDARD − DD accuracy), ``dd_fairness_gain`` (DD −
    STANDARD fairness), ``<X>_fairness_gain`` and ``<X>_accuracy_change`` (DD + X − DD) for X in
    ``bteo``, ``adv``."""
    t = PAPER_TABLE1.set_index(["dataset", "method"])
    out: dict[str, dict[str, float]] = {}
    for dataset in dict.fromkeys(PAPER_TABLE1["dataset"]):
        def get(method: str, metric: str) -> float:
            return float(t.loc[(dataset, method), metric])

        out[dataset] = {
            "dd_accuracy_drop": get("STANDARD", "accuracy") - get("DD", "accuracy"),
            "dd_fairness_gain": get("DD", "fairness") - get("STANDARD", "fairness"),
            **{f"{x}_fairness_gain": get(f"DD + {x.upper()}", "fairness") - get("DD", "fairness") for x in ("bteo", "adv")},
            **{f"{x}_accuracy_change": get(f"DD + {x.upper()}", "accuracy") - get("DD", "accuracy") for x in ("bteo", "adv")},
        }
    return out


# --------------------------------------------------------------------------- noise floors


def _table1_rows(df: pd.DataFrame, size: int, *, converged_only: bool) -> pd.DataFrame:
    """Table 1's rows: the protected attribute as input, STANDARD or DD at ``size``."""
    sel = df[df["include_protected"] & ((df["method"] == "standard") | (df["size"] == size))]
    return sel[sel["converged"]] if converged_only else sel


def _default_size(df: pd.DataFrame) -> int:
    """Table 1's distilled size when none is given: the rows' ``table_size`` (set by
    :func:`~fairdd.studies.embedding.run_study` from the config), else the DD size with the most
    seeds (the smallest such size on a tie)."""
    if "table_size" in df.columns and df["table_size"].nunique() == 1:
        return int(df["table_size"].iloc[0])
    dd = df[(df["method"] == "dd") & df["include_protected"]]
    if dd.empty:
        raise ValueError("the rows hold no DD run with the protected attribute as input: no Table 1 size to judge at")
    counts = dd.groupby("size")["seed"].nunique()
    return int(counts.idxmax())


def _section(df: pd.DataFrame, text: bool) -> pd.DataFrame:
    """The paper's data sets' rows (``text=False``) or the text section's (``text=True``)."""
    return text_rows(df) if text else feature_rows(df)


NO_COUNT_TABLES = ("These runs carry no count tables of their test predictions (they were computed "
                   "without them; `count_tables=True` computes them), so no interval or noise "
                   "floor of the RMS TPR gap is shown, and the fairness verdicts below are not checked against one.")


def fairness_checks(df: pd.DataFrame, size: int | None = None, *, text: bool = False) -> pd.DataFrame | None:
    """Every Table-1 model's RMS TPR gap beside its 95 % bootstrap interval over the test split
    and its noise floor (the 95th percentile of the gap with the protected attribute permuted
    among the same predictions: what a model blind to the attribute scores here by chance),
    :func:`fairdd.stats.check_measures` on the rows' ``group_counts``.

    The paper's data sets' models, or with ``text=True`` the text section's. Columns
    ``dataset``, ``method_label``, ``seed``, then ``measure``, ``value``, ``ci_low``,
    ``ci_high``, ``floor``, ``within_floor`` (fractions; fairness = 1 − value). ``None`` when the
    rows carry no ``group_counts`` (cells computed without
    :attr:`~fairdd.studies.embedding.EmbeddingStudyConfig.count_tables`; :data:`NO_COUNT_TABLES`
    says so on the page).
    """
    df = _section(df, text)
    if "group_counts" not in df.columns or df["group_counts"].isna().all():
        return None
    if df.empty:
        raise ValueError(f"the rows hold no {'text-section' if text else 'feature-vector'} model to check")
    size = _default_size(df) if size is None else size
    return stats.check_measures(_table1_rows(df, size, converged_only=False), "rms_tpr_gap",
                                keep=["dataset", "method_label", "seed"])


def floor_summary(checks: pd.DataFrame | None, dataset: str) -> str:
    """"k of n models' RMS TPR gaps within the noise floor" on ``dataset``, or that no floor was
    computed (:func:`fairness_checks` gave ``None``)."""
    if checks is None:
        return "noise floors not computed (these runs carry no count tables)"
    mine = checks[checks["dataset"] == dataset]
    return f"{int(mine['within_floor'].sum())} of {len(mine)} models' RMS TPR gaps within the noise floor"


def fairness_table(checks: pd.DataFrame | None) -> pd.DataFrame:
    """:func:`fairness_checks` as the page shows it: data set × method, ``"gap [low, high] floor f"``
    in points, each the mean over the seeds' models; ``≈ floor`` where every model's interval
    reaches its floor (within the noise floor), ``(k/n ≈ floor)`` where k of n do. For ``None``
    (no count tables), one row saying so (:data:`NO_COUNT_TABLES`)."""
    if checks is None:
        return pd.DataFrame({"note": [NO_COUNT_TABLES]}, index=[""])
    out = checks.groupby(["method_label", "dataset"], sort=False).apply(stats.checks_text, include_groups=False).unstack("dataset")
    return out.reindex([label for label in _LABELS if label in out.index])


# ------------------------------------------------------------------------------- claims


def _equivalence_mde(a: np.ndarray, b: np.ndarray) -> float:
    """The smallest margin TOST confirms with 80 % power when the true difference is 0: each of
    its one-sided tests must then succeed with power 0.9 (Welch se and df of the samples)."""
    _, se, df = stats.welch_parts(a, b)
    return stats.mde_from_standard_error(se, df, power=1 - (1 - stats.POWER) / 2, alternative="larger")


def _bound_mde(a: np.ndarray, b: np.ndarray) -> float:
    """The smallest distance to a bound a one-sided (non-inferiority) test crosses with 80 %
    power when the true difference is 0."""
    _, se, df = stats.welch_parts(a, b)
    return stats.mde_from_standard_error(se, df, alternative="larger")


def _pooled_sd(a: np.ndarray, b: np.ndarray) -> float:
    return float(math.sqrt(((a.size - 1) * a.var(ddof=1) + (b.size - 1) * b.var(ddof=1)) / (a.size + b.size - 2)))


def _claims_of(part: pd.DataFrame, floors: pd.DataFrame | None, effects: dict[str, dict[str, float]],
               level: float) -> list[dict[str, Any]]:
    """The six claims on one data set's converged Table-1 rows (accuracy and fairness in %)."""
    def values(label: str, metric: str) -> np.ndarray:
        return 100 * part.loc[part["method_label"] == label, metric].to_numpy(float)

    def within(*labels: str) -> bool:
        if floors is None:
            return False
        mine = floors[floors["method_label"].isin(labels)]
        return bool(len(mine)) and bool(mine["within_floor"].all())

    def floor_note(*labels: str) -> str:
        if floors is None:
            return "; noise floor not checked (rows without group_counts)"
        mine = floors[floors["method_label"].isin(labels)]
        return f"; {int(mine['within_floor'].sum())} of {len(mine)} models' RMS TPR gaps within the noise floor"

    drop = max(e["dd_accuracy_drop"] for e in effects.values())  # the largest drop the paper calls "similar"
    marginal = max(e["dd_fairness_gain"] for e in effects.values())  # the largest gain it calls "marginal"
    out: list[dict[str, Any]] = []

    def add(claim: int, statement: str, a: np.ndarray, b: np.ndarray, *, kind: str, margin: float | None,
            paper_effect: float | None, margin_source: str, floor_labels: tuple[str, ...], evidence: str) -> None:
        """``kind``: "larger" (mean(a) > mean(b)), "equivalent" (|mean(a) − mean(b)| < margin),
        "not_below" (mean(a) − mean(b) > −margin) or "not_above" (mean(a) − mean(b) < margin)."""
        extra = {"units": UNITS}
        if min(a.size, b.size) < 2:
            verdict = stats.decide(p_support=[], p_contradict=[])
            out.append(stats.claim_row(paper=PAPER, claim=claim, statement=statement, chapter=CHAPTER, dataset="",
                                       verdict=verdict, unit=UNIT, n=f"{a.size} + {b.size}", tests=0,
                                       evidence="; ".join(filter(None, (evidence, "needs 2 converged seeds of each"))),
                                       **extra))
            return
        effect, low, high = stats.welch_interval(a, b)
        floor = within(*floor_labels) if floor_labels else False
        if kind == "larger":
            support, against = stats.welch(a, b, alternative="larger"), stats.welch(a, b, alternative="smaller")
            absent = [stats.tost(a, b, margin=margin)] if margin else None
            mde = stats.minimum_detectable_effect(a.size, b.size, _pooled_sd(a, b))
        elif kind == "equivalent":
            support = stats.tost(a, b, margin=margin)
            # "against": a difference beyond the margin, on the side it lies
            against = (stats.welch(a, b, alternative="smaller", null=-margin) if effect < 0
                       else stats.welch(a, b, alternative="larger", null=margin))
            absent, mde = None, _equivalence_mde(a, b)
        elif kind == "not_below":
            support = stats.welch(a, b, alternative="larger", null=-margin)
            against = stats.welch(a, b, alternative="smaller", null=-margin)
            absent, mde = None, _bound_mde(a, b)
        else:  # not_above
            support = stats.welch(a, b, alternative="smaller", null=margin)
            against = stats.welch(a, b, alternative="larger", null=margin)
            absent, mde = None, _bound_mde(a, b)
        verdict = stats.decide(p_support=[support], p_contradict=[against], p_absent=absent,
                               margin=margin if kind == "larger" else None, margin_source=margin_source,
                               mde=mde, paper_effect=paper_effect, within_floor=floor, level=level)
        if kind != "larger" and verdict.verdict == "untestable here":
            verdict = stats.Verdict(verdict.verdict, verdict.reason + f" (margin {margin:.3g} points: {margin_source})")
        out.append(stats.claim_row(
            paper=PAPER, claim=claim, statement=statement, chapter=CHAPTER, dataset="", verdict=verdict,
            effect=effect, ci_low=low, ci_high=high, mde=mde, paper_effect=paper_effect, unit=UNIT,
            n=f"{a.size} + {b.size}", tests=1, evidence=evidence + (floor_note(*floor_labels) if floor_labels else ""),
            **extra,
        ))

    a_std, a_dd = values("STANDARD", "accuracy"), values("DD", "accuracy")
    f_std, f_dd = values("STANDARD", "fairness"), values("DD", "fairness")
    add(1, "DD achieves similar accuracy to STANDARD (its accuracy within the largest drop the paper calls "
           f"similar, {drop:.1f} points)", a_dd, a_std, kind="equivalent", margin=drop, paper_effect=drop,
        margin_source="the largest accuracy drop the paper calls similar (BIOS, Table 1)", floor_labels=(),
        evidence=f"accuracy {a_dd.mean():.1f} (DD) vs {a_std.mean():.1f} (STANDARD)" if a_dd.size and a_std.size else "")
    gap_std, gap_dd = 100 - f_std.mean() if f_std.size else np.nan, 100 - f_dd.mean() if f_dd.size else np.nan
    retained = f"; DD retains {100 * gap_dd / gap_std:.0f} % of STANDARD's RMS TPR gap" if gap_std and gap_std > 0 else ""
    add(2, "DD retains the data's bias: its fairness is at most marginally better than STANDARD's (by less than "
           f"the paper's largest such gain, {marginal:.1f} points)", f_dd, f_std, kind="not_above", margin=marginal,
        paper_effect=marginal, margin_source="the paper's largest fairness gain of DD over STANDARD (BIOS, Table 1), "
                                             "which it calls marginal", floor_labels=("STANDARD", "DD"),
        evidence=(f"fairness {f_dd.mean():.1f} (DD) vs {f_std.mean():.1f} (STANDARD){retained}"
                  if f_dd.size and f_std.size else ""))
    for i, x in enumerate(("bteo", "adv")):
        label = f"DD + {x.upper()}"
        f_x = values(label, "fairness")
        gain = min(e[f"{x}_fairness_gain"] for e in effects.values())
        add(3 + i, f"{label} improves fairness over DD (the paper: substantially; its smaller gain "
                   f"{gain:.1f} points)", f_x, f_dd, kind="larger", margin=gain, paper_effect=gain,
            margin_source="the paper's smaller gain (Table 1)", floor_labels=("DD", label),
            evidence=(f"fairness {f_x.mean():.1f} ({label}) vs {f_dd.mean():.1f} (DD)" if f_x.size and f_dd.size else ""))
    for i, x in enumerate(("bteo", "adv")):
        label = f"DD + {x.upper()}"
        a_x = values(label, "accuracy")
        change = {d: e[f"{x}_accuracy_change"] for d, e in effects.items()}
        said = ", ".join(f"{d} {c:+.1f}" for d, c in change.items())
        add(5 + i, f"{label} retains DD's accuracy (not lower by more than {drop:.1f} points; the paper's "
                   f"changes: {said} points)", a_x, a_dd, kind="not_below", margin=drop, paper_effect=drop,
            margin_source="the largest accuracy drop the paper calls similar", floor_labels=(),
            evidence=(f"accuracy {a_x.mean():.1f} ({label}) vs {a_dd.mean():.1f} (DD)" if a_x.size and a_dd.size else ""))
    return out


def claims(df: pd.DataFrame, size: int | None = None, *, level: float = stats.LEVEL,
           checks: pd.DataFrame | None = None, text: bool = False) -> pd.DataFrame:
    """Han et al.'s claims, judged per data set from our rows (no verdict is written in).

    On Table 1's converged rows of the paper's data sets (``text=True``: of the text section;
    protected attribute as input; DD at ``size``, default the rows' ``table_size``), the unit one
    seed (:data:`UNIT`: each distilled set trains one model), accuracy and fairness in points:

    1. DD's accuracy is equivalent to STANDARD's within the largest drop the paper calls similar
       (TOST; "untestable here" when that margin is below what the seeds can confirm);
    2. DD's fairness is not better than STANDARD's by the paper's "marginal" gain or more (a
       one-sided test against that bound);
    3–4. DD + BTEO / DD + ADV are fairer than DD (one-sided Welch; "absent" by TOST at the
       paper's smaller gain; "untestable here" where that gain is below the MDE);
    5–6. DD + BTEO / DD + ADV are not less accurate than DD by more than the "similar" drop.

    Claims 2–4 rest on the RMS TPR gap: "untestable here" when every model they compare has a gap
    within its noise floor (:func:`fairness_checks`, or ``checks`` when the page has computed
    them for these rows and ``size``; skipped, and said so, for rows without ``group_counts``).

    Returns
    -------
    :data:`fairdd.stats.CLAIM_COLUMNS` (``dataset`` our data set, the stand-ins named), then
    ``source`` (the rows' data set name), ``units`` and ``evidence``.
    """
    df = _section(df, text)
    if df.empty:
        raise ValueError(f"the rows hold no {'text-section' if text else 'feature-vector'} model to judge")
    size = _default_size(df) if size is None else size
    sel = _table1_rows(df, size, converged_only=True)
    if checks is None:
        floors = fairness_checks(df, size, text=text)
    else:
        wanted = _table1_rows(df, size, converged_only=False)[["dataset", "method_label", "seed"]]
        merged = wanted.merge(checks[["dataset", "method_label", "seed"]], how="left", indicator=True)
        if (merged["_merge"] == "left_only").any():
            raise ValueError("checks do not cover every Table-1 model of the rows: pass "
                             "embedding_report.fairness_checks(rows, size)")
        floors = checks
    effects = paper_effects()
    rows: list[dict[str, Any]] = []
    for dataset in dict.fromkeys(sel["dataset"]):
        mine = None if floors is None else floors[floors["dataset"] == dataset]
        for row in _claims_of(sel[sel["dataset"] == dataset], mine, effects, level):
            row["dataset"] = DATASET_LABELS.get(dataset, dataset)
            rows.append({**row, "source": dataset})
    columns = [*stats.CLAIM_COLUMNS, "source", "units", "evidence"]
    return pd.DataFrame(rows, columns=columns)


def answerable(claim_table: pd.DataFrame) -> pd.DataFrame:
    """"Can this profile answer the paper?" (:func:`fairdd.stats.answerable`) with each claim's
    statement: the smallest effect each test could detect (MDE, points) beside the paper's effect
    (claims 1, 2, 5, 6: the margin the paper's own words set; 3–4: its smaller fairness gain)."""
    table = stats.answerable(claim_table)
    table.insert(1, "statement", claim_table["statement"].to_numpy())
    table["reason"] = claim_table["reason"].to_numpy()
    return table


def text_findings(df: pd.DataFrame, size: int) -> list[str]:
    """What the text section's rows show, as sentences generated from them: each model's
    accuracy and fairness (mean ± std over seeds, %), then each of :func:`claims` on these rows
    with its verdict and reason. An empty list when ``df`` has no text-section rows."""
    rows = text_rows(df)
    if rows.empty:
        return []
    table = table1(rows, size).set_index("method")
    seeds = sorted(rows["seed"].unique().tolist())
    out = [
        f"On the template biographies ({len(seeds)} seed{'s' if len(seeds) > 1 else ''}, distilled size {size}): "
        + "; ".join(f"{label} accuracy {table.loc[label, 'accuracy']}, fairness {table.loc[label, 'fairness']}"
                    for label in _LABELS if label in table.index)
        + "."
    ]
    for _, claim in claims(rows, size, text=True).iterrows():
        out.append(f"*{claim['statement']}*: **{claim['verdict']}** on these rows — {claim['reason']} "
                   f"({claim['evidence']}).")
    return out
