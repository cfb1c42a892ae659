"""Tables, claims and figures of the class-wise fairness study (:mod:`fairdd.studies.classwise`).

Measures of one trained model (one row), from its class accuracies ``acc_c`` (fractions):

* ``classwise_variance``: population variance over the K classes, ddof 0, as
  :func:`fairdd.metrics.classwise_variance` (the paper does not name its estimator); reported in
  squared percentage points (×10⁴);
* ``worst_class``: min_c acc_c; ``gap``: max_c acc_c − min_c acc_c.

The paper's authors' filter (their fork of MTT, Kamil-Sabbagh/Data-Distillation@e7a8685): within one method × architecture ×
IPC, a run (model) is dropped when any of its class accuracies lies more than 2σ from that
class's mean over the group's runs (σ the sample std over runs, ddof 1); the variance is
reported with and without it.

Tests: trend = OLS slope of a measure on IPC (and on log IPC) over all models of a method ×
architecture, with a t-based 95 % CI (``scipy.stats.linregress``); DD vs BLM = one-sided Welch
test over models; per-class significance = :func:`fairdd.metrics.significant_classes` (class
accuracy normalised by overall accuracy, two-sided Welch, p ≤ 0.05) and its Holm-corrected count.
Every family of tests across methods × architectures (and IPCs) is Holm-corrected.
"""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from scipy import stats

from fairdd.metrics import holm_adjust, significant_classes
from fairdd.plots import image_grid, show_image_grid
from fairdd.studies._study import Root, mean_std
from fairdd.studies.classwise import METHOD_LABELS, ClasswiseStudyConfig, dataset_label, synthetic_images

__all__ = [
    "PAPER_SAYS",
    "blm_comparison",
    "claims",
    "class_columns",
    "findings",
    "heatmap_frame",
    "long_format",
    "model_measures",
    "plot_heatmap",
    "plot_synthetic_grids",
    "plot_trends",
    "significance_counts",
    "summary_table",
    "trend_test",
    "trend_tests",
    "two_sigma_filter",
]

ALPHA = 0.05
VAR_SCALE = 1e4  # fractions² → squared percentage points


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


def long_format(rows: pd.DataFrame) -> pd.DataFrame:
    """One row per model × class: ``class``, ``class_accuracy`` beside the model's columns."""
    cols = class_columns(rows)
    keep = [c for c in ("run_id", "dataset", "method", "architecture", "ipc", "seed", "network", "accuracy") if c in rows]
    out = rows[keep + cols].melt(id_vars=keep, value_vars=cols, var_name="class", value_name="class_accuracy")
    out["class"] = out["class"].str.rsplit("_", n=1).str[1].astype(int)
    return out


def _groups(rows: pd.DataFrame) -> list[tuple[str, str]]:
    dd = rows[rows["method"] != "whole"]
    return list(dict.fromkeys(zip(dd["method"], dd["architecture"])))


def two_sigma_filter(rows: pd.DataFrame, *, by: Sequence[str] = ("method", "architecture", "ipc")) -> pd.DataFrame:
    """The rows kept by the authors' filter: within each group, drop a model when any class
    accuracy lies beyond mean ± 2σ of that class over the group (σ: sample std, ddof 1)."""
    cols = class_columns(rows)
    keep = pd.Series(True, index=rows.index)
    for _, group in rows.groupby(list(by), dropna=False):
        if len(group) < 3:
            continue
        acc = group[cols].to_numpy(dtype=float)
        mean, sd = acc.mean(axis=0), acc.std(axis=0, ddof=1)
        outside = np.abs(acc - mean) > 2 * sd
        keep[group.index] = ~outside.any(axis=1)
    return rows[keep]


def summary_table(rows: pd.DataFrame) -> pd.DataFrame:
    """Per method × architecture × IPC (and the BLM): models, accuracy, class-wise variance
    with and without the 2σ filter, worst-class accuracy and the gap (mean ± std over models, %)."""
    measured = model_measures(rows)
    filtered = model_measures(two_sigma_filter(rows))
    out = []
    keys = ["method", "architecture", "ipc"]
    for key, group in measured.groupby(keys, dropna=False, sort=False):
        method, arch, ipc = key
        mask = (filtered["method"] == method) & (filtered["architecture"] == arch)
        mask &= filtered["ipc"].isna() if pd.isna(ipc) else (filtered["ipc"] == ipc)
        kept = filtered[mask]
        out.append(
            {
                "dataset": group["dataset"].iloc[0],
                "method": METHOD_LABELS[method],
                "architecture": arch,
                "IPC": "whole set" if pd.isna(ipc) else int(ipc),
                "models": len(group),
                "accuracy (%)": mean_std(group["accuracy"], scale=100),
                "class-wise variance (pp²)": mean_std(group["classwise_variance"]),
                "variance, 2σ-filtered (pp²)": mean_std(kept["classwise_variance"]) if len(kept) else "—",
                "kept by filter": len(kept),
                "worst class (%)": mean_std(group["worst_class"], scale=100),
                "gap best − worst (pp)": mean_std(group["gap"], scale=100),
            }
        )
    return pd.DataFrame(out)


