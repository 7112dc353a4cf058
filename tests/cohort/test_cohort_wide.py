"""The wide per-patient table (DESIGN.md: "A single wide CSV ... is also a valid input"),
checked on the Tan 2023 table (Tan et al., J Hematol Oncol 2023;16:34, CC BY 4.0).

Expected values are read from the CSV with the standard library (``tan2023_rows``) or
taken from the paper (20 patients, median OS 18.3 months, 2-year OS 42.3%), never from
cartrial's own output. Months are converted with 30.4375 days/month (DESIGN.md).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from cartrial.cli import app
from cartrial.cohort import CohortError, bundled_example, load_cohort
from cartrial.endpoints import best_response, derive_endpoints

DAYS_PER_MONTH = 30.4375
#: the team's independent transcription of the same table (tests/data)
SHARED = Path(__file__).resolve().parents[1] / "data" / "tan2023_table1.csv"


@pytest.fixture(scope="module")
def tan():
    return load_cohort("tan2023")


def test_bundled_example_resolves():
    path = bundled_example("tan2023")
    assert path is not None and path.exists()
    assert bundled_example("no-such-example") is None


def test_tan2023_loads_as_wide_with_20_patients(tan, tan2023_rows):
    assert tan.layout == "wide"
    assert tan.n_patients == 20 == len(tan2023_rows)
    assert tan.patient_ids == [r["patient_id"] for r in tan2023_rows]
    assert tan.patients["source_row"].tolist() == list(range(2, 22))


def test_shared_transcription_loads_the_same(tan):
    shared = load_cohort(SHARED)
    assert shared.layout == "wide" and shared.n_patients == 20
    pd.testing.assert_frame_equal(
        shared.given_endpoints.drop(columns=["source", "source_file"]),
        tan.given_endpoints.drop(columns=["source", "source_file"]),
    )


def test_os_rows_from_followup_and_os_event(tan, tan2023_rows):
    os_rows = derive_endpoints(tan)
    assert set(os_rows["endpoint"]) == {"OS"}, "a wide table gives only the endpoints it states"
    assert len(os_rows) == 20
    by_id = os_rows.set_index("patient_id")
    for r in tan2023_rows:
        row = by_id.loc[r["patient_id"]]
        assert row["time_days"] == pytest.approx(float(r["followup_months"]) * DAYS_PER_MONTH)
        assert int(row["event"]) == int(r["os_event"])
    # the published table lists 10 deaths among the 20 patients
    assert int(os_rows["event"].sum()) == sum(int(r["os_event"]) for r in tan2023_rows) == 10
    assert set(os_rows["event"].unique()) <= {0, 1}


def test_os_rows_point_at_source_row(tan):
    os_rows = derive_endpoints(tan).set_index("patient_id")
    # E007 is on line 8 of the CSV (header = line 1)
    assert "row 8" in os_rows.loc["E007", "source"]
    assert "tan2023" in os_rows.loc["E007", "source"]


def _product_limit(time: np.ndarray, event: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Kaplan-Meier survival at each distinct event time (textbook product-limit)."""
    times = np.unique(time[event == 1])
    surv, s = [], 1.0
    for t in times:
        at_risk = np.sum(time >= t)
        deaths = np.sum((time == t) & (event == 1))
        s *= 1.0 - deaths / at_risk
        surv.append(s)
    return times, np.array(surv)


def test_os_matches_the_paper_by_an_independent_km(tan):
    """Median OS 18.3 months and 2-year OS 42.3% (Tan 2023), by a hand product-limit."""
    os_rows = derive_endpoints(tan)
    months = os_rows["time_days"].to_numpy() / DAYS_PER_MONTH
    times, surv = _product_limit(months, os_rows["event"].to_numpy())
    median = times[np.argmax(surv <= 0.5)]
    assert median == pytest.approx(18.3)
    s24 = surv[times <= 24.0][-1]
    assert s24 == pytest.approx(0.423, abs=0.0005)


def test_given_endpoints_equal_derived_rows(tan):
    given = tan.given_endpoints
    derived = derive_endpoints(tan)
    assert given["time_days"].tolist() == derived["time_days"].tolist()
    assert given["event"].astype(int).tolist() == derived["event"].tolist()


def test_day30_response_read_as_events(tan, tan2023_rows):
    best = best_response(tan).set_index("patient_id")
    assert best["best_response"].value_counts().to_dict() == {"CR": 17, "PR": 1, "OR": 1, "NR": 1}
    # ORR 19/20 and CR 17/20 as published
    assert int(best["responder"].sum()) == 19
    assert int((best["best_response"] == "CR").sum()) == 17
    assert best.loc["E006", "best_response"] == "NR"
    assert best.loc["E013", "best_response"] == "OR"  # "objective_response" in the paper table


