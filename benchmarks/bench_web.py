"""Load benchmark of the web app: N simulated users on 127.0.0.1 for a bounded time.

Each user logs in once (session cookie), then repeatedly reads a patient page three
times (GET /patients/{id}, server-rendered with the SVG timeline and curves) and saves a
bedside assessment (POST /api/patients/{id}/assessments: validation, ASTCT grading,
automatic-query rules, hash-chained audit entry, commit), pausing ``--think`` seconds
(exponentially distributed, mean) between requests as a person reading the page does;
``--think 0`` gives the closed-loop worst case. Afterwards every acknowledged save is
looked up in the database (counted). Reports throughput and p50/p95 latency per
operation, for SQLite and PostgreSQL (skipped when no server answers at 127.0.0.1:5432).
Loopback only; bounded in users (<= 200) and time (<= 300 s).

    python benchmarks/bench_web.py --users 50 --duration 30 --think 1
"""

from __future__ import annotations

import argparse
import os
import re
import tempfile
import threading
import time
from pathlib import Path

import httpx
import numpy as np

from _webserver import PASSWORD, serving


def prepare(url: str, n_patients: int, users: int, workdir: Path) -> None:
    from cartrial.cohort import load_cohort
    from cartrial.store import import_cohort, make_engine, session_factory, upgrade
    from cartrial.store.synthetic import write_synthetic_cohort
    from cartrial.store.users import create_user

    engine = make_engine(url)
    upgrade(engine)
    cohort_dir = write_synthetic_cohort(
        workdir / "cohort", n_patients=n_patients, obs_per_patient=20, sites=("S1",)
    )
    import_cohort(engine, load_cohort(cohort_dir))
    with session_factory(engine)() as s:
        s.info["user"] = "bench"
        for i in range(users):
            create_user(s, f"user{i}", PASSWORD, "data_entry", "S1")
        s.commit()
    engine.dispose()


def run_user(
    base: str,
    i: int,
    n_patients: int,
    duration: float,
    think: float,
    out: dict[str, list[float]],
    errors: list[str],
    acked: list[int],
    ready: threading.Barrier,
    clock: list[float],
) -> None:
    rng = np.random.default_rng(i)

    def pause() -> None:
        if think > 0:
            time.sleep(min(float(rng.exponential(think)), 5 * think))

    with httpx.Client(base_url=base, timeout=30) as c:
        token = re.search(r'name="csrf_token" value="([^"]+)"', c.get("/login").text).group(1)
        r = c.post(
            "/login", data={"username": f"user{i}", "password": PASSWORD, "csrf_token": token}
        )
        csrf = c.get("/api/session").json()["csrf_token"]
        # log-ins (argon2, deliberately slow) are the warm-up: measure from here
        if ready.wait() == 0:
            clock.append(time.perf_counter())
        ready.wait()
        stop = clock[0] + duration
        time.sleep(float(rng.uniform(0, think)))  # users do not start in step
        while time.perf_counter() < stop:
            pid = f"P{int(rng.integers(1, n_patients + 1)):05d}"
            for _ in range(3):
                t0 = time.perf_counter()
                r = c.get(f"/patients/{pid}")
                out["read patient page"].append(time.perf_counter() - t0)
                if r.status_code != 200:
                    errors.append(f"GET {pid}: {r.status_code}")
                pause()
            body = {
                "day": float(rng.integers(1, 14)),
                "temperature_c": 38.5,
                "hypotension": True,
                "vasopressors": 0,
                "oxygen": "low_flow",
                "ice_score": int(rng.integers(0, 11)),
                "consciousness": "alert",
            }
            t0 = time.perf_counter()
            r = c.post(
                f"/api/patients/{pid}/assessments", json=body, headers={"X-CSRF-Token": csrf}
            )
            out["save assessment"].append(time.perf_counter() - t0)
            if r.status_code != 201:
                errors.append(f"POST {pid}: {r.status_code} {r.text[:100]}")
            else:
                acked.append(r.json()["id"])
            pause()


