"""Tables, claims and figures of the class-wise fairness study (:mod:`fairdd.studies.classwise`).

**Measures of one trained model** (one row), from its class accuracies ``acc_c`` (fractions):

* ``classwise_variance``: its variance over the K classes (population variance, ddof 0, as
  :func:`fairdd.metrics.classwise_variance`), in squared percentage points (×10⁴);
* ``worst_class``: min_c acc_c; ``gap``: max_c acc_c − min_c acc_c.

**Two estimators of "class-wise variance"** (the paper does not name its own), both ddof 0 over
classes, both in pp² (:data:`ESTIMATORS`):

* *per-model variance* (``classwise_variance``): each model's variance over classes, then the
  mean over models;
* *variance of the class means* (``variance_of_class_means``): each class's accuracy averaged
  over the models first, then the variance of these K means — the only form the authors' code
  allows: their fork's ``print_eval_distill.py`` (Kamil-Sabbagh/Data-Distillation@0882302) prints
  the per-class means of a group's runs for their plotting script, not the runs. It is smaller
  than the first by the class-by-class spread between models.

**The experimental unit** is the distilled set (a random real subset, a BLM run) within one
architecture: its classifiers share its images and are not independent observations of the
method (Hurlbert 1984). Every test runs on the unit's value (:func:`set_measures`: the mean of
its classifiers, :func:`fairdd.stats.unit_means`; for the second estimator, the variance of the
set's class means).

**The authors' 2σ filter** (their code, not the paper's text: ``print_eval_distill.py``, as
above): within one method × architecture × IPC, a run (model) is dropped when any of its class
accuracies lies more than 2σ from that class's mean over the group's runs (σ the sample std,
ddof 1). No value of a sample of n can lie more than (n − 1)/√n sample standard deviations from
the sample mean (:func:`two_sigma_reach`), so the filter can drop nothing with fewer than 6
models in a group and barely can with 6 (2.04σ); it is reported only where it can fire
(:func:`two_sigma_can_fire`).

**Tests** (all on units, :mod:`fairdd.stats`): trend = OLS slope of a unit measure on IPC over
the units of a method × architecture, with a t-based 95 % CI, one-sided p-values both ways and
the MDE of the slope (:func:`fairdd.stats.mde_from_standard_error`); DD vs BLM and DD vs the
random real subset (the control) = Welch tests over units; per-class significance =
:func:`fairdd.metrics.significant_classes` on the units' class means. Verdicts through
:func:`fairdd.stats.decide`, with equivalence margins stated in :data:`MARGINS` (the paper gives
figures only, no effect size).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from scipy import stats as sps

from fairdd import stats
from fairdd.metrics import holm_adjust, significant_classes
from fairdd.plots import image_grid, show_image_grid
from fairdd.studies._study import Root, mean_std
from fairdd.studies.classwise import (
    CONTROL, DISTILLERS, METHOD_LABELS, METHODS, PAPER_IPCS, ClasswiseStudyConfig, dataset_label, synthetic_images,
)

__all__ = [
    "CHAPTER",
    "ESTIMATORS",
    "MARGINS",
    "PAPER",
    "PAPER_SAYS",
    "UNIT",
    "blm_comparison",
    "claims",
    "class_columns",
    "control_comparison",
    "findings",
    "heatmap_frame",
    "long_format",
    "model_measures",
    "plot_heatmap",
    "plot_synthetic_grids",
    "plot_trends",
    "set_measures",
    "significance_counts",
    "summary_table",
    "trend_test",
    "trend_tests",
    "two_sigma_can_fire",
    "two_sigma_filter",
    "two_sigma_note",
    "two_sigma_reach",
    "whole_set_reading",
]

ALPHA = stats.LEVEL
VAR_SCALE = 1e4  # fractions² → squared percentage points
PAPER = "Impact of Data Distillation on Fairness in Machine Learning Models (2025)"
CHAPTER = "classwise_dd"
#: The experimental unit: one set (distilled, random real subset, or a BLM run) within one architecture.
UNIT = ("method", "architecture", "ipc", "seed")
#: The two estimators of class-wise variance, by column name (both ddof 0 over classes, pp²).
ESTIMATORS = {
    "classwise_variance": "per-model variance (each model's variance over classes, averaged over models)",
    "variance_of_class_means": "variance of the class means (class accuracies averaged over models, then "
                               "their variance over classes)",
}
#: Equivalence margins. The paper gives its results as figures only, with no effect size to take
#: a margin from, so these are our stated choices of a negligible effect: an effect is "absent"
#: when it is shown smaller than them. Accuracy: 1 percentage point (a difference or, for a
#: trend, a change across the swept IPC range) — less than any accuracy loss a practitioner
#: choosing a distilled set would weigh; variance: 10 % of the BLM's class-wise variance
#: (likewise) — a change small beside the unfairness of the model trained on all the data.
MARGINS = {"accuracy": 0.01, "variance_fraction": 0.10}
TWO_SIGMA = 2.0


def class_columns(rows: pd.DataFrame) -> list[str]:
    cols = [c for c in rows.columns if c.startswith("acc_class_")]
    return sorted(cols, key=lambda c: int(c.rsplit("_", 1)[1]))


def model_measures(rows: pd.DataFrame) -> pd.DataFrame:
    """``rows`` with ``classwise_variance`` (ddof 0, ×10⁴), ``worst_class``, ``best_class``, ``gap``."""
    acc = rows[class_columns(rows)].to_numpy(dtype=float)
    out = rows.copy()
    out["classwise_variance"] = np.nanvar(acc, axis=1, ddof=0) * VAR_SCALE
    out["worst_class"] = np.nanmin(acc, axis=1)
    out["best_class"] = np.nanmax(acc, axis=1)
    out["gap"] = out["best_class"] - out["worst_class"]
    return out


def _unit_keys(rows: pd.DataFrame) -> list[str]:
    return [c for c in UNIT if c in rows.columns]


def set_measures(rows: pd.DataFrame) -> pd.DataFrame:
    """One row per experimental unit (:data:`UNIT`): the means of its classifiers' accuracy,
    per-model variance, worst class, gap and class accuracies (:func:`fairdd.stats.unit_means`),
    the ``variance_of_class_means`` of the set (pp²), ``replicates`` (classifiers) and ``dataset``."""
    measured = model_measures(rows)
    cols = class_columns(rows)
    values = ["accuracy", "classwise_variance", "worst_class", "gap", *cols]
    units = stats.unit_means(measured, unit=_unit_keys(rows), value=values)
    units["variance_of_class_means"] = np.var(units[cols].to_numpy(float), axis=1, ddof=0) * VAR_SCALE
    units["dataset"] = measured["dataset"].iloc[0] if len(measured) else ""
    # The page's order: MTT, DM, the control, the BLM (then architecture, IPC, seed).
    order = units["method"].map({m: i for i, m in enumerate(METHODS)}).fillna(len(METHODS))
    return units.assign(_order=order).sort_values(["_order", *_unit_keys(rows)[1:]], kind="stable").drop(
        columns="_order").reset_index(drop=True)


def long_format(rows: pd.DataFrame) -> pd.DataFrame:
    """One row per model × class: ``class``, ``class_accuracy`` beside the model's columns."""
    cols = class_columns(rows)
    keep = [c for c in ("run_id", "dataset", "method", "architecture", "ipc", "seed", "network", "accuracy") if c in rows]
    out = rows[keep + cols].melt(id_vars=keep, value_vars=cols, var_name="class", value_name="class_accuracy")
    out["class"] = out["class"].str.rsplit("_", n=1).str[1].astype(int)
    return out


