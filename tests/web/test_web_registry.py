"""The JSON API's bedside model is generated from the grading field registry: the same
range (e.g. O2 flow at most 80 L/min) is enforced by the API as by the engines and form."""

from __future__ import annotations

from fastapi.testclient import TestClient
from webhelpers import add_patient, basic

from cartrial.grading.fields import BEDSIDE_FORM, FIELDS


def test_api_schema_and_limits_come_from_the_registry(env):
    engine, app = env
    with TestClient(app) as c:
        add_patient(c, "entryA", "A1", "A")
        h = basic("entryA")
        schema = c.get("/openapi.json", headers=h).json()["components"]["schemas"]
        props = schema["Assess"]["properties"]
        assert set(BEDSIDE_FORM) <= set(props)
        flow = FIELDS["o2_flow_l_min"]
        assert flow.hi == 80
        ok = c.post("/api/patients/A1/assessments", json={"day": 2, "o2_flow_l_min": 80}, headers=h)
        assert ok.status_code == 201, ok.text
        bad = c.post(
            "/api/patients/A1/assessments", json={"day": 3, "o2_flow_l_min": 80.5}, headers=h
        )
        assert bad.status_code == 422 and "o2_flow_l_min" in bad.text
