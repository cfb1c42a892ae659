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
from fairdd import stats as fstats
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


def comparison_source(rows: pd.DataFrame, table: str) -> str | None:
    """Which of our class-wise data sets stands beside the paper's ``table``: Table 5 (CIFAR-10)
    Fashion-MNIST; Tables 6 and 7 (CIFAR-100) the 100-class Trifeature stand-in, else
    Fashion-MNIST (10 classes). ``None`` when the rows hold neither."""
    present = set(rows["source"])
    order = ("fashion_mnist",) if table == "table5" else ("trifeature100", "fashion_mnist")
    return next((s for s in order if s in present), None)


def paper_comparison(rows: pd.DataFrame, table: str, *, checks: pd.DataFrame | None = None) -> tuple[str, pd.DataFrame]:
    """The paper's table ``table`` (:data:`fairdd.studies.kd_paper.PAPER_TABLES`) beside our
    rows for its stand-in; ``(caption, frame)``. Columns ``paper …`` are the paper's numbers,
    ``ours …`` ours (means over seeds; %), matched on model and T (blank where one side lacks
    the temperature). Tables 8 and 9 with ``checks`` (:func:`group_checks`): our EOD and DPD
    noise floors beside ours (the median over seeds), so that a level at the floor reads as
    noise."""
    paper = paper_table(table)
    caption = PAPER_TABLES[table][0]
    if table in ("table5", "table6", "table7"):
        source = comparison_source(rows, table)
        if source is None:
            return caption + " — ours: none at this profile", paper
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
        caption += f" — ours: {LABELS[source]}, our stand-in for " + (
            "CIFAR-10" if table == "table5" else "CIFAR-100" if source == "trifeature100" else "CIFAR-100 (10 classes, not 100)")
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
            if checks is not None and name != "acc.":
                sel = checks[(checks["source"] == source) & (checks["attribute"] == attribute)
                             & (checks["measure"] == name.lower())]
                floors = {_key(r, t): 100 * g["floor"].median()
                          for (r, t), g in sel.groupby(["role", "temperature"], dropna=False)}
                out[f"{tag} {name} floor"] = [floors.get(_key(m, t), np.nan) for m, t in zip(out["model"], out["temperature"])]
    caption += " — ours: " + ", ".join(LABELS[s] for s in sources) + (
        "" if table == "table9" else ", our stand-ins for CelebA")
    return caption, out


def _key(model: str, t: float) -> tuple[str, float]:
    return (model, float(t)) if model == "ds" else (model, np.nan)


# ---------------------------------------------------------------------------- claims

PAPER = "Mohammadshahi & Ioannou"
CHAPTER = "kd_fairness"

#: The paper's claims judged here (numbers as on the page; 5 and 6 are the abstract's and the
#: introduction's, added by issue 23).
CLAIMS = {
    1: "#SC rises and #TC falls as T rises (up to T = 10)",
    2: "A distilled student can be fairer than its teacher (the paper: in DPD, at high T)",
    3: "Fairness improves (EOD and DPD fall) as T rises (up to T = 10)",
    4: "The trends break at very high temperatures (T ≥ 20)",
    5: "Distilled students are fairer (lower EOD and DPD) than non-distilled students",
    6: "The classes distillation affects are not random: more classes change significantly (#SC, #TC) "
       "than chance alone gives",
}

#: The paper's table that gives each data set's effect sizes: the table of the data set it
#: stands in for (:data:`fairdd.studies.kd.STAND_INS`) and the column prefix of its counts.
_PAPER_COUNTS = {"fashion_mnist": ("table5", "cifar10_"), "mnist": ("table5", "svhn_"), "trifeature100": ("table6", "")}
_PAPER_FAIRNESS = {"trifeature": "table9", "adult": "table8", "compas": "table8"}
#: Noise-floor checks: bootstrap resamples and permutations per model and measure.
CHECK_RESAMPLES = 200


def _paper_means(table: str, column: str) -> dict[tuple[str, float], float]:
    """``{(model, T): value}`` of the paper's table (T NaN for teacher and NDS)."""
    t = paper_table(table)
    return {(m, float(temp)): float(v) for m, temp, v in zip(t["model"], t["temperature"], t[column])}


def _paper_value(means: dict[tuple[str, float], float], model: str, t: float = float("nan")) -> float:
    for (m, temp), v in means.items():
        if m == model and ((np.isnan(t) and np.isnan(temp)) or temp == t):
            return v
    return float("nan")


def _fraction_table(table: str, column: str) -> dict[tuple[str, float], float]:
    """The paper's %-valued column as fractions (our measures are fractions)."""
    return {k: v / 100 for k, v in _paper_means(table, column).items()}


