"""Graft-versus-host disease: acute GVHD organ staging and overall grade (MAGIC 2016 and
the 1994 Keystone consensus) and chronic GVHD global severity (NIH 2014).

Sources:
* MAGIC: Harris AC et al., Biol Blood Marrow Transplant 2016;22:4-10, Table 1 (organ
  stages, with footnotes: adult stool volumes above 50 kg, 3-day averages, no liver
  downgrade for other causes) and Table 2 (overall clinical grade).
* Keystone: Przepiorka D et al., Bone Marrow Transplant 1995;15:825-828, Table 1
  (stages; downgrade one stage for a documented other cause of hyperbilirubinaemia or
  diarrhoea) and Table 2 (grade; gut stage 4 is grade III, not IV).
* NIH 2014: Jagasia MH et al., Biol Blood Marrow Transplant 2015;21:389-401, global
  severity (mild / moderate / severe).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from cartrial.cohort.vocab import GRADING_SYSTEMS, canonical
from cartrial.grading.core import (
    Bounds,
    Fill,
    Grade,
    GradingInputError,
    bound,
    fmt,
    grade_from_bounds,
    parse_observations,
    single,
)

MAGIC_SOURCE = "Harris AC et al., Biol Blood Marrow Transplant 2016;22:4-10, Tables 1-2"
KEYSTONE_SOURCE = "Przepiorka D et al., Bone Marrow Transplant 1995;15:825-828, Tables 1-2"
NIH_SOURCE = "Jagasia MH et al., Biol Blood Marrow Transplant 2015;21:389-401 (global severity)"
ROMAN = {0: "0", 1: "I", 2: "II", 3: "III", 4: "IV"}
ADULT_WEIGHT_KG = 50.0  # MAGIC Table 1 footnote: adult stool volumes for patients > 50 kg

ORGANS = ("skin", "liver", "upper_gi", "lower_gi")
FILLS: dict[str, Fill] = {
    "skin_bsa_pct": Fill(0, 100),
    "bullae": Fill(0, 1),
    "bilirubin_mg_dl": Fill(0.5, 30),
    "upper_gi": Fill(0, 1),
    "stool_ml_day": Fill(math.nan, None),  # preferred measure; else episodes are used
    "stool_episodes": Fill(0, 60),
    "severe_abdominal_pain": Fill(0, 1),
    "bloody_stool": Fill(0, 1),
    "liver_other_cause": Fill(math.nan, None),  # Keystone only: documented other cause
    "diarrhea_other_cause": Fill(math.nan, None),
}
ORGAN_FIELDS = {
    "skin": ("skin_bsa_pct", "bullae"),
    "liver": ("bilirubin_mg_dl", "liver_other_cause"),
    "upper_gi": ("upper_gi",),
    "lower_gi": (
        "stool_ml_day",
        "stool_episodes",
        "severe_abdominal_pain",
        "bloody_stool",
        "diarrhea_other_cause",
    ),
}
LABELS = {"stool_episodes": ("stool_ml_day", "stool_episodes")}


def skin_stage(d: Mapping[str, np.ndarray]) -> np.ndarray:
    """Skin (active erythema, % BSA): < 25 % = 1; 25-50 % = 2; > 50 % = 3; generalised
    erythroderma (> 50 %) with bullous formation and desquamation > 5 % = 4."""
    bsa = d["skin_bsa_pct"]
    return np.select(
        [(bsa > 50) & (d["bullae"] >= 1), bsa > 50, bsa >= 25, bsa > 0], [4, 3, 2, 1], 0
    )


def liver_stage(d: Mapping[str, np.ndarray], system: str = "MAGIC") -> np.ndarray:
    """Liver (total bilirubin mg/dL): < 2 = 0; 2-3 = 1; 3.1-6 = 2; 6.1-15 = 3; > 15 = 4.
    Keystone only: one stage lower when another cause is documented (MAGIC never)."""
    b = d["bilirubin_mg_dl"]
    s = np.select([b > 15, b > 6, b > 3, b >= 2], [4, 3, 2, 1], 0)
    if system == "Keystone1994":
        s = np.where(d["liver_other_cause"] >= 1, np.maximum(s - 1, 0), s)
    return s


def upper_gi_stage(d: Mapping[str, np.ndarray]) -> np.ndarray:
    """Upper GI: persistent nausea, vomiting or anorexia = 1 (MAGIC)."""
    return np.where(d["upper_gi"] >= 1, 1, 0)


def lower_gi_stage(d: Mapping[str, np.ndarray], system: str = "MAGIC") -> np.ndarray:
    """Lower GI (MAGIC Table 1). Adults (> 50 kg): < 500 mL/day = 0, 500-999 = 1,
    1000-1500 = 2, > 1500 = 3, or < 3 / 3-4 / 5-7 / > 7 episodes. Children (<= 50 kg):
    < 10 / 10-19.9 / 20-30 / > 30 mL/kg/day, or < 4 / 4-6 / 7-10 / > 10 episodes.
    Stage 4: severe abdominal pain with or without ileus, or grossly bloody stool.
    The volume is used when measured; episodes only when it is not.

    Keystone (Przepiorka 1995 Table 1): diarrhoea > 500 / > 1000 / > 1500 mL/day, stage 4 =
    severe abdominal pain (bloody stool is not a criterion); children: MAGIC's mL/kg
    thresholds (the Keystone table gives only adult volumes); episodes are not used;
    one stage lower for a documented other cause of diarrhoea.
    """
    vol, w = d["stool_ml_day"], d["weight_kg"]
    adult = w > ADULT_WEIGHT_KG
    per_kg = vol / w
    child_v = np.select([per_kg > 30, per_kg >= 20, per_kg >= 10], [3, 2, 1], 0)
    if system == "Keystone1994":
        adult_v = np.select([vol > 1500, vol > 1000, vol > 500], [3, 2, 1], 0)
        s = np.where(adult, adult_v, child_v)
        s = np.where(np.isnan(vol), 0, s)
        s = np.where(d["severe_abdominal_pain"] >= 1, 4, s)
        return np.where(d["diarrhea_other_cause"] >= 1, np.maximum(s - 1, 0), s)
    adult_v = np.select([vol > 1500, vol >= 1000, vol >= 500], [3, 2, 1], 0)
    ep = d["stool_episodes"]
    adult_e = np.select([ep > 7, ep >= 5, ep >= 3], [3, 2, 1], 0)
    child_e = np.select([ep > 10, ep >= 7, ep >= 4], [3, 2, 1], 0)
    s = np.where(
        np.isnan(vol), np.where(adult, adult_e, child_e), np.where(adult, adult_v, child_v)
    )
    return np.where((d["severe_abdominal_pain"] >= 1) | (d["bloody_stool"] >= 1), 4, s)


def magic_overall(skin, liver, ugi, lgi) -> np.ndarray:
    """MAGIC overall grade (Harris 2016 Table 2): I = skin 1-2 only; II = skin 3 and/or
    liver 1 and/or upper GI 1 and/or lower GI 1; III = liver 2-3 and/or lower GI 2-3;
    IV = skin, liver or lower GI stage 4."""
    return np.select(
        [
            (skin == 4) | (liver == 4) | (lgi == 4),
            (liver >= 2) | (lgi >= 2),
            (skin == 3) | (liver == 1) | (ugi == 1) | (lgi == 1),
            skin >= 1,
        ],
        [4, 3, 2, 1],
        0,
    )


def keystone_overall(skin, liver, gut) -> np.ndarray:
    """Keystone overall grade (Przepiorka 1995 Table 2): I = skin 1-2, no liver or gut;
    II = skin 3 or liver 1 or gut 1; III = liver 2-3 or gut 2-4; IV = skin 4 or liver 4."""
    return np.select(
        [
            (skin == 4) | (liver == 4),
            (liver >= 2) | (gut >= 2),
            (skin == 3) | (liver == 1) | (gut == 1),
            skin >= 1,
        ],
        [4, 3, 2, 1],
        0,
    )


def organ_stages(d: Mapping[str, np.ndarray], system: str) -> dict[str, np.ndarray]:
    stages = {
        "skin": skin_stage(d),
        "liver": liver_stage(d, system),
        "upper_gi": upper_gi_stage(d),
        "lower_gi": lower_gi_stage(d, system),
    }
    if system == "Keystone1994":
        # Keystone folds persistent nausea (with histology) into gut stage 1
        stages["lower_gi"] = np.maximum(stages["lower_gi"], stages["upper_gi"])
    return stages


def agvhd_kernel(d: Mapping[str, np.ndarray], system: str = "MAGIC") -> np.ndarray:
    """Overall acute GVHD grade (0-4) of complete observations."""
    s = organ_stages(d, system)
    if system == "Keystone1994":
        return keystone_overall(s["skin"], s["liver"], s["lower_gi"])
    return magic_overall(s["skin"], s["liver"], s["upper_gi"], s["lower_gi"])


def _fills(system: str) -> dict[str, Fill]:
    fills = dict(FILLS)
    if system == "Keystone1994":
        fills.pop("bloody_stool")
        fills["stool_episodes"] = Fill(math.nan, None)
        fills["stool_ml_day"] = Fill(0, 20000)
    return fills


def bound_agvhd(data: Mapping[str, np.ndarray], system: str, kernel=None) -> tuple[Bounds, bool]:
    """Bound ``kernel`` (default: overall grade) over unknowns, with unknown weight
    resolved by grading as an adult (> 50 kg) and as a small child and taking the
    envelope. Returns the bounds and whether the weight mattered (for row 0 only
    callers; vector callers get the per-row flag in ``missing['weight_kg']``)."""
    kernel = kernel or (lambda d: agvhd_kernel(d, system))
    fills = _fills(system)
    w = np.asarray(
        data.get("weight_kg", np.full(len(next(iter(data.values()))), np.nan)), dtype=float
    )
    unknown_w = np.isnan(w)
    if not unknown_w.any():
        return bound(kernel, {**data, "weight_kg": w}, fills), False
    adult = bound(kernel, {**data, "weight_kg": np.where(unknown_w, 70.0, w)}, fills)
    child = bound(kernel, {**data, "weight_kg": np.where(unknown_w, 1.0, w)}, fills)
    lo = np.minimum(adult.lo, child.lo)
    hi = np.maximum(adult.hi, child.hi)
    missing: dict[str, np.ndarray] = {}
    for f in dict.fromkeys([*adult.missing, *child.missing]):  # ordered, not hash order
        z = np.zeros(len(w), dtype=bool)
        missing[f] = adult.missing.get(f, z) | child.missing.get(f, z)
    differs = unknown_w & ((adult.lo != child.lo) | (adult.hi != child.hi))
    if differs.any():
        missing["weight_kg"] = differs
    return Bounds(lo, hi, missing, adult.observed), bool(differs[0])


def stage_agvhd(
    obs: Mapping[str, Any] | None = None, system: str = "MAGIC", **kwargs: Any
) -> dict[str, int | None]:
    """Organ stages (lower bounds; None where nothing about the organ was observed)."""

    values = parse_observations(obs, **kwargs)
    return {k: v["stage"] for k, v in _organ_detail(values, _system(system)).items()}


def _system(system: str) -> str:

    name = canonical(system, GRADING_SYSTEMS)
    if name not in ("MAGIC", "Keystone1994"):
        raise GradingInputError("system", system, "MAGIC or Keystone1994 for acute GVHD")
    return name


def _organ_detail(values: Mapping[str, float], system: str) -> dict[str, dict[str, Any]]:
    data = single(values, [*FILLS, "weight_kg"])
    out = {}
    for organ in ORGANS:

        def kern(d, organ=organ):
            return organ_stages(d, system)[organ]

        b, _ = bound_agvhd(data, system, kern)
        fields = ORGAN_FIELDS[organ]
        seen = any(not math.isnan(values.get(f, math.nan)) for f in fields)
        if system == "Keystone1994" and organ == "lower_gi":
            seen = seen or not math.isnan(values.get("upper_gi", math.nan))
        out[organ] = {
            "stage": int(b.lo[0]) if seen else None,
            "stage_max": int(b.hi[0]),
            "missing": b.missing_at(0),
        }
    return out


def grade_agvhd_values(values: Mapping[str, float], system: str = "MAGIC") -> Grade:
    """Acute GVHD overall grade with organ stages in the reasons and ``details``."""
    system = _system(system)
    data = single(values, [*FILLS, "weight_kg"])
    b, _ = bound_agvhd(data, system)
    organs = _organ_detail(values, system)
    reasons: list[str] = []
    for organ, info in organs.items():
        txt = _organ_text(organ, values, system)
        st = info["stage"]
        if st is None:
            reasons.append(f"{organ}: not assessed")
        elif info["stage_max"] > st:
            reasons.append(f"{organ}: {txt} -> stage {st} (up to {info['stage_max']})")
        else:
            reasons.append(f"{organ}: {txt} -> stage {st}")
    if system == "MAGIC":
        reasons.append(
            "overall grade (MAGIC): IV = skin, liver or lower GI stage 4; III = liver "
            "or lower GI stage 2-3; II = skin 3 or liver/upper GI/lower GI stage 1; "
            "I = skin 1-2 only"
        )
        src = MAGIC_SOURCE
    else:
        reasons.append(
            "overall grade (Keystone 1994): IV = skin or liver stage 4; III = liver "
            "2-3 or gut 2-4; II = skin 3 or liver 1 or gut 1; I = skin 1-2 only"
        )
        src = KEYSTONE_SOURCE
    reasons.append(f"source: {src}")
    details = (
        ("stages", {k: v["stage"] for k, v in organs.items()}),
        ("stages_max", {k: v["stage_max"] for k, v in organs.items()}),
    )
    g = grade_from_bounds(system, b, reasons, details=details, labels=LABELS)
    label = None if g.grade is None else ROMAN[g.grade]
    return Grade(g.system, g.grade, g.reasons, g.missing, g.grade_max, label, g.details)


def _organ_text(organ: str, v: Mapping[str, float], system: str) -> str:
    def val(k):
        return v.get(k, math.nan)

    if organ == "skin":
        parts = []
        if not math.isnan(val("skin_bsa_pct")):
            parts.append(f"active erythema {fmt(val('skin_bsa_pct'))}% BSA")
        if val("bullae") == 1:
            parts.append("bullae/desquamation")
        return ", ".join(parts) or "rash extent not given"
    if organ == "liver":
        txt = (
            f"bilirubin {fmt(val('bilirubin_mg_dl'))} mg/dL"
            if not math.isnan(val("bilirubin_mg_dl"))
            else "bilirubin not given"
        )
        if val("liver_other_cause") == 1:
            txt += (
                ", other cause documented (downgraded one stage)"
                if system == "Keystone1994"
                else ", other cause documented (MAGIC does not downgrade)"
            )
        return txt
    if organ == "upper_gi":
        u = val("upper_gi")
        return (
            "not recorded"
            if math.isnan(u)
            else "persistent nausea/vomiting/anorexia"
            if u == 1
            else "no persistent symptoms"
        )
    parts = []
    w = val("weight_kg")
    if not math.isnan(val("stool_ml_day")):
        per = (
            ""
            if math.isnan(w) or w > ADULT_WEIGHT_KG
            else f" = {fmt(round(val('stool_ml_day') / w, 2))} mL/kg/day (child thresholds, <= 50 kg)"
        )
        parts.append(f"stool {fmt(val('stool_ml_day'))} mL/day{per}")
    elif not math.isnan(val("stool_episodes")) and system == "MAGIC":
        parts.append(f"{fmt(val('stool_episodes'))} stool episodes/day")
    if val("severe_abdominal_pain") == 1:
        parts.append("severe abdominal pain")
    if val("bloody_stool") == 1:
        parts.append(
            "grossly bloody stool"
            + (" (not a Keystone criterion)" if system == "Keystone1994" else "")
        )
    if system == "Keystone1994" and val("upper_gi") == 1:
        parts.append("persistent nausea (Keystone gut stage 1)")
    if math.isnan(w) and not math.isnan(val("stool_ml_day")):
        parts.append("weight not given (adult thresholds apply above 50 kg)")
    return ", ".join(parts) or "stool output not given"


# -- chronic GVHD, NIH 2014 ------------------------------------------------------------

CGVHD_ORGANS = ("skin", "mouth", "eyes", "gi", "liver", "lungs", "joints_fascia", "genital")
CGVHD_ALIASES = {
    "oral": "mouth",
    "eye": "eyes",
    "gi_tract": "gi",
    "gut": "gi",
    "lung": "lungs",
    "joints": "joints_fascia",
    "fascia": "joints_fascia",
    "joints_and_fascia": "joints_fascia",
    "genital_tract": "genital",
}
CGVHD_LABELS = {0: "none", 1: "mild", 2: "moderate", 3: "severe"}


def cgvhd_kernel(d: Mapping[str, np.ndarray]) -> np.ndarray:
    """NIH 2014 global severity: 0 none; 1 mild = 1-2 organs with score <= 1 and lung 0;
    2 moderate = >= 3 organs with score <= 1, or any non-lung organ score 2, or lung 1;
    3 severe = any organ score 3, or lung score 2-3."""
    scores = np.stack([d[o] for o in CGVHD_ORGANS])
    lung = d["lungs"]
    nonlung = np.stack([d[o] for o in CGVHD_ORGANS if o != "lungs"])
    involved = (scores >= 1).sum(axis=0)
    severe = (scores.max(axis=0) >= 3) | (lung >= 2)
    moderate = (involved >= 3) | (nonlung.max(axis=0) >= 2) | (lung >= 1)
    return np.select([severe, moderate, involved >= 1], [3, 2, 1], 0)


def grade_cgvhd(organ_scores: Mapping[str, Any]) -> Grade:
    """Chronic GVHD NIH 2014 global severity from organ scores 0-3 (Jagasia 2015).

    ``organ_scores`` maps organ (skin, mouth, eyes, gi, liver, lungs, joints_fascia,
    genital; common aliases accepted) to its NIH score 0-3; an organ not given is
    unknown, not 0. Returns grade 0-3 with label none/mild/moderate/severe.
    """
    values: dict[str, float] = {}
    for raw, score in organ_scores.items():
        organ = CGVHD_ALIASES.get(str(raw).strip().lower(), str(raw).strip().lower())
        if organ not in CGVHD_ORGANS:
            raise GradingInputError(str(raw), score, "an NIH organ: " + ", ".join(CGVHD_ORGANS))
        if score is None or (isinstance(score, float) and math.isnan(score)):
            continue
        if (
            isinstance(score, bool)
            or not isinstance(score, int | float | np.integer | np.floating)
            or not float(score).is_integer()
            or not 0 <= score <= 3
        ):
            raise GradingInputError(organ, score, "an NIH organ score 0, 1, 2 or 3")
        values[organ] = float(score)
    fills = {o: Fill(0, 3) for o in CGVHD_ORGANS}
    b = bound(cgvhd_kernel, single(values, CGVHD_ORGANS), fills)
    reasons = []
    involved = [o for o, s in values.items() if s >= 1]
    reasons.append(
        "organs involved: "
        + (
            ", ".join(f"{o} {int(values[o])}" for o in involved)
            if involved
            else "none among those scored"
        )
    )
    if values.get("lungs", 0) >= 1:
        reasons.append(
            f"lung score {int(values['lungs'])}: lung 1 is at least moderate, lung 2-3 severe"
        )
    reasons.append(
        "NIH 2014: mild = 1-2 organs scored <= 1 with lung 0; moderate = >= 3 organs "
        "scored <= 1, or a non-lung organ scored 2, or lung 1; severe = any score 3 "
        "or lung 2-3"
    )
    reasons.append(f"source: {NIH_SOURCE}")
    g = grade_from_bounds("NIH2014", b, reasons)
    label = None if g.grade is None else CGVHD_LABELS[g.grade]
    return Grade(
        g.system,
        g.grade,
        g.reasons,
        g.missing,
        g.grade_max,
        label,
        (("organ_scores", {o: int(s) for o, s in values.items()}),),
    )
