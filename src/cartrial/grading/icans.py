"""Immune effector cell-associated neurotoxicity (ICANS): ASTCT 2019 and CARTOX-10/CRES.

ASTCT 2019 (Lee DW et al., BBMT 2019;25:625): ICE score (Table 4), adult grading
(Table 5), CAPD for children (Tables 6-7). The grade is the most severe of five domains
(encephalopathy score, depressed level of consciousness, seizure, motor findings,
raised ICP/cerebral oedema) not attributable to another cause. Tremor, myoclonus and
intracranial haemorrhage are not ICANS domains.

CARTOX (Neelapu SS et al., Nat Rev Clin Oncol 2018;15:47): CAR-T-cell-related
encephalopathy syndrome (CRES) graded with the CARTOX-10 score.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np

from cartrial.grading import codes
from cartrial.grading.core import (
    Bounds,
    Fill,
    Grade,
    GradingInputError,
    bound,
    fmt,
    grade_from_bounds,
    single,
)

ASTCT_SOURCE = (
    "Lee DW et al., Biol Blood Marrow Transplant 2019;25:625-638, ICE (Table 4), "
    "adult ICANS grading (Table 5), CAPD and paediatric grading (Tables 6-7)"
)
CARTOX_SOURCE = "Neelapu SS et al., Nat Rev Clin Oncol 2018;15:47-62, CRES grading table"

SZ = codes.SEIZURE
ED = codes.CEREBRAL_EDEMA
#: ASTCT seizure grade by code: rapidly resolving / non-convulsive resolving = 3;
#: prolonged (> 5 min) / repetitive without return to baseline / status = 4; a focal or
#: generalised seizure whose course is not stated is at least 3 (graded 3).
ASTCT_SEIZURE_GRADE = np.array([0, 3, 3, 4, 4, 3, 3, 4])
#: ASTCT cerebral-oedema grade by code: focal = 3; diffuse, posturing, CN VI palsy,
#: papilloedema, Cushing's triad = 4.
ASTCT_EDEMA_GRADE = np.array([0, 3, 4, 4, 4, 4, 4])
#: CARTOX seizure grade: partial seizure or non-convulsive seizure responding to
#: benzodiazepine = 3; generalised, convulsive or non-convulsive status = 4. A clinical
#: seizure of unstated type ("rapid_resolving") is graded 3 (partial) as the lower bound.
CARTOX_SEIZURE_GRADE = np.array([0, 3, 3, 4, 4, 3, 4, 4])
#: CARTOX raised ICP: cerebral oedema (focal or diffuse) = 4; papilloedema graded by
#: stage (1-2 -> 3, 3-5 -> 4); posturing/CN VI palsy/Cushing's triad are not CARTOX items.
CARTOX_EDEMA_GRADE = np.array([0, 4, 4, 0, 0, 3, 0])

TOOL_ICE, TOOL_CAPD = 0.0, 1.0


def _sum_items(score: str, items: Mapping[str, tuple[int, int]]) -> int:
    """Total of a bedside score's items, each checked to be a whole number from 0 to its
    maximum (``items``: name -> (value, maximum)); a bad item raises naming
    ``<score>_<item>``."""
    total = 0
    for name, (value, top) in items.items():
        if (
            isinstance(value, bool)
            or not isinstance(value, int | np.integer)
            or not 0 <= value <= top
        ):
            raise GradingInputError(f"{score}_{name}", value, f"a whole number from 0 to {top}")
        total += int(value)
    return total


def ice_score_from_items(
    orientation: int, naming: int, commands: int, writing: int, attention: int
) -> int:
    """ICE score (Lee 2019, Table 4): orientation to year, month, city, hospital (0-4),
    naming three objects (0-3), following simple commands (0-1), writing a standard
    sentence (0-1), attention: counting backwards from 100 by ten (0-1). Total 0-10."""
    items = {
        "orientation": (orientation, 4),
        "naming": (naming, 3),
        "commands": (commands, 1),
        "writing": (writing, 1),
        "attention": (attention, 1),
    }
    return _sum_items("ice", items)


def cartox10_from_items(orientation: int, naming: int, writing: int, attention: int) -> int:
    """CARTOX-10 (Neelapu 2018): orientation to year, month, city, hospital, president/
    prime minister (0-5), naming three objects (0-3), writing a sentence (0-1), counting
    backwards from 100 by ten (0-1). Total 0-10."""
    items = {
        "orientation": (orientation, 5),
        "naming": (naming, 3),
        "writing": (writing, 1),
        "attention": (attention, 1),
    }
    return _sum_items("cartox10", items)


# -- ASTCT 2019 ----------------------------------------------------------------------

ASTCT_FILLS: dict[str, Fill] = {
    "ice_score": Fill(10, 0),
    "capd_score": Fill(0, 32),
    "consciousness": Fill(0, 4),
    "seizure": Fill(0, SZ["prolonged"]),
    "motor_weakness": Fill(0, 1),
    "cerebral_edema": Fill(0, ED["diffuse"]),
    "icans_death": Fill(math.nan, None),
}


def ice_grade(ice: np.ndarray) -> np.ndarray:
    """ICE 10 = 0; 7-9 = 1; 3-6 = 2; 0-2 = 3 (0 with unarousable is grade 4 through the
    consciousness domain: an awake patient with ICE 0, e.g. global aphasia, is grade 3)."""
    return np.select([ice >= 10, ice >= 7, ice >= 3], [0, 1, 2], 3)


def capd_grade(capd: np.ndarray) -> np.ndarray:
    """CAPD 0 = 0; 1-8 = grade 1 (grade 2 when the child awakens only to voice, through
    the consciousness domain); >= 9 = 3. Unable to perform CAPD (unarousable) = 4
    through the consciousness domain."""
    return np.select([capd >= 9, capd >= 1], [3, 1], 0)


def astct_kernel(d: Mapping[str, np.ndarray]) -> np.ndarray:
    """ASTCT 2019 ICANS grade of complete observations: the most severe domain."""
    tool = d["tool"]
    enceph = np.where(tool == TOOL_CAPD, capd_grade(d["capd_score"]), ice_grade(d["ice_score"]))
    cons = d["consciousness"]
    sz = ASTCT_SEIZURE_GRADE[d["seizure"].astype(int)]
    motor = np.where(d["motor_weakness"] >= 1, 4, 0)
    edema = ASTCT_EDEMA_GRADE[d["cerebral_edema"].astype(int)]
    g = np.maximum.reduce([enceph, cons, sz, motor, edema]).astype(int)
    return np.where(d["icans_death"] >= 1, 5, g)


def choose_tool(age: np.ndarray, ice: np.ndarray, capd: np.ndarray, cutoff: float) -> np.ndarray:
    """Encephalopathy tool per row: CAPD below ``cutoff`` years, ICE from it on (ASTCT
    Tables 5 and 7: ICE for age >= 12, CAPD for younger children; sources differ on the
    12-year-old, hence the parameter). Age unknown: the score that was given (ICE when
    neither or both were given; both given is resolved by the caller)."""
    by_age = np.where(age < cutoff, TOOL_CAPD, TOOL_ICE)
    by_given = np.where(np.isnan(ice) & ~np.isnan(capd), TOOL_CAPD, TOOL_ICE)
    return np.where(np.isnan(age), by_given, by_age)


def _domain_text(values: Mapping[str, float], tool: float) -> list[str]:
    out = []
    ice, capd = values.get("ice_score", math.nan), values.get("capd_score", math.nan)
    if tool == TOOL_CAPD:
        if math.isnan(capd):
            out.append("CAPD score not given")
        else:
            g = int(capd_grade(np.array([capd]))[0])
            out.append(
                f"CAPD {fmt(capd)} -> grade {g}"
                + (" (1-8: grade 1, or 2 if awakens only to voice)" if g == 1 else "")
            )
        if not math.isnan(ice):
            out.append(f"ICE score {fmt(ice)} not used: CAPD applies below the age cut-off")
    else:
        if math.isnan(ice):
            out.append("ICE score not given")
        else:
            g = int(ice_grade(np.array([ice]))[0])
            out.append(f"ICE score {fmt(ice)} -> grade {g}")
        if not math.isnan(capd):
            out.append(f"CAPD {fmt(capd)} not used: ICE applies from the age cut-off on")
    c = values.get("consciousness", math.nan)
    if math.isnan(c):
        out.append("level of consciousness not given")
    else:
        out.append(f"consciousness: {codes.decode('consciousness', c)} -> grade {int(c)}")
    s = values.get("seizure", math.nan)
    if math.isnan(s):
        out.append("seizure not recorded")
    else:
        g = int(ASTCT_SEIZURE_GRADE[int(s)])
        note = (
            " (course not stated: at least grade 3)"
            if s in (SZ["focal"], SZ["generalized"])
            else ""
        )
        out.append(f"seizure: {codes.decode('seizure', s)} -> grade {g}{note}")
    m = values.get("motor_weakness", math.nan)
    if math.isnan(m):
        out.append("motor findings not recorded")
    else:
        out.append(
            "deep focal motor weakness -> grade 4" if m == 1 else "no deep focal motor weakness"
        )
    e = values.get("cerebral_edema", math.nan)
    if math.isnan(e):
        out.append("raised ICP/cerebral oedema not assessed")
    else:
        out.append(
            f"raised ICP/cerebral oedema: {codes.decode('cerebral_edema', e)} -> grade "
            f"{int(ASTCT_EDEMA_GRADE[int(e)])}"
        )
    return out


def grade_astct(values: Mapping[str, float], capd_age_cutoff: float = 12) -> Grade:
    """ASTCT 2019 ICANS grade with reasons (most severe domain; see module doc)."""
    age = values.get("age_years", math.nan)
    ice, capd = values.get("ice_score", math.nan), values.get("capd_score", math.nan)
    reasons: list[str] = []
    tools = choose_tool(np.array([age]), np.array([ice]), np.array([capd]), capd_age_cutoff)
    both = math.isnan(age) and not math.isnan(ice) and not math.isnan(capd)
    candidates = [TOOL_ICE, TOOL_CAPD] if both else [float(tools[0])]
    results = []
    for tool in candidates:
        data = {**single(values, ASTCT_FILLS), "tool": np.array([tool])}
        results.append((tool, bound(astct_kernel, data, ASTCT_FILLS)))
    if not math.isnan(age):
        which = "CAPD" if candidates[0] == TOOL_CAPD else "ICE"
        reasons.append(
            f"age {fmt(age)} years, cut-off {fmt(capd_age_cutoff)}: {which} is the "
            "encephalopathy score"
        )
    if both:
        reasons.append(
            "age not given and both ICE and CAPD scores given: graded with each; the "
            "grade is the lower, age_years decides"
        )
    tool, b = min(results, key=lambda r: (int(r[1].lo[0]), -int(r[1].hi[0])))
    if both and (
        int(results[0][1].lo[0]) != int(results[1][1].lo[0])
        or int(results[0][1].hi[0]) != int(results[1][1].hi[0])
    ):
        lo = min(int(r[1].lo[0]) for r in results)
        hi = max(int(r[1].hi[0]) for r in results)
        miss = {k: np.array([True]) for r in results for k in r[1].missing_at(0)}
        miss["age_years"] = np.array([True])
        b = type(b)(np.array([lo]), np.array([hi]), miss, b.observed)
    reasons += _domain_text(values, tool)
    if values.get("icans_death", math.nan) == 1:
        reasons.append("death due to ICANS -> grade 5")
    reasons.append(
        "ICANS grade = the most severe domain (ICE/CAPD, consciousness, seizure, "
        "motor, raised ICP); tremor, myoclonus and intracranial haemorrhage excluded"
    )
    reasons.append(f"source: {ASTCT_SOURCE}")
    return grade_from_bounds("ASTCT2019", b, reasons)


# -- CARTOX-10 / CRES -----------------------------------------------------------------

CARTOX_FILLS: dict[str, Fill] = {
    "cartox10_score": Fill(10, 0),
    "consciousness": Fill(0, 4),
    "seizure": Fill(0, SZ["generalized"]),
    "motor_weakness": Fill(0, 1),
    "cerebral_edema": Fill(0, ED["diffuse"]),
    "papilledema_stage": Fill(math.nan, None),
    "csf_opening_pressure_mmhg": Fill(math.nan, None),
    "icans_death": Fill(math.nan, None),
}


def cartox_kernel(d: Mapping[str, np.ndarray]) -> np.ndarray:
    """CRES grade (Neelapu 2018): CARTOX-10 7-9 = 1, 3-6 = 2, 0-2 = 3; obtunded / unable
    to be assessed = 4; papilloedema stage 1-2 = 3, stage 3-5 or CSF opening pressure
    >= 20 mmHg or cerebral oedema = 4; partial or non-convulsive seizure responding to
    benzodiazepine = 3; generalised seizure, status epilepticus or new motor weakness = 4.
    """
    score = ice_grade(d["cartox10_score"])
    obtunded = np.where(d["consciousness"] >= 4, 4, 0)
    sz = CARTOX_SEIZURE_GRADE[d["seizure"].astype(int)]
    motor = np.where(d["motor_weakness"] >= 1, 4, 0)
    edema = CARTOX_EDEMA_GRADE[d["cerebral_edema"].astype(int)]
    stage = d["papilledema_stage"]
    papill = np.select([stage >= 3, stage >= 1], [4, 3], 0)
    # papilloedema recorded without a stage: at least 3 (stage 1-2)
    edema = np.maximum(edema, papill)
    icp = np.where(d["csf_opening_pressure_mmhg"] >= 20, 4, 0)
    g = np.maximum.reduce([score, obtunded, sz, motor, edema, icp]).astype(int)
    return np.where(d["icans_death"] >= 1, 5, g)


def grade_cartox(values: Mapping[str, float]) -> Grade:
    """CARTOX-10 / CRES grade with reasons."""
    b = bound(cartox_kernel, single(values, CARTOX_FILLS), CARTOX_FILLS)
    reasons = []
    s = values.get("cartox10_score", math.nan)
    if math.isnan(s):
        reasons.append("CARTOX-10 score not given")
        if not math.isnan(values.get("ice_score", math.nan)):
            reasons.append("the ICE score is not the CARTOX-10 score (different items): not used")
    else:
        reasons.append(f"CARTOX-10 {fmt(s)} -> grade {int(ice_grade(np.array([s]))[0])}")
    if values.get("consciousness", math.nan) == 4:
        reasons.append("obtunded, cannot perform the assessment -> grade 4")
    sz = values.get("seizure", math.nan)
    if not math.isnan(sz):
        reasons.append(
            f"seizure: {codes.decode('seizure', sz)} -> grade {int(CARTOX_SEIZURE_GRADE[int(sz)])}"
        )
    e = values.get("cerebral_edema", math.nan)
    if not math.isnan(e):
        g = int(CARTOX_EDEMA_GRADE[int(e)])
        reasons.append(
            f"raised ICP: {codes.decode('cerebral_edema', e)} -> grade {g}"
            + (" (not a CARTOX criterion)" if e in (3, 4, 6) else "")
        )
    if values.get("motor_weakness", math.nan) == 1:
        reasons.append("new motor weakness -> grade 4")
    reasons.append("CRES grade = the most severe item")
    reasons.append(f"source: {CARTOX_SOURCE}")
    return grade_from_bounds("CARTOX", b, reasons)


def bound_astct(data: Mapping[str, np.ndarray], capd_age_cutoff: float = 12):
    """Vectorised ASTCT ICANS bounds for many rows (``data`` may hold ``age_years``).

    Rows with unknown age and both an ICE and a CAPD score are graded with each tool
    and take the envelope (``age_years`` reported missing where the tools disagree),
    like ``grade_astct`` does for one observation.
    """

    n = len(next(iter(data.values())))
    nan = np.full(n, np.nan)
    age = np.asarray(data.get("age_years", nan), dtype=float)
    ice = np.asarray(data.get("ice_score", nan), dtype=float)
    capd = np.asarray(data.get("capd_score", nan), dtype=float)
    tool = choose_tool(age, ice, capd, capd_age_cutoff)
    b = bound(astct_kernel, {**data, "tool": tool}, ASTCT_FILLS)
    both = np.isnan(age) & ~np.isnan(ice) & ~np.isnan(capd)
    if not both.any():
        return b
    b2 = bound(astct_kernel, {**data, "tool": np.where(both, TOOL_CAPD, tool)}, ASTCT_FILLS)
    lo = np.where(both, np.minimum(b.lo, b2.lo), b.lo)
    hi = np.where(both, np.maximum(b.hi, b2.hi), b.hi)
    missing = dict(b.missing)
    z = np.zeros(n, dtype=bool)
    for f, m in b2.missing.items():
        missing[f] = missing.get(f, z) | (both & m)
    differs = both & ((b.lo != b2.lo) | (b.hi != b2.hi))
    if differs.any():
        missing["age_years"] = differs
    return Bounds(lo, hi, missing, b.observed)
