"""Fine–Gray subdistribution-hazard regression.

Checked against R cmprsk 2.2-11 ``crr``/``predict.crr`` on random datasets with ties
(stored in data/timedep_reference.json by data/make_timedep_reference.py), against
statsmodels' Breslow Cox model with a robust variance where there are no competing
events (then Fine–Gray is that model), and by properties.
"""

from __future__ import annotations

import json
from functools import cache

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from stats_testdata import DATA

from cartrial.stats import fine_gray

pytestmark = pytest.mark.filterwarnings("ignore")


@cache
def reference() -> dict:
    return json.loads((DATA / "timedep_reference.json").read_text())


def r_vals(key: str) -> np.ndarray:
    return np.array([np.nan if v is None else v for v in reference()["r"][key]], dtype=float)


def fg_set(ident: int) -> pd.DataFrame:
    d = pd.DataFrame(reference()["data"]["fg"])
    return d[d["dataset"] == ident].reset_index(drop=True)


FG_IDS = sorted(set(reference()["data"]["fg"]["dataset"]))


@pytest.mark.parametrize("ident", FG_IDS)
def test_matches_r_crr(ident):
    d = fg_set(ident)
    k = f"fg/{ident}/"
    res = fine_gray(d["time"], d["cause"], d[["z1", "z2", "z3"]])
    np.testing.assert_allclose(res.coef, r_vals(k + "coef"), atol=1e-6)
    # R stores matrices column-major
    np.testing.assert_allclose(res.var.ravel(order="F"), r_vals(k + "var"), atol=1e-6)
    np.testing.assert_allclose(res.information.ravel(order="F"), r_vals(k + "inf"), atol=1e-6)
    assert res.loglik == pytest.approx(r_vals(k + "loglik")[0], abs=1e-6)
    assert res.loglik_null == pytest.approx(r_vals(k + "loglik_null")[0], abs=1e-6)
    assert res.converged == bool(r_vals(k + "converged")[0])
    np.testing.assert_array_equal(res.uftime, r_vals(k + "uftime"))
    np.testing.assert_allclose(res.bfitj, r_vals(k + "bfitj"), atol=1e-9)
    pred = res.predict_cif(np.array([[0, 0, 0], [1, 1, -0.5]]))
    np.testing.assert_allclose(pred["cif_0"], r_vals(k + "pred1"), atol=1e-9)
    np.testing.assert_allclose(pred["cif_1"], r_vals(k + "pred2"), atol=1e-9)
    s = res.summary
    assert s["covariate"].tolist() == ["z1", "z2", "z3"]
    np.testing.assert_allclose(s["se"], np.sqrt(np.diag(res.var)))
    np.testing.assert_allclose(s["hr"], np.exp(s["coef"]))
    np.testing.assert_allclose(s["lower"], np.exp(s["coef"] - 1.959963984540054 * s["se"]))
    assert res.n == len(d) and res.n_events == int((d["cause"] == 1).sum())
    assert res.n_competing + res.n_censored + res.n_events == res.n


@pytest.mark.parametrize("ident", FG_IDS)
def test_matches_r_crr_other_cause(ident):
    d = fg_set(ident)
    res = fine_gray(d["time"], d["cause"], d[["z1"]], failcode=2)
    np.testing.assert_allclose(res.coef, r_vals(f"fg/{ident}/c2/coef"), atol=1e-6)
    np.testing.assert_allclose(res.var.ravel(), r_vals(f"fg/{ident}/c2/var"), atol=1e-6)


def test_meaning_is_stated():
    d = fg_set(0)
    res = fine_gray(d["time"], d["cause"], d[["z2"]])
    assert res.meaning == (
        "the subdistribution hazard ratio describes the cumulative incidence of relapse, "
        "not the cause-specific relapse rate"
    )


@pytest.mark.parametrize("seed", range(4))
def test_without_competing_events_is_breslow_cox_with_robust_variance(seed):
    """No competing events: every weight is 1 and psi = 0, so Fine–Gray is the Cox model
    (Breslow ties) with the Lin–Wei robust sandwich variance."""
    from statsmodels.duration.hazard_regression import PHReg

    rng = np.random.default_rng(seed)
    n = 80
    x = np.column_stack([rng.normal(size=n).round(2), rng.integers(0, 2, n)])
    t = np.floor(rng.exponential(10 * np.exp(-0.5 * x[:, 0]))) + 1
    cause = (rng.random(n) < 0.7).astype(int)  # 1 = event, 0 = censored, no cause 2
    ours = fine_gray(t, cause, x, gtol=1e-12, maxiter=50)
    model = PHReg(t, x, status=cause.astype(float), ties="breslow")
    ref = model.fit(groups=np.arange(n))
    np.testing.assert_allclose(ours.coef, ref.params, atol=1e-8)
    # statsmodels' robust covariance carries no n/(n-1) factor
    np.testing.assert_allclose(ours.var, ref.cov_params(), rtol=1e-6, atol=1e-12)


