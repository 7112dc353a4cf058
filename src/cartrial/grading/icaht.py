"""Immune effector cell-associated haematotoxicity (ICAHT), EHA/EBMT consensus grading
(Rejeski K et al., Blood 2023;142:865-877, Table 2 and text).

Early ICAHT (days 0-30), from the duration of neutropenia:
  ANC <= 0.5 x10^9/L for 1-6 days = 1; 7-13 days = 2; >= 14 days = 3; >= 30 days = 4;
  ANC <= 0.1 x10^9/L for >= 7 days = 3; >= 14 days = 4 (the worse of the two rows).
  Days are counted cumulatively in the window; a recovery above the threshold lasting
  fewer than 3 days between two neutropenic stretches is "non-stable" and counted to
  the total (the convention of the ICAHT papers, e.g. the T-ICAHT extension, Blood
  2024, which restates it for N-ICAHT).
Late ICAHT (after day 30), from non-transient neutropenia: ANC <= 1.5 = 1; <= 1.0 = 2;
  <= 0.5 = 3; <= 0.1 = 4, each needing at least ``late_min_tests`` (default 2) counts at
  or below the threshold (a single transient dip is not graded).
Both phases are censored at ``censor_day`` (SCT conditioning, stem-cell boost or
re-infusion): counts on or after it are not used.

Units: counts in x10^9/L or cells/µL (``unit=``); ``unit="auto"`` decides from the
values: any value > 100 means cells/µL (an ANC above 100 x10^9/L is implausible); a
series whose maximum is <= 30 and has a non-integer value is x10^9/L; otherwise the
series is graded both ways and accepted only when the grades agree, else a
``GradingInputError`` asks for the unit. Non-integer counts are fine in either unit
(1234.5 cells/µL is 1.2345 x10^9/L, late grade 1, not 0; 1.2 x10^9/L is not 1.2
cells/µL, so x10^9/L series are not all grade 4 - the two failure modes of a public
calculator).

Days are days since infusion; fractional days are floored to the calendar day, and
several counts on one day use the lowest.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from cartrial.cohort.vocab import UNIT_ALIASES, canonical
from cartrial.grading.core import Grade, GradingInputError, fmt

SOURCE = "Rejeski K et al., Blood 2023;142:865-877 (EHA/EBMT ICAHT grading), Table 2"
SYSTEM = "ICAHT2023"
EARLY_LAST_DAY = 30
NONSTABLE_RECOVERY_DAYS = 3
LATE_THRESHOLDS = ((0.1, 4), (0.5, 3), (1.0, 2), (1.5, 1))
UNITS = {"10^9/L": 1.0, "cells/uL": 1e-3}


@dataclass(frozen=True)
class IcahtResult:
    """Early and late ICAHT grades of one patient's ANC series."""

    early: Grade
    late: Grade
    unit: str

    def to_dict(self) -> dict[str, Any]:
        return {"early": self.early.to_dict(), "late": self.late.to_dict(), "unit": self.unit}


def _canonical_unit(unit: str) -> str:
    if str(unit).lower() == "auto":
        return "auto"

    name = canonical(unit, UNIT_ALIASES)
    if name not in UNITS:
        raise GradingInputError("unit", unit, "10^9/L, cells/uL or auto")
    return name


