"""Columnar cohorts (issue 16): pyarrow-read CSV folders, Parquet folders, ``cartrial write``.

A cohort must not depend on how its tables were stored: a folder of CSVs, the same tables
as Parquet (``write_cohort(..., format="parquet")`` / ``cartrial write``) and the pandas
text reader (the fallback path, kept for files pyarrow reads differently) give identical
typed tables, identical problems and identical endpoint tables. Expected problems are
written by hand from the CSV text in each test.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

import cartrial.cohort.load as load_mod
from cartrial.cli import app
from cartrial.cohort import TABLES, CohortError, Problem, load_cohort, write_cohort
from cartrial.endpoints import derive_endpoints

MESSY = dict(
    patients="""
        patient_id,age_years,sex,infusion_date,product_source,prior_allo_sct,site_code,weight_kg
        P1,12.5,M,2023-01-10,prior_sct_donor,Yes,007,40
        P2,7,female,2023-02-01,new donor,no,012,N/A
        P3,30,F,2023-03-05,universal,,013,71.2
        P4, 44 ,m,,autologous,NO,014,
    """,
    events="""
        patient_id,day,date,event,response,mrd,cd7_status,cause
        P1,28,,response,CR,negative,,
        P1,,2023-04-20,relapse,,,CD7-,
        P1,150,,death,,,,relapse
        P2,28,,response,CRi,0.001,,
        P2,200,,last follow-up,,,,
        P3,30,,response,NR,,,
        P3,45,,HSCT,,,,
        P3,90,,last_contact,,,,
        P4,10,,lost to follow-up,,,,
    """,
    adverse_events="""
        patient_id,term,onset_day,resolution_day,grade,system
        P1,CRS,1,5,2,ASTCT
        P2,ICANS,3,,1,ASTCT2019
        P3,aGVHD,40,60,2,MAGIC
        P3,neutropenia,0,21,4,CTCAE5
    """,
    observations="""
        patient_id,day,analyte,value,unit
        P1,7,cart_flow,123.4,cells/µL
        P1,7,oxygen,low flow nasal cannula,
        P1,8,oxygen,room air,
        P1,7,temperature,101.3,F
        P1,8,temperature,38.2,C
        P2,0.5,crp,0.1,mg/l
        P2,1,anc,1500,cells/uL
        P2,2,anc,0.4,10^9/L
        P3,14,cd3,250,cells/uL
        P3,16,cart_qpcr,0,copies/ug
    """,
)


def _pandas_reader(monkeypatch) -> None:
    """Force the pandas text reader (the pre-issue-16 path, still the fallback)."""
    original = load_mod._read_csv_text
    monkeypatch.setattr(
        load_mod,
        "_read_csv_text",
        lambda path, columnar=False, table=None: original(path, False),
    )


def _assert_same_cohort(a, b) -> None:
    """Every table equal, provenance file names aside (they name the file read)."""
    for name in TABLES:
        pd.testing.assert_frame_equal(
            a.table(name).drop(columns="source_file"),
            b.table(name).drop(columns="source_file"),
            obj=name,
        )


def _endpoints(cohort, folder: Path) -> pd.DataFrame:
    table = derive_endpoints(cohort)
    for col in table.columns:  # provenance text names the source file: make it neutral
        if table[col].dtype == object or str(table[col].dtype) == "string":
            table[col] = (
                table[col]
                .astype("string")
                .str.replace(str(folder), "<cohort>", regex=False)
                .str.replace(".parquet", ".csv", regex=False)
            )
    return table


@pytest.fixture(scope="module")
def messy_dir(tmp_path_factory, make_cohort_dir) -> Path:
    return make_cohort_dir(tmp_path_factory.mktemp("messy"), **MESSY)


@pytest.fixture(scope="module")
def simulated_dir(tmp_path_factory) -> Path:
    from cartrial.examples.simulate import write_simulated_cohort

    return write_simulated_cohort(tmp_path_factory.mktemp("sim") / "c", 40, seed=3)


@pytest.mark.parametrize("which", ["messy_dir", "simulated_dir"])
def test_csv_parquet_and_pandas_reader_give_identical_cohorts(which, request, tmp_path):
    folder = request.getfixturevalue(which)
    columnar = load_cohort(folder)
    with pytest.MonkeyPatch.context() as mp:
        _pandas_reader(mp)
        by_pandas = load_cohort(folder)
    _assert_same_cohort(columnar, by_pandas)
    assert columnar.input_sha256 == by_pandas.input_sha256  # the same bytes were read

    pq_dir = write_cohort(columnar, tmp_path / "pq", format="parquet")
    assert sorted(p.name for p in pq_dir.iterdir()) == sorted(
        f"{t}.parquet" for t in TABLES if t == "patients" or len(columnar.table(t))
    )
    from_parquet = load_cohort(pq_dir)
    _assert_same_cohort(columnar, from_parquet)
    assert set(from_parquet.observations["source_file"]) == {str(pq_dir / "observations.parquet")}
    pd.testing.assert_frame_equal(
        _endpoints(columnar, folder), _endpoints(from_parquet, pq_dir), check_dtype=True
    )


def test_messy_values_are_typed_as_before(messy_dir):
    """Hand-checked cells of MESSY: units converted, words kept, dates turned into days."""
    c = load_cohort(messy_dir)
    obs = c.observations.set_index(["patient_id", "day", "analyte"])
    assert obs.loc[("P1", 7.0, "temperature"), "value"] == pytest.approx((101.3 - 32) * 5 / 9)
    assert obs.loc[("P1", 7.0, "temperature"), "unit"] == "C"
    assert obs.loc[("P2", 1.0, "anc"), "value"] == pytest.approx(1.5)
    assert obs.loc[("P2", 1.0, "anc"), "unit"] == "10^9/L"
    assert obs.loc[("P1", 7.0, "oxygen"), "value_text"] == "low flow nasal cannula"
    assert pd.isna(obs.loc[("P1", 7.0, "oxygen"), "value"])
    relapse = c.events[c.events["event"] == "relapse"].iloc[0]
    assert relapse["day"] == (pd.Timestamp("2023-04-20") - pd.Timestamp("2023-01-10")).days
    assert relapse["source_row"] == 3
    assert list(c.patients["site_code"]) == ["007", "012", "013", "014"]  # leading zeros kept
    assert c.patients["age_years"].tolist()[3] == 44.0
    assert pd.isna(c.patients["weight_kg"].iloc[1])


def test_parquet_written_by_another_tool_is_validated_by_the_same_rules(tmp_path):
    """A Parquet file is typed, but not trusted: rows are numbered as a CSV's would be."""
    folder = tmp_path / "pq"
    folder.mkdir()
    pd.DataFrame(
        {"patient_id": ["A", "B", "A"], "age_years": [30.0, 150.0, 40.0], "sex": ["M", "x", "F"]}
    ).to_parquet(folder / "patients.parquet", index=False)
    pd.DataFrame(
        {"patient_id": ["A", "C"], "day": [-3.0, 5.0], "event": ["response", "death"]}
    ).to_parquet(folder / "events.parquet", index=False)
    with pytest.raises(CohortError) as info:
        load_cohort(folder)
    p = str(folder / "patients.parquet")
    e = str(folder / "events.parquet")
    got = {(x.file, x.row, x.column, x.value) for x in info.value.problems}
    assert got == {
        (p, 3, "age_years", "150.0"),
        (p, 3, "sex", "x"),
        (p, 4, "patient_id", "A"),
        (e, 2, "day", "-3.0"),
        (e, 2, "response", ""),
        (e, 3, "patient_id", "C"),
    }


