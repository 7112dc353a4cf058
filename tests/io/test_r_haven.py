"""The ADaM .xpt as R reads it: stored outputs of ``data/r_haven/make_r_reference.R`` (haven
and survival, run once; never at test time). The stored .xpt files are what cartrial
writes today for the hand-written site export (checked first), R sees the DATE9. dates as
dates, and its Kaplan-Meier (survival::survfit, log-log CI) equals cartrial's."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyreadstat
import pytest
from test_site_export import _read

from cartrial.io.writers import export_adam
from cartrial.stats import kaplan_meier

R = Path(__file__).parent / "data" / "r_haven"


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    out = tmp_path_factory.mktemp("r") / "adam"
    path, _ = export_adam(_read(), out, ("xpt",), study_id="CD7CART02")
    return path


@pytest.mark.parametrize("name", ["adtte.xpt", "adsl.xpt"])
def test_the_stored_xpt_is_what_cartrial_writes_today(written, name):
    new, _ = pyreadstat.read_xport(str(written / name))
    old, _ = pyreadstat.read_xport(str(R / name))
    # if this fails after an intended change, regenerate: data/r_haven/make_xpt.py, then
    # the R script (both commands are in make_xpt.py's docstring)
    pd.testing.assert_frame_equal(new, old)


def test_r_sees_dates_numbers_and_text():
    v = pd.read_csv(R / "r_variables.csv", keep_default_na=False).set_index(["dataset", "variable"])
    for var in ("ADT", "STARTDT"):
        assert v.loc[("ADTTE", var), "class"] == "Date"
        assert v.loc[("ADTTE", var), "format"] == "DATE9"
    assert v.loc[("ADSL", "NTHDT"), "class"] == "Date"  # all missing, still a date
    assert v.loc[("ADTTE", "AVAL"), "class"] == "numeric"
    assert v.loc[("ADTTE", "SUBJID"), "class"] == "character"
    adsl = pd.read_csv(R / "r_adsl.csv").iloc[0]
    assert (adsl["TRTSDT"], adsl["LSTALVDT"]) == ("2023-03-06", "2024-01-15")
    assert (adsl["n_itt"], adsl["n_saf"], adsl["deaths_itt"]) == (10, 9, 4)


def test_kaplan_meier_equals_r_survival():
    adtte, _ = pyreadstat.read_xport(str(R / "adtte.xpt"))
    r = pd.read_csv(R / "r_km.csv")
    for code, ref in r.groupby("PARAMCD"):
        d = adtte[adtte["PARAMCD"] == code]
        fit = kaplan_meier(d["AVAL"].to_numpy(), (d["CNSR"] == 0).astype(int).to_numpy())
        np.testing.assert_allclose(fit.time, ref["time"], err_msg=code)
        np.testing.assert_allclose(fit.n_risk, ref["n_risk"], err_msg=code)
        np.testing.assert_allclose(fit.survival, ref["surv"], rtol=1e-12, err_msg=code)
        # R leaves the log-log interval undefined (NA) while S = 1; compare where defined
        lower = ref["lower"].to_numpy(dtype=float)
        known = ~np.isnan(lower)
        np.testing.assert_allclose(fit.lower[known], lower[known], rtol=1e-9, err_msg=code)
        np.testing.assert_allclose(
            fit.upper[known], ref["upper"].to_numpy(dtype=float)[known], rtol=1e-9
        )
        assert (fit.survival[~known] == 1).all()
