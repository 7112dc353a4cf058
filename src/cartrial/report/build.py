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
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from cartrial._folders import swap_into_place
from cartrial.report import figures as F
from cartrial.report import labels as L
from cartrial.report import tables as T
from cartrial.report.document import (
    ENDPOINT_TITLES,
    SECTIONS,
    Report,
    TableItem,
)
from cartrial.report.figures import Drawn
from cartrial.report.settings import ReportSettings, SettingsError

if TYPE_CHECKING:  # pragma: no cover
    from cartrial.cohort import Cohort

Progress = Callable[[str], None]
__all__ = ["ENDPOINT_TITLES", "SECTIONS", "Report", "TableItem", "build_report", "write_report"]


def _noop(_msg: str) -> None:
    return None


# ------------------------------------------------------------------------------ course
#: wide tables' ``status_at_last_followup`` words meaning a relapse/progression happened
RELAPSE_STATUS = {"relapse", "progression", "death_relapse", "relapsed"}


def course_frame(cohort: Cohort, patients: pd.DataFrame, endpoints: pd.DataFrame
                 ) -> pd.DataFrame:
    """One row per analysed patient: response, SCT, relapse, death and follow-up days.

    Follow-up end is the OS time (death or last known alive). ``ongoing`` = alive and not
    lost to follow-up / withdrawn (the swimmer plot's arrow). A wide table's
    ``status_at_last_followup`` ("relapse", "lost_to_followup") counts: such a relapse
    has no day (``relapsed`` true, ``relapse_day`` missing).
    """
    ids = pd.Index(patients["patient_id"].astype(str), name="patient_id")
    ev = cohort.events
    ev = ev[ev["patient_id"].isin(ids)]

    def first(kinds: list[str]) -> pd.DataFrame:
        sub = ev[ev["event"].isin(kinds) & ev["day"].notna()].sort_values(["day", "source_row"])
        return sub.drop_duplicates("patient_id").set_index("patient_id")

    pt = patients.assign(patient_id=patients["patient_id"].astype(str)).set_index("patient_id")
    out = pd.DataFrame(index=ids)
    out["best_response"] = pt["best_response"].reindex(ids)
    resp = ev[(ev["event"] == "response") & ev["response"].notna()]
    best_day = (resp.assign(match=resp["response"].to_numpy()
                            == out["best_response"].reindex(resp["patient_id"]).to_numpy())
                .query("match").sort_values("day").drop_duplicates("patient_id")
                .set_index("patient_id")["day"])
    out["response_day"] = best_day.reindex(ids)
    sct = first(["sct"])
    out["sct_day"] = sct["day"].reindex(ids)
    if "sct_consolidation" in pt.columns:
        out["sct"] = pt["sct_consolidation"].reindex(ids)
    else:
        out["sct"] = np.nan
    rel = first(["relapse", "progression"])
    out["relapse_day"] = rel["day"].reindex(ids)
    out["relapse_cd7"] = (rel["cd7_status"].reindex(ids).astype(object)
                          if "cd7_status" in rel.columns else np.nan)
    status = (pt["status_at_last_followup"].reindex(ids).astype(object)
              .fillna("").astype(str).str.strip().str.lower()
              if "status_at_last_followup" in pt.columns else pd.Series("", index=ids))
    out["relapsed"] = out["relapse_day"].notna() | status.isin(RELAPSE_STATUS)
    nt = first(["new_therapy"])
    out["new_therapy_day"] = nt["day"].reindex(ids)
    death = first(["death"])
    out["death_day"] = death["day"].reindex(ids)
    out["death_cause"] = death["cause"].reindex(ids).astype(object)
    os_rows = endpoints[endpoints["endpoint"] == "OS"].set_index("patient_id")
    out["end_day"] = os_rows["time_days"].reindex(ids)
    lost = set(ev.loc[ev["event"].isin(["lost_to_followup", "withdrawal"]), "patient_id"])
    out["dead"] = out["death_day"].notna()
    out["lost"] = (out.index.isin(lost) | status.eq("lost_to_followup").to_numpy()) & ~out["dead"]
    out["ongoing"] = ~out["dead"] & ~out["lost"]
    out["relapse_data"] = (cohort.layout == "tables"
                           or "status_at_last_followup" in pt.columns)
    return out.reset_index()


