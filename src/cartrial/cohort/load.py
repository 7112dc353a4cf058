"""Reading a cohort: folder of CSVs, one .xlsx workbook, a wide per-patient CSV, or frames.

Every source is first read as text (no type guessing by the reader), then typed and
checked by ``cartrial.cohort.tables``; a load either returns a whole ``Cohort`` or
raises ``CohortError`` listing every problem, and never changes its input.
"""

from __future__ import annotations

import csv
import hashlib
import os
import re
import tempfile
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from cartrial.cohort.errors import CohortError, Problem
from cartrial.cohort.model import (
    COLUMNS,
    PROVENANCE,
    TABLES,
    Cohort,
    empty_table,
    identifier_columns,
)
from cartrial.cohort.parse import (
    column_text,
    distinct,
    is_number_column,
    positional,
    value_cells,
)
from cartrial.cohort.tables import (
    NUMBER_COLUMNS,
    columns_frame,
    cross_table_rules,
    parse_table,
    text_columns,
    typed_numbers,
)
from cartrial.cohort.wide import is_wide, wide_to_tables

if TYPE_CHECKING:  # pragma: no cover
    import pyarrow as pa

EXAMPLES_DIR = Path(__file__).resolve().parent.parent / "examples" / "data"
#: study-day origin of a patient never infused (screen failure, died before infusion): this
#: patients column (the enrolment/registration date); a per-study setting, None for none
NOT_INFUSED_ORIGIN = "enrollment_date"


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


def _read_csv_text(path: Path, columnar: bool = False, table: str | None = None) -> pd.DataFrame:
    """A CSV as text cells plus ``source_row`` (its line number; blank lines dropped).

    ``columnar``: read with pyarrow's multithreaded CSV reader into dictionary-encoded
    text columns (pandas Categorical), so the typing in ``cohort.tables`` runs once per
    distinct cell (see ``parse.by_distinct``). Chosen over pandas' C reader (which
    materialises one Python str per cell) after measuring both on a simulated
    1,000-patient cohort (168,400 rows): pandas ``dtype=str`` 0.5 s + typing 4.3 s;
    pyarrow dictionary read 0.1 s + typing 0.6 s (``benchmarks/bench_scale.py`` has the
    figures at 10⁵ patients). Polars/DuckDB would add a dependency for the same reader.
    Files pyarrow cannot read the same way (blank lines, ragged rows, invalid UTF-8)
    fall back to the pandas path, whose error messages are part of the contract.
    """
    if columnar:
        df = _read_csv_arrow(path, table)
        if df is not None:
            return df
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


def _read_csv_arrow(path: Path, table: str | None = None) -> pd.DataFrame | None:
    """pyarrow read of a well-formed CSV as dictionary-encoded text, or None to fall back.

    Blank lines are kept as empty records (``ignore_empty_lines=False``), so record
    numbers, hence ``source_row``, are those of the pandas reader. With ``table``, its
    numeric columns (``day``, ``lloq`` …, not an observation's ``value``, which may hold a
    word) are read as numbers first: a column that holds anything but plain numbers
    within their bounds (``tables.typed_numbers``) is read again as text, so every
    problem still shows the cell as written."""
    try:
        with open(path, encoding="utf-8-sig", newline="") as fh:
            header = next(csv.reader(fh), [])
    except (UnicodeDecodeError, csv.Error):
        return None
    names = [h.strip() for h in header]
    if not header or len(set(header)) != len(header) or len(set(names)) != len(names):
        return None  # duplicates: the pandas path reports them
    if "" in names:
        return None  # unnamed columns: the pandas path names them "Unnamed: n"
    numbers = {
        h: n
        for h, n in zip(header, names, strict=True)
        if table is not None and n in NUMBER_COLUMNS.get(table, ())
    }
    while True:
        table_ = _arrow_csv(path, header, set(numbers))
        if table_ is None and numbers:
            numbers = {}  # a cell that is no plain number: read every column as text
            continue
        if table_ is None:
            return None
        # a row is blank when every text cell is blank and every number cell empty
        blank = np.ones(table_.num_rows, dtype=bool)
        for h in numbers:
            blank &= table_.column(h).is_null().to_numpy(zero_copy_only=False)
        # one pandas block per column, Arrow buffers released as they are converted
        df = table_.to_pandas(split_blocks=True, self_destruct=True)
        del table_
        df.columns = names
        failed = {
            h for h, n in numbers.items() if table is None or typed_numbers(table, n, df[n]) is None
        }
        if not failed:
            break
        numbers = {h: n for h, n in numbers.items() if h not in failed}
        del df
    df["source_row"] = np.arange(2, len(df) + 2)
    for col in names:
        if not blank.any():
            return df
        if col in numbers.values():
            continue
        codes, cells = distinct(df[col])
        blank &= (cells.str.strip() == "").to_numpy()[codes]
    if not blank.any():
        return df
    return df[~blank].reset_index(drop=True)


