"""End-to-end in a real browser (Playwright + Debian chromium, headless).

Logs in, creates a patient, records a bedside assessment and sees the computed grade,
adds a relapse and sees it on the timeline, opens the report. Skipped, with the
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
    subprocess.run([sys.executable, "-m", "cartrial", "db", "add-user", "nurse", "--role",
                    "data_entry", "--site", "SITE1", "--db", str(db)], env=env, check=True,
                   capture_output=True, timeout=120)
    proc = subprocess.Popen([sys.executable, "-m", "cartrial", "serve", "--db", str(db),
                             "--host", "127.0.0.1", "--port", str(port)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
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
    req = urllib.request.Request(base + path, data=json.dumps(body).encode(), method=method,
                                 headers={"Authorization": f"Basic {auth}",
                                          "Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.loads(r.read())


def test_browser_flow(server):
    from playwright.sync_api import expect, sync_playwright

    _admin_api(server, "POST", "/api/users", {"username": "stats", "password": PASSWORD,
                                              "role": "statistician"})
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True,
                                     args=["--headless", "--no-sandbox", "--disable-gpu"])
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
        ev.locator("input[name=event]").fill("relapse")
        ev.locator("input[name=site]").fill("marrow")
        ev.locator("button[type=submit]").click()
        expect(page.locator("svg.timeline .event-relapse")).to_have_count(1)
        expect(page.locator("svg.timeline .event-relapse title")).to_contain_text("day 120")
        # a validation message beside the field
        ev = page.locator("#add-events")
        ev.locator("input[name=day]").fill("abc")
        ev.locator("input[name=event]").fill("relapse")
        ev.locator("button[type=submit]").click()
        expect(page.locator("#err-day")).to_contain_text("expected a number")
        page.click("text=Log out")
        # the statistician opens the report built from the database
        page.fill("input[name=username]", "stats")
        page.fill("input[name=password]", PASSWORD)
        page.click("button[type=submit]")
        page.click("text=Cohort report")
        expect(page.locator("h1").first).not_to_have_text("Cannot do that")
        assert "<table" in page.content()
        browser.close()
