"""fairdd.stats: count-table measures against fairdd.metrics, the bootstrap against scipy, the
power and equivalence functions against statsmodels, noise floors and pseudo-replication on
constructed data, and the four verdict classes."""

import json

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps
from statsmodels.stats import power as smp
from statsmodels.stats import weightstats as smw

from fairdd import metrics
from fairdd import stats

# ----------------------------------------------------------------------- count tables


def _random_predictions(rng, n, k, g, accuracy=0.7):
    y = rng.integers(0, k, n)
    a = rng.integers(0, g, n)
    p = np.where(rng.random(n) < accuracy, y, rng.integers(0, k, n))
    return y, p, a


def test_group_counts_by_hand():
    c = stats.group_counts([0, 0, 1, 1], [0, 1, 1, 1], [0, 1, 1, 0], num_classes=2, num_groups=2)
    assert c.shape == (2, 2, 2) and c.sum() == 4
    assert c[0, 0, 0] == 1 and c[1, 0, 1] == 1 and c[1, 1, 1] == 1 and c[0, 1, 1] == 1


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"y_true": [0, 2], "y_pred": [0, 1], "groups": [0, 0]}, r"y_true holds values in \[0, 2\]; allowed: 0 to 1"),
        ({"y_true": [0, 1], "y_pred": [0, 1], "groups": [0, 3]}, r"groups holds values .* allowed: 0 to 1"),
        ({"y_true": [0, 1], "y_pred": [0], "groups": [0, 1]}, "same length"),
        ({"y_true": [0.5, 1], "y_pred": [0, 1], "groups": [0, 1]}, "1-D array of integers"),
    ],
)
def test_group_counts_rejects_bad_input(kwargs, match):
    with pytest.raises(ValueError, match=match):
        stats.group_counts(**kwargs, num_classes=2, num_groups=2)


def test_counts_json_round_trip_and_checks():
    rng = np.random.default_rng(0)
    c = stats.group_counts(*_random_predictions(rng, 50, 3, 2)[:2], rng.integers(0, 2, 50), num_classes=3, num_groups=2)
    text = stats.counts_to_json(c)
    np.testing.assert_array_equal(stats.counts_from_json(text, num_classes=3, num_groups=2), c)
    with pytest.raises(ValueError, match="expected num_classes=4"):
        stats.counts_from_json(text, num_classes=4)
    with pytest.raises(ValueError, match="not valid JSON"):
        stats.counts_from_json("[[1, 2")
    with pytest.raises(ValueError, match="negative count"):
        stats.counts_from_json(json.dumps([[[1, -1], [0, 2]]]))
    with pytest.raises(ValueError, match="shape"):
        stats.counts_from_json(json.dumps([[1, 2], [3, 4]]))
    with pytest.raises(ValueError, match="integers"):
        stats.counts_from_json(json.dumps([[[1.5, 1], [0, 2]]]))
    with pytest.raises(ValueError, match="no test example"):
        stats.counts_from_json(json.dumps([[[0, 0], [0, 0]]]))
    with pytest.raises(ValueError, match="JSON string"):
        stats.counts_from_json(None)


def _oracle(name, y, p, a, k):
    if name == "accuracy":
        return metrics.accuracy(y, p)
    if name == "dpd":
        return metrics.demographic_parity_difference(y, p, sensitive_features=a, num_classes=k)
    if name == "eod":
        return metrics.equalized_odds_difference(y, p, sensitive_features=a, num_classes=k)
    if name in ("deo_max", "deo_mean"):
        gaps = metrics.tpr_gap_by_class(y, p, sensitive_features=a, num_classes=k)
        return float(np.nanmax(gaps) if name == "deo_max" else np.nanmean(gaps))
    if name == "rms_tpr_gap":
        return metrics.rms_tpr_gap(y, p, sensitive_features=a, num_classes=k)
    bias = metrics.bias_aligned_accuracy(y, p, bias_attributes=a)
    return bias["aligned"] - bias["conflicting"]


@pytest.mark.parametrize(
    ("name", "k", "g"),
    [(name, k, g) for name in sorted(stats.GROUP_MEASURES) for k, g in [(2, 2), (2, 3), (5, 5), (4, 4)]
     if name != "aligned_gap" or k == g],  # aligned_gap needs one group per class
)
def test_measures_from_counts_equal_the_metrics(name, k, g):
    rng = np.random.default_rng(k * 10 + g)
    for trial in range(4):
        y, p, a = _random_predictions(rng, 40 + 30 * trial, k, g)
        if trial == 1:  # a group without one class: undefined rates are left out, as in metrics
            keep = ~((a == 0) & (y == 1))
            y, p, a = y[keep], p[keep], a[keep]
        counts = stats.group_counts(y, p, a, num_classes=k, num_groups=g)
        present = np.unique(a)
        if name != "aligned_gap" and present.size < g:  # metrics know only the groups present
            counts = counts[present]
        assert stats.group_measure(counts, name) == pytest.approx(_oracle(name, y, p, a, k), abs=1e-12)


