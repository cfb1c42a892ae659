"""Accuracy, class-wise and group fairness metrics used across the book.

Every function takes label vectors as numpy arrays or torch tensors (any device) and
returns Python floats or numpy arrays, so a notebook can pass a model's predictions
straight in. Labels are integer class indices ``0 .. num_classes - 1``.

Fairness metrics follow their papers:

* :func:`demographic_parity_difference` and :func:`equalized_odds_difference` are
  fairlearn's definitions on binary labels and, on more than two classes, the
  one-vs-rest average of Mohammadshahi & Ioannou, "What's Left After Distillation? How
  Knowledge Transfer Impacts Fairness and Bias" (their Algorithm 1).
* :func:`rms_tpr_gap` is the RMS TPR gap of Han et al. 2022, "Towards Fair Supervised Dataset
  Distillation for Text Classification", as computed by fairlib's ``gap_eval_scores``
  (HanXudong/fairlib@909f952); its fairness is
  ``1 - rms_tpr_gap`` and :func:`distance_to_optimum` combines it with accuracy.
* :func:`classwise_variance` is the class-wise accuracy variance of "Impact of Data
  Distillation on Fairness in Machine Learning Models" (below, the class-wise DD paper).
* :func:`significant_classes` and :func:`disagreement_matrix` are Mohammadshahi & Ioannou's
  Welch test on normalised class accuracy (#SC, #TC) and their model-disagreement matrix.
* :func:`bias_aligned_accuracy` splits accuracy into bias-aligned and bias-conflicting
  samples (Lu et al. 2024, "Exploring the Impact of Dataset Bias on Dataset Distillation").
* :func:`attribute_alignment`, :func:`attribute_entropy`, :func:`pairwise_distance` and
  :func:`set_measures` measure how much bias and diversity a (synthetic) training set carries
  (Lu et al.'s question: do distilled sets encode the spurious attribute?). They take and
  return torch tensors (``(K,)`` float64 per class, NaN for a class too small to measure).

Undefined rates (a group with no sample of the conditioning class) are left out of the
maxima, minima and means instead of being counted as 0 — the one place where these
functions can differ from fairlearn, which reports such a rate as 0.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch
from scipy import stats

from fairdd.config import check_choice, check_int

__all__ = [
    "SignificanceResult",
    "accuracy",
    "attribute_alignment",
    "attribute_entropy",
    "bias_aligned_accuracy",
    "classwise_accuracy",
    "classwise_variance",
    "demographic_parity_difference",
    "disagreement_matrix",
    "distance_to_optimum",
    "equalized_odds_difference",
    "group_accuracy",
    "holm_adjust",
    "pairwise_distance",
    "rms_tpr_gap",
    "significant_classes",
    "tpr_gap_by_class",
]

ArrayLike = Any  # numpy array, torch tensor, or a sequence of numbers

DifferenceMethod = Literal["between_groups", "to_overall"]
EqualizedOddsAgg = Literal["worst_case", "mean"]
DisagreementNormalize = Literal["none", "all", "row"]


# ----------------------------------------------------------------------------- inputs


def _as_numpy(x: ArrayLike) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        return x.detach().cpu().numpy()
    return np.asarray(x)


def _labels(name: str, x: ArrayLike) -> np.ndarray:
    """A 1-D int64 vector of non-negative class indices."""
    a = _as_numpy(x)
    if a.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {a.shape}")
    if a.size and not (np.issubdtype(a.dtype, np.integer) or np.issubdtype(a.dtype, np.floating) or a.dtype == bool):
        raise ValueError(
            f"{name} must hold integer class indices 0..K-1, got dtype {a.dtype} (e.g. {a[0]!r}); "
            "map class names to indices first"
        )
    if a.size and not np.issubdtype(a.dtype, np.integer):
        if not np.all(np.isfinite(a)):
            raise ValueError(f"{name} must hold integer class indices, got NaN or infinite values")
        if not np.all(np.equal(np.mod(a, 1), 0)):
            raise ValueError(f"{name} must hold integer class indices, got dtype {a.dtype}")
    a = a.astype(np.int64, copy=False)
    if a.size and a.min() < 0:
        raise ValueError(f"{name} must hold class indices >= 0, got minimum {a.min()}")
    return a


def _pair(y_true: ArrayLike, y_pred: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    t, p = _labels("y_true", y_true), _labels("y_pred", y_pred)
    if t.shape != p.shape:
        raise ValueError(f"y_true and y_pred must have the same length, got {t.size} and {p.size}")
    if t.size == 0:
        raise ValueError("y_true and y_pred must not be empty")
    return t, p


#: The most classes inferred from the labels when ``num_classes`` is not given (a larger class
#: index is far more likely a wrong label than a real class, and would allocate K-sized arrays).
MAX_INFERRED_CLASSES = 10_000


def _num_classes(num_classes: int | None, *arrays: np.ndarray) -> int:
    observed = max(int(a.max()) for a in arrays) + 1
    if num_classes is None:
        if observed > MAX_INFERRED_CLASSES:
            raise ValueError(
                f"the labels hold class index {observed - 1}, more than the {MAX_INFERRED_CLASSES} classes inferred "
                "without num_classes; check the labels, or pass num_classes= explicitly"
            )
        return observed
    if isinstance(num_classes, bool) or not isinstance(num_classes, (int, np.integer)) or num_classes < 1:
        raise ValueError(f"num_classes={num_classes!r} must be a positive integer")
    if observed > num_classes:
        raise ValueError(f"num_classes={num_classes} but the labels hold class index {observed - 1}")
    return int(num_classes)


def _groups(name: str, features: ArrayLike, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Group values and each sample's group index; 2-D features give intersectional groups."""
    f = _as_numpy(features)
    if f.ndim not in (1, 2) or f.shape[0] != n:
        raise ValueError(f"{name} must have shape ({n},) or ({n}, k), got {f.shape}")
    if f.dtype == object:
        missing = np.array([v is None or (isinstance(v, float) and v != v) for v in f.reshape(-1)])
        if missing.any():
            raise ValueError(f"{name} holds {int(missing.sum())} missing values (None/NaN); every sample needs a group")
    elif np.issubdtype(f.dtype, np.floating) and not np.all(np.isfinite(f)):
        bad = int((~np.isfinite(f)).reshape(n, -1).any(axis=1).sum()) if n else 0
        raise ValueError(f"{name} holds NaN or infinite values in {bad} samples; every sample needs a group")
    if f.ndim == 2:
        values, index = np.unique(f, axis=0, return_inverse=True)
        return values, index.reshape(-1)
    values, index = np.unique(f, return_inverse=True)
    return values, index


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """``num / den`` with NaN where ``den == 0`` (an undefined rate), without warnings."""
    num = np.asarray(num, dtype=np.float64)
    den = np.asarray(den, dtype=np.float64)
    out = np.full(np.broadcast(num, den).shape, np.nan)
    np.divide(num, den, out=out, where=den > 0)
    return out


