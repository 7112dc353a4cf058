"""Binomial intervals, Fisher's exact test and the chi-square test.

Checked against statsmodels ``proportion_confint``, SciPy, R ``fisher.test`` (stored
reference values) and published Wilson intervals.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from stats_testdata import r_reference, r_values

from cartrial.stats import binomial_ci, chi2_test, fisher_exact

pytestmark = pytest.mark.filterwarnings("ignore")


def test_wilson_published_intervals():
    # Wilson 95% intervals: 19/20 -> 76.4-99.1%, 17/20 -> 64.0-94.8% (Newcombe 1998, Table I
    # style; the figures quoted in CAR-T trial reports for 19/20 and 17/20 responders)
    est, lo, hi = binomial_ci(19, 20)
    assert est == 0.95
    assert (round(100 * lo, 1), round(100 * hi, 1)) == (76.4, 99.1)
    _, lo, hi = binomial_ci(17, 20)
    assert (round(100 * lo, 1), round(100 * hi, 1)) == (64.0, 94.8)


@pytest.mark.parametrize(
    ("ours", "theirs"),
    [("wilson", "wilson"), ("clopper-pearson", "beta"), ("agresti-coull", "agresti_coull"),
     ("wald", "normal"), ("jeffreys", "jeffreys")],
)  # fmt: skip
@pytest.mark.parametrize("conf_level", [0.9, 0.95, 0.99])
def test_matches_statsmodels_proportion_confint(ours, theirs, conf_level):
    from statsmodels.stats.proportion import proportion_confint

    n = np.repeat(np.arange(1, 61), 61)
    k = np.tile(np.arange(61), 60)
    keep = k <= n
    k, n = k[keep], n[keep]
    est, lo, hi = binomial_ci(k, n, method=ours, conf_level=conf_level)
    ref_lo, ref_hi = proportion_confint(k, n, alpha=1 - conf_level, method=theirs)
    ref_lo, ref_hi = np.clip(ref_lo, 0, 1), np.clip(ref_hi, 0, 1)
    np.testing.assert_allclose(est, k / n)
    if ours == "jeffreys":
        # Brown et al. (2001): lower = 0 at k = 0, upper = 1 at k = n; statsmodels does not
        inner = (k > 0) & (k < n)
        np.testing.assert_allclose(lo[inner], ref_lo[inner], atol=1e-10)
        np.testing.assert_allclose(hi[inner], ref_hi[inner], atol=1e-10)
        assert (lo[k == 0] == 0).all() and (hi[k == n] == 1).all()
    else:
        np.testing.assert_allclose(lo, ref_lo, atol=1e-10)
        np.testing.assert_allclose(hi, ref_hi, atol=1e-10)


def test_clopper_pearson_hand_values():
    # k = 0: upper = 1 - (alpha/2)^(1/n); k = n: lower = (alpha/2)^(1/n)
    _, lo, hi = binomial_ci(0, 10, method="clopper-pearson")
    assert lo == 0.0 and hi == pytest.approx(1 - 0.025 ** (1 / 10))
    _, lo, hi = binomial_ci(10, 10, method="clopper-pearson")
    assert hi == 1.0 and lo == pytest.approx(0.025 ** (1 / 10))


def test_binomial_input_errors():
    with pytest.raises(ValueError, match="k must be <= n"):
        binomial_ci(5, 3)
    with pytest.raises(ValueError, match="at least one trial"):
        binomial_ci(0, 0)
    with pytest.raises(ValueError, match="whole number"):
        binomial_ci(2.5, 10)
    with pytest.raises(ValueError, match="method"):
        binomial_ci(2, 10, method="bayes")


@settings(max_examples=200, deadline=None)
@given(
    st.integers(1, 500).flatmap(lambda n: st.tuples(st.integers(0, n), st.just(n))),
    st.sampled_from(["wilson", "clopper-pearson", "jeffreys", "agresti-coull", "wald"]),
)
def test_property_interval_contains_estimate_and_is_symmetric(kn, method):
    k, n = kn
    est, lo, hi = binomial_ci(k, n, method=method)
    assert 0 <= lo <= est <= hi <= 1
    _, lo2, hi2 = binomial_ci(n - k, n, method=method)
    assert lo2 == pytest.approx(1 - hi, abs=1e-12) and hi2 == pytest.approx(1 - lo, abs=1e-12)


# --------------------------------------------------------------------------- Fisher


def test_fisher_2x2_matches_scipy_and_r_conditional_odds_ratio():
    from scipy.stats import fisher_exact as sp_fisher

    res = fisher_exact([[3, 1], [1, 3]])
    assert res.p_value == pytest.approx(sp_fisher([[3, 1], [1, 3]]).pvalue)
    assert res.p_value == pytest.approx(0.4857142857, abs=1e-9)  # R fisher.test: 0.4857
    assert res.odds_ratio == pytest.approx(6.408309, rel=1e-5)  # R conditional MLE
    assert res.sample_odds_ratio == 9.0
    less = fisher_exact([[3, 1], [1, 3]], alternative="less")
    assert less.p_value == pytest.approx(sp_fisher([[3, 1], [1, 3]], "less").pvalue)


FISHER = r_reference()["data"]["fisher"]


@pytest.mark.parametrize("ident", range(len(FISHER)))
def test_fisher_rxc_exact_matches_r(ident):
    table = np.array(FISHER[ident])
    res = fisher_exact(table)
    assert res.method.startswith("exact")
    assert res.p_value == pytest.approx(r_values(f"fisher/{ident}")[0], rel=1e-9, abs=1e-14)
    assert fisher_exact(table.T).p_value == pytest.approx(res.p_value, rel=1e-12)


@pytest.mark.parametrize(
    "table", [[[2, 1, 0], [1, 1, 2]], [[1, 2, 1], [2, 0, 1]], [[3, 0], [0, 2], [1, 1]]]
)
def test_fisher_rxc_exact_matches_scipy_exhaustive_permutation(table):
    import scipy.stats as st_

    exact = st_.fisher_exact(table, method=st_.PermutationMethod(n_resamples=np.inf))
    assert fisher_exact(table).p_value == pytest.approx(exact.pvalue, abs=1e-12)


def test_fisher_larger_tables_use_seeded_monte_carlo():
    table = [[3, 1, 2], [1, 5, 2], [2, 2, 2]]
    a, b = fisher_exact(table), fisher_exact(table)
    assert a.method.startswith("Monte Carlo") and a.p_value == b.p_value
    assert a.p_value == pytest.approx(0.4771482, abs=0.01)  # R fisher.test exact value


def test_fisher_input_errors():
    with pytest.raises(ValueError, match=r"table\[0, 1\]"):
        fisher_exact([[1, -1], [2, 3]])
    with pytest.raises(ValueError, match="two rows and two columns"):
        fisher_exact([[1, 2, 3]])
    with pytest.raises(ValueError, match="only for 2 x 2"):
        fisher_exact([[1, 2, 3], [3, 2, 1]], alternative="less")


# --------------------------------------------------------------------------- chi-square


def test_chi2_matches_scipy_and_hand_value():
    from scipy.stats import chi2_contingency

    table = [[10, 5], [3, 12]]
    res = chi2_test(table)
    ref = chi2_contingency(table)
    assert res.statistic == pytest.approx(ref.statistic) and res.p_value == pytest.approx(
        ref.pvalue
    )
    # without correction, by hand: expected [[6.5, 8.5], [6.5, 8.5]];
    # X2 = 2 * (3.5^2/6.5 + 3.5^2/8.5) = 6.6515837...
    plain = chi2_test(table, correction=False)
    assert plain.statistic == pytest.approx(2 * (3.5**2 / 6.5 + 3.5**2 / 8.5))
    assert plain.min_expected == 6.5 and plain.low_expected_fraction == 0.0
    assert res.correction and not plain.correction


def test_chi2_flags_small_expected_counts():
    res = chi2_test([[1, 2, 8], [3, 1, 9]])
    assert res.df == 2
    assert res.low_expected_fraction == pytest.approx(4 / 6)
    with pytest.raises(ValueError, match="empty row or column"):
        chi2_test([[0, 0], [1, 2]])
