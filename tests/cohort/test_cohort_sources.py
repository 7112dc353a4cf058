"""One cohort, three stores (issue 16): a CSV folder, the same tables as Parquet and a
cartrial database give the same typed cohort; Parquet numbers checked as numbers report
their problems exactly as the CSV holding the same cells does.

The database hands rows back in its own order and numbers them as it reads them, so its
tables are compared with the provenance columns aside and the rows sorted; the Parquet
folder keeps the CSV's row numbers and order (``test_cohort_parquet``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cartrial.cohort import TABLES, CohortError, load_cohort, write_cohort

DATA = Path(__file__).resolve().parents[1] / "data" / "ns7car_like"


def _rows(df: pd.DataFrame) -> pd.DataFrame:
    """A table's rows in a canonical order, provenance aside."""
    df = df.drop(columns=["source_file", "source_row"])
    return df.sort_values(list(df.columns), kind="stable").reset_index(drop=True)


@pytest.fixture(scope="module")
def simulated(tmp_path_factory) -> Path:
    """A small synthetic cohort with bedside words (oxygen device, consciousness)."""
    from cartrial.examples.simulate import write_simulated_cohort

    return write_simulated_cohort(tmp_path_factory.mktemp("sim") / "c", 25, seed=9)


@pytest.mark.parametrize("which", ["simulated", "registry_like"])
def test_csv_parquet_and_database_give_identical_cohorts(which, request, tmp_path, monkeypatch):
    from cartrial.store.cohort_io import import_cohort
    from cartrial.store.database import make_engine, upgrade

    folder = request.getfixturevalue("simulated") if which == "simulated" else DATA
    csv = load_cohort(folder)
    parquet = load_cohort(write_cohort(csv, tmp_path / "pq", format="parquet"))
    monkeypatch.setenv("CARTRIAL_SECRET_FILE", str(tmp_path / "secret"))
    url = f"sqlite:///{tmp_path / 'trial.sqlite'}"
    engine = make_engine(url)
    upgrade(engine)
    import_cohort(engine, csv)
    engine.dispose()
    database = load_cohort(url)
    for name in TABLES:
        for label, other in (("parquet", parquet), ("database", database)):
            assert len(other.table(name)) == len(csv.table(name)), (label, name)
            # an absent table and an empty one list their columns in other orders
            pd.testing.assert_frame_equal(
                _rows(csv.table(name)),
                _rows(other.table(name)),
                obj=f"{label} {name}",
                check_like=not len(csv.table(name)),
            )
    if which == "simulated":  # the words made it through every store
        words = set(database.observations["value_text"].dropna())
        assert {"room_air", "alert"} <= words


def _problems(folder: Path) -> set[tuple[int | None, str | None, str | None, str]]:
    with pytest.raises(CohortError) as info:
        load_cohort(folder)
    return {(p.row, p.column, p.value, p.expected) for p in info.value.problems}


def test_parquet_numbers_with_problems_read_like_the_csv_of_them(tmp_path, make_cohort_dir):
    """Numbers that fail a check (negative value, word on a numeric analyte, a grade of
    2.5, an infinite day) are reported as a CSV of the same table would show them."""
    patients = pd.DataFrame({"patient_id": ["P1"], "infusion_date": ["2023-01-01"]})
    obs = pd.DataFrame(
        {
            "patient_id": ["P1"] * 5,
            "day": [1.0, 2.0, np.inf, 4.0, 5.0],
            "analyte": ["crp", "crp", "crp", "oxygen", "oxygen"],
            "value": [-1.5, np.nan, 3.0, np.nan, np.nan],
            "value_text": [None, "high", None, "room air", "jetpack"],
            "unit": ["mg/L", "mg/L", "mg/L", None, None],
        }
    )
    ae = pd.DataFrame({"patient_id": ["P1"], "term": ["CRS"], "onset_day": [1.0], "grade": [2.5]})
    pq_dir = tmp_path / "pq"
    pq_dir.mkdir()
    patients.to_parquet(pq_dir / "patients.parquet", index=False)
    obs.to_parquet(pq_dir / "observations.parquet", index=False)
    ae.to_parquet(pq_dir / "adverse_events.parquet", index=False)
    # the same cells as text, written by hand
    csv_dir = make_cohort_dir(
        tmp_path / "csv",
        patients="patient_id,infusion_date\nP1,2023-01-01\n",
        observations=(
            "patient_id,day,analyte,value,unit\n"
            "P1,1.0,crp,-1.5,mg/L\n"
            "P1,2.0,crp,high,mg/L\n"
            "P1,inf,crp,3.0,mg/L\n"
            "P1,4.0,oxygen,room air,\n"
            "P1,5.0,oxygen,jetpack,\n"
        ),
        adverse_events="patient_id,term,onset_day,grade\nP1,CRS,1.0,2.5\n",
    )
    got = _problems(pq_dir)
    assert got == _problems(csv_dir)
    assert {(row, col, value) for row, col, value, _ in got} == {
        (2, "value", "-1.5"),
        (3, "value", "high"),
        (4, "day", "inf"),
        (6, "value", "jetpack"),
        (2, "grade", "2.5"),
    }


