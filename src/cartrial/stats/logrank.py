"""K-sample log-rank test and its weighted (Fleming–Harrington, Gehan, Tarone–Ware) forms.

At each distinct event time ``t`` (within a stratum), with ``n_t`` at risk of whom
``n_tj`` are in group j, ``d_t`` events of which ``d_tj`` in group j, and weight ``w_t``:

* ``O_j - E_j = sum_t w_t (d_tj - n_tj d_t / n_t)``
* ``V_jl = sum_t w_t^2 d_t (n_t - d_t) / (n_t - 1) * (n_tj / n_t) (delta_jl - n_tl / n_t)``
  (hypergeometric variance; exact for tied event times),

summed over strata for the stratified test.  The statistic is
``U' V^- U`` over the first k-1 groups (a generalised inverse, so the choice of the
dropped group does not matter), chi-square with ``rank(V)`` (normally k-1) degrees of
freedom.  Sources: Mantel (1966), Peto & Peto (1972); Fleming & Harrington,
*Counting Processes and Survival Analysis* (1991), ch. 7; Klein & Moeschberger (2003),
sec. 7.3 and 7.5 (stratified); R survival ``survdiff``.

Weights (``weighting=``):
``"logrank"`` 1 (default);
``"fh"`` Fleming–Harrington G(rho, gamma): ``S(t-)^rho (1 - S(t-))^gamma`` with ``S`` the
Kaplan–Meier estimate of the pooled sample of the stratum (R ``survdiff(rho=)`` is
gamma = 0; lifelines ``weightings="fleming-harrington", p=rho, q=gamma``);
``"gehan-breslow"`` ``n_t`` (generalised Wilcoxon); ``"tarone-ware"`` ``sqrt(n_t)``.
The parameter is called ``weighting`` (not ``weights``) so that it cannot be mistaken
for case weights.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any, Literal, cast

import numpy as np

from cartrial.stats import _kernels as K

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

Weighting = Literal["logrank", "fh", "gehan-breslow", "tarone-ware"]
WEIGHTINGS: tuple[str, ...] = ("logrank", "fh", "gehan-breslow", "tarone-ware")


def chi2_sf(statistic: float, df: int) -> float:
    """Upper tail of the chi-square distribution (NaN when df = 0).

    A negative statistic (possible for Gray's test in degenerate small samples, as R
    cmprsk computes it too) gets p = 1, as R's ``pchisq(stat, df, lower.tail = FALSE)``.
    """
    if df <= 0:
        return float("nan")
    if statistic < 0:
        return 1.0
    from scipy.special import chdtrc

    return float(chdtrc(df, statistic))


def quadratic_form(score: np.ndarray, variance: np.ndarray) -> tuple[float, int]:
    """``U' V^- U`` over all but the last group, and the rank of that V block."""
    u = score[:-1]
    v = variance[:-1, :-1]
    if u.size == 0:
        return 0.0, 0
    scale = float(np.abs(v).max()) if v.size else 0.0
    if scale == 0.0:
        return 0.0, 0
    if v.shape == (1, 1):  # two groups: (O - E)^2 / V
        return float(u[0] * u[0] / v[0, 0]), 1
    rank = int(np.linalg.matrix_rank(v, tol=scale * 1e-10 * v.shape[0]))
    stat = float(u @ np.linalg.pinv(v, rcond=1e-10, hermitian=True) @ u)
    return max(stat, 0.0), rank


@dataclass(frozen=True, eq=False)
class LogRankTest:
    """Result of :func:`logrank_test`; ``summary`` has one row per group."""

    statistic: float
    df: int
    p_value: float
    groups: np.ndarray = field(repr=False)
    n: np.ndarray = field(repr=False)
    observed: np.ndarray = field(repr=False)
    expected: np.ndarray = field(repr=False)
    variance: np.ndarray = field(repr=False)
    weighting: str = "logrank"
    rho: float = 0.0
    gamma: float = 0.0
    n_strata: int = 1

    @cached_property
    def summary(self) -> pd.DataFrame:
        """group, n, observed, expected, o_minus_e, variance (diagonal of V)."""
        import pandas as pd

        return pd.DataFrame(
            {
                "group": self.groups,
                "n": self.n,
                "observed": self.observed,
                "expected": self.expected,
                "o_minus_e": self.observed - self.expected,
                "variance": np.diag(self.variance),
            }
        )


