"""What a measurement could have detected: noise floors, intervals, power, equivalence, verdicts.

Every chapter of the book judges a paper's claims. A verdict is only as good as the test
behind it, so this module answers, with one set of functions used by every report:

* **Is a group measure distinguishable from no group effect?** A model's test predictions are
  kept as a count table (:func:`group_counts`: group x true class x predicted class), which
  is sufficient for every group measure of :mod:`fairdd.metrics`. From it come the measure
  (:func:`group_measure`), a percentile bootstrap interval over test examples
  (:func:`bootstrap_interval`) and a **noise floor** (:func:`noise_floor`): the 95th
  percentile of the measure when the group labels are permuted among the same predictions —
  what a classifier blind to the attribute scores on this test set by chance. A value whose
  interval reaches the floor is "within the noise floor" (:func:`check_measure`).
* **Could a claim test have seen the paper's effect?** :func:`minimum_detectable_effect` and
  :func:`mde_from_standard_error` give the smallest true effect a one- or two-sample t test
  detects with 80 % power at the observed spread and n (statsmodels' power functions are the
  oracle in the tests).
* **Is an effect absent?** :func:`tost` — Schuirmann's two one-sided tests (Welch form) at a
  stated margin.
* **What is the experimental unit?** :func:`unit_means` averages replicates that share a unit
  (two classifiers trained on one distilled set are one observation of that set).
* **Verdicts in four classes**, :func:`decide`: *supported*, *contradicted* (significant the
  other way), *absent* (equivalence at a stated margin), *untestable here* (degenerate
  protocol, a measure within its floor, a test that could not have detected the paper's
  effect, or an inconclusive test) — each with a generated reason. Several tests behind one
  claim are corrected with Holm's step-down method (:func:`fairdd.metrics.holm_adjust`).

Every chapter's ``claims(rows)`` returns :data:`CLAIM_COLUMNS` (:func:`claim_row`), so the
replication summary page concatenates the chapters' own tables and cannot disagree with them.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd
from scipy import optimize
from scipy import stats as sps

from fairdd.config import check_choice, check_int
from fairdd.metrics import holm_adjust

__all__ = [
    "CLAIM_COLUMNS",
    "GROUP_MEASURES",
    "LEVEL",
    "POWER",
    "VERDICTS",
    "MeasureCheck",
    "Verdict",
    "answerable",
    "bootstrap_interval",
    "check_measure",
    "check_measures",
    "checks_text",
    "claim_row",
    "counts_from_json",
    "counts_to_json",
    "decide",
    "group_counts",
    "group_measure",
    "mde_from_standard_error",
    "minimum_detectable_effect",
    "noise_floor",
    "tost",
    "tost_from_estimate",
    "unit_means",
    "welch",
    "welch_interval",
    "welch_parts",
]

LEVEL = 0.05
POWER = 0.8
VERDICTS = ("supported", "contradicted", "absent", "untestable here")
CLAIM_COLUMNS = ("paper", "claim", "statement", "chapter", "dataset", "verdict", "reason",
                 "effect", "ci_low", "ci_high", "mde", "paper_effect", "unit", "n", "tests")

Alternative = Literal["larger", "smaller", "two-sided"]
_ALTERNATIVES = ("larger", "smaller", "two-sided")


# ------------------------------------------------------------------------- count tables


def group_counts(y_true: Any, y_pred: Any, groups: Any, *, num_classes: int, num_groups: int) -> np.ndarray:
    """The test predictions of one model as counts ``[group, true class, predicted class]``.

    Parameters
    ----------
    y_true, y_pred, groups : array-like of int, shape (N,)
        True class, predicted class and protected group of each test example.
    num_classes, num_groups : int
        K and G; every value must lie in ``[0, K)`` / ``[0, G)``.

    Returns
    -------
    numpy.ndarray of int64, shape (G, K, K)
    """
    check_int("num_classes", num_classes, minimum=2)
    check_int("num_groups", num_groups, minimum=1)
    arrays = {}
    for name, x, bound in (("y_true", y_true, num_classes), ("y_pred", y_pred, num_classes),
                           ("groups", groups, num_groups)):
        a = np.asarray(x.cpu() if hasattr(x, "cpu") else x)
        if a.ndim != 1 or not (np.issubdtype(a.dtype, np.integer) or a.size == 0):
            raise ValueError(f"{name} must be a 1-D array of integers, got shape {a.shape} and dtype {a.dtype}")
        if a.size and (a.min() < 0 or a.max() >= bound):
            raise ValueError(f"{name} holds values in [{a.min()}, {a.max()}]; allowed: 0 to {bound - 1}")
        arrays[name] = a.astype(np.int64)
    n = {a.size for a in arrays.values()}
    if len(n) != 1:
        raise ValueError(f"y_true, y_pred and groups must have the same length, got {[a.size for a in arrays.values()]}")
    flat = (arrays["groups"] * num_classes + arrays["y_true"]) * num_classes + arrays["y_pred"]
    return np.bincount(flat, minlength=num_groups * num_classes * num_classes).reshape(
        num_groups, num_classes, num_classes)


def counts_to_json(counts: np.ndarray) -> str:
    """A count table as compact JSON (nested lists), for a row column."""
    return json.dumps(_check_counts(counts, "counts").tolist(), separators=(",", ":"))


def counts_from_json(text: str, *, num_classes: int | None = None, num_groups: int | None = None) -> np.ndarray:
    """Read a count table written by :func:`counts_to_json`, checking what it holds.

    Raises ``ValueError`` naming the problem: not JSON, not a (G, K, K) table of non-negative
    integers, or a shape other than the expected ``num_groups`` / ``num_classes``.
    """
    if not isinstance(text, str):
        raise ValueError(f"a count table must be a JSON string, got {type(text).__name__} {text!r:.60}")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        raise ValueError(f"a count table is not valid JSON ({err.msg} at {err.pos}): {text[:60]!r}") from None
    try:
        counts = np.asarray(data)
    except ValueError:
        raise ValueError(f"a count table must be a (groups, classes, classes) table, got ragged lists {text[:60]!r}") from None
    if counts.dtype.kind == "f" and np.all(np.isfinite(counts)) and np.all(counts == np.round(counts)):
        counts = counts.astype(np.int64)
    counts = _check_counts(counts, "the stored count table")
    g, k, _ = counts.shape
    if num_classes is not None and k != num_classes:
        raise ValueError(f"the stored count table has {k} classes; expected num_classes={num_classes}")
    if num_groups is not None and g != num_groups:
        raise ValueError(f"the stored count table has {g} groups; expected num_groups={num_groups}")
    return counts


def _check_counts(counts: Any, name: str) -> np.ndarray:
    c = np.asarray(counts)
    if c.ndim != 3 or c.shape[1] != c.shape[2] or c.shape[1] < 2 or c.shape[0] < 1:
        raise ValueError(f"{name} must have shape (groups, classes, classes) with classes >= 2, got {c.shape}")
    if not np.issubdtype(c.dtype, np.integer):
        raise ValueError(f"{name} must hold integers, got dtype {c.dtype}")
    if c.size and c.min() < 0:
        raise ValueError(f"{name} holds a negative count ({c.min()})")
    if c.sum() == 0:
        raise ValueError(f"{name} holds no test example")
    return c.astype(np.int64)


# -------------------------------------------------------- group measures from count tables
# Every function takes counts of shape (..., G, K, K) and returns shape (...): vectorised
# over bootstrap and permutation replicates. Each equals its fairdd.metrics counterpart on
# the expanded examples (tests/test_stats.py checks this on random data).


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    out = np.full(np.broadcast(num, den).shape, np.nan)
    np.divide(num, den, out=out, where=den > 0)
    return out


def _spread(rates: np.ndarray, axis: int) -> np.ndarray:
    """max - min over the defined rates along ``axis`` (NaN where none is defined)."""
    defined = np.isfinite(rates)
    high = np.where(defined, rates, -np.inf).max(axis=axis)
    low = np.where(defined, rates, np.inf).min(axis=axis)
    return np.where(defined.any(axis=axis), high - low, np.nan)


def _nanmean(x: np.ndarray, axis: int) -> np.ndarray:
    defined = np.isfinite(x)
    total = np.where(defined, x, 0.0).sum(axis=axis)
    n = defined.sum(axis=axis)
    return _ratio(total, n.astype(np.float64))


def _nanmax(x: np.ndarray, axis: int) -> np.ndarray:
    defined = np.isfinite(x)
    return np.where(defined.any(axis=axis), np.where(defined, x, -np.inf).max(axis=axis), np.nan)


def _one_vs_rest_rates(c: np.ndarray) -> dict[str, np.ndarray]:
    """Per (group, class) binary rates of class c against the rest: shape (..., G, K)."""
    size = c.sum(axis=(-2, -1))[..., None]  # (..., G, 1)
    support = c.sum(axis=-1)  # true class
    predicted = c.sum(axis=-2)  # predicted class
    hits = np.diagonal(c, axis1=-2, axis2=-1)
    return {
        "selection": _ratio(predicted, np.broadcast_to(size, predicted.shape)),
        "tpr": _ratio(hits, support),
        "fpr": _ratio(predicted - hits, size - support),
        "support": support,
    }


def _per_class_mean(values: np.ndarray, k: int) -> np.ndarray:
    """Binary tasks use class 1 (fairlearn's pos_label); K > 2 averages the K classes."""
    return values[..., 1] if k == 2 else _nanmean(values, axis=-1)


def _dpd(c: np.ndarray) -> np.ndarray:
    rates = _one_vs_rest_rates(c)
    return _per_class_mean(_spread(rates["selection"], axis=-2), c.shape[-1])


def _eod(c: np.ndarray) -> np.ndarray:
    rates = _one_vs_rest_rates(c)
    both = np.stack([_spread(rates["tpr"], axis=-2), _spread(rates["fpr"], axis=-2)])
    return _per_class_mean(_nanmax(both, axis=0), c.shape[-1])


def _tpr_gaps(c: np.ndarray) -> np.ndarray:
    rates = _one_vs_rest_rates(c)["tpr"]  # (..., G, K)
    present = np.isfinite(rates).sum(axis=-2) >= 2
    return np.where(present, _spread(rates, axis=-2), np.nan)


def _rms_tpr_gap(c: np.ndarray) -> np.ndarray:
    rates = _one_vs_rest_rates(c)
    support = rates["support"]
    hits = np.diagonal(c, axis1=-2, axis2=-1)
    overall = _ratio(hits.sum(axis=-2), support.sum(axis=-2))[..., None, :]  # (..., 1, K)
    gaps = np.abs(rates["tpr"] - overall)
    per_class = np.where(np.isfinite(gaps), gaps, 0.0).sum(axis=-2)  # (..., K)
    present = support.sum(axis=-2) > 0
    return np.sqrt(_ratio(np.where(present, per_class**2, 0.0).sum(axis=-1), present.sum(axis=-1).astype(np.float64)))


def _accuracy(c: np.ndarray) -> np.ndarray:
    hits = np.diagonal(c, axis1=-2, axis2=-1).sum(axis=(-2, -1))
    return _ratio(hits, c.sum(axis=(-3, -2, -1)))


def _aligned_gap(c: np.ndarray) -> np.ndarray:
    g, k = c.shape[-3], c.shape[-1]
    if g != k:
        raise ValueError(f"aligned_gap needs one group per class (groups == classes), got {g} groups and {k} classes")
    hits = np.diagonal(c, axis1=-2, axis2=-1)  # (..., G, K)
    support = c.sum(axis=-1)
    eye = np.eye(k, dtype=bool)
    aligned = _ratio(np.where(eye, hits, 0).sum(axis=(-2, -1)), np.where(eye, support, 0).sum(axis=(-2, -1)))
    conflicting = _ratio(np.where(eye, 0, hits).sum(axis=(-2, -1)), np.where(eye, 0, support).sum(axis=(-2, -1)))
    return aligned - conflicting


GROUP_MEASURES: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "accuracy": _accuracy,
    "dpd": _dpd,
    "eod": _eod,
    "deo_max": lambda c: _nanmax(_tpr_gaps(c), axis=-1),
    "deo_mean": lambda c: _nanmean(_tpr_gaps(c), axis=-1),
    "rms_tpr_gap": _rms_tpr_gap,
    "aligned_gap": _aligned_gap,
}
"""Group measures computable from a count table (fractions; 0 is no group difference).

``dpd``, ``eod``: :func:`fairdd.metrics.demographic_parity_difference` /
:func:`~fairdd.metrics.equalized_odds_difference` (between groups, worst case);
``deo_max`` / ``deo_mean``: max / mean over classes of :func:`~fairdd.metrics.tpr_gap_by_class`
(FairDD's DEO_M / DEO_A); ``rms_tpr_gap``: :func:`~fairdd.metrics.rms_tpr_gap` (Han et al.);
``aligned_gap``: accuracy on bias-aligned examples (group == true class) minus accuracy on
bias-conflicting ones (Lu et al.'s gap, groups being the bias attribute's values).
"""


