"""SQLAlchemy 2 models of the trial database.

The four cohort tables mirror ``cartrial.cohort.model.COLUMNS`` column for column (so a
cohort goes in and comes back out unchanged); columns a cohort carries beyond the
canonical ones are kept in the JSON column ``extra`` so nothing is lost. Every mutable
record has a ``version`` counter used for optimistic locking (SQLAlchemy
``version_id_col``) and a ``locked`` flag set after source-data verification.
Identifying data is never stored: patients are known by their study ID only.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.types import TypeDecorator

ROLES = ("admin", "data_entry", "monitor", "statistician", "investigator")


def utcnow() -> dt.datetime:
    """Timezone-aware current UTC time (audit timestamps are always UTC)."""
    return dt.datetime.now(dt.UTC)


class UTCDateTime(TypeDecorator):
    """A timestamp stored as UTC and always read back timezone-aware (UTC).

    PostgreSQL keeps ``timestamptz``; SQLite has no time-zone type, so the value is
    converted to UTC before it is written and marked UTC when it is read.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: timestamps must carry a time zone")
        value = value.astimezone(dt.UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=dt.UTC)
        return value.astimezone(dt.UTC)


class Base(DeclarativeBase):
    type_annotation_map = {dict[str, Any]: JSON, list[Any]: JSON}


class Versioned:
    """Mixin: optimistic-locking version counter and SDV lock."""

    version: Mapped[int] = mapped_column(Integer, nullable=False, default=1)
    locked: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)


class Site(Base, Versioned):
    __tablename__ = "sites"
    code: Mapped[str] = mapped_column(String(40), primary_key=True)
    name: Mapped[str | None] = mapped_column(String(200))
    __mapper_args__ = {"version_id_col": Versioned.version}


class User(Base, Versioned):
    __tablename__ = "users"
    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(80), unique=True, nullable=False)
    password_hash: Mapped[str] = mapped_column(String(200), nullable=False)
    role: Mapped[str] = mapped_column(String(20), nullable=False)
    site: Mapped[str | None] = mapped_column(ForeignKey("sites.code"))
    active: Mapped[bool] = mapped_column(Boolean, nullable=False, default=True)
    #: a generated (admin-reset) password must be changed at the next log-in
    must_change_password: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    __mapper_args__ = {"version_id_col": Versioned.version}


class Patient(Base, Versioned):
    __tablename__ = "patients"
    id: Mapped[int] = mapped_column(primary_key=True)
    patient_id: Mapped[str] = mapped_column(String(64), unique=True, nullable=False)
    age_years: Mapped[float | None] = mapped_column(Float)
    sex: Mapped[str | None] = mapped_column(Text)
    diagnosis: Mapped[str | None] = mapped_column(Text)
    cd7_blasts_pct: Mapped[float | None] = mapped_column(Float)
    bm_blasts_pct: Mapped[float | None] = mapped_column(Float)
    extramedullary: Mapped[str | None] = mapped_column(Text)
    #: whole numbers (entry spec ``int``, cohort ``BOUNDS``) in a float column, the cohort's
    #: dtype; an INTEGER column would mean rebuilding ``patients`` on SQLite, whose drop
    #: cascades to every child record while foreign keys are on
    prior_lines: Mapped[float | None] = mapped_column(Float)
    prior_allo_sct: Mapped[bool | None] = mapped_column(Boolean)
    product_source: Mapped[str | None] = mapped_column(Text)
    donor_relation: Mapped[str | None] = mapped_column(Text)
    hla_match: Mapped[str | None] = mapped_column(Text)
    dose_per_kg: Mapped[float | None] = mapped_column(Float)
    dose_level: Mapped[str | None] = mapped_column(Text)
    weight_kg: Mapped[float | None] = mapped_column(Float)
    height_cm: Mapped[float | None] = mapped_column(Float)
    site: Mapped[str | None] = mapped_column(ForeignKey("sites.code"), index=True)
    enrolled: Mapped[bool | None] = mapped_column(Boolean)
    infused: Mapped[bool | None] = mapped_column(Boolean)
    infusion_date: Mapped[dt.date | None] = mapped_column(Date)
    #: day 0 of a patient never infused (migration 0004)
    enrollment_date: Mapped[dt.date | None] = mapped_column(Date)
    extra: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    source_file: Mapped[str | None] = mapped_column(Text)
    source_row: Mapped[int | None] = mapped_column(Integer)
    #: electronic signature of the locked record (21 CFR Part 11 §11.50, §11.200)
    signed_by: Mapped[str | None] = mapped_column(String(80))
    signed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    signature_meaning: Mapped[str | None] = mapped_column(Text)
    # relationships order the unit of work (patient rows before their records) and
    # make deleting a patient delete (and audit) its records
    events: Mapped[list[Event]] = relationship(cascade="all, delete-orphan", order_by="Event.id")
    adverse_events: Mapped[list[AdverseEvent]] = relationship(
        cascade="all, delete-orphan", order_by="AdverseEvent.id"
    )
    observations: Mapped[list[Observation]] = relationship(
        cascade="all, delete-orphan", order_by="Observation.id"
    )
    assessments: Mapped[list[Assessment]] = relationship(
        cascade="all, delete-orphan", order_by="Assessment.id"
    )
    __mapper_args__ = {"version_id_col": Versioned.version}


