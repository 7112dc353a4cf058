"""Operations of the web app and API on the trial database, with the access rules.

Pages and the JSON API call the same functions, so both enforce the same rules:
site isolation (a data-entry user sees only their own site; a patient of another
site is reported as not found), role permissions, field validation with the cohort
vocabularies, the cohort's cross-table rules (one death, nothing after death),
optimistic locking (stale ``version`` -> Conflict) and lock + reason.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from cartrial.store import rules
from cartrial.store.audit import LockedRecordError, jsonable
from cartrial.store.models import (
    AdverseEvent,
    Assessment,
    AuditEntry,
    DataQuery,
    Event,
    Observation,
    Patient,
    Site,
    User,
    Versioned,
    utcnow,
)
from cartrial.store.users import Principal, log_event, verify_password
from cartrial.store.validation import validate
from cartrial.web.bedside import ICE_ITEMS, grade_assessment, parse_assessment
from cartrial.web.errors import (  # noqa: F401  (re-exported: svc.NotFound, ...)
    Conflict,
    Forbidden,
    Invalid,
    LockedError,
    NotFound,
    Refused,
    ServiceError,
)

#: a per-patient record class (the cohort's child tables and bedside assessments)
RecordModel = type[Event] | type[AdverseEvent] | type[Observation] | type[Assessment]
PatientRecord = Event | AdverseEvent | Observation | Assessment

CHILD_MODELS: dict[str, type[Event] | type[AdverseEvent] | type[Observation]] = {
    "events": Event,
    "adverse_events": AdverseEvent,
    "observations": Observation,
}
TIME_COLUMN = {"events": "day", "adverse_events": "onset_day", "observations": "day"}


def as_dict(obj: Any) -> dict[str, Any]:
    """A record as JSON-safe dict (all columns)."""
    return {a.key: jsonable(getattr(obj, a.key)) for a in obj.__mapper__.column_attrs}


# -- patients -----------------------------------------------------------------------------


def list_patients(db: Session, who: Principal, site: str | None = None) -> list[Patient]:
    """Patients the user may see, optionally of one site, ordered by site then ID."""
    q = select(Patient).order_by(Patient.site, Patient.patient_id)
    if not who.all_sites:
        q = q.where(Patient.site == who.site)
    if site:
        q = q.where(Patient.site == site)
    return list(db.scalars(q))


def get_patient(db: Session, who: Principal, patient_id: str) -> Patient:
    """The patient, or NotFound if absent or of a site the user may not see."""
    p = db.scalar(select(Patient).where(Patient.patient_id == patient_id))
    if p is None or not who.sees_site(p.site):
        raise NotFound(f"patient {patient_id!r} not found")
    return p


def patient_for_audit(db: Session, who: Principal, patient_id: str) -> Patient | None:
    """The patient whose audit trail ``who`` asks for; None for a deleted patient whose
    trail remains (only for users who see every site); NotFound otherwise."""

    try:
        return get_patient(db, who, patient_id)
    except NotFound:
        if (
            who.all_sites
            and db.scalar(select(AuditEntry.id).where(AuditEntry.patient_id == patient_id).limit(1))
            is not None
        ):
            return None
        raise


def own_account(db: Session, who: Principal) -> User:
    """The signed-in user's own row (to re-check or change the password); Forbidden if
    the account was removed since the session began."""
    user = db.get(User, who.id)
    if user is None:
        raise Forbidden(f"the user account {who.username!r} no longer exists")
    return user


def _need_write(who: Principal) -> None:
    if not who.can_write:
        raise Forbidden(f"role {who.role} may not change clinical data")


def create_patient(db: Session, who: Principal, data: Mapping[str, Any]) -> Patient:
    _need_write(who)
    values, errors = validate("patients", data)
    if not errors:
        site = values.get("site")
        if who.role == "data_entry":
            if site is None:
                values["site"] = site = who.site
            elif site != who.site:
                errors["site"] = f"you may enter patients of site {who.site} only"
        if site is not None and "site" not in errors and db.get(Site, site) is None:
            errors["site"] = f"unknown site {site!r}"
        pid = values.get("patient_id")
        if pid and db.scalar(select(func.count()).where(Patient.patient_id == pid)):
            errors["patient_id"] = f"patient {pid!r} already exists"
    if errors:
        raise Invalid("the patient was not saved: see the fields marked", errors)
    patient = Patient(**values)
    db.add(patient)
    _commit(db)
    return patient


# -- records ------------------------------------------------------------------------------


def list_records(db: Session, who: Principal, table: str, patient_id: str) -> list[Any]:
    model = _model(table)
    get_patient(db, who, patient_id)
    return list(db.scalars(select(model).where(model.patient_id == patient_id).order_by(model.id)))


def get_record(db: Session, who: Principal, table: str, record_id: int) -> Any:
    rec = _fetch(db, table, record_id)
    if rec is None:
        raise NotFound(f"{table} record {record_id} not found")
    get_patient(db, who, rec.patient_id)  # site check
    return rec


def _fetch(db: Session, table: str, record_id: int) -> PatientRecord | None:
    """Record ``record_id`` of ``table`` (``db.get``: the identity map first), or None."""
    model = _model(table)
    rec = db.get(model, record_id)
    # db.get returns an instance of ``model`` or None; the check narrows its static type
    return rec if isinstance(rec, model) else None


def _model(table: str) -> RecordModel:
    if table == "assessments":
        return Assessment
    try:
        return CHILD_MODELS[table]
    except KeyError:
        raise NotFound(f"unknown table {table!r}") from None


def _death_rules(
    db: Session, table: str, patient_id: str, values: Mapping[str, Any], exclude: int | None
) -> dict[str, str]:
    """The cohort's cross-table rules: at most one death; nothing recorded after death."""
    errors: dict[str, str] = {}
    tcol = TIME_COLUMN[table]
    day = values.get(tcol)
    q = select(Event).where(Event.patient_id == patient_id, Event.event == "death")
    if exclude is not None and table == "events":
        q = q.where(Event.id != exclude)
    death = db.scalars(q).first()
    if death is not None:
        if table == "events" and values.get("event") == "death":
            errors["event"] = f"the patient already has a death recorded (day {death.day:g})"
        elif day is not None and death.day is not None and day > death.day:
            errors[tcol] = f"after the patient's death on day {death.day:g}"
    if table == "events" and values.get("event") == "death" and day is not None:
        for name, model in CHILD_MODELS.items():
            col = getattr(model, TIME_COLUMN[name])
            last_q = select(func.max(col)).where(model.patient_id == patient_id)
            if name == "events" and exclude is not None:
                last_q = last_q.where(Event.id != exclude)
            latest = db.scalar(last_q)
            if latest is not None and latest > day:
                errors["day"] = f"{name} are recorded after this day (day {latest:g})"
                break
        latest = db.scalar(
            select(func.max(Assessment.day)).where(Assessment.patient_id == patient_id)
        )
        if "day" not in errors and latest is not None and latest > day:
            errors["day"] = f"bedside assessments are recorded after this day (day {latest:g})"
    return errors


