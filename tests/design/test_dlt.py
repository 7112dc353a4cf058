"""DLT evaluation from a cohort written the way a site writes it, checked by hand."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from cartrial import load_cohort
from cartrial.design.dlt import DLTDefinition, dose_index, evaluate_dlt, parse_dose
from cartrial.design.escalation import BOIN, ThreePlusThree
from cartrial.design.monitor import dsmb_summary, next_dose_recommendation

PATIENTS = """\
patient_id,age_years,sex,diagnosis,product_source,dose_level,dose_per_kg,infused
P01,34,M,T-ALL,new_donor,5e5/kg,,yes
P02,41,F,T-ALL,autologous,5 x 10^5 /kg,,yes
P03,29,M,T-LBL,prior_sct_donor,1e6/kg,,yes
P04,55,F,T-ALL,new_donor,1e6/kg,,yes
P05,38,M,AML,new_donor,1×10^6/kg,,yes
P06,47,F,T-ALL,new_donor,,2100000,yes
P07,22,M,T-ALL,new_donor,2e6/kg,,no
P08,60,F,T-ALL,autologous,2e6/kg,,yes
P09,51,M,T-ALL,universal,2e6/kg,,yes
"""
EVENTS = """\
patient_id,day,event,response,cause
P01,60,last_contact,,
P02,90,last_contact,,
P03,45,last_contact,,
P04,14,last_contact,,
P05,20,death,,infection
P06,100,last_contact,,
P08,200,last_contact,,
P09,365,last_contact,,
"""
AES = """\
patient_id,term,onset_day,resolution_day,grade,system
P01,CRS,2,4,3,ASTCT2019
P02,CRS,3,9,3,ASTCT2019
P03,ICANS,31,35,3,ASTCT2019
P03,neutropenia,5,40,4,CTCAE5
P04,thrombocytopenia,2,20,4,CTCAE5
P05,ICANS,6,9,3,ASTCT2019
P06,aGVHD,20,50,3,MAGIC
P08,aGVHD,15,40,3,MAGIC
P09,CRS,1,3,2,ASTCT2019
"""


@pytest.fixture
def cohort(tmp_path, make_cohort_dir):
    return load_cohort(
        make_cohort_dir(tmp_path, patients=PATIENTS, events=EVENTS, adverse_events=AES)
    )


def test_dlt_rules_by_hand(cohort):
    ev = evaluate_dlt(cohort).set_index("patient_id")
    # P01: grade 3 CRS resolved within 2 days (<= 72 h) -> no DLT
    assert ev.loc["P01", "dlt"] == False  # noqa: E712
    # P02: grade 3 CRS lasting 6 days -> DLT, the CRS rule named
    assert ev.loc["P02", "dlt"] == True  # noqa: E712
    assert ev.loc["P02", "dlt_rules"].startswith("CRS grade >=3")
    # P03: ICANS on day 31 is outside the window; grade 4 neutropenia past day 28 is a DLT
    assert ev.loc["P03", "dlt_rules"] == "grade 4 cytopenia beyond day 28"
    # P04: grade 4 cytopenia resolved by day 20, followed only to day 14 -> not evaluable
    assert not ev.loc["P04", "evaluable"] and ev.loc["P04", "dlt"] == False  # noqa: E712
    assert "day 20" in ev.loc["P04", "not_evaluable_reason"]  # AE resolution is follow-up
    # P05: died day 20 but grade 3 ICANS on day 6 -> DLT, evaluable
    assert ev.loc["P05", "evaluable"] and ev.loc["P05", "dlt_rules"] == "ICANS grade >=3"
    # P06: donor-derived aGVHD grade 3 -> DLT; P08 the same AE, autologous -> not a DLT
    assert ev.loc["P06", "dlt"] == True  # noqa: E712
    assert ev.loc["P08", "dlt"] == False  # noqa: E712
    # P07: not infused -> outside the safety population, DLT missing
    assert not ev.loc["P07", "evaluable"] and pd.isna(ev.loc["P07", "dlt"])
    assert ev.loc["P09", "dlt"] == False  # noqa: E712


def test_blank_grade_makes_dlt_unknown(cohort):
    """A grade the store holds as missing (the web form left it blank) is not 0."""
    import dataclasses

    ae = cohort.adverse_events.copy()
    ae.loc[ae["patient_id"] == "P09", "grade"] = pd.NA
    ev = evaluate_dlt(dataclasses.replace(cohort, adverse_events=ae)).set_index("patient_id")
    assert pd.isna(ev.loc["P09", "dlt"])
    assert ev.loc["P09", "not_evaluable_reason"] == "DLT status unknown: AE grade missing"


def test_dlt_window_is_declarative(cohort):
    ev = evaluate_dlt(cohort, DLTDefinition(window=(0.0, 35.0))).set_index("patient_id")
    assert "ICANS grade >=3" in ev.loc["P03", "dlt_rules"]


@pytest.mark.parametrize(
    ("text", "value"),
    [("5e5/kg", 5e5), ("5 x 10^5 /kg", 5e5), ("1×10^6/kg", 1e6), ("2.0E6", 2e6), ("n/a", None)],
)
def test_parse_dose(text, value):
    assert parse_dose(text) == value


def test_dose_index_uses_label_then_per_kg(cohort):
    idx = dose_index(cohort.patients, [5e5, 1e6, 2e6])
    assert idx.tolist() == [0, 0, 1, 1, 1, 2, 2, 2, 2]
    assert dose_index(cohort.patients, [1e7]).tolist() == [-1] * 9
    # a label that names no design dose falls back to the recorded dose per kg
    p = pd.DataFrame({"dose_level": ["2 million/kg", "5×10⁵/kg"], "dose_per_kg": [2.1e6, None]})
    assert dose_index(p, [5e5, 1e6, 2e6]).tolist() == [2, 0]


def test_next_dose_recommendation_names_rule_and_table(cohort):
    rec = next_dose_recommendation(cohort, BOIN(0.3, 3), [5e5, 1e6, 2e6], current_dose=1)
    t = rec.dlt_table.set_index("dose")
    # dose 2: P03 (DLT), P05 (DLT) evaluable; P04 not evaluable
    assert (t.loc[2, "evaluable"], t.loc[2, "dlt"], t.loc[2, "infused"]) == (2, 2, 3)
    # dose 3: P06 DLT, P08 and P09 no DLT; P07 not infused
    assert (t.loc[3, "evaluable"], t.loc[3, "dlt"], t.loc[3, "infused"]) == (3, 1, 3)
    assert rec.decision.action == "de-escalate" and rec.decision.next_dose == 0
    assert "lambda_d" in rec.decision.rule and "not an action" in rec.text


def test_next_dose_three_plus_three(cohort):
    rec = next_dose_recommendation(cohort, ThreePlusThree(3), [5e5, 1e6, 2e6], current_dose=0)
    assert rec.decision.action == "stay"  # 1/3 at dose 1 (P02)


def test_dsmb_summary_against_independent_count(cohort):
    s = dsmb_summary(cohort, theta=0.3, cutoff=0.9)
    assert (s["enrolled"], s["infused"]) == (9, 8)
    assert s["dlt"] == 4 and s["dlt_evaluable"] == 7  # all infused but P04
    assert s["crs_grade3plus"] == 2 and s["icans_grade3plus"] == 2
    assert s["deaths_by_cause"] == {"infection": 1}
    from scipy.stats import beta

    assert s["boundary"]["posterior_prob"] == pytest.approx(beta.sf(0.3, 5, 4))
    assert s["boundary"]["stop_signal"] == (beta.sf(0.3, 5, 4) > 0.9)


def test_synthetic_cohort_end_to_end(tmp_path):
    from typer.testing import CliRunner

    from cartrial.cli import app

    out = tmp_path / "syn"
    r = CliRunner().invoke(app, ["simulate", "--patients", "30", "--seed", "1", "-o", str(out)])
    assert r.exit_code == 0, r.output
    cohort = load_cohort(out)
    ev = evaluate_dlt(cohort)
    # independent: a patient with a grade >= 3 ICANS in days 0-28 must be a DLT
    ae = cohort.adverse_events
    icans = ae[(ae["term"] == "ICANS") & (ae["grade"] >= 3) & ae["onset_day"].between(0, 28)]
    infused = set(ev.loc[ev["infused"] == "yes", "patient_id"])
    for pid in set(icans["patient_id"]) & infused:
        assert ev.set_index("patient_id").loc[pid, "dlt"] == True  # noqa: E712
    assert np.all(ev.loc[ev["dlt"].fillna(False), "dlt_rules"].str.len() > 0)
    r = CliRunner().invoke(app, ["design", "dlt", str(out)])
    assert r.exit_code == 0, r.output
    assert "Rule: BOIN" in r.output


def test_crs3_or_nrm_by_hand(cohort):
    from cartrial.design.monitor import crs3_or_nrm

    t = crs3_or_nrm(cohort).set_index("patient_id")
    # P01, P02 grade 3 CRS; P05 died day 20 of infection with no relapse -> NRM
    assert t.index[t["event"]].tolist() == ["P01", "P02", "P05"]
    assert t.loc["P05", "nrm"] and not t.loc["P01", "nrm"]
    # followed to day 100 or with the event: P04 (day 20), P03 (day 45),
    # P01 (day 60), P02 (day 90) are short, but P01/P02 had the event
    assert sorted(t.index[t["evaluable"]]) == ["P01", "P02", "P05", "P06", "P08", "P09"]
    s = dsmb_summary(cohort)
    assert (s["crs3_or_nrm_day100"]["events"], s["crs3_or_nrm_day100"]["evaluable"]) == (3, 6)
