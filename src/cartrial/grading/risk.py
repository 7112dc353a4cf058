"""Pre-infusion risk scores per patient, from a cohort's observations: CAR-HEMATOTOX and
EASIX / m-EASIX. Usable as covariates (one row per ``patient_id``).

CAR-HEMATOTOX (Rejeski K et al., Blood 2021;138:2499-2513, PMC8893508): five markers of
haematopoietic reserve and baseline inflammation taken before lymphodepleting
chemotherapy, with the platelet count and ferritin weighted double; score 0-7, low risk
0-1, high risk >= 2 (validated in large B-cell lymphoma with axi-cel / tisa-cel). Points
(``HEMATOTOX_POINTS``):

* ANC > 1200/uL (1.2 x10^9/L): 0; <= 1200: 1
* haemoglobin > 9.0 g/dL: 0; <= 9.0: 1
* platelets > 175,000/uL: 0; 75,000-175,000: 1; < 75,000: 2
* CRP < 3.0 mg/dL (30 mg/L): 0; >= 3.0: 1
* ferritin < 650 ng/mL: 0; 650-2000: 1; > 2000: 2

Verification (search of stored public pages, 2 Dec 2026, twice). Checked against text:
the five markers, the time point (before lymphodepletion), the double weighting of
platelets and ferritin and the low 0-1 / high >= 2 split (Rejeski 2021 abstract,
PMC8893508; the European MCL Network's CAR-HEMATOTOX page; de Boer et al., Blood Adv
2025 and the BCMA study, J Hematol Oncol 2023, which computed it the same way). NOT
checked against text: the point cut-offs above, which the paper gives in its score-card
figure (not held as text; two public code reimplementations found in the store use
other, mutually inconsistent cut-offs and were not followed). The cut-offs are those of
issue 11 (the reviewers' reading of the figure) and stay a named table
(``HEMATOTOX_POINTS``). Boundaries: the 0-point band is the one printed with a strict
inequality (ANC > 1200, Hb > 9.0, platelets > 175,000, CRP < 3.0, ferritin < 650), so a
value exactly at a cut-off scores the point (ANC 1.2 and Hb 9.0 score 1, CRP 3.0 scores
1, platelets 175 and 75 score 1, ferritin 650 and 2000 score 1).

EASIX = LDH (U/L) x creatinine (mg/dL) / platelets (x10^9/L) (Luft T et al., Lancet
Haematol 2017;4:e414-e423); m-EASIX replaces creatinine with CRP (mg/dL) (Pennisi M et
al., Blood Adv 2021;5:3397-3406, PMC8525234). Both formulas, with those units, checked
against the text of the Pennisi 2021 abstract, which also gives its time points
(lymphodepletion, day -1, day +1, day +3); Pennisi analysed log2 values. Both are
returned with their log2, the time point and the day each value came from.

Time points (the rule, stated in every result): ``"pre_ld"`` (default) takes, per
analyte, the latest value from day ``window[0]`` to ``window[1]`` (default -10 to -1, day
0 = infusion), strictly before the patient's lymphodepletion day when one is given
(``ld_day``: a mapping patient -> day; the CD7 CAR-T protocols give lymphodepletion on
days -5 to -3, so ``ld_day={pid: -5}`` keeps strictly pre-lymphodepletion values); an
integer day takes the value of that day.
Missing is missing: a score needing a value that is not there is NaN (EASIX) or a range
(CAR-HEMATOTOX ``score``/``score_max``), never computed with a zero.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from cartrial.grading.core import GradingInputError
from cartrial.grading.episodes import _long_values

HEMATOTOX_SOURCE = (
    "Rejeski K et al., Blood 2021;138:2499-2513 (CAR-HEMATOTOX; low 0-1 / high >= 2; "
    "point cut-offs from the paper's score-card figure as read in issue 11, not checked "
    "against text)"
)
EASIX_SOURCE = (
    "Luft T et al., Lancet Haematol 2017;4:e414-e423 (EASIX = LDH x creatinine / "
    "platelets); Pennisi M et al., Blood Adv 2021;5:3397-3406 (m-EASIX: CRP in mg/dL "
    "instead of creatinine)"
)
#: field -> ((lower, upper, points), ...): a value in [lower, upper) scores the points
HEMATOTOX_POINTS: dict[str, tuple[tuple[float, float, int], ...]] = {
    "anc": ((-math.inf, 1.2 + 1e-9, 1),),
    "hemoglobin_g_dl": ((-math.inf, 9.0 + 1e-9, 1),),
    "platelets": ((-math.inf, 75.0, 2), (75.0, 175.0 + 1e-9, 1)),
    "crp_mg_dl": ((3.0, math.inf, 1),),
    "ferritin_ng_ml": ((650.0, 2000.0 + 1e-9, 1), (2000.0 + 1e-9, math.inf, 2)),
}
HEMATOTOX_MAX = {f: max(p for _, _, p in rows) for f, rows in HEMATOTOX_POINTS.items()}
HIGH_RISK_FROM = 2
DEFAULT_WINDOW = (-10, -1)


def hematotox_points(field: str, value: float) -> int | None:
    """Points of one marker (None when the value is missing)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    for lo, hi, pts in HEMATOTOX_POINTS[field]:
        if lo <= value < hi:
            return pts
    return 0


