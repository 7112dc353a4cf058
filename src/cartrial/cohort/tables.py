"""Per-table parsing and the cross-table checks of the cohort format (DESIGN.md).

``parse_tables`` turns the raw text tables into typed tables and returns every
problem found, so ``cartrial validate`` can list them all at once.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from cartrial.cohort import vocab
from cartrial.cohort.categories import CATEGORIES, describe, lookup_table
from cartrial.cohort.errors import Problem
from cartrial.cohort.model import COLUMNS, REQUIRED, empty_table
from cartrial.cohort.parse import (
    Collector,
    as_text,
    by_distinct,
    cat_codes,
    column_text,
    constant_text,
    distinct,
    is_missing,
    is_number_column,
    parse_bool,
    parse_date,
    parse_extra,
    parse_float,
    parse_text,
    parse_vocab,
    value_cells,
)

#: study days: at most 100 years after the infusion (a typing error beyond it, e.g. a
#: date's digits in a day column); the earliest allowed day differs by table (BOUNDS)
MAX_DAY = 36500
#: numeric bounds per (table, column): (minimum, maximum, integer); the one declaration
#: of each column's range, which the trial database's entry specs are derived from
#: (``cartrial.store.validation.SPECS``)
BOUNDS: dict[tuple[str, str], tuple[float | None, float | None, bool]] = {
    ("patients", "age_years"): (0, 120, False),
    ("patients", "cd7_blasts_pct"): (0, 100, False),
    ("patients", "bm_blasts_pct"): (0, 100, False),
    ("patients", "prior_lines"): (0, 50, True),
    ("patients", "dose_per_kg"): (0, None, False),
    ("patients", "weight_kg"): (0.3, 400, False),
    ("patients", "height_cm"): (20, 260, False),
    ("events", "day"): (0, MAX_DAY, False),
    ("events", "mrd_value"): (0, 1, False),
    ("adverse_events", "onset_day"): (-60, MAX_DAY, False),
    ("adverse_events", "resolution_day"): (-60, MAX_DAY, False),
    ("adverse_events", "grade"): (0, 5, True),
    ("observations", "day"): (-60, MAX_DAY, False),
    ("observations", "value"): (0, None, False),
    ("observations", "lloq"): (0, None, False),
}
VOCAB_COLUMNS = {
    ("patients", "sex"): vocab.SEX,
    ("patients", "product_source"): vocab.PRODUCT_SOURCES,
    ("events", "event"): vocab.EVENTS,
    ("events", "response"): vocab.RESPONSES,
    ("events", "cd7_status"): vocab.CD7_STATUS,
    ("events", "cause"): vocab.DEATH_CAUSES,
    ("adverse_events", "term"): vocab.AE_TERMS,
    ("adverse_events", "system"): vocab.GRADING_SYSTEMS,
    ("observations", "analyte"): {name: aliases for name, (aliases, _u) in vocab.ANALYTES.items()},
}
#: analytes whose value may be a word (device, level of consciousness …), kept in value_text
CATEGORICAL_ANALYTES = frozenset(
    {
        "oxygen",
        "consciousness",
        "seizure",
        "cerebral_edema",
        "motor_weakness",
        "vasopressin",
        "tocilizumab",
        "steroids",
        "hypotension",
        "fever_masked",
        "antipyretics",
        "bullae",
        "upper_gi",
        "severe_abdominal_pain",
        "bloody_stool",
        "crs_death",
    }
)
#: columns holding a time, by table, with the date column that may replace it
TIME_COLUMNS = {
    "events": (("day", "date"),),
    "adverse_events": (("onset_day", "onset_date"), ("resolution_day", "resolution_date")),
    "observations": (("day", "date"),),
}
REQUIRED_TIME = {"events": "day", "adverse_events": "onset_day", "observations": "day"}
#: numeric columns a columnar reader may hand over as numbers (``typed_numbers`` checks
#: them); an observation's value is not one: a categorical analyte's value is a word
NUMBER_COLUMNS = {
    table: frozenset(
        c
        for c, kind in cols.items()
        if kind in ("float", "Int64")
        and (table, c) not in VOCAB_COLUMNS
        and (table, c) != ("observations", "value")
    )
    for table, cols in COLUMNS.items()
}


def _typed_column(table: str, column: str, raw: pd.Series, out: Collector) -> pd.Series:
    """Type one canonical column: parsed once per distinct cell text (``parse.by_distinct``).

    A column that is numbers already (Parquet) is checked as numbers; when a check fails
    it is rendered as text (``parse.column_text``) and typed like a CSV's, so its problems
    read the same."""
    if is_number_column(raw):
        typed = typed_numbers(table, column, raw)
        if typed is not None:
            return typed
        raw = pd.Series(column_text(raw), index=raw.index, name=raw.name)
    return by_distinct(raw, out, lambda cells, sub: _typed_cells(table, column, cells, sub))


def typed_numbers(table: str, column: str, raw: pd.Series) -> pd.Series | None:
    """A numeric canonical column as its typed values, or None when any value would be a
    problem (not finite, out of ``BOUNDS``, not whole for a whole-number column) or the
    column is not numeric in the format: ``_typed_cells`` then reports each one."""
    kind = COLUMNS[table][column]
    if kind not in ("float", "Int64") or (table, column) in VOCAB_COLUMNS:
        return None
    values = raw.to_numpy(dtype=float, na_value=np.nan)
    lo, hi, integer = BOUNDS.get((table, column), (None, None, False))
    present = values[~np.isnan(values)]
    if np.isinf(present).any():
        return None
    if (lo is not None and (present < lo).any()) or (hi is not None and (present > hi).any()):
        return None
    if (integer or kind == "Int64") and (present != np.round(present)).any():
        return None
    if kind == "Int64":
        return pd.Series(pd.array(np.round(values), dtype="Int64"), index=raw.index, name=raw.name)
    return pd.Series(values, index=raw.index, name=raw.name)


def _typed_cells(table: str, column: str, raw: pd.Series, out: Collector) -> pd.Series:
    kind = COLUMNS[table][column]
    if (table, column) in VOCAB_COLUMNS:
        return parse_vocab(raw, column, VOCAB_COLUMNS[(table, column)], out)
    if kind == "float" or kind == "Int64":
        lo, hi, integer = BOUNDS.get((table, column), (None, None, False))
        values = parse_float(
            raw, column, out, minimum=lo, maximum=hi, integer=integer or kind == "Int64"
        )
        return values.round().astype("Int64") if kind == "Int64" else values
    if kind == "bool":
        return parse_bool(raw, column, out)
    if kind == "date":
        return parse_date(raw, column, out)
    return parse_text(raw)


def parse_table(
    table: str,
    raw: pd.DataFrame,
    file: str,
    infusion_dates: pd.Series | None = None,
) -> tuple[pd.DataFrame, list[Problem]]:
    """Type one raw table. ``raw`` has every cell as text and a ``source_row`` column."""
    rows = raw["source_row"].to_numpy()
    out = Collector(file, rows)
    if any(str(c).strip() != c for c in raw.columns):
        raw = raw.rename(columns=lambda c: str(c).strip())
    for col in REQUIRED[table]:
        if col not in raw.columns:
            out.add_column(col, f"a required column '{col}' in table {table}")
    time_col = REQUIRED_TIME.get(table)
    if time_col is not None:
        date_col = time_col.replace("day", "date")
        if time_col not in raw.columns and date_col not in raw.columns:
            out.add_column(time_col, f"a column '{time_col}' (days since infusion) or '{date_col}'")
    if out.problems:
        return empty_table(table), out.problems

    typed: dict[str, pd.Series] = {}
    blank = empty_table(table)
    for column in COLUMNS[table]:
        if table == "observations" and column in ("value", "value_text", "unit"):
            continue  # typed below, together with the analyte they belong to
        if column in raw.columns:
            typed[column] = _typed_column(table, column, raw[column], out)
        else:
            typed[column] = blank[column].reindex(raw.index)
    if table == "observations":
        typed["value_text"] = _observation_values(raw, typed, out)
        if "unit" not in typed:
            typed["unit"] = pd.Series(pd.NA, index=raw.index, dtype="string")
    if table == "events":
        _mrd(raw, typed, out)
    for day_col, date_col in TIME_COLUMNS.get(table, ()):
        if date_col in raw.columns:
            _dates_to_days(table, raw, typed, day_col, date_col, infusion_dates, out)
    extras = [
        c
        for c in raw.columns
        if c not in COLUMNS[table]
        and c not in typed
        and c != "source_row"
        and not str(c).startswith("Unnamed:")
    ]
    for column in extras:
        # numeric or text is decided on the distinct cells, the same as on every cell
        typed[column] = by_distinct(raw[column], out, lambda cells, _sub: parse_extra(cells))
    typed["source_file"] = constant_text(file, len(raw), raw.index)
    typed["source_row"] = pd.Series(
        pd.array(raw["source_row"].to_numpy(dtype=np.int64), dtype="Int64"), index=raw.index
    )
    df = columns_frame(typed, raw.index)
    if not isinstance(df.index, pd.RangeIndex) or df.index.start != 0 or df.index.step != 1:
        df = df.reset_index(drop=True)
    _table_rules(table, df, out)
    return df, out.problems


def columns_frame(columns: dict[str, pd.Series], index: pd.Index) -> pd.DataFrame:
    """A frame of same-index columns, one block each: pandas' DataFrame(dict) would stack
    the float columns into one new 2-D block, a copy that costs seconds at 10⁷ rows."""
    if not columns:
        return pd.DataFrame(index=index)
    series = {
        name: col if isinstance(col, pd.Series) else pd.Series(col, index=index)
        for name, col in columns.items()
    }
    return pd.concat(series, axis=1, copy=False)


def text_columns(df: pd.DataFrame) -> pd.DataFrame:
    """The typed table with its dictionary-encoded text columns as pandas text (``string``),
    the dtype of a loaded cohort (``cohort.model.COLUMNS``)."""
    for col in df.columns:
        if isinstance(df[col].dtype, pd.CategoricalDtype):
            df[col] = as_text(df[col])
    return df


def _observation_values(
    raw: pd.DataFrame, typed: dict[str, pd.Series], out: Collector
) -> pd.Series:
    """Numeric value, or a word for categorical analytes (oxygen device, consciousness …).

    Vectorised over distinct cell texts: each distinct value is parsed once, then the
    result is broadcast to its rows (problems are still reported per row).
    """
    a_codes, a_names = cat_codes(typed["analyte"])
    categorical = np.isin(a_names, list(CATEGORICAL_ANALYTES))[a_codes]
    value = raw["value"]
    if is_number_column(value):  # Parquet: numbers, and the words apart in value_text
        words = raw["value_text"] if "value_text" in raw.columns else None
        fast = _numeric_values(raw, typed, words, categorical, a_codes, a_names, out)
        if fast is not None:
            return fast
        value = pd.Series(
            value_cells(value, words) if words is not None else column_text(value),
            index=raw.index,
        )
    codes, cells = distinct(value)
    k = len(cells)
    text = cells.str.strip()
    sub = Collector(out.file, np.arange(k))
    numbers = parse_float(cells, "value", sub, minimum=0, what="a non-negative number")
    # a categorical analyte's cell is never a numeric problem: point its rows past the end
    if sub.problems:
        out.spread(sub.problems, np.where(categorical, k, codes))
    # every row's outcome is decided per (categorical analyte or not, distinct cell):
    # key = cell, plus k on a categorical analyte's rows; lookups below are one take each
    key = codes.astype(np.int64)
    np.add(key, k, out=key, where=categorical)
    as_number = pd.to_numeric(text, errors="coerce").astype("float64").to_numpy()
    # a number for a categorical analyte, parsed exactly (as parse_float does)
    exact = (np.bincount(key, minlength=2 * k)[k:] > 0) & ~np.isnan(as_number)
    as_number[exact] = text.to_numpy(dtype=object)[exact].astype(np.float64)
    typed["value"] = pd.Series(
        np.concatenate([numbers.to_numpy(dtype=float), as_number])[key], index=raw.index
    )
    is_word = np.isnan(as_number) & ~is_missing(cells)
    none = np.full(k, -1, dtype=np.int64)
    # the distinct cell of each word (on a categorical analyte's row), else -1
    word_codes = np.concatenate([none, np.where(is_word, np.arange(k), -1)])[key]
    _check_category_words(word_codes, text.to_numpy(dtype=object), a_codes, a_names, out)
    if "unit" in raw.columns:
        _units(raw, typed, a_codes, a_names, out)
    # the stored word is lower case: distinct words that fold together share one category
    lower = np.full(k, None, dtype=object)
    lower[is_word] = text[is_word].str.lower().to_numpy(dtype=object)
    fold, words = pd.factorize(lower, use_na_sentinel=True)
    return pd.Series(
        pd.Categorical.from_codes(
            np.concatenate([none, fold])[key], categories=pd.Index(words, dtype=object)
        ),
        index=raw.index,
    )


def _numeric_values(
    raw: pd.DataFrame,
    typed: dict[str, pd.Series],
    words: pd.Series | None,
    categorical: np.ndarray,
    a_codes: np.ndarray,
    a_names: np.ndarray,
    out: Collector,
) -> pd.Series | None:
    """``_observation_values`` for numbers with their words apart (Parquet), checked as
    numbers: the value_text column, or None when a cell would be a problem of the text
    path (a word on a numeric analyte, a word that reads as a number, a negative or
    non-finite value), which then types the cells as a CSV holds them."""
    v = raw["value"].to_numpy(dtype=float, na_value=np.nan)
    if words is not None:
        w_codes, w_names = pd.factorize(words, use_na_sentinel=True)
        w_text = pd.Series([str(w) for w in np.asarray(w_names, dtype=object)], dtype=object)
        w_text = w_text.str.strip()
        if (pd.to_numeric(w_text, errors="coerce").notna().to_numpy() | is_missing(w_text)).any():
            return None
        has_word = w_codes >= 0
    else:
        w_codes, w_text = np.full(len(v), -1), pd.Series([], dtype=object)
        has_word = np.zeros(len(v), dtype=bool)
    if (has_word & ~categorical).any():
        return None
    number = ~has_word & ~np.isnan(v)
    if np.isinf(v[number]).any() or (v[number & ~categorical] < 0).any():
        return None
    typed["value"] = pd.Series(np.where(has_word, np.nan, v), index=raw.index)
    word_codes = np.where(has_word, w_codes, -1)
    _check_category_words(word_codes, w_text.to_numpy(dtype=object), a_codes, a_names, out)
    if "unit" in raw.columns:
        _units(raw, typed, a_codes, a_names, out)
    # the stored word is lower case: distinct words that fold together share one category
    fold, lower = pd.factorize(w_text.str.lower().to_numpy(dtype=object))
    return pd.Series(
        pd.Categorical.from_codes(
            np.append(fold, -1)[w_codes], categories=pd.Index(lower, dtype=object)
        ),
        index=raw.index,
    )


#: categorical analytes answered yes/no (vocab.YES_NO); the others use cohort.categories
YES_NO_ANALYTES = frozenset(
    {
        "hypotension",
        "vasopressin",
        "motor_weakness",
        "tocilizumab",
        "steroids",
        "fever_masked",
        "antipyretics",
        "bullae",
        "severe_abdominal_pain",
        "bloody_stool",
        "crs_death",
    }
)


def _check_category_words(
    word_codes: np.ndarray,
    words: np.ndarray,
    a_codes: np.ndarray,
    a_names: np.ndarray,
    out: Collector,
) -> None:
    """A word for a categorical analyte must be one the grading engines know (decided once
    per distinct (analyte, word) pair, reported on every row). ``word_codes``: per row,
    the index of its word in ``words`` or -1; ``a_names[a_codes]``: the analyte of each row."""

    present = np.flatnonzero(word_codes >= 0)
    if not len(present):
        return
    pair_codes, pairs = pair_factorize(a_codes[present], word_codes[present], len(words))
    p_analyte, p_word = np.divmod(pairs, len(words))
    verdict = []
    for name, word in zip(a_names[p_analyte], words[p_word], strict=True):
        if name in CATEGORIES:
            ok = vocab._key(word) in lookup_table(name)
            verdict.append(None if ok else "one of: " + describe(name))
        elif name in YES_NO_ANALYTES:
            ok = vocab._key(word) in vocab.build_lookup(vocab.YES_NO)
            verdict.append(None if ok else "yes or no (or 1/0)")
        else:
            verdict.append(None)
    for j in np.flatnonzero([v is not None for v in verdict]):
        name, word = a_names[p_analyte[j]], words[p_word[j]]
        for i in present[pair_codes == j]:
            out.problems.append(
                Problem(out.file, int(out.rows[i]), "value", word, f"for {name}, {verdict[j]}")
            )


def pair_factorize(a: np.ndarray, b: np.ndarray, nb: int) -> tuple[np.ndarray, np.ndarray]:
    """Codes of the distinct pairs (a, b), ``0 <= b < nb``: ``(codes, keys)`` with each
    row's pair ``divmod(keys[codes], nb)``. Small key spaces are indexed directly (no
    hashing of 10⁷ keys), larger ones factorised."""
    key = a.astype(np.int64) * nb + b
    size = (int(a.max(initial=0)) + 1) * nb
    if size > 1 << 24:
        codes, keys = pd.factorize(key)
        return codes, np.asarray(keys, dtype=np.int64)
    seen = np.zeros(size, dtype=bool)
    seen[key] = True
    keys = np.flatnonzero(seen)
    index = np.zeros(size, dtype=np.int64)
    index[keys] = np.arange(len(keys))
    return index[key], keys


def _units(
    raw: pd.DataFrame,
    typed: dict[str, pd.Series],
    a_codes: np.ndarray,
    a_names: np.ndarray,
    out: Collector,
) -> None:
    """Canonicalise units, report a unit the analyte is not measured in, and convert values
    to the analyte's stored unit (``vocab.UNIT_CONVERSIONS``: cells/uL -> 10^9/L, g/L ->
    g/dL, F -> C, umol/L -> mg/dL). Decided once per distinct (analyte, unit) pair."""
    unit_lookup = vocab.build_lookup(vocab.UNIT_ALIASES)
    u_codes, u_cells = distinct(raw["unit"])
    u_text = u_cells.str.strip()
    u_missing = is_missing(u_cells)
    pair_codes, pairs = pair_factorize(a_codes, u_codes, len(u_cells))
    pa_, pu_ = np.divmod(pairs, len(u_cells))
    canon, wrong, scale, offset, stored = [], [], [], [], []
    for a_i, u_i in zip(pa_.tolist(), pu_.tolist(), strict=True):
        a, u = a_names[a_i], u_text.iat[u_i]
        own = vocab.ANALYTE_UNIT_SPELLINGS.get(a, {}).get(vocab._key(u)) if a else None
        c = own or unit_lookup.get(vocab._key(u)) or u
        allowed = vocab.ANALYTES[a][1] if a in vocab.ANALYTES else None
        bad = allowed is not None and c not in allowed and not u_missing[u_i]
        k, b = 1.0, 0.0
        if not bad and not u_missing[u_i] and a in vocab.UNIT_CONVERSIONS:
            target, others = vocab.UNIT_CONVERSIONS[a]
            if c in others:
                (k, b), c = others[c], target
        canon.append(c)
        wrong.append(bad)
        scale.append(k)
        offset.append(b)
        stored.append(None if u_missing[u_i] else c)
    wrong_rows = (
        np.asarray(wrong, dtype=bool)[pair_codes] if any(wrong) else np.zeros(0, dtype=bool)
    )
    for i in np.flatnonzero(wrong_rows):
        a = a_names[a_codes[i]]
        out.problems.append(
            Problem(
                out.file,
                int(out.rows[i]),
                "unit",
                u_text.iat[u_codes[i]],
                f"a unit of {a}: " + " or ".join(sorted(vocab.ANALYTES[a][1] or ())),
            )
        )
    if any(k != 1.0 for k in scale) or any(b != 0.0 for b in offset):
        k = np.asarray(scale)[pair_codes]
        b = np.asarray(offset)[pair_codes]
        typed["value"] = pd.Series(typed["value"].to_numpy() * k + b, index=raw.index)
    s_codes, s_units = pd.factorize(np.asarray(stored, dtype=object), use_na_sentinel=True)
    typed["unit"] = pd.Series(
        pd.Categorical.from_codes(s_codes[pair_codes], categories=pd.Index(s_units, dtype=object)),
        index=raw.index,
    )


def _mrd(raw: pd.DataFrame, typed: dict[str, pd.Series], out: Collector) -> None:
    """``mrd`` is negative/positive or a numeric fraction (negative below 1e-4, NCCN flow MRD).

    Decided once per distinct cell, reported on every row."""
    if "mrd" not in raw.columns:
        return
    codes, cells = distinct(raw["mrd"])
    sub = Collector(out.file, np.arange(len(cells)))
    mrd, numbers = _mrd_cells(cells, sub)
    out.spread(sub.problems, codes)
    m_codes, m_names = pd.factorize(mrd.array, use_na_sentinel=True)
    typed["mrd"] = pd.Series(
        pd.Categorical.from_codes(m_codes[codes], categories=pd.Index(m_names, dtype=object)),
        index=raw.index,
    )
    if "mrd_value" not in raw.columns:
        typed["mrd_value"] = pd.Series(numbers.to_numpy()[codes], index=raw.index)


def _mrd_cells(cells: pd.Series, out: Collector) -> tuple[pd.Series, pd.Series]:
    """(mrd word, fraction) of each distinct ``mrd`` cell."""
    text = cells.fillna("").astype(str).str.strip()
    missing = is_missing(cells)
    numbers = pd.to_numeric(text.where(~missing, None), errors="coerce")
    word = text.where(numbers.isna().to_numpy() & ~missing, "")
    words = parse_vocab(word.where(word != "", "NA"), "mrd", vocab.MRD, out)
    bad_num = numbers.notna().to_numpy() & ((numbers < 0) | (numbers > 1)).to_numpy()
    out.add_rows(bad_num, "mrd", text, "negative, positive, or a fraction between 0 and 1")
    from_number = np.where(numbers < 1e-4, "negative", "positive")
    mrd = words.where(
        words.notna(), pd.Series(from_number, index=text.index).where(numbers.notna())
    )
    mrd[bad_num] = None
    return mrd.astype("string"), numbers.where(~bad_num).astype("float64")


def _dates_to_days(
    table: str,
    raw: pd.DataFrame,
    typed: dict[str, pd.Series],
    day_col: str,
    date_col: str,
    infusion_dates: pd.Series | None,
    out: Collector,
) -> None:
    """Convert a date column to days since infusion; check it agrees with a day column."""
    dates = by_distinct(raw[date_col], out, lambda cells, sub: parse_date(cells, date_col, sub))
    have = dates.notna().to_numpy()
    if not have.any():
        return
    ids = typed["patient_id"]
    if infusion_dates is not None:
        id_codes, id_names = cat_codes(ids)
        lookup = pd.Series(
            pd.to_datetime(infusion_dates.to_numpy()),
            index=pd.Index(infusion_dates.index.to_numpy(dtype=object)),
        )
        per_id = lookup.reindex(pd.Index(id_names, dtype=object)).to_numpy()
        inf = pd.Series(pd.to_datetime(per_id[id_codes]), index=ids.index)
    else:
        inf = pd.Series(pd.NaT, index=ids.index, dtype="datetime64[ns]")
    no_inf = have & inf.isna().to_numpy()
    out.add_rows(
        no_inf,
        date_col,
        raw[date_col],
        "patients.infusion_date for this patient (or, for a patient never infused, "
        "patients.enrollment_date), to turn the date into a study day",
    )
    days = (dates - inf).dt.total_seconds() / 86400.0
    days = days.astype("float64")
    given = typed[day_col]
    clash = (
        have
        & given.notna().to_numpy()
        & days.notna().to_numpy()
        & (np.abs(given.to_numpy(dtype=float, na_value=np.nan) - days.to_numpy()) > 0.5)
    )
    out.add_rows(
        clash,
        date_col,
        raw[date_col],
        f"a date that agrees with {day_col} (days since patients.infusion_date)",
    )
    lo, hi, _integer = BOUNDS.get((table, day_col), (None, None, False))
    filled = given.where(given.notna(), days)
    if lo is not None:
        before = have & given.isna().to_numpy() & (days < lo).fillna(False).to_numpy()
        out.add_rows(
            before,
            date_col,
            raw[date_col],
            f"a date no earlier than {abs(lo):g} days before the infusion date"
            if lo < 0
            else "a date on or after the infusion date",
        )
        filled[before] = np.nan
    if hi is not None:
        after = have & given.isna().to_numpy() & (days > hi).fillna(False).to_numpy()
        out.add_rows(
            after,
            date_col,
            raw[date_col],
            f"a date no later than {hi:g} days after the infusion date",
        )
        filled[after] = np.nan
    typed[day_col] = filled


def _table_rules(table: str, df: pd.DataFrame, out: Collector) -> None:
    """Rules within one table."""
    rows = df["source_row"].to_numpy()
    if table == "patients":
        ids = df["patient_id"]
        out.add_rows(ids.isna().to_numpy(), "patient_id", ids, "a non-empty patient_id")
        dup = ids.notna().to_numpy() & ids.duplicated(keep="first").to_numpy()
        first_row = dict(zip(ids[~ids.duplicated(keep="first")], rows, strict=False))
        for i in np.flatnonzero(dup):
            out.problems.append(
                Problem(
                    out.file,
                    int(rows[i]),
                    "patient_id",
                    str(ids.iloc[i]),
                    f"a unique patient_id (already used on row {first_row[ids.iloc[i]]})",
                )
            )
    if table in ("events", "adverse_events", "observations"):
        ids = df["patient_id"]
        out.add_rows(ids.isna().to_numpy(), "patient_id", ids, "a non-empty patient_id")
        tcol = REQUIRED_TIME[table]
        no_time = df[tcol].isna().to_numpy() & ~_already_reported(out, rows, tcol)
        out.add_rows(
            no_time,
            tcol,
            df[tcol],
            f"a time: {tcol} (days since infusion) or a date",
        )
    if table == "events":
        resp = (df["event"] == "response").fillna(False).to_numpy()
        no_resp = (
            resp & df["response"].isna().to_numpy() & ~_already_reported(out, rows, "response")
        )
        out.add_rows(
            no_resp,
            "response",
            df["response"],
            "a response category for an event of type 'response'",
        )
    if table == "adverse_events":
        bad = (df["resolution_day"] < df["onset_day"]).fillna(False).to_numpy()
        out.add_rows(
            bad, "resolution_day", df["resolution_day"], "a resolution on or after onset_day"
        )
        no_grade = df["grade"].isna().to_numpy() & ~_already_reported(out, rows, "grade")
        out.add_rows(no_grade, "grade", df["grade"], "a grade 0–5")
        df["derived"] = df["derived"].fillna(False)
    if table == "observations":
        words = df["value_text"].notna().to_numpy()
        empty = df["value"].isna().to_numpy() & ~words & ~_already_reported(out, rows, "value")
        out.add_rows(
            empty,
            "value",
            df["value"],
            "a value",
        )


def _already_reported(out: Collector, rows: np.ndarray, column: str) -> np.ndarray:
    seen = {p.row for p in out.problems if p.column is not None and column in p.column}
    seen |= {p.row for p in out.problems if p.column is not None and p.column.endswith("date")}
    return np.isin(rows, np.array(list(seen), dtype=object))


def cross_table_rules(tables: dict[str, pd.DataFrame]) -> list[Problem]:
    """Rules across tables: unknown patients, events after death, more than one death.

    Decided per distinct patient id (``cat_codes``), reported on every row."""
    problems: list[Problem] = []
    patients = tables["patients"]
    known = set(patients["patient_id"].dropna())
    for name in ("events", "adverse_events", "observations"):
        df = tables[name]
        if df.empty:
            continue
        codes, ids = cat_codes(df["patient_id"])
        unknown = np.array([i is not None and i not in known for i in ids], dtype=bool)
        rows = df["source_row"].to_numpy()
        for i in np.flatnonzero(unknown[codes]):
            problems.append(
                Problem(
                    str(df["source_file"].iat[i]),
                    int(rows[i]),
                    "patient_id",
                    str(ids[codes[i]]),
                    "a patient_id listed in the patients table",
                )
            )
    events = tables["events"]
    if events.empty:
        return problems
    deaths = events[(events["event"] == "death").fillna(False).to_numpy(dtype=bool)]
    dead_ids = deaths["patient_id"].astype(object)
    multi = deaths[dead_ids.duplicated(keep="first").to_numpy()]
    for f, r in zip(multi["source_file"], multi["source_row"], strict=True):
        problems.append(Problem(str(f), int(r), "event", "death", "at most one death per patient"))
    death_day = deaths["day"].groupby(dead_ids.to_numpy()).min()
    first = ~dead_ids.duplicated(keep="first").to_numpy() & dead_ids.notna().to_numpy()
    death_row = pd.Series(deaths["source_row"].to_numpy()[first], index=dead_ids.to_numpy()[first])
    for name, tcol in (("events", "day"), ("adverse_events", "onset_day"), ("observations", "day")):
        df = tables[name]
        if df.empty:
            continue
        codes, ids = cat_codes(df["patient_id"])
        dd = death_day.reindex(pd.Index(ids, dtype=object)).to_numpy(dtype=float)[codes]
        t = df[tcol].to_numpy(dtype=float, na_value=np.nan)
        with np.errstate(invalid="ignore"):
            after = np.flatnonzero(t > dd)
        rows = df["source_row"].to_numpy()
        for i in after:
            pid = ids[codes[i]]
            problems.append(
                Problem(
                    str(df["source_file"].iat[i]),
                    int(rows[i]),
                    tcol,
                    f"{t[i]:g}",
                    f"a time no later than the patient's death on day {death_day[pid]:g} "
                    f"(events row {death_row[pid]})",
                )
            )
    return problems
