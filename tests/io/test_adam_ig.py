"""ADaM of the hand-written site export, read back with pyreadstat and checked against the
ADaM IG 1.3 rules a SAS programmer reviews: ADSL core variables and population flags,
ADTTE rows only inside each endpoint's population and all with ADT, ADAE with CTCAE v5.0
SOC/term, numeric DATE9. dates (also when all missing), PARAMCD <= 8, Define-XML 2.1
valid against its schema, identifiers out unless asked, and .xpt -> cohort."""

from __future__ import annotations

import datetime as dt
import xml.etree.ElementTree as ET

import numpy as np
import pandas as pd
import pyreadstat
import pytest
from test_site_export import _read, identifier_values, leaks

from cartrial.endpoints import derive_endpoints
from cartrial.io.adam import VARIABLES, cohort_from_adam
from cartrial.io.writers import export_adam

NS = {"odm": "http://www.cdisc.org/ns/odm/v1.3", "def": "http://www.cdisc.org/ns/def/v2.1"}


@pytest.fixture(scope="module")
def cohort():
    return _read()


@pytest.fixture(scope="module")
def exported(cohort, tmp_path_factory):
    out = tmp_path_factory.mktemp("adam") / "adam"
    path, adam = export_adam(cohort, out, ("xpt", "csv"), study_id="CD7CART02")
    xpt = {name: pyreadstat.read_xport(str(path / f"{name.lower()}.xpt")) for name in adam}
    return path, adam, xpt


def test_adsl_core_variables_and_population_flags(exported):
    _, _, xpt = exported
    adsl, meta = xpt["ADSL"]
    a = adsl.set_index("SUBJID")
    # screen failure: ARM 'Screen Failure', no planned/actual treatment, no flag set
    assert a.loc["02-003", ["ARM", "ACTARM", "TRT01P", "TRT01A"]].tolist() == [
        "Screen Failure",
        "Screen Failure",
        "",
        "",
    ]
    assert a.loc["02-003", ["ITTFL", "SAFFL", "EFFFL"]].tolist() == ["N", "N", "N"]
    # registered, never infused: in ITT, ACTARM 'Not Treated'
    assert a.loc["01-004", ["ACTARM", "ITTFL", "SAFFL", "TRT01A"]].tolist() == [
        "Not Treated",
        "Y",
        "N",
        "",
    ]
    assert a.loc["01-003", ["TRT01P", "TRT01A"]].tolist() == ["CAR-T DL2", "CAR-T DL2"]
    assert (a["ITTFL"] == "Y").sum() == 10 and (a["SAFFL"] == "Y").sum() == 9
    assert a.loc["02-004", "EFFFL"] == "N"  # NE at day 28
    # AGE: whole years with AGEU; unknown age (UNK) missing, never 0
    ages = a["AGE"].dropna()
    assert (ages == np.floor(ages)).all() and np.isnan(a.loc["02-005", "AGE"])
    assert set(a["AGEU"].replace("", np.nan).dropna()) == {"YEARS"}
    assert a.loc["01-001", ["RACE", "ETHNIC"]].tolist() == ["ASIAN", "NOT HISPANIC OR LATINO"]
    assert a.loc["02-005", "RACE"] == ""  # race___unk: missing
    assert a.loc["01-003", "DOSEKG"] == 2.0e6
    assert "x10^6" not in dict(zip(meta.column_names, meta.column_labels, strict=True))["DOSEKG"]
    # the death of the patient never infused is dated (study day from registration)
    assert a.loc["01-004", "DTHDT"] == dt.date(2023, 6, 30)
    assert a.loc["01-004", "DTHDAY"] == 25


def test_dates_are_numeric_date9_even_when_all_missing(exported):
    path, adam, xpt = exported
    for name, (df, meta) in xpt.items():
        for col in df.columns:
            if VARIABLES[name][col].type != "date":
                continue
            assert meta.original_variable_types[col] == "DATE9.", (name, col)
            assert meta.readstat_variable_types[col] == "double", (name, col)
    adsl, meta = xpt["ADSL"]
    assert adsl["NTHDT"].isna().all() and meta.readstat_variable_types["NTHDT"] == "double"
    raw, _ = pyreadstat.read_xport(str(path / "adsl.xpt"), disable_datetime_conversion=True)
    first = raw.set_index("SUBJID").loc["01-001", "TRTSDT"]
    assert first == (dt.date(2023, 3, 6) - dt.date(1960, 1, 1)).days  # SAS date 23075


