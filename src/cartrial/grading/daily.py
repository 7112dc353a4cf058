"""Daily grading: the long ``observations`` table reshaped to one row per patient-day and
graded for every term at once (``grade_daily``).

Observations
    Analytes are the canonical names of ``cartrial.cohort.vocab.ANALYTES`` (aliases
    accepted) plus a few grading-only names (hypotension, fever_masked, antipyretics,
    bullae, upper_gi, stool_episodes, severe_abdominal_pain, bloody_stool, crs_death).
    ``value`` is a float: categorical analytes (oxygen, consciousness, seizure,
    cerebral_edema) use the integer codes of ``cartrial.grading.codes``; yes/no
    analytes use 1/0. An optional ``value_text`` column holding the word (e.g.
    "high_flow", "yes") is used where present. Day = days since infusion, floored to
    the calendar day; several values of one analyte on one day keep the worst.

State across days (documented choices)
    * Fever masking (ASTCT 2019, Lee et al. BBMT 2019;25:625, Table 3 footnote: "in
      patients who have CRS then receive antipyretic or anticytokine therapy such as
      tocilizumab or steroids, fever is no longer required to grade subsequent CRS
      severity"). ASTCT states no duration, so the waiver is a protocol parameter:
      from a day tocilizumab, steroids or an antipyretic is given after a fever (same
      CRS stretch), fever is not required for ``fever_mask_days`` days (default 14;
      None = until the stretch ends). The stretch ends only at a day that is CRS grade
      0 *even with masking and every unknown item at its worst* (grade_max 0). A day
      that was not charted, or a day whose grade is only a lower bound, does not end
      it: a missing day keeps the masking state. Therapy given with no fever seen yet
      while some temperature of the stretch is unknown leaves masking unknown. A
      patient without any therapy record has masking unknown (never assumed absent),
      unless ``fever_masked`` rows are given.
    * CTCAE laboratory terms (ALT/AST/bilirubin/creatinine increased, fibrinogen
      decreased): the baseline is each patient's latest value from day -30 to day 0
      (``baseline_window``); without one the baseline is unknown (bounded, missing).
    * Units: a ``unit`` column is honoured (cells/uL, g/L, F, umol/L ... converted to
      the canonical unit of ``grading.fields``); a blank unit with a value that only
      makes sense in another unit is an error naming the row, never a grade.
    * Weight is carried forward (and taken from ``patients.weight_kg``); age from
      ``patients.age_years``.
    * Stool volume is the mean of the available daily volumes of the last
      ``stool_average_days`` (default 3) days, as MAGIC asks for 3-day averages.

Scale (issue 16). No per-patient or per-row Python: the analyte, patient and source
columns are reduced to integer codes (a categorical or Arrow column's dictionary, a
hash of the distinct values otherwise), the rows are ordered once by an integer
(patient, day, field) key, the worst value of each patient-day-field is the last of its
group, and the provenance text ("file:row;…") is joined per patient-day in Arrow.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np

from cartrial.cohort.vocab import analyte_lookup
from cartrial.grading import _system as system_name
from cartrial.grading import codes, crs, ctcae, gvhd, icans
from cartrial.grading.core import FIELDS, Fill, GradingInputError, bound, parse_column

TERMS = (
    "CRS",
    "ICANS",
    "aGVHD",
    "neutropenia",
    "thrombocytopenia",
    "lymphopenia",
    "leukopenia",
    "anemia",
    # CTCAE v5.0 laboratory terms graded against a per-patient baseline
    "alt_increased",
    "ast_increased",
    "bilirubin_increased",
    "creatinine_increased",
    "fibrinogen_decreased",
)
#: days whose latest value is the baseline of the CTCAE laboratory terms (day 0 =
#: infusion): the last value before or on the infusion day, at most 30 days before
BASELINE_WINDOW = (-30.0, 0.0)
#: analyte (canonical or extra) -> grading field
ANALYTE_FIELDS: dict[str, str] = {
    "temperature": "temperature_c",
    "hypotension": "hypotension",
    "vasopressors": "vasopressors",
    "vasopressin": "vasopressin",
    "oxygen": "oxygen",
    "o2_flow": "o2_flow_l_min",
    "fio2": "fio2",
    "crs_death": "crs_death",
    "ice_score": "ice_score",
    "capd_score": "capd_score",
    "cartox10_score": "cartox10_score",
    "consciousness": "consciousness",
    "seizure": "seizure",
    "motor_weakness": "motor_weakness",
    "cerebral_edema": "cerebral_edema",
    "skin_bsa_pct": "skin_bsa_pct",
    "bullae": "bullae",
    "bilirubin": "bilirubin_mg_dl",
    "upper_gi": "upper_gi",
    "stool_ml_day": "stool_ml_day",
    "stool_episodes": "stool_episodes",
    "severe_abdominal_pain": "severe_abdominal_pain",
    "bloody_stool": "bloody_stool",
    "weight": "weight_kg",
    "anc": "anc",
    "platelets": "platelets",
    "lymphocytes": "lymphocytes",
    "wbc": "wbc",
    "hemoglobin": "hemoglobin_g_dl",
    "fever_masked": "fever_masked",
    "creatinine": "creatinine_mg_dl",
    "alt": "alt_u_l",
    "ast": "ast_u_l",
    "fibrinogen": "fibrinogen_mg_dl",
    "ferritin": "ferritin_ng_ml",
    "crp": "crp_mg_l",
    "ldh": "ldh_u_l",
}
THERAPY_ANALYTES = ("tocilizumab", "steroids", "antipyretics")
#: the field of the therapy rows (tocilizumab, steroids, antipyretics: given 1 / not 0)
THERAPY = "_therapy"
TERM_FIELDS: dict[str, tuple[str, ...]] = {
    "CRS": (
        "temperature_c",
        "hypotension",
        "vasopressors",
        "vasopressin",
        "oxygen",
        "o2_flow_l_min",
        "fio2",
        "crs_death",
    ),
    "ICANS": (
        "ice_score",
        "capd_score",
        "cartox10_score",
        "consciousness",
        "seizure",
        "motor_weakness",
        "cerebral_edema",
    ),
    "aGVHD": (
        "skin_bsa_pct",
        "bullae",
        "bilirubin_mg_dl",
        "upper_gi",
        "stool_ml_day",
        "stool_episodes",
        "severe_abdominal_pain",
        "bloody_stool",
    ),
    "neutropenia": ("anc",),
    "thrombocytopenia": ("platelets",),
    "lymphopenia": ("lymphocytes",),
    "leukopenia": ("wbc",),
    "anemia": ("hemoglobin_g_dl",),
    "alt_increased": ("alt_u_l",),
    "ast_increased": ("ast_u_l",),
    "bilirubin_increased": ("bilirubin_mg_dl",),
    "creatinine_increased": ("creatinine_mg_dl",),
    "fibrinogen_decreased": ("fibrinogen_mg_dl",),
}
#: the observation rows a term's daily grade names (``source_rows``), in this order
TERM_SOURCES: dict[str, tuple[str, ...]] = {
    t: (*f, THERAPY) if t == "CRS" else f for t, f in TERM_FIELDS.items()
}
#: how several values of one field on one day are reduced: "max", "min" or a severity
#: rank table for categories (ASTCT grade of each code)
WORST_LOW = {
    "ice_score",
    "cartox10_score",
    "anc",
    "platelets",
    "lymphocytes",
    "wbc",
    "hemoglobin_g_dl",
}
CATEGORY_RANK = {
    "oxygen": crs.ASTCT_DEVICE_GRADE,
    "consciousness": np.arange(5),
    "seizure": icans.ASTCT_SEIZURE_GRADE,
    "cerebral_edema": icans.ASTCT_EDEMA_GRADE,
}
DAILY_COLUMNS = (
    "patient_id",
    "day",
    "term",
    "system",
    "grade",
    "grade_max",
    "missing",
    "source_rows",
)
DEFAULT_FEVER_MASK_DAYS = 14.0


def _field_order() -> tuple[str, ...]:
    """Every field once, in an order that lists each term's sources in their order."""
    order: list[str] = []
    for term in TERMS:
        order += [f for f in TERM_SOURCES[term] if f not in order]
    return (*order, *(f for f in ANALYTE_FIELDS.values() if f not in order))


