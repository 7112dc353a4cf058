"""Loading the cohort format (DESIGN.md, "The cohort format"): folder of CSVs, .xlsx workbook,
dates vs days since infusion, vocabulary aliases, extra columns, provenance, and the
write_cohort / cohort_from_frames contract.

Expected values come from the CSV text written in each test (read back with the standard
library), never from running cartrial first.
"""

from __future__ import annotations

import datetime as dt
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from cartrial.cohort import (
    COLUMNS,
    TABLES,
    CohortError,
    cohort_from_frames,
    load_cohort,
    write_cohort,
)

# --------------------------------------------------------------------------- helpers


def _problems(path) -> list:
    with pytest.raises(CohortError) as info:
        load_cohort(path)
    return info.value.problems


def _tree_bytes(folder: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()
    }


def _assert_tables_equal(a, b, ignore=("source_file",)) -> None:
    for name in TABLES:
        left = a.table(name).drop(columns=[c for c in ignore if c in a.table(name)])
        right = b.table(name).drop(columns=[c for c in ignore if c in b.table(name)])
        pd.testing.assert_frame_equal(
            left.reset_index(drop=True),
            right.reset_index(drop=True),
            check_like=True,
            obj=name,
        )


# --------------------------------------------------------------------------- folder of CSVs


def test_valid_folder_loads_whole(valid_cohort, valid_cohort_dir, read_csv_rows):
    cohort = valid_cohort
    assert cohort.layout == "tables"
    for name in TABLES:
        rows = read_csv_rows(valid_cohort_dir / f"{name}.csv")
        table = cohort.table(name)
        assert len(table) == len(rows), name
        assert table["patient_id"].tolist() == [r["patient_id"] for r in rows], name
    assert cohort.patient_ids == ["P1", "P2", "P3"]


def test_canonical_columns_and_types(valid_cohort, valid_cohort_dir):
    cohort = valid_cohort
    for name in TABLES:
        table = cohort.table(name)
        for col in (*COLUMNS[name], "source_file", "source_row"):
            assert col in table.columns, (name, col)
    ev = cohort.events
    assert ev["day"].dtype == np.float64
    assert str(cohort.adverse_events["grade"].dtype) == "Int64"
    assert cohort.adverse_events["grade"].tolist() == [2, 1, 2]
    # missing stays missing (never zero): P2's ICANS has no resolution day
    assert pd.isna(cohort.adverse_events.loc[1, "resolution_day"])
    assert pd.isna(cohort.patients.loc[2, "note"])


def test_only_patients_is_required(make_cohort_dir, tmp_path):
    folder = make_cohort_dir(tmp_path, patients="patient_id,age_years\nP1,40\nP2,NA\n")
    cohort = load_cohort(folder)
    assert cohort.n_patients == 2
    assert cohort.events.empty and cohort.adverse_events.empty and cohort.observations.empty
    for name in TABLES[1:]:
        assert set(COLUMNS[name]) <= set(cohort.table(name).columns)
    # "NA" is a missing-value spelling: missing, not zero
    assert cohort.patients["age_years"].tolist()[0] == 40.0
    assert np.isnan(cohort.patients["age_years"].tolist()[1])


def test_provenance_points_at_csv_line(valid_cohort, valid_cohort_dir):
    cohort = valid_cohort
    for name in TABLES:
        path = valid_cohort_dir / f"{name}.csv"
        lines = path.read_text(encoding="utf-8").splitlines()
        table = cohort.table(name)
        assert (table["source_file"].map(lambda f: Path(f).resolve()) == path.resolve()).all()
        for pid, row in zip(table["patient_id"], table["source_row"], strict=True):
            assert row >= 2, "line 1 is the header"
            assert lines[row - 1].split(",")[0] == pid, (name, row)
    # a specific row: P3's SCT event is line 8 of events.csv (header = line 1)
    ev = cohort.events
    assert ev.loc[ev["event"] == "sct", "source_row"].tolist() == [8]


def test_provenance_survives_blank_lines(make_cohort_dir, tmp_path):
    """A blank line in a hand-edited CSV must not shift the reported line numbers."""
    folder = make_cohort_dir(
        tmp_path,
        patients="patient_id\nP1\nP2\n",
        events="patient_id,day,event\nP1,1,relapse\n\nP2,-1,relapse\n",
    )
    problems = _problems(folder)
    assert [(p.column, p.value) for p in problems] == [("day", "-1")]
    # "P2,-1,relapse" is on line 4 of the file as a text editor shows it
    assert problems[0].row == 4