def _finite(x: np.ndarray) -> np.ndarray:
    return x[np.isfinite(x)]


def _nanmean(x: np.ndarray) -> float:
    f = _finite(np.asarray(x, dtype=np.float64))
    return float(f.mean()) if f.size else float("nan")


# --------------------------------------------------------------------------- accuracy


def accuracy(y_true: ArrayLike, y_pred: ArrayLike) -> float:
    r"""Fraction of correct predictions, :math:`\frac{1}{N}\sum_n [\hat y_n = y_n]`.

    Parameters
    ----------
    y_true, y_pred : array-like of int, shape (N,)
        True and predicted class indices.

    Returns
    -------
    float
        Accuracy in [0, 1].
    """
    t, p = _pair(y_true, y_pred)
    return float(np.mean(t == p))


def classwise_accuracy(y_true: ArrayLike, y_pred: ArrayLike, *, num_classes: int | None = None) -> np.ndarray:
    r"""Accuracy on the samples of each true class (per-class recall).

    .. math:: \mathrm{acc}_c = \frac{|\{n : y_n = c,\ \hat y_n = c\}|}{|\{n : y_n = c\}|}

    Parameters
    ----------
    y_true, y_pred : array-like of int, shape (N,)
        True and predicted class indices.
    num_classes : int, optional
        Number of classes K; inferred as ``max(y_true, y_pred) + 1`` when omitted.

    Returns
    -------
    numpy.ndarray of float, shape (K,)
        Class-wise accuracy; NaN for a class with no sample in ``y_true``.
    """
    t, p = _pair(y_true, y_pred)
    k = _num_classes(num_classes, t, p)
    support = np.bincount(t, minlength=k)
    correct = np.bincount(t[t == p], minlength=k)
    return _ratio(correct, support)


def classwise_variance(y_true: ArrayLike, y_pred: ArrayLike, *, num_classes: int | None = None) -> float:
    r"""Population variance of the class-wise accuracies (the class-wise DD paper's fairness).

    .. math:: \sigma^2 = \frac{1}{K'}\sum_{c} (\mathrm{acc}_c - \overline{\mathrm{acc}})^2,
        \qquad \overline{\mathrm{acc}} = \frac{1}{K'}\sum_c \mathrm{acc}_c

    over the K' classes present in ``y_true`` (ddof = 0: the classes are the whole
    population of interest, not a sample of it). The class-wise DD paper reports "the
    variance in accuracies across different classes" without naming the estimator; with
    K = 10 the sample variance (ddof = 1) would be 10/9 of this value. Accuracies are fractions,
    so the variance is in squared fractions (multiply by 10^4 for squared percent).

    Parameters
    ----------
    y_true, y_pred : array-like of int, shape (N,)
        True and predicted class indices.
    num_classes : int, optional
        Number of classes; absent classes are skipped either way.

    Returns
    -------
    float
        Variance of the class-wise accuracies.
    """
    acc = _finite(classwise_accuracy(y_true, y_pred, num_classes=num_classes))
    return float(np.var(acc, ddof=0))


