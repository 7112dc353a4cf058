"""One truth per column: the cohort contract (``cartrial.cohort.model.COLUMNS`` with the
bounds of ``cartrial.cohort.tables.BOUNDS``) and the store's entry specs
(``cartrial.store.validation.SPECS``) must agree key for key, in kind and in range, so that
what the web app stores loads back as the same cohort.

The store's specs are derived from the cohort's declaration; this test checks the
result against the cohort's own tables, written out here independently of the derivation.
"""

from __future__ import annotations

import datetime as dt

import pytest

from cartrial.cohort.model import COLUMNS
from cartrial.cohort.tables import BOUNDS
from cartrial.store.validation import SPECS

#: cohort dtype -> the store kinds that mean the same value
SAME_KIND = {
    "float": {"float"},
    "Int64": {"int"},
    "bool": {"bool"},
    "date": {"date"},
    "str": {"str", "vocab", "site", "id"},
}
#: the store keys child rows by their patient (a foreign key), not by a patient_id field
KEYED_BY_PARENT = {"events", "adverse_events", "observations"}
#: the observation's value is entered as a CSV holds it: a number, or a categorical
#: analyte's word that the store puts in value_text (the cohort's typed split)
NUMBER_OR_WORD = ("observations", "value")


def _case(*key: str):
    return pytest.param(*key[1:], id="-".join(key[1:]))


def _store_kinds(table: str, column: str) -> set[str]:
    """The store kinds that agree with the cohort's dtype and bounds of one column."""
    dtype = COLUMNS[table][column]
    if (table, column) == NUMBER_OR_WORD:
        return {"value"}
    if dtype == "float" and BOUNDS.get((table, column), (None, None, False))[2]:
        return {"int"}  # a whole-number float column (prior_lines)
    return SAME_KIND[dtype]


def _expected_keys(table: str) -> set[str]:
    keys = set(COLUMNS[table])
    return keys - {"patient_id"} if table in KEYED_BY_PARENT else keys


def test_the_same_tables():
    assert set(SPECS) == set(COLUMNS)


@pytest.mark.parametrize("table", [_case("keys", t) for t in COLUMNS])
def test_the_same_columns(table):
    assert set(SPECS[table]) == _expected_keys(table)


SHARED = [(t, c) for t in COLUMNS for c in COLUMNS[t] if c in SPECS.get(t, {})]


@pytest.mark.parametrize(("table", "column"), [_case("kind", t, c) for t, c in SHARED])
def test_the_same_kind(table, column):
    assert SPECS[table][column].kind in _store_kinds(table, column)


@pytest.mark.parametrize(("table", "column"), [_case("range", t, c) for t, c in SHARED])
def test_the_same_range(table, column):
    lo, hi, _integer = BOUNDS.get((table, column), (None, None, False))
    spec = SPECS[table][column]
    assert (spec.lo, spec.hi) == (lo, hi)


def test_a_number_or_word_value_has_its_word_column():
    """The store's number-or-word ``value`` stands for the cohort's float ``value`` (≥ 0)
    with the word kept in ``value_text``: both sides declare both columns."""
    table, column = NUMBER_OR_WORD
    assert COLUMNS[table][column] == "float" and COLUMNS[table]["value_text"] == "str"
    assert SPECS[table]["value_text"].kind == "str"


def test_every_cohort_column_has_a_database_column():
    """Nothing of the contract is left to the JSON ``extra`` column."""
    from cartrial.store.models import COHORT_MODELS

    for table, columns in COLUMNS.items():
        assert set(columns) <= set(COHORT_MODELS[table].__table__.c.keys()), table


# -- the two sides refuse the same values ------------------------------------------------------

