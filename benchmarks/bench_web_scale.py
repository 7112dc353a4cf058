"""Web app at registry scale: list and patient pages over a 10⁵-patient database.

Builds a database of ``--patients`` patients (default 100,000) with events, adverse
events and observations by bulk inserts (SQLite: ``executemany`` in one transaction;
PostgreSQL: ``COPY``), not through the API, then starts ``cartrial serve`` on
127.0.0.1 (one uvicorn worker) and measures, with one client waiting for each answer
(no queueing: the latency of one request), p50/p95 of:

- the patient list, first page (monitor: all sites, 50 per page, total count);
- the patient list at a random page (OFFSET deep into 10⁵ rows);
- the patient list searched by a study-ID fragment (``q``);
- the patient list of a data-entry user (their site only);
- a random patient's page (records, SVG timeline and curves).

Bounded: ``--requests`` per kind (<= 2000) and ``--max-seconds`` per kind (<= 120);
loopback only. Target (issue 16): p95 < 200 ms for list and patient pages.

    .venv/bin/python benchmarks/bench_web_scale.py --patients 100000 --requests 200
"""

from __future__ import annotations

import argparse
import re
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np

from _webserver import PASSWORD, serving

SITES = tuple(f"S{i:02d}" for i in range(20))


def synthetic_rows(n: int, obs_per_patient: int, seed: int = 16) -> dict[str, tuple]:
    """Columns (names, row tuples) of the four cohort tables for ``n`` patients."""
    rng = np.random.default_rng(seed)
    ids = [f"P{i:06d}" for i in range(1, n + 1)]
    site = rng.choice(SITES, n).tolist()
    age = np.round(rng.uniform(3, 70, n), 1).tolist()
    dx = rng.choice(["T-ALL", "T-LBL", "AML"], n).tolist()
    prod = rng.choice(["prior_sct_donor", "new_donor", "universal"], n).tolist()
    start = np.datetime64("2020-01-01")
    # ISO text: the form SQLAlchemy's Date type stores in SQLite and COPY accepts
    infusion = (start + rng.integers(0, 1500, n).astype("timedelta64[D]")).astype(str).tolist()
    patients = (
        (
            "patient_id",
            "site",
            "age_years",
            "diagnosis",
            "product_source",
            "infusion_date",
            "version",
            "locked",
        ),
        [(ids[i], site[i], age[i], dx[i], prod[i], infusion[i], 1, False) for i in range(n)],
    )
    resp = rng.choice(["CR", "CRi", "NR"], n).tolist()
    events = (
        ("patient_id", "day", "event", "response", "version", "locked"),
        [(p, 28.0, "response", resp[i], 1, False) for i, p in enumerate(ids)]
        + [(p, 365.0, "last_contact", None, 1, False) for p in ids],
    )
    grade = rng.integers(0, 4, n).tolist()
    onset = rng.integers(1, 8, n).tolist()
    aes = (
        (
            "patient_id",
            "term",
            "onset_day",
            "resolution_day",
            "grade",
            "system",
            "version",
            "locked",
        ),
        [
            (p, "CRS", float(onset[i]), float(onset[i] + 5), grade[i], "ASTCT2019", 1, False)
            for i, p in enumerate(ids)
        ],
    )
    k = obs_per_patient
    values = np.round(rng.lognormal(3, 1.5, n * k), 3).tolist()
    obs = (
        ("patient_id", "day", "analyte", "value", "unit", "version", "locked"),
        [
            (ids[j // k], float((j % k) * 3), "cart_flow", values[j], "cells/uL", 1, False)
            for j in range(n * k)
        ],
    )
    return {"patients": patients, "events": events, "adverse_events": aes, "observations": obs}


def bulk_load(url: str, n: int, obs_per_patient: int) -> float:
    """Create the schema, sites, users and ``n`` patients; returns seconds taken."""
    from sqlalchemy import text

    from cartrial.store import make_engine, session_factory, upgrade
    from cartrial.store.users import create_user, ensure_site

    t0 = time.perf_counter()
    engine = make_engine(url)
    upgrade(engine)
    with session_factory(engine)() as s:
        s.info["user"] = "bench"
        for code in SITES:
            ensure_site(s, code)
        create_user(s, "mon", PASSWORD, "monitor")
        create_user(s, "entry", PASSWORD, "data_entry", SITES[0])
        s.commit()
    tables = synthetic_rows(n, obs_per_patient)
    raw = engine.raw_connection()
    try:
        cur = raw.cursor()
        for name, (cols, rows) in tables.items():
            if engine.dialect.name == "postgresql":
                with cur.copy(f"COPY {name} ({', '.join(cols)}) FROM STDIN") as copy:
                    for r in rows:
                        copy.write_row(r)
            else:
                marks = ", ".join("?" * len(cols))
                cur.executemany(f"INSERT INTO {name} ({', '.join(cols)}) VALUES ({marks})", rows)
        raw.commit()
    finally:
        raw.close()
    with engine.begin() as conn:
        conn.execute(text("ANALYZE"))
    engine.dispose()
    return time.perf_counter() - t0


def login(c: httpx.Client, user: str) -> None:
    token = re.search(r'name="csrf_token" value="([^"]+)"', c.get("/login").text).group(1)
    r = c.post("/login", data={"username": user, "password": PASSWORD, "csrf_token": token})
    assert r.status_code in (200, 303), r.text[:200]


def measure(c: httpx.Client, urls, requests: int, max_seconds: float) -> tuple[np.ndarray, int]:
    lat, errors, stop = [], 0, time.perf_counter() + max_seconds
    for url in urls:
        if len(lat) >= requests or time.perf_counter() > stop:
            break
        t0 = time.perf_counter()
        r = c.get(url)
        lat.append(time.perf_counter() - t0)
        errors += r.status_code != 200
    return np.asarray(lat) * 1000, errors


def bench(
    url: str, label: str, n: int, obs_per_patient: int, requests: int, max_seconds: float
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        if url == "sqlite":
            url = f"sqlite:///{Path(tmp) / 'bench.sqlite'}"
        build = bulk_load(url, n, obs_per_patient)
        rng = np.random.default_rng(1)
        results = []
        with serving(url, Path(tmp), wait_s=60) as base:
            pages = -(-n // 50)

            def ids(k):
                return (f"P{int(i):06d}" for i in rng.integers(1, n + 1, k))

            kinds = {
                "list, first page": lambda k: ["/patients"] * k,
                "list, random page": lambda k: [
                    f"/patients?page={int(p)}" for p in rng.integers(1, pages + 1, k)
                ],
                "list, search q": lambda k: [f"/patients?q={p[:5]}" for p in ids(k)],
                "patient page": lambda k: [f"/patients/{p}" for p in ids(k)],
            }
            with httpx.Client(base_url=base, timeout=60) as c:
                login(c, "mon")
                for name, make in kinds.items():
                    measure(c, make(3), 3, max_seconds)  # warm-up, not counted
                    results.append((name, *measure(c, make(requests), requests, max_seconds)))
            with httpx.Client(base_url=base, timeout=60) as c:
                login(c, "entry")
                measure(c, ["/patients"] * 3, 3, max_seconds)
                results.append(
                    (
                        "list, data-entry site",
                        *measure(c, ["/patients"] * requests, requests, max_seconds),
                    )
                )
    print(
        f"\n{label}: {n} patients, {n * obs_per_patient} observation rows "
        f"(bulk build {build:.1f} s), one worker, one client"
    )
    print(f"  {'request':<24} {'n':>5} {'errors':>6} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8}")
    for name, lat, errors in results:
        print(
            f"  {name:<24} {lat.size:>5d} {errors:>6d} {np.percentile(lat, 50):>8.1f} "
            f"{np.percentile(lat, 95):>8.1f} {lat.max():>8.1f}"
        )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--patients", type=int, default=100_000)
    ap.add_argument("--obs-per-patient", type=int, default=10)
    ap.add_argument("--requests", type=int, default=200, help="per kind of request")
    ap.add_argument("--max-seconds", type=float, default=60.0, help="per kind of request")
    ap.add_argument("--backends", default="sqlite,postgres")
    args = ap.parse_args()
    if not 1 <= args.patients <= 1_000_000 or not 0 <= args.obs_per_patient <= 100:
        ap.error("--patients must be 1-1,000,000 and --obs-per-patient 0-100")
    if not 1 <= args.requests <= 2000 or not 1 <= args.max_seconds <= 120:
        ap.error("--requests must be 1-2000 and --max-seconds 1-120")
    run = (args.patients, args.obs_per_patient, args.requests, args.max_seconds)
    for backend in args.backends.split(","):
        if backend == "sqlite":
            bench("sqlite", "SQLite", *run)
        elif backend == "postgres":
            from cartrial.store.testing import PostgresUnavailable, scratch_database

            try:
                with scratch_database("postgres") as url:
                    bench(url, "PostgreSQL", *run)
            except PostgresUnavailable as exc:
                print(f"\nPostgreSQL skipped: {exc}")


if __name__ == "__main__":
    main()
