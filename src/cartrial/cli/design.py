"""``cartrial design …``: dose-escalation tables, simulated operating characteristics,
Simon two-stage, power, and the DLT evaluation of a cohort.

Top-level imports stay light (typer only); ``cartrial.design`` loads inside commands.
Every output is decision support naming its rule; nothing acts on the trial.
"""

from __future__ import annotations

from typing import Annotated

import typer

design_app = typer.Typer(
    help="Design the trial: BOIN/CRM/3+3 tables, simulated operating characteristics, "
    "Simon two-stage, power, DLT evaluation and next-dose recommendation.",
    no_args_is_help=True,
)


def _floats(text: str, what: str) -> list[float]:
    try:
        return [float(x) for x in text.replace(";", ",").split(",") if x.strip()]
    except ValueError:
        typer.echo(f"{what}: expected comma-separated numbers, got {text!r}", err=True)
        raise typer.Exit(2) from None


def _print(df) -> None:
    import pandas as pd

    with pd.option_context("display.max_rows", 500, "display.width", 200):
        typer.echo(df.to_string(index=False))


@design_app.command("boin")
def boin(
    target: Annotated[float, typer.Option(help="Target DLT rate φ.")] = 0.3,
    cohort_size: Annotated[int, typer.Option(help="Patients per cohort.")] = 3,
    n_cohorts: Annotated[int, typer.Option(help="Maximum number of cohorts.")] = 10,
    cutoff_eli: Annotated[float, typer.Option(help="Elimination posterior cut-off.")] = 0.95,
) -> None:
    """BOIN boundaries λe/λd and decision table (Liu & Yuan 2015)."""
    from cartrial.design.escalation import BOIN

    try:
        d = BOIN(target, 1, cohort_size, n_cohorts, cutoff_eli=cutoff_eli)
        lam_e, lam_d = d.boundaries
    except ValueError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from None
    typer.echo(f"BOIN target {target:g}: lambda_e = {lam_e:.4f}, lambda_d = {lam_d:.4f}")
    _print(d.decision_table())


@design_app.command("crm")
def crm(
    target: Annotated[float, typer.Option(help="Target DLT rate.")] = 0.3,
    n_doses: Annotated[int, typer.Option(help="Number of dose levels.")] = 3,
    prior_mtd: Annotated[int, typer.Option(help="Prior guess of the MTD (1-based).")] = 2,
    halfwidth: Annotated[float, typer.Option(help="Skeleton indifference half-width.")] = 0.05,
    n: Annotated[str, typer.Option(help="Patients per dose, e.g. 3,3,0.")] = "",
    dlt: Annotated[str, typer.Option(help="DLTs per dose, e.g. 0,1,0.")] = "",
    current: Annotated[int, typer.Option(help="Current dose (1-based).")] = 1,
) -> None:
    """CRM skeleton and, with --n/--dlt, the recommendation for the next cohort."""
    from cartrial.design.escalation import CRM, crm_skeleton

    sk = crm_skeleton(halfwidth, target, prior_mtd - 1, n_doses)
    typer.echo("skeleton: " + ", ".join(f"{s:.4f}" for s in sk))
    if n:
        design = CRM(tuple(sk), target)
        dec = design.decide(_floats(n, "--n"), _floats(dlt, "--dlt"), current - 1)
        _echo_decision(dec)


def _echo_decision(dec) -> None:
    nxt = "none" if dec.next_dose is None else str(dec.next_dose + 1)
    typer.echo(f"recommendation (not an action): {dec.action}, next dose {nxt}")
    typer.echo(f"rule: {dec.rule}")


@design_app.command("simulate")
def simulate(
    p_true: Annotated[str, typer.Option("--p-true", help="True DLT rates, e.g. .05,.1,.2,.3,.45")],
    design: Annotated[str, typer.Option(help="boin, crm or 3+3.")] = "boin",
    target: Annotated[float, typer.Option(help="Target DLT rate.")] = 0.3,
    cohort_size: Annotated[int, typer.Option(help="Patients per cohort.")] = 3,
    n_cohorts: Annotated[int, typer.Option(help="Maximum number of cohorts.")] = 10,
    trials: Annotated[int, typer.Option(help="Simulated trials.")] = 10_000,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 1,
    figure: Annotated[
        str, typer.Option(help="Also write the OC figure (PNG/SVG/PDF) to this path.")
    ] = "",
) -> None:
    """Operating characteristics by simulation (vectorised), with Monte-Carlo SE."""
    from cartrial.design import simulate as sim
    from cartrial.design.escalation import BOIN, CRM, ThreePlusThree, crm_skeleton

    p = _floats(p_true, "--p-true")
    nd = len(p)
    try:
        if design == "boin":
            oc = sim.simulate_boin(BOIN(target, nd, cohort_size, n_cohorts), p, trials, seed)
        elif design == "crm":
            mtd = min(range(nd), key=lambda i: abs(i - (nd - 1) / 2))
            sk = tuple(crm_skeleton(min(0.05, target / 2), target, mtd, nd))
            oc = sim.simulate_crm(CRM(sk, target, cohort_size, n_cohorts), p, trials, seed)
        elif design in ("3+3", "3plus3"):
            oc = sim.simulate_3plus3(ThreePlusThree(nd), p, trials, seed, target=target)
        else:
            typer.echo(f"--design: expected boin, crm or 3+3, got {design!r}", err=True)
            raise typer.Exit(2)
    except ValueError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from None
    typer.echo(f"{oc.design}: {oc.n_trials} simulated trials, seed {seed}")
    _print(oc.summary().round(4))
    for k, v in oc.metrics().items():
        typer.echo(f"{k}: {v:.4g}")
    if figure:
        sim.plot_operating_characteristics([oc]).savefig(figure)
        typer.echo(f"wrote {figure}")


