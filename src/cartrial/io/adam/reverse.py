"""Back from ADaM datasets to a cohort (``cohort_from_adam``): the reverse mapping of the
variables of ``cartrial.io.adam.spec``."""

from __future__ import annotations

import numpy as np
import pandas as pd

from cartrial.cohort import cohort_from_frames
from cartrial.cohort.model import Cohort
from cartrial.io.adam.build import _NA, _col
from cartrial.io.adam.spec import CTCAE_TERMS, obs_analyte_of


def cohort_from_adam(adam: dict[str, pd.DataFrame], source: str = "adam") -> Cohort:
    """Rebuild patients, events, adverse events and observations from ADaM datasets.

    Events come from ADRS ``OVRLRESP`` (every assessment), ADSL's first relapse /
    progression, SCT, new therapy, death and last-known-alive days, and the relapse or
    progression that ended a response (ADTTE DOR's event day) — all that the
    endpoint definitions use, so ``derive_endpoints`` of the result equals that of the
    original cohort (source pointers aside). Uses the day-0 ``*DAY``/``ADYPUB`` columns,
    so it works on de-identified exports in either date mode.
    """
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
    back = obs_analyte_of()
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


_CTCAE_BACK: dict[str, str] = {}
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
            np.where(trt, True, np.where(no, False, _NA)), dtype="boolean"
        ).reset_index(drop=True)
    return adsl["SAFFL"].map({"Y": True, "N": False}).astype("boolean").reset_index(drop=True)
