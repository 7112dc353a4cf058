"""``cartrial kinetics COHORT``: the NCA table of CAR-T kinetics (and optionally model fits).

Top-level imports stay light (typer only); the kinetics layer loads inside the command.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def kinetics(
    cohort: Annotated[str, typer.Argument(help="Cohort folder, .xlsx workbook or example name.")],
    analyte: Annotated[
        str, typer.Option(help="Analyte: cart_qpcr (copies/µg) or cart_flow (cells/µL).")
    ] = "cart_qpcr",
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write the table as CSV here.")
    ] = None,
    blq_after: Annotated[
        str, typer.Option(help="BLQ after the first quantifiable value: exclude, half_lloq, pknca.")
    ] = "exclude",
    auc_method: Annotated[
        str, typer.Option(help="AUC rule: linear-up/log-down or linear.")
    ] = "linear-up/log-down",
    model: Annotated[
        bool,
        typer.Option(
            "--model/--no-model", help="Also fit the multiphasic model (Stein et al. 2019)."
        ),
    ] = False,
    jobs: Annotated[int, typer.Option(help="Worker processes for the model fits.")] = 1,
) -> None:
    """Non-compartmental analysis of CAR-T expansion and persistence, one row per patient."""
    from cartrial.cohort import CohortError, load_cohort

    try:
        loaded = load_cohort(cohort)
    except CohortError as exc:
        typer.echo(f"cohort {cohort}: INVALID — {len(exc.problems)} problem(s):", err=True)
        for p in exc.problems:
            typer.echo(f"  - {p}", err=True)
        raise typer.Exit(1) from None
    try:
        table = kinetics_table(
            loaded.observations,
            analyte,
            blq_after=blq_after,
            auc_method=auc_method,
            model=model,
            jobs=jobs,
        )
    except ValueError as exc:
        typer.echo(f"cohort {cohort}: {exc}", err=True)
        raise typer.Exit(2) from None
    if table.empty:
        typer.echo(f"cohort {cohort}: no {analyte} observations")
        return
    if output is not None:
        table.to_csv(output, index=False)
        typer.echo(f"wrote {len(table)} rows to {output}")
    else:
        import pandas as pd

        cols = [
            "patient_id",
            "n_samples",
            "cmax",
            "tmax",
            "auc_0_28",
            "auc_0_84",
            "tlast",
            "persistence_days",
            "half_life",
        ]
        if model:
            cols += ["model_cmax", "model_tmax", "model_auc_0_28", "model_reason"]
        with pd.option_context("display.max_rows", 500, "display.width", 200):
            typer.echo(table[[c for c in cols if c in table.columns]].to_string(index=False))


def kinetics_table(
    observations,
    analyte: str = "cart_qpcr",
    blq_after: str = "exclude",
    auc_method: str = "linear-up/log-down",
    model: bool = False,
    jobs: int = 1,
):
    """The table the command prints: NCA per patient, plus ``model_*`` columns with --model."""
    import pandas as pd

    from cartrial.kinetics._obs import canonical_analytes
    from cartrial.kinetics.nca import nca_table

    if (
        observations is None
        or not len(observations)
        or not (canonical_analytes(observations["analyte"]) == analyte).any()
    ):
        return pd.DataFrame()
    table = nca_table(observations, analyte, blq_after=blq_after, auc_method=auc_method)
    if model:
        from cartrial.kinetics.model import fit_table

        fits = fit_table(observations, analyte, n_jobs=jobs)
        keep = ["patient_id", "cmax", "tmax", "alpha", "beta", "fb", "foldx", "auc_0_28", "reason"]
        fits = fits[keep].rename(columns={c: f"model_{c}" for c in keep if c != "patient_id"})
        table = table.merge(fits, on="patient_id", how="left")
    return table


def register(app: typer.Typer) -> None:
    """Attach ``cartrial kinetics`` to the main app."""
    app.command("kinetics")(kinetics)
