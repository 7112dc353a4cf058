"""CDISC ADaM-like analysis datasets from a cohort, and back.

``build_adam`` returns ADSL (one row per subject), ADTTE (time to event), ADAE (adverse
events), ADRS (overall response per assessment and best overall response), ADPC
(CAR-T kinetics samples), ADLB (other laboratory / vital observations) and, where the
kinetics layer exists, ADPP (non-compartmental PK parameters per subject).

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
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import pandas as pd

from cartrial.cohort import labels as _labels
from cartrial.cohort.model import Cohort
from cartrial.cohort.vocab import ANALYTES as _ANALYTES
from cartrial.endpoints.derive import RESPONSE_RANK
from cartrial.grading.ctcae import TERM_NAMES as _CTCAE_GRADED

#: ADTTE censoring codes (0 = event; positive = reason censored)
CNSR_CODES: dict[int, str] = {
    0: "event",
    1: "censored at the last date known alive (admiral LSTALVDT; includes no follow-up)",
    2: "censored at consolidation SCT or new anti-leukaemic therapy (sensitivity option)",
    3: "censored by a competing event (CIR: death without relapse; NRM: relapse/progression)",
    4: "censored as stated in the source table (wide table; reason not given)",
}
PARAMS: dict[str, str] = {
    "OS": "Overall Survival (days)",
    "PFS": "Progression-Free Survival (days)",
    "EFS": "Event-Free Survival (days)",
    "DFS": "Disease-Free Survival in CR/CRh/CRi (days)",
    "DOR": "Duration of Response (days)",
    "CIR": "Time to Relapse, Death Without Relapse as Competing Risk (days)",
    "NRM": "Time to Non-Relapse Death, Relapse as Competing Risk (days)",
}
PK_ANALYTES = {"cart_flow": "CARTFLOW", "cart_qpcr": "CARTQPCR", "cart_pct_cd3": "CARTPCT"}
#: best-response order: the endpoint layer's ranking (one declaration)
RESPONSE_ORDER = tuple(RESPONSE_RANK)
#: treatment-emergent window, days after infusion (None: the whole follow-up; see module)
TE_WINDOW_DAYS: float | None = None
#: cohort AE term -> (CTCAE v5.0 term, CTCAE v5.0 system organ class). CTCAE v5.0 (NCI,
#: 2017) has no ICANS, ICAHT, HLH or graft failure term: those carry the ASTCT / EHA-EBMT
#: name and the SOC of the CTCAE "... - Other, specify" term of the organ they affect.
_ADAM_ONLY_TERMS: dict[str, tuple[str, str]] = {
    "CRS": ("Cytokine release syndrome", "Immune system disorders"),
    "ICANS": ("Immune effector cell-associated neurotoxicity syndrome", "Nervous system disorders"),
    "aGVHD": ("Graft versus host disease", "Immune system disorders"),
    "cGVHD": ("Graft versus host disease", "Immune system disorders"),
    "infection": ("Infections and infestations - Other, specify", "Infections and infestations"),
    "bacterial_infection": (
        "Infections and infestations - Other, specify",
        "Infections and infestations",
    ),
    "viral_infection": (
        "Infections and infestations - Other, specify",
        "Infections and infestations",
    ),
    "fungal_infection": (
        "Infections and infestations - Other, specify",
        "Infections and infestations",
    ),
    "cmv_reactivation": (
        "Infections and infestations - Other, specify",
        "Infections and infestations",
    ),
    "ebv_reactivation": (
        "Infections and infestations - Other, specify",
        "Infections and infestations",
    ),
    "ICAHT": (
        "Immune effector cell-associated hematotoxicity",
        "Blood and lymphatic system disorders",
    ),
    "HLH": ("Hemophagocytic lymphohistiocytosis", "Blood and lymphatic system disorders"),
    "dic": ("Disseminated intravascular coagulation", "Blood and lymphatic system disorders"),
    "tma": ("Thrombotic thrombocytopenic purpura", "Blood and lymphatic system disorders"),
    "graft_failure": ("Graft failure", "Blood and lymphatic system disorders"),
    "TLS": ("Tumor lysis syndrome", "Metabolism and nutrition disorders"),
    "hemorrhage": ("Hemorrhage", "Vascular disorders"),
    "encephalopathy": ("Encephalopathy", "Nervous system disorders"),
    "seizure": ("Seizure", "Nervous system disorders"),
    "rash": ("Rash maculo-papular", "Skin and subcutaneous tissue disorders"),
    "hypofibrinogenemia": ("Fibrinogen decreased", "Investigations"),
    "arrhythmia": ("Cardiac disorders - Other, specify", "Cardiac disorders"),
    "acute_kidney_injury": ("Acute kidney injury", "Renal and urinary disorders"),
}
#: cohort term -> (CTCAE v5.0 term, SOC): the grading engine's table (one declaration,
#: ``cartrial.grading.ctcae.TERM_NAMES``) plus the terms only recorded, never graded here;
#: "infection" is coded as the CTCAE "Other, specify" term of its SOC
CTCAE_TERMS: dict[str, tuple[str, str]] = {
    **{k: v for k, v in _CTCAE_GRADED.items() if k not in _ADAM_ONLY_TERMS},
    **_ADAM_ONLY_TERMS,
}
#: CDISC controlled terminology (C74457 RACE, C66790 ETHNIC) from common site spellings
RACE_CT = {
    "asian": "ASIAN",
    "white": "WHITE",
    "caucasian": "WHITE",
    "black": "BLACK OR AFRICAN AMERICAN",
    "black or african american": "BLACK OR AFRICAN AMERICAN",
    "american indian or alaska native": "AMERICAN INDIAN OR ALASKA NATIVE",
    "native hawaiian or other pacific islander": "NATIVE HAWAIIAN OR OTHER PACIFIC ISLANDER",
    "other": "OTHER",
    "multiple": "MULTIPLE",
    "unknown": "UNKNOWN",
    "not reported": "NOT REPORTED",
}
ETHNIC_CT = {
    "hispanic or latino": "HISPANIC OR LATINO",
    "hispanic": "HISPANIC OR LATINO",
    "not hispanic or latino": "NOT HISPANIC OR LATINO",
    "non-hispanic": "NOT HISPANIC OR LATINO",
    "unknown": "UNKNOWN",
    "not reported": "NOT REPORTED",
}


@dataclass(frozen=True)
class Var:
    """One ADaM variable: label (≤ 40 chars), type, and de-identification flags."""

    label: str
    type: str = "char"  # char, num, date
    identifier: bool = False  # a direct identifier (dropped by de-identification)
    free_text: bool = False  # free text typed by people (dropped by de-identification)
    note: str = ""


def _common(*extra: tuple[str, Var]) -> dict[str, Var]:
    base = {
        "STUDYID": Var("Study Identifier"),
        "USUBJID": Var("Unique Subject Identifier"),
        "SUBJID": Var("Subject Identifier for the Study"),
        "SITEID": Var("Study Site Identifier", note="REDCap data access group or patients.site"),
    }
    base.update(dict(extra))
    return base


_DAYS = dict(
    ADY=Var("Analysis Relative Day", "num", note="CDISC: day + 1 from infusion (no day 0)"),
    ADYPUB=Var(
        "Days Since Infusion (Day 0 = Infusion)", "num", note="publication convention, cohort day"
    ),
    ADT=Var("Analysis Date", "date"),
)
VARIABLES: dict[str, dict[str, Var]] = {
    "ADSL": _common(
        (
            "AGE",
            Var(
                "Age",
                "num",
                note="whole years (floor of patients.age_years); set "
                "missing for ages >= 90 when de-identified",
            ),
        ),
        ("AGEU", Var("Age Units")),
        ("AGEGR1", Var("Pooled Age Group 1", note="0-17, 18-64, 65-89, 90+")),
        ("SEX", Var("Sex")),
        ("RACE", Var("Race", note="CDISC CT C74457; MULTIPLE when more than one ticked")),
        ("ETHNIC", Var("Ethnicity", note="CDISC CT C66790")),
        ("BRTHDT", Var("Date of Birth", "date", identifier=True)),
        ("DISEASE", Var("Diagnosis")),
        ("CD7BLPCT", Var("CD7+ Blasts at Baseline (%)", "num")),
        ("BMBLPCT", Var("Marrow Blasts at Baseline (%)", "num")),
        ("EXTRAMED", Var("Extramedullary Disease at Baseline")),
        ("PRLINES", Var("Number of Prior Lines of Therapy", "num")),
        ("PRSCTFL", Var("Prior Allogeneic SCT Flag")),
        ("PRODSRC", Var("CAR-T Product Source")),
        ("DONREL", Var("Donor Relation")),
        ("HLAMATCH", Var("Donor HLA Match")),
        (
            "DOSEKG",
            Var(
                "Dose (CAR+ cells/kg)",
                "num",
                note="patients.dose_per_kg, CAR+ cells per kg (not x10^6)",
            ),
        ),
        ("DOSELVL", Var("Dose Level")),
        ("WEIGHTBL", Var("Baseline Weight (kg)", "num")),
        ("HEIGHTBL", Var("Baseline Height (cm)", "num")),
        ("ARM", Var("Description of Planned Arm", note="'Screen Failure' if not enrolled")),
        ("ACTARM", Var("Description of Actual Arm", note="'Not Treated' if enrolled, not infused")),
        ("TRT01P", Var("Planned Treatment for Period 01", note="CAR-T and dose level")),
        ("TRT01A", Var("Actual Treatment for Period 01", note="missing if not infused")),
        ("ITTFL", Var("Intent-To-Treat Population Flag")),
        ("SAFFL", Var("Safety Population Flag")),
        ("EFFFL", Var("Efficacy Population Flag")),
        ("CRFL", Var("Complete Remission Population Flag")),
        ("RESPFL", Var("Responder Population Flag")),
        ("POPEXCL", Var("Reason Not in Safety Population")),
        (
            "ENRLDT",
            Var(
                "Date of Enrollment",
                "date",
                note="patients.enrollment_date; day 0 of a patient never infused",
            ),
        ),
        ("TRTSDT", Var("Date of CAR-T Infusion (Day 0)", "date")),
        ("TRTEDT", Var("Date of Last Exposure to Treatment", "date", note="single infusion")),
        ("LSTALVDT", Var("Date Last Known Alive", "date")),
        ("LSTALDAY", Var("Last Known Alive, Days Since Infusion", "num")),
        ("DTHFL", Var("Subject Death Flag")),
        ("DTHDT", Var("Date of Death", "date")),
        ("DTHDAY", Var("Death, Days Since Infusion", "num")),
        ("DTHCAUS", Var("Cause of Death")),
        ("RLPSDT", Var("Date of First Relapse/Progression", "date")),
        (
            "RLPSDAY",
            Var("First Relapse, Days Since Infusion", "num", note="relapse or progression"),
        ),
        ("RLPSTYP", Var("Type of First Relapse/Progression")),
        ("RLPSCD7", Var("CD7 Status at First Relapse")),
        ("SCTDT", Var("Date of First SCT After CAR-T", "date")),
        ("SCTDAY", Var("First SCT, Days Since Infusion", "num")),
        ("NTHDT", Var("Date of First New Therapy", "date")),
        ("NTHDAY", Var("First New Therapy, Days Since Infusion", "num")),
    ),
    "ADTTE": _common(
        ("PARAMCD", Var("Parameter Code")),
        ("PARAM", Var("Parameter")),
        ("AVAL", Var("Analysis Value", "num", note="days; equals derive_endpoints time_days")),
        ("AVALU", Var("Analysis Value Unit")),
        ("STARTDT", Var("Time-to-Event Origin Date for Subject", "date")),
        ("STARTDAY", Var("Origin, Days Since Infusion", "num", note="0; DOR: first response")),
        ("ADT", Var("Analysis Date", "date")),
        ("CNSR", Var("Censor", "num", note="; ".join(f"{k} = {v}" for k, v in CNSR_CODES.items()))),
        ("EVNTDESC", Var("Event or Censoring Description")),
        ("CNSDTDSC", Var("Censor Date Description")),
        (
            "CAUSE",
            Var(
                "Competing Risk Cause",
                "num",
                note="CIR/NRM: 0 censored, 1 relapse/progression, 2 death w/o relapse",
            ),
        ),
        ("SRCDOM", Var("Source Data")),
        ("SRCVAR", Var("Source Variable")),
        ("SRCSEQ", Var("Source Sequence Number", "num", note="line of the source file")),
    ),
    "ADAE": _common(
        ("AESEQ", Var("Sequence Number", "num")),
        (
            "AETERM",
            Var(
                "Reported Term for the Adverse Event",
                free_text=True,
                note="verbatim term where given, else AEDECOD",
            ),
        ),
        ("AEDECOD", Var("Dictionary-Derived Term", note="CTCAE v5.0 term (CTCAE_TERMS)")),
        ("AEBODSYS", Var("Body System or Organ Class", note="CTCAE v5.0 SOC")),
        ("AECTERM", Var("Cohort Vocabulary Term", note="cartrial term (CRS, ICANS …)")),
        ("AEORGAN", Var("Organ or Site", free_text=True, note="typed by hand in the template")),
        ("ATOXGR", Var("Analysis Toxicity Grade")),
        ("ATOXGRN", Var("Analysis Toxicity Grade (N)", "num")),
        ("ATOXSYS", Var("Toxicity Grading System")),
        ("TRTA", Var("Actual Treatment", note="ADSL.TRT01A")),
        ("AESER", Var("Serious Event")),
        ("ASTDT", Var("Analysis Start Date", "date")),
        ("AENDT", Var("Analysis End Date", "date")),
        ("ASTDY", Var("Analysis Start Relative Day", "num")),
        ("AENDY", Var("Analysis End Relative Day", "num")),
        ("ASTDYPUB", Var("Onset, Days Since Infusion (Day 0)", "num")),
        ("AENDYPUB", Var("Resolution, Days Since Infusion (Day 0)", "num")),
        (
            "TRTEMFL",
            Var(
                "Treatment Emergent Analysis Flag",
                note="onset on/after infusion, within the window in ADAE attrs",
            ),
        ),
        ("AOCCIFL", Var("1st Max Sev./Tox. Occurrence Flag")),
        ("AOCCPFL", Var("1st Occurrence of Preferred Term Flag")),
        ("AOCCPIFL", Var("1st Max Tox. Occurrence Within PT Flag")),
        ("SRCSEQ", Var("Source Sequence Number", "num")),
    ),
    "ADRS": _common(
        ("PARAMCD", Var("Parameter Code", note="OVRLRESP per assessment; BOR in window")),
        ("PARAM", Var("Parameter")),
        ("AVALC", Var("Analysis Value (C)")),
        ("AVAL", Var("Analysis Value", "num", note="1 = CR ... 10 = NE (rank, best first)")),
        ("MRDSTAT", Var("Flow MRD Status")),
        ("MRDVAL", Var("Flow MRD Level (fraction)", "num")),
        *_DAYS.items(),
        ("SRCSEQ", Var("Source Sequence Number", "num")),
    ),
    "ADPC": _common(
        ("PARAMCD", Var("Parameter Code")),
        ("PARAM", Var("Parameter")),
        ("AVAL", Var("Analysis Value", "num")),
        ("AVALU", Var("Analysis Value Unit")),
        ("ALLOQ", Var("Analysis Lower Limit of Quantitation", "num")),
        ("BLQFL", Var("Below Limit of Quantitation Flag")),
        ("ATPT", Var("Analysis Timepoint", note="'Day N', publication day-0 convention")),
        *_DAYS.items(),
        ("SRCSEQ", Var("Source Sequence Number", "num")),
    ),
    "ADLB": _common(
        ("PARAMCD", Var("Parameter Code")),
        ("PARAM", Var("Parameter")),
        ("AVAL", Var("Analysis Value", "num")),
        ("AVALC", Var("Analysis Value (C)", note="categorical observations")),
        ("AVALU", Var("Analysis Value Unit")),
        ("ALLOQ", Var("Analysis Lower Limit of Quantitation", "num")),
        ("ATPT", Var("Analysis Timepoint")),
        *_DAYS.items(),
        ("SRCSEQ", Var("Source Sequence Number", "num")),
    ),
    "ADPP": _common(
        ("PARAMCD", Var("Parameter Code")),
        ("PARAM", Var("Parameter")),
        ("PCTEST", Var("Analyte")),
        ("AVAL", Var("Analysis Value", "num")),
        ("AVALU", Var("Analysis Value Unit", note="unit of the analyte; days for times")),
    ),
}


# --------------------------------------------------------------------------- helpers


def cdisc_day(day: pd.Series) -> pd.Series:
    """CDISC study day from a day-0 day: ``floor(day) + 1`` on/after day 0, ``floor(day)`` before.

    SDTM IG v3.4 section 4.4.4 (--DY has no day 0); admiral ``derive_vars_dy()``.
    """
    d = np.floor(day.astype("float64"))
    return pd.Series(np.where(d >= 0, d + 1, d), index=day.index, dtype="float64")


def _dates(origin: pd.Series, day: pd.Series) -> pd.Series:
    """origin + floor(day) days; missing when either is missing."""
    days = np.floor(day.astype("float64"))
    td = pd.to_timedelta(days, unit="D")
    return (
        (pd.to_datetime(origin).reset_index(drop=True) + td.reset_index(drop=True))
        .set_axis(day.index)
        .dt.normalize()
    )


def _col(df: pd.DataFrame, name: str, dtype: str = "string") -> pd.Series:
    if name in df.columns:
        return df[name]
    return pd.Series(pd.NA if dtype == "string" else np.nan, index=df.index, dtype=dtype)


def _age_group(age: pd.Series) -> pd.Series:
    bins = [-np.inf, 18, 65, 90, np.inf]
    labels = ["0-17", "18-64", "65-89", "90+"]
    return pd.cut(age, bins=bins, labels=labels, right=False).astype("string")


def _keys(adsl: pd.DataFrame, ids: pd.Series) -> pd.DataFrame:
    k = adsl.set_index("SUBJID")[["STUDYID", "USUBJID", "SITEID"]]
    out = k.reindex(ids.astype(str).to_numpy()).reset_index()
    return out[["STUDYID", "USUBJID", "SUBJID", "SITEID"]]


def _first(ev: pd.DataFrame, kinds: list[str]) -> pd.DataFrame:
    sub = ev[ev["event"].isin(kinds) & ev["day"].notna()]
    return (
        sub.sort_values(["day", "source_row"], kind="stable")
        .drop_duplicates("patient_id")
        .set_index("patient_id")
    )


# --------------------------------------------------------------------------- datasets


def build_adsl(cohort: Cohort, study_id: str, response_window: tuple[float, float]) -> pd.DataFrame:
    """ADSL: one row per patient, population flags and key dates (see ``VARIABLES``)."""
    from cartrial.endpoints import last_known_alive

    p = cohort.patients.reset_index(drop=True)
    ids = p["patient_id"].astype(str)
    idx = p.index
    out = pd.DataFrame(
        {"STUDYID": study_id, "USUBJID": study_id + "-" + ids, "SUBJID": ids}, index=idx
    ).astype("string")
    out["SITEID"] = _col(p, "site").astype("string")
    age = np.floor(_col(p, "age_years", "float64").astype("float64"))
    out["AGE"] = age
    out["AGEU"] = pd.Series(np.where(age.notna(), "YEARS", None), index=idx, dtype="string")
    out["AGEGR1"] = _age_group(age)
    out["SEX"] = _col(p, "sex").astype("string")
    if "race" in p.columns:
        out["RACE"] = _ct(p["race"], RACE_CT, multiple="MULTIPLE")
    if "ethnicity" in p.columns:
        out["ETHNIC"] = _ct(p["ethnicity"], ETHNIC_CT)
    dob = next((c for c in ("birth_date", "date_of_birth", "dob", "birthdate") if c in p), None)
    if dob is not None:  # an identifier: dropped unless build_adam(identified=True)
        out["BRTHDT"] = pd.to_datetime(p[dob], errors="coerce").dt.normalize()
    simple = {
        "DISEASE": "diagnosis",
        "EXTRAMED": "extramedullary",
        "PRODSRC": "product_source",
        "DONREL": "donor_relation",
        "HLAMATCH": "hla_match",
        "DOSELVL": "dose_level",
    }
    for var, col in simple.items():
        out[var] = _col(p, col).astype("string")
    nums = {
        "CD7BLPCT": "cd7_blasts_pct",
        "BMBLPCT": "bm_blasts_pct",
        "PRLINES": "prior_lines",
        "DOSEKG": "dose_per_kg",
        "WEIGHTBL": "weight_kg",
        "HEIGHTBL": "height_cm",
    }
    for var, col in nums.items():
        out[var] = _col(p, col, "float64").astype("float64")
    prior = _col(p, "prior_allo_sct", "boolean")
    out["PRSCTFL"] = pd.Series(
        np.where(prior.isna(), None, np.where(prior.fillna(False), "Y", "N")),
        index=idx,
        dtype="string",
    )
    from cartrial.endpoints.populations import POPULATIONS, analysis_populations

    pops = analysis_populations(cohort, response_window).reset_index(drop=True)
    yn = {True: "Y", False: "N"}
    treatment = pd.Series("CAR-T", index=idx, dtype="string")
    level = _col(p, "dose_level").astype("string")
    treatment = treatment.where(level.isna(), "CAR-T " + level)
    enrolled = pops["enrolled"].to_numpy(dtype=bool)
    infused = pops["safety"].to_numpy(dtype=bool)
    out["ARM"] = treatment.where(enrolled, "Screen Failure")
    out["ACTARM"] = treatment.where(infused, np.where(enrolled, "Not Treated", "Screen Failure"))
    out["TRT01P"] = treatment.where(enrolled, None)
    out["TRT01A"] = treatment.where(infused, None)
    for pop in POPULATIONS.values():
        if pop.adam_flag and pop.column in pops.columns:
            out[pop.adam_flag] = pops[pop.column].astype(bool).map(yn).astype("string").to_numpy()
    out["POPEXCL"] = pops["exclusion_reason"].astype("string").to_numpy()
    trt = pd.to_datetime(_col(p, "infusion_date", "datetime64[ns]")).dt.normalize()
    enrl = pd.to_datetime(_col(p, "enrollment_date", "datetime64[ns]")).dt.normalize()
    out["ENRLDT"] = enrl
    out["TRTSDT"] = trt
    out["TRTEDT"] = trt
    # day 0 of the study days: infusion, or enrolment for a patient never infused
    never = _col(p, "infused", "boolean").eq(False).fillna(False).to_numpy(dtype=bool)
    trt = trt.where(~(never & trt.isna().to_numpy()), enrl)
    ev = cohort.events
    if cohort.layout == "tables":
        la = last_known_alive(cohort).reindex(ids.to_numpy())["day"].astype("float64")
        la.index = idx
    else:
        # a wide table states OS directly: its time is the last day known alive (censored)
        # or the death day, so a censored patient reads back with its follow-up, not day 0
        la = pd.Series(np.nan, index=idx)
        given = cohort.given_endpoints
        if given is not None and len(given) and (given["endpoint"] == "OS").any():
            os_ = given[given["endpoint"] == "OS"].drop_duplicates("patient_id")
            la = pd.Series(
                os_.set_index("patient_id")["time_days"]
                .reindex(ids.to_numpy())
                .to_numpy(dtype=float),
                index=idx,
            )
    death = _first(ev, ["death"]).reindex(ids.to_numpy())
    rel = _first(ev, ["relapse", "progression"]).reindex(ids.to_numpy())
    sct = _first(ev, ["sct"]).reindex(ids.to_numpy())
    nth = _first(ev, ["new_therapy"]).reindex(ids.to_numpy())
    dday = death["day"].to_numpy(dtype=float)
    la = la.where(~(la > dday), dday)  # never alive after death
    out["LSTALDAY"] = la
    out["LSTALVDT"] = _dates(trt, la)
    out["DTHFL"] = pd.Series(np.where(~np.isnan(dday), "Y", None), index=idx, dtype="string")
    for prefix, src in (("DTH", death), ("RLPS", rel), ("SCT", sct), ("NTH", nth)):
        day = pd.Series(src["day"].to_numpy(dtype=float), index=idx)
        out[f"{prefix}DAY"] = day
        out[f"{prefix}DT"] = _dates(trt, day)
    out["DTHCAUS"] = pd.Series(death["cause"].to_numpy(), index=idx, dtype="string")
    out["RLPSTYP"] = pd.Series(rel["event"].to_numpy(), index=idx, dtype="string")
    out["RLPSCD7"] = pd.Series(rel["cd7_status"].to_numpy(), index=idx, dtype="string")
    return _order(out, "ADSL")


def _ct(values: pd.Series, ct: dict[str, str], multiple: str | None = None) -> pd.Series:
    """Site spellings -> CDISC controlled terms ("Asian; White" -> MULTIPLE); unknown words
    are kept upper-cased."""

    def one(v: object) -> object:
        if v is None or (not isinstance(v, str) and pd.isna(v)):
            return None
        parts = [x.strip() for x in str(v).split(";") if x.strip()]
        if multiple and len(parts) > 1:
            return multiple
        return ct.get(parts[0].lower(), parts[0].upper()) if parts else None

    return pd.Series([one(v) for v in values], index=values.index, dtype="string")


_SRC = re.compile(r"^(?P<file>.*) row (?P<row>\d+) \((?P<what>.*)\)$")
_SRC_WIDE = re.compile(r"^(?P<file>.*) row (?P<row>\d+): (?P<var>[^,]+)")


def _source_parts(
    source: pd.Series, event_desc: pd.Series, ae: pd.DataFrame
) -> tuple[pd.Series, pd.Series, pd.Series]:
    """SRCDOM/SRCVAR/SRCSEQ from derive_endpoints' ``source`` pointer ("file row N (what)")."""
    ae_var = {}
    if not ae.empty:
        for f, r, res in zip(
            ae["source_file"].astype(str),
            ae["source_row"],
            ae["resolution_day"].notna(),
            strict=True,
        ):
            ae_var[(f, str(r))] = "RESOLUTION_DAY" if res else "ONSET_DAY"
    dom, var, seq = [], [], []
    for s, desc in zip(source.astype(str), event_desc.fillna("").astype(str), strict=True):
        m = _SRC.match(s)
        if m:
            what = m["what"]
            if what == "adverse event":
                dom.append("ADVERSE_EVENTS")
                var.append(ae_var.get((m["file"], m["row"]), "ONSET_DAY"))
            elif what == "observation":
                dom.append("OBSERVATIONS")
                var.append("DAY")
            else:
                dom.append("EVENTS")
                var.append("RESPONSE" if desc.startswith("no response") else "DAY")
            seq.append(float(m["row"]))
            continue
        m = _SRC_WIDE.match(s)
        if m:
            dom.append("PATIENTS")
            var.append(m["var"].strip().upper())
            seq.append(float(m["row"]))
            continue
        dom.append(None)
        var.append(None)
        seq.append(np.nan)
    return (
        pd.Series(dom, dtype="string"),
        pd.Series(var, dtype="string"),
        pd.Series(seq, dtype="float64"),
    )


