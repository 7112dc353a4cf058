"""Moving a ``Cohort`` into and out of the database.

``import_cohort`` writes every row of a validated cohort in ONE transaction: either
the whole cohort is stored or nothing changes (a failed or killed import leaves the
database as it was). ``read_cohort`` reads the tables back and passes them through
``cartrial.cohort.cohort_from_frames`` — the same validation path as a file load —
so the web app, the report and ``cartrial db export`` all see an ordinary Cohort. It reads
all tables in ONE read-only transaction (a consistent snapshot, ``snapshot``), column-wise;
``cohort_from_url`` does the same from a database URL.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import pandas as pd
from sqlalchemy import Connection, Engine, insert, select

from cartrial.cohort import cohort_from_frames
from cartrial.cohort.model import COLUMNS, PROVENANCE, TABLES
from cartrial.store import chain
from cartrial.store.database import DatabaseError, make_engine, resolve_url
from cartrial.store.models import COHORT_MODELS, Patient, Site, utcnow
from cartrial.store.tables import table_of
from cartrial.store.validation import IDENTIFYING, site_problem

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

    from cartrial.cohort.model import Cohort

CHUNK = 5000


class ImportRefused(ValueError):
    """The cohort cannot be imported into this database (nothing was written)."""


def _py(value: Any) -> Any:
    """A plain Python value for the database/JSON (NA -> None, Timestamp -> date)."""
    if value is None:
        return None
    if value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, pd.Timestamp):
        return value.date() if value == value.normalize() else value.isoformat()
    if isinstance(value, float) and math.isnan(value):
        return None
    if hasattr(value, "item") and not isinstance(value, str | bytes):
        return value.item()
    return value


def _json_value(value: Any) -> Any:
    value = _py(value)
    if isinstance(value, dt.date | dt.datetime):
        return value.isoformat()
    return value


def frame_rows(table: str, frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows of one cohort table as dicts for the database (extras in ``extra``)."""
    stored = set(table_of(COHORT_MODELS[table]).c.keys())
    # canonical columns the schema has no column for yet are kept in ``extra``
    cols = {c: k for c, k in COLUMNS[table].items() if c in stored}
    if table == "observations":
        cols["value_text"] = "str"
    extras = [c for c in frame.columns if c not in cols and c not in PROVENANCE]
    known = [c for c in cols if c in frame.columns]
    records = frame.astype(object).to_dict("records")
    rows = []
    for rec in records:
        row = {c: _py(rec[c]) for c in known}
        if cols.get("infusion_date") and isinstance(row.get("infusion_date"), str):
            row["infusion_date"] = dt.date.fromisoformat(row["infusion_date"][:10])
        if extras:
            row["extra"] = {c: _json_value(rec[c]) for c in extras}
        for p in PROVENANCE:
            if p in rec:
                row[p] = _py(rec[p])
        rows.append(row)
    return rows


def _chunks(rows: list[dict[str, Any]]) -> Iterator[list[dict[str, Any]]]:
    for start in range(0, len(rows), CHUNK):
        yield rows[start : start + CHUNK]


