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
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field, create_model

from cartrial.store.audit import audit_for_patient
from cartrial.store.users import Principal, authenticate, create_user, principal
from cartrial.store.validation import SPECS
from cartrial.web import service as svc
from cartrial.web.app import api_user, check_csrf, csrf_token, get_db, session_user

router = APIRouter(prefix="/api", tags=["api"])
Table = Literal["events", "adverse_events", "observations"]


def get_user(request: Request, db: Annotated[Any, Depends(get_db)]) -> Principal:
    who = api_user(request, db)
    db.info["user"] = who.username
    return who


Db = Annotated[Any, Depends(get_db)]
User = Annotated[Principal, Depends(get_user)]

_TYPES: dict[str, Any] = {
    "float": float | None, "int": int | None, "bool": bool | str | None, "date": dt.date | None,
    "value": float | str | None,
}


def _model(name: str, table: str, partial: bool, extra: dict[str, Any] | None = None):
    fields: dict[str, Any] = {}
    for col, spec in SPECS[table].items():
        typ = _TYPES.get(spec.kind, str | None)
        required = spec.required and not partial
        fields[col] = (typ, ...) if required else (typ, None)
    fields.update(extra or {})
    return create_model(name, __config__=ConfigDict(extra="forbid"), **fields)


PatientIn = _model("PatientIn", "patients", False)
PatientPatch = _model("PatientPatch", "patients", True,
                      {"version": (int, ...), "reason": (str | None, None)})
RECORD_IN = {t: _model(f"{t.title().replace('_', '')}In", t, False,
                       {"reason": (str | None, None)}) for t in svc.CHILD_MODELS}
RECORD_PATCH = {t: _model(f"{t.title().replace('_', '')}Patch", t, True,
                          {"version": (int, ...), "reason": (str | None, None)})
                for t in svc.CHILD_MODELS}


class Login(BaseModel):
    model_config = ConfigDict(extra="forbid")
    username: str = Field(min_length=1, max_length=80)
    password: str = Field(min_length=1, max_length=200)


class NewUser(BaseModel):
    model_config = ConfigDict(extra="forbid")
    username: str = Field(min_length=1, max_length=80)
    password: str = Field(min_length=8, max_length=200)
    role: Literal["admin", "data_entry", "monitor", "statistician"]
    site: str | None = Field(default=None, max_length=40)


class Assess(BaseModel):
    model_config = ConfigDict(extra="forbid")
    day: float
    temperature_c: float | None = None
    hypotension: bool | None = None
    vasopressors: int | None = None
    vasopressin: bool | None = None
    oxygen: str | None = None
    o2_flow_l_min: float | None = None
    ice_score: int | None = None
    consciousness: str | None = None
    seizure: str | None = None
    motor_weakness: bool | None = None
    cerebral_edema: str | None = None
    age_years: float | None = None
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
    user = authenticate(db, body.username, body.password)
    if user is None:
        raise HTTPException(401, "wrong username or password")
    request.session.clear()
    request.session["uid"] = user.id
    who = principal(user)
    return {"user": who.username, "role": who.role, "site": who.site,
            "csrf_token": csrf_token(request)}


@router.get("/session", summary="The logged-in user and the CSRF token")
def whoami(request: Request, who: User) -> dict[str, Any]:
    return {"user": who.username, "role": who.role, "site": who.site,
            "csrf_token": csrf_token(request)}


@router.delete("/session", summary="Log out")
def logout(request: Request, db: Db) -> dict[str, str]:
    if session_user(request, db) is not None:
        check_csrf(request, request.headers.get("x-csrf-token"))
    request.session.clear()
    return {"detail": "logged out"}


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


@router.get("/patients", summary="Patients the user may see")
def patients(db: Db, who: User, site: str | None = None) -> list[dict[str, Any]]:
    return [svc.as_dict(p) for p in svc.list_patients(db, who, site)]


@router.post("/patients", status_code=201, summary="Create a patient (study ID only)")
def create_patient(body: PatientIn, db: Db, who: User) -> dict[str, Any]:  # type: ignore[valid-type]
    data, _ = _dump(body)
    return svc.as_dict(svc.create_patient(db, who, data))


@router.get("/patients/{patient_id}", summary="A patient with all records")
def patient(patient_id: str, db: Db, who: User) -> dict[str, Any]:
    p = svc.get_patient(db, who, patient_id)
    out = svc.as_dict(p)
    for table in ("events", "adverse_events", "observations", "assessments"):
        out[table] = [svc.as_dict(r) for r in getattr(p, table)]
    return out


@router.patch("/patients/{patient_id}", summary="Change a patient (needs version)")
def patch_patient(patient_id: str, body: PatientPatch, db: Db, who: User) -> dict[str, Any]:  # type: ignore[valid-type]
    data, reason = _dump(body)
    version = data.pop("version", None)
    return svc.as_dict(svc.update_patient(db, who, patient_id, data, version, reason))