def hematotox_score(values: Mapping[str, float]) -> dict[str, Any]:
    """CAR-HEMATOTOX of one patient: ``score`` (from the known markers), ``score_max``
    (every missing marker at its worst), ``risk`` (low / high / unknown), the points
    per marker and the ``missing`` markers. CRP in mg/dL (``crp_mg_dl``)."""
    points: dict[str, int | None] = {}
    for field in HEMATOTOX_POINTS:
        v = values.get(field, math.nan)
        points[field] = hematotox_points(field, float(v) if v is not None else math.nan)
    score = sum(p for p in points.values() if p is not None)
    missing = [f for f, p in points.items() if p is None]
    score_max = score + sum(HEMATOTOX_MAX[f] for f in missing)
    if score >= HIGH_RISK_FROM:
        risk = "high"
    elif score_max < HIGH_RISK_FROM:
        risk = "low"
    else:
        risk = "unknown"
    return {
        "score": score,
        "score_max": score_max,
        "risk": risk,
        "missing": ",".join(missing),
        **{f"points_{f}": p for f, p in points.items()},
    }


def easix_value(ldh: float, creatinine_mg_dl: float, platelets: float) -> float:
    """EASIX = LDH (U/L) x creatinine (mg/dL) / platelets (x10^9/L); NaN if any is
    missing or platelets are 0."""
    if any(math.isnan(x) for x in (ldh, creatinine_mg_dl, platelets)) or platelets <= 0:
        return math.nan
    return ldh * creatinine_mg_dl / platelets


# -- from a cohort ---------------------------------------------------------------------

_ANALYTES = {
    "anc": "anc",
    "hemoglobin_g_dl": "hemoglobin_g_dl",
    "platelets": "platelets",
    "crp_mg_l": "crp_mg_l",
    "ferritin_ng_ml": "ferritin_ng_ml",
    "ldh_u_l": "ldh_u_l",
    "creatinine_mg_dl": "creatinine_mg_dl",
}


def _observations(cohort_or_obs):
    obs = getattr(cohort_or_obs, "observations", cohort_or_obs)
    if obs is None or not hasattr(obs, "columns"):
        raise GradingInputError(
            "observations", type(cohort_or_obs).__name__, "a cohort or an observations table"
        )
    return obs


def values_at(
    cohort_or_obs,
    fields: tuple[str, ...],
    time_point: str | int = "pre_ld",
    window: tuple[float, float] = DEFAULT_WINDOW,
    ld_day: Mapping[str, float] | None = None,
):
    """One row per patient: the value (canonical unit) and its day for each field at
    ``time_point`` (see module doc), plus ``rule`` naming the rule used."""
    import pandas as pd

    obs = _observations(cohort_or_obs)
    pids = pd.unique(obs["patient_id"].astype(str)) if "patient_id" in obs.columns else []
    long = _long_values(obs) if len(obs) else None
    if isinstance(time_point, str):
        if time_point != "pre_ld":
            raise GradingInputError("time_point", time_point, "'pre_ld' or a day number")
        lo, hi = window
        if not lo <= hi:
            raise GradingInputError("window", window, "(first day, last day), first <= last")
        rule = (
            f"latest value from day {lo:g} to day {hi:g}"
            + (" and before lymphodepletion" if ld_day else "")
            + " (day 0 = infusion)"
        )
    else:
        if isinstance(time_point, bool) or not isinstance(time_point, int | float):
            raise GradingInputError("time_point", time_point, "'pre_ld' or a day number")
        lo = hi = float(time_point)
        rule = f"value on day {time_point:g} (the worst of the day is not used: the latest)"
    out = pd.DataFrame({"patient_id": pd.Series(pids, dtype="string")})
    for f in fields:
        out[f] = np.nan
        out[f"{f}_day"] = np.nan
    out["rule"] = rule
    if long is None or long.empty:
        return out
    sub = long[long["_field"].isin(fields)]
    day = sub["day"].astype(float)
    keep = (day >= lo) & (day <= hi)
    if ld_day:
        cut = sub["patient_id"].astype(str).map({str(k): float(v) for k, v in ld_day.items()})
        keep &= cut.isna() | (day < cut)
    sub = sub[keep].assign(_d=day[keep]).sort_values(["patient_id", "_field", "_d"])
    last = sub.drop_duplicates(["patient_id", "_field"], keep="last")
    for f in fields:
        m = last[last["_field"] == f]
        vals = dict(zip(m["patient_id"].astype(str), m["_v"], strict=True))
        days = dict(zip(m["patient_id"].astype(str), m["_d"], strict=True))
        out[f] = out["patient_id"].map(vals).astype(float)
        out[f"{f}_day"] = out["patient_id"].map(days).astype(float)
    return out