def _groups(rows: pd.DataFrame, *, control: bool = False) -> list[tuple[str, str]]:
    """(method, architecture) pairs of the distillers (and the control with ``control``), in row order."""
    keep = DISTILLERS + ((CONTROL,) if control else ())
    dd = rows[rows["method"].isin(keep)]
    pairs = list(dict.fromkeys(zip(dd["method"], dd["architecture"])))
    return sorted(pairs, key=lambda pair: keep.index(pair[0]))


def _select(frame: pd.DataFrame, method: str, architecture: str) -> pd.DataFrame:
    return frame[(frame["method"] == method) & (frame["architecture"] == architecture)]


# ------------------------------------------------------------------------------ the 2σ filter


def two_sigma_reach(n: int) -> float:
    """The farthest any of ``n`` values can lie from their mean, in sample standard deviations
    (ddof 1): (n − 1)/√n (attained by one value apart from n − 1 equal ones)."""
    return (n - 1) / np.sqrt(n) if n >= 2 else 0.0


def two_sigma_can_fire(n: int) -> bool:
    """Whether the authors' 2σ filter can drop any model of a group of ``n``: (n − 1)/√n > 2,
    i.e. n ≥ 6 (at 6 only just: 2.04σ)."""
    return bool(two_sigma_reach(n) > TWO_SIGMA)


def two_sigma_filter(rows: pd.DataFrame, *, by: Sequence[str] = ("method", "architecture", "ipc")) -> pd.DataFrame:
    """The rows kept by the authors' filter: within each group, drop a model when any class
    accuracy lies beyond mean ± 2σ of that class over the group (σ: sample std, ddof 1). Groups
    where it cannot fire (:func:`two_sigma_can_fire`) are kept whole."""
    cols = class_columns(rows)
    keep = pd.Series(True, index=rows.index)
    for _, group in rows.groupby(list(by), dropna=False):
        if not two_sigma_can_fire(len(group)):
            continue
        acc = group[cols].to_numpy(dtype=float)
        mean, sd = acc.mean(axis=0), acc.std(axis=0, ddof=1)
        outside = np.abs(acc - mean) > TWO_SIGMA * sd
        keep[group.index] = ~outside.any(axis=1)
    return rows[keep]


