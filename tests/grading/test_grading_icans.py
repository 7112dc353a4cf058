"""ICANS grading (ASTCT 2019 adult and paediatric tables; CARTOX-10) from the criteria text."""

from __future__ import annotations

import itertools

import pytest

from cartrial.grading import GradingInputError, grade_icans, ice_score_from_items
from cartrial.grading.icans import cartox10_from_items

NORMAL = dict(consciousness="alert", seizure="none", motor_weakness=False, cerebral_edema="none")


def icans(**kw):
    return grade_icans({**NORMAL, **kw})


@pytest.mark.parametrize(
    "ice,expected",
    [(10, 0), (9, 1), (8, 1), (7, 1), (6, 2), (5, 2), (3, 2), (2, 3), (1, 3), (0, 3)],
)
def test_ice_score_boundaries(ice, expected):
    g = icans(ice_score=ice)
    assert g.grade == expected and g.complete


def test_ice_0_awake_is_3_but_unarousable_is_4():
    assert icans(ice_score=0, consciousness="alert").grade == 3
    assert icans(ice_score=0, consciousness="unarousable").grade == 4
    # unarousable cannot do ICE: grade 4 without a score, and nothing is missing
    g = grade_icans(consciousness="unarousable")
    assert g.grade == 4 and g.complete


@pytest.mark.parametrize(
    "level,expected",
    [
        ("alert", 0),
        ("awakens_spontaneously", 1),
        ("awakens_to_voice", 2),
        ("awakens_to_touch", 3),
        ("unarousable", 4),
        ("awake", 0),
        ("voice", 2),
        ("tactile", 3),
    ],
)
def test_consciousness_domain(level, expected):
    assert icans(ice_score=10, consciousness=level).grade == expected


@pytest.mark.parametrize(
    "seizure,expected",
    [
        ("none", 0),
        ("rapid_resolving", 3),
        ("nonconvulsive_resolving", 3),
        ("prolonged", 4),
        ("repetitive", 4),
        ("status_epilepticus", 4),
        ("rapid", 3),
    ],
)
def test_seizure_domain(seizure, expected):
    assert icans(ice_score=10, seizure=seizure).grade == expected


@pytest.mark.parametrize(
    "edema,expected",
    [
        ("none", 0),
        ("focal", 3),
        ("diffuse", 4),
        ("posturing", 4),
        ("cranial_nerve_vi_palsy", 4),
        ("papilledema", 4),
        ("cushings_triad", 4),
    ],
)
def test_raised_icp_domain(edema, expected):
    assert icans(ice_score=10, cerebral_edema=edema).grade == expected


def test_motor_weakness_is_4():
    assert icans(ice_score=10, motor_weakness=True).grade == 4


def test_most_severe_domain_wins():
    # ASTCT example: ICE 3 (grade 2) with a generalised seizure resolving rapidly -> 3
    assert icans(ice_score=3, seizure="rapid_resolving").grade == 3
    for ice, cons, sz, edema in itertools.product(
        [10, 8, 4, 1],
        ["alert", "awakens_to_voice", "awakens_to_touch"],
        ["none", "rapid_resolving", "prolonged"],
        ["none", "focal", "diffuse"],
    ):
        d_ice = 0 if ice == 10 else 1 if ice >= 7 else 2 if ice >= 3 else 3
        d_cons = {"alert": 0, "awakens_to_voice": 2, "awakens_to_touch": 3}[cons]
        d_sz = {"none": 0, "rapid_resolving": 3, "prolonged": 4}[sz]
        d_ed = {"none": 0, "focal": 3, "diffuse": 4}[edema]
        g = icans(ice_score=ice, consciousness=cons, seizure=sz, cerebral_edema=edema)
        assert g.grade == max(d_ice, d_cons, d_sz, d_ed)


def test_ice_10_and_nothing_else_is_no_icans():
    assert icans(ice_score=10).grade == 0


# -- children: CAPD --------------------------------------------------------------------


@pytest.mark.parametrize(
    "capd,cons,expected",
    [
        (0, "alert", 0),
        (1, "alert", 1),
        (8, "alert", 1),
        (8, "awakens_spontaneously", 1),
        (5, "awakens_to_voice", 2),
        (9, "alert", 3),
        (20, "alert", 3),
        (9, "unarousable", 4),
    ],
)
def test_capd_table_for_children(capd, cons, expected):
    g = grade_icans({**NORMAL, "consciousness": cons}, capd_score=capd, age_years=6)
    assert g.grade == expected


