"""Server-rendered pages: login, patient list by site, patient page (timeline, kinetics,
record forms), bedside grading form, cohort report. Every POST form carries the
session's CSRF token; validation messages are shown beside the fields."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from cartrial.cohort import CohortError
from cartrial.cohort.labels import BASELINE_ORDER
from cartrial.design.escalation import BOIN, CRM, ThreePlusThree, crm_skeleton
from cartrial.design.monitor import dsmb_summary, next_dose_recommendation
from cartrial.grading.fields import FormField as InputField
from cartrial.store.audit import audit_for_patient
from cartrial.store.chain import verify
from cartrial.store.cohort_io import read_cohort
from cartrial.store.database import KeyMissing
from cartrial.store.models import ROLES, AuditEntry, Patient, Site, User, WebSession
from cartrial.store.users import (
    LoginRefused,
    Principal,
    create_user,
    ensure_site,
    generate_password,
    hash_password,
    log_event,
    log_in,
    principal,
    verify_password,
)
from cartrial.store.users import change_password as change
from cartrial.store.validation import site_problem
from cartrial.web import bedside, forms
from cartrial.web import service as svc
from cartrial.web.deps import (
    Db,
    PageUser,
    api_user,
    check_csrf,
    client_address,
    csrf_token,
    end_session,
    log,
    login_redirect,
    page_context,
    session_user,
    start_session,
    state_of,
    templates,
)
from cartrial.web.pagecache import CSRF_MARKER, patient_version
from cartrial.web.reports import safe_path
from cartrial.web.svg import curves_svg, timeline_svg

router = APIRouter(include_in_schema=False)
RECORD_FORMS = {
    "events": ("day", "event", "response", "mrd", "mrd_value", "cd7_status", "site", "cause"),
    "adverse_events": (
        "term",
        "onset_day",
        "resolution_day",
        "grade",
        "system",
        "serious",
        "organ",
    ),
    "observations": ("day", "analyte", "value", "unit", "lloq"),
}
CART_ANALYTES = ("cart_flow", "cart_qpcr")
TNK_ANALYTES = ("cd3", "cd7_t", "cd7neg_t", "nk", "cd7_nk", "cd7neg_nk")


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
    username = form.get("username", "")[:80]
    try:
        user = log_in(db, username, form.get("password", "")[:200], client_address(request))
    except LoginRefused as exc:
        log.warning("log-in throttled for %r from %s", username, client_address(request))
        ctx = page_context(request, None, error=str(exc), username=username)
        return templates.TemplateResponse(request, "login.html", ctx, status_code=429)
    if user is None:
        log.warning("log-in failed for %r from %s", username, client_address(request))
        ctx = page_context(request, None, error="Wrong username or password.", username=username)
        return templates.TemplateResponse(request, "login.html", ctx, status_code=401)
    start_session(request, db, user)
    if user.must_change_password:
        return RedirectResponse("/account/password", status_code=303)
    return RedirectResponse("/patients", status_code=303)


@router.post("/logout")
async def logout(request: Request, db: Db) -> Response:
    form = await _form(request)
    check_csrf(request, form.get("csrf_token"))
    who = session_user(request, db)
    if who is not None:
        log_event(db, "logout", who.username, client_address(request))
    end_session(request, db)
    return login_redirect()


@router.get("/account/password", response_class=HTMLResponse)
def password_page(request: Request, db: Db, who: PageUser) -> Response:
    return templates.TemplateResponse(
        request, "password.html", page_context(request, who, errors={})
    )


@router.post("/account/password", response_class=HTMLResponse)
async def change_password(request: Request, db: Db, who: PageUser) -> Response:
    """Change one's own password (the current one re-entered)."""

    form = await _form(request)
    check_csrf(request, form.get("csrf_token"))
    user = svc.own_account(db, who)
    errors: dict[str, str] = {}
    if not verify_password(user.password_hash, form.get("current", "")[:200]):
        errors["current"] = "the current password is wrong"
    elif form.get("new", "") != form.get("confirm", ""):
        errors["confirm"] = "the two new passwords differ"
    else:
        try:
            change(db, user, form.get("new", ""))
            db.commit()
        except ValueError as exc:
            db.rollback()
            errors["new"] = str(exc)
    if errors:
        ctx = page_context(request, who, errors=errors)
        return templates.TemplateResponse(request, "password.html", ctx, status_code=422)
    start_session(request, db, user)  # a new session after a credential change
    return RedirectResponse("/patients", status_code=303)


#: patients per page of the list (default) and at most (pages and ``GET /api/patients``)
PER_PAGE = 50
MAX_PER_PAGE = 200
#: the columns the list shows: read as plain rows, never whole ORM objects
LIST_COLUMNS = (
    "patient_id",
    "site",
    "diagnosis",
    "age_years",
    "product_source",
    "infusion_date",
    "locked",
)


@dataclass(frozen=True)
class PatientPage:
    """One page of the patient list: its rows, the total that matched and where it is."""

    rows: list[Any]
    total: int
    page: int
    per_page: int

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.per_page))


def _like(q: str) -> str:
    """A LIKE pattern matching ``q`` anywhere (``%``, ``_`` and ``\\`` taken literally)."""
    q = q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{q}%"


