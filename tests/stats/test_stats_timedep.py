"""Time-dependent exposure: counting process, time-dependent Cox, Mantel–Byar,
Simon–Makuch and landmark analysis.

Checked against R survival 3.5-3 (tmerge, coxph, survfit, survdiff; stored in
data/timedep_reference.json by data/make_timedep_reference.py), lifelines
CoxTimeVaryingFitter, statsmodels PHReg/survdiff with delayed entry, hand-worked
examples and properties.
"""

from __future__ import annotations

import json
import math
from functools import cache

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from stats_testdata import DATA

from cartrial.stats import (
    counting_process,
    landmark_analysis,
    logrank_test,
    mantel_byar,
    simon_makuch,
    timedep_cox,
)

pytestmark = pytest.mark.filterwarnings("ignore")


@cache
def reference() -> dict:
    return json.loads((DATA / "timedep_reference.json").read_text())


def r_vals(key: str) -> np.ndarray:
    return np.array([np.nan if v is None else v for v in reference()["r"][key]], dtype=float)


def td_set(ident: int) -> pd.DataFrame:
    d = pd.DataFrame(reference()["data"]["td"])
    d["txtime"] = d["txtime"].astype(float)
    return d[d["dataset"] == ident].reset_index(drop=True)


TD_IDS = sorted(set(reference()["data"]["td"]["dataset"]))


def rows_of(d: pd.DataFrame) -> pd.DataFrame:
    rows = counting_process(d["time"], d["status"], d["txtime"], id=d["id"])
    rows["age"] = d.set_index("id").loc[rows["id"], "age"].to_numpy()
    return rows


# --------------------------------------------------------------------------- hand-worked

# Six patients, days: (time, status, exposure day).  Patient 5 is exposed on the day of
# the event (shifted to 5.5), patient 6 on day 0 (exposed from the start).
SIX = pd.DataFrame(
    {
        "id": ["P1", "P2", "P3", "P4", "P5", "P6"],
        "time": [5, 8, 3, 10, 6, 7],
        "status": [1, 0, 1, 1, 1, 0],
        "sct_day": [2, None, None, 4, 6, 0],
    }
)


def test_counting_process_hand_worked():
    rows = counting_process(SIX["time"], SIX["status"], SIX["sct_day"], id=SIX["id"])
    expected = pd.DataFrame(
        {
            "id": ["P1", "P1", "P2", "P3", "P4", "P4", "P5", "P5", "P6"],
            "start": [0, 2, 0, 0, 0, 4, 0, 5.5, 0],
            "stop": [2, 5, 8, 3, 4, 10, 5.5, 6, 7],
            "event": [0, 1, 0, 1, 0, 1, 0, 1, 0],
            "exposure": [0, 1, 0, 0, 0, 1, 0, 1, 1],
        }
    )
    pd.testing.assert_frame_equal(rows, expected, check_dtype=False)


def test_counting_process_edge_conventions():
    # exposure after the end is ignored; death on day 0 becomes 0.5 days; exposure on
    # day 0 of a day-0 death is exposure from the start; censored on the exposure day
    rows = counting_process([10, 0, 0, 12], [1, 1, 1, 0], [15, None, 0, 12])
    assert rows["exposure"].tolist() == [0, 0, 1, 0, 1]
    assert rows["stop"].tolist() == [10, 0.5, 0.5, 11.5, 12]
    assert rows["id"].tolist() == [0, 1, 2, 3, 3]
    # a site's export: nullable integers with <NA>, numbers as text
    nullable = pd.Series([4, pd.NA, "7"], dtype=object, index=["A", "B", "C"])
    rows = counting_process([10, 5, 9], [1, 0, 1], nullable)
    assert rows["exposure"].tolist() == [0, 1, 0, 0, 1]
    assert rows["start"].tolist() == [0, 4, 0, 0, 7]
    with pytest.raises(ValueError, match=r"exposure_day\[1\] \(index label 'B'\) = 'soon'"):
        counting_process([1, 2], [0, 1], pd.Series([1, "soon"], index=["A", "B"]))
    with pytest.raises(ValueError, match=r"exposure_day\[1\] = 'soon'"):
        counting_process([1, 2], [0, 1], [1, "soon"])
    with pytest.raises(ValueError, match="exposure_day has length 1"):
        counting_process([1, 2], [0, 1], [1])
    with pytest.raises(ValueError, match=r"time\[0\]"):
        counting_process([np.nan, 2], [0, 1], [1, 1])


