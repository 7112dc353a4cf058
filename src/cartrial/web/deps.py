"""What every route of the web app depends on: the database session of a request, the
logged-in user (session cookie or HTTP Basic), CSRF tokens, the templates and the error
page. The app (``cartrial.web.app``) and its routers (``api``, ``pages``) import from
here, never from each other.

Sessions are server-side (table ``web_sessions``): the signed cookie carries a random
token whose SHA-256 the database keeps; log-out deletes it, 30 minutes idle or 8 hours
after log-in end it (OWASP ASVS 4.0 §3.3).
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import logging
import secrets
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from sqlalchemy import Engine, delete, select
from sqlalchemy.orm import Session, sessionmaker

import cartrial
from cartrial.cohort import labels as _labels
from cartrial.store.models import User, WebSession, utcnow
from cartrial.store.users import LoginRefused, Principal, log_in, principal
from cartrial.web.forms import TABLE_LABELS

HERE = Path(__file__).parent
log = logging.getLogger("cartrial.web")


def app_version() -> str:
    """The installed cartrial version (``cartrial.__version__``: the package metadata, one
    truth declared in ``pyproject.toml``)."""
    return cartrial.__version__


def word(value: Any) -> str:
    """Display text of a vocabulary word (analytes and units included); blank for none."""
    if value is None or value == "":
        return ""
    return _labels.ANALYTE_VALUES.get(str(value)) or _labels.value_label(value)


def ae_term(value: Any) -> str:
    return "" if value is None or value == "" else _labels.ae_term_label(str(value))


def label_of(column: Any) -> str:
    """Display label of a column or field (with its unit)."""
    return _labels.label(str(column))


def table_label(table: Any) -> str:

    return TABLE_LABELS.get(str(table)) or _labels.value_label(str(table))


def shown(value: Any) -> str:
    """A stored value as the audit trail and field histories show it."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "Yes" if value else "No"
    if isinstance(value, dict):
        return "; ".join(f"{label_of(k)}: {shown(v)}" for k, v in value.items())
    if isinstance(value, list | tuple):
        return "; ".join(shown(v) for v in value)
    if isinstance(value, float):
        return f"{value:g}"
    return word(value)


templates = Jinja2Templates(directory=str(HERE / "templates"))
templates.env.auto_reload = False  # compiled once per process, no stat() per render
templates.env.globals["app_version"] = app_version
# labels of columns and vocabulary words, from the one registry (``cartrial.cohort.labels``):
# no raw code (``new_donor``, ``data_entry``) reaches a page
templates.env.filters["label"] = label_of
templates.env.filters["word"] = word
templates.env.filters["ae_term"] = ae_term
templates.env.filters["table"] = table_label
templates.env.filters["shown"] = shown
#: a session ends after this long without a request (OWASP ASVS 4.0 §3.3.2) ...
IDLE_TIMEOUT = dt.timedelta(minutes=30)
#: ... and this long after log-in, whatever happens
ABSOLUTE_TIMEOUT = dt.timedelta(hours=8)
#: ``last_seen`` is written at most this often (not on every request)
TOUCH_EVERY = dt.timedelta(seconds=60)


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
    pages: Any = None  # cartrial.web.pagecache.PageCache
    _basic_cache: dict[tuple[str, str], str] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)


def state_of(request: Request) -> AppState:
    return request.app.state.cartrial


def get_db(request: Request) -> Iterator[Session]:
    """FastAPI dependency: a database session for one request, closed afterwards."""
    db = state_of(request).sessions()
    try:
        yield db
    finally:
        db.close()


Db = Annotated[Session, Depends(get_db)]


# -- CSRF -------------------------------------------------------------------------------------


def csrf_token(request: Request) -> str:
    token = request.session.get("csrf")
    if not token:
        token = request.session["csrf"] = secrets.token_urlsafe(32)
    return token


def check_csrf(request: Request, token: str | None) -> None:
    expected = request.session.get("csrf")
    if not expected or not token or not secrets.compare_digest(str(token), expected):
        log.warning(
            "CSRF token refused: %s %s from %s",
            request.method,
            request.url.path,
            client_address(request),
        )
        raise HTTPException(403, "missing or invalid CSRF token: reload the page and try again")


# -- sessions -----------------------------------------------------------------------------------


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def start_session(request: Request, db: Session, user: User) -> None:
    """A new server-side session for ``user`` (fresh cookie content and CSRF token)."""
    request.session.clear()
    forget_session_user(request)
    token = secrets.token_urlsafe(32)
    now = utcnow()
    db.add(
        WebSession(token_hash=_token_hash(token), user_id=user.id, created_at=now, last_seen=now)
    )
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
    forget_session_user(request)


