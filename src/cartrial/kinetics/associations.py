"""Associations of CAR-T kinetics with outcomes (tidy results, SciPy tests).

* Peak (or any NCA parameter) by group: Mann–Whitney U (two-sided, SciPy's exact/asymptotic
  choice) and Welch's unequal-variance t-test, optionally on log10 values (CAR-T exposure is
  log-normal: the t-test on logs compares geometric means; the ratio of geometric means and
  its Welch 95% CI are reported). Three or more groups: Kruskal–Wallis and a classical one-way
  ANOVA on the (log) values.
* Recovery vs severe infection (any 2×2 of two yes/no columns): Pearson chi-square with Yates
  continuity correction and Fisher's exact test (SciPy), odds ratio (sample OR from Fisher).

These are exploratory analyses for the report; p-values are not adjusted for multiplicity.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from cartrial.cohort.vocab import AE_TERMS, YES_NO, canonical

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd


def compare_groups(
    table: pd.DataFrame,
    group: str,
    value: str = "cmax",
    log: bool = True,
) -> pd.DataFrame:
    """Compare ``value`` between the levels of ``group``; one row per test (tidy).

    Columns: parameter, group, test, statistic, p_value, n (per level, as text), estimate
    (ratio of geometric means level2/level1 for the log Welch test, difference of means
    otherwise), ci_lower, ci_upper, note. Rows with a missing value or group are left out;
    with ``log`` non-positive values are left out of the t-test (counted in the note) but
    kept in the rank test.
    """
    import pandas as pd
    from scipy import stats

    df = table[[group, value]].copy()
    df[value] = pd.to_numeric(df[value], errors="coerce")
    df = df.dropna()
    levels = sorted(df[group].unique(), key=str)
    samples = [df.loc[df[group] == lv, value].to_numpy(dtype=float) for lv in levels]
    n_text = ", ".join(f"{lv}: {len(s)}" for lv, s in zip(levels, samples, strict=True))
    rows: list[dict[str, Any]] = []
    base = {"parameter": value, "group": group, "n": n_text}
    if len(levels) < 2 or any(len(s) == 0 for s in samples):
        return pd.DataFrame(
            [
                {
                    **base,
                    "test": "none",
                    "statistic": np.nan,
                    "p_value": np.nan,
                    "estimate": np.nan,
                    "ci_lower": np.nan,
                    "ci_upper": np.nan,
                    "note": "fewer than two groups with data",
                }
            ]
        )
    if log:
        tsamples = [np.log10(s[s > 0]) for s in samples]
        dropped = sum(int((s <= 0).sum()) for s in samples)
        tnote = (
            f"log10 scale; {dropped} non-positive value(s) left out" if dropped else "log10 scale"
        )
    else:
        tsamples, tnote = samples, "natural scale"
    if len(levels) == 2:
        mw = stats.mannwhitneyu(samples[0], samples[1], alternative="two-sided")
        rows.append(
            {
                **base,
                "test": "Mann-Whitney U",
                "statistic": float(mw.statistic),
                "p_value": float(mw.pvalue),
                "estimate": np.nan,
                "ci_lower": np.nan,
                "ci_upper": np.nan,
                "note": f"{levels[0]} vs {levels[1]}",
            }
        )
        a, b = tsamples
        if len(a) >= 2 and len(b) >= 2:
            wt = stats.ttest_ind(b, a, equal_var=False)
            ci = wt.confidence_interval(0.95)
            est, lo, hi = float(b.mean() - a.mean()), float(ci.low), float(ci.high)
            if log:  # back-transform: ratio of geometric means
                est, lo, hi = 10**est, 10**lo, 10**hi
            rows.append(
                {
                    **base,
                    "test": "Welch t",
                    "statistic": float(wt.statistic),
                    "p_value": float(wt.pvalue),
                    "estimate": est,
                    "ci_lower": lo,
                    "ci_upper": hi,
                    "note": f"{tnote}; estimate = "
                    f"{'ratio of geometric means' if log else 'difference'} "
                    f"{levels[1]}/{levels[0]}",
                }
            )
        else:
            rows.append(
                {
                    **base,
                    "test": "Welch t",
                    "statistic": np.nan,
                    "p_value": np.nan,
                    "estimate": np.nan,
                    "ci_lower": np.nan,
                    "ci_upper": np.nan,
                    "note": "fewer than 2 values in a group",
                }
            )
    else:
        kw = stats.kruskal(*samples)
        rows.append(
            {
                **base,
                "test": "Kruskal-Wallis",
                "statistic": float(kw.statistic),
                "p_value": float(kw.pvalue),
                "estimate": np.nan,
                "ci_lower": np.nan,
                "ci_upper": np.nan,
                "note": f"{len(levels)} groups",
            }
        )
        if all(len(s) >= 2 for s in tsamples):
            an = stats.f_oneway(*tsamples)
            rows.append(
                {
                    **base,
                    "test": "one-way ANOVA",
                    "statistic": float(an.statistic),
                    "p_value": float(an.pvalue),
                    "estimate": np.nan,
                    "ci_lower": np.nan,
                    "ci_upper": np.nan,
                    "note": tnote,
                }
            )
    return pd.DataFrame(rows)


def _as_bool(series: pd.Series, name: str) -> pd.Series:
    import pandas as pd

    def conv(x: Any) -> Any:
        if x is None or (isinstance(x, float) and np.isnan(x)) or x is pd.NA:
            return pd.NA
        if isinstance(x, bool | np.bool_):
            return bool(x)
        c = canonical(x, YES_NO)
        if c is None:
            raise ValueError(f"column {name!r}: found {x!r}; expected yes/no (true/false, 1/0)")
        return c == "yes"

    uniques = {u: conv(u) for u in series.dropna().unique()}
    return series.map(uniques).astype("boolean")


def association_2x2(table: pd.DataFrame, exposure: str, outcome: str) -> pd.DataFrame:
    """2×2 association of two yes/no columns (e.g. ``recovered`` vs ``severe_infection``).

    Returns one row per test (chi-square with Yates correction; Fisher exact) with the
    counts a (exposed, outcome), b (exposed, no outcome), c, d and the sample odds ratio
    (a·d)/(b·c). Rows with either value missing are left out.
    """
    import pandas as pd
    from scipy import stats

    x = _as_bool(table[exposure], exposure)
    y = _as_bool(table[outcome], outcome)
    ok = x.notna() & y.notna()
    x, y = x[ok].astype(bool).to_numpy(), y[ok].astype(bool).to_numpy()
    a, b = int((x & y).sum()), int((x & ~y).sum())
    c, d = int((~x & y).sum()), int((~x & ~y).sum())
    obs = np.array([[a, b], [c, d]])
    counts = {
        "exposure": exposure,
        "outcome": outcome,
        "a": a,
        "b": b,
        "c": c,
        "d": d,
        "n": a + b + c + d,
    }
    rows = []
    fe = stats.fisher_exact(obs)
    rows.append(
        {
            **counts,
            "test": "Fisher exact",
            "statistic": float(fe.statistic),
            "p_value": float(fe.pvalue),
            "note": "statistic = sample odds ratio",
        }
    )
    if (obs.sum(axis=0) > 0).all() and (obs.sum(axis=1) > 0).all():
        chi = stats.chi2_contingency(obs, correction=True)
        rows.append(
            {
                **counts,
                "test": "chi-square (Yates)",
                "statistic": float(chi.statistic),
                "p_value": float(chi.pvalue),
                "note": "expected count < 5 in a cell: prefer Fisher"
                if (chi.expected_freq < 5).any()
                else "",
            }
        )
    else:
        rows.append(
            {
                **counts,
                "test": "chi-square (Yates)",
                "statistic": np.nan,
                "p_value": np.nan,
                "note": "a row or column total is 0",
            }
        )
    return pd.DataFrame(rows)


def recovery_vs_infection(
    recon: pd.DataFrame,
    adverse_events: pd.DataFrame,
    analyte: str = "cd3",
    min_grade: int = 3,
    term: str = "infection",
) -> pd.DataFrame:
    """Recovery of ``analyte`` (yes/no from ``reconstitution_table``) vs severe infection
    (an adverse event ``term`` of grade >= ``min_grade``, CTCAE v5 grade 3+ by default)."""
    import pandas as pd

    sub = recon.loc[
        (recon["analyte"] == analyte) & (recon["status"] != "no reference range"),
        ["patient_id", "recovered"],
    ].copy()
    sub["patient_id"] = sub["patient_id"].astype(str)
    severe: set[str] = set()
    if adverse_events is not None and len(adverse_events):
        names = {t: canonical(t, AE_TERMS) for t in adverse_events["term"].dropna().unique()}
        terms = adverse_events["term"].map(names)
        grades = pd.to_numeric(adverse_events["grade"], errors="coerce")
        mask = (terms == term) & (grades >= min_grade)
        severe = set(adverse_events.loc[mask.fillna(False).to_numpy(), "patient_id"].astype(str))
    sub["severe_infection"] = sub["patient_id"].isin(severe)
    return association_2x2(sub, "recovered", "severe_infection")