def _measure(name: str) -> Callable[[np.ndarray], np.ndarray]:
    check_choice("measure", name, tuple(GROUP_MEASURES))
    return GROUP_MEASURES[name]


def group_measure(counts: np.ndarray, measure: str) -> float:
    """``measure`` (a name in :data:`GROUP_MEASURES`) of one count table."""
    return float(_measure(measure)(_check_counts(counts, "counts").astype(np.float64)))


def _resampled(counts: np.ndarray, resamples: int, rng: np.random.Generator) -> np.ndarray:
    flat = counts.reshape(-1)
    n = int(flat.sum())
    return rng.multinomial(n, flat / n, size=resamples).reshape((resamples, *counts.shape)).astype(np.float64)


def _permuted(counts: np.ndarray, permutations: int, rng: np.random.Generator) -> np.ndarray:
    """Count tables with the group labels shuffled among the examples (group sizes kept)."""
    g, k, _ = counts.shape
    per_group = counts.reshape(g, k * k)
    pair = np.repeat(np.tile(np.arange(k * k), g), per_group.reshape(-1))  # (N,) (true, pred) of each example
    group = np.repeat(np.arange(g), per_group.sum(axis=1))  # (N,) group of each example, in order
    shuffled = rng.permuted(np.broadcast_to(group, (permutations, group.size)), axis=1)
    flat = shuffled * (k * k) + pair + (np.arange(permutations) * g * k * k)[:, None]
    return np.bincount(flat.reshape(-1), minlength=permutations * g * k * k).reshape(
        permutations, g, k, k).astype(np.float64)