def _arrow_csv(path: Path, header: list[str], numbers: set[str]) -> pa.Table | None:
    """The CSV read by pyarrow: ``numbers`` as float64 (an empty cell missing), every
    other column as dictionary-encoded text; None when pyarrow cannot read it so."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    text = pa.dictionary(pa.int32(), pa.string())
    try:
        return pacsv.read_csv(
            path,
            read_options=pacsv.ReadOptions(block_size=1 << 24),
            parse_options=pacsv.ParseOptions(newlines_in_values=True, ignore_empty_lines=False),
            convert_options=pacsv.ConvertOptions(
                column_types={h: pa.float64() if h in numbers else text for h in header},
                strings_can_be_null=False,
                quoted_strings_can_be_null=False,
                null_values=[""],  # text is never null; an empty number cell is missing
            ),
        )
    except (pa.ArrowInvalid, UnicodeDecodeError):
        return None  # ragged rows, invalid UTF-8, a word in a number column …


def _hash_files(paths: list[Path]) -> str:
    h = hashlib.sha256()
    for p in sorted(paths, key=lambda q: q.name):
        h.update(p.name.encode())
        with open(p, "rb") as fh:  # in blocks: a 10⁷-row file is never held whole
            while block := fh.read(1 << 24):
                h.update(block)
    return h.hexdigest()


def _read_parquet_text(path: Path, name: str) -> pd.DataFrame:
    """A Parquet table as cells, like a CSV (rows numbered as a CSV of it would be).

    Parquet columns are typed, but a file written by another tool may hold anything, so
    every cell goes through the same checks as a CSV cell. Text, dates and booleans come
    as text (only distinct values formatted; dictionary-encoded end to end); the numeric
    columns of the format stay numbers, checked as numbers by ``cohort.tables`` and
    rendered as text only when a check fails (so a problem shows the cell as a CSV of
    the table would)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        schema = pq.read_schema(path)
        strings = [f.name for f in schema if pa.types.is_string(f.type)]
        table = pq.read_table(path, read_dictionary=strings)
    except (OSError, pa.ArrowException) as exc:
        raise CohortError(
            [Problem(str(path), None, None, None, f"a readable Parquet file ({exc})")], str(path)
        ) from exc
    types = {pa.bool_(): pd.BooleanDtype(), pa.int64(): pd.Int64Dtype()}
    # one pandas block per column, Arrow buffers released as they are converted
    df = table.to_pandas(types_mapper=types.get, split_blocks=True, self_destruct=True)
    del table
    df.columns = [str(c).strip() for c in df.columns]
    dupes = sorted({c for c in df.columns if list(df.columns).count(c) > 1})
    if dupes:
        raise CohortError(
            [
                Problem(str(path), None, d, None, "each column name once in the header row")
                for d in dupes
            ]
        )
    df = df.drop(columns=[c for c in ("source_file", "source_row") if c in df.columns])
    words = df.pop("value_text") if "value_text" in df.columns else None
    numeric = [
        c
        for c in df.columns
        if COLUMNS[name].get(c) in ("float", "Int64") and is_number_column(df[c])
    ]
    cells: dict[str, object] = {}
    for c in df.columns:
        col = positional(df[c])
        if c not in numeric:
            cells[c] = _column_text(col)
        elif col.dtype == np.float64:
            cells[c] = col.to_numpy()
        else:
            cells[c] = col.to_numpy(dtype=float, na_value=np.nan)
    if words is not None and "value" in cells:
        if "value" in numeric:  # kept apart, typed together (``tables._observation_values``)
            cells["value_text"] = positional(words)
        else:  # a word (oxygen device …) stands in the value cell, as in a CSV
            cells["value"] = value_cells(df["value"], words)
    cells["source_row"] = np.arange(2, len(df) + 2)
    return columns_frame(cells, pd.RangeIndex(len(df)))


