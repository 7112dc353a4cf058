"""Comparisons by an event after the time origin, without immortal-time bias.

Comparing survival by an exposure that happens after the time origin (consolidation SCT
after CAR-T infusion, a CRS grade, a response) from day 0 credits the exposed group with
the time they had to survive to be exposed (immortal time; Anderson, Cain & Gelber,
J Clin Oncol 1983;1:710).  The methods here avoid it:

* :func:`counting_process` splits follow-up at the exposure day into ``(start, stop]``
  rows (R ``survival::tmerge(..., tdc(txtime))``), with the same-day conventions of
  survival's ``timedep`` vignette (Therneau, Crowson & Atkinson, "Using time dependent
  covariates and time dependent coefficients in the Cox model", sec. 3).
* :func:`timedep_cox`: Cox model on counting-process rows (R ``coxph(Surv(tstart, tstop,
  event) ~ x)``), Efron or Breslow ties.
* :func:`mantel_byar`: Mantel & Byar (JASA 1974;69:81) score test of a time-dependent
  binary exposure (equals R ``coxph(..., ties = "exact")$score``).
* :func:`simon_makuch`: product-limit curves over the state risk sets (Simon & Makuch,
  Stat Med 1984;3:35; R ``survfit(Surv(tstart, tstop, event) ~ state)``).
* :func:`landmark_analysis`: landmark method (Anderson et al. 1983; Dafni, Circ
  Cardiovasc Qual Outcomes 2011;4:363).

Conventions (``docs/domain/STATISTICS.md``, checked against R survival 3.5): a row
``(start, stop]`` of state z is at risk at event time t when ``start < t <= stop``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from cartrial.stats import _kernels as K
from cartrial.stats.cox import CoxResult, _design
from cartrial.stats.logrank import chi2_sf, logrank_test
from cartrial.stats.survival import (
    CONF_TYPES,
    ConfType,
    KaplanMeier,
    greenwood_bands,
    kaplan_meier,
    z_value,
)

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

    from cartrial.stats.logrank import LogRankTest

Ties = Literal["efron", "breslow"]

# --------------------------------------------------------------------------- input checks


def _exposure_days(exposure_day: Any, n: int) -> np.ndarray:
    """Exposure days as float64 (NaN = never exposed); raises on non-numbers or inf."""
    labels = K._labels(exposure_day)
    arr = K.as_1d(exposure_day, "exposure_day")
    if len(arr) != n:
        raise ValueError(f"exposure_day has length {len(arr)}, expected {n} (one per patient)")
    try:
        x = arr.astype(np.float64)
    except (TypeError, ValueError):
        import pandas as pd

        missing = pd.isna(arr)
        for pos, value in enumerate(arr):
            if missing[pos]:
                continue
            try:
                float(value)
            except (TypeError, ValueError):
                raise ValueError(
                    f"exposure_day{K._where(pos, labels)} = {K._show(value)}: expected a day "
                    "number, or missing (NaN/None) for never exposed"
                ) from None
        x = np.array([np.nan if m else float(v) for v, m in zip(arr, missing, strict=True)])
    if np.isinf(x).any():
        pos = int(np.flatnonzero(np.isinf(x))[0])
        raise ValueError(
            f"exposure_day{K._where(pos, labels)} is infinite: use NaN for never exposed"
        )
    return x


def _intervals(start: Any, stop: Any, event: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Validated counting-process rows: start >= 0, stop > start, event 0/1."""
    a = K.check_times(start, "start").astype(np.float64, copy=False)
    b = K.check_times(stop, "stop").astype(np.float64, copy=False)
    e = K.check_binary(event, "event")
    K.check_lengths(start=a, stop=b, event=e)
    bad = b <= a
    if bad.any():
        pos = int(np.flatnonzero(bad)[0])
        raise ValueError(
            f"row [{pos}]: start = {K._show(a[pos])}, stop = {K._show(b[pos])}; rows are "
            "(start, stop] intervals and need stop > start (see counting_process)"
        )
    return a, b, e


# --------------------------------------------------------------------------- tmerge