def _slope(x: np.ndarray, y: np.ndarray) -> tuple[float, float, float]:
    """OLS slope of ``y`` on ``x``, its standard error and df (n − 2)."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    n = x.size
    if n < 3 or np.ptp(x) == 0:
        return float("nan"), float("nan"), float("nan")
    res = stats.linregress(x, y)
    return float(res.slope), float(res.stderr), float(n - 2)


def _t_p(t: float, df: float, alternative: str) -> float:
    if not np.isfinite(t):
        return 1.0
    return float(stats.t.sf(t, df) if alternative == "larger" else stats.t.cdf(t, df))


def _p_absent(effect: float, se: float, df: float, margin: float) -> float:
    """:func:`fairdd.stats.tost_from_estimate`, 1 (nothing shown) where it gives no test."""
    p = fstats.tost_from_estimate(effect, se, df, margin=margin)
    return p if np.isfinite(p) else 1.0


def _binomial_mde(classes: int, level: float, *, power: float = fstats.POWER) -> float:
    """The smallest excess rate δ (fraction of classes above ``level``) at which a one-sided
    binomial test of a count of ``classes`` at ``level`` (its critical count under
    Binomial(classes, 0.05)) is passed with probability ``power``: what the "not random" test of
    one temperature can detect."""
    crit = int(stats.binom.isf(level, classes, LEVEL)) + 1  # smallest k with P(X ≥ k) ≤ level
    while stats.binom.sf(crit - 1, classes, LEVEL) > level:
        crit += 1
    if crit > classes:
        return float("inf")
    lo, hi = LEVEL, 1.0
    for _ in range(60):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if stats.binom.sf(crit - 1, classes, mid) < power else (lo, mid)
    return hi - LEVEL


class _Test:
    """One claim test: p-values both ways, an equivalence p-value, effect (in the paper's
    direction) with its 95 % interval, MDE and the paper's effect, in the same units."""

    def __init__(self, name: str, *, p: float, p_other: float, effect: float, ci: tuple[float, float], mde: float,
                 paper: float | None, p_absent: float | None = None, text: str = "") -> None:
        self.name, self.p, self.p_other, self.effect, self.ci = name, p, p_other, effect, ci
        self.mde, self.paper, self.p_absent, self.text = mde, paper, p_absent, text

    def ratio(self) -> float:
        """The paper's effect over the MDE (< 1: the test could not have detected it)."""
        if self.paper is None or not np.isfinite(self.paper) or not np.isfinite(self.mde):
            return float("inf")
        return abs(self.paper) / self.mde if self.mde > 0 else float("inf")


def _paired(name: str, diff: np.ndarray, paper: float | None, level: float, text: str) -> _Test:
    """A one-sample t test on per-seed differences ``diff`` (positive: the paper's direction)."""
    diff = np.asarray(diff, float)
    paper = paper if paper is not None and np.isfinite(paper) else None
    if diff.size < 2:
        return _Test(name, p=1.0, p_other=1.0, effect=float("nan"), ci=(float("nan"), float("nan")), mde=float("inf"),
                     paper=paper, text=text + " (fewer than 2 seeds)")
    effect, low, high = fstats.welch_interval(diff)
    sd = float(np.std(diff, ddof=1))
    margin = abs(paper) if paper is not None and np.isfinite(paper) and paper != 0 else None
    return _Test(name, p=fstats.welch(diff, alternative="larger"), p_other=fstats.welch(diff, alternative="smaller"),
                 effect=effect, ci=(low, high), mde=fstats.minimum_detectable_effect(diff.size, None, sd, level=level),
                 paper=paper, p_absent=fstats.tost(diff, margin=margin) if margin else None, text=text)


def _pct(x: float) -> str:
    return f"{100 * x:.2f}%" if np.isfinite(x) else "–"


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


# ---- validity of the protocol and of the measures


def degenerate(rows: pd.DataFrame, source: str, *, level: float = LEVEL) -> dict[str, str | None]:
    """Why ``source``'s protocol cannot show a KD effect, if it cannot (issue 23).

    ``"teacher"``: the teacher is not significantly more accurate than the non-distilled
    student (one-sided Welch at ``level``) — there is nothing to distil (the paper's pairs gain
    1.06–2.47 points, its Tables 5, 6, 8, 9). ``"temperature"``: the distilled students are
    identical across temperatures — every seed's students at the two largest T ≤ 10 have the
    same accuracy, class accuracies and group measures — so no temperature effect can show.
    ``None`` where the protocol is not degenerate in that way.
    """
    out: dict[str, str | None] = {"teacher": None, "temperature": None}
    teacher, nds = _sel(rows, source, "teacher")["accuracy"], _sel(rows, source, "nds")["accuracy"]
    if len(teacher) >= 2 and len(nds) >= 2:
        p = fstats.welch(teacher.to_numpy(float), nds.to_numpy(float), alternative="larger")
        if p > level:
            out["teacher"] = (f"the teacher ({_pct(teacher.mean())}) is no better than the hard-label student "
                              f"({_pct(nds.mean())}) at level {level:g}: not significantly more accurate over "
                              f"{len(teacher)} seeds (one-sided Welch p = {p:.2g})")
    alpha = main_alpha(rows, source) if len(_sel(rows, source, "ds")) else None
    temps = [t for t in _temps(rows, source, alpha) if t <= 10] if alpha is not None else []
    if len(temps) >= 2:
        a, b = _sel(rows, source, "ds", temps[-2], alpha), _sel(rows, source, "ds", temps[-1], alpha)
        cols = ["accuracy", *[c for c in rows.columns if c.startswith(("acc_class_", "eod_", "dpd_"))]]
        merged = a.merge(b, on="seed", suffixes=("_a", "_b"))
        if len(merged) >= 2:
            same = all(np.allclose(merged[f"{c}_a"].to_numpy(float), merged[f"{c}_b"].to_numpy(float), rtol=0, atol=1e-12,
                                   equal_nan=True) for c in cols)
            if same:
                out["temperature"] = (f"the distilled students are identical across T: every seed's students at "
                                      f"T = {temps[-2]:g} and T = {temps[-1]:g} score the same accuracy, class accuracies "
                                      f"and group measures")
    return out


