"""Tables, tests and figures of the DD-vs-KD comparison (:mod:`fairdd.studies.compare`).

Units: accuracies, DPD, EOD and DEO in % (×100); class-wise variance in squared percentage
points (population variance over the classes, ddof 0, ×10⁴); cost in seconds.

**The experimental unit** of every test is a seed's compressed model: a distilled set (or random
subset, or the whole-set baseline) with its evaluation networks averaged
(:func:`fairdd.stats.unit_means`: two classifiers trained on one set are one observation of the
method), one KD student, one teacher. DD and KD enter with the same n (the seeds).

**Group measures beside their noise floors** (:func:`floor_checks`): each model's DEO_M / DEO_A
with a bootstrap interval over the test images and the permutation noise floor
(:func:`fairdd.stats.check_measures` on the rows' ``group_counts``); a model kind is "within the
noise floor" where most of its models are.

Tests, each judged by :func:`fairdd.stats.decide` (supported / contradicted / absent / untestable
here, with the reason):

* *classes harmed* (:func:`classes_harmed`) — per compression and bias ratio, every class's
  accuracy against the teacher's (the one reference of both kinds), in absolute accuracy and
  normalised by each unit's overall accuracy (the KD paper's form): one-sided Welch over units,
  Holm over the classes; "absent" is TOST within :data:`MARGIN` for every class;
* *mitigations* (:func:`mitigation_tests`) — per bias ratio, each mitigation against the
  compression it mitigates (DM + balanced sampling vs DM, DM + FairDD vs DM, DC + FairDD vs DC,
  FairDD vs balanced sampling; KD at the highest T vs T = 1, at the second α vs the first, and on
  balanced batches vs plain at each balanced T), on bias-conflicting accuracy and DEO_A:
  one-sided Welch in the mitigation's direction and against it, Holm over the table per measure
  and direction, TOST at :data:`MARGIN`; DEO_A comparisons where both sides are within the noise
  floor are "untestable here";
* *FairDD's claims* (:func:`claims`; Zhou et al., "FairDD: Fair Dataset Distillation via
  Synchronized Matching", zqhang/FairDD@37eef67) — synchronized matching lowers DEO_M and DEO_A
  and raises accuracy against vanilla DM, per bias ratio.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import matplotlib.pyplot as plt
from matplotlib.ticker import NullFormatter, ScalarFormatter
import numpy as np
import pandas as pd
from scipy.stats import spearmanr

from fairdd import stats
from fairdd.data import study_data
from fairdd.distill.synchronized import expected_targets
from fairdd.metrics import holm_adjust
from fairdd.studies._study import mean_std
from fairdd.studies.compare import LABELS, REFERENCE, CompareStudyConfig

__all__ = [
    "CHAPTER",
    "MARGIN",
    "MEASURES",
    "batch_analysis",
    "classes_harmed",
    "claims",
    "findings",
    "floor_checks",
    "floor_table",
    "mitigation_tests",
    "pareto_front",
    "plot_pareto",
    "summary_table",
]

ALPHA = stats.LEVEL
CHAPTER = "compare_dd_kd"
FAIRDD = "Zhou et al., FairDD: Fair Dataset Distillation via Synchronized Matching"
#: The equivalence margin of every TOST here (a stated margin, not a paper's effect: FairDD's
#: effect sizes are not transcribed in this book): 5 percentage points of accuracy, DEO or
#: normalised class accuracy.
MARGIN = 0.05
MARGIN_SOURCE = "a stated margin of 5 points"
#: Bootstrap resamples and permutations per model and measure (the page checks every model).
RESAMPLES = 400
#: The group measures checked against their floors.
FLOOR_MEASURES = ("deo_max", "deo_mean")
#: Measure column → (page label, scale, higher is better).
MEASURES = {
    "accuracy": ("accuracy, unbiased test (%)", 100, True),
    "acc_conflicting": ("bias-conflicting accuracy (%)", 100, True),
    "worst_class": ("worst-class accuracy (%)", 100, True),
    "classwise_variance": ("class-wise variance (pp²)", 1e4, False),
    "dpd": ("DPD over colours (%)", 100, False),
    "eod": ("EOD over colours (%)", 100, False),
    "deo_max": ("DEO_M (%)", 100, False),
    "deo_mean": ("DEO_A (%)", 100, False),
}
#: The experimental unit: one seed's compressed model (a distilled set: its networks averaged).
UNIT = ["bias_ratio", "model", "compression", "seed"]
UNIT_TEXT = "a seed's compressed model (a distilled set with its evaluation networks averaged; a KD student)"


def _label(compression: str, temperature: float, alpha: float) -> str:
    if compression in ("kd", "kd_balanced"):
        return f"{LABELS[compression]}, T = {temperature:g}, α = {alpha:g}"
    return LABELS[compression]


def _keyed(rows: pd.DataFrame) -> pd.DataFrame:
    out = rows.copy()
    out["model"] = [_label(c, t, a) for c, t, a in zip(out["compression"], out["temperature"], out["alpha"])]
    return out


def _class_columns(frame: pd.DataFrame) -> list[str]:
    return sorted((c for c in frame.columns if c.startswith("acc_class_")), key=lambda c: int(c.rsplit("_", 1)[1]))


def _units(keyed: pd.DataFrame, values: Sequence[str]) -> pd.DataFrame:
    """One row per experimental unit (:data:`UNIT`), the mean of its networks' ``values``."""
    return stats.unit_means(keyed, unit=UNIT, value=list(values))


