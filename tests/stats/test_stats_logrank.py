"""Log-rank test (k groups, strata, Fleming–Harrington and other weights).

Checked against lifelines, statsmodels ``survdiff``, R ``survdiff`` (stored reference
values) and a hand-worked example.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from stats_testdata import r_dataset, r_reference, r_values

from cartrial.stats import logrank_test

pytestmark = pytest.mark.filterwarnings("ignore")


def random_groups(seed: int, n: int | None = None):
    rng = np.random.default_rng(1000 + seed)
    n = int(rng.integers(12, 120)) if n is None else n
    k = int(rng.integers(2, 5))
    g = rng.integers(0, k, n)
    t = rng.exponential(10.0 * (1.0 + 0.2 * g), n)
    t = np.floor(t) + 1.0 if seed % 2 else np.round(t, 5)
    e = rng.random(n) < 0.7
    strata = rng.integers(0, 3, n)
    return t, e, g, strata


def test_hand_worked_two_groups():
    # A: 1 (event), 3 (event); B: 2 (event), 4 (censored)
    # t=1: n=4, nA=2, d=1 in A : E_A=1/2, V=1*(2/4)(2/4)=1/4
    # t=2: n=3, nA=1, d=1 in B : E_A=1/3, V=(1/3)(2/3)=2/9
    # t=3: n=2, nA=1, d=1 in A : E_A=1/2, V=1/4
    # O_A=2, E_A=4/3, V=13/18 -> chi2 = (2/3)^2 / (13/18) = 8/13
    res = logrank_test([1, 3, 2, 4], [1, 1, 1, 0], ["A", "A", "B", "B"])
    assert res.statistic == pytest.approx(8 / 13, abs=1e-14)
    assert res.df == 1
    np.testing.assert_allclose(res.observed, [2, 1])
    np.testing.assert_allclose(res.expected, [4 / 3, 5 / 3])
    assert res.variance[0, 0] == pytest.approx(13 / 18)
    assert res.summary["group"].tolist() == ["A", "B"]
    from scipy.stats import chi2

    assert res.p_value == pytest.approx(chi2.sf(8 / 13, 1), abs=1e-14)


@pytest.mark.parametrize("seed", range(40))
def test_matches_lifelines_multivariate(seed):
    from lifelines.statistics import multivariate_logrank_test

    t, e, g, _ = random_groups(seed)
    ours = logrank_test(t, e, g)
    ref = multivariate_logrank_test(t, g, e)
    assert ours.statistic == pytest.approx(ref.test_statistic, abs=1e-8)
    assert ours.p_value == pytest.approx(ref.p_value, abs=1e-8)
    assert ours.df == ref.degrees_of_freedom


@pytest.mark.parametrize("seed", range(30))
@pytest.mark.parametrize(("rho", "gamma"), [(1.0, 0.0), (0.0, 1.0), (1.5, 0.5)])
def test_fleming_harrington_matches_lifelines(seed, rho, gamma):
    from lifelines.statistics import multivariate_logrank_test

    t, e, g, _ = random_groups(seed)
    t = t + 0.5  # lifelines aligns its KM weights assuming no event at time 0
    ours = logrank_test(t, e, g, weighting="fh", rho=rho, gamma=gamma)
    ref = multivariate_logrank_test(t, g, e, weightings="fleming-harrington", p=rho, q=gamma)
    assert ours.statistic == pytest.approx(ref.test_statistic, abs=1e-8)


@pytest.mark.parametrize("seed", range(20))
@pytest.mark.parametrize(
    ("weighting", "lifelines_name"), [("gehan-breslow", "wilcoxon"), ("tarone-ware", "tarone-ware")]
)
def test_other_weights_match_lifelines(seed, weighting, lifelines_name):
    from lifelines.statistics import multivariate_logrank_test

    t, e, g, _ = random_groups(seed)
    ours = logrank_test(t, e, g, weighting=weighting)
    ref = multivariate_logrank_test(t, g, e, weightings=lifelines_name)
    assert ours.statistic == pytest.approx(ref.test_statistic, abs=1e-8)


@pytest.mark.parametrize("seed", range(40))
def test_matches_statsmodels_survdiff_with_strata_and_fh(seed):
    from statsmodels.duration.survfunc import survdiff

    t, e, g, strata = random_groups(seed)
    ef = e.astype(float)
    plain = survdiff(t, ef, g)
    assert logrank_test(t, e, g).statistic == pytest.approx(plain[0], abs=1e-8)
    stratified = survdiff(t, ef, g, strata=strata)
    ours = logrank_test(t, e, g, strata=strata)
    assert ours.statistic == pytest.approx(stratified[0], abs=1e-8)
    assert ours.p_value == pytest.approx(stratified[1], abs=1e-8)
    fh = survdiff(t, ef, g, strata=strata, weight_type="fh", fh_p=1.0)
    ours_fh = logrank_test(t, e, g, strata=strata, weighting="fh", rho=1.0)
    assert ours_fh.statistic == pytest.approx(fh[0], abs=1e-8)
    tw = survdiff(t, ef, g, weight_type="tw")
    assert logrank_test(t, e, g, weighting="tarone-ware").statistic == pytest.approx(
        tw[0], abs=1e-8
    )


@pytest.mark.parametrize("seed", [5, 6])
def test_matches_statsmodels_large_sample(seed):
    from statsmodels.duration.survfunc import survdiff

    t, e, g, strata = random_groups(seed, n=3000)
    ref = survdiff(t, e.astype(float), g, strata=strata)
    assert logrank_test(t, e, g, strata=strata).statistic == pytest.approx(ref[0], abs=1e-8)


LR_IDS = sorted({int(i) for i in r_reference()["data"]["lr"]["id"]})


@pytest.mark.parametrize("ident", LR_IDS)
@pytest.mark.parametrize("rho", [0, 1])
def test_matches_r_survdiff(ident, rho):
    d = r_dataset("lr", ident)
    key = f"lr/{ident}/{rho}/"
    weighting = "fh" if rho else "logrank"
    ours = logrank_test(d["time"], d["event"], d["group"], weighting=weighting, rho=float(rho))
    assert ours.statistic == pytest.approx(r_values(key + "chisq")[0], abs=1e-8)
    np.testing.assert_allclose(ours.observed, r_values(key + "obs"), atol=1e-8)
    np.testing.assert_allclose(ours.expected, r_values(key + "exp"), atol=1e-8)
    strat = logrank_test(
        d["time"], d["event"], d["group"], strata=d["stratum"], weighting=weighting, rho=float(rho)
    )
    assert strat.statistic == pytest.approx(r_values(key + "strat_chisq")[0], abs=1e-8)


def test_identical_groups_give_zero_statistic():
    t = np.array([1.0, 2, 3, 4, 5, 6])
    e = np.array([1, 0, 1, 1, 0, 1])
    res = logrank_test(np.r_[t, t], np.r_[e, e], np.r_[np.zeros(6), np.ones(6)])
    assert res.statistic == pytest.approx(0.0, abs=1e-14)
    assert res.p_value == pytest.approx(1.0)


def test_no_events_gives_undefined_p_value():
    res = logrank_test([1, 2, 3, 4], [0, 0, 0, 0], [0, 0, 1, 1])
    assert res.statistic == 0.0 and res.df == 0 and np.isnan(res.p_value)


def test_input_errors():
    with pytest.raises(ValueError, match="at least two distinct"):
        logrank_test([1, 2], [1, 1], ["a", "a"])
    with pytest.raises(ValueError, match=r"group\[1\] is missing"):
        logrank_test([1, 2, 3], [1, 1, 0], pd.Series(["a", None, "b"]))
    with pytest.raises(ValueError, match="weighting"):
        logrank_test([1, 2], [1, 1], [0, 1], weighting="peto")
    with pytest.raises(ValueError, match="rho/gamma apply only"):
        logrank_test([1, 2], [1, 1], [0, 1], rho=1.0)
    with pytest.raises(ValueError, match="same length"):
        logrank_test([1, 2, 3], [1, 1, 0], [0, 1])


labelled = st.integers(min_value=4, max_value=50).flatmap(
    lambda n: st.tuples(
        st.lists(st.integers(0, 30), min_size=n, max_size=n),
        st.lists(st.booleans(), min_size=n, max_size=n),
        st.lists(st.integers(0, 2), min_size=n, max_size=n),
    )
)


@settings(max_examples=150, deadline=None)
@given(labelled, st.randoms(use_true_random=False))
def test_property_p_value_in_unit_interval_and_label_invariance(data, rnd):
    t, e, g = (np.asarray(x) for x in data)
    if np.unique(g).size < 2:
        return
    res = logrank_test(t, e, g)
    assert res.statistic >= 0
    assert np.isnan(res.p_value) or 0.0 <= res.p_value <= 1.0
    assert res.observed.sum() == pytest.approx(e.sum())
    assert res.expected.sum() == pytest.approx(e.sum())
    # relabelling groups and shuffling rows change nothing
    order = list(range(len(t)))
    rnd.shuffle(order)
    names = np.array(["zeta", "alpha", "mid"])[g]
    other = logrank_test(t[order], e[order], names[order])
    assert other.statistic == pytest.approx(res.statistic, rel=1e-9, abs=1e-12)


def test_weights_argument_is_the_same_choice_as_weighting():
    """``weights=("fh", rho, gamma)`` (the issue's spelling) equals weighting="fh"."""
    rng = np.random.default_rng(7)
    t = rng.integers(1, 100, 80).astype(float)
    e = rng.integers(0, 2, 80)
    g = np.repeat([0, 1], 40)
    a = logrank_test(t, e, g, weights=("fh", 1.0, 0.5))
    b = logrank_test(t, e, g, weighting="fh", rho=1.0, gamma=0.5)
    assert a.statistic == b.statistic and a.p_value == b.p_value
    assert logrank_test(t, e, g, weights=None).p_value == logrank_test(t, e, g).p_value
    assert (
        logrank_test(t, e, g, weights="tarone-ware").p_value
        == logrank_test(t, e, g, weighting="tarone-ware").p_value
    )
    with pytest.raises(ValueError, match="weights must be"):
        logrank_test(t, e, g, weights=("fh", 1.0))
