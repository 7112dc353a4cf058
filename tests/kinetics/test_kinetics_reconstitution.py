"""Immune reconstitution rules, reference ranges, competing-risk recovery, chimerism."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from cartrial.kinetics.reconstitution import (
    b_cell_recovery,
    chimerism_status,
    engraftment_after_sct,
    load_reference_ranges,
    lower_normal,
    reconstitution_table,
    recovery_incidence,
    recovery_times,
    time_to_depletion,
    time_to_recovery,
)


# ---------------------------------------------------------------------------------------
# single-profile rules
# ---------------------------------------------------------------------------------------
def test_depletion_is_the_first_value_below_the_threshold():
    # CD7+ T cells: 900 at day 0, 400 on day 7 (< 700), 0 on day 14
    assert time_to_depletion([0, 7, 14], [900, 400, 0], 700) == 7
    assert math.isnan(time_to_depletion([0, 7], [900, 800], 700))
    # samples before infusion do not count; missing values are skipped
    assert time_to_depletion([-5, 3, 10], [100, np.nan, 650], 700) == 10


def test_recovery_needs_two_consecutive_values_at_or_above():
    days = [7, 14, 28, 60, 90, 120]
    vals = [50, 800, 600, 700, 950, 300]
    # 800 on day 14 is followed by 600 (< 700): no; 700 (day 60, equal counts) and 950: yes
    assert time_to_recovery(days, vals, 700) == 60
    # strictly above: 700 no longer counts and 950 is followed by 300 -> never
    assert math.isnan(time_to_recovery(days, vals, 700, strict=True))
    assert time_to_recovery(days, vals, 700, consecutive=1) == 14
    assert math.isnan(time_to_recovery(days, vals, 700, consecutive=3))  # 700, 950, 300
    # only after the depletion day when given
    assert time_to_recovery([0, 1, 7, 30, 60], [900, 900, 10, 800, 900], 700, after=7) == 30


def test_b_cell_recovery_is_strictly_above_five_percent():
    assert b_cell_recovery([30, 60, 90], [1.0, 5.0, 5.1]) == 90
    assert b_cell_recovery([30, 60, 90], [1.0, 5.0, 5.1], threshold=4.0) == 60


# ---------------------------------------------------------------------------------------
# reference ranges
# ---------------------------------------------------------------------------------------
def test_shipped_reference_ranges_and_population_rules():
    r = load_reference_ranges()
    assert {"version", "source"} <= set(r.columns) and r["source"].str.len().gt(10).all()
    low, src = lower_normal(r, "cd3", "adult")
    assert low == 700 and "2004;11:168" in src
    assert lower_normal(r, "cd3", "pediatric", age_years=4)[0] == 1400  # 2–6 y band
    assert lower_normal(r, "cd3", "pediatric", age_years=0.1)[0] == 2500  # 0–3 months
    assert lower_normal(r, "cd3", "auto", age_years=40)[0] == 700
    assert lower_normal(r, "cd3", "auto", age_years=15)[0] == 1000  # 12–18 y band
    assert math.isnan(lower_normal(r, "cd7neg_t", "adult")[0])  # no published range
    with pytest.raises(ValueError, match="age_years"):
        lower_normal(r, "cd3", "pediatric")


def test_site_override_replaces_and_adds_rows(tmp_path):
    site = tmp_path / "site.csv"
    site.write_text(
        "analyte,population,age_min_years,age_max_years,lower,upper,unit\n"
        "cd3,adult,18,120,800,2600,cells/uL\n"
        "cd7neg_t,adult,18,120,50,400,cells/uL\n"
    )
    r = load_reference_ranges(override=site)
    assert lower_normal(r, "cd3", "adult") == (800.0, "site override [vsite override]")
    assert lower_normal(r, "cd7neg_t", "adult")[0] == 50
    assert lower_normal(r, "nk", "adult")[0] == 100  # untouched rows kept
    bad = tmp_path / "bad.csv"
    bad.write_text("analyte,population,lower\ncd3,adult,low\n")
    with pytest.raises(ValueError, match=r"bad.csv, row 2, column 'lower': found 'low'"):
        load_reference_ranges(override=bad)


# ---------------------------------------------------------------------------------------
# the per-patient table against a plain loop
# ---------------------------------------------------------------------------------------
def _ref_row(days, vals, thr, consecutive=2):
    """Plain per-patient reference: depletion then recovery after it."""
    pts = sorted((d, v) for d, v in zip(days, vals, strict=True) if not math.isnan(v) and d >= 0)
    dep = next((d for d, v in pts if v < thr), math.nan)
    cand = [(d, v) for d, v in pts if math.isnan(dep) or d > dep]
    rec = math.nan
    for i in range(len(cand) - consecutive + 1):
        if all(v >= thr for _, v in cand[i : i + consecutive]):
            rec = cand[i][0]
            break
    return dep, rec, min((v for _, v in pts), default=math.nan)


def test_table_matches_reference_loop_on_random_patients():
    rng = np.random.default_rng(4)
    rows = []
    for p in range(120):
        days = np.sort(
            rng.choice([-7, 0, 7, 14, 21, 28, 60, 90, 180, 270, 365], size=8, replace=False)
        ).astype(float)
        level = np.exp(
            np.log(900)
            + rng.normal(0, 0.2)
            - 4 * np.exp(-days / rng.uniform(20, 200)) * (days >= 0)
        )
        vals = np.round(level * np.exp(rng.normal(0, 0.3, len(days))), 1)
        vals[rng.random(len(days)) < 0.05] = np.nan
        rows += [(f"P{p:03d}", d, "cd3", v, "cells/uL") for d, v in zip(days, vals, strict=True)]
    obs = pd.DataFrame(rows, columns=["patient_id", "day", "analyte", "value", "unit"])
    t = reconstitution_table(obs, analytes=["cd3"])
    assert len(t) == 120 and (t["threshold"] == 700).all()
    for pid, sub in obs.groupby("patient_id"):
        dep, rec, nadir = _ref_row(sub["day"].tolist(), sub["value"].tolist(), 700)
        got = t.loc[t["patient_id"] == pid].iloc[0]
        for name, exp in (("depletion_day", dep), ("recovery_day", rec), ("nadir", nadir)):
            assert (math.isnan(exp) and math.isnan(got[name])) or got[name] == exp, (pid, name)
        assert got["recovered"] == (not math.isnan(rec))


def test_table_thresholds_pediatric_and_b_cells():
    obs = pd.DataFrame(
        {
            "patient_id": ["K", "K", "K", "A", "A", "A", "K", "K"],
            "day": [0, 30, 60, 0, 30, 60, 30, 90],
            "analyte": ["cd3"] * 6 + ["b_pct_lymph"] * 2,
            "value": [100, 1200, 1300, 100, 1200, 1300, 2.0, 6.0],
            "unit": ["cells/uL"] * 6 + ["%"] * 2,
        }
    )
    patients = pd.DataFrame({"patient_id": ["K", "A"], "age_years": [4.0, 35.0]})
    t = reconstitution_table(obs, population="auto", patients=patients)
    cd3 = t.loc[t["analyte"] == "cd3"].set_index("patient_id")
    # child aged 4: lower normal 1400 -> not recovered; adult: 700 -> day 30
    assert cd3.loc["K", "threshold"] == 1400 and not cd3.loc["K", "recovered"]
    assert cd3.loc["A", "recovery_day"] == 30 and cd3.loc["A", "depletion_day"] == 0
    b = t.loc[t["analyte"] == "b_pct_lymph"].iloc[0]
    assert b["threshold"] == 5.0 and bool(b["strict"]) and b["recovery_day"] == 90
    given = reconstitution_table(obs, analytes=["cd3"], thresholds={"cd3": 1250})
    assert math.isnan(given.set_index("patient_id").loc["A", "recovery_day"])  # 1200, 1300
    cd3_rows = obs.loc[obs["analyte"] == "cd3"].assign(analyte="cd7neg_t")
    none = reconstitution_table(cd3_rows, analytes=["cd7neg_t"])
    assert (none["status"] == "no reference range").all()


# ---------------------------------------------------------------------------------------
# cumulative incidence with competing events
# ---------------------------------------------------------------------------------------
def test_recovery_times_and_incidence_with_competing_events():
    recon = pd.DataFrame(
        {
            "patient_id": ["1", "2", "3", "4", "5"],
            "analyte": "cd3",
            "n_samples": 5,
            "status": "x",
            "recovery_day": [30.0, 90.0, np.nan, np.nan, 60.0],
            "last_sample_day": [365.0, 365.0, 180.0, 365.0, 365.0],
        }
    )
    events = pd.DataFrame(
        {
            "patient_id": ["2", "3", "5"],
            "event": ["SCT", "died", "relapse"],
            "day": [45.0, 100.0, 60.0],
        }
    )
    rt = recovery_times(recon, events, "cd3").set_index("patient_id")
    # 1 recovers (30); 2 has SCT on day 45 before recovery (90) -> competing at 45;
    # 3 dies on day 100 without recovery -> competing; 4 censored at its last sample;
    # 5 recovers on the day of relapse -> recovery counts (recovery <= event day)
    assert rt["cause"].to_dict() == {"1": 1, "2": 2, "3": 2, "4": 0, "5": 1}
    assert rt["time"].to_dict() == {"1": 30.0, "2": 45.0, "3": 100.0, "4": 365.0, "5": 60.0}
    assert rt.loc["2", "competing_event"] == "sct"
    inc = recovery_incidence(recon, events, "cd3", landmarks=[40, 70, 400])
    # Aalen–Johansen by hand: day 30: 1/5 -> 0.2; day 45 competing; day 60: S(60-)=0.8*0.75
    # = 0.6, 1 of 3 at risk recovers -> +0.2 -> 0.4
    assert inc["cumulative_incidence"].round(12).tolist()[:2] == [0.2, 0.4]
    assert inc["n_recovered"].iloc[0] == 2 and inc["n_competing"].iloc[0] == 2


# ---------------------------------------------------------------------------------------
# chimerism and engraftment (delegated to cartrial.response.transplant)
# ---------------------------------------------------------------------------------------
def test_chimerism_status_array():
    out = chimerism_status([99.0, 95.0, 94.9, np.nan])
    assert out.tolist() == ["full", "full", "mixed", None]
    assert chimerism_status([95.0], inclusive=False).tolist() == ["mixed"]
    with pytest.raises(ValueError, match="expected 0 to 100"):
        chimerism_status([120.0])


def test_engraftment_counted_from_the_sct_day():
    # SCT on day 30 after CAR-T; ANC nadir, then >= 0.5 on days 41, 42, 43 (CIBMTR: first
    # of three consecutive values) -> day 11 after SCT
    days = [25, 31, 35, 40, 41, 42, 43]
    anc = [2.0, 0.1, 0.05, 0.4, 0.6, 0.7, 0.9]
    assert engraftment_after_sct(days, anc, sct_day=30) == 11
    plt = [50, 10, 8, 15, 25, 30, 40]
    assert engraftment_after_sct(days, plt, 30, kind="platelet") == 11
    # a platelet transfusion on day 38 (within 7 days before day 41) blocks days 41-43
    assert math.isnan(engraftment_after_sct(days, plt, 30, "platelet", transfusion_days=[38]))
