"""The report's section builders: ``build_report`` runs ``SECTION_BUILDERS`` in order,
each ``(context) -> SectionOutput``.

``BuildContext`` holds the cohort, the settings and what several sections read, derived
once before the builders run (analysis populations with the best response, the analysed
patients, the endpoints); a builder may leave results for later ones in it (the subgroup
tables that the figures mark with their p-values, the AE notes the methods repeat, the
patient flow counts that captions cite). The order of ``SECTION_BUILDERS`` is the order of
the tables and figures in every rendering.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pandas as pd

from cartrial.endpoints import last_known_alive
from cartrial.endpoints.populations import POPULATIONS
from cartrial.grading.episodes import compare_episodes, derive_episodes, grade_daily
from cartrial.report import figures as F
from cartrial.report import labels as L
from cartrial.report import postinfusion
from cartrial.report import tables as T
from cartrial.report.course import course_frame, patient_flow, swimmer_inputs
from cartrial.report.design_section import design_section
from cartrial.report.document import Progress, SectionOutput, TableItem, endpoint_title
from cartrial.report.kinetics_part import kinetics_part

if TYPE_CHECKING:  # pragma: no cover
    from cartrial.cohort import Cohort
    from cartrial.report.settings import ReportSettings


@dataclass
class BuildContext:
    """The inputs of every section builder, derived once (see the module docstring)."""

    cohort: Cohort
    settings: ReportSettings
    say: Progress
    pops: pd.DataFrame
    patients: pd.DataFrame
    endpoints: pd.DataFrame
    followed: bool
    synthetic: bool
    saf_text: str
    n_cr: int
    # left by builders for later ones
    risk_ex: Any = None
    subgroups: list[str] = field(default_factory=list)
    within: dict[str, pd.Index] = field(default_factory=dict)
    sub_tab: pd.DataFrame = field(default_factory=pd.DataFrame)
    cox_tab: pd.DataFrame = field(default_factory=pd.DataFrame)
    ae_notes: list[str] = field(default_factory=list)
    course: pd.DataFrame = field(default_factory=pd.DataFrame)
    flow: dict[str, Any] = field(default_factory=dict)


SectionBuilder = Callable[[BuildContext], SectionOutput]


def no_followup(endpoints: pd.DataFrame) -> bool:
    """True when no patient is followed beyond day 0 (every curve would censor everyone
    at day 0)."""
    os_t = endpoints.loc[endpoints["endpoint"] == "OS", "time_days"]
    t = os_t if not os_t.empty else endpoints["time_days"]
    return bool(t.empty or not (t.astype(float) > 0).any())


def population_text(code: str, n: int, extra: str = "") -> str:
    """'Population: infused (safety / modified ITT), N = 57.'"""

    return f"Population: {T.lower_first(POPULATIONS[code].label)}, N = {n}{extra}."


def _title(endpoint: str, settings: ReportSettings) -> str:
    return endpoint_title(endpoint, settings)


# ------------------------------------------------------------------------------ tables
def baseline_section(ctx: BuildContext) -> SectionOutput:
    """Table 1, not split by an event after infusion."""
    settings = ctx.settings
    ctx.say("tables: baseline, response, survival, adverse events")
    t1_group = settings.group if settings.group not in T.POST_INFUSION else None
    t1_note = (
        f" Not split by {T.lower_first(T.label(settings.group))}: a baseline table is not "
        "split by an event after infusion."
        if settings.group in T.POST_INFUSION
        else ""
    )
    stat = T.STAT_TEXT[settings.continuous]
    return SectionOutput(
        tables=[
            TableItem(
                "table1_baseline",
                "Baseline characteristics",
                T.table1(ctx.patients, settings, t1_group),
                "baseline",
                f"Continuous: {stat}; categorical: n (%) of the column's patients; missing values "
                "are counted on their own line where present; values recorded as below a limit "
                "(e.g. <5) are ordered below it." + t1_note,
                population=ctx.saf_text,
                group_col="Characteristic",
                level_col="Level",
            )
        ]
    )


def risk_section(ctx: BuildContext) -> SectionOutput:
    """CAR-HEMATOTOX and EASIX before infusion, or why they are not shown."""
    risk_hx, risk_ex, risk_rule = T.risk_scores(ctx.cohort)
    ctx.risk_ex = risk_ex
    risk_tab, risk_note, risk_why = T.risk_score_table(
        ctx.cohort, ctx.patients, (risk_hx, risk_ex, risk_rule)
    )
    if risk_tab is None:
        return SectionOutput(section_notes=[("risk", risk_why)])
    return SectionOutput(
        tables=[
            TableItem(
                "risk_scores",
                "Pre-infusion risk scores (CAR-HEMATOTOX, EASIX)",
                risk_tab,
                "risk",
                risk_note,
                population=ctx.saf_text,
                group_col="Characteristic",
                level_col="Level",
            )
        ]
    )


def response_section(ctx: BuildContext) -> SectionOutput:
    """Response rates (and extramedullary response) and the best-response listing."""
    settings = ctx.settings
    resp = T.response_table(ctx.cohort, settings)
    emd = T.emd_response_table(ctx.cohort, ctx.patients, settings)
    if emd is not None:
        resp = pd.concat([resp, emd], ignore_index=True)
    w0, w1 = settings.response_window
    window = f"days {T._sig(w0)}–{T._sig(w1)} after infusion"
    return SectionOutput(
        tables=[
            TableItem(
                "response",
                f"Response: best response on {window}",
                resp,
                "efficacy",
                f"{100 * settings.conf_level:g}% CI by the {settings.proportion_ci} method; "
                "patients not assessed count in the denominator as non-responders. "
                + (
                    "Extramedullary response: best non-marrow assessment (e.g. PET-CT) at any time "
                    "among patients with baseline extramedullary disease and such an assessment."
                    if emd is not None
                    else ""
                ),
                population=ctx.saf_text,
            ),
            TableItem(
                "best_response",
                f"Best response on {window}",
                T.best_response_table(ctx.patients),
                "efficacy",
                population=ctx.saf_text,
            ),
        ]
    )


def survival_table_section(ctx: BuildContext) -> SectionOutput:
    """Time-to-event summaries and follow-up (when there is follow-up)."""
    out = SectionOutput()
    if not ctx.followed:
        return out
    settings, endpoints = ctx.settings, ctx.endpoints
    km_note = (
        f"Kaplan–Meier estimates; {100 * settings.conf_level:g}% CIs with Greenwood "
        f"variance on the {settings.km_conf_type} scale; median CI "
        + ("by R survfit's rule" if settings.km_ci_method == "bands" else "by Brookmeyer–Crowley")
        + " (NR = not reached). CIR/NRM: Aalen–Johansen cumulative "
        "incidence with the competing event, log(−log) CI."
    )
    out.tables.append(
        TableItem(
            "time_to_event",
            "Time-to-event endpoints",
            T.tte_summary(endpoints, settings),
            "survival",
            km_note,
            population=T.tte_population_text(endpoints),
        )
    )
    fu = T.followup_table(endpoints, settings)
    if not fu.empty:
        out.tables.append(
            TableItem(
                "followup",
                "Follow-up",
                fu,
                "survival",
                "Reverse Kaplan–Meier (Schemper & Smith 1996).",
                population=ctx.saf_text,
            )
        )
    return out


def subgroup_table_section(ctx: BuildContext) -> SectionOutput:
    """Survival by subgroup (KM, log-rank) and univariable Cox hazard ratios."""
    settings, endpoints, patients = ctx.settings, ctx.endpoints, ctx.patients
    out = SectionOutput()
    ctx.subgroups = T.resolve_subgroups(patients, settings) if ctx.followed else []
    ctx.within = T.subgroup_within(patients, ctx.pops)
    ctx.sub_tab = (
        T.subgroup_table(endpoints, patients, ctx.subgroups, settings, ctx.within)
        if ctx.subgroups and not endpoints.empty
        else pd.DataFrame()
    )
    if not ctx.sub_tab.empty:
        out.tables.append(
            TableItem(
                "subgroups",
                "Survival by subgroup",
                ctx.sub_tab,
                "subgroups",
                f"Kaplan–Meier ({settings.km_conf_type} CI); log-rank test over the levels shown. "
                "Consolidation SCT is compared among CR/CRi patients from infusion: a naive "
                "comparison with immortal-time bias (see the comparisons by an event after "
                "infusion).",
                population=f"{ctx.saf_text[:-1]}; consolidation SCT: patients in "
                f"CR/CRi, N = {ctx.n_cr}.",
            )
        )
    forest_subs = T.forest_subgroups(patients) if ctx.followed else []
    forest_cont = T.continuous_risk_covariates(ctx.risk_ex, patients) if ctx.followed else {}
    forest_rows = []
    for ep in [e for e in settings.forest_endpoints if e in set(endpoints["endpoint"])]:
        d_ep = endpoints[endpoints["endpoint"] == ep]
        if forest_subs:
            forest_rows.append(T.cox_subgroup_table(d_ep, patients, forest_subs, settings, ep))
        for title, values in forest_cont.items():
            forest_rows.append(
                T.cox_continuous_table(d_ep, values, title, "per doubling", settings, ep)
            )
    ctx.cox_tab = pd.concat(forest_rows, ignore_index=True) if forest_rows else pd.DataFrame()
    if not ctx.cox_tab.empty:
        out.tables.append(
            TableItem(
                "hazard_ratios",
                "Hazard ratios by baseline subgroup (univariable Cox)",
                ctx.cox_tab,
                "subgroups",
                f"Cox proportional hazards, one model per subgroup variable (Efron "
                f"ties); HR against the reference level with {100 * settings.conf_level:g}% Wald CI "
                "and Wald p. NE: not estimable (a level without events gives an unbounded "
                "likelihood)."
                + (
                    " EASIX/m-EASIX (pre-infusion): HR per doubling (log2 value, "
                    "as Pennisi 2021 analysed it), patients with the value only."
                    if forest_cont
                    else ""
                ),
                population=ctx.saf_text,
                hide=("hr", "lower", "upper"),
            )
        )
    return out


def safety_section(ctx: BuildContext) -> SectionOutput:
    """Adverse events by worst grade and time window (recorded CRS/ICANS episodes, filled
    by episodes re-graded from daily bedside observations when the settings ask)."""

    cohort, settings, patients, say = ctx.cohort, ctx.settings, ctx.patients, ctx.say
    ae_notes = ctx.ae_notes
    edge = settings.ae_window_days
    endpoints = ctx.endpoints
    os_rows = endpoints[endpoints["endpoint"] == "OS"].set_index("patient_id")["time_days"]
    if cohort.layout == "tables":
        episodes = T.cohort_episodes(cohort)
        episodes = episodes[episodes["patient_id"].isin(patients["patient_id"])]
        if settings.derive_bedside_aes:
            try:
                derived, why = bedside_episodes(cohort)
            except ValueError as exc:  # grading refuses the observations: say so, go on
                derived = None
                why = f"CRS/ICANS were not re-graded from the daily bedside observations: {exc}"
                say(f"warning: {why}")
            if why:
                ae_notes.append(why)
            episodes, notes = merge_derived(episodes, derived)
            ae_notes += notes
        recorded_derived = episodes["derived"].astype(bool)
        if recorded_derived.any():
            terms = sorted(episodes.loc[recorded_derived, "term"].unique())
            ae_notes.append(
                "Episodes flagged derived in the adverse_events table: " + ", ".join(terms)
            )
        last = last_known_alive(cohort)["day"]
        under = last.reindex(patients["patient_id"]) >= edge
        grades_known = True
    else:
        episodes, notes = T.wide_episodes(patients)
        ae_notes += ["Wide table: " + n for n in notes]
        under = os_rows.reindex(patients["patient_id"]) >= edge
        grades_known = False
    under.index = patients["patient_id"].to_numpy()
    out = SectionOutput()
    if not episodes.empty:
        n_late = int(under.fillna(False).sum())
        out.tables.append(
            TableItem(
                "adverse_events",
                "Adverse events by worst grade and time window",
                T.ae_table(
                    episodes, patients, under.fillna(False), settings, settings.group, grades_known
                ),
                "safety",
                f"Patients counted once per term at the worst grade in each window; n (%) of N. "
                f"< {T._sig(edge)} d: onset before day {T._sig(edge)}; ≥ {T._sig(edge)} d: onset "
                f"on or after day {T._sig(edge)}, N = patients alive and followed at least "
                f"{T._sig(edge)} days ({n_late}). CRS and ICANS first, then by frequency. "
                + ("Wide table: only grade ≥ 3 events are recorded. " if not grades_known else "")
                + " ".join(ae_notes),
                population=ctx.saf_text,
            )
        )
    return out


# ------------------------------------------------------------------------------ figures
def flow_section(ctx: BuildContext) -> SectionOutput:
    """The patient flow (figure) and the analysis populations (table)."""
    ctx.say("figures: patient flow, Kaplan–Meier curves, forest plot, swimmer plot")
    course = course_frame(ctx.cohort, ctx.patients, ctx.endpoints)
    ctx.course = course
    ctx.flow = flow = patient_flow(ctx.cohort, course, ctx.settings, ctx.pops)
    return SectionOutput(
        figures=[("flow", F.flow_figure(flow))],
        tables=[
            TableItem(
                "populations",
                "Analysis populations",
                T.population_table(flow["populations"]),
                "flow",
                "Each population with the number excluded from the one above it and why "
                "(cartrial.endpoints.populations).",
                population=population_text("ITT", flow["enrolled"]),
            )
        ],
    )


def survival_figure_section(ctx: BuildContext) -> SectionOutput:
    """Kaplan–Meier and cumulative-incidence curves, subgroup curves, forest plots and the
    swimmer plot (when there is follow-up)."""
    out = SectionOutput()
    if not ctx.followed:
        return out
    _survival_figures(
        out,
        ctx.endpoints,
        ctx.patients,
        ctx.subgroups,
        ctx.within,
        ctx.sub_tab,
        ctx.cox_tab,
        ctx.settings,
    )
    lanes, markers = swimmer_inputs(ctx.course)
    out.figures += [("course", d) for d in F.swimmer_figures(lanes, markers, ctx.settings)]
    return out


def postinfusion_section(ctx: BuildContext) -> SectionOutput:
    """PFS by consolidation SCT among CR/CRi patients: naive, landmark, time-dependent Cox,
    Mantel–Byar and Simon–Makuch (``cartrial.report.postinfusion``)."""
    if not ctx.followed:
        return SectionOutput()

    ctx.say("comparisons by consolidation SCT (landmark, time-dependent)")
    tables, figs, notes = postinfusion.section(
        ctx.cohort, ctx.endpoints, ctx.patients, ctx.pops, ctx.settings
    )
    return SectionOutput(
        tables=tables,
        figures=[("postinfusion", f) for f in figs],
        section_notes=[("postinfusion", n) for n in notes],
    )


def kinetics_report_section(ctx: BuildContext) -> SectionOutput:
    """CAR-T kinetics and immune reconstitution (``kinetics_part``); a failure becomes a
    note, not a failed report."""
    ctx.say("kinetics section")
    try:
        out = kinetics_part(ctx.cohort, ctx.settings)
    except Exception as exc:  # a failing optional section must not sink the whole report
        ctx.say(f"warning: kinetics section skipped ({exc})")
        return SectionOutput(
            notes=[f"The kinetics section could not be built: {type(exc).__name__}: {exc}"]
        )
    for t in out.tables:
        t.population = t.population or ctx.saf_text
    return out


def design_report_section(ctx: BuildContext) -> SectionOutput:
    """The "Trial design and safety monitoring" section when ``design`` is set, with its
    methods paragraph; a failure becomes a note."""
    settings, say = ctx.settings, ctx.say
    if not settings.design:
        return SectionOutput()

    say("trial design section: decision table, simulated operating characteristics")
    try:
        tables, figs, notes, methods = design_section(ctx.cohort, settings.design, ctx.saf_text)
    except Exception as exc:  # a failing optional section must not sink the whole report
        why = f"The trial design section could not be built: {type(exc).__name__}: {exc}"
        say(f"warning: trial design section skipped ({exc})")
        return SectionOutput(section_notes=[("design", why)], notes=[why])
    return SectionOutput(
        tables=tables,
        figures=[("design", f) for f in figs],
        section_notes=[("design", n) for n in notes],
        methods=[methods] if methods else [],
    )


#: the builders in print order (tables and figures keep this order in every rendering)
SECTION_BUILDERS: tuple[SectionBuilder, ...] = (
    baseline_section,
    risk_section,
    response_section,
    survival_table_section,
    subgroup_table_section,
    safety_section,
    flow_section,
    survival_figure_section,
    postinfusion_section,
    kinetics_report_section,
    design_report_section,
)


# ------------------------------------------------------------------------------ helpers
def bedside_episodes(cohort: Cohort) -> tuple[pd.DataFrame | None, str]:
    """CRS/ICANS episodes derived from daily bedside observations (``cartrial.grading``,
    ASTCT 2019, Lee et al. BBMT 2019;25:625).

    Returns (episodes in ``cohort_episodes`` shape, note on agreement with the recorded
    episodes); (None, "") when there are no bedside observations.
    """
    bedside = {
        "temperature",
        "vasopressors",
        "oxygen",
        "o2_flow",
        "ice_score",
        "capd_score",
        "consciousness",
    }
    obs = cohort.observations
    if obs.empty or not obs["analyte"].isin(list(bedside)).any():
        return None, ""

    daily = grade_daily(obs, terms=("CRS", "ICANS"), patients=cohort.patients)
    derived = derive_episodes(daily)
    if derived is None or len(derived) == 0:
        return None, "no CRS/ICANS episodes derived from the daily bedside observations"
    d = pd.DataFrame(
        {
            "patient_id": derived["patient_id"].astype(str),
            "term": derived["term"].astype(str),
            "onset_day": derived["onset_day"].astype(float),
            "grade": pd.array(derived["grade"], dtype="Int64"),
        }
    )
    d["grade_ge3"] = (d["grade"].fillna(0) >= 3).astype(bool)
    d["derived"] = True
    ae = cohort.adverse_events
    recorded = ae[ae["term"].isin(["CRS", "ICANS"])]
    diffs = [
        x
        for x in compare_episodes(recorded, derived, daily)
        if x["kind"] in ("grade_differs", "derived_only")
    ]
    pairs = d[["patient_id", "term"]].drop_duplicates()
    note = (
        f"CRS and ICANS re-graded from daily bedside observations by ASTCT 2019 "
        f"(cartrial.grading): {len(pairs)} patient-term episodes derived; "
        f"{len(diffs)} disagree with or are missing from the recorded episodes"
        + (
            ": " + "; ".join(f"{x['patient_id']} {x['term']} ({x['note']})" for x in diffs[:10])
            if diffs
            else ""
        )
        + "."
    )
    return d, note


def merge_derived(
    recorded: pd.DataFrame, derived: pd.DataFrame | None
) -> tuple[pd.DataFrame, list[str]]:
    """Recorded episodes win; derived ones fill (patient, term) pairs with no record."""
    if derived is None or derived.empty:
        return recorded, []
    have = set(zip(recorded["patient_id"], recorded["term"], strict=True))
    keep = [(p, t) not in have for p, t in zip(derived["patient_id"], derived["term"], strict=True)]
    added = derived[keep]
    notes = [
        f"{term}: {sub['patient_id'].nunique()} patient(s) counted from derived episodes "
        "(no recorded episode of that term)"
        for term, sub in added.groupby("term")
    ]
    if not notes:
        notes.append(
            "The table counts the recorded CRS/ICANS episodes (every derived episode "
            "has a recorded one)."
        )
    return pd.concat([recorded, added], ignore_index=True), notes


def _survival_figures(
    out: SectionOutput,
    endpoints: pd.DataFrame,
    patients: pd.DataFrame,
    subgroups: list[str],
    within: dict[str, pd.Index],
    sub_tab: pd.DataFrame,
    cox_tab: pd.DataFrame,
    settings: ReportSettings,
) -> None:
    """KM curves per endpoint, CIR/NRM, subgroup curves and forest plots into ``out``."""
    present = set(endpoints["endpoint"])
    for ep in [e for e in settings.endpoints if e in present and e not in ("CIR", "NRM")]:
        d = endpoints[endpoints["endpoint"] == ep]
        drawn = F.km_figure(
            [("All patients", d["time_days"].to_numpy(), d["event"].to_numpy())],
            settings,
            f"km_{ep.lower()}",
            _title(ep, settings),
            _title(ep, settings).split(" (")[0],
            endpoint=ep,
        )
        drawn.caption = f"{T.tte_population_text(d)} {drawn.caption}"
        out.figures.append(("survival", drawn))
    comp = endpoints[endpoints["endpoint"] == "CIR"]
    if not comp.empty and comp["cause"].notna().all() and (comp["cause"] > 0).any():
        drawn = F.cif_figure(
            comp["time_days"].to_numpy(), comp["cause"].to_numpy(dtype=int), settings
        )
        drawn.caption = f"{T.tte_population_text(comp)} {drawn.caption}"
        out.figures.append(("survival", drawn))
        if "sct_consolidation" in within:
            c2 = comp[comp["patient_id"].astype(str).isin(within["sct_consolidation"])]
            grp = (
                patients.assign(patient_id=patients["patient_id"].astype(str))
                .set_index("patient_id")["sct_consolidation"]
                .reindex(c2["patient_id"].astype(str))
            )
            ok = grp.notna().to_numpy()
            if ok.sum() and grp[ok].nunique() == 2 and (c2["cause"].to_numpy()[ok] == 1).any():
                drawn = F.cif_figure(
                    c2["time_days"].to_numpy()[ok],
                    c2["cause"].to_numpy(dtype=int)[ok],
                    settings,
                    name="cif_relapse_by_sct_consolidation",
                    groups=grp.to_numpy(dtype=object)[ok],
                    group_title="Consolidation SCT",
                )
                drawn.caption = (
                    f"Population: patients in CR/CRi, N = {int(ok.sum())}. Naive "
                    "comparison from infusion (immortal-time bias). " + drawn.caption
                )
                out.figures.append(("postinfusion", drawn))
    for ep in [e for e in settings.subgroup_figure_endpoints if e in present]:
        d_all = endpoints[endpoints["endpoint"] == ep].set_index("patient_id")
        for col in subgroups:
            d = d_all
            if col in within:
                d = d_all[d_all.index.astype(str).isin(within[col])]
            values = T.category_values(patients.set_index("patient_id")[col]).reindex(d.index)
            levels = T._level_order(values)
            curves = [
                (
                    L.value_label(level),
                    d["time_days"][(values == level).to_numpy()].to_numpy(),
                    d["event"][(values == level).to_numpy()].to_numpy(),
                )
                for level in levels
            ]
            p = _subgroup_p(sub_tab, ep, T.subgroup_title(col))
            title = f"{_title(ep, settings)} by {T.lower_first(T.label(col))}"
            section = "subgroups"
            if col in within:
                title += " (CR/CRi patients; naive, from infusion)"
                section = "postinfusion"
            drawn = F.km_figure(
                curves,
                settings,
                f"km_{ep.lower()}_by_{col}",
                title,
                _title(ep, settings).split(" (")[0],
                p,
                endpoint=ep,
                colours=F.level_colours(levels),
            )
            drawn.caption = (
                f"Population: {'patients in CR/CRi' if col in within else 'infused'}"
                f", N = {int(values.notna().sum())} with a known value. " + drawn.caption
            )
            out.figures.append((section, drawn))
    if not cox_tab.empty:
        for ep in pd.unique(cox_tab["Endpoint"]):
            drawn = F.forest_figure(
                cox_tab[cox_tab["Endpoint"] == ep],
                settings,
                f"forest_{str(ep).lower()}",
                f"{_title(str(ep), settings)}: hazard ratios by subgroup",
            )
            drawn.caption = f"Population: infused, N = {len(patients)}. {drawn.caption}"
            out.figures.append(("subgroups", drawn))


def _subgroup_p(sub_tab: pd.DataFrame, ep: str, sub_label: str) -> float | None:
    if sub_tab.empty:
        return None
    rows = sub_tab[
        (sub_tab["Endpoint"] == ep)
        & (sub_tab["Subgroup"] == sub_label)
        & (sub_tab["Log-rank p"] != "")
    ]
    if rows.empty:
        return None
    text = rows["Log-rank p"].iloc[0]
    if text == "NE":
        return None
    return 0.0009 if text.startswith("<") else float(text)
