"""Tables, tests and figures of the DD-vs-KD comparison (:mod:`fairdd.studies.compare`).

Units: accuracies, DPD, EOD and DEO in % (×100); class-wise variance in squared percentage
points (population variance over the classes, ddof 0, ×10⁴); cost in seconds.

Tests (every family Holm-corrected, :func:`fairdd.metrics.holm_adjust`):

* *classes harmed* — per compression, bias ratio (and T): the classes whose accuracy normalised
  by the model's overall accuracy is significantly below the reference's (two-sided Welch over
  models, :func:`fairdd.metrics.significant_classes` with ``correction="holm"`` over the
  classes, counted where the difference is negative), against the one reference of both kinds,
  the teacher (:mod:`fairdd.studies.compare`);
* *mitigations* — per bias ratio, each mitigation against the compression it mitigates (DM +
  balanced sampling vs DM, DM + FairDD vs DM, DC + FairDD vs DC, FairDD vs balanced sampling;
  KD at the highest T vs T = 1, at the second α vs the first, and on balanced batches vs plain at
  each balanced T): two-sided Welch on bias-conflicting accuracy and on DEO_A, one
  family per measure over all pairs and ratios.
"""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
from matplotlib.ticker import NullFormatter, ScalarFormatter
import numpy as np
import pandas as pd
from scipy import stats

from fairdd.metrics import holm_adjust, significant_classes
from fairdd.studies._study import mean_std
from fairdd.studies.compare import LABELS, REFERENCE

__all__ = [
    "MEASURES",
    "classes_harmed",
    "findings",
    "mitigation_tests",
    "pareto_front",
    "plot_pareto",
    "summary_table",
]

ALPHA = 0.05
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


def _label(compression: str, temperature: float, alpha: float) -> str:
    if compression in ("kd", "kd_balanced"):
        return f"{LABELS[compression]}, T = {temperature:g}, α = {alpha:g}"
    return LABELS[compression]


def _keyed(rows: pd.DataFrame) -> pd.DataFrame:
    out = rows.copy()
    out["model"] = [_label(c, t, a) for c, t, a in zip(out["compression"], out["temperature"], out["alpha"])]
    return out


def summary_table(rows: pd.DataFrame) -> pd.DataFrame:
    """Per bias ratio × compression (× T): mean ± std over models of every measure and the cost."""
    keyed = _keyed(rows)
    out = []
    for (ratio, model), g in keyed.groupby(["bias_ratio", "model"], sort=False):
        row = {"bias ratio": ratio, "model": model, "models": len(g)}
        for col, (label, scale, _) in MEASURES.items():
            row[label] = mean_std(g[col], scale=scale)
        row["cost (s)"] = mean_std(g["cost_s"], digits=0)
        out.append(row)
    return pd.DataFrame(out)


def _class_matrix(g: pd.DataFrame) -> np.ndarray:
    cols = sorted((c for c in g.columns if c.startswith("acc_class_")), key=lambda c: int(c.rsplit("_", 1)[1]))
    return g[cols].to_numpy(float)


def classes_harmed(rows: pd.DataFrame, *, alpha: float = ALPHA) -> pd.DataFrame:
    """Per bias ratio × compression (× T): classes significantly harmed against the reference."""
    keyed = _keyed(rows)
    out = []
    for (ratio, model), g in keyed.groupby(["bias_ratio", "model"], sort=False):
        compression = g["compression"].iloc[0]
        if compression not in REFERENCE:
            continue
        ref = keyed[(keyed["bias_ratio"] == ratio) & (keyed["compression"] == REFERENCE[compression])]
        if len(g) < 2 or len(ref) < 2 or (g["accuracy"] <= 0).any() or (ref["accuracy"] <= 0).any():
            continue
        res = significant_classes(_class_matrix(g), g["accuracy"].to_numpy(float), _class_matrix(ref),
                                  ref["accuracy"].to_numpy(float), alpha=alpha, correction="holm")
        harmed = res.significant & (np.nan_to_num(res.statistic) < 0)
        helped = res.significant & (np.nan_to_num(res.statistic) > 0)
        out.append({"bias ratio": ratio, "model": model, "reference": LABELS[REFERENCE[compression]],
                    "classes harmed (Holm)": int(harmed.sum()), "classes helped (Holm)": int(helped.sum()),
                    "classes": len(res.pvalue)})
    return pd.DataFrame(out)


#: (mitigated, plain) pairs: what each mitigation is judged against.
PAIRS: tuple[tuple[str, str], ...] = (
    ("dm_balanced", "dm"),
    ("dm_fairdd", "dm"),
    ("dm_fairdd", "dm_balanced"),
    ("dc_fairdd", "dc"),
)


