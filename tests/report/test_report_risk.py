"""Issue 11 in the report: pre-infusion CAR-HEMATOTOX and EASIX / m-EASIX by group, and
CAR-HEMATOTOX risk as a subgroup and forest-plot variable.

The cohort is written the way a site writes it (aliases such as ``Haemoglobin`` and
``PLT``, ANC in cells/µL, Hb in g/L, creatinine in µmol/L, an older value superseded by
a later one, a post-infusion value that must not be used). Every expected number is
worked by hand from the published scores:

* CAR-HEMATOTOX (Rejeski K et al., Blood 2021;138:2499): ANC < 1.2 ×10⁹/L 1,
  Hb < 9.0 g/dL 1, platelets 75–175 1 / < 75 2, CRP ≥ 3.0 mg/dL 1, ferritin 650–2000 1
  / > 2000 2; low 0–1, high ≥ 2.
* EASIX = LDH × creatinine (mg/dL) / platelets (Luft 2017); m-EASIX = LDH × CRP (mg/dL)
  / platelets (Pennisi 2021).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

# pid: dose level, product source, (ANC, Hb, platelets, CRP mg/L, ferritin, LDH, creat)
# on day -5 (None = not measured)
LABS = {
    # ANC 0.8 → 1, platelets 60 → 2: score 3, high. EASIX 300·0.8/60 = 4.0;
    # m-EASIX 300·0.5/60 = 2.5
    "P1": ("5e5/kg", "new_donor", (0.8, 10.5, 60, 5, 300, 300, 0.8)),
    # all normal: score 0, low. EASIX 200·1.1/220 = 1.0; m-EASIX 200·0.5/220 = 0.4545
    "P2": ("5e5/kg", "prior_sct_donor", (2.5, 12.0, 220, 5, 300, 200, 1.1)),
    # Hb 8 → 1, platelets 150 → 1, CRP 4 mg/dL → 1, ferritin 2500 → 2: 5, high.
    # EASIX 500·1.5/150 = 5.0; m-EASIX 500·4/150 = 13.33
    "P3": ("1e6/kg", "new_donor", (2.5, 8.0, 150, 40, 2500, 500, 1.5)),
    # 0, low. EASIX 250·1.0/250 = 1.0; m-EASIX 250·0.2/250 = 0.2
    "P4": ("1e6/kg", "prior_sct_donor", (3.0, 13.0, 250, 2, 100, 250, 1.0)),
    # ANC 0.5 → 1, Hb normal, platelets/CRP/ferritin missing: 1 to 6 points, not
    # determinable; no LDH: no EASIX
    "P5": ("1e6/kg", "new_donor", (0.5, 11.0, None, None, None, None, None)),
}
EASIX = {"P1": 4.0, "P2": 1.0, "P3": 5.0, "P4": 1.0}
M_EASIX = {"P1": 2.5, "P2": 200 * 0.5 / 220, "P3": 500 * 4 / 150, "P4": 0.2}


def _obs_rows(pid: str, v: tuple) -> list[str]:
    anc, hb, plt, crp, fer, ldh, cr = v
    rows = []
    if anc is not None:  # P4 written in cells/uL; an older normal ANC is superseded
        rows.append(f"{pid},-8,neutrophils,3.1,10^9/L")
        rows.append(
            f"{pid},-5,anc,{anc * 1000:g},cells/uL"
            if pid == "P4"
            else f"{pid},-5,ANC,{anc},x10^9/L"
        )
    if hb is not None:  # P2 in g/L
        rows.append(
            f"{pid},-5,Haemoglobin,{hb * 10:g},g/L" if pid == "P2" else f"{pid},-5,hb,{hb},g/dL"
        )
    if plt is not None:
        rows.append(f"{pid},-5,PLT,{plt},10^9/L")
        rows.append(f"{pid},2,platelets,5,10^9/L")  # after infusion: never used
    if crp is not None:
        rows.append(f"{pid},-5,C-reactive protein,{crp},mg/L")
    if fer is not None:
        rows.append(f"{pid},-5,ferritin,{fer},ng/mL")
    if ldh is not None:
        rows.append(f"{pid},-5,LDH,{ldh},U/L")
    if cr is not None:  # P3 in umol/L (1.5 mg/dL = 132.6 umol/L)
        rows.append(
            f"{pid},-5,creatinine,{cr * 88.4:g},umol/L"
            if pid == "P3"
            else f"{pid},-5,creatinine,{cr},mg/dL"
        )
    return rows


@pytest.fixture(scope="module")
def risk_cohort(tmp_path_factory: pytest.TempPathFactory, make_cohort_dir):
    from cartrial.cohort import load_cohort

    tmp = tmp_path_factory.mktemp("risk")
    pats = "\n".join(
        f"{pid},{30 + i},{'MF'[i % 2]},yes,{d},{s}"
        for i, (pid, (d, s, _)) in enumerate(LABS.items())
    )
    obs = [r for pid, (_, _, v) in LABS.items() for r in _obs_rows(pid, v)]
    return load_cohort(
        make_cohort_dir(
            tmp,
            patients=("patient_id,age_years,sex,infused,dose_level,product_source\n" + pats + "\n"),
            events="""
        patient_id,day,event,response
        P1,28,response,CR
        P2,28,response,CR
        P3,28,response,NR
        P4,28,response,CR
        P5,28,response,CR
        P1,100,death,
        P2,200,last_contact,
        P3,60,death,
        P4,300,last_contact,
        P5,150,relapse,
        P5,250,last_contact,
    """,
            observations="patient_id,day,analyte,value,unit\n" + "\n".join(obs) + "\n",
        )
    )


@pytest.fixture(scope="module")
def risk_report(risk_cohort):
    from cartrial.report.build import build_report

    return build_report(risk_cohort)


def _iqr_text(values: list[float]) -> str:
    """median (IQR), n by NumPy's linear (type 7) percentiles, independent of the report."""
    q1, med, q3 = np.percentile(values, [25, 50, 75])
    return f"{med:.2f} ({q1:.2f}–{q3:.2f}), n={len(values)}"