def two_sigma_note(rows: pd.DataFrame) -> str:
    """A generated sentence: where the authors' filter can fire on these rows, and what it dropped."""
    sizes = rows.groupby(["method", "architecture", "ipc"], dropna=False).size()
    kept = two_sigma_filter(rows)
    firing = [n for n in sizes if two_sigma_can_fire(n)]
    dropped = len(rows) - len(kept)
    lo, hi = int(sizes.min()), int(sizes.max())
    size_text = f"{lo}" if lo == hi else f"{lo} to {hi}"
    head = (f"The 2σ filter is the authors' code (their fork's `print_eval_distill.py`), not a step the paper "
            f"describes. No model of a group of n can lie beyond (n − 1)/√n sample standard deviations of the "
            f"group's mean — {two_sigma_reach(lo):.2f}σ at n = {lo}"
            + (f", {two_sigma_reach(hi):.2f}σ at n = {hi}" if hi != lo else "") + " — so it can fire only from n = 6 "
            f"(2.04σ, barely); the paper's groups hold 100 models. Here the groups hold {size_text} models: ")
    if not firing:
        return head + "the filter cannot drop any, and its columns are left out."
    return head + (f"it can fire in {len(firing)} of {len(sizes)} groups and drops {dropped} of {len(rows)} models "
                   f"there.")


def _variance_of_means(group: pd.DataFrame) -> float:
    cols = class_columns(group)
    return float(np.var(group[cols].to_numpy(float).mean(axis=0), ddof=0) * VAR_SCALE)


def summary_table(rows: pd.DataFrame) -> pd.DataFrame:
    """Per method × architecture × IPC (and the BLM): sets (units) and models, accuracy and the
    per-model class-wise variance (mean ± std over sets), the variance of the class means over
    the group's models, the same after the authors' 2σ filter where it can fire ("—" where it
    cannot), worst-class accuracy and the gap (mean ± std over sets)."""
    units = set_measures(rows)
    filtered = two_sigma_filter(rows)
    out = []
    keys = ["method", "architecture", "ipc"]
    for key, group in units.groupby(keys, dropna=False, sort=False):
        method, arch, ipc = key
        mask = (rows["method"] == method) & (rows["architecture"] == arch)
        mask &= rows["ipc"].isna() if pd.isna(ipc) else (rows["ipc"] == ipc)
        models = rows[mask]
        kept = filtered.loc[filtered.index.intersection(models.index)]
        fires = two_sigma_can_fire(len(models))
        out.append(
            {
                "dataset": group["dataset"].iloc[0],
                "method": METHOD_LABELS[method],
                "architecture": arch,
                "IPC": "whole set" if pd.isna(ipc) else int(ipc),
                "sets": len(group),
                "models": len(models),
                "accuracy (%)": mean_std(group["accuracy"], scale=100),
                "per-model variance (pp²)": mean_std(group["classwise_variance"]),
                "variance of class means (pp²)": f"{_variance_of_means(models):.1f}",
                "same, 2σ-filtered (pp²)": f"{_variance_of_means(kept):.1f}" if fires else "—",
                "kept by filter": f"{len(kept)} of {len(models)}" if fires else "—",
                "worst class (%)": mean_std(group["worst_class"], scale=100),
                "gap best − worst (pp)": mean_std(group["gap"], scale=100),
            }
        )
    return pd.DataFrame(out)


# ------------------------------------------------------------------------------ tests


