"""Endpoint derivation on hand-worked cohorts.

Every expected value below is worked out by hand from the definitions in the module
docstring of ``cartrial.endpoints.derive`` (PATHWAY.md; Tan 2023; ELN 2022; Cheson 2007;
Gooley 1999), written next to the data, never copied from cartrial's output:

- OS: death of any cause; else censored at the last day known alive (latest day in any
  table: events, AE onset/resolution, observations).
- Populations: only infused patients (SAF); a blank ``infused`` is missing, not infused.
- PFS: earliest relapse/progression/death. EFS: as PFS, plus failure to reach CR/CRh/CRi
  in the window (default 0-35) = event at day 0 (ELN 2022; a PR is a failure). DFS: only
  patients in CR/CRi/CRh in the window. DOR: responders, from the first objective response.
- CIR/NRM: among patients in CR/CRh/CRi: first of relapse (cause 1) or death without
  relapse (cause 2); else cause 0.
- censor_at_sct: SCT before the event censors PFS/EFS/DFS/DOR/CIR/NRM at SCT; OS never.
"""

from __future__ import annotations

import pandas as pd
import pytest

from cartrial.cohort import load_cohort
from cartrial.endpoints import (
    EndpointOptions,
    best_response,
    derive_endpoints,
    last_known_alive,
)

# patients: P5 has a blank "infused" (missing: excluded), P8 was not infused (excluded)
PATIENTS = """
patient_id,infused,arm
P1,yes,A
P2,yes,A
P3,yes,B
P4,yes,B
P5,,A
P6,yes,B
P7,yes,A
P8,no,B
P9,yes,A
"""
# line numbers (header = line 1) are given in the comments, for the `source` checks
EVENTS = """
patient_id,day,event,response,mrd,cause
P1,28,response,CR,negative,
P1,100,relapse,,,
P1,150,death,,,relapse
P2,28,response,PR,,
P2,200,last_contact,,,
P3,28,response,NR,,
P3,60,death,,,infection
P4,30,response,CRi,positive,
P4,50,sct,,,
P4,120,relapse,,,
P4,300,last_contact,,,
P5,60,response,CR,,
P5,90,last_contact,,,
P6,14,response,PR,,
P6,28,response,CR,,
P6,40,relapse,,,
P6,80,death,,,relapse
P8,28,response,NR,,
P8,30,death,,,
P9,28,response,CRh,,
P9,200,death,,,gvhd
"""
# lines: P1 2-4, P2 5-6, P3 7-8, P4 9-12, P5 13-14, P6 15-18, P8 19-20, P9 21-22
ADVERSE = """
patient_id,term,onset_day,resolution_day,grade
P2,CRS,3,10,2
P7,CRS,5,20,1
"""
OBSERVATIONS = """
patient_id,day,analyte,value,unit
P2,250,crp,1,mg/L
P7,12,crp,2,mg/L
"""