def cnsr_code(event: pd.Series, censor_desc: pd.Series) -> pd.Series:
    """ADTTE CNSR from derive_endpoints' event flag and censoring description (CNSR_CODES)."""
    desc = censor_desc.fillna("").astype(str)
    code = np.select(
        [
            event.astype(int).to_numpy() == 1,
            desc.str.startswith("censored at last known alive").to_numpy(),
            desc.str.match(r"censored at (sct|new.therapy)").to_numpy(),
            desc.str.startswith("competing event").to_numpy(),
        ],
        [0, 1, 2, 3],
        default=4,
    )
    return pd.Series(code, index=event.index, dtype="float64")


def build_adtte(cohort: Cohort, adsl: pd.DataFrame, options=None) -> pd.DataFrame:
    """ADTTE from ``derive_endpoints`` (one row per patient and endpoint)."""
    from cartrial.cohort.vocab import OBJECTIVE_RESPONSES
    from cartrial.endpoints import derive_endpoints

    tte = derive_endpoints(cohort, options).reset_index(drop=True)
    out = _keys(adsl, tte["patient_id"])
    out["PARAMCD"] = tte["endpoint"].astype("string")
    labels = _endpoint_labels()
    out["PARAM"] = tte["endpoint"].map(lambda e: PARAMS.get(e) or labels.get(e, e)).astype("string")
    out["AVAL"] = tte["time_days"].astype("float64")
    out["AVALU"] = "DAYS"
    start_day = pd.Series(0.0, index=tte.index)
    if cohort.layout == "tables" and (tte["endpoint"] == "DOR").any():
        ev = cohort.events
        resp = ev[(ev["event"] == "response") & ev["response"].isin(list(OBJECTIVE_RESPONSES))]
        first = _first(resp, ["response"])["day"]
        dor = tte["endpoint"] == "DOR"
        start_day[dor] = tte.loc[dor, "patient_id"].map(first).astype("float64")
    trt = (
        adsl.set_index("SUBJID")["TRTSDT"]
        .reindex(tte["patient_id"].astype(str))
        .reset_index(drop=True)
    )
    out["STARTDT"] = _dates(trt, start_day)
    out["STARTDAY"] = start_day
    out["ADT"] = _dates(trt, start_day + out["AVAL"])
    out["CNSR"] = cnsr_code(tte["event"], tte["censor_desc"])
    out["EVNTDESC"] = (
        tte["event_desc"]
        .where(tte["event"] == 1, tte["censor_desc"])
        .replace("", None)
        .astype("string")
    )
    out["CNSDTDSC"] = (
        tte["censor_desc"].where(tte["event"] == 0, None).replace("", None).astype("string")
    )
    out["CAUSE"] = tte["cause"].astype("Float64").astype("float64")
    dom, var, seq = _source_parts(tte["source"], tte["event_desc"], cohort.adverse_events)
    if "source_table" in tte.columns:  # structured provenance of derive_endpoints
        table = tte["source_table"].astype("string").str.upper()
        dom = table.where(table.notna(), dom).astype("string")
        row = pd.to_numeric(tte["source_row"], errors="coerce").astype("float64")
        seq = row.where(row.notna(), seq)
    out["SRCDOM"], out["SRCVAR"], out["SRCSEQ"] = dom, var, seq
    return _order(out, "ADTTE")


