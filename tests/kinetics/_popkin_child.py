"""Runs the JAX/NumPyro parts of ``test_kinetics_population.py`` in a child process.

JAX starts threads; a process that later forks (the report draws figures in a forked child,
``fit_table(n_jobs=2)`` forks workers) must not have them. So the test session never
imports JAX: it runs ``python _popkin_child.py OUT.pkl`` and checks the pickled results.
"""

from __future__ import annotations

import math
import pickle
import sys

import numpy as np


def loglik_case() -> dict:
    """The model's log-likelihood factor at fixed values, and what SciPy needs to check it."""
    import jax.numpy as jnp
    from numpyro import handlers

    from cartrial.kinetics import population as P

    rng = np.random.default_rng(5)
    n, days = 4, np.array([0, 1, 4, 7, 10, 14, 28, 90, 180.0])
    pid = np.repeat(np.arange(n), len(days))
    t = np.tile(days, n)
    y = rng.normal(6, 2, len(t))
    cens = rng.random(len(t)) < 0.3
    loc = P._prior_loc()
    values = {
        "mu_fxc": jnp.asarray(loc[:3]),
        "mu_alpha": jnp.asarray(loc[3]),
        "mu_fb": jnp.asarray(loc[4]),
        "gap": jnp.asarray(3.9),
        "omega": jnp.full(6, 0.4),
        "sigma": jnp.asarray(0.5),
        "z": jnp.asarray(rng.normal(size=(n, 6))),
    }
    args = (pid, t, y, cens, np.zeros((n, 0)), n, loc, np.zeros((1, 6)))
    tr = handlers.trace(handlers.substitute(P._numpyro_model, data=values)).get_trace(*args)
    return {
        "loglik": float(np.sum(tr["loglik"]["fn"].log_factor)),
        "phi": np.asarray(tr["phi"]["value"], float),
        "mu": np.asarray(tr["mu"]["value"], float),
        "pid": pid,
        "t": t,
        "y": y,
        "cens": cens,
        "sigma": 0.5,
        "gap": 3.9,
        "prior_loc": loc,
    }


def small_fit_case() -> dict:
    from cartrial.kinetics import figures as F
    from cartrial.kinetics import population as P

    obs, cov, truth = P.simulate_cohort(24, seed=11)
    fit = P.fit_population(
        obs,
        covariates=cov,
        covariate_names=["dose_level"],
        num_warmup=150,
        num_samples=150,
        num_chains=1,
        seed=3,
        progress=False,
    )
    fig = F.population_obs_pred(fit)
    vpc = F.population_vpc(fit, n_sim=50, seed=1)
    ax = vpc.axes[0]
    return {
        "typical": fit.typical,
        "residual": fit.residual,
        "covariates": fit.covariates,
        "individual": fit.individual,
        "diagnostics": fit.diagnostics,
        "n_quantifiable": int((~fit.data.cens).sum()),
        "truth_mu": truth["mu"],
        "truth_params": truth["params"],
        "obs_pred": {
            "n_axes": len(fig.axes),
            "scales": [(a.get_xscale(), a.get_yscale()) for a in fig.axes],
            "n_points": [len(a.collections[0].get_offsets()) for a in fig.axes],
        },
        "vpc": {
            "n_bands": len(ax.collections),
            "labels": sorted(line.get_label() for line in ax.lines),
        },
        "log_factor_ok": math.isfinite(fit.residual["sigma"]),
    }


def report_case() -> dict:
    import pandas as pd

    from cartrial.cohort.model import Cohort
    from cartrial.kinetics import population as P
    from cartrial.kinetics.report import kinetics_section

    obs, cov, _ = P.simulate_cohort(10, seed=4)
    patients = cov[["patient_id", "dose_level"]]
    cohort = Cohort(patients=patients, observations=obs)
    opts = {"num_warmup": 40, "num_samples": 40, "num_chains": 1, "seed": 9}
    sec = kinetics_section(cohort, fit_model=False, population_model=True, population_options=opts)
    return {
        "patients": sorted(patients["patient_id"]),
        "individual_ids": sec.population_individual["patient_id"].tolist(),
        "covariates": sec.population_covariates["covariate"].tolist(),
        "figures": sorted(sec.figures),
        "notes": [str(n) for n in sec.notes],
        "n_typical": len(sec.population_typical),
        "tables_are_frames": all(
            isinstance(getattr(sec, k), pd.DataFrame)
            for k in ("population_typical", "population_variability", "population_individual")
        ),
    }


if __name__ == "__main__":
    out = {"loglik": loglik_case(), "small_fit": small_fit_case(), "report": report_case()}
    with open(sys.argv[1], "wb") as fh:
        pickle.dump(out, fh)
