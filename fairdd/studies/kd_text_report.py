"""Tables, claims and figures of the text KD study (:mod:`fairdd.studies.kd_text`).

Everything here reads the study's rows (one per trained model); nothing is trained anew. The
paper's numbers (Mohammadshahi & Ioannou, "What's Left After Distillation? How Knowledge
Transfer Impacts Fairness and Bias", Table 3: HateXplain, BERT-Base → DistilBERT) are
transcribed in :data:`PAPER_TABLE3` and only ever shown as the paper's, beside ours.

:func:`claims` judges the paper's two text claims by computed tests, with Holm's correction
within each claim and, where a test finds nothing, its power: a claim is "untestable here" when
our seeds and spread could not have detected an effect as large as the paper's (relative to
the same reference), "not supported" when they could have and did not.
"""

from __future__ import annotations

import io
import warnings

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from scipy import stats

from fairdd import metrics
from fairdd import stats as fstats
from fairdd.studies._study import mean_std

__all__ = ["PAPER_TABLE3", "claims", "findings", "paper_table3", "plot_figure5", "table3"]

LEVEL = 0.05
POWER = 0.8

#: Mohammadshahi & Ioannou, Table 3 (HateXplain; BERT-Base teacher, DistilBERT students;
#: mean and std over five seeds; accuracy, EOD and DPD in %), transcribed from the paper.
PAPER_TABLE3 = """model,temperature,acc,acc_std,eod_gender,eod_gender_std,dpd_gender,dpd_gender_std,eod_race,eod_race_std,dpd_race,dpd_race_std
teacher,,75.79,0.19,1.63,0.05,1.10,0.04,1.13,0.04,1.64,0.07
nds,,73.28,0.12,4.79,0.03,2.87,0.05,6.41,0.08,3.16,0.05
ds,1,73.60,0.25,4.35,0.04,2.74,0.05,6.18,0.08,3.02,0.03
ds,2,74.44,0.21,4.46,0.07,1.84,0.03,5.86,0.05,2.46,0.04
ds,3,73.76,0.19,3.88,0.05,1.66,0.08,4.99,0.09,2.19,0.06
ds,4,74.05,0.22,3.51,0.09,1.45,0.09,4.13,0.06,2.03,0.09
ds,5,74.12,0.17,2.97,0.12,1.23,0.07,3.78,0.11,1.97,0.05
ds,6,74.25,0.21,2.16,0.06,1.16,0.04,3.53,0.08,1.71,0.09
ds,7,74.58,0.24,1.66,0.07,1.09,0.06,3.31,0.11,1.54,0.08
ds,8,74.31,0.27,1.49,0.10,0.98,0.07,3.16,0.06,1.21,0.05
ds,9,73.73,0.16,1.28,0.08,0.76,0.10,2.99,0.09,1.16,0.03
ds,10,74.27,0.24,1.13,0.11,0.64,0.08,2.64,0.08,1.04,0.08
"""

CLAIMS = {
    "T": "Fairness improves (EOD and DPD fall) as T rises (T = 1 → 10), for every group",
    "teacher": "The distilled student is fairer than its teacher on gender (EOD and DPD, at T = 10)",
}
_ROLE = {"teacher": "Teacher", "nds": "NDS", "ds": "DS"}


def paper_table3() -> pd.DataFrame:
    """:data:`PAPER_TABLE3` as a DataFrame (the paper's numbers, in %)."""
    return pd.read_csv(io.StringIO(PAPER_TABLE3))


def _sel(rows: pd.DataFrame, role: str, temperature: float | None = None) -> pd.DataFrame:
    out = rows[rows["role"] == role]
    if temperature is not None:
        out = out[out["temperature"] == temperature]
    return out.sort_values("seed")


def _temps(rows: pd.DataFrame) -> list[float]:
    return sorted(float(t) for t in rows.loc[rows["role"] == "ds", "temperature"].unique())


def _groups(rows: pd.DataFrame) -> list[str]:
    """The protected groups the rows were measured on: each ``eod_<group>`` column with a value
    (the cells' data specs decide which groups are read; the report does not keep its own list)."""
    groups = [c[len("eod_"):] for c in rows.columns if c.startswith("eod_") and rows[c].notna().any()]
    if not groups:
        raise ValueError(f"the rows hold no eod_<group> column; columns are {list(rows.columns)}")
    return groups


