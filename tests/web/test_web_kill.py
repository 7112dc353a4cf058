"""Kill tests: a migration killed at every step, a server killed during a burst of writes,
a server stopped (SIGTERM) while report jobs run; and the report job itself."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
from sqlalchemy import inspect, select, text
from webhelpers import PASSWORD, basic

from cartrial.store.database import current_revision, make_engine, upgrade
from cartrial.store.models import Event

KILL_AT = textwrap.dedent(
    """
    import os, signal, sys
    from sqlalchemy import event
    from sqlalchemy.engine import Engine
    n, seen = int(sys.argv[2]), [0]
    @event.listens_for(Engine, "before_cursor_execute")
    def _kill(conn, cursor, statement, *args):
        seen[0] += 1
        if seen[0] == n:
            os.kill(os.getpid(), signal.SIGKILL)
    from cartrial.store.database import make_engine, upgrade
    upgrade(make_engine(sys.argv[1]))
    print(seen[0])
    """
)


def _statements(script: Path, url: str) -> int:
    r = subprocess.run(
        [sys.executable, str(script), url, "0"],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return int(r.stdout.strip())


@pytest.mark.slow
def test_migration_killed_at_every_step_is_all_or_nothing(db_url, tmp_path):
    """SIGKILL before each SQL statement of the first migration: afterwards the database
    is either untouched or at head, and an ordinary upgrade finishes it."""
    script = tmp_path / "kill_at.py"
    script.write_text(KILL_AT)
    if db_url.startswith("sqlite"):
        urls = [f"sqlite:///{tmp_path / f'k{i}.sqlite'}" for i in range(200)]
    else:
        urls = [db_url] * 200
    total = _statements(script, urls[0])
    if not db_url.startswith("sqlite"):  # one schema: start again from empty each time
        _reset_pg(db_url)
    steps = range(1, total + 1) if db_url.startswith("sqlite") else range(1, total + 1, 4)
    for n in steps:
        url = urls[n]
        r = subprocess.run(
            [sys.executable, str(script), url, str(n)], capture_output=True, text=True, timeout=120
        )
        assert r.returncode == -signal.SIGKILL, (n, r.stderr[-500:])
        eng = make_engine(url)
        with eng.connect() as conn:
            tables = set(inspect(conn).get_table_names()) - {"alembic_version"}
            revision = current_revision(eng)
        assert (revision is None and not tables) or revision == "0004", (n, revision, tables)
        upgrade(eng)
        assert current_revision(eng) == "0004"
        eng.dispose()
        if not db_url.startswith("sqlite"):
            _reset_pg(db_url)


def _reset_pg(url: str) -> None:
    eng = make_engine(url)
    with eng.begin() as conn:
        for t in reversed(inspect(conn).get_table_names()):
            conn.execute(text(f'DROP TABLE IF EXISTS "{t}" CASCADE'))
        conn.execute(text("DROP FUNCTION IF EXISTS audit_log_append_only() CASCADE"))
    eng.dispose()


def test_half_created_database_gives_a_clear_message(tmp_path):
    """What an older version left after a killed first start: tables, no revision."""
    path = tmp_path / "half.sqlite"
    import sqlite3

    con = sqlite3.connect(path)
    con.executescript(
        "CREATE TABLE audit_log (id INTEGER PRIMARY KEY);"
        "CREATE TABLE sites (code TEXT PRIMARY KEY);"
        "CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL);"
    )
    con.close()
    r = subprocess.run(
        [sys.executable, "-m", "cartrial", "db", "upgrade", "--db", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 2 and "half-created" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr


# -- a real server -------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _serve(db: str, tmp_path: Path, **env_extra: str) -> tuple[subprocess.Popen, str]:
    port = _free_port()
    env = {
        **os.environ,
        "CARTRIAL_ADMIN_PASSWORD": PASSWORD,
        "CARTRIAL_SECRET_FILE": str(tmp_path / "secret"),
        **env_extra,
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "cartrial", "serve", "--db", db, "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    for _ in range(600):
        try:
            urllib.request.urlopen(base + "/login", timeout=1)
            return proc, base
        except OSError:
            if proc.poll() is not None:
                pytest.fail("server exited: " + proc.stdout.read().decode())
            time.sleep(0.1)
    proc.kill()
    pytest.fail("server did not start")


def _call(
    base: str, method: str, path: str, body: dict | None = None, timeout: float = 30
) -> tuple[int, dict]:
    req = urllib.request.Request(
        base + path,
        method=method,
        data=None if body is None else json.dumps(body).encode(),
        headers={**basic("admin"), "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, json.loads(r.read() or b"{}")
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


@pytest.mark.slow
def test_server_killed_mid_burst_keeps_every_acknowledged_write(db_url, tmp_path):
    """8 clients add events as fast as they can; the server gets SIGKILL mid-burst. Every
    event acknowledged with 201 is in the database afterwards; nothing else beyond the
    requests in flight; the audit chain is intact."""
    proc, base = _serve(db_url, tmp_path)
    try:
        assert _call(base, "POST", "/api/patients", {"patient_id": "K1", "site": None})[0] == 201
        acked: list[int] = []
        sent = [0]
        lock = threading.Lock()
        stop = threading.Event()

        def client(i: int) -> None:
            k = 0
            while not stop.is_set():
                k += 1
                with lock:
                    sent[0] += 1
                try:
                    status, body = _call(
                        base,
                        "POST",
                        "/api/patients/K1/events",
                        {"day": i * 4000 + k, "event": "last_contact"},
                        timeout=10,
                    )
                except (OSError, ValueError):
                    return
                if status == 201:
                    with lock:
                        acked.append(body["id"])

        threads = [threading.Thread(target=client, args=(i,)) for i in range(8)]
        for t in threads:
            t.start()
        deadline = time.monotonic() + 300  # a bound, not a timing assertion
        while len(acked) < 40:
            time.sleep(0.05)
            assert proc.poll() is None
            assert time.monotonic() < deadline, f"only {len(acked)} of {sent[0]} acknowledged"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
        stop.set()
        for t in threads:
            t.join(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    eng = make_engine(db_url)
    with eng.connect() as conn:
        stored = set(conn.scalars(select(Event.id)))
        if eng.dialect.name == "sqlite":
            assert conn.execute(text("PRAGMA integrity_check")).scalar() == "ok"
        from cartrial.store.chain import verify

        result = verify(conn)
    eng.dispose()
    assert set(acked) <= stored, sorted(set(acked) - stored)[:10]
    assert len(stored) - len(acked) <= 8  # at most the requests in flight at the kill
    assert result.ok, result.problems


# -- reports -----------------------------------------------------------------------------------

FAKE_REPORT = textwrap.dedent(
    """
    import pathlib, sys, time
    src, out = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
    mode = sys.argv[3]
    print("[  0.0s] loading cohort", src.name, file=sys.stderr, flush=True)
    assert (src / "patients.csv").exists()
    if mode == "hang":
        print("[  0.1s] building figures", file=sys.stderr, flush=True)
        time.sleep(600)
    if mode == "fail":
        print("Traceback: boom", file=sys.stderr, flush=True)
        sys.exit(3)
    out.mkdir(parents=True)
    (out / "index.html").write_text("<html>report of " + str(sum(1 for _ in open(src / "patients.csv")) - 1) + " patients</html>")
    (out / "report.pdf").write_bytes(b"%PDF-1.4 fake")
    (out / "tables").mkdir()
    (out / "tables" / "table1.csv").write_text("a,b\\n1,2\\n")
    print("[  0.2s] report written", file=sys.stderr, flush=True)
    """
)


def _jobs(engine, tmp_path, mode: str):
    from cartrial.web.reports import ReportJobs

    tmp_path.mkdir(parents=True, exist_ok=True)
    script = tmp_path / "fake_report.py"
    script.write_text(FAKE_REPORT)
    return ReportJobs(
        engine,
        tmp_path / "reports",
        command=lambda src, out: [sys.executable, str(script), str(src), str(out), mode],
    )


def _wait(job, states=("done", "failed", "stopped"), limit=120.0):
    end = time.monotonic() + limit
    while job.status not in states:
        assert time.monotonic() < end, (job.status, job.lines)
        time.sleep(0.05)


def test_report_job_progress_cache_and_downloads(env, tmp_path):
    from fastapi.testclient import TestClient
    from webhelpers import add_patient, login

    engine, app = env
    app.state.cartrial.reports = jobs = _jobs(engine, tmp_path, "ok")
    with TestClient(app) as c:
        add_patient(c, "entryA", "A1", "A")
        add_patient(c, "entryA", "A2", "A")
        token = login(c, "stat")
        assert (
            c.post("/report", data={"csrf_token": token}, follow_redirects=False).status_code == 303
        )
        version, job = jobs.current()
        _wait(job)
        assert job.status == "done", job.error
        page = c.get("/report").text
        assert "report written" in page and "loading cohort" in page  # progress lines
        assert f"/report/files/{version}/report.pdf" in page
        assert f"/report/files/{version}/tables/table1.csv" in page
        r = c.get(f"/report/files/{version}/index.html")
        assert r.status_code == 200 and "report of 2 patients" in r.text
        r = c.get(f"/report/files/{version}/report.pdf")
        assert r.content.startswith(b"%PDF") and "attachment" in r.headers["content-disposition"]
        assert c.get(f"/report/files/{version}/../../etc/passwd").status_code == 404
        # same data: the cached job; changed data: a new version
        assert jobs.start() is job
        add_patient(c, "entryA", "A3", "A")
        new_version, none_yet = jobs.current()
        assert new_version != version and none_yet is None
        job3 = jobs.start()
        _wait(job3)
        assert "report of 3 patients" in c.get(f"/report/files/{new_version}/index.html").text
    with TestClient(app) as c:
        login(c, "entryA")
        assert c.get(f"/report/files/{version}/index.html").status_code == 403


def test_report_failure_is_shown_and_shutdown_stops_a_running_job(env, tmp_path):
    from fastapi.testclient import TestClient
    from webhelpers import add_patient

    engine, app = env
    with TestClient(app) as c:
        add_patient(c, "entryA", "A1", "A")
    failing = _jobs(engine, tmp_path / "f", "fail")
    job = failing.start()
    _wait(job)
    assert job.status == "failed" and "code 3" in job.error and "boom" in job.error
    hanging = _jobs(engine, tmp_path / "h", "hang")
    job = hanging.start()
    _wait(job, states=("running",))
    while not any("building figures" in line for line in job.lines):
        time.sleep(0.05)
    pid = job.proc.pid
    hanging.shutdown(grace_s=5)
    _wait(job)
    assert job.status == "stopped" and job.proc.poll() is not None
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


@pytest.mark.slow
def test_sigterm_stops_the_server_during_overlapping_reports(db_url, tmp_path):
    """Overlapping report requests, then SIGTERM: the server exits promptly and leaves no
    report process behind (it used to fork from the threaded server and hang)."""
    fake = tmp_path / "fake_report.py"
    fake.write_text(FAKE_REPORT)
    proc, base = _serve(db_url, tmp_path)
    try:
        assert _call(base, "POST", "/api/patients", {"patient_id": "R1"})[0] == 201
        opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor())
        import re

        page = opener.open(base + "/login", timeout=30).read().decode()
        token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
        data = urllib.parse.urlencode(
            {"username": "admin", "password": PASSWORD, "csrf_token": token}
        ).encode()
        opener.open(base + "/login", data=data, timeout=30)
        page = opener.open(base + "/report", timeout=30).read().decode()
        token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
        for _ in range(3):  # overlapping requests join one job per data version
            opener.open(
                base + "/report",
                data=urllib.parse.urlencode({"csrf_token": token}).encode(),
                timeout=30,
            )
        status = ""
        for _ in range(600):
            status = opener.open(base + "/report", timeout=30).read().decode()
            if 'id="report-status">running' in status or 'report-status">failed' in status:
                break
            time.sleep(0.1)
        assert _call(base, "GET", "/api/patients")[0] == 200  # still answering
        children = _children(proc.pid)
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    # uvicorn re-raises the signal after its graceful shutdown: ended by SIGTERM, promptly
    assert proc.returncode in (0, -signal.SIGTERM)
    assert "Traceback" not in proc.stdout.read().decode()
    time.sleep(0.5)
    assert not [p for p in children if _alive(p)]


def _children(pid: int) -> list[int]:
    out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True, text=True)
    return [int(x) for x in out.stdout.split()]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split()[2] != "Z"
    except OSError:
        return False
