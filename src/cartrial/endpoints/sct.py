"""Stem-cell transplant after CAR-T: consolidation in remission versus salvage.

Consolidation SCT is an SCT given **in remission, before any relapse or progression**: a
complete remission (CR, CRh or CRi) documented on a response row on or before the SCT
day, and no evidence of relapse or progression (``cartrial.endpoints.derive``) on or
before it. An SCT after relapse or progression is a **salvage** SCT; an SCT with neither
(e.g. before any documented remission) is "not in documented remission". Comparisons by
consolidation SCT are made among patients in CR/CRh/CRi (as Zhang et al., Am J Hematol
2023;98:1898 compare their CR patients), and never from day 0 alone: SCT is a
post-infusion event (landmark, time-dependent Cox, Mantel–Byar, Simon–Makuch; DESIGN.md).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from cartrial.cohort.model import Cohort
from cartrial.cohort.vocab import COMPLETE_RESPONSES
from cartrial.endpoints.derive import EndpointOptions, _Context
from cartrial.endpoints.pointers import _display

#: a missing cell for ``np.where`` into an object array (NumPy's stubs refuse None)
_NA = np.array(None, dtype=object)

KINDS = ("consolidation", "salvage", "not in documented remission")


def consolidation_sct(cohort: Cohort, options: EndpointOptions | None = None) -> pd.DataFrame:
    """Per patient (``cohort.patients`` order): the first SCT after infusion and its kind.

    Columns: ``patient_id``; ``sct_day`` (first SCT on or after day 0, NaN without);
    ``sct_kind`` (one of ``KINDS``, <NA> without SCT); ``consolidation`` and ``salvage``
    (booleans); ``remission_day`` (first CR/CRh/CRi on a response row);
    ``progression_day`` (first evidence of relapse or progression); ``source`` (the SCT row).
    """
    options = options or EndpointOptions()
    ctx = _Context(cohort, options)
    ids = ctx.ids
    ev = ctx.events

    sct = ctx.candidates("sct")
    sidx = sct.first(ctx.n)
    sday = sct.first_day(ctx.n)
    pday = ctx.progression.first_day(ctx.n)
    cr_mask = ev["event"].eq("response").fillna(False).to_numpy(dtype=bool) & ev["response"].isin(
        list(COMPLETE_RESPONSES)
    ).fillna(False).to_numpy(dtype=bool)
    rday = ctx._event_rows(cr_mask, 0, "remission").first_day(ctx.n)
    has = ~np.isnan(sday)
    salvage = has & ~np.isnan(pday) & (pday <= sday)
    consolidation = has & ~salvage & ~np.isnan(rday) & (rday <= sday)
    kind = np.where(
        consolidation,
        KINDS[0],
        np.where(salvage, KINDS[1], np.where(has, KINDS[2], _NA)),
    )
    src = np.full(ctx.n, None, dtype=object)
    if has.any():
        files = np.asarray(ctx.files, dtype=object)
        j = sidx[has]
        src[has] = _display(files[sct.file[j]], sct.row[j], np.full(len(j), "sct", dtype=object))
    return pd.DataFrame(
        {
            "patient_id": ids.to_numpy(dtype=object),
            "sct_day": sday,
            "sct_kind": pd.array(kind, dtype="string"),
            "consolidation": consolidation,
            "salvage": salvage,
            "remission_day": rday,
            "progression_day": pday,
            "source": src,
        }
    )