def group_accuracy(y_true: ArrayLike, y_pred: ArrayLike, *, sensitive_features: ArrayLike) -> dict[Any, float]:
    r"""Accuracy within each group, :math:`\mathrm{acc}_g = P(\hat Y = Y \mid A = g)`.

    Parameters
    ----------
    y_true, y_pred : array-like of int, shape (N,)
        True and predicted class indices.
    sensitive_features : array-like, shape (N,) or (N, k)
        Group of each sample; rows of a 2-D array define intersectional groups.

    Returns
    -------
    dict
        Group value (a tuple for 2-D features) to accuracy, for every group present.
    """
    t, p = _pair(y_true, y_pred)
    values, index = _groups("sensitive_features", sensitive_features, t.size)
    correct = np.bincount(index, weights=(t == p), minlength=len(values))
    size = np.bincount(index, minlength=len(values))
    acc = correct / size
    keys = [tuple(v.tolist()) if np.ndim(v) else v.item() for v in values]
    return {k: float(a) for k, a in zip(keys, acc)}


def bias_aligned_accuracy(y_true: ArrayLike, y_pred: ArrayLike, *, bias_attributes: ArrayLike) -> dict[str, float]:
    r"""Accuracy on bias-aligned and on bias-conflicting samples (Lu et al.).

    A sample is *bias-aligned* when its bias attribute equals its label (e.g. the digit
    drawn in the colour that the biased training set pairs with that digit) and
    *bias-conflicting* otherwise:

    .. math:: \mathrm{acc}_{\mathrm{aligned}} = P(\hat Y = Y \mid B = Y), \qquad
              \mathrm{acc}_{\mathrm{conflicting}} = P(\hat Y = Y \mid B \ne Y)

    Parameters
    ----------
    y_true, y_pred : array-like of int, shape (N,)
        True and predicted class indices.
    bias_attributes : array-like of int, shape (N,)
        The bias attribute of each sample, encoded with the label's class indices.

    Returns
    -------
    dict
        ``"aligned"`` and ``"conflicting"`` accuracy (NaN when a subset is empty) and
        ``"aligned_fraction"``, the share of aligned samples (the evaluation set's own
        bias ratio).
    """
    t, p = _pair(y_true, y_pred)
    b = _labels("bias_attributes", bias_attributes)
    if b.shape != t.shape:
        raise ValueError(f"bias_attributes must have length {t.size}, got {b.size}")
    aligned = b == t
    correct = t == p
    return {
        "aligned": float(_ratio(correct[aligned].sum(), aligned.sum())),
        "conflicting": float(_ratio(correct[~aligned].sum(), (~aligned).sum())),
        "aligned_fraction": float(aligned.mean()),
    }


# ---------------------------------------------------------------------- group fairness


def _difference(group_rates: np.ndarray, overall: float, method: str) -> float:
    """fairlearn's ``MetricFrame.difference`` over the groups whose rate is defined."""
    rates = _finite(group_rates)
    if rates.size == 0:
        return float("nan")
    if method == "between_groups":
        return float(rates.max() - rates.min())
    return float(np.max(np.abs(rates - overall)))


def _binary_rates(pos_true: np.ndarray, pos_pred: np.ndarray, index: np.ndarray, n_groups: int) -> dict[str, Any]:
    """Selection rate, TPR and FPR per group (arrays of shape (G,)) and overall (floats)."""
    pred = pos_pred.astype(np.float64)
    size = np.bincount(index, minlength=n_groups)
    positives = np.bincount(index[pos_true], minlength=n_groups)
    negatives = size - positives
    selected = np.bincount(index, weights=pred, minlength=n_groups)
    true_pos = np.bincount(index[pos_true], weights=pred[pos_true], minlength=n_groups)
    false_pos = selected - true_pos
    return {
        "selection": (_ratio(selected, size), float(pred.mean())),
        "tpr": (_ratio(true_pos, positives), float(_ratio(true_pos.sum(), positives.sum()))),
        "fpr": (_ratio(false_pos, negatives), float(_ratio(false_pos.sum(), negatives.sum()))),
    }


def _one_vs_rest(
    y_true: ArrayLike,
    y_pred: ArrayLike,
    sensitive_features: ArrayLike,
    num_classes: int | None,
    metric: Any,
) -> float:
    """``metric(rates)`` on binary labels, or its mean over one-vs-rest classes (Mohammadshahi & Ioannou, Alg. 1)."""
    t, p = _pair(y_true, y_pred)
    k = _num_classes(num_classes, t, p)
    values, index = _groups("sensitive_features", sensitive_features, t.size)
    if k <= 2:
        # Binary task: class 1 is the positive outcome, as in fairlearn (pos_label = 1).
        return metric(_binary_rates(t == 1, p == 1, index, len(values)))
    per_class = [metric(_binary_rates(t == c, p == c, index, len(values))) for c in range(k)]
    return _nanmean(np.asarray(per_class))


