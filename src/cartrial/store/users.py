"""Users, roles and passwords (argon2id via argon2-cffi).

Roles (least privilege):
* ``admin`` — everything, all sites, user management;
* ``data_entry`` — reads and writes the patients of their own site only;
* ``monitor`` — reads all sites, locks records after source-data verification,
  exports the audit trail; changes no clinical data;
* ``statistician`` — reads all sites, exports the cohort, builds the report;
* ``investigator`` — reads their own site, signs locked records (password re-entered).
"""

from __future__ import annotations

import datetime as dt
import os
import re
import secrets
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from cartrial.store import chain
from cartrial.store.models import ROLES, AuditEntry, Site, User, utcnow
from cartrial.store.validation import site_problem, username_problem

#: OWASP ASVS 4.0 §2.1.1: at least 12 characters; §2.1.7: refuse common/breached passwords
MIN_PASSWORD = 12
#: OWASP ASVS 4.0 §2.2.1 (anti-automation): failed log-ins counted over this window ...
FAIL_WINDOW = dt.timedelta(minutes=15)
#: ... refuse an account after this many failures in the window (until the window passes)
MAX_FAILS_ACCOUNT = 5
#: ... and an address after this many failures (any account) in the window
MAX_FAILS_ADDRESS = 20
#: the words behind most leaked passwords (the top of the public breach lists: SecLists
#: "10-million-password-list-top-1000", NCSC "100k most common"); a password that is one
#: of them once digits and symbols are removed is refused
COMMON_WORDS = frozenset(
    """
password passwort passw0rd pass qwerty qwertz azerty asdf asdfgh zxcvbn qazwsx letmein
welcome admin administrator root login master monkey dragon football baseball soccer
hockey iloveyou sunshine shadow superman batman princess starwars trustno michael
charlie jennifer jordan hunter ranger buster thomas tigger robert daniel jessica
computer internet secret changeme default hello abc abcd abcdef test tester guest
user cartrial trial hospital clinic doctor nurse patient summer winter spring autumn
freedom whatever mustang access flower killer pepper ginger cookie cheese matrix
""".split()
)
_LEET = str.maketrans({"0": "o", "1": "i", "3": "e", "4": "a", "@": "a", "$": "s", "5": "s"})
_COMMON_RUN = re.compile("(?:" + "|".join(sorted(COMMON_WORDS, key=len, reverse=True)) + ")+")

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
    must_change_password: bool = False

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

    @property
    def can_query(self) -> bool:
        """Raise and close data queries (the monitor's side)."""
        return self.role in ("admin", "monitor")

    @property
    def can_sign(self) -> bool:
        """Sign locked records (the site's investigator)."""
        return self.role in ("admin", "investigator")

    def sees_site(self, site: str | None) -> bool:
        return self.all_sites or (site is not None and site == self.site)


def principal(user: User) -> Principal:
    return Principal(user.id, user.username, user.role, user.site, bool(user.must_change_password))


def ensure_site(session: Session, code: str, name: str | None = None) -> Site:
    """The site ``code``, created if new."""
    site = session.get(Site, code)
    if site is None:
        site = Site(code=code, name=name or code)
        session.add(site)
        session.flush()
    return site


def password_problem(password: str, username: str = "") -> str | None:
    """None when ``password`` meets the policy, else why not (OWASP ASVS 4.0 §2.1).

    At least 12 characters, at most 200; not the user name; not a common password (a
    word from the breach lists' top, with or without digits and symbols around it); not
    one repeated character or a plain keyboard/number run. The list is offline: no
    breached-password service is queried.
    """
    if len(password) < MIN_PASSWORD:
        return f"the password needs at least {MIN_PASSWORD} characters"
    if len(password) > 200:
        return "the password may have at most 200 characters"
    low = password.lower()
    if username and username.lower() in low:
        return "the password must not contain the user name"
    core = re.sub(r"^[^a-z]+|[^a-z]+$", "", low)  # digits and symbols around a word
    core = re.sub(r"[^a-z]+", "", core.translate(_LEET))
    if not core or core in COMMON_WORDS or _COMMON_RUN.fullmatch(core):
        return "this is a common password (found in breach lists): choose another"
    if len(set(low)) < 4:
        return "the password uses too few different characters"
    return None


