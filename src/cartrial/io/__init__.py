"""Interoperability: REDCap in, CDISC ADaM-like datasets out, de-identified exports.

Submodules (imported lazily, so ``import cartrial.io`` stays light):

- ``cartrial.io.redcap``: read and type an offline REDCap export, one table per instrument.
- ``cartrial.io.redcap_map``: map instruments to cohort tables via an editable YAML file
  (checked against its schema); write a cohort back as a REDCap records export.
- ``cartrial.io.redcap_draft``: a commented first mapping drafted from a data dictionary.
- ``cartrial.io.redcap_odm``: REDCap's CDISC ODM XML export (odmlib).
- ``cartrial.io.define_xml``: Define-XML 2.1 of the ADaM export (odmlib).
- ``cartrial.io.adam``: ADSL, ADTTE, ADAE, ADRS, ADPC/ADPP, ADLB; ``cohort_from_adam``.
- ``cartrial.io.deid``: de-identification (date shifting or study days, 90+ ages).
- ``cartrial.io.writers``: CSV, Parquet and SAS XPORT v5 writers with ``define.csv``.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_EXPORTS = {
    "read_redcap": "cartrial.io.redcap_map",
    "read_redcap_instruments": "cartrial.io.redcap",
    "read_redcap_api": "cartrial.io.redcap_api",
    "read_redcap_odm": "cartrial.io.redcap_odm",
    "draft_mapping": "cartrial.io.redcap_draft",
    "write_define_xml": "cartrial.io.define_xml",
    "cohort_to_redcap": "cartrial.io.redcap_map",
    "TEMPLATE_FILES": "cartrial.io.redcap_map",
    "build_adam": "cartrial.io.adam",
    "cohort_from_adam": "cartrial.io.adam",
    "VARIABLES": "cartrial.io.adam",
    "deidentify": "cartrial.io.deid",
    "write_adam": "cartrial.io.writers",
    "export_adam": "cartrial.io.writers",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'cartrial.io' has no attribute {name!r}")