def demographic_parity_difference(
    y_true: ArrayLike,
    y_pred: ArrayLike,
    *,
    sensitive_features: ArrayLike,
    method: DifferenceMethod = "between_groups",
    num_classes: int | None = None,
) -> float:
    r"""Demographic parity difference (DPD), Mohammadshahi & Ioannou eq. (1).

    On binary labels (positive class 1), with selection rate
    :math:`s_a = P(\hat Y = 1 \mid A = a)`:

    .. math:: \mathrm{DPD} = \max_a s_a - \min_a s_a \quad \text{(between_groups)}, \qquad
              \mathrm{DPD} = \max_a |s_a - P(\hat Y = 1)| \quad \text{(to_overall)},

    exactly ``fairlearn.metrics.demographic_parity_difference``. With K > 2 classes each
    class c is made binary (``y == c`` against the rest) and the K values are averaged
    (Mohammadshahi & Ioannou, Appendix C, Algorithm 1).

    Parameters
    ----------
    y_true, y_pred : array-like of int, shape (N,)
        True and predicted class indices (``y_true`` only fixes the classes).
    sensitive_features : array-like, shape (N,) or (N, k)
        Group of each sample; rows of a 2-D array define intersectional groups.
    method : {"between_groups", "to_overall"}
        How group rates are compared, as in fairlearn.
    num_classes : int, optional
        Number of classes; inferred from the labels when omitted. Pass it when a
        multi-class batch happens to hold only classes 0 and 1.

    Returns
    -------
    float
        DPD in [0, 1]; 0 is perfectly fair.
    """
    check_choice("method", method, ("between_groups", "to_overall"))
    return _one_vs_rest(
        y_true, y_pred, sensitive_features, num_classes, lambda r: _difference(*r["selection"], method)
    )


def equalized_odds_difference(
    y_true: ArrayLike,
    y_pred: ArrayLike,
    *,
    sensitive_features: ArrayLike,
    method: DifferenceMethod = "between_groups",
    agg: EqualizedOddsAgg = "worst_case",
    num_classes: int | None = None,
) -> float:
    r"""Equalized odds difference (EOD), Mohammadshahi & Ioannou eqs. (2)-(4).

    On binary labels (positive class 1), with
    :math:`\mathrm{TPR}_a = P(\hat Y = 1 \mid Y = 1, A = a)` and
    :math:`\mathrm{FPR}_a = P(\hat Y = 1 \mid Y = 0, A = a)`:

    .. math:: \mathrm{EOD} = \max\big(\Delta \mathrm{TPR}, \Delta \mathrm{FPR}\big),
              \qquad \Delta r = \max_a r_a - \min_a r_a

    for ``agg="worst_case"`` and ``method="between_groups"`` (``to_overall`` uses
    :math:`\max_a |r_a - r|` with the overall rate r; ``agg="mean"`` averages the two
    differences) — exactly ``fairlearn.metrics.equalized_odds_difference``. With K > 2
    classes each class is made binary against the rest and the K values are averaged
    (Mohammadshahi & Ioannou, Algorithm 1).

    Parameters
    ----------
    y_true, y_pred : array-like of int, shape (N,)
        True and predicted class indices.
    sensitive_features : array-like, shape (N,) or (N, k)
        Group of each sample; rows of a 2-D array define intersectional groups.
    method : {"between_groups", "to_overall"}
        How group rates are compared, as in fairlearn.
    agg : {"worst_case", "mean"}
        Larger of, or mean of, the TPR and FPR differences, as in fairlearn.
    num_classes : int, optional
        Number of classes; inferred from the labels when omitted.

    Returns
    -------
    float
        EOD in [0, 1]; 0 is perfectly fair.
    """
    check_choice("method", method, ("between_groups", "to_overall"))
    check_choice("agg", agg, ("worst_case", "mean"))

    def eod(rates: dict[str, Any]) -> float:
        diffs = np.array([_difference(*rates["tpr"], method), _difference(*rates["fpr"], method)])
        defined = _finite(diffs)
        if defined.size == 0:
            return float("nan")
        return float(defined.max() if agg == "worst_case" else defined.mean())

    return _one_vs_rest(y_true, y_pred, sensitive_features, num_classes, eod)


