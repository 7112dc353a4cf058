"""IEC-HS grading from the interventions and consequences of the ASTCT consensus grading
table (Hines MR et al., Transplant Cell Ther 2023;29:438.e1; rows as written in issue 11,
see ``cartrial.grading.iechs``): grade 1 no intervention; 2 IEC-HS-directed
immunosuppression or transfusion for hypofibrinogenaemia; 3 bleeding requiring
transfusion, new AKI, hospitalization; 4 life-threatening bleeding, vasopressors,
positive-pressure ventilation, dialysis; 5 death. Expected grades are read off those
rows, one row per case."""

from __future__ import annotations

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from cartrial.grading import GradingInputError, grade_iechs
from cartrial.grading.iechs import GRADING, GRADING_FIELDS

IDENTIFIED = dict(
    ferritin_ng_ml=12000,
    ferritin_baseline_ng_ml=800,  # > 2 x the value at infusion
    fibrinogen_mg_dl=120,  # < 150 mg/dL
    iechs_attributable=True,
    iechs_other_cause=False,
)
NONE_OF_THEM = {
    f: (0 if f == "vasopressors" else "none" if f == "oxygen" else False)
    for f in GRADING_FIELDS
    if f != "death"
}

GRADE_CASES = [
    ({}, 1, "grade 1: identified, no intervention"),
    ({"iechs_immunosuppression": True}, 2, "grade 2: IEC-HS-directed immunosuppression"),
    ({"fibrinogen_replacement": True}, 2, "grade 2: transfusion for hypofibrinogenaemia"),
    ({"bleeding_transfusion": True}, 3, "grade 3: coagulopathy with bleeding, transfusion"),
    ({"aki_new": True}, 3, "grade 3: new-onset acute kidney injury"),
    ({"hospitalization_indicated": True}, 3, "grade 3: hospitalization or prolongation"),
    ({"bleeding_life_threatening": True}, 4, "grade 4: life-threatening bleeding"),
    ({"vasopressors": 1}, 4, "grade 4: hypotension requiring vasopressors"),
    ({"vasopressin": True}, 4, "grade 4: hypotension requiring vasopressin"),
    ({"oxygen": "BiPAP"}, 4, "grade 4: hypoxia requiring positive-pressure ventilation"),
    ({"oxygen": "high flow"}, 1, "high-flow oxygen is not positive pressure"),
    ({"dialysis": True}, 4, "grade 4: renal failure requiring dialysis"),
    ({"iechs_immunosuppression": True, "aki_new": True}, 3, "the highest row met counts"),
    ({"death": True}, 5, "grade 5: death"),
]


@pytest.mark.parametrize(
    ("items", "grade"), [pytest.param(i, g, id=why) for i, g, why in GRADE_CASES]
)
def test_iechs_grading_rows(items, grade):
    g = grade_iechs({**IDENTIFIED, **NONE_OF_THEM, **items})
    assert g.detail("status") == "identified"
    assert (g.grade, g.grade_max, g.missing) == (grade, grade, ()), g.reasons
    assert any("Hines 2023, grading table" in r for r in g.reasons)


def test_unknown_grading_items_widen_and_are_named():
    g = grade_iechs({**IDENTIFIED, "iechs_immunosuppression": True})
    assert (g.grade, g.grade_max) == (2, 4)
    assert "dialysis" in g.missing and "iechs_immunosuppression" not in g.missing
    # rows below the established grade are never missing
    assert "fibrinogen_replacement" not in g.missing
    # IEC-HS excluded: no grade whatever the interventions
    g = grade_iechs({**IDENTIFIED, "iechs_other_cause": True, "dialysis": True})
    assert (g.grade, g.grade_max) == (0, 0)
    # identification pending: 0 up to what the grading items allow
    pending = {k: v for k, v in IDENTIFIED.items() if k != "iechs_attributable"}
    g = grade_iechs({**pending, **NONE_OF_THEM, "aki_new": True})
    assert (g.grade, g.grade_max) == (0, 3) and "iechs_attributable" in g.missing


