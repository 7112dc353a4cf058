"""REDCap in and out: an offline export (or the API, or the ODM XML export) to a cohort.

- ``instruments``: read and type an offline export, one table per instrument
  (``read_redcap_instruments``, ``read_export``, the dictionary and project files).
- ``mapping``: map instruments to cohort tables via an editable YAML file (checked against
  its schema; ``read_redcap``); write a cohort back as a records export
  (``cohort_to_redcap``); the shipped CD7 CAR-T template (``TEMPLATE_FILES``).
- ``draft``: a commented first mapping drafted from a data dictionary (``draft_mapping``).
- ``odm``: REDCap's CDISC ODM XML export (``read_redcap_odm``, odmlib).
- ``api``: the REDCap API through the optional PyCap package (``read_redcap_api``).
"""

from __future__ import annotations

from cartrial.io.redcap.api import read_redcap_api
from cartrial.io.redcap.draft import draft_mapping
from cartrial.io.redcap.instruments import (
    Dictionary,
    Field,
    RedcapExport,
    read_dictionary,
    read_event_mapping,
    read_export,
    read_project_info,
    read_redcap_instruments,
    read_repeating,
)
from cartrial.io.redcap.mapping import (
    TEMPLATE_FILES,
    cohort_to_redcap,
    find_export_files,
    load_mapping,
    read_redcap,
)
from cartrial.io.redcap.odm import project_files, read_redcap_odm

__all__ = [
    "TEMPLATE_FILES",
    "Dictionary",
    "Field",
    "RedcapExport",
    "cohort_to_redcap",
    "draft_mapping",
    "find_export_files",
    "load_mapping",
    "project_files",
    "read_dictionary",
    "read_event_mapping",
    "read_export",
    "read_project_info",
    "read_redcap",
    "read_redcap_api",
    "read_redcap_instruments",
    "read_redcap_odm",
    "read_repeating",
]
