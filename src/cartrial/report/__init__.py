"""The trial report: tables, figures, HTML/PDF (``cartrial report``).

Heavy libraries (pandas, matplotlib) are imported by the submodules; import this package
only where a report is built.
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