def summary_table(rows: pd.DataFrame) -> pd.DataFrame:
    """Per bias ratio × compression (× T): mean ± std over units (seeds; a distilled set's
    networks averaged) of every measure and the cost."""
    keyed = _keyed(rows)
    units = _units(keyed, [*MEASURES, "cost_s"])
    out = []
    for (ratio, model), g in units.groupby(["bias_ratio", "model"], sort=False):
        row = {"bias ratio": ratio, "model": model, "units": len(g), "models": int(g["replicates"].sum())}
        for col, (label, scale, _) in MEASURES.items():
            row[label] = mean_std(g[col], scale=scale)
        row["cost (s)"] = mean_std(g["cost_s"], digits=0)
        out.append(row)
    order = list(dict.fromkeys(keyed["model"]))
    table = pd.DataFrame(out)
    return table.sort_values(["bias ratio", "model"], key=lambda c: c.map(order.index) if c.name == "model" else c,
                             kind="stable").reset_index(drop=True)


# ------------------------------------------------------------------------ noise floors


def floor_checks(rows: pd.DataFrame, measures: Sequence[str] = FLOOR_MEASURES, *,
                 resamples: int = RESAMPLES) -> pd.DataFrame:
    """Every model's group measures beside their bootstrap interval and noise floor
    (:func:`fairdd.stats.check_measures` on ``group_counts``): one row per model and measure."""
    keyed = _keyed(rows)
    keep = ["bias_ratio", "model", "compression", "seed", "network"]
    frames = [stats.check_measures(keyed, m, counts_column="group_counts", keep=keep, resamples=resamples)
              for m in measures]
    return pd.concat(frames, ignore_index=True)


def floor_table(checks: pd.DataFrame) -> pd.DataFrame:
    """Per bias ratio, model kind and measure: the mean value, interval and floor over its models
    (in %), how many models are within the floor, and the kind's mark."""
    out = []
    for (ratio, model, measure), g in checks.groupby(["bias_ratio", "model", "measure"], sort=False):
        within = int(g["within_floor"].sum())
        out.append({"bias ratio": ratio, "model": model, "measure": MEASURES[measure][0],
                    "value (%)": 100 * g["value"].mean(), "CI low (%)": 100 * g["ci_low"].mean(),
                    "CI high (%)": 100 * g["ci_high"].mean(), "noise floor (%)": 100 * g["floor"].mean(),
                    "models within the floor": f"{within} of {len(g)}",
                    "mark": "within the noise floor" if _within(g) else "above the noise floor"})
    return pd.DataFrame(out)


def _within(g: pd.DataFrame) -> bool:
    """A model kind is within the floor where at least half of its models are."""
    return bool(len(g)) and 2 * int(g["within_floor"].sum()) >= len(g)


