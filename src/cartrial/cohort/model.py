"""The ``Cohort``: one object holding a trial's four typed tables.

After loading, every table is a pandas DataFrame with canonical column names and
types (see ``COLUMNS``) plus two provenance columns, ``source_file`` and
``source_row`` (1-based line number in the CSV including its header, or the row
number of the Excel sheet), so every derived number can be traced back to the row
that made it. Times are days since CAR-T infusion (day 0) as float; missing is NaN
or <NA>, never zero.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

TABLES = ("patients", "events", "adverse_events", "observations")
PROVENANCE = ("source_file", "source_row")

#: canonical columns and their dtype after loading ("str" = pandas string dtype,
#: "float", "Int64" (nullable integer), "bool" (nullable boolean), "date")
COLUMNS: dict[str, dict[str, str]] = {
    "patients": {
        "patient_id": "str",
        "age_years": "float",
        "sex": "str",
        "diagnosis": "str",
        "cd7_blasts_pct": "float",
        "bm_blasts_pct": "float",
        "extramedullary": "str",
        "prior_lines": "float",
        "prior_allo_sct": "bool",
        "product_source": "str",
        "donor_relation": "str",
        "hla_match": "str",
        "dose_per_kg": "float",
        "dose_level": "str",
        "weight_kg": "float",
        "height_cm": "float",
        "site": "str",
        "enrolled": "bool",
        "infused": "bool",
        "infusion_date": "date",
        "enrollment_date": "date",  # study-day origin of a patient never infused
    },
    "events": {
        "patient_id": "str",
        "day": "float",
        "event": "str",
        "response": "str",
        "mrd": "str",
        "mrd_value": "float",
        "cd7_status": "str",
        "site": "str",
        "cause": "str",
    },
    "adverse_events": {
        "patient_id": "str",
        "term": "str",
        "onset_day": "float",
        "resolution_day": "float",
        "grade": "Int64",
        "system": "str",
        "serious": "bool",
        "organ": "str",
        "derived": "bool",
    },
    "observations": {
        "patient_id": "str",
        "day": "float",
        "analyte": "str",
        "value": "float",
        "value_text": "str",  # the word for categorical analytes (oxygen device …); value is NaN
        "unit": "str",
        "lloq": "float",
    },
}
REQUIRED: dict[str, tuple[str, ...]] = {
    "patients": ("patient_id",),
    "events": ("patient_id", "event"),  # plus day or date
    "adverse_events": ("patient_id", "term", "grade"),  # plus onset_day or onset_date
    "observations": ("patient_id", "analyte", "value"),  # plus day or date
}


#: patients columns that are direct identifiers whatever the source (HIPAA Safe Harbor
#: 45 CFR 164.514(b)(2)(i): names, addresses, dates of birth, phone, e-mail, record numbers)
KNOWN_IDENTIFIERS = frozenset(
    {
        "name",
        "patient_name",
        "full_name",
        "first_name",
        "last_name",
        "surname",
        "given_name",
        "initials",
        "mrn",
        "medical_record_number",
        "hospital_number",
        "nhs_number",
        "ssn",
        "date_of_birth",
        "dob",
        "birth_date",
        "birthdate",
        "address",
        "street",
        "zip",
        "zip_code",
        "postcode",
        "postal_code",
        "phone",
        "telephone",
        "mobile",
        "email",
        "e_mail",
    }
)


def identifier_columns(columns, declared=()) -> tuple[str, ...]:
    """Patients columns that are direct identifiers: declared ones plus ``KNOWN_IDENTIFIERS``."""
    declared = set(declared)
    return tuple(c for c in columns if c in declared or str(c).strip().lower() in KNOWN_IDENTIFIERS)


def empty_table(name: str) -> pd.DataFrame:
    """An empty table with the canonical columns and dtypes of ``name``."""
    data = {}
    for col, kind in COLUMNS[name].items():
        data[col] = pd.Series(dtype=_DTYPES[kind])
    data["source_file"] = pd.Series(dtype="string")
    data["source_row"] = pd.Series(dtype="Int64")
    return pd.DataFrame(data)


_DTYPES = {
    "str": "string",
    "float": "float64",
    "Int64": "Int64",
    "bool": "boolean",
    "date": "datetime64[ns]",
}


@dataclass(frozen=True)
class Cohort:
    """A validated trial cohort.

    Attributes:
        patients, events, adverse_events, observations: typed tables (see ``COLUMNS``).
        source: where it was loaded from (path or description).
        input_sha256: SHA-256 over the input bytes (files sorted by name), for the report.
        layout: ``"tables"`` (the four-table format) or ``"wide"`` (one row per patient).
        given_endpoints: for wide tables, endpoint rows read directly from
            ``<endpoint>_months``/``<endpoint>_days`` + ``<endpoint>_event`` columns, in the
            same shape as ``cartrial.endpoints.derive_endpoints``; empty otherwise.
        notes: human-readable notes on how the input was read (e.g. columns renamed).
        identifiers: patients columns that are direct identifiers (name, MRN, date of
            birth …): kept in ``patients`` for an identified export, dropped by every
            analysis output (report, ADaM, de-identified exports).
    """

    patients: pd.DataFrame
    events: pd.DataFrame = field(default_factory=lambda: empty_table("events"))
    adverse_events: pd.DataFrame = field(default_factory=lambda: empty_table("adverse_events"))
    observations: pd.DataFrame = field(default_factory=lambda: empty_table("observations"))
    source: str = ""
    input_sha256: str = ""
    layout: str = "tables"
    given_endpoints: pd.DataFrame | None = None
    notes: tuple[str, ...] = ()
    identifiers: tuple[str, ...] = ()

    @property
    def n_patients(self) -> int:
        return len(self.patients)

    @property
    def patient_ids(self) -> list[str]:
        return self.patients["patient_id"].astype(str).tolist()

    def table(self, name: str) -> pd.DataFrame:
        if name not in TABLES:
            raise KeyError(f"unknown cohort table {name!r}; expected one of {', '.join(TABLES)}")
        return getattr(self, name)

    def summary(self) -> str:
        """A one-paragraph summary, as ``cartrial validate`` prints it."""
        parts = [f"{len(self.patients)} patients"]
        if self.layout == "tables":
            parts += [
                f"{len(self.events)} events",
                f"{len(self.adverse_events)} adverse events",
                f"{len(self.observations)} observations",
            ]
        else:
            parts.append("wide per-patient table")
            if self.given_endpoints is not None and len(self.given_endpoints):
                eps = sorted(self.given_endpoints["endpoint"].unique())
                parts.append("endpoints given: " + ", ".join(eps))
        return ", ".join(parts)