HI, LO, ND = (
    "CAR-HEMATOTOX high (≥ 2), n (%)",
    "CAR-HEMATOTOX low (0–1), n (%)",
    "CAR-HEMATOTOX not determinable, n (%)",
)


def test_risk_table_by_group_matches_the_hand_worked_scores(risk_report) -> None:
    tab = risk_report.table("risk_scores").set_index(["Characteristic", "Level"])
    hi, lo, nd = HI, LO, ND
    allp = tab.loc[("All patients", "")]
    assert (allp["N"], allp[hi], allp[lo], allp[nd]) == (5, "2 (40.0%)", "2 (40.0%)", "1 (20.0%)")
    assert allp["EASIX, median (IQR)"] == _iqr_text(list(EASIX.values())) == "2.50 (1.00–4.25), n=4"
    assert allp["m-EASIX, median (IQR)"] == _iqr_text(list(M_EASIX.values()))
    low_dose = tab.loc[("Dose level", "5 × 10⁵/kg")]
    assert (low_dose["N"], low_dose[hi], low_dose[lo], low_dose[nd]) == (
        2,
        "1 (50.0%)",
        "1 (50.0%)",
        "0 (0.0%)",
    )
    assert low_dose["EASIX, median (IQR)"] == _iqr_text([4.0, 1.0])
    high_dose = tab.loc[("Dose level", "1 × 10⁶/kg")]
    assert (high_dose[hi], high_dose[lo], high_dose[nd]) == ("1 (33.3%)", "1 (33.3%)", "1 (33.3%)")
    assert high_dose["EASIX, median (IQR)"].endswith("n=2")  # P5: no LDH, never 0
    from cartrial.cohort.vocab import PRODUCT_SOURCES

    source = tab.xs("CAR-T product source", level="Characteristic")
    order = [lv for lv in PRODUCT_SOURCES if lv in ("new_donor", "prior_sct_donor")]
    assert list(source.index) == [
        {"new_donor": "New donor", "prior_sct_donor": "Donor of prior SCT"}[lv] for lv in order
    ]  # the vocabulary's order, stable
    assert source.loc["New donor", hi] == "2 (66.7%)"
    assert source.loc["Donor of prior SCT", lo] == "2 (100.0%)"
    assert source.loc["Donor of prior SCT", "m-EASIX, median (IQR)"] == _iqr_text(
        [M_EASIX["P2"], M_EASIX["P4"]]
    )


