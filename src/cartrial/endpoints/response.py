"""Best overall response in the assessment window, and the order of response words.

Its own module because the analysis populations (``populations``), the response rates
(``rates``) and the endpoint derivations (``derive``) all start from it.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from cartrial.cohort.model import Cohort
from cartrial.cohort.vocab import COMPLETE_RESPONSES, OBJECTIVE_RESPONSES
from cartrial.endpoints.pointers import _src

#: best first: NCCN ALL / ELN 2022 response categories, then PD, REL and NE
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
    "REL": 9,
    "NE": 10,
}


def best_response(cohort: Cohort, window: tuple[float, float] = (0.0, 35.0)) -> pd.DataFrame:
    """Each patient's best response in the assessment window (days, inclusive).

    Ranking CR > CRh > CRi > MLFS > PR > OR > SD > NR > PD > REL > NE (NCCN ALL, ELN
    2022); ties go to the earliest assessment. MRD status is the one recorded with the
    best response. Patients without an assessment in the window get ``best_response``
    <NA> ("not assessed"); like NE (not evaluable) it is neither a response nor a
    non-response (``responder`` <NA>), so EFS does not count it as a treatment failure.
    Rows in ``cohort.patients`` order; the deciding row in ``source`` (display),
    ``source_file`` and ``source_row``.
    """
    ids = pd.Index(cohort.patients["patient_id"].astype(str), name="patient_id")
    ev = cohort.events
    sel = (
        ev["event"].eq("response").fillna(False).to_numpy(dtype=bool)
        & ev["day"].between(window[0], window[1]).fillna(False).to_numpy(dtype=bool)
        & ev["response"].notna().to_numpy(dtype=bool)
    )
    sub = ev[sel]
    pos = pd.Categorical(sub["patient_id"].astype(str), categories=ids).codes.astype(np.int64)
    rank = sub["response"].map(RESPONSE_RANK).to_numpy(dtype=float)
    order = np.lexsort(
        (
            sub["source_row"].fillna(-1).to_numpy(dtype=np.int64),
            sub["day"].to_numpy(float),
            rank,
            pos,
        )
    )
    ps = pos[order]
    keep = np.ones(len(order), dtype=bool)
    keep[1:] = ps[1:] != ps[:-1]
    win = order[keep]
    at = np.full(len(ids), -1, dtype=np.int64)
    at[ps[keep]] = win
    has = at >= 0
    take = sub.iloc[at[has]]

    def col(values, dtype=object):
        out = np.full(len(ids), None, dtype=object)
        out[has] = np.asarray(values, dtype=object)
        return out

    best = pd.DataFrame(
        {
            "patient_id": ids.to_numpy(dtype=object),
            "best_response": pd.array(col(take["response"].to_numpy(object)), dtype="string"),
            "day": np.where(has, np.nan, np.nan),
            "mrd": pd.array(col(take["mrd"].to_numpy(object)), dtype="string"),
            "source": col(_src(take).to_numpy(dtype=object)),
            "source_file": col(take["source_file"].to_numpy(object)),
            "source_row": pd.array(col(take["source_row"].to_numpy(object)), dtype="Int64"),
        }
    )
    best.loc[has, "day"] = take["day"].to_numpy(float)
    resp = best["best_response"]
    unknown = resp.isna() | resp.eq("NE")
    best["responder"] = resp.isin(list(OBJECTIVE_RESPONSES)).astype("boolean")
    best.loc[unknown.to_numpy(dtype=bool), "responder"] = pd.NA
    best["complete_remission"] = resp.isin(list(COMPLETE_RESPONSES)).astype("boolean")
    best.loc[resp.isna().to_numpy(dtype=bool), "complete_remission"] = pd.NA
    return best
