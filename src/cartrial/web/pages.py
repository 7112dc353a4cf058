"""Server-rendered pages: login, patient list by site, patient page (timeline, kinetics,
record forms), bedside grading form, cohort report. Every POST form carries the
session's CSRF token; validation messages are shown beside the fields."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from cartrial.store.users import Principal, authenticate, principal
from cartrial.web import service as svc
from cartrial.web.app import (
    check_csrf,
    get_db,
    login_redirect,
    page_context,
    session_user,
    state_of,
    templates,
)
from cartrial.web.svg import curves_svg, timeline_svg

router = APIRouter(include_in_schema=False)
RECORD_FORMS = {
    "events": ("day", "event", "response", "mrd", "mrd_value", "cd7_status", "site", "cause"),
    "adverse_events": ("term", "onset_day", "resolution_day", "grade", "system", "serious",
                       "organ"),
    "observations": ("day", "analyte", "value", "unit", "lloq"),
}
CART_ANALYTES = ("cart_flow", "cart_qpcr")
TNK_ANALYTES = ("cd3", "cd7_t", "cd7neg_t", "nk", "cd7_nk", "cd7neg_nk")


Db = Annotated[Any, Depends(get_db)]


def _user(request: Request, db: Any) -> Principal | None:
    who = session_user(request, db)
    if who is not None:
        db.info["user"] = who.username
    return who


async def _form(request: Request) -> dict[str, str]:
    form = await request.form()
    return {k: str(v) for k, v in form.items()}


def _clean(form: dict[str, str], keys: tuple[str, ...]) -> dict[str, str]:
    return {k: form[k] for k in keys if k in form}


@router.get("/", response_class=HTMLResponse)
def home() -> Response:
    return RedirectResponse("/patients", status_code=303)


@router.get("/login", response_class=HTMLResponse)
def login_page(request: Request, db: Db) -> Response:
    return templates.TemplateResponse(request, "login.html", page_context(request, None))


@router.post("/login", response_class=HTMLResponse)
async def login(request: Request, db: Db) -> Response:
    form = await _form(request)
    check_csrf(request, form.get("csrf_token"))
    user = authenticate(db, form.get("username", ""), form.get("password", ""))
    if user is None:
        ctx = page_context(request, None, error="Wrong username or password.",
                           username=form.get("username", ""))
        return templates.TemplateResponse(request, "login.html", ctx, status_code=401)
    request.session.clear()
    request.session["uid"] = user.id
    return RedirectResponse("/patients", status_code=303)


@router.post("/logout")
async def logout(request: Request) -> Response:
    form = await _form(request)
    check_csrf(request, form.get("csrf_token"))
    request.session.clear()
    return login_redirect()


@router.get("/patients", response_class=HTMLResponse)
def patient_list(request: Request, db: Db, site: str | None = None) -> Response:
    who = _user(request, db)
    if who is None:
        return login_redirect()
    return _patient_list(request, db, who, site)


def _patient_list(request, db, who, site=None, errors=None, form=None, status=200) -> Response:
    rows = svc.list_patients(db, who, site)
    by_site: dict[str, list[Any]] = {}
    for p in rows:
        by_site.setdefault(p.site or "(no site)", []).append(p)
    from cartrial.store.models import Site

    sites = [s.code for s in db.query(Site).order_by(Site.code)] if who.all_sites else [who.site]
    ctx = page_context(request, who, by_site=by_site, sites=sites, errors=errors or {},
                       form=form or {}, site=site)
    return templates.TemplateResponse(request, "patients.html", ctx, status_code=status)


@router.post("/patients", response_class=HTMLResponse)
async def create_patient(request: Request, db: Db) -> Response:
    who = _user(request, db)
    if who is None:
        return login_redirect()
    form = await _form(request)
    check_csrf(request, form.get("csrf_token"))
    data = {k: v for k, v in form.items() if k != "csrf_token"}
    try:
        p = svc.create_patient(db, who, data)
    except svc.ServiceError as exc:
        db.rollback()
        return _patient_list(request, db, who, None, {"_form": exc.message, **exc.errors}, data,
                             exc.status)
    return RedirectResponse(f"/patients/{p.patient_id}", status_code=303)


def _patient_page(request, db, who, patient_id, errors=None, form=None, which=None,
                  status=200) -> Response:
    p = svc.get_patient(db, who, patient_id)
    events, aes, obs = p.events, p.adverse_events, p.observations

    def series(names: tuple[str, ...]) -> dict[str, list[tuple[float, float]]]:
        out: dict[str, list[tuple[float, float]]] = {}
        for o in obs:
            if o.analyte in names and o.value is not None and o.day is not None:
                out.setdefault(o.analyte, []).append((o.day, o.value))
        return out

    cart = series(CART_ANALYTES)
    ctx = page_context(
        request, who, patient=p, events=events, aes=aes, observations=obs,
        assessments=p.assessments,
        timeline=timeline_svg(events, aes),
        cart_svg=curves_svg(cart, "CAR-T expansion",
                            "cells/µL or copies/µg" if len(cart) > 1 else
                            ("copies/µg" if "cart_qpcr" in cart else "cells/µL")),
        tnk_svg=curves_svg(series(TNK_ANALYTES), "T and NK cells", "cells/µL"),
        errors=errors or {}, form=form or {}, which=which, fields=RECORD_FORMS,
    )
    return templates.TemplateResponse(request, "patient.html", ctx, status_code=status)


@router.get("/patients/{patient_id}", response_class=HTMLResponse)
def patient_page(patient_id: str, request: Request, db: Db) -> Response:
    who = _user(request, db)
    if who is None:
        return login_redirect()
    try:
        return _patient_page(request, db, who, patient_id)
    except svc.NotFound as exc:
        return _error(request, who, exc)


def _error(request: Request, who: Principal | None, exc: svc.ServiceError) -> Response:
    ctx = page_context(request, who, message=exc.message)
    return templates.TemplateResponse(request, "error.html", ctx, status_code=exc.status)


@router.post("/patients/{patient_id}/lock", response_class=HTMLResponse)
async def lock(patient_id: str, request: Request, db: Db) -> Response:
    return await add_record(patient_id, "lock", request, db)


@router.post("/patients/{patient_id}/records/{table}", response_class=HTMLResponse)
async def add_record(patient_id: str, table: str, request: Request, db: Db) -> Response:
    who = _user(request, db)
    if who is None:
        return login_redirect()
    form = await _form(request)
    check_csrf(request, form.get("csrf_token"))
    try:
        if table == "lock":
            svc.lock_patient(db, who, patient_id)
        elif table in RECORD_FORMS:
            data = {k: v for k, v in _clean(form, RECORD_FORMS[table]).items() if v != ""}
            svc.create_record(db, who, table, patient_id, data, form.get("reason") or None)
        else:
            raise svc.NotFound(f"unknown form {table!r}")
    except (svc.NotFound, svc.Forbidden) as exc:
        return _error(request, who, exc)
    except svc.ServiceError as exc:
        db.rollback()
        return _patient_page(request, db, who, patient_id,
                             {"_form": exc.message, **exc.errors}, form, table, exc.status)
    return RedirectResponse(f"/patients/{patient_id}", status_code=303)


@router.get("/patients/{patient_id}/assess", response_class=HTMLResponse)
def assess_page(patient_id: str, request: Request, db: Db) -> Response:
    who = _user(request, db)
    if who is None:
        return login_redirect()
    try:
        p = svc.get_patient(db, who, patient_id)
    except svc.NotFound as exc:
        return _error(request, who, exc)
    return _assess(request, who, p)


def _assess(request, who, p, errors=None, form=None, result=None, status=200) -> Response:
    ctx = page_context(request, who, patient=p, errors=errors or {}, form=form or {},
                       result=result, oxygen=svc.OXYGEN, consciousness=svc.CONSCIOUSNESS,
                       seizure=svc.SEIZURE, edema=svc.EDEMA, ice_items=svc.ICE_ITEMS)
    return templates.TemplateResponse(request, "assess.html", ctx, status_code=status)


@router.post("/patients/{patient_id}/assess", response_class=HTMLResponse)
async def assess(patient_id: str, request: Request, db: Db) -> Response:
    who = _user(request, db)
    if who is None:
        return login_redirect()
    form = await _form(request)
    check_csrf(request, form.get("csrf_token"))
    try:
        p = svc.get_patient(db, who, patient_id)
        data = {k: v for k, v in form.items() if k not in ("csrf_token", "reason")}
        rec = svc.create_assessment(db, who, patient_id, data, form.get("reason") or None)
    except (svc.NotFound, svc.Forbidden) as exc:
        return _error(request, who, exc)
    except svc.ServiceError as exc:
        db.rollback()
        return _assess(request, who, p, {"_form": exc.message, **exc.errors}, form, None,
                       exc.status)
    return _assess(request, who, p, None, {}, rec, 200)


@router.get("/report", response_class=HTMLResponse)
def report(request: Request, db: Db) -> Response:
    """The cohort report (``cartrial.report.build_report``) built from the database."""
    who = _user(request, db)
    if who is None:
        return login_redirect()
    if not who.can_report:
        return _error(request, who, svc.Forbidden(f"role {who.role} may not build the report"))
    try:
        from cartrial.report import build_report, write_report
    except ImportError as exc:
        return _error(request, who, svc.ServiceError(
            f"the report layer (cartrial.report) is not available: {exc}"))
    from cartrial.cohort import CohortError
    from cartrial.store.cohort_io import read_cohort

    try:
        cohort = read_cohort(state_of(request).engine)
    except CohortError as exc:
        return _error(request, who, svc.ServiceError(
            "the database does not form a valid cohort: " + "; ".join(map(str, exc.problems[:20]))))
    if cohort.n_patients == 0:
        return _error(request, who, svc.ServiceError("no patients in the database yet"))
    report_obj = None
    try:
        with tempfile.TemporaryDirectory() as tmp:
            report_obj = build_report(cohort)
            out = Path(write_report(report_obj, Path(tmp) / "report"))
            index = out / "index.html" if out.is_dir() else out
            html = index.read_text(encoding="utf-8")
    except (ValueError, OSError) as exc:  # the report layer's own clear errors
        return _error(request, who, svc.ServiceError(f"the report could not be built: {exc}"))
    finally:
        if report_obj is not None:
            try:
                from cartrial.report.build import close_figures

                close_figures(report_obj)
            except ImportError:  # pragma: no cover
                pass
    return HTMLResponse(html)


@router.get("/whoami", response_class=HTMLResponse)
def whoami(request: Request, db: Db) -> Response:
    who = _user(request, db)
    return HTMLResponse("anonymous" if who is None else f"{who.username} ({who.role})")


__all__ = ["router", "principal"]
