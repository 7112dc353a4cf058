"""Cox proportional hazards regression (statsmodels ``PHReg``, not hand-written).

Partial likelihood of Cox (J R Stat Soc B 1972;34:187) with Breslow's (1974) or
Efron's (JASA 1977;72:557) handling of tied event times; Wald standard errors, z tests
and intervals; hazard ratio ``exp(coef)``.  statsmodels is used at run time because
lifelines 0.30 pins pandas < 3; results agree with lifelines ``CoxPHFitter`` (Efron) and
R ``coxph``.

Categorical covariates (object, category or boolean columns) are expanded to
indicator columns named ``column[level]`` against the first level (sorted) as
reference.  Missing values raise (naming row and column) unless ``missing="drop"``
asks for a complete-case analysis; ``n`` in the result says how many rows were used.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

import numpy as np

from cartrial.stats import _kernels as K
from cartrial.stats.survival import z_value

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd


@dataclass(frozen=True, eq=False)
class CoxResult:
    """Fitted Cox model: ``summary`` has one row per model term."""

    summary: pd.DataFrame = field(repr=False)
    n: int
    n_events: int
    log_likelihood: float
    ties: str
    conf_level: float
    strata: str | None = None
    # Degenerate fits are flagged, never silent: ``monotone`` (a coefficient's
    # maximum-likelihood estimate is infinite, e.g. a group with no events),
    # ``converged`` and a ``warning`` sentence saying why.
    converged: bool = True
    monotone: bool = False
    warning: str | None = None
    method: str = "mle"  # "mle" or "firth" (penalised likelihood)
    n_rows: int | None = None  # counting-process rows (time-dependent models)
    log_likelihood_null: float | None = None
    n_iter: int | None = None


def _design(data: pd.DataFrame, covariates: list[str]) -> pd.DataFrame:
    """Numeric design matrix; categorical columns become reference-coded indicators."""
    import pandas as pd

    parts = []
    for col in covariates:
        s = data[col]
        if s.dtype.kind in "iuf":
            parts.append(s.astype(np.float64).rename(col))
            continue
        levels = sorted(pd.unique(s.dropna()), key=str)
        if len(levels) < 2:
            raise ValueError(f"covariate {col!r} has a single level {levels}: nothing to compare")
        for level in levels[1:]:
            parts.append((s == level).astype(np.float64).rename(f"{col}[{level}]"))
    return pd.concat(parts, axis=1)


def cox_ph(
    df: pd.DataFrame,
    duration_col: str,
    event_col: str,
    covariates: list[str] | tuple[str, ...],
    ties: Literal["breslow", "efron"] = "efron",
    strata: str | None = None,
    conf_level: float = 0.95,
    missing: Literal["raise", "drop"] = "raise",
    method: Literal["mle", "firth"] = "mle",
) -> CoxResult:
    """Fit a Cox model of ``duration_col``/``event_col`` on ``covariates`` (statsmodels PHReg).

    ``ties``: ``"efron"`` (default; lifelines, R ``coxph``) or ``"breslow"`` (SAS
    default).  ``strata``: a column giving separate baseline hazards.  Returns a
    ``CoxResult`` whose ``summary`` has coef, hr, se, z, p, lower, upper (HR interval).

    Degenerate input never fails obscurely: empty data, no events, a constant or
    collinear covariate raise ValueError naming the cause; monotone likelihood (e.g. a
    group with no events: the estimate runs to +/- infinity, R's "coefficient may be
    infinite") returns ``monotone=True``, ``converged=False`` and a ``warning``.

    ``method="firth"``: Firth's penalised partial likelihood (Heinze & Schemper,
    Biometrics 2001;57:114; R ``coxphf``), finite under monotone likelihood, fitted by
    ``firthmodels.FirthCoxPH``.  As in ``coxphf``: Breslow ties (``ties`` is ignored and
    the result says ``"breslow"``), ``se`` from the penalised information, ``p`` from
    the penalised likelihood-ratio test and ``lower``/``upper`` from the profile
    penalised likelihood.  No strata.
    """
    import pandas as pd

    if ties not in ("breslow", "efron"):
        raise ValueError(f"ties must be 'breslow' or 'efron', got {ties!r}")
    if missing not in ("raise", "drop"):
        raise ValueError(f"missing must be 'raise' or 'drop', got {missing!r}")
    if method not in ("mle", "firth"):
        raise ValueError(f"method must be 'mle' or 'firth', got {method!r}")
    covariates = list(covariates)
    if not covariates:
        raise ValueError("covariates must name at least one column")
    needed = [duration_col, event_col, *covariates] + ([strata] if strata else [])
    absent = [c for c in needed if c not in df.columns]
    if absent:
        raise ValueError(f"columns not in the data: {absent}; available: {list(df.columns)}")
    data = df[needed]
    na = data.isna()
    if na.to_numpy().any():
        if missing == "raise":
            row, col = np.argwhere(na.to_numpy())[0]
            raise ValueError(
                f"row {data.index[row]!r}, column {needed[col]!r} is missing; pass "
                "missing='drop' for a complete-case analysis"
            )
        data = data[~na.any(axis=1)]
    if len(data) == 0:
        raise ValueError("no rows to fit: the data are empty (after dropping missing values)")
    z = z_value(conf_level)
    time = K.check_times(data[duration_col], duration_col)
    event = K.check_binary(data[event_col], event_col)
    exog = _design(data, covariates)
    X = exog.to_numpy()
    names = [str(c) for c in exog.columns]

    K.check_design(X, names, int(event.sum()), repr(event_col))
    if method == "firth":
        if strata is not None:
            raise ValueError("method='firth' does not support strata")
        return _firth(time, event, X, names, conf_level)
    from statsmodels.duration.hazard_regression import PHReg

    strata_arr = None if strata is None else K.factorize(data[strata], strata).codes
    model = PHReg(time, X, status=event.astype(np.float64), ties=ties, strata=strata_arr)
    warning = None
    converged = True
    try:
        import warnings

        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            fit = model.fit()
        coef = np.asarray(fit.params)
        se = np.asarray(fit.bse)
        llf = float(fit.llf)
        if any("converge" in str(w.message).lower() for w in caught):
            converged, warning = False, "the optimiser did not converge"
        # R coxph.fit's check: a coefficient whose next Newton step u'V is still large
        # "may be infinite" (monotone likelihood).
        var = np.linalg.inv(-np.atleast_2d(model.hessian(coef)))
        infs = np.abs(np.atleast_1d(model.score(coef)) @ var)
        infinite = (infs > 1e-9) & (infs > np.sqrt(1e-9) * np.abs(coef))
        infinite |= ~np.isfinite(coef) | ~np.isfinite(se)
    except np.linalg.LinAlgError:
        coef = np.full(len(names), np.nan)
        se = coef.copy()
        llf = float("nan")
        infinite = np.ones(len(names), dtype=bool)
    monotone = bool(infinite.any())
    if monotone:
        which = ", ".join(repr(names[i]) for i in np.flatnonzero(infinite))
        converged = False
        warning = (
            f"monotone likelihood for {which}: the partial likelihood keeps increasing as the "
            "coefficient goes to +/- infinity (typically a group with no events), so the "
            "hazard ratio and its interval are not estimable; use method='firth' "
            "(Heinze & Schemper 2001)"
        )
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        zstat = coef / se
        from scipy.special import ndtr

        p = 2.0 * ndtr(-np.abs(zstat))
        summary = pd.DataFrame(
            {
                "covariate": exog.columns,
                "coef": coef,
                "hr": np.exp(coef),
                "se": se,
                "z": zstat,
                "p": p,
                "lower": np.exp(coef - z * se),
                "upper": np.exp(coef + z * se),
            }
        )
    return CoxResult(
        summary=summary,
        n=int(len(data)),
        n_events=int(event.sum()),
        log_likelihood=llf,
        ties=ties,
        conf_level=float(conf_level),
        strata=strata,
        converged=converged,
        monotone=monotone,
        warning=warning,
    )


def _firth(
    time: np.ndarray, event: np.ndarray, X: np.ndarray, names: list[str], conf_level: float
) -> CoxResult:
    """Firth-penalised Cox fit via firthmodels (tight tolerances), coxphf-style output."""
    import warnings

    import pandas as pd
    from firthmodels import FirthCoxPH

    model = FirthCoxPH(backend="numpy", max_iter=200, max_halfstep=50, gtol=1e-8, xtol=1e-9)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model.fit(X, (event.astype(bool), time.astype(np.float64)))
        lo_hi = model.conf_int(alpha=1.0 - conf_level, method="pl", tol=1e-8, max_iter=200)
        model.lrt()
    coef = np.asarray(model.coef_, dtype=np.float64)
    se = np.asarray(model.bse_, dtype=np.float64)
    note = "; ".join(sorted({str(w.message) for w in caught})) or None
    converged = bool(model.converged_)
    summary = pd.DataFrame(
        {
            "covariate": names,
            "coef": coef,
            "hr": np.exp(coef),
            "se": se,
            "z": coef / se,
            "p": np.asarray(model.lrt_pvalues_, dtype=np.float64),
            "lower": np.exp(lo_hi[:, 0]),
            "upper": np.exp(lo_hi[:, 1]),
        }
    )
    return CoxResult(
        summary=summary,
        n=int(time.size),
        n_events=int(event.sum()),
        log_likelihood=float(model.loglik_),
        ties="breslow",
        conf_level=float(conf_level),
        converged=converged,
        warning=None if converged and note is None else (note or "did not converge"),
        method="firth",
        n_iter=int(model.n_iter_),
    )
