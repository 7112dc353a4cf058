"""The cartrial web app (FastAPI, server-rendered Jinja2 pages + JSON API under /api).

``create_app(db)`` opens the database (SQLite file by default, PostgreSQL by URL),
applies the Alembic migrations, creates the admin account on first run, and mounts
the pages and the API.

Security:
* passwords hashed with argon2id, a password policy and log-in throttling
  (``cartrial.store.users``); every log-in attempt is in the audit trail;
* server-side sessions (table ``web_sessions``): the cookie (signed, HttpOnly,
  SameSite=Lax, ``Secure`` when ``CARTRIAL_HTTPS_ONLY=1``) carries a random token whose
  SHA-256 the database keeps; log-out deletes it, 30 minutes idle or 8 hours after
  log-in end it. The signing key is never in the database (``secret_key``);
* CSRF: a per-session token, required in every form (``csrf_token``) and, for API calls
  authenticated by the session cookie, in the ``X-CSRF-Token`` header of unsafe methods;
* API clients may instead use HTTP Basic authentication (no cookie, no CSRF token);
* data-entry users see their own site only; other sites' patients are "not found";
* security headers on every response (CSP without inline scripts, X-Frame-Options DENY,
  nosniff, Referrer-Policy), request bodies limited to 1 MB, HTML error pages outside
  /api, the API documentation served locally and only to logged-in users.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import os
import secrets
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from sqlalchemy import Engine, delete, select
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.orm import Session, sessionmaker
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.sessions import SessionMiddleware

from cartrial.store.database import make_engine, secret_key, session_factory, upgrade
from cartrial.store.models import User, WebSession, utcnow
from cartrial.store.users import Principal, ensure_admin, principal
from cartrial.web.service import ServiceError

HERE = Path(__file__).parent
templates = Jinja2Templates(directory=str(HERE / "templates"))
#: a session ends after this long without a request (OWASP ASVS 4.0 §3.3.2) ...
IDLE_TIMEOUT = dt.timedelta(minutes=30)
#: ... and this long after log-in, whatever happens
ABSOLUTE_TIMEOUT = dt.timedelta(hours=8)
#: ``last_seen`` is written at most this often (not on every request)
TOUCH_EVERY = dt.timedelta(seconds=60)
MAX_BODY = 1_000_000
SECURITY_HEADERS = {
    "content-security-policy": "default-src 'self'; img-src 'self' data:; style-src 'self' "
    "'unsafe-inline'; script-src 'self'; frame-ancestors 'none'; base-uri 'none'; "
    "form-action 'self'",
    "x-frame-options": "DENY",
    "x-content-type-options": "nosniff",
    "referrer-policy": "same-origin",
    "cache-control": "no-store",
}


class MustChangePassword(Exception):
    """The user logged in with a generated password: only the password page is open."""


class LoginRequired(Exception):
    """A page needs a logged-in user and the request has none: go to the login page."""


@dataclass
class AppState:
    engine: Engine
    sessions: sessionmaker[Session]
    https_only: bool
    admin_password: str | None = None
    reports: Any = None  # cartrial.web.reports.ReportJobs
    _basic_cache: dict[tuple[str, str], str] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)


def create_app(
    db: str | None = None,
    *,
    engine: Engine | None = None,
    https_only: bool | None = None,
    migrate: bool = True,
) -> FastAPI:
    """Build the app on database ``db`` (URL or SQLite path; default ./cartrial.sqlite)."""
    if engine is None:
        engine = make_engine(db)
    if migrate:
        upgrade(engine)
    sessions = session_factory(engine)
    with sessions() as s:
        admin_password = ensure_admin(s)
        s.commit()
    if https_only is None:
        https_only = os.environ.get("CARTRIAL_HTTPS_ONLY", "") in ("1", "true", "yes")
    state = AppState(engine, sessions, https_only, admin_password)
    from cartrial.web.reports import ReportJobs

    state.reports = ReportJobs(engine, os.environ.get("CARTRIAL_REPORT_DIR") or None)
    app = FastAPI(
        title="cartrial",
        version="0.1.0",
        description="CAR-T trial data entry, bedside grading (reference only) and reports. "
        "Authenticate with HTTP Basic, or with the session cookie from POST /api/session "
        "plus its CSRF token in the X-CSRF-Token header for POST/PATCH/DELETE.",
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    app.state.cartrial = state
    # SIGTERM -> uvicorn shuts down -> running report processes are stopped too
    app.router.add_event_handler("shutdown", state.reports.shutdown)
    app.add_middleware(
        SessionMiddleware,
        secret_key=secret_key(engine.url.render_as_string(hide_password=False)),
        session_cookie="cartrial_session",
        max_age=None,  # a browser-session cookie; the server decides when it ends
        same_site="lax",
        https_only=https_only,
    )
    app.mount("/static", StaticFiles(directory=str(HERE / "static")), name="static")

    @app.middleware("http")
    async def _guard(request: Request, call_next):
        size = request.headers.get("content-length")
        if size is not None and (not size.isdigit() or int(size) > MAX_BODY):
            response = _error_response(request, 413, "the request is too large (at most 1 MB)")
        else:
            response = await call_next(request)
        for key, value in SECURITY_HEADERS.items():
            response.headers.setdefault(key, value)
        return response

    @app.exception_handler(ServiceError)
    async def _service_error(request: Request, exc: ServiceError):
        return _error_response(request, exc.status, exc.message, exc.errors)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException):
        message = exc.detail if isinstance(exc.detail, str) else "request refused"
        if exc.status_code == 404 and message == "Not Found":
            message = f"no page at {request.url.path}"
        return _error_response(request, exc.status_code, message, None,
                               getattr(exc, "headers", None))

    @app.exception_handler(MustChangePassword)
    async def _must_change(request: Request, exc: MustChangePassword):
        return RedirectResponse("/account/password", status_code=303)

    @app.exception_handler(LoginRequired)
    async def _login_required(request: Request, exc: LoginRequired):
        return login_redirect()

    @app.exception_handler(IntegrityError)
    async def _integrity(request: Request, exc: IntegrityError):
        return _error_response(request, 409, "the change conflicts with stored data (a "
                               "reference to a record that does not exist, or a duplicate)")

    @app.exception_handler(DBAPIError)
    async def _db_error(request: Request, exc: DBAPIError):
        return _error_response(request, 422, "the database refused a value (out of range?)")

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError):
        errors = {}
        for err in exc.errors():
            loc = [str(p) for p in err.get("loc", ()) if p != "body"]
            errors[".".join(loc) or "body"] = err.get("msg", "invalid")
        return _error_response(request, 422, "invalid request: see errors by field", errors)

    from cartrial.web import api, pages

    app.include_router(api.router)
    app.include_router(pages.router)
    return app


def app_from_env() -> FastAPI:
    """The app on ``$CARTRIAL_DB``, already migrated (``cartrial serve --workers N``)."""
    return create_app(os.environ.get("CARTRIAL_DB"), migrate=False)


# -- authentication helpers used by pages and API ------------------------------------------


def state_of(request: Request) -> AppState:
    return request.app.state.cartrial


def open_db(request: Request) -> Session:
    return state_of(request).sessions()


def get_db(request: Request) -> Iterator[Session]:
    """FastAPI dependency: a database session for one request, closed afterwards."""
    db = open_db(request)
    try:
        yield db
    finally:
        db.close()


def csrf_token(request: Request) -> str:
    token = request.session.get("csrf")
    if not token:
        token = request.session["csrf"] = secrets.token_urlsafe(32)
    return token


def check_csrf(request: Request, token: str | None) -> None:
    expected = request.session.get("csrf")
    if not expected or not token or not secrets.compare_digest(str(token), expected):
        raise HTTPException(403, "missing or invalid CSRF token: reload the page and try again")


def _error_response(request: Request, status: int, message: str,
                    errors: dict[str, str] | None = None, headers: dict | None = None):
    """JSON ``{"detail", "errors"}`` under /api, an HTML page elsewhere."""
    if request.url.path.startswith("/api"):
        return JSONResponse({"detail": message, "errors": errors or {}}, status_code=status,
                            headers=headers)
    ctx = {"request": request, "user": None, "csrf": request.scope.get("session", {}).get("csrf", ""),
           "message": message, "status": status}
    return templates.TemplateResponse(request, "error.html", ctx, status_code=status,
                                      headers=headers)


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def start_session(request: Request, db: Session, user: User) -> None:
    """A new server-side session for ``user`` (fresh cookie content and CSRF token)."""
    request.session.clear()
    token = secrets.token_urlsafe(32)
    now = utcnow()
    db.add(WebSession(token_hash=_token_hash(token), user_id=user.id, created_at=now,
                      last_seen=now))
    db.commit()
    request.session["sid"] = token
    request.session["csrf"] = secrets.token_urlsafe(32)


def end_session(request: Request, db: Session) -> None:
    """Revoke the server-side session (a copied cookie no longer works) and clear it."""
    token = request.session.get("sid")
    if token:
        db.execute(delete(WebSession).where(WebSession.token_hash == _token_hash(token)))
        db.commit()
    request.session.clear()


def session_user(request: Request, db: Session) -> Principal | None:
    """The user of the session cookie, if the server-side session is alive and the user
    still active; an idle or expired session is deleted."""
    token = request.session.get("sid")
    if not token or not isinstance(token, str):
        return None
    row = db.get(WebSession, _token_hash(token))
    now = utcnow()
    if row is None:
        request.session.clear()
        return None
    if now - row.last_seen > IDLE_TIMEOUT or now - row.created_at > ABSOLUTE_TIMEOUT:
        end_session(request, db)
        return None
    user = db.get(User, row.user_id)
    if user is None or not user.active:
        end_session(request, db)
        return None
    if now - row.last_seen > TOUCH_EVERY:
        row.last_seen = now
        db.commit()
    return principal(user)


def basic_user(request: Request, db: Session) -> Principal | None:
    """The user of an HTTP Basic ``Authorization`` header, or None if there is none.

    Raises 401 on wrong credentials. Verified credentials are cached (by a SHA-256 of
    the password and the stored hash) so API clients do not pay argon2 on every call.
    """
    header = request.headers.get("authorization", "")
    if not header.lower().startswith("basic "):
        return None
    try:
        username, _, password = base64.b64decode(header[6:]).decode("utf-8").partition(":")
    except (ValueError, UnicodeDecodeError):
        raise _unauthorized("malformed Basic credentials") from None
    user = db.scalar(select(User).where(User.username == username))
    st = state_of(request)
    key = (username, hashlib.sha256(password.encode()).hexdigest())
    if user is None or not user.active or st._basic_cache.get(key) != user.password_hash:
        from cartrial.store.users import LoginRefused, log_in

        try:
            checked = log_in(db, username, password, client_address(request))
        except LoginRefused as exc:
            raise HTTPException(429, str(exc)) from None
        if checked is None:
            raise _unauthorized("wrong username or password")
        with st._lock:
            if len(st._basic_cache) > 1000:
                st._basic_cache.clear()
            st._basic_cache[key] = user.password_hash
    return principal(user)


def _unauthorized(message: str) -> HTTPException:
    return HTTPException(401, message, headers={"WWW-Authenticate": 'Basic realm="cartrial"'})


def client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def api_user(request: Request, db: Session) -> Principal:
    """API authentication: HTTP Basic, or the session cookie plus X-CSRF-Token on writes."""
    who = basic_user(request, db)
    if who is None:
        who = session_user(request, db)
        if who is None:
            raise _unauthorized("log in first (HTTP Basic or POST /api/session)")
    if who.must_change_password and request.url.path != "/api/session/password":
        raise HTTPException(403, "change your password first (PUT /api/session/password "
                            "or the Account page)")
    if request.headers.get("authorization", "").lower().startswith("basic "):
        return who
    if request.method not in ("GET", "HEAD", "OPTIONS"):
        check_csrf(request, request.headers.get("x-csrf-token"))
    return who


def page_context(request: Request, who: Principal | None, **extra: Any) -> dict[str, Any]:
    return {"request": request, "user": who, "csrf": csrf_token(request), **extra}


def login_redirect() -> RedirectResponse:
    return RedirectResponse("/login", status_code=303)
