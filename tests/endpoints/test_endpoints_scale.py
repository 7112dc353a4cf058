"""The registry-scale paths of endpoint derivation (issue 16) against plain per-row
answers worked out by hand: the patient lookup done once per run of rows, the
last-known-alive scan, the source pointers and the interpretation warnings."""

from __future__ import annotations

import numpy as np
import pandas as pd

from cartrial.cohort.model import Cohort, empty_table
from cartrial.endpoints import endpoint_warnings
from cartrial.endpoints.derive import EndpointOptions, _Context, _display, last_known_alive


def _table(name: str, rows: list[dict], file: str) -> pd.DataFrame:
    t = empty_table(name).reindex(range(len(rows)))
    for col in rows[0] if rows else ():
        values = [r.get(col) for r in rows]
        dtype = t[col].dtype
        t[col] = pd.array(values, dtype=dtype) if str(dtype) != "float64" else values
    if "source_file" not in (rows[0] if rows else {}):
        t["source_file"] = file
    if "source_row" not in (rows[0] if rows else {}):
        t["source_row"] = pd.array(np.arange(len(rows)) + 2, dtype="Int64")
    return t


def _cohort(patients, events=(), observations=()) -> Cohort:
    return Cohort(
        patients=_table("patients", list(patients), "patients.csv"),
        events=_table("events", list(events), "events.csv"),
        adverse_events=empty_table("adverse_events"),
        observations=_table("observations", list(observations), "observations.csv"),
    )


def test_patient_lookup_per_run_equals_the_lookup_per_row():
    ids = ["P1", "P2", "P3"]
    c = _cohort([{"patient_id": p, "infused": True} for p in ids])
    ctx = _Context(c, EndpointOptions())
    runs = ["P2"] * 9 + ["P1"] * 7 + ["X"] * 5 + ["P2"] * 6 + ["P3"] * 8  # X: not a patient
    for col in (
        pd.Series(runs, dtype="string"),
        pd.Series(runs, dtype=object),
        pd.Series(runs, dtype="category"),
        pd.Series(runs[:10] + [pd.NA] + runs[10:], dtype="string"),  # a blank id
        pd.Series(["P1", "P2", "P3"] * 5, dtype="string"),  # no runs
    ):
        want = [ids.index(v) if isinstance(v, str) and v in ids else -1 for v in col]
        got = ctx.pos_of(pd.DataFrame({"patient_id": col}))
        assert got.tolist() == want


def test_last_known_alive_skips_missing_days_and_takes_the_files_last_row_on_the_day():
    c = _cohort(
        [{"patient_id": p, "infused": True} for p in ("A", "B", "C")],
        events=[{"patient_id": "B", "day": 2.0, "event": "response", "response": "CR"}],
        observations=[
            {"patient_id": "A", "day": 3.0, "analyte": "crp", "value": 1.0},
            {"patient_id": "A", "day": np.nan, "analyte": "crp", "value": 1.0},
            {"patient_id": "A", "day": 5.0, "analyte": "crp", "value": 1.0},  # row 4
            {"patient_id": "A", "day": 5.0, "analyte": "ldh", "value": 1.0},  # row 5
            {"patient_id": "B", "day": np.nan, "analyte": "crp", "value": 1.0},
            {"patient_id": "A", "day": 4.0, "analyte": "crp", "value": 1.0},
        ],
    )
    la = last_known_alive(c)
    assert la.loc["A", ["day", "source_table"]].tolist() == [5.0, "observations"]
    assert la.loc["A", "source_row"] == 5
    assert la.loc["A", "src"] == "observations.csv row 5 (observation)"
    assert la.loc["B", ["day", "source_table", "src"]].tolist() == [
        2.0,
        "events",
        "events.csv row 2 (response)",
    ]
    assert la.loc["C", ["day", "src"]].tolist() == [0.0, "no follow-up recorded"]
    assert pd.isna(la.loc["C", "source_row"])


def test_source_pointers_name_file_row_and_what_with_blanks_as_written():
    got = _display(
        np.array(["a.csv", None, "b.csv", np.nan], dtype=object),
        np.array([3, None, 7, pd.NA], dtype=object),
        np.array(["death", "relapse", None, "x"], dtype=object),
    )
    assert got.tolist() == [
        "a.csv row 3 (death)",
        "None row ? (relapse)",
        "b.csv row 7 (None)",
        "nan row ? (x)",
    ]
    rows = _display(np.array(["a.csv", "a.csv"], dtype=object), np.array([12, -1]), ["d", "d"])
    assert rows.tolist() == ["a.csv row 12 (d)", "a.csv row ? (d)"]


def test_warnings_come_in_table_order_across_files_with_blank_row_numbers():
    patients = [
        {"patient_id": "P1", "infused": None, "source_file": "b.csv", "source_row": 2},
        {"patient_id": "P2", "infused": True, "source_file": "a.csv", "source_row": 2},
        {"patient_id": "P3", "infused": None, "source_file": "a.csv", "source_row": None},
        {"patient_id": "P4", "infused": None, "source_file": "b.csv", "source_row": 4},
    ]
    events = [
        {"patient_id": "P2", "day": 40.0, "event": "death", "cause": "relapse"},
        {"patient_id": "P2", "day": 10.5, "event": "death", "cause": "relapse"},
    ]
    warnings = endpoint_warnings(_cohort(patients, events=events))
    assert [(w.file, w.row, w.column, w.value) for w in warnings] == [
        ("b.csv", 2, "infused", ""),
        ("a.csv", None, "infused", ""),
        ("b.csv", 4, "infused", ""),
        ("events.csv", 2, "cause", "relapse"),
        ("events.csv", 3, "cause", "relapse"),
    ]
    assert "relapse on day 40 for CIR/PFS" in warnings[3].expected
    assert "relapse on day 10.5 for CIR/PFS" in warnings[4].expected