def bootstrap_interval(counts: np.ndarray, measure: str, *, confidence: float = 0.95, resamples: int = 1000,
                       seed: int = 0, method: Literal["basic", "percentile"] = "basic") -> tuple[float, float]:
    """Bootstrap interval of ``measure`` over the test examples.

    The test set is resampled with replacement (a multinomial draw of the count table, the
    same as resampling examples) ``resamples`` times; replicates where the measure is
    undefined are left out. ``method="basic"`` (the default; Davison & Hinkley 1997, §5.2) is
    the reverse-percentile interval :math:`[2\hat\theta - q_{1-a}, 2\hat\theta - q_a]`: the
    group measures are maxima of spreads, which sampling noise inflates, so their bootstrap
    distribution sits above the estimate and the plain ``"percentile"`` interval can miss it
    altogether; the basic interval corrects for that shift.
    """
    fn = _measure(measure)
    _check_fraction("confidence", confidence)
    check_int("resamples", resamples, minimum=100)
    check_choice("method", method, ("basic", "percentile"))
    counts = _check_counts(counts, "counts")
    values = fn(_resampled(counts, resamples, np.random.default_rng(seed)))
    values = values[np.isfinite(values)]
    if values.size == 0:
        return (float("nan"), float("nan"))
    tail = (1 - confidence) / 2
    low, high = np.quantile(values, [tail, 1 - tail])
    if method == "basic":
        estimate = float(fn(counts.astype(np.float64)))
        low, high = 2 * estimate - high, 2 * estimate - low
    return (float(low), float(high))


