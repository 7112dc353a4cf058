"""The cartrial web app (FastAPI, server-rendered Jinja2 pages + JSON API under /api).

``create_app(db)`` opens the database (SQLite file by default, PostgreSQL by URL),
applies the Alembic migrations, creates the admin account on first run, and mounts
the pages (``pages``) and the API (``api``). What every route depends on (database
session, current user, CSRF, templates, the error page) is in ``deps``; the routers
never import this module.

Security:
* passwords hashed with argon2id, a password policy and log-in throttling
  (``cartrial.store.users``); every log-in attempt is in the audit trail and failures
  are logged (``cartrial.web`` logger, configured by ``cartrial serve --log-level``);
* server-side sessions (table ``web_sessions``, see ``deps``): log-out deletes them,
  30 minutes idle or 8 hours after log-in end them; the signing key and the audit chain's
  key are never in the database (``secret_key``, ``audit_key``);
* CSRF: a per-session token, required in every form (``csrf_token``) and, for API calls
  authenticated by the session cookie, in the ``X-CSRF-Token`` header of unsafe methods;
* API clients may instead use HTTP Basic authentication (no cookie, no CSRF token);
* data-entry users see their own site only; other sites' patients are "not found";
* security headers on every response (CSP without inline scripts, X-Frame-Options DENY,
  nosniff, Referrer-Policy), request bodies limited to 1 MB, HTML error pages outside
  /api (one handler per error kind), the API documentation served locally and only to
  logged-in users; server errors and slow requests are logged.
"""

from __future__ import annotations

import logging
import os
import time

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import RedirectResponse
from fastapi.staticfiles import StaticFiles
from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError, IntegrityError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.sessions import SessionMiddleware

from cartrial.store.database import (
    audit_key,
    make_engine,
    secret_key,
    session_factory,
    upgrade,
)
from cartrial.store.users import ensure_admin
from cartrial.web import api, pages
from cartrial.web.deps import (
    HERE,
    AppState,
    LoginRequired,
    MustChangePassword,
    app_version,
    error_response,
    log,
    login_redirect,
)
from cartrial.web.pagecache import PageCache
from cartrial.web.reports import ReportJobs
from cartrial.web.service import ServiceError

MAX_BODY = 1_000_000
#: request handler threads per server process (``cartrial serve --threads``)
THREADS = 16
SECURITY_HEADERS = {
    "content-security-policy": "default-src 'self'; img-src 'self' data:; style-src 'self' "
    "'unsafe-inline'; script-src 'self'; frame-ancestors 'none'; base-uri 'none'; "
    "form-action 'self'",
    "x-frame-options": "DENY",
    "x-content-type-options": "nosniff",
    "referrer-policy": "same-origin",
    "cache-control": "no-store",
}


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
    audit_key(engine.url.render_as_string(hide_password=False))  # created here if missing
    sessions = session_factory(engine)
    with sessions() as s:
        admin_password = ensure_admin(s)
        s.commit()
    if https_only is None:
        https_only = os.environ.get("CARTRIAL_HTTPS_ONLY", "") in ("1", "true", "yes")
    state = AppState(engine, sessions, https_only, admin_password)
    state.reports = ReportJobs(engine, os.environ.get("CARTRIAL_REPORT_DIR") or None)
    state.pages = PageCache()
    # requests slower than this are logged at WARNING (``cartrial serve --slow-ms``)
    slow_s = float(os.environ.get("CARTRIAL_SLOW_MS") or 1000) / 1000
    app = FastAPI(
        title="cartrial",
        version=app_version(),
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
    threads = int(os.environ.get("CARTRIAL_THREADS") or THREADS)

    async def _threads() -> None:
        # request handlers are CPU-bound Python: a few threads serve as many requests per
        # second as 40 and contend less for the GIL, so a writer holding the database's
        # write lock (or the audit chain's head) gets back to it sooner
        import anyio.to_thread

        anyio.to_thread.current_default_thread_limiter().total_tokens = threads

    app.router.add_event_handler("startup", _threads)
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
        start = time.perf_counter()
        size = request.headers.get("content-length")
        if size is not None and (not size.isdigit() or int(size) > MAX_BODY):
            response = error_response(request, 413, "the request is too large (at most 1 MB)")
        else:
            response = await call_next(request)
        for key, value in SECURITY_HEADERS.items():
            response.headers.setdefault(key, value)
        took = time.perf_counter() - start
        if took > slow_s:
            log.warning(
                "slow request: %s %s took %.0f ms (status %d)",
                request.method,
                request.url.path,
                took * 1000,
                response.status_code,
            )
        return response

    @app.exception_handler(ServiceError)
    async def _service_error(request: Request, exc: ServiceError):
        return error_response(request, exc.status, exc.message, exc.errors)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException):
        message = exc.detail if isinstance(exc.detail, str) else "request refused"
        if exc.status_code == 404 and message == "Not Found":
            message = f"no page at {request.url.path}"
        return error_response(
            request, exc.status_code, message, None, getattr(exc, "headers", None)
        )

    @app.exception_handler(MustChangePassword)
    async def _must_change(request: Request, exc: MustChangePassword):
        return RedirectResponse("/account/password", status_code=303)

    @app.exception_handler(LoginRequired)
    async def _login_required(request: Request, exc: LoginRequired):
        return login_redirect()

    @app.exception_handler(IntegrityError)
    async def _integrity(request: Request, exc: IntegrityError):
        return error_response(
            request,
            409,
            "the change conflicts with stored data (a "
            "reference to a record that does not exist, or a duplicate)",
        )

    @app.exception_handler(DBAPIError)
    async def _db_error(request: Request, exc: DBAPIError):
        return error_response(request, 422, "the database refused a value (out of range?)")

    @app.exception_handler(Exception)
    async def _server_error(request: Request, exc: Exception):
        log.error("server error on %s %s", request.method, request.url.path, exc_info=exc)
        return error_response(
            request, 500, "internal error: the administrator can find the details in the server log"
        )

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError):
        errors = {}
        for err in exc.errors():
            loc = [str(p) for p in err.get("loc", ()) if p != "body"]
            errors[".".join(loc) or "body"] = err.get("msg", "invalid")
        return error_response(request, 422, "invalid request: see errors by field", errors)

    app.include_router(api.router)
    app.include_router(pages.router)
    return app


def configure_logging(level: str = "warning") -> None:
    """Log the web app's events (authentication failures, server errors, slow requests) to
    stderr at ``level`` (``cartrial serve --log-level``)."""
    logging.basicConfig(
        level=level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    logging.getLogger("cartrial").setLevel(level.upper())


def app_from_env() -> FastAPI:
    """The app on ``$CARTRIAL_DB``, already migrated (``cartrial serve --workers N``)."""
    configure_logging(os.environ.get("CARTRIAL_LOG_LEVEL", "warning"))
    return create_app(os.environ.get("CARTRIAL_DB"), migrate=False)