def _stratum_terms(
    counts: K.TimeCounts, weighting: str, rho: float, gamma: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(observed, expected, V) for one stratum from its per-group, per-time counts.

    Arrays are (k, T): one contiguous row per group.
    """
    at_risk = counts.at_risk()
    d = counts.events
    n_t = at_risk.sum(axis=0)
    d_t = d.sum(axis=0)
    w = None
    if weighting == "fh":
        with np.errstate(divide="ignore", invalid="ignore"):
            surv = np.cumprod(1.0 - d_t / n_t)
        s_minus = np.empty_like(surv)
        s_minus[0] = 1.0
        s_minus[1:] = surv[:-1]
        w = s_minus**rho * (1.0 - s_minus) ** gamma
    # Times without events contribute nothing (d_t = 0 zeroes every term), so they stay
    # in place: no gather.
    if weighting == "gehan-breslow":
        w = n_t
    elif weighting == "tarone-ware":
        w = np.sqrt(n_t)
    share = at_risk
    share /= n_t  # n_tj / n_t, in place (at_risk is a fresh array)
    with np.errstate(divide="ignore", invalid="ignore"):
        factor = d_t * (n_t - d_t) / (n_t - 1.0)
    factor[n_t <= 1] = 0.0
    if w is None:
        observed = d.sum(axis=1)
        expected = share @ d_t
        a = factor
    else:
        observed = d @ w
        expected = share @ (w * d_t)
        a = w * w * factor
    weighted = share * a
    variance = np.diag(weighted.sum(axis=1)) - weighted @ share.T
    return observed, expected, variance


def logrank_test(
    time: Any,
    event: Any,
    group: Any,
    strata: Any = None,
    weighting: Weighting = "logrank",
    rho: float = 0.0,
    gamma: float = 0.0,
    weights: Any = None,
) -> LogRankTest:
    """Compare survival of k groups: (stratified, optionally weighted) log-rank test.

    ``group``/``strata``: labels of any hashable type (missing labels raise).
    ``weighting``: ``"logrank"``, ``"fh"`` (with ``rho``, ``gamma`` >= 0),
    ``"gehan-breslow"`` or ``"tarone-ware"``.  ``weights`` is the same choice in one
    argument: None, a weighting name, or ``("fh", rho, gamma)`` — Fleming–Harrington
    G(rho, gamma) weights S(t-)^rho (1 - S(t-))^gamma (Harrington & Fleming 1982).
    ``observed``/``expected`` are the weighted sums (plain event counts for the log-rank
    test), as R ``survdiff``. Formulas and sources in the module docstring.
    """
    if weights is not None:
        if weighting != "logrank" or rho != 0.0 or gamma != 0.0:
            raise ValueError("give either weights= or weighting=/rho=/gamma=, not both")
        if isinstance(weights, str):
            weighting = cast(Weighting, weights)  # checked against WEIGHTINGS below
        elif isinstance(weights, tuple | list) and len(weights) == 3 and weights[0] == "fh":
            weighting, rho, gamma = "fh", float(weights[1]), float(weights[2])
        else:
            raise ValueError(
                f"weights must be None, one of {WEIGHTINGS}, or ('fh', rho, gamma); got {weights!r}"
            )
    if weighting not in WEIGHTINGS:
        raise ValueError(f"weighting must be one of {WEIGHTINGS}, got {weighting!r}")
    if weighting == "fh":
        if not (np.isfinite(rho) and np.isfinite(gamma) and rho >= 0 and gamma >= 0):
            raise ValueError(f"rho and gamma must be >= 0, got rho={rho!r}, gamma={gamma!r}")
    elif rho != 0.0 or gamma != 0.0:
        raise ValueError("rho/gamma apply only to weighting='fh'")
    t = K.check_times(time, "time")
    e = K.check_binary(event, "event")
    g, s = K.check_groups(group, strata, time=t, event=e)
    k = g.levels.size
    sizes = np.zeros(k)
    observed = np.zeros(k)
    expected = np.zeros(k)
    variance = np.zeros((k, k))
    parts = [None] if s is None else K.split_by(s.codes, s.levels.size)
    for rows in parts:
        if rows is None:
            counts = K.count_by_time(t, e, g.codes, k)
        else:
            counts = K.count_by_time(t[rows], e[rows], g.codes[rows], k)
        o, x, v = _stratum_terms(counts, weighting, float(rho), float(gamma))
        sizes += counts.at_start
        observed += o
        expected += x
        variance += v
    statistic, df = quadratic_form(observed - expected, variance)
    return LogRankTest(
        statistic=statistic,
        df=df,
        p_value=chi2_sf(statistic, df),
        groups=g.levels,
        n=sizes.astype(np.int64),
        observed=observed,
        expected=expected,
        variance=variance,
        weighting=weighting,
        rho=float(rho),
        gamma=float(gamma),
        n_strata=1 if s is None else int(s.levels.size),
    )
