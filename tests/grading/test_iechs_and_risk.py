"""IEC-HS identification (Hines MR et al., Transplant Cell Ther 2023;29:438.e1, ASTCT
consensus definition and supporting findings) and the pre-infusion risk scores:
CAR-HEMATOTOX (Rejeski K et al., Blood 2021;138:2499) and EASIX / m-EASIX (Luft T et al.,
Lancet Haematol 2017;4:e414; Pennisi M et al., Blood Adv 2021;5:3397). Expected values
are worked by hand from those definitions."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from cartrial.grading import GradingInputError, grade_iechs
from cartrial.grading.risk import (
    car_hematotox,
    easix,
    easix_value,
    hematotox_score,
    risk_by_group,
)

IDENTIFIED = dict(
    ferritin_ng_ml=12000,
    ferritin_baseline_ng_ml=800,  # 15 x the value at infusion (> 2 x)
    fibrinogen_mg_dl=120,  # < 150 mg/dL
    iechs_attributable=True,
    iechs_other_cause=False,
)

IECHS_CASES = [
    # (observations, status, grade, grade_max)
    pytest.param(IDENTIFIED, "identified", 1, 4, id="identified, grade not entered"),
    pytest.param({**IDENTIFIED, "iechs_grade": 3}, "identified", 3, 3, id="clinician grade"),
    pytest.param({**IDENTIFIED, "iechs_other_cause": True}, "excluded", 0, 0, id="other cause"),
    pytest.param(
        {**IDENTIFIED, "iechs_attributable": False}, "excluded", 0, 0, id="not attributable"
    ),
    pytest.param(
        {k: v for k, v in IDENTIFIED.items() if k != "iechs_attributable"},
        "possible",
        0,
        4,
        id="attribution not entered",
    ),
    pytest.param(
        dict(
            ferritin_ng_ml=900,
            ferritin_baseline_ng_ml=800,
            fibrinogen_mg_dl=300,
            alt_u_l=50,
            ast_u_l=45,
            hemophagocytosis=False,
            cytopenia_new_or_worse=False,
            coagulopathy=False,
            iechs_attributable=True,
            iechs_other_cause=False,
        ),
        "excluded",
        0,
        0,
        id="no HLH-like finding",
    ),
    pytest.param(
        dict(alt_u_l=400, ast_u_l=30, iechs_attributable=True, iechs_other_cause=False),
        "identified",
        1,
        4,
        id="ALT > 5 x ULN (63 U/L, shipped range)",
    ),
    pytest.param(
        dict(
            alt_u_l=400,
            alt_baseline_u_l=100,  # abnormal baseline: 4 x baseline, not > 5 x
            ast_u_l=30,
            hemophagocytosis=False,
            cytopenia_new_or_worse=False,
            coagulopathy=False,
            fibrinogen_mg_dl=250,
            ferritin_ng_ml=500,
            ferritin_baseline_ng_ml=400,
            iechs_attributable=True,
            iechs_other_cause=False,
        ),
        "excluded",
        0,
        0,
        id="ALT 4 x an abnormal baseline",
    ),
]


@pytest.mark.parametrize(("obs", "status", "grade", "grade_max"), IECHS_CASES)
def test_iechs_identification(obs, status, grade, grade_max):
    g = grade_iechs(obs)
    assert g.detail("status") == status, g.reasons
    assert (g.grade, g.grade_max) == (grade, grade_max)
    assert g.system == "IECHS2023" and any("Hines MR" in r for r in g.reasons)


def test_iechs_flags_units_and_contradictions():
    g = grade_iechs({**IDENTIFIED, "fibrinogen_mg_dl": "1.2 g/L"})
    assert g.detail("flags")["hypofibrinogenemia"] == "yes"
    assert g.detail("flags")["ferritin"] == "yes"
    with pytest.raises(GradingInputError, match="IEC-HS is excluded"):
        grade_iechs({**IDENTIFIED, "iechs_other_cause": True, "iechs_grade": 2})
    with pytest.raises(GradingInputError, match="identified"):
        grade_iechs({**IDENTIFIED, "iechs_grade": 0})
    # ferritin with nothing to compare with: unknown, and the reason says what to pass
    g = grade_iechs(ferritin_ng_ml=5000, iechs_attributable=True, iechs_other_cause=False)
    assert g.detail("status") == "possible" and "ferritin_baseline_ng_ml" in " ".join(g.reasons)
    g = grade_iechs(ferritin_ng_ml=5000, uln={"ferritin_ng_ml": 300})
    assert g.detail("flags")["ferritin"] == "yes"
    assert grade_iechs({}).grade is None


# -- CAR-HEMATOTOX -------------------------------------------------------------------------

HT_CASES = [
    # (anc, hb, plt, crp mg/dL, ferritin) -> score (points by Rejeski 2021)
    ((2.0, 12.0, 200, 1.0, 300), 0),
    ((1.19, 12.0, 200, 1.0, 300), 1),  # ANC < 1200/uL
    ((2.0, 8.9, 200, 1.0, 300), 1),  # Hb < 9.0
    ((2.0, 12.0, 175, 1.0, 300), 1),  # platelets 75-175
    ((2.0, 12.0, 74, 1.0, 300), 2),  # platelets < 75
    ((2.0, 12.0, 200, 3.0, 300), 1),  # CRP >= 3.0 mg/dL
    ((2.0, 12.0, 200, 1.0, 650), 1),  # ferritin 650-2000
    ((2.0, 12.0, 200, 1.0, 2001), 2),  # ferritin > 2000
    ((0.5, 8.0, 50, 5.0, 3000), 7),
]


@pytest.mark.parametrize(("values", "score"), HT_CASES)
def test_car_hematotox_points(values, score):
    anc, hb, plt, crp, fer = values
    r = hematotox_score(
        dict(anc=anc, hemoglobin_g_dl=hb, platelets=plt, crp_mg_dl=crp, ferritin_ng_ml=fer)
    )
    assert r["score"] == r["score_max"] == score
    assert r["risk"] == ("high" if score >= 2 else "low")


@given(
    st.lists(st.one_of(st.none(), st.floats(0, 5000)), min_size=5, max_size=5),
)
def test_missing_marker_only_widens_the_score(vals):
    fields = ("anc", "hemoglobin_g_dl", "platelets", "crp_mg_dl", "ferritin_ng_ml")
    full = {f: (v if v is not None else 1.0) for f, v in zip(fields, vals, strict=True)}
    thin = {f: v for f, v in zip(fields, vals, strict=True) if v is not None}
    a, b = hematotox_score(full), hematotox_score(thin)
    assert b["score"] <= a["score"] <= b["score_max"]
    if b["risk"] != "unknown":
        assert b["risk"] == a["risk"]


def _obs(rows):
    return pd.DataFrame(rows, columns=["patient_id", "day", "analyte", "value", "unit"])


def test_scores_from_a_cohort_at_the_right_time_point():
    obs = _obs(
        [
            ("A", -12, "anc", 0.1, None),  # outside day -10..-1: not used
            ("A", -8, "anc", 0.9, None),
            ("A", -4, "anc", 1500, "cells/uL"),  # latest: 1.5 x10^9/L -> 0 points
            ("A", -4, "hemoglobin", 85, "g/L"),  # 8.5 g/dL -> 1
            ("A", -4, "platelets", 100, None),  # 1
            ("A", -4, "crp", 40, "mg/L"),  # 4.0 mg/dL -> 1
            ("A", -4, "ferritin", 2500, None),  # 2
            ("A", -4, "ldh", 300, None),
            ("A", -4, "creatinine", 88.4, "umol/L"),  # 1.0 mg/dL
            ("A", 3, "ldh", 900, None),
            ("A", 3, "creatinine", 2.0, None),
            ("A", 3, "platelets", 30, None),
            ("B", -3, "platelets", 250, None),
            ("B", -3, "anc", 3.0, None),
        ]
    )
    ht = car_hematotox(obs)
    a, b = ht.loc["A"], ht.loc["B"]
    assert (a["anc"], a["anc_day"]) == (1.5, -4)
    assert (a["score"], a["score_max"], a["risk"]) == (5, 5, "high")
    assert (b["score"], b["score_max"], b["risk"]) == (0, 4, "unknown")  # Hb 1, CRP 1, ferritin 2
    assert "latest value from day -10 to day -1" in a["rule"]
    ex = easix(obs)
    assert math.isclose(ex.loc["A", "easix"], 300 * 1.0 / 100)
    assert math.isclose(ex.loc["A", "m_easix"], 300 * 4.0 / 100)
    assert math.isclose(ex.loc["A", "log2_easix"], np.log2(3.0))
    assert math.isnan(ex.loc["B", "easix"])  # LDH missing: never computed with a zero
    d3 = easix(obs, time_point=3)
    assert math.isclose(d3.loc["A", "easix"], 900 * 2.0 / 30)
    # lymphodepletion on day -5 for A: only values before it count
    early = car_hematotox(obs, ld_day={"A": -5})
    assert early.loc["A", "anc"] == 0.9 and math.isnan(early.loc["A", "ferritin_ng_ml"])
    patients = pd.DataFrame({"patient_id": ["A", "B"], "product_source": ["universal", "auto"]})
    by = risk_by_group(ht.join(ex[["easix", "m_easix"]]), patients, "product_source")
    assert list(by["product_source"]) == ["auto", "universal"]
    assert list(by["hematotox_high"]) == [0, 1] and list(by["hematotox_unknown"]) == [1, 0]
    assert math.isclose(by.loc[1, "median_easix"], 3.0)


def test_easix_value_and_bad_time_point():
    assert easix_value(250, 0.8, 100) == 2.0
    assert math.isnan(easix_value(250, 0.8, 0))
    assert math.isnan(easix_value(math.nan, 0.8, 100))
    with pytest.raises(GradingInputError):
        easix(_obs([("A", -4, "ldh", 300, None)]), time_point="day -1")
