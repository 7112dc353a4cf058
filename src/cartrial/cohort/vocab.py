"""Controlled vocabularies of the cohort format, with the aliases users actually type.

Each vocabulary maps a canonical value to the spellings accepted for it. Matching is
case-insensitive and ignores surrounding blanks and the characters ``-``/``_``/space
differences ("CR with incomplete recovery", "cr_i" and "CRi" all mean ``CRi``).
A value that matches nothing is a validation problem, never silently mapped.

Sources: response categories follow NCCN ALL (CR, CRi, PR, NR) and ELN 2022 AML
(CR, CRh, CRi, MLFS, PR); event types and death causes follow ../DESIGN.md.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

# canonical -> aliases (the canonical spelling is always accepted)
EVENTS: dict[str, tuple[str, ...]] = {
    "response": ("response assessment", "assessment", "remission", "best response"),
    "relapse": ("recurrence", "relapsed", "relapse/progression"),
    "progression": ("pd", "progressive disease", "progressed"),
    "death": ("died", "dead", "deceased"),
    "sct": (
        "hsct",
        "allo-sct",
        "allosct",
        "allo-hsct",
        "transplant",
        "stem cell transplant",
        "bmt",
        "haplo-sct",
        "consolidation sct",
    ),
    "new_therapy": ("new therapy", "new treatment", "subsequent therapy", "salvage"),
    "last_contact": ("last contact", "last follow-up", "last followup", "last seen", "alive"),
    "lost_to_followup": ("lost to follow-up", "lost to followup", "ltfu", "lost"),
    "withdrawal": ("withdrawn", "consent withdrawn", "withdrew"),
    "infusion": ("car-t infusion", "cart infusion", "infused"),
}

RESPONSES: dict[str, tuple[str, ...]] = {
    "CR": ("complete response", "complete remission"),
    "CRi": (
        "cr with incomplete recovery",
        "cr with incomplete count recovery",
        "cr with incomplete hematologic recovery",
        "cr with incomplete haematological recovery",
        "cri",
        "cr_i",
        "cr incomplete",
    ),
    "CRh": ("cr with partial hematologic recovery", "cr with partial haematological recovery"),
    "MLFS": ("morphologic leukemia-free state", "morphological leukaemia-free state"),
    "PR": ("partial response", "partial remission"),
    "OR": ("objective response", "objective_response", "response not further specified"),
    "SD": ("stable disease",),
    "NR": ("no response", "non-response", "refractory", "nonresponse", "resistant disease"),
    "PD": ("progressive disease", "progression"),
    # relapse documented on a response assessment (NCCN ALL "relapsed disease")
    "REL": ("relapse", "relapsed", "relapsed disease", "recurrence"),
    "NE": ("not evaluable", "not assessed", "inevaluable", "ne"),
}
#: responses counted in the objective response rate (ORR = CR + CRi + PR; CRh and MLFS
#: are responses in ELN 2022; OR is an objective response the source did not subtype).
OBJECTIVE_RESPONSES = frozenset({"CR", "CRi", "CRh", "MLFS", "PR", "OR"})
#: complete remissions with or without count recovery (the "CR/CRi rate").
COMPLETE_RESPONSES = frozenset({"CR", "CRi", "CRh"})

MRD: dict[str, tuple[str, ...]] = {
    "negative": ("neg", "mrd-", "mrd negative", "undetectable", "-"),
    "positive": ("pos", "mrd+", "mrd positive", "detectable", "+"),
}

CD7_STATUS: dict[str, tuple[str, ...]] = {
    "negative": ("neg", "cd7-", "cd7 negative", "cd7neg"),
    "positive": ("pos", "cd7+", "cd7 positive", "cd7pos"),
    "dim": ("low", "cd7dim", "cd7 dim", "cd7low"),
}

DEATH_CAUSES: dict[str, tuple[str, ...]] = {
    "relapse": ("disease", "progression", "leukemia", "leukaemia", "disease progression", "pd"),
    "infection": ("sepsis", "infectious", "pneumonia"),
    "gvhd": ("graft-versus-host disease", "graft versus host disease"),
    "crs": ("cytokine release syndrome",),
    "icans": ("neurotoxicity",),
    "other": ("unknown", "adverse event", "toxicity"),
}

AE_TERMS: dict[str, tuple[str, ...]] = {
    "CRS": ("cytokine release syndrome",),
    "ICANS": ("immune effector cell-associated neurotoxicity syndrome", "neurotoxicity", "crES"),
    "aGVHD": ("acute gvhd", "agvhd", "acute graft-versus-host disease", "gvhd"),
    "cGVHD": ("chronic gvhd", "cgvhd", "chronic graft-versus-host disease"),
    "infection": ("infections", "sepsis", "bacteremia", "pneumonia"),
    "neutropenia": ("neutrophil count decreased", "anc decreased"),
    "thrombocytopenia": ("platelet count decreased",),
    "anemia": ("anaemia",),
    "lymphopenia": ("lymphocyte count decreased",),
    "leukopenia": ("white blood cell decreased", "wbc decreased"),
    "febrile_neutropenia": ("febrile neutropenia", "fn"),
    "ICAHT": (
        "immune effector cell-associated hematotoxicity",
        "hematotoxicity",
        "haematotoxicity",
    ),
    "HLH": (
        "ihlh",
        "mas",
        "hlh/mas",
        "macrophage activation syndrome",
        "iec-hs",
        "iechs",
        "immune effector cell-associated hlh-like syndrome",
        "carhlh",
    ),
    "TLS": ("tumor lysis syndrome", "tumour lysis syndrome"),
    # further CTCAE v5.0 terms common after CAR-T (CTCAE term names, lower case)
    "hypotension": (),
    "hypoxia": (),
    "fever": ("pyrexia",),
    "encephalopathy": (),
    "seizure": ("seizures",),
    "headache": (),
    "diarrhea": ("diarrhoea",),
    "nausea": (),
    "vomiting": (),
    "rash": ("rash maculo-papular",),
    "alt_increased": ("alanine aminotransferase increased", "alt increased"),
    "ast_increased": ("aspartate aminotransferase increased", "ast increased"),
    "bilirubin_increased": ("blood bilirubin increased", "hyperbilirubinemia"),
    "creatinine_increased": ("creatinine increased",),
    # its own CTCAE v5.0 term (Renal and urinary disorders), graded by what it needs, not
    # by creatinine multiples: not an alias of creatinine_increased
    "acute_kidney_injury": ("acute kidney injury", "aki"),
    "hypofibrinogenemia": ("fibrinogen decreased",),
    "dic": ("disseminated intravascular coagulation",),
    "hemorrhage": ("haemorrhage", "bleeding"),
    "cmv_reactivation": (
        "cmv reactivation",
        "cmv viremia",
        "cytomegalovirus infection reactivation",
    ),
    "ebv_reactivation": (
        "ebv reactivation",
        "ebv viremia",
        "epstein-barr virus infection reactivation",
    ),
    "fungal_infection": ("fungal infection", "invasive fungal infection", "ifi"),
    "bacterial_infection": ("bacterial infection",),
    "viral_infection": ("viral infection",),
    "arrhythmia": ("cardiac arrhythmia", "atrial fibrillation", "sinus tachycardia"),
    "graft_failure": ("graft failure", "poor graft function"),
    "tma": ("thrombotic microangiopathy", "ta-tma"),
    "other": (),
}

GRADING_SYSTEMS: dict[str, tuple[str, ...]] = {
    "ASTCT2019": ("astct", "asbmt", "astct 2019", "lee 2019"),
    "CARTOX": ("cartox", "neelapu 2018", "cartox-10"),
    "Lee2014": ("lee 2014", "lee"),
    "MAGIC": ("magic", "mount sinai"),
    "Keystone1994": ("keystone", "przepiorka", "1994 consensus", "glucksberg"),
    "NIH2014": ("nih", "nih 2014"),
    "CTCAE5": ("ctcae", "ctcae v5", "ctcae v5.0", "ctcae 5", "ctcae5.0"),
    "CTCAE6": ("ctcae v6", "ctcae v6.0", "ctcae 6"),
    "CTCAE4": ("ctcae v4", "ctcae v4.03", "ctcae 4"),
    "ICAHT2023": ("icaht", "eha/ebmt 2023", "rejeski 2023"),
    "IECHS2023": ("iec-hs", "iechs", "hines 2023", "astct iec-hs"),
}

PRODUCT_SOURCES: dict[str, tuple[str, ...]] = {
    "prior_sct_donor": ("prior sct donor", "previous donor", "prior donor", "prior-sct donor"),
    "new_donor": ("new donor",),
    "universal": ("third-party", "third party", "allogeneic universal", "ucart"),
    "autologous": ("auto", "patient-derived"),
}

SEX: dict[str, tuple[str, ...]] = {
    "M": ("male", "man", "boy", "m"),
    "F": ("female", "woman", "girl", "f"),
}

YES_NO: dict[str, tuple[str, ...]] = {
    "yes": ("y", "true", "1", "1.0", "t"),
    "no": ("n", "false", "0", "0.0", "f", "none"),
}

#: Observation analytes: canonical name -> (aliases, allowed units). ``None`` as a unit
#: set means unitless / any. Counts of cells per µL and per L are deliberately different
#: units: a value in cells/L labelled cells/µL is off by 10⁶, so mismatches are errors.
ANALYTES: dict[str, tuple[tuple[str, ...], frozenset[str] | None]] = {
    "cart_flow": (
        ("car-t flow", "car+ cells", "cart_cells_ul", "car_t_flow"),
        frozenset({"cells/uL"}),
    ),
    "cart_qpcr": (
        ("car-t qpcr", "transgene copies", "car_t_qpcr", "cart_copies"),
        frozenset({"copies/ug"}),
    ),
    "cart_pct_cd3": (("%car+ of cd3+",), frozenset({"%"})),
    "cd3": (("cd3+ t", "t cells", "cd3_t"), frozenset({"cells/uL"})),
    "cd4": (("cd4+ t", "cd4_t"), frozenset({"cells/uL"})),
    "cd8": (("cd8+ t", "cd8_t"), frozenset({"cells/uL"})),
    "cd4_cd8_ratio": (("cd4/cd8", "cd4:cd8"), None),
    "cd7_t": (("cd3+cd7+", "cd7+ t"), frozenset({"cells/uL"})),
    "cd7neg_t": (("cd3+cd7-", "cd7- t", "cd7_neg_t"), frozenset({"cells/uL"})),
    "nk": (("cd16+cd56+", "nk cells"), frozenset({"cells/uL"})),
    "cd7_nk": (("cd7+ nk",), frozenset({"cells/uL"})),
    "cd7neg_nk": (("cd7- nk", "cd7_neg_nk"), frozenset({"cells/uL"})),
    "cd19_b": (("cd19+ b", "b cells", "cd19"), frozenset({"cells/uL"})),
    "b_pct_lymph": (("b cells % of lymphocytes", "cd19_pct"), frozenset({"%"})),
    # counts: 10^9/L (stored) or cells/uL (converted on load, see UNIT_CONVERSIONS)
    "anc": (("neutrophils", "absolute neutrophil count"), frozenset({"10^9/L", "cells/uL"})),
    "platelets": (("plt", "platelet count"), frozenset({"10^9/L", "cells/uL"})),
    "wbc": (("white blood cells", "leukocytes"), frozenset({"10^9/L", "cells/uL"})),
    "lymphocytes": (
        ("alc", "absolute lymphocyte count"),
        frozenset({"10^9/L", "cells/uL"}),
    ),
    "hemoglobin": (("hb", "haemoglobin", "hgb"), frozenset({"g/dL", "g/L"})),
    "crp": (("c-reactive protein",), frozenset({"mg/L"})),
    "il6": (("il-6", "interleukin-6"), frozenset({"pg/mL"})),
    "ferritin": ((), frozenset({"ng/mL"})),
    "ldh": (("lactate dehydrogenase",), frozenset({"U/L"})),
    "chimerism": (("donor chimerism",), frozenset({"%"})),
    "bm_blasts": (("marrow blasts", "bm blasts"), frozenset({"%"})),
    "mrd_flow": (("mrd",), frozenset({"fraction"})),
    "temperature": (("temp", "temperature_c", "body temperature"), frozenset({"C", "F"})),
    "sbp": (("systolic bp", "systolic blood pressure"), frozenset({"mmHg"})),
    "vasopressors": (("vasopressor count",), frozenset({"n"})),
    "vasopressin": ((), None),
    "oxygen": (("oxygen support", "o2 device"), None),
    "o2_flow": (("o2_flow_l_min", "oxygen flow"), frozenset({"L/min"})),
    "ice_score": (("ice",), frozenset({"points"})),
    "capd_score": (("capd",), frozenset({"points"})),
    "consciousness": (("level of consciousness",), None),
    "seizure": ((), None),
    "motor_weakness": (("motor findings",), None),
    "cerebral_edema": (("cerebral oedema", "raised icp"), None),
    "tocilizumab": (("toci",), None),
    "steroids": (("corticosteroids",), None),
    "skin_bsa_pct": (("rash bsa",), frozenset({"%"})),
    "bilirubin": (("bilirubin_mg_dl", "total bilirubin"), frozenset({"mg/dL", "umol/L"})),
    # CTCAE v5.0 chemistry and coagulation (cartrial.grading.ctcae)
    "creatinine": (("serum creatinine", "creatinine_mg_dl"), frozenset({"mg/dL", "umol/L"})),
    "alt": (("alanine aminotransferase", "alt_u_l", "sgpt"), frozenset({"U/L"})),
    "ast": (("aspartate aminotransferase", "ast_u_l", "sgot"), frozenset({"U/L"})),
    "fibrinogen": (("fibrinogen_mg_dl",), frozenset({"mg/dL", "g/L"})),
    "stool_ml_day": (("stool volume",), frozenset({"mL/day"})),
    "weight": (("weight_kg", "body weight"), frozenset({"kg"})),
    "tcr_shannon": (("shannon",), None),
    # further bedside items used by cartrial.grading.episodes (codes in grading/codes.py)
    "hypotension": ((), None),
    "fever_masked": (("antipyretics_or_anticytokine",), None),
    "antipyretics": ((), None),
    "fio2": (("fraction of inspired oxygen",), frozenset({"fraction", "%"})),
    "cartox10_score": (("cartox-10", "cartox10"), frozenset({"points"})),
    "stool_episodes": (("stool episodes",), frozenset({"n"})),
    "bullae": ((), None),
    "upper_gi": (("upper gi",), None),
    "severe_abdominal_pain": ((), None),
    "bloody_stool": ((), None),
    "crs_death": ((), None),
}
# units accepted as spellings of the canonical unit
UNIT_ALIASES: dict[str, tuple[str, ...]] = {
    "cells/uL": ("cells/µl", "cells/ul", "/ul", "/µl", "cells/mm3", "/mm3", "cells/μl"),
    "copies/ug": (
        "copies/µg",
        "copies/ug dna",
        "copies/µg gdna",
        "copies/ug gdna",
        "copies/μg",
        "copies/µg dna",
    ),
    "10^9/L": ("x10^9/l", "×10⁹/l", "10e9/l", "g/l", "10*9/l", "x10e9/l", "10^3/ul", "k/ul"),
    "g/dL": ("g/dl",),
    "mg/L": ("mg/l",),
    "pg/mL": ("pg/ml",),
    "ng/mL": ("ng/ml", "ug/l", "µg/l"),
    "U/L": ("u/l", "iu/l"),
    "mg/dL": ("mg/dl",),
    "mL/day": ("ml/day", "ml/d"),
    "L/min": ("l/min",),
    "%": ("percent", "pct"),
    "C": ("°c", "degc", "celsius"),
    "F": ("°f", "degf", "fahrenheit"),
    "umol/L": ("µmol/l", "μmol/l", "umol/l", "micromol/l"),
    "mmHg": ("mmhg",),
    "kg": (),
    "n": ("count", "number"),
    "points": ("score", "pts"),
    "fraction": ("proportion",),
}

#: spellings whose meaning depends on the analyte: "g/L" is giga/L (10^9/L) for a count
#: but grams per litre for haemoglobin and fibrinogen
ANALYTE_UNIT_SPELLINGS: dict[str, dict[str, str]] = {
    "hemoglobin": {"g/l": "g/L"},
    "fibrinogen": {"g/l": "g/L"},
}
#: analyte -> (stored unit, {other accepted unit: (scale, offset)}): stored = value *
#: scale + offset. 1 cell/uL = 10^-3 x10^9/L; Hb 1 g/L = 0.1 g/dL; bilirubin 1 mg/dL =
#: 17.1 umol/L; creatinine 1 mg/dL = 88.4 umol/L; fibrinogen 1 g/L = 100 mg/dL;
#: C = (F - 32) x 5/9.
UNIT_CONVERSIONS: dict[str, tuple[str, dict[str, tuple[float, float]]]] = {
    "anc": ("10^9/L", {"cells/uL": (1e-3, 0.0)}),
    "platelets": ("10^9/L", {"cells/uL": (1e-3, 0.0)}),
    "wbc": ("10^9/L", {"cells/uL": (1e-3, 0.0)}),
    "lymphocytes": ("10^9/L", {"cells/uL": (1e-3, 0.0)}),
    "hemoglobin": ("g/dL", {"g/L": (0.1, 0.0)}),
    "temperature": ("C", {"F": (5 / 9, -32 * 5 / 9)}),
    "bilirubin": ("mg/dL", {"umol/L": (1 / 17.1, 0.0)}),
    "creatinine": ("mg/dL", {"umol/L": (1 / 88.4, 0.0)}),
    "fibrinogen": ("mg/dL", {"g/L": (100.0, 0.0)}),
}


#: British -> American spellings folded before lookups (CTCAE and this
#: vocabulary use American spelling; grading and the cohort format both fold with it)
_SPELLING = (
    (r"paenia", "penia"),
    (r"aemia", "emia"),
    (r"oedema", "edema"),
    (r"oesoph", "esoph"),
    (r"haem", "hem"),
    (r"leuco", "leuko"),
    (r"diarrhoea", "diarrhea"),
    (r"tumour", "tumor"),
    (r"ischaem", "ischem"),
    (r"paed", "ped"),
    (r"isation", "ization"),
    (r"ised\b", "ized"),
    (r"hospitalis", "hospitaliz"),
)


def american(text: str) -> str:
    """Fold British spellings to the American ones CTCAE uses ("thrombocytopaenia" ->
    "thrombocytopenia", "generalised" -> "generalized", "oedema" -> "edema")."""
    out = str(text).lower()
    for pattern, repl in _SPELLING:
        out = re.sub(pattern, repl, out)
    return out


def _key(text: str) -> str:
    """Normalise a spelling for matching: lower case, blanks and underscores folded.

    Hyphens and plus signs are kept: "CD7-" and "CD7+" must stay different.
    """
    key = re.sub(r"(?<=[a-z])-(?=[a-z])", " ", str(text).strip().lower())  # follow-up
    return re.sub(r"[\s_]+", " ", key)


def build_lookup(vocabulary: Mapping[str, Iterable[str]]) -> dict[str, str]:
    """Map every accepted spelling (normalised) to its canonical value."""
    lookup: dict[str, str] = {}
    for canonical, aliases in vocabulary.items():
        for spelling in (canonical, *aliases):
            lookup[_key(spelling)] = canonical
    return lookup


#: lookup tables keyed by the vocabulary's *content* (never by ``id()``: a dict built
#: per call, e.g. the units of one analyte, can reuse a freed dict's address)
_LOOKUPS: dict[tuple[tuple[str, tuple[str, ...]], ...], dict[str, str]] = {}
_MAX_LOOKUPS = 512


def canonical(value: object, vocabulary: Mapping[str, Iterable[str]]) -> str | None:
    """Return the canonical spelling of ``value`` in ``vocabulary``, or None if unknown."""
    content = tuple((name, tuple(aliases)) for name, aliases in vocabulary.items())
    table = _LOOKUPS.get(content)
    if table is None:
        if len(_LOOKUPS) >= _MAX_LOOKUPS:  # bounded: callers may pass ad-hoc vocabularies
            _LOOKUPS.clear()
        table = _LOOKUPS[content] = build_lookup(dict(content))
    key = _key(str(value))
    found = table.get(key)
    if found is None:  # a British spelling of an American term ("thrombocytopaenia")
        found = table.get(_key(american(key)))
    return found


def analyte_lookup() -> dict[str, str]:
    return build_lookup({name: aliases for name, (aliases, _units) in ANALYTES.items()})


def allowed(vocabulary: Mapping[str, Iterable[str]]) -> str:
    """A short human list of the canonical values, for error messages."""
    return ", ".join(vocabulary)
