"""The cohort data contract: load, validate and write a trial's tables (DESIGN.md)."""

from cartrial.cohort.errors import CohortError, Problem
from cartrial.cohort.load import (
    bundled_example,
    cohort_from_frames,
    load_cohort,
    validate_path,
    write_cohort,
)
from cartrial.cohort.model import COLUMNS, TABLES, Cohort

__all__ = [
    "COLUMNS",
    "TABLES",
    "Cohort",
    "CohortError",
    "Problem",
    "bundled_example",
    "cohort_from_frames",
    "load_cohort",
    "validate_path",
    "write_cohort",
]
