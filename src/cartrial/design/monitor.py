"""Safety monitoring: stopping boundaries for a toxicity count, their operating
characteristics, the DSMB safety summary and the next-dose recommendation from a cohort.

- Bayesian beta-binomial boundary (Thall, Simon & Estey, Stat Med 1995;14:357): after n
  patients, stop if P(rate > θ | x of n, Beta(a, b)) > c; the boundary is the smallest
  such x.
- Pocock- and O'Brien-Fleming-type boundaries for a count (Ivanova, Qaqish & Schell,
  Biometrics 2005;61:540): at look k with n_k patients, stop if x_k >= b_k; Pocock:
  b_k = smallest x with P(X >= x | n_k, θ0) <= α* (one nominal level for all looks);
  OBF: b_k = smallest x with (x - n_k θ0)/sqrt(n_k θ0(1-θ0)) >= C sqrt(K/k).  α* or C is
  the value whose exact overall crossing probability under θ0 is the largest <= α.
- Exact operating characteristics (P(stop), expected patients) by the forward recursion
  over counts of the boundary crossing (Jennison & Turnbull 2000, ch. 12).
Every output is a recommendation that names the rule; nothing acts on its own.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from cartrial.design.dlt import _last_known_day, dose_index, evaluate_dlt
from cartrial.endpoints.populations import analysis_populations

if TYPE_CHECKING:
    import pandas as pd

    from cartrial.cohort.model import Cohort


def bayes_stopping_boundary(
    looks: Any, theta: float, cutoff: float = 0.9, a: float = 1.0, b: float = 1.0
) -> np.ndarray:
    """Smallest count x with P(rate > theta | x of n, Beta(a, b)) > cutoff, per look n
    (n + 1 = never)."""
    from scipy.stats import beta

    ns = np.atleast_1d(np.asarray(looks, dtype=int))
    out = np.empty(len(ns), dtype=int)
    for i, n in enumerate(ns):
        x = np.arange(n + 1)
        ok = np.flatnonzero(beta.sf(theta, a + x, b + n - x) > cutoff)
        out[i] = ok[0] if ok.size else n + 1
    return out


def boundary_oc(looks: Any, bounds: Any, p: float) -> dict[str, float]:
    """Exact P(stop) and expected patients when the true rate is ``p``: stop at the
    first look k whose cumulative count reaches ``bounds[k]``."""
    from scipy.stats import binom

    ns = np.asarray(looks, dtype=int)
    bs = np.asarray(bounds, dtype=int)
    dist = np.zeros(ns[-1] + 1)
    dist[0] = 1.0
    prev, stop, expected = 0, 0.0, 0.0
    for n, bnd in zip(ns, bs, strict=True):
        add = binom.pmf(np.arange(n - prev + 1), n - prev, p)
        dist = np.convolve(dist, add)[: ns[-1] + 1]
        crossed = dist[bnd:].sum() if bnd <= n else 0.0
        stop += crossed
        expected += crossed * n
        if bnd <= n:
            dist[bnd:] = 0.0
        prev = n
    expected += (1 - stop) * ns[-1]
    return {"p_true": p, "p_stop": float(stop), "expected_n": float(expected)}


def _calibrate(make_bounds, looks, theta0, alpha, lo, hi, increasing) -> tuple[float, np.ndarray]:
    """Bisection on the tuning value so the exact crossing probability is <= alpha."""
    best = (hi if increasing else lo, make_bounds(hi if increasing else lo))
    for _ in range(60):
        mid = 0.5 * (lo + hi)
        bnd = make_bounds(mid)
        if boundary_oc(looks, bnd, theta0)["p_stop"] <= alpha:
            best = (mid, bnd)
            if increasing:
                hi = mid
            else:
                lo = mid
        elif increasing:
            lo = mid
        else:
            hi = mid
    return best


def pocock_count_boundary(looks: Any, theta0: float, alpha: float = 0.05) -> np.ndarray:
    """Pocock-type boundary for a toxicity count (Ivanova et al. 2005): overall exact
    P(stop | theta0) <= alpha with one nominal level at every look."""
    from scipy.stats import binom

    ns = np.asarray(looks, dtype=int)

    def make(level: float) -> np.ndarray:
        out = []
        for n in ns:
            x = np.arange(n + 2)
            ok = np.flatnonzero(binom.sf(x - 1, n, theta0) <= level)
            out.append(ok[0])
        return np.asarray(out)

    return _calibrate(make, ns, theta0, alpha, 0.0, alpha, increasing=False)[1]


def obrien_fleming_count_boundary(looks: Any, theta0: float, alpha: float = 0.05) -> np.ndarray:
    """O'Brien-Fleming-type boundary for a count (Ivanova et al. 2005): z-boundary
    C sqrt(K/k) on the binomial standardised count, exact overall level <= alpha."""
    ns = np.asarray(looks, dtype=int)
    k = np.arange(1, len(ns) + 1)
    sd = np.sqrt(ns * theta0 * (1 - theta0))

    def make(c: float) -> np.ndarray:
        z = c * np.sqrt(len(ns) / k)
        return np.minimum(np.ceil(ns * theta0 + z * sd - 1e-12).astype(int), ns + 1)

    return _calibrate(make, ns, theta0, alpha, 0.0, 10.0, increasing=True)[1]


def boundary_table(looks: Any, bounds: Any, rates: Any) -> pd.DataFrame:
    """Operating characteristics of a boundary over true rates: P(stop), E[patients]."""
    import pandas as pd

    return pd.DataFrame([boundary_oc(looks, bounds, float(r)) for r in rates])


# ----------------------------------------------------------------------------- cohort
@dataclass(frozen=True)
class Recommendation:
    """Next-dose recommendation from the cohort: the decision (with the rule that fired)
    and the DLT table per dose behind it.  A recommendation, never an action."""

    decision: Any  # cartrial.design.escalation.Decision
    current_dose: int
    dlt_table: pd.DataFrame
    patients: pd.DataFrame
    mtd_if_stopped_now: int | None
    text: str


def dose_label(cells_per_kg: float) -> str:
    """'5e5/kg' style label, as the cohort's ``dose_level`` column writes it."""
    mant, exp = f"{cells_per_kg:.2e}".split("e")
    return f"{float(mant):g}e{int(exp)}/kg"


