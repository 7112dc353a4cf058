"""The audit trail: every create/update/delete is recorded, and the trail is append-only.

Good clinical practice (ICH E6(R2) 4.9.0 and 5.5.3; FDA 21 CFR Part 11 §11.10(e))
asks for a secure, computer-generated, time-stamped audit trail recording who made
each change, when, and the old and new values, that cannot be altered. Here:

* ``AuditedSession`` records, in the same transaction as the change, one
  ``AuditEntry`` per created, updated or deleted record (UTC time, user, table,
  record id, old and new values as JSON, reason);
* a *locked* record (locked after source-data verification) cannot be changed or
  deleted, and a locked patient gets no new records, whatever reason is given: only an
  authorised unlock (with a reason, audited) makes it changeable again;
* ``AuditEntry`` rows cannot be updated or deleted through the ORM (mapper events
  raise) nor in the database (triggers created by the initial migration), and every row
  is linked into a hash chain (``cartrial.store.chain``) so tampering is detectable.

Set ``session.info["user"]`` (username) and optionally ``session.info["reason"]``.
"""

from __future__ import annotations

import datetime as dt
import math
import threading
from typing import Any

from sqlalchemy import event, inspect, select
from sqlalchemy.orm import Session

from cartrial.store import chain
from cartrial.store.models import (
    AUDITED_TABLES,
    AuditEntry,
    Patient,
    utcnow,
)


class AuditError(RuntimeError):
    """Raised on an attempt to change or delete the audit trail."""


class LockedRecordError(ValueError):
    """Raised when a locked record is changed, deleted or extended, or unlocked without
    a reason."""


def jsonable(value: Any) -> Any:
    """A JSON-safe copy of a column value (dates as ISO text, NaN as None)."""
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    return value


def record_values(obj: Any) -> dict[str, Any]:
    """All column values of a mapped object, JSON-safe."""
    mapper = inspect(obj).mapper
    return {
        attr.key: jsonable(getattr(obj, attr.key))
        for attr in mapper.column_attrs
        if attr.key != "password_hash"
    }


def _record_id(obj: Any) -> str:
    ident = inspect(obj).mapper.primary_key_from_instance(obj)
    return "/".join(str(v) for v in ident)


def _is_audited(obj: Any) -> bool:
    return getattr(obj, "__tablename__", None) in AUDITED_TABLES


#: what may change on a locked record: the lock itself and the signature of it
LOCK_FIELDS = frozenset({"locked", "signed_by", "signed_at", "signature_meaning"})
#: tables whose new rows a locked patient may still get (queries on locked data)
NOT_LOCKED_BY_PATIENT = frozenset({"patients", "data_queries"})


def _was_locked(obj: Any) -> bool:
    if not hasattr(obj, "locked"):
        return False
    hist = inspect(obj).attrs.locked.history
    if hist.deleted:
        return bool(hist.deleted[0])
    return bool(obj.locked)


def _patient_locked(session: Session, patient_id: str | None) -> bool:
    if patient_id is None:
        return False
    with session.no_autoflush:
        locked = session.scalar(select(Patient.locked).where(Patient.patient_id == patient_id))
    return bool(locked)


class AuditedSession(Session):
    """A Session that writes the audit trail and enforces the lock rules on flush."""


@event.listens_for(AuditedSession, "before_flush")
def _before_flush(session: Session, _ctx, _instances) -> None:
    reason = session.info.get("reason")
    pending: list[tuple[str, Any, str, dict | None, dict | None]] = []
    for obj in list(session.dirty) + list(session.deleted):
        if isinstance(obj, AuditEntry):
            raise AuditError("the audit trail is append-only: entries cannot be changed")
    for obj in session.deleted:
        if not _is_audited(obj):
            continue
        if _was_locked(obj):
            raise LockedRecordError(
                f"{obj.__tablename__} record {_record_id(obj)} is locked (source data "
                "verified): it must be unlocked (audited, with a reason) before it is deleted"
            )
        pending.append(("delete", obj, _record_id(obj), record_values(obj), None))
    for obj in session.dirty:
        if not _is_audited(obj) or not session.is_modified(obj, include_collections=False):
            continue
        state = inspect(obj)
        old: dict[str, Any] = {}
        new: dict[str, Any] = {}
        for attr in state.mapper.column_attrs:
            hist = state.attrs[attr.key].history
            if hist.has_changes() and attr.key != "version":
                shown = attr.key != "password_hash"
                old[attr.key] = jsonable(hist.deleted[0]) if hist.deleted and shown else None
                new[attr.key] = jsonable(hist.added[0]) if hist.added and shown else None
        if not new:
            continue
        if _was_locked(obj):
            if not set(new) <= LOCK_FIELDS:
                raise LockedRecordError(
                    f"{obj.__tablename__} record {_record_id(obj)} is locked (source data "
                    "verified): it cannot be changed until an authorised unlock"
                )
            if new.get("locked") is False and not reason:
                raise LockedRecordError(
                    f"{obj.__tablename__} record {_record_id(obj)}: unlocking needs a reason"
                )
        pending.append(("update", obj, _record_id(obj), old, new))
    for obj in session.new:
        if isinstance(obj, AuditEntry) or not _is_audited(obj):
            continue
        pid = getattr(obj, "patient_id", None)
        if obj.__tablename__ not in NOT_LOCKED_BY_PATIENT and _patient_locked(session, pid):
            raise LockedRecordError(
                f"patient {pid} is locked (source data verified): no records can be added "
                "until an authorised unlock"
            )
        pending.append(("create", obj, "", None, None))
    session.info["_audit_pending"] = pending


