"""Benchmark of the trial report on the 60-patient synthetic cohort.

    .venv/bin/python benchmarks/bench_report.py [--patients 60] [--repeat 3]

Times (1) the report step in-process (load + build + write, interpreter start and
imports excluded: one warm-up run first) and (2) the whole ``cartrial report`` command as
a fresh process (wall clock, interpreter start included). Prints CPU time too, and the
load average: on a shared machine wall time is inflated by other processes, CPU time is not.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _cpu_children() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--patients", type=int, default=60)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()

    from cartrial.examples.simulate import write_simulated_cohort
    from cartrial.report.run import run_report

    with tempfile.TemporaryDirectory() as tmp:
        cohort = write_simulated_cohort(Path(tmp) / "cohort", args.patients, args.seed)
        run_report(str(cohort), Path(tmp) / "warm", overwrite=True)  # imports, caches
        step, step_cpu = [], []
        for i in range(args.repeat):
            c0, k0, t0 = time.process_time(), _cpu_children(), time.perf_counter()
            run_report(str(cohort), Path(tmp) / f"out{i}", overwrite=True)
            step.append(time.perf_counter() - t0)
            step_cpu.append(time.process_time() - c0 + _cpu_children() - k0)
        cmd_wall, cmd_cpu = [], []
        exe = [sys.executable, "-m", "cartrial", "report", str(cohort), "-o",
               str(Path(tmp) / "cmd"), "--overwrite"]
        for _ in range(args.repeat):
            k0, t0 = _cpu_children(), time.perf_counter()
            subprocess.run(exe, check=True, capture_output=True)
            cmd_wall.append(time.perf_counter() - t0)
            cmd_cpu.append(_cpu_children() - k0)
        n_fig = len(list((Path(tmp) / "cmd" / "figures").glob("*.svg")))
        n_tab = len(list((Path(tmp) / "cmd" / "tables").glob("*.csv")))

    load = os.getloadavg()
    print(f"cohort: synthetic, {args.patients} patients, seed {args.seed}; "
          f"{n_tab} tables, {n_fig} figures (SVG+PNG+PDF page each)")
    print(f"machine: {os.cpu_count()} CPUs, load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    print(f"report step (in-process): wall median {statistics.median(step):.2f} s "
          f"(min {min(step):.2f}), CPU median {statistics.median(step_cpu):.2f} s")
    print(f"cartrial report command:  wall median {statistics.median(cmd_wall):.2f} s "
          f"(min {min(cmd_wall):.2f}), CPU median {statistics.median(cmd_cpu):.2f} s")
    print(f"command: {' '.join(exe[2:]).replace(tmp, '$TMP')}")


if __name__ == "__main__":
    main()