def test_wide_deaths_become_death_events(tan, tan2023_rows):
    deaths = tan.events[tan.events["event"] == "death"]
    assert sorted(deaths["patient_id"]) == sorted(
        r["patient_id"] for r in tan2023_rows if r["os_event"] == "1"
    )
    # status "relapse" with os_event 1 means a death from relapse
    assert deaths.set_index("patient_id").loc["E007", "cause"] == "relapse"


def test_wide_extra_columns_are_kept(tan, tan2023_rows):
    pts = tan.patients
    # "<5" in the morphology column is kept as text, not dropped or coerced
    assert pts["bm_blasts_morphology_pct"].tolist()[0] == "<5"
    assert pts["sct_consolidation"].tolist() == [r["sct_consolidation"] for r in tan2023_rows]
    # known aliases are read as canonical columns, and said so in the notes
    assert pts["product_source"].tolist() == [r["cart_source"] for r in tan2023_rows]
    assert any("cart_source" in n for n in tan.notes)
    ages = [float(r["age_years"]) for r in tan2023_rows]
    assert pts["age_years"].tolist() == ages


def test_wide_xlsx_single_sheet(tmp_path, tan2023_path):
    book = tmp_path / "tan.xlsx"
    pd.read_csv(tan2023_path, dtype=str, keep_default_na=False).to_excel(
        book, sheet_name="Table1", index=False
    )
    cohort = load_cohort(book)
    assert cohort.layout == "wide" and cohort.n_patients == 20
    os_rows = derive_endpoints(cohort)
    assert int(os_rows["event"].sum()) == 10


def test_wide_days_and_several_endpoints(tmp_path):
    path = tmp_path / "wide.csv"
    path.write_text(
        "patient_id,os_days,os_event,pfs_months,pfs_event,arm\nA,100,1,2,1,x\nB,365.5,0,12,0,y\n"
    )
    cohort = load_cohort(path)
    rows = derive_endpoints(cohort).set_index(["endpoint", "patient_id"])
    assert rows.loc[("OS", "A"), "time_days"] == 100.0
    assert rows.loc[("OS", "B"), "time_days"] == 365.5
    assert rows.loc[("PFS", "A"), "time_days"] == pytest.approx(2 * DAYS_PER_MONTH)
    assert rows.loc[("PFS", "B"), "event"] == 0
    assert cohort.patients["arm"].tolist() == ["x", "y"]


@pytest.mark.parametrize(
    ("body", "row", "column", "value"),
    [
        ("A,10,2\n", 2, "os_event", "2"),
        ("A,10,yes\n", 2, "os_event", "yes"),
        ("A,ten,1\n", 2, "followup_months", "ten"),
        ("A,-1,1\n", 2, "followup_months", "-1"),
        ("A,10,1\nB,,0\n", 3, "followup_months", ""),
        ("A,10,1\nB,3,\n", 3, "os_event", ""),
    ],
)
def test_wide_bad_cells_are_reported(tmp_path, body, row, column, value):
    path = tmp_path / "wide.csv"
    path.write_text("patient_id,followup_months,os_event\n" + body)
    with pytest.raises(CohortError) as info:
        load_cohort(path)
    found = [(p.row, p.column, p.value) for p in info.value.problems]
    assert (row, column, value) in found
    assert all(Path(p.file).name == "wide.csv" for p in info.value.problems)


def test_wide_without_patient_id(tmp_path):
    path = tmp_path / "wide.csv"
    path.write_text("id,followup_months,os_event\nA,10,1\n")
    with pytest.raises(CohortError) as info:
        load_cohort(path)
    assert [p.column for p in info.value.problems] == ["patient_id"]


def test_cli_validate_tan2023():
    result = CliRunner().invoke(app, ["validate", "tan2023"])
    assert result.exit_code == 0, result.output
    assert "valid" in result.output and "20 patients" in result.output
    assert "OS" in result.output
    assert len(result.output.splitlines()) < 15, "a short summary"


def test_months_conversion_is_exact(tan, tan2023_rows):
    times = derive_endpoints(tan)["time_days"].to_numpy()
    expected = np.array([float(r["followup_months"]) for r in tan2023_rows]) * DAYS_PER_MONTH
    np.testing.assert_allclose(times, expected, rtol=0, atol=1e-9)
