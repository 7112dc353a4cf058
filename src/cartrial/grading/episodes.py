"""From graded days to adverse-event episodes (``derive_episodes``).

The daily grades come from ``grade_daily`` (``cartrial.grading.daily``); recorded and
derived episodes are compared by ``compare_episodes`` (``cartrial.grading.compare``).
Both are importable from here as before.

Episodes
    A gap is unknown, never resolution. An episode starts at a day with grade >= 1 (the
    grade the known observations establish) and runs, across days that were not
    charted (up to ``max_gap_days`` in a row) and days whose grade is only a lower
    bound (grade 0, grade_max >= 1), until a day whose grade_max is 0 (resolved: even
    the unknown items could not make it an event). ``resolution_day`` is that day (NaN
    when it was not observed before a longer gap or the end of the data). ``grade`` is
    the highest established grade, ``grade_max`` the highest any day of the episode -
    charted or not - could have had, and ``missing`` lists the days that could raise it
    ("day 4: not charted; day 6: temperature_c"). ``grade_by_day`` lists "day:grade"
    ("day:grade-grade_max" where uncertain); ``source_rows`` names the observation rows
    ("file:row") that were graded.

Scale (issue 16): vectorised over rows (no per-patient or per-episode Python); the
keys are integer codes, the texts are built once per distinct value and joined per
episode in Arrow.
"""

from __future__ import annotations

import numpy as np

from cartrial.cohort.model import COLUMNS, empty_table
from cartrial.grading.compare import compare_episodes
from cartrial.grading.core import GradingInputError
from cartrial.grading.daily import (
    DAILY_COLUMNS,
    TERM_FIELDS,
    TERMS,
    _long_values,
    _sorted_codes,
    _window_any,
    grade_daily,
)

__all__ = [
    "DAILY_COLUMNS",
    "DEFAULT_MAX_GAP_DAYS",
    "TERMS",
    "TERM_FIELDS",
    "TERM_MAX_GRADE",
    "_long_values",
    "_window_any",
    "compare_episodes",
    "derive_episodes",
    "grade_daily",
]

#: the highest grade a day that was not charted could have had, per term (death is a
#: recorded event, so grade 5 is not assumed for an uncharted day; CTCAE anaemia grade 4
#: needs a life-threatening record that daily grading does not use)
TERM_MAX_GRADE: dict[str, int] = {"anemia": 3}
DEFAULT_MAX_GAP_DAYS = 7


