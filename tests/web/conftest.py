"""Fixtures of the web tests: both back ends, a ready app, cheap password hashing."""

from __future__ import annotations

import pytest
from webhelpers import setup_app

import dbfixtures


@pytest.fixture
def env(db_url, monkeypatch):
    engine, app = setup_app(db_url, monkeypatch)
    yield engine, app
    app.state.cartrial.reports.shutdown()
    engine.dispose()


# the shared database fixtures, registered here by name
cheap_argon2 = dbfixtures.cheap_argon2
db_url = dbfixtures.db_url