class _PatientChild(Versioned):
    """Columns shared by the per-patient tables."""

    id: Mapped[int] = mapped_column(primary_key=True)
    extra: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    source_file: Mapped[str | None] = mapped_column(Text)
    source_row: Mapped[int | None] = mapped_column(Integer)


class Event(Base, _PatientChild):
    __tablename__ = "events"
    patient_id: Mapped[str] = mapped_column(
        ForeignKey("patients.patient_id", ondelete="CASCADE"), index=True
    )
    day: Mapped[float | None] = mapped_column(Float)
    event: Mapped[str] = mapped_column(Text, nullable=False)
    response: Mapped[str | None] = mapped_column(Text)
    mrd: Mapped[str | None] = mapped_column(Text)
    mrd_value: Mapped[float | None] = mapped_column(Float)
    cd7_status: Mapped[str | None] = mapped_column(Text)
    site: Mapped[str | None] = mapped_column(Text)
    cause: Mapped[str | None] = mapped_column(Text)
    __mapper_args__ = {"version_id_col": _PatientChild.version}


class AdverseEvent(Base, _PatientChild):
    __tablename__ = "adverse_events"
    patient_id: Mapped[str] = mapped_column(
        ForeignKey("patients.patient_id", ondelete="CASCADE"), index=True
    )
    term: Mapped[str] = mapped_column(Text, nullable=False)
    onset_day: Mapped[float | None] = mapped_column(Float)
    resolution_day: Mapped[float | None] = mapped_column(Float)
    grade: Mapped[int | None] = mapped_column(Integer)
    system: Mapped[str | None] = mapped_column(Text)
    serious: Mapped[bool | None] = mapped_column(Boolean)
    organ: Mapped[str | None] = mapped_column(Text)
    derived: Mapped[bool | None] = mapped_column(Boolean)
    __mapper_args__ = {"version_id_col": _PatientChild.version}


class Observation(Base, _PatientChild):
    __tablename__ = "observations"
    patient_id: Mapped[str] = mapped_column(
        ForeignKey("patients.patient_id", ondelete="CASCADE"), index=True
    )
    day: Mapped[float | None] = mapped_column(Float)
    analyte: Mapped[str] = mapped_column(Text, nullable=False)
    value: Mapped[float | None] = mapped_column(Float)
    #: the value of a categorical analyte (oxygen device, consciousness …) as a word
    value_text: Mapped[str | None] = mapped_column(Text)
    unit: Mapped[str | None] = mapped_column(Text)
    lloq: Mapped[float | None] = mapped_column(Float)
    __mapper_args__ = {"version_id_col": _PatientChild.version}


class Assessment(Base, Versioned):
    """A bedside toxicity assessment: the observations entered and the grades computed.

    The grades are decision support (reference only); ``crs_reasons``/``icans_reasons``
    name the rule that fired, as returned by ``cartrial.grading``.
    """

    __tablename__ = "assessments"
    id: Mapped[int] = mapped_column(primary_key=True)
    patient_id: Mapped[str] = mapped_column(
        ForeignKey("patients.patient_id", ondelete="CASCADE"), index=True
    )
    day: Mapped[float | None] = mapped_column(Float)
    inputs: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False)
    crs_system: Mapped[str | None] = mapped_column(String(40))
    crs_grade: Mapped[int | None] = mapped_column(Integer)
    crs_reasons: Mapped[list[Any] | None] = mapped_column(JSON)
    icans_system: Mapped[str | None] = mapped_column(String(40))
    icans_grade: Mapped[int | None] = mapped_column(Integer)
    icans_reasons: Mapped[list[Any] | None] = mapped_column(JSON)
    missing: Mapped[list[Any] | None] = mapped_column(JSON)
    entered_by: Mapped[str | None] = mapped_column(String(80))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    __mapper_args__ = {"version_id_col": Versioned.version}