def test_aligned_gap_needs_one_group_per_class():
    c = stats.group_counts([0, 1, 2], [0, 1, 1], [0, 1, 1], num_classes=3, num_groups=2)
    with pytest.raises(ValueError, match="groups == classes"):
        stats.group_measure(c, "aligned_gap")
    with pytest.raises(ValueError, match="measure='gap'"):
        stats.group_measure(c, "gap")


# --------------------------------------------------------------- floors and intervals


def _classifier(rng, n, *, uses_attribute):
    """Binary labels, two equal groups; errors independent of the group, or group 1's negatives
    often predicted positive (which moves its selection rate, FPR and class-0 recall)."""
    y = rng.integers(0, 2, n)
    a = rng.integers(0, 2, n)
    error = np.where((a == 1) & (y == 0), 0.3, 0.05) if uses_attribute else np.full(n, 0.12)
    p = np.where(rng.random(n) < error, 1 - y, y)
    return stats.group_counts(y, p, a, num_classes=2, num_groups=2)


@pytest.mark.parametrize("measure", ["eod", "dpd", "rms_tpr_gap", "deo_max"])
def test_noise_floor_separates_blind_from_attribute_using_classifiers(measure):
    rng = np.random.default_rng(1)
    blind = stats.check_measure(_classifier(rng, 1000, uses_attribute=False), measure, resamples=500)
    using = stats.check_measure(_classifier(rng, 1000, uses_attribute=True), measure, resamples=500)
    assert blind.within_floor
    assert not using.within_floor
    assert using.ci_low <= using.value <= using.ci_high


def test_noise_floor_grows_as_the_test_set_shrinks():
    rng = np.random.default_rng(2)
    small = stats.noise_floor(_classifier(rng, 100, uses_attribute=False), "eod", permutations=500)
    large = stats.noise_floor(_classifier(rng, 4000, uses_attribute=False), "eod", permutations=500)
    assert large < small


def test_permutation_keeps_group_sizes_and_predictions():
    rng = np.random.default_rng(3)
    y, p, a = _random_predictions(rng, 200, 4, 3)
    counts = stats.group_counts(y, p, a, num_classes=4, num_groups=3)
    permuted = stats._permuted(counts, 50, rng)
    np.testing.assert_array_equal(permuted.sum(axis=(2, 3)), np.broadcast_to(counts.sum(axis=(1, 2)), (50, 3)))
    np.testing.assert_array_equal(permuted.sum(axis=1), np.broadcast_to(counts.sum(axis=0), (50, 4, 4)))
    assert not np.all(permuted == counts)


@pytest.mark.parametrize("method", ["basic", "percentile"])
@pytest.mark.parametrize("measure", ["eod", "accuracy"])
def test_bootstrap_interval_agrees_with_scipy(measure, method):
    rng = np.random.default_rng(4)
    y, p, a = _random_predictions(rng, 300, 2, 2, accuracy=0.8)
    counts = stats.group_counts(y, p, a, num_classes=2, num_groups=2)
    ours = stats.bootstrap_interval(counts, measure, resamples=4000, seed=0, method=method)

    def statistic(yy, pp, aa):
        return stats.group_measure(stats.group_counts(yy, pp, aa, num_classes=2, num_groups=2), measure)

    ref = sps.bootstrap((y, p, a), statistic, paired=True, vectorized=False, n_resamples=4000,
                        method=method, random_state=np.random.default_rng(0))
    assert ours[0] == pytest.approx(ref.confidence_interval.low, abs=0.02)
    assert ours[1] == pytest.approx(ref.confidence_interval.high, abs=0.02)


def test_basic_interval_covers_an_inflated_spread_and_the_floor_catches_it():
    """A mean of spreads on a small test set: the bootstrap replicates sit above the estimate, so
    the percentile interval is shifted up (and can miss it); the basic interval holds it, and a
    classifier blind to the group is within its floor."""
    rng = np.random.default_rng(11)
    y, a = rng.integers(0, 10, 400), rng.integers(0, 2, 400)
    p = np.where(rng.random(400) < 0.9, y, rng.integers(0, 10, 400))  # errors blind to the group
    counts = stats.group_counts(y, p, a, num_classes=10, num_groups=2)
    value = stats.group_measure(counts, "deo_mean")
    pct = stats.bootstrap_interval(counts, "deo_mean", method="percentile")
    basic = stats.bootstrap_interval(counts, "deo_mean")
    assert (pct[0] + pct[1]) / 2 > value + 0.02  # the percentile interval is centred well above the estimate
    assert basic[0] < value < basic[1]
    assert stats.check_measure(counts, "deo_mean").within_floor


