"""Observation checks: clear problems naming file, row, column and value."""

from __future__ import annotations

import numpy as np
import pandas as pd

from cartrial.cohort.errors import Problem
from cartrial.kinetics.checks import check_observations


def _obs(**over):
    base = {
        "patient_id": ["P1", "P1", "P2", "P2"],
        "day": [0.0, 7.0, 0.0, 7.0],
        "analyte": ["cart_qpcr", "CAR-T qPCR", "cd3", "cd7_t"],
        "value": [0.0, 1500.0, 300.0, 20.0],
        "unit": ["copies/µg", "copies/ug", "cells/µL", "/mm3"],
        "lloq": [50.0, 50.0, np.nan, np.nan],
    }
    base.update(over)
    return pd.DataFrame(base)


def test_clean_table_has_no_problems():
    assert check_observations(_obs()) == []


def test_cells_per_litre_is_a_unit_mismatch_naming_file_row_column_value():
    df = _obs(
        unit=["copies/µg", "copies/ug", "cells/L", "/mm3"],
        source_file=["obs.csv"] * 4,
        source_row=[2, 3, 4, 5],
    )
    problems = check_observations(df)
    assert len(problems) == 1
    p = problems[0]
    assert (p.file, p.row, p.column, p.value) == ("obs.csv", 4, "unit", "cells/L")
    assert "cells/uL" in p.expected and "10^6" in p.expected
    assert "obs.csv, row 4, column 'unit': found 'cells/L'" in str(p)


def test_unknown_analyte_negative_value_and_bad_lloq():
    df = _obs(
        analyte=["cart_qpcr", "car-t magic", "cd3", "cd7_t"],
        value=[0.0, 1500.0, -3.0, 20.0],
        lloq=[50.0, -1.0, np.nan, np.nan],
    )
    got = {(p.row, p.column) for p in check_observations(df, file="observations.csv")}
    # without provenance columns rows are CSV line numbers (header = line 1)
    assert got == {(3, "analyte"), (4, "value"), (3, "lloq")}
    neg = [p for p in check_observations(df) if p.column == "value"][0]
    assert neg.value == "-3.0" and "cannot be negative" in neg.expected


def test_missing_day_duplicates_and_missing_units():
    df = _obs(
        day=[0.0, np.nan, 0.0, 0.0],
        analyte=["cart_qpcr"] * 2 + ["cd3", "cd3"],
        value=[0.0, 5.0, 300.0, 310.0],
        unit=[None, "copies/ug", "cells/uL", "cells/uL"],
    )
    problems = check_observations(df)
    cols = sorted((p.row, p.column) for p in problems)
    assert cols == [(3, "day"), (5, "value")]  # P2 cd3 day 0 twice with different values
    assert any("one value per patient, analyte and day" in p.expected for p in problems)
    strict = check_observations(df, require_units=True)
    assert Problem("observations.csv", 2, "unit", None, "a unit (copies/ug)") in strict


def test_non_numeric_value_and_missing_columns():
    df = _obs(value=["0", "lots", "300", "20"])
    p = check_observations(df)
    assert [(x.row, x.column, x.value) for x in p] == [(3, "value", "lots")]
    assert (
        check_observations(pd.DataFrame({"patient_id": ["x"], "value": [1]}))[0].column == "analyte"
    )