def trend_test(x: Sequence[float], y: Sequence[float], *, confidence: float = 0.95) -> dict[str, float]:
    """OLS slope of ``y`` on ``x``: the slope, its standard error and df (n − 2), a t-based CI,
    the two-sided p and the one-sided ``p_greater`` (slope > 0) and ``p_less``, and n."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    nan = {"slope": np.nan, "se": np.nan, "df": np.nan, "ci_low": np.nan, "ci_high": np.nan, "p_value": np.nan,
           "p_greater": np.nan, "p_less": np.nan, "n": len(x)}
    if len(x) < 3 or np.ptp(x) == 0:
        return nan
    fit = sps.linregress(x, y)
    df = len(x) - 2
    half = sps.t.ppf(0.5 + confidence / 2, df) * fit.stderr
    if fit.stderr > 0:
        t = fit.slope / fit.stderr
        p_greater, p_less = float(sps.t.sf(t, df)), float(sps.t.cdf(t, df))
    else:
        p_greater, p_less = float(fit.slope <= 0), float(fit.slope >= 0)
    return {"slope": fit.slope, "se": fit.stderr, "df": df, "ci_low": fit.slope - half, "ci_high": fit.slope + half,
            "p_value": fit.pvalue, "p_greater": p_greater, "p_less": p_less, "n": len(x)}


def _scale(measure: str) -> float:
    return 100.0 if measure in ("accuracy", "worst_class", "gap") else 1.0


def _margin(measure: str, units: pd.DataFrame, architecture: str) -> float:
    """The equivalence margin of a difference in ``measure`` (its page units: pp or pp²)."""
    if measure == "accuracy":
        return MARGINS["accuracy"] * 100
    blm = units[(units["method"] == "whole") & (units["architecture"] == architecture)][measure]
    base = float(blm.mean()) if len(blm) else float(units[measure].mean())
    return MARGINS["variance_fraction"] * base


def _margin_source(measure: str) -> str:
    if measure == "accuracy":
        return "a stated margin of 1 pp"
    return f"a stated margin of {MARGINS['variance_fraction']:.0%} of the BLM's variance"


def trend_tests(rows: pd.DataFrame, measure: str, *, log_ipc: bool = False, control: bool = True) -> pd.DataFrame:
    """Per method × architecture (the control too, with ``control``): the OLS slope of the unit
    measure (:func:`set_measures`; accuracy in pp) on IPC (or ln IPC) over the units, its 95 % CI,
    two-sided p, its Holm adjustment over the table's lines, the MDE (80 % power, one-sided) and
    the equivalence p at the margin (:data:`MARGINS`, spread over the swept range)."""
    units = set_measures(rows)
    scale = _scale(measure)
    out = []
    for method, arch in _groups(units, control=control):
        g = _select(units, method, arch)
        ipc = g["ipc"].astype(float)
        x = np.log(ipc) if log_ipc else ipc
        fit = trend_test(x, g[measure] * scale)
        span = float(np.ptp(x)) if len(x) else np.nan
        margin = _margin(measure, units, arch) / span if span else np.nan
        mde = (stats.mde_from_standard_error(float(fit["se"]), float(fit["df"]))
               if np.isfinite(fit["se"]) else np.nan)
        out.append({"method": METHOD_LABELS[method], "architecture": arch, "measure": measure,
                    "regressor": "ln IPC" if log_ipc else "IPC",
                    "IPC range": f"{int(ipc.min())}–{int(ipc.max())}" if len(ipc) else "",
                    "sets": fit.pop("n"), "models": int(g["replicates"].sum()), **fit, "mde": mde, "margin": margin,
                    "p_equivalent": stats.tost_from_estimate(fit["slope"], fit["se"], fit["df"], margin=margin),
                    "_method": method})
    table = pd.DataFrame(out)
    if len(table):
        table["p_holm"] = holm_adjust(table["p_value"])
    return table


def _welch_line(a: np.ndarray, b: np.ndarray, margin: float, alternative: str) -> dict[str, float]:
    """Welch's difference mean(a) − mean(b) over units: effect, CI, one-sided p both ways, MDE, TOST p."""
    if len(a) < 2 or len(b) < 2:
        return {"effect": np.nan, "ci_low": np.nan, "ci_high": np.nan, "p_support": np.nan, "p_contradict": np.nan,
                "mde": np.nan, "p_equivalent": np.nan}
    effect, low, high = stats.welch_interval(a, b)
    other = "smaller" if alternative == "larger" else "larger"
    sd = float(np.sqrt((a.var(ddof=1) * (len(a) - 1) + b.var(ddof=1) * (len(b) - 1)) / (len(a) + len(b) - 2)))
    return {"effect": effect, "ci_low": low, "ci_high": high,
            "p_support": stats.welch(a, b, alternative=alternative),
            "p_contradict": stats.welch(a, b, alternative=other),
            "mde": stats.minimum_detectable_effect(len(a), len(b), sd),
            "p_equivalent": stats.tost(a, b, margin=margin)}


def blm_comparison(rows: pd.DataFrame, *, control: bool = True) -> pd.DataFrame:
    """Per method × architecture × IPC: the method's sets minus the BLM's runs (units), in
    accuracy (pp) and in both variance estimators (pp²): Welch difference with its 95 % CI,
    one-sided p in the paper's direction (DD less accurate; DD larger variance), Holm over the
    table, the MDE and the equivalence p at :data:`MARGINS`."""
    units = set_measures(rows)
    out = []
    for method, arch in _groups(units, control=control):
        blm = _select(units, "whole", arch)
        g = _select(units, method, arch)
        for ipc, at in g.groupby("ipc"):
            for measure, alternative in (("accuracy", "smaller"), ("classwise_variance", "larger"),
                                         ("variance_of_class_means", "larger")):
                scale = _scale(measure)
                line = _welch_line(at[measure].to_numpy(float) * scale, blm[measure].to_numpy(float) * scale,
                                   _margin(measure, units, arch), alternative)
                out.append({"method": METHOD_LABELS[method], "architecture": arch, "IPC": int(ipc),
                            "measure": measure, "sets": len(at), "BLM runs": len(blm), **line, "_method": method})
    return _holm_by_measure(pd.DataFrame(out), "p_support")


def _holm_by_measure(table: pd.DataFrame, column: str) -> pd.DataFrame:
    """``table`` with ``p_holm``: Holm's adjustment of ``column`` within each measure."""
    if len(table):
        table["p_holm"] = np.nan
        for _, idx in table.groupby("measure").groups.items():
            table.loc[idx, "p_holm"] = holm_adjust(table.loc[idx, column])
    return table