def _endpoint_labels() -> dict[str, str]:
    """PARAM of endpoints defined beyond ``PARAMS`` (the endpoint definitions' labels)."""
    try:
        from cartrial.endpoints.definitions import ENDPOINTS
    except ImportError:
        return {}
    return {name: f"{e.label} (days)" for name, e in ENDPOINTS.items()}


def build_adae(cohort: Cohort, adsl: pd.DataFrame, te_window_days: float | None) -> pd.DataFrame:
    """ADAE with treatment-emergent and first-occurrence flags (admiral rules, see module)."""
    ae = cohort.adverse_events.copy()
    if ae.empty:
        return _order(pd.DataFrame(columns=list(VARIABLES["ADAE"])), "ADAE")
    ae = ae.sort_values(["patient_id", "onset_day", "source_row"], kind="stable").reset_index(
        drop=True
    )
    out = _keys(adsl, ae["patient_id"])
    out["AESEQ"] = (ae.groupby("patient_id", sort=False).cumcount() + 1).astype("float64")
    verbatim = _col(ae, "verbatim").astype("string")
    ctcae = ae["term"].map(CTCAE_TERMS)
    out["AETERM"] = verbatim.where(verbatim.notna(), ctcae.str[0]).astype("string")
    out["AEDECOD"] = ctcae.str[0].astype("string")
    out["AEBODSYS"] = ctcae.str[1].astype("string")
    out["AECTERM"] = ae["term"].astype("string")
    out["AEORGAN"] = _col(ae, "organ").astype("string")
    grade = ae["grade"].astype("Float64").astype("float64")
    out["ATOXGRN"] = grade
    out["ATOXGR"] = pd.Series([None if np.isnan(g) else str(int(g)) for g in grade], dtype="string")
    out["ATOXSYS"] = _col(ae, "system").astype("string")
    out["TRTA"] = (
        adsl.set_index("SUBJID")["TRT01A"].reindex(ae["patient_id"].astype(str)).to_numpy()
    )
    ser = _col(ae, "serious", "boolean")
    out["AESER"] = pd.Series(
        np.where(ser.isna(), None, np.where(ser.fillna(False), "Y", "N")), dtype="string"
    )
    trt = (
        adsl.set_index("SUBJID")["TRTSDT"]
        .reindex(ae["patient_id"].astype(str))
        .reset_index(drop=True)
    )
    onset = ae["onset_day"].astype("float64")
    end = ae["resolution_day"].astype("float64")
    out["ASTDT"], out["AENDT"] = _dates(trt, onset), _dates(trt, end)
    out["ASTDY"], out["AENDY"] = cdisc_day(onset), cdisc_day(end)
    out["ASTDYPUB"], out["AENDYPUB"] = onset, end
    saf = adsl.set_index("SUBJID")["SAFFL"].reindex(ae["patient_id"].astype(str)).to_numpy() == "Y"
    upper = np.inf if te_window_days is None else float(te_window_days)
    te = saf & (onset.to_numpy() >= 0) & (onset.to_numpy() <= upper)
    out["TRTEMFL"] = pd.Series(np.where(te, "Y", None), dtype="string")
    late = saf & (onset.to_numpy() > upper) & (grade.to_numpy() == 5)
    out.attrs["te_window"] = te_window_text(te_window_days)
    out.attrs["notes"] = [
        f"ADAE: grade-5 {t} of {s} on day {d:g} is after the treatment-emergent window "
        f"({te_window_days:g} days): TRTEMFL not set"
        for s, t, d in zip(
            out.loc[late, "SUBJID"], out.loc[late, "AEDECOD"].fillna(""), onset[late], strict=True
        )
    ]
    out["AOCCIFL"] = _first_flag(out, te, ["USUBJID"], worst=True)
    out["AOCCPFL"] = _first_flag(out, te, ["USUBJID", "AEDECOD"], worst=False)
    out["AOCCPIFL"] = _first_flag(out, te, ["USUBJID", "AEDECOD"], worst=True)
    out["SRCSEQ"] = ae["source_row"].astype("Float64").astype("float64")
    return _order(out, "ADAE")


