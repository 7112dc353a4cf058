"""Population (nonlinear mixed-effects) model of CAR-T cellular kinetics, Bayesian, NumPyro.

Structural model: the multiphasic model of Stein et al. (CPT Pharmacometrics Syst Pharmacol
2019;8:285; see ``model``), six parameters per patient on the fitting scale
``phi = (ln foldx, ln Tmax, ln Cmax, ln alpha, logit FB, ln beta)``.

Statistical model (as in the population analyses of Stein 2019 and Mueller et al., Blood
2017;130:2317, written as a hierarchical Bayesian model):

* ``phi_ik = mu_k + x_i · b_k + omega_k · z_ik``, ``z_ik ~ N(0, 1)`` (log-normal
  between-patient variability, diagonal, non-centred); ``x_i`` the centred covariates of
  patient i, acting on the parameters in ``covariate_params`` (default log Cmax — the exposure
  endpoint dose level, product source, tocilizumab/steroid exposure and CRS grade are tested
  on; Stein 2019 Table 3);
* ``ln c_ij ~ N(ln C(t_ij; phi_i), sigma²)`` for quantifiable samples; a sample below the LLOQ
  contributes ``ln Phi((ln LLOQ − ln C)/sigma)`` (M3, Beal 2001 J Pharmacokinet
  Pharmacodyn 28:481); values <= 0 without an LLOQ are left out;
* priors (weakly informative, centred on the typical tisagenlecleucel values of Stein 2019):
  ``mu ~ N(ln typical, 1.5)`` except ``mu_Cmax ~ N(median observed ln peak, 2)``; the slow
  phase is kept slower than the fast one by ``mu_beta = mu_alpha − gap``,
  ``gap ~ N+(ln(0.16/0.0032), 1.5)`` (no label switching); ``omega_k ~ N+(0, 1)``;
  ``sigma ~ N+(0, 1)``; covariate effects ``b ~ N(0, 1)`` on the log scale per unit of the
  centred covariate (per level for a categorical one, against its reference level).

Inference: NUTS (Hoffman & Gelman 2014) in NumPyro/JAX on the CPU, ``num_chains`` chains, in
parallel (one XLA CPU device per chain, when JAX is first imported here) or one after another,
with a progress bar; seeds make runs reproducible (``seed``; chain k uses
``jax.random.split(PRNGKey(seed), num_chains)[k]``). Reported: posterior medians and 95%
equal-tailed credible intervals of typical values, between-patient SDs (and CV%), residual SD
and covariate effects (as ratios ``exp(b)``); shrunken per-patient estimates (posterior
medians) with their AUCs; eta-shrinkage ``1 − SD(posterior mean eta)/omega`` (Savic &
Karlsson, AAPS J 2009;11:558); R-hat and effective sample sizes; divergences.

NumPyro and JAX are imported inside the functions: ``import cartrial`` stays light.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from cartrial.kinetics._obs import canonical_analytes, select_analyte
from cartrial.kinetics.model import PARAM_NAMES, TYPICAL_TISAGENLECLEUCEL, multiphasic_curve

log = logging.getLogger(__name__)

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

#: order of the six individual parameters on the fitting scale
PHI_PARAMS = ("foldx", "tmax", "cmax", "alpha", "fb", "beta")
PHI_SCALE = ("log", "log", "log", "log", "logit", "log")
PRIOR_SD = 1.5
#: covariates the report tries when present (patients columns or derived from the cohort)
DEFAULT_COVARIATES = ("dose_level", "product_source", "tocilizumab", "steroids", "crs_grade")


def _prior_loc() -> np.ndarray:
    t = TYPICAL_TISAGENLECLEUCEL
    return np.array(
        [
            math.log(t["foldx"]),
            math.log(t["tmax"]),
            math.log(t["cmax"]),
            math.log(t["alpha"]),
            math.log(t["fb"] / (1 - t["fb"])),
            math.log(t["beta"]),
        ]
    )


# ------------------------------------------------------------------------------ data
@dataclass(frozen=True)
class PopData:
    """Long arrays for the likelihood: quantifiable first is not needed (a mask is used)."""

    patient_ids: np.ndarray  # one per patient, in index order
    pid: np.ndarray  # patient index per observation
    t: np.ndarray
    y: np.ndarray  # ln value, or ln LLOQ where censored
    cens: np.ndarray  # bool
    X: np.ndarray  # (n_patients, n_cov) centred design matrix
    cov_names: list[str]
    cov_levels: dict[str, Any]
    unit: str | None
    n_dropped: int = 0

    @property
    def n_patients(self) -> int:
        return len(self.patient_ids)


def design_matrix(
    covariates: pd.DataFrame | None, patient_ids: np.ndarray, names: Sequence[str]
) -> tuple[np.ndarray, list[str], dict[str, Any]]:
    """Centred design matrix for ``names`` (columns of ``covariates``, keyed by patient_id).

    Numeric columns enter as they are (centred; CRS grade 0–5 per grade); booleans as 0/1;
    text columns as indicator columns per level against the most common level (the reference,
    ties broken alphabetically). A missing covariate value raises ValueError naming the
    patient (missing is never zero). A covariate constant across patients is dropped.
    """
    import pandas as pd

    if not names:
        return np.zeros((len(patient_ids), 0)), [], {}
    if covariates is None:
        raise ValueError(f"covariates {list(names)} requested but no covariates table given")
    cov = covariates.drop_duplicates("patient_id").set_index("patient_id")
    cols, labels, levels = [], [], {}
    for name in names:
        if name not in cov.columns:
            raise ValueError(f"covariate {name!r} is not a column of the covariates table")
        col = cov[name].reindex(pd.Index(patient_ids))
        if col.isna().any():
            who = col.index[col.isna().to_numpy()][0]
            raise ValueError(
                f"covariate {name!r} missing for patient {who}; give a value or leave the "
                "covariate out (a missing value is never taken as 0)"
            )
        if pd.api.types.is_bool_dtype(col) or pd.api.types.is_numeric_dtype(col):
            x = col.astype(float).to_numpy()
            if np.ptp(x) == 0:
                continue
            cols.append(x - x.mean())
            labels.append(name)
            levels[name] = {"type": "numeric", "mean": float(x.mean())}
        else:
            s = col.astype(str)
            counts = s.value_counts()
            ref = sorted(counts.index[counts == counts.max()])[0]
            others = sorted(set(s) - {ref})
            for lev in others:
                x = (s == lev).to_numpy(float)
                cols.append(x - x.mean())
                labels.append(f"{name}={lev}")
            if others:
                levels[name] = {"type": "categorical", "reference": ref, "levels": others}
    X = np.column_stack(cols) if cols else np.zeros((len(patient_ids), 0))
    return X, labels, levels


def population_data(
    observations: pd.DataFrame,
    analyte: str = "cart_qpcr",
    covariates: pd.DataFrame | None = None,
    covariate_names: Sequence[str] = (),
) -> PopData:
    """Arrays for ``fit_population`` (input rules and errors as ``_obs.select_analyte``)."""

    arr = select_analyte(observations, analyte, "patient_id")
    with np.errstate(invalid="ignore", divide="ignore"):
        is_q = (arr.value > 0) & ~(arr.value < arr.lloq)
        cens = ~is_q & (arr.lloq > 0)
    use = is_q | cens
    pids = arr.keys["patient_id"].to_numpy()
    present = np.unique(arr.codes[use])
    remap = -np.ones(len(pids), dtype=np.int64)
    remap[present] = np.arange(len(present))
    with np.errstate(divide="ignore"):
        y = np.where(is_q, np.log(np.where(is_q, arr.value, 1.0)), np.log(arr.lloq))
    ids = pids[present]
    X, names, levels = design_matrix(covariates, ids, covariate_names)
    return PopData(
        patient_ids=ids,
        pid=remap[arr.codes[use]],
        t=arr.day[use],
        y=y[use],
        cens=cens[use],
        X=X,
        cov_names=names,
        cov_levels=levels,
        unit=arr.unit,
        n_dropped=int((~use).sum()),
    )


# ------------------------------------------------------------------------------ model
def _log_curve_jax(phi: Any, t: Any) -> Any:
    """ln C(t) for per-observation parameter rows ``phi`` (n, 6), JAX."""
    import jax
    import jax.numpy as jnp

    lf, lt, lc, la, lg, lb = (phi[:, k] for k in range(6))
    T = jnp.exp(lt)
    s = jnp.maximum(t - T, 0.0)
    post = lc + jnp.logaddexp(
        jax.nn.log_sigmoid(-lg) - jnp.exp(la) * s, jax.nn.log_sigmoid(lg) - jnp.exp(lb) * s
    )
    pre = lc + lf * (t / T - 1.0)
    return jnp.where(t < T, pre, post)


def _numpyro_model(
    pid: Any,
    t: Any,
    y: Any,
    cens: Any,
    X: Any,
    n_patients: int,
    prior_loc: Any,
    target_mask: Any,
) -> None:
    import jax.numpy as jnp
    import numpyro
    import numpyro.distributions as dist
    from jax.scipy.special import log_ndtr

    loc = jnp.asarray(prior_loc)
    mu_fxc = numpyro.sample("mu_fxc", dist.Normal(loc[:3], jnp.array([PRIOR_SD, PRIOR_SD, 2.0])))
    mu_alpha = numpyro.sample("mu_alpha", dist.Normal(loc[3], PRIOR_SD))
    mu_fb = numpyro.sample("mu_fb", dist.Normal(loc[4], PRIOR_SD))
    gap = numpyro.sample("gap", dist.TruncatedNormal(loc[3] - loc[5], PRIOR_SD, low=0.0))
    mu = jnp.concatenate([mu_fxc, jnp.stack([mu_alpha, mu_fb, mu_alpha - gap])])
    numpyro.deterministic("mu", mu)
    omega = numpyro.sample("omega", dist.HalfNormal(jnp.ones(6)))
    sigma = numpyro.sample("sigma", dist.HalfNormal(1.0))
    n_cov = X.shape[1]
    effect = 0.0
    if n_cov:
        b = numpyro.sample("b", dist.Normal(jnp.zeros((n_cov, 6)), 1.0))
        effect = X @ (b * target_mask)
    with numpyro.plate("patients", n_patients):
        z = numpyro.sample("z", dist.Normal(jnp.zeros(6), 1.0).to_event(1))
    phi = mu + effect + omega * z
    numpyro.deterministic("phi", phi)
    m = _log_curve_jax(phi[pid], t)
    r = (y - m) / sigma
    ll = jnp.where(cens, log_ndtr(r), -0.5 * r * r - jnp.log(sigma) - 0.9189385332046727)
    numpyro.factor("loglik", ll.sum())


# ------------------------------------------------------------------------------ result
@dataclass
class PopulationFit:
    """Result of ``fit_population`` (tables as pandas DataFrames; see the module docstring)."""

    typical: pd.DataFrame  # parameter, median, ci_low, ci_high (natural scale)
    variability: pd.DataFrame  # parameter, omega median/CI (log/logit scale), cv_pct, shrinkage
    residual: dict[str, float]  # sigma median, ci
    covariates: pd.DataFrame  # covariate, parameter, effect (log), ratio, CI, excludes_1
    individual: pd.DataFrame  # patient_id, shrunken per-patient parameters, AUCs
    diagnostics: dict[str, Any]  # r_hat max, n_eff min, divergences, run time, seeds
    data: PopData
    samples: dict[str, np.ndarray] = field(repr=False, default_factory=dict)
    notes: list[str] = field(default_factory=list)
    covariate_params: tuple[str, ...] = ("cmax",)

    def individual_phi(self) -> np.ndarray:
        """Posterior draws of phi, (n_draws, n_patients, 6)."""
        return self.samples["phi"]

    def predict(self, t: np.ndarray | Sequence[float], patient: str | None = None) -> np.ndarray:
        """Median prediction C(t): the patient's (shrunken) curve, or the typical curve."""

        if patient is None:
            p = dict(zip(self.typical["parameter"], self.typical["median"], strict=True))
        else:
            row = self.individual.set_index("patient_id").loc[patient]
            p = {k: float(row[k]) for k in PARAM_NAMES}
        return multiphasic_curve(np.asarray(t, float), *(p[k] for k in PARAM_NAMES))


