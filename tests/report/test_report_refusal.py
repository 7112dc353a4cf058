"""Refusals and settings: broken cohorts, occupied output folders, settings files."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from cartrial.cli import app
from cartrial.report.settings import (
    ReportSettings,
    SettingsError,
    default_settings,
    load_settings,
    settings_from_mapping,
)


def test_broken_cohort_is_refused_with_the_validator_messages(
    tmp_path: Path, make_cohort_dir
) -> None:
    cohort = make_cohort_dir(
        tmp_path,
        patients="""
        patient_id,age_years,sex
        P1,12,M
        P2,abc,F
    """,
        events="""
        patient_id,day,event
        P1,10,death
        P9,5,relapse
    """,
    )
    out = tmp_path / "deep" / "out"
    res = CliRunner().invoke(app, ["report", str(cohort), "-o", str(out)])
    assert res.exit_code == 1
    assert "INVALID" in res.output
    assert "row 3, column 'age_years': found 'abc'" in res.output
    assert "column 'patient_id': found 'P9'" in res.output
    assert not out.exists() and not out.parent.exists()  # nothing created
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cohort"]


def test_non_empty_outdir_needs_overwrite(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "mine.txt").write_text("keep")
    res = CliRunner().invoke(app, ["report", "tan2023", "-o", str(out)])
    assert res.exit_code == 1 and "--overwrite" in res.output
    assert (out / "mine.txt").read_text() == "keep"
    res = CliRunner().invoke(
        app, ["report", "tan2023", "-o", str(out), "--overwrite", "--group", "sex"]
    )
    assert res.exit_code == 0, res.output
    assert not (out / "mine.txt").exists() and (out / "index.html").exists()
    assert "group: sex" in (out / "settings.yaml").read_text(encoding="utf-8")
    assert [p.name for p in tmp_path.iterdir()] == ["out"]  # no temporary folders left


def test_unknown_group_column_is_refused(tmp_path: Path) -> None:
    res = CliRunner().invoke(
        app, ["report", "tan2023", "-o", str(tmp_path / "o"), "--group", "no_such_column"]
    )
    assert res.exit_code == 1
    assert "no_such_column" in res.output and "sct_consolidation" in res.output
    assert not (tmp_path / "o").exists()


def test_settings_yaml_and_toml_round_trip(tmp_path: Path) -> None:
    s = ReportSettings(
        group="sex",
        km_conf_type="log",
        landmarks_months=(3.0, 12.0),
        proportion_ci="clopper-pearson",
        censor_at_sct=True,
    )
    p = tmp_path / "s.yaml"
    p.write_text(s.to_yaml(), encoding="utf-8")
    assert load_settings(p) == s
    t = tmp_path / "s.toml"
    t.write_text('km_conf_type = "plain"\nlandmarks_months = [12, 24]\ngroup = "sex"\n')
    loaded = load_settings(t)
    assert loaded.km_conf_type == "plain" and loaded.landmarks_months == (12.0, 24.0)


@pytest.mark.parametrize(
    "data, word",
    [
        ({"km_conf_type": "loglog"}, "km_conf_type"),
        ({"landmark_months": [12]}, "landmark_months"),
        ({"proportion_ci": "exact"}, "proportion_ci"),
        ({"conf_level": 95}, "conf_level"),
        ({"censor_at_sct": "yes"}, "censor_at_sct"),
        ({"endpoints": ["OS", "XYZ"]}, "endpoints"),
    ],
)
def test_bad_settings_name_key_and_value(data, word) -> None:
    with pytest.raises(SettingsError, match=word):
        settings_from_mapping(data)


def test_defaults_log_log_but_tan2023_example_plain(tmp_path: Path) -> None:
    assert ReportSettings().km_conf_type == "log-log"
    assert default_settings("tan2023").km_conf_type == "plain"
    assert default_settings(str(tmp_path)).km_conf_type == "log-log"