# (endpoint, patient) -> (time_days, event), worked by hand, default options
EXPECTED = {
    # P1: CR d28, relapse d100, death d150
    ("OS", "P1"): (150, 1),
    ("PFS", "P1"): (100, 1),
    ("EFS", "P1"): (100, 1),
    ("DFS", "P1"): (100, 1),
    ("DOR", "P1"): (100 - 28, 1),
    ("CIR", "P1"): (100, 1),
    ("NRM", "P1"): (100, 0),
    # P2: PR d28, last contact d200, but a CRP on d250 -> last known alive 250
    ("OS", "P2"): (250, 0),
    ("PFS", "P2"): (250, 0),
    ("EFS", "P2"): (0, 1),  # PR is not CR/CRh/CRi: treatment failure at day 0
    ("DOR", "P2"): (250 - 28, 0),
    # P3: NR d28, death d60 -> EFS event at day 0 (no response)
    ("OS", "P3"): (60, 1),
    ("PFS", "P3"): (60, 1),
    ("EFS", "P3"): (0, 1),
    # P4: CRi d30, SCT d50, relapse d120, last contact d300
    ("OS", "P4"): (300, 0),
    ("PFS", "P4"): (120, 1),
    ("EFS", "P4"): (120, 1),
    ("DFS", "P4"): (120, 1),
    ("DOR", "P4"): (120 - 30, 1),
    ("CIR", "P4"): (120, 1),
    ("NRM", "P4"): (120, 0),
    # P5: blank infused -> missing -> outside every population
    # P6: PR d14, CR d28, relapse d40, death d80; DOR from the first response (d14)
    ("OS", "P6"): (80, 1),
    ("PFS", "P6"): (40, 1),
    ("EFS", "P6"): (40, 1),
    ("DFS", "P6"): (40, 1),
    ("DOR", "P6"): (40 - 14, 1),
    ("CIR", "P6"): (40, 1),
    ("NRM", "P6"): (40, 0),
    # P7: no events; AE d5-d20 and CRP d12 -> last known alive 20
    ("OS", "P7"): (20, 0),
    ("PFS", "P7"): (20, 0),
    ("EFS", "P7"): (20, 0),
    # P9: CRh d28, death (GVHD) d200 without relapse
    ("OS", "P9"): (200, 1),
    ("PFS", "P9"): (200, 1),
    ("EFS", "P9"): (200, 1),
    ("DFS", "P9"): (200, 1),
    ("DOR", "P9"): (200 - 28, 1),
    ("CIR", "P9"): (200, 0),
    ("NRM", "P9"): (200, 1),
}
# competing-risk cause codes (CR population): 1 relapse first, 2 death without relapse
CAUSE = {"P1": 1, "P4": 1, "P6": 1, "P9": 2}
SAFETY = {"P1", "P2", "P3", "P4", "P6", "P7", "P9"}


@pytest.fixture(scope="module")
def folder(tmp_path_factory, make_cohort_dir):
    return make_cohort_dir(
        tmp_path_factory.mktemp("hand"),
        patients=PATIENTS,
        events=EVENTS,
        adverse_events=ADVERSE,
        observations=OBSERVATIONS,
    )


@pytest.fixture(scope="module")
def cohort(folder):
    return load_cohort(folder)


@pytest.fixture(scope="module")
def table(cohort):
    return derive_endpoints(cohort)


def _get(table: pd.DataFrame, endpoint: str, pid: str) -> pd.Series:
    rows = table[(table["endpoint"] == endpoint) & (table["patient_id"] == pid)]
    assert len(rows) == 1, (endpoint, pid, len(rows))
    return rows.iloc[0]


def test_output_columns(table):
    for col in (
        "patient_id",
        "endpoint",
        "time_days",
        "event",
        "event_desc",
        "censor_desc",
        "source",
        "cause",
    ):
        assert col in table.columns


def test_every_endpoint_row_matches_hand_worked_values(table):
    got = {
        (r.endpoint, r.patient_id): (float(r.time_days), int(r.event)) for r in table.itertuples()
    }
    assert got == {k: (float(t), e) for k, (t, e) in EXPECTED.items()}


@pytest.mark.parametrize("key", sorted(EXPECTED), ids=lambda k: f"{k[0]}-{k[1]}")
def test_each_row(table, key):
    """One test per row, so a failure names the endpoint and patient."""
    row = _get(table, *key)
    assert (float(row["time_days"]), int(row["event"])) == (
        float(EXPECTED[key][0]),
        EXPECTED[key][1],
    )


def test_non_infused_patient_excluded(table):
    assert "P8" not in set(table["patient_id"])
    assert "P5" not in set(table["patient_id"])  # blank infused is missing, never true
    assert set(table.loc[table["endpoint"] == "OS", "patient_id"]) == SAFETY
    for ep in ("CIR", "NRM"):
        assert set(table.loc[table["endpoint"] == ep, "patient_id"]) == set(CAUSE)


def test_dfs_only_complete_remissions(table):
    # CR/CRi/CRh in the window: P1 (CR), P4 (CRi), P6 (CR on d28), P9 (CRh)
    assert set(table.loc[table["endpoint"] == "DFS", "patient_id"]) == {"P1", "P4", "P6", "P9"}


