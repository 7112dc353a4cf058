"""``grade_daily`` and ``derive_episodes`` at registry scale (issue 16) give exactly what
they gave before they were vectorised.

The expectations in ``data/daily_golden.json.gz`` were written by the per-field, pandas
pivot implementation of commit ca1622a (itself held to the hand-worked cases of
``test_episodes.py`` and ``test_across_days.py``) on the 24 seeded cohorts of
``daily_cohorts.py``: gaps, fractional days, unknown items, several values of one item
per day, words, other units, therapy and ``fever_masked`` rows, stool averages,
laboratory baselines, rows without source columns; every term, the three CRS systems,
both ICANS and aGVHD systems, five fever-masking windows and three ``max_gap_days``.
The comparison is exact: values, order, dtypes. Further tests here check the parts of
the new kernel that the golden cohorts do not reach (column dtypes, errors).
"""

from __future__ import annotations

import gzip
import json
import math
from pathlib import Path

import daily_cohorts as dc  # tests/grading is on sys.path (pytest rootdir-less import)
import numpy as np
import pandas as pd
import pytest

from cartrial.grading import GradingInputError
from cartrial.grading.daily import FIELD_ORDER, TERM_SOURCES, _codes, _sorted_codes
from cartrial.grading.episodes import TERMS, compare_episodes, derive_episodes, grade_daily

GOLDEN = Path(__file__).parent / "data" / "daily_golden.json.gz"


@pytest.fixture(scope="module")
def golden() -> dict:
    with gzip.open(GOLDEN, "rt") as fh:
        return json.load(fh)


def _plain(df: pd.DataFrame) -> dict:
    """A frame as the golden file holds it (None for missing, dtypes by name)."""

    def cell(v):
        if v is None or v is pd.NA or (isinstance(v, float) and math.isnan(v)):
            return None
        return int(v) if isinstance(v, np.integer) else v

    return {
        "dtypes": [str(t) for t in df.dtypes],
        "columns": list(df.columns),
        "rows": [[cell(v) for v in r] for r in df.astype(object).itertuples(index=False)],
    }


@pytest.mark.parametrize("seed", range(24))
def test_daily_grades_and_episodes_equal_the_pre_vectorised_output(golden, seed):
    obs, patients = dc.cohort(seed)
    daily = grade_daily(obs, terms=TERMS, patients=patients, **dc.params(seed))
    want = golden[str(seed)]
    assert _plain(daily) == want["daily"]
    for gap in dc.MAX_GAPS:
        assert _plain(derive_episodes(daily, max_gap_days=gap)) == want[f"episodes_{gap}"]


def test_golden_cohorts_reach_the_cases_they_are_meant_to():
    """The cohorts are not trivial: uncertain days, several values of one item on one
    day, uncharted gaps, CRS graded on an afebrile day (fever masked) and rows named by
    position all occur."""
    seen = {"uncertain": 0, "multi": 0, "row_n": 0, "gap": 0, "masked": 0}
    for seed in range(24):
        obs, patients = dc.cohort(seed)
        daily = grade_daily(obs, terms=TERMS, patients=patients, **dc.params(seed))
        seen["uncertain"] += int((daily["grade"] != daily["grade_max"]).sum())
        anc = daily[daily["term"] == "neutropenia"]  # one item: ";" = two values that day
        seen["multi"] += int(anc["source_rows"].str.contains(";").sum())
        seen["row_n"] += int(daily["source_rows"].str.startswith("row ").sum())
        ep = derive_episodes(daily, max_gap_days=2)
        seen["gap"] += int(ep["missing"].str.contains("not charted").sum())
        t = obs[obs["analyte"] == "temperature"]
        celsius = np.where(t["unit"] == "F", (t["value"] - 32) * 5 / 9, t["value"])
        hottest = pd.Series(celsius).groupby([t["patient_id"].to_numpy(), np.floor(t["day"])]).max()
        crs = daily[(daily["term"] == "CRS") & (daily["grade"] >= 1)]
        day_max = hottest.reindex(pd.MultiIndex.from_arrays([crs["patient_id"], crs["day"]]))
        seen["masked"] += int((day_max < 38.0).sum())
    assert all(v > 0 for v in seen.values()), seen