def dlt_table(evaluation: pd.DataFrame, doses: Any, labels: Any = None) -> pd.DataFrame:
    """Per design dose: infused, DLT-evaluable, DLTs, pending (unknown) and rate."""
    import pandas as pd

    doses = list(doses)
    labels = list(labels) if labels is not None else [dose_label(d) for d in doses]
    idx = evaluation["design_dose"].to_numpy()
    ev = evaluation["evaluable"].to_numpy(dtype=bool)
    dlt = evaluation["dlt"].fillna(False).to_numpy(dtype=bool)
    unk = evaluation["dlt"].isna().to_numpy() & ev
    inf = evaluation["infused"].eq("yes").to_numpy(dtype=bool)
    rows = []
    for j, lab in enumerate(labels):
        m = idx == j
        n_ev = int((m & ev & ~unk).sum())
        y = int((m & ev & dlt).sum())
        rows.append(
            {
                "dose": j + 1,
                "label": lab,
                "cells_per_kg": doses[j],
                "infused": int((m & inf).sum()),
                "evaluable": n_ev,
                "dlt": y,
                "dlt_unknown": int((m & unk).sum()),
                "dlt_rate": y / n_ev if n_ev else np.nan,
            }
        )
    return pd.DataFrame(rows)


def next_dose_recommendation(
    cohort: Cohort,
    design: Any,
    doses: Any,
    labels: Any = None,
    definition: Any = None,
    current_dose: int | None = None,
) -> Recommendation:
    """What the design recommends for the next cohort given the cohort's DLTs.

    ``design``: a :class:`~cartrial.design.escalation.BOIN`, ``CRM`` or ``ThreePlusThree``
    with ``n_doses == len(doses)``; ``doses`` in cells/kg (matched to ``dose_level``
    labels).  ``current_dose`` (0-based) defaults to the dose of the last infused
    patient (by ``infusion_date``, else table order).  The web app can show
    ``text``, ``decision.rule`` and ``dlt_table``.
    """

    if design.n_doses != len(doses):
        raise ValueError(f"design has {design.n_doses} doses but {len(doses)} doses were given")
    ev = evaluate_dlt(cohort, definition)
    ev["design_dose"] = dose_index(cohort.patients, doses)
    table = dlt_table(ev, doses, labels)
    if current_dose is None:
        p = cohort.patients.assign(_d=ev["design_dose"].to_numpy(), _i=ev["infused"].to_numpy())
        p = p[(p["_d"] >= 0) & (p["_i"] == "yes")]
        if p.empty:
            raise ValueError("no infused patient at any of the design's doses")
        if "infusion_date" in p and p["infusion_date"].notna().any():
            p = p.sort_values("infusion_date", kind="stable", na_position="first")
        current_dose = int(p["_d"].iloc[-1])
    n = table["evaluable"].to_numpy()
    y = table["dlt"].to_numpy()
    decision = design.decide(n, y, current_dose)
    mtd = design.select_mtd(n, y) if hasattr(design, "select_mtd") else None
    lab = table["label"].tolist()
    nxt = "none (stop)" if decision.next_dose is None else lab[decision.next_dose]
    text = (
        f"Recommendation (not an action): {decision.action} -> next dose {nxt}. "
        f"Rule: {decision.rule}. Current dose {lab[current_dose]}: "
        f"{y[current_dose]}/{n[current_dose]} DLT-evaluable patients with a DLT."
    )
    return Recommendation(decision, current_dose, table, ev, mtd, text)


