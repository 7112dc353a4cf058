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
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from cartrial.cohort.labels import BASELINE_ORDER
from cartrial.cohort.units import DAYS_PER_MONTH
from cartrial.cohort.vocab import (
    AE_TERMS,
    COMPLETE_RESPONSES,
    OBJECTIVE_RESPONSES,
    PRODUCT_SOURCES,
    RESPONSES,
    SEX,
    canonical,
)
from cartrial.endpoints import response_rates
from cartrial.endpoints.definitions import ENDPOINTS
from cartrial.endpoints.populations import POPULATIONS, analysis_populations
from cartrial.endpoints.response import RESPONSE_RANK
from cartrial.endpoints.sct import consolidation_sct
from cartrial.grading.risk import car_hematotox, easix
from cartrial.report import labels as L
from cartrial.report.labels import label
from cartrial.report.settings import AUTO_SUBGROUPS, ReportSettings
from cartrial.stats import (
    binomial_ci,
    chi2_test,
    cumulative_incidence,
    fisher_exact,
    kaplan_meier,
    logrank_test,
    median_followup,
)
from cartrial.stats.timedep import timedep_cox

if TYPE_CHECKING:  # pragma: no cover
    from cartrial.cohort import Cohort

DASH = "–"
#: columns never in Table 1: identifiers, provenance, flags, dates
NOT_BASELINE = {
    "patient_id",
    "source_file",
    "source_row",
    "infusion_date",
    "enrolled",
    "infused",
    "synthetic",
    "best_response",
    "sct_consolidation",
    "sct_day",
}
#: outcome-like column names (wide tables carry outcomes next to baseline data)
OUTCOME_NAME = re.compile(
    r"(response|grade|onset|event|status|followup|follow_up|death|relapse"
    r"|_months$|_days$)"
)
MAX_LEVELS = 12


#: columns holding an event after infusion: never split or describe a baseline table
POST_INFUSION = {"sct_consolidation", "best_response"}
#: text columns whose presence means "yes" (a site list): Table 1 shows Yes / No
PRESENCE_COLUMNS = {"extramedullary"}
NO_WORDS = {"no", "none", "0", "absent", "n"}
CENSORED_NUMBER = re.compile(r"^\s*([<>]=?|≤|≥)\s*(\d+(?:\.\d+)?)\s*$")


# ------------------------------------------------------------------------------ format
def fmt_n_pct(k: int, n: int) -> str:
    return L.fmt_pct(k, n)


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


def _lims(e: Any) -> tuple[float, float, float]:
    """An ``Estimate`` (estimate, lower, upper) as three floats."""
    return float(e.estimate), float(e.lower), float(e.upper)


def fmt_est_ci(est: float, lo: float, hi: float, scale: float = 1.0, digits: int = 1) -> str:
    """``42.3 (18.8–65.8)``; NR for a limit not reached, NE for not estimable."""

    def f(v: float) -> str:
        return fmt_num(v * scale if np.isfinite(v) else v, digits)

    return f"{f(est)} ({f(lo)}{DASH}{f(hi)})"


def fmt_p(p: float) -> str:
    return L.fmt_p(p)


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
    return (
        pd.api.types.is_numeric_dtype(s)
        and str(s.dtype) != "boolean"
        and not pd.api.types.is_bool_dtype(s)
        and s.nunique(dropna=True) > 3
    )


def analysis_patients(
    cohort: Cohort, settings: ReportSettings, populations: pd.DataFrame | None = None
) -> pd.DataFrame:
    """The analysed patients (safety population) with derived columns.

    Membership comes from ``cartrial.endpoints.populations.analysis_populations`` (the one
    place that decides who was infused). Derived: ``age_group`` (cut at
    ``settings.age_cutoffs_years``), ``best_response`` in the response window, and
    ``sct_consolidation`` (yes/no: SCT given in remission before any relapse, from
    ``cartrial.endpoints.sct.consolidation_sct``) when the cohort has no such column.
    Direct identifiers (``cohort.identifiers``) are dropped.
    """

    pops = (
        populations
        if populations is not None
        else analysis_populations(cohort, settings.response_window)
    )
    safety = set(pops.loc[pops["safety"].to_numpy(dtype=bool), "patient_id"].astype(str))
    p = cohort.patients
    p = p[p["patient_id"].astype(str).isin(safety).to_numpy()]
    drop = [c for c in getattr(cohort, "identifiers", ()) if c in p.columns and c != "patient_id"]
    p = p.drop(columns=drop).reset_index(drop=True).copy()
    if "age_years" in p.columns and p["age_years"].notna().any():
        cuts = sorted(settings.age_cutoffs_years)
        edges = [-np.inf, *cuts, np.inf]
        names = (
            (
                [f"<{_sig(cuts[0])}"]
                + [f"{_sig(a)}–<{_sig(b)}" for a, b in zip(cuts, cuts[1:], strict=False)]
                + [f"≥{_sig(cuts[-1])}"]
            )
            if cuts
            else ["all"]
        )
        grp = pd.cut(p["age_years"], edges, right=False, labels=names)
        p["age_group"] = grp.astype(object).where(grp.notna(), np.nan)
    best = pops.set_index("patient_id")["best_response"].astype(object)
    p["best_response"] = p["patient_id"].astype(str).map(best).astype(object)
    p["best_response"] = p["best_response"].where(p["best_response"].notna(), np.nan)
    risk = hematotox_risk(cohort)
    if risk is not None and "car_hematotox_risk" not in p.columns:
        p["car_hematotox_risk"] = p["patient_id"].astype(str).map(risk).astype(object)
    if "sct_consolidation" in p.columns:
        p["sct_consolidation"] = category_values(p["sct_consolidation"])
    elif cohort.layout == "tables":
        sct = consolidation_frame(cohort)
        cons = sct.set_index("patient_id")["consolidation"].astype("boolean")
        v = p["patient_id"].astype(str).map(cons)
        p["sct_consolidation"] = np.where(v.fillna(False).astype(bool), "yes", "no")
        day = sct.set_index("patient_id")["sct_day"].where(cons.fillna(False).astype(bool))
        p["sct_day"] = p["patient_id"].astype(str).map(day).astype(float)
    return p