def _series(days: Any, anc: Any) -> tuple[np.ndarray, np.ndarray]:
    """Accept (days, values), a DataFrame (day + anc/value columns, or a long
    observations table with analyte == 'anc'), a {day: value} mapping, a pandas Series
    indexed by day, or a sequence of (day, value) pairs."""
    if anc is None:
        if isinstance(days, dict):
            d = np.array(list(days.keys()), dtype=float)
            v = np.array(list(days.values()), dtype=float)
            return d, v
        if (
            getattr(days, "columns", None) is None
            and hasattr(days, "index")
            and hasattr(days, "to_numpy")
        ):  # a Series indexed by day
            return np.asarray(days.index, dtype=float), days.to_numpy(dtype=float)
        if (
            isinstance(days, list | tuple)
            and days
            and all(isinstance(p, list | tuple) and len(p) == 2 for p in days)
        ):
            pairs = np.asarray(days, dtype=float)
            return pairs[:, 0], pairs[:, 1]
        cols = getattr(days, "columns", None)
        if cols is None:
            raise GradingInputError(
                "anc_series",
                type(days).__name__,
                "days and values, a DataFrame or a {day: value} mapping",
            )
        df = days
        if "analyte" in cols:
            df = df[df["analyte"].astype(str).str.lower() == "anc"]
        value_col = "anc" if "anc" in cols else "value"
        if "day" not in cols or value_col not in cols:
            raise GradingInputError("anc_series", list(cols), "columns day and anc (or value)")
        return (np.asarray(df["day"], dtype=float), np.asarray(df[value_col], dtype=float))
    d = np.asarray(days, dtype=float).ravel()
    v = np.asarray(anc, dtype=float).ravel()
    if d.shape != v.shape:
        raise GradingInputError("anc", f"{v.size} values", f"one value per day ({d.size} days)")
    return d, v


def _early_counts(
    day_min: dict[int, float], last: int, thr: float, max_gap_days: int = 7
) -> tuple[int, int]:
    """Cumulative neutropenic days in [0, last] (lower and upper bound over unmeasured
    days), counting non-stable recoveries (< 3 days above the threshold) as neutropenic.

    Unmeasured days between two counts on the same side of the threshold take that side
    only across a gap of at most ``max_gap_days`` days (as the published automated
    ICAHT grading interpolates gaps of <= 7 days); longer gaps stay unknown."""
    n = last + 1
    state = np.full(n, np.nan)  # 1 neutropenic, 0 not, NaN unknown
    measured = sorted(d for d in day_min if 0 <= d <= last)
    for d in measured:
        state[d] = 1.0 if day_min[d] <= thr else 0.0
    for a, b in zip(measured, measured[1:], strict=False):
        if 1 < b - a <= max_gap_days + 1 and state[a] == state[b]:
            state[a + 1 : b] = state[a]
    lo = _with_nonstable(np.nan_to_num(state, nan=0.0) == 1)
    hi = _with_nonstable(np.nan_to_num(state, nan=1.0) == 1)
    return lo, hi


def _with_nonstable(neutropenic: np.ndarray) -> int:
    total = int(neutropenic.sum())
    idx = np.flatnonzero(neutropenic)
    if idx.size >= 2:
        gaps = np.diff(idx) - 1
        total += int(gaps[(gaps > 0) & (gaps < NONSTABLE_RECOVERY_DAYS)].sum())
    return total


def early_grade_from_days(days_le_500: int, days_le_100: int) -> int:
    """Rejeski 2023 Table 2, early ICAHT, from the two cumulative durations."""
    g500 = (
        0
        if days_le_500 == 0
        else 1
        if days_le_500 < 7
        else 2
        if days_le_500 < 14
        else 3
        if days_le_500 < 30
        else 4
    )
    g100 = 4 if days_le_100 >= 14 else 3 if days_le_100 >= 7 else 0
    return max(g500, g100)


def late_grade_from_value(value: float) -> int:
    for thr, g in LATE_THRESHOLDS:
        if value <= thr:
            return g
    return 0


