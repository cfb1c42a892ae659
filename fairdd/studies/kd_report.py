"""Tables, claims and figures of the knowledge-distillation study (:mod:`fairdd.studies.kd`).

Everything here reads the study's rows (one per trained model); nothing is trained anew.
Mohammadshahi & Ioannou ("What's Left After Distillation? How Knowledge Transfer Impacts
Fairness and Bias") count, per temperature, the classes whose accuracy relative to
overall accuracy changes significantly (two-sided Welch, p ≤ 0.05, C uncorrected tests): #SC
(non-distilled vs distilled student) and #TC (teacher vs distilled student). We show those
counts and the same counts after Holm's correction over the C classes of each comparison.

:func:`claims` judges the paper's four claims with computed tests (see its docstring for each
test and for the correction); :func:`findings` writes the sentences the page shows.
"""

from __future__ import annotations

import json
import warnings

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from scipy import stats

from fairdd import metrics
from fairdd.studies._study import mean_std
from fairdd.studies.kd import (
    ATTRIBUTES,
    CLASSWISE,
    FAIRNESS,
    LABELS,
    STAND_INS,
    per_class_matrix,
)
from fairdd.studies.kd_paper import PAPER_TABLES, paper_table

__all__ = [
    "accuracy_table",
    "claims",
    "disagreement",
    "fairness_table",
    "findings",
    "paper_comparison",
    "plot_class_accuracy",
    "plot_counts",
    "plot_disagreement",
    "plot_fairness",
    "significance",
]

LEVEL = 0.05


def _sel(rows: pd.DataFrame, source: str, role: str, temperature: float | None = None,
         alpha: float | None = None) -> pd.DataFrame:
    out = rows[(rows["source"] == source) & (rows["role"] == role)]
    if temperature is not None:
        out = out[out["temperature"] == temperature]
    if alpha is not None:
        out = out[out["alpha"] == alpha]
    return out.sort_values("seed")


def _alphas(rows: pd.DataFrame, source: str) -> list[float]:
    return sorted(_sel(rows, source, "ds")["alpha"].unique(), reverse=True)


def _temps(rows: pd.DataFrame, source: str, alpha: float) -> list[float]:
    return sorted(_sel(rows, source, "ds", alpha=alpha)["temperature"].unique())


def main_alpha(rows: pd.DataFrame, source: str) -> float:
    """The α with the most temperatures on ``source`` (the sweep's main α)."""
    return max(_alphas(rows, source), key=lambda a: (len(_temps(rows, source, a)), a))


# ------------------------------------------------------------------------ significance


def significance(rows: pd.DataFrame, *, level: float = LEVEL) -> pd.DataFrame:
    """#SC and #TC per data set, α and T, uncorrected (the paper) and Holm-corrected.

    Columns: ``source``, ``dataset``, ``alpha``, ``temperature``, ``classes``, ``seeds``,
    ``sc``, ``tc`` (uncorrected counts), ``sc_holm``, ``tc_holm``, ``sc_classes`` and
    ``tc_classes`` (the uncorrected significant classes, e.g. ``"3, 5"``), ``accuracy``
    (mean ± std, %).
    """
    out = []
    for source in rows["source"].unique():
        teacher, nds = _sel(rows, source, "teacher"), _sel(rows, source, "nds")
        ct, cn = per_class_matrix(teacher), per_class_matrix(nds)
        for alpha in _alphas(rows, source):
            for t in _temps(rows, source, alpha):
                ds = _sel(rows, source, "ds", t, alpha)
                cd = per_class_matrix(ds)
                rec = {"source": source, "dataset": LABELS[source], "alpha": alpha, "temperature": t,
                       "classes": cd.shape[1], "seeds": len(ds), "accuracy": mean_std(ds["accuracy"], scale=100, digits=2)}
                for name, ref_c, ref in (("sc", cn, nds), ("tc", ct, teacher)):
                    raw = metrics.significant_classes(ref_c, ref["accuracy"], cd, ds["accuracy"], alpha=level)
                    holm = metrics.significant_classes(ref_c, ref["accuracy"], cd, ds["accuracy"], alpha=level,
                                                       correction="holm")
                    rec[name], rec[f"{name}_holm"] = raw.count, holm.count
                    rec[f"{name}_classes"] = ", ".join(str(c) for c in np.flatnonzero(raw.significant))
                out.append(rec)
    return pd.DataFrame(out)


