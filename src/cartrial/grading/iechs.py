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

Attribution to the IEC therapy and the absence of another cause are clinical judgements
and are entered (``iechs_attributable``, ``iechs_other_cause``); nothing is inferred.

Grading (the consensus grading table; ``GRADING`` below, one row per grade):

* 1: asymptomatic or mild symptoms, no intervention for IEC-HS needed (identified IEC-HS
  with none of the items below);
* 2: mild to moderate symptoms requiring intervention: immunosuppressive agents directed
  at IEC-HS (``iechs_immunosuppression``) or transfusion for hypofibrinogenaemia
  (``fibrinogen_replacement``);
* 3: severe or medically significant but not immediately life-threatening: coagulopathy
  with bleeding requiring transfusion (``bleeding_transfusion``), new-onset acute kidney
  injury (``aki_new``), hospitalization or prolongation of hospitalization
  (``hospitalization_indicated``);
* 4: life-threatening consequences, urgent intervention indicated: life-threatening
  bleeding (``bleeding_life_threatening``), hypotension requiring vasopressors
  (``vasopressors`` >= 1 or ``vasopressin``), hypoxia requiring positive-pressure
  ventilation (``oxygen`` cpap, bipap or mechanical_ventilation), renal failure requiring
  dialysis (``dialysis``);
* 5: death (``death``).

The grade is computed from those items with the missing-data rule of the other engines
(an unknown item widens [``grade``, ``grade_max``]; ``death`` is not asked, as in every
engine). A clinician's ``iechs_grade`` is accepted when it lies within that range and
refused otherwise (it then contradicts the entered items).

Sources and what was checked. Primary: Hines MR et al., Transplant Cell Ther
2023;29:438.e1-438.e16 (PubMed 36906275). Its tables were NOT available as text in the
searchable store (searches of stored pages, code, documentation and issue threads on 2
Dec 2026 for the grading and identification wording: "IEC-HS" with grade, ferritin,
hypofibrinogenemia, cryoprecipitate, vasopressors; the Wobma 2025 Front Oncol review and
the Cancers 2023;15:5149 review gave only their front matter). The grading rows above
and the identification thresholds are the consensus as recalled by the project's
reviewers in issue 11, NOT checked against the paper's text; each is a named, overridable
table (``GRADING``, ``IechsCriteria``) so that a site holding the paper can verify them.
A public note in the store describing a "2024 ASTCT update" that grades IEC-HS by
ferritin thresholds was rejected: it contradicts the 2023 consensus abstract.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cartrial.grading import codes
from cartrial.grading.core import Fill, Grade, GradingInputError, bound, fmt, single
from cartrial.grading.ranges import ReferenceRanges