def create_record(
    db: Session,
    who: Principal,
    table: str,
    patient_id: str,
    data: Mapping[str, Any],
    reason: str | None = None,
) -> Any:
    """Validate and store a new event / adverse event / observation of a patient."""
    _need_write(who)
    model = CHILD_MODELS.get(table)
    if model is None:
        raise NotFound(f"unknown table {table!r}")
    patient = get_patient(db, who, patient_id)
    values, errors = validate(table, data)
    if not errors:
        errors = _death_rules(db, table, patient_id, values, None)
    if errors:
        raise Invalid(f"the {table.replace('_', ' ')} record was not saved", errors)
    _refuse_locked(patient, f"patient {patient_id}")
    rec = model(patient_id=patient_id, **values)
    db.add(rec)
    _flush(db, reason)
    run_rules(db, patient_id, who.username)
    _commit(db, reason)
    return rec


def _record_to_change(
    db: Session, who: Principal, table: str, record_id: int, version: int | None
) -> Any:
    """The record an update or delete acts on, after the write-access, table and
    version checks (``version`` must be the version the user last saw)."""
    _need_write(who)
    if table not in CHILD_MODELS and table != "assessments":
        raise NotFound(f"unknown table {table!r}")
    rec = get_record(db, who, table, record_id)
    _check_version(rec, version, table, record_id)
    _refuse_locked(rec, f"{table} record {record_id}")
    return rec