def accuracy_table(rows: pd.DataFrame, source: str, *, level: float = LEVEL) -> pd.DataFrame:
    """The paper's Table 5 layout for one data set: teacher, NDS, then DS per (α, T): test
    accuracy (%, mean ± std over seeds), #SC and #TC, uncorrected and after Holm."""
    sig = significance(rows[rows["source"] == source], level=level)
    head = [{"model": role.upper() if role == "nds" else "Teacher", "α": "", "T": "",
             "test acc. (%)": mean_std(_sel(rows, source, role)["accuracy"], scale=100, digits=2),
             "#SC": "", "#TC": "", "#SC Holm": "", "#TC Holm": ""} for role in ("teacher", "nds")]
    body = [{"model": "DS", "α": f"{r.alpha:g}", "T": f"{r.temperature:g}", "test acc. (%)": r.accuracy,
             "#SC": r.sc, "#TC": r.tc, "#SC Holm": r.sc_holm, "#TC Holm": r.tc_holm} for r in sig.itertuples()]
    return pd.DataFrame(head + body)


# --------------------------------------------------------------------------- fairness


def fairness_table(rows: pd.DataFrame, source: str, attribute: str) -> pd.DataFrame:
    """The paper's Table 2 layout: teacher, NDS, DS per T (main α): accuracy, EOD and DPD
    with respect to ``attribute``, in %, mean ± std over seeds."""
    alpha = main_alpha(rows, source)
    parts = [("Teacher", "", _sel(rows, source, "teacher")), ("NDS", "", _sel(rows, source, "nds"))]
    parts += [("DS", f"{t:g}", _sel(rows, source, "ds", t, alpha)) for t in _temps(rows, source, alpha)]
    return pd.DataFrame([{
        "model": name, "T": t, "test acc. (%)": mean_std(sel["accuracy"], scale=100, digits=2),
        "EOD (%)": mean_std(sel[f"eod_{attribute}"], scale=100, digits=2),
        "DPD (%)": mean_std(sel[f"dpd_{attribute}"], scale=100, digits=2),
    } for name, t, sel in parts])


# ----------------------------------------------------------------------- paper beside ours