SOURCE = (
    "ASTCT IEC-HS consensus (Hines MR et al., Transplant Cell Ther 2023;29:438.e1-438.e16): "
    "identification criteria and grading table (rows as recalled in issue 11, not checked "
    "against the paper's text)"
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


#: the grading table: grade -> its items as (field, wording); a row is met when any of its
#: items is (``vasopressors`` >= 1; ``oxygen`` cpap or more; the others yes)
_PPV = float(codes.OXYGEN["cpap"])
GRADING: dict[int, tuple[tuple[str, str], ...]] = {
    2: (
        ("iechs_immunosuppression", "immunosuppressive agents directed at IEC-HS"),
        ("fibrinogen_replacement", "transfusion for hypofibrinogenaemia"),
    ),
    3: (
        ("bleeding_transfusion", "coagulopathy with bleeding requiring transfusion"),
        ("aki_new", "new-onset acute kidney injury"),
        ("hospitalization_indicated", "hospitalization or prolongation of hospitalization"),
    ),
    4: (
        ("bleeding_life_threatening", "life-threatening bleeding"),
        ("vasopressors", "hypotension requiring vasopressors"),
        ("vasopressin", "hypotension requiring vasopressors (vasopressin)"),
        ("oxygen", "hypoxia requiring positive-pressure ventilation"),
        ("dialysis", "renal failure requiring dialysis"),
    ),
}
GRADE_WORDS = {
    1: "asymptomatic or mild, no intervention for IEC-HS",
    2: "mild to moderate, requiring intervention",
    3: "severe or medically significant, not immediately life-threatening",
    4: "life-threatening consequences, urgent intervention indicated",
    5: "death",
}
GRADING_FIELDS = (*(f for rows in GRADING.values() for f, _ in rows), "death")
#: the identification inputs: the findings of ``FLAGS`` (with the baselines they are
#: compared with) and the attribution
IDENTIFICATION_FIELDS = (
    "ferritin_ng_ml",
    "ferritin_baseline_ng_ml",
    "alt_u_l",
    "alt_baseline_u_l",
    "ast_u_l",
    "ast_baseline_u_l",
    "fibrinogen_mg_dl",
    "hemophagocytosis",
    "cytopenia_new_or_worse",
    "coagulopathy",
    "iechs_attributable",
    "iechs_other_cause",
)
#: every input ``grade_iechs`` reads (the CLI's options): identification, the grading
#: table's items, and a clinician's grade
INPUTS = (*IDENTIFICATION_FIELDS, *GRADING_FIELDS, "iechs_grade")


def _met(field: str, x: np.ndarray) -> np.ndarray:
    return x >= _PPV if field == "oxygen" else x >= 1


def grade_kernel(d) -> np.ndarray:
    """Grade of identified IEC-HS from the grading items (vectorised; 1 when none met)."""
    g = np.ones(len(d["death"]), dtype=int)
    for level, rows in GRADING.items():
        hit = np.zeros(len(g), dtype=bool)
        for f, _ in rows:
            hit |= _met(f, d[f])
        g = np.where(hit, np.maximum(g, level), g)
    return np.where(d["death"] >= 1, 5, g)


def _grade_bounds(values: Mapping[str, float]):
    fills = {f: Fill(0.0, 9.0 if f == "oxygen" else 1.0) for f in GRADING_FIELDS}
    fills["death"] = Fill(math.nan, None)
    data = single(values, fills)
    data["death"] = np.nan_to_num(data["death"], nan=0.0)
    return bound(grade_kernel, data, fills)


def _grade_reasons(values: Mapping[str, float], lo: int) -> list[str]:
    out = []
    for level, rows in GRADING.items():
        for f, words in rows:
            v = values.get(f, math.nan)
            if not math.isnan(v) and _met(f, np.array([v]))[0]:
                out.append(f"{words} -> grade {level}")
    if values.get("death") == 1:
        out.append("death due to IEC-HS -> grade 5")
    out.append(
        f"IEC-HS grade {lo}: {GRADE_WORDS.get(lo, '')} (ASTCT IEC-HS consensus, Hines 2023, "
        "grading table)"
    )
    return out


def supporting_flags(
    values: Mapping[str, float],
    criteria: IechsCriteria = IechsCriteria(),
    uln: Mapping[str, float] | None = None,
    ranges: str | Path | None = None,
) -> tuple[dict[str, float], list[str]]:
    """The supporting findings (1 present, 0 absent, NaN unknown) with their reasons."""

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
    another cause); when identified, the grade of the grading table from the entered
    items (bounded by the unknown ones; a clinician's ``iechs_grade`` within those bounds
    wins); when identification depends on unknown items, 0 with ``grade_max`` the highest
    grade the grading items allow. ``details``: ``status`` (identified / excluded /
    possible) and the flags.
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
        b = _grade_bounds(values)
        lo, hi = int(b.lo[0]), int(b.hi[0])
        missing = b.missing_at(0)
        reasons.extend(_grade_reasons(values, lo))
        if missing:
            reasons.append(
                f"grade {lo} from the known items; could be up to {hi} depending on: "
                + ", ".join(missing)
            )
        if not math.isnan(entered):
            death_open = values.get("death") != 0  # grade 5 is death, never asked
            if not (lo <= entered <= hi or (entered == 5 and death_open)):
                raise GradingInputError(
                    "iechs_grade",
                    int(entered),
                    f"a grade from {lo} to {hi}: IEC-HS is identified and the entered grading "
                    f"items give grade {lo}" + (f"-{hi}" if hi > lo else ""),
                )
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
        b = _grade_bounds(values)
        lo, hi = 0, int(b.hi[0])
        missing = (*need, *(f for f in b.missing_at(0) if f not in need))
    reasons.append(f"source: {SOURCE}")
    observed = bool(known) or not math.isnan(attributable) or not math.isnan(other)
    details = (("status", status), ("flags", {k: _word(f) for k, f in flags.items()}))
    return Grade(SYSTEM, lo if observed else None, tuple(reasons), missing, hi, status, details)


def _word(flag: float) -> str:
    return "unknown" if math.isnan(flag) else ("yes" if flag == 1 else "no")
