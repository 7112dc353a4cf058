"""The dose-escalation and safety-monitoring page (issue 18 in the web app).

The page reads the live database as a cohort and shows what ``cartrial.design`` gives for
it: the next-dose recommendation with the rule that fired and the DLT table behind it, and
the Bayesian boundary status. The design rules themselves are tested in tests/design; here:
the page shows the same numbers as the library on the same data read back from the
database, only trial-wide roles see it, bad parameters get a clear message, and nothing in
the database changes (reference only).
"""

from __future__ import annotations

import html
import subprocess
import sys

import pytest
from fastapi.testclient import TestClient
from webhelpers import login

from cartrial.cohort import load_cohort
from cartrial.store.cohort_io import import_cohort, read_cohort


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory):
    out = tmp_path_factory.mktemp("syn") / "cohort"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "cartrial",
            "simulate",
            "--patients",
            "30",
            "--seed",
            "5",
            "-o",
            str(out),
        ],
        check=True,
        capture_output=True,
    )
    return load_cohort(out)


def test_page_shows_the_library_recommendation_and_boundaries(env, synthetic):
    from cartrial.design.escalation import BOIN
    from cartrial.design.monitor import dsmb_summary, next_dose_recommendation

    engine, app = env
    import_cohort(engine, synthetic)
    cohort = read_cohort(engine)
    rec = next_dose_recommendation(cohort, BOIN(0.3, 3), [5e5, 1e6, 2e6])
    dsmb = dsmb_summary(cohort, theta=0.3, cutoff=0.9)
    with TestClient(app) as client:
        login(client, "stat")
        page = html.unescape(client.get("/design").text)
    assert rec.text in page
    assert rec.decision.rule in page
    for row in rec.dlt_table.itertuples(index=False):
        assert f"<td>{row.label}</td>" in page
    assert f"{dsmb['boundary']['posterior_prob']:.3f}" in page
    assert "never an automatic stop" in page and "never an action" in page


def test_roles_and_bad_parameters(env, synthetic):
    engine, app = env
    import_cohort(engine, synthetic)
    before = read_cohort(engine).adverse_events.shape
    with TestClient(app) as client:
        login(client, "entryA")
        r = client.get("/design")
        assert r.status_code == 403
    with TestClient(app) as client:
        login(client, "mon")
        r = client.get("/design", params={"target": "thirty", "doses": "5e5,1e6"})
        assert r.status_code == 200 and "must be numbers" in r.text
        r = client.get("/design", params={"doses": "2e6,1e6"})
        assert "lowest first" in r.text
        r = client.get("/design", params={"design": "CRM"})
        assert "Recommendation (not an action)" in html.unescape(r.text)
    assert read_cohort(engine).adverse_events.shape == before  # reference only
