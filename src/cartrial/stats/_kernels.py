"""Private NumPy kernels shared by the survival statistics: input checks and counting.

Everything here works on plain NumPy arrays; no pandas on the hot path.

Counting strategy (why it is fast): clinical times are whole days with heavy ties,
so when the times are integer-valued over a small range the per-time event and
censoring counts come from one ``np.bincount`` over a combined index
``(time * k + group) * 2 + censored`` built in place — a single O(n) pass, no sort.
Other times are counted from one sort of a 64-bit key that packs the time's IEEE-754
bits (monotone for non-negative floats) with the censoring flag, so events sort
before censorings at tied times — no argsort, no gather.  With groups, the rows are
first partitioned by group (a radix argsort of small codes) and each part's keys
sorted; the per-group distinct times are then merged (timsort on sorted runs).
Case weights use ``np.unique(..., return_inverse=True)`` and a weighted bincount.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

# An integer-valued time range up to this many bins (or 4 x n) is counted with bincount.
_BINCOUNT_MAX_RANGE = 1 << 21


# --------------------------------------------------------------------------- input checks


def _labels(x: Any) -> Any:
    """Index labels of a pandas object (used in error messages), else None."""
    index = getattr(x, "index", None)
    if index is None or not hasattr(index, "__getitem__"):
        return None
    return index


def _show(value: Any) -> str:
    """repr of a value without NumPy's type wrapper (np.float64(2.0) -> 2.0)."""
    item = getattr(value, "item", None)
    return repr(item() if callable(item) else value)


def _where(pos: int, labels: Any) -> str:
    """'[3]' or "[3] (index label 'E004')" for an error message."""
    if labels is None:
        return f"[{pos}]"
    label = labels[pos]
    if isinstance(label, int | np.integer) and int(label) == pos:
        return f"[{pos}]"
    return f"[{pos}] (index label {_show(label)})"


def as_1d(x: Any, name: str) -> np.ndarray:
    """A 1-D NumPy view of ``x`` (array, list, pandas Series); raises on other shapes."""
    arr = np.asarray(x)
    if arr.ndim == 0:
        arr = arr.reshape(1)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {arr.shape}")
    return arr


def check_lengths(**arrays: np.ndarray) -> int:
    """All arrays have one common, non-zero length; returns it."""
    lengths = {k: len(v) for k, v in arrays.items()}
    n = next(iter(lengths.values()))
    if any(v != n for v in lengths.values()):
        detail = ", ".join(f"{k}={v}" for k, v in lengths.items())
        raise ValueError(f"inputs must have the same length, got {detail}")
    if n == 0:
        raise ValueError("no subjects: the inputs are empty")
    return n


def check_times(time: Any, name: str = "time") -> np.ndarray:
    """Validated follow-up times: finite, non-negative numbers (float64 or int64 array).

    Raises ValueError naming the first offending position (and pandas index label).
    """
    labels = _labels(time)
    arr = as_1d(time, name)
    if arr.size == 0:
        return arr.astype(np.float64)
    if arr.dtype.kind == "b":
        raise ValueError(f"{name} must be numeric, got booleans")
    if arr.dtype.kind in "iu":
        arr = arr.astype(np.int64, copy=False)
        if arr.size and arr.min() < 0:
            pos = int(np.flatnonzero(arr < 0)[0])
            raise ValueError(
                f"{name}{_where(pos, labels)} = {arr[pos]}: times must be >= 0 "
                "(days since the time origin)"
            )
        return arr
    if arr.dtype.kind != "f":
        try:
            arr = arr.astype(np.float64)
        except (TypeError, ValueError):
            for pos, value in enumerate(arr):
                try:
                    float(value)
                except (TypeError, ValueError):
                    raise ValueError(
                        f"{name}{_where(pos, labels)} = {_show(value)}: expected a number"
                    ) from None
            raise
    arr = arr.astype(np.float64, copy=False)
    # min() propagates NaN, so one reduction checks both NaN and negatives.
    lo = arr.min() if arr.size else 0.0
    if not np.isfinite(lo) or lo < 0 or not np.isfinite(arr.max()):
        bad = ~np.isfinite(arr) | (arr < 0)
        pos = int(np.flatnonzero(bad)[0])
        value = arr[pos]
        what = "missing (NaN)" if np.isnan(value) else _show(value)
        raise ValueError(
            f"{name}{_where(pos, labels)} is {what}: times must be finite numbers >= 0 "
            "(missing follow-up must be resolved before analysis, never imputed)"
        )
    return arr