def _to_natural(phi: np.ndarray) -> dict[str, np.ndarray]:
    out = {}
    for k, (name, scale) in enumerate(zip(PHI_PARAMS, PHI_SCALE, strict=True)):
        out[name] = 1.0 / (1.0 + np.exp(-phi[..., k])) if scale == "logit" else np.exp(phi[..., k])
    return out


def auc_draws(phi: np.ndarray, a: float, b: float) -> np.ndarray:
    """Closed-form AUC from day a to b (b may be inf) for parameter draws phi (..., 6),
    vectorised (same integrals as ``model.multiphasic_auc``)."""
    p = _to_natural(phi)
    foldx, tmax, cmax = p["foldx"], p["tmax"], p["cmax"]
    alpha, beta, fb = p["alpha"], p["beta"], p["fb"]
    rho = np.log(foldx) / tmax
    r0 = cmax / foldx
    lo, hi = np.maximum(a, 0.0), np.minimum(b, tmax)
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        rise = np.where(
            hi > lo,
            np.where(rho > 1e-12, r0 / rho * (np.exp(rho * hi) - np.exp(rho * lo)), r0 * (hi - lo)),
            0.0,
        )
        s1 = np.maximum(a, tmax) - tmax
        s2 = b - tmax
        e2a = 0.0 if math.isinf(b) else np.exp(-alpha * s2)
        e2b = 0.0 if math.isinf(b) else np.exp(-beta * s2)
        fall = (1 - fb) * cmax / alpha * (np.exp(-alpha * s1) - e2a)
        fall = fall + fb * cmax / beta * (np.exp(-beta * s1) - e2b)
        fall = np.where(s2 > s1, fall, 0.0)
    return rise + fall


