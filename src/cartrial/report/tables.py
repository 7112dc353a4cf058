"""The report's tables: Table 1, adverse events by time window, efficacy and survival.

Every function takes DataFrames (and the settings) and returns a display DataFrame whose
cells are the strings the report prints ("12 (60.0%)", "42.3 (18.8–65.8)"); the same
frame is written as CSV. Counts are per patient; missing is its own line, never folded
into a category; percentages use every analysed patient of the column as denominator.

Sources: baseline table and AE windows as in the CD7 CAR-T reports (Tan 2023 J Hematol
Oncol 16:34, Table 1 and Table 2; Hu 2024 N Engl J Med 390:1467); AE per-patient
maximum grade as CTCAE v5 reporting requires (each patient counted once per term, at
the highest grade); Kaplan–Meier / Aalen–Johansen estimates from ``cartrial.stats``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from cartrial.report.settings import ReportSettings

if TYPE_CHECKING:  # pragma: no cover
    from cartrial.cohort import Cohort

DASH = "–"
#: baseline columns, in the order Table 1 shows them
BASELINE_ORDER = ("age_years", "age_group", "sex", "diagnosis", "cd7_blasts_pct", "bm_blasts_pct",
                  "extramedullary", "prior_lines", "prior_allo_sct", "product_source",
                  "donor_relation", "hla_match", "dose_per_kg", "dose_level", "weight_kg",
                  "height_cm", "site")
LABELS = {
    "age_years": "Age, years", "age_group": "Age group, years", "sex": "Sex",
    "diagnosis": "Diagnosis", "cd7_blasts_pct": "CD7+ blasts, %",
    "bm_blasts_pct": "Marrow blasts, %", "extramedullary": "Extramedullary disease",
    "prior_lines": "Prior lines of therapy", "prior_allo_sct": "Prior allogeneic SCT",
    "product_source": "CAR-T product source", "donor_relation": "Donor relation",
    "hla_match": "HLA match", "dose_per_kg": "Dose, CAR-T cells/kg", "dose_level": "Dose level",
    "weight_kg": "Weight, kg", "height_cm": "Height, cm", "site": "Centre",
    "sct_consolidation": "Consolidation SCT", "best_response": "Best response (day 28–30)",
}
#: columns never in Table 1: identifiers, provenance, flags, dates
NOT_BASELINE = {"patient_id", "source_file", "source_row", "infusion_date", "enrolled", "infused",
                "synthetic", "best_response", "sct_consolidation"}
#: outcome-like column names (wide tables carry outcomes next to baseline data)
OUTCOME_NAME = re.compile(r"(response|grade|onset|event|status|followup|follow_up|death|relapse"
                          r"|_months$|_days$)")
MAX_LEVELS = 12


def label(column: str) -> str:
    return LABELS.get(column, column.replace("_", " "))


# ------------------------------------------------------------------------------ format
def fmt_n_pct(k: int, n: int) -> str:
    return f"{k} ({100.0 * k / n:.1f}%)" if n else f"{k} ({DASH})"


def fmt_num(x: float, digits: int = 1) -> str:
    if x is None or (isinstance(x, float) and np.isnan(x)):
        return "NE"
    if np.isinf(x):
        return "NR"
    return f"{x:.{digits}f}"


def fmt_value(x: float) -> str:
    """One decimal; three significant digits in e-notation for very large values (doses)."""
    if x is None or not np.isfinite(x):
        return "NE"
    return f"{x:.3g}" if abs(x) >= 1e5 else f"{x:.1f}"


def fmt_est_ci(est: float, lo: float, hi: float, scale: float = 1.0, digits: int = 1) -> str:
    """``42.3 (18.8–65.8)``; NR for a limit not reached, NE for not estimable."""
    def f(v: float) -> str:
        return fmt_num(v * scale if np.isfinite(v) else v, digits)

    return f"{f(est)} ({f(lo)}{DASH}{f(hi)})"


def fmt_p(p: float) -> str:
    if p is None or np.isnan(p):
        return "NE"
    return "<0.001" if p < 0.001 else f"{p:.3f}"


def _sig(x: float) -> str:
    """A numeric category label: 10 not 10.0."""
    return f"{x:g}"


# ------------------------------------------------------------------------------ patients
def category_values(s: pd.Series) -> pd.Series:
    """A column as category labels (object, NaN = missing): yes/no, %g numbers, text."""
    if str(s.dtype) == "boolean" or pd.api.types.is_bool_dtype(s):
        out = s.map({True: "yes", False: "no"})
    elif pd.api.types.is_numeric_dtype(s):
        out = s.map(lambda v: np.nan if pd.isna(v) else _sig(float(v)))
    else:
        out = s.astype("object").where(s.notna(), np.nan)
    return out.astype(object).where(out.notna(), np.nan)


def is_continuous(s: pd.Series) -> bool:
    """Numeric with more than three distinct values (fewer: shown as categories)."""
    return (pd.api.types.is_numeric_dtype(s) and str(s.dtype) != "boolean"
            and not pd.api.types.is_bool_dtype(s) and s.nunique(dropna=True) > 3)


def analysis_patients(cohort: Cohort, settings: ReportSettings) -> pd.DataFrame:
    """The analysed (infused) patients with derived columns for tables and subgroups.

    Derived: ``age_group`` (cut at ``settings.age_cutoffs_years``), ``best_response`` in
    the response window, and ``sct_consolidation`` (yes/no: any ``sct`` event after
    infusion) when the cohort has no such column. Comparing survival by a post-infusion
    event such as SCT carries immortal-time bias; the report says so where it is used.
    """
    from cartrial.endpoints import best_response

    p = cohort.patients
    if "infused" in p.columns:
        p = p[p["infused"].fillna(True).astype(bool).to_numpy()]
    p = p.reset_index(drop=True).copy()
    if "age_years" in p.columns and p["age_years"].notna().any():
        cuts = sorted(settings.age_cutoffs_years)
        edges = [-np.inf, *cuts, np.inf]
        names = ([f"<{_sig(cuts[0])}"] + [f"{_sig(a)}–<{_sig(b)}" for a, b in zip(cuts, cuts[1:],
                                                                                 strict=False)]
                 + [f"≥{_sig(cuts[-1])}"]) if cuts else ["all"]
        grp = pd.cut(p["age_years"], edges, right=False, labels=names)
        p["age_group"] = grp.astype(object).where(grp.notna(), np.nan)
    best = best_response(cohort, settings.response_window).set_index("patient_id")
    p["best_response"] = p["patient_id"].map(best["best_response"]).astype(object)
    p["best_response"] = p["best_response"].where(p["best_response"].notna(), np.nan)
    if "sct_consolidation" not in p.columns and cohort.layout == "tables":
        ev = cohort.events
        sct_ids = set(ev.loc[(ev["event"] == "sct") & (ev["day"] >= 0), "patient_id"])
        p["sct_consolidation"] = np.where(p["patient_id"].isin(sct_ids), "yes", "no")
    elif "sct_consolidation" in p.columns:
        p["sct_consolidation"] = category_values(p["sct_consolidation"])
    return p


def auto_table1_variables(patients: pd.DataFrame, group: str | None = None) -> list[str]:
    """Baseline columns present (at least one value), canonical ones first, then extras.

    Left out: identifiers, provenance, flags, dates, the grouping column, and outcome
    columns of wide tables (names with response, grade, onset, event, status, followup,
    death or relapse, or ending in _months/_days).
    """
    out = []
    extras = [c for c in patients.columns if c not in BASELINE_ORDER]
    for col in [*BASELINE_ORDER, *extras]:
        if col not in patients.columns or col in NOT_BASELINE or col == group:
            continue
        if col not in BASELINE_ORDER and OUTCOME_NAME.search(col):
            continue
        if pd.api.types.is_datetime64_any_dtype(patients[col]):
            continue
        if patients[col].notna().any():
            out.append(col)
    if "age_years" in out and "age_group" in out:
        out.remove("age_group")
        out.insert(out.index("age_years") + 1, "age_group")
    return out


def _group_columns(patients: pd.DataFrame, group: str | None) -> list[tuple[str, np.ndarray]]:
    """(column heading, row mask) for Overall and each group level (missing last)."""
    n = len(patients)
    cols = [(f"Overall (n={n})", np.ones(n, dtype=bool))]
    if group is None:
        return cols
    if group not in patients.columns:
        raise KeyError(group)
    values = category_values(patients[group])
    for level in _level_order(values):
        mask = (values == level).to_numpy()
        cols.append((f"{label(group)}: {level} (n={int(mask.sum())})", mask))
    miss = values.isna().to_numpy()
    if miss.any():
        cols.append((f"{label(group)}: missing (n={int(miss.sum())})", miss))
    return cols


def _level_order(values: pd.Series) -> list[str]:
    present = values.dropna()
    levels = list(pd.unique(present))
    if set(levels) <= {"yes", "no"}:
        return [lv for lv in ("yes", "no") if lv in levels]
    try:  # numeric categories in numeric order
        return sorted(levels, key=float)
    except ValueError:
        counts = present.value_counts()
        return sorted(levels, key=lambda lv: (-int(counts[lv]), str(lv)))


def table1(patients: pd.DataFrame, settings: ReportSettings, group: str | None = None
           ) -> pd.DataFrame:
    """Table 1, baseline characteristics: overall and by ``group``.

    Continuous: median (range) or mean (SD) of the non-missing values; categorical:
    n (%) of the column's patients; a "missing" line wherever a value is missing.
    """
    variables = list(settings.table1_variables or auto_table1_variables(patients, group))
    unknown = [v for v in variables if v not in patients.columns]
    if unknown:
        raise KeyError(", ".join(unknown))
    cols = _group_columns(patients, group)
    rows: list[dict[str, str]] = [{"Characteristic": "Patients", "Level": "n",
                                   **{h: str(int(m.sum())) for h, m in cols}}]
    for var in variables:
        s = patients[var]
        if is_continuous(s):
            stat = "median (range)" if settings.continuous == "median_range" else "mean (SD)"
            row = {"Characteristic": label(var), "Level": stat}
            for head, mask in cols:
                x = s[mask].dropna().to_numpy(dtype=float)
                if x.size == 0:
                    row[head] = DASH
                elif settings.continuous == "median_range":
                    row[head] = (f"{fmt_value(np.median(x))} ({fmt_value(x.min())}{DASH}"
                                 f"{fmt_value(x.max())})")
                else:
                    sd = x.std(ddof=1) if x.size > 1 else np.nan
                    row[head] = f"{fmt_value(x.mean())} ({fmt_value(sd)})"
            rows.append(row)
            values = None
        else:
            values = category_values(s)
            levels = _level_order(values)
            other: list[str] = []
            if len(levels) > MAX_LEVELS:
                levels, other = levels[:MAX_LEVELS - 1], levels[MAX_LEVELS - 1:]
            for level in levels:
                rows.append({"Characteristic": label(var), "Level": str(level),
                             **{h: fmt_n_pct(int(((values == level).to_numpy() & m).sum()),
                                             int(m.sum())) for h, m in cols}})
            if other:
                is_other = values.isin(other).to_numpy()
                rows.append({"Characteristic": label(var), "Level": f"other ({len(other)} values)",
                             **{h: fmt_n_pct(int((is_other & m).sum()), int(m.sum()))
                                for h, m in cols}})
        miss = s.isna().to_numpy()
        if miss.any():
            rows.append({"Characteristic": label(var), "Level": "missing",
                         **{h: fmt_n_pct(int((miss & m).sum()), int(m.sum())) for h, m in cols}})
    return pd.DataFrame(rows)


# ------------------------------------------------------------------------------ AEs
AE_COLUMNS = ["Window", "Group", "Term", "N", "Any grade", "Grade 1", "Grade 2", "Grade 3",
              "Grade 4", "Grade 5", "Grade ≥3"]


def _term_order(terms: Sequence[str]) -> list[str]:
    from cartrial.cohort.vocab import AE_TERMS

    canon = list(AE_TERMS)
    return sorted(set(terms), key=lambda t: (canon.index(t) if t in canon else len(canon), t))


def ae_windows(episodes: pd.DataFrame, under_observation: pd.Series, edge: float
               ) -> list[tuple[str, pd.DataFrame, pd.Index]]:
    """(window name, its episodes, its denominator patient ids).

    ``episodes``: patient_id, term, onset_day, grade (Int, may be <NA> when only
    ``grade_ge3`` is known) and grade_ge3 (bool). ``under_observation``: patient_id →
    followed and alive on day ``edge``. Long-term counts only patients under observation
    on day ``edge`` (alive and followed at least that long), as Tan 2023 reports late AEs.
    """
    all_ids = pd.Index(under_observation.index)
    onset = episodes["onset_day"]
    late_ids = pd.Index(under_observation.index[under_observation.to_numpy(dtype=bool)])
    return [
        ("any time", episodes, all_ids),
        (f"short-term (onset < day {_sig(edge)})", episodes[(onset < edge).fillna(False)], all_ids),
        (f"long-term (onset ≥ day {_sig(edge)}; patients under observation on day {_sig(edge)})",
         episodes[(onset >= edge).fillna(False) & episodes["patient_id"].isin(late_ids)],
         late_ids),
    ]


def ae_table(episodes: pd.DataFrame, patients: pd.DataFrame, under_observation: pd.Series,
             settings: ReportSettings, group: str | None = None, grades_known: bool = True
             ) -> pd.DataFrame:
    """Patients with each AE by maximum grade, any grade and grade ≥ 3, per time window.

    One row per (window, group, term) plus "Any adverse event"; N is the window's
    denominator in that group. Grade 0 episodes are not AEs and are left out.
    """
    ep = episodes[(episodes["grade"].fillna(99) > 0)].copy()
    ep["grade_ge3"] = ep["grade_ge3"].astype(bool) | (ep["grade"].fillna(0) >= 3).astype(bool)
    groups = [("Overall", pd.Index(patients["patient_id"]))]
    if group is not None:
        values = category_values(patients[group])
        for level in _level_order(values):
            groups.append((f"{label(group)}: {level}",
                           pd.Index(patients.loc[(values == level).to_numpy(), "patient_id"])))
        if values.isna().any():
            groups.append((f"{label(group)}: missing",
                           pd.Index(patients.loc[values.isna().to_numpy(), "patient_id"])))
    terms = _term_order(ep["term"].dropna().astype(str).unique().tolist())
    rows = []
    for wname, wep, denom_ids in ae_windows(ep, under_observation, settings.ae_window_days):
        worst = wep.groupby(["patient_id", "term"], observed=True).agg(
            grade=("grade", "max"), ge3=("grade_ge3", "max")).reset_index()
        any_ae = worst.groupby("patient_id").agg(grade=("grade", "max"), ge3=("ge3", "max"))
        any_ae = any_ae.reset_index().assign(term="Any adverse event")
        worst = pd.concat([any_ae, worst], ignore_index=True)
        for gname, gids in groups:
            ids = gids.intersection(denom_ids)
            n = len(ids)
            sub = worst[worst["patient_id"].isin(ids)]
            for term in ["Any adverse event", *terms]:
                t = sub[sub["term"] == term]
                row = {"Window": wname, "Group": gname, "Term": term, "N": n,
                       "Any grade": fmt_n_pct(len(t), n)}
                for g in range(1, 6):
                    row[f"Grade {g}"] = (fmt_n_pct(int((t["grade"] == g).sum()), n)
                                         if grades_known else DASH)
                row["Grade ≥3"] = fmt_n_pct(int(t["ge3"].astype(bool).sum()), n)
                rows.append(row)
    out = pd.DataFrame(rows, columns=AE_COLUMNS)
    if not grades_known:
        out = out.drop(columns=["Any grade", *[f"Grade {g}" for g in range(1, 6)]])
    return out


def cohort_episodes(cohort: Cohort) -> pd.DataFrame:
    """Recorded AE episodes in the shape ``ae_table`` takes (derived flag kept)."""
    ae = cohort.adverse_events
    out = pd.DataFrame({
        "patient_id": ae["patient_id"].astype(str),
        "term": ae["term"].astype(str),
        "onset_day": ae["onset_day"].astype(float),
        "grade": ae["grade"].astype("Int64"),
        "grade_ge3": (ae["grade"].fillna(0) >= 3).astype(bool),
        "derived": ae["derived"].fillna(False).astype(bool) if "derived" in ae else False,
    })
    return out.reset_index(drop=True)


WIDE_AE = re.compile(r"^(?P<term>[a-z0-9]+)_grade3plus$")


def wide_episodes(patients: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """Grade ≥ 3 AEs from a wide table's ``<term>_grade3plus`` yes/no columns.

    Onset from ``<term>_grade3plus_onset_months`` (months × 30.4375 days); an onset
    written ``<x`` is read as "before month x" and placed at x/2 months when x ≤ 1 (the
    first month, short-term), otherwise left missing (counted only in "any time").
    """
    from cartrial.cohort.vocab import AE_TERMS, canonical

    parts, notes = [], []
    for col in patients.columns:
        m = WIDE_AE.match(col)
        if not m:
            continue
        yes = category_values(patients[col]).isin(["yes", "1"]).to_numpy()
        term = canonical(m["term"], AE_TERMS) or m["term"]
        onset_col = f"{col}_onset_months"
        onset = pd.Series(np.nan, index=patients.index)
        if onset_col in patients.columns:
            raw = patients[onset_col].astype(object)
            text = raw.astype(str).str.strip()
            less = text.str.startswith("<")
            num = pd.to_numeric(text.str.lstrip("<"), errors="coerce")
            onset = np.where(less, np.where(num <= 1, num / 2, np.nan), num) * 30.4375
            onset = pd.Series(onset, index=patients.index)
        parts.append(pd.DataFrame({"patient_id": patients["patient_id"].astype(str)[yes],
                                   "term": term, "onset_day": onset[yes].astype(float),
                                   "grade": pd.array([pd.NA] * int(yes.sum()), dtype="Int64"),
                                   "grade_ge3": True, "derived": False}))
        notes.append(f"{term}: grade ≥ 3 from column {col}"
                     + (f", onset from {onset_col}" if onset_col in patients.columns else ""))
    if not parts:
        return pd.DataFrame(columns=["patient_id", "term", "onset_day", "grade", "grade_ge3",
                                     "derived"]), notes
    return pd.concat(parts, ignore_index=True), notes


# ------------------------------------------------------------------------------ efficacy
def response_table(cohort: Cohort, settings: ReportSettings) -> pd.DataFrame:
    """ORR, CR, CR/CRi and MRD-negative CR/CRi with binomial CIs (``response_rates``).

    The MRD row is left out when the cohort records no MRD at all (it would read 0%).
    """
    from cartrial.endpoints import response_rates

    rates = response_rates(cohort, settings.response_window, settings.proportion_ci,
                           settings.conf_level)
    has_mrd = "mrd" in cohort.events.columns and cohort.events["mrd"].notna().any()
    if not has_mrd:
        rates = rates[rates["measure"] != "MRD-negative CR/CRi"]
    level = f"{100 * settings.conf_level:g}% CI"
    out = pd.DataFrame({
        "Measure": rates["measure"].to_numpy(),
        "n/N": [f"{k}/{n}" for k, n in zip(rates["k"], rates["n"], strict=True)],
        f"% ({level})": [fmt_est_ci(e, lo, hi, 100.0) for e, lo, hi in
                         zip(rates["estimate"], rates["lower"], rates["upper"], strict=True)],
        "CI method": rates["method"].to_numpy(),
        "Not assessed": rates["not_assessed"].to_numpy(),
    })
    return out


def best_response_table(patients: pd.DataFrame) -> pd.DataFrame:
    """Distribution of the best response in the day-28–30 window (n, %), not assessed."""
    from cartrial.endpoints.derive import RESPONSE_RANK

    n = len(patients)
    values = patients["best_response"]
    rows = [{"Best response": r, "n (%)": fmt_n_pct(int((values == r).sum()), n)}
            for r in RESPONSE_RANK if (values == r).any()]
    rows.append({"Best response": "not assessed", "n (%)": fmt_n_pct(int(values.isna().sum()), n)})
    return pd.DataFrame(rows)


def emd_response_table(cohort: Cohort, patients: pd.DataFrame, settings: ReportSettings
                       ) -> pd.DataFrame | None:
    """Extramedullary response (assessments whose site is not marrow/blood, e.g. PET-CT)
    among patients with baseline extramedullary disease; None when there are none."""
    from cartrial.cohort.vocab import COMPLETE_RESPONSES, OBJECTIVE_RESPONSES
    from cartrial.endpoints.derive import RESPONSE_RANK
    from cartrial.stats import binomial_ci

    if "extramedullary" not in patients.columns or cohort.events.empty:
        return None
    emd_text = patients["extramedullary"].astype(object)
    has_emd = emd_text.notna() & ~emd_text.astype(str).str.lower().isin(["none", "no", "0"])
    ev = cohort.events
    site = ev["site"].astype(object).fillna("").astype(str).str.lower()
    rows = ev[(ev["event"] == "response") & ev["response"].notna() & (site != "")
              & ~site.isin(["marrow", "bone marrow", "blood", "bm", "pb"])]
    ids = set(patients.loc[has_emd.to_numpy(), "patient_id"])
    rows = rows[rows["patient_id"].isin(ids)]
    if rows.empty:
        return None
    rows = rows.assign(rank=rows["response"].map(RESPONSE_RANK)).sort_values(["rank", "day"])
    best = rows.drop_duplicates("patient_id")
    n = len(best)
    out = []
    level = f"{100 * settings.conf_level:g}% CI"
    for name, members in (("Extramedullary objective response", OBJECTIVE_RESPONSES),
                          ("Extramedullary complete response", COMPLETE_RESPONSES)):
        k = int(best["response"].isin(list(members)).sum())
        est, lo, hi = binomial_ci(k, n, method=settings.proportion_ci,
                                  conf_level=settings.conf_level)
        out.append({"Measure": name, "n/N": f"{k}/{n}",
                    f"% ({level})": fmt_est_ci(est, lo, hi, 100.0),
                    "CI method": settings.proportion_ci,
                    "Not assessed": int(len(ids) - n)})
    return pd.DataFrame(out)


def _km(time_days: np.ndarray, event: np.ndarray, settings: ReportSettings):
    from cartrial.stats import kaplan_meier

    return kaplan_meier(np.asarray(time_days, dtype=float) / settings.time_scale,
                        np.asarray(event, dtype=int), conf_type=settings.km_conf_type,
                        conf_level=settings.conf_level)


def landmark_columns(settings: ReportSettings) -> list[tuple[float, str]]:
    unit = settings.time_unit
    return [(t if unit == "months" else t * 30.4375,
             f"{_sig(t)}-month, % ({100 * settings.conf_level:g}% CI)")
            for t in settings.landmarks_months]


def tte_summary(endpoints: pd.DataFrame, settings: ReportSettings) -> pd.DataFrame:
    """Per endpoint: N, events, median (CI), landmark rates (CI).

    KM endpoints: survival (Greenwood variance, ``km_conf_type`` transform; median CI by
    Brookmeyer–Crowley). CIR/NRM: Aalen–Johansen cumulative incidence with the competing
    cause, log(−log) interval (``cartrial.stats.cumulative_incidence``).
    """
    from cartrial.stats import cumulative_incidence

    unit = settings.time_unit
    rows = []
    for ep in [e for e in settings.endpoints if e in set(endpoints["endpoint"])]:
        d = endpoints[endpoints["endpoint"] == ep]
        t = d["time_days"].to_numpy(dtype=float)
        e = d["event"].to_numpy(dtype=int)
        row: dict[str, Any] = {"Endpoint": ep, "N": len(d), "Events": int(e.sum())}
        if ep in ("CIR", "NRM"):
            cause = d["cause"].to_numpy(dtype=int)
            row["Estimate"] = "cumulative incidence"
            row[f"Median, {unit} ({100 * settings.conf_level:g}% CI)"] = DASH
            own = 1 if ep == "CIR" else 2
            if (cause == own).any():
                ci = cumulative_incidence(t / settings.time_scale, cause,
                                          conf_level=settings.conf_level)
            for tt, col in landmark_columns(settings):
                row[col] = (fmt_est_ci(*ci.at(tt, own), 100.0) if (cause == own).any()
                            else "0.0")
        else:
            fit = _km(t, e, settings)
            row["Estimate"] = "Kaplan–Meier survival"
            row[f"Median, {unit} ({100 * settings.conf_level:g}% CI)"] = fmt_est_ci(*fit.median())
            for tt, col in landmark_columns(settings):
                row[col] = fmt_est_ci(*fit.survival_at(tt), 100.0)
        rows.append(row)
    return pd.DataFrame(rows)


def followup_table(endpoints: pd.DataFrame, settings: ReportSettings) -> pd.DataFrame:
    """Median follow-up by the reverse Kaplan–Meier method on OS (Schemper & Smith 1996)."""
    from cartrial.stats import median_followup

    d = endpoints[endpoints["endpoint"] == "OS"]
    if d.empty:
        return pd.DataFrame()
    t = d["time_days"].to_numpy(dtype=float) / settings.time_scale
    e = d["event"].to_numpy(dtype=int)
    est = median_followup(t, e, conf_type=settings.km_conf_type, conf_level=settings.conf_level)
    alive = t[e == 0]
    return pd.DataFrame([{
        "Measure": f"Median follow-up, {settings.time_unit} (reverse Kaplan–Meier)",
        "Value": fmt_est_ci(*est),
        "Patients alive at last contact": int((e == 0).sum()),
        f"Follow-up of alive patients, {settings.time_unit} (range)":
            f"{alive.min():.1f}{DASH}{alive.max():.1f}" if alive.size else DASH,
    }])


def resolve_subgroups(patients: pd.DataFrame, settings: ReportSettings) -> list[str]:
    from cartrial.report.settings import AUTO_SUBGROUPS

    wanted = settings.subgroups if settings.subgroups is not None else AUTO_SUBGROUPS
    out = []
    for col in wanted:
        if col not in patients.columns:
            if settings.subgroups is not None:
                raise KeyError(col)
            continue
        if category_values(patients[col]).nunique(dropna=True) >= 2:
            out.append(col)
    return out


def subgroup_table(endpoints: pd.DataFrame, patients: pd.DataFrame, subgroups: list[str],
                   settings: ReportSettings) -> pd.DataFrame:
    """Per endpoint and subgroup level: N, events, median and landmark rates; log-rank p.

    Patients with the subgroup value missing are left out of that comparison (their
    number is given in the Level column).
    """
    from cartrial.stats import logrank_test

    unit = settings.time_unit
    rows = []
    for ep in [e for e in settings.subgroup_endpoints if e in set(endpoints["endpoint"])]:
        d = endpoints[endpoints["endpoint"] == ep].set_index("patient_id")
        for col in subgroups:
            values = category_values(patients.set_index("patient_id")[col]).reindex(d.index)
            ok = values.notna().to_numpy()
            t = d["time_days"].to_numpy(dtype=float)
            e = d["event"].to_numpy(dtype=int)
            levels = _level_order(values)
            p = np.nan
            if len(levels) >= 2 and e[ok].sum() > 0:
                p = logrank_test(t[ok], e[ok], values[ok].astype(str).to_numpy()).p_value
            for i, level in enumerate(levels):
                m = (values == level).to_numpy()
                fit = _km(t[m], e[m], settings)
                row = {"Endpoint": ep, "Subgroup": label(col), "Level": str(level),
                       "N": int(m.sum()), "Events": int(e[m].sum()),
                       f"Median, {unit} ({100 * settings.conf_level:g}% CI)":
                           fmt_est_ci(*fit.median())}
                for tt, cname in landmark_columns(settings):
                    row[cname] = fmt_est_ci(*fit.survival_at(tt), 100.0)
                row["Log-rank p"] = fmt_p(p) if i == 0 else ""
                rows.append(row)
            if (~ok).any():
                rows.append({"Endpoint": ep, "Subgroup": label(col),
                             "Level": f"missing (excluded, n={int((~ok).sum())})",
                             "N": int((~ok).sum()), "Events": int(e[~ok].sum()),
                             "Log-rank p": ""})
    return pd.DataFrame(rows)