def control_comparison(rows: pd.DataFrame) -> pd.DataFrame:
    """Per distiller × architecture × IPC where the control ran: the distilled sets minus the
    random real subsets of the same IPC (units), in accuracy (pp) and per-model variance (pp²),
    with Welch's 95 % CI and two-sided p (Holm over the table, per measure)."""
    units = set_measures(rows)
    out = []
    for method, arch in _groups(units):
        ctrl = _select(units, CONTROL, arch)
        for ipc, at in _select(units, method, arch).groupby("ipc"):
            base = ctrl[ctrl["ipc"] == ipc]
            for measure in ("accuracy", "classwise_variance"):
                a, b = at[measure].to_numpy(float) * _scale(measure), base[measure].to_numpy(float) * _scale(measure)
                if len(a) < 2 or len(b) < 2:
                    continue
                effect, low, high = stats.welch_interval(a, b)
                out.append({"method": METHOD_LABELS[method], "architecture": arch, "IPC": int(ipc), "measure": measure,
                            "distilled − random": effect, "ci_low": low, "ci_high": high,
                            "p": stats.welch(a, b, alternative="two-sided"), "sets": f"{len(a)} vs {len(b)}"})
    return _holm_by_measure(pd.DataFrame(out), "p")


def significance_counts(rows: pd.DataFrame, *, alpha: float = ALPHA) -> pd.DataFrame:
    """Per method × architecture × IPC: classes whose accuracy normalised by overall accuracy
    differs from the BLM's (two-sided Welch over units — each set's class means — p ≤ alpha), and
    the count after a Holm correction over the K classes."""
    units = set_measures(rows)
    cols = class_columns(rows)
    out = []
    for method, arch in _groups(units, control=True):
        blm = _select(units, "whole", arch)
        for ipc, at in _select(units, method, arch).groupby("ipc"):
            if len(at) < 2 or len(blm) < 2:
                continue
            pair = (at[cols].to_numpy(float), at["accuracy"].to_numpy(float),
                    blm[cols].to_numpy(float), blm["accuracy"].to_numpy(float))
            plain = significant_classes(*pair, alpha=alpha)
            corrected = significant_classes(*pair, alpha=alpha, correction="holm")
            out.append({"method": METHOD_LABELS[method], "architecture": arch, "IPC": int(ipc),
                        "sets vs BLM runs": f"{len(at)} vs {len(blm)}",
                        f"significant classes (p ≤ {alpha:g})": plain.count,
                        "significant classes (Holm)": corrected.count,
                        "classes": len(cols)})
    return pd.DataFrame(out)


def heatmap_frame(rows: pd.DataFrame, method: str, architecture: str) -> pd.DataFrame:
    """Class × IPC: mean class accuracy of ``method`` minus the BLM's (percentage points)."""
    long = long_format(rows)
    arch = long[long["architecture"] == architecture]
    blm = arch[arch["method"] == "whole"].groupby("class")["class_accuracy"].mean()
    dd = arch[arch["method"] == method].groupby(["class", "ipc"])["class_accuracy"].mean().unstack("ipc")
    dd.columns = [int(c) for c in dd.columns]
    return dd.sub(blm, axis=0) * 100


# ------------------------------------------------------------------------------ claims


#: What the paper shows for each claim (its figures; it gives no table of numbers).
PAPER_SAYS = {
    "1": "Figs 5, 7, 9, 11: mean accuracy rises from IPC 1 to 30 (35) for every architecture and data set",
    "2": "Figs 6, 8, 10: class-wise variance rises with IPC alongside accuracy",
    "3a": "Section 4: distilled data 'generally results in a decrease in overall accuracy' (Figs 5, 7, 9, 11)",
    "3b": "Section 4: '... alongside an increase in bias' against the BLM",
}
_STATEMENTS = {
    "1": "Accuracy rises with IPC",
    "2": "Class-wise variance rises with IPC",
    "3a": "Models trained on distilled data are less accurate than the BLM",
    "3b": "Models trained on distilled data are less fair (larger class-wise variance) than the BLM",
}


def _iterations(rows: pd.DataFrame, method: str) -> str:
    col = "distill.iterations"
    if col not in rows.columns:
        return ""
    values = rows.loc[rows["method"] == method, col].dropna().unique()
    return f" at {int(values[0])} iterations" if len(values) == 1 else ""


def _scope(rows: pd.DataFrame, method: str, architecture: str) -> str:
    """The IPC range and iterations a claim's verdict rests on, beside the paper's."""
    g = rows[(rows["method"] == method) & (rows["architecture"] == architecture)]
    ipcs = sorted(int(i) for i in g["ipc"].dropna().unique())
    paper = PAPER_IPCS[100 if "100" in str(g["dataset"].iloc[0]) else 10] if len(g) else ()
    ours = f"IPC {ipcs[0]}–{ipcs[-1]} ({', '.join(map(str, ipcs))})" if ipcs else "no IPC"
    return (f"{METHOD_LABELS[method]}{_iterations(rows, method)}, {ours}; the paper: MTT, IPC "
            f"{paper[0]}–{paper[-1]}" if paper else ours)


def _control_text(units: pd.DataFrame, method: str, architecture: str, unit: str) -> str:
    """The random-subset control's slope of the per-model variance over the IPCs ``method`` ran at."""
    ipcs = _select(units, method, architecture)["ipc"].unique()
    ctrl = _select(units, CONTROL, architecture)
    ctrl = ctrl[ctrl["ipc"].isin(ipcs)]
    fit = trend_test(ctrl["ipc"].astype(float), ctrl["classwise_variance"]) if len(ctrl) else None
    if fit is None or not np.isfinite(fit["slope"]):
        return ""
    return (f"; control (random real subsets at the same IPCs): slope {fit['slope']:+.3g} {unit} "
            f"[{fit['ci_low']:+.3g}, {fit['ci_high']:+.3g}]")


