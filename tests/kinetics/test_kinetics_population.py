"""The population (NLME) kinetic model: data, covariates, likelihood (M3) and a small fit.

The full recovery study (60 and 300 patients) is ``benchmarks/bench_popkin.py``; the fit here
is small (few patients, few iterations, seeded) and marked slow.
"""

from __future__ import annotations

import math
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from cartrial.kinetics import population as P
from cartrial.kinetics.model import (
    PARAM_NAMES,
    TYPICAL_TISAGENLECLEUCEL,
    multiphasic_auc,
    multiphasic_log_curve,
)


def _phi_of(p: dict) -> np.ndarray:
    return np.array(
        [
            math.log(p["foldx"]),
            math.log(p["tmax"]),
            math.log(p["cmax"]),
            math.log(p["alpha"]),
            math.log(p["fb"] / (1 - p["fb"])),
            math.log(p["beta"]),
        ]
    )


def test_design_matrix_codes_levels_against_the_most_common_and_refuses_missing():
    cov = pd.DataFrame(
        {
            "patient_id": ["a", "b", "c", "d"],
            "dose_level": ["low", "high", "low", "low"],
            "crs_grade": [0, 2, 1, 1],
            "steroids": [True, False, False, False],
            "site": ["x", "x", "x", "x"],  # constant: dropped
        }
    )
    ids = np.array(["d", "c", "b", "a"])
    X, names, levels = P.design_matrix(cov, ids, ["dose_level", "crs_grade", "steroids", "site"])
    assert names == ["dose_level=high", "crs_grade", "steroids"]
    assert levels["dose_level"]["reference"] == "low"
    np.testing.assert_allclose(X[:, 0], np.array([0, 0, 1, 0]) - 0.25)
    np.testing.assert_allclose(X[:, 1], np.array([1, 1, 2, 0]) - 1.0)
    np.testing.assert_allclose(X.mean(axis=0), 0, atol=1e-12)
    cov.loc[2, "crs_grade"] = np.nan
    with pytest.raises(ValueError, match="covariate 'crs_grade' missing for patient c"):
        P.design_matrix(cov, ids, ["crs_grade"])


def test_population_data_censors_blq_at_the_lloq_m3():
    obs = pd.DataFrame(
        {
            "patient_id": ["A"] * 4 + ["B"] * 3,
            "day": [0, 7, 14, 28, 0, 7, 28],
            "analyte": "cart_qpcr",
            "value": ["<10", 500, 120, 0, 0, 900, 30],
            "unit": "copies/ug",
            "lloq": 10.0,
        }
    )
    d = P.population_data(obs)
    assert d.patient_ids.tolist() == ["A", "B"] and d.pid.tolist() == [0, 0, 0, 0, 1, 1, 1]
    assert d.cens.tolist() == [True, False, False, True, True, False, False]
    np.testing.assert_allclose(d.y[d.cens], math.log(10.0))
    np.testing.assert_allclose(d.y[~d.cens], np.log([500, 120, 900, 30]))


@pytest.fixture(scope="module")
def child(tmp_path_factory):
    """Results of ``_popkin_child.py`` (JAX runs in a child process: the test session forks
    later, which JAX's threads do not survive safely)."""
    out = tmp_path_factory.mktemp("popkin") / "results.pkl"
    script = Path(__file__).with_name("_popkin_child.py")
    res = subprocess.run(
        [sys.executable, str(script), str(out)], capture_output=True, text=True, timeout=900
    )
    assert res.returncode == 0, res.stderr[-3000:]
    with open(out, "rb") as fh:
        return pickle.load(fh)


@pytest.mark.slow
def test_model_loglik_matches_scipy_tobit_m3(child):
    c = child["loglik"]
    phi, pid, t, y, cens = c["phi"], c["pid"], c["t"], c["y"], c["cens"]
    mu = np.empty(len(t))
    for i in range(phi.shape[0]):
        p = {
            "foldx": math.exp(phi[i, 0]),
            "tmax": math.exp(phi[i, 1]),
            "cmax": math.exp(phi[i, 2]),
            "alpha": math.exp(phi[i, 3]),
            "fb": 1 / (1 + math.exp(-phi[i, 4])),
            "beta": math.exp(phi[i, 5]),
        }
        mu[pid == i] = multiphasic_log_curve(t[pid == i], *(p[k] for k in PARAM_NAMES))
    expected = stats.norm.logpdf(y[~cens], mu[~cens], c["sigma"]).sum()
    expected += stats.norm.logcdf(y[cens], mu[cens], c["sigma"]).sum()
    assert c["loglik"] == pytest.approx(expected, rel=2e-5)
    # the typical slow phase is the fast one minus the gap: never label-switched
    assert c["mu"][5] == pytest.approx(c["prior_loc"][3] - c["gap"], abs=1e-5)


