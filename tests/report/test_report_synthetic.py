"""The report on the 60-patient synthetic cohort: every number recounted independently.

The report is built and written once per module. Counts are recounted from the source
rows with plain pandas; survival numbers are checked against lifelines, proportions
against statsmodels; figures are checked as files (SVG parses, PNG decodes) and against
the numbers they drew.
"""

from __future__ import annotations

import re
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
RANK = {
    "CR": 0,
    "CRh": 1,
    "CRi": 2,
    "MLFS": 3,
    "PR": 4,
    "OR": 5,
    "SD": 6,
    "NR": 7,
    "PD": 8,
    "NE": 9,
}


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
    """A report CSV; a synthetic cohort's tables start with a '# SYNTHETIC DATA' line."""
    path = out / "tables" / f"{name}.csv"
    first = path.read_text(encoding="utf-8").splitlines()[0]
    assert first == "# SYNTHETIC DATA — not real patients", first
    return pd.read_csv(path, dtype=str, keep_default_na=False, skiprows=1)


def consolidation_ids(cohort) -> set[str]:
    """Hand recount: an SCT after infusion preceded by a CR/CRi/CRh response and by no
    relapse or progression (issue 10's definition)."""
    ev = cohort.events
    out = set()
    for pid, sub in ev.groupby("patient_id"):
        sct = sub.loc[(sub["event"] == "sct") & (sub["day"] >= 0), "day"]
        if sct.empty:
            continue
        d = sct.min()
        cr = sub[
            (sub["event"] == "response")
            & sub["response"].isin(["CR", "CRi", "CRh"])
            & (sub["day"] <= d)
        ]
        rel = sub[sub["event"].isin(["relapse", "progression"]) & (sub["day"] <= d)]
        if len(cr) and rel.empty:
            out.add(pid)
    return out


# ------------------------------------------------------------------------------ files
def test_every_output_file_is_there_and_valid(built) -> None:
    _, report, out = built
    html = (out / "index.html").read_text(encoding="utf-8")
    assert "SYNTHETIC DATA" in html
    assert '<img src="data:image/png;base64,' in html  # figures inlined
    assert 'src="http' not in html and 'href="http' not in html  # self-contained
    assert built[0].input_sha256 in html
    assert (out / "report.pdf").read_bytes()[:5] == b"%PDF-"
    assert (out / "settings.yaml").exists()
    for t in report.tables:
        assert (out / "tables" / f"{t.name}.csv").exists()
        assert f"table-{t.name}" in html
    names = {f.name for _, f in report.figures}
    assert {
        "patient_flow",
        "km_os",
        "km_pfs",
        "cif_relapse_nrm",
        "swimmer",
        "forest_os",
        "km_os_by_sct_consolidation",
        "km_os_by_dose_level",
    } <= names
    assert any(n.startswith("kinetics_") for n in names)  # the kinetics section's figures
    from PIL import Image

    for name in names:
        path = out / "figures" / f"{name}.png"
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        img = np.asarray(Image.open(path))
        assert img.ndim == 3 and img.shape[0] > 300 and img.shape[1] > 300
        assert img.std() > 5  # not blank
        assert not (out / "figures" / f"{name}.svg").exists()  # drawn once: PNG only
    assert not [p for p in out.parent.iterdir() if p.name.startswith(".")]  # no temp folders


