"""Typed parsing of raw (all-text) cohort tables, collecting every problem.

Each parser takes the table exactly as read (every cell a string, "" for empty) and
returns the typed column plus the problems found. Nothing is coerced silently: a
cell that does not parse is reported with its file, row, column and value; the
missing-value spellings below are the only cells read as missing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace

import numpy as np
import pandas as pd

from cartrial.cohort import vocab
from cartrial.cohort.errors import Problem

#: cell spellings read as missing (case-insensitive); nothing else is.
MISSING = frozenset({"", "na", "n/a", "nan", "null", ".", "missing", "nd", "not done"})


class Collector:
    """Accumulates problems for one table of one file."""

    def __init__(self, file: str, rows: pd.Series | np.ndarray) -> None:
        self.file = file
        self.rows = np.asarray(rows)  # source row number per record
        self.problems: list[Problem] = []

    def add_column(self, column: str | None, expected: str, value: str | None = None) -> None:
        self.problems.append(Problem(self.file, None, column, value, expected))

    def add_rows(
        self, mask: np.ndarray, column: str, values: Iterable[object], expected: str
    ) -> None:
        """Report every row where ``mask`` is true (only those rows' values are read and
        printed; a missing value prints as "")."""
        idx = np.flatnonzero(mask)
        if not len(idx):
            return
        if isinstance(values, pd.Series):
            vals = values.iloc[idx].tolist()
        elif isinstance(values, np.ndarray):
            vals = values[idx].tolist()
        else:
            every = list(values)
            vals = [every[i] for i in idx]
        for i, v in zip(idx, vals, strict=True):
            text = "" if v is None or v is pd.NA or (isinstance(v, float) and v != v) else str(v)
            self.problems.append(Problem(self.file, int(self.rows[i]), column, text, expected))

    def spread(self, problems: list[Problem], codes: np.ndarray) -> None:
        """Problems found on distinct values (``row`` = index of the distinct value) become
        one problem per row holding that value (``codes``: distinct index of each row)."""
        if not problems:
            return
        by_code: dict[int, list[Problem]] = {}
        for p in problems:
            by_code.setdefault(int(p.row or 0), []).append(p)
        bad = np.zeros(int(codes.max(initial=0)) + 1, dtype=bool)
        bad[list(by_code)] = True
        for i in np.flatnonzero(bad[codes]):
            for p in by_code[int(codes[i])]:
                self.problems.append(replace(p, file=self.file, row=int(self.rows[i])))


def distinct(raw: pd.Series) -> tuple[np.ndarray, pd.Series]:
    """``(codes, values)`` with ``raw[i] == values[codes[i]]`` (missing cells read as "").

    A column read by pyarrow arrives dictionary-encoded (pandas Categorical): its
    categories are the distinct values at no cost; other columns are factorised.
    Parsing then runs once per distinct value, which is what makes 10⁷ rows cheap.
    """
    if isinstance(raw.dtype, pd.CategoricalDtype):
        codes = raw.cat.codes.to_numpy().astype(np.int32)  # 4 bytes a row, not 8
        values = raw.cat.categories.astype(str).to_numpy(dtype=object)
        if (codes < 0).any():
            codes = np.where(codes < 0, len(values), codes)
            values = np.append(values, "")
        return codes, pd.Series(values, dtype=object)
    codes, values = pd.factorize(raw.fillna("").astype(str).to_numpy(dtype=object))
    return codes.astype(np.intp), pd.Series(values, dtype=object)


def by_distinct(
    raw: pd.Series, out: Collector, parse: Callable[[pd.Series, Collector], pd.Series]
) -> pd.Series:
    """Run a cell-wise ``parse(raw, out)`` once per distinct value and broadcast it back;
    every problem is still reported on every row that holds the offending value.

    Text results come back dictionary-encoded (``coded``): the checks that follow run on
    the distinct values, and ``as_text`` makes them pandas text at the end of loading."""
    codes, values = distinct(raw)
    if len(values) == len(raw) and not isinstance(raw.dtype, pd.CategoricalDtype):
        parsed = parse(raw, out)
        return coded(parsed) if isinstance(parsed.dtype, pd.StringDtype) else parsed
    sub = Collector(out.file, np.arange(len(values)))
    parsed = parse(values, sub)
    out.spread(sub.problems, codes)
    if isinstance(parsed.dtype, pd.StringDtype):
        p_codes, uniques = pd.factorize(parsed.array, use_na_sentinel=True)
        return pd.Series(
            pd.Categorical.from_codes(
                p_codes.astype(np.int32)[codes],
                categories=pd.Index(np.asarray(uniques, dtype=object)),
            ),
            index=raw.index,
            name=raw.name,
        )
    return pd.Series(parsed.array.take(codes), index=raw.index, name=raw.name)


def coded(text: pd.Series) -> pd.Series:
    """A pandas text column dictionary-encoded (Categorical; missing stays missing)."""
    if isinstance(text.dtype, pd.CategoricalDtype):
        return text
    codes, uniques = pd.factorize(text.array, use_na_sentinel=True)
    return pd.Series(
        pd.Categorical.from_codes(codes, categories=pd.Index(np.asarray(uniques, dtype=object))),
        index=text.index,
        name=text.name,
    )


def cat_codes(s: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """``(codes, values)`` of a dictionary-encoded column: ``values[codes]`` is the column,
    a missing cell pointing at a trailing None."""
    cat = s.astype("category") if not isinstance(s.dtype, pd.CategoricalDtype) else s
    values = np.append(cat.cat.categories.to_numpy(dtype=object), np.array([None], dtype=object))
    codes = cat.cat.codes.to_numpy().astype(np.int32)
    if (codes < 0).any():
        codes = np.where(codes < 0, len(values) - 1, codes)
    return codes, values


def as_text(s: pd.Series) -> pd.Series:
    """A dictionary-encoded text column as pandas text (``string`` dtype), built with one
    take of the distinct values (no per-row check of every cell)."""
    if not isinstance(s.dtype, pd.CategoricalDtype):
        return s
    values = np.append(s.cat.categories.to_numpy(dtype=object), pd.NA)
    cells = values[s.cat.codes.to_numpy()]  # code -1: the trailing NA
    return pd.Series(_string_array(cells), index=s.index, name=s.name)


def constant_text(value: str, n: int, index: pd.Index | None = None) -> pd.Series:
    """A text column holding one value ``n`` times (provenance file names)."""
    cells = np.empty(n, dtype=object)
    cells.fill(value)
    return pd.Series(_string_array(cells), index=index)


def _string_array(cells: np.ndarray) -> pd.api.extensions.ExtensionArray:
    """A pandas ``string`` array of ``cells`` (str or pd.NA only, checked by the caller)."""
    from pandas.core.arrays.string_ import StringArray

    dtype = pd.StringDtype()  # pandas' "string", storage as configured
    if dtype.storage != "python":  # pragma: no cover - Arrow-backed strings configured
        return pd.array(cells, dtype=dtype)
    try:
        return StringArray._simple_new(cells, dtype)
    except (AttributeError, TypeError):  # pragma: no cover - another pandas
        return pd.array(cells, dtype=dtype)


def is_missing(raw: pd.Series) -> np.ndarray:
    """True where a raw text cell is one of the MISSING spellings."""
    return raw.fillna("").astype(str).str.strip().str.lower().isin(MISSING).to_numpy()


def parse_float(
    raw: pd.Series,
    column: str,
    out: Collector,
    *,
    minimum: float | None = None,
    maximum: float | None = None,
    integer: bool = False,
    what: str = "a number",
) -> pd.Series:
    """Parse numbers; report non-numeric cells and values outside [minimum, maximum]."""
    text = raw.fillna("").astype(str).str.strip()
    missing = is_missing(raw)
    values = pd.to_numeric(text.where(~missing, None), errors="coerce").astype("float64")
    bad = ~missing & values.isna().to_numpy()
    good = ~missing & ~bad
    if good.any():
        # pandas' fast parser can be 1 ulp off; Python's float() is exactly round-trip
        values[good] = text[good].to_numpy(dtype=object).astype(np.float64)
    bad |= ~missing & ~np.isfinite(values.fillna(0).to_numpy())
    expected = what
    if minimum is not None or maximum is not None:
        lo = "" if minimum is None else f"≥ {minimum:g}"
        hi = "" if maximum is None else f"≤ {maximum:g}"
        expected = f"{what} {lo}{' and ' if lo and hi else ''}{hi}".strip()
    out.add_rows(bad, column, text, expected)
    v = values.to_numpy()
    with np.errstate(invalid="ignore"):
        out_of_range = np.zeros(len(v), dtype=bool)
        if minimum is not None:
            out_of_range |= v < minimum
        if maximum is not None:
            out_of_range |= v > maximum
        if integer:
            out_of_range |= np.isfinite(v) & (v != np.round(v))
    out.add_rows(
        out_of_range & ~bad, column, text, expected + (" (a whole number)" if integer else "")
    )
    values[bad | out_of_range] = np.nan
    return values


def parse_vocab(
    raw: pd.Series, column: str, vocabulary: Mapping[str, Iterable[str]], out: Collector
) -> pd.Series:
    """Map text to canonical vocabulary values; report spellings that match nothing."""
    text = raw.fillna("").astype(str).str.strip()
    missing = is_missing(raw)
    uniques = pd.unique(text[~missing])
    mapping = {u: vocab.canonical(u, vocabulary) for u in uniques}
    mapped = text.map(mapping)
    bad = ~missing & mapped.isna().to_numpy()
    out.add_rows(
        bad, column, text, "one of: " + vocab.allowed(vocabulary) + " (or an accepted alias)"
    )
    return mapped.where(~missing & ~bad, None).astype("string")


def parse_bool(raw: pd.Series, column: str, out: Collector) -> pd.Series:
    parsed = parse_vocab(raw, column, vocab.YES_NO, out)
    return parsed.map({"yes": True, "no": False}).astype("boolean")


def parse_date(raw: pd.Series, column: str, out: Collector) -> pd.Series:
    """Parse ISO dates (YYYY-MM-DD; a time part is allowed); anything else is a problem."""
    text = raw.fillna("").astype(str).str.strip()
    missing = is_missing(raw)
    values = pd.to_datetime(text.where(~missing, None), errors="coerce", format="ISO8601")
    bad = ~missing & values.isna().to_numpy()
    out.add_rows(bad, column, text, "an ISO date YYYY-MM-DD")
    return values.astype("datetime64[ns]")


def parse_text(raw: pd.Series) -> pd.Series:
    text = raw.fillna("").astype(str).str.strip()
    return text.where(~is_missing(raw), None).astype("string")


def parse_extra(raw: pd.Series) -> pd.Series:
    """Extra (unknown) columns are kept; numeric when every present cell is a number."""
    missing = is_missing(raw)
    text = raw.fillna("").astype(str).str.strip()
    nums = pd.to_numeric(text.where(~missing, None), errors="coerce")
    # identifiers such as "007" keep their leading zeros: they stay text
    leading_zero = text[~missing].str.match(r"^[+-]?0\d").any()
    if missing.all() or (nums[~missing].notna().all() and not leading_zero):
        return nums.astype("float64")
    return text.where(~missing, None).astype("string")


def positional(s: pd.Series) -> pd.Series:
    """``s`` indexed 0..n-1: itself when it already is (no copy of 10⁷ cells), else reset."""
    index = s.index
    if isinstance(index, pd.RangeIndex) and index.start == 0 and index.step == 1:
        return s
    return s.reset_index(drop=True)


def column_text(s: pd.Series) -> pd.Categorical:
    """A typed column rendered as the text cells a CSV of it holds, dictionary-encoded.

    Each column is factorised and only its distinct values are formatted: dates as
    YYYY-MM-DD, booleans as yes/no, floats as ``repr`` (numpy's shortest round-trip text),
    missing as ""."""
    if isinstance(s.dtype, pd.CategoricalDtype):
        codes, u = s.cat.codes.to_numpy(), pd.Series(s.cat.categories)
        if u.dtype == object and not (codes < 0).any() and all(type(c) is str for c in u):
            # already text cells (a dictionary-encoded Parquet string column)
            return pd.Categorical.from_codes(codes, categories=pd.Index(u, dtype=object))
    else:
        codes, uniques = pd.factorize(s, use_na_sentinel=True)
        u = pd.Series(uniques)
    if pd.api.types.is_datetime64_any_dtype(u):
        text = u.dt.strftime("%Y-%m-%d").to_numpy(dtype=object)
    elif pd.api.types.is_bool_dtype(u) or str(u.dtype) == "boolean":
        text = u.map({True: "yes", False: "no"}).to_numpy(dtype=object)
    elif pd.api.types.is_float_dtype(u):
        text = u.to_numpy(dtype=float).astype(str).astype(object)
    else:
        text = u.astype("string").fillna("").astype(str).to_numpy(dtype=object)
    text = np.append(text, "")
    codes = np.where(codes < 0, len(text) - 1, codes)
    # distinct values may print alike (a "" cell and a missing one): fold them
    fold, cats = pd.factorize(text)
    return pd.Categorical.from_codes(fold[codes], categories=pd.Index(cats, dtype=object))


def value_cells(value: pd.Series, words: pd.Series) -> pd.Categorical:
    """Observation values as a file holds them: the number's text, or the word of a
    categorical analyte (oxygen device …) where ``words`` has one; dictionary-encoded, the
    distinct numbers formatted once and the distinct words appended."""
    if is_number_column(value) and not pd.api.types.is_float_dtype(value.dtype):
        value = pd.Series(value.to_numpy(dtype=float, na_value=np.nan))
    number = column_text(positional(value))
    w_codes, w_cats = pd.factorize(positional(words), use_na_sentinel=True)
    cats = np.append(
        number.categories.to_numpy(dtype=object),
        np.asarray([str(w) for w in np.asarray(w_cats, dtype=object)], dtype=object),
    )
    codes = np.where(w_codes >= 0, w_codes + len(number.categories), number.codes)
    fold, distinct_cats = pd.factorize(cats)
    return pd.Categorical.from_codes(fold[codes], categories=pd.Index(distinct_cats, dtype=object))


def is_number_column(raw: pd.Series) -> bool:
    """True for a typed numeric column (a Parquet float or integer), not text cells."""
    dtype = raw.dtype
    if isinstance(dtype, pd.CategoricalDtype) or pd.api.types.is_bool_dtype(dtype):
        return False
    return pd.api.types.is_float_dtype(dtype) or pd.api.types.is_integer_dtype(dtype)