def paper_comparison(rows: pd.DataFrame, table: str) -> tuple[str, pd.DataFrame]:
    """The paper's table ``table`` (:data:`fairdd.studies.kd_paper.PAPER_TABLES`) beside our
    rows for its stand-in; ``(caption, frame)``. Columns ``paper …`` are the paper's numbers,
    ``ours …`` ours (means over seeds; %), matched on model and T (blank where one side lacks
    the temperature)."""
    paper = paper_table(table)
    caption = PAPER_TABLES[table][0]
    if table in ("table5", "table6", "table7"):
        source = "fashion_mnist"
        sig = significance(rows[rows["source"] == source]) if source in set(rows["source"]) else pd.DataFrame()
        if table == "table5":
            cols = {"cifar10_acc": "paper acc. (%)", "cifar10_sc": "paper #SC", "cifar10_tc": "paper #TC"}
        elif table == "table6":
            cols = {"acc": "paper acc. (%)", "sc": "paper #SC", "tc": "paper #TC"}
        else:
            cols = {"a06_acc": "paper α=0.6 acc.", "a06_sc": "paper α=0.6 #SC", "a06_tc": "paper α=0.6 #TC",
                    "a08_acc": "paper α=0.8 acc.", "a08_sc": "paper α=0.8 #SC", "a08_tc": "paper α=0.8 #TC"}
        out = paper[["model", "temperature", *cols]].rename(columns=cols)
        alphas = [0.6, 0.8] if table == "table7" else [main_alpha(rows, source)] if not sig.empty else []
        for alpha in alphas:
            tag = f"ours α={alpha:g}" if table == "table7" else "ours"
            ours = sig[sig["alpha"] == alpha] if not sig.empty else sig
            acc, sc, tc = {}, {}, {}
            for r in ours.itertuples():
                acc[("ds", r.temperature)], sc[("ds", r.temperature)], tc[("ds", r.temperature)] = (
                    float(r.accuracy.split(" ")[0]), r.sc, r.tc)
            for role in ("teacher", "nds"):
                sel = _sel(rows, source, role)
                if len(sel):
                    acc[(role, np.nan)] = 100 * sel["accuracy"].mean()
            out[f"{tag} acc."] = [acc.get(_key(m, t), np.nan) for m, t in zip(out["model"], out["temperature"])]
            out[f"{tag} #SC"] = [sc.get(_key(m, t), np.nan) for m, t in zip(out["model"], out["temperature"])]
            out[f"{tag} #TC"] = [tc.get(_key(m, t), np.nan) for m, t in zip(out["model"], out["temperature"])]
        caption += f" — ours: {LABELS[source]}, our stand-in for " + ("CIFAR-10" if table == "table5" else "CIFAR-100 (10 classes, not 100)")
        return caption, out
    sources = ["trifeature"] if table == "table9" else [s for s in ("adult", "compas") if s in set(rows["source"])]
    out = paper[["model", "temperature", "acc", "eod", "dpd"]].rename(
        columns={"acc": "paper acc.", "eod": "paper EOD", "dpd": "paper DPD"})
    for source in sources:
        if source not in set(rows["source"]):
            continue
        attribute = ATTRIBUTES[source][0]
        alpha = main_alpha(rows, source)
        means = {}
        for role in ("teacher", "nds"):
            means[(role, np.nan)] = _sel(rows, source, role)
        for t in _temps(rows, source, alpha):
            means[("ds", t)] = _sel(rows, source, "ds", t, alpha)
        tag = "ours" if table == "table9" else f"ours {LABELS[source]}"
        for col, name in (("accuracy", "acc."), (f"eod_{attribute}", "EOD"), (f"dpd_{attribute}", "DPD")):
            out[f"{tag} {name}"] = [100 * means[_key(m, t)][col].mean() if _key(m, t) in means else np.nan
                                    for m, t in zip(out["model"], out["temperature"])]
    caption += " — ours: " + ", ".join(LABELS[s] for s in sources) + (
        "" if table == "table9" else ", our stand-ins for CelebA")
    return caption, out


def _key(model: str, t: float) -> tuple[str, float]:
    return (model, float(t)) if model == "ds" else (model, np.nan)


# ---------------------------------------------------------------------------- claims


def _profile_distances(rows: pd.DataFrame, source: str, alpha: float) -> pd.DataFrame:
    """Per DS seed and T: the Euclidean distance of its normalised class-accuracy profile
    r = class accuracy / overall accuracy (the quantity of the paper's Welch test) to the
    mean profile of the NDS (``d_nds``) and of the teachers (``d_teacher``)."""
    def profile(sel: pd.DataFrame) -> np.ndarray:
        return per_class_matrix(sel) / sel["accuracy"].to_numpy(float)[:, None]

    ref_n = profile(_sel(rows, source, "nds")).mean(0)
    ref_t = profile(_sel(rows, source, "teacher")).mean(0)
    ds = _sel(rows, source, "ds", alpha=alpha)
    r = profile(ds)
    return pd.DataFrame({"temperature": ds["temperature"].to_numpy(float), "seed": ds["seed"].to_numpy(),
                         "d_nds": np.linalg.norm(r - ref_n, axis=1), "d_teacher": np.linalg.norm(r - ref_t, axis=1)})


