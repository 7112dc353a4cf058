"""The bedside form grades IEC-HS when its inputs are entered (ASTCT consensus, Hines
2023: identification and grading table), the API returns it, and the patient page shows
CAR-HEMATOTOX (Rejeski 2021) and EASIX / m-EASIX (Luft 2017; Pennisi 2021) from the
observations before infusion. Expected values are worked by hand from those rules."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient
from webhelpers import add_patient, basic, login

from cartrial.web import bedside

CRS_ICANS = {
    "day": "9",
    "temperature_c": "37.0",
    "hypotension": "no",
    "vasopressors": "0",
    "vasopressin": "no",
    "oxygen": "none",
    "ice_score": "10",
    "consciousness": "alert",
    "seizure": "none",
    "motor_weakness": "no",
    "cerebral_edema": "none",
}
IECHS = {
    "ferritin_ng_ml": "12000",
    "ferritin_baseline_ng_ml": "800",  # 15 x the value at infusion (> 2 x)
    "fibrinogen_mg_dl": "1.2 g/L",  # 120 mg/dL < 150
    "iechs_attributable": "yes",
    "iechs_other_cause": "no",
    "iechs_immunosuppression": "yes",  # grade 2 row
    "aki_new": "yes",  # grade 3 row: new-onset AKI
}


def test_the_form_is_generated_from_the_registry():
    from cartrial.grading.fields import BEDSIDE_IECHS, FIELDS

    names = [f.name for f in bedside.BEDSIDE_IECHS_FIELDS]
    assert names == list(BEDSIDE_IECHS)
    fib = next(f for f in bedside.BEDSIDE_IECHS_FIELDS if f.name == "fibrinogen_mg_dl")
    assert (fib.lo, fib.hi, fib.unit) == (FIELDS["fibrinogen_mg_dl"].lo, 1500, "mg/dL")
    # no IEC-HS input: no IEC-HS result (never a grade 0 from nothing)
    assert bedside.iechs_result({"temperature_c": 39.0}) is None


def test_bedside_grades_iechs_and_refuses_contradictions(env):
    engine, app = env
    with TestClient(app) as c:
        add_patient(c, "entryA", "A1", "A")
        token = login(c, "entryA")
        r = c.post(
            "/patients/A1/assess",
            data={"csrf_token": token, **CRS_ICANS, **IECHS},
            follow_redirects=False,
        )
        assert r.status_code == 303, r.text
        page = c.get(r.headers["location"]).text
        # new AKI -> grade 3; life-threatening bleeding and dialysis not charted -> up to 4
        assert re.search(
            r'id="iechs-grade">IEC-HS \(IECHS2023, identified\): grade 3 '
            r"\(could be up to 4\)",
            page,
        )
        assert "new-onset acute kidney injury -&gt; grade 3" in page
        assert "CRS (ASTCT2019): grade 0" in page
        saved = c.get("/api/patients/A1/assessments", headers=basic("mon")).json()
        assert saved[0]["inputs"]["fibrinogen_mg_dl"] == 120.0  # canonical unit stored
        # a clinician grade the entered items contradict is refused, nothing saved
        r = c.post(
            "/patients/A1/assess",
            data={"csrf_token": token, **CRS_ICANS, **IECHS, "iechs_grade": "1"},
        )
        assert r.status_code == 422 and 'id="err-iechs_grade"' in r.text
        r = c.post(
            "/patients/A1/assess",
            data={"csrf_token": token, **CRS_ICANS, "fibrinogen_mg_dl": "1.2 kg"},
        )
        assert r.status_code == 422 and 'id="err-fibrinogen_mg_dl"' in r.text
        assert len(c.get("/api/patients/A1/assessments", headers=basic("mon")).json()) == 1
        # the JSON API takes the same inputs (one registry) and returns the IEC-HS grade
        body = {
            "day": 10,
            "ferritin_ng_ml": 12000,
            "ferritin_baseline_ng_ml": 800,
            "iechs_attributable": True,
            "iechs_other_cause": False,
            "dialysis": True,  # grade 4 row: renal failure requiring dialysis
        }
        r = c.post("/api/patients/A1/assessments", json=body, headers=basic("entryA"))
        assert r.status_code == 201, r.text
        out = r.json()["iechs"]
        assert (out["grade"], out["grade_max"], out["status"]) == (4, 4, "identified")


def test_patient_page_shows_the_risk_scores(env):
    engine, app = env
    with TestClient(app) as c:
        add_patient(c, "entryA", "A1", "A")
        h = basic("entryA")
        # before lymphodepletion (day -5): ANC 0.9 (<= 1.2: 1), Hb 8.5 (<= 9.0: 1),
        # platelets 60 (< 75: 2), CRP 40 mg/L = 4.0 mg/dL (>= 3.0: 1), ferritin 2500
        # (> 2000: 2) -> CAR-HEMATOTOX 7, high; m-EASIX = LDH 300 x CRP 4.0 / 60 = 20
        for analyte, value, unit in (
            ("anc", 0.9, "10^9/L"),
            ("hemoglobin", 8.5, "g/dL"),
            ("platelets", 60, "10^9/L"),
            ("crp", 40, "mg/L"),
            ("ferritin", 2500, "ng/mL"),
            ("ldh", 300, "U/L"),
        ):
            r = c.post(
                "/api/patients/A1/observations",
                json={"day": -5, "analyte": analyte, "value": value, "unit": unit},
                headers=h,
            )
            assert r.status_code == 201, r.text
        # an implausible value of another analyte (stored, queried by the rules) does not
        # stop the page: the scores read only their own markers
        r = c.post(
            "/api/patients/A1/observations",
            json={"day": 2, "analyte": "temperature", "value": 49.5, "unit": "C"},
            headers=h,
        )
        assert r.status_code == 201, r.text
        login(c, "entryA")
        page = c.get("/patients/A1").text
        assert re.search(r'id="hematotox">CAR-HEMATOTOX: 7 — high risk', page), page
        assert re.search(r"m-EASIX: 20 ", page)
        add_patient(c, "entryA", "A2", "A")
        assert 'id="risk-scores"' not in c.get("/patients/A2").text  # no inputs, no scores
