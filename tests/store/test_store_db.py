"""The trial database: migrations, audit trail, locks, cohort import/export, crash safety.

Every test runs on SQLite (temporary file) and on PostgreSQL (a unique schema on the
local server; skipped with the reason when no server answers).
"""

from __future__ import annotations

import filecmp
import os
import signal
import subprocess
import sys
import textwrap

import pytest
from sqlalchemy import func, select, text

from cartrial.cohort import CohortError, load_cohort, write_cohort
from cartrial.store import (
    AuditError,
    ImportRefused,
    LockedRecordError,
    current_revision,
    import_cohort,
    make_engine,
    read_cohort,
    session_factory,
    upgrade,
)
from cartrial.store.models import AuditEntry, Event, Observation, Patient
from cartrial.store.synthetic import write_synthetic_cohort
from cartrial.store.testing import PostgresUnavailable, scratch_database


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request, tmp_path):
    try:
        with scratch_database(request.param, tmp_path) as url:
            yield url
    except PostgresUnavailable as exc:
        pytest.skip(str(exc))


@pytest.fixture
def engine(db_url):
    eng = make_engine(db_url)
    upgrade(eng)
    yield eng
    eng.dispose()


@pytest.fixture(scope="module")
def cohort_dir(tmp_path_factory):
    return write_synthetic_cohort(tmp_path_factory.mktemp("cohort") / "c", n_patients=12)


def _count(engine, model) -> int:
    with engine.connect() as conn:
        return conn.scalar(select(func.count()).select_from(model))


def test_upgrade_creates_schema_at_head(engine):
    assert current_revision(engine) == "0004"
    upgrade(engine)  # idempotent
    assert _count(engine, Patient) == 0


def test_audit_written_for_create_update_delete(engine):
    S = session_factory(engine)
    with S() as s:
        s.info["user"] = "nurse1"
        s.add(Patient(patient_id="P1", site=None))
        s.commit()
        ev = Event(patient_id="P1", day=30, event="response", response="CR")
        s.add(ev)
        s.commit()
        ev.response = "CRi"
        s.commit()
        s.delete(ev)
        s.commit()
        rows = s.scalars(select(AuditEntry).order_by(AuditEntry.id)).all()
    actions = [(r.action, r.table_name) for r in rows]
    assert actions == [
        ("create", "patients"),
        ("create", "events"),
        ("update", "events"),
        ("delete", "events"),
    ]
    assert all(r.username == "nurse1" for r in rows)
    upd = rows[2]
    assert upd.old_values == {"response": "CR"} and upd.new_values == {"response": "CRi"}
    assert rows[3].old_values["response"] == "CRi" and rows[3].new_values is None
    assert rows[1].new_values["day"] == 30 and rows[1].patient_id == "P1"
    assert all(r.at.utcoffset() is None or r.at.utcoffset().total_seconds() == 0 for r in rows)


def test_audit_trail_cannot_be_changed(engine):
    S = session_factory(engine)
    with S() as s:
        s.info["user"] = "u"
        s.add(Patient(patient_id="P1"))
        s.commit()
        entry = s.scalars(select(AuditEntry)).one()
        entry.username = "someone else"
        with pytest.raises(AuditError):
            s.commit()
        s.rollback()
        s.delete(s.scalars(select(AuditEntry)).one())
        with pytest.raises(AuditError):
            s.commit()
        s.rollback()
    # and the database itself refuses (triggers)
    for sql in ("UPDATE audit_log SET username = 'x'", "DELETE FROM audit_log"):
        with pytest.raises(Exception, match="append-only"):
            with engine.begin() as conn:
                conn.execute(text(sql))
    assert _count(engine, AuditEntry) == 1


def test_locked_record_unchangeable_until_unlocked_with_reason(engine):
    """Locked after SDV means unchangeable: a reason alone does not open it (issue 15);
    only an unlock with a reason (audited) does, and then the change is audited too."""
    S = session_factory(engine)
    with S() as s:
        s.info["user"] = "u"
        s.add(Patient(patient_id="P1"))
        s.add(Event(patient_id="P1", day=30, event="relapse"))
        s.commit()
        ev = s.scalars(select(Event)).one()
        ev.locked = True
        s.commit()  # locking itself needs no reason
        for reason in (None, "typing any reason"):
            s.info["reason"] = reason
            ev.day = 31
            with pytest.raises(LockedRecordError, match="locked"):
                s.commit()
            s.rollback()
            s.delete(s.scalars(select(Event)).one())
            with pytest.raises(LockedRecordError, match="locked"):
                s.commit()
            s.rollback()
        s.info.pop("reason")
        ev = s.scalars(select(Event)).one()
        assert ev.day == 30
        ev.locked = False
        with pytest.raises(LockedRecordError, match="reason"):
            s.commit()
        s.rollback()
        s.info["reason"] = "monitor query 12: day transcribed wrongly"
        ev = s.scalars(select(Event)).one()
        ev.locked = False
        s.commit()
        s.info["reason"] = "transcription error corrected against source"
        ev.day = 31
        s.commit()
        last2 = s.scalars(select(AuditEntry).order_by(AuditEntry.id.desc()).limit(2)).all()
    last, unlock = last2
    assert unlock.new_values == {"locked": False} and unlock.reason.startswith("monitor query")
    assert last.reason == "transcription error corrected against source"
    assert last.old_values == {"day": 30} and last.new_values == {"day": 31}


