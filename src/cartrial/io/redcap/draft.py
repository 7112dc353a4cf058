"""A first mapping drafted from a REDCap data dictionary (``--draft-mapping``).

``draft_mapping`` reads the dictionary (field types, labels, choices, forms), the
instrument–event designations and the repeating-instrument settings, and writes a
commented YAML mapping: each cohort column is matched to a field by the field's type and
the words of its name and label (``MATCHERS``); a form holding a date and a choice with
"CR" among its choices becomes a response block, a form with a grade and a term an
adverse-event block, a form with an analyte and a value an observations block, dates of
death, relapse, SCT, new therapy and last contact become event blocks. Every field left
unmatched is listed as a ``# TODO`` line with its form, type and label, so a coordinator
edits a file instead of writing one. The draft is a proposal: it is checked against the
dictionary by ``load_mapping`` like any mapping, and must be read before use.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from cartrial.io.redcap.instruments import Dictionary, Field


@dataclass(frozen=True)
class Matcher:
    """A cohort column: the words a field's name or label must hold, and the field kinds."""

    column: str
    words: str  # regular expression searched in "name label" (lower case)
    kinds: tuple[str, ...]
    avoid: str = r"$^"  # words that rule a field out


PATIENT_MATCHERS = (
    Matcher("age_years", r"\bage\b", ("integer", "number")),
    Matcher("sex", r"\bsex\b|gender", ("choice",)),
    Matcher("diagnosis", r"diagnos|\bdx\b|disease type", ("choice", "text")),
    Matcher("cd7_blasts_pct", r"cd7.*blast|blast.*cd7", ("number", "integer")),
    Matcher(
        "bm_blasts_pct", r"marrow.*blast|\bbm.*blast|blast.*marrow", ("number", "integer"), r"cd7"
    ),
    Matcher("extramedullary", r"extramedullary|\bemd\b", ("bool", "choice")),
    Matcher("prior_lines", r"prior.*line|lines.*prior|previous.*line", ("integer", "number")),
    Matcher("prior_allo_sct", r"(prior|previous).*(sct|transplant|hsct)", ("bool", "choice")),
    Matcher("product_source", r"product|cell source|source of", ("choice",)),
    Matcher("donor_relation", r"donor.*relat|relation", ("choice", "text")),
    Matcher("hla_match", r"\bhla\b", ("choice", "text")),
    Matcher("dose_per_kg", r"dose.*(/kg|per kg|kg)|cells/kg", ("number", "integer")),
    Matcher("dose_level", r"dose level|\bdl\b|cohort", ("choice", "text", "integer")),
    Matcher("weight_kg", r"weight", ("number", "integer")),
    Matcher("height_cm", r"height", ("number", "integer")),
    Matcher("enrolled", r"enrol|registered|eligib", ("bool", "choice"), r"date"),
    Matcher(
        "infused",
        r"infused|infusion (given|received|done)|received.*car",
        ("bool", "choice"),
        r"date",
    ),
    Matcher("infusion_date", r"infusion", ("date", "datetime"), r"planned|scheduled"),
    Matcher("enrollment_date", r"enrol|registration", ("date", "datetime")),
    Matcher("race", r"\brace\b", ("choice", "checkbox")),
    Matcher("ethnicity", r"ethnic", ("choice",)),
)
#: event blocks: (event kind, words of the date field, extra columns by words)
EVENT_DATES: tuple[tuple[str, str, dict[str, str]], ...] = (
    ("death", r"death|died|deceased", {"cause": r"cause"}),
    ("relapse", r"relapse|progression", {"cd7_status": r"cd7", "site": r"site"}),
    ("sct", r"(?<!prior )(sct|transplant|hsct)(?!.*prior)", {}),
    ("new_therapy", r"new .*therap|subsequent therap|next therap", {}),
    ("last_contact", r"last (contact|known alive|seen|follow)", {}),
)
IDENTIFIER_WORDS = (
    r"\bname\b|first.?name|last.?name|surname|\bmrn\b|medical record|birth|\bdob\b|"
    r"address|phone|e-?mail|initials|nhs|ssn|postcode|zip"
)


def _text(f: Field) -> str:
    return f"{f.name} {f.label}".lower().replace("_", " ")


def _quote(text: str) -> str:
    return text.replace("\n", " ").replace('"', "'")[:70]


