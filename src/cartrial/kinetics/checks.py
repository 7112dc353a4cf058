"""Validation of the observations table for kinetics (problems named by file, row, column).

Checks (vectorised over rows; one ``Problem`` per offending row and column):

* analyte unknown to ``cartrial.cohort.vocab.ANALYTES`` (aliases accepted);
* unit not allowed for the analyte (``ANALYTES`` lists the allowed units, spellings in
  ``UNIT_ALIASES``): e.g. cells/L for a count in cells/µL is off by 10⁶ and is an error, never
  converted silently; a missing unit is a problem only with ``require_units=True``;
* value not a number, or negative (counts, concentrations and percentages are >= 0);
* LLOQ not a number or negative;
* day missing (kinetics needs a time) when ``require_day``;
* two different values for one patient, analyte and day (NCA needs one value per day).

Rows are located by the provenance columns ``source_file``/``source_row`` when present,
otherwise by ``file`` and the 1-based line number of a CSV with a header (position + 2).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from cartrial.cohort.errors import Problem
from cartrial.cohort.vocab import ANALYTES
from cartrial.kinetics._obs import canonical_analytes, canonical_unit

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

#: analytes whose values may be negative (none at present; temperature in °C is > 0 here)
SIGNED_ANALYTES: frozenset[str] = frozenset()


def check_observations(
    df: pd.DataFrame,
    file: str = "observations.csv",
    require_units: bool = False,
    require_day: bool = True,
) -> list[Problem]:
    """Problems in an observations table (empty list when it is fine for kinetics)."""
    import pandas as pd

    problems: list[Problem] = []
    n = len(df)
    if n == 0:
        return problems
    for col in ("patient_id", "analyte", "value"):
        if col not in df.columns:
            problems.append(Problem(file, None, col, None, f"a column named {col!r}"))
    if problems:
        return problems
    files = (
        df["source_file"]
        .astype("object")
        .where(df["source_file"].notna(), file)
        .astype(str)
        .to_numpy()
        if "source_file" in df.columns
        else np.full(n, file, dtype=object)
    )
    if "source_row" in df.columns:
        rows_num = pd.to_numeric(df["source_row"], errors="coerce").to_numpy(dtype=float)
        rows = np.where(np.isnan(rows_num), np.arange(n) + 2, rows_num).astype(np.int64)
    else:
        rows = np.arange(n, dtype=np.int64) + 2

    def add(mask: np.ndarray, column: str, values: np.ndarray, expected: object) -> None:
        for i in np.flatnonzero(mask):  # only the offending rows
            exp = expected[i] if isinstance(expected, np.ndarray) else expected
            v = values[i]
            problems.append(
                Problem(
                    str(files[i]), int(rows[i]), column, None if v is None else str(v), str(exp)
                )
            )

    raw_analyte = df["analyte"].astype("object").to_numpy()
    names_s = canonical_analytes(df["analyte"])
    names = names_s.to_numpy(dtype=object)
    known = names_s.isin(list(ANALYTES)).to_numpy()
    add(
        ~known,
        "analyte",
        raw_analyte,
        "a known analyte (e.g. cart_qpcr, cart_flow, cd3, cd7_t, nk, cd19_b, anc; "
        "see cartrial.cohort.vocab.ANALYTES)",
    )

    # units: judge each distinct (analyte, unit) pair once, then map back to the rows
    if "unit" in df.columns:
        raw_unit = df["unit"].astype("object").to_numpy()
        unit_key = df["unit"].astype("string").fillna("").str.strip().to_numpy(dtype=object)
        pairs = pd.DataFrame({"a": names_s.fillna("").to_numpy(dtype=object), "u": unit_key})
        uniq = pairs.drop_duplicates().reset_index(drop=True)
        uniq["msg"] = [
            _unit_problem(a, canonical_unit(u) if u else None, require_units, ANALYTES)
            for a, u in zip(uniq["a"], uniq["u"], strict=True)
        ]
        msgs = pairs.merge(uniq, on=["a", "u"], how="left")["msg"].to_numpy(dtype=object)
        bad = pd.notna(msgs) & known
        add(bad, "unit", raw_unit, msgs)
    elif require_units:
        problems.append(Problem(file, None, "unit", None, "a column named 'unit'"))

    raw_value = df["value"].astype("object").to_numpy()
    value = pd.to_numeric(df["value"], errors="coerce").to_numpy(dtype=float)
    not_num = (
        np.isnan(value)
        & df["value"].notna().to_numpy()
        & (df["value"].astype("string").str.strip() != "").fillna(False).to_numpy(dtype=bool)
    )
    add(not_num, "value", raw_value, "a number")
    signed = names_s.isin(list(SIGNED_ANALYTES)).to_numpy()
    with np.errstate(invalid="ignore"):
        add(
            (value < 0) & ~signed,
            "value",
            raw_value,
            "a value >= 0 (counts, concentrations and percentages cannot be negative)",
        )
    if "lloq" in df.columns:
        raw_lloq = df["lloq"].astype("object").to_numpy()
        lloq = pd.to_numeric(df["lloq"], errors="coerce").to_numpy(dtype=float)
        add(np.isnan(lloq) & df["lloq"].notna().to_numpy(), "lloq", raw_lloq, "a number")
        with np.errstate(invalid="ignore"):
            add(lloq < 0, "lloq", raw_lloq, "an LLOQ >= 0")
    if require_day:
        if "day" not in df.columns:
            problems.append(
                Problem(
                    file, None, "day", None, "a column 'day' (days since infusion) for kinetics"
                )
            )
        else:
            day = pd.to_numeric(df["day"], errors="coerce").to_numpy(dtype=float)
            add(
                np.isnan(day),
                "day",
                df["day"].astype("object").to_numpy(),
                "days since infusion (a number) for every kinetics observation",
            )
            dup = pd.DataFrame(
                {"p": df["patient_id"].astype(str).to_numpy(), "a": names, "d": day, "v": value}
            )
            key_dup = dup.duplicated(["p", "a", "d"], keep="first") & ~np.isnan(day)
            val_dup = dup.duplicated(["p", "a", "d", "v"], keep="first")
            add(
                (key_dup & ~val_dup).to_numpy(),
                "value",
                raw_value,
                "one value per patient, analyte and day (another row has a different value)",
            )
    return problems


def _unit_problem(
    analyte: object, unit: str | None, require_units: bool, analytes: dict
) -> str | None:
    if not isinstance(analyte, str) or analyte not in analytes:
        return None
    allowed = analytes[analyte][1]
    if allowed is None:
        return None
    if unit is None:
        return f"a unit ({' or '.join(sorted(allowed))})" if require_units else None
    if unit in allowed:
        return None
    hint = ""
    if "cells/uL" in allowed and unit.lower().replace(" ", "") in {"cells/l", "/l", "cells/ml"}:
        hint = "; a count per L or mL differs from one per µL by 10^6 or 10^3: convert it"
    return f"unit {' or '.join(sorted(allowed))} for analyte {analyte}{hint}"
