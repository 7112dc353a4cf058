"""The bedside's own words and the one field registry.

Word mappings follow the criteria they feed: ASTCT 2019 ICANS seizure and consciousness
rows and CRS oxygen tiers (Lee DW et al., Biol Blood Marrow Transplant 2019;25:625, Tables
3 and 5); a word the criteria cannot place is answered with a question. The registry
(``cartrial.grading.fields``) is the only declaration of each input: the Python API, the
CLI, the JSON model and the web form must agree on it (O2 flow maximum, for one)."""

from __future__ import annotations

import json
import math

import pytest
from typer.testing import CliRunner

from cartrial.grading import GradingInputError, grade_crs, grade_icans
from cartrial.grading.fields import (
    BEDSIDE_FORM,
    FIELDS,
    form_fields,
    pydantic_model,
    suggest_field,
)

# (field, word, code word, ASTCT grade of that domain alone)
WORDS = [
    ("seizure", "tonic-clonic", "generalized", 3),  # any clinical seizure: >= 3
    ("seizure", "GTC", "generalized", 3),
    ("seizure", "generalised tonic clonic", "generalized", 3),
    ("seizure", "convulsive", "generalized", 3),
    ("seizure", "focal", "focal", 3),
    ("seizure", "NCSE", "status_epilepticus", 4),  # prolonged / repetitive: 4
    ("seizure", "non-convulsive status", "status_epilepticus", 4),
    ("consciousness", "awakens to voice", "awakens_to_voice", 2),
    ("consciousness", "stupor", "unarousable", 4),
    ("cerebral_edema", "papilloedema", "papilledema", 4),
    ("cerebral_edema", "focal oedema", "focal", 3),
]


@pytest.mark.parametrize(("field", "word", "code_word", "grade"), WORDS)
def test_neuro_words(field, word, code_word, grade):
    g = grade_icans({field: word}, ice_score=10, **_others(field))
    assert g.grade == grade
    assert grade_icans({field: code_word}, ice_score=10, **_others(field)).grade == grade


def _others(field):
    base = dict(consciousness="alert", seizure="none", motor_weakness=False, cerebral_edema="none")
    base.pop(field)
    return base


OXYGEN = [
    # (device word, flow L/min, CRS grade with fever and no hypotension) - ASTCT Table 3
    ("nasal cannula", 2, 2),
    ("NC", 8, 3),  # > 6 L/min: high-flow nasal cannula
    ("HFNC", None, 3),
    ("NIV", None, 4),  # positive pressure
    ("ECMO", None, 4),
    ("non-rebreather mask", None, 3),
    ("room air", None, 1),
]


@pytest.mark.parametrize(("device", "flow", "grade"), OXYGEN)
def test_oxygen_words_reach_the_right_tier(device, flow, grade):
    obs = dict(temperature_c=38.6, hypotension=False, oxygen=device)
    if flow is not None:
        obs["o2_flow_l_min"] = flow
    assert grade_crs(obs).grade == grade


@pytest.mark.parametrize("word", ["obtunded", "somnolent", "lethargic"])
def test_unplaceable_consciousness_words_get_a_question(word):
    with pytest.raises(GradingInputError) as info:
        grade_icans(consciousness=word)
    msg = str(info.value)
    assert "Which is it" in msg and "awakens_to_voice" in msg and "ASTCT" in msg


def test_misspelt_words_and_fields_get_the_nearest():
    with pytest.raises(GradingInputError, match="did you mean awakens_to_voice"):
        grade_icans(consciousness="awakens to voce")
    with pytest.raises(GradingInputError) as info:
        grade_crs(temprature_c=38.5)
    assert "did you mean temperature_c?" in str(info.value)
    assert "hypotension" not in str(info.value)  # not a list of every field
    assert suggest_field("o2flow") == "o2_flow_l_min"
    assert grade_crs(haemoglobin=9.0, temperature_c=37).grade == 0  # British spelling


# -- one registry: Python API, CLI, JSON model and web form agree --------------------------

runner = CliRunner()


def _cli(*args):
    from cartrial.cli import app

    return runner.invoke(app, ["grade", *args])


