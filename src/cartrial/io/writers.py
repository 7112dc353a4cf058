"""Writing ADaM-like datasets: CSV, Parquet (pyarrow) and SAS XPORT v5 (pyreadstat).

Every export also holds ``define.csv`` (dataset, variable, label, type, note; from
``cartrial.io.adam.VARIABLES``) and, when de-identified, ``DEIDENTIFICATION.txt``.
The files are written to a temporary folder beside the target and moved into place,
so a failure leaves nothing half-written.

SAS XPORT version 5 limits (SAS TS-140; FDA Study Data Technical Conformance Guide):
dataset and variable names at most 8 characters, upper case; labels at most 40
characters; character values at most 200 characters (longer values are truncated and
the truncation is listed in ``define.csv``). Dates are numeric SAS dates (days since
1960-01-01) with the DATE9. format, also when a date column is entirely missing.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pandas as pd

from cartrial.io.adam import VARIABLES, build_adam
from cartrial.io.define_xml import write_define_xml
from cartrial.io.deid import deidentify as deid

FORMATS = ("csv", "parquet", "xpt")
XPT_MAX_NAME, XPT_MAX_LABEL, XPT_MAX_CHAR = 8, 40, 200


def define_table(adam: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """One row per exported variable: dataset, variable, label, type, note."""
    rows = []
    for name, df in adam.items():
        for col in df.columns:
            spec = VARIABLES[name][col]
            rows.append(
                {
                    "dataset": name,
                    "variable": col,
                    "label": spec.label,
                    "type": spec.type,
                    "note": spec.note,
                }
            )
    return pd.DataFrame(rows, columns=["dataset", "variable", "label", "type", "note"])


SAS_EPOCH = pd.Timestamp("1960-01-01")


def sas_date(values: pd.Series) -> pd.Series:
    """Dates as SAS date values: whole days since 1960-01-01 (float; missing is NaN)."""
    d = pd.to_datetime(values).dt.normalize()
    return ((d - SAS_EPOCH).dt.days).astype("float64")


def _xpt_frame(df: pd.DataFrame, name: str) -> tuple[pd.DataFrame, list[str | None], list[str]]:
    """Columns as written to .xpt: dates as numeric SAS dates, text as object (≤ 200)."""
    out = pd.DataFrame(index=df.index)
    truncated = []
    for col in df.columns:
        s = df[col]
        if VARIABLES[name][col].type == "date":
            out[col] = sas_date(s)
        elif VARIABLES[name][col].type == "num":
            out[col] = pd.to_numeric(s, errors="coerce").astype("float64")
        else:
            text = s.astype("string")
            if (text.str.len() > XPT_MAX_CHAR).any():
                truncated.append(col)
            out[col] = [None if pd.isna(v) else str(v)[:XPT_MAX_CHAR] for v in text]
    labels: list[str | None] = [VARIABLES[name][c].label for c in df.columns]
    return out, labels, truncated


def _csv_frame(df: pd.DataFrame) -> pd.DataFrame:
    """Floats as ``repr`` (shortest round-trip text), so CSV values read back exactly."""
    out = df.copy()
    for col in out.columns:
        if pd.api.types.is_float_dtype(out[col]):
            out[col] = [None if pd.isna(v) else repr(float(v)) for v in out[col]]
    return out


def check_xpt_names(adam: dict[str, pd.DataFrame]) -> list[str]:
    """Violations of the XPORT v5 name/label limits (empty when all fit)."""
    bad = []
    for name, df in adam.items():
        if len(name) > XPT_MAX_NAME or not name.isupper():
            bad.append(f"dataset name {name!r}")
        for col in df.columns:
            if len(col) > XPT_MAX_NAME or col != col.upper():
                bad.append(f"{name}.{col}: name")
            if len(VARIABLES[name][col].label) > XPT_MAX_LABEL:
                bad.append(f"{name}.{col}: label longer than {XPT_MAX_LABEL}")
    return bad


def write_adam(
    adam: dict[str, pd.DataFrame],
    directory: str | os.PathLike[str],
    formats: tuple[str, ...] | list[str] = ("csv",),
    statement: str | None = None,
) -> Path:
    """Write every dataset in each format (``adsl.csv``, ``adsl.parquet``, ``adsl.xpt`` …)."""
    import pyreadstat

    unknown = [f for f in formats if f not in FORMATS]
    if unknown:
        raise ValueError(f"format(s) {', '.join(unknown)}; expected from {', '.join(FORMATS)}")
    if "xpt" in formats:
        bad = check_xpt_names(adam)
        if bad:
            raise ValueError("SAS XPORT v5 limits exceeded: " + "; ".join(bad))
    target = Path(directory)
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise FileExistsError(f"{target} exists and is not an empty folder")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".cartrial-adam-", dir=target.parent))
    try:
        define = define_table(adam)
        for name, df in adam.items():
            base = tmp / name.lower()
            if "csv" in formats:
                _csv_frame(df).to_csv(
                    base.with_suffix(".csv"),
                    index=False,
                    date_format="%Y-%m-%d",
                    lineterminator="\n",
                )
            if "parquet" in formats:
                df.to_parquet(base.with_suffix(".parquet"), index=False, engine="pyarrow")
            if "xpt" in formats:
                frame, labels, truncated = _xpt_frame(df, name)
                date9 = {c: "DATE9." for c in df.columns if VARIABLES[name][c].type == "date"}
                pyreadstat.write_xport(
                    frame,
                    str(base.with_suffix(".xpt")),
                    table_name=name,
                    file_label=name,
                    column_labels=labels,
                    file_format_version=5,
                    variable_format=date9,
                )
                for col in truncated:
                    sel = (define["dataset"] == name) & (define["variable"] == col)
                    define.loc[sel, "note"] = (
                        define.loc[sel, "note"] + "; " if define.loc[sel, "note"].iloc[0] else ""
                    ) + "truncated to 200 characters in .xpt"
        define.to_csv(tmp / "define.csv", index=False, lineterminator="\n")

        write_define_xml(adam, tmp / "define.xml")
        if statement is not None:
            (tmp / "DEIDENTIFICATION.txt").write_text(statement, encoding="utf-8")
        if target.exists():
            target.rmdir()
        tmp.rename(target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return target


def export_adam(
    cohort,
    directory: str | os.PathLike[str],
    formats: tuple[str, ...] | list[str] = ("csv",),
    deidentify: bool = False,
    date_mode: str = "shift",
    seed: int | None = None,
    te_window_days: float | None = None,
    study_id: str = "CARTRIAL",
    options=None,
    shift_range: tuple[int, int] = (-365, 365),
    min_shift: int = 30,
    key: str | None = None,
    key_map_path: str | os.PathLike[str] | None = None,
    k: int = 5,
    identified: bool = False,
) -> tuple[Path, dict[str, pd.DataFrame]]:
    """Build the ADaM datasets of ``cohort`` (optionally de-identified) and write them.

    De-identified: SUBJID/SITEID are keyed pseudonyms; the table back to the real IDs is
    written to ``key_map_path``, which must lie outside ``directory`` (default: beside it,
    ``<directory>.key-map.csv``). ``identified`` writes identifier variables (BRTHDT) and
    cannot be combined with ``deidentify``.
    """

    if identified and deidentify:
        raise ValueError("an identified export cannot be de-identified; choose one")
    adam = build_adam(
        cohort,
        te_window_days=te_window_days,
        study_id=study_id,
        options=options,
        identified=identified,
    )
    text = None
    if deidentify:
        target = Path(directory).resolve()
        key_map = Path(key_map_path or f"{target}.key-map.csv").resolve()
        if target == key_map.parent or target in key_map.parents:
            raise ValueError(
                f"the key map {key_map} must be kept outside the export folder {target}"
            )
        res = deid(
            adam,
            date_mode=date_mode,
            seed=seed,
            shift_range=shift_range,
            min_shift=min_shift,
            key=key,
            k=k,
        )
        adam, text = res.datasets, res.statement
        for df in adam.values():
            df.attrs["notes"] = list(df.attrs.get("notes", [])) + [
                f"k-anonymity: {w}" for w in res.warnings
            ]
            df.attrs["key_map"] = str(key_map)
        if key_map.exists():
            raise FileExistsError(f"{key_map} exists; not overwritten")
    elif date_mode == "days":
        adam = {
            k: v.drop(columns=[c for c in v.columns if VARIABLES[k][c].type == "date"])
            for k, v in adam.items()
        }
    path = write_adam(adam, directory, formats, statement=text)
    if deidentify:
        key_map.parent.mkdir(parents=True, exist_ok=True)
        res.key_map.to_csv(key_map, index=False, lineterminator="\n")
    return path, adam