def test_predict_at_given_times_is_a_step_function():
    d = fg_set(1)
    res = fine_gray(d["time"], d["cause"], d[["z1", "z2", "z3"]])
    z = [0.5, 1, 0]
    at_fail = res.predict_cif(z)
    first, last = res.uftime[0], res.uftime[-1]
    p = res.predict_cif(z, times=[0.0, first, (first + res.uftime[1]) / 2, last + 100])
    assert p["cif"].iloc[0] == 0.0
    assert p["cif"].iloc[1] == at_fail["cif"].iloc[0]
    assert p["cif"].iloc[2] == at_fail["cif"].iloc[0]
    assert p["cif"].iloc[3] == at_fail["cif"].iloc[-1]
    with pytest.raises(ValueError, match="z has 2 values per profile"):
        res.predict_cif([1, 2])


def test_errors_name_the_problem():
    with pytest.raises(ValueError, match=r"no events \(cause == 1 is 0 in every row\)"):
        fine_gray([1, 2, 3], [0, 2, 2], [0.0, 1.0, 0.0])
    with pytest.raises(ValueError, match="covariate 'x' is constant"):
        fine_gray([1, 2, 3], [1, 2, 0], [1.0, 1.0, 1.0])
    with pytest.raises(ValueError, match=r"cause\[1\] = -1"):
        fine_gray([1, 2, 3], [1, -1, 0], [0.0, 1.0, 0.0])
    with pytest.raises(ValueError, match="information matrix is singular"):
        # x = 1 only in a patient censored before the first failure
        fine_gray([1, 1, 1, 2, 2], [0, 0, 0, 1, 1], [0.0, 0.0, 1.0, 0.0, 0.0])
    with pytest.raises(ValueError, match="covariates row 2, column 'age' is missing"):
        fine_gray([1, 2, 3], [1, 2, 0], pd.DataFrame({"age": [40, 50, None]}))


@st.composite
def competing_data(draw):
    n = draw(st.integers(8, 40))
    t = draw(st.lists(st.integers(1, 20), min_size=n, max_size=n))
    c = draw(st.lists(st.sampled_from([0, 1, 1, 2]), min_size=n, max_size=n))
    x = draw(st.lists(st.integers(0, 1), min_size=n, max_size=n))
    return np.array(t, float), np.array(c), np.array(x, float)


@settings(max_examples=40, deadline=None)
@given(competing_data(), st.floats(-3, 3), st.floats(0.5, 4))
def test_property_location_shift_and_time_scale_invariance(data, shift, scale):
    t, c, x = data
    if (c == 1).sum() < 2 or x.min() == x.max():
        return
    try:
        base = fine_gray(t, c, x)
    except ValueError as exc:
        assert "singular" in str(exc)
        return
    if not base.converged or abs(base.coef[0]) > 5:
        return  # near-monotone data: nothing stable to compare
    moved = fine_gray(t * scale, c, x + shift)
    # the coefficient ignores a shift of the covariate and the time unit
    assert moved.coef[0] == pytest.approx(base.coef[0], abs=1e-7)
    assert moved.var[0, 0] == pytest.approx(base.var[0, 0], rel=1e-6)
    # predictions for the same patient do not change
    p0 = base.predict_cif([1.0])["cif"].to_numpy()
    p1 = moved.predict_cif([1.0 + shift])["cif"].to_numpy()
    np.testing.assert_allclose(p1, p0, atol=1e-7)
    assert ((p0 >= 0) & (p0 <= 1)).all() and (np.diff(p0) >= -1e-15).all()


def test_monotone_likelihood_is_flagged_not_silent():
    # no relapse (cause 1) in group x = 1: the subdistribution HR runs to 0
    rng = np.random.default_rng(3)
    x = np.repeat([0.0, 1.0], 20)
    t = np.floor(rng.exponential(10, 40)) + 1
    c = rng.choice([0, 1, 2], 40)
    c[(x == 1) & (c == 1)] = 2
    res = fine_gray(t, c, x)
    assert not res.converged and res.n_iter == 10
    assert "monotone likelihood" in res.warning
    ok = fine_gray(*(lambda d: (d["time"], d["cause"], d[["z1"]]))(fg_set(2)))
    assert ok.converged and ok.warning is None
