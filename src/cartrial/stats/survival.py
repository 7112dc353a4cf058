"""Kaplan–Meier survival curves, their confidence intervals and quantiles; median follow-up.

Formulas and sources
--------------------
* Product-limit estimate (Kaplan & Meier, JASA 1958;53:457):
  ``S(t) = prod_{t_j <= t} (1 - d_j / n_j)`` over the distinct times ``t_j`` with
  ``d_j`` events and ``n_j`` at risk.  Events at a time precede censorings at the same
  time (a subject censored on day t was at risk on day t).
* Greenwood's variance (Greenwood 1926; Kalbfleisch & Prentice 2002, eq. 1.5):
  ``sigma^2(t) = sum_{t_j <= t} d_j / (n_j (n_j - d_j))`` is the variance of
  ``log S(t)``; the standard error of ``S(t)`` is ``S(t) * sigma(t)``.
* Pointwise intervals (Kalbfleisch & Prentice 2002, sec. 1.4; Collett 2015, sec. 2.2):
  ``plain``   ``S +/- z S sigma`` (linear Greenwood; SPSS, R ``conf.type="plain"``),
  ``log``     ``S exp(+/- z sigma)`` (R survival's default),
  ``log-log`` ``S ** exp(+/- z sigma / log S)`` (SAS PROC LIFETEST default, lifelines,
  scikit-survival).  Bounds are clipped to [0, 1].  Where ``S = 1`` (before the first
  event) the interval is (1, 1); where ``S = 0`` it is (0, 0) and the standard error,
  ``0 * inf`` by Greenwood, is reported as missing (NaN), as in statsmodels.
* Quantiles (R survival ``quantile.survfit``): the p-quantile is the first time at
  which ``S(t) <= 1 - p``; where the curve is flat exactly at ``1 - p`` (within
  ``sqrt(machine eps)``) it is the midpoint of the flat (to the next event time, or to
  the last follow-up time when the flat reaches the end).  ``inf`` means "not reached"
  (R prints NA; lifelines reports inf).
* Quantile confidence interval, default ``ci_method="bands"`` (R survival
  ``quantile.survfit``, so that a statistician re-running in R gets the same limits):
  the lower (upper) limit is the quantile, by the same first-time-at-or-below and
  midpoint rules, of the lower (upper) pointwise band curve on this curve's
  ``conf_type`` transform.  R's bands are NA where S = 0 and are skipped; so a limit the
  band never reaches is ``inf`` ("not reached", R prints NA) while the curve stays above
  0, and ``NaN`` (undefined, R's NA) once the curve has reached 0 -- never the time at
  which the curve reaches 0.
  ``ci_method="brookmeyer-crowley"`` (Brookmeyer & Crowley, Biometrics 1982;38:29, with
  the transform of the curve's interval, as SAS PROC LIFETEST and statsmodels
  ``SurvfuncRight.quantile_ci``): the set of event times t at which
  ``|g(S(t)) - g(1 - p)| / se(g(S(t))) <= z``, i.e. where ``1 - p`` lies inside the
  pointwise interval of S(t).  Lower limit = the first event time in the set; upper
  limit = the event time that follows the last one in the set, ``inf`` when the set runs
  to the last event time; both inf if every lower band stays above ``1 - p``; NaN if one
  step jumps across the whole band.  With monotone bands the two rules agree; they
  differ when a band rises again late in follow-up (the plain band often does), where
  the set rule keeps the whole set, and where the curve reaches 0.

Reproducing Tan et al. (J Hematol Oncol 2023;16:34, 20 patients; the bundled ``tan2023``
example): with ``conf_type="plain"``, S(24 months) = 42.3% (95% CI 18.8-65.8) and the
median OS = 18.3 months, as published.  The published median interval 12.5-20.8 months
is not what either rule gives on any transform: plain 12.5-NR, log 12.5-NR, log-log
8.8-NR, by R's band rule and by Brookmeyer-Crowley alike (R survival 3.5 and
statsmodels agree).  The upper band never falls to
0.5 (it ends at 0.66 for plain), so the upper limit is not reached; 20.8 months is the
last event time, which suggests the paper truncated the interval at the last death.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from statistics import NormalDist
from typing import TYPE_CHECKING, Any, Literal, NamedTuple

import numpy as np

from cartrial.stats import _kernels as K

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

ConfType = Literal["log-log", "log", "plain"]
CONF_TYPES: tuple[str, ...] = ("log-log", "log", "plain")
CIMethod = Literal["brookmeyer-crowley", "bands"]
_TOL = float(np.sqrt(np.finfo(float).eps))  # R quantile.survfit's default tolerance


class Estimate(NamedTuple):
    """A point estimate with its confidence limits (scalars or arrays)."""

    estimate: Any
    lower: Any
    upper: Any


def z_value(conf_level: float) -> float:
    """Two-sided standard-normal quantile for ``conf_level`` (0 < conf_level < 1)."""
    if not 0.0 < float(conf_level) < 1.0:
        raise ValueError(f"conf_level must be between 0 and 1 (exclusive), got {conf_level!r}")
    return NormalDist().inv_cdf(0.5 + float(conf_level) / 2.0)


def greenwood_bands(
    surv: np.ndarray, sigma2: np.ndarray, conf_type: str, z: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Standard error of S and pointwise (lower, upper) bounds from Greenwood's sigma^2.

    ``sigma2`` is the Greenwood sum, i.e. Var(log S); see the module docstring for the
    three transforms.  Returns (std_err, lower, upper), bounds clipped to [0, 1].
    """
    if conf_type not in CONF_TYPES:
        raise ValueError(f"conf_type must be one of {CONF_TYPES}, got {conf_type!r}")
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        sigma = np.sqrt(sigma2)
        std_err = surv * sigma
        if conf_type == "plain":
            lower = surv - z * std_err
            upper = surv + z * std_err
        elif conf_type == "log":
            spread = np.exp(z * sigma)
            lower = surv / spread
            upper = surv * spread
        else:
            # S ** exp(+/- z se_g) with se_g = sigma / |log S|, written with one log and
            # two exps instead of two powers
            log_s = np.log(surv)
            spread = np.exp(z * sigma / np.abs(log_s))
            lower = np.exp(log_s * spread)
            upper = np.exp(log_s / spread)
    one = surv >= 1.0
    zero = surv <= 0.0
    std_err[zero] = np.nan
    lower[one] = 1.0
    upper[one] = 1.0
    lower[zero] = 0.0
    upper[zero] = 0.0
    np.clip(lower, 0.0, 1.0, out=lower)
    np.clip(upper, 0.0, 1.0, out=upper)
    return std_err, lower, upper