@router.post("/patients/{patient_id}/lock", summary="Lock a patient's records (SDV done)")
def lock_patient(patient_id: str, db: Db, who: User) -> dict[str, Any]:
    return {"locked_records": svc.lock_patient(db, who, patient_id)}


@router.post("/patients/{patient_id}/unlock", summary="Unlock (admin, reason required)")
def unlock_patient(patient_id: str, body: dict[str, str], db: Db, who: User) -> dict[str, str]:
    svc.unlock_patient(db, who, patient_id, (body or {}).get("reason"))
    return {"detail": "unlocked"}


@router.get("/patients/{patient_id}/audit", summary="The patient's audit trail (JSON or CSV)")
def audit(
    patient_id: str, db: Db, who: User, format: Literal["json", "csv"] = Query("json")
) -> Response:
    if not who.can_audit:
        raise svc.Forbidden(f"role {who.role} may not export the audit trail")
    svc.get_patient(db, who, patient_id)
    rows = audit_for_patient(db, patient_id)
    if format == "json":
        return _json(rows, 200)
    buf = io.StringIO()
    cols = ["id", "at", "user", "action", "table", "record_id", "patient_id", "old_values",
            "new_values", "reason"]
    w = csv.DictWriter(buf, fieldnames=cols, lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow({**r, "old_values": json.dumps(r["old_values"]),
                    "new_values": json.dumps(r["new_values"])})
    return Response(buf.getvalue(), media_type="text/csv", headers={
        "Content-Disposition": f'attachment; filename="audit_{patient_id}.csv"'})


# -- events, adverse events, observations ------------------------------------------------------


def _add_record_routes(table: str) -> None:
    """Register the routes of one record table (bodies typed per table)."""
    body_in = RECORD_IN[table]
    body_patch = RECORD_PATCH[table]

    @router.get(f"/patients/{{patient_id}}/{table}", summary=f"List {table}",
                name=f"list_{table}")
    def list_(patient_id: str, db: Db, who: User) -> list[dict[str, Any]]:
        return [svc.as_dict(r) for r in svc.list_records(db, who, table, patient_id)]

    def create(patient_id: str, body: Any, db: Db, who: User) -> dict[str, Any]:
        data, reason = _dump(body)
        return svc.as_dict(svc.create_record(db, who, table, patient_id, data, reason))

    # postponed annotations are resolved in module globals: give the per-table model itself
    create.__annotations__["body"] = body_in
    router.post(f"/patients/{{patient_id}}/{table}", status_code=201, summary=f"Add {table}",
                name=f"create_{table}")(create)

    @router.get(f"/{table}/{{record_id}}", summary=f"One {table} record", name=f"get_{table}")
    def get(record_id: int, db: Db, who: User) -> dict[str, Any]:
        return svc.as_dict(svc.get_record(db, who, table, record_id))

    def patch(record_id: int, body: Any, db: Db, who: User) -> dict[str, Any]:
        data, reason = _dump(body)
        version = data.pop("version", None)
        return svc.as_dict(svc.update_record(db, who, table, record_id, data, version, reason))

    patch.__annotations__["body"] = body_patch
    router.patch(f"/{table}/{{record_id}}", summary=f"Change a {table} record (needs version)",
                 name=f"patch_{table}")(patch)

    @router.delete(f"/{table}/{{record_id}}", summary=f"Delete a {table} record (audited)",
                   name=f"delete_{table}")
    def delete(record_id: int, body: Reason, db: Db, who: User) -> dict[str, str]:
        svc.delete_record(db, who, table, record_id, body.version, body.reason)
        return {"detail": "deleted"}

    @router.post(f"/{table}/{{record_id}}/lock", summary=f"Lock a {table} record",
                 name=f"lock_{table}")
    def lock(record_id: int, db: Db, who: User) -> dict[str, Any]:
        return svc.as_dict(svc.lock_record(db, who, table, record_id))


for _t in svc.CHILD_MODELS:
    _add_record_routes(_t)


# -- bedside assessments ------------------------------------------------------------------------


@router.get("/patients/{patient_id}/assessments", summary="Bedside assessments")
def assessments(patient_id: str, db: Db, who: User) -> list[dict[str, Any]]:
    return [svc.as_dict(r) for r in svc.list_records(db, who, "assessments", patient_id)]


@router.post("/patients/{patient_id}/assessments", status_code=201,
             summary="Grade CRS and ICANS (ASTCT 2019, reference only) and save")
def assess(patient_id: str, body: Assess, db: Db, who: User) -> dict[str, Any]:
    data, reason = _dump(body)
    out = svc.as_dict(svc.create_assessment(db, who, patient_id, data, reason))
    out["note"] = "decision support, reference only: check against the ASTCT 2019 criteria"
    return out