def test_o2_flow_maximum_is_one_number_everywhere():
    top = FIELDS["o2_flow_l_min"].hi
    assert top == 80
    with pytest.raises(GradingInputError):  # Python API
        grade_crs(o2_flow_l_min=top + 1)
    assert grade_crs(o2_flow_l_min=top, oxygen="high_flow").grade is not None
    r = _cli("crs", "--o2-flow-l-min", str(top + 1), "--json")  # CLI
    assert r.exit_code == 2 and json.loads(r.stdout)["error"]["field"] == "o2_flow_l_min"
    schema = pydantic_model("Bedside", BEDSIDE_FORM).model_json_schema()  # JSON model
    o2 = schema["properties"]["o2_flow_l_min"]
    assert max(x.get("maximum", -1) for x in o2.get("anyOf", [o2])) == top
    form = {f.name: f for f in form_fields(BEDSIDE_FORM)}  # web form
    assert form["o2_flow_l_min"].hi == top and "0-80 L/min" in form["o2_flow_l_min"].help
    from cartrial.web.bedside import parse_assessment  # web server check

    _, errors = parse_assessment({"day": "1", "o2_flow_l_min": str(top + 1)})
    assert "o2_flow_l_min" in errors and "80" in errors["o2_flow_l_min"]
    _, errors = parse_assessment({"day": "1", "o2_flow_l_min": str(top)})
    assert "o2_flow_l_min" not in errors


def test_every_cli_option_is_a_registry_field_with_its_help():
    from cartrial.cli.grade import CRS_FIELDS, CTCAE_FIELDS, ICANS_FIELDS, IECHS_FIELDS

    for fields in (CRS_FIELDS, ICANS_FIELDS, CTCAE_FIELDS, IECHS_FIELDS):
        assert set(fields) <= set(FIELDS)
    r = _cli("ctcae", "--help")
    assert "--creatinine-mg-dl" in r.stdout and "--fibrinogen-mg-dl" in r.stdout


def test_json_model_refuses_unknown_fields_and_bad_ranges():
    from pydantic import ValidationError

    model = pydantic_model("Bedside", BEDSIDE_FORM)
    ok = model(temperature_c="101.3 F", vasopressors=1, oxygen="NC")
    assert ok.vasopressors == 1
    with pytest.raises(ValidationError):
        model(temprature_c=38)
    with pytest.raises(ValidationError):
        model(ice_score=11)


def test_web_form_sums_ice_with_the_ice_function():
    from cartrial.web.bedside import parse_assessment

    items = dict(ice_orientation="4", ice_naming="3", ice_commands="1", ice_writing="1")
    obs, errors = parse_assessment({"day": "2", **items, "ice_attention": "0"})
    assert not errors and obs["ice_score"] == 9
    obs, errors = parse_assessment({"day": "2", **items})
    assert "ice_attention" in errors and obs["ice_score"] is None


# -- CLI: JSON errors, units, the new commands ---------------------------------------------


def test_cli_errors_are_json_with_json():
    r = _cli("crs", "--temprature-c", "38", "--json")
    err = json.loads(r.stdout)["error"]
    assert r.exit_code == 2 and "--temperature-c" in err["message"]
    r = _cli("crs", "--vasopressors", "two", "--json")
    assert r.exit_code == 2 and json.loads(r.stdout)["error"]["kind"] == "usage"
    r = _cli("ctcae", "neutropenia", "--anc", "150", "--json")
    err = json.loads(r.stdout)["error"]
    assert err["field"] == "anc" and "pass unit='cells/uL'" in err["expected"]
    r = _cli("icans", "--consciousness", "obtunded", "--json")
    assert "Which is it" in json.loads(r.stdout)["error"]["expected"]


