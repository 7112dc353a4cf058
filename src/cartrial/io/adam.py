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
- ``AOCCIFL``/``AOCCPFL``/``AOCCPIFL`` follow admiral ``derive_var_extreme_flag()``
  among treatment-emergent AEs: first worst-grade AE per subject, first AE per subject
  and term, first worst-grade AE per subject and term.

Dates are present only where ``patients.infusion_date`` is known. Every variable is
documented in ``VARIABLES`` (written as ``define.csv`` with the export).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import pandas as pd

from cartrial.cohort.model import Cohort

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
    "DFS": "Disease-Free Survival, CR/CRi/CRh (days)",
    "DOR": "Duration of Response (days)",
    "CIR": "Time to Relapse, competing NRM (days)",
    "NRM": "Time to Non-Relapse Death, compet. CIR",
}
PK_ANALYTES = {"cart_flow": "CARTFLOW", "cart_qpcr": "CARTQPCR", "cart_pct_cd3": "CARTPCT"}
RESPONSE_ORDER = ("CR", "CRh", "CRi", "MLFS", "PR", "OR", "SD", "NR", "PD", "NE")


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
    ADYPUB=Var("Days Since Infusion (Day 0 = Infusion)", "num",
               note="publication convention, cohort day"),
    ADT=Var("Analysis Date", "date"),
)
VARIABLES: dict[str, dict[str, Var]] = {
    "ADSL": _common(
        ("AGE", Var("Age", "num", note="set missing for ages >= 90 when de-identified")),
        ("AGEU", Var("Age Units")),
        ("AGEGR1", Var("Pooled Age Group 1", note="0-17, 18-64, 65-89, 90+")),
        ("SEX", Var("Sex")),
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
        ("DOSEKG", Var("Dose (x10^6 CAR+ cells/kg)", "num")),
        ("DOSELVL", Var("Dose Level")),
        ("WEIGHTBL", Var("Baseline Weight (kg)", "num")),
        ("HEIGHTBL", Var("Baseline Height (cm)", "num")),
        ("ENRLFL", Var("Enrolled Population Flag", note="Y unless patients.enrolled is false")),
        ("SAFFL", Var("Safety Population Flag", note="infused: patients.infused not false")),
        ("EFFFL", Var("Efficacy-Evaluable Population Flag",
                      note="infused and a response assessment in the response window")),
        ("TRTSDT", Var("Date of CAR-T Infusion (Day 0)", "date")),
        ("TRTEDT", Var("Date of Last Exposure to Treatment", "date", note="single infusion")),
        ("LSTALVDT", Var("Date Last Known Alive", "date")),
        ("LSTALDAY", Var("Last Known Alive, Days Since Infusion", "num")),
        ("DTHFL", Var("Subject Death Flag")),
        ("DTHDT", Var("Date of Death", "date")),
        ("DTHDAY", Var("Death, Days Since Infusion", "num")),
        ("DTHCAUS", Var("Cause of Death")),
        ("RLPSDT", Var("Date of First Relapse/Progression", "date")),
        ("RLPSDAY", Var("First Relapse, Days Since Infusion", "num",
                        note="relapse or progression")),
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
        ("CAUSE", Var("Competing Risk Cause", "num",
                      note="CIR/NRM: 0 censored, 1 relapse/progression, 2 death w/o relapse")),
        ("SRCDOM", Var("Source Data")),
        ("SRCVAR", Var("Source Variable")),
        ("SRCSEQ", Var("Source Sequence Number", "num", note="line of the source file")),
    ),
    "ADAE": _common(
        ("AESEQ", Var("Sequence Number", "num")),
        ("AETERM", Var("Reported Term for the Adverse Event", free_text=True,
                       note="verbatim term where given, else AEDECOD")),
        ("AEDECOD", Var("Dictionary-Derived Term", note="cohort vocabulary term")),
        ("AEORGAN", Var("Organ or Site", free_text=True, note="typed by hand in the template")),
        ("ATOXGR", Var("Analysis Toxicity Grade")),
        ("ATOXGRN", Var("Analysis Toxicity Grade (N)", "num")),
        ("ATOXSYS", Var("Toxicity Grading System")),
        ("AESER", Var("Serious Event")),
        ("ASTDT", Var("Analysis Start Date", "date")),
        ("AENDT", Var("Analysis End Date", "date")),
        ("ASTDY", Var("Analysis Start Relative Day", "num")),
        ("AENDY", Var("Analysis End Relative Day", "num")),
        ("ASTDYPUB", Var("Onset, Days Since Infusion (Day 0)", "num")),
        ("AENDYPUB", Var("Resolution, Days Since Infusion (Day 0)", "num")),
        ("TRTEMFL", Var("Treatment Emergent Analysis Flag")),
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
    return (pd.to_datetime(origin).reset_index(drop=True) + td.reset_index(drop=True)).set_axis(
        day.index).dt.normalize()


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
    return sub.sort_values(["day", "source_row"], kind="stable").drop_duplicates("patient_id") \
        .set_index("patient_id")


# --------------------------------------------------------------------------- datasets


def build_adsl(cohort: Cohort, study_id: str, response_window: tuple[float, float]) -> pd.DataFrame:
    """ADSL: one row per patient, population flags and key dates (see ``VARIABLES``)."""
    from cartrial.endpoints import best_response, last_known_alive

    p = cohort.patients.reset_index(drop=True)
    ids = p["patient_id"].astype(str)
    idx = p.index
    out = pd.DataFrame({"STUDYID": study_id, "USUBJID": study_id + "-" + ids, "SUBJID": ids},
                       index=idx).astype("string")
    out["SITEID"] = _col(p, "site").astype("string")
    age = _col(p, "age_years", "float64").astype("float64")
    out["AGE"] = age
    out["AGEU"] = pd.Series(np.where(age.notna(), "YEARS", None), index=idx, dtype="string")
    out["AGEGR1"] = _age_group(age)
    out["SEX"] = _col(p, "sex").astype("string")
    if "birth_date" in p.columns:
        out["BRTHDT"] = pd.to_datetime(p["birth_date"], errors="coerce").dt.normalize()
    simple = {"DISEASE": "diagnosis", "EXTRAMED": "extramedullary", "PRODSRC": "product_source",
              "DONREL": "donor_relation", "HLAMATCH": "hla_match", "DOSELVL": "dose_level"}
    for var, col in simple.items():
        out[var] = _col(p, col).astype("string")
    nums = {"CD7BLPCT": "cd7_blasts_pct", "BMBLPCT": "bm_blasts_pct", "PRLINES": "prior_lines",
            "DOSEKG": "dose_per_kg", "WEIGHTBL": "weight_kg", "HEIGHTBL": "height_cm"}
    for var, col in nums.items():
        out[var] = _col(p, col, "float64").astype("float64")
    prior = _col(p, "prior_allo_sct", "boolean")
    out["PRSCTFL"] = pd.Series(np.where(prior.isna(), None, np.where(prior.fillna(False), "Y", "N")),
                               index=idx, dtype="string")
    enrolled = _col(p, "enrolled", "boolean")
    infused = _col(p, "infused", "boolean")
    out["ENRLFL"] = pd.Series(np.where(enrolled.eq(False).fillna(False), "N", "Y"), index=idx,
                              dtype="string")
    saf = ~infused.eq(False).fillna(False).to_numpy(dtype=bool)
    out["SAFFL"] = pd.Series(np.where(saf, "Y", "N"), index=idx, dtype="string")
    if cohort.layout == "tables":
        best = best_response(cohort, response_window).set_index("patient_id").reindex(ids)
        assessed = best["best_response"].notna().to_numpy()
    else:
        assessed = np.zeros(len(ids), dtype=bool)
    out["EFFFL"] = pd.Series(np.where(saf & assessed, "Y", "N"), index=idx, dtype="string")
    trt = pd.to_datetime(_col(p, "infusion_date", "datetime64[ns]")).dt.normalize()
    out["TRTSDT"] = trt
    out["TRTEDT"] = trt
    ev = cohort.events
    if cohort.layout == "tables":
        la = last_known_alive(cohort).reindex(ids.to_numpy())["day"].astype("float64")
        la.index = idx
    else:
        la = pd.Series(np.nan, index=idx)
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


_SRC = re.compile(r"^(?P<file>.*) row (?P<row>\d+) \((?P<what>.*)\)$")
_SRC_WIDE = re.compile(r"^(?P<file>.*) row (?P<row>\d+): (?P<var>[^,]+)")


def _source_parts(source: pd.Series, event_desc: pd.Series, ae: pd.DataFrame
                  ) -> tuple[pd.Series, pd.Series, pd.Series]:
    """SRCDOM/SRCVAR/SRCSEQ from derive_endpoints' ``source`` pointer ("file row N (what)")."""
    ae_var = {}
    if not ae.empty:
        for f, r, res in zip(ae["source_file"].astype(str), ae["source_row"],
                             ae["resolution_day"].notna(), strict=True):
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
    return (pd.Series(dom, dtype="string"), pd.Series(var, dtype="string"),
            pd.Series(seq, dtype="float64"))


def cnsr_code(event: pd.Series, censor_desc: pd.Series) -> pd.Series:
    """ADTTE CNSR from derive_endpoints' event flag and censoring description (CNSR_CODES)."""
    desc = censor_desc.fillna("").astype(str)
    code = np.select(
        [event.astype(int).to_numpy() == 1,
         desc.str.startswith("censored at last known alive").to_numpy(),
         desc.str.match(r"censored at (sct|new_therapy)").to_numpy(),
         desc.str.startswith("competing event").to_numpy()],
        [0, 1, 2, 3], default=4)
    return pd.Series(code, index=event.index, dtype="float64")


def build_adtte(cohort: Cohort, adsl: pd.DataFrame, options=None) -> pd.DataFrame:
    """ADTTE from ``derive_endpoints`` (one row per patient and endpoint)."""
    from cartrial.endpoints import derive_endpoints
    from cartrial.endpoints.derive import OBJECTIVE_RESPONSES

    tte = derive_endpoints(cohort, options).reset_index(drop=True)
    out = _keys(adsl, tte["patient_id"])
    out["PARAMCD"] = tte["endpoint"].astype("string")
    out["PARAM"] = tte["endpoint"].map(PARAMS).fillna(tte["endpoint"]).astype("string")
    out["AVAL"] = tte["time_days"].astype("float64")
    out["AVALU"] = "DAYS"
    start_day = pd.Series(0.0, index=tte.index)
    if cohort.layout == "tables" and (tte["endpoint"] == "DOR").any():
        ev = cohort.events
        resp = ev[(ev["event"] == "response") & ev["response"].isin(list(OBJECTIVE_RESPONSES))]
        first = _first(resp, ["response"])["day"]
        dor = tte["endpoint"] == "DOR"
        start_day[dor] = tte.loc[dor, "patient_id"].map(first).astype("float64")
    trt = adsl.set_index("SUBJID")["TRTSDT"].reindex(tte["patient_id"].astype(str)).reset_index(
        drop=True)
    out["STARTDT"] = _dates(trt, start_day)
    out["STARTDAY"] = start_day
    out["ADT"] = _dates(trt, start_day + out["AVAL"])
    out["CNSR"] = cnsr_code(tte["event"], tte["censor_desc"])
    out["EVNTDESC"] = tte["event_desc"].where(tte["event"] == 1, tte["censor_desc"]).replace(
        "", None).astype("string")
    out["CNSDTDSC"] = tte["censor_desc"].where(tte["event"] == 0, None).replace("", None).astype(
        "string")
    out["CAUSE"] = tte["cause"].astype("Float64").astype("float64")
    dom, var, seq = _source_parts(tte["source"], tte["event_desc"], cohort.adverse_events)
    out["SRCDOM"], out["SRCVAR"], out["SRCSEQ"] = dom, var, seq
    return _order(out, "ADTTE")


def build_adae(cohort: Cohort, adsl: pd.DataFrame, te_window_days: float | None) -> pd.DataFrame:
    """ADAE with treatment-emergent and first-occurrence flags (admiral rules, see module)."""
    ae = cohort.adverse_events.copy()
    if ae.empty:
        return _order(pd.DataFrame(columns=list(VARIABLES["ADAE"])), "ADAE")
    ae = ae.sort_values(["patient_id", "onset_day", "source_row"], kind="stable").reset_index(
        drop=True)
    out = _keys(adsl, ae["patient_id"])
    out["AESEQ"] = (ae.groupby("patient_id", sort=False).cumcount() + 1).astype("float64")
    verbatim = _col(ae, "verbatim").astype("string")
    out["AETERM"] = verbatim.where(verbatim.notna(), ae["term"]).astype("string")
    out["AEDECOD"] = ae["term"].astype("string")
    out["AEORGAN"] = _col(ae, "organ").astype("string")
    grade = ae["grade"].astype("Float64").astype("float64")
    out["ATOXGRN"] = grade
    out["ATOXGR"] = pd.Series([None if np.isnan(g) else str(int(g)) for g in grade],
                              dtype="string")
    out["ATOXSYS"] = _col(ae, "system").astype("string")
    ser = _col(ae, "serious", "boolean")
    out["AESER"] = pd.Series(np.where(ser.isna(), None, np.where(ser.fillna(False), "Y", "N")),
                             dtype="string")
    trt = adsl.set_index("SUBJID")["TRTSDT"].reindex(ae["patient_id"].astype(str)).reset_index(
        drop=True)
    onset = ae["onset_day"].astype("float64")
    end = ae["resolution_day"].astype("float64")
    out["ASTDT"], out["AENDT"] = _dates(trt, onset), _dates(trt, end)
    out["ASTDY"], out["AENDY"] = cdisc_day(onset), cdisc_day(end)
    out["ASTDYPUB"], out["AENDYPUB"] = onset, end
    saf = adsl.set_index("SUBJID")["SAFFL"].reindex(ae["patient_id"].astype(str)).to_numpy() == "Y"
    upper = np.inf if te_window_days is None else float(te_window_days)
    te = saf & (onset.to_numpy() >= 0) & (onset.to_numpy() <= upper)
    out["TRTEMFL"] = pd.Series(np.where(te, "Y", None), dtype="string")
    out["AOCCIFL"] = _first_flag(out, te, ["USUBJID"], worst=True)
    out["AOCCPFL"] = _first_flag(out, te, ["USUBJID", "AEDECOD"], worst=False)
    out["AOCCPIFL"] = _first_flag(out, te, ["USUBJID", "AEDECOD"], worst=True)
    out["SRCSEQ"] = ae["source_row"].astype("Float64").astype("float64")
    return _order(out, "ADAE")


def _first_flag(adae: pd.DataFrame, te: np.ndarray, by: list[str], worst: bool) -> pd.Series:
    """admiral derive_var_extreme_flag(mode = "first") among treatment-emergent records."""
    sub = adae[te].copy()
    sub["_neg_grade"] = -sub["ATOXGRN"].fillna(-1)
    order = [*by, "_neg_grade", "ASTDYPUB", "AESEQ"] if worst else [*by, "ASTDYPUB", "AESEQ"]
    first = sub.sort_values(order, kind="stable").drop_duplicates(by).index
    flag = pd.Series(pd.NA, index=adae.index, dtype="string")
    flag[first] = "Y"
    return flag


def build_adrs(cohort: Cohort, adsl: pd.DataFrame, response_window: tuple[float, float]
               ) -> pd.DataFrame:
    """ADRS: OVRLRESP for every assessment, BOR (best in the window, ``best_response``)."""
    from cartrial.endpoints import best_response

    cols = list(VARIABLES["ADRS"])
    if cohort.layout != "tables":
        return pd.DataFrame(columns=cols)
    ev = cohort.events
    resp = ev[(ev["event"] == "response") & ev["response"].notna()].sort_values(
        ["patient_id", "day", "source_row"], kind="stable").reset_index(drop=True)
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
    trt = adsl.set_index("SUBJID")["TRTSDT"].reindex(out["SUBJID"].astype(str)).reset_index(drop=True)
    out["ADY"] = cdisc_day(out["ADYPUB"])
    out["ADT"] = _dates(trt, out["ADYPUB"])
    return _order(out, "ADRS")


def _paramcd(analyte: pd.Series) -> pd.Series:
    return analyte.map(lambda a: PK_ANALYTES.get(a) or re.sub(r"[^A-Z0-9]", "", str(a).upper())[:8])


def _bds_obs(cohort: Cohort, adsl: pd.DataFrame, pk: bool) -> pd.DataFrame:
    ob = cohort.observations
    name = "ADPC" if pk else "ADLB"
    if ob.empty:
        return pd.DataFrame(columns=list(VARIABLES[name]))
    is_pk = ob["analyte"].isin(list(PK_ANALYTES))
    ob = ob[is_pk if pk else ~is_pk].sort_values(["patient_id", "analyte", "day", "source_row"],
                                                 kind="stable").reset_index(drop=True)
    out = _keys(adsl, ob["patient_id"])
    out["PARAMCD"] = _paramcd(ob["analyte"]).astype("string")
    out["PARAM"] = ob["analyte"].astype("string")
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
    trt = adsl.set_index("SUBJID")["TRTSDT"].reindex(ob["patient_id"].astype(str)).reset_index(
        drop=True)
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
        numeric = [c for c in table.columns if c not in ("patient_id", "analyte", "unit")
                   and pd.api.types.is_numeric_dtype(table[c])]
        long = table.melt(id_vars=["patient_id"], value_vars=numeric, var_name="param",
                          value_name="AVAL")
        long["PCTEST"] = analyte
        u = unit.dropna().iloc[0] if unit.notna().any() else None
        long["AVALU"] = long["param"].map(lambda c, u=u: _pp_unit(c, u))
        parts.append(long)
    if not parts:
        return None, "; ".join(notes) or "ADPP not written: no CAR-T kinetics observations"
    long = pd.concat(parts, ignore_index=True)
    out = _keys(adsl, long["patient_id"])
    out["PARAMCD"] = long["param"].map(lambda c: re.sub(r"[^A-Z0-9]", "", c.upper())[:8]).astype(
        "string")
    out["PARAM"] = long["param"].astype("string")
    out["PCTEST"] = long["PCTEST"].astype("string")
    out["AVAL"] = pd.to_numeric(long["AVAL"], errors="coerce").astype("float64")
    out["AVALU"] = long["AVALU"].astype("string")
    return _order(out, "ADPP"), "; ".join(notes)


def _pp_unit(param: str, unit: str | None) -> str | None:
    """Unit of an NCA parameter: concentrations in the analyte's unit, times in days."""
    if param.startswith("n_") or param.endswith("n_points") or "r_squared" in param:
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
    te_window_days: float | None = 30.0,
    study_id: str = "CARTRIAL",
    options=None,
    kinetics: bool = True,
) -> dict[str, pd.DataFrame]:
    """All ADaM-like datasets of a cohort: {"ADSL": …, "ADTTE": …, …}.

    ``options`` is a ``cartrial.endpoints.EndpointOptions`` (its ``response_window`` is
    also the BOR window and the EFFFL definition). ``te_window_days`` bounds the
    treatment-emergent window after infusion (None: no upper bound). ADPP (NCA) is added
    when ``kinetics`` and the kinetics layer is installed; notes go to ``attrs["notes"]``.
    """
    from cartrial.endpoints import EndpointOptions

    options = options or EndpointOptions()
    window = options.response_window
    adsl = build_adsl(cohort, study_id, window)
    adam = {"ADSL": adsl, "ADTTE": build_adtte(cohort, adsl, options)}
    notes: list[str] = []
    if cohort.layout == "tables":
        adam["ADAE"] = build_adae(cohort, adsl, te_window_days)
        adam["ADRS"] = build_adrs(cohort, adsl, window)
        adam["ADPC"] = _bds_obs(cohort, adsl, pk=True)
        adam["ADLB"] = _bds_obs(cohort, adsl, pk=False)
        if kinetics:
            adpp, note = build_adpp(cohort, adsl)
            if adpp is not None:
                adam["ADPP"] = adpp
            if note:
                notes.append(note)
    for df in adam.values():
        df.attrs["notes"] = notes
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

    adsl = adam["ADSL"]
    pid = adsl["SUBJID"].astype(str)

    def g(col: str, kind: str = "string") -> pd.Series:
        return _col(adsl, col, kind).reset_index(drop=True)

    patients = pd.DataFrame({
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
        "enrolled": g("ENRLFL").map({"Y": True, "N": False}).astype("boolean"),
        "infused": g("SAFFL").map({"Y": True, "N": False}).astype("boolean"),
    })
    if "TRTSDT" in adsl.columns:
        patients["infusion_date"] = pd.to_datetime(g("TRTSDT", "datetime64[ns]"))
    rows = []
    adrs = adam.get("ADRS")
    if adrs is not None and len(adrs):
        o = adrs[adrs["PARAMCD"] == "OVRLRESP"]
        rows.append(pd.DataFrame({"patient_id": o["SUBJID"].astype(str), "day": o["ADYPUB"],
                                  "event": "response", "response": o["AVALC"],
                                  "mrd": _col(o, "MRDSTAT"), "mrd_value": _col(o, "MRDVAL",
                                                                                "float64")}))
    for day_col, kind, extra in (("RLPSDAY", None, {"cd7_status": "RLPSCD7"}),
                                 ("SCTDAY", "sct", {}), ("NTHDAY", "new_therapy", {}),
                                 ("DTHDAY", "death", {"cause": "DTHCAUS"}),
                                 ("LSTALDAY", "last_contact", {})):
        if day_col not in adsl.columns:
            continue
        have = adsl[day_col].notna()
        sub = adsl[have]
        ev = pd.DataFrame({"patient_id": sub["SUBJID"].astype(str), "day": sub[day_col],
                           "event": sub["RLPSTYP"] if kind is None else kind})
        for col, var in extra.items():
            ev[col] = sub[var]
        rows.append(ev)
    adtte = adam.get("ADTTE")
    if adtte is not None and len(adtte) and "STARTDAY" in adtte.columns:
        # a relapse/progression that ends a response may come after an earlier one (which
        # ADSL's first-relapse day holds): rebuild it from DOR's event day
        dor = adtte[(adtte["PARAMCD"] == "DOR") & (adtte["CNSR"] == 0)
                    & adtte["EVNTDESC"].isin(["relapse", "progression"])]
        if len(dor):
            rows.append(pd.DataFrame({"patient_id": dor["SUBJID"].astype(str),
                                      "day": dor["STARTDAY"] + dor["AVAL"],
                                      "event": dor["EVNTDESC"]}))
    events = pd.concat(rows, ignore_index=True) if rows else None
    adverse = None
    adae = adam.get("ADAE")
    if adae is not None and len(adae):
        adverse = pd.DataFrame({
            "patient_id": adae["SUBJID"].astype(str), "term": adae["AEDECOD"],
            "onset_day": adae["ASTDYPUB"], "resolution_day": adae["AENDYPUB"],
            "grade": adae["ATOXGRN"], "system": _col(adae, "ATOXSYS"),
            "serious": _col(adae, "AESER").map({"Y": True, "N": False}).astype("boolean"),
            "organ": _col(adae, "AEORGAN")})
        if "AETERM" in adae.columns:
            adverse["verbatim"] = adae["AETERM"].where(adae["AETERM"] != adae["AEDECOD"])
    obs_parts = []
    for name in ("ADPC", "ADLB"):
        d = adam.get(name)
        if d is not None and len(d):
            value = d["AVAL"].astype(object)
            if "AVALC" in d.columns:
                value = value.where(d["AVALC"].isna(), d["AVALC"])
            obs_parts.append(pd.DataFrame({"patient_id": d["SUBJID"].astype(str),
                                           "day": d["ADYPUB"], "analyte": d["PARAM"],
                                           "value": value, "unit": d["AVALU"],
                                           "lloq": d["ALLOQ"]}))
    observations = pd.concat(obs_parts, ignore_index=True) if obs_parts else None
    return cohort_from_frames(patients, events, adverse, observations, source=source)