def check_binary(event: Any, name: str = "event") -> np.ndarray:
    """Validated 0/1 indicator as a boolean array; raises naming the first bad value."""
    labels = _labels(event)
    arr = as_1d(event, name)
    if arr.dtype.kind == "b":
        return arr
    if arr.dtype.kind in "iu":
        if arr.size and (arr.min() < 0 or arr.max() > 1):
            pos = int(np.flatnonzero((arr != 0) & (arr != 1))[0])
            raise ValueError(f"{name}{_where(pos, labels)} = {arr[pos]}: expected 0 or 1")
        return arr.astype(bool)
    try:
        f = arr.astype(np.float64)
    except (TypeError, ValueError):
        f = None
    if f is None or not ((f == 0) | (f == 1)).all():
        for pos, value in enumerate(arr):
            try:
                ok = float(value) in (0.0, 1.0)
            except (TypeError, ValueError):
                ok = False
            if not ok:
                raise ValueError(
                    f"{name}{_where(pos, labels)} = {_show(value)}: expected 0 or 1 "
                    "(1 = event observed, 0 = censored)"
                ) from None
    assert f is not None  # a failed conversion raised above
    return f.astype(bool)


def check_codes(cause: Any, name: str = "cause") -> np.ndarray:
    """Validated competing-risk status: integers >= 0 (0 = censored) as int64."""
    labels = _labels(cause)
    arr = as_1d(cause, name)
    if arr.dtype.kind == "b":
        return arr.astype(np.int64)
    if arr.dtype.kind in "iu":
        out = arr.astype(np.int64, copy=False)
    else:
        try:
            f = arr.astype(np.float64)
        except (TypeError, ValueError):
            f = np.full(arr.shape, np.nan)
        ok = np.isfinite(f) & (f == np.floor(f))
        if not ok.all():
            pos = int(np.flatnonzero(~ok)[0])
            raise ValueError(
                f"{name}{_where(pos, labels)} = {_show(arr[pos])}: expected an integer "
                "(0 = censored, 1..K = cause of the event)"
            )
        out = f.astype(np.int64)
    if out.size and out.min() < 0:
        pos = int(np.flatnonzero(out < 0)[0])
        raise ValueError(
            f"{name}{_where(pos, labels)} = {out[pos]}: expected 0 (censored) or a cause 1..K"
        )
    return out


def check_weights(weights: Any, n: int, name: str = "weights") -> np.ndarray | None:
    """Validated non-negative finite case weights (float64), or None."""
    if weights is None:
        return None
    labels = _labels(weights)
    w = as_1d(weights, name).astype(np.float64)
    if len(w) != n:
        raise ValueError(f"{name} has length {len(w)}, expected {n}")
    bad = ~np.isfinite(w) | (w < 0)
    if bad.any():
        pos = int(np.flatnonzero(bad)[0])
        raise ValueError(
            f"{name}{_where(pos, labels)} = {_show(w[pos])}: expected a finite number >= 0"
        )
    return w


@dataclass(frozen=True)
class Factor:
    """Integer codes 0..k-1 for a label array, with the sorted distinct labels."""

    codes: np.ndarray  # int64, shape (n,)
    levels: np.ndarray  # distinct labels, sorted


