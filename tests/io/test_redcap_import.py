"""REDCap import: a longitudinal export of the shipped CD7 CAR-T template, generated from a
small cohort built here (the truth), imports into a cohort equal to the same data given as
CSV; malformed exports give errors naming file, line, record, event and field."""

from __future__ import annotations

import shutil
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cartrial.cohort import COLUMNS, CohortError, cohort_from_frames, load_cohort, write_cohort
from cartrial.endpoints import EndpointOptions, best_response, derive_endpoints
from cartrial.io.redcap import read_redcap_instruments
from cartrial.io.redcap.mapping import TEMPLATE_FILES, cohort_to_redcap, read_redcap

INFUSION = {
    "P01": "2021-01-14",
    "P02": "2021-02-03",
    "P03": "2021-03-22",
    "P04": "2021-04-09",
    "P05": "2021-05-17",
}


def truth_frames() -> dict[str, pd.DataFrame]:
    """Six patients at two sites; P02 is 91 years old, P06 was never infused."""
    patients = pd.DataFrame(
        {
            "patient_id": ["P01", "P02", "P03", "P04", "P05", "P06"],
            "site": ["site_a", "site_a", "site_a", "site_b", "site_b", "site_b"],
            "patient_name": [
                "Alice Zephyrine",
                "Bob Quillfeather",
                "Carla Montoverde",
                "Dmitri Yellowbrook",
                "Eve Lanternwick",
                "Farid Osterholm",
            ],
            "mrn": ["MRN90017", "MRN90018", "MRN90019", "MRN90020", "MRN90021", "MRN90022"],
            "birth_date": pd.to_datetime(
                ["1985-02-11", "1930-07-04", "2010-11-30", "1972-05-05", "1999-09-09", "1960-01-20"]
            ),
            "age_years": [36.0, 91.0, 10.0, 48.0, 21.0, 61.0],
            "sex": ["F", "M", "F", "M", "F", "M"],
            "diagnosis": ["T-ALL", "T-LBL", "T-ALL", "CD7+ AML", "T-ALL", "T-ALL"],
            "cd7_blasts_pct": [95.0, 88.5, 99.0, 70.0, 91.0, np.nan],
            "prior_lines": [3.0, 2.0, 4.0, 1.0, 5.0, 2.0],
            "prior_allo_sct": [True, False, True, False, True, False],
            "enrolled": [True] * 6,
            "infused": [True, True, True, True, True, False],
            "infusion_date": pd.to_datetime([*INFUSION.values(), None]),
            "product_source": [
                "prior_sct_donor",
                "new_donor",
                "prior_sct_donor",
                "universal",
                "new_donor",
                None,
            ],
            "dose_per_kg": [1.0e6, 0.5e6, 1.0e6, 2.0e6, 1.0e6, np.nan],  # CAR+ cells/kg
            "weight_kg": [60.2, 70.0, 32.5, 80.0, 55.0, 66.0],
        }
    )
    events = pd.DataFrame(
        [
            ("P01", 28.0, "response", "CR", "negative", None, None, None),
            ("P01", 90.0, "response", "CR", "negative", None, None, None),
            ("P01", 45.0, "sct", None, None, None, None, None),
            ("P01", 400.0, "last_contact", None, None, None, None, None),
            ("P02", 27.0, "response", "NR", "positive", None, None, None),
            ("P02", 60.0, "progression", None, None, None, "marrow", None),
            ("P02", 95.0, "death", None, None, None, None, "relapse"),
            ("P03", 29.0, "response", "CRi", "negative", None, None, None),
            ("P03", 150.0, "relapse", None, None, "negative", "marrow; CNS", None),
            ("P03", 300.0, "last_contact", None, None, None, None, None),
            ("P04", 30.0, "response", "PR", "positive", None, None, None),
            ("P04", 50.0, "death", None, None, None, None, "infection"),
            ("P05", 26.0, "response", "CR", "negative", None, None, None),
            ("P05", 120.0, "new_therapy", None, None, None, None, None),
            ("P05", 200.0, "last_contact", None, None, None, None, None),
        ],
        columns=["patient_id", "day", "event", "response", "mrd", "cd7_status", "site", "cause"],
    )
    adverse_events = pd.DataFrame(
        [
            ("P01", "CRS", 2, "ASTCT2019", 3.0, 8.0, "fever and hypotension after infusion"),
            ("P01", "ICANS", 1, "ASTCT2019", 6.0, 7.0, "mild confusion, writing impaired"),
            ("P01", "neutropenia", 3, "CTCAE5", 30.0, 33.0, "late neutrophil dip"),
            ("P02", "CRS", 3, "ASTCT2019", 2.0, 10.0, "needed vasopressor norepinephrine"),
            ("P02", "infection", 3, "CTCAE5", 40.0, 55.0, "pneumonia right lower lobe"),
            ("P04", "neutropenia", 4, "CTCAE5", 1.0, 35.0, "prolonged neutropenia"),
            ("P04", "infection", 5, "CTCAE5", 45.0, 50.0, "fatal aspergillosis"),
            ("P05", "aGVHD", 2, "MAGIC", 60.0, None, "skin rash on trunk"),
            ("P05", "febrile_neutropenia", 3, "CTCAE5", -2.0, 1.0, "fever during lymphodepletion"),
        ],
        columns=[
            "patient_id",
            "term",
            "grade",
            "system",
            "onset_day",
            "resolution_day",
            "verbatim",
        ],
    )
    observations = pd.DataFrame(
        [
            ("P01", -3.0, "anc", 1.2, "10^9/L", np.nan),
            ("P01", 7.0, "cart_qpcr", 50000.0, "copies/ug", 50.0),
            ("P01", 14.0, "cart_qpcr", 20000.0, "copies/ug", 50.0),
            ("P01", 28.0, "cart_qpcr", 900.0, "copies/ug", 50.0),
            ("P01", 60.0, "cart_qpcr", 10.0, "copies/ug", 50.0),
            ("P02", 7.0, "cart_flow", 120.0, "cells/uL", np.nan),
            ("P03", 10.0, "cart_qpcr", 8000.0, "copies/ug", 50.0),
            ("P04", 0.0, "crp", 80.0, "mg/L", np.nan),
        ],
        columns=["patient_id", "day", "analyte", "value", "unit", "lloq"],
    )
    return {
        "patients": patients,
        "events": events,
        "adverse_events": adverse_events,
        "observations": observations,
    }