def test_utf8_bom_header_is_read(make_cohort_dir, tmp_path):
    """Excel's "CSV UTF-8" starts with a byte-order mark; the first header must still match."""
    folder = make_cohort_dir(tmp_path, patients=None)
    (folder / "patients.csv").write_bytes("\ufeffpatient_id,age_years\nP1,3\n".encode())
    cohort = load_cohort(folder)
    assert cohort.patient_ids == ["P1"]
    assert cohort.patients["age_years"].tolist() == [3.0]


def test_non_utf8_file_is_a_problem_naming_the_file(make_cohort_dir, tmp_path):
    folder = make_cohort_dir(tmp_path, patients="patient_id\nP1\n")
    (folder / "observations.csv").write_bytes(
        "patient_id,day,analyte,value,unit\nP1,1,cd3,5,cells/\xb5L\n".encode("latin-1")
    )
    problems = _problems(folder)
    assert len(problems) == 1
    assert problems[0].file.endswith("observations.csv")
    assert "UTF-8" in problems[0].expected


def test_load_does_not_change_input(valid_cohort_dir):
    before = _tree_bytes(valid_cohort_dir)
    load_cohort(valid_cohort_dir)
    assert _tree_bytes(valid_cohort_dir) == before


def test_input_sha256_tracks_content(make_cohort_dir, tmp_path):
    """Same bytes -> same digest; a change in any table's bytes -> another digest."""
    a = make_cohort_dir(
        tmp_path,
        patients="patient_id\nP1\n",
        events="patient_id,day,event\nP1,3,relapse\n",
        name="a",
    )
    b = make_cohort_dir(
        tmp_path,
        patients="patient_id\nP1\n",
        events="patient_id,day,event\nP1,3,relapse\n",
        name="b",
    )
    c = make_cohort_dir(
        tmp_path,
        patients="patient_id\nP1\n",
        events="patient_id,day,event\nP1,4,relapse\n",
        name="c",
    )
    ha, hb, hc = (load_cohort(p).input_sha256 for p in (a, b, c))
    assert len(ha) == 64 and int(ha, 16) >= 0
    assert ha == hb
    assert ha != hc


def test_nonexistent_path_is_a_problem(tmp_path):
    missing = tmp_path / "no-such-cohort"
    problems = _problems(missing)
    assert len(problems) == 1
    assert str(missing) in problems[0].file


# --------------------------------------------------------------------------- .xlsx workbook


def _csv_folder_to_xlsx(folder: Path, target: Path, sheet_case=str) -> Path:
    with pd.ExcelWriter(target, engine="openpyxl") as writer:
        for name in TABLES:
            path = folder / f"{name}.csv"
            if path.exists():
                df = pd.read_csv(path, dtype=str, keep_default_na=False)
                df.to_excel(writer, sheet_name=sheet_case(name), index=False)
    return target


def test_xlsx_workbook_equals_csv_folder(valid_cohort, valid_cohort_dir, tmp_path):
    book = _csv_folder_to_xlsx(valid_cohort_dir, tmp_path / "cohort.xlsx")
    from_csv = valid_cohort
    from_xlsx = load_cohort(book)
    _assert_tables_equal(from_csv, from_xlsx)
    # provenance names the workbook and the sheet; rows are sheet rows (header = row 1)
    ev = from_xlsx.events
    assert ev["source_file"].str.contains("cohort.xlsx").all()
    assert ev["source_file"].str.contains("events").all()
    assert ev["source_row"].tolist() == list(range(2, len(ev) + 2))


def test_xlsx_sheet_names_case_insensitive(valid_cohort_dir, tmp_path):
    book = _csv_folder_to_xlsx(valid_cohort_dir, tmp_path / "Cohort.xlsx", sheet_case=str.title)
    cohort = load_cohort(book)
    assert cohort.n_patients == 3 and len(cohort.events) == 8


