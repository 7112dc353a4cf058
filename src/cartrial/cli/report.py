"""``cartrial report`` and ``cartrial simulate``. Heavy imports stay inside the commands."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer


def _own_process() -> bool:
    """True when this process is the ``cartrial`` command itself (console script or
    ``python -m cartrial``), not a program running the command inside it (tests)."""
    import sys

    main = sys.modules.get("__main__")
    spec = getattr(main, "__spec__", None)
    script = Path(str(getattr(main, "__file__", "") or "")).name
    return (spec is not None and spec.name == "cartrial.__main__") or script == "cartrial"


def _tune_collector(finished: bool = False) -> None:
    """Garbage-collector settings for the ``cartrial report`` process only (see
    ``_own_process``): before the build, the imported modules' objects are frozen and
    collections are rarer (the report builds ~10⁵ short-lived matplotlib objects; the
    default thresholds spend ~0.4 s CPU re-scanning long-lived ones); when finished, the
    objects left are frozen so the collector's pass at interpreter exit (~0.35 s for 60
    patients; matplotlib figures are full of reference cycles) is skipped — the exiting
    process frees that memory anyway."""
    import gc

    if not _own_process():
        return
    gc.freeze()
    if not finished:
        gc.set_threshold(20_000, 10, 10)


def _progress(start: float):
    def say(message: str) -> None:
        typer.echo(f"[{time.perf_counter() - start:5.1f}s] {message}", err=True)

    return say


def report(
    cohort: Annotated[
        str,
        typer.Argument(help="Cohort folder, .xlsx workbook, wide .csv, or a bundled example name."),
    ] = "tan2023",
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="Output folder (default: report/<cohort name>)."),
    ] = None,
    config: Annotated[
        Path | None,
        typer.Option(
            "--config", "-c", help="Settings file (.yaml/.toml), e.g. a report's settings.yaml."
        ),
    ] = None,
    group: Annotated[
        str | None,
        typer.Option(
            help="Patients column splitting Table 1 and the AE table (overrides the settings)."
        ),
    ] = None,
    overwrite: Annotated[bool, typer.Option(help="Replace a non-empty output folder.")] = False,
) -> None:
    """Build the trial report: index.html, report.pdf (typeset), tables.docx (Word tables),
    tables/*.csv, figures/*.png, settings.yaml. A cohort with problems is refused (exit 1)
    and nothing is written."""
    start = time.perf_counter()
    from cartrial.cohort import CohortError
    from cartrial.report.run import run_report
    from cartrial.report.settings import SettingsError

    out = output if output is not None else Path("report") / Path(cohort).stem
    _tune_collector()
    try:
        path = run_report(
            cohort, out, config=config, group=group, overwrite=overwrite, progress=_progress(start)
        )
    except CohortError as exc:
        typer.echo(
            f"cohort {cohort}: INVALID — {len(exc.problems)} problem(s); no report written:",
            err=True,
        )
        for p in exc.problems:
            typer.echo(f"  - {p}", err=True)
        raise typer.Exit(1) from None
    except (SettingsError, FileExistsError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"report written to {path}/index.html ({time.perf_counter() - start:.1f}s)")
    _tune_collector(finished=True)


def simulate(
    output: Annotated[Path, typer.Option("--output", "-o", help="Folder to write the cohort to.")],
    patients: Annotated[int, typer.Option(min=1, help="Number of patients (enrolled).")] = 60,
    seed: Annotated[int, typer.Option(help="Random seed (same seed, same cohort).")] = 1,
    bedside: Annotated[
        bool,
        typer.Option(help="Include daily bedside observations (days 0–14) for CRS/ICANS grading."),
    ] = True,
    overwrite: Annotated[bool, typer.Option(help="Replace a non-empty output folder.")] = False,
) -> None:
    """Write a SYNTHETIC multi-table cohort (CD7 CAR-T trial model; not real patients)."""
    from cartrial.examples.simulate import write_simulated_cohort

    try:
        path = write_simulated_cohort(
            output, n_patients=patients, seed=seed, overwrite=overwrite, bedside=bedside
        )
    except FileExistsError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    typer.echo(
        f"synthetic cohort ({patients} patients, seed {seed}) written to {path} — SYNTHETIC DATA"
    )


def register(app: typer.Typer) -> None:
    app.command()(report)
    app.command()(simulate)
