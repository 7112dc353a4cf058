"""The audit trail's hash chain: tampering with ``audit_log`` becomes detectable.

Every audit row carries ``prev_hash`` (the hash of the row before it) and ``row_hash`` =
HMAC-SHA-256, under a key kept outside the database (``cartrial.store.database.audit_key``:
environment or a 0600 file beside the session secret), over ``prev_hash`` and the row's
content (time in UTC, user, action, table, record, patient, old and new values, reason)
as canonical JSON (RFC 2104 HMAC; NIST FIPS 198-1). The chain's head (last id, row count,
last hash) is kept in ``settings`` under ``audit_head`` with its own HMAC tag, updated in
the same transaction as the rows, under a row lock on PostgreSQL (SQLite already holds its
single writer lock), so concurrent writers extend one chain.

``verify(conn)`` walks the chain: an edited row (hash differs), a removed or inserted
row (link broken), a truncated tail or table (head disagrees), a rewritten head (tag
differs) and a dropped or disabled append-only trigger are each reported. Because the
hashes are keyed, someone able to rewrite the table *and* recompute the chain (with plain
SHA-256 or any other key) is detected too, as long as the key stays out of their reach.
FDA 21 CFR Part 11 §11.10(e) asks for audit trails that cannot obscure previously
recorded information; ICH E6(R2) 4.9.0. The application's PostgreSQL role additionally
has no UPDATE, DELETE, TRUNCATE or ALTER on ``audit_log`` (``app_role_sql``).

Chains written before keys were introduced (plain SHA-256, a head without a tag) stay
verifiable: the first keyed write records the last unkeyed id in the tagged head, and
rows up to it are checked with plain SHA-256; a head without a tag is reported as unkeyed.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, RowMapping, func, insert, select, text, update

from cartrial.store.keys import audit_key
from cartrial.store.models import AuditEntry, Setting
from cartrial.store.tables import table_of

GENESIS = "0" * 64
HEAD_KEY = "audit_head"
_KEYS: dict[tuple[str | bool | None, ...], bytes] = {}


def _iso(at: dt.datetime) -> str:
    at = at.replace(tzinfo=dt.UTC) if at.tzinfo is None else at.astimezone(dt.UTC)
    return at.isoformat(timespec="microseconds")


def _payload(prev_hash: str, row: Mapping[str, Any] | RowMapping) -> bytes:
    return json.dumps(
        [
            prev_hash,
            _iso(row["at"]),
            row["username"],
            row["action"],
            row["table_name"],
            str(row["record_id"]),
            row.get("patient_id"),
            row.get("old_values"),
            row.get("new_values"),
            row.get("reason"),
        ],
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
        default=str,
    ).encode("utf-8")


def row_digest(prev_hash: str, row: Mapping[str, Any] | RowMapping, key: bytes | None) -> str:
    """HMAC-SHA-256 (hex) under ``key`` of the previous hash and one audit row's content;
    plain SHA-256 when ``key`` is None (rows written before keyed chains)."""
    payload = _payload(prev_hash, row)
    if key is None:
        return hashlib.sha256(payload).hexdigest()
    return hmac.new(key, payload, hashlib.sha256).hexdigest()


def key_for(conn: Connection, create: bool = True) -> bytes:
    """The chain key of ``conn``'s database (``audit_key``), cached per process."""
    url = conn.engine.url.render_as_string(hide_password=False)
    env = tuple(
        os.environ.get(k)
        for k in ("CARTRIAL_AUDIT_KEY", "CARTRIAL_AUDIT_KEY_FILE", "CARTRIAL_SECRET_FILE")
    )
    cache_key = (url, create, *env)
    if cache_key not in _KEYS:
        _KEYS[cache_key] = audit_key(url, create=create)
    return _KEYS[cache_key]


@dataclass(frozen=True)
class Head:
    """The stored chain head: last id, row count, last hash, the last id of an older
    unkeyed chain (0 if none), and whether it carries a tag (``tag_ok``: a valid one)."""

    last_id: int
    count: int
    digest: str
    legacy_upto: int
    tagged: bool
    tag_ok: bool


def _tag(key: bytes, last_id: int, count: int, digest: str, legacy_upto: int) -> str:
    msg = f"audit-head|{last_id}|{count}|{digest}|{legacy_upto}".encode()
    return hmac.new(key, msg, hashlib.sha256).hexdigest()