def test_xlsx_with_typed_cells(tmp_path):
    """Cells typed by Excel (numbers, dates, booleans) read the same as their text."""
    import openpyxl

    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "patients"
    ws.append(["patient_id", "age_years", "infusion_date", "infused"])
    ws.append(["P1", 12.5, dt.datetime(2023, 1, 10), True])
    ws.append(["P2", 7, dt.date(2023, 2, 1), False])
    ev = wb.create_sheet("events")
    ev.append(["patient_id", "day", "date", "event", "response"])
    ev.append(["P1", None, dt.datetime(2023, 2, 7), "response", "CR"])  # 28 days after 10 Jan
    ev.append(["P1", 30, None, "relapse", None])
    path = tmp_path / "typed.xlsx"
    wb.save(path)
    cohort = load_cohort(path)
    assert cohort.patients["age_years"].tolist() == [12.5, 7.0]
    assert cohort.patients["infused"].tolist() == [True, False]
    assert cohort.patients["infusion_date"].tolist() == [
        pd.Timestamp("2023-01-10"),
        pd.Timestamp("2023-02-01"),
    ]
    assert cohort.events["day"].tolist() == [28.0, 30.0]


def test_xlsx_problem_names_sheet_and_row(tmp_path):
    import openpyxl

    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "patients"
    ws.append(["patient_id"])
    ws.append(["P1"])
    ae = wb.create_sheet("adverse_events")
    ae.append(["patient_id", "term", "onset_day", "grade"])
    ae.append(["P1", "CRS", 1, 2])
    ae.append(["P1", "CRS", 2, 2.5])
    path = tmp_path / "bad.xlsx"
    wb.save(path)
    problems = _problems(path)
    assert len(problems) == 1
    p = problems[0]
    assert "bad.xlsx" in p.file and "adverse_events" in p.file
    assert (p.row, p.column, p.value) == (3, "grade", "2.5")


# --------------------------------------------------------------------------- dates vs days


def test_iso_dates_become_days_since_infusion(make_cohort_dir, tmp_path):
    folder = make_cohort_dir(
        tmp_path,
        patients="""
            patient_id,infusion_date
            P1,2023-01-10
            P2,2024-02-27
        """,
        events="""
            patient_id,date,event,response
            P1,2023-01-10,response,CR
            P1,2023-02-07,response,CR
            P1,2024-01-10,last_contact,
            P2,2024-03-01,death,
        """,
        adverse_events="""
            patient_id,term,onset_date,resolution_date,grade
            P1,CRS,2023-01-12,2023-01-20,2
        """,
        observations="""
            patient_id,date,analyte,value,unit
            P1,2023-01-17,cart_flow,50,cells/uL
        """,
    )
    cohort = load_cohort(folder)
    # 2023-01-10 -> 2023-02-07 is 28 days; -> 2024-01-10 is 365 days (2023 not leap);
    # 2024-02-27 -> 2024-03-01 is 3 days (2024 is a leap year: 27, 28, 29 Feb)
    assert cohort.events["day"].tolist() == [0.0, 28.0, 365.0, 3.0]
    ae = cohort.adverse_events
    assert (ae["onset_day"].tolist(), ae["resolution_day"].tolist()) == ([2.0], [10.0])
    assert cohort.observations["day"].tolist() == [7.0]


def test_date_and_day_that_agree_are_accepted(make_cohort_dir, tmp_path):
    folder = make_cohort_dir(
        tmp_path,
        patients="patient_id,infusion_date\nP1,2023-01-10\n",
        events="patient_id,day,date,event\nP1,30,2023-02-09,relapse\n",
    )
    assert load_cohort(folder).events["day"].tolist() == [30.0]


def test_date_and_day_that_disagree_are_a_problem(make_cohort_dir, tmp_path):
    folder = make_cohort_dir(
        tmp_path,
        patients="patient_id,infusion_date\nP1,2023-01-10\n",
        events="""
            patient_id,day,date,event
            P1,30,2023-02-09,relapse
            P1,5,2023-01-20,last_contact
        """,
    )
    problems = _problems(folder)
    assert len(problems) == 1
    p = problems[0]
    assert p.file.endswith("events.csv")
    assert p.row == 3
    assert p.column in ("date", "day")
    assert p.value in ("2023-01-20", "5")
    assert "agree" in p.expected


def test_date_without_infusion_date_is_a_problem(make_cohort_dir, tmp_path):
    folder = make_cohort_dir(
        tmp_path,
        patients="patient_id,infusion_date\nP1,2023-01-10\nP2,\n",
        events="patient_id,date,event\nP1,2023-01-20,relapse\nP2,2023-01-20,relapse\n",
    )
    problems = _problems(folder)
    assert [(p.row, p.column, p.value) for p in problems] == [(3, "date", "2023-01-20")]
    assert "infusion_date" in problems[0].expected


def test_event_date_before_infusion_is_a_problem(make_cohort_dir, tmp_path):
    folder = make_cohort_dir(
        tmp_path,
        patients="patient_id,infusion_date\nP1,2023-01-10\n",
        events="patient_id,date,event\nP1,2023-01-05,relapse\n",
    )
    problems = _problems(folder)
    assert [(p.row, p.column, p.value) for p in problems] == [(2, "date", "2023-01-05")]


