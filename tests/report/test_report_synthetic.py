"""The report on the 60-patient synthetic cohort: every number recounted independently.

The report is built and written once per module. Counts are recounted from the source
rows with plain pandas; survival numbers are checked against lifelines, proportions
against statsmodels; figures are checked as files (SVG parses, PNG decodes) and against
the numbers they drew.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cartrial.cohort import load_cohort
from cartrial.examples.simulate import write_simulated_cohort
from cartrial.report.build import build_report, write_report
from cartrial.report.settings import ReportSettings, load_settings

N_PAT = re.compile(r"^(\d+) \(")
EST_CI = re.compile(r"^([\d.]+|NR|NE) \(([\d.]+|NR|NE)–([\d.]+|NR|NE)\)$")
RANK = {"CR": 0, "CRh": 1, "CRi": 2, "MLFS": 3, "PR": 4, "OR": 5, "SD": 6, "NR": 7, "PD": 8,
        "NE": 9}


def n_of(cell: str) -> int:
    m = N_PAT.match(cell)
    assert m, cell
    return int(m.group(1))


def est_ci(cell: str) -> tuple[float, float, float]:
    m = EST_CI.match(cell)
    assert m, cell
    return tuple(float("inf") if v == "NR" else float(v) for v in m.groups())  # type: ignore


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    base = tmp_path_factory.mktemp("synreport")
    cohort_dir = write_simulated_cohort(base / "cohort", 60, 1)
    cohort = load_cohort(cohort_dir)
    report = build_report(cohort, ReportSettings())
    out = write_report(report, base / "out")
    return cohort, report, out


@pytest.fixture(scope="module")
def infused(built) -> pd.DataFrame:
    cohort = built[0]
    p = cohort.patients
    return p[p["infused"].fillna(True).astype(bool)].reset_index(drop=True)


def table(out: Path, name: str) -> pd.DataFrame:
    return pd.read_csv(out / "tables" / f"{name}.csv", dtype=str, keep_default_na=False)


# ------------------------------------------------------------------------------ files
def test_every_output_file_is_there_and_valid(built) -> None:
    _, report, out = built
    html = (out / "index.html").read_text(encoding="utf-8")
    assert "SYNTHETIC DATA" in html
    assert "<img src=\"data:image/svg+xml;base64," in html  # figures inlined
    assert "src=\"http" not in html and "href=\"http" not in html  # self-contained
    assert built[0].input_sha256 in html
    assert (out / "report.pdf").read_bytes()[:5] == b"%PDF-"
    assert (out / "settings.yaml").exists()
    for t in report.tables:
        assert (out / "tables" / f"{t.name}.csv").exists()
        assert f"table-{t.name}" in html
    names = {f.name for _, f in report.figures}
    assert {"patient_flow", "km_os", "km_pfs", "cif_relapse_nrm", "swimmer",
            "km_os_by_sct_consolidation", "km_os_by_dose_level"} <= names
    assert any(n.startswith("kinetics_") for n in names)  # the kinetics section's figures
    import matplotlib.image as mpimg

    for name in names:
        svg = out / "figures" / f"{name}.svg"
        root = ET.parse(svg).getroot()
        assert root.tag.endswith("svg")
        png = (out / "figures" / f"{name}.png").read_bytes()
        assert png[:8] == b"\x89PNG\r\n\x1a\n"
        img = mpimg.imread(out / "figures" / f"{name}.png")
        assert img.ndim == 3 and img.shape[0] > 300 and img.shape[1] > 300
        assert img.std() > 0.01  # not blank
    assert not [p for p in out.parent.iterdir() if p.name.startswith(".")]  # no temp folders


def test_methods_state_definitions_and_ci_methods(built) -> None:
    html = (built[2] / "index.html").read_text(encoding="utf-8")
    from cartrial.endpoints import derive

    assert "infusion → death of any cause" in derive.__doc__
    assert "infusion → death of any cause" in html
    assert "log-log scale" in html and "wilson method" in html
    assert "Brookmeyer–Crowley" in html and "Aalen–Johansen" in html


# ------------------------------------------------------------------------------ Table 1
def test_table1_counts_match_a_recount(built, infused) -> None:
    t1 = table(built[2], "table1_baseline")
    overall = [c for c in t1.columns if c.startswith("Overall")][0]
    assert overall == f"Overall (n={len(infused)})"
    checks = {"Sex": "sex", "Diagnosis": "diagnosis", "CAR-T product source": "product_source",
              "Dose level": "dose_level", "Donor relation": "donor_relation",
              "HLA match": "hla_match", "Extramedullary disease": "extramedullary"}
    for label, col in checks.items():
        rows = t1[t1["Characteristic"] == label]
        assert len(rows) > 0, label
        for level, cell in zip(rows["Level"], rows[overall], strict=True):
            expect = (infused[col].isna().sum() if level == "missing"
                      else (infused[col].astype(object) == level).sum())
            assert n_of(cell) == expect, (label, level)
        assert set(rows["Level"]) - {"missing"} == set(infused[col].dropna())
        assert ("missing" in set(rows["Level"])) == bool(infused[col].isna().any())
    prior = t1[t1["Characteristic"] == "Prior allogeneic SCT"].set_index("Level")[overall]
    assert n_of(prior["yes"]) == int(infused["prior_allo_sct"].eq(True).sum())
    age = t1[(t1["Characteristic"] == "Age, years")]["Level"].tolist()
    assert age == ["median (range)"]
    cell = t1[t1["Characteristic"] == "Age, years"][overall].iloc[0]
    a = infused["age_years"].to_numpy()
    assert cell == f"{np.median(a):.1f} ({a.min():.1f}–{a.max():.1f})"


# ------------------------------------------------------------------------------ response
def best_responses(cohort, ids) -> pd.Series:
    ev = cohort.events
    r = ev[(ev["event"] == "response") & ev["day"].between(0, 35) & ev["response"].notna()]
    r = r.assign(rank=r["response"].map(RANK)).sort_values(["rank", "day"])
    return r.drop_duplicates("patient_id").set_index("patient_id")["response"].reindex(ids)


def test_response_rates_recount_and_wilson(built, infused) -> None:
    from statsmodels.stats.proportion import proportion_confint

    cohort, _, out = built
    best = best_responses(cohort, infused["patient_id"])
    n = len(infused)
    expect = {"ORR": best.isin(["CR", "CRi", "CRh", "MLFS", "PR", "OR"]).sum(),
              "CR": (best == "CR").sum(), "CR/CRi": best.isin(["CR", "CRi", "CRh"]).sum()}
    resp = table(out, "response").set_index("Measure")
    for measure, k in expect.items():
        assert resp.loc[measure, "n/N"] == f"{k}/{n}"
        lo, hi = proportion_confint(k, n, alpha=0.05, method="wilson")
        est, low, high = est_ci(resp.loc[measure, "% (95% CI)"])
        assert (est, low, high) == (round(100 * k / n, 1), round(100 * lo, 1), round(100 * hi, 1))
    ev = cohort.events
    mrdneg = ev[(ev["event"] == "response") & ev["day"].between(0, 35)
                & ev["response"].isin(["CR", "CRi"]) & (ev["mrd"] == "negative")]
    assert resp.loc["MRD-negative CR/CRi", "n/N"] == f"{mrdneg['patient_id'].nunique()}/{n}"


# ------------------------------------------------------------------------------ survival
def test_time_to_event_matches_lifelines(built) -> None:
    from lifelines import KaplanMeierFitter

    _, report, out = built
    tte = table(out, "time_to_event").set_index("Endpoint")
    ep = report.endpoints
    for name in ("OS", "PFS", "DFS"):
        d = ep[ep["endpoint"] == name]
        t = d["time_days"].to_numpy() / 30.4375
        e = d["event"].to_numpy()
        assert tte.loc[name, "N"] == str(len(d)) and tte.loc[name, "Events"] == str(e.sum())
        kmf = KaplanMeierFitter().fit(t, e)  # lifelines: log-log ("exponential Greenwood")
        for months in (6, 12, 24):
            s = float(kmf.survival_function_at_times(months).iloc[0])
            ci = kmf.confidence_interval_survival_function_
            row = ci[ci.index <= months].iloc[-1]
            est, lo, hi = est_ci(tte.loc[name, f"{months}-month, % (95% CI)"])
            assert est == pytest.approx(100 * s, abs=0.051)
            assert lo == pytest.approx(100 * row.iloc[0], abs=0.051)
            assert hi == pytest.approx(100 * row.iloc[1], abs=0.051)
        med = est_ci(tte.loc[name, "Median, months (95% CI)"])[0]
        assert med == pytest.approx(kmf.median_survival_time_, abs=0.051)


def aalen_johansen(t: np.ndarray, cause: np.ndarray, code: int, at: float) -> float:
    """Hand-written Aalen–Johansen: F_k(t) = sum over event times of S(t-)·d_k/n."""
    f, s = 0.0, 1.0
    for u in np.unique(t[cause > 0]):
        if u > at:
            break
        n = (t >= u).sum()
        d_all = ((t == u) & (cause > 0)).sum()
        f += s * ((t == u) & (cause == code)).sum() / n
        s *= 1 - d_all / n
    return f


def test_cumulative_incidence_matches_a_hand_computation(built) -> None:
    _, report, out = built
    tte = table(out, "time_to_event").set_index("Endpoint")
    cir = report.endpoints[report.endpoints["endpoint"] == "CIR"]
    t = cir["time_days"].to_numpy() / 30.4375
    cause = cir["cause"].to_numpy(dtype=int)
    for name, code in (("CIR", 1), ("NRM", 2)):
        for months in (6, 12, 24):
            expect = 100 * aalen_johansen(t, cause, code, months)
            got = est_ci(tte.loc[name, f"{months}-month, % (95% CI)"])[0]
            assert got == pytest.approx(expect, abs=0.051)
        assert tte.loc[name, "Events"] == str(int((cause == code).sum()))


def test_median_followup_is_reverse_km(built) -> None:
    from lifelines import KaplanMeierFitter

    _, report, out = built
    os_ = report.endpoints[report.endpoints["endpoint"] == "OS"]
    kmf = KaplanMeierFitter().fit(os_["time_days"] / 30.4375, 1 - os_["event"])
    fu = table(out, "followup")
    assert est_ci(fu["Value"].iloc[0])[0] == pytest.approx(kmf.median_survival_time_, abs=0.051)


def test_subgroup_logrank_p_matches_lifelines(built, infused) -> None:
    from lifelines.statistics import multivariate_logrank_test

    _, report, out = built
    sub = table(out, "subgroups")
    ep = report.endpoints
    sct_ids = set(built[0].events.loc[built[0].events["event"] == "sct", "patient_id"])
    for name in ("OS", "PFS"):
        d = ep[ep["endpoint"] == name]
        g = np.where(d["patient_id"].isin(sct_ids), "yes", "no")
        p = multivariate_logrank_test(d["time_days"], g, d["event"]).p_value
        rows = sub[(sub["Endpoint"] == name) & (sub["Subgroup"] == "Consolidation SCT")]
        shown = rows["Log-rank p"].iloc[0]
        assert shown == ("<0.001" if p < 0.001 else f"{p:.3f}")
        counts = rows.set_index("Level")["N"].astype(int)
        assert counts["yes"] == (g == "yes").sum() and counts["no"] == (g == "no").sum()
        dose = sub[(sub["Endpoint"] == name) & (sub["Subgroup"] == "Dose level")]
        p_dose = multivariate_logrank_test(
            d["time_days"], d["patient_id"].map(infused.set_index("patient_id")["dose_level"]),
            d["event"]).p_value
        assert dose["Log-rank p"].iloc[0] == ("<0.001" if p_dose < 0.001 else f"{p_dose:.3f}")


# ------------------------------------------------------------------------------ AEs
def test_adverse_event_table_matches_a_recount(built, infused) -> None:
    cohort, _, out = built
    ae = cohort.adverse_events[cohort.adverse_events["patient_id"].isin(infused["patient_id"])]
    ae = ae[ae["grade"] > 0]
    # patients still under observation on day 30: known alive (or dying) on/after day 30
    ev, ob = cohort.events, cohort.observations
    last = pd.concat([ev[["patient_id", "day"]],
                      ae.assign(day=ae["resolution_day"].fillna(ae["onset_day"]))[
                          ["patient_id", "day"]],
                      ob[["patient_id", "day"]]]).groupby("patient_id")["day"].max()
    observed30 = set(last[last >= 30].index) & set(infused["patient_id"])
    aet = table(out, "adverse_events")
    windows = {
        "any time": (ae, len(infused)),
        "short-term (onset < day 30)": (ae[ae["onset_day"] < 30], len(infused)),
        "long-term (onset ≥ day 30; patients under observation on day 30)":
            (ae[(ae["onset_day"] >= 30) & ae["patient_id"].isin(observed30)], len(observed30)),
    }
    assert set(aet["Window"]) == set(windows)
    for wname, (sub, n) in windows.items():
        rows = aet[(aet["Window"] == wname) & (aet["Group"] == "Overall")].set_index("Term")
        assert (rows["N"].astype(int) == n).all()
        worst = sub.groupby(["patient_id", "term"])["grade"].max().reset_index()
        for term in ["CRS", "ICANS", "aGVHD", "infection", "neutropenia"]:
            w = worst[worst["term"] == term]
            assert n_of(rows.loc[term, "Any grade"]) == len(w), (wname, term)
            assert n_of(rows.loc[term, "Grade ≥3"]) == int((w["grade"] >= 3).sum())
            for g in range(1, 6):
                assert n_of(rows.loc[term, f"Grade {g}"]) == int((w["grade"] == g).sum())
        any_ae = sub.groupby("patient_id")["grade"].max()
        assert n_of(rows.loc["Any adverse event", "Any grade"]) == len(any_ae)
        assert n_of(rows.loc["Any adverse event", "Grade 5"]) == int((any_ae == 5).sum())


# ------------------------------------------------------------------------------ figures
def test_km_at_risk_numbers_match_the_km_table_and_a_direct_count(built) -> None:
    from cartrial.stats import kaplan_meier

    _, report, out = built
    for fig_name, ep in (("km_os", "OS"), ("km_pfs", "PFS")):
        drawn = report.figure(fig_name)
        d = report.endpoints[report.endpoints["endpoint"] == ep]
        t = d["time_days"].to_numpy() / 30.4375
        fit = kaplan_meier(t, d["event"].to_numpy(), conf_type="log-log")
        tab = fit.table
        assert drawn.info["ticks"][0] == 0 and np.all(np.diff(drawn.info["ticks"]) == 6)
        for tick, n_risk in zip(drawn.data["time"], drawn.data["n_at_risk"], strict=True):
            assert n_risk == int((t >= tick).sum())  # direct count
            later = tab[tab["time"] >= tick]
            assert n_risk == (int(later["n_risk"].iloc[0]) if len(later) else 0)
        # the numbers are in the SVG file as text under the axis
        texts = [el.text for el in ET.parse(out / "figures" / f"{fig_name}.svg").iter()
                 if el.tag.endswith("text") and el.text]
        for n_risk in drawn.data["n_at_risk"]:
            assert str(n_risk) in texts
    by = report.figure("km_os_by_sct_consolidation")
    assert set(by.data["group"]) == {"yes", "no"}
    first = by.data[by.data["time"] == 0].set_index("group")["n_at_risk"]
    sct_ids = set(built[0].events.loc[built[0].events["event"] == "sct", "patient_id"])
    assert first["yes"] == len(sct_ids & set(report.endpoints["patient_id"]))
    assert by.info["p_value"] is not None


def test_patient_flow_counts_match_a_recount(built, infused) -> None:
    cohort, report, _ = built
    flow = report.figure("patient_flow").info["flow"]
    assert flow["enrolled"] == len(cohort.patients)
    assert flow["infused"] == len(infused)
    assert flow["not_infused"] == int((~cohort.patients["infused"].astype(bool)).sum())
    best = best_responses(cohort, infused["patient_id"])
    r = flow["response"]
    assert r["complete"] == best.isin(["CR", "CRi", "CRh"]).sum()
    assert r["none"] == best.isin(["NR", "SD", "PD"]).sum()
    assert r["not_assessed"] == best.isna().sum()
    sct_ids = set(cohort.events.loc[cohort.events["event"] == "sct", "patient_id"])
    responders = set(best[best.isin(["CR", "CRi", "PR"])].index)
    branches = {b["label"]: b for b in flow["branches"]}
    assert branches["Responders, consolidation SCT"]["n"] == len(responders & sct_ids)
    assert branches["Responders, no SCT"]["n"] == len(responders - sct_ids)
    dead = set(cohort.events.loc[cohort.events["event"] == "death", "patient_id"])
    assert sum(b["outcome"]["died"] for b in flow["branches"]) == len(dead)


def test_swimmer_lanes_and_markers(built, infused) -> None:
    cohort, report, _ = built
    drawn = report.figure("swimmer")
    lanes = drawn.data
    assert sorted(lanes["patient_id"]) == sorted(infused["patient_id"])
    assert lanes["lane"].is_unique
    ev = cohort.events
    os_ = report.endpoints[report.endpoints["endpoint"] == "OS"].set_index("patient_id")
    assert np.allclose(lanes.set_index("patient_id")["end_days"].sort_index(),
                       os_["time_days"].sort_index())
    mk = drawn.info["markers"]
    assert (mk["kind"] == "death").sum() == (ev["event"] == "death").sum()
    assert (mk["kind"] == "SCT").sum() == (ev["event"] == "sct").sum()
    first_rel = (ev[ev["event"].isin(["relapse", "progression"])].sort_values("day")
                 .drop_duplicates("patient_id"))
    assert (mk["kind"] == "relapse CD7−").sum() == (first_rel["cd7_status"] == "negative").sum()
    assert (mk["kind"] == "relapse CD7+").sum() == (first_rel["cd7_status"] == "positive").sum()
    alive_followed = set(ev.loc[ev["event"] == "last_contact", "patient_id"])
    assert set(lanes.loc[lanes["ongoing"], "patient_id"]) == alive_followed
    # grouped: all SCT lanes come before all no-SCT lanes, each sorted by follow-up
    groups = lanes.sort_values("lane")["group"].tolist()
    assert groups == sorted(groups, key=lambda g: g != "Consolidation SCT")
    for _, g in lanes.sort_values("lane").groupby("group"):
        assert (np.diff(g["end"].to_numpy()) <= 0).all()


# ------------------------------------------------------------------------------ settings
def test_rerun_with_written_settings_gives_identical_tables(built) -> None:
    cohort, report, out = built
    settings = load_settings(out / "settings.yaml")
    assert settings == report.settings
    again = build_report(cohort, settings)
    for t in again.tables:
        text = t.df.to_csv(index=False, lineterminator="\n")
        assert text == (out / "tables" / f"{t.name}.csv").read_text(encoding="utf-8"), t.name