def _day_text(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else f"{x:g}"


def derive_episodes(daily_grades, max_gap_days: int = DEFAULT_MAX_GAP_DAYS):
    """Merge the graded days of ``grade_daily`` into AE episodes (see module doc).

    A day not charted or a lower-bound day never ends an episode; only a day with
    grade_max 0 does (``resolution_day``), or more than ``max_gap_days`` uncharted days
    in a row (resolution unknown, NaN). Returns the cohort ``adverse_events`` columns
    (``derived`` = True, ``serious`` and ``organ`` missing) plus ``grade_max``,
    ``missing`` (days and items that could raise the grade), ``grade_by_day``,
    ``source_rows`` and the provenance columns (``source_file`` =
    "derived:observations", ``source_row`` <NA>).
    """
    import pandas as pd

    cols = [
        *COLUMNS["adverse_events"],
        "grade_max",
        "missing",
        "grade_by_day",
        "source_rows",
        "source_file",
        "source_row",
    ]
    if (
        isinstance(max_gap_days, bool)
        or not isinstance(max_gap_days, int | np.integer)
        or max_gap_days < 0
    ):
        raise GradingInputError("max_gap_days", max_gap_days, "a whole number of days >= 0")
    need = ("patient_id", "day", "term", "system", "grade")
    miss = [c for c in need if c not in daily_grades.columns]
    if miss:
        raise GradingInputError(
            "daily_grades",
            list(daily_grades.columns),
            "the columns of grade_daily: " + ", ".join(need),
        )
    graded = np.flatnonzero(daily_grades["grade"].notna().to_numpy(dtype=bool))
    if not len(graded):
        return _empty_ae(cols)
    d = daily_grades.iloc[graded]
    # sorted by patient, term, system, day (stable) on integer codes of the values
    p_code, p_uniq = _sorted_codes(d["patient_id"], runs=True)
    t_code, t_uniq = _sorted_codes(d["term"], runs=True)
    s_code, s_uniq = _sorted_codes(d["system"], runs=True)
    key = (p_code * len(t_uniq) + t_code) * len(s_uniq) + s_code
    day = d["day"].to_numpy(dtype=float)
    in_order = bool(
        len(key) < 2
        or (
            np.all(key[1:] >= key[:-1])
            and np.all((key[1:] != key[:-1]) | (day[1:] >= day[:-1]))
            and not np.isnan(day).any()
        )
    )
    order = np.arange(len(key)) if in_order else np.lexsort((day, key))
    key, day = key[order], day[order]
    g = d["grade"].to_numpy(dtype=float)[order].astype(int)
    gmax = (
        d["grade_max"].astype("Int64").to_numpy(dtype=float, na_value=np.nan)[order]
        if "grade_max" in d.columns
        else np.full(len(g), np.nan)
    )
    gmax = np.maximum(np.where(np.isnan(gmax), g, gmax).astype(int), g)
    n = len(g)
    # same patient, term and system as written (``str``) as the row before
    p_str = _str_codes(p_uniq)[p_code[order]]
    t_str = _str_codes(t_uniq)[t_code[order]]
    s_str = _str_codes(s_uniq)[s_code[order]]
    same_key = np.zeros(n, dtype=bool)
    same_key[1:] = (p_str[1:] == p_str[:-1]) & (t_str[1:] == t_str[:-1]) & (s_str[1:] == s_str[:-1])
    gap = np.zeros(n)
    gap[1:] = day[1:] - day[:-1] - 1  # uncharted whole days in between
    # A block of rows runs until a new key, a too-long gap, or a resolved day (grade_max
    # 0, which ends the block and the episode in it). The episode of a block starts at
    # its first day with grade >= 1 (earlier days are possible but unproven onsets) and
    # holds every later unresolved day.
    resolved = gmax == 0
    start_block = np.ones(n, dtype=bool)
    start_block[1:] = ~(same_key[1:] & (gap[1:] <= max_gap_days)) | resolved[:-1]
    block = np.cumsum(start_block) - 1
    block_first = np.flatnonzero(start_block)[block]
    last_onset = np.maximum.accumulate(np.where(g >= 1, np.arange(n), -1))
    proven = last_onset >= block_first  # some day of the block so far has grade >= 1
    member = proven & ~resolved
    if not member.any():
        return _empty_ae(cols)
    first = member.copy()
    first[1:] &= ~(member[:-1] & (block[1:] == block[:-1]))
    episode = np.cumsum(first) - 1  # episode number of each member row
    rows_in = np.flatnonzero(member)
    ep_of = episode[rows_in]
    k = int(ep_of[-1]) + 1
    starts = np.flatnonzero(first)
    ep_start = np.flatnonzero(np.diff(np.r_[-1, ep_of]))  # first member row of each episode
    last_pos = np.append(ep_start[1:] - 1, len(rows_in) - 1)
    lasts = rows_in[last_pos]
    # the resolved day closing an episode is the row right after its last day, same block
    after = lasts + 1
    closes = after < n
    closes[closes] = resolved[after[closes]] & (block[after[closes]] == block[lasts[closes]])
    resolution = np.where(closes, day[np.minimum(after, n - 1)], np.nan)
    top_of = np.asarray([TERM_MAX_GRADE.get(str(t), 4) for t in t_uniq], dtype=int)
    top = top_of[t_code[order][starts]]
    inner_gap = member & ~first & (gap >= 1)
    grade = np.maximum.reduceat(g[rows_in], ep_start)
    gmax_ep = np.maximum.reduceat(gmax[rows_in], ep_start)
    has_gap = np.bincount(episode[inner_gap], minlength=k) > 0
    tail_gap = closes & (resolution - day[lasts] > 1)
    gmax_ep = np.where(has_gap | tail_gap, np.maximum(gmax_ep, top), gmax_ep)

    # text columns: one string per distinct value, joined per episode in Arrow
    d_in, g_in, gmax_in = day[rows_in], g[rows_in], gmax[rows_in]
    day_uniq, day_code = np.unique(d_in, return_inverse=True)
    day_code = day_code.reshape(-1)
    day_txt = np.asarray([_day_text(x) for x in day_uniq], dtype=object)
    # "day:grade" or "day:grade-grade_max", built once per distinct triple
    lo_g, base = int(g_in.min()), int(gmax_in.max() - g_in.min()) + 1
    triple = (day_code.astype(np.int64) * base + (g_in - lo_g)) * base + (gmax_in - lo_g)
    t_uniq3, t_inv = np.unique(triple, return_inverse=True)
    by_day_txt = []
    for x in t_uniq3.tolist():
        dc, gg, gm = x // base // base, x // base % base + lo_g, x % base + lo_g
        by_day_txt.append(f"{day_txt[dc]}:{gg}" + (f"-{gm}" if gm > gg else ""))
    by_day = np.asarray(by_day_txt, dtype=object)[t_inv.reshape(-1)]
    notes = np.full(len(rows_in), "", dtype=object)
    gap_rows = np.flatnonzero(inner_gap[rows_in])  # rows that follow uncharted days
    if len(gap_rows):
        notes[gap_rows] = _not_charted_between(day[rows_in[gap_rows] - 1], d_in[gap_rows], True)
    items = _text(d, "missing", order)
    item = np.flatnonzero((gmax_in > g_in) & (items[rows_in] != ""))
    if len(item):
        item_txt = "day " + day_txt[day_code[item]] + ": " + items[rows_in[item]]
        notes[item] = np.where(notes[item] == "", item_txt, notes[item] + "; " + item_txt)
    tails = np.flatnonzero(tail_gap)  # uncharted days between last day and resolution
    if len(tails):
        tail = _not_charted_between(day[lasts[tails]], resolution[tails], False)
        j = last_pos[tails]
        notes[j] = np.where(notes[j] == "", tail, notes[j] + "; " + tail)
    srcs = _text(d, "source_rows", order)[rows_in]

    out = pd.DataFrame(
        {
            "patient_id": pd.array(_as_str(p_uniq)[p_code[order][starts]], dtype="string"),
            "term": pd.array(_as_str(t_uniq)[t_code[order][starts]], dtype="string"),
            "onset_day": day[starts].astype(float),
            "resolution_day": resolution.astype(float),
            "grade": pd.array(grade, dtype="Int64"),
            "system": pd.array(_as_str(s_uniq)[s_code[order][starts]], dtype="string"),
            "serious": pd.array([pd.NA] * k, dtype="boolean"),
            "organ": pd.array([pd.NA] * k, dtype="string"),
            "derived": pd.array([True] * k, dtype="boolean"),
            "grade_max": pd.array(gmax_ep, dtype="Int64"),
            "missing": _per_episode(notes, ep_of, k, "; "),
            "grade_by_day": _per_episode(by_day, ep_of, k, ","),
            "source_rows": _per_episode(srcs, ep_of, k, ";"),
            "source_file": pd.array(["derived:observations"] * k, dtype="string"),
            "source_row": pd.array([pd.NA] * k, dtype="Int64"),
        }
    )
    return out[cols].sort_values(["patient_id", "term", "onset_day"]).reset_index(drop=True)


def _as_str(uniques: np.ndarray) -> np.ndarray:
    """The values as the text columns of the result hold them (``str``)."""
    return np.asarray([str(u) for u in uniques], dtype=object)


def _str_codes(uniques: np.ndarray) -> np.ndarray:
    """Codes of the values compared as text (two values with one ``str`` are one)."""
    import pandas as pd

    return pd.factorize(_as_str(uniques))[0]


def _text(d, column: str, order: np.ndarray) -> np.ndarray:
    """A text column of the daily grades ("" for missing), in ``order``."""
    import pandas as pd

    if column not in d.columns:
        return np.full(len(order), "", dtype=object)
    values = d[column].to_numpy(dtype=object)[order]
    missing = pd.isna(values)
    if missing.any():
        values[missing] = ""
    if pd.api.types.infer_dtype(values, skipna=False) != "string":
        values = np.asarray([str(v) for v in values], dtype=object)
    return values


def _per_episode(text: np.ndarray, ep_of: np.ndarray, k: int, sep: str):
    """The non-empty ``text`` of each episode's rows joined by ``sep`` ("" if none)."""
    import pandas as pd
    import pyarrow as pa
    import pyarrow.compute as pc

    keep = np.flatnonzero(text != "")
    offsets = np.zeros(k + 1, dtype=np.int64)
    np.cumsum(np.bincount(ep_of[keep], minlength=k), out=offsets[1:])
    values = pa.array(text[keep], type=pa.large_string())
    lists = pa.LargeListArray.from_arrays(pa.array(offsets), values)
    joined = pc.binary_join(lists, pa.scalar(sep, pa.large_string()))
    return pd.array(joined.to_numpy(zero_copy_only=False), dtype="string")


def _not_charted_between(prev: np.ndarray, day: np.ndarray, whole_only: bool) -> np.ndarray:
    """ "day(s) 3,4: not charted" for the days strictly between ``prev`` + 1 (included)
    and ``day`` of each pair, built once per distinct pair."""
    pairs, inv = np.unique(np.c_[prev, day], axis=0, return_inverse=True)
    texts = [_not_charted(np.arange(a + 1, b), whole_only) for a, b in pairs]
    return np.asarray(texts, dtype=object)[inv.reshape(-1)]


def _not_charted(days: np.ndarray, whole_only: bool = True) -> str:
    """ "day(s) 3,4: not charted" for the (whole) days in ``days``."""
    whole = days[days == np.floor(days)] if whole_only else days
    return (
        "day"
        + ("s " if len(whole) > 1 else " ")
        + ",".join(_day_text(x) for x in whole)
        + ": not charted"
    )


def _empty_ae(cols):
    import pandas as pd

    base = empty_table("adverse_events")
    for c in ("grade_max",):
        base[c] = pd.Series(dtype="Int64")
    for c in ("missing", "grade_by_day", "source_rows"):
        base[c] = pd.Series(dtype="string")
    return base[cols]