def patient_flow(cohort: Cohort, course: pd.DataFrame, settings: ReportSettings,
                 populations: pd.DataFrame | None = None) -> dict[str, Any]:
    """Counts for the CONSORT-style flow: each analysis population with the reasons for
    exclusion (``cartrial.endpoints.populations.population_counts``), the best response
    and the course after it (consolidation SCT, relapse, death, lost to follow-up)."""
    from cartrial.cohort.vocab import COMPLETE_RESPONSES, OBJECTIVE_RESPONSES
    from cartrial.endpoints.populations import population_counts

    counts = population_counts(cohort, settings.response_window)
    pops = [{"code": r.population, "label": r.label, "n": int(r.n),
             "excluded": int(r.excluded), "reasons": str(r.reasons)}
            for r in counts.itertuples(index=False)]
    by = {p["code"]: p for p in pops}
    best = course["best_response"]
    complete = best.isin(list(COMPLETE_RESPONSES))
    responder = best.isin(list(OBJECTIVE_RESPONSES))
    w0, w1 = settings.response_window
    enrolled = by.get("ITT", {}).get("n", len(cohort.patients))
    flow: dict[str, Any] = {
        "populations": pops,
        "enrolled": enrolled, "infused": len(course),
        "not_infused": by["SAF"]["excluded"] if "SAF" in by else enrolled - len(course),
        "window": f"{T._sig(w0)}–{T._sig(w1)}",
        "response": {"complete": int(complete.sum()),
                     "partial": int((responder & ~complete).sum()),
                     "none": int((best.notna() & ~responder).sum()),
                     "not_assessed": int(best.isna().sum())},
    }
    sct_yes = course["sct"].astype(object).eq("yes").to_numpy()
    relapse_known = bool(course["relapse_data"].all()) if len(course) else False
    branches = []
    for lab, mask in (("CR/CRi, consolidation SCT", complete.to_numpy() & sct_yes),
                      ("Response, no consolidation SCT", responder.to_numpy() & ~sct_yes),
                      ("No response / not assessed", ~responder.to_numpy())):
        sub = course[mask]
        dead = sub["dead"].to_numpy(dtype=bool)
        lost = sub["lost"].to_numpy(dtype=bool)
        if relapse_known:
            relapsed = sub["relapsed"].to_numpy(dtype=bool)
            outcome = {"died": int(dead.sum()),
                       "alive after relapse": int((~dead & relapsed & ~lost).sum()),
                       "alive without relapse": int((~dead & ~relapsed & ~lost).sum()),
                       "lost to follow-up": int(lost.sum())}
        else:
            outcome = {"died": int(dead.sum()), "alive": int((~dead & ~lost).sum()),
                       "lost to follow-up": int(lost.sum())}
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
        group = sct.map({"yes": "Consolidation SCT", "no": "No consolidation SCT"}).fillna(
            "SCT unknown")
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
    undated = course["relapsed"].to_numpy(dtype=bool) & course["relapse_day"].isna().to_numpy()
    if undated.any():  # wide tables: relapse before last follow-up, day not reported
        parts.append(pd.DataFrame({"patient_id": course["patient_id"][undated],
                                   "kind": "relapse, day not reported",
                                   "day": course["end_day"][undated]}))
    parts.append(pd.DataFrame({"patient_id": course["patient_id"], "kind": "death",
                               "day": course["death_day"]}).dropna(subset=["day"]))
    if "new_therapy_day" in course.columns:
        parts.append(pd.DataFrame({"patient_id": course["patient_id"], "kind": "new therapy",
                                   "day": course["new_therapy_day"]}).dropna(subset=["day"]))
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
                               fit_model=settings.kinetics_model_fit,
                               population_model=settings.kinetics_population_model) or {}
    titles = {"nca_summary": "CAR-T kinetics, non-compartmental analysis: summary",
              "nca_table": "CAR-T kinetics, non-compartmental analysis per patient",
              "persistence": "CAR-T persistence (share still detectable)",
              "model_table": "Multiphasic model (Stein 2019) fits per patient",
              "population_typical": "Population kinetic model: typical values (95% CrI)",
              "population_variability": "Population kinetic model: between-patient "
                                        "variability and shrinkage",
              "population_covariates": "Population kinetic model: covariate effects "
                                       "(95% CrI)",
              "population_individual": "Population kinetic model: shrunken per-patient "
                                       "estimates",
              "recovery_incidence": "Immune recovery, cumulative incidence",
              "reconstitution_table": "Immune reconstitution per patient"}
    tables = []
    for key, title in titles.items():
        df = section.get(key)
        if isinstance(df, pd.DataFrame) and not df.empty:
            df = df.reset_index(drop=True)
            tables.append(TableItem(f"kinetics_{key.removesuffix('_table')}", title, df,
                                    "kinetics", display=L.humanize(df),
                                    footnote="Concentrations in the unit of each row; "
                                    "numbers to three significant digits (the CSV keeps "
                                    "full precision)."))
    figs = []
    for name, fig in (section.get("figures") or {}).items():
        safe = re.sub(r"[^A-Za-z0-9_-]+", "_", str(name))
        drawn = Drawn(f"kinetics_{safe}", kinetics_title(str(name)), fig)
        if str(name).endswith("_spaghetti"):
            sample_spaghetti(drawn, cohort, str(name).removesuffix("_spaghetti"), settings)
        figs.append(drawn)
    notes = [str(n) for n in section.get("notes", [])] if isinstance(section, dict) else []
    return tables, figs, notes


#: most patients drawn as individual kinetics profiles; above, a seeded random sample
SPAGHETTI_MAX = 80
SPAGHETTI_SEED = 20231