@design_app.command("simon")
def simon(
    p0: Annotated[float, typer.Option(help="Uninteresting (historical) response rate.")],
    p1: Annotated[float, typer.Option(help="Target response rate.")],
    alpha: Annotated[float, typer.Option(help="One-sided type I error.")] = 0.05,
    beta: Annotated[float, typer.Option(help="Type II error.")] = 0.2,
    n_max: Annotated[int, typer.Option(help="Largest total sample size searched.")] = 80,
) -> None:
    """Simon (1989) optimal and minimax two-stage designs, and the exact single stage."""
    from cartrial.design.power import exact_single_stage, simon_two_stage

    try:
        res = simon_two_stage(p0, p1, alpha, beta, n_max)
        single = exact_single_stage(p0, p1, alpha, beta)
    except ValueError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from None
    for d in res.values():
        typer.echo(
            f"{d.kind:8s} stop if <= {d.r1}/{d.n1}; reject if <= {d.r}/{d.n}; "
            f"EN0 {d.en0:.1f}, PET0 {d.pet0:.3f}, alpha {d.alpha:.4f}, power {d.power:.4f}"
        )
    typer.echo(
        f"single   n {single.n}, active if >= {single.r} responses "
        f"(alpha {single.alpha:.4f}, power {single.power:.4f})"
    )


@design_app.command("power")
def power(
    hr: Annotated[float, typer.Option(help="Hazard ratio.")] = 0.5,
    alpha: Annotated[float, typer.Option(help="Two-sided alpha.")] = 0.05,
    power: Annotated[float, typer.Option(help="Target power.")] = 0.8,
    median: Annotated[float, typer.Option(help="Control median (days) for patients.")] = 0.0,
    accrual: Annotated[float, typer.Option(help="Accrual duration (days).")] = 0.0,
    follow_up: Annotated[float, typer.Option(help="Follow-up after accrual (days).")] = 0.0,
    landmark_n: Annotated[
        int, typer.Option(help="Also simulate the landmark SCT design with this cohort size.")
    ] = 0,
    p_sct: Annotated[float, typer.Option(help="Share of eligible patients given SCT.")] = 0.5,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 1,
) -> None:
    """Log-rank events/patients (Schoenfeld) and landmark power by simulation."""
    from cartrial.design import power as pw

    try:
        typer.echo(f"Schoenfeld events: {pw.schoenfeld_events(hr, alpha, power):.1f}")
        if median > 0 and accrual > 0:
            s = pw.schoenfeld_sample_size(hr, median, accrual, follow_up, alpha, power)
            typer.echo(f"P(event) {s['p_event']:.3f}; patients {s['patients']:.1f}")
        if landmark_n > 0:
            lm = pw.simulate_landmark_power(
                landmark_n, hr, median or 180.0, p_sct, alpha=alpha, seed=seed
            )
            typer.echo(
                f"landmark day {lm['landmark']:g}: power {lm['power']:.3f} "
                f"(MC SE {lm['mc_se']:.3f}), {lm['mean_at_landmark']:.1f} at landmark, "
                f"{lm['mean_sct_at_landmark']:.1f} with SCT"
            )
    except ValueError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from None


@design_app.command("dlt")
def dlt(
    cohort: Annotated[str, typer.Argument(help="Cohort folder, .xlsx workbook or example.")],
    doses: Annotated[str, typer.Option(help="Design doses, cells/kg.")] = "5e5,1e6,2e6",
    target: Annotated[float, typer.Option(help="BOIN target DLT rate.")] = 0.3,
    window_end: Annotated[float, typer.Option(help="DLT window end (day).")] = 28.0,
) -> None:
    """DLTs per patient and dose, and the BOIN next-dose recommendation."""
    from cartrial.cli.core import _load_or_exit
    from cartrial.design.dlt import DLTDefinition
    from cartrial.design.escalation import BOIN
    from cartrial.design.monitor import next_dose_recommendation

    loaded = _load_or_exit(cohort)
    levels = _floats(doses, "--doses")
    try:
        rec = next_dose_recommendation(
            loaded,
            BOIN(target, len(levels)),
            levels,
            definition=DLTDefinition(window=(0.0, window_end)),
        )
    except ValueError as exc:
        typer.echo(f"cohort {cohort}: {exc}", err=True)
        raise typer.Exit(2) from None
    pts = rec.patients[rec.patients["dlt"].fillna(False)]
    _print(pts[["patient_id", "dose_level", "dlt_day", "dlt_rules", "dlt_source_rows"]])
    _print(rec.dlt_table)
    typer.echo(rec.text)


def register(app: typer.Typer) -> None:
    """Attach ``cartrial design …`` to the main app."""
    app.add_typer(design_app, name="design")
