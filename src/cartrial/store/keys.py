"""Keys kept outside the database: the session-cookie secret and the audit-chain key.

Whoever can read the database must not be able to forge a session or re-sign the audit
trail, so both keys live in the environment or in 0600 files beside it, never in it.
"""

from __future__ import annotations

import os
import secrets
import stat
from pathlib import Path

from sqlalchemy.engine import make_url

from cartrial.store.errors import DatabaseError, KeyMissing


def _key_file(url: str, name: str, file_env: str) -> Path:
    """Where a key lives when no environment variable gives it: ``$<file_env>``; else
    beside ``$CARTRIAL_SECRET_FILE``; else beside a SQLite database file; else
    ``~/.config/cartrial/``. Never inside the database."""
    given = os.environ.get(file_env)
    if given:
        return Path(given).expanduser()
    secret_file = os.environ.get("CARTRIAL_SECRET_FILE")
    if secret_file and file_env != "CARTRIAL_SECRET_FILE":
        return Path(f"{Path(secret_file).expanduser()}.{name}")
    u = make_url(url)
    if u.get_backend_name() == "sqlite" and u.database not in (None, "", ":memory:"):
        return Path(f"{u.database}.{name}")
    base = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")
    return base / "cartrial" / name


def _read_key(url: str, name: str, env: str, file_env: str, create: bool) -> str:
    given = os.environ.get(env)
    if given:
        return given
    path = _key_file(url, name, file_env)
    if not path.exists():
        if not create:
            raise KeyMissing(
                f"the {name} is missing: set ${env} or ${file_env}, or put the file {path} "
                "back (mode 0600) — it is kept outside the database on purpose"
            )
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # another process created it first
            pass
        else:
            with os.fdopen(fd, "w") as fh:
                fh.write(secrets.token_urlsafe(48))
    if stat.S_IMODE(path.stat().st_mode) & 0o077:
        raise DatabaseError(f"the {name} file {path} is readable by others: chmod 600 it")
    value = path.read_text().strip()
    if len(value) < 32:
        raise DatabaseError(f"the {name} file {path} holds fewer than 32 characters")
    return value


def secret_key(url: str) -> str:
    """The key that signs session cookies, never stored in the database.

    ``$CARTRIAL_SECRET_KEY`` if set; else the file ``$CARTRIAL_SECRET_FILE``; else, for a
    SQLite database, ``<database file>.secret`` beside it; else
    ``~/.config/cartrial/secret``. A missing file is created with a random key, mode 0600.
    """
    return _read_key(url, "secret", "CARTRIAL_SECRET_KEY", "CARTRIAL_SECRET_FILE", True)


def audit_key(url: str, create: bool = True) -> bytes:
    """The key of the audit trail's HMAC chain (``cartrial.store.chain``), kept where the
    session secret is and never in the database: ``$CARTRIAL_AUDIT_KEY``; else the file
    ``$CARTRIAL_AUDIT_KEY_FILE``; else ``<secret file>.audit-key`` beside
    ``$CARTRIAL_SECRET_FILE``; else ``<database file>.audit-key`` (SQLite) or
    ``~/.config/cartrial/audit-key``. Writers create it (0600) when missing; verification
    (``create=False``) raises ``KeyMissing`` instead, since a new key proves nothing."""
    return _read_key(
        url, "audit-key", "CARTRIAL_AUDIT_KEY", "CARTRIAL_AUDIT_KEY_FILE", create
    ).encode("utf-8")
