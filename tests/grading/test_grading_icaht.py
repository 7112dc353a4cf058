"""ICAHT (Rejeski 2023) from ANC series: durations, non-stable recovery, late nadir,
censoring, units and the public-calculator failure modes."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from cartrial.grading import GradingInputError, grade_icaht


def series(neutropenic_days, low=0.3, high=2.4, last=30):
    """Daily ANC 0..last: ``low`` on the given days, ``high`` otherwise."""
    days = np.arange(last + 1)
    return days, np.where(np.isin(days, list(neutropenic_days)), low, high)


@pytest.mark.parametrize(
    "n,grade", [(0, 0), (1, 1), (6, 1), (7, 2), (13, 2), (14, 3), (29, 3), (30, 4), (31, 4)]
)
def test_early_duration_anc_le_500(n, grade):
    d, v = series(range(n))
    r = grade_icaht(d, v, unit="10^9/L")
    assert r.early.grade == grade and r.early.complete
    assert r.early.detail("days_anc_le_0.5") == n


@pytest.mark.parametrize("n100,grade", [(6, 1), (7, 3), (13, 3), (14, 4)])
def test_early_anc_le_100_row(n100, grade):
    d = np.arange(31)
    v = np.full(31, 2.0)
    v[:n100] = 0.05  # <= 0.1, also counts as <= 0.5
    assert grade_icaht(d, v, unit="10^9/L").early.grade == grade


def test_threshold_is_inclusive():
    d = np.arange(31)
    v = np.where(d < 7, 0.5, 1.2)  # exactly 0.5 for 7 days
    assert grade_icaht(d, v).early.grade == 2
    v = np.where(d < 7, 0.1, 1.2)  # exactly 0.1 for 7 days
    assert grade_icaht(d, v).early.grade == 3


def test_nonstable_recovery_under_3_days_counts():
    # 4 days low, 2 days up, 2 days low: 4 + 2 + 2 = 8 days -> grade 2 (6 without the rule)
    d, v = series([0, 1, 2, 3, 6, 7])
    assert grade_icaht(d, v).early.grade == 2
    # a 3-day recovery is stable: 4 + 2 = 6 days -> grade 1
    d, v = series([0, 1, 2, 3, 7, 8])
    assert grade_icaht(d, v).early.grade == 1


def test_gaps_between_measurements():
    # both ends low: the days between are low
    r = grade_icaht([0, 3, 4], [0.2, 0.3, 1.5])
    assert r.early.grade == 1 and r.early.detail("days_anc_le_0.5") == 4
    # low then recovered with 9 unmeasured days between: lower bound 1 day, could be 10
    # days <= 0.5 (grade 2) and, the gap being longer than 7 days, 9 days <= 0.1 (grade 3)
    r = grade_icaht([0, 10] + list(range(11, 31)), [0.3, 2.0] + [2.0] * 20)
    assert r.early.grade == 1 and r.early.grade_max == 3 and r.early.missing == ("anc",)
    # the same with a 6-day gap: bridged on the "> 0.1" side (both ends > 0.1)
    r = grade_icaht([0, 7] + list(range(8, 31)), [0.3, 2.0] + [2.0] * 23)
    assert r.early.grade == 1 and r.early.grade_max == 2


def test_late_icaht_needs_two_counts():
    r = grade_icaht([31, 40, 50], [1.4, 1.2, 2.0])
    assert r.late.grade == 1
    r = grade_icaht([31, 40, 50], [0.9, 0.8, 2.0])
    assert r.late.grade == 2
    r = grade_icaht([31, 40, 50], [0.4, 0.05, 0.08])
    assert r.late.grade == 4
    # a single transient dip that recovered is not graded at its level
    r = grade_icaht([31, 40, 50], [2.0, 0.4, 2.2])
    assert r.late.grade == 0 and r.late.complete
    # a dip at the last count could still be confirmed: listed as missing
    r = grade_icaht([31, 40, 50], [2.0, 2.1, 0.4])
    assert r.late.grade == 0 and r.late.grade_max == 3 and r.late.missing == ("anc",)
    assert grade_icaht([31, 40], [0.4, 2.0], late_min_tests=1).late.grade == 3


def test_censoring_at_sct():
    d, v = series(range(31))
    r = grade_icaht(d, v, censor_day=10)
    assert r.early.grade == 2  # only days 0-9 used
    assert any("censored at day 10" in x for x in r.early.reasons)
    r = grade_icaht([5, 35, 40], [0.3, 0.2, 0.2], censor_day=30)
    assert r.late.grade is None


# -- units and the public calculator bugs ---------------------------------------------


def test_cells_per_ul_with_decimals_is_not_grade_0():
    r = grade_icaht([35, 40], [1234.5, 1300.0])  # = 1.2345 and 1.3 x10^9/L
    assert r.unit == "cells/uL"
    assert r.late.grade == 1


def test_x10e9_values_are_not_all_grade_4():
    r = grade_icaht([35, 40], [1.2, 1.3])
    assert r.unit == "10^9/L"
    assert r.late.grade == 1
    d, v = series(range(3), low=0.4, high=3.2)
    assert grade_icaht(d, v).early.grade == 1


def test_same_grades_in_either_unit():
    d, v = series(range(9), low=0.35, high=2.6)
    a = grade_icaht(d, v, unit="10^9/L")
    b = grade_icaht(d, v * 1000, unit="cells/µL")
    assert a.early.grade == b.early.grade == 2


def test_ambiguous_units_are_rejected_not_guessed():
    with pytest.raises(GradingInputError, match="unit"):
        grade_icaht([0, 1, 2, 3, 35, 40], [0, 5, 20, 20, 20, 20])
    # all zeros: unit irrelevant
    assert grade_icaht([0, 1], [0, 0]).early.grade == 1
    with pytest.raises(GradingInputError):
        grade_icaht([35], [1500], unit="10^9/L")


def test_dataframe_and_mapping_input_and_missing_counts():
    df = pd.DataFrame({"day": [0, 1, 2, 3], "anc": [0.3, np.nan, 0.3, 2.0]})
    assert grade_icaht(df).early.detail("days_anc_le_0.5") == 3
    long = pd.DataFrame(
        {
            "patient_id": "P1",
            "day": [0, 1, 2],
            "analyte": ["anc", "crp", "anc"],
            "value": [0.2, 150.0, 0.2],
        }
    )
    assert grade_icaht(long).early.detail("days_anc_le_0.5") == 3
    assert grade_icaht({0: 0.3, 1: 0.3}).early.grade == 1


@pytest.mark.parametrize(
    "days,values", [([0, 1], [0.3, -0.1]), ([0, 1], [0.3]), ([0, np.nan], [0.3, 0.2])]
)
def test_bad_series(days, values):
    with pytest.raises(GradingInputError):
        grade_icaht(days, values)


def test_series_and_pairs_inputs_equal_days_and_values():
    """A Series indexed by day, (day, value) pairs and a mapping grade the same."""
    import pandas as pd

    from cartrial.grading import grade_icaht

    days = [0, 5, 10, 15, 20, 25, 30]
    anc = [0.1, 0.05, 0.3, 0.4, 0.6, 1.2, 2.0]
    ref = grade_icaht(days, anc)
    for form in (
        pd.Series(anc, index=days),
        list(zip(days, anc, strict=True)),
        dict(zip(days, anc, strict=True)),
    ):
        got = grade_icaht(form)
        assert (got.early.grade, got.late.grade) == (ref.early.grade, ref.late.grade)