def group_checks(rows: pd.DataFrame, *, resamples: int = CHECK_RESAMPLES) -> pd.DataFrame:
    """Every fairness model's EOD and DPD beside its bootstrap interval and noise floor
    (:func:`fairdd.stats.check_measure` on the row's ``group_counts_<attribute>``).

    Columns: ``source``, ``attribute``, ``role``, ``temperature``, ``alpha``, ``seed``,
    ``measure``, ``value``, ``ci_low``, ``ci_high``, ``floor``, ``within_floor`` (its value or
    its interval's lower end at most the floor: :func:`fairdd.stats.check_measure`). Empty (with these
    columns) when the rows carry no count tables (runs recorded before issue 23)."""
    columns = ["source", "attribute", "role", "temperature", "alpha", "seed", "measure", "value", "ci_low", "ci_high",
               "floor", "within_floor"]
    parts = []
    for source in [s for s in dict.fromkeys(rows["source"]) if s in FAIRNESS]:
        sel = rows[rows["source"] == source]
        for attribute in ATTRIBUTES[source]:
            col = f"group_counts_{attribute}"
            if col not in sel.columns or sel[col].isna().any():
                continue
            for m in ("eod", "dpd"):
                frame = fstats.check_measures(sel, m, counts_column=col, keep=["role", "temperature", "alpha", "seed"],
                                              resamples=resamples)
                frame.insert(0, "attribute", attribute)
                frame.insert(0, "source", source)
                parts.append(frame)
    return pd.concat(parts, ignore_index=True)[columns] if parts else pd.DataFrame(columns=columns)


def floor_table(checks: pd.DataFrame, source: str, attribute: str) -> pd.DataFrame:
    """Per model kind (teacher, NDS, DS per (α, T)): EOD and DPD (%, mean over seeds), the
    median 95 % bootstrap interval and noise floor over seeds, and how many seeds' models are
    within the noise floor (marked)."""
    sel = checks[(checks["source"] == source) & (checks["attribute"] == attribute)]
    out = []
    for (role, alpha, t), g in sel.groupby(["role", "alpha", "temperature"], dropna=False, sort=False):
        rec = {"model": {"teacher": "Teacher", "nds": "NDS", "ds": "DS"}[role],
               "α": "" if np.isnan(alpha) else f"{alpha:g}", "T": "" if np.isnan(t) else f"{t:g}"}
        for m in ("eod", "dpd"):
            mm = g[g["measure"] == m]
            k, n = int(mm["within_floor"].sum()), len(mm)
            rec[f"{m.upper()} (%)"] = f"{100 * mm['value'].mean():.2f}"
            rec[f"{m.upper()} 95% CI (%)"] = f"[{100 * mm['ci_low'].median():.2f}, {100 * mm['ci_high'].median():.2f}]"
            rec[f"{m.upper()} floor (%)"] = f"{100 * mm['floor'].median():.2f}"
            rec[f"{m.upper()} within the noise floor"] = f"{k} of {n}" + (" — within the noise floor" if 2 * k > n else "")
        out.append(rec)
    order = {"Teacher": 0, "NDS": 1, "DS": 2}
    frame = pd.DataFrame(out)
    if frame.empty:
        return frame
    frame["_o"] = [(order[m], -float(a or 0), float(t or 0)) for m, a, t in zip(frame["model"], frame["α"], frame["T"])]
    return frame.sort_values("_o").drop(columns="_o").reset_index(drop=True)


def _within(checks: pd.DataFrame, source: str, attribute: str, measure: str, models: list[tuple[str, float]]) -> tuple[bool, str]:
    """Whether ``measure`` is within its noise floor for the models a test reads (more than half
    of them), and a phrase with the count. ``models``: (role, T) pairs (T NaN for teacher/NDS)."""
    sel = checks[(checks["source"] == source) & (checks["attribute"] == attribute) & (checks["measure"] == measure)]
    if sel.empty:
        return False, ""
    keep = np.zeros(len(sel), bool)
    for role, t in models:
        keep |= (sel["role"] == role).to_numpy() & (
            sel["temperature"].isna().to_numpy() if np.isnan(t) else (sel["temperature"] == t).to_numpy())
    read = sel[keep]
    k, n = int(read["within_floor"].sum()), len(read)
    return (2 * k > n), f"{measure.upper()} ({attribute}): {k} of {n} models within the noise floor"


