"""Units never give a silent wrong grade; the CTCAE v5.0 chemistry, coagulation, vital-sign
and infection terms at their boundaries.

Grade definitions: NCI CTCAE v5.0 (27 Nov 2017), the rows named in each case. Unit
factors: bilirubin 1 mg/dL = 17.1 umol/L, creatinine 1 mg/dL = 88.4 umol/L, Hb 1 g/dL =
10 g/L, counts 1 x10^9/L = 1000 cells/uL, C = (F - 32) x 5/9.
"""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cartrial.grading import GradingInputError, grade_agvhd, grade_crs, grade_ctcae
from cartrial.grading.ctcae import TERM_NAMES, canonical_term
from cartrial.grading.ranges import ReferenceRanges

# -- units -------------------------------------------------------------------------------

# (term, observation, unit, expected grade): CTCAE v5.0 Investigations, count rows
WITH_UNITS = [
    ("neutropenia", {"anc": 150}, {"anc": "cells/uL"}, 4),  # 0.15 < 0.5
    ("neutropenia", {"anc": "150 cells/µL"}, None, 4),
    ("neutropenia", {"anc": "1200 /mm³"}, None, 2),  # 1.2: < 1.5-1.0
    ("neutropenia", {"anc": "1.2 ×10⁹/L"}, None, 2),
    ("neutropenia", {"anc": "1.2 G/L"}, None, 2),  # giga per litre
    ("thrombocytopenia", {"platelets": 3000}, {"platelets": "cells/uL"}, 4),  # 3 < 25
    ("thrombocytopenia", {"platelets": "60 K/uL"}, None, 2),
    ("leukopenia", {"wbc": "800 cells/uL"}, None, 4),  # 0.8 < 1.0
    ("lymphopenia", {"lymphocytes": "450/uL"}, None, 3),  # 0.45: < 0.5-0.2
    ("anemia", {"hemoglobin_g_dl": "95 g/L", "sex": "F"}, None, 2),  # 9.5 g/dL
    ("anemia", {"hemoglobin_g_dl": 7.5}, {"hemoglobin_g_dl": "g/dL"}, 3),
]


@pytest.mark.parametrize(("term", "obs", "units", "grade"), WITH_UNITS)
def test_counts_accept_an_explicit_unit(term, obs, units, grade):
    assert grade_ctcae(term, obs, units=units).grade == grade


# plainly another unit: refused with the reading in that unit and the unit to pass
IMPLAUSIBLE = [
    ("neutropenia", {"anc": 150}, "anc", "pass unit='cells/uL'"),
    ("thrombocytopenia", {"platelets": 3000}, "platelets", "pass unit='cells/uL'"),
    ("leukopenia", {"wbc": 800}, "wbc", "pass unit='cells/uL'"),
    ("anemia", {"hemoglobin_g_dl": 95}, "hemoglobin_g_dl", "pass unit='g/L'"),
]


@pytest.mark.parametrize(("term", "obs", "field", "hint"), IMPLAUSIBLE)
def test_implausible_value_names_the_likely_unit(term, obs, field, hint):
    with pytest.raises(GradingInputError) as info:
        grade_ctcae(term, obs)
    assert info.value.field == field and hint in str(info.value)
    assert "implausible" in str(info.value)


def test_anc_150_message_gives_both_readings():
    with pytest.raises(GradingInputError) as info:
        grade_ctcae("neutropenia", anc=150)
    msg = str(info.value)
    assert "150 is 150,000 cells/uL" in msg and "0.15 10^9/L" in msg


# plausible in both units with different grades: refused with both readings
AMBIGUOUS = [
    ("neutropenia", {"anc": 50}, "anc"),  # 50 x10^9/L or 50 cells/uL (grade 4)
    ("thrombocytopenia", {"platelets": 1500}, "platelets"),
    ("leukopenia", {"wbc": 120}, "wbc"),
]


