"""Build the trial report in memory: ``build_report`` derives what every section reads
once (``sections.BuildContext``), runs the section builders (``sections.SECTION_BUILDERS``,
each ``(context) -> SectionOutput``) in print order and adds the methods, definitions and
provenance. Nothing is written here: ``cartrial.report.writer.write_report`` writes the
folder.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from cartrial import __version__
from cartrial.endpoints import derive_endpoints
from cartrial.endpoints.populations import analysis_populations
from cartrial.report import figures as F
from cartrial.report import tables as T
from cartrial.report.document import SECTIONS, Progress, Report, TableItem
from cartrial.report.figures import Drawn
from cartrial.report.kinetics_part import kinetics_part, kinetics_title, sample_spaghetti
from cartrial.report.labels import label
from cartrial.report.methods import data_cutoff, endpoint_definitions, methods_text
from cartrial.report.sections import (
    SECTION_BUILDERS,
    BuildContext,
    SectionOutput,
    no_followup,
    population_text,
)
from cartrial.report.settings import ReportSettings, SettingsError

# the writer's functions, imported from here by earlier callers
from cartrial.report.writer import close_figures, write_csv, write_report

if TYPE_CHECKING:  # pragma: no cover
    from cartrial.cohort import Cohort

__all__ = [
    "SECTIONS",
    "Report",
    "SectionOutput",
    "TableItem",
    "build_report",
    "close_figures",
    "kinetics_part",
    "kinetics_title",
    "sample_spaghetti",
    "write_csv",
    "write_report",
]

#: called with each section's finished figures as soon as it is built (e.g. to start
#: drawing them while later sections are computed)
FigureSink = Callable[[list[Drawn]], None]


def _noop(_msg: str) -> None:
    return None


def build_context(cohort: Cohort, settings: ReportSettings, say: Progress) -> BuildContext:
    """Analysis populations (with each patient's best response), the analysed patients and
    the endpoints, derived once for every section; settings naming columns the cohort
    lacks are refused (``SettingsError``)."""

    pops = analysis_populations(cohort, settings.response_window)
    pops = pops.assign(patient_id=pops["patient_id"].astype(str))
    patients = T.analysis_patients(cohort, settings, pops)
    for key, col in (("group", settings.group),):
        if col is not None and col not in patients.columns:
            raise SettingsError(
                f"setting '{key}': found {col!r}; expected a patients column: "
                + ", ".join(c for c in patients.columns if c not in ("source_file", "source_row"))
            )
    if settings.subgroups:
        missing = [c for c in settings.subgroups if c not in patients.columns]
        if missing:
            raise SettingsError(
                f"setting 'subgroups': found {missing}; expected patients "
                "columns (or derived sct_consolidation, age_group, best_response)"
            )
    synthetic = bool(
        "synthetic" in patients.columns and T.category_values(patients["synthetic"]).eq("yes").any()
    )
    say("deriving endpoints")
    endpoints = derive_endpoints(cohort, settings.endpoint_options())
    endpoints = endpoints[
        endpoints["endpoint"].isin(list(settings.endpoints))
        & endpoints["patient_id"].astype(str).isin(patients["patient_id"].astype(str))
    ].reset_index(drop=True)
    followed = not endpoints.empty and not no_followup(endpoints)
    return BuildContext(
        cohort=cohort,
        settings=settings,
        say=say,
        pops=pops,
        patients=patients,
        endpoints=endpoints,
        followed=followed,
        synthetic=synthetic,
        saf_text=population_text("SAF", len(patients)),
        n_cr=int(pops["complete_remission"].sum()),
    )


def build_report(
    cohort: Cohort,
    settings: ReportSettings | None = None,
    progress: Progress | None = None,
    on_figures: FigureSink | None = None,
) -> Report:
    """Compute every table and figure of the report (nothing is written).

    ``on_figures`` receives each section's figures once they are final (synthetic mark
    included), before the next section is built.
    """

    settings = settings or ReportSettings()
    say = progress or _noop
    ctx = build_context(cohort, settings, say)
    report = Report(
        settings=settings,
        populations=ctx.pops,
        patients=ctx.patients,
        endpoints=ctx.endpoints,
        synthetic=ctx.synthetic,
    )
    if not ctx.followed:
        why = (
            "No follow-up after infusion is recorded (no patient is known alive or dead "
            "after day 0): Kaplan–Meier curves would censor everyone at day 0, so the "
            "time-to-event analyses, subgroup comparisons and the swimmer plot are "
            "not shown."
        )
        report.section_notes.append(("survival", why))
        report.notes.append(why)
        say("warning: no follow-up after day 0: time-to-event analyses skipped")
    extra_methods: list[str] = []
    for builder in SECTION_BUILDERS:
        out = builder(ctx)
        if report.synthetic:
            for _, drawn in out.figures:
                F.mark_synthetic(drawn)
        report.tables += out.tables
        report.figures += out.figures
        report.section_notes += out.section_notes
        report.notes += out.notes
        extra_methods += out.methods
        if on_figures is not None and out.figures:
            on_figures([d for _, d in out.figures])
    _drop_identifiers(report, cohort)
    for _, drawn in report.figures:  # every figure states its population and denominator
        if not drawn.caption.startswith(("Population", "Populations")):
            pop = (
                population_text("ITT", ctx.flow["enrolled"])
                if drawn.name == "patient_flow"
                else ctx.saf_text
            )
            drawn.caption = f"{pop} {drawn.caption}".strip()

    report.methods = methods_text(settings, cohort.layout, ctx.ae_notes, cohort) + extra_methods
    report.definitions = endpoint_definitions(settings)
    report.provenance = {
        "source": cohort.source,
        "input_sha256": cohort.input_sha256,
        "layout": cohort.layout,
        "cartrial_version": __version__,
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S UTC"),
        "data_cutoff": data_cutoff(cohort),
        "patients": (
            f"{len(cohort.patients)} in the cohort, {len(ctx.patients)} analysed (infused)"
        ),
        "cohort_notes": list(cohort.notes),
    }
    return report


def _drop_identifiers(report: Report, cohort: Cohort) -> None:
    """Remove the cohort's direct identifier columns from every table (interop's
    ``Cohort.identifiers``)."""
    ids = [c for c in getattr(cohort, "identifiers", ()) if c != "patient_id"]
    if not ids:
        return

    names = set(ids) | {label(c) for c in ids}
    for t in report.tables:
        drop = [c for c in t.df.columns if c in names]
        if drop:
            t.df = t.df.drop(columns=drop)
