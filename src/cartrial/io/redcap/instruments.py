"""Reading an offline REDCap export: records, data dictionary, events, repeating forms.

The export a data manager has is a flat "raw" records CSV (one row per record and
event, plus one row per instance of a repeating instrument), the project's data
dictionary (the standard 18 columns), and for longitudinal projects the instrument–event
designations (``arm_num, unique_event_name, form``) and the repeating-instrument settings
(``event_name, form_name, custom_form_label``). ``read_redcap_instruments`` splits the
flat file into one long table per instrument keyed by record, event, repeat instrument
and instance, and types every column from the dictionary:

- text with validation ``date_ymd``/``date_mdy``/``date_dmy`` -> date (the raw export
  writes YYYY-MM-DD whatever the validation; the validation's display order is also
  accepted), ``datetime*`` -> timestamp, ``integer`` -> Int64, ``number*`` -> float,
  with the dictionary's min/max checked;
- ``radio``/``dropdown`` -> the choice LABEL (the code must be one of the dictionary's
  choices), ``yesno``/``truefalse`` -> boolean, ``checkbox`` -> one boolean column per
  code (``field___code``) plus ``field`` holding the ticked labels joined by "; ",
  ``calc`` -> float, ``slider`` -> Int64, ``notes``/other text -> string;
- ``<form>_complete`` -> Int64 status 0 (incomplete), 1 (unverified), 2 (complete).

Missing-data codes (REDCap project setting "Missing Data Codes", e.g. ``UNK, Unknown |
NASK, Not asked | NI, No information | -999, Not done``; for checkbox fields REDCap adds
one column per code, ``field___unk``): a cell holding a code is read as missing, never
as a number or an error, and the code is kept in ``RedcapExport.missing`` (record,
event, instrument, instance, field, code, label, line) so "not asked" and "unknown"
stay distinguishable. Codes come from the mapping's ``missing_codes`` or the project's
metadata (``missing_data_codes`` of the project-information export).

Nothing is coerced silently: every cell that does not fit is a ``Problem`` naming the
file, line, field, value, record and event, and all of them are raised together as one
``CohortError``. Field types and conventions follow the REDCap data dictionary guide
(Vanderbilt, "Data Dictionary" help page) and the REDCap API ``export records`` format.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from cartrial.cohort.errors import CohortError, Problem

#: the standard data-dictionary header (REDCap "Download the current Data Dictionary") and
#: the names the API's metadata export uses for the same columns
DICTIONARY_COLUMNS: dict[str, tuple[str, str]] = {
    "field": ("Variable / Field Name", "field_name"),
    "form": ("Form Name", "form_name"),
    "section": ("Section Header", "section_header"),
    "type": ("Field Type", "field_type"),
    "label": ("Field Label", "field_label"),
    "choices": ("Choices, Calculations, OR Slider Labels", "select_choices_or_calculations"),
    "note": ("Field Note", "field_note"),
    "validation": (
        "Text Validation Type OR Show Slider Number",
        "text_validation_type_or_show_slider_number",
    ),
    "min": ("Text Validation Min", "text_validation_min"),
    "max": ("Text Validation Max", "text_validation_max"),
    "identifier": ("Identifier?", "identifier"),
    "branching": ("Branching Logic (Show field only if...)", "branching_logic"),
    "required": ("Required Field?", "required_field"),
    "alignment": ("Custom Alignment", "custom_alignment"),
    "question_number": ("Question Number (surveys only)", "question_number"),
    "matrix_group": ("Matrix Group Name", "matrix_group_name"),
    "matrix_ranking": ("Matrix Ranking?", "matrix_ranking"),
    "annotation": ("Field Annotation", "field_annotation"),
}
REQUIRED_DICTIONARY = ("field", "form", "type")
CHOICE_TYPES = frozenset({"radio", "dropdown", "checkbox"})
KNOWN_TYPES = frozenset(
    {
        "text",
        "notes",
        "radio",
        "dropdown",
        "checkbox",
        "yesno",
        "truefalse",
        "calc",
        "slider",
        "file",
        "descriptive",
        "sql",
    }
)
#: REDCap system columns of a records export (not in the dictionary)
SYSTEM_COLUMNS = (
    "redcap_event_name",
    "redcap_repeat_instrument",
    "redcap_repeat_instance",
    "redcap_data_access_group",
    "redcap_survey_identifier",
    "redcap_arm",
)
KEY_COLUMNS = (
    "redcap_event_name",
    "redcap_repeat_instrument",
    "redcap_repeat_instance",
    "redcap_data_access_group",
    "source_row",
)
DATE_FORMATS = {
    "ymd": ("%Y-%m-%d", "%Y/%m/%d"),
    "mdy": ("%m-%d-%Y", "%m/%d/%Y"),
    "dmy": ("%d-%m-%Y", "%d/%m/%Y"),
}


def parse_missing_codes(text: str) -> dict[str, str]:
    """``"UNK, Unknown | NASK, Not asked"`` -> {"UNK": "Unknown", "NASK": "Not asked"}."""
    out: dict[str, str] = {}
    for part in str(text or "").replace("\n", "|").split("|"):
        code, _sep, label = part.strip().partition(",")
        if code.strip():
            out[code.strip()] = label.strip() or code.strip()
    return out


def read_project_info(path: str | os.PathLike[str] | None) -> dict[str, str]:
    """Missing-data codes from a project-information export (CSV or JSON with
    ``missing_data_codes``, as REDCap's API ``export project info`` writes it); {} if none."""
    if path is None:
        return {}
    p = Path(path)
    if p.suffix.lower() == ".json":
        import json

        doc = json.loads(p.read_text(encoding="utf-8"))
        return parse_missing_codes(
            doc.get("missing_data_codes", "") if isinstance(doc, dict) else ""
        )
    raw = _read_text_csv(p, "REDCap project information")
    if "missing_data_codes" not in raw.columns or raw.empty:
        return {}
    return parse_missing_codes(raw["missing_data_codes"].iloc[0])


@dataclass(frozen=True)
class Field:
    """One data-dictionary row."""

    name: str
    form: str
    type: str
    label: str = ""
    choices: dict[str, str] = field(default_factory=dict)  # code -> label, in order
    validation: str = ""
    vmin: str = ""
    vmax: str = ""
    identifier: bool = False
    row: int = 0

    @property
    def kind(self) -> str:
        """What the value becomes: date, datetime, integer, number, choice, bool, checkbox, text."""
        v = self.validation.lower()
        if self.type in ("radio", "dropdown"):
            return "choice"
        if self.type in ("yesno", "truefalse"):
            return "bool"
        if self.type == "checkbox":
            return "checkbox"
        if self.type == "calc":
            return "number"
        if self.type == "slider":
            return "integer"
        if self.type == "text":
            if v.startswith("datetime"):
                return "datetime"
            if v.startswith("date"):
                return "date"
            if v == "integer":
                return "integer"
            if v.startswith("number"):
                return "number"
        return "text"

    @property
    def free_text(self) -> bool:
        """A field where people type words: notes, or text without a validation type."""
        return self.type == "notes" or (
            self.type == "text" and self.kind == "text" and self.validation == ""
        )


@dataclass(frozen=True)
class Dictionary:
    """A parsed REDCap data dictionary."""

    fields: dict[str, Field]
    file: str

    @property
    def record_field(self) -> str:
        """The record-id field: the first field of the dictionary (REDCap's rule)."""
        return next(iter(self.fields))

    @property
    def forms(self) -> list[str]:
        return list(dict.fromkeys(f.form for f in self.fields.values()))

    def form_fields(self, form: str) -> list[Field]:
        return [
            f
            for f in self.fields.values()
            if f.form == form and f.type != "descriptive" and f.name != self.record_field
        ]

    def columns_of(self, f: Field) -> list[str]:
        """The export columns of a field (checkbox: one per code)."""
        if f.type == "checkbox":
            return [checkbox_column(f.name, code) for code in f.choices]
        return [f.name]


def checkbox_column(field_name: str, code: str) -> str:
    """REDCap's export column of one checkbox option: ``field___code`` (code lower-cased, - → _)."""
    return f"{field_name}___{str(code).strip().lower().replace('-', '_')}"


MISSING_COLUMNS = [
    "record",
    "event",
    "instrument",
    "instance",
    "field",
    "code",
    "label",
    "source_row",
]


@dataclass
class RedcapExport:
    """What ``read_export`` returns: typed instruments plus the metadata needed to map them."""

    dictionary: Dictionary
    instruments: dict[str, pd.DataFrame]
    records: list[str]
    dag: dict[str, str]
    records_file: str
    longitudinal: bool
    designations: dict[str, list[str]] | None = None  # event -> forms
    repeating: set[tuple[str, str]] = field(default_factory=set)  # (event, form); form "" = event
    #: one row per cell read as missing because it held a missing-data code or a query
    missing: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=MISSING_COLUMNS))