def _kind_within(checks: pd.DataFrame | None, ratio: float, model: str, measure: str) -> bool:
    if checks is None or measure not in set(checks["measure"]):
        return False
    g = checks[(checks["bias_ratio"] == ratio) & (checks["model"] == model) & (checks["measure"] == measure)]
    return _within(g)


def _ratio_within(checks: pd.DataFrame | None, ratio: float, measure: str) -> tuple[int, int]:
    """(kinds within the floor, kinds) at one bias ratio."""
    if checks is None or measure not in set(checks["measure"]):
        return 0, 0
    at = checks[(checks["bias_ratio"] == ratio) & (checks["measure"] == measure)]
    kinds = [_within(g) for _, g in at.groupby("model", sort=False)]
    return sum(kinds), len(kinds)


# ---------------------------------------------------------------- synchronized matching


def batch_analysis(config: CompareStudyConfig) -> pd.DataFrame:
    """FairDD's expected target and step on this profile's training sets
    (:func:`fairdd.distill.synchronized.expected_targets` with DM's ``batch_real``): per bias
    ratio, averaged over the classes, the majority colour (the class's own at r > 0.1) and the
    others. Weights in %, the step as a multiple of DM's."""
    out = []
    for ratio in config.bias_ratios:
        train = study_data(config.data, ratio)[0]
        k = train.num_classes
        g = len(train.attribute_values) if train.attribute_values else int(train.attributes.max()) + 1
        sizes = np.zeros((k, g), dtype=np.int64)
        np.add.at(sizes, (train.labels.cpu().numpy(), train.attributes.cpu().numpy()), 1)
        e = expected_targets(sizes, config.dm.batch_real)
        major = sizes.argmax(1)
        rows = np.arange(k)
        minority = np.ones_like(sizes, dtype=bool)
        minority[rows, major] = False
        minority &= sizes > 0
        out.append({
            "bias ratio": ratio,
            "images per class": int(sizes.sum(1).mean()),
            "real images per class and step": config.dm.batch_real,
            "largest colour's images": float(sizes[rows, major].mean()),
            "another colour present in (% of batches)": 100 * float(e.presence[minority].mean()),
            "largest colour's weight, DM (%)": 100 * float(e.share[rows, major].mean()),
            "largest colour's weight, DM + FairDD (%)": 100 * float(e.weights[rows, major].mean()),
            "largest colour's weight, DM + balanced sampling (%)": 100 * float(e.balanced[rows, major].mean()),
            "FairDD's step (× DM's), uniform batches": float(e.step.mean()),
            # A balanced batch holds min(batch, groups) groups (RealSampler gives each a share).
            "FairDD's step (× DM's), balanced batches": float(np.minimum((sizes > 0).sum(1), config.dm.batch_real).mean()),
        })
    return pd.DataFrame(out)


# ----------------------------------------------------------------------- classes harmed


