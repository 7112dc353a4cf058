"""Shared pieces of the decision-support rules: the ``Advice`` record, input checks and
the protocol sources (see ``cartrial.decision``)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from cartrial.grading.core import GradingInputError

PATHWAY = "CD7 CAR-T trial protocols (Tan 2023; Hu 2024; Pan 2023; Zhang 2023)"
MANAGEMENT_SOURCES = (
    "Neelapu SS et al., Nat Rev Clin Oncol 2018;15:47 (CARTOX); Santomasso "
    "BD et al., J Clin Oncol 2021;39:3978 (ASCO); practice reported by the "
    "CD7 CAR-T trials"
)


@dataclass(frozen=True)
class Advice:
    """A reference-only decision-support output: the rule, its source, the result."""

    rule: str
    source: str
    result: Any
    reasons: tuple[str, ...]
    missing: tuple[str, ...] = ()
    reference_only: bool = True

    def to_dict(self) -> dict[str, Any]:
        return {
            "rule": self.rule,
            "source": self.source,
            "result": self.result,
            "reasons": list(self.reasons),
            "missing": list(self.missing),
            "reference_only": self.reference_only,
        }


def _num(name: str, v: Any, lo: float, hi: float, required: bool = True) -> float:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        if required:
            raise GradingInputError(name, v, f"a number from {lo:g} to {hi:g}")
        return math.nan
    if isinstance(v, bool) or not isinstance(v, int | float):
        raise GradingInputError(name, v, f"a number from {lo:g} to {hi:g}")
    if not lo <= v <= hi:
        raise GradingInputError(name, v, f"a number from {lo:g} to {hi:g}")
    return float(v)


def _opt_bool(name: str, v: Any) -> bool | None:
    if v is None:
        return None
    if not isinstance(v, bool):
        raise GradingInputError(name, v, "True, False or None")
    return v


def _checklist(rule: str, source: str, checks: list[tuple[str, bool | None, str]]) -> Advice:
    """Advice from a list of (item, met, text) checks: False when any item is not met,
    None when none failed but some are unknown (those are ``missing``), else True."""
    reasons = tuple(
        f"{'met' if ok else 'NOT met' if ok is False else 'unknown'}: {txt}"
        for _, ok, txt in checks
    )
    missing = tuple(n for n, ok, _ in checks if ok is None)
    failed = any(ok is False for _, ok, _ in checks)
    result = False if failed else (None if missing else True)
    return Advice(rule, source, result, reasons, () if failed else missing)
