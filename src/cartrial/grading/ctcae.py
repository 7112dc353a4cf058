"""CTCAE v5.0 grades (NCI Common Terminology Criteria for Adverse Events v5.0, 27
November 2017; term names, SOCs and grade definitions as in the NCI table).

Blood and lymphatic system disorders / Investigations (counts in x10^9/L):

* Neutrophil count decreased: < LLN-1.5 = 1; < 1.5-1.0 = 2; < 1.0-0.5 = 3; < 0.5 = 4
* Platelet count decreased: < LLN-75 = 1; < 75-50 = 2; < 50-25 = 3; < 25 = 4
* Lymphocyte count decreased: < LLN-0.8 = 1; < 0.8-0.5 = 2; < 0.5-0.2 = 3; < 0.2 = 4
* White blood cell decreased: < LLN-3.0 = 1; < 3.0-2.0 = 2; < 2.0-1.0 = 3; < 1.0 = 4
* Anemia (Hb g/dL): < LLN-10.0 = 1; < 10.0-8.0 = 2; < 8.0 = 3; life-threatening
  consequences, urgent intervention indicated = 4; death = 5
* Febrile neutropenia: ANC < 1.0 with a single temperature > 38.3 °C or >= 38 °C
  sustained > 1 hour = 3; life-threatening = 4; death = 5
* Alanine / Aspartate aminotransferase increased: > ULN-3.0 x ULN if baseline normal,
  1.5-3.0 x baseline if abnormal = 1; > 3.0-5.0 x = 2; > 5.0-20.0 x = 3; > 20.0 x = 4
* Blood bilirubin increased: > ULN-1.5 x ULN if baseline normal, > 1.0-1.5 x baseline
  if abnormal = 1; > 1.5-3.0 x = 2; > 3.0-10.0 x = 3; > 10.0 x = 4
* Creatinine increased (no baseline switch: the worse reading counts): > ULN-1.5 x ULN
  = 1; > 1.5-3.0 x baseline or > 1.5-3.0 x ULN = 2; > 3.0 x baseline or > 3.0-6.0 x ULN
  = 3; > 6.0 x ULN = 4
* Fibrinogen decreased: < 1.0-0.75 x LLN = 1; < 0.75-0.5 x LLN = 2; < 0.5-0.25 x LLN
  = 3; < 0.25 x LLN or an absolute value < 50 mg/dL = 4; if the baseline is abnormal,
  by the decrease from baseline: < 25 % = 1, 25-< 50 % = 2, 50-< 75 % = 3, >= 75 % = 4

General disorders / Vascular / Respiratory:

* Fever: 38.0-39.0 °C = 1; > 39.0-40.0 = 2; > 40.0 for <= 24 h = 3; > 40.0 for > 24 h = 4
* Hypotension: asymptomatic, intervention not indicated = 1; non-urgent medical
  intervention = 2; medical intervention, hospitalization indicated = 3;
  life-threatening, urgent intervention = 4; death = 5
* Hypoxia: decreased oxygen saturation with exercise, intermittent supplemental oxygen
  = 2; at rest = 3; life-threatening airway compromise, urgent intervention = 4; death = 5

Infections and infestations:

* Sepsis: grades 3-5 only - blood culture positive with signs or symptoms, treatment
  indicated = 3; life-threatening consequences, urgent intervention = 4; death = 5
* Lung infection: no grade 1 - oral intervention = 2; IV antibiotic/antifungal/antiviral
  or invasive intervention = 3; life-threatening, urgent intervention = 4; death = 5
* infection (the common ladder of the CTCAE v5.0 infection terms): localised, local
  intervention = 1; oral intervention = 2; IV or invasive = 3; life-threatening = 4;
  death = 5

Gastrointestinal / Nervous system / Skin (symptom terms that CD7 CAR-T AE tables list,
graded from structured bedside inputs; "limiting instrumental / self care ADL" is the
``adl_limitation`` field):

* Diarrhea: increase of < 4 stools per day over baseline = 1; 4-6 stools, or limiting
  instrumental ADL = 2; >= 7 stools, incontinence, hospitalization indicated, or
  limiting self care ADL = 3; life-threatening consequences, urgent intervention
  indicated = 4; death = 5 (the ostomy-output rows are not graded here)
* Nausea: loss of appetite without alteration in eating habits = 1; oral intake
  decreased without significant weight loss, dehydration or malnutrition = 2;
  inadequate oral caloric or fluid intake, tube feeding, TPN or hospitalization
  indicated = 3 (no grades 4-5)
* Vomiting: intervention not indicated = 1; outpatient IV hydration, medical
  intervention indicated = 2; tube feeding, TPN or hospitalization indicated = 3;
  life-threatening consequences = 4; death = 5 (v5.0 grades vomiting by what it needed,
  no longer by episodes per 24 h as v4.03 did)
* Headache: mild pain = 1; moderate pain, limiting instrumental ADL = 2; severe pain,
  limiting self care ADL = 3 (no grades 4-5)
* Rash maculo-papular: macules/papules covering < 10% BSA with or without symptoms = 1;
  10-30% BSA with or without symptoms, limiting instrumental ADL, or > 30% BSA with or
  without mild symptoms = 2; > 30% BSA with moderate or severe symptoms, or limiting
  self care ADL = 3 (no grades 4-5)

Wording checked (search of stored public pages, 2 Dec 2026) against reproductions that
cite CTCAE v5.0: eviQ (Cancer Institute NSW) "standard CTCAE" pages for diarrhoea and
rash acneiform (same BSA/ADL structure as maculo-papular); the ASCO irAE guideline's
reproduction of the maculo-papular rows (> 30% BSA with mild symptoms = grade 2); for
nausea, vomiting (two independent reproductions agree on the v5.0 ladder) and headache,
CTCAE v5.0 tables reproduced in public code. The NCI workbook itself was not in the
searchable store, so these rows are secondary-checked, not primary-checked.

Metabolism and nutrition disorders (electrolytes and glucose; LLN/ULN from the reference
ranges; canonical units sodium/potassium mmol/L, corrected calcium mg/dL, ionised
calcium mmol/L, magnesium mg/dL, glucose mmol/L, other units converted):

* Hyponatremia: < LLN-130 mmol/L = 1; 125-129 and asymptomatic = 2; 125-129 symptomatic,
  or 120-124 regardless of symptoms = 3; < 120 = 4
* Hypernatremia: > ULN-150 = 1; > 150-155 = 2; > 155-160 = 3; > 160 = 4
* Hypokalemia: < LLN-3.0 mmol/L = 1; < LLN-3.0 symptomatic, intervention indicated = 2;
  < 3.0-2.5 = 3; < 2.5 = 4
* Hyperkalemia: > ULN-5.5 = 1; > 5.5-6.0 = 2; > 6.0-7.0 = 3; > 7.0 = 4
* Hypocalcemia: corrected serum calcium < LLN-8.0 mg/dL (< LLN-2.0 mmol/L) = 1; < 8.0-7.0
  = 2; < 7.0-6.0 = 3; < 6.0 = 4; or ionised calcium < LLN-1.0 mmol/L = 1; < 1.0-0.9 = 2;
  < 0.9-0.8 = 3; < 0.8 = 4 (either reading is enough; the worse counts)
* Hypomagnesemia: < LLN-1.2 mg/dL (< LLN-0.5 mmol/L) = 1; < 1.2-0.9 = 2; < 0.9-0.7 = 3;
  < 0.7 = 4
* Hypoglycemia: < LLN-3.0 mmol/L (< LLN-55 mg/dL) = 1; < 3.0-2.2 = 2; < 2.2-1.7 = 3;
  < 1.7 = 4
* Hypophosphatemia: v5.0 grades it by what it needed, not by the level: laboratory
  finding only, intervention not indicated = 1; oral replacement therapy indicated = 2;
  severe or medically significant, hospitalization indicated = 3; life-threatening = 4
* every term: life-threatening consequences (urgent intervention indicated) with an
  abnormal value = 4; death = 5. Unknown, they widen ``grade_max`` (never a lower grade).

Nervous system disorders:

* Seizure: brief partial seizure, no loss of consciousness = 1; brief generalized seizure
  = 2; new onset seizures (partial or generalized), multiple seizures despite medical
  intervention = 3; life-threatening consequences, prolonged repetitive seizures = 4;
  death = 5 (field ``seizure_ctcae``: the ASTCT ICANS ``seizure`` rows are different)
* Encephalopathy: mild symptoms = 1; moderate symptoms, limiting instrumental ADL = 2;
  severe symptoms, limiting self care ADL = 3; life-threatening consequences, urgent
  intervention indicated = 4; death = 5

Checked against: the laboratory thresholds of these rows (and that v5.0 Hypophosphatemia
has no laboratory thresholds) against the CTCAE v4/v5 criteria restated in the pharmaverse
admiral package's grading tests (tests/testthat/test-derive_var_atoxgr.R, "NCICTCAEv4
and NCICTCAEv5 criteria is the same" for each of these terms); the hypocalcaemia rows
against a CTCAE v4.03 reproduction (Oncohema Key, "Electrolyte abnormalities", Table
7.1); Seizure and Encephalopathy against a CTCAE v4.03 reproduction (Ther Clin Risk Manag
2018, PMC5987753, Table 3). Not checked against text: the symptom/intervention
qualifiers of the electrolyte rows (hyponatremia 125-129 symptomatic, hypokalemia grade
2) and the v5.0 additions "new onset seizures" (Seizure grade 3) and the v5.0
Hypophosphatemia intervention rows, which are from the NCI v5.0 table as recalled.
Mixed-unit boundaries: CTCAE's mg/dL and mmol/L rows are rounded separately; values are
converted to the canonical unit and graded by its row (e.g. glucose 30 mg/dL = 1.67
mmol/L is graded 4 by the mmol/L row, 3 by the mg/dL row).

Every count threshold is strict ("<"): a value exactly at a boundary belongs to the
milder grade (ANC 1.5 is grade 1, ANC 0.5 is grade 3). ULN/LLN come from the reference
ranges (``grading.ranges``: a shipped table with its sources, a site file, or explicit
``lln=``/``uln=``). Laboratory values are in the field's canonical unit after the unit
conversion of ``grading.fields``. For the liver terms and fibrinogen a baseline that is
not given is unknown, like any missing item: the grade is bounded between the
abnormal-baseline reading and the normal-baseline reading, with the baseline in
``missing`` (CTCAE chooses the reading from the baseline).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from cartrial.grading import codes
from cartrial.grading.core import (
    Bounds,
    Fill,
    Grade,
    GradingInputError,
    bound,
    fmt,
    grade_from_bounds,
    single,
)
from cartrial.grading.ranges import ReferenceRanges

SOURCE = "NCI Common Terminology Criteria for Adverse Events (CTCAE) v5.0 (2017)"
VERSION = "CTCAE5"
#: release-1.0 defaults, equal to the shipped reference ranges (``grading.ranges``,
#: which is what the engines read); kept for callers that import it
LLN_DEFAULTS: dict[str, float] = {
    "anc": 1.8,
    "platelets": 150.0,
    "lymphocytes": 1.0,
    "wbc": 4.0,
    "hemoglobin_g_dl_F": 12.0,
    "hemoglobin_g_dl_M": 13.0,
}
#: term -> (observation, grade 2, grade 3 and grade 4 thresholds, CTCAE v5.0 term name)
COUNT_TERMS: dict[str, tuple[str, float, float, float, str]] = {
    "neutropenia": ("anc", 1.5, 1.0, 0.5, "Neutrophil count decreased"),
    "thrombocytopenia": ("platelets", 75.0, 50.0, 25.0, "Platelet count decreased"),
    "lymphopenia": ("lymphocytes", 0.8, 0.5, 0.2, "Lymphocyte count decreased"),
    "leukopenia": ("wbc", 3.0, 2.0, 1.0, "White blood cell decreased"),
}
#: term -> (CTCAE v5.0 term name, system organ class)
TERM_NAMES: dict[str, tuple[str, str]] = {
    "neutropenia": ("Neutrophil count decreased", "Investigations"),
    "thrombocytopenia": ("Platelet count decreased", "Investigations"),
    "lymphopenia": ("Lymphocyte count decreased", "Investigations"),
    "leukopenia": ("White blood cell decreased", "Investigations"),
    "anemia": ("Anemia", "Blood and lymphatic system disorders"),
    "febrile_neutropenia": ("Febrile neutropenia", "Blood and lymphatic system disorders"),
    "infection": (
        "Infections and infestations (common grade ladder)",
        "Infections and infestations",
    ),
    "sepsis": ("Sepsis", "Infections and infestations"),
    "lung_infection": ("Lung infection", "Infections and infestations"),
    "alt_increased": ("Alanine aminotransferase increased", "Investigations"),
    "ast_increased": ("Aspartate aminotransferase increased", "Investigations"),
    "bilirubin_increased": ("Blood bilirubin increased", "Investigations"),
    "creatinine_increased": ("Creatinine increased", "Investigations"),
    "fibrinogen_decreased": ("Fibrinogen decreased", "Investigations"),
    "fever": ("Fever", "General disorders and administration site conditions"),
    "hypotension": ("Hypotension", "Vascular disorders"),
    "hypoxia": ("Hypoxia", "Respiratory, thoracic and mediastinal disorders"),
    "diarrhea": ("Diarrhea", "Gastrointestinal disorders"),
    "nausea": ("Nausea", "Gastrointestinal disorders"),
    "vomiting": ("Vomiting", "Gastrointestinal disorders"),
    "headache": ("Headache", "Nervous system disorders"),
    "rash_maculopapular": ("Rash maculo-papular", "Skin and subcutaneous tissue disorders"),
    "hyponatremia": ("Hyponatremia", "Metabolism and nutrition disorders"),
    "hypernatremia": ("Hypernatremia", "Metabolism and nutrition disorders"),
    "hypokalemia": ("Hypokalemia", "Metabolism and nutrition disorders"),
    "hyperkalemia": ("Hyperkalemia", "Metabolism and nutrition disorders"),
    "hypocalcemia": ("Hypocalcemia", "Metabolism and nutrition disorders"),
    "hypophosphatemia": ("Hypophosphatemia", "Metabolism and nutrition disorders"),
    "hypomagnesemia": ("Hypomagnesemia", "Metabolism and nutrition disorders"),
    "hypoglycemia": ("Hypoglycemia", "Metabolism and nutrition disorders"),
    "seizure": ("Seizure", "Nervous system disorders"),
    "encephalopathy": ("Encephalopathy", "Nervous system disorders"),
}
TERMS = tuple(TERM_NAMES)
#: other names accepted (folded; British spellings are folded first). Only words that
#: name the same CTCAE v5.0 term: "pneumonia" is graded as Lung infection (CTCAE v5.0
#: has no pneumonia term); "acute kidney injury" is its own CTCAE term (Renal), so it is
#: not an alias of Creatinine increased; sepsis is not the infection ladder.
TERM_ALIASES: dict[str, str] = {
    "neutrophil count decreased": "neutropenia",
    "anc decreased": "neutropenia",
    "platelet count decreased": "thrombocytopenia",
    "lymphocyte count decreased": "lymphopenia",
    "white blood cell decreased": "leukopenia",
    "wbc decreased": "leukopenia",
    "febrile neutropenia": "febrile_neutropenia",
    "fn": "febrile_neutropenia",
    "infections": "infection",
    "lung infection": "lung_infection",
    "pneumonia": "lung_infection",
    "alanine aminotransferase increased": "alt_increased",
    "alt increased": "alt_increased",
    "aspartate aminotransferase increased": "ast_increased",
    "ast increased": "ast_increased",
    "blood bilirubin increased": "bilirubin_increased",
    "hyperbilirubinemia": "bilirubin_increased",
    "creatinine increased": "creatinine_increased",
    "fibrinogen decreased": "fibrinogen_decreased",
    "hypofibrinogenemia": "fibrinogen_decreased",
    "pyrexia": "fever",
    "diarrhoea": "diarrhea",
    "loose stools": "diarrhea",
    "emesis": "vomiting",
    "cephalgia": "headache",
    "rash maculo papular": "rash_maculopapular",
    "maculopapular rash": "rash_maculopapular",
    "maculo papular rash": "rash_maculopapular",
    "rash maculopapular": "rash_maculopapular",
    "low sodium": "hyponatremia",
    "high sodium": "hypernatremia",
    "low potassium": "hypokalemia",
    "high potassium": "hyperkalemia",
    "low calcium": "hypocalcemia",
    "low phosphate": "hypophosphatemia",
    "hypophosphataemia": "hypophosphatemia",
    "low magnesium": "hypomagnesemia",
    "low glucose": "hypoglycemia",
    "low blood sugar": "hypoglycemia",
    "seizures": "seizure",
    "convulsion": "seizure",
    "convulsions": "seizure",
    "fit": "seizure",
    "fits": "seizure",
}
INFECTION_GRADE = np.array([0, 1, 2, 3, 3, 4, 5])  # by codes.INFECTION code
LUNG_INFECTION_GRADE = np.array([0, -1, 2, 3, 3, 4, 5])  # no grade 1 ("local" refused)


def count_grade(value: np.ndarray, lln: float, t2: float, t3: float, t4: float) -> np.ndarray:
    """Grade of a decreased count: < t4 = 4, < t3 = 3, < t2 = 2, < LLN = 1, else 0."""
    return np.select([value < t4, value < t3, value < t2, value < lln], [4, 3, 2, 1], 0)


def anemia_kernel(d: Mapping[str, np.ndarray], lln_f: float, lln_m: float) -> np.ndarray:
    hb = d["hemoglobin_g_dl"]
    lln = np.where(d["sex"] == 1, lln_m, lln_f)
    g = np.select([hb < 8.0, hb < 10.0, hb < lln], [3, 2, 1], 0)
    g = np.where(d["life_threatening"] >= 1, 4, g)
    return np.where(d["death"] >= 1, 5, g)


def febrile_neutropenia_kernel(d: Mapping[str, np.ndarray]) -> np.ndarray:
    t = d["temperature_c"]
    fever = (t > 38.3) | ((t >= 38.0) & (d["fever_sustained_1h"] >= 1))
    fn = (d["anc"] < 1.0) & fever
    g = np.where(fn, np.where(d["life_threatening"] >= 1, 4, 3), 0)
    return np.where(fn & (d["death"] >= 1), 5, g)


def infection_kernel(d: Mapping[str, np.ndarray]) -> np.ndarray:
    g = INFECTION_GRADE[d["intervention"].astype(int)]
    return np.where(d["death"] >= 1, 5, g)


def lung_infection_kernel(d: Mapping[str, np.ndarray]) -> np.ndarray:
    g = LUNG_INFECTION_GRADE[d["intervention"].astype(int)]
    return np.where(d["death"] >= 1, 5, g)


def sepsis_kernel(d: Mapping[str, np.ndarray]) -> np.ndarray:
    """CTCAE v5.0 Sepsis: 3 = blood culture positive with signs or symptoms (treatment
    indicated); 4 = life-threatening; 5 = death. No grades 1-2."""
    sepsis = (d["blood_culture_positive"] >= 1) & (d["sepsis_signs"] >= 1)
    g = np.where(sepsis, np.where(d["life_threatening"] >= 1, 4, 3), 0)
    return np.where(d["death"] >= 1, 5, g)


def fever_kernel(d: Mapping[str, np.ndarray]) -> np.ndarray:
    """CTCAE v5.0 Fever: 38.0-39.0 = 1; > 39.0-40.0 = 2; > 40.0 <= 24 h = 3; > 24 h = 4."""
    t = d["temperature_c"]
    g = np.select([t > 40.0, t > 39.0, t >= 38.0], [3, 2, 1], 0)
    g = np.where((t > 40.0) & (d["fever_over_24h"] >= 1), 4, g)
    return np.where(d["death"] >= 1, 5, g)


def diarrhea_kernel(d: Mapping[str, np.ndarray]) -> np.ndarray:
    """CTCAE v5.0 Diarrhea from the stool increase over baseline and the grade 2-5
    qualifiers (ADL, incontinence, hospitalization, life-threatening, death)."""
    s = d["stools_over_baseline"]
    present = s >= 1
    g = np.select([s >= 7, s >= 4, present], [3, 2, 1], 0)
    adl = d["adl_limitation"]
    g = np.where(present & (adl >= 1), np.maximum(g, 2), g)
    severe = (adl >= 2) | (d["incontinence"] >= 1) | (d["hospitalization_indicated"] >= 1)
    g = np.where(present & severe, np.maximum(g, 3), g)
    g = np.where(present & (d["life_threatening"] >= 1), 4, g)
    return np.where(d["death"] >= 1, 5, g)


def ladder_kernel(field: str, has_death: bool):
    """A CTCAE term whose grade is the code of one category field (nausea, vomiting,
    headache), with grade 5 for a death due to the AE when the term has one."""

    def kernel(d: Mapping[str, np.ndarray]) -> np.ndarray:
        g = d[field].astype(int)
        return np.where(d["death"] >= 1, 5, g) if has_death else g

    return kernel


def rash_kernel(d: Mapping[str, np.ndarray]) -> np.ndarray:
    """CTCAE v5.0 Rash maculo-papular from BSA %, symptoms and ADL (no grades 4-5)."""
    b = d["rash_bsa_pct"]
    present = b > 0
    g = np.select([b >= 10, present], [2, 1], 0)
    g = np.where((b > 30) & (d["rash_symptoms"] >= 2), 3, g)
    adl = d["adl_limitation"]
    g = np.where(present & (adl >= 1), np.maximum(g, 2), g)
    return np.where(present & (adl >= 2), 3, g)


#: CTCAE v5.0 electrolyte and glucose terms graded by the value and the limit from the
#: reference ranges: term -> (field, "lln"/"uln", grade 2, 3 and 4 thresholds). Decreases
#: are strict ("<"), increases strict (">"); grade 1 is below LLN / above ULN.
ELECTROLYTE_TERMS: dict[str, tuple[str, str, tuple[float, float, float]]] = {
    "hyponatremia": ("sodium_mmol_l", "lln", (130.0, 125.0, 120.0)),
    "hypernatremia": ("sodium_mmol_l", "uln", (150.0, 155.0, 160.0)),
    "hypokalemia": ("potassium_mmol_l", "lln", (math.nan, 3.0, 2.5)),
    "hyperkalemia": ("potassium_mmol_l", "uln", (5.5, 6.0, 7.0)),
    "hypocalcemia": ("calcium_corrected_mg_dl", "lln", (8.0, 7.0, 6.0)),
    "hypomagnesemia": ("magnesium_mg_dl", "lln", (1.2, 0.9, 0.7)),
    "hypoglycemia": ("glucose_mmol_l", "lln", (3.0, 2.2, 1.7)),
}
#: ionised calcium rows of Hypocalcemia (mmol/L): < LLN-1.0: 1; < 1.0-0.9: 2; < 0.9-0.8: 3;
#: < 0.8: 4 (an alternative reading of the same term: the worse of the two counts)
IONIZED_CALCIUM = ("calcium_ionized_mmol_l", (1.0, 0.9, 0.8))


def low_grade(v: np.ndarray, lln: float, t: tuple[float, float, float]) -> np.ndarray:
    """< t4: 4, < t3: 3, < t2: 2, < LLN: 1 (a NaN t2 means no value-defined grade 2)."""
    t2, t3, t4 = t
    g2 = v < t2 if not math.isnan(t2) else np.zeros(np.shape(v), dtype=bool)
    return np.select([v < t4, v < t3, g2, v < lln], [4, 3, 2, 1], 0)


def high_grade(v: np.ndarray, uln: float, t: tuple[float, float, float]) -> np.ndarray:
    """> t4: 4, > t3: 3, > t2: 2, > ULN: 1."""
    t2, t3, t4 = t
    return np.select([v > t4, v > t3, v > t2, v > uln], [4, 3, 2, 1], 0)


def electrolyte_kernel(term: str, limit: float, limit_ionized: float | None = None):
    """The vectorised CTCAE v5.0 kernel of an electrolyte/glucose term for ``limit``
    (LLN or ULN); ``life_threatening`` makes an abnormal value grade 4, ``death`` 5."""
    field, side, t = ELECTROLYTE_TERMS[term]

    def kernel(d):
        v = d[field]
        g = low_grade(v, limit, t) if side == "lln" else high_grade(v, limit, t)
        if term == "hyponatremia":  # 125-129 mmol/L: 2 asymptomatic, 3 symptomatic
            g = np.where((v >= 125.0) & (v < 130.0) & (d["symptomatic"] >= 1), 3, g)
        if term == "hypokalemia":  # < LLN-3.0: 2 when symptomatic, intervention indicated
            raise_2 = (d["symptomatic"] >= 1) | (d["intervention_indicated"] >= 1)
            g = np.where((g == 1) & raise_2, 2, g)
        if term == "hypocalcemia" and limit_ionized is not None:
            f2, ti = IONIZED_CALCIUM
            g = np.maximum(g, low_grade(d[f2], limit_ionized, ti))
        g = np.where((g >= 1) & (d["life_threatening"] >= 1), 4, g)
        return np.where(d["death"] >= 1, 5, g)

    return kernel


def seizure_kernel(d: Mapping[str, np.ndarray]) -> np.ndarray:
    g = d["seizure_ctcae"].astype(int)
    return np.where(d["death"] >= 1, 5, g)


def encephalopathy_kernel(d: Mapping[str, np.ndarray]) -> np.ndarray:
    """Severity word, raised by the ADL it limits (instrumental: 2; self care: 3)."""
    g = d["encephalopathy"].astype(int)
    adl = d["adl_limitation"]
    present = g >= 1
    g = np.where(present & (adl >= 1), np.maximum(g, 2), g)
    g = np.where(present & (adl >= 2), np.maximum(g, 3), g)
    return np.where(d["death"] >= 1, 5, g)


def phosphate_kernel(d: Mapping[str, np.ndarray]) -> np.ndarray:
    g = d["phosphate_replacement"].astype(int)
    return np.where(d["death"] >= 1, 5, g)


#: the symptom terms graded by ``_symptom`` (bedside inputs, no laboratory limits)
SYMPTOM_TERMS = ("diarrhea", "nausea", "vomiting", "headache", "rash_maculopapular")
#: terms whose CTCAE v5.0 row has no grade 5 (a death due to them is refused)
NO_GRADE_5 = ("nausea", "headache", "rash_maculopapular")


def multiple_grade(ratio: np.ndarray, cuts: tuple[float, float, float, float]) -> np.ndarray:
    """Grade from a multiple of ULN or baseline: > c4 = 4, > c3 = 3, > c2 = 2, > c1 = 1
    (``c1`` inclusive when negative: -1.5 means >= 1.5)."""
    c1, c2, c3, c4 = cuts
    g1 = ratio >= -c1 if c1 < 0 else ratio > c1
    return np.select([ratio > c4, ratio > c3, ratio > c2, g1], [4, 3, 2, 1], 0)


#: liver terms: field, baseline field, ULN cuts, baseline cuts (grade 1 lower end
#: inclusive for ALT/AST "1.5 - 3.0 x baseline")
LIVER_TERMS: dict[str, tuple[str, str, tuple[float, ...], tuple[float, ...]]] = {
    "alt_increased": ("alt_u_l", "alt_baseline_u_l", (1.0, 3.0, 5.0, 20.0), (-1.5, 3.0, 5.0, 20.0)),
    "ast_increased": ("ast_u_l", "ast_baseline_u_l", (1.0, 3.0, 5.0, 20.0), (-1.5, 3.0, 5.0, 20.0)),
    "bilirubin_increased": (
        "bilirubin_mg_dl",
        "bilirubin_baseline_mg_dl",
        (1.0, 1.5, 3.0, 10.0),
        (1.0, 1.5, 3.0, 10.0),
    ),
}


def check_version(version: str) -> str:
    text = str(version).strip().lower().replace("ctcae", "").replace("v", "").strip()
    if text in ("5", "5.0", "5.0.0"):
        return VERSION
    raise GradingInputError(
        "version",
        version,
        "CTCAE version 5.0 (the only one implemented; "
        "v6.0 moved several thresholds, so grades are never mapped across)",
    )


def canonical_term(term: str) -> str:
    """The term id of a CTCAE v5.0 term name, a cartrial name or an alias (British
    spellings accepted); unknown terms raise with the nearest names."""
    import difflib

    key = codes.american(codes._key(term))
    names = {codes._key(t): t for t in TERMS}
    names.update({codes._key(n): t for t, (n, _soc) in TERM_NAMES.items()})
    names.update({codes._key(a): t for a, t in TERM_ALIASES.items()})
    names.update({codes._key(codes.american(a)): t for a, t in TERM_ALIASES.items()})
    if key in names:
        return names[key]
    if key in ("anemia", "anaemia"):
        return "anemia"
    near = difflib.get_close_matches(key, list(names), n=2, cutoff=0.7)
    hint = f"did you mean {' or '.join(names[n] for n in near)}? " if near else ""
    raise GradingInputError("term", term, hint + "a CTCAE term graded here: " + ", ".join(TERMS))


def _ranges(
    lln: Mapping[str, float] | None,
    uln: Mapping[str, float] | None,
    ranges: str | Path | None,
):

    lln = dict(lln or {})
    for sex in ("F", "M"):  # release-1.0 keys hemoglobin_g_dl_F / _M
        lln.pop(f"hemoglobin_g_dl_{sex}", None)
    return ReferenceRanges(ranges, lln, uln)


def _hb_lln(lln: Mapping[str, float] | None, rr, sex: str) -> float:
    key = f"hemoglobin_g_dl_{sex}"
    if lln and key in lln:
        return float(lln[key])
    if lln and "hemoglobin_g_dl" in lln:
        return float(lln["hemoglobin_g_dl"])
    return rr.need("lln", "hemoglobin_g_dl", sex).value


def _term_grade(
    term: str,
    values: Mapping[str, float],
    lln: Mapping[str, float] | None,
    uln: Mapping[str, float] | None,
    ranges: str | Path | None,
) -> tuple[Bounds, list[str]]:
    rr = _ranges(lln, uln, ranges)
    reasons: list[str] = []
    name = TERM_NAMES[term][0]
    if term in COUNT_TERMS:
        field, t2, t3, t4, _ = COUNT_TERMS[term]
        limit = rr.need("lln", field)
        low = limit.value
        fills = {field: Fill(1e6, 0.0)}
        b = bound(lambda d: count_grade(d[field], low, t2, t3, t4), single(values, fills), fills)
        v = values.get(field, math.nan)
        if not math.isnan(v):
            reasons.append(
                f"{name}: {field} {fmt(v)} x10^9/L -> grade {int(b.lo[0])} "
                f"(< LLN {fmt(low)}: 1; < {fmt(t2)}: 2; < {fmt(t3)}: 3; < {fmt(t4)}: 4)"
            )
        reasons.append(f"LLN {fmt(low)} x10^9/L from: {limit.source}")
        return b, reasons
    if term == "anemia":
        hb = values.get("hemoglobin_g_dl", math.nan)
        fills = {
            "hemoglobin_g_dl": Fill(16.0, 3.0),
            "sex": Fill(0, None),
            # asked at every haemoglobin: "life-threatening consequences; urgent
            # intervention indicated" is grade 4 whatever the count, so an unknown answer
            # keeps grade_max at 4 (only an explicit "no" closes it)
            "life_threatening": Fill(0, 1),
            "death": Fill(math.nan, None),
        }
        lf, lm = _hb_lln(lln, rr, "F"), _hb_lln(lln, rr, "M")
        primary = ("hemoglobin_g_dl", "life_threatening", "death")
        data = single(values, fills)
        if math.isnan(values.get("sex", math.nan)) and lf != lm:
            # sex unknown: the LLN is the lower (female) one for the lower bound
            b_f = bound(
                lambda d: anemia_kernel(d, lf, lm), {**data, "sex": np.array([0.0])}, fills, primary
            )
            b_m = bound(
                lambda d: anemia_kernel(d, lf, lm), {**data, "sex": np.array([1.0])}, fills, primary
            )
            miss = {**b_f.missing, **b_m.missing}
            if b_f.lo[0] != b_m.lo[0]:
                miss["sex"] = np.array([True])
            b = Bounds(np.minimum(b_f.lo, b_m.lo), np.maximum(b_f.hi, b_m.hi), miss, b_f.observed)
        else:
            b = bound(lambda d: anemia_kernel(d, lf, lm), data, fills, primary)
        if not math.isnan(hb):
            reasons.append(
                f"{name}: haemoglobin {fmt(hb)} g/dL (< LLN {fmt(lf)} F / {fmt(lm)} M: 1; "
                "< 10.0: 2; < 8.0: 3)"
            )
        if values.get("life_threatening", math.nan) == 1:
            reasons.append("life-threatening consequences, urgent intervention -> grade 4")
        return b, reasons
    if term == "febrile_neutropenia":
        anc, temp = values.get("anc", math.nan), values.get("temperature_c", math.nan)
        fills = {
            "anc": Fill(3.0, 0.0),
            "temperature_c": Fill(36.5, 39.0),
            "fever_sustained_1h": Fill(0, 1),
            # asked whether or not FN is established yet: unknown, it keeps grade_max at 4
            "life_threatening": Fill(0, 1),
            "death": Fill(math.nan, None),
        }
        b = bound(
            febrile_neutropenia_kernel,
            single(values, fills),
            fills,
            ("anc", "temperature_c", "life_threatening", "death"),
        )
        reasons.append(
            f"{name}: ANC {fmt(anc)} x10^9/L, temperature {fmt(temp)} °C "
            "(grade 3 = ANC < 1.0 with > 38.3 °C once or >= 38 °C for > 1 h)"
        )
        return b, reasons
    if term in ("infection", "lung_infection"):
        iv = values.get("intervention", math.nan)
        table = INFECTION_GRADE if term == "infection" else LUNG_INFECTION_GRADE
        if term == "lung_infection" and iv == codes.INFECTION["local"]:
            raise GradingInputError(
                "intervention",
                "local",
                "oral, iv, invasive, life_threatening or death: CTCAE v5.0 Lung infection "
                "has no grade 1",
            )
        fills = {"intervention": Fill(2 if term == "lung_infection" else 1, 6)}
        fills["death"] = Fill(math.nan, None)
        kern = infection_kernel if term == "infection" else lung_infection_kernel
        b = bound(kern, single(values, fills), fills, ("intervention", "death"))
        if not math.isnan(iv):
            ladder = (
                "local 1; oral 2; IV or invasive 3; life-threatening 4; death 5"
                if term == "infection"
                else "oral 2; IV or invasive 3; life-threatening 4; death 5 (no grade 1)"
            )
            reasons.append(
                f"{name}: {codes.decode('intervention', iv)} intervention -> grade "
                f"{int(table[int(iv)])} ({ladder})"
            )
        return b, reasons
    if term == "sepsis":
        fills = {
            "blood_culture_positive": Fill(0, 1),
            "sepsis_signs": Fill(0, 1),
            "life_threatening": Fill(0, 1),
            "death": Fill(math.nan, None),
        }
        b = bound(sepsis_kernel, single(values, fills), fills)
        reasons.append(
            f"{name}: grades 3-5 only (blood culture positive with signs or symptoms, "
            "treatment indicated = 3; life-threatening = 4; death = 5); there is no "
            "sepsis grade 1 or 2"
        )
        if values.get("blood_culture_positive") == 0 or values.get("sepsis_signs") == 0:
            reasons.append("blood culture negative or no signs: not sepsis by CTCAE v5.0")
        return b, reasons
    if term == "fever":
        fills = {
            "temperature_c": Fill(36.5, 41.0),
            "fever_over_24h": Fill(0, 1),
            "death": Fill(math.nan, None),
        }
        b = bound(fever_kernel, single(values, fills), fills, ("temperature_c", "death"))
        t = values.get("temperature_c", math.nan)
        if not math.isnan(t):
            reasons.append(
                f"{name}: {fmt(t)} °C (38.0-39.0: 1; > 39.0-40.0: 2; > 40.0 for <= 24 h: 3; "
                "> 40.0 for > 24 h: 4)"
            )
        return b, reasons
    if term in ("hypotension", "hypoxia"):
        field = f"{term}_treatment"
        fills = {field: Fill(0, 4), "death": Fill(math.nan, None)}
        if term == "hypotension" and values.get("hypotension") == 0:
            values = {**values, field: 0.0}
        b = bound(
            lambda d: np.where(d["death"] >= 1, 5, d[field]).astype(int),
            single(values, fills),
            fills,
        )
        v = values.get(field, math.nan)
        if not math.isnan(v):
            reasons.append(f"{name}: {codes.decode(field, v)} -> grade {int(v)}")
        return b, reasons
    if term in SYMPTOM_TERMS:
        return _symptom(term, values)
    if term in ELECTROLYTE_TERMS:
        return _electrolyte(term, values, rr)
    if term in ("seizure", "encephalopathy", "hypophosphatemia"):
        return _neuro_or_phosphate(term, values)
    if term in LIVER_TERMS:
        return _liver(term, values, rr)
    if term == "creatinine_increased":
        return _creatinine(values, rr)
    return _fibrinogen(values, rr)


def lab_kernel(term: str, limit: float):
    """(kernel, fills) of a CTCAE v5.0 laboratory term with a baseline (ALT, AST,
    bilirubin, creatinine, fibrinogen) for the ULN (LLN for fibrinogen) ``limit``; the
    kernels are vectorised over rows (``grade_daily`` uses them)."""
    if term in LIVER_TERMS:
        field, base_field, uln_cuts, bl_cuts = LIVER_TERMS[term]

        def liver(d):
            v, bl = d[field], d[base_field]
            with np.errstate(divide="ignore", invalid="ignore"):
                by_bl = multiple_grade(np.round(v / bl, 9), bl_cuts)
            by_uln = multiple_grade(np.round(v / limit, 9), uln_cuts)
            return np.where(bl > limit, by_bl, by_uln)

        return liver, {field: Fill(0.0, 1e6), base_field: Fill(1e12, 0.0)}
    if term == "creatinine_increased":

        def creatinine(d):
            cr, bl = d["creatinine_mg_dl"], d["creatinine_baseline_mg_dl"]
            ru = np.round(cr / limit, 9)  # exact decimal boundaries (0.9 / 0.3 is 3.0)
            with np.errstate(divide="ignore", invalid="ignore"):
                rb = np.round(cr / bl, 9)
            by_uln = np.select([ru > 6, ru > 3, ru > 1.5, ru > 1], [4, 3, 2, 1], 0)
            by_bl = np.select([rb > 3, rb > 1.5], [3, 2], 0)
            return np.maximum(by_uln, np.where(bl > 0, by_bl, 0))

        return creatinine, {
            "creatinine_mg_dl": Fill(0.5, 25.0),
            "creatinine_baseline_mg_dl": Fill(1e6, 1e-6),
        }
    if term == "fibrinogen_decreased":

        def fibrinogen(d):
            f, bl = d["fibrinogen_mg_dl"], d["fibrinogen_baseline_mg_dl"]
            with np.errstate(divide="ignore", invalid="ignore"):
                drop = np.round(1 - f / bl, 9)
            by_bl = np.select([drop >= 0.75, drop >= 0.5, drop >= 0.25, drop > 0], [4, 3, 2, 1], 0)
            r = np.round(f / limit, 9)
            by_lln = np.select([r < 0.25, r < 0.5, r < 0.75, r < 1.0], [4, 3, 2, 1], 0)
            return np.where(f < 50, 4, np.where(bl < limit, by_bl, by_lln))

        return fibrinogen, {
            "fibrinogen_mg_dl": Fill(400.0, 0.0),
            "fibrinogen_baseline_mg_dl": Fill(1e-9, 1e9),
        }
    raise GradingInputError("term", term, "a laboratory term with a baseline rule")


#: laboratory terms graded against a baseline: term -> (value field, baseline field,
#: "uln" or "lln")
LAB_TERMS: dict[str, tuple[str, str, str]] = {
    **{t: (f, bf, "uln") for t, (f, bf, _u, _b) in LIVER_TERMS.items()},
    "creatinine_increased": ("creatinine_mg_dl", "creatinine_baseline_mg_dl", "uln"),
    "fibrinogen_decreased": ("fibrinogen_mg_dl", "fibrinogen_baseline_mg_dl", "lln"),
}


def _liver(term: str, values: Mapping[str, float], rr) -> tuple[Bounds, list[str]]:
    """ALT/AST/bilirubin: multiples of the ULN when the baseline is normal, of the
    baseline when it is abnormal (> ULN). A baseline not given is unknown: the grade is
    bounded between the abnormal-baseline reading (as low as 0) and the ULN reading, with
    the baseline listed missing."""
    field, base_field, uln_cuts, bl_cuts = LIVER_TERMS[term]
    name = TERM_NAMES[term][0]
    limit = rr.need("uln", field)
    uln = limit.value
    kernel, fills = lab_kernel(term, uln)
    b = bound(kernel, single(values, fills), fills, (field,))
    v = values.get(field, math.nan)
    bl = values.get(base_field, math.nan)
    reasons = [f"ULN {fmt(uln)} from: {limit.source}"]
    c1, c2, c3, c4 = uln_cuts
    rule = f"(> {fmt(c1)}: 1; > {fmt(c2)}: 2; > {fmt(c3)}: 3; > {fmt(c4)}: 4)"
    if not math.isnan(bl) and bl > uln:
        d1, d2, d3, d4 = bl_cuts
        reasons.append(
            f"{name}: baseline {fmt(bl)} > ULN, graded by multiples of the baseline: "
            + ("" if math.isnan(v) else f"{fmt(v)} = {v / bl:.2f} x baseline ")
            + f"(>= {fmt(abs(d1))}: 1; > {fmt(d2)}: 2; > {fmt(d3)}: 3; > {fmt(d4)}: 4)"
        )
    elif not math.isnan(v):
        reasons.append(f"{name}: {fmt(v)} = {v / uln:.2f} x ULN {rule}")
        if math.isnan(bl):
            reasons.append(
                f"baseline not given: grade {int(b.hi[0])} if it was normal; an abnormal "
                "baseline grades by baseline multiples, which can be lower"
            )
        else:
            reasons.append(f"baseline {fmt(bl)} <= ULN: multiples of the ULN")
    return b, reasons


def _symptom(term: str, values: Mapping[str, float]) -> tuple[Bounds, list[str]]:
    """The CTCAE v5.0 symptom terms (see module doc). An unknown qualifier (ADL,
    incontinence, hospitalization, rash symptoms) is unknown, like any missing item: the
    grade is bounded and the qualifier listed missing where it could raise the grade."""
    name = TERM_NAMES[term][0]
    reasons: list[str] = []
    if term in NO_GRADE_5 and values.get("death") == 1:
        raise GradingInputError(
            "death", 1, f"no death: CTCAE v5.0 {name} has no grade 5 (grades 1-3)"
        )
    if term == "diarrhea":
        s_ = values.get("stools_over_baseline", math.nan)
        # life-threatening consequences make any diarrhoea grade 4 (CTCAE v5.0 has no
        # stool threshold for grade 4), so when not charted it is unknown at every count
        fills = {
            "stools_over_baseline": Fill(0, 10),
            "adl_limitation": Fill(0, 2),
            "incontinence": Fill(0, 1),
            "hospitalization_indicated": Fill(0, 1),
            "life_threatening": Fill(0, 1),
            "death": Fill(math.nan, None),
        }
        b = bound(diarrhea_kernel, single(values, fills), fills, ("stools_over_baseline", "death"))
        if not math.isnan(s_):
            reasons.append(
                f"{name}: increase of {fmt(s_)} stools/day over baseline (< 4: 1; 4-6: 2; "
                ">= 7: 3); limiting instrumental ADL: 2; incontinence, hospitalization "
                "indicated or limiting self care ADL: 3"
            )
        return b, reasons
    if term == "rash_maculopapular":
        fills = {
            "rash_bsa_pct": Fill(0, 100),
            "rash_symptoms": Fill(0, 3),
            "adl_limitation": Fill(0, 2),
        }
        b = bound(rash_kernel, single(values, fills), fills, ("rash_bsa_pct",))
        bsa = values.get("rash_bsa_pct", math.nan)
        if not math.isnan(bsa):
            reasons.append(
                f"{name}: macules/papules over {fmt(bsa)}% BSA (< 10%: 1; 10-30%: 2; > 30% "
                "with none or mild symptoms: 2; > 30% with moderate or severe symptoms: 3); "
                "limiting instrumental ADL: 2; limiting self care ADL: 3"
            )
        return b, reasons
    has_death = term == "vomiting"
    fills = {term: Fill(0, 4 if has_death else 3)}
    if has_death:
        fills["death"] = Fill(math.nan, None)
    data = single(values, fills)
    if not has_death:
        data["death"] = np.array([math.nan])
    b = bound(ladder_kernel(term, has_death), data, fills, (term,))
    v = values.get(term, math.nan)
    if not math.isnan(v):
        reasons.append(f"{name}: {codes.decode(term, v)} -> grade {int(v)}")
    return b, reasons


_ELECTROLYTE_RULES = {
    "hyponatremia": "< LLN-130: 1; 125-129 asymptomatic: 2; 125-129 symptomatic or 120-124: 3; "
    "< 120: 4",
    "hypernatremia": "> ULN-150: 1; > 150-155: 2; > 155-160: 3; > 160: 4",
    "hypokalemia": "< LLN-3.0: 1; < LLN-3.0 symptomatic, intervention indicated: 2; "
    "< 3.0-2.5: 3; < 2.5: 4",
    "hyperkalemia": "> ULN-5.5: 1; > 5.5-6.0: 2; > 6.0-7.0: 3; > 7.0: 4",
    "hypocalcemia": "corrected calcium < LLN-8.0 mg/dL: 1; < 8.0-7.0: 2; < 7.0-6.0: 3; < 6.0: 4; "
    "ionised calcium < LLN-1.0 mmol/L: 1; < 1.0-0.9: 2; < 0.9-0.8: 3; < 0.8: 4",
    "hypomagnesemia": "< LLN-1.2 mg/dL: 1; < 1.2-0.9: 2; < 0.9-0.7: 3; < 0.7: 4",
    "hypoglycemia": "< LLN-3.0 mmol/L: 1; < 3.0-2.2: 2; < 2.2-1.7: 3; < 1.7: 4",
}


def _electrolyte(term: str, values: Mapping[str, float], rr) -> tuple[Bounds, list[str]]:
    """CTCAE v5.0 electrolyte/glucose terms (see module doc). The symptom qualifier of
    hyponatremia (125-129 mmol/L) and hypokalemia (grade 2) is unknown when not given:
    the grade is bounded and it is listed missing. Hypocalcemia reads corrected and/or
    ionised calcium (either is enough; the worse counts)."""
    field, side, _t = ELECTROLYTE_TERMS[term]
    name = TERM_NAMES[term][0]
    limit = rr.need(side, field)
    unit = "mg/dL" if field.endswith("mg_dl") else "mmol/L"
    fills: dict[str, Fill] = {
        field: Fill(limit.value, 0.0 if side == "lln" else 1e6),
        "symptomatic": Fill(0, 1),
        "intervention_indicated": Fill(0, 1),
        "life_threatening": Fill(0, 1),
        "death": Fill(math.nan, None),
    }
    primary: tuple[str, ...] = (field, "death")
    lim_i = None
    reasons = [f"{side.upper()} {fmt(limit.value)} {unit} from: {limit.source}"]
    if term == "hypocalcemia":
        f2 = IONIZED_CALCIUM[0]
        lim_i = rr.need("lln", f2)
        # the two measures are alternative readings: one is enough, so an absent one is
        # not unknown-and-severe (it is not listed missing)
        fills[field] = Fill(limit.value, None)
        fills[f2] = Fill(lim_i.value, None)
        primary = (field, f2, "death")
        reasons.append(f"ionised calcium LLN {fmt(lim_i.value)} mmol/L from: {lim_i.source}")
        if all(math.isnan(values.get(f, math.nan)) for f in (field, f2)):
            fills[field] = Fill(limit.value, 0.0)
    kernel = electrolyte_kernel(term, limit.value, None if lim_i is None else lim_i.value)
    b = bound(kernel, single(values, fills), fills, primary)
    v = values.get(field, math.nan)
    shown = [
        f"{fmt(values[f])} {'mg/dL' if f.endswith('mg_dl') else 'mmol/L'} ({f})"
        for f in (field, IONIZED_CALCIUM[0] if term == "hypocalcemia" else field)
        if not math.isnan(values.get(f, math.nan))
    ]
    if shown:
        reasons.append(f"{name}: {', '.join(dict.fromkeys(shown))} ({_ELECTROLYTE_RULES[term]})")
    if values.get("life_threatening") == 1 and not math.isnan(v):
        reasons.append("life-threatening consequences -> grade 4")
    return b, reasons


def _neuro_or_phosphate(term: str, values: Mapping[str, float]) -> tuple[Bounds, list[str]]:
    """CTCAE v5.0 Seizure, Encephalopathy and Hypophosphatemia (v5.0 grades it by what
    it needed, not by the phosphate level) from their category fields."""
    name = TERM_NAMES[term][0]
    field = {"seizure": "seizure_ctcae", "hypophosphatemia": "phosphate_replacement"}.get(
        term, term
    )
    fills = {field: Fill(0, 4), "death": Fill(math.nan, None)}
    kernel = {
        "seizure": seizure_kernel,
        "encephalopathy": encephalopathy_kernel,
        "hypophosphatemia": phosphate_kernel,
    }[term]
    if term == "encephalopathy":
        fills["adl_limitation"] = Fill(0, 2)
    b = bound(kernel, single(values, fills), fills, (field, "death"))
    v = values.get(field, math.nan)
    if not math.isnan(v):
        reasons = [f"{name}: {codes.decode(field, v)} -> grade {int(b.lo[0])}"]
    else:
        reasons = []
    if term == "encephalopathy":
        reasons.append(
            "Encephalopathy: mild symptoms 1; moderate, limiting instrumental ADL 2; severe, "
            "limiting self care ADL 3; life-threatening, urgent intervention 4"
        )
    elif term == "seizure":
        reasons.append(
            "Seizure: brief partial, no loss of consciousness 1; brief generalized 2; new "
            "onset (partial or generalized) or multiple despite medical intervention 3; "
            "life-threatening, prolonged repetitive 4"
        )
    else:
        reasons.append(
            "Hypophosphatemia (graded by intervention in v5.0): laboratory finding only 1; "
            "oral replacement indicated 2; hospitalization indicated 3; life-threatening 4"
        )
    return b, reasons


def _creatinine(values: Mapping[str, float], rr) -> tuple[Bounds, list[str]]:
    """Creatinine increased: the worse of the ULN reading and the baseline reading (the
    baseline rows exist at grades 2-3 only; CTCAE v5.0 has no switch)."""
    limit = rr.need("uln", "creatinine_mg_dl")
    uln = limit.value
    kernel, fills = lab_kernel("creatinine_increased", uln)
    b = bound(kernel, single(values, fills), fills, ("creatinine_mg_dl",))
    cr = values.get("creatinine_mg_dl", math.nan)
    bl = values.get("creatinine_baseline_mg_dl", math.nan)
    reasons = [f"ULN {fmt(uln)} mg/dL from: {limit.source}"]
    if not math.isnan(cr):
        reasons.append(
            f"Creatinine increased: {fmt(cr)} mg/dL = {cr / uln:.2f} x ULN"
            + (f", {cr / bl:.2f} x baseline {fmt(bl)}" if bl > 0 else "")
            + " (> ULN: 1; > 1.5 x ULN or baseline: 2; > 3 x baseline or > 3 x ULN: 3; "
            "> 6 x ULN: 4)"
        )
    return b, reasons


def _fibrinogen(values: Mapping[str, float], rr) -> tuple[Bounds, list[str]]:
    """Fibrinogen decreased by LLN multiples, or (abnormal baseline, < LLN) by the
    decrease from baseline; an absolute value < 50 mg/dL is grade 4 either way. A
    baseline not given is unknown (bounded; listed missing)."""
    limit = rr.need("lln", "fibrinogen_mg_dl")
    lln = limit.value
    kernel, fills = lab_kernel("fibrinogen_decreased", lln)
    b = bound(kernel, single(values, fills), fills, ("fibrinogen_mg_dl",))
    v = values.get("fibrinogen_mg_dl", math.nan)
    bl = values.get("fibrinogen_baseline_mg_dl", math.nan)
    reasons = [f"LLN {fmt(lln)} mg/dL from: {limit.source}"]
    if not math.isnan(bl) and bl < lln:
        reasons.append(
            f"baseline {fmt(bl)} < LLN: graded by the decrease from baseline "
            "(< 25 %: 1; 25-< 50 %: 2; 50-< 75 %: 3; >= 75 %: 4)"
        )
    elif math.isnan(bl) and not math.isnan(v):
        reasons.append(
            f"baseline not given: grade {int(b.hi[0])} if it was normal (LLN multiples); an "
            "abnormal baseline grades by the decrease from it, which can be lower"
        )
    if not math.isnan(v):
        reasons.append(
            f"Fibrinogen decreased: {fmt(v)} mg/dL = {v / lln:.2f} x LLN (< 1.0: 1; < 0.75: "
            "2; < 0.5: 3; < 0.25 x LLN or < 50 mg/dL: 4)"
        )
    return b, reasons


def grade_ctcae_values(
    term: str,
    values: Mapping[str, float],
    lln: Mapping[str, float] | None = None,
    uln: Mapping[str, float] | None = None,
    ranges: str | Path | None = None,
) -> Grade:
    """CTCAE v5.0 grade of ``term`` from parsed observations, with reasons naming the
    CTCAE term, its SOC and the limits used (and where they came from)."""
    term = canonical_term(term)
    b, reasons = _term_grade(term, values, lln, uln, ranges)
    if values.get("death", math.nan) == 1:
        reasons.append("death due to the adverse event -> grade 5")
    name, soc = TERM_NAMES[term]
    reasons.append(f"source: {SOURCE}, {soc}: {name}")
    g = grade_from_bounds(VERSION, b, reasons)
    return Grade(
        g.system,
        g.grade,
        g.reasons,
        g.missing,
        g.grade_max,
        g.label,
        (("term", term), ("ctcae_term", name), ("soc", soc)),
    )