# --------------------------------------------------------------------------- aliases


ALIASES = [
    # (table CSV header + row template, column, typed text, canonical value)
    ("events", "response", "CRi", "CRi"),
    ("events", "response", "CR with incomplete recovery", "CRi"),
    ("events", "response", "cr_i", "CRi"),
    ("events", "response", "cri", "CRi"),
    ("events", "response", "Complete remission", "CR"),
    ("events", "response", "partial response", "PR"),
    ("events", "response", "no response", "NR"),
    ("events", "cd7_status", "CD7-", "negative"),
    ("events", "cd7_status", "CD7+", "positive"),
    ("events", "cd7_status", "cd7 dim", "dim"),
    ("events", "event", "HSCT", "sct"),
    ("events", "event", "allo-HSCT", "sct"),
    ("events", "event", "last follow-up", "last_contact"),
    ("events", "event", "Last Follow Up", "last_contact"),
    ("events", "event", "lost to follow-up", "lost_to_followup"),
    ("events", "event", "died", "death"),
    ("events", "mrd", "MRD-", "negative"),
    ("events", "mrd", "neg", "negative"),
    ("events", "cause", "sepsis", "infection"),
    ("adverse_events", "term", "cytokine release syndrome", "CRS"),
    ("adverse_events", "term", "acute GVHD", "aGVHD"),
    ("adverse_events", "system", "ASTCT", "ASTCT2019"),
    ("adverse_events", "system", "CTCAE v5.0", "CTCAE5"),
    ("observations", "unit", "cells/µL", "cells/uL"),
    ("observations", "unit", "/mm3", "cells/uL"),
    ("observations", "analyte", "CD3+ T", "cd3"),
    ("patients", "sex", "female", "F"),
    ("patients", "product_source", "new donor", "new_donor"),
    ("patients", "product_source", "third-party", "universal"),
]


_ROW_TEMPLATES = {
    "events": (
        "patient_id,day,event,response,mrd,cd7_status,cause",
        {"day": "28", "event": "response", "response": "CR"},
    ),
    "adverse_events": (
        "patient_id,term,onset_day,grade,system",
        {"term": "CRS", "onset_day": "1", "grade": "1", "system": "ASTCT2019"},
    ),
    "observations": (
        "patient_id,day,analyte,value,unit",
        {"day": "7", "analyte": "cd3", "value": "10", "unit": "cells/uL"},
    ),
    "patients": ("patient_id,sex,product_source", {}),
}


def _alias_tables(indices: list[int]) -> dict[str, str]:
    """Tables holding the aliases ``ALIASES[i]``, each on its own patient's row (A<i>)."""
    lines: dict[str, list[str]] = {t: [] for t in _ROW_TEMPLATES}
    for i in indices:
        table, column, text, _canonical = ALIASES[i]
        header, defaults = _ROW_TEMPLATES[table]
        row = {c: "" for c in header.split(",")} | defaults | {"patient_id": f"A{i:02d}"}
        if table == "events" and column in ("event", "cause"):
            row["event"], row["response"] = ("death", "") if column == "cause" else ("", "")
        row[column] = f'"{text}"'
        lines[table].append(",".join(row[c] for c in header.split(",")))
    pat_rows = {r.split(",")[0]: r for r in lines["patients"]}
    for i in indices:
        pat_rows.setdefault(f"A{i:02d}", f"A{i:02d},,")
    tables = {
        t: _ROW_TEMPLATES[t][0] + "\n" + "\n".join(rows) + "\n"
        for t, rows in lines.items()
        if rows and t != "patients"
    }
    tables["patients"] = (
        _ROW_TEMPLATES["patients"][0]
        + "\n"
        + "\n".join(pat_rows[k] for k in sorted(pat_rows))
        + "\n"
    )
    return tables


@pytest.fixture(scope="module")
def alias_cohort(tmp_path_factory, make_cohort_dir):
    """(cohort, rejected): every alias loaded at once; aliases that the loader rejects are
    set aside (with their problems) and the rest loaded again, so one bad alias does not
    hide the others."""
    indices = list(range(len(ALIASES)))
    rejected: dict[int, list] = {}
    for attempt in range(3):
        folder = make_cohort_dir(
            tmp_path_factory.mktemp(f"aliases{attempt}"), **_alias_tables(indices)
        )
        try:
            return load_cohort(folder), rejected
        except CohortError as exc:
            for p in exc.problems:
                i = next((j for j in indices if ALIASES[j][2] == p.value), None)
                if i is None:
                    raise
                rejected.setdefault(i, []).append(p)
            indices = [i for i in indices if i not in rejected]
    raise AssertionError("alias cohort did not load")


