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
from dataclasses import dataclass
from typing import Any

from cartrial.cohort import vocab

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
        return (f"site code {code!r}: 1-40 letters, digits, blanks, '.', '_' or '-', "
                "starting and ending with a letter or digit")
    return None


def username_problem(name: object) -> str | None:
    """None when ``name`` is a valid user name, else the message."""
    if not isinstance(name, str) or not USERNAME_PATTERN.match(name):
        return ("user name: 2-80 letters, digits, '.', '_' or '-', starting with a letter "
                "or digit")
    return None
#: identifying fields that must never be stored (study IDs only)
IDENTIFYING = frozenset(
    {"name", "first_name", "last_name", "surname", "given_name", "full_name", "patient_name",
     "birth_date", "date_of_birth", "dob", "birthdate", "address", "phone", "email", "mrn",
     "ssn", "nhs_number"}
)


@dataclass(frozen=True)
class Field:
    kind: str  # str, float, int, bool, date, vocab, id
    required: bool = False
    vocabulary: Mapping[str, Any] | None = None
    lo: float | None = None
    hi: float | None = None
    max_len: int = 200


def _analytes() -> dict[str, tuple[str, ...]]:
    return {name: aliases for name, (aliases, _units) in vocab.ANALYTES.items()}


SPECS: dict[str, dict[str, Field]] = {
    "patients": {
        "patient_id": Field("id", required=True),
        "age_years": Field("float", lo=0, hi=120),
        "sex": Field("vocab", vocabulary=vocab.SEX),
        "diagnosis": Field("str"),
        "cd7_blasts_pct": Field("float", lo=0, hi=100),
        "bm_blasts_pct": Field("float", lo=0, hi=100),
        "extramedullary": Field("str"),
        "prior_lines": Field("int", lo=0, hi=50),
        "prior_allo_sct": Field("bool"),
        "product_source": Field("vocab", vocabulary=vocab.PRODUCT_SOURCES),
        "donor_relation": Field("str"),
        "hla_match": Field("str"),
        "dose_per_kg": Field("float", lo=0),
        "dose_level": Field("str"),
        "weight_kg": Field("float", lo=0.3, hi=400),
        "height_cm": Field("float", lo=20, hi=260),
        "site": Field("site"),
        "enrolled": Field("bool"),
        "infused": Field("bool"),
        "infusion_date": Field("date"),
    },
    "events": {
        "day": Field("float", required=True, lo=0, hi=36500),
        "event": Field("vocab", required=True, vocabulary=vocab.EVENTS),
        "response": Field("vocab", vocabulary=vocab.RESPONSES),
        "mrd": Field("vocab", vocabulary=vocab.MRD),
        "mrd_value": Field("float", lo=0, hi=1),
        "cd7_status": Field("vocab", vocabulary=vocab.CD7_STATUS),
        "site": Field("str"),
        "cause": Field("vocab", vocabulary=vocab.DEATH_CAUSES),
    },
    "adverse_events": {
        "term": Field("vocab", required=True, vocabulary=vocab.AE_TERMS),
        "onset_day": Field("float", required=True, lo=-60, hi=36500),
        "resolution_day": Field("float", lo=-60, hi=36500),
        "grade": Field("int", required=True, lo=0, hi=5),
        "system": Field("vocab", vocabulary=vocab.GRADING_SYSTEMS),
        "serious": Field("bool"),
        "organ": Field("str"),
        "derived": Field("bool"),
    },
    "observations": {
        "day": Field("float", required=True, lo=-60, hi=36500),
        "analyte": Field("vocab", required=True, vocabulary=None),
        "value": Field("value", required=True),
        "unit": Field("str", max_len=40),
        "lloq": Field("float", lo=0),
    },
}


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
        if not math.isfinite(num) or num < 0:
            raise ValueError("expected a non-negative finite number")
        return num
    if spec.kind == "bool":
        if isinstance(value, bool):
            return value
        word = vocab.canonical(value, vocab.YES_NO)
        if word is None:
            raise ValueError(f"expected yes or no, got {value!r}")
        return word == "yes"
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
            raise ValueError(f"not a plausible date: expected {EARLIEST_INFUSION} to "
                             f"{latest} (today)")
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
        voc = spec.vocabulary if spec.vocabulary is not None else _analytes()
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
    for key in data:
        if key not in specs:
            if key.lower() in IDENTIFYING:
                errors[key] = "identifying data is not stored: use the study ID only"
            else:
                errors[key] = f"unknown field; expected one of {', '.join(specs)}"
    for name, spec in specs.items():
        if name not in data and partial:
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
    from cartrial.cohort.tables import CATEGORICAL_ANALYTES

    value = values["value"]
    values["value_text"] = None
    if isinstance(value, str):
        if values["analyte"] in CATEGORICAL_ANALYTES:
            word, problem = category_word(values["analyte"], value)
            if problem:
                errors["value"] = problem
            values["value_text"], values["value"] = word, None
        else:
            errors["value"] = f"expected a non-negative number for {values['analyte']}, got {value!r}"


def category_word(analyte: str, word: str) -> tuple[str | None, str | None]:
    """The canonical word of a categorical analyte's value, or (None, message).

    The same vocabularies as the cohort loader (``cartrial.cohort.categories`` for the
    grading categories, yes/no for the others), so what is stored loads back.
    """
    from cartrial.cohort.categories import CATEGORIES, decode, describe, encode
    from cartrial.cohort.tables import YES_NO_ANALYTES

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
