"""The audit trail's hash chain: tampering with ``audit_log`` becomes detectable.

Every audit row carries ``prev_hash`` (the hash of the row before it) and ``row_hash`` =
SHA-256 over ``prev_hash`` and the row's content (time in UTC, user, action, table,
record, patient, old and new values, reason) as canonical JSON. The chain's head (last
id, its hash and the row count) is kept in ``settings`` under ``audit_head`` and updated
in the same transaction as the rows, under a row lock on PostgreSQL (SQLite already
holds its single writer lock), so concurrent writers extend one chain.

``verify(conn)`` walks the chain: an edited row (hash differs), a removed or inserted
row (link broken), a truncated tail or table (head disagrees) and a dropped or disabled
append-only trigger are each reported. FDA 21 CFR Part 11 §11.10(e) asks for audit
trails that cannot obscure previously recorded information; ICH E6(R2) 4.9.0.

The chain is not keyed: someone able to rewrite every row *and* the head consistently
could forge it, which is why the application's PostgreSQL role has no UPDATE, DELETE,
TRUNCATE or ALTER on ``audit_log`` (``app_role_sql``).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, func, insert, select, text, update

from cartrial.store.models import AuditEntry, Setting

GENESIS = "0" * 64
HEAD_KEY = "audit_head"


def _iso(at: dt.datetime) -> str:
    at = at.replace(tzinfo=dt.UTC) if at.tzinfo is None else at.astimezone(dt.UTC)
    return at.isoformat(timespec="microseconds")


def row_digest(prev_hash: str, row: Mapping[str, Any]) -> str:
    """SHA-256 (hex) of the previous hash and one audit row's content."""
    payload = json.dumps(
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
    )
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


def _parse_head(value: str | None) -> tuple[int, int, str]:
    """(last id, row count, last hash) from the stored head; genesis when absent."""
    if not value:
        return 0, 0, GENESIS
    last_id, count, digest = value.split()
    return int(last_id), int(count), digest


def _head_value(last_id: int, count: int, digest: str) -> str:
    return f"{last_id} {count} {digest}"


def append(conn: Connection, rows: Iterable[Mapping[str, Any]]) -> int:
    """Insert audit rows at the end of the chain (in the caller's transaction)."""
    rows = list(rows)
    if not rows:
        return 0
    head_q = select(Setting.value).where(Setting.key == HEAD_KEY)
    if conn.dialect.name == "postgresql":
        head_q = head_q.with_for_update()
    else:
        # SQLite: take the write lock before reading the head (pysqlite reads outside a
        # transaction until the first write, so two writers could read the same head)
        conn.execute(
            update(Setting.__table__)
            .where(Setting.key == HEAD_KEY)
            .values(value=Setting.__table__.c.value)
        )
    head = conn.scalar(head_q)
    _, count, prev = _parse_head(head)
    chained = []
    for row in rows:
        digest = row_digest(prev, row)
        chained.append({**row, "prev_hash": prev, "row_hash": digest})
        prev = digest
    table = AuditEntry.__table__
    # in order on one connection, under the head lock: ids ascend in chain order
    conn.execute(insert(table), chained)
    last_id = conn.scalar(select(func.max(table.c.id)))
    value = _head_value(last_id, count + len(chained), prev)
    if head is None:
        conn.execute(insert(Setting.__table__), {"key": HEAD_KEY, "value": value})
    else:
        conn.execute(update(Setting.__table__).where(Setting.key == HEAD_KEY).values(value=value))
    return len(chained)


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


def verify(conn: Connection, limit: int = 50) -> Verification:
    """Walk the whole chain; at most ``limit`` problems are collected."""
    out = Verification()
    out.problems.extend(_trigger_problems(conn))
    head = conn.scalar(select(Setting.value).where(Setting.key == HEAD_KEY))
    prev = GENESIS
    last_id = 0
    table = AuditEntry.__table__
    result = conn.execution_options(yield_per=2000).execute(select(table).order_by(table.c.id))
    for row in result.mappings():
        out.entries += 1
        if len(out.problems) < limit:
            if row["prev_hash"] != prev:
                out.problems.append(
                    f"entry {row['id']}: link to the previous entry broken "
                    "(an entry was removed or inserted)"
                )
            elif row["row_hash"] != row_digest(prev, row):
                out.problems.append(f"entry {row['id']}: content changed after it was written")
        prev = row["row_hash"] or ""
        last_id = row["id"]
    h_id, h_count, h_hash = _parse_head(head)
    if head is None and out.entries:
        out.problems.append("the chain head (settings.audit_head) is missing")
    elif (h_id, h_count, h_hash) != (last_id, out.entries, prev if out.entries else GENESIS):
        out.problems.append(
            f"the chain head records {h_count} entries ending at id {h_id}, the table has "
            f"{out.entries} ending at id {last_id} (entries removed, e.g. TRUNCATE)"
        )
    out.head = h_hash
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