def classes_harmed(rows: pd.DataFrame, *, alpha: float = ALPHA, margin: float = MARGIN) -> pd.DataFrame:
    """Per bias ratio × compression (× T) and form (absolute / relative accuracy): the classes
    significantly below (harmed) and above (helped) the teacher's, and the verdict on "harms a
    class" (:func:`fairdd.stats.decide`, need="any").

    Absolute: the class's accuracy; relative: divided by the unit's overall accuracy (the KD
    paper's normalisation, so a uniformly weaker model harms no class). One-sided Welch over units
    (equal n for DD and KD: the seeds) per class, Holm over the classes; "absent": TOST within
    ``margin`` for every class; the MDE is the one-sided t test's at Holm's first step
    (``alpha / classes``) for the pooled standard deviation of the class accuracies.
    """
    keyed = _keyed(rows)
    cols = _class_columns(keyed)
    units = _units(keyed, [*cols, "accuracy"])
    out = []
    for (ratio, model), g in units.groupby(["bias_ratio", "model"], sort=False):
        compression = g["compression"].iloc[0]
        if compression not in REFERENCE:
            continue
        ref = units[(units["bias_ratio"] == ratio) & (units["compression"] == REFERENCE[compression])]
        if len(g) < 2 or len(ref) < 2:
            continue
        for form in ("absolute", "relative"):
            a, b = g[cols].to_numpy(float), ref[cols].to_numpy(float)
            if form == "relative":
                if (g["accuracy"] <= 0).any() or (ref["accuracy"] <= 0).any():
                    continue
                a, b = a / g["accuracy"].to_numpy(float)[:, None], b / ref["accuracy"].to_numpy(float)[:, None]
            harm = [stats.welch(a[:, c], b[:, c], alternative="smaller") for c in range(len(cols))]
            help_ = [stats.welch(a[:, c], b[:, c], alternative="larger") for c in range(len(cols))]
            same = [stats.tost(a[:, c], b[:, c], margin=margin) for c in range(len(cols))]
            sd = float(np.sqrt(np.mean((a.var(axis=0, ddof=1) * (len(a) - 1) + b.var(axis=0, ddof=1) * (len(b) - 1))
                                       / (len(a) + len(b) - 2))))
            mde = stats.minimum_detectable_effect(len(a), len(b), sd, level=alpha / len(cols))
            scale = 100 if form == "absolute" else 1
            v = stats.decide(p_support=harm, p_contradict=help_, need="any", p_absent=same, margin=scale * margin,
                             margin_source=MARGIN_SOURCE if form == "absolute" else "a stated margin of 0.05 of the "
                             "reference's normalised class accuracy", mde=scale * mde, level=alpha)
            out.append({"bias ratio": ratio, "model": model, "form": form,
                        "units (model / reference)": f"{len(a)} / {len(b)}",
                        "classes harmed (Holm)": int((holm_adjust(harm) < alpha).sum()),
                        "classes helped (Holm)": int((holm_adjust(help_) < alpha).sum()),
                        "classes": len(cols),
                        "largest mean drop": scale * float(np.max(b.mean(0) - a.mean(0))),
                        "MDE": scale * mde,
                        "verdict: harms a class": v.verdict, "reason": v.reason})
    return pd.DataFrame(out)


# -------------------------------------------------------------------------- mitigations


#: (mitigated, plain) pairs: what each mitigation is judged against.
PAIRS: tuple[tuple[str, str], ...] = (
    ("dm_balanced", "dm"),
    ("dm_fairdd", "dm"),
    ("dm_fairdd", "dm_balanced"),
    ("dc_fairdd", "dc"),
)
#: The measures the mitigations are judged on.
MITIGATION_MEASURES = ("acc_conflicting", "deo_mean")


def _pairs(units: pd.DataFrame, alphas: Sequence[float]) -> list[tuple[Any, str, str, pd.DataFrame, pd.DataFrame]]:
    """(ratio, mitigation label, against label, its units, the others') of every comparison;
    ``alphas``: the KD students' α in the config's order (the first is the reference α)."""
    temps = sorted(t for t in units["temperature"].dropna().unique()) if "temperature" in units else []
    present = set(units["compression"])
    pairs = [(a, b) for a, b in PAIRS if a in present and b in present]
    out = []
    for ratio in dict.fromkeys(units["bias_ratio"]):
        at = units[units["bias_ratio"] == ratio]
        out += [(ratio, LABELS[a], LABELS[b], at[at["compression"] == a], at[at["compression"] == b]) for a, b in pairs]
        kd_rows = at[at["compression"] == "kd"]
        if len(temps) >= 2 and alphas:
            hot, cold, a0 = temps[-1], temps[0], alphas[0]

            def kd_at(frame: pd.DataFrame, t: float, a: float) -> pd.DataFrame:
                return frame[(frame["temperature"] == t) & (frame["alpha"] == a)]

            out.append((ratio, _label("kd", hot, a0), _label("kd", cold, a0), kd_at(kd_rows, hot, a0),
                        kd_at(kd_rows, cold, a0)))
            for a in alphas[1:]:
                out.append((ratio, _label("kd", hot, a), _label("kd", hot, a0), kd_at(kd_rows, hot, a),
                            kd_at(kd_rows, hot, a0)))
            balanced = at[at["compression"] == "kd_balanced"]
            for t in sorted(balanced["temperature"].dropna().unique()):
                if len(kd_at(kd_rows, t, a0)):
                    out.append((ratio, _label("kd_balanced", t, a0), _label("kd", t, a0), kd_at(balanced, t, a0),
                                kd_at(kd_rows, t, a0)))
    return [p for p in out if len(p[3]) >= 2 and len(p[4]) >= 2]