def test_unreadable_parquet_is_a_problem_not_a_crash(tmp_path):
    folder = tmp_path / "pq"
    folder.mkdir()
    (folder / "patients.parquet").write_bytes(b"not parquet at all")
    with pytest.raises(CohortError) as info:
        load_cohort(folder)
    (problem,) = info.value.problems
    assert problem.file == str(folder / "patients.parquet")
    assert problem.expected.startswith("a readable Parquet file")


def test_thousands_of_problems_each_named_and_the_message_capped(tmp_path, make_cohort_dir):
    """One bad spelling on 3,000 rows is parsed once but reported on every row."""
    n = 3000
    obs = "patient_id,day,analyte,value\n" + "".join(
        f"P1,{i % 30},crp,{'high' if i % 2 else '1.5'}\n" for i in range(n)
    )
    folder = make_cohort_dir(
        tmp_path, patients="patient_id,infusion_date\nP1,2023-01-01\n", observations=obs
    )
    with pytest.raises(CohortError) as info:
        load_cohort(folder)
    bad = [p for p in info.value.problems if p.column == "value"]
    assert [p.row for p in bad] == [i + 2 for i in range(n) if i % 2]
    assert {p.value for p in bad} == {"high"}
    assert all(p.file == str(folder / "observations.csv") for p in bad)
    assert "… and 1300 more" in str(info.value)  # 1,500 problems, 200 shown


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    cells=st.lists(
        st.sampled_from(["1.5", " 2 ", "NA", "", "-1", "abc", "1e400", "0.1", "nan", "3,5"]),
        min_size=1,
        max_size=25,
    )
)
def test_columnar_and_pandas_paths_report_the_same_problems(
    cells, tmp_path_factory, make_cohort_dir
):
    """Property: whatever the cells, both readers give the same values and problems."""
    base = tmp_path_factory.mktemp("prop")
    lines = "".join(f'P1,{i},crp,"{c}",mg/L\n' for i, c in enumerate(cells))
    folder = make_cohort_dir(
        base,
        patients="patient_id,infusion_date\nP1,2023-01-01\n",
        observations="patient_id,day,analyte,value,unit\n" + lines,
    )

    def outcome():
        try:
            return load_cohort(folder).observations.drop(columns="source_file"), []
        except CohortError as exc:
            return None, exc.problems

    a_table, a_problems = outcome()
    with pytest.MonkeyPatch.context() as mp:
        _pandas_reader(mp)
        b_table, b_problems = outcome()
    assert a_problems == b_problems
    if a_table is not None:
        pd.testing.assert_frame_equal(a_table, b_table)
    # non-numbers, negatives and overflow are wrong values; a missing one is "a value" missing
    good = ("1.5", "2", "0.1")
    expected_bad = [i + 2 for i, c in enumerate(cells) if c.strip() not in good]
    assert sorted({p.row for p in a_problems}) == expected_bad


