"""CTCAE v5.0 electrolyte, glucose, seizure and encephalopathy terms, and the
"missing only widens" property of the haematology terms.

Each case cites the CTCAE v5.0 row it checks (NCI CTCAE v5.0, Metabolism and nutrition
disorders / Nervous system disorders; laboratory thresholds as restated in the pharmaverse
admiral grading tests for CTCAE v4/v5). Limits are passed explicitly (``lln``/``uln``) so
each expected grade is worked by hand from the row and the limit, not from the shipped
reference ranges.
"""

from __future__ import annotations

import math

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from cartrial.grading import GradingInputError, grade_ctcae

LIMITS_LLN = {
    "sodium_mmol_l": 135.0,
    "potassium_mmol_l": 3.5,
    "calcium_corrected_mg_dl": 8.5,
    "calcium_ionized_mmol_l": 1.12,
    "magnesium_mg_dl": 1.7,
    "glucose_mmol_l": 3.9,
}
LIMITS_ULN = {"sodium_mmol_l": 145.0, "potassium_mmol_l": 5.0}
KNOWN = {"life_threatening": False}  # so the value alone decides (grade == grade_max)

CASES = [
    # (term, observations, grade) -- the CTCAE v5.0 row in the id
    ("hyponatremia", {"sodium_mmol_l": 135}, 0, "Na = LLN 135: not < LLN"),
    ("hyponatremia", {"sodium_mmol_l": 134}, 1, "< LLN-130: 1"),
    ("hyponatremia", {"sodium_mmol_l": 130}, 1, "130 is in < LLN-130: 1"),
    (
        "hyponatremia",
        {"sodium_mmol_l": 129, "symptomatic": False},
        2,
        "125-129 mmol/L and asymptomatic: 2",
    ),
    (
        "hyponatremia",
        {"sodium_mmol_l": 125, "symptomatic": True},
        3,
        "125-129 mmol/L symptomatic: 3",
    ),
    ("hyponatremia", {"sodium_mmol_l": 124}, 3, "120-124 regardless of symptoms: 3"),
    ("hyponatremia", {"sodium_mmol_l": 119}, 4, "< 120: 4"),
    ("hypernatremia", {"sodium_mmol_l": 146}, 1, "> ULN-150: 1"),
    ("hypernatremia", {"sodium_mmol_l": 150}, 1, "150 is in > ULN-150: 1"),
    ("hypernatremia", {"sodium_mmol_l": 151}, 2, "> 150-155: 2"),
    ("hypernatremia", {"sodium_mmol_l": 156}, 3, "> 155-160: 3"),
    ("hypernatremia", {"sodium_mmol_l": 161}, 4, "> 160: 4"),
    (
        "hypokalemia",
        {"potassium_mmol_l": 3.0, "symptomatic": False, "intervention_indicated": False},
        1,
        "< LLN-3.0: 1 (3.0 is not < 3.0)",
    ),
    (
        "hypokalemia",
        {"potassium_mmol_l": 3.2, "symptomatic": True},
        2,
        "< LLN-3.0 symptomatic, intervention indicated: 2",
    ),
    ("hypokalemia", {"potassium_mmol_l": 2.9}, 3, "< 3.0-2.5: 3"),
    ("hypokalemia", {"potassium_mmol_l": 2.4}, 4, "< 2.5: 4"),
    ("hyperkalemia", {"potassium_mmol_l": 5.5}, 1, "> ULN-5.5: 1"),
    ("hyperkalemia", {"potassium_mmol_l": "5.6 mEq/L"}, 2, "> 5.5-6.0: 2 (mEq/L = mmol/L)"),
    ("hyperkalemia", {"potassium_mmol_l": 6.5}, 3, "> 6.0-7.0: 3"),
    ("hyperkalemia", {"potassium_mmol_l": 7.1}, 4, "> 7.0: 4"),
    ("hypocalcemia", {"calcium_corrected_mg_dl": 8.0}, 1, "corrected < LLN-8.0 mg/dL: 1"),
    ("hypocalcemia", {"calcium_corrected_mg_dl": 7.9}, 2, "corrected < 8.0-7.0: 2"),
    (
        "hypocalcemia",
        {"calcium_corrected_mg_dl": "1.74 mmol/L"},
        3,
        "corrected < 1.75-1.5 mmol/L: 3 (= 6.97 mg/dL, < 7.0-6.0)",
    ),
    ("hypocalcemia", {"calcium_corrected_mg_dl": 5.9}, 4, "corrected < 6.0 mg/dL: 4"),
    ("hypocalcemia", {"calcium_ionized_mmol_l": 1.05}, 1, "ionised < LLN-1.0: 1"),
    ("hypocalcemia", {"calcium_ionized_mmol_l": 0.95}, 2, "ionised < 1.0-0.9: 2"),
    ("hypocalcemia", {"calcium_ionized_mmol_l": 0.79}, 4, "ionised < 0.8: 4"),
    (
        "hypocalcemia",
        {"calcium_corrected_mg_dl": 8.2, "calcium_ionized_mmol_l": 0.85},
        3,
        "either reading; the worse (ionised < 0.9-0.8: 3) counts",
    ),
    ("hypomagnesemia", {"magnesium_mg_dl": "1.2 mg/dL"}, 1, "< LLN-1.2 mg/dL: 1"),
    ("hypomagnesemia", {"magnesium_mg_dl": "0.45 mmol/L"}, 2, "< 0.5-0.4 mmol/L: 2"),
    ("hypomagnesemia", {"magnesium_mg_dl": "0.8 mg/dL"}, 3, "< 0.9-0.7 mg/dL: 3"),
    ("hypomagnesemia", {"magnesium_mg_dl": "0.25 mmol/L"}, 4, "< 0.3 mmol/L: 4"),
    ("hypoglycemia", {"glucose_mmol_l": 3.0}, 1, "< LLN-3.0 mmol/L: 1"),
    ("hypoglycemia", {"glucose_mmol_l": 2.9}, 2, "< 3.0-2.2: 2"),
    ("hypoglycemia", {"glucose_mmol_l": "35 mg/dL"}, 3, "< 40-30 mg/dL (1.94 mmol/L): 3"),
    ("hypoglycemia", {"glucose_mmol_l": 1.6}, 4, "< 1.7: 4"),
    ("hyponatraemia", {"sodium_mmol_l": 110, "life_threatening": True}, 4, "British spelling"),
    ("hyponatremia", {"sodium_mmol_l": 131, "life_threatening": True}, 4, "life-threatening: 4"),
    ("hyponatremia", {"sodium_mmol_l": 131, "death": True}, 5, "death: 5"),
]