def _unit_frame(rows: pd.DataFrame, values: Sequence[str]) -> pd.DataFrame:
    keyed = _keyed(rows)
    units = _units(keyed, values)
    extra = keyed.groupby(UNIT, sort=True, dropna=False)[["temperature", "alpha"]].first().reset_index()
    return units.merge(extra, on=UNIT, how="left")


def _alphas(rows: pd.DataFrame) -> list[float]:
    """The KD students' α in the rows' (the config's) order."""
    return list(dict.fromkeys(rows.loc[rows["compression"] == "kd", "alpha"].dropna()))


def _comparison(a: np.ndarray, b: np.ndarray, higher_better: bool, alpha: float, family: int = 1) -> dict[str, float]:
    """One-sided p-values in the better / worse direction, TOST, the MDE (one-sided, at Holm's
    first step ``alpha / family``) and the Welch interval."""
    better, worse = ("larger", "smaller") if higher_better else ("smaller", "larger")
    sd = float(np.sqrt(((len(a) - 1) * a.var(ddof=1) + (len(b) - 1) * b.var(ddof=1)) / (len(a) + len(b) - 2)))
    effect, low, high = stats.welch_interval(a, b, confidence=1 - alpha)
    return {"p_better": stats.welch(a, b, alternative=better), "p_worse": stats.welch(a, b, alternative=worse),
            "p_same": stats.tost(a, b, margin=MARGIN), "mde": stats.minimum_detectable_effect(len(a), len(b), sd, level=alpha / family),
            "effect": effect, "low": low, "high": high}


def mitigation_tests(rows: pd.DataFrame, checks: pd.DataFrame | None = None, *, alpha: float = ALPHA) -> pd.DataFrame:
    """Each mitigation against what it mitigates, per bias ratio and measure (bias-conflicting
    accuracy, DEO_A): the difference of unit means with its Welch interval (in points), the MDE,
    and the verdict on "the mitigation improves the measure" (:func:`fairdd.stats.decide`).

    The one-sided p-values are Holm-adjusted over the table per measure and direction before
    the verdict (one family per measure, as before; the MDE at Holm's first step); TOST at :data:`MARGIN`. ``checks``
    (:func:`floor_checks`): a DEO_A comparison whose both sides are within the noise floor is
    "untestable here"."""
    units = _unit_frame(rows, MITIGATION_MEASURES)
    pairs = _pairs(units, _alphas(rows))
    out = []
    for measure in MITIGATION_MEASURES:
        label, scale, higher = MEASURES[measure]
        parts = [_comparison(ga[measure].to_numpy(float), gb[measure].to_numpy(float), higher, alpha, len(pairs))
                 for _, _, _, ga, gb in pairs]
        if not parts:
            continue
        better = holm_adjust([p["p_better"] for p in parts])
        worse = holm_adjust([p["p_worse"] for p in parts])
        same = holm_adjust([p["p_same"] for p in parts])
        for i, ((ratio, name_a, name_b, ga, gb), part) in enumerate(zip(pairs, parts)):
            floor = _kind_within(checks, ratio, name_a, measure) and _kind_within(checks, ratio, name_b, measure)
            v = stats.decide(p_support=[better[i]], p_contradict=[worse[i]], p_absent=[same[i]], margin=100 * MARGIN,
                             margin_source=MARGIN_SOURCE, mde=scale * part["mde"], within_floor=floor, level=alpha)
            out.append({"bias ratio": ratio, "mitigation": name_a, "against": name_b, "measure": label,
                        "units": f"{len(ga)} / {len(gb)}", "Δ": scale * part["effect"],
                        "CI low": scale * part["low"], "CI high": scale * part["high"], "MDE": scale * part["mde"],
                        "p better (Holm)": better[i], "p worse (Holm)": worse[i],
                        "verdict: improves": v.verdict, "reason": v.reason})
    return pd.DataFrame(out)


# --------------------------------------------------------------------------- claims