def test_check_measures_on_rows():
    rng = np.random.default_rng(5)
    rows = pd.DataFrame({"seed": [0, 1], "group_counts": [stats.counts_to_json(_classifier(rng, 300, uses_attribute=u))
                                                          for u in (False, True)]})
    frame = stats.check_measures(rows, "eod", keep=["seed"], resamples=200)
    assert list(frame.columns) == ["seed", "measure", "value", "ci_low", "ci_high", "floor", "within_floor"]
    assert frame["seed"].tolist() == [0, 1]
    with pytest.raises(KeyError, match="no 'counts'"):
        stats.check_measures(rows, "eod", counts_column="counts")


@pytest.mark.parametrize(("kwargs", "match"), [({"confidence": 1.5}, "confidence=1.5"), ({"resamples": 10}, "resamples")])
def test_bootstrap_rejects_bad_options(kwargs, match):
    with pytest.raises(ValueError, match=match):
        stats.bootstrap_interval(_classifier(np.random.default_rng(0), 50, uses_attribute=False), "eod", **kwargs)


# ------------------------------------------------------------------------------ claim tests


@pytest.mark.parametrize("alternative", ["larger", "smaller", "two-sided"])
def test_welch_agrees_with_scipy(alternative):
    rng = np.random.default_rng(6)
    a, b = rng.normal(0.3, 1, 8), rng.normal(0, 2, 13)
    scipy_alt = {"larger": "greater", "smaller": "less", "two-sided": "two-sided"}[alternative]
    assert stats.welch(a, b, alternative=alternative) == pytest.approx(
        sps.ttest_ind(a, b, equal_var=False, alternative=scipy_alt).pvalue, rel=1e-9)
    assert stats.welch(a, alternative=alternative) == pytest.approx(
        sps.ttest_1samp(a, 0.0, alternative=scipy_alt).pvalue, rel=1e-9)


def test_welch_without_spread_gives_a_clear_answer_without_warnings():
    assert stats.welch([0.5, 0.5, 0.5], [0.5, 0.5], alternative="two-sided") == 1.0
    assert stats.welch([0.6, 0.6, 0.6], [0.5, 0.5], alternative="larger") == 0.0
    assert stats.welch([0.6, 0.6, 0.6], [0.5, 0.5], alternative="smaller") == 1.0
    with pytest.raises(ValueError, match="at least 2 values"):
        stats.welch([1.0], [1.0, 2.0])


def test_welch_interval_agrees_with_scipy():
    rng = np.random.default_rng(7)
    a, b = rng.normal(1, 1, 9), rng.normal(0, 1.5, 12)
    effect, low, high = stats.welch_interval(a, b)
    ci = sps.ttest_ind(a, b, equal_var=False).confidence_interval(0.95)
    assert effect == pytest.approx(a.mean() - b.mean())
    assert (low, high) == pytest.approx((ci.low, ci.high), rel=1e-9)


@pytest.mark.parametrize("alternative", ["larger", "two-sided"])
@pytest.mark.parametrize(("n1", "n2"), [(3, 3), (6, 10), (40, 40)])
def test_mde_agrees_with_statsmodels(n1, n2, alternative):
    sd = 2.5
    d = smp.TTestIndPower().solve_power(effect_size=None, nobs1=n1, ratio=n2 / n1, alpha=0.05, power=0.8,
                                        alternative=alternative)
    assert stats.minimum_detectable_effect(n1, n2, sd, alternative=alternative) == pytest.approx(d * sd, rel=1e-4)
    d1 = smp.TTestPower().solve_power(effect_size=None, nobs=n1, alpha=0.05, power=0.8, alternative=alternative)
    assert stats.minimum_detectable_effect(n1, None, sd, alternative=alternative) == pytest.approx(d1 * sd, rel=1e-4)


def test_mde_shrinks_with_n_and_rejects_bad_input():
    assert stats.minimum_detectable_effect(30, 30, 1.0) < stats.minimum_detectable_effect(5, 5, 1.0)
    assert stats.mde_from_standard_error(0.0, 4) == 0.0
    with pytest.raises(ValueError, match="df=0"):
        stats.mde_from_standard_error(1.0, 0)
    with pytest.raises(ValueError, match="n1=1"):
        stats.minimum_detectable_effect(1, 5, 1.0)
    with pytest.raises(ValueError, match="power=1.2"):
        stats.minimum_detectable_effect(5, 5, 1.0, power=1.2)


