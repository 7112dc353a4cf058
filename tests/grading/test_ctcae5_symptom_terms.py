"""CTCAE v5.0 symptom terms that CD7 CAR-T AE tables list (diarrhoea, nausea, vomiting,
headache, rash maculo-papular), the boundary choices of CAR-HEMATOTOX, the honesty of the
IEC-HS source note, and the AKI term of the cohort vocabulary.

Expected grades are read from the CTCAE v5.0 rows (NCI, 27 Nov 2017), quoted in each
case; the wording was checked against reproductions that cite v5.0 (eviQ standard CTCAE
pages for diarrhoea and rash, the ASCO irAE guideline for the maculo-papular rows, v5.0
reference tables for nausea, vomiting and headache). Inputs are written the way a ward
writes them (British spellings, "IV fluids", "self-care", "8 %").
"""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cartrial.grading import GradingInputError, grade_ctcae, grade_iechs
from cartrial.grading.ctcae import TERM_NAMES, canonical_term
from cartrial.grading.risk import hematotox_points

NO_QUALIFIERS = dict(
    adl_limitation="none",
    incontinence=False,
    hospitalization_indicated=False,
    life_threatening=False,
)

# (term as written, observations, grade, grade_max, the CTCAE v5.0 row it is read from)
CASES = [
    # Diarrhea (Gastrointestinal disorders)
    (
        "diarrhoea",
        dict(stools_over_baseline=3, **NO_QUALIFIERS),
        1,
        1,
        "G1: increase of <4 stools per day over baseline",
    ),
    (
        "Diarrhea",
        dict(stools_over_baseline=4, **NO_QUALIFIERS),
        2,
        2,
        "G2: increase of 4-6 stools per day over baseline",
    ),
    ("diarrhea", dict(stools_over_baseline=6, **NO_QUALIFIERS), 2, 2, "G2: upper end 6"),
    (
        "diarrhea",
        dict(stools_over_baseline=7, **NO_QUALIFIERS),
        3,
        3,
        "G3: increase of >=7 stools per day over baseline",
    ),
    (
        "diarrhea",
        dict(
            stools_over_baseline=2,
            adl_limitation="limiting instrumental ADL",
            incontinence=False,
            hospitalization_indicated=False,
            life_threatening="no",
        ),
        2,
        2,
        "G2: limiting instrumental ADL",
    ),
    (
        "diarrhea",
        dict(
            stools_over_baseline=2,
            adl_limitation="self-care",
            incontinence=False,
            hospitalization_indicated=False,
            life_threatening="no",
        ),
        3,
        3,
        "G3: limiting self care ADL",
    ),
    (
        "diarrhea",
        dict(
            stools_over_baseline=2,
            adl_limitation="none",
            incontinence="yes",
            hospitalization_indicated=False,
            life_threatening="no",
        ),
        3,
        3,
        "G3: incontinence",
    ),
    (
        "diarrhoea",
        dict(
            stools_over_baseline=5,
            adl_limitation="none",
            incontinence=False,
            hospitalisation_indicated=True,
            life_threatening="no",
        ),
        3,
        3,
        "G3: hospitalization indicated",
    ),
    (
        "diarrhea",
        dict(stools_over_baseline=9, **{**NO_QUALIFIERS, "life_threatening": True}),
        4,
        4,
        "G4: life-threatening consequences; urgent intervention indicated",
    ),
    ("diarrhea", dict(stools_over_baseline=9, death=True), 5, 5, "G5: death"),
    ("diarrhea", dict(stools_over_baseline=0, **NO_QUALIFIERS), 0, 0, "no increase: no AE"),
    # Nausea (Gastrointestinal disorders), no grades 4-5
    (
        "nausea",
        dict(nausea="loss of appetite"),
        1,
        1,
        "G1: loss of appetite without alteration in eating habits",
    ),
    (
        "Nausea",
        dict(nausea="eating less"),
        2,
        2,
        "G2: oral intake decreased without significant weight loss, dehydration or malnutrition",
    ),
    (
        "nausea",
        dict(nausea="TPN"),
        3,
        3,
        "G3: inadequate oral caloric or fluid intake; tube feeding, TPN, or hospitalization",
    ),
    # Vomiting (Gastrointestinal disorders), v5.0 ladder by what it needed
    (
        "vomiting",
        dict(vomiting="intervention not indicated"),
        1,
        1,
        "G1: intervention not indicated",
    ),
    (
        "emesis",
        dict(vomiting="IV fluids"),
        2,
        2,
        "G2: outpatient IV hydration; medical intervention indicated",
    ),
    (
        "vomiting",
        dict(vomiting="hospitalisation"),
        3,
        3,
        "G3: tube feeding, TPN, or hospitalization indicated",
    ),
    ("vomiting", dict(vomiting="life_threatening"), 4, 4, "G4: life-threatening consequences"),
    ("vomiting", dict(vomiting="tube feeding", death="yes"), 5, 5, "G5: death"),
    # Headache (Nervous system disorders), no grades 4-5
    ("headache", dict(headache="mild pain"), 1, 1, "G1: mild pain"),
    ("headache", dict(headache="Moderate"), 2, 2, "G2: moderate pain; limiting instrumental ADL"),
    ("headache", dict(headache="severe"), 3, 3, "G3: severe pain; limiting self care ADL"),
    # Rash maculo-papular (Skin and subcutaneous tissue disorders), no grades 4-5
    (
        "Rash maculo-papular",
        dict(rash_bsa_pct="8 %", adl_limitation="none"),
        1,
        1,
        "G1: macules/papules covering <10% BSA with or without symptoms",
    ),
    (
        "maculopapular rash",
        dict(rash_bsa_pct=10, adl_limitation="none"),
        2,
        2,
        "G2: macules/papules covering 10-30% BSA (lower end)",
    ),
    (
        "rash maculo-papular",
        dict(rash_bsa_pct=30, rash_symptoms="severe", adl_limitation="none"),
        2,
        2,
        "G2: 10-30% BSA with or without symptoms (upper end; > 30% needed for G3)",
    ),
    (
        "rash maculo-papular",
        dict(rash_bsa_pct=31, rash_symptoms="mild", adl_limitation="none"),
        2,
        2,
        "G2: rash covering >30% BSA with or without mild symptoms",
    ),
    (
        "rash maculo-papular",
        dict(rash_bsa_pct=45, rash_symptoms="moderate"),
        3,
        3,
        "G3: macules/papules covering >30% BSA with moderate or severe symptoms",
    ),
    (
        "rash maculo-papular",
        dict(rash_bsa_pct=5, adl_limitation="self care"),
        3,
        3,
        "G3: limiting self care ADL",
    ),
    (
        "rash maculo-papular",
        dict(rash_bsa_pct=5, adl_limitation="instrumental"),
        2,
        2,
        "G2: limiting instrumental ADL",
    ),
]


