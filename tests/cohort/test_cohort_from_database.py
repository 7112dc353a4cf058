"""``load_cohort`` of a database URL reads the store's tables into the same Cohort."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from cartrial.cohort import CohortError, load_cohort
from cartrial.endpoints import derive_endpoints

DATA = Path(__file__).resolve().parents[1] / "data" / "ns7car_like"


def test_sqlite_url_gives_the_same_cohort_and_endpoints(tmp_path, monkeypatch):
    from cartrial.store.cohort_io import import_cohort
    from cartrial.store.database import make_engine, upgrade

    monkeypatch.setenv("CARTRIAL_SECRET_FILE", str(tmp_path / "secret"))
    url = f"sqlite:///{tmp_path / 'trial.sqlite'}"
    engine = make_engine(url)
    upgrade(engine)
    source = load_cohort(DATA)
    import_cohort(engine, source)
    engine.dispose()
    back = load_cohort(url)
    cols = ["patient_id", "endpoint", "time_days", "event", "cause"]
    a = derive_endpoints(source)[cols].sort_values(cols[:2]).reset_index(drop=True)
    b = derive_endpoints(back)[cols].sort_values(cols[:2]).reset_index(drop=True)
    pd.testing.assert_frame_equal(a, b)


def test_missing_database_is_a_cohort_error(tmp_path):
    url = f"sqlite:///{tmp_path / 'none.sqlite'}"
    with pytest.raises(CohortError, match="no such SQLite database file"):
        load_cohort(url)
    assert not (tmp_path / "none.sqlite").exists()
