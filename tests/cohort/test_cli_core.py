"""The core CLI commands (``validate``, ``endpoints``, ``km``) in src/cartrial/cli/core.py."""

from __future__ import annotations

import csv
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from cartrial.cli import app

ENDPOINTS = {"OS", "PFS", "EFS", "DFS", "DOR", "CIR", "NRM"}


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


def test_validate_valid_cohort_prints_short_summary(runner, valid_cohort_dir):
    result = runner.invoke(app, ["validate", str(valid_cohort_dir)])
    assert result.exit_code == 0, result.output
    out = result.output
    assert "valid" in out and "INVALID" not in out
    # counts from the fixture's files: 3 patients, 8 events, 3 AEs, 4 observations
    for part in ("3 patients", "8 events", "3 adverse events", "4 observations"):
        assert part in out
    assert len(out.strip().splitlines()) <= 5


def test_validate_missing_path(runner, tmp_path):
    missing = tmp_path / "nowhere"
    result = runner.invoke(app, ["validate", str(missing)])
    assert result.exit_code == 1
    assert str(missing) in result.output


def test_validate_xlsx(runner, valid_cohort_dir, tmp_path):
    import pandas as pd

    book = tmp_path / "c.xlsx"
    with pd.ExcelWriter(book) as w:
        for name in ("patients", "events"):
            pd.read_csv(
                valid_cohort_dir / f"{name}.csv", dtype=str, keep_default_na=False
            ).to_excel(w, sheet_name=name, index=False)
    result = runner.invoke(app, ["validate", str(book)])
    assert result.exit_code == 0, result.output
    assert "3 patients" in result.output and "8 events" in result.output


def test_endpoints_writes_csv(runner, valid_cohort_dir, tmp_path):
    out = tmp_path / "adtte.csv"
    result = runner.invoke(app, ["endpoints", str(valid_cohort_dir), "-o", str(out)])
    assert result.exit_code == 0, result.output
    with open(out, newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert {"patient_id", "endpoint", "time_days", "event", "source"} <= set(rows[0])
    eps = {r["endpoint"] for r in rows}
    assert eps == ENDPOINTS
    os_rows = {r["patient_id"]: r for r in rows if r["endpoint"] == "OS"}
    # fixture: P1 died on day 150; P2 last follow-up day 200; P3 last contact day 90
    assert (float(os_rows["P1"]["time_days"]), os_rows["P1"]["event"]) == (150.0, "1")
    assert (float(os_rows["P2"]["time_days"]), os_rows["P2"]["event"]) == (200.0, "0")
    assert (float(os_rows["P3"]["time_days"]), os_rows["P3"]["event"]) == (90.0, "0")
    assert f"wrote {len(rows)} rows" in result.output


def test_endpoints_censor_at_sct_option(runner, valid_cohort_dir, tmp_path):
    out = tmp_path / "adtte.csv"
    result = runner.invoke(
        app,
        [
            "endpoints",
            str(valid_cohort_dir),
            "-o",
            str(out),
            "--censor-at-sct",
            "--no-efs-nonresponse",
        ],
    )
    assert result.exit_code == 0, result.output
    with open(out, newline="") as fh:
        rows = {(r["endpoint"], r["patient_id"]): r for r in csv.DictReader(fh)}
    # P3: NR on day 30, SCT on day 45, last contact day 90 -> PFS censored at SCT (45)
    assert float(rows[("PFS", "P3")]["time_days"]) == 45.0
    assert rows[("PFS", "P3")]["event"] == "0"
    # without the EFS non-response rule, EFS for P3 is censored at SCT too
    assert float(rows[("EFS", "P3")]["time_days"]) == 45.0
    # OS is never censored at SCT
    assert float(rows[("OS", "P3")]["time_days"]) == 90.0


def test_endpoints_prints_table(runner, valid_cohort_dir):
    result = runner.invoke(app, ["endpoints", str(valid_cohort_dir)])
    assert result.exit_code == 0, result.output
    assert "OS" in result.output and "P3" in result.output


def test_endpoints_on_invalid_cohort_exits_1(runner, make_cohort_dir, tmp_path):
    folder = make_cohort_dir(tmp_path, patients="patient_id\nP1\nP1\n")
    result = runner.invoke(app, ["endpoints", str(folder)])
    assert result.exit_code == 1
    assert "patients.csv" in result.output and "row 3" in result.output


def test_km_on_tan2023(runner):
    result = runner.invoke(app, ["km", "tan2023", "--conf-type", "plain"])
    assert result.exit_code == 0, result.output
    assert "10 events / 20 patients" in result.output
    assert "median 18.3 months" in result.output
    # Tan 2023: 2-year OS 42.3% (95% CI 18.8-65.8, linear Greenwood interval)
    assert "24 months: 42.3% (95% CI 18.8–65.8)" in result.output


def test_km_rejects_unknown_conf_type(runner):
    result = runner.invoke(app, ["km", "tan2023", "--conf-type", "wobbly"])
    assert result.exit_code == 2
    assert "wobbly" in result.output


def test_help_lists_core_commands(runner):
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for cmd in ("validate", "endpoints", "km"):
        assert cmd in result.output


def test_cli_import_stays_light():
    """`cartrial --help` must not import pandas/scipy/matplotlib (CONTEXT.md rule)."""
    code = (
        "import sys, cartrial.cli; heavy = [m for m in ('pandas', 'scipy', 'matplotlib', "
        "'sqlalchemy', 'lifelines') if m in sys.modules]; print(','.join(heavy))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == ""


def test_python_dash_m_validate(tmp_path, valid_cohort_dir):
    done = subprocess.run(
        [sys.executable, "-m", "cartrial", "validate", str(valid_cohort_dir)],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    assert "3 patients" in done.stdout