# --------------------------------------------------------------------------- reading files


def _read_text_csv(path: str | os.PathLike[str] | None, what: str) -> pd.DataFrame:
    if path is None or not Path(path).is_file():
        raise CohortError(
            [Problem(str(path), None, None, None, f"an existing {what} CSV file")], str(path)
        )
    try:
        df = pd.read_csv(
            path, dtype=str, keep_default_na=False, na_filter=False, encoding="utf-8-sig"
        )
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise CohortError(
            [
                Problem(
                    str(path),
                    None,
                    None,
                    None,
                    f"a well-formed UTF-8 {what} CSV with a header ({exc})",
                )
            ],
            str(path),
        ) from exc
    df.columns = [str(c).strip() for c in df.columns]
    return df


def parse_choices(
    text: str, file: str, row: int, field_name: str, problems: list[Problem]
) -> dict[str, str]:
    """``"1, Male | 2, Female"`` -> {"1": "Male", "2": "Female"} (REDCap choice syntax)."""
    out: dict[str, str] = {}
    text = text.strip()
    if not text:
        problems.append(
            Problem(
                file,
                row,
                DICTIONARY_COLUMNS["choices"][0],
                "",
                f"choices for field {field_name!r} like '1, Label | 2, Label'",
            )
        )
        return out
    for part in text.split("|"):
        code, sep, label = part.strip().partition(",")
        if not sep or not code.strip():
            problems.append(
                Problem(
                    file,
                    row,
                    DICTIONARY_COLUMNS["choices"][0],
                    part.strip(),
                    f"a choice 'code, label' for field {field_name!r}",
                )
            )
            continue
        out[code.strip()] = label.strip()
    return out


