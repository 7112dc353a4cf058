"""The report's "Trial design and safety monitoring" section (setting ``design``).

The section's CSVs are read back and checked against the published BOIN boundaries
(Liu & Yuan 2015 Table 1 / R BOIN ``get.boundary``), against ``cartrial.design`` called
directly with the same seed, against the exact enumeration of the BOIN design (within
Monte-Carlo error) and against SciPy's Beta posterior.  The settings come from a YAML
file written the way a user writes one (5e5 without a dot is text to YAML).
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.stats import beta

from cartrial.cohort import load_cohort
from cartrial.design.escalation import BOIN, boin_boundaries
from cartrial.design.monitor import dsmb_summary, next_dose_recommendation
from cartrial.design.simulate import boin_exact_selection, simulate_boin
from cartrial.examples.simulate import write_simulated_cohort
from cartrial.report.build import build_report, write_report
from cartrial.report.document import SECTIONS
from cartrial.report.settings import ReportSettings, SettingsError, load_settings

DOSES = [5e5, 1e6, 2e6]
SCENARIOS = [[0.10, 0.25, 0.40], [0.05, 0.10, 0.25]]
TRIALS, SEED = 2000, 1
YAML = """\
title: Three-dose CD7 CAR-T trial
design:
  method: boin          # BOIN | CRM | 3+3
  target: 0.30
  cohort_size: 3
  n_cohorts: 6
  doses: [5e5, 1e6, 2e6]          # cells/kg; YAML reads these as text
  scenarios:
    - [0.10, 0.25, 0.40]
    - [0.05, 0.10, 0.25]
  trials: 2000
  seed: 1
