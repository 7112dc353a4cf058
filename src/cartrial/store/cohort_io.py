"""Moving a ``Cohort`` into and out of the database.

``import_cohort`` writes every row of a validated cohort in ONE transaction: either
the whole cohort is stored or nothing changes (a failed or killed import leaves the
database as it was). ``read_cohort`` reads the tables back and passes them through
``cartrial.cohort.cohort_from_frames`` — the same validation path as a file load —
so the web app, the report and ``cartrial db export`` all see an ordinary Cohort.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine, insert, select

from cartrial.cohort.model import COLUMNS, PROVENANCE, TABLES
from cartrial.store.models import COHORT_MODELS, AuditEntry, Patient, Site, utcnow
from cartrial.store.validation import IDENTIFYING

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
    try:
        import pandas as pd

        if value is pd.NA or value is pd.NaT:
            return None
        if isinstance(value, pd.Timestamp):
            return value.date() if value == value.normalize() else value.isoformat()
    except ImportError:  # pragma: no cover
        pass
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
    cols = dict(COLUMNS[table])
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
    if cohort.layout != "tables":
        raise ImportRefused("only four-table cohorts can be imported (this one is a wide table)")
    for name in TABLES:
        bad = [c for c in cohort.table(name).columns if str(c).lower() in IDENTIFYING]
        if bad:
            raise ImportRefused(
                f"{name} has identifying column(s) {', '.join(bad)}: the trial database "
                "stores study IDs only; remove them before importing"
            )
    rows = {name: frame_rows(name, cohort.table(name)) for name in TABLES}
    ids = [r["patient_id"] for r in rows["patients"]]
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
        sites = {r.get("site") for r in rows["patients"]} - {None}
        have = set(conn.scalars(select(Site.code)))
        new_sites = [{"code": s, "name": s} for s in sorted(sites - have)]
        if new_sites:
            conn.execute(insert(Site.__table__), new_sites)
        for name in TABLES:
            table = COHORT_MODELS[name].__table__
            done = 0
            for chunk in _chunks(rows[name]):
                conn.execute(insert(table), chunk)
                done += len(chunk)
                if progress is not None:
                    progress(name, done)
            counts[name] = done
        now = utcnow()
        per_patient: dict[str, dict[str, int]] = {
            pid: {t: 0 for t in TABLES[1:]} for pid in ids
        }
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
                "new_values": {"source": str(cohort.source), "sha256": cohort.input_sha256,
                               **per_patient[pid]},
                "reason": None,
            }
            for pid in ids
        ]
        for chunk in _chunks(audit):
            conn.execute(insert(AuditEntry.__table__), chunk)
    return counts


def read_frames(engine: Engine) -> dict[str, pd.DataFrame]:
    """The four cohort tables as DataFrames with canonical columns, then extras.

    Rows keep insertion order (primary key); extra columns keep first-seen order.
    """
    import pandas as pd

    frames: dict[str, pd.DataFrame] = {}
    with engine.connect() as conn:
        for name in TABLES:
            model = COHORT_MODELS[name]
            cols = list(COLUMNS[name]) + (["value_text"] if name == "observations" else [])
            table = model.__table__
            result = conn.execute(
                select(*[table.c[c] for c in cols], table.c.extra).order_by(table.c.id)
            ).all()
            data: dict[str, list[Any]] = {c: [r[i] for r in result] for i, c in enumerate(cols)}
            extras_order: dict[str, None] = {}
            extras = [r[-1] or {} for r in result]
            for e in extras:
                for k in e:
                    extras_order.setdefault(k, None)
            kinds = {**COLUMNS[name], "value_text": "str"}
            frame = pd.DataFrame({c: _typed(data[c], kinds[c]) for c in cols})
            if name == "observations":
                frame = _merge_value_text(frame)
            for k in extras_order:
                frame[k] = pd.Series([e.get(k) for e in extras], dtype=object)
                frame[k] = frame[k].infer_objects()
            frames[name] = frame
    return frames


def _merge_value_text(frame: pd.DataFrame) -> pd.DataFrame:
    """Put words of categorical analytes back into ``value`` (as a CSV holds them)."""
    text = frame["value"].map(lambda v: "" if v != v else repr(float(v)))
    words = frame.pop("value_text")
    frame["value"] = text.where(words.isna(), words).astype("string")
    return frame


def _typed(values: list[Any], kind: str):
    import pandas as pd

    if kind == "str":
        return pd.Series(values, dtype="string")
    if kind == "float":
        return pd.Series([math.nan if v is None else v for v in values], dtype="float64")
    if kind == "Int64":
        return pd.Series(values, dtype="Int64")
    if kind == "bool":
        return pd.Series(values, dtype="boolean")
    return pd.to_datetime(pd.Series(values, dtype=object))


def read_cohort(engine: Engine, source: str | None = None) -> Cohort:
    """The database's cohort, validated by ``cartrial.cohort.cohort_from_frames``."""
    from cartrial.cohort import cohort_from_frames

    frames = read_frames(engine)
    src = source or f"database {engine.url.render_as_string(hide_password=True)}"
    return cohort_from_frames(
        frames["patients"],
        frames["events"],
        frames["adverse_events"],
        frames["observations"],
        source=src,
    )
