"""The trial database: SQLAlchemy models, Alembic migrations, audit trail, cohort I/O.

SQLite file by default (``./cartrial.sqlite`` or ``$CARTRIAL_DB``), PostgreSQL by URL;
the same code path for both. See ``database``, ``models``, ``audit``, ``cohort_io``.
"""

from __future__ import annotations

from cartrial.store.audit import AuditError, LockedRecordError, audit_for_patient
from cartrial.store.cohort_io import ImportRefused, import_cohort, read_cohort, read_frames
from cartrial.store.database import (
    current_revision,
    make_engine,
    resolve_url,
    session_factory,
    upgrade,
)

__all__ = [
    "AuditError",
    "ImportRefused",
    "LockedRecordError",
    "audit_for_patient",
    "current_revision",
    "import_cohort",
    "make_engine",
    "read_cohort",
    "read_frames",
    "resolve_url",
    "session_factory",
    "upgrade",
]
