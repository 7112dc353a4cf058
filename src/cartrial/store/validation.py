"""Field-level validation of records entered through the web app or the API.

The same controlled vocabularies as the cohort loader (``cartrial.cohort.vocab``), so
what the app stores loads back as a valid cohort. ``validate(table, data)`` returns
the cleaned values and a mapping field -> message; nothing is stored when a message
exists. Missing stays missing (None), never zero.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from cartrial.cohort import vocab
from cartrial.cohort.categories import CATEGORIES, decode, describe, encode
from cartrial.cohort.model import COLUMNS, REQUIRED
from cartrial.cohort.tables import (
    BOUNDS,
    CATEGORICAL_ANALYTES,
    REQUIRED_TIME,
    VOCAB_COLUMNS,
    YES_NO_ANALYTES,
)

ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$")
#: the one rule for site codes, the same for import, the command line and the web: letters,
#: digits, blanks, '.', '_' and '-' (so "Centre A" is a valid code); a display name may
#: be given beside it
SITE_PATTERN = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9 _.\-]{0,38}[A-Za-z0-9_.\-])?$")
#: user names: a safe alphabet (never rendered as markup, but kept plain anyway)
USERNAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{1,79}$")
#: plausible CAR-T infusion dates: the first CAR-T infusions were given in the 2000s
EARLIEST_INFUSION = dt.date(2000, 1, 1)
#: at most this many characters in a categorical word (the longest known is ~25)
MAX_WORD = 40


def site_problem(code: object) -> str | None:
    """None when ``code`` is a valid site code, else the message."""
    if not isinstance(code, str) or not SITE_PATTERN.match(code):
        return (
            f"site code {code!r}: 1-40 letters, digits, blanks, '.', '_' or '-', "
            "starting and ending with a letter or digit"
        )
    return None


def username_problem(name: object) -> str | None:
    """None when ``name`` is a valid user name, else the message."""
    if not isinstance(name, str) or not USERNAME_PATTERN.match(name):
        return "user name: 2-80 letters, digits, '.', '_' or '-', starting with a letter or digit"
    return None


#: identifying fields that must never be stored (study IDs only)
IDENTIFYING = frozenset(
    {
        "name",
        "first_name",
        "last_name",
        "surname",
        "given_name",
        "full_name",
        "patient_name",
        "birth_date",
        "date_of_birth",
        "dob",
        "birthdate",
        "address",
        "phone",
        "email",
        "mrn",
        "ssn",
        "nhs_number",
    }
)


@dataclass(frozen=True)
class Field:
    kind: str  # str, float, int, bool, date, vocab, id
    required: bool = False
    vocabulary: Mapping[str, Any] | None = None
    lo: float | None = None
    hi: float | None = None
    max_len: int = 200


#: cohort dtype (``cartrial.cohort.model.COLUMNS``) -> entry kind; a float column whose
#: ``BOUNDS`` say whole numbers is entered as ``int``
_KIND = {"float": "float", "Int64": "int", "bool": "bool", "date": "date", "str": "str"}
#: the store keys child records by their patient (a foreign key), not by an entered field
_KEYED_BY_PARENT = ("events", "adverse_events", "observations")
#: what only the store adds to the cohort's declaration: its own kinds (a study ID, a site
#: code, the observation's number-or-word ``value`` split into ``value``/``value_text`` by
#: ``_split_value``, as a CSV's value column is), the MRD words (the cohort also reads a
#: fraction there), text lengths. Everything else is derived (``_derive``).
STORE_ONLY: dict[tuple[str, str], dict[str, Any]] = {
    ("patients", "patient_id"): {"kind": "id"},
    ("patients", "site"): {"kind": "site"},
    ("events", "mrd"): {"kind": "vocab", "vocabulary": vocab.MRD},
    ("observations", "value"): {"kind": "value"},
    ("observations", "value_text"): {"max_len": MAX_WORD},
    ("observations", "unit"): {"max_len": 40},
}


def _derive(table: str) -> dict[str, Field]:
    """The entry specs of one table from the cohort's declaration: ``COLUMNS`` (kind),
    ``BOUNDS`` (range, whole numbers), ``VOCAB_COLUMNS`` (vocabulary), ``REQUIRED`` plus
    the table's time column (the store has no date columns), and ``STORE_ONLY``."""
    required = set(REQUIRED[table])
    if table in REQUIRED_TIME:
        required.add(REQUIRED_TIME[table])
    specs = {}
    for column, dtype in COLUMNS[table].items():
        if table in _KEYED_BY_PARENT and column == "patient_id":
            continue
        lo, hi, integer = BOUNDS.get((table, column), (None, None, False))
        vocabulary = VOCAB_COLUMNS.get((table, column))
        kind = "vocab" if vocabulary is not None else _KIND[dtype]
        if kind == "float" and integer:
            kind = "int"
        spec = Field(kind, column in required, vocabulary, lo, hi)
        specs[column] = replace(spec, **STORE_ONLY.get((table, column), {}))
    return specs