# ---- the claims


def claims(rows: pd.DataFrame, *, level: float = LEVEL, checks: pd.DataFrame | None = None) -> pd.DataFrame:
    """The paper's claims (:data:`CLAIMS`), judged per data set (fairness claims: per data set
    and protected attribute) by computed tests, in the four classes of
    :func:`fairdd.stats.decide`.

    1. Class-wise sets: the OLS slope over T ∈ [2, 10] (main α) of #SC (must rise) and of #TC
       (must fall), as fractions of the C classes; t tests on the slopes (n = temperatures).
       Paper's effect: the same slopes of its counts at our temperatures (CIFAR-10 or SVHN,
       Table 5, for the 10-class sets; CIFAR-100, Table 6, for the 100-class stand-in).
    2. Fairness sets: per T ≤ 10, a paired (per-seed) t test that the DS has a lower DPD than
       the same seed's teacher; "any" T suffices. Paper's effect: its largest teacher − DS DPD
       (Table 9 for Trifeature, Table 8, CelebA, for the tabular stand-ins).
    3. Fairness sets: per seed, the OLS slope of EOD and of DPD over T ∈ [1, 10]; one-sample t
       tests that the slopes are negative. Paper's effect: the slope of its means.
    4. Every set with T = 10 and a T ≥ 20: paired tests that the largest T undoes the trends —
       fairness sets: EOD and DPD higher than at T = 10; class-wise sets: each seed's distance
       of its normalised class-accuracy profile (class accuracy / overall accuracy) to the
       mean NDS profile lower and to the mean teacher profile higher than at T = 10 (a
       per-seed stand-in for the counts, which have no per-seed form; paper's effect none).
    5. Fairness sets: paired t tests that the NDS has a higher EOD and DPD than the DS of the
       same seed at the largest T ≤ 10. Paper's effect: its NDS − DS at T = 10.
    6. Class-wise sets: per T, a one-sided binomial test of the uncorrected #SC (and #TC)
       against Binomial(C, 0.05), what C classes give when nothing changes; the smallest p
       over the temperatures, Bonferroni-corrected, per count; both counts must exceed chance.
       Effect: the largest count's excess over chance (fraction of classes); paper's effect:
       the same in its table; MDE from the binomial power at the corrected level.

    Within a claim the tests are Holm-corrected together (:func:`fairdd.stats.decide`);
    "absent" needs every test's TOST at the paper's effect; a claim is "untestable here" when
    the protocol is degenerate (:func:`degenerate`), the measure is within its noise floor for
    most of the models the claim reads (:func:`group_checks`), or the test could not have
    detected the paper's effect. Effects are fractions (of classes, or of the measure's [0, 1]
    scale), in the paper's direction (positive supports it); where several tests make a
    claim, the row's effect, interval, MDE and paper's effect are those of the test least able
    to detect the paper's effect.

    Returns :data:`fairdd.stats.CLAIM_COLUMNS`, then ``evidence`` (every test with its numbers).
    """
    if checks is None:
        checks = group_checks(rows)
    out = []
    for source in dict.fromkeys(rows["source"]):
        deg = degenerate(rows, source, level=level)
        alpha = main_alpha(rows, source)
        temps = _temps(rows, source, alpha)
        seeds = sorted(set(_sel(rows, source, "ds", alpha=alpha)["seed"]))
        if source in CLASSWISE:
            out.append(_claim1(rows, source, alpha, temps, deg, level))
            out.append(_claim6(rows, source, alpha, temps, deg, level))
        if source in FAIRNESS:
            for attribute in ATTRIBUTES[source]:
                out += [f(rows, source, attribute, alpha, temps, deg, level, checks) for f in (_claim2, _claim3, _claim5)]
        out += _claim4(rows, source, alpha, temps, deg, level, checks)
        del seeds
    frame = pd.DataFrame(out)
    frame = frame.sort_values(["claim", "dataset"], kind="stable").reset_index(drop=True)
    return frame[[*fstats.CLAIM_COLUMNS, *[c for c in frame.columns if c not in fstats.CLAIM_COLUMNS]]]