def test_dor_only_responders(table):
    assert set(table.loc[table["endpoint"] == "DOR", "patient_id"]) == {
        "P1",
        "P2",
        "P4",
        "P6",
        "P9",
    }


def test_competing_risk_causes(table):
    for pid, cause in CAUSE.items():
        cir, nrm = _get(table, "CIR", pid), _get(table, "NRM", pid)
        assert int(cir["cause"]) == int(nrm["cause"]) == cause, pid
        assert cir["time_days"] == nrm["time_days"]
        assert int(cir["event"]) == int(cause == 1)
        assert int(nrm["event"]) == int(cause == 2)


def test_relapse_then_death_is_cir_event_and_nrm_competing(table):
    nrm = _get(table, "NRM", "P1")
    assert int(nrm["event"]) == 0 and int(nrm["cause"]) == 1
    assert "competing" in nrm["censor_desc"] and "relapse" in nrm["censor_desc"]
    cir = _get(table, "CIR", "P9")
    assert "competing" in cir["censor_desc"] and "death" in cir["censor_desc"]


def test_cause_is_empty_outside_competing_risks(table):
    assert table.loc[~table["endpoint"].isin(["CIR", "NRM"]), "cause"].isna().all()


def test_source_names_the_deciding_row(table):
    # P1 OS: the death on line 4 of events.csv
    assert "events.csv row 4" in _get(table, "OS", "P1")["source"]
    # P1 PFS: the relapse on line 3
    assert "events.csv row 3" in _get(table, "PFS", "P1")["source"]
    # P2 OS censored at the CRP on line 2 of observations.csv (day 250)
    assert "observations.csv row 2" in _get(table, "OS", "P2")["source"]
    # P7 censored at the AE resolving on day 20 (line 3 of adverse_events.csv)
    assert "adverse_events.csv row 3" in _get(table, "OS", "P7")["source"]
    # P3 EFS event at day 0 comes from the NR assessment on line 7
    assert "events.csv row 7" in _get(table, "EFS", "P3")["source"]
    # P9 NRM: the death on line 22
    assert "events.csv row 22" in _get(table, "NRM", "P9")["source"]


def test_descriptions(table):
    os1 = _get(table, "OS", "P1")
    assert "death" in os1["event_desc"] and os1["censor_desc"] == ""
    os2 = _get(table, "OS", "P2")
    assert os2["event_desc"] == "" and "censor" in os2["censor_desc"]


def test_efs_nonresponse_option_off(cohort):
    t = derive_endpoints(cohort, EndpointOptions(efs_nonresponse_event=False))
    row = _get(t, "EFS", "P3")
    assert (float(row["time_days"]), int(row["event"])) == (60.0, 1)
    assert "events.csv row 8" in row["source"]


def test_censor_at_sct(cohort):
    t = derive_endpoints(cohort, EndpointOptions(censor_at_sct=True))
    # P4: SCT on day 50 comes before the relapse on day 120
    for ep in ("PFS", "EFS", "DFS", "CIR", "NRM"):
        row = _get(t, ep, "P4")
        assert (float(row["time_days"]), int(row["event"])) == (50.0, 0), ep
        assert "events.csv row 10" in row["source"], ep
    assert (float(_get(t, "DOR", "P4")["time_days"]), int(_get(t, "DOR", "P4")["event"])) == (
        50.0 - 30.0,
        0,
    )
    assert int(_get(t, "CIR", "P4")["cause"]) == 0
    # OS unaffected
    os4 = _get(t, "OS", "P4")
    assert (float(os4["time_days"]), int(os4["event"])) == (300.0, 0)
    # patients without SCT unchanged
    base = derive_endpoints(cohort)
    for pid in ("P1", "P2", "P3", "P6", "P9"):
        for ep in ("OS", "PFS", "EFS", "CIR", "NRM"):
            if (ep, pid) not in EXPECTED:
                continue
            assert _get(t, ep, pid)["time_days"] == _get(base, ep, pid)["time_days"]
            assert _get(t, ep, pid)["event"] == _get(base, ep, pid)["event"]