def sample_spaghetti(drawn: Drawn, cohort: Cohort, analyte: str, settings: ReportSettings,
                     max_patients: int = SPAGHETTI_MAX) -> None:
    """Caption the individual-profiles figure; above ``max_patients`` patients with the
    analyte, redraw it (``cartrial.kinetics.figures.spaghetti_plot``) for a random sample
    of ``max_patients`` of them (NumPy generator, seed ``SPAGHETTI_SEED``, so the same
    cohort gives the same sample): hundreds of overlapping lines show nothing, and the
    median/IQR figure already shows every patient. ``drawn.info['patients']`` keeps the
    ids drawn."""
    obs = cohort.observations
    ids = np.sort(pd.unique(obs.loc[(obs["analyte"] == analyte).to_numpy(),
                                    "patient_id"].astype(str)))
    drawn.info["patients"] = list(ids)
    if len(ids) <= max_patients:
        drawn.caption = f"One line per patient ({len(ids)} patients)."
        return
    from cartrial.kinetics.figures import spaghetti_plot

    keep = np.sort(np.random.default_rng(SPAGHETTI_SEED).choice(ids, max_patients,
                                                                 replace=False))
    sub = obs[obs["patient_id"].astype(str).isin(keep).to_numpy()]
    fig = spaghetti_plot(sub, analyte, group=settings.group, patients=cohort.patients)
    drawn.fig.clf()
    drawn.fig = fig
    if fig.axes:  # the picture says it is a sample too (left, clear of the synthetic mark)
        ax = fig.axes[0]
        head = ax.get_title() or drawn.title
        ax.set_title("")
        ax.set_title(f"{head}: random sample of {max_patients} of {len(ids)} patients",
                     loc="left")
    drawn.info["patients"] = list(keep)
    drawn.title += f" (random sample of {max_patients} of {len(ids)} patients)"
    drawn.caption = (f"Individual profiles of a random sample of {max_patients} of the "
                     f"{len(ids)} patients with this analyte (seeded, reproducible): more "
                     "lines would hide each other. The median and IQR figure shows every "
                     "patient.")


def kinetics_title(name: str) -> str:
    """'cart_flow_median_iqr' → 'CAR-T cells (flow): median and IQR over time'."""
    kinds = {"_spaghetti": "individual profiles", "_median_iqr": "median and IQR over time",
             "_population_obs_vs_pred": "population model, observed vs predicted",
             "_population_vpc": "population model, visual predictive check"}
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


def _title(endpoint: str, settings: ReportSettings) -> str:
    """Display title of an endpoint: built-in titles, else the user definition's label."""
    if endpoint in ENDPOINT_TITLES:
        return ENDPOINT_TITLES[endpoint]
    user = settings.user_endpoints().get(endpoint)
    return user.label if user is not None else endpoint


# ------------------------------------------------------------------------------ methods
def endpoint_definitions(settings: ReportSettings | None = None) -> list[tuple[str, str]]:
    """(name, definition) from ``cartrial.endpoints.definitions.ENDPOINTS`` and the user's
    ``endpoint_definitions`` (the objects ``derive_endpoints`` evaluates), so the report
    states exactly what the code does."""
    from cartrial.endpoints.definitions import ENDPOINTS

    user = settings.user_endpoints() if settings is not None else {}
    return [(f"{d.label} ({name})", d.definition_text())
            for name, d in {**ENDPOINTS, **user}.items()]


def software_versions() -> str:
    """'cartrial 0.x, Python 3.12.1, NumPy …' for the methods."""
    import platform
    from importlib.metadata import PackageNotFoundError, version

    from cartrial import __version__

    parts = [f"cartrial {__version__}", f"Python {platform.python_version()}"]
    for dist, name in (("numpy", "NumPy"), ("pandas", "pandas"), ("scipy", "SciPy"),
                       ("statsmodels", "statsmodels"), ("matplotlib", "Matplotlib"),
                       ("reportlab", "ReportLab"), ("python-docx", "python-docx")):
        try:
            parts.append(f"{name} {version(dist)}")
        except PackageNotFoundError:  # pragma: no cover - declared dependencies
            continue
    return ", ".join(parts)


def data_cutoff(cohort: Cohort) -> str:
    """The latest calendar date the data reach (infusion date + last day known), or a
    statement that the cohort records days only."""
    p = cohort.patients
    if "infusion_date" not in p.columns or not p["infusion_date"].notna().any():
        return "not recorded (the cohort gives days since infusion, no calendar dates)"
    from cartrial.endpoints import last_known_alive

    last = last_known_alive(cohort)["day"]
    inf = pd.to_datetime(p.set_index(p["patient_id"].astype(str))["infusion_date"])
    days = last.reindex(inf.index).fillna(0.0)
    dates = inf + pd.to_timedelta(days.to_numpy(dtype=float), unit="D")
    return pd.Timestamp(dates.max()).strftime("%Y-%m-%d")


