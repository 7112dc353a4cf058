"""The trial report (``cartrial report``): one document model, three renderings.

``document`` is the data model (report, tables, figures, sections); ``build`` fills it by
running the section builders of ``sections`` (with ``course``, ``methods`` and
``kinetics_part``); ``writer`` writes the folder (atomic move, figures drawn once by a
forked image worker); ``render`` (HTML), ``pdf`` (ReportLab) and ``docx_tables`` (Word)
read only the model; ``labels`` is the one registry of display labels, units and number
formats and ``palette`` the one colour palette (both light: no pandas or matplotlib).
Heavy libraries (pandas, matplotlib, ReportLab, python-docx) are imported by the
submodules; import this package only where a report is built.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__all__ = [
    "Report",
    "ReportSettings",
    "SettingsError",
    "build_report",
    "load_settings",
    "run_report",
    "write_report",
]

if TYPE_CHECKING:  # pragma: no cover
    from cartrial.report.build import build_report
    from cartrial.report.document import Report
    from cartrial.report.run import run_report
    from cartrial.report.settings import ReportSettings, SettingsError, load_settings
    from cartrial.report.writer import write_report


def __getattr__(name: str) -> Any:
    if name == "Report":
        from cartrial.report.document import Report

        return Report
    if name == "build_report":
        from cartrial.report.build import build_report

        return build_report
    if name == "write_report":
        from cartrial.report.writer import write_report

        return write_report
    if name in {"ReportSettings", "SettingsError", "load_settings"}:
        from cartrial.report import settings

        return getattr(settings, name)
    if name == "run_report":
        from cartrial.report.run import run_report

        return run_report
    raise AttributeError(f"module 'cartrial.report' has no attribute {name!r}")
