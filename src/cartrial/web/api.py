"""JSON API under /api (documented by OpenAPI at /docs and /openapi.json).

Same operations and access rules as the pages (``cartrial.web.service``). Errors are
JSON ``{"detail": message, "errors": {field: message}}`` with 400/401/403/404/409/422.
Updates and deletes carry the ``version`` the client last read; a stale version gets
409 Conflict. Changes to locked records need a ``reason``.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import re
from typing import TYPE_CHECKING, Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Path, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field, create_model

from cartrial.grading.fields import BEDSIDE_FORM, pydantic_model
from cartrial.store.audit import audit_for_patient
from cartrial.store.models import Patient
from cartrial.store.users import (
    LoginRefused,
    change_password,
    create_user,
    log_event,
    log_in,
    principal,
    verify_password,
)
from cartrial.store.validation import SPECS
from cartrial.web import bedside
from cartrial.web import service as svc
from cartrial.web.deps import (
    ApiUser,
    Db,
    check_csrf,
    client_address,
    csrf_token,
    end_session,
    log,
    session_user,
    start_session,
)
from cartrial.web.pages import find_patients

router = APIRouter(prefix="/api", tags=["api"])
Table = Literal["events", "adverse_events", "observations"]


User = ApiUser
#: record ids are 32-bit on both back ends: a larger id is simply not found (422), not a 500
RecordId = Annotated[int, Path(ge=1, le=2**31 - 1)]

_TYPES: dict[str, Any] = {
    "float": float | None,
    "int": int | None,
    "bool": bool | str | None,
    "date": dt.date | None,
    "value": float | str | None,
}


def _model(
    name: str, table: str, partial: bool, extra: dict[str, Any] | None = None
) -> type[BaseModel]:
    fields: dict[str, Any] = {}
    for col, spec in SPECS[table].items():
        typ = _TYPES.get(spec.kind, str | None)
        required = spec.required and not partial
        fields[col] = (typ, ...) if required else (typ, None)
    fields.update(extra or {})
    return create_model(name, __config__=ConfigDict(extra="forbid"), **fields)


# Models built at run time are plain ``BaseModel`` to the type checker (a variable is not a
# type); FastAPI reads the real classes from the module globals.
if TYPE_CHECKING:
    PatientIn = BaseModel
    PatientPatch = BaseModel
else:
    PatientIn = _model("PatientIn", "patients", False)
    PatientPatch = _model(
        "PatientPatch", "patients", True, {"version": (int, ...), "reason": (str | None, None)}
    )
RECORD_IN = {
    t: _model(f"{t.title().replace('_', '')}In", t, False, {"reason": (str | None, None)})
    for t in svc.CHILD_MODELS
}
RECORD_PATCH = {
    t: _model(
        f"{t.title().replace('_', '')}Patch",
        t,
        True,
        {"version": (int, ...), "reason": (str | None, None)},
    )
    for t in svc.CHILD_MODELS
}


class Login(BaseModel):
    model_config = ConfigDict(extra="forbid")
    username: str = Field(min_length=1, max_length=80)
    password: str = Field(min_length=1, max_length=200)


class NewUser(BaseModel):
    model_config = ConfigDict(extra="forbid")
    username: str = Field(min_length=1, max_length=80)
    password: str = Field(min_length=1, max_length=200)
    role: Literal["admin", "data_entry", "monitor", "statistician", "investigator"]
    site: str | None = Field(default=None, max_length=40)


#: the bedside inputs, generated from the grading field registry (one declaration of each
#: field's type, range and help: cartrial.grading.fields), shared by the form and the API
if TYPE_CHECKING:
    _BedsideInputs = BaseModel
else:
    _BedsideInputs = pydantic_model("BedsideInputs", BEDSIDE_FORM)


class Assess(_BedsideInputs):
    day: float
    reason: str | None = None


class Reason(BaseModel):
    model_config = ConfigDict(extra="forbid")
    version: int
    reason: str | None = None


def _dump(model: BaseModel) -> tuple[dict[str, Any], str | None]:
    data = model.model_dump(exclude_unset=True)
    reason = data.pop("reason", None)
    return data, reason


# -- session --------------------------------------------------------------------------------


@router.post("/session", summary="Log in (sets the session cookie; returns the CSRF token)")
def login(body: Login, request: Request, db: Db) -> dict[str, Any]:
    try:
        user = log_in(db, body.username, body.password, client_address(request))
    except LoginRefused as exc:
        log.warning("API log-in throttled for %r from %s", body.username, client_address(request))
        raise HTTPException(429, str(exc)) from None
    if user is None:
        log.warning("API log-in failed for %r from %s", body.username, client_address(request))
        raise HTTPException(401, "wrong username or password")
    start_session(request, db, user)
    who = principal(user)
    return {
        "user": who.username,
        "role": who.role,
        "site": who.site,
        "csrf_token": csrf_token(request),
    }


@router.get("/session", summary="The logged-in user and the CSRF token")
def whoami(request: Request, who: User) -> dict[str, Any]:
    return {
        "user": who.username,
        "role": who.role,
        "site": who.site,
        "csrf_token": csrf_token(request),
    }


@router.delete("/session", summary="Log out")
def logout(request: Request, db: Db) -> dict[str, str]:
    who = session_user(request, db)
    if who is not None:
        check_csrf(request, request.headers.get("x-csrf-token"))
        log_event(db, "logout", who.username, client_address(request))
    end_session(request, db)
    return {"detail": "logged out"}


class NewPassword(BaseModel):
    model_config = ConfigDict(extra="forbid")
    current: str = Field(min_length=1, max_length=200)
    new: str = Field(min_length=1, max_length=200)


@router.put("/session/password", summary="Change one's own password (current one re-entered)")
def set_password(body: NewPassword, request: Request, db: Db, who: User) -> dict[str, str]:

    user = svc.own_account(db, who)
    if not verify_password(user.password_hash, body.current):
        raise svc.Invalid("the current password is wrong", {"current": "wrong password"})
    try:
        change_password(db, user, body.new)
    except ValueError as exc:
        raise svc.Invalid(str(exc), {"new": str(exc)}) from None
    db.commit()
    return {"detail": "password changed"}


def _json(data: Any, status: int) -> Response:
    return Response(json.dumps(data), status_code=status, media_type="application/json")


# -- users -----------------------------------------------------------------------------------


@router.post("/users", status_code=201, summary="Create a user (admin)")
def add_user(body: NewUser, db: Db, who: User) -> dict[str, Any]:
    if who.role != "admin":
        raise svc.Forbidden("only an admin may create users")
    try:
        user = create_user(db, body.username, body.password, body.role, body.site)
    except ValueError as exc:
        raise svc.Invalid(str(exc)) from None
    db.commit()
    return {"id": user.id, "username": user.username, "role": user.role, "site": user.site}


# -- patients ----------------------------------------------------------------------------------


@router.get("/patients", summary="Patients the user may see (paginated, searchable)")
def patients(
    request: Request,
    response: Response,
    db: Db,
    who: User,
    site: str | None = None,
    q: Annotated[str, Query(max_length=64, description="substring of study ID or site")] = "",
    page: Annotated[int, Query(ge=1, le=10**7)] = 1,
    per_page: Annotated[int, Query(ge=1, le=200)] = 50,
) -> list[dict[str, Any]]:
    """One page of the patients the user may see (a data-entry user: their site only),
    ordered by study ID. ``X-Total-Count`` gives how many matched; ``Link``
    (rel="next"/"prev") the neighbouring pages."""
    from sqlalchemy import select

    found = find_patients(db, who, q, page, per_page, site)
    ids = [r.patient_id for r in found.rows]
    by_id = (
        {p.patient_id: p for p in db.scalars(select(Patient).where(Patient.patient_id.in_(ids)))}
        if ids
        else {}
    )
    response.headers["X-Total-Count"] = str(found.total)
    links = []
    for rel, to in (("prev", found.page - 1), ("next", found.page + 1)):
        if 1 <= to <= found.pages and to != found.page:
            url = request.url.include_query_params(page=to, per_page=found.per_page)
            links.append(f'<{url}>; rel="{rel}"')
    if links:
        response.headers["Link"] = ", ".join(links)
    return [svc.as_dict(by_id[i]) for i in ids]


@router.post("/patients", status_code=201, summary="Create a patient (study ID only)")
def create_patient(body: PatientIn, db: Db, who: User) -> dict[str, Any]:
    data, _ = _dump(body)
    return svc.as_dict(svc.create_patient(db, who, data))


def patient(patient_id: str, db: Db, who: User) -> dict[str, Any]:
    p = svc.get_patient(db, who, patient_id)
    out = svc.as_dict(p)
    for table in ("events", "adverse_events", "observations", "assessments"):
        out[table] = [svc.as_dict(r) for r in getattr(p, table)]
    return out


def patch_patient(patient_id: str, body: PatientPatch, db: Db, who: User) -> dict[str, Any]:
    data, reason = _dump(body)
    version = data.pop("version", None)
    return svc.as_dict(svc.update_patient(db, who, patient_id, data, version, reason))


@router.post("/patients/{patient_id:path}/lock", summary="Lock a patient's records (SDV done)")
def lock_patient(patient_id: str, db: Db, who: User) -> dict[str, Any]:
    return {"locked_records": svc.lock_patient(db, who, patient_id)}


@router.post("/patients/{patient_id:path}/unlock", summary="Unlock (admin, reason required)")
def unlock_patient(patient_id: str, body: dict[str, str], db: Db, who: User) -> dict[str, str]:
    svc.unlock_patient(db, who, patient_id, (body or {}).get("reason"))
    return {"detail": "unlocked"}


@router.get("/patients/{patient_id:path}/audit", summary="The patient's audit trail (JSON or CSV)")
def audit(
    patient_id: str, db: Db, who: User, format: Literal["json", "csv"] = Query("json")
) -> Response:
    if not who.can_audit:
        raise svc.Forbidden(f"role {who.role} may not export the audit trail")
    svc.patient_for_audit(db, who, patient_id)  # a deleted patient's trail stays readable
    rows = audit_for_patient(db, patient_id)
    log_event(db, "export_audit", who.username, "api", f"patient {patient_id} ({format})")
    db.commit()
    if format == "json":
        return _json(rows, 200)
    buf = io.StringIO()
    cols = [
        "id",
        "at",
        "user",
        "action",
        "table",
        "record_id",
        "patient_id",
        "old_values",
        "new_values",
        "reason",
    ]
    w = csv.DictWriter(buf, fieldnames=cols, lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow(
            {
                **r,
                "old_values": json.dumps(r["old_values"]),
                "new_values": json.dumps(r["new_values"]),
            }
        )
    return Response(
        buf.getvalue(),
        media_type="text/csv",
        headers={
            "Content-Disposition": f'attachment; filename="audit_{_file_safe(patient_id)}.csv"'
        },
    )


# -- events, adverse events, observations ------------------------------------------------------


def _add_record_routes(table: str) -> None:
    """Register the routes of one record table (bodies typed per table)."""
    body_in = RECORD_IN[table]
    body_patch = RECORD_PATCH[table]

    @router.get(
        f"/patients/{{patient_id:path}}/{table}", summary=f"List {table}", name=f"list_{table}"
    )
    def list_(patient_id: str, db: Db, who: User) -> list[dict[str, Any]]:
        return [svc.as_dict(r) for r in svc.list_records(db, who, table, patient_id)]

    def create(patient_id: str, body: Any, db: Db, who: User) -> dict[str, Any]:
        data, reason = _dump(body)
        return svc.as_dict(svc.create_record(db, who, table, patient_id, data, reason))

    # postponed annotations are resolved in module globals: give the per-table model itself
    create.__annotations__["body"] = body_in
    router.post(
        f"/patients/{{patient_id:path}}/{table}",
        status_code=201,
        summary=f"Add {table}",
        name=f"create_{table}",
    )(create)

    @router.get(f"/{table}/{{record_id}}", summary=f"One {table} record", name=f"get_{table}")
    def get(record_id: RecordId, db: Db, who: User) -> dict[str, Any]:
        return svc.as_dict(svc.get_record(db, who, table, record_id))

    def patch(record_id: RecordId, body: Any, db: Db, who: User) -> dict[str, Any]:
        data, reason = _dump(body)
        version = data.pop("version", None)
        return svc.as_dict(svc.update_record(db, who, table, record_id, data, version, reason))

    patch.__annotations__["body"] = body_patch
    router.patch(
        f"/{table}/{{record_id}}",
        summary=f"Change a {table} record (needs version)",
        name=f"patch_{table}",
    )(patch)

    @router.delete(
        f"/{table}/{{record_id}}",
        summary=f"Delete a {table} record (audited)",
        name=f"delete_{table}",
    )
    def delete(record_id: RecordId, body: Reason, db: Db, who: User) -> dict[str, str]:
        svc.delete_record(db, who, table, record_id, body.version, body.reason)
        return {"detail": "deleted"}

    @router.post(
        f"/{table}/{{record_id}}/lock", summary=f"Lock a {table} record", name=f"lock_{table}"
    )
    def lock(record_id: RecordId, db: Db, who: User) -> dict[str, Any]:
        return svc.as_dict(svc.lock_record(db, who, table, record_id))


for _t in svc.CHILD_MODELS:
    _add_record_routes(_t)


# -- bedside assessments ------------------------------------------------------------------------


@router.get("/patients/{patient_id:path}/assessments", summary="Bedside assessments")
def assessments(patient_id: str, db: Db, who: User) -> list[dict[str, Any]]:
    return [svc.as_dict(r) for r in svc.list_records(db, who, "assessments", patient_id)]


@router.post(
    "/patients/{patient_id:path}/assessments",
    status_code=201,
    summary="Grade CRS and ICANS (ASTCT 2019, reference only) and save",
)
def assess(patient_id: str, body: Assess, db: Db, who: User) -> dict[str, Any]:
    data, reason = _dump(body)
    out = svc.as_dict(svc.create_assessment(db, who, patient_id, data, reason))
    out["iechs"] = bedside.iechs_result(out.get("inputs"))
    out["note"] = "decision support, reference only: check against the ASTCT 2019 criteria"
    return out


class AssessPatch(_BedsideInputs):
    """Changed bedside inputs (null = now missing), the version last read and a reason."""

    version: int
    reason: str | None = None
    day: float | None = None


@router.get("/assessments/{record_id}", summary="One bedside assessment")
def get_assessment(record_id: RecordId, db: Db, who: User) -> dict[str, Any]:
    return svc.as_dict(svc.get_record(db, who, "assessments", record_id))


@router.patch(
    "/assessments/{record_id}",
    summary="Change a bedside assessment (needs version and reason; graded again)",
)
def patch_assessment(record_id: RecordId, body: AssessPatch, db: Db, who: User) -> dict[str, Any]:
    data, reason = _dump(body)
    version = data.pop("version", None)
    rec = svc.update_assessment(db, who, record_id, data, version, reason)
    out = svc.as_dict(rec)
    out["iechs"] = bedside.iechs_result(out.get("inputs"))
    out["note"] = "decision support, reference only: check against the ASTCT 2019 criteria"
    return out


@router.delete("/assessments/{record_id}", summary="Delete a bedside assessment (audited)")
def delete_assessment(record_id: RecordId, body: Reason, db: Db, who: User) -> dict[str, str]:
    svc.delete_record(db, who, "assessments", record_id, body.version, body.reason)
    return {"detail": "deleted"}


@router.delete(
    "/patients/{patient_id:path}",
    summary="Delete a patient and all their records (needs version and reason)",
)
def delete_patient(patient_id: str, body: Reason, db: Db, who: User) -> dict[str, Any]:
    counts = svc.delete_patient(db, who, patient_id, body.version, body.reason)
    return {"detail": "deleted", "deleted": counts}


def _file_safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]", "_", name)[:64]


# -- data queries and signatures ------------------------------------------------------------------


class NewQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")
    table: Literal["patients", "events", "adverse_events", "observations", "assessments"]
    record_id: int | None = Field(default=None, ge=1, le=2**31 - 1)
    field: str | None = Field(default=None, max_length=40)
    text: str = Field(min_length=1, max_length=2000)


class Answer(BaseModel):
    model_config = ConfigDict(extra="forbid")
    answer: str = Field(min_length=1, max_length=2000)


class Signature(BaseModel):
    model_config = ConfigDict(extra="forbid")
    password: str = Field(min_length=1, max_length=200)


def _query_dict(q: Any) -> dict[str, Any]:
    return svc.as_dict(q)


@router.get(
    "/queries", summary="Data queries the user may see (status: pending, open, answered, closed)"
)
def queries(
    db: Db, who: User, status: Literal["pending", "open", "answered", "closed"] | None = None
) -> list[dict[str, Any]]:
    return [_query_dict(q) for q in svc.list_queries(db, who, None, status)]


@router.post("/queries/{query_id}/answer", summary="Answer a query (the site)")
def answer_query(query_id: RecordId, body: Answer, db: Db, who: User) -> dict[str, Any]:
    return _query_dict(svc.answer_query(db, who, query_id, body.answer))


@router.post("/queries/{query_id}/close", summary="Close a query (monitor)")
def close_query(query_id: RecordId, db: Db, who: User) -> dict[str, Any]:
    return _query_dict(svc.close_query(db, who, query_id))


@router.post(
    "/patients/{patient_id:path}/queries",
    status_code=201,
    summary="Raise a query on a field (monitor)",
)
def raise_query(patient_id: str, body: NewQuery, db: Db, who: User) -> dict[str, Any]:
    return _query_dict(
        svc.raise_query(db, who, patient_id, body.table, body.record_id, body.field, body.text)
    )


@router.post(
    "/patients/{patient_id:path}/sign",
    summary="Sign a locked record (investigator; password re-entered; 21 CFR 11.200)",
)
def sign_patient(patient_id: str, body: Signature, db: Db, who: User) -> dict[str, Any]:
    p = svc.sign_patient(db, who, patient_id, body.password)
    return {
        "patient_id": p.patient_id,
        "signed_by": p.signed_by,
        "signed_at": svc.as_dict(p)["signed_at"],
        "meaning": p.signature_meaning,
    }


# last: the bare patient path would otherwise match ".../events" etc. (IDs may contain "/")
router.get("/patients/{patient_id:path}", summary="A patient with all records")(patient)
router.patch("/patients/{patient_id:path}", summary="Change a patient (needs version)")(
    patch_patient
)
