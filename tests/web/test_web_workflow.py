"""The monitoring workflow through the pages (both back ends): edit and delete with a
reason and the field's history, the audit trail page, manual and automatic data queries
blocking the lock, sign-off with the password re-entered, user management, forms that
guide."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient
from sqlalchemy import select
from webhelpers import PASSWORD, add_patient, basic, count, csrf_of, login

from cartrial.store.database import session_factory
from cartrial.store.models import AuditEntry, DataQuery, Event, Patient, User
from cartrial.store.users import create_user
from cartrial.web.deps import word


def _investigator(engine, site="A"):
    with session_factory(engine)() as s:
        s.info["user"] = "setup"
        create_user(s, "pi", PASSWORD, "investigator", site)
        s.commit()


def test_edit_and_delete_need_a_reason_and_show_the_field_history(env):
    engine, app = env
    with TestClient(app) as c:
        add_patient(c, "entryA", "A1", "A")
        ev = c.post(
            "/api/patients/A1/events",
            json={"day": 28, "event": "response", "response": "PR"},
            headers=basic("entryA"),
        ).json()
        token = login(c, "entryA")
        page = c.get("/patients/A1").text
        assert f'href="/records/events/{ev["id"]}/edit"' in page
        form = {
            "csrf_token": token,
            "version": "1",
            "day": "28",
            "event": "response",
            "response": "CR",
        }
        r = c.post(f"/records/events/{ev['id']}/edit", data=form)
        assert r.status_code == 422 and 'id="err-reason">required' in r.text
        r = c.post(
            f"/records/events/{ev['id']}/edit",
            data={**form, "reason": "bone marrow report of day 28"},
            follow_redirects=False,
        )
        assert r.status_code == 303
        edit = c.get(f"/records/events/{ev['id']}/edit").text
        history = re.search(r'id="hist-response">(.*?)</details>', edit, re.S).group(1)
        assert "PR → CR" in history and "bone marrow report of day 28" in history
        assert "— → PR" in history  # the value it was entered with
        # stale version (someone else saved meanwhile) -> conflict shown on the form
        r = c.post(
            f"/records/events/{ev['id']}/edit", data={**form, "response": "CRi", "reason": "x"}
        )
        assert r.status_code == 409 and "someone else" in r.text
        r = c.post(
            f"/records/events/{ev['id']}/edit",
            data={**form, "version": "2", "action": "delete", "reason": ""},
        )
        assert r.status_code == 422
        r = c.post(
            f"/records/events/{ev['id']}/edit",
            data={
                **form,
                "version": "2",
                "action": "delete",
                "reason": "entered for the wrong patient",
            },
            follow_redirects=False,
        )
        assert r.status_code == 303
    assert count(engine, Event) == 0
    with engine.connect() as conn:
        last = conn.execute(
            select(AuditEntry.action, AuditEntry.reason).order_by(AuditEntry.id.desc())
        ).first()
    assert tuple(last) == ("delete", "entered for the wrong patient")


def test_audit_trail_page_filters_exports_and_logs_views(env):
    engine, app = env
    with TestClient(app) as c:
        add_patient(c, "entryA", "A1", "A")
        c.post(
            "/api/patients/A1/events", json={"day": 10, "event": "relapse"}, headers=basic("entryA")
        )
        login(c, "mon")
        page = c.get("/patients/A1/audit?table=events").text
        rows = re.findall(r"<tr><td>\d+</td>", page)
        assert len(rows) == 1 and "Relapse" in page  # the registry's label, not the code
        csv_text = c.get("/patients/A1/audit?format=csv").text
        assert csv_text.splitlines()[0].startswith("id,at,user,action,table")
        assert len(csv_text.strip().splitlines()) == 3
    with engine.connect() as conn:
        logged = conn.scalars(
            select(AuditEntry.action)
            .where(
                AuditEntry.username == "mon", AuditEntry.action.in_(("view_audit", "export_audit"))
            )
            .order_by(AuditEntry.id)
        ).all()
    assert logged == ["view_audit", "export_audit"]


def test_queries_manual_and_automatic_block_the_lock_until_closed(env):
    engine, app = env
    with TestClient(app) as c:
        add_patient(c, "entryA", "A1", "A")
        h = basic("entryA")
        # automatic: out of range, CRS before infusion, grade inconsistent with bedside
        obs = c.post(
            "/api/patients/A1/observations",
            json={"day": 2, "analyte": "temperature", "value": 49.5, "unit": "C"},
            headers=h,
        ).json()
        c.post(
            "/api/patients/A1/adverse_events",
            json={"term": "CRS", "onset_day": -2, "grade": 1},
            headers=h,
        )
        with engine.connect() as conn:
            auto = conn.execute(
                select(DataQuery.rule, DataQuery.record_id, DataQuery.status).order_by(DataQuery.id)
            ).all()
        assert [(r, s) for r, _i, s in auto] == [
            ("out_of_range", "open"),
            ("before_infusion", "open"),
        ]
        mon = TestClient(app)
        with mon:
            mtoken = login(mon, "mon")
            r = mon.post(
                "/patients/A1/queries",
                data={
                    "csrf_token": mtoken,
                    "target": f"observations:{obs['id']}",
                    "field": "day",
                    "text": "day 2 or day 3 per source?",
                },
                follow_redirects=False,
            )
            assert r.status_code == 303
            r = mon.post("/patients/A1/lock", data={"csrf_token": mtoken})
            assert r.status_code == 409 and "3 open data queries" in r.text
            # the site corrects the temperature: the automatic query resolves itself
            token = login(c, "entryA")
            r = c.post(
                f"/records/observations/{obs['id']}/edit",
                data={
                    "csrf_token": token,
                    "version": "1",
                    "day": "2",
                    "analyte": "temperature",
                    "value": "39.5",
                    "unit": "C",
                    "reason": "typing error: 39.5 in the chart",
                },
                follow_redirects=False,
            )
            assert r.status_code == 303
            queries = {q.rule or "manual": q for q in _queries(engine)}
            assert queries["out_of_range"].status == "answered"
            assert queries["out_of_range"].answered_by == "system"
            page = c.get("/patients/A1").text
            for q in _queries(engine):
                if q.status == "open":
                    r = c.post(
                        f"/queries/{q.id}/answer",
                        data={"csrf_token": token, "answer": "checked: correct"},
                        follow_redirects=False,
                    )
                    assert r.status_code == 303
            assert "day 2 or day 3 per source?" in page
            listing = mon.get("/queries").text
            assert "Site A" in listing and listing.count("answered") >= 3
            for q in _queries(engine):
                assert (
                    mon.post(
                        f"/queries/{q.id}/close",
                        data={"csrf_token": mtoken},
                        follow_redirects=False,
                    ).status_code
                    == 303
                )
            # the data-entry user cannot close
            assert all(q.status == "closed" for q in _queries(engine))
            r = mon.post("/patients/A1/lock", data={"csrf_token": mtoken}, follow_redirects=False)
            assert r.status_code == 303
    with engine.connect() as conn:
        assert conn.scalar(select(Patient.locked))


def _queries(engine):
    with session_factory(engine)() as s:
        return s.scalars(select(DataQuery).order_by(DataQuery.id)).all()


def test_grade_inconsistent_with_bedside_raises_a_query(env):
    from cartrial.store.models import Assessment

    engine, app = env
    with TestClient(app) as c:
        add_patient(c, "entryA", "A1", "A")
        with session_factory(engine)() as s:
            s.info["user"] = "setup"
            s.add(Assessment(patient_id="A1", day=3, inputs={}, crs_grade=3, icans_grade=0))
            s.commit()
        c.post(
            "/api/patients/A1/adverse_events",
            json={"term": "CRS", "onset_day": 2, "resolution_day": 9, "grade": 1},
            headers=basic("entryA"),
        )
    rules = [(q.rule, q.field) for q in _queries(engine)]
    assert rules == [("grade_vs_bedside", "grade")]
    assert "at most grade 3" in _queries(engine)[0].text


def test_sign_off_with_password_and_unsigned_by_unlock(env):
    engine, app = env
    _investigator(engine)
    with TestClient(app) as c:
        add_patient(c, "entryA", "A1", "A")
        assert c.post("/api/patients/A1/lock", headers=basic("mon")).status_code == 200
        token = login(c, "pi")
        page = c.get("/patients/A1").text
        assert "§11.50" in page and "review and approval" in page and 'id="sign-form"' in page
        r = c.post("/patients/A1/sign", data={"csrf_token": token, "password": "not-mine-123"})
        assert r.status_code == 403 and "wrong password" in r.text
        r = c.post(
            "/patients/A1/sign",
            data={"csrf_token": token, "password": PASSWORD},
            follow_redirects=False,
        )
        assert r.status_code == 303
        page = c.get("/patients/A1").text
        assert 'id="signed-badge">signed by pi' in page and "review and approval" in page
        with engine.connect() as conn:
            signed = conn.execute(select(Patient.signed_by, Patient.signed_at)).one()
        assert signed[0] == "pi" and signed[1].tzinfo is not None
        # any later change needs an unlock, which removes the signature
        assert (
            c.post(
                "/api/patients/A1/unlock",
                json={"reason": "late lab result"},
                headers=basic("admin"),
            ).status_code
            == 200
        )
        with engine.connect() as conn:
            assert conn.execute(select(Patient.signed_by)).scalar() is None
        assert "signed-badge" not in c.get("/patients/A1").text
    with engine.connect() as conn:
        actions = conn.scalars(
            select(AuditEntry.action).where(AuditEntry.action == "sign_failed")
        ).all()
    assert actions == ["sign_failed"]


def test_user_management_page(env):
    engine, app = env
    with TestClient(app) as c:
        token = login(c, "admin")
        r = c.post(
            "/admin/users",
            data={
                "csrf_token": token,
                "action": "add",
                "username": "nurse2",
                "role": "data_entry",
                "site": "B",
            },
        )
        assert r.status_code == 200
        password = re.search(
            r'id="generated-password">.*?<code>([^<]+)</code>', r.text, re.S
        ).group(1)
        with engine.connect() as conn:
            uid = conn.scalar(select(User.id).where(User.username == "nurse2"))
        r = c.post(
            "/admin/users",
            data={
                "csrf_token": token,
                "action": "role",
                "user_id": str(uid),
                "role": "monitor",
                "site": "",
            },
        )
        assert r.status_code == 200
    with TestClient(app) as n:  # a generated password must be changed first
        t = csrf_of(n.get("/login").text)
        r = n.post(
            "/login",
            data={"username": "nurse2", "password": password, "csrf_token": t},
            follow_redirects=False,
        )
        assert r.headers["location"] == "/account/password"
        assert n.get("/patients", follow_redirects=False).headers["location"] == "/account/password"
        t = csrf_of(n.get("/account/password").text)
        r = n.post(
            "/account/password",
            data={
                "csrf_token": t,
                "current": password,
                "new": "amber kettle harbour",
                "confirm": "amber kettle harbour",
            },
            follow_redirects=False,
        )
        assert r.status_code == 303
        assert n.get("/patients").status_code == 200
    with TestClient(app) as c:
        token = login(c, "admin")
        c.post(
            "/admin/users", data={"csrf_token": token, "action": "deactivate", "user_id": str(uid)}
        )
        r = c.post(
            "/admin/users", data={"csrf_token": token, "action": "reset", "user_id": str(uid)}
        )
        assert "generated-password" in r.text
    with TestClient(app) as n:
        r = n.get("/api/session", headers=basic("nurse2", "amber kettle harbour"))
        assert r.status_code == 401  # deactivated
    with engine.connect() as conn:
        changes = conn.execute(
            select(AuditEntry.action, AuditEntry.new_values)
            .where(AuditEntry.table_name == "users", AuditEntry.record_id == str(uid))
            .order_by(AuditEntry.id)
        ).all()
    assert [a for a, _ in changes][:1] == ["create"]
    assert {"role": "monitor", "site": None} in [v for _, v in changes]
    assert {"active": False} in [v for _, v in changes]
    assert all("password_hash" not in (v or {}) or v["password_hash"] is None for _, v in changes)
    with TestClient(app) as c:
        login(c, "entryA")
        assert c.get("/admin/users").status_code == 403


def test_forms_offer_the_vocabulary_units_and_date_pickers(env):
    _, app = env
    with TestClient(app) as c:
        add_patient(c, "entryA", "A1", "A")
        login(c, "entryA")
        page = c.get("/patients/A1").text
        form = re.search(r'<form[^>]*id="add-events".*?</form>', page, re.S).group(0)
        assert '<select name="event"' in form and '<option value="relapse">' in form
        form = re.search(r'<form[^>]*id="add-observations".*?</form>', page, re.S).group(0)
        assert '<select name="analyte"' in form and '<option value="crp">' in form
        assert '<select name="unit"' in form and f"{word('crp')} mg/L" in page
        form = re.search(r'<form[^>]*id="add-adverse_events".*?</form>', page, re.S).group(0)
        assert 'name="grade" id="f-grade" type="number" step="1" min="0" max="5"' in form
        r = c.post(
            "/api/patients/A1/observations",
            json={"day": 1, "analyte": "crp", "value": 12},
            headers=basic("entryA"),
        )
        assert r.status_code == 201 and r.json()["unit"] == "mg/L"  # fixed by the analyte


def test_timeline_labels_do_not_overlap_and_ae_bars_name_the_ae():
    from types import SimpleNamespace as NS

    from cartrial.web.svg import CHAR_PX, timeline_svg

    events = [
        NS(day=d, event=e, response=r)
        for d, e, r in (
            (0, "infusion", None),
            (14, "response", "CRi"),
            (15, "response", "CR"),
            (16, "sct", None),
            (300, "relapse", None),
            (302, "death", None),
        )
    ]
    aes = [
        NS(term="Febrile neutropenia", onset_day=3, resolution_day=9, grade=3),
        NS(term="CRS", onset_day=1, resolution_day=5, grade=2),
    ]
    svg = timeline_svg(events, aes)
    labels = re.findall(
        r'<text x="([\d.]+)" y="(-?\d+)" font-size="10" '
        r'text-anchor="middle">([^<]+)</text></g>',
        svg,
    )
    assert len(labels) == 6
    spans: dict[str, list[tuple[float, float]]] = {}
    for xs, y, text in labels:
        half = len(text) * CHAR_PX / 2
        spans.setdefault(y, []).append((float(xs) - half, float(xs) + half))
    for row in spans.values():
        row.sort()
        assert all(a[1] <= b[0] for a, b in zip(row, row[1:], strict=False)), row
    assert len(spans) >= 2  # the crowded day-14..16 labels went up a level
    assert ">Febrile neutropenia G3<" in svg and ">CRS G2<" in svg


def test_out_of_range_rule_uses_the_registry_range_in_the_unit_given():
    """The edit check takes the grading field registry's plausible range (one number
    everywhere), in the unit the value was entered in: 101 °F is a fever, not an error."""
    from types import SimpleNamespace as NS

    from cartrial.grading.fields import FIELDS
    from cartrial.store.rules import observation_rules

    def fired(analyte, value, unit):
        return [
            r for r, *_ in observation_rules(NS(analyte=analyte, value=value, unit=unit, day=3))
        ]

    hi = FIELDS["temperature_c"].hi
    assert fired("temperature", hi + 0.5, "C") == ["out_of_range"]
    assert fired("temperature", hi - 0.5, "C") == []
    assert fired("temperature", 101.0, "F") == []
    assert fired("crp", FIELDS["crp_mg_l"].hi * 1.2, "mg/L") == ["out_of_range"]
    assert fired("cart_flow", 40.0, "cells/uL") == []


def test_sites_have_a_display_name_beside_the_code(env):
    _, app = env
    with TestClient(app) as c:
        token = login(c, "admin")
        r = c.post(
            "/admin/users",
            data={
                "csrf_token": token,
                "action": "site",
                "code": "Centre C",
                "name": "Hôpital <Saint-Louis>",
            },
        )
        assert r.status_code == 200
        r = c.post(
            "/admin/users", data={"csrf_token": token, "action": "site", "code": "C/1", "name": "x"}
        )
        assert r.status_code == 422 and "site code" in r.text
        add_patient(c, "admin", "C1", "Centre C")
        page = c.get("/patients").text
        assert "Site Centre C — Hôpital &lt;Saint-Louis&gt;" in page


def test_queries_and_signature_through_the_api(env):
    engine, app = env
    _investigator(engine)
    with TestClient(app) as c:
        add_patient(c, "entryA", "A1", "A")
        ev = c.post(
            "/api/patients/A1/events", json={"day": 20, "event": "relapse"}, headers=basic("entryA")
        ).json()
        r = c.post(
            "/api/patients/A1/queries",
            json={
                "table": "events",
                "record_id": ev["id"],
                "field": "day",
                "text": "day 20 or 21?",
            },
            headers=basic("entryA"),
        )
        assert r.status_code == 403
        q = c.post(
            "/api/patients/A1/queries",
            json={
                "table": "events",
                "record_id": ev["id"],
                "field": "day",
                "text": "day 20 or 21?",
            },
            headers=basic("mon"),
        ).json()
        assert [
            x["id"] for x in c.get("/api/queries?status=open", headers=basic("entryA")).json()
        ] == [q["id"]]
        assert c.get("/api/queries", headers=basic("entryB")).json() == []  # other site
        assert c.post(f"/api/queries/{q['id']}/close", headers=basic("entryA")).status_code == 403
        r = c.post(
            f"/api/queries/{q['id']}/answer",
            json={"answer": "day 20 per report"},
            headers=basic("entryA"),
        )
        assert r.json()["status"] == "answered"
        assert (
            c.post(f"/api/queries/{q['id']}/close", headers=basic("mon")).json()["status"]
            == "closed"
        )
        assert c.post("/api/patients/A1/lock", headers=basic("mon")).status_code == 200
        r = c.post(
            "/api/patients/A1/sign", json={"password": "wrong-password-1"}, headers=basic("pi")
        )
        assert r.status_code == 403
        r = c.post("/api/patients/A1/sign", json={"password": PASSWORD}, headers=basic("pi"))
        assert r.status_code == 200 and r.json()["signed_by"] == "pi"
        assert "review and approval" in r.json()["meaning"]
        assert (
            c.post(
                "/api/patients/A1/sign", json={"password": PASSWORD}, headers=basic("entryA")
            ).status_code
            == 403
        )


def test_patient_fields_edited_from_the_page_with_reason_and_history(env):
    engine, app = env
    with TestClient(app) as c:
        add_patient(c, "entryA", "A1", "A", infusion_date="2024-03-01")
        token = login(c, "entryA")
        edit = c.get("/patients/A1/edit").text
        assert 'name="infusion_date" id="f-infusion_date" type="date"' in edit
        assert 'value="2024-03-01"' in edit
        form = {
            "csrf_token": token,
            "version": "1",
            "age_years": "31",
            "infusion_date": "2024-03-01",
            "site": "A",
        }
        r = c.post("/patients/A1/edit", data=form)
        assert r.status_code == 422 and 'id="err-reason"' in r.text
        r = c.post(
            "/patients/A1/edit",
            data={**form, "reason": "age at infusion, not now"},
            follow_redirects=False,
        )
        assert r.status_code == 303
        edit = c.get("/patients/A1/edit").text
        history = re.search(r'id="hist-age_years">(.*?)</details>', edit, re.S).group(1)
        assert "30 → 31" in history and "age at infusion, not now" in history
    with engine.connect() as conn:
        assert conn.execute(select(Patient.age_years, Patient.version)).one() == (31.0, 2)
