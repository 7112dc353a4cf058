"""Edit and delete of bedside assessments and delete of patients, from the UI and the API
(issue 15): a reason once past entry, the audit trail with old -> new values, locked
records refused, site and role rules, CSRF, redirect-after-POST, field history beside the
field, and an edited assessment graded again so its grade never disagrees with its inputs."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient
from sqlalchemy import select
from webhelpers import add_patient, basic, count, csrf_of, login

from cartrial.store.database import session_factory
from cartrial.store.models import (
    AdverseEvent,
    Assessment,
    AuditEntry,
    DataQuery,
    Event,
    Patient,
)

#: a bedside form as a site types it (yes/no words, blanks for what was not measured)
BEDSIDE = {
    "day": "4",
    "temperature_c": "39.2",
    "hypotension": "yes",
    "vasopressors": "1",
    "vasopressin": "no",
    "oxygen": "none",
    "o2_flow_l_min": "",
    "ice_orientation": "4",
    "ice_naming": "3",
    "ice_commands": "1",
    "ice_writing": "1",
    "ice_attention": "0",
    "consciousness": "awakens_to_voice",
    "seizure": "none",
    "motor_weakness": "no",
    "cerebral_edema": "none",
}


def _direct_grades(inputs: dict) -> tuple[int | None, int | None]:
    """The grading engines called directly on stored inputs (independent of the web)."""
    from cartrial.grading import grade_crs, grade_icans

    obs = {k: v for k, v in inputs.items() if k != "day" and v is not None}
    return grade_crs(obs, system="ASTCT2019").grade, grade_icans(obs).grade


def _assess(c, token: str, pid: str = "A1", **changes) -> dict:
    r = c.post(
        f"/patients/{pid}/assess",
        data={"csrf_token": token, **BEDSIDE, **changes},
        follow_redirects=False,
    )
    assert r.status_code == 303, r.text
    rid = int(re.search(r"saved=(\d+)", r.headers["location"]).group(1))
    return c.get(f"/api/assessments/{rid}", headers=basic("mon")).json()


def _audit(engine, table: str, action: str) -> list[AuditEntry]:
    with session_factory(engine)() as s:
        return list(
            s.scalars(
                select(AuditEntry)
                .where(AuditEntry.table_name == table, AuditEntry.action == action)
                .order_by(AuditEntry.id)
            )
        )


def test_assessment_edit_in_ui_needs_reason_regrades_and_shows_history(env):
    """Hand-worked ASTCT 2019 (Lee et al. 2019, Table 2): fever 39.2 °C with hypotension
    on one vasopressor is CRS grade 3; the corrected entry (38.5 °C, no hypotension, no
    vasopressor, no oxygen) is fever only: grade 1."""
    engine, app = env
    with TestClient(app) as c:
        add_patient(c, "entryA", "A1", "A")
        token = login(c, "entryA")
        rec = _assess(c, token)
        assert rec["crs_grade"] == 3
        page = c.get("/patients/A1")
        assert f'href="/records/assessments/{rec["id"]}/edit"' in page.text
        edit = c.get(f"/records/assessments/{rec['id']}/edit")
        assert edit.status_code == 200
        assert re.search(r'name="temperature_c"[^>]*value="39.2"', edit.text)
        assert 'id="hist-temperature_c"' in edit.text  # the entry itself is history
        form = {
            "csrf_token": csrf_of(edit.text),
            "version": str(rec["version"]),
            "day": "4",
            "temperature_c": "38.5",
            "hypotension": "no",
            "vasopressors": "0",
            "vasopressin": "no",
            "oxygen": "none",
            "ice_score": "9",
            "consciousness": "awakens_to_voice",
            "seizure": "none",
            "motor_weakness": "no",
            "cerebral_edema": "none",
            "age_years": "30",
        }
        # no reason: refused, nothing stored
        r = c.post(f"/records/assessments/{rec['id']}/edit", data=form, follow_redirects=False)
        assert r.status_code == 422 and 'id="err-reason"' in r.text
        same = c.get(f"/api/assessments/{rec['id']}", headers=basic("mon")).json()
        assert same["version"] == rec["version"] and same["crs_grade"] == 3
        # a forged form (no CSRF token) is refused
        bad = c.post(
            f"/records/assessments/{rec['id']}/edit",
            data={**form, "csrf_token": "x", "reason": "r"},
            follow_redirects=False,
        )
        assert bad.status_code == 403
        r = c.post(
            f"/records/assessments/{rec['id']}/edit",
            data={**form, "reason": "temperature misread from the chart"},
            follow_redirects=False,
        )
        assert r.status_code == 303 and r.headers["location"] == "/patients/A1"
        new = c.get(f"/api/assessments/{rec['id']}", headers=basic("mon")).json()
        assert new["inputs"]["temperature_c"] == 38.5 and new["inputs"]["hypotension"] is False
        assert new["crs_grade"] == 1  # hand-worked
        assert (new["crs_grade"], new["icans_grade"]) == _direct_grades(new["inputs"])
        assert new["version"] == rec["version"] + 1
        # the field's history beside it: old -> new with who and why
        edit = c.get(f"/records/assessments/{rec['id']}/edit").text
        hist = re.search(r'id="hist-temperature_c">(.*?)</details>', edit, re.S).group(1)
        assert "39.2 → 38.5" in hist and "temperature misread from the chart" in hist
        assert "entryA" in hist
        assert re.search(r'id="grades">[^<]*CRS 1,', edit)
    (upd,) = _audit(engine, "assessments", "update")
    assert upd.username == "entryA" and upd.reason == "temperature misread from the chart"
    assert upd.old_values["crs_grade"] == 3 and upd.new_values["crs_grade"] == 1
    assert upd.old_values["inputs"]["temperature_c"] == 39.2
    assert upd.new_values["inputs"]["temperature_c"] == 38.5


def test_assessment_api_edit_delete_roles_sites_versions(env):
    engine, app = env
    with TestClient(app) as c:
        add_patient(c, "entryA", "A1", "A")
        rec = _assess(c, login(c, "entryA"))
        url = f"/api/assessments/{rec['id']}"
        change = {"version": rec["version"], "consciousness": "alert", "ice_score": 10}
        assert c.patch(url, json=change, headers=basic("entryA")).status_code == 422  # reason
        for who, status in (("entryB", 404), ("mon", 403), ("stat", 403)):
            r = c.patch(url, json={**change, "reason": "x"}, headers=basic(who))
            assert r.status_code == status, (who, r.text)
            r = c.request(
                "DELETE", url, json={"version": rec["version"], "reason": "x"}, headers=basic(who)
            )
            assert r.status_code == status, (who, r.text)
        r = c.patch(
            url, json={**change, "reason": "re-examined: alert, ICE 10"}, headers=basic("entryA")
        )
        assert r.status_code == 200, r.text
        new = r.json()
        # ICANS: ICE 10 and alert, no seizure/weakness/edema -> grade 0 (Lee 2019, Table 4)
        assert new["icans_grade"] == 0 and new["crs_grade"] == 3  # CRS inputs kept
        assert (new["crs_grade"], new["icans_grade"]) == _direct_grades(new["inputs"])
        # a stale version and an invalid word are refused, nothing changes
        r = c.patch(url, json={**change, "reason": "again"}, headers=basic("entryA"))
        assert r.status_code == 409
        r = c.patch(
            url,
            json={"version": new["version"], "oxygen": "nasal cannula", "reason": "x"},
            headers=basic("entryA"),
        )
        assert r.status_code == 422
        assert (
            c.request(
                "DELETE", url, json={"version": new["version"]}, headers=basic("entryA")
            ).status_code
            == 422
        )
        r = c.request(
            "DELETE",
            url,
            json={"version": new["version"], "reason": "wrong patient"},
            headers=basic("entryA"),
        )
        assert r.status_code == 200, r.text
        assert c.get(url, headers=basic("mon")).status_code == 404
    assert count(engine, Assessment) == 0
    (gone,) = _audit(engine, "assessments", "delete")
    assert gone.reason == "wrong patient" and gone.username == "entryA"
    assert gone.old_values["icans_grade"] == 0 and gone.old_values["inputs"]["ice_score"] == 10


def test_assessment_delete_in_ui(env):
    engine, app = env
    with TestClient(app) as c:
        add_patient(c, "entryA", "A1", "A")
        rec = _assess(c, login(c, "entryA"))
        edit = c.get(f"/records/assessments/{rec['id']}/edit").text
        data = {"csrf_token": csrf_of(edit), "version": str(rec["version"]), "action": "delete"}
        r = c.post(f"/records/assessments/{rec['id']}/edit", data=data)
        assert r.status_code == 422 and count(engine, Assessment) == 1
        r = c.post(
            f"/records/assessments/{rec['id']}/edit",
            data={**data, "reason": "entered twice"},
            follow_redirects=False,
        )
        assert r.status_code == 303 and count(engine, Assessment) == 0
    (gone,) = _audit(engine, "assessments", "delete")
    assert gone.old_values["crs_grade"] == 3 and gone.reason == "entered twice"


def test_locked_records_refuse_edit_and_delete(env):
    engine, app = env
    with TestClient(app) as c:
        add_patient(c, "entryA", "A1", "A")
        token = login(c, "entryA")
        rec = _assess(c, token)
        assert c.post("/api/patients/A1/lock", headers=basic("mon")).status_code == 200
        rec = c.get(f"/api/assessments/{rec['id']}", headers=basic("mon")).json()
        assert rec["locked"] is True
        url = f"/api/assessments/{rec['id']}"
        body = {"version": rec["version"], "reason": "source re-read"}
        r = c.patch(url, json={**body, "temperature_c": 37.0}, headers=basic("entryA"))
        assert r.status_code == 409 and "locked" in r.json()["detail"]
        r = c.request("DELETE", url, json=body, headers=basic("entryA"))
        assert r.status_code == 409 and "locked" in r.json()["detail"]
        r = c.post(
            f"/records/assessments/{rec['id']}/edit",
            data={
                "csrf_token": token,
                "version": str(rec["version"]),
                "day": "4",
                "temperature_c": "37",
                "reason": "source re-read",
            },
        )
        assert r.status_code == 409
        p = c.get("/api/patients/A1", headers=basic("entryA")).json()
        r = c.request(
            "DELETE",
            "/api/patients/A1",
            json={"version": p["version"], "reason": "withdrawn"},
            headers=basic("entryA"),
        )
        assert r.status_code == 409
        r = c.post(
            "/patients/A1/delete",
            data={"csrf_token": token, "version": str(p["version"]), "reason": "withdrawn"},
        )
        assert r.status_code == 409
        assert 'id="edit-assessments-' not in c.get("/patients/A1").text
    assert count(engine, Patient) == 1 and count(engine, Assessment) == 1
    # the only update of the assessment is the lock itself
    assert [a.new_values for a in _audit(engine, "assessments", "update")] == [{"locked": True}]
    assert not _audit(engine, "patients", "delete")


def test_patient_delete_confirm_reason_and_audit_keeps_every_row(env):
    engine, app = env
    with TestClient(app) as c:
        add_patient(c, "entryA", "A1", "A", diagnosis="T-ALL")
        add_patient(c, "entryA", "A2", "A")
        ev = c.post(
            "/api/patients/A1/events",
            json={"day": 28, "event": "response", "response": "CR"},
            headers=basic("entryA"),
        )
        assert ev.status_code == 201, ev.text
        token = login(c, "entryA")
        _assess(c, token)
        q = c.post(
            "/api/patients/A1/queries",
            json={
                "table": "events",
                "record_id": ev.json()["id"],
                "field": "response",
                "text": "CR or CRi?",
            },
            headers=basic("mon"),
        )
        assert q.status_code == 201, q.text
        assert 'id="delete-patient"' in c.get("/patients/A1").text
        confirm = c.get("/patients/A1/delete")
        assert confirm.status_code == 200 and "1 events" in confirm.text
        version = re.search(r'name="version" value="(\d+)"', confirm.text).group(1)
        form = {"csrf_token": csrf_of(confirm.text), "version": version}
        r = c.post("/patients/A1/delete", data=form)
        assert r.status_code == 422 and 'id="err-reason"' in r.text
        r = c.post(
            "/patients/A1/delete",
            data={**form, "csrf_token": "forged", "reason": "consent withdrawn"},
        )
        assert r.status_code == 403
        assert count(engine, Patient) == 2
        # another site's user and read-only roles cannot
        with TestClient(app) as other:
            for who, status in (("entryB", 404), ("mon", 403)):
                other.cookies.clear()
                t = login(other, who)
                if who == "entryB":
                    assert other.get("/patients/A1/delete").status_code == 404
                r = other.post(
                    "/patients/A1/delete", data={"csrf_token": t, "version": version, "reason": "x"}
                )
                assert r.status_code == status, (who, r.text)
        for who, status in (("entryB", 404), ("mon", 403), ("stat", 403)):
            r = c.request(
                "DELETE",
                "/api/patients/A1",
                json={"version": int(version), "reason": "x"},
                headers=basic(who),
            )
            assert r.status_code == status, (who, r.text)
        r = c.post(
            "/patients/A1/delete",
            data={**form, "reason": "consent withdrawn"},
            follow_redirects=False,
        )
        assert r.status_code == 303 and r.headers["location"] == "/patients"
        assert c.get("/api/patients/A1", headers=basic("mon")).status_code == 404
        assert c.get("/api/patients/A2", headers=basic("mon")).status_code == 200
        # the deleted patient's trail stays readable (monitor), every deletion in it
        trail = c.get("/api/patients/A1/audit", headers=basic("mon")).json()
        gone = {t["table"] for t in trail if t["action"] == "delete"}
        assert gone == {"patients", "events", "assessments", "data_queries"}
        assert c.get("/api/patients/A1/audit", headers=basic("entryA")).status_code == 403
        assert c.get("/api/patients/NOPE/audit", headers=basic("mon")).status_code == 404
        with TestClient(app) as mon:
            login(mon, "mon")
            page = mon.get("/patients/A1/audit")
            assert page.status_code == 200 and "consent withdrawn" in page.text
    for model in (Event, AdverseEvent, Assessment, DataQuery):
        assert count(engine, model, model.patient_id == "A1") == 0
    deleted = {(a.table_name, a.patient_id): a for a in _audit(engine, "patients", "delete")}
    row = deleted[("patients", "A1")]
    assert row.reason == "consent withdrawn" and row.username == "entryA"
    assert row.old_values["diagnosis"] == "T-ALL" and row.old_values["age_years"] == 30
    (ev_row,) = _audit(engine, "events", "delete")
    assert ev_row.old_values["response"] == "CR" and ev_row.reason == "consent withdrawn"
    (as_row,) = _audit(engine, "assessments", "delete")
    assert as_row.old_values["crs_grade"] == 3
    (q_row,) = _audit(engine, "data_queries", "delete")
    assert q_row.old_values["text"] == "CR or CRi?"


def test_patient_delete_api_version_and_site(env):
    engine, app = env
    with TestClient(app) as c:
        p = add_patient(c, "entryB", "B1", "B")
        body = {"version": p["version"], "reason": "duplicate registration"}
        assert (
            c.request("DELETE", "/api/patients/B1", json=body, headers=basic("entryA")).status_code
            == 404
        )
        r = c.request(
            "DELETE",
            "/api/patients/B1",
            json={**body, "version": p["version"] + 5},
            headers=basic("entryB"),
        )
        assert r.status_code == 409
        r = c.request("DELETE", "/api/patients/B1", json=body, headers=basic("admin"))
        assert r.status_code == 200, r.text
        assert r.json()["deleted"]["patients"] == 1
    assert count(engine, Patient) == 0
    (row,) = _audit(engine, "patients", "delete")
    assert row.username == "admin" and row.old_values["site"] == "B"
