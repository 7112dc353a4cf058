"""Validation of the cohort format: every error class is reported with file, row, column,
the bad value and what was expected (DESIGN.md: "Bad input gets a clear error naming file,
row and column, and what was expected; nothing is silently dropped or coerced").

Each case is checked twice: through ``load_cohort`` (the exact ``Problem`` fields, and no
other problem) and through ``cartrial validate`` (exit 1, every problem printed).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cartrial.cli import app
from cartrial.cohort import CohortError, load_cohort, validate_path

PATIENTS = "patient_id,infusion_date\nP1,2023-01-10\nP2,2023-01-12\n"


@dataclass(frozen=True)
class Expect:
    """One expected problem: file name, CSV line (header = 1), column, value as typed."""

    file: str
    row: int | None
    column: str | None
    value: str | None
    expected: str  # a fragment of the "expected ..." text


@dataclass(frozen=True)
class Case:
    tables: dict[str, str]
    problems: tuple[Expect, ...]


def _ev(*rows: str, header: str = "patient_id,day,event,response,cause") -> str:
    return header + "\n" + "\n".join(rows) + "\n"


def _ae(*rows: str, header: str = "patient_id,term,onset_day,resolution_day,grade") -> str:
    return header + "\n" + "\n".join(rows) + "\n"


def _obs(*rows: str, header: str = "patient_id,day,analyte,value,unit") -> str:
    return header + "\n" + "\n".join(rows) + "\n"


CASES: dict[str, Case] = {
    "duplicate patient_id": Case(
        {"patients": "patient_id\nP1\nP2\nP1\n"},
        (Expect("patients.csv", 4, "patient_id", "P1", "unique"),),
    ),
    "blank patient_id": Case(
        {"patients": "patient_id,age_years\nP1,3\n,4\n"},
        (Expect("patients.csv", 3, "patient_id", "", "patient_id"),),
    ),
    "event for unknown patient": Case(
        {"patients": PATIENTS, "events": _ev("P1,3,relapse,,", "P9,4,relapse,,")},
        (Expect("events.csv", 3, "patient_id", "P9", "patients"),),
    ),
    "AE for unknown patient": Case(
        {"patients": PATIENTS, "adverse_events": _ae("P7,CRS,1,2,1")},
        (Expect("adverse_events.csv", 2, "patient_id", "P7", "patients"),),
    ),
    "observation for unknown patient": Case(
        {"patients": PATIENTS, "observations": _obs("X1,1,crp,5,mg/L")},
        (Expect("observations.csv", 2, "patient_id", "X1", "patients"),),
    ),
    "negative event day": Case(
        {"patients": PATIENTS, "events": _ev("P1,-1,relapse,,")},
        (Expect("events.csv", 2, "day", "-1", "0"),),
    ),
    "non-numeric event day": Case(
        {"patients": PATIENTS, "events": _ev("P1,day 5,relapse,,")},
        (Expect("events.csv", 2, "day", "day 5", "number"),),
    ),
    "non-numeric AE onset": Case(
        {"patients": PATIENTS, "adverse_events": _ae("P1,CRS,tomorrow,,2")},
        (Expect("adverse_events.csv", 2, "onset_day", "tomorrow", "number"),),
    ),
    "non-numeric observation day": Case(
        {"patients": PATIENTS, "observations": _obs("P1,d7,crp,5,mg/L")},
        (Expect("observations.csv", 2, "day", "d7", "number"),),
    ),
    "event after death": Case(
        {"patients": PATIENTS, "events": _ev("P1,10,death,,infection", "P1,12,last_contact,,")},
        (Expect("events.csv", 3, "day", "12", "death"),),
    ),
    "AE after death": Case(
        {
            "patients": PATIENTS,
            "events": _ev("P1,10,death,,infection"),
            "adverse_events": _ae("P1,CRS,11,12,1"),
        },
        (Expect("adverse_events.csv", 2, "onset_day", "11", "death"),),
    ),
    "observation after death": Case(
        {
            "patients": PATIENTS,
            "events": _ev("P1,10,death,,infection"),
            "observations": _obs("P1,15,crp,5,mg/L"),
        },
        (Expect("observations.csv", 2, "day", "15", "death"),),
    ),
    "two deaths": Case(
        {"patients": PATIENTS, "events": _ev("P1,10,death,,infection", "P1,10,death,,other")},
        (Expect("events.csv", 3, "event", "death", "one death"),),
    ),
    "response not in vocabulary": Case(
        {"patients": PATIENTS, "events": _ev("P1,28,response,XX,")},
        (Expect("events.csv", 2, "response", "XX", "CRi"),),
    ),
    "response event without a response": Case(
        {"patients": PATIENTS, "events": _ev("P1,28,response,,")},
        (Expect("events.csv", 2, "response", "", "response"),),
    ),
    "event type not in vocabulary": Case(
        {"patients": PATIENTS, "events": _ev("P1,28,relapsing,,")},
        (Expect("events.csv", 2, "event", "relapsing", "relapse"),),
    ),
    "death cause not in vocabulary": Case(
        {"patients": PATIENTS, "events": _ev("P1,28,death,,bad luck")},
        (Expect("events.csv", 2, "cause", "bad luck", "infection"),),
    ),
    "missing required column event": Case(
        {"patients": PATIENTS, "events": "patient_id,day\nP1,3\n"},
        (Expect("events.csv", None, "event", None, "required"),),
    ),
    "missing required column patient_id": Case(
        {"patients": "id,age_years\nP1,3\n"},
        (Expect("patients.csv", None, "patient_id", None, "required"),),
    ),
    "missing required column grade": Case(
        {"patients": PATIENTS, "adverse_events": "patient_id,term,onset_day\nP1,CRS,1\n"},
        (Expect("adverse_events.csv", None, "grade", None, "grade"),),
    ),
    "duplicate column header": Case(  # which 'day' is meant? never guessed silently
        {"patients": PATIENTS, "events": "patient_id,day,event,day\nP1,3,relapse,5\n"},
        (Expect("events.csv", None, "day", None, ""),),
    ),
    "missing day and date columns": Case(
        {"patients": PATIENTS, "events": "patient_id,event\nP1,death\n"},
        (Expect("events.csv", None, "day", None, "date"),),
    ),
    "unparseable event date": Case(
        {"patients": PATIENTS, "events": "patient_id,date,event\nP1,2023-02-30,relapse\n"},
        (Expect("events.csv", 2, "date", "2023-02-30", "ISO date"),),
    ),
    "unparseable infusion date": Case(
        {"patients": "patient_id,infusion_date\nP1,10/01/2023\nP2,yesterday\n"},
        (
            Expect("patients.csv", 2, "infusion_date", "10/01/2023", "ISO date"),
            Expect("patients.csv", 3, "infusion_date", "yesterday", "ISO date"),
        ),
    ),
    "grade above 5": Case(
        {"patients": PATIENTS, "adverse_events": _ae("P1,CRS,1,2,6")},
        (Expect("adverse_events.csv", 2, "grade", "6", "5"),),
    ),
    "grade below 0": Case(
        {"patients": PATIENTS, "adverse_events": _ae("P1,CRS,1,2,-1")},
        (Expect("adverse_events.csv", 2, "grade", "-1", "0"),),
    ),
    "non-integer grade 5.5 is not rounded": Case(
        {"patients": PATIENTS, "adverse_events": _ae("P1,CRS,1,2,5.5")},
        (Expect("adverse_events.csv", 2, "grade", "5.5", "whole number"),),
    ),
    "non-integer grade 2.5": Case(
        {"patients": PATIENTS, "adverse_events": _ae("P1,CRS,1,2,2.5")},
        (Expect("adverse_events.csv", 2, "grade", "2.5", "whole number"),),
    ),
    # study days end 100 years after the infusion (MAX_DAY), the same rule as the database
    "event day beyond 100 years": Case(
        {"patients": PATIENTS, "events": _ev("P1,36501,last_contact,,")},
        (Expect("events.csv", 2, "day", "36501", "≤ 36500"),),
    ),
    "adverse event resolution beyond 100 years": Case(
        {"patients": PATIENTS, "adverse_events": _ae("P1,CRS,1,36501,2")},
        (Expect("adverse_events.csv", 2, "resolution_day", "36501", "≥ -60 and ≤ 36500"),),
    ),
    "observation day beyond 100 years": Case(
        {"patients": PATIENTS, "observations": _obs("P1,40000,crp,5,mg/L")},
        (Expect("observations.csv", 2, "day", "40000", "≤ 36500"),),
    ),
    # 2023-01-10 + 36500 days = 2122-12-17: the last date allowed
    "event date beyond 100 years": Case(
        {
            "patients": PATIENTS,
            "events": "patient_id,date,event\nP1,2122-12-17,last_contact\nP1,2122-12-18,last_contact\n",
        },
        (Expect("events.csv", 3, "date", "2122-12-18", "no later than 36500 days after"),),
    ),
    "roman numeral grade": Case(
        {"patients": PATIENTS, "adverse_events": _ae("P1,CRS,1,2,II")},
        (Expect("adverse_events.csv", 2, "grade", "II", "number"),),
    ),
    "resolution before onset": Case(
        {"patients": PATIENTS, "adverse_events": _ae("P1,CRS,5,3,2")},
        (Expect("adverse_events.csv", 2, "resolution_day", "3", "onset"),),
    ),
    "unit cells/L for a cells/uL analyte": Case(
        {"patients": PATIENTS, "observations": _obs("P1,7,cd3,5e8,cells/L")},
        (Expect("observations.csv", 2, "unit", "cells/L", "cells/uL"),),
    ),
    # cells/uL is accepted for counts since issue 11 (converted to 10^9/L on load)
    "unit mg/dL for a count analyte": Case(
        {"patients": PATIENTS, "observations": _obs("P1,7,anc,1500,mg/dL")},
        (Expect("observations.csv", 2, "unit", "mg/dL", "10^9/L"),),
    ),
    "unknown analyte": Case(
        {"patients": PATIENTS, "observations": _obs("P1,7,foo,5,cells/uL")},
        (Expect("observations.csv", 2, "analyte", "foo", "cart_flow"),),
    ),
    "negative count": Case(
        {"patients": PATIENTS, "observations": _obs("P1,7,cd3,-5,cells/uL")},
        (Expect("observations.csv", 2, "value", "-5", "non-negative"),),
    ),
    "'<5' in a numeric observation value": Case(
        {"patients": PATIENTS, "observations": _obs("P1,7,cd3,<5,cells/uL")},
        (Expect("observations.csv", 2, "value", "<5", "number"),),
    ),
    "'<5' in a numeric patients column": Case(
        {"patients": "patient_id,age_years,bm_blasts_pct\nP1,12,<5\n"},
        (Expect("patients.csv", 2, "bm_blasts_pct", "<5", "number"),),
    ),
    "age out of range": Case(
        {"patients": "patient_id,age_years\nP1,130\n"},
        (Expect("patients.csv", 2, "age_years", "130", "120"),),
    ),
    "yes/no column with another word": Case(
        {"patients": "patient_id,infused\nP1,maybe\n"},
        (Expect("patients.csv", 2, "infused", "maybe", "yes"),),
    ),
    "MRD fraction above 1": Case(
        {
            "patients": PATIENTS,
            "events": "patient_id,day,event,response,mrd\nP1,28,response,CR,1.5\n",
        },
        (Expect("events.csv", 2, "mrd", "1.5", "between 0 and 1"),),
    ),
    "missing patients.csv": Case(
        {"events": _ev("P1,3,relapse,,")},
        (Expect("patients.csv", None, None, None, "patients.csv"),),
    ),
    "empty patients.csv": Case(
        {"patients": ""}, (Expect("patients.csv", None, None, None, "header"),)
    ),
    "empty events.csv": Case(
        {"patients": PATIENTS, "events": ""}, (Expect("events.csv", None, None, None, "header"),)
    ),
}


def _same_value(found: str | None, typed: str | None) -> bool:
    """The reported value is the cell as typed (a number may be shown re-formatted)."""
    if found == typed:
        return True
    try:
        return float(found) == float(typed)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return False


def _matches(p, e: Expect) -> bool:
    return (
        Path(p.file).name == e.file
        and p.row == e.row
        and p.column == e.column
        and _same_value(p.value, e.value)
        and e.expected in p.expected
    )


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


@pytest.fixture
def load_spy(monkeypatch):
    """Record what ``load_cohort`` raised while the CLI ran (one load serves both checks)."""
    import cartrial.cohort as cohort_pkg

    raised: list[CohortError] = []
    real = cohort_pkg.load_cohort

    def spy(path):
        try:
            return real(path)
        except CohortError as exc:
            raised.append(exc)
            raise

    monkeypatch.setattr(cohort_pkg, "load_cohort", spy)
    return raised


@pytest.mark.parametrize("name", list(CASES))
def test_error_class_is_reported_precisely(make_cohort_dir, tmp_path, runner, load_spy, name):
    """``load_cohort`` raises exactly these problems; ``cartrial validate`` prints each one."""
    case = CASES[name]
    folder = make_cohort_dir(tmp_path, **case.tables)
    result = runner.invoke(app, ["validate", str(folder)])
    assert len(load_spy) == 1, "the CLI loads through cartrial.cohort.load_cohort"
    problems = load_spy[0].problems
    for e in case.problems:
        assert any(_matches(p, e) for p in problems), f"{e} not in {problems}"
    # nothing else is reported (each file above has exactly these faults)
    assert len(problems) == len(case.problems), problems
    assert all(p.expected for p in problems), "every problem says what was expected"

    assert result.exit_code == 1, result.output
    out = result.output
    assert "INVALID" in out
    for e in case.problems:
        line = next(
            (
                ln
                for ln in out.splitlines()
                if e.file in ln
                and (e.row is None or f"row {e.row}" in ln)
                and (e.column is None or f"'{e.column}'" in ln)
            ),
            None,
        )
        assert line is not None, f"no line for {e} in:\n{out}"
        if e.value not in (None, ""):
            assert e.value in line or _reformatted_in(e.value, line), line
        assert e.expected in line, line


def _reformatted_in(value: str, line: str) -> bool:
    try:
        v = float(value)
    except ValueError:
        return False
    return any(f"'{s}'" in line for s in (f"{v:g}", repr(v)))


def test_malformed_xlsx(tmp_path, runner):
    path = tmp_path / "broken.xlsx"
    path.write_bytes(b"PK\x03\x04 this is not a workbook")
    with pytest.raises(CohortError) as info:
        load_cohort(path)
    (p,) = info.value.problems
    assert Path(p.file).name == "broken.xlsx" and ".xlsx" in p.expected
    result = runner.invoke(app, ["validate", str(path)])
    assert result.exit_code == 1
    assert "broken.xlsx" in result.output


def test_xlsx_without_patients_sheet(tmp_path):
    import openpyxl

    wb = openpyxl.Workbook()
    wb.active.title = "events"
    wb.active.append(["patient_id", "day", "event"])
    wb.create_sheet("observations").append(["patient_id", "day", "analyte", "value"])
    path = tmp_path / "nopatients.xlsx"
    wb.save(path)
    with pytest.raises(CohortError) as info:
        load_cohort(path)
    assert any("patients" in p.expected for p in info.value.problems)


def test_semicolon_csv_is_a_clear_problem(make_cohort_dir, tmp_path):
    """A European-Excel ';' file is not guessed at: the missing column is named."""
    folder = make_cohort_dir(tmp_path, patients="patient_id;age_years\nP1;3\n")
    with pytest.raises(CohortError) as info:
        load_cohort(folder)
    assert [p.column for p in info.value.problems] == ["patient_id"]


def test_several_errors_in_one_file_are_all_listed(make_cohort_dir, tmp_path, runner):
    folder = make_cohort_dir(
        tmp_path,
        patients=PATIENTS,
        events=_ev(
            "P1,28,response,CR,",  # fine
            "P1,-3,relapse,,",  # negative day
            "P2,abc,relapse,,",  # non-numeric day
            "P1,40,response,XX,",  # unknown response
            "P9,50,relapse,,",  # unknown patient
            "P2,60,relapsing,,",  # unknown event type
        ),
        adverse_events=_ae("P1,CRS,1,2,5.5", "P1,CRS,3,1,2", "P2,ICANS,2,3,7"),
    )
    with pytest.raises(CohortError) as info:
        load_cohort(folder)
    got = {(Path(p.file).name, p.row, p.column) for p in info.value.problems}
    want = {
        ("events.csv", 3, "day"),
        ("events.csv", 4, "day"),
        ("events.csv", 5, "response"),
        ("events.csv", 6, "patient_id"),
        ("events.csv", 7, "event"),
        ("adverse_events.csv", 2, "grade"),
        ("adverse_events.csv", 3, "resolution_day"),
        ("adverse_events.csv", 4, "grade"),
    }
    assert got == want
    # the error message itself lists every problem too
    assert str(info.value).count("\n  - ") == len(want)
    result = runner.invoke(app, ["validate", str(folder)])
    assert result.exit_code == 1
    assert result.output.count("  - ") == len(want)


def test_problems_are_sorted_by_file_and_row(make_cohort_dir, tmp_path):
    folder = make_cohort_dir(
        tmp_path,
        patients=PATIENTS,
        events=_ev("P1,-3,relapse,,", "P9,1,relapse,,", "P1,x,relapse,,"),
    )
    with pytest.raises(CohortError) as info:
        load_cohort(folder)
    rows = [p.row for p in info.value.problems]
    assert rows == sorted(rows) == [2, 3, 4]


def test_validate_path_returns_problems_without_raising(make_cohort_dir, tmp_path):
    bad = make_cohort_dir(tmp_path, patients="patient_id\nP1\nP1\n", name="bad")
    good = make_cohort_dir(tmp_path, patients="patient_id\nP1\n", name="good")
    cohort, problems = validate_path(bad)
    assert cohort is None and len(problems) == 1
    cohort, problems = validate_path(good)
    assert problems == [] and cohort.n_patients == 1


def test_problem_text_names_every_part(make_cohort_dir, tmp_path):
    folder = make_cohort_dir(tmp_path, patients=PATIENTS, adverse_events=_ae("P1,CRS,1,2,5.5"))
    with pytest.raises(CohortError) as info:
        load_cohort(folder)
    text = str(info.value.problems[0])
    for part in ("adverse_events.csv", "row 2", "'grade'", "'5.5'", "expected"):
        assert part in text


def test_extra_column_with_text_is_not_an_error(make_cohort_dir, tmp_path):
    folder = make_cohort_dir(
        tmp_path,
        patients=PATIENTS,
        observations=_obs("P1,7,cd3,5,cells/uL", header="patient_id,day,analyte,value,unit")
        .replace("unit\n", "unit,comment\n")
        .replace("cells/uL\n", "cells/uL,<5 below LLOQ\n"),
    )
    cohort = load_cohort(folder)
    assert cohort.observations["comment"].tolist() == ["<5 below LLOQ"]


def test_british_spellings_of_terms_are_read_as_the_american_ones(make_cohort_dir, tmp_path):
    """Sites write British spellings (CTCAE and the vocabulary are American): the folding
    grading uses (``vocab.american``) is the cohort's too; an unknown word is still refused."""
    from cartrial.cohort import CohortError, load_cohort

    folder = make_cohort_dir(
        tmp_path,
        patients="patient_id\nP1\nP2\n",
        adverse_events=(
            "patient_id,term,onset_day,resolution_day,grade,system\n"
            "P1,thrombocytopaenia,10,40,4,CTCAE\n"
            "P1,anaemia,12,30,3,CTCAE\n"
            "P2,diarrhoea,3,5,1,CTCAE\n"
        ),
    )
    terms = load_cohort(folder).adverse_events["term"].tolist()
    assert terms == ["thrombocytopenia", "anemia", "diarrhea"]
    bad = make_cohort_dir(
        tmp_path / "bad",
        patients="patient_id\nP1\n",
        adverse_events="patient_id,term,onset_day,resolution_day,grade,system\n"
        "P1,thrombocytopaeniax,10,40,4,CTCAE\n",
    )
    with pytest.raises(CohortError) as err:
        load_cohort(bad)
    assert "thrombocytopaeniax" in str(err.value)