def _spearman(x: np.ndarray, y: np.ndarray, alternative: str) -> tuple[float, float]:
    if len(np.unique(x)) < 2 or len(np.unique(y)) < 2:
        return float("nan"), float("nan")
    res = stats.spearmanr(x, y, alternative=alternative)
    return float(res.statistic), float(res.pvalue)


def _welch(a: np.ndarray, b: np.ndarray, alternative: str) -> float:
    """One-sided Welch p-value (``alternative`` as scipy: "less" is mean(a) < mean(b))."""
    if len(a) < 2 or len(b) < 2 or (np.std(a) == 0 and np.std(b) == 0):
        return float("nan")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return float(stats.ttest_ind(a, b, equal_var=False, alternative=alternative).pvalue)


CLAIMS = {
    1: "#SC rises and #TC falls as T rises (up to T = 10)",
    2: "Fairness improves (EOD and DPD fall) as T rises (up to T = 10)",
    3: "A distilled student can be fairer than its teacher",
    4: "The trends break at very high temperatures (T ≥ 20)",
}


def claims(rows: pd.DataFrame, *, level: float = LEVEL) -> pd.DataFrame:
    """The paper's four claims, judged per data set by computed tests.

    1. Class-wise sets: one-sided Spearman trends over T in [2, 10] (main α) of each distilled
       seed's profile distance to the NDS (must rise: the per-seed form of #SC) and to the
       teacher (must fall: #TC); the counts' own Spearman ρ is shown as evidence.
    2. Fairness sets: one-sided Spearman trend (must fall) over T in [1, 10] of each distilled
       seed's EOD and DPD, per attribute.
    3. Fairness sets: one-sided Welch tests, DS below the teacher, of EOD and DPD at every
       T ≤ 10 and attribute.
    4. Every set with T = 10 and a T ≥ 20: one-sided Welch tests that the largest T undoes the
       trend of claims 1–2 (profile distance to the NDS lower, to the teacher higher; EOD and
       DPD higher than at T = 10).

    Within one claim and data set the p-values are Holm-corrected together. Verdicts: claims
    1, 2 and 4 are "supported" when every one of their tests is significant after Holm (the
    claim is about all of the measures); claim 3 ("can be") when at least one is. Otherwise
    "not supported"; "untested" when the rows lack what the test needs.

    Columns: ``claim``, ``statement``, ``dataset``, ``verdict``, ``tests`` (how many),
    ``significant`` (after Holm), ``evidence`` (text with the numbers).
    """
    out = []
    sources = list(dict.fromkeys(rows["source"]))
    for source in sources:
        alpha = main_alpha(rows, source)
        temps = _temps(rows, source, alpha)
        ds = _sel(rows, source, "ds", alpha=alpha)
        teacher = _sel(rows, source, "teacher")
        if source in CLASSWISE:
            d = _profile_distances(rows, source, alpha)
            win = d[(d["temperature"] >= 2) & (d["temperature"] <= 10)]
            tests, parts = [], []
            sig = significance(rows[rows["source"] == source], level=level)
            sig = sig[(sig["alpha"] == alpha) & (sig["temperature"] >= 2) & (sig["temperature"] <= 10)]
            for col, alt, name in (("d_nds", "greater", "to NDS (#SC)"), ("d_teacher", "less", "to teacher (#TC)")):
                rho, p = _spearman(win["temperature"].to_numpy(), win[col].to_numpy(), alt)
                tests.append(p)
                count = "sc" if col == "d_nds" else "tc"
                crho, _ = _spearman(sig["temperature"].to_numpy(), sig[count].to_numpy(float), "two-sided")
                parts.append(f"distance {name}: Spearman ρ = {rho:+.2f} (one-sided p = {p:.2g}); counts "
                             f"{', '.join(f'T{t:g}: {c}' for t, c in zip(sig['temperature'], sig[count]))} (ρ = {crho:+.2f})")
            out.append(_verdict(1, source, tests, parts, level, need_all=True,
                                untested=len(win["temperature"].unique()) < 3))
        if source in FAIRNESS:
            win = ds[ds["temperature"] <= 10]
            tests2, parts2, tests3, parts3 = [], [], [], []
            for attribute in ATTRIBUTES[source]:
                for m in ("eod", "dpd"):
                    col = f"{m}_{attribute}"
                    rho, p = _spearman(win["temperature"].to_numpy(), win[col].to_numpy(float), "less")
                    tests2.append(p)
                    parts2.append(f"{m.upper()} ({attribute}) ρ = {rho:+.2f}, p = {p:.2g}")
                    best = None
                    for t in [t for t in temps if t <= 10]:
                        sel = _sel(rows, source, "ds", t, alpha)
                        p3 = _welch(sel[col].to_numpy(float), teacher[col].to_numpy(float), "less")
                        tests3.append(p3)
                        if best is None or (not np.isnan(p3) and (np.isnan(best[1]) or p3 < best[1])):
                            best = (t, p3, sel[col].mean(), teacher[col].mean())
                    if best is not None:
                        parts3.append(f"{m.upper()} ({attribute}): teacher {100 * best[3]:.2f}%, best DS T = {best[0]:g} "
                                      f"{100 * best[2]:.2f}% (p = {best[1]:.2g})")
            out.append(_verdict(2, source, tests2, parts2, level, need_all=True,
                                untested=len(win["temperature"].unique()) < 3))
            out.append(_verdict(3, source, tests3, parts3, level, need_all=False, untested=not tests3))
        high = [t for t in temps if t >= 20]
        if 10.0 in temps and high:
            th = max(high)
            tests4, parts4 = [], []
            if source in CLASSWISE:
                d = _profile_distances(rows, source, alpha)
                a10, ah = d[d["temperature"] == 10], d[d["temperature"] == th]
                for col, alt, name in (("d_nds", "less", "to NDS"), ("d_teacher", "greater", "to teacher")):
                    p = _welch(ah[col].to_numpy(), a10[col].to_numpy(), alt)
                    tests4.append(p)
                    parts4.append(f"distance {name}: T10 {a10[col].mean():.3f} → T{th:g} {ah[col].mean():.3f} (p = {p:.2g})")
            if source in FAIRNESS:
                s10, sh = _sel(rows, source, "ds", 10.0, alpha), _sel(rows, source, "ds", th, alpha)
                for attribute in ATTRIBUTES[source]:
                    for m in ("eod", "dpd"):
                        col = f"{m}_{attribute}"
                        p = _welch(sh[col].to_numpy(float), s10[col].to_numpy(float), "greater")
                        tests4.append(p)
                        parts4.append(f"{m.upper()} ({attribute}): T10 {100 * s10[col].mean():.2f}% → T{th:g} "
                                      f"{100 * sh[col].mean():.2f}% (p = {p:.2g})")
            out.append(_verdict(4, source, tests4, parts4, level, need_all=True, untested=False))
        else:
            out.append(_verdict(4, source, [], ["needs T = 10 and a T ≥ 20"], level, need_all=True, untested=True))
    return pd.DataFrame(out).sort_values(["claim", "dataset"], kind="stable").reset_index(drop=True)