ROWS = {
    "patients": {"patient_id": "P1"},
    "events": {"patient_id": "P1", "day": "3", "event": "last_contact"},
    "adverse_events": {"patient_id": "P1", "term": "CRS", "onset_day": "2", "grade": "2"},
    "observations": {
        "patient_id": "P1",
        "day": "1",
        "analyte": "crp",
        "value": "5",
        "unit": "mg/L",
    },
}
CASES = [  # (table, column, cell, refused): edges of the declared ranges
    ("events", "day", "36500", False),
    ("events", "day", "36501", True),
    ("events", "day", "-1", True),
    ("adverse_events", "onset_day", "-60", False),
    ("adverse_events", "onset_day", "-61", True),
    ("adverse_events", "resolution_day", "36501", True),
    ("adverse_events", "grade", "2.5", True),
    ("observations", "day", "36501", True),
    ("observations", "value", "0", False),
    ("observations", "value", "-1", True),
    ("patients", "prior_lines", "3", False),
    ("patients", "prior_lines", "2.5", True),
    ("patients", "prior_lines", "51", True),
    ("patients", "enrollment_date", "2024-03-01", False),
]


def _cohort_refuses(table: str, row: dict[str, str], column: str) -> bool:
    import pandas as pd

    from cartrial.cohort.tables import parse_table

    raw = pd.DataFrame({k: [v] for k, v in row.items()}, dtype=object)
    raw["source_row"] = [2]
    _typed, problems = parse_table(table, raw, f"{table}.csv")
    return any(p.column == column for p in problems)


def _store_refuses(table: str, row: dict[str, str], column: str) -> bool:
    from cartrial.store.validation import validate

    data = {k: v for k, v in row.items() if table == "patients" or k != "patient_id"}
    _values, errors = validate(table, data)
    return column in errors


@pytest.mark.parametrize(
    ("table", "column", "cell", "refused"), CASES, ids=[f"{t}.{c}={v}" for t, c, v, _r in CASES]
)
def test_both_sides_refuse_the_same_values(table, column, cell, refused):
    row = {**ROWS[table], column: cell}
    assert _cohort_refuses(table, row, column) is refused
    assert _store_refuses(table, row, column) is refused


def test_a_word_is_accepted_in_value_or_value_text_alike():
    from cartrial.store.validation import validate

    base = {"day": 1, "analyte": "oxygen"}
    in_value, e1 = validate("observations", {**base, "value": "High flow"})
    in_text, e2 = validate("observations", {**base, "value_text": "High flow"})
    assert not e1 and not e2
    assert in_value == in_text and in_text["value_text"] == "high_flow"
    assert in_text["value"] is None
    _v, errors = validate("observations", {**base, "value": 2, "value_text": "high flow"})
    assert "value_text" in errors
    _v, errors = validate("observations", {**base, "value_text": "a bit"})
    assert errors["value"].startswith("for oxygen, expected one of")


# -- migration 0004: enrollment_date moves out of ``extra`` into its column --------------------


def test_migration_0004_moves_enrollment_date_out_of_extra(tmp_path):
    from sqlalchemy import text

    from cartrial.store.database import current_revision, make_engine, upgrade

    eng = make_engine(f"sqlite:///{tmp_path / 'm.sqlite'}")
    upgrade(eng, "0003")
    with eng.begin() as conn:
        for pid, extra in (
            ("P1", '{"enrollment_date": "2024-02-01", "arm": "B"}'),
            ("P2", '{"enrollment_date": "2024-02-03T00:00:00"}'),
            ("P3", '{"enrollment_date": "early"}'),
            ("P4", None),
        ):
            conn.execute(
                text(
                    "INSERT INTO patients (patient_id, extra, version, locked) "
                    "VALUES (:p, :e, 1, 0)"
                ),
                {"p": pid, "e": extra},
            )
    upgrade(eng)
    assert current_revision(eng) == "0004"
    from sqlalchemy import select

    from cartrial.store.models import Patient

    with eng.connect() as conn:
        got = {
            r.patient_id: (r.enrollment_date, r.extra)
            for r in conn.execute(
                select(Patient.patient_id, Patient.enrollment_date, Patient.extra)
            )
        }
    eng.dispose()
    assert got == {
        "P1": (dt.date(2024, 2, 1), {"arm": "B"}),
        "P2": (dt.date(2024, 2, 3), None),
        "P3": (None, {"enrollment_date": "early"}),  # not a date: kept, never lost
        "P4": (None, None),
    }