def read_dictionary(path: str | os.PathLike[str] | None) -> Dictionary:
    """Parse a REDCap data dictionary (standard header, or the API metadata names)."""
    raw = _read_text_csv(path, "REDCap data dictionary")
    file = str(path)
    rename: dict[str, str] = {}
    for key, names in DICTIONARY_COLUMNS.items():
        for col in raw.columns:
            if col in names or col.lower() in names:
                rename[col] = key
    raw = raw.rename(columns=rename)
    problems = [
        Problem(
            file,
            1,
            DICTIONARY_COLUMNS[k][0],
            None,
            f"the data-dictionary column '{DICTIONARY_COLUMNS[k][0]}'",
        )
        for k in REQUIRED_DICTIONARY
        if k not in raw.columns
    ]
    if problems:
        raise CohortError(problems, file)
    for key in DICTIONARY_COLUMNS:
        if key not in raw.columns:
            raw[key] = ""
    fields: dict[str, Field] = {}
    for i, r in enumerate(raw.itertuples(index=False), start=2):
        name, ftype = r.field.strip(), r.type.strip().lower()
        if not name:
            problems.append(Problem(file, i, "Variable / Field Name", "", "a field name"))
            continue
        if ftype not in KNOWN_TYPES:
            problems.append(
                Problem(
                    file,
                    i,
                    "Field Type",
                    r.type,
                    "a REDCap field type: " + ", ".join(sorted(KNOWN_TYPES)),
                )
            )
            continue
        if name in fields:
            problems.append(
                Problem(
                    file,
                    i,
                    "Variable / Field Name",
                    name,
                    f"a unique field name (already on row {fields[name].row})",
                )
            )
            continue
        choices: dict[str, str] = {}
        if ftype in CHOICE_TYPES:
            choices = parse_choices(r.choices, file, i, name, problems)
        elif ftype == "yesno":
            choices = {"1": "Yes", "0": "No"}
        elif ftype == "truefalse":
            choices = {"1": "True", "0": "False"}
        fields[name] = Field(
            name=name,
            form=r.form.strip(),
            type=ftype,
            label=r.label.strip(),
            choices=choices,
            validation=r.validation.strip(),
            vmin=r.min.strip(),
            vmax=r.max.strip(),
            identifier=r.identifier.strip().lower() == "y",
            row=i,
        )
    if not fields:
        problems.append(Problem(file, None, None, None, "at least one field in the dictionary"))
    if problems:
        raise CohortError(problems, file)
    return Dictionary(fields=fields, file=file)