def methods_text(settings: ReportSettings, layout: str, ae_notes: list[str],
                 cohort: Cohort | None = None) -> list[str]:
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
    median_ci = ("where the pointwise band curves cross 50% (R survfit's rule)"
                 if settings.km_ci_method == "bands"
                 else "by Brookmeyer–Crowley (the times whose band contains 50%)")
    from cartrial.endpoints.populations import POPULATIONS

    pops = "; ".join(f"{p.label}: {p.rule}" for p in POPULATIONS.values())
    paras = [
        "Time origin is the CAR-T infusion (day 0; duration of response starts at the first "
        "response); months are days / 30.4375. Analysis populations, decided in one place "
        f"(cartrial.endpoints.populations): {pops} Every table and figure states its "
        "population and denominator.",
        f"Response is the best response assessed on days {T._sig(w0)}–{T._sig(w1)} after "
        "infusion (NCCN ALL / ELN 2022 categories). ORR = CR + CRi + CRh + MLFS + PR (and "
        "objective responses not further specified); CR/CRi rate = CR + CRi + CRh; MRD-negative "
        "= flow MRD below 10⁻⁴. Denominator: every infused patient (not assessed counts as "
        f"non-response). {ci} confidence intervals by the {settings.proportion_ci} method.",
        "Time-to-event endpoints: Kaplan–Meier estimates with Greenwood variance and "
        f"{ci} pointwise confidence intervals on the {settings.km_conf_type} scale; median "
        f"intervals {median_ci} (NR = not reached); median follow-up by the "
        "reverse Kaplan–Meier method (Schemper & Smith 1996); groups compared by the "
        "log-rank test; hazard ratios by univariable Cox regression (Efron ties; Wald "
        "intervals and p). Relapse and non-relapse mortality as competing risks by the "
        "Aalen–Johansen estimator with log(−log) intervals, groups compared by Gray's test. "
        "Landmarks at " + ", ".join(T._sig(t) for t in settings.landmarks_months) + " months.",
        "Adverse events are counted once per patient and term at the worst grade (CTCAE v5; "
        f"CRS and ICANS by ASTCT 2019), in windows: onset before day "
        f"{T._sig(settings.ae_window_days)}; onset on or after day "
        f"{T._sig(settings.ae_window_days)} among patients still under observation on that "
        "day (alive and followed at least that long), whose number is the stated "
        "denominator; and any time.",
        "Consolidation SCT is an allogeneic SCT given in remission before any relapse "
        "(cartrial.endpoints.sct); comparisons by it are among patients in CR/CRi. Comparing "
        "groups defined by an event after infusion from day 0 gives the transplanted group "
        "immortal time (they had to survive relapse-free until their SCT), which biases the "
        "comparison in their favour; the report therefore shows landmark and time-dependent "
        "analyses where available and labels the comparison from infusion as naive.",
    ]
    if opts:
        paras.append("Endpoint options: " + "; ".join(opts) + ".")
    if layout == "wide":
        paras.append("The input is a wide per-patient table: only the endpoints it states "
                     "(e.g. OS from follow-up and vital status) are analysed; relapse dates and "
                     "AE grades below 3 are not in such tables.")
    paras += ae_notes
    cut = data_cutoff(cohort) if cohort is not None else "not stated"
    paras.append(f"Data cut-off: {cut}. Software: {software_versions()}.")
    return paras


# ------------------------------------------------------------------------------ build
def no_followup(endpoints: pd.DataFrame) -> bool:
    """True when no patient is followed beyond day 0 (every curve would censor everyone
    at day 0)."""
    os_t = endpoints.loc[endpoints["endpoint"] == "OS", "time_days"]
    t = os_t if not os_t.empty else endpoints["time_days"]
    return bool(t.empty or not (t.astype(float) > 0).any())


def _population_text(code: str, n: int, extra: str = "") -> str:
    from cartrial.endpoints.populations import POPULATIONS

    return f"Population: {T.lower_first(POPULATIONS[code].label)}, N = {n}{extra}."