#: FairDD's claims (Zhou et al.): (claim, statement, measure, direction: higher is better).
FAIRDD_CLAIMS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("fairer", "Synchronized matching makes the distilled set fairer than vanilla DM: lower DEO_M and DEO_A "
               "on the unbiased test.", ("deo_max", "deo_mean")),
    ("accuracy", "Synchronized matching raises the distilled set's accuracy on the unbiased test over vanilla DM "
                 "when the training data are biased.", ("accuracy",)),
)


def claims(rows: pd.DataFrame, checks: pd.DataFrame | None = None, *, alpha: float = ALPHA) -> pd.DataFrame:
    """FairDD's claims on this page's rows: one row per claim, DD method and bias ratio, with
    :data:`fairdd.stats.CLAIM_COLUMNS` first (:func:`fairdd.stats.claim_row`).

    Each claim is the mitigated method (DM + FairDD, DC + FairDD) against its vanilla method,
    one-sided Welch over units per measure (need "all": both DEO measures), TOST at
    :data:`MARGIN`; a DEO claim where both sides are within the noise floor (``checks``, from
    :func:`floor_checks`) is "untestable here". The effect and interval are of the first
    measure, in points (× 100); the paper gives no effect size that this book transcribes.
    A method the profile does not run gets one row, "untestable here". Without ``checks`` the
    floors of the models involved are computed here (the same numbers: every check is seeded)."""
    units = _unit_frame(rows, ["accuracy", "deo_max", "deo_mean"])
    if checks is None:  # the replication summary calls claims(rows): the same checks, computed here
        involved = rows[rows["compression"].isin(["dm_fairdd", "dm", "dc_fairdd", "dc"])]
        checks = floor_checks(involved) if len(involved) else None
    out = []
    for method, plain in (("dm_fairdd", "dm"), ("dc_fairdd", "dc")):
        for claim, statement, measures in FAIRDD_CLAIMS:
            name = f"{LABELS[method]} vs {LABELS[plain]}: {claim}"
            ratios = [r for r in dict.fromkeys(units["bias_ratio"])
                      if len(units[(units["bias_ratio"] == r) & (units["compression"] == method)]) >= 2
                      and len(units[(units["bias_ratio"] == r) & (units["compression"] == plain)]) >= 2]
            if not ratios:
                v = stats.decide(p_support=[], p_contradict=[])
                out.append(stats.claim_row(paper=FAIRDD, claim=name, statement=statement, chapter=CHAPTER,
                                           dataset=f"colour-biased digits: {LABELS[method]} not run at this profile",
                                           verdict=v, unit=UNIT_TEXT, n=0, tests=0, bias_ratio=np.nan))
                continue
            for ratio in ratios:
                at = units[units["bias_ratio"] == ratio]
                ga, gb = at[at["compression"] == method], at[at["compression"] == plain]
                parts = [_comparison(ga[m].to_numpy(float), gb[m].to_numpy(float), MEASURES[m][2], alpha,
                                     len(measures)) for m in measures]
                floor = any(_kind_within(checks, ratio, LABELS[method], m) and _kind_within(checks, ratio, LABELS[plain], m)
                            for m in measures if m in FLOOR_MEASURES)
                v = stats.decide(p_support=[p["p_better"] for p in parts], p_contradict=[p["p_worse"] for p in parts],
                                 need="all", p_absent=[p["p_same"] for p in parts], margin=100 * MARGIN,
                                 margin_source=MARGIN_SOURCE, mde=100 * max(p["mde"] for p in parts), within_floor=floor,
                                 level=alpha)
                first = parts[0]
                out.append(stats.claim_row(
                    paper=FAIRDD, claim=name, statement=statement, chapter=CHAPTER,
                    dataset=f"colour-biased digits (CMNIST-DD construction), bias ratio {ratio:g}", verdict=v,
                    effect=100 * first["effect"], ci_low=100 * first["low"], ci_high=100 * first["high"],
                    mde=100 * max(p["mde"] for p in parts), paper_effect=None, unit=UNIT_TEXT,
                    n=f"{len(ga)} / {len(gb)}", tests=len(parts), bias_ratio=ratio,
                    measure=", ".join(MEASURES[m][0] for m in measures)))
    frame = pd.DataFrame(out)
    return frame[[*stats.CLAIM_COLUMNS, *[c for c in frame.columns if c not in stats.CLAIM_COLUMNS]]]


