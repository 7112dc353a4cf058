"""Pulling one analyte out of the long ``observations`` table as sorted NumPy arrays."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd


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

    @property
    def n_groups(self) -> int:
        return len(self.keys)


def profile_arrays(
    days: Sequence[float] | np.ndarray,
    values: Sequence[float] | np.ndarray,
    lloq: float | Sequence[float] | np.ndarray | None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One patient's profile as float arrays ``(day, value, lloq)`` sorted by day (stable).

    ``lloq`` is a scalar or one value per sample (None: all NaN); samples with a NaN day or
    value, or before day 0 (infusion), are dropped. Raises ValueError when the lengths of
    ``days``, ``values`` and a per-sample ``lloq`` differ.
    """
    t = np.asarray(days, dtype=float).ravel()
    c = np.asarray(values, dtype=float).ravel()
    if t.shape != c.shape:
        raise ValueError(f"days ({t.size}) and values ({c.size}) differ in length")
    if lloq is None:
        lq = np.full(t.shape, np.nan)
    else:
        lq_in = np.asarray(lloq, dtype=float)
        if lq_in.ndim and lq_in.size != t.size:
            raise ValueError(f"lloq has {lq_in.size} values for {t.size} samples")
        lq = np.broadcast_to(lq_in.ravel() if lq_in.ndim else lq_in, t.shape).astype(float)
    keep = ~np.isnan(t) & ~np.isnan(c) & (t >= 0)
    t, c, lq = t[keep], c[keep], lq[keep]
    order = np.argsort(t, kind="stable")
    t, c, lq = t[order], c[order], lq[order]
    return t, c, lq


def as_by(by: str | Sequence[str]) -> list[str]:
    return [by] if isinstance(by, str) else list(by)


def canonical_analytes(series: pd.Series) -> pd.Series:
    """Canonical analyte names (aliases mapped through ``cohort.vocab.ANALYTES``)."""
    from cartrial.cohort.vocab import canonical

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
        from cartrial.cohort.vocab import ANALYTES

        _ALIASES.update({name: aliases for name, (aliases, _units) in ANALYTES.items()})
    return _ALIASES


def canonical_unit(unit: object) -> str | None:
    from cartrial.cohort.vocab import UNIT_ALIASES, canonical

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

    Raises ValueError (naming patient, day, value) on mixed units (qPCR copies/µg and flow
    cells/µL must never be pooled), negative values, or two values for one group and day.
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
    day = pd.to_numeric(sub["day"], errors="coerce").to_numpy(dtype=float)
    value = pd.to_numeric(sub["value"], errors="coerce").to_numpy(dtype=float)
    if "lloq" in sub.columns:
        lloq = pd.to_numeric(sub["lloq"], errors="coerce").to_numpy(dtype=float)
    else:
        lloq = np.full(len(sub), np.nan)
    row_id = np.arange(len(observations))[(names == analyte).to_numpy()]
    keep = ~np.isnan(day) & ~np.isnan(value)
    if drop_negative_days:
        keep &= day >= 0
    codes = keys_codes[keep]
    day, value, lloq, row_id = day[keep], value[keep], lloq[keep], row_id[keep]
    order = np.lexsort((day, codes))
    codes, day, value, lloq, row_id = (a[order] for a in (codes, day, value, lloq, row_id))
    neg = value < 0
    if neg.any():
        i = int(np.flatnonzero(neg)[0])
        raise ValueError(
            f"negative {analyte} value {value[i]} for {_describe(keys, codes[i])} on day "
            f"{day[i]:g} (input row {row_id[i]}); expected a value >= 0"
        )
    if not allow_duplicates:
        dup = (codes[1:] == codes[:-1]) & (day[1:] == day[:-1])
        if dup.any():
            i = int(np.flatnonzero(dup)[0])
            raise ValueError(
                f"two {analyte} values for {_describe(keys, codes[i])} on day {day[i]:g} "
                f"({value[i]:g} and {value[i + 1]:g}); expected one value per patient and day"
            )
    return AnalyteArrays(
        keys, codes.astype(np.int64), day, value, lloq, units[0] if units else None, row_id
    )


def _describe(keys: pd.DataFrame, code: int) -> str:
    row = keys.iloc[int(code)]
    return ", ".join(f"{k}={row[k]}" for k in keys.columns)