def test_adtte_rows_only_in_the_population_and_each_has_adt(exported):
    _, adam, xpt = exported
    adtte, _ = xpt["ADTTE"]
    adsl = xpt["ADSL"][0].set_index("SUBJID")
    from cartrial.endpoints.definitions import ENDPOINTS
    from cartrial.endpoints.populations import POPULATIONS

    for code, rows in adtte.groupby("PARAMCD"):
        assert len(code) <= 8
        flag = POPULATIONS[ENDPOINTS[code].population].adam_flag
        assert (adsl.loc[rows["SUBJID"], flag] == "Y").all(), code
    assert adtte["ADT"].notna().all() and adtte["STARTDT"].notna().all()
    assert not set(adtte["SUBJID"]) & {"01-004", "02-003"}
    # PARAM spelled out (up to 200 characters); PARAMCD <= 8
    assert set(adtte.drop_duplicates("PARAMCD").set_index("PARAMCD")["PARAM"]) >= {
        "Overall Survival (days)",
        "Time to Non-Relapse Death, Relapse as Competing Risk (days)",
    }
    # EVNTDESC on events, CNSDTDSC on censored rows; source pointers structured
    assert (adtte.loc[adtte["CNSR"] == 0, "CNSDTDSC"] == "").all()
    assert (adtte.loc[adtte["CNSR"] > 0, "CNSDTDSC"] != "").all()
    os_ = adtte[(adtte["PARAMCD"] == "OS") & (adtte["SUBJID"] == "01-006")].iloc[0]
    assert os_["CNSR"] == 0 and os_["SRCDOM"] == "EVENTS" and os_["SRCSEQ"] == 36


def test_adae_ctcae_soc_term_grade_and_treatment(exported):
    _, _, xpt = exported
    adae, _ = xpt["ADAE"]
    crs = adae[adae["AECTERM"] == "CRS"]
    assert set(crs["AEDECOD"]) == {"Cytokine release syndrome"}
    assert set(crs["AEBODSYS"]) == {"Immune system disorders"}
    neut = adae[adae["AECTERM"] == "neutropenia"].iloc[0]
    assert (neut["AEDECOD"], neut["AEBODSYS"], neut["ATOXGR"]) == (
        "Neutrophil count decreased",
        "Investigations",
        "4",
    )
    fatal = adae[(adae["SUBJID"] == "01-006") & (adae["ATOXGR"] == "5")].iloc[0]
    assert fatal["TRTEMFL"] == "Y" and fatal["ASTDYPUB"] == 121 and fatal["TRTA"] == "CAR-T DL2"


def test_define_xml_is_valid_define_2_1_and_states_methods(exported):
    import xmlschema
    from odmlib.schema_manager import get_schema_path

    path, adam, _ = exported
    schema = xmlschema.XMLSchema(get_schema_path("define", "2.1"))
    errors = list(schema.iter_errors(str(path / "define.xml")))
    assert not errors, str(errors[0])[:500]
    root = ET.parse(path / "define.xml").getroot()
    groups = root.findall(".//odm:ItemGroupDef", NS)
    assert {g.get("Name") for g in groups} == set(adam)
    items = {i.get("OID"): i for i in root.findall(".//odm:ItemDef", NS)}
    adt = items["IT.ADTTE.ADT"]
    assert adt.get("DataType") == "integer" and adt.get(f"{{{NS['def']}}}DisplayFormat") == "DATE9."
    # text lengths are the longest value in bytes
    assert int(items["IT.ADSL.ARM"].get("Length")) == len("Screen Failure")
    methods = {m.get("OID"): "".join(m.itertext()) for m in root.findall(".//odm:MethodDef", NS)}
    from cartrial.endpoints.definitions import ENDPOINTS

    assert ENDPOINTS["OS"].text in methods["MT.ADTTE.AVAL"]
    # value-level metadata: AVAL per PARAMCD, each with its endpoint's derivation
    vl = root.find(".//def:ValueListDef[@OID='VL.ADTTE.AVAL']", NS)
    refs = {r.get("ItemOID"): r for r in vl.findall("odm:ItemRef", NS)}
    assert set(refs) == {f"IT.ADTTE.AVAL.{c}" for c in adam["ADTTE"]["PARAMCD"].unique()}
    assert ENDPOINTS["NRM"].text in methods[refs["IT.ADTTE.AVAL.NRM"].get("MethodOID")]
    wc = root.find(".//def:WhereClauseDef[@OID='WC.ADTTE.PARAMCD.NRM']", NS)
    assert "".join(wc.itertext()).strip() == "NRM"
    assert "no upper bound" in methods["MT.ADAE.TRTEMFL"]
    paramcd = root.find(".//odm:CodeList[@OID='CL.ADTTE.PARAMCD']", NS)
    assert {c.get("CodedValue") for c in paramcd} == set(adam["ADTTE"]["PARAMCD"])


