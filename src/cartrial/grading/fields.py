"""The one registry of grading inputs: name, type, unit, plausible range, vocabulary, help.

Every bedside or laboratory input of ``cartrial.grading`` is declared here once
(``FIELDS``). From that declaration come the checks of the Python API
(``core.parse_value``), the ``cartrial grade`` CLI options (``cli_option``), the pydantic
model of the JSON API (``pydantic_model``) and the web bedside form (``form_fields``), so
that a range (e.g. the maximum oxygen flow) is one number everywhere.

Units. A number is in the field's canonical unit (``FieldSpec.unit``) unless a unit is
given, either as text with the value (``"150 cells/uL"``, ``"101.3 F"``, ``"51 umol/L"``)
or in the ``units=`` mapping of the grading functions. Accepted units and their
conversions are declared per field (``FieldSpec.units``). A value outside the plausible
range of the canonical unit is refused, with the reading in the unit it probably is
("anc 150: as 10^9/L that is 150,000/uL - implausible; pass unit='cells/uL'"); a value
without a unit that is plausible in two units giving different meanings
(``ambiguous_above``) is refused with both readings. Never a silent wrong grade.

Conversion factors: counts 1 cell/uL = 10^-3 x10^9/L (1 /mm3 = 1 /uL); haemoglobin
1 g/L = 0.1 g/dL, 1 mmol/L (Hb monomer) = 1.611 g/dL; bilirubin 1 mg/dL = 17.1 umol/L;
creatinine 1 mg/dL = 88.4 umol/L; fibrinogen 1 g/L = 100 mg/dL; CRP 1 mg/dL = 10 mg/L;
enzymes 1 ukat/L = 60 U/L; ferritin 1 ug/L = 1 ng/mL; temperature C = (F - 32) x 5/9;
sodium and potassium 1 mEq/L = 1 mmol/L; calcium 1 mmol/L = 4.008 mg/dL (40.08 g/mol),
ionised calcium 1 mg/dL = 0.2495 mmol/L; magnesium 1 mmol/L = 2.431 mg/dL (24.305 g/mol),
1 mEq/L = 1.2155 mg/dL; glucose 1 mmol/L = 18.016 mg/dL (180.16 g/mol). Magnesium has
no unit-free reading (0.2-1.3 is plausible in mg/dL and in mmol/L): it needs its unit.
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from cartrial.grading import codes


@dataclass(frozen=True)
class FieldSpec:
    """How one input is validated and shown.

    ``kind``: number, int, bool or a category name (``cohort.categories.CATEGORIES``).
    ``lo``/``hi``: the plausible range in the canonical ``unit``. ``units``: other
    accepted units -> (scale, offset) with canonical = value * scale + offset.
    ``ambiguous_above``: without a unit, a value above this is plausible in the
    canonical unit and in ``hint_unit`` with different meanings: refused with both
    readings. ``hint_unit``: the unit a value above ``hi`` (or the ambiguous range)
    is probably in. ``help``: the one help text (CLI, JSON schema, web form).
    """

    kind: str
    lo: float = -math.inf
    hi: float = math.inf
    unit: str = ""
    help: str = ""
    units: Mapping[str, tuple[float, float]] = field(default_factory=dict)
    ambiguous_above: float | None = None
    hint_unit: str | None = None

    def expected(self) -> str:
        if self.kind == "bool":
            return "yes/no (true/false, 1/0)"
        if self.kind in codes.CATEGORIES:
            return "one of " + codes.describe(self.kind)
        what = "a whole number" if self.kind == "int" else "a number"
        unit = f" {self.unit}" if self.unit else ""
        if math.isinf(self.hi):
            return f"{what} >= {self.lo:g}{unit}"
        return f"{what} from {self.lo:g} to {self.hi:g}{unit}"

    @property
    def accepted_units(self) -> tuple[str, ...]:
        return (self.unit, *self.units) if self.unit else ()

    def choices(self) -> tuple[str, ...]:
        return tuple(codes.CATEGORIES[self.kind]) if self.kind in codes.CATEGORIES else ()


_N, _I, _B = "number", "int", "bool"
_COUNT_UNITS = {"cells/uL": (1e-3, 0.0)}
_ENZYME_UNITS = {"IU/L": (1.0, 0.0), "ukat/L": (60.0, 0.0)}
_UMOL_BILI = {"umol/L": (1 / 17.1, 0.0)}
_UMOL_CREAT = {"umol/L": (1 / 88.4, 0.0)}

#: The registry. Ranges are plausible human values in the canonical unit.
FIELDS: dict[str, FieldSpec] = {
    # CRS (ASTCT 2019, CARTOX, Lee 2014)
    "temperature_c": FieldSpec(
        _N, 25, 45, "C", "highest body temperature", {"F": (5 / 9, -32 * 5 / 9)}, None, "F"
    ),
    "fever_masked": FieldSpec(
        _B,
        help="antipyretic or anti-cytokine therapy (tocilizumab, "
        "steroids) given after CRS onset: fever no longer required",
    ),
    "hypotension": FieldSpec(_B, help="hypotension not attributable to another cause"),
    "vasopressors": FieldSpec(
        _I, 0, 10, "drugs", "number of vasopressors, excluding vasopressin", {"n": (1.0, 0.0)}
    ),
    "vasopressin": FieldSpec(_B, help="vasopressin given"),
    "vasopressor_high_dose": FieldSpec(_B, help="high-dose vasopressor (Lee 2014 Table 3)"),
    "hypotension_life_threatening": FieldSpec(_B, help="life-threatening hypotension (CARTOX)"),
    "oxygen": FieldSpec("oxygen", help="oxygen support device"),
    "o2_flow_l_min": FieldSpec(_N, 0, 80, "L/min", "oxygen flow"),
    "fio2": FieldSpec(
        _N,
        0.21,
        1.0,
        "fraction",
        "inspired oxygen fraction (0.21-1.0)",
        {"%": (0.01, 0.0)},
        None,
        "%",
    ),
    "organ_toxicity_grade": FieldSpec(
        _I, 0, 4, "CTCAE grade", "worst CRS-related organ toxicity except transaminitis"
    ),
    "transaminitis_grade": FieldSpec(_I, 0, 4, "CTCAE grade", "CRS-related transaminitis"),
    "constitutional_symptoms": FieldSpec(
        _B,
        help="fever, nausea, fatigue, headache, myalgia, "
        "malaise needing symptomatic treatment only (Lee 2014)",
    ),
    "crs_death": FieldSpec(_B, help="death due to CRS"),
    # ICANS
    "ice_score": FieldSpec(_I, 0, 10, "points", "ICE score (10 points)"),
    "cartox10_score": FieldSpec(_I, 0, 10, "points", "CARTOX-10 score"),
    "capd_score": FieldSpec(_I, 0, 32, "points", "Cornell Assessment of Pediatric Delirium"),
    "consciousness": FieldSpec("consciousness", help="level of consciousness"),
    "seizure": FieldSpec("seizure", help="seizure"),
    "motor_weakness": FieldSpec(_B, help="deep focal motor weakness (hemiparesis, paraparesis)"),
    "cerebral_edema": FieldSpec("cerebral_edema", help="raised ICP / cerebral oedema"),
    "papilledema_stage": FieldSpec(_I, 0, 5, "Frisén stage", "papilloedema stage (CARTOX)"),
    "csf_opening_pressure_mmhg": FieldSpec(_N, 0, 100, "mmHg", "CSF opening pressure (CARTOX)"),
    "icans_death": FieldSpec(_B, help="death due to ICANS"),
    "age_years": FieldSpec(_N, 0, 120, "years", "age in years"),
    # acute GVHD
    "skin_bsa_pct": FieldSpec(
        _N, 0, 100, "% BSA", "active erythematous GVHD rash", {"%": (1.0, 0.0)}
    ),
    "bullae": FieldSpec(_B, help="bullous formation and desquamation > 5% BSA"),
    "bilirubin_mg_dl": FieldSpec(_N, 0, 40, "mg/dL", "total bilirubin", _UMOL_BILI, 25.0, "umol/L"),
    "upper_gi": FieldSpec(_B, help="persistent nausea, vomiting or anorexia"),
    "stool_ml_day": FieldSpec(_N, 0, 20000, "mL/day", "stool volume (3-day average)"),
    "stool_episodes": FieldSpec(
        _I, 0, 60, "episodes/day", "stool episodes per day", {"n": (1.0, 0.0)}
    ),
    "weight_kg": FieldSpec(_N, 0.3, 400, "kg", "body weight"),
    "severe_abdominal_pain": FieldSpec(_B, help="severe abdominal pain with or without ileus"),
    "bloody_stool": FieldSpec(_B, help="grossly bloody stool"),
    "liver_other_cause": FieldSpec(_B, help="another documented cause of hyperbilirubinaemia"),
    "diarrhea_other_cause": FieldSpec(_B, help="another documented cause of diarrhoea"),
    # CTCAE haematology (canonical counts x10^9/L)
    "anc": FieldSpec(
        _N, 0, 100, "10^9/L", "absolute neutrophil count", _COUNT_UNITS, 20.0, "cells/uL"
    ),
    "platelets": FieldSpec(
        _N, 0, 2000, "10^9/L", "platelet count", _COUNT_UNITS, 999.0, "cells/uL"
    ),
    "lymphocytes": FieldSpec(
        _N, 0, 500, "10^9/L", "absolute lymphocyte count", _COUNT_UNITS, 20.0, "cells/uL"
    ),
    "wbc": FieldSpec(
        _N, 0, 500, "10^9/L", "white blood cell count", _COUNT_UNITS, 50.0, "cells/uL"
    ),
    "hemoglobin_g_dl": FieldSpec(
        _N,
        0,
        25,
        "g/dL",
        "haemoglobin",
        {"g/L": (0.1, 0.0), "mmol/L": (1.611, 0.0)},
        None,
        "g/L",
    ),
    "sex": FieldSpec("sex", help="M or F (sets the default reference range)"),
    "life_threatening": FieldSpec(
        _B, help="life-threatening consequences; urgent intervention indicated"
    ),
    "fever_sustained_1h": FieldSpec(_B, help="temperature >= 38 °C sustained > 1 hour"),
    "transfusion_indicated": FieldSpec(_B, help="transfusion indicated (CTCAE anaemia)"),
    "intervention": FieldSpec("intervention", help="intervention the infection needed"),
    "death": FieldSpec(_B, help="death due to the adverse event"),
    # CTCAE chemistry and coagulation (ULN/LLN from the reference ranges)
    "alt_u_l": FieldSpec(_N, 0, 20000, "U/L", "alanine aminotransferase", _ENZYME_UNITS),
    "ast_u_l": FieldSpec(_N, 0, 30000, "U/L", "aspartate aminotransferase", _ENZYME_UNITS),
    "creatinine_mg_dl": FieldSpec(
        _N, 0, 25, "mg/dL", "serum creatinine", _UMOL_CREAT, 15.0, "umol/L"
    ),
    "fibrinogen_mg_dl": FieldSpec(
        _N, 0, 1500, "mg/dL", "fibrinogen", {"g/L": (100.0, 0.0)}, None, None
    ),
    "ferritin_ng_ml": FieldSpec(_N, 0, 500000, "ng/mL", "ferritin", {"ug/L": (1.0, 0.0)}),
    "crp_mg_l": FieldSpec(_N, 0, 1000, "mg/L", "C-reactive protein", {"mg/dL": (10.0, 0.0)}),
    "ldh_u_l": FieldSpec(_N, 0, 50000, "U/L", "lactate dehydrogenase", _ENZYME_UNITS),
    "alt_baseline_u_l": FieldSpec(_N, 0, 20000, "U/L", "ALT at baseline", _ENZYME_UNITS),
    "ast_baseline_u_l": FieldSpec(_N, 0, 30000, "U/L", "AST at baseline", _ENZYME_UNITS),
    "bilirubin_baseline_mg_dl": FieldSpec(
        _N, 0, 40, "mg/dL", "total bilirubin at baseline", _UMOL_BILI, 25.0, "umol/L"
    ),
    "creatinine_baseline_mg_dl": FieldSpec(
        _N, 0, 25, "mg/dL", "creatinine at baseline", _UMOL_CREAT, 15.0, "umol/L"
    ),
    "fibrinogen_baseline_mg_dl": FieldSpec(
        _N, 0, 1500, "mg/dL", "fibrinogen at baseline", {"g/L": (100.0, 0.0)}
    ),
    "ferritin_baseline_ng_ml": FieldSpec(
        _N, 0, 500000, "ng/mL", "ferritin at infusion (IEC-HS baseline)", {"ug/L": (1.0, 0.0)}
    ),
    "hypotension_treatment": FieldSpec(
        "hypotension_treatment", help="what the hypotension needed (CTCAE v5 hypotension)"
    ),
    "hypoxia_treatment": FieldSpec(
        "hypoxia_treatment", help="what the hypoxia needed (CTCAE v5 hypoxia)"
    ),
    "fever_over_24h": FieldSpec(_B, help="temperature > 40.0 °C for more than 24 hours"),
    "stools_over_baseline": FieldSpec(
        _I,
        0,
        60,
        "stools/day",
        "increase in stools per day over baseline (CTCAE diarrhoea)",
        {"n": (1.0, 0.0)},
    ),
    "incontinence": FieldSpec(_B, help="faecal incontinence with the diarrhoea (CTCAE)"),
    "hospitalization_indicated": FieldSpec(
        _B, help="hospitalization indicated for the adverse event (CTCAE)"
    ),
    "adl_limitation": FieldSpec(
        "adl_limitation",
        help="activities of daily living limited by the adverse event (CTCAE): none, "
        "instrumental (meals, shopping, phone, money) or self_care (bathing, dressing, "
        "feeding, toilet, medicines)",
    ),
    "nausea": FieldSpec("nausea", help="nausea, as the CTCAE v5.0 rows describe it"),
    "vomiting": FieldSpec("vomiting", help="what the vomiting needed (CTCAE v5.0 rows)"),
    "headache": FieldSpec(
        "headache",
        help="headache pain: mild; moderate (limiting instrumental ADL); severe "
        "(limiting self care ADL)",
    ),
    "rash_bsa_pct": FieldSpec(
        _N,
        0,
        100,
        "% BSA",
        "body surface area covered by macules/papules (CTCAE rash maculo-papular)",
        {"%": (1.0, 0.0)},
    ),
    "rash_symptoms": FieldSpec(
        "rash_symptoms", help="rash symptoms (pruritus, burning, tightness)"
    ),
    "blood_culture_positive": FieldSpec(_B, help="blood culture positive (CTCAE sepsis)"),
    "sepsis_signs": FieldSpec(_B, help="signs or symptoms of sepsis (CTCAE sepsis)"),
    # IEC-HS (Hines 2023)
    "hemophagocytosis": FieldSpec(_B, help="haemophagocytosis in bone marrow or other tissue"),
    "cytopenia_new_or_worse": FieldSpec(
        _B, help="new-onset, worsening or refractory cytopenias (IEC-HS)"
    ),
    "coagulopathy": FieldSpec(_B, help="other coagulopathy, e.g. raised PT/PTT (IEC-HS)"),
    "iechs_attributable": FieldSpec(
        _B, help="HLH-like manifestations attributable to the IEC therapy (clinician)"
    ),
    "iechs_other_cause": FieldSpec(
        _B, help="manifestations explained by another cause (clinician; excludes IEC-HS)"
    ),
    "iechs_grade": FieldSpec(
        _I, 0, 5, "grade", "IEC-HS grade assessed by the clinician (Hines 2023 grading table)"
    ),
    # IEC-HS grading (Hines 2023 grading table: interventions and consequences)
    "iechs_immunosuppression": FieldSpec(
        _B, help="immunosuppressive agents given for IEC-HS (e.g. anakinra, steroids)"
    ),
    "fibrinogen_replacement": FieldSpec(
        _B, help="transfusion (cryoprecipitate/fibrinogen) for hypofibrinogenaemia"
    ),
    "bleeding_transfusion": FieldSpec(_B, help="coagulopathy with bleeding requiring transfusion"),
    "bleeding_life_threatening": FieldSpec(_B, help="life-threatening bleeding"),
    "aki_new": FieldSpec(_B, help="new-onset acute kidney injury"),
    "dialysis": FieldSpec(_B, help="renal failure requiring dialysis"),
    # CTCAE v5.0 electrolytes and glucose (LLN/ULN from the reference ranges)
    "sodium_mmol_l": FieldSpec(_N, 80, 200, "mmol/L", "serum sodium", {"mEq/L": (1.0, 0.0)}),
    "potassium_mmol_l": FieldSpec(
        _N, 1.0, 10.0, "mmol/L", "serum potassium", {"mEq/L": (1.0, 0.0)}
    ),
    "calcium_corrected_mg_dl": FieldSpec(
        _N,
        3.6,
        20.0,
        "mg/dL",
        "serum calcium corrected for albumin",
        {"mmol/L": (4.008, 0.0)},
        None,
        "mmol/L",
    ),
    "calcium_ionized_mmol_l": FieldSpec(
        _N, 0.2, 3.0, "mmol/L", "ionised calcium", {"mg/dL": (0.2495, 0.0)}, None, "mg/dL"
    ),
    "magnesium_mg_dl": FieldSpec(
        _N,
        0.2,
        12.0,
        "mg/dL",
        "serum magnesium (needs its unit: mg/dL and mmol/L overlap)",
        {"mmol/L": (2.431, 0.0), "mEq/L": (1.2155, 0.0)},
        0.0,
        "mmol/L",
    ),
    "glucose_mmol_l": FieldSpec(
        _N, 0.5, 60.0, "mmol/L", "blood glucose", {"mg/dL": (1 / 18.016, 0.0)}, 15.0, "mg/dL"
    ),
    "symptomatic": FieldSpec(_B, help="symptoms attributable to the laboratory abnormality"),
    "intervention_indicated": FieldSpec(
        _B, help="intervention (e.g. replacement) indicated or initiated for the abnormality"
    ),
    "phosphate_replacement": FieldSpec(
        "phosphate_replacement", help="what the hypophosphataemia needed (CTCAE v5.0 rows)"
    ),
    "seizure_ctcae": FieldSpec(
        "seizure_ctcae", help="seizure as the CTCAE v5.0 Seizure rows describe it"
    ),
    "encephalopathy": FieldSpec(
        "encephalopathy", help="encephalopathy as the CTCAE v5.0 rows describe it"
    ),
}

#: other names accepted for a field (the bedside's own words and both spellings)
FIELD_ALIASES: dict[str, str] = {
    "anticytokine_given": "fever_masked",
    "temperature": "temperature_c",
    "temp": "temperature_c",
    "temp_c": "temperature_c",
    "o2_flow": "o2_flow_l_min",
    "oxygen_flow": "o2_flow_l_min",
    "bilirubin": "bilirubin_mg_dl",
    "weight": "weight_kg",
    "hemoglobin": "hemoglobin_g_dl",
    "haemoglobin": "hemoglobin_g_dl",
    "haemoglobin_g_dl": "hemoglobin_g_dl",
    "hb": "hemoglobin_g_dl",
    "cerebral_oedema": "cerebral_edema",
    "papilloedema_stage": "papilledema_stage",
    "haemophagocytosis": "hemophagocytosis",
    "diarrhoea_other_cause": "diarrhea_other_cause",
    "hospitalisation_indicated": "hospitalization_indicated",
    "adl": "adl_limitation",
    "age": "age_years",
    "neutrophils": "anc",
    "plt": "platelets",
    "alc": "lymphocytes",
    "alt": "alt_u_l",
    "ast": "ast_u_l",
    "creatinine": "creatinine_mg_dl",
    "fibrinogen": "fibrinogen_mg_dl",
    "ferritin": "ferritin_ng_ml",
    "crp": "crp_mg_l",
    "ldh": "ldh_u_l",
    "sodium": "sodium_mmol_l",
    "na": "sodium_mmol_l",
    "potassium": "potassium_mmol_l",
    "k": "potassium_mmol_l",
    "corrected_calcium": "calcium_corrected_mg_dl",
    "calcium_corrected": "calcium_corrected_mg_dl",
    "ionised_calcium": "calcium_ionized_mmol_l",
    "ionized_calcium": "calcium_ionized_mmol_l",
    "calcium_ionised_mmol_l": "calcium_ionized_mmol_l",
    "magnesium": "magnesium_mg_dl",
    "mg": "magnesium_mg_dl",
    "glucose": "glucose_mmol_l",
    "blood_glucose": "glucose_mmol_l",
    "haemophagocytosis_present": "hemophagocytosis",
    "hospitalisation": "hospitalization_indicated",
    "aki": "aki_new",
    "haemodialysis": "dialysis",
    "hemodialysis": "dialysis",
    "cryoprecipitate": "fibrinogen_replacement",
}

#: unit spellings (folded by ``unit_key``) -> the unit names used in ``FieldSpec``
UNIT_SPELLINGS: dict[str, tuple[str, ...]] = {
    "10^9/L": (
        "10^9/l",
        "x10^9/l",
        "10^9 /l",
        "10e9/l",
        "x10e9/l",
        "giga/l",
        "g/l",
        "10^3/ul",
        "x10^3/ul",
        "k/ul",
        "10^3/mm3",
        "thou/ul",
    ),
    "cells/uL": ("cells/ul", "/ul", "cells/mm3", "/mm3", "per ul", "cells per ul", "/microl"),
    "g/dL": ("g/dl", "g%"),
    "g/L": ("g/l",),
    "mmol/L": ("mmol/l",),
    "C": ("c", "celsius", "degc", "centigrade"),
    "F": ("f", "fahrenheit", "degf"),
    "mg/dL": ("mg/dl", "mg%"),
    "umol/L": ("umol/l", "micromol/l", "mcmol/l"),
    "U/L": ("u/l", "units/l"),
    "IU/L": ("iu/l",),
    "ukat/L": ("ukat/l", "microkat/l"),
    "ng/mL": ("ng/ml",),
    "ug/L": ("ug/l", "mcg/l"),
    "mg/L": ("mg/l",),
    "n": ("count", "number"),
    "%": ("percent", "pct"),
    "points": ("score", "pts"),
    "L/min": ("l/min", "lpm"),
    "mL/day": ("ml/day", "ml/d"),
    "mEq/L": ("meq/l",),
}


def unit_key(text: object) -> str:
    """Fold a unit spelling: lower case, micro/times/superscripts spelled plainly,
    no blanks or degree signs ("×10⁹/L" -> "x10^9/l", "µmol/L" -> "umol/l")."""
    t = str(text).strip().lower()
    for a, b in (("µ", "u"), ("μ", "u"), ("×", "x"), ("⁹", "^9"), ("³", "3"), ("°", "")):
        t = t.replace(a, b)
    t = t.replace("**", "^").replace("*", "^").replace("deg ", "deg")
    t = re.sub(r"\s+", "", t)
    t = t.replace("10^9l", "10^9/l")
    return t.removeprefix("x") if t.startswith("x10") else t


def resolve_unit(name: str, unit: object) -> str | None:
    """The unit name of field ``name`` that ``unit`` spells, or None if not accepted."""
    spec = FIELDS[name]
    key = unit_key(unit)
    for u in spec.accepted_units:
        spellings = {unit_key(u), *(unit_key(s) for s in UNIT_SPELLINGS.get(u, ()))}
        if key in spellings:
            return u
    return None


def to_canonical(name: str, value: float, unit: str) -> float:
    """``value`` in ``unit`` (an accepted unit name of ``name``) in the canonical unit."""
    spec = FIELDS[name]
    if unit == spec.unit:
        return value
    scale, offset = spec.units[unit]
    return value * scale + offset


def from_canonical(name: str, value: float, unit: str) -> float:
    spec = FIELDS[name]
    if unit == spec.unit:
        return value
    scale, offset = spec.units[unit]
    return (value - offset) / scale


_NUMBER_UNIT = re.compile(r"^\s*([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*(.*?)\s*$")


def split_value_unit(text: str) -> tuple[str, str | None]:
    """ "150 cells/uL" -> ("150", "cells/uL"); "38.5" -> ("38.5", None)."""
    m = _NUMBER_UNIT.match(text)
    if not m or not m.group(2):
        return text, None
    return m.group(1), m.group(2)


def canonical_field(name: object) -> str | None:
    """The registry name of ``name`` (aliases, both spellings, any case), or None."""
    key = re.sub(r"[\s\-]+", "_", str(name).strip().lower())
    if key in FIELDS:
        return key
    return FIELD_ALIASES.get(key)


def suggest_field(name: object, names: Iterable[str] | None = None) -> str | None:
    """The nearest known field name to a misspelt one ("temprature" -> temperature_c)."""
    key = re.sub(r"[\s\-]+", "_", str(name).strip().lower())
    pool = list(names) if names is not None else [*FIELDS, *FIELD_ALIASES]
    close = difflib.get_close_matches(key, pool, n=1, cutoff=0.6)
    if not close:
        return None
    return FIELD_ALIASES.get(close[0], close[0]) if names is None else close[0]


# -- generators: CLI options, JSON model, web form -------------------------------------


def option_help(name: str) -> str:
    """The CLI/JSON/web help text of ``name``: help, unit, range and accepted words."""
    spec = FIELDS[name]
    parts = [spec.help[:1].upper() + spec.help[1:] if spec.help else name.replace("_", " ")]
    if spec.kind in (_N, _I):
        rng = f"{spec.lo:g}-{spec.hi:g}" if not math.isinf(spec.hi) else f">= {spec.lo:g}"
        parts.append(f"{rng} {spec.unit}".strip())
        if spec.units:
            parts.append("or with a unit: " + ", ".join(spec.units))
    elif spec.kind in codes.CATEGORIES:
        parts.append(", ".join(spec.choices()))
    return "; ".join(parts) + "."


def cli_option(name: str):
    """A Typer option for ``name`` (``--temperature-c``; booleans as ``--x/--no-x``)."""
    import typer

    flag = "--" + name.replace("_", "-")
    spec = FIELDS[name]
    if spec.kind == _B:
        return typer.Option(flag + "/--no-" + flag[2:], help=option_help(name))
    return typer.Option(flag, help=option_help(name))


def python_type(name: str) -> type:
    """The Python type a CLI option / JSON field of ``name`` takes (numbers with a unit
    are text, e.g. "101.3 F")."""
    spec = FIELDS[name]
    if spec.kind == _B:
        return bool
    if spec.kind == _I:
        return int
    if spec.kind == _N:
        return float | str if spec.units else float  # type: ignore[return-value]
    return str


def pydantic_model(model_name: str, names: Iterable[str]):
    """A pydantic model of the JSON API with the given fields, all optional (omitted =
    unknown), each with the registry's type, range (numbers without a unit) and help."""
    from pydantic import ConfigDict, Field, create_model

    fields: dict[str, Any] = {}
    for n in names:
        spec = FIELDS[n]
        t = python_type(n)
        kw: dict[str, Any] = {"default": None, "description": option_help(n)}
        if spec.kind in (_N, _I) and not spec.units:
            kw["ge"] = spec.lo
            if not math.isinf(spec.hi):
                kw["le"] = spec.hi
        fields[n] = (t | None, Field(**kw))
    return create_model(model_name, __config__=ConfigDict(extra="forbid"), **fields)