def test_pdf_is_typeset_with_pages_bookmarks_fonts_and_the_synthetic_label(built) -> None:
    from pypdf import PdfReader

    _, report, out = built
    pdf = PdfReader(out / "report.pdf")
    n = len(pdf.pages)
    texts = [p.extract_text() for p in pdf.pages]
    for i, text in enumerate(texts, 1):
        assert "SYNTHETIC DATA" in text, i
        assert f"page {i} of {n}" in text, i
    # real text tables, not pictures of text: a Table 1 cell and every table title
    joined = " ".join(texts)
    assert "Donor of prior SCT" in joined and "prior_sct_donor" not in joined
    n_tables = sum(1 for _ in report.tables)
    assert f"Table {n_tables}." in joined and f"Table {n_tables + 1}." not in joined
    outline = [o.title for o in pdf.outline if not isinstance(o, list)]
    assert "Baseline characteristics" in outline and "Methods" in outline
    nested = [o.title for o in pdf.outline if isinstance(o, list) for o in o]
    assert any(t.startswith("Table 1.") for t in nested)
    assert any(t.startswith("Figure 1.") for t in nested)
    fonts = set()
    for page in pdf.pages:
        for f in (page["/Resources"].get("/Font") or {}).values():
            desc = f.get_object()
            fd = desc.get("/FontDescriptor")
            if fd is None and "/DescendantFonts" in desc:
                fd = desc["/DescendantFonts"][0].get_object().get("/FontDescriptor")
            if fd is not None:
                fd = fd.get_object()
                fonts.add((str(desc["/BaseFont"]), "/FontFile2" in fd))
    assert fonts and all(embedded for _, embedded in fonts), fonts
    assert pdf.metadata.title == report.settings.title


def test_docx_tables_match_the_csv_tables(built) -> None:
    import docx

    from cartrial.report.document import display_rows

    _, report, out = built
    doc = docx.Document(str(out / "tables.docx"))
    assert "SYNTHETIC DATA" in doc.sections[0].header.paragraphs[0].text
    short = [t for sec in report.sections() for t in sec["tables"] if len(t.df) <= 200]
    assert len(doc.tables) == len(short)
    for item, tab in zip(short, doc.tables, strict=True):
        header, rows = display_rows(item)
        assert [c.text for c in tab.rows[0].cells] == header, item.name
        assert len(tab.rows) == len(rows) + 1
        assert [c.text for c in tab.rows[-1].cells] == rows[-1][1]
    t1 = next(t for t in doc.tables if t.rows[0].cells[0].text == "Characteristic")
    firsts = [r.cells[0].text for r in t1.rows]
    assert "Sex" in firsts and "Male" in firsts  # a heading row and its indented level


def test_methods_state_definitions_versions_and_ci_methods(built) -> None:
    html = (built[2] / "index.html").read_text(encoding="utf-8")
    from cartrial.endpoints.definitions import ENDPOINTS

    assert ENDPOINTS["OS"].text.split(";")[0] in html
    assert "log-log scale" in html and "wilson method" in html
    assert "R survfit" in html and "Aalen–Johansen" in html
    assert "immortal time" in html
    import matplotlib
    import reportlab

    assert f"Matplotlib {matplotlib.__version__}" in html
    assert f"ReportLab {reportlab.Version}" in html
    assert re.search(r"Data cut-off: 20\d\d-\d\d-\d\d", html)  # infusion date + follow-up


# ------------------------------------------------------------------------------ Table 1
SEX = {"M": "Male", "F": "Female"}
SOURCE = {
    "prior_sct_donor": "Donor of prior SCT",
    "new_donor": "New donor",
    "universal": "Universal (third-party)",
    "autologous": "Autologous",
}


