"""Benchmark of ``cartrial report`` (issue 13's targets), same run, same machine.

    .venv/bin/python benchmarks/bench_report.py [--patients 60] [--repeat 3] [--large 1000]

Times the whole ``cartrial report`` command as a fresh process (interpreter start and
imports included: what a user waits for) on

1. the 60-patient synthetic cohort (``cartrial simulate --patients 60 --seed 1``),
   target ≤ 4 s wall and ≤ 6 s CPU on a 2-core machine;
2. the bundled tan2023 table, target ≤ 2 s wall;
3. with ``--large N``, an N-patient synthetic cohort once (target: 1,000 patients ≤ 30 s).

CPU is the process's and its forked figure workers' (``RUSAGE_CHILDREN``). It also prints
the in-process CPU of each report step (from the progress messages) for the 60-patient
cohort, and the load average: on a shared machine wall time is inflated by other
processes, CPU time is not. ``--cores 0,1`` pins the commands to those CPUs (``taskset``)
to emulate a 2-core machine on a larger one.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _cpu_children() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def _command(cohort: str, out: Path, cores: str | None) -> list[str]:
    exe = [sys.executable, "-m", "cartrial", "report", cohort, "-o", str(out), "--overwrite"]
    if cores and shutil.which("taskset"):
        exe = ["taskset", "-c", cores, *exe]
    return exe


def time_command(
    cohort: str, out: Path, repeat: int, cores: str | None
) -> tuple[list[float], list[float], str]:
    walls, cpus = [], []
    log = ""
    for _ in range(repeat):
        k0, t0 = _cpu_children(), time.perf_counter()
        res = subprocess.run(
            _command(cohort, out, cores), check=True, capture_output=True, text=True
        )
        walls.append(time.perf_counter() - t0)
        cpus.append(_cpu_children() - k0)
        log = res.stderr
    return walls, cpus, log


def step_cpu(cohort: str, out: Path) -> list[tuple[str, float]]:
    """CPU seconds of each report step in this process (after a warm-up run)."""
    from cartrial.report.run import run_report

    run_report(cohort, out, overwrite=True)
    marks: list[tuple[str, float]] = []
    last = [time.process_time()]

    def say(message: str) -> None:
        now = time.process_time()
        marks.append((message, now - last[0]))
        last[0] = now

    run_report(cohort, out, overwrite=True, progress=say)
    say("end")
    # each mark's CPU belongs to the step announced by the previous message
    return [(marks[i][0], marks[i + 1][1]) for i in range(len(marks) - 1)]


def _outputs(folder: Path) -> tuple[int, int, int | None]:
    """(figures, tables, PDF pages) of a written report folder."""
    n_fig = len(list((folder / "figures").glob("*.png")))
    n_tab = len(list((folder / "tables").glob("*.csv")))
    pages = None
    try:
        from pypdf import PdfReader

        pages = len(PdfReader(folder / "report.pdf").pages)
    except ImportError:  # pragma: no cover - pypdf is a test dependency
        pass
    return n_fig, n_tab, pages


def line(name: str, walls: list[float], cpus: list[float]) -> str:
    return (
        f"{name:<28} wall median {statistics.median(walls):5.2f} s (min {min(walls):5.2f})"
        f"   CPU median {statistics.median(cpus):5.2f} s"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--patients", type=int, default=60)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--large", type=int, default=0, help="also time one N-patient report")
    ap.add_argument("--cores", default=None, help="taskset CPU list, e.g. 0,1")
    args = ap.parse_args()

    from cartrial.examples.simulate import write_simulated_cohort

    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        cohort = str(write_simulated_cohort(base / "cohort", args.patients, args.seed))
        subprocess.run(
            _command(cohort, base / "warm", args.cores), check=True, capture_output=True
        )  # disk caches, .pyc files
        results = [
            (
                f"synthetic, {args.patients} patients",
                *time_command(cohort, base / "syn", args.repeat, args.cores)[:2],
            )
        ]
        results.append(
            (
                "tan2023 (20 patients)",
                *time_command("tan2023", base / "tan", args.repeat, args.cores)[:2],
            )
        )
        if args.large:
            big = str(write_simulated_cohort(base / "big", args.large, args.seed))
            results.append(
                (
                    f"synthetic, {args.large} patients",
                    *time_command(big, base / "big_out", 1, args.cores)[:2],
                )
            )
        n_fig, n_tab, pages = _outputs(base / "syn")
        big_line = ""
        if args.large:
            f, _t, p = _outputs(base / "big_out")
            big_line = (
                f"large cohort: {args.large} patients: {f} figures (swimmer: "
                f"{len(list((base / 'big_out' / 'figures').glob('swimmer*.png')))} "
                f"figure(s)), PDF {p} pages"
            )
        steps = step_cpu(cohort, base / "steps")

    load = os.getloadavg()
    print(
        f"cohort: synthetic, {args.patients} patients, seed {args.seed}: {n_tab} tables, "
        f"{n_fig} figures (each drawn once, PNG), PDF {pages} pages, tables.docx"
    )
    print(
        f"machine: {os.cpu_count()} CPUs{', pinned to ' + args.cores if args.cores else ''}; "
        f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}"
    )
    for name, walls, cpus in results:
        print(line(name, walls, cpus))
    if big_line:
        print(big_line)
    print(
        f"in-process CPU per step ({args.patients} patients; the forked workers' share of "
        "the figure drawing and tables.docx is not in these):"
    )
    for message, cpu in steps:
        print(f"  {cpu:5.2f} s  {message}")


if __name__ == "__main__":
    main()
