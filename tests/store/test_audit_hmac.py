"""The audit trail's keyed (HMAC) hash chain, on SQLite and PostgreSQL.

An attacker with full access to the database (but not to the key kept outside it) edits a
row and recomputes the whole chain with plain SHA-256, as they could against an unkeyed
chain: verification must still fail. Digests are recomputed here independently from the
documented canonical form (RFC 2104 HMAC-SHA-256 over the JSON list of the fields).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import subprocess
import sys

import pytest
from sqlalchemy import select, text

from cartrial.store.chain import HEAD_KEY, verify
from cartrial.store.database import KeyMissing, audit_key, make_engine, session_factory, upgrade
from cartrial.store.models import AuditEntry, Event, Setting
from dbfixtures import write_some_history


@pytest.fixture
def engine(db_url):
    eng = make_engine(db_url)
    upgrade(eng)
    write_some_history(eng)
    yield eng
    eng.dispose()


def _payload(prev: str, row) -> bytes:
    """The documented canonical content of one row (independent of the module's code)."""
    at = row["at"]  # stored in UTC (SQLite returns it without a zone)
    if at.tzinfo is not None:
        at = at.astimezone(dt.UTC).replace(tzinfo=None)
    iso = at.isoformat(timespec="microseconds") + "+00:00"
    fields = [
        prev,
        iso,
        row["username"],
        row["action"],
        row["table_name"],
        str(row["record_id"]),
        row["patient_id"],
        row["old_values"],
        row["new_values"],
        row["reason"],
    ]
    return json.dumps(
        fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str
    ).encode()


def _rows(engine):
    with engine.connect() as conn:
        t = AuditEntry.__table__
        return [dict(r) for r in conn.execute(select(t).order_by(t.c.id)).mappings()]


def _key(engine) -> bytes:
    return audit_key(engine.url.render_as_string(hide_password=False), create=False)


def _unprotect(conn, dialect: str) -> None:
    """What the database owner can do: lift the append-only triggers."""
    if dialect == "sqlite":
        conn.execute(text("DROP TRIGGER audit_log_no_update"))
        conn.execute(text("DROP TRIGGER audit_log_no_delete"))
    else:
        conn.execute(text("ALTER TABLE audit_log DISABLE TRIGGER audit_log_append_only"))


def _protect(conn, dialect: str) -> None:
    if dialect == "sqlite":
        conn.execute(
            text(
                "CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log "
                "BEGIN SELECT RAISE(ABORT, 'append-only'); END"
            )
        )
        conn.execute(
            text(
                "CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log "
                "BEGIN SELECT RAISE(ABORT, 'append-only'); END"
            )
        )
    else:
        conn.execute(text("ALTER TABLE audit_log ENABLE TRIGGER audit_log_append_only"))


def test_row_hashes_are_hmac_under_the_key_outside_the_database(engine):
    key = _key(engine)
    rows = _rows(engine)
    assert len(rows) >= 4
    prev = "0" * 64
    for row in rows:
        assert row["prev_hash"] == prev
        expected = hmac.new(key, _payload(prev, row), hashlib.sha256).hexdigest()
        assert row["row_hash"] == expected, row["id"]
        assert row["row_hash"] != hashlib.sha256(_payload(prev, row)).hexdigest()
        prev = row["row_hash"]
    with engine.connect() as conn:
        stored = conn.scalar(select(Setting.value).where(Setting.key == HEAD_KEY))
        assert key.decode() not in " ".join(
            str(v) for v in conn.execute(select(Setting.value)).scalars()
        )
    assert stored.split()[3] == prev  # the head names the last hash, with a key tag
    with engine.connect() as conn:
        assert verify(conn, key=key).ok


def _forge_with_plain_sha(engine, rewrite_head: str) -> None:
    """Change entry 2's user and recompute every following hash with plain SHA-256."""
    rows = _rows(engine)
    dialect = engine.dialect.name
    with engine.begin() as conn:
        _unprotect(conn, dialect)
        prev = "0" * 64
        for row in rows:
            if row["id"] == rows[1]["id"]:
                row["username"] = "someone else"
            digest = hashlib.sha256(_payload(prev, row)).hexdigest()
            conn.execute(
                AuditEntry.__table__.update()
                .where(AuditEntry.id == row["id"])
                .values(username=row["username"], prev_hash=prev, row_hash=digest)
            )
            prev = digest
        if rewrite_head == "legacy":  # a head as an unkeyed chain writes it
            value = f"{rows[-1]['id']} {len(rows)} {prev}"
        else:  # a keyed-format head, tag made with a guessed key
            guess = b"not-the-key"
            tag = hmac.new(
                guess, f"audit-head|{rows[-1]['id']}|{len(rows)}|{prev}|0".encode(), hashlib.sha256
            ).hexdigest()
            value = f"v2 {rows[-1]['id']} {len(rows)} {prev} 0 {tag}"
        conn.execute(Setting.__table__.update().where(Setting.key == HEAD_KEY).values(value=value))
        _protect(conn, dialect)


@pytest.mark.parametrize("head", ["legacy", "guessed-key"])
def test_forged_row_with_recomputed_plain_sha_chain_is_detected(engine, head):
    _forge_with_plain_sha(engine, head)
    with engine.connect() as conn:
        found = verify(conn)
    assert not found.ok
    assert any("key tag" in p for p in found.problems), found.problems
    if head == "guessed-key":  # the rows are checked with the key: each forged one fails
        assert any("content changed" in p for p in found.problems), found.problems
    else:  # an untagged head is never re-keyed by a later write: the alarm stays
        with session_factory(engine)() as s:
            s.info["user"] = "nurse"
            s.add(Event(patient_id="P1", day=60, event="last_contact"))
            s.commit()
        upgrade(engine)
        with engine.connect() as conn:
            assert any("no key tag" in p for p in verify(conn).problems)
    url = engine.url.render_as_string(hide_password=False)
    r = subprocess.run(
        [sys.executable, "-m", "cartrial", "db", "verify-audit", "--db", url],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 1 and "TAMPERED" in r.stdout, r.stdout + r.stderr


def test_verification_refuses_without_the_key(engine, monkeypatch, tmp_path):
    url = engine.url.render_as_string(hide_password=False)
    monkeypatch.setenv("CARTRIAL_AUDIT_KEY_FILE", str(tmp_path / "nowhere" / "audit-key"))
    with engine.connect() as conn, pytest.raises(KeyMissing, match="audit-key is missing"):
        verify(conn)
    assert not (tmp_path / "nowhere").exists()  # verification never creates a key
    r = subprocess.run(
        [sys.executable, "-m", "cartrial", "db", "verify-audit", "--db", url],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 2
    assert "cannot verify the audit trail" in r.stderr and "CARTRIAL_AUDIT_KEY" in r.stderr


def test_a_different_key_does_not_verify(engine, monkeypatch):
    monkeypatch.setenv("CARTRIAL_AUDIT_KEY", "x" * 48)
    with engine.connect() as conn:
        found = verify(conn)
    assert not found.ok and any("content changed" in p for p in found.problems)


def test_an_unkeyed_chain_from_before_keys_is_sealed_and_stays_checked(engine):
    """A pre-key database: rows hashed with plain SHA-256 and an untagged head. Upgrading
    tags the head; later rows are keyed; the old rows are still checked."""
    rows = _rows(engine)
    dialect = engine.dialect.name
    with engine.begin() as conn:  # rewrite as the older cartrial wrote it
        _unprotect(conn, dialect)
        prev = "0" * 64
        for row in rows:
            digest = hashlib.sha256(_payload(prev, row)).hexdigest()
            conn.execute(
                AuditEntry.__table__.update()
                .where(AuditEntry.id == row["id"])
                .values(prev_hash=prev, row_hash=digest)
            )
            prev = digest
        conn.execute(
            Setting.__table__.update()
            .where(Setting.key == HEAD_KEY)
            .values(value=f"{rows[-1]['id']} {len(rows)} {prev}")
        )
        _protect(conn, dialect)
    with engine.connect() as conn:
        assert any("no key tag" in p for p in verify(conn).problems)
    upgrade(engine)  # does not seal a chain with entries on its own ...
    with engine.connect() as conn:
        assert any("no key tag" in p for p in verify(conn).problems)
    url = engine.url.render_as_string(hide_password=False)
    r = subprocess.run(
        [sys.executable, "-m", "cartrial", "db", "seal-audit", "--db", url],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 0, r.stdout + r.stderr  # ... an operator does
    with session_factory(engine)() as s:
        s.info["user"] = "nurse"
        s.add(Event(patient_id="P1", day=60, event="last_contact"))
        s.commit()
    with engine.connect() as conn:
        found = verify(conn)
    assert found.ok, found.problems
    assert found.entries == len(rows) + 1
    with engine.begin() as conn:  # an edit of an old, unkeyed row is still found
        _unprotect(conn, dialect)
        conn.execute(text(f"UPDATE audit_log SET reason = 'x' WHERE id = {rows[1]['id']}"))
        _protect(conn, dialect)
    with engine.connect() as conn:
        assert any(f"entry {rows[1]['id']}: content changed" in p for p in verify(conn).problems)
