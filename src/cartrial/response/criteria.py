"""Response classification: NCCN ALL and ELN 2022 AML.

Sources:
* NCCN Clinical Practice Guidelines in Oncology, Acute Lymphoblastic Leukemia (response
  criteria): CR = no circulating blasts, no extramedullary disease, < 5 % marrow
  blasts, ANC > 1.0 x10^9/L and platelets > 100 x10^9/L (the guideline's thresholds
  are strict: "> 1000/µL", "> 100,000/µL"); CRi = CR without that count recovery;
  refractory = not in CR. NCCN ALL defines no PR: ``PR`` here is the CAR-T trial
  convention (marrow blasts reduced by >= 50 % from baseline while still
  >= 5 %, no new or progressing extramedullary disease).
* Döhner H et al., Blood 2022;140:1345-1377 (ELN 2022), response table: CR = marrow
  blasts < 5 %, no circulating blasts, no extramedullary disease, ANC >= 1.0 and
  platelets >= 100; CRh = ANC >= 0.5 and platelets >= 50 with the other CR criteria;
  CRi = the other CR criteria with residual neutropenia (< 1.0) or thrombocytopenia
  (< 100); MLFS = marrow blasts < 5 %, no circulating blasts or extramedullary disease,
  no count recovery; PR = CR count criteria, marrow blasts 5-25 % and reduced by
  >= 50 %. Reading used here to keep the categories disjoint: CRi needs at least one
  lineage recovered (ANC >= 1.0 or platelets >= 100); with neither it is MLFS.
* MRD negativity: below 1e-4 by flow cytometry for ALL (the CD7 trials' assays); the
  ELN 2022 MFC threshold for AML is 0.1 % (1e-3). ``mrd_threshold`` overrides both.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from cartrial.grading.core import GradingInputError, fmt

NCCN_SOURCE = "NCCN Guidelines, Acute Lymphoblastic Leukemia: response criteria"
ELN_SOURCE = "Döhner H et al., Blood 2022;140:1345-1377 (ELN 2022), response criteria table"
CRITERIA = {"NCCN_ALL": NCCN_SOURCE, "ELN2022_AML": ELN_SOURCE}
MRD_THRESHOLD = {"NCCN_ALL": 1e-4, "ELN2022_AML": 1e-3}
ORDER = {
    "NCCN_ALL": ("CR", "CRi", "PR", "NR"),
    "ELN2022_AML": ("CR", "CRh", "CRi", "MLFS", "PR", "NR"),
}
EMD = {"none": 0, "responding": 1, "present": 2, "progressing": 3}
EMD_ALIASES = {
    "absent": "none",
    "no": "none",
    "negative": "none",
    "0": "none",
    "yes": "present",
    "positive": "present",
    "1": "present",
    "stable": "present",
    "new": "progressing",
    "progression": "progressing",
    "reduced": "responding",
    "partial": "responding",
}


@dataclass(frozen=True)
class Response:
    """A response category with the rule that decided it.

    ``category`` is None when unknown observations leave several categories possible
    (listed in ``candidates``); ``missing`` names the observations that decide.
    """

    criteria: str
    category: str | None
    mrd_negative: bool | None
    reasons: tuple[str, ...]
    missing: tuple[str, ...] = ()
    candidates: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "criteria": self.criteria,
            "category": self.category,
            "mrd_negative": self.mrd_negative,
            "reasons": list(self.reasons),
            "missing": list(self.missing),
            "candidates": list(self.candidates),
        }


def _criteria(name: str) -> str:
    key = str(name).strip().upper().replace("-", "_").replace(" ", "_")
    aliases = {
        "NCCN": "NCCN_ALL",
        "NCCN_ALL": "NCCN_ALL",
        "ALL": "NCCN_ALL",
        "ELN": "ELN2022_AML",
        "ELN2022": "ELN2022_AML",
        "ELN2022_AML": "ELN2022_AML",
        "ELN_2022": "ELN2022_AML",
        "ELN_2022_AML": "ELN2022_AML",
    }
    if key not in aliases:
        raise GradingInputError("criteria", name, "NCCN_ALL or ELN2022_AML")
    return aliases[key]


def _number(name: str, v: Any, lo: float, hi: float) -> float:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return math.nan
    if isinstance(v, bool):
        raise GradingInputError(name, v, f"a number from {lo:g} to {hi:g}")
    try:
        x = float(v)
    except (TypeError, ValueError):
        raise GradingInputError(name, v, f"a number from {lo:g} to {hi:g}") from None
    if math.isnan(x):
        return x
    if not lo <= x <= hi:
        raise GradingInputError(name, v, f"a number from {lo:g} to {hi:g}")
    return x


def _bool(name: str, v: Any) -> bool | None:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return None
    if isinstance(v, bool):
        return v
    t = str(v).strip().lower()
    if t in ("1", "true", "yes", "y", "present", "positive"):
        return True
    if t in ("0", "false", "no", "n", "absent", "none", "negative"):
        return False
    raise GradingInputError(name, v, "yes/no (true/false)")


def _emd(v: Any) -> str | None:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return None
    if isinstance(v, bool):
        return "present" if v else "none"
    t = str(v).strip().lower()
    t = EMD_ALIASES.get(t, t)
    if t not in EMD:
        raise GradingInputError("extramedullary", v, "one of " + ", ".join(EMD))
    return t


def _mrd(v: Any) -> tuple[float | None, bool | None]:
    """MRD as a fraction (0-1) or a word (negative/positive)."""
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return None, None
    if isinstance(v, str):
        t = v.strip().lower()
        if t in ("negative", "neg", "mrd-", "undetectable"):
            return None, True
        if t in ("positive", "pos", "mrd+", "detectable"):
            return None, False
    x = _number("mrd", v, 0.0, 1.0)
    return x, None


def _classify(
    criteria: str, blasts: float, circ: bool, emd: str, anc: float, plt: float, baseline: float
) -> str:
    marrow_ok = blasts < 5.0 and not circ and emd == "none"
    reduced = not math.isnan(baseline) and baseline > 0 and blasts <= 0.5 * baseline
    if criteria == "NCCN_ALL":
        if marrow_ok:
            return "CR" if anc > 1.0 and plt > 100.0 else "CRi"
        if reduced and emd in ("none", "responding"):
            return "PR"
        return "NR"
    counts_cr = anc >= 1.0 and plt >= 100.0
    if marrow_ok:
        if counts_cr:
            return "CR"
        if anc >= 0.5 and plt >= 50.0:
            return "CRh"
        if anc >= 1.0 or plt >= 100.0:
            return "CRi"
        return "MLFS"
    if counts_cr and 5.0 <= blasts <= 25.0 and reduced and not circ and emd == "none":
        return "PR"
    return "NR"


def classify_response(
    obs: Mapping[str, Any] | None = None,
    criteria: str = "NCCN_ALL",
    mrd_threshold: float | None = None,
    **kwargs: Any,
) -> Response:
    """Response category (NCCN ALL: CR, CRi, PR, NR; ELN 2022 AML: CR, CRh, CRi, MLFS,
    PR, NR) and MRD status from ``bm_blasts_pct``, ``circulating_blasts``,
    ``extramedullary`` (none/responding/present/progressing), ``anc`` and ``platelets``
    (x10^9/L), ``baseline_bm_blasts_pct`` (for PR) and ``mrd`` (fraction or word).
    """
    crit = _criteria(criteria)
    o = {**(obs or {}), **kwargs}
    known_keys = {
        "bm_blasts_pct",
        "circulating_blasts",
        "extramedullary",
        "anc",
        "platelets",
        "baseline_bm_blasts_pct",
        "mrd",
        "day",
        "patient_id",
    }
    for k in o:
        if k not in known_keys:
            raise GradingInputError(
                k,
                o[k],
                "a response observation: " + ", ".join(sorted(known_keys - {"day", "patient_id"})),
            )
    blasts = _number("bm_blasts_pct", o.get("bm_blasts_pct"), 0, 100)
    base = _number("baseline_bm_blasts_pct", o.get("baseline_bm_blasts_pct"), 0, 100)
    anc = _number("anc", o.get("anc"), 0, 200)
    plt = _number("platelets", o.get("platelets"), 0, 5000)
    circ = _bool("circulating_blasts", o.get("circulating_blasts"))
    emd = _emd(o.get("extramedullary"))
    thr = (
        MRD_THRESHOLD[crit]
        if mrd_threshold is None
        else _number("mrd_threshold", mrd_threshold, 0, 1)
    )
    mrd_value, mrd_word = _mrd(o.get("mrd"))
    mrd_negative = mrd_word if mrd_value is None else mrd_value < thr

    choices: dict[str, list[Any]] = {}
    half = 0.5 * base if not math.isnan(base) else math.nan
    choices["bm_blasts_pct"] = (
        [blasts]
        if not math.isnan(blasts)
        else sorted(
            {0.0, 4.99, 5.0, 25.0, 25.01, 100.0}
            | ({half, min(half + 0.01, 100.0)} if not math.isnan(half) else set())
        )
    )
    choices["circulating_blasts"] = [circ] if circ is not None else [False, True]
    choices["extramedullary"] = [emd] if emd is not None else list(EMD)
    choices["anc"] = [anc] if not math.isnan(anc) else [0.1, 0.5, 1.0, 1.01, 10.0]
    choices["platelets"] = [plt] if not math.isnan(plt) else [10.0, 50.0, 100.0, 100.5, 500.0]
    choices["baseline_bm_blasts_pct"] = [base] if not math.isnan(base) else [math.nan, 100.0]
    names = list(choices)
    outcomes: dict[tuple, str] = {}
    for combo in itertools.product(*choices.values()):
        blasts_c, circ_c, emd_c, anc_c, plt_c, base_c = combo
        outcomes[combo] = _classify(crit, blasts_c, circ_c, emd_c, anc_c, plt_c, base_c)
    cats = {c for c in outcomes.values()}
    order = ORDER[crit]
    candidates = tuple(c for c in order if c in cats)
    missing = []
    for i, name in enumerate(names):
        if len(choices[name]) < 2:
            continue
        groups: dict[tuple, set[str]] = {}
        for combo, cat in outcomes.items():
            groups.setdefault(combo[:i] + combo[i + 1 :], set()).add(cat)
        if any(len(s) > 1 for s in groups.values()):
            missing.append(name)
    category = candidates[0] if len(candidates) == 1 else None

    reasons = []
    if not math.isnan(blasts):
        reasons.append(f"marrow blasts {fmt(blasts)} % ({'<' if blasts < 5 else '>='} 5 %)")
    if circ is not None:
        reasons.append("circulating blasts " + ("present" if circ else "absent"))
    if emd is not None:
        reasons.append(f"extramedullary disease: {emd}")
    if not math.isnan(anc) or not math.isnan(plt):
        op = ">" if crit == "NCCN_ALL" else ">="
        reasons.append(
            f"ANC {fmt(anc)}, platelets {fmt(plt)} x10^9/L (count recovery: ANC "
            f"{op} 1.0 and platelets {op} 100)"
        )
    if not math.isnan(base) and not math.isnan(blasts):
        red = 100 * (1 - blasts / base) if base > 0 else 0.0
        reasons.append(
            f"blasts reduced {fmt(round(red, 1))} % from baseline {fmt(base)} % (PR needs >= 50 %)"
        )
    if category is not None:
        reasons.append(f"{crit}: {category}")
    else:
        reasons.append(f"{crit}: one of {', '.join(candidates)} depending on {', '.join(missing)}")
    if mrd_negative is not None:
        shown = "" if mrd_value is None else f" ({mrd_value:.2g} vs threshold {thr:.0e})"
        reasons.append("MRD " + ("negative" if mrd_negative else "positive") + shown)
    if crit == "NCCN_ALL" and "PR" in candidates:
        reasons.append(
            "PR is the trial convention (>= 50 % blast reduction); NCCN ALL itself defines no PR"
        )
    reasons.append(f"source: {CRITERIA[crit]}")
    return Response(crit, category, mrd_negative, tuple(reasons), tuple(missing), candidates)
