"""``kinetics_section`` for the report and the ``cartrial kinetics`` command."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import typer
from matplotlib.figure import Figure
from typer.testing import CliRunner

from cartrial.cohort.model import Cohort
from cartrial.kinetics.model import TYPICAL_TISAGENLECLEUCEL, simulate_profile
from cartrial.kinetics.nca import nca

DAYS = np.array([0, 1, 4, 7, 10, 14, 21, 28, 60, 90, 180, 270, 365], float)


def _observations(n: int = 6) -> pd.DataFrame:
    rows = []
    for i in range(n):
        v = simulate_profile(TYPICAL_TISAGENLECLEUCEL, DAYS, 0.3, lloq=20.0, rng=i)
        rows += [
            (f"P{i}", d, "cart_qpcr", x, "copies/ug", 20.0) for d, x in zip(DAYS, v, strict=True)
        ]
        cd3 = 900 * (1 - 0.9 * np.exp(-DAYS / (40 + 30 * i)))
        rows += [
            (f"P{i}", d, "cd3", round(x, 1), "cells/uL", np.nan)
            for d, x in zip(DAYS, cd3, strict=True)
        ]
    return pd.DataFrame(rows, columns=["patient_id", "day", "analyte", "value", "unit", "lloq"])


def _cohort(obs: pd.DataFrame | None = None) -> Cohort:
    patients = pd.DataFrame(
        {
            "patient_id": [f"P{i}" for i in range(6)],
            "age_years": [30.0, 40, 50, 12, 25, 60],
            "dose_level": ["low", "high"] * 3,
        }
    )
    events = pd.DataFrame({"patient_id": ["P1"], "day": [50.0], "event": ["death"]})
    if obs is None:
        return Cohort(patients=patients, events=events)
    return Cohort(patients=patients, events=events, observations=obs)


def test_kinetics_section_tables_and_figures():
    from cartrial.kinetics.report import kinetics_section

    obs = _observations()
    sec = kinetics_section(_cohort(obs), group="dose_level")
    nca_t = sec.nca_table
    assert len(nca_t) == 6 and set(nca_t["analyte"]) == {"cart_qpcr"}
    p3 = obs.loc[(obs["patient_id"] == "P3") & (obs["analyte"] == "cart_qpcr")]
    ref = nca(p3["day"], p3["value"], lloq=20.0)
    assert nca_t.set_index("patient_id").loc["P3", "auc_0_28"] == pytest.approx(ref["auc_0_28"])
    s = sec.nca_summary
    assert set(s["dose_level"]) == {"low", "high"}
    cmax_low = s.loc[(s["dose_level"] == "low") & (s["parameter"] == "cmax"), "median"].iloc[0]
    assert cmax_low == pytest.approx(nca_t.loc[nca_t["dose_level"] == "low", "cmax"].median())
    assert len(sec.model_table) == 6 and sec.model_table["estimable"].all()
    rec = sec.reconstitution_table
    assert set(rec["analyte"]) == {"cd3"}
    # P3 is 12 years old: paediatric band 12–18 y (lower limit 1000), adults 700
    assert rec.set_index("patient_id").loc["P3", "threshold"] == 1000
    assert rec.set_index("patient_id").loc["P0", "threshold"] == 700
    assert not sec.recovery_incidence.empty
    figs = sec.figures
    assert {
        "cart_qpcr_spaghetti",
        "cart_qpcr_median_iqr",
        "cart_qpcr_cmax_by_dose_level",
        "reconstitution_panels",
    } <= set(figs)
    assert all(isinstance(f, Figure) for f in figs.values())
    assert any("BLQ" in n for n in sec.notes)


def test_kinetics_section_without_observations_is_empty_with_a_note():
    from cartrial.kinetics.report import kinetics_section

    sec = kinetics_section(_cohort())
    assert sec.nca_table.empty and sec.model_table.empty and sec.figures == {}
    assert sec.notes == ["no CAR-T kinetics or lymphocyte-subset observations in this cohort"]


def _app() -> typer.Typer:
    from cartrial.cli.kinetics import register

    app = typer.Typer()
    register(app)

    @app.command("noop")
    def _noop() -> None:  # a second command keeps "kinetics" a named sub-command
        pass

    return app


def test_cli_prints_and_writes_the_nca_table(tmp_path):
    folder = tmp_path / "cohort"
    folder.mkdir()
    _cohort().patients.to_csv(folder / "patients.csv", index=False)
    obs = _observations()
    obs.to_csv(folder / "observations.csv", index=False)
    runner = CliRunner()
    res = runner.invoke(_app(), ["kinetics", str(folder)])
    assert res.exit_code == 0, res.output
    assert "auc_0_28" in res.output and "P5" in res.output
    out = tmp_path / "nca.csv"
    res = runner.invoke(_app(), ["kinetics", str(folder), "-o", str(out), "--model"])
    assert res.exit_code == 0, res.output
    table = pd.read_csv(out)
    assert len(table) == 6 and {"cmax", "model_cmax", "model_reason"} <= set(table.columns)
    p0 = obs.loc[(obs["patient_id"] == "P0") & (obs["analyte"] == "cart_qpcr")]
    assert table.loc[table["patient_id"] == "P0", "cmax"].iloc[0] == pytest.approx(
        p0["value"].max()
    )
    res = runner.invoke(_app(), ["kinetics", str(folder), "--analyte", "cart_flow"])
    assert res.exit_code == 0 and "no cart_flow observations" in res.output
    res = runner.invoke(_app(), ["kinetics", str(folder), "--blq-after", "zero"])
    assert res.exit_code == 2 and "blq_after" in res.output
