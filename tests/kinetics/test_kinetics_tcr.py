"""TCR repertoire diversity: hand-worked examples, SciPy's entropy, table == per-sample."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import entropy

from cartrial.kinetics.tcr import diversity, diversity_table, hill_number, rarefy


def test_hand_worked_example():
    # counts 5, 2, 1, 1, 1: n = 10 reads, S = 5 clones, p = .5 .2 .1 .1 .1
    d = diversity([5, 2, 1, 1, 1], top_n=2)
    H = -(0.5 * math.log(0.5) + 0.2 * math.log(0.2) + 3 * 0.1 * math.log(0.1))
    assert d["shannon"] == pytest.approx(H)  # 1.35928...
    assert d["evenness"] == pytest.approx(H / math.log(5))
    assert d["clonality"] == pytest.approx(1 - H / math.log(5))
    D = 0.25 + 0.04 + 3 * 0.01  # Σp² = 0.32
    assert d["simpson"] == pytest.approx(D)
    assert d["gini_simpson"] == pytest.approx(0.68) and d["inverse_simpson"] == pytest.approx(
        1 / 0.32
    )
    assert d["top2_fraction"] == pytest.approx(0.7)
    # Chao1: f1 = 3 singletons, f2 = 1 doubleton -> 5 + 9/2 · 9/10 = 9.05
    assert d["chao1"] == pytest.approx(9.05)
    assert d["hill_0"] == 5 and d["hill_1"] == pytest.approx(math.exp(H))
    assert d["hill_2"] == pytest.approx(1 / D)


def test_chao1_without_doubletons_uses_the_bias_corrected_form():
    # counts 1,1,1,3: S = 4, f1 = 3, f2 = 0, n = 6 -> 4 + 3·2/2 · 5/6 = 6.5
    assert diversity([1, 1, 1, 3])["chao1"] == pytest.approx(6.5)


def test_single_clone_and_empty_sample():
    one = diversity([7, 0])
    assert one["shannon"] == 0 and math.isnan(one["evenness"]) and one["simpson"] == 1
    empty = diversity([0, 0])
    assert empty["n_clones"] == 0 and math.isnan(empty["shannon"])


def test_bad_counts_are_refused():
    with pytest.raises(ValueError, match="whole numbers"):
        diversity([1.5, 2])
    with pytest.raises(ValueError, match="whole numbers"):
        diversity([-1, 2])


@settings(max_examples=80, deadline=None)
@given(st.lists(st.integers(0, 10_000), min_size=1, max_size=40).filter(lambda c: sum(c) > 0))
def test_shannon_matches_scipy_and_hill_numbers_are_ordered(counts):
    d = diversity(counts)
    assert d["shannon"] == pytest.approx(entropy(counts), abs=1e-12)
    p = np.asarray(counts, float) / sum(counts)
    assert d["hill_1"] == pytest.approx(math.exp(entropy(counts)))
    # Hill numbers do not increase with the order q; 0D = S >= 1D >= 2D = 1/D >= 1
    assert d["hill_0"] + 1e-9 >= d["hill_1"] >= d["hill_2"] - 1e-9 >= 1 - 1e-9
    assert hill_number(p, 0.5) >= d["hill_1"] - 1e-9
    assert d["chao1"] >= d["n_clones"]


def test_table_equals_per_sample_results():
    rng = np.random.default_rng(1)
    rows = []
    for s in ("pre", "d28", "m3"):
        counts = rng.geometric(0.2, size=int(rng.integers(5, 60)))
        rows += [(s, f"clone{i}", int(c)) for i, c in enumerate(counts)]
    rows.append(("m3", "zero", 0))
    df = pd.DataFrame(rows, columns=["sample", "clone", "count"]).sample(frac=1, random_state=3)
    t = diversity_table(df, top_n=5).set_index("sample")
    for s, sub in df.groupby("sample"):
        ref = diversity(sub["count"].to_numpy(), top_n=5)
        for key, val in ref.items():
            assert t.loc[s, key] == pytest.approx(val, rel=1e-12), (s, key)


def test_rarefaction_is_seeded_and_keeps_depth():
    counts = np.array([500, 300, 100, 50, 25, 25])
    a = rarefy(counts, 200, seed=9)
    assert a.sum() == 200 and (a <= counts).all()
    np.testing.assert_array_equal(a, rarefy(counts, 200, seed=9))
    with pytest.raises(ValueError, match="cannot down-sample 1000 reads to 2000"):
        rarefy(counts, 2000)
    df = pd.DataFrame({"sample": ["x"] * 6 + ["y"] * 2, "count": [*counts, 3, 4]})
    t = diversity_table(df, rarefy_to=100, seed=1)
    assert t["sample"].tolist() == ["x"] and t["n_reads"].iloc[0] == 100
    assert "1 sample(s) with fewer than 100 reads left out" in t.attrs["notes"]
    # down-sampling lowers the observed richness on average, never raises it
    assert t["n_clones"].iloc[0] <= 6