def te_window_text(te_window_days: float | None) -> str:
    """The treatment-emergent rule as stated in the metadata."""
    if te_window_days is None:
        return (
            "TRTEMFL = Y: onset on or after the CAR-T infusion (day 0), whole follow-up "
            "(no upper bound: CAR-T default)"
        )
    return (
        f"TRTEMFL = Y: onset on or after the CAR-T infusion (day 0) and at most "
        f"{te_window_days:g} days after it"
    )


def _first_flag(adae: pd.DataFrame, te: np.ndarray, by: list[str], worst: bool) -> pd.Series:
    """admiral derive_var_extreme_flag(mode = "first") among treatment-emergent records."""
    sub = adae[te].copy()
    sub["_neg_grade"] = -sub["ATOXGRN"].fillna(-1)
    order = [*by, "_neg_grade", "ASTDYPUB", "AESEQ"] if worst else [*by, "ASTDYPUB", "AESEQ"]
    first = sub.sort_values(order, kind="stable").drop_duplicates(by).index
    flag = pd.Series(pd.NA, index=adae.index, dtype="string")
    flag[first] = "Y"
    return flag


def build_adrs(
    cohort: Cohort, adsl: pd.DataFrame, response_window: tuple[float, float]
) -> pd.DataFrame:
    """ADRS: OVRLRESP for every assessment, BOR (best in the window, ``best_response``)."""
    from cartrial.endpoints import best_response

    cols = list(VARIABLES["ADRS"])
    if cohort.layout != "tables":
        return pd.DataFrame(columns=cols)
    ev = cohort.events
    resp = (
        ev[(ev["event"] == "response") & ev["response"].notna()]
        .sort_values(["patient_id", "day", "source_row"], kind="stable")
        .reset_index(drop=True)
    )
    rank = {r: i + 1 for i, r in enumerate(RESPONSE_ORDER)}
    o = _keys(adsl, resp["patient_id"])
    o["PARAMCD"] = "OVRLRESP"
    o["PARAM"] = "Overall Response by Investigator"
    o["AVALC"] = resp["response"].astype("string")
    o["AVAL"] = resp["response"].map(rank).astype("float64")
    o["MRDSTAT"] = _col(resp, "mrd").astype("string")
    o["MRDVAL"] = _col(resp, "mrd_value", "float64").astype("float64")
    o["ADYPUB"] = resp["day"].astype("float64")
    o["SRCSEQ"] = resp["source_row"].astype("Float64").astype("float64")
    best = best_response(cohort, response_window)
    best = best[best["best_response"].notna()].reset_index(drop=True)
    b = _keys(adsl, best["patient_id"])
    b["PARAMCD"] = "BOR"
    b["PARAM"] = f"Best Overall Response, Days {response_window[0]:g}-{response_window[1]:g}"
    b["AVALC"] = best["best_response"].astype("string")
    b["AVAL"] = best["best_response"].map(rank).astype("float64")
    b["MRDSTAT"] = best["mrd"].astype("string")
    b["MRDVAL"] = np.nan
    b["ADYPUB"] = best["day"].astype("float64")
    b["SRCSEQ"] = best["source"].str.extract(r" row (\d+) ")[0].astype("float64")
    out = pd.concat([o, b], ignore_index=True)
    trt = (
        adsl.set_index("SUBJID")["TRTSDT"].reindex(out["SUBJID"].astype(str)).reset_index(drop=True)
    )
    out["ADY"] = cdisc_day(out["ADYPUB"])
    out["ADT"] = _dates(trt, out["ADYPUB"])
    return _order(out, "ADRS")