def noise_floor(counts: np.ndarray, measure: str, *, quantile: float = 0.95, permutations: int = 1000,
                seed: int = 0) -> float:
    """The measure's ``quantile`` under "no group effect": group labels permuted among the predictions.

    The (true, predicted) pairs stay as the model made them; only which group each example
    belongs to is shuffled (group sizes kept). Such a model's errors ignore the attribute by
    construction, so the permutation distribution is what sampling noise alone scores on this
    test set at this accuracy.
    """
    fn = _measure(measure)
    _check_fraction("quantile", quantile)
    check_int("permutations", permutations, minimum=100)
    values = fn(_permuted(_check_counts(counts, "counts"), permutations, np.random.default_rng(seed)))
    values = values[np.isfinite(values)]
    return float(np.quantile(values, quantile)) if values.size else float("nan")


@dataclass(frozen=True)
class MeasureCheck:
    """A group measure beside its bootstrap interval and noise floor."""

    measure: str
    value: float
    ci_low: float
    ci_high: float
    floor: float
    within_floor: bool  # the value or its interval reaches the floor: indistinguishable from no group effect


def check_measure(counts: np.ndarray, measure: str, *, confidence: float = 0.95, quantile: float = 0.95,
                  resamples: int = 1000, seed: int = 0) -> MeasureCheck:
    """:func:`group_measure`, its basic :func:`bootstrap_interval` and :func:`noise_floor` of one
    table; ``within_floor`` when the value or the interval's lower end is at most the floor."""
    counts = _check_counts(counts, "counts")
    value = group_measure(counts, measure)
    low, high = bootstrap_interval(counts, measure, confidence=confidence, resamples=resamples, seed=seed)
    floor = noise_floor(counts, measure, quantile=quantile, permutations=resamples, seed=seed)
    within = not np.isfinite(low) or low <= floor or value <= floor
    return MeasureCheck(measure, value, low, high, floor, bool(within))