def _welch(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    if len(a) < 2 or len(b) < 2 or (np.ptp(a) == 0 and np.ptp(b) == 0):
        return np.nan, np.nan
    t = stats.ttest_ind(a, b, equal_var=False)
    return float(t.statistic), float(t.pvalue)


def mitigation_tests(rows: pd.DataFrame, *, alpha: float = ALPHA) -> pd.DataFrame:
    """Each mitigation against what it mitigates, per bias ratio: the difference in
    bias-conflicting accuracy and in DEO_A, two-sided Welch, Holm over the table per measure."""
    keyed = _keyed(rows)
    temps = sorted(t for t in keyed["temperature"].dropna().unique())
    pairs = [(a, b) for a, b in PAIRS if a in set(keyed["compression"]) and b in set(keyed["compression"])]
    out = []
    for ratio in dict.fromkeys(keyed["bias_ratio"]):
        at = keyed[keyed["bias_ratio"] == ratio]
        groups = [(LABELS[a], LABELS[b], at[at["compression"] == a], at[at["compression"] == b]) for a, b in pairs]
        kd_rows = at[at["compression"] == "kd"]
        alphas = list(dict.fromkeys(kd_rows["alpha"].dropna()))
        if len(temps) >= 2 and alphas:
            hot, cold, a0 = temps[-1], temps[0], alphas[0]

            def kd_at(frame: pd.DataFrame, t: float, a: float) -> pd.DataFrame:
                return frame[(frame["temperature"] == t) & (frame["alpha"] == a)]

            groups.append((_label("kd", hot, a0), _label("kd", cold, a0), kd_at(kd_rows, hot, a0), kd_at(kd_rows, cold, a0)))
            for a in alphas[1:]:
                groups.append((_label("kd", hot, a), _label("kd", hot, a0), kd_at(kd_rows, hot, a), kd_at(kd_rows, hot, a0)))
            balanced = at[at["compression"] == "kd_balanced"]
            for t in sorted(balanced["temperature"].dropna().unique()):
                if len(kd_at(kd_rows, t, a0)):
                    groups.append((_label("kd_balanced", t, a0), _label("kd", t, a0), kd_at(balanced, t, a0),
                                   kd_at(kd_rows, t, a0)))
        for name_a, name_b, ga, gb in groups:
            row = {"bias ratio": ratio, "mitigation": name_a, "against": name_b}
            for col in ("acc_conflicting", "deo_mean"):
                label, scale, _ = MEASURES[col]
                t, p = _welch(ga[col].to_numpy(float), gb[col].to_numpy(float))
                row[f"Δ {label}"] = scale * (ga[col].mean() - gb[col].mean())
                row[f"p ({col})"] = p
            out.append(row)
    table = pd.DataFrame(out)
    if len(table):
        for col in ("acc_conflicting", "deo_mean"):
            table[f"p_holm ({col})"] = holm_adjust(table[f"p ({col})"])
    return table


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


def plot_pareto(rows: pd.DataFrame, measures: Sequence[str] = ("acc_conflicting", "deo_mean")):  # noqa: ANN201
    """Per bias ratio (rows) and measure (columns): each model kind's mean measure against its
    mean cost (log scale), the Pareto front drawn through the undominated ones."""
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
            ax.set_title(f"bias ratio {ratio:g}", fontsize=9)
            if r_i == 0 and m_i == len(measures) - 1:
                ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.02, 0.5))
    fig.tight_layout()
    return fig


def findings(rows: pd.DataFrame, *, alpha: float = ALPHA) -> str:
    """Markdown bullets generated from the rows: the fronts, the harmed classes, the mitigations."""
    keyed = _keyed(rows)
    lines = []
    for ratio in dict.fromkeys(keyed["bias_ratio"]):
        means = keyed[keyed["bias_ratio"] == ratio].groupby("model", sort=False)[["cost_s", *MEASURES]].mean().reset_index()
        for measure in ("acc_conflicting", "deo_mean"):
            label, scale, _ = MEASURES[measure]
            front = pareto_front(means, measure)
            lines.append(f"Bias ratio {ratio:g}, {label} against cost: the front is "
                         + "; ".join(f"{r.model} ({scale * r[measure]:.1f} at {r.cost_s:.3g} s)" for _, r in front.iterrows())
                         + ".")
    harmed = classes_harmed(rows, alpha=alpha)
    for ratio, g in harmed.groupby("bias ratio", sort=False):
        worst = g.sort_values("classes harmed (Holm)", ascending=False).iloc[0]
        lines.append(f"Bias ratio {ratio:g}: most classes harmed against its reference: {worst['model']} "
                     f"({worst['classes harmed (Holm)']} of {worst['classes']}); none harmed for "
                     + (", ".join(g[g["classes harmed (Holm)"] == 0]["model"]) or "no model") + ".")
    tests = mitigation_tests(rows, alpha=alpha)
    for _, r in tests.iterrows():
        parts = []
        for col, word in (("acc_conflicting", "bias-conflicting accuracy"), ("deo_mean", "DEO_A")):
            p = r[f"p_holm ({col})"]
            delta = r[f"Δ {MEASURES[col][0]}"]
            verdict = "no significant difference" if not (p <= alpha) else ("higher" if delta > 0 else "lower")
            parts.append(f"{word} {delta:+.1f} ({verdict}, Holm p {p:.2g})")
        lines.append(f"Bias ratio {r['bias ratio']:g}: {r['mitigation']} against {r['against']}: " + "; ".join(parts) + ".")
    return "\n".join(f"- {line}" for line in lines)