def tpr_gap_by_class(
    y_true: ArrayLike,
    y_pred: ArrayLike,
    *,
    sensitive_features: ArrayLike,
    num_classes: int | None = None,
) -> np.ndarray:
    r"""Per class, the spread of the true-positive rate over groups (FairDD's equalised odds).

    For class y and group g, :math:`\mathrm{TPR}_{y,g} = P(\hat Y = y \mid Y = y, A = g)`;

    .. math:: \Delta_y = \max_g \mathrm{TPR}_{y,g} - \min_g \mathrm{TPR}_{y,g}

    over the groups that hold samples of class y. FairDD (Zhou et al.; zqhang/FairDD@37eef67
    ``utils.epoch_Fairness_Metric``) reports :math:`\mathrm{DEO_M} = \max_y \Delta_y` and
    :math:`\mathrm{DEO_A} = \operatorname{mean}_y \Delta_y`; its code also counts a group with
    no sample of the class as TPR 0, which we do not (such a group is left out).

    Returns
    -------
    numpy.ndarray, shape (K,)
        :math:`\Delta_y` in [0, 1]; NaN for a class seen in fewer than two groups.
    """
    t, p = _pair(y_true, y_pred)
    k = _num_classes(num_classes, t, p)
    values, index = _groups("sensitive_features", sensitive_features, t.size)
    out = np.full(k, np.nan)
    for c in range(k):
        rates = _binary_rates(t == c, p == c, index, len(values))["tpr"][0]
        present = rates[np.isfinite(rates)]
        if present.size >= 2:
            out[c] = present.max() - present.min()
    return out


def rms_tpr_gap(
    y_true: ArrayLike, y_pred: ArrayLike, *, sensitive_features: ArrayLike, num_classes: int | None = None
) -> float:
    r"""Root-mean-square TPR gap over classes (Han et al., Appendix B.2).

    For every class y, the gaps between each group's TPR (recall of class y) and the
    overall TPR of class y are summed over groups, then aggregated over classes by RMS:

    .. math:: \mathrm{GAP}_y = \sum_{g \in G} |\mathrm{TPR}_{g,y} - \mathrm{TPR}_y|, \qquad
              \mathrm{GAP} = \sqrt{\tfrac{1}{|Y|} \textstyle\sum_{y} \mathrm{GAP}_y^2}

    Every class counts, both classes of a binary task included, as in fairlib's
    ``gap_eval_scores`` (HanXudong/fairlib@909f952, ``Aggregation_GAP`` with its default
    absolute-sum group aggregation and power-2 class aggregation). fairlib adds 1e-5 to
    every confusion-matrix cell; here rates are exact, and an undefined
    :math:`\mathrm{TPR}_{g,y}` (group g has no sample of class y) is left out of the sum.
    Han et al. report fairness as ``1 - GAP``; see :func:`distance_to_optimum`.

    Parameters
    ----------
    y_true, y_pred : array-like of int, shape (N,)
        True and predicted class indices.
    sensitive_features : array-like, shape (N,) or (N, k)
        Protected group of each sample.
    num_classes : int, optional
        Number of classes; inferred from the labels when omitted.

    Returns
    -------
    float
        The RMS TPR gap (0 is perfectly fair).
    """
    t, p = _pair(y_true, y_pred)
    k = _num_classes(num_classes, t, p)
    values, index = _groups("sensitive_features", sensitive_features, t.size)
    g = len(values)
    cell = index * k + t  # (N,) flat (group, true class) cell of each sample
    support = np.bincount(cell, minlength=g * k).reshape(g, k)
    hits = np.bincount(cell[t == p], minlength=g * k).reshape(g, k)
    tpr_group = _ratio(hits, support)  # (G, K)
    tpr_all = _ratio(hits.sum(0), support.sum(0))  # (K,)
    gaps = np.abs(tpr_group - tpr_all)
    gap_per_class = np.where(np.isfinite(gaps), gaps, 0.0).sum(axis=0)  # (K,)
    present = support.sum(0) > 0
    return float(np.sqrt(np.mean(gap_per_class[present] ** 2)))


def distance_to_optimum(accuracy: float | np.ndarray, fairness: float | np.ndarray) -> float | np.ndarray:
    r"""Euclidean distance of (accuracy, fairness) to the ideal point (1, 1) (Han et al.'s DTO).

    .. math:: \mathrm{DTO} = \sqrt{(1 - \mathrm{acc})^2 + (1 - \mathrm{fairness})^2}

    Parameters
    ----------
    accuracy, fairness : float or numpy.ndarray
        Fractions in [0, 1] (not percent), e.g. fairness ``1 - rms_tpr_gap(...)``.

    Returns
    -------
    float or numpy.ndarray
        DTO (smaller is better), a float for scalar inputs.
    """
    acc = np.asarray(accuracy, dtype=np.float64)
    fair = np.asarray(fairness, dtype=np.float64)
    for name, v in (("accuracy", acc), ("fairness", fair)):
        if np.any(~np.isfinite(v)) or np.any(v < 0) or np.any(v > 1):
            raise ValueError(f"{name}={v!r} must be fractions in [0, 1] (not percent)")
    dto = np.sqrt((1 - acc) ** 2 + (1 - fair) ** 2)
    return float(dto) if dto.ndim == 0 else dto


