"""fairdd.metrics: hand-computed tiny cases, and fairlearn / scipy / fairlib's formula as oracles."""

import math

import fairlearn.metrics as flm
import numpy as np
import pytest
import torch
from scipy import stats

from fairdd import metrics as m

# --------------------------------------------------------------------------- accuracy

Y = np.array([0, 0, 1, 1, 2, 2, 2, 2])
P = np.array([0, 1, 1, 1, 2, 0, 0, 2])


def test_accuracy_and_classwise_by_hand():
    assert m.accuracy(Y, P) == pytest.approx(5 / 8)
    np.testing.assert_allclose(m.classwise_accuracy(Y, P), [0.5, 1.0, 0.5])
    # Class 3 absent from y_true: NaN, and not part of the variance.
    acc = m.classwise_accuracy(Y, P, num_classes=4)
    assert np.isnan(acc[3])
    mean = (0.5 + 1.0 + 0.5) / 3
    expected = ((0.5 - mean) ** 2 * 2 + (1.0 - mean) ** 2) / 3  # ddof = 0
    assert m.classwise_variance(Y, P, num_classes=4) == pytest.approx(expected)


def test_accepts_tensors_and_returns_python_floats():
    value = m.accuracy(torch.tensor(Y), torch.tensor(P))
    assert type(value) is float and value == m.accuracy(Y.tolist(), P.tolist())
    assert isinstance(m.classwise_accuracy(torch.tensor(Y), torch.tensor(P)), np.ndarray)


def test_input_validation():
    with pytest.raises(ValueError, match="same length"):
        m.accuracy([0, 1], [0])
    with pytest.raises(ValueError, match="num_classes=2"):
        m.classwise_accuracy(Y, P, num_classes=2)
    with pytest.raises(ValueError, match="integer"):
        m.accuracy([0.5, 1.0], [0, 1])
    with pytest.raises(ValueError, match="method='worst'"):
        m.demographic_parity_difference(Y, P, sensitive_features=Y, method="worst")
    with pytest.raises(ValueError, match="agg"):
        m.equalized_odds_difference(Y, P, sensitive_features=Y, agg="max")


def test_group_accuracy_by_hand_and_intersectional():
    a = np.array([0, 0, 0, 0, 1, 1, 1, 1])
    assert m.group_accuracy(Y, P, sensitive_features=a) == {0: 0.75, 1: 0.5}
    two = np.stack([a, Y % 2], axis=1)
    out = m.group_accuracy(Y, P, sensitive_features=two)
    assert out[(0, 0)] == 0.5 and out[(0, 1)] == 1.0 and out[(1, 0)] == 0.5


def test_bias_aligned_accuracy_by_hand():
    y = np.array([0, 1, 2, 0, 1, 2])
    p = np.array([0, 1, 0, 1, 1, 2])
    b = np.array([0, 1, 2, 1, 2, 0])  # first three aligned, last three conflicting
    out = m.bias_aligned_accuracy(y, p, bias_attributes=b)
    assert out == {"aligned": pytest.approx(2 / 3), "conflicting": pytest.approx(2 / 3), "aligned_fraction": 0.5}
    out = m.bias_aligned_accuracy(y, p, bias_attributes=y)
    assert math.isnan(out["conflicting"]) and out["aligned_fraction"] == 1.0


# ------------------------------------------------------------- DPD / EOD vs fairlearn


def test_dpd_eod_by_hand_binary():
    y = np.array([1, 1, 0, 0, 1, 1, 0, 0])
    p = np.array([1, 0, 0, 0, 1, 1, 1, 0])
    a = np.array([0, 0, 0, 0, 1, 1, 1, 1])
    # Selection rates: group 0 1/4, group 1 3/4, overall 1/2.
    assert m.demographic_parity_difference(y, p, sensitive_features=a) == pytest.approx(0.5)
    assert m.demographic_parity_difference(y, p, sensitive_features=a, method="to_overall") == pytest.approx(0.25)
    # TPR: 1/2 vs 1 (diff 1/2); FPR: 0 vs 1/2 (diff 1/2).
    assert m.equalized_odds_difference(y, p, sensitive_features=a) == pytest.approx(0.5)


