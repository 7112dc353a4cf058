"""``cartrial grade …`` through Typer's CliRunner: results, JSON shape and bad flags."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from cartrial.cli import app

runner = CliRunner()


def run(*args):
    return runner.invoke(app, ["grade", *args])


def test_crs_json_shape_and_grade():
    r = run(
        "crs",
        "--temperature-c",
        "38.5",
        "--vasopressors",
        "1",
        "--oxygen",
        "high_flow",
        "--o2-flow-l-min",
        "8",
        "--no-vasopressin",
        "--json",
    )
    assert r.exit_code == 0, r.output
    d = json.loads(r.stdout)
    assert {"system", "grade", "reasons", "missing"} <= set(d)
    assert d["system"] == "ASTCT2019" and d["grade"] == 3 and d["missing"] == []


def test_crs_cpap_is_4_and_text_output():
    r = run("crs", "--temperature-c", "39", "--oxygen", "cpap", "--no-hypotension")
    assert r.exit_code == 0
    assert "grade 4" in r.stdout and "reference only" in r.stdout


def test_missing_flags_are_reported():
    r = run(
        "crs",
        "--temperature-c",
        "38.6",
        "--hypotension",
        "--vasopressors",
        "0",
        "--no-vasopressin",
        "--json",
    )
    d = json.loads(r.stdout)
    assert d["grade"] == 2 and d["missing"] == ["oxygen"] and d["grade_max"] == 4


@pytest.mark.parametrize(
    "args,needle",
    [
        (("crs", "--o2-flow-l-min", "-1"), "o2_flow_l_min"),
        (("crs", "--oxygen", "helmet"), "oxygen"),
        (("crs", "--temperature-c", "50"), "temperature_c"),
        (("crs", "--system", "Penn"), "system"),
        (("icans", "--ice-score", "11"), "ice_score"),
        (("icans", "--consciousness", "dreamy"), "consciousness"),
        (("agvhd", "--skin-bsa-pct", "120"), "skin_bsa_pct"),
        (("cgvhd", "--lungs", "4"), "lungs"),
        (("ctcae", "neutropenia", "--anc", "-2"), "anc"),
        (("ctcae", "neutropenia", "--lln", "anc"), "lln"),
        (("icaht", "--day", "1", "--anc", "-3"), "anc"),
    ],
)
def test_bad_flags_exit_2_with_message(args, needle):
    r = run(*args)
    assert r.exit_code == 2
    assert needle in r.stderr and "expected" in r.stderr
    assert r.stdout == ""


def test_non_numeric_flag_is_a_usage_error():
    r = run("crs", "--vasopressors", "two")
    assert r.exit_code == 2


def test_icans_agvhd_cgvhd_ctcae_icaht_commands():
    r = run(
        "icans",
        "--ice-score",
        "0",
        "--consciousness",
        "alert",
        "--seizure",
        "none",
        "--no-motor-weakness",
        "--cerebral-edema",
        "none",
        "--json",
    )
    assert json.loads(r.stdout)["grade"] == 3
    r = run("icans", "--capd-score", "9", "--age-years", "6", "--json")
    assert json.loads(r.stdout)["grade"] == 3
    r = run(
        "agvhd", "--bilirubin-mg-dl", "16", "--stool-ml-day", "700", "--weight-kg", "70", "--json"
    )
    d = json.loads(r.stdout)
    assert d["grade"] == 4 and d["label"] == "IV" and d["details"]["stages"]["liver"] == 4
    r = run("agvhd", "--severe-abdominal-pain", "--system", "Keystone1994", "--json")
    assert json.loads(r.stdout)["grade"] == 3
    r = run(
        "cgvhd",
        "--skin",
        "1",
        "--mouth",
        "1",
        "--eyes",
        "0",
        "--gi",
        "0",
        "--liver",
        "0",
        "--lungs",
        "1",
        "--joints-fascia",
        "0",
        "--genital",
        "0",
        "--json",
    )
    assert json.loads(r.stdout)["label"] == "moderate"
    r = run("ctcae", "neutropenia", "--anc", "0.5", "--json")
    assert json.loads(r.stdout)["grade"] == 3
    r = run("ctcae", "neutropenia", "--anc", "1.7", "--lln", "anc=1.5", "--json")
    assert json.loads(r.stdout)["grade"] == 0
    r = run("icaht", "--day", "35", "--anc", "1234.5", "--day", "40", "--anc", "1300", "--json")
    d = json.loads(r.stdout)
    assert d["unit"] == "cells/uL" and d["late"]["grade"] == 1


def test_grade_help_lists_commands():
    r = run("--help")
    assert r.exit_code == 0
    for cmd in ("crs", "icans", "agvhd", "cgvhd", "ctcae", "icaht"):
        assert cmd in r.stdout
