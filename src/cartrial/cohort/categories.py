"""Integer codes for the categorical grading observations.

The cohort ``observations`` table stores ``value`` as a float, so a categorical analyte
(oxygen device, level of consciousness, seizure, cerebral oedema …) is stored either as
its integer code below in ``value`` or as the word in an optional ``value_text`` column
(the word wins when both are given and they must agree). The same codes are accepted by
every grading function and by the CLI.

The codes are ordered by severity within each criterion set so that a larger code is
never a milder finding (except the CARTOX-only seizure/oedema subtypes, which each
engine maps explicitly). They are part of the data contract: never renumber them.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping

#: Oxygen support (ASTCT 2019 CRS hypoxia column, Lee et al. BBMT 2019;25:625).
OXYGEN: dict[str, int] = {
    "none": 0,
    "blow_by": 1,
    "low_flow": 2,
    "high_flow": 3,
    "facemask": 4,
    "nonrebreather": 5,
    "venturi": 6,
    "cpap": 7,
    "bipap": 8,
    "mechanical_ventilation": 9,
}
#: Depressed level of consciousness (ASTCT 2019 ICANS table). ``alert`` is the normal
#: state (grade 0); ``awakens_spontaneously`` is the grade-1 row of the table (a drowsy
#: patient who wakes without stimulus).
CONSCIOUSNESS: dict[str, int] = {
    "alert": 0,
    "awakens_spontaneously": 1,
    "awakens_to_voice": 2,
    "awakens_to_touch": 3,
    "unarousable": 4,
}
#: Seizures. 1-4 are the ASTCT 2019 wording; 5-7 are the CARTOX (Neelapu 2018) wording.
SEIZURE: dict[str, int] = {
    "none": 0,
    "rapid_resolving": 1,  # any clinical seizure, focal or generalised, resolving rapidly
    "nonconvulsive_resolving": 2,  # non-convulsive EEG seizures resolving with intervention
    "prolonged": 3,  # life-threatening prolonged seizure > 5 min
    "repetitive": 4,  # repetitive seizures without return to baseline in between
    "focal": 5,  # CARTOX "partial seizure" (course not stated)
    "generalized": 6,  # CARTOX "generalised seizure" (course not stated)
    "status_epilepticus": 7,  # convulsive or non-convulsive status epilepticus
}
#: Raised intracranial pressure / cerebral oedema (ASTCT 2019 ICANS table).
CEREBRAL_EDEMA: dict[str, int] = {
    "none": 0,
    "focal": 1,  # focal/local oedema on neuroimaging (grade 3)
    "diffuse": 2,  # diffuse oedema on neuroimaging (grade 4)
    "posturing": 3,  # decerebrate or decorticate posturing (grade 4)
    "cranial_nerve_vi_palsy": 4,  # (grade 4)
    "papilledema": 5,  # (grade 4)
    "cushings_triad": 6,  # (grade 4)
}
#: Intervention an infection needed (CTCAE v5.0 "Infections and infestations" grades).
INFECTION: dict[str, int] = {
    "local": 1,
    "oral": 2,
    "iv": 3,
    "invasive": 4,
    "life_threatening": 5,
    "death": 6,
}

#: Sex, only used to pick the default haemoglobin lower limit of normal (CTCAE anaemia).
SEX: dict[str, int] = {"F": 0, "M": 1}

CATEGORIES: dict[str, dict[str, int]] = {
    "sex": SEX,
    "oxygen": OXYGEN,
    "consciousness": CONSCIOUSNESS,
    "seizure": SEIZURE,
    "cerebral_edema": CEREBRAL_EDEMA,
    "intervention": INFECTION,
}

#: spellings people (and the web form) use, folded like ``_key`` does
ALIASES: dict[str, dict[str, str]] = {
    "sex": {"female": "F", "male": "M", "woman": "F", "man": "M", "girl": "F", "boy": "M"},
    "oxygen": {
        "room air": "none",
        "ra": "none",
        "no oxygen": "none",
        "no": "none",
        "blow by": "blow_by",
        "blowby": "blow_by",
        "low flow": "low_flow",
        "lfnc": "low_flow",
        "low flow nasal cannula": "low_flow",
        "high flow": "high_flow",
        "hfnc": "high_flow",
        "high flow nasal cannula": "high_flow",
        "face mask": "facemask",
        "simple face mask": "facemask",
        "simple mask": "facemask",
        "nrb": "nonrebreather",
        "non rebreather": "nonrebreather",
        "nonrebreather mask": "nonrebreather",
        "non rebreather mask": "nonrebreather",
        "venturi mask": "venturi",
        "intubated": "mechanical_ventilation",
        "intubation": "mechanical_ventilation",
        "ventilator": "mechanical_ventilation",
        "mv": "mechanical_ventilation",
        "invasive ventilation": "mechanical_ventilation",
        # the bedside's own words (issue 11); a nasal cannula's flow, when given,
        # decides low- vs high-flow (ASTCT 2019 Table 3 footnote)
        "nasal cannula": "low_flow",
        "nc": "low_flow",
        "nasal prongs": "low_flow",
        "hfno": "high_flow",
        "optiflow": "high_flow",
        "niv": "bipap",
        "non invasive ventilation": "bipap",
        "noninvasive ventilation": "bipap",
        "ett": "mechanical_ventilation",
        "ecmo": "mechanical_ventilation",  # beyond positive pressure: ASTCT grade 4
    },
    "consciousness": {
        "awake": "alert",
        "normal": "alert",
        "a": "alert",
        "spontaneous": "awakens_spontaneously",
        "drowsy": "awakens_spontaneously",
        "voice": "awakens_to_voice",
        "tactile": "awakens_to_touch",
        "touch": "awakens_to_touch",
        "awakens only to tactile stimulus": "awakens_to_touch",
        "awakens to tactile": "awakens_to_touch",
        "stupor": "unarousable",
        "coma": "unarousable",
    },
    "seizure": {
        "no": "none",
        "rapid": "rapid_resolving",
        "resolved": "rapid_resolving",
        "nonconvulsive": "nonconvulsive_resolving",
        "non convulsive": "nonconvulsive_resolving",
        "partial": "focal",
        "generalised": "generalized",
        "status": "status_epilepticus",
        "tonic clonic": "generalized",
        "generalised tonic clonic": "generalized",
        "generalized tonic clonic": "generalized",
        "gtc": "generalized",
        "gtcs": "generalized",
        "convulsive": "generalized",
        "convulsion": "generalized",
        "focal seizure": "focal",
        "ncse": "status_epilepticus",
        "non convulsive status": "status_epilepticus",
        "nonconvulsive status": "status_epilepticus",
        "non convulsive status epilepticus": "status_epilepticus",
        "nonconvulsive status epilepticus": "status_epilepticus",
    },
    "cerebral_edema": {
        "no": "none",
        "local": "focal",
        "focal oedema": "focal",
        "diffuse oedema": "diffuse",
        "decerebrate": "posturing",
        "decorticate": "posturing",
        "cn vi palsy": "cranial_nerve_vi_palsy",
        "papilloedema": "papilledema",
        "cushing": "cushings_triad",
        "cushing's triad": "cushings_triad",
    },
    "intervention": {
        "topical": "local",
        "po": "oral",
        "oral antibiotics": "oral",
        "intravenous": "iv",
        "iv antibiotics": "iv",
        "surgery": "invasive",
        "drainage": "invasive",
        "life threatening": "life_threatening",
        "icu": "life_threatening",
        "fatal": "death",
    },
}


def _key(text: str) -> str:
    return re.sub(r"[\s_\-]+", " ", str(text).strip().lower())


def encode(category: str, value: object) -> float:
    """Return the float code of ``value`` (a word, alias or code) in ``category``.

    NaN means unknown. Raises ``KeyError`` for a word or code that is not in the
    vocabulary (the caller turns it into a ``GradingInputError``).
    """
    table = CATEGORIES[category]
    if value is None:
        return math.nan
    if isinstance(value, bool):
        raise KeyError(value)
    if isinstance(value, int | float):
        if isinstance(value, float) and math.isnan(value):
            return math.nan
        if float(value).is_integer() and int(value) in table.values():
            return float(value)
        raise KeyError(value)
    text = _key(str(value))
    if text in ("", "nan", "na", "<na>", "unknown", "not done", "missing"):
        return math.nan
    folded = {_key(k): v for k, v in table.items()}
    if text in folded:
        return float(folded[text])
    alias = ALIASES.get(category, {}).get(text)
    if alias is not None:
        return float(table[alias])
    try:
        number = float(text)
    except ValueError:
        raise KeyError(value) from None
    return encode(category, number)


def decode(
    category: str, code: float, categories: Mapping[str, Mapping[str, int]] = CATEGORIES
) -> str | None:
    """The word for ``code`` in ``category`` (None for NaN); ``categories`` lets a layer
    above (grading) pass its extended tables."""
    if code is None or (isinstance(code, float) and math.isnan(code)):
        return None
    for word, number in categories[category].items():
        if number == int(code):
            return word
    raise KeyError(code)


def describe(category: str, categories: Mapping[str, Mapping[str, int]] = CATEGORIES) -> str:
    """``word (code)`` list for error messages and help text."""
    return ", ".join(f"{w} ({c})" for w, c in categories[category].items())


def lookup_table(category: str) -> Mapping[str, int]:
    """Every accepted spelling (folded) -> code, for vectorised text columns."""
    table = CATEGORIES[category]
    out = {_key(k): v for k, v in table.items()}
    for alias, word in ALIASES.get(category, {}).items():
        out[alias] = table[word]
    return out
