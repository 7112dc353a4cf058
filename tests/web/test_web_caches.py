"""The patient-page cache (keyed by the patient's data version and the user) and the
on-disk report cache shared by server workers (keyed by data version and settings)."""

from __future__ import annotations

import sys
import time

from fastapi.testclient import TestClient
from webhelpers import add_patient, basic, csrf_of, login

from cartrial.store.database import session_factory
from cartrial.store.models import Event


def test_patient_page_cache_follows_every_change_and_each_user(env):
    engine, app = env
    cache = app.state.cartrial.pages
    with (
        TestClient(app) as c,
        TestClient(app) as c2,
        TestClient(app) as mon,
        TestClient(app) as other,
    ):
        add_patient(c, "entryA", "A1", "A")
        login(c, "entryA")
        first = c.get("/patients/A1")
        hits = cache.hits
        again = c.get("/patients/A1")
        assert again.status_code == 200 and cache.hits == hits + 1
        assert again.text == first.text
        # a second session of the same user: the cached page carries *its* CSRF token
        token2 = login(c2, "entryA")
        page2 = c2.get("/patients/A1")
        assert csrf_of(page2.text) == token2 != csrf_of(first.text)
        r = c2.post(
            "/patients/A1/records/events",
            data={
                "csrf_token": csrf_of(page2.text),
                "day": "30",
                "event": "response",
                "response": "CR",
            },
            follow_redirects=False,
        )
        assert r.status_code == 303
        # the change (made in the other session) shows at once in the first one
        assert "day 30" in c.get("/patients/A1").text
        # a change by another process (its own engine: another worker, an import)
        with session_factory(engine)() as s:
            s.info["user"] = "worker2"
            s.add(Event(patient_id="A1", day=90.0, event="relapse"))
            s.commit()
        assert "Relapse day 90" in c.get("/patients/A1").text
        # other users never get this user's page: rights and navigation are their own
        login(other, "entryB")
        assert other.get("/patients/A1").status_code == 404
        login(mon, "mon")
        page = mon.get("/patients/A1").text
        assert 'id="audit-link"' in page and 'id="audit-link"' not in c.get("/patients/A1").text
        # deleting the patient: the cached page is not served again
        version = c.get("/api/patients/A1", headers=basic("entryA")).json()["version"]
        r = c.request(
            "DELETE",
            "/api/patients/A1",
            headers=basic("entryA"),
            json={"version": version, "reason": "entered in error"},
        )
        assert r.status_code in (200, 204), r.text
        assert c.get("/patients/A1").status_code == 404


FAKE = """
import sys, pathlib
out = pathlib.Path(sys.argv[2]); out.mkdir(parents=True, exist_ok=True)
count = pathlib.Path(sys.argv[3]); count.write_text(str(int(count.read_text() or 0) + 1)
                                                    if count.exists() else "1")
(out / "index.html").write_text("<html>report</html>")
print("report written", file=sys.stderr, flush=True)
"""


def _wait(job, limit=60.0):
    end = time.monotonic() + limit
    while job.status not in ("done", "failed", "stopped"):
        assert time.monotonic() < end, (job.status, job.lines)
        time.sleep(0.05)


def test_report_cache_is_shared_by_workers_and_keyed_by_settings(env, tmp_path):
    from cartrial.web.reports import ReportJobs, _try_lock

    engine, app = env
    with TestClient(app) as c:
        add_patient(c, "entryA", "A1", "A")
    script = tmp_path / "fake.py"
    script.write_text(FAKE)
    builds = tmp_path / "builds"
    root = tmp_path / "shared"

    def command(extra: str = ""):
        return lambda src, out: [
            sys.executable,
            str(script),
            str(src),
            str(out),
            str(builds),
            *([extra] if extra else []),
        ]

    worker1 = ReportJobs(engine, root, command=command())
    worker2 = ReportJobs(engine, root, command=command())  # another server process
    job = worker1.start()
    _wait(job)
    assert job.status == "done" and builds.read_text() == "1"
    version, seen = worker2.current()
    assert seen is not None and seen.status == "done" and version == job.version
    assert worker2.start().status == "done" and builds.read_text() == "1"  # not rebuilt
    assert worker2.find(version).files() == ["index.html"]
    assert worker2.find("../../etc") is None
    # other settings: another key, built anew
    other = ReportJobs(engine, root, command=command("--other-option"))
    assert other.key() != worker1.key()
    assert other.current()[1] is None
    # a build in progress elsewhere (its flock held) is shown as running, not started twice
    third = ReportJobs(engine, root, command=command("--third"))
    held = _try_lock(root / f"{third.key()}.lock")
    try:
        running = third.start()
        assert running.status == "running" and running.remote
        assert builds.read_text() == "1"
    finally:
        held.close()