def test_mantel_byar_hand_worked():
    # event times 3, 5, 6, 10 (rows at risk: start < t <= stop)
    # t=3 : n=6, n1=2 (P1 after day 2, P6), d=1 unexposed -> E1=1/3, V=1*5/5*2*4/36=2/9
    # t=5 : n=5, n1=3 (P1, P4, P6), d=1 exposed       -> E1=3/5, V=1*4/4*3*2/25=6/25
    # t=6 : n=4, n1=3 (P4, P5 after 5.5, P6), d=1 exposed -> E1=3/4, V=3/16
    # t=10: n=1, n1=1, d=1 exposed -> E1=1, V=0
    rows = counting_process(SIX["time"], SIX["status"], SIX["sct_day"])
    res = mantel_byar(rows["start"], rows["stop"], rows["event"], rows["exposure"])
    u = 3 - (1 / 3 + 3 / 5 + 3 / 4 + 1)
    v = 2 / 9 + 6 / 25 + 3 / 16
    assert res.U == pytest.approx(u, abs=1e-14)
    assert res.V == pytest.approx(v, abs=1e-14)
    assert res.statistic == pytest.approx(u * u / v, abs=1e-14)
    assert res.observed == 3 and res.df == 1 and res.n_events == 4
    from scipy.stats import chi2

    assert res.p_value == pytest.approx(chi2.sf(u * u / v, 1), abs=1e-14)


def test_simon_makuch_hand_worked():
    rows = counting_process(SIX["time"], SIX["status"], SIX["sct_day"])
    sm = simon_makuch(rows["start"], rows["stop"], rows["event"], rows["exposure"], conf_type="log")
    t1 = sm.fits[1].table
    # exposed rows: P1 (2,5] P4 (4,10] P5 (5.5,6] P6 (0,7]
    assert t1["time"].tolist() == [5, 6, 7, 10]
    assert t1["n_risk"].tolist() == [3, 3, 2, 1]
    assert t1["n_event"].tolist() == [1, 1, 0, 1]
    np.testing.assert_allclose(t1["survival"], [2 / 3, 4 / 9, 4 / 9, 0.0], atol=1e-15)
    # Greenwood at t=6: 1/(3*2) + 1/(3*2) = 1/3 -> SE(S) = 4/9 * sqrt(1/3)
    assert sm.fits[1].std_err[1] == pytest.approx(4 / 9 * math.sqrt(1 / 3), abs=1e-15)
    t0 = sm.fits[0].table
    assert t0["time"].tolist() == [2, 3, 4, 5.5, 8]
    assert t0["n_risk"].tolist() == [5, 4, 3, 2, 1]  # P1 leaves state 0 at day 2
    np.testing.assert_allclose(t0["survival"], [1, 0.75, 0.75, 0.75, 0.75], atol=1e-15)
    assert sm.fits[1].n_at_risk(5.0) == 3 and sm.fits[0].n_at_risk(2.5) == 4
    assert sm.survival_at(6.5)[1].estimate == pytest.approx(4 / 9)
    assert "not the survival of any real group" in sm.caption
    assert sm.test.statistic == pytest.approx(
        mantel_byar(rows["start"], rows["stop"], rows["event"], rows["exposure"]).statistic
    )
    assert set(sm.table["state"]) == {0, 1}


def test_landmark_hand_worked_default_landmark_and_counts():
    # exposed during follow-up: P1 day 2, P4 day 4, P5 day 6 (= its last day), P6 day 0
    # -> default landmark = median(0, 2, 4, 6) = 3.  P3 (event on day 3) is excluded.
    lm = landmark_analysis(SIX["time"], SIX["status"], SIX["sct_day"], id=SIX["id"])
    assert lm.landmark == 3.0
    assert "median exposure day among the 4 patients" in lm.landmark_source
    assert (lm.n, lm.n_included, lm.n_excluded_event, lm.n_excluded_censored) == (6, 5, 1, 0)
    assert (lm.n_exposed, lm.n_unexposed) == (2, 3)  # exposed by day 3: P1, P6
    assert lm.data.set_index("id").loc["P1", "time"] == 2.0
    assert "exposures after day 3 are ignored" in lm.rule
    # from day 3: exposed P1 2 (event), P6 4 (cens); unexposed P5 3 (event), P2 5 (cens),
    # P4 7 (event).  Log-rank: t=2 n=5 n_exp=2 -> E=2/5, V=6/25; t=3 n=4 n_exp=1 -> E=1/4,
    # V=3/16; t=7 n=1 n_exp=0.  O_exp=1.
    u, v = 1 - 2 / 5 - 1 / 4, 6 / 25 + 3 / 16
    assert lm.logrank.statistic == pytest.approx(u * u / v, abs=1e-12)
    np.testing.assert_allclose(lm.km[1].survival, [0.5, 0.5])
    np.testing.assert_allclose(lm.km[0].survival, [2 / 3, 2 / 3, 0.0])
    hr, lo, hi = lm.hr
    assert lo < hr < hi and lm.cox.summary["covariate"].tolist() == ["exposed"]


