"""End-to-end in a real browser (Playwright + Debian chromium, headless).

Logs in, creates a patient, records a bedside assessment and sees the computed grade,
adds a relapse and sees it on the timeline, builds and opens the report; and a whole
monitoring cycle (entry, automatic query, answer, close, lock, sign, change refused). Skipped, with the
reason, when Playwright or /usr/bin/chromium is missing.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.slow]
CHROMIUM = os.environ.get("CARTRIAL_CHROMIUM", "/usr/bin/chromium")
PASSWORD = "browser-test-password"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def server(tmp_path):
    pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    if not (Path(CHROMIUM).exists() or shutil.which("chromium")):
        pytest.skip(f"chromium not found at {CHROMIUM} (apt-get install chromium)")
    port = _free_port()
    db = tmp_path / "browser.sqlite"
    env = {**os.environ, "CARTRIAL_ADMIN_PASSWORD": PASSWORD, "CARTRIAL_NEW_PASSWORD": PASSWORD}
    subprocess.run(
        [
            sys.executable,
            "-m",
            "cartrial",
            "db",
            "add-user",
            "nurse",
            "--role",
            "data_entry",
            "--site",
            "SITE1",
            "--db",
            str(db),
        ],
        env=env,
        check=True,
        capture_output=True,
        timeout=120,
    )
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "cartrial",
            "serve",
            "--db",
            str(db),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            urllib.request.urlopen(base + "/login", timeout=1)
            break
        except OSError:
            if proc.poll() is not None:
                pytest.fail("server exited: " + proc.stdout.read().decode())
            time.sleep(0.1)
    yield base
    proc.terminate()
    proc.wait(timeout=30)


def _admin_api(base: str, method: str, path: str, body: dict) -> dict:
    auth = base64.b64encode(f"admin:{PASSWORD}".encode()).decode()
    req = urllib.request.Request(
        base + path,
        data=json.dumps(body).encode(),
        method=method,
        headers={"Authorization": f"Basic {auth}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.loads(r.read())


def test_browser_flow(server):
    from playwright.sync_api import expect, sync_playwright

    _admin_api(
        server,
        "POST",
        "/api/users",
        {"username": "stats", "password": PASSWORD, "role": "statistician"},
    )
    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=["--headless", "--no-sandbox", "--disable-gpu"],
        )
        page = browser.new_page()
        page.set_default_timeout(20000)
        page.goto(server + "/login")
        page.fill("input[name=username]", "nurse")
        page.fill("input[name=password]", PASSWORD)
        page.click("button[type=submit]")
        expect(page.locator("h1")).to_have_text("Patients")
        # create a patient
        form = page.locator("#new-patient")
        form.locator("input[name=patient_id]").fill("CAR-001")
        form.locator("select[name=site]").select_option("SITE1")
        form.locator("input[name=age_years]").fill("34")
        form.locator("button[type=submit]").click()
        expect(page.locator("h1")).to_contain_text("Patient CAR-001")
        # bedside assessment: fever + one vasopressor -> CRS grade 3 (ASTCT 2019)
        page.click("text=Bedside grading")
        a = page.locator("#assess")
        a.locator("input[name=day]").fill("5")
        a.locator("input[name=temperature_c]").fill("39.4")
        a.locator("select[name=hypotension]").select_option("yes")
        a.locator("input[name=vasopressors]").fill("1")
        a.locator("input[name=ice_score]").fill("10")
        a.locator("select[name=consciousness]").select_option("alert")
        a.locator("button[type=submit]").click()
        expect(page.locator("#crs-grade")).to_contain_text("grade 3")
        expect(page.locator("#icans-grade")).to_contain_text("grade")
        # add a relapse and see it on the timeline
        page.goto(server + "/patients/CAR-001")
        ev = page.locator("#add-events")
        ev.locator("input[name=day]").fill("120")
        ev.locator("select[name=event]").select_option("relapse")
        ev.locator("input[name=site]").fill("marrow")
        ev.locator("button[type=submit]").click()
        expect(page.locator("svg.timeline .event-relapse")).to_have_count(1)
        expect(page.locator("svg.timeline .event-relapse title")).to_contain_text("day 120")
        # a validation message beside the field (the server's cross-field rule)
        ev = page.locator("#add-events")
        ev.locator("input[name=day]").fill("30")
        ev.locator("select[name=event]").select_option("response")
        ev.locator("button[type=submit]").click()
        expect(page.locator("#err-response")).to_contain_text("required")
        page.click("text=Log out")
        # the statistician builds the report in the background and opens it
        page.fill("input[name=username]", "stats")
        page.fill("input[name=password]", PASSWORD)
        page.click("button[type=submit]")
        page.click("text=Cohort report")
        page.click("#build-report button")
        expect(page.locator("#report-status")).to_have_text("done", timeout=180000)
        expect(page.locator("#report-downloads")).to_contain_text("report.pdf")
        page.click("#report-view")
        assert "<table" in page.content()
        browser.close()


def test_browser_monitoring_cycle(server):
    """Entry, automatic query, answer, close, lock, sign, attempted change refused — each
    by the role that does it in a trial, in the real browser."""
    from playwright.sync_api import expect, sync_playwright

    for name, role, site in (("mon1", "monitor", None), ("pi1", "investigator", "SITE1")):
        _admin_api(
            server,
            "POST",
            "/api/users",
            {"username": name, "password": PASSWORD, "role": role, "site": site},
        )
    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=["--headless", "--no-sandbox", "--disable-gpu"],
        )
        page = browser.new_page()
        page.set_default_timeout(20000)

        def log_in(name: str) -> None:
            page.goto(server + "/login")
            page.fill("input[name=username]", name)
            page.fill("input[name=password]", PASSWORD)
            page.click("button[type=submit]")
            expect(page.locator("h1")).to_have_text("Patients")

        # 1. entry: the nurse records a temperature outside the plausible range
        log_in("nurse")
        form = page.locator("#new-patient")
        form.locator("input[name=patient_id]").fill("MON-1")
        form.locator("select[name=site]").select_option("SITE1")
        form.locator("button[type=submit]").click()
        expect(page.locator("h1")).to_contain_text("Patient MON-1")
        page.locator("details.card summary").first.click()
        obs = page.locator("#add-observations")
        obs.locator("input[name=day]").fill("3")
        obs.locator("select[name=analyte]").select_option("temperature")
        obs.locator("input[name=value]").fill("45.5")
        obs.locator("select[name=unit]").select_option("C")
        obs.locator("button[type=submit]").click()
        # 2. the automatic query appears; the site answers it
        row = page.locator("#query-table tr.q-open")
        expect(row).to_have_count(1)
        expect(row).to_contain_text("outside the plausible range")
        row.locator("input[name=answer]").fill("confirmed in the chart: probe error, see note")
        row.locator("button[type=submit]").click()
        expect(page.locator("#query-table tr.q-answered")).to_have_count(1)
        page.click("text=Log out")
        # 3. the monitor closes the query and locks the patient
        log_in("mon1")
        page.goto(server + "/patients/MON-1")
        page.locator("#query-table tr.q-answered .close-form button").click()
        expect(page.locator("#query-table tr.q-closed")).to_have_count(1)
        page.locator("#lock-form button").click()
        expect(page.locator("#locked-badge")).to_be_visible()
        page.click("text=Log out")
        # 4. the investigator signs with the password, the meaning shown
        log_in("pi1")
        page.goto(server + "/patients/MON-1")
        expect(page.locator("#signature")).to_contain_text("§11.50")
        expect(page.locator("#signature")).to_contain_text("review and approval")
        page.fill("#f-sign-password", PASSWORD)
        page.locator("#sign-form button").click()
        expect(page.locator("#signed-badge")).to_contain_text("signed by pi1")
        page.click("text=Log out")
        # 5. the nurse can no longer change the record, even with a reason
        log_in("nurse")
        page.goto(server + "/patients/MON-1")
        expect(page.locator("#locked-note")).to_be_visible()
        expect(page.locator("#add-events")).to_have_count(0)
        expect(page.locator("#observations tbody tr")).to_have_count(1)
        # the form is gone, but a hand-made POST from the nurse's session is refused too
        r = page.request.post(
            server + "/patients/MON-1/records/events",
            form={
                "csrf_token": page.locator("input[name=csrf_token]").first.get_attribute("value"),
                "day": "9",
                "event": "relapse",
                "reason": "please accept",
            },
        )
        assert r.status == 409 and "locked" in r.text()
        page.goto(server + "/patients/MON-1")
        expect(page.locator("#events tbody tr")).to_have_count(0)
        expect(page.locator("#signed-badge")).to_be_visible()
        browser.close()