# ----------------------------------------------------------------- model comparisons


@dataclass(frozen=True)
class SignificanceResult:
    """Per-class Welch t-tests of normalised class accuracy between two models.

    Attributes
    ----------
    statistic, pvalue : numpy.ndarray, shape (K,)
        Welch's t statistic (model a minus model b) and its two-sided p-value per class;
        NaN where the test is undefined (both models constant over seeds).
    significant : numpy.ndarray of bool, shape (K,)
        ``adjusted <= alpha``.
    count : int
        Number of significant classes (#SC or #TC in Mohammadshahi & Ioannou).
    alpha : float
        The significance level used.
    adjusted : numpy.ndarray, shape (K,)
        The p-values the decision reads: ``pvalue`` itself (``correction="none"``,
        Mohammadshahi & Ioannou) or Holm's adjusted p-values over the K classes
        (:func:`holm_adjust`).
    correction : str
        ``"none"`` or ``"holm"``.
    """

    statistic: np.ndarray
    pvalue: np.ndarray
    significant: np.ndarray
    count: int
    alpha: float
    adjusted: np.ndarray | None = None
    correction: str = "none"


def holm_adjust(pvalues: ArrayLike) -> np.ndarray:
    r"""Holm's (1979) step-down adjusted p-values; NaN entries stay NaN and are not counted.

    With the m defined p-values sorted, :math:`p_{(1)} \le \dots \le p_{(m)}`:

    .. math:: \tilde p_{(i)} = \min\Big(1, \max_{j \le i} (m - j + 1)\, p_{(j)}\Big),

    and :math:`\tilde p_{(i)} \le \alpha` rejects exactly the hypotheses Holm's procedure
    rejects at family-wise error rate α (``statsmodels``' ``multipletests(method="holm")``).
    """
    p = np.asarray(_as_numpy(pvalues), dtype=np.float64)
    if p.ndim != 1:
        raise ValueError(f"pvalues must be 1-D, got shape {p.shape}")
    finite = np.isfinite(p)
    if np.any((p[finite] < 0) | (p[finite] > 1)):
        raise ValueError(f"pvalues must lie in [0, 1], got {p}")
    out = np.full(p.shape, np.nan)
    values = p[finite]
    m = values.size
    if m:
        order = np.argsort(values, kind="stable")
        scaled = (m - np.arange(m)) * values[order]
        adjusted = np.minimum(1.0, np.maximum.accumulate(scaled))
        back = np.empty(m)
        back[order] = adjusted
        out[finite] = back
    return out


def _seed_by_class(name: str, x: ArrayLike) -> np.ndarray:
    a = np.asarray(_as_numpy(x), dtype=np.float64)
    if a.ndim != 2 or a.shape[0] < 2:
        raise ValueError(f"{name} must have shape (seeds >= 2, classes), got {a.shape}")
    _check_finite_accuracy(name, a)
    return a


def _check_finite_accuracy(name: str, a: np.ndarray) -> None:
    if not np.isfinite(a).all():
        where = [tuple(int(i) for i in idx) for idx in np.argwhere(~np.isfinite(a))[:5]]
        raise ValueError(
            f"{name} holds NaN or inf at {where} (seed, class); an accuracy is a number in [0, 1] (a class "
            "without test samples has none: leave that class out of both models)"
        )


def _per_seed(name: str, x: ArrayLike, seeds: int) -> np.ndarray:
    a = np.asarray(_as_numpy(x), dtype=np.float64)
    if a.shape != (seeds,):
        raise ValueError(f"{name} must have shape ({seeds},), got {a.shape}")
    _check_finite_accuracy(name, a)
    if np.any(a <= 0):
        raise ValueError(f"{name} must be > 0 to normalise by it, got {a}")
    return a