@pytest.mark.parametrize(("term", "obs", "field"), AMBIGUOUS)
def test_ambiguous_value_without_unit_is_refused_with_both_readings(term, obs, field):
    with pytest.raises(GradingInputError) as info:
        grade_ctcae(term, obs)
    assert info.value.field == field
    assert "10^9/L" in str(info.value) and "cells/uL" in str(info.value)


def test_temperature_in_fahrenheit_and_bilirubin_in_umol():
    # ASTCT 2019 Table 3: fever >= 38.0 °C alone is grade 1; 101.3 °F = 38.5 °C
    assert grade_crs(temperature_c="101.3 F", oxygen="none", hypotension=False).grade == 1
    assert grade_crs({"temperature_c": 100.0}, units={"temperature_c": "°F"}).grade == 0
    with pytest.raises(GradingInputError, match="pass unit='F'"):
        grade_crs(temperature_c=101.3)
    # MAGIC Table 1 liver: bilirubin 51 umol/L = 2.98 mg/dL -> liver stage 1 (2-3),
    # overall grade II with nothing else; read as mg/dL it would be stage 4 (grade IV)
    values = dict(
        skin_bsa_pct=0,
        upper_gi=False,
        stool_ml_day=100,
        severe_abdominal_pain=False,
        bloody_stool=False,
    )
    g = grade_agvhd(values, bilirubin_mg_dl="51 umol/L")
    assert g.grade == 2 and g.label == "II"
    with pytest.raises(GradingInputError, match="pass unit='umol/L'"):
        grade_agvhd(values, bilirubin_mg_dl=51)
    with pytest.raises(GradingInputError, match="a unit of bilirubin_mg_dl"):
        grade_agvhd(values, bilirubin_mg_dl="2 mmol/L")


@given(st.floats(0.0, 99.0))
def test_unit_conversion_grades_like_the_canonical_value(anc):
    cells = round(anc * 1000, 6)
    a = grade_ctcae("neutropenia", anc=anc if anc <= 20 else f"{anc} 10^9/L")
    b = grade_ctcae("neutropenia", anc=f"{cells} cells/uL")
    assert a.grade == b.grade


# -- CTCAE v5.0 chemistry and coagulation ---------------------------------------------------

ULN = {"alt_u_l": 40.0, "ast_u_l": 40.0, "bilirubin_mg_dl": 1.0, "creatinine_mg_dl": 1.0}
LLN = {"fibrinogen_mg_dl": 200.0}