def pareto_front(points: pd.DataFrame, measure: str) -> pd.DataFrame:
    """The models no other model beats on both cost (lower) and ``measure`` (per its direction):
    ``points`` has one row per model kind with ``cost_s`` and ``measure`` means."""
    better = MEASURES[measure][2]
    keep = []
    for i, r in points.iterrows():
        dominated = False
        for j, o in points.iterrows():
            if i == j:
                continue
            as_good = o["cost_s"] <= r["cost_s"] and (o[measure] >= r[measure] if better else o[measure] <= r[measure])
            strictly = o["cost_s"] < r["cost_s"] or (o[measure] > r[measure] if better else o[measure] < r[measure])
            if as_good and strictly:
                dominated = True
                break
        keep.append(not dominated)
    return points[keep].sort_values("cost_s")


def _floor_note(checks: pd.DataFrame | None, ratio: float, measure: str) -> str | None:
    """Where most model kinds at ``ratio`` are within ``measure``'s noise floor: the sentence that
    says so (generated from :func:`floor_checks`); else ``None``."""
    within, kinds = _ratio_within(checks, ratio, measure)
    if not kinds or 2 * within <= kinds:
        return None
    return f"{MEASURES[measure][0].split(' (')[0]} is within its noise floor for {within} of {kinds} model kinds"


def plot_pareto(rows: pd.DataFrame, measures: Sequence[str] = ("acc_conflicting", "deo_mean"),  # noqa: ANN201
                checks: pd.DataFrame | None = None):
    """Per bias ratio (rows) and measure (columns): each model kind's mean measure against its
    mean cost (log scale), the Pareto front drawn through the undominated ones. A panel whose
    measure is within its noise floor for most kinds (``checks``) says so in its title."""
    keyed = _keyed(rows)
    ratios = list(dict.fromkeys(keyed["bias_ratio"]))
    fig, axes = plt.subplots(len(ratios), len(measures), figsize=(5.2 * len(measures), 3.8 * len(ratios)), squeeze=False)
    for r_i, ratio in enumerate(ratios):
        means = keyed[keyed["bias_ratio"] == ratio].groupby("model", sort=False)[["cost_s", *measures]].mean()
        means = means.reset_index()
        for m_i, measure in enumerate(measures):
            ax = axes[r_i][m_i]
            label, scale, _ = MEASURES[measure]
            colours = plt.get_cmap("tab20")
            for k, row in means.iterrows():
                marker = "s" if row["model"].startswith(("KD", "teacher", "student")) else "o"
                ax.scatter(row["cost_s"], scale * row[measure], marker=marker, color=colours(k % 20), label=row["model"])
            front = pareto_front(means, measure)
            ax.plot(front["cost_s"], scale * front[measure], "k--", linewidth=0.8)
            ax.set_xscale("log")
            ax.xaxis.set_minor_formatter(NullFormatter())
            ax.xaxis.set_major_formatter(ScalarFormatter())
            ax.set_xlabel("cost: distillation / teacher + training (s)")
            ax.set_ylabel(label)
            note = _floor_note(checks, ratio, measure)
            ax.set_title(f"bias ratio {ratio:g}" + (f"\n{note}: the front re-plots accuracy" if note else ""), fontsize=9)
            if r_i == 0 and m_i == len(measures) - 1:
                ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.02, 0.5))
    fig.tight_layout()
    return fig