def _refuse_locked(rec: Any, what: str) -> None:
    """Locked (source data verified) means unchangeable until an authorised unlock."""
    if rec.locked:
        raise LockedError(
            f"{what} is locked (source data verified): it cannot be changed until an "
            "administrator unlocks it, with a reason (audited)",
            {"_form": "locked"},
        )


def update_record(
    db: Session,
    who: Principal,
    table: str,
    record_id: int,
    data: Mapping[str, Any],
    version: int | None,
    reason: str | None = None,
) -> Any:
    """Change fields of a record; ``version`` must be the version the user last saw."""
    if table == "assessments":  # inputs are re-graded, not validated column by column
        return update_assessment(db, who, record_id, data, version, reason)
    rec = _record_to_change(db, who, table, record_id, version)
    values, errors = validate(table, data, partial=True)
    if not errors:
        merged = {k: getattr(rec, k) for k in TIME_COLUMN.values() if hasattr(rec, k)}
        if table == "events":
            merged["event"] = rec.event
        merged.update(values)
        errors = _death_rules(db, table, rec.patient_id, merged, rec.id)
    if errors:
        raise Invalid(f"the {table.replace('_', ' ')} record was not changed", errors)
    if not (reason or "").strip():
        raise Invalid(
            "a reason for the change is required",
            {"reason": "required: why is the stored value changed?"},
        )
    for key, value in values.items():
        setattr(rec, key, value)
    _flush(db, reason)
    run_rules(db, rec.patient_id, who.username)
    _commit(db, reason)
    return rec


def delete_record(
    db: Session,
    who: Principal,
    table: str,
    record_id: int,
    version: int | None,
    reason: str | None = None,
) -> None:
    rec = _record_to_change(db, who, table, record_id, version)
    if not (reason or "").strip():
        raise Invalid(
            "a reason for deleting is required", {"reason": "required: why is the record deleted?"}
        )
    pid = rec.patient_id
    db.delete(rec)
    _flush(db, reason)
    run_rules(db, pid, who.username)
    _commit(db, reason)


def delete_patient(
    db: Session, who: Principal, patient_id: str, version: int | None, reason: str | None
) -> dict[str, int]:
    """Delete a patient with all their records (events, adverse events, observations,
    bedside assessments, data queries), each one deleted through the ORM so the audit
    trail keeps every deleted row's values. Refused while the patient or any of their
    records is locked; a reason is required. Returns the rows deleted per table."""
    _need_write(who)
    patient = get_patient(db, who, patient_id)
    _check_version(patient, version, "patients", patient_id)
    _refuse_locked(patient, f"patient {patient_id}")
    if not (reason or "").strip():
        raise Invalid(
            "a reason for deleting the patient is required",
            {"reason": "required: why is the patient deleted?"},
        )
    counts: dict[str, int] = {}
    for table in ("events", "adverse_events", "observations", "assessments"):
        rows = list(getattr(patient, table))
        for rec in rows:
            _refuse_locked(rec, f"{table} record {rec.id}")
        counts[table] = len(rows)
    queries = list(db.scalars(select(DataQuery).where(DataQuery.patient_id == patient_id)))
    counts["data_queries"] = len(queries)
    for q in queries:  # no ORM relationship: delete them one by one (audited)
        db.delete(q)
    db.delete(patient)  # the relationships cascade: each child row deleted and audited
    counts["patients"] = 1
    _flush(db, reason)
    _commit(db, reason)
    return counts