def counting_process(
    time: Any,
    event: Any,
    exposure_day: Any,
    id: Any = None,
    same_day_shift: float = 0.5,
    zero_time: float = 0.5,
) -> pd.DataFrame:
    """Split each patient's follow-up at the exposure day: ``(start, stop]`` rows.

    The equivalent of R ``tmerge(base, base, id, event = event(time, status))`` then
    ``tmerge(..., exposure = tdc(exposure_day))``, with the same-day conventions of
    survival's ``timedep`` vignette (sec. 3, the ``jasa`` data):

    * exposure day missing (NaN/None) -> never exposed: one row, exposure 0;
    * exposure on or before day 0 -> exposed from the start: one row, exposure 1;
    * exposure after the end of follow-up -> ignored (one row, exposure 0);
    * exposure on the last day of follow-up (e.g. SCT on the day of death) -> counted as
      happening ``same_day_shift`` (0.5) days earlier, so the event is in the exposed
      state (tmerge alone would ignore it; the vignette shifts ``wait.time`` by 0.5);
    * follow-up of 0 days (event on the day of origin) -> ``zero_time`` (0.5) days, as
      the vignette's ``pmax(.5, futime)`` (a (0, 0] interval is not a valid row).

    Returns a DataFrame with columns ``id`` (when given; else the patient's position),
    ``start``, ``stop``, ``event`` (0/1, on the last row only) and ``exposure`` (0/1),
    sorted by patient then start.
    """
    import pandas as pd

    t = K.check_times(time, "time").astype(np.float64)
    e = K.check_binary(event, "event")
    n = K.check_lengths(time=t, event=e)
    x = _exposure_days(exposure_day, n)
    ids = np.arange(n) if id is None else K.as_1d(id, "id")
    if len(ids) != n:
        raise ValueError(f"id has length {len(ids)}, expected {n}")
    if not (same_day_shift > 0 and zero_time > 0):
        raise ValueError("same_day_shift and zero_time must be > 0")
    t = np.where(t <= 0.0, zero_time, t)
    x = np.where(x == t, np.maximum(t - same_day_shift, 0.0), x)
    known = ~np.isnan(x)
    from_start = known & (x <= 0.0)
    split = known & (x > 0.0) & (x < t)
    reps = 1 + split.astype(np.intp)
    who = np.repeat(np.arange(n), reps)
    first = np.ones(who.size, dtype=bool)
    first[1:] = who[1:] != who[:-1]
    second = ~first  # the exposed part of a split patient
    start = np.zeros(who.size)
    stop = t[who].copy()
    ev = e[who].astype(np.int8)
    expo = from_start[who].astype(np.int8)
    split_first = first & split[who]
    stop[split_first] = x[who][split_first]
    ev[split_first] = 0
    start[second] = x[who][second]
    expo[second] = 1
    out = {"start": start, "stop": stop, "event": ev, "exposure": expo}
    if id is not None:
        out = {"id": ids[who], **out}
    else:
        out = {"id": who, **out}
    return pd.DataFrame(out)


# --------------------------------------------------------------------------- risk sets


@dataclass(frozen=True)
class _RiskSets:
    """Sort structure for counting-process risk sets at the distinct event times.

    A row is at risk at t when start < t <= stop, so the risk-set sum of any row value v
    is ``sum(v[stop >= t]) - sum(v[start >= t])`` (a row with start >= t has stop > t):
    two tail sums read from reverse cumulative sums in stop and start order.
    """

    times: np.ndarray  # distinct event times
    d: np.ndarray  # events per time
    ev_rows: np.ndarray  # event rows, grouped by time
    ev_first: np.ndarray  # start of each time's group in ev_rows
    stop_order: np.ndarray
    start_order: np.ndarray
    at_stop: np.ndarray  # first position in stop order with stop >= t
    at_start: np.ndarray  # first position in start order with start >= t

    @classmethod
    def build(cls, start: np.ndarray, stop: np.ndarray, event: np.ndarray) -> _RiskSets:
        ev_rows = np.flatnonzero(event)
        ev_rows = ev_rows[np.argsort(stop[ev_rows], kind="stable")]
        ev_t = stop[ev_rows]
        new = np.ones(ev_t.size, dtype=bool)
        new[1:] = ev_t[1:] != ev_t[:-1]
        ev_first = np.flatnonzero(new)
        times = ev_t[ev_first]
        d = np.diff(np.append(ev_first, ev_t.size))
        stop_order = np.argsort(stop, kind="stable")
        start_order = np.argsort(start, kind="stable")
        return cls(
            times=times,
            d=d,
            ev_rows=ev_rows,
            ev_first=ev_first,
            stop_order=stop_order,
            start_order=start_order,
            at_stop=np.searchsorted(stop[stop_order], times, side="left"),
            at_start=np.searchsorted(start[start_order], times, side="left"),
        )

    def sums(self, values: np.ndarray) -> np.ndarray:
        """Risk-set sums of ``values`` (rows x columns) at each event time."""

        def tails(order: np.ndarray) -> np.ndarray:
            v = values[order[::-1]]
            out = np.empty((v.shape[0] + 1, *v.shape[1:]))
            out[0] = 0.0
            np.cumsum(v, axis=0, out=out[1:])
            return out[::-1]  # out[i] = sum of values[order[i:]]

        return tails(self.stop_order)[self.at_stop] - tails(self.start_order)[self.at_start]

    def event_sums(self, values: np.ndarray) -> np.ndarray:
        """Sums of ``values`` over the event rows of each distinct event time."""
        return np.add.reduceat(values[self.ev_rows], self.ev_first, axis=0)


