"""Database fixtures shared by the store and web tests (imported by their conftest files):
both back ends (PostgreSQL skips with its reason when none answers) and cheap password
hashing."""

from __future__ import annotations

import pytest

from cartrial.store.database import session_factory
from cartrial.store.models import Event, Patient
from cartrial.store.testing import PostgresUnavailable, scratch_database
from cartrial.store.users import ensure_site


@pytest.fixture(autouse=True)
def cheap_argon2(monkeypatch):
    """Cheaper argon2 parameters keep the suite fast; the hash format is the same."""
    from argon2 import PasswordHasher

    import cartrial.store.users as users

    monkeypatch.setattr(
        users, "_HASHER", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    )


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request, tmp_path, monkeypatch):
    # the signing key of a PostgreSQL installation defaults to ~/.config: keep it in tmp
    monkeypatch.setenv("CARTRIAL_SECRET_FILE", str(tmp_path / "secret"))
    monkeypatch.setenv("CARTRIAL_REPORT_DIR", str(tmp_path / "reports"))
    try:
        with scratch_database(request.param, tmp_path) as url:
            yield url
    except PostgresUnavailable as exc:
        pytest.skip(str(exc))


def write_some_history(engine) -> None:
    """A patient at site S1 with one event changed once (PR -> CR): three audited writes,
    the audit trail's smallest interesting history."""
    with session_factory(engine)() as s:
        s.info["user"] = "nurse"
        ensure_site(s, "S1")
        s.add(Patient(patient_id="P1", site="S1"))
        s.commit()
        ev = Event(patient_id="P1", day=30, event="response", response="PR")
        s.add(ev)
        s.commit()
        ev.response = "CR"
        s.commit()
