"""Shared helpers of the web tests (the fixtures are in conftest.py)."""

from __future__ import annotations

import base64
import re

from sqlalchemy import func, select

from cartrial.store.database import make_engine, session_factory, upgrade
from cartrial.store.users import create_user, ensure_site
from cartrial.web.app import create_app

PASSWORD = "correct horse battery"


def setup_app(url: str, monkeypatch, sites=("A", "B")):
    monkeypatch.setenv("CARTRIAL_ADMIN_PASSWORD", PASSWORD)
    engine = make_engine(url)
    upgrade(engine)
    with session_factory(engine)() as s:
        s.info["user"] = "setup"
        for code in sites:
            ensure_site(s, code)
        create_user(s, "entryA", PASSWORD, "data_entry", sites[0])
        create_user(s, "entryB", PASSWORD, "data_entry", sites[1])
        create_user(s, "mon", PASSWORD, "monitor")
        create_user(s, "stat", PASSWORD, "statistician")
        s.commit()
    app = create_app(engine=engine)
    return engine, app


def basic(user: str, password: str = PASSWORD) -> dict[str, str]:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


def csrf_of(html: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)


def login(client, user: str, password: str = PASSWORD) -> str:
    token = csrf_of(client.get("/login").text)
    r = client.post(
        "/login",
        data={"username": user, "password": password, "csrf_token": token},
        follow_redirects=False,
    )
    assert r.status_code == 303, r.text
    return csrf_of(client.get("/patients").text)


def count(engine, model, *where) -> int:
    with engine.connect() as c:
        return c.scalar(select(func.count()).select_from(model).where(*where))


def add_patient(client, user, pid, site, **extra):
    r = client.post(
        "/api/patients",
        json={"patient_id": pid, "site": site, "age_years": 30, **extra},
        headers=basic(user),
    )
    assert r.status_code == 201, r.text
    return r.json()