def _folder_files(folder: Path) -> dict[str, Path]:
    """The table files of a cohort folder by table: Parquet when ``patients.parquet`` is
    there, else CSV."""
    suffix = ".parquet" if (folder / "patients.parquet").exists() else ".csv"
    files = {name: folder / f"{name}{suffix}" for name in TABLES}
    return {name: path for name, path in files.items() if path.exists()}


def _read_folder(folder: Path) -> tuple[dict[str, pd.DataFrame], dict[str, str], list[Path]]:
    raws: dict[str, pd.DataFrame] = {}
    labels: dict[str, str] = {}
    files = _folder_files(folder)
    for name, path in files.items():
        if path.suffix == ".parquet":
            raws[name] = _read_parquet_text(path, name)
        else:
            raws[name] = _read_csv_text(path, columnar=True, table=name)
        labels[name] = str(path)
    paths = list(files.values())
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
    raws: dict[str, pd.DataFrame],
    labels: dict[str, str],
    source: str,
    not_infused_origin: str | None = NOT_INFUSED_ORIGIN,
) -> tuple[dict[str, pd.DataFrame], list[Problem]]:
    problems: list[Problem] = []
    tables: dict[str, pd.DataFrame] = {}
    patients, probs = parse_table("patients", raws["patients"], labels["patients"])
    problems += probs
    patients = text_columns(patients)
    tables["patients"] = patients
    infusion = patients.dropna(subset=["patient_id"]).drop_duplicates("patient_id")
    infusion_dates = infusion.set_index("patient_id")["infusion_date"]
    if not_infused_origin and not_infused_origin in infusion.columns:
        # never infused: study days count from the enrolment/registration date instead
        never = infusion.set_index("patient_id")["infused"].eq(False).fillna(False)
        other = pd.to_datetime(infusion.set_index("patient_id")[not_infused_origin])
        infusion_dates = infusion_dates.where(~(never & infusion_dates.isna()), other)
    for name in TABLES[1:]:
        if name in raws:
            tables[name], probs = parse_table(name, raws[name], labels[name], infusion_dates)
            problems += probs
        else:
            tables[name] = empty_table(name)
    problems += cross_table_rules(tables)
    if not problems:  # text columns stay dictionary-encoded until every check has run
        tables = {name: text_columns(df) for name, df in tables.items()}
    return tables, problems


def _build(
    raws: dict[str, pd.DataFrame],
    labels: dict[str, str],
    source: str,
    sha: str | Future[str],
    not_infused_origin: str | None = NOT_INFUSED_ORIGIN,
    identifiers: tuple[str, ...] = (),
) -> Cohort:
    notes: tuple[str, ...] = ()
    given = None
    layout = "tables"
    if "wide" in raws:
        raws, labels, given, notes, problems = wide_to_tables(raws["wide"], labels["wide"])
        layout = "wide"
        if problems:
            raise CohortError(problems, source)
    tables, problems = _type_tables(raws, labels, source, not_infused_origin)
    if problems:
        raise CohortError(problems, source)
    ids = identifier_columns(tables["patients"].columns, identifiers)
    return Cohort(
        **tables,
        source=source,
        input_sha256=sha if isinstance(sha, str) else sha.result(),
        layout=layout,
        given_endpoints=given,
        notes=notes,
        identifiers=ids,
    )


#: a database URL (SQLAlchemy form) rather than a path
DATABASE_URL = re.compile(r"^(sqlite|postgresql|postgres)(\+\w+)?://")