def hematotox_risk(cohort: Cohort) -> pd.Series | None:
    """CAR-HEMATOTOX risk (low/high) per patient from pre-infusion labs
    (``cartrial.grading.risk.car_hematotox``, Rejeski, Blood 2021;138:2499); None when no
    patient has the labs to score."""
    obs = cohort.observations
    labs = {"anc", "hemoglobin", "platelets", "crp", "ferritin"}
    if obs.empty or not (obs["analyte"].isin(list(labs)) & (obs["day"] < 0)).any():
        return None

    scores = car_hematotox(cohort)
    risk = scores["risk"].astype(object)
    risk = risk.where(risk.isin(["low", "high"]), np.nan)
    if risk.isna().all():
        return None
    risk.index = risk.index.astype(str)
    return risk


def consolidation_frame(cohort: Cohort) -> pd.DataFrame:
    """``consolidation_sct(cohort)`` (SCT in remission before any relapse), patient ids as
    text."""

    out = consolidation_sct(cohort)
    out = out.assign(patient_id=out["patient_id"].astype(str))
    return out


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
        cols.append((f"{label(group)}: {L.value_label(level)} (n={int(mask.sum())})", mask))
    miss = values.isna().to_numpy()
    if miss.any():
        cols.append((f"{label(group)}: missing (n={int(miss.sum())})", miss))
    return cols


def _level_order(values: pd.Series) -> list[str]:
    """Levels in a fixed order: yes/no, the vocabulary's order where it has one (so colours
    and rows are stable between reports), numbers ascending, else by frequency."""
    present = values.dropna()
    levels = list(pd.unique(present))
    if set(levels) <= {"yes", "no"}:
        return [lv for lv in ("yes", "no") if lv in levels]
    vocab = _vocab_order()
    if levels and all(lv in vocab for lv in levels):
        return sorted(levels, key=vocab.index)
    try:  # numeric categories in numeric order
        return sorted(levels, key=float)
    except ValueError:
        pass
    doses = [L.dose_value(lv) for lv in levels]
    if levels and all(d is not None for d in doses):  # dose levels: 5e5/kg < 2e6/kg
        return [lv for _, lv in sorted(zip(doses, levels, strict=True))]
    if all(str(lv)[:1] in "<≥" or "–<" in str(lv) for lv in levels):  # age groups
        return sorted(levels, key=lambda lv: (not str(lv).startswith("<"), str(lv)))
    counts = present.value_counts()
    return sorted(levels, key=lambda lv: (-int(counts[lv]), str(lv)))


def _vocab_order() -> list[str]:

    return [*SEX, *PRODUCT_SOURCES, *RESPONSES, "low", "high"]


def censored_numbers(s: pd.Series) -> tuple[np.ndarray, np.ndarray] | None:
    """A text column of numbers, some written ``<5``/``>80``: (values, below-limit flag).

    None when any non-missing value is neither a number nor such a limit. A ``<x`` value
    sorts below every number ≥ x (it is known only to be below x); ``>x`` is kept as x.
    """
    if pd.api.types.is_numeric_dtype(s):
        return None
    text = s.dropna().astype(str).str.strip()
    if text.empty:
        return None
    num = pd.to_numeric(text, errors="coerce")
    m = text.str.extract(CENSORED_NUMBER)
    limit = pd.to_numeric(m[1], errors="coerce")
    below = m[0].isin(["<", "<=", "≤"]).to_numpy()
    if (num.isna() & limit.isna()).any() or not num.notna().any():
        return None  # not all numbers/limits, or only limits (e.g. age groups "<18", "≥18")
    if not m[0].notna().any():
        return None  # plain numbers stored as text: not this case
    values = np.where(num.notna(), num, limit).astype(float)
    return values, below


def _fmt_censored(value: float, below: bool, fmt) -> str:
    return f"<{value:g}" if below else fmt(value)


def _continuous_cell(x: np.ndarray, below: np.ndarray, how: str, fmt) -> str:
    """median (IQR) / median (range) / mean (SD) of ``x``; ``below`` marks ``<x`` values.

    With values below a limit the order statistics are taken with each ``<x`` sorted
    just under x; a statistic that falls on such a value prints as ``<x`` (the mean is
    not defined then and prints NE)."""
    if x.size == 0:
        return DASH
    key = x - np.where(below, 1e-9 * np.maximum(1.0, np.abs(x)), 0.0)
    order = np.argsort(key, kind="stable")
    xs, bs = x[order], below[order]

    def q(p: float) -> str:  # type-7 quantile, as R's default and gtsummary's
        h = (xs.size - 1) * p
        lo, hi = int(np.floor(h)), int(np.ceil(h))
        if bs[hi] or bs[lo]:
            return _fmt_censored(xs[hi], True, fmt) if bs[hi] else _fmt_censored(xs[lo], True, fmt)
        return fmt(xs[lo] + (h - lo) * (xs[hi] - xs[lo]))

    if how == "mean_sd":
        if below.any():
            return "NE"
        sd = x.std(ddof=1) if x.size > 1 else np.nan
        return f"{fmt(x.mean())} ({fmt(sd)})"
    if how == "median_iqr":
        return f"{q(0.5)} ({q(0.25)}{DASH}{q(0.75)})"
    return (
        f"{q(0.5)} ({_fmt_censored(xs[0], bs[0], fmt)}{DASH}{_fmt_censored(xs[-1], bs[-1], fmt)})"
    )


STAT_TEXT = {"median_range": "median (range)", "median_iqr": "median (IQR)", "mean_sd": "mean (SD)"}


def _number_format(var: str, x: np.ndarray):
    """Doses and other large numbers as 1.0 × 10⁶; others with one decimal."""
    big = x.size and np.nanmax(np.abs(x)) >= 1e4
    return (lambda v: L.fmt_sci(v, 1)) if big else fmt_value


