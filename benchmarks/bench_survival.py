"""Benchmark: Kaplan–Meier with confidence intervals + two-group log-rank test.

Compares ``cartrial.stats`` with lifelines (KaplanMeierFitter + logrank_test), statsmodels
(SurvfuncRight + survdiff) and a bare-NumPy lower bound written below (the same counts,
Kaplan–Meier and log-rank with no input checks, no confidence intervals and one shared
counting pass), on day-resolution times (whole days 0..1825, heavy ties) and continuous
times.  Every implementation runs once per repeat, interleaved, and the best of the
repeats is reported, so a busy machine slows all of them alike.  The p-values of all
implementations are cross-checked.

    .venv/bin/python benchmarks/bench_survival.py --sizes 1e4 1e5 1e6 --repeat 3

Also times ``python -m cartrial --help`` against ``python -c "import lifelines"``.
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import time
import warnings
from collections.abc import Callable

import numpy as np

KINDS = ("days", "continuous")
IMPLS = ("cartrial", "numpy-bound", "numpy-floor", "statsmodels", "lifelines")
OURS = ("cartrial", "numpy-bound", "numpy-floor")


# --------------------------------------------------------------------------- data


def make_data(n: int, kind: str, seed: int = 1):
    """Two arms, exponential survival (HR 0.8), 65-75% events, times as float64 days."""
    rng = np.random.default_rng(seed)
    group = rng.integers(0, 2, n)
    t = rng.exponential(600.0 * (1.0 + 0.25 * group))
    event = rng.random(n) < 0.8
    if kind == "days":
        event &= t < 1825.0  # administrative censoring at 5 years
        t = np.minimum(np.floor(t), 1825.0)
    return t, event, group


# --------------------------------------------------------------------------- implementations


def run_cartrial(t, e, g) -> float:
    from cartrial.stats import kaplan_meier, logrank_test

    km = kaplan_meier(t, e, conf_type="log-log")
    _ = km.table  # the DataFrame with survival, std_err, lower, upper per distinct time
    km.median()
    return logrank_test(t, e, g).p_value


def run_lifelines(t, e, g) -> float:
    from lifelines import KaplanMeierFitter
    from lifelines.statistics import logrank_test

    kmf = KaplanMeierFitter().fit(t, e)
    _ = kmf.confidence_interval_  # log-log interval, computed in fit
    _ = kmf.median_survival_time_
    a = g == 0
    return logrank_test(t[a], t[~a], e[a], e[~a]).p_value


def run_statsmodels(t, e, g) -> float:
    from statsmodels.duration.survfunc import SurvfuncRight, survdiff

    sf = SurvfuncRight(t, e.astype(np.float64))  # survival + Greenwood SE
    sf.quantile(0.5)
    return survdiff(t, e.astype(np.float64), g)[1]


def _bound_stats(d: np.ndarray, x: np.ndarray, n0: np.ndarray) -> float:
    """KM + Greenwood + 2-group log-rank from (2, T) event / exit counts per time."""
    from scipy.special import chdtrc

    before = np.cumsum(x, axis=1) - x
    at_risk = n0[:, None] - before
    dt = d.sum(axis=0)
    nt = at_risk.sum(axis=0)
    rows = dt > 0
    dt, nt, n1, d1 = dt[rows], nt[rows], at_risk[0, rows], d[0, rows]
    surv = np.cumprod(1.0 - dt / nt)  # Kaplan-Meier
    np.cumsum(np.where(nt > dt, dt / (nt * np.maximum(nt - dt, 1)), 0.0))  # Greenwood
    e1 = n1 * dt / nt
    v = np.where(nt > 1, dt * (nt - dt) / np.maximum(nt - 1, 1) * n1 * (nt - n1) / nt**2, 0.0)
    stat = (d1.sum() - e1.sum()) ** 2 / v.sum()
    del surv
    return float(chdtrc(1, stat))


def run_numpy_bound_days(t, e, g) -> float:
    """One bincount over (group, day, censored): the counting floor for whole days."""
    days = t.astype(np.intp)
    n_bins = int(days.max()) + 1
    idx = g * (2 * n_bins)
    idx += days * 2
    idx += ~e
    c = np.bincount(idx, minlength=4 * n_bins).reshape(2, n_bins, 2)
    d = c[:, :, 0].astype(np.float64)
    x = d + c[:, :, 1]
    return _bound_stats(d, x, x.sum(axis=1))


def _key_runs(t, e):
    key = t.view(np.uint64) << np.uint64(1)
    key |= ~e
    key.sort()
    new = np.empty(key.size, dtype=bool)
    new[0] = True
    np.not_equal(key[1:], key[:-1], out=new[1:])
    starts = np.flatnonzero(new)
    length = np.diff(np.append(starts, key.size))
    return key[starts], length


def run_numpy_bound_continuous(t, e, g) -> float:
    """One sort in all: each arm's (time, censored) keys sorted once, then merged."""
    runs = [_key_runs(t[g == j], e[g == j]) for j in (0, 1)]
    keys = np.concatenate([r[0] for r in runs])
    lengths = np.concatenate([r[1] for r in runs])
    arm = np.repeat([0, 1], [runs[0][0].size, runs[1][0].size])
    order = np.argsort(keys >> np.uint64(1), kind="stable")  # merge of two sorted runs
    tb = (keys >> np.uint64(1))[order]
    new = np.empty(tb.size, dtype=bool)
    new[0] = True
    np.not_equal(tb[1:], tb[:-1], out=new[1:])
    row = np.cumsum(new) - 1
    size = int(row[-1]) + 1
    cell = arm[order] * size + row
    w = lengths[order].astype(np.float64)
    x = np.bincount(cell, weights=w, minlength=2 * size).reshape(2, size)
    w[(keys[order] & np.uint64(1)).astype(bool)] = 0.0  # keep events only
    d = np.bincount(cell, weights=w, minlength=2 * size).reshape(2, size)
    return _bound_stats(d, x, x.sum(axis=1))