def update_patient(
    db: Session,
    who: Principal,
    patient_id: str,
    data: Mapping[str, Any],
    version: int | None,
    reason: str | None = None,
) -> Patient:
    _need_write(who)
    patient = get_patient(db, who, patient_id)
    _check_version(patient, version, "patients", patient_id)
    _refuse_locked(patient, f"patient {patient_id}")
    if "patient_id" in data and data["patient_id"] != patient_id:
        raise Invalid("the study ID cannot be changed", {"patient_id": "cannot be changed"})
    values, errors = validate("patients", data, partial=True)
    if "site" in values and who.role == "data_entry" and values["site"] != who.site:
        errors["site"] = f"you may enter patients of site {who.site} only"
    elif values.get("site") is not None and db.get(Site, values["site"]) is None:
        errors["site"] = f"unknown site {values['site']!r}"
    if not (reason or "").strip():
        errors["reason"] = "required: why is the stored value changed?"
    if errors:
        raise Invalid("the patient was not changed", errors)
    for key, value in values.items():
        setattr(patient, key, value)
    _commit(db, reason)
    return patient


def _check_version(rec: Any, version: int | None, table: str, ident: Any) -> None:
    if version is None:
        raise Invalid(
            "the version of the record you edited is required",
            {"version": "required (optimistic locking)"},
        )
    if version != rec.version:
        raise Conflict(
            f"{table} record {ident} was changed by someone else (you edited version "
            f"{version}, it is now at version {rec.version}): reload it and apply your change again"
        )


def _flush(db: Session, reason: str | None) -> None:
    """Flush with the reason already in place (the audit rows are written at flush)."""
    if reason:
        db.info["reason"] = reason.strip()[:2000]
    try:
        db.flush()
    except LockedRecordError as exc:
        db.info.pop("reason", None)
        db.rollback()
        raise LockedError(str(exc), {"_form": "locked"}) from None
    except StaleDataError:
        db.info.pop("reason", None)
        db.rollback()
        raise Conflict(
            "the record was changed by someone else meanwhile: reload it and apply "
            "your change again"
        ) from None


def _commit(db: Session, reason: str | None = None) -> None:
    """Commit with the reason in the audit trail; map lock/stale errors to clear ones."""
    if reason:
        db.info["reason"] = reason.strip()[:2000]
    try:
        db.commit()
    except LockedRecordError as exc:
        db.rollback()
        raise LockedError(str(exc), {"_form": "locked"}) from None
    except StaleDataError:
        db.rollback()
        raise Conflict(
            "the record was changed by someone else meanwhile: reload it and apply "
            "your change again"
        ) from None
    finally:
        db.info.pop("reason", None)


# -- locking ------------------------------------------------------------------------------


def lock_patient(db: Session, who: Principal, patient_id: str) -> int:
    """Lock a patient and all their records after source-data verification."""
    if not who.can_lock:
        raise Forbidden(f"role {who.role} may not lock records")
    patient = get_patient(db, who, patient_id)
    pending = db.scalar(
        select(func.count())
        .select_from(DataQuery)
        .where(DataQuery.patient_id == patient_id, DataQuery.status != "closed")
    )
    if pending:
        raise Conflict(
            f"patient {patient_id} has {pending} open data quer"
            f"{'y' if pending == 1 else 'ies'}: close them before locking"
        )
    n = 0
    recs: list[Versioned] = [
        patient,
        *patient.events,
        *patient.adverse_events,
        *patient.observations,
        *patient.assessments,
    ]
    for rec in recs:
        if not rec.locked:
            rec.locked = True
            n += 1
    _commit(db)
    return n


def lock_record(db: Session, who: Principal, table: str, record_id: int) -> Any:
    if not who.can_lock:
        raise Forbidden(f"role {who.role} may not lock records")
    rec = get_record(db, who, table, record_id)
    rec.locked = True
    _commit(db)
    return rec


