"""Engine, sessions and schema migrations of the trial database.

One code path for both back ends: the embedded default is a SQLite file
(``./cartrial.sqlite`` or the env var ``CARTRIAL_DB``, a path or a URL); a
multi-centre installation gives a PostgreSQL URL such as
``postgresql+psycopg://postgres@127.0.0.1:5432/trial``. The schema is created and
upgraded only by Alembic migrations (``cartrial db upgrade``; ``cartrial serve``
upgrades automatically on start).
"""

from __future__ import annotations

import os
from pathlib import Path

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

DEFAULT_SQLITE = "cartrial.sqlite"
MIGRATIONS = Path(__file__).with_name("migrations")


def resolve_url(db: str | None = None) -> str:
    """The database URL: ``db`` if given, else ``$CARTRIAL_DB``, else ./cartrial.sqlite.

    A value without ``://`` is taken as a SQLite file path.
    """
    value = db or os.environ.get("CARTRIAL_DB") or DEFAULT_SQLITE
    if "://" in value:
        return value
    return f"sqlite:///{Path(value).expanduser().resolve()}"


def make_engine(db: str | None = None, **kwargs) -> Engine:
    """Create an engine for ``db`` (see ``resolve_url``) with the settings each back end needs.

    SQLite: foreign keys on, WAL journal (readers do not block the writer), a busy
    timeout so concurrent writers wait instead of failing.
    """
    url = make_url(resolve_url(db))
    # the web app serves requests from a thread pool (40 threads): give it enough
    # connections that concurrent requests queue in the database, not in the pool
    if url.database not in (None, "", ":memory:"):
        kwargs.setdefault("pool_size", 10)
        kwargs.setdefault("max_overflow", 30)
        kwargs.setdefault("pool_timeout", 60)
    if url.get_backend_name() == "sqlite":
        kwargs.setdefault("connect_args", {"check_same_thread": False, "timeout": 30})
        engine = create_engine(url, **kwargs)

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record) -> None:  # pragma: no cover - trivial
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA foreign_keys=ON")
            if url.database not in (None, "", ":memory:"):
                cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        return engine
    kwargs.setdefault("pool_pre_ping", True)
    return create_engine(url, **kwargs)


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Apply the Alembic migrations up to ``revision`` on ``engine``'s database."""
    from alembic import command
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)


def current_revision(engine: Engine) -> str | None:
    """The Alembic revision the database is at (None if never migrated)."""
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def session_factory(engine: Engine) -> sessionmaker[Session]:
    """A sessionmaker whose sessions write the audit trail (see ``cartrial.store.audit``)."""
    from cartrial.store.audit import AuditedSession

    return sessionmaker(engine, class_=AuditedSession, expire_on_commit=False)
