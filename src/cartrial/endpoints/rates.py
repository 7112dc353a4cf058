"""Response rates at the day-28–30 assessment, with binomial confidence intervals.

ORR = CR + CRi + CRh + MLFS + PR (+ unsubtyped objective response) and the CR/CRi rate,
as the CD7 CAR-T reports define them (PATHWAY.md; NCCN ALL; ELN 2022), plus
MRD-negative CR/CRi (flow MRD < 10⁻⁴). The denominator is the population named by
``population`` (default SAF: every infused patient, ``cartrial.endpoints.populations``;
a blank ``infused`` is missing and excluded); patients not assessed in the window count
in the denominator as non-responders, as intention-to-treat response rates do, and their
number is reported. ``population="EFF"`` gives rates among response-evaluable patients.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pandas as pd

from cartrial.cohort.model import Cohort
from cartrial.endpoints.populations import POPULATIONS, population_ids
from cartrial.endpoints.response import best_response
from cartrial.stats import binomial_ci

if TYPE_CHECKING:
    from cartrial.stats.proportions import BinomialMethod


def response_rates(
    cohort: Cohort,
    window: tuple[float, float] = (0.0, 35.0),
    method: BinomialMethod = "wilson",
    conf_level: float = 0.95,
    population: str = "SAF",
) -> pd.DataFrame:
    """Rows ORR, CR, CR/CRi, MRD-negative CR/CRi: k, n, estimate, lower, upper, method.

    ``population`` and ``population_label`` columns state the denominator.
    """

    best = best_response(cohort, window)
    ids = population_ids(cohort, population, window)
    best = best[best["patient_id"].isin(ids).to_numpy()]
    n = len(best)
    resp = best["best_response"]
    rows = {
        "ORR": int(best["responder"].eq(True).sum()),
        "CR": int(resp.eq("CR").sum()),
        "CR/CRi": int(best["complete_remission"].eq(True).sum()),
        "MRD-negative CR/CRi": int(
            (best["complete_remission"].eq(True) & best["mrd"].eq("negative")).sum()
        ),
    }
    out = []
    for name, k in rows.items():
        est, lo, hi = (
            binomial_ci(k, n, method=method, conf_level=conf_level) if n else (float("nan"),) * 3
        )
        out.append(
            {
                "measure": name,
                "k": k,
                "n": n,
                "estimate": est,
                "lower": lo,
                "upper": hi,
                "method": method,
                "not_assessed": int(resp.isna().sum()),
                "population": population,
                "population_label": POPULATIONS[population].label,
            }
        )
    return pd.DataFrame(out)