class AuditEntry(Base):
    """One append-only audit record: who changed which record when, old and new values.

    Never updated or deleted: the ORM refuses (see ``cartrial.store.audit``) and the
    database refuses through triggers created by the initial migration.
    """

    __tablename__ = "audit_log"
    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), nullable=False)
    username: Mapped[str] = mapped_column(String(80), nullable=False)
    action: Mapped[str] = mapped_column(String(20), nullable=False)
    table_name: Mapped[str] = mapped_column(String(40), nullable=False)
    record_id: Mapped[str] = mapped_column(String(80), nullable=False)
    patient_id: Mapped[str | None] = mapped_column(String(64))
    old_values: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    new_values: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    reason: Mapped[str | None] = mapped_column(Text)
    #: hash chain (``cartrial.store.chain``): SHA-256 over the previous row's hash and
    #: this row's content, so a changed, removed or inserted row is detectable
    prev_hash: Mapped[str | None] = mapped_column(String(64))
    row_hash: Mapped[str | None] = mapped_column(String(64))
    __table_args__ = (
        Index("ix_audit_patient", "patient_id"),
        Index("ix_audit_user_action", "username", "action"),
    )


class WebSession(Base):
    """A server-side log-in session: the cookie carries a random token, the database its
    SHA-256. Log-out deletes the row, so a copied cookie stops working; ``last_seen``
    gives the idle time-out and ``created_at`` the absolute one."""

    __tablename__ = "web_sessions"
    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), nullable=False)
    last_seen: Mapped[dt.datetime] = mapped_column(UTCDateTime(), nullable=False)


class Setting(Base):
    """Key/value settings of the installation (e.g. the audit chain's head).

    Never the session-signing secret: that lives outside the database."""

    __tablename__ = "settings"
    key: Mapped[str] = mapped_column(String(80), primary_key=True)
    value: Mapped[str] = mapped_column(Text, nullable=False)


class DataQuery(Base):
    """A data query on one field of one record: raised by a monitor (``manual``) or by a
    validation rule (``auto``, ``rule`` names it); answered by the site; closed by the
    monitor. Open or answered queries block the patient's lock."""

    __tablename__ = "data_queries"
    id: Mapped[int] = mapped_column(primary_key=True)
    patient_id: Mapped[str] = mapped_column(
        ForeignKey("patients.patient_id", ondelete="CASCADE"), index=True
    )
    table_name: Mapped[str] = mapped_column(String(40), nullable=False)
    record_id: Mapped[int | None] = mapped_column(Integer)
    field: Mapped[str | None] = mapped_column(String(40))
    kind: Mapped[str] = mapped_column(String(10), nullable=False)
    rule: Mapped[str | None] = mapped_column(String(80))
    status: Mapped[str] = mapped_column(String(10), nullable=False, default="open")
    text: Mapped[str] = mapped_column(Text, nullable=False)
    raised_by: Mapped[str] = mapped_column(String(80), nullable=False)
    raised_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), nullable=False)
    answer: Mapped[str | None] = mapped_column(Text)
    answered_by: Mapped[str | None] = mapped_column(String(80))
    answered_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    closed_by: Mapped[str | None] = mapped_column(String(80))
    closed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    version: Mapped[int] = mapped_column(Integer, nullable=False, default=1)
    __mapper_args__ = {"version_id_col": version}


#: cohort table name -> model
COHORT_MODELS: dict[str, type[Base]] = {
    "patients": Patient,
    "events": Event,
    "adverse_events": AdverseEvent,
    "observations": Observation,
}
#: tables whose records the app may create/update/delete (audited)
AUDITED_TABLES = (
    "sites",
    "users",
    "patients",
    "events",
    "adverse_events",
    "observations",
    "assessments",
    "data_queries",
)
