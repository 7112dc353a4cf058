"""Regression tests of issue 15 ("Wrong or unsafe today"), each on SQLite and PostgreSQL.

Lab values, the vocabulary contract, locks, plausibility, sessions, passwords and
throttling, the audit hash chain, escaping, site codes, the wide example, redirects,
error pages and headers.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import stat
import subprocess
import sys

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select, text, update
from webhelpers import PASSWORD, add_patient, basic, count, csrf_of, login

from cartrial.cohort import load_cohort, vocab
from cartrial.store.chain import verify
from cartrial.store.cohort_io import import_cohort, read_cohort
from cartrial.store.database import make_engine, session_factory, upgrade
from cartrial.store.models import (
    AuditEntry,
    Event,
    Observation,
    Patient,
    Setting,
    User,
    WebSession,
)
from cartrial.store.users import create_user, password_problem
from dbfixtures import write_some_history

# -- lab values: every valid analyte/unit pair --------------------------------------------


def test_canonical_cache_is_not_fooled_by_reused_addresses():
    """The cache was keyed by id(): dicts built per call reuse freed addresses, so a unit
    lookup got another analyte's table. Many short-lived vocabularies, each checked
    against a lookup built from scratch."""
    units = sorted(vocab.UNIT_ALIASES)
    for i in range(400):
        a, b = units[i % len(units)], units[(i * 7 + 3) % len(units)]
        voc = {a: vocab.UNIT_ALIASES[a]} if i % 2 else {b: vocab.UNIT_ALIASES[b]}
        want = next(iter(voc))
        assert vocab.canonical(want, voc) == want
        other = a if want == b else b
        if vocab._key(other) not in vocab.build_lookup(voc):
            assert vocab.canonical(other, voc) is None
        del voc  # freed at once by reference counting: the next dict may reuse its address


PAIRS = [
    (a, u, alias)
    for a, (_al, units) in vocab.ANALYTES.items()
    if units
    for u in sorted(units)
    for alias in (u, *vocab.UNIT_ALIASES.get(u, ())[:2])
]


def test_every_valid_lab_value_is_accepted(env):
    """CRP 12 mg/L, CAR-T 55 cells/µL, 38.9 °C, ANC 0.3 ×10⁹/L and every other valid
    analyte/unit pair (canonical unit and its aliases) is stored, with the canonical unit."""
    engine, app = env
    with TestClient(app) as c:
        add_patient(c, "entryA", "A1", "A")
        h = basic("entryA")
        for analyte, value, unit in (
            ("crp", 12, "mg/L"),
            ("cart_flow", 55, "cells/µL"),
            ("temperature", 38.9, "°C"),
            ("anc", 0.3, "×10⁹/L"),
        ):
            r = c.post(
                "/api/patients/A1/observations",
                json={"day": 3, "analyte": analyte, "value": value, "unit": unit},
                headers=h,
            )
            assert r.status_code == 201, (analyte, unit, r.text)
        for analyte, unit, spelled in PAIRS:
            r = c.post(
                "/api/patients/A1/observations",
                json={"day": 5, "analyte": analyte, "value": 1, "unit": spelled},
                headers=h,
            )
            assert r.status_code == 201, (analyte, spelled, r.text)
            assert r.json()["unit"] == unit
        # the form too
        token = login(c, "entryA")
        r = c.post(
            "/patients/A1/records/observations",
            data={"csrf_token": token, "day": "4", "analyte": "crp", "value": "12", "unit": "mg/L"},
            follow_redirects=False,
        )
        assert r.status_code == 303, r.text
    assert count(engine, Observation) == 4 + len(PAIRS) + 1
    assert read_cohort(engine).observations.shape[0] == 4 + len(PAIRS) + 1


# -- the vocabulary contract ----------------------------------------------------------------


def test_free_text_is_refused_and_the_database_stays_a_valid_cohort(env, tmp_path):
    engine, app = env
    with TestClient(app) as c:
        add_patient(c, "entryA", "A1", "A")
        token = login(c, "entryA")
        r = c.post(
            "/patients/A1/records/observations",
            data={"csrf_token": token, "day": "2", "analyte": "oxygen", "value": "a bit of oxygen"},
        )
        assert r.status_code == 422 and 'id="err-value">for oxygen, expected one of' in r.text
        # a known alias is stored as the vocabulary's word, never as typed
        for typed in ("nasal cannula", "High flow"):
            r = c.post(
                "/patients/A1/records/observations",
                data={"csrf_token": token, "day": "2", "analyte": "oxygen", "value": typed},
                follow_redirects=False,
            )
            assert r.status_code == 303
        h = basic("entryA")
        big = "x" * (10 * 1024 * 1024)
        r = c.post(
            "/api/patients/A1/observations",
            json={"day": 2, "analyte": "consciousness", "value": big},
            headers=h,
        )
        assert r.status_code == 413
        r = c.post(
            "/api/patients/A1/observations",
            json={"day": 2, "analyte": "consciousness", "value": "x" * 5000},
            headers=h,
        )
        assert r.status_code == 422
        r = c.post(
            "/api/patients/A1/adverse_events",
            json={"term": "CRS", "onset_day": 2, "grade": 2, "organ": "y" * 5000},
            headers=h,
        )
        assert r.status_code == 422 and "organ" in r.json()["errors"]
        r = c.patch("/api/patients/A1", json={"version": 1, "diagnosis": "T-ALL\x00"}, headers=h)
        assert r.status_code == 422
    with engine.connect() as conn:
        words = conn.scalars(select(Observation.value_text)).all()
    assert words == ["low_flow", "high_flow"]
    read_cohort(engine)  # the whole database reads back as a valid cohort
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "cartrial",
            "db",
            "export",
            str(tmp_path / "out"),
            "--db",
            str(engine.url.render_as_string(hide_password=False)),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 0, r.stderr


ANALYTE_NAMES = sorted(vocab.ANALYTES)


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    analyte=st.sampled_from(ANALYTE_NAMES) | st.text(max_size=12),
    value=st.text(max_size=30)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.integers(-5, 10**6),
    unit=st.none() | st.sampled_from(sorted(vocab.UNIT_ALIASES)) | st.text(max_size=10),
)
def test_whatever_the_api_accepts_reads_back_as_a_cohort(fuzz_obs, analyte, value, unit):
    """Property: any observation the API stores keeps the database a valid cohort."""
    engine, app = fuzz_obs
    body = {"day": 1, "analyte": analyte, "value": value}
    if unit is not None:
        body["unit"] = unit
    with TestClient(app) as c:
        r = c.post("/api/patients/A1/observations", json=body, headers=basic("entryA"))
    assert r.status_code in (201, 422), r.text
    if r.status_code == 201:
        read_cohort(engine)


@pytest.fixture(scope="module")
def fuzz_obs(tmp_path_factory):
    from webhelpers import setup_app

    mp = pytest.MonkeyPatch()
    engine, app = setup_app(f"sqlite:///{tmp_path_factory.mktemp('obs') / 'o.sqlite'}", mp)
    with TestClient(app) as c:
        add_patient(c, "entryA", "A1", "A")
    yield engine, app
    mp.undo()
    engine.dispose()


# -- locked records and plausibility -----------------------------------------------------------


def test_locked_record_refuses_data_entry_even_with_a_reason(env):
    engine, app = env
    with TestClient(app) as c:
        add_patient(c, "entryA", "A1", "A")
        ev = c.post(
            "/api/patients/A1/events",
            json={"day": 28, "event": "response", "response": "CR"},
            headers=basic("entryA"),
        ).json()
        assert c.post("/api/patients/A1/lock", headers=basic("mon")).status_code == 200
        token = login(c, "entryA")
        r = c.post(
            "/patients/A1/records/events",
            data={
                "csrf_token": token,
                "day": "60",
                "event": "relapse",
                "reason": "anything at all",
            },
        )
        assert r.status_code == 409 and "locked" in r.text
        ev = c.get(f"/api/events/{ev['id']}", headers=basic("entryA")).json()
        r = c.request(
            "DELETE",
            f"/api/events/{ev['id']}",
            json={"version": ev["version"], "reason": "duplicate"},
            headers=basic("entryA"),
        )
        assert r.status_code == 409
        r = c.patch(
            "/api/patients/A1",
            json={"version": 2, "age_years": 31, "reason": "typo"},
            headers=basic("entryA"),
        )
        assert r.status_code == 409
        r = c.post(
            "/api/patients/A1/assessments",
            json={"day": 3, "temperature_c": 38.5, "reason": "late entry"},
            headers=basic("entryA"),
        )
        assert r.status_code in (409, 400)  # 400 only while the grading layer is absent
    assert count(engine, Event) == 1
    with engine.connect() as conn:
        assert conn.scalar(select(Patient.age_years)) == 30


def test_implausible_dates_and_assessments_after_death_refused(env):
    engine, app = env
    with TestClient(app) as c:
        for day in ("1850-03-01", "2099-01-01"):
            r = c.post(
                "/api/patients",
                json={"patient_id": "A9", "site": "A", "infusion_date": day},
                headers=basic("entryA"),
            )
            assert r.status_code == 422 and "plausible" in r.json()["errors"]["infusion_date"]
        add_patient(c, "entryA", "A1", "A", infusion_date=str(dt.date.today()))
        assert (
            c.post(
                "/api/patients/A1/events",
                json={"day": 40, "event": "death", "cause": "relapse"},
                headers=basic("entryA"),
            ).status_code
            == 201
        )
        r = c.post(
            "/api/patients/A1/assessments",
            json={"day": 41, "temperature_c": 38.0},
            headers=basic("entryA"),
        )
        assert r.status_code == 422 and "death" in r.json()["errors"]["day"]
    assert count(engine, Patient) == 1


# -- sessions ---------------------------------------------------------------------------------


def test_logout_revokes_a_copied_cookie_and_idle_sessions_end(env):
    engine, app = env
    with TestClient(app) as c:
        add_patient(c, "entryA", "A1", "A")
        token = login(c, "entryA")
        stolen = c.cookies.get("cartrial_session")
        api_token = c.get("/api/session").json()["csrf_token"]
        c.post("/logout", data={"csrf_token": token})
    with TestClient(app, cookies={"cartrial_session": stolen}) as thief:
        assert thief.get("/patients", follow_redirects=False).status_code == 303
        r = thief.post(
            "/api/patients/A1/events",
            json={"day": 5, "event": "relapse"},
            headers={"X-CSRF-Token": api_token},
        )
        assert r.status_code == 401
    with TestClient(app) as c:
        login(c, "entryA")
        assert c.get("/patients", follow_redirects=False).status_code == 200
        with engine.begin() as conn:  # 31 minutes without a request
            conn.execute(
                update(WebSession).values(
                    last_seen=dt.datetime.now(dt.UTC) - dt.timedelta(minutes=31)
                )
            )
        assert c.get("/patients", follow_redirects=False).status_code == 303
        login(c, "entryA")
        with engine.begin() as conn:  # active all along, but logged in 9 hours ago
            conn.execute(
                update(WebSession).values(
                    created_at=dt.datetime.now(dt.UTC) - dt.timedelta(hours=9)
                )
            )
        assert c.get("/patients", follow_redirects=False).status_code == 303
    assert count(engine, Event) == 0


def test_secret_outside_the_database_and_private_files(env, tmp_path):
    engine, app = env
    with engine.connect() as conn:
        keys = set(conn.scalars(select(Setting.key)))
    assert "session_secret" not in keys
    with TestClient(app) as c:
        token = csrf_of(c.get("/login").text)
        r = c.post(
            "/login",
            data={"username": "mon", "password": PASSWORD, "csrf_token": token},
            follow_redirects=False,
        )
        cookie = r.headers["set-cookie"].lower()
        assert "max-age" not in cookie and "expires" not in cookie  # a browser-session cookie
    assert stat.S_IMODE(os.stat(tmp_path / "secret").st_mode) == 0o600
    if engine.dialect.name == "sqlite":
        assert stat.S_IMODE(os.stat(engine.url.database).st_mode) == 0o600


def test_default_secret_file_beside_sqlite_database(tmp_path, monkeypatch):
    from cartrial.store.database import DatabaseError, secret_key

    monkeypatch.delenv("CARTRIAL_SECRET_KEY", raising=False)
    monkeypatch.delenv("CARTRIAL_SECRET_FILE", raising=False)
    url = f"sqlite:///{tmp_path / 'trial.sqlite'}"
    key = secret_key(url)
    assert len(key) >= 32 and secret_key(url) == key  # created once, then reused
    path = tmp_path / "trial.sqlite.secret"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    os.chmod(path, 0o644)
    with pytest.raises(DatabaseError, match="readable by others"):
        secret_key(url)


def test_existing_world_readable_sqlite_file_is_tightened(tmp_path):
    path = tmp_path / "old.sqlite"
    path.touch(mode=0o644)
    os.chmod(path, 0o644)
    make_engine(str(path)).dispose()
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600


# -- passwords, throttling, log-in events -------------------------------------------------


def test_password_policy():
    for weak in (
        "password",
        "password1234",
        "Passw0rd!2024",
        "qwertyqwerty",
        "aaaaaaaaaaaaaa",
        "123456789012",
        "entryAentryA99",
    ):
        assert password_problem(weak, "entryA") is not None, weak
    for good in (PASSWORD, "violet staple lantern", "Tq7#vL2m!pX9"):
        assert password_problem(good, "entryA") is None, good


def test_wrong_passwords_lock_the_account_and_log_ins_are_audited(env):
    engine, app = env
    with TestClient(app) as c:
        token = csrf_of(c.get("/login").text)
        for _ in range(5):
            r = c.post(
                "/login",
                data={"username": "entryA", "password": "wrong-guess-123", "csrf_token": token},
            )
            assert r.status_code == 401
        r = c.post(
            "/login",
            data={"username": "entryA", "password": PASSWORD, "csrf_token": token},
            follow_redirects=False,
        )
        assert r.status_code == 429 and "too many failed log-ins" in r.text
        assert c.get("/api/session", headers=basic("entryA")).status_code == 429
        # another account from the same address still logs in
        login(c, "mon")
        r = c.post(
            "/api/users",
            json={"username": "weak", "password": "password", "role": "monitor"},
            headers=basic("admin"),
        )
        assert r.status_code == 422 and "12 characters" in r.json()["detail"]
    with engine.connect() as conn:
        events = conn.execute(
            select(AuditEntry.username, AuditEntry.action)
            .where(AuditEntry.table_name == "login")
            .order_by(AuditEntry.id)
        ).all()
    assert events[:7] == [("entryA", "login_failed")] * 5 + [("entryA", "login_refused")] * 2
    assert ("mon", "login") in events
    with engine.connect() as conn:
        assert (
            conn.scalar(select(AuditEntry.at).where(AuditEntry.action == "login_failed")).tzinfo
            is not None
        )  # audit timestamps are time-zone aware on SQLite too


def test_failures_from_one_address_throttle_every_account(env, monkeypatch):
    import cartrial.store.users as users

    monkeypatch.setattr(users, "MAX_FAILS_ADDRESS", 4)
    _, app = env
    with TestClient(app) as c:
        token = csrf_of(c.get("/login").text)
        for name in ("entryA", "entryB", "stat", "nobody"):
            c.post(
                "/login",
                data={"username": name, "password": "wrong-guess-123", "csrf_token": token},
            )
        r = c.post("/login", data={"username": "mon", "password": PASSWORD, "csrf_token": token})
        assert r.status_code == 429


# -- the audit trail: hash chain, tampering, role ----------------------------------------------


def _verify(engine):
    with engine.connect() as conn:
        return verify(conn)


@pytest.fixture
def engine(db_url):
    eng = make_engine(db_url)
    upgrade(eng)
    yield eng
    eng.dispose()


def test_audit_chain_detects_edits_removals_and_truncation(engine):
    write_some_history(engine)
    assert _verify(engine).ok and _verify(engine).entries == 4
    url = engine.url.render_as_string(hide_password=False)
    r = subprocess.run(
        [sys.executable, "-m", "cartrial", "db", "verify-audit", "--db", url],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 0 and "intact: 4 entries" in r.stdout
    with engine.begin() as conn:  # what an attacker with the database can do
        if engine.dialect.name == "sqlite":
            conn.execute(text("DROP TRIGGER audit_log_no_update"))
            conn.execute(text("DROP TRIGGER audit_log_no_delete"))
        else:
            conn.execute(text("ALTER TABLE audit_log DISABLE TRIGGER audit_log_append_only"))
        conn.execute(text("UPDATE audit_log SET username = 'someone' WHERE id = 2"))
    found = _verify(engine)
    assert not found.ok
    assert any("entry 2: content changed" in p for p in found.problems)
    assert any("trigger" in p for p in found.problems)
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM audit_log WHERE id = 3"))
    assert any("entry 4: link" in p for p in _verify(engine).problems)
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM audit_log"))  # TRUNCATE on PostgreSQL does the same
    found = _verify(engine)
    assert any("chain head records 4 entries" in p for p in found.problems)
    r = subprocess.run(
        [sys.executable, "-m", "cartrial", "db", "verify-audit", "--db", url],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 1 and "TAMPERED" in r.stdout


def test_concurrent_writers_extend_one_chain(engine):
    import threading

    with session_factory(engine)() as s:
        s.info["user"] = "u"
        s.add(Patient(patient_id="P1"))
        s.commit()

    def write(i: int) -> None:
        with session_factory(engine)() as s:
            s.info["user"] = f"u{i}"
            for k in range(5):
                s.add(Event(patient_id="P1", day=float(i * 10 + k), event="last_contact"))
                s.commit()

    threads = [threading.Thread(target=write, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    result = _verify(engine)
    assert result.ok, result.problems
    assert result.entries == 21


@pytest.fixture
def pg_url(tmp_path):
    from cartrial.store.testing import PostgresUnavailable, scratch_database

    try:
        with scratch_database("postgres") as url:
            yield url
    except PostgresUnavailable as exc:
        pytest.skip(str(exc))


@pytest.mark.postgres
def test_postgres_app_role_cannot_truncate_or_disable_triggers(pg_url):
    db_url = pg_url
    import uuid

    from sqlalchemy.engine import make_url

    from cartrial.store.chain import app_role_sql

    owner = make_engine(db_url)
    upgrade(owner)
    schema = re.search(r"search_path%3D(\w+)", db_url).group(1)
    role = f"cartrial_app_{uuid.uuid4().hex[:8]}"
    with owner.begin() as conn:
        conn.execute(text(f"CREATE ROLE {role} LOGIN"))
        for stmt in app_role_sql(role, schema):
            conn.execute(text(stmt))
    app_url = make_url(db_url).set(username=role).render_as_string(hide_password=False)
    app_engine = make_engine(app_url)
    try:
        write_some_history(app_engine)  # the app works under the role, chain included
        assert _verify(app_engine).ok
        for sql in (
            "TRUNCATE audit_log",
            "ALTER TABLE audit_log DISABLE TRIGGER ALL",
            "DROP TRIGGER audit_log_append_only ON audit_log",
            "UPDATE audit_log SET username = 'x'",
            "DELETE FROM audit_log",
        ):
            with pytest.raises(Exception, match="permission denied|must be owner|append-only"):
                with app_engine.begin() as conn:
                    conn.execute(text(sql))
        assert _verify(app_engine).ok
    finally:
        app_engine.dispose()
        with owner.begin() as conn:
            conn.execute(text(f"REVOKE ALL ON ALL TABLES IN SCHEMA {schema} FROM {role}"))
            conn.execute(text(f"REVOKE ALL ON ALL SEQUENCES IN SCHEMA {schema} FROM {role}"))
            conn.execute(text(f"REVOKE ALL ON SCHEMA {schema} FROM {role}"))
            conn.execute(text(f"DROP ROLE {role}"))
        owner.dispose()


def test_audit_check_page(env):
    engine, app = env
    with TestClient(app) as c:
        add_patient(c, "entryA", "A1", "A")
        login(c, "mon")
        r = c.get("/audit/verify")
        assert r.status_code == 200 and "audit trail intact" in r.text
    with TestClient(app) as c:
        login(c, "entryA")
        assert c.get("/audit/verify").status_code == 403


# -- escaping, user names, site codes, patient IDs ---------------------------------------------


def test_usernames_are_plain_and_pages_escape(env):
    engine, app = env
    with TestClient(app) as c:
        r = c.post(
            "/api/users",
            json={
                "username": "<img src=x onerror=alert(1)>",
                "password": "violet staple lantern",
                "role": "monitor",
            },
            headers=basic("admin"),
        )
        assert r.status_code == 422 and "user name" in r.json()["detail"]
    with pytest.raises(ValueError, match="user name"):
        with session_factory(engine)() as s:
            create_user(s, "a b", "violet staple lantern", "monitor")
    with engine.begin() as conn:  # a name written around the app still comes out escaped
        conn.execute(update(User).where(User.username == "mon").values(username="<b>mon</b>"))
    with TestClient(app) as c:
        login(c, "<b>mon</b>")
        page = c.get("/whoami").text
        assert "&lt;b&gt;mon&lt;/b&gt;" in page and "<b>mon</b>" not in page


def test_one_rule_for_site_codes(db_url, monkeypatch, tmp_path):
    from webhelpers import setup_app

    engine, app = setup_app(db_url, monkeypatch, sites=("Centre A", "Centre B"))
    try:
        with TestClient(app) as c:
            token = login(c, "entryA")
            r = c.post(
                "/patients",
                data={"csrf_token": token, "patient_id": "CA-001", "site": "Centre A"},
                follow_redirects=False,
            )
            assert r.status_code == 303, r.text
            r = c.post(
                "/api/patients",
                json={"patient_id": "CB-001", "site": "Centre B"},
                headers=basic("admin"),
            )
            assert r.status_code == 201
            r = c.post(
                "/api/patients",
                json={"patient_id": "X1", "site": "<Centre>"},
                headers=basic("admin"),
            )
            assert r.status_code == 422 and "site code" in r.json()["errors"]["site"]
        assert count(engine, Patient) == 2
    finally:
        app.state.cartrial.reports.shutdown()
        engine.dispose()


def test_wide_example_imports_as_four_tables(engine):
    """tan2023 (a wide, one-row-per-patient table) imports, and reads back as the same
    patients and events as loading the example directly."""
    original = load_cohort("tan2023")
    import_cohort(engine, original)
    back = read_cohort(engine)
    assert back.n_patients == original.n_patients == 20
    cols = ["patient_id", "day", "event"]
    want = original.events[cols].sort_values(cols).reset_index(drop=True)
    got = back.events[cols].sort_values(cols).reset_index(drop=True)
    assert want.astype(str).equals(got.astype(str))


# -- redirects, bad ids, error pages, headers, bad URLs -----------------------------------------


def test_error_pages_headers_and_docs(env):
    engine, app = env
    with TestClient(app, raise_server_exceptions=False) as c:
        r = c.get("/no/such/page")
        assert r.status_code == 404 and r.headers["content-type"].startswith("text/html")
        assert "Cannot do that" in r.text
        r = c.post("/login", data={"username": "x", "password": "y"})
        assert r.status_code == 403 and "text/html" in r.headers["content-type"]
        for h in (
            "content-security-policy",
            "x-frame-options",
            "x-content-type-options",
            "referrer-policy",
        ):
            assert h in r.headers
        assert r.headers["x-frame-options"] == "DENY"
        assert c.get("/docs", follow_redirects=False).status_code == 303  # log-in first
        add_patient(c, "entryA", "A1", "A")
        r = c.get("/api/events/123456789012345678901234567890", headers=basic("entryA"))
        assert r.status_code == 422
        r = c.get(f"/api/events/{2**31 - 1}", headers=basic("entryA"))
        assert r.status_code == 404
        r = c.patch("/api/patients/A1", json={"version": 1, "site": "NOPE"}, headers=basic("admin"))
        assert r.status_code in (409, 422) and r.status_code != 500
        login(c, "entryA")
        docs = c.get("/docs")
        assert docs.status_code == 200 and "/api/patients" in docs.text
        assert "cdn" not in docs.text.lower() and "<script" not in docs.text.lower()


def test_bad_database_url_is_one_line(tmp_path):
    for db in (
        "postgresql+psycopg://nobody@127.0.0.1:1/none",
        "mysql://x/y",
        str(tmp_path / "no" / "such" / "dir.sqlite"),
    ):
        r = subprocess.run(
            [sys.executable, "-m", "cartrial", "db", "upgrade", "--db", db],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert r.returncode == 2
        assert r.stderr.startswith("error: ") and len(r.stderr.strip().splitlines()) == 1, r.stderr
        assert "Traceback" not in r.stderr


def test_patient_ids_with_a_slash_can_be_opened(env):
    """Imported IDs such as "CHN/007" (the cohort format allows them) open in the app."""
    import pandas as pd

    from cartrial.cohort import cohort_from_frames
    from cartrial.cohort.model import empty_table

    engine, app = env
    cohort = cohort_from_frames(
        pd.DataFrame({"patient_id": ["CHN/007", "CHN 8"], "site": ["A", "A"]}),
        pd.DataFrame({"patient_id": ["CHN/007"], "day": ["30"], "event": ["relapse"]}),
        empty_table("adverse_events"),
        empty_table("observations"),
        source="test",
    )
    import_cohort(engine, cohort)
    with TestClient(app) as c:
        assert (
            c.get("/api/patients/CHN/007", headers=basic("entryA")).json()["patient_id"]
            == "CHN/007"
        )
        assert len(c.get("/api/patients/CHN/007/events", headers=basic("entryA")).json()) == 1
        token = login(c, "entryA")
        listing = c.get("/patients").text
        assert 'href="/patients/CHN/007"' in listing and 'href="/patients/CHN%208"' in listing
        page = c.get("/patients/CHN/007")
        assert page.status_code == 200 and "Patient CHN/007" in page.text
        r = c.post(
            "/patients/CHN/007/records/events",
            data={"csrf_token": token, "day": "10", "event": "last contact"},
            follow_redirects=False,
        )
        assert r.status_code == 303 and r.headers["location"] == "/patients/CHN/007"
        assert c.get("/patients/CHN%208").status_code == 200
    assert count(engine, Event, Event.patient_id == "CHN/007") == 2


def test_concurrent_log_in_events_extend_one_chain(engine):
    """Log-in events write only to the audit trail: concurrent ones must still chain."""
    import threading

    from cartrial.store.users import log_event

    def write(i: int) -> None:
        for k in range(5):
            with session_factory(engine)() as s:
                log_event(s, "login_failed", f"user{i}", f"10.0.0.{k}")
                s.commit()

    threads = [threading.Thread(target=write, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    result = _verify(engine)
    assert result.ok, result.problems
    assert result.entries == 30