def _first_at_or_below(curve: np.ndarray, level: float) -> int:
    """Index of the first value <= level, or -1."""
    hits = np.flatnonzero(curve <= level)
    return int(hits[0]) if hits.size else -1


def curve_quantile(times: np.ndarray, curve: np.ndarray, target: float, t_max: float) -> float:
    """Where a non-increasing step curve (values at ``times``) first reaches ``target``.

    R ``quantile.survfit`` rule: first time with ``curve <= target``; a flat exactly at
    ``target`` gives the midpoint of the flat (to ``t_max`` if it runs to the end);
    ``inf`` when never reached.
    """
    j1 = _first_at_or_below(curve, target + _TOL)
    if j1 < 0:
        return float("inf")
    j2 = _first_at_or_below(curve, target - _TOL)
    if j2 == j1:
        return float(times[j1])
    end = t_max if j2 < 0 else float(times[j2])
    return (float(times[j1]) + end) / 2.0


@dataclass(frozen=True, eq=False)
class KaplanMeier:
    """A fitted Kaplan–Meier curve: one row per distinct time (see ``table``).

    Arrays are aligned on ``time``; ``greenwood`` is Var(log S) (Greenwood's sum).
    """

    time: np.ndarray = field(repr=False)
    n_risk: np.ndarray = field(repr=False)
    n_event: np.ndarray = field(repr=False)
    n_censor: np.ndarray = field(repr=False)
    survival: np.ndarray = field(repr=False)
    std_err: np.ndarray = field(repr=False)
    lower: np.ndarray = field(repr=False)
    upper: np.ndarray = field(repr=False)
    greenwood: np.ndarray = field(repr=False)
    conf_type: str = "log-log"
    conf_level: float = 0.95
    n: float = 0.0

    def __repr__(self) -> str:
        return (
            f"KaplanMeier(n={self.n:g}, events={float(self.n_event.sum()):g}, "
            f"times={self.time.size}, conf_type={self.conf_type!r}, "
            f"conf_level={self.conf_level})"
        )

    @cached_property
    def table(self) -> pd.DataFrame:
        """time, n_risk, n_event, n_censor, survival, std_err, lower, upper per distinct time."""
        import pandas as pd

        return pd.DataFrame(  # no copy: the columns are this object's read-only arrays
            {
                "time": self.time,
                "n_risk": self.n_risk,
                "n_event": self.n_event,
                "n_censor": self.n_censor,
                "survival": self.survival,
                "std_err": self.std_err,
                "lower": self.lower,
                "upper": self.upper,
            },
            copy=False,
        )

    @property
    def z(self) -> float:
        return z_value(self.conf_level)

    def _index_at(self, t: Any) -> tuple[np.ndarray, np.ndarray, bool]:
        arr = np.asarray(t, dtype=np.float64)
        scalar = arr.ndim == 0
        arr = np.atleast_1d(arr)
        if np.isnan(arr).any():
            raise ValueError("survival_at: time points must not be NaN")
        return np.searchsorted(self.time, arr, side="right") - 1, arr, scalar

    def survival_at(self, t: Any) -> Estimate:
        """S(t) with its pointwise interval, for a scalar or an array of times.

        Before the first distinct time S = 1 with interval (1, 1).  Beyond the last
        follow-up time the curve is undefined (NaN), unless it has reached 0.
        """
        idx, arr, scalar = self._index_at(t)
        out = []
        last_zero = self.survival.size > 0 and self.survival[-1] <= 0.0
        beyond = arr > self.time[-1]
        for values in (self.survival, self.lower, self.upper):
            v = np.where(idx >= 0, values[np.maximum(idx, 0)], 1.0)
            if not last_zero:
                v = np.where(beyond, np.nan, v)
            out.append(float(v[0]) if scalar else v)
        return Estimate(*out)

    def n_at_risk(self, t: Any) -> Any:
        """Number at risk at time t (subjects with follow-up >= t), e.g. for a risk table."""
        arr = np.atleast_1d(np.asarray(t, dtype=np.float64))
        pos = np.searchsorted(self.time, arr, side="left")
        exits = np.concatenate([[0.0], np.cumsum(self.n_event + self.n_censor)])
        res = self.n - exits[pos]
        return float(res[0]) if np.ndim(t) == 0 else res

    def quantile(self, p: float, ci_method: CIMethod = "bands") -> Estimate:
        """Time by which a fraction ``p`` has had the event (S = 1 - p), with its CI.

        See the module docstring for the point rule (R ``quantile.survfit``) and the two
        interval rules: ``"bands"`` (default; R ``survfit``: where the lower and upper
        pointwise bands cross 1 - p; NaN = undefined where the curve reaches 0 before
        the band crosses, inf = not reached) and ``"brookmeyer-crowley"`` (the set rule).
        """
        if not 0.0 < float(p) < 1.0:
            raise ValueError(f"p must be between 0 and 1 (exclusive), got {p!r}")
        target = 1.0 - float(p)
        rows = np.flatnonzero(self.n_event > 0)
        te = self.time[rows]
        t_max = float(self.time[-1])
        estimate = curve_quantile(te, self.survival[rows], target, t_max)
        lo_band, hi_band = self.lower[rows], self.upper[rows]
        if ci_method == "bands":
            # R quantile.survfit: quantiles of the lower and upper band curves, whose
            # values are NA (dropped) where S = 0.  A limit the band does not reach is
            # "not reached" (inf) while the curve stays above 0, undefined (NaN, R's NA)
            # once the curve has reached 0.
            defined = self.survival[rows] > 0.0
            reaches_zero = bool(self.survival.size) and self.survival[-1] <= 0.0

            def band_quantile(band: np.ndarray) -> float:
                q = curve_quantile(te, np.where(defined, band, np.nan), target, t_max)
                return float("nan") if q == float("inf") and reaches_zero else q

            return Estimate(estimate, band_quantile(lo_band), band_quantile(hi_band))
        if ci_method != "brookmeyer-crowley":
            raise ValueError(
                f"ci_method must be 'brookmeyer-crowley' or 'bands', got {ci_method!r}"
            )
        accepted = np.flatnonzero((lo_band <= target) & (target <= hi_band))
        if accepted.size == 0:
            if te.size == 0 or (lo_band > target).all():
                return Estimate(estimate, float("inf"), float("inf"))
            return Estimate(estimate, float("nan"), float("nan"))
        lower = float(te[accepted[0]])
        last = int(accepted[-1])
        upper = float(te[last + 1]) if last + 1 < te.size else float("inf")
        return Estimate(estimate, lower, upper)

    def median(self, ci_method: CIMethod = "bands") -> Estimate:
        """Median time to event with its interval (R's rule by default; inf = not reached,
        NaN = undefined); ``ci_method="brookmeyer-crowley"`` for the set rule."""
        return self.quantile(0.5, ci_method=ci_method)


