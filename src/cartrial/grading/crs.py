"""Cytokine release syndrome (CRS) grading: ASTCT 2019, CARTOX 2018 and Lee 2014.

Three systems are kept apart on purpose: only about a quarter of patients get the same
CRS grade across systems (Pennisi et al., Blood Adv 2020;4:676), so raw observations
are stored and re-graded, never mapped from one system's grade to another's.

Each system is a vectorised kernel over complete observations (``*_kernel``) plus a
scalar entry point that bounds the kernel over unknown items and says why.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np

from cartrial.grading import codes
from cartrial.grading.core import (
    Fill,
    Grade,
    GradingInputError,
    bound,
    fmt,
    grade_from_bounds,
    known,
    single,
)

ASTCT_SOURCE = "Lee DW et al., Biol Blood Marrow Transplant 2019;25:625-638, Table 3"
CARTOX_SOURCE = "Neelapu SS et al., Nat Rev Clin Oncol 2018;15:47-62, CRS grading table"
LEE2014_SOURCE = "Lee DW et al., Blood 2014;124:188-195, Table 2 (high-dose pressors: Table 3)"

OX = codes.OXYGEN
#: ASTCT 2019 hypoxia grade implied by each device (index = code). Nasal cannula is
#: re-classified by flow when the flow is known (<= 6 L/min low-flow, > 6 high-flow).
ASTCT_DEVICE_GRADE = np.array([0, 2, 2, 3, 3, 3, 3, 4, 4, 4])
LOW_FLOW_MAX_L_MIN = 6.0
FEVER_C = 38.0

ASTCT_FILLS: dict[str, Fill] = {
    "temperature_c": Fill(36.5, 39.0),
    "fever_masked": Fill(0, 1),
    "hypotension": Fill(0, 1),
    "vasopressors": Fill(0, 2),
    "vasopressin": Fill(0, 1),
    "oxygen": Fill(OX["none"], OX["mechanical_ventilation"]),
    "o2_flow_l_min": Fill(math.nan, None),
    "crs_death": Fill(math.nan, None),
}


# -- ASTCT 2019 ----------------------------------------------------------------------


def astct_hypotension(d: Mapping[str, np.ndarray]) -> np.ndarray:
    """ASTCT 2019 Table 3, hypotension column: 2 = not requiring vasopressors; 3 = one
    vasopressor with or without vasopressin (vasopressin alone counts as one); 4 =
    multiple vasopressors excluding vasopressin. Vasopressors imply hypotension."""
    vp, vpn, hyp = d["vasopressors"], d["vasopressin"], d["hypotension"]
    return np.select([vp >= 2, (vp >= 1) | (vpn >= 1), hyp >= 1], [4, 3, 2], 0)


def astct_hypoxia(d: Mapping[str, np.ndarray]) -> np.ndarray:
    """ASTCT 2019 Table 3, hypoxia column: low-flow nasal cannula (<= 6 L/min) or
    blow-by = 2; high-flow nasal cannula (> 6 L/min), facemask, non-rebreather or
    Venturi mask = 3; positive pressure (CPAP, BiPAP, mechanical ventilation) = 4.

    The table footnote defines the nasal cannula by flow, so a known flow decides
    between low- and high-flow whatever the device was called; with no device given, a
    flow > 0 implies nasal-cannula oxygen of that flow (a lower bound)."""
    dev = np.nan_to_num(d["oxygen"], nan=0).astype(int)
    flow = d["o2_flow_l_min"]
    base = ASTCT_DEVICE_GRADE[dev]
    cannula = (dev == OX["low_flow"]) | (dev == OX["high_flow"]) | (dev == OX["none"])
    by_flow = np.where(flow > LOW_FLOW_MAX_L_MIN, 3, 2)
    return np.where(cannula & (flow > 0), by_flow, base)


def astct_kernel(d: Mapping[str, np.ndarray]) -> np.ndarray:
    """ASTCT 2019 CRS grade of complete observations (Table 3 and its footnotes).

    Fever >= 38.0 °C is required unless antipyretic or anti-cytokine therapy was given
    after onset (``fever_masked``); the grade is the more severe of hypotension and
    hypoxia (grade 1 = fever alone); organ toxicities do not count; death from CRS = 5.
    """
    fever = d["temperature_c"] >= FEVER_C
    gate = fever | (d["fever_masked"] >= 1)
    core = np.maximum(astct_hypotension(d), astct_hypoxia(d))
    g = np.where(gate, np.maximum(fever.astype(int), core), 0)
    return np.where(d["crs_death"] >= 1, 5, g)


def imply(d: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Fill what the other answers imply: a vasopressor means hypotension; no
    hypotension means no vasopressor, vasopressin, high dose or life-threatening
    hypotension. (Contradictions are rejected first by ``check_crs_consistency``.)"""
    out = dict(d)
    n = len(next(iter(d.values())))
    nan = np.full(n, np.nan)
    vp, vpn = out.get("vasopressors", nan), out.get("vasopressin", nan)
    hyp = out.get("hypotension", nan)
    pressor = (
        (vp >= 1)
        | (vpn >= 1)
        | (out.get("vasopressor_high_dose", nan) >= 1)
        | (out.get("hypotension_life_threatening", nan) >= 1)
    )
    hyp = np.where(pressor & np.isnan(hyp), 1.0, hyp)
    out["hypotension"] = hyp
    for k in (
        "vasopressors",
        "vasopressin",
        "vasopressor_high_dose",
        "hypotension_life_threatening",
    ):
        if k in out or k in ("vasopressors", "vasopressin"):
            cur = out.get(k, nan)
            out[k] = np.where((hyp == 0) & np.isnan(cur), 0.0, cur)
    if "vasopressor_high_dose" in out:  # a high dose needs a vasopressor
        none = (out["vasopressors"] == 0) & (out["vasopressin"] == 0)
        out["vasopressor_high_dose"] = np.where(
            none & np.isnan(out["vasopressor_high_dose"]), 0.0, out["vasopressor_high_dose"]
        )
    return out


