"""IEC-HS: immune effector cell-associated HLH-like syndrome (ASTCT consensus, Hines MR
et al., Transplant Cell Ther 2023;29:438.e1-438.e16).

Identification (the consensus definition): a hyperinflammatory syndrome, distinct from
CRS and ICANS, that (1) has features of macrophage activation / HLH, (2) is attributable
to the immune effector cell therapy and not explained by another cause, and (3) comes
with new or worsening hyperferritinaemia, cytopenias, coagulopathy with
hypofibrinogenaemia and/or transaminase elevation (often as CRS resolves).

The supporting findings are computed from the laboratory values, each a named flag:

* ferritin > 2 x ULN, or > 2 x the value at infusion (``ferritin_baseline_ng_ml``);
  a "rapidly rising" ferritin is a clinical judgement and is not computed;
* ALT or AST > 5 x ULN (baseline normal) or > 5 x baseline (baseline abnormal);
* hypofibrinogenaemia: fibrinogen < 150 mg/dL;
* haemophagocytosis in marrow or tissue, new/worsening/refractory cytopenias and other
  coagulopathy: entered by the clinician.

These thresholds are NOT verified against the paper's text (see "Grading" below).

Attribution to the IEC therapy and the absence of another cause are clinical judgements
and are entered (``iechs_attributable``, ``iechs_other_cause``); nothing is inferred.

Grading. The consensus grades IEC-HS 1-5 by the interventions and consequences in its
grading table. That table, and the identification table with its thresholds, could NOT
be checked against the primary text: a search of the stored public pages, code and
documentation (2 Dec 2026; queries on the title, "IEC-HS" with grade / identification /
ferritin / hypofibrinogenemia wording, Transplant Cell Ther 2023;29:438) found only the
abstract (PubMed 36906275; MSKCC and Stanford listings), which says the paper delineates
"a framework for identifying IEC-HS" and "a grading schema", and reviews that do not
reproduce the tables as text (Cancers 2023;15:5149; Front Oncol 2025;15:1631557). No
grade is therefore computed from a table that was not read: the grade is the
clinician's (``iechs_grade``), checked against the identification (0 when IEC-HS is
excluded, at least 1 when it is identified), and a site that holds the paper can align
the supporting-finding thresholds above, which are parameters (``IechsCriteria``) and
whose values come from the reviewers' recollection of the paper, not from its text.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from cartrial.grading.core import Grade, GradingInputError, fmt

SOURCE = (
    "Hines MR et al., Transplant Cell Ther 2023;29:438.e1-438.e16 (ASTCT consensus on "
    "IEC-HS: identification criteria and grading; thresholds here not verified against "
    "the paper's tables)"
)
SYSTEM = "IECHS2023"


@dataclass(frozen=True)
class IechsCriteria:
    """Thresholds of the supporting findings (see module doc)."""

    ferritin_x_uln: float = 2.0
    ferritin_x_baseline: float = 2.0
    transaminase_x: float = 5.0
    fibrinogen_below_mg_dl: float = 150.0


FLAGS = (
    "ferritin",
    "transaminases",
    "hypofibrinogenemia",
    "hemophagocytosis",
    "cytopenias",
    "coagulopathy",
)


def _flag_ferritin(v, rr, c: IechsCriteria, reasons: list[str]) -> float:
    fer = v.get("ferritin_ng_ml", math.nan)
    base = v.get("ferritin_baseline_ng_ml", math.nan)
    if math.isnan(fer):
        return math.nan
    uln = rr.get("uln", "ferritin_ng_ml")
    hits, knowns = [], []
    if uln is not None:
        knowns.append(True)
        hits.append(fer > c.ferritin_x_uln * uln.value)
        reasons.append(
            f"ferritin {fmt(fer)} ng/mL = {fer / uln.value:.1f} x ULN {fmt(uln.value)} "
            f"({'>' if hits[-1] else '<='} {fmt(c.ferritin_x_uln)} x ULN; ULN from: {uln.source})"
        )
    if not math.isnan(base) and base > 0:
        knowns.append(True)
        hits.append(fer > c.ferritin_x_baseline * base)
        reasons.append(
            f"ferritin {fmt(fer)} ng/mL = {fer / base:.1f} x the value at infusion "
            f"{fmt(base)} ({'>' if hits[-1] else '<='} {fmt(c.ferritin_x_baseline)} x)"
        )
    if any(hits):
        return 1.0
    if not knowns:
        reasons.append(
            f"ferritin {fmt(fer)} ng/mL: no ULN and no value at infusion to compare with "
            "(pass uln={'ferritin_ng_ml': ...} or ferritin_baseline_ng_ml)"
        )
        return math.nan
    return 0.0


def _flag_transaminases(v, rr, c: IechsCriteria, reasons: list[str]) -> float:
    results = []
    for field, base_field, name in (
        ("alt_u_l", "alt_baseline_u_l", "ALT"),
        ("ast_u_l", "ast_baseline_u_l", "AST"),
    ):
        x = v.get(field, math.nan)
        if math.isnan(x):
            continue
        uln = rr.need("uln", field).value
        base = v.get(base_field, math.nan)
        ref, what = (base, "baseline") if not math.isnan(base) and base > uln else (uln, "ULN")
        hit = x > c.transaminase_x * ref
        results.append(hit)
        reasons.append(
            f"{name} {fmt(x)} U/L = {x / ref:.1f} x {what} {fmt(ref)} "
            f"({'>' if hit else '<='} {fmt(c.transaminase_x)} x)"
        )
    if any(results):
        return 1.0
    return 0.0 if len(results) == 2 else math.nan


def _flag_fibrinogen(v, c: IechsCriteria, reasons: list[str]) -> float:
    f = v.get("fibrinogen_mg_dl", math.nan)
    if math.isnan(f):
        return math.nan
    hit = f < c.fibrinogen_below_mg_dl
    reasons.append(
        f"fibrinogen {fmt(f)} mg/dL ({'<' if hit else '>='} {fmt(c.fibrinogen_below_mg_dl)})"
    )
    return float(hit)


def supporting_flags(
    values: Mapping[str, float],
    criteria: IechsCriteria = IechsCriteria(),
    uln: Mapping[str, float] | None = None,
    ranges: str | Path | None = None,
) -> tuple[dict[str, float], list[str]]:
    """The supporting findings (1 present, 0 absent, NaN unknown) with their reasons."""
    from cartrial.grading.ranges import ReferenceRanges

    rr = ReferenceRanges(ranges, None, uln)
    reasons: list[str] = []
    flags = {
        "ferritin": _flag_ferritin(values, rr, criteria, reasons),
        "transaminases": _flag_transaminases(values, rr, criteria, reasons),
        "hypofibrinogenemia": _flag_fibrinogen(values, criteria, reasons),
        "hemophagocytosis": values.get("hemophagocytosis", math.nan),
        "cytopenias": values.get("cytopenia_new_or_worse", math.nan),
        "coagulopathy": values.get("coagulopathy", math.nan),
    }
    for name, key in (
        ("hemophagocytosis", "haemophagocytosis in marrow or tissue"),
        ("cytopenias", "new, worsening or refractory cytopenias"),
        ("coagulopathy", "other coagulopathy"),
    ):
        if not math.isnan(flags[name]):
            reasons.append(f"{key}: {'yes' if flags[name] == 1 else 'no'}")
    return flags, reasons


def grade_iechs_values(
    values: Mapping[str, float],
    criteria: IechsCriteria = IechsCriteria(),
    uln: Mapping[str, float] | None = None,
    ranges: str | Path | None = None,
) -> Grade:
    """IEC-HS identification and grade with reasons (see module doc).

    ``grade``: 0 when IEC-HS is excluded (no supporting finding, not attributable, or
    another cause); the clinician's ``iechs_grade`` when identified (at least 1); when
    identification depends on unknown items, 0 with ``grade_max`` 4 and those items in
    ``missing``. ``details``: ``status`` (identified / excluded / possible) and the flags.
    """
    flags, reasons = supporting_flags(values, criteria, uln, ranges)
    attributable = values.get("iechs_attributable", math.nan)
    other = values.get("iechs_other_cause", math.nan)
    entered = values.get("iechs_grade", math.nan)
    known = [f for f in flags.values() if not math.isnan(f)]
    any_yes = any(f == 1 for f in known)
    all_no = len(known) == len(flags) and not any_yes
    unknown_flags = [k for k, f in flags.items() if math.isnan(f)]
    flag_fields = {
        "ferritin": "ferritin_ng_ml",
        "transaminases": "alt_u_l",
        "hypofibrinogenemia": "fibrinogen_mg_dl",
        "hemophagocytosis": "hemophagocytosis",
        "cytopenias": "cytopenia_new_or_worse",
        "coagulopathy": "coagulopathy",
    }
    if attributable == 0 or other == 1 or all_no:
        status = "excluded"
        why = (
            "not attributable to the IEC therapy"
            if attributable == 0
            else "explained by another cause"
            if other == 1
            else "no HLH-like finding"
        )
        reasons.append(f"IEC-HS excluded: {why}")
        if not math.isnan(entered) and entered > 0:
            raise GradingInputError(
                "iechs_grade", int(entered), f"0 or none: IEC-HS is excluded ({why})"
            )
        lo, hi, missing = 0, 0, ()
    elif any_yes and attributable == 1 and other == 0:
        status = "identified"
        found = ", ".join(k for k, f in flags.items() if f == 1)
        reasons.append(
            f"IEC-HS identified: {found}; attributable to the IEC therapy, no other cause"
        )
        if math.isnan(entered):
            lo, hi, missing = 1, 4, ("iechs_grade",)
            reasons.append(
                "grade not entered: identified IEC-HS is at least grade 1; the grade is the "
                "clinician's by the consensus grading table (interventions and consequences)"
            )
        else:
            if entered < 1:
                raise GradingInputError("iechs_grade", int(entered), "1-5: IEC-HS is identified")
            lo = hi = int(entered)
            missing = ()
            reasons.append(f"grade {int(entered)} entered by the clinician")
    else:
        status = "possible"
        need = [flag_fields[k] for k in unknown_flags] if not any_yes else []
        if math.isnan(attributable):
            need.append("iechs_attributable")
        if math.isnan(other):
            need.append("iechs_other_cause")
        reasons.append("IEC-HS possible: identification depends on " + ", ".join(need))
        lo, hi, missing = 0, 4, tuple(need)
    reasons.append(f"source: {SOURCE}")
    observed = bool(known) or not math.isnan(attributable) or not math.isnan(other)
    details = (("status", status), ("flags", {k: _word(f) for k, f in flags.items()}))
    return Grade(SYSTEM, lo if observed else None, tuple(reasons), missing, hi, status, details)


def _word(flag: float) -> str:
    return "unknown" if math.isnan(flag) else ("yes" if flag == 1 else "no")