def kaplan_meier(
    time: Any,
    event: Any,
    conf_type: ConfType = "log-log",
    conf_level: float = 0.95,
    weights: Any = None,
) -> KaplanMeier:
    """Kaplan–Meier estimate with Greenwood standard errors and pointwise intervals.

    ``time``: follow-up (>= 0, finite); ``event``: 1 = event, 0 = censored;
    ``weights``: optional non-negative case (frequency) weights.  ``conf_type``:
    ``"log-log"`` (SAS, lifelines), ``"log"`` (R default) or ``"plain"`` (SPSS).
    Formulas and sources in the module docstring.  NaN, negative times, or events
    other than 0/1 raise ValueError naming the offending position.
    """
    if conf_type not in CONF_TYPES:
        raise ValueError(f"conf_type must be one of {CONF_TYPES}, got {conf_type!r}")
    z = z_value(conf_level)
    t = K.check_times(time, "time")
    e = K.check_binary(event, "event")
    n = K.check_lengths(time=t, event=e)
    w = K.check_weights(weights, n)
    if w is not None and not w.sum() > 0:
        raise ValueError("weights sum to zero: no subject carries any weight")
    counts = K.count_by_time(t, e, weights=w)
    return _fit_counts(counts, conf_type, float(conf_level), z, integer=w is None)


