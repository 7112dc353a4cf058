"""The web app's plumbing (issue 17): no app <-> router import circle, one error-page
handler, logging of authentication failures / server errors / slow requests, and the
version read from the package metadata."""

from __future__ import annotations

import ast
import logging
from importlib.metadata import version
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from webhelpers import PASSWORD, add_patient, basic, csrf_of, login

import cartrial.web.deps as deps_module

WEB = Path(deps_module.__file__).parent


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            out.add(node.module)
            out.update(f"{node.module}.{a.name}" for a in node.names)
        elif isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
    return out


@pytest.mark.parametrize(
    "module", ["api.py", "pages.py", "deps.py", "pagecache.py", "reports.py", "service.py"]
)
def test_routers_and_helpers_never_import_the_app(module):
    assert "cartrial.web.app" not in _imports(WEB / module)


def test_not_found_and_forbidden_are_one_error_page_with_the_users_navigation(env):
    _, app = env
    with TestClient(app) as c:
        add_patient(c, "entryB", "B1", "B")
        login(c, "entryA")
        for path in (
            "/patients/NOPE",
            "/patients/B1",
            "/patients/B1/edit",
            "/records/events/999/edit",
            "/patients/NOPE/assess",
        ):
            r = c.get(path)
            assert r.status_code == 404, path
            assert 'class="who">entryA' in r.text, path  # the logged-in user's header
        r = c.get("/admin/users")
        assert r.status_code == 403 and "only an admin" in r.text
        assert c.get("/api/patients/NOPE", headers=basic("entryA")).json()["detail"]


def test_auth_failures_server_errors_and_slow_requests_are_logged(db_url, monkeypatch, caplog):
    from webhelpers import setup_app

    monkeypatch.setenv("CARTRIAL_SLOW_MS", "0.001")  # every request counts as slow
    engine, app = setup_app(db_url, monkeypatch)

    @app.get("/boom")
    def boom():
        raise RuntimeError("kaput")

    try:
        with (
            caplog.at_level(logging.INFO, logger="cartrial.web"),
            TestClient(app, raise_server_exceptions=False) as c,
        ):
            token = csrf_of(c.get("/login").text)
            r = c.post(
                "/login", data={"username": "entryA", "password": "wrong!", "csrf_token": token}
            )
            assert r.status_code == 401
            assert c.get("/api/session", headers=basic("mon", "nope")).status_code == 401
            r = c.get("/boom")
            assert r.status_code == 500 and "server log" in r.text and "kaput" not in r.text
        text = "\n".join(f"{r.levelname} {r.getMessage()}" for r in caplog.records)
        assert "WARNING log-in failed for 'entryA'" in text
        assert "WARNING Basic log-in failed for 'mon'" in text
        assert "ERROR server error on GET /boom" in text
        assert "WARNING slow request: GET /login" in text
        assert PASSWORD not in text and "wrong!" not in text  # no passwords in the log
    finally:
        app.state.cartrial.reports.shutdown()
        engine.dispose()


def test_serve_rejects_an_unknown_log_level():
    from typer.testing import CliRunner

    from cartrial.cli import app as cli

    r = CliRunner().invoke(cli, ["serve", "--log-level", "chatty"])
    assert r.exit_code != 0 and "log-level" in r.output


def test_version_shown_is_the_package_metadata(env):
    _, app = env
    assert app.version == version("cartrial")
    with TestClient(app) as c:
        login(c, "mon")
        assert f"cartrial {version('cartrial')}</footer>" in c.get("/patients").text
