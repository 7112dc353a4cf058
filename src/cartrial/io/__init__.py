"""Interoperability: REDCap in, CDISC ADaM-like datasets out, de-identified exports.

Submodules (imported lazily, so ``import cartrial.io`` stays light):

- ``cartrial.io.redcap``: a REDCap export (offline files, ODM XML or the API) to a cohort
  through an editable YAML mapping, and a cohort back to a REDCap records export.
- ``cartrial.io.define_xml``: Define-XML 2.1 of the ADaM export (odmlib).
- ``cartrial.io.adam``: ADSL, ADTTE, ADAE, ADRS, ADPC/ADPP, ADLB; ``cohort_from_adam``.
- ``cartrial.io.deid``: de-identification (date shifting or study days, 90+ ages).
- ``cartrial.io.writers``: CSV, Parquet and SAS XPORT v5 writers with ``define.csv``.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_EXPORTS = {
    "read_redcap": "cartrial.io.redcap",
    "read_redcap_instruments": "cartrial.io.redcap",
    "read_redcap_api": "cartrial.io.redcap",
    "read_redcap_odm": "cartrial.io.redcap",
    "draft_mapping": "cartrial.io.redcap",
    "write_define_xml": "cartrial.io.define_xml",
    "cohort_to_redcap": "cartrial.io.redcap",
    "TEMPLATE_FILES": "cartrial.io.redcap",
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