def import_cohort(
    engine: Engine,
    cohort: Cohort,
    user: str = "cli",
    progress: Callable[[str, int], None] | None = None,
) -> dict[str, int]:
    """Write ``cohort`` into the database in one transaction; returns row counts per table.

    Refuses (ImportRefused, nothing written) a cohort whose patient IDs already exist or
    that carries identifying columns (names, birth dates). ``progress(table, n_rows)`` is
    called after each chunk (used by the crash-safety test).
    """
    # a wide cohort (one row per patient) is stored as the four tables it was read into
    for name in TABLES:
        bad = [c for c in cohort.table(name).columns if str(c).lower() in IDENTIFYING]
        if bad:
            raise ImportRefused(
                f"{name} has identifying column(s) {', '.join(bad)}: the trial database "
                "stores study IDs only; remove them before importing"
            )
    rows = {name: frame_rows(name, cohort.table(name)) for name in TABLES}
    ids = [r["patient_id"] for r in rows["patients"]]
    bad_sites = sorted(
        {
            str(r["site"])
            for r in rows["patients"]
            if r.get("site") is not None and site_problem(r["site"])
        }
    )
    if bad_sites:
        raise ImportRefused(
            f"patients.site: {site_problem(bad_sites[0])} "
            f"({len(bad_sites)} such code(s): {', '.join(bad_sites[:5])}); "
            "nothing was imported"
        )
    counts: dict[str, int] = {}
    with engine.begin() as conn:
        existing = set()
        for chunk in _chunks([{"id": i} for i in ids]):
            existing |= set(
                conn.scalars(
                    select(Patient.patient_id).where(
                        Patient.patient_id.in_([c["id"] for c in chunk])
                    )
                )
            )
        if existing:
            shown = ", ".join(sorted(existing)[:10])
            raise ImportRefused(
                f"{len(existing)} patient ID(s) already in the database ({shown}); "
                "nothing was imported"
            )
        sites = {r["site"] for r in rows["patients"] if r.get("site") is not None}
        have = set(conn.scalars(select(Site.code)))
        new_sites = [{"code": s, "name": s} for s in sorted(sites - have)]
        if new_sites:
            conn.execute(insert(table_of(Site)), new_sites)
        for name in TABLES:
            table = table_of(COHORT_MODELS[name])
            done = 0
            for chunk in _chunks(rows[name]):
                conn.execute(insert(table), chunk)
                done += len(chunk)
                if progress is not None:
                    progress(name, done)
            counts[name] = done
        now = utcnow()
        per_patient: dict[str, dict[str, int]] = {pid: {t: 0 for t in TABLES[1:]} for pid in ids}
        for name in TABLES[1:]:
            for r in rows[name]:
                if r["patient_id"] in per_patient:
                    per_patient[r["patient_id"]][name] += 1
        audit = [
            {
                "at": now,
                "username": user,
                "action": "import",
                "table_name": "patients",
                "record_id": pid,
                "patient_id": pid,
                "old_values": None,
                "new_values": {
                    "source": str(cohort.source),
                    "sha256": cohort.input_sha256,
                    **per_patient[pid],
                },
                "reason": None,
            }
            for pid in ids
        ]
        chain.append(conn, audit)
    return counts


def _dbapi(conn: Connection) -> Any:
    """The driver's own connection under ``conn`` (an error if it was invalidated)."""
    dbapi = conn.connection.driver_connection
    if dbapi is None:
        raise DatabaseError("the database connection was closed or invalidated")
    return dbapi


@contextmanager
def snapshot(engine: Engine) -> Iterator[Connection]:
    """A read-only connection whose statements all see ONE consistent snapshot.

    PostgreSQL: a ``REPEATABLE READ READ ONLY`` transaction (the snapshot is taken at the
    first query; writes are refused by the server). SQLite: ``PRAGMA query_only`` plus one
    deferred ``BEGIN`` (the read transaction starts at the first SELECT; in WAL mode
    writers go on committing, the reader keeps its snapshot). Always rolled back.
    """
    if engine.dialect.name == "postgresql":
        with engine.connect() as conn:
            conn.execution_options(isolation_level="REPEATABLE READ", postgresql_readonly=True)
            conn.begin()
            try:
                yield conn
            finally:
                conn.rollback()
        return
    with engine.connect() as conn:
        dbapi = _dbapi(conn)
        if dbapi.in_transaction:  # pragma: no cover - a fresh pooled connection never is
            dbapi.rollback()
        dbapi.execute("PRAGMA query_only=ON")
        try:
            # pysqlite opens transactions only before writes: begin the read one ourselves
            dbapi.execute("BEGIN DEFERRED")
            try:
                yield conn
            finally:
                dbapi.rollback()
        finally:
            dbapi.execute("PRAGMA query_only=OFF")


def read_frames(
    engine: Engine, between: Callable[[str], None] | None = None
) -> dict[str, pd.DataFrame]:
    """The four cohort tables as DataFrames with canonical columns, then extras.

    All tables are read inside one read-only snapshot (``snapshot``), column-wise (one
    Core SELECT per table, rows transposed to columns; no ORM objects). Rows keep
    insertion order (primary key); extra columns keep first-seen order. Provenance
    columns (``source_file``/``source_row``) are not read: ``cohort_from_frames`` numbers
    rows as in a CSV of the database. ``between(table)`` is called after each table is
    read (used by the snapshot test).
    """
    frames: dict[str, pd.DataFrame] = {}
    with snapshot(engine) as conn:
        for name in TABLES:
            frames[name] = _read_table(conn, name)
            if between is not None:
                between(name)
    return frames


