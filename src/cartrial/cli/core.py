"""Core commands: ``validate``, ``endpoints``, ``km``. Heavy imports stay inside the commands."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, cast, get_args

import typer


def _load_or_exit(path: str):
    """Load a cohort or print every problem and exit 1."""
    from cartrial.cohort import CohortError, load_cohort

    try:
        return load_cohort(path)
    except CohortError as exc:
        typer.echo(f"cohort {path}: INVALID — {len(exc.problems)} problem(s):", err=True)
        for p in exc.problems:
            typer.echo(f"  - {p}", err=True)
        raise typer.Exit(1) from None


def validate(
    path: Annotated[
        str,
        typer.Argument(
            help="Cohort folder, .xlsx workbook, wide .csv, or a bundled example name (tan2023)."
        ),
    ],
    strict: Annotated[
        bool,
        typer.Option(
            help="Also fail on warnings: recorded AEs that disagree with those graded from "
            "bedside data, blank infusion flags, deaths from the disease without a relapse row."
        ),
    ] = False,
) -> None:
    """Check a cohort against the format; list every problem (file, row, column, value, expected).

    When the cohort has daily bedside observations, the CRS/ICANS/GVHD/cytopenia episodes
    graded from them (cartrial.grading.episodes) are compared with the recorded adverse
    events and every disagreement is listed.
    """
    from cartrial.endpoints import endpoint_warnings
    from cartrial.endpoints.populations import population_notes

    cohort = _load_or_exit(path)
    typer.echo(f"cohort {path}: valid — {cohort.summary()}")
    for note in (*cohort.notes, *population_notes(cohort)):
        typer.echo(f"  note: {note}")
    warnings = endpoint_warnings(cohort)
    if warnings:
        typer.echo(f"{len(warnings)} warning(s): records the endpoint rules had to interpret:")
        for w in warnings:
            typer.echo(f"  - {w}")
    disagreements = recorded_vs_derived(cohort)
    if disagreements:
        typer.echo(
            f"{len(disagreements)} disagreement(s) between recorded adverse events and those "
            "graded from bedside observations:"
        )
        for d in disagreements:
            typer.echo(f"  - {d}")
    if strict and (disagreements or warnings):
        raise typer.Exit(1)


def recorded_vs_derived(cohort) -> list[str]:
    """Recorded AE episodes that disagree with episodes graded from daily observations."""
    if cohort.observations.empty:
        return []
    from cartrial.grading.episodes import compare_episodes, derive_episodes, grade_daily

    daily = grade_daily(cohort.observations, patients=cohort.patients)
    if daily is None or len(daily) == 0:
        return []
    derived = derive_episodes(daily)
    terms = set(daily["term"].astype(str))
    recorded = cohort.adverse_events
    recorded = recorded[recorded["term"].isin(terms) & ~recorded["derived"].fillna(False)]
    if recorded.empty:
        return []
    derived = derived[derived["patient_id"].isin(set(recorded["patient_id"]))]
    out = []
    for d in compare_episodes(recorded, derived, daily):
        if d["kind"] == "derived_only":
            continue  # nothing recorded for this term: the derived episode fills the gap
        out.append(
            f"patient {d['patient_id']}, {d['term']}: recorded grade {d['recorded_grade']} "
            f"({d['recorded_system']}), graded from observations {d['derived_grade']} "
            f"({d['derived_system']}) — {d['kind']}: {d.get('note', '')}"
        )
    return out


def endpoints(
    path: Annotated[str, typer.Argument(help="Cohort path or bundled example name.")],
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write the table as CSV here.")
    ] = None,
    censor_at_sct: Annotated[
        bool, typer.Option(help="Censor PFS/EFS/DFS/DOR/CIR/NRM at SCT or new therapy.")
    ] = False,
    efs_nonresponse: Annotated[
        bool,
        typer.Option(help="EFS counts failure to reach the required response as an event."),
    ] = True,
    required_response: Annotated[
        str,
        typer.Option(
            help="Responses that are EFS success, comma-separated (leukaemia: CR/CRh/CRi)."
        ),
    ] = "CR,CRh,CRi",
    efs_failure_day: Annotated[
        int, typer.Option(help="Day treatment failure is dated: 0 (publications) or 1 (ELN 2022).")
    ] = 0,
    definitions: Annotated[
        Path | None,
        typer.Option(help="YAML file with user-defined endpoints (an 'endpoints:' section)."),
    ] = None,
    populations: Annotated[
        bool, typer.Option("--populations", help="Print the analysis populations instead.")
    ] = False,
) -> None:
    """Derive the time-to-event dataset (ADTTE-like, one row per patient and endpoint).

    Each endpoint is derived for its population (OS/PFS/EFS: infused; DFS/CIR/NRM: in
    CR/CRh/CRi; DOR: responders); ``--populations`` prints who is in which and why not.
    """
    from cartrial.endpoints import (
        DefinitionError,
        EndpointOptions,
        derive_endpoints,
        load_definitions,
        population_counts,
    )

    try:
        extra = load_definitions(definitions) if definitions is not None else {}
        options = EndpointOptions(
            censor_at_sct=censor_at_sct,
            censor_at_new_therapy=censor_at_sct,
            efs_nonresponse_event=efs_nonresponse,
            required_response=tuple(r.strip() for r in required_response.split(",") if r.strip()),
            efs_failure_day=efs_failure_day,
            definitions=extra,
        )
    except (DefinitionError, ValueError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    cohort = _load_or_exit(path)
    if populations:
        import pandas as pd

        with pd.option_context("display.max_colwidth", 80, "display.width", 160):
            typer.echo(population_counts(cohort, options.response_window).to_string(index=False))
        return
    table = derive_endpoints(cohort, options)
    if output is not None:
        table.to_csv(output, index=False)
        typer.echo(f"wrote {len(table)} rows to {output}")
    else:
        import pandas as pd

        with pd.option_context("display.max_rows", 200, "display.width", 160):
            typer.echo(table.drop(columns=["source"]).to_string(index=False))


def km(
    path: Annotated[str, typer.Argument(help="Cohort path or bundled example name.")],
    endpoint: Annotated[str, typer.Option(help="Endpoint: OS, PFS, EFS, DFS, DOR.")] = "OS",
    conf_type: Annotated[str, typer.Option(help="CI transform: plain, log, log-log.")] = "log-log",
    at: Annotated[list[float] | None, typer.Option(help="Landmark time(s) in months.")] = None,
    ci_method: Annotated[
        str,
        typer.Option(help="Median CI rule: bands (R survfit's, default) or brookmeyer-crowley."),
    ] = "bands",
) -> None:
    """Kaplan–Meier estimate for one endpoint: median and landmark survival with CIs."""
    from cartrial.cohort.units import DAYS_PER_MONTH
    from cartrial.endpoints import derive_endpoints
    from cartrial.stats import kaplan_meier
    from cartrial.stats.survival import CIMethod, ConfType

    if conf_type not in get_args(ConfType):
        typer.echo(f"--conf-type: found {conf_type!r}; expected plain, log or log-log", err=True)
        raise typer.Exit(2)
    if ci_method not in get_args(CIMethod):
        typer.echo(
            f"--ci-method: found {ci_method!r}; expected bands or brookmeyer-crowley", err=True
        )
        raise typer.Exit(2)
    cohort = _load_or_exit(path)
    table = derive_endpoints(cohort)
    rows = table[table["endpoint"] == endpoint.upper()]
    if rows.empty:
        typer.echo(
            f"--endpoint: no rows for {endpoint!r}; available: "
            + ", ".join(sorted(table["endpoint"].unique())),
            err=True,
        )
        raise typer.Exit(2)
    months = rows["time_days"].to_numpy(dtype=float) / DAYS_PER_MONTH
    fit = kaplan_meier(
        months, rows["event"].to_numpy(dtype=int), conf_type=cast(ConfType, conf_type)
    )
    med, lo, hi = fit.median(ci_method=cast(CIMethod, ci_method))
    typer.echo(
        f"{endpoint.upper()}: {int(rows['event'].sum())} events / {len(rows)} patients "
        f"(CI transform {conf_type}, Greenwood; median CI rule {ci_method})"
    )

    def show(x: float) -> str:
        return "not reached" if x == float("inf") else "NA" if x != x else f"{x:.1f}"

    typer.echo(f"  median {show(med)} months (95% CI {show(lo)}–{show(hi)})")
    for t in at or [12.0, 24.0]:
        s, lo_t, hi_t = fit.survival_at(t)
        typer.echo(f"  {t:g} months: {100 * s:.1f}% (95% CI {100 * lo_t:.1f}–{100 * hi_t:.1f})")


def write(
    path: Annotated[
        str, typer.Argument(help="Cohort to read: folder (CSV or Parquet), .xlsx, .csv or example.")
    ],
    output: Annotated[Path, typer.Option("--output", "-o", help="Folder to write the cohort to.")],
    format: Annotated[
        str, typer.Option("--format", help="csv (text tables) or parquet (typed, zstd).")
    ] = "parquet",
    overwrite: Annotated[bool, typer.Option(help="Replace a non-empty output folder.")] = False,
) -> None:
    """Validate a cohort and write it as a folder of CSV or Parquet tables (loadable again)."""
    import shutil
    import tempfile

    from cartrial._folders import swap_into_place
    from cartrial.cohort import write_cohort
    from cartrial.cohort.load import FORMATS

    if format not in FORMATS:
        typer.echo(
            f"error: --format: found {format!r}; expected one of {', '.join(FORMATS)}", err=True
        )
        raise typer.Exit(2)
    if output.exists() and (not output.is_dir() or any(output.iterdir())) and not overwrite:
        typer.echo(
            f"error: {output} exists and is not empty (use --overwrite to replace it)", err=True
        )
        raise typer.Exit(1)
    cohort = _load_or_exit(path)
    output.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{output.name}.", dir=output.parent))
    try:
        swap_into_place(write_cohort(cohort, work / "cohort", format=format), output)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    typer.echo(f"cohort {path}: {cohort.summary()} — written as {format} to {output}")


def register(app: typer.Typer) -> None:
    app.command()(validate)
    app.command()(endpoints)
    app.command()(km)
    app.command()(write)
