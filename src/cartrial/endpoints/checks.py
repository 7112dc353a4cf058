"""Warnings about records that the endpoint rules had to interpret.

These are not load errors (the cohort is valid) but facts a statistician must see:
``cartrial validate`` prints them, each naming file, row, column and value.

- A death whose recorded cause is the disease with no earlier relapse or progression row
  is counted as relapse at the death day for CIR/PFS (DESIGN.md): the relapse row is
  probably missing.
- A blank ``infused`` is missing, never true: the patient is outside the safety
  population until it is recorded (``cartrial.endpoints.populations``).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from cartrial.cohort.errors import Problem
from cartrial.cohort.model import Cohort
from cartrial.endpoints.derive import DISEASE_DEATH, EndpointOptions, _Context
from cartrial.endpoints.populations import infusion_status


def endpoint_warnings(cohort: Cohort, options: EndpointOptions | None = None) -> list[Problem]:
    """Every record the endpoint rules interpreted, as ``Problem`` entries (warnings)."""
    out: list[Problem] = []
    p = cohort.patients
    status = infusion_status(p)
    blank = status.eq("missing").to_numpy(dtype=bool)
    for _, r in p[blank].iterrows():
        out.append(
            Problem(
                str(r["source_file"]),
                _int(r["source_row"]),
                "infused",
                "",
                "yes or no (blank is missing: the patient is left out of the safety "
                "population until it is recorded)",
            )
        )
    if cohort.layout != "tables" or cohort.events.empty:
        return out
    ctx = _Context(cohort, options or EndpointOptions())
    prog = ctx.progression
    explicit = prog.take(np.flatnonzero(prog.desc != DISEASE_DEATH))
    first = explicit.first_day(ctx.n)
    ev = ctx.events
    death = ev["event"].eq("death").fillna(False).to_numpy(dtype=bool) & ev["cause"].eq(
        "relapse"
    ).fillna(False).to_numpy(dtype=bool)
    dd = ev[death]
    before = first[ctx.ev_pos[death]]
    lonely = np.isnan(before) | (before > dd["day"].to_numpy(dtype=float))
    for _, r in dd[lonely].iterrows():
        out.append(
            Problem(
                str(r["source_file"]),
                _int(r["source_row"]),
                "cause",
                str(r["cause"]),
                "a relapse or progression row before a death from the disease (counted as "
                f"relapse on day {r['day']:g} for CIR/PFS)",
            )
        )
    return out


def _int(v: object) -> int | None:
    return None if pd.isna(v) else int(v)  # type: ignore[arg-type]