def _verdict(claim: int, source: str, pvalues: list[float], parts: list[str], level: float, *, need_all: bool,
             untested: bool) -> dict[str, object]:
    p = np.asarray(pvalues, float)
    adjusted = metrics.holm_adjust(p) if p.size else p
    hits = int(np.sum(np.nan_to_num(adjusted, nan=1.0) <= level))
    if untested or p.size == 0:
        verdict = "untested"
    elif (hits == p.size) if need_all else (hits > 0):
        verdict = "supported"
    else:
        verdict = "not supported"
    return {"claim": claim, "statement": CLAIMS[claim], "dataset": LABELS[source], "verdict": verdict,
            "tests": int(p.size), "significant": hits,
            "evidence": "; ".join(parts) + (f" — Holm over {p.size} tests, {hits} at p ≤ {level:g}" if p.size else "")}


def findings(rows: pd.DataFrame, *, level: float = LEVEL) -> str:
    """Markdown sentences of what the rows show: accuracies, counts, verdicts."""
    lines = []
    for source in dict.fromkeys(rows["source"]):
        alpha = main_alpha(rows, source)
        t_acc = 100 * _sel(rows, source, "teacher")["accuracy"].mean()
        n_acc = 100 * _sel(rows, source, "nds")["accuracy"].mean()
        ds = _sel(rows, source, "ds", alpha=alpha)
        by_t = ds.groupby("temperature")["accuracy"].mean() * 100
        text = (f"**{LABELS[source]}** (stand-in for {STAND_INS[source]}): teacher {t_acc:.1f}%, non-distilled student "
                f"{n_acc:.1f}%, distilled students {by_t.min():.1f}–{by_t.max():.1f}% (best at T = {by_t.idxmax():g}, α = {alpha:g}).")
        if source in CLASSWISE:
            sig = significance(rows[rows["source"] == source], level=level)
            sig = sig[sig["alpha"] == alpha]
            text += (f" Uncorrected, {sig['sc'].sum()} class-temperature pairs are significant for #SC and "
                     f"{sig['tc'].sum()} for #TC over {len(sig)} temperatures × {sig['classes'].iloc[0]} classes "
                     f"(≈ {level * len(sig) * sig['classes'].iloc[0]:.1f} expected by chance per count); after Holm, "
                     f"{sig['sc_holm'].sum()} and {sig['tc_holm'].sum()}.")
        lines.append(text)
    verdicts = claims(rows, level=level)
    for r in verdicts.itertuples():
        lines.append(f"Claim {r.claim} on {r.dataset}: **{r.verdict}** ({r.significant} of {r.tests} tests significant after Holm).")
    return "\n\n".join(lines)


