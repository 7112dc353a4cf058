"""Human labels and number formats for the report.

The registry itself lives in :mod:`cartrial.cohort.labels` (one place for every layer:
tables, figures, the web app and ADaM PARAM texts); this module re-exports it so that
``from cartrial.report import labels as L`` keeps working.
"""

from __future__ import annotations

from cartrial.cohort.labels import (
    AE_VALUES,
    ANALYTE_VALUES,
    CI_METHODS,
    COLUMNS,
    DOSE_WORD,
    FRACTION_COLUMNS,
    SUPERSCRIPT,
    VALUES,
    _words,
    ae_term_label,
    dose_value,
    fmt_p,
    fmt_pct,
    fmt_sci,
    fmt_sig,
    humanize,
    label,
    unit_of,
    value_label,
)

__all__ = [
    "AE_VALUES",
    "ANALYTE_VALUES",
    "CI_METHODS",
    "COLUMNS",
    "DOSE_WORD",
    "FRACTION_COLUMNS",
    "SUPERSCRIPT",
    "VALUES",
    "_words",
    "ae_term_label",
    "dose_value",
    "fmt_p",
    "fmt_pct",
    "fmt_sci",
    "fmt_sig",
    "humanize",
    "label",
    "unit_of",
    "value_label",
]