def test_no_identifier_in_the_adam_export_unless_asked(cohort, exported, tmp_path):
    path, adam, _ = exported
    assert not leaks(path, identifier_values())
    assert "BRTHDT" not in adam["ADSL"].columns
    p2, adam2 = export_adam(cohort, tmp_path / "identified", ("csv",), identified=True)
    assert "BRTHDT" in adam2["ADSL"].columns and leaks(p2, ["1988-11-02"])


def test_no_identifier_in_the_report_folder(cohort, tmp_path):
    from cartrial.report import build_report
    from cartrial.report.build import close_figures, write_report

    report = build_report(cohort)
    try:
        write_report(report, tmp_path / "report")
    finally:
        close_figures(report)
    found = leaks(tmp_path / "report", identifier_values())
    assert not found, found[:5]
    # the same report without the identifier declaration prints them: the scan would see it
    from dataclasses import replace

    bare = build_report(replace(cohort, identifiers=()))
    try:
        write_report(bare, tmp_path / "bare")
    finally:
        close_figures(bare)
    assert leaks(tmp_path / "bare", identifier_values())


def test_cohort_from_xpt_reads_sas_blanks_as_missing(cohort, exported):
    _, _, xpt = exported
    back = cohort_from_adam({name: df for name, (df, _m) in xpt.items()})
    p = back.patients.set_index("patient_id")
    assert pd.isna(p.loc["02-003", "infused"]) and not p.loc["01-004", "infused"]
    assert pd.isna(p.loc["02-005", "race"]) and pd.isna(p.loc["01-004", "product_source"])
    keep = ["patient_id", "endpoint", "time_days", "event"]
    a = derive_endpoints(back)[keep].sort_values(keep[:2]).reset_index(drop=True)
    b = derive_endpoints(cohort)[keep].sort_values(keep[:2]).reset_index(drop=True)
    pd.testing.assert_frame_equal(a, b)


def test_deidentified_export_holds_no_identifier_site_or_subject_id(cohort, tmp_path):
    path, adam = export_adam(
        cohort, tmp_path / "deid", ("csv", "xpt", "parquet"), deidentify=True, key="site key"
    )
    real = sorted(set(cohort.patients["patient_id"]) | set(cohort.patients["site"]))
    assert not leaks(path, identifier_values() + real)
    key_map = pd.read_csv(f"{path}.key-map.csv", dtype=str)
    assert set(key_map["original"]) == set(real)
    # the k-anonymity warnings name pseudonymised sites only
    text = (path / "DEIDENTIFICATION.txt").read_text()
    assert "WARNING" in text and "SITEID=SITE" in text


def test_adpp_units_of_ratios_and_flags(tmp_path):
    """ADPP: PARAMCD unique per parameter; unitless NCA results (span ratio, the poor-λz flag,
    r²) carry no unit, concentrations the analyte's unit, times days."""
    import subprocess
    import sys

    from cartrial.cohort import load_cohort
    from cartrial.io.adam import build_adam

    out = tmp_path / "sim"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "cartrial",
            "simulate",
            "--patients",
            "12",
            "--seed",
            "3",
            "-o",
            str(out),
        ],
        check=True,
        capture_output=True,
    )
    adpp = build_adam(load_cohort(out))["ADPP"]
    pairs = adpp[["PARAMCD", "PARAM"]].drop_duplicates()
    assert pairs["PARAMCD"].is_unique and (pairs["PARAMCD"].str.len() <= 8).all()
    # keyed by PARAMCD: PARAM is the human label (e.g. "Tmax (days)")
    unit = adpp.drop_duplicates(["PCTEST", "PARAMCD"]).set_index(["PCTEST", "PARAMCD"])["AVALU"]
    qpcr = [k for k in unit.index if k[1] == "CMAX" and "pcr" in str(k[0]).lower()]
    assert qpcr and str(unit[qpcr[0]]).startswith("copies")
    for param in ("SPANRATI", "LAMBDAZP"):
        rows = unit[[k for k in unit.index if k[1] == param]]
        assert len(rows) and rows.isna().all(), param
    tmax = unit[[k for k in unit.index if k[1] == "TMAX"]]
    assert (tmax == "DAYS").all()