def factorize(values: Any, name: str) -> Factor:
    """Codes for group/stratum labels; missing labels raise naming the position.

    Small-range integers and booleans are coded with bincount (no hashing, no sort);
    anything else goes through ``pandas.factorize(sort=True)``.
    """
    labels = _labels(values)
    arr = as_1d(values, name)
    if arr.dtype.kind in "biu" and arr.size:
        ints = arr.astype(np.int64, copy=False)
        lo, hi = int(ints.min()), int(ints.max())
        if hi - lo <= max(4 * arr.size, 1 << 16):
            if hi - lo <= 1:  # min and max are attained, so both levels are present
                present = np.ones(hi - lo + 1, dtype=bool)
            else:
                present = np.bincount(ints - lo if lo else ints, minlength=hi - lo + 1) > 0
            if lo == 0 and present.all():  # already 0..k-1: the values are the codes
                levels = np.arange(hi + 1)
                return Factor(
                    ints.astype(np.intp, copy=False),
                    levels.astype(bool) if arr.dtype.kind == "b" else levels,
                )
            lut = np.cumsum(present) - 1
            codes = lut[ints - lo] if lo else lut[ints]
            levels = np.flatnonzero(present) + lo
            if arr.dtype.kind == "b":
                levels = levels.astype(bool)
            return Factor(codes.astype(np.int64, copy=False), levels)
    import pandas as pd

    codes, uniques = pd.factorize(arr, sort=True, use_na_sentinel=True)
    if (codes < 0).any():
        pos = int(np.flatnonzero(codes < 0)[0])
        raise ValueError(f"{name}{_where(pos, labels)} is missing: every subject needs a {name}")
    return Factor(codes.astype(np.int64, copy=False), np.asarray(uniques))


# --------------------------------------------------------------------------- counting


@dataclass(frozen=True)
class TimeCounts:
    """Counts per distinct time (sorted ascending), one row per group.

    ``events[g, j]`` / ``censored[g, j]``: number (or weighted sum) of events /
    censorings in group ``g`` at ``times[j]``; ``at_start[g]``: group size.  Groups are
    rows so that each group's series is contiguous (sums over groups are row adds).
    """

    times: np.ndarray  # float64, (T,)
    events: np.ndarray  # float64, (k, T)
    censored: np.ndarray  # float64, (k, T)
    at_start: np.ndarray  # float64, (k,)

    def at_risk(self) -> np.ndarray:
        """Number at risk just before each distinct time, (k, T): size minus earlier exits."""
        exits = self.events + self.censored
        before = np.cumsum(exits, axis=1)
        before -= exits
        np.subtract(self.at_start[:, None], before, out=before)
        return before


def _int_codes(t: np.ndarray) -> tuple[np.ndarray, bool, int, int] | None:
    """(t - t_min as intp, owned, t_min, range) for integer times over a small range.

    ``owned`` says whether the code array is a fresh copy that may be modified in place.
    """
    n = t.size
    if t.dtype.kind in "iu":
        lo, hi = int(t.min()), int(t.max())
        if hi - lo + 1 > max(_BINCOUNT_MAX_RANGE, 4 * n):
            return None
        ti = t.astype(np.intp, copy=False)
        owned = ti is not t
    else:
        lo_f, hi_f = float(t.min()), float(t.max())
        if hi_f - lo_f + 1 > max(_BINCOUNT_MAX_RANGE, 4 * n):
            return None
        if not np.array_equal(np.floor(t), t):  # floor + compare: cheaper than a cast back
            return None
        ti = t.astype(np.intp)
        lo, hi, owned = int(lo_f), int(hi_f), True
    if lo:
        if owned:
            ti -= lo
        else:
            ti = ti - lo
            owned = True
    return ti, owned, lo, hi - lo + 1