# --------------------------------------------------------------------------- Cox engine

# Hand-written Newton-Raphson for counting-process Cox models, vectorised over the sorted
# event times.  Why not a library: statsmodels PHReg(entry=) counts a row as at risk at
# t = entry, unlike R (it differs whenever an entry equals an event time, which is the
# rule with day-resolution split data), and lifelines' CoxTimeVaryingFitter is slow (see
# benchmarks/bench_timedep.py); each iteration here is a few cumulative sums.


@dataclass(frozen=True)
class _CoxFit:
    coef: np.ndarray
    var: np.ndarray
    loglik: float
    loglik_null: float
    score: np.ndarray
    n_iter: int
    converged: bool
    infinite: np.ndarray  # R coxph's "coefficient may be infinite" flags
    note: str | None


def _cox_terms(
    beta: np.ndarray, X: np.ndarray, rs: _RiskSets, ties: str
) -> tuple[float, np.ndarray, np.ndarray]:
    """Log partial likelihood, score and information at ``beta`` (X centred)."""
    n, p = X.shape
    eta = X @ beta
    w = np.exp(eta)
    wx = w[:, None] * X
    wxx = (wx[:, :, None] * X[:, None, :]).reshape(n, p * p)
    M = np.concatenate([w[:, None], wx, wxx], axis=1)
    S = rs.sums(M)
    E = rs.event_sums(M)
    d = rs.d
    if ties == "efron" and (d > 1).any():
        kk = np.repeat(np.arange(d.size), d)
        f = (np.arange(kk.size) - np.repeat(np.append(0, np.cumsum(d)[:-1]), d)) / np.repeat(d, d)
        den = S[kk] - f[:, None] * E[kk]
        mult = None
    else:  # Breslow (or no ties): each event at t_j sees the full risk set
        den = S
        mult = d.astype(np.float64)
    den0 = den[:, 0]
    a = den[:, 1 : 1 + p] / den0[:, None]
    b = den[:, 1 + p :].reshape(-1, p, p) / den0[:, None, None]
    with np.errstate(divide="ignore", invalid="ignore"):
        logden = np.log(den0)
    if mult is None:
        ll = float(eta[rs.ev_rows].sum() - logden.sum())
        score = X[rs.ev_rows].sum(axis=0) - a.sum(axis=0)
        info = b.sum(axis=0) - a.T @ a
    else:
        ll = float(eta[rs.ev_rows].sum() - mult @ logden)
        score = X[rs.ev_rows].sum(axis=0) - mult @ a
        info = np.tensordot(mult, b, axes=1) - (a * mult[:, None]).T @ a
    return ll, score, info


