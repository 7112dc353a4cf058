"""Interoperability commands: ``cartrial import redcap`` and ``cartrial export adam``.

Heavy imports (pandas, pyreadstat, pyarrow) stay inside the command functions.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

import_app = typer.Typer(
    help="Import trial data from other systems (REDCap).", no_args_is_help=True
)
export_app = typer.Typer(help="Export analysis datasets (CDISC ADaM-like).", no_args_is_help=True)


def _fail(exc) -> None:
    typer.echo(f"{len(exc.problems)} problem(s):", err=True)
    for p in exc.problems:
        typer.echo(f"  - {p}", err=True)
    raise typer.Exit(1)


@import_app.command("redcap")
def import_redcap(
    folder: Annotated[
        Path,
        typer.Argument(
            help="Folder with the REDCap export: records CSV, "
            "data dictionary CSV, and for longitudinal projects "
            "the instrument-event mapping and repeating-instrument "
            "CSVs (found by name)."
        ),
    ],
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Cohort folder to write.")
    ] = None,
    records: Annotated[Path | None, typer.Option(help="Records CSV (raw export).")] = None,
    odm: Annotated[
        Path | None,
        typer.Option("--odm", help="REDCap's CDISC ODM XML export instead of the records CSV."),
    ] = None,
    dictionary: Annotated[Path | None, typer.Option(help="Data dictionary CSV.")] = None,
    event_mapping: Annotated[
        Path | None,
        typer.Option(help="Instrument-event mapping CSV (arm_num, unique_event_name, form)."),
    ] = None,
    repeating: Annotated[
        Path | None,
        typer.Option(help="Repeating instruments CSV (event_name, form_name, custom_form_label)."),
    ] = None,
    mapping: Annotated[
        Path | None, typer.Option(help="Mapping YAML (default: the shipped CD7 CAR-T mapping).")
    ] = None,
    project_info: Annotated[
        Path | None,
        typer.Option(
            help="Project information CSV/JSON (its missing_data_codes are read as missing)."
        ),
    ] = None,
    draft_mapping: Annotated[
        Path | None,
        typer.Option(
            "--draft-mapping",
            help="Write a commented first mapping drafted from the data "
            "dictionary to this file, then stop (edit it, then import with --mapping).",
        ),
    ] = None,
    keep_identifiers: Annotated[
        bool,
        typer.Option(
            "--keep-identifiers",
            help="Write direct identifiers (names, MRN, date of birth …) "
            "into the cohort folder; by default they are left out.",
        ),
    ] = False,
) -> None:
    """Convert a REDCap export to a validated cohort folder (or draft its mapping)."""
    from cartrial.cohort import CohortError, write_cohort
    from cartrial.io.redcap.mapping import find_export_files, read_redcap

    found = find_export_files(folder) if folder.is_dir() else {}
    if draft_mapping is not None:
        _draft(
            draft_mapping,
            dictionary or found.get("dictionary"),
            event_mapping or found.get("event_mapping"),
            repeating or found.get("repeating"),
            project_info or found.get("project_info"),
        )
        return
    if output is None:
        typer.echo("--output: a cohort folder to write (or --draft-mapping FILE)", err=True)
        raise typer.Exit(2)
    rec = records or found.get("records")
    odm = odm or (found.get("odm") if rec is None else None)
    if rec is None and odm is None:
        typer.echo(
            f"{folder}: no records CSV found (name it *records*.csv or pass --records)", err=True
        )
        raise typer.Exit(1)
    try:
        if odm is not None:
            from cartrial.io.redcap.odm import read_redcap_odm

            cohort = read_redcap_odm(
                odm,
                dictionary or found.get("dictionary"),
                event_mapping or found.get("event_mapping"),
                repeating or found.get("repeating"),
                mapping or found.get("mapping"),
                project_info or found.get("project_info"),
            )
        else:
            assert rec is not None  # without records, odm was set above
            cohort = read_redcap(
                rec,
                dictionary or found.get("dictionary"),
                event_mapping or found.get("event_mapping"),
                repeating or found.get("repeating"),
                mapping or found.get("mapping"),
                project_info=project_info or found.get("project_info"),
            )
    except CohortError as exc:
        _fail(exc)
    dropped = [c for c in cohort.identifiers if c != "patient_id"]
    if dropped and not keep_identifiers:
        from dataclasses import replace

        cohort = replace(cohort, patients=cohort.patients.drop(columns=dropped), identifiers=())
        typer.echo(
            "left out direct identifiers: "
            + ", ".join(dropped)
            + " (--keep-identifiers to write them)"
        )
    for note in cohort.notes:
        typer.echo(f"  note: {note}")
    try:
        write_cohort(cohort, output)
    except FileExistsError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(1) from None
    typer.echo(f"wrote cohort {output}: {cohort.summary()}")


def _draft(
    target: Path,
    dictionary: Path | None,
    event_mapping: Path | None,
    repeating: Path | None,
    project_info: Path | None = None,
) -> None:
    from cartrial.cohort import CohortError
    from cartrial.io.redcap import (
        read_dictionary,
        read_event_mapping,
        read_project_info,
        read_repeating,
    )
    from cartrial.io.redcap.draft import draft_mapping

    if target.exists():
        typer.echo(f"{target} exists; not overwritten", err=True)
        raise typer.Exit(1)
    try:
        d = read_dictionary(dictionary)
        text = draft_mapping(
            d,
            read_event_mapping(event_mapping, d),
            read_repeating(repeating, d),
            missing_codes=read_project_info(project_info),
        )
    except CohortError as exc:
        _fail(exc)
    target.write_text(text, encoding="utf-8")
    todo = sum(1 for line in text.splitlines() if line.startswith("# TODO "))
    typer.echo(
        f"wrote {target}: a draft mapping ({todo} field(s) left as TODO); edit it, then "
        f"cartrial import redcap DIR --mapping {target} -o COHORT"
    )


@import_app.command("redcap-template")
def redcap_template(
    folder: Annotated[
        Path, typer.Argument(help="Folder to copy the CD7 CAR-T REDCap template to.")
    ],
) -> None:
    """Copy the CD7 CAR-T REDCap project template (dictionary, events, repeating, mapping)."""
    import shutil

    from cartrial.io.redcap.mapping import TEMPLATE_FILES

    folder.mkdir(parents=True, exist_ok=True)
    for path in TEMPLATE_FILES.values():
        shutil.copy(path, folder / path.name)
        typer.echo(f"wrote {folder / path.name}")


@export_app.command("adam")
def export_adam_cmd(
    cohort_path: Annotated[
        str, typer.Argument(help="Cohort folder, workbook, or bundled example.")
    ],
    output: Annotated[Path, typer.Option("--output", "-o", help="Folder to write (new or empty).")],
    fmt: Annotated[
        str, typer.Option("--format", help="Comma-separated: csv, parquet, xpt.")
    ] = "csv",
    deidentify: Annotated[
        bool,
        typer.Option(
            "--deidentify",
            help="Study IDs only, no free text, dates shifted or removed, ages >= 90 grouped.",
        ),
    ] = False,
    date_mode: Annotated[
        str,
        typer.Option(
            "--date-mode",
            help="shift (one random offset per patient) or days (no dates, days since infusion).",
        ),
    ] = "shift",
    seed: Annotated[int | None, typer.Option("--seed", help="Seed for the date shifts.")] = None,
    te_window: Annotated[
        float | None,
        typer.Option(
            "--te-window",
            help="Treatment-emergent window: days after infusion (ADAE TRTEMFL); "
            "default: the whole follow-up (CAR-T).",
        ),
    ] = None,
    min_shift: Annotated[
        int,
        typer.Option(
            "--min-shift", help="Smallest date shift in days (de-identified, shift mode)."
        ),
    ] = 30,
    key_file: Annotated[
        Path | None,
        typer.Option(
            "--key-file",
            help="The site's secret pseudonym key (a text file; created with a new "
            "random key if missing). Keep it outside the export.",
        ),
    ] = None,
    key_map: Annotated[
        Path | None,
        typer.Option(
            "--key-map",
            help="Where to write the table pseudonym -> real SUBJID/SITEID "
            "(outside the export; default OUTPUT.key-map.csv).",
        ),
    ] = None,
    k: Annotated[
        int,
        typer.Option(
            "--k",
            help="k-anonymity: warn about combinations of site, "
            "age group, diagnosis and sex held by fewer subjects.",
        ),
    ] = 5,
    identified: Annotated[
        bool, typer.Option("--identified", help="Write identifier variables (date of birth) too.")
    ] = False,
    study_id: Annotated[str, typer.Option("--study-id", help="STUDYID value.")] = "CARTRIAL",
    censor_at_sct: Annotated[
        bool, typer.Option(help="Censor PFS/EFS/DFS/DOR/CIR/NRM at SCT or new therapy.")
    ] = False,
) -> None:
    """Write ADSL, ADTTE, ADAE, ADRS, ADPC, ADLB (and ADPP) with define.csv."""
    from cartrial.cli.core import _load_or_exit
    from cartrial.endpoints import EndpointOptions
    from cartrial.io.writers import FORMATS, export_adam

    formats = [f.strip().lower() for f in fmt.split(",") if f.strip()]
    bad = [f for f in formats if f not in FORMATS]
    if bad or not formats:
        typer.echo(
            f"--format: found {fmt!r}; expected a comma-separated list of {', '.join(FORMATS)}",
            err=True,
        )
        raise typer.Exit(2)
    if date_mode not in ("shift", "days"):
        typer.echo(f"--date-mode: found {date_mode!r}; expected shift or days", err=True)
        raise typer.Exit(2)
    cohort = _load_or_exit(cohort_path)
    options = EndpointOptions(censor_at_sct=censor_at_sct, censor_at_new_therapy=censor_at_sct)
    key = None
    if deidentify and key_file is not None:
        if key_file.exists():
            key = key_file.read_text(encoding="utf-8").strip()
        else:
            import secrets

            key = secrets.token_hex(32)
            key_file.parent.mkdir(parents=True, exist_ok=True)
            key_file.write_text(key + "\n", encoding="utf-8")
            typer.echo(f"wrote a new pseudonym key to {key_file}: keep it at the site")
    try:
        path, adam = export_adam(
            cohort,
            output,
            formats,
            deidentify=deidentify,
            date_mode=date_mode,
            seed=seed,
            te_window_days=te_window,
            study_id=study_id,
            options=options,
            min_shift=min_shift,
            key=key,
            key_map_path=key_map,
            k=k,
            identified=identified,
        )
    except (FileExistsError, ValueError) as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(1) from None
    sizes = ", ".join(f"{k} {len(v)}" for k, v in adam.items())
    typer.echo(
        f"wrote {path}: {sizes} rows ({', '.join(formats)})"
        + (" — de-identified, see DEIDENTIFICATION.txt" if deidentify else "")
    )
    first = next(iter(adam.values())).attrs
    for note in first.get("notes", []):
        typer.echo(f"  note: {note}")
    if deidentify:
        typer.echo(
            f"  the pseudonym table (keep it at the site, never share it): {first.get('key_map')}"
        )


def register(app: typer.Typer) -> None:
    """Add the ``import`` and ``export`` command groups."""
    app.add_typer(import_app, name="import")
    app.add_typer(export_app, name="export")