def saved_ids(url: str) -> set[int]:
    from sqlalchemy import select

    from cartrial.store import make_engine
    from cartrial.store.models import Assessment

    engine = make_engine(url)
    with engine.connect() as conn:
        ids = set(conn.scalars(select(Assessment.id)))
    engine.dispose()
    return ids


def audit_check(url: str) -> str:
    """The audit chain verified after the load (``cartrial db verify-audit``)."""
    from cartrial.store import make_engine
    from cartrial.store.chain import verify

    engine = make_engine(url)
    with engine.connect() as conn:
        result = verify(conn)
    engine.dispose()
    return f"audit chain {'intact' if result.ok else 'BROKEN'}, {result.entries} entries"


def bench(
    url: str,
    label: str,
    users: int,
    duration: float,
    n_patients: int,
    think: float,
    workers: int,
    threads: int = 0,
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        if url == "sqlite":
            url = f"sqlite:///{Path(tmp) / 'bench.sqlite'}"
        # one audit key (beside the session secret) for the set-up, the server and the check
        os.environ["CARTRIAL_SECRET_FILE"] = str(Path(tmp) / "secret")
        prepare(url, n_patients, users, Path(tmp))
        extra = ["--workers", str(workers), "--log-level", "error"]
        extra += ["--threads", str(threads)] if threads else []
        with serving(url, Path(tmp), extra, quiet=False) as base:
            out: dict[str, list[float]] = {"read patient page": [], "save assessment": []}
            errors: list[str] = []
            acked: list[int] = []
            ready = threading.Barrier(users)
            clock: list[float] = []
            clients = [
                threading.Thread(
                    target=run_user,
                    args=(base, i, n_patients, duration, think, out, errors, acked, ready, clock),
                )
                for i in range(users)
            ]
            for t in clients:
                t.start()
            for t in clients:
                t.join()
            wall = time.perf_counter() - clock[0]
        missing = set(acked) - saved_ids(url)
        chain = audit_check(url)
    print(
        f"\n{label}: {users} users x {duration:g} s, think {think:g} s, {workers} "
        f"worker(s){f' x {threads} threads' if threads else ''}, {n_patients} patients (wall {wall:.1f} s, errors {len(errors)}, "
        f"acknowledged saves {len(acked)}, missing afterwards {len(missing)}; {chain})"
    )
    print(f"  {'operation':<20} {'requests':>8} {'req/s':>8} {'p50 ms':>8} {'p95 ms':>8}")
    for op, lat in out.items():
        a = np.asarray(lat) * 1000
        print(
            f"  {op:<20} {a.size:>8d} {a.size / wall:>8.1f} {np.percentile(a, 50):>8.1f} "
            f"{np.percentile(a, 95):>8.1f}"
        )
    for e in errors[:5]:
        print("  error:", e)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--users", type=int, default=20)
    ap.add_argument("--duration", type=float, default=15.0)
    ap.add_argument("--patients", type=int, default=200)
    ap.add_argument("--backends", default="sqlite,postgres")
    ap.add_argument(
        "--think",
        type=float,
        default=1.0,
        help="mean pause between a user's requests, s (0: closed loop)",
    )
    ap.add_argument("--workers", type=int, default=1, help="server processes")
    ap.add_argument(
        "--threads",
        type=int,
        default=0,
        help="request threads per server process (0: the server's default)",
    )
    args = ap.parse_args()
    if not 1 <= args.users <= 200 or not 1 <= args.duration <= 300:
        ap.error("--users must be 1-200 and --duration 1-300 s")
    if not 0 <= args.think <= 30 or not 1 <= args.workers <= 8:
        ap.error("--think must be 0-30 s and --workers 1-8")
    extra = (args.think, args.workers, args.threads)
    for backend in args.backends.split(","):
        if backend == "sqlite":
            bench("sqlite", "SQLite", args.users, args.duration, args.patients, *extra)
        elif backend == "postgres":
            from cartrial.store.testing import PostgresUnavailable, scratch_database

            try:
                with scratch_database("postgres") as url:
                    bench(url, "PostgreSQL", args.users, args.duration, args.patients, *extra)
            except PostgresUnavailable as exc:
                print(f"\nPostgreSQL skipped: {exc}")


if __name__ == "__main__":
    main()