def obs_param(analyte: str) -> str:
    """ADLB/ADPC PARAM: the display label of an analyte (``cartrial.cohort.labels``) in
    ASCII, e.g. ``cd7neg_t`` → "CD7- T cells"; the unit is in AVALU. An analyte outside the
    vocabulary keeps its own name (nothing guessed), so reading back is exact."""
    a = str(analyte)
    if a in _ANALYTES or a in _labels.COLUMNS:
        return _labels.ascii_text(_labels.label(a, unit=False))
    return a


def _obs_analyte_of() -> dict[str, str]:
    """PARAM text → analyte (the inverse of :func:`obs_param` over the vocabulary)."""
    return {obs_param(a): a for a in (*_labels.COLUMNS, *_ANALYTES)}


def pp_param(param: str) -> str:
    """ADPP PARAM: the NCA parameter's display label in ASCII with its fixed unit where the
    registry has one ("Tmax (days)", "AUC0-28"); concentration units are per analyte, in
    AVALU, so PARAM stays one text per PARAMCD across analytes."""
    name = _labels.ascii_text(_labels.label(param, unit=False))
    unit = _labels.ascii_text(_labels.unit_of(param))
    return f"{name} ({unit})" if unit else name


def _paramcd(analyte: pd.Series) -> pd.Series:
    return analyte.map(lambda a: PK_ANALYTES.get(a) or re.sub(r"[^A-Z0-9]", "", str(a).upper())[:8])