#: field codes of the long table (position = code)
FIELD_ORDER = _field_order()


def _lookup_analyte() -> dict[str, str]:

    out = dict(analyte_lookup())
    for extra in (*ANALYTE_FIELDS, *THERAPY_ANALYTES, "antipyretic"):
        out.setdefault(extra.replace("_", " "), extra)
    out["antipyretic"] = "antipyretics"
    return out


def _norm(text: str) -> str:
    return re.sub(r"[\s_\-]+", " ", str(text).strip().lower())


# -------------------------------------------------------------------------------------
# integer codes of text columns


def _codes(column, runs: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """``(codes, uniques)`` with ``column[i] == uniques[codes[i]]`` (code -1: missing).

    A categorical or Arrow column gives its dictionary at no hashing cost; otherwise the
    distinct values are hashed, once per run of equal values when ``runs`` (a column
    sorted or grouped by that value, such as ``patient_id``)."""
    import pandas as pd

    dtype = getattr(column, "dtype", None)
    if isinstance(dtype, pd.CategoricalDtype):
        return (
            np.asarray(column.cat.codes, dtype=np.intp),
            column.cat.categories.to_numpy(dtype=object),
        )
    if str(getattr(dtype, "storage", "")) == "pyarrow" or isinstance(dtype, pd.ArrowDtype):
        import pyarrow as pa

        enc = pa.chunked_array(pa.array(column.array)).combine_chunks().dictionary_encode()
        idx = enc.indices.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.intp)
        return idx, np.asarray(enc.dictionary.to_pylist(), dtype=object)
    # the object cells as stored (``to_numpy`` would scan every cell for missing values)
    values = np.asarray(getattr(column, "array", column), dtype=object)
    n = len(values)
    if runs and n > 1:
        head = np.empty(n, dtype=bool)
        head[0] = True
        try:
            np.not_equal(values[1:], values[:-1], out=head[1:])
        except TypeError:  # pd.NA cannot be compared: missing as None (factorized as -1)
            values = values.copy()
            values[pd.isna(values)] = None
            np.not_equal(values[1:], values[:-1], out=head[1:])
        starts = np.flatnonzero(head)
        if len(starts) * 4 < n:
            c, uniques = pd.factorize(values[starts])
            return np.repeat(c.astype(np.intp), np.diff(np.append(starts, n))), np.asarray(
                uniques, dtype=object
            )
    c, uniques = pd.factorize(values)
    return c.astype(np.intp), np.asarray(uniques, dtype=object)