@pytest.mark.parametrize("method", ["between_groups", "to_overall"])
@pytest.mark.parametrize("n_groups", [2, 3, 5])
def test_binary_matches_fairlearn(method, n_groups):
    rng = np.random.default_rng(n_groups)
    for _ in range(5):
        n = int(rng.integers(50, 300))
        y, a = rng.integers(0, 2, n), rng.integers(0, n_groups, n)
        p = np.where(rng.random(n) < 0.3 + 0.1 * a, 1 - y, y)  # group-dependent errors
        kw = dict(sensitive_features=a, method=method)
        assert m.demographic_parity_difference(y, p, **kw) == pytest.approx(flm.demographic_parity_difference(y, p, **kw))
        for agg in ("worst_case", "mean"):
            ours = m.equalized_odds_difference(y, p, agg=agg, **kw)
            assert ours == pytest.approx(flm.equalized_odds_difference(y, p, agg=agg, **kw))


def test_multiclass_is_one_vs_rest_average_of_fairlearn():
    """Mohammadshahi & Ioannou, Algorithm 1: binarise per class, fairlearn's metric, mean over classes."""
    rng = np.random.default_rng(0)
    k, n = 5, 600
    y, a = rng.integers(0, k, n), rng.integers(0, 3, n)
    p = np.where(rng.random(n) < 0.4, rng.integers(0, k, n), y)
    dpd = np.mean([flm.demographic_parity_difference(y == c, p == c, sensitive_features=a) for c in range(k)])
    eod = np.mean([flm.equalized_odds_difference(y == c, p == c, sensitive_features=a) for c in range(k)])
    assert m.demographic_parity_difference(y, p, sensitive_features=a) == pytest.approx(dpd)
    assert m.equalized_odds_difference(y, p, sensitive_features=a) == pytest.approx(eod)
    # A multi-class batch holding only classes 0 and 1 is still averaged over K classes.
    y2, p2 = y % 2, p % 2
    binary = m.demographic_parity_difference(y2, p2, sensitive_features=a)
    as_k = m.demographic_parity_difference(y2, p2, sensitive_features=a, num_classes=k)
    # Classes 0 and 1 each give the binary DPD; classes 2..K-1 are never predicted (DPD 0).
    assert as_k == pytest.approx(2 * binary / k)


def test_undefined_group_rate_is_skipped_not_zero():
    # Group 1 has no positive sample: its TPR is undefined and left out (fairlearn says 0).
    y = np.array([1, 0, 1, 0, 0, 0])
    p = np.array([1, 0, 1, 1, 0, 1])
    a = np.array([0, 0, 0, 1, 1, 1])
    # TPR: only group 0 defined -> diff 0. FPR: 0 vs 2/3.
    assert m.equalized_odds_difference(y, p, sensitive_features=a) == pytest.approx(2 / 3)


# ---------------------------------------------------------------------- RMS TPR gap


def _fairlib_rms_tpr_gap(y, p, a):
    """Han et al. / fairlib@909f952 ``gap_eval_scores`` TPR_GAP, written out independently:
    confusion matrices with the 1e-5 smoothing, group-minus-overall TPR, |.| summed over
    groups, RMS over classes."""
    k, g = len(set(y)), len(set(a))

    def tpr(mask):
        cm = np.zeros((k, k))
        np.add.at(cm, (y[mask], p[mask]), 1)
        tp = np.diag(cm) + 1e-5
        fn = cm.sum(1) - np.diag(cm) + 1e-5
        return tp / (tp + fn)

    overall = tpr(np.ones_like(y, dtype=bool))
    per_group = np.stack([tpr(a == gid) for gid in range(g)], axis=1)  # (K, G)
    gaps = np.abs(per_group - overall[:, None]).sum(1)
    return np.sqrt(np.mean(gaps**2))