def _source(rows: pd.DataFrame) -> str:
    sources = list(dict.fromkeys(rows["source"]))
    if len(sources) != 1:
        raise ValueError(f"the text report reads the rows of one data set; got {sources}")
    return sources[0]


def table3(rows: pd.DataFrame) -> tuple[str, pd.DataFrame]:
    """The paper's Table 3 beside ours: a caption and one row per model and T, with the paper's
    and our accuracy, EOD and DPD (%, mean ± std over seeds) per group ("–" where one side has
    no such model or group)."""
    source = _source(rows)
    paper = paper_table3()
    ours_groups = _groups(rows)
    temps = sorted(set(_temps(rows)) | set(paper["temperature"].dropna()))
    keys = [("teacher", None), ("nds", None)] + [("ds", t) for t in temps]
    out = []
    for role, t in keys:
        p = paper[(paper["model"] == role) & ((paper["temperature"] == t) if t is not None else paper["temperature"].isna())]
        o = _sel(rows, role, t) if role == "ds" else _sel(rows, role)
        rec = {"model": _ROLE[role], "T": "–" if t is None else f"{t:g}"}

        def paper_cell(col: str) -> str:
            return f"{p[col].iloc[0]:.2f} ± {p[col + '_std'].iloc[0]:.2f}" if len(p) else "–"

        rec["acc (paper)"], rec["acc (ours)"] = paper_cell("acc"), mean_std(o["accuracy"], scale=100, digits=2) if len(o) else "–"
        for group in ("gender", "race"):
            for m in ("eod", "dpd"):
                col = f"{m}_{group}"
                rec[f"{m.upper()} {group} (paper)"] = paper_cell(col)
                rec[f"{m.upper()} {group} (ours)"] = (mean_std(o[col], scale=100, digits=2)
                                                      if group in ours_groups and len(o) else "–")
        out.append(rec)
    data = rows["dataset"].iloc[0]
    caption = (f"**The paper's Table 3** (HateXplain, BERT-Base → DistilBERT, 5 seeds, labelled *paper*) beside "
               f"**ours** ({data}, {rows['seed'].nunique()} seeds, labelled *ours*); %, mean ± std over seeds."
               + ("" if source == "hatexplain" else " Ours are on the offline stand-in, a different task and model "
                  "pair: compare directions, not levels; it has no race group."))
    return caption, pd.DataFrame(out)


# ------------------------------------------------------------------------------ claims