def table1(
    patients: pd.DataFrame, settings: ReportSettings, group: str | None = None
) -> pd.DataFrame:
    """Table 1, baseline characteristics, as gtsummary prints it: overall and by ``group``.

    One block per characteristic (``Characteristic``; ``Level`` holds the statistic of a
    continuous variable or the category): continuous as median (range), median (IQR) or
    mean (SD) (setting ``continuous``) of the non-missing values — text values written
    ``<5`` (below a limit) are ordered below 5 and a statistic falling on one prints
    ``<5``; categorical as n (%) of the column's patients, levels in vocabulary order with
    display labels; presence columns (extramedullary disease as a site list) as Yes/No;
    a "Missing" level only when a value is missing. ``table1_p_values`` adds a p-value
    column (Fisher's exact test for categories, Kruskal–Wallis for continuous values).
    A split by an event after infusion (``POST_INFUSION``) is refused: Table 1 is overall.
    """
    if group in POST_INFUSION:
        group = None
    variables = list(settings.table1_variables or auto_table1_variables(patients, group))
    unknown = [v for v in variables if v not in patients.columns]
    if unknown:
        raise KeyError(", ".join(unknown))
    cols = _group_columns(patients, group)
    want_p = bool(getattr(settings, "table1_p_values", False)) and len(cols) > 2
    rows: list[dict[str, str]] = []
    for var in variables:
        s = patients[var]
        name = label(var)
        block: list[dict[str, str]] = []
        cens = censored_numbers(s)
        p_value = np.nan
        if is_continuous(s) or cens is not None:
            if cens is not None:
                xv = np.full(len(s), np.nan)
                bv = np.zeros(len(s), dtype=bool)
                ok = s.notna().to_numpy()
                xv[ok], bv[ok] = cens
            else:
                xv = s.to_numpy(dtype=float, na_value=np.nan)
                bv = np.zeros(len(s), dtype=bool)
            fmt = _number_format(var, xv[np.isfinite(xv)])
            row = {"Characteristic": name, "Level": STAT_TEXT[settings.continuous]}
            for head, mask in cols:
                keep = mask & np.isfinite(xv)
                row[head] = _continuous_cell(xv[keep], bv[keep], settings.continuous, fmt)
            block.append(row)
            if want_p:
                p_value = _kruskal([xv[m & np.isfinite(xv)] for _, m in cols[1:]])
        else:
            values = category_values(s)
            if var in PRESENCE_COLUMNS:
                low = values.astype(str).str.strip().str.lower()
                values = values.where(values.isna(), np.where(low.isin(NO_WORDS), "no", "yes"))
                values = values.astype(object).where(values.notna(), np.nan)
            levels = _level_order(values)
            other: list[str] = []
            if len(levels) > MAX_LEVELS:
                levels, other = levels[: MAX_LEVELS - 1], levels[MAX_LEVELS - 1 :]
            for level in levels:
                block.append(
                    {
                        "Characteristic": name,
                        "Level": L.value_label(level),
                        **{
                            h: fmt_n_pct(
                                int(((values == level).to_numpy() & m).sum()), int(m.sum())
                            )
                            for h, m in cols
                        },
                    }
                )
            if other:
                is_other = values.isin(other).to_numpy()
                block.append(
                    {
                        "Characteristic": name,
                        "Level": f"Other ({len(other)} values)",
                        **{h: fmt_n_pct(int((is_other & m).sum()), int(m.sum())) for h, m in cols},
                    }
                )
            if want_p:
                p_value = _fisher(values, cols[1:])
        miss = s.isna().to_numpy()
        if miss.any():
            block.append(
                {
                    "Characteristic": name,
                    "Level": "Missing",
                    **{h: str(int((miss & m).sum())) for h, m in cols},
                }
            )
        if want_p:
            for i, r in enumerate(block):
                r["p-value"] = fmt_p(p_value) if i == 0 else ""
        rows += block
    return pd.DataFrame(rows)


def _kruskal(samples: list[np.ndarray]) -> float:
    from scipy.stats import kruskal

    samples = [x for x in samples if x.size]
    if len(samples) < 2 or np.ptp(np.concatenate(samples)) == 0:
        return np.nan
    return float(kruskal(*samples).pvalue)


def _fisher(values: pd.Series, cols: list[tuple[str, np.ndarray]]) -> float:
    """Fisher's exact test on the levels × groups table (2 × 2 exact; larger r × c by
    ``cartrial.stats.fisher_exact`` where it supports it, else chi-squared)."""

    ok = values.notna().to_numpy()
    levels = _level_order(values)
    table = np.array(
        [[int(((values == lv).to_numpy() & m & ok).sum()) for _, m in cols] for lv in levels]
    )
    table = table[table.sum(axis=1) > 0][:, table.sum(axis=0) > 0]
    if table.shape[0] < 2 or table.shape[1] < 2:
        return np.nan
    try:
        return float(fisher_exact(table).p_value)
    except (ValueError, NotImplementedError, TypeError):
        return float(chi2_test(table).p_value)


# ------------------------------------------------------------------------------ AEs
AE_COLUMNS = [
    "Window",
    "Group",
    "Term",
    "N",
    "Any grade",
    "Grade 1–2",
    "Grade 3–4",
    "Grade 5",
    "Grade ≥3",
]
#: terms printed first (the CAR-T-specific toxicities), then by frequency
AE_FIRST = ("CRS", "ICANS")


def _term_order(episodes: pd.DataFrame) -> list[str]:
    """CRS and ICANS first, then terms by the number of patients with any grade (any time),
    ties alphabetically — as the CD7 CAR-T reports order their AE tables."""
    counts = episodes.groupby("term")["patient_id"].nunique()
    terms = [str(t) for t in counts.index]
    return sorted(
        terms,
        key=lambda t: (
            AE_FIRST.index(t) if t in AE_FIRST else len(AE_FIRST),
            -int(counts[t]),
            L.ae_term_label(t),
        ),
    )


def ae_windows(
    episodes: pd.DataFrame, under_observation: pd.Series, edge: float
) -> list[tuple[str, pd.DataFrame, pd.Index]]:
    """(window name, its episodes, its denominator patient ids): ``< edge d``,
    ``≥ edge d`` and ``any time``.

    ``episodes``: patient_id, term, onset_day, grade (Int, may be <NA> when only
    ``grade_ge3`` is known) and grade_ge3 (bool). ``under_observation``: patient_id →
    followed and alive on day ``edge``. The late window counts only patients under
    observation on day ``edge`` (alive and followed at least that long), as Tan 2023
    reports late AEs.
    """
    all_ids = pd.Index(under_observation.index)
    onset = episodes["onset_day"]
    late_ids = pd.Index(under_observation.index[under_observation.to_numpy(dtype=bool)])
    return [
        (f"< {_sig(edge)} d", episodes[(onset < edge).fillna(False)], all_ids),
        (
            f"≥ {_sig(edge)} d",
            episodes[(onset >= edge).fillna(False) & episodes["patient_id"].isin(late_ids)],
            late_ids,
        ),
        ("Any time", episodes, all_ids),
    ]