def _fit_counts(
    counts: K.TimeCounts, conf_type: str, conf_level: float, z: float, integer: bool
) -> KaplanMeier:
    d = counts.events[0]
    c = counts.censored[0]
    n_risk = counts.at_risk()[0]
    with np.errstate(divide="ignore", invalid="ignore"):
        surv = np.cumprod(1.0 - d / n_risk)
        term = d / (n_risk * (n_risk - d))  # 0 where d = 0, inf where all die
    sigma2 = np.cumsum(term)
    std_err, lower, upper = greenwood_bands(surv, sigma2, conf_type, z)
    if integer:
        n_risk, d, c = (a.astype(np.int64) for a in (n_risk, d, c))
    arrays = (counts.times, n_risk, d, c, surv, std_err, lower, upper, sigma2)
    for a in arrays:
        a.flags.writeable = False  # results are immutable; the table shares this memory
    return KaplanMeier(
        *arrays, conf_type=conf_type, conf_level=conf_level, n=float(counts.at_start[0])
    )


def median_followup(
    time: Any,
    event: Any,
    conf_type: ConfType = "log-log",
    conf_level: float = 0.95,
    ci_method: CIMethod = "bands",
) -> Estimate:
    """Median follow-up by the reverse Kaplan–Meier method (Schemper & Smith 1996).

    The censoring indicator is flipped (censored = "event", event = "censored") and the
    median of that curve is returned with its interval (``ci_method`` as
    :meth:`KaplanMeier.quantile`; R's rule by default).  Source:
    Schemper M, Smith TL. Control Clin Trials 1996;17:343-346.
    """
    e = K.check_binary(event, "event")
    km = kaplan_meier(time, ~e, conf_type=conf_type, conf_level=conf_level)
    return km.median(ci_method=ci_method)
