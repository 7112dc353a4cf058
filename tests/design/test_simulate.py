"""Simulated operating characteristics: vectorised engine vs per-trial loop and vs exact
probabilities (enumeration / closed form) within Monte-Carlo error."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cartrial.design.escalation import BOIN, CRM, ThreePlusThree, crm_skeleton
from cartrial.design.simulate import (
    boin_exact_selection,
    draw_uniforms,
    simulate_3plus3,
    simulate_boin,
    simulate_boin_loop,
    simulate_crm,
    three_plus_three_exact,
)


@settings(max_examples=12, deadline=None)
@given(
    st.lists(st.floats(0.0, 0.9), min_size=4, max_size=4).map(sorted),
    st.integers(0, 10_000),
    st.sampled_from([1, 3]),
    st.sampled_from([100, 9, 6]),
)
def test_vectorised_boin_equals_loop_trial_by_trial(p_true, seed, cohort_size, n_earlystop):
    design = BOIN(0.25, 4, cohort_size=cohort_size, n_cohorts=8, n_earlystop=n_earlystop)
    u = draw_uniforms(60, 4, cohort_size * 8, seed)
    vec = simulate_boin(design, p_true, u=u)
    ref = simulate_boin_loop(design, p_true, u=u)
    np.testing.assert_array_equal(vec.n_per_dose, ref.n_per_dose)
    np.testing.assert_array_equal(vec.dlt_per_dose, ref.dlt_per_dose)
    np.testing.assert_array_equal(vec.selected, ref.selected)
    np.testing.assert_array_equal(vec.stopped_early, ref.stopped_early)


@pytest.mark.parametrize("p_true", [[0.1, 0.3, 0.5], [0.02, 0.05, 0.3], [0.45, 0.6, 0.7]])
def test_boin_selection_matches_exact_enumeration_within_mc_error(p_true):
    design = BOIN(0.3, 3, cohort_size=3, n_cohorts=4)
    exact = boin_exact_selection(design, p_true)
    assert exact.sum() == pytest.approx(1.0)
    oc = simulate_boin(design, p_true, n_trials=20_000, seed=11)
    se = np.sqrt(exact * (1 - exact) / oc.n_trials)
    assert np.all(np.abs(oc.selection - exact) <= 4 * se + 1e-9)


@pytest.mark.parametrize("p_true", [[0.05, 0.1, 0.2, 0.3, 0.45], [0.2, 0.3, 0.4, 0.5, 0.6]])
def test_three_plus_three_matches_closed_form_within_mc_error(p_true):
    exact = three_plus_three_exact(p_true)
    oc = simulate_3plus3(ThreePlusThree(5), p_true, n_trials=20_000, seed=5)
    se = np.sqrt(exact * (1 - exact) / oc.n_trials)
    assert np.all(np.abs(oc.selection - exact) <= 4 * se + 1e-9)


def test_three_plus_three_closed_form_by_hand():
    # one dose, p = 1/3: pass = (2/3)^3 + 3(1/3)(2/3)^2(2/3)^3 = 8/27 + 4/9 * 8/27
    e = 8 / 27 + (4 / 9) * (8 / 27)
    np.testing.assert_allclose(three_plus_three_exact([1 / 3]), [e, 1 - e])


def test_seeded_simulation_reproduces_and_seeds_differ():
    design = BOIN(0.3, 5)
    p = [0.05, 0.1, 0.2, 0.3, 0.45]
    a = simulate_boin(design, p, 2000, seed=7)
    b = simulate_boin(design, p, 2000, seed=7)
    c = simulate_boin(design, p, 2000, seed=8)
    np.testing.assert_array_equal(a.selected, b.selected)
    assert not np.array_equal(a.n_per_dose, c.n_per_dose)


def test_boin_all_doses_toxic_stops_early():
    oc = simulate_boin(BOIN(0.3, 3), [0.8, 0.85, 0.9], 4000, seed=2)
    m = oc.metrics()
    # stopping needs >= 3/3 at dose 1 (n=3) or 4/6 ...: P(3/3 | 0.8) = 0.512 alone
    assert m["p_stop_early"] > 0.9
    assert oc.selection[-1] == pytest.approx(m["p_stop_early"])
    assert m["mean_trial_size"] < 12


def test_oc_summary_shapes_and_mc_se():
    oc = simulate_boin(BOIN(0.3, 3), [0.1, 0.3, 0.5], 1000, seed=1)
    s = oc.summary()
    assert list(s["dose"]) == ["1", "2", "3", "none"]
    assert s["p_select"].sum() == pytest.approx(1.0)
    np.testing.assert_allclose(s["mc_se"], np.sqrt(s["p_select"] * (1 - s["p_select"]) / 1000))
    assert oc.n_per_dose.sum(axis=1).max() <= 30


def test_crm_vectorised_equals_decide_loop():
    sk = tuple(crm_skeleton(0.05, 0.3, 1, 4))
    design = CRM(sk, 0.3, cohort_size=3, n_cohorts=6)
    p = [0.1, 0.25, 0.45, 0.6]
    u = draw_uniforms(40, 4, 18, 3)
    oc = simulate_crm(design, p, u=u)
    for t in range(40):
        n = np.zeros(4, dtype=int)
        y = np.zeros(4, dtype=int)
        d, stopped = 0, False
        for _ in range(6):
            y[d] += int((u[t, d, n[d] : n[d] + 3] < p[d]).sum())
            n[d] += 3
            dec = design.decide(n, y, d)
            if dec.action == "stop":
                stopped = True
                break
            d = dec.next_dose
        np.testing.assert_array_equal(oc.n_per_dose[t], n)
        assert oc.stopped_early[t] == stopped
        sel = design.select_mtd(n, y)
        assert oc.selected[t] == (-1 if stopped or sel is None else sel)


def test_oc_figure_bars_are_the_simulated_values():
    from cartrial.design.simulate import plot_operating_characteristics

    p = [0.1, 0.3, 0.5]
    a = simulate_boin(BOIN(0.3, 3), p, 500, seed=1)
    b = simulate_3plus3(ThreePlusThree(3), p, 500, seed=1)
    fig = plot_operating_characteristics([a, b])
    sel_ax, n_ax = fig.axes[:2]
    heights = [bar.get_height() for bar in sel_ax.patches]
    np.testing.assert_allclose(heights, np.concatenate([a.selection, b.selection]))
    heights = [bar.get_height() for bar in n_ax.patches]
    np.testing.assert_allclose(
        heights, np.concatenate([a.n_per_dose.mean(axis=0), b.n_per_dose.mean(axis=0)])
    )


def test_boin_matches_published_simulation_within_mc_error():
    """simFastBOIN introduction vignette (CRAN 1.3.2, Homma 2025; 'results match R BOIN
    within 0.5%'): target 0.30, p_true 0.10/0.25/0.40/0.55/0.70, 10 cohorts of 3,
    n_earlystop 18, 1000 trials -> MTD selection 10.8/52.4/33.8/2.8/0.1 %, no MTD 0.1 %;
    mean patients 6.8/11.9/7.7/1.8/0.1, total 28.4."""
    pub_sel = np.array([10.8, 52.4, 33.8, 2.8, 0.1, 0.1]) / 100
    pub_pts = np.array([6.8, 11.9, 7.7, 1.8, 0.1])
    design = BOIN(0.30, 5, cohort_size=3, n_cohorts=10, n_earlystop=18)
    oc = simulate_boin(design, [0.10, 0.25, 0.40, 0.55, 0.70], n_trials=20_000, seed=1)
    # MC SE of the difference: published (1000 trials) and ours (20 000) combined;
    # floor 0.2% for the near-zero cells
    se = np.sqrt(pub_sel * (1 - pub_sel) / 1000 + oc.selection * (1 - oc.selection) / 20_000)
    assert np.all(np.abs(oc.selection - pub_sel) <= 3 * np.maximum(se, 0.002))
    # mean patients: published to 0.1 (rounding 0.05) + MC SE of a 1000-trial mean (< 0.2)
    assert np.all(np.abs(oc.n_per_dose.mean(axis=0) - pub_pts) <= 0.3)
    assert oc.n_per_dose.sum(axis=1).mean() == pytest.approx(28.4, abs=0.3)