@pytest.mark.parametrize(
    ("term", "obs", "grade", "grade_max", "row"), CASES, ids=[c[4] for c in CASES]
)
def test_ctcae5_symptom_rows(term, obs, grade, grade_max, row):
    g = grade_ctcae(term, obs)
    assert (g.grade, g.grade_max) == (grade, grade_max), g.reasons
    name, soc = TERM_NAMES[g.detail("term")]
    assert g.reasons[-1].endswith(f"{soc}: {name}") and "CTCAE) v5.0" in g.reasons[-1]


def test_unknown_qualifiers_are_named_not_assumed():
    # 2 stools over baseline, nothing else charted: grade 1 proven, 4 still possible
    g = grade_ctcae("diarrhoea", stools_over_baseline=2)
    assert (g.grade, g.grade_max) == (1, 4)
    assert set(g.missing) == {
        "adl_limitation",
        "incontinence",
        "hospitalization_indicated",
        "life_threatening",
    }
    # > 30% BSA with the symptoms not charted: 2 proven, 3 possible
    g = grade_ctcae("rash maculo-papular", rash_bsa_pct=40, adl_limitation="none")
    assert (g.grade, g.grade_max, g.missing) == (2, 3, ("rash_symptoms",))
    # life-threatening consequences not charted: grade 4 stays possible at any count
    g = grade_ctcae("diarrhea", stools_over_baseline=8, adl_limitation="none")
    assert (g.grade, g.grade_max, g.missing) == (3, 4, ("life_threatening",))
    assert grade_ctcae("nausea", {}).grade is None


def test_terms_without_grade_5_refuse_a_death_and_words_get_answers():
    for term, obs in (
        ("nausea", dict(nausea="tpn")),
        ("headache", dict(headache="severe")),
        ("rash maculo-papular", dict(rash_bsa_pct=50)),
    ):
        with pytest.raises(GradingInputError, match="has no grade 5"):
            grade_ctcae(term, {**obs, "death": True})
    with pytest.raises(GradingInputError, match="one of none"):
        grade_ctcae("nausea", nausea="mild")  # not a CTCAE row: which one?
    with pytest.raises(GradingInputError, match="did you mean"):
        grade_ctcae("vomiting", vomiting="outpatient iv hydratoin")
    with pytest.raises(GradingInputError, match="implausible|from 0 to 100"):
        grade_ctcae("rash maculo-papular", rash_bsa_pct=130)
    assert canonical_term("Diarrhoea") == "diarrhea"
    with pytest.raises(GradingInputError, match="did you mean"):
        canonical_term("diarhea")


