"""Acute GVHD (MAGIC, Keystone 1994) and chronic GVHD (NIH 2014) from the criteria tables."""

from __future__ import annotations

import itertools

import pytest

from cartrial.grading import GradingInputError, grade_agvhd, grade_cgvhd, stage_agvhd

NONE = dict(
    skin_bsa_pct=0,
    bullae=False,
    bilirubin_mg_dl=0.5,
    upper_gi=False,
    stool_ml_day=0,
    weight_kg=70,
    severe_abdominal_pain=False,
    bloody_stool=False,
)


def agvhd(system="MAGIC", **kw):
    return grade_agvhd({**NONE, **kw}, system=system)


@pytest.mark.parametrize(
    "bili,stage", [(1.9, 0), (2.0, 1), (3.0, 1), (3.1, 2), (6.0, 2), (6.1, 3), (15.0, 3), (15.1, 4)]
)
def test_liver_stage_boundaries(bili, stage):
    assert stage_agvhd({**NONE, "bilirubin_mg_dl": bili})["liver"] == stage


@pytest.mark.parametrize(
    "ml,stage", [(499, 0), (500, 1), (999, 1), (1000, 2), (1500, 2), (1501, 3)]
)
def test_adult_stool_volume_boundaries(ml, stage):
    assert stage_agvhd({**NONE, "stool_ml_day": ml})["lower_gi"] == stage


@pytest.mark.parametrize("ml,stage", [(199, 0), (200, 1), (398, 1), (400, 2), (600, 2), (602, 3)])
def test_child_stool_ml_per_kg_boundaries(ml, stage):
    # 20 kg child: 10 / 19.9 / 20 / 30 / > 30 mL/kg/day
    assert stage_agvhd({**NONE, "weight_kg": 20, "stool_ml_day": ml})["lower_gi"] == stage


def test_adult_thresholds_apply_above_50_kg():
    assert stage_agvhd({**NONE, "weight_kg": 50.1, "stool_ml_day": 600})["lower_gi"] == 1
    assert stage_agvhd({**NONE, "weight_kg": 50, "stool_ml_day": 600})["lower_gi"] == 1  # 12 mL/kg
    assert stage_agvhd({**NONE, "weight_kg": 40, "stool_ml_day": 600})["lower_gi"] == 1  # 15
    assert stage_agvhd({**NONE, "weight_kg": 25, "stool_ml_day": 600})["lower_gi"] == 2  # 24


@pytest.mark.parametrize(
    "weight,episodes,stage",
    [
        (70, 2, 0),
        (70, 3, 1),
        (70, 4, 1),
        (70, 5, 2),
        (70, 7, 2),
        (70, 8, 3),
        (20, 3, 0),
        (20, 4, 1),
        (20, 6, 1),
        (20, 7, 2),
        (20, 10, 2),
        (20, 11, 3),
    ],
)
def test_stool_episodes_when_volume_unknown(weight, episodes, stage):
    obs = {**NONE, "weight_kg": weight, "stool_episodes": episodes}
    obs.pop("stool_ml_day")
    assert stage_agvhd(obs)["lower_gi"] == stage


@pytest.mark.parametrize(
    "bsa,bullae,stage",
    [
        (0, False, 0),
        (24, False, 1),
        (25, False, 2),
        (50, False, 2),
        (51, False, 3),
        (51, True, 4),
        (40, True, 2),
    ],
)
def test_skin_stage_boundaries(bsa, bullae, stage):
    assert stage_agvhd({**NONE, "skin_bsa_pct": bsa, "bullae": bullae})["skin"] == stage


def test_lower_gi_stage_4_by_pain_or_blood_whatever_the_volume():
    assert stage_agvhd({**NONE, "severe_abdominal_pain": True})["lower_gi"] == 4
    assert stage_agvhd({**NONE, "bloody_stool": True})["lower_gi"] == 4


# -- overall grade: an independent reading of MAGIC Table 2 -------------------------------
def magic_by_hand(skin, liver, ugi, lgi):
    if skin == 4 or liver == 4 or lgi == 4:
        return 4
    if liver in (2, 3) or lgi in (2, 3):
        return 3
    if skin == 3 or liver == 1 or ugi == 1 or lgi == 1:
        return 2
    if skin in (1, 2):
        return 1
    return 0


SKIN = {
    0: dict(skin_bsa_pct=0),
    1: dict(skin_bsa_pct=10),
    2: dict(skin_bsa_pct=30),
    3: dict(skin_bsa_pct=60),
    4: dict(skin_bsa_pct=80, bullae=True),
}
LIVER = {0: 1.0, 1: 2.5, 2: 4.0, 3: 10.0, 4: 20.0}
LGI = {
    0: dict(stool_ml_day=100),
    1: dict(stool_ml_day=700),
    2: dict(stool_ml_day=1200),
    3: dict(stool_ml_day=2000),
    4: dict(severe_abdominal_pain=True),
}


def test_magic_overall_grade_all_stage_combinations():
    for s, li, u, lg in itertools.product(range(5), range(5), range(2), range(5)):
        obs = {**NONE, **SKIN[s], "bilirubin_mg_dl": LIVER[li], "upper_gi": bool(u), **LGI[lg]}
        g = grade_agvhd(obs)
        assert g.grade == magic_by_hand(s, li, u, lg), (s, li, u, lg)
        assert g.detail("stages") == {"skin": s, "liver": li, "upper_gi": u, "lower_gi": lg}
        assert g.label == ["0", "I", "II", "III", "IV"][g.grade]