def find_patients(
    db: Any,
    who: Principal,
    q: str = "",
    page: int = 1,
    per_page: int = PER_PAGE,
    site: str | None = None,
) -> PatientPage:
    """The patients ``who`` may see (their own site only unless their role sees all),
    optionally of one ``site`` and matching ``q`` (case-insensitive substring of the study
    ID or the site code), one page at a time in a stable order: by study ID (unique, and
    indexed, so a deep page is an index walk, not a sort of the registry). Counting,
    filtering and paging are done by the database (LIMIT/OFFSET); a page past the end
    gives the last page."""
    from sqlalchemy import func, or_, select

    per_page = min(max(int(per_page), 1), MAX_PER_PAGE)
    where = []
    if not who.all_sites:
        where.append(Patient.site == who.site)
    if site:
        where.append(Patient.site == site)
    q = (q or "").strip()[:64]
    if q:
        # SQLite's LIKE ignores ASCII case by itself; PostgreSQL needs ILIKE
        like = "like" if db.get_bind().dialect.name == "sqlite" else "ilike"
        pattern = _like(q)
        where.append(
            or_(
                getattr(Patient.patient_id, like)(pattern, escape="\\"),
                getattr(Patient.site, like)(pattern, escape="\\"),
            )
        )
    cols = [getattr(Patient, c) for c in LIST_COLUMNS]

    def fetch(at: int, counted: bool) -> list[Any]:
        extra = [func.count().over().label("matched")] if counted else []
        return db.execute(
            select(*cols, *extra)
            .where(*where)
            .order_by(Patient.patient_id)
            .limit(per_page)
            .offset((at - 1) * per_page)
        ).all()

    page = max(int(page), 1)
    if q:  # a search scans the table: count the matches in the same scan (window)
        rows = fetch(page, True)
        if rows or page == 1:
            return PatientPage(rows, rows[0].matched if rows else 0, page, per_page)
    total = db.scalar(select(func.count()).select_from(Patient).where(*where)) or 0
    page = min(page, max(1, -(-total // per_page)))
    return PatientPage(fetch(page, False), total, page, per_page)


def _int_param(value: str | None, default: int) -> int:
    try:
        return int(value) if value not in (None, "") else default
    except ValueError:
        return default


@router.get("/patients", response_class=HTMLResponse)
def patient_list(
    request: Request,
    db: Db,
    who: PageUser,
    site: str | None = None,
    q: str = "",
    page: str | None = None,
    per_page: str | None = None,
) -> Response:
    return _patient_list(
        request,
        db,
        who,
        site,
        q=q,
        page=_int_param(page, 1),
        per_page=_int_param(per_page, PER_PAGE),
    )


def _patient_list(
    request, db, who, site=None, errors=None, form=None, status=200, q="", page=1, per_page=PER_PAGE
) -> Response:
    found = find_patients(db, who, q, page, per_page, site)
    groups: dict[str, list[Any]] = {}
    for p in found.rows:  # the page's rows shown by site, in study-ID order within a site
        groups.setdefault(p.site or "(no site)", []).append(p)
    by_site = dict(sorted(groups.items(), key=lambda kv: (kv[0] == "(no site)", kv[0])))

    all_sites = list(db.query(Site).order_by(Site.code))
    names = {s.code: s.name for s in all_sites if s.name and s.name != s.code}
    sites = [s.code for s in all_sites] if who.all_sites else [who.site]

    def link(to_page: int) -> str:
        params = {"q": q, "site": site or "", "page": to_page, "per_page": found.per_page}
        return "/patients?" + urlencode({k: v for k, v in params.items() if v != ""})

    ctx = page_context(
        request,
        who,
        by_site=by_site,
        sites=sites,
        errors=errors or {},
        form=form or {},
        site=site,
        site_names=names,
        q=q,
        found=found,
        prev_link=link(found.page - 1) if found.page > 1 else None,
        next_link=link(found.page + 1) if found.page < found.pages else None,
        fields={f.name: f for f in forms.fields("patients")},
    )
    return templates.TemplateResponse(request, "patients.html", ctx, status_code=status)


@router.post("/patients", response_class=HTMLResponse)
async def create_patient(request: Request, db: Db, who: PageUser) -> Response:
    form = await _form(request)
    check_csrf(request, form.get("csrf_token"))
    data = {k: v for k, v in form.items() if k != "csrf_token"}
    try:
        p = svc.create_patient(db, who, data)
    except svc.ServiceError as exc:
        db.rollback()
        return _patient_list(
            request, db, who, None, {"_form": exc.message, **exc.errors}, data, exc.status
        )
    return RedirectResponse(f"/patients/{quote(p.patient_id, safe='/')}", status_code=303)


def _patient_page(
    request, db, who, patient_id, errors=None, form=None, which=None, status=200, **extra: Any
) -> Response:
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
        request,
        who,
        patient=p,
        events=events,
        aes=aes,
        observations=obs,
        assessments=p.assessments,
        timeline=timeline_svg(events, aes),
        cart_svg=curves_svg(
            cart,
            "CAR-T expansion",
            "cells/µL or copies/µg"
            if len(cart) > 1
            else ("copies/µg" if "cart_qpcr" in cart else "cells/µL"),
        ),
        tnk_svg=curves_svg(series(TNK_ANALYTES), "T and NK cells", "cells/µL"),
        errors=errors or {},
        form=form or {},
        which=which,
        forms={t: forms.fields(t, cols) for t, cols in RECORD_FORMS.items()},
        queries=svc.list_queries(db, who, patient_id),
        signature_meaning=svc.SIGNATURE_MEANING,
        units=forms.analyte_units(),
        risk=bedside.risk_scores(obs),
        **extra,
    )
    return templates.TemplateResponse(request, "patient.html", ctx, status_code=status)


def patient_page(patient_id: str, request: Request, db: Db, who: PageUser) -> Response:
    """The patient page, served from the page cache while the patient's data version (and
    the user) are those it was rendered for (``cartrial.web.pagecache``)."""
    cache = state_of(request).pages
    key = ("patient", patient_id, patient_version(db, patient_id), who)
    csrf = csrf_token(request)
    html = cache.get(key, csrf)
    if html is None:
        body = bytes(_patient_page(request, db, who, patient_id, csrf=CSRF_MARKER).body)
        cache.put(key, body.decode())
        html = body.decode().replace(CSRF_MARKER, csrf)
    return HTMLResponse(html)


@router.post("/patients/{patient_id:path}/lock", response_class=HTMLResponse)
async def lock(patient_id: str, request: Request, db: Db, who: PageUser) -> Response:
    return await add_record(patient_id, "lock", request, db, who)


@router.post("/patients/{patient_id:path}/records/{table}", response_class=HTMLResponse)
async def add_record(
    patient_id: str, table: str, request: Request, db: Db, who: PageUser
) -> Response:
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
    except svc.Refused:
        raise  # an error page (cartrial.web.app), not a message beside the form
    except svc.ServiceError as exc:
        db.rollback()
        return _patient_page(
            request,
            db,
            who,
            patient_id,
            {"_form": exc.message, **exc.errors},
            form,
            table,
            exc.status,
        )
    return RedirectResponse(f"/patients/{quote(patient_id, safe='/')}", status_code=303)


@router.get("/patients/{patient_id:path}/assess", response_class=HTMLResponse)
def assess_page(
    patient_id: str, request: Request, db: Db, who: PageUser, saved: int | None = None
) -> Response:
    p = svc.get_patient(db, who, patient_id)
    result = None
    if saved is not None and 0 < saved < 2**31:
        result = svc.get_record(db, who, "assessments", saved)
        if result.patient_id != p.patient_id:
            raise svc.NotFound(f"assessment {saved} not found")
    return _assess(request, who, p, result=result)


def _assess(request, who, p, errors=None, form=None, result=None, status=200) -> Response:
    ctx = page_context(
        request,
        who,
        patient=p,
        errors=errors or {},
        form=form or {},
        result=result,
        ice_items=bedside.ICE_ITEMS,
        bedside_crs=bedside.BEDSIDE_CRS_FIELDS,
        bedside_icans=bedside.BEDSIDE_ICANS_FIELDS,
        bedside_iechs=bedside.BEDSIDE_IECHS_FIELDS,
        iechs=bedside.iechs_result(result.inputs) if result else None,
    )
    return templates.TemplateResponse(request, "assess.html", ctx, status_code=status)


@router.post("/patients/{patient_id:path}/assess", response_class=HTMLResponse)
async def assess(patient_id: str, request: Request, db: Db, who: PageUser) -> Response:
    form = await _form(request)
    check_csrf(request, form.get("csrf_token"))
    try:
        p = svc.get_patient(db, who, patient_id)
        data = {k: v for k, v in form.items() if k not in ("csrf_token", "reason")}
        rec = svc.create_assessment(db, who, patient_id, data, form.get("reason") or None)
    except svc.Refused:
        raise  # an error page (cartrial.web.app), not a message beside the form
    except svc.ServiceError as exc:
        db.rollback()
        return _assess(
            request, who, p, {"_form": exc.message, **exc.errors}, form, None, exc.status
        )
    # redirect-after-POST: a refresh of the result page does not store a duplicate
    return RedirectResponse(
        f"/patients/{quote(patient_id, safe='/')}/assess?saved={rec.id}", status_code=303
    )


def _reporter(who: Principal) -> None:
    if not who.can_report:
        raise svc.Forbidden(f"role {who.role} may not build the report")


@router.get("/report", response_class=HTMLResponse)
def report(request: Request, db: Db, who: PageUser) -> Response:
    """The cohort report: status of the job for the current data, progress, downloads."""
    _reporter(who)
    jobs = state_of(request).reports
    version, job = jobs.current()
    latest = jobs.latest_done()
    ctx = page_context(
        request, who, version=version, job=job, latest=latest if latest is not job else None
    )
    return templates.TemplateResponse(request, "report.html", ctx)


@router.post("/report", response_class=HTMLResponse)
async def start_report(request: Request, db: Db, who: PageUser) -> Response:
    """Start (or join) the background report job for the current data."""
    _reporter(who)
    form = await _form(request)
    check_csrf(request, form.get("csrf_token"))
    try:
        state_of(request).reports.start()
    except RuntimeError as exc:
        raise svc.ServiceError(str(exc)) from None
    return RedirectResponse("/report", status_code=303)


@router.get("/report/files/{version}/{path:path}")
def report_file(version: str, path: str, request: Request, db: Db, who: PageUser) -> Response:
    """A file of a finished report (HTML shown, other files downloaded)."""
    from fastapi.responses import FileResponse

    _reporter(who)
    job = state_of(request).reports.find(version)
    if job is None or job.status != "done" or job.out is None:
        raise svc.NotFound(f"no finished report {version!r}")
    file = safe_path(job.out, path)
    if file is None:
        raise svc.NotFound(f"no file {path!r} in this report")
    inline = file.suffix.lower() in (".html", ".svg", ".png")
    return FileResponse(
        file,
        filename=None if inline else file.name,
        content_disposition_type="inline" if inline else "attachment",
    )


@router.get("/whoami", response_class=HTMLResponse)
def whoami(request: Request, db: Db) -> Response:
    who = session_user(request, db)
    return templates.TemplateResponse(request, "whoami.html", page_context(request, who))


@router.get("/docs", response_class=HTMLResponse)
def api_docs(request: Request, db: Db, who: PageUser) -> Response:
    """The API reference, rendered here from the OpenAPI schema (no CDN; log-in needed)."""
    spec = request.app.openapi()
    ops = [
        (m.upper(), path, op.get("summary", ""))
        for path, item in spec["paths"].items()
        for m, op in item.items()
    ]
    return templates.TemplateResponse(
        request,
        "api.html",
        page_context(request, who, ops=ops, description=spec["info"].get("description", "")),
    )


@router.get("/openapi.json")
def openapi_json(request: Request, db: Db) -> Response:
    from fastapi.responses import JSONResponse

    api_user(request, db)
    return JSONResponse(request.app.openapi())


@router.get("/audit/verify", response_class=HTMLResponse)
def audit_verify(request: Request, db: Db, who: PageUser) -> Response:
    """The hash chain of the audit trail, verified now (admin and monitor)."""

    if not who.can_audit:
        raise svc.Forbidden(f"role {who.role} may not view the audit")

    try:
        result = verify(db.connection())
    except KeyMissing as exc:
        raise svc.ServiceError(f"cannot verify the audit trail: {exc}") from None
    finally:
        db.rollback()
    return templates.TemplateResponse(
        request,
        "verify.html",
        page_context(request, who, result=result),
        status_code=200 if result.ok else 409,
    )


# -- edit and delete with a reason; field history ---------------------------------------------


def _history(db: Any, table: str, record_id: int) -> dict[str, list[dict[str, Any]]]:
    """Per field: the values it had, oldest first (from the audit trail)."""
    from sqlalchemy import select

    rows = db.scalars(
        select(AuditEntry)
        .where(AuditEntry.table_name == table, AuditEntry.record_id == str(record_id))
        .order_by(AuditEntry.id)
    )
    out: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        old_values, new_values = _expand_inputs(r.old_values), _expand_inputs(r.new_values)
        if r.action == "create":
            for k, v in new_values.items():
                if v is not None:
                    out.setdefault(k, []).append(
                        {
                            "at": _when(r.at),
                            "user": r.username,
                            "old": None,
                            "new": v,
                            "reason": r.reason,
                        }
                    )
        elif r.action == "update":
            for k in dict.fromkeys([*new_values, *old_values]):
                v, was = new_values.get(k), old_values.get(k)
                if v != was or k in (r.new_values or {}):
                    out.setdefault(k, []).append(
                        {
                            "at": _when(r.at),
                            "user": r.username,
                            "old": was,
                            "new": v,
                            "reason": r.reason,
                        }
                    )
    return out


def _expand_inputs(values: dict[str, Any] | None) -> dict[str, Any]:
    """Audit values with a bedside assessment's ``inputs`` (one JSON column) spread into
    its fields, so each input has its own history."""
    out = dict(values or {})
    inputs = out.pop("inputs", None)
    if isinstance(inputs, dict):
        for k, v in inputs.items():  # yes/no as the form shows them
            out.setdefault(k, ("yes" if v else "no") if isinstance(v, bool) else v)
    return out


def _when(at: Any) -> str:
    return at.strftime("%Y-%m-%d %H:%M UTC") if at is not None else ""


def _form_values(rec: Any, names: tuple[str, ...]) -> dict[str, Any]:
    out = {}
    for n in names:
        v = getattr(rec, n, None)
        if isinstance(v, bool):
            v = "yes" if v else "no"
        elif isinstance(v, float) and v.is_integer():
            v = f"{v:g}"
        elif n == "value" and v is None:
            v = getattr(rec, "value_text", None)
        out[n] = v
    return out


def _edit_page(request, db, who, table, rec, errors=None, form=None, status=200) -> Response:
    names = RECORD_FORMS[table]
    ctx = page_context(
        request,
        who,
        table=table,
        rec=rec,
        fields=forms.fields(table, names),
        form=form if form is not None else _form_values(rec, names),
        errors=errors or {},
        history=_history(db, table, rec.id),
    )
    return templates.TemplateResponse(request, "record_edit.html", ctx, status_code=status)


def _assessment_fields() -> list[forms.FormField]:
    """The bedside form's inputs (one field registry, ``cartrial.grading.fields``) as
    edit-page fields."""
    out = [forms.FormField("day", "day", "number", step="any", hint=forms.HELP["day"])]
    # registry inputs, and numbers (the ICE total, age) checked against ``bedside.limits``
    regs: list[InputField | str] = [
        *bedside.BEDSIDE_CRS_FIELDS,
        "ice_score",
        *bedside.BEDSIDE_ICANS_FIELDS,
        "age_years",
        *bedside.BEDSIDE_IECHS_FIELDS,
    ]
    for f in regs:
        if isinstance(f, str):
            lo, hi, whole = bedside.limits(f)
            out.append(
                forms.FormField(
                    f,
                    f.replace("_", " "),
                    "number",
                    step="1" if whole else "any",
                    min=lo,
                    max=None if hi == float("inf") else hi,
                )
            )
        elif f.input == "select":
            out.append(forms.FormField(f.name, f.label, "select", tuple(f.choices)))
        elif f.input == "yesno":
            out.append(forms.FormField(f.name, f.label, "select", ("no", "yes")))
        else:
            label = f"{f.label} ({f.unit})" if f.unit else f.label
            out.append(
                forms.FormField(
                    f.name, label, "number", step=f.step, min=f.lo, max=f.hi, hint=f.help or None
                )
            )
    return out


def _assessment_edit(request, db, who, rec, errors=None, form=None, status=200) -> Response:
    fields = _assessment_fields()
    values = {
        k: f"{v:g}" if isinstance(v, float) else v for k, v in svc.assessment_form(rec).items()
    }
    ctx = page_context(
        request,
        who,
        table="assessments",
        rec=rec,
        fields=fields,
        form=form if form is not None else values,
        errors=errors or {},
        history=_history(db, "assessments", rec.id),
    )
    return templates.TemplateResponse(request, "record_edit.html", ctx, status_code=status)


@router.get("/records/{table}/{record_id}/edit", response_class=HTMLResponse)
def edit_record_page(
    table: str, record_id: int, request: Request, db: Db, who: PageUser
) -> Response:
    if table not in RECORD_FORMS and table != "assessments":
        raise svc.NotFound(f"unknown table {table!r}")
    if not 0 < record_id < 2**31:
        raise svc.NotFound(f"{table} record {record_id} not found")
    rec = svc.get_record(db, who, table, record_id)
    if table == "assessments":
        return _assessment_edit(request, db, who, rec)
    return _edit_page(request, db, who, table, rec)


def _changed(stored: dict[str, Any], form: dict[str, str], names: Any) -> dict[str, Any]:
    """The submitted fields whose text differs from the stored value (blank -> None)."""

    def text(v: Any) -> str:
        if v is None:
            return ""
        return f"{v:g}" if isinstance(v, float) else str(v)

    return {
        k: (form[k] if form[k] != "" else None)
        for k in names
        if k in form and text(stored.get(k)) != form[k].strip()
    }


@router.post("/records/{table}/{record_id}/edit", response_class=HTMLResponse)
async def edit_record(
    table: str, record_id: int, request: Request, db: Db, who: PageUser
) -> Response:
    """Change a record: the version last seen and a reason for the change are required."""
    form = await _form(request)
    check_csrf(request, form.get("csrf_token"))
    action = form.get("action", "save")
    try:
        if table not in RECORD_FORMS and table != "assessments":
            raise svc.NotFound(f"unknown table {table!r}")
        if not 0 < record_id < 2**31:
            raise svc.NotFound(f"{table} record {record_id} not found")
        rec = svc.get_record(db, who, table, record_id)
        pid = rec.patient_id
        version = int(form["version"]) if form.get("version", "").isdigit() else None
        reason = form.get("reason") or None
        if action == "delete":
            svc.delete_record(db, who, table, record_id, version, reason)
        elif table == "assessments":
            names = [f.name for f in _assessment_fields()] + list(bedside.ICE_ITEMS)
            changed = _changed(svc.assessment_form(rec), form, names)
            svc.update_assessment(db, who, record_id, changed, version, reason)
        else:
            data = _clean(form, RECORD_FORMS[table])
            changed = {
                k: (v if v != "" else None)
                for k, v in data.items()
                if str(_form_values(rec, (k,))[k] or "") != v
            }
            svc.update_record(db, who, table, record_id, changed, version, reason)
    except svc.Refused:
        raise  # an error page (cartrial.web.app), not a message beside the form
    except svc.ServiceError as exc:
        db.rollback()
        rec = db.get(type(rec), record_id)
        if rec is None:
            raise
        if table == "assessments":
            return _assessment_edit(
                request, db, who, rec, {"_form": exc.message, **exc.errors}, form, exc.status
            )
        return _edit_page(
            request, db, who, table, rec, {"_form": exc.message, **exc.errors}, form, exc.status
        )
    return RedirectResponse(f"/patients/{quote(pid, safe='/')}", status_code=303)


#: the patient form: the baseline columns in Table 1 order (less the derived age group),
#: then enrolment and infusion
PATIENT_EDIT = (
    *(k for k in BASELINE_ORDER if k != "age_group"),
    "enrolled",
    "infused",
    "infusion_date",
)


def _patient_edit(request, db, who, p, errors=None, form=None, status=200) -> Response:
    ctx = page_context(
        request,
        who,
        table="patients",
        rec=p,
        fields=forms.fields("patients", PATIENT_EDIT),
        form=form if form is not None else _form_values(p, PATIENT_EDIT),
        errors=errors or {},
        history=_history(db, "patients", p.id),
        action=f"/patients/{quote(p.patient_id, safe='/')}/edit",
    )
    return templates.TemplateResponse(request, "record_edit.html", ctx, status_code=status)


@router.get("/patients/{patient_id:path}/edit", response_class=HTMLResponse)
def edit_patient_page(patient_id: str, request: Request, db: Db, who: PageUser) -> Response:
    p = svc.get_patient(db, who, patient_id)
    return _patient_edit(request, db, who, p)


@router.post("/patients/{patient_id:path}/edit", response_class=HTMLResponse)
async def edit_patient(patient_id: str, request: Request, db: Db, who: PageUser) -> Response:
    """Change the patient's fields (version last seen and a reason required)."""
    form = await _form(request)
    check_csrf(request, form.get("csrf_token"))
    try:
        p = svc.get_patient(db, who, patient_id)
        version = int(form["version"]) if form.get("version", "").isdigit() else None
        data = _clean(form, PATIENT_EDIT)
        changed = {
            k: (v if v != "" else None)
            for k, v in data.items()
            if str(_form_values(p, (k,))[k] or "") != v
        }
        svc.update_patient(db, who, patient_id, changed, version, form.get("reason") or None)
    except svc.Refused:
        raise  # an error page (cartrial.web.app), not a message beside the form
    except svc.ServiceError as exc:
        db.rollback()
        p = svc.get_patient(db, who, patient_id)
        return _patient_edit(
            request, db, who, p, {"_form": exc.message, **exc.errors}, form, exc.status
        )
    return RedirectResponse(f"/patients/{quote(patient_id, safe='/')}", status_code=303)


def _patient_delete(request, db, who, p, errors=None, form=None, status=200) -> Response:
    counts = {
        t.replace("_", " "): len(getattr(p, t))
        for t in ("events", "adverse_events", "observations", "assessments")
    }
    ctx = page_context(request, who, patient=p, counts=counts, errors=errors or {}, form=form or {})
    return templates.TemplateResponse(request, "patient_delete.html", ctx, status_code=status)


@router.get("/patients/{patient_id:path}/delete", response_class=HTMLResponse)
def delete_patient_page(patient_id: str, request: Request, db: Db, who: PageUser) -> Response:
    """Confirm the deletion of a patient and all their records (reason required)."""
    p = svc.get_patient(db, who, patient_id)
    return _patient_delete(request, db, who, p)


@router.post("/patients/{patient_id:path}/delete", response_class=HTMLResponse)
async def delete_patient(patient_id: str, request: Request, db: Db, who: PageUser) -> Response:
    """Delete the patient with all their records (version last seen and a reason required);
    every deleted row's values stay in the audit trail."""
    form = await _form(request)
    check_csrf(request, form.get("csrf_token"))
    try:
        version = int(form["version"]) if form.get("version", "").isdigit() else None
        svc.delete_patient(db, who, patient_id, version, form.get("reason") or None)
    except svc.Refused:
        raise  # an error page (cartrial.web.app), not a message beside the form
    except svc.ServiceError as exc:
        db.rollback()
        p = svc.get_patient(db, who, patient_id)
        return _patient_delete(
            request, db, who, p, {"_form": exc.message, **exc.errors}, form, exc.status
        )
    return RedirectResponse("/patients", status_code=303)


# -- audit trail in the UI -----------------------------------------------------------------------


@router.get("/patients/{patient_id:path}/audit", response_class=HTMLResponse)
def audit_page(
    patient_id: str,
    request: Request,
    db: Db,
    who: PageUser,
    table: str = "",
    field: str = "",
    user: str = "",
    format: str = "html",
) -> Response:
    """The patient's audit trail, filterable by table, field and user; CSV export. Viewing
    and exporting are themselves logged."""
    import csv
    import io
    import json

    if not who.can_audit:
        raise svc.Forbidden(f"role {who.role} may not view the audit")
    svc.patient_for_audit(db, who, patient_id)
    rows = audit_for_patient(db, patient_id)
    if table:
        rows = [r for r in rows if r["table"] == table]
    if field:
        rows = [
            r for r in rows if field in (r["new_values"] or {}) or field in (r["old_values"] or {})
        ]
    if user:
        rows = [r for r in rows if r["user"] == user]
    log_event(
        db,
        "export_audit" if format == "csv" else "view_audit",
        who.username,
        client_address(request),
        f"patient {patient_id}"[:2000],
    )
    db.commit()
    if format == "csv":
        buf = io.StringIO()
        cols = [
            "id",
            "at",
            "user",
            "action",
            "table",
            "record_id",
            "old_values",
            "new_values",
            "reason",
        ]
        w = csv.DictWriter(buf, fieldnames=cols, extrasaction="ignore", lineterminator="\n")
        w.writeheader()
        for r in rows:
            w.writerow(
                {
                    **r,
                    "old_values": json.dumps(r["old_values"]),
                    "new_values": json.dumps(r["new_values"]),
                }
            )
        name = "".join(c if c.isalnum() or c in "._-" else "_" for c in patient_id)[:64]
        return Response(
            buf.getvalue(),
            media_type="text/csv",
            headers={"Content-Disposition": f'attachment; filename="audit_{name}.csv"'},
        )
    ctx = page_context(
        request,
        who,
        patient_id=patient_id,
        rows=rows,
        filters={"table": table, "field": field, "user": user},
    )
    return templates.TemplateResponse(request, "audit.html", ctx)


# -- data queries, signature, unlock --------------------------------------------------------------


@router.post("/patients/{patient_id:path}/queries", response_class=HTMLResponse)
async def raise_query(patient_id: str, request: Request, db: Db, who: PageUser) -> Response:
    form = await _form(request)
    check_csrf(request, form.get("csrf_token"))
    target = form.get("target", "patients:")
    table, _, rid = target.partition(":")
    try:
        svc.raise_query(
            db,
            who,
            patient_id,
            table,
            int(rid) if rid.isdigit() else None,
            form.get("field") or None,
            form.get("text", ""),
        )
    except svc.Refused:
        raise  # an error page (cartrial.web.app), not a message beside the form
    except svc.ServiceError as exc:
        db.rollback()
        return _patient_page(
            request,
            db,
            who,
            patient_id,
            {"_form": exc.message, **exc.errors},
            form,
            "queries",
            exc.status,
        )
    return RedirectResponse(f"/patients/{quote(patient_id, safe='/')}#queries", status_code=303)


@router.post("/queries/{query_id}/{action}", response_class=HTMLResponse)
async def query_action(
    query_id: int, action: str, request: Request, db: Db, who: PageUser
) -> Response:
    form = await _form(request)
    check_csrf(request, form.get("csrf_token"))
    if action == "answer":
        q = svc.answer_query(db, who, query_id, form.get("answer", ""))
    elif action == "close":
        q = svc.close_query(db, who, query_id)
    else:
        raise svc.NotFound(f"unknown action {action!r}")
    back = form.get("back") or f"/patients/{quote(q.patient_id, safe='/')}#queries"
    return RedirectResponse(
        back if back.startswith("/") and not back.startswith("//") else "/queries", status_code=303
    )


@router.get("/queries", response_class=HTMLResponse)
def query_list(request: Request, db: Db, who: PageUser, status: str = "pending") -> Response:
    """Open and answered queries, per site (a data-entry user sees their own site)."""
    rows = svc.list_queries(
        db, who, None, status if status in ("pending", "open", "answered", "closed") else "pending"
    )
    sites = {p.patient_id: p.site for p in svc.list_patients(db, who)}
    by_site: dict[str, list[Any]] = {}
    for q in rows:
        by_site.setdefault(sites.get(q.patient_id) or "(no site)", []).append(q)
    return templates.TemplateResponse(
        request, "queries.html", page_context(request, who, by_site=by_site, status=status)
    )


@router.post("/patients/{patient_id:path}/sign", response_class=HTMLResponse)
async def sign(patient_id: str, request: Request, db: Db, who: PageUser) -> Response:
    form = await _form(request)
    check_csrf(request, form.get("csrf_token"))
    try:
        svc.sign_patient(db, who, patient_id, form.get("password", "")[:200])
    except svc.NotFound:
        raise  # an error page (cartrial.web.app)
    except svc.ServiceError as exc:
        db.rollback()
        return _patient_page(
            request,
            db,
            who,
            patient_id,
            {"_form": exc.message, "password": exc.message},
            {},
            "sign",
            exc.status,
        )
    return RedirectResponse(f"/patients/{quote(patient_id, safe='/')}", status_code=303)


@router.post("/patients/{patient_id:path}/unlock", response_class=HTMLResponse)
async def unlock(patient_id: str, request: Request, db: Db, who: PageUser) -> Response:
    form = await _form(request)
    check_csrf(request, form.get("csrf_token"))
    try:
        svc.unlock_patient(db, who, patient_id, (form.get("reason") or "").strip() or None)
    except svc.Refused:
        raise  # an error page (cartrial.web.app), not a message beside the form
    except svc.ServiceError as exc:
        db.rollback()
        return _patient_page(
            request,
            db,
            who,
            patient_id,
            {"_form": exc.message, **exc.errors},
            form,
            "unlock",
            exc.status,
        )
    return RedirectResponse(f"/patients/{quote(patient_id, safe='/')}", status_code=303)


# -- user management (admin) ------------------------------------------------------------------------


def _users_page(request, db, who, errors=None, form=None, shown=None, status=200) -> Response:
    from sqlalchemy import select

    users = db.scalars(select(User).order_by(User.username)).all()
    sites = db.scalars(select(Site).order_by(Site.code)).all()
    ctx = page_context(
        request,
        who,
        users=users,
        roles=ROLES,
        sites=sites,
        errors=errors or {},
        form=form or {},
        shown=shown,
    )
    return templates.TemplateResponse(request, "users.html", ctx, status_code=status)


def _admin(who: Principal) -> None:
    if who.role != "admin":
        raise svc.Forbidden("only an admin may manage users")


@router.get("/admin/users", response_class=HTMLResponse)
def users_page(request: Request, db: Db, who: PageUser) -> Response:
    _admin(who)
    return _users_page(request, db, who)


@router.post("/admin/users", response_class=HTMLResponse)
async def users_action(request: Request, db: Db, who: PageUser) -> Response:
    """Add a user (generated password, changed at first log-in), deactivate / reactivate,
    reset the password, change role and site. Every change is in the audit trail."""

    _admin(who)
    form = await _form(request)
    check_csrf(request, form.get("csrf_token"))
    action = form.get("action", "")
    shown = None
    try:
        if action == "site":  # a site: code (the one rule) and display name
            code, name = form.get("code", "").strip(), form.get("name", "").strip()[:200]
            if site_problem(code):
                raise ValueError(site_problem(code))
            site = db.get(Site, code)
            if site is None:
                db.add(Site(code=code, name=name or code))
            else:
                site.name = name or code
        elif action == "add":
            password = generate_password()
            user = create_user(
                db,
                form.get("username", "").strip(),
                password,
                form.get("role", ""),
                form.get("site") or None,
                must_change_password=True,
            )
            shown = (user.username, password)
        else:
            uid = form.get("user_id", "")
            found = db.get(User, int(uid)) if uid.isdigit() and len(uid) < 10 else None
            if found is None:
                raise ValueError(f"no user {uid!r}")
            user = found
            if action in ("deactivate", "activate"):
                if user.id == who.id:
                    raise ValueError("you cannot deactivate yourself")
                user.active = action == "activate"
                if not user.active:  # end their sessions now
                    from sqlalchemy import delete

                    db.execute(delete(WebSession).where(WebSession.user_id == user.id))
            elif action == "reset":
                password = generate_password()
                user.password_hash = hash_password(password)
                user.must_change_password = True
                shown = (user.username, password)
            elif action == "role":
                role, site_code = form.get("role", ""), form.get("site") or None
                if role not in ROLES:
                    raise ValueError(f"role {role!r} is not one of {', '.join(ROLES)}")
                if role in ("data_entry", "investigator") and not site_code:
                    raise ValueError(f"a {role} user needs a site")
                if site_code and site_problem(site_code):
                    raise ValueError(site_problem(site_code))
                if site_code:
                    ensure_site(db, site_code)
                user.role, user.site = role, site_code
            else:
                raise ValueError(f"unknown action {action!r}")
        db.commit()
    except ValueError as exc:
        db.rollback()
        return _users_page(request, db, who, {"_form": str(exc)}, form, None, 422)
    return _users_page(request, db, who, shown=shown)


# last: the bare patient path would otherwise swallow "/patients/X/assess" (patient IDs may
# contain "/", so the parameter is a path)
router.get("/patients/{patient_id:path}", response_class=HTMLResponse)(patient_page)

__all__ = ["router", "principal"]


DESIGN_DEFAULTS = {
    "design": "BOIN",
    "target": "0.3",
    "cohort_size": "3",
    "doses": "5e5,1e6,2e6",
    "theta": "0.3",
    "cutoff": "0.9",
}


def _design_params(query: dict[str, str]) -> tuple[dict[str, str], dict[str, Any] | None, str]:
    """The page's parameters as typed (for the form) and parsed, or the error to show."""
    params = {k: str(query.get(k, v)).strip() for k, v in DESIGN_DEFAULTS.items()}
    try:
        target, theta, cutoff = (float(params[k]) for k in ("target", "theta", "cutoff"))
        size = int(params["cohort_size"])
        doses = [float(d) for d in params["doses"].replace(";", ",").split(",") if d.strip()]
    except ValueError:
        return (
            params,
            None,
            (
                "target, boundary rate and probability must be numbers, the "
                "cohort size a whole number and the doses numbers such as 5e5"
            ),
        )
    if params["design"] not in ("BOIN", "CRM", "3+3"):
        return params, None, f"design {params['design']!r}: expected BOIN, CRM or 3+3"
    if not (0 < target < 1 and 0 < theta < 1 and 0 < cutoff < 1):
        return params, None, "the target, boundary rate and probability must be between 0 and 1"
    if not 1 <= size <= 12 or not 1 <= len(doses) <= 10 or doses != sorted(doses):
        return params, None, "a cohort size 1–12 and 1–10 doses, lowest first"
    return (
        params,
        {"target": target, "theta": theta, "cutoff": cutoff, "size": size, "doses": doses},
        "",
    )


@router.get("/design", response_class=HTMLResponse)
def design_page(request: Request, db: Db, who: PageUser) -> Response:
    """Next-dose recommendation and safety-boundary status from the live database, for
    monitors, statisticians and admins (issue 18). Reference only: the rule that fired
    and the DLT table behind it are shown; nothing is changed."""

    if not who.all_sites:
        raise svc.Forbidden(f"role {who.role} may not see trial-wide dose and safety status")
    params, parsed, error = _design_params(dict(request.query_params))
    rec = dsmb = None
    if parsed is not None:
        k = len(parsed["doses"])
        design = {
            "BOIN": lambda: BOIN(parsed["target"], k, cohort_size=parsed["size"]),
            # skeleton by Lee & Cheung's indifference intervals (half-width 0.05), prior
            # MTD the middle dose
            "CRM": lambda: CRM(
                tuple(crm_skeleton(0.05, parsed["target"], (k - 1) // 2, k)),
                parsed["target"],
                cohort_size=parsed["size"],
            ),
            "3+3": lambda: ThreePlusThree(k),
        }[params["design"]]()
        try:
            cohort = read_cohort(state_of(request).engine)
            rec = next_dose_recommendation(cohort, design, parsed["doses"])
            dsmb = dsmb_summary(cohort, theta=parsed["theta"], cutoff=parsed["cutoff"])
        except CohortError as exc:
            error = "the database does not form a valid cohort: " + "; ".join(
                map(str, exc.problems[:5])
            )
        except ValueError as exc:
            error = str(exc)
    ctx = page_context(request, who, params=params, rec=rec, dsmb=dsmb, error=error)
    return templates.TemplateResponse(request, "design.html", ctx)