def test_landmark_event_on_the_landmark_day_rule():
    excluded = landmark_analysis(SIX["time"], SIX["status"], SIX["sct_day"], landmark=3)
    included = landmark_analysis(
        SIX["time"], SIX["status"], SIX["sct_day"], landmark=3, include_event_at_landmark=True
    )
    assert excluded.n_excluded_event == 1 and included.n_excluded_event == 0
    assert included.n_included == 6 and included.km[0].time[0] == 0.0
    assert "an event on day 3 counts as an event at time 0" in included.rule
    assert "on or before day 3 excludes the patient" in excluded.rule
    assert excluded.landmark_source == "given"


def test_landmark_errors_name_the_problem():
    with pytest.raises(ValueError, match="no patient was exposed"):
        landmark_analysis([5, 6], [1, 0], [None, 9])
    with pytest.raises(ValueError, match="no exposed patients remain"):
        landmark_analysis([5, 6, 9], [1, 0, 1], [None, None, 8], landmark=2)


# --------------------------------------------------------------------------- R survival


@pytest.mark.parametrize("ident", TD_IDS)
def test_counting_process_equals_r_tmerge(ident):
    rows = rows_of(td_set(ident))
    k = f"td/{ident}/cp/"
    np.testing.assert_array_equal(rows["id"], r_vals(k + "id"))
    np.testing.assert_array_equal(rows["start"], r_vals(k + "start"))
    np.testing.assert_array_equal(rows["stop"], r_vals(k + "stop"))
    np.testing.assert_array_equal(rows["event"], r_vals(k + "event"))
    np.testing.assert_array_equal(rows["exposure"], r_vals(k + "sct"))


@pytest.mark.parametrize("ident", TD_IDS)
@pytest.mark.parametrize("ties", ["efron", "breslow"])
def test_timedep_cox_matches_r_coxph(ident, ties):
    rows = rows_of(td_set(ident))
    k = f"td/{ident}/{ties}/"
    one = timedep_cox(rows["start"], rows["stop"], rows["event"], rows[["exposure"]], ties=ties)
    np.testing.assert_allclose(one.summary["coef"], r_vals(k + "coef"), atol=1e-6)
    np.testing.assert_allclose(one.summary["se"], r_vals(k + "se"), atol=1e-6)
    np.testing.assert_allclose(
        [one.log_likelihood_null, one.log_likelihood], r_vals(k + "loglik"), atol=1e-6
    )
    two = timedep_cox(
        rows["start"], rows["stop"], rows["event"], rows[["exposure", "age"]], ties=ties,
        id=rows["id"],
    )  # fmt: skip
    np.testing.assert_allclose(two.summary["coef"], r_vals(k + "coef2"), atol=1e-6)
    np.testing.assert_allclose(two.summary["se"], r_vals(k + "se2"), atol=1e-6)
    assert two.converged and not two.monotone and two.warning is None
    assert two.n == rows["id"].nunique() and two.n_rows == len(rows)
    assert two.n_events == int(rows["event"].sum())
    np.testing.assert_allclose(two.summary["hr"], np.exp(two.summary["coef"]))


@pytest.mark.parametrize("ident", [i for i in TD_IDS if f"td/{i}/mb/score" in reference()["r"]])
def test_mantel_byar_equals_r_exact_score(ident):
    rows = rows_of(td_set(ident))
    res = mantel_byar(rows["start"], rows["stop"], rows["event"], rows["exposure"])
    assert res.statistic == pytest.approx(r_vals(f"td/{ident}/mb/score")[0], abs=1e-8)


