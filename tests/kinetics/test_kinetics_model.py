"""The Stein et al. 2019 multiphasic model: closed forms, likelihood, fit recovery."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import integrate, stats
from scipy.optimize import approx_fprime

from cartrial.kinetics import model as M
from cartrial.kinetics.model import (
    DENSE_SCHEDULE_30,
    PARAM_NAMES,
    TYPICAL_TISAGENLECLEUCEL,
    fit_multiphasic,
    fit_table,
    multiphasic_auc,
    multiphasic_curve,
    simulate_profile,
)

REALISTIC_DAYS = np.array([0, 1, 4, 7, 10, 14, 21, 28, 60, 90, 180, 270, 365], float)
DENSE_DAYS = DENSE_SCHEDULE_30


def test_closed_form_auc_typical_tisagenlecleucel():
    # KINETICS.md: AUC0-28 with the typical values ≈ 171,774 copies/µg·day
    assert multiphasic_auc(0, 28, TYPICAL_TISAGENLECLEUCEL) == pytest.approx(171774, abs=1)


@pytest.mark.parametrize("a,b", [(0, 28), (0, 5), (3, 9.3), (2, 400), (20, 84), (9.3, 9.3)])
def test_closed_form_auc_matches_numerical_integration(a, b):
    rng = np.random.default_rng(int(a * 10 + b))
    p = {k: v * math.exp(rng.normal(0, 0.3)) for k, v in TYPICAL_TISAGENLECLEUCEL.items()}
    f = lambda t: float(multiphasic_curve(t, *(p[k] for k in PARAM_NAMES)))  # noqa: E731
    pts = [p["tmax"]] if a < p["tmax"] < b else None
    expected = integrate.quad(f, a, b, points=pts, limit=200, epsabs=1e-6, epsrel=1e-11)[0]
    assert multiphasic_auc(a, b, p) == pytest.approx(expected, rel=1e-8, abs=1e-6)


def test_curve_shape_and_derived_quantities():
    p = TYPICAL_TISAGENLECLEUCEL
    c = multiphasic_curve(np.array([0.0, p["tmax"]]), *(p[k] for k in PARAM_NAMES))
    assert c[0] == pytest.approx(p["cmax"] / p["foldx"])  # R0 = Cmax/foldx
    assert c[1] == pytest.approx(p["cmax"])
    fit = M.MultiphasicFit(params=dict(p), se={}, sigma=0.5, estimable=True, reason="", lloq=50.0)
    # KINETICS.md: doubling ≈ 0.78 d, fast half-life ≈ 4.3 d, slow ≈ 217 d
    assert fit.doubling_time == pytest.approx(math.log(2) * 9.3 / math.log(3900))
    assert fit.doubling_time == pytest.approx(0.78, abs=0.01)
    assert fit.half_life_fast == pytest.approx(4.33, abs=0.01)
    assert fit.half_life_slow == pytest.approx(216.6, abs=0.1)
    tb = fit.time_below_lloq
    assert float(fit.predict(tb)) == pytest.approx(50.0, rel=1e-6)
    assert float(fit.predict(tb - 1)) > 50.0 > float(fit.predict(tb + 1))


def _likelihood_args(days, values, lloq):
    q = values >= lloq
    t = np.concatenate((days[q], days[~q]))
    y = np.concatenate((np.log(values[q]), np.full((~q).sum(), math.log(lloq))))
    return t, y, int(q.sum())


def test_likelihood_matches_scipy_and_gradient_is_exact():
    rng = np.random.default_rng(3)
    v = simulate_profile(TYPICAL_TISAGENLECLEUCEL, REALISTIC_DAYS, 0.5, lloq=100.0, rng=rng)
    t, y, n_obs = _likelihood_args(REALISTIC_DAYS, v, 100.0)
    assert 0 < n_obs < len(t)  # both quantifiable and censored samples
    theta = M._theta_from(TYPICAL_TISAGENLECLEUCEL, 0.5) + rng.normal(0, 0.2, 7)
    nll, grad = M._nll_grad(theta, t, y, n_obs)
    p, sigma = M._params_from(theta)
    mu = np.log(multiphasic_curve(t, *(p[k] for k in PARAM_NAMES)))
    expected = -(
        stats.norm.logpdf(y[:n_obs], mu[:n_obs], sigma).sum()
        + stats.norm.logcdf(y[n_obs:], mu[n_obs:], sigma).sum()
    )
    assert nll == pytest.approx(expected, rel=1e-10)
    numeric = approx_fprime(theta, lambda th: M._nll_grad(th, t, y, n_obs)[0], 1e-7)
    np.testing.assert_allclose(grad, numeric, rtol=1e-4, atol=1e-4)


def test_standard_errors_match_an_independent_numerical_hessian():
    rng = np.random.default_rng(8)
    v = simulate_profile(TYPICAL_TISAGENLECLEUCEL, DENSE_DAYS, 0.3, lloq=20.0, rng=rng)
    fit = fit_multiphasic(DENSE_DAYS, v, 20.0)
    t, y, n_obs = _likelihood_args(DENSE_DAYS, v, 20.0)
    f = lambda th: M._nll_grad(th, t, y, n_obs)[0]  # noqa: E731
    th, h = fit.theta, 1e-3
    H = np.empty((7, 7))
    for i in range(7):  # second differences of the function value only
        for j in range(7):
            ei, ej = np.eye(7)[i] * h, np.eye(7)[j] * h
            H[i, j] = (f(th + ei + ej) - f(th + ei - ej) - f(th - ei + ej) + f(th - ei - ej)) / (
                4 * h * h
            )
    # the fit inflates the ML covariance by n/(n - p): n quantifiable points, p = 7 parameters
    n = fit.n_quantifiable
    sd = np.sqrt(np.diag(np.linalg.inv(H)) * n / (n - 7))
    p = fit.params
    expected = {
        "foldx": p["foldx"] * sd[0],
        "tmax": p["tmax"] * sd[1],
        "cmax": p["cmax"] * sd[2],
        "alpha": p["alpha"] * sd[3],
        "fb": p["fb"] * (1 - p["fb"]) * sd[4],
        "beta": p["beta"] * sd[5],
    }
    for k, e in expected.items():
        assert fit.se[k] == pytest.approx(e, rel=0.05), k


def test_simulate_profile_is_seeded_and_reports_blq_as_zero():
    a = simulate_profile(TYPICAL_TISAGENLECLEUCEL, REALISTIC_DAYS, 0.56, lloq=50.0, rng=7)
    b = simulate_profile(TYPICAL_TISAGENLECLEUCEL, REALISTIC_DAYS, 0.56, lloq=50.0, rng=7)
    np.testing.assert_array_equal(a, b)
    assert a[0] == 0.0  # R0 ≈ 6 copies/µg < LLOQ 50 -> reported 0
    assert ((a == 0) | (a >= 50)).all()
    days = np.full(20000, 30.0)
    v = simulate_profile(TYPICAL_TISAGENLECLEUCEL, days, 0.4, rng=1)
    resid = np.log(v) - np.log(
        multiphasic_curve(30.0, *(TYPICAL_TISAGENLECLEUCEL[k] for k in PARAM_NAMES))
    )
    assert resid.std() == pytest.approx(0.4, rel=0.02) and abs(resid.mean()) < 0.01


# ---------------------------------------------------------------------------------------
# parameter recovery (fixed seeds)
# ---------------------------------------------------------------------------------------
def _recovery(days, sigma_range, seed, n=40, lloq=10.0):
    rng = np.random.default_rng(seed)
    errors = {k: [] for k in PARAM_NAMES}
    at_least_truth = 0
    for _ in range(n):
        p = {k: v * math.exp(rng.normal(0, 0.3)) for k, v in TYPICAL_TISAGENLECLEUCEL.items()}
        sigma = rng.uniform(*sigma_range)
        v = simulate_profile(p, days, sigma, lloq=lloq, rng=rng)
        fit = fit_multiphasic(days, v, lloq, se=False)
        assert fit.estimable, fit.reason
        assert fit.params["alpha"] >= fit.params["beta"]  # phases labelled fast/slow
        t, y, n_obs = _likelihood_args(days, v, lloq)
        nll_truth = M._nll_grad(M._theta_from(p, sigma), t, y, n_obs)[0]
        at_least_truth += -fit.loglik <= nll_truth + 1e-6
        for k in PARAM_NAMES:
            errors[k].append(abs(fit.params[k] / p[k] - 1))
    return {k: float(np.median(e)) for k, e in errors.items()}, at_least_truth


def test_recovery_realistic_sampling_typical_noise():
    """Days 0–365 (13 samples), sigma 0.3–0.56 on the log scale, 40 patients.

    Achievable here (information-limited, not optimiser-limited: every fit reaches at least
    the likelihood of the true parameters): Tmax within 10%; Cmax and alpha about 15–25%;
    foldx, beta and FB 30–50% (the slow phase sits near the LLOQ and the rise has 2–3
    samples)."""
    med, ok = _recovery(REALISTIC_DAYS, (0.3, 0.56), seed=11)
    assert ok == 40
    assert med["tmax"] < 0.10
    assert med["cmax"] < 0.30 and med["alpha"] < 0.25
    assert med["beta"] < 0.6 and med["fb"] < 0.6 and med["foldx"] < 0.7


def test_recovery_realistic_sampling_low_noise():
    """The same schedule with sigma 0.1: Cmax, Tmax, alpha within 10%."""
    med, ok = _recovery(REALISTIC_DAYS, (0.1, 0.1), seed=11)
    assert ok == 40
    assert med["cmax"] < 0.10 and med["tmax"] < 0.10 and med["alpha"] < 0.10
    assert med["beta"] < 0.2 and med["fb"] < 0.2 and med["foldx"] < 0.25


def test_recovery_dense_sampling_low_noise_all_parameters():
    """30 samples (as in the benchmark), sigma 0.1: all six parameters within 10%."""
    med, ok = _recovery(DENSE_DAYS, (0.1, 0.1), seed=11)
    assert ok == 40
    assert all(v < 0.10 for v in med.values()), med


# ---------------------------------------------------------------------------------------
# estimability and tables
# ---------------------------------------------------------------------------------------
def test_not_estimable_reasons():
    few = fit_multiphasic([0, 7, 14, 28, 60], [0, 500, 100, 0, 0], lloq=50)
    assert not few.estimable and few.reason.startswith(
        "not estimable: 2 quantifiable point(s) for 7 free parameters"
    )
    assert math.isnan(few.auc(0, 28)) and np.isnan(few.predict([1.0, 2.0])).all()
    up = [0, 60, 120, 300, 700, 900, 1500, 2000, 2500, 3000]
    rising = fit_multiphasic([0, 4, 7, 10, 14, 21, 28, 35, 42, 49], up, lloq=50)
    assert rising.reason == "not estimable: no decline after peak"
    down = [900, 700, 300, 120, 60, 55, 54, 53, 52]
    no_pre = fit_multiphasic([7, 10, 14, 21, 28, 35, 42, 49, 56], down, lloq=50)
    assert no_pre.reason == "not estimable: no sample before the peak"


def test_fit_result_exposes_closed_form_auc_and_prediction():
    v = simulate_profile(TYPICAL_TISAGENLECLEUCEL, DENSE_DAYS, 0.2, lloq=10.0, rng=5)
    fit = fit_multiphasic(DENSE_DAYS, v, 10.0)
    assert fit.estimable and fit.converged
    f = lambda t: float(fit.predict(t))  # noqa: E731
    expected = integrate.quad(f, 0, 28, points=[fit.params["tmax"]], limit=200)[0]
    assert fit.auc(0, 28) == pytest.approx(expected, rel=1e-6)
    row = fit.to_dict()
    assert row["auc_0_28"] == pytest.approx(expected, rel=1e-6)
    assert set(PARAM_NAMES) <= set(row) and {f"se_{k}" for k in PARAM_NAMES} <= set(row)


def test_fit_table_matches_single_fits_and_parallel_equals_serial():
    rows = []
    for i in range(6):
        v = simulate_profile(TYPICAL_TISAGENLECLEUCEL, REALISTIC_DAYS, 0.3, lloq=10.0, rng=i)
        rows += [
            (f"P{i}", d, "cart_qpcr", x, "copies/ug", 10.0)
            for d, x in zip(REALISTIC_DAYS, v, strict=True)
        ]
    rows += [
        ("P9", 0.0, "cart_qpcr", 0.0, "copies/ug", 10.0),
        ("P9", 7.0, "cart_qpcr", 100.0, "copies/ug", 10.0),
    ]
    obs = pd.DataFrame(rows, columns=["patient_id", "day", "analyte", "value", "unit", "lloq"])
    serial = fit_table(obs, "cart_qpcr")
    parallel = fit_table(obs, "cart_qpcr", n_jobs=2)
    assert serial["patient_id"].tolist() == [f"P{i}" for i in range(6)] + ["P9"]
    pd.testing.assert_frame_equal(serial, parallel)
    one = fit_multiphasic(REALISTIC_DAYS, obs.loc[obs["patient_id"] == "P2", "value"], 10.0)
    got = serial.loc[serial["patient_id"] == "P2"].iloc[0]
    for k in PARAM_NAMES:
        assert got[k] == pytest.approx(one.params[k], rel=1e-12)
    last = serial.iloc[-1]
    assert not last["estimable"] and "1 quantifiable point(s) for 7" in last["reason"]