def trend_test(x: Sequence[float], y: Sequence[float], *, confidence: float = 0.95) -> dict[str, float]:
    """OLS slope of ``y`` on ``x`` with a t-based CI (n − 2 degrees of freedom) and its two-sided p."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if len(x) < 3 or np.ptp(x) == 0:
        return {"slope": np.nan, "ci_low": np.nan, "ci_high": np.nan, "p_value": np.nan, "n": len(x)}
    fit = stats.linregress(x, y)
    half = stats.t.ppf(0.5 + confidence / 2, len(x) - 2) * fit.stderr
    return {"slope": fit.slope, "ci_low": fit.slope - half, "ci_high": fit.slope + half, "p_value": fit.pvalue, "n": len(x)}


def trend_tests(rows: pd.DataFrame, measure: str, *, log_ipc: bool = False) -> pd.DataFrame:
    """Per method × architecture: the slope of ``measure`` (a model measure) on IPC (or ln IPC)
    over all models, 95 % CI, p and the Holm-adjusted p across the table's lines."""
    measured = model_measures(rows)
    out = []
    for method, arch in _groups(measured):
        g = measured[(measured["method"] == method) & (measured["architecture"] == arch)]
        x = np.log(g["ipc"].astype(float)) if log_ipc else g["ipc"].astype(float)
        out.append({"method": METHOD_LABELS[method], "architecture": arch, "measure": measure,
                    "regressor": "ln IPC" if log_ipc else "IPC", **trend_test(x, g[measure])})
    table = pd.DataFrame(out)
    table["p_holm"] = holm_adjust(table["p_value"])
    return table


def _welch_one_sided(a: np.ndarray, b: np.ndarray, alternative: str) -> float:
    if len(a) < 2 or len(b) < 2 or (np.ptp(a) == 0 and np.ptp(b) == 0):
        return np.nan
    return float(stats.ttest_ind(a, b, equal_var=False, alternative=alternative).pvalue)


def blm_comparison(rows: pd.DataFrame) -> pd.DataFrame:
    """Per method × architecture × IPC: DD minus BLM in accuracy and class-wise variance, with
    one-sided Welch p-values (DD less accurate; DD larger variance), Holm over the table."""
    measured = model_measures(rows)
    out = []
    for method, arch in _groups(measured):
        blm = measured[(measured["method"] == "whole") & (measured["architecture"] == arch)]
        g = measured[(measured["method"] == method) & (measured["architecture"] == arch)]
        for ipc, at in g.groupby("ipc"):
            out.append({
                "method": METHOD_LABELS[method], "architecture": arch, "IPC": int(ipc),
                "accuracy − BLM (pp)": 100 * (at["accuracy"].mean() - blm["accuracy"].mean()),
                "p (DD less accurate)": _welch_one_sided(at["accuracy"].to_numpy(), blm["accuracy"].to_numpy(), "less"),
                "variance − BLM (pp²)": at["classwise_variance"].mean() - blm["classwise_variance"].mean(),
                "p (DD larger variance)": _welch_one_sided(
                    at["classwise_variance"].to_numpy(), blm["classwise_variance"].to_numpy(), "greater"),
            })
    table = pd.DataFrame(out)
    if len(table):
        table["p_holm (accuracy)"] = holm_adjust(table["p (DD less accurate)"])
        table["p_holm (variance)"] = holm_adjust(table["p (DD larger variance)"])
    return table


