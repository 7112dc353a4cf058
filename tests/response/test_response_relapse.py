"""Relapse detection and CD7 typing; engraftment, graft failure and chimerism."""

from __future__ import annotations

import pytest

from cartrial.grading import GradingInputError
from cartrial.response import (
    chimerism_status,
    classify_relapse,
    neutrophil_engraftment,
    platelet_engraftment,
    primary_graft_failure,
)

SITES_CLEAR = dict(circulating_blasts=False, cns=False, extramedullary=False)


@pytest.mark.parametrize(
    "blasts,criteria,expected",
    [
        (5.0, "NCCN_ALL", False),
        (5.1, "NCCN_ALL", True),
        (5.0, "ELN2022_AML", True),
        (4.9, "ELN2022_AML", False),
    ],
)
def test_marrow_relapse_threshold(blasts, criteria, expected):
    r = classify_relapse(SITES_CLEAR, bm_blasts_pct=blasts, criteria=criteria)
    assert r.relapsed is expected


def test_relapse_threshold_parameter_for_older_tables():
    assert classify_relapse(SITES_CLEAR, bm_blasts_pct=20, relapse_blast_pct=25).relapsed is False
    assert classify_relapse(SITES_CLEAR, bm_blasts_pct=26, relapse_blast_pct=25).relapsed is True


def test_cd7_typing_and_sites():
    r = classify_relapse(
        bm_blasts_pct=1, circulating_blasts=False, cns=True, extramedullary=False, cd7_pct=2
    )
    assert r.relapsed and r.sites == ("CNS",) and r.cd7 == "negative"
    assert r.label == "CD7-negative relapse (CNS)"
    assert any("antigen escape" in x for x in r.reasons)
    r = classify_relapse(SITES_CLEAR, bm_blasts_pct=40, cd7_pct=85)
    assert r.cd7 == "positive" and r.label == "CD7-positive relapse (marrow)"
    assert (
        classify_relapse(SITES_CLEAR, bm_blasts_pct=40, cd7_pct=15, cd7_positive_pct=10).cd7
        == "positive"
    )
    assert classify_relapse(SITES_CLEAR, bm_blasts_pct=40, cd7_status="CD7-").cd7 == "negative"


def test_relapse_unknown_sites_and_no_prior_remission():
    r = classify_relapse(bm_blasts_pct=1)
    assert r.relapsed is None and set(r.missing) == {"circulating_blasts", "cns", "extramedullary"}
    r = classify_relapse(bm_blasts_pct=30)
    assert r.relapsed is True and r.missing == ()
    assert classify_relapse(bm_blasts_pct=30, prior_remission=False).relapsed is None
    with pytest.raises(GradingInputError):
        classify_relapse(bm_blasts_pct=30, cd7_status="sideways")


# -- engraftment (hand-worked series) ---------------------------------------------------


def test_neutrophil_engraftment_first_of_three_after_nadir():
    days = [0, 2, 4, 6, 8, 10, 11, 12, 13]
    anc = [1.2, 0.3, 0.1, 0.6, 0.4, 0.5, 0.7, 0.9, 1.5]
    e = neutrophil_engraftment(days, anc)
    assert e.status == "engrafted" and e.day == 10
    # counts before the nadir do not count
    e = neutrophil_engraftment([0, 1, 2, 3, 4, 5, 6], [0.8, 0.9, 0.2, 0.6, 0.7, 0.4, 0.3])
    assert e.status == "not_engrafted" and e.day is None
    assert neutrophil_engraftment([1, 2, 3], [1.0, 2.0, 3.0]).status == "never_below"


def test_same_day_values_count_once():
    e = neutrophil_engraftment([1, 2, 2, 2, 3], [0.1, 0.6, 0.7, 0.8, 0.9])
    assert e.status == "not_engrafted"  # only 2 different days >= 0.5


def test_platelet_engraftment_with_transfusions():
    days = [1, 5, 10, 11, 12, 13, 14]
    plt = [5, 10, 25, 30, 35, 40, 45]
    assert platelet_engraftment(days, plt).day == 10
    e = platelet_engraftment(days, plt, transfusion_days=[4])
    assert e.day == 12  # days 10 and 11 have a transfusion within the 7 days before
    assert platelet_engraftment(days, plt, transfusion_days=[2]).day == 10
    # only transfusions before (and on) the first day count, as CIBMTR words it
    assert platelet_engraftment(days, plt, transfusion_days=[13]).day == 10
    e = platelet_engraftment(days, plt, transfusion_days=[9, 12])
    assert e.status == "not_engrafted" and e.day is None


def test_primary_graft_failure():
    assert primary_graft_failure([0, 5, 10, 20, 31], [0.1, 0.1, 0.2, 0.3, 0.2]) is True
    assert primary_graft_failure([0, 5, 12, 13, 14], [0.1, 0.1, 0.6, 0.7, 0.8]) is False
    assert primary_graft_failure([0, 5, 10], [0.1, 0.2, 0.2]) is None  # follow-up too short
    assert primary_graft_failure([0, 5, 27, 28, 35], [0.1, 0.1, 0.2, 0.3, 0.6], by_day=28) is True


@pytest.mark.parametrize(
    "pct,inclusive,expected",
    [
        (95, True, "full"),
        (95, False, "mixed"),
        (95.1, False, "full"),
        (60, True, "mixed"),
        (None, True, None),
    ],
)
def test_chimerism(pct, inclusive, expected):
    assert chimerism_status(pct, inclusive=inclusive) == expected


def test_chimerism_bad():
    with pytest.raises(GradingInputError):
        chimerism_status(120)