def _bds_obs(cohort: Cohort, adsl: pd.DataFrame, pk: bool) -> pd.DataFrame:
    ob = cohort.observations
    name = "ADPC" if pk else "ADLB"
    if ob.empty:
        return pd.DataFrame(columns=list(VARIABLES[name]))
    is_pk = ob["analyte"].isin(list(PK_ANALYTES))
    ob = (
        ob[is_pk if pk else ~is_pk]
        .sort_values(["patient_id", "analyte", "day", "source_row"], kind="stable")
        .reset_index(drop=True)
    )
    out = _keys(adsl, ob["patient_id"])
    out["PARAMCD"] = _paramcd(ob["analyte"]).astype("string")
    out["PARAM"] = ob["analyte"].map(obs_param).astype("string")
    out["AVAL"] = ob["value"].astype("float64")
    if not pk:
        out["AVALC"] = _col(ob, "value_text").astype("string")
    out["AVALU"] = _col(ob, "unit").astype("string")
    lloq = _col(ob, "lloq", "float64").astype("float64")
    out["ALLOQ"] = lloq
    if pk:
        blq = (out["AVAL"] < lloq) | (out["AVAL"] <= 0)
        out["BLQFL"] = pd.Series(np.where(blq.fillna(False), "Y", None), dtype="string")
    day = ob["day"].astype("float64")
    out["ATPT"] = day.map(lambda d: f"Day {d:g}").astype("string")
    out["ADYPUB"] = day
    out["ADY"] = cdisc_day(day)
    trt = (
        adsl.set_index("SUBJID")["TRTSDT"]
        .reindex(ob["patient_id"].astype(str))
        .reset_index(drop=True)
    )
    out["ADT"] = _dates(trt, day)
    out["SRCSEQ"] = ob["source_row"].astype("Float64").astype("float64")
    return _order(out, name)


