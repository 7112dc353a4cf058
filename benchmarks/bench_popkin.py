"""Population kinetic model (NumPyro NUTS): recovery on simulated cohorts, per-patient error
against the individual fits, run time.

    .venv/bin/python benchmarks/bench_popkin.py --patients 60 300 --seed 2026 \\
        --json benchmarks/results/popkin.json

Cohorts are drawn by ``cartrial.kinetics.population.simulate_cohort`` (seed ``--seed``):
Stein et al. 2019 model, typical tisagenlecleucel values, between-patient SDs
``SIM_OMEGA``, residual SD 0.4, LLOQ 10 copies/µg (BLQ reported as 0 and censored, M3),
13 samples per patient (days 0–365); covariates dose level (true effect on ln Cmax +0.7),
tocilizumab (−0.4), product source and CRS grade (no effect). For each cohort it prints:

* recovery: true value, posterior median and 95% credible interval of every typical value,
  between-patient SD, the residual SD and the covariate effects;
* per-patient error: median and 90th percentile of |estimate/true − 1| of the population
  model's shrunken estimates and of the individual fits (``fit_table``), on the patients the
  individual fit accepts, and the reduction;
* run time (NUTS on this machine's CPU cores, chains in parallel), R-hat, n_eff,
  divergences. SYNTHETIC DATA.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import time
from pathlib import Path

import numpy as np

COVARIATES = ["dose_level", "tocilizumab", "product_source", "crs_grade"]
ERROR_PARAMS = ("cmax", "tmax", "alpha", "beta", "fb", "foldx", "auc_0_28")


def _rel_err(est: np.ndarray, true: np.ndarray) -> np.ndarray:
    return np.abs(est / true - 1.0)


def run(n: int, seed: int, warmup: int, samples: int, chains: int, jobs: int) -> dict:
    from cartrial.kinetics.model import fit_table
    from cartrial.kinetics.population import (
        PHI_PARAMS,
        auc_draws,
        fit_population,
        simulate_cohort,
    )

    obs, cov, truth = simulate_cohort(n, seed)
    # individual fits first: their worker processes fork, which must happen before JAX starts
    # its threads
    t0 = time.perf_counter()
    ind = fit_table(obs, n_jobs=jobs, se=False)
    t_ind = time.perf_counter() - t0
    t0 = time.perf_counter()
    fit = fit_population(
        obs,
        covariates=cov,
        covariate_names=COVARIATES,
        num_warmup=warmup,
        num_samples=samples,
        num_chains=chains,
        seed=seed,
        progress=True,
    )
    t_pop = time.perf_counter() - t0

    # ---- recovery table
    rows = []
    mu_true = truth["mu"]
    for k, name in enumerate(PHI_PARAMS):
        tv = math.exp(mu_true[k]) if name != "fb" else 1 / (1 + math.exp(-mu_true[k]))
        r = fit.typical.iloc[k]
        rows.append(("typical " + name, tv, r["median"], r["ci_low"], r["ci_high"]))
    for k, name in enumerate(PHI_PARAMS):
        r = fit.variability.iloc[k]
        rows.append(
            ("omega " + name, truth["omega"][k], r["omega"], r["omega_ci_low"], r["omega_ci_high"])
        )
    rs = fit.residual
    rows.append(("sigma", truth["sigma"], rs["sigma"], rs["ci_low"], rs["ci_high"]))
    # true effects on the design's coding: indicator of the non-reference level
    ref = fit.data.cov_levels.get("dose_level", {}).get("reference")
    dose_true = 0.7 if ref == "low" else -0.7
    eff_true = {
        "dose_level=high": dose_true,
        "dose_level=low": dose_true,
        "tocilizumab": truth["effects"].get("tocilizumab", 0.0),
        "product_source=donor": 0.0,
        "product_source=autologous": 0.0,
        "crs_grade": 0.0,
    }
    for _, r in fit.covariates.iterrows():
        rows.append(
            (
                f"effect {r['covariate']} on ln {r['parameter']}",
                eff_true.get(r["covariate"], float("nan")),
                r["effect"],
                r["ci_low"],
                r["ci_high"],
            )
        )

    # ---- per-patient errors (patients the individual fit accepts)
    tp = truth["params"].set_index("patient_id")
    tp["auc_0_28"] = auc_draws(truth["phi"], 0.0, 28.0)
    pop = fit.individual.set_index("patient_id")
    ok = ind.loc[ind["estimable"].astype(bool), "patient_id"].to_numpy()
    ind_i = ind.set_index("patient_id").loc[ok]
    errs = {}
    for p in ERROR_PARAMS:
        e_pop = _rel_err(pop.loc[ok, p].to_numpy(float), tp.loc[ok, p].to_numpy(float))
        e_ind = _rel_err(ind_i[p].to_numpy(float), tp.loc[ok, p].to_numpy(float))
        errs[p] = {
            "pop_median": float(np.median(e_pop)),
            "pop_p90": float(np.percentile(e_pop, 90)),
            "ind_median": float(np.median(e_ind)),
            "ind_p90": float(np.percentile(e_ind, 90)),
        }
    return {
        "patients": n,
        "seed": seed,
        "warmup": warmup,
        "samples": samples,
        "chains": chains,
        "pop_wall_s": t_pop,
        "ind_wall_s": t_ind,
        "ind_estimable": int(len(ok)),
        "diagnostics": {k: v for k, v in fit.diagnostics.items() if k != "wall_s"},
        "recovery": [
            {"quantity": q, "true": t, "median": m, "ci_low": lo, "ci_high": hi}
            for q, t, m, lo, hi in rows
        ],
        "per_patient_error": errs,
    }


def report(res: dict) -> None:
    d = res["diagnostics"]
    print(
        f"\n## {res['patients']} patients × 13 samples (seed {res['seed']}): population fit "
        f"{res['pop_wall_s']:.0f} s ({res['chains']} chains × {res['samples']} draws after "
        f"{res['warmup']} warm-up; cores {os.cpu_count()}); population parameters: max R-hat "
        f"{d['r_hat_max_population']:.3f}, min n_eff {d['n_eff_min_population']:.0f}; "
        f"individual random effects: max R-hat {d['r_hat_max']:.3f}, "
        f"{d['patients_poorly_mixed']} patient(s) with R-hat > 1.05; "
        f"divergences {d['divergences']}; individual fits "
        f"{res['ind_wall_s']:.0f} s, {res['ind_estimable']}/{res['patients']} estimable\n"
    )
    print("| quantity | true | posterior median | 95% CrI | covered |")
    print("|---|---|---|---|---|")
    cov = 0
    for r in res["recovery"]:
        hit = r["ci_low"] <= r["true"] <= r["ci_high"]
        cov += hit
        print(
            f"| {r['quantity']} | {r['true']:.4g} | {r['median']:.4g} | "
            f"{r['ci_low']:.4g}–{r['ci_high']:.4g} | {'yes' if hit else 'NO'} |"
        )
    print(f"\n{cov}/{len(res['recovery'])} credible intervals contain the true value.\n")
    print(
        "| parameter | individual fit median / P90 | population model median / P90 | "
        "reduction median / P90 |"
    )
    print("|---|---|---|---|")
    for p, e in res["per_patient_error"].items():
        print(
            f"| {p} | {100 * e['ind_median']:.1f}% / {100 * e['ind_p90']:.1f}% | "
            f"{100 * e['pop_median']:.1f}% / {100 * e['pop_p90']:.1f}% | "
            f"{100 * (1 - e['pop_median'] / e['ind_median']):.0f}% / "
            f"{100 * (1 - e['pop_p90'] / e['ind_p90']):.0f}% |"
        )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--patients", type=int, nargs="+", default=[60, 300])
    ap.add_argument("--seed", type=int, default=2026)
    ap.add_argument("--warmup", type=int, default=500)
    ap.add_argument("--samples", type=int, default=500)
    ap.add_argument("--chains", type=int, default=2)
    ap.add_argument("--jobs", type=int, default=2, help="processes for the individual fits")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    results = []
    for n in args.patients:
        res = run(n, args.seed, args.warmup, args.samples, args.chains, args.jobs)
        report(res)
        results.append(res)
        if args.json:
            args.json.parent.mkdir(parents=True, exist_ok=True)
            args.json.write_text(json.dumps(results, indent=2, default=float))


if __name__ == "__main__":
    main()