@pytest.mark.parametrize("ident", TD_IDS)
@pytest.mark.parametrize("conf_type", ["plain", "log", "log-log"])
@pytest.mark.parametrize("with_landmark", [False, True])
def test_simon_makuch_matches_r_survfit(ident, conf_type, with_landmark):
    d = td_set(ident)
    rows = rows_of(d)
    L = float(d["L"].iloc[0]) if with_landmark else 0.0
    sm = simon_makuch(
        rows["start"], rows["stop"], rows["event"], rows["exposure"], landmark=L,
        conf_type=conf_type,
    )  # fmt: skip
    for state in (0, 1):
        k = f"td/{ident}/sm/{conf_type}/{'TRUE' if with_landmark else 'FALSE'}/{state}/"
        fit = sm.fits[state]
        np.testing.assert_array_equal(fit.time, r_vals(k + "time"))
        np.testing.assert_array_equal(fit.n_risk, r_vals(k + "n_risk"))
        np.testing.assert_array_equal(fit.n_event, r_vals(k + "n_event"))
        np.testing.assert_array_equal(fit.n_censor, r_vals(k + "n_censor"))
        surv = r_vals(k + "surv")
        np.testing.assert_allclose(fit.survival, surv, atol=1e-10)
        ok = surv > 0
        np.testing.assert_allclose(
            fit.std_err[ok], (surv * r_vals(k + "std_err_log"))[ok], atol=1e-10
        )
        for ours, name in ((fit.lower, "lower"), (fit.upper, "upper")):
            theirs = r_vals(k + name)
            known = ~np.isnan(theirs)  # R: NA where S = 0 (and S = 1 for log-log)
            np.testing.assert_allclose(ours[known], theirs[known], atol=1e-10)
            assert np.isin(fit.survival[~known], (0.0, 1.0)).all()


@pytest.mark.parametrize("ident", TD_IDS)
def test_landmark_matches_r(ident):
    d = td_set(ident)
    lm = landmark_analysis(d["time"], d["status"], d["txtime"], id=d["id"])
    k = f"td/{ident}/lm/"
    assert lm.landmark == r_vals(k + "L")[0]
    assert [lm.n_included, lm.n_excluded_event, lm.n_excluded_censored, lm.n_exposed] == list(
        r_vals(k + "n")
    )
    assert lm.n_included + lm.n_excluded_event + lm.n_excluded_censored == lm.n
    assert lm.logrank.statistic == pytest.approx(r_vals(k + "chisq")[0], abs=1e-8)
    np.testing.assert_allclose(lm.cox.summary["coef"], r_vals(k + "coef"), atol=1e-6)
    np.testing.assert_allclose(lm.cox.summary["se"], r_vals(k + "se"), atol=1e-6)
    # delayed entry at L instead of re-zeroing: same coefficient (R)
    np.testing.assert_allclose(lm.cox.summary["coef"], r_vals(k + "coef_delayed"), atol=1e-6)
    for g in (0, 1):
        fit = lm.km[g]
        np.testing.assert_array_equal(fit.time, r_vals(f"{k}km/{g}/time"))
        np.testing.assert_allclose(fit.survival, r_vals(f"{k}km/{g}/surv"), atol=1e-12)
        lo = r_vals(f"{k}km/{g}/lower")
        known = ~np.isnan(lo)
        np.testing.assert_allclose(fit.lower[known], lo[known], atol=1e-10)


# --------------------------------------------------------------------------- Python peers


@pytest.mark.parametrize("ident", TD_IDS[:4])
def test_timedep_cox_matches_lifelines_ctv(ident):
    from lifelines import CoxTimeVaryingFitter

    rows = rows_of(td_set(ident))
    ours = timedep_cox(rows["start"], rows["stop"], rows["event"], rows[["exposure", "age"]])
    ctv = CoxTimeVaryingFitter().fit(
        rows[["id", "start", "stop", "event", "exposure", "age"]],
        id_col="id", event_col="event", start_col="start", stop_col="stop",
        fit_options={"precision": 1e-12},
    )  # fmt: skip
    np.testing.assert_allclose(ours.summary["coef"], ctv.params_.to_numpy(), atol=1e-6)
    np.testing.assert_allclose(ours.summary["se"], ctv.standard_errors_.to_numpy(), atol=1e-6)


@pytest.mark.parametrize("ident", TD_IDS)
def test_mantel_byar_matches_statsmodels_survdiff_with_entry(ident):
    from statsmodels.duration.survfunc import survdiff

    rows = rows_of(td_set(ident))
    ours = mantel_byar(rows["start"], rows["stop"], rows["event"], rows["exposure"])
    # statsmodels counts a row at risk at t = entry; R (and we) from just after entry
    chisq, _ = survdiff(
        rows["stop"].to_numpy(), rows["event"].to_numpy(), rows["exposure"].to_numpy(),
        entry=rows["start"].to_numpy() + 1e-7,
    )  # fmt: skip
    assert ours.statistic == pytest.approx(chisq, abs=1e-8)