def claims(rows: pd.DataFrame, *, level: float = LEVEL) -> pd.DataFrame:
    """The paper's two text claims, judged by computed tests on our rows, in the four verdict
    classes of :func:`fairdd.stats.decide` (issue 23).

    - ``"T"`` (fairness improves with T): for every group and for EOD and DPD, a one-sided
      Welch test that the distilled students at our largest T ≤ 10 have a lower value than
      those at our smallest T (the paper: T = 1 → 10); Spearman's ρ over all T is shown beside.
    - ``"teacher"`` (fairer than the teacher on gender): for EOD and DPD on gender, a one-sided
      Welch test that the distilled students at the largest T ≤ 10 are below the teachers (the
      paper's Table 3: T = 10 below the teacher in both).

    Effects are *relative drops* (1 − low/reference), ours and the paper's (Table 3: its
    HateXplain levels are not ours, its relative changes are comparable); the minimum
    detectable effect (:func:`fairdd.stats.minimum_detectable_effect`, pooled std, 80 % power)
    is divided by the same reference. Within a claim the tests are Holm-corrected together and
    every test is needed; "absent" needs every test's TOST at the paper's relative drop; a
    claim is "untestable here" when the teacher is no better than the hard-label student
    (:func:`fairdd.studies.kd_report.degenerate`) or a test could not have detected the paper's
    drop. The row's effect, interval, MDE and paper's effect are those of the test least able
    to detect the paper's effect. (The text rows store no count tables, so the group measures
    have no noise floor here.)

    Returns :data:`fairdd.stats.CLAIM_COLUMNS`, then ``evidence``.
    """
    from fairdd.studies.kd_report import PAPER as paper_name
    from fairdd.studies.kd_report import degenerate

    source = _source(rows)
    dataset = rows["dataset"].iloc[0]
    paper = paper_table3().set_index(["model", "temperature"], drop=False)
    temps = [t for t in _temps(rows) if t <= 10]
    out = []
    if len(temps) < 2:
        for c, s in CLAIMS.items():
            out.append(fstats.claim_row(paper=paper_name, claim=f"text: {c}", statement=s, chapter="kd_fairness",
                                        dataset=dataset, verdict=fstats.Verdict("untestable here",
                                                                                "no test: needs two temperatures ≤ 10"),
                                        unit="seed", evidence=""))
        return pd.DataFrame(out)
    deg = degenerate(rows.assign(alpha=rows["alpha"] if "alpha" in rows else np.nan), source, level=level)["teacher"]
    t_lo, t_hi = temps[0], temps[-1]
    p_row = lambda model, t=None: paper[(paper["model"] == model) & (  # noqa: E731
        paper["temperature"].isna() if t is None else paper["temperature"] == t)].iloc[0]
    ds_lo, ds_hi, teacher = _sel(rows, "ds", t_lo), _sel(rows, "ds", t_hi), _sel(rows, "teacher")
    plans = {
        "T": [(g, m, ds_hi, ds_lo, p_row("ds", 10.0), p_row("ds", 1.0)) for g in _groups(rows) for m in ("eod", "dpd")],
        "teacher": [("gender", m, ds_hi, teacher, p_row("ds", 10.0), p_row("teacher")) for m in ("eod", "dpd")],
    }
    for claim, plan in plans.items():
        tests, parts = [], []
        for group, m, low, ref, paper_low, paper_ref in plan:
            col = f"{m}_{group}"
            a, b = ref[col].to_numpy(float), low[col].to_numpy(float)
            base = float(np.mean(a))
            rel_paper = 1 - paper_low[col] / paper_ref[col]
            if len(a) < 2 or len(b) < 2 or base <= 0:
                tests.append({"p": 1.0, "q": 1.0, "absent": None, "effect": float("nan"), "ci": (float("nan"),) * 2,
                              "mde": float("inf"), "paper": rel_paper})
                parts.append(f"{m.upper()} {group}: no drop is measurable (reference {100 * base:.2f}%)")
                continue
            sd = float(np.sqrt((np.var(a, ddof=1) + np.var(b, ddof=1)) / 2))
            diff, lo, hi = fstats.welch_interval(a, b)
            mde = fstats.minimum_detectable_effect(len(a), len(b), sd, level=level) / base
            margin = abs(rel_paper) * base
            r = {"p": fstats.welch(a, b, alternative="larger"), "q": fstats.welch(a, b, alternative="smaller"),
                 "absent": fstats.tost(a, b, margin=margin) if margin > 0 else None,
                 "effect": diff / base, "ci": (lo / base, hi / base), "mde": mde, "paper": rel_paper}
            tests.append(r)
            ref_name = f"T = {t_lo:g}" if claim == "T" else "teacher"
            text = (f"{m.upper()} {group}: {ref_name} {100 * base:.2f}% → T = {t_hi:g} {100 * np.mean(b):.2f}% "
                    f"(relative drop {100 * r['effect']:+.0f}%, one-sided Welch p = {r['p']:.2g}; paper "
                    f"{100 * rel_paper:+.0f}%, detectable ≥ {100 * mde:.0f}%)")
            if claim == "T":
                ds = _sel(rows, "ds")
                ds = ds[ds["temperature"] <= 10]
                if ds["temperature"].nunique() > 1 and ds[col].nunique() > 1:
                    text += f", Spearman ρ over T = {stats.spearmanr(ds['temperature'], ds[col]).statistic:+.2f}"
            parts.append(text)
        worst = min(tests, key=lambda r: abs(r["paper"]) / r["mde"] if r["mde"] > 0 else float("inf"))
        absent = [r["absent"] for r in tests]
        verdict = fstats.decide(
            p_support=[r["p"] for r in tests], p_contradict=[r["q"] for r in tests], need="all",
            p_absent=absent if all(x is not None for x in absent) else None,
            margin=min(abs(r["paper"]) for r in tests), margin_source="the paper's relative drop",
            mde=worst["mde"] if np.isfinite(worst["mde"]) else None, paper_effect=worst["paper"], degenerate=deg,
            level=level)
        out.append(fstats.claim_row(
            paper=paper_name, claim=f"text: {claim}", statement=CLAIMS[claim], chapter="kd_fairness", dataset=dataset,
            verdict=verdict, effect=worst["effect"], ci_low=worst["ci"][0], ci_high=worst["ci"][1], mde=worst["mde"],
            paper_effect=worst["paper"], unit="seed (relative drop)", n=rows["seed"].nunique(), tests=len(tests),
            evidence="; ".join(parts)))
    return pd.DataFrame(out)


