"""Contract details added after review: category words, identifiers, NE responses, DOR vs SCT."""

from __future__ import annotations

import pytest

from cartrial.cohort import CohortError, load_cohort
from cartrial.endpoints import EndpointOptions, derive_endpoints


def _write(tmp_path, **tables):
    d = tmp_path / "c"
    d.mkdir()
    for name, text in tables.items():
        (d / f"{name}.csv").write_text(text)
    return d


def test_unknown_oxygen_device_word_is_a_problem(tmp_path):
    d = _write(
        tmp_path,
        patients="patient_id\nP1\n",
        # "nasal cannula" is a bedside word accepted since issue 11 (low-flow unless the
        # flow says > 6 L/min); "helmet" is still not a device the criteria grade
        observations="patient_id,day,analyte,value\nP1,1,oxygen,helmet\nP1,2,oxygen,HFNC\n",
    )
    with pytest.raises(CohortError) as err:
        load_cohort(d)
    (p,) = err.value.problems
    assert (p.row, p.column, p.value) == (2, "value", "helmet")
    assert "high_flow" in p.expected  # the allowed devices are listed


def test_yes_no_analyte_rejects_other_words(tmp_path):
    d = _write(
        tmp_path,
        patients="patient_id\nP1\n",
        observations="patient_id,day,analyte,value\nP1,1,hypotension,maybe\nP1,2,hypotension,yes\n",
    )
    with pytest.raises(CohortError) as err:
        load_cohort(d)
    assert [(p.row, p.value) for p in err.value.problems] == [(2, "maybe")]


def test_identifier_with_leading_zeros_stays_text(tmp_path):
    d = _write(tmp_path, patients="patient_id,mrn_code\nP1,007\nP2,010\n")
    c = load_cohort(d)
    assert c.patients["mrn_code"].tolist() == ["007", "010"]


def test_not_evaluable_is_not_an_efs_failure(tmp_path):
    d = _write(
        tmp_path,
        patients="patient_id\nP1\nP2\n",
        events="patient_id,day,event,response\nP1,28,response,NE\nP1,90,last_contact,\n"
        "P2,28,response,NR\nP2,90,last_contact,\n",
    )
    efs = derive_endpoints(load_cohort(d), endpoints=["EFS"]).set_index("patient_id")
    # NR is a treatment failure at day 0 (ELN 2022); NE is neither response nor failure
    assert (efs.loc["P2", "time_days"], efs.loc["P2", "event"]) == (0.0, 1)
    assert (efs.loc["P1", "time_days"], efs.loc["P1", "event"]) == (90.0, 0)


def test_dor_ignores_sct_before_first_response(tmp_path):
    d = _write(
        tmp_path,
        patients="patient_id\nP1\n",
        events="patient_id,day,event,response\nP1,10,sct,\nP1,28,response,CR\n"
        "P1,100,relapse,\nP1,200,last_contact,\n",
    )
    dor = derive_endpoints(
        load_cohort(d), EndpointOptions(censor_at_sct=True), endpoints=["DOR"]
    ).iloc[0]
    # DOR starts at the response (day 28): an SCT on day 10 cannot censor it; relapse on 100
    assert (dor["time_days"], dor["event"]) == (72.0, 1)
