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