def test_capd_age_cutoff_is_a_parameter():
    obs = {**NORMAL, "ice_score": 10, "capd_score": 12, "age_years": 12}
    assert grade_icans(obs).grade == 0  # 12 years: ICE (default cut-off 12)
    assert grade_icans(obs, capd_age_cutoff=13).grade == 3  # CAPD below 13
    young = grade_icans({**NORMAL, "ice_score": 2, "age_years": 5})
    assert young.grade == 0 and "capd_score" in young.missing  # ICE ignored for a 5-year-old
    assert any("not used" in r for r in young.reasons)


def test_age_unknown_with_both_scores_takes_the_envelope():
    g = grade_icans({**NORMAL, "ice_score": 10, "capd_score": 12})
    assert g.grade == 0 and g.grade_max == 3 and "age_years" in g.missing


def test_capd_given_without_age_is_used():
    assert grade_icans({**NORMAL, "capd_score": 10}).grade == 3


# -- missing data and the "no consciousness input" calculator failure -------------------


def test_failure_mode_calculator_without_consciousness():
    # a calculator ignoring consciousness would say grade 1 here
    assert icans(ice_score=8, consciousness="awakens_to_touch").grade == 3
    g = grade_icans(ice_score=8, seizure="none", motor_weakness=False, cerebral_edema="none")
    assert g.grade == 1 and g.grade_max == 4
    assert g.missing == ("consciousness",)


def test_each_unknown_domain_is_listed():
    g = grade_icans(ice_score=9)
    assert g.grade == 1 and g.grade_max == 4
    assert set(g.missing) == {"consciousness", "seizure", "motor_weakness", "cerebral_edema"}
    assert grade_icans({}).grade is None


@pytest.mark.parametrize(
    "bad,field",
    [
        ({"ice_score": 11}, "ice_score"),
        ({"ice_score": -1}, "ice_score"),
        ({"ice_score": 7.5}, "ice_score"),
        ({"capd_score": 33}, "capd_score"),
        ({"consciousness": "sleepy-ish"}, "consciousness"),
        ({"seizure": "maybe"}, "seizure"),
        ({"cerebral_edema": "some"}, "cerebral_edema"),
    ],
)
def test_bad_input(bad, field):
    with pytest.raises(GradingInputError) as info:
        grade_icans(bad)
    assert info.value.field == field


def test_bad_cutoff():
    with pytest.raises(GradingInputError):
        grade_icans(ice_score=10, capd_age_cutoff=-1)


# -- ICE / CARTOX-10 items ---------------------------------------------------------------


def test_ice_items_sum_to_ten_points():
    assert ice_score_from_items(4, 3, 1, 1, 1) == 10
    assert ice_score_from_items(2, 1, 0, 1, 0) == 4
    with pytest.raises(GradingInputError):
        ice_score_from_items(5, 3, 1, 1, 1)  # orientation is 4 items
    with pytest.raises(GradingInputError):
        ice_score_from_items(4, 3, 2, 1, 1)
    assert cartox10_from_items(5, 3, 1, 1) == 10
    with pytest.raises(GradingInputError):
        cartox10_from_items(6, 3, 1, 1)


def test_cartox_cres_table():
    base = dict(consciousness="alert", seizure="none", motor_weakness=False, cerebral_edema="none")
    assert grade_icans({**base, "cartox10_score": 10}, system="CARTOX").grade == 0
    assert grade_icans({**base, "cartox10_score": 7}, system="CARTOX").grade == 1
    assert grade_icans({**base, "cartox10_score": 4}, system="CARTOX").grade == 2
    assert grade_icans({**base, "cartox10_score": 2}, system="CARTOX").grade == 3
    b10 = {**base, "cartox10_score": 10}
    assert grade_icans({**b10, "consciousness": "unarousable"}, system="CARTOX").grade == 4
    assert grade_icans({**b10, "seizure": "focal"}, system="CARTOX").grade == 3
    assert grade_icans({**b10, "seizure": "generalized"}, system="CARTOX").grade == 4
    assert grade_icans({**b10, "cerebral_edema": "focal"}, system="CARTOX").grade == 4
    assert grade_icans({**b10, "papilledema_stage": 2}, system="CARTOX").grade == 3
    assert grade_icans({**b10, "papilledema_stage": 3}, system="CARTOX").grade == 4
    assert grade_icans({**b10, "csf_opening_pressure_mmhg": 21}, system="CARTOX").grade == 4
    assert grade_icans({**b10, "motor_weakness": True}, system="CARTOX").grade == 4
    # ASTCT and CARTOX differ on focal oedema (3 vs 4) and on a generalised seizure
    assert grade_icans({**NORMAL, "ice_score": 10, "cerebral_edema": "focal"}).grade == 3
