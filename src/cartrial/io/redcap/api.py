"""Pulling the same export straight from a REDCap server (optional extra: PyCap).

``read_redcap_api(url, token)`` downloads the raw records (with data access groups),
the metadata (data dictionary), and for longitudinal projects the instrument–event
mapping and repeating-instrument settings, writes them to a temporary folder and reads
them with ``read_redcap`` — the same typing, mapping and validation as offline files.
The token is never written to disk or to messages.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from cartrial.cohort.model import Cohort
from cartrial.io.redcap.mapping import read_redcap

INSTALL_HINT = (
    "read_redcap_api needs the optional package PyCap: pip install PyCap "
    "(or export the records, data dictionary, instrument-event mapping and "
    "repeating-instrument CSVs from REDCap and use read_redcap)"
)


def _project(url: str, token: str):
    try:
        from redcap import Project
    except ImportError as exc:
        raise ImportError(INSTALL_HINT) from exc
    return Project(url, token)


def read_redcap_api(
    url: str, token: str, mapping_yaml: str | os.PathLike[str] | None = None
) -> Cohort:
    """Import a REDCap project over its API as a validated ``Cohort`` (needs PyCap)."""
    project = _project(url, token)
    with tempfile.TemporaryDirectory(prefix="cartrial-redcap-") as tmp:
        folder = Path(tmp)
        (folder / "records.csv").write_text(
            project.export_records(
                format_type="csv", raw_or_label="raw", export_data_access_groups=True
            ),
            encoding="utf-8",
        )
        (folder / "dictionary.csv").write_text(
            project.export_metadata(format_type="csv"), encoding="utf-8"
        )
        mapping_csv = repeating_csv = None
        if getattr(project, "is_longitudinal", False):
            mapping_csv = folder / "event_mapping.csv"
            mapping_csv.write_text(
                project.export_instrument_event_mappings(format_type="csv"), encoding="utf-8"
            )
        exporter = getattr(project, "export_repeating_instruments_events", None)
        if exporter is not None:
            text = exporter(format_type="csv")
            if text and text.strip():
                repeating_csv = folder / "repeating.csv"
                repeating_csv.write_text(text, encoding="utf-8")
        info = None
        exporter = getattr(project, "export_project_info", None)
        if exporter is not None:  # its missing_data_codes are read as missing
            text = exporter(format_type="csv")
            if isinstance(text, str) and text.strip():
                info = folder / "project_info.csv"
                info.write_text(text, encoding="utf-8")
        return read_redcap(
            folder / "records.csv",
            folder / "dictionary.csv",
            mapping_csv,
            repeating_csv,
            mapping_yaml,
            project_info=info,
        )