def _grade_series(
    days: np.ndarray,
    values: np.ndarray,
    censor_day: float | None,
    late_min_tests: int,
    max_gap_days: int = 7,
) -> tuple[Grade, Grade]:
    day_int = np.floor(days).astype(int)
    keep = np.ones(days.size, dtype=bool)
    if censor_day is not None:
        keep = days < censor_day
    day_int, vals = day_int[keep], values[keep]
    cens_note = (
        []
        if censor_day is None
        else [
            f"censored at day {fmt(censor_day)} (SCT conditioning / re-infusion): later counts not used"
        ]
    )
    # early phase
    last = EARLY_LAST_DAY
    if censor_day is not None:
        last = min(last, math.ceil(censor_day) - 1)
    early_mask = (day_int >= 0) & (day_int <= EARLY_LAST_DAY)
    day_min: dict[int, float] = {}
    for d, v in zip(day_int[early_mask], vals[early_mask], strict=True):
        day_min[int(d)] = min(v, day_min.get(int(d), math.inf))
    if not day_min or last < 0:
        early = Grade(
            SYSTEM,
            None,
            ("no ANC count in days 0-30", *cens_note, f"source: {SOURCE}"),
            ("anc",),
            4,
        )
    else:
        lo5, hi5 = _early_counts(day_min, last, 0.5, max_gap_days)
        lo1, hi1 = _early_counts(day_min, last, 0.1, max_gap_days)
        g_lo = early_grade_from_days(lo5, lo1)
        g_hi = early_grade_from_days(hi5, hi1)
        reasons = [
            f"days 0-{last}: ANC <= 0.5 x10^9/L on {lo5} day(s)"
            + (f" (up to {hi5} counting unmeasured days)" if hi5 > lo5 else ""),
            f"ANC <= 0.1 x10^9/L on {lo1} day(s)" + (f" (up to {hi1})" if hi1 > lo1 else ""),
            "early ICAHT: ANC <= 0.5 for 1-6 d = 1, 7-13 d = 2, >= 14 d = 3, >= 30 d = 4; ANC <= 0.1 "
            "for >= 7 d = 3, >= 14 d = 4 (cumulative; recoveries < 3 days counted)",
            f"days between two counts on the same side of a threshold are counted only "
            f"across gaps of <= {max_gap_days} days; longer gaps are unknown",
            *cens_note,
        ]
        if last < EARLY_LAST_DAY:
            reasons.append(f"early window shortened to day {last} by censoring")
        missing: tuple[str, ...] = ()
        if g_hi > g_lo:
            missing = ("anc",)
            reasons.append(
                f"grade {g_lo} from the measured days; could be up to {g_hi}: "
                "counts missing on some days"
            )
        early = Grade(
            SYSTEM,
            g_lo,
            (*reasons, f"source: {SOURCE}"),
            missing,
            g_hi,
            "early",
            (("days_anc_le_0.5", lo5), ("days_anc_le_0.1", lo1)),
        )
    # late phase
    late_vals = vals[day_int > EARLY_LAST_DAY]
    late_days = day_int[day_int > EARLY_LAST_DAY]
    if late_vals.size == 0:
        late = Grade(
            SYSTEM,
            None,
            ("no ANC count after day 30", *cens_note, f"source: {SOURCE}"),
            ("anc",),
            4,
            "late",
        )
    else:
        order = np.sort(late_vals)
        k = late_min_tests
        g_lo = late_grade_from_value(order[k - 1]) if order.size >= k else 0
        g_nadir = late_grade_from_value(order[0])
        reasons = [
            f"after day 30: nadir {fmt(order[0])} x10^9/L"
            + (
                f", confirmed level {fmt(order[k - 1])} ({k} counts)"
                if order.size >= k
                else f" (fewer than {k} counts)"
            ),
            f"late ICAHT: ANC <= 1.5 = 1, <= 1.0 = 2, <= 0.5 = 3, <= 0.1 = 4, each on at "
            f"least {k} counts (non-transient)",
            *cens_note,
        ]
        missing = ()
        g_hi = g_lo
        if g_nadir > g_lo:
            thr = dict((g, t) for t, g in LATE_THRESHOLDS)[g_nadir]
            last_val = late_vals[np.argmax(late_days)]
            if last_val <= thr:  # still low at the last count: a next count could confirm it
                missing, g_hi = ("anc",), g_nadir
                reasons.append(
                    f"grade {g_lo} confirmed; {g_nadir} if the last low count is "
                    "confirmed by another"
                )
            else:
                reasons.append(f"a transient dip to grade {g_nadir} level was not confirmed")
        late = Grade(
            SYSTEM,
            g_lo,
            (*reasons, f"source: {SOURCE}"),
            missing,
            g_hi,
            "late",
            (("nadir", float(order[0])),),
        )
    return early, late