def test_risk_caption_states_the_time_point_rule_and_the_sources(risk_report) -> None:
    item = risk_report.table_item("risk_scores")
    assert "latest value from day -10 to day -1" in item.caption
    assert "Rejeski 2021" in item.caption and "Luft 2017" in item.caption
    assert "Pennisi 2021" in item.caption
    assert item.population.startswith("Population")
    titles = [s["title"] for s in risk_report.sections()]
    assert titles.index("Pre-infusion risk scores") == titles.index("Baseline characteristics") + 1


def test_hematotox_risk_is_a_subgroup_and_forest_variable(risk_report) -> None:
    risk = risk_report.patients.set_index("patient_id")["car_hematotox_risk"]
    assert risk.drop("P5").to_dict() == {"P1": "high", "P2": "low", "P3": "high", "P4": "low"}
    assert pd.isna(risk["P5"])  # not determinable: no subgroup level
    sub = risk_report.table("subgroups")
    rows = sub[sub["Subgroup"] == "CAR-HEMATOTOX risk (Rejeski 2021)"]
    os_rows = rows[rows["Endpoint"] == "OS"]
    # OS: high = P1 (death 100), P3 (death 60): 2 events; low = P2, P4 alive: 0
    assert os_rows["Level"].tolist()[:2] == ["Low", "High"]
    assert os_rows["Events"].tolist()[:2] == [0, 2]
    assert os_rows["Level"].tolist()[2] == "missing (excluded, n=1)"
    cox = risk_report.table("hazard_ratios")
    assert "CAR-HEMATOTOX risk (Rejeski 2021)" in set(cox["Subgroup"])
    names = {f.name for _, f in risk_report.figures}
    assert "km_os_by_car_hematotox_risk" in names


def test_risk_table_reaches_the_pdf_and_docx(risk_report, tmp_path: Path) -> None:
    import docx
    from pypdf import PdfReader

    from cartrial.report.build import write_report

    out = write_report(risk_report, tmp_path / "out")
    assert (out / "tables" / "risk_scores.csv").exists()
    text = "".join(p.extract_text() for p in PdfReader(out / "report.pdf").pages)
    assert "Pre-infusion risk scores" in text
    doc = docx.Document(str(out / "tables.docx"))
    cells = {c.text for t in doc.tables for row in t.rows for c in row.cells}
    assert "2 (66.7%)" in cells and HI in cells


def test_cohort_without_pre_infusion_labs_says_why(tmp_path: Path, make_cohort_dir) -> None:
    from cartrial.cohort import load_cohort
    from cartrial.report.build import build_report

    cohort = load_cohort(
        make_cohort_dir(
            tmp_path,
            patients="""
        patient_id,age_years,sex,infused
        P1,12,M,yes
        P2,40,F,yes
    """,
            events="""
        patient_id,day,event,response
        P1,28,response,CR
        P2,28,response,NR
        P1,100,death,
        P2,200,last_contact,
    """,
            observations="""
        patient_id,day,analyte,value,unit
        P1,7,anc,0.4,10^9/L
        P2,0,ldh,400,U/L
    """,
        )
    )
    report = build_report(cohort)
    assert not [t for t in report.tables if t.name == "risk_scores"]
    notes = [n for s, n in report.section_notes if s == "risk"]
    assert len(notes) == 1 and "not shown" in notes[0] and "before infusion" in notes[0]
    assert "car_hematotox_risk" not in report.patients.columns


def test_only_easix_inputs_show_easix_and_say_hematotox_is_missing(
    tmp_path: Path, make_cohort_dir
) -> None:
    from cartrial.cohort import load_cohort
    from cartrial.report import tables as T
    from cartrial.report.settings import ReportSettings

    cohort = load_cohort(
        make_cohort_dir(
            tmp_path,
            patients="""
        patient_id,age_years,sex,infused
        P1,12,M,yes
        P2,40,F,yes
    """,
            events="""
        patient_id,day,event
        P1,100,death
        P2,200,last_contact
    """,
            observations="""
        patient_id,day,analyte,value,unit
        P1,-3,ldh,300,U/L
        P1,-3,creatinine,0.5,mg/dL
        P1,-4,platelets,50,10^9/L
        P2,-3,ldh,600,U/L
    """,
        )
    )
    # platelets is a CAR-HEMATOTOX marker too: P1 50 → 2 points, high whatever the
    # missing markers; P2 has none: not determinable
    p = T.analysis_patients(cohort, ReportSettings())
    tab, note, why = T.risk_score_table(cohort, p)
    assert why == "" and tab is not None
    row = tab.iloc[0]
    assert row["EASIX, median (IQR)"] == "3.00 (3.00–3.00), n=1"  # 300 × 0.5 / 50
    assert "m-EASIX, median (IQR)" not in tab.columns
    assert "m-EASIX not shown: no CRP value before infusion" in note
    assert row[HI] == "1 (50.0%)"
    assert row[ND] == "1 (50.0%)"


