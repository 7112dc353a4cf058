"""Each patient's course after infusion, derived once for the patient flow and the swimmer
plot: best response and its day, consolidation SCT, relapse, new therapy, death, follow-up
end (``course_frame``); the CONSORT-style flow counts (``patient_flow``); the swimmer
plot's lanes and markers (``swimmer_inputs``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from cartrial.cohort.vocab import COMPLETE_RESPONSES, OBJECTIVE_RESPONSES
from cartrial.endpoints.populations import population_counts
from cartrial.report import tables as T

if TYPE_CHECKING:  # pragma: no cover
    from cartrial.cohort import Cohort
    from cartrial.report.settings import ReportSettings

#: wide tables' ``status_at_last_followup`` words meaning a relapse/progression happened
RELAPSE_STATUS = {"relapse", "progression", "death_relapse", "relapsed"}


def course_frame(cohort: Cohort, patients: pd.DataFrame, endpoints: pd.DataFrame) -> pd.DataFrame:
    """One row per analysed patient: response, SCT, relapse, death and follow-up days.

    Follow-up end is the OS time (death or last known alive). ``ongoing`` = alive and not
    lost to follow-up / withdrawn (the swimmer plot's arrow). A wide table's
    ``status_at_last_followup`` ("relapse", "lost_to_followup") counts: such a relapse
    has no day (``relapsed`` true, ``relapse_day`` missing).
    """
    ids = pd.Index(patients["patient_id"].astype(str), name="patient_id")
    ev = cohort.events
    ev = ev[ev["patient_id"].isin(ids)]

    def first(kinds: list[str]) -> pd.DataFrame:
        sub = ev[ev["event"].isin(kinds) & ev["day"].notna()].sort_values(["day", "source_row"])
        return sub.drop_duplicates("patient_id").set_index("patient_id")

    pt = patients.assign(patient_id=patients["patient_id"].astype(str)).set_index("patient_id")
    out = pd.DataFrame(index=ids)
    out["best_response"] = pt["best_response"].reindex(ids)
    resp = ev[(ev["event"] == "response") & ev["response"].notna()]
    best_day = (
        resp.assign(
            match=resp["response"].to_numpy()
            == out["best_response"].reindex(resp["patient_id"]).to_numpy()
        )
        .query("match")
        .sort_values("day")
        .drop_duplicates("patient_id")
        .set_index("patient_id")["day"]
    )
    out["response_day"] = best_day.reindex(ids)
    sct = first(["sct"])
    out["sct_day"] = sct["day"].reindex(ids)
    if "sct_consolidation" in pt.columns:
        out["sct"] = pt["sct_consolidation"].reindex(ids)
    else:
        out["sct"] = np.nan
    rel = first(["relapse", "progression"])
    out["relapse_day"] = rel["day"].reindex(ids)
    out["relapse_cd7"] = (
        rel["cd7_status"].reindex(ids).astype(object) if "cd7_status" in rel.columns else np.nan
    )
    status = (
        pt["status_at_last_followup"]
        .reindex(ids)
        .astype(object)
        .fillna("")
        .astype(str)
        .str.strip()
        .str.lower()
        if "status_at_last_followup" in pt.columns
        else pd.Series("", index=ids)
    )
    out["relapsed"] = out["relapse_day"].notna() | status.isin(RELAPSE_STATUS)
    nt = first(["new_therapy"])
    out["new_therapy_day"] = nt["day"].reindex(ids)
    death = first(["death"])
    out["death_day"] = death["day"].reindex(ids)
    out["death_cause"] = death["cause"].reindex(ids).astype(object)
    os_rows = endpoints[endpoints["endpoint"] == "OS"].set_index("patient_id")
    out["end_day"] = os_rows["time_days"].reindex(ids)
    lost = set(ev.loc[ev["event"].isin(["lost_to_followup", "withdrawal"]), "patient_id"])
    out["dead"] = out["death_day"].notna()
    out["lost"] = (out.index.isin(lost) | status.eq("lost_to_followup").to_numpy()) & ~out["dead"]
    out["ongoing"] = ~out["dead"] & ~out["lost"]
    out["relapse_data"] = cohort.layout == "tables" or "status_at_last_followup" in pt.columns
    return out.reset_index()


def patient_flow(
    cohort: Cohort,
    course: pd.DataFrame,
    settings: ReportSettings,
    populations: pd.DataFrame | None = None,
) -> dict[str, Any]:
    """Counts for the CONSORT-style flow: each analysis population with the reasons for
    exclusion (``cartrial.endpoints.populations.population_counts``), the best response
    and the course after it (consolidation SCT, relapse, death, lost to follow-up)."""

    counts = population_counts(cohort, settings.response_window)
    pops = [
        {
            "code": r.population,
            "label": r.label,
            "n": int(r.n),
            "excluded": int(r.excluded),
            "reasons": str(r.reasons),
        }
        for r in counts.itertuples(index=False)
    ]
    by = {p["code"]: p for p in pops}
    best = course["best_response"]
    complete = best.isin(list(COMPLETE_RESPONSES))
    responder = best.isin(list(OBJECTIVE_RESPONSES))
    w0, w1 = settings.response_window
    enrolled = by.get("ITT", {}).get("n", len(cohort.patients))
    flow: dict[str, Any] = {
        "populations": pops,
        "enrolled": enrolled,
        "infused": len(course),
        "not_infused": by["SAF"]["excluded"] if "SAF" in by else enrolled - len(course),
        "window": f"{T._sig(w0)}–{T._sig(w1)}",
        "response": {
            "complete": int(complete.sum()),
            "partial": int((responder & ~complete).sum()),
            "none": int((best.notna() & ~responder).sum()),
            "not_assessed": int(best.isna().sum()),
        },
    }
    sct_yes = course["sct"].astype(object).eq("yes").to_numpy()
    relapse_known = bool(course["relapse_data"].all()) if len(course) else False
    branches = []
    for lab, mask in (
        ("CR/CRi, consolidation SCT", complete.to_numpy() & sct_yes),
        ("Response, no consolidation SCT", responder.to_numpy() & ~sct_yes),
        ("No response / not assessed", ~responder.to_numpy()),
    ):
        sub = course[mask]
        dead = sub["dead"].to_numpy(dtype=bool)
        lost = sub["lost"].to_numpy(dtype=bool)
        if relapse_known:
            relapsed = sub["relapsed"].to_numpy(dtype=bool)
            outcome = {
                "died": int(dead.sum()),
                "alive after relapse": int((~dead & relapsed & ~lost).sum()),
                "alive without relapse": int((~dead & ~relapsed & ~lost).sum()),
                "lost to follow-up": int(lost.sum()),
            }
        else:
            outcome = {
                "died": int(dead.sum()),
                "alive": int((~dead & ~lost).sum()),
                "lost to follow-up": int(lost.sum()),
            }
        branches.append({"label": lab, "n": int(mask.sum()), "outcome": outcome})
    flow["branches"] = branches
    return flow


def swimmer_inputs(course: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Lanes and markers for ``figures.swimmer_figure`` from the course frame."""

    sct = course["sct"].astype(object)
    if sct.isna().all():
        group = pd.Series("All patients", index=course.index)
    else:
        group = sct.map({"yes": "Consolidation SCT", "no": "No consolidation SCT"}).fillna(
            "SCT unknown"
        )
    lanes = pd.DataFrame(
        {
            "patient_id": course["patient_id"],
            "group": group,
            "end_days": course["end_day"].fillna(0.0),
            "ongoing": course["ongoing"],
            "lost": course["lost"],
        }
    )
    best = course["best_response"].astype(object)
    kind = np.where(
        best.isin(list(COMPLETE_RESPONSES)),
        "CR/CRi",
        np.where(best.isin(list(OBJECTIVE_RESPONSES)), "PR", "NR"),
    )
    parts = [
        pd.DataFrame(
            {"patient_id": course["patient_id"], "kind": kind, "day": course["response_day"]}
        )[best.notna().to_numpy() & course["response_day"].notna()]
    ]
    parts.append(
        pd.DataFrame(
            {"patient_id": course["patient_id"], "kind": "SCT", "day": course["sct_day"]}
        ).dropna(subset=["day"])
    )
    cd7 = course["relapse_cd7"].astype(object)
    rkind = np.where(
        cd7 == "negative",
        "relapse CD7−",
        np.where(cd7.isin(["positive", "dim"]), "relapse CD7+", "relapse CD7 unknown"),
    )
    parts.append(
        pd.DataFrame(
            {"patient_id": course["patient_id"], "kind": rkind, "day": course["relapse_day"]}
        ).dropna(subset=["day"])
    )
    undated = course["relapsed"].to_numpy(dtype=bool) & course["relapse_day"].isna().to_numpy()
    if undated.any():  # wide tables: relapse before last follow-up, day not reported
        parts.append(
            pd.DataFrame(
                {
                    "patient_id": course["patient_id"][undated],
                    "kind": "relapse, day not reported",
                    "day": course["end_day"][undated],
                }
            )
        )
    parts.append(
        pd.DataFrame(
            {"patient_id": course["patient_id"], "kind": "death", "day": course["death_day"]}
        ).dropna(subset=["day"])
    )
    if "new_therapy_day" in course.columns:
        parts.append(
            pd.DataFrame(
                {
                    "patient_id": course["patient_id"],
                    "kind": "new therapy",
                    "day": course["new_therapy_day"],
                }
            ).dropna(subset=["day"])
        )
    markers = pd.concat(parts, ignore_index=True)
    return lanes, markers
