"""Regression tests for issue 10 on a hand-written cohort modelled on the NS7CAR trial.

The cohort below is typed the way a site writes it (mixed case, synonyms, blank cells,
a screen failure, an enrolled patient whose infusion flag was left blank). Every expected
value is worked out by hand from the published definitions, written next to the data:

- Populations (ICH E9; DESIGN.md): ITT = enrolled; SAF = infused = yes (blank is missing);
  CR = best response CR/CRh/CRi in days 0-35 (DFS/CIR/NRM); RESP = objective responders.
- Relapse/progression evidence: relapse/progression rows, response assessments of PD or
  relapse, and a death from the disease with no earlier such row (at the death day).
- NRM (CIBMTR/Gooley): death without evidence of relapse or progression.
- EFS (ELN 2022): failure to reach CR/CRh/CRi in the window is an event at day 0.
- Consolidation SCT: SCT in documented remission before any relapse; after relapse: salvage.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from cartrial.cohort import load_cohort
from cartrial.endpoints import (
    ENDPOINTS,
    POPULATIONS,
    DefinitionError,
    EndpointOptions,
    analysis_populations,
    consolidation_sct,
    derive_endpoints,
    endpoint_warnings,
    load_definitions,
    population_counts,
    response_rates,
)

DATA = Path(__file__).resolve().parents[1] / "data" / "ns7car_like"
PATIENTS = (DATA / "patients.csv").read_text(encoding="utf-8")
# tests/data/ns7car_like/events.csv (line numbers, header = 1):
EVENTS = (DATA / "events.csv").read_text(encoding="utf-8")
# lines: N01 2-4, N02 5-7, N03 8-9, N04 10-11, N05 12-14, N06 15-16, N07 17-20,
#        N10 21-25, N11 26-28, N12 29-31
SAFETY = ["N01", "N02", "N03", "N04", "N05", "N06", "N07", "N10", "N11", "N12"]
IN_CR = ["N01", "N02", "N03", "N04", "N07", "N10", "N11"]

# (endpoint, patient) -> (time_days, event), by hand
PFS = {
    "N01": (400, 0),  # CR, consolidation SCT, alive
    "N02": (120, 1),  # relapse row
    "N03": (90, 1),  # death (infection) in remission
    "N04": (150, 1),  # death from disease, no relapse row
    "N05": (60, 1),  # PD assessment on day 60 (not the day-100 death)
    "N06": (70, 1),  # death from disease
    "N07": (90, 1),  # relapse recorded on a response row
    "N10": (300, 1),
    "N11": (365, 0),
    "N12": (200, 0),
}
EFS = {**PFS, "N05": (0, 1), "N06": (0, 1), "N12": (0, 1)}  # PR/NR: failure at day 0
OS = {
    "N01": (400, 0),
    "N02": (200, 1),
    "N03": (90, 1),
    "N04": (150, 1),
    "N05": (100, 1),
    "N06": (70, 1),
    "N07": (300, 0),
    "N10": (420, 0),
    "N11": (365, 0),
    "N12": (200, 0),
}
# CIR/NRM among CR patients: cause 1 relapse/progression first, 2 NRM first, 0 censored
CAUSE = {
    "N01": (400, 0),
    "N02": (120, 1),
    "N03": (90, 2),
    "N04": (150, 1),
    "N07": (90, 1),
    "N10": (300, 1),
    "N11": (365, 0),
}


@pytest.fixture(scope="module")
def cohort(tmp_path_factory, make_cohort_dir):
    return load_cohort(
        make_cohort_dir(tmp_path_factory.mktemp("ns7"), patients=PATIENTS, events=EVENTS)
    )


@pytest.fixture(scope="module")
def table(cohort):
    return derive_endpoints(cohort)


def _rows(table: pd.DataFrame, endpoint: str) -> dict[str, tuple[float, int]]:
    sub = table[table["endpoint"] == endpoint]
    return {r.patient_id: (float(r.time_days), int(r.event)) for r in sub.itertuples()}


def _f(d):
    return {k: (float(t), e) for k, (t, e) in d.items()}


# --------------------------------------------------------------------- populations


def test_populations_by_hand(cohort):
    pops = analysis_populations(cohort).set_index("patient_id")
    assert list(pops.index[pops["enrolled"]]) == [p for p in pops.index if p != "N09"]
    assert list(pops.index[pops["safety"]]) == SAFETY
    assert list(pops.index[pops["complete_remission"]]) == IN_CR
    assert list(pops.index[pops["responder"]]) == [*IN_CR[:4], "N05", *IN_CR[4:]]
    assert pops.loc["N08", "infused"] == "missing"
    assert pops.loc["N08", "exclusion_reason"] == "infused not recorded"
    assert pops.loc["N09", "exclusion_reason"] == "not enrolled (screen failure)"


def test_patient_flow_counts_and_reasons(cohort):
    flow = population_counts(cohort).set_index("population")
    assert flow.loc["ITT", "n"] == 11 and flow.loc["ITT", "excluded"] == 1
    assert flow.loc["SAF", "n"] == 10
    assert flow.loc["SAF", "reasons"] == "infused not recorded: 1"
    assert flow.loc["CR", "n"] == 7 and flow.loc["RESP", "n"] == 8
    assert "best response NR: 2" in flow.loc["CR", "reasons"]


def test_blank_infused_is_not_analysed_orr_denominator(cohort):
    rates = response_rates(cohort).set_index("measure")
    # 8 responders among the 10 infused (N08's blank flag is missing, N09 not enrolled)
    assert (int(rates.loc["ORR", "k"]), int(rates.loc["ORR", "n"])) == (8, 10)
    assert rates.loc["ORR", "population"] == "SAF"


def test_every_endpoint_uses_its_population(table):
    for name, defn in ENDPOINTS.items():
        ids = set(table.loc[table["endpoint"] == name, "patient_id"])
        expected = {
            "SAF": set(SAFETY),
            "CR": set(IN_CR),
            "RESP": {*IN_CR, "N05"},
        }[defn.population]
        assert ids == expected, name
        assert POPULATIONS[defn.population].rule


# --------------------------------------------------------------------- NRM / CIR / PFS


def test_os_pfs_efs_by_hand(table):
    assert _rows(table, "OS") == _f(OS)
    assert _rows(table, "PFS") == _f(PFS)
    assert _rows(table, "EFS") == _f(EFS)


def test_cir_and_nrm_by_hand(table):
    cir = table[table["endpoint"] == "CIR"].set_index("patient_id")
    nrm = table[table["endpoint"] == "NRM"].set_index("patient_id")
    for pid, (day, cause) in CAUSE.items():
        assert float(cir.loc[pid, "time_days"]) == day == float(nrm.loc[pid, "time_days"])
        assert int(cir.loc[pid, "cause"]) == cause == int(nrm.loc[pid, "cause"])
        assert int(cir.loc[pid, "event"]) == int(cause == 1)
        assert int(nrm.loc[pid, "event"]) == int(cause == 2)
    # only the infection death in remission is non-relapse mortality
    assert list(nrm.index[nrm["event"] == 1]) == ["N03"]


def test_disease_death_without_relapse_row_is_relapse(table):
    cir = table[(table["endpoint"] == "CIR") & (table["patient_id"] == "N04")].iloc[0]
    assert "death from the disease" in cir["event_desc"]
    assert (cir["source_table"], Path(cir["source_file"]).name, int(cir["source_row"])) == (
        "events",
        "events.csv",
        11,
    )


def test_pd_assessment_ends_pfs_at_its_day(table):
    pfs = table[(table["endpoint"] == "PFS") & (table["patient_id"] == "N05")].iloc[0]
    assert pfs["event_desc"] == "response assessment PD"
    assert int(pfs["source_row"]) == 13


def test_relapse_on_a_response_row_is_a_cir_event(table):
    cir = table[(table["endpoint"] == "CIR") & (table["patient_id"] == "N07")].iloc[0]
    assert (float(cir["time_days"]), int(cir["event"]), int(cir["source_row"])) == (90.0, 1, 18)


def test_validate_warns_about_disease_death_without_relapse_row_and_blank_infused(cohort):
    warnings = endpoint_warnings(cohort)
    where = {(Path(w.file).name, w.row, w.column) for w in warnings}
    assert where == {
        ("events.csv", 11, "cause"),  # N04
        ("events.csv", 16, "cause"),  # N06
        ("patients.csv", 9, "infused"),  # N08
    }


# --------------------------------------------------------------------- EFS setting


def test_efs_required_response_and_failure_day(cohort):
    day1 = derive_endpoints(cohort, EndpointOptions(efs_failure_day=1), endpoints=["EFS"])
    assert _rows(day1, "EFS")["N05"] == (1.0, 1)
    lymphoma = EndpointOptions(required_response=("CR", "CRh", "CRi", "PR"))
    efs = _rows(derive_endpoints(cohort, lymphoma, endpoints=["EFS"]), "EFS")
    assert efs["N05"] == (60.0, 1)  # PR is success; PD on day 60 ends it
    assert efs["N06"] == (0.0, 1)
    with pytest.raises(ValueError, match="required_response"):
        EndpointOptions(required_response=("complete",))


# --------------------------------------------------------------------- SCT


def test_consolidation_versus_salvage_sct(cohort):
    sct = consolidation_sct(cohort).set_index("patient_id")
    kinds = sct["sct_kind"].dropna().to_dict()
    assert kinds == {
        "N01": "consolidation",
        "N07": "salvage",
        "N10": "consolidation",
        "N11": "consolidation",
        "N12": "not in documented remission",
    }
    assert float(sct.loc["N10", "sct_day"]) == 35.0
    assert bool(sct.loc["N07", "salvage"]) and not bool(sct.loc["N07", "consolidation"])


# --------------------------------------------------------------------- provenance


def test_provenance_columns(table):
    os_ = table[table["endpoint"] == "OS"].set_index("patient_id")
    assert (os_.loc["N02", "source_table"], int(os_.loc["N02", "source_row"])) == ("events", 7)
    assert os_.loc["N02", "source"].endswith("events.csv row 7 (death (relapse))")
    # censored at last contact: the deciding row is the last contact
    assert (Path(os_.loc["N11", "source_file"]).name, int(os_.loc["N11", "source_row"])) == (
        "events.csv",
        28,
    )
    assert table["source_table"].notna().all() and table["source_row"].notna().all()


# --------------------------------------------------------------------- user endpoints


GRFS_YAML = """
endpoints:
  GRFS:
    label: GVHD-free, relapse-free survival
    events: [progression, death, {ae: acute GVHD, min_grade: 3}, {ae: cGVHD, min_grade: 2}]
    population: saf
    source: Holtan et al., Blood 2015;125:1333