def test_easix_per_doubling_in_the_cox_table_says_why_it_is_not_estimable(risk_report) -> None:
    """Hand cohort: the two deaths (P3, P1) have the highest log2 EASIX in their risk sets
    (day 60: P3 2.32 of 2, 0, 2.32, 0; day 100: P1 2 of 2, 0, 0): monotone likelihood."""
    cox = risk_report.table("hazard_ratios")
    row = cox[(cox["Endpoint"] == "OS") & (cox["Subgroup"] == "EASIX, pre-infusion (log2)")]
    assert len(row) == 1
    r = row.iloc[0]
    assert (r["Level"], r["N"], r["Events"]) == ("per doubling", 4, 2)
    assert r["HR (95% CI)"] == "NE (monotone likelihood, no finite estimate)"
    assert "HR per doubling" in risk_report.table_item("hazard_ratios").caption
    forest = risk_report.figure("forest_os")
    assert "EASIX, pre-infusion (log2)" in set(forest.data["Subgroup"])
    assert "per doubling" in forest.caption


def test_cox_per_doubling_matches_lifelines() -> None:
    """HR per unit of log2 EASIX against lifelines' CoxPHFitter (Efron ties) on a seeded
    cohort with ties, missing values and censoring."""
    from lifelines import CoxPHFitter

    from cartrial.report.settings import ReportSettings
    from cartrial.report.tables import cox_continuous_table

    rng = np.random.default_rng(11)
    n = 60
    x = rng.normal(1.5, 1.2, n)
    t = np.ceil(rng.exponential(400 * np.exp(-0.5 * x)))  # whole days: ties
    c = np.ceil(rng.uniform(100, 900, n))
    e = (t <= c).astype(int)
    time = np.minimum(t, c)
    ids = [f"S{i:02d}" for i in range(n)]
    values = pd.Series(x, index=ids)
    values.iloc[:5] = np.nan  # no EASIX: left out
    d = pd.DataFrame({"patient_id": ids, "time_days": time, "event": e})
    row = cox_continuous_table(d, values, "EASIX", "per doubling", ReportSettings(), "OS")
    r = row.iloc[0]
    ref = (
        CoxPHFitter()
        .fit(pd.DataFrame({"x": x[5:], "t": time[5:], "e": e[5:]}), "t", "e")
        .summary.loc["x"]
    )
    assert r["N"] == 55 and r["Events"] == int(e[5:].sum())
    assert r["hr"] == pytest.approx(ref["exp(coef)"], rel=1e-3)
    assert r["lower"] == pytest.approx(ref["exp(coef) lower 95%"], rel=1e-3)
    assert r["upper"] == pytest.approx(ref["exp(coef) upper 95%"], rel=1e-3)
    assert r["HR (95% CI)"] == (
        f"{ref['exp(coef)']:.2f} ({ref['exp(coef) lower 95%']:.2f}–"
        f"{ref['exp(coef) upper 95%']:.2f})"
    )


def test_wide_table_without_observations_says_there_are_no_labs() -> None:
    from cartrial.cohort import load_cohort
    from cartrial.report.build import build_report

    report = build_report(load_cohort("tan2023"))
    notes = [n for s, n in report.section_notes if s == "risk"]
    assert notes == [
        "Pre-infusion risk scores (CAR-HEMATOTOX, EASIX) are not shown: the cohort has no "
        "observations table (laboratory values by day), so there are no pre-infusion labs "
        "to score."
    ]
    assert "risk_scores" not in {t.name for t in report.tables}