# --------------------------------------------------------------------------- figures


def disagreement(rows: pd.DataFrame, source: str, role: str, temperature: float | None = None) -> np.ndarray:
    """The mean over seeds of the teacher × model disagreement matrices (counts; diagonal 0)."""
    alpha = main_alpha(rows, source) if role == "ds" else None
    sel = _sel(rows, source, role, temperature, alpha)
    return np.mean([np.asarray(json.loads(m), float) for m in sel["disagreement"]], axis=0)


def plot_disagreement(rows: pd.DataFrame, source: str, temperature: float) -> plt.Figure:
    """Paper Figure 2: teacher vs NDS and teacher vs DS at ``temperature``, mean over seeds."""
    mats = [disagreement(rows, source, "nds"), disagreement(rows, source, "ds", temperature)]
    vmax = max(m.max() for m in mats)
    fig, axes = plt.subplots(1, 2, figsize=(9, 4))
    for ax, m, title in zip(axes, mats, ("teacher vs non-distilled", f"teacher vs distilled (T = {temperature:g})")):
        im = ax.imshow(m, cmap="viridis", vmin=0, vmax=vmax)
        ax.set(title=title, xlabel="student predicts", ylabel="teacher predicts")
    fig.colorbar(im, ax=axes, shrink=0.8, label="test images (mean over seeds)")
    fig.suptitle(f"{LABELS[source]}: disagreement, diagonal excluded")
    return fig