def test_rms_tpr_gap_by_hand():
    y = np.array([0, 0, 1, 1, 0, 0, 1, 1])
    p = np.array([0, 0, 1, 0, 0, 1, 0, 0])
    a = np.array([0, 0, 0, 0, 1, 1, 1, 1])
    # Class 0: TPR_0 = 3/4, groups 1, 1/2 -> GAP_0 = 1/4 + 1/4 = 1/2.
    # Class 1: TPR_1 = 1/4, groups 1/2, 0 -> GAP_1 = 1/4 + 1/4 = 1/2.
    assert m.rms_tpr_gap(y, p, sensitive_features=a) == pytest.approx(0.5)
    assert m.rms_tpr_gap(y, y, sensitive_features=a) == 0.0


@pytest.mark.parametrize("k,g", [(2, 2), (4, 2), (6, 3)])
def test_rms_tpr_gap_matches_fairlib_formula(k, g):
    rng = np.random.default_rng(k * 10 + g)
    n = 4000  # every (group, class) cell populated, so the 1e-5 smoothing is negligible
    y, a = rng.integers(0, k, n), rng.integers(0, g, n)
    p = np.where(rng.random(n) < 0.2 + 0.2 * a, rng.integers(0, k, n), y)
    ours = m.rms_tpr_gap(y, p, sensitive_features=a)
    assert ours > 0.05
    assert ours == pytest.approx(_fairlib_rms_tpr_gap(y, p, a), abs=1e-6)


def test_distance_to_optimum():
    assert m.distance_to_optimum(1.0, 1.0) == 0.0
    assert m.distance_to_optimum(0.7, 0.6) == pytest.approx(0.5)
    np.testing.assert_allclose(m.distance_to_optimum(np.array([0.7, 1.0]), np.array([0.6, 0.0])), [0.5, 1.0])
    with pytest.raises(ValueError, match="percent"):
        m.distance_to_optimum(70.0, 0.6)


# ------------------------------------------------------------------ Welch, disagreement


def _welch(x, y):
    mx, my = x.mean(), y.mean()
    vx, vy = x.var(ddof=1) / len(x), y.var(ddof=1) / len(y)
    t = (mx - my) / math.sqrt(vx + vy)
    df = (vx + vy) ** 2 / (vx**2 / (len(x) - 1) + vy**2 / (len(y) - 1))
    return t, 2 * stats.t.sf(abs(t), df)


def test_significant_classes_matches_scipy_and_manual_welch():
    rng = np.random.default_rng(3)
    k = 6
    ca = rng.uniform(0.6, 0.9, (5, k))
    cb = rng.uniform(0.6, 0.9, (4, k))
    cb[:, 2] -= 0.3  # one class clearly shifted
    oa, ob = rng.uniform(0.7, 0.8, 5), rng.uniform(0.7, 0.8, 4)
    res = m.significant_classes(ca, oa, cb, ob, alpha=0.05)
    t_ref, p_ref = stats.ttest_ind(ca / oa[:, None], cb / ob[:, None], equal_var=False)
    np.testing.assert_allclose(res.statistic, t_ref)
    np.testing.assert_allclose(res.pvalue, p_ref)
    for c in range(k):
        t, p = _welch(ca[:, c] / oa, cb[:, c] / ob)
        assert res.statistic[c] == pytest.approx(t) and res.pvalue[c] == pytest.approx(p)
    assert res.significant[2] and res.count == int((p_ref <= 0.05).sum())


def test_significant_classes_constant_class_is_not_counted():
    ca = np.array([[1.0, 0.5], [1.0, 0.6], [1.0, 0.7]])
    cb = np.array([[1.0, 0.1], [1.0, 0.2], [1.0, 0.15]])
    ones = np.ones(3)
    res = m.significant_classes(ca, ones, cb, ones)
    assert np.isnan(res.pvalue[0]) and not res.significant[0]
    assert res.significant[1] and res.count == 1
    with pytest.raises(ValueError, match="overall_accuracy_b"):
        m.significant_classes(ca, ones, cb, np.ones(2))


def test_holm_adjust_equals_the_step_down_procedure():
    # Holm's step-down: test sorted p_(i) against alpha / (m - i + 1), stop at the first failure.
    rng = np.random.default_rng(0)
    for _ in range(50):
        p = rng.uniform(0, 0.1, 7) ** rng.uniform(1, 3)
        for alpha in (0.01, 0.05, 0.1):
            rejected = np.zeros(7, bool)
            for i, j in enumerate(np.argsort(p)):
                if p[j] > alpha / (7 - i):
                    break
                rejected[j] = True
            np.testing.assert_array_equal(m.holm_adjust(p) <= alpha, rejected)


