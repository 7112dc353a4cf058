"""Benchmark: the registry-scale chain of issue 16, at 10³, 10⁴ and 10⁵ patients.

    .venv/bin/python benchmarks/bench_scale.py --patients 1000 10000 100000

For each size, in a fresh child process (so its peak memory is the chain's own):

1. ``simulate``: ``write_simulated_cohort`` (what ``cartrial simulate --patients N`` runs:
   draw, validate, write four CSVs); ~160 observation rows per patient with bedside data;
2. ``load CSV``: ``load_cohort`` on that folder (read + type + validate), against
   ``pyarrow.csv.read_csv`` reading the same four files (ratio = load / pyarrow);
3. ``load Parquet``: ``write_cohort(format="parquet")`` once, then ``load_cohort`` on it,
   against ``pyarrow.parquet.read_table`` on the same files (ratio);
4. ``derive_endpoints`` on the loaded cohort;
5. ``grade_daily`` + ``derive_episodes`` on its observations;
6. peak resident memory of the child (``ru_maxrss``), and per step (Linux ``VmHWM``,
   reset between steps): simulate, loads, ``derive_endpoints``, grading (each with
   the loaded cohort resident), so the step that sets the peak is visible.

Times are wall seconds of one run (the CSV/Parquet peers are best of 3, which favours
the peer). Prints a markdown table. SYNTHETIC DATA.
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TABLES = ("patients", "events", "adverse_events", "observations")


def _best(fn, repeat: int = 3) -> float:
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def _peak_gb() -> float:
    """Peak resident memory of this process since the last ``_reset_peak`` (GB)."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024**2
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2


def _reset_peak() -> None:
    """Start a new peak (Linux: VmHWM reset to the current resident size)."""
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
    except OSError:
        pass


def one_size(n: int, workdir: Path) -> dict:
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    from cartrial.cohort import load_cohort, write_cohort
    from cartrial.endpoints import derive_endpoints
    from cartrial.examples.simulate import write_simulated_cohort
    from cartrial.grading import derive_episodes, grade_daily

    csv_dir, pq_dir = workdir / f"csv_{n}", workdir / f"parquet_{n}"
    out: dict = {"patients": n}
    t = time.perf_counter()
    write_simulated_cohort(csv_dir, n_patients=n, seed=1, overwrite=True)
    out["simulate"] = time.perf_counter() - t
    out["peak_simulate_gb"] = _peak_gb()
    _reset_peak()

    csv_files = [csv_dir / f"{name}.csv" for name in TABLES if (csv_dir / f"{name}.csv").exists()]
    out["pyarrow_csv"] = _best(lambda: [pacsv.read_csv(f) for f in csv_files])
    t = time.perf_counter()
    cohort = load_cohort(csv_dir)
    out["load_csv"] = time.perf_counter() - t
    out["rows"] = len(cohort.observations)

    write_cohort(cohort, pq_dir, format="parquet")
    pq_files = sorted(pq_dir.glob("*.parquet"))
    out["pyarrow_parquet"] = _best(lambda: [pq.read_table(f) for f in pq_files])
    t = time.perf_counter()
    again = load_cohort(pq_dir)
    out["load_parquet"] = time.perf_counter() - t
    out["csv_mb"] = sum(f.stat().st_size for f in csv_files) / 1e6
    out["parquet_mb"] = sum(f.stat().st_size for f in pq_files) / 1e6
    del again
    out["peak_load_gb"] = _peak_gb()  # the two loads (and the Parquet write)

    _reset_peak()
    t = time.perf_counter()
    derive_endpoints(cohort)
    out["endpoints"] = time.perf_counter() - t
    out["peak_endpoints_gb"] = _peak_gb()  # the cohort held + derive_endpoints
    _reset_peak()

    t = time.perf_counter()
    daily = grade_daily(cohort.observations, patients=cohort.patients)
    out["grade_daily"] = time.perf_counter() - t
    t = time.perf_counter()
    episodes = derive_episodes(daily)
    out["episodes"] = time.perf_counter() - t
    out["daily_rows"], out["episode_rows"] = len(daily), len(episodes)
    out["peak_grading_gb"] = _peak_gb()  # the cohort held + grading
    out["peak_gb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2
    shutil.rmtree(csv_dir, ignore_errors=True)
    shutil.rmtree(pq_dir, ignore_errors=True)
    return out


def table(results: list[dict]) -> str:
    lines = [
        "| patients | obs rows | simulate s | load CSV s (pyarrow s, ratio) "
        "| load Parquet s (pyarrow s, ratio) | derive_endpoints s "
        "| grade_daily + episodes s | peak GB (simulate / load / endpoints / grading) |",
        "|---:|---:|---:|---|---|---:|---:|---:|",
    ]
    for r in results:
        lines.append(
            f"| {r['patients']:,} | {r['rows']:,} | {r['simulate']:.1f} "
            f"| {r['load_csv']:.2f} ({r['pyarrow_csv']:.2f}, "
            f"{r['load_csv'] / r['pyarrow_csv']:.1f}×) "
            f"| {r['load_parquet']:.2f} ({r['pyarrow_parquet']:.2f}, "
            f"{r['load_parquet'] / r['pyarrow_parquet']:.1f}×) "
            f"| {r['endpoints']:.2f} | {r['grade_daily']:.2f} + {r['episodes']:.2f} "
            f"| {r['peak_gb']:.2f} ({r['peak_simulate_gb']:.2f} / {r['peak_load_gb']:.2f} / "
            f"{r['peak_endpoints_gb']:.2f} / "
            f"{r['peak_grading_gb']:.2f}) |"
        )
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--patients", type=int, nargs="+", default=[1000, 10000, 100000])
    ap.add_argument("--workdir", type=Path, default=None, help="scratch folder (default: temp)")
    ap.add_argument("--one", type=int, default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    work = args.workdir or Path(tempfile.mkdtemp(prefix="bench_scale."))
    work.mkdir(parents=True, exist_ok=True)
    if args.one is not None:  # child: one size, JSON on stdout
        print(json.dumps(one_size(args.one, work)))
        return
    results = []
    for n in args.patients:
        child = subprocess.run(
            [sys.executable, __file__, "--one", str(n), "--workdir", str(work)],
            check=True,
            capture_output=True,
            text=True,
        )
        r = json.loads(child.stdout.strip().splitlines()[-1])
        results.append(r)
        print(json.dumps(r), file=sys.stderr, flush=True)
    print(table(results))
    if args.workdir is None:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
