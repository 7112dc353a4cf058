"""Benchmark: simulated operating characteristics, vectorised vs a per-trial loop.

BOIN (target 0.3, cohorts of 3, 10 cohorts) and CRM on 5 doses: ``cartrial.design.
simulate.simulate_boin`` / ``simulate_crm`` advance all trials one cohort per NumPy step;
the peer is the straightforward loop (one trial at a time through ``BOIN.decide`` /
``CRM.decide`` and ``select_mtd``).  Both read the same pre-drawn uniforms, so on the
shared trials their results are checked identical.  The loop runs on ``--loop-trials``
trials (it is slow); the ratio compares time per trial.  Best of ``--repeat`` runs,
process CPU time by default (robust on a shared machine).

    .venv/bin/python benchmarks/bench_design.py --trials 10000 --loop-trials 1000
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import numpy as np

from cartrial.design.escalation import BOIN, CRM, crm_skeleton
from cartrial.design.simulate import draw_uniforms, simulate_boin, simulate_boin_loop, simulate_crm

P_TRUE = [0.05, 0.10, 0.20, 0.30, 0.45]


def crm_loop(design: CRM, p, u) -> np.ndarray:
    """Per-trial CRM reference; returns selected dose per trial (-1 = stopped)."""
    out = np.full(u.shape[0], -1)
    cs = design.cohort_size
    for t in range(u.shape[0]):
        n = np.zeros(design.n_doses, dtype=int)
        y = np.zeros(design.n_doses, dtype=int)
        d, stopped = design.start_dose, False
        for _ in range(design.n_cohorts):
            y[d] += int((u[t, d, n[d] : n[d] + cs] < p[d]).sum())
            n[d] += cs
            dec = design.decide(n, y, d)
            if dec.action == "stop":
                stopped = True
                break
            d = dec.next_dose
        sel = None if stopped else design.select_mtd(n, y)
        out[t] = -1 if sel is None else sel
    return out


def best(fn, repeat: int, clock) -> tuple[float, object]:
    times, res = [], None
    for _ in range(repeat):
        t0 = clock()
        res = fn()
        times.append(clock() - t0)
    return min(times), res


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=10_000)
    ap.add_argument("--loop-trials", type=int, default=1000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--clock", choices=("cpu", "wall"), default="cpu")
    args = ap.parse_args(argv)
    clock = time.process_time if args.clock == "cpu" else time.perf_counter
    print(f"python {platform.python_version()}, numpy {np.__version__}, cpus {os.cpu_count()}")
    print(f"load average {os.getloadavg()[0]:.1f}; clock {args.clock}; p_true {P_TRUE}")
    boin = BOIN(0.3, 5, cohort_size=3, n_cohorts=10)
    crm = CRM(tuple(crm_skeleton(0.05, 0.3, 2, 5)), 0.3, cohort_size=3, n_cohorts=10)
    u = draw_uniforms(args.trials, 5, 30, seed=2026)
    k = min(args.loop_trials, args.trials)
    simulate_boin(boin, P_TRUE, u=u[:50])  # warm imports
    rows = []
    t_vec, oc = best(lambda: simulate_boin(boin, P_TRUE, u=u), args.repeat, clock)
    t_loop, ref = best(lambda: simulate_boin_loop(boin, P_TRUE, u=u[:k]), 1, clock)
    same = np.array_equal(oc.selected[:k], ref.selected) and np.array_equal(
        oc.n_per_dose[:k], ref.n_per_dose
    )
    rows.append(("BOIN", t_vec, t_loop, k, same, oc))
    t_vec, oc = best(lambda: simulate_crm(crm, P_TRUE, u=u), args.repeat, clock)
    t_loop, sel = best(lambda: crm_loop(crm, np.asarray(P_TRUE), u[:k]), 1, clock)
    rows.append(("CRM", t_vec, t_loop, k, bool(np.array_equal(oc.selected[:k], sel)), oc))
    print(f"{'design':6s} {'vectorised':>22s} {'loop':>22s} {'per-trial ratio':>16s}  identical")
    for name, tv, tl, kk, same, oc in rows:
        ratio = (tl / kk) / (tv / args.trials)
        print(
            f"{name:6s} {tv:8.3f} s / {args.trials:6d} tr {tl:8.3f} s / {kk:6d} tr "
            f"{ratio:14.1f}x  {same}"
        )
        sel = ", ".join(f"{p:.3f}" for p in oc.selection)
        se = float(oc.selection_se.max())
        print(f"       P(select 1..5, none) = {sel}  (MC SE <= {se:.4f})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
