"""The report's kinetics section passes the population-model setting through and shows its
tables and diagnostic figures (the model itself is tested in tests/kinetics, in a child
process: it runs JAX, which must not be loaded in a process that forks)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from cartrial.cohort import load_cohort
from cartrial.kinetics.report import KineticsSection
from cartrial.report.build import kinetics_part, kinetics_title
from cartrial.report.settings import SettingsError, settings_from_mapping
from cartrial.report.writer import can_fork


@pytest.fixture
def fake_section(monkeypatch):
    calls = {}

    def section(cohort, **kwargs):
        calls.update(kwargs)
        empty = pd.DataFrame()
        out = KineticsSection(
            empty,
            empty,
            empty,
            empty,
            empty,
            empty,
            figures={},
            notes=["population model settings: seed 0"],
        )
        if kwargs.get("population_model"):
            out.population_typical = pd.DataFrame(
                {"parameter": ["cmax"], "median": [1e5], "ci_low": [5e4], "ci_high": [2e5]}
            )
            out.population_covariates = pd.DataFrame(
                {"covariate": ["dose_level=high"], "median": [0.4]}
            )
        return out

    import cartrial.report.kinetics_part as KP

    monkeypatch.setattr(KP, "kinetics_section", section)
    return calls


def test_setting_switches_the_population_model_on(fake_section):
    cohort = load_cohort(Path(__file__).resolve().parents[1] / "data" / "ns7car_like")
    off = settings_from_mapping({})
    tables = kinetics_part(cohort, off).tables
    assert fake_section["population_model"] is False
    assert not [t for t in tables if "population" in t.name]
    on = settings_from_mapping({"kinetics_population_model": True})
    out = kinetics_part(cohort, on)
    tables, notes = out.tables, out.notes
    assert fake_section["population_model"] is True
    by_name = {t.name: t for t in tables}
    assert by_name["kinetics_population_typical"].title.startswith(
        "Population kinetic model: typical values"
    )
    assert "kinetics_population_covariates" in by_name
    assert notes == ["population model settings: seed 0"]


def test_population_figure_titles():
    assert kinetics_title("cart_qpcr_population_vpc").endswith("visual predictive check")
    assert "observed vs predicted" in kinetics_title("cart_qpcr_population_obs_vs_pred")


def test_setting_must_be_true_or_false():
    with pytest.raises(SettingsError, match="kinetics_population_model"):
        settings_from_mapping({"kinetics_population_model": "yes"})


def test_no_forked_image_worker_once_jax_is_loaded(monkeypatch, tmp_path):
    import sys
    import types

    monkeypatch.setitem(sys.modules, "jax", types.ModuleType("jax"))
    monkeypatch.delenv("CARTRIAL_SERIAL", raising=False)
    assert not can_fork(2)
