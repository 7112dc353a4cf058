"""Aalen–Johansen cumulative incidence and Gray's test.

Checked against R cmprsk (stored reference values: CIF, variance, Gray's test with
groups, strata and rho), lifelines ``AalenJohansenFitter`` and scikit-survival
``cumulative_incidence_competing_risks``, hand-worked examples and properties.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from stats_testdata import r_dataset, r_reference, r_values

from cartrial.stats import cumulative_incidence, gray_test, kaplan_meier, logrank_test

pytestmark = pytest.mark.filterwarnings("ignore")


def random_competing(seed: int, n: int | None = None, tied: bool = True):
    rng = np.random.default_rng(500 + seed)
    n = int(rng.integers(10, 150)) if n is None else n
    t = rng.exponential(10.0, n)
    t = np.floor(t) + 1.0 if tied else np.round(t, 6)
    cause = rng.choice([0, 1, 2, 3], n, p=[0.3, 0.35, 0.25, 0.1])
    return t, cause


def test_hand_worked_cif_and_cmprsk_variance():
    # times 1 2 3 4, causes 1 2 0 1 (n = 4)
    # t=1: n=4, cause 1 -> F1 = 1/4, S = 3/4
    # t=2: n=3, cause 2 -> F2 = 3/4 * 1/3 = 1/4, S = 1/2
    # t=3: censored;  t=4: n=1, cause 1 -> F1 = 1/4 + 1/2 = 3/4, S = 0
    # Aalen/cmprsk variance of F1(4) (module docstring formula):
    #   t=1: (1/16) (1 - (3/4-1/4)/(3/4))^2 = 1/144
    #   t=2: other cause, S(t-)^2/n^2 = 1/16, ((3/4-1/4)/(1/2))^2 = 1 -> 1/16
    #   t=4: S(t-)^2/n^2 = 1/4, S(4) = 0 drops the 1/S part -> 1/4
    #   total 46/144
    ci = cumulative_incidence([1, 2, 3, 4], [1, 2, 0, 1])
    np.testing.assert_allclose(ci.cif[:, 0], [1 / 4, 1 / 4, 1 / 4, 3 / 4])
    np.testing.assert_allclose(ci.cif[:, 1], [0, 1 / 4, 1 / 4, 1 / 4])
    assert ci.std_err[0, 0] ** 2 == pytest.approx(1 / 16)
    assert ci.std_err[3, 0] ** 2 == pytest.approx(46 / 144)
    assert ci.std_err[1, 1] ** 2 == pytest.approx(10 / 144)  # 1/144 + 9/144
    assert ci.at(3.5, 1).estimate == pytest.approx(0.25)
    assert ci.at(0.5, 2) == (0.0, 0.0, 0.0)
    tab = ci.table
    assert list(tab.columns) == [
        "time", "cause", "n_risk", "n_event", "cif", "std_err", "lower", "upper"
    ]  # fmt: skip
    assert len(tab) == 8


CR_IDS = sorted({int(i) for i in r_reference()["data"]["cr"]["id"]})


@pytest.mark.parametrize("ident", CR_IDS)
def test_cif_and_variance_match_r_cmprsk(ident):
    d = r_dataset("cr", ident)
    ci = cumulative_incidence(d["time"], d["cause"])
    times = r_values(f"cr/{ident}/times")
    for cause in (1, 2):
        est = r_values(f"cr/{ident}/est/{cause}")
        var = r_values(f"cr/{ident}/var/{cause}")
        ours = ci.at(times, cause)
        np.testing.assert_allclose(ours.estimate, est, atol=1e-10)
        j = int(np.flatnonzero(ci.causes == cause)[0])
        idx = np.searchsorted(ci.time, times, side="right") - 1
        np.testing.assert_allclose(ci.std_err[idx, j] ** 2, var, atol=1e-10)


@pytest.mark.parametrize("ident", CR_IDS)
@pytest.mark.parametrize("rho", [0, 1])
@pytest.mark.parametrize("stratified", [False, True])
def test_gray_test_matches_r_cmprsk(ident, rho, stratified):
    d = r_dataset("cr", ident)
    name = "gray_strata" if stratified else "gray"
    for cause in (1, 2):
        stat, pv, df = r_values(f"cr/{ident}/{name}/{rho}/{cause}")
        res = gray_test(
            d["time"],
            d["cause"],
            d["group"],
            cause_of_interest=cause,
            strata=d["stratum"] if stratified else None,
            rho=float(rho),
        )
        assert res.statistic == pytest.approx(stat, abs=1e-8)
        assert res.p_value == pytest.approx(pv, abs=1e-8)
        assert res.df == int(df)


@pytest.mark.parametrize("seed", range(30))
def test_delta_variance_matches_lifelines_aalen_johansen(seed):
    from lifelines import AalenJohansenFitter

    t, cause = random_competing(seed, tied=False)  # no ties: lifelines would jitter
    ci = cumulative_incidence(t, cause, variance="delta")
    for c in (1, 2):
        if not (cause == c).any():
            continue
        ref = AalenJohansenFitter(calculate_variance=True).fit(t, cause, event_of_interest=c)
        j = int(np.flatnonzero(ci.causes == c)[0])
        cif = ref.cumulative_density_.iloc[:, 0].loc[ci.time].to_numpy()
        np.testing.assert_allclose(ci.cif[:, j], cif, atol=1e-12)
        var = pd.Series(ref.variance_.to_numpy(), index=ref.cumulative_density_.index)
        var = var.loc[ci.time].to_numpy()
        ok = np.isfinite(var)  # lifelines: NaN where all remaining subjects fail
        np.testing.assert_allclose(ci.std_err[ok, j] ** 2, var[ok], atol=1e-12)
        bounds = ref.confidence_interval_.loc[ci.time].to_numpy()
        pos = ok & (ci.cif[:, j] > 0)
        np.testing.assert_allclose(ci.lower[pos, j], bounds[pos].min(axis=1), atol=1e-10)
        np.testing.assert_allclose(ci.upper[pos, j], bounds[pos].max(axis=1), atol=1e-10)


@pytest.mark.parametrize("seed", range(30))
def test_matches_scikit_survival(seed):
    from sksurv.nonparametric import cumulative_incidence_competing_risks as sk_cif

    t, cause = random_competing(seed, tied=seed % 2 == 1)
    at_end = t == t.max()
    cause[at_end] = 0  # sksurv's delta variance is NaN when the last time is an event
    inner = np.flatnonzero(~at_end)[:3]
    cause[inner] = [1, 2, 3]  # sksurv needs every cause 1..K present
    x, y = sk_cif(cause, t)
    ci = cumulative_incidence(t, cause)
    np.testing.assert_allclose(ci.time, x)
    np.testing.assert_allclose(ci.cif, y[1:].T, atol=1e-12)
    np.testing.assert_allclose(1.0 - ci.survival, y[0], atol=1e-12)
    # with no ties scikit-survival's "Aalen" variance is cmprsk's, and "Dinse_Approx" is
    # the delta method; compare the log(-log) intervals they give
    if seed % 2 == 0:
        _, _, band = sk_cif(cause, t, conf_type="log-log", var_type="Aalen")
        np.testing.assert_allclose(ci.lower, band[1:, 0].T, atol=1e-10)
        np.testing.assert_allclose(ci.upper, band[1:, 1].T, atol=1e-10)
    delta = cumulative_incidence(t, cause, variance="delta")
    _, _, band = sk_cif(cause, t, conf_type="log-log", var_type="Dinse_Approx")
    np.testing.assert_allclose(delta.lower, band[1:, 0].T, atol=1e-10)
    np.testing.assert_allclose(delta.upper, band[1:, 1].T, atol=1e-10)


@pytest.mark.parametrize("seed", range(5))
def test_gray_without_competing_events_is_a_log_rank_score(seed):
    # With a single cause, F_k = 1 - S_k and Gray's risk sets are the ordinary ones,
    # so the score equals the log-rank O - E exactly.  Gray's variance is a different
    # (asymptotic, not hypergeometric) estimator: under the null the two statistics
    # agree closely; under an alternative they drift apart (R cmprsk does the same).
    rng = np.random.default_rng(seed)
    n = 400
    g = rng.integers(0, 2, n)
    t = np.floor(rng.exponential(10.0, n)) + 1.0
    e = (rng.random(n) < 0.7).astype(int)
    gray = gray_test(t, e, g)
    lr = logrank_test(t, e, g)
    np.testing.assert_allclose(gray.score, lr.observed - lr.expected, atol=1e-9)
    assert gray.statistic == pytest.approx(lr.statistic, rel=0.03)
    assert gray.p_value == pytest.approx(lr.p_value, rel=0.03)


def test_gray_identical_groups_statistic_zero():
    t, cause = random_competing(4, n=60)
    res = gray_test(np.r_[t, t], np.r_[cause, cause], np.r_[np.zeros(60), np.ones(60)])
    assert res.statistic == pytest.approx(0.0, abs=1e-12)
    assert res.p_value == pytest.approx(1.0)


def test_gray_input_errors():
    with pytest.raises(ValueError, match="does not occur"):
        gray_test([1, 2, 3], [2, 2, 0], [0, 1, 1])
    with pytest.raises(ValueError, match="at least two distinct"):
        gray_test([1, 2, 3], [1, 2, 0], [0, 0, 0])
    with pytest.raises(ValueError, match=r"cause\[1\] = -1"):
        cumulative_incidence([1, 2], [1, -1])
    with pytest.raises(ValueError, match=r"cause\[0\] = 1.5"):
        cumulative_incidence([1, 2], [1.5, 1])
    with pytest.raises(ValueError, match="not observed"):
        cumulative_incidence([1, 2], [1, 0]).at(1.0, 2)


competing_data = st.integers(min_value=2, max_value=50).flatmap(
    lambda n: st.tuples(
        st.lists(st.integers(0, 25), min_size=n, max_size=n),
        st.lists(st.integers(0, 3), min_size=n, max_size=n),
        st.lists(st.integers(0, 1), min_size=n, max_size=n),
    )
)


@settings(max_examples=150, deadline=None)
@given(competing_data, st.randoms(use_true_random=False))
def test_property_aalen_johansen_identity_and_invariance(data, rnd):
    t, cause, group = (np.asarray(x) for x in data)
    ci = cumulative_incidence(t, cause)
    km = kaplan_meier(t, cause > 0)
    # sum of the cause-specific incidences plus all-cause survival is 1 at every time
    np.testing.assert_allclose(ci.cif.sum(axis=1) + km.survival, 1.0, atol=1e-12)
    assert (np.diff(ci.cif, axis=0) >= -1e-15).all()
    assert ((ci.lower <= ci.cif + 1e-12) & (ci.cif <= ci.upper + 1e-12)).all()
    assert ((ci.lower >= 0) & (ci.upper <= 1)).all()
    if np.unique(group).size == 2 and (cause == 1).any():
        res = gray_test(t, cause, group)
        # cmprsk's variance estimator can make the statistic slightly negative in
        # degenerate samples (see test_gray_degenerate_case_matches_cmprsk); p stays in [0, 1]
        assert np.isnan(res.p_value) or 0 <= res.p_value <= 1
        order = list(range(len(t)))
        rnd.shuffle(order)
        again = gray_test(t[order], cause[order], group[order])
        assert again.statistic == pytest.approx(res.statistic, rel=1e-9, abs=1e-12)


def test_gray_degenerate_case_matches_cmprsk():
    """A tiny tied sample where cmprsk's statistic is negative.

    R 4.2.2, cmprsk 2.2-11: ``cuminc(t, c, g)$Tests`` gives stat -0.1678612, pv 1 for
    cause 1 and stat 0.2, pv 0.6547208 for cause 2.
    """
    t = [1, 0, 0, 0, 1, 0, 1, 0, 0, 0, 0, 0]
    c = [1, 0, 0, 0, 1, 0, 1, 0, 0, 0, 0, 2]
    g = [0, 0, 0, 0, 1, 0, 1, 0, 0, 0, 0, 0]
    one = gray_test(t, c, g, cause_of_interest=1)
    assert one.statistic == pytest.approx(-0.1678612, abs=1e-7)
    assert one.p_value == 1.0
    two = gray_test(t, c, g, cause_of_interest=2)
    assert two.statistic == pytest.approx(0.2, abs=1e-9)
    assert two.p_value == pytest.approx(0.6547208, abs=1e-7)