@dataclass(frozen=True)
class FormField:
    """One input of the web bedside form, generated from the registry."""

    name: str
    label: str
    input: str  # number, select, yesno
    unit: str
    lo: float | None
    hi: float | None
    step: str | None
    choices: tuple[str, ...]
    help: str


def form_field(name: str, label: str | None = None) -> FormField:
    spec = FIELDS[name]
    if spec.kind == _B:
        kind = "yesno"
    elif spec.kind in codes.CATEGORIES:
        kind = "select"
    else:
        kind = "number"
    return FormField(
        name,
        label or (spec.help[:1].upper() + spec.help[1:] if spec.help else name),
        kind,
        spec.unit,
        None if kind != "number" else spec.lo,
        None if kind != "number" or math.isinf(spec.hi) else spec.hi,
        None if kind != "number" else ("1" if spec.kind == _I else "any"),
        spec.choices(),
        option_help(name),
    )


def form_fields(names: Iterable[str]) -> list[FormField]:
    """The web form inputs for ``names`` (in that order)."""
    return [form_field(n) for n in names]


def limits(name: str) -> tuple[float, float, bool]:
    """(lowest, highest, whole numbers only) of a numeric field, for form checks."""
    spec = FIELDS[name]
    return spec.lo, spec.hi, spec.kind == _I