# (term, observations, grade) - Investigations rows of CTCAE v5.0
CHEMISTRY = [
    # ALT increased, baseline normal: > ULN-3.0 x ULN = 1; > 3-5 = 2; > 5-20 = 3; > 20 = 4
    ("alt increased", {"alt_u_l": 40}, 0),
    ("alt increased", {"alt_u_l": 41}, 1),
    ("alt increased", {"alt_u_l": 120}, 1),
    ("alt increased", {"alt_u_l": 121}, 2),
    ("alt increased", {"alt_u_l": 201}, 3),
    ("alt increased", {"alt_u_l": 801}, 4),
    # ALT, baseline abnormal (80 > ULN): 1.5-3.0 x baseline = 1 ...
    ("Alanine aminotransferase increased", {"alt_u_l": 119, "alt_baseline_u_l": 80}, 0),
    ("Alanine aminotransferase increased", {"alt_u_l": 120, "alt_baseline_u_l": 80}, 1),
    ("Alanine aminotransferase increased", {"alt_u_l": 241, "alt_baseline_u_l": 80}, 2),
    ("Alanine aminotransferase increased", {"alt_u_l": 401, "alt_baseline_u_l": 80}, 3),
    ("AST increased", {"ast_u_l": 201}, 3),
    # Blood bilirubin increased: > ULN-1.5 = 1; > 1.5-3 = 2; > 3-10 = 3; > 10 = 4
    ("Blood bilirubin increased", {"bilirubin_mg_dl": 1.5}, 1),
    ("Blood bilirubin increased", {"bilirubin_mg_dl": 1.6}, 2),
    ("hyperbilirubinaemia", {"bilirubin_mg_dl": 3.1}, 3),
    ("hyperbilirubinemia", {"bilirubin_mg_dl": "200 umol/L"}, 4),  # 11.7 mg/dL
    # abnormal baseline 2.0: > 1.0-1.5 x baseline = 1
    ("Blood bilirubin increased", {"bilirubin_mg_dl": 2.9, "bilirubin_baseline_mg_dl": 2}, 1),
    ("Blood bilirubin increased", {"bilirubin_mg_dl": 3.1, "bilirubin_baseline_mg_dl": 2}, 2),
    # Creatinine increased: > ULN-1.5 x ULN = 1; > 1.5-3.0 x ULN or BL = 2; > 3 x BL or
    # > 3-6 x ULN = 3; > 6 x ULN = 4 (the worse reading)
    ("creatinine increased", {"creatinine_mg_dl": 1.4, "creatinine_baseline_mg_dl": 1.0}, 1),
    ("creatinine increased", {"creatinine_mg_dl": 1.6, "creatinine_baseline_mg_dl": 1.0}, 2),
    ("creatinine increased", {"creatinine_mg_dl": 0.9, "creatinine_baseline_mg_dl": 0.3}, 2),
    ("creatinine increased", {"creatinine_mg_dl": 1.0, "creatinine_baseline_mg_dl": 0.3}, 3),
    ("creatinine increased", {"creatinine_mg_dl": "560 umol/L", "creatinine_baseline_mg_dl": 1}, 4),
    # Fibrinogen decreased (LLN 200 mg/dL): < 1.0-0.75 x LLN = 1; < 0.75-0.5 = 2;
    # < 0.5-0.25 = 3; < 0.25 x LLN or < 50 mg/dL = 4
    ("fibrinogen decreased", {"fibrinogen_mg_dl": 200}, 0),
    ("fibrinogen decreased", {"fibrinogen_mg_dl": 199}, 1),
    ("hypofibrinogenaemia", {"fibrinogen_mg_dl": 149}, 2),
    ("fibrinogen decreased", {"fibrinogen_mg_dl": "0.9 g/L"}, 3),
    ("fibrinogen decreased", {"fibrinogen_mg_dl": 49}, 4),
    # abnormal baseline 150: by the decrease from baseline
    ("fibrinogen decreased", {"fibrinogen_mg_dl": 120, "fibrinogen_baseline_mg_dl": 150}, 1),
    ("fibrinogen decreased", {"fibrinogen_mg_dl": 100, "fibrinogen_baseline_mg_dl": 150}, 2),
    ("fibrinogen decreased", {"fibrinogen_mg_dl": 60, "fibrinogen_baseline_mg_dl": 150}, 3),
]


#: a normal baseline for the cases that do not give one (CTCAE chooses the ULN/LLN
#: reading from a normal baseline)
NORMAL_BASELINE = {
    "alt_u_l": ("alt_baseline_u_l", 20.0),
    "ast_u_l": ("ast_baseline_u_l", 20.0),
    "bilirubin_mg_dl": ("bilirubin_baseline_mg_dl", 0.5),
    "fibrinogen_mg_dl": ("fibrinogen_baseline_mg_dl", 300.0),
}


@pytest.mark.parametrize(("term", "obs", "grade"), CHEMISTRY)
def test_ctcae5_chemistry_and_coagulation(term, obs, grade):
    obs = dict(obs)
    for field, (base, value) in NORMAL_BASELINE.items():
        if field in obs:
            obs.setdefault(base, value)
    g = grade_ctcae(term, obs, uln=ULN, lln=LLN)
    assert g.grade == grade, g.reasons
    assert g.system == "CTCAE5" and g.complete


