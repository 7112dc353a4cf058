"""Analysis populations, decided in one place.

Trials analyse nested populations (ICH E9 §5.2; the CD7 CAR-T reports of PATHWAY.md):

- **ITT** (enrolled): every patient registered in the trial (``patients.enrolled`` not
  false). Screen failures recorded with ``enrolled = no`` are outside it.
- **SAF** (safety / modified ITT): enrolled patients who received the CAR-T product
  (``infused = yes``). Safety tables, response rates and time-to-event endpoints from
  infusion use it.
- **EFF** (response-evaluable): SAF patients with a response assessment in the response
  window that is not "not evaluable" (NE).
- **CR** (in remission): SAF patients whose best response in the window is CR, CRh or
  CRi — the population of DFS, CIR and NRM (CIBMTR usage: relapse presupposes remission)
  and of comparisons by consolidation SCT.
- **RESP** (responders): SAF patients with an objective response in the window — the
  population of DOR (Cheson 2007).

A blank ``infused`` is missing, never true (a screen failure with a blank flag must not be
analysed). It is inferred only where the record says so: an ``infusion_date`` means
infused. If no patient has either recorded, the cohort does not record infusion at all
(every time is days since infusion, as the cohort format defines), and all enrolled
patients are taken as infused; ``population_notes`` says so.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from cartrial.cohort.model import Cohort
from cartrial.cohort.vocab import COMPLETE_RESPONSES, OBJECTIVE_RESPONSES
from cartrial.endpoints.response import best_response

#: a missing cell for ``np.where`` into an object array (NumPy's stubs refuse None)
_NA = np.array(None, dtype=object)


@dataclass(frozen=True)
class Population:
    """An analysis population: its code, label, ADaM flag and one-sentence rule."""

    code: str
    label: str
    column: str
    adam_flag: str | None
    rule: str


POPULATIONS: dict[str, Population] = {
    p.code: p
    for p in (
        Population(
            "ITT",
            "Enrolled (intention to treat)",
            "enrolled",
            "ITTFL",
            "All patients registered in the trial (patients.enrolled not 'no').",
        ),
        Population(
            "SAF",
            "Infused (safety / modified ITT)",
            "safety",
            "SAFFL",
            "Enrolled patients who received the CAR-T product (infused = yes, or an infusion "
            "date recorded); a blank infused flag is missing and excludes the patient.",
        ),
        Population(
            "EFF",
            "Response-evaluable",
            "response_evaluable",
            "EFFFL",
            "Infused patients with a response assessment in the response window other than "
            "not evaluable (NE).",
        ),
        Population(
            "CR",
            "In complete remission (CR/CRh/CRi)",
            "complete_remission",
            "CRFL",
            "Infused patients whose best response in the response window is CR, CRh or CRi.",
        ),
        Population(
            "RESP",
            "Responders",
            "responder",
            "RESPFL",
            "Infused patients with an objective response (CR, CRh, CRi, MLFS, PR) in the "
            "response window.",
        ),
    )
}

#: the order populations nest in, outermost first (patient flow order)
FLOW_ORDER = ("ITT", "SAF", "EFF", "CR", "RESP")


def infusion_status(patients: pd.DataFrame) -> pd.Series:
    """Per patient "yes", "no" or "missing": the recorded (or date-implied) infusion.

    ``infused`` true/false wins; otherwise an ``infusion_date`` means "yes"; otherwise
    "missing". When no patient records either, the cohort does not record infusion and
    every patient is "yes" (see the module docstring).
    """
    n = len(patients)
    flag = (
        patients["infused"].astype("boolean")
        if "infused" in patients
        else pd.Series(pd.NA, index=patients.index, dtype="boolean")
    )
    dated = (
        patients["infusion_date"].notna()
        if "infusion_date" in patients
        else pd.Series(False, index=patients.index)
    )
    if n and not _records_infusion(patients):
        return pd.Series("yes", index=patients.index, dtype="string")
    status = np.where(
        flag.eq(True).fillna(False),
        "yes",
        np.where(flag.eq(False).fillna(False), "no", np.where(dated, "yes", "missing")),
    )
    return pd.Series(status, index=patients.index, dtype="string")


def _records_infusion(patients: pd.DataFrame) -> bool:
    has_flag = "infused" in patients and patients["infused"].notna().any()
    has_date = "infusion_date" in patients and patients["infusion_date"].notna().any()
    return bool(has_flag or has_date)


def analysis_populations(
    cohort: Cohort,
    response_window: tuple[float, float] = (0.0, 35.0),
    best: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """One row per patient (``cohort.patients`` order): membership of every population.

    Columns: ``patient_id``; ``enrolled`` (ITT), ``infused`` ("yes"/"no"/"missing"),
    ``safety`` (SAF), ``response_evaluable`` (EFF), ``complete_remission`` (CR),
    ``responder`` (RESP) as booleans; ``best_response`` in the window;
    ``exclusion_reason``: why a patient is outside the safety population (<NA> inside).
    ``best`` may pass ``best_response(cohort, response_window)`` already computed.
    """

    p = cohort.patients
    ids = p["patient_id"].astype(str)
    enrolled = (
        ~p["enrolled"].astype("boolean").eq(False).fillna(False).to_numpy(dtype=bool)
        if "enrolled" in p
        else np.ones(len(p), dtype=bool)
    )
    infused = infusion_status(p)
    safety = enrolled & infused.eq("yes").to_numpy(dtype=bool)
    if best is None:
        best = best_response(cohort, response_window)
    resp = pd.Series(best["best_response"].to_numpy(), index=ids, dtype="string")
    assessed = resp.notna().to_numpy() & resp.ne("NE").fillna(False).to_numpy(dtype=bool)
    is_cr = resp.isin(list(COMPLETE_RESPONSES)).fillna(False).to_numpy(dtype=bool)
    is_resp = resp.isin(list(OBJECTIVE_RESPONSES)).fillna(False).to_numpy(dtype=bool)
    reason = np.where(
        ~enrolled,
        "not enrolled (screen failure)",
        np.where(
            infused.eq("no").to_numpy(dtype=bool),
            "enrolled, not infused",
            np.where(infused.eq("missing").to_numpy(dtype=bool), "infused not recorded", ""),
        ),
    )
    out = pd.DataFrame(
        {
            "patient_id": ids.to_numpy(),
            "enrolled": enrolled,
            "infused": infused.to_numpy(),
            "safety": safety,
            "response_evaluable": safety & assessed,
            "complete_remission": safety & is_cr,
            "responder": safety & is_resp,
            "best_response": resp.to_numpy(),
            "exclusion_reason": pd.array(np.where(reason == "", _NA, reason), dtype="string"),
        }
    )
    out["infused"] = out["infused"].astype("string")
    out["best_response"] = out["best_response"].astype("string")
    return out


def population_ids(
    cohort: Cohort, code: str, response_window: tuple[float, float] = (0.0, 35.0)
) -> pd.Index:
    """The patient ids of population ``code`` (one of ``POPULATIONS``)."""
    if code not in POPULATIONS:
        raise ValueError(f"unknown population {code!r}; expected one of {', '.join(POPULATIONS)}")
    pops = analysis_populations(cohort, response_window)
    col = POPULATIONS[code].column
    return pd.Index(pops.loc[pops[col].to_numpy(dtype=bool), "patient_id"], name="patient_id")


def population_counts(
    cohort: Cohort, response_window: tuple[float, float] = (0.0, 35.0)
) -> pd.DataFrame:
    """The patient flow: each population's n, with the reasons patients left it.

    Columns ``population``, ``label``, ``n``, ``excluded`` (from the previous population),
    ``reasons`` (reason → count, as text), ``rule``.
    """
    pops = analysis_populations(cohort, response_window)
    rows = []
    prev = np.ones(len(pops), dtype=bool)
    for code in FLOW_ORDER:
        pop = POPULATIONS[code]
        member = pops[pop.column].to_numpy(dtype=bool)
        parent = prev if code in ("ITT", "SAF", "EFF") else pops["safety"].to_numpy(dtype=bool)
        left = parent & ~member
        reasons = _exclusion_reasons(pops[left], code)
        rows.append(
            {
                "population": code,
                "label": pop.label,
                "n": int(member.sum()),
                "excluded": int(left.sum()),
                "reasons": "; ".join(f"{k}: {v}" for k, v in reasons.items()),
                "rule": pop.rule,
            }
        )
        if code in ("ITT", "SAF", "EFF"):
            prev = member
    return pd.DataFrame(rows)


def _exclusion_reasons(left: pd.DataFrame, code: str) -> dict[str, int]:
    if left.empty:
        return {}
    if code in ("ITT", "SAF"):
        why = left["exclusion_reason"].fillna("excluded")
    else:
        br = left["best_response"]
        why = br.fillna("not assessed in the window").replace({"NE": "not evaluable (NE)"})
        if code in ("CR", "RESP"):
            why = br.fillna("not assessed").map(lambda r: f"best response {r}")
    return {str(k): int(v) for k, v in why.value_counts(sort=False).items()}


def population_notes(cohort: Cohort) -> list[str]:
    """Statements about how populations were decided (for the methods and validate)."""
    p = cohort.patients
    if len(p) and not _records_infusion(p):
        return [
            f"no patient records infused or infusion_date: all {len(p)} enrolled patients "
            "are taken as infused (times are days since infusion)"
        ]
    return []


def subset_cohort(cohort: Cohort, ids: pd.Index | list[str]) -> Cohort:
    """The cohort restricted to ``ids`` (every table), keeping row provenance."""
    from dataclasses import replace

    keep = set(map(str, ids))
    mask = cohort.patients["patient_id"].astype(str).isin(keep).to_numpy()
    if mask.all():
        return cohort

    def sub(df: pd.DataFrame) -> pd.DataFrame:
        return df[df["patient_id"].astype(str).isin(keep).to_numpy()]

    given = cohort.given_endpoints
    return replace(
        cohort,
        patients=cohort.patients[mask].reset_index(drop=True),
        events=sub(cohort.events),
        adverse_events=sub(cohort.adverse_events),
        observations=sub(cohort.observations),
        given_endpoints=None if given is None else sub(given),
    )
