"""Reading a cohort: folder of CSVs, one .xlsx workbook, a wide per-patient CSV, or frames.

Every source is first read as text (no type guessing by the reader), then typed and
checked by ``cartrial.cohort.tables``; a load either returns a whole ``Cohort`` or
raises ``CohortError`` listing every problem, and never changes its input.
"""

from __future__ import annotations

import csv
import hashlib
import os
import tempfile
from pathlib import Path

import pandas as pd

from cartrial.cohort.errors import CohortError, Problem
from cartrial.cohort.model import COLUMNS, TABLES, Cohort, empty_table
from cartrial.cohort.tables import cross_table_rules, parse_table
from cartrial.cohort.wide import is_wide, wide_to_tables

EXAMPLES_DIR = Path(__file__).resolve().parent.parent / "examples" / "data"


def bundled_example(name: str) -> Path | None:
    """Path of a bundled example cohort by name (e.g. ``tan2023``), or None."""
    for candidate in (
        EXAMPLES_DIR / f"{name}.csv",
        EXAMPLES_DIR / name,
        EXAMPLES_DIR / f"{name}.xlsx",
    ):
        if candidate.exists():
            return candidate
    return None


def _read_csv_text(path: Path) -> pd.DataFrame:
    try:
        df = pd.read_csv(
            path,
            dtype=str,
            keep_default_na=False,
            na_filter=False,
            encoding="utf-8-sig",
            skipinitialspace=False,
            skip_blank_lines=False,  # keep line numbers true; blank lines are dropped below
        )
    except UnicodeDecodeError as exc:
        raise CohortError(
            [
                Problem(
                    str(path), None, None, None, f"a UTF-8 text file (cannot decode: {exc.reason})"
                )
            ]
        ) from exc
    except pd.errors.ParserError as exc:
        raise CohortError(
            [Problem(str(path), None, None, None, f"a well-formed CSV file ({exc})")]
        ) from exc
    except pd.errors.EmptyDataError as exc:
        raise CohortError(
            [Problem(str(path), None, None, None, "a CSV file with a header row")]
        ) from exc
    with open(path, encoding="utf-8-sig", newline="") as fh:
        header = next(csv.reader(fh), [])
    names = [h.strip() for h in header]
    dupes = sorted({n for n in names if n and names.count(n) > 1})
    if dupes:
        raise CohortError(
            [
                Problem(str(path), None, d, None, "each column name once in the header row")
                for d in dupes
            ]
        )
    df.columns = [str(c).strip() for c in df.columns]
    df = df.fillna("")
    df["source_row"] = range(2, len(df) + 2)  # line 1 is the header
    blank = (df.drop(columns="source_row").astype(str).apply(lambda c: c.str.strip()) == "").all(
        axis=1
    )
    return df[~blank].reset_index(drop=True)


def _hash_files(paths: list[Path]) -> str:
    h = hashlib.sha256()
    for p in sorted(paths, key=lambda q: q.name):
        h.update(p.name.encode())
        h.update(p.read_bytes())
    return h.hexdigest()


def _read_folder(folder: Path) -> tuple[dict[str, pd.DataFrame], dict[str, str], list[Path]]:
    raws: dict[str, pd.DataFrame] = {}
    labels: dict[str, str] = {}
    paths = []
    for name in TABLES:
        path = folder / f"{name}.csv"
        if path.exists():
            raws[name] = _read_csv_text(path)
            labels[name] = str(path)
            paths.append(path)
    if "patients" not in raws:
        raise CohortError(
            [
                Problem(
                    str(folder / "patients.csv"),
                    None,
                    None,
                    None,
                    "a patients.csv file (the one required table)",
                )
            ],
            str(folder),
        )
    return raws, labels, paths


