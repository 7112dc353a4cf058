"""CTCAE v5.0 haematology, febrile neutropenia and infection grades at every boundary."""

from __future__ import annotations

import pytest

from cartrial.grading import GradingInputError, grade_ctcae


@pytest.mark.parametrize(
    "anc,grade",
    [
        (2.5, 0),
        (1.8, 0),
        (1.79, 1),
        (1.5, 1),
        (1.49, 2),
        (1.0, 2),
        (0.99, 3),
        (0.5, 3),
        (0.49, 4),
        (0.0, 4),
    ],
)
def test_neutrophil_count_decreased(anc, grade):
    g = grade_ctcae("neutropenia", anc=anc)
    assert g.grade == grade and g.system == "CTCAE5" and g.complete


@pytest.mark.parametrize(
    "plt,grade", [(150, 0), (149, 1), (75, 1), (74.9, 2), (50, 2), (49, 3), (25, 3), (24.9, 4)]
)
def test_platelet_count_decreased(plt, grade):
    assert grade_ctcae("Platelet count decreased", platelets=plt).grade == grade


@pytest.mark.parametrize(
    "lym,grade",
    [(1.0, 0), (0.99, 1), (0.8, 1), (0.79, 2), (0.5, 2), (0.49, 3), (0.2, 3), (0.19, 4)],
)
def test_lymphocyte_count_decreased(lym, grade):
    assert grade_ctcae("lymphopenia", lymphocytes=lym).grade == grade


@pytest.mark.parametrize(
    "wbc,grade",
    [(4.0, 0), (3.99, 1), (3.0, 1), (2.99, 2), (2.0, 2), (1.99, 3), (1.0, 3), (0.99, 4)],
)
def test_white_blood_cell_decreased(wbc, grade):
    assert grade_ctcae("leukopenia", wbc=wbc).grade == grade


def test_lln_is_configurable():
    assert grade_ctcae("neutropenia", anc=1.7).grade == 1
    assert grade_ctcae("neutropenia", anc=1.7, lln={"anc": 1.5}).grade == 0
    assert grade_ctcae("thrombocytopenia", platelets=140, lln={"platelets": 130}).grade == 0


@pytest.mark.parametrize(
    "hb,sex,grade",
    [
        (12.0, "F", 0),
        (11.9, "F", 1),
        (12.5, "M", 1),
        (13.0, "M", 0),
        (10.0, "F", 1),
        (9.9, "F", 2),
        (8.0, "M", 2),
        (7.9, "M", 3),
    ],
)
def test_anemia(hb, sex, grade):
    assert grade_ctcae("anaemia", hemoglobin_g_dl=hb, sex=sex).grade == grade


def test_anemia_sex_unknown_and_grade4():
    g = grade_ctcae("anemia", hemoglobin_g_dl=12.5, life_threatening=False)
    assert g.grade == 0 and g.grade_max == 1 and g.missing == ("sex",)
    g = grade_ctcae("anemia", hemoglobin_g_dl=7.0, sex="F")
    assert g.grade == 3 and "life_threatening" in g.missing
    assert grade_ctcae("anemia", hemoglobin_g_dl=7.0, sex="F", life_threatening=True).grade == 4
    # CTCAE v5.0 grade 4 ("life-threatening consequences; urgent intervention indicated")
    # has no haemoglobin threshold: unknown at any haemoglobin, it keeps grade_max at 4
    g = grade_ctcae("anemia", hemoglobin_g_dl=9.0, sex="F")
    assert (g.grade, g.grade_max) == (2, 4) and g.missing == ("life_threatening",)
    assert grade_ctcae("anemia", hemoglobin_g_dl=9.0, sex="F", life_threatening=False).complete
    assert grade_ctcae("anemia", hemoglobin_g_dl=9.0, sex="F", life_threatening=True).grade == 4


@pytest.mark.parametrize(
    "anc,temp,sustained,grade",
    [
        (0.9, 38.4, None, 3),
        (0.9, 38.3, False, 0),
        (0.9, 38.3, True, 3),
        (0.9, 38.0, True, 3),
        (0.9, 37.9, True, 0),
        (1.0, 39.0, False, 0),
        (0.2, 39.5, False, 3),
    ],
)
def test_febrile_neutropenia(anc, temp, sustained, grade):
    obs = {"anc": anc, "temperature_c": temp}
    if sustained is not None:
        obs["fever_sustained_1h"] = sustained
    g = grade_ctcae("febrile neutropenia", obs)
    assert g.grade == grade


def test_febrile_neutropenia_unknown_duration_is_missing():
    g = grade_ctcae("febrile_neutropenia", anc=0.4, temperature_c=38.1)
    assert g.grade == 0 and g.grade_max >= 3 and "fever_sustained_1h" in g.missing


@pytest.mark.parametrize(
    "intervention,grade",
    [
        ("local", 1),
        ("oral", 2),
        ("iv", 3),
        ("invasive", 3),
        ("life_threatening", 4),
        ("death", 5),
        ("IV antibiotics", 3),
    ],
)
def test_infection_by_intervention(intervention, grade):
    assert grade_ctcae("infection", intervention=intervention).grade == grade


def test_infection_death_flag_and_unknown():
    assert grade_ctcae("sepsis", intervention="iv", death=True).grade == 5
    assert grade_ctcae("infection", {}).grade is None


def test_version_is_carried_and_checked():
    assert grade_ctcae("neutropenia", anc=0.3, version="v5.0").system == "CTCAE5"
    with pytest.raises(GradingInputError, match="version"):
        grade_ctcae("neutropenia", anc=0.3, version="6.0")


@pytest.mark.parametrize(
    "term,obs,field",
    [
        ("neutropenia", {"anc": -0.1}, "anc"),
        ("neutropenia", {"anc": 1500}, "anc"),  # cells/µL given where x10^9/L is expected
        ("infection", {"intervention": "prayer"}, "intervention"),
        ("hair loss", {"anc": 1}, "term"),
    ],
)
def test_bad_input(term, obs, field):
    with pytest.raises(GradingInputError) as info:
        grade_ctcae(term, obs)
    assert info.value.field == field


def test_missing_count_is_not_graded_zero():
    g = grade_ctcae("neutropenia", {})
    assert g.grade is None and g.missing == ("anc",)
