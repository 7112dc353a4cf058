"""The kinetic fits report problems through the ``cartrial.kinetics`` loggers: one warning
per kind of problem naming the profiles whose fit ended with a parameter on a bound of the
search box (or did not converge), and each profile's details at INFO level; the same facts
as the table's ``param_flags``/``notes``."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from cartrial.kinetics import model
from cartrial.kinetics.model import TYPICAL_TISAGENLECLEUCEL, fit_table, simulate_profile

DAYS = np.array([0, 3, 7, 10, 14, 21, 28, 42, 56, 90, 180.0])
# expansion, fast decline, then a flat plateau: the slow-phase rate beta has nothing to
# estimate and ends on the lower bound of its search box
PLATEAU = np.where(
    DAYS <= 10, 10 * np.exp(0.7 * DAYS), 10 * np.exp(7) * (0.9 * np.exp(-0.3 * (DAYS - 10)) + 0.1)
)
TYPICAL = simulate_profile(TYPICAL_TISAGENLECLEUCEL, DAYS, sigma=0.0)


def _obs(profiles: dict[str, np.ndarray]) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {"patient_id": pid, "day": d, "analyte": "cart_qpcr", "value": v, "lloq": 1.0}
            for pid, values in profiles.items()
            for d, v in zip(DAYS, values, strict=True)
        ]
    )


def _records(caplog, level):
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == "cartrial.kinetics.model" and r.levelno == level
    ]


def test_a_parameter_on_a_bound_is_logged_with_the_patient(caplog):
    with caplog.at_level(logging.INFO, logger="cartrial.kinetics"):
        table = fit_table(_obs({"P-plateau": PLATEAU, "P-typical": TYPICAL}))
    flags = table.set_index("patient_id")["param_flags"]
    assert "beta" in flags["P-plateau"] and flags["P-typical"] == ""
    assert table["converged"].all()
    assert _records(caplog, logging.WARNING) == [
        "cart_qpcr: parameter on a bound of the search box or not estimable in 1 of 2 "
        "profile(s): P-plateau"
    ]
    assert _records(caplog, logging.INFO) == [f"cart_qpcr P-plateau: {flags['P-plateau']}"]


def test_the_warning_names_at_most_max_named_profiles(caplog, monkeypatch):
    monkeypatch.setattr(model, "MAX_NAMED", 2)
    ids = [f"P{i}" for i in range(3)]
    with caplog.at_level(logging.WARNING, logger="cartrial.kinetics"):
        fit_table(_obs(dict.fromkeys(ids, PLATEAU)))
    (message,) = _records(caplog, logging.WARNING)
    assert message.endswith("in 3 of 3 profile(s): P0, P1 …")


def test_nothing_is_logged_below_the_configured_level(caplog):
    with caplog.at_level(logging.ERROR, logger="cartrial"):
        fit_table(_obs({"P": PLATEAU}))
    assert not [r for r in caplog.records if r.name.startswith("cartrial")]