def test_cli_write_parquet_then_csv_round_trips(messy_dir, tmp_path):
    runner = CliRunner()
    out = tmp_path / "as_parquet"
    res = runner.invoke(app, ["write", str(messy_dir), "-o", str(out), "--format", "parquet"])
    assert res.exit_code == 0, res.output
    assert (out / "patients.parquet").exists()
    schema = pq.read_schema(out / "observations.parquet")
    assert schema.field("value").type == pa.float64()  # typed, not text
    assert (
        pq.ParquetFile(out / "observations.parquet").metadata.row_group(0).column(0).compression
        == "ZSTD"
    )
    back = tmp_path / "as_csv"
    res = runner.invoke(app, ["write", str(out), "-o", str(back), "--format", "csv"])
    assert res.exit_code == 0, res.output
    _assert_same_cohort(load_cohort(messy_dir), load_cohort(back))
    again = runner.invoke(app, ["write", str(out), "-o", str(back), "--format", "csv"])
    assert again.exit_code == 1 and "--overwrite" in again.output
    bad = runner.invoke(app, ["write", str(out), "-o", str(tmp_path / "x"), "--format", "xlsx"])
    assert bad.exit_code == 2


def test_problem_dataclass_unchanged():
    """The error contract: a Problem prints file, row, column, value and expected."""
    p = Problem("f.csv", 3, "age_years", "150", "a number ≥ 0 and ≤ 120")
    assert (
        str(p) == "f.csv, row 3, column 'age_years': found '150'; expected a number ≥ 0 and ≤ 120"
    )


def test_blank_lines_and_quoted_newlines_keep_their_line_numbers(tmp_path):
    """pyarrow keeps a blank line as an (empty, dropped) record, as the pandas reader does,
    so ``source_row`` is the same on both paths; a quoted cell may span lines."""
    folder = tmp_path / "c"
    folder.mkdir()
    (folder / "patients.csv").write_bytes(
        b'\xef\xbb\xbfpatient_id,age_years,note\r\nP1,30,"two\r\nlines"\r\n\r\n,,\r\nP2,40,x\r\n'
    )
    columnar = load_cohort(folder)
    with pytest.MonkeyPatch.context() as mp:
        _pandas_reader(mp)
        by_pandas = load_cohort(folder)
    _assert_same_cohort(columnar, by_pandas)
    assert list(columnar.patients["patient_id"]) == ["P1", "P2"]
    assert list(columnar.patients["source_row"]) == [2, 5]  # records 2 and 5 (blank: 3, 4)
    assert columnar.patients["note"].iloc[0] == "two\r\nlines"