def _read_workbook(path: Path) -> tuple[dict[str, pd.DataFrame], dict[str, str]]:
    try:
        sheets = pd.read_excel(
            path,
            sheet_name=None,
            dtype=str,
            keep_default_na=False,
            na_filter=False,
            engine="openpyxl",
        )
    except Exception as exc:  # openpyxl raises many types for a broken file
        raise CohortError(
            [Problem(str(path), None, None, None, f"a readable .xlsx workbook ({exc})")], str(path)
        ) from exc
    by_name = {str(k).strip().lower(): _sheet_text(v) for k, v in sheets.items()}
    raws = {name: by_name[name] for name in TABLES if name in by_name}
    labels = {name: f"{path}[{name}]" for name in raws}
    if "patients" not in raws:
        if len(by_name) == 1:  # a single sheet: a wide per-patient table
            ((sheet_name, df),) = by_name.items()
            kind = "wide" if is_wide(df) else "patients"
            return {kind: df}, {kind: f"{path}[{sheet_name}]"}
        raise CohortError(
            [
                Problem(
                    str(path),
                    None,
                    None,
                    None,
                    "a sheet named 'patients' (sheets found: " + ", ".join(sheets) + ")",
                )
            ],
            str(path),
        )
    return raws, labels


def _sheet_text(df: pd.DataFrame) -> pd.DataFrame:
    """A sheet read as text, with its spreadsheet row numbers (row 1 is the header)."""
    df = df.copy()
    df.columns = [str(c).strip() for c in df.columns]
    df = df.astype(str).replace({"nan": "", "NaT": "", "None": ""})
    df["source_row"] = range(2, len(df) + 2)
    return df


def _type_tables(
    raws: dict[str, pd.DataFrame], labels: dict[str, str], source: str
) -> tuple[dict[str, pd.DataFrame], list[Problem]]:
    problems: list[Problem] = []
    tables: dict[str, pd.DataFrame] = {}
    patients, probs = parse_table("patients", raws["patients"], labels["patients"])
    problems += probs
    tables["patients"] = patients
    infusion = patients.dropna(subset=["patient_id"]).drop_duplicates("patient_id")
    infusion_dates = infusion.set_index("patient_id")["infusion_date"]
    for name in TABLES[1:]:
        if name in raws:
            tables[name], probs = parse_table(name, raws[name], labels[name], infusion_dates)
            problems += probs
        else:
            tables[name] = empty_table(name)
    problems += cross_table_rules(tables)
    return tables, problems


def _build(raws: dict[str, pd.DataFrame], labels: dict[str, str], source: str, sha: str) -> Cohort:
    notes: tuple[str, ...] = ()
    given = None
    layout = "tables"
    if "wide" in raws:
        raws, labels, given, notes, problems = wide_to_tables(raws["wide"], labels["wide"])
        layout = "wide"
        if problems:
            raise CohortError(problems, source)
    tables, problems = _type_tables(raws, labels, source)
    if problems:
        raise CohortError(problems, source)
    return Cohort(
        **tables, source=source, input_sha256=sha, layout=layout, given_endpoints=given, notes=notes
    )


def load_cohort(path: str | os.PathLike[str]) -> Cohort:
    """Load and validate a cohort.

    ``path`` is a folder of CSVs (``patients.csv`` required; ``events.csv``,
    ``adverse_events.csv``, ``observations.csv`` optional), a ``.xlsx`` workbook with
    sheets of those names (or a single sheet holding a wide table), a single wide
    per-patient ``.csv`` (one row per patient, e.g. ``os_months``/``os_event``), or the
    name of a bundled example (``tan2023``). Raises ``CohortError`` with every problem.
    """
    p = Path(path)
    if not p.exists():
        example = bundled_example(str(path))
        if example is None:
            raise CohortError(
                [
                    Problem(
                        str(path),
                        None,
                        None,
                        None,
                        "an existing folder, .csv or .xlsx file, or a bundled "
                        "example name (tan2023)",
                    )
                ],
                str(path),
            )
        p = example
    if p.is_dir():
        raws, labels, paths = _read_folder(p)
        return _build(raws, labels, str(p), _hash_files(paths))
    suffix = p.suffix.lower()
    if suffix in (".xlsx", ".xlsm"):
        raws, labels = _read_workbook(p)
        return _build(raws, labels, str(p), _hash_files([p]))
    if suffix in (".csv", ".txt", ".tsv"):
        df = _read_csv_text(p)
        if not is_wide(df):
            return _build({"patients": df}, {"patients": str(p)}, str(p), _hash_files([p]))
        return _build({"wide": df}, {"wide": str(p)}, str(p), _hash_files([p]))
    raise CohortError(
        [Problem(str(p), None, None, None, "a folder of CSV files, a .csv or a .xlsx file")], str(p)
    )


