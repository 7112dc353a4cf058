"""The trial report (``cartrial report``): one document model, three renderings.

``build`` computes the tables and figures into a ``document.Report``; ``render`` (HTML),
``pdf`` (ReportLab) and ``docx_tables`` (Word) read only that model; ``labels`` is the
one registry of display labels, units and number formats. Heavy libraries (pandas,
matplotlib, ReportLab, python-docx) are imported by the submodules; import this package
only where a report is built (``labels`` alone is light).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__all__ = ["Report", "ReportSettings", "SettingsError", "build_report", "load_settings",
           "run_report", "write_report"]

if TYPE_CHECKING:  # pragma: no cover
    from cartrial.report.build import Report, build_report, write_report
    from cartrial.report.run import run_report
    from cartrial.report.settings import ReportSettings, SettingsError, load_settings


def __getattr__(name: str) -> Any:
    if name in {"Report", "build_report", "write_report"}:
        from cartrial.report import build

        return getattr(build, name)
    if name in {"ReportSettings", "SettingsError", "load_settings"}:
        from cartrial.report import settings

        return getattr(settings, name)
    if name == "run_report":
        from cartrial.report.run import run_report

        return run_report
    raise AttributeError(f"module 'cartrial.report' has no attribute {name!r}")