def test_sct_after_relapse_does_not_censor(make_cohort_dir, tmp_path):
    folder = make_cohort_dir(
        tmp_path,
        patients="patient_id\nQ1\n",
        events="patient_id,day,event,response\nQ1,28,response,CR\nQ1,100,relapse,\n"
        "Q1,130,sct,\nQ1,400,last_contact,\n",
    )
    t = derive_endpoints(load_cohort(folder), EndpointOptions(censor_at_sct=True))
    assert (float(_get(t, "PFS", "Q1")["time_days"]), int(_get(t, "PFS", "Q1")["event"])) == (
        100.0,
        1,
    )
    assert int(_get(t, "CIR", "Q1")["cause"]) == 1


def test_censor_at_new_therapy(make_cohort_dir, tmp_path):
    folder = make_cohort_dir(
        tmp_path,
        patients="patient_id\nQ1\n",
        events="patient_id,day,event\nQ1,70,new therapy\nQ1,100,relapse\nQ1,400,last_contact\n",
    )
    cohort = load_cohort(folder)
    t = derive_endpoints(cohort, EndpointOptions(censor_at_new_therapy=True))
    assert (float(_get(t, "PFS", "Q1")["time_days"]), int(_get(t, "PFS", "Q1")["event"])) == (
        70.0,
        0,
    )
    assert float(_get(t, "OS", "Q1")["time_days"]) == 400.0
    # the option is off by default
    t0 = derive_endpoints(cohort)
    assert (float(_get(t0, "PFS", "Q1")["time_days"]), int(_get(t0, "PFS", "Q1")["event"])) == (
        100.0,
        1,
    )


def test_dor_counts_only_events_after_the_first_response(make_cohort_dir, tmp_path):
    """Progression on day 10, CR on day 28, relapse on day 100: DOR = 100 - 28, an event.

    The day-10 progression happened before the response began, so it cannot end it; the
    relapse on day 100 does (DOR: first response -> relapse/progression/death).
    """
    folder = make_cohort_dir(
        tmp_path,
        patients="patient_id\nQ1\n",
        events="patient_id,day,event,response\nQ1,10,progression,\nQ1,28,response,CR\n"
        "Q1,100,relapse,\nQ1,200,last_contact,\n",
    )
    t = derive_endpoints(load_cohort(folder))
    dor = _get(t, "DOR", "Q1")
    assert (float(dor["time_days"]), int(dor["event"])) == (72.0, 1)
    assert "events.csv row 4" in dor["source"]
    pfs = _get(t, "PFS", "Q1")
    assert (float(pfs["time_days"]), int(pfs["event"])) == (10.0, 1)


@pytest.mark.parametrize("order", ["relapse first", "death first"])
def test_same_day_relapse_and_death_does_not_depend_on_row_order(make_cohort_dir, tmp_path, order):
    """Relapse and death recorded on the same day: the competing-risk cause must not flip
    with the order of the rows in the file (relapse is the first failure: cause 1)."""
    rows = ["Q1,90,relapse,,", "Q1,90,death,relapse,"]
    if order == "death first":
        rows.reverse()
    folder = make_cohort_dir(
        tmp_path,
        patients="patient_id\nQ1\n",
        events="patient_id,day,event,cause,response\nQ1,28,response,,CR\n" + "\n".join(rows) + "\n",
    )
    t = derive_endpoints(load_cohort(folder))
    cir, nrm = _get(t, "CIR", "Q1"), _get(t, "NRM", "Q1")
    assert float(cir["time_days"]) == 90.0
    assert (int(cir["cause"]), int(cir["event"]), int(nrm["event"])) == (1, 1, 0)