def test_field_order_lists_every_terms_sources_in_order():
    for term, fields in TERM_SOURCES.items():
        at = [FIELD_ORDER.index(f) for f in fields]
        assert at == sorted(at), term
    assert len(set(FIELD_ORDER)) == len(FIELD_ORDER)


@pytest.mark.parametrize("kind", ["category", "string[pyarrow]", "string[python]", "object"])
def test_text_column_dtypes_give_the_same_grades(kind):
    obs, patients = dc.cohort(3)
    obs = obs.assign(source_file="observations.csv", source_row=np.arange(len(obs)) + 2)
    want = grade_daily(obs, terms=TERMS, patients=patients, **dc.params(3))
    cast = obs.copy()
    for c in ("patient_id", "analyte", "value_text", "unit", "source_file"):
        cast[c] = cast[c].astype(kind)
    got = grade_daily(cast, terms=TERMS, patients=patients, **dc.params(3))
    pd.testing.assert_frame_equal(got, want, check_exact=True)
    pd.testing.assert_frame_equal(derive_episodes(got), derive_episodes(want), check_exact=True)


def test_codes_of_runs_and_missing_values():
    col = pd.Series(["b", "b", pd.NA, "a", "a", "b"] * 3, dtype="string")
    for runs in (False, True):
        codes, uniq = _codes(col, runs=runs)
        back = [None if c < 0 else uniq[c] for c in codes]
        assert back == [None if v is pd.NA else v for v in col]
    codes, uniq = _sorted_codes(col, runs=True)
    assert list(uniq[:2]) == ["a", "b"] and uniq[2] is pd.NA  # sort order, missing last
    assert list(codes[:6]) == [1, 1, 2, 0, 0, 1]


def test_a_bad_value_is_named_by_file_row_patient_day_and_analyte():
    obs, patients = dc.cohort(0)
    obs = obs.assign(source_file="obs.csv", source_row=np.arange(len(obs)) + 2)
    i = int(np.flatnonzero(obs["analyte"] == "temperature")[3])
    obs.loc[i, ["value", "unit"]] = [12.0, None]  # 12 °C: not a body temperature
    with pytest.raises(GradingInputError) as err:
        grade_daily(obs, terms=("CRS",))
    where = err.value.where
    assert f"obs.csv:{i + 2}" in where and f"patient {obs.loc[i, 'patient_id']}" in where
    assert f"day {obs.loc[i, 'day']}" in where and "analyte temperature" in where


def test_recorded_system_is_that_of_the_last_row_raising_the_maximum():
    """``compare_episodes`` reads recorded rows in table order: a row with a higher grade
    sets the system if it names one; a row that does not raise the maximum never does."""
    rec = pd.DataFrame(
        {
            "patient_id": ["A", "A", "A", "B", "B", "C"],
            "term": ["CRS", "CRS", "CRS", "crs", "CRS", "ICANS"],
            "grade": [1, 3, 3, None, 2, 2],
            "system": [None, "Lee2014", "ASTCT2019", "ASTCT2019", None, "ASTCT2019"],
        }
    )
    der = pd.DataFrame(
        {
            "patient_id": ["A", "B", "C"],
            "term": ["CRS", "CRS", "ICANS"],
            "grade": [3, 2, 1],
            "system": ["ASTCT2019", "ASTCT2019", "ASTCT2019"],
        }
    )
    diffs = {(d["patient_id"], d["term"]): d for d in compare_episodes(rec, der)}
    # A: grade 3 first reached by the Lee 2014 row (the later ASTCT row does not raise it)
    assert diffs[("A", "CRS")]["kind"] == "system_differs"
    assert diffs[("A", "CRS")]["recorded_system"] == "Lee2014"
    # B: the only graded row names no system: not comparable by system, same grade
    assert ("B", "CRS") not in diffs
    assert diffs[("C", "ICANS")]["kind"] == "grade_differs"
