"""Grouped NumPy reductions over sorted arrays (the vectorised core of the kinetics layer).

Rows are sorted by an integer group code ``0 … n_groups-1``; a group's rows are contiguous.
``starts`` (length ``n_groups + 1``) holds the first row of each group and the total length
at the end, so group ``k`` is ``rows[starts[k]:starts[k+1]]`` (possibly empty). Reductions
use ``ufunc.reduceat`` on the non-empty groups only, so empty groups get a fill value instead
of ``reduceat``'s surprising copy-the-next-element behaviour.
"""

from __future__ import annotations

import numpy as np


def group_starts(codes: np.ndarray, n_groups: int) -> np.ndarray:
    """Start offsets of each group in a code array sorted ascending (length n_groups + 1)."""
    return np.searchsorted(codes, np.arange(n_groups + 1), side="left")


def group_reduce(
    ufunc: np.ufunc, values: np.ndarray, starts: np.ndarray, fill: float
) -> np.ndarray:
    """``ufunc`` reduced over each group (e.g. ``np.maximum``); ``fill`` for empty groups."""
    n_groups = len(starts) - 1
    out = np.full(n_groups, fill, dtype=float)
    counts = np.diff(starts)
    nonempty = counts > 0
    if nonempty.any() and len(values):
        out[nonempty] = ufunc.reduceat(values, starts[:-1][nonempty])
    return out


def group_sum(values: np.ndarray, codes: np.ndarray, n_groups: int) -> np.ndarray:
    """Sum of ``values`` per group code (codes need not be sorted)."""
    return np.bincount(codes, weights=values, minlength=n_groups).astype(float)


def within_group_cumsum(values: np.ndarray, codes: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """Running sum of ``values`` restarting at each group (rows sorted by group)."""
    total = np.cumsum(values, dtype=float)
    before = np.concatenate(([0.0], total))[starts[:-1]]
    return total - before[codes]


def first_in_group(mask: np.ndarray, values: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """The first ``values`` element per group where ``mask`` holds (NaN if none)."""
    idx = np.where(mask, np.arange(len(mask)), len(mask))
    first = group_reduce(np.minimum, idx.astype(float), starts, float(len(mask)))
    out = np.full(len(first), np.nan)
    ok = first < len(mask)
    out[ok] = values[first[ok].astype(np.int64)]
    return out


def last_in_group(mask: np.ndarray, values: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """The last ``values`` element per group where ``mask`` holds (NaN if none)."""
    idx = np.where(mask, np.arange(len(mask)), -1)
    last = group_reduce(np.maximum, idx.astype(float), starts, -1.0)
    out = np.full(len(last), np.nan)
    ok = last >= 0
    out[ok] = values[last[ok].astype(np.int64)]
    return out


def runs_start(ok: np.ndarray, codes: np.ndarray, length: int) -> np.ndarray:
    """True at rows that start a run of ``length`` consecutive ``ok`` rows of one group."""
    n = len(ok)
    out = ok.copy()
    for k in range(1, length):  # loop over the run length (2-7), not over rows
        shifted = np.zeros(n, dtype=bool)
        if k < n:
            shifted[:-k] = ok[k:] & (codes[k:] == codes[:-k])
        out &= shifted
    return out