def truth_cohort():
    return cohort_from_frames(**truth_frames(), source="truth")


@pytest.fixture(scope="module")
def export_dir(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("redcap")
    for key in ("dictionary", "event_mapping", "repeating"):
        shutil.copy(TEMPLATE_FILES[key], folder / TEMPLATE_FILES[key].name)
    cohort_to_redcap(truth_cohort()).to_csv(folder / "records.csv", index=False)
    return folder


def _paths(folder: Path) -> dict[str, Path]:
    return {
        "records_csv": folder / "records.csv",
        "dictionary_csv": folder / TEMPLATE_FILES["dictionary"].name,
        "event_mapping_csv": folder / TEMPLATE_FILES["event_mapping"].name,
        "repeating_csv": folder / TEMPLATE_FILES["repeating"].name,
    }


@pytest.fixture(scope="module")
def imported(export_dir):
    return read_redcap(**_paths(export_dir))


@pytest.fixture(scope="module")
def from_csv(tmp_path_factory):
    folder = tmp_path_factory.mktemp("csv") / "cohort"
    write_cohort(truth_cohort(), folder)
    return load_cohort(folder)


def _raw(folder: Path) -> pd.DataFrame:
    return pd.read_csv(folder / "records.csv", dtype=str, keep_default_na=False)


def _canonical(df: pd.DataFrame, table: str) -> pd.DataFrame:
    cols = [c for c in COLUMNS[table] if c in df.columns]
    extra = [c for c in ("verbatim", "patient_name", "mrn") if c in df.columns]
    out = df[cols + extra].copy()
    if table == "patients" and "birth_date" in df.columns:
        out["birth_date"] = pd.to_datetime(df["birth_date"]).dt.strftime("%Y-%m-%d")
    key = ["patient_id"] + [
        c for c in ("day", "onset_day", "analyte", "event", "term") if c in out.columns
    ]
    return out.sort_values(key, kind="stable").reset_index(drop=True)


# --------------------------------------------------------------------------- the export itself


def test_generated_export_has_the_redcap_shape(export_dir):
    raw = _raw(export_dir)
    assert list(raw.columns[:5]) == [
        "record_id",
        "redcap_event_name",
        "redcap_repeat_instrument",
        "redcap_repeat_instance",
        "redcap_data_access_group",
    ]
    # one data access group per site
    dag = raw.groupby("record_id")["redcap_data_access_group"].unique()
    assert dag["P01"].tolist() == ["site_a"] and dag["P04"].tolist() == ["site_b"]
    # longitudinal, with repeating AE and lab instruments numbered 1..k within an event
    ae = raw[raw["redcap_repeat_instrument"] == "adverse_event"]
    assert len(ae) == 9
    for _, g in ae.groupby(["record_id", "redcap_event_name"]):
        assert sorted(g["redcap_repeat_instance"].astype(int)) == list(range(1, len(g) + 1))
    assert set(raw["redcap_event_name"]) == {
        "screening_arm_1",
        "infusion_arm_1",
        "day28_arm_1",
        "followup_arm_1",
    }
    # dates are infusion date + day, computed independently here
    crs = ae[(ae["record_id"] == "P01") & (ae["ae_term"] == "1")]
    assert crs["ae_onset_date"].tolist() == [str(date(2021, 1, 14) + timedelta(days=3))]
    # codes, not labels: "2, Female"; checkbox columns ticked per relapse site
    demo = raw[
        (raw["record_id"] == "P01")
        & (raw["redcap_event_name"] == "screening_arm_1")
        & (raw["redcap_repeat_instrument"] == "")
    ]
    assert demo["sex"].tolist() == ["2"]
    out = raw[
        (raw["record_id"] == "P03")
        & (raw["redcap_event_name"] == "followup_arm_1")
        & (raw["redcap_repeat_instrument"] == "")
    ].iloc[0]
    assert (out["relapse_site___1"], out["relapse_site___2"], out["relapse_site___3"]) == (
        "1",
        "1",
        "0",
    )
    assert out["relapse_date"] == str(date(2021, 3, 22) + timedelta(days=150))


def test_instruments_are_split_and_typed(export_dir):
    p = _paths(export_dir)
    tables = read_redcap_instruments(
        p["records_csv"], p["dictionary_csv"], p["event_mapping_csv"], p["repeating_csv"]
    )
    assert set(tables) == {
        "demographics",
        "enrollment",
        "infusion",
        "response_assessment",
        "adverse_event",
        "labs",
        "outcome",
    }
    ae = tables["adverse_event"]
    assert len(ae) == 9
    assert pd.api.types.is_datetime64_any_dtype(ae["ae_onset_date"])
    assert set(ae["ae_grade"]) == {"1", "2", "3", "4", "5"}  # radio labels
    assert (ae["redcap_repeat_instrument"] == "adverse_event").all()
    assert ae["redcap_repeat_instance"].notna().all()
    labs = tables["labs"]
    assert labs["lab_value"].dtype == "float64" and len(labs) == 8
    demo = tables["demographics"].set_index("record_id")
    assert str(demo["age"].dtype) == "Int64" and demo.loc["P02", "age"] == 91
    assert demo.loc["P01", "sex"] == "Female"
    assert str(demo["prior_allo_sct"].dtype) == "boolean" and bool(
        demo.loc["P01", "prior_allo_sct"]
    )
    out = tables["outcome"].set_index("record_id")
    assert out.loc["P03", "relapse_site"] == "marrow; CNS"
    assert bool(out.loc["P03", "relapse_site___2"]) and not bool(out.loc["P03", "relapse_site___3"])
    assert out.loc["P03", "redcap_event_name"] == "followup_arm_1"
    assert out.loc["P03", "redcap_data_access_group"] == "site_a"


# --------------------------------------------------------------------------- equal to CSV


def test_import_equals_the_same_data_given_as_csv(imported, from_csv):
    assert imported.patient_ids == from_csv.patient_ids
    for table in ("patients", "events", "adverse_events", "observations"):
        a = _canonical(imported.table(table), table)
        b = _canonical(from_csv.table(table), table)
        pd.testing.assert_frame_equal(a, b, check_dtype=False, obj=table)
    assert imported.patients.set_index("patient_id")["site"].to_dict() == {
        "P01": "site_a",
        "P02": "site_a",
        "P03": "site_a",
        "P04": "site_b",
        "P05": "site_b",
        "P06": "site_b",
    }


@pytest.mark.parametrize(
    "options", [EndpointOptions(), EndpointOptions(censor_at_sct=True, censor_at_new_therapy=True)]
)
def test_endpoints_and_responses_equal(imported, from_csv, options):
    a = derive_endpoints(imported, options).drop(
        columns=["source", "source_table", "source_file", "source_row"], errors="ignore"
    )
    b = derive_endpoints(from_csv, options).drop(
        columns=["source", "source_table", "source_file", "source_row"], errors="ignore"
    )
    pd.testing.assert_frame_equal(a, b)
    # and equal to hand-worked values: P02 progressed on day 60, P04 died on day 50
    os_ = a[a["endpoint"] == "OS"].set_index("patient_id")
    assert os_.loc["P04", "time_days"] == 50 and os_.loc["P04", "event"] == 1
    pfs = a[a["endpoint"] == "PFS"].set_index("patient_id")
    assert pfs.loc["P02", "time_days"] == 60 and pfs.loc["P02", "event"] == 1
    if options.censor_at_sct:
        assert pfs.loc["P01", "time_days"] == 45 and pfs.loc["P01", "event"] == 0
    ba = best_response(imported).drop(
        columns=["source", "source_table", "source_file", "source_row"], errors="ignore"
    )
    bb = best_response(from_csv).drop(
        columns=["source", "source_table", "source_file", "source_row"], errors="ignore"
    )
    pd.testing.assert_frame_equal(ba, bb)


def test_response_rates_equal(imported, from_csv):
    from cartrial.endpoints import response_rates

    pd.testing.assert_frame_equal(response_rates(imported), response_rates(from_csv))


def test_endpoint_sources_point_at_the_redcap_line(imported, export_dir):
    raw = _raw(export_dir)
    ep = derive_endpoints(imported)
    src = ep[(ep["endpoint"] == "OS") & (ep["patient_id"] == "P02")]["source"].iloc[0]
    assert src.startswith(str(export_dir / "records.csv") + " row ")
    line = int(src.split(" row ")[1].split(" ")[0])
    row = raw.iloc[line - 2]  # line 1 is the header
    assert row["record_id"] == "P02" and row["redcap_event_name"] == "followup_arm_1"
    assert row["death_date"] == str(date(2021, 2, 3) + timedelta(days=95))


def test_shipped_example_export_is_this_cohort(from_csv):
    ex = read_redcap(
        TEMPLATE_FILES["example_records"],
        TEMPLATE_FILES["dictionary"],
        TEMPLATE_FILES["event_mapping"],
        TEMPLATE_FILES["repeating"],
    )
    for table in ("patients", "events", "adverse_events", "observations"):
        pd.testing.assert_frame_equal(
            _canonical(ex.table(table), table),
            _canonical(from_csv.table(table), table),
            check_dtype=False,
        )


def test_report_from_redcap_equals_report_from_csv(imported, from_csv):
    from cartrial.report.build import build_report
    from cartrial.report.build import close_figures as close

    ra, rb = build_report(imported), build_report(from_csv)
    try:
        names = [t.name for t in ra.tables]
        assert names == [t.name for t in rb.tables] and names
        for t in ra.tables:
            a = t.df.to_csv(index=False)
            b = rb.table(t.name).to_csv(index=False)
            assert a == b, t.name
    finally:
        close(ra)
        close(rb)


# --------------------------------------------------------------------------- malformed exports


def _broken(export_dir: Path, tmp_path: Path, edit) -> dict[str, Path]:
    folder = tmp_path / "broken"
    shutil.copytree(export_dir, folder)
    raw = _raw(folder)
    raw = edit(raw)
    raw.to_csv(folder / "records.csv", index=False)
    return _paths(folder)


def _row_of(
    raw: pd.DataFrame,
    record: str,
    instrument: str = "",
    event: str | None = None,
    instance: str | None = None,
) -> int:
    sel = (raw["record_id"] == record) & (raw["redcap_repeat_instrument"] == instrument)
    if event is not None:
        sel &= raw["redcap_event_name"] == event
    if instance is not None:
        sel &= raw["redcap_repeat_instance"] == instance
    return int(np.flatnonzero(sel.to_numpy())[0])


def _one_problem(paths: dict[str, Path], column: str):
    with pytest.raises(CohortError) as info:
        read_redcap(**paths)
    hits = [p for p in info.value.problems if p.column == column]
    assert hits, str(info.value)
    return hits[0], str(info.value)


def test_missing_dictionary_is_named(export_dir):
    paths = _paths(export_dir) | {"dictionary_csv": export_dir / "no_such_dictionary.csv"}
    with pytest.raises(CohortError) as info:
        read_redcap(**paths)
    (p,) = info.value.problems
    assert p.file.endswith("no_such_dictionary.csv") and "data dictionary" in p.expected


def test_choice_code_not_in_dictionary(export_dir, tmp_path):
    def edit(raw):
        i = _row_of(raw, "P02", "adverse_event", "infusion_arm_1", "1")
        raw.loc[i, "ae_term"] = "77"
        return raw

    paths = _broken(export_dir, tmp_path, edit)
    p, text = _one_problem(paths, "ae_term")
    raw = _raw(paths["records_csv"].parent)
    assert p.file == str(paths["records_csv"]) and p.value == "77"
    assert p.row == _row_of(raw, "P02", "adverse_event", "infusion_arm_1", "1") + 2
    assert "record P02" in p.expected and "event infusion_arm_1" in p.expected
    assert "1 (CRS)" in p.expected  # the allowed codes are listed


def test_repeat_instance_without_instrument(export_dir, tmp_path):
    def edit(raw):
        i = _row_of(raw, "P01", "labs", "day28_arm_1", "2")
        raw.loc[i, "redcap_repeat_instrument"] = ""
        return raw

    p, _ = _one_problem(_broken(export_dir, tmp_path, edit), "redcap_repeat_instance")
    assert "record P01" in p.expected and "event day28_arm_1" in p.expected
    assert "redcap_repeat_instrument" in p.expected


def test_date_that_does_not_parse(export_dir, tmp_path):
    def edit(raw):
        i = _row_of(raw, "P03", "", "followup_arm_1")
        raw.loc[i, "relapse_date"] = "2021-02-30"
        return raw

    p, text = _one_problem(_broken(export_dir, tmp_path, edit), "relapse_date")
    assert p.value == "2021-02-30" and "record P03" in p.expected
    assert "event followup_arm_1" in p.expected and "records.csv" in text


def test_unknown_field_not_in_dictionary(export_dir, tmp_path):
    def edit(raw):
        raw["favourite_colour"] = ""
        return raw

    p, _ = _one_problem(_broken(export_dir, tmp_path, edit), "favourite_colour")
    assert p.row == 1 and "data dictionary" in p.expected


def test_unknown_checkbox_code(export_dir, tmp_path):
    def edit(raw):
        return raw.rename(columns={"relapse_site___3": "relapse_site___9"})

    p, _ = _one_problem(_broken(export_dir, tmp_path, edit), "relapse_site___9")
    assert "checkbox code '9'" in p.expected


def test_value_outside_the_dictionary_range(export_dir, tmp_path):
    def edit(raw):
        raw.loc[_row_of(raw, "P05", "", "screening_arm_1"), "age"] = "130"
        return raw

    p, _ = _one_problem(_broken(export_dir, tmp_path, edit), "age")
    assert p.value == "130" and "record P05" in p.expected and "120" in p.expected


def test_cohort_rule_problem_is_reported_against_the_export(export_dir, tmp_path):
    """A unit the analyte is not measured in is caught by the cohort loader, and reported
    with the REDCap file, line, field, record and event."""

    def edit(raw):
        i = _row_of(raw, "P03", "labs", "day28_arm_1", "1")
        raw.loc[i, "lab_unit"] = "mg/dL"
        return raw

    paths = _broken(export_dir, tmp_path, edit)
    p, _ = _one_problem(paths, "lab_unit")
    raw = _raw(paths["records_csv"].parent)
    assert p.file == str(paths["records_csv"])
    assert p.row == _row_of(raw, "P03", "labs", "day28_arm_1", "1") + 2
    assert "record P03" in p.expected and "event day28_arm_1" in p.expected
    assert "copies/ug" in p.expected


def test_field_on_an_event_its_form_is_not_designated_for(export_dir, tmp_path):
    def edit(raw):
        raw.loc[_row_of(raw, "P01", "", "screening_arm_1"), "death_date"] = "2021-05-01"
        return raw

    p, _ = _one_problem(_broken(export_dir, tmp_path, edit), "death_date")
    assert "not designated" in p.expected and "event screening_arm_1" in p.expected


def test_mapping_naming_an_unknown_field(export_dir, tmp_path):
    text = TEMPLATE_FILES["mapping"].read_text().replace("age_years: age", "age_years: agee")
    mapping = tmp_path / "mapping.yaml"
    mapping.write_text(text)
    with pytest.raises(CohortError) as info:
        read_redcap(**_paths(export_dir), mapping_yaml=mapping)
    (p,) = info.value.problems
    assert p.file == str(mapping) and p.column == "patients.columns.age_years" and p.value == "agee"


def test_dmy_dates_and_classic_project(tmp_path):
    """A classic (non-longitudinal) project with a date_dmy field typed as D-M-Y."""
    dictionary = pd.read_csv(TEMPLATE_FILES["dictionary"], dtype=str, keep_default_na=False)
    dictionary.loc[
        dictionary["Variable / Field Name"] == "infusion_date",
        "Text Validation Type OR Show Slider Number",
    ] = "date_dmy"
    dictionary.to_csv(tmp_path / "dictionary.csv", index=False)
    records = pd.DataFrame(
        {
            "record_id": ["X1", "X2"],
            "age": ["40", "50"],
            "sex": ["1", "2"],
            "infused": ["1", "1"],
            "infusion_date": ["2021-03-04", "05/06/2021"],
        }
    )
    records.to_csv(tmp_path / "records.csv", index=False)
    tables = read_redcap_instruments(tmp_path / "records.csv", tmp_path / "dictionary.csv")
    inf = tables["infusion"].set_index("record_id")["infusion_date"]
    assert inf["X1"] == pd.Timestamp("2021-03-04") and inf["X2"] == pd.Timestamp("2021-06-05")
    cohort = read_redcap(tmp_path / "records.csv", tmp_path / "dictionary.csv")
    assert cohort.patients["sex"].tolist() == ["M", "F"]


def test_api_reader_without_pycap_says_what_to_install(monkeypatch):
    import builtins

    from cartrial.io.redcap.api import read_redcap_api

    real_import = builtins.__import__

    def no_pycap(name, *args, **kwargs):
        if name == "redcap":
            raise ImportError("No module named 'redcap'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_pycap)
    with pytest.raises(ImportError, match="pip install PyCap"):
        read_redcap_api("https://redcap.example.org/api/", "not-a-token")