def _cox_newton(
    X: np.ndarray, rs: _RiskSets, ties: str, max_iter: int = 50, eps: float = 1e-12
) -> _CoxFit:
    """Newton-Raphson with step halving (as R ``coxph.fit``), iterated to convergence."""
    p = X.shape[1]
    beta = np.zeros(p)
    ll, score, info = _cox_terms(beta, X, rs, ties)
    ll0 = ll
    converged, note, it = False, None, 0
    for it in range(1, max_iter + 1):  # noqa: B007 - it is reported
        try:
            step = np.linalg.solve(info, score)
        except np.linalg.LinAlgError:
            note = "the information matrix is singular (collinear covariates?)"
            break
        new = beta + step
        ll_new, s_new, i_new = _cox_terms(new, X, rs, ties)
        halvings = 0
        while not (np.isfinite(ll_new) and ll_new >= ll - 1e-12 * abs(ll)) and halvings < 30:
            step = step / 2.0
            new = beta + step
            ll_new, s_new, i_new = _cox_terms(new, X, rs, ties)
            halvings += 1
        if not np.isfinite(ll_new):
            note = "the log-likelihood is not finite"
            break
        done = abs(ll_new - ll) <= eps * max(1.0, abs(ll_new)) or np.max(np.abs(step)) < 1e-12
        beta, ll, score, info = new, ll_new, s_new, i_new
        if done:
            converged = True
            break
    try:
        var = np.linalg.inv(info)
    except np.linalg.LinAlgError:
        var = np.full((p, p), np.nan)
        note = note or "the information matrix is singular"
    # R coxph.fit: a coefficient whose one-step change u'V is still large at
    # convergence "may be infinite" (monotone likelihood).
    infs = np.abs(score @ var)
    infinite = (infs > 1e-9) & (infs > np.sqrt(1e-9) * np.abs(beta))
    if not converged and note is None:
        note = f"did not converge in {max_iter} iterations"
    return _CoxFit(beta, var, ll, ll0, score, it, converged, infinite, note)


def _cox_result(
    fit: _CoxFit,
    names: list[str],
    means: np.ndarray,
    n: int,
    n_events: int,
    ties: str,
    conf_level: float,
    n_rows: int | None = None,
) -> CoxResult:
    import pandas as pd
    from scipy.special import ndtr

    z = z_value(conf_level)
    coef = fit.coef
    se = np.sqrt(np.diag(fit.var))
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        zstat = coef / se
        summary = pd.DataFrame(
            {
                "covariate": names,
                "coef": coef,
                "hr": np.exp(coef),
                "se": se,
                "z": zstat,
                "p": 2.0 * ndtr(-np.abs(zstat)),
                "lower": np.exp(coef - z * se),
                "upper": np.exp(coef + z * se),
            }
        )
    monotone = bool(fit.infinite.any())
    warning = fit.note
    if monotone:
        which = ", ".join(repr(names[i]) for i in np.flatnonzero(fit.infinite))
        warning = (
            f"monotone likelihood for {which}: the log-likelihood keeps increasing as the "
            "coefficient goes to +/- infinity (typically a group with no events), so the "
            "hazard ratio and its interval are not estimable; Firth's penalised likelihood "
            "(Heinze & Schemper 2001) gives a finite estimate: cox_ph(..., method='firth') "
            "for covariates fixed at baseline"
        )
    return CoxResult(
        summary=summary,
        n=n,
        n_events=n_events,
        log_likelihood=fit.loglik,
        ties=ties,
        conf_level=float(conf_level),
        converged=fit.converged and not monotone,
        monotone=monotone,
        warning=warning,
        n_rows=n_rows,
        log_likelihood_null=fit.loglik_null,
        n_iter=fit.n_iter,
    )


def _covariate_matrix(covariates: Any, n: int) -> tuple[np.ndarray, list[str]]:
    """Numeric design from a DataFrame / 2-D array / 1-D array; names; checks."""
    import pandas as pd

    if isinstance(covariates, pd.Series):
        covariates = covariates.to_frame(covariates.name if covariates.name is not None else "x")
    if isinstance(covariates, pd.DataFrame):
        if covariates.isna().to_numpy().any():
            row, col = np.argwhere(covariates.isna().to_numpy())[0]
            raise ValueError(
                f"covariates row {covariates.index[row]!r}, column {covariates.columns[col]!r} "
                "is missing: drop incomplete rows first (complete-case analysis)"
            )
        design = _design(covariates, list(covariates.columns))
        X, names = design.to_numpy(dtype=np.float64), [str(c) for c in design.columns]
    else:
        X = np.asarray(covariates, dtype=np.float64)
        if X.ndim == 1:
            X = X[:, None]
        if X.ndim != 2:
            raise ValueError(f"covariates must be 1-D or 2-D, got shape {X.shape}")
        names = [f"x{i + 1}" for i in range(X.shape[1])] if X.shape[1] > 1 else ["x"]
        if np.isnan(X).any():
            row, col = np.argwhere(np.isnan(X))[0]
            raise ValueError(f"covariates[{row}, {col}] is missing (NaN)")
    if X.shape[0] != n:
        raise ValueError(f"covariates have {X.shape[0]} rows, expected {n}")
    if X.shape[1] == 0:
        raise ValueError("covariates must have at least one column")
    return X, names