def read_event_mapping(
    path: str | os.PathLike[str] | None, dictionary: Dictionary
) -> dict[str, list[str]] | None:
    """Instrument–event designations: {unique_event_name: [forms]} (None if no file)."""
    if path is None:
        return None
    raw = _read_text_csv(path, "REDCap instrument-event mapping")
    file = str(path)
    missing = [c for c in ("unique_event_name", "form") if c not in raw.columns]
    if missing:
        raise CohortError([Problem(file, 1, c, None, f"a column '{c}'") for c in missing], file)
    forms = set(dictionary.forms)
    problems = [
        Problem(file, i, "form", f, f"a form of the data dictionary {dictionary.file}")
        for i, f in enumerate(raw["form"].str.strip(), start=2)
        if f not in forms
    ]
    if problems:
        raise CohortError(problems, file)
    out: dict[str, list[str]] = {}
    for ev, form in zip(raw["unique_event_name"].str.strip(), raw["form"].str.strip(), strict=True):
        out.setdefault(ev, []).append(form)
    return out


def read_repeating(
    path: str | os.PathLike[str] | None, dictionary: Dictionary
) -> set[tuple[str, str]]:
    """Repeating settings: {(event_name, form_name)}; form "" marks a repeating event."""
    if path is None:
        return set()
    raw = _read_text_csv(path, "REDCap repeating instruments")
    file = str(path)
    if "form_name" not in raw.columns:
        raise CohortError([Problem(file, 1, "form_name", None, "a column 'form_name'")], file)
    events = (
        raw["event_name"].str.strip()
        if "event_name" in raw.columns
        else pd.Series("", index=raw.index)
    )
    forms = set(dictionary.forms)
    problems = [
        Problem(file, i, "form_name", f, f"a form of the data dictionary {dictionary.file}")
        for i, f in enumerate(raw["form_name"].str.strip(), start=2)
        if f and f not in forms
    ]
    if problems:
        raise CohortError(problems, file)
    return set(zip(events, raw["form_name"].str.strip(), strict=True))


# --------------------------------------------------------------------------- typing cells


def _where(rec: pd.Series, ev: pd.Series, inst: pd.Series, i: int, form: str = "") -> str:
    text = f"record {rec.iloc[i]!s}"
    if ev.iloc[i]:
        text += f", event {ev.iloc[i]!s}"
    if form:
        text += f", instrument {form}"
    if inst.iloc[i]:
        text += f" instance {inst.iloc[i]!s}"
    return text