def significance_counts(rows: pd.DataFrame, *, alpha: float = ALPHA) -> pd.DataFrame:
    """Per method × architecture × IPC: classes whose accuracy normalised by overall accuracy
    differs from the BLM's (two-sided Welch over models, p ≤ alpha), and the count after a Holm
    correction over the K classes."""
    cols = class_columns(rows)
    out = []
    for method, arch in _groups(rows):
        blm = rows[(rows["method"] == "whole") & (rows["architecture"] == arch)]
        g = rows[(rows["method"] == method) & (rows["architecture"] == arch)]
        for ipc, at in g.groupby("ipc"):
            if len(at) < 2 or len(blm) < 2:
                continue
            pair = (at[cols].to_numpy(float), at["accuracy"].to_numpy(float),
                    blm[cols].to_numpy(float), blm["accuracy"].to_numpy(float))
            plain = significant_classes(*pair, alpha=alpha)
            corrected = significant_classes(*pair, alpha=alpha, correction="holm")
            out.append({"method": METHOD_LABELS[method], "architecture": arch, "IPC": int(ipc),
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
    "R2": "not stated: the paper's reading 2 (variance grows with the training set) carried to the whole set",
}


def _verdict(ok: bool) -> str:
    return "supported" if ok else "not supported"


def claims(rows: pd.DataFrame, *, alpha: float = ALPHA) -> pd.DataFrame:
    """The paper's claims, each judged by a computed test with its evidence.

    1. accuracy rises with IPC — slope on IPC > 0 with the 95 % CI above 0 (Holm p ≤ alpha) for
       every method × architecture;
    2. class-wise variance rises with IPC — the same test on the variance;
    3a. DD models are less accurate than the BLM — one-sided Welch, Holm-adjusted p ≤ alpha at
       every IPC for every method × architecture;
    3b. DD models are less fair than the BLM ("DD increases bias") — the same on the variance
       (DD larger);
    and the paper's second reading, that fairness falls as the training set grows, extended to
    the whole set: the BLM's variance above the largest IPC's.
    """
    acc = trend_tests(rows, "accuracy")
    var = trend_tests(rows, "classwise_variance")
    comp = blm_comparison(rows)
    measured = model_measures(rows)

    def trend_claim(table: pd.DataFrame) -> tuple[bool, str]:
        ok = bool(len(table)) and all((table["ci_low"] > 0) & (table["p_holm"] <= alpha))
        ev = "; ".join(
            f"{r.method}/{r.architecture}: slope {r.slope:+.3g} per IPC [{r.ci_low:+.3g}, {r.ci_high:+.3g}], "
            f"Holm p {r.p_holm:.2g}" for r in table.itertuples()
        )
        return ok, ev

    def blm_claim(col_p: str, col_d: str, unit: str) -> tuple[bool, str]:
        ok = bool(len(comp)) and all(comp[col_p] <= alpha)
        ev = "; ".join(f"{r['method']}/{r['architecture']} IPC {r['IPC']}: {r[col_d]:+.2f} {unit}, Holm p {r[col_p]:.2g}"
                       for _, r in comp.iterrows())
        return ok, ev

    out = []
    ok, ev = trend_claim(acc)
    out.append(("1. Accuracy rises with IPC", ok, ev))
    ok, ev = trend_claim(var)
    out.append(("2. Class-wise variance rises with IPC", ok, ev))
    ok, ev = blm_claim("p_holm (accuracy)", "accuracy − BLM (pp)", "pp")
    out.append(("3a. DD models are less accurate than the BLM", ok, ev))
    ok, ev = blm_claim("p_holm (variance)", "variance − BLM (pp²)", "pp²")
    out.append(("3b. DD models are less fair (larger class-wise variance) than the BLM", ok, ev))
    # Reading 2 carried to the whole set: if variance grows with training-set size, the BLM
    # (the largest set) should have the largest variance.
    parts, ps = [], []
    for method, arch in _groups(measured):
        g = measured[(measured["method"] == method) & (measured["architecture"] == arch)]
        top = g[g["ipc"] == g["ipc"].max()]["classwise_variance"].to_numpy()
        blm = measured[(measured["method"] == "whole") & (measured["architecture"] == arch)]["classwise_variance"].to_numpy()
        p = _welch_one_sided(blm, top, "greater")
        ps.append(p)
        parts.append(f"{METHOD_LABELS[method]}/{arch}: BLM {blm.mean():.1f} vs IPC {int(g['ipc'].max())} {top.mean():.1f} pp²")
    adjusted = holm_adjust(ps)
    ok = bool(len(ps)) and all(adjusted <= alpha)
    ev = "; ".join(f"{t}, Holm p {p:.2g}" for t, p in zip(parts, adjusted))
    out.append(("Reading 2 extended: the whole set (largest) has larger variance than the largest IPC", ok, ev))
    keys = ("1", "2", "3a", "3b", "R2")
    return pd.DataFrame([{"claim": c, "the paper": PAPER_SAYS[k], "verdict": _verdict(v), "our evidence": e}
                         for k, (c, v, e) in zip(keys, out)])


def findings(rows: pd.DataFrame, *, alpha: float = ALPHA) -> str:
    """Markdown bullets of the page's findings, generated from the rows."""
    measured = model_measures(rows)
    table = claims(rows, alpha=alpha)
    lines = []
    for method, arch in _groups(measured):
        g = measured[(measured["method"] == method) & (measured["architecture"] == arch)]
        blm = measured[(measured["method"] == "whole") & (measured["architecture"] == arch)]
        by = g.groupby("ipc")[["accuracy", "classwise_variance"]].mean()
        acc = ", ".join(f"{100 * a:.1f} % (IPC {int(i)})" for i, a in by["accuracy"].items())
        var = ", ".join(f"{v:.0f} (IPC {int(i)})" for i, v in by["classwise_variance"].items())
        lines.append(f"{METHOD_LABELS[method]} / {arch}: mean accuracy {acc} against the BLM's "
                     f"{100 * blm['accuracy'].mean():.1f} %; class-wise variance {var} pp² against the BLM's "
                     f"{blm['classwise_variance'].mean():.0f} pp².")
    for _, r in table.iterrows():
        lines.append(f"Claim *{r['claim']}*: **{r['verdict']}** by our numbers.")
    var = trend_tests(rows, "classwise_variance")
    comp = blm_comparison(rows)
    for r in var.itertuples():
        direction = ("rises" if r.ci_low > 0 else "falls" if r.ci_high < 0 else "shows no clear trend") if r.p_holm <= alpha else "shows no clear trend"
        lines.append(f"{r.method}/{r.architecture}: class-wise variance {direction} with IPC "
                     f"(slope {r.slope:+.3g} pp² per IPC, 95 % CI [{r.ci_low:+.3g}, {r.ci_high:+.3g}], Holm p {r.p_holm:.2g}).")
    for label, group in comp.groupby("method", sort=False):
        less_acc = [int(i) for i, p in zip(group["IPC"], group["p_holm (accuracy)"]) if p <= alpha]
        less_fair = [int(i) for i, p in zip(group["IPC"], group["p_holm (variance)"]) if p <= alpha]
        lines.append(f"{label}: significantly less accurate than the BLM at IPC {', '.join(map(str, less_acc)) or 'none'}; "
                     f"significantly larger class-wise variance than the BLM at IPC {', '.join(map(str, less_fair)) or 'none'} "
                     f"(of {', '.join(str(int(i)) for i in group['IPC'])}; one-sided Welch, Holm).")
    v2 = table.iloc[1]["verdict"] == "supported"
    v3 = table.iloc[3]["verdict"] == "supported"
    reading = ("both hold (variance rises with IPC and DD variance is above the BLM's)" if v2 and v3 else
               "'DD increases bias' (DD variance above the BLM's at every IPC) holds; 'variance grows with the size "
               "of the distilled set' does not" if v3 else
               "'variance grows with the size of the distilled set' holds; 'DD increases bias' does not" if v2 else
               "neither holds in full: see the two lines above for where each fails")
    lines.append(f"Of the paper's two readings of fairness, {reading}.")
    datasets = ", ".join(dict.fromkeys(rows["dataset"]))
    return f"**{datasets}** ({len(rows)} models):\n\n" + "\n".join(f"- {line}" for line in lines)


# ------------------------------------------------------------------------------ figures


def plot_trends(rows: pd.DataFrame, measure: str = "accuracy"):  # noqa: ANN201  (matplotlib Figure)
    """``measure`` (mean ± std over models) against IPC, one panel per architecture, one line per
    method; the BLM's mean as a dashed line (the paper's Figs 5–11)."""
    measured = model_measures(rows)
    scale = 100 if measure in ("accuracy", "worst_class", "gap") else 1
    archs = list(dict.fromkeys(measured["architecture"]))
    fig, axes = plt.subplots(1, len(archs), figsize=(5 * len(archs), 3.6), squeeze=False)
    for ax, arch in zip(axes[0], archs):
        a = measured[measured["architecture"] == arch]
        for i, method in enumerate(m for m in dict.fromkeys(a["method"]) if m != "whole"):
            s = a[a["method"] == method].groupby("ipc")[measure].agg(["mean", "std"]) * scale
            ax.errorbar(s.index, s["mean"], yerr=s["std"].fillna(0), marker="o", capsize=3,
                        color=f"C{i}", label=METHOD_LABELS[method])
        blm = a[a["method"] == "whole"][measure] * scale
        if len(blm):
            ax.axhline(blm.mean(), linestyle="--", color="k", label="BLM (whole set)")
        ax.set_xlabel("images per class (IPC)")
        ax.set_ylabel({"accuracy": "accuracy (%)", "classwise_variance": "class-wise variance (pp²)",
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
    ipcs = [i for i in (ipcs or config.ipcs)]
    seed = config.seeds[0] if seed is None else seed
    fig, axes = plt.subplots(1, len(ipcs), figsize=(2.2 * len(ipcs) + 1, 3.2), squeeze=False)
    for ax, ipc in zip(axes[0], ipcs):
        images = synthetic_images(config.cell(method, ipc, seed), root=root)
        show_image_grid(image_grid(images, nrow=ipc), ax=ax, title=f"{METHOD_LABELS[method]}, IPC {ipc}")
    fig.suptitle(f"{METHOD_LABELS[method]} synthetic sets, one row per class — {dataset_label(config.data)}", fontsize=9)
    fig.tight_layout()
    return fig
