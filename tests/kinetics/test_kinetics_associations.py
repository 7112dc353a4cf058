"""Kinetics vs outcome: group comparisons and 2×2 associations (tidy results)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from cartrial.kinetics.associations import (
    association_2x2,
    compare_groups,
    recovery_vs_infection,
)


def _table():
    rng = np.random.default_rng(0)
    cr = 10 ** rng.normal(4.5, 0.5, 15)
    nr = 10 ** rng.normal(3.8, 0.5, 8)
    return pd.DataFrame({"response": ["CR"] * 15 + ["NR"] * 8 + [np.nan], "cmax": [*cr, *nr, 1e5]})


def test_two_groups_mann_whitney_and_welch_on_log_scale():
    t = _table()
    res = compare_groups(t, "response", "cmax").set_index("test")
    cr = t.loc[t["response"] == "CR", "cmax"].to_numpy()
    nr = t.loc[t["response"] == "NR", "cmax"].to_numpy()
    mw = stats.mannwhitneyu(cr, nr, alternative="two-sided")
    assert res.loc["Mann-Whitney U", "p_value"] == pytest.approx(mw.pvalue)
    wt = stats.ttest_ind(np.log10(nr), np.log10(cr), equal_var=False)
    assert res.loc["Welch t", "p_value"] == pytest.approx(wt.pvalue)
    # ratio of geometric means NR/CR, by hand from the log10 means
    gm = 10 ** (np.log10(nr).mean() - np.log10(cr).mean())
    assert res.loc["Welch t", "estimate"] == pytest.approx(gm)
    lo, hi = res.loc["Welch t", ["ci_lower", "ci_upper"]]
    assert lo < gm < hi and res.loc["Welch t", "n"] == "CR: 15, NR: 8"


def test_natural_scale_and_three_groups():
    t = _table()
    nat = compare_groups(t, "response", "cmax", log=False).set_index("test")
    cr = t.loc[t["response"] == "CR", "cmax"]
    nr = t.loc[t["response"] == "NR", "cmax"]
    assert nat.loc["Welch t", "estimate"] == pytest.approx(nr.mean() - cr.mean())
    t3 = t.dropna().assign(response=["a", "b", "c"] * 7 + ["a", "b"])
    res = compare_groups(t3, "response", "cmax").set_index("test")
    groups = [t3.loc[t3["response"] == g, "cmax"] for g in "abc"]
    assert res.loc["Kruskal-Wallis", "p_value"] == pytest.approx(stats.kruskal(*groups).pvalue)
    one = compare_groups(t.loc[t["response"] == "CR"], "response", "cmax")
    assert one["test"].iloc[0] == "none"


def test_log_scale_leaves_out_non_positive_values_with_a_note():
    t = pd.DataFrame({"g": ["a"] * 3 + ["b"] * 3, "cmax": [0.0, 10.0, 20.0, 30, 40, 50]})
    res = compare_groups(t, "g", "cmax").set_index("test")
    assert "1 non-positive value(s) left out" in res.loc["Welch t", "note"]
    # the rank test keeps the 0
    assert res.loc["Mann-Whitney U", "p_value"] == pytest.approx(
        stats.mannwhitneyu([0, 10, 20], [30, 40, 50], alternative="two-sided").pvalue
    )


def test_2x2_counts_and_tests():
    df = pd.DataFrame(
        {
            "recovered": ["yes"] * 6 + ["no"] * 8 + [None],
            "severe_infection": [
                True,
                False,
                False,
                False,
                False,
                False,
                True,
                True,
                True,
                True,
                True,
                False,
                False,
                False,
                True,
            ],
        }
    )
    res = association_2x2(df, "recovered", "severe_infection").set_index("test")
    # a = recovered & infected = 1, b = 5, c = 5, d = 3
    assert res.loc["Fisher exact", ["a", "b", "c", "d", "n"]].tolist() == [1, 5, 5, 3, 14]
    fe = stats.fisher_exact([[1, 5], [5, 3]])
    assert res.loc["Fisher exact", "p_value"] == pytest.approx(fe.pvalue)
    assert res.loc["Fisher exact", "statistic"] == pytest.approx((1 * 3) / (5 * 5))
    chi = stats.chi2_contingency([[1, 5], [5, 3]], correction=True)
    assert res.loc["chi-square (Yates)", "p_value"] == pytest.approx(chi.pvalue)
    assert "prefer Fisher" in res.loc["chi-square (Yates)", "note"]
    with pytest.raises(ValueError, match="column 'recovered': found 'maybe'"):
        association_2x2(df.assign(recovered="maybe"), "recovered", "severe_infection")


def test_recovery_vs_severe_infection_from_adverse_events():
    recon = pd.DataFrame(
        {
            "patient_id": list("ABCD"),
            "analyte": "cd3",
            "status": "x",
            "recovered": [True, True, False, False],
        }
    )
    ae = pd.DataFrame(
        {"patient_id": ["C", "D", "A"], "term": ["sepsis", "Infection", "CRS"], "grade": [3, 2, 4]}
    )
    res = recovery_vs_infection(recon, ae).set_index("test")
    # severe (grade >= 3) infection only in C (sepsis is an infection alias); A's CRS is not
    assert res.loc["Fisher exact", ["a", "b", "c", "d"]].tolist() == [0, 2, 1, 1]
    assert math.isfinite(res.loc["Fisher exact", "p_value"])
