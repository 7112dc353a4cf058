"""Stopping boundaries and sample size / power against hand-worked and published values."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import binom

from cartrial.design.monitor import (
    bayes_stopping_boundary,
    boundary_oc,
    obrien_fleming_count_boundary,
    pocock_count_boundary,
)
from cartrial.design.power import (
    exact_single_stage,
    logrank_z,
    schoenfeld_events,
    simon_two_stage,
    simulate_landmark_power,
    simulate_logrank_power,
)


def test_bayes_boundary_hand_worked():
    # Beta(1,1): P(p > .3 | 1/3) = P(Bin(4,.3) <= 1) = 0.6517; | 2/3 -> 0.9163 > 0.9
    assert bayes_stopping_boundary([3], 0.3, 0.9).tolist() == [2]
    # n = 1: P(p > .3 | 1/1) = 1 - .3^2 = 0.91 > 0.9
    assert bayes_stopping_boundary([1], 0.3, 0.9).tolist() == [1]
    # n = 1, cutoff 0.95: never (0.91)
    assert bayes_stopping_boundary([1], 0.3, 0.95).tolist() == [2]


@pytest.mark.parametrize("p", [0.1, 0.3, 0.5])
def test_boundary_oc_exact_equals_monte_carlo(p):
    looks = np.array([3, 6, 9, 12])
    bnd = bayes_stopping_boundary(looks, 0.3, 0.9)
    exact = boundary_oc(looks, bnd, p)
    rng = np.random.default_rng(4)
    x = (rng.random((40_000, 12)) < p).cumsum(axis=1)[:, looks - 1]
    crossed = x >= bnd
    stop = crossed.any(axis=1)
    first = np.where(stop, looks[crossed.argmax(axis=1)], 12)
    se = math.sqrt(exact["p_stop"] * (1 - exact["p_stop"]) / 40_000)
    assert abs(stop.mean() - exact["p_stop"]) < 4 * se + 1e-9
    assert abs(first.mean() - exact["expected_n"]) < 0.05


def test_boundary_oc_single_look_is_binomial_tail():
    assert boundary_oc([10], [4], 0.2)["p_stop"] == pytest.approx(binom.sf(3, 10, 0.2))


@pytest.mark.parametrize("maker", [pocock_count_boundary, obrien_fleming_count_boundary])
def test_count_boundaries_control_level_exactly(maker):
    looks = np.arange(5, 31, 5)
    b = maker(looks, 0.2, 0.05)
    assert boundary_oc(looks, b, 0.2)["p_stop"] <= 0.05
    assert np.all(np.diff(b) >= 0)
    # higher true rate -> more stopping
    assert boundary_oc(looks, b, 0.4)["p_stop"] > boundary_oc(looks, b, 0.3)["p_stop"] > 0.05


def test_obf_is_more_conservative_early_than_pocock():
    looks = np.arange(5, 31, 5)
    assert obrien_fleming_count_boundary(looks, 0.2)[0] >= pocock_count_boundary(looks, 0.2)[0]


# Simon, Control Clin Trials 1989;10:1, Table 1 (alpha 0.05, beta 0.20):
# (p0, p1): optimal r1/n1, r/n, EN0, PET0; minimax the same
SIMON = {
    (0.05, 0.25): ((0, 9, 2, 17, 12.0, 0.63), (0, 12, 2, 16, 13.8, 0.54)),
    (0.10, 0.30): ((1, 10, 5, 29, 15.0, 0.74), (1, 15, 5, 25, 19.5, 0.55)),
    (0.20, 0.40): ((3, 13, 12, 43, 20.6, 0.75), (4, 18, 10, 33, 22.3, 0.72)),
    (0.30, 0.50): ((5, 15, 18, 46, 23.6, 0.72), (6, 19, 16, 39, 25.7, 0.67)),
}


@pytest.mark.parametrize("rates", sorted(SIMON))
def test_simon_two_stage_matches_published_table(rates):
    res = simon_two_stage(*rates, alpha=0.05, beta=0.2, n_max=50)
    for kind, want in zip(("optimal", "minimax"), SIMON[rates], strict=True):
        d = res[kind]
        assert (d.r1, d.n1, d.r, d.n) == want[:4], kind
        assert round(d.en0, 1) == want[4] and round(d.pet0, 2) == want[5]
        assert d.alpha <= 0.05 and d.power >= 0.8


@settings(max_examples=15, deadline=None)
@given(st.floats(0.05, 0.5), st.floats(0.15, 0.3))
def test_exact_single_stage_is_minimal(p0, delta):
    p1 = min(p0 + delta, 0.95)
    d = exact_single_stage(p0, p1)
    assert binom.sf(d.r - 1, d.n, p0) <= 0.05 and binom.sf(d.r - 1, d.n, p1) >= 0.8
    n = d.n - 1
    ok = [
        r for r in range(n + 2) if binom.sf(r - 1, n, p0) <= 0.05 and binom.sf(r - 1, n, p1) >= 0.8
    ]
    assert not ok


def test_ahern_single_stage_published():
    # A'Hern, Stat Med 2001;20:859, Table: p0 0.2, p1 0.4, alpha 0.05, beta 0.2 -> 12/35
    d = exact_single_stage(0.2, 0.4)
    assert (d.n, d.r) == (35, 12)


def test_schoenfeld_hand_worked():
    # (1.959964 + 0.841621)^2 / (0.25 * log(0.5)^2) = 65.35
    assert schoenfeld_events(0.5) == pytest.approx(65.346, abs=1e-3)


def test_logrank_z_equals_cartrial_logrank():
    from cartrial.stats import logrank_test

    rng = np.random.default_rng(2)
    t = rng.exponential(10, 40)
    e = rng.random(40) < 0.7
    g = rng.random(40) < 0.5
    z = float(logrank_z(t, e, g)[0])
    ref = logrank_test(t, e, g.astype(int))
    assert z**2 == pytest.approx(ref.statistic, rel=1e-10)


def test_simulated_power_near_schoenfeld():
    # 132 patients, all followed to an event: 132 events -> Schoenfeld power for HR 0.6
    from scipy.stats import norm

    n, hr = 240, 0.6
    expected = norm.cdf(math.sqrt(n * 0.25 * math.log(hr) ** 2) - norm.ppf(0.975))
    sim = simulate_logrank_power(n, hr, 10.0, 1.0, 1e6, n_sims=3000, seed=3)
    assert abs(sim["power"] - expected) < 4 * sim["mc_se"] + 0.02


def test_landmark_power_uses_the_landmark_dataset():
    from cartrial.stats import landmark_analysis

    res = simulate_landmark_power(40, 0.5, 180.0, 0.5, n_sims=200, seed=9, return_data=True)
    d = res["data"]
    i = 0
    lm = landmark_analysis(d["time"][i], d["event"][i], d["sct_day"][i], landmark=90.0)
    assert d["z"][i] ** 2 == pytest.approx(lm.logrank.statistic, rel=1e-8)
    # no effect -> power near alpha
    null = simulate_landmark_power(60, 1.0, 180.0, 0.5, n_sims=3000, seed=1)
    assert abs(null["power"] - 0.05) < 4 * math.sqrt(0.05 * 0.95 / 3000)
