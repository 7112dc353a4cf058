"""Fine–Gray proportional subdistribution-hazards regression (R ``cmprsk::crr``).

Fine & Gray (JASA 1999;94:496) model the subdistribution hazard of cause 1,
``lambda_1(t | z) = lambda_10(t) exp(beta'z)``, whose cumulative incidence is
``F_1(t | z) = 1 - exp(-Lambda_10(t) exp(beta'z))``.  The risk set at a cause-1 failure
time t holds everybody without a cause-1 failure before t: subjects still under
follow-up (weight 1) and subjects who had a competing event at X_j < t, with inverse-
probability-of-censoring weight ``G(t-) / G(X_j-)`` (G: Kaplan–Meier of the censoring
distribution).

Why hand-written: no maintained Python library fits it (lifelines, statsmodels and
scikit-survival do not; pycmprsk needs Python >= 3.13).  This follows ``cmprsk::crr``
2.2-11 (Gray's Fortran ``crrfsv``/``crrf``/``crrvv``/``crrfit``) step for step, one
censoring group, no time-varying ``cov2``:

* censoring KM ``G`` read at ``X_i (1 - 100 eps)`` as crr's ``approx`` (left limits);
* Breslow handling of tied failures; Newton–Raphson from beta = 0 with crr's Armijo
  step halving and its stopping rule ``max|U_j| max(|b_j|, 1) < max(|loglik|, 1) gtol``
  (``gtol = 1e-6``, ``maxiter = 10``), so the iterates are crr's;
* sandwich variance ``I^-1 (sum_i (eta_i + psi_i)^2) I^-1`` (Fine & Gray 1999, sec. 3:
  ``eta_i`` the score term, ``psi_i`` the censoring-martingale term of the weights);
* ``bfitj``: jumps of the baseline cumulative subdistribution hazard (Breslow type)
  at the distinct cause-1 times; :meth:`FineGrayResult.predict_cif` = ``predict.crr``.

Vectorised with cumulative sums over the sorted times: O(n log n + D p^2) for D
distinct failure times (crr's Fortran loops are O(n^2)).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from cartrial.stats import _kernels as K
from cartrial.stats.survival import z_value
from cartrial.stats.timedep import _covariate_matrix

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

_EPS = float(np.finfo(float).eps)


def meaning_text(event_name: str = "relapse") -> str:
    """What a subdistribution hazard ratio describes, in one sentence."""
    return (
        f"the subdistribution hazard ratio describes the cumulative incidence of {event_name}, "
        f"not the cause-specific {event_name} rate"
    )


@dataclass(frozen=True, eq=False)
class FineGrayResult:
    """Fitted Fine–Gray model (``cmprsk::crr`` equivalents in brackets).

    ``summary``: covariate, coef, se, hr, lower, upper, z, p.  ``coef`` [coef], ``var``
    [var, sandwich], ``information`` [inf], ``loglik`` / ``loglik_null`` [loglik,
    loglik.null, pseudo-likelihoods], ``uftime`` [uftime], ``bfitj`` [bfitj].
    ``meaning`` says what the hazard ratio describes.
    """

    summary: pd.DataFrame = field(repr=False)
    coef: np.ndarray = field(repr=False)
    var: np.ndarray = field(repr=False)
    information: np.ndarray = field(repr=False)
    loglik: float
    loglik_null: float
    n: int
    n_events: int
    n_competing: int
    n_censored: int
    converged: bool
    n_iter: int
    uftime: np.ndarray = field(repr=False)
    bfitj: np.ndarray = field(repr=False)
    failcode: Any
    cencode: Any
    conf_level: float
    meaning: str
    warning: str | None = None

    def predict_cif(self, z: Any, times: Any = None) -> pd.DataFrame:
        """Cumulative incidence of the failure cause for covariate profile(s) ``z``.

        ``F(t | z) = 1 - exp(-sum_{u_k <= t} bfitj_k exp(beta'z))`` (R ``predict.crr``).
        ``z``: one profile (length p) or rows of profiles (m x p, or a DataFrame with
        the model's design columns).  ``times``: where to evaluate (step function, 0
        before the first failure); default the distinct failure times ``uftime``.
        Returns a DataFrame with ``time`` and one column per profile (``cif`` for one,
        else ``cif_0``, ``cif_1``, ...).
        """
        import pandas as pd

        zz = np.asarray(z, dtype=np.float64)
        single = zz.ndim == 1
        zz = np.atleast_2d(zz)
        if zz.shape[1] != self.coef.size:
            raise ValueError(
                f"z has {zz.shape[1]} values per profile, the model has {self.coef.size} "
                f"coefficients ({list(self.summary['covariate'])})"
            )
        cum = np.cumsum(self.bfitj)
        if times is None:
            t = self.uftime
            base = cum
        else:
            t = np.atleast_1d(np.asarray(times, dtype=np.float64))
            idx = np.searchsorted(self.uftime, t, side="right") - 1
            base = np.where(idx >= 0, cum[np.maximum(idx, 0)], 0.0)
        cif = 1.0 - np.exp(-base[:, None] * np.exp(zz @ self.coef)[None, :])
        cols = {"cif": cif[:, 0]} if single else {f"cif_{j}": cif[:, j] for j in range(len(zz))}
        return pd.DataFrame({"time": t, **cols})


def _censoring_left_limits(t: np.ndarray, censored: np.ndarray) -> np.ndarray:
    """KM of the censoring distribution read as crr reads it: at ``t (1 - 100 eps)``.

    R: ``approx(c(min(0, u$time) - 10 eps, u$time, max(u$time) (1 + 10 eps)),
    c(1, u$surv, 0), xout = ftime (1 - 100 eps), method = "constant", f = 0, rule = 2)``
    with ``u = survfit(Surv(ftime, cenind) ~ 1)``.
    """
    times, inverse = np.unique(t, return_inverse=True)
    d = np.bincount(inverse, weights=censored, minlength=times.size)
    exits = np.bincount(inverse, minlength=times.size)
    n_risk = t.size - np.concatenate([[0], np.cumsum(exits)[:-1]])
    surv = np.cumprod(1.0 - d / n_risk)
    knots = np.concatenate([[min(0.0, times[0]) - 10 * _EPS], times, [times[-1] * (1 + 10 * _EPS)]])
    values = np.concatenate([[1.0], surv, [0.0]])
    pos = np.searchsorted(knots, t * (1 - 100 * _EPS), side="right") - 1
    return values[np.clip(pos, 0, values.size - 1)]


@dataclass(frozen=True)
class _Data:
    t: np.ndarray  # sorted times
    status: np.ndarray  # 1 failure of interest, 2 competing, 0 censored
    X: np.ndarray
    G: np.ndarray  # censoring KM at t-
    uft: np.ndarray  # distinct failure times
    d: np.ndarray  # failures per distinct time
    Gf: np.ndarray  # G at each distinct failure time (left limit)
    pos: np.ndarray  # first sorted index with t >= uft_k
    fail: np.ndarray  # indices of failures
    comp: np.ndarray  # bool, competing event


def _sums(beta: np.ndarray, D: _Data) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Weighted risk-set sums S0 (D,), S1 (D, p), S2 (D, p, p) and exp(eta)."""
    n, p = D.X.shape
    e = np.exp(D.X @ beta)
    M = np.concatenate(
        [
            e[:, None],
            e[:, None] * D.X,
            (e[:, None, None] * D.X[:, :, None] * D.X[:, None, :]).reshape(n, p * p),
        ],
        axis=1,
    )
    tail = np.zeros((n + 1, M.shape[1]))
    tail[:-1] = np.cumsum(M[::-1], axis=0)[::-1]  # tail[i] = sum over sorted rows >= i
    Mc = np.where(D.comp[:, None], M / D.G[:, None], 0.0)
    head = np.zeros((n + 1, M.shape[1]))
    head[1:] = np.cumsum(Mc, axis=0)  # head[i] = sum over sorted rows < i
    S = tail[D.pos] + D.Gf[:, None] * head[D.pos]
    return S[:, 0], S[:, 1 : 1 + p], S[:, 1 + p :].reshape(-1, p, p), e


def _neg_loglik(beta: np.ndarray, D: _Data) -> float:
    S0, _, _, _ = _sums(beta, D)
    return float(-(D.X[D.fail] @ beta).sum() + D.d @ np.log(S0))


def _fsv(beta: np.ndarray, D: _Data) -> tuple[float, np.ndarray, np.ndarray]:
    """crrfsv: minus log pseudo-likelihood, its gradient, and the information."""
    S0, S1, S2, _ = _sums(beta, D)
    zbar = S1 / S0[:, None]
    lik = float(-(D.X[D.fail] @ beta).sum() + D.d @ np.log(S0))
    s = -D.X[D.fail].sum(axis=0) + D.d @ zbar
    v = np.tensordot(D.d, S2 / S0[:, None, None], axes=1) - (zbar * D.d[:, None]).T @ zbar
    return lik, s, v


def _sandwich_middle(beta: np.ndarray, D: _Data) -> np.ndarray:
    """crrvv's v2 = sum_i (eta_i + psi_i)(eta_i + psi_i)'."""
    n, p = D.X.shape
    S0, S1, _, e = _sums(beta, D)
    zbar = S1 / S0[:, None]
    a = D.d / S0  # (D,)
    # eta_i: score term minus its compensator, summed over failure times
    k_le = np.searchsorted(D.uft, D.t, side="right")  # number of u_k <= X_i
    c0 = np.concatenate([[0.0], np.cumsum(a)])
    c1 = np.vstack([np.zeros((1, p)), np.cumsum(a[:, None] * zbar, axis=0)])
    ga = D.Gf * a
    t0 = np.concatenate([np.cumsum(ga[::-1])[::-1], [0.0]])  # sum over k >= index
    t1 = np.vstack([np.cumsum((ga[:, None] * zbar)[::-1], axis=0)[::-1], np.zeros((1, p))])
    P0 = c0[k_le] + np.where(D.comp, t0[k_le] / D.G, 0.0)
    P1 = c1[k_le] + np.where(D.comp[:, None], t1[k_le] / D.G[:, None], 0.0)
    eta = -e[:, None] * (D.X * P0[:, None] - P1)
    kf = np.searchsorted(D.uft, D.t[D.fail])
    eta[D.fail] += D.X[D.fail] - zbar[kf]
    # psi_i: censoring-martingale term, q(u)/pi(u) integrated against dM^c_i
    censored = D.status == 0
    psi = np.zeros((n, p))
    if censored.any():
        ct, m = np.unique(D.t[censored], return_counts=True)
        first = np.searchsorted(D.t, ct, side="left")  # rows with t < c: [0, first)
        pi = (n - first).astype(np.float64)
        w = np.where(D.comp, e / D.G, 0.0)
        C0 = np.concatenate([[0.0], np.cumsum(w)])[first]
        C1 = np.vstack([np.zeros((1, p)), np.cumsum(w[:, None] * D.X, axis=0)])[first]
        k_ge = np.searchsorted(D.uft, ct, side="left")  # first u_k >= c
        q = C1 * t0[k_ge][:, None] - C0[:, None] * t1[k_ge]
        jump = np.vstack([np.zeros((1, p)), np.cumsum((m / pi**2)[:, None] * q, axis=0)])
        j_le = np.searchsorted(ct, D.t, side="right")  # censoring times <= X_i
        psi = -jump[j_le]
        ci = np.searchsorted(ct, D.t[censored])
        psi[censored] += q[ci] / pi[ci][:, None]
    r = eta + psi
    return r.T @ r


def fine_gray(
    time: Any,
    cause: Any,
    covariates: Any,
    failcode: int = 1,
    cencode: int = 0,
    conf_level: float = 0.95,
    gtol: float = 1e-6,
    maxiter: int = 10,
    event_name: str = "relapse",
) -> FineGrayResult:
    """Fine–Gray regression of cause ``failcode`` (R ``crr(time, cause, cov1)``).

    ``cause``: integer status, ``cencode`` (0) = censored, ``failcode`` (1) = the event
    of interest (e.g. relapse), any other code = a competing event (e.g. non-relapse
    mortality).  ``covariates``: DataFrame (categorical columns become indicators), 2-D
    or 1-D array.  ``gtol``/``maxiter`` are crr's.  Wald z tests and intervals from
    the sandwich variance.  ``meaning``: the subdistribution HR describes the cumulative
    incidence of ``event_name``, not its cause-specific rate (Austin & Fine, Stat Med
    2017;36:4391).  Algorithm and sources in the module docstring.
    """
    import pandas as pd
    from scipy.special import ndtr

    t = K.check_times(time, "time").astype(np.float64)
    c = K.check_codes(cause, "cause")
    n = K.check_lengths(time=t, cause=c)
    X, names = _covariate_matrix(covariates, n)
    if failcode == cencode:
        raise ValueError("failcode and cencode must differ")
    K.check_design(X, names, int((c == failcode).sum()), f"cause == {failcode}")
    order = np.argsort(t, kind="stable")
    t, c, X = t[order], c[order], X[order]
    cen = c == cencode
    status = np.where(c == failcode, 1, np.where(cen, 0, 2))
    G = _censoring_left_limits(t, cen.astype(np.float64))
    fail = np.flatnonzero(status == 1)
    uft, d = np.unique(t[fail], return_counts=True)
    pos = np.searchsorted(t, uft, side="left")
    D = _Data(t, status, X, G, uft, d.astype(np.float64), G[pos], pos, fail, status == 2)
    if np.any(D.Gf <= 0):
        raise ValueError("the censoring distribution reaches 0 before a failure time")

    b = np.zeros(X.shape[1])
    converged, n_iter = False, 0
    for it in range(maxiter + 1):
        f, s, v = _fsv(b, D)
        n_iter = it
        if np.max(np.abs(s) * np.maximum(np.abs(b), 1.0)) < max(abs(f), 1.0) * gtol:
            converged = True
            break
        if it == maxiter:
            break
        try:
            sc = -np.linalg.solve(v, s)
        except np.linalg.LinAlgError:
            raise _singular(names) from None
        bn = b + sc
        fbn = _neg_loglik(bn, D)
        halvings = 0
        while np.isnan(fbn) or fbn > f + 1e-4 * float(sc @ s):
            halvings += 1
            sc = sc * 0.5
            bn = b + sc
            fbn = _neg_loglik(bn, D)
            if halvings > 20:
                break
        if halvings > 20:
            break
        b = bn
    f, s, info = _fsv(b, D)
    try:
        h = np.linalg.inv(info)
    except np.linalg.LinAlgError:
        raise _singular(names) from None
    warning = None
    if not converged:
        warning = (
            f"did not converge in {maxiter} Newton-Raphson iterations (crr's limit): "
            "typically monotone likelihood (a group with no failures of this cause); the "
            "estimate is not reliable"
        )
    var = h @ _sandwich_middle(b, D) @ h.T
    S0, _, _, _ = _sums(b, D)
    bfitj = D.d / S0
    se = np.sqrt(np.diag(var))
    zc = z_value(conf_level)
    zstat = b / se
    summary = pd.DataFrame(
        {
            "covariate": names,
            "coef": b,
            "se": se,
            "hr": np.exp(b),
            "lower": np.exp(b - zc * se),
            "upper": np.exp(b + zc * se),
            "z": zstat,
            "p": 2.0 * ndtr(-np.abs(zstat)),
        }
    )
    return FineGrayResult(
        summary=summary,
        coef=b,
        var=var,
        information=info,
        loglik=-f,
        loglik_null=-_neg_loglik(np.zeros_like(b), D),
        n=n,
        n_events=int(fail.size),
        n_competing=int((status == 2).sum()),
        n_censored=int(cen.sum()),
        converged=converged,
        n_iter=n_iter,
        uftime=uft,
        bfitj=bfitj,
        failcode=failcode,
        cencode=cencode,
        conf_level=float(conf_level),
        meaning=meaning_text(event_name),
        warning=warning,
    )


def _singular(names: list[str]) -> ValueError:
    return ValueError(
        f"the information matrix is singular: covariates {names} do not vary within the "
        "risk sets at the failure times (e.g. a level seen only after the last failure or "
        "only among censored patients), so their effects cannot be estimated"
    )