def test_cli_units_and_new_commands():
    r = _cli("ctcae", "neutropenia", "--anc", "150", "--unit", "anc=cells/uL", "--json")
    assert json.loads(r.stdout)["grade"] == 4
    r = _cli("crs", "--temperature-c", "101.3 F", "--no-hypotension", "--oxygen", "none", "--json")
    assert json.loads(r.stdout)["grade"] == 1
    r = _cli("ctcae", "sepsis", "--blood-culture-positive", "--sepsis-signs", "--json")
    assert json.loads(r.stdout)["grade"] == 3
    r = _cli(
        "iechs",
        "--ferritin-ng-ml",
        "12000",
        "--ferritin-baseline-ng-ml",
        "800",
        "--iechs-attributable",
        "--no-iechs-other-cause",
        "--iechs-grade",
        "2",
        "--json",
    )
    d = json.loads(r.stdout)
    assert d["grade"] == 2 and d["details"]["status"] == "identified"
    r = _cli("hematotox", "--anc", "0.9", "--platelets", "60", "--json")
    d = json.loads(r.stdout)
    assert (d["score"], d["score_max"], d["risk"]) == (3, 7, "high")
    r = _cli("hematotox", "--anc", "2", "--platelets", "200", "--hemoglobin-g-dl", "12")
    assert "score 0 (up to 3): unknown risk" in r.stdout
    r = _cli(
        "easix", "--ldh-u-l", "250", "--creatinine-mg-dl", "0.8", "--platelets", "100", "--json"
    )
    d = json.loads(r.stdout)
    assert d["score"] == 2.0 and d["log2_easix"] == 1.0 and d["m_easix"] is None
    assert math.isclose(d["score"], 250 * 0.8 / 100)


def test_cli_risk_table_from_a_cohort(tmp_path):
    (tmp_path / "patients.csv").write_text(
        "patient_id,infusion_date,product_source\nP1,2024-01-01,universal\nP2,2024-02-01,autologous\n"
    )
    (tmp_path / "observations.csv").write_text(
        "patient_id,day,analyte,value,unit\n"
        "P1,-5,anc,900,cells/uL\nP1,-5,platelets,60,10^9/L\nP1,-5,ldh,300,U/L\n"
        "P1,-5,creatinine,1.0,mg/dL\nP2,-3,anc,3.0,10^9/L\nP2,-3,platelets,250,10^9/L\n"
    )
    out = tmp_path / "risk.csv"
    r = _cli("risk", str(tmp_path), "--by", "product_source", "-o", str(out), "--json")
    assert r.exit_code == 0, r.output
    d = json.loads(r.stdout)
    p1 = next(p for p in d["patients"] if p["patient_id"] == "P1")
    assert p1["score"] == 3 and p1["risk"] == "high" and p1["easix"] == 5.0
    assert {g["product_source"] for g in d["by"]} == {"universal", "autologous"}
    assert out.read_text().startswith("patient_id")


# -- reasons cite criteria by name and table, never an internal file -----------------------


def _all_reasons():
    from cartrial import decision
    from cartrial.grading import (
        grade_agvhd,
        grade_ctcae,
        grade_icaht,
        grade_iechs,
    )
    from cartrial.response import transplant

    yield from grade_crs(temperature_c=39, oxygen="cpap").reasons
    yield from grade_crs(temperature_c=39, system="CARTOX").reasons
    yield from grade_icans(ice_score=5).reasons
    yield from grade_agvhd(bilirubin_mg_dl=3).reasons
    for term in ("neutropenia", "anemia", "sepsis", "fever", "infection"):
        yield from grade_ctcae(term, {}).reasons
    yield from grade_ctcae("alt increased", alt_u_l=300).reasons
    r = grade_icaht([0, 10], [0.3, 2.0], unit="10^9/L")
    yield from (*r.early.reasons, *r.late.reasons)
    yield from grade_iechs(ferritin_ng_ml=9000, ferritin_baseline_ng_ml=500).reasons
    for g in (2, 3):
        advice = decision.management_reference("CRS", g, steroid_refractory=True)
        yield from (*advice.reasons, advice.source)
    yield from transplant.neutrophil_engraftment([1, 2, 3, 4], [0.6, 0.7, 0.8, 0.9]).reasons


def test_reasons_never_cite_an_internal_file():
    reasons = list(_all_reasons())
    assert len(reasons) > 30
    for r in reasons:
        assert ".md" not in r and "GRADING" not in r, r
    # and the engines do cite their criterion with its table
    assert any("Table 3" in r for r in grade_crs(temperature_c=39).reasons)


def test_grade_cli_module_stays_light():
    """``cartrial --help`` must not pay for NumPy/pandas: the grade commands are built
    from the registry only when a grade command is used."""
    import subprocess
    import sys

    code = (
        "import sys, cartrial.cli.grade; "
        "print(any(m in sys.modules for m in ('numpy', 'pandas', 'cartrial.grading')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
