"""Interoperability commands: ``cartrial import redcap`` and ``cartrial export adam``.

Heavy imports (pandas, pyreadstat, pyarrow) stay inside the command functions.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

import_app = typer.Typer(help="Import trial data from other systems (REDCap).",
                         no_args_is_help=True)
export_app = typer.Typer(help="Export analysis datasets (CDISC ADaM-like).", no_args_is_help=True)


def _fail(exc) -> None:
    typer.echo(f"{len(exc.problems)} problem(s):", err=True)
    for p in exc.problems:
        typer.echo(f"  - {p}", err=True)
    raise typer.Exit(1)


@import_app.command("redcap")
def import_redcap(
    folder: Annotated[Path, typer.Argument(help="Folder with the REDCap export: records CSV, "
                                           "data dictionary CSV, and for longitudinal projects "
                                           "the instrument-event mapping and repeating-instrument "
                                           "CSVs (found by name).")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Cohort folder to write.")],
    records: Annotated[Path | None, typer.Option(help="Records CSV (raw export).")] = None,
    dictionary: Annotated[Path | None, typer.Option(help="Data dictionary CSV.")] = None,
    event_mapping: Annotated[Path | None, typer.Option(
        help="Instrument-event mapping CSV (arm_num, unique_event_name, form).")] = None,
    repeating: Annotated[Path | None, typer.Option(
        help="Repeating instruments CSV (event_name, form_name, custom_form_label).")] = None,
    mapping: Annotated[Path | None, typer.Option(
        help="Mapping YAML (default: the shipped CD7 CAR-T mapping).")] = None,
) -> None:
    """Convert a REDCap export to a validated cohort folder."""
    from cartrial.cohort import CohortError, write_cohort
    from cartrial.io.redcap_map import find_export_files, read_redcap

    found = find_export_files(folder) if folder.is_dir() else {}
    rec = records or found.get("records")
    if rec is None:
        typer.echo(f"{folder}: no records CSV found (name it *records*.csv or pass --records)",
                   err=True)
        raise typer.Exit(1)
    try:
        cohort = read_redcap(rec, dictionary or found.get("dictionary"),
                             event_mapping or found.get("event_mapping"),
                             repeating or found.get("repeating"), mapping or found.get("mapping"))
    except CohortError as exc:
        _fail(exc)
    try:
        write_cohort(cohort, output)
    except FileExistsError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(1) from None
    typer.echo(f"wrote cohort {output}: {cohort.summary()}")


@import_app.command("redcap-template")
def redcap_template(
    folder: Annotated[Path, typer.Argument(help="Folder to copy the CD7 CAR-T REDCap template to.")],
) -> None:
    """Copy the CD7 CAR-T REDCap project template (dictionary, events, repeating, mapping)."""
    import shutil

    from cartrial.io.redcap_map import TEMPLATE_FILES

    folder.mkdir(parents=True, exist_ok=True)
    for path in TEMPLATE_FILES.values():
        shutil.copy(path, folder / path.name)
        typer.echo(f"wrote {folder / path.name}")


@export_app.command("adam")
def export_adam_cmd(
    cohort_path: Annotated[str, typer.Argument(help="Cohort folder, workbook, or bundled example.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Folder to write (new or empty).")],
    fmt: Annotated[str, typer.Option("--format", help="Comma-separated: csv, parquet, xpt.")] = "csv",
    deidentify: Annotated[bool, typer.Option("--deidentify", help="Study IDs only, no free text, "
                                             "dates shifted or removed, ages >= 90 grouped.")] = False,
    date_mode: Annotated[str, typer.Option("--date-mode", help="shift (one random offset per "
                                           "patient) or days (no dates, days since infusion).")] = "shift",
    seed: Annotated[int | None, typer.Option("--seed", help="Seed for the date shifts.")] = None,
    te_window: Annotated[float, typer.Option("--te-window", help="Treatment-emergent window: "
                                             "days after infusion (ADAE TRTEMFL).")] = 30.0,
    study_id: Annotated[str, typer.Option("--study-id", help="STUDYID value.")] = "CARTRIAL",
    censor_at_sct: Annotated[bool, typer.Option(help="Censor PFS/EFS/DFS/DOR/CIR/NRM at SCT or new therapy.")] = False,
) -> None:
    """Write ADSL, ADTTE, ADAE, ADRS, ADPC, ADLB (and ADPP) with define.csv."""
    from cartrial.cli.core import _load_or_exit
    from cartrial.endpoints import EndpointOptions
    from cartrial.io.writers import FORMATS, export_adam

    formats = [f.strip().lower() for f in fmt.split(",") if f.strip()]
    bad = [f for f in formats if f not in FORMATS]
    if bad or not formats:
        typer.echo(f"--format: found {fmt!r}; expected a comma-separated list of "
                   f"{', '.join(FORMATS)}", err=True)
        raise typer.Exit(2)
    if date_mode not in ("shift", "days"):
        typer.echo(f"--date-mode: found {date_mode!r}; expected shift or days", err=True)
        raise typer.Exit(2)
    cohort = _load_or_exit(cohort_path)
    options = EndpointOptions(censor_at_sct=censor_at_sct, censor_at_new_therapy=censor_at_sct)
    try:
        path, adam = export_adam(cohort, output, formats, deidentify=deidentify,
                                 date_mode=date_mode, seed=seed, te_window_days=te_window,
                                 study_id=study_id, options=options)
    except (FileExistsError, ValueError) as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(1) from None
    sizes = ", ".join(f"{k} {len(v)}" for k, v in adam.items())
    typer.echo(f"wrote {path}: {sizes} rows ({', '.join(formats)})"
               + (" — de-identified, see DEIDENTIFICATION.txt" if deidentify else ""))
    for note in next(iter(adam.values())).attrs.get("notes", []):
        typer.echo(f"  note: {note}")


def register(app: typer.Typer) -> None:
    """Add the ``import`` and ``export`` command groups."""
    app.add_typer(import_app, name="import")
    app.add_typer(export_app, name="export")
