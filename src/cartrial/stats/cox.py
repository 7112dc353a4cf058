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
) -> CoxResult:
    """Fit a Cox model of ``duration_col``/``event_col`` on ``covariates`` (statsmodels PHReg).

    ``ties``: ``"efron"`` (default; lifelines, R ``coxph``) or ``"breslow"`` (SAS
    default).  ``strata``: a column giving separate baseline hazards.  Returns a
    ``CoxResult`` whose ``summary`` has coef, hr, se, z, p, lower, upper (HR interval).
    """
    import pandas as pd
    from statsmodels.duration.hazard_regression import PHReg

    if ties not in ("breslow", "efron"):
        raise ValueError(f"ties must be 'breslow' or 'efron', got {ties!r}")
    if missing not in ("raise", "drop"):
        raise ValueError(f"missing must be 'raise' or 'drop', got {missing!r}")
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
    z = z_value(conf_level)
    time = K.check_times(data[duration_col], duration_col)
    event = K.check_binary(data[event_col], event_col)
    exog = _design(data, covariates)
    strata_arr = None if strata is None else K.factorize(data[strata], strata).codes
    model = PHReg(
        time, exog.to_numpy(), status=event.astype(np.float64), ties=ties, strata=strata_arr
    )
    fit = model.fit()
    coef = np.asarray(fit.params)
    se = np.asarray(fit.bse)
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
        log_likelihood=float(fit.llf),
        ties=ties,
        conf_level=float(conf_level),
        strata=strata,
    )