@pytest.mark.parametrize(
    ("table", "column", "text", "canonical"),
    ALIASES,
    ids=[f"{t}.{c}={x}" for t, c, x, _ in ALIASES],
)
def test_aliases_map_to_canonical_values(alias_cohort, table, column, text, canonical):
    cohort, rejected = alias_cohort
    i = ALIASES.index((table, column, text, canonical))
    assert i not in rejected, f"{text!r} was rejected: {rejected.get(i)}"
    df = cohort.table(table)
    assert df.loc[df["patient_id"] == f"A{i:02d}", column].tolist() == [canonical]


def test_unknown_spelling_is_not_mapped(make_cohort_dir, tmp_path):
    folder = make_cohort_dir(
        tmp_path,
        patients="patient_id\nP1\n",
        events="patient_id,day,event,response\nP1,28,response,complete-ish\n",
    )
    problems = _problems(folder)
    assert [(p.row, p.column, p.value) for p in problems] == [(2, "response", "complete-ish")]


# --------------------------------------------------------------------------- extra columns


def test_extra_columns_are_kept_as_subgroups(valid_cohort, valid_cohort_dir):
    cohort = valid_cohort
    pts = cohort.patients
    assert pts["arm"].tolist() == ["A", "B", "B"]
    # "<5" in an unknown column is kept as text, not rejected, not turned into a number
    assert pts["note"].tolist()[:2] == ["<5", "ok"]
    assert pts.groupby("arm")["patient_id"].count().to_dict() == {"A": 1, "B": 2}


def test_numeric_extra_column_is_numeric(make_cohort_dir, tmp_path):
    folder = make_cohort_dir(tmp_path, patients="patient_id,ldh_baseline\nP1,250\nP2,\nP3,1e3\n")
    col = load_cohort(folder).patients["ldh_baseline"]
    assert col.iloc[0] == 250.0 and pd.isna(col.iloc[1]) and col.iloc[2] == 1000.0


# --------------------------------------------------------------------------- write_cohort


def test_write_then_load_is_lossless(valid_cohort, tmp_path):
    first = valid_cohort
    out = write_cohort(first, tmp_path / "written")
    assert Path(out) == tmp_path / "written"
    second = load_cohort(out)
    _assert_tables_equal(first, second)


def test_write_is_deterministic(valid_cohort, tmp_path):
    cohort = valid_cohort
    a = write_cohort(cohort, tmp_path / "a")
    b = write_cohort(load_cohort(a), tmp_path / "b")
    assert _tree_bytes(Path(a)) == _tree_bytes(Path(b))


def test_write_with_dates_round_trips(make_cohort_dir, tmp_path):
    folder = make_cohort_dir(
        tmp_path,
        patients="patient_id,infusion_date\nP1,2023-01-10\n",
        events="patient_id,date,event\nP1,2023-02-09,relapse\n",
    )
    first = load_cohort(folder)
    second = load_cohort(write_cohort(first, tmp_path / "out"))
    assert second.events["day"].tolist() == [30.0]
    assert second.patients["infusion_date"].tolist() == [pd.Timestamp("2023-01-10")]


def test_write_into_non_empty_folder_fails_and_leaves_nothing(valid_cohort, tmp_path):
    cohort = valid_cohort
    target = tmp_path / "target"
    target.mkdir()
    (target / "keep.txt").write_text("do not touch")
    before_parent = sorted(p.name for p in tmp_path.iterdir())
    with pytest.raises((FileExistsError, OSError, ValueError)):
        write_cohort(cohort, target)
    assert _tree_bytes(target) == {"keep.txt": b"do not touch"}
    # no temporary folder or half-written file left beside it
    assert sorted(p.name for p in tmp_path.iterdir()) == before_parent


def test_write_into_empty_folder_is_allowed(valid_cohort, tmp_path):
    cohort = valid_cohort
    target = tmp_path / "empty"
    target.mkdir()
    write_cohort(cohort, target)
    assert (target / "patients.csv").exists()
    assert load_cohort(target).n_patients == 3


