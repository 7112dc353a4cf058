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
# the observation vocabulary


@dataclass(frozen=True)
class FieldSpec:
    """How one observation is validated. ``kind``: number, int, bool or a category name."""

    kind: str
    lo: float = -math.inf
    hi: float = math.inf
    unit: str = ""
    help: str = ""

    def expected(self) -> str:
        if self.kind == "bool":
            return "yes/no (true/false, 1/0)"
        if self.kind in codes.CATEGORIES:
            return "one of " + codes.describe(self.kind)
        what = "a whole number" if self.kind == "int" else "a number"
        unit = f" {self.unit}" if self.unit else ""
        if math.isinf(self.hi):
            return f"{what} >= {self.lo:g}{unit}"
        return f"{what} from {self.lo:g} to {self.hi:g}{unit}"


_N, _I, _B = "number", "int", "bool"
FIELDS: dict[str, FieldSpec] = {
    # CRS
    "temperature_c": FieldSpec(_N, 25, 45, "°C", "highest body temperature"),
    "fever_masked": FieldSpec(
        _B,
        help="antipyretic or anti-cytokine therapy (tocilizumab, "
        "steroids) given after CRS onset: fever no longer required",
    ),
    "hypotension": FieldSpec(_B, help="hypotension not attributable to another cause"),
    "vasopressors": FieldSpec(_I, 0, 10, "drugs", "number of vasopressors, excluding vasopressin"),
    "vasopressin": FieldSpec(_B, help="vasopressin given"),
    "vasopressor_high_dose": FieldSpec(_B, help="high-dose vasopressor (Lee 2014 Table 3)"),
    "hypotension_life_threatening": FieldSpec(_B, help="life-threatening hypotension (CARTOX)"),
    "oxygen": FieldSpec("oxygen", help="oxygen support device"),
    "o2_flow_l_min": FieldSpec(_N, 0, 80, "L/min", "oxygen flow"),
    "fio2": FieldSpec(_N, 0.21, 1.0, "fraction", "inspired oxygen fraction (0.21-1.0)"),
    "organ_toxicity_grade": FieldSpec(
        _I, 0, 4, "CTCAE grade", "worst CRS-related organ toxicity except transaminitis"
    ),
    "transaminitis_grade": FieldSpec(_I, 0, 4, "CTCAE grade", "CRS-related transaminitis"),
    "constitutional_symptoms": FieldSpec(
        _B,
        help="fever, nausea, fatigue, headache, myalgia, "
        "malaise needing symptomatic treatment only (Lee 2014)",
    ),
    "crs_death": FieldSpec(_B, help="death due to CRS"),
    # ICANS
    "ice_score": FieldSpec(_I, 0, 10, "points", "ICE score (10 points)"),
    "cartox10_score": FieldSpec(_I, 0, 10, "points", "CARTOX-10 score"),
    "capd_score": FieldSpec(_I, 0, 32, "points", "Cornell Assessment of Pediatric Delirium"),
    "consciousness": FieldSpec("consciousness", help="level of consciousness"),
    "seizure": FieldSpec("seizure", help="seizure"),
    "motor_weakness": FieldSpec(_B, help="deep focal motor weakness (hemiparesis, paraparesis)"),
    "cerebral_edema": FieldSpec("cerebral_edema", help="raised ICP / cerebral oedema"),
    "papilledema_stage": FieldSpec(_I, 0, 5, "Frisén stage", "papilloedema stage (CARTOX)"),
    "csf_opening_pressure_mmhg": FieldSpec(_N, 0, 100, "mmHg", "CSF opening pressure (CARTOX)"),
    "icans_death": FieldSpec(_B, help="death due to ICANS"),
    "age_years": FieldSpec(_N, 0, 120, "years"),
    # acute GVHD
    "skin_bsa_pct": FieldSpec(_N, 0, 100, "% BSA", "active erythematous GVHD rash"),
    "bullae": FieldSpec(_B, help="bullous formation and desquamation > 5% BSA"),
    "bilirubin_mg_dl": FieldSpec(_N, 0, 100, "mg/dL", "total bilirubin"),
    "upper_gi": FieldSpec(_B, help="persistent nausea, vomiting or anorexia"),
    "stool_ml_day": FieldSpec(_N, 0, 20000, "mL/day", "stool volume (3-day average)"),
    "stool_episodes": FieldSpec(_I, 0, 60, "episodes/day", "stool episodes per day"),
    "weight_kg": FieldSpec(_N, 0.3, 400, "kg"),
    "severe_abdominal_pain": FieldSpec(_B, help="severe abdominal pain with or without ileus"),
    "bloody_stool": FieldSpec(_B, help="grossly bloody stool"),
    "liver_other_cause": FieldSpec(_B, help="another documented cause of hyperbilirubinaemia"),
    "diarrhea_other_cause": FieldSpec(_B, help="another documented cause of diarrhoea"),
    # CTCAE haematology (counts x10^9/L)
    "anc": FieldSpec(_N, 0, 200, "x10^9/L", "absolute neutrophil count"),
    "platelets": FieldSpec(_N, 0, 5000, "x10^9/L"),
    "lymphocytes": FieldSpec(_N, 0, 1000, "x10^9/L"),
    "wbc": FieldSpec(_N, 0, 1000, "x10^9/L"),
    "hemoglobin_g_dl": FieldSpec(_N, 0, 25, "g/dL"),
    "sex": FieldSpec("sex", help="M or F (sets the default haemoglobin LLN)"),
    "life_threatening": FieldSpec(
        _B, help="life-threatening consequences; urgent intervention indicated"
    ),
    "fever_sustained_1h": FieldSpec(_B, help="temperature >= 38 °C sustained > 1 hour"),
    "transfusion_indicated": FieldSpec(_B, help="transfusion indicated (CTCAE anaemia)"),
    "intervention": FieldSpec("intervention", help="intervention the infection needed"),
    "death": FieldSpec(_B, help="death due to the adverse event"),
}
#: other names accepted for a field
FIELD_ALIASES: dict[str, str] = {
    "anticytokine_given": "fever_masked",
    "temperature": "temperature_c",
    "o2_flow": "o2_flow_l_min",
    "bilirubin": "bilirubin_mg_dl",
    "weight": "weight_kg",
    "hemoglobin": "hemoglobin_g_dl",
    "haemoglobin_g_dl": "hemoglobin_g_dl",
    "cerebral_oedema": "cerebral_edema",
    "age": "age_years",
}
_TRUE = {"true", "yes", "y", "1", "1.0", "t", "on", "present"}
_FALSE = {"false", "no", "n", "0", "0.0", "f", "off", "none", "absent"}
_MISSING_TEXT = {"", "nan", "na", "n/a", "<na>", "none given", "unknown", "missing", "not done"}