def ae_table(
    episodes: pd.DataFrame,
    patients: pd.DataFrame,
    under_observation: pd.Series,
    settings: ReportSettings,
    group: str | None = None,
    grades_known: bool = True,
) -> pd.DataFrame:
    """Patients with each AE at their worst grade, as the seeds publish it.

    Per window (< edge d, ≥ edge d, any time), group and term: N (the window's
    denominator), any grade, grade 1–2, grade 3–4, grade 5 and grade ≥ 3, each n (%).
    Each patient counts once per term, at the worst grade in that window (CTCAE v5
    reporting). Terms: "Any adverse event", CRS, ICANS, then by frequency. Grade 0
    episodes are not AEs. Wide tables record grade ≥ 3 only: the grade columns are
    left out.
    """
    ep = episodes[(episodes["grade"].fillna(99) > 0)].copy()
    ep["grade_ge3"] = ep["grade_ge3"].astype(bool) | (ep["grade"].fillna(0) >= 3).astype(bool)
    groups = [("Overall", pd.Index(patients["patient_id"]))]
    if group is not None:
        values = category_values(patients[group])
        for level in _level_order(values):
            groups.append(
                (
                    f"{label(group)}: {L.value_label(level)}",
                    pd.Index(patients.loc[(values == level).to_numpy(), "patient_id"]),
                )
            )
        if values.isna().any():
            groups.append(
                (
                    f"{label(group)}: missing",
                    pd.Index(patients.loc[values.isna().to_numpy(), "patient_id"]),
                )
            )
    terms = _term_order(ep)
    rows = []
    for wname, wep, denom_ids in ae_windows(ep, under_observation, settings.ae_window_days):
        worst = (
            wep.groupby(["patient_id", "term"], observed=True)
            .agg(grade=("grade", "max"), ge3=("grade_ge3", "max"))
            .reset_index()
        )
        any_ae = worst.groupby("patient_id").agg(grade=("grade", "max"), ge3=("ge3", "max"))
        any_ae = any_ae.reset_index().assign(term="Any adverse event")
        worst = pd.concat([any_ae, worst], ignore_index=True)
        for gname, gids in groups:
            ids = gids.intersection(denom_ids)
            n = len(ids)
            sub = worst[worst["patient_id"].isin(ids)]
            for term in ["Any adverse event", *terms]:
                t = sub[sub["term"] == term]
                g = t["grade"]
                row = {
                    "Window": wname,
                    "Group": gname,
                    "Term": L.ae_term_label(term),
                    "N": n,
                    "Any grade": fmt_n_pct(len(t), n),
                    "Grade 1–2": fmt_n_pct(int(g.isin([1, 2]).sum()), n),
                    "Grade 3–4": fmt_n_pct(int(g.isin([3, 4]).sum()), n),
                    "Grade 5": fmt_n_pct(int((g == 5).sum()), n),
                    "Grade ≥3": fmt_n_pct(int(t["ge3"].astype(bool).sum()), n),
                }
                rows.append(row)
    out = pd.DataFrame(rows, columns=AE_COLUMNS)
    if not grades_known:
        out = out.drop(columns=["Any grade", "Grade 1–2", "Grade 3–4", "Grade 5"])
    return out


def cohort_episodes(cohort: Cohort) -> pd.DataFrame:
    """Recorded AE episodes in the shape ``ae_table`` takes (derived flag kept)."""
    ae = cohort.adverse_events
    out = pd.DataFrame(
        {
            "patient_id": ae["patient_id"].astype(str),
            "term": ae["term"].astype(str),
            "onset_day": ae["onset_day"].astype(float),
            "grade": ae["grade"].astype("Int64"),
            "grade_ge3": (ae["grade"].fillna(0) >= 3).astype(bool),
            "derived": ae["derived"].fillna(False).astype(bool) if "derived" in ae else False,
        }
    )
    return out.reset_index(drop=True)


WIDE_AE = re.compile(r"^(?P<term>[a-z0-9]+)_grade3plus$")


