"""CTCAE v5.0 haematology and infection grades (NCI, 27 November 2017).

Terms (CTCAE v5.0 "Investigations", "Blood and lymphatic system disorders" and
"Infections and infestations"), counts in x10^9/L:

* neutrophil count decreased: < LLN-1.5 = 1; < 1.5-1.0 = 2; < 1.0-0.5 = 3; < 0.5 = 4
* platelet count decreased: < LLN-75 = 1; < 75-50 = 2; < 50-25 = 3; < 25 = 4
* lymphocyte count decreased: < LLN-0.8 = 1; < 0.8-0.5 = 2; < 0.5-0.2 = 3; < 0.2 = 4
* white blood cell decreased: < LLN-3.0 = 1; < 3.0-2.0 = 2; < 2.0-1.0 = 3; < 1.0 = 4
* anaemia (Hb g/dL): < LLN-10.0 = 1; < 10.0-8.0 = 2; < 8.0 = 3; life-threatening
  consequences, urgent intervention indicated = 4; death = 5
* febrile neutropenia: ANC < 1.0 with a single temperature > 38.3 °C or >= 38 °C
  sustained > 1 hour = 3; life-threatening = 4; death = 5
* infection: localised, local intervention = 1; oral intervention (antibiotic,
  antifungal, antiviral) = 2; IV treatment or invasive intervention = 3;
  life-threatening, urgent intervention = 4; death = 5

Every count threshold is strict ("<"): a value exactly at a boundary belongs to the
milder grade (ANC 1.5 is grade 1, ANC 0.5 is grade 3).

Default lower limits of normal (LLN) when the laboratory's own LLN is not given
(``lln=``): ANC 1.8, platelets 150, lymphocytes 1.0, WBC 4.0 x10^9/L; haemoglobin 12.0
g/dL for women and 13.0 g/dL for men (WHO anaemia thresholds). Pass the institution's
LLN where known: grade 1 depends on it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np

from cartrial.grading.core import (
    Fill,
    Grade,
    GradingInputError,
    bound,
    fmt,
    grade_from_bounds,
    single,
)

SOURCE = "NCI Common Terminology Criteria for Adverse Events v5.0 (2017)"
VERSION = "CTCAE5"
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
TERMS = (*COUNT_TERMS, "anemia", "febrile_neutropenia", "infection")
INFECTION_GRADE = np.array([0, 1, 2, 3, 3, 4, 5])  # by codes.INFECTION code


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
    from cartrial.cohort.vocab import AE_TERMS, canonical

    name = canonical(term, AE_TERMS)
    if name not in TERMS:
        raise GradingInputError("term", term, "a CTCAE term graded here: " + ", ".join(TERMS))
    return name


def grade_ctcae_values(
    term: str, values: Mapping[str, float], lln: Mapping[str, float] | None = None
) -> Grade:
    """CTCAE v5.0 grade of ``term`` from parsed observations, with reasons."""
    term = canonical_term(term)
    limits = {**LLN_DEFAULTS, **(lln or {})}
    reasons: list[str] = []
    if term in COUNT_TERMS:
        field, t2, t3, t4, name = COUNT_TERMS[term]
        low = limits[field]
        fills = {field: Fill(1e6, 0.0)}
        b = bound(lambda d: count_grade(d[field], low, t2, t3, t4), single(values, fills), fills)
        v = values.get(field, math.nan)
        if not math.isnan(v):
            reasons.append(
                f"{name}: {field} {fmt(v)} x10^9/L -> grade {int(b.lo[0])} "
                f"(< LLN {fmt(low)}: 1; < {fmt(t2)}: 2; < {fmt(t3)}: 3; < {fmt(t4)}: 4)"
            )
    elif term == "anemia":
        hb = values.get("hemoglobin_g_dl", math.nan)
        fills = {
            "hemoglobin_g_dl": Fill(16.0, 3.0),
            "sex": Fill(0, None),
            "life_threatening": Fill(0, 1)
            if (hb < 8.0 or math.isnan(hb))
            else Fill(math.nan, None),
            "death": Fill(math.nan, None),
        }
        lf, lm = limits["hemoglobin_g_dl_F"], limits["hemoglobin_g_dl_M"]
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
            b = type(b_f)(
                np.minimum(b_f.lo, b_m.lo), np.maximum(b_f.hi, b_m.hi), miss, b_f.observed
            )
        else:
            b = bound(lambda d: anemia_kernel(d, lf, lm), data, fills, primary)
        if not math.isnan(hb):
            reasons.append(f"Anemia: haemoglobin {fmt(hb)} g/dL (< LLN: 1; < 10.0: 2; < 8.0: 3)")
        if values.get("life_threatening", math.nan) == 1:
            reasons.append("life-threatening consequences, urgent intervention -> grade 4")
    elif term == "febrile_neutropenia":
        anc, temp = values.get("anc", math.nan), values.get("temperature_c", math.nan)
        established = anc < 1.0 and (
            temp > 38.3 or (temp >= 38.0 and values.get("fever_sustained_1h") == 1)
        )
        fills = {
            "anc": Fill(3.0, 0.0),
            "temperature_c": Fill(36.5, 39.0),
            "fever_sustained_1h": Fill(0, 1),
            "life_threatening": Fill(0, 1) if established else Fill(math.nan, None),
            "death": Fill(math.nan, None),
        }
        b = bound(
            febrile_neutropenia_kernel,
            single(values, fills),
            fills,
            ("anc", "temperature_c", "life_threatening", "death"),
        )
        reasons.append(
            f"Febrile neutropenia: ANC {fmt(anc)} x10^9/L, temperature {fmt(temp)} °C "
            "(grade 3 = ANC < 1.0 with > 38.3 °C once or >= 38 °C for > 1 h)"
        )
    else:
        fills = {"intervention": Fill(1, 6), "death": Fill(math.nan, None)}
        b = bound(infection_kernel, single(values, fills), fills, ("intervention", "death"))
        from cartrial.grading import codes

        iv = values.get("intervention", math.nan)
        if not math.isnan(iv):
            reasons.append(
                f"infection needing {codes.decode('intervention', iv)} intervention "
                f"-> grade {int(INFECTION_GRADE[int(iv)])} (oral 2; IV or invasive 3; "
                "life-threatening 4; death 5)"
            )
    if values.get("death", math.nan) == 1:
        reasons.append("death due to the adverse event -> grade 5")
    reasons.append(f"source: {SOURCE}")
    g = grade_from_bounds(VERSION, b, reasons)
    return Grade(g.system, g.grade, g.reasons, g.missing, g.grade_max, g.label, (("term", term),))