def numpy_km(t, e, kind: str) -> np.ndarray:
    """Bare Kaplan-Meier + Greenwood from one counting pass (no checks, no intervals)."""
    if kind == "days":
        idx = t.astype(np.intp)
        idx <<= 1
        idx += ~e
        c = np.bincount(idx).reshape(-1, 2)
        d = c[:, 0].astype(np.float64)
        x = d + c[:, 1]
    else:
        keys, length = _key_runs(t, e)
        tb = keys >> np.uint64(1)
        new = np.empty(tb.size, dtype=bool)
        new[0] = True
        np.not_equal(tb[1:], tb[:-1], out=new[1:])
        row = np.cumsum(new) - 1
        x = np.bincount(row, weights=length)
        w = length.astype(np.float64)
        w[(keys & np.uint64(1)).astype(bool)] = 0.0
        d = np.bincount(row, weights=w)
    n = x[::-1].cumsum()[::-1]
    with np.errstate(divide="ignore", invalid="ignore"):
        surv = np.cumprod(1.0 - d / n)
        np.cumsum(d / (n * (n - d)))  # Greenwood
    return surv


def numpy_logrank(t, e, g, kind: str) -> float:
    """Bare two-group log-rank from one counting pass (no checks)."""
    if kind == "days":
        return run_numpy_bound_days(t, e, g)
    return run_numpy_bound_continuous(t, e, g)


def run_numpy_bound(t, e, g, kind: str) -> float:
    """The same two calls as cartrial's API (KM, then log-rank), each minimal."""
    numpy_km(t, e, kind)
    return numpy_logrank(t, e, g, kind)


def run_numpy_floor(t, e, g, kind: str) -> float:
    """KM and log-rank from one shared counting pass: the floor for NumPy code."""
    if kind == "days":
        return run_numpy_bound_days(t, e, g)
    return run_numpy_bound_continuous(t, e, g)


# --------------------------------------------------------------------------- timing


def timed(impl: str, data, kind: str, clock: Callable[[], float]) -> tuple[float, float]:
    start = clock()
    p = _call(impl, data, kind)
    return clock() - start, p


