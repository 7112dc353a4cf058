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

from dataclasses import replace

import numpy as np
import pandas as pd

from cartrial.cohort.errors import Problem
from cartrial.cohort.model import Cohort
from cartrial.cohort.parse import Collector
from cartrial.endpoints.derive import DISEASE_DEATH, EndpointOptions, _Context
from cartrial.endpoints.populations import infusion_status

#: why a blank ``infused`` is reported
BLANK_INFUSED = (
    "yes or no (blank is missing: the patient is left out of the safety population until "
    "it is recorded)"
)


def endpoint_warnings(cohort: Cohort, options: EndpointOptions | None = None) -> list[Problem]:
    """Every record the endpoint rules interpreted, as ``Problem`` entries (warnings):
    blank ``infused`` rows first, then deaths from the disease without an earlier
    relapse or progression row, each in table order."""
    p = cohort.patients
    blank = infusion_status(p).eq("missing").to_numpy(dtype=bool)
    out = _collect(p, blank, "infused", np.full(len(p), "", dtype=object), BLANK_INFUSED)
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
    day = ev["day"].to_numpy(dtype=float)
    lonely = np.zeros(len(ev), dtype=bool)
    lonely[death] = np.isnan(first[ctx.ev_pos[death]]) | (first[ctx.ev_pos[death]] > day[death])
    distinct, which = np.unique(day[lonely], return_inverse=True)
    days = np.asarray([f"{d:g}" for d in distinct], dtype=object)[which.reshape(-1)]
    expected = np.full(len(ev), "", dtype=object)
    expected[lonely] = (
        "a relapse or progression row before a death from the disease (counted as "
        "relapse on day " + days + " for CIR/PFS)"
    )
    return out + _collect(ev, lonely, "cause", ev["cause"].to_numpy(dtype=object), expected)


def _collect(df: pd.DataFrame, mask: np.ndarray, column: str, values, expected) -> list[Problem]:
    """The rows of ``df`` where ``mask`` holds as problems, in table order, through the
    cohort's ``Collector`` (one per file and expected text; a missing row number is
    reported as None). ``expected``: one text, or one per row of ``df``."""
    idx = np.flatnonzero(mask)
    if not len(idx):
        return []
    files = df["source_file"].iloc[idx].astype(str).to_numpy(dtype=object)
    rows = df["source_row"].iloc[idx]
    no_row = rows.isna().to_numpy(dtype=bool)
    rows = rows.fillna(-1).to_numpy(dtype=np.int64)
    texts = np.broadcast_to(np.asarray(expected, dtype=object), (len(df),))[idx]
    group, keys = pd.factorize(pd.MultiIndex.from_arrays([files, texts]))
    values = np.asarray(values, dtype=object)[idx]
    found: list[Problem] = []
    at: list[np.ndarray] = []
    for g, (file, text) in enumerate(keys):
        sel = np.flatnonzero(group == g)
        c = Collector(file, rows[sel])
        c.add_rows(np.ones(len(sel), dtype=bool), column, values[sel], text)
        found += c.problems
        at.append(sel)
    order = np.argsort(np.concatenate(at), kind="stable")
    missing_row = no_row[np.concatenate(at)]
    return [replace(found[i], row=None) if missing_row[i] else found[i] for i in order]