_day = st.floats(min_value=0, max_value=5000, allow_nan=False, allow_infinity=False)
_text = st.text(
    alphabet=st.characters(codec="utf-8", exclude_categories=("Cs", "Cc", "Zl", "Zp")),
    min_size=1,
    max_size=12,
).filter(
    lambda s: (
        s.strip() == s
        and s.lower()
        not in {"", "na", "n/a", "nan", "null", "none", ".", "missing", "nd", "not done"}
    )
)


# each example writes and reads files: no shrinking phase, so a failure reports in seconds
@settings(
    max_examples=8,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    phases=[Phase.explicit, Phase.reuse, Phase.generate],
)
@given(days=st.lists(_day, min_size=1, max_size=6), label=_text)
def test_round_trip_property(days, label):
    """load(write(cohort)) equals cohort: float days bit-exact, free text unchanged."""
    patients = pd.DataFrame({"patient_id": ["P1"], "label": [label]})
    events = pd.DataFrame(
        {"patient_id": ["P1"] * len(days), "day": days, "event": ["last_contact"] * len(days)}
    )
    first = cohort_from_frames(patients, events)
    with tempfile.TemporaryDirectory() as tmp:
        second = load_cohort(write_cohort(first, Path(tmp) / "c"))
    assert second.events["day"].tolist() == first.events["day"].tolist()
    assert second.patients["label"].tolist() == first.patients["label"].tolist()


def test_numbers_are_parsed_exactly(make_cohort_dir, tmp_path):
    """A decimal in the file is read as the nearest double (Python's float), not 1 ulp off."""
    text = "36.131486445449355"
    folder = make_cohort_dir(
        tmp_path,
        patients="patient_id\nP1\n",
        events=f"patient_id,day,event\nP1,{text},last_contact\n",
    )
    assert load_cohort(folder).events["day"].tolist() == [float(text)]
    frames = cohort_from_frames(
        pd.DataFrame({"patient_id": ["P1"]}),
        pd.DataFrame({"patient_id": ["P1"], "day": [float(text)], "event": ["last_contact"]}),
    )
    assert frames.events["day"].tolist() == [float(text)]


# --------------------------------------------------------------------------- cohort_from_frames


def test_cohort_from_frames_equals_files(valid_cohort, valid_cohort_dir):
    raw = {
        name: pd.read_csv(valid_cohort_dir / f"{name}.csv", dtype=str, keep_default_na=False)
        for name in TABLES
    }
    from_files = valid_cohort
    from_frames = cohort_from_frames(
        raw["patients"], raw["events"], raw["adverse_events"], raw["observations"]
    )
    _assert_tables_equal(from_files, from_frames)


def test_cohort_from_frames_accepts_a_loaded_cohort(valid_cohort):
    c = valid_cohort
    again = cohort_from_frames(c.patients, c.events, c.adverse_events, c.observations)
    _assert_tables_equal(c, again)


def test_cohort_from_frames_applies_file_rules():
    patients = pd.DataFrame({"patient_id": ["P1", "P2", "P1"]})
    events = pd.DataFrame(
        {"patient_id": ["P1", "P9"], "day": [-1.0, 3.0], "event": ["relapse", "relapse"]}
    )
    adverse = pd.DataFrame(
        {"patient_id": ["P1"], "term": ["CRS"], "onset_day": [1.0], "grade": [5.5]}
    )
    obs = pd.DataFrame(
        {
            "patient_id": ["P1"],
            "day": [1.0],
            "analyte": ["cd3"],
            "value": ["<5"],
            "unit": ["cells/uL"],
        }
    )
    with pytest.raises(CohortError) as info:
        cohort_from_frames(patients, events, adverse, obs, source="mem")
    found = {(p.file.split(":")[-1], p.row, p.column) for p in info.value.problems}
    assert ("patients", 4, "patient_id") in found  # duplicate, CSV-style row number
    assert ("events", 2, "day") in found  # negative time
    assert ("events", 3, "patient_id") in found  # unknown patient
    assert ("adverse_events", 2, "grade") in found  # 5.5 is not rounded to a grade
    assert ("observations", 2, "value") in found  # "<5" is not a number
    assert len(info.value.problems) == 5


def test_cohort_from_frames_hash_is_deterministic():
    p = pd.DataFrame({"patient_id": ["P1", "P2"], "age_years": [3.0, 40.0]})
    h = cohort_from_frames(p).input_sha256
    assert h == cohort_from_frames(p.copy()).input_sha256
    assert h != cohort_from_frames(p.assign(age_years=[3.0, 41.0])).input_sha256
