"""ADaM metadata as data (the role of admiral's specs): every variable of every dataset
(``VARIABLES``: label, type, identifier and free-text flags, derivation note), the
censoring codes, the parameters, the CTCAE v5.0 coding of cohort AE terms, the CDISC
controlled terminology and the PARAM texts of observations and NCA parameters.

``cartrial.io.adam.build`` builds the datasets from these tables, ``define.csv`` and
Define-XML 2.1 (``cartrial.io.define_xml``) document them, de-identification
(``cartrial.io.deid``) reads their flags and ``cartrial.io.adam.reverse`` maps them back.
"""

from __future__ import annotations

from dataclasses import dataclass

from cartrial.cohort import labels as _labels
from cartrial.cohort.vocab import ANALYTES as _ANALYTES
from cartrial.endpoints.response import RESPONSE_RANK
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


# --------------------------------------------------------------------------- PARAM text


def obs_param(analyte: str) -> str:
    """ADLB/ADPC PARAM: the display label of an analyte (``cartrial.cohort.labels``) in
    ASCII, e.g. ``cd7neg_t`` → "CD7- T cells"; the unit is in AVALU. An analyte outside the
    vocabulary keeps its own name (nothing guessed), so reading back is exact."""
    a = str(analyte)
    if a in _ANALYTES or a in _labels.COLUMNS:
        return _labels.ascii_text(_labels.label(a, unit=False))
    return a


def obs_analyte_of() -> dict[str, str]:
    """PARAM text → analyte (the inverse of :func:`obs_param` over the vocabulary)."""
    return {obs_param(a): a for a in (*_labels.COLUMNS, *_ANALYTES)}


def pp_param(param: str) -> str:
    """ADPP PARAM: the NCA parameter's display label in ASCII with its fixed unit where the
    registry has one ("Tmax (days)", "AUC0-28"); concentration units are per analyte, in
    AVALU, so PARAM stays one text per PARAMCD across analytes."""
    name = _labels.ascii_text(_labels.label(param, unit=False))
    unit = _labels.ascii_text(_labels.unit_of(param))
    return f"{name} ({unit})" if unit else name


def pp_unit(param: str, unit: str | None) -> str | None:
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