def test_clinician_grade_must_agree_with_the_items():
    g = grade_iechs({**IDENTIFIED, "iechs_immunosuppression": True, "iechs_grade": 3})
    assert (g.grade, g.grade_max) == (3, 3)  # within [2, 4]: the clinician's wins
    with pytest.raises(GradingInputError, match="grade from 4 to 4"):
        grade_iechs({**IDENTIFIED, "dialysis": True, "iechs_grade": 2})
    with pytest.raises(GradingInputError, match="grade from 1 to 1"):
        grade_iechs({**IDENTIFIED, **NONE_OF_THEM, "iechs_grade": 3})


def test_bedside_words_for_the_items():
    rest = {
        k: v for k, v in NONE_OF_THEM.items() if k not in ("dialysis", "fibrinogen_replacement")
    }
    g = grade_iechs({**IDENTIFIED, **rest, "haemodialysis": "yes", "cryoprecipitate": "no"})
    assert (g.grade, g.grade_max) == (4, 4)
    g = grade_iechs({**IDENTIFIED, **rest, "haemodialysis": "no", "cryoprecipitate": "yes"})
    assert (g.grade, g.grade_max) == (2, 2)
    # the same item twice with different answers is refused, never silently resolved
    with pytest.raises(GradingInputError, match="one value"):
        grade_iechs({**IDENTIFIED, "dialysis": False, "haemodialysis": "yes"})


ITEM_VALUES = {
    f: (
        st.integers(0, 3)
        if f == "vasopressors"
        else st.sampled_from(
            ["none", "low_flow", "high_flow", "cpap", "bipap", "mechanical_ventilation"]
        )
        if f == "oxygen"
        else st.booleans()
    )
    for f in GRADING_FIELDS
    if f != "death"
}


@given(st.data())
def test_setting_an_unknown_item_stays_within_the_range(data):
    given_items = {f: data.draw(st.one_of(st.none(), s), label=f) for f, s in ITEM_VALUES.items()}
    unset = [f for f, v in given_items.items() if v is None]
    assume(unset)
    field = data.draw(st.sampled_from(unset), label="field")
    obs = {**IDENTIFIED, **{k: v for k, v in given_items.items() if v is not None}}
    before = grade_iechs(obs)
    after = grade_iechs({**obs, field: data.draw(ITEM_VALUES[field], label="value")})
    assert before.grade <= after.grade <= before.grade_max
    assert after.grade_max <= before.grade_max


def test_every_grading_row_names_a_registry_field():
    from cartrial.grading.fields import FIELDS

    assert sorted(GRADING) == [2, 3, 4]
    assert all(f in FIELDS for f in GRADING_FIELDS)


def test_cli_grades_iec_hs_with_json():
    import json

    from typer.testing import CliRunner

    from cartrial.cli import app

    args = [
        "grade",
        "iec-hs",
        "--ferritin-ng-ml",
        "12000",
        "--ferritin-baseline-ng-ml",
        "800",
        "--fibrinogen-mg-dl",
        "1.2 g/L",
        "--iechs-attributable",
        "--no-iechs-other-cause",
        "--aki-new",
        "--json",
    ]
    out = CliRunner().invoke(app, args)
    assert out.exit_code == 0, out.output
    d = json.loads(out.output)
    assert d["system"] == "IECHS2023" and d["details"]["status"] == "identified"
    assert (d["grade"], d["grade_max"]) == (3, 4)  # new AKI: 3; grade 4 items not charted
    assert "dialysis" in d["missing"]
    bad = CliRunner().invoke(app, [*args[:-1], "--iechs-grade", "1", "--json"])
    assert bad.exit_code == 2 and "error" in json.loads(bad.output)


def test_a_cohort_can_record_iechs_graded_by_the_consensus():
    """An IEC-HS adverse event and its grading system are cohort words, so the report's
    AE tables (which list every recorded term at its worst grade) show it."""
    from cartrial.cohort.vocab import AE_TERMS, GRADING_SYSTEMS, canonical

    assert canonical("IEC-HS", AE_TERMS) == "HLH"
    assert canonical("immune effector cell-associated HLH-like syndrome", AE_TERMS) == "HLH"
    assert canonical("IECHS2023", GRADING_SYSTEMS) == grade_iechs({}).system
