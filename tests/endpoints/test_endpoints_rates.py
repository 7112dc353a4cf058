"""Response rates (ORR, CR, CR/CRi, MRD-negative CR/CRi) with binomial intervals.

Counts are worked by hand from the data; the Tan 2023 figures are from the paper (ORR 19/20,
Wilson 76.4-99.1%; CR 17/20, 64.0-94.8%), and the intervals are also checked against
an independent Wilson formula and SciPy's beta quantiles (Clopper-Pearson).
"""

from __future__ import annotations

import math
from statistics import NormalDist

import pytest

from cartrial.cohort import load_cohort
from cartrial.endpoints import response_rates

PATIENTS = "patient_id,infused\nR1,yes\nR2,yes\nR3,yes\nR4,yes\nR5,yes\nR6,yes\nR7,no\nR8,\n"
EVENTS = """
patient_id,day,event,response,mrd
R1,28,response,CR,negative
R2,28,response,CRi,positive
R3,28,response,PR,negative
R4,28,response,NR,
R5,60,response,CR,negative
R7,28,response,CR,negative
R8,14,response,CRh,1e-5
"""
# safety population (infused = yes): R1..R6 -> n = 6; R7 (no) and R8 (blank: missing,
# never infused by default) excluded
# ORR: R1 CR, R2 CRi, R3 PR = 3; CR: R1 = 1; CR/CRi(/CRh): R1, R2 = 2
# MRD-negative CR/CRi: R1 (negative) = 1
# not assessed in 0-35: R5 (day 60), R6 (never) = 2
EXPECTED = {"ORR": 3, "CR": 1, "CR/CRi": 2, "MRD-negative CR/CRi": 1}
N = 6


@pytest.fixture(scope="module")
def cohort(tmp_path_factory, make_cohort_dir):
    return load_cohort(
        make_cohort_dir(tmp_path_factory.mktemp("rates"), patients=PATIENTS, events=EVENTS)
    )


def test_hand_worked_counts(cohort):
    rates = response_rates(cohort).set_index("measure")
    assert set(rates.index) == set(EXPECTED)
    for measure, k in EXPECTED.items():
        assert int(rates.loc[measure, "k"]) == k, measure
        assert int(rates.loc[measure, "n"]) == N, measure
        assert int(rates.loc[measure, "not_assessed"]) == 2
        assert rates.loc[measure, "estimate"] == pytest.approx(k / N)
        assert rates.loc[measure, "population"] == "SAF"


def test_screen_failure_with_blank_infused_is_not_in_the_denominator(cohort):
    """Regression: a blank infused was read as infused (ORR 8/10 instead of 8/9)."""
    rates = response_rates(cohort).set_index("measure")
    assert int(rates.loc["ORR", "n"]) == N  # R8 (blank) is not counted


def test_response_evaluable_denominator(cohort):
    # EFF: SAF patients assessed in the window (not NE): R1, R2, R3, R4 -> n = 4
    rates = response_rates(cohort, population="EFF").set_index("measure")
    assert (int(rates.loc["ORR", "k"]), int(rates.loc["ORR", "n"])) == (3, 4)


def test_window_option_changes_counts(cohort):
    rates = response_rates(cohort, window=(0, 90)).set_index("measure")
    # R5's day-60 CR now counts
    assert int(rates.loc["ORR", "k"]) == 4 and int(rates.loc["CR", "k"]) == 2
    assert int(rates.loc["ORR", "not_assessed"]) == 1


def test_tan2023_counts():
    rates = response_rates(load_cohort("tan2023")).set_index("measure")
    assert (int(rates.loc["ORR", "k"]), int(rates.loc["ORR", "n"])) == (19, 20)
    assert (int(rates.loc["CR", "k"]), int(rates.loc["CR", "n"])) == (17, 20)


def _wilson(k: int, n: int, conf: float = 0.95) -> tuple[float, float]:
    """Wilson score interval (Wilson 1927), written out from the textbook formula."""
    z = NormalDist().inv_cdf(0.5 + conf / 2)
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return centre - half, centre + half


def test_tan2023_wilson_intervals_match_paper_and_formula():
    rates = response_rates(load_cohort("tan2023"), method="wilson").set_index("measure")
    for measure, k, lo_pub, hi_pub in (("ORR", 19, 76.4, 99.1), ("CR", 17, 64.0, 94.8)):
        row = rates.loc[measure]
        assert round(100 * row["lower"], 1) == lo_pub
        assert round(100 * row["upper"], 1) == hi_pub
        lo, hi = _wilson(k, 20)
        assert row["lower"] == pytest.approx(lo, abs=1e-12)
        assert row["upper"] == pytest.approx(hi, abs=1e-12)
        assert row["estimate"] == pytest.approx(k / 20)
        assert row["method"] == "wilson"


def test_exact_interval_matches_beta_quantiles(cohort):
    from scipy.stats import beta

    rates = response_rates(cohort, method="clopper-pearson", conf_level=0.9).set_index("measure")
    # Clopper-Pearson: Beta(k, n-k+1) 5% and Beta(k+1, n-k) 95% quantiles, k=3, n=6
    lo, hi = beta.ppf(0.05, 3, 6 - 3 + 1), beta.ppf(0.95, 3 + 1, 6 - 3)
    assert rates.loc["ORR", "lower"] == pytest.approx(lo, abs=1e-9)
    assert rates.loc["ORR", "upper"] == pytest.approx(hi, abs=1e-9)