def grade_icaht(
    days: Any,
    anc: Any = None,
    *,
    unit: str = "auto",
    censor_day: float | None = None,
    late_min_tests: int = 2,
    max_gap_days: int = 7,
) -> IcahtResult:
    """Early and late ICAHT grades (Rejeski 2023) of one patient's ANC series.

    ``days``/``anc``: days since infusion and counts; or a DataFrame (``day`` plus
    ``anc`` or ``value``; a long observations table is filtered to analyte ``anc``); or
    a ``{day: count}`` mapping. Missing counts (NaN) are dropped, never read as 0.
    ``max_gap_days``: the longest run of days without a count that is bridged (default
    7, as published automated ICAHT grading does); a longer gap is unknown, so the early
    grade is a lower bound with ``anc`` missing and ``grade_max`` above it.
    """
    if (
        isinstance(max_gap_days, bool)
        or not isinstance(max_gap_days, int | np.integer)
        or max_gap_days < 0
    ):
        raise GradingInputError("max_gap_days", max_gap_days, "a whole number of days >= 0")
    d, v = _series(days, anc)
    ok = ~np.isnan(v)
    if np.isnan(d[ok]).any():
        i = int(np.flatnonzero(np.isnan(d) & ok)[0])
        raise GradingInputError("day", d[i], "a day number for every count", f"point {i}")
    d, v = d[ok], v[ok]
    if (v < 0).any():
        i = int(np.flatnonzero(v < 0)[0])
        raise GradingInputError("anc", v[i], "a count >= 0", f"day {fmt(d[i])}")
    if late_min_tests < 1:
        raise GradingInputError("late_min_tests", late_min_tests, "an integer >= 1")
    if censor_day is not None and (
        not isinstance(censor_day, int | float) or math.isnan(censor_day)
    ):
        raise GradingInputError("censor_day", censor_day, "a day number or None")
    u = _canonical_unit(unit)
    if u == "auto":
        u, note = _detect_unit(d, v, censor_day, late_min_tests, max_gap_days)
    else:
        note = f"unit {u} as given"
    if u == "10^9/L" and v.size and v.max() > 200:
        raise GradingInputError(
            "anc",
            float(v.max()),
            "counts in x10^9/L (<= 200); this looks like cells/uL: pass unit='cells/uL'",
        )
    early, late = (
        replace(g, reasons=(note, *g.reasons))
        for g in _grade_series(d, v * UNITS[u], censor_day, late_min_tests, max_gap_days)
    )
    return IcahtResult(early, late, u)


def _detect_unit(
    d: np.ndarray, v: np.ndarray, censor_day: float | None, k: int, gap: int = 7
) -> tuple[str, str]:
    if v.size == 0:
        return "10^9/L", "no counts"
    top = float(v.max())
    if top > 100:
        return "cells/uL", f"unit detected: cells/uL (a count of {fmt(top)} > 100)"
    if top <= 30 and bool((v != np.floor(v)).any()):
        return "10^9/L", "unit detected: x10^9/L (non-integer counts, maximum <= 30)"
    a = _grade_series(d, v, censor_day, k, gap)
    b = _grade_series(d, v * UNITS["cells/uL"], censor_day, k, gap)
    same = all(x.grade == y.grade and x.grade_max == y.grade_max for x, y in zip(a, b, strict=True))
    if same:
        return "10^9/L", "unit ambiguous but both readings give the same grades"
    raise GradingInputError(
        "unit",
        "auto",
        "an explicit unit (10^9/L or cells/uL): the counts "
        f"(maximum {fmt(top)}) fit both and the grades differ",
    )