def test_disagreement_matrix_by_hand():
    a = np.array([0, 0, 1, 1, 2, 2, 2])
    b = np.array([0, 1, 1, 2, 0, 0, 2])
    counts = m.disagreement_matrix(a, b, num_classes=3)
    np.testing.assert_array_equal(counts, [[0, 1, 0], [0, 0, 1], [2, 0, 0]])
    np.testing.assert_allclose(m.disagreement_matrix(a, b, num_classes=3, normalize="all"), counts / 7)
    rows = m.disagreement_matrix(a, b, num_classes=4, normalize="row")
    np.testing.assert_allclose(rows[:3, :3], counts / np.array([[2], [2], [3]]))
    assert np.all(np.isnan(rows[3]))
    # Total disagreement equals the fraction of samples on which the models differ.
    assert m.disagreement_matrix(a, b, num_classes=3, normalize="all").sum() == pytest.approx(np.mean(a != b))


# ------------------------------------------------------------------ Holm (Mohammadshahi & Ioannou's #SC/#TC)


def test_holm_adjust_by_hand():
    # sorted 0.005, 0.01, 0.03, 0.04 → 4·0.005, 3·0.01, 2·0.03, max(0.06, 1·0.04): running max
    adjusted = m.holm_adjust([0.01, 0.04, 0.03, 0.005, np.nan])
    np.testing.assert_allclose(adjusted[:4], [0.03, 0.06, 0.06, 0.02])
    assert np.isnan(adjusted[4])
    assert m.holm_adjust([0.9, 0.8]).tolist() == [1.0, 1.0]
    with pytest.raises(ValueError, match="pvalues"):
        m.holm_adjust([1.5])


def test_significant_classes_holm_counts_fewer_on_constructed_data():
    # 5 seeds × 4 classes; model b shifts class 0 a lot, class 1 a little, classes 2-3 not.
    base = np.array([0.90, 0.80, 0.85, 0.70])
    noise = np.array([[0.01, -0.01, 0.0, 0.005], [-0.01, 0.01, 0.005, 0.0], [0.0, 0.005, -0.01, 0.01],
                      [0.005, 0.0, 0.01, -0.01], [-0.005, -0.005, -0.005, -0.005]])
    ca, cb = base + noise, base + noise[::-1] + np.array([0.10, 0.013, 0.0, 0.0])
    ones = np.ones(5)
    raw = m.significant_classes(ca, ones, cb, ones)
    holm = m.significant_classes(ca, ones, cb, ones, correction="holm")
    np.testing.assert_allclose(holm.adjusted, m.holm_adjust(raw.pvalue))
    assert raw.correction == "none" and holm.correction == "holm"
    assert raw.significant[:2].all() and not raw.significant[2:].any() and raw.count == 2
    assert 0.05 / 3 < raw.pvalue[1] <= 0.05  # significant alone, not after Holm over 4 classes
    assert holm.count == 1 and holm.significant[0]
    with pytest.raises(ValueError, match="correction"):
        m.significant_classes(ca, ones, cb, ones, correction="bonferroni")


def test_tpr_gap_by_class_matches_fairlearn_per_class():
    rng = np.random.default_rng(7)
    t = np.tile(np.arange(4), 60)
    g = rng.integers(0, 3, t.size)
    p = np.where(rng.random(t.size) < 0.7, t, rng.integers(0, 4, t.size))
    gaps = m.tpr_gap_by_class(t, p, sensitive_features=g)
    for c in range(4):
        frame = flm.MetricFrame(metrics=flm.true_positive_rate, y_true=t == c, y_pred=p == c, sensitive_features=g)
        assert gaps[c] == pytest.approx(frame.difference(method="between_groups"))
    # A class present in one group only has no gap; a group without the class is left out.
    gaps = m.tpr_gap_by_class([0, 0, 1, 1, 1], [0, 1, 1, 1, 0], sensitive_features=[0, 1, 0, 0, 0])
    assert gaps[0] == pytest.approx(1.0) and np.isnan(gaps[1])
