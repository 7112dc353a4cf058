"""Haematopoietic recovery after SCT (or CAR-T): engraftment, graft failure, chimerism.

Definitions (CIBMTR Forms Instruction Manual, "ANC recovery" and "platelet recovery"):
* Neutrophil engraftment: the first of three consecutive laboratory values obtained on
  different days with ANC >= 0.5 x10^9/L, counted only after the post-transplant nadir
  (the ANC must first have fallen below 0.5).
* Platelet engraftment: the first of three consecutive values on different days with
  platelets >= 20 x10^9/L and no platelet transfusion in the 7 days before that first
  value (the day itself counts as well here: a same-day transfusion can support it).
* Primary graft failure: no neutrophil engraftment by day ``by_day`` after the graft
  (default 30; CIBMTR/EBMT commonly use day 28).
* Donor chimerism: full donor > 95 % (ASTCT) or >= 95 % (CIBMTR manuals): threshold and
  inclusiveness are parameters; mixed below.

Days are days since the graft (or infusion); pass them on the clock you want.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np

from cartrial.grading.core import GradingInputError, fmt

SOURCE = (
    "CIBMTR Forms Instruction Manual (ANC and platelet recovery); ASTCT/CIBMTR donor "
    "chimerism conventions (full donor > 95 % or >= 95 %)"
)


@dataclass(frozen=True)
class Engraftment:
    """``status``: engrafted, not_engrafted (no 3 qualifying values yet) or never_below
    (the count never fell below the threshold, so there is nothing to recover from)."""

    status: str
    day: float | None
    reasons: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"status": self.status, "day": self.day, "reasons": list(self.reasons)}


def _series(name: str, days: Iterable[float], values: Iterable[float]):
    d = np.asarray(list(days) if not isinstance(days, np.ndarray) else days, dtype=float)
    v = np.asarray(list(values) if not isinstance(values, np.ndarray) else values, dtype=float)
    if d.shape != v.shape:
        raise GradingInputError(name, f"{v.size} values", f"one value per day ({d.size} days)")
    keep = ~np.isnan(v)
    d, v = d[keep], v[keep]
    if np.isnan(d).any():
        raise GradingInputError("day", "NaN", f"a day for every {name} value")
    if (v < 0).any():
        raise GradingInputError(name, float(v[v < 0][0]), "a count >= 0 (x10^9/L)")
    # one value per day (the lowest), sorted: "values obtained on different days"
    order = np.lexsort((v, d))
    d, v = d[order], v[order]
    first = np.ones(d.size, dtype=bool)
    first[1:] = d[1:] != d[:-1]
    return d[first], v[first]


def _engraft(
    name: str, days, values, threshold: float, consecutive: int, blocked: np.ndarray | None = None
) -> Engraftment:
    d, v = _series(name, days, values)
    if d.size == 0:
        return Engraftment("not_engrafted", None, (f"no {name} values", f"source: {SOURCE}"))
    below = np.flatnonzero(v < threshold)
    if below.size == 0:
        return Engraftment(
            "never_below",
            None,
            (
                f"{name} never fell below {fmt(threshold)} x10^9/L: no nadir to recover from",
                f"source: {SOURCE}",
            ),
        )
    start = int(below[0])
    ok = v >= threshold
    ok[:start] = False
    blocked_first = blocked if blocked is not None else np.zeros(d.size, dtype=bool)
    win_ok = np.zeros(d.size, dtype=bool)
    if d.size >= consecutive:
        runs = np.lib.stride_tricks.sliding_window_view(ok, consecutive).all(axis=1)
        win_ok[: runs.size] = runs & ~blocked_first[: runs.size]
    idx = np.flatnonzero(win_ok)
    if idx.size == 0:
        why = f"no {consecutive} consecutive values >= {fmt(threshold)} after the nadir"
        if blocked is not None and blocked.any():
            why += " without a transfusion in the preceding 7 days"
        return Engraftment("not_engrafted", None, (why, f"source: {SOURCE}"))
    i = int(idx[0])
    return Engraftment(
        "engrafted",
        float(d[i]),
        (
            f"first of {consecutive} consecutive values on different days >= {fmt(threshold)} "
            f"x10^9/L: day {fmt(d[i])} ({', '.join(fmt(x) for x in v[i : i + consecutive])})",
            f"source: {SOURCE}",
        ),
    )


def neutrophil_engraftment(days, anc, threshold: float = 0.5, consecutive: int = 3) -> Engraftment:
    """Neutrophil engraftment day (first of 3 consecutive values >= 0.5 x10^9/L)."""
    return _engraft("anc", days, anc, threshold, consecutive)


def platelet_engraftment(
    days,
    platelets,
    transfusion_days: Iterable[float] = (),
    threshold: float = 20.0,
    consecutive: int = 3,
    transfusion_free_days: int = 7,
) -> Engraftment:
    """Platelet engraftment day (first of 3 consecutive values >= 20 x10^9/L with no
    platelet transfusion from ``transfusion_free_days`` days before through the day of
    the first value)."""
    d, _ = _series("platelets", days, platelets)
    t = np.asarray(list(transfusion_days), dtype=float)
    if t.size and np.isnan(t).any():
        raise GradingInputError("transfusion_days", "NaN", "a day for every transfusion")
    blocked = np.zeros(d.size, dtype=bool)
    for td in t:
        blocked |= (td >= d - transfusion_free_days) & (td <= d)
    return _engraft("platelets", days, platelets, threshold, consecutive, blocked)


def primary_graft_failure(days, anc, by_day: float = 30.0, threshold: float = 0.5) -> bool | None:
    """True: no neutrophil engraftment by ``by_day`` with follow-up to it; False:
    engrafted by then (or never aplastic); None: follow-up ends before ``by_day``."""
    e = neutrophil_engraftment(days, anc, threshold)
    if e.status == "never_below":
        return False
    if e.status == "engrafted" and e.day is not None and e.day <= by_day:
        return False
    d, _ = _series("anc", days, anc)
    if d.size and d.max() >= by_day:
        return True
    return None


def chimerism_status(
    donor_pct: float | None, full_threshold: float = 95.0, inclusive: bool = True
) -> str | None:
    """'full' when donor chimerism >= ``full_threshold`` (``inclusive``, CIBMTR) or >
    it (``inclusive=False``, ASTCT), 'mixed' below; None when missing."""
    if donor_pct is None or (isinstance(donor_pct, float) and math.isnan(donor_pct)):
        return None
    if (
        isinstance(donor_pct, bool)
        or not isinstance(donor_pct, int | float | np.number)
        or not 0 <= donor_pct <= 100
    ):
        raise GradingInputError("donor_pct", donor_pct, "a donor chimerism % from 0 to 100")
    full = donor_pct >= full_threshold if inclusive else donor_pct > full_threshold
    return "full" if full else "mixed"