def test_tost_agrees_with_statsmodels_and_separates_effect_from_none():
    rng = np.random.default_rng(8)
    none_a, none_b = rng.normal(0, 1, 60), rng.normal(0, 1.2, 50)
    p_ref = smw.ttost_ind(none_a, none_b, -0.8, 0.8, usevar="unequal")[0]
    assert stats.tost(none_a, none_b, margin=0.8) == pytest.approx(p_ref, rel=1e-9)
    assert stats.tost(none_a, none_b, margin=0.8) < 0.05  # no effect: equivalence shown
    effect_a = rng.normal(1.0, 1, 60)
    assert stats.tost(effect_a, none_b, margin=0.8) > 0.5  # an effect of 1 is not within ±0.8
    one = rng.normal(0.05, 0.3, 30)
    assert stats.tost(one, margin=0.3) == pytest.approx(smw.DescrStatsW(one).ttost_mean(-0.3, 0.3)[0], rel=1e-9)
    with pytest.raises(ValueError, match="margin=0"):
        stats.tost(none_a, none_b, margin=0)


def test_pseudo_replication_inflates_false_positives_and_unit_means_do_not():
    """Two methods with no true difference; five distilled sets each, two classifiers per set.

    The set-to-set spread is large and the two classifiers of one set share it, so a test that
    takes the 10 classifiers per method as independent rejects far more often than its level;
    the same test on the 5 set means keeps it.
    """
    rng = np.random.default_rng(9)
    naive, unit = [], []
    for _ in range(400):
        rows = []
        for method in ("a", "b"):
            for set_seed in range(5):
                set_effect = rng.normal(0, 1.0)
                for classifier in range(2):
                    rows.append({"method": method, "set_seed": set_seed, "classifier": classifier,
                                 "value": set_effect + rng.normal(0, 0.2)})
        frame = pd.DataFrame(rows)
        naive.append(stats.welch(frame.value[frame.method == "a"], frame.value[frame.method == "b"],
                                 alternative="two-sided"))
        means = stats.unit_means(frame, unit=["method", "set_seed"], value="value")
        assert means["replicates"].eq(2).all() and len(means) == 10
        unit.append(stats.welch(means.value[means.method == "a"], means.value[means.method == "b"],
                                alternative="two-sided"))
    naive_rate, unit_rate = np.mean(np.array(naive) < 0.05), np.mean(np.array(unit) < 0.05)
    assert naive_rate > 0.12
    assert unit_rate < 0.08


def test_unit_means_checks_columns():
    with pytest.raises(KeyError, match="set_seed"):
        stats.unit_means(pd.DataFrame({"value": [1.0]}), unit=["set_seed"], value="value")


# --------------------------------------------------------------------------------- verdicts


def test_each_verdict_class_is_reachable_with_its_reason():
    v = stats.decide(p_support=[0.001, 0.01], p_contradict=[0.99, 0.9])
    assert v.verdict == "supported" and "2 of 2 tests significant in the paper's direction (Holm" in v.reason
    # Holm: 0.03 and 0.04 are each below 0.05, but neither after correction (0.06, 0.06).
    assert stats.decide(p_support=[0.03, 0.04], p_contradict=[0.9, 0.9], need="any").verdict != "supported"
    assert stats.decide(p_support=[0.01, 0.2], p_contradict=[0.9, 0.9]).verdict != "supported"
    assert stats.decide(p_support=[0.01, 0.2], p_contradict=[0.9, 0.9], need="any").verdict == "supported"
    v = stats.decide(p_support=[0.9], p_contradict=[0.001])
    assert v.verdict == "contradicted" and "against the paper's direction" in v.reason
    v = stats.decide(p_support=[0.001], p_contradict=[0.9], direction="the expected direction")
    assert "in the expected direction" in v.reason
    v = stats.decide(p_support=[0.4], p_contradict=[0.6], p_absent=[0.01], margin=2.0, margin_source="the paper's effect")
    assert v.verdict == "absent" and "±2" in v.reason and "the paper's effect" in v.reason
    v = stats.decide(p_support=[0.4], p_contradict=[0.6], mde=5.0, paper_effect=1.5)
    assert v.verdict == "untestable here" and "could not have detected" in v.reason
    v = stats.decide(p_support=[0.4], p_contradict=[0.6], mde=1.0, paper_effect=1.5, p_absent=[0.2], margin=1.5)
    assert v.verdict == "untestable here" and v.reason.startswith("inconclusive")
    v = stats.decide(p_support=[0.001], p_contradict=[0.99], degenerate="the teacher is no better than the student")
    assert v.verdict == "untestable here" and "teacher" in v.reason
    v = stats.decide(p_support=[0.001], p_contradict=[0.99], within_floor=True)
    assert v.verdict == "untestable here" and "noise floor" in v.reason
    assert stats.decide(p_support=[], p_contradict=[]).verdict == "untestable here"