def build_report(cohort: Cohort, settings: ReportSettings | None = None,
                 progress: Progress | None = None) -> Report:
    """Compute every table and figure of the report (nothing is written)."""
    from cartrial import __version__
    from cartrial.endpoints import derive_endpoints, last_known_alive
    from cartrial.endpoints.populations import analysis_populations

    settings = settings or ReportSettings()
    say = progress or _noop
    report = Report(settings=settings)
    pops = analysis_populations(cohort, settings.response_window)
    pops = pops.assign(patient_id=pops["patient_id"].astype(str))
    report.populations = pops
    patients = T.analysis_patients(cohort, settings, pops)
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
    n_saf = len(patients)
    n_cr = int(pops["complete_remission"].sum())
    saf_text = _population_text("SAF", n_saf)

    say("deriving endpoints")
    endpoints = derive_endpoints(cohort, settings.endpoint_options())
    endpoints = endpoints[endpoints["endpoint"].isin(list(settings.endpoints))
                          & endpoints["patient_id"].astype(str).isin(patients["patient_id"]
                                                                     .astype(str))
                          ].reset_index(drop=True)
    report.endpoints = endpoints
    followed = not endpoints.empty and not no_followup(endpoints)
    if not followed:
        why = ("No follow-up after infusion is recorded (no patient is known alive or dead "
               "after day 0): Kaplan–Meier curves would censor everyone at day 0, so the "
               "time-to-event analyses, subgroup comparisons and the swimmer plot are "
               "not shown.")
        report.section_notes.append(("survival", why))
        report.notes.append(why)
        say("warning: no follow-up after day 0: time-to-event analyses skipped")

    say("tables: baseline, response, survival, adverse events")
    t1_group = settings.group if settings.group not in T.POST_INFUSION else None
    t1_note = (f" Not split by {T.lower_first(T.label(settings.group))}: a baseline table is not "
               "split by an event after infusion." if settings.group in T.POST_INFUSION
               else "")
    stat = T.STAT_TEXT[settings.continuous]
    report.tables.append(TableItem(
        "table1_baseline", "Baseline characteristics",
        T.table1(patients, settings, t1_group), "baseline",
        f"Continuous: {stat}; categorical: n (%) of the column's patients; missing values "
        "are counted on their own line where present; values recorded as below a limit "
        "(e.g. <5) are ordered below it." + t1_note, population=saf_text,
        group_col="Characteristic", level_col="Level"))
    risk_hx, risk_ex, risk_rule = T.risk_scores(cohort)
    risk_tab, risk_note, risk_why = T.risk_score_table(cohort, patients,
                                                       (risk_hx, risk_ex, risk_rule))
    if risk_tab is not None:
        report.tables.append(TableItem(
            "risk_scores", "Pre-infusion risk scores (CAR-HEMATOTOX, EASIX)", risk_tab, "risk",
            risk_note, population=saf_text, group_col="Characteristic", level_col="Level"))
    else:
        report.section_notes.append(("risk", risk_why))
    resp = T.response_table(cohort, settings)
    emd = T.emd_response_table(cohort, patients, settings)
    if emd is not None:
        resp = pd.concat([resp, emd], ignore_index=True)
    w0, w1 = settings.response_window
    window = f"days {T._sig(w0)}–{T._sig(w1)} after infusion"
    report.tables.append(TableItem(
        "response", f"Response: best response on {window}", resp, "efficacy",
        f"{100 * settings.conf_level:g}% CI by the {settings.proportion_ci} method; patients "
        "not assessed count in the denominator as non-responders. "
        + ("Extramedullary response: best non-marrow assessment (e.g. PET-CT) at any time "
           "among patients with baseline extramedullary disease and such an assessment."
           if emd is not None else ""), population=saf_text))
    report.tables.append(TableItem("best_response", f"Best response on {window}",
                                   T.best_response_table(patients), "efficacy",
                                   population=saf_text))
    if followed:
        km_note = (f"Kaplan–Meier estimates; {100 * settings.conf_level:g}% CIs with Greenwood "
                   f"variance on the {settings.km_conf_type} scale; median CI "
                   + ("by R survfit's rule" if settings.km_ci_method == "bands"
                      else "by Brookmeyer–Crowley")
                   + " (NR = not reached). CIR/NRM: Aalen–Johansen cumulative "
                   "incidence with the competing event, log(−log) CI.")
        report.tables.append(TableItem("time_to_event", "Time-to-event endpoints",
                                       T.tte_summary(endpoints, settings), "survival", km_note,
                                       population=T.tte_population_text(endpoints)))
        fu = T.followup_table(endpoints, settings)
        if not fu.empty:
            report.tables.append(TableItem("followup", "Follow-up", fu, "survival",
                                           "Reverse Kaplan–Meier (Schemper & Smith 1996).",
                                           population=saf_text))
    subgroups = T.resolve_subgroups(patients, settings) if followed else []
    within = T.subgroup_within(patients, pops)
    sub_tab = (T.subgroup_table(endpoints, patients, subgroups, settings, within)
               if subgroups and not endpoints.empty else pd.DataFrame())
    if not sub_tab.empty:
        report.tables.append(TableItem(
            "subgroups", "Survival by subgroup", sub_tab, "subgroups",
            f"Kaplan–Meier ({settings.km_conf_type} CI); log-rank test over the levels shown. "
            "Consolidation SCT is compared among CR/CRi patients from infusion: a naive "
            "comparison with immortal-time bias (see the comparisons by an event after "
            "infusion).", population=f"{saf_text[:-1]}; consolidation SCT: patients in "
            f"CR/CRi, N = {n_cr}."))
    forest_subs = T.forest_subgroups(patients) if followed else []
    forest_cont = T.continuous_risk_covariates(risk_ex, patients) if followed else {}
    forest_rows = []
    for ep in [e for e in settings.forest_endpoints if e in set(endpoints["endpoint"])]:
        d_ep = endpoints[endpoints["endpoint"] == ep]
        if forest_subs:
            forest_rows.append(T.cox_subgroup_table(d_ep, patients, forest_subs, settings, ep))
        for title, values in forest_cont.items():
            forest_rows.append(T.cox_continuous_table(d_ep, values, title, "per doubling",
                                                      settings, ep))
    cox_tab = pd.concat(forest_rows, ignore_index=True) if forest_rows else pd.DataFrame()
    if not cox_tab.empty:
        report.tables.append(TableItem(
            "hazard_ratios", "Hazard ratios by baseline subgroup (univariable Cox)", cox_tab,
            "subgroups", f"Cox proportional hazards, one model per subgroup variable (Efron "
            f"ties); HR against the reference level with {100 * settings.conf_level:g}% Wald CI "
            "and Wald p. NE: not estimable (a level without events gives an unbounded "
            "likelihood)." + (" EASIX/m-EASIX (pre-infusion): HR per doubling (log2 value, "
                              "as Pennisi 2021 analysed it), patients with the value only."
                              if forest_cont else ""),
            population=saf_text, hide=("hr", "lower", "upper")))

    # adverse events
    ae_notes: list[str] = []
    edge = settings.ae_window_days
    os_rows = endpoints[endpoints["endpoint"] == "OS"].set_index("patient_id")["time_days"]
    if cohort.layout == "tables":
        episodes = T.cohort_episodes(cohort)
        episodes = episodes[episodes["patient_id"].isin(patients["patient_id"])]
        if settings.derive_bedside_aes:
            try:
                derived, why = bedside_episodes(cohort)
            except ValueError as exc:  # grading refuses the observations: say so, go on
                derived = None
                why = (f"CRS/ICANS were not re-graded from the daily bedside observations: "
                       f"{exc}")
                say(f"warning: {why}")
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
        n_late = int(under.fillna(False).sum())
        report.tables.append(TableItem(
            "adverse_events", "Adverse events by worst grade and time window",
            T.ae_table(episodes, patients, under.fillna(False), settings, settings.group,
                       grades_known), "safety",
            f"Patients counted once per term at the worst grade in each window; n (%) of N. "
            f"< {T._sig(edge)} d: onset before day {T._sig(edge)}; ≥ {T._sig(edge)} d: onset "
            f"on or after day {T._sig(edge)}, N = patients alive and followed at least "
            f"{T._sig(edge)} days ({n_late}). CRS and ICANS first, then by frequency. "
            + ("Wide table: only grade ≥ 3 events are recorded. " if not grades_known else "")
            + " ".join(ae_notes), population=saf_text))

    say("figures: patient flow, Kaplan–Meier curves, forest plot, swimmer plot")
    course = course_frame(cohort, patients, endpoints)
    flow = patient_flow(cohort, course, settings, pops)
    report.figures.append(("flow", F.flow_figure(flow)))
    report.tables.append(TableItem(
        "populations", "Analysis populations", T.population_table(flow["populations"]),
        "flow", "Each population with the number excluded from the one above it and why "
        "(cartrial.endpoints.populations).", population=_population_text(
            "ITT", flow["enrolled"])))
    if followed:
        _survival_figures(report, endpoints, patients, subgroups, within, sub_tab, cox_tab,
                          settings, pops)
        lanes, markers = swimmer_inputs(course)
        report.figures += [("course", d) for d in F.swimmer_figures(lanes, markers, settings)]
        say("comparisons by consolidation SCT (landmark, time-dependent)")
        _postinfusion_part(report, cohort, endpoints, patients, pops, settings)

    say("kinetics section")
    try:
        k_tables, k_figs, k_notes = kinetics_part(cohort, settings)
    except Exception as exc:  # a failing optional section must not sink the whole report
        k_tables, k_figs = [], []
        k_notes = [f"The kinetics section could not be built: {type(exc).__name__}: {exc}"]
        say(f"warning: kinetics section skipped ({exc})")
    for t in k_tables:
        t.population = t.population or saf_text
    report.tables += k_tables
    report.figures += [("kinetics", f) for f in k_figs]
    report.notes += k_notes
    design_methods = _design_part(report, cohort, settings, saf_text, say)
    _drop_identifiers(report, cohort)
    for _, drawn in report.figures:  # every figure states its population and denominator
        if not drawn.caption.startswith(("Population", "Populations")):
            pop = (_population_text("ITT", flow["enrolled"]) if drawn.name == "patient_flow"
                   else saf_text)
            drawn.caption = f"{pop} {drawn.caption}".strip()
    if report.synthetic:
        for _, drawn in report.figures:
            F.mark_synthetic(drawn)

    report.methods = methods_text(settings, cohort.layout, ae_notes, cohort)
    if design_methods:
        report.methods.append(design_methods)
    report.definitions = endpoint_definitions(settings)
    report.provenance = {
        "source": cohort.source,
        "input_sha256": cohort.input_sha256,
        "layout": cohort.layout,
        "cartrial_version": __version__,
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S UTC"),
        "data_cutoff": data_cutoff(cohort),
        "patients": f"{len(cohort.patients)} in the cohort, {len(patients)} analysed (infused)",
        "cohort_notes": list(cohort.notes),
    }
    return report


