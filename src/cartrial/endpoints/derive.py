"""Time-to-event endpoints, derived declaratively and traceable to source rows.

Each endpoint is a small declaration in the style of pharmaverse admiral's
``derive_param_tte()``: which event rows count as events, the time origin, and the
censoring rule. The event time is the **earliest** qualifying event; a patient without
one is censored at the **latest** day known alive (any event, adverse-event or
observation row; admiral's "last known alive date"). Every output row names the source
row that decided it. Times are days since infusion (day 0), as publications count them.

Definitions (PATHWAY.md; Tan 2023 J Hematol Oncol 16:34; ELN 2022, Döhner et al. Blood
2022;140:1345, for EFS/RFS; Cheson et al. J Clin Oncol 2007 for DOR):

- **OS**: infusion → death of any cause; alive patients censored at last contact.
- **PFS**: infusion → relapse, progression or death, whichever first.
- **EFS**: as PFS, and (option ``efs_nonresponse_event``, default on) a patient without
  an objective response in the assessment window has an event at day 0. ELN 2022 dates
  this treatment failure on day 1 of an SDTM-style calendar (no day 0); on the
  publications' day-0 axis it is day 0.
- **DFS** (also called RFS): among patients in complete remission (CR, CRi, CRh) in the
  response window; infusion → relapse, progression or death.
- **DOR**: among responders (ORR set), first response → relapse, progression or death.
- **CIR** and **NRM**: competing risks. A patient's first of relapse/progression (cause 1)
  or death without prior relapse (cause 2); censored otherwise (cause 0). The ``cause``
  column carries the code for the cumulative-incidence functions.

Option ``censor_at_sct`` (and ``censor_at_new_therapy``) censors PFS, EFS, DFS, DOR,
CIR and NRM at consolidation SCT (new therapy) when it comes before the event: the
sensitivity analysis ELN 2022 recommends when SCT often follows CAR-T. OS is never
censored at SCT.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from cartrial.cohort.model import Cohort
from cartrial.cohort.vocab import COMPLETE_RESPONSES, OBJECTIVE_RESPONSES

COLUMNS = [
    "patient_id",
    "endpoint",
    "time_days",
    "event",
    "event_desc",
    "censor_desc",
    "source",
    "cause",
]
PROGRESSION_EVENTS = ("relapse", "progression")
#: same-day ties: relapse, then progression, then death (a death on the day of relapse
#: follows it); other kinds after these, then file order
TIE_ORDER = {"relapse": 0, "progression": 1, "death": 2}
RESPONSE_RANK = {
    "CR": 0,
    "CRh": 1,
    "CRi": 2,
    "MLFS": 3,
    "PR": 4,
    "OR": 5,
    "SD": 6,
    "NR": 7,
    "PD": 8,
    "NE": 9,
}


@dataclass(frozen=True)
class EndpointOptions:
    """Derivation settings (all stated in the report's methods).

    response_window: days (inclusive) in which a response assessment counts as the
        day-28–30 response; default 0–35 allows for visits a few days late.
    efs_nonresponse_event: EFS counts no objective response in the window as an event
        at day 0 (conventional; ELN 2022 treatment failure).
    censor_at_sct / censor_at_new_therapy: sensitivity analyses (see module docstring).
    """

    response_window: tuple[float, float] = (0.0, 35.0)
    efs_nonresponse_event: bool = True
    censor_at_sct: bool = False
    censor_at_new_therapy: bool = False


def _src(df: pd.DataFrame) -> pd.Series:
    """Human-readable pointer to a source row: ``file row N (what)``."""
    what = df["event"] if "event" in df.columns else df.get("term", pd.Series("", index=df.index))
    return (
        df["source_file"].astype(str)
        + " row "
        + df["source_row"].astype(str)
        + " ("
        + what.astype(str)
        + ")"
    )


def _first(events: pd.DataFrame, kinds: tuple[str, ...] | list[str]) -> pd.DataFrame:
    """Each patient's earliest event of the given kinds: day and source pointer."""
    sub = events[events["event"].isin(list(kinds)) & events["day"].notna()].copy()
    # same-day ties by TIE_ORDER, then file order: never row order alone
    sub["_tie"] = sub["event"].map(TIE_ORDER).fillna(len(TIE_ORDER))
    sub = sub.sort_values(["day", "_tie", "source_file", "source_row"], kind="stable")
    sub = sub.drop_duplicates("patient_id")
    return pd.DataFrame(
        {
            "day": sub["day"].to_numpy(),
            "kind": sub["event"].to_numpy(),
            "src": _src(sub).to_numpy(),
        },
        index=pd.Index(sub["patient_id"], name="patient_id"),
    )


def last_known_alive(cohort: Cohort) -> pd.DataFrame:
    """Latest day each patient is known alive, from every table (admiral's LSTALVDT).

    A death row counts too (the patient was alive until then). Patients with no dated
    row get day 0 ("no follow-up recorded").
    """
    parts = []
    ev = cohort.events
    if not ev.empty:
        parts.append(
            pd.DataFrame({"patient_id": ev["patient_id"], "day": ev["day"], "src": _src(ev)})
        )
    ae = cohort.adverse_events
    if not ae.empty:
        day = ae["resolution_day"].where(ae["resolution_day"].notna(), ae["onset_day"])
        parts.append(
            pd.DataFrame(
                {
                    "patient_id": ae["patient_id"],
                    "day": day,
                    "src": ae["source_file"].astype(str)
                    + " row "
                    + ae["source_row"].astype(str)
                    + " (adverse event)",
                }
            )
        )
    ob = cohort.observations
    if not ob.empty:
        parts.append(
            pd.DataFrame(
                {
                    "patient_id": ob["patient_id"],
                    "day": ob["day"],
                    "src": ob["source_file"].astype(str)
                    + " row "
                    + ob["source_row"].astype(str)
                    + " (observation)",
                }
            )
        )
    ids = pd.Index(cohort.patients["patient_id"], name="patient_id")
    if not parts:
        return pd.DataFrame({"day": 0.0, "src": "no follow-up recorded"}, index=ids)
    allrows = pd.concat(parts, ignore_index=True).dropna(subset=["day"])
    allrows = allrows.sort_values("day", kind="stable").drop_duplicates("patient_id", keep="last")
    last = allrows.set_index("patient_id")[["day", "src"]].reindex(ids)
    none = last["day"].isna()
    last.loc[none, "day"] = 0.0
    last.loc[none, "src"] = "no follow-up recorded"
    last["day"] = last["day"].clip(lower=0.0)
    return last


def _time_to_event(
    name: str,
    ids: pd.Index,
    event: pd.DataFrame,
    last_alive: pd.DataFrame,
    origin: pd.Series | None = None,
    censor_first: pd.DataFrame | None = None,
    cause_of: pd.Series | None = None,
) -> pd.DataFrame:
    """Earliest event, else censoring; optional earlier censoring (SCT) and time origin."""
    ev = event.reindex(ids)
    la = last_alive.reindex(ids)
    has_event = ev["day"].notna()
    day = ev["day"].where(has_event, la["day"])
    desc_e = ("" + ev["kind"].fillna("")).where(has_event, "")
    desc_c = pd.Series("censored at last known alive", index=ids).where(~has_event, "")
    src = ev["src"].where(has_event, la["src"])
    if censor_first is not None and not censor_first.empty:
        cf = censor_first.reindex(ids)
        earlier = (
            cf["day"].notna()
            & (~has_event | (cf["day"] < ev["day"]))
            & (cf["day"] <= day.fillna(np.inf))
        )
        day = day.where(~earlier, cf["day"])
        has_event = has_event & ~earlier
        desc_e = desc_e.where(~earlier, "")
        desc_c = desc_c.where(~earlier, "censored at " + cf["kind"].fillna(""))
        src = src.where(~earlier, cf["src"])
    time = day if origin is None else day - origin.reindex(ids)
    out = pd.DataFrame(
        {
            "patient_id": ids.astype(str),
            "endpoint": name,
            "time_days": time.clip(lower=0.0).to_numpy(dtype=float),
            "event": has_event.astype(int).to_numpy(),
            "event_desc": desc_e.to_numpy(),
            "censor_desc": desc_c.to_numpy(),
            "source": src.to_numpy(),
            "cause": pd.array([pd.NA] * len(ids), dtype="Int64"),
        }
    )
    if cause_of is not None:
        out["cause"] = np.where(out["event"] == 1, cause_of.reindex(ids).to_numpy(), 0)
        out["cause"] = out["cause"].astype("Int64")
    return out


def best_response(cohort: Cohort, window: tuple[float, float] = (0.0, 35.0)) -> pd.DataFrame:
    """Each patient's best response in the assessment window (days, inclusive).

    Ranking CR > CRh > CRi > MLFS > PR > OR > SD > NR > PD > NE (NCCN ALL, ELN 2022);
    ties go to the earliest assessment. MRD status is the one recorded with the best
    response. Patients without an assessment in the window get ``best_response`` <NA>
    ("not assessed"); like NE (not evaluable) it is neither a response nor a non-response
    (``responder`` <NA>), so EFS does not count it as a treatment failure.
    """
    ids = pd.Index(cohort.patients["patient_id"], name="patient_id")
    ev = cohort.events
    sub = ev[
        (ev["event"] == "response")
        & ev["day"].between(window[0], window[1])
        & ev["response"].notna()
    ].copy()
    sub["rank"] = sub["response"].map(RESPONSE_RANK)
    sub = sub.sort_values(["rank", "day", "source_row"], kind="stable").drop_duplicates(
        "patient_id"
    )
    best = pd.DataFrame(
        {
            "best_response": sub["response"].to_numpy(),
            "day": sub["day"].to_numpy(),
            "mrd": sub["mrd"].to_numpy(),
            "source": _src(sub).to_numpy(),
        },
        index=pd.Index(sub["patient_id"], name="patient_id"),
    ).reindex(ids)
    best["best_response"] = best["best_response"].astype("string")
    best["mrd"] = best["mrd"].astype("string")
    best["responder"] = best["best_response"].isin(list(OBJECTIVE_RESPONSES)).astype("boolean")
    # not assessed / not evaluable (NE): neither a response nor a non-response
    best.loc[best["best_response"].isna() | best["best_response"].eq("NE"), "responder"] = pd.NA
    best["complete_remission"] = (
        best["best_response"].isin(list(COMPLETE_RESPONSES)).astype("boolean")
    )
    best.loc[best["best_response"].isna(), "complete_remission"] = pd.NA
    return best.reset_index()


def _sct_censor(
    cohort: Cohort, options: EndpointOptions, after: pd.Series | None = None
) -> pd.DataFrame | None:
    """First SCT / new therapy (as chosen) per patient, optionally only after a per-patient day."""
    kinds = [
        k
        for k, on in (
            ("sct", options.censor_at_sct),
            ("new_therapy", options.censor_at_new_therapy),
        )
        if on
    ]
    if not kinds:
        return None
    ev = cohort.events
    if after is not None:
        ev = ev[ev["day"] >= ev["patient_id"].map(after).fillna(np.inf)]
    return _first(ev, kinds)


def derive_os(cohort: Cohort, options: EndpointOptions | None = None) -> pd.DataFrame:
    """OS: infusion → death of any cause; censored at last known alive (PATHWAY.md)."""
    ids = pd.Index(cohort.patients["patient_id"], name="patient_id")
    return _time_to_event("OS", ids, _first(cohort.events, ["death"]), last_known_alive(cohort))


def derive_pfs(cohort: Cohort, options: EndpointOptions | None = None) -> pd.DataFrame:
    """PFS: infusion → relapse, progression or death, whichever first (PATHWAY.md)."""
    options = options or EndpointOptions()
    ids = pd.Index(cohort.patients["patient_id"], name="patient_id")
    event = _first(cohort.events, [*PROGRESSION_EVENTS, "death"])
    return _time_to_event(
        "PFS", ids, event, last_known_alive(cohort), censor_first=_sct_censor(cohort, options)
    )


def derive_efs(cohort: Cohort, options: EndpointOptions | None = None) -> pd.DataFrame:
    """EFS: PFS events plus no objective response in the window as an event at day 0.

    Source: ELN 2022 (Döhner, Blood 2022;140:1345) treatment failure counted at the
    start; patients not assessed in the window are not counted as failures.
    """
    options = options or EndpointOptions()
    ids = pd.Index(cohort.patients["patient_id"], name="patient_id")
    event = _first(cohort.events, [*PROGRESSION_EVENTS, "death"])
    if options.efs_nonresponse_event:
        best = best_response(cohort, options.response_window).set_index("patient_id")
        nonresp = best[best["responder"].eq(False).fillna(False)]
        failure = pd.DataFrame(
            {
                "day": 0.0,
                "kind": "no response (" + nonresp["best_response"] + ")",
                "src": nonresp["source"],
            },
            index=nonresp.index,
        )
        rest = event.drop(index=failure.index, errors="ignore")
        event = failure if rest.empty else rest if failure.empty else pd.concat([failure, rest])
    return _time_to_event(
        "EFS", ids, event, last_known_alive(cohort), censor_first=_sct_censor(cohort, options)
    )


def derive_dfs(cohort: Cohort, options: EndpointOptions | None = None) -> pd.DataFrame:
    """DFS/RFS among patients in CR/CRi/CRh in the window: infusion → relapse/progression/death."""
    options = options or EndpointOptions()
    best = best_response(cohort, options.response_window)
    ids = pd.Index(
        best.loc[best["complete_remission"].eq(True).fillna(False), "patient_id"], name="patient_id"
    )
    event = _first(cohort.events, [*PROGRESSION_EVENTS, "death"])
    return _time_to_event(
        "DFS", ids, event, last_known_alive(cohort), censor_first=_sct_censor(cohort, options)
    )


def derive_dor(cohort: Cohort, options: EndpointOptions | None = None) -> pd.DataFrame:
    """DOR among responders: first response → relapse, progression or death.

    The origin is the first objective response recorded (any time), Cheson 2007.
    """
    options = options or EndpointOptions()
    best = best_response(cohort, options.response_window)
    ids = pd.Index(
        best.loc[best["responder"].eq(True).fillna(False), "patient_id"], name="patient_id"
    )
    ev = cohort.events
    responses = ev[(ev["event"] == "response") & ev["response"].isin(list(OBJECTIVE_RESPONSES))]
    first_resp = _first(responses, ["response"])["day"]
    after = ev["day"] >= ev["patient_id"].map(first_resp).fillna(np.inf)
    event = _first(ev[after], [*PROGRESSION_EVENTS, "death"])
    return _time_to_event(
        "DOR",
        ids,
        event,
        last_known_alive(cohort),
        origin=first_resp,
        censor_first=_sct_censor(cohort, options, after=first_resp),
    )


def derive_competing(cohort: Cohort, options: EndpointOptions | None = None) -> pd.DataFrame:
    """CIR and NRM: relapse/progression (cause 1) vs death without prior relapse (cause 2).

    Source: the competing-risks framework of Gooley et al., Stat Med 1999;18:695 as used
    for relapse and non-relapse mortality after cellular therapy. Returns two rows per
    patient (CIR, NRM) with the same time and the ``cause`` code; ``event`` is 1 when
    the row's own cause happened first.
    """
    options = options or EndpointOptions()
    ids = pd.Index(cohort.patients["patient_id"], name="patient_id")
    event = _first(cohort.events, [*PROGRESSION_EVENTS, "death"])
    cause = pd.Series(np.where(event["kind"] == "death", 2, 1), index=event.index)
    base = _time_to_event(
        "CIR",
        ids,
        event,
        last_known_alive(cohort),
        censor_first=_sct_censor(cohort, options),
        cause_of=cause,
    )
    cir = base.copy()
    cir["event"] = (cir["cause"] == 1).astype(int)
    nrm = base.copy()
    nrm["endpoint"] = "NRM"
    nrm["event"] = (nrm["cause"] == 2).astype(int)
    for df, own in ((cir, 1), (nrm, 2)):
        competing = (df["cause"] != own) & (df["cause"] != 0)
        df.loc[competing, "censor_desc"] = "competing event: " + df.loc[competing, "event_desc"]
        df.loc[competing, "event_desc"] = ""
    return pd.concat([cir, nrm], ignore_index=True)


DERIVATIONS = {
    "OS": derive_os,
    "PFS": derive_pfs,
    "EFS": derive_efs,
    "DFS": derive_dfs,
    "DOR": derive_dor,
}


def derive_endpoints(
    cohort: Cohort, options: EndpointOptions | None = None, endpoints: list[str] | None = None
) -> pd.DataFrame:
    """All time-to-event endpoints, one row per patient and endpoint (ADTTE-like).

    Columns: ``patient_id, endpoint, time_days, event (1/0), event_desc, censor_desc,
    source, cause`` (cause codes only for CIR/NRM). Only infused patients are analysed
    (``patients.infused`` not false). For a wide per-patient table only the endpoints it
    states (e.g. OS from ``followup_months``/``os_event``) are returned: relapse and SCT
    dates are not in such tables, so PFS-type endpoints cannot be derived honestly.
    """
    options = options or EndpointOptions()
    if cohort.layout == "wide":
        given = cohort.given_endpoints
        if given is None or given.empty:
            return pd.DataFrame(columns=COLUMNS)
        out = given.copy()
        out["cause"] = pd.array([pd.NA] * len(out), dtype="Int64")
        out["event"] = out["event"].astype(int)
        if endpoints:
            out = out[out["endpoint"].isin([e.upper() for e in endpoints])]
        return out[COLUMNS].reset_index(drop=True)
    infused = cohort.patients["infused"].fillna(True).astype(bool)
    analysed = cohort if infused.all() else _subset(cohort, infused)
    wanted = [e.upper() for e in endpoints] if endpoints else [*DERIVATIONS, "CIR", "NRM"]
    parts = [DERIVATIONS[e](analysed, options) for e in wanted if e in DERIVATIONS]
    if "CIR" in wanted or "NRM" in wanted:
        comp = derive_competing(analysed, options)
        parts.append(comp[comp["endpoint"].isin(wanted)])
    return pd.concat(parts, ignore_index=True)[COLUMNS]


def _subset(cohort: Cohort, keep: pd.Series) -> Cohort:
    from dataclasses import replace

    ids = set(cohort.patients.loc[keep.to_numpy(), "patient_id"])
    return replace(
        cohort,
        patients=cohort.patients[keep.to_numpy()].reset_index(drop=True),
        events=cohort.events[cohort.events["patient_id"].isin(ids)],
        adverse_events=cohort.adverse_events[cohort.adverse_events["patient_id"].isin(ids)],
        observations=cohort.observations[cohort.observations["patient_id"].isin(ids)],
    )