@pytest.mark.parametrize(
    ("term", "obs", "grade_max", "baseline"),
    [
        ("alt increased", {"alt_u_l": 201}, 3, "alt_baseline_u_l"),
        ("Blood bilirubin increased", {"bilirubin_mg_dl": 3.1}, 3, "bilirubin_baseline_mg_dl"),
        ("fibrinogen decreased", {"fibrinogen_mg_dl": 90}, 3, "fibrinogen_baseline_mg_dl"),
    ],
)
def test_unknown_baseline_is_missing_not_assumed(term, obs, grade_max, baseline):
    g = grade_ctcae(term, obs, uln=ULN, lln=LLN)
    assert (g.grade, g.grade_max, g.missing) == (0, grade_max, (baseline,))
    # values within the normal range are grade 0 whatever the baseline
    within = {k: (30 if k == "alt_u_l" else 0.9 if "bili" in k else 250) for k in obs}
    assert grade_ctcae(term, within, uln=ULN, lln=LLN).complete


@settings(max_examples=80, deadline=None)
@given(
    st.sampled_from(
        [
            ("alt increased", "alt_u_l", "alt_baseline_u_l", 2000.0),
            ("Blood bilirubin increased", "bilirubin_mg_dl", "bilirubin_baseline_mg_dl", 20.0),
            ("creatinine increased", "creatinine_mg_dl", "creatinine_baseline_mg_dl", 10.0),
            ("fibrinogen decreased", "fibrinogen_mg_dl", "fibrinogen_baseline_mg_dl", 600.0),
        ]
    ),
    st.floats(0.01, 1.0),
    st.floats(0.01, 1.0),
    st.booleans(),
)
def test_a_missing_baseline_or_value_only_widens(case, x, y, drop_value):
    term, field, base, top = case
    full = {field: round(x * top, 3), base: round(y * top, 3)}
    g = grade_ctcae(term, full, uln=ULN, lln=LLN)
    thin = {field: full[field]} if not drop_value else {base: full[base]}
    t = grade_ctcae(term, thin, uln=ULN, lln=LLN)
    if t.grade is None:
        assert drop_value and t.grade_max >= g.grade
    else:
        assert t.grade <= g.grade <= t.grade_max


def test_creatinine_without_baseline_lists_it_missing():
    g = grade_ctcae("creatinine increased", creatinine_mg_dl=1.2, uln=ULN)
    assert g.grade == 1 and g.grade_max == 3 and g.missing == ("creatinine_baseline_mg_dl",)


def test_limits_come_from_the_shipped_table_with_its_source_or_are_asked_for():
    # MCC normal values: ALT 17-63 U/L
    g = grade_ctcae("alt increased", alt_u_l=64, alt_baseline_u_l=30)
    assert g.grade == 1 and any("Medical Council of Canada" in r for r in g.reasons)
    with pytest.raises(GradingInputError, match="no default is shipped"):
        grade_ctcae("creatinine increased", creatinine_mg_dl=2.0)


def test_site_reference_range_file_overrides_the_shipped_one(tmp_path):
    site = tmp_path / "ranges.csv"
    site.write_text(
        "field,sex,lln,uln,unit,source\n"
        "alt_u_l,,7,35,U/L,Site lab 2026\n"
        "creatinine_mg_dl,,,97,umol/L,Site lab 2026\n",
        encoding="utf-8",
    )
    g = grade_ctcae("alt increased", alt_u_l=36, alt_baseline_u_l=20, ranges=str(site))
    assert g.grade == 1 and any("Site lab 2026" in r for r in g.reasons)
    rr = ReferenceRanges(site)
    assert math.isclose(rr.need("uln", "creatinine_mg_dl").value, 97 / 88.4)
    bad = tmp_path / "bad.csv"
    bad.write_text("field,sex,lln,uln,unit,source\nalt_u_l,,x,35,U/L,s\n", encoding="utf-8")
    with pytest.raises(GradingInputError, match="row 2"):
        ReferenceRanges(bad)
    bad.write_text("field,sex,lln,uln,unit,source\nalt,,7,35,mg/dL,s\n", encoding="utf-8")
    with pytest.raises(GradingInputError, match="a grading field name"):
        ReferenceRanges(bad)