def draft_mapping(
    d: Dictionary,
    designations: dict[str, list[str]] | None = None,
    repeating: set[tuple[str, str]] | None = None,
    dags: bool = True,
    missing_codes: dict[str, str] | None = None,
) -> str:
    """The text of a commented first mapping for dictionary ``d`` (see module)."""
    repeating = repeating or set()
    repeat_forms = {f for _e, f in repeating if f}
    used: set[str] = {d.record_field}
    fields = [
        f
        for f in d.fields.values()
        if f.type not in ("descriptive", "file", "sql") and f.name != d.record_field
    ]
    lines = [
        "# cartrial REDCap mapping — DRAFTED from the data dictionary by",
        "# `cartrial import redcap DIR --draft-mapping`. Read every line before use: matches",
        "# are proposals by field type and label. Keys are documented in the shipped",
        "# template (cartrial import redcap-template DIR). Unmatched fields are TODO lines.",
        "version: 1",
        (
            "# missing-data codes of the project information export (read at import): "
            + ", ".join(f"{c} ({lab})" for c, lab in missing_codes.items())
        )
        if missing_codes
        else "# missing_codes: {UNK: Unknown, NASK: Not asked, NI: No information}",
        "# queries: []   # cells under a data query: {record, event, instrument, instance,",
        "#               # field, reason}; read as missing",
    ]
    idents = [f for f in fields if f.identifier or re.search(IDENTIFIER_WORDS, _text(f))]
    # ------------------------------------------------------------------ patients
    pcols: dict[str, Field] = {}
    for m in PATIENT_MATCHERS:
        for f in fields:
            if f.name in used or f.form in repeat_forms or f.kind not in m.kinds:
                continue
            if re.search(m.words, _text(f)) and not re.search(m.avoid, _text(f)):
                pcols[m.column] = f
                used.add(f.name)
                break
    ident_cols = {}
    for f in idents:
        if f.name not in used and f.form not in repeat_forms:
            ident_cols[f.name] = f
            used.add(f.name)
    forms = list(dict.fromkeys(f.form for f in [*pcols.values(), *ident_cols.values()]))
    lines.append(
        "not_infused_origin: enrollment_date   # day 0 of a patient never infused"
        if "enrollment_date" in pcols
        else "# not_infused_origin: enrollment_date   # "
        "TODO: map the enrolment/registration date: day 0 of a patient never infused"
    )
    lines += [
        "identifiers: [" + ", ".join(ident_cols) + "]   # kept out of every analysis output",
        "patients:",
        f"  instruments: [{', '.join(forms)}]",
        "  columns:",
        f"    patient_id: {d.record_field}",
    ]
    if dags:
        lines.append("    site: redcap_data_access_group")
    for col, f in pcols.items():
        lines.append(f'    {col}: {f.name}   # {f.form}, {f.type}: "{_quote(f.label)}"')
    for name, f in ident_cols.items():
        why = "Identifier? = y" if f.identifier else "looks like an identifier"
        lines.append(f"    {name}: {name}   # IDENTIFIER ({why})")
    if "dose_per_kg" in pcols and re.search(
        r"10\^?6|10\*\*6|x ?10|×10|million|e6", pcols["dose_per_kg"].label.lower()
    ):
        lines += [
            "  scale:",
            "    dose_per_kg: 1.0e+6   # the label says ×10^6 cells/kg; the cohort holds cells/kg",
        ]
    # ------------------------------------------------------------------ events
    ev_lines: list[str] = []
    for form in d.forms:
        ff = [f for f in fields if f.form == form]
        resp = next(
            (
                f
                for f in ff
                if f.kind == "choice"
                and f.name not in used
                and any(lab.strip().upper() == "CR" for lab in f.choices.values())
            ),
            None,
        )
        date = next((f for f in ff if f.kind in ("date", "datetime") and f.name not in used), None)
        if resp and date:
            cols = {"date": date, "response": resp}
            mrd = next(
                (f for f in ff if "mrd" in _text(f) and f.name not in used and f.kind == "choice"),
                None,
            )
            mrdv = next(
                (f for f in ff if "mrd" in _text(f) and f.name not in used and f.kind == "number"),
                None,
            )
            if mrd:
                cols["mrd"] = mrd
            if mrdv:
                cols["mrd_value"] = mrdv
            used.update(f.name for f in cols.values())
            ev_lines += _block(form, date, {"event": "response"}, cols)
            if mrdv and "%" in mrdv.label:
                ev_lines += ["    scale: {mrd_value: 0.01}   # per cent -> fraction"]
    for kind, words, extra in EVENT_DATES:
        for f in fields:
            if f.name in used or f.kind not in ("date", "datetime"):
                continue
            if re.search(words, _text(f)) and not re.search(r"prior|previous", _text(f)):
                cols = {"date": f}
                for col, w in extra.items():
                    g = next(
                        (
                            x
                            for x in fields
                            if x.form == f.form
                            and x.name not in used
                            and re.search(w, _text(x))
                            and x.kind in ("choice", "checkbox", "text")
                        ),
                        None,
                    )
                    if g:
                        cols[col] = g
                used.update(x.name for x in cols.values())
                ev_lines += _block(f.form, f, {"event": kind}, cols)
    if ev_lines:
        lines += ["events:", *ev_lines]
    # ------------------------------------------------------------------ adverse events
    ae_lines: list[str] = []
    for form in d.forms:
        ff = [f for f in fields if f.form == form and f.name not in used]
        grade = next((f for f in ff if re.search(r"grade", _text(f))), None)
        term = next(
            (
                f
                for f in ff
                if re.search(r"term|event|toxicit", _text(f))
                and f.kind in ("choice", "text")
                and f is not grade
                and not re.search(r"verbatim|specify|other", _text(f))
            ),
            None,
        )
        if not (grade and term):
            continue
        cols = {"term": term, "grade": grade}
        for col, w, kinds in (
            ("onset_date", r"onset|start", ("date", "datetime")),
            ("resolution_date", r"resol|end|stop", ("date", "datetime")),
            ("verbatim", r"verbatim|specify", ("text",)),
            ("serious", r"serious|\bsae\b", ("bool", "choice")),
            ("system", r"grading system|scale|criteria", ("choice",)),
        ):
            g = next(
                (
                    f
                    for f in ff
                    if f.kind in kinds and re.search(w, _text(f)) and f not in cols.values()
                ),
                None,
            )
            if g:
                cols[col] = g
        used.update(f.name for f in cols.values())
        ae_lines += _block(form, term, {}, cols)
    if ae_lines:
        lines += ["adverse_events:", *ae_lines]
    # ------------------------------------------------------------------ observations
    ob_lines: list[str] = []
    for form in d.forms:
        ff = [f for f in fields if f.form == form and f.name not in used]
        analyte = next((f for f in ff if re.search(r"analyte|\btest\b|parameter", _text(f))), None)
        value = next(
            (
                f
                for f in ff
                if re.search(r"value|result", _text(f)) and f.kind in ("number", "integer")
            ),
            None,
        )
        date = next((f for f in ff if f.kind in ("date", "datetime")), None)
        if analyte and value and date:
            cols = {"date": date, "analyte": analyte, "value": value}
            for col, w in (("unit", r"unit"), ("lloq", r"lloq|limit of quant")):
                g = next((f for f in ff if re.search(w, _text(f))), None)
                if g:
                    cols[col] = g
            used.update(f.name for f in cols.values())
            ob_lines += _block(form, analyte, {}, cols)
    if ob_lines:
        lines += ["observations:", *ob_lines]
    # ------------------------------------------------------------------ the rest
    todo = [f for f in fields if f.name not in used]
    if todo:
        lines += ["", "# TODO — fields not mapped (map them, or leave them out on purpose):"]
        for f in todo:
            where = f"{f.form}, {f.type}" + (f" {f.validation}" if f.validation else "")
            rep = " (repeating)" if f.form in repeat_forms else ""
            lines.append(f'# TODO {f.name}: {where}{rep}: "{_quote(f.label)}"')
    if designations:
        lines += ["", "# events of the project (for redcap_events:): " + ", ".join(designations)]
    return "\n".join(lines) + "\n"


def _block(form: str, when: Field, set_: dict[str, str], cols: dict[str, Field]) -> list[str]:
    out = [f"  - instrument: {form}", f"    when: {when.name}"]
    if set_:
        out.append("    set: {" + ", ".join(f"{k}: {v}" for k, v in set_.items()) + "}")
    out.append("    columns:")
    for col, f in cols.items():
        out.append(f'      {col}: {f.name}   # {f.type}: "{_quote(f.label)}"')
    return out
