"""Pulling one analyte out of the long ``observations`` table as sorted NumPy arrays.

Input rules (bad input raises ValueError naming the patient, the row and the value):

* time is days since infusion, a number: dates (datetime values, ``date`` objects or
  date-like text), infinite days and days beyond ``MAX_DAY`` (100 years, e.g. a date converted
  to nanoseconds) are refused — subtract the infusion date first;
* values are numbers >= 0; ``inf`` and negative values are refused;
* below-LLOQ text is understood, by this rule (``BLQ_TEXT_RULE``): ``<X`` (e.g. ``<50``,
  ``< 50 copies/µg``) is a sample below the LLOQ X; ``BLQ``, ``BLOQ``, ``BQL``, ``<LLOQ``,
  ``<LOQ``, ``below LLOQ``, ``not detected``, ``ND`` are below the row's LLOQ. Such a sample is
  coded 0 (not quantifiable, not counted as detected) with its LLOQ; ``BLQ`` with no LLOQ on
  the row, or ``<X`` with a different LLOQ on the row, is an error. Empty, ``NA``, ``N/A``
  are missing (dropped: missing is never zero). Any other text is an error;
* the LLOQ is a number >= 0 (negative, infinite or text LLOQs are errors);
* the unit must be one the analyte allows (``cohort.vocab.ANALYTES``): qPCR in copies/µg,
  flow in cells/µL — a qPCR row labelled cells/µL is an error, never pooled.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from cartrial.cohort.tables import MAX_DAY  # 100 years, as the cohort format
from cartrial.cohort.vocab import ANALYTES, UNIT_ALIASES, canonical

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

#: largest plausible "days since infusion" (100 years); larger numbers are dates in disguise
BLQ_TEXT_RULE = (
    "below-LLOQ text: '<X' is a sample below the LLOQ X; 'BLQ', 'BLOQ', 'BQL', '<LLOQ', "
    "'<LOQ', 'below LLOQ', 'not detected', 'ND' are below the row's LLOQ; both are coded 0 "
    "(not quantifiable, not detected) with that LLOQ"
)
_LT = re.compile(r"^<\s*=?\s*([0-9]*\.?[0-9]+(?:[eE][+-]?[0-9]+)?)\s*[^0-9]*$")
_BLQ_WORDS = re.compile(
    r"^(blq|bloq|bql|<\s*lloq|<\s*loq|<\s*lod|below\s+(the\s+)?(lloq|loq|"
    r"limit\s+of\s+quantification)|not\s+detected|undetectable|nd)$",
    re.IGNORECASE,
)
_MISSING = {"", "na", "n/a", "nan", "none", "null", "<na>", "missing", "-"}


@dataclass(frozen=True)
class AnalyteArrays:
    """One analyte's observations, sorted by (group, day), NaN values/days removed.

    ``keys`` holds one row per group (the ``by`` columns), in group-code order; groups
    whose every value was missing are kept (they get NaN results, never zero).
    """

    keys: pd.DataFrame
    codes: np.ndarray
    day: np.ndarray
    value: np.ndarray
    lloq: np.ndarray
    unit: str | None
    row_id: np.ndarray  # position in the input frame, for error messages
    n_blq_text: int = 0  # below-LLOQ texts read as BLQ (BLQ_TEXT_RULE)

    @property
    def n_groups(self) -> int:
        return len(self.keys)


def _is_date(x: object) -> bool:
    import datetime as dt

    return isinstance(x, (dt.date, np.datetime64)) or (
        isinstance(x, str) and bool(re.match(r"^\s*\d{4}-\d{1,2}-\d{1,2}", x))
    )


def parse_days(raw: np.ndarray | Sequence, where: Callable[[int], str]) -> np.ndarray:
    """Days since infusion as floats; dates, infinite or implausibly large days raise."""
    arr = np.asarray(raw)
    if arr.dtype.kind == "M" or (
        arr.dtype.kind in "OU" and len(arr) and any(_is_date(x) for x in arr[:50])
    ):
        i = next((j for j, x in enumerate(arr) if arr.dtype.kind == "M" or _is_date(x)), 0)
        raise ValueError(
            f"day {arr[i]!s} at {where(i)} is a date; expected days since infusion (a "
            "number): subtract the infusion date first"
        )
    if arr.dtype.kind in "fiub":
        day = arr.astype(float)
    else:
        import pandas as pd

        day = pd.to_numeric(pd.Series(arr, dtype="object"), errors="coerce").to_numpy(float)
        bad = [i for i in np.flatnonzero(np.isnan(day)) if not _missing(arr[i])]
        if bad:
            i = int(bad[0])
            raise ValueError(
                f"day {arr[i]!r} at {where(i)} is not a number; expected days since infusion"
            )
    with np.errstate(invalid="ignore"):
        bad = ~np.isnan(day) & ~(np.abs(day) <= MAX_DAY)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ValueError(
            f"day {day[i]:g} at {where(i)} is not a plausible number of days since infusion "
            f"(|day| <= {MAX_DAY:g}); a date converted to a number? Subtract the infusion date"
        )
    return day


def _missing(x: object) -> bool:
    if x is None:
        return True
    if isinstance(x, float) and np.isnan(x):
        return True
    import pandas as pd

    if x is pd.NA or x is pd.NaT:
        return True
    return isinstance(x, str) and x.strip().lower() in _MISSING


def parse_values(
    raw: np.ndarray | Sequence,
    lloq: np.ndarray,
    where: Callable[[int], str],
    counter: list[int] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Values and LLOQs as floats, below-LLOQ text coded by ``BLQ_TEXT_RULE``.

    ``counter`` (a one-element list), when given, is increased by the number of below-LLOQ
    texts read.

    ``lloq`` (float array, NaN where unknown) is checked (>= 0, finite) and updated where a
    ``<X`` text states the LLOQ. Raises ValueError naming ``where(i)`` and the value for
    unreadable text, infinite or negative values, BLQ text without an LLOQ.
    """
    arr = np.asarray(raw)
    lq = np.array(lloq, dtype=float, copy=True)
    with np.errstate(invalid="ignore"):
        bad_lq = ~np.isnan(lq) & ~((lq >= 0) & np.isfinite(lq))
    if bad_lq.any():
        j = int(np.flatnonzero(bad_lq)[0])
        raise ValueError(f"LLOQ {lq[j]:g} at {where(j)}; expected a finite LLOQ >= 0")
    if arr.dtype.kind in "fiub":
        value = arr.astype(float)
    else:
        import pandas as pd

        value = pd.to_numeric(pd.Series(arr, dtype="object"), errors="coerce").to_numpy(float)
        for i in np.flatnonzero(np.isnan(value)).tolist():
            x = arr[i]
            if _missing(x):
                continue
            text = str(x).strip()
            m = _LT.match(text)
            if m:
                stated = float(m.group(1))
                if np.isnan(lq[i]):
                    lq[i] = stated
                elif not np.isclose(lq[i], stated, rtol=1e-9):
                    raise ValueError(
                        f"value {text!r} at {where(i)} states an LLOQ of {stated:g} but the "
                        f"row's LLOQ is {lq[i]:g}; expected them to agree"
                    )
                value[i] = 0.0
                if counter is not None:
                    counter[0] += 1
            elif _BLQ_WORDS.match(text):
                if np.isnan(lq[i]):
                    raise ValueError(
                        f"value {text!r} at {where(i)} is below-LLOQ text but the row has no "
                        "LLOQ; give the assay's LLOQ (column 'lloq') or write '<LLOQ value'"
                    )
                value[i] = 0.0
                if counter is not None:
                    counter[0] += 1
            else:
                raise ValueError(
                    f"value {text!r} at {where(i)} is not a number; expected a number, '<X' "
                    "(below the LLOQ X) or BLQ text (" + BLQ_TEXT_RULE + ")"
                )
    with np.errstate(invalid="ignore"):
        bad = ~np.isnan(value) & ~np.isfinite(value)
        neg = value < 0
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ValueError(f"infinite value {value[i]} at {where(i)}; expected a finite number")
    if neg.any():
        i = int(np.flatnonzero(neg)[0])
        raise ValueError(f"negative value {value[i]:g} at {where(i)}; expected a value >= 0")
    return value, lq