# -- CTCAE v5.0 vital-sign and infection terms ---------------------------------------------

OTHER_TERMS = [
    # Fever (General disorders): 38.0-39.0 = 1; > 39.0-40.0 = 2; > 40.0 <= 24 h = 3; > 24 h = 4
    ("fever", {"temperature_c": 37.9}, 0, 0),
    ("fever", {"temperature_c": 38.0}, 1, 1),
    ("pyrexia", {"temperature_c": 39.0}, 1, 1),
    ("fever", {"temperature_c": 39.1}, 2, 2),
    ("fever", {"temperature_c": 40.5}, 3, 4),  # duration unknown: up to 4
    ("fever", {"temperature_c": 40.5, "fever_over_24h": True}, 4, 4),
    # Hypotension (Vascular disorders), by the intervention
    ("hypotension", {"hypotension_treatment": "not_indicated"}, 1, 1),
    ("hypotension", {"hypotension_treatment": "non_urgent"}, 2, 2),
    ("hypotension", {"hypotension_treatment": "hospitalisation"}, 3, 3),
    ("hypotension", {"hypotension_treatment": "urgent"}, 4, 4),
    ("hypotension", {"hypotension": False}, 0, 0),
    # Hypoxia (Respiratory): no grade 1
    ("hypoxia", {"hypoxia_treatment": "with_exercise"}, 2, 2),
    ("hypoxia", {"hypoxia_treatment": "at_rest"}, 3, 3),
    ("hypoxia", {"hypoxia_treatment": "intubated"}, 4, 4),
    # Sepsis (Infections and infestations): grades 3-5 only
    ("sepsis", {"blood_culture_positive": True, "sepsis_signs": True}, 3, 4),
    (
        "sepsis",
        {"blood_culture_positive": True, "sepsis_signs": True, "life_threatening": True},
        4,
        4,
    ),
    ("sepsis", {"blood_culture_positive": False, "sepsis_signs": True}, 0, 0),
    ("sepsis", {"death": True}, 5, 5),
    # Lung infection: oral 2; IV or invasive 3; life-threatening 4; death 5 (no grade 1)
    ("pneumonia", {"intervention": "oral"}, 2, 2),
    ("lung infection", {"intervention": "iv"}, 3, 3),
    ("Lung infection", {"intervention": "life_threatening"}, 4, 4),
]


@pytest.mark.parametrize(("term", "obs", "grade", "grade_max"), OTHER_TERMS)
def test_ctcae5_vital_sign_and_infection_terms(term, obs, grade, grade_max):
    g = grade_ctcae(term, obs)
    assert (g.grade, g.grade_max) == (grade, grade_max), g.reasons


def test_sepsis_is_never_graded_1_or_2():
    for obs in ({"blood_culture_positive": True}, {"sepsis_signs": True}, {}):
        g = grade_ctcae("sepsis", obs)
        assert g.grade in (None, 0) and g.grade_max in (3, 4, 5)
    with pytest.raises(GradingInputError, match="no grade 1"):
        grade_ctcae("lung infection", intervention="local")


# the CTCAE v5.0 term names (NCI v5.0 table) every term id must carry, verbatim
CTCAE5_NAMES = {
    "Neutrophil count decreased",
    "Platelet count decreased",
    "Lymphocyte count decreased",
    "White blood cell decreased",
    "Anemia",
    "Febrile neutropenia",
    "Sepsis",
    "Lung infection",
    "Alanine aminotransferase increased",
    "Aspartate aminotransferase increased",
    "Blood bilirubin increased",
    "Creatinine increased",
    "Fibrinogen decreased",
    "Fever",
    "Hypotension",
    "Hypoxia",
    "Diarrhea",
    "Nausea",
    "Vomiting",
    "Headache",
    "Rash maculo-papular",
    "Hyponatremia",
    "Hypernatremia",
    "Hypokalemia",
    "Hyperkalemia",
    "Hypocalcemia",
    "Hypophosphatemia",
    "Hypomagnesemia",
    "Hypoglycemia",
    "Seizure",
    "Encephalopathy",
}