def check_measures(rows: pd.DataFrame, measure: str, *, counts_column: str = "group_counts",
                   keep: Sequence[str] = (), **options: Any) -> pd.DataFrame:
    """:func:`check_measure` of every row's ``counts_column``: one row per model.

    Columns: ``keep`` (copied from ``rows``), ``measure``, ``value``, ``ci_low``, ``ci_high``,
    ``floor``, ``within_floor``.
    """
    if counts_column not in rows.columns:
        raise KeyError(f"rows have no {counts_column!r} column; columns: {sorted(rows.columns)}")
    missing = [c for c in keep if c not in rows.columns]
    if missing:
        raise KeyError(f"keep names columns the rows lack: {missing}")
    out = []
    for _, row in rows.iterrows():
        check = check_measure(counts_from_json(row[counts_column]), measure, **options)
        out.append({**{c: row[c] for c in keep}, **check.__dict__})
    columns = [*keep, "measure", "value", "ci_low", "ci_high", "floor", "within_floor"]
    return pd.DataFrame(out, columns=columns)


def _check_fraction(name: str, value: float) -> None:
    if not isinstance(value, (int, float)) or not 0 < value < 1:
        raise ValueError(f"{name}={value!r} must be a number strictly between 0 and 1")


# ------------------------------------------------------------------------------ claim tests


def _sample(name: str, x: Any, minimum: int = 2) -> np.ndarray:
    a = np.asarray(x, dtype=np.float64).reshape(-1)
    if a.size < minimum:
        raise ValueError(f"{name} needs at least {minimum} values, got {a.size}")
    if not np.all(np.isfinite(a)):
        raise ValueError(f"{name} holds a non-finite value: {a[~np.isfinite(a)][:3]}")
    return a


def _t_pvalue(t: float, df: float, alternative: Alternative) -> float:
    if alternative == "larger":
        return float(sps.t.sf(t, df))
    if alternative == "smaller":
        return float(sps.t.cdf(t, df))
    return float(2 * sps.t.sf(abs(t), df))


def _welch_parts(a: np.ndarray, b: np.ndarray | None) -> tuple[float, float, float]:
    """Difference of means (a - b, or mean(a)), its standard error and Welch's df."""
    if b is None:
        return float(a.mean()), float(a.std(ddof=1) / math.sqrt(a.size)), float(a.size - 1)
    va, vb = a.var(ddof=1) / a.size, b.var(ddof=1) / b.size
    se = math.sqrt(va + vb)
    df = (va + vb) ** 2 / (va**2 / (a.size - 1) + vb**2 / (b.size - 1)) if se > 0 else float(a.size + b.size - 2)
    return float(a.mean() - b.mean()), se, float(df)


def checks_text(checks: Any, *, scale: float = 100.0, digits: int = 1) -> str:
    """A group of :func:`check_measures` rows (one per model) as one table entry:
    ``"value [low, high] floor f"``, each the mean over the models, times ``scale`` (points);
    ``" ≈ floor"`` where every model is within its floor, ``" (k/n ≈ floor)"`` where k of n are."""
    if len(checks) == 0:
        raise ValueError("checks_text needs at least one check row")
    within, n = int(checks["within_floor"].sum()), len(checks)
    mark = " ≈ floor" if within == n else (f" ({within}/{n} ≈ floor)" if within else "")
    mean = {c: scale * float(checks[c].mean()) for c in ("value", "ci_low", "ci_high", "floor")}
    return (f"{mean['value']:.{digits}f} [{mean['ci_low']:.{digits}f}, {mean['ci_high']:.{digits}f}] "
            f"floor {mean['floor']:.{digits}f}{mark}")


def welch_parts(a: Any, b: Any = None) -> tuple[float, float, float]:
    """``mean(a) - mean(b)`` (``b=None``: ``mean(a)``), its standard error and Welch's degrees
    of freedom: what :func:`welch`, :func:`welch_interval` and :func:`tost` are built from, for a
    report's own power or equivalence computation."""
    a = _sample("a", a)
    return _welch_parts(a, None if b is None else _sample("b", b))


def _degenerate_se(diff: float, se: float, scale: float) -> bool:
    return se <= 1e-12 * max(1.0, abs(scale), abs(diff))