def significant_classes(
    class_accuracy_a: ArrayLike,
    overall_accuracy_a: ArrayLike,
    class_accuracy_b: ArrayLike,
    overall_accuracy_b: ArrayLike,
    *,
    alpha: float = 0.05,
    correction: str = "none",
) -> SignificanceResult:
    r"""Classes whose accuracy relative to overall accuracy differs between two models.

    Mohammadshahi & Ioannou (eq. 8): for every seed s and class c,
    :math:`r_{s,c} = \beta^{c}_s / \beta^M_s` (class accuracy over the same model's overall
    accuracy). For each class the seeds of
    model a and model b are compared with a two-sided Welch t-test
    (``scipy.stats.ttest_ind(equal_var=False)``):

    .. math:: t = \frac{\bar r_a - \bar r_b}{\sqrt{s_a^2 / n_a + s_b^2 / n_b}}, \qquad
              \nu = \frac{(s_a^2/n_a + s_b^2/n_b)^2}
                         {\frac{(s_a^2/n_a)^2}{n_a - 1} + \frac{(s_b^2/n_b)^2}{n_b - 1}}

    with sample variances :math:`s^2` (ddof = 1). A class is significant when
    :math:`p \le \alpha`; the count is #SC (non-distilled vs distilled student) or #TC
    (teacher vs distilled student).

    Parameters
    ----------
    class_accuracy_a, class_accuracy_b : array-like, shape (seeds, K)
        Class-wise accuracy of each seed's model (rows of :func:`classwise_accuracy`).
        The two models may have different numbers of seeds (at least 2 each).
    overall_accuracy_a, overall_accuracy_b : array-like, shape (seeds,)
        Overall accuracy of the same models, > 0.
    alpha : float
        Significance level (Mohammadshahi & Ioannou: 0.05).
    correction : ``"none"`` or ``"holm"``
        ``"none"``: each class tested at ``alpha`` (Mohammadshahi & Ioannou's count: C
        uncorrected tests per comparison). ``"holm"``: the C p-values are Holm-adjusted
        (:func:`holm_adjust`) and a class is significant when its adjusted p-value
        (``adjusted``) is ``<= alpha``; ``pvalue`` stays the raw one.

    Returns
    -------
    SignificanceResult
        Per-class statistic, p-value, significance mask and their count.
    """
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not 0 < alpha < 1:
        raise ValueError(f"alpha={alpha!r} must be a number in (0, 1)")
    if correction not in ("none", "holm"):
        raise ValueError(f"correction={correction!r} is not known; choose 'none' or 'holm'")
    ca = _seed_by_class("class_accuracy_a", class_accuracy_a)
    cb = _seed_by_class("class_accuracy_b", class_accuracy_b)
    if ca.shape[1] != cb.shape[1]:
        raise ValueError(f"class_accuracy_a has {ca.shape[1]} classes but class_accuracy_b has {cb.shape[1]}")
    ra = ca / _per_seed("overall_accuracy_a", overall_accuracy_a, ca.shape[0])[:, None]
    rb = cb / _per_seed("overall_accuracy_b", overall_accuracy_b, cb.shape[0])[:, None]
    # A class on which both models are constant over seeds (e.g. 100 % for every seed)
    # has zero variance: the test is undefined, reported NaN and not counted.
    defined = (np.ptp(ra, axis=0) > 0) | (np.ptp(rb, axis=0) > 0)  # (K,)
    statistic = np.full(ra.shape[1], np.nan)
    pvalue = np.full(ra.shape[1], np.nan)
    if defined.any():
        with warnings.catch_warnings():
            # scipy warns of precision loss on near-constant columns; those are tested anyway.
            warnings.simplefilter("ignore", RuntimeWarning)
            t, p = stats.ttest_ind(ra[:, defined], rb[:, defined], axis=0, equal_var=False)
        statistic[defined], pvalue[defined] = t, p
    adjusted = holm_adjust(pvalue) if correction == "holm" else pvalue.copy()
    significant = np.isfinite(adjusted) & (np.nan_to_num(adjusted, nan=1.0) <= alpha)
    return SignificanceResult(
        statistic, pvalue, significant, int(significant.sum()), float(alpha), adjusted, correction
    )


def disagreement_matrix(
    pred_a: ArrayLike,
    pred_b: ArrayLike,
    *,
    num_classes: int,
    normalize: DisagreementNormalize = "none",
) -> np.ndarray:
    r"""Where two models disagree: how often model a predicts i while model b predicts j.

    Mohammadshahi & Ioannou (eq. 7, after Fort et al.) record a disagreement
    :math:`\mathrm{CMP}(f(x_n), g(x_n)) = [f(x_n) \ne g(x_n)]` for every test sample and
    plots it as a class-by-class matrix whose diagonal is excluded "since there both
    models predict the same class" (its Figure 2). Hence

    .. math:: D_{ij} = |\{n : f(x_n) = i,\ g(x_n) = j\}| \ (i \ne j), \qquad D_{ii} = 0,

    the confusion matrix between the two models' predictions with the agreements
    removed. Mohammadshahi & Ioannou average this matrix over five seeds (``np.mean`` of the
    stack).

    Parameters
    ----------
    pred_a, pred_b : array-like of int, shape (N,)
        Predicted class indices of model a (rows, e.g. the teacher) and model b (columns).
    num_classes : int
        Number of classes K.
    normalize : {"none", "all", "row"}
        ``"none"``: counts; ``"all"``: fractions of the N test samples (the sum is the
        disagreement rate); ``"row"``: fractions of the samples model a assigns to class
        i (NaN rows for classes a never predicts).

    Returns
    -------
    numpy.ndarray, shape (K, K)
        int64 counts, or float64 fractions when normalised.
    """
    check_choice("normalize", normalize, ("none", "all", "row"))
    a, b = _labels("pred_a", pred_a), _labels("pred_b", pred_b)
    if a.shape != b.shape or a.size == 0:
        raise ValueError(f"pred_a and pred_b must be non-empty and of equal length, got {a.size} and {b.size}")
    k = _num_classes(num_classes, a, b)
    joint = np.bincount(a * k + b, minlength=k * k).reshape(k, k)
    row_totals = joint.sum(axis=1, keepdims=True)
    np.fill_diagonal(joint, 0)
    if normalize == "none":
        return joint
    if normalize == "all":
        return joint / a.size
    return _ratio(joint, np.broadcast_to(row_totals, joint.shape))


