"""Issue 10's population, NRM/CIR and SCT rules carried through the ADaM export and the report.

The cohort is the hand-written ``tests/data/ns7car_like`` (expected values worked by hand in
``test_endpoints_issue10.py``): N08 has a blank ``infused`` (missing: outside SAF), N09 is a
screen failure (not enrolled); CR population N01 N02 N03 N04 N07 N10 N11; only N03 (death
from infection in remission) is non-relapse mortality; N04's death from the disease without
a relapse row is a relapse (CIR) event.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from cartrial.cohort import load_cohort

DATA = Path(__file__).resolve().parents[1] / "data" / "ns7car_like"
IN_CR = {"N01", "N02", "N03", "N04", "N07", "N10", "N11"}


@pytest.fixture(scope="module")
def cohort():
    return load_cohort(DATA)


@pytest.fixture(scope="module")
def adam(cohort):
    from cartrial.io.adam import build_adam

    return build_adam(cohort)


def test_adsl_population_flags(adam):
    adsl = adam["ADSL"].set_index("SUBJID")
    flags = adsl[["ITTFL", "SAFFL", "EFFFL"]].to_dict("index")
    assert flags["N08"] == {"ITTFL": "Y", "SAFFL": "N", "EFFFL": "N"}  # blank infused
    assert flags["N09"] == {"ITTFL": "N", "SAFFL": "N", "EFFFL": "N"}  # screen failure
    assert (adsl["SAFFL"] == "Y").sum() == 10 and (adsl["ITTFL"] == "Y").sum() == 11


def test_adtte_cir_nrm_among_cr_patients_only(adam):
    tte = adam["ADTTE"]
    for param in ("CIR", "NRM"):
        assert set(tte.loc[tte["PARAMCD"] == param, "SUBJID"]) == IN_CR
    nrm = tte[tte["PARAMCD"] == "NRM"].set_index("SUBJID")
    # CNSR 0 = event: only the death from infection in remission is NRM
    assert set(nrm.index[nrm["CNSR"] == 0]) == {"N03"}
    cir = tte[tte["PARAMCD"] == "CIR"].set_index("SUBJID")
    assert cir.loc["N04", "CNSR"] == 0 and cir.loc["N04", "AVAL"] == 150
    assert (cir.loc["N04", "SRCDOM"], int(cir.loc["N04", "SRCSEQ"])) == ("EVENTS", 11)
    # no time-to-event row for patients outside the safety population
    assert not {"N08", "N09"} & set(tte["SUBJID"])


@pytest.fixture(scope="module")
def report_dir(tmp_path_factory):
    from cartrial.report import run_report

    return run_report(str(DATA), tmp_path_factory.mktemp("ns7report") / "report")


def _csv(folder: Path, name: str) -> list[dict[str, str]]:
    import csv

    lines = (folder / "tables" / f"{name}.csv").read_text(encoding="utf-8").splitlines()
    return list(csv.DictReader(line for line in lines if not line.startswith("#")))


def test_report_patient_flow_states_each_population(report_dir):
    rows = {r["Code"]: r for r in _csv(Path(report_dir), "populations")}
    assert (rows["ITT"]["n"], rows["SAF"]["n"], rows["CR"]["n"], rows["RESP"]["n"]) == (
        "11",
        "10",
        "7",
        "8",
    )
    assert rows["SAF"]["Reasons for exclusion"] == "infused not recorded: 1"
    assert "screen failure" in rows["ITT"]["Reasons for exclusion"]


def test_report_response_denominator_is_the_infused(report_dir):
    orr = next(r for r in _csv(Path(report_dir), "response") if r["Measure"] == "ORR")
    assert orr["n/N"] == "8/10"


def test_report_cir_nrm_counts(report_dir):
    tte = {r["Endpoint"]: r for r in _csv(Path(report_dir), "time_to_event")}
    assert (tte["CIR"]["N"], tte["CIR"]["Events"]) == ("7", "4")
    assert (tte["NRM"]["N"], tte["NRM"]["Events"]) == ("7", "1")


def test_report_compares_consolidation_sct_without_immortal_time_bias(report_dir):
    rows = _csv(Path(report_dir), "pfs_by_consolidation_sct")
    methods = [r["Method"] for r in rows]
    assert any(m.startswith("Naive") and "immortal-time bias" in m for m in methods)
    assert any(m.startswith("Landmark") for m in methods)
    assert any(m.startswith("Time-dependent Cox") for m in methods)
    assert any(m.startswith("Mantel") for m in methods)
    # among CR/CRi patients only: 7 patients, 3 with consolidation SCT (N01, N10, N11)
    naive = next(r for r in rows if r["Method"].startswith("Naive"))
    assert naive["Patients (events)"].startswith("7 (5); SCT 3")


def test_report_user_endpoint_and_efs_setting_from_the_settings_file(tmp_path):
    """A user endpoint (GRFS) and the EFS failure day come from the report's settings file;
    the methods state the user definition's text, derived from the object."""
    from cartrial.report import run_report

    config = tmp_path / "settings.yaml"
    config.write_text(
        "endpoints: [OS, EFS, GRFS]\n"
        "efs_failure_day: 1\n"
        "endpoint_definitions:\n"
        "  GRFS:\n"
        "    label: GVHD-free, relapse-free survival\n"
        "    events: [progression, death, {ae: aGVHD, min_grade: 3}]\n",
        encoding="utf-8",
    )
    out = Path(run_report(str(DATA), tmp_path / "r", config=config))
    tte = {r["Endpoint"]: r for r in _csv(out, "time_to_event")}
    # no adverse events in this cohort: GRFS events = PFS events (7 of the 10 infused)
    assert (tte["GRFS"]["N"], tte["GRFS"]["Events"]) == ("10", "7")
    html = (out / "index.html").read_text(encoding="utf-8")
    assert "GVHD-free, relapse-free survival (GRFS)" in html
    assert "relapse or progression or death or aGVHD grade ≥ 3" in html
    settings = (out / "settings.yaml").read_text(encoding="utf-8")
    assert "efs_failure_day: 1" in settings and "GRFS" in settings


def test_report_refuses_a_bad_user_endpoint(tmp_path):
    from cartrial.report import SettingsError, load_settings

    config = tmp_path / "settings.yaml"
    config.write_text("endpoint_definitions:\n  X:\n    events: [deth]\n", encoding="utf-8")
    with pytest.raises(SettingsError, match=r"endpoint_definitions.*events\[0\]"):
        load_settings(config)