@pytest.mark.parametrize(
    ("term", "obs", "grade"),
    [pytest.param(t, o, g, id=f"{t}: {why}") for t, o, g, why in CASES],
)
def test_ctcae5_electrolytes(term, obs, grade):
    g = grade_ctcae(term, {**KNOWN, **obs}, lln=LIMITS_LLN, uln=LIMITS_ULN)
    assert g.grade == grade, g.reasons
    assert g.grade_max == grade, g.reasons
    assert any("CTCAE" in r for r in g.reasons)


def test_unknown_qualifiers_widen_and_are_named():
    # 125-129 mmol/L: 2 if asymptomatic, 3 if symptomatic: unknown -> [2, 3]
    g = grade_ctcae("hyponatremia", sodium_mmol_l=127, life_threatening=False, lln=LIMITS_LLN)
    assert (g.grade, g.grade_max, g.missing) == (2, 3, ("symptomatic",))
    g = grade_ctcae("hypokalemia", potassium_mmol_l=3.2, life_threatening=False, lln=LIMITS_LLN)
    assert (g.grade, g.grade_max) == (1, 2)
    assert set(g.missing) == {"symptomatic", "intervention_indicated"}
    # life-threatening consequences not charted: an abnormal value could be grade 4
    g = grade_ctcae("hypoglycemia", glucose_mmol_l=2.9, lln=LIMITS_LLN)
    assert (g.grade, g.grade_max, g.missing) == (2, 4, ("life_threatening",))
    # no value: nothing observed
    assert grade_ctcae("hyperkalemia", uln=LIMITS_ULN).grade is None


