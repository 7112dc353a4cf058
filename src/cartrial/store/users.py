"""Users, roles and passwords (argon2id via argon2-cffi).

Roles (least privilege):
* ``admin`` — everything, all sites, user management;
* ``data_entry`` — reads and writes the patients of their own site only;
* ``monitor`` — reads all sites, locks records after source-data verification,
  exports the audit trail; changes no clinical data;
* ``statistician`` — reads all sites, exports the cohort, builds the report.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from cartrial.store.models import ROLES, Site, User

_HASHER = None


def _hasher():
    global _HASHER
    if _HASHER is None:
        from argon2 import PasswordHasher

        _HASHER = PasswordHasher()
    return _HASHER


def hash_password(password: str) -> str:
    """Argon2id hash of ``password``."""
    return _hasher().hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    """True when ``password`` matches ``password_hash``."""
    from argon2.exceptions import InvalidHashError, VerificationError

    try:
        return _hasher().verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


@dataclass(frozen=True)
class Principal:
    """The logged-in user as the app sees it (no ORM object crosses requests)."""

    id: int
    username: str
    role: str
    site: str | None

    @property
    def all_sites(self) -> bool:
        return self.role in ("admin", "monitor", "statistician")

    @property
    def can_write(self) -> bool:
        return self.role in ("admin", "data_entry")

    @property
    def can_lock(self) -> bool:
        return self.role in ("admin", "monitor")

    @property
    def can_report(self) -> bool:
        return self.role in ("admin", "statistician")

    @property
    def can_audit(self) -> bool:
        return self.role in ("admin", "monitor")

    def sees_site(self, site: str | None) -> bool:
        return self.all_sites or (site is not None and site == self.site)


def principal(user: User) -> Principal:
    return Principal(user.id, user.username, user.role, user.site)


def ensure_site(session: Session, code: str, name: str | None = None) -> Site:
    """The site ``code``, created if new."""
    site = session.get(Site, code)
    if site is None:
        site = Site(code=code, name=name or code)
        session.add(site)
        session.flush()
    return site


def create_user(
    session: Session, username: str, password: str, role: str, site: str | None = None
) -> User:
    """Add a user; ``data_entry`` users need a site. Raises ValueError on bad input."""
    if role not in ROLES:
        raise ValueError(f"role {role!r} is not one of {', '.join(ROLES)}")
    if role == "data_entry" and not site:
        raise ValueError("a data_entry user needs a site")
    if not username or len(username) > 80:
        raise ValueError("username must be 1-80 characters")
    if len(password) < 8:
        raise ValueError("password must have at least 8 characters")
    if session.scalar(select(User).where(User.username == username)) is not None:
        raise ValueError(f"user {username!r} already exists")
    if site:
        ensure_site(session, site)
    user = User(username=username, password_hash=hash_password(password), role=role, site=site)
    session.add(user)
    session.flush()
    return user


def ensure_admin(session: Session) -> str | None:
    """Create the ``admin`` account on first run.

    The password is ``$CARTRIAL_ADMIN_PASSWORD`` if set; otherwise one is generated
    and returned so that the caller prints it once. Returns None if an admin exists
    or the password came from the environment.
    """
    if session.scalar(select(User).where(User.role == "admin")) is not None:
        return None
    given = os.environ.get("CARTRIAL_ADMIN_PASSWORD")
    password = given or secrets.token_urlsafe(12)
    session.info.setdefault("user", "system")
    create_user(session, "admin", password, "admin")
    return None if given else password


def authenticate(session: Session, username: str, password: str) -> User | None:
    """The active user with these credentials, or None."""
    user = session.scalar(select(User).where(User.username == username))
    if user is None or not user.active:
        hash_password("timing-equaliser")  # do not reveal which usernames exist
        return None
    return user if verify_password(user.password_hash, password) else None