def _design_part(report: Report, cohort: Cohort, settings: ReportSettings, saf_text: str,
                 say: Progress) -> str:
    """The "Trial design and safety monitoring" section when ``design`` is set; returns
    its methods paragraph ("" when off or when it could not be built)."""
    if not settings.design:
        return ""
    from cartrial.report.design_section import design_section

    say("trial design section: decision table, simulated operating characteristics")
    try:
        tables, figs, notes, methods = design_section(cohort, settings.design, saf_text)
    except Exception as exc:  # a failing optional section must not sink the whole report
        why = f"The trial design section could not be built: {type(exc).__name__}: {exc}"
        report.section_notes.append(("design", why))
        report.notes.append(why)
        say(f"warning: trial design section skipped ({exc})")
        return ""
    report.tables += tables
    report.figures += [("design", f) for f in figs]
    report.section_notes += [("design", n) for n in notes]
    return methods


def _drop_identifiers(report: Report, cohort: Cohort) -> None:
    """Remove the cohort's direct identifier columns from every table (interop's
    ``Cohort.identifiers``)."""
    ids = [c for c in getattr(cohort, "identifiers", ()) if c != "patient_id"]
    if not ids:
        return
    from cartrial.report.labels import label

    names = set(ids) | {label(c) for c in ids}
    for t in report.tables:
        drop = [c for c in t.df.columns if c in names]
        if drop:
            t.df = t.df.drop(columns=drop)