def _frame_to_text(df: pd.DataFrame) -> pd.DataFrame:
    """Render an in-memory table as text cells, the way a CSV would hold it."""
    out = pd.DataFrame(index=range(len(df)))
    for col in df.columns:
        if col in ("source_file", "source_row"):
            continue
        s = df[col].reset_index(drop=True)
        if pd.api.types.is_datetime64_any_dtype(s):
            text = s.dt.strftime("%Y-%m-%d")
        elif pd.api.types.is_bool_dtype(s) or str(s.dtype) == "boolean":
            text = s.map({True: "yes", False: "no"})
        elif pd.api.types.is_float_dtype(s):
            text = s.map(lambda v: "" if pd.isna(v) else repr(float(v)))
        else:
            text = s.astype("string")
        out[col] = text.fillna("").astype(str)
    out["source_row"] = range(2, len(df) + 2)
    return out


def cohort_from_frames(
    patients: pd.DataFrame,
    events: pd.DataFrame | None = None,
    adverse_events: pd.DataFrame | None = None,
    observations: pd.DataFrame | None = None,
    source: str = "memory",
) -> Cohort:
    """Validate in-memory tables by the same rules as files (rows numbered as in a CSV)."""
    frames = {
        "patients": patients,
        "events": events,
        "adverse_events": adverse_events,
        "observations": observations,
    }
    raws = {
        k: _frame_to_text(_merge_value_text(v) if k == "observations" else v)
        for k, v in frames.items()
        if v is not None
    }
    labels = {k: f"{source}:{k}" for k in raws}
    h = hashlib.sha256()
    for k in sorted(raws):
        h.update(k.encode())
        h.update(raws[k].to_csv(index=False).encode())
    return _build(raws, labels, source, h.hexdigest())


def _merge_value_text(df: pd.DataFrame) -> pd.DataFrame:
    """Observations as a file holds them: the word of a categorical analyte in ``value``."""
    if "value_text" not in df.columns:
        return df
    df = df.copy()
    number = df["value"].map(lambda v: "" if pd.isna(v) else repr(float(v)))
    df["value"] = number.where(df["value_text"].isna(), df["value_text"]).astype(str)
    return df.drop(columns="value_text")


def _text_for_csv(df: pd.DataFrame, table: str) -> pd.DataFrame:
    canon = [c for c in COLUMNS[table] if c in df.columns]
    extra = [
        c for c in df.columns if c not in COLUMNS[table] and c not in ("source_file", "source_row")
    ]
    out = _frame_to_text(df[canon + extra]).drop(columns="source_row")
    # drop canonical columns that are entirely empty, to keep files tidy and round-trips stable
    keep = [c for c in out.columns if c in ("patient_id",) or c in extra or (out[c] != "").any()]
    return out[keep]


def write_cohort(cohort: Cohort, directory: str | os.PathLike[str]) -> Path:
    """Write the four tables as CSV files in ``directory`` (canonical columns first).

    Written to a temporary folder beside the target and moved into place, so a failure
    leaves nothing half-written. Times are written as days since infusion; floats with
    ``repr`` precision so that load → write → load is lossless.
    """
    target = Path(directory)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".cartrial-", dir=target.parent))
    try:
        for table in TABLES:
            df = cohort.table(table)
            if table != "patients" and df.empty:
                continue
            if table == "observations":
                df = _merge_value_text(df)
            _text_for_csv(df, table).to_csv(tmp / f"{table}.csv", index=False, lineterminator="\n")
        if target.exists():
            if not target.is_dir() or any(target.iterdir()):
                raise FileExistsError(f"{target} exists and is not an empty folder")
            target.rmdir()
        tmp.rename(target)
    except BaseException:
        for f in tmp.glob("*"):
            f.unlink()
        tmp.rmdir()
        raise
    return target


def validate_path(path: str | os.PathLike[str]) -> tuple[Cohort | None, list[Problem]]:
    """Load ``path`` and return (cohort, []) or (None, problems)."""
    try:
        return load_cohort(path), []
    except CohortError as exc:
        return None, exc.problems