def _is_missing(value: object) -> bool:
    if value is None:
        return True
    if isinstance(value, float) and math.isnan(value):
        return True
    try:
        import pandas as pd  # only to recognise pd.NA/NaT

        if value is pd.NA or value is pd.NaT:
            return True
    except ImportError:  # pragma: no cover
        pass
    return isinstance(value, str) and value.strip().lower() in _MISSING_TEXT


def parse_value(name: str, value: object, where: str | None = None) -> float:
    """Validate one observation and return it as a float (NaN when missing).

    Booleans become 0/1, categories their integer code (``codes``). Raises
    ``GradingInputError`` naming field, value and what was expected.
    """
    spec = FIELDS[name]
    if _is_missing(value):
        return math.nan
    if isinstance(value, np.generic):
        value = value.item()
    if spec.kind == "bool":
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
        except KeyError:
            raise GradingInputError(name, value, spec.expected(), where) from None
    if isinstance(value, bool):
        raise GradingInputError(name, value, spec.expected(), where)
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise GradingInputError(name, value, spec.expected(), where) from None
    if math.isnan(number):
        return math.nan
    if not spec.lo <= number <= spec.hi or (spec.kind == "int" and not number.is_integer()):
        raise GradingInputError(name, value, spec.expected(), where)
    return number