def _row(claim: int, dataset: str, tests: list[_Test], *, need: str, level: float, degenerate_reason: str | None,
         within: bool = False, floor_text: str = "", unit: str, n: int, untested: str = "") -> dict[str, object]:
    """One claims row from its tests (see :func:`claims`)."""
    if untested or not tests:
        verdict = fstats.decide(p_support=[], p_contradict=[], degenerate=degenerate_reason, level=level)
        if not degenerate_reason:
            verdict = fstats.Verdict("untestable here", untested or verdict.reason)
        return fstats.claim_row(paper=PAPER, claim=claim, statement=CLAIMS[claim], chapter=CHAPTER, dataset=dataset,
                                verdict=verdict, unit=unit, n=n, tests=0, evidence=untested)
    worst = min(tests, key=lambda t: t.ratio())
    absent = [t.p_absent for t in tests]
    margins = [abs(t.paper) for t in tests if t.paper is not None and np.isfinite(t.paper)]
    verdict = fstats.decide(
        p_support=[t.p for t in tests], p_contradict=[t.p_other for t in tests], need=need,
        p_absent=absent if all(a is not None for a in absent) else None,
        margin=min(margins) if margins else None, margin_source="the paper's effect",
        mde=worst.mde if np.isfinite(worst.mde) else None, paper_effect=worst.paper,
        degenerate=degenerate_reason, within_floor=within, level=level)
    reason = verdict.reason + (f" ({floor_text})" if within and floor_text else "")
    evidence = "; ".join(t.text for t in tests) + (f"; {floor_text}" if floor_text else "")
    return fstats.claim_row(paper=PAPER, claim=claim, statement=CLAIMS[claim], chapter=CHAPTER, dataset=dataset,
                            verdict=fstats.Verdict(verdict.verdict, reason), effect=worst.effect, ci_low=worst.ci[0],
                            ci_high=worst.ci[1], mde=worst.mde, paper_effect=worst.paper, unit=unit, n=n, tests=len(tests),
                            evidence=evidence)


def _counts(rows: pd.DataFrame, source: str, alpha: float, level: float) -> pd.DataFrame:
    sig = significance(rows[rows["source"] == source], level=level)
    return sig[sig["alpha"] == alpha]


def _claim1(rows, source, alpha, temps, deg, level) -> dict[str, object]:
    sig = _counts(rows, source, alpha, level)
    sig = sig[(sig["temperature"] >= 2) & (sig["temperature"] <= 10)]
    if sig["temperature"].nunique() < 3:
        return _row(1, LABELS[source], [], need="all", level=level, degenerate_reason=deg["teacher"],
                    unit="temperature", n=len(sig), untested="needs at least three temperatures in [2, 10]")
    c = int(sig["classes"].iloc[0])
    table, prefix = _PAPER_COUNTS.get(source, ("table6", ""))
    tests = []
    for count, sign, name in (("sc", 1, "#SC"), ("tc", -1, "#TC")):
        x, y = sig["temperature"].to_numpy(float), sig[count].to_numpy(float) / c
        slope, se, df = _slope(x, y)
        pm = _paper_means(table, f"{prefix}{count}")
        px = [t for t in x if np.isfinite(_paper_value(pm, "ds", t))]
        paper_slope = _slope(np.array(px), np.array([_paper_value(pm, "ds", t) / 100 for t in px]))[0] if len(px) >= 3 else None
        eff = sign * slope
        mde = fstats.mde_from_standard_error(se, df, level=level) if np.isfinite(se) and df > 0 else float("inf")
        half = stats.t.ppf(0.975, df) * se if np.isfinite(se) else float("nan")
        paper_eff = None if paper_slope is None else sign * paper_slope
        tests.append(_Test(name, p=_t_p(eff / se if se > 0 else np.inf * np.sign(eff), df, "larger"),
                           p_other=_t_p(eff / se if se > 0 else np.inf * np.sign(eff), df, "smaller"),
                           effect=eff, ci=(eff - half, eff + half), mde=mde, paper=paper_eff,
                           p_absent=_p_absent(eff, se, df, abs(paper_eff)) if paper_eff else None,
                           text=(f"{name} per T ({', '.join(f'T{t:g}: {int(v)}' for t, v in zip(sig['temperature'], sig[count]))} "
                                 f"of {c}): slope {sign * eff:+.4f} of the classes per unit T (one-sided p = "
                                 f"{_t_p(eff / se if se > 0 else np.inf, df, 'larger'):.2g}); paper "
                                 f"{'–' if paper_slope is None else f'{paper_slope:+.4f}'} ({PAPER_TABLES[table][0].split(':')[0]})")))
    return _row(1, LABELS[source], tests, need="all", level=level, degenerate_reason=deg["teacher"] or deg["temperature"],
                unit="temperature (count over the classes)", n=len(sig))