def _bincount_counts(
    codes_t: np.ndarray,
    owned: bool,
    n_bins: int,
    event: np.ndarray,
    group: np.ndarray | None,
    k: int,
    weights: np.ndarray | None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Event/censor counts per (group, time bin) with one bincount; drops empty bins.

    Index ``(time * k + group) * 2 + censored``, built in place in the time-code
    buffer (no temporaries of the data's size).
    """
    idx = codes_t if owned else codes_t.copy()
    idx *= 2 * k
    if group is None:
        idx += ~event  # +1 for censored
    else:
        # 2 * group + censored in a one-byte (or two-byte) array, then one pass over idx
        small: npt.NDArray[np.integer[Any]] = group.astype(np.uint8 if k < 128 else np.int64)
        small <<= 1
        small += ~event
        idx += small
    flat = np.bincount(idx, weights=weights, minlength=2 * n_bins * k)
    cube = flat.reshape(n_bins, k, 2)
    ev = cube[:, :, 0].T
    ce = cube[:, :, 1].T
    keep = np.flatnonzero((ev + ce).sum(axis=0) > 0)
    return (
        keep,
        np.ascontiguousarray(ev[:, keep], dtype=np.float64),
        np.ascontiguousarray(ce[:, keep], dtype=np.float64),
    )


def _sorted_key_counts(t: np.ndarray, event: np.ndarray):
    """Distinct times and event/censor counts from one sort of a packed 64-bit key.

    For t >= 0 the IEEE-754 bit pattern is monotone, so ``bits << 1 | censored``
    (uint64) sorts by time and puts events before censorings at tied times.  After the
    sort, runs of equal keys are (time, flag) cells: each distinct time has an event
    run, a censoring run, or both.  Returns (times, events, censored) as float64.
    """
    key = t.astype(np.float64, copy=False).view(np.uint64) << np.uint64(1)
    key |= ~event
    key.sort()
    n = key.size
    new = np.empty(n, dtype=bool)
    new[0] = True
    np.not_equal(key[1:], key[:-1], out=new[1:])
    starts = np.flatnonzero(new)
    run_len = np.empty(starts.size, dtype=np.float64)
    run_len[:-1] = np.diff(starts)
    run_len[-1] = n - starts[-1]
    run_key = key[starts]
    censor_run = (run_key & np.uint64(1)).astype(bool)
    run_time = run_key >> np.uint64(1)
    # a censoring run directly after an event run of the same time joins it
    joins = np.zeros(run_key.size, dtype=bool)
    joins[1:] = censor_run[1:] & (run_time[1:] == run_time[:-1])
    first = ~joins
    times = run_time[first].view(np.float64)
    events = np.where(censor_run, 0.0, run_len)[first]
    censored = np.where(censor_run, run_len, 0.0)
    censored_at_time = censored[first]
    # add the joined censoring runs to their time's row
    joined = np.flatnonzero(joins)
    if joined.size:
        row = np.cumsum(first) - 1
        censored_at_time[row[joined]] += censored[joined]
    return times, events, censored_at_time


def _merge_sorted(parts: list[np.ndarray]) -> tuple[np.ndarray, list[np.ndarray]]:
    """Union of k sorted distinct-value arrays and each one's positions in the union.

    A stable argsort of the concatenation (timsort: linear on k sorted runs) replaces
    ``np.unique(..., return_inverse=True)``, which would re-sort from scratch.
    """
    allv = np.concatenate(parts)
    perm = np.argsort(allv, kind="stable")
    s = allv[perm]
    new = np.empty(s.size, dtype=bool)
    if s.size:
        new[0] = True
        np.not_equal(s[1:], s[:-1], out=new[1:])
    uid = np.cumsum(new) - 1
    pos = np.empty(s.size, dtype=np.intp)
    pos[perm] = uid
    out, offset = [], 0
    for p in parts:
        out.append(pos[offset : offset + p.size])
        offset += p.size
    return s[new], out


def count_by_time(
    time: np.ndarray,
    event: np.ndarray,
    group: np.ndarray | None = None,
    k: int = 1,
    weights: np.ndarray | None = None,
) -> TimeCounts:
    """Events and censorings per distinct time (and group), counting not sorting when possible.

    ``time`` validated (>= 0, finite), ``event`` boolean, ``group`` int64 codes 0..k-1.
    """
    if group is None:
        k = 1
    ints = _int_codes(time)
    if ints is not None:
        codes_t, owned, lo, n_bins = ints
        keep, ev, ce = _bincount_counts(codes_t, owned, n_bins, event, group, k, weights)
        times = (keep + lo).astype(np.float64)
        return TimeCounts(times, ev, ce, _sizes(ev, ce))
    if weights is None and group is None:
        times, ev, ce = _sorted_key_counts(time, event)
        return TimeCounts(times, ev[None, :], ce[None, :], np.array([float(time.size)]))
    if weights is None:
        assert group is not None  # both None returned above
        # Partition by group (stable counting sort of small codes), sort each part's keys,
        # then merge the per-group distinct times.
        small = group.astype(np.uint16) if k <= 1 << 16 else group  # radix sort
        order = np.argsort(small, kind="stable")
        bounds = np.searchsorted(small[order], np.arange(k + 1))
        t_sorted = time[order]
        e_sorted = event[order]
        parts = [
            _sorted_key_counts(
                t_sorted[bounds[g] : bounds[g + 1]], e_sorted[bounds[g] : bounds[g + 1]]
            )
            if bounds[g + 1] > bounds[g]
            else (np.empty(0), np.empty(0), np.empty(0))
            for g in range(k)
        ]
        times, positions = _merge_sorted([p[0] for p in parts])
        ev = np.zeros((k, times.size))
        ce = np.zeros((k, times.size))
        for g, ((_, eg, cg), pos) in enumerate(zip(parts, positions, strict=True)):
            ev[g, pos] = eg
            ce[g, pos] = cg
        return TimeCounts(times, ev, ce, _sizes(ev, ce))
    # Weighted, non-integer times: distinct times via np.unique, then one bincount.
    times, inverse = np.unique(time, return_inverse=True)
    keep, ev, ce = _bincount_counts(
        inverse.astype(np.intp), True, times.size, event, group, k, weights
    )
    return TimeCounts(times[keep], ev, ce, _sizes(ev, ce))


def _sizes(ev: np.ndarray, ce: np.ndarray) -> np.ndarray:
    """Group sizes (or weight totals) = all exits, (k,)."""
    return ev.sum(axis=1) + ce.sum(axis=1)


def split_by(codes: np.ndarray, k: int) -> Sequence[np.ndarray]:
    """Row indices of each code 0..k-1 (stable), for looping over a few strata."""
    order = np.argsort(codes, kind="stable")
    bounds = np.searchsorted(codes[order], np.arange(k + 1))
    return [order[bounds[s] : bounds[s + 1]] for s in range(k)]


def check_groups(group: Any, strata: Any, **arrays: np.ndarray) -> tuple[Factor, Factor | None]:
    """Factorise ``group`` (>= 2 levels) and optional ``strata``; check every length agrees."""
    g = factorize(group, "group")
    s = None if strata is None else factorize(strata, "strata")
    check_lengths(**arrays, group=g.codes, **({} if s is None else {"strata": s.codes}))
    if g.levels.size < 2:
        raise ValueError(f"group must have at least two distinct values, got {list(g.levels)}")
    return g, s


def check_design(X: np.ndarray, names: list[str], n_events: int, event_name: str) -> None:
    """Clear errors for inputs a Cox model cannot fit (no events, constant covariate)."""
    if n_events == 0:
        raise ValueError(
            f"no events ({event_name} is 0 in every row): a Cox model needs at least one event"
        )
    span = X.max(axis=0) - X.min(axis=0)
    for j in np.flatnonzero(span == 0):
        raise ValueError(
            f"covariate {names[j]!r} is constant (every value {X[0, j]:g}): its effect "
            "cannot be estimated; drop it"
        )
    Xc = X - X.mean(axis=0)
    if np.linalg.matrix_rank(Xc) < X.shape[1]:
        raise ValueError(
            f"covariates {names} are collinear (one is a combination of the others): "
            "drop the redundant one"
        )