class _Typer:
    """Types the columns of one instrument, collecting problems with record/event context."""

    def __init__(
        self,
        file: str,
        rows: np.ndarray,
        rec: pd.Series,
        ev: pd.Series,
        inst: pd.Series,
        form: str,
        codes: dict[str, str] | None = None,
    ) -> None:
        self.file, self.rows, self.rec, self.ev, self.inst, self.form = (
            file,
            rows,
            rec,
            ev,
            inst,
            form,
        )
        self.problems: list[Problem] = []
        self.codes = codes or {}
        self.missing: list[dict] = []
        self.rinst: pd.Series | None = None  # repeat instrument per row (rows of every form)

    def _note_missing(self, mask: np.ndarray, field_name: str, codes: pd.Series) -> None:
        for i in np.flatnonzero(mask):
            code = str(codes.iloc[i])
            self.missing.append(
                {
                    "record": str(self.rec.iloc[i]),
                    "event": str(self.ev.iloc[i]),
                    "instrument": self.form,
                    "instance": self.inst.iloc[i] or None,
                    "field": field_name,
                    "code": code,
                    "label": self.codes.get(code, code),
                    "source_row": int(self.rows[i]),
                }
            )

    def _codes_to_empty(self, f: Field, text: pd.Series) -> pd.Series:
        """Cells holding a missing-data code become empty; the code is kept in ``missing``."""
        if not self.codes:
            return text
        coded = text.isin(list(self.codes)).to_numpy()
        if f.kind == "choice" or f.kind == "bool":
            coded &= ~text.isin(list(f.choices)).to_numpy()  # a real choice code wins
        self._note_missing(coded, f.name, text)
        return text.where(~coded, "")

    def report(self, mask: np.ndarray, column: str, values: pd.Series, expected: str) -> None:
        for i in np.flatnonzero(mask):
            form = self.form or ("" if self.rinst is None else str(self.rinst.iloc[i]))
            ctx = _where(self.rec, self.ev, self.inst, int(i), form)
            self.problems.append(
                Problem(
                    self.file, int(self.rows[i]), column, str(values.iloc[i]), f"{expected} ({ctx})"
                )
            )

    def type_field(self, f: Field, raw: pd.DataFrame) -> dict[str, pd.Series]:
        kind = f.kind
        if kind == "checkbox":
            return self._checkbox(f, raw)
        text = self._codes_to_empty(f, raw[f.name].str.strip())
        empty = (text == "").to_numpy()
        if kind == "choice" or kind == "bool":
            known = text.isin(list(f.choices)).to_numpy()
            allowed = ", ".join(f"{c} ({lab})" for c, lab in f.choices.items())
            self.report(
                ~empty & ~known,
                f.name,
                text,
                f"a choice code of field {f.name!r} in the data dictionary: {allowed}",
            )
            if kind == "bool":
                return {f.name: text.map({"1": True, "0": False}).astype("boolean")}
            return {f.name: text.map(f.choices).astype("string")}
        if kind in ("date", "datetime"):
            return {f.name: self._date(f, text, empty)}
        if kind in ("integer", "number"):
            values = pd.to_numeric(
                text.str.replace(",", ".", regex=False) if "comma" in f.validation else text,
                errors="coerce",
            )
            bad = ~empty & values.isna().to_numpy()
            if kind == "integer":
                bad |= ~empty & ~bad & (values.fillna(0) != values.fillna(0).round()).to_numpy()
            what = "a whole number" if kind == "integer" else "a number"
            self.report(
                bad,
                f.name,
                text,
                f"{what} (field {f.name!r}, {f.type} {f.validation})".replace(" )", ")"),
            )
            values = values.where(~bad)
            self._range(f, values, text, bad)
            return {
                f.name: values.round().astype("Int64")
                if kind == "integer"
                else values.astype("float64")
            }
        return {f.name: text.where(~empty, None).astype("string")}

    def _range(self, f: Field, values: pd.Series, text: pd.Series, bad: np.ndarray) -> None:
        for bound, op in ((f.vmin, np.less), (f.vmax, np.greater)):
            try:
                b = float(bound)
            except ValueError:
                continue
            with np.errstate(invalid="ignore"):
                out = op(values.to_numpy(dtype=float, na_value=np.nan), b) & ~bad
            self.report(
                out,
                f.name,
                text,
                f"a value between {f.vmin or '-inf'} and "
                f"{f.vmax or 'inf'} (the dictionary's validation range of {f.name!r})",
            )

    def _date(self, f: Field, text: pd.Series, empty: np.ndarray) -> pd.Series:
        order = f.validation.lower().split("_")[1] if "_" in f.validation else "ymd"
        iso = pd.to_datetime(text.where(~empty, None), errors="coerce", format="ISO8601")
        for fmt in DATE_FORMATS.get(order, ()):
            alt = pd.to_datetime(
                text.where(~empty, None),
                errors="coerce",
                format=fmt + (" %H:%M" if f.kind == "datetime" else ""),
            )
            iso = iso.fillna(alt)
        bad = ~empty & iso.isna().to_numpy()
        shown = "YYYY-MM-DD" + (" HH:MM" if f.kind == "datetime" else "")
        self.report(bad, f.name, text, f"a valid date {shown} ({f.validation} field {f.name!r})")
        out = iso.astype("datetime64[ns]")
        return out.dt.normalize() if f.kind == "date" else out

    def _checkbox(self, f: Field, raw: pd.DataFrame) -> dict[str, pd.Series]:
        cols = {}
        joined = np.full(len(raw), "", dtype=object)
        coded = np.zeros(len(raw), dtype=bool)  # a missing-data code ticked (field___unk)
        for code in self.codes:
            col = checkbox_column(f.name, code)
            if col in raw.columns and col not in {checkbox_column(f.name, c) for c in f.choices}:
                text = raw[col].str.strip()
                bad = ~text.isin(["", "0", "1"]).to_numpy()
                self.report(
                    bad, col, text, f"0 or 1 (missing-data code {code} of field {f.name!r})"
                )
                ticked = text.eq("1").to_numpy() & ~coded
                self._note_missing(ticked, f.name, pd.Series(code, index=raw.index))
                coded |= ticked
        for code, label in f.choices.items():
            col = checkbox_column(f.name, code)
            text = raw[col].str.strip() if col in raw.columns else pd.Series("", index=raw.index)
            bad = ~text.isin(["", "0", "1"]).to_numpy()
            self.report(bad, col, text, f"0 or 1 (checkbox option {code} of field {f.name!r})")
            ticked = text.eq("1")
            cols[col] = ticked.astype("boolean").where(~coded, pd.NA)
            joined = np.where(ticked.to_numpy(), joined + label + "; ", joined)
        joined = pd.Series(joined, index=raw.index, dtype=object).str.removesuffix("; ")
        cols[f.name] = joined.where(joined != "", None).astype("string")
        return cols