def plot_class_accuracy(rows: pd.DataFrame, source: str) -> plt.Figure:
    """Paper Figure 1: per-class accuracy of the distilled students against T (main α), the
    NDS and teacher as dashed and dotted lines; × where #SC counts the class."""
    alpha = main_alpha(rows, source)
    temps = _temps(rows, source, alpha)
    sig = significance(rows[rows["source"] == source])
    sig = sig[sig["alpha"] == alpha]
    nds, teacher = per_class_matrix(_sel(rows, source, "nds")).mean(0), per_class_matrix(_sel(rows, source, "teacher")).mean(0)
    means = np.array([per_class_matrix(_sel(rows, source, "ds", t, alpha)).mean(0) for t in temps])
    k = means.shape[1]
    fig, axes = plt.subplots(2, (k + 1) // 2, figsize=(2.2 * ((k + 1) // 2), 4.5), sharex=True)
    for c, ax in enumerate(axes.flat[:k]):
        ax.plot(temps, 100 * means[:, c], "o-", ms=3)
        ax.axhline(100 * nds[c], ls="--", c="grey", lw=1)
        ax.axhline(100 * teacher[c], ls=":", c="k", lw=1)
        hits = [t for t, classes in zip(sig["temperature"], sig["sc_classes"]) if str(c) in classes.split(", ")]
        ax.plot(hits, [100 * means[temps.index(t), c] for t in hits], "rx", ms=8)
        ax.set_title(f"class {c}", fontsize=9)
        ax.set_xscale("log")
    fig.supxlabel("temperature T")
    fig.supylabel("test accuracy (%)")
    fig.suptitle(f"{LABELS[source]}: distilled students by class (dashed NDS, dotted teacher, × #SC)")
    fig.tight_layout()
    return fig


def plot_counts(rows: pd.DataFrame) -> plt.Figure:
    """Paper Figures 3 and 8: #SC and #TC against T per class-wise data set and α,
    uncorrected (solid) and after Holm (dashed)."""
    sig = significance(rows[rows["source"].isin(CLASSWISE)])
    fig, ax = plt.subplots(figsize=(6, 3.5))
    for (dataset, alpha), g in sig.groupby(["dataset", "alpha"]):
        for col, marker in (("sc", "o"), ("tc", "s")):
            line, = ax.plot(g["temperature"], g[col], marker=marker, label=f"{dataset} α={alpha:g} #{col.upper()}")
            ax.plot(g["temperature"], g[f"{col}_holm"], ls="--", marker=marker, c=line.get_color(), alpha=0.5)
    ax.set(xlabel="temperature T", ylabel="significant classes", xscale="log")
    ax.legend(fontsize=7)
    return fig


def plot_fairness(rows: pd.DataFrame) -> plt.Figure:
    """Paper Figures 4 and 9: EOD and DPD (%) of the distilled students against T, one panel
    per fairness data set and attribute, the teacher and NDS as horizontal lines."""
    panels = [(s, a) for s in FAIRNESS if s in set(rows["source"]) for a in ATTRIBUTES[s]]
    fig, axes = plt.subplots(1, len(panels), figsize=(3.3 * len(panels), 3.2), squeeze=False)
    for ax, (source, attribute) in zip(axes[0], panels):
        alpha = main_alpha(rows, source)
        temps = _temps(rows, source, alpha)
        for m, colour in (("eod", "C0"), ("dpd", "C1")):
            col = f"{m}_{attribute}"
            vals = [_sel(rows, source, "ds", t, alpha)[col] for t in temps]
            ax.errorbar(temps, [100 * v.mean() for v in vals], yerr=[100 * v.std(ddof=1) for v in vals], c=colour,
                        marker="o", ms=3, label=m.upper(), capsize=2)
            ax.axhline(100 * _sel(rows, source, "teacher")[col].mean(), c=colour, ls=":", lw=1)
            ax.axhline(100 * _sel(rows, source, "nds")[col].mean(), c=colour, ls="--", lw=1)
        ax.set(title=f"{LABELS[source]}: {attribute}", xlabel="T", xscale="log", ylabel="%")
    axes[0][0].legend(fontsize=8)
    fig.suptitle("EOD and DPD of distilled students (dotted teacher, dashed NDS)", fontsize=10)
    fig.tight_layout()
    return fig