@event.listens_for(AuditedSession, "after_flush")
def _after_flush(session: Session, _ctx) -> None:
    pending = session.info.pop("_audit_pending", [])
    if not pending:
        return
    user = session.info.get("user") or "system"
    reason = session.info.get("reason")
    rows = session.info.setdefault("_audit_rows", [])
    for action, obj, rid, old, new in pending:
        if action == "create":
            new = record_values(obj)
            rid = _record_id(obj)
        pid = getattr(obj, "patient_id", None)
        rows.append(
            {
                "username": user,
                "action": action,
                "table_name": obj.__tablename__,
                "record_id": rid,
                "patient_id": pid,
                "old_values": old,
                "new_values": new,
                "reason": reason,
            }
        )


@event.listens_for(AuditedSession, "before_commit")
def _before_commit(session: Session) -> None:
    """Chain the transaction's audit rows at commit, in the same transaction: the chain's
    head is locked only for the last statements before COMMIT, not while the request goes
    on computing (PostgreSQL writers then queue for milliseconds, not for a request)."""
    session.flush()  # SQLAlchemy fires before_commit before its own final flush
    rows = session.info.pop("_audit_rows", None)
    if rows:
        now = utcnow()  # the time the changes are recorded (ids follow commit order)
        chain.append(session.connection(), [{"at": now, **r} for r in rows])


@event.listens_for(AuditedSession, "after_transaction_end")
def _after_transaction_end(session: Session, transaction) -> None:
    if transaction.parent is None:  # the outermost transaction: committed or rolled back
        session.info.pop("_audit_rows", None)
        _release_writer(session)


#: SQLite has one writer at a time and makes the others poll (sleeping up to 100 ms per
#: try): writers of one process queue on this lock instead, from their first flush to the
#: end of their transaction, and so wait only as long as the writer before them. A plain
#: Lock (FastAPI may end a request's session in another thread than the one that wrote);
#: after ``WRITER_WAIT_S`` a writer goes on without it (SQLite's own busy wait applies).
WRITER_WAIT_S = 30.0
_SQLITE_WRITERS: dict[str, threading.Lock] = {}
_SQLITE_WRITERS_LOCK = threading.Lock()


@event.listens_for(AuditedSession, "before_flush")
def _take_writer(session: Session, _ctx, _instances) -> None:
    bind = session.get_bind()
    if bind.dialect.name != "sqlite" or "_writer" in session.info:
        return
    if not (session.new or session.dirty or session.deleted):
        return
    key = str(bind.engine.url)
    with _SQLITE_WRITERS_LOCK:
        lock = _SQLITE_WRITERS.setdefault(key, threading.Lock())
    if lock.acquire(timeout=WRITER_WAIT_S):
        session.info["_writer"] = lock


def _release_writer(session: Session) -> None:
    lock = session.info.pop("_writer", None)
    if lock is not None:
        lock.release()


def _refuse(_mapper, _conn, _target) -> None:
    raise AuditError("the audit trail is append-only: entries cannot be changed or deleted")


event.listen(AuditEntry, "before_update", _refuse)
event.listen(AuditEntry, "before_delete", _refuse)


def audit_for_patient(session: Session, patient_id: str) -> list[dict[str, Any]]:
    """The audit entries of one patient's records, oldest first, as plain dicts."""
    rows = session.scalars(
        select(AuditEntry).where(AuditEntry.patient_id == patient_id).order_by(AuditEntry.id)
    ).all()
    return [
        {
            "id": r.id,
            "at": jsonable(r.at),
            "user": r.username,
            "action": r.action,
            "table": r.table_name,
            "record_id": r.record_id,
            "patient_id": r.patient_id,
            "old_values": r.old_values,
            "new_values": r.new_values,
            "reason": r.reason,
        }
        for r in rows
    ]