def test_every_term_and_alias_is_a_ctcae5_term_name():
    names = {name for term, (name, _soc) in TERM_NAMES.items() if term != "infection"}
    assert names == CTCAE5_NAMES
    for name in CTCAE5_NAMES:  # each CTCAE name resolves to the term of that name
        assert TERM_NAMES[canonical_term(name)][0] == name
    # a CTCAE v5.0 term is never an alias of another: sepsis is not the infection ladder
    assert canonical_term("sepsis") == "sepsis"
    assert canonical_term("thrombocytopaenia") == "thrombocytopenia"
    assert canonical_term("anaemia") == "anemia"
    assert canonical_term("neutropaenia") == "neutropenia"
    assert canonical_term("leucopenia") == "leukopenia"
    for not_alias in ("acute kidney injury", "bacteremia"):  # their own CTCAE terms
        with pytest.raises(GradingInputError):
            canonical_term(not_alias)
    with pytest.raises(GradingInputError, match="did you mean"):
        canonical_term("thrombocytopenai")


# -- the cohort format accepts the units and stores canonical ones -------------------------


def test_cohort_observations_store_canonical_units(tmp_path):
    import cartrial
    from cartrial.grading.episodes import grade_daily

    (tmp_path / "patients.csv").write_text("patient_id,infusion_date\nP1,2024-01-01\n")
    (tmp_path / "observations.csv").write_text(
        "patient_id,day,analyte,value,unit\n"
        "P1,1,anc,150,cells/µL\n"
        "P1,1,temperature,101.3,°F\n"
        "P1,1,bilirubin,51,µmol/L\n"
        "P1,1,hemoglobin,95,g/L\n"
        "P1,1,platelets,3000,/mm3\n"
        "P1,2,anc,1.2,G/L\n"
        "P1,2,fibrinogen,1.2,g/L\n"
        "P1,2,creatinine,88.4,umol/L\n",
        encoding="utf-8",
    )
    obs = cartrial.load_cohort(tmp_path).observations
    got = {(r.day, r.analyte): (round(r.value, 3), r.unit) for r in obs.itertuples()}
    assert got[(1, "anc")] == (0.15, "10^9/L")
    assert got[(1, "temperature")] == (38.5, "C")
    assert got[(1, "bilirubin")] == (round(51 / 17.1, 3), "mg/dL")
    assert got[(1, "hemoglobin")] == (9.5, "g/dL")
    assert got[(1, "platelets")] == (3.0, "10^9/L")
    assert got[(2, "anc")] == (1.2, "10^9/L")
    assert got[(2, "fibrinogen")] == (120.0, "mg/dL")
    assert got[(2, "creatinine")] == (1.0, "mg/dL")
    daily = grade_daily(obs, terms=("neutropenia", "thrombocytopenia")).set_index(["term", "day"])
    assert daily.loc[("neutropenia", 1), "grade"] == 4  # 0.15 x10^9/L
    assert daily.loc[("thrombocytopenia", 1), "grade"] == 4  # 3 x10^9/L


def test_daily_grading_reads_the_unit_column_and_refuses_ambiguity():
    import pandas as pd

    from cartrial.grading.episodes import grade_daily

    obs = pd.DataFrame(
        {
            "patient_id": ["A", "A"],
            "day": [1.0, 2.0],
            "analyte": ["anc", "anc"],
            "value": [300.0, 0.3],
            "unit": ["cells/uL", None],
        }
    )
    assert list(grade_daily(obs, terms=("neutropenia",))["grade"]) == [4, 4]
    with pytest.raises(GradingInputError, match="pass unit='cells/uL'"):
        grade_daily(obs.assign(unit=None), terms=("neutropenia",))