def test_table1_counts_match_a_recount(built, infused) -> None:
    t1 = table(built[2], "table1_baseline")
    overall = [c for c in t1.columns if c.startswith("Overall")][0]
    assert overall == f"Overall (n={len(infused)})"
    checks = {
        "Sex": ("sex", SEX),
        "CAR-T product source": ("product_source", SOURCE),
        "Diagnosis": ("diagnosis", {}),
        "HLA match": ("hla_match", {}),
    }
    for label, (col, names) in checks.items():
        rows = t1[t1["Characteristic"] == label]
        assert len(rows) > 0, label
        raw = infused[col].astype(object)
        for level, cell in zip(rows["Level"], rows[overall], strict=True):
            if level == "Missing":
                assert cell == str(int(raw.isna().sum()))  # gtsummary: count only
                continue
            code = next((k for k, v in names.items() if v == level), None)
            expect = (
                (raw == code).sum()
                if code is not None  # free text: first letter capital
                else (raw.str[:1].str.upper() + raw.str[1:] == level).sum()
            )
            assert n_of(cell) == expect, (label, level)
        assert ("Missing" in set(rows["Level"])) == bool(raw.isna().any())
    prior = t1[t1["Characteristic"] == "Prior allogeneic SCT"].set_index("Level")[overall]
    assert n_of(prior["Yes"]) == int(infused["prior_allo_sct"].eq(True).sum())
    emd = t1[t1["Characteristic"] == "Extramedullary disease"].set_index("Level")[overall]
    no_emd = infused["extramedullary"].astype(str).str.lower().isin(["no", "none"])
    assert n_of(emd["No"]) == int(no_emd.sum()) and n_of(emd["Yes"]) == int((~no_emd).sum())
    cell = t1[t1["Characteristic"] == "Age, years"][overall].iloc[0]
    a = infused["age_years"].to_numpy()
    assert cell == f"{np.median(a):.1f} ({a.min():.1f}–{a.max():.1f})"
    dose = t1[t1["Characteristic"] == "Dose, CAR-T cells/kg"][overall].iloc[0]
    assert re.fullmatch(r"\d\.\d × 10[⁵⁶] \(\d\.\d × 10[⁵⁶]–\d\.\d × 10[⁶⁷]\)", dose), dose
    assert not t1["Level"].str.contains("_").any()  # no raw codes
    levels = t1[t1["Characteristic"] == "Dose level"]["Level"].tolist()
    assert levels[:3] == ["5 × 10⁵/kg", "1 × 10⁶/kg", "2 × 10⁶/kg"]  # dose order, not counts


# ------------------------------------------------------------------------------ response
def best_responses(cohort, ids) -> pd.Series:
    ev = cohort.events
    r = ev[(ev["event"] == "response") & ev["day"].between(0, 35) & ev["response"].notna()]
    r = r.assign(rank=r["response"].map(RANK)).sort_values(["rank", "day"])
    return r.drop_duplicates("patient_id").set_index("patient_id")["response"].reindex(ids)


def test_response_rates_recount_and_wilson(built, infused) -> None:
    from statsmodels.stats.proportion import proportion_confint

    cohort, report, out = built
    best = best_responses(cohort, infused["patient_id"])
    n = len(infused)
    expect = {
        "ORR": best.isin(["CR", "CRi", "CRh", "MLFS", "PR", "OR"]).sum(),
        "CR": (best == "CR").sum(),
        "CR/CRi": best.isin(["CR", "CRi", "CRh"]).sum(),
    }
    resp = table(out, "response").set_index("Measure")
    for measure, k in expect.items():
        assert resp.loc[measure, "n/N"] == f"{k}/{n}"
        lo, hi = proportion_confint(k, n, alpha=0.05, method="wilson")
        est, low, high = est_ci(resp.loc[measure, "% (95% CI)"])
        assert (est, low, high) == (round(100 * k / n, 1), round(100 * lo, 1), round(100 * hi, 1))
    ev = cohort.events
    mrdneg = ev[
        (ev["event"] == "response")
        & ev["day"].between(0, 35)
        & ev["response"].isin(["CR", "CRi"])
        & (ev["mrd"] == "negative")
    ]
    assert resp.loc["MRD-negative CR/CRi", "n/N"] == f"{mrdneg['patient_id'].nunique()}/{n}"
    # regression: the title states the window the methods use (days 0–35), not "day 28–30"
    item = report.table_item("response")
    assert "days 0–35" in item.title and "28–30" not in item.title
    assert item.caption.startswith(f"Population: infused (safety / modified ITT), N = {n}.")


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
    cap = report.table_item("time_to_event").caption
    assert "DFS" in cap and "in complete remission" in cap  # per-endpoint populations


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
    drawn = report.figure("cif_relapse_nrm")
    first = drawn.info["at_risk"].set_index("time")["n_at_risk"]
    assert first[0.0] == len(cir)  # numbers at risk under the CIF