def claims(rows: pd.DataFrame, *, alpha: float = ALPHA) -> pd.DataFrame:
    """The paper's claims, judged per distillation method × architecture on units (sets),
    :data:`fairdd.stats.CLAIM_COLUMNS` first, then ``method``, ``architecture``, ``scope``,
    ``the paper``.

    1. accuracy rises with IPC — one-sided OLS slope test over sets (the other way:
       contradicted; TOST at 1 pp across the swept range: absent);
    2. class-wise variance rises with IPC — the same on both estimators (:data:`ESTIMATORS`;
       both must agree: ``need="all"``), the margin 10 % of the BLM's variance across the range;
       its scope (IPC range, iterations) is part of the statement, the control's slope of the reason;
    3a. DD models are less accurate than the BLM — one-sided Welch over sets vs BLM runs at
        every IPC (need all);
    3b. DD models are less fair than the BLM ("an increase in bias") — the same on both variance
        estimators (DD larger).

    The paper gives no effect size (figures only), so ``paper_effect`` is empty and the MDE
    column says what this profile could detect. Effects: slopes per IPC (claims 1–2), the
    difference at the IPC whose test is weakest (3a–3b).
    """
    if not len(rows):
        return pd.DataFrame(columns=list(stats.CLAIM_COLUMNS))
    acc = trend_tests(rows, "accuracy")
    var = {m: trend_tests(rows, m) for m in ESTIMATORS}
    comp = blm_comparison(rows, control=False)
    units = set_measures(rows)
    dataset = str(rows["dataset"].iloc[0])
    out = []

    def row(key: str, method: str, arch: str, verdict: stats.Verdict, *, effect: float, ci: tuple[float, float],
            mde: float, n: Any, tests: int, unit: str, reason_tail: str = "", scope: str = "") -> None:
        v = stats.Verdict(verdict.verdict, verdict.reason + reason_tail)
        out.append(stats.claim_row(
            paper=PAPER, claim=f"{key} ({METHOD_LABELS[method]}, {arch})",
            statement=f"{_STATEMENTS[key]} — {scope}" if scope else _STATEMENTS[key],
            chapter=CHAPTER, dataset=dataset, verdict=v, effect=effect, ci_low=ci[0], ci_high=ci[1], mde=mde,
            paper_effect=None, unit=unit, n=n, tests=tests, method=method, architecture=arch, scope=scope,
            **{"the paper": PAPER_SAYS[key]}))

    unit_text = "a distilled set (the mean of its classifiers)"
    for method, arch in _groups(rows):
        scope = _scope(rows, method, arch)
        # Claim 1: accuracy trend.
        t = acc[(acc["_method"] == method) & (acc["architecture"] == arch)].iloc[0]
        v = stats.decide(p_support=[_p(t["p_greater"])], p_contradict=[_p(t["p_less"])], need="all",
                         p_absent=_finite([t["p_equivalent"]]), margin=t["margin"],
                         margin_source="1 pp across the swept IPC range, per IPC", mde=t["mde"], level=alpha)
        row("1", method, arch, v, effect=t["slope"], ci=(t["ci_low"], t["ci_high"]), mde=t["mde"], n=int(t["sets"]),
            tests=1, unit=unit_text + "; effect: slope in pp per IPC", scope=scope,
            reason_tail=f"; slope {t['slope']:+.3g} pp per IPC over {int(t['sets'])} sets ({int(t['models'])} models)")
        # Claim 2: variance trend, both estimators.
        lines = [f[(f["_method"] == method) & (f["architecture"] == arch)].iloc[0] for f in var.values()]
        v = stats.decide(p_support=[_p(t2["p_greater"]) for t2 in lines],
                         p_contradict=[_p(t2["p_less"]) for t2 in lines], need="all",
                         p_absent=_finite([t2["p_equivalent"] for t2 in lines]), margin=lines[0]["margin"],
                         margin_source=f"{MARGINS['variance_fraction']:.0%} of the BLM's variance across the swept "
                                       "IPC range, per IPC (per-model estimator)",
                         mde=lines[0]["mde"], level=alpha)
        slopes = "; ".join(f"{name}: slope {t2['slope']:+.3g} pp² per IPC [{t2['ci_low']:+.3g}, {t2['ci_high']:+.3g}]"
                           for name, t2 in zip(("per-model", "of class means"), lines))
        row("2", method, arch, v, effect=lines[0]["slope"], ci=(lines[0]["ci_low"], lines[0]["ci_high"]),
            mde=lines[0]["mde"], n=int(lines[0]["sets"]), tests=len(lines),
            unit=unit_text + "; effect: slope of the per-model variance in pp² per IPC", scope=scope,
            reason_tail=f"; {slopes}; scope: {scope}"
                        + _control_text(units, method, arch, "pp² per IPC"))
        # Claims 3a, 3b: against the BLM at every IPC.
        for key, measures, unit in (("3a", ("accuracy",), "pp"),
                                    ("3b", tuple(ESTIMATORS), "pp²")):
            lines = comp[(comp["_method"] == method) & (comp["architecture"] == arch)
                         & comp["measure"].isin(measures)]
            lines = lines[np.isfinite(lines["p_support"])]
            if not len(lines):
                v = stats.decide(p_support=[], p_contradict=[], level=alpha)
                row(key, method, arch, v, effect=np.nan, ci=(np.nan, np.nan), mde=np.nan, n=0, tests=0,
                    unit=unit_text, scope=scope)
                continue
            primary = lines[lines["measure"] == measures[0]]
            weakest = primary.loc[primary["p_support"].idxmax()]
            v = stats.decide(p_support=list(lines["p_support"]), p_contradict=list(lines["p_contradict"]),
                             need="all", p_absent=_finite(lines["p_equivalent"]),
                             margin=float(_margin(measures[0], set_measures(rows), arch)),
                             margin_source=_margin_source(measures[0]), mde=float(weakest["mde"]), level=alpha)
            diffs = ", ".join(f"IPC {r.IPC}: {r.effect:+.3g}" for r in primary.itertuples())
            row(key, method, arch, v, effect=float(weakest["effect"]),
                ci=(float(weakest["ci_low"]), float(weakest["ci_high"])), mde=float(weakest["mde"]),
                n=f"{int(weakest['sets'])} sets vs {int(weakest['BLM runs'])} BLM runs per IPC", tests=len(lines),
                unit=f"{unit_text} vs a BLM run; effect: DD − BLM in {unit} at IPC {weakest['IPC']} (the weakest)",
                scope=scope, reason_tail=f"; DD − BLM ({measures[0]}, {unit}) {diffs}")
    frame = pd.DataFrame(out)
    return frame[list(stats.CLAIM_COLUMNS) + [c for c in frame.columns if c not in stats.CLAIM_COLUMNS]]