def test_endpoint_subset(cohort):
    t = derive_endpoints(cohort, endpoints=["os", "NRM"])
    assert set(t["endpoint"]) == {"OS", "NRM"}
    assert len(t) == len(SAFETY) + len(CAUSE)


def test_no_follow_up_recorded_is_day_zero(make_cohort_dir, tmp_path):
    folder = make_cohort_dir(
        tmp_path,
        patients="patient_id\nQ1\nQ2\n",
        observations="patient_id,day,analyte,value,unit\nQ2,-5,crp,3,mg/L\n",
    )
    cohort = load_cohort(folder)
    lka = last_known_alive(cohort)
    # Q1 has no dated row; Q2 only a pre-infusion lab (day -5): both known alive at day 0
    assert lka.loc["Q1", "day"] == 0.0 and lka.loc["Q2", "day"] == 0.0
    t = derive_endpoints(cohort)
    assert (t.loc[t["endpoint"] == "OS", "time_days"] == 0.0).all()
    assert (t.loc[t["endpoint"] == "OS", "event"] == 0).all()


def test_last_known_alive_uses_every_table(cohort):
    lka = last_known_alive(cohort)
    expected = {
        "P1": 150,
        "P2": 250,
        "P3": 60,
        "P4": 300,
        "P5": 90,
        "P6": 80,
        "P7": 20,
        "P8": 30,
        "P9": 200,
    }
    assert {k: float(v) for k, v in lka["day"].items()} == {
        k: float(v) for k, v in expected.items()
    }


# --------------------------------------------------------------------------- best response


def test_best_response_hand_worked(cohort):
    best = best_response(cohort).set_index("patient_id")
    expected = {
        "P1": "CR",
        "P2": "PR",
        "P3": "NR",
        "P4": "CRi",
        "P6": "CR",
        "P8": "NR",
        "P9": "CRh",
    }
    for pid, resp in expected.items():
        assert best.loc[pid, "best_response"] == resp, pid
    # P5's CR on day 60 is outside the default window 0-35; P7 was never assessed
    assert pd.isna(best.loc["P5", "best_response"]) and pd.isna(best.loc["P7", "best_response"])
    assert pd.isna(best.loc["P5", "responder"])
    assert best.loc["P6", "day"] == 28.0
    assert best.loc["P1", "mrd"] == "negative" and best.loc["P4", "mrd"] == "positive"
    assert bool(best.loc["P9", "complete_remission"]) and bool(best.loc["P2", "responder"])
    assert not bool(best.loc["P2", "complete_remission"]) and not bool(best.loc["P3", "responder"])


def test_best_response_window_option(cohort):
    best = best_response(cohort, window=(0, 90)).set_index("patient_id")
    assert best.loc["P5", "best_response"] == "CR" and best.loc["P5", "day"] == 60.0


@pytest.mark.parametrize(
    ("assessments", "best", "day"),
    [
        ([(14, "PR"), (21, "CRi")], "CRi", 21),
        ([(7, "NR"), (28, "PR")], "PR", 28),
        ([(14, "CR"), (28, "CR")], "CR", 14),  # tie: the earliest assessment
        ([(21, "CRi"), (28, "CRh")], "CRh", 28),  # CRh ranks above CRi
        ([(14, "MLFS"), (28, "PR")], "MLFS", 14),
        ([(14, "SD"), (28, "PD")], "SD", 14),
        ([(28, "PR"), (60, "CR")], "PR", 28),  # the day-60 CR is outside the window
        ([(35, "CR")], "CR", 35),  # the window is inclusive
        ([(14, "PR"), (35.5, "CR")], "PR", 14),
    ],
)
def test_best_response_ranking(make_cohort_dir, tmp_path, assessments, best, day):
    lines = "\n".join(f"Q1,{d},response,{r}" for d, r in assessments)
    folder = make_cohort_dir(
        tmp_path,
        patients="patient_id\nQ1\n",
        events="patient_id,day,event,response\n" + lines + "\n",
    )
    row = best_response(load_cohort(folder)).iloc[0]
    assert (row["best_response"], float(row["day"])) == (best, float(day))
