"""Competing risks: Aalen–Johansen cumulative incidence and Gray's K-sample test.

Cumulative incidence (Aalen–Johansen; Kalbfleisch & Prentice 2002, sec. 8.2.2)
-------------------------------------------------------------------------------
``F_k(t) = sum_{t_i <= t} S(t_i-) d_ki / n_i`` with ``S`` the all-cause Kaplan–Meier
estimate, ``d_ki`` events of cause k and ``n_i`` at risk at the distinct time ``t_i``.
So ``sum_k F_k(t) + S(t) = 1`` at every t.

Variance, ``variance=`` (both Greenwood-type, both exact for ties as stated):

* ``"aalen"`` (default) — the estimator R ``cmprsk::cuminc`` reports (Gray's code;
  Aalen 1978, Ann Stat 6:534), with ``S_i = S(t_i)``, ``F = F_k(t)``, ``F_i = F_k(t_i)``,
  ``o_i`` events of the other causes and the tie factor ``h(d) = 1 - (d-1)/(n_i-1)``::

      Var F_k(t) = sum_{t_i <= t} S(t_i-)^2 / n_i^2 * [ h(d_ki) d_ki (1 - (F - F_i)/S_i)^2
                                                       + h(o_i)  o_i  ((F - F_i)/S_i)^2 ]

  (terms with ``S_i = 0`` drop the ``1/S_i`` parts).  Checked against cmprsk 2.2-11.
* ``"delta"`` — the delta-method (Greenwood) estimator of Dinse & Larson (Biometrika
  1986;73:379, eq. 6), Marubini & Valsecchi (1995) and Collett (2015, sec. 12.2), as
  lifelines ``AalenJohansenFitter`` and scikit-survival ``var_type="Dinse_Approx"``::

      Var F_k(t) = sum_{t_i <= t} (F - F_i)^2 d_i / (n_i (n_i - d_i))
                   + S(t_i-)^2 d_ki (n_i - d_ki) / n_i^3
                   - 2 (F - F_i) S(t_i-) d_ki / n_i^2

Intervals are on the log(-log) scale, ``F ** exp(+/- z se / (F log F))`` (as lifelines,
scikit-survival, SAS ``CONFTYPE=LOGLOG`` and R tidycmprsk), so they stay in [0, 1];
(0, 0) before the first event of the cause.

Gray's test (Gray, Ann Stat 1988;16:1141)
-----------------------------------------
Compares the cumulative incidence of one cause across K groups through the
subdistribution hazards ``dF_k / (1 - F_k(t-))``; weight ``(1 - F_0(t-))^rho`` with
``F_0`` the pooled estimate.  The score and its covariance follow the paper's
asymptotic variance in the form computed by R ``cmprsk::cuminc`` (Gray's ``crstm``);
the statistic ``s' V^- s`` is chi-square with K-1 df, strata summed.  This is written
here by hand because no well-kept Python library provides Gray's test (lifelines,
scikit-survival and statsmodels do not); it is checked against cmprsk 2.2-11 output.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from cartrial.stats import _kernels as K
from cartrial.stats.logrank import chi2_sf, quadratic_form
from cartrial.stats.survival import Estimate, z_value

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

Variance = Literal["aalen", "delta"]


def loglog_bands(f: np.ndarray, se: np.ndarray, z: float) -> tuple[np.ndarray, np.ndarray]:
    """Interval for a probability ``f`` on the log(-log) scale, clipped to [0, 1]."""
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        log_f = np.log(f)
        se_g = se / (f * np.abs(log_f))
        lower = f ** np.exp(z * se_g)
        upper = f ** np.exp(-z * se_g)
    zero = f <= 0.0
    one = f >= 1.0
    lower[zero] = 0.0
    upper[zero] = 0.0
    lower[one] = 1.0
    upper[one] = 1.0
    flat = (se <= 0.0) & ~zero & ~one
    lower[flat] = f[flat]
    upper[flat] = f[flat]
    return np.clip(lower, 0.0, 1.0), np.clip(upper, 0.0, 1.0)


def _tie_factor(d: np.ndarray, n: np.ndarray) -> np.ndarray:
    """``1 - (d - 1)/(n - 1)`` for d > 1 (hypergeometric tie correction), else 1."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(d > 1, 1.0 - (d - 1.0) / (n - 1.0), 1.0)