def test_median_followup_is_reverse_km(built) -> None:
    from lifelines import KaplanMeierFitter

    _, report, out = built
    os_ = report.endpoints[report.endpoints["endpoint"] == "OS"]
    kmf = KaplanMeierFitter().fit(os_["time_days"] / 30.4375, 1 - os_["event"])
    fu = table(out, "followup")
    assert est_ci(fu["Value"].iloc[0])[0] == pytest.approx(kmf.median_survival_time_, abs=0.051)


def test_subgroup_logrank_p_matches_lifelines(built, infused) -> None:
    from lifelines.statistics import multivariate_logrank_test

    cohort, report, out = built
    sub = table(out, "subgroups")
    ep = report.endpoints
    cons = consolidation_ids(cohort)
    best = best_responses(cohort, infused["patient_id"])
    cr = set(best[best.isin(["CR", "CRi", "CRh"])].index)
    for name in ("OS", "PFS"):
        d = ep[(ep["endpoint"] == name) & ep["patient_id"].isin(cr)]  # CR/CRi patients only
        g = np.where(d["patient_id"].isin(cons), "yes", "no")
        p = multivariate_logrank_test(d["time_days"], g, d["event"]).p_value
        rows = sub[(sub["Endpoint"] == name) & sub["Subgroup"].str.startswith("Consolidation")]
        assert "naive" in rows["Subgroup"].iloc[0]
        shown = rows["Log-rank p"].iloc[0]
        assert shown == ("<0.001" if p < 0.001 else f"{p:.3f}")
        counts = rows.set_index("Level")["N"].astype(int)
        assert counts["Yes"] == (g == "yes").sum() and counts["No"] == (g == "no").sum()
        d = ep[ep["endpoint"] == name]
        dose = sub[(sub["Endpoint"] == name) & (sub["Subgroup"] == "Dose level")]
        p_dose = multivariate_logrank_test(
            d["time_days"],
            d["patient_id"].map(infused.set_index("patient_id")["dose_level"]),
            d["event"],
        ).p_value
        assert dose["Log-rank p"].iloc[0] == ("<0.001" if p_dose < 0.001 else f"{p_dose:.3f}")


def test_hazard_ratios_match_lifelines_cox(built, infused) -> None:
    from lifelines import CoxPHFitter

    _, report, out = built
    hr = table(out, "hazard_ratios")
    ep = report.endpoints
    d = ep[ep["endpoint"] == "OS"].merge(infused[["patient_id", "prior_allo_sct"]], on="patient_id")
    data = pd.DataFrame(
        {
            "t": d["time_days"],
            "e": d["event"],
            "no_prior": (~d["prior_allo_sct"].astype(bool)).astype(float),
        }
    )
    cph = CoxPHFitter().fit(data, "t", "e")  # Efron ties, as cartrial
    rows = hr[(hr["Endpoint"] == "OS") & (hr["Subgroup"] == "Prior allogeneic SCT")]
    ref, other = rows.iloc[0], rows.iloc[1]
    assert (ref["Level"], ref["HR (95% CI)"]) == ("Yes", "1 (reference)")
    s = cph.summary.loc["no_prior"]
    expect = f"{s['exp(coef)']:.2f} ({s['exp(coef) lower 95%']:.2f}–{s['exp(coef) upper 95%']:.2f})"
    assert other["HR (95% CI)"] == expect
    assert float(other["p"]) == pytest.approx(s["p"], abs=0.0011)
    assert int(other["N"]) == int(data["no_prior"].sum())
    forest = report.figure("forest_os")
    assert len(forest.data) == (hr["Endpoint"] == "OS").sum()


