"""ADaM PARAM texts are the human labels of the one label registry (issue 13).

Expected texts are written out by hand here (what a reviewer expects to read in a
define.xml / SAS listing), not read back from ``cartrial.cohort.labels``.
"""

from __future__ import annotations

import pandas as pd
import pyreadstat
import pytest

from cartrial.io.adam import build_adam, cohort_from_adam, obs_param
from cartrial.io.writers import export_adam


@pytest.fixture(scope="module")
def simulated():
    from cartrial.examples.simulate import simulate_cohort

    return simulate_cohort(20, 5)


@pytest.fixture(scope="module")
def adam(simulated):
    return build_adam(simulated)


def _pairs(df: pd.DataFrame) -> dict[str, str]:
    return dict(df[["PARAMCD", "PARAM"]].drop_duplicates().itertuples(index=False))


def test_adpp_param_is_a_human_label_not_the_nca_column(adam):
    pairs = _pairs(adam["ADPP"])
    expected = {
        "CMAX": "Cmax",
        "TMAX": "Tmax (days)",
        "AUC028": "AUC0-28",
        "HALFLIFE": "Half-life (days)",
        "LAMBDAZ": "Lambda z (1/day)",
        "NBLQ": "Below LLOQ",
        "RSQUARED": "R2",
    }
    assert {k: pairs.get(k) for k in expected} == expected
    for code, text in pairs.items():
        assert "_" not in text and text.isascii(), (code, text)
        assert text[:1].isupper(), (code, text)
        assert len(code) <= 8


def test_adpc_and_adlb_param_are_analyte_labels(adam):
    assert _pairs(adam["ADPC"]) == {
        "CARTFLOW": "CAR-T cells (flow cytometry)",
        "CARTQPCR": "CAR transgene (qPCR)",
    }
    lb = _pairs(adam["ADLB"])
    assert lb["CD7NEGT"] == "CD7- T cells"
    assert lb["CD19B"] == "CD19+ B cells"
    assert lb["ICESCORE"] == "ICE score"
    assert all("_" not in t and t.isascii() for t in lb.values()), lb


@pytest.mark.parametrize("name", ["ADPP", "ADPC", "ADLB"])
def test_paramcd_and_param_are_one_to_one(adam, name):
    pairs = adam[name][["PARAMCD", "PARAM"]].drop_duplicates()
    assert pairs["PARAMCD"].is_unique and pairs["PARAM"].is_unique
    assert (pairs["PARAMCD"].str.len() <= 8).all()


def test_observations_read_back_with_their_analyte_names(simulated, tmp_path):
    """PARAM now carries a label; reading the export back gives the vocabulary names,
    also through SAS XPORT files (ASCII only)."""
    out, _ = export_adam(simulated, tmp_path / "adam", formats=("xpt",))
    adam = {}
    for name in ("ADSL", "ADTTE", "ADAE", "ADRS", "ADPC", "ADLB"):
        df, _m = pyreadstat.read_xport(str(out / f"{name.lower()}.xpt"))
        adam[name] = df.replace("", None)
    back = cohort_from_adam(adam).observations
    orig = simulated.observations
    key = ["patient_id", "analyte", "day"]
    got = back[key].astype({"patient_id": str}).sort_values(key).reset_index(drop=True)
    want = orig[key].astype({"patient_id": str}).sort_values(key).reset_index(drop=True)
    pd.testing.assert_frame_equal(got.astype(object), want.astype(object), check_dtype=False)


def test_an_analyte_outside_the_vocabulary_keeps_its_name():
    assert obs_param("my_site_marker") == "my_site_marker"
    assert obs_param("il6") == "Interleukin-6"