#: the inputs of the web bedside form (CRS and ICANS sections), in display order; the ICE
#: items are summed by ``grading.icans.ice_score_from_items``
BEDSIDE_CRS = (
    "temperature_c",
    "hypotension",
    "vasopressors",
    "vasopressin",
    "oxygen",
    "o2_flow_l_min",
)
BEDSIDE_ICANS = ("consciousness", "seizure", "motor_weakness", "cerebral_edema")
#: the IEC-HS section (identification findings, attribution, and the items of the grading
#: table; vasopressors, vasopressin and oxygen come from the CRS section)
BEDSIDE_IECHS = (
    "ferritin_ng_ml",
    "ferritin_baseline_ng_ml",
    "alt_u_l",
    "ast_u_l",
    "fibrinogen_mg_dl",
    "hemophagocytosis",
    "cytopenia_new_or_worse",
    "coagulopathy",
    "iechs_attributable",
    "iechs_other_cause",
    "iechs_immunosuppression",
    "fibrinogen_replacement",
    "bleeding_transfusion",
    "aki_new",
    "hospitalization_indicated",
    "bleeding_life_threatening",
    "dialysis",
    "iechs_grade",
)
BEDSIDE_FORM = (*BEDSIDE_CRS, "ice_score", *BEDSIDE_ICANS, "age_years", *BEDSIDE_IECHS)
