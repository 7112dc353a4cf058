"""Validation rules that raise data queries automatically (edit checks).

A value that passes field validation (it is a valid entry) can still be doubtful: the
site must confirm or correct it. Each rule returns ``(rule name, field, message)`` for a
record; the service opens one automatic query per (record, rule) while the rule fires
and marks it answered ("resolved by correction") when a change makes it stop firing.

Rules (edit checks as in REDCap data quality rules / OpenClinica discrepancy notes):

* ``out_of_range``: a measurement outside the range a living patient can plausibly show:
  the grading field registry's range (``cartrial.grading.fields``, e.g. temperature
  25-45 °C) where it has the analyte in that unit, else ``PLAUSIBLE`` (physiological
  limits, not reference ranges);
* ``before_infusion``: CAR-T cells measured, or CRS/ICANS starting, before the infusion
  (day < 0): impossible for a cell-therapy toxicity or the product's expansion;
* ``grade_vs_bedside``: a CRS or ICANS adverse event whose grade differs from the worst
  ASTCT 2019 grade computed from the bedside assessments during the episode (Lee et
  al., Biol Blood Marrow Transplant 2019;25:625, Tables 2 and 4).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from cartrial.cohort import vocab
from cartrial.grading.fields import FIELDS

#: (analyte, unit) -> (low, high); outside means "please confirm"
PLAUSIBLE: dict[tuple[str, str], tuple[float, float]] = {
    ("temperature", "C"): (32.0, 43.0),
    ("temperature", "F"): (89.6, 109.4),
    ("crp", "mg/L"): (0.0, 600.0),
    ("il6", "pg/mL"): (0.0, 100000.0),
    ("ferritin", "ng/mL"): (0.0, 200000.0),
    ("ldh", "U/L"): (0.0, 20000.0),
    ("anc", "10^9/L"): (0.0, 100.0),
    ("wbc", "10^9/L"): (0.0, 500.0),
    ("platelets", "10^9/L"): (0.0, 2000.0),
    ("lymphocytes", "10^9/L"): (0.0, 400.0),
    ("hemoglobin", "g/dL"): (2.0, 25.0),
    ("sbp", "mmHg"): (40.0, 260.0),
    ("o2_flow", "L/min"): (0.0, 80.0),
    ("bilirubin", "mg/dL"): (0.0, 60.0),
    ("weight", "kg"): (1.0, 400.0),
    ("cart_flow", "cells/uL"): (0.0, 100000.0),
}
CART_ANALYTES = ("cart_flow", "cart_qpcr", "cart_pct_cd3")
EPISODE_DAYS = 14  # an episode without a resolution day is looked at for two weeks


def registry_field(analyte: str, unit: str | None = None):
    """The grading field registry's entry (``cartrial.grading.fields.FIELDS``) for an
    analyte measured in ``unit`` (its canonical unit when None), or None: by name, alias
    or ``<analyte>_<unit>`` (crp in mg/L -> ``crp_mg_l``), only when the units agree."""
    import re

    aliases, units = vocab.ANALYTES.get(analyte, ((), None))
    if unit is None and units and len(units) == 1:
        unit = next(iter(units))
    slug = re.sub(r"[^a-z0-9]+", "_", (unit or "").lower()).strip("_")
    for name in (analyte, *aliases, f"{analyte}_{slug}"):
        spec = FIELDS.get(name)
        if spec is None or spec.kind not in ("number", "int"):
            continue
        same = re.sub(r"[^a-z0-9]+", "_", spec.unit.lower()).strip("_") == slug
        if same or not unit:
            return spec
    return None


def plausible_range(analyte: str, unit: str | None) -> tuple[float, float] | None:
    """The grading registry's plausible range when it has the analyte in this unit (one
    number everywhere), else ``PLAUSIBLE``."""
    spec = registry_field(analyte, unit)
    if spec is not None and (spec.lo, spec.hi) != (float("-inf"), float("inf")):
        return spec.lo, spec.hi
    return PLAUSIBLE.get((analyte, unit or ""))


def observation_rules(obs: Any) -> list[tuple[str, str, str]]:
    out = []
    limits = plausible_range(obs.analyte, obs.unit)
    if limits and obs.value is not None and not limits[0] <= obs.value <= limits[1]:
        out.append(
            (
                "out_of_range",
                "value",
                f"{obs.analyte} {obs.value:g} {obs.unit or ''} is outside the plausible "
                f"range {limits[0]:g}-{limits[1]:g}: please confirm against the source",
            )
        )
    if obs.analyte in CART_ANALYTES and obs.day is not None and obs.day < 0:
        out.append(
            (
                "before_infusion",
                "day",
                f"CAR-T cells measured on day {obs.day:g}, before the infusion (day 0)",
            )
        )
    return out


def adverse_event_rules(ae: Any, assessments: Iterable[Any]) -> list[tuple[str, str, str]]:
    out = []
    if ae.term in ("CRS", "ICANS") and ae.onset_day is not None and ae.onset_day < 0:
        out.append(
            (
                "before_infusion",
                "onset_day",
                f"{ae.term} starting on day {ae.onset_day:g}, before the infusion",
            )
        )
    if ae.term in ("CRS", "ICANS") and ae.grade is not None and ae.onset_day is not None:
        end = ae.resolution_day if ae.resolution_day is not None else (ae.onset_day + EPISODE_DAYS)
        attr = "crs_grade" if ae.term == "CRS" else "icans_grade"
        grades = [
            getattr(a, attr)
            for a in assessments
            if a.day is not None and ae.onset_day <= a.day <= end and getattr(a, attr) is not None
        ]
        if grades and max(grades) != ae.grade:
            out.append(
                (
                    "grade_vs_bedside",
                    "grade",
                    f"{ae.term} recorded as grade {ae.grade}, but the bedside assessments "
                    f"of days {ae.onset_day:g}-{end:g} give at most grade {max(grades)} "
                    "(ASTCT 2019): please check",
                )
            )
    return out