"""


def test_user_defined_endpoint_from_settings_file(tmp_path, make_cohort_dir):
    folder = make_cohort_dir(
        tmp_path,
        patients="patient_id,infused\nG1,yes\nG2,yes\nG3,yes\n",
        events="patient_id,day,event,response\nG1,28,response,CR\nG1,300,relapse,\n"
        "G2,28,response,CR\nG2,500,last_contact,\nG3,28,response,CR\nG3,400,last_contact,\n",
        adverse_events="patient_id,term,onset_day,resolution_day,grade\n"
        "G1,aGVHD,60,90,3\nG2,aGVHD,50,70,2\nG3,cGVHD,200,,2\n",
    )
    spec = tmp_path / "endpoints.yaml"
    spec.write_text(GRFS_YAML, encoding="utf-8")
    defs = load_definitions(spec)
    assert defs["GRFS"].population == "SAF"
    t = derive_endpoints(load_cohort(folder), EndpointOptions(definitions=defs))
    grfs = t[t["endpoint"] == "GRFS"].set_index("patient_id")
    # G1: grade 3 aGVHD on day 60 before relapse; G2: grade 2 aGVHD does not count;
    # G3: cGVHD grade 2 on day 200
    got = {p: (float(r.time_days), int(r.event)) for p, r in grfs.iterrows()}
    assert got == {"G1": (60.0, 1), "G2": (500.0, 0), "G3": (200.0, 1)}
    assert grfs.loc["G1", "source_table"] == "adverse_events"
    assert "aGVHD grade 3" in grfs.loc["G1", "event_desc"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("endpoints:\n  X:\n    events: [relapse]\n    colums: 1\n", "unknown key"),
        ("endpoints:\n  X:\n    events: [deth]\n", r"endpoints\.X\.events\[0\]"),
        ("endpoints:\n  X:\n    events: [{ae: rash2, min_grade: 3}]\n", "adverse-event term"),
        ("endpoints:\n  X:\n    events: [{ae: CRS, min_grade: 7}]\n", "min_grade"),
        ("endpoints:\n  X:\n    events: [death]\n    population: ALL\n", "population"),
        ("endpoints:\n  OS:\n    events: [death]\n", "built-in"),
        ("endpoints:\n  X:\n    label: no events\n", "at least one"),
    ],
)
def test_user_endpoint_errors_name_file_and_key(tmp_path, text, message):
    spec = tmp_path / "bad.yaml"
    spec.write_text(text, encoding="utf-8")
    with pytest.raises(DefinitionError, match=message) as err:
        load_definitions(spec)
    assert str(spec) in str(err.value)


def test_methods_text_comes_from_the_definition_objects():
    for defn in ENDPOINTS.values():
        text = defn.methods_text()
        label = POPULATIONS[defn.population].label
        assert defn.text in text and label[1:] in text
        assert defn.source


# --------------------------------------------------------------------- command line


def test_cli_validate_prints_the_warnings_and_strict_fails(tmp_path, make_cohort_dir):
    from typer.testing import CliRunner

    from cartrial.cli import app

    folder = make_cohort_dir(tmp_path, patients=PATIENTS, events=EVENTS)
    runner = CliRunner()
    result = runner.invoke(app, ["validate", str(folder)])
    assert result.exit_code == 0, result.output
    assert "3 warning(s)" in result.output
    assert "row 11, column 'cause'" in result.output
    assert "row 9, column 'infused'" in result.output
    strict = runner.invoke(app, ["validate", str(folder), "--strict"])
    assert strict.exit_code == 1


def test_cli_endpoints_with_user_definitions(tmp_path, make_cohort_dir):
    import csv

    from typer.testing import CliRunner

    from cartrial.cli import app

    folder = make_cohort_dir(tmp_path, patients=PATIENTS, events=EVENTS)
    spec = tmp_path / "eps.yaml"
    spec.write_text(
        "endpoints:\n  RFS2:\n    events: [relapse]\n    population: CR\n", encoding="utf-8"
    )
    out = tmp_path / "adtte.csv"
    runner = CliRunner()
    result = runner.invoke(
        app, ["endpoints", str(folder), "--definitions", str(spec), "-o", str(out)]
    )
    assert result.exit_code == 0, result.output
    with open(out, newline="", encoding="utf-8") as fh:
        rows = [r for r in csv.DictReader(fh) if r["endpoint"] == "RFS2"]
    # only relapse *events* (N02 day 120, N10 day 300) count for this user endpoint
    got = {r["patient_id"]: (float(r["time_days"]), int(r["event"])) for r in rows}
    assert got["N02"] == (120.0, 1) and got["N10"] == (300.0, 1)
    assert got["N04"] == (150.0, 0)  # censored at the death (last known alive)
    assert set(got) == set(IN_CR)
    bad = tmp_path / "bad.yaml"
    bad.write_text("endpoints:\n  X:\n    events: [relapse]\n    colums: 1\n", encoding="utf-8")
    result = runner.invoke(app, ["endpoints", str(folder), "--definitions", str(bad)])
    assert result.exit_code == 2 and "unknown key" in result.output