#: entry specs per table: the cohort contract's columns, derived (``_derive``)
SPECS: dict[str, dict[str, Field]] = {table: _derive(table) for table in COLUMNS}


def _blank(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, float) and math.isnan(value):
        return True
    return isinstance(value, str) and value.strip() == ""


def _clean(name: str, spec: Field, value: Any) -> Any:
    """Convert one value; raise ValueError with the message shown beside the field."""
    if spec.kind in ("float", "int"):
        if isinstance(value, bool):
            raise ValueError("expected a number")
        try:
            num = float(str(value).strip()) if isinstance(value, str) else float(value)
        except (TypeError, ValueError):
            raise ValueError(f"expected a number, got {value!r}") from None
        if not math.isfinite(num):
            raise ValueError("expected a finite number")
        if spec.kind == "int":
            if num != int(num):
                raise ValueError(f"expected a whole number, got {value!r}")
            num = int(num)
        if spec.lo is not None and num < spec.lo:
            raise ValueError(f"must be at least {spec.lo:g}")
        if spec.hi is not None and num > spec.hi:
            raise ValueError(f"must be at most {spec.hi:g}")
        return num
    if spec.kind == "value":  # numeric, or a word for categorical analytes (checked later)
        if isinstance(value, bool):
            return "yes" if value else "no"
        try:
            num = float(value)
        except (TypeError, ValueError):
            word = str(value).strip().lower()
            if len(word) > MAX_WORD:
                raise ValueError(f"at most {MAX_WORD} characters") from None
            return word
        if not math.isfinite(num) or (spec.lo is not None and num < spec.lo):
            lowest = (
                "" if spec.lo is None else "non-negative " if spec.lo == 0 else f"≥ {spec.lo:g} "
            )
            raise ValueError(f"expected a {lowest}finite number")
        return num
    if spec.kind == "bool":
        if isinstance(value, bool):
            return value
        answer = vocab.canonical(value, vocab.YES_NO)
        if answer is None:
            raise ValueError(f"expected yes or no, got {value!r}")
        return answer == "yes"
    if spec.kind == "date":
        if isinstance(value, dt.datetime):
            value = value.date()
        if not isinstance(value, dt.date):
            try:
                value = dt.date.fromisoformat(str(value).strip()[:40])
            except ValueError:
                raise ValueError(f"expected an ISO date YYYY-MM-DD, got {value!r}") from None
        latest = dt.date.today() + dt.timedelta(days=1)
        if not EARLIEST_INFUSION <= value <= latest:
            raise ValueError(
                f"not a plausible date: expected {EARLIEST_INFUSION} to {latest} (today)"
            )
        return value
    if isinstance(value, list | dict):
        raise ValueError("expected a single value")
    text = str(value).strip() if not isinstance(value, str) else value.strip()
    if len(text) > max(spec.max_len, 200):
        raise ValueError(f"at most {spec.max_len} characters")
    if spec.kind == "site":
        problem = site_problem(text)
        if problem:
            raise ValueError(problem)
        return text
    if spec.kind == "id":
        if not ID_PATTERN.match(text):
            raise ValueError(
                "expected a study ID: letters, digits, '.', '_' or '-', at most 64 characters"
            )
        return text
    if spec.kind == "vocab":
        voc = spec.vocabulary or {}
        found = vocab.canonical(text, voc)
        if found is None:
            raise ValueError(f"unknown value {text!r}; expected one of {vocab.allowed(voc)}")
        return found
    if len(text) > spec.max_len:
        raise ValueError(f"at most {spec.max_len} characters")
    if any(ord(c) < 32 for c in text):
        raise ValueError("control characters are not allowed")
    return text