def test_units_are_required_where_they_overlap():
    # magnesium: 0.8 could be mg/dL (grade 3) or mmol/L (normal): refused, both readings
    with pytest.raises(GradingInputError, match="mmol/L"):
        grade_ctcae("hypomagnesemia", magnesium_mg_dl=0.8)
    # glucose 40 without a unit: 40 mmol/L or 40 mg/dL (2.2 mmol/L) - refused
    with pytest.raises(GradingInputError, match="mg/dL"):
        grade_ctcae("hypoglycemia", glucose_mmol_l=40)
    # corrected calcium 1.9 (mmol/L) read as mg/dL is implausible: the hint names mmol/L
    with pytest.raises(GradingInputError, match="mmol/L"):
        grade_ctcae("hypocalcemia", calcium_corrected_mg_dl=1.9)
    # the shipped ranges give the limit when none is passed, and say where it came from
    g = grade_ctcae("hyponatremia", sodium_mmol_l=134)
    assert g.grade == 1 and any("LLN 135" in r for r in g.reasons)


SEIZURE_CASES = [
    ("brief_partial", 1, "brief partial seizure; no loss of consciousness: 1"),
    ("brief generalised", 2, "brief generalized seizure: 2 (British spelling)"),
    ("new onset", 3, "new onset seizures (partial or generalized): 3"),
    ("multiple despite treatment", 3, "multiple seizures despite medical intervention: 3"),
    ("NCSE", 4, "prolonged repetitive seizures (non-convulsive status): 4"),
    ("status epilepticus", 4, "life-threatening; prolonged repetitive seizures: 4"),
    ("none", 0, "no seizure"),
]


@pytest.mark.parametrize(
    ("word", "grade"), [pytest.param(w, g, id=why) for w, g, why in SEIZURE_CASES]
)
def test_ctcae5_seizure(word, grade):
    g = grade_ctcae("seizure", seizure_ctcae=word)
    assert (g.grade, g.grade_max) == (grade, grade)


def test_seizure_words_that_do_not_say_new_onset_are_a_question():
    for word in ("tonic-clonic", "GTC", "focal", "convulsive"):
        with pytest.raises(GradingInputError, match="new onset"):
            grade_ctcae("fits", seizure_ctcae=word)


ENCEPHALOPATHY_CASES = [
    ({"encephalopathy": "mild"}, 1, "mild symptoms: 1"),
    ({"encephalopathy": "mild", "adl_limitation": "instrumental"}, 2, "limiting iADL: 2"),
    ({"encephalopathy": "moderate"}, 2, "moderate symptoms: 2"),
    ({"encephalopathy": "moderate", "adl_limitation": "self care"}, 3, "limiting self care: 3"),
    ({"encephalopathy": "severe"}, 3, "severe symptoms: 3"),
    ({"encephalopathy": "life threatening"}, 4, "life-threatening, urgent intervention: 4"),
    ({"encephalopathy": "mild", "death": True}, 5, "death: 5"),
]


@pytest.mark.parametrize(
    ("obs", "grade"), [pytest.param(o, g, id=why) for o, g, why in ENCEPHALOPATHY_CASES]
)
def test_ctcae5_encephalopathy(obs, grade):
    g = grade_ctcae("encephalopathy", {"adl_limitation": "none", **obs})
    assert (g.grade, g.grade_max) == (grade, grade), g.reasons