def load_cohort(
    path: str | os.PathLike[str], not_infused_origin: str | None = NOT_INFUSED_ORIGIN
) -> Cohort:
    """Load and validate a cohort.

    ``path`` is a folder of CSVs (``patients.csv`` required; ``events.csv``,
    ``adverse_events.csv``, ``observations.csv`` optional) or of the same tables as
    Parquet files (``patients.parquet`` …, as ``write_cohort(..., format="parquet")`` and
    ``cartrial write --format parquet`` write them), a ``.xlsx`` workbook with
    sheets of those names (or a single sheet holding a wide table), a single wide
    per-patient ``.csv`` (one row per patient, e.g. ``os_months``/``os_event``), or the
    name of a bundled example (``tan2023``), or the URL of a cartrial database
    (``sqlite:///trial.sqlite``, ``postgresql+psycopg://user@host/db``: read-only, one
    consistent snapshot, ``cartrial.store.cohort_io.cohort_from_url``). Raises
    ``CohortError`` with every problem.
    ``not_infused_origin``: the patients date column that is day 0 of a patient never
    infused (default ``enrollment_date``; None: such patients' dated rows are errors).
    """
    if isinstance(path, str) and DATABASE_URL.match(path):
        # the store reads its tables into the same Cohort through this layer's frames
        # validation; imported here, by name, so the cohort layer has no static import of
        # the store (DESIGN.md: data flows one way)
        import importlib

        store = importlib.import_module("cartrial.store.cohort_io")
        errors = importlib.import_module("cartrial.store.database").DatabaseError
        try:
            return store.cohort_from_url(path)
        except errors as exc:
            raise CohortError(
                [Problem(path, None, None, None, f"a readable cartrial database ({exc})")],
                path,
            ) from None
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
        # the files' digest is taken on a second thread while they are read and checked
        # (hashlib releases the GIL on large blocks): no wall time on a multi-core machine
        with ThreadPoolExecutor(max_workers=1) as pool:
            digest = pool.submit(_hash_files, list(_folder_files(p).values()))
            raws, labels, _paths = _read_folder(p)
            return _build(raws, labels, str(p), digest, not_infused_origin)
    suffix = p.suffix.lower()
    if suffix in (".xlsx", ".xlsm"):
        raws, labels = _read_workbook(p)
        return _build(raws, labels, str(p), _hash_files([p]), not_infused_origin)
    if suffix in (".csv", ".txt", ".tsv"):
        df = _read_csv_text(p)
        if not is_wide(df):
            return _build(
                {"patients": df}, {"patients": str(p)}, str(p), _hash_files([p]), not_infused_origin
            )
        return _build({"wide": df}, {"wide": str(p)}, str(p), _hash_files([p]), not_infused_origin)
    raise CohortError(
        [Problem(str(p), None, None, None, "a folder of CSV files, a .csv or a .xlsx file")], str(p)
    )


def _frame_to_text(df: pd.DataFrame) -> pd.DataFrame:
    """Render an in-memory table as text cells, the way a CSV would hold it.

    Each column is factorised and only its distinct values are formatted; the cells come
    back dictionary-encoded (Categorical), like a pyarrow-read CSV, so typing them is
    cheap too. Floats print as ``repr`` (numpy's shortest round-trip text, identical).
    """
    out = {}
    for col in df.columns:
        if col in ("source_file", "source_row"):
            continue
        out[col] = _column_text(positional(df[col]))
    text = columns_frame(out, pd.RangeIndex(len(df)))
    text["source_row"] = np.arange(2, len(df) + 2)
    return text


_column_text = column_text


def cohort_from_frames(
    patients: pd.DataFrame,
    events: pd.DataFrame | None = None,
    adverse_events: pd.DataFrame | None = None,
    observations: pd.DataFrame | None = None,
    source: str = "memory",
    not_infused_origin: str | None = NOT_INFUSED_ORIGIN,
    identifiers: tuple[str, ...] = (),
) -> Cohort:
    """Validate in-memory tables by the same rules as files (rows numbered as in a CSV).

    ``not_infused_origin``: the patients date column that is day 0 for a patient never
    infused; ``identifiers``: patients columns declared direct identifiers (added to the
    known names, ``cohort.model.KNOWN_IDENTIFIERS``).
    """
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
        for col in raws[k].columns.drop("source_row"):
            cells = raws[k][col].cat
            h.update(f"\x00{col}\x00{len(cells.codes)}".encode())
            h.update("\x1f".join(cells.categories).encode())
            h.update(cells.codes.to_numpy().astype("<i8").tobytes())
    return _build(raws, labels, source, h.hexdigest(), not_infused_origin, tuple(identifiers))