def _claim6(rows, source, alpha, temps, deg, level) -> dict[str, object]:
    sig = _counts(rows, source, alpha, level)
    if sig.empty:
        return _row(6, LABELS[source], [], need="all", level=level, degenerate_reason=deg["teacher"], unit="temperature",
                    n=0, untested="needs distilled students")
    c, m = int(sig["classes"].iloc[0]), len(sig)
    table, prefix = _PAPER_COUNTS.get(source, ("table6", ""))
    tests = []
    corrected = min(level / m, 0.5)
    mde = _binomial_mde(c, corrected)
    for count, name in (("sc", "#SC"), ("tc", "#TC")):
        k = sig[count].to_numpy(int)
        p_up = min(1.0, m * float(np.min(stats.binom.sf(k - 1, c, LEVEL))))
        top = int(k.max())
        ci = stats.binomtest(top, c).proportion_ci(0.95)
        pm = _paper_means(table, f"{prefix}{count}")
        paper_counts = [v for (mod, t), v in pm.items() if mod == "ds" and t <= 10 and np.isfinite(v)]
        paper = (max(paper_counts) / (10 if table == "table5" else 100) - LEVEL) if paper_counts else None
        # Absent: at every T the count is significantly below chance + the paper's excess (an
        # intersection-union test: the largest of the per-T p-values, no correction needed).
        p_absent = (float(np.max(stats.binom.cdf(k, c, LEVEL + paper))) if paper is not None and paper > 0 else None)
        # Fewer significant classes than chance is a conservative test, not the claim's opposite:
        # nothing contradicts "not random" (p_other = 1).
        tests.append(_Test(name, p=p_up, p_other=1.0, effect=top / c - LEVEL, ci=(ci.low - LEVEL, ci.high - LEVEL),
                           mde=mde, paper=paper, p_absent=p_absent,
                           text=(f"{name} (uncorrected) per T: {', '.join(f'T{t:g}: {v}' for t, v in zip(sig['temperature'], k))} "
                                 f"of {c} (chance: {LEVEL * c:.1f}); binomial p of the largest, ×{m} temperatures: {p_up:.2g}; "
                                 f"after Holm over the classes: {', '.join(str(v) for v in sig[f'{count}_holm'])}")))
    return _row(6, LABELS[source], tests, need="all", level=level, degenerate_reason=deg["teacher"],
                unit="temperature (count over the classes)", n=m)


def _fair_label(source: str, attribute: str) -> str:
    return f"{LABELS[source]} — {attribute}"


def _paper_fair(source: str, measure: str, attribute: str) -> dict[tuple[str, float], float]:
    """The paper's means of ``measure`` (fractions) for the data set ``source`` stands in for;
    empty for Trifeature's texture attribute (the paper tabulates colour only, its Tables 2
    and 9; texture is in its Figure 9, not in numbers)."""
    if source == "trifeature" and attribute != "colour":
        return {}
    return _fraction_table(_PAPER_FAIRNESS[source], measure)


def _by_seed(rows, source, role, t, alpha, col) -> pd.Series:
    sel = _sel(rows, source, role, t if role == "ds" else None, alpha if role == "ds" else None)
    return sel.set_index("seed")[col].astype(float)


def _claim2(rows, source, attribute, alpha, temps, deg, level, checks) -> dict[str, object]:
    col, pm = f"dpd_{attribute}", _paper_fair(source, "dpd", attribute)
    teacher = _by_seed(rows, source, "teacher", None, None, col)
    paper = max((_paper_value(pm, "teacher") - _paper_value(pm, "ds", t) for t in range(1, 11)), default=float("nan"))
    tests = []
    for t in [t for t in temps if t <= 10]:
        ds = _by_seed(rows, source, "ds", t, alpha, col)
        diff = (teacher - ds).dropna().to_numpy()
        tests.append(_paired(f"T{t:g}", diff, paper, level,
                             f"T = {t:g}: teacher {_pct(teacher.mean())} − DS {_pct(ds.mean())} DPD = {_pct(np.mean(diff))}"))
    within, text = _within(checks, source, attribute, "dpd", [("teacher", np.nan)] + [("ds", t) for t in temps if t <= 10])
    return _row(2, _fair_label(source, attribute), tests, need="any", level=level, degenerate_reason=deg["teacher"],
                within=within, floor_text=text, unit="seed (paired: a teacher and its distilled student)",
                n=len(teacher))


def _claim3(rows, source, attribute, alpha, temps, deg, level, checks) -> dict[str, object]:
    window = [t for t in temps if t <= 10]
    if len(window) < 3:
        return _row(3, _fair_label(source, attribute), [], need="all", level=level, degenerate_reason=deg["teacher"],
                    unit="seed", n=0, untested="needs at least three temperatures ≤ 10")
    tests, within_any, texts = [], False, []
    for m in ("eod", "dpd"):
        col, pm = f"{m}_{attribute}", _paper_fair(source, m, attribute)
        ds = _sel(rows, source, "ds", alpha=alpha)
        ds = ds[ds["temperature"] <= 10]
        slopes = np.array([-_slope(g["temperature"].to_numpy(float), g[col].to_numpy(float))[0]
                           for _, g in ds.groupby("seed")])
        slopes = slopes[np.isfinite(slopes)]
        paper = -_slope(np.array(window), np.array([_paper_value(pm, "ds", t) for t in window]))[0] if pm else float("nan")
        tests.append(_paired(m.upper(), slopes, paper, level,
                             f"{m.upper()}: per-seed slope over T = {', '.join(f'{t:g}' for t in window)}: "
                             f"{-np.mean(slopes) * 100 if slopes.size else float('nan'):+.3f} points per unit T "
                             f"(paper {-paper * 100:+.3f})"))
        w, text = _within(checks, source, attribute, m, [("ds", t) for t in window])
        within_any |= w
        texts.append(text)
    return _row(3, _fair_label(source, attribute), tests, need="all", level=level,
                degenerate_reason=deg["teacher"] or deg["temperature"], within=within_any,
                floor_text="; ".join(t for t in texts if t), unit="seed (its slope over T)",
                n=int(rows[(rows["source"] == source) & (rows["role"] == "ds")]["seed"].nunique()))