def create_user(
    session: Session,
    username: str,
    password: str,
    role: str,
    site: str | None = None,
    must_change_password: bool = False,
) -> User:
    """Add a user; ``data_entry`` users need a site. Raises ValueError on bad input."""
    if role not in ROLES:
        raise ValueError(f"role {role!r} is not one of {', '.join(ROLES)}")
    if role in ("data_entry", "investigator") and not site:
        raise ValueError(f"a {role} user needs a site")
    problem = username_problem(username) or password_problem(password, username)
    if site:
        problem = problem or site_problem(site)
    if problem:
        raise ValueError(problem)
    if session.scalar(select(User).where(User.username == username)) is not None:
        raise ValueError(f"user {username!r} already exists")
    if site:
        ensure_site(session, site)
    user = User(
        username=username,
        password_hash=hash_password(password),
        role=role,
        site=site,
        must_change_password=must_change_password,
    )
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
    password = given or generate_password()
    session.info.setdefault("user", "system")
    # a generated password is shown once on the console: it must be changed at first log-in
    create_user(session, "admin", password, "admin", must_change_password=not given)
    return None if given else password


def generate_password() -> str:
    """A random password that meets the policy (for first runs and admin resets)."""
    while True:
        candidate = secrets.token_urlsafe(15)
        if password_problem(candidate) is None:
            return candidate


def authenticate(session: Session, username: str, password: str) -> User | None:
    """The active user with these credentials, or None (no throttle, no log: see
    ``log_in`` for the interactive log-in)."""
    user = session.scalar(select(User).where(User.username == username))
    if user is None or not user.active:
        hash_password("timing-equaliser")  # do not reveal which usernames exist
        return None
    return user if verify_password(user.password_hash, password) else None


def _failures(
    session: Session, since: dt.datetime, *, username: str | None = None, address: str | None = None
) -> int:
    q = (
        select(func.count())
        .select_from(AuditEntry)
        .where(AuditEntry.action == "login_failed", AuditEntry.at >= since)
    )
    if username is not None:
        last_ok = session.scalar(
            select(func.max(AuditEntry.id)).where(
                AuditEntry.username == username, AuditEntry.action == "login"
            )
        )
        q = q.where(AuditEntry.username == username)
        if last_ok is not None:
            q = q.where(AuditEntry.id > last_ok)
    if address is not None:
        q = q.where(AuditEntry.table_name == "login", AuditEntry.record_id == address)
    return int(session.scalar(q) or 0)


def log_event(
    session: Session, action: str, username: str, address: str, detail: str | None = None
) -> None:
    """Append a log-in event (login, login_failed, login_refused, logout …) to the audit
    trail, in the session's transaction (the caller commits)."""
    chain.append(
        session.connection(),
        [
            {
                "at": utcnow(),
                "username": username[:80],
                "action": action,
                "table_name": "login",
                "record_id": address[:80],
                "patient_id": None,
                "old_values": None,
                "new_values": None,
                "reason": detail,
            }
        ],
    )


class LoginRefused(ValueError):
    """Too many failed log-ins for this account or address: try again later."""


def log_in(session: Session, username: str, password: str, address: str) -> User | None:
    """Interactive log-in with throttling and an audit record of every attempt.

    OWASP ASVS 4.0 §2.2.1: after ``MAX_FAILS_ACCOUNT`` failures for an account, or
    ``MAX_FAILS_ADDRESS`` from an address, within ``FAIL_WINDOW``, attempts are refused
    (even with the right password) until the window has passed; §7.2.1/§7.1.3 log-in
    events are logged. Returns the user, or None for wrong credentials; raises
    LoginRefused when throttled. Commits the event.
    """
    username = username[:80]
    since = utcnow() - FAIL_WINDOW
    if (
        _failures(session, since, username=username) >= MAX_FAILS_ACCOUNT
        or _failures(session, since, address=address) >= MAX_FAILS_ADDRESS
    ):
        log_event(session, "login_refused", username, address, "too many failed log-ins")
        session.commit()
        raise LoginRefused(
            "too many failed log-ins: wait 15 minutes and try again, or ask an administrator"
        )
    user = session.scalar(select(User).where(User.username == username))
    session.rollback()  # no connection held during the (deliberately slow) argon2 check
    if user is None or not user.active:
        hash_password("timing-equaliser")  # do not reveal which usernames exist
        user = None
    elif not verify_password(user.password_hash, password):
        user = None
    log_event(session, "login" if user is not None else "login_failed", username, address)
    session.commit()
    return user


def change_password(session: Session, user: User, new_password: str) -> None:
    """Set a new password after the policy check (ValueError otherwise)."""
    problem = password_problem(new_password, user.username)
    if problem:
        raise ValueError(problem)
    if verify_password(user.password_hash, new_password):
        raise ValueError("the new password must differ from the current one")
    user.password_hash = hash_password(new_password)
    user.must_change_password = False
