"""Relapse detection and typing after CAR-T (CD7 trials).

Relapse after CR/CRi: reappearance of leukaemic blasts in the blood, or in the marrow
above the threshold, or in any extramedullary site (NCCN ALL: "> 5 %" marrow blasts;
ELN 2022 (Döhner 2022, Blood 140:1345): ">= 5 %" marrow blasts, blood blasts in at
least 2 samples at least 1 week apart, or extramedullary disease). Some older tables
use 25 %: ``relapse_blast_pct``.

Typing (as the CD7 CAR-T reports do): CD7-negative relapse (antigen escape)
versus CD7-positive, by the share of blasts expressing CD7 (``cd7_pct`` against
``cd7_positive_pct``, default 20 % - the usual flow-cytometry positivity cut-off for a
blast antigen; set it to the trial's own) or a reported status; and site: marrow,
blood, CNS, extramedullary.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from cartrial.cohort.vocab import CD7_STATUS, canonical
from cartrial.grading.core import GradingInputError, fmt
from cartrial.response.criteria import _bool, _criteria, _number

SOURCES = {
    "NCCN_ALL": "NCCN Guidelines, Acute Lymphoblastic Leukemia: relapsed disease",
    "ELN2022_AML": "Döhner H et al., Blood 2022;140:1345-1377 (ELN 2022): relapse",
}


@dataclass(frozen=True)
class Relapse:
    """Whether the observations show relapse, where, and its CD7 type."""

    criteria: str
    relapsed: bool | None
    sites: tuple[str, ...]
    cd7: str | None
    reasons: tuple[str, ...]
    missing: tuple[str, ...] = ()

    @property
    def label(self) -> str | None:
        if not self.relapsed:
            return None
        cd7 = {"negative": "CD7-negative", "positive": "CD7-positive", "dim": "CD7-dim"}.get(
            self.cd7 or "", "CD7 unknown"
        )
        return f"{cd7} relapse ({', '.join(self.sites)})"

    def to_dict(self) -> dict[str, Any]:
        return {
            "criteria": self.criteria,
            "relapsed": self.relapsed,
            "sites": list(self.sites),
            "cd7": self.cd7,
            "label": self.label,
            "reasons": list(self.reasons),
            "missing": list(self.missing),
        }


def classify_relapse(
    obs: Mapping[str, Any] | None = None,
    *,
    criteria: str = "NCCN_ALL",
    prior_remission: bool = True,
    relapse_blast_pct: float = 5.0,
    cd7_positive_pct: float = 20.0,
    **kwargs: Any,
) -> Relapse:
    """Relapse and its type from ``bm_blasts_pct``, ``circulating_blasts``, ``cns`` and
    ``extramedullary`` (yes/no), and ``cd7_pct`` (CD7+ % of blasts) or ``cd7_status``
    (negative/positive/dim). Relapse is only defined after a remission
    (``prior_remission``)."""

    crit = _criteria(criteria)
    o = {**(obs or {}), **kwargs}
    allowed = {
        "bm_blasts_pct",
        "circulating_blasts",
        "cns",
        "extramedullary",
        "cd7_pct",
        "cd7_status",
        "day",
        "patient_id",
    }
    for k in o:
        if k not in allowed:
            raise GradingInputError(
                k,
                o[k],
                "a relapse observation: " + ", ".join(sorted(allowed - {"day", "patient_id"})),
            )
    thr = _number("relapse_blast_pct", relapse_blast_pct, 0, 100)
    cd7_cut = _number("cd7_positive_pct", cd7_positive_pct, 0, 100)
    blasts = _number("bm_blasts_pct", o.get("bm_blasts_pct"), 0, 100)
    sites_known = {
        "blood": _bool("circulating_blasts", o.get("circulating_blasts")),
        "CNS": _bool("cns", o.get("cns")),
        "extramedullary": _bool("extramedullary", o.get("extramedullary")),
    }
    reasons: list[str] = []
    if not prior_remission:
        return Relapse(
            crit,
            None,
            (),
            None,
            (
                "relapse needs a prior CR/CRi: the patient was "
                "not in remission (refractory/progression)",
                f"source: {SOURCES[crit]}",
            ),
        )
    if math.isnan(blasts):
        marrow = None
    else:
        marrow = blasts >= thr if crit == "ELN2022_AML" else blasts > thr
        op = ">=" if crit == "ELN2022_AML" else ">"
        reasons.append(
            f"marrow blasts {fmt(blasts)} % ({'' if marrow else 'not '}{op} {fmt(thr)} %)"
        )
    status = {"marrow": marrow, **sites_known}
    sites = tuple(s for s, v in status.items() if v)
    missing = tuple(
        {
            "marrow": "bm_blasts_pct",
            "blood": "circulating_blasts",
            "CNS": "cns",
            "extramedullary": "extramedullary",
        }[s]
        for s, v in status.items()
        if v is None
    )
    for s in ("blood", "CNS", "extramedullary"):
        if status[s] is not None:
            reasons.append(f"{s}: {'blasts present' if status[s] else 'no disease'}")
    if sites:
        relapsed: bool | None = True
        missing = ()
    elif missing:
        relapsed = None
        reasons.append(
            "no relapse site found among those assessed; not assessed: " + ", ".join(missing)
        )
    else:
        relapsed = False
    if crit == "ELN2022_AML" and status["blood"]:
        reasons.append(
            "ELN 2022 counts blood blasts in >= 2 samples >= 1 week apart: "
            "give circulating_blasts = yes only when confirmed"
        )
    cd7 = None
    pct = _number("cd7_pct", o.get("cd7_pct"), 0, 100)
    if not math.isnan(pct):
        cd7 = "positive" if pct >= cd7_cut else "negative"
        reasons.append(f"CD7 on {fmt(pct)} % of blasts (positive from {fmt(cd7_cut)} %): CD7-{cd7}")
    elif o.get("cd7_status") is not None:
        cd7 = canonical(o["cd7_status"], CD7_STATUS)
        if cd7 is None:
            raise GradingInputError("cd7_status", o["cd7_status"], "negative, positive or dim")
        reasons.append(f"CD7 status reported: {cd7}")
    if relapsed and cd7 is None:
        reasons.append("CD7 status of the relapse not given")
    if relapsed and cd7 == "negative":
        reasons.append("CD7-negative relapse: antigen escape")
    reasons.append(f"source: {SOURCES[crit]}")
    return Relapse(crit, relapsed, sites, cd7, tuple(reasons), missing)
