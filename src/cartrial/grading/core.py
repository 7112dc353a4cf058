"""Shared machinery of the grading engines: the ``Grade`` record, input validation and
the missing-data rule.

Missing-data rule (all engines). An observation that is not given is *unknown*, never
normal. Each engine is written as a kernel that grades *complete* observations; for
incomplete ones we evaluate it twice, once with every unknown item at its most benign
value and once at its most severe value:

* ``Grade.grade`` is the grade established by the known items (the lower bound: the
  grade with every unknown item benign);
* ``Grade.grade_max`` is the highest grade still possible (every unknown item severe);
* ``Grade.missing`` names the unknown items that could raise the grade above
  ``grade`` (checked item by item). ``missing == ()`` means the grade is final;
* ``grade is None`` only when none of the engine's items was observed at all.

This is sound because every engine is monotone: worsening a single observation never
lowers the grade (property-tested in ``tests/grading``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from cartrial.grading import codes


@dataclass(frozen=True)
class Grade:
    """A grade with the reasons that produced it.

    Attributes:
        system: grading system ("ASTCT2019", "MAGIC", "CTCAE5", ...; the names of
            ``cartrial.cohort.vocab.GRADING_SYSTEMS``).
        grade: grade established by the known observations (None: nothing observed).
        reasons: human-readable steps, each naming the rule (and its source) that fired.
        missing: observation names whose unknown value could make the grade higher.
        grade_max: highest grade possible given the unknown observations.
        label: display label where the system has one ("II", "moderate", ...).
        details: extra named results (e.g. aGVHD organ stages), as (name, value) pairs.
    """

    system: str
    grade: int | None
    reasons: tuple[str, ...] = ()
    missing: tuple[str, ...] = ()
    grade_max: int | None = None
    label: str | None = None
    details: tuple[tuple[str, Any], ...] = field(default=())

    @property
    def complete(self) -> bool:
        """True when no unknown observation could change the grade."""
        return not self.missing

    def detail(self, name: str, default: Any = None) -> Any:
        return dict(self.details).get(name, default)

    def to_dict(self) -> dict[str, Any]:
        return {
            "system": self.system,
            "grade": self.grade,
            "reasons": list(self.reasons),
            "missing": list(self.missing),
            "grade_max": self.grade_max,
            "label": self.label,
            "details": dict(self.details),
        }


class GradingInputError(ValueError):
    """An observation that cannot be graded: names the field, the value and what was
    expected (and the row, for table input)."""

    def __init__(self, field: str, value: object, expected: str, where: str | None = None):
        self.field = field
        self.value = value
        self.expected = expected
        self.where = where
        loc = f"{where}: " if where else ""
        super().__init__(f"{loc}observation '{field}' = {value!r}: expected {expected}")


# --------------------------------------------------------------------------------------
# the observation vocabulary: declared once in ``grading.fields``

from cartrial.grading.fields import (  # noqa: E402
    FIELD_ALIASES,
    FIELDS,
    FieldSpec,
    from_canonical,
    resolve_unit,
    split_value_unit,
    suggest_field,
    to_canonical,
)
from cartrial.grading.fields import canonical_field as _registry_field  # noqa: E402

__all__ = ["FIELDS", "FIELD_ALIASES", "FieldSpec"]
_N, _I, _B = "number", "int", "bool"
_TRUE = {"true", "yes", "y", "1", "1.0", "t", "on", "present"}
_FALSE = {"false", "no", "n", "0", "0.0", "f", "off", "none", "absent"}
_MISSING_TEXT = {"", "nan", "na", "n/a", "<na>", "none given", "unknown", "missing", "not done"}


def _is_missing(value: object) -> bool:
    if value is None:
        return True
    if isinstance(value, float) and math.isnan(value):
        return True
    import pandas as pd  # only to recognise pd.NA/NaT (a required dependency)

    if value is pd.NA or value is pd.NaT:
        return True
    return isinstance(value, str) and value.strip().lower() in _MISSING_TEXT


def _fmt_unit(x: float) -> str:
    return f"{x:,.4g}" if abs(x) < 1e4 else f"{x:,.0f}"


def _check_range(
    name: str, number: float, unit: str | None, raw: object, where: str | None
) -> None:
    """Plausible range of the canonical value; a value that only makes sense in another
    unit gets the reading in that unit and the unit to pass (never a grade)."""
    spec = FIELDS[name]
    if spec.lo <= number <= spec.hi:
        if (
            unit is None
            and spec.ambiguous_above is not None
            and spec.hint_unit is not None
            and number > spec.ambiguous_above
        ):
            other = to_canonical(name, number, spec.hint_unit)
            raise GradingInputError(
                name,
                raw,
                f"a unit: {_fmt_unit(number)} could be {_fmt_unit(number)} {spec.unit} or "
                f"{_fmt_unit(number)} {spec.hint_unit} (= {_fmt_unit(other)} {spec.unit}), "
                f"which grade differently; pass unit='{spec.unit}' or unit='{spec.hint_unit}'",
                where,
            )
        return
    hint = ""
    if unit is None and spec.hint_unit is not None:
        other = to_canonical(name, number, spec.hint_unit)
        if spec.lo <= other <= spec.hi:
            seen = from_canonical(name, number, spec.hint_unit)
            hint = (
                f"; as {spec.unit} {_fmt_unit(number)} is {_fmt_unit(seen)} "
                f"{spec.hint_unit} - implausible; as {spec.hint_unit} it is "
                f"{_fmt_unit(other)} {spec.unit}: pass unit='{spec.hint_unit}'"
            )
    shown = f" (= {_fmt_unit(number)} {spec.unit})" if unit not in (None, spec.unit) else ""
    raise GradingInputError(name, raw, spec.expected() + shown + hint, where)


def parse_value(
    name: str, value: object, where: str | None = None, unit: str | None = None
) -> float:
    """Validate one observation and return it as a float in the canonical unit (NaN
    when missing).

    Booleans become 0/1, categories their integer code (``codes``). A number may carry
    its unit as text ("150 cells/uL", "101.3 F") or in ``unit``; it is converted to
    the field's canonical unit (``grading.fields``). Raises ``GradingInputError``
    naming field, value and what was expected (with the likely unit for a value that
    only makes sense in another one).
    """
    spec = FIELDS[name]
    if _is_missing(value):
        return math.nan
    if isinstance(value, np.generic):
        value = value.item()
    if spec.kind == "bool":
        if unit is not None:
            raise GradingInputError(name, unit, "no unit (a yes/no answer)", where)
        if isinstance(value, bool):
            return float(value)
        if isinstance(value, int | float) and value in (0, 1):
            return float(value)
        text = str(value).strip().lower()
        if text in _TRUE:
            return 1.0
        if text in _FALSE:
            return 0.0
        raise GradingInputError(name, value, spec.expected(), where)
    if spec.kind in codes.CATEGORIES:
        try:
            return codes.encode(spec.kind, value)
        except codes.UnknownWord as exc:
            raise GradingInputError(name, value, exc.message, where) from None
    if isinstance(value, bool):
        raise GradingInputError(name, value, spec.expected(), where)
    raw = value
    if isinstance(value, str):
        number_text, text_unit = split_value_unit(value)
        if text_unit is not None:
            if unit is not None and resolve_unit(name, unit) != resolve_unit(name, text_unit):
                raise GradingInputError(name, value, f"one unit (also given unit={unit!r})", where)
            unit = text_unit
        value = number_text
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise GradingInputError(name, raw, spec.expected(), where) from None
    if math.isnan(number):
        return math.nan
    unit_name = None
    if unit is not None:
        unit_name = resolve_unit(name, unit)
        if unit_name is None:
            accepted = ", ".join(spec.accepted_units) or "no unit"
            raise GradingInputError(
                name, raw, f"a unit of {name}: {accepted} (got {unit!r})", where
            )
        number = to_canonical(name, number, unit_name)
    _check_range(name, number, unit_name, raw, where)
    if spec.kind == "int" and not number.is_integer():
        raise GradingInputError(name, raw, spec.expected(), where)
    return number


def canonical_field(name: str) -> str | None:
    """The registry name of ``name`` (aliases, British spellings, any case)."""
    return _registry_field(name)


def unknown_field_error(raw_name: object, value: object) -> GradingInputError:
    """ "did you mean temperature_c?" rather than a list of every field."""
    near = suggest_field(raw_name)
    hint = f"did you mean {near}?" if near else "a known observation name"
    return GradingInputError(
        str(raw_name), value, hint + " (cartrial grade --help lists the observations)"
    )


def parse_observations(
    obs: Mapping[str, Any] | None, units: Mapping[str, str] | None = None, **extra: Any
) -> dict[str, float]:
    """Validate a mapping of observations (plus keyword observations) -> {field: float}.

    Every known field is validated even when the engine does not use it (so a typo in
    a value is never silently ignored); an unknown field name raises with the nearest
    known name ("did you mean temperature_c?"), except the bookkeeping keys ``day`` and
    ``patient_id``. ``units``: field -> unit of its value (converted to the canonical
    unit; see ``grading.fields``).
    """
    merged: dict[str, Any] = dict(obs or {})
    merged.update({k: v for k, v in extra.items() if v is not None})
    unit_of: dict[str, str] = {}
    for raw_name, u in (units or {}).items():
        name = canonical_field(raw_name)
        if name is None:
            raise unknown_field_error(raw_name, u)
        unit_of[name] = u
    out: dict[str, float] = {}
    for raw_name, value in merged.items():
        name = canonical_field(raw_name)
        if name is None:
            if raw_name in ("day", "patient_id"):
                continue
            raise unknown_field_error(raw_name, value)
        parsed = parse_value(name, value, unit=unit_of.get(name))
        if name in out and not math.isnan(out[name]) and out[name] != parsed:
            raise GradingInputError(name, value, f"one value (also given as {out[name]!r})")
        out[name] = parsed
    return out


def parse_column(name: str, values: Any, where: str = "row", units: Any = None) -> np.ndarray:
    """Validate a column (sequence/Series) of observation ``name`` -> float array in
    the canonical unit.

    Numeric columns are checked vectorised; text columns (categories, yes/no words,
    numbers with a unit) go through the same parser. ``units``: an optional column of
    units, one per row (blank = the canonical unit, with the ambiguity check). The error
    names the first bad row.
    """
    spec = FIELDS[name]
    arr = np.asarray(values, dtype=object) if not isinstance(values, np.ndarray) else values
    unit_arr = None
    if units is not None and spec.kind in (_N, _I):  # words and yes/no carry no unit
        unit_arr = np.asarray(units, dtype=object)
        blank = np.array([_is_missing(u) for u in unit_arr], dtype=bool)
        unit_arr = unit_arr.copy()
        unit_arr[blank] = None
        if blank.all():
            unit_arr = None
    if arr.dtype.kind in "fiub" and spec.kind in (_N, _I):
        out = arr.astype(float)
        has_unit = np.zeros(len(out), dtype=bool)
        if unit_arr is not None:
            for u in {u for u in unit_arr if u is not None}:
                m = unit_arr == u
                unit_name = resolve_unit(name, u)
                if unit_name is None:
                    i = int(np.flatnonzero(m)[0])
                    parse_value(name, arr[i], f"{where} {i}", u)  # raises, naming the unit
                out[m] = to_canonical(name, out[m], unit_name)  # type: ignore[arg-type]
                has_unit |= m
        ok = np.isnan(out) | ((out >= spec.lo) & (out <= spec.hi))
        if spec.ambiguous_above is not None and spec.hint_unit is not None:
            ok &= has_unit | np.isnan(out) | (out <= spec.ambiguous_above)
        if spec.kind == _I:
            ok &= np.isnan(out) | (out == np.floor(out))
        if not ok.all():
            i = int(np.flatnonzero(~ok)[0])
            u = None if unit_arr is None else unit_arr[i]
            parse_value(name, arr[i], f"{where} {i}", u)  # raises with the reason
            raise GradingInputError(name, arr[i], spec.expected(), f"{where} {i}")
        return out
    out = np.empty(len(arr), dtype=float)
    cache: dict[Any, float] = {}
    for i, v in enumerate(arr):
        u = None if unit_arr is None else unit_arr[i]
        try:
            key = (type(v), v, u)
            hash(key)
        except TypeError:
            key = None
        if key is not None and key in cache:
            out[i] = cache[key]
            continue
        parsed = parse_value(name, v, f"{where} {i}", u)
        if key is not None:
            cache[key] = parsed
        out[i] = parsed
    return out


# --------------------------------------------------------------------------------------
# the missing-data rule


@dataclass(frozen=True)
class Fill:
    """Values imputed for an unknown observation when bounding a grade.

    ``worst=None`` marks an optional refinement (e.g. oxygen flow): it is left unknown
    and the kernel treats unknown as "not refining", so it is never reported missing.
    """

    benign: float
    worst: float | None


Kernel = Callable[[Mapping[str, np.ndarray]], np.ndarray]
MAX_CORNER_FIELDS = 8


@dataclass(frozen=True)
class Bounds:
    """Vectorised result of ``bound``: lower/upper grade and per-field missing masks."""

    lo: np.ndarray
    hi: np.ndarray
    missing: dict[str, np.ndarray]
    observed: np.ndarray

    def missing_at(self, i: int) -> tuple[str, ...]:
        return tuple(f for f, m in self.missing.items() if m[i])


def bound(
    kernel: Kernel,
    data: Mapping[str, np.ndarray],
    fills: Mapping[str, Fill],
    primary: Iterable[str] | None = None,
) -> Bounds:
    """Bound ``kernel`` over the unknown (NaN) entries of ``data`` (see module doc).

    The kernel is evaluated at every corner (each unknown item benign or severe); the
    grade is the lowest corner, ``grade_max`` the highest, and an unknown item is
    reported missing where flipping it alone from benign to severe raises the grade at
    some corner. With more than ``MAX_CORNER_FIELDS`` unknown items the corners are
    limited to "others all benign" and "others all severe".

    ``primary``: the fields whose observation makes the row "observed" (default: all
    fields in ``fills``); a row with none of them known gets ``observed = False``.
    """
    n = len(next(iter(data.values())))
    arrays = {k: np.asarray(v, dtype=float) for k, v in data.items()}
    for f in fills:
        arrays.setdefault(f, np.full(n, np.nan))
    unknown = {
        f: np.isnan(arrays[f])
        for f, s in fills.items()
        if s.worst is not None and np.isnan(arrays[f]).any()
    }
    names = list(unknown)
    # The kernel is element-wise, so rows with every item known are graded once and
    # only the rows with an unknown item are evaluated at the corners (int8 grades:
    # at registry scale the corner stack is the memory-bandwidth cost).
    any_unknown = np.zeros(n, dtype=bool)
    for m in unknown.values():
        any_unknown |= m
    lo = np.zeros(n, dtype=np.int8)
    hi = np.zeros(n, dtype=np.int8)
    complete = ~any_unknown
    if complete.all():
        lo[:] = np.asarray(kernel(arrays)).astype(np.int8)
        hi[:] = lo
    elif complete.any():
        g = np.asarray(kernel({k: v[complete] for k, v in arrays.items()})).astype(np.int8)
        lo[complete] = g
        hi[complete] = g
    rows = np.flatnonzero(any_unknown)
    sub = {k: v[rows] for k, v in arrays.items()} if len(rows) else {}
    unknown_sub = {f: unknown[f][rows] for f in names}
    benign_v = {f: np.where(unknown_sub[f], fills[f].benign, sub[f]) for f in names}
    worst_v = {f: np.where(unknown_sub[f], float(fills[f].worst or 0.0), sub[f]) for f in names}

    def at(corner: int) -> np.ndarray:
        d = dict(sub)
        for j, f in enumerate(names):
            d[f] = worst_v[f] if corner >> j & 1 else benign_v[f]
        return np.asarray(kernel(d)).astype(np.int8)

    k = len(names)
    corners: list[int]
    if k <= MAX_CORNER_FIELDS:
        corners = list(range(2**k))
    else:  # all benign, all worst, and each field alone flipped from either end
        full = 2**k - 1
        corners = sorted(
            {0, full, *(1 << j for j in range(k)), *(full ^ (1 << j) for j in range(k))}
        )
    missing: dict[str, np.ndarray] = {}
    if len(rows):
        grades = {c: at(c) for c in corners}
        sub_lo = grades[corners[0]].copy()
        sub_hi = sub_lo.copy()
        for g in grades.values():
            np.minimum(sub_lo, g, out=sub_lo)
            np.maximum(sub_hi, g, out=sub_hi)
        lo[rows] = sub_lo
        hi[rows] = sub_hi
        for j, f in enumerate(names):
            bit = 1 << j
            flag = np.zeros(len(rows), dtype=bool)
            for c, g in grades.items():
                if not c & bit and (c | bit) in grades:
                    flag |= grades[c | bit] > g
            flag &= unknown_sub[f]
            if flag.any():
                full_flag = np.zeros(n, dtype=bool)
                full_flag[rows] = flag
                missing[f] = full_flag
    lo = lo.astype(int)
    hi = hi.astype(int)
    orphan = hi > lo
    for m in missing.values():
        orphan &= ~m
    if orphan.any():
        for f in names:
            missing[f] = missing.get(f, np.zeros(n, dtype=bool)) | (orphan & unknown[f])
    observed = np.zeros(n, dtype=bool)
    for f in fills if primary is None else primary:
        if f in arrays:
            observed |= ~np.isnan(arrays[f])
    return Bounds(lo, hi, missing, observed)


def single(values: Mapping[str, float], names: Iterable[str]) -> dict[str, np.ndarray]:
    """One observation as length-1 arrays (NaN for absent fields)."""
    return {n: np.array([values.get(n, math.nan)], dtype=float) for n in names}


def known(values: Mapping[str, float], name: str) -> bool:
    v = values.get(name, math.nan)
    return not math.isnan(v)


def fmt(x: float) -> str:
    """Format a number for a reason string (no trailing .0)."""
    return f"{x:g}"


def grade_from_bounds(
    system: str,
    b: Bounds,
    reasons: list[str],
    *,
    label: str | None = None,
    details: tuple[tuple[str, Any], ...] = (),
    labels: Mapping[str, tuple[str, ...]] | None = None,
) -> Grade:
    """Assemble the scalar ``Grade`` from a length-1 ``Bounds`` and the reasons."""
    lo, hi = int(b.lo[0]), int(b.hi[0])
    names: list[str] = []
    for f in b.missing_at(0):
        for label_name in (labels or {}).get(f, (f,)):
            if label_name not in names:
                names.append(label_name)
    if not b.observed[0]:
        reasons = [*reasons, "no observation for this criterion set was given: grade unknown"]
        return Grade(system, None, tuple(reasons), tuple(names), hi, None, details)
    if names:
        reasons = [
            *reasons,
            f"grade {lo} from the known observations; could be up to {hi} "
            f"depending on: {', '.join(names)}",
        ]
    return Grade(system, lo, tuple(reasons), tuple(names), hi, label, details)
