"""Form fields that guide: derived from the same field specs the server validates with
(``cartrial.store.validation.SPECS``) and the cohort vocabularies, so a select list never
offers a word the server would refuse, units come from the analyte, dates are date
pickers and numbers carry their limits."""

from __future__ import annotations

from dataclasses import dataclass

from cartrial.cohort import labels, vocab
from cartrial.store.rules import registry_field
from cartrial.store.validation import SPECS

#: help text per field (shown under the input)
HELP = {
    "day": "days since the CAR-T infusion (day 0)",
    "onset_day": "days since infusion",
    "resolution_day": "days since infusion; blank while ongoing",
    "grade": "CTCAE / ASTCT grade 0-5",
    "unit": "fixed by the analyte: leave blank for its unit",
    "value": "a number, or the category word for bedside findings",
    "mrd_value": "fraction (0-1), e.g. 0.0001",
    "infusion_date": "CAR-T infusion date (day 0)",
    "patient_id": "study ID only: no names or birth dates",
}


#: display names of the trial database's tables (forms, queries, audit trail)
TABLE_LABELS = {
    "patients": "Patient",
    "events": "Event",
    "adverse_events": "Adverse event",
    "observations": "Observation",
    "assessments": "Bedside assessment",
    "data_queries": "Data query",
    "users": "User",
    "sites": "Site",
}


@dataclass(frozen=True)
class FormField:
    name: str
    label: str
    type: str = "text"
    options: tuple[str, ...] | None = None
    step: str | None = None
    min: float | None = None
    max: float | None = None
    hint: str | None = None


def analyte_units() -> dict[str, str]:
    """analyte -> its canonical unit(s) and, where the grading field registry has it, the
    registry's help text and plausible range (the same words as the bedside form)."""

    out = {}
    for a, (_al, units) in vocab.ANALYTES.items():
        if not units:
            continue
        text = ", ".join(sorted(units))
        spec = registry_field(a)
        if spec is not None and spec.help:
            text += f" ({spec.help}"
            if spec.lo != float("-inf") and spec.hi != float("inf"):
                text += f"; {spec.lo:g}-{spec.hi:g} {spec.unit}"
            text += ")"
        out[a] = text
    return out


def fields(table: str, names: tuple[str, ...] | None = None) -> list[FormField]:
    """The form fields of ``table`` (all of its specs, or ``names`` in that order)."""
    specs = SPECS[table]
    out = []
    for name in names or tuple(specs):
        spec = specs[name]
        label = labels.label(name)
        hint = HELP.get(name)
        if spec.kind == "vocab":
            voc = spec.vocabulary if spec.vocabulary is not None else vocab.ANALYTES
            out.append(FormField(name, label, "select", tuple(voc), hint=hint))
        elif spec.kind == "bool":
            out.append(FormField(name, label, "select", ("yes", "no"), hint=hint))
        elif spec.kind in ("float", "int"):
            out.append(
                FormField(
                    name,
                    label,
                    "number",
                    step="1" if spec.kind == "int" else "any",
                    min=spec.lo,
                    max=spec.hi,
                    hint=hint,
                )
            )
        elif spec.kind == "date":
            out.append(FormField(name, label, "date", hint=hint))
        elif name == "unit" and table == "observations":
            units = tuple(sorted({u for _a, (_al, us) in vocab.ANALYTES.items() if us for u in us}))
            out.append(FormField(name, label, "select", units, hint=hint))
        else:
            out.append(FormField(name, label, hint=hint))
    return out