def wide_episodes(patients: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """Grade ≥ 3 AEs from a wide table's ``<term>_grade3plus`` yes/no columns.

    Onset from ``<term>_grade3plus_onset_months`` (months × 30.4375 days); an onset
    written ``<x`` is read as "before month x" and placed at x/2 months when x ≤ 1 (the
    first month, short-term), otherwise left missing (counted only in "any time").
    """

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
            onset = np.where(less, np.where(num <= 1, num / 2, np.nan), num) * DAYS_PER_MONTH
            onset = pd.Series(onset, index=patients.index)
        parts.append(
            pd.DataFrame(
                {
                    "patient_id": patients["patient_id"].astype(str)[yes],
                    "term": term,
                    "onset_day": onset[yes].astype(float),
                    "grade": pd.array([pd.NA] * int(yes.sum()), dtype="Int64"),
                    "grade_ge3": True,
                    "derived": False,
                }
            )
        )
        notes.append(
            f"{term}: grade ≥ 3 from column {col}"
            + (f", onset from {onset_col}" if onset_col in patients.columns else "")
        )
    if not parts:
        return pd.DataFrame(
            columns=["patient_id", "term", "onset_day", "grade", "grade_ge3", "derived"]
        ), notes
    return pd.concat(parts, ignore_index=True), notes


# ------------------------------------------------------------------------------ efficacy
def response_table(cohort: Cohort, settings: ReportSettings) -> pd.DataFrame:
    """ORR, CR, CR/CRi and MRD-negative CR/CRi with binomial CIs (``response_rates``).

    The MRD row is left out when the cohort records no MRD at all (it would read 0%).
    """

    rates = response_rates(
        cohort, settings.response_window, settings.proportion_ci, settings.conf_level
    )
    has_mrd = "mrd" in cohort.events.columns and cohort.events["mrd"].notna().any()
    if not has_mrd:
        rates = rates[rates["measure"] != "MRD-negative CR/CRi"]
    level = f"{100 * settings.conf_level:g}% CI"
    out = pd.DataFrame(
        {
            "Measure": rates["measure"].to_numpy(),
            "n/N": [f"{k}/{n}" for k, n in zip(rates["k"], rates["n"], strict=True)],
            f"% ({level})": [
                fmt_est_ci(e, lo, hi, 100.0)
                for e, lo, hi in zip(rates["estimate"], rates["lower"], rates["upper"], strict=True)
            ],
            "CI method": [L.CI_METHODS.get(str(m), str(m)) for m in rates["method"]],
            "Not assessed": rates["not_assessed"].to_numpy(),
        }
    )
    return out


def best_response_table(patients: pd.DataFrame) -> pd.DataFrame:
    """Distribution of the best response in the day-28–30 window (n, %), not assessed."""

    n = len(patients)
    values = patients["best_response"]
    rows = [
        {"Best response": L.value_label(r), "n (%)": fmt_n_pct(int((values == r).sum()), n)}
        for r in RESPONSE_RANK
        if (values == r).any()
    ]
    rows.append({"Best response": "Not assessed", "n (%)": fmt_n_pct(int(values.isna().sum()), n)})
    return pd.DataFrame(rows)


def emd_response_table(
    cohort: Cohort, patients: pd.DataFrame, settings: ReportSettings
) -> pd.DataFrame | None:
    """Extramedullary response (assessments whose site is not marrow/blood, e.g. PET-CT)
    among patients with baseline extramedullary disease; None when there are none."""

    if "extramedullary" not in patients.columns or cohort.events.empty:
        return None
    emd_text = patients["extramedullary"].astype(object)
    has_emd = emd_text.notna() & ~emd_text.astype(str).str.lower().isin(["none", "no", "0"])
    ev = cohort.events
    site = ev["site"].astype(object).fillna("").astype(str).str.lower()
    rows = ev[
        (ev["event"] == "response")
        & ev["response"].notna()
        & (site != "")
        & ~site.isin(["marrow", "bone marrow", "blood", "bm", "pb"])
    ]
    ids = set(patients.loc[has_emd.to_numpy(), "patient_id"])
    rows = rows[rows["patient_id"].isin(ids)]
    if rows.empty:
        return None
    rows = rows.assign(rank=rows["response"].map(RESPONSE_RANK)).sort_values(["rank", "day"])
    best = rows.drop_duplicates("patient_id")
    n = len(best)
    out = []
    level = f"{100 * settings.conf_level:g}% CI"
    for name, members in (
        ("Extramedullary objective response", OBJECTIVE_RESPONSES),
        ("Extramedullary complete response", COMPLETE_RESPONSES),
    ):
        k = int(best["response"].isin(list(members)).sum())
        est, lo, hi = binomial_ci(
            k, n, method=settings.proportion_ci, conf_level=settings.conf_level
        )
        out.append(
            {
                "Measure": name,
                "n/N": f"{k}/{n}",
                f"% ({level})": fmt_est_ci(est, lo, hi, 100.0),
                "CI method": L.CI_METHODS.get(settings.proportion_ci, settings.proportion_ci),
                "Not assessed": int(len(ids) - n),
            }
        )
    return pd.DataFrame(out)


def _km(time_days: np.ndarray, event: np.ndarray, settings: ReportSettings):

    return kaplan_meier(
        np.asarray(time_days, dtype=float) / settings.time_scale,
        np.asarray(event, dtype=int),
        conf_type=settings.km_conf_type,
        conf_level=settings.conf_level,
    )


def landmark_columns(settings: ReportSettings) -> list[tuple[float, str]]:
    unit = settings.time_unit
    return [
        (
            t if unit == "months" else t * DAYS_PER_MONTH,
            f"{_sig(t)}-month, % ({100 * settings.conf_level:g}% CI)",
        )
        for t in settings.landmarks_months
    ]


def tte_summary(endpoints: pd.DataFrame, settings: ReportSettings) -> pd.DataFrame:
    """Per endpoint: N, events, median (CI), landmark rates (CI).

    KM endpoints: survival (Greenwood variance, ``km_conf_type`` transform; median CI by
    Brookmeyer–Crowley). CIR/NRM: Aalen–Johansen cumulative incidence with the competing
    cause, log(−log) interval (``cartrial.stats.cumulative_incidence``).
    """

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
                ci = cumulative_incidence(
                    t / settings.time_scale, cause, conf_level=settings.conf_level
                )
            for tt, col in landmark_columns(settings):
                row[col] = fmt_est_ci(*ci.at(tt, own), 100.0) if (cause == own).any() else "0.0"
        else:
            fit = _km(t, e, settings)
            row["Estimate"] = "Kaplan–Meier survival"
            row[f"Median, {unit} ({100 * settings.conf_level:g}% CI)"] = fmt_est_ci(
                *fit.median(ci_method=settings.km_ci_method)
            )
            for tt, col in landmark_columns(settings):
                row[col] = fmt_est_ci(*_lims(fit.survival_at(tt)), scale=100.0)
        rows.append(row)
    return pd.DataFrame(rows)


def followup_table(endpoints: pd.DataFrame, settings: ReportSettings) -> pd.DataFrame:
    """Median follow-up by the reverse Kaplan–Meier method on OS (Schemper & Smith 1996)."""

    d = endpoints[endpoints["endpoint"] == "OS"]
    if d.empty:
        return pd.DataFrame()
    t = d["time_days"].to_numpy(dtype=float) / settings.time_scale
    e = d["event"].to_numpy(dtype=int)
    est = median_followup(t, e, conf_type=settings.km_conf_type, conf_level=settings.conf_level)
    alive = t[e == 0]
    return pd.DataFrame(
        [
            {
                "Measure": f"Median follow-up, {settings.time_unit} (reverse Kaplan–Meier)",
                "Value": fmt_est_ci(*est),
                "Patients alive at last contact": int((e == 0).sum()),
                f"Follow-up of alive patients, {settings.time_unit} (range)": f"{alive.min():.1f}{DASH}{alive.max():.1f}"
                if alive.size
                else DASH,
            }
        ]
    )


def resolve_subgroups(patients: pd.DataFrame, settings: ReportSettings) -> list[str]:

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


def subgroup_title(col: str) -> str:
    """The Subgroup column's text; a post-infusion split says it is naive and CR-only."""
    if col == "sct_consolidation":
        return f"{label(col)} (CR/CRi patients; naive, from infusion)"
    return label(col)


def subgroup_within(
    patients: pd.DataFrame, populations: pd.DataFrame | None
) -> dict[str, pd.Index]:
    """Columns compared within a population: consolidation SCT among CR/CRi patients
    (issue 10; the NS7CAR paper compares its 37 vs 10 CR patients)."""
    if populations is None or "sct_consolidation" not in patients.columns:
        return {}
    cr = populations.loc[populations["complete_remission"].to_numpy(dtype=bool), "patient_id"]
    return {"sct_consolidation": pd.Index(cr.astype(str))}


def subgroup_table(
    endpoints: pd.DataFrame,
    patients: pd.DataFrame,
    subgroups: list[str],
    settings: ReportSettings,
    within: dict[str, pd.Index] | None = None,
) -> pd.DataFrame:
    """Per endpoint and subgroup level: N, events, median and landmark rates; log-rank p.

    Patients with the subgroup value missing are left out of that comparison (their
    number is given in the Level column). ``within``: column → patient ids the comparison
    is restricted to (consolidation SCT: CR/CRi patients).
    """

    unit = settings.time_unit
    rows = []
    for ep in [e for e in settings.subgroup_endpoints if e in set(endpoints["endpoint"])]:
        d_all = endpoints[endpoints["endpoint"] == ep].set_index("patient_id")
        for col in subgroups:
            d = d_all
            if within and col in within:
                d = d_all[d_all.index.astype(str).isin(within[col])]
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
                row = {
                    "Endpoint": ep,
                    "Subgroup": subgroup_title(col),
                    "Level": L.value_label(level),
                    "N": int(m.sum()),
                    "Events": int(e[m].sum()),
                    f"Median, {unit} ({100 * settings.conf_level:g}% CI)": fmt_est_ci(
                        *fit.median(ci_method=settings.km_ci_method)
                    ),
                }
                for tt, cname in landmark_columns(settings):
                    row[cname] = fmt_est_ci(*_lims(fit.survival_at(tt)), scale=100.0)
                row["Log-rank p"] = fmt_p(p) if i == 0 else ""
                rows.append(row)
            if (~ok).any():
                rows.append(
                    {
                        "Endpoint": ep,
                        "Subgroup": subgroup_title(col),
                        "Level": f"missing (excluded, n={int((~ok).sum())})",
                        "N": int((~ok).sum()),
                        "Events": int(e[~ok].sum()),
                        "Log-rank p": "",
                    }
                )
    return pd.DataFrame(rows)


# ------------------------------------------------------------------------------ populations
def lower_first(text: str) -> str:
    """'Infused (safety / modified ITT)' → 'infused (safety / modified ITT)'."""
    return text[:1].lower() + text[1:] if text[1:2].islower() else text


def _endpoint_population(ep: str) -> str:

    d = ENDPOINTS.get(ep)
    return d.population if d is not None else "SAF"


def tte_population_text(endpoints: pd.DataFrame) -> str:
    """'Population: infused, N = 57.' or, for several endpoints, one clause per
    population ('OS, PFS: infused, N = 57; DFS, CIR, NRM: in CR/CRi, N = 40')."""

    groups: dict[tuple[str, int], list[str]] = {}
    for ep, sub in endpoints.groupby("endpoint", sort=False):
        key = (_endpoint_population(str(ep)), int(sub["patient_id"].nunique()))
        groups.setdefault(key, []).append(str(ep))
    if len(groups) == 1:
        (code, n), _eps = next(iter(groups.items()))
        return f"Population: {lower_first(POPULATIONS[code].label)}, N = {n}."
    parts = [
        f"{', '.join(eps)}: {lower_first(POPULATIONS[code].label)}, N = {n}"
        for (code, n), eps in groups.items()
    ]
    return "Populations: " + "; ".join(parts) + "."


def population_table(populations: list[dict[str, Any]]) -> pd.DataFrame:
    """The flow's populations as a table: n, excluded from the one above, reasons."""
    return pd.DataFrame(
        [
            {
                "Population": p["label"],
                "Code": p["code"],
                "n": p["n"],
                "Excluded": p["excluded"],
                "Reasons for exclusion": p["reasons"],
            }
            for p in populations
        ]
    )


# ------------------------------------------------------------------------------ Cox / forest
#: baseline subgroups of the forest plot, in print order (present with ≥ 2 levels)
FOREST_SUBGROUPS = (
    "dose_level",
    "age_group",
    "product_source",
    "prior_allo_sct",
    "cd7_status",
    "car_hematotox_risk",
    "car_hematotox",
)
COX_COLUMNS = [
    "Endpoint",
    "Subgroup",
    "Level",
    "N",
    "Events",
    "HR (95% CI)",
    "p",
    "hr",
    "lower",
    "upper",
]


def forest_subgroups(patients: pd.DataFrame) -> list[str]:
    """Baseline subgroup columns present with at least two levels."""
    out = []
    for col in FOREST_SUBGROUPS:
        if col in patients.columns and category_values(patients[col]).nunique(dropna=True) >= 2:
            out.append(col)
    return out


def cox_fit(time: np.ndarray, event: np.ndarray, covariates: pd.DataFrame, conf_level: float):
    """Cox model (Efron ties) of right-censored data; the ``CoxResult``.

    Uses ``cartrial.stats.timedep.timedep_cox`` on one interval (0, t + 1] per patient —
    the partial likelihood depends only on the order of the times, so shifting them all
    by one day changes nothing, and it keeps day-0 events in their risk sets — because it
    is NumPy-only (statsmodels' import alone costs a second).
    """

    t = np.asarray(time, dtype=float)
    return timedep_cox(
        np.zeros(t.size),
        t + 1.0,
        np.asarray(event, dtype=int),
        covariates.reset_index(drop=True),
        conf_level=conf_level,
    )


def cox_subgroup_table(
    d: pd.DataFrame,
    patients: pd.DataFrame,
    subgroups: list[str],
    settings: ReportSettings,
    endpoint: str,
) -> pd.DataFrame:
    """Univariable Cox HR of each level against the subgroup's first level (reference).

    ``d``: one endpoint's rows (patient_id, time_days, event). One model per subgroup
    variable (``cartrial.stats.cox_ph``, Efron ties), reference = the first level in the
    fixed level order. A level (or reference) without events has no finite maximum
    likelihood estimate (monotone likelihood): its HR prints NE and the reason, rather
    than a meaningless 1e-12. Patients with the value missing are left out. ``hr``,
    ``lower``, ``upper`` keep the numbers for the forest plot.
    """
    d = d.assign(patient_id=d["patient_id"].astype(str)).set_index("patient_id")
    pt = patients.assign(patient_id=patients["patient_id"].astype(str)).set_index("patient_id")
    level_ci = f"HR ({100 * settings.conf_level:g}% CI)"
    rows = []
    for col in subgroups:
        values = category_values(pt[col]).reindex(d.index)
        ok = values.notna().to_numpy()
        levels = _level_order(values[ok])
        t = d["time_days"].to_numpy(dtype=float)
        e = d["event"].to_numpy(dtype=int)
        ev_by = {lv: int(e[(values == lv).to_numpy()].sum()) for lv in levels}
        n_by = {lv: int((values == lv).to_numpy().sum()) for lv in levels}
        fit = None
        why = ""
        if len(levels) < 2:
            why = "one level"
        elif any(v == 0 for v in ev_by.values()):
            why = "a level without events"
        else:
            data = pd.DataFrame(
                {
                    f"x{j}": (values[ok] == lv).to_numpy(dtype=float)
                    for j, lv in enumerate(levels[1:])
                }
            )
            try:
                res = cox_fit(t[ok], e[ok], data, settings.conf_level)
                fit = res.summary
                if getattr(res, "monotone", False) or not getattr(res, "converged", True):
                    fit, why = (
                        None,
                        "not estimable: " + str(getattr(res, "warning", "") or "no convergence"),
                    )
            except (ValueError, np.linalg.LinAlgError) as exc:
                why = f"not estimable ({exc})"
        for i, lv in enumerate(levels):
            row = {
                "Endpoint": endpoint,
                "Subgroup": label(col),
                "Level": L.value_label(lv),
                "N": n_by[lv],
                "Events": ev_by[lv],
            }
            if i == 0:
                row.update(
                    {
                        level_ci: "1 (reference)",
                        "p": "",
                        "hr": 1.0,
                        "lower": np.nan,
                        "upper": np.nan,
                    }
                )
            elif fit is None:
                row.update(
                    {
                        level_ci: f"NE ({why})",
                        "p": "",
                        "hr": np.nan,
                        "lower": np.nan,
                        "upper": np.nan,
                    }
                )
            else:
                r = fit.iloc[i - 1]
                row.update(
                    {
                        level_ci: f"{r['hr']:.2f} ({r['lower']:.2f}{DASH}{r['upper']:.2f})",
                        "p": fmt_p(float(r["p"])),
                        "hr": round(float(r["hr"]), 4),
                        "lower": round(float(r["lower"]), 4),
                        "upper": round(float(r["upper"]), 4),
                    }
                )
            rows.append(row)
    cols = [c if c != "HR (95% CI)" else level_ci for c in COX_COLUMNS]
    return pd.DataFrame(rows, columns=cols)


# ------------------------------------------------------------------------------ risk scores
#: grouping columns of the pre-infusion risk table (issue 11), in print order
RISK_GROUPS = ("dose_level", "product_source")
#: analytes each score needs (cohort vocabulary names)
HEMATOTOX_ANALYTES = ("anc", "hemoglobin", "platelets", "crp", "ferritin")
EASIX_ANALYTES = ("ldh", "creatinine", "platelets")
M_EASIX_ANALYTES = ("ldh", "crp", "platelets")


RISK_HIGH = "CAR-HEMATOTOX high (≥ 2), n (%)"
RISK_LOW = "CAR-HEMATOTOX low (0–1), n (%)"
RISK_UNKNOWN = "CAR-HEMATOTOX not determinable, n (%)"


def _fmt2(v: float) -> str:
    return f"{v:.2f}"


def risk_scores(cohort: Cohort) -> tuple[pd.DataFrame | None, pd.DataFrame | None, str]:
    """(CAR-HEMATOTOX frame or None, EASIX/m-EASIX frame or None, time-point rule) from
    ``cartrial.grading.risk`` at its default time point; a frame is None when no patient
    has any of its inputs before infusion (the cheap check runs first)."""
    obs = cohort.observations
    if obs is None or obs.empty or "analyte" not in obs.columns:
        return None, None, ""
    pre = obs[pd.to_numeric(obs["day"], errors="coerce").lt(0).to_numpy()]
    present = set(pre["analyte"].astype(str))
    hx_in = present & set(HEMATOTOX_ANALYTES)
    ex_in = (set(EASIX_ANALYTES) <= present) or (set(M_EASIX_ANALYTES) <= present)
    if not hx_in and not ex_in:
        return None, None, ""

    hx = ex = None
    rule = ""
    if hx_in:
        hx = car_hematotox(cohort)
        hx.index = hx.index.astype(str)
        cols = ["anc", "hemoglobin_g_dl", "platelets", "crp_mg_l", "ferritin_ng_ml"]
        rule = str(hx["rule"].iloc[0]) if len(hx) else ""
        hx = hx if hx[cols].notna().any().any() else None
    if ex_in:
        ex = easix(cohort)
        ex.index = ex.index.astype(str)
        rule = rule or (str(ex["rule"].iloc[0]) if len(ex) else "")
        ex = ex if ex[["easix", "m_easix"]].notna().any().any() else None
    return hx, ex, rule


def risk_score_table(
    cohort: Cohort, patients: pd.DataFrame, scores: tuple | None = None
) -> tuple[pd.DataFrame | None, str, str]:
    """Pre-infusion risk scores of the analysed patients, overall and by dose level and
    product source (issue 11): CAR-HEMATOTOX high / low / not determinable, n (%) of the
    row's patients (Rejeski K et al., Blood 2021;138:2499: low 0–1, high ≥ 2 points), and
    EASIX / m-EASIX median (IQR) with the number of patients it was computed for (Luft T
    et al., Lancet Haematol 2017;4:e414; Pennisi M et al., Blood Adv 2021;5:3397).

    ``scores``: ``risk_scores(cohort)`` when already computed.
    Returns (table or None, footnote, reason): the table is None, with the reason, when
    the observations hold none of the inputs before infusion. "Not determinable": the
    missing markers could put the patient in either class (never scored as 0 points).
    """
    hx, ex, rule = scores if scores is not None else risk_scores(cohort)
    if hx is None and ex is None:
        obs = cohort.observations
        if obs is None or obs.empty:
            return (
                None,
                "",
                (
                    "Pre-infusion risk scores (CAR-HEMATOTOX, EASIX) are not shown: "
                    "the cohort has no observations table (laboratory values by "
                    "day), so there are no pre-infusion labs to score."
                ),
            )
        return (
            None,
            "",
            (
                "Pre-infusion risk scores are not shown: the observations hold no "
                "ANC, haemoglobin, platelet, CRP or ferritin value (CAR-HEMATOTOX) and no "
                "LDH with creatinine or CRP and platelets (EASIX, m-EASIX) before infusion "
                f"({rule or 'latest value from day -10 to day -1'})."
            ),
        )
    ids = patients["patient_id"].astype(str)
    cols: dict[str, np.ndarray] = {}
    if hx is not None:
        cols["risk"] = hx["risk"].reindex(ids).astype(object).to_numpy()
    easix_cols = []
    if ex is not None:
        for key, name in (("easix", "EASIX"), ("m_easix", "m-EASIX")):
            if ex[key].notna().any():
                cols[key] = ex[key].reindex(ids).to_numpy(dtype=float)
                easix_cols.append((key, name))
    groups: list[tuple[str, str, np.ndarray]] = [
        ("All patients", "", np.ones(len(ids), dtype=bool))
    ]
    for col in RISK_GROUPS:
        if col not in patients.columns or not patients[col].notna().any():
            continue
        values = category_values(patients[col]).reset_index(drop=True)
        for level in _level_order(values):
            groups.append((label(col), L.value_label(level), (values == level).to_numpy()))
        if values.isna().any():
            groups.append((label(col), "missing", values.isna().to_numpy()))
    rows = []
    for char, level, m in groups:
        n = int(m.sum())
        row: dict[str, Any] = {"Characteristic": char, "Level": level, "N": n}
        if "risk" in cols:
            r = cols["risk"][m]
            row[RISK_HIGH] = fmt_n_pct(int((r == "high").sum()), n)
            row[RISK_LOW] = fmt_n_pct(int((r == "low").sum()), n)
            row[RISK_UNKNOWN] = fmt_n_pct(int((~np.isin(r, ["high", "low"])).sum()), n)
        for key, name in easix_cols:
            x = cols[key][m]
            x = x[np.isfinite(x)]
            cell = _continuous_cell(x, np.zeros(x.size, dtype=bool), "median_iqr", _fmt2)
            row[f"{name}, median (IQR)"] = f"{cell}, n={x.size}" if x.size else DASH
        rows.append(row)
    notes = [f"Pre-infusion values, per analyte: {rule} (cartrial.grading.risk)."]
    if hx is not None:
        notes.append(
            "CAR-HEMATOTOX (Rejeski 2021): ANC < 1.2 × 10⁹/L, haemoglobin < 9.0 "
            "g/dL and CRP ≥ 3.0 mg/dL 1 point each; platelets 75–175 × 10⁹/L 1, "
            "< 75 2; ferritin 650–2000 ng/mL 1, > 2000 2; low risk 0–1, high ≥ 2. "
            "Not determinable: markers missing that could change the class "
            "(missing is never scored 0)."
        )
    else:
        notes.append(
            "CAR-HEMATOTOX not shown: no ANC, haemoglobin, platelet, CRP or "
            "ferritin value before infusion."
        )
    if easix_cols:
        notes.append(
            "EASIX = LDH (U/L) × creatinine (mg/dL) / platelets (× 10⁹/L) (Luft "
            "2017); m-EASIX uses CRP (mg/dL) instead of creatinine (Pennisi 2021); "
            "median (IQR) of the n patients with all three values."
        )
    else:
        notes.append(
            "EASIX/m-EASIX not shown: no patient has LDH, platelets and creatinine "
            "or CRP before infusion."
        )
    if len(easix_cols) == 1:
        lacking = "creatinine" if easix_cols[0][0] == "m_easix" else "CRP"
        notes.append(
            f"{'EASIX' if lacking == 'creatinine' else 'm-EASIX'} not shown: no "
            f"{lacking} value before infusion."
        )
    return pd.DataFrame(rows), " ".join(notes), ""


def continuous_risk_covariates(
    ex: pd.DataFrame | None, patients: pd.DataFrame
) -> dict[str, pd.Series]:
    """log2 EASIX and log2 m-EASIX per analysed patient (index: patient_id as text) for
    the Cox table, each only when at least two patients have distinct values."""
    if ex is None:
        return {}
    ids = patients["patient_id"].astype(str)
    out = {}
    for col, title in (
        ("log2_easix", "EASIX, pre-infusion (log2)"),
        ("log2_m_easix", "m-EASIX, pre-infusion (log2)"),
    ):
        v = ex[col].reindex(ids).astype(float)
        v.index = ids.to_numpy()
        if v.dropna().nunique() >= 2:
            out[title] = v
    return out


def cox_continuous_table(
    d: pd.DataFrame,
    values: pd.Series,
    title: str,
    level: str,
    settings: ReportSettings,
    endpoint: str,
) -> pd.DataFrame:
    """Univariable Cox HR per unit of a continuous covariate (log2 EASIX: per doubling),
    one row in ``cox_subgroup_table``'s columns; patients without the value left out.
    NE with the reason when there are no events, fewer than two distinct values or the
    likelihood has no finite maximum (e.g. the events all in the highest values)."""
    d = d.assign(patient_id=d["patient_id"].astype(str)).set_index("patient_id")
    x = values.reindex(d.index).to_numpy(dtype=float)
    ok = np.isfinite(x)
    t = d["time_days"].to_numpy(dtype=float)[ok]
    e = d["event"].to_numpy(dtype=int)[ok]
    level_ci = f"HR ({100 * settings.conf_level:g}% CI)"
    row: dict[str, Any] = {
        "Endpoint": endpoint,
        "Subgroup": title,
        "Level": level,
        "N": int(ok.sum()),
        "Events": int(e.sum()),
        "p": "",
        "hr": np.nan,
        "lower": np.nan,
        "upper": np.nan,
    }
    why = ""
    if e.sum() == 0:
        why = "no events"
    elif np.unique(x[ok]).size < 2:
        why = "one value"
    else:
        try:
            res = cox_fit(t, e, pd.DataFrame({"x": x[ok]}), settings.conf_level)
            if getattr(res, "monotone", False):
                why = "monotone likelihood, no finite estimate"
            elif not getattr(res, "converged", True):
                why = "no convergence"
            else:
                r = res.summary.iloc[0]
                row.update(
                    {
                        level_ci: f"{r['hr']:.2f} ({r['lower']:.2f}{DASH}{r['upper']:.2f})",
                        "p": fmt_p(float(r["p"])),
                        "hr": round(float(r["hr"]), 4),
                        "lower": round(float(r["lower"]), 4),
                        "upper": round(float(r["upper"]), 4),
                    }
                )
        except (ValueError, np.linalg.LinAlgError) as exc:
            why = f"not estimable ({exc})"
    if why:
        row[level_ci] = f"NE ({why})"
    cols = [c if c != "HR (95% CI)" else level_ci for c in COX_COLUMNS]
    return pd.DataFrame([row], columns=cols)