def _scalar(d: Mapping[str, np.ndarray]) -> dict[str, float]:
    return {k: float(v[0]) for k, v in d.items() if not np.isnan(v[0])}


def check_crs_consistency(v: Mapping[str, float], where: str | None = None) -> None:
    """Reject contradictory CRS inputs instead of guessing which one is right."""
    hyp = v.get("hypotension", math.nan)
    vp = v.get("vasopressors", math.nan)
    vpn = v.get("vasopressin", math.nan)
    if hyp == 0 and (
        vp >= 1
        or vpn == 1
        or v.get("vasopressor_high_dose") == 1
        or v.get("hypotension_life_threatening") == 1
    ):
        raise GradingInputError(
            "hypotension",
            False,
            "hypotension = yes (or unknown) when vasopressors/vasopressin are given",
            where,
        )
    dev = v.get("oxygen", math.nan)
    flow = v.get("o2_flow_l_min", math.nan)
    if dev == OX["none"] and flow > 0:
        raise GradingInputError("o2_flow_l_min", flow, "0 or no flow when oxygen = none", where)
    if dev in (OX["low_flow"], OX["high_flow"]) and flow == 0:
        raise GradingInputError(
            "o2_flow_l_min", flow, "a flow > 0 L/min for a nasal cannula", where
        )


def _hypotension_text(v: Mapping[str, float]) -> str:
    vp, vpn, hyp = (v.get(k, math.nan) for k in ("vasopressors", "vasopressin", "hypotension"))
    with_vpn = " with vasopressin" if vpn == 1 else ""
    if vp >= 2:
        return f"hypotension requiring {fmt(vp)} vasopressors (excluding vasopressin){with_vpn}"
    if vp == 1:
        return f"hypotension requiring one vasopressor{with_vpn}"
    if vpn == 1:
        return "hypotension requiring vasopressin (counts as one vasopressor)"
    if hyp == 1:
        return "hypotension" + (" not requiring vasopressors" if vp == 0 else "")
    if hyp == 0:
        return "no hypotension"
    return "hypotension not recorded"


def _hypoxia_text(v: Mapping[str, float]) -> str:
    dev = v.get("oxygen", math.nan)
    flow = v.get("o2_flow_l_min", math.nan)
    flow_txt = f" at {fmt(flow)} L/min" if not math.isnan(flow) else ""
    if math.isnan(dev):
        if flow > 0:
            kind = "high-flow" if flow > LOW_FLOW_MAX_L_MIN else "low-flow"
            return (
                f"oxygen device not given; a flow of {fmt(flow)} L/min implies at least "
                f"{kind} nasal cannula"
            )
        return "oxygen support not recorded"
    word = codes.decode("oxygen", dev)
    text = f"oxygen: {word}{flow_txt}"
    if dev == OX["low_flow"] and flow > LOW_FLOW_MAX_L_MIN:
        text += " (> 6 L/min: the ASTCT footnote defines this as high-flow nasal cannula)"
    if dev == OX["high_flow"] and 0 < flow <= LOW_FLOW_MAX_L_MIN:
        text += " (<= 6 L/min: the ASTCT footnote defines this as low-flow nasal cannula)"
    return text