def canonical_field(name: str) -> str | None:
    key = str(name).strip()
    if key in FIELDS:
        return key
    return FIELD_ALIASES.get(key)


def parse_observations(obs: Mapping[str, Any] | None, **extra: Any) -> dict[str, float]:
    """Validate a mapping of observations (plus keyword observations) -> {field: float}.

    Every known field is validated even when the engine does not use it (so a typo in
    a value is never silently ignored); an unknown field name raises with the list of
    known names, except the bookkeeping keys ``day`` and ``patient_id``.
    """
    merged: dict[str, Any] = dict(obs or {})
    merged.update({k: v for k, v in extra.items() if v is not None})
    out: dict[str, float] = {}
    for raw_name, value in merged.items():
        name = canonical_field(raw_name)
        if name is None:
            if raw_name in ("day", "patient_id"):
                continue
            raise GradingInputError(
                str(raw_name), value, "a known observation name: " + ", ".join(sorted(FIELDS))
            )
        parsed = parse_value(name, value)
        if name in out and not math.isnan(out[name]) and out[name] != parsed:
            raise GradingInputError(name, value, f"one value (also given as {out[name]!r})")
        out[name] = parsed
    return out


def parse_column(name: str, values: Any, where: str = "row") -> np.ndarray:
    """Validate a column (sequence/Series) of observation ``name`` -> float array.

    Numeric columns are checked vectorised; text columns (categories, yes/no words) go
    through the same parser. The error names the first bad row.
    """
    spec = FIELDS[name]
    arr = np.asarray(values, dtype=object) if not isinstance(values, np.ndarray) else values
    if arr.dtype.kind in "fiub" and spec.kind in (_N, _I):
        out = arr.astype(float)
        ok = np.isnan(out) | ((out >= spec.lo) & (out <= spec.hi))
        if spec.kind == _I:
            ok &= np.isnan(out) | (out == np.floor(out))
        if not ok.all():
            i = int(np.flatnonzero(~ok)[0])
            raise GradingInputError(name, arr[i], spec.expected(), f"{where} {i}")
        return out
    out = np.empty(len(arr), dtype=float)
    cache: dict[Any, float] = {}
    for i, v in enumerate(arr):
        try:
            key = (type(v), v)
            hash(key)
        except TypeError:
            key = None
        if key is not None and key in cache:
            out[i] = cache[key]
            continue
        parsed = parse_value(name, v, f"{where} {i}")
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
    benign_v = {f: np.where(unknown[f], fills[f].benign, arrays[f]) for f in names}
    worst_v = {f: np.where(unknown[f], fills[f].worst, arrays[f]) for f in names}

    def at(corner: int) -> np.ndarray:
        d = dict(arrays)
        for j, f in enumerate(names):
            d[f] = worst_v[f] if corner >> j & 1 else benign_v[f]
        return np.asarray(kernel(d)).astype(int)

    k = len(names)
    if k <= MAX_CORNER_FIELDS:
        corners = range(2**k)
    else:  # all benign, all worst, and each field alone flipped from either end
        full = 2**k - 1
        corners = sorted(
            {0, full, *(1 << j for j in range(k)), *(full ^ (1 << j) for j in range(k))}
        )
    grades = {c: at(c) for c in corners}
    stack = np.stack(list(grades.values()))
    lo, hi = stack.min(axis=0), stack.max(axis=0)
    missing: dict[str, np.ndarray] = {}
    for j, f in enumerate(names):
        bit = 1 << j
        flag = np.zeros(n, dtype=bool)
        for c, g in grades.items():
            if not c & bit and (c | bit) in grades:
                flag |= grades[c | bit] > g
        flag &= unknown[f]
        if flag.any():
            missing[f] = flag
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