def _p(p: float) -> float:
    """A p-value for :func:`fairdd.stats.decide` (an undefined test counts as not significant)."""
    return float(p) if np.isfinite(p) else 1.0


def _finite(values: Any) -> list[float] | None:
    values = [float(v) for v in values]
    return values if values and all(np.isfinite(values)) else None


def whole_set_reading(rows: pd.DataFrame, *, alpha: float = ALPHA) -> pd.DataFrame:
    """Not the paper's claim: its reading 2 (variance grows with the training set) carried to the
    largest set of all, the whole set — the BLM's per-model variance above the largest IPC's
    (one-sided Welch over units, per distiller × architecture), judged through :func:`fairdd.stats.decide`."""
    units = set_measures(rows)
    out = []
    for method, arch in _groups(units):
        g = _select(units, method, arch)
        top = g[g["ipc"] == g["ipc"].max()]["classwise_variance"].to_numpy(float)
        blm = _select(units, "whole", arch)["classwise_variance"].to_numpy(float)
        if len(top) < 2 or len(blm) < 2:
            continue
        margin = _margin("classwise_variance", units, arch)
        sd = float(np.sqrt((top.var(ddof=1) + blm.var(ddof=1)) / 2))
        mde = stats.minimum_detectable_effect(len(blm), len(top), sd)
        v = stats.decide(p_support=[stats.welch(blm, top, alternative="larger")],
                         p_contradict=[stats.welch(blm, top, alternative="smaller")],
                         p_absent=[stats.tost(blm, top, margin=margin)], margin=margin,
                         margin_source=_margin_source("classwise_variance"), mde=mde, level=alpha)
        effect, low, high = stats.welch_interval(blm, top)
        out.append({"method": METHOD_LABELS[method], "architecture": arch, "largest IPC": int(g["ipc"].max()),
                    "BLM − largest IPC (pp²)": effect, "ci_low": low, "ci_high": high, "mde": mde,
                    "verdict": v.verdict, "reason": v.reason})
    return pd.DataFrame(out)


def findings(rows: pd.DataFrame, *, alpha: float = ALPHA) -> str:
    """Markdown bullets of the page's findings, generated from the rows."""
    units = set_measures(rows)
    table = claims(rows, alpha=alpha)
    lines = []
    for method, arch in _groups(units, control=True):
        g = _select(units, method, arch)
        blm = _select(units, "whole", arch)
        by = g.groupby("ipc")[["accuracy", "classwise_variance"]].mean()
        acc = ", ".join(f"{100 * a:.1f} % (IPC {int(i)})" for i, a in by["accuracy"].items())
        var = ", ".join(f"{v:.0f} (IPC {int(i)})" for i, v in by["classwise_variance"].items())
        sizes = sorted(set(g.groupby("ipc").size()))
        lines.append(f"{METHOD_LABELS[method]} / {arch}: mean accuracy {acc} against the BLM's "
                     f"{100 * blm['accuracy'].mean():.1f} %; per-model class-wise variance {var} pp² against the "
                     f"BLM's {blm['classwise_variance'].mean():.0f} pp² (means over "
                     f"{'–'.join(map(str, sizes))} sets per IPC, {len(blm)} BLM runs).")
    for _, r in table.iterrows():
        lines.append(f"Claim {r['claim']}, *{r['statement'].split(' — ')[0]}*: **{r['verdict']}** — {r['reason']}.")
    ctrl = control_comparison(rows)
    for (label, measure), group in (ctrl.groupby(["method", "measure"], sort=False) if len(ctrl) else ()):
        above = [int(i) for i, p, d in zip(group["IPC"], group["p_holm"], group["distilled − random"]) if p <= alpha and d > 0]
        below = [int(i) for i, p, d in zip(group["IPC"], group["p_holm"], group["distilled − random"]) if p <= alpha and d < 0]
        what = "accuracy" if measure == "accuracy" else "per-model class-wise variance"
        lines.append(f"{label} against random real subsets of the same size ({what}, two-sided Welch over sets, "
                     f"Holm): higher at IPC {', '.join(map(str, above)) or 'none'}, lower at IPC "
                     f"{', '.join(map(str, below)) or 'none'} (of {', '.join(str(int(i)) for i in group['IPC'])}).")
    datasets = ", ".join(dict.fromkeys(rows["dataset"]))
    return (f"**{datasets}** ({len(units)} sets and runs, {len(rows)} models):\n\n"
            + "\n".join(f"- {line}" for line in lines))


