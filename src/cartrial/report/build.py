"""Build the trial report in memory (``build_report``) and write it (``write_report``).

``build_report`` computes every table and figure from one ``Cohort`` and the settings;
``write_report`` writes index.html, report.pdf, tables/*.csv, figures/*.svg|png and
settings.yaml into a temporary folder beside OUTDIR and moves it into place at the end,
so a failure leaves nothing half-written.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from cartrial._folders import swap_into_place
from cartrial.report import tables as T
from cartrial.report.figures import Drawn
from cartrial.report.settings import ReportSettings, SettingsError

if TYPE_CHECKING:  # pragma: no cover
    from cartrial.cohort import Cohort

Progress = Callable[[str], None]
SECTIONS = (
    ("flow", "Patient flow"),
    ("baseline", "Baseline characteristics"),
    ("efficacy", "Efficacy: response"),
    ("survival", "Efficacy: time-to-event endpoints"),
    ("subgroups", "Subgroup comparisons"),
    ("safety", "Adverse events"),
    ("course", "Individual courses"),
    ("kinetics", "CAR-T kinetics and immune reconstitution"),
)
ENDPOINT_TITLES = {
    "OS": "Overall survival", "PFS": "Progression-free survival",
    "EFS": "Event-free survival", "DFS": "Disease-free survival (patients in CR/CRi)",
    "DOR": "Duration of response (responders)", "CIR": "Cumulative incidence of relapse",
    "NRM": "Non-relapse mortality",
}


@dataclass
class TableItem:
    name: str
    title: str
    df: pd.DataFrame
    section: str
    footnote: str = ""


@dataclass
class Report:
    """Everything the report shows, before it is written."""

    settings: ReportSettings
    tables: list[TableItem] = field(default_factory=list)
    figures: list[tuple[str, Drawn]] = field(default_factory=list)  # (section, figure)
    methods: list[str] = field(default_factory=list)
    provenance: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    synthetic: bool = False
    endpoints: pd.DataFrame | None = None
    patients: pd.DataFrame | None = None

    def table(self, name: str) -> pd.DataFrame:
        return next(t.df for t in self.tables if t.name == name)

    def figure(self, name: str) -> Drawn:
        return next(f for _, f in self.figures if f.name == name)


def _noop(_msg: str) -> None:
    return None


# ------------------------------------------------------------------------------ course
def course_frame(cohort: Cohort, patients: pd.DataFrame, endpoints: pd.DataFrame
                 ) -> pd.DataFrame:
    """One row per analysed patient: response, SCT, relapse, death and follow-up days.

    Follow-up end is the OS time (death or last known alive). ``ongoing`` = alive and not
    lost to follow-up / withdrawn (the swimmer plot's arrow).
    """
    ids = pd.Index(patients["patient_id"].astype(str), name="patient_id")
    ev = cohort.events
    ev = ev[ev["patient_id"].isin(ids)]

    def first(kinds: list[str]) -> pd.DataFrame:
        sub = ev[ev["event"].isin(kinds) & ev["day"].notna()].sort_values(["day", "source_row"])
        return sub.drop_duplicates("patient_id").set_index("patient_id")

    out = pd.DataFrame(index=ids)
    out["best_response"] = patients.set_index("patient_id")["best_response"].reindex(ids)
    resp = ev[(ev["event"] == "response") & ev["response"].notna()]
    best_day = (resp.assign(match=resp["response"].to_numpy()
                            == out["best_response"].reindex(resp["patient_id"]).to_numpy())
                .query("match").sort_values("day").drop_duplicates("patient_id")
                .set_index("patient_id")["day"])
    out["response_day"] = best_day.reindex(ids)
    sct = first(["sct"])
    out["sct_day"] = sct["day"].reindex(ids)
    if "sct_consolidation" in patients.columns:
        out["sct"] = patients.set_index("patient_id")["sct_consolidation"].reindex(ids)
    else:
        out["sct"] = np.nan
    rel = first(["relapse", "progression"])
    out["relapse_day"] = rel["day"].reindex(ids)
    out["relapse_cd7"] = rel["cd7_status"].reindex(ids).astype(object)
    death = first(["death"])
    out["death_day"] = death["day"].reindex(ids)
    out["death_cause"] = death["cause"].reindex(ids).astype(object)
    os_rows = endpoints[endpoints["endpoint"] == "OS"].set_index("patient_id")
    out["end_day"] = os_rows["time_days"].reindex(ids)
    lost = set(ev.loc[ev["event"].isin(["lost_to_followup", "withdrawal"]), "patient_id"])
    out["lost"] = out.index.isin(lost)
    out["dead"] = out["death_day"].notna()
    out["ongoing"] = ~out["dead"] & ~out["lost"]
    out["relapse_data"] = cohort.layout == "tables"
    return out.reset_index()


def patient_flow(cohort: Cohort, course: pd.DataFrame, settings: ReportSettings
                 ) -> dict[str, Any]:
    """Counts for the CONSORT-style flow, derived from the data."""
    from cartrial.cohort.vocab import COMPLETE_RESPONSES, OBJECTIVE_RESPONSES

    p = cohort.patients
    enrolled = int(p["enrolled"].fillna(True).astype(bool).sum()) if "enrolled" in p else len(p)
    infused = len(course)
    best = course["best_response"]
    complete = best.isin(list(COMPLETE_RESPONSES))
    responder = best.isin(list(OBJECTIVE_RESPONSES))
    w0, w1 = settings.response_window
    flow: dict[str, Any] = {
        "enrolled": enrolled, "infused": infused, "not_infused": enrolled - infused,
        "window": f"{T._sig(w0)}–{T._sig(w1)}",
        "response": {"complete": int(complete.sum()),
                     "partial": int((responder & ~complete).sum()),
                     "none": int((best.notna() & ~responder).sum()),
                     "not_assessed": int(best.isna().sum())},
    }
    sct_yes = course["sct"].astype(object).eq("yes").to_numpy()
    relapse_known = bool(course["relapse_data"].all()) if len(course) else False
    branches = []
    for lab, mask in (("Responders, consolidation SCT", responder.to_numpy() & sct_yes),
                      ("Responders, no SCT", responder.to_numpy() & ~sct_yes),
                      ("No response / not assessed", ~responder.to_numpy())):
        sub = course[mask]
        dead = sub["dead"].to_numpy(dtype=bool)
        if relapse_known:
            relapsed = sub["relapse_day"].notna().to_numpy()
            outcome = {"died": int(dead.sum()),
                       "alive after relapse": int((~dead & relapsed).sum()),
                       "alive without relapse": int((~dead & ~relapsed).sum())}
        else:
            outcome = {"died": int(dead.sum()), "alive": int((~dead).sum())}
        branches.append({"label": lab, "n": int(mask.sum()), "outcome": outcome})
    flow["branches"] = branches
    return flow


def swimmer_inputs(course: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Lanes and markers for ``figures.swimmer_figure`` from the course frame."""
    from cartrial.cohort.vocab import COMPLETE_RESPONSES, OBJECTIVE_RESPONSES

    sct = course["sct"].astype(object)
    if sct.isna().all():
        group = pd.Series("All patients", index=course.index)
    else:
        group = sct.map({"yes": "Consolidation SCT", "no": "No SCT"}).fillna("SCT unknown")
    lanes = pd.DataFrame({"patient_id": course["patient_id"], "group": group,
                          "end_days": course["end_day"].fillna(0.0),
                          "ongoing": course["ongoing"], "lost": course["lost"]})
    best = course["best_response"].astype(object)
    kind = np.where(best.isin(list(COMPLETE_RESPONSES)), "CR/CRi",
                    np.where(best.isin(list(OBJECTIVE_RESPONSES)), "PR", "NR"))
    parts = [pd.DataFrame({"patient_id": course["patient_id"], "kind": kind,
                           "day": course["response_day"]})[best.notna().to_numpy()
                                                           & course["response_day"].notna()]]
    parts.append(pd.DataFrame({"patient_id": course["patient_id"], "kind": "SCT",
                               "day": course["sct_day"]}).dropna(subset=["day"]))
    cd7 = course["relapse_cd7"].astype(object)
    rkind = np.where(cd7 == "negative", "relapse CD7−",
                     np.where(cd7.isin(["positive", "dim"]), "relapse CD7+", "relapse CD7 unknown"))
    parts.append(pd.DataFrame({"patient_id": course["patient_id"], "kind": rkind,
                               "day": course["relapse_day"]}).dropna(subset=["day"]))
    parts.append(pd.DataFrame({"patient_id": course["patient_id"], "kind": "death",
                               "day": course["death_day"]}).dropna(subset=["day"]))
    markers = pd.concat(parts, ignore_index=True)
    return lanes, markers


# ------------------------------------------------------------------------------ optional layers
def bedside_episodes(cohort: Cohort) -> tuple[pd.DataFrame | None, str]:
    """CRS/ICANS episodes derived from daily bedside observations (``cartrial.grading``,
    ASTCT 2019, Lee et al. BBMT 2019;25:625).

    Returns (episodes in ``cohort_episodes`` shape, note on agreement with the recorded
    episodes); (None, reason) when the grading layer or the observations are not there.
    """
    bedside = {"temperature", "vasopressors", "oxygen", "o2_flow", "ice_score", "capd_score",
               "consciousness"}
    obs = cohort.observations
    if obs.empty or not obs["analyte"].isin(list(bedside)).any():
        return None, ""
    try:
        from cartrial.grading.episodes import compare_episodes, derive_episodes, grade_daily
    except ImportError:
        return None, ("daily bedside observations present, but the grading layer "
                      "(cartrial.grading.episodes) is not installed: no episodes derived")
    daily = grade_daily(obs, terms=("CRS", "ICANS"), patients=cohort.patients)
    derived = derive_episodes(daily)
    if derived is None or len(derived) == 0:
        return None, "no CRS/ICANS episodes derived from the daily bedside observations"
    d = pd.DataFrame({
        "patient_id": derived["patient_id"].astype(str),
        "term": derived["term"].astype(str),
        "onset_day": derived["onset_day"].astype(float),
        "grade": pd.array(derived["grade"], dtype="Int64"),
    })
    d["grade_ge3"] = (d["grade"].fillna(0) >= 3).astype(bool)
    d["derived"] = True
    ae = cohort.adverse_events
    recorded = ae[ae["term"].isin(["CRS", "ICANS"])]
    diffs = [x for x in compare_episodes(recorded, derived, daily)
             if x["kind"] in ("grade_differs", "derived_only")]
    pairs = d[["patient_id", "term"]].drop_duplicates()
    note = (f"CRS and ICANS re-graded from daily bedside observations by ASTCT 2019 "
            f"(cartrial.grading): {len(pairs)} patient-term episodes derived; "
            f"{len(diffs)} disagree with or are missing from the recorded episodes"
            + (": " + "; ".join(f"{x['patient_id']} {x['term']} ({x['note']})"
                                for x in diffs[:10]) if diffs else "") + ".")
    return d, note


def merge_derived(recorded: pd.DataFrame, derived: pd.DataFrame | None
                  ) -> tuple[pd.DataFrame, list[str]]:
    """Recorded episodes win; derived ones fill (patient, term) pairs with no record."""
    if derived is None or derived.empty:
        return recorded, []
    have = set(zip(recorded["patient_id"], recorded["term"], strict=True))
    keep = [(p, t) not in have for p, t in zip(derived["patient_id"], derived["term"],
                                                strict=True)]
    added = derived[keep]
    notes = [f"{term}: {sub['patient_id'].nunique()} patient(s) counted from derived episodes "
             "(no recorded episode of that term)" for term, sub in added.groupby("term")]
    if not notes:
        notes.append("The table counts the recorded CRS/ICANS episodes (every derived episode "
                     "has a recorded one).")
    return pd.concat([recorded, added], ignore_index=True), notes


def kinetics_part(cohort: Cohort, settings: ReportSettings
                  ) -> tuple[list[TableItem], list[Drawn], list[str]]:
    """Tables and figures of ``cartrial.kinetics.report.kinetics_section`` when present."""
    try:
        from cartrial.kinetics.report import kinetics_section
    except ImportError:
        has = not cohort.observations.empty and cohort.observations["analyte"].isin(
            ["cart_flow", "cart_qpcr"]).any()
        return [], [], (["CAR-T kinetics present, but the kinetics layer "
                         "(cartrial.kinetics.report) is not installed"] if has else [])
    section = kinetics_section(cohort, group=settings.group,
                               fit_model=settings.kinetics_model_fit) or {}
    titles = {"nca_summary": "CAR-T kinetics, non-compartmental analysis: summary",
              "nca_table": "CAR-T kinetics, non-compartmental analysis per patient",
              "persistence": "CAR-T persistence (share still detectable)",
              "model_table": "Multiphasic model (Stein 2019) fits per patient",
              "recovery_incidence": "Immune recovery, cumulative incidence",
              "reconstitution_table": "Immune reconstitution per patient"}
    tables = []
    for key, title in titles.items():
        df = section.get(key)
        if isinstance(df, pd.DataFrame) and not df.empty:
            tables.append(TableItem(f"kinetics_{key.removesuffix('_table')}", title,
                                    df.reset_index(drop=True), "kinetics"))
    figs = []
    for name, fig in (section.get("figures") or {}).items():
        safe = re.sub(r"[^A-Za-z0-9_-]+", "_", str(name))
        figs.append(Drawn(f"kinetics_{safe}", str(name).replace("_", " "), fig))
    notes = [str(n) for n in section.get("notes", [])] if isinstance(section, dict) else []
    return tables, figs, notes


# ------------------------------------------------------------------------------ methods
def endpoint_definitions() -> list[tuple[str, str]]:
    """(name, definition) from the ``- **NAME**: text`` bullets of the endpoints module
    docstring, so the report states exactly the definitions the code implements."""
    from cartrial.endpoints import derive

    items: list[tuple[str, str]] = []
    for line in (derive.__doc__ or "").splitlines():
        m = re.match(r"^- (\*\*.+?\*\*(?: and \*\*.+?\*\*)?):?\s*(.*)$", line.strip())
        if m:
            items.append((m.group(1).replace("**", ""), m.group(2)))
        elif items and line.startswith("  ") and line.strip():
            items[-1] = (items[-1][0], f"{items[-1][1]} {line.strip()}")
        elif items and not line.strip():
            break
    return [(n, re.sub(r"\*\*(.+?)\*\*", r"\1", t).replace("``", "").lstrip(": "))
            for n, t in items]


def methods_text(settings: ReportSettings, layout: str, ae_notes: list[str]) -> list[str]:
    ci = f"{100 * settings.conf_level:g}%"
    w0, w1 = settings.response_window
    opts = []
    if settings.censor_at_sct:
        opts.append("PFS, EFS, DFS, DOR, CIR and NRM censored at consolidation SCT (sensitivity "
                    "analysis, ELN 2022)")
    if settings.censor_at_new_therapy:
        opts.append("censored at new therapy")
    if not settings.efs_nonresponse_event:
        opts.append("EFS does not count non-response as an event")
    paras = [
        "Time origin is the CAR-T infusion (day 0); months are days / 30.4375. Only infused "
        "patients are analysed.",
        f"Response is the best response assessed on days {T._sig(w0)}–{T._sig(w1)} after "
        "infusion (NCCN ALL / ELN 2022 categories). ORR = CR + CRi + CRh + MLFS + PR (and "
        "objective responses not further specified); CR/CRi rate = CR + CRi + CRh; MRD-negative "
        "= flow MRD below 10⁻⁴. Denominator: every analysed patient (not assessed counts as "
        f"non-response). {ci} confidence intervals by the {settings.proportion_ci} method.",
        "Time-to-event endpoints: Kaplan–Meier estimates with Greenwood variance and "
        f"{ci} pointwise confidence intervals on the {settings.km_conf_type} scale; medians "
        "with Brookmeyer–Crowley intervals (NR = not reached); median follow-up by the "
        "reverse Kaplan–Meier method (Schemper & Smith 1996); groups compared by the "
        "log-rank test. Relapse and non-relapse mortality as competing risks by the "
        "Aalen–Johansen estimator with log(−log) intervals. Landmarks at "
        + ", ".join(T._sig(t) for t in settings.landmarks_months) + " months.",
        "Adverse events are counted once per patient and term at the maximum grade, in "
        f"windows: any time; short-term (onset before day {T._sig(settings.ae_window_days)}); "
        f"long-term (onset on or after day {T._sig(settings.ae_window_days)}) among patients "
        f"still under observation on day {T._sig(settings.ae_window_days)} (alive and "
        "followed at least that long), whose number is the stated denominator.",
        "Subgroups defined after infusion (e.g. consolidation SCT) are compared from "
        "infusion: such comparisons carry immortal-time bias and are descriptive.",
    ]
    if opts:
        paras.append("Endpoint options: " + "; ".join(opts) + ".")
    if layout == "wide":
        paras.append("The input is a wide per-patient table: only the endpoints it states "
                     "(e.g. OS from follow-up and vital status) are analysed; relapse dates and "
                     "AE grades below 3 are not in such tables.")
    paras += ae_notes
    return paras


# ------------------------------------------------------------------------------ build
def build_report(cohort: Cohort, settings: ReportSettings | None = None,
                 progress: Progress | None = None) -> Report:
    """Compute every table and figure of the report (nothing is written)."""
    from cartrial import __version__
    from cartrial.endpoints import derive_endpoints, last_known_alive
    from cartrial.report import figures as F

    settings = settings or ReportSettings()
    say = progress or _noop
    report = Report(settings=settings)
    patients = T.analysis_patients(cohort, settings)
    for key, col in (("group", settings.group),):
        if col is not None and col not in patients.columns:
            raise SettingsError(f"setting '{key}': found {col!r}; expected a patients column: "
                                + ", ".join(c for c in patients.columns
                                            if c not in ("source_file", "source_row")))
    if settings.subgroups:
        missing = [c for c in settings.subgroups if c not in patients.columns]
        if missing:
            raise SettingsError(f"setting 'subgroups': found {missing}; expected patients "
                                "columns (or derived sct_consolidation, age_group, best_response)")
    report.patients = patients
    report.synthetic = ("synthetic" in patients.columns
                        and T.category_values(patients["synthetic"]).eq("yes").any())

    say("deriving endpoints")
    endpoints = derive_endpoints(cohort, settings.endpoint_options())
    endpoints = endpoints[endpoints["endpoint"].isin(list(settings.endpoints))].reset_index(
        drop=True)
    report.endpoints = endpoints

    say("tables: baseline, response, survival, adverse events")
    report.tables.append(TableItem(
        "table1_baseline", "Table 1. Baseline characteristics", T.table1(patients, settings,
                                                                          settings.group),
        "baseline",
        "Continuous: " + ("median (range)" if settings.continuous == "median_range"
                          else "mean (SD)") + "; categorical: n (%) of the column's patients; "
        "missing values are shown on their own line."))
    resp = T.response_table(cohort, settings)
    emd = T.emd_response_table(cohort, patients, settings)
    if emd is not None:
        resp = pd.concat([resp, emd], ignore_index=True)
    report.tables.append(TableItem(
        "response", "Response at the day 28–30 assessment", resp, "efficacy",
        f"{100 * settings.conf_level:g}% CI by the {settings.proportion_ci} method. "
        + ("Extramedullary response: best non-marrow assessment (e.g. PET-CT) at any time "
           "among patients with baseline extramedullary disease and such an assessment."
           if emd is not None else "")))
    report.tables.append(TableItem("best_response", "Best response distribution",
                                   T.best_response_table(patients), "efficacy"))
    if not endpoints.empty:
        km_note = (f"Kaplan–Meier estimates; {100 * settings.conf_level:g}% CIs with Greenwood "
                   f"variance on the {settings.km_conf_type} scale; median CI by "
                   "Brookmeyer–Crowley (NR = not reached). CIR/NRM: Aalen–Johansen cumulative "
                   "incidence with the competing event, log(−log) CI.")
        report.tables.append(TableItem("time_to_event", "Time-to-event endpoints",
                                       T.tte_summary(endpoints, settings), "survival", km_note))
        fu = T.followup_table(endpoints, settings)
        if not fu.empty:
            report.tables.append(TableItem("followup", "Follow-up", fu, "survival",
                                           "Reverse Kaplan–Meier (Schemper & Smith 1996)."))
    subgroups = T.resolve_subgroups(patients, settings)
    sub_tab = (T.subgroup_table(endpoints, patients, subgroups, settings)
               if subgroups and not endpoints.empty else pd.DataFrame())
    if not sub_tab.empty:
        report.tables.append(TableItem(
            "subgroups", "Survival by subgroup", sub_tab, "subgroups",
            f"Kaplan–Meier ({settings.km_conf_type} CI); log-rank test over the levels shown. "
            "Subgroups defined after infusion (consolidation SCT) carry immortal-time bias."))

    # adverse events
    ae_notes: list[str] = []
    edge = settings.ae_window_days
    os_rows = endpoints[endpoints["endpoint"] == "OS"].set_index("patient_id")["time_days"]
    if cohort.layout == "tables":
        episodes = T.cohort_episodes(cohort)
        episodes = episodes[episodes["patient_id"].isin(patients["patient_id"])]
        if settings.derive_bedside_aes:
            derived, why = bedside_episodes(cohort)
            if why:
                ae_notes.append(why)
            episodes, notes = merge_derived(episodes, derived)
            ae_notes += notes
        recorded_derived = episodes["derived"].astype(bool)
        if recorded_derived.any():
            terms = sorted(episodes.loc[recorded_derived, "term"].unique())
            ae_notes.append("Episodes flagged derived in the adverse_events table: "
                            + ", ".join(terms))
        last = last_known_alive(cohort)["day"]
        under = (last.reindex(patients["patient_id"]) >= edge)
        grades_known = True
    else:
        episodes, notes = T.wide_episodes(patients)
        ae_notes += ["Wide table: " + n for n in notes]
        under = os_rows.reindex(patients["patient_id"]) >= edge
        grades_known = False
    under.index = patients["patient_id"].to_numpy()
    if not episodes.empty:
        report.tables.append(TableItem(
            "adverse_events", "Adverse events by maximum grade and time window",
            T.ae_table(episodes, patients, under.fillna(False), settings, settings.group,
                       grades_known), "safety",
            f"Patients counted once per term at their maximum grade. Short-term: onset before "
            f"day {T._sig(edge)}; long-term: onset on or after day {T._sig(edge)}, denominator "
            f"N = patients alive and followed at least {T._sig(edge)} days. "
            + " ".join(ae_notes)))

    say("figures: patient flow, Kaplan–Meier curves, swimmer plot")
    course = course_frame(cohort, patients, endpoints)
    flow = patient_flow(cohort, course, settings)
    report.figures.append(("flow", F.flow_figure(flow)))
    for ep in [e for e in settings.endpoints if e in set(endpoints["endpoint"])
               and e not in ("CIR", "NRM")]:
        d = endpoints[endpoints["endpoint"] == ep]
        report.figures.append(("survival", F.km_figure(
            [("All patients", d["time_days"].to_numpy(), d["event"].to_numpy())], settings,
            f"km_{ep.lower()}", ENDPOINT_TITLES[ep], ENDPOINT_TITLES[ep].split(" (")[0])))
    comp = endpoints[endpoints["endpoint"] == "CIR"]
    if not comp.empty and comp["cause"].notna().all() and (comp["cause"] > 0).any():
        report.figures.append(("survival", F.cif_figure(comp["time_days"].to_numpy(),
                                                        comp["cause"].to_numpy(dtype=int),
                                                        settings)))
    for ep in [e for e in settings.subgroup_figure_endpoints
               if e in set(endpoints["endpoint"])]:
        d = endpoints[endpoints["endpoint"] == ep].set_index("patient_id")
        for col in subgroups:
            values = T.category_values(patients.set_index("patient_id")[col]).reindex(d.index)
            curves = [(f"{level}", d["time_days"][(values == level).to_numpy()].to_numpy(),
                       d["event"][(values == level).to_numpy()].to_numpy())
                      for level in T._level_order(values)]
            p = _subgroup_p(sub_tab, ep, T.label(col))
            report.figures.append(("subgroups", F.km_figure(
                curves, settings, f"km_{ep.lower()}_by_{col}",
                f"{ENDPOINT_TITLES[ep]} by {T.label(col)}",
                ENDPOINT_TITLES[ep].split(" (")[0], p)))
    lanes, markers = swimmer_inputs(course)
    report.figures.append(("course", F.swimmer_figure(lanes, markers, settings)))

    say("kinetics section")
    try:
        k_tables, k_figs, k_notes = kinetics_part(cohort, settings)
    except Exception as exc:  # a failing optional section must not sink the whole report
        k_tables, k_figs = [], []
        k_notes = [f"The kinetics section could not be built: {type(exc).__name__}: {exc}"]
        say(f"warning: kinetics section skipped ({exc})")
    report.tables += k_tables
    report.figures += [("kinetics", f) for f in k_figs]
    report.notes += k_notes

    report.methods = methods_text(settings, cohort.layout, ae_notes)
    report.provenance = {
        "source": cohort.source,
        "input_sha256": cohort.input_sha256,
        "layout": cohort.layout,
        "cartrial_version": __version__,
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S UTC"),
        "patients": f"{len(cohort.patients)} in the cohort, {len(patients)} analysed (infused)",
        "cohort_notes": list(cohort.notes),
    }
    return report


def _subgroup_p(sub_tab: pd.DataFrame, ep: str, sub_label: str) -> float | None:
    if sub_tab.empty:
        return None
    rows = sub_tab[(sub_tab["Endpoint"] == ep) & (sub_tab["Subgroup"] == sub_label)
                   & (sub_tab["Log-rank p"] != "")]
    if rows.empty:
        return None
    text = rows["Log-rank p"].iloc[0]
    if text == "NE":
        return None
    return 0.0009 if text.startswith("<") else float(text)


# ------------------------------------------------------------------------------ write
def check_target(target: Path, overwrite: bool) -> None:
    """Refuse a non-empty existing OUTDIR unless ``overwrite`` (raises FileExistsError)."""
    if target.exists():
        if not target.is_dir():
            raise FileExistsError(f"{target} exists and is not a folder")
        if any(target.iterdir()) and not overwrite:
            raise FileExistsError(f"{target} exists and is not empty; use --overwrite to "
                                  "replace it")


def write_report(report: Report, outdir: str | os.PathLike[str], overwrite: bool = False,
                 progress: Progress | None = None) -> Path:
    """Write the report folder atomically (temporary folder beside OUTDIR, then moved)."""
    from matplotlib.backends.backend_pdf import PdfPages

    from cartrial.report import figures as F
    from cartrial.report.render import pdf_table_pages, pdf_text_page, render_html

    say = progress or _noop
    target = Path(outdir)
    check_target(target, overwrite)
    target.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
    try:
        (work / "tables").mkdir()
        (work / "figures").mkdir()
        for t in report.tables:
            t.df.to_csv(work / "tables" / f"{t.name}.csv", index=False, lineterminator="\n")
        say(f"writing {len(report.figures)} figures (SVG, PNG) and report.pdf")
        figs = [d for _, d in report.figures]
        # a forked child renders every PNG and the first three quarters of the SVGs; this
        # process writes the other SVGs, the PDF pages (vector) and the HTML (balanced for
        # two cores; embedding the PNGs in the PDF instead measured slower, not faster)
        half = len(figs) - len(figs) // 4
        worker = _start_image_worker(figs, half, work / "figures")
        mine = figs[half:] if worker is not None else figs
        meta = {"Title": report.settings.title, "Creator": "cartrial", "CreationDate": None}
        with PdfPages(work / "report.pdf", metadata=meta) as pdf:
            pdf_text_page(pdf, report)
            for t in report.tables:
                pdf_table_pages(pdf, t)
            for drawn in figs:
                pdf.savefig(drawn.fig)
        for drawn in mine:
            F.save(drawn, work / "figures", formats=("svg",) if worker is not None
                   else ("svg", "png"))
        if worker is not None:
            worker.join()
            if worker.exitcode != 0:  # the child failed: render its part here instead
                for i, drawn in enumerate(figs):
                    F.save(drawn, work / "figures",
                           formats=("svg", "png") if i < half else ("png",))
        (work / "settings.yaml").write_text(report.settings.to_yaml(), encoding="utf-8")
        say("writing index.html")
        (work / "index.html").write_text(render_html(report, work / "figures"), encoding="utf-8")
        swap_into_place(work, target)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    return target


def _image_job(figs: list[Drawn], n_svg: int, folder: Path) -> None:
    from cartrial.report import figures as F

    for i, drawn in enumerate(figs):
        F.save(drawn, folder, formats=("svg", "png") if i < n_svg else ("png",))


def _start_image_worker(figs: list[Drawn], n_svg: int, folder: Path):
    """Render the PNGs (and the first ``n_svg`` SVGs) in a forked child.

    Every figure is drawn three times (SVG, PNG, PDF); on two cores a forked child
    roughly halves the wall time. Only where ``fork`` exists (Linux), with more than one
    CPU and at least 4 figures, and unless CARTRIAL_SERIAL is set; otherwise returns None
    and the caller renders everything itself.
    """
    import multiprocessing as mp
    import sys

    if (len(figs) < 4 or not sys.platform.startswith("linux")
            or "fork" not in mp.get_all_start_methods() or (os.cpu_count() or 1) < 2
            or os.environ.get("CARTRIAL_SERIAL")):
        return None
    proc = mp.get_context("fork").Process(target=_image_job, args=(figs, n_svg, folder),
                                          daemon=True)
    proc.start()
    return proc


def close_figures(report: Report) -> None:
    """Free the figures' memory (matplotlib figures not made by pyplot need no close)."""
    import matplotlib.pyplot as plt

    for _, drawn in report.figures:
        plt.close(drawn.fig)