def test_decide_rejects_bad_input():
    with pytest.raises(ValueError, match="one p-value per test"):
        stats.decide(p_support=[0.1, 0.2], p_contradict=[0.1])
    with pytest.raises(ValueError, match="p-values in"):
        stats.decide(p_support=[1.5], p_contradict=[0.1])
    with pytest.raises(ValueError, match="need='most'"):
        stats.decide(p_support=[0.1], p_contradict=[0.1], need="most")
    with pytest.raises(ValueError, match="verdict='maybe'"):
        stats.Verdict("maybe", "")


def test_claim_rows_and_the_answerable_table():
    yes = stats.claim_row(paper="P", claim=1, statement="s", chapter="c", dataset="d", mde=1.0, paper_effect=2.0,
                          verdict=stats.decide(p_support=[0.01], p_contradict=[0.99]), extra_column=3)
    no = stats.claim_row(paper="P", claim=2, statement="s", chapter="c", dataset="d", mde=3.0, paper_effect=2.0,
                         verdict=stats.decide(p_support=[0.5], p_contradict=[0.5], mde=3.0, paper_effect=2.0))
    unknown = stats.claim_row(paper="P", claim=3, statement="s", chapter="c", dataset="d",
                              verdict=stats.decide(p_support=[0.5], p_contradict=[0.5]))
    frame = pd.DataFrame([yes, no, unknown])
    assert list(frame.columns[: len(stats.CLAIM_COLUMNS)]) == list(stats.CLAIM_COLUMNS)
    table = stats.answerable(frame)
    assert table["detectable"].tolist() == ["yes", "no", "–"]
    assert table["verdict"].tolist() == ["supported", "untestable here", "untestable here"]
    with pytest.raises(KeyError, match="lack the columns"):
        stats.answerable(pd.DataFrame({"claim": [1]}))


def test_welch_parts_agree_with_scipy_welch():
    import numpy as np
    from scipy import stats as sps

    from fairdd import stats

    rng = np.random.default_rng(3)
    a, b = rng.normal(1.0, 1.0, 7), rng.normal(0.0, 2.0, 5)
    diff, se, df = stats.welch_parts(a, b)
    t = sps.ttest_ind(a, b, equal_var=False)
    assert np.isclose(diff / se, t.statistic) and np.isclose(df, t.df)
    one = stats.welch_parts(a)
    assert np.isclose(one[0], a.mean()) and np.isclose(one[2], a.size - 1)


def test_tost_from_an_estimate_is_the_one_sample_tost_when_the_estimate_is_a_mean():
    import math

    import numpy as np
    import pytest

    from fairdd import stats

    a = np.array([0.3, -0.1, 0.2, 0.05, 0.15, -0.05])
    se = a.std(ddof=1) / np.sqrt(a.size)
    for margin in (0.4, 0.1):
        assert stats.tost_from_estimate(a.mean(), se, a.size - 1, margin=margin) == pytest.approx(stats.tost(a, margin=margin))
    assert stats.tost_from_estimate(0.05, 0.0, 5, margin=0.1) == 0.0 and stats.tost_from_estimate(0.2, 0.0, 5, margin=0.1) == 1.0
    assert math.isnan(stats.tost_from_estimate(float("nan"), 0.1, 5, margin=0.1))


def test_checks_text_is_the_mean_entry_with_its_floor_mark():
    import pandas as pd
    import pytest

    from fairdd import stats

    rows = pd.DataFrame({"value": [0.10, 0.20], "ci_low": [0.05, 0.1], "ci_high": [0.2, 0.3], "floor": [0.04, 0.06],
                         "within_floor": [False, True]})
    assert stats.checks_text(rows) == "15.0 [7.5, 25.0] floor 5.0 (1/2 ≈ floor)"
    assert stats.checks_text(rows.iloc[1:]).endswith(" ≈ floor") and "≈" not in stats.checks_text(rows.iloc[:1])
    with pytest.raises(ValueError, match="at least one"):
        stats.checks_text(rows.iloc[:0])