def unlock_patient(db: Session, who: Principal, patient_id: str, reason: str | None) -> None:
    """Unlock (admin only, reason required)."""
    if who.role != "admin":
        raise Forbidden("only an admin may unlock records")
    if not reason:
        raise Invalid("a reason is required to unlock", {"reason": "required"})
    patient = get_patient(db, who, patient_id)
    recs: list[Versioned] = [
        patient,
        *patient.events,
        *patient.adverse_events,
        *patient.observations,
        *patient.assessments,
    ]
    for rec in recs:
        rec.locked = False
    # a signature covers the record as it was signed: unlocking for a change unsigns it
    patient.signed_by = patient.signed_at = patient.signature_meaning = None
    _commit(db, reason)


# -- bedside assessment -------------------------------------------------------------------
# The bedside form's inputs and grading live in ``cartrial.web.bedside`` (issue 17: this
# module keeps the records); the functions below store what it computes.


def create_assessment(
    db: Session,
    who: Principal,
    patient_id: str,
    data: Mapping[str, Any],
    reason: str | None = None,
) -> Assessment:
    """Grade a bedside assessment and store inputs and grades (audited)."""

    _need_write(who)
    patient = get_patient(db, who, patient_id)
    obs, errors = parse_assessment(data)
    if obs.get("age_years") is None and patient.age_years is not None:
        obs["age_years"] = patient.age_years
    if errors:
        raise Invalid("the assessment was not saved: see the fields marked", errors)
    death = db.scalar(
        select(Event.day).where(Event.patient_id == patient_id, Event.event == "death")
    )
    if death is not None and obs["day"] is not None and obs["day"] > death:
        raise Invalid(
            "the assessment was not saved: see the fields marked",
            {"day": f"after the patient's death on day {death:g}"},
        )
    grades = grade_assessment(obs)
    _refuse_locked(patient, f"patient {patient_id}")
    rec = Assessment(
        patient_id=patient_id,
        day=obs["day"],
        inputs={k: v for k, v in obs.items() if v is not None},
        entered_by=who.username,
        **grades,
    )
    db.add(rec)
    # the automatic queries first (reads only), then one flush and the commit: writers
    # hold the database's write lock for the inserts alone, not for the rules
    with db.no_autoflush:
        run_rules(db, patient_id, who.username, new_assessments=(rec,))
    _flush(db, reason)
    _commit(db, reason)
    return rec


def assessment_form(rec: Assessment) -> dict[str, Any]:
    """The stored inputs of an assessment as the bedside form's values (day included)."""
    out: dict[str, Any] = {"day": rec.day}
    for k, v in (rec.inputs or {}).items():
        out[k] = ("yes" if v else "no") if isinstance(v, bool) else v
    return out


def update_assessment(
    db: Session,
    who: Principal,
    record_id: int,
    data: Mapping[str, Any],
    version: int | None,
    reason: str | None = None,
) -> Assessment:
    """Change the inputs of a bedside assessment and grade it again with the same engines
    as when it was saved (``grade_assessment``: ASTCT 2019, Lee et al., BBMT 2019;25:625),
    so the stored grades always follow from the stored inputs (``cartrial.web.bedside``). ``data`` holds the fields
    that change (blank = now missing); the others keep their stored value. The version
    last seen and a reason are required; a locked assessment is refused."""

    rec = _record_to_change(db, who, "assessments", record_id, version)
    merged: dict[str, Any] = assessment_form(rec)
    if any(k in ICE_ITEMS for k in data):  # the items given: their sum replaces the total
        merged.pop("ice_score", None)
    merged.update({k: v for k, v in data.items() if k not in ("csrf_token", "reason")})
    obs, errors = parse_assessment(merged)
    if obs.get("age_years") is None:
        obs["age_years"] = db.scalar(
            select(Patient.age_years).where(Patient.patient_id == rec.patient_id)
        )
    if not errors:
        death = db.scalar(
            select(Event.day).where(Event.patient_id == rec.patient_id, Event.event == "death")
        )
        if death is not None and obs["day"] is not None and obs["day"] > death:
            errors["day"] = f"after the patient's death on day {death:g}"
    if errors:
        raise Invalid("the assessment was not changed: see the fields marked", errors)
    if not (reason or "").strip():
        raise Invalid(
            "a reason for the change is required",
            {"reason": "required: why is the stored value changed?"},
        )
    grades = grade_assessment(obs)
    inputs = {k: v for k, v in obs.items() if v is not None}
    if inputs == rec.inputs and obs["day"] == rec.day:
        raise Invalid("nothing was changed", {"_form": "no field differs from the stored one"})
    rec.day, rec.inputs = obs["day"], inputs
    for key, value in grades.items():
        setattr(rec, key, value)
    _flush(db, reason)
    run_rules(db, rec.patient_id, who.username)
    _commit(db, reason)
    return rec