def car_hematotox(
    cohort_or_obs,
    window: tuple[float, float] = DEFAULT_WINDOW,
    ld_day: Mapping[str, float] | None = None,
):
    """CAR-HEMATOTOX per patient (DataFrame keyed by ``patient_id``): the markers used
    (canonical units, CRP also in mg/dL) and their days, points, ``score``,
    ``score_max``, ``risk`` (low/high/unknown), ``missing`` and the ``rule``."""
    import pandas as pd

    fields = ("anc", "hemoglobin_g_dl", "platelets", "crp_mg_l", "ferritin_ng_ml")
    v = values_at(cohort_or_obs, fields, "pre_ld", window, ld_day)
    v["crp_mg_dl"] = v["crp_mg_l"] / 10.0
    rows = [
        hematotox_score(
            {f: r[f] for f in ("anc", "hemoglobin_g_dl", "platelets", "ferritin_ng_ml")}
            | {"crp_mg_dl": r["crp_mg_dl"]}
        )
        for _, r in v.iterrows()
    ]
    scores = pd.DataFrame(rows, index=v.index)
    out = pd.concat([v, scores], axis=1)
    for col in ("score", "score_max", *(f"points_{f}" for f in HEMATOTOX_POINTS)):
        out[col] = out[col].astype("Int64")
    out["source"] = HEMATOTOX_SOURCE
    return out.set_index("patient_id")


def easix(
    cohort_or_obs,
    time_point: str | int = "pre_ld",
    window: tuple[float, float] = DEFAULT_WINDOW,
    ld_day: Mapping[str, float] | None = None,
):
    """EASIX and m-EASIX per patient (DataFrame keyed by ``patient_id``) with log2, the
    values used (LDH U/L, creatinine mg/dL, CRP mg/dL, platelets x10^9/L), their days,
    the time point and the rule."""
    fields = ("ldh_u_l", "creatinine_mg_dl", "crp_mg_l", "platelets")
    v = values_at(cohort_or_obs, fields, time_point, window, ld_day)
    v["crp_mg_dl"] = v["crp_mg_l"] / 10.0
    plt = v["platelets"].where(v["platelets"] > 0)
    v["easix"] = v["ldh_u_l"] * v["creatinine_mg_dl"] / plt
    v["m_easix"] = v["ldh_u_l"] * v["crp_mg_dl"] / plt
    with np.errstate(divide="ignore", invalid="ignore"):
        v["log2_easix"] = np.log2(v["easix"].where(v["easix"] > 0))
        v["log2_m_easix"] = np.log2(v["m_easix"].where(v["m_easix"] > 0))
    v["time_point"] = str(time_point)
    v["units"] = "LDH U/L; creatinine mg/dL; CRP mg/dL; platelets 10^9/L"
    v["source"] = EASIX_SOURCE
    return v.set_index("patient_id")


def risk_by_group(scores, patients, by: str):
    """Per group of ``patients[by]``: patients, CAR-HEMATOTOX high/low/unknown counts
    (when ``scores`` has ``risk``) and median EASIX/m-EASIX (when present)."""
    import pandas as pd

    if by not in patients.columns:
        raise GradingInputError("by", by, "a column of the patients table")
    group = patients.drop_duplicates("patient_id").set_index(
        patients.drop_duplicates("patient_id")["patient_id"].astype(str)
    )[by]
    df = scores.join(group.rename("_group"), how="left")
    df["_group"] = df["_group"].astype("string").fillna("(missing)")
    rows = []
    for name, g in df.groupby("_group", sort=True):
        row: dict[str, Any] = {by: name, "patients": len(g)}
        if "risk" in g.columns:
            for level in ("high", "low", "unknown"):
                row[f"hematotox_{level}"] = int((g["risk"] == level).sum())
        for col in ("easix", "m_easix"):
            if col in g.columns:
                row[f"median_{col}"] = float(g[col].median()) if g[col].notna().any() else None
        rows.append(row)
    return pd.DataFrame(rows)