def _survival_figures(report: Report, endpoints: pd.DataFrame, patients: pd.DataFrame,
                      subgroups: list[str], within: dict[str, pd.Index], sub_tab: pd.DataFrame,
                      cox_tab: pd.DataFrame, settings: ReportSettings, pops: pd.DataFrame
                      ) -> None:

    present = set(endpoints["endpoint"])
    for ep in [e for e in settings.endpoints if e in present and e not in ("CIR", "NRM")]:
        d = endpoints[endpoints["endpoint"] == ep]
        drawn = F.km_figure(
            [("All patients", d["time_days"].to_numpy(), d["event"].to_numpy())], settings,
            f"km_{ep.lower()}", _title(ep, settings), _title(ep, settings).split(" (")[0],
            endpoint=ep)
        drawn.caption = f"{T.tte_population_text(d)} {drawn.caption}"
        report.figures.append(("survival", drawn))
    comp = endpoints[endpoints["endpoint"] == "CIR"]
    if not comp.empty and comp["cause"].notna().all() and (comp["cause"] > 0).any():
        drawn = F.cif_figure(comp["time_days"].to_numpy(), comp["cause"].to_numpy(dtype=int),
                             settings)
        drawn.caption = f"{T.tte_population_text(comp)} {drawn.caption}"
        report.figures.append(("survival", drawn))
        if "sct_consolidation" in within:
            c2 = comp[comp["patient_id"].astype(str).isin(within["sct_consolidation"])]
            grp = patients.assign(patient_id=patients["patient_id"].astype(str)).set_index(
                "patient_id")["sct_consolidation"].reindex(c2["patient_id"].astype(str))
            ok = grp.notna().to_numpy()
            if ok.sum() and grp[ok].nunique() == 2 and (c2["cause"].to_numpy()[ok] == 1).any():
                drawn = F.cif_figure(
                    c2["time_days"].to_numpy()[ok], c2["cause"].to_numpy(dtype=int)[ok],
                    settings, name="cif_relapse_by_sct_consolidation",
                    groups=grp.to_numpy(dtype=object)[ok], group_title="Consolidation SCT")
                drawn.caption = (f"Population: patients in CR/CRi, N = {int(ok.sum())}. Naive "
                                 "comparison from infusion (immortal-time bias). "
                                 + drawn.caption)
                report.figures.append(("postinfusion", drawn))
    for ep in [e for e in settings.subgroup_figure_endpoints if e in present]:
        d_all = endpoints[endpoints["endpoint"] == ep].set_index("patient_id")
        for col in subgroups:
            d = d_all
            if col in within:
                d = d_all[d_all.index.astype(str).isin(within[col])]
            values = T.category_values(patients.set_index("patient_id")[col]).reindex(d.index)
            levels = T._level_order(values)
            curves = [(L.value_label(level), d["time_days"][(values == level).to_numpy()]
                       .to_numpy(), d["event"][(values == level).to_numpy()].to_numpy())
                      for level in levels]
            p = _subgroup_p(sub_tab, ep, T.subgroup_title(col))
            title = f"{_title(ep, settings)} by {T.lower_first(T.label(col))}"
            section = "subgroups"
            if col in within:
                title += " (CR/CRi patients; naive, from infusion)"
                section = "postinfusion"
            drawn = F.km_figure(curves, settings, f"km_{ep.lower()}_by_{col}", title,
                                _title(ep, settings).split(" (")[0], p, endpoint=ep,
                                colours=F.level_colours(levels))
            drawn.caption = (f"Population: {'patients in CR/CRi' if col in within else 'infused'}"
                             f", N = {int(values.notna().sum())} with a known value. "
                             + drawn.caption)
            report.figures.append((section, drawn))
    if not cox_tab.empty:
        for ep in pd.unique(cox_tab["Endpoint"]):
            drawn = F.forest_figure(cox_tab[cox_tab["Endpoint"] == ep], settings,
                                    f"forest_{str(ep).lower()}",
                                    f"{_title(str(ep), settings)}: hazard ratios by "
                                    "subgroup")
            drawn.caption = f"Population: infused, N = {len(patients)}. {drawn.caption}"
            report.figures.append(("subgroups", drawn))