# ------------------------------------------------------------------------------ figures


def plot_trends(rows: pd.DataFrame, measure: str = "accuracy"):  # noqa: ANN201  (matplotlib Figure)
    """``measure`` (mean ± std over sets, the units) against IPC, one panel per architecture,
    one line per method and the random-subset control; the BLM's mean as a dashed line (the
    paper's Figs 5–11)."""
    units = set_measures(rows)
    scale = _scale(measure)
    archs = list(dict.fromkeys(units["architecture"]))
    fig, axes = plt.subplots(1, len(archs), figsize=(5 * len(archs), 3.6), squeeze=False)
    for ax, arch in zip(axes[0], archs):
        a = units[units["architecture"] == arch]
        for i, method in enumerate(m for m in dict.fromkeys(a["method"]) if m != "whole"):
            s = a[a["method"] == method].groupby("ipc")[measure].agg(["mean", "std"]) * scale
            ax.errorbar(s.index, s["mean"], yerr=s["std"].fillna(0), marker="o", capsize=3, color=f"C{i}",
                        linestyle=":" if method == CONTROL else "-", label=METHOD_LABELS[method])
        blm = a[a["method"] == "whole"][measure] * scale
        if len(blm):
            ax.axhline(blm.mean(), linestyle="--", color="k", label="BLM (whole set)")
        ax.set_xlabel("images per class (IPC)")
        ax.set_ylabel({"accuracy": "accuracy (%)", "classwise_variance": "per-model class-wise variance (pp²)",
                       "variance_of_class_means": "variance of the class means (pp²)",
                       "worst_class": "worst-class accuracy (%)", "gap": "best − worst class (pp)"}.get(measure, measure))
        ax.set_title(f"{arch} — {a['dataset'].iloc[0]}", fontsize=9)
        ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def plot_heatmap(rows: pd.DataFrame, method: str):  # noqa: ANN201
    """Class × IPC heat maps of class accuracy minus the BLM's, one per architecture."""
    archs = list(dict.fromkeys(rows["architecture"]))
    fig, axes = plt.subplots(1, len(archs), figsize=(4.5 * len(archs), 4), squeeze=False)
    for ax, arch in zip(axes[0], archs):
        frame = heatmap_frame(rows, method, arch)
        lim = float(np.nanmax(np.abs(frame.to_numpy()))) or 1.0
        im = ax.imshow(frame.to_numpy(), cmap="RdBu", vmin=-lim, vmax=lim, aspect="auto")
        ax.set_xticks(range(frame.shape[1]), frame.columns)
        ax.set_yticks(range(frame.shape[0]), frame.index)
        ax.set_xlabel("IPC")
        ax.set_ylabel("class")
        ax.set_title(f"{METHOD_LABELS[method]} / {arch}: class acc. − BLM (pp)\n{rows['dataset'].iloc[0]}", fontsize=9)
        fig.colorbar(im, ax=ax)
    fig.tight_layout()
    return fig


def plot_synthetic_grids(
    config: ClasswiseStudyConfig, method: str = "mtt", *, ipcs: Sequence[int] | None = None, seed: int | None = None,
    root: Root = None,
):  # noqa: ANN201
    """One synthetic set per panel (one row per class), at several IPCs (the paper's Figs 2–4)."""
    ipcs = [i for i in (ipcs or config.method_ipcs(method))]
    seed = config.seeds[0] if seed is None else seed
    fig, axes = plt.subplots(1, len(ipcs), figsize=(2.2 * len(ipcs) + 1, 3.2), squeeze=False)
    for ax, ipc in zip(axes[0], ipcs):
        images = synthetic_images(config.cell(method, ipc, seed), root=root)
        show_image_grid(image_grid(images, nrow=ipc), ax=ax, title=f"{METHOD_LABELS[method]}, IPC {ipc}")
    fig.suptitle(f"{METHOD_LABELS[method]} synthetic sets, one row per class — {dataset_label(config.data)}", fontsize=9)
    fig.tight_layout()
    return fig
