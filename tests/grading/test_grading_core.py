"""The shared machinery: Grade records, observation validation, codes, the missing rule."""

from __future__ import annotations

import math

import numpy as np
import pytest

from cartrial.grading import Grade, GradingInputError, codes
from cartrial.grading.core import Fill, bound, parse_column, parse_observations, parse_value


def test_grade_to_dict_and_complete():
    g = Grade("ASTCT2019", 2, ("why",), ("oxygen",), 4, None, (("stages", {"skin": 1}),))
    d = g.to_dict()
    assert d["system"] == "ASTCT2019" and d["grade"] == 2 and d["reasons"] == ["why"]
    assert d["missing"] == ["oxygen"] and d["grade_max"] == 4
    assert d["details"] == {"stages": {"skin": 1}}
    assert not g.complete and g.detail("stages") == {"skin": 1} and g.detail("x", 7) == 7
    with pytest.raises(AttributeError):
        g.grade = 3  # frozen


def test_error_message_names_field_value_expectation():
    err = GradingInputError("ice_score", 11, "a whole number from 0 to 10", "row 4")
    assert str(err) == "row 4: observation 'ice_score' = 11: expected a whole number from 0 to 10"
    assert isinstance(err, ValueError)


@pytest.mark.parametrize(
    "name,value,expected",
    [
        ("vasopressin", "yes", 1.0),
        ("vasopressin", "No", 0.0),
        ("vasopressin", True, 1.0),
        ("vasopressin", 0, 0.0),
        ("oxygen", "HFNC", 3.0),
        ("oxygen", "Room air", 0.0),
        ("oxygen", 9, 9.0),
        ("oxygen", "9", 9.0),
        ("consciousness", "awakens to voice", 2.0),
        ("temperature_c", "38.5", 38.5),
        ("ice_score", np.int64(7), 7.0),
        ("sex", "female", 0.0),
    ],
)
def test_parse_value_accepts_words_codes_and_numbers(name, value, expected):
    assert parse_value(name, value) == expected


@pytest.mark.parametrize("value", [None, float("nan"), "", "NA", "unknown"])
def test_missing_values_are_nan_never_zero(value):
    assert math.isnan(parse_value("anc", value))


@pytest.mark.parametrize(
    "name,value",
    [
        ("oxygen", 10),
        ("oxygen", 2.5),
        ("oxygen", True),
        ("ice_score", 10.5),
        ("anc", "low"),
        ("anc", True),
        ("vasopressin", 2),
    ],
)
def test_parse_value_rejects(name, value):
    with pytest.raises(GradingInputError) as info:
        parse_value(name, value)
    assert info.value.field == name


def test_parse_observations_aliases_and_conflicts():
    v = parse_observations({"temperature": 38.2}, anticytokine_given=True)
    assert v == {"temperature_c": 38.2, "fever_masked": 1.0}
    with pytest.raises(GradingInputError, match="one value"):
        parse_observations({"temperature": 38.2, "temperature_c": 39.0})
    assert parse_observations({"day": 3, "patient_id": "P1"}) == {}


def test_parse_column_reports_the_row():
    with pytest.raises(GradingInputError) as info:
        parse_column("ice_score", np.array([10.0, 9.0, 12.0]))
    assert info.value.where == "row 2"
    out = parse_column("oxygen", np.array(["none", "cpap", None], dtype=object))
    assert out[0] == 0 and out[1] == 7 and math.isnan(out[2])


def test_codes_roundtrip_and_order():
    for cat, table in codes.CATEGORIES.items():
        for word, code in table.items():
            assert codes.decode(cat, codes.encode(cat, word)) == word
            assert codes.encode(cat, code) == code
    assert list(codes.OXYGEN.values()) == list(range(10))
    with pytest.raises(KeyError):
        codes.encode("oxygen", "helmet")


def test_bound_on_a_toy_kernel():
    # grade = max(a, b) gated by g: with g unknown the lower bound is 0
    def kern(d):
        return np.where(d["g"] >= 1, np.maximum(d["a"], d["b"]), 0)

    fills = {"g": Fill(0, 1), "a": Fill(0, 3), "b": Fill(0, 4)}
    data = {
        "g": np.array([1.0, np.nan, 1.0]),
        "a": np.array([2.0, 2.0, np.nan]),
        "b": np.array([1.0, np.nan, np.nan]),
    }
    b = bound(kern, data, fills)
    assert b.lo.tolist() == [2, 0, 0] and b.hi.tolist() == [2, 4, 4]
    assert b.missing_at(0) == () and set(b.missing_at(1)) == {"g", "b"}
    assert set(b.missing_at(2)) == {"a", "b"}