def welch(a: Any, b: Any = None, *, alternative: Alternative = "larger", null: float = 0.0) -> float:
    """p-value of Welch's t test that ``mean(a) - mean(b)`` exceeds ``null`` (``b=None``: one sample).

    ``alternative``: "larger" (the difference is above ``null``), "smaller" or "two-sided".
    Samples without spread (every value equal) get p = 0 when the difference lies strictly on
    the alternative's side, else 1 — where scipy warns about a precision loss instead.
    """
    check_choice("alternative", alternative, _ALTERNATIVES)
    a = _sample("a", a)
    b = None if b is None else _sample("b", b)
    diff, se, df = _welch_parts(a, b)
    diff -= null
    if _degenerate_se(diff, se, float(np.abs(a).max())):
        side = {"larger": diff > 0, "smaller": diff < 0, "two-sided": diff != 0}[alternative]
        return 0.0 if side else 1.0
    return _t_pvalue(diff / se, df, alternative)


def welch_interval(a: Any, b: Any = None, *, confidence: float = 0.95) -> tuple[float, float, float]:
    """``mean(a) - mean(b)`` (or ``mean(a)``) with its two-sided Welch t interval: (effect, low, high)."""
    _check_fraction("confidence", confidence)
    a = _sample("a", a)
    b = None if b is None else _sample("b", b)
    diff, se, df = _welch_parts(a, b)
    half = float(sps.t.ppf(0.5 + confidence / 2, df)) * se
    return diff, diff - half, diff + half


def tost(a: Any, b: Any = None, *, margin: float) -> float:
    """Equivalence p-value (Schuirmann's TOST, Welch form): that ``|mean(a) - mean(b)| < margin``.

    The larger of the two one-sided p-values (difference above ``-margin``, below ``margin``);
    small means "no effect as large as ``margin``". ``b=None`` tests ``mean(a)`` against 0.
    """
    if not isinstance(margin, (int, float)) or not math.isfinite(margin) or margin <= 0:
        raise ValueError(f"margin={margin!r} must be a positive number (the equivalence bound)")
    return max(welch(a, b, alternative="larger", null=-margin), welch(a, b, alternative="smaller", null=margin))


def tost_from_estimate(effect: float, se: float, df: float, *, margin: float) -> float:
    """Equivalence p-value (TOST) that a true effect lies within ±``margin``, from an estimate,
    its standard error and degrees of freedom (e.g. a regression slope; :func:`tost` does the
    same for samples): the larger of the one-sided t tests of effect > −margin and effect <
    margin. An estimate without spread (``se`` 0) gets 0 inside the margin, else 1; NaN when
    the inputs cannot give a test (a non-finite estimate or se, ``df`` ≤ 0, ``margin`` ≤ 0)."""
    if not (math.isfinite(effect) and math.isfinite(se) and df > 0 and margin > 0):
        return math.nan
    if se == 0:
        return 0.0 if abs(effect) < margin else 1.0
    return float(max(sps.t.sf((effect + margin) / se, df), sps.t.cdf((effect - margin) / se, df)))


def _power(delta_over_se: float, df: float, level: float, alternative: Alternative) -> float:
    if alternative == "two-sided":
        crit = sps.t.ppf(1 - level / 2, df)
        lower = float(sps.nct.cdf(-crit, df, delta_over_se))  # NaN far in the tail, where it is 0
        return float(sps.nct.sf(crit, df, delta_over_se)) + (lower if math.isfinite(lower) else 0.0)
    crit = sps.t.ppf(1 - level, df)
    return float(sps.nct.sf(crit, df, delta_over_se))


def mde_from_standard_error(se: float, df: float, *, level: float = LEVEL, power: float = POWER,
                            alternative: Alternative = "larger") -> float:
    """Smallest true effect a t test with standard error ``se`` and ``df`` degrees of freedom
    detects with probability ``power`` at ``level`` (noncentral t; for "smaller" the same size).

    Applies to any t statistic: a difference of means, a regression slope (se of the slope,
    df = n - 2), a mean over units.
    """
    check_choice("alternative", alternative, _ALTERNATIVES)
    _check_fraction("level", level)
    _check_fraction("power", power)
    if not (isinstance(se, (int, float)) and math.isfinite(se) and se >= 0):
        raise ValueError(f"se={se!r} must be a finite number >= 0")
    if not (isinstance(df, (int, float)) and df > 0):
        raise ValueError(f"df={df!r} must be positive (more observations than parameters)")
    if se == 0:
        return 0.0
    side = "two-sided" if alternative == "two-sided" else "larger"
    lam = optimize.brentq(lambda x: _power(x, df, level, side) - power, 1e-9, 60.0)
    return float(lam * se)