# --------------------------------------------------------------------------- splitting rows


def _column_problems(
    records: pd.DataFrame, d: Dictionary, file: str, codes: dict[str, str] | None = None
) -> list[Problem]:
    """Columns of the export that are neither dictionary fields nor REDCap system columns."""
    allowed = {d.record_field, *SYSTEM_COLUMNS}
    for f in d.fields.values():
        allowed.update(d.columns_of(f))
        if f.type == "checkbox":
            allowed.update(checkbox_column(f.name, c) for c in codes or {})
    for form in d.forms:
        allowed.update({f"{form}_complete", f"{form}_timestamp"})
    problems = []
    for col in records.columns:
        if col in allowed:
            continue
        hint = ""
        base, sep, code = col.partition("___")
        if sep and base in d.fields and d.fields[base].type == "checkbox":
            hint = (
                f" (checkbox code {code!r} is not a choice of field {base!r}: "
                + ", ".join(d.fields[base].choices)
                + ", nor a declared missing-data code"
                + (": " + ", ".join(codes) if codes else "")
                + ")"
            )
        problems.append(
            Problem(
                file,
                1,
                col,
                None,
                f"a field of the data dictionary {d.file} or a REDCap system "
                f"column (header of the records export){hint}",
            )
        )
    return problems


def read_export(
    records_csv: str | os.PathLike[str],
    dictionary_csv: str | os.PathLike[str] | None,
    event_mapping_csv: str | os.PathLike[str] | None = None,
    repeating_csv: str | os.PathLike[str] | None = None,
    missing_codes: dict[str, str] | None = None,
    queries: list[dict] | None = None,
    dictionary: Dictionary | None = None,
) -> RedcapExport:
    """Read and type a REDCap export; see ``read_redcap_instruments``.

    ``missing_codes``: {code: label} read as missing (see module); ``queries``: cells
    under a data query to read as missing, each {record, event, instrument, instance,
    field, reason, key} (from the mapping's ``queries``).
    """
    d = dictionary or read_dictionary(dictionary_csv)
    designations = read_event_mapping(event_mapping_csv, d)
    repeating = read_repeating(repeating_csv, d)
    records = _read_text_csv(records_csv, "REDCap records export")
    file = str(records_csv)
    codes = dict(missing_codes or {})
    problems = _column_problems(records, d, file, codes)
    rid = d.record_field
    if rid not in records.columns:
        problems.append(
            Problem(
                file,
                1,
                rid,
                None,
                f"the record-id column {rid!r} (the first field of the data dictionary {d.file})",
            )
        )
    if problems:
        raise CohortError(problems, file)
    n = len(records)
    blank = pd.Series("", index=records.index)
    rec = records[rid].str.strip()
    ev = records.get("redcap_event_name", blank).str.strip()
    rinst = records.get("redcap_repeat_instrument", blank).str.strip()
    rnum = records.get("redcap_repeat_instance", blank).str.strip()
    dag = records.get("redcap_data_access_group", blank).str.strip()
    rows = np.arange(2, n + 2)
    longitudinal = "redcap_event_name" in records.columns
    base = _Typer(file, rows, rec, ev, rnum, "")
    base.rinst = rinst
    base.report((rec == "").to_numpy(), rid, rec, "a record id")
    if longitudinal:
        base.report((ev == "").to_numpy(), "redcap_event_name", ev, "a unique event name")
        if designations is not None:
            base.report(
                ~ev.isin(list(designations)).to_numpy() & (ev != "").to_numpy(),
                "redcap_event_name",
                ev,
                "an event of the instrument-event mapping "
                f"{event_mapping_csv}: " + ", ".join(designations),
            )
    forms = set(d.forms)
    repeat_events = {e for e, f in repeating if f == ""}
    repeat_forms = {f for _e, f in repeating if f}
    base.report(
        ~rinst.isin(["", *forms]).to_numpy(),
        "redcap_repeat_instrument",
        rinst,
        "an instrument (form) of the data dictionary",
    )
    if repeating_csv is not None:
        pairs = list(zip(ev, rinst, strict=True))
        not_rep = np.array(
            [
                bool(f) and f in forms and (e, f) not in repeating and ("", f) not in repeating
                for e, f in pairs
            ]
        )
        base.report(
            not_rep,
            "redcap_repeat_instrument",
            rinst,
            f"an instrument set as repeating on this event in {repeating_csv}",
        )
    orphan = (
        (rnum != "").to_numpy()
        & (rinst == "").to_numpy()
        & ~ev.isin(list(repeat_events)).to_numpy()
    )
    base.report(
        orphan,
        "redcap_repeat_instance",
        rnum,
        "a redcap_repeat_instrument for this repeat instance (the event is not a "
        "repeating event" + (f" in {repeating_csv}" if repeating_csv else "") + ")",
    )
    no_num = (rnum == "").to_numpy() & (rinst != "").to_numpy()
    base.report(
        no_num,
        "redcap_repeat_instance",
        rnum,
        "a repeat instance number for the repeating instrument in redcap_repeat_instrument",
    )
    inst_num = pd.to_numeric(rnum, errors="coerce")
    bad_num = (rnum != "").to_numpy() & ~(
        (inst_num >= 1) & (inst_num == inst_num.round())
    ).to_numpy()
    base.report(bad_num, "redcap_repeat_instance", rnum, "a positive whole number")
    keys = pd.DataFrame({"r": rec, "e": ev, "i": rinst, "n": rnum})
    dup = keys.duplicated(keep="first").to_numpy()
    base.report(
        dup,
        rid,
        rec,
        "one row per record, event, repeat instrument and instance "
        "(this row repeats an earlier one)",
    )
    problems += base.problems
    queried, qproblems = _apply_queries(records, queries or [], d, rec, ev, rinst, rnum, rows)
    problems += qproblems
    missing_rows: list[dict] = list(queried)

    instruments: dict[str, pd.DataFrame] = {}
    for form in d.forms:
        ffields = d.form_fields(form)
        data_cols = [c for f in ffields for c in d.columns_of(f)]
        status_col = f"{form}_complete"
        present = [c for c in data_cols if c in records.columns]
        checkbox_cols = {c for f in ffields if f.type == "checkbox" for c in d.columns_of(f)}
        filled = pd.DataFrame(
            {
                c: (records[c].str.strip() == "1")
                if c in checkbox_cols
                else (records[c].str.strip() != "")
                for c in present
            },
            index=records.index,
        )
        any_filled = filled.any(axis=1).to_numpy() if present else np.zeros(n, dtype=bool)
        on_own_rows = (
            (rinst == form).to_numpy()
            if form in repeat_forms or (rinst == form).any()
            else np.zeros(n, dtype=bool)
        )
        plain = (rinst == "").to_numpy()
        if longitudinal and designations is not None:
            designated = ev.map(lambda e, form=form: form in designations.get(e, ())).to_numpy(
                dtype=bool
            )
        else:
            designated = np.ones(n, dtype=bool)
        allowed_rows = on_own_rows | (plain & designated)
        misplaced = any_filled & ~allowed_rows & ~orphan
        for i in np.flatnonzero(misplaced):
            col = next(c for c in present if filled[c].iloc[i])
            why = (
                (
                    f"an empty cell: form {form!r} is not designated for event {ev.iloc[i]!r} "
                    f"in {event_mapping_csv}"
                )
                if plain[i]
                else (f"an empty cell: this row belongs to repeating instrument {rinst.iloc[i]!r}")
            )
            problems.append(
                Problem(
                    file,
                    int(rows[i]),
                    col,
                    records[col].iloc[i],
                    f"{why} ({_where(rec, ev, rnum, int(i))})",
                )
            )
        keep = allowed_rows & any_filled
        sub = records.loc[keep]
        t = _Typer(file, rows[keep], rec[keep], ev[keep], rnum[keep], form, codes)
        typed: dict[str, pd.Series] = {
            rid: rec[keep].astype("string"),
            "redcap_event_name": ev[keep].astype("string"),
            "redcap_repeat_instrument": rinst[keep].astype("string"),
            "redcap_repeat_instance": inst_num[keep].astype("Int64"),
            "redcap_data_access_group": dag[keep].where(dag[keep] != "", None).astype("string"),
            "source_row": pd.Series(rows[keep], index=sub.index, dtype="Int64"),
        }
        for f in ffields:
            if f.type != "checkbox" and f.name not in sub.columns:
                typed[f.name] = pd.Series(pd.NA, index=sub.index, dtype="string")
                continue
            typed.update(t.type_field(f, sub))
        if status_col in sub.columns:
            status = sub[status_col].str.strip()
            t.report(
                ~status.isin(["", "0", "1", "2"]).to_numpy(),
                status_col,
                status,
                "a form status 0 (incomplete), 1 (unverified) or 2 (complete)",
            )
            typed[status_col] = pd.to_numeric(status, errors="coerce").astype("Int64")
        problems += t.problems
        missing_rows += t.missing
        instruments[form] = pd.DataFrame(typed).reset_index(drop=True)
    if problems:
        raise CohortError(problems, file)
    record_order = list(dict.fromkeys(rec))
    dags = {r: g for r, g in zip(rec, dag, strict=True) if g}
    return RedcapExport(
        dictionary=d,
        instruments=instruments,
        records=record_order,
        dag={r: dags[r] for r in record_order if r in dags},
        records_file=file,
        longitudinal=longitudinal,
        designations=designations,
        repeating=repeating,
        missing=pd.DataFrame(missing_rows, columns=MISSING_COLUMNS),
    )


