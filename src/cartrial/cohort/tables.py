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


def _typed_column(table: str, column: str, raw: pd.Series, out: Collector) -> pd.Series:
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
        typed[column] = parse_extra(raw[column])
    df = pd.DataFrame(typed, index=raw.index)
    df["source_file"] = pd.Series(file, index=raw.index, dtype="string")
    df["source_row"] = raw["source_row"].astype("Int64")
    df = df.reset_index(drop=True)
    _table_rules(table, df, out)
    return df, out.problems


def _observation_values(
    raw: pd.DataFrame, typed: dict[str, pd.Series], out: Collector
) -> pd.Series:
    """Numeric value, or a word for categorical analytes (oxygen device, consciousness …)."""
    text = raw["value"].fillna("").astype(str).str.strip()
    categorical = typed["analyte"].isin(list(CATEGORICAL_ANALYTES)).fillna(False).to_numpy()
    numeric_part = text.where(~categorical, "")
    values = parse_float(numeric_part, "value", out, minimum=0, what="a non-negative number")
    as_number = pd.to_numeric(text.where(categorical, None), errors="coerce")
    typed["value"] = values.where(~categorical, as_number.astype("float64"))
    words = text.where(categorical & as_number.isna().to_numpy() & ~is_missing(raw["value"]), None)
    _check_category_words(words, typed["analyte"], out)
    if "unit" in raw.columns:
        _units(raw, typed, out)
    return words.str.strip().str.lower().astype("string")


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
    """A word for a categorical analyte must be one the grading engines know."""
    from cartrial.cohort.categories import CATEGORIES, describe, lookup_table

    present = words.notna().to_numpy()
    if not present.any():
        return
    keys = words.fillna("").map(vocab._key)
    for name in set(analyte[present].dropna()):
        rows = present & (analyte == name).fillna(False).to_numpy()
        if name in CATEGORIES:
            known = set(lookup_table(name))
            expected = "one of: " + describe(name)
        elif name in YES_NO_ANALYTES:
            known = set(vocab.build_lookup(vocab.YES_NO))
            expected = "yes or no (or 1/0)"
        else:
            continue
        bad = rows & ~keys.isin(known).to_numpy()
        out.add_rows(bad, "value", words.fillna(""), f"for {name}, {expected}")


def _units(raw: pd.DataFrame, typed: dict[str, pd.Series], out: Collector) -> None:
    """Canonicalise units and report a unit the analyte is not measured in."""
    unit_lookup = vocab.build_lookup(vocab.UNIT_ALIASES)
    text = raw["unit"].fillna("").astype(str).str.strip()
    missing = is_missing(raw["unit"])
    canon = text.map({u: unit_lookup.get(vocab._key(u)) or u for u in pd.unique(text)})
    analyte = typed["analyte"]
    # decide once per distinct (analyte, unit) pair, then broadcast back to the rows
    pairs = pd.DataFrame({"a": analyte.astype(object), "u": canon.astype(object)})
    distinct = pairs.drop_duplicates().copy()
    distinct["wrong"] = [
        a in vocab.ANALYTES and vocab.ANALYTES[a][1] is not None and u not in vocab.ANALYTES[a][1]
        for a, u in distinct.itertuples(index=False)
    ]
    wrong = pairs.merge(distinct, on=["a", "u"], how="left")["wrong"].to_numpy(dtype=bool)
    bad = ~missing & wrong
    for i in np.flatnonzero(bad):
        a = analyte.iloc[i]
        out.problems.append(
            Problem(
                out.file,
                int(out.rows[i]),
                "unit",
                text.iloc[i],
                f"a unit of {a}: " + " or ".join(sorted(vocab.ANALYTES[a][1] or ())),
            )
        )
    typed["unit"] = canon.where(~missing, None).astype("string")


def _mrd(raw: pd.DataFrame, typed: dict[str, pd.Series], out: Collector) -> None:
    """``mrd`` is negative/positive or a numeric fraction (negative below 1e-4, NCCN flow MRD)."""
    if "mrd" not in raw.columns:
        return
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
    dates = parse_date(raw[date_col], date_col, out)
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
        "patients.infusion_date for this patient, to turn the date into a study day",
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
        out.add_rows(ids.isna().to_numpy(), "patient_id", ids.fillna(""), "a non-empty patient_id")
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
        out.add_rows(ids.isna().to_numpy(), "patient_id", ids.fillna(""), "a non-empty patient_id")
        tcol = REQUIRED_TIME[table]
        no_time = df[tcol].isna().to_numpy() & ~_already_reported(out, rows, tcol)
        out.add_rows(
            no_time,
            tcol,
            df[tcol].astype("string").fillna(""),
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
            df["response"].fillna(""),
            "a response category for an event of type 'response'",
        )
    if table == "adverse_events":
        bad = (df["resolution_day"] < df["onset_day"]).fillna(False).to_numpy()
        out.add_rows(
            bad, "resolution_day", df["resolution_day"], "a resolution on or after onset_day"
        )
        no_grade = df["grade"].isna().to_numpy() & ~_already_reported(out, rows, "grade")
        out.add_rows(no_grade, "grade", df["grade"].astype("string").fillna(""), "a grade 0–5")
        df["derived"] = df["derived"].fillna(False)
    if table == "observations":
        words = df["value_text"].notna().to_numpy()
        empty = df["value"].isna().to_numpy() & ~words & ~_already_reported(out, rows, "value")
        out.add_rows(
            empty,
            "value",
            df["value"].astype("string").fillna(""),
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
