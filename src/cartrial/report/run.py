"""``run_report``: the whole ``cartrial report`` step (settings → cohort → report folder)."""

from __future__ import annotations

import os
from pathlib import Path

from cartrial.cohort import load_cohort
from cartrial.report.build import build_report
from cartrial.report.document import Progress
from cartrial.report.settings import ReportSettings, default_settings, load_settings
from cartrial.report.writer import FigureDrawing, check_target, close_figures, write_report


def resolve_settings(
    cohort_arg: str, config: str | os.PathLike[str] | None = None, group: str | None = None
) -> ReportSettings:
    """--config if given (complete settings), else the defaults (a bundled example's own
    defaults when the cohort is named by example name); --group overrides either."""
    settings = load_settings(config) if config is not None else default_settings(cohort_arg)
    if group is not None:
        settings = settings.replace(group=group or None)
    return settings


def run_report(
    cohort_arg: str,
    outdir: str | os.PathLike[str],
    config: str | os.PathLike[str] | None = None,
    group: str | None = None,
    overwrite: bool = False,
    progress: Progress | None = None,
) -> Path:
    """Load and validate the cohort, build the report and write it to ``outdir``.

    Raises ``CohortError`` (cohort refused: nothing written), ``SettingsError`` or
    ``FileExistsError`` (non-empty OUTDIR without ``overwrite``) before writing anything.
    """

    say = progress or (lambda _m: None)
    target = Path(outdir)
    check_target(target, overwrite)
    settings = resolve_settings(cohort_arg, config, group)
    say(f"loading cohort {cohort_arg}")
    cohort = load_cohort(cohort_arg)
    say(f"cohort: {cohort.summary()}")
    # figures are drawn by a forked child while later sections are still computed
    drawing = FigureDrawing.beside(target, tuple(settings.figure_formats))
    try:
        report = build_report(cohort, settings, progress=say, on_figures=drawing.add)
    except BaseException:
        drawing.discard()
        raise
    try:
        return write_report(report, target, overwrite=overwrite, progress=say, drawing=drawing)
    finally:
        close_figures(report)