def _apply_queries(
    records: pd.DataFrame,
    queries: list[dict],
    d: Dictionary,
    rec: pd.Series,
    ev: pd.Series,
    rinst: pd.Series,
    rnum: pd.Series,
    rows: np.ndarray,
) -> tuple[list[dict], list[Problem]]:
    """Blank the cells under a data query (in place) and say which; a query that names no
    cell of the export is a problem (the mapping file and key)."""
    out, problems = [], []
    for q in queries:
        fld = str(q.get("field", ""))
        where = (rec == str(q.get("record", ""))).to_numpy()
        if q.get("event"):
            where &= (ev == str(q["event"])).to_numpy()
        inst = q.get("instance")
        if inst is not None:
            where &= (rinst == str(q.get("instrument", ""))).to_numpy() & (
                rnum == str(inst)
            ).to_numpy()
        hit = np.flatnonzero(where)
        if fld not in records.columns or len(hit) != 1 or records[fld].iloc[hit[0]].strip() == "":
            problems.append(
                Problem(
                    str(q.get("file", "mapping")),
                    q.get("line"),
                    q.get("key"),
                    str({k: v for k, v in q.items() if k not in ("file", "line", "key")}),
                    "a query naming one filled cell of the export (record, "
                    "event, instrument, instance, field)",
                )
            )
            continue
        i = int(hit[0])
        value = records[fld].iloc[i]
        records.iloc[i, records.columns.get_loc(fld)] = ""
        out.append(
            {
                "record": str(rec.iloc[i]),
                "event": str(ev.iloc[i]),
                "instrument": d.fields[fld].form if fld in d.fields else "",
                "instance": rnum.iloc[i] or None,
                "field": fld,
                "code": "QUERY",
                "label": f"under query, value {value!r} not used: {q.get('reason', '')}",
                "source_row": int(rows[i]),
            }
        )
    return out, problems


def read_redcap_instruments(
    records_csv: str | os.PathLike[str],
    dictionary_csv: str | os.PathLike[str] | None,
    event_mapping_csv: str | os.PathLike[str] | None = None,
    repeating_csv: str | os.PathLike[str] | None = None,
) -> dict[str, pd.DataFrame]:
    """One typed long table per instrument of a REDCap export.

    Each table has the record-id column (named as the dictionary's first field),
    ``redcap_event_name``, ``redcap_repeat_instrument``, ``redcap_repeat_instance``,
    ``redcap_data_access_group``, ``source_row`` (line of the records CSV, header = 1),
    the instrument's fields typed from the dictionary, and ``<form>_complete``. A row of
    a non-repeating instrument is present only when one of its fields is filled.
    Raises ``CohortError`` listing every problem (file, line, field, value, record, event).
    """
    return read_export(records_csv, dictionary_csv, event_mapping_csv, repeating_csv).instruments