def validate(
    table: str, data: Mapping[str, Any], partial: bool = False
) -> tuple[dict[str, Any], dict[str, str]]:
    """Clean ``data`` for ``table``; returns (values, errors by field).

    ``partial=True`` validates only the fields present (an update). Unknown fields
    are errors (identifying fields with a specific message).
    """
    specs = SPECS[table]
    values: dict[str, Any] = {}
    errors: dict[str, str] = {}
    if table == "observations":
        data = _word_as_value(data, errors)
    for key in data:
        if key not in specs:
            if key.lower() in IDENTIFYING:
                errors[key] = "identifying data is not stored: use the study ID only"
            else:
                errors[key] = f"unknown field; expected one of {', '.join(specs)}"
    for name, spec in specs.items():
        if (name not in data and partial) or name in errors:
            continue
        raw = data.get(name)
        if _blank(raw):
            if spec.required:
                errors[name] = "required"
            else:
                values[name] = None
            continue
        try:
            values[name] = _clean(name, spec, raw)
        except ValueError as exc:
            errors[name] = str(exc)
    if table == "observations" and "analyte" in values and "unit" not in errors:
        _check_unit(values, errors, partial)
    if table == "observations" and "analyte" in values and "value" in values:
        _split_value(values, errors)
    if table == "adverse_events":
        onset, end = values.get("onset_day"), values.get("resolution_day")
        if onset is not None and end is not None and end < onset:
            errors["resolution_day"] = "must not be before the onset day"
    if table == "events" and values.get("event") == "response" and not values.get("response"):
        if "response" not in errors:
            errors["response"] = "required for an event of type 'response'"
    if table == "events" and values.get("cause") and values.get("event") not in (None, "death"):
        errors["cause"] = "a cause is recorded for death events only"
    return values, errors


def _word_as_value(data: Mapping[str, Any], errors: dict[str, str]) -> Mapping[str, Any]:
    """An observation's word may come in ``value`` (as in a CSV) or in ``value_text`` (as
    in the cohort's typed table); either way it is checked and stored by ``_split_value``.
    ``value_text`` is never stored as given."""
    if "value_text" not in data:
        return data
    data = dict(data)
    word = data.pop("value_text")
    if _blank(word):
        return data
    if not _blank(data.get("value")):
        errors["value_text"] = "a word goes in value_text only when value is empty"
    elif not isinstance(word, str):
        errors["value_text"] = f"expected a word, got {word!r}"
    else:
        data["value"] = word
    return data


def _check_unit(values: dict[str, Any], errors: dict[str, str], partial: bool) -> None:
    analyte = values["analyte"]
    units = vocab.ANALYTES[analyte][1]
    unit = values.get("unit")
    if units is None:
        return
    if unit is None:
        if len(units) == 1 and (not partial or "unit" in values):
            values["unit"] = next(iter(units))  # the unit is fixed by the analyte
        elif not partial or "unit" in values:
            errors["unit"] = f"required for {analyte}; expected {', '.join(sorted(units))}"
        return
    canon = vocab.canonical(unit, {u: vocab.UNIT_ALIASES.get(u, ()) for u in units})
    if canon is None:
        errors["unit"] = f"{unit!r} is not a unit of {analyte}; expected {', '.join(sorted(units))}"
    else:
        values["unit"] = canon


def _split_value(values: dict[str, Any], errors: dict[str, str]) -> None:
    """Numbers go to ``value``; words (allowed for categorical analytes) to ``value_text``."""

    value = values["value"]
    values["value_text"] = None
    if isinstance(value, str):
        if values["analyte"] in CATEGORICAL_ANALYTES:
            word, problem = category_word(values["analyte"], value)
            if problem:
                errors["value"] = problem
            values["value_text"], values["value"] = word, None
        else:
            errors["value"] = (
                f"expected a non-negative number for {values['analyte']}, got {value!r}"
            )


def category_word(analyte: str, word: str) -> tuple[str | None, str | None]:
    """The canonical word of a categorical analyte's value, or (None, message).

    The same vocabularies as the cohort loader (``cartrial.cohort.categories`` for the
    grading categories, yes/no for the others), so what is stored loads back.
    """

    if analyte in CATEGORIES:
        try:
            code = encode(analyte, word)
        except KeyError:
            return None, f"for {analyte}, expected one of: {describe(analyte)}"
        return decode(analyte, code), None
    if analyte in YES_NO_ANALYTES:
        found = vocab.canonical(word, vocab.YES_NO)
        if found is None:
            return None, f"for {analyte}, expected yes or no"
        return found, None
    return word, None
