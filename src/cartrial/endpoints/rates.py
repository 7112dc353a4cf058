"""Response rates at the day-28–30 assessment, with binomial confidence intervals.

ORR = CR + CRi + CRh + MLFS + PR (+ unsubtyped objective response) and the CR/CRi rate,
as the CD7 CAR-T reports define them (PATHWAY.md; NCCN ALL; ELN 2022), plus
MRD-negative CR/CRi (flow MRD < 10⁻⁴). The denominator is every analysed (infused)
patient; patients not assessed in the window count in the denominator as
non-responders, as intention-to-treat response rates do, and their number is reported.
"""

from __future__ import annotations

import pandas as pd

from cartrial.cohort.model import Cohort
from cartrial.endpoints.derive import best_response


def response_rates(
    cohort: Cohort,
    window: tuple[float, float] = (0.0, 35.0),
    method: str = "wilson",
    conf_level: float = 0.95,
) -> pd.DataFrame:
    """Rows ORR, CR, CR/CRi, MRD-negative CR/CRi: k, n, estimate, lower, upper, method."""
    from cartrial.stats import binomial_ci

    best = best_response(cohort, window)
    if "infused" in cohort.patients:
        infused = cohort.patients["infused"].fillna(True).astype(bool).to_numpy()
        best = best[infused]
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
            }
        )
    return pd.DataFrame(out)