def test_statsmodels_phreg_needs_the_entry_shift_to_match():
    """Why timedep_cox is hand-written: PHReg(entry=) counts rows at risk at t = entry."""
    from statsmodels.duration.hazard_regression import PHReg

    rows = rows_of(td_set(TD_IDS[0]))
    ours = timedep_cox(rows["start"], rows["stop"], rows["event"], rows[["exposure"]])
    args = (rows["stop"].to_numpy(), rows[["exposure"]].to_numpy(dtype=float))
    kw = {"status": rows["event"].to_numpy(dtype=float), "ties": "efron"}
    shifted = PHReg(*args, entry=rows["start"].to_numpy() + 1e-7, **kw).fit().params
    plain = PHReg(*args, entry=rows["start"].to_numpy(), **kw).fit().params
    assert ours.summary["coef"][0] == pytest.approx(shifted[0], abs=1e-6)
    assert abs(ours.summary["coef"][0] - plain[0]) > 1e-6


# --------------------------------------------------------------------------- degenerate


def test_timedep_cox_degenerate_input():
    with pytest.raises(ValueError, match="no events"):
        timedep_cox([0, 0], [1, 2], [0, 0], [0.0, 1.0])
    with pytest.raises(ValueError, match="covariate 'x' is constant"):
        timedep_cox([0, 0, 0], [1, 2, 3], [1, 0, 1], [1.0, 1.0, 1.0])
    with pytest.raises(ValueError, match=r"row \[1\]: start = 2.0, stop = 2.0"):
        timedep_cox([0, 2], [1, 2], [1, 1], [0.0, 1.0])
    with pytest.raises(ValueError, match="collinear"):
        timedep_cox([0, 0, 0], [1, 2, 3], [1, 0, 1], np.array([[1, 2], [2, 4], [3, 6]]))
    # monotone likelihood: no events while exposed
    rows = counting_process([5, 8, 3, 10, 6, 7], [1, 1, 1, 1, 0, 0], [None] * 4 + [2, 1])
    res = timedep_cox(rows["start"], rows["stop"], rows["event"], rows["exposure"])
    assert res.monotone and not res.converged
    assert "monotone likelihood for 'exposure'" in res.warning and "Firth" in res.warning


# --------------------------------------------------------------------------- properties


@st.composite
def fixed_groups(draw):
    n = draw(st.integers(3, 40))
    t = draw(st.lists(st.integers(1, 30), min_size=n, max_size=n))
    e = draw(st.lists(st.booleans(), min_size=n, max_size=n))
    g = draw(st.lists(st.booleans(), min_size=n, max_size=n))
    return np.array(t, float), np.array(e), np.array(g)


@settings(max_examples=80, deadline=None)
@given(fixed_groups())
def test_property_mantel_byar_is_log_rank_when_nobody_changes_state(data):
    t, e, g = data
    if e.sum() == 0 or g.all() or not g.any():
        return
    rows = counting_process(t, e, np.where(g, 0.0, np.nan))  # exposed from day 0 or never
    assert len(rows) == t.size
    mb = mantel_byar(rows["start"], rows["stop"], rows["event"], rows["exposure"])
    lr = logrank_test(t, e, g.astype(int))
    if lr.df == 0:
        assert not mb.V > 0
        return
    assert mb.statistic == pytest.approx(lr.statistic, rel=1e-9, abs=1e-12)


@settings(max_examples=60, deadline=None)
@given(fixed_groups())
def test_property_landmark_at_zero_is_the_baseline_log_rank(data):
    t, e, g = data
    if e.sum() == 0 or g.all() or not g.any():
        return
    lm = landmark_analysis(t, e, np.where(g, 0.0, np.nan), landmark=0)
    lr = logrank_test(t, e, g.astype(int))
    assert lm.n_included == t.size and lm.n_excluded_event == 0
    assert lm.logrank.statistic == pytest.approx(lr.statistic, rel=1e-12, abs=1e-12)


@settings(max_examples=60, deadline=None)
@given(fixed_groups(), st.lists(st.integers(0, 35), min_size=40, max_size=40))
def test_property_split_rows_partition_follow_up(data, days):
    t, e, _ = data
    x = np.array(days[: t.size], float)
    x[::3] = np.nan
    rows = counting_process(t, e, x)
    by_id = rows.groupby("id")
    # rows tile (0, time] without gaps, one event at most, on the last row
    np.testing.assert_allclose(by_id["stop"].max().to_numpy(), t)
    assert (by_id["start"].min() == 0).all()
    nxt = rows.groupby("id")["start"].shift(-1)
    same = nxt.notna()
    np.testing.assert_array_equal(rows.loc[same, "stop"], nxt[same])
    np.testing.assert_array_equal(by_id["event"].sum().to_numpy(), e.astype(int))
    assert (rows.groupby("id")["exposure"].diff().fillna(0) >= 0).all()  # 0 -> 1 only