def findings(rows: pd.DataFrame, checks: pd.DataFrame | None = None, batch: pd.DataFrame | None = None, *,
             alpha: float = ALPHA) -> str:
    """Markdown bullets generated from the rows: the fronts (a DEO front within the noise floor
    says it re-plots accuracy, with the rank correlation of the kinds' accuracy and DEO), the
    expected target of synchronized matching (``batch``: :func:`batch_analysis`), the harmed
    classes and the mitigations' verdicts."""
    keyed = _keyed(rows)
    lines = []
    tests = mitigation_tests(rows, checks, alpha=alpha)
    for ratio in dict.fromkeys(keyed["bias_ratio"]):
        means = keyed[keyed["bias_ratio"] == ratio].groupby("model", sort=False)[["cost_s", *MEASURES]].mean().reset_index()
        for measure in ("acc_conflicting", "deo_mean"):
            label, scale, _ = MEASURES[measure]
            front = pareto_front(means, measure)
            line = (f"Bias ratio {ratio:g}, {label} against cost: the front is "
                    + "; ".join(f"{r.model} ({scale * r[measure]:.1f} at {r.cost_s:.3g} s)" for _, r in front.iterrows())
                    + ".")
            note = _floor_note(checks, ratio, measure)
            if note:
                varied = len(means) > 2 and np.ptp(means["accuracy"]) > 0 and np.ptp(means[measure]) > 0
                rho = spearmanr(means["accuracy"], means[measure]).statistic if varied else float("nan")
                line += (f" {note}, so this front re-plots accuracy, not colour fairness (Spearman ρ of the kinds' "
                         f"mean accuracy and mean {label.split(' (')[0]}: {rho:.2f}).")
            lines.append(line)
    if batch is not None:
        for _, b in batch.iterrows():
            if b["largest colour's weight, DM (%)"] <= b["largest colour's weight, DM + balanced sampling (%)"] + 1e-9:
                continue
            present, batch_n, per_class = (b["another colour present in (% of batches)"],
                                           int(b["real images per class and step"]), int(b["images per class"]))
            w_fair, w_dm, w_bal = (b["largest colour's weight, DM + FairDD (%)"], b["largest colour's weight, DM (%)"],
                                   b["largest colour's weight, DM + balanced sampling (%)"])
            step, step_bal = b["FairDD's step (× DM's), uniform batches"], b["FairDD's step (× DM's), balanced batches"]
            line = (f"Bias ratio {b['bias ratio']:g}: another colour is in {present:.0f} % of DM's real batches "
                    f"({batch_n} of {per_class} images per class), so FairDD's expected target weights the largest "
                    f"colour {w_fair:.1f} % (DM {w_dm:.0f} %, balanced sampling {w_bal:.0f} %) and its step is "
                    f"{step:.2f}× DM's (not {step_bal:.0f}×).")
            vs = tests[(tests["bias ratio"] == b["bias ratio"]) & (tests["mitigation"] == LABELS["dm_fairdd"])
                       & (tests["against"] == LABELS["dm_balanced"])] if len(tests) else tests
            for _, t in vs.iterrows():
                line += (f" DM + FairDD against DM + balanced sampling, {t['measure']}: Δ {t['Δ']:+.1f} "
                         f"({t['verdict: improves']}).")
            lines.append(line)
    harmed = classes_harmed(rows, alpha=alpha)
    for (ratio, form), g in (harmed.groupby(["bias ratio", "form"], sort=False) if len(harmed) else ()):
        found = g[g["verdict: harms a class"] == "supported"]
        absent = g[g["verdict: harms a class"] == "absent"]
        lines.append(f"Bias ratio {ratio:g}, classes harmed in {form} accuracy against the teacher "
                     f"({g['units (model / reference)'].iloc[0]} units): "
                     + ("; ".join(f"{r.model} ({r['classes harmed (Holm)']} of {r.classes})" for _, r in found.iterrows())
                        or "no model harms a class significantly")
                     + (f"; absence of a harm above {100 * MARGIN:.0f} points shown for " if form == "absolute" else
                        f"; absence of a harm above {MARGIN:g} of the normalised accuracy shown for ")
                     + (", ".join(absent["model"]) or "no model") + f"; untestable here for "
                     + f"{int((g['verdict: harms a class'] == 'untestable here').sum())} of {len(g)}.")
    for _, r in tests.iterrows():
        lines.append(f"Bias ratio {r['bias ratio']:g}: {r['mitigation']} against {r['against']}, {r['measure']}: "
                     f"Δ {r['Δ']:+.1f} [{r['CI low']:+.1f}, {r['CI high']:+.1f}], MDE {r['MDE']:.1f} — "
                     f"{r['verdict: improves']} ({r['reason']}).")
    return "\n".join(f"- {line}" for line in lines)
