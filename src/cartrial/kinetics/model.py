"""The multiphasic CAR-T cellular kinetic model of Stein et al. (2019), fitted per patient.

Model (Stein AM, Grupp SA, Levine JE, et al. Tisagenlecleucel model-based cellular kinetic
analysis of chimeric antigen receptor-T cells. CPT Pharmacometrics Syst Pharmacol
2019;8:285-295; formulas as in ``docs/domain/KINETICS.md``)::

    rho = ln(foldx) / Tmax          R0 = Cmax / foldx
    t <  Tmax:  C(t) = R0 · exp(rho · t)                                   (expansion)
    t >= Tmax:  C(t) = (1 − FB)·Cmax·e^{−alpha (t − Tmax)} + FB·Cmax·e^{−beta (t − Tmax)}

Fitting (maximum likelihood, one patient at a time):

* log scale: ``ln c_i = ln C(t_i) + eps_i``, ``eps_i ~ N(0, sigma²)``;
* values below the LLOQ are left-censored at the LLOQ (Tobit / "M3" likelihood, Beal 2001
  J Pharmacokinet Pharmacodyn 28:481): they contribute ``ln Phi((ln LLOQ − ln C(t))/sigma)``;
  values <= 0 with no LLOQ known cannot be placed on the log scale and are left out;
* parameters are estimated on unconstrained scales — ln foldx, ln Tmax, ln Cmax, ln alpha,
  logit FB, ln beta, ln sigma — with SciPy's L-BFGS-B (analytic gradient, wide box bounds)
  from several starting points (a data-driven one, variants, and the typical tisagenlecleucel
  values scaled to the observed peak); the best likelihood wins;
* the two decline phases are labelled so that alpha >= beta (the likelihood is symmetric under
  swapping (alpha, 1 − FB) with (beta, FB));
* identifiability: a profile with fewer quantifiable points than free parameters (7: six curve
  parameters and the residual SD), or exactly as many (no residual degree of freedom: the ML
  residual SD collapses to 0), is refused with the reason; at least ``MIN_QUANTIFIABLE`` = 8;
* standard errors: inverse of the Hessian of the negative log-likelihood (central differences
  of the analytic gradient) on the fitting scale, **inflated by n/(n − p)** (n quantifiable
  points, p = 7 free parameters; the ML residual variance is biased low by that factor on short
  profiles — Seber & Wild, Nonlinear Regression, 1989, §2.1; with ~12 points and 7 parameters
  uncorrected 95% Wald intervals covered 69–85%), carried to the natural scale by the delta
  method (``se(x) = x·se(ln x)``; ``se(FB) = FB(1 − FB)·se(logit FB)``);
* 95% intervals (``ci``): ``"wald"`` — on the fitting scale, ``theta ± t(n − p)·se`` with the
  corrected SE, transformed back (so they are asymmetric and stay in range); ``"profile"`` —
  profile likelihood for every parameter; ``"auto"`` (default) — profile likelihood for Tmax,
  whose likelihood has a kink at each sampling day (so its curvature says little), corrected
  Wald for the rest. Profile limits solve ``2·(nll_profile − nll_min) = n·ln(1 + F/(n − p))``,
  F the 0.95 quantile of F(1, n − p) (the likelihood-ratio form of the F-based interval,
  Bates & Watts, Nonlinear Regression Analysis, 1988, §6.1). Coverage is measured by
  ``benchmarks/bench_kinetics_coverage.py``;
* per-parameter identifiability: a parameter at a box bound, or loading on a direction in which
  the Hessian is not positive definite, is flagged not estimable (``param_flags``; its SE and
  interval NaN); the other parameters keep their (conditional) SEs.

Derived: doubling time ln2/rho, fast and slow half-lives ln2/alpha and ln2/beta, AUC in closed
form (integrals of the exponentials), predicted day the curve falls below the LLOQ.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
from scipy.special import log_ndtr

from cartrial.kinetics._obs import profile_arrays, select_analyte

log = logging.getLogger(__name__)
#: profiles named in one fit warning (the rest are counted; all are logged at INFO)
MAX_NAMED = 10

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

PARAM_NAMES = ("foldx", "tmax", "cmax", "alpha", "beta", "fb")
#: order of the fitting-scale vector theta
THETA_NAMES = (
    "log_foldx",
    "log_tmax",
    "log_cmax",
    "log_alpha",
    "logit_fb",
    "log_beta",
    "log_sigma",
)
#: fitting-scale name -> natural parameter (sigma is not in PARAM_NAMES)
_THETA_TO_PARAM = dict(
    zip(THETA_NAMES[:6], ("foldx", "tmax", "cmax", "alpha", "fb", "beta"), strict=True)
)
#: typical tisagenlecleucel values (Stein et al. 2019, as quoted in docs/domain/KINETICS.md)
TYPICAL_TISAGENLECLEUCEL: dict[str, float] = {
    "foldx": 3900.0,
    "tmax": 9.3,
    "cmax": 24000.0,
    "alpha": 0.16,
    "fb": 0.0079,
    "beta": 0.0032,
}

#: a dense 30-sample schedule (days 0-365) on which every model parameter is
#: recoverable; used by the recovery tests and the kinetics benchmark
DENSE_SCHEDULE_30 = np.array(
    [
        0,
        1,
        2,
        3,
        4,
        5,
        6,
        7,
        8,
        9,
        10,
        11,
        12,
        14,
        16,
        18,
        21,
        24,
        28,
        35,
        42,
        56,
        70,
        90,
        120,
        150,
        180,
        240,
        300,
        365,
    ],
    float,
)
TYPICAL_SIGMA = 0.56
#: free parameters of the individual fit (6 curve parameters and the residual SD)
N_FREE = len(THETA_NAMES)
#: fewest quantifiable points accepted: one residual degree of freedom beyond N_FREE
MIN_QUANTIFIABLE = N_FREE + 1
CI_METHODS = ("auto", "wald", "profile")
CI_LEVEL = 0.95
_LOG_2PI_HALF = 0.5 * math.log(2.0 * math.pi)


# ---------------------------------------------------------------------------------------
# the curve
# ---------------------------------------------------------------------------------------
def multiphasic_log_curve(
    t: np.ndarray | float,
    foldx: float,
    tmax: float,
    cmax: float,
    alpha: float,
    beta: float,
    fb: float,
) -> np.ndarray:
    """ln C(t) of the Stein et al. 2019 model (stable for tiny FB and large t)."""
    t = np.asarray(t, dtype=float)
    pre = t < tmax
    s = np.where(pre, 0.0, t - tmax)
    with np.errstate(divide="ignore"):
        u1 = math.log1p(-fb) - alpha * s if fb < 1 else np.full_like(s, -np.inf)
        u2 = math.log(fb) - beta * s if fb > 0 else np.full_like(s, -np.inf)
    log_post = math.log(cmax) + np.logaddexp(u1, u2)
    log_pre = math.log(cmax) + math.log(foldx) * (t / tmax - 1.0)
    return np.where(pre, log_pre, log_post)


def multiphasic_curve(
    t: np.ndarray | float,
    foldx: float,
    tmax: float,
    cmax: float,
    alpha: float,
    beta: float,
    fb: float,
) -> np.ndarray:
    """C(t) of the Stein et al. 2019 model (see the module docstring)."""
    return np.exp(multiphasic_log_curve(t, foldx, tmax, cmax, alpha, beta, fb))


def multiphasic_auc(a: float, b: float, params: Mapping[str, float]) -> float:
    """Closed-form ∫_a^b C(t) dt of the multiphasic model (a <= b, days; b may be ``inf``).

    Expansion part ``R0/rho·(e^{rho t2} − e^{rho t1})`` on [a, b] ∩ [0, Tmax] (``R0·(t2 − t1)``
    when foldx = 1), decline part ``(1−FB)·Cmax/alpha·(e^{−alpha s1} − e^{−alpha s2}) +
    FB·Cmax/beta·(e^{−beta s1} − e^{−beta s2})`` with s = t − Tmax on [a, b] ∩ [Tmax, ∞).
    """
    foldx, tmax, cmax = params["foldx"], params["tmax"], params["cmax"]
    alpha, beta, fb = params["alpha"], params["beta"], params["fb"]
    if (
        b == math.inf and np.isfinite(a) and all(np.isfinite([foldx, tmax, cmax, alpha, beta, fb]))
    ):  # AUC to infinity: the exponentials integrate to 1/alpha and 1/beta
        if alpha <= 0 or (beta <= 0 and fb > 0):
            return math.inf
        s1 = max(a, tmax) - tmax
        tail = (1 - fb) * cmax / alpha * math.exp(-alpha * s1)
        tail += fb * cmax / beta * math.exp(-beta * s1) if fb > 0 else 0.0
        return (multiphasic_auc(a, tmax, params) if a < tmax else 0.0) + tail
    if not all(np.isfinite([foldx, tmax, cmax, alpha, beta, fb, a, b])) or b < a:
        return float("nan") if b >= a or not np.isfinite(b) else -multiphasic_auc(b, a, params)
    total = 0.0
    lo, hi = max(a, 0.0), min(b, tmax)
    if hi > lo:
        rho = math.log(foldx) / tmax
        r0 = cmax / foldx
        if rho > 1e-12:
            total += r0 / rho * (math.exp(rho * hi) - math.exp(rho * lo))
        else:
            total += r0 * (hi - lo)
    s1, s2 = max(a, tmax) - tmax, b - tmax
    if s2 > s1:
        total += (1 - fb) * cmax / alpha * (math.exp(-alpha * s1) - math.exp(-alpha * s2))
        total += fb * cmax / beta * (math.exp(-beta * s1) - math.exp(-beta * s2))
    return total


def simulate_profile(
    params: Mapping[str, float],
    days: Sequence[float] | np.ndarray,
    sigma: float = TYPICAL_SIGMA,
    lloq: float | None = None,
    rng: np.random.Generator | int | None = None,
    blq_value: float = 0.0,
) -> np.ndarray:
    """A noisy profile from the model: ``C(t)·exp(N(0, sigma²))``; values below ``lloq``
    are reported as ``blq_value`` (0 by default, as BLQ results usually are in a table)."""
    rng = np.random.default_rng(rng)
    t = np.asarray(days, dtype=float)
    logc = multiphasic_log_curve(t, *(params[k] for k in PARAM_NAMES))
    values = np.exp(logc + rng.normal(0.0, sigma, size=t.shape))
    if lloq is not None:
        values = np.where(values < lloq, blq_value, values)
    return values


# ---------------------------------------------------------------------------------------
# likelihood
# ---------------------------------------------------------------------------------------
def _nll_grad(
    theta: np.ndarray, t: np.ndarray, y: np.ndarray, n_obs: int
) -> tuple[float, np.ndarray]:
    """Negative log-likelihood (Tobit on the log scale) and its analytic gradient.

    ``y`` holds ln value for the first ``n_obs`` samples (quantifiable) and ln LLOQ for the
    rest (left-censored). With mu_i = ln C(t_i), z_i = (y_i − mu_i)/sigma:
    quantifiable: ln sigma + ln sqrt(2π) + z²/2; censored: −ln Phi(z). Derivatives of mu:
    before Tmax mu = ln Cmax + ln foldx·(t/Tmax − 1); after, with weights w1, w2 of the fast
    and slow terms in C(t)/Cmax: d mu/d ln alpha = −alpha·s·w1, d mu/d ln beta = −beta·s·w2,
    d mu/d logit FB = (1 − FB)·w2 − FB·w1, d mu/d ln Tmax = Tmax·(alpha·w1 + beta·w2).
    """
    a, b, c, d, e, f, g = theta.tolist()
    T, alpha, beta, sig = math.exp(b), math.exp(d), math.exp(f), math.exp(g)
    # log FB and log(1 - FB) from the logit, stably
    lfb = -math.log1p(math.exp(-e)) if e > -30 else e
    l1fb = -math.log1p(math.exp(e)) if e < 30 else -e
    FB = math.exp(lfb)
    pre = t < T
    s = t - T
    np.maximum(s, 0.0, out=s)
    u1 = l1fb - alpha * s
    logS = np.logaddexp(u1, lfb - beta * s)
    w1 = np.exp(u1 - logS)  # share of the fast phase in C(t)/Cmax; w2 = 1 − w1
    mu = np.where(pre, t * (a / T) - a, logS)
    mu += c
    z = y - mu
    z /= sig
    zo = z[:n_obs]
    ss = float(zo @ zo)
    dmu = z * (-1.0 / sig)  # d nll / d mu for the quantifiable samples
    nll = n_obs * (g + _LOG_2PI_HALF) + 0.5 * ss
    dg = n_obs - ss
    if n_obs < len(z):
        zc = z[n_obs:]
        logPhi = log_ndtr(zc)
        lam = np.exp(-0.5 * zc * zc - _LOG_2PI_HALF - logPhi)  # inverse Mills ratio
        nll -= float(logPhi.sum())
        dg += float(lam @ zc)
        dmu[n_obs:] = lam / sig
    dpre = np.where(pre, dmu, 0.0)
    s_all, s_pre = float(dmu.sum()), float(dpre.sum())
    d1 = float(dmu @ w1)  # on samples before Tmax w1 = 1 − FB (s = 0)
    dt_pre = float(dpre @ t)
    ds1 = float(dmu @ (s * w1))
    ds = float(dmu @ s)
    grad = np.array(
        [
            dt_pre / T - s_pre,  # d/d ln foldx: Σ dmu·(t/T − 1) before Tmax
            # d/d ln Tmax: −a·t/T before, T·(beta + (alpha − beta)·w1) after Tmax
            -a / T * dt_pre
            + T * (beta * (s_all - s_pre) + (alpha - beta) * (d1 - (1.0 - FB) * s_pre)),
            s_all,  # d/d ln Cmax
            -alpha * ds1,  # d/d ln alpha: −alpha·s·w1
            (1.0 - FB) * s_all - d1,  # d/d logit FB: (1 − FB)·w2 − FB·w1 = (1 − FB) − w1
            -beta * (ds - ds1),  # d/d ln beta: −beta·s·w2
            dg,
        ]
    )
    return nll, grad


def _theta_from(params: Mapping[str, float], sigma: float) -> np.ndarray:
    fb = min(max(params["fb"], 1e-12), 1 - 1e-12)
    return np.array(
        [
            math.log(max(params["foldx"], 1.0 + 1e-9)),
            math.log(params["tmax"]),
            math.log(params["cmax"]),
            math.log(params["alpha"]),
            math.log(fb / (1 - fb)),
            math.log(params["beta"]),
            math.log(sigma),
        ]
    )


def _params_from(theta: np.ndarray) -> tuple[dict[str, float], float]:
    a, b, c, d, e, f, g = (float(v) for v in theta)
    fb = 1.0 / (1.0 + math.exp(-e)) if e > -700 else 0.0
    return (
        {
            "foldx": math.exp(a),
            "tmax": math.exp(b),
            "cmax": math.exp(c),
            "alpha": math.exp(d),
            "beta": math.exp(f),
            "fb": fb,
        },
        math.exp(g),
    )


def _canonical(theta: np.ndarray) -> np.ndarray:
    """Label the phases so that alpha >= beta (swap (alpha, 1−FB) with (beta, FB))."""
    if theta[3] < theta[5]:
        theta = theta.copy()
        theta[3], theta[5] = theta[5], theta[3]
        theta[4] = -theta[4]
    return theta


# ---------------------------------------------------------------------------------------
# result object
# ---------------------------------------------------------------------------------------
@dataclass
class MultiphasicFit:
    """Result of ``fit_multiphasic``: estimates, standard errors and derived quantities.

    ``params`` has ``foldx, tmax, cmax, alpha, beta, fb`` (NaN when not estimable), ``se`` the
    delta-method standard errors on the same scale, corrected by n/(n − p) (NaN where the
    Hessian is not invertible or a parameter sits on a bound), ``sigma`` the residual SD on
    the log scale, ``ci`` the 95% intervals (``ci_method`` says how each was made),
    ``param_flags`` why a parameter is not estimable ("" when it is).
    """

    params: dict[str, float]
    se: dict[str, float]
    sigma: float
    estimable: bool
    reason: str
    loglik: float = float("nan")
    n_quantifiable: int = 0
    n_blq: int = 0
    lloq: float = float("nan")
    converged: bool = False
    n_starts: int = 0
    theta: np.ndarray | None = None
    cov: np.ndarray | None = None
    notes: list[str] = field(default_factory=list)
    #: per parameter: "" when estimable, else why not (on a bound, Hessian not PD)
    param_flags: dict[str, str] = field(default_factory=dict)
    #: 95% interval per parameter (NaN where not estimable) and how it was made
    ci: dict[str, tuple[float, float]] = field(default_factory=dict)
    ci_method: dict[str, str] = field(default_factory=dict)

    @property
    def rho(self) -> float:
        return math.log(self.params["foldx"]) / self.params["tmax"] if self.estimable else math.nan

    @property
    def doubling_time(self) -> float:
        """ln2/rho = ln2·Tmax/ln(foldx) (days); inf when foldx = 1."""
        rho = self.rho
        return math.log(2) / rho if rho > 0 else (math.inf if rho == 0 else math.nan)

    @property
    def half_life_fast(self) -> float:
        return math.log(2) / self.params["alpha"] if self.estimable else math.nan

    @property
    def half_life_slow(self) -> float:
        return math.log(2) / self.params["beta"] if self.estimable else math.nan

    def predict(self, t: Sequence[float] | np.ndarray | float) -> np.ndarray:
        """Model curve C(t) at days ``t`` (NaN when not estimable)."""
        if not self.estimable:
            return np.full(np.shape(t), np.nan)
        return multiphasic_curve(np.asarray(t, dtype=float), *(self.params[k] for k in PARAM_NAMES))

    def auc(self, a: float = 0.0, b: float = 28.0) -> float:
        """Closed-form AUC from day ``a`` to ``b`` (``math.inf``: AUC0–∞ from the fitted
        exponentials, no extrapolation from the last sample; copies/µg·day or cells/µL·day)."""
        if not self.estimable:
            return math.nan
        return multiphasic_auc(a, b, self.params)

    @property
    def time_below_lloq(self) -> float:
        """Predicted day after Tmax at which C(t) falls below the LLOQ (NaN without an LLOQ
        or when the predicted peak never reaches it). Root of the decreasing decline branch,
        bracketed by ln(Cmax/LLOQ)/alpha and ln(Cmax/LLOQ)/beta (alpha >= beta)."""
        if not self.estimable or not np.isfinite(self.lloq) or self.lloq <= 0:
            return math.nan
        p = self.params
        ratio = math.log(p["cmax"] / self.lloq)
        if ratio <= 0:
            return math.nan
        from scipy.optimize import brentq

        def f(s: float) -> float:
            return float(
                multiphasic_log_curve(p["tmax"] + s, *(p[k] for k in PARAM_NAMES))
                - math.log(self.lloq)
            )

        lo, hi = ratio / p["alpha"], ratio / p["beta"]
        if f(lo) <= 0:
            return p["tmax"] + lo
        return p["tmax"] + brentq(f, lo, hi, xtol=1e-8)

    def to_dict(self) -> dict[str, Any]:
        """Flat record for tables: estimates, ``se_*``, derived quantities and status."""
        row: dict[str, Any] = {"estimable": self.estimable, "reason": self.reason}
        row.update(self.params)
        row.update({f"se_{k}": v for k, v in self.se.items()})
        for k in PARAM_NAMES:
            lo, hi = self.ci.get(k, (math.nan, math.nan))
            row[f"ci_low_{k}"], row[f"ci_high_{k}"] = lo, hi
        bad = {k: v for k, v in self.param_flags.items() if v}
        row["not_estimable_params"] = ", ".join(bad)
        row["param_flags"] = "; ".join(f"{k}: {v}" for k, v in bad.items())
        row.update(
            sigma=self.sigma,
            doubling_time=self.doubling_time,
            half_life_fast=self.half_life_fast,
            half_life_slow=self.half_life_slow,
            auc_0_28=self.auc(0, 28),
            auc_0_84=self.auc(0, 84),
            auc_0_inf=self.auc(0, math.inf),
            time_below_lloq=self.time_below_lloq,
            loglik=self.loglik,
            n_quantifiable=self.n_quantifiable,
            n_blq=self.n_blq,
            converged=self.converged,
            notes="; ".join(self.notes),
        )
        return row


_BLAS_CONTROLLER: list[Any] = []


def _single_threaded_blas() -> Any:
    """Limit BLAS to one thread while fitting (threadpoolctl).

    The 7×7 algebra inside L-BFGS-B gains nothing from threads, and multithreaded OpenBLAS
    spin-waits badly on a busy machine: measured 11 ms vs 200 ms per fit on 2 loaded cores.
    The controller is created once (scanning the loaded libraries costs ~3 ms).
    """
    if not _BLAS_CONTROLLER:
        from threadpoolctl import ThreadpoolController

        _BLAS_CONTROLLER.append(ThreadpoolController())
    return _BLAS_CONTROLLER[0].limit(limits=1, user_api="blas")


def _not_estimable(reason: str, n_q: int, n_blq: int, lloq: float) -> MultiphasicFit:
    nan = {k: math.nan for k in PARAM_NAMES}
    return MultiphasicFit(
        params=dict(nan),
        se=dict(nan),
        sigma=math.nan,
        estimable=False,
        reason=f"not estimable: {reason}",
        n_quantifiable=n_q,
        n_blq=n_blq,
        lloq=lloq,
    )


# ---------------------------------------------------------------------------------------
# fitting
# ---------------------------------------------------------------------------------------
def _starts(
    t: np.ndarray, c: np.ndarray, lq: np.ndarray, is_q: np.ndarray, n_starts: int
) -> list[np.ndarray]:
    """Starting points: data-driven (observed peak, early rise, early/late decline slopes),
    variants around it (peak between samples, slower fast phase, larger FB), and the typical
    tisagenlecleucel values scaled to the observed peak."""
    tq, cq = t[is_q], c[is_q]
    i_max = int(np.argmax(cq))
    cmax0, tmax0 = float(cq[i_max]), max(float(tq[i_max]), 0.5)
    # expansion rate from the earliest sample before the peak (a BLQ one counts as LLOQ/2)
    rho0 = 1.0
    before = np.flatnonzero(t < tmax0)
    if len(before):
        j = int(before[0])
        c_early = float(c[j]) if is_q[j] else float(lq[j]) / 2.0
        if 0 < c_early < cmax0:
            rho0 = math.log(cmax0 / c_early) / (tmax0 - t[j])
    log_fold0 = float(np.clip(rho0 * tmax0, 1.0, 18.0))
    # decline: late slope (beta, FB) from points >= 30 days after the peak, early alpha
    after = tq > tmax0
    late = tq >= tmax0 + 30
    beta0, fb0 = 0.005, 0.01
    if late.sum() >= 2:
        slope, icpt = np.polyfit(tq[late] - tmax0, np.log(cq[late]), 1)
        beta0 = float(np.clip(-slope, 5e-4, 0.05))
        fb0 = float(np.clip(math.exp(icpt) / cmax0, 1e-5, 0.3))
    elif late.sum() == 1:
        fb0 = float(
            np.clip(cq[late][0] / cmax0 * math.exp(beta0 * (tq[late][0] - tmax0)), 1e-5, 0.3)
        )
    alpha0 = 0.15
    if after.any():
        j = int(np.flatnonzero(after)[0])
        sj = float(tq[j] - tmax0)
        frac = cq[j] / cmax0 - fb0 * math.exp(-beta0 * sj)
        if frac > 0 and sj > 0:
            alpha0 = -math.log(min(frac / (1 - fb0), 0.999)) / sj
    alpha0 = float(np.clip(alpha0, 3 * beta0, 3.0))
    base = {
        "foldx": math.exp(log_fold0),
        "tmax": tmax0,
        "cmax": cmax0,
        "alpha": alpha0,
        "beta": beta0,
        "fb": fb0,
    }
    starts = [_theta_from(base, 0.5)]
    typ = dict(TYPICAL_TISAGENLECLEUCEL, cmax=cmax0 * 1.1, tmax=tmax0)
    starts.append(_theta_from(typ, 0.6))
    nxt = tq[tq > tmax0]
    v1 = dict(
        base,
        tmax=0.5 * (tmax0 + (nxt[0] if len(nxt) else tmax0 + 2)),
        alpha=alpha0 * 0.6,
        cmax=cmax0 * 1.2,
    )
    v1["foldx"] = math.exp(min(log_fold0 * v1["tmax"] / tmax0, 18.0))
    starts.append(_theta_from(v1, 0.4))
    v3 = dict(base, fb=min(fb0 * 5, 0.3), beta=max(beta0 * 0.3, 5e-4), alpha=alpha0 * 1.5)
    starts.append(_theta_from(v3, 0.5))
    return starts[: max(1, n_starts)]


def fit_multiphasic(
    days: Sequence[float] | np.ndarray,
    values: Sequence[float] | np.ndarray,
    lloq: float | Sequence[float] | np.ndarray | None = None,
    n_starts: int = 3,
    se: bool = True,
    min_quantifiable: int = MIN_QUANTIFIABLE,
    ci: str = "auto",
    patient: str | None = None,
) -> MultiphasicFit:
    """Fit the Stein et al. 2019 multiphasic model to one patient's profile.

    ``values`` below ``lloq`` (scalar or per sample; below-LLOQ text such as ``<50`` is read as
    BLQ) are left-censored; values <= 0 without an LLOQ are left out; NaN values and samples
    before day 0 are ignored; dates, infinite or negative values raise ValueError naming
    ``patient``, the sample and the value. Not estimable (with the reason) when there are
    fewer quantifiable points than ``max(min_quantifiable, N_FREE + 1)`` (7 free parameters
    need at least 8), no sample before the observed peak, no decline after it (the maximum is
    the last sample), or the optimiser fails. ``ci``: see the module docstring.
    """
    if ci not in CI_METHODS:
        raise ValueError(f"ci {ci!r}; expected one of {', '.join(CI_METHODS)}")
    t, c, lq = profile_arrays(days, values, lloq, patient=patient)
    with np.errstate(invalid="ignore"):
        is_q = (c > 0) & ~(c < lq)
        cens = ~is_q & (lq > 0)
    use = is_q | cens
    t, c, lq, is_q, cens = t[use], c[use], lq[use], is_q[use], cens[use]
    n_q, n_blq = int(is_q.sum()), int(cens.sum())
    lloq_rep = float(np.nanmedian(lq)) if np.isfinite(lq).any() else math.nan
    if n_q <= N_FREE:
        return _not_estimable(
            f"{n_q} quantifiable point(s) for {N_FREE} free parameters (6 curve parameters "
            f"and the residual SD): at least {N_FREE + 1} needed",
            n_q,
            n_blq,
            lloq_rep,
        )
    if n_q < min_quantifiable:
        return _not_estimable(
            f"fewer than {min_quantifiable} quantifiable points", n_q, n_blq, lloq_rep
        )
    tq, cq = t[is_q], c[is_q]
    i_max = int(np.argmax(cq))
    if not (t < tq[i_max]).any():
        return _not_estimable("no sample before the peak", n_q, n_blq, lloq_rep)
    if not (t > tq[i_max]).any():
        return _not_estimable("no decline after peak", n_q, n_blq, lloq_rep)

    # quantifiable first, then censored (the likelihood expects this order)
    tt = np.concatenate((tq, t[cens]))
    yy = np.concatenate((np.log(cq), np.log(lq[cens])))
    t_hi = max(float(t.max()), 1.0)
    bounds = [
        (0.0, 25.0),  # ln foldx: foldx in [1, 7e10]
        (math.log(0.25), math.log(t_hi)),  # ln Tmax within the sampled span
        # ln Cmax is left unbounded on purpose: it is anchored by >= 5 quantifiable values,
        # and a box on every variable makes L-BFGS-B take a full unit steepest-descent first
        # step (instead of one scaled to the gradient), which throws some fits into the
        # wrong basin
        (None, None),
        (math.log(1e-4), math.log(20.0)),  # ln alpha
        (-25.0, 15.0),  # logit FB
        (math.log(1e-6), math.log(20.0)),  # ln beta
        (math.log(0.01), math.log(5.0)),  # ln sigma
    ]
    args = (tt, yy, n_q)
    with _single_threaded_blas():
        return _fit(t, c, lq, is_q, n_q, n_blq, lloq_rep, args, bounds, n_starts, se, ci)


def _fit(
    t: np.ndarray,
    c: np.ndarray,
    lq: np.ndarray,
    is_q: np.ndarray,
    n_q: int,
    n_blq: int,
    lloq_rep: float,
    args: tuple,
    bounds: list,
    n_starts: int,
    se: bool,
    ci: str = "auto",
) -> MultiphasicFit:
    """Multi-start L-BFGS-B, best likelihood, phase labelling, standard errors."""
    from scipy.optimize import minimize

    lo = np.array([-np.inf if b[0] is None else b[0] for b in bounds])
    hi = np.array([np.inf if b[1] is None else b[1] for b in bounds])
    best = None
    found: list[float] = []
    for x0 in _starts(t, c, lq, is_q, n_starts):
        x0 = np.clip(x0, lo + 1e-6, hi - 1e-6)
        try:
            res = minimize(
                _nll_grad,
                x0,
                args=args,
                jac=True,
                method="L-BFGS-B",
                bounds=bounds,
                options={"maxiter": 400},
            )
        except (ValueError, FloatingPointError):  # pragma: no cover - defensive
            continue
        if not np.isfinite(res.fun):
            continue
        if best is None or res.fun < best.fun:
            best = res
        # this start reproduces the best optimum of an earlier one: accept it, skip the rest
        agree = any(abs(prev - res.fun) < 1e-4 for prev in found) and res.fun <= best.fun + 1e-4
        found.append(float(res.fun))
        if agree and best.success:
            break
    if best is None:
        return _not_estimable("optimisation failed", n_q, n_blq, lloq_rep)
    theta = _canonical(best.x)
    params, sigma = _params_from(theta)
    fit = MultiphasicFit(
        params=params,
        se={k: math.nan for k in PARAM_NAMES},
        sigma=sigma,
        estimable=True,
        reason="estimable",
        loglik=-float(best.fun),
        n_quantifiable=n_q,
        n_blq=n_blq,
        lloq=lloq_rep,
        converged=bool(best.success),
        n_starts=len(found),
        theta=theta,
    )
    at_bound = [
        THETA_NAMES[i] for i in range(7) if min(abs(theta[i] - lo[i]), abs(theta[i] - hi[i])) < 1e-5
    ]
    fit.param_flags = {k: "" for k in PARAM_NAMES}
    for name in at_bound:
        if name in _THETA_TO_PARAM:
            fit.param_flags[_THETA_TO_PARAM[name]] = "on a bound of the search box"
    if at_bound:
        fit.notes.append("at bound: " + ", ".join(at_bound))
        log.debug("multiphasic fit: %s at a bound of the search box", ", ".join(at_bound))
    if not best.success:
        fit.notes.append(f"optimiser: {best.message}")
        log.debug("multiphasic fit did not converge: %s", best.message)
    if np.min(np.abs(t - params["tmax"])) < 1e-3:
        # C(t) has a kink at Tmax: the likelihood is not smooth in Tmax at a sampling day
        fit.notes.append("Tmax on a sampling day: likelihood not smooth there, SEs approximate")
    if se:
        _add_standard_errors(fit, args, at_bound, ci, (lo, hi))
    return fit


def _hessian(theta: np.ndarray, args: tuple) -> np.ndarray:
    """Hessian of the negative log-likelihood by central differences of the gradient."""
    k = len(theta)
    H = np.empty((k, k))
    for i in range(k):
        h = 1e-4 * max(1.0, abs(theta[i]))
        tp, tm = theta.copy(), theta.copy()
        tp[i] += h
        tm[i] -= h
        H[:, i] = (_nll_grad(tp, *args)[1] - _nll_grad(tm, *args)[1]) / (2 * h)
    return 0.5 * (H + H.T)


def _to_natural(j: int, x: float) -> float:
    """Fitting-scale value of ``THETA_NAMES[j]`` on the natural scale (expit for FB)."""
    if j == 4:
        return 1.0 / (1.0 + math.exp(-x)) if x > -700 else 0.0
    return math.exp(x) if x < 700 else math.inf


def _add_standard_errors(
    fit: MultiphasicFit,
    args: tuple,
    at_bound: list[str],
    ci: str = "auto",
    box: tuple[np.ndarray, np.ndarray] | None = None,
) -> None:
    """Corrected SEs, per-parameter flags and 95% intervals (module docstring)."""
    from scipy import stats

    theta = fit.theta
    assert theta is not None
    n, p = fit.n_quantifiable, N_FREE
    df = max(n - p, 1)
    inflate = n / df
    H = _hessian(theta, args)
    if not np.all(np.isfinite(H)):
        fit.notes.append("Hessian not finite: no standard errors")
        return
    # directions in which the Hessian is not positive definite, and the parameters on them
    w, V = np.linalg.eigh(H)
    null = w <= 1e-8 * max(float(np.abs(w).max()), 1e-300)
    flagged = {THETA_NAMES[i] for i in range(p) if THETA_NAMES[i] in at_bound}
    if null.any():
        load = np.abs(V[:, null]).max(axis=1)
        weak = {THETA_NAMES[i] for i in range(p) if load[i] >= 0.2}
        for name in weak - flagged:
            if name in _THETA_TO_PARAM:
                fit.param_flags[_THETA_TO_PARAM[name]] = "Hessian not positive definite"
        fit.notes.append(
            "Hessian not positive definite ("
            + ", ".join(sorted(weak))
            + " not identifiable); other SEs conditional on them"
        )
        flagged |= weak
    keep = np.array([THETA_NAMES[i] not in flagged for i in range(p)])
    cov = np.full((p, p), np.nan)
    if keep.any():
        try:
            cov_k = np.linalg.inv(H[np.ix_(keep, keep)])
        except np.linalg.LinAlgError:
            fit.notes.append("Hessian singular: no standard errors")
            return
        cov[np.ix_(keep, keep)] = cov_k * inflate
    var = np.diag(cov).copy()
    var[~(var > 0)] = np.nan
    sd = np.sqrt(var)
    pr = fit.params
    fit.cov = cov
    fit.se = {
        "foldx": pr["foldx"] * sd[0],
        "tmax": pr["tmax"] * sd[1],
        "cmax": pr["cmax"] * sd[2],
        "alpha": pr["alpha"] * sd[3],
        "fb": pr["fb"] * (1 - pr["fb"]) * sd[4],
        "beta": pr["beta"] * sd[5],
    }
    fit.se["sigma"] = fit.sigma * sd[6]
    tq = float(stats.t.ppf(0.5 + CI_LEVEL / 2, df))
    thr = n * math.log1p(float(stats.f.ppf(CI_LEVEL, 1, df)) / df)
    lo_box, hi_box = box if box is not None else (np.full(p, -np.inf), np.full(p, np.inf))
    for j, name in enumerate(THETA_NAMES[:6]):
        par = _THETA_TO_PARAM[name]
        if name in flagged or not np.isfinite(sd[j]):
            fit.ci[par], fit.ci_method[par] = (math.nan, math.nan), "not estimable"
            continue
        if ci == "profile" or (ci == "auto" and par == "tmax"):
            lims = _profile_limits(theta, j, args, thr, sd[j], lo_box, hi_box, -fit.loglik)
            fit.ci_method[par] = "profile likelihood"
        else:
            lims = (theta[j] - tq * sd[j], theta[j] + tq * sd[j])
            fit.ci_method[par] = "Wald, n/(n-p) and t(n-p)"
        fit.ci[par] = (_to_natural(j, lims[0]), _to_natural(j, lims[1]))


def _profile_limits(
    theta: np.ndarray,
    j: int,
    args: tuple,
    thr: float,
    sd: float,
    lo: np.ndarray,
    hi: np.ndarray,
    nll_min: float,
) -> tuple[float, float]:
    """Profile-likelihood limits of ``theta[j]`` where ``2·(nll_j − nll_min) = thr``.

    Walks out from the estimate in growing steps (each point re-optimises the other
    parameters from the last one, L-BFGS-B), then brackets the crossing with Brent's method.
    A side that reaches the search box without crossing returns the box limit.
    """
    from scipy.optimize import minimize

    free = np.array([i for i in range(len(theta)) if i != j])
    bnds = [
        (None if not np.isfinite(lo[i]) else lo[i], None if not np.isfinite(hi[i]) else hi[i])
        for i in free
    ]
    seen: dict[float, np.ndarray] = {float(theta[j]): theta[free].copy()}

    def excess(v: float) -> float:
        """2·(profile nll − nll_min) − thr at theta[j] = v, warm-started from the nearest
        point already profiled (the profile is followed continuously)."""
        near = min(seen, key=lambda u: abs(u - v))

        def f(x: np.ndarray) -> tuple[float, np.ndarray]:
            th = theta.copy()
            th[j] = v
            th[free] = x
            val, g = _nll_grad(th, *args)
            return val, g[free]

        res = minimize(f, seen[near], jac=True, method="L-BFGS-B", bounds=bnds)
        if np.isfinite(res.fun):
            seen[float(v)] = res.x
        return 2.0 * (float(res.fun) - nll_min) - thr

    out = []
    for side in (-1.0, 1.0):
        edge = lo[j] if side < 0 else hi[j]
        step = max(1.5 * sd, 0.02)
        a, fa = float(theta[j]), -thr
        limit = float(edge) if np.isfinite(edge) else side * math.inf
        for _ in range(12):
            b = a + side * step
            if np.isfinite(edge) and side * (b - edge) >= 0:
                b = float(edge)
            fb = excess(b)
            if fb >= 0:
                limit = _illinois(excess, a, fa, b, fb)
                break
            if b == edge:
                break
            a, fa, step = b, fb, step * 1.8
        out.append(limit)
    return out[0], out[1]


def _illinois(f: Any, a: float, fa: float, b: float, fb: float, tol: float = 0.02) -> float:
    """Root of ``f`` between a (f < 0) and b (f >= 0) by regula falsi with the Illinois
    modification; stops when |f| < ``tol`` (likelihood units) or the bracket < 1e-4."""
    keep = 0
    m = b
    for _ in range(30):
        m = b - fb * (b - a) / (fb - fa) if fb != fa else 0.5 * (a + b)
        fm = f(m)
        if abs(fm) < tol or abs(b - a) < 1e-4:
            break
        if fm >= 0:
            b, fb = m, fm
            fa = fa / 2 if keep == 1 else fa
            keep = 1
        else:
            a, fa = m, fm
            fb = fb / 2 if keep == -1 else fb
            keep = -1
    return m


# ---------------------------------------------------------------------------------------
# many patients
# ---------------------------------------------------------------------------------------
def _fit_chunk(
    chunk: list[tuple[np.ndarray, np.ndarray, np.ndarray]],
    n_starts: int,
    se: bool,
    ci: str = "auto",
) -> list[dict[str, Any]]:
    return [
        fit_multiphasic(t, c, lq, n_starts=n_starts, se=se, ci=ci).to_dict() for t, c, lq in chunk
    ]


def fit_table(
    observations: pd.DataFrame,
    analyte: str = "cart_qpcr",
    by: str | Sequence[str] = "patient_id",
    n_jobs: int = 1,
    n_starts: int = 3,
    se: bool = True,
    ci: str = "auto",
) -> pd.DataFrame:
    """Fit the multiphasic model to every profile of ``analyte`` (one row per patient).

    ``n_jobs`` > 1 spreads patients over that many worker processes. Columns: the ``by`` keys,
    ``estimable, reason, foldx, tmax, cmax, alpha, beta, fb, se_*, sigma, doubling_time,
    half_life_fast, half_life_slow, auc_0_28, auc_0_84, auc_0_inf, time_below_lloq, loglik,
    n_quantifiable, n_blq, converged, notes`` and ``ci_low_*``/``ci_high_*`` (95%, ``ci``
    method), ``not_estimable_params`` and ``param_flags``.
    """
    import pandas as pd

    arr = select_analyte(observations, analyte, by)
    starts = np.searchsorted(arr.codes, np.arange(arr.n_groups + 1))
    profiles = [
        (arr.day[a:b], arr.value[a:b], arr.lloq[a:b])
        for a, b in zip(starts[:-1], starts[1:], strict=True)
    ]
    if n_jobs > 1 and len(profiles) >= 2 * n_jobs:
        rows = _fit_parallel(profiles, n_jobs, n_starts, se, ci)
    else:
        rows = _fit_chunk(profiles, n_starts, se, ci)
    table = pd.concat([arr.keys, pd.DataFrame(rows)], axis=1)
    table.insert(len(arr.keys.columns), "analyte", analyte)
    table.insert(len(arr.keys.columns) + 1, "unit", arr.unit)
    _log_fit_problems(table, list(arr.keys.columns), analyte)
    return table


def _log_fit_problems(table: pd.DataFrame, keys: list[str], analyte: str) -> None:
    """Fits that did not converge or have a parameter on a bound of the search box (or not
    estimable; the table's ``notes``/``param_flags``): one warning per kind naming the
    profiles (the first ``MAX_NAMED``), and each profile's details at INFO level."""
    if table.empty or not log.isEnabledFor(logging.WARNING):
        return
    estimable = table["estimable"].astype(bool)
    failed = estimable & ~table["converged"].astype(bool)
    flagged = estimable & (table["param_flags"].astype(str) != "")
    who = table[keys].astype(str).agg(", ".join, axis=1)
    for mask, what, detail in (
        (failed, "multiphasic fit did not converge", "notes"),
        (flagged, "parameter on a bound of the search box or not estimable", "param_flags"),
    ):
        n = int(mask.sum())
        if not n:
            continue
        named = ", ".join(who[mask].iloc[:MAX_NAMED]) + (" …" if n > MAX_NAMED else "")
        log.warning("%s: %s in %d of %d profile(s): %s", analyte, what, n, len(table), named)
        for i in table.index[mask]:
            log.info("%s %s: %s", analyte, who[i], table.at[i, detail])


def _fit_parallel(
    profiles: list, n_jobs: int, n_starts: int, se: bool, ci: str = "auto"
) -> list[dict]:
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor

    n_chunks = n_jobs * 8
    bounds = np.linspace(0, len(profiles), n_chunks + 1).astype(int)
    chunks = [profiles[a:b] for a, b in zip(bounds[:-1], bounds[1:], strict=True) if b > a]
    method = "fork" if "fork" in mp.get_all_start_methods() else "spawn"
    with ProcessPoolExecutor(max_workers=n_jobs, mp_context=mp.get_context(method)) as pool:
        k = len(chunks)
        parts = list(pool.map(_fit_chunk, chunks, [n_starts] * k, [se] * k, [ci] * k))
    return [row for part in parts for row in part]
