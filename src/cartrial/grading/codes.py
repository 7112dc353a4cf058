"""Integer codes of the categorical grading observations, and the bedside's own words.

The cohort categories (oxygen, consciousness, seizure, cerebral oedema, infection
intervention, sex) are part of the cohort contract (the loader checks the words), so they
live in ``cartrial.cohort.categories``; this module re-exports them and adds the
grading-only vocabularies (CTCAE v5 hypotension and hypoxia interventions).

Words that the criteria cannot place without more information are answered with a
question instead of a guess (``QUESTIONS``): "obtunded" does not say which stimulus
wakes the patient, and the ASTCT 2019 ICANS consciousness rows are defined by exactly
that. A word that is not known gets the nearest allowed words ("did you mean ...?").
British and American spellings are folded (``american``) before every lookup.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Mapping

from cartrial.cohort import categories as _cohort
from cartrial.cohort.categories import (  # noqa: F401
    CEREBRAL_EDEMA,
    CONSCIOUSNESS,
    INFECTION,
    OXYGEN,
    SEIZURE,
    SEX,
    _key,
)
from cartrial.cohort.vocab import american

#: CTCAE v5.0 Hypotension (Vascular disorders): 1 asymptomatic, intervention not
#: indicated; 2 non-urgent medical intervention indicated; 3 medical intervention
#: indicated, hospitalization indicated; 4 life-threatening consequences, urgent
#: intervention indicated; 5 death.
HYPOTENSION_TREATMENT: dict[str, int] = {
    "none": 0,
    "not_indicated": 1,
    "non_urgent": 2,
    "hospitalization": 3,
    "urgent": 4,
    "death": 5,
}
#: CTCAE v5.0 Hypoxia (Respiratory): 2 decreased oxygen saturation with exercise,
#: intermittent supplemental oxygen; 3 decreased oxygen saturation at rest; 4
#: life-threatening airway compromise, urgent intervention (e.g. intubation); 5 death.
HYPOXIA_TREATMENT: dict[str, int] = {
    "none": 0,
    "with_exercise": 2,
    "at_rest": 3,
    "urgent_airway": 4,
    "death": 5,
}

#: CTCAE v5.0 activities of daily living limited by the AE (the "limiting instrumental
#: ADL" / "limiting self care ADL" qualifiers of grades 2 and 3 of many terms)
ADL_LIMITATION: dict[str, int] = {"none": 0, "instrumental": 1, "self_care": 2}
#: CTCAE v5.0 Nausea (Gastrointestinal disorders): 1 loss of appetite without alteration
#: in eating habits; 2 oral intake decreased without significant weight loss, dehydration
#: or malnutrition; 3 inadequate oral caloric or fluid intake; tube feeding, TPN, or
#: hospitalization indicated (no grades 4-5). Code = grade.
NAUSEA: dict[str, int] = {
    "none": 0,
    "appetite_loss": 1,
    "intake_decreased": 2,
    "inadequate_intake": 3,
}
#: CTCAE v5.0 Vomiting (Gastrointestinal disorders): 1 intervention not indicated; 2
#: outpatient IV hydration; medical intervention indicated; 3 tube feeding, TPN, or
#: hospitalization indicated; 4 life-threatening consequences; 5 death (the ``death``
#: field). Code = grade.
VOMITING: dict[str, int] = {
    "none": 0,
    "no_intervention": 1,
    "outpatient_iv": 2,
    "tube_tpn_hospital": 3,
    "life_threatening": 4,
}
#: CTCAE v5.0 Headache (Nervous system disorders): 1 mild pain; 2 moderate pain;
#: limiting instrumental ADL; 3 severe pain; limiting self care ADL (no grades 4-5).
HEADACHE: dict[str, int] = {"none": 0, "mild": 1, "moderate": 2, "severe": 3}
#: symptoms of a maculo-papular rash (pruritus, burning, tightness), CTCAE v5.0 Rash
#: maculo-papular: > 30% BSA with moderate or severe symptoms is grade 3
RASH_SYMPTOMS: dict[str, int] = {"none": 0, "mild": 1, "moderate": 2, "severe": 3}

#: CTCAE v5.0 Hypophosphatemia (Metabolism and nutrition disorders), graded in v5.0 by
#: what it needed, not by the phosphate level: 1 laboratory finding only, intervention
#: not indicated; 2 oral replacement therapy indicated; 3 severe or medically
#: significant, hospitalization or prolongation of hospitalization indicated; 4
#: life-threatening consequences, urgent intervention indicated. Code = grade.
PHOSPHATE_REPLACEMENT: dict[str, int] = {
    "none": 0,
    "lab_finding_only": 1,
    "oral_replacement": 2,
    "hospitalization": 3,
    "life_threatening": 4,
}
#: CTCAE v5.0 Seizure (Nervous system disorders): 1 brief partial seizure, no loss of
#: consciousness; 2 brief generalized seizure; 3 new onset seizures (partial or
#: generalized), multiple seizures despite medical intervention; 4 life-threatening
#: consequences, prolonged repetitive seizures; 5 death. Code = grade.
SEIZURE_CTCAE: dict[str, int] = {
    "none": 0,
    "brief_partial": 1,
    "brief_generalized": 2,
    "new_or_multiple": 3,
    "prolonged_repetitive": 4,
}
#: CTCAE v5.0 Encephalopathy (Nervous system disorders): 1 mild symptoms; 2 moderate
#: symptoms, limiting instrumental ADL; 3 severe symptoms, limiting self care ADL; 4
#: life-threatening consequences, urgent intervention indicated; 5 death. Code = grade.
ENCEPHALOPATHY: dict[str, int] = {
    "none": 0,
    "mild": 1,
    "moderate": 2,
    "severe": 3,
    "life_threatening": 4,
}

CATEGORIES: dict[str, dict[str, int]] = {
    **_cohort.CATEGORIES,
    "hypotension_treatment": HYPOTENSION_TREATMENT,
    "hypoxia_treatment": HYPOXIA_TREATMENT,
    "adl_limitation": ADL_LIMITATION,
    "nausea": NAUSEA,
    "vomiting": VOMITING,
    "headache": HEADACHE,
    "rash_symptoms": RASH_SYMPTOMS,
    "phosphate_replacement": PHOSPHATE_REPLACEMENT,
    "seizure_ctcae": SEIZURE_CTCAE,
    "encephalopathy": ENCEPHALOPATHY,
}
ALIASES: dict[str, dict[str, str]] = {
    **_cohort.ALIASES,
    "hypotension_treatment": {
        "no": "none",
        "asymptomatic": "not_indicated",
        "non urgent": "non_urgent",
        "fluids": "non_urgent",
        "hospitalisation": "hospitalization",
        "admission": "hospitalization",
        "vasopressors": "urgent",
        "pressors": "urgent",
        "life threatening": "urgent",
    },
    "adl_limitation": {
        "no": "none",
        "iadl": "instrumental",
        "instrumental adl": "instrumental",
        "limiting instrumental adl": "instrumental",
        "self care": "self_care",
        "selfcare": "self_care",
        "self care adl": "self_care",
        "limiting self care adl": "self_care",
        "basic adl": "self_care",
    },
    "nausea": {
        "no": "none",
        "anorexia": "appetite_loss",
        "loss of appetite": "appetite_loss",
        "reduced intake": "intake_decreased",
        "decreased intake": "intake_decreased",
        "eating less": "intake_decreased",
        "inadequate intake": "inadequate_intake",
        "tube feeding": "inadequate_intake",
        "tpn": "inadequate_intake",
        "hospitalization": "inadequate_intake",
        "hospitalisation": "inadequate_intake",
    },
    "vomiting": {
        "no": "none",
        "not indicated": "no_intervention",
        "intervention not indicated": "no_intervention",
        "outpatient iv hydration": "outpatient_iv",
        "iv fluids": "outpatient_iv",
        "antiemetics": "outpatient_iv",
        "medical intervention": "outpatient_iv",
        "tube feeding": "tube_tpn_hospital",
        "tpn": "tube_tpn_hospital",
        "hospitalization": "tube_tpn_hospital",
        "hospitalisation": "tube_tpn_hospital",
        "urgent": "life_threatening",
    },
    "headache": {
        "no": "none",
        "mild pain": "mild",
        "moderate pain": "moderate",
        "severe pain": "severe",
    },
    "rash_symptoms": {"no": "none", "asymptomatic": "none"},
    "phosphate_replacement": {
        "no": "none",
        "lab only": "lab_finding_only",
        "laboratory finding only": "lab_finding_only",
        "oral": "oral_replacement",
        "oral replacement": "oral_replacement",
        "hospitalisation": "hospitalization",
        "iv replacement": "hospitalization",
        "urgent": "life_threatening",
    },
    "seizure_ctcae": {
        "no": "none",
        "brief partial": "brief_partial",
        "brief focal": "brief_partial",
        "brief generalised": "brief_generalized",
        "brief tonic clonic": "brief_generalized",
        "brief gtc": "brief_generalized",
        "new": "new_or_multiple",
        "new onset": "new_or_multiple",
        "first seizure": "new_or_multiple",
        "multiple": "new_or_multiple",
        "multiple despite treatment": "new_or_multiple",
        "refractory": "new_or_multiple",
        "status epilepticus": "prolonged_repetitive",
        "status": "prolonged_repetitive",
        "ncse": "prolonged_repetitive",
        "non convulsive status": "prolonged_repetitive",
        "nonconvulsive status": "prolonged_repetitive",
        "prolonged": "prolonged_repetitive",
        "repetitive": "prolonged_repetitive",
    },
    "encephalopathy": {
        "no": "none",
        "mild symptoms": "mild",
        "moderate symptoms": "moderate",
        "severe symptoms": "severe",
        "urgent": "life_threatening",
        "life threatening": "life_threatening",
    },
    "hypoxia_treatment": {
        "no": "none",
        "exercise": "with_exercise",
        "intermittent oxygen": "with_exercise",
        "rest": "at_rest",
        "intubation": "urgent_airway",
        "intubated": "urgent_airway",
        "life threatening": "urgent_airway",
    },
}

#: words the criteria cannot place: category -> word -> (why, the allowed words to ask)
QUESTIONS: dict[str, dict[str, tuple[str, tuple[str, ...]]]] = {
    "consciousness": {
        w: (
            f"'{w}' does not say what wakes the patient, which is what the ASTCT 2019 "
            "ICANS consciousness rows grade",
            ("awakens_spontaneously", "awakens_to_voice", "awakens_to_touch", "unarousable"),
        )
        for w in ("somnolent", "obtunded", "lethargic", "sleepy", "confused")
    },
    "seizure": {
        w: (
            f"'{w}' does not say whether the seizure resolved rapidly, was prolonged "
            "(> 5 min) or repetitive, which the ASTCT 2019 ICANS seizure rows grade",
            ("rapid_resolving", "prolonged", "repetitive", "generalized"),
        )
        for w in ("yes", "seizure", "fit", "seizures")
    },
    "seizure_ctcae": {
        w: (
            f"'{w}' does not say whether the seizure was new onset (CTCAE v5.0 grade 3) or "
            "brief in a known seizure disorder (partial 1, generalized 2)",
            ("brief_partial", "brief_generalized", "new_or_multiple", "prolonged_repetitive"),
        )
        for w in (
            "yes",
            "seizure",
            "fit",
            "focal",
            "partial",
            "generalized",
            "tonic clonic",
            "gtc",
            "convulsive",
        )
    },
    "encephalopathy": {
        w: (
            f"'{w}' does not say how severe the encephalopathy is or which activities of "
            "daily living it limits, which the CTCAE v5.0 Encephalopathy rows grade",
            ("mild", "moderate", "severe", "life_threatening"),
        )
        for w in ("confused", "somnolent", "obtunded", "lethargic", "yes")
    },
}


class UnknownWord(KeyError):
    """A word not in a vocabulary; ``message`` says why and what to write instead."""

    def __init__(self, value: object, message: str):
        super().__init__(value)
        self.value = value
        self.message = message


def lookup_table(category: str) -> Mapping[str, int]:
    """Every accepted spelling (folded, British spellings folded too) -> code."""
    table = CATEGORIES[category]
    out = {_key(k): v for k, v in table.items()}
    for alias, word in ALIASES.get(category, {}).items():
        out[_key(alias)] = table[word]
    return out


def encode(category: str, value: object) -> float:
    """The float code of ``value`` (a word, alias, British spelling or code) in
    ``category``; NaN for unknown. Raises ``UnknownWord`` with a question for a word the
    criteria cannot place, or the nearest allowed words for an unknown one."""
    table = CATEGORIES[category]
    if value is None:
        return math.nan
    if isinstance(value, bool):
        raise UnknownWord(value, "a word or code, not true/false")
    if isinstance(value, int | float):
        if isinstance(value, float) and math.isnan(value):
            return math.nan
        if float(value).is_integer() and int(value) in table.values():
            return float(value)
        raise UnknownWord(value, f"a code among {sorted(table.values())}")
    text = _key(str(value))
    if text in ("", "nan", "na", "<na>", "unknown", "not done", "missing"):
        return math.nan
    lookup = lookup_table(category)
    for candidate in (text, _key(american(text))):
        if candidate in lookup:
            return float(lookup[candidate])
    asked = QUESTIONS.get(category, {})
    question = asked.get(text) or asked.get(_key(american(text)))
    if question is not None:
        why, options = question
        raise UnknownWord(value, f"a precise word: {why}. Which is it: {', '.join(options)}?")
    try:
        number = float(text)
    except ValueError:
        near = difflib.get_close_matches(text, list(lookup), n=3, cutoff=0.6)
        words = []
        for n in near:
            word = decode(category, lookup[n])
            if word is not None and word not in words:
                words.append(word)
        hint = f"did you mean {' or '.join(words)}? " if words else ""
        raise UnknownWord(value, f"{hint}one of {describe(category)}") from None
    return encode(category, number)


def decode(category: str, code: float) -> str | None:
    """The word for ``code`` in ``category`` (None for NaN), grading's tables."""
    return _cohort.decode(category, code, CATEGORIES)


def describe(category: str) -> str:
    """``word (code)`` list for error messages and help text, grading's tables."""
    return _cohort.describe(category, CATEGORIES)
