"""Cox regression through statsmodels PHReg, checked against lifelines and R coxph."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from stats_testdata import r_dataset, r_values

from cartrial.stats import cox_ph

pytestmark = pytest.mark.filterwarnings("ignore")


def cohort(seed: int, n: int = 200) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    df = pd.DataFrame(
        {
            "age": rng.normal(40, 12, n).round(1),
            "prior_sct": rng.integers(0, 2, n),
            "source": rng.choice(["autologous", "new_donor", "prior_sct_donor"], n),
            "centre": rng.integers(0, 3, n),
        }
    )
    hazard = np.exp(0.03 * (df["age"] - 40) + 0.5 * df["prior_sct"])
    df["days"] = np.floor(rng.exponential(300 / hazard)) + 1
    df["death"] = (rng.random(n) < 0.7).astype(int)
    return df


@pytest.mark.parametrize("seed", range(6))
def test_efron_matches_lifelines(seed):
    from lifelines import CoxPHFitter

    df = cohort(seed)
    ours = cox_ph(df, "days", "death", ["age", "prior_sct", "source"])
    design = pd.get_dummies(
        df[["days", "death", "age", "prior_sct", "source"]],
        columns=["source"],
        drop_first=True,
        dtype=float,
    )
    ref = CoxPHFitter().fit(design, "days", "death", fit_options={"precision": 1e-12})
    np.testing.assert_allclose(ours.summary["coef"], ref.params_.to_numpy(), atol=1e-6)
    np.testing.assert_allclose(ours.summary["se"], ref.standard_errors_.to_numpy(), atol=1e-6)
    np.testing.assert_allclose(ours.summary["p"], ref.summary["p"].to_numpy(), atol=1e-6)
    lower = ref.summary["exp(coef) lower 95%"].to_numpy()
    np.testing.assert_allclose(ours.summary["lower"], lower, rtol=1e-6)
    assert ours.summary["covariate"].tolist() == [
        "age", "prior_sct", "source[new_donor]", "source[prior_sct_donor]"
    ]  # fmt: skip
    assert ours.n == 200 and ours.n_events == int(df["death"].sum())


@pytest.mark.parametrize("seed", range(3))
def test_stratified_efron_matches_lifelines(seed):
    from lifelines import CoxPHFitter

    df = cohort(seed)
    ours = cox_ph(df, "days", "death", ["age", "prior_sct"], strata="centre")
    ref = CoxPHFitter().fit(
        df[["days", "death", "age", "prior_sct", "centre"]],
        "days",
        "death",
        strata=["centre"],
        fit_options={"precision": 1e-12},
    )
    np.testing.assert_allclose(ours.summary["coef"], ref.params_.to_numpy(), atol=1e-6)


@pytest.mark.parametrize("ties", ["efron", "breslow"])
def test_matches_r_coxph(ties):
    d = pd.DataFrame(r_dataset("cox"))
    ours = cox_ph(d, "time", "event", ["x1", "x2"], ties=ties)
    np.testing.assert_allclose(ours.summary["coef"], r_values(f"cox/{ties}/coef"), atol=1e-6)
    np.testing.assert_allclose(ours.summary["se"], r_values(f"cox/{ties}/se"), atol=1e-6)
    strat = cox_ph(d, "time", "event", ["x1", "x2"], ties=ties, strata="stratum")
    np.testing.assert_allclose(
        strat.summary["coef"], r_values(f"cox/{ties}/strata_coef"), atol=1e-6
    )
    np.testing.assert_allclose(ours.summary["hr"], np.exp(ours.summary["coef"]))


def test_missing_values_raise_unless_dropped():
    df = cohort(1, n=50)
    df.loc[7, "age"] = np.nan
    with pytest.raises(ValueError, match="row 7, column 'age' is missing"):
        cox_ph(df, "days", "death", ["age"])
    res = cox_ph(df, "days", "death", ["age"], missing="drop")
    assert res.n == 49


def test_bad_arguments():
    df = cohort(2, n=30)
    with pytest.raises(ValueError, match="not in the data"):
        cox_ph(df, "days", "death", ["weight"])
    with pytest.raises(ValueError, match="ties"):
        cox_ph(df, "days", "death", ["age"], ties="exact")
    df["single"] = "x"
    with pytest.raises(ValueError, match="single level"):
        cox_ph(df, "days", "death", ["single"])


# --------------------------------------------------------------------------- degenerate input


def test_degenerate_input_gives_clear_errors():
    df = cohort(3, n=30)
    with pytest.raises(ValueError, match="no rows to fit"):
        cox_ph(df.iloc[:0], "days", "death", ["age"])
    none = df.assign(death=0)
    with pytest.raises(ValueError, match="no events \\('death' is 0 in every row\\)"):
        cox_ph(none, "days", "death", ["age"])
    with pytest.raises(ValueError, match="covariate 'dose' is constant \\(every value 2\\)"):
        cox_ph(df.assign(dose=2.0), "days", "death", ["age", "dose"])
    with pytest.raises(ValueError, match="collinear"):
        cox_ph(df.assign(age2=2 * df["age"]), "days", "death", ["age", "age2"])
    with pytest.raises(ValueError, match="no rows to fit"):
        cox_ph(df.assign(age=np.nan), "days", "death", ["age"], missing="drop")


def monotone_cohort() -> pd.DataFrame:
    """Two arms of 20; nobody in arm 1 has the event (monotone likelihood)."""
    rng = np.random.default_rng(1)
    df = pd.DataFrame({"days": np.floor(rng.exponential(10, 40)) + 1, "arm": np.repeat([0, 1], 20)})
    df["death"] = np.where(df["arm"] == 1, 0, (rng.random(40) < 0.8).astype(int))
    return df


def test_monotone_likelihood_is_flagged_with_a_reason():
    df = monotone_cohort()
    res = cox_ph(df, "days", "death", ["arm"])
    assert res.monotone and not res.converged
    assert "monotone likelihood for 'arm'" in res.warning
    assert "method='firth'" in res.warning
    # a categorical level with no events: the same, named by its indicator column
    cat = df.assign(arm=df["arm"].map({0: "A", 1: "B"}))
    res = cox_ph(cat, "days", "death", ["arm"])
    assert res.monotone and "arm[B]" in res.warning
    # an ordinary fit is not flagged
    ok = cox_ph(cohort(0), "days", "death", ["age", "prior_sct"])
    assert ok.converged and not ok.monotone and ok.warning is None


def _firth_breslow_1d(t, e, x):
    """Independent Heinze-Schemper fit for one covariate: maximise the penalised log
    partial likelihood l(b) + 0.5 log I(b) (Breslow ties) with a scalar optimiser."""
    from scipy.optimize import brentq, minimize_scalar

    times = np.unique(t[e == 1])

    def pen(b):
        ll, info = 0.0, 0.0
        for s in times:
            risk = t >= s
            dead = (t == s) & (e == 1)
            w = np.exp(b * x[risk])
            s0, s1, s2 = w.sum(), (w * x[risk]).sum(), (w * x[risk] ** 2).sum()
            d = dead.sum()
            ll += b * x[dead].sum() - d * np.log(s0)
            info += d * (s2 / s0 - (s1 / s0) ** 2)
        return ll + 0.5 * np.log(info)

    opt = minimize_scalar(lambda b: -pen(b), bounds=(-15, 15), method="bounded",
                          options={"xatol": 1e-10})  # fmt: skip
    b = opt.x
    top = pen(b)
    crit = 3.841458820694124 / 2  # chi-square(1) 95% / 2
    lo = brentq(lambda v: top - pen(v) - crit, b - 20, b)
    hi = brentq(lambda v: top - pen(v) - crit, b, b + 20)
    return b, lo, hi, top


def test_firth_matches_independent_penalised_likelihood_on_monotone_data():
    df = monotone_cohort()
    res = cox_ph(df, "days", "death", ["arm"], method="firth")
    b, lo, hi, top = _firth_breslow_1d(
        df["days"].to_numpy(), df["death"].to_numpy(), df["arm"].to_numpy(float)
    )
    row = res.summary.iloc[0]
    assert res.method == "firth" and res.ties == "breslow" and res.converged
    assert row["coef"] == pytest.approx(b, abs=1e-5)
    assert np.isfinite(row["coef"]) and row["hr"] < 0.1
    assert res.log_likelihood == pytest.approx(top, abs=1e-6)
    # profile penalised-likelihood interval, as R coxphf
    assert np.log(row["lower"]) == pytest.approx(lo, abs=1e-4)
    assert np.log(row["upper"]) == pytest.approx(hi, abs=1e-4)


@pytest.mark.parametrize("seed", range(3))
def test_firth_matches_independent_fit_on_ordinary_data(seed):
    df = cohort(seed, n=60)
    res = cox_ph(df, "days", "death", ["prior_sct"], method="firth")
    b, _, _, _ = _firth_breslow_1d(
        df["days"].to_numpy(), df["death"].to_numpy(), df["prior_sct"].to_numpy(float)
    )
    assert res.summary["coef"][0] == pytest.approx(b, abs=1e-5)
    # Firth shrinks towards 0 relative to the Breslow MLE
    mle = cox_ph(df, "days", "death", ["prior_sct"], ties="breslow").summary["coef"][0]
    assert abs(res.summary["coef"][0]) < abs(mle)


def test_firth_rejects_strata():
    with pytest.raises(ValueError, match="firth"):
        cox_ph(cohort(1), "days", "death", ["age"], strata="centre", method="firth")


def test_large_coefficient_from_a_small_unit_is_not_called_monotone():
    df = cohort(4)
    base = cox_ph(df, "days", "death", ["age", "prior_sct"])
    small = cox_ph(df.assign(age=df["age"] / 1000.0), "days", "death", ["age", "prior_sct"])
    assert not small.monotone and small.converged
    assert abs(small.summary["coef"][0]) > 10
    assert small.summary["coef"][0] == pytest.approx(1000 * base.summary["coef"][0], rel=1e-6)