def timedep_cox(
    start: Any,
    stop: Any,
    event: Any,
    covariates: Any,
    ties: Ties = "efron",
    conf_level: float = 0.95,
    id: Any = None,
) -> CoxResult:
    """Cox model on counting-process rows ``(start, stop]`` (time-varying covariates).

    Equals R ``coxph(Surv(tstart, tstop, event) ~ x, ties = ties)`` (Efron default; or
    Breslow): Cox partial likelihood with risk set ``start < t <= stop`` at each event
    time t (Andersen & Gill, Ann Stat 1982;10:1100; Therneau & Grambsch 2000, ch. 3).
    ``covariates``: DataFrame (categorical columns become indicators, as
    :func:`cox_ph`), 2-D array or 1-D array (one covariate named ``x``).  ``id`` only
    counts patients (``n``); ``n_rows`` is the number of rows.  Wald SE, z, p and
    interval.  Degenerate input: no events or a constant covariate raise ValueError;
    monotone likelihood (a state with no events) returns ``monotone=True``,
    ``converged=False`` and a ``warning``.
    """
    if ties not in ("efron", "breslow"):
        raise ValueError(f"ties must be 'efron' or 'breslow', got {ties!r}")
    a, b, e = _intervals(start, stop, event)
    n_rows = a.size
    X, names = _covariate_matrix(covariates, n_rows)
    n_events = int(e.sum())
    K.check_design(X, names, n_events, "event")
    means = X.mean(axis=0)
    rs = _RiskSets.build(a, b, e)
    fit = _cox_newton(X - means, rs, ties)
    n = n_rows if id is None else int(np.unique(K.as_1d(id, "id")).size)
    return _cox_result(fit, names, means, n, n_events, ties, conf_level, n_rows=n_rows)


# --------------------------------------------------------------------------- Mantel-Byar


@dataclass(frozen=True, eq=False)
class MantelByarTest:
    """Mantel–Byar test: U = observed - expected events in the exposed state, V, U^2/V."""

    statistic: float
    df: int
    p_value: float
    U: float
    V: float
    observed: float  # events in the exposed state
    expected: float
    n_events: int


def _state_counts(
    a: np.ndarray, b: np.ndarray, e: np.ndarray, z: np.ndarray
) -> tuple[_RiskSets, np.ndarray, np.ndarray, np.ndarray]:
    """Risk sets, number at risk in state 1 and overall, events in state 1 per event time."""
    rs = _RiskSets.build(a, b, e)
    cols = np.stack([np.ones(a.size), z.astype(np.float64)], axis=1)
    at_risk = rs.sums(cols)
    d1 = rs.event_sums(cols)[:, 1]
    return rs, at_risk[:, 0], at_risk[:, 1], d1


def mantel_byar(start: Any, stop: Any, event: Any, exposure: Any) -> MantelByarTest:
    """Mantel–Byar test of a time-dependent binary exposure on counting-process rows.

    At each distinct event time t_j with n_j at risk (n_1j exposed: rows with
    ``start < t_j <= stop`` and exposure 1), d_j events (d_1j exposed):
    ``U = sum(d_1j - d_j n_1j / n_j)``,
    ``V = sum(d_j (n_j - d_j) / (n_j - 1) * n_1j n_0j / n_j^2)``, ``chi2 = U^2 / V`` on 1 df
    (Mantel & Byar, JASA 1974;69:81).  Equals R ``coxph(Surv(tstart, tstop, event) ~
    exposure, ties = "exact")$score`` and statsmodels ``survdiff(stop, event, exposure,
    entry=start)``.  Its curves are :func:`simon_makuch`.
    """

    a, b, e = _intervals(start, stop, event)
    z = K.check_binary(exposure, "exposure")
    K.check_lengths(start=a, exposure=z)
    if not e.any():
        raise ValueError("no events: the Mantel–Byar test needs at least one event")
    rs, n, n1, d1 = _state_counts(a, b, e, z)
    d = rs.d.astype(np.float64)
    expected = d * n1 / n
    with np.errstate(divide="ignore", invalid="ignore"):
        factor = np.where(n > 1, d * (n - d) / (n - 1.0), 0.0)
    V = float(np.sum(factor * n1 * (n - n1) / (n * n)))
    U = float(d1.sum() - expected.sum())
    stat = U * U / V if V > 0 else float("nan")
    return MantelByarTest(
        statistic=stat,
        df=1,
        p_value=chi2_sf(stat, 1) if V > 0 else float("nan"),
        U=U,
        V=V,
        observed=float(d1.sum()),
        expected=float(expected.sum()),
        n_events=int(e.sum()),
    )