def _sorted_codes(column, runs: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """``_codes`` renumbered in the sort order of the values (missing last), so that
    sorting by code sorts as ``DataFrame.sort_values`` does by value."""
    import pandas as pd

    c, uniques = _codes(column, runs)
    if (c < 0).any():
        c = np.where(c < 0, len(uniques), c)
        uniques = np.append(uniques, pd.NA)
    order = np.asarray(pd.Series(uniques, dtype=object).sort_values(kind="stable").index)
    rank = np.empty(len(order), dtype=np.intp)
    rank[order] = np.arange(len(order))
    return rank[c], uniques[order]


# -------------------------------------------------------------------------------------
# the long table: graded rows only, as arrays


@dataclass
class _Long:
    """The graded observation rows (value known, analyte graded), in table order."""

    pos: np.ndarray  # position of each row in ``observations``
    field: np.ndarray  # code into FIELD_ORDER
    value: np.ndarray  # float, canonical unit
    day: np.ndarray  # day since infusion floored to the calendar day


def _parse_long(observations) -> _Long:
    """The graded rows of ``observations``: grading field and parsed float value."""
    import pandas as pd

    need = ("patient_id", "day", "analyte", "value")
    miss = [c for c in need if c not in observations.columns]
    if miss:
        raise GradingInputError(
            "observations",
            list(observations.columns),
            f"columns {', '.join(need)} (missing: {', '.join(miss)})",
        )
    lookup = _lookup_analyte()
    code_of = {f: k for k, f in enumerate(FIELD_ORDER)}
    a_codes, a_uniq = _codes(observations["analyte"])
    names = [None if a is None or a is pd.NA else lookup.get(_norm(a)) for a in a_uniq]
    fmap = np.array(
        [
            code_of[THERAPY]
            if n in THERAPY_ANALYTES
            else code_of.get(ANALYTE_FIELDS.get(n, ""), -1)
            if n
            else -1
            for n in names
        ]
        + [-1],
        dtype=np.int16,
    )
    field = fmap[a_codes]  # code -1 (missing analyte) -> the trailing -1
    pos = np.flatnonzero(field >= 0)
    field = field[pos]

    def take(col: str):
        return observations[col].iloc[pos]

    day_col = take("day")
    day = (
        day_col.to_numpy(dtype=float)
        if pd.api.types.is_float_dtype(day_col.dtype)
        else pd.to_numeric(day_col, errors="coerce").to_numpy(dtype=float)
    )
    raw_num = pd.to_numeric(take("value"), errors="coerce").to_numpy(dtype=float)
    text = take("value_text") if "value_text" in observations.columns else None
    if text is not None:  # the cells as stored, and where they are blank (one scan)
        text_cells = np.asarray(text.array, dtype=object)
        text_has = ~pd.isna(text_cells)
    unit_codes = _codes(take("unit")) if "unit" in observations.columns else None
    values = np.full(len(pos), np.nan)
    by_field = np.argsort(field, kind="stable")
    bounds = np.searchsorted(field[by_field], np.arange(len(FIELD_ORDER) + 1))
    present = np.flatnonzero(bounds[1:] > bounds[:-1])
    # fields in order of first appearance (the first bad value found is the one reported)
    for k in present[np.argsort(by_field[bounds[present]])]:
        f = FIELD_ORDER[k]
        m = by_field[bounds[k] : bounds[k + 1]]
        if f == THERAPY:
            given = raw_num[m] > 0
            if text is not None:
                t = text.iloc[m].astype("string").str.strip().str.lower()
                given = np.where(
                    t.notna().to_numpy(dtype=bool),
                    t.isin(["yes", "true", "1", "given", "y"]).to_numpy(dtype=bool),
                    given,
                )
                unknown = t.isna().to_numpy(dtype=bool) & np.isnan(raw_num[m])
            else:
                unknown = np.isnan(raw_num[m])
            values[m] = np.where(unknown, np.nan, given.astype(float))
            continue
        src_vals: Any = raw_num[m]
        if text is not None:
            has = text_has[m]
            if has.any():
                src_vals = np.where(has, text_cells[m], raw_num[m].astype(object))
        units = None
        if unit_codes is not None:
            u_uniq = np.append(unit_codes[1], np.array([None], dtype=object))
            units = (unit_codes[0][m], u_uniq)
        # parse each distinct (value, unit) pair once and broadcast (10⁷ rows, few pairs)
        pair, first = _distinct_pairs(src_vals, None if units is None else units[0])
        try:
            parsed = parse_column(
                f,
                np.asarray(src_vals)[first],
                where="observation",
                units=None if units is None else units[1][units[0][first]],
            )
            values[m] = np.asarray(parsed, dtype=float)[pair]
        except GradingInputError as exc:
            i = int(exc.where.split()[-1]) if exc.where else 0
            r = int(pos[m[first[i]]])
            raise GradingInputError(f, exc.value, exc.expected, _where(observations, r)) from None
    bad_day = np.isnan(day) & ~np.isnan(values)
    if bad_day.any():
        r = int(pos[np.flatnonzero(bad_day)[0]])
        raise GradingInputError(
            "day",
            observations["day"].iloc[r],
            "a day since infusion",
            f"observations {_source_text(observations, np.array([r]))[0].as_py()}",
        )
    ok = ~np.isnan(values)
    return _Long(pos[ok], field[ok], values[ok], np.floor(day[ok]))


def _where(observations, r: int) -> str:
    pid, day, analyte = (observations[c].iloc[r] for c in ("patient_id", "day", "analyte"))
    return (
        f"observations {_source_text(observations, np.array([r]))[0].as_py()} "
        f"(patient {pid}, day {day}, analyte {analyte})"
    )


def _distinct_pairs(values, unit_codes) -> tuple[np.ndarray, np.ndarray]:
    """``(codes, first)``: the distinct (value, unit) pair of each row, numbered by first
    appearance, and the first row holding each pair (``unit_codes``: -1 = no unit)."""
    import pandas as pd

    v_codes, _ = pd.factorize(np.asarray(values), use_na_sentinel=False)
    key = v_codes.astype(np.int64)
    if unit_codes is not None:
        u = np.asarray(unit_codes, dtype=np.int64) + 1
        key = key * (int(u.max(initial=0)) + 1) + u
    pair, _ = pd.factorize(key)
    first = np.full(int(pair.max(initial=-1)) + 1, len(pair), dtype=np.intp)
    np.minimum.at(first, pair, np.arange(len(pair)))
    return pair, first


def _source_text(observations, pos: np.ndarray):
    """ "file:row" of the rows at ``pos`` ("?" for a blank part; "row N" = position N
    without source columns), as an Arrow string array."""
    import pandas as pd
    import pyarrow as pa
    import pyarrow.compute as pc

    text = pa.large_string()  # 10⁷ texts may pass 2 GB: 64-bit offsets
    if not {"source_file", "source_row"} <= set(observations.columns):
        return pc.binary_join_element_wise(
            pa.scalar("row", text),
            pa.array(np.asarray(pos, dtype=np.int64)).cast(text),
            pa.scalar(" ", text),
        )
    f_codes, f_uniq = _codes(observations["source_file"].iloc[pos], runs=True)
    f_text = pd.Series([*f_uniq, None], dtype=object).astype("string").fillna("?")
    files: Any
    if len(f_uniq) == 1 and f_codes.min(initial=0) == 0:  # one file: a scalar
        files = pa.scalar(str(f_text.iloc[0]), text)
    else:
        files = pa.array(np.asarray(f_text, dtype=object), type=text).take(
            pa.array(np.where(f_codes < 0, len(f_uniq), f_codes))
        )
    rows = observations["source_row"].iloc[pos]
    if pd.api.types.is_integer_dtype(rows.dtype):
        row_text = pa.Array.from_pandas(rows).cast(text)
    else:
        row_text = pa.array(rows.astype("string").to_numpy(dtype=object), type=text)
    return pc.binary_join_element_wise(
        files, row_text.fill_null(pa.scalar("?", text)), pa.scalar(":", text)
    )


def _long_values(observations):
    """The graded observation rows as a table (index = position in ``observations``):
    the used columns plus ``_field``, ``_src`` ("file:row"), ``_v`` (parsed value) and
    ``_day`` (floored day)."""
    long = _parse_long(observations)
    used = [
        c
        for c in ("patient_id", "day", "analyte", "value", "value_text", "unit")
        + ("source_file", "source_row")
        if c in observations.columns
    ]
    out = observations[used].iloc[long.pos].set_axis(long.pos)
    out["_field"] = np.asarray(FIELD_ORDER, dtype=object)[long.field]
    out["_src"] = _source_text(observations, long.pos).to_numpy(zero_copy_only=False)
    out["_v"] = long.value
    out["_day"] = long.day
    return out


# -------------------------------------------------------------------------------------
# one row per patient-day


@dataclass
class _Wide:
    """One row per patient-day, sorted by patient (in ``patient_id`` sort order) and day."""

    pcode: np.ndarray  # patient code per row (index into ``patients``)
    patients: np.ndarray  # patient_id values, sorted
    day: np.ndarray
    cols: dict[str, np.ndarray]  # the worst value of each field that has any value
    row_day: np.ndarray  # patient-day (wide row) of each sorted long row
    row_field: np.ndarray  # field code of each sorted long row
    sources: Any  # Arrow "file:row" of each sorted long row

    def col(self, name: str) -> np.ndarray:
        got = self.cols.get(name)
        return np.full(len(self.day), np.nan) if got is None else got


def _rank(long: _Long) -> np.ndarray:
    """Severity rank of each value within its field (higher = worse)."""
    rank = long.value.copy()
    for f in WORST_LOW:
        m = long.field == FIELD_ORDER.index(f)
        rank[m] = -rank[m]
    for f, table in CATEGORY_RANK.items():
        m = long.field == FIELD_ORDER.index(f)
        if m.any():
            code = long.value[m].astype(int)
            rank[m] = table[code] * 100 + code
    return rank


def _daily_wide(observations, long: _Long) -> _Wide:
    """One row per patient-day with the worst value of each field (vectorised)."""
    pcode_l, patients = _sorted_codes(observations["patient_id"].iloc[long.pos], runs=True)
    n_f = len(FIELD_ORDER)
    lo, hi = (float(long.day.min()), float(long.day.max())) if len(long.day) else (0.0, 0.0)
    span = hi - lo + 1
    if (len(patients) + 1) * span * n_f < 2**62:
        key = (pcode_l * np.int64(span) + (long.day - lo).astype(np.int64)) * n_f + long.field
        order = np.argsort(key, kind="stable")
        key = key[order]
        group_start = np.r_[True, key[1:] != key[:-1]]
        pd_key = key // n_f
        day_start = np.r_[True, pd_key[1:] != pd_key[:-1]]
    else:  # days too far apart for one integer key
        order = np.lexsort((long.field, long.day, pcode_l))
        p, d, f = pcode_l[order], long.day[order], long.field[order]
        day_start = np.r_[True, (p[1:] != p[:-1]) | (d[1:] != d[:-1])]
        group_start = day_start | np.r_[True, f[1:] != f[:-1]]
    group = np.cumsum(group_start) - 1
    sizes = np.bincount(group)
    multi = sizes[group] > 1
    if multi.any():  # several values of one field on one day: worst last, ties in order
        idx = np.flatnonzero(multi)
        sub = np.lexsort((_rank(long)[order[idx]], group[idx]))
        order[idx] = order[idx[sub]]
    row_day = np.cumsum(day_start) - 1
    firsts = np.flatnonzero(day_start)
    last = np.flatnonzero(np.r_[group_start[1:], True])  # the worst row of each group
    field_s = long.field[order]
    cols: dict[str, np.ndarray] = {}
    n_days = len(firsts)
    for k in np.unique(field_s[last]):
        at = last[field_s[last] == k]
        col = np.full(n_days, np.nan)
        col[row_day[at]] = long.value[order[at]]
        cols[FIELD_ORDER[k]] = col
    return _Wide(
        pcode=pcode_l[order[firsts]],
        patients=patients,
        day=long.day[order[firsts]],
        cols=cols,
        row_day=row_day,
        row_field=field_s,
        sources=_source_text(observations, long.pos[order]),
    )


def _term_sources(wide: _Wide, term: str, rows: np.ndarray) -> np.ndarray:
    """ "file:row;…" of the observation rows of ``term`` on each patient-day in ``rows``:
    in the term's field order, the rows of one field from the least to the most severe
    value (table order for ties)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    codes_ = [FIELD_ORDER.index(f) for f in TERM_SOURCES[term]]
    sel = np.flatnonzero(np.isin(wide.row_field, codes_))
    day_of = wide.row_day[sel]
    start = np.flatnonzero(np.r_[True, day_of[1:] != day_of[:-1]])
    offsets = pa.array(np.append(start, len(sel)).astype(np.int64), type=pa.int64())
    texts = wide.sources.take(pa.array(sel))
    joined = pc.binary_join(
        pa.LargeListArray.from_arrays(offsets, texts), pa.scalar(";", pa.large_string())
    )
    if len(start) != len(rows) or (day_of[start] != rows).any():
        joined = joined.take(pa.array(np.searchsorted(day_of[start], rows)))
    return joined.to_numpy(zero_copy_only=False)


# -------------------------------------------------------------------------------------
# state across days


def _ffill_within(pcode: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Forward fill of NaN within each patient (rows sorted by patient)."""
    i = np.where(~np.isnan(values), np.arange(len(values)), -1)
    np.maximum.accumulate(i, out=i)
    ok = (i >= 0) & (pcode[np.maximum(i, 0)] == pcode)
    return np.where(ok, values[np.maximum(i, 0)], np.nan)


def _stool_average(wide: _Wide, days_back: int) -> None:
    """Trailing mean of the daily stool volumes of the last ``days_back`` days."""
    import pandas as pd

    stool = wide.cols.get("stool_ml_day")
    if stool is None or days_back <= 1:
        return
    at = np.flatnonzero(~np.isnan(stool))
    if not len(at):
        return
    s = pd.DataFrame(
        {
            "patient_id": wide.pcode[at],
            "_td": pd.to_timedelta(wide.day[at], unit="D"),
            "stool_ml_day": stool[at],
        }
    )
    avg = s.set_index("_td").groupby("patient_id")["stool_ml_day"].rolling(f"{days_back}D").mean()
    stool = stool.copy()
    stool[at] = avg.to_numpy()  # groups in code order = the rows' order
    wide.cols["stool_ml_day"] = stool


def _window_any(pid: np.ndarray, day: np.ndarray, flag: np.ndarray, back: float) -> np.ndarray:
    """Per row: does ``flag`` hold on some row of the same patient with a day in
    [day - back, day]? (``day`` sorted within patient; vectorised by searchsorted on
    the running count of flagged rows.)"""
    n = len(day)
    if n == 0:
        return np.zeros(0, dtype=bool)
    key = np.cumsum(np.r_[True, pid[1:] != pid[:-1]]).astype(float)
    # one sortable axis: patient block offset + day (blocks spaced wider than any window)
    span = (np.nanmax(day) - np.nanmin(day)) + (0 if math.isinf(back) else back) + 2
    axis = key * span + (day - np.nanmin(day))
    lo_axis = np.where(math.isinf(back), key * span, axis - back)
    count = np.cumsum(flag.astype(int))
    start = np.searchsorted(axis, lo_axis, side="left")
    before = np.where(start > 0, count[np.maximum(start - 1, 0)], 0)
    return (count - before) > 0


def _fever_masked(wide: _Wide, data: dict[str, np.ndarray], mask_days: float | None) -> np.ndarray:
    """ASTCT fever masking per patient-day (see module doc): 1 masked, 0 not, NaN
    unknown.

    Masked for sure when tocilizumab/steroids/an antipyretic was given within the last
    ``mask_days`` days, with a known fever (>= 38.0 °C) in the ``mask_days`` before that
    dose. Possibly masked when such a dose *could* have been given: on a day that was
    not charted, or with the fever before it unknown (temperature not recorded, or a
    day not charted). A charted day without a therapy row means no therapy that day,
    as medication records list doses given, except for a patient with no therapy record
    at all (masking unknown throughout).
    """
    pid, day = wide.pcode, wide.day
    therapy = wide.col(THERAPY)
    direct = wide.col("fever_masked")
    has_info = (np.bincount(pid, weights=~np.isnan(therapy), minlength=len(wide.patients)) > 0)[pid]
    window = math.inf if mask_days is None else float(mask_days)
    temp = data["temperature_c"]
    # days not charted between two charted days: a dose and a fever could have been
    # on any of them; the latest such day before (or at) each row
    gap_before = np.zeros(len(day), dtype=bool)
    if len(day) > 1:
        gap_before[1:] = (pid[1:] == pid[:-1]) & (np.diff(day) > 1)
    last_uncharted = _ffill_within(pid, np.where(gap_before, day - 1, np.nan))
    gap_recent = (day - last_uncharted) <= window
    fever_sure = np.nan_to_num(temp, nan=0) >= crs.FEVER_C
    fever_maybe = fever_sure | np.isnan(temp)
    given_sure = np.nan_to_num(therapy, nan=0) >= 1
    given_maybe = given_sure
    trig_sure = given_sure & _window_any(pid, day, fever_sure, window)
    sure = _window_any(pid, day, trig_sure, window)
    trig_maybe = given_maybe & (_window_any(pid, day, fever_maybe, window) | gap_recent)
    maybe = _window_any(pid, day, trig_maybe, window) | gap_recent | ~has_info
    masked = np.where(sure, 1.0, np.where(maybe, np.nan, 0.0))
    return np.where(~np.isnan(direct), direct, masked)


def _baseline(wide: _Wide, field: str, window: tuple[float, float]) -> np.ndarray:
    """Each row's patient baseline of ``field``: the latest value in ``window``."""
    v = wide.col(field)
    ok = np.flatnonzero(~np.isnan(v) & (wide.day >= window[0]) & (wide.day <= window[1]))
    who = wide.pcode[ok]
    latest = ok[np.r_[who[1:] != who[:-1], True]] if len(ok) else ok  # rows in day order
    base = np.full(len(wide.patients), np.nan)
    base[wide.pcode[latest]] = v[latest]
    return base[wide.pcode]


def _check_crs(d: Mapping[str, np.ndarray], pid: np.ndarray, day: np.ndarray) -> None:
    hyp, vp, vpn = d["hypotension"], d["vasopressors"], d["vasopressin"]
    bad = (hyp == 0) & ((vp >= 1) | (vpn >= 1))
    dev, flow = d["oxygen"], d["o2_flow_l_min"]
    bad_flow = (dev == codes.OXYGEN["none"]) & (flow > 0)
    for mask, field, expected in (
        (bad, "hypotension", "hypotension = yes when vasopressors are given the same day"),
        (bad_flow, "o2_flow", "no oxygen flow on a day with oxygen = none"),
    ):
        if mask.any():
            i = int(np.flatnonzero(mask)[0])
            raise GradingInputError(
                field, "conflict", expected, f"patient {pid[i]}, day {day[i]:g}"
            )


def _count_kernel(
    d: Mapping[str, np.ndarray], field: str, limits: tuple[float, float, float, float]
) -> np.ndarray:
    """CTCAE count-decreased grade of ``field`` (LLN and the grade 2-4 thresholds)."""
    return ctcae.count_grade(d[field], *limits)


def _missing_text(missing: Mapping[str, np.ndarray], rows: np.ndarray, term: str) -> np.ndarray:
    """Comma-separated unknown items per row (``Bounds.missing`` order), one string per
    distinct combination."""
    names = list(missing)
    if not names:
        return np.full(len(rows), "", dtype=object)
    combo = np.zeros(len(rows), dtype=np.int64)
    for j, f in enumerate(names):
        combo |= missing[f][rows].astype(np.int64) << j
    distinct, inverse = np.unique(combo, return_inverse=True)
    texts = []
    for c in distinct:
        tags = [
            ",".join(gvhd.LABELS.get(f, (f,)) if term == "aGVHD" else (f,))
            for j, f in enumerate(names)
            if int(c) >> j & 1
        ]
        texts.append(",".join(tags))
    return np.asarray(texts, dtype=object)[inverse.reshape(-1)]


# -------------------------------------------------------------------------------------


def grade_daily(
    observations,
    terms: Sequence[str] = ("CRS", "ICANS", "aGVHD", "neutropenia", "thrombocytopenia"),
    *,
    patients=None,
    crs_system: str = "ASTCT2019",
    icans_system: str = "ASTCT2019",
    gvhd_system: str = "MAGIC",
    capd_age_cutoff: float = 12,
    lln: Mapping[str, float] | None = None,
    fever_mask_days: float | None = DEFAULT_FEVER_MASK_DAYS,
    stool_average_days: int = 3,
    uln: Mapping[str, float] | None = None,
    ranges: str | None = None,
    baseline_window: tuple[float, float] = BASELINE_WINDOW,
):
    """Grade every patient-day of ``observations`` for ``terms``.

    Returns a DataFrame with columns ``patient_id, day, term, system, grade,
    grade_max, missing, source_rows`` (one row per patient, day and term with at least
    one relevant observation; ``grade`` is the established lower bound, ``missing``
    a comma-separated list of unknown items that could raise it).
    ``fever_mask_days``: how long after antipyretic/anti-cytokine therapy fever is not
    required for CRS (ASTCT 2019 states no duration; see module doc; None = no limit).
    The CTCAE laboratory terms (ALT/AST/bilirubin/creatinine increased, fibrinogen
    decreased) use ULN/LLN from ``lln``/``uln``/``ranges`` (``grading.ranges``) and, as
    baseline, each patient's latest value from ``baseline_window`` (default day -30 to
    day 0); no value there = baseline unknown (bounded, listed missing).
    """
    if fever_mask_days is not None and (
        isinstance(fever_mask_days, bool)
        or not isinstance(fever_mask_days, int | float)
        or not fever_mask_days >= 0
    ):
        raise GradingInputError("fever_mask_days", fever_mask_days, "a number of days >= 0 or None")
    import pandas as pd

    unknown_terms = [t for t in terms if t not in TERMS]
    if unknown_terms:
        raise GradingInputError("terms", unknown_terms, "terms among " + ", ".join(TERMS))
    crs_sys = system_name(crs_system, ("ASTCT2019", "CARTOX", "Lee2014"), "CRS")
    icans_sys = system_name(icans_system, ("ASTCT2019", "CARTOX"), "ICANS")
    gvhd_sys = system_name(gvhd_system, ("MAGIC", "Keystone1994"), "acute GVHD")
    long = _parse_long(observations)
    empty = pd.DataFrame({c: pd.Series(dtype="object") for c in DAILY_COLUMNS})
    if not len(long.pos):
        return empty
    wide = _daily_wide(observations, long)
    del long
    day = wide.day
    pid = wide.patients[wide.pcode]
    # patient-level covariates
    if patients is not None and "patient_id" in patients.columns:
        p = patients.drop_duplicates("patient_id").set_index(
            patients["patient_id"].drop_duplicates().astype(str)
        )
        ids = pd.Series(wide.patients).astype(str)
        for col, field in (("age_years", "age_years"), ("weight_kg", "weight_base")):
            if col in p.columns:
                per_patient = ids.map(pd.to_numeric(p[col], errors="coerce")).to_numpy(float)
                wide.cols[field] = per_patient[wide.pcode]
    weight = _ffill_within(wide.pcode, wide.col("weight_kg"))
    weight = np.where(np.isnan(weight), wide.col("weight_base"), weight)
    _stool_average(wide, stool_average_days)
    term_rank = {t: k for k, t in enumerate(sorted(TERMS))}
    parts: list[tuple[str, str, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []
    for term in terms:
        fields = TERM_FIELDS[term]
        data = {f: wide.col(f) for f in FIELDS if f in wide.cols or f in fields}
        observed = np.zeros(len(day), dtype=bool)
        for f in fields:
            observed |= ~np.isnan(wide.col(f))
        if not observed.any():
            continue
        if term == "CRS":
            data = crs.imply(
                {
                    **{f: wide.col(f) for f in crs._legacy_fills("CARTOX")},
                    **{f: wide.col(f) for f in crs.ASTCT_FILLS},
                }
            )
            _check_crs(data, pid, day)
            data["fever_masked"] = _fever_masked(wide, data, fever_mask_days)
            if crs_sys == "ASTCT2019":
                b = bound(crs.astct_kernel, data, crs.ASTCT_FILLS, TERM_FIELDS["CRS"])
            else:
                fills = crs._legacy_fills(crs_sys)
                data.setdefault("constitutional_symptoms", np.full(len(day), np.nan))
                data["fio2"] = np.where(data["oxygen"] == codes.OXYGEN["none"], 0.21, data["fio2"])
                b = bound(lambda d: crs.legacy_kernel(d, crs_sys), data, fills, TERM_FIELDS["CRS"])
            system = crs_sys
        elif term == "ICANS":
            data["age_years"] = wide.col("age_years")
            if icans_sys == "ASTCT2019":
                b = icans.bound_astct(data, capd_age_cutoff)
            else:
                b = bound(icans.cartox_kernel, data, icans.CARTOX_FILLS)
            system = icans_sys
        elif term == "aGVHD":
            data["weight_kg"] = weight
            b, _ = gvhd.bound_agvhd(data, gvhd_sys)
            system = gvhd_sys
        elif term in ctcae.LAB_TERMS:
            field, base_field, kind = ctcae.LAB_TERMS[term]
            limit = ctcae._ranges(lln, uln, ranges).need(kind, field).value
            kernel, fills = ctcae.lab_kernel(term, limit)
            data[base_field] = _baseline(wide, field, baseline_window)
            b = bound(kernel, data, fills, (field,))
            system = ctcae.VERSION
        elif term == "anemia":
            rr = ctcae._ranges(lln, None, None)
            fills = {
                "hemoglobin_g_dl": Fill(16.0, 3.0),
                "sex": Fill(0, None),
                "life_threatening": Fill(math.nan, None),
                "death": Fill(math.nan, None),
            }
            lf, lm = ctcae._hb_lln(lln, rr, "F"), ctcae._hb_lln(lln, rr, "M")
            b = bound(
                partial(ctcae.anemia_kernel, lln_f=lf, lln_m=lm), data, fills, ("hemoglobin_g_dl",)
            )
            system = ctcae.VERSION
        else:
            field, t2, t3, t4, _name = ctcae.COUNT_TERMS[term]
            low = ctcae._ranges(lln, None, None).need("lln", field).value
            fills = {field: Fill(1e6, 0.0)}
            b = bound(partial(_count_kernel, field=field, limits=(low, t2, t3, t4)), data, fills)
            system = ctcae.VERSION
        rows = np.flatnonzero(observed)
        parts.append(
            (
                term,
                system,
                rows,
                np.asarray(b.lo)[rows],
                np.asarray(b.hi)[rows],
                _missing_text(b.missing, rows, term),
                _term_sources(wide, term, rows),
            )
        )
        del data, b
    if not parts:
        return empty
    rows = np.concatenate([p[2] for p in parts])
    # sorted by patient, term, day (each part is in patient-day order: a stable sort)
    key = wide.pcode[rows].astype(np.int64) * len(TERMS) + np.concatenate(
        [np.full(len(p[2]), term_rank[p[0]]) for p in parts]
    )
    order = np.argsort(key, kind="stable")
    rows = rows[order]

    def stack(j: int) -> np.ndarray:
        return np.concatenate([p[j] for p in parts])[order]

    def label(j: int) -> np.ndarray:
        names = np.asarray([p[j] for p in parts], dtype=object)
        return names[np.repeat(np.arange(len(parts)), [len(p[2]) for p in parts])[order]]

    return pd.DataFrame(
        {
            "patient_id": pid[rows],
            "day": day[rows],
            "term": label(0),
            "system": label(1),
            "grade": pd.array(stack(3), dtype="Int64"),
            "grade_max": pd.array(stack(4), dtype="Int64"),
            "missing": stack(5),
            "source_rows": stack(6),
        }
    )
