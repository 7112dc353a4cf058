"""The wide per-patient table (one row per patient, as in a paper's Table 1).

A wide table carries its endpoints directly as column pairs ``<ep>_months`` or
``<ep>_days`` with ``<ep>_event`` (1 = event, 0 = censored), e.g. ``os_months`` and
``os_event``; ``followup_months``/``followup_days`` with ``os_event`` is read as OS
(time to death or last follow-up, as in Tan et al. 2023). From those pairs and a
day-28/30 response column, the loader also builds the equivalent ``events`` rows
(response on day 28, death or last contact at the OS time), so analyses that need only
these work the same as on the four-table format. Months are converted to days with
30.4375 days per month (DESIGN.md).
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from cartrial.cohort import vocab
from cartrial.cohort.errors import Problem
from cartrial.cohort.parse import Collector, is_missing, parse_float
from cartrial.cohort.units import DAYS_PER_MONTH

ENDPOINTS = ("os", "pfs", "efs", "dfs", "rfs", "dor", "cir", "nrm")
_TIME = re.compile(r"^(?P<ep>" + "|".join(ENDPOINTS) + r")_(?P<unit>months|days)$")
#: column names in published wide tables that mean a canonical patients column
COLUMN_ALIASES = {
    "cart_source": "product_source",
    "car_t_source": "product_source",
    "extramedullary_disease": "extramedullary",
    "prior_therapies": "prior_lines",
    "prior_lines_of_therapy": "prior_lines",
    "age": "age_years",
}
RESPONSE_COLUMNS = (
    "day28_response",
    "day30_response",
    "response_day28",
    "response_day30",
    "best_response",
)
RESPONSE_DAY = 28.0
#: ``status_at_last_followup`` words that give the cause of a death
STATUS_CAUSE = {
    "relapse": "relapse",
    "progression": "relapse",
    "death_relapse": "relapse",
    "death_adverse_event": "other",
    "death_infection": "infection",
    "death_gvhd": "gvhd",
    "death_other": "other",
}


def is_wide(df: pd.DataFrame) -> bool:
    """A single CSV is a wide table when it has endpoint time columns."""
    cols = set(df.columns)
    return any(_TIME.match(c) for c in cols) or bool({"followup_months", "followup_days"} & cols)


def _pairs(columns: list[str]) -> dict[str, tuple[str, str, float]]:
    """endpoint -> (time column, event column, days per unit)."""
    pairs: dict[str, tuple[str, str, float]] = {}
    for c in columns:
        m = _TIME.match(c)
        if m and f"{m['ep']}_event" in columns:
            pairs[m["ep"].upper()] = (
                c,
                f"{m['ep']}_event",
                DAYS_PER_MONTH if m["unit"] == "months" else 1.0,
            )
    if "OS" not in pairs and "os_event" in columns:
        for c, scale in (("followup_months", DAYS_PER_MONTH), ("followup_days", 1.0)):
            if c in columns:
                pairs["OS"] = (c, "os_event", scale)
                break
    return pairs


def wide_to_tables(raw: pd.DataFrame, label: str):
    """Split a wide table into raw ``patients``/``events`` tables and given endpoints.

    Returns (raws, labels, given_endpoints, notes, problems).
    """
    out = Collector(label, raw["source_row"].to_numpy())
    notes: list[str] = []
    patients = raw.rename(
        columns={
            k: v for k, v in COLUMN_ALIASES.items() if k in raw.columns and v not in raw.columns
        }
    )
    for k, v in COLUMN_ALIASES.items():
        if k in raw.columns and v not in raw.columns:
            notes.append(f"column '{k}' read as '{v}'")
    if "patient_id" not in raw.columns:
        out.add_column("patient_id", "a required column 'patient_id'")
        return {}, {}, None, tuple(notes), out.problems
    ids = raw["patient_id"].str.strip()
    rows = raw["source_row"].to_numpy()
    pairs = _pairs(list(raw.columns))
    given = []
    ev_rows: list[dict[str, object]] = []
    for ep, (tcol, ecol, scale) in pairs.items():
        t = parse_float(raw[tcol], tcol, out, minimum=0, what="a non-negative time")
        e = parse_float(
            raw[ecol],
            ecol,
            out,
            minimum=0,
            maximum=1,
            integer=True,
            what="an event indicator 0 or 1",
        )
        missing = t.isna().to_numpy() | e.isna().to_numpy()
        # a missing time or indicator is reported unless the cell was reported already
        reported = {p.row for p in out.problems}
        for i in np.flatnonzero(missing):
            if rows[i] not in reported:
                col = tcol if pd.isna(t.iloc[i]) else ecol
                out.problems.append(
                    Problem(
                        label, int(rows[i]), col, raw[col].iloc[i], f"a value (needed for {ep})"
                    )
                )
        unit = "months" if scale != 1.0 else "days"
        given.append(
            pd.DataFrame(
                {
                    "patient_id": ids,
                    "endpoint": ep,
                    "time_days": t * scale,
                    "event": e.astype("Int64"),
                    "event_desc": np.where(e == 1, f"{ep} event ({ecol} = 1)", ""),
                    "censor_desc": np.where(e == 0, f"censored ({ecol} = 0)", ""),
                    "source": [f"{label} row {r}: {tcol}, {ecol}" for r in rows],
                    "source_table": "patients",
                    "source_file": label,
                    "source_row": pd.array(rows, dtype="Int64"),
                }
            )[~missing]
        )
        notes.append(f"{ep} read from columns {tcol} ({unit}) and {ecol}")
        if ep == "OS":
            status = raw.get("status_at_last_followup", pd.Series("", index=raw.index))
            for i in np.flatnonzero(~missing):
                day = repr(float(t.iloc[i] * scale))
                st = str(status.iloc[i]).strip().lower()
                if e.iloc[i] == 1:
                    cause = (
                        raw["cause_of_death"].iloc[i]
                        if "cause_of_death" in raw
                        else STATUS_CAUSE.get(st, "")
                    )
                    ev_rows.append(
                        {
                            "patient_id": ids.iloc[i],
                            "day": day,
                            "event": "death",
                            "cause": cause,
                            "source_row": rows[i],
                        }
                    )
                else:
                    kind = "lost_to_followup" if st == "lost_to_followup" else "last_contact"
                    ev_rows.append(
                        {
                            "patient_id": ids.iloc[i],
                            "day": day,
                            "event": kind,
                            "cause": "",
                            "source_row": rows[i],
                        }
                    )
    rcol = next((c for c in RESPONSE_COLUMNS if c in raw.columns), None)
    if rcol is not None:
        present = ~is_missing(raw[rcol])
        for i in np.flatnonzero(present):
            ev_rows.append(
                {
                    "patient_id": ids.iloc[i],
                    "day": repr(RESPONSE_DAY),
                    "event": "response",
                    "response": raw[rcol].iloc[i],
                    "source_row": rows[i],
                }
            )
        notes.append(f"response read from column {rcol}, dated day {RESPONSE_DAY:g}")
    raws = {"patients": patients}
    labels = {"patients": label}
    if ev_rows:
        events = pd.DataFrame(ev_rows).fillna("").astype({"source_row": int})
        # keep each patient's rows in time order as a clinician would list them
        events["_d"] = events["day"].astype(float)
        events = events.sort_values(["_d"], kind="stable").drop(columns="_d")
        raws["events"] = events.reset_index(drop=True)
        labels["events"] = label
    given_df = pd.concat(given, ignore_index=True) if given else None
    if given_df is not None:
        given_df["patient_id"] = given_df["patient_id"].astype("string")
    _ = vocab  # vocabularies are applied by the table parser
    return raws, labels, given_df, tuple(notes), out.problems