# --------------------------------------------------------------------------- Simon-Makuch


@dataclass(frozen=True, eq=False, repr=False)
class CountingKaplanMeier(KaplanMeier):
    """Product-limit curve over counting-process risk sets (delayed entry, state changes).

    Same arrays and methods as :class:`KaplanMeier`; ``n_at_risk`` counts rows with
    ``start < t <= stop`` (patients enter the curve at their transition).
    """

    start: np.ndarray = field(default=None, repr=False)  # type: ignore[arg-type]
    stop: np.ndarray = field(default=None, repr=False)  # type: ignore[arg-type]

    def n_at_risk(self, t: Any) -> Any:
        arr = np.atleast_1d(np.asarray(t, dtype=np.float64))
        s_stop, s_start = np.sort(self.stop), np.sort(self.start)
        res = (self.stop.size - np.searchsorted(s_stop, arr, side="left")) - (
            self.start.size - np.searchsorted(s_start, arr, side="left")
        )
        res = res.astype(np.float64)
        return float(res[0]) if np.ndim(t) == 0 else res


def _counting_km(
    a: np.ndarray, b: np.ndarray, e: np.ndarray, conf_type: str, conf_level: float
) -> CountingKaplanMeier:
    """Product-limit estimate on (start, stop] rows; one row per distinct stop time."""
    times, inverse = np.unique(b, return_inverse=True)
    d = np.bincount(inverse, weights=e, minlength=times.size)
    ends = np.bincount(inverse, minlength=times.size).astype(np.float64)
    s_start = np.sort(a)
    s_stop = np.sort(b)
    n_risk = (b.size - np.searchsorted(s_stop, times, side="left")) - (
        a.size - np.searchsorted(s_start, times, side="left")
    )
    n_risk = n_risk.astype(np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        surv = np.cumprod(1.0 - d / n_risk)
        term = np.where(d > 0, d / (n_risk * (n_risk - d)), 0.0)
    sigma2 = np.cumsum(term)
    std_err, lower, upper = greenwood_bands(surv, sigma2, conf_type, z_value(conf_level))
    arrays = (
        times,
        n_risk.astype(np.int64),
        d.astype(np.int64),
        (ends - d).astype(np.int64),
        surv,
        std_err,
        lower,
        upper,
        sigma2,
    )
    for arr in arrays:
        arr.flags.writeable = False
    return CountingKaplanMeier(
        *arrays,
        conf_type=conf_type,
        conf_level=float(conf_level),
        n=float(a.size),
        start=a,
        stop=b,
    )


@dataclass(frozen=True, eq=False)
class SimonMakuch:
    """Simon–Makuch curves: ``fits[0]`` (not yet exposed) and ``fits[1]`` (exposed).

    ``caption`` says what the curves are (and are not); ``test`` is the Mantel–Byar test
    on the same rows.
    """

    fits: dict[int, CountingKaplanMeier] = field(repr=False)
    test: MantelByarTest
    landmark: float
    caption: str

    @cached_property
    def table(self) -> pd.DataFrame:
        """state, time, n_risk, n_event, n_censor, survival, std_err, lower, upper."""
        import pandas as pd

        parts = [fit.table.assign(state=s) for s, fit in self.fits.items()]
        out = pd.concat(parts, ignore_index=True)
        return out[["state", *[c for c in out.columns if c != "state"]]]

    def survival_at(self, t: Any) -> dict[int, Any]:
        """S(t) with interval for each state: {state: Estimate}."""
        return {s: fit.survival_at(t) for s, fit in self.fits.items()}


SIMON_MAKUCH_CAPTION = (
    "Simon–Makuch curves: product-limit estimates over the patients at risk in each state "
    "at each time (patients move from the 'not exposed' to the 'exposed' curve on their "
    "exposure day). They are not the survival of any real group of patients; their test "
    "is the Mantel–Byar test, not a log-rank test on groups fixed at day 0."
)


def simon_makuch(
    start: Any,
    stop: Any,
    event: Any,
    exposure: Any,
    landmark: float = 0.0,
    conf_type: ConfType = "log-log",
    conf_level: float = 0.95,
) -> SimonMakuch:
    """Simon–Makuch product-limit curves by time-dependent exposure state.

    Risk set of state g at event time t: rows with exposure g and ``start < t <= stop``
    (Simon & Makuch, Stat Med 1984;3:35); equals R ``survfit(Surv(tstart, tstop, event)
    ~ exposure)`` on :func:`counting_process` rows.  ``landmark`` L > 0 conditions on
    being event-free just before L, as R ``survfit(..., start.time = L)``: rows ending
    before L are dropped, the curves start at L (an event on day L counts) and times stay
    on the original scale; ``test`` is the Mantel–Byar test on the same rows.
    Greenwood variance and the ``conf_type`` interval of :func:`kaplan_meier`.
    """
    if conf_type not in CONF_TYPES:
        raise ValueError(f"conf_type must be one of {CONF_TYPES}, got {conf_type!r}")
    a, b, e = _intervals(start, stop, event)
    z = K.check_binary(exposure, "exposure")
    K.check_lengths(start=a, exposure=z)
    L = float(landmark)
    if not np.isfinite(L) or L < 0:
        raise ValueError(f"landmark must be a finite time >= 0, got {landmark!r}")
    if L > 0:
        keep = b >= L
        a, b, e, z = a[keep], b[keep], e[keep], z[keep]
        if a.size == 0:
            raise ValueError(f"nobody is under follow-up after the landmark {L:g}")
    fits = {}
    for state in (0, 1):
        rows = z == bool(state)
        if rows.any():
            fits[state] = _counting_km(a[rows], b[rows], e[rows], conf_type, conf_level)
    if len(fits) < 2:
        missing = "exposed" if 1 not in fits else "unexposed"
        raise ValueError(f"no {missing} follow-up: Simon–Makuch needs both states")
    return SimonMakuch(
        fits=fits, test=mantel_byar(a, b, e, z), landmark=L, caption=SIMON_MAKUCH_CAPTION
    )


# --------------------------------------------------------------------------- landmark


@dataclass(frozen=True, eq=False)
class LandmarkResult:
    """Landmark analysis: groups fixed by exposure status at the landmark day.

    ``km[0]``/``km[1]``: Kaplan–Meier from the landmark (time re-zeroed at L) for the
    patients not exposed / exposed by L; ``logrank``: log-rank test; ``cox``: Cox model
    of ``exposed`` (HR exposed vs not, Efron); ``data``: the landmark dataset (``id``,
    ``time`` since L, ``event``, ``exposed``).
    """

    landmark: float
    landmark_source: str
    rule: str
    n: int
    n_included: int
    n_excluded_event: int
    n_excluded_censored: int
    n_exposed: int
    n_unexposed: int
    km: dict[int, KaplanMeier] = field(repr=False)
    logrank: LogRankTest = field(repr=False)
    cox: CoxResult = field(repr=False)
    data: pd.DataFrame = field(repr=False)

    @property
    def hr(self) -> tuple[float, float, float]:
        """Hazard ratio exposed vs not exposed by the landmark, with its interval."""
        row = self.cox.summary.iloc[0]
        return float(row["hr"]), float(row["lower"]), float(row["upper"])


def default_landmark(time: Any, exposure_day: Any) -> tuple[float, str]:
    """Median exposure day among the patients exposed during follow-up, and a sentence.

    (Exposure after the end of follow-up does not count; the median of an even number
    is the mean of the two middle days.)
    """
    t = K.check_times(time, "time").astype(np.float64)
    x = _exposure_days(exposure_day, t.size)
    seen = ~np.isnan(x) & (x <= t)
    if not seen.any():
        raise ValueError(
            "no patient was exposed during follow-up: give landmark= explicitly "
            "(the default is the median exposure day among the exposed)"
        )
    days = x[seen]
    L = float(np.median(days))
    return L, (
        f"median exposure day among the {days.size} patients exposed during follow-up "
        f"(range {days.min():g}–{days.max():g})"
    )


def landmark_analysis(
    time: Any,
    event: Any,
    exposure_day: Any,
    landmark: float | None = None,
    id: Any = None,
    include_event_at_landmark: bool = False,
    conf_type: ConfType = "log-log",
    conf_level: float = 0.95,
) -> LandmarkResult:
    """Landmark analysis (Anderson, Cain & Gelber, J Clin Oncol 1983;1:710; Dafni 2011).

    ``landmark`` L defaults to the median exposure day among the patients exposed during
    follow-up (:func:`default_landmark`; stated in ``landmark_source``).  Patients with
    time <= L (event or censoring on or before day L) are excluded and counted
    (``n_excluded_event``, ``n_excluded_censored``); the others are grouped by exposure
    status at L (``exposure_day <= L``; later exposures ignored) and followed from L
    (time - L).  Rule for an event exactly on day L: by default the patient is excluded
    (the event is not after the landmark); ``include_event_at_landmark=True`` keeps
    patients with time == L and event, as an event at time 0 after L (R: ``subset(d,
    time >= L)``).  The rule in words is in ``rule``.  KM, log-rank and Cox (Efron) on
    the landmark dataset equal R ``survfit``/``survdiff``/``coxph``.
    """
    import pandas as pd

    t = K.check_times(time, "time").astype(np.float64)
    e = K.check_binary(event, "event")
    n = K.check_lengths(time=t, event=e)
    x = _exposure_days(exposure_day, n)
    if landmark is None:
        L, source = default_landmark(t, x)
    else:
        L = float(landmark)
        if not np.isfinite(L) or L < 0:
            raise ValueError(f"landmark must be a finite day >= 0, got {landmark!r}")
        source = "given"
    keep = t > L
    if include_event_at_landmark:
        keep |= (t == L) & e
        rule = (
            f"included: patients event-free and under follow-up at the start of day {L:g} "
            f"(an event on day {L:g} counts as an event at time 0 after the landmark); "
            f"group = exposed on or before day {L:g}; exposures after day {L:g} are ignored"
        )
    else:
        rule = (
            f"included: patients event-free and under follow-up after day {L:g} (an event or "
            f"censoring on or before day {L:g} excludes the patient); group = exposed on or "
            f"before day {L:g}; exposures after day {L:g} are ignored"
        )
    excluded = ~keep
    exposed = ~np.isnan(x) & (x <= L)
    ids = np.arange(n) if id is None else K.as_1d(id, "id")
    data = pd.DataFrame(
        {
            "id": ids[keep],
            "time": t[keep] - L,
            "event": e[keep].astype(np.int8),
            "exposed": exposed[keep].astype(np.int8),
        }
    )
    n_exp = int(data["exposed"].sum())
    n_unexp = int(len(data) - n_exp)
    if n_exp == 0 or n_unexp == 0:
        which = "exposed" if n_exp == 0 else "unexposed"
        raise ValueError(
            f"no {which} patients remain at the landmark day {L:g} ({len(data)} included): "
            "choose another landmark"
        )
    lt, le, lx = data["time"].to_numpy(), data["event"].to_numpy(), data["exposed"].to_numpy()
    km = {
        g: kaplan_meier(lt[lx == g], le[lx == g], conf_type=conf_type, conf_level=conf_level)
        for g in (0, 1)
    }
    if not le.any():
        raise ValueError(f"no events after the landmark day {L:g}: nothing to compare")
    # right-censored data from L: every row enters before time 0 (start = -1), so an
    # event at time 0 (include_event_at_landmark) has everybody at risk, as R coxph
    X = lx.astype(np.float64)[:, None]
    fit = _cox_newton(X - X.mean(), _RiskSets.build(np.full(lt.size, -1.0), lt, le), "efron")
    cox = _cox_result(fit, ["exposed"], X.mean(axis=0), lt.size, int(le.sum()), "efron",
                      conf_level)  # fmt: skip
    return LandmarkResult(
        landmark=L,
        landmark_source=source,
        rule=rule,
        n=n,
        n_included=int(keep.sum()),
        n_excluded_event=int((excluded & e).sum()),
        n_excluded_censored=int((excluded & ~e).sum()),
        n_exposed=n_exp,
        n_unexposed=n_unexp,
        km=km,
        logrank=logrank_test(lt, le, lx),
        cox=cox,
        data=data,
    )