# ------------------------------------------------------------------------------ fitting
def fit_population(
    observations: pd.DataFrame,
    analyte: str = "cart_qpcr",
    covariates: pd.DataFrame | None = None,
    covariate_names: Sequence[str] = (),
    covariate_params: Sequence[str] = ("cmax",),
    num_warmup: int = 500,
    num_samples: int = 500,
    num_chains: int = 2,
    seed: int = 0,
    progress: bool = True,
    target_accept: float = 0.9,
    max_tree_depth: int = 8,
) -> PopulationFit:
    """Fit the population model to every profile of ``analyte`` (module docstring).

    ``covariates``: a table with ``patient_id`` and the ``covariate_names`` columns (e.g. from
    ``cohort_covariates``); their effects act on ``covariate_params`` (natural names, e.g.
    ``("cmax",)`` or ``("cmax", "tmax")``). ``seed`` makes the run reproducible. The progress
    bar (NumPyro's) is printed to stderr when ``progress``.
    """
    import time

    _host_devices(num_chains)
    try:
        import numpyro  # noqa: F401
    except ImportError as exc:
        raise ImportError(
            "the population model needs NumPyro: pip install 'cartrial[popkin]'"
        ) from exc
    import jax
    import jax.numpy as jnp
    from numpyro.infer import MCMC, NUTS, init_to_value

    bad = [p for p in covariate_params if p not in PHI_PARAMS]
    if bad:
        raise ValueError(f"covariate_params {bad}; expected names among {', '.join(PHI_PARAMS)}")
    data = population_data(observations, analyte, covariates, covariate_names)
    if data.n_patients < 3:
        raise ValueError(
            f"{data.n_patients} patient(s) with usable {analyte} samples; a population model "
            "needs several (use fit_multiphasic for one profile)"
        )
    loc = _prior_loc()
    # centre the typical Cmax prior on the data: the median of the patients' observed peaks
    peaks = np.full(data.n_patients, np.nan)
    q = ~data.cens
    np.fmax.at(peaks, data.pid[q], data.y[q])
    if np.isfinite(peaks).any():
        loc[2] = float(np.nanmedian(peaks))
    mask = np.zeros((1, 6))
    for p in covariate_params:
        mask[0, PHI_PARAMS.index(p)] = 1.0
    kernel = NUTS(
        _numpyro_model,
        target_accept_prob=target_accept,
        max_tree_depth=max_tree_depth,
        init_strategy=init_to_value(
            values={
                "mu_fxc": jnp.asarray(loc[:3]),
                "mu_alpha": jnp.asarray(loc[3]),
                "mu_fb": jnp.asarray(loc[4]),
                "gap": jnp.asarray(loc[3] - loc[5]),
                "omega": jnp.full(6, 0.3),
                "sigma": jnp.asarray(0.5),
                "z": jnp.zeros((data.n_patients, 6)),
            }
        ),
    )
    mcmc = MCMC(
        kernel,
        num_warmup=num_warmup,
        num_samples=num_samples,
        num_chains=num_chains,
        chain_method="parallel" if jax.local_device_count() >= num_chains > 1 else "sequential",
        progress_bar=progress,
    )
    args = (
        jnp.asarray(data.pid),
        jnp.asarray(data.t, dtype=jnp.float32),
        jnp.asarray(data.y, dtype=jnp.float32),
        jnp.asarray(data.cens),
        jnp.asarray(data.X, dtype=jnp.float32),
        data.n_patients,
        jnp.asarray(loc, dtype=jnp.float32),
        jnp.asarray(mask, dtype=jnp.float32),
    )
    t0 = time.perf_counter()
    mcmc.run(jax.random.PRNGKey(seed), *args, extra_fields=("diverging",))
    wall = time.perf_counter() - t0
    return _summarise(mcmc, data, covariate_params, seed, wall, num_warmup, num_samples)


