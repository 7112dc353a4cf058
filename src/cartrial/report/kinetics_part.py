"""The report's CAR-T kinetics and immune reconstitution part: the tables and figures of
``cartrial.kinetics.report.kinetics_section`` as report items (titles, captions, a seeded
sample of individual profiles above ``SPAGHETTI_MAX`` patients, fixed figure margins)."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from cartrial.kinetics.figures import spaghetti_plot
from cartrial.kinetics.report import kinetics_section
from cartrial.report import figures as F
from cartrial.report import labels as L
from cartrial.report.document import SectionOutput, TableItem
from cartrial.report.figures import Drawn

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.figure import Figure

    from cartrial.cohort import Cohort
    from cartrial.report.settings import ReportSettings


def kinetics_part(cohort: Cohort, settings: ReportSettings) -> SectionOutput:
    """The kinetics section (``cartrial.kinetics.report.kinetics_section``) as a typed
    ``SectionOutput``: titled tables, captioned figures (section "kinetics") and notes."""

    section = kinetics_section(
        cohort,
        group=settings.group,
        fit_model=settings.kinetics_model_fit,
        population_model=settings.kinetics_population_model,
    )
    titles = {
        "nca_summary": "CAR-T kinetics, non-compartmental analysis: summary",
        "nca_table": "CAR-T kinetics, non-compartmental analysis per patient",
        "persistence": "CAR-T persistence (share still detectable)",
        "model_table": "Multiphasic model (Stein 2019) fits per patient",
        "population_typical": "Population kinetic model: typical values (95% CrI)",
        "population_variability": "Population kinetic model: between-patient "
        "variability and shrinkage",
        "population_covariates": "Population kinetic model: covariate effects (95% CrI)",
        "population_individual": "Population kinetic model: shrunken per-patient estimates",
        "recovery_incidence": "Immune recovery, cumulative incidence",
        "reconstitution_table": "Immune reconstitution per patient",
    }
    tables = []
    for key, df in section.tables().items():
        title = titles[key]
        if not df.empty:
            df = df.reset_index(drop=True)
            tables.append(
                TableItem(
                    f"kinetics_{key.removesuffix('_table')}",
                    title,
                    df,
                    "kinetics",
                    display=L.humanize(df),
                    footnote="Concentrations in the unit of each row; "
                    "numbers to three significant digits (the CSV keeps "
                    "full precision).",
                )
            )
    figs = []
    for name, fig in section.figures.items():
        safe = re.sub(r"[^A-Za-z0-9_-]+", "_", str(name))
        drawn = Drawn(f"kinetics_{safe}", kinetics_title(str(name)), fig)
        if str(name).endswith("_spaghetti"):
            sample_spaghetti(drawn, cohort, str(name).removesuffix("_spaghetti"), settings)
        kinetics_layout(str(name), drawn.fig)
        figs.append(drawn)
    notes = [str(n) for n in section.notes]
    return SectionOutput(tables=tables, figures=[("kinetics", f) for f in figs], notes=notes)


#: most patients drawn as individual kinetics profiles; above, a seeded random sample
SPAGHETTI_MAX = 80
SPAGHETTI_SEED = 20231


def sample_spaghetti(
    drawn: Drawn,
    cohort: Cohort,
    analyte: str,
    settings: ReportSettings,
    max_patients: int = SPAGHETTI_MAX,
) -> None:
    """Caption the individual-profiles figure; above ``max_patients`` patients with the
    analyte, redraw it (``cartrial.kinetics.figures.spaghetti_plot``) for a random sample
    of ``max_patients`` of them (NumPy generator, seed ``SPAGHETTI_SEED``, so the same
    cohort gives the same sample): hundreds of overlapping lines show nothing, and the
    median/IQR figure already shows every patient. ``drawn.info['patients']`` keeps the
    ids drawn."""
    obs = cohort.observations
    ids = np.sort(
        pd.unique(obs.loc[(obs["analyte"] == analyte).to_numpy(), "patient_id"].astype(str))
    )
    drawn.info["patients"] = list(ids)
    if len(ids) <= max_patients:
        drawn.caption = f"One line per patient ({len(ids)} patients)."
        return

    keep = np.sort(np.random.default_rng(SPAGHETTI_SEED).choice(ids, max_patients, replace=False))
    sub = obs[obs["patient_id"].astype(str).isin(keep).to_numpy()]
    fig = spaghetti_plot(sub, analyte, group=settings.group, patients=cohort.patients)
    drawn.fig.clf()
    drawn.fig = fig
    if fig.axes:  # the picture says it is a sample too (left, clear of the synthetic mark)
        ax = fig.axes[0]
        head = ax.get_title() or drawn.title
        ax.set_title("")
        ax.set_title(f"{head}: random sample of {max_patients} of {len(ids)} patients", loc="left")
    drawn.info["patients"] = list(keep)
    drawn.title += f" (random sample of {max_patients} of {len(ids)} patients)"
    drawn.caption = (
        f"Individual profiles of a random sample of {max_patients} of the "
        f"{len(ids)} patients with this analyte (seeded, reproducible): more "
        "lines would hide each other. The median and IQR figure shows every "
        "patient."
    )


def kinetics_layout(name: str, fig: Figure) -> None:
    """Fixed margins (inches, ``figures.fixed_layout``) for the kinetics figures whose text
    is known: individual profiles, median/IQR (its rows of n under the axis), Cmax box
    plots and the reconstitution panels (two-line panel titles). Others keep their
    constrained layout. The top margin leaves room for the synthetic-data mark."""
    if name == "reconstitution_panels":
        F.fixed_layout(fig, left=0.62, right=0.12, top=0.55, bottom=0.42, wspace=0.62, hspace=0.8)
    elif name.endswith("_median_iqr"):
        rows = len(
            {
                t.get_gid()
                for ax in fig.axes
                for t in ax.texts
                if str(t.get_gid() or "").startswith("n:")
            }
        )
        F.fixed_layout(fig, left=0.85, right=0.15, top=0.42, bottom=0.66 + 0.12 * max(rows - 1, 0))
    elif name.endswith("_spaghetti") or "_cmax_by_" in name:
        F.fixed_layout(fig, left=0.85, right=0.15, top=0.42, bottom=0.5)


def kinetics_title(name: str) -> str:
    """'cart_flow_median_iqr' → 'CAR-T cells (flow): median and IQR over time'."""
    kinds = {
        "_spaghetti": "individual profiles",
        "_median_iqr": "median and IQR over time",
        "_population_obs_vs_pred": "population model, observed vs predicted",
        "_population_vpc": "population model, visual predictive check",
    }
    if name == "reconstitution_panels":
        return "Immune reconstitution"
    for suffix, text in kinds.items():
        if name.endswith(suffix):
            a = name.removesuffix(suffix)
            return f"{L.ANALYTE_VALUES.get(a, L.label(a))}: {text}"
    if "_cmax_by_" in name:
        a, grp = name.split("_cmax_by_", 1)
        return f"{L.ANALYTE_VALUES.get(a, L.label(a))}: Cmax by {L.label(grp, unit=False)}"
    return L.label(name)