def test_encephalopathy_adl_unknown_widens():
    g = grade_ctcae("encephalopathy", encephalopathy="mild")
    assert (g.grade, g.grade_max, g.missing) == (1, 3, ("adl_limitation",))
    with pytest.raises(GradingInputError, match="activities of daily living"):
        grade_ctcae("encephalopathy", encephalopathy="obtunded")


@pytest.mark.parametrize(
    ("word", "grade"),
    [
        ("laboratory finding only", 1),  # intervention not indicated: 1
        ("oral replacement", 2),  # oral replacement therapy indicated: 2
        ("hospitalisation", 3),  # hospitalization indicated: 3
        ("life_threatening", 4),  # urgent intervention indicated: 4
    ],
)
def test_ctcae5_hypophosphatemia_is_graded_by_intervention(word, grade):
    g = grade_ctcae("hypophosphataemia", phosphate_replacement=word)
    assert (g.grade, g.grade_max) == (grade, grade)


# -- "missing only widens": every CTCAE haematology term ----------------------------------

HAEM_INPUTS: dict[str, dict[str, st.SearchStrategy]] = {
    "neutropenia": {"anc": st.floats(0.0, 20.0)},
    "thrombocytopenia": {"platelets": st.floats(0.0, 900.0)},
    "lymphopenia": {"lymphocytes": st.floats(0.0, 10.0)},
    "leukopenia": {"wbc": st.floats(0.0, 50.0)},
    "anemia": {
        "hemoglobin_g_dl": st.floats(3.0, 20.0),
        "sex": st.sampled_from(["F", "M"]),
        "life_threatening": st.booleans(),
    },
    "febrile_neutropenia": {
        "anc": st.floats(0.0, 20.0),
        "temperature_c": st.floats(35.0, 41.5),
        "fever_sustained_1h": st.booleans(),
        "life_threatening": st.booleans(),
    },
}


@st.composite
def partial_observation(draw):
    term = draw(st.sampled_from(sorted(HAEM_INPUTS)))
    inputs = HAEM_INPUTS[term]
    obs = {f: draw(st.one_of(st.none(), s)) for f, s in inputs.items()}
    unset = [f for f, v in obs.items() if v is None]
    assume(unset)
    field = draw(st.sampled_from(unset))
    value = draw(inputs[field])
    return term, {k: v for k, v in obs.items() if v is not None}, field, value


@given(partial_observation())
def test_setting_a_missing_item_stays_within_the_reported_range(case):
    """Whatever value a missing item turns out to have, the grade lies within the
    [grade, grade_max] reported without it (death is never asked: grade 5 is death)."""
    term, obs, field, value = case
    before = grade_ctcae(term, obs)
    after = grade_ctcae(term, {**obs, field: value})
    low = 0 if before.grade is None else before.grade
    if after.grade is not None:  # None: still no item of the criterion (e.g. sex alone)
        assert low <= after.grade <= before.grade_max, (before.reasons, after.reasons)
    assert after.grade_max <= before.grade_max


def test_the_anaemia_counterexample():
    """Hb 9 g/dL with life-threatening consequences not charted used to report [2, 2];
    a later "yes" is grade 4, so the range must be [2, 4]."""
    g = grade_ctcae("anaemia", hemoglobin_g_dl=9.0, sex="F")
    assert (g.grade, g.grade_max) == (2, 4)
    assert grade_ctcae("anaemia", hemoglobin_g_dl=9.0, sex="F", life_threatening=True).grade == 4
    assert math.isclose(
        grade_ctcae("anaemia", hemoglobin_g_dl=9.0, sex="F", life_threatening=False).grade_max, 2
    )


def test_british_spelling_of_a_word_that_needs_a_question_gets_the_question():
    with pytest.raises(GradingInputError, match="new onset"):
        grade_ctcae("seizure", seizure_ctcae="generalised")