def test_roundtrip_export_import_export_is_byte_identical(engine, cohort_dir, tmp_path, db_url):
    original = load_cohort(cohort_dir)
    counts = import_cohort(engine, original)
    assert counts == {t: len(original.table(t)) for t in counts}
    write_cohort(read_cohort(engine), tmp_path / "x1")
    # the first export matches the input table for table (same rows, same values)
    again = load_cohort(tmp_path / "x1")
    for t in ("patients", "events", "adverse_events", "observations"):
        a = original.table(t).drop(columns=["source_file", "source_row"])
        b = again.table(t).drop(columns=["source_file", "source_row"])
        assert list(a.columns) == list(b.columns), t
        assert a.astype(str).equals(b.astype(str)), t
    fresh = make_engine(f"sqlite:///{tmp_path / 'fresh.sqlite'}")
    upgrade(fresh)
    import_cohort(fresh, again)
    write_cohort(read_cohort(fresh), tmp_path / "x2")
    names = sorted(p.name for p in (tmp_path / "x1").iterdir())
    assert names == ["adverse_events.csv", "events.csv", "observations.csv", "patients.csv"]
    match, mismatch, errors = filecmp.cmpfiles(
        tmp_path / "x1", tmp_path / "x2", names, shallow=False
    )
    assert mismatch == [] and errors == [] and match == names
    fresh.dispose()


def test_import_is_all_or_nothing(engine, cohort_dir):
    cohort = load_cohort(cohort_dir)
    import_cohort(engine, cohort)
    before = {m.__name__: _count(engine, m) for m in (Patient, Event, Observation, AuditEntry)}
    with pytest.raises(ImportRefused, match="already in the database"):
        import_cohort(engine, cohort)
    after = {m.__name__: _count(engine, m) for m in (Patient, Event, Observation, AuditEntry)}
    assert before == after


def test_import_failing_midway_changes_nothing(engine, cohort_dir):
    cohort = load_cohort(cohort_dir)

    def boom(table, n):
        if table == "adverse_events":
            raise RuntimeError("simulated failure")

    with pytest.raises(RuntimeError, match="simulated"):
        import_cohort(engine, cohort, progress=boom)
    assert _count(engine, Patient) == 0 and _count(engine, Event) == 0


def test_identifying_columns_refused(engine, tmp_path):
    d = write_synthetic_cohort(tmp_path / "c", n_patients=3)
    import pandas as pd

    p = pd.read_csv(d / "patients.csv")
    p["date_of_birth"] = "1990-01-01"
    p.to_csv(d / "patients.csv", index=False)
    with pytest.raises(ImportRefused, match="identifying"):
        import_cohort(engine, load_cohort(d))
    assert _count(engine, Patient) == 0


def test_bad_cohort_cli_import_changes_nothing(db_url, tmp_path):
    d = write_synthetic_cohort(tmp_path / "bad", n_patients=3)
    (d / "events.csv").write_text("patient_id,day,event\nP00001,10,exploded\n")
    with pytest.raises(CohortError):
        load_cohort(d)
    r = subprocess.run(
        [sys.executable, "-m", "cartrial", "db", "import", str(d), "--db", db_url],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 1
    assert "exploded" in r.stderr and "events.csv" in r.stderr
    eng = make_engine(db_url)
    upgrade(eng)
    assert _count(eng, Patient) == 0
    eng.dispose()


CRASH_SCRIPT = textwrap.dedent(
    """
    import sys, time
    from cartrial.cohort import load_cohort
    from cartrial.store import make_engine, import_cohort
    eng = make_engine(sys.argv[1])
    def progress(table, n):
        if table == "observations":
            print("MIDWAY", flush=True)
            time.sleep(600)   # killed here, mid-transaction
    import_cohort(eng, load_cohort(sys.argv[2]), progress=progress)
    """
)


def test_sigkill_mid_import_leaves_database_unchanged(tmp_path):
    url = f"sqlite:///{tmp_path / 'crash.sqlite'}"
    eng = make_engine(url)
    upgrade(eng)
    first = write_synthetic_cohort(tmp_path / "first", n_patients=2, seed=1)
    import_cohort(eng, load_cohort(first))
    before = {m.__name__: _count(eng, m) for m in (Patient, Event, Observation, AuditEntry)}
    big = write_synthetic_cohort(tmp_path / "big", n_patients=400, obs_per_patient=40, seed=2)
    # IDs of the second cohort must differ from the first
    import pandas as pd

    for name in ("patients", "events", "adverse_events", "observations"):
        f = big / f"{name}.csv"
        df = pd.read_csv(f)
        df["patient_id"] = "B" + df["patient_id"]
        df.to_csv(f, index=False)
    script = tmp_path / "crash.py"
    script.write_text(CRASH_SCRIPT)
    proc = subprocess.Popen(
        [sys.executable, str(script), url, str(big)], stdout=subprocess.PIPE, text=True
    )
    try:
        line = proc.stdout.readline()
        assert line.strip() == "MIDWAY"
        # the uncommitted rows are in the file's WAL/journal right now
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    eng.dispose()
    eng = make_engine(url)
    after = {m.__name__: _count(eng, m) for m in (Patient, Event, Observation, AuditEntry)}
    assert after == before
    with eng.connect() as conn:
        assert conn.execute(text("PRAGMA integrity_check")).scalar() == "ok"
    eng.dispose()