def _merge_value_text(df: pd.DataFrame) -> pd.DataFrame:
    """Observations as a file holds them: the word of a categorical analyte in ``value``
    (``parse.value_cells``: text cells, dictionary-encoded)."""
    if "value_text" not in df.columns:
        return df
    cols = {c: positional(df[c]) for c in df.columns if c != "value_text"}
    cols["value"] = value_cells(df["value"], df["value_text"])
    return columns_frame(cols, pd.RangeIndex(len(df)))


def _text_for_csv(df: pd.DataFrame, table: str) -> pd.DataFrame:
    canon = [c for c in COLUMNS[table] if c in df.columns]
    extra = [
        c for c in df.columns if c not in COLUMNS[table] and c not in ("source_file", "source_row")
    ]
    out = _frame_to_text(df[canon + extra]).drop(columns="source_row")
    # drop canonical columns that are entirely empty, to keep files tidy and round-trips stable
    keep = [
        c
        for c in out.columns
        if c in ("patient_id",) or c in extra or (out[c].cat.categories != "").any()
    ]
    return out[keep]


def _write_text_csv(df: pd.DataFrame, path: Path) -> None:
    """Write text cells as CSV: pyarrow's writer when no cell needs quoting (10× pandas'
    ``to_csv`` at 10⁷ rows), else pandas (minimal quoting); same bytes either way."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    with open(path, "w", encoding="utf-8", newline="") as fh:
        csv.writer(fh, lineterminator="\n").writerow(list(df.columns))
    if df.empty:
        return
    arrays = [
        pa.DictionaryArray.from_arrays(
            pa.array(df[c].cat.codes.to_numpy(), pa.int32()),
            pa.array(df[c].cat.categories.to_numpy(dtype=object), pa.string()),
        )
        for c in df.columns
    ]
    table = pa.Table.from_arrays(arrays, names=[f"c{i}" for i in range(len(arrays))])
    try:
        with open(path, "ab") as fh:
            pacsv.write_csv(
                table, fh, pacsv.WriteOptions(include_header=False, quoting_style="none")
            )
    except pa.ArrowInvalid:  # a cell with a comma, quote or newline: quote it minimally
        df.to_csv(path, index=False, lineterminator="\n")


FORMATS = ("csv", "parquet")


def _write_parquet(df: pd.DataFrame, table: str, path: Path) -> None:
    """One typed table as Parquet (zstd, dictionary-encoded text), canonical columns first;
    provenance columns are not written (a Parquet row is numbered as a CSV's would be)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    canon = [c for c in COLUMNS[table] if c in df.columns]
    extra = [c for c in df.columns if c not in COLUMNS[table] and c not in PROVENANCE]
    out = df[canon + extra].reset_index(drop=True)
    arrow = pa.Table.from_pandas(out, preserve_index=False)
    pq.write_table(arrow, path, compression="zstd")


def write_cohort(cohort: Cohort, directory: str | os.PathLike[str], format: str = "csv") -> Path:
    """Write the four tables as CSV (or Parquet) files in ``directory``.

    ``format="csv"``: text files, canonical columns first, floats with ``repr``
    precision, so that load → write → load is lossless. ``format="parquet"``: the typed
    tables as ``<table>.parquet`` (zstd-compressed; ``load_cohort`` reads such a folder
    and validates it by the same rules). Written to a temporary folder beside the target
    and moved into place, so a failure leaves nothing half-written. Times are days since
    infusion.
    """
    if format not in FORMATS:
        raise ValueError(f"format: found {format!r}; expected one of {', '.join(FORMATS)}")
    target = Path(directory)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".cartrial-", dir=target.parent))
    try:
        for table in TABLES:
            df = cohort.table(table)
            if table != "patients" and df.empty:
                continue
            if format == "parquet":
                _write_parquet(df, table, tmp / f"{table}.parquet")
                continue
            if table == "observations":
                df = _merge_value_text(df)
            _write_text_csv(_text_for_csv(df, table), tmp / f"{table}.csv")
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