"""
#: R BOIN get.boundary(target = 0.3, ncohort = 6, cohortsize = 3) = Liu & Yuan 2015 /
#: Yuan et al. 2016 Table 1, at n = 3, 6, ..., 18
PUBLISHED = pd.DataFrame(
    {
        "n": [3, 6, 9, 12, 15, 18],
        "escalate": [0, 1, 2, 2, 3, 4],
        "deescalate": [2, 3, 4, 5, 6, 7],
        "eliminate": [3, 4, 5, 7, 8, 9],
    }
)


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    base = tmp_path_factory.mktemp("designreport")
    cohort = load_cohort(write_simulated_cohort(base / "cohort", 30, 1))
    cfg = base / "settings.yaml"
    cfg.write_text(YAML, encoding="utf-8")
    settings = load_settings(cfg)
    report = build_report(cohort, settings)
    out = write_report(report, base / "out")
    return cohort, settings, report, out


def table(out: Path, name: str) -> pd.DataFrame:
    path = out / "tables" / f"{name}.csv"
    first = path.read_text(encoding="utf-8").splitlines()[0]
    return pd.read_csv(path, skiprows=1 if first.startswith("#") else 0)


def test_settings_from_yaml_are_normalised(built):
    _, settings, _, _ = built
    d = settings.design
    assert d["method"] == "BOIN"
    assert d["doses"] == tuple(DOSES)
    assert [list(s) for s in d["scenarios"]] == SCENARIOS
    assert (d["trials"], d["seed"], d["n_cohorts"]) == (TRIALS, SEED, 6)


def test_settings_yaml_round_trip(built):
    _, settings, _, out = built
    again = load_settings(out / "settings.yaml")
    assert again.design == settings.design
    assert again == settings


def test_section_present_in_order_and_rendered(built):
    _, _, report, out = built
    keys = [s["key"] for s in report.sections()]
    assert "design" in keys
    assert keys.index("design") == keys.index("safety") + 1
    html = (out / "index.html").read_text(encoding="utf-8")
    assert "Trial design and safety monitoring" in html
    assert "recommendation, not an action" in html
    for i in (1, 2):
        png = out / "figures" / f"design_oc_scenario{i}.png"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_decision_table_matches_published_boundaries(built):
    _, _, report, out = built
    got = table(out, "design_decision_table")
    lam_e, lam_d = boin_boundaries(0.30)
    assert abs(lam_e - 0.236) < 5e-4 and abs(lam_d - 0.358) < 1e-3  # Liu & Yuan 2015
    cap = report.table_item("design_decision_table").caption
    shown = [float(x) for x in re.findall(r"λ[ed] = ([\d.]+)", cap)]
    assert shown == pytest.approx([lam_e, lam_d], abs=5e-4)
    rows = got.set_index("n").loc[PUBLISHED["n"]]
    assert rows["escalate_if_dlt_le"].tolist() == PUBLISHED["escalate"].tolist()
    assert rows["deescalate_if_dlt_ge"].tolist() == PUBLISHED["deescalate"].tolist()
    assert rows["eliminate_if_dlt_ge"].astype(int).tolist() == PUBLISHED["eliminate"].tolist()
    direct = BOIN(0.30, 3, 3, 6).decision_table()
    assert got["n"].tolist() == direct["n"].tolist() == list(range(1, 19))
    assert (
        got["eliminate_if_dlt_ge"].isna().tolist() == direct["eliminate_if_dlt_ge"].isna().tolist()
    )


def test_oc_tables_equal_the_simulator_with_the_same_seed(built):
    _, _, report, out = built
    per_dose = table(out, "design_oc")
    per_scen = table(out, "design_oc_summary")
    for i, sc in enumerate(SCENARIOS, 1):
        oc = simulate_boin(BOIN(0.30, 3, 3, 6), sc, TRIALS, SEED)
        mine = per_dose[per_dose["scenario"] == i].reset_index(drop=True)
        ref = oc.summary()
        for col in ("p_select", "mc_se", "mean_patients", "mean_dlt", "p_true"):
            np.testing.assert_allclose(
                mine[col].to_numpy(float), ref[col].to_numpy(float), rtol=1e-12, equal_nan=True
            )
        assert mine["label"].tolist() == ["5e5/kg", "1e6/kg", "2e6/kg", "none"]
        row = per_scen[per_scen["scenario"] == i].iloc[0]
        for key, value in oc.metrics().items():
            assert row[key] == pytest.approx(value, rel=1e-12), key
        assert row["true_mtd"] == oc.true_mtd + 1
        # the simulation agrees with the exact enumeration within 4 Monte-Carlo SE
        exact = boin_exact_selection(BOIN(0.30, 3, 3, 6), sc)
        se = np.sqrt(exact * (1 - exact) / TRIALS)
        assert np.all(np.abs(mine["p_select"].to_numpy() - exact) <= 4 * se + 1e-12)
        drawn = report.figure(f"design_oc_scenario{i}")
        np.testing.assert_allclose(drawn.data["p_select"].to_numpy(), ref["p_select"])
        assert drawn.caption.startswith("Population: simulated trials")
    cap = report.table_item("design_oc").caption
    assert f"sqrt(P(1 − P)/{TRIALS})" in cap
    assert f"{per_dose['mc_se'].max():.4f}" in cap


def test_dlt_table_and_recommendation_from_the_cohort(built):
    cohort, _, report, out = built
    got = table(out, "design_dlt")
    rec = next_dose_recommendation(cohort, BOIN(0.30, 3, 3, 6), DOSES)
    pd.testing.assert_frame_equal(got, rec.dlt_table, check_dtype=False)
    # recount by hand from the patients' dose labels and the DLT evaluation
    ev = rec.patients
    label = ev["dose_level"].astype("string").str.strip()
    for j, lab in enumerate(["5e5/kg", "1e6/kg", "2e6/kg"]):
        m = label.eq(lab).fillna(False) & ev["evaluable"] & ev["dlt"].notna()
        assert got.loc[j, "evaluable"] == int(m.sum())
        assert got.loc[j, "dlt"] == int((m & ev["dlt"].fillna(False)).sum())
    r = table(out, "design_recommendation").iloc[0]
    assert r["rule"] == rec.decision.rule
    assert r["action"] == rec.decision.action
    assert r["status"] == "recommendation, not an action"
    # the action follows the published decision table at the current dose
    cur = got[got["label"] == r["current_dose"]].iloc[0]
    pub = PUBLISHED.set_index("n")
    assert cur["evaluable"] in pub.index  # seed-1 cohort: 9 evaluable at the current dose
    row = pub.loc[cur["evaluable"]]
    y = cur["dlt"]
    expected = (
        "escalate" if y <= row["escalate"] else "de-escalate" if y >= row["deescalate"] else "stay"
    )
    assert 0 < cur["dose"] < 3 and y < row["eliminate"]  # no edge or elimination case
    assert r["action"] == expected
    notes = [n for s, n in report.section_notes if s == "design"]
    assert any("recommendation, not an action" in n and rec.decision.rule in n for n in notes)


def test_dsmb_table_and_posterior(built):
    cohort, _, _, out = built
    got = table(out, "design_dsmb").set_index("item")["value"]
    s = dsmb_summary(cohort, 0.30, 0.90)
    assert int(got["enrolled"]) == s["enrolled"] == len(cohort.patients)
    assert int(got["DLTs"]) == s["dlt"]
    n, y = int(got["DLT-evaluable"]), int(got["DLTs"])
    post = beta.sf(0.30, 1 + y, 1 + n - y)
    assert float(got["DLT boundary: posterior probability"]) == pytest.approx(post, abs=5e-5)
    assert got["DLT boundary: status"] == (
        "STOP SIGNAL (for DSMB review)" if post > 0.9 else "not crossed"
    )
    # the stop count is the smallest count whose posterior exceeds the cut-off
    k = int(got["DLT boundary: stop signal at DLT count"])
    assert beta.sf(0.30, 1 + k, 1 + n - k) > 0.9 >= beta.sf(0.30, k, 2 + n - k)


def test_section_absent_without_the_setting(built):
    cohort = built[0]
    report = build_report(cohort, ReportSettings())
    assert "design" not in [s["key"] for s in report.sections()]
    assert not [t for t in report.tables if t.section == "design"]
    assert "design" in dict(SECTIONS)
    assert ReportSettings().to_dict()["design"] == {}


@pytest.mark.parametrize(
    ("design", "key"),
    [
        ("BOIN", "design"),
        ({"method": "mTPI", "doses": [5e5, 1e6], "scenarios": [[0.1, 0.2]]}, "design.method"),
        ({"target": 1.3, "doses": [5e5, 1e6], "scenarios": [[0.1, 0.2]]}, "design.target"),
        ({"doses": [1e6, 5e5], "scenarios": [[0.1, 0.2]]}, "design.doses"),
        ({"doses": ["lots", 1e6], "scenarios": [[0.1, 0.2]]}, "design.doses"),
        ({"doses": [5e5, 1e6]}, "design.scenarios"),
        ({"doses": [5e5, 1e6], "scenarios": [[0.1, 0.2, 0.3]]}, "design.scenarios[1]"),
        ({"doses": [5e5, 1e6], "scenarios": [[0.1, 1.2]]}, "design.scenarios[1]"),
        ({"doses": [5e5, 1e6], "scenarios": [[0.1, 0.2]], "trials": 0}, "design.trials"),
        (
            {"doses": [5e5, 1e6], "scenarios": [[0.1, 0.2]], "cohort_size": True},
            "design.cohort_size",
        ),
        ({"doses": [5e5, 1e6], "scenarios": [[0.1, 0.2]], "dosees": 1}, "design"),
    ],
)
def test_bad_design_settings_name_the_key(tmp_path, design, key):
    import yaml

    cfg = tmp_path / "s.yaml"
    cfg.write_text(yaml.safe_dump({"design": design}), encoding="utf-8")
    with pytest.raises(SettingsError, match=re.escape(f"setting '{key}'")) as err:
        load_settings(cfg)
    assert str(cfg) in str(err.value)


@pytest.mark.parametrize("method", ["3+3", "CRM"])
def test_other_designs_equal_the_simulator(built, method):
    from cartrial.design.escalation import CRM, ThreePlusThree, crm_skeleton
    from cartrial.design.simulate import simulate_3plus3, simulate_crm, three_plus_three_exact
    from cartrial.report.design_section import design_section
    from cartrial.report.settings import design_settings

    d = design_settings(
        {"method": method, "doses": DOSES, "scenarios": [SCENARIOS[0]], "trials": 3000, "seed": 7}
    )
    tables, figs, notes, _ = design_section(built[0], d, "Population: infused.")
    oc_tab = next(t.df for t in tables if t.name == "design_oc")
    if method == "3+3":
        ref = simulate_3plus3(ThreePlusThree(3), SCENARIOS[0], 3000, 7, target=0.3)
        exact = three_plus_three_exact(SCENARIOS[0])  # Storer 1989, closed form
        se = np.sqrt(exact * (1 - exact) / 3000)
        assert np.all(np.abs(oc_tab["p_select"].to_numpy() - exact) <= 4 * se + 1e-12)
    else:
        skel = tuple(crm_skeleton(0.05, 0.3, 1, 3))  # Lee & Cheung 2009, prior MTD dose 2
        ref = simulate_crm(CRM(skel, 0.3, 3, 10), SCENARIOS[0], 3000, 7)
    np.testing.assert_allclose(oc_tab["p_select"], ref.selection, rtol=1e-12)
    np.testing.assert_allclose(
        oc_tab["mean_patients"].to_numpy(float)[:-1], ref.n_per_dose.mean(axis=0), rtol=1e-12
    )
    assert len(figs) == 1
    assert any("recommendation, not an action" in n for n in notes)
