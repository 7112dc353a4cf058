"""The ADaM-like datasets of a cohort (ADSL, ADTTE, ADAE, ADRS, ADPC, ADLB, ADPP), built
from the variable metadata of ``cartrial.io.adam.spec``; conventions in ``cartrial.io.adam``.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import pandas as pd

from cartrial.cohort.model import Cohort
from cartrial.cohort.vocab import OBJECTIVE_RESPONSES
from cartrial.endpoints import EndpointOptions, best_response, derive_endpoints, last_known_alive
from cartrial.endpoints.definitions import ENDPOINTS
from cartrial.endpoints.populations import POPULATIONS, analysis_populations
from cartrial.io.adam.spec import (
    CTCAE_TERMS,
    ETHNIC_CT,
    PARAMS,
    PK_ANALYTES,
    RACE_CT,
    RESPONSE_ORDER,
    TE_WINDOW_DAYS,
    VARIABLES,
    obs_param,
    pp_param,
    pp_unit,
)
from cartrial.kinetics.nca import nca_table


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
    p = cohort.patients.reset_index(drop=True)
    ids = p["patient_id"].astype(str)
    idx = p.index
    out = pd.DataFrame(
        {"STUDYID": study_id, "USUBJID": study_id + "-" + ids, "SUBJID": ids}, index=idx
    ).astype("string")
    out["SITEID"] = _col(p, "site").astype("string")
    age = np.floor(_col(p, "age_years", "float64").astype("float64"))
    out["AGE"] = age
    out["AGEU"] = pd.Series(np.where(age.notna(), "YEARS", _NA), index=idx, dtype="string")
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
        np.where(prior.isna(), _NA, np.where(prior.fillna(False), "Y", "N")),
        index=idx,
        dtype="string",
    )
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
    out["DTHFL"] = pd.Series(np.where(~np.isnan(dday), "Y", _NA), index=idx, dtype="string")
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


#: a missing cell in ``np.where(mask, value, _NA)`` (an object array; typed Any because
#: NumPy's stubs do not list None as a scalar)
_NA: Any = None
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
    dom: list[str | None] = []
    var: list[str | None] = []
    seq: list[float] = []
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
        np.where(ser.isna(), _NA, np.where(ser.fillna(False), "Y", "N")), dtype="string"
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
    out["TRTEMFL"] = pd.Series(np.where(te, "Y", _NA), dtype="string")
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
        out["BLQFL"] = pd.Series(np.where(blq.fillna(False), "Y", _NA), dtype="string")
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
    """ADPP from ``cartrial.kinetics`` NCA; (None, why) when there is nothing to compute."""
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
        long["AVALU"] = long["param"].map(lambda c, u=u: pp_unit(c, u))
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
    when ``kinetics`` (NCA of the CAR-T kinetics observations); notes go to ``attrs["notes"]``.
    Identifier variables (``Var.identifier``: BRTHDT) are written only if ``identified``.
    """
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
