"""``cartrial validate`` reports recorded AEs that disagree with bedside-derived episodes."""

from __future__ import annotations

import pandas as pd
from typer.testing import CliRunner

from cartrial.cli import app

PATIENTS = "patient_id\nP1\n"
# day 1-3: fever 39 °C; day 2: high-flow O2 8 L/min -> ASTCT 2019 CRS grade 3 (Lee 2019, Table 3)
OBS = (
    "patient_id,day,analyte,value,unit\n"
    "P1,1,temperature,39.0,C\nP1,1,oxygen,none,\nP1,1,vasopressors,0,n\nP1,1,hypotension,no,\n"
    "P1,2,temperature,39.2,C\nP1,2,oxygen,high_flow,\nP1,2,o2_flow,8,L/min\nP1,2,vasopressors,0,n\n"
    "P1,2,hypotension,no,\n"
    "P1,3,temperature,38.5,C\nP1,3,oxygen,none,\nP1,3,vasopressors,0,n\nP1,3,hypotension,no,\n"
    "P1,4,temperature,36.8,C\nP1,4,oxygen,none,\nP1,4,vasopressors,0,n\nP1,4,hypotension,no,\n"
)


def _cohort(tmp_path, recorded_grade: int):
    d = tmp_path / f"c{recorded_grade}"
    d.mkdir()
    (d / "patients.csv").write_text(PATIENTS)
    (d / "observations.csv").write_text(OBS)
    (d / "adverse_events.csv").write_text(
        "patient_id,term,onset_day,resolution_day,grade,system\n"
        f"P1,CRS,1,4,{recorded_grade},ASTCT2019\n"
    )
    return d


def test_agreeing_record_is_silent(tmp_path):
    result = CliRunner().invoke(app, ["validate", str(_cohort(tmp_path, 3)), "--strict"])
    assert result.exit_code == 0, result.output
    assert "disagreement" not in result.output


def test_disagreement_is_listed_and_strict_fails(tmp_path):
    folder = _cohort(tmp_path, 1)
    lenient = CliRunner().invoke(app, ["validate", str(folder)])
    assert lenient.exit_code == 0
    assert "patient P1, CRS: recorded grade 1" in lenient.output
    assert "graded from observations 3" in lenient.output
    strict = CliRunner().invoke(app, ["validate", str(folder), "--strict"])
    assert strict.exit_code == 1
    # the input is never changed by validation
    assert pd.read_csv(folder / "adverse_events.csv")["grade"].tolist() == [1]