# ------------------------------------------------------------------------- set measures


def _check_pair(predicted: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    predicted, labels = torch.as_tensor(predicted).cpu().long(), torch.as_tensor(labels).cpu().long()
    if predicted.shape != labels.shape or predicted.dim() != 1:
        raise ValueError(f"predicted {tuple(predicted.shape)} and labels {tuple(labels.shape)} must be equal 1-D shapes")
    return predicted, labels


def attribute_alignment(predicted: torch.Tensor, labels: torch.Tensor, *, num_classes: int) -> torch.Tensor:
    """Per class c, the fraction of class c's images whose (predicted) attribute is c.

    Parameters
    ----------
    predicted : torch.Tensor of int, shape (N,)
        Attribute of each image (an attribute probe's prediction, or the true one).
    labels : torch.Tensor of int, shape (N,)
        Class of each image.
    num_classes : int
        Number of classes K; attribute c is class c's bias attribute.

    Returns
    -------
    torch.Tensor, shape (K,)
        float64; NaN for a class with no image.
    """
    predicted, labels = _check_pair(predicted, labels)
    out = torch.full((num_classes,), float("nan"), dtype=torch.float64)
    for c in range(num_classes):
        mine = labels == c
        if mine.any():
            out[c] = (predicted[mine] == c).double().mean()
    return out


def attribute_entropy(
    predicted: torch.Tensor, labels: torch.Tensor, *, num_classes: int, num_attributes: int = 10
) -> torch.Tensor:
    r"""Per class, the entropy of the attribute distribution of its images, over ``log(num_attributes)``.

    .. math:: H_c = -\sum_a p_{c,a} \log p_{c,a} / \log A

    with :math:`p_{c,a}` the share of class c's images with attribute a: 0 when they all share
    one attribute, 1 when the attributes are uniform.

    Parameters
    ----------
    predicted, labels : torch.Tensor of int, shape (N,)
        Attribute (in ``[0, num_attributes)``) and class of each image.
    num_classes : int
        Number of classes K.
    num_attributes : int
        Number of attribute values A (Lu et al.: 10 colours / corruptions).

    Returns
    -------
    torch.Tensor, shape (K,)
        float64; NaN for a class with no image.
    """
    predicted, labels = _check_pair(predicted, labels)
    check_int("num_attributes", num_attributes, minimum=2)
    if predicted.numel() and (int(predicted.min()) < 0 or int(predicted.max()) >= num_attributes):
        raise ValueError(f"predicted attributes must lie in [0, {num_attributes - 1}]")
    out = torch.full((num_classes,), float("nan"), dtype=torch.float64)
    for c in range(num_classes):
        mine = predicted[labels == c]
        if mine.numel():
            p = torch.bincount(mine, minlength=num_attributes).double() / mine.numel()
            p = p[p > 0]
            out[c] = float(-(p * p.log()).sum() / math.log(num_attributes)) + 0.0  # + 0.0: no -0.0
    return out


def pairwise_distance(images: torch.Tensor, labels: torch.Tensor, *, num_classes: int) -> torch.Tensor:
    r"""Per class, the mean RMS distance between two distinct images of that class.

    .. math:: d(x, y) = \lVert x - y \rVert_2 / \sqrt{D}

    over the :math:`D = C \cdot H \cdot W` values, averaged over the unordered pairs.

    Parameters
    ----------
    images : torch.Tensor, shape (N, ...)
        The images (any shape per image; flattened).
    labels : torch.Tensor of int, shape (N,)
        Class of each image.
    num_classes : int
        Number of classes K.

    Returns
    -------
    torch.Tensor, shape (K,)
        float64; NaN for a class with fewer than two images.
    """
    images = torch.as_tensor(images).detach().cpu().double().flatten(1)
    labels = torch.as_tensor(labels).cpu().long()
    if labels.shape != (images.shape[0],):
        raise ValueError(f"labels has shape {tuple(labels.shape)}; expected ({images.shape[0]},)")
    out = torch.full((num_classes,), float("nan"), dtype=torch.float64)
    for c in range(num_classes):
        x = images[labels == c]
        n = x.shape[0]
        if n >= 2:
            d = torch.cdist(x, x)  # (n, n), zero diagonal
            out[c] = d.sum() / (n * (n - 1)) / math.sqrt(x.shape[1])
    return out