def crs3_or_nrm(cohort: Cohort, by_day: float = 100.0) -> pd.DataFrame:
    """Per infused patient: grade >= 3 CRS (onset by ``by_day``) or non-relapse mortality
    by ``by_day`` — death with no relapse/progression (event, or response PD) before it
    and a cause other than the disease (docs/DESIGN.md populations; CIBMTR NRM).  ``evaluable``:
    the event happened or the patient was followed to ``by_day``."""
    import pandas as pd

    pops = analysis_populations(cohort)
    ids = pops.loc[pops["safety"], "patient_id"].astype(str).tolist()
    ae = cohort.adverse_events
    crs = ae[
        ae["term"].astype("string").str.lower().eq("crs").fillna(False)
        & ae["grade"].astype("Int64").ge(3).fillna(False)
        & pd.to_numeric(ae["onset_day"], errors="coerce").le(by_day).fillna(False)
    ]
    crs_ids = set(crs["patient_id"].astype(str))
    ev = cohort.events.assign(pid=cohort.events["patient_id"].astype(str))
    kind = ev["event"].astype("string").str.lower()
    prog = ev[
        kind.isin(["relapse", "progression"]).fillna(False)
        | ev["response"].astype("string").str.upper().eq("PD").fillna(False)
    ]
    first_prog = prog.groupby("pid")["day"].min()
    deaths = (
        ev[kind.eq("death").fillna(False)]
        .groupby("pid")
        .agg(day=("day", "min"), cause=("cause", "first"))
    )
    last = _last_known_day(cohort)
    rows = []
    for pid in ids:
        nrm = False
        if pid in deaths.index:
            dday, cause = deaths.loc[pid, "day"], deaths.loc[pid, "cause"]
            before = pid in first_prog.index and first_prog[pid] <= dday
            disease = isinstance(cause, str) and cause.lower() in ("relapse", "progression")
            nrm = bool(dday <= by_day and not before and not disease)
        event = pid in crs_ids or nrm
        rows.append(
            {
                "patient_id": pid,
                "crs_grade3plus": pid in crs_ids,
                "nrm": nrm,
                "event": event,
                "evaluable": event or float(last.get(pid, -np.inf)) >= by_day,
            }
        )
    return pd.DataFrame(rows)


