"""CDISC ADaM-like analysis datasets from a cohort, and back.

``build_adam`` returns ADSL (one row per subject), ADTTE (time to event), ADAE (adverse
events), ADRS (overall response per assessment and best overall response), ADPC
(CAR-T kinetics samples), ADLB (other laboratory / vital observations) and ADPP
(non-compartmental PK parameters per subject, ``cartrial.kinetics.nca``).

Conventions (CDISC ADaM IG v1.3 and ADaM BDS for TTE v1.0; pharmaverse admiral):

- USUBJID is ``<STUDYID>-<SUBJID>``; SUBJID is the cohort's ``patient_id``.
- Study days: CDISC has no day 0 — ``ADY = day + 1`` for days on or after the
  reference (infusion) date, ``ADY = day`` before it (SDTM IG 4.4.4, admiral
  ``derive_vars_dy()``). Publications count infusion as day 0: that day is kept in
  ``ADYPUB`` (and ``ASTDYPUB``/``AENDYPUB``), and in ADSL as ``*DAY`` variables.
- ADTTE ``AVAL`` is the time in days from ``STARTDT`` to ``ADT`` on the publications'
  scale (``ADT - STARTDT``, i.e. admiral ``derive_vars_duration(add_one = FALSE)``),
  equal to ``cartrial.endpoints.derive_endpoints``' ``time_days``; the event is the
  earliest qualifying event and censoring the latest time known event-free (admiral
  ``derive_param_tte()``). ``CNSR`` codes are in ``CNSR_CODES``.
- ``TRTEMFL`` follows admiral ``derive_var_trtemfl()`` for a single infusion
  (TRTSDT = TRTEDT): onset on or after day 0 and at most ``te_window_days`` after it.
  The CAR-T default is no upper bound (``TE_WINDOW_DAYS = None``): late CAR-T toxicities
  (prolonged cytopenias, infections months after infusion; FDA guidance "Considerations
  for the Development of CAR T Cell Products", 2024, long-term follow-up) stay
  treatment-emergent. The window used is stated in ``define.csv`` and Define-XML, and a
  grade-5 AE left outside a shorter window is listed in the notes, never dropped silently.
- Population flags ITTFL/SAFFL/EFFFL/CRFL/RESPFL come from
  ``cartrial.endpoints.populations`` (one definition for the report and the export).
- Identifier variables (BRTHDT) are written only when ``identified=True``.
- ``AOCCIFL``/``AOCCPFL``/``AOCCPIFL`` follow admiral ``derive_var_extreme_flag()``
  among treatment-emergent AEs: first worst-grade AE per subject, first AE per subject
  and term, first worst-grade AE per subject and term.

Dates are present only where day 0 is dated: ``patients.infusion_date``, or for a patient
never infused ``patients.enrollment_date`` (the cohort's study-day origin). Every variable
is documented in ``VARIABLES`` (written as ``define.csv`` and Define-XML 2.1 with the
export). AEDECOD/AEBODSYS are the CTCAE v5.0 term and SOC of the cohort term
(``CTCAE_TERMS``); an AE recorded as "other" stays uncoded (AEDECOD missing, verbatim in
AETERM) — coding it needs MedDRA, which cartrial does not ship.

The package holds the metadata as data (``spec``: ``VARIABLES``, ``CNSR_CODES``,
``PARAMS``, ``CTCAE_TERMS``, ...), the dataset builders (``build``: ``build_adam`` and
one ``build_ad*`` per dataset) and the reverse mapping (``reverse``: ``cohort_from_adam``).
"""

from __future__ import annotations

from cartrial.io.adam.build import (
    build_adae,
    build_adam,
    build_adpp,
    build_adrs,
    build_adsl,
    build_adtte,
    cdisc_day,
    cnsr_code,
    te_window_text,
)
from cartrial.io.adam.reverse import cohort_from_adam
from cartrial.io.adam.spec import (
    CNSR_CODES,
    CTCAE_TERMS,
    ETHNIC_CT,
    PARAMS,
    PK_ANALYTES,
    RACE_CT,
    RESPONSE_ORDER,
    TE_WINDOW_DAYS,
    VARIABLES,
    Var,
    obs_param,
    pp_param,
)

__all__ = [
    "CNSR_CODES",
    "CTCAE_TERMS",
    "ETHNIC_CT",
    "PARAMS",
    "PK_ANALYTES",
    "RACE_CT",
    "RESPONSE_ORDER",
    "TE_WINDOW_DAYS",
    "VARIABLES",
    "Var",
    "build_adae",
    "build_adam",
    "build_adpp",
    "build_adrs",
    "build_adsl",
    "build_adtte",
    "cdisc_day",
    "cnsr_code",
    "cohort_from_adam",
    "obs_param",
    "pp_param",
    "te_window_text",
]