def test_a_never_infused_patients_enrollment_date_goes_through_the_database(tmp_path):
    """Stored in its column and read back as the cohort's date: the study days of a dated
    event still count from it."""
    from sqlalchemy import select

    from cartrial.cohort import load_cohort
    from cartrial.store.cohort_io import import_cohort, read_cohort
    from cartrial.store.database import make_engine, upgrade
    from cartrial.store.models import Patient

    folder = tmp_path / "c"
    folder.mkdir()
    (folder / "patients.csv").write_text(
        "patient_id,infused,infusion_date,enrollment_date\n"
        "P1,yes,2023-01-10,2023-01-01\nP2,no,,2023-02-01\n"
    )
    (folder / "events.csv").write_text("patient_id,date,event\nP2,2023-03-01,last_contact\n")
    cohort = load_cohort(folder)
    eng = make_engine(f"sqlite:///{tmp_path / 'db.sqlite'}")
    upgrade(eng)
    import_cohort(eng, cohort)
    with eng.connect() as conn:
        stored = dict(conn.execute(select(Patient.patient_id, Patient.enrollment_date)).all())
        extras = conn.scalars(select(Patient.extra)).all()
    back = read_cohort(eng)
    eng.dispose()
    assert stored == {"P1": dt.date(2023, 1, 1), "P2": dt.date(2023, 2, 1)}
    assert extras == [None, None]
    assert back.patients["enrollment_date"].tolist() == cohort.patients["enrollment_date"].tolist()
    assert back.events["day"].tolist() == [28.0]  # 2023-02-01 -> 2023-03-01


def test_migration_0004_downgrade_moves_it_back_and_keeps_every_record(tmp_path):
    """The downgrade drops only the column (no rebuild of ``patients``, whose dropping
    would cascade to the child records) and keeps the dates in ``extra``."""
    from alembic import command
    from alembic.config import Config
    from sqlalchemy import func, select

    from cartrial.store.database import MIGRATIONS, current_revision, make_engine, upgrade
    from cartrial.store.models import Event, Patient

    eng = make_engine(f"sqlite:///{tmp_path / 'd.sqlite'}")
    upgrade(eng)
    with eng.begin() as conn:
        conn.execute(
            Patient.__table__.insert().values(
                patient_id="P1",
                enrollment_date=dt.date(2024, 2, 1),
                extra={"arm": "B"},
                version=1,
                locked=False,
            )
        )
        conn.execute(
            Event.__table__.insert().values(
                patient_id="P1", day=3.0, event="last_contact", version=1, locked=False
            )
        )
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    with eng.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0003")
    assert current_revision(eng) == "0003"
    with eng.connect() as conn:
        extra = conn.scalar(select(Patient.__table__.c.extra))
        events = conn.scalar(select(func.count()).select_from(Event.__table__))
    assert extra == {"arm": "B", "enrollment_date": "2024-02-01"} and events == 1
    upgrade(eng)
    with eng.connect() as conn:
        row = conn.execute(select(Patient.enrollment_date, Patient.extra)).one()
    eng.dispose()
    assert tuple(row) == (dt.date(2024, 2, 1), {"arm": "B"})


def test_downgrade_to_0002_keeps_every_child_record(tmp_path):
    """Migration 0003's downgrade drops its patients columns in place: a batch rebuild of
    ``patients`` (drop and re-create) would cascade and delete every event."""
    from alembic import command
    from alembic.config import Config
    from sqlalchemy import func, inspect, select

    from cartrial.store.database import MIGRATIONS, current_revision, make_engine, upgrade
    from cartrial.store.models import Event, Patient

    eng = make_engine(f"sqlite:///{tmp_path / 'd.sqlite'}")
    upgrade(eng)
    with eng.begin() as conn:
        conn.execute(
            Patient.__table__.insert().values(patient_id="P1", extra=None, version=1, locked=False)
        )
        conn.execute(
            Event.__table__.insert().values(
                patient_id="P1", day=3.0, event="last_contact", version=1, locked=False
            )
        )
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    with eng.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0002")
    assert current_revision(eng) == "0002"
    columns = {c["name"] for c in inspect(eng).get_columns("patients")}
    assert not columns & {"signed_by", "signed_at", "signature_meaning", "enrollment_date"}
    with eng.connect() as conn:
        assert conn.scalar(select(func.count()).select_from(Event.__table__)) == 1
