"""Toxicity grading engines: pure rules from observations to a ``Grade`` that says why.

Entry points (observations as a mapping and/or keyword arguments, names as in
``cartrial.grading.fields.FIELDS``; numbers in the canonical unit unless a unit is given,
``"150 cells/uL"`` or ``units={"anc": "cells/uL"}``; counts canonically x10^9/L):

* ``grade_crs(obs, system="ASTCT2019")`` - also "CARTOX" and "Lee2014"
* ``grade_icans(obs, system="ASTCT2019", capd_age_cutoff=12)`` - also "CARTOX" (CRES)
* ``grade_agvhd(obs, system="MAGIC")`` - also "Keystone1994"; ``stage_agvhd(obs)``
* ``grade_cgvhd(organ_scores)`` - NIH 2014 global severity
* ``grade_ctcae(term, obs, version="5.0")`` - haematology, febrile neutropenia, infection,
  liver, renal, coagulation, symptom, electrolyte, glucose, seizure and encephalopathy terms
* ``grade_icaht(days, anc)`` - early and late ICAHT (Rejeski 2023)
* ``grade_iechs(obs)`` - IEC-HS identification and grade from the consensus grading
  table's interventions and consequences (Hines 2023)
* ``car_hematotox`` / ``easix`` (``grading.risk``) - pre-infusion risk scores per patient
* ``grade_daily`` / ``derive_episodes`` / ``compare_episodes`` (``grading.episodes``)

Every grade is the lower bound the known observations establish; ``missing`` lists
the unknown items that could raise it and ``grade_max`` how far (see ``core``).
Grades are decision support for trained staff (reference only), never a substitute
for clinical judgement.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from cartrial.grading.core import Grade, GradingInputError, parse_observations
from cartrial.grading.gvhd import grade_cgvhd, stage_agvhd
from cartrial.grading.icaht import IcahtResult, grade_icaht
from cartrial.grading.icans import cartox10_from_items, ice_score_from_items

__all__ = [
    "Grade",
    "GradingInputError",
    "IcahtResult",
    "cartox10_from_items",
    "compare_episodes",
    "derive_episodes",
    "grade_agvhd",
    "grade_cgvhd",
    "grade_crs",
    "grade_ctcae",
    "grade_daily",
    "grade_icaht",
    "grade_icans",
    "grade_iechs",
    "ice_score_from_items",
    "stage_agvhd",
]


def _system(system: str, allowed: tuple[str, ...], what: str) -> str:
    from cartrial.cohort.vocab import GRADING_SYSTEMS, canonical

    name = canonical(system, GRADING_SYSTEMS)
    if name not in allowed:
        raise GradingInputError("system", system, f"one of {', '.join(allowed)} for {what}")
    return name


def grade_crs(
    obs: Mapping[str, Any] | None = None,
    system: str = "ASTCT2019",
    units: Mapping[str, str] | None = None,
    **observations: Any,
) -> Grade:
    """CRS grade by ASTCT 2019 (default), CARTOX 2018 or Lee 2014 (see ``grading.crs``).
    ``units``: field -> unit of a value not in the canonical unit (e.g.
    ``{"temperature_c": "F"}``)."""
    from cartrial.grading import crs

    name = _system(system, ("ASTCT2019", "CARTOX", "Lee2014"), "CRS")
    values = parse_observations(obs, units, **observations)
    if name == "ASTCT2019":
        return crs.grade_astct(values)
    return crs.grade_legacy(values, name)


def grade_icans(
    obs: Mapping[str, Any] | None = None,
    system: str = "ASTCT2019",
    capd_age_cutoff: float = 12,
    units: Mapping[str, str] | None = None,
    **observations: Any,
) -> Grade:
    """ICANS grade by ASTCT 2019 (default; CAPD below ``capd_age_cutoff`` years) or
    CARTOX-10/CRES (see ``grading.icans``)."""
    from cartrial.grading import icans

    name = _system(system, ("ASTCT2019", "CARTOX"), "ICANS")
    if (
        isinstance(capd_age_cutoff, bool)
        or not isinstance(capd_age_cutoff, int | float)
        or not 0 <= capd_age_cutoff <= 25
    ):
        raise GradingInputError("capd_age_cutoff", capd_age_cutoff, "an age from 0 to 25 years")
    values = parse_observations(obs, units, **observations)
    if name == "ASTCT2019":
        return icans.grade_astct(values, capd_age_cutoff)
    return icans.grade_cartox(values)


def grade_agvhd(
    obs: Mapping[str, Any] | None = None,
    system: str = "MAGIC",
    units: Mapping[str, str] | None = None,
    **observations: Any,
) -> Grade:
    """Acute GVHD overall grade 0-4 (label 0/I-IV) by MAGIC (default) or Keystone 1994,
    organ stages in ``reasons`` and ``details`` (see ``grading.gvhd``). Bilirubin may
    be given in umol/L with ``units={"bilirubin_mg_dl": "umol/L"}`` or "51 umol/L"."""
    from cartrial.grading import gvhd

    values = parse_observations(obs, units, **observations)
    return gvhd.grade_agvhd_values(values, system)


def grade_ctcae(
    term: str,
    obs: Mapping[str, Any] | None = None,
    version: str = "5.0",
    lln: Mapping[str, float] | None = None,
    uln: Mapping[str, float] | None = None,
    ranges: str | None = None,
    units: Mapping[str, str] | None = None,
    **observations: Any,
) -> Grade:
    """CTCAE v5.0 grade of ``term`` (``grading.ctcae.TERMS``: cytopenias, anaemia,
    febrile neutropenia, infection, sepsis, lung infection, ALT/AST/bilirubin/creatinine
    increased, fibrinogen decreased, fever, hypotension, hypoxia, diarrhoea, nausea,
    vomiting, headache, rash maculo-papular; CTCAE v5.0 names and British spellings
    accepted). ``lln``/``uln``: the site's limits by field; ``ranges``:
    a site reference-range CSV (``grading.ranges``); ``units``: field -> unit."""
    from cartrial.grading import ctcae

    ctcae.check_version(version)
    values = parse_observations(obs, units, **observations)
    return ctcae.grade_ctcae_values(term, values, lln, uln, ranges)


def grade_iechs(
    obs: Mapping[str, Any] | None = None,
    uln: Mapping[str, float] | None = None,
    ranges: str | None = None,
    units: Mapping[str, str] | None = None,
    **observations: Any,
) -> Grade:
    """IEC-HS identification and grade (Hines 2023; see ``grading.iechs``)."""
    from cartrial.grading import iechs

    values = parse_observations(obs, units, **observations)
    return iechs.grade_iechs_values(values, uln=uln, ranges=ranges)


def __getattr__(name: str) -> Any:
    if name in ("grade_daily", "derive_episodes", "compare_episodes"):
        from cartrial.grading import episodes

        return getattr(episodes, name)
    raise AttributeError(f"module 'cartrial.grading' has no attribute {name!r}")
