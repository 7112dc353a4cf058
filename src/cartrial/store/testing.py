"""Helpers for tests and benchmarks: a throw-away database of either back end.

``scratch_database("sqlite", tmp)`` gives a SQLite file URL; ``scratch_database("postgres")``
creates a unique schema on the local PostgreSQL server (``$CARTRIAL_TEST_PG`` or
postgresql+psycopg://postgres@127.0.0.1:5432/test), yields a URL whose ``search_path`` is
that schema, and drops it afterwards, so parallel tests never see each other's tables.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

PG_URL = os.environ.get("CARTRIAL_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


class PostgresUnavailable(RuntimeError):
    pass


def postgres_reachable(url: str = PG_URL) -> str | None:
    """None if a PostgreSQL server answers at ``url``, else the reason it does not."""
    from sqlalchemy import create_engine, text

    try:
        engine = create_engine(url, connect_args={"connect_timeout": 3})
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        engine.dispose()
    except Exception as exc:
        return f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}"
    return None


@contextmanager
def scratch_database(kind: str, directory: Path | None = None) -> Iterator[str]:
    """Yield the URL of an empty database of ``kind`` ("sqlite" or "postgres")."""
    if kind == "sqlite":
        d = Path(directory) if directory is not None else Path.cwd()
        yield f"sqlite:///{d / f'cartrial-{uuid.uuid4().hex[:8]}.sqlite'}"
        return
    from sqlalchemy import create_engine, text

    reason = postgres_reachable()
    if reason is not None:
        raise PostgresUnavailable(f"PostgreSQL not reachable at 127.0.0.1:5432: {reason}")
    schema = f"cartrial_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(PG_URL)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    sep = "&" if "?" in PG_URL else "?"
    try:
        yield f"{PG_URL}{sep}options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()
