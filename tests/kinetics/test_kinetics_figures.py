"""Kinetics figures: produced, and the plotted data are the input data."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from matplotlib.collections import LineCollection, PathCollection
from matplotlib.figure import Figure

from cartrial.kinetics.figures import (
    age_groups,
    median_iqr_plot,
    peak_boxplot,
    reconstitution_panels,
    spaghetti_plot,
)


def _obs() -> pd.DataFrame:
    rows = [
        ("A", 0, 0.0),
        ("A", 7, 5000.0),
        ("A", 14, 900.0),
        ("A", 28, 30.0),  # 30 < LLOQ
        ("B", 0, 0.0),
        ("B", 4, 200.0),
        ("B", 10, 20000.0),
        ("B", 28, 400.0),
        ("C", 0, 0.0),
        ("C", 7, 800.0),
        ("C", 14, 300.0),
        ("C", 28, 60.0),
    ]
    df = pd.DataFrame(rows, columns=["patient_id", "day", "value"])
    return df.assign(analyte="cart_qpcr", unit="copies/ug", lloq=50.0)


PATIENTS = pd.DataFrame({"patient_id": ["A", "B", "C"], "dose_level": ["low", "high", "low"]})


def _png(fig: Figure) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=40)
    return buf.getvalue()


def test_spaghetti_lines_are_the_quantifiable_values_per_patient():
    fig = spaghetti_plot(_obs(), group="dose_level", patients=PATIENTS)
    assert _png(fig)[:4] == b"\x89PNG"
    ax = fig.axes[0]
    assert ax.get_yscale() == "log"
    lcs = {c.get_gid(): c for c in ax.collections if isinstance(c, LineCollection)}
    assert set(lcs) == {"low", "high"}
    low = [s.tolist() for s in lcs["low"].get_segments()]
    # A without its BLQ day-28 value (and without the day-0 zeros), then C
    assert low == [[[7, 5000], [14, 900]], [[7, 800], [14, 300], [28, 60]]]
    assert [s.tolist() for s in lcs["high"].get_segments()] == [[[4, 200], [10, 20000], [28, 400]]]
    lloq = [ln for ln in ax.lines if ln.get_gid() == "lloq"][0]
    assert list(lloq.get_ydata()) == [50.0, 50.0]
    blq = {
        c.get_gid(): c.get_offsets().tolist()
        for c in ax.collections
        if isinstance(c, PathCollection)
    }
    # BLQ samples drawn at the LLOQ: A day 0 and 28, C day 0 (low); B day 0 (high)
    assert sorted(blq["blq:low"]) == [[0, 50], [0, 50], [28, 50]]
    assert blq["blq:high"] == [[0, 50]]


def test_median_iqr_line_matches_pandas_summary():
    obs = _obs()
    fig = median_iqr_plot(obs)
    line = [ln for ln in fig.axes[0].lines if ln.get_gid() == "all"][0]
    v = obs["value"].where(obs["value"] >= 50, 25.0)  # BLQ as LLOQ/2
    expected = v.groupby(obs["day"]).median()
    np.testing.assert_array_equal(line.get_xdata(), expected.index.to_numpy())
    np.testing.assert_allclose(line.get_ydata(), expected.to_numpy())
    assert "LLOQ/2" in fig.axes[0].get_ylabel()


def test_reconstitution_panels_one_axis_per_analyte():
    obs = pd.DataFrame(
        {
            "patient_id": ["A", "A", "B", "B", "A", "B"],
            "day": [0, 30, 0, 30, 30, 30],
            "analyte": ["cd3", "cd3", "cd3", "cd3", "nk", "nk"],
            "value": [100.0, 500.0, 300.0, 900.0, 80.0, 120.0],
            "unit": "cells/uL",
        }
    )
    fig = reconstitution_panels(obs, analytes=["cd3", "nk", "cd7_t"], ncols=2)
    visible = [ax for ax in fig.axes if ax.get_visible()]
    assert len(visible) == 3
    cd3 = visible[0]
    line = [ln for ln in cd3.lines if ln.get_gid() == "cd3"][0]
    assert line.get_xdata().tolist() == [0, 30] and line.get_ydata().tolist() == [200, 700]
    band = [p for p in cd3.patches if p.get_gid() == "reference:"][0]
    # adult CD3 range of the shipped reference table: 700-2500 cells/uL
    assert (band.get_y(), band.get_y() + band.get_height()) == (700, 2500)
    assert any(t.get_text() == "no data" for t in visible[2].texts)
    _png(fig)


def test_peak_boxplot_points_are_the_values():
    t = pd.DataFrame(
        {"response": ["CR", "CR", "NR", "NR", "CR"], "cmax": [1000.0, 5000.0, 200.0, 0.0, np.nan]}
    )
    fig = peak_boxplot(t, "response")
    pts = {
        c.get_gid(): c.get_offsets()
        for c in fig.axes[0].collections
        if isinstance(c, PathCollection)
    }
    assert sorted(pts["CR"][:, 1].tolist()) == [1000.0, 5000.0]
    assert pts["NR"][:, 1].tolist() == [200.0]  # 0 cannot sit on a log axis
    assert np.all(np.abs(pts["CR"][:, 0] - 1) <= 0.12)
    assert "1 non-positive left out" in fig.axes[0].get_ylabel()
    _png(fig)


def test_missing_group_column_is_a_clear_error():
    with pytest.raises(ValueError, match="group column 'arm'"):
        spaghetti_plot(_obs(), group="arm")


# ---------------------------------------------------------------- issue 13: publication
REFERENCE_CSV = (
    Path(__file__).resolve().parents[2] / "src/cartrial/kinetics/data/reference_ranges.csv"
)


def _messy_obs() -> pd.DataFrame:
    """As a site writes them: unit spellings vary, a missed visit, one patient's day 14
    sampled twice is not the case (one row per patient-day), LLOQ stated per row."""
    rows = [
        ("P1", 0, 0.0), ("P1", 7, 5000.0), ("P1", 14, 900.0), ("P1", 28, 30.0),
        ("P2", 0, 0.0), ("P2", 7, 1200.0), ("P2", 28, 400.0),  # no day 14
        ("P3", 7, 800.0), ("P3", 14, 300.0),  # no day 0, no day 28
        ("P4", 0, 0.0), ("P4", 7, 90.0), ("P4", 14, 60.0), ("P4", 28, 51.0),
    ]  # fmt: skip
    df = pd.DataFrame(rows, columns=["patient_id", "day", "value"])
    return df.assign(analyte="cart_qpcr", unit="copies/ug", lloq=50.0)


def test_every_axis_names_its_unit():
    obs = _messy_obs()
    for fig in (spaghetti_plot(obs), median_iqr_plot(obs)):
        ax = fig.axes[0]
        assert "copies/µg DNA" in ax.get_ylabel()
        assert ax.get_xlabel() == "Days since infusion"
        assert "_" not in ax.get_ylabel() and "_" not in ax.get_title()
    t = pd.DataFrame({"response": ["CR", "NR"], "cmax": [1e4, 1e3], "unit": "copies/ug"})
    ax = peak_boxplot(t, "response").axes[0]
    assert ax.get_ylabel().startswith("Cmax, copies/µg DNA")
    # no unit in the data: the registry's unit, never a bare name
    flow = obs.drop(columns="unit").assign(analyte="cart_flow")
    assert "cells/µL" in median_iqr_plot(flow, "cart_flow").axes[0].get_ylabel()


def test_lloq_line_at_the_observations_lloq():
    obs = _messy_obs()
    for fig in (median_iqr_plot(obs), spaghetti_plot(obs)):
        lloq = [ln for ln in fig.axes[0].lines if ln.get_gid() == "lloq"]
        assert len(lloq) == 1 and list(lloq[0].get_ydata()) == [50.0, 50.0]
        assert lloq[0].get_linestyle() == "--"
    # no LLOQ given: no line
    fig = median_iqr_plot(obs.drop(columns="lloq"))
    assert not [ln for ln in fig.axes[0].lines if ln.get_gid() == "lloq"]


def _n_row(ax, label: str) -> pd.Series:
    texts = [t for t in ax.texts if t.get_gid() == f"n:{label}"]
    return pd.Series([int(t.get_text()) for t in texts], index=[t.get_position()[0] for t in texts])


def test_n_row_is_the_number_of_patients_sampled_each_day():
    obs = _messy_obs()
    ax = median_iqr_plot(obs).axes[0]
    got = _n_row(ax, "")
    want = obs.groupby("day")["patient_id"].nunique()
    assert got.to_dict() == {float(k): v for k, v in want.items()}
    assert got.to_dict() == {0.0: 3, 7.0: 4, 14.0: 3, 28.0: 3}  # by hand
    # by group: one row per group, each its own counts
    pts = pd.DataFrame({"patient_id": ["P1", "P2", "P3", "P4"], "dose": ["a", "b", "a", "a"]})
    ax = median_iqr_plot(obs, group="dose", patients=pts).axes[0]
    merged = obs.merge(pts, on="patient_id")
    for g in ("a", "b"):
        want = merged.loc[merged["dose"] == g].groupby("day")["patient_id"].nunique()
        assert _n_row(ax, g).to_dict() == {float(k): v for k, v in want.items()}
    _png(ax.get_figure())


def test_reconstitution_band_is_the_age_groups_reference_range():
    ref = pd.read_csv(REFERENCE_CSV)
    patients = pd.DataFrame(
        {"patient_id": ["A", "B", "C", "D"], "age_years": [45.0, 4.5, 9.0, np.nan]}
    )
    obs = pd.DataFrame(
        {
            "patient_id": ["A", "A", "B", "B", "C", "C", "D"],
            "day": [0, 30, 0, 30, 0, 30, 30],
            "analyte": "cd3",
            "value": [100.0, 800.0, 50.0, 1500.0, 70.0, 900.0, 400.0],
            "unit": "cells/uL",
        }
    )
    fig = reconstitution_panels(obs, analytes=["cd3"], patients=patients)
    axes = [ax for ax in fig.axes if ax.get_visible()]
    by_title = {ax.get_title().split("\n")[1].split(",")[0]: ax for ax in axes}
    assert set(by_title) == {"Adults (≥ 18 y)", "Children 2–6 y", "Children 6–12 y", "Age unknown"}

    def band(ax):
        bands = [p for p in ax.patches if str(p.get_gid()).startswith("reference:")]
        return [(b.get_y(), b.get_y() + b.get_height()) for b in bands]

    cd3 = ref.loc[ref["analyte"] == "cd3"]
    adult = cd3.loc[cd3["population"] == "adult"].iloc[0]
    assert band(by_title["Adults (≥ 18 y)"]) == [(adult["lower"], adult["upper"])]
    for name, age in (("Children 2–6 y", 4.5), ("Children 6–12 y", 9.0)):
        row = cd3.loc[
            (cd3["population"] == "pediatric")
            & (cd3["age_min_years"] <= age)
            & (cd3["age_max_years"] > age)
        ].iloc[0]
        assert band(by_title[name]) == [(row["lower"], row["upper"])]
    assert band(by_title["Age unknown"]) == []  # missing age: no band, never the adult one
    # each row is its own patients: the child 2-6 y alone (50 -> 1500)
    line = [ln for ln in by_title["Children 2–6 y"].lines if ln.get_gid() == "cd3"][0]
    assert line.get_ydata().tolist() == [50.0, 1500.0]
    for ax in axes:
        assert ax.get_ylabel() == "cells/µL" and ax.get_xlabel() == "Days since infusion"
    _png(fig)


def test_age_groups_follow_reconstitution_auto_rule():
    """Children (< 18 y) by band, adults otherwise; the same split as lower_normal('auto')."""
    from cartrial.kinetics.reconstitution import load_reference_ranges, lower_normal

    ranges = load_reference_ranges()
    ages = [0.1, 1.0, 5.99, 6.0, 17.9, 18.0, 70.0]
    pts = pd.DataFrame({"patient_id": list("abcdefg"), "age_years": ages})
    g = age_groups(pts, ranges).set_index("patient_id")
    for pid, age in zip("abcdefg", ages, strict=True):
        grp = g.loc[pid]
        lln = lower_normal(ranges, "cd3", "auto", age)[0]
        row = ranges.loc[(ranges["analyte"] == "cd3") & (ranges["population"] == grp["population"])]
        if grp["population"] == "pediatric":
            row = row.loc[row["age_min_years"] == grp["age_min"]]
        assert float(row["lower"].iloc[0]) == lln, (pid, age)
