"""Benchmark: NCA and multiphasic-model fits for a registry-sized synthetic cohort.

    .venv/bin/python benchmarks/bench_kinetics.py --patients 10000 --samples 30 --jobs 2

Profiles are drawn from the Stein et al. 2019 model around the typical tisagenlecleucel
values (between-patient SD 0.3 on the log scale, residual SD 0.3–0.56, LLOQ 10 copies/µg),
on a 30-sample schedule from day 0 to day 365. Prints wall times and, as a sanity check,
the median relative error of the fitted parameters. SYNTHETIC DATA.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np
import pandas as pd

from cartrial.kinetics.model import DENSE_SCHEDULE_30 as SCHEDULE_30


def synthetic_observations(n: int, n_samples: int, seed: int) -> tuple[pd.DataFrame, dict]:
    """Long observations table (vectorised draw) and the true parameters per patient."""
    from cartrial.kinetics.model import PARAM_NAMES, TYPICAL_TISAGENLECLEUCEL

    rng = np.random.default_rng(seed)
    days = (
        SCHEDULE_30
        if n_samples == 30
        else np.unique(np.round(np.geomspace(1, 365, n_samples - 1)).tolist() + [0.0])
    )
    p = {k: TYPICAL_TISAGENLECLEUCEL[k] * np.exp(rng.normal(0, 0.3, n)) for k in PARAM_NAMES}
    p["fb"] = np.minimum(p["fb"], 0.5)
    sigma = rng.uniform(0.3, 0.56, n)
    t = days[None, :]
    tmax = p["tmax"][:, None]
    s = np.maximum(t - tmax, 0.0)
    log_post = np.log(p["cmax"])[:, None] + np.logaddexp(
        np.log1p(-p["fb"])[:, None] - p["alpha"][:, None] * s,
        np.log(p["fb"])[:, None] - p["beta"][:, None] * s,
    )
    log_pre = np.log(p["cmax"])[:, None] + np.log(p["foldx"])[:, None] * (t / tmax - 1.0)
    logc = np.where(t < tmax, log_pre, log_post) + rng.normal(0, 1, (n, len(days))) * sigma[:, None]
    lloq = 10.0
    values = np.exp(logc)
    values = np.where(values < lloq, 0.0, np.round(values, 2))
    ids = np.char.add("P", np.char.zfill(np.arange(n).astype(str), 6))
    obs = pd.DataFrame(
        {
            "patient_id": np.repeat(ids, len(days)),
            "day": np.tile(days, n),
            "analyte": "cart_qpcr",
            "value": values.ravel(),
            "unit": "copies/ug",
            "lloq": lloq,
        }
    )
    return obs, {"patient_id": ids, **p}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--patients", type=int, default=10_000)
    ap.add_argument("--samples", type=int, default=30)
    ap.add_argument("--jobs", type=int, default=2, help="worker processes for the model fits")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--no-model", action="store_true", help="time the NCA only")
    ap.add_argument(
        "--ci",
        default="auto",
        choices=["auto", "wald", "profile"],
        help="interval method of the fits (auto: profile likelihood for Tmax, Wald otherwise)",
    )
    ap.add_argument("--json", type=Path, default=None, help="also write the timings here")
    args = ap.parse_args()

    from cartrial.kinetics.model import PARAM_NAMES, fit_table
    from cartrial.kinetics.nca import nca_table, summarise_nca

    t0 = time.perf_counter()
    obs, truth = synthetic_observations(args.patients, args.samples, args.seed)
    t_gen = time.perf_counter() - t0
    print(
        f"synthetic cohort: {args.patients} patients x {args.samples} samples "
        f"({len(obs)} rows) in {t_gen:.2f} s; cores available: {os.cpu_count()}"
    )

    t0 = time.perf_counter()
    table = nca_table(obs, "cart_qpcr")
    t_nca = time.perf_counter() - t0
    t0 = time.perf_counter()
    summarise_nca(table)
    t_sum = time.perf_counter() - t0
    print(f"NCA table:        {t_nca:8.2f} s  ({1e6 * t_nca / args.patients:.1f} µs/patient)")
    print(f"NCA summary:      {t_sum:8.2f} s")
    result = {
        "patients": args.patients,
        "samples": args.samples,
        "jobs": args.jobs,
        "nca_s": t_nca,
        "summary_s": t_sum,
    }
    if not args.no_model:
        t0 = time.perf_counter()
        fits = fit_table(obs, "cart_qpcr", n_jobs=args.jobs, ci=args.ci)
        t_fit = time.perf_counter() - t0
        est = fits["estimable"].astype(bool)
        print(
            f"model fits:       {t_fit:8.2f} s  ({1e3 * t_fit / args.patients:.1f} ms/patient "
            f"on {args.jobs} process(es), ci={args.ci}); estimable {int(est.sum())}/{len(fits)}"
        )
        errs = {
            k: float(np.median(np.abs(fits.loc[est, k].to_numpy() / truth[k][est.to_numpy()] - 1)))
            for k in PARAM_NAMES
        }
        print("median |relative error|: " + ", ".join(f"{k} {v:.3f}" for k, v in errs.items()))
        result.update(model_s=t_fit, estimable=int(est.sum()), median_rel_error=errs)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