def _read_table(conn: Connection, name: str) -> pd.DataFrame:
    import pandas as pd

    table = table_of(COHORT_MODELS[name])
    cols = [c for c in COLUMNS[name] if c in table.c] + (
        ["value_text"] if name == "observations" else []
    )
    # the JSON ``extra`` column is decoded only for rows that have one
    stmt = select(*[table.c[c] for c in cols], table.c.extra.is_not(None)).order_by(table.c.id)
    columns = _driver_columns(conn, stmt, len(cols) + 1)
    kinds = {**COLUMNS[name], "value_text": "str"}
    frame = pd.DataFrame({c: _typed(list(columns[i]), kinds[c]) for i, c in enumerate(cols)})
    if name == "observations":
        frame = _merge_value_text(frame)
    if any(columns[-1]):
        extras = [e or {} for e in conn.scalars(select(table.c.extra).order_by(table.c.id))]
        order: dict[str, None] = {}
        for e in extras:
            for k in e:
                order.setdefault(k, None)
        for k in order:
            frame[k] = pd.Series([e.get(k) for e in extras], dtype=object).infer_objects()
    return frame


def _driver_columns(conn: Connection, stmt: Any, n: int) -> list[tuple[Any, ...]]:
    """The result of ``stmt`` (no parameters) as ``n`` column tuples, fetched by the
    driver's own cursor on ``conn`` (same transaction): no SQLAlchemy Row per row, values
    as the driver gives them (SQLite: ISO text dates, 0/1 booleans; ``_typed`` converts)."""
    sql = str(stmt.compile(dialect=conn.dialect))
    cur = _dbapi(conn).cursor()
    try:
        cur.execute(sql)
        rows = cur.fetchall()
    finally:
        cur.close()
    return list(zip(*rows, strict=True)) if rows else [() for _ in range(n)]


def _merge_value_text(frame: pd.DataFrame) -> pd.DataFrame:
    """Put words of categorical analytes back into ``value`` (as a CSV holds them)."""
    import pandas as pd

    text = pd.Series(
        ["" if v != v else repr(v) for v in frame["value"].tolist()],
        index=frame.index,
        dtype="string",
    )
    words = frame.pop("value_text")
    frame["value"] = text.where(words.isna(), words).astype("string")
    return frame


def _typed(values: list[Any], kind: str):
    import pandas as pd

    if kind == "str":
        return pd.Series(values, dtype="string")
    if kind == "float":
        import numpy as np

        return pd.Series(np.array(values, dtype="float64"))  # None -> NaN
    if kind == "Int64":
        return pd.Series(values, dtype="Int64")
    if kind == "bool":
        return pd.Series(values, dtype="boolean")
    return pd.to_datetime(pd.Series(values, dtype=object))


def read_cohort(
    engine: Engine, source: str | None = None, between: Callable[[str], None] | None = None
) -> Cohort:
    """The database's cohort (one read-only snapshot, see ``read_frames``), validated by
    ``cartrial.cohort.cohort_from_frames``."""

    frames = read_frames(engine, between)
    src = source or f"database {engine.url.render_as_string(hide_password=True)}"
    return cohort_from_frames(
        frames["patients"],
        frames["events"],
        frames["adverse_events"],
        frames["observations"],
        source=src,
    )


def cohort_from_url(url: str) -> Cohort:
    """The cohort stored in the database at ``url`` (``sqlite:///path`` or
    ``postgresql+psycopg://user@host:5432/db``), read in one read-only snapshot.

    The engine is made for this read only and disposed afterwards; no schema migration
    is run (a database without the cohort tables is an error naming the URL).
    """
    from pathlib import Path

    from sqlalchemy import inspect
    from sqlalchemy.engine import make_url

    parsed = make_url(resolve_url(url))
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        if not Path(parsed.database).expanduser().is_file():  # do not create an empty one
            raise DatabaseError(f"{url}: no such SQLite database file")
    engine = make_engine(url)
    shown = engine.url.render_as_string(hide_password=True)
    try:
        missing = [t for t in TABLES if not inspect(engine).has_table(t)]
        if missing:
            raise DatabaseError(
                f"{shown}: no cartrial tables ({', '.join(missing)} missing); expected a "
                "database created by `cartrial db upgrade` and filled by `cartrial db import`"
            )
        return read_cohort(engine, source=f"database {shown}")
    finally:
        engine.dispose()