def dsmb_summary(
    cohort: Cohort,
    theta: float = 0.3,
    cutoff: float = 0.9,
    definition: Any = None,
    prior: tuple[float, float] = (1.0, 1.0),
) -> dict[str, Any]:
    """DSMB safety summary: enrolled, infused, DLT-evaluable, DLTs (by rule), patients
    with grade >= 3 CRS / ICANS (any time), deaths by cause, and the Bayesian boundary
    status (Thall, Simon & Estey 1995) for the DLT rate and for grade >= 3 CRS or NRM
    by day 100: stop signal if P(rate > theta | data) > cutoff.  A signal for the DSMB
    to review, never an automatic stop."""
    import pandas as pd
    from scipy.stats import beta

    pops = analysis_populations(cohort)
    ev = evaluate_dlt(cohort, definition)
    infused_ids = set(pops.loc[pops["safety"], "patient_id"].astype(str))
    ae = cohort.adverse_events
    term = ae["term"].astype("string").str.strip().str.lower()
    g3 = ae["grade"].astype("Int64").ge(3).fillna(False).to_numpy(dtype=bool)
    pid = ae["patient_id"].astype(str)

    def g3_patients(t: str) -> int:
        m = g3 & term.eq(t.lower()).fillna(False).to_numpy(dtype=bool)
        return len(set(pid[m]) & infused_ids)

    evn = cohort.events
    deaths = evn[evn["event"].astype("string").str.lower().eq("death").fillna(False)]
    deaths = deaths[deaths["patient_id"].astype(str).isin(infused_ids)]
    causes = deaths.drop_duplicates("patient_id")["cause"].astype("string").fillna("missing")
    n_eval = int((ev["evaluable"] & ev["dlt"].notna()).sum())
    n_dlt = int((ev["evaluable"] & ev["dlt"].fillna(False)).sum())
    a, b = prior
    prob = float(beta.sf(theta, a + n_dlt, b + n_eval - n_dlt))
    by_rule = ev.loc[ev["dlt"].fillna(False), "dlt_rules"].str.split("; ").explode().value_counts()
    bound = int(bayes_stopping_boundary([max(n_eval, 1)], theta, cutoff, a, b)[0])
    tox = crs3_or_nrm(cohort, 100.0)
    n_t, y_t = int(tox["evaluable"].sum()), int(tox["event"].sum())
    prob_t = float(beta.sf(theta, a + y_t, b + n_t - y_t))
    return {
        "enrolled": int(pops["enrolled"].sum()),
        "infused": int(pops["safety"].sum()),
        "dlt_evaluable": n_eval,
        "dlt": n_dlt,
        "dlt_by_rule": {str(k): int(v) for k, v in by_rule.items()},
        "crs_grade3plus": g3_patients("CRS"),
        "icans_grade3plus": g3_patients("ICANS"),
        "deaths": int(len(causes)),
        "deaths_by_cause": {str(k): int(v) for k, v in causes.value_counts().items()},
        "boundary": {
            "rule": f"stop if P(DLT rate > {theta:g} | data) > {cutoff:g}, Beta({a:g},{b:g})",
            "posterior_prob": prob,
            "stop_signal": bool(prob > cutoff),
            "stop_at_dlt_count": bound,
        },
        "crs3_or_nrm_day100": {
            "rule": f"stop if P(rate of grade >=3 CRS or NRM by day 100 > {theta:g} | data) "
            f"> {cutoff:g}, Beta({a:g},{b:g})",
            "evaluable": n_t,
            "events": y_t,
            "posterior_prob": prob_t,
            "stop_signal": bool(prob_t > cutoff),
        },
        "table": pd.DataFrame(ev),
    }
