"""Bedside grading for the web app: the form's inputs, their parsing, and the grades shown.

This is the grading half of what ``web/service.py`` used to do (issue 17: records vs
bedside grading); ``service`` keeps the records (it stores an assessment with the grades
computed here). Every input of the form is declared once, in the field registry
(``cartrial.grading.fields``: name, type, unit, range, vocabulary, help), and the form
fields, their checks and the JSON API model are generated from it.

Grades (decision support, reference only):

* CRS and ICANS: ASTCT 2019 consensus (Lee et al., Biol Blood Marrow Transplant
  2019;25:625-638), stored with the assessment (``grade_assessment``);
* IEC-HS: ASTCT consensus identification and grading table (Hines et al., Transplant
  Cell Ther 2023;29:438.e1; ``cartrial.grading.iechs``), computed from the stored inputs
  when any IEC-HS input was entered (``iechs_result``);
* CAR-HEMATOTOX (Rejeski et al., Blood 2021;138:2499) and EASIX / m-EASIX (Luft et al.,
  Lancet Haematol 2017; Pennisi et al., Blood Adv 2021) from the patient's observations
  before infusion, when they exist (``risk_scores``; ``cartrial.grading.risk``).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

from cartrial.cohort.tables import MAX_DAY
from cartrial.cohort.vocab import _key, analyte_lookup
from cartrial.grading import codes as _codes
from cartrial.grading import grade_crs, grade_icans, grade_iechs
from cartrial.grading.core import GradingInputError, parse_value
from cartrial.grading.fields import (
    BEDSIDE_CRS,
    BEDSIDE_ICANS,
    BEDSIDE_IECHS,
    FIELDS,
    FormField,
    form_fields,
)
from cartrial.grading.fields import limits as _limits
from cartrial.grading.icans import ice_score_from_items
from cartrial.grading.risk import DEFAULT_WINDOW, car_hematotox, easix
from cartrial.web.errors import Invalid

__all__ = [
    "BEDSIDE_CRS_FIELDS",
    "BEDSIDE_ICANS_FIELDS",
    "BEDSIDE_IECHS_FIELDS",
    "CONSCIOUSNESS",
    "EDEMA",
    "ICE_ITEMS",
    "OXYGEN",
    "SEIZURE",
    "assessment_fields",
    "grade_assessment",
    "iechs_result",
    "parse_assessment",
    "risk_scores",
]

OXYGEN = tuple(_codes.OXYGEN)
CONSCIOUSNESS = tuple(_codes.CONSCIOUSNESS)
SEIZURE = tuple(_codes.SEIZURE)
EDEMA = tuple(_codes.CEREBRAL_EDEMA)
BEDSIDE_CRS_FIELDS = form_fields(BEDSIDE_CRS)
BEDSIDE_ICANS_FIELDS = form_fields(BEDSIDE_ICANS)
BEDSIDE_IECHS_FIELDS = form_fields(BEDSIDE_IECHS)
#: the ICE items and their maxima (Lee et al. 2019, Table 4); summed by
#: ``grading.icans.ice_score_from_items``
ICE_ITEMS = {
    "ice_orientation": 4,
    "ice_naming": 3,
    "ice_commands": 1,
    "ice_writing": 1,
    "ice_attention": 1,
}
limits = _limits


def assessment_fields() -> list[FormField]:
    """The registry form fields of every bedside input, in form order."""
    return [*BEDSIDE_CRS_FIELDS, *BEDSIDE_ICANS_FIELDS, *BEDSIDE_IECHS_FIELDS]


def _blank(raw: Any) -> bool:
    return raw is None or (isinstance(raw, str) and not raw.strip())


def parse_assessment(data: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    """Bedside form -> grading observations (keys of ``cartrial.grading``) and field errors.

    The ICE score (Lee et al., BBMT 2019;25:625, Table 4) is the sum of orientation (4),
    naming (3), following commands (1), writing (1) and attention (1); a directly given
    ``ice_score`` is used when the items are not entered. The IEC-HS inputs are checked by
    the registry's parser (a number may carry its unit, "1.2 g/L"; the canonical value is
    kept). Blank stays missing.
    """
    obs: dict[str, Any] = {}
    errors: dict[str, str] = {}

    def num(key: str, lo: float, hi: float, integer: bool = False) -> float | None:
        raw = data.get(key)
        if raw is None or _blank(raw):
            return None
        try:
            value = float(raw)
        except (TypeError, ValueError):
            errors[key] = f"expected a number, got {raw!r}"
            return None
        if not lo <= value <= hi or (integer and value != int(value)):
            kind = "a whole number" if integer else "a number"
            errors[key] = f"expected {kind} from {lo:g} to {hi:g}"
            return None
        return int(value) if integer else value

    def choice(key: str, options: tuple[str, ...]) -> str | None:
        raw = data.get(key)
        if _blank(raw):
            return None
        if str(raw) not in options:
            errors[key] = f"expected one of {', '.join(options)}"
            return None
        return str(raw)

    def yes_no(key: str) -> bool | None:
        raw = data.get(key)
        if raw is None or raw == "":
            return None
        if isinstance(raw, bool):
            return raw
        if str(raw).lower() in ("yes", "true", "1", "on"):
            return True
        if str(raw).lower() in ("no", "false", "0"):
            return False
        errors[key] = "expected yes or no"
        return None

    def registry(key: str) -> Any:
        """Any registry field: numbers (with a unit), yes/no and words, checked once."""

        spec = FIELDS[key]
        if spec.kind == "bool":
            return yes_no(key)
        raw = data.get(key)
        if _blank(raw):
            return None
        try:
            value = parse_value(key, raw)
        except GradingInputError as exc:
            errors[key] = f"expected {exc.expected}"
            return None
        if math.isnan(value):
            return None
        if spec.kind in _codes.CATEGORIES:
            return _codes.decode(spec.kind, value)
        return int(value) if spec.kind == "int" else value

    day = num("day", -60, MAX_DAY)
    obs["temperature_c"] = num("temperature_c", *_limits("temperature_c"))
    obs["hypotension"] = yes_no("hypotension")
    obs["vasopressors"] = num("vasopressors", *_limits("vasopressors"))
    obs["vasopressin"] = yes_no("vasopressin")
    obs["oxygen"] = choice("oxygen", OXYGEN)
    obs["o2_flow_l_min"] = num("o2_flow_l_min", *_limits("o2_flow_l_min"))
    items = {k: num(k, 0, hi, integer=True) for k, hi in ICE_ITEMS.items()}
    given = {k: v for k, v in items.items() if v is not None}
    if given and len(given) < len(items):
        for k, v in items.items():
            if v is None and k not in errors:
                errors[k] = "enter every ICE item, or none and the total score"
    ice: float | None
    if len(given) == len(items):  # the ICE function (Lee 2019, Table 4), not a re-sum
        ice = ice_score_from_items(**{k.removeprefix("ice_"): int(v) for k, v in given.items()})
    else:
        ice = num("ice_score", *_limits("ice_score"))
    obs["ice_score"] = ice
    obs["consciousness"] = choice("consciousness", CONSCIOUSNESS)
    obs["seizure"] = choice("seizure", SEIZURE)
    obs["motor_weakness"] = yes_no("motor_weakness")
    obs["cerebral_edema"] = choice("cerebral_edema", EDEMA)
    obs["age_years"] = num("age_years", *_limits("age_years"))
    for key in BEDSIDE_IECHS:
        obs[key] = registry(key)
    if day is None and "day" not in errors:
        errors["day"] = "required (days since infusion)"
    known = {
        "day",
        "temperature_c",
        "hypotension",
        "vasopressors",
        "vasopressin",
        "oxygen",
        "o2_flow_l_min",
        "ice_score",
        "consciousness",
        "seizure",
        "motor_weakness",
        "cerebral_edema",
        "age_years",
        "csrf_token",
        "reason",
        *ICE_ITEMS,
        *BEDSIDE_IECHS,
    }
    for key in data:
        if key not in known:
            errors[key] = "unknown field"
    obs["day"] = day
    return obs, errors


def grade_assessment(obs: Mapping[str, Any]) -> dict[str, Any]:
    """Run the ASTCT 2019 CRS and ICANS engines (Lee et al., BBMT 2019;25:625).

    Raises Invalid with the engine's message if it rejects the input; returns the
    grades, reasons and missing inputs (the stored columns of an assessment). The IEC-HS
    inputs are checked here too (``iechs_result``), so that an assessment whose IEC-HS
    entries contradict each other is not saved. Decision support only (reference only).
    """
    inputs = {k: v for k, v in obs.items() if k != "day" and k not in _IECHS_ONLY and v is not None}
    try:
        crs = grade_crs(inputs, system="ASTCT2019")
        icans = grade_icans(inputs)
    except ValueError as exc:
        raise Invalid(
            f"the grading engine rejected the input: {exc}", {"_form": str(exc)}
        ) from None
    iechs_result(obs)  # raises Invalid on contradictory IEC-HS entries
    return {
        "crs_system": crs.system,
        "crs_grade": crs.grade,
        "crs_reasons": list(crs.reasons),
        "icans_system": icans.system,
        "icans_grade": icans.grade,
        "icans_reasons": list(icans.reasons),
        "missing": sorted(set(crs.missing) | set(icans.missing)),
    }


#: IEC-HS inputs that the CRS/ICANS engines do not read (the shared ones, vasopressors,
#: vasopressin and oxygen, are in the CRS section of the form)
_IECHS_ONLY = frozenset(BEDSIDE_IECHS)
_IECHS_SHARED = ("vasopressors", "vasopressin", "oxygen")


def iechs_result(inputs: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """IEC-HS identification and grade of one assessment's inputs (ASTCT consensus,
    Hines 2023; ``cartrial.grading.iechs``), or None when no IEC-HS input was entered.

    Returns ``grade``, ``grade_max``, ``status`` (identified / excluded / possible),
    ``reasons`` and ``missing``. Raises Invalid when the entries contradict each other
    (e.g. a clinician grade outside what the entered items allow)."""
    if not inputs or not any(inputs.get(k) is not None for k in BEDSIDE_IECHS):
        return None

    obs = {k: inputs[k] for k in (*BEDSIDE_IECHS, *_IECHS_SHARED) if inputs.get(k) is not None}
    try:
        g = grade_iechs(obs)
    except GradingInputError as exc:
        raise Invalid(f"IEC-HS: {exc}", {exc.field: f"expected {exc.expected}"}) from None
    return {
        "system": g.system,
        "grade": g.grade,
        "grade_max": g.grade_max,
        "status": g.detail("status"),
        "reasons": list(g.reasons),
        "missing": list(g.missing),
    }


#: the analytes the pre-infusion scores read (cohort analyte names)
RISK_ANALYTES = frozenset(
    {"anc", "hemoglobin", "platelets", "crp", "ferritin", "ldh", "creatinine"}
)


def risk_scores(observations: Iterable[Any]) -> dict[str, Any] | None:
    """CAR-HEMATOTOX and EASIX / m-EASIX of one patient from the stored observations
    (``patient_id``, ``day``, ``analyte``, ``value``, ``unit``), by the rules of
    ``cartrial.grading.risk`` (latest value from day -10 to -1); None when none of their
    markers was measured in that window. Only the markers' own rows are read, so an
    unrelated implausible value elsewhere does not stop the page; an implausible marker
    value gives ``{"error": ...}`` (shown), never a score."""
    import pandas as pd

    lookup = analyte_lookup()
    lo, hi = DEFAULT_WINDOW
    rows = [
        {
            "patient_id": str(o.patient_id),
            "day": o.day,
            "analyte": o.analyte,
            "value": o.value,
            "unit": o.unit,
        }
        for o in observations
        if o.value is not None
        and o.day is not None
        and lo <= o.day <= hi
        and lookup.get(_key(str(o.analyte))) in RISK_ANALYTES
    ]
    if not rows:
        return None
    frame = pd.DataFrame(rows)
    try:
        ht = car_hematotox(frame)
        ex = easix(frame)
    except GradingInputError as exc:
        return {"error": str(exc)}
    if ht.empty:
        return None
    h, e = ht.iloc[0], ex.iloc[0]
    markers = ("anc", "hemoglobin_g_dl", "platelets", "crp_mg_l", "ferritin_ng_ml")
    if all(pd.isna(h[m]) for m in markers) and all(
        pd.isna(e[m]) for m in ("ldh_u_l", "creatinine_mg_dl")
    ):
        return None

    def num(x: Any) -> float | None:
        return None if pd.isna(x) else float(x)

    return {
        "hematotox": {
            "score": int(h["score"]),
            "score_max": int(h["score_max"]),
            "risk": h["risk"],
            "missing": [m for m in str(h["missing"]).split(",") if m],
            "values": {m: num(h[m]) for m in markers},
            "rule": h["rule"],
            "source": h["source"],
        },
        "easix": {
            "easix": num(e["easix"]),
            "m_easix": num(e["m_easix"]),
            "log2_easix": num(e["log2_easix"]),
            "log2_m_easix": num(e["log2_m_easix"]),
            "units": e["units"],
            "rule": e["rule"],
            "source": e["source"],
        },
    }