def _cif_variance(
    method: str,
    f: np.ndarray,
    d_k: np.ndarray,
    d_all: np.ndarray,
    n: np.ndarray,
    s_minus: np.ndarray,
    s: np.ndarray,
) -> np.ndarray:
    """Variance of F_k at every distinct time (arrays aligned on distinct times)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        if method == "aalen":
            d_o = d_all - d_k
            base = s_minus**2 / n**2
            a1 = base * _tie_factor(d_k, n) * d_k  # cause-k events
            a2 = np.where(s > 0, base * _tie_factor(d_o, n) * d_o, 0.0)  # other causes
            beta = np.where(s > 0, 1.0 / s, 0.0)
            alpha = 1.0 + f * beta
            gamma = f * beta
            c0 = np.cumsum(a1 * alpha**2 + a2 * gamma**2)
            c1 = np.cumsum(a1 * alpha * beta + a2 * gamma * beta)
            c2 = np.cumsum((a1 + a2) * beta**2)
            var = c0 - 2.0 * f * c1 + f * f * c2
        elif method == "delta":
            a = np.where((d_all > 0) & (n > d_all), d_all / (n * (n - d_all)), 0.0)
            b = np.where(n > 0, s_minus**2 * d_k * (n - d_k) / n**3, 0.0)
            c = np.where(n > 0, s_minus * d_k / n**2, 0.0)
            var = (
                f * f * np.cumsum(a)
                - 2.0 * f * np.cumsum(a * f)
                + np.cumsum(a * f * f)
                + np.cumsum(b)
                - 2.0 * f * np.cumsum(c)
                + 2.0 * np.cumsum(c * f)
            )
        else:
            raise ValueError(f"variance must be 'aalen' or 'delta', got {method!r}")
    return np.maximum(var, 0.0)


@dataclass(frozen=True, eq=False)
class CumulativeIncidence:
    """Aalen–Johansen cumulative incidence of each cause; see ``table`` and ``at``."""

    time: np.ndarray = field(repr=False)
    causes: np.ndarray = field(repr=False)  # (K,) cause codes
    n_risk: np.ndarray = field(repr=False)  # (T,)
    n_event: np.ndarray = field(repr=False)  # (T, K)
    cif: np.ndarray = field(repr=False)  # (T, K)
    std_err: np.ndarray = field(repr=False)
    lower: np.ndarray = field(repr=False)
    upper: np.ndarray = field(repr=False)
    survival: np.ndarray = field(repr=False)  # all-cause KM, (T,)
    conf_level: float = 0.95
    variance: str = "aalen"

    @cached_property
    def table(self) -> pd.DataFrame:
        """Long format: time, cause, n_risk, n_event, cif, std_err, lower, upper."""
        import pandas as pd

        n_t, n_k = self.cif.shape
        return pd.DataFrame(
            {
                "time": np.repeat(self.time, n_k),
                "cause": np.tile(self.causes, n_t),
                "n_risk": np.repeat(self.n_risk, n_k),
                "n_event": self.n_event.ravel(),
                "cif": self.cif.ravel(),
                "std_err": self.std_err.ravel(),
                "lower": self.lower.ravel(),
                "upper": self.upper.ravel(),
            }
        )

    def _column(self, cause: int) -> int:
        hits = np.flatnonzero(self.causes == cause)
        if hits.size == 0:
            raise ValueError(f"cause {cause!r} not observed; causes are {self.causes.tolist()}")
        return int(hits[0])

    def at(self, t: Any, cause: int) -> Estimate:
        """F_cause(t) with its interval at scalar or array times (0 before the first time).

        Beyond the last follow-up time the estimate is undefined (NaN) unless every
        subject has had an event by then.
        """
        j = self._column(cause)
        arr = np.atleast_1d(np.asarray(t, dtype=np.float64))
        if np.isnan(arr).any():
            raise ValueError("at: time points must not be NaN")
        idx = np.searchsorted(self.time, arr, side="right") - 1
        ended = self.survival[-1] <= 0.0
        out = []
        for values in (self.cif[:, j], self.lower[:, j], self.upper[:, j]):
            v = np.where(idx >= 0, values[np.maximum(idx, 0)], 0.0)
            if not ended:
                v = np.where(arr > self.time[-1], np.nan, v)
            out.append(float(v[0]) if np.ndim(t) == 0 else v)
        return Estimate(*out)


def cumulative_incidence(
    time: Any, cause: Any, conf_level: float = 0.95, variance: Variance = "aalen"
) -> CumulativeIncidence:
    """Aalen–Johansen cumulative incidence for each cause (``cause``: 0 = censored, 1..K).

    Variance (``"aalen"``: cmprsk's; ``"delta"``: lifelines/Dinse–Larson) and the
    log(-log) interval are described in the module docstring.
    """
    if variance not in ("aalen", "delta"):
        raise ValueError(f"variance must be 'aalen' or 'delta', got {variance!r}")
    z = z_value(conf_level)
    t = K.check_times(time, "time")
    c = K.check_codes(cause, "cause")
    K.check_lengths(time=t, cause=c)
    fac = K.factorize(c, "cause")
    counts = K.count_by_time(t, c > 0, fac.codes, fac.levels.size)
    has_censor = fac.levels[0] == 0
    ev = (counts.events[1:] if has_censor else counts.events).T
    causes = fac.levels[1:] if has_censor else fac.levels
    n = counts.at_risk().sum(axis=0)
    d_all = ev.sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        s = np.cumprod(1.0 - d_all / n)
    s_minus = np.concatenate([[1.0], s[:-1]])
    f = np.cumsum(s_minus[:, None] * ev / n[:, None], axis=0)
    se = np.empty_like(f)
    for j in range(f.shape[1]):
        se[:, j] = np.sqrt(_cif_variance(variance, f[:, j], ev[:, j], d_all, n, s_minus, s))
    lower, upper = loglog_bands(f, se, z)
    return CumulativeIncidence(
        time=counts.times,
        causes=np.asarray(causes),
        n_risk=n.astype(np.int64),
        n_event=ev.astype(np.int64),
        cif=f,
        std_err=se,
        lower=lower,
        upper=upper,
        survival=s,
        conf_level=float(conf_level),
        variance=variance,
    )


# --------------------------------------------------------------------------- Gray's test


@dataclass(frozen=True, eq=False)
class GrayTest:
    """Result of :func:`gray_test` (score ``s`` and covariance ``variance`` per group)."""

    statistic: float
    df: int
    p_value: float
    groups: np.ndarray = field(repr=False)
    score: np.ndarray = field(repr=False)
    variance: np.ndarray = field(repr=False)
    cause_of_interest: int = 1
    rho: float = 0.0


def _gray_stratum(
    at_risk: np.ndarray, d1: np.ndarray, d2: np.ndarray, rho: float
) -> tuple[np.ndarray, np.ndarray]:
    """Gray's score (K,) and covariance (K, K) for one stratum.

    Inputs are (T, K) arrays over the stratum's distinct times: number at risk, events
    of the cause of interest, events of other causes.  Notation follows Gray (1988):
    per group the all-cause KM ``S_k``, the cause's CIF ``F_k``, ``h_k = n_k / S_k(t-)``
    and the subdistribution risk set ``R_k = h_k (1 - F_k(t-))``.
    """
    rows = np.flatnonzero((d1 + d2).sum(axis=1) > 0)
    rs, d1, d2 = at_risk[rows], d1[rows], d2[rows]
    n_groups = rs.shape[1]
    active = rs > 0
    with np.errstate(divide="ignore", invalid="ignore"):
        s_k = np.cumprod(np.where(active, 1.0 - (d1 + d2) / rs, 1.0), axis=0)
        s_km = np.vstack([np.ones((1, n_groups)), s_k[:-1]])  # S_k(t-)
        f_k = np.cumsum(np.where(active, s_km * d1 / rs, 0.0), axis=0)
        f_km = np.vstack([np.zeros((1, n_groups)), f_k[:-1]])  # F_k(t-)
        h = np.where(active, rs / s_km, 0.0)
    nd1 = d1.sum(axis=1)
    h_tot = h.sum(axis=1)
    r_tot = (h * (1.0 - f_km)).sum(axis=1)
    f0 = np.cumsum(nd1 / h_tot)  # pooled F_0(t)
    f0m = np.concatenate([[0.0], f0[:-1]])  # F_0(t-)
    wt = (1.0 - f0m) ** rho
    score = (wt[:, None] * (d1 - nd1[:, None] * h * (1.0 - f_km) / r_tot[:, None])).sum(axis=0)

    # a_t = w (diag(h) - h h' / sum h); c_t accumulates a_t dF_0 / (1 - F_0(t-)).
    a = wt[:, None, None] * (
        h[:, :, None] * np.eye(n_groups)[None]
        - h[:, :, None] * h[:, None, :] / h_tot[:, None, None]
    )
    with np.errstate(divide="ignore", invalid="ignore"):
        step = np.where(nd1 > 0, nd1 / (h_tot * (1.0 - f0m)), 0.0)
    c = np.cumsum(a * step[:, None, None], axis=0)
    surv_ok = s_k > 0
    with np.errstate(divide="ignore", invalid="ignore"):
        # events of the cause of interest
        t4 = np.where(surv_ok, 1.0 - (1.0 - f0)[:, None] / s_k, 1.0)
        tie1 = np.where(
            nd1[:, None] > 1, 1.0 - (nd1[:, None] - 1.0) / (h_tot[:, None] * s_km - 1.0), 1.0
        )
        t3 = np.where(
            active & (nd1[:, None] > 0), tie1 * s_km * nd1[:, None] / (h_tot[:, None] * rs), 0.0
        )
        g = a - t4[:, None, :] * c
        # events of the other causes
        u4 = np.where(surv_ok, (1.0 - f0)[:, None] / s_k, 0.0)
        u3 = np.where(surv_ok & (d2 > 0), _tie_factor(d2, rs) * s_km**2 * d2 / rs**2, 0.0)
    u3 = np.nan_to_num(u3)
    t3 = np.nan_to_num(t3)
    hh = u4[:, None, :] * c
    var = np.einsum("tik,tjk,tk->ij", g, g, t3) + np.einsum("tik,tjk,tk->ij", hh, hh, u3)
    v2 = np.einsum("tik,tk->ik", g, t4 * t3) - np.einsum("tik,tk->ik", hh, u4 * u3)
    v3 = (t4**2 * t3 + u4**2 * u3).sum(axis=0)
    c_end = c[-1] if c.shape[0] else np.zeros((n_groups, n_groups))
    var += (c_end * v3[None, :]) @ c_end.T + c_end @ v2.T + v2 @ c_end.T
    return score, var


def gray_test(
    time: Any,
    cause: Any,
    group: Any,
    cause_of_interest: int = 1,
    strata: Any = None,
    rho: float = 0.0,
) -> GrayTest:
    """Gray's (1988) K-sample test for equal cumulative incidence of one cause.

    ``cause``: 0 = censored, other integers = causes; all causes other than
    ``cause_of_interest`` compete.  ``rho``: weight ``(1 - F_0(t-))^rho`` (cmprsk's
    default 0).  Details and sources in the module docstring.
    """
    if not (np.isfinite(rho) and rho >= 0):
        raise ValueError(f"rho must be >= 0, got {rho!r}")
    t = K.check_times(time, "time")
    c = K.check_codes(cause, "cause")
    g, st = K.check_groups(group, strata, time=t, cause=c)
    n_groups = g.levels.size
    if not (c == cause_of_interest).any():
        raise ValueError(f"cause_of_interest={cause_of_interest!r} does not occur in cause")
    other = (c > 0) & (c != cause_of_interest)
    code = g.codes * 2 + other
    score = np.zeros(n_groups)
    var = np.zeros((n_groups, n_groups))
    parts = [None] if st is None else K.split_by(st.codes, st.levels.size)
    for rows in parts:
        sel = slice(None) if rows is None else rows
        counts = K.count_by_time(t[sel], c[sel] > 0, code[sel], 2 * n_groups)
        rs = counts.at_risk().reshape(n_groups, 2, -1).sum(axis=1).T
        ev = counts.events.reshape(n_groups, 2, -1)
        s, v = _gray_stratum(rs, ev[:, 0, :].T, ev[:, 1, :].T, float(rho))
        score += s
        var += v
    statistic, df = quadratic_form(score, var)
    return GrayTest(
        statistic=statistic,
        df=df,
        p_value=chi2_sf(statistic, df),
        groups=g.levels,
        score=score,
        variance=var,
        cause_of_interest=int(cause_of_interest),
        rho=float(rho),
    )
