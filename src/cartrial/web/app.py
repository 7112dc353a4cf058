"""The cartrial web app (FastAPI, server-rendered Jinja2 pages + JSON API under /api).

``create_app(db)`` opens the database (SQLite file by default, PostgreSQL by URL),
applies the Alembic migrations, creates the admin account on first run, and mounts
the pages and the API.

Security:
* passwords hashed with argon2id; sessions in a signed cookie (Starlette
  ``SessionMiddleware``/itsdangerous): HttpOnly, SameSite=Lax, ``Secure`` when
  ``https_only`` (``CARTRIAL_HTTPS_ONLY=1``); the signing key is ``$CARTRIAL_SECRET_KEY`` or
  one generated on first run and kept in the database;
* CSRF: a per-session token, required in every form (``csrf_token``) and, for API calls
  authenticated by the session cookie, in the ``X-CSRF-Token`` header of unsafe methods;
* API clients may instead use HTTP Basic authentication (no cookie, no CSRF token);
* data-entry users see their own site only; other sites' patients are "not found".
"""

from __future__ import annotations

import base64
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
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker
from starlette.middleware.sessions import SessionMiddleware

from cartrial.store.database import make_engine, session_factory, upgrade
from cartrial.store.models import Setting, User
from cartrial.store.users import Principal, ensure_admin, principal, verify_password
from cartrial.web.service import ServiceError

HERE = Path(__file__).parent
templates = Jinja2Templates(directory=str(HERE / "templates"))


@dataclass
class AppState:
    engine: Engine
    sessions: sessionmaker[Session]
    https_only: bool
    admin_password: str | None = None
    _basic_cache: dict[tuple[str, str], str] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)


def _secret_key(state_sessions: sessionmaker[Session]) -> str:
    given = os.environ.get("CARTRIAL_SECRET_KEY")
    if given:
        return given
    with state_sessions() as db:
        db.info["user"] = "system"
        row = db.get(Setting, "session_secret")
        if row is None:
            row = Setting(key="session_secret", value=secrets.token_urlsafe(48))
            db.add(row)
            db.commit()
        return row.value


def create_app(
    db: str | None = None,
    *,
    engine: Engine | None = None,
    https_only: bool | None = None,
    migrate: bool = True,
) -> FastAPI:
    """Build the app on database ``db`` (URL or SQLite path; default ./cartrial.sqlite)."""
    engine = engine or make_engine(db)
    if migrate:
        upgrade(engine)
    sessions = session_factory(engine)
    with sessions() as s:
        admin_password = ensure_admin(s)
        s.commit()
    if https_only is None:
        https_only = os.environ.get("CARTRIAL_HTTPS_ONLY", "") in ("1", "true", "yes")
    state = AppState(engine, sessions, https_only, admin_password)
    app = FastAPI(
        title="cartrial",
        version="0.1.0",
        description="CAR-T trial data entry, bedside grading (reference only) and reports. "
        "Authenticate with HTTP Basic, or with the session cookie from POST /api/session "
        "plus its CSRF token in the X-CSRF-Token header for POST/PATCH/DELETE.",
    )
    app.state.cartrial = state
    app.add_middleware(
        SessionMiddleware,
        secret_key=_secret_key(sessions),
        session_cookie="cartrial_session",
        max_age=8 * 3600,
        same_site="lax",
        https_only=https_only,
    )
    app.mount("/static", StaticFiles(directory=str(HERE / "static")), name="static")

    @app.exception_handler(ServiceError)
    async def _service_error(request: Request, exc: ServiceError):
        return JSONResponse({"detail": exc.message, "errors": exc.errors}, status_code=exc.status)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError):
        errors = {}
        for err in exc.errors():
            loc = [str(p) for p in err.get("loc", ()) if p != "body"]
            errors[".".join(loc) or "body"] = err.get("msg", "invalid")
        return JSONResponse(
            {"detail": "invalid request: see errors by field", "errors": errors},
            status_code=422,
        )

    from cartrial.web import api, pages

    app.include_router(api.router)
    app.include_router(pages.router)
    return app


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


def session_user(request: Request, db: Session) -> Principal | None:
    """The user of the session cookie, if logged in and still active."""
    uid = request.session.get("uid")
    if uid is None:
        return None
    user = db.get(User, uid)
    if user is None or not user.active:
        request.session.clear()
        return None
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
    if user is None or not user.active:
        raise _unauthorized("wrong username or password")
    st = state_of(request)
    key = (username, hashlib.sha256(password.encode()).hexdigest())
    if st._basic_cache.get(key) != user.password_hash:
        if not verify_password(user.password_hash, password):
            raise _unauthorized("wrong username or password")
        with st._lock:
            if len(st._basic_cache) > 1000:
                st._basic_cache.clear()
            st._basic_cache[key] = user.password_hash
    return principal(user)


def _unauthorized(message: str) -> HTTPException:
    return HTTPException(401, message, headers={"WWW-Authenticate": 'Basic realm="cartrial"'})


def api_user(request: Request, db: Session) -> Principal:
    """API authentication: HTTP Basic, or the session cookie plus X-CSRF-Token on writes."""
    who = basic_user(request, db)
    if who is not None:
        return who
    who = session_user(request, db)
    if who is None:
        raise _unauthorized("log in first (HTTP Basic or POST /api/session)")
    if request.method not in ("GET", "HEAD", "OPTIONS"):
        check_csrf(request, request.headers.get("x-csrf-token"))
    return who


def page_context(request: Request, who: Principal | None, **extra: Any) -> dict[str, Any]:
    return {"request": request, "user": who, "csrf": csrf_token(request), **extra}


def login_redirect() -> RedirectResponse:
    return RedirectResponse("/login", status_code=303)
