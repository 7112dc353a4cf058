"""Shared fixtures: cohorts written as CSV text, exactly as a user would type them."""

from __future__ import annotations

import csv
import os
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

TABLE_NAMES = ("patients", "events", "adverse_events", "observations")
#: the bundled copy of Tan et al., J Hematol Oncol 2023;16:34, patient table (CC BY 4.0)
TAN2023_BUNDLED = (
    Path(__file__).resolve().parents[1] / "src" / "cartrial" / "examples" / "data" / "tan2023.csv"
)
#: the team's independent transcription of the same table
TAN2023_SHARED = Path(__file__).resolve().parent / "data" / "tan2023_table1.csv"


def write_cohort_dir(
    base: Path,
    patients: str | None = None,
    events: str | None = None,
    adverse_events: str | None = None,
    observations: str | None = None,
    name: str = "cohort",
) -> Path:
    """Write the given tables (CSV text, dedented) as ``base/name/<table>.csv``.

    A table given as None is not written; ``""`` writes an empty file.
    """
    folder = Path(base) / name
    folder.mkdir(parents=True, exist_ok=False)
    texts = {
        "patients": patients,
        "events": events,
        "adverse_events": adverse_events,
        "observations": observations,
    }
    for table, text in texts.items():
        if text is None:
            continue
        body = textwrap.dedent(text).lstrip("\n")
        (folder / f"{table}.csv").write_text(body, encoding="utf-8")
    return folder


@pytest.fixture(scope="session")
def make_cohort_dir() -> Callable[..., Path]:
    """``make_cohort_dir(tmp_path, patients=..., events=..., ...)`` -> the cohort folder."""
    return write_cohort_dir


def read_csv_rows(path: Path) -> list[dict[str, str]]:
    """Rows of a CSV as dicts of text, read with the standard library (independent of pandas)."""
    with open(path, newline="", encoding="utf-8-sig") as fh:
        return list(csv.DictReader(fh))


@pytest.fixture(name="read_csv_rows")
def read_csv_rows_fixture() -> Callable[[Path], list[dict[str, str]]]:
    """``read_csv_rows(path)``: a CSV's rows as dicts of text (standard library only)."""
    return read_csv_rows


@pytest.fixture
def tan2023_path() -> Path:
    """The bundled Tan 2023 wide table (what ``load_cohort("tan2023")`` reads)."""
    return TAN2023_BUNDLED


@pytest.fixture
def tan2023_rows() -> list[dict[str, str]]:
    """The bundled Tan 2023 table, read independently of cartrial."""
    return read_csv_rows(TAN2023_BUNDLED)


@pytest.fixture(scope="session")
def valid_cohort_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small valid four-table cohort (3 patients) used by several tests (read-only)."""
    return write_cohort_dir(
        tmp_path_factory.mktemp("valid"),
        patients="""
            patient_id,age_years,sex,infusion_date,product_source,arm,note
            P1,12.5,M,2023-01-10,prior_sct_donor,A,<5
            P2,7,female,2023-02-01,new donor,B,ok
            P3,30,F,2023-03-05,universal,B,
        """,
        events="""
            patient_id,day,event,response,mrd,cd7_status,cause
            P1,28,response,CR,negative,,
            P1,100,relapse,,,CD7-,
            P1,150,death,,,,relapse
            P2,28,response,CRi,0.001,,
            P2,200,last follow-up,,,,
            P3,30,response,NR,,,
            P3,45,HSCT,,,,
            P3,90,last_contact,,,,
        """,
        adverse_events="""
            patient_id,term,onset_day,resolution_day,grade,system
            P1,CRS,1,5,2,ASTCT
            P2,ICANS,3,,1,ASTCT2019
            P3,aGVHD,40,60,2,MAGIC
        """,
        observations="""
            patient_id,day,analyte,value,unit
            P1,7,cart_flow,123.4,cells/µL
            P1,7,oxygen,low flow nasal cannula,
            P2,0.5,crp,0.1,mg/l
            P3,14,cd3,250,cells/uL
        """,
    )


@pytest.fixture(scope="session")
def valid_cohort(valid_cohort_dir: Path):
    """``valid_cohort_dir`` loaded once (tests must not modify its tables)."""
    from cartrial.cohort import load_cohort

    return load_cohort(valid_cohort_dir)


# CI runs every property test on a fixed sequence of examples (derandomized), so a
# landing is decided by the code, not by a draw; locally, hypothesis explores afresh.
if os.environ.get("CI"):
    from hypothesis import settings as _hypothesis_settings

    _hypothesis_settings.register_profile("ci", derandomize=True, print_blob=True)
    _hypothesis_settings.load_profile("ci")


#: the default run (slow tests left out) should stay under 3 minutes on 2 idle cores
TEST_TIME_BUDGET_S = 180.0


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    """Print the test-time budget: wall time of this run against ``TEST_TIME_BUDGET_S``
    (informative only; tests never assert on time, CI machines can be loaded)."""
    start = getattr(terminalreporter, "_session_start", None)  # pytest >= 8.4 (pyproject)
    if start is None:
        return
    elapsed = start.elapsed().seconds
    over = (
        " — over budget: mark the slowest tests slow or make them faster"
        if (elapsed > TEST_TIME_BUDGET_S)
        else ""
    )
    terminalreporter.write_line(
        f"test-time budget: {elapsed:.0f} s of {TEST_TIME_BUDGET_S:.0f} s{over}"
    )