def _host_devices(num_chains: int) -> None:
    """Let XLA expose one CPU device per chain (up to the cores available) so that the chains
    run in parallel; only possible before JAX is first imported (otherwise sequential)."""
    import os
    import sys

    if "jax" in sys.modules or num_chains < 2:
        return
    n = max(1, min(num_chains, os.cpu_count() or 1))
    flags = os.environ.get("XLA_FLAGS", "")
    if "xla_force_host_platform_device_count" not in flags:
        os.environ["XLA_FLAGS"] = f"{flags} --xla_force_host_platform_device_count={n}".strip()


def _ci(x: np.ndarray, axis: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    lo, med, hi = np.quantile(x, [0.025, 0.5, 0.975], axis=axis)
    return med, lo, hi


def _summarise(
    mcmc: Any,
    data: PopData,
    covariate_params: Sequence[str],
    seed: int,
    wall: float,
    num_warmup: int,
    num_samples: int,
) -> PopulationFit:
    import pandas as pd
    from numpyro.diagnostics import summary

    grouped = mcmc.get_samples(group_by_chain=True)
    samples = {k: np.asarray(v) for k, v in mcmc.get_samples().items()}
    diag = summary({k: v for k, v in grouped.items() if k not in ("phi",)}, prob=0.95)
    r_hat_by = {k: float(np.nanmax(d["r_hat"])) for k, d in diag.items()}
    n_eff_by = {k: float(np.nanmin(d["n_eff"])) for k, d in diag.items()}
    r_hat, n_eff = max(r_hat_by.values()), min(n_eff_by.values())
    worst = min(n_eff_by, key=n_eff_by.__getitem__)
    pop_sites = [k for k in r_hat_by if k != "z"]
    r_hat_pop = max(r_hat_by[k] for k in pop_sites)
    n_eff_pop = min(n_eff_by[k] for k in pop_sites)
    # per patient: worst split R-hat and n_eff over the patient's six random effects
    r_hat_pat = np.nanmax(np.asarray(diag["z"]["r_hat"]), axis=-1)
    n_eff_pat = np.nanmin(np.asarray(diag["z"]["n_eff"]), axis=-1)
    n_div = int(np.asarray(mcmc.get_extra_fields()["diverging"]).sum())

    mu = samples["mu"]  # (draws, 6)
    nat = _to_natural(mu)
    rows = []
    for pname in PHI_PARAMS:
        med, lo, hi = _ci(nat[pname])
        rows.append({"parameter": pname, "median": med, "ci_low": lo, "ci_high": hi})
    typical = pd.DataFrame(rows)

    omega = samples["omega"]
    phi = samples["phi"]  # (draws, n, 6)
    eta_mean = phi.mean(axis=0) - mu.mean(axis=0)
    if data.X.shape[1]:
        eff = data.X @ (samples["b"].mean(axis=0) * _mask(covariate_params))
        eta_mean = eta_mean - eff
    vrows = []
    for k, name in enumerate(PHI_PARAMS):
        med, lo, hi = _ci(omega[:, k])
        shrink = 1.0 - float(np.std(eta_mean[:, k], ddof=1)) / float(med)
        vrows.append(
            {
                "parameter": name,
                "scale": PHI_SCALE[k],
                "omega": med,
                "omega_ci_low": lo,
                "omega_ci_high": hi,
                "cv_pct": 100 * math.sqrt(math.expm1(med**2)) if PHI_SCALE[k] == "log" else np.nan,
                "eta_shrinkage": shrink,
            }
        )
    variability = pd.DataFrame(vrows)
    smed, slo, shi = _ci(samples["sigma"])
    residual = {"sigma": float(smed), "ci_low": float(slo), "ci_high": float(shi)}

    crow = []
    if data.X.shape[1]:
        b = samples["b"]
        for j, cname in enumerate(data.cov_names):
            for p in covariate_params:
                k = PHI_PARAMS.index(p)
                med, lo, hi = _ci(b[:, j, k])
                crow.append(
                    {
                        "covariate": cname,
                        "parameter": p,
                        "effect": med,
                        "ci_low": lo,
                        "ci_high": hi,
                        "ratio": math.exp(med),
                        "ratio_ci_low": math.exp(lo),
                        "ratio_ci_high": math.exp(hi),
                        "excludes_no_effect": bool(lo > 0 or hi < 0),
                    }
                )
    covs = pd.DataFrame(
        crow,
        columns=[
            "covariate", "parameter", "effect", "ci_low", "ci_high", "ratio",
            "ratio_ci_low", "ratio_ci_high", "excludes_no_effect",
        ],
    )  # fmt: skip

    indiv = pd.DataFrame({"patient_id": data.patient_ids})
    nat_i = _to_natural(phi)
    for pname in PHI_PARAMS:
        med, lo, hi = _ci(nat_i[pname])
        indiv[pname], indiv[f"{pname}_ci_low"], indiv[f"{pname}_ci_high"] = med, lo, hi
    for a, b_, label in ((0, 28, "auc_0_28"), (0, 84, "auc_0_84"), (0, math.inf, "auc_0_inf")):
        med, lo, hi = _ci(auc_draws(phi, a, b_))
        indiv[label], indiv[f"{label}_ci_low"], indiv[f"{label}_ci_high"] = med, lo, hi
    n_obs = np.bincount(data.pid, minlength=data.n_patients)
    n_cens = np.bincount(data.pid, weights=data.cens.astype(float), minlength=data.n_patients)
    indiv["n_samples"], indiv["n_blq"] = n_obs, n_cens.astype(int)
    indiv["r_hat"], indiv["n_eff"] = r_hat_pat, n_eff_pat

    diagnostics = {
        "r_hat_max": r_hat,
        "n_eff_min": n_eff,
        "r_hat_max_population": r_hat_pop,
        "n_eff_min_population": n_eff_pop,
        "patients_poorly_mixed": int((r_hat_pat > 1.05).sum()),
        "n_eff_min_site": worst,
        "n_eff_by_site": n_eff_by,
        "r_hat_by_site": r_hat_by,
        "divergences": n_div,
        "wall_s": wall,
        "seed": seed,
        "num_warmup": num_warmup,
        "num_samples": num_samples,
        "num_chains": int(mcmc.num_chains),
        "n_patients": data.n_patients,
        "n_observations": len(data.t),
        "n_blq": int(data.cens.sum()),
    }
    notes = [
        "population model: Stein 2019 multiphasic model, log-normal between-patient "
        "variability, BLQ by M3 censoring, NUTS (NumPyro) with "
        f"{mcmc.num_chains} chain(s) × {num_samples} draws after {num_warmup} warm-up, "
        f"seed {seed}; population parameters: max R-hat {r_hat_pop:.3f}, min n_eff "
        f"{n_eff_pop:.0f}; {n_div} divergence(s)"
    ]
    if r_hat_pop > 1.05 or n_div > 0:
        notes.append(
            "convergence warning: R-hat > 1.05 or divergent transitions; run longer "
            "(num_warmup/num_samples) or raise target_accept before using these numbers"
        )
        log.warning(
            "population model did not converge: max R-hat %.3f, %d divergence(s)",
            r_hat_pop,
            n_div,
        )
    poor = data.patient_ids[r_hat_pat > 1.05]
    if len(poor):
        notes.append(
            f"{len(poor)} patient(s) with a poorly mixed individual posterior (R-hat > 1.05, "
            f"columns r_hat/n_eff of the individual table; often two modes, e.g. Tmax "
            f"between sampling days): {', '.join(map(str, poor[:10]))}"
            + (" …" if len(poor) > 10 else "")
        )
        log.warning("population model: %d patient(s) with R-hat > 1.05", len(poor))
    keep = {"mu": mu, "omega": omega, "sigma": samples["sigma"], "phi": phi}
    if "b" in samples:
        keep["b"] = samples["b"]
    return PopulationFit(
        typical,
        variability,
        residual,
        covs,
        indiv,
        diagnostics,
        data,
        keep,
        notes,
        tuple(covariate_params),
    )


def _mask(covariate_params: Sequence[str]) -> np.ndarray:
    m = np.zeros((1, 6))
    for p in covariate_params:
        m[0, PHI_PARAMS.index(p)] = 1.0
    return m


# ------------------------------------------------------------------------------ cohort
def cohort_covariates(cohort: Any, names: Sequence[str] = DEFAULT_COVARIATES) -> pd.DataFrame:
    """Per-patient covariates from a ``Cohort``: patients columns (``dose_level``,
    ``product_source``, …) as they are; ``tocilizumab``/``steroids`` = any recorded "yes"
    observation (0/1; no record = 0: exposure is recorded when given); ``crs_grade`` = the
    highest CRS grade in adverse_events (0 when the patient has no CRS record)."""
    import pandas as pd

    pats = cohort.patients[["patient_id"]].copy()
    for n in names:
        if n in cohort.patients.columns:
            pats[n] = cohort.patients[n].to_numpy()
    obs = cohort.observations
    if len(obs) and "analyte" in obs.columns:
        names_s = canonical_analytes(obs["analyte"])
        for drug in ("tocilizumab", "steroids"):
            if drug not in names or drug in pats.columns:
                continue
            rows = obs.loc[(names_s == drug).to_numpy()]
            if not len(rows):
                continue
            text = rows.get("value_text", pd.Series(index=rows.index, dtype=object))
            yes = text.astype(str).str.strip().str.lower().isin({"yes", "y", "true", "1"})
            yes |= pd.to_numeric(rows["value"], errors="coerce").fillna(0).to_numpy() > 0
            given = set(rows.loc[yes.to_numpy(), "patient_id"])
            pats[drug] = pats["patient_id"].isin(given).astype(float)
    ae = getattr(cohort, "adverse_events", None)
    if "crs_grade" in names and ae is not None and len(ae) and "term" in ae.columns:
        terms = ae["term"].astype(str).str.strip().str.lower()
        crs = ae.loc[terms.isin({"crs", "cytokine release syndrome"}).to_numpy()]
        g = pd.to_numeric(crs["grade"], errors="coerce").groupby(crs["patient_id"]).max()
        pats["crs_grade"] = pats["patient_id"].map(g).fillna(0.0).astype(float)
    return pats


def fit_population_cohort(
    cohort: Any,
    analyte: str = "cart_qpcr",
    covariate_names: Sequence[str] | None = None,
    **kwargs: Any,
) -> PopulationFit:
    """``fit_population`` on a ``Cohort`` with the covariates present in it (default: those
    of ``DEFAULT_COVARIATES`` that exist and vary)."""
    cov = cohort_covariates(cohort)
    if covariate_names is None:
        covariate_names = [
            c
            for c in DEFAULT_COVARIATES
            if c in cov.columns and cov[c].notna().all() and cov[c].nunique() > 1
        ]
    return fit_population(
        cohort.observations, analyte, cov, covariate_names=covariate_names, **kwargs
    )


def settings_text(fit: PopulationFit) -> str:
    """One line for reports: engine, chains, draws, seed."""
    d = fit.diagnostics
    return (
        f"NumPyro NUTS, {d['num_chains']} chain(s) × {d['num_samples']} draws "
        f"({d['num_warmup']} warm-up), seed {d['seed']}, {d['wall_s']:.0f} s"
    )


# ------------------------------------------------------------------------------ simulation
#: the 13-sample clinical schedule used by the recovery benchmark and tests
CLINICAL_DAYS = np.array([0, 1, 4, 7, 10, 14, 21, 28, 60, 90, 180, 270, 365], float)
#: true values of the simulated cohorts (benchmarks/bench_popkin.py)
SIM_OMEGA = np.array([0.5, 0.3, 0.8, 0.4, 0.6, 0.5])
SIM_EFFECTS = {"dose_level=high": 0.7, "tocilizumab": -0.4}


def simulate_cohort(
    n: int,
    seed: int,
    days: np.ndarray = CLINICAL_DAYS,
    sigma: float = 0.4,
    lloq: float = 10.0,
    omega: np.ndarray = SIM_OMEGA,
    effects: dict[str, float] | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, Any]]:
    """A synthetic cohort from the population model: (observations, covariates, truth).

    Typical values are the tisagenlecleucel ones (Stein 2019); between-patient SDs ``omega``
    on the fitting scale; covariates: ``dose_level`` high/low (half each), ``tocilizumab``
    0/1 (30%), ``product_source`` and ``crs_grade`` (no true effect); effects on ln Cmax
    (``SIM_EFFECTS`` by default, on the centred covariates). BLQ values are reported as 0
    with the LLOQ. SYNTHETIC DATA.
    """
    import pandas as pd

    effects = dict(SIM_EFFECTS if effects is None else effects)
    rng = np.random.default_rng(seed)
    ids = np.array([f"S{i:04d}" for i in range(n)])
    cov = pd.DataFrame(
        {
            "patient_id": ids,
            "dose_level": np.where(rng.random(n) < 0.5, "high", "low"),
            "tocilizumab": (rng.random(n) < 0.3).astype(float),
            "product_source": np.where(rng.random(n) < 0.5, "donor", "autologous"),
            "crs_grade": rng.integers(0, 4, n).astype(float),
        }
    )
    x_dose = (cov["dose_level"] == "high").to_numpy(float)
    x_toci = cov["tocilizumab"].to_numpy()
    eff = effects.get("dose_level=high", 0.0) * (x_dose - x_dose.mean())
    eff = eff + effects.get("tocilizumab", 0.0) * (x_toci - x_toci.mean())
    mu = _prior_loc()
    phi = mu + rng.normal(size=(n, 6)) * omega
    phi[:, 2] += eff
    phi[:, 0] = np.maximum(phi[:, 0], 0.0)  # foldx >= 1
    swap = phi[:, 3] < phi[:, 5]  # keep alpha >= beta (labels)
    phi[swap, 3], phi[swap, 5] = phi[swap, 5], phi[swap, 3].copy()
    nat = _to_natural(phi)
    t = days[None, :]
    tmax = nat["tmax"][:, None]
    s = np.maximum(t - tmax, 0.0)
    post = np.log(nat["cmax"])[:, None] + np.logaddexp(
        np.log1p(-nat["fb"])[:, None] - nat["alpha"][:, None] * s,
        np.log(nat["fb"])[:, None] - nat["beta"][:, None] * s,
    )
    pre = np.log(nat["cmax"])[:, None] + phi[:, [0]] * (t / tmax - 1.0)
    logc = np.where(t < tmax, pre, post) + rng.normal(0, sigma, (n, len(days)))
    values = np.exp(logc)
    values = np.where(values < lloq, 0.0, values)
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
    truth = {
        "mu": mu,
        "omega": np.asarray(omega, float),
        "sigma": sigma,
        "effects": effects,
        "phi": phi,
        "params": pd.DataFrame({"patient_id": ids, **nat}),
    }
    return obs, cov, truth