def _parse_head(value: str | None, key: bytes) -> Head:
    """The stored head; genesis when absent. An untagged (pre-key) head is read as a
    wholly unkeyed chain."""
    if not value:
        return Head(0, 0, GENESIS, 0, True, True)
    parts = value.split()
    if parts[0] == "v2" and len(parts) == 6:
        last_id, count, legacy = int(parts[1]), int(parts[2]), int(parts[4])
        ok = hmac.compare_digest(parts[5], _tag(key, last_id, count, parts[3], legacy))
        return Head(last_id, count, parts[3], legacy, True, ok)
    old_id, old_count, digest = parts[:3]
    return Head(int(old_id), int(old_count), digest, int(old_id), False, False)


def _head_value(key: bytes, last_id: int, count: int, digest: str, legacy_upto: int) -> str:
    tag = _tag(key, last_id, count, digest, legacy_upto)
    return f"v2 {last_id} {count} {digest} {legacy_upto} {tag}"


def append(conn: Connection, rows: Iterable[Mapping[str, Any]]) -> int:
    """Insert audit rows at the end of the chain (in the caller's transaction)."""
    rows = list(rows)
    if not rows:
        return 0
    key = key_for(conn)
    head_q = select(Setting.value).where(Setting.key == HEAD_KEY)
    if conn.dialect.name == "postgresql":
        head_q = head_q.with_for_update()
    else:
        # SQLite: take the write lock before reading the head (pysqlite reads outside a
        # transaction until the first write, so two writers could read the same head)
        conn.execute(
            update(table_of(Setting))
            .where(Setting.key == HEAD_KEY)
            .values(value=table_of(Setting).c.value)
        )
    stored = conn.scalar(head_q)
    head = _parse_head(stored, key)
    # an untagged head over existing rows (an older cartrial's chain, or a downgraded
    # one) is never re-keyed silently: it is continued unkeyed, and verification keeps
    # reporting it, until an operator runs ``cartrial db seal-audit``
    unkeyed = not head.tagged and head.count > 0
    row_key = None if unkeyed else key
    prev = head.digest
    chained = []
    for row in rows:
        digest = row_digest(prev, row, row_key)
        chained.append({**row, "prev_hash": prev, "row_hash": digest})
        prev = digest
    table = table_of(AuditEntry)
    # in order on one connection, under the head lock: ids ascend in chain order
    conn.execute(insert(table), chained)
    last_id = conn.scalar(select(func.max(table.c.id)))
    count = head.count + len(chained)
    if unkeyed:
        value = f"{last_id} {count} {prev}"
    else:
        value = _head_value(key, last_id, count, prev, head.legacy_upto)
    if stored is None:
        conn.execute(insert(table_of(Setting)), {"key": HEAD_KEY, "value": value})
    else:
        conn.execute(update(table_of(Setting)).where(Setting.key == HEAD_KEY).values(value=value))
    return len(chained)


def seal(conn: Connection, force: bool = False) -> bool:
    """Give an untagged (pre-key) chain head a key tag, recording its last id as the end of
    the unkeyed part, if that part is intact; returns whether it sealed.

    ``cartrial.store.database.upgrade`` seals an empty chain (a new database). A chain
    with entries is sealed only with ``force`` (``cartrial db seal-audit``), by an operator
    who accepts its unkeyed part as it is: an attacker who rewrote the whole table with
    plain SHA-256 and an untagged head looks exactly like an older cartrial's chain.
    """
    key = key_for(conn)
    stored = conn.scalar(select(Setting.value).where(Setting.key == HEAD_KEY))
    head = _parse_head(stored, key)
    if stored is not None and head.tagged:
        return False
    if head.count > 0 and not force:
        return False
    legacy = verify(conn, key=key)
    if any(
        not p.startswith("the chain head carries no key tag")
        for p in legacy.problems
        if "trigger" not in p
    ):
        return False
    table = table_of(AuditEntry)
    last_id = conn.scalar(select(func.max(table.c.id))) or 0
    value = _head_value(key, last_id, legacy.entries, legacy.head or GENESIS, last_id)
    if stored is None:
        conn.execute(insert(table_of(Setting)), {"key": HEAD_KEY, "value": value})
    else:
        conn.execute(update(table_of(Setting)).where(Setting.key == HEAD_KEY).values(value=value))
    return True


@dataclass
class Verification:
    """The result of ``verify``: ``ok`` and the problems found, first ones first."""

    entries: int = 0
    problems: list[str] = field(default_factory=list)
    head: str = ""

    @property
    def ok(self) -> bool:
        return not self.problems

    def summary(self) -> str:
        if self.ok:
            return (
                f"audit trail intact: {self.entries} entries, hash chain verified "
                f"(head {self.head[:16]}…)"
            )
        shown = "; ".join(self.problems[:5])
        more = f" (+{len(self.problems) - 5} more)" if len(self.problems) > 5 else ""
        return f"AUDIT TRAIL TAMPERED: {shown}{more}"