def build_adpp(cohort: Cohort, adsl: pd.DataFrame) -> tuple[pd.DataFrame | None, str]:
    """ADPP from ``cartrial.kinetics`` NCA when that layer is installed; else (None, why)."""
    try:
        from cartrial.kinetics.nca import nca_table
    except ImportError:
        return None, "ADPP not written: the kinetics layer (cartrial.kinetics.nca) is not installed"
    ob = cohort.observations
    parts = []
    notes = []
    for analyte in PK_ANALYTES:
        if ob.empty or not (ob["analyte"] == analyte).any():
            continue
        sub = ob[ob["analyte"] == analyte]
        try:
            table = nca_table(sub, analyte=analyte)
        except ValueError as exc:
            notes.append(f"ADPP {analyte}: NCA not computed ({exc})")
            continue
        unit = table["unit"] if "unit" in table.columns else pd.Series(None, index=table.index)
        numeric = [
            c
            for c in table.columns
            if c not in ("patient_id", "analyte", "unit")
            and pd.api.types.is_numeric_dtype(table[c])
        ]
        long = table.melt(
            id_vars=["patient_id"], value_vars=numeric, var_name="param", value_name="AVAL"
        )
        long["PCTEST"] = analyte
        u = unit.dropna().iloc[0] if unit.notna().any() else None
        long["AVALU"] = long["param"].map(lambda c, u=u: _pp_unit(c, u))
        parts.append(long)
    if not parts:
        return None, "; ".join(notes) or "ADPP not written: no CAR-T kinetics observations"
    long = pd.concat(parts, ignore_index=True)
    out = _keys(adsl, long["patient_id"])
    out["PARAMCD"] = (
        long["param"].map(lambda c: re.sub(r"[^A-Z0-9]", "", c.upper())[:8]).astype("string")
    )
    out["PARAM"] = long["param"].map(pp_param).astype("string")
    out["PCTEST"] = long["PCTEST"].astype("string")
    out["AVAL"] = pd.to_numeric(long["AVAL"], errors="coerce").astype("float64")
    out["AVALU"] = long["AVALU"].astype("string")
    return _order(out, "ADPP"), "; ".join(notes)


def _pp_unit(param: str, unit: str | None) -> str | None:
    """Unit of an NCA parameter: concentrations in the analyte's unit, times in days."""
    unitless = ("span_ratio", "lambda_z_poor", "lambda_z_flag")
    if (
        param.startswith("n_")
        or param.endswith("n_points")
        or "r_squared" in param
        or param in unitless
    ):
        return None
    if param.startswith("auc"):
        return None if unit is None else f"{unit}*day"
    if param == "lambda_z":
        return "1/day"
    if param.startswith(("t", "persistence", "half_life", "lambda_z_", "last_sample")):
        return "DAYS"
    return unit


def _order(df: pd.DataFrame, name: str) -> pd.DataFrame:
    cols = [c for c in VARIABLES[name] if c in df.columns]
    return df[cols].reset_index(drop=True)


def build_adam(
    cohort: Cohort,
    te_window_days: float | None = TE_WINDOW_DAYS,
    study_id: str = "CARTRIAL",
    options=None,
    kinetics: bool = True,
    identified: bool = False,
) -> dict[str, pd.DataFrame]:
    """All ADaM-like datasets of a cohort: {"ADSL": …, "ADTTE": …, …}.

    ``options`` is a ``cartrial.endpoints.EndpointOptions`` (its ``response_window`` is
    also the BOR window and the EFFFL definition). ``te_window_days`` bounds the
    treatment-emergent window after infusion (None: no upper bound). ADPP (NCA) is added
    when ``kinetics`` and the kinetics layer is installed; notes go to ``attrs["notes"]``.
    Identifier variables (``Var.identifier``: BRTHDT) are written only if ``identified``.
    """
    from cartrial.endpoints import EndpointOptions

    options = options or EndpointOptions()
    window = options.response_window
    adsl = build_adsl(cohort, study_id, window)
    adam = {"ADSL": adsl, "ADTTE": build_adtte(cohort, adsl, options)}
    notes: list[str] = []
    if cohort.layout == "tables":
        adam["ADAE"] = build_adae(cohort, adsl, te_window_days)
        notes += adam["ADAE"].attrs.get("notes", [])
        adam["ADRS"] = build_adrs(cohort, adsl, window)
        adam["ADPC"] = _bds_obs(cohort, adsl, pk=True)
        adam["ADLB"] = _bds_obs(cohort, adsl, pk=False)
        if kinetics:
            adpp, note = build_adpp(cohort, adsl)
            if adpp is not None:
                adam["ADPP"] = adpp
            if note:
                notes.append(note)
    if not identified:
        adam = {
            k: v.drop(columns=[c for c in v.columns if VARIABLES[k][c].identifier])
            for k, v in adam.items()
        }
    for df in adam.values():
        df.attrs["notes"] = notes
        df.attrs["te_window"] = te_window_text(te_window_days)
    return adam


# --------------------------------------------------------------------------- back to a cohort