# -- data queries -------------------------------------------------------------------------

QUERY_TABLES = ("patients", "events", "adverse_events", "observations", "assessments")


def run_rules(
    db: Session, patient_id: str, username: str, new_assessments: Iterable[Assessment] = ()
) -> None:
    """Re-evaluate the automatic queries of one patient (``cartrial.store.rules``), in the
    caller's transaction: a rule that fires opens a query once; a rule that stopped
    firing marks its open query answered ("resolved by correction")."""

    observations = db.scalars(select(Observation).where(Observation.patient_id == patient_id))
    aes = db.scalars(select(AdverseEvent).where(AdverseEvent.patient_id == patient_id)).all()
    assessments = [
        *db.scalars(select(Assessment).where(Assessment.patient_id == patient_id)),
        *new_assessments,
    ]  # not yet flushed
    firing: dict[tuple[str, int, str], tuple[str, str]] = {}
    for o in observations:
        for rule, fld, msg in rules.observation_rules(o):
            firing[("observations", o.id, rule)] = (fld, msg)
    for a in aes:
        for rule, fld, msg in rules.adverse_event_rules(a, assessments):
            firing[("adverse_events", a.id, rule)] = (fld, msg)
    existing = {
        (q.table_name, q.record_id, q.rule): q
        for q in db.scalars(
            select(DataQuery).where(
                DataQuery.patient_id == patient_id,
                DataQuery.kind == "auto",
                DataQuery.status != "closed",
            )
        )
    }
    now = utcnow()
    for key, (fld, msg) in firing.items():
        q = existing.get(key)
        if q is None:
            db.add(
                DataQuery(
                    patient_id=patient_id,
                    table_name=key[0],
                    record_id=key[1],
                    field=fld,
                    kind="auto",
                    rule=key[2],
                    status="open",
                    text=msg,
                    raised_by="system",
                    raised_at=now,
                )
            )
        elif q.status == "answered" and q.answered_by == "system":
            q.status, q.answer, q.answered_by, q.answered_at = "open", None, None, None
    for qkey, q in existing.items():
        if qkey not in firing and q.status == "open":
            q.status, q.answered_by, q.answered_at = "answered", "system", now
            q.answer = f"resolved by correction ({username}): the rule no longer fires"


def list_queries(
    db: Session, who: Principal, patient_id: str | None = None, status: str | None = None
) -> list[DataQuery]:
    q = select(DataQuery).join(Patient, Patient.patient_id == DataQuery.patient_id)
    if not who.all_sites:
        q = q.where(Patient.site == who.site)
    if patient_id is not None:
        q = q.where(DataQuery.patient_id == patient_id)
    if status == "pending":
        q = q.where(DataQuery.status != "closed")
    elif status:
        q = q.where(DataQuery.status == status)
    return list(db.scalars(q.order_by(Patient.site, DataQuery.patient_id, DataQuery.id)))


def _query(db: Session, who: Principal, query_id: int) -> DataQuery:
    q = db.get(DataQuery, query_id)
    if q is None:
        raise NotFound(f"query {query_id} not found")
    get_patient(db, who, q.patient_id)  # site check
    return q