def test_vectorised_auc_matches_closed_form():
    rng = np.random.default_rng(2)
    for _ in range(5):
        p = {k: v * math.exp(rng.normal(0, 0.3)) for k, v in TYPICAL_TISAGENLECLEUCEL.items()}
        phi = _phi_of(p)[None, :]
        for a, b in ((0, 28), (0, 84), (3, 9), (0, math.inf), (30, math.inf)):
            got = float(P.auc_draws(phi, a, b)[0])
            assert got == pytest.approx(multiphasic_auc(a, b, p), rel=1e-6), (a, b)


def test_cohort_covariates_from_a_cohort():
    from cartrial.cohort.model import Cohort

    patients = pd.DataFrame({"patient_id": ["a", "b", "c"], "dose_level": ["low", "high", "low"]})
    obs = pd.DataFrame(
        {
            "patient_id": ["a", "b", "b"],
            "day": [3.0, 4.0, 5.0],
            "analyte": ["tocilizumab", "tocilizumab", "steroids"],
            "value": [np.nan, np.nan, np.nan],
            "value_text": ["yes", "no", "yes"],
        }
    )
    ae = pd.DataFrame(
        {"patient_id": ["a", "a", "c"], "term": ["CRS", "CRS", "ICANS"], "grade": [1, 3, 2]}
    )
    cohort = Cohort(patients=patients, observations=obs, adverse_events=ae)
    cov = P.cohort_covariates(cohort).set_index("patient_id")
    assert cov["dose_level"].tolist() == ["low", "high", "low"]
    assert cov["tocilizumab"].tolist() == [1.0, 0.0, 0.0]
    assert cov["steroids"].tolist() == [0.0, 1.0, 0.0]
    assert cov["crs_grade"].tolist() == [3.0, 0.0, 0.0]


@pytest.mark.slow
def test_small_population_fit_recovers_typical_values(child):
    c = child["small_fit"]
    typ = c["typical"].set_index("parameter")
    # 24 patients: the typical value is known to about omega/sqrt(24) on the log scale
    for k, tol in (("tmax", 0.15), ("alpha", 0.2), ("cmax", 0.4)):
        true = math.exp(c["truth_mu"][P.PHI_PARAMS.index(k)])
        assert abs(typ.loc[k, "median"] / true - 1) < tol, k
        assert typ.loc[k, "ci_low"] < typ.loc[k, "median"] < typ.loc[k, "ci_high"]
    assert c["residual"]["ci_low"] < 0.4 < c["residual"]["ci_high"]
    eff = c["covariates"].set_index("covariate")
    assert len(eff) == 1 and eff.index[0].startswith("dose_level=")
    assert c["diagnostics"]["seed"] == 3 and c["diagnostics"]["n_patients"] == 24
    ind = c["individual"]
    assert len(ind) == 24 and (ind["cmax_ci_low"] < ind["cmax"]).all()
    assert {"r_hat", "n_eff"} <= set(ind.columns)
    # the shrunken per-patient Cmax tracks the truth
    true_cmax = c["truth_params"].set_index("patient_id").loc[ind["patient_id"], "cmax"]
    assert np.median(np.abs(ind["cmax"].to_numpy() / true_cmax.to_numpy() - 1)) < 0.3


@pytest.mark.slow
def test_population_diagnostic_figures(child):
    c = child["small_fit"]
    op = c["obs_pred"]
    assert op["n_axes"] == 2 and all(s == ("log", "log") for s in op["scales"])
    assert op["n_points"] == [c["n_quantifiable"]] * 2  # every quantifiable sample, BLQ out
    assert c["vpc"]["n_bands"] == 3  # one band per percentile
    assert {"observed P10", "observed P50", "observed P90", "LLOQ"} <= set(c["vpc"]["labels"])


@pytest.mark.slow
def test_report_section_carries_the_population_model(child):
    r = child["report"]
    assert r["individual_ids"] == r["patients"]
    assert r["covariates"] in (["dose_level=low"], ["dose_level=high"])
    assert {"cart_qpcr_population_obs_vs_pred", "cart_qpcr_population_vpc"} <= set(r["figures"])
    assert any("seed 9" in n for n in r["notes"])
    assert r["n_typical"] == 6 and r["tables_are_frames"]


def test_the_test_session_has_not_imported_jax():
    # the JAX parts run in a child process; importing population.py must not start JAX
    assert "jax" not in sys.modules and "numpyro" not in sys.modules