def command_time(args: list[str], repeat: int) -> float | None:
    best = None
    for _ in range(repeat):
        start = time.perf_counter()
        proc = subprocess.run(args, capture_output=True, text=True, check=False)
        elapsed = time.perf_counter() - start
        if proc.returncode != 0:
            return None
        best = elapsed if best is None else min(best, elapsed)
    return best


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", nargs="+", type=float, default=[1e4, 1e5, 1e6])
    parser.add_argument("--repeat", type=int, default=3, help="runs per size for the peers")
    parser.add_argument(
        "--repeat-ours",
        type=int,
        default=10,
        help="runs per size for cartrial and the NumPy bounds (cheap; steadies the minimum)",
    )
    parser.add_argument(
        "--peer-limit", type=float, default=60.0, help="skip a peer expected to exceed this (s)"
    )
    parser.add_argument("--skip-cli", action="store_true")
    parser.add_argument(
        "--clock",
        choices=("cpu", "wall"),
        default="cpu",
        help="cpu: process CPU time (robust on a shared machine; default); wall: elapsed time",
    )
    args = parser.parse_args(argv)
    clock = time.process_time if args.clock == "cpu" else time.perf_counter
    warnings.simplefilter("ignore")

    print(f"python {platform.python_version()}, numpy {np.__version__}, {platform.machine()}")
    print(f"cpus {os.cpu_count()}, load average {os.getloadavg()[0]:.1f} at start")
    print(
        f"clock: {args.clock} time, best of interleaved runs ({args.repeat} for the peers, "
        f"{max(args.repeat, args.repeat_ours)} for cartrial and the NumPy bounds)"
    )
    import lifelines
    import pandas
    import statsmodels

    print(
        f"lifelines {lifelines.__version__}, statsmodels {statsmodels.__version__}, "
        f"pandas {pandas.__version__}"
    )
    # warm imports and caches so the first timed call is not an import
    for kind in KINDS:
        small = make_data(2000, kind)
        for impl in IMPLS:
            _call(impl, small, kind)

    rows = []
    notes = []
    for kind in KINDS:
        predicted: dict[str, float] = {}
        for size in args.sizes:
            n = int(size)
            data = make_data(n, kind)
            times: dict[str, float] = {}
            pvals: dict[str, float] = {}
            active = [
                impl
                for impl in IMPLS
                if impl in OURS or predicted.get(impl, 0.0) <= args.peer_limit
            ]
            for impl in IMPLS:
                if impl not in active:
                    notes.append(
                        f"{kind} n={n:.0e}: {impl} skipped (predicted "
                        f"{predicted[impl]:.0f} s > {args.peer_limit:.0f} s)"
                    )
            for rnd in range(max(args.repeat, args.repeat_ours)):
                for impl in active:
                    peer = impl not in OURS
                    if peer and (rnd >= args.repeat or times.get(impl, 0.0) > args.peer_limit):
                        continue  # peers: --repeat runs, one if it is already over the limit
                    elapsed, p = timed(impl, data, kind, clock)
                    times[impl] = min(times.get(impl, np.inf), elapsed)
                    pvals[impl] = p
            ref = pvals["cartrial"]
            for impl, p in pvals.items():
                if not np.isclose(p, ref, rtol=1e-6, atol=1e-12):
                    notes.append(f"{kind} n={n}: {impl} p={p!r} differs from cartrial p={ref!r}")
            for impl, sec in times.items():
                predicted[impl] = sec * 10.0 * 1.2  # next size is 10x; allow superlinear
            rows.append((kind, n, times))
            _print_row(kind, n, times)
    print()
    print(_table(rows))
    for note in notes:
        print("note:", note)

    if not args.skip_cli:
        py = sys.executable
        cli = command_time([py, "-m", "cartrial", "--help"], args.repeat + 2)
        lif = command_time([py, "-c", "import lifelines"], args.repeat + 2)
        stats = command_time([py, "-c", "import cartrial.stats"], args.repeat + 2)
        print()
        print("startup (best of runs, wall seconds):")
        print(f"  python -m cartrial --help    {_fmt(cli) if cli is not None else 'failed'}")
        print(f"  python -c 'import cartrial.stats'  {_fmt(stats) if stats else 'failed'}")
        print(f"  python -c 'import lifelines' {_fmt(lif) if lif is not None else 'failed'}")
    return 0


def _call(impl: str, data, kind: str) -> float:
    t, e, g = data
    if impl == "cartrial":
        return run_cartrial(t, e, g)
    if impl == "numpy-bound":
        return run_numpy_bound(t, e, g, kind)
    if impl == "numpy-floor":
        return run_numpy_floor(t, e, g, kind)
    if impl == "statsmodels":
        return run_statsmodels(t, e, g)
    return run_lifelines(t, e, g)


def _fmt(sec: float | None) -> str:
    return "skipped" if sec is None else f"{sec:.4f}"


def _print_row(kind: str, n: int, times: dict[str, float]) -> None:
    parts = ", ".join(f"{k} {v:.4f}s" for k, v in times.items())
    print(f"{kind:>10} n={n:>9}: {parts}", flush=True)


def _table(rows) -> str:
    head = (
        "| times | n | cartrial s | numpy bound s | numpy floor s | statsmodels s | lifelines s "
        "| lifelines / cartrial | statsmodels / cartrial | cartrial / bound | cartrial / floor |"
    )
    lines = [head, "|" + "---|" * 11]
    for kind, n, t in rows:
        c = t["cartrial"]
        sm = t.get("statsmodels")
        lf = t.get("lifelines")
        lines.append(
            f"| {kind} | {n:.0e} | {c:.4f} | {t['numpy-bound']:.4f} | {t['numpy-floor']:.4f} "
            f"| {_fmt(sm)} | {_fmt(lf)} "
            f"| {'-' if lf is None else f'{lf / c:.1f}x'} "
            f"| {'-' if sm is None else f'{sm / c:.1f}x'} "
            f"| {c / t['numpy-bound']:.2f} | {c / t['numpy-floor']:.2f} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