# ------------------------------------------------------------------------------ AEs
def test_adverse_event_table_matches_a_recount(built, infused) -> None:
    cohort, _, out = built
    ae = cohort.adverse_events[cohort.adverse_events["patient_id"].isin(infused["patient_id"])]
    ae = ae[ae["grade"] > 0]
    # patients still under observation on day 30: known alive (or dying) on/after day 30
    ev, ob = cohort.events, cohort.observations
    last = (
        pd.concat(
            [
                ev[["patient_id", "day"]],
                ae.assign(day=ae["resolution_day"].fillna(ae["onset_day"]))[["patient_id", "day"]],
                ob[["patient_id", "day"]],
            ]
        )
        .groupby("patient_id")["day"]
        .max()
    )
    observed30 = set(last[last >= 30].index) & set(infused["patient_id"])
    aet = table(out, "adverse_events")
    windows = {
        "Any time": (ae, len(infused)),
        "< 30 d": (ae[ae["onset_day"] < 30], len(infused)),
        "≥ 30 d": (
            ae[(ae["onset_day"] >= 30) & ae["patient_id"].isin(observed30)],
            len(observed30),
        ),
    }
    assert list(pd.unique(aet["Window"])) == ["< 30 d", "≥ 30 d", "Any time"]
    names = {
        "CRS": "Cytokine release syndrome",
        "ICANS": "ICANS (neurotoxicity)",
        "aGVHD": "Acute GVHD",
        "infection": "Infection",
        "neutropenia": "Neutropenia",
    }
    for wname, (sub, n) in windows.items():
        rows = aet[(aet["Window"] == wname) & (aet["Group"] == "Overall")].set_index("Term")
        assert (rows["N"].astype(int) == n).all()
        worst = sub.groupby(["patient_id", "term"])["grade"].max().reset_index()
        for term, shown in names.items():
            w = worst[worst["term"] == term]
            assert n_of(rows.loc[shown, "Any grade"]) == len(w), (wname, term)
            assert n_of(rows.loc[shown, "Grade ≥3"]) == int((w["grade"] >= 3).sum())
            assert n_of(rows.loc[shown, "Grade 1–2"]) == int(w["grade"].isin([1, 2]).sum())
            assert n_of(rows.loc[shown, "Grade 3–4"]) == int(w["grade"].isin([3, 4]).sum())
            assert n_of(rows.loc[shown, "Grade 5"]) == int((w["grade"] == 5).sum())
        any_ae = sub.groupby("patient_id")["grade"].max()
        assert n_of(rows.loc["Any adverse event", "Any grade"]) == len(any_ae)
        assert n_of(rows.loc["Any adverse event", "Grade 5"]) == int((any_ae == 5).sum())
    # order: any AE, CRS, ICANS, then by the number of patients (any time) descending
    terms = aet[(aet["Window"] == "Any time") & (aet["Group"] == "Overall")]["Term"].tolist()
    assert terms[:3] == ["Any adverse event", "Cytokine release syndrome", "ICANS (neurotoxicity)"]
    counts = [
        n_of(c)
        for c in aet[(aet["Window"] == "Any time") & (aet["Group"] == "Overall")]["Any grade"].iloc[
            3:
        ]
    ]
    assert counts == sorted(counts, reverse=True)


# ------------------------------------------------------------------------------ figures
def test_km_at_risk_numbers_match_the_km_table_and_a_direct_count(built) -> None:
    from cartrial.stats import kaplan_meier

    cohort, report, _ = built
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
        # the median marked is the table's median; landmarks marked at 6/12/24 months
        med = drawn.info["medians"][0]["median"]
        assert med == pytest.approx(fit.median(ci_method="bands").estimate)
        marks = {m["time"]: m["estimate"] for m in drawn.info["landmarks"]}
        for tt, est in marks.items():
            assert est == pytest.approx(float(fit.survival_at(tt).estimate))
        assert drawn.info["xlabel"] == "Time since CAR-T infusion (months)"
    by = report.figure("km_os_by_sct_consolidation")
    assert set(by.data["group"]) == {"Yes", "No"}
    first = by.data[by.data["time"] == 0].set_index("group")["n_at_risk"]
    assert first["Yes"] == len(consolidation_ids(cohort) & set(report.endpoints["patient_id"]))
    assert by.info["p_value"] is not None and "naive" in by.title
    dose = report.figure("km_os_by_dose_level")
    assert dose.info["bands"] is False  # 4 groups: no overlapping bands


