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
import stat
from pathlib import Path

from sqlalchemy import Engine, create_engine, event, inspect
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.orm import Session, sessionmaker

from cartrial.store.audit import AuditedSession
from cartrial.store.errors import DatabaseError, KeyMissing
from cartrial.store.keys import audit_key, secret_key

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
    raw = resolve_url(db)
    try:
        url = make_url(raw)
        backend = url.get_backend_name()
    except (ArgumentError, ValueError) as exc:
        raise DatabaseError(
            f"cannot read the database URL {raw!r}: {exc}; expected a SQLite file path or a "
            "URL such as postgresql+psycopg://user@127.0.0.1:5432/trial"
        ) from None
    if backend not in ("sqlite", "postgresql"):
        raise DatabaseError(
            f"unsupported database {backend!r} in {raw!r}: use a SQLite "
            "file or postgresql+psycopg://…"
        )
    if backend == "sqlite" and url.database not in (None, "", ":memory:"):
        private_file(Path(url.database))
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


def private_file(path: Path) -> None:
    """Create the SQLite file readable by its owner only (0600), or tighten an existing
    one: whoever can read the file can read every patient's data."""
    path = path.expanduser()
    if not path.parent.is_dir():
        raise DatabaseError(f"the folder of the database file {path} does not exist")
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    os.close(fd)
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077 and path.stat().st_uid == os.getuid():
        os.chmod(path, 0o600)


def _transactional_sqlite(engine: Engine) -> Engine:
    """An engine on the same SQLite file whose transactions include DDL.

    pysqlite opens a transaction only before INSERT/UPDATE/DELETE, so each CREATE TABLE
    commits on its own: a migration killed half-way left some tables and an empty
    ``alembic_version``. Here the driver's own transaction handling is off and
    SQLAlchemy emits ``BEGIN IMMEDIATE``, so the whole migration commits or nothing does
    (the SQLAlchemy documentation's "serializable isolation / savepoints / transactional
    DDL" recipe).
    """
    eng = create_engine(engine.url, connect_args={"timeout": 30})

    @event.listens_for(eng, "connect")
    def _connect(dbapi_conn, _record) -> None:  # pragma: no cover - trivial
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA busy_timeout=30000")
        cur.close()

    @event.listens_for(eng, "begin")
    def _begin(conn) -> None:  # pragma: no cover - trivial
        conn.exec_driver_sql("BEGIN IMMEDIATE")

    return eng


def _check_not_half_created(conn) -> None:
    """A clear message for a database left half-created by an older, non-transactional
    first start (tables present, no revision)."""
    from alembic.runtime.migration import MigrationContext

    if MigrationContext.configure(conn).get_current_revision() is not None:
        return
    tables = set(inspect(conn).get_table_names()) - {"alembic_version"}
    if tables:
        raise DatabaseError(
            f"the database has tables ({', '.join(sorted(tables))}) but no migration "
            "revision: it was left half-created by an interrupted first start of an older "
            "cartrial. If it holds no data, delete it (SQLite: remove the file) and start "
            "again; otherwise restore it from the last backup."
        )


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Apply the Alembic migrations up to ``revision`` on ``engine``'s database, all or
    nothing (one transaction, DDL included, on SQLite and PostgreSQL)."""
    from alembic import command
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    memory = engine.url.database in (None, "", ":memory:")
    target = engine
    if engine.dialect.name == "sqlite" and not memory:
        target = _transactional_sqlite(engine)
    try:
        with target.begin() as conn:
            _check_not_half_created(conn)
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, revision)
            if revision == "head":
                from cartrial.store.chain import seal

                seal(conn)  # a key tag on the audit chain's head (pre-key databases)
    finally:
        if target is not engine:
            target.dispose()


def current_revision(engine: Engine) -> str | None:
    """The Alembic revision the database is at (None if never migrated)."""
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def session_factory(engine: Engine) -> sessionmaker[Session]:
    """A sessionmaker whose sessions write the audit trail (see ``cartrial.store.audit``)."""

    return sessionmaker(engine, class_=AuditedSession, expire_on_commit=False)


__all__ = [
    "DatabaseError",
    "KeyMissing",
    "audit_key",
    "secret_key",
    "make_engine",
    "resolve_url",
    "private_file",
    "upgrade",
    "current_revision",
    "session_factory",
]