def minimum_detectable_effect(n1: int, n2: int | None, sd: float, *, level: float = LEVEL, power: float = POWER,
                              alternative: Alternative = "larger") -> float:
    """Smallest true difference of means a t test detects with ``power`` (units of ``sd``).

    Two samples of ``n1`` and ``n2`` observations with common standard deviation ``sd``
    (Student's pooled test, as statsmodels' ``TTestIndPower``); ``n2=None``: a one-sample or
    paired test of ``n1`` observations (``TTestPower``).
    """
    check_int("n1", n1, minimum=2)
    if n2 is not None:
        check_int("n2", n2, minimum=2)
    if not (isinstance(sd, (int, float)) and math.isfinite(sd) and sd >= 0):
        raise ValueError(f"sd={sd!r} must be a finite number >= 0")
    if n2 is None:
        return mde_from_standard_error(sd / math.sqrt(n1), n1 - 1, level=level, power=power, alternative=alternative)
    return mde_from_standard_error(sd * math.sqrt(1 / n1 + 1 / n2), n1 + n2 - 2, level=level, power=power,
                                   alternative=alternative)


def unit_means(frame: pd.DataFrame, *, unit: Sequence[str], value: str | Sequence[str]) -> pd.DataFrame:
    """One row per experimental unit: the mean of its replicates' ``value`` column(s).

    Where several classifiers are trained on one distilled set, their scores are not
    independent observations of the method — the set is (Hurlbert 1984, "Pseudoreplication").
    The column ``replicates`` says how many rows each unit averages.
    """
    unit = list(unit)
    values = [value] if isinstance(value, str) else list(value)
    missing = [c for c in (*unit, *values) if c not in frame.columns]
    if missing:
        raise KeyError(f"frame has no column {missing}; columns: {sorted(frame.columns)}")
    if not unit:
        raise ValueError("unit must name at least one column")
    grouped = frame.groupby(unit, sort=True, dropna=False)
    out = grouped[values].mean()
    out["replicates"] = grouped.size()
    return out.reset_index()


# ---------------------------------------------------------------------------------- verdicts


@dataclass(frozen=True)
class Verdict:
    """One of :data:`VERDICTS` and the generated sentence that says why."""

    verdict: str
    reason: str

    def __post_init__(self) -> None:
        check_choice("verdict", self.verdict, VERDICTS)


def _fmt(x: float | None) -> str:
    if x is None or not np.isfinite(x):
        return "–"
    return f"{x:.3g}"


def _pvalues(name: str, p: Sequence[float] | None) -> np.ndarray | None:
    if p is None:
        return None
    a = np.asarray(list(p), dtype=np.float64)
    if a.size and (np.any(~np.isfinite(a)) or a.min() < 0 or a.max() > 1):
        raise ValueError(f"{name} must hold p-values in [0, 1], got {a.tolist()}")
    return a