def raise_query(
    db: Session,
    who: Principal,
    patient_id: str,
    table: str,
    record_id: int | None,
    field: str | None,
    text: str,
) -> DataQuery:
    """A monitor's manual query on a field of a record (or on the patient)."""
    if not who.can_query:
        raise Forbidden(f"role {who.role} may not raise data queries")
    get_patient(db, who, patient_id)
    errors = {}
    if table not in QUERY_TABLES:
        errors["table"] = f"expected one of {', '.join(QUERY_TABLES)}"
    elif table != "patients":
        rec = _fetch(db, table, record_id) if record_id else None
        if rec is None or rec.patient_id != patient_id:
            errors["record_id"] = f"no {table} record {record_id} of patient {patient_id}"
    text = (text or "").strip()
    if not text:
        errors["text"] = "required: what should the site check?"
    if len(text) > 2000 or len(field or "") > 40:
        errors["text"] = "at most 2000 characters"
    if errors:
        raise Invalid("the query was not raised", errors)
    q = DataQuery(
        patient_id=patient_id,
        table_name=table,
        record_id=None if table == "patients" else record_id,
        field=field or None,
        kind="manual",
        status="open",
        text=text,
        raised_by=who.username,
        raised_at=utcnow(),
    )
    db.add(q)
    _commit(db)
    return q


def answer_query(db: Session, who: Principal, query_id: int, answer: str) -> DataQuery:
    """The site's answer (after correcting the data, or explaining why it is right)."""
    _need_write(who)
    q = _query(db, who, query_id)
    if q.status == "closed":
        raise Conflict(f"query {query_id} is closed")
    answer = (answer or "").strip()
    if not answer:
        raise Invalid("the answer is empty", {"answer": "required"})
    q.status, q.answer = "answered", answer[:2000]
    q.answered_by, q.answered_at = who.username, utcnow()
    _commit(db)
    return q


def close_query(db: Session, who: Principal, query_id: int) -> DataQuery:
    if not who.can_query:
        raise Forbidden(f"role {who.role} may not close data queries")
    q = _query(db, who, query_id)
    if q.status == "closed":
        raise Conflict(f"query {query_id} is already closed")
    if q.status == "open" and q.kind == "auto":
        raise Conflict(f"query {query_id} is waiting for the site's answer or correction")
    q.status, q.closed_by, q.closed_at = "closed", who.username, utcnow()
    _commit(db)
    return q


# -- electronic signature -------------------------------------------------------------------

#: the meaning of the signature, shown beside the password field (21 CFR Part 11 §11.50(a)(3))
SIGNATURE_MEANING = (
    "I have reviewed the data of this patient and confirm, as investigator, "
    "that they are complete and accurate (review and approval)"
)


def sign_patient(db: Session, who: Principal, patient_id: str, password: str) -> Patient:
    """Sign a locked, query-free record by re-entering the password (21 CFR Part 11 §11.200
    (a)(1): two components, user name of the session and password). The signature shows
    the signer, the time and the meaning (§11.50) and is removed by an unlock (§11.70:
    linked to the record as signed)."""

    if not who.can_sign:
        raise Forbidden(f"role {who.role} may not sign records")
    patient = get_patient(db, who, patient_id)
    if not patient.locked:
        raise Conflict(f"patient {patient_id} must be locked (source data verified) first")
    if patient.signed_by:
        raise Conflict(f"patient {patient_id} is already signed by {patient.signed_by}")
    user = own_account(db, who)
    if not verify_password(user.password_hash, password or ""):
        db.rollback()
        log_event(db, "sign_failed", who.username, patient_id, "wrong password")
        db.commit()
        raise Forbidden("wrong password: the record was not signed")
    patient.signed_by, patient.signed_at = who.username, utcnow()
    patient.signature_meaning = SIGNATURE_MEANING
    _commit(db, "electronic signature")
    return patient