def test_dor_axis_starts_at_first_response(built) -> None:
    """Regression: the DOR curve's x-axis said 'since CAR-T infusion'."""
    drawn = built[1].figure("km_dor")
    assert drawn.info["xlabel"] == "Time since first response (months)"


def test_patient_flow_counts_match_a_recount(built, infused) -> None:
    cohort, report, _ = built
    flow = report.figure("patient_flow").info["flow"]
    p = cohort.patients
    assert flow["enrolled"] == int(p["enrolled"].astype(bool).sum())
    assert flow["infused"] == len(infused)
    pops = {x["code"]: x for x in flow["populations"]}
    not_infused = int(
        (
            p["enrolled"].astype(bool) & ~p["infused"].astype("boolean").fillna(False).astype(bool)
        ).sum()
    )
    assert pops["SAF"]["excluded"] == not_infused
    if not_infused:
        assert "not infused" in pops["SAF"]["reasons"]
    best = best_responses(cohort, infused["patient_id"])
    r = flow["response"]
    assert r["complete"] == best.isin(["CR", "CRi", "CRh"]).sum()
    assert r["none"] == best.isin(["NR", "SD", "PD"]).sum()
    assert r["not_assessed"] == best.isna().sum()
    cons = consolidation_ids(cohort)
    complete = set(best[best.isin(["CR", "CRi", "CRh"])].index)
    responders = set(best[best.isin(["CR", "CRi", "PR"])].index)
    branches = {b["label"]: b for b in flow["branches"]}
    assert branches["CR/CRi, consolidation SCT"]["n"] == len(complete & cons)
    assert branches["Response, no consolidation SCT"]["n"] == len(responders - cons)
    dead = set(cohort.events.loc[cohort.events["event"] == "death", "patient_id"])
    assert sum(b["outcome"]["died"] for b in flow["branches"]) == len(
        dead & set(infused["patient_id"])
    )
    lost = set(cohort.events.loc[cohort.events["event"] == "lost_to_followup", "patient_id"])
    assert sum(b["outcome"]["lost to follow-up"] for b in flow["branches"]) == len(
        (lost - dead) & set(infused["patient_id"])
    )
    pop_tab = table(built[2], "populations").set_index("Code")
    assert int(pop_tab.loc["SAF", "n"]) == len(infused)


def test_swimmer_lanes_and_markers(built, infused) -> None:
    cohort, report, _ = built
    drawn = report.figure("swimmer")
    lanes = drawn.data
    assert sorted(lanes["patient_id"]) == sorted(infused["patient_id"])
    assert lanes["lane"].is_unique
    ev = cohort.events[cohort.events["patient_id"].isin(infused["patient_id"])]
    os_ = report.endpoints[report.endpoints["endpoint"] == "OS"].set_index("patient_id")
    assert np.allclose(
        lanes.set_index("patient_id")["end_days"].sort_index(), os_["time_days"].sort_index()
    )
    mk = drawn.info["markers"]
    assert (mk["kind"] == "death").sum() == (ev["event"] == "death").sum()
    assert (mk["kind"] == "SCT").sum() == ev[ev["event"] == "sct"]["patient_id"].nunique()
    assert (mk["kind"] == "new therapy").sum() == ev[ev["event"] == "new_therapy"][
        "patient_id"
    ].nunique()
    first_rel = (
        ev[ev["event"].isin(["relapse", "progression"])]
        .sort_values("day")
        .drop_duplicates("patient_id")
    )
    assert (mk["kind"] == "relapse CD7−").sum() == (first_rel["cd7_status"] == "negative").sum()
    assert (mk["kind"] == "relapse CD7+").sum() == (first_rel["cd7_status"] == "positive").sum()
    alive_followed = set(ev.loc[ev["event"] == "last_contact", "patient_id"])
    assert set(lanes.loc[lanes["ongoing"], "patient_id"]) == alive_followed
    # grouped: all consolidation lanes come before the others, each sorted by follow-up
    groups = lanes.sort_values("lane")["group"].tolist()
    assert groups == sorted(groups, key=lambda g: g != "Consolidation SCT")
    assert set(lanes.loc[lanes["group"] == "Consolidation SCT", "patient_id"]) == (
        consolidation_ids(cohort) & set(infused["patient_id"])
    )
    for _, g in lanes.sort_values("lane").groupby("group"):
        assert (np.diff(g["end"].to_numpy()) <= 0).all()


