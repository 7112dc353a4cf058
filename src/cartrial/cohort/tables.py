"""Per-table parsing and the cross-table checks of the cohort format (DESIGN.md).

``parse_tables`` turns the raw text tables into typed tables and returns every
problem found, so ``cartrial validate`` can list them all at once.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from cartrial.cohort import vocab
from cartrial.cohort.errors import Problem
from cartrial.cohort.model import COLUMNS, REQUIRED, empty_table
from cartrial.cohort.parse import (
    Collector,
    by_distinct,
    distinct,
    is_missing,
    parse_bool,
    parse_date,
    parse_extra,
    parse_float,
    parse_text,
    parse_vocab,
)

#: numeric bounds per (table, column): (minimum, maximum, integer)
BOUNDS: dict[tuple[str, str], tuple[float | None, float | None, bool]] = {
    ("patients", "age_years"): (0, 120, False),
    ("patients", "cd7_blasts_pct"): (0, 100, False),
    ("patients", "bm_blasts_pct"): (0, 100, False),
    ("patients", "prior_lines"): (0, 50, True),
    ("patients", "dose_per_kg"): (0, None, False),
    ("patients", "weight_kg"): (0.3, 400, False),
    ("patients", "height_cm"): (20, 260, False),
    ("events", "day"): (0, None, False),
    ("events", "mrd_value"): (0, 1, False),
    ("adverse_events", "onset_day"): (-60, None, False),
    ("adverse_events", "resolution_day"): (-60, None, False),
    ("adverse_events", "grade"): (0, 5, True),
    ("observations", "day"): (-60, None, False),
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


def _plain(raw: pd.Series) -> pd.Series:
    """A dictionary-encoded (Categorical) text column as plain text cells."""
    if isinstance(raw.dtype, pd.CategoricalDtype):
        return raw.astype(object).fillna("")
    return raw


def _typed_column(table: str, column: str, raw: pd.Series, out: Collector) -> pd.Series:
    """Type one canonical column: parsed once per distinct cell text (``parse.by_distinct``)."""
    return by_distinct(raw, out, lambda cells, sub: _typed_cells(table, column, cells, sub))


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
        typed[column] = parse_extra(_plain(raw[column]))
    df = pd.DataFrame(typed, index=raw.index)
    df["source_file"] = pd.Series(file, index=raw.index, dtype="string")
    df["source_row"] = raw["source_row"].astype("Int64")
    df = df.reset_index(drop=True)
    _table_rules(table, df, out)
    return df, out.problems


def _observation_values(
    raw: pd.DataFrame, typed: dict[str, pd.Series], out: Collector
) -> pd.Series:
    """Numeric value, or a word for categorical analytes (oxygen device, consciousness …).

    Vectorised over distinct cell texts: each distinct value is parsed once, then the
    result is broadcast to its rows (problems are still reported per row).
    """
    analyte = typed["analyte"]
    categorical = analyte.isin(list(CATEGORICAL_ANALYTES)).fillna(False).to_numpy(dtype=bool)
    codes, cells = distinct(raw["value"])
    text = cells.str.strip()
    sub = Collector(out.file, np.arange(len(cells)))
    numbers = parse_float(cells, "value", sub, minimum=0, what="a non-negative number")
    # a categorical analyte's cell is never a numeric problem: point its rows past the end
    out.spread(sub.problems, np.where(categorical, len(cells), codes))
    as_number = pd.to_numeric(text, errors="coerce").astype("float64").to_numpy()
    typed["value"] = pd.Series(
        np.where(categorical, as_number[codes], numbers.to_numpy()[codes]), index=raw.index
    )
    is_word = np.isnan(as_number) & ~is_missing(cells)
    word_rows = categorical & is_word[codes]
    words_of = text.to_numpy(dtype=object)
    words = pd.Series(np.where(word_rows, words_of[codes], None), index=raw.index, dtype=object)
    _check_category_words(words, analyte, out)
    if "unit" in raw.columns:
        _units(raw, typed, out)
    lower = pd.Series(text.str.lower().to_numpy(dtype=object))
    return pd.Series(
        pd.array(np.where(word_rows, lower.to_numpy()[codes], None), dtype="string"),
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


def _check_category_words(words: pd.Series, analyte: pd.Series, out: Collector) -> None:
    """A word for a categorical analyte must be one the grading engines know (decided once
    per distinct (analyte, word) pair, reported on every row)."""
    from cartrial.cohort.categories import CATEGORIES, describe, lookup_table

    present = np.flatnonzero(words.notna().to_numpy())
    if not len(present):
        return
    pairs = pd.DataFrame(
        {"a": analyte.iloc[present].astype(object).to_numpy(), "w": words.iloc[present].to_numpy()}
    )
    pair_codes = pairs.groupby(["a", "w"], sort=False, dropna=False).ngroup().to_numpy()
    distinct_pairs = pairs.drop_duplicates().reset_index(drop=True)
    verdict = []
    for name, word in distinct_pairs.itertuples(index=False):
        if name in CATEGORIES:
            ok = vocab._key(word) in lookup_table(name)
            verdict.append(None if ok else "one of: " + describe(name))
        elif name in YES_NO_ANALYTES:
            ok = vocab._key(word) in vocab.build_lookup(vocab.YES_NO)
            verdict.append(None if ok else "yes or no (or 1/0)")
        else:
            verdict.append(None)
    for j in np.flatnonzero([v is not None for v in verdict]):
        name, word = distinct_pairs.iloc[j]
        for i in present[pair_codes == j]:
            out.problems.append(
                Problem(out.file, int(out.rows[i]), "value", word, f"for {name}, {verdict[j]}")
            )


def _units(raw: pd.DataFrame, typed: dict[str, pd.Series], out: Collector) -> None:
    """Canonicalise units, report a unit the analyte is not measured in, and convert values
    to the analyte's stored unit (``vocab.UNIT_CONVERSIONS``: cells/uL -> 10^9/L, g/L ->
    g/dL, F -> C, umol/L -> mg/dL). Decided once per distinct (analyte, unit) pair."""
    unit_lookup = vocab.build_lookup(vocab.UNIT_ALIASES)
    u_codes, u_cells = distinct(raw["unit"])
    u_text = u_cells.str.strip()
    u_missing = is_missing(u_cells)
    a_codes, a_names = pd.factorize(typed["analyte"].astype(object), use_na_sentinel=True)
    a_names = np.append(np.asarray(a_names, dtype=object), None)  # code -1 -> None
    pair_codes, pairs = pd.factorize(a_codes.astype(np.int64) * len(u_cells) + u_codes)
    pa_, pu_ = np.divmod(np.asarray(pairs, dtype=np.int64), len(u_cells))
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
    wrong_rows = np.asarray(wrong, dtype=bool)[pair_codes]
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
    k = np.asarray(scale)[pair_codes]
    b = np.asarray(offset)[pair_codes]
    if (k != 1.0).any() or (b != 0.0).any():
        typed["value"] = pd.Series(typed["value"].to_numpy() * k + b, index=raw.index)
    typed["unit"] = pd.Series(
        pd.array(np.asarray(stored, dtype=object)[pair_codes], dtype="string"), index=raw.index
    )


def _mrd(raw: pd.DataFrame, typed: dict[str, pd.Series], out: Collector) -> None:
    """``mrd`` is negative/positive or a numeric fraction (negative below 1e-4, NCCN flow MRD)."""
    if "mrd" not in raw.columns:
        return
    raw = raw.assign(mrd=_plain(raw["mrd"]))
    text = raw["mrd"].fillna("").astype(str).str.strip()
    missing = is_missing(raw["mrd"])
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
    typed["mrd"] = mrd.astype("string")
    if "mrd_value" not in raw.columns:
        typed["mrd_value"] = numbers.where(~bad_num).astype("float64")


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
    raw = raw.assign(**{date_col: _plain(raw[date_col])})
    have = dates.notna().to_numpy()
    if not have.any():
        return
    ids = typed["patient_id"]
    inf = (
        ids.map(infusion_dates)
        if infusion_dates is not None
        else pd.Series(pd.NaT, index=ids.index)
    )
    inf = pd.to_datetime(inf)
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
    lo = BOUNDS.get((table, day_col), (None, None, False))[0]
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
    return np.isin(rows, list(seen))


def cross_table_rules(tables: dict[str, pd.DataFrame]) -> list[Problem]:
    """Rules across tables: unknown patients, events after death, more than one death."""
    problems: list[Problem] = []
    patients = tables["patients"]
    known = set(patients["patient_id"].dropna())
    for name in ("events", "adverse_events", "observations"):
        df = tables[name]
        if df.empty:
            continue
        unknown = df["patient_id"].notna() & ~df["patient_id"].isin(known)
        for _, r in df[unknown].iterrows():
            problems.append(
                Problem(
                    str(r["source_file"]),
                    int(r["source_row"]),
                    "patient_id",
                    str(r["patient_id"]),
                    "a patient_id listed in the patients table",
                )
            )
    events = tables["events"]
    if events.empty:
        return problems
    deaths = events[events["event"] == "death"]
    multi = deaths[deaths["patient_id"].duplicated(keep="first")]
    for _, r in multi.iterrows():
        problems.append(
            Problem(
                str(r["source_file"]),
                int(r["source_row"]),
                "event",
                "death",
                "at most one death per patient",
            )
        )
    death_day = deaths.groupby("patient_id")["day"].min()
    death_row = deaths.drop_duplicates("patient_id").set_index("patient_id")["source_row"]
    for name, tcol in (("events", "day"), ("adverse_events", "onset_day"), ("observations", "day")):
        df = tables[name]
        if df.empty:
            continue
        dd = df["patient_id"].map(death_day)
        after = (df[tcol] > dd).fillna(False)
        for _, r in df[after].iterrows():
            problems.append(
                Problem(
                    str(r["source_file"]),
                    int(r["source_row"]),
                    tcol,
                    f"{r[tcol]:g}",
                    f"a time no later than the patient's death on day {death_day[r['patient_id']]:g} "
                    f"(events row {death_row[r['patient_id']]})",
                )
            )
    return problems