def _domain(kernel, values: Mapping[str, float], fills: Mapping[str, Fill]) -> str:
    b = bound(kernel, single(values, fills), fills)
    lo, hi = int(b.lo[0]), int(b.hi[0])
    return f"grade {lo}" if lo == hi else f"grade {lo} (up to {hi} if unknown items are worse)"


def grade_astct(values: Mapping[str, float]) -> Grade:
    """ASTCT 2019 CRS grade with reasons (Lee et al. BBMT 2019;25:625, Table 3).

    ``values`` are parsed observations (see ``core.parse_observations``).
    """
    check_crs_consistency(values)
    data = imply(single(values, ASTCT_FILLS))
    b = bound(astct_kernel, data, ASTCT_FILLS)
    values = {**values, **_scalar(data)}
    reasons: list[str] = []
    temp = values.get("temperature_c", math.nan)
    masked = values.get("fever_masked", math.nan)
    if math.isnan(temp):
        reasons.append("temperature not given: fever unknown")
    elif temp >= FEVER_C:
        reasons.append(f"temperature {fmt(temp)} °C >= 38.0 °C: fever")
    else:
        reasons.append(f"temperature {fmt(temp)} °C < 38.0 °C: no fever")
    if masked == 1:
        reasons.append(
            "antipyretic/anti-cytokine therapy given after CRS onset: fever no "
            "longer required, grade driven by hypotension and hypoxia "
            "(ASTCT 2019, Table 3 footnote)"
        )
    hyp_fills = {k: ASTCT_FILLS[k] for k in ("hypotension", "vasopressors", "vasopressin")}
    hox_fills = {k: ASTCT_FILLS[k] for k in ("oxygen", "o2_flow_l_min")}
    reasons.append(
        f"{_hypotension_text(values)} -> hypotension "
        f"{_domain(astct_hypotension, values, hyp_fills)}"
    )
    reasons.append(
        f"{_hypoxia_text(values)} -> hypoxia {_domain(astct_hypoxia, values, hox_fills)}"
    )
    if values.get("crs_death", math.nan) == 1:
        reasons.append("death due to CRS -> grade 5")
    elif temp < FEVER_C and masked == 0:
        reasons.append(
            "no fever and fever not masked by antipyretic/anti-cytokine therapy: "
            "not CRS by ASTCT 2019 (hypotension or hypoxia alone is not graded)"
        )
    else:
        reasons.append(
            "CRS grade = the more severe of hypotension and hypoxia; fever alone = "
            "grade 1; organ toxicities are graded by CTCAE and do not change it"
        )
    reasons.append(f"source: {ASTCT_SOURCE}")
    return grade_from_bounds("ASTCT2019", b, reasons)


# -- Lee 2014 and CARTOX 2018 ----------------------------------------------------------

#: FiO2 a device delivers at least (used when FiO2 is not recorded): a non-rebreather
#: mask delivers >= 60 % by design; other devices are left to the recorded FiO2.
DEVICE_MIN_FIO2 = np.array([0.21, 0.21, 0.21, 0.21, 0.21, 0.60, 0.21, 0.21, 0.21, 0.21])


def _legacy_fills(system: str) -> dict[str, Fill]:
    fills = {
        "temperature_c": Fill(36.5, 39.0),
        "hypotension": Fill(0, 1),
        "vasopressors": Fill(0, 2),
        "vasopressin": Fill(0, 1),
        "vasopressor_high_dose": Fill(0, 1),
        "oxygen": Fill(OX["none"], OX["mechanical_ventilation"]),
        "fio2": Fill(0.21, 1.0),
        "organ_toxicity_grade": Fill(0, 4),
        "transaminitis_grade": Fill(0, 4),
        "crs_death": Fill(math.nan, None),
    }
    if system == "Lee2014":
        fills["constitutional_symptoms"] = Fill(0, 1)
    else:
        fills["hypotension_life_threatening"] = Fill(0, 1)
    return fills


def legacy_hypotension(d: Mapping[str, np.ndarray], system: str) -> np.ndarray:
    """Lee 2014 Table 2 / CARTOX: 2 = responds to fluids or one low-dose vasopressor;
    3 = high-dose or multiple vasopressors (vasopressin counts); CARTOX 4 =
    life-threatening hypotension (Lee 2014 has no hypotension criterion at grade 4)."""
    n = d["vasopressors"] + d["vasopressin"]
    conds = [(d["vasopressor_high_dose"] >= 1) | (n >= 2), (d["hypotension"] >= 1) | (n >= 1)]
    g = np.select(conds, [3, 2], 0)
    if system == "CARTOX":
        g = np.where(d["hypotension_life_threatening"] >= 1, 4, g)
    return g