# ------------------------------------------------------------------------------ settings
def test_rerun_with_written_settings_gives_identical_tables(built) -> None:
    from cartrial.report.build import write_csv

    cohort, report, out = built
    settings = load_settings(out / "settings.yaml")
    assert settings == report.settings
    again = build_report(cohort, settings)
    for t in again.tables:
        path = out.parent / "again.csv"
        write_csv(t.df, path, again.synthetic)
        assert path.read_text(encoding="utf-8") == (out / "tables" / f"{t.name}.csv").read_text(
            encoding="utf-8"
        ), t.name


# ------------------------------------------------------------------------------ issue 10
def test_pfs_by_consolidation_sct_naive_landmark_and_time_dependent(built, infused) -> None:
    """Issue 10: PFS by consolidation SCT among CR patients, with the landmark and the
    time-dependent results beside the naive one (recomputed here with lifelines from the
    report's PFS rows and a hand recount of consolidation SCT)."""
    from lifelines import CoxPHFitter, CoxTimeVaryingFitter

    cohort, report, out = built
    tab = table(out, "pfs_by_consolidation_sct").set_index("Method")
    best = best_responses(cohort, infused["patient_id"])
    cr = set(best[best.isin(["CR", "CRi", "CRh"])].index)
    cons = consolidation_ids(cohort)
    ev = cohort.events
    sct_day = ev[ev["event"] == "sct"].groupby("patient_id")["day"].min()
    d = report.endpoints[
        (report.endpoints["endpoint"] == "PFS") & report.endpoints["patient_id"].isin(cr)
    ].set_index("patient_id")
    x = pd.Series([sct_day[p] if p in cons else np.nan for p in d.index], index=d.index)
    t, e = d["time_days"].astype(float), d["event"].astype(int)
    naive = tab.index[0]
    assert naive.startswith("Naive") and "immortal" in naive
    assert tab.loc[naive, "Patients (events)"].startswith(
        f"{len(d)} ({e.sum()}); SCT {x.notna().sum()}"
    )
    # landmark at the median SCT day among the transplanted (during follow-up)
    L = float(np.median(x[x.notna() & (x <= t)]))
    lm_name = f"Landmark at day {L:g}"
    keep = t > L
    ld = pd.DataFrame({"t": t[keep] - L, "e": e[keep], "x": (x[keep] <= L).astype(float)})
    s = CoxPHFitter().fit(ld, "t", "e").summary.loc["x"]
    assert tab.loc[lm_name, "HR (95% CI)"] == (
        f"{s['exp(coef)']:.2f} ({s['exp(coef) lower 95%']:.2f}–{s['exp(coef) upper 95%']:.2f})"
    )
    assert tab.loc[lm_name, "Patients (events)"].startswith(f"{keep.sum()} ({ld['e'].sum()})")
    # time-dependent Cox: split at the SCT day (no SCT on an event day in this cohort)
    rows = []
    for pid in d.index:
        if np.isnan(x[pid]) or x[pid] >= t[pid]:
            rows.append((pid, 0.0, t[pid], e[pid], 0))
        else:
            rows.append((pid, 0.0, x[pid], 0, 0))
            rows.append((pid, x[pid], t[pid], e[pid], 1))
    cp = pd.DataFrame(rows, columns=["id", "start", "stop", "e", "sct"])
    ctv = CoxTimeVaryingFitter().fit(
        cp, id_col="id", event_col="e", start_col="start", stop_col="stop"
    )
    s = ctv.summary.loc["sct"]
    td = [i for i in tab.index if i.startswith("Time-dependent Cox")][0]
    assert tab.loc[td, "HR (95% CI)"] == (
        f"{s['exp(coef)']:.2f} ({s['exp(coef) lower 95%']:.2f}–{s['exp(coef) upper 95%']:.2f})"
    )
    assert "Mantel–Byar test" in tab.index
    fg = [i for i in tab.index if i.startswith("Fine–Gray")][0]
    assert "cumulative incidence of relapse" in tab.loc[fg, "What it compares"]
    names = {f.name for s_, f in report.figures if s_ == "postinfusion"}
    assert {"simon_makuch_pfs_by_sct", "landmark_pfs_by_sct"} <= names
    html = (out / "index.html").read_text(encoding="utf-8")
    assert "immortal-time bias" in html and "Simon–Makuch" in html