def test_parquet_numbers_typed_as_numbers_equal_the_text_path(tmp_path, monkeypatch):
    """The number path and the text path (forced) give the same typed observations."""
    import cartrial.cohort.tables as tables_mod

    obs = pd.DataFrame(
        {
            "patient_id": ["P1"] * 4,
            "day": [0.0, 0.5, 1.0, 14.0],
            "analyte": ["temperature", "oxygen", "vasopressors", "cart_qpcr"],
            "value": [101.3, np.nan, 0.1 + 0.2, 0.0],
            "value_text": [None, "Low flow", None, None],
            "unit": ["F", None, "n", "copies/ug"],
            "lloq": [np.nan, np.nan, np.nan, 50.0],
        }
    )
    pq_dir = tmp_path / "pq"
    pq_dir.mkdir()
    pd.DataFrame({"patient_id": ["P1"], "infusion_date": ["2023-01-01"]}).to_parquet(
        pq_dir / "patients.parquet", index=False
    )
    obs.to_parquet(pq_dir / "observations.parquet", index=False)
    taken = []
    number_path = tables_mod._numeric_values

    def spy(*args):
        typed = number_path(*args)
        taken.append(typed is not None)
        return typed

    with monkeypatch.context() as mp:
        mp.setattr(tables_mod, "_numeric_values", spy)
        fast = load_cohort(pq_dir).observations
    assert taken == [True]  # the numbers were checked as numbers
    monkeypatch.setattr(tables_mod, "typed_numbers", lambda *a: None)
    monkeypatch.setattr(tables_mod, "_numeric_values", lambda *a: None)
    slow = load_cohort(pq_dir).observations
    pd.testing.assert_frame_equal(fast, slow)
    assert fast["value"].iloc[0] == pytest.approx((101.3 - 32) * 5 / 9)  # F -> C
    assert fast["value"].iloc[2] == 0.1 + 0.2  # the float itself, not a rounded text
    assert fast["value_text"].iloc[1] == "low flow"
    assert pd.isna(fast["value"].iloc[1])


DAY_CELLS = ["1", " 2 ", "NA", "", "-70", "abc", "inf", "nan", "1e400", "3.5", "+4", "0x10", "1_0"]


@pytest.mark.parametrize("cell", [*DAY_CELLS, None])
def test_number_columns_read_as_numbers_match_the_text_reader(cell, tmp_path, make_cohort_dir):
    """The CSV reader takes day/lloq/grade as numbers when they are plain numbers within
    bounds; any other cell sends the column back to text. Either way the typed table and
    the problems are those of the pandas text reader (None: every cell in one file)."""
    import cartrial.cohort.load as load_mod

    cells = DAY_CELLS if cell is None else ["0", cell]
    rows = "".join(f'P1,"{c}",crp,1.5,mg/L,\n' for c in cells)
    folder = make_cohort_dir(
        tmp_path,
        patients="patient_id,infusion_date\nP1,2023-01-01\n",
        observations="patient_id,day,analyte,value,unit,lloq\n" + rows,
    )

    def outcome():
        try:
            return load_cohort(folder).observations.drop(columns="source_file"), []
        except CohortError as exc:
            return None, exc.problems

    columnar, columnar_problems = outcome()
    original = load_mod._read_csv_text
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(
            load_mod,
            "_read_csv_text",
            lambda path, columnar=False, table=None: original(path, False),
        )
        text, text_problems = outcome()
    assert columnar_problems == text_problems
    if columnar is not None:
        pd.testing.assert_frame_equal(columnar, text)
    # hand-checked: which cells are a problem on the day column
    good = {"1", "2", "NA", "nan", "3.5", "+4", "0"}  # NA/nan: missing, reported as "a time"
    bad = {c for c in cells if c.strip() not in good and c != ""}
    assert {p.value for p in columnar_problems if p.column == "day" and p.value} == bad