def legacy_hypoxia(d: Mapping[str, np.ndarray]) -> np.ndarray:
    """Lee 2014 / CARTOX: oxygen with FiO2 < 40 % = 2, FiO2 >= 40 % = 3, ventilator
    support = 4 (taken as invasive mechanical ventilation; CPAP/BiPAP graded by FiO2)."""
    dev = np.nan_to_num(d["oxygen"], nan=0).astype(int)
    fio2 = np.fmax(d["fio2"], DEVICE_MIN_FIO2[dev])
    on_o2 = (dev != OX["none"]) | (fio2 > 0.21)
    g = np.where(on_o2, np.where(fio2 >= 0.40, 3, 2), 0)
    return np.where(dev == OX["mechanical_ventilation"], 4, g)


def legacy_kernel(d: Mapping[str, np.ndarray], system: str) -> np.ndarray:
    """Lee 2014 (Blood 124:188, Table 2) or CARTOX (Neelapu 2018) CRS grade.

    Grade = the most severe of: grade 1 symptoms (fever >= 38 °C, or Lee's
    constitutional symptoms), hypotension, oxygen requirement, organ toxicity (CTCAE
    grade 2 -> 2, 3 -> 3, 4 -> 4) and transaminitis (grade 4 transaminitis -> 3). No fever
    gate: these systems grade hypotension or hypoxia without fever.
    """
    g1 = d["temperature_c"] >= FEVER_C
    if system == "Lee2014":
        g1 = g1 | (d["constitutional_symptoms"] >= 1)
    organ = d["organ_toxicity_grade"]
    trans = np.minimum(d["transaminitis_grade"], 3)
    g = np.maximum.reduce(
        [g1.astype(float), legacy_hypotension(d, system), legacy_hypoxia(d), organ, trans]
    )
    return np.where(d["crs_death"] >= 1, 5, g).astype(int)


def grade_legacy(values: Mapping[str, float], system: str) -> Grade:
    """Lee 2014 or CARTOX CRS grade with reasons."""
    check_crs_consistency(values)
    fills = _legacy_fills(system)
    vals = dict(values)
    if vals.get("oxygen", math.nan) == OX["none"]:
        fio2 = vals.get("fio2", math.nan)
        if fio2 > 0.21:
            raise GradingInputError("fio2", fio2, "0.21 (room air) when oxygen = none")
        vals["fio2"] = 0.21
    data = imply(single(vals, fills))
    vals.update(_scalar(data))
    b = bound(lambda d: legacy_kernel(d, system), data, fills)
    src = LEE2014_SOURCE if system == "Lee2014" else CARTOX_SOURCE
    reasons: list[str] = []
    temp = vals.get("temperature_c", math.nan)
    if not math.isnan(temp):
        reasons.append(
            f"temperature {fmt(temp)} °C" + (" >= 38.0: grade 1 symptom" if temp >= FEVER_C else "")
        )
    hyp_keys = (
        "hypotension",
        "vasopressors",
        "vasopressin",
        "vasopressor_high_dose",
        "hypotension_life_threatening",
    )
    reasons.append(
        _hypotension_text(vals)
        + " -> hypotension "
        + _domain(
            lambda d: legacy_hypotension(d, system),
            vals,
            {k: fills[k] for k in hyp_keys if k in fills},
        )
    )
    fio2 = vals.get("fio2", math.nan)
    ox = _hypoxia_text(vals) + (f", FiO2 {fmt(fio2)}" if known(vals, "fio2") else "")
    reasons.append(
        ox
        + " -> oxygen requirement "
        + _domain(legacy_hypoxia, vals, {k: fills[k] for k in ("oxygen", "fio2")})
    )
    for key, what in (
        ("organ_toxicity_grade", "organ toxicity"),
        ("transaminitis_grade", "transaminitis"),
    ):
        if known(vals, key):
            reasons.append(f"{what} CTCAE grade {fmt(vals[key])}")
    reasons.append(
        "grade = the most severe symptom (no fever requirement; organ toxicity "
        "counts, grade 4 transaminitis -> grade 3)"
    )
    if vals.get("crs_death", math.nan) == 1:
        reasons.append("death due to CRS -> grade 5")
    reasons.append(f"source: {src}")
    return grade_from_bounds(system, b, reasons)