def test_every_table_and_figure_states_its_population(built) -> None:
    _, report, _ = built
    for t in report.tables:
        assert t.caption.startswith(("Population: ", "Populations: ")), t.name
        assert "N = " in t.caption, t.name
    for _, d in report.figures:
        assert d.caption.startswith(("Population: ", "Populations: ")), d.name
        assert "N = " in d.caption, d.name


def test_spaghetti_above_the_limit_is_a_seeded_sample_stated_in_the_caption(built) -> None:
    from matplotlib.collections import LineCollection
    from matplotlib.figure import Figure

    from cartrial.report.build import sample_spaghetti
    from cartrial.report.figures import Drawn

    cohort, report, _ = built
    full = [d for _, d in report.figures if d.name.endswith("_spaghetti")]
    assert full and all("One line per patient" in d.caption for d in full)
    name = full[0].name.removeprefix("kinetics_")
    analyte = name.removesuffix("_spaghetti")
    obs = cohort.observations
    ids = set(obs.loc[obs["analyte"] == analyte, "patient_id"].astype(str))
    assert len(ids) > 10
    drawn = [Drawn(name, "t", Figure()) for _ in range(2)]
    for d in drawn:
        sample_spaghetti(d, cohort, analyte, ReportSettings(), max_patients=10)
    assert drawn[0].info["patients"] == drawn[1].info["patients"]  # reproducible
    kept = set(drawn[0].info["patients"])
    assert len(kept) == 10 and kept <= ids
    assert f"random sample of 10 of the {len(ids)} patients" in drawn[0].caption
    ax = drawn[0].fig.axes[0]
    assert ax.get_title(loc="left").endswith(f"random sample of 10 of {len(ids)} patients")
    segs = [
        len(c.get_segments())
        for ax in drawn[0].fig.axes
        for c in ax.collections
        if isinstance(c, LineCollection)
    ]
    assert 0 < sum(segs) <= 10  # one line per sampled patient with quantifiable values


def test_synthetic_cohort_without_pre_infusion_labs_states_why_no_risk_scores(built) -> None:
    cohort, report, out = built
    obs = cohort.observations
    pre = obs[
        (obs["day"] < 0)
        & obs["analyte"].isin(["anc", "hemoglobin", "platelets", "crp", "ferritin", "ldh"])
    ]
    if not pre.empty:  # the simulator may one day write pre-infusion labs
        assert "risk_scores" in {t.name for t in report.tables}
        return
    notes = [n for s, n in report.section_notes if s == "risk"]
    assert len(notes) == 1 and "before infusion" in notes[0]
    assert "Pre-infusion risk scores are not shown" in (out / "index.html").read_text(
        encoding="utf-8"
    )