QUALIFIERS = st.fixed_dictionaries(
    {
        "stools_over_baseline": st.integers(0, 15),
        "adl_limitation": st.sampled_from(["none", "instrumental", "self_care"]),
        "incontinence": st.booleans(),
        "hospitalization_indicated": st.booleans(),
        "life_threatening": st.booleans(),
    }
)


@given(QUALIFIERS, st.sets(st.sampled_from(list(QUALIFIERS.wrapped_strategy.mapping))))
def test_missing_items_only_widen_diarrhoea(full, drop):
    """A missing item can only widen [grade, grade_max] around the complete grade."""
    complete = grade_ctcae("diarrhea", full)
    assert complete.grade == complete.grade_max and complete.missing == ()
    thin = grade_ctcae("diarrhea", {k: v for k, v in full.items() if k not in drop})
    if thin.grade is not None:
        assert thin.grade <= complete.grade <= thin.grade_max


@given(
    st.floats(0, 100),
    st.floats(0, 100),
    st.sampled_from(["none", "mild", "moderate", "severe"]),
    st.sampled_from(["none", "instrumental", "self_care"]),
)
def test_rash_is_monotone_in_bsa(a, b, symptoms, adl):
    lo, hi = sorted((a, b))
    g_lo = grade_ctcae(
        "rash_maculopapular", rash_bsa_pct=lo, rash_symptoms=symptoms, adl_limitation=adl
    )
    g_hi = grade_ctcae(
        "rash_maculopapular", rash_bsa_pct=hi, rash_symptoms=symptoms, adl_limitation=adl
    )
    assert g_lo.grade <= g_hi.grade <= 3


def test_cli_grades_a_new_term_as_json():
    from typer.testing import CliRunner

    from cartrial.cli import app

    r = CliRunner().invoke(
        app,
        [
            "grade",
            "ctcae",
            "diarrhoea",
            "--stools-over-baseline",
            "5",
            "--adl-limitation",
            "instrumental",
            "--no-incontinence",
            "--no-hospitalization-indicated",
            "--no-life-threatening",
            "--json",
        ],
    )
    assert r.exit_code == 0, r.output
    out = json.loads(r.output)
    assert (out["grade"], out["grade_max"], out["details"]["ctcae_term"]) == (2, 2, "Diarrhea")


# -- CAR-HEMATOTOX: the named boundary choices of grading.risk (module doc) ----------------

BOUNDARIES = [
    ("anc", 1.2, 1),  # 0 points only for "ANC > 1200/uL": 1200 itself scores 1
    ("anc", 1.2001, 0),
    ("hemoglobin_g_dl", 9.0, 1),  # 0 points only for "Hb > 9.0 g/dL"
    ("hemoglobin_g_dl", 9.01, 0),
    ("crp_mg_dl", 3.0, 1),  # CRP 3.0 mg/dL scores (>= 3.0)
    ("platelets", 175, 1),  # 75-175: both ends score 1
    ("platelets", 75, 1),
    ("platelets", 74.9, 2),
    ("ferritin_ng_ml", 650, 1),  # 650-2000: both ends score 1
    ("ferritin_ng_ml", 2000, 1),
    ("ferritin_ng_ml", 2000.5, 2),
]


@pytest.mark.parametrize(("field", "value", "points"), BOUNDARIES)
def test_hematotox_boundaries_are_the_documented_choice(field, value, points):
    assert hematotox_points(field, value) == points


def test_iechs_reasons_say_the_thresholds_are_unverified():
    g = grade_iechs(ferritin_ng_ml=9000, ferritin_baseline_ng_ml=500)
    assert any("not checked against the paper's text" in r for r in g.reasons)


# -- cohort vocabulary: AKI is its own CTCAE v5.0 term -------------------------------------


def test_acute_kidney_injury_is_not_creatinine_increased():
    from cartrial.cohort.vocab import AE_TERMS, canonical

    assert canonical("AKI", AE_TERMS) == "acute_kidney_injury"
    assert canonical("Acute kidney injury", AE_TERMS) == "acute_kidney_injury"
    assert canonical("creatinine increased", AE_TERMS) == "creatinine_increased"
    with pytest.raises(GradingInputError):  # the grading engine does not grade AKI
        canonical_term("acute kidney injury")
