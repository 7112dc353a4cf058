"""The document model and its parts, tested without the renderers: labels and number
formats, gtsummary-style Table 1, the AE table by window, Cox with degenerate input, the
no-follow-up refusal, populations, swimmer pagination, column widths; plus the PDF/DOCX
renderings of a small real (non-synthetic) cohort.

Expected values come from hand-worked examples, NumPy/SciPy or lifelines, never from the
report's own output.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cartrial.report import labels as L
from cartrial.report import tables as T
from cartrial.report.document import TableItem, display_rows
from cartrial.report.settings import ReportSettings, SettingsError


# ------------------------------------------------------------------------------ labels
def test_labels_and_number_formats() -> None:
    assert L.label("prior_allo_sct") == "Prior allogeneic SCT"
    assert L.label("age_years") == "Age, years"
    assert L.value_label("prior_sct_donor") == "Donor of prior SCT"
    assert L.value_label("new_donor") == "New donor"
    assert L.value_label("5e5/kg") == "5 × 10⁵/kg"
    assert L.value_label("1.5e6/kg") == "1.5 × 10⁶/kg"
    assert L.value_label("5e6/kg (universal)") == "5 × 10⁶/kg (universal)"
    assert L.value_label("some_new_word") == "Some new word"  # never the raw code
    assert L.fmt_sci(2.0e6) == "2.0 × 10⁶" and L.fmt_sci(9.96e5) == "1.0 × 10⁶"
    assert L.fmt_sci(12.34) == "12.3"
    assert L.fmt_p(0.0004) == "<0.001" and L.fmt_p(0.04213) == "0.042"
    assert L.fmt_p(float("nan")) == "NE"
    assert L.fmt_pct(3, 8) == "3 (37.5%)" and L.fmt_pct(0, 0) == "0 (–)"


@given(st.floats(min_value=1e4, max_value=1e12, allow_nan=False))
@settings(max_examples=60, deadline=None)
def test_scientific_format_reads_back_within_rounding(x: float) -> None:
    text = L.fmt_sci(x)
    mant, exp = text.split(" × 10")
    digits = exp.translate(str.maketrans("⁰¹²³⁴⁵⁶⁷⁸⁹⁻", "0123456789-"))
    value = float(mant) * 10 ** int(digits)
    assert 1.0 <= float(mant) < 10.0
    assert value == pytest.approx(x, rel=0.051 / float(mant) + 1e-12)


def test_humanize_gives_labels_units_and_three_significant_digits() -> None:
    df = pd.DataFrame(
        {
            "analyte": ["cart_flow"],
            "cmax": [614055.5692725739],
            "half_life": [90.40464002977951],
            "fraction": [0.9818181818],
            "lambda_z_poor": [True],
            "n_samples": pd.array([10], dtype="Int64"),
        }
    )
    out = L.humanize(df)
    assert list(out.columns) == [
        "Analyte",
        "Cmax",
        "Half-life, days",
        "Share detectable, %",
        "λz poorly estimated",
        "Samples",
    ]
    assert out.iloc[0].tolist() == ["CAR-T cells (flow)", "6.14 × 10⁵", "90.4", "98.2", "Yes", "10"]


# ------------------------------------------------------------------------------ Table 1
def patients_frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "patient_id": [f"P{i}" for i in range(1, 9)],
            "age_years": [4.0, 9.0, 12.0, 15.0, 22.0, 35.0, 41.0, 60.0],
            "sex": ["M", "F", "M", "M", "F", "M", None, "F"],
            "bm_blasts_morphology_pct": ["<5", "<5", "12.5", "80", "<5", "45", "<5", "<5"],
            "extramedullary": ["no", "CNS", "no", "testis;CNS", "no", "none", "kidney", "no"],
            "product_source": [
                "new_donor",
                "prior_sct_donor",
                "new_donor",
                "new_donor",
                "prior_sct_donor",
                "new_donor",
                "new_donor",
                "prior_sct_donor",
            ],
            "arm": ["A", "A", "A", "A", "B", "B", "B", "B"],
        }
    )


def test_table1_gtsummary_style_with_iqr_limits_and_presence() -> None:
    p = patients_frame()
    s = ReportSettings(
        continuous="median_iqr",
        table1_variables=(
            "age_years",
            "sex",
            "bm_blasts_morphology_pct",
            "extramedullary",
            "product_source",
        ),
    )
    t1 = T.table1(p, s).set_index(["Characteristic", "Level"])["Overall (n=8)"]
    a = p["age_years"].to_numpy()
    q1, med, q3 = np.percentile(a, [25, 50, 75])  # NumPy's default = R type 7 = gtsummary
    assert t1[("Age, years", "median (IQR)")] == f"{med:.1f} ({q1:.1f}–{q3:.1f})"
    # Sex: levels in vocabulary order (Male, Female) with labels; missing as a count
    sex = t1.loc["Sex"]
    assert list(sex.index) == ["Male", "Female", "Missing"]
    assert sex["Male"] == "4 (50.0%)" and sex["Missing"] == "1"
    # 5 of 8 marrow values are "<5": median and Q1 fall on them; Q3 (type 7) = 5.25th value
    blasts = t1[("Marrow blasts (morphology), %", "median (IQR)")]
    # Q3 position (n-1)*0.75 = 5.25 → between sorted[5]=12.5 and sorted[6]=45: numeric
    assert blasts == f"<5 (<5–{12.5 + 0.25 * (45 - 12.5):.1f})"
    emd = t1.loc["Extramedullary disease"]
    assert dict(emd) == {"Yes": "3 (37.5%)", "No": "5 (62.5%)"}  # "none" counts as no
    src = t1.loc["CAR-T product source"]
    assert dict(src) == {"New donor": "5 (62.5%)", "Donor of prior SCT": "3 (37.5%)"}
    assert ("Age, years", "Missing") not in t1.index  # missing only when present


def test_table1_p_values_match_scipy_and_post_infusion_split_is_refused() -> None:
    from scipy.stats import fisher_exact, kruskal

    p = patients_frame().assign(sct_consolidation=["yes", "no"] * 4)
    s = ReportSettings(table1_p_values=True, table1_variables=("age_years", "product_source"))
    t1 = T.table1(p, s, group="arm")
    assert "p-value" in t1.columns
    age = t1[t1["Characteristic"] == "Age, years"]["p-value"].iloc[0]
    a = p["age_years"]
    assert age == L.fmt_p(kruskal(a[p["arm"] == "A"], a[p["arm"] == "B"]).pvalue)
    src = t1[t1["Characteristic"] == "CAR-T product source"]["p-value"].tolist()
    tab = pd.crosstab(p["product_source"], p["arm"]).to_numpy()
    assert src[0] == L.fmt_p(fisher_exact(tab).pvalue) and src[1] == ""
    no_split = T.table1(
        p, ReportSettings(table1_variables=("age_years",)), group="sct_consolidation"
    )
    assert list(no_split.columns) == ["Characteristic", "Level", "Overall (n=8)"]


def test_display_rows_fold_table1_into_headings_and_levels() -> None:
    df = pd.DataFrame(
        {
            "Characteristic": ["Age, years", "Sex", "Sex"],
            "Level": ["median (range)", "Male", "Female"],
            "Overall (n=3)": ["10.0 (2.0–30.0)", "2 (66.7%)", "1 (33.3%)"],
        }
    )
    item = TableItem(
        "t1", "Baseline", df, "baseline", group_col="Characteristic", level_col="Level"
    )
    header, rows = display_rows(item)
    assert header == ["Characteristic", "Overall (n=3)"]
    assert rows == [
        ("row", ["Age, years, median (range)", "10.0 (2.0–30.0)"]),
        ("group", ["Sex", ""]),
        ("level", ["Male", "2 (66.7%)"]),
        ("level", ["Female", "1 (33.3%)"]),
    ]
    plain = TableItem("x", "X", df.assign(hr=1.5), "efficacy", hide=("hr",))
    assert display_rows(plain)[0] == list(df.columns)  # hidden columns stay in the CSV only


# ------------------------------------------------------------------------------ AEs
def test_ae_table_worst_grade_per_window_hand_worked() -> None:
    episodes = pd.DataFrame(
        {
            "patient_id": ["A", "A", "B", "C", "C", "D"],
            "term": ["CRS", "CRS", "infection", "infection", "ICANS", "infection"],
            "onset_day": [2.0, 5.0, 40.0, 10.0, 6.0, 60.0],
            "grade": pd.array([1, 3, 5, 2, 1, 3], dtype="Int64"),
            "grade_ge3": [False, True, True, False, False, True],
        }
    )
    patients = pd.DataFrame({"patient_id": ["A", "B", "C", "D", "E"]})
    under = pd.Series([True, True, True, True, False], index=list("ABCDE"))
    tab = T.ae_table(episodes, patients, under, ReportSettings())
    early = tab[tab["Window"] == "< 30 d"].set_index("Term")
    assert early.loc["Cytokine release syndrome", "Grade 3–4"] == "1 (20.0%)"  # A worst 3
    assert early.loc["Cytokine release syndrome", "Grade 1–2"] == "0 (0.0%)"
    late = tab[tab["Window"] == "≥ 30 d"].set_index("Term")
    assert (late["N"] == 4).all()  # E not under observation on day 30
    assert late.loc["Infection", "Grade 5"] == "1 (25.0%)"
    assert late.loc["Infection", "Any grade"] == "2 (50.0%)"
    anyt = tab[tab["Window"] == "Any time"]
    # CRS and ICANS first, then by frequency (infection: 3 patients)
    assert anyt["Term"].tolist() == [
        "Any adverse event",
        "Cytokine release syndrome",
        "ICANS (neurotoxicity)",
        "Infection",
    ]
    assert anyt.set_index("Term").loc["Any adverse event", "Grade 5"] == "1 (20.0%)"


# ------------------------------------------------------------------------------ Cox
def test_cox_hazard_ratio_matches_lifelines_and_flags_a_level_without_events() -> None:
    from lifelines import CoxPHFitter

    rng = np.random.default_rng(3)
    n = 40
    grp = np.array(["new_donor"] * 20 + ["prior_sct_donor"] * 20)
    t = rng.exponential(np.where(grp == "new_donor", 10.0, 5.0)) * 30
    e = (rng.random(n) < 0.8).astype(int)
    d = pd.DataFrame({"patient_id": [f"P{i}" for i in range(n)], "time_days": t, "event": e})
    p = pd.DataFrame(
        {
            "patient_id": d["patient_id"],
            "product_source": grp,
            "dose_level": ["a"] * 20 + ["b"] * 20,
        }
    )
    tab = T.cox_subgroup_table(d, p, ["product_source"], ReportSettings(), "OS")
    x = (grp == "new_donor").astype(float)  # vocabulary order: prior_sct_donor is reference
    cph = CoxPHFitter().fit(pd.DataFrame({"t": t, "e": e, "x": x}), "t", "e")
    s = cph.summary.loc["x"]
    assert tab["Level"].tolist() == ["Donor of prior SCT", "New donor"]
    assert tab["hr"].iloc[1] == pytest.approx(s["exp(coef)"], rel=1e-3)
    assert tab["lower"].iloc[1] == pytest.approx(s["exp(coef) lower 95%"], rel=1e-3)
    # a level without events: no finite MLE (monotone likelihood), NE with the reason
    d2 = d.assign(event=np.where(p["dose_level"] == "b", 0, d["event"]))
    tab2 = T.cox_subgroup_table(d2, p, ["dose_level"], ReportSettings(), "OS")
    assert tab2["HR (95% CI)"].iloc[1] == "NE (a level without events)"


# ------------------------------------------------------------------------------ cohorts
def test_no_follow_up_cohort_is_said_and_skipped(tmp_path: Path, make_cohort_dir) -> None:
    """Regression: a cohort without follow-up gave curves with everyone censored at day 0.
    Also: a blank ``infused`` is missing, never infused (populations)."""
    from cartrial.cohort import load_cohort
    from cartrial.report.build import build_report, write_report

    cohort = load_cohort(
        make_cohort_dir(
            tmp_path,
            patients="""
        patient_id,age_years,sex,infused
        P1,12,M,yes
        P2,40,F,yes
        P3,33,F,
        P4,50,M,no
    """,
            events="""
        patient_id,day,event
        P1,0,last_contact
        P2,0,last contact
    """,
        )
    )
    messages: list[str] = []
    report = build_report(cohort, progress=messages.append)
    names = {t.name for t in report.tables}
    assert "time_to_event" not in names and "subgroups" not in names
    assert not [f for _, f in report.figures if f.name.startswith(("km_", "swimmer"))]
    notes = [n for sec, n in report.section_notes if sec == "survival"]
    assert notes and "No follow-up after infusion" in notes[0]
    assert any("no follow-up" in m for m in messages)
    assert sorted(report.patients["patient_id"]) == ["P1", "P2"]  # blank infused: excluded
    pops = report.table("populations").set_index("Code")
    assert pops.loc["SAF", "n"] == 2 and pops.loc["SAF", "Excluded"] == 2
    assert "infused not recorded: 1" in pops.loc["SAF", "Reasons for exclusion"]
    out = write_report(report, tmp_path / "out")
    html = (out / "index.html").read_text(encoding="utf-8")
    assert "No follow-up after infusion" in html and "SYNTHETIC" not in html
    from pypdf import PdfReader

    pdf_text = " ".join(p.extract_text() for p in PdfReader(out / "report.pdf").pages)
    assert "No follow-up after infusion" in pdf_text and "SYNTHETIC" not in pdf_text


def test_each_figure_is_drawn_once(tmp_path: Path, monkeypatch) -> None:
    from cartrial.cohort import load_cohort
    from cartrial.report import figures as F
    from cartrial.report.build import build_report, write_report

    monkeypatch.setenv("CARTRIAL_SERIAL", "1")
    drawn: list[str] = []
    real = F._save_png_rgb
    monkeypatch.setattr(
        F, "_save_png_rgb", lambda fig, path: (drawn.append(Path(path).name), real(fig, path))[1]
    )
    calls = {"savefig": 0}
    report = build_report(load_cohort("tan2023"))
    for _, d in report.figures:
        orig = d.fig.savefig

        def counting(*a, _orig=orig, **k):
            calls["savefig"] += 1
            return _orig(*a, **k)

        d.fig.savefig = counting
    write_report(report, tmp_path / "out")
    assert sorted(drawn) == sorted(f"{d.name}.png" for _, d in report.figures)
    assert calls["savefig"] == 0  # not again for SVG or the PDF


def _big_lanes(n: int, n_sct: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    lanes = pd.DataFrame(
        {
            "patient_id": [f"P{i:04d}" for i in range(n)],
            "group": ["Consolidation SCT"] * n_sct + ["No consolidation SCT"] * (n - n_sct),
            "end_days": np.linspace(10, 700, n),
            "ongoing": True,
            "lost": False,
        }
    )
    markers = pd.DataFrame(
        {"patient_id": lanes["patient_id"], "kind": "death", "day": lanes["end_days"]}
    )
    return lanes, markers


def test_swimmer_paginates_large_cohorts_after_an_aggregated_view() -> None:
    from cartrial.report import figures as F

    lanes, markers = _big_lanes(170, 50)
    figs = F.swimmer_figures(lanes, markers, ReportSettings())
    assert [f.name for f in figs] == ["swimmer_summary", "swimmer_p1", "swimmer_p2", "swimmer_p3"]
    pages = figs[1:]
    assert [len(f.data) for f in pages] == [80, 80, 10]
    assert all(f.fig.get_size_inches()[1] < 14 for f in figs)  # never a 51-inch page
    first = pages[0].data
    assert (first["group"] == "Consolidation SCT").sum() == 50  # group order kept
    seen = pd.concat([f.data["patient_id"] for f in pages])
    assert seen.is_unique and len(seen) == 170
    assert "3 pages of at most 80" in figs[0].caption


def test_swimmer_of_1000_patients_is_only_the_aggregated_view() -> None:
    from cartrial.report import figures as F

    lanes, markers = _big_lanes(1000, 300)
    rng = np.random.default_rng(3)
    rel = lanes.sample(200, random_state=1)
    markers = pd.concat(
        [
            markers.iloc[::2],  # half die at their lane's end
            pd.DataFrame(
                {
                    "patient_id": rel["patient_id"],
                    "kind": "relapse CD7−",
                    "day": rel["end_days"] * rng.uniform(0, 1, 200),
                }
            ),
        ],
        ignore_index=True,
    )
    figs = F.swimmer_figures(lanes, markers, ReportSettings())
    assert [f.name for f in figs] == ["swimmer_summary"]
    d = figs[0]
    assert d.fig.get_size_inches()[1] < 8
    assert "not drawn for 1000 patients" in d.caption and "Aggregated view" in d.caption
    assert (d.data.drop(columns="time").sum(axis=1) == 1000).all()  # every patient, always
    last = d.data.iloc[-1]
    assert last["Dead"] == 500  # at the longest follow-up the 500 deaths are all counted
    assert last["Dead"] + last["Follow-up ended (alive)"] == 999
    ev = d.info["events"].groupby("event").size().to_dict()
    assert ev == {"Death": 500, "Relapse": 200}


def test_course_states_worked_by_hand() -> None:
    """Four patients: A dies on day 100; B relapses on day 50, alive at last contact on
    day 200; C lost on day 150 without events; D relapses on day 120, dies on day 250."""
    from cartrial.report.figures import course_states

    lanes = pd.DataFrame({"patient_id": list("ABCD"), "end_days": [100.0, 200, 150, 250]})
    markers = pd.DataFrame(
        {
            "patient_id": ["A", "B", "D", "D", "B"],
            "kind": ["death", "relapse CD7+", "relapse CD7 unknown", "death", "CR/CRi"],
            "day": [100.0, 50, 120, 250, 28],
        }
    )
    got = course_states(lanes, markers, np.array([0, 60, 120, 160, 210, 260.0]))
    expected = [[4, 0, 0, 0], [3, 1, 0, 0], [1, 2, 1, 0], [0, 2, 1, 1], [0, 1, 1, 2], [0, 0, 2, 2]]
    assert got.drop(columns="time").to_numpy().tolist() == expected
    months = course_states(lanes, markers, np.array([60 / 30.4375]), scale=30.4375)
    assert months.drop(columns="time").to_numpy().tolist() == [[3, 1, 0, 0]]


@given(
    st.lists(
        st.lists(st.text(alphabet="ab c–", min_size=0, max_size=30), min_size=3, max_size=3),
        min_size=1,
        max_size=8,
    )
)
@settings(max_examples=60, deadline=None)
def test_pdf_column_widths_fill_the_line_and_keep_words_whole(rows: list[list[str]]) -> None:
    from cartrial.report.pdf import column_widths

    header = ["Characteristic", "Level", "Overall (n=20)"]
    width = 500.0
    w = column_widths(header, rows, width)
    assert sum(w) == pytest.approx(width)
    cols = list(zip(header, *rows, strict=True))
    words = [min(22, max(len(x) for v in c for x in (v.split() or [""]))) * 4.3 + 6 for c in cols]
    if sum(words) <= width:
        assert all(wi >= wo - 1e-9 for wi, wo in zip(w, words, strict=True))


def test_new_settings_are_checked() -> None:
    with pytest.raises(SettingsError, match="km_ci_method"):
        ReportSettings(km_ci_method="exact")
    with pytest.raises(SettingsError, match="figure_formats"):
        ReportSettings(figure_formats=("svg",))
    with pytest.raises(SettingsError, match="continuous"):
        ReportSettings(continuous="median_sd")
    assert ReportSettings().km_ci_method == "bands"  # R survfit's rule by default


def test_pdf_images_decode_to_the_figure_files(tmp_path: Path) -> None:
    """The PDF embeds each PNG's data as it is (FlateDecode + PNG predictor): decoded by
    PDFium (Chrome's PDF engine) the pixels equal the figure files."""
    import pypdfium2 as pdfium
    import pypdfium2.raw as pdfium_c
    from PIL import Image

    from cartrial.cohort import load_cohort
    from cartrial.report.build import build_report, write_report

    out = write_report(build_report(load_cohort("tan2023")), tmp_path / "out")
    pdf = pdfium.PdfDocument(str(out / "report.pdf"))
    seen = 0
    for page in pdf:
        for obj in page.get_objects(filter=[pdfium_c.FPDF_PAGEOBJ_IMAGE]):
            bgr = obj.get_bitmap(render=False).to_numpy()[..., :3][..., ::-1]
            matches = [
                p
                for p in (out / "figures").glob("*.png")
                if np.asarray(Image.open(p)).shape == bgr.shape
                and np.array_equal(np.asarray(Image.open(p).convert("RGB")), bgr)
            ]
            assert len(matches) == 1
            seen += 1
    assert seen == len(list((out / "figures").glob("*.png")))


def test_vector_figure_formats_on_request(tmp_path: Path) -> None:
    import xml.etree.ElementTree as ET

    from cartrial.cohort import load_cohort
    from cartrial.report.build import build_report, write_report

    settings = ReportSettings(figure_formats=("png", "svg", "pdf"))
    report = build_report(load_cohort("tan2023"), settings)
    out = write_report(report, tmp_path / "out")
    for _, d in report.figures:
        assert ET.parse(out / "figures" / f"{d.name}.svg").getroot().tag.endswith("svg")
        assert (out / "figures" / f"{d.name}.pdf").read_bytes()[:5] == b"%PDF-"
        assert (out / "figures" / f"{d.name}.png").exists()


def test_car_hematotox_risk_joins_table1_and_the_forest_subgroups(
    tmp_path: Path, make_cohort_dir
) -> None:
    """Pre-infusion labs give a CAR-HEMATOTOX risk column (Rejeski 2021 points, worked by
    hand here: P1 ANC 0.8 → 1, platelets 60 → 2: score 3, high; P2 all normal: 0, low)."""
    from cartrial.cohort import load_cohort
    from cartrial.report.build import build_report

    labs = []
    values = {
        "P1": (0.8, 10.5, 60, 5, 300),
        "P2": (2.5, 12.0, 220, 5, 300),
        "P3": (2.5, 8.0, 150, 40, 2500),
        "P4": (3.0, 13.0, 250, 2, 100),
    }
    for pid, (anc, hb, plt, crp, fer) in values.items():
        labs += [
            f"{pid},-6,anc,{anc},10^9/L",
            f"{pid},-6,hemoglobin,{hb},g/dL",
            f"{pid},-6,platelets,{plt},10^9/L",
            f"{pid},-6,crp,{crp},mg/L",
            f"{pid},-6,ferritin,{fer},ng/mL",
        ]
    cohort = load_cohort(
        make_cohort_dir(
            tmp_path,
            patients="""
        patient_id,age_years,sex,infused
        P1,12,M,yes
        P2,40,F,yes
        P3,33,F,yes
        P4,50,M,yes
    """,
            events="""
        patient_id,day,event,response
        P1,28,response,CR
        P2,28,response,CR
        P3,28,response,NR
        P4,28,response,CR
        P1,100,death,
        P2,200,last_contact,
        P3,60,death,
        P4,300,last_contact,
    """,
            observations="patient_id,day,analyte,value,unit\n" + "\n".join(labs) + "\n",
        )
    )
    report = build_report(cohort)
    risk = report.patients.set_index("patient_id")["car_hematotox_risk"]
    # P3: Hb 8.0 → 1, platelets 150 → 1, CRP 40 mg/L → 1, ferritin 2500 → 2: score 5
    assert risk.to_dict() == {"P1": "high", "P2": "low", "P3": "high", "P4": "low"}
    t1 = report.table("table1_baseline")
    rows = t1[t1["Characteristic"] == "CAR-HEMATOTOX risk (Rejeski 2021)"]
    assert rows["Level"].tolist() == ["Low", "High"]
    assert T.forest_subgroups(report.patients) == ["age_group", "car_hematotox_risk"]


def test_level_colours_are_stable_between_reports() -> None:
    from cartrial.report.figures import level_colours

    both = level_colours(["prior_sct_donor", "new_donor", "universal"])
    only = level_colours(["new_donor", "universal"])
    assert both[1:] == only  # a level's colour does not depend on the other levels
    assert len(set(both)) == 3
    other = level_colours(["Centre A", "Centre B"])
    assert len(set(other)) == 2