def cohort_from_adam(adam: dict[str, pd.DataFrame], source: str = "adam") -> Cohort:
    """Rebuild patients, events, adverse events and observations from ADaM datasets.

    Events come from ADRS ``OVRLRESP`` (every assessment), ADSL's first relapse /
    progression, SCT, new therapy, death and last-known-alive days, and the relapse or
    progression that ended a response (ADTTE DOR's event day) — all that the
    endpoint definitions use, so ``derive_endpoints`` of the result equals that of the
    original cohort (source pointers aside). Uses the day-0 ``*DAY``/``ADYPUB`` columns,
    so it works on de-identified exports in either date mode.
    """
    from cartrial.cohort import cohort_from_frames

    adam = {k: _sas_missing(v) for k, v in adam.items()}
    adsl = adam["ADSL"]
    pid = adsl["SUBJID"].astype(str)

    def g(col: str, kind: str = "string") -> pd.Series:
        return _col(adsl, col, kind).reset_index(drop=True)

    patients = pd.DataFrame(
        {
            "patient_id": pid.reset_index(drop=True),
            "site": g("SITEID"),
            "age_years": g("AGE", "float64"),
            "sex": g("SEX"),
            "diagnosis": g("DISEASE"),
            "cd7_blasts_pct": g("CD7BLPCT", "float64"),
            "bm_blasts_pct": g("BMBLPCT", "float64"),
            "extramedullary": g("EXTRAMED"),
            "prior_lines": g("PRLINES", "float64"),
            "prior_allo_sct": g("PRSCTFL").map({"Y": True, "N": False}).astype("boolean"),
            "product_source": g("PRODSRC"),
            "donor_relation": g("DONREL"),
            "hla_match": g("HLAMATCH"),
            "dose_per_kg": g("DOSEKG", "float64"),
            "dose_level": g("DOSELVL"),
            "weight_kg": g("WEIGHTBL", "float64"),
            "height_cm": g("HEIGHTBL", "float64"),
            "enrolled": (g("ITTFL") if "ITTFL" in adsl.columns else g("ENRLFL"))
            .map({"Y": True, "N": False})
            .astype("boolean"),
            "infused": _infused_back(adsl),
        }
    )
    if "RACE" in adsl.columns:
        patients["race"] = g("RACE")
    if "ETHNIC" in adsl.columns:
        patients["ethnicity"] = g("ETHNIC")
    if "ENRLDT" in adsl.columns:
        patients["enrollment_date"] = pd.to_datetime(g("ENRLDT", "datetime64[ns]"))
    if "TRTSDT" in adsl.columns:
        patients["infusion_date"] = pd.to_datetime(g("TRTSDT", "datetime64[ns]"))
    rows = []
    adrs = adam.get("ADRS")
    if adrs is not None and len(adrs):
        o = adrs[adrs["PARAMCD"] == "OVRLRESP"]
        rows.append(
            pd.DataFrame(
                {
                    "patient_id": o["SUBJID"].astype(str),
                    "day": o["ADYPUB"],
                    "event": "response",
                    "response": o["AVALC"],
                    "mrd": _col(o, "MRDSTAT"),
                    "mrd_value": _col(o, "MRDVAL", "float64"),
                }
            )
        )
    for day_col, kind, extra in (
        ("RLPSDAY", None, {"cd7_status": "RLPSCD7"}),
        ("SCTDAY", "sct", {}),
        ("NTHDAY", "new_therapy", {}),
        ("DTHDAY", "death", {"cause": "DTHCAUS"}),
        ("LSTALDAY", "last_contact", {}),
    ):
        if day_col not in adsl.columns:
            continue
        have = adsl[day_col].notna()
        sub = adsl[have]
        ev = pd.DataFrame(
            {
                "patient_id": sub["SUBJID"].astype(str),
                "day": sub[day_col],
                "event": sub["RLPSTYP"] if kind is None else kind,
            }
        )
        for col, var in extra.items():
            ev[col] = sub[var]
        rows.append(ev)
    adtte = adam.get("ADTTE")
    if adtte is not None and len(adtte) and "STARTDAY" in adtte.columns:
        # a relapse/progression that ends a response may come after an earlier one (which
        # ADSL's first-relapse day holds): rebuild it from DOR's event day
        dor = adtte[
            (adtte["PARAMCD"] == "DOR")
            & (adtte["CNSR"] == 0)
            & adtte["EVNTDESC"].isin(["relapse", "progression"])
        ]
        if len(dor):
            rows.append(
                pd.DataFrame(
                    {
                        "patient_id": dor["SUBJID"].astype(str),
                        "day": dor["STARTDAY"] + dor["AVAL"],
                        "event": dor["EVNTDESC"],
                    }
                )
            )
    events = pd.concat(rows, ignore_index=True) if rows else None
    adverse = None
    adae = adam.get("ADAE")
    if adae is not None and len(adae):
        adverse = pd.DataFrame(
            {
                "patient_id": adae["SUBJID"].astype(str),
                "term": _col(adae, "AECTERM").fillna(adae["AEDECOD"].map(_CTCAE_BACK)),
                "onset_day": adae["ASTDYPUB"],
                "resolution_day": adae["AENDYPUB"],
                "grade": adae["ATOXGRN"],
                "system": _col(adae, "ATOXSYS"),
                "serious": _col(adae, "AESER").map({"Y": True, "N": False}).astype("boolean"),
                "organ": _col(adae, "AEORGAN"),
            }
        )
        if "AETERM" in adae.columns:
            adverse["verbatim"] = adae["AETERM"].where(adae["AETERM"] != adae["AEDECOD"])
            adverse["verbatim"] = adverse["verbatim"].where(adverse["verbatim"].notna(), None)
    obs_parts = []
    back = _obs_analyte_of()
    for name in ("ADPC", "ADLB"):
        d = adam.get(name)
        if d is not None and len(d):
            value = d["AVAL"].astype(object)
            if "AVALC" in d.columns:
                value = value.where(d["AVALC"].isna(), d["AVALC"])
            obs_parts.append(
                pd.DataFrame(
                    {
                        "patient_id": d["SUBJID"].astype(str),
                        "day": d["ADYPUB"],
                        "analyte": d["PARAM"].map(lambda p, back=back: back.get(p, p)),
                        "value": value,
                        "unit": d["AVALU"],
                        "lloq": d["ALLOQ"],
                    }
                )
            )
    observations = pd.concat(obs_parts, ignore_index=True) if obs_parts else None
    return cohort_from_frames(patients, events, adverse, observations, source=source)


_CTCAE_BACK = {}
for _term, (_ctcae, _soc) in CTCAE_TERMS.items():
    _CTCAE_BACK.setdefault(_ctcae, _term)


def _sas_missing(df: pd.DataFrame) -> pd.DataFrame:
    """SAS has no missing character value: a .xpt read back holds "" — that is missing."""
    out = df.copy()
    for col in out.columns:
        if out[col].dtype == object or str(out[col].dtype) == "string":
            text = out[col].astype("string")
            out[col] = text.where(text.str.strip() != "", pd.NA)
    return out


def _infused_back(adsl: pd.DataFrame) -> pd.Series:
    """patients.infused from the treatment variables: TRT01A given -> yes; ACTARM 'Not
    Treated' -> no; screen failures and older exports without TRT01A -> SAFFL."""
    if "TRT01A" in adsl.columns and "ACTARM" in adsl.columns:
        trt = adsl["TRT01A"].notna().to_numpy()
        no = (adsl["ACTARM"] == "Not Treated").fillna(False).to_numpy()
        return pd.Series(
            np.where(trt, True, np.where(no, False, None)), dtype="boolean"
        ).reset_index(drop=True)
    return adsl["SAFFL"].map({"Y": True, "N": False}).astype("boolean").reset_index(drop=True)
