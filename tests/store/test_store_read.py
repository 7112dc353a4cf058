"""Reading the cohort straight from the database: equal to the source, one snapshot.

Both back ends (``db_url``: SQLite file, PostgreSQL schema). The source cohort is the
synthetic site export (extra column, categorical words in ``value``) with gaps a site
leaves (blank age, blank infusion date, a blank unit).
"""

from __future__ import annotations

import pandas as pd
import pytest
from sqlalchemy import text

from cartrial.cohort import load_cohort
from cartrial.cohort.model import PROVENANCE, TABLES
from cartrial.store import import_cohort, make_engine, upgrade
from cartrial.store.cohort_io import cohort_from_url, read_cohort
from cartrial.store.database import DatabaseError
from cartrial.store.synthetic import write_synthetic_cohort


def _site_export(directory, n=12, sites=("SITE-A", "SITE-B"), seed=7):
    d = write_synthetic_cohort(directory, n_patients=n, obs_per_patient=4, sites=sites, seed=seed)
    p = pd.read_csv(d / "patients.csv", dtype=str, keep_default_na=False)
    p.loc[1, "age_years"] = ""  # gaps as a site leaves them
    p.loc[2, "infusion_date"] = ""
    p.to_csv(d / "patients.csv", index=False)
    o = pd.read_csv(d / "observations.csv", dtype=str, keep_default_na=False)
    o.loc[0, "unit"] = ""
    o.to_csv(d / "observations.csv", index=False)
    return d


def _stored(db_url, tmp_path, **kw):
    source = load_cohort(_site_export(tmp_path / "export", **kw))
    engine = make_engine(db_url)
    upgrade(engine)
    import_cohort(engine, source)
    return engine, source


def _canonical(frame: pd.DataFrame, table: str) -> pd.DataFrame:
    cols = [c for c in frame.columns if c not in PROVENANCE]  # canonical, then extras
    return frame[cols].reset_index(drop=True)


def test_cohort_from_url_equals_source_table_by_table(db_url, tmp_path):
    """Canonical columns and extra columns are equal (values and dtypes, row order);
    provenance differs by design: ``source_file`` names the database, not the CSV, and
    ``source_row`` numbers the rows of the database read (checked separately)."""
    engine, source = _stored(db_url, tmp_path)
    engine.dispose()
    back = cohort_from_url(db_url)
    for table in TABLES:
        want, got = source.table(table), back.table(table)
        assert list(_canonical(got, table).columns) == list(_canonical(want, table).columns)
        pd.testing.assert_frame_equal(_canonical(got, table), _canonical(want, table))
        assert len(got) == len(want) > 0
        assert got["source_file"].astype(str).str.contains("database").all()
        assert not want["source_file"].astype(str).str.contains("database").any()
    # the gaps stayed missing (never zero / empty string)
    assert pd.isna(back.patients.loc[1, "age_years"])
    assert pd.isna(back.patients.loc[2, "infusion_date"])
    oxygen = back.observations[back.observations["analyte"] == "oxygen"]
    assert oxygen["value"].isna().all() and oxygen["value_text"].notna().all()
    assert set(oxygen["value_text"]) <= {"low_flow", "high_flow", "facemask"}
    assert back.patients["cohort_arm"].tolist() == source.patients["cohort_arm"].tolist()


def test_read_is_one_snapshot(db_url, tmp_path):
    """A patient and its records committed by another connection while the reader is
    between tables appear in neither table of the result; a value changed meanwhile is
    read as it was. The next read sees the write whole."""
    engine, _ = _stored(db_url, tmp_path)
    other = load_cohort(_site_export(tmp_path / "late", n=3, sites=("SITE-C",), seed=11))
    other_ids = {"Q1", "Q2", "Q3"}
    for t in TABLES:
        other.table(t)["patient_id"] = other.table(t)["patient_id"].str.replace("P0000", "Q")
    before = read_cohort(engine)
    first_obs = before.observations.loc[0, "value"]
    writer = make_engine(db_url)
    calls: list[str] = []

    def write_between(table: str) -> None:
        calls.append(table)
        if table == "patients":  # patients read; events, AEs, observations not yet
            import_cohort(writer, other)
            with writer.begin() as conn:
                conn.execute(
                    text(
                        "UPDATE observations SET value = 999.0 WHERE id = "
                        "(SELECT MIN(id) FROM observations WHERE value IS NOT NULL)"
                    )
                )

    during = read_cohort(engine, between=write_between)
    assert calls == list(TABLES)
    for t in TABLES:
        assert not other_ids & set(during.table(t)["patient_id"]), t
        assert len(during.table(t)) == len(before.table(t)), t
    assert during.observations.loc[0, "value"] == first_obs != 999.0
    after = read_cohort(engine)
    for t in TABLES:
        assert other_ids <= set(after.table(t)["patient_id"]), t
    assert after.observations.loc[0, "value"] == 999.0
    writer.dispose()
    engine.dispose()


def test_read_is_read_only(db_url, tmp_path):
    """A write attempted inside the snapshot is refused by the database itself."""
    from sqlalchemy.exc import DBAPIError

    from cartrial.store.cohort_io import snapshot

    engine, _ = _stored(db_url, tmp_path)
    with snapshot(engine) as conn, pytest.raises(DBAPIError) as exc:
        conn.execute(text("DELETE FROM events"))
    assert "read" in str(exc.value).lower()  # "read-only transaction" / "readonly database"
    assert len(read_cohort(engine).events) > 0
    # the pooled connection is writable again afterwards
    with engine.begin() as conn:
        conn.execute(text("UPDATE sites SET name = 'renamed' WHERE code = 'SITE-A'"))
    engine.dispose()


def test_missing_database_is_named_not_created(tmp_path):
    path = tmp_path / "nope.sqlite"
    with pytest.raises(DatabaseError, match="no such SQLite database file"):
        cohort_from_url(f"sqlite:///{path}")
    assert not path.exists()
    empty = tmp_path / "empty.sqlite"
    make_engine(f"sqlite:///{empty}").dispose()
    with pytest.raises(DatabaseError, match="no cartrial tables"):
        cohort_from_url(f"sqlite:///{empty}")