def decide(
    *,
    p_support: Sequence[float],
    p_contradict: Sequence[float],
    need: Literal["all", "any"] = "all",
    p_absent: Sequence[float] | None = None,
    margin: float | None = None,
    margin_source: str = "",
    mde: float | None = None,
    paper_effect: float | None = None,
    degenerate: str | None = None,
    within_floor: bool = False,
    level: float = LEVEL,
    direction: str = "the paper's direction",
) -> Verdict:
    """The verdict on one claim from its tests, in four classes, with its reason.

    Parameters
    ----------
    p_support, p_contradict : p-values of the claim's tests in the paper's direction and the
        other way; each list is Holm-corrected (over its tests).
    need : "all" — the claim needs every test significant (e.g. at every temperature);
        "any" — one suffices.
    p_absent : equivalence (:func:`tost`) p-values at ``margin`` (Holm); all significant
        means no effect as large as ``margin``: "absent".
    margin, margin_source : the equivalence margin and where it comes from (e.g. "the paper's
        effect"), quoted in the reason.
    mde, paper_effect : the smallest effect the test detects with 80 % power and the paper's
        effect size in the same units; ``paper_effect < mde`` makes a non-significant result
        "untestable here".
    degenerate : a reason the protocol cannot show the effect at all (e.g. "the teacher is no
        better than the hard-label student"): "untestable here" whatever the p-values.
    within_floor : the measure the claim rests on is within its noise floor: "untestable here".
    direction : what the supporting direction is called in the reason (a chapter's own
        hypothesis, not a paper's: e.g. "the expected direction").

    Order: degenerate or within the floor; supported; contradicted; absent; not detectable;
    inconclusive (also "untestable here": neither the effect nor its absence is shown).
    """
    check_choice("need", need, ("all", "any"))
    _check_fraction("level", level)
    support = _pvalues("p_support", p_support)
    contradict = _pvalues("p_contradict", p_contradict)
    absent = _pvalues("p_absent", p_absent)
    if support.size != contradict.size:
        raise ValueError(f"p_support ({support.size}) and p_contradict ({contradict.size}) must hold one p-value per test")
    if degenerate:
        return Verdict("untestable here", f"degenerate protocol: {degenerate}")
    if within_floor:
        return Verdict("untestable here", "the measure is within its noise floor (its value or its confidence interval "
                                          "reaches the 95th percentile of the measure with the group labels permuted)")
    if support.size == 0:
        return Verdict("untestable here", "no test: the profile lacks the settings this claim needs")
    k = support.size
    holm_s, holm_c = holm_adjust(support), holm_adjust(contradict)
    hits = int((holm_s < level).sum())
    against = int((holm_c < level).sum())

    def count(n: int, direction: str) -> str:
        if k == 1:
            return f"the test is {'' if n else 'not '}significant {direction} at {level:g}"
        return f"{n} of {k} tests significant {direction} (Holm-corrected, {level:g})"

    along, opposite = f"in {direction}", f"against {direction}"
    if (need == "all" and hits == k) or (need == "any" and hits > 0):
        p = holm_s.max() if need == "all" else holm_s.min()
        return Verdict("supported", f"{count(hits, along)} (p {_fmt(p)})")
    if against:
        return Verdict("contradicted", f"{count(against, opposite)} (p {_fmt(holm_c.min())})")
    mde_text = f"minimum detectable effect {_fmt(mde)}" if mde is not None else ""
    if absent is not None and absent.size and margin is not None:
        holm_a = holm_adjust(absent)
        if np.all(holm_a < level):
            source = f" ({margin_source})" if margin_source else ""
            return Verdict("absent", f"equivalence shown: every effect is within ±{_fmt(margin)}{source} "
                                     f"(TOST{', Holm-corrected' if holm_a.size > 1 else ''}, p {_fmt(holm_a.max())})")
    found = count(hits, along)
    if paper_effect is not None and mde is not None and np.isfinite(mde) and abs(paper_effect) < mde:
        return Verdict("untestable here", f"could not have detected the paper's effect: {mde_text} > the paper's "
                                          f"{_fmt(abs(paper_effect))} ({found})")
    detail = f"; {mde_text}" if mde_text else ""
    return Verdict("untestable here", f"inconclusive: {found}, and absence not shown{detail}")


def claim_row(*, paper: str, claim: Any, statement: str, chapter: str, dataset: str, verdict: Verdict,
              effect: float = float("nan"), ci_low: float = float("nan"), ci_high: float = float("nan"),
              mde: float = float("nan"), paper_effect: float | None = None, unit: str = "", n: Any = "",
              tests: int = 0, **extra: Any) -> dict[str, Any]:
    """One row of a chapter's claims table: :data:`CLAIM_COLUMNS`, then ``extra``."""
    if not isinstance(verdict, Verdict):
        raise TypeError(f"verdict must be a fairdd.stats.Verdict, got {type(verdict).__name__}")
    row = {"paper": paper, "claim": claim, "statement": statement, "chapter": chapter, "dataset": dataset,
           "verdict": verdict.verdict, "reason": verdict.reason, "effect": effect, "ci_low": ci_low,
           "ci_high": ci_high, "mde": mde, "paper_effect": float("nan") if paper_effect is None else paper_effect,
           "unit": unit, "n": n, "tests": tests}
    return {**row, **extra}


def answerable(claims: pd.DataFrame) -> pd.DataFrame:
    """"Can this profile answer the paper?": per claim and data set, the MDE beside the paper's effect.

    ``detectable`` is "yes" where the paper's effect is at least the minimum detectable
    effect, "no" where it is smaller, and "–" where the paper gives no effect size or the
    test has no MDE.
    """
    missing = [c for c in CLAIM_COLUMNS if c not in claims.columns]
    if missing:
        raise KeyError(f"claims lack the columns {missing}; build them with fairdd.stats.claim_row")

    def detectable(row: pd.Series) -> str:
        if not (np.isfinite(row["mde"]) and np.isfinite(row["paper_effect"])):
            return "–"
        return "yes" if abs(row["paper_effect"]) >= row["mde"] else "no"

    out = claims[["claim", "dataset", "mde", "paper_effect"]].copy()
    out["detectable"] = claims.apply(detectable, axis=1) if len(claims) else []
    out["verdict"] = claims["verdict"]
    return out.reset_index(drop=True)
