"""Benchmark: time-dependent Cox model (counting-process rows) against its peers.

Data: n patients (default 10^5), whole-day follow-up with heavy ties, about 85% exposed
(e.g. consolidation SCT) during follow-up, the others never: split by
``cartrial.stats.counting_process`` into ~1.85 n ``(start, stop]`` rows.  Fits
``exposure + age`` with Efron ties by

* ``cartrial.stats.timedep_cox`` (hand-written vectorised Newton–Raphson),
* lifelines ``CoxTimeVaryingFitter`` (Efron; equals R),
* statsmodels ``PHReg(stop, X, status, entry=start + 1e-7)`` (the entry shift makes
  its risk sets R's: statsmodels counts a row at risk at t = entry),

each once per repeat, interleaved; the best of the repeats is reported with the ratio
to cartrial (peer time / cartrial time) and the largest coefficient difference.

    .venv/bin/python benchmarks/bench_timedep.py --n 100000 --repeat 2
"""

from __future__ import annotations

import argparse
import platform
import time
import warnings

import numpy as np
import pandas as pd


def make_rows(n: int, seed: int = 1) -> pd.DataFrame:
    from cartrial.stats import counting_process

    rng = np.random.default_rng(seed)
    age = np.round(rng.normal(55, 12, n), 1)
    exposed_day = np.where(rng.random(n) < 0.95, np.floor(rng.uniform(10, 120, n)), np.nan)
    t = np.floor(rng.exponential(900.0 * np.exp(-0.01 * (age - 55)), n)) + 1
    event = (rng.random(n) < 0.7) & (t < 1825)
    t = np.minimum(t, 1825.0)
    rows = counting_process(t, event, exposed_day)
    rows["age"] = age[rows["id"].to_numpy()]
    return rows


def run_cartrial(rows: pd.DataFrame) -> np.ndarray:
    from cartrial.stats import timedep_cox

    res = timedep_cox(
        rows["start"], rows["stop"], rows["event"], rows[["exposure", "age"]], ties="efron"
    )
    return res.summary["coef"].to_numpy()


def run_lifelines(rows: pd.DataFrame) -> np.ndarray:
    from lifelines import CoxTimeVaryingFitter

    ctv = CoxTimeVaryingFitter()
    ctv.fit(
        rows[["id", "start", "stop", "event", "exposure", "age"]],
        id_col="id",
        event_col="event",
        start_col="start",
        stop_col="stop",
    )
    return ctv.params_.loc[["exposure", "age"]].to_numpy()


def run_statsmodels(rows: pd.DataFrame) -> np.ndarray:
    from statsmodels.duration.hazard_regression import PHReg

    model = PHReg(
        rows["stop"].to_numpy(),
        rows[["exposure", "age"]].to_numpy(dtype=float),
        status=rows["event"].to_numpy(dtype=float),
        entry=rows["start"].to_numpy() + 1e-7,
        ties="efron",
    )
    return np.asarray(model.fit().params)


IMPLS = {"cartrial": run_cartrial, "lifelines": run_lifelines, "statsmodels": run_statsmodels}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=float, default=1e5, help="patients (default 1e5)")
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--skip", nargs="*", default=[], choices=sorted(IMPLS))
    args = ap.parse_args()
    n = int(args.n)
    warnings.filterwarnings("ignore")
    # warm imports so that import time is not measured
    import lifelines  # noqa: F401
    import statsmodels.duration.hazard_regression  # noqa: F401

    rows = make_rows(n)
    print(f"{platform.processor() or platform.machine()}, Python {platform.python_version()}")
    print(f"{n} patients -> {len(rows)} counting-process rows, {int(rows['event'].sum())} events")
    best = {k: float("inf") for k in IMPLS if k not in args.skip}
    coefs = {}
    for _ in range(args.repeat):
        for name in best:
            t0 = time.perf_counter()
            coefs[name] = IMPLS[name](rows)
            best[name] = min(best[name], time.perf_counter() - t0)
    ours = best["cartrial"]
    for name, sec in best.items():
        diff = np.max(np.abs(coefs[name] - coefs["cartrial"]))
        print(
            f"  {name:12s} {sec:8.3f} s   ratio {sec / ours:7.2f} x cartrial   "
            f"max |coef - cartrial| {diff:.1e}"
        )
    peers = [best[k] for k in ("lifelines", "statsmodels") if k in best]
    if peers:
        print(f"cartrial / fastest peer = {ours / min(peers):.2f} (target: <= 3)")


if __name__ == "__main__":
    main()