def keystone_by_hand(skin, liver, gut):
    if skin == 4 or liver == 4:
        return 4
    if liver in (2, 3) or gut in (2, 3, 4):
        return 3
    if skin == 3 or liver == 1 or gut == 1:
        return 2
    if skin in (1, 2):
        return 1
    return 0


def test_keystone_overall_grade_gut_stage_4_is_grade_3():
    for s, li, lg in itertools.product(range(5), range(5), range(5)):
        obs = {**NONE, **SKIN[s], "bilirubin_mg_dl": LIVER[li], **LGI[lg]}
        assert grade_agvhd(obs, system="Keystone1994").grade == keystone_by_hand(s, li, lg)
    pain = {**NONE, "severe_abdominal_pain": True}
    assert grade_agvhd(pain).grade == 4
    assert grade_agvhd(pain, system="Keystone1994").grade == 3


def test_keystone_differences_from_magic():
    # nausea is gut stage 1 in Keystone; bloody stool is not a Keystone criterion
    assert grade_agvhd({**NONE, "upper_gi": True}, system="Keystone1994").grade == 2
    assert grade_agvhd({**NONE, "bloody_stool": True}, system="Keystone1994").grade == 0
    # Keystone downgrades a liver stage for a documented other cause; MAGIC never does
    obs = {**NONE, "bilirubin_mg_dl": 4.0, "liver_other_cause": True}
    assert grade_agvhd(obs).grade == 3
    assert grade_agvhd(obs, system="Keystone1994").grade == 2
    # Keystone volumes are "> 500 mL"
    assert grade_agvhd({**NONE, "stool_ml_day": 500}, system="Keystone1994").grade == 0
    assert grade_agvhd({**NONE, "stool_ml_day": 500}).grade == 2


def test_failure_mode_liver_4_with_lower_gi_1_is_grade_IV():
    for system in ("MAGIC", "Keystone1994"):
        g = agvhd(system, bilirubin_mg_dl=16.0, stool_ml_day=700)
        assert g.grade == 4 and g.label == "IV"
    g = agvhd(bilirubin_mg_dl=16.0, stool_ml_day=700)
    assert any("liver" in r and "stage 4" in r for r in g.reasons)


def test_missing_organs_are_not_assumed_normal():
    g = grade_agvhd(skin_bsa_pct=30)
    assert g.grade == 1 and g.grade_max == 4
    assert {"bilirubin_mg_dl", "upper_gi"} <= set(g.missing)
    assert "stool_ml_day" in g.missing
    assert stage_agvhd(skin_bsa_pct=30)["liver"] is None
    assert grade_agvhd({}).grade is None


def test_unknown_weight_with_volume_is_listed():
    obs = {**NONE, "stool_ml_day": 600}
    obs.pop("weight_kg")
    g = grade_agvhd(obs)
    assert g.grade == 2 and g.grade_max == 3 and "weight_kg" in g.missing


@pytest.mark.parametrize(
    "bad,field",
    [
        ({"skin_bsa_pct": 101}, "skin_bsa_pct"),
        ({"bilirubin_mg_dl": -0.1}, "bilirubin_mg_dl"),
        ({"stool_ml_day": -5}, "stool_ml_day"),
        ({"stool_episodes": 2.5}, "stool_episodes"),
    ],
)
def test_bad_input(bad, field):
    with pytest.raises(GradingInputError) as info:
        grade_agvhd(bad)
    assert info.value.field == field


def test_unknown_agvhd_system():
    with pytest.raises(GradingInputError):
        grade_agvhd(NONE, system="ASTCT2019")


# -- chronic GVHD NIH 2014 -------------------------------------------------------------

ALL0 = dict(skin=0, mouth=0, eyes=0, gi=0, liver=0, lungs=0, joints_fascia=0, genital=0)


@pytest.mark.parametrize(
    "scores,grade,label",
    [
        ({}, 0, "none"),
        ({"skin": 1}, 1, "mild"),
        ({"skin": 1, "mouth": 1}, 1, "mild"),
        ({"skin": 1, "mouth": 1, "eyes": 1}, 2, "moderate"),
        ({"mouth": 2}, 2, "moderate"),
        ({"lungs": 1}, 2, "moderate"),
        ({"skin": 1, "lungs": 1}, 2, "moderate"),
        ({"lungs": 2}, 3, "severe"),
        ({"eyes": 3}, 3, "severe"),
        ({"skin": 2, "mouth": 2, "eyes": 2}, 2, "moderate"),
    ],
)
def test_nih_global_severity(scores, grade, label):
    g = grade_cgvhd({**ALL0, **scores})
    assert (g.grade, g.label) == (grade, label)
    assert g.complete


def test_cgvhd_unscored_organs_are_missing():
    g = grade_cgvhd({"skin": 1})
    assert g.grade == 1 and g.grade_max == 3 and "lungs" in g.missing
    g = grade_cgvhd({"oral": 3})  # alias; severe whatever the rest
    assert g.grade == 3 and g.complete


@pytest.mark.parametrize(
    "bad", [{"skin": 4}, {"skin": -1}, {"skin": 1.5}, {"kidney": 1}, {"skin": True}]
)
def test_cgvhd_bad_scores(bad):
    with pytest.raises(GradingInputError):
        grade_cgvhd(bad)