def _postinfusion_part(report: Report, cohort: Cohort, endpoints: pd.DataFrame,
                       patients: pd.DataFrame, pops: pd.DataFrame,
                       settings: ReportSettings) -> None:
    """PFS by consolidation SCT among CR/CRi patients: naive, landmark, time-dependent Cox,
    Mantel–Byar and Simon–Makuch (``cartrial.report.postinfusion``)."""
    from cartrial.report import postinfusion

    tables, figs, notes = postinfusion.section(cohort, endpoints, patients, pops, settings)
    report.tables += tables
    report.figures += [("postinfusion", f) for f in figs]
    report.section_notes += [("postinfusion", n) for n in notes]


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


def write_csv(df: pd.DataFrame, path: Path, synthetic: bool) -> None:
    """A table as CSV; a synthetic cohort's tables start with a ``# SYNTHETIC DATA`` line."""
    from cartrial.report.document import SYNTHETIC_LABEL

    with open(path, "w", encoding="utf-8", newline="") as fh:
        if synthetic:
            fh.write(f"# {SYNTHETIC_LABEL}\n")
        df.to_csv(fh, index=False, lineterminator="\n")


def write_report(report: Report, outdir: str | os.PathLike[str], overwrite: bool = False,
                 progress: Progress | None = None) -> Path:
    """Write the report folder atomically (temporary folder beside OUTDIR, then moved).

    Every figure is drawn once, to PNG (``figures/<name>.png``), and that image is what
    the HTML, the PDF and the folder hold; ``figure_formats`` adds SVG/PDF files.
    """
    from cartrial.report.docx_tables import write_docx
    from cartrial.report.pdf import write_pdf
    from cartrial.report.render import render_html

    say = progress or _noop
    target = Path(outdir)
    check_target(target, overwrite)
    target.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
    try:
        (work / "tables").mkdir()
        (work / "figures").mkdir()
        for t in report.tables:
            write_csv(t.df, work / "tables" / f"{t.name}.csv", report.synthetic)
        figs = [d for _, d in report.figures]
        formats = tuple(report.settings.figure_formats)
        say(f"drawing {len(figs)} figures ({', '.join(formats)}) and writing tables.docx")
        # a forked child draws every other figure while this process draws the rest (two
        # cores; alternating balances the costly kinetics figures at the end); each figure
        # is drawn once per requested format
        theirs, mine = figs[0::2], figs[1::2]
        worker = _start_image_worker(theirs, formats, work / "figures", report,
                                     work / "tables.docx")
        for drawn in (mine if worker is not None else figs):
            F.save(drawn, work / "figures", formats=formats)
        if worker is None:
            say("writing tables.docx")
            write_docx(report, work / "tables.docx")
        else:
            worker.join()
            if worker.exitcode != 0:  # the child failed: do its part here instead
                for drawn in theirs:
                    F.save(drawn, work / "figures", formats=formats)
                write_docx(report, work / "tables.docx")
        say(f"typesetting report.pdf ({len(report.tables)} tables, {len(figs)} figures)")
        write_pdf(report, work / "report.pdf", work / "figures")
        (work / "settings.yaml").write_text(report.settings.to_yaml(), encoding="utf-8")
        say("writing index.html")
        (work / "index.html").write_text(render_html(report, work / "figures"), encoding="utf-8")
        swap_into_place(work, target)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    return target


def _image_job(figs: list[Drawn], formats: tuple[str, ...], folder: Path, report: Report,
               docx_path: Path) -> None:
    from cartrial.report.docx_tables import write_docx

    for drawn in figs:
        F.save(drawn, folder, formats=formats)
    write_docx(report, docx_path)


def _start_image_worker(figs: list[Drawn], formats: tuple[str, ...], folder: Path,
                        report: Report, docx_path: Path):
    """Draw ``figs`` and write tables.docx in a forked child (returns the process, or None
    to do it all here).

    Only where ``fork`` exists (Linux), with more than one CPU and at least 2 figures,
    unless CARTRIAL_SERIAL is set, and never once JAX is loaded (the population kinetic
    model): JAX runs threads, and a fork of a threaded process can deadlock.
    """
    import multiprocessing as mp
    import sys

    if (len(figs) < 2 or not sys.platform.startswith("linux")
            or "fork" not in mp.get_all_start_methods() or (os.cpu_count() or 1) < 2
            or os.environ.get("CARTRIAL_SERIAL") or "jax" in sys.modules):
        return None
    proc = mp.get_context("fork").Process(target=_image_job,
                                          args=(figs, formats, folder, report, docx_path),
                                          daemon=True)
    proc.start()
    return proc


def close_figures(report: Report) -> None:
    """Free the figures' memory (matplotlib figures not made by pyplot need no close)."""
    import matplotlib.pyplot as plt

    for _, drawn in report.figures:
        plt.close(drawn.fig)