def _as_array(x: object) -> np.ndarray:
    """A 1-D array; a list mixing text and numbers stays ``object`` (NumPy would turn the
    numbers into text, losing digits)."""
    if hasattr(x, "to_numpy"):
        return x.to_numpy()
    if isinstance(x, np.ndarray):
        return x
    items = list(x) if isinstance(x, (list, tuple)) else x
    if isinstance(items, list) and any(isinstance(e, str) for e in items):
        return np.array(items, dtype=object)
    return np.asarray(items)


def profile_arrays(
    days: Sequence[float] | np.ndarray,
    values: Sequence[float] | np.ndarray,
    lloq: float | Sequence[float] | np.ndarray | None,
    patient: str | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One patient's profile as float arrays ``(day, value, lloq)`` sorted by day (stable).

    ``lloq`` is a scalar or one value per sample (None: all NaN); samples with a missing day
    or value, or before day 0 (infusion), are dropped. Input rules in the module docstring
    (dates, inf, negative values or LLOQs, below-LLOQ text); errors name ``patient`` (when
    given), the sample's position and its value. Raises ValueError when the lengths of
    ``days``, ``values`` and a per-sample ``lloq`` differ.
    """
    who = f"patient {patient}, " if patient is not None else ""

    def where(i: int) -> str:
        return f"{who}sample {i} (0-based position in the input)"

    t_raw, c_raw = _as_array(days).ravel(), _as_array(values).ravel()
    if t_raw.shape != c_raw.shape:
        raise ValueError(f"days ({t_raw.size}) and values ({c_raw.size}) differ in length")
    if lloq is None:
        lq = np.full(t_raw.shape, np.nan)
    else:
        lq_in = np.asarray(lloq, dtype=float)
        if lq_in.ndim and lq_in.size != t_raw.size:
            raise ValueError(f"lloq has {lq_in.size} values for {t_raw.size} samples")
        lq = np.broadcast_to(lq_in.ravel() if lq_in.ndim else lq_in, t_raw.shape).astype(float)
    t = parse_days(t_raw, where)
    c, lq = parse_values(c_raw, lq, where)
    keep = ~np.isnan(t) & ~np.isnan(c) & (t >= 0)
    t, c, lq = t[keep], c[keep], lq[keep]
    order = np.argsort(t, kind="stable")
    t, c, lq = t[order], c[order], lq[order]
    return t, c, lq


def as_by(by: str | Sequence[str]) -> list[str]:
    return [by] if isinstance(by, str) else list(by)


def canonical_analytes(series: pd.Series) -> pd.Series:
    """Canonical analyte names (aliases mapped through ``cohort.vocab.ANALYTES``)."""

    aliases = analyte_aliases()
    uniques = series.dropna().astype(str).unique()
    # an exact canonical name wins over alias matching: the vocabulary's normalisation folds
    # "-", "_" and blanks, so "cd7_t" would otherwise collide with the alias "cd7- t" of
    # cd7neg_t (and "cd7_nk" with "cd7- nk")
    mapping = {u: u if u in aliases else (canonical(u, aliases) or u) for u in uniques}
    return series.astype("object").map(mapping)


_ALIASES: dict[str, tuple[str, ...]] = {}


def analyte_aliases() -> dict[str, tuple[str, ...]]:
    """canonical analyte -> aliases, one long-lived dict (``canonical`` caches by identity)."""
    if not _ALIASES:
        _ALIASES.update({name: aliases for name, (aliases, _units) in ANALYTES.items()})
    return _ALIASES


def canonical_unit(unit: object) -> str | None:

    if unit is None or (isinstance(unit, float) and np.isnan(unit)):
        return None
    text = str(unit).strip()
    if not text or text.lower() in {"nan", "<na>"}:
        return None
    return canonical(text, UNIT_ALIASES) or text


def select_analyte(
    observations: pd.DataFrame,
    analyte: str,
    by: str | Sequence[str] = "patient_id",
    *,
    drop_negative_days: bool = True,
    allow_duplicates: bool = False,
) -> AnalyteArrays:
    """Rows of ``analyte`` as sorted arrays, grouped by the ``by`` columns.

    Raises ValueError (naming patient, row, value) on a unit the analyte does not allow or
    mixed units (qPCR copies/µg and flow cells/µL must never be pooled), dates as days,
    infinite or negative values, negative LLOQs, unreadable text (below-LLOQ text is read by
    ``BLQ_TEXT_RULE``), or two values for one group and day.
    Rows with a missing value or day are dropped (missing is missing, never zero); rows
    before day 0 are dropped when ``drop_negative_days`` (pre-infusion samples).
    """
    import pandas as pd

    by_cols = as_by(by)
    missing = [c for c in [*by_cols, "analyte", "value"] if c not in observations.columns]
    if missing:
        raise ValueError(f"observations table lacks column(s) {', '.join(missing)}")
    if "day" not in observations.columns:
        raise ValueError("observations table lacks column 'day' (days since infusion)")
    names = canonical_analytes(observations["analyte"])
    sub = observations.loc[(names == analyte).to_numpy()]
    row_id = np.arange(len(observations))[(names == analyte).to_numpy()]

    def where(i: int) -> str:
        return _row_text(observations, sub, by_cols, i)

    _check_units(sub, analyte, where)
    raw_units = sub["unit"].dropna().unique() if "unit" in sub.columns else []
    units = sorted({u for u in (canonical_unit(x) for x in raw_units) if u is not None})
    if len(units) > 1:
        raise ValueError(
            f"analyte {analyte!r} is reported in several units ({', '.join(units)}); "
            "convert to one unit first (copies/µg and cells/µL must never be pooled)"
        )
    if sub[by_cols].isna().any(axis=None):
        raise ValueError(f"observations of {analyte!r} with a missing {'/'.join(by_cols)}")
    keys_codes = sub.groupby(by_cols, sort=True, dropna=False).ngroup().to_numpy()
    keys = (
        sub[by_cols]
        .assign(_code=keys_codes)
        .drop_duplicates("_code")
        .sort_values("_code")
        .drop(columns="_code")
        .reset_index(drop=True)
    )
    day = parse_days(sub["day"].to_numpy(), where)
    if "lloq" in sub.columns:
        lloq_raw = sub["lloq"]
        lloq = pd.to_numeric(lloq_raw, errors="coerce").to_numpy(dtype=float)
        nan_at = np.flatnonzero(np.isnan(lloq))
        text = [i for i in nan_at if not _missing(lloq_raw.iloc[i])]
        if text:
            i = int(text[0])
            raise ValueError(
                f"LLOQ {lloq_raw.iloc[i]!r} at {where(i)} is not a number; expected a number >= 0"
            )
    else:
        lloq = np.full(len(sub), np.nan)
    n_text = [0]
    value, lloq = parse_values(sub["value"].to_numpy(), lloq, where, n_text)
    keep = ~np.isnan(day) & ~np.isnan(value)
    if drop_negative_days:
        keep &= day >= 0
    codes = keys_codes[keep]
    day, value, lloq, row_id = day[keep], value[keep], lloq[keep], row_id[keep]
    order = np.lexsort((day, codes))
    codes, day, value, lloq, row_id = (a[order] for a in (codes, day, value, lloq, row_id))
    if not allow_duplicates:
        dup = (codes[1:] == codes[:-1]) & (day[1:] == day[:-1])
        if dup.any():
            i = int(np.flatnonzero(dup)[0])
            raise ValueError(
                f"two {analyte} values for {_describe(keys, codes[i])} on day {day[i]:g} "
                f"({value[i]:g} and {value[i + 1]:g}); expected one value per patient and day"
            )
    return AnalyteArrays(
        keys,
        codes.astype(np.int64),
        day,
        value,
        lloq,
        units[0] if units else None,
        row_id,
        n_text[0],
    )


def _describe(keys: pd.DataFrame, code: int) -> str:
    row = keys.iloc[int(code)]
    return ", ".join(f"{k}={row[k]}" for k in keys.columns)


def _row_text(observations: pd.DataFrame, sub: pd.DataFrame, by_cols: list[str], i: int) -> str:
    """'patient_id=P1, row 12 (file.csv line 14)' for row ``i`` of ``sub``."""
    row = sub.iloc[i]
    keys = ", ".join(f"{k}={row[k]}" for k in by_cols if k in sub.columns)
    text = f"{keys}, row {sub.index[i]!s} of the observations table"
    if "source_row" in sub.columns and not _missing(row["source_row"]):
        src = row["source_file"] if "source_file" in sub.columns else "source"
        text += f" ({src} line {row['source_row']})"
    return text


def _check_units(sub: pd.DataFrame, analyte: str, where: Callable[[int], str]) -> None:
    """Every unit of ``analyte`` must be one ``cohort.vocab.ANALYTES`` allows (qPCR copies/µg,
    flow cells/µL): a wrong label is an error naming the row, never pooled or converted."""
    if "unit" not in sub.columns or not len(sub):
        return

    allowed = ANALYTES.get(analyte, ((), None))[1]
    if allowed is None:
        return
    raw = sub["unit"].astype("object").to_numpy()
    uniq = {u: canonical_unit(u) for u in dict.fromkeys(x for x in raw if not _missing(x))}
    bad_units = {u for u, c in uniq.items() if c not in allowed}
    if not bad_units:
        return
    i = next(j for j, x in enumerate(raw) if not _missing(x) and x in bad_units)
    raise ValueError(
        f"unit {raw[i]!r} for {analyte} at {where(i)} (value {sub['value'].iloc[i]!s}); "
        f"expected {' or '.join(sorted(allowed))} — qPCR (copies/µg) and flow (cells/µL) "
        "results must never be pooled or relabelled"
    )