def _claim5(rows, source, attribute, alpha, temps, deg, level, checks) -> dict[str, object]:
    window = [t for t in temps if t <= 10]
    if not window:
        return _row(5, _fair_label(source, attribute), [], need="all", level=level, degenerate_reason=deg["teacher"],
                    unit="seed", n=0, untested="needs a distilled student at T ≤ 10")
    t_hi = window[-1]
    tests, within_any, texts = [], False, []
    for m in ("eod", "dpd"):
        col, pm = f"{m}_{attribute}", _paper_fair(source, m, attribute)
        nds, ds = _by_seed(rows, source, "nds", None, None, col), _by_seed(rows, source, "ds", t_hi, alpha, col)
        diff = (nds - ds).dropna().to_numpy()
        paper = _paper_value(pm, "nds") - _paper_value(pm, "ds", 10.0)
        tests.append(_paired(m.upper(), diff, paper, level,
                             f"{m.upper()}: NDS {_pct(nds.mean())} − DS (T = {t_hi:g}) {_pct(ds.mean())} = {_pct(np.mean(diff))} "
                             f"(paper, T = 10: {_pct(paper)})"))
        w, text = _within(checks, source, attribute, m, [("nds", np.nan), ("ds", t_hi)])
        within_any |= w
        texts.append(text)
    return _row(5, _fair_label(source, attribute), tests, need="all", level=level, degenerate_reason=deg["teacher"],
                within=within_any, floor_text="; ".join(t for t in texts if t),
                unit="seed (paired: NDS and DS share θ0 and batches)", n=len(_sel(rows, source, "nds")))


def _claim4(rows, source, alpha, temps, deg, level, checks) -> list[dict[str, object]]:
    high = [t for t in temps if t >= 20]
    labels = [_fair_label(source, a) for a in ATTRIBUTES[source]] if source in FAIRNESS else [LABELS[source]]
    if 10.0 not in temps or not high:
        return [_row(4, label, [], need="all", level=level, degenerate_reason=deg["teacher"], unit="seed", n=0,
                     untested="needs T = 10 and a T ≥ 20") for label in labels]
    th = max(high)
    reason = deg["teacher"] or deg["temperature"]
    if source in CLASSWISE:
        d = _profile_distances(rows, source, alpha)
        a10, ah = d[d["temperature"] == 10].set_index("seed"), d[d["temperature"] == th].set_index("seed")
        tests = []
        for col, sign, name in (("d_nds", -1, "to the NDS profile"), ("d_teacher", 1, "to the teacher profile")):
            diff = (sign * (ah[col] - a10[col])).dropna().to_numpy()
            tests.append(_paired(f"distance {name}", diff, None, level,
                                 f"profile distance {name}: T10 {a10[col].mean():.3f} → T{th:g} {ah[col].mean():.3f}"))
        return [_row(4, LABELS[source], tests, need="all", level=level, degenerate_reason=reason,
                     unit="seed (paired over T)", n=len(a10))]
    out = []
    for attribute in ATTRIBUTES[source]:
        tests, within_any, texts = [], False, []
        for m in ("eod", "dpd"):
            col, pm = f"{m}_{attribute}", _paper_fair(source, m, attribute)
            s10, sh = _by_seed(rows, source, "ds", 10.0, alpha, col), _by_seed(rows, source, "ds", th, alpha, col)
            diff = (sh - s10).dropna().to_numpy()
            paper = _paper_value(pm, "ds", th) - _paper_value(pm, "ds", 10.0)
            tests.append(_paired(m.upper(), diff, paper if np.isfinite(paper) else None, level,
                                 f"{m.upper()}: T10 {_pct(s10.mean())} → T{th:g} {_pct(sh.mean())} (paper: "
                                 f"{_pct(paper)} at T{th:g})"))
            w, text = _within(checks, source, attribute, m, [("ds", 10.0), ("ds", th)])
            within_any |= w
            texts.append(text)
        out.append(_row(4, _fair_label(source, attribute), tests, need="all", level=level, degenerate_reason=reason,
                        within=within_any, floor_text="; ".join(t for t in texts if t), unit="seed (paired over T)",
                        n=len(_sel(rows, source, "ds", 10.0, alpha))))
    return out


def answerable(claims_frame: pd.DataFrame) -> pd.DataFrame:
    """"Can this profile answer the paper?" (:func:`fairdd.stats.answerable`) with the claim's
    statement and the reason of its verdict."""
    table = fstats.answerable(claims_frame)
    table.insert(1, "statement", claims_frame["statement"].to_numpy())
    table["why"] = claims_frame["reason"].to_numpy()
    return table