def _trigger_problems(conn: Connection) -> list[str]:
    if conn.dialect.name == "sqlite":
        names = set(
            conn.scalars(
                text("SELECT name FROM sqlite_master WHERE type='trigger' AND tbl_name='audit_log'")
            )
        )
        return [
            f"append-only trigger {n} is missing"
            for n in ("audit_log_no_update", "audit_log_no_delete")
            if n not in names
        ]
    if conn.dialect.name == "postgresql":
        state = conn.scalar(
            text(
                "SELECT t.tgenabled FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid "
                "WHERE t.tgname = 'audit_log_append_only' AND c.oid = to_regclass('audit_log')"
            )
        )
        if state is None:
            return ["append-only trigger audit_log_append_only is missing"]
        if state == "D":
            return ["append-only trigger audit_log_append_only is disabled"]
    return []


def verify(conn: Connection, limit: int = 50, key: bytes | None = None) -> Verification:
    """Walk the whole chain; at most ``limit`` problems are collected.

    ``key`` defaults to the database's audit key; a missing key raises
    ``cartrial.store.database.KeyMissing`` (nothing can be verified without it).
    """
    if key is None:
        key = key_for(conn, create=False)
    out = Verification()
    out.problems.extend(_trigger_problems(conn))
    stored = conn.scalar(select(Setting.value).where(Setting.key == HEAD_KEY))
    head = _parse_head(stored, key)
    prev = GENESIS
    last_id = 0
    table = table_of(AuditEntry)
    # streamed, with the option on this statement only (set on the connection it would
    # stick and turn later statements of the caller's transaction into server cursors)
    result = conn.execute(select(table).order_by(table.c.id), execution_options={"yield_per": 2000})
    for row in result.mappings():
        out.entries += 1
        if len(out.problems) < limit:
            row_key = None if row["id"] <= head.legacy_upto else key
            if row["prev_hash"] != prev:
                out.problems.append(
                    f"entry {row['id']}: link to the previous entry broken "
                    "(an entry was removed or inserted)"
                )
            elif row["row_hash"] != row_digest(prev, row, row_key):
                out.problems.append(f"entry {row['id']}: content changed after it was written")
        prev = row["row_hash"] or ""
        last_id = row["id"]
    if stored is None and out.entries:
        out.problems.append("the chain head (settings.audit_head) is missing")
    elif (head.last_id, head.count, head.digest) != (
        last_id,
        out.entries,
        prev if out.entries else GENESIS,
    ):
        out.problems.append(
            f"the chain head records {head.count} entries ending at id {head.last_id}, the "
            f"table has {out.entries} ending at id {last_id} (entries removed, e.g. TRUNCATE)"
        )
    if stored is not None and not head.tagged:
        out.problems.append(
            "the chain head carries no key tag: the trail was written without the audit key "
            "(by an older cartrial) or the head was replaced; any new change re-keys it"
        )
    elif not head.tag_ok:
        out.problems.append(
            "the chain head's key tag does not match: the head was rewritten without the "
            "audit key, or the key is not the one the trail was written with"
        )
    out.head = head.digest
    return out


def app_role_sql(role: str, schema: str = "public") -> list[str]:
    """PostgreSQL statements giving the application role only what the app needs.

    Run them as the owner of the tables (the role that ran ``cartrial db upgrade``). The
    app role may read and write the clinical tables but only SELECT and INSERT the audit
    trail; not being the owner, it cannot TRUNCATE, ALTER TABLE … DISABLE TRIGGER or
    DROP anything.
    """
    import re

    if not re.fullmatch(r"[a-z_][a-z0-9_]{0,62}", role):
        raise ValueError(f"role name {role!r}: lower-case letters, digits and '_' only")
    if not re.fullmatch(r"[a-z_][a-z0-9_]{0,62}", schema):
        raise ValueError(f"schema name {schema!r}: lower-case letters, digits and '_' only")
    rw = [
        "sites",
        "users",
        "patients",
        "events",
        "adverse_events",
        "observations",
        "assessments",
        "settings",
        "web_sessions",
        "data_queries",
    ]
    return [
        f"REVOKE ALL ON ALL TABLES IN SCHEMA {schema} FROM {role}",
        f"GRANT USAGE ON SCHEMA {schema} TO {role}",
        f"GRANT SELECT, INSERT, UPDATE, DELETE ON {', '.join(f'{schema}.{t}' for t in rw)} "
        f"TO {role}",
        f"GRANT SELECT, INSERT ON {schema}.audit_log TO {role}",
        f"GRANT SELECT ON {schema}.alembic_version TO {role}",
        f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA {schema} TO {role}",
    ]