def session_user(request: Request, db: Session) -> Principal | None:
    """The user of the session cookie, if the server-side session is alive and the user
    still active; an idle or expired session is deleted. One query (session joined with
    its user), memoised for the rest of the request."""
    cached = request.scope.get("cartrial.session_user", False)
    if cached is not False:
        return cached
    token = request.session.get("sid")
    if not token or not isinstance(token, str):
        return None
    found = db.execute(
        select(WebSession, User)
        .join(User, User.id == WebSession.user_id)
        .where(WebSession.token_hash == _token_hash(token))
    ).first()
    now = utcnow()
    who: Principal | None = None
    if found is None:
        request.session.clear()
    else:
        row, user = found
        if now - row.last_seen > IDLE_TIMEOUT or now - row.created_at > ABSOLUTE_TIMEOUT:
            end_session(request, db)
        elif not user.active:
            end_session(request, db)
        else:
            if now - row.last_seen > TOUCH_EVERY:
                row.last_seen = now
                db.commit()
            who = principal(user)
    request.scope["cartrial.session_user"] = who
    return who


def forget_session_user(request: Request) -> None:
    """Drop the memoised user of this request (after log-in, log-out or a role change)."""
    request.scope.pop("cartrial.session_user", None)


def _unauthorized(message: str) -> HTTPException:
    return HTTPException(401, message, headers={"WWW-Authenticate": 'Basic realm="cartrial"'})


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
        log.warning("malformed Basic credentials from %s", client_address(request))
        raise _unauthorized("malformed Basic credentials") from None
    user = db.scalar(select(User).where(User.username == username))
    st = state_of(request)
    key = (username, hashlib.sha256(password.encode()).hexdigest())
    if user is None or not user.active or st._basic_cache.get(key) != user.password_hash:
        try:
            checked = log_in(db, username, password, client_address(request))
        except LoginRefused as exc:
            log.warning(
                "Basic log-in throttled for %r from %s", username[:80], client_address(request)
            )
            raise HTTPException(429, str(exc)) from None
        if checked is None:
            log.warning(
                "Basic log-in failed for %r from %s", username[:80], client_address(request)
            )
            raise _unauthorized("wrong username or password")
        user = checked  # the same row, now known to be an active user with this password
        with st._lock:
            if len(st._basic_cache) > 1000:
                st._basic_cache.clear()
            st._basic_cache[key] = user.password_hash
    return principal(user)


def api_user(request: Request, db: Session) -> Principal:
    """API authentication: HTTP Basic, or the session cookie plus X-CSRF-Token on writes."""
    who = basic_user(request, db)
    if who is None:
        who = session_user(request, db)
        if who is None:
            raise _unauthorized("log in first (HTTP Basic or POST /api/session)")
    if who.must_change_password and request.url.path != "/api/session/password":
        raise HTTPException(
            403, "change your password first (PUT /api/session/password or the Account page)"
        )
    if request.headers.get("authorization", "").lower().startswith("basic "):
        return who
    if request.method not in ("GET", "HEAD", "OPTIONS"):
        check_csrf(request, request.headers.get("x-csrf-token"))
    return who


def get_api_user(request: Request, db: Db) -> Principal:
    """FastAPI dependency of the API routes: the authenticated user (401 without one)."""
    who = api_user(request, db)
    db.info["user"] = who.username
    return who


def optional_page_user(request: Request, db: Session) -> Principal | None:
    """The logged-in user of a page, or None; a user who must change their password is
    sent to the password page (``MustChangePassword``)."""
    who = session_user(request, db)
    if who is not None:
        db.info["user"] = who.username
        request.state.user = who
        if who.must_change_password and request.url.path != "/account/password":
            raise MustChangePassword
    return who


def page_user(request: Request, db: Db) -> Principal:
    """FastAPI dependency of the pages: the logged-in user; without one the app redirects
    to the login page (``LoginRequired``, handled in ``cartrial.web.app``)."""
    who = optional_page_user(request, db)
    if who is None:
        raise LoginRequired
    return who


ApiUser = Annotated[Principal, Depends(get_api_user)]
PageUser = Annotated[Principal, Depends(page_user)]


# -- pages and errors ---------------------------------------------------------------------------


def page_context(request: Request, who: Principal | None, **extra: Any) -> dict[str, Any]:
    return {"request": request, "user": who, "csrf": csrf_token(request), **extra}


def login_redirect() -> RedirectResponse:
    return RedirectResponse("/login", status_code=303)


def error_response(
    request: Request,
    status: int,
    message: str,
    errors: dict[str, str] | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    """JSON ``{"detail", "errors"}`` under /api, an HTML error page elsewhere (with the
    navigation of the logged-in user when the request got that far)."""
    if request.url.path.startswith("/api"):
        return JSONResponse(
            {"detail": message, "errors": errors or {}}, status_code=status, headers=headers
        )
    ctx = {
        "request": request,
        "user": getattr(request.state, "user", None),
        "csrf": request.scope.get("session", {}).get("csrf", ""),
        "message": message,
        "status": status,
    }
    return templates.TemplateResponse(
        request, "error.html", ctx, status_code=status, headers=headers
    )
