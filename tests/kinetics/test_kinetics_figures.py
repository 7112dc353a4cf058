"""Kinetics figures: produced, and the plotted data are the input data."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest
from matplotlib.collections import LineCollection, PathCollection
from matplotlib.figure import Figure

from cartrial.kinetics.figures import (
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
    lower = [ln for ln in cd3.lines if ln.get_gid() == "lower_normal"][0]
    assert lower.get_ydata()[0] == 700  # adult CD3 lower limit (shipped reference range)
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