def findings(rows: pd.DataFrame, *, level: float = LEVEL) -> str:
    """Markdown sentences of what the rows show: accuracies, fairness at the ends of the T
    range, and the verdicts of :func:`claims`."""
    _source(rows)  # one data set's rows
    temps = [t for t in _temps(rows) if t <= 10]
    acc = {role: 100 * _sel(rows, role)["accuracy"].mean() for role in ("teacher", "nds")}
    ds_acc = rows[rows["role"] == "ds"].groupby("temperature")["accuracy"].mean() * 100
    lines = [f"On {rows['dataset'].iloc[0]} ({rows['seed'].nunique()} seeds), the teacher reaches "
             f"{acc['teacher']:.1f}% test accuracy and the non-distilled student {acc['nds']:.1f}%; the distilled "
             f"students {ds_acc.min():.1f}–{ds_acc.max():.1f}% over T = {', '.join(f'{t:g}' for t in ds_acc.index)}."]
    if temps:
        t_hi = temps[-1]
        for group in _groups(rows):
            vals = {m: {k: 100 * s[f"{m}_{group}"].mean() for k, s in (
                ("teacher", _sel(rows, "teacher")), ("nds", _sel(rows, "nds")), ("lo", _sel(rows, "ds", temps[0])),
                ("hi", _sel(rows, "ds", t_hi)))} for m in ("eod", "dpd")}
            lines.append(f"{group.capitalize()}: EOD teacher {vals['eod']['teacher']:.2f}%, NDS {vals['eod']['nds']:.2f}%, "
                         f"DS T = {temps[0]:g} {vals['eod']['lo']:.2f}% → T = {t_hi:g} {vals['eod']['hi']:.2f}%; DPD "
                         f"teacher {vals['dpd']['teacher']:.2f}%, NDS {vals['dpd']['nds']:.2f}%, DS T = {temps[0]:g} "
                         f"{vals['dpd']['lo']:.2f}% → T = {t_hi:g} {vals['dpd']['hi']:.2f}%.")
    for r in claims(rows, level=level).itertuples():
        lines.append(f"Claim *{r.statement}*: **{r.verdict}** — {r.reason}.")
    return "\n\n".join(lines)


def plot_figure5(rows: pd.DataFrame) -> plt.Figure:
    """The paper's Figure 5 from our rows: EOD and DPD (%) of the distilled students against T,
    one panel per group, the teacher (dotted) and NDS (dashed) as horizontal lines."""
    _source(rows)  # one data set's rows
    groups = _groups(rows)
    temps = _temps(rows)
    fig, axes = plt.subplots(1, len(groups), figsize=(4.2 * len(groups), 3.2), squeeze=False)
    for ax, group in zip(axes[0], groups):
        for m, colour in (("eod", "C0"), ("dpd", "C1")):
            col = f"{m}_{group}"
            vals = [_sel(rows, "ds", t)[col] for t in temps]
            ax.errorbar(temps, [100 * v.mean() for v in vals], yerr=[100 * v.std(ddof=1) if len(v) > 1 else 0 for v in vals],
                        c=colour, marker="o", ms=3, capsize=2, label=f"{m.upper()} (DS)")
            ax.axhline(100 * _sel(rows, "teacher")[col].mean(), c=colour, ls=":", lw=1)
            ax.axhline(100 * _sel(rows, "nds")[col].mean(), c=colour, ls="--", lw=1)
        ax.set(title=f"{rows['dataset'].iloc[0]}: {group}", xlabel="T", ylabel="%")
    axes[0][0].legend(fontsize=8)
    fig.suptitle("EOD and DPD of distilled students against T (dotted teacher, dashed NDS)", fontsize=10)
    fig.tight_layout()
    return fig