def findings(rows: pd.DataFrame, *, level: float = LEVEL, claims_frame: pd.DataFrame | None = None) -> str:
    """Markdown sentences of what the rows show: accuracies, what makes a protocol degenerate
    (:func:`degenerate`), the significant-class counts beside the count chance alone gives,
    and every verdict with its reason (``claims_frame``: :func:`claims` of ``rows``, computed
    when not given)."""
    if claims_frame is None:
        claims_frame = claims(rows, level=level)
    lines = []
    for source in dict.fromkeys(rows["source"]):
        alpha = main_alpha(rows, source)
        t_acc = 100 * _sel(rows, source, "teacher")["accuracy"].mean()
        n_acc = 100 * _sel(rows, source, "nds")["accuracy"].mean()
        ds = _sel(rows, source, "ds", alpha=alpha)
        by_t = ds.groupby("temperature")["accuracy"].mean() * 100
        text = (f"**{LABELS[source]}** (stand-in for {STAND_INS[source]}; {ds['seed'].nunique()} seeds): teacher "
                f"{t_acc:.1f}%, non-distilled student {n_acc:.1f}%, distilled students {by_t.min():.1f}–{by_t.max():.1f}% "
                f"(best at T = {by_t.idxmax():g}, worst at T = {by_t.idxmin():g}, α = {alpha:g}).")
        deg = [r for r in degenerate(rows, source, level=level).values() if r]
        if deg:
            text += " Degenerate protocol: " + "; ".join(deg) + "."
        if source in CLASSWISE:
            sig = _counts(rows, source, alpha, level)
            c, m = int(sig["classes"].iloc[0]), len(sig)
            chance = level * m * c
            text += (f" Uncorrected, {sig['sc'].sum()} class–temperature pairs are significant for #SC and "
                     f"{sig['tc'].sum()} for #TC over {m} temperatures × {c} classes, where chance alone gives about "
                     f"{chance:.1f} each; after Holm's correction over the classes, {sig['sc_holm'].sum()} and "
                     f"{sig['tc_holm'].sum()}.")
        lines.append(text)
    for r in claims_frame.itertuples():
        lines.append(f"Claim {r.claim} on {r.dataset}: **{r.verdict}** — {r.reason}.")
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


def plot_class_accuracy(rows: pd.DataFrame, source: str, *, max_classes: int = 10) -> plt.Figure:
    """Paper Figure 1: per-class accuracy of the distilled students against T (main α), the
    NDS and teacher as dashed and dotted lines; × where #SC counts the class. With more than
    ``max_classes`` classes, the ``max_classes`` most often counted by #SC (ties: lowest index)."""
    alpha = main_alpha(rows, source)
    temps = _temps(rows, source, alpha)
    sig = significance(rows[rows["source"] == source])
    sig = sig[sig["alpha"] == alpha]
    nds, teacher = per_class_matrix(_sel(rows, source, "nds")).mean(0), per_class_matrix(_sel(rows, source, "teacher")).mean(0)
    means = np.array([per_class_matrix(_sel(rows, source, "ds", t, alpha)).mean(0) for t in temps])
    hits_per_class = np.zeros(means.shape[1], int)
    for classes in sig["sc_classes"]:
        for c in (int(x) for x in classes.split(", ") if x):
            hits_per_class[c] += 1
    shown = sorted(np.argsort(-hits_per_class, kind="stable")[:max_classes])
    k = len(shown)
    fig, axes = plt.subplots(2, (k + 1) // 2, figsize=(2.2 * ((k + 1) // 2), 4.5), sharex=True, squeeze=False)
    for c, ax in zip(shown, axes.flat[:k]):
        ax.plot(temps, 100 * means[:, c], "o-", ms=3)
        ax.axhline(100 * nds[c], ls="--", c="grey", lw=1)
        ax.axhline(100 * teacher[c], ls=":", c="k", lw=1)
        hits = [t for t, classes in zip(sig["temperature"], sig["sc_classes"]) if str(c) in classes.split(", ")]
        ax.plot(hits, [100 * means[temps.index(t), c] for t in hits], "rx", ms=8)
        ax.set_title(f"class {c}", fontsize=9)
        ax.set_xscale("log")
    fig.supxlabel("temperature T")
    fig.supylabel("test accuracy (%)")
    fig.suptitle(f"{LABELS[source]}: distilled students by class (dashed NDS, dotted teacher, × #SC)"
                 + (f"; the {k} classes most often in #SC" if k < means.shape[1] else ""))
    fig.tight_layout()
    return fig


def plot_counts(rows: pd.DataFrame) -> plt.Figure:
    """Paper Figures 3 and 8: #SC and #TC against T per class-wise data set and α,
    uncorrected (solid) and after Holm (dashed); dotted, what chance alone gives (0.05·C)."""
    sig = significance(rows[rows["source"].isin(CLASSWISE)])
    fig, ax = plt.subplots(figsize=(6, 3.5))
    for (dataset, alpha), g in sig.groupby(["dataset", "alpha"]):
        for col, marker in (("sc", "o"), ("tc", "s")):
            line, = ax.plot(g["temperature"], g[col], marker=marker, label=f"{dataset} α={alpha:g} #{col.upper()}")
            ax.plot(g["temperature"], g[f"{col}_holm"], ls="--", marker=marker, c=line.get_color(), alpha=0.5)
        ax.axhline(LEVEL * g["classes"].iloc[0], ls=":", c="grey", lw=1)
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
