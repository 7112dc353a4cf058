"""Proportions and contingency tables: binomial confidence intervals, Fisher, chi-square.

* ``binomial_ci`` — response rates with intervals (Brown, Cai & DasGupta, Stat Sci
  2001;16:101; Newcombe, Stat Med 1998;17:857):
  ``wilson`` score interval (default; Wilson 1927), ``clopper-pearson`` exact interval
  (Clopper & Pearson 1934; beta quantiles), ``jeffreys`` (Beta(k + 1/2, n - k + 1/2)
  quantiles, with lower = 0 at k = 0 and upper = 1 at k = n as Brown et al. recommend),
  ``agresti-coull`` and ``wald`` (normal approximation; shown for comparison only, it
  undercovers badly in small trials).  The estimate is always k / n.
* ``fisher_exact`` — 2 x 2 via SciPy (exact conditional test; plus the conditional
  maximum-likelihood odds ratio and its exact interval, as R ``fisher.test``);
  2 x c and r x 2 tables by exact enumeration of all tables with the observed margins
  (Freeman & Halton, Biometrika 1951;38:141: p = sum of the probabilities of tables no
  more probable than the observed one, with R's relative tolerance 1e-7).  SciPy 1.17
  offers r x c only by Monte Carlo or permutation resampling; tables with more than two
  rows and columns, or too many possible tables, use SciPy's Monte Carlo p-value with a
  fixed seed and say so in ``method``.
* ``chi2_test`` — Pearson chi-square test of independence (SciPy
  ``chi2_contingency``; Yates' continuity correction for 2 x 2 when ``correction``),
  reporting the smallest expected count and the share of cells with expected < 5
  (Cochran's rule), so the report can say when Fisher's test should be used instead.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from cartrial.stats.survival import Estimate, z_value

BinomialMethod = Literal["wilson", "clopper-pearson", "jeffreys", "agresti-coull", "wald"]
BINOMIAL_METHODS: tuple[str, ...] = (
    "wilson",
    "clopper-pearson",
    "jeffreys",
    "agresti-coull",
    "wald",
)
_MAX_ENUMERATED_TABLES = 2_000_000


def _as_counts(x: Any, name: str) -> np.ndarray:
    arr = np.asarray(x)
    if arr.dtype.kind not in "biuf":
        raise ValueError(f"{name} must be numeric counts, got dtype {arr.dtype}")
    f = arr.astype(np.float64)
    bad = ~np.isfinite(f) | (f < 0) | (f != np.floor(f))
    if bad.any():
        pos = tuple(int(i) for i in np.argwhere(bad)[0]) if f.ndim else ()
        where = f"{name}{list(pos)}" if pos else name
        raise ValueError(f"{where} = {f[pos] if pos else f!r}: expected a whole number >= 0")
    return f


def binomial_ci(
    k: Any, n: Any, method: BinomialMethod = "wilson", conf_level: float = 0.95
) -> Estimate:
    """Proportion k/n with a two-sided interval; vectorised over arrays of k and n.

    Formulas and sources in the module docstring.  Returns ``Estimate(estimate, lower,
    upper)`` (floats for scalar input, arrays otherwise).
    """
    if method not in BINOMIAL_METHODS:
        raise ValueError(f"method must be one of {BINOMIAL_METHODS}, got {method!r}")
    z = z_value(conf_level)
    alpha = 1.0 - float(conf_level)
    scalar = np.ndim(k) == 0 and np.ndim(n) == 0
    kk, nn = np.broadcast_arrays(_as_counts(k, "k"), _as_counts(n, "n"))
    if (nn <= 0).any():
        pos = np.argwhere(nn <= 0)[0]
        raise ValueError(f"n{list(pos) if nn.ndim else ''} = 0: need at least one trial")
    if (kk > nn).any():
        pos = np.argwhere(kk > nn)[0]
        raise ValueError(f"k{list(pos) if kk.ndim else ''} exceeds n: k must be <= n")
    p = kk / nn
    if method == "wilson":
        denom = 1.0 + z * z / nn
        centre = (p + z * z / (2.0 * nn)) / denom
        half = z / denom * np.sqrt(p * (1.0 - p) / nn + z * z / (4.0 * nn * nn))
        # exact at the boundaries (rounding would leave 1e-18 above 0 / below 1)
        lower = np.where(kk == 0, 0.0, centre - half)
        upper = np.where(kk == nn, 1.0, centre + half)
    elif method == "wald":
        half = z * np.sqrt(p * (1.0 - p) / nn)
        lower, upper = p - half, p + half
    elif method == "agresti-coull":
        n_c = nn + z * z
        p_c = (kk + z * z / 2.0) / n_c
        half = z * np.sqrt(p_c * (1.0 - p_c) / n_c)
        lower, upper = p_c - half, p_c + half
    else:
        from scipy.special import betaincinv

        with np.errstate(invalid="ignore"):
            if method == "clopper-pearson":
                lower = betaincinv(kk, nn - kk + 1.0, alpha / 2.0)
                upper = betaincinv(kk + 1.0, nn - kk, 1.0 - alpha / 2.0)
            else:  # jeffreys
                lower = betaincinv(kk + 0.5, nn - kk + 0.5, alpha / 2.0)
                upper = betaincinv(kk + 0.5, nn - kk + 0.5, 1.0 - alpha / 2.0)
        lower = np.where(kk == 0, 0.0, lower)
        upper = np.where(kk == nn, 1.0, upper)
    lower = np.clip(lower, 0.0, 1.0)
    upper = np.clip(upper, 0.0, 1.0)
    if scalar:
        return Estimate(float(p), float(lower), float(upper))
    return Estimate(p, lower, upper)


# --------------------------------------------------------------------------- Fisher


@dataclass(frozen=True)
class FisherResult:
    """Fisher's exact test.  For 2 x 2: conditional MLE odds ratio and exact CI (R-like)."""

    p_value: float
    method: str
    odds_ratio: float | None = None
    odds_ratio_ci: tuple[float, float] | None = None
    sample_odds_ratio: float | None = None
    alternative: str = "two-sided"
    table: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)), repr=False)


def _table(table: Any) -> np.ndarray:
    t = _as_counts(table, "table")
    if t.ndim != 2:
        raise ValueError(f"table must be two-dimensional, got shape {t.shape}")
    if min(t.shape) < 2:
        raise ValueError(f"table needs at least two rows and two columns, got shape {t.shape}")
    return t.astype(np.int64)


def _fisher_2xc_exact(table: np.ndarray) -> float | None:
    """Freeman–Halton p-value of a 2 x c table by enumerating its margins' tables.

    Returns None when there are more than ``_MAX_ENUMERATED_TABLES`` tables.
    """
    from scipy.special import gammaln

    cols = table.sum(axis=0)
    r1 = int(table[0].sum())

    def log_choose(nn: np.ndarray | float, kk: np.ndarray | float) -> np.ndarray:
        return gammaln(nn + 1.0) - gammaln(kk + 1.0) - gammaln(nn - kk + 1.0)

    # Grow partial first rows column by column; prune sums that cannot reach r1.
    sums = np.zeros(1, dtype=np.int64)
    logp = np.zeros(1)
    rest = np.concatenate([np.cumsum(cols[::-1])[::-1][1:], [0]])
    for j, cj in enumerate(cols[:-1]):
        if sums.size * (int(cj) + 1) > 10 * _MAX_ENUMERATED_TABLES:
            return None
        x = np.arange(int(cj) + 1)
        new_sums = (sums[:, None] + x[None, :]).ravel()
        new_logp = (logp[:, None] + log_choose(float(cj), x.astype(float))[None, :]).ravel()
        ok = (new_sums <= r1) & (new_sums + rest[j] >= r1)
        sums, logp = new_sums[ok], new_logp[ok]
        if sums.size > _MAX_ENUMERATED_TABLES:
            return None
    last = r1 - sums
    ok = (last >= 0) & (last <= cols[-1])
    logp = logp[ok] + log_choose(float(cols[-1]), last[ok].astype(float))
    logp -= log_choose(float(cols.sum()), float(r1))
    obs = float(np.sum(log_choose(cols.astype(float), table[0].astype(float)))) - float(
        log_choose(float(cols.sum()), float(r1))
    )
    # R fisher.test: tables with probability <= observed * (1 + 1e-7)
    keep = logp <= obs + np.log1p(1e-7)
    return float(min(1.0, np.exp(logp[keep]).sum()))


def fisher_exact(
    table: Any,
    alternative: Literal["two-sided", "less", "greater"] = "two-sided",
    conf_level: float = 0.95,
    n_resamples: int = 100_000,
    seed: int = 20230034,
) -> FisherResult:
    """Fisher's exact test of independence for an r x c table of counts.

    2 x 2: SciPy's exact test (``alternative`` honoured) with R's conditional MLE odds
    ratio and exact interval.  2 x c / r x 2: exact Freeman–Halton enumeration.  Larger
    tables: SciPy Monte Carlo p-value (``n_resamples``, ``seed``; ``method`` says so).
    """
    import scipy.stats as st

    t = _table(table)
    if t.shape == (2, 2):
        res = st.fisher_exact(t, alternative=alternative)
        cond = st.contingency.odds_ratio(t, kind="conditional")
        ci = cond.confidence_interval(confidence_level=conf_level, alternative=alternative)
        return FisherResult(
            p_value=float(res.pvalue),
            method="exact (2x2, SciPy)",
            odds_ratio=float(cond.statistic),
            odds_ratio_ci=(float(ci.low), float(ci.high)),
            sample_odds_ratio=float(res.statistic),
            alternative=alternative,
            table=t,
        )
    if alternative != "two-sided":
        raise ValueError("one-sided alternatives exist only for 2 x 2 tables")
    if (t.sum(axis=0) == 0).any() or (t.sum(axis=1) == 0).any():
        t = t[t.sum(axis=1) > 0][:, t.sum(axis=0) > 0]
        if min(t.shape) < 2:
            return FisherResult(p_value=1.0, method="exact (degenerate margins)", table=t)
    if 2 in t.shape:
        p = _fisher_2xc_exact(t if t.shape[0] == 2 else t.T)
        if p is not None:
            return FisherResult(p_value=p, method="exact (Freeman-Halton enumeration)", table=t)
    rng = np.random.default_rng(seed)
    res = st.fisher_exact(t, method=st.MonteCarloMethod(n_resamples=n_resamples, rng=rng))
    return FisherResult(
        p_value=float(res.pvalue),
        method=f"Monte Carlo (SciPy, {n_resamples} tables, seed {seed})",
        table=t,
    )


# --------------------------------------------------------------------------- chi-square


@dataclass(frozen=True)
class Chi2Result:
    """Pearson chi-square test of independence with expected-count diagnostics."""

    statistic: float
    df: int
    p_value: float
    correction: bool
    min_expected: float
    low_expected_fraction: float  # share of cells with expected count < 5
    expected: np.ndarray = field(repr=False)


def chi2_test(table: Any, correction: bool = True) -> Chi2Result:
    """Pearson chi-square test (SciPy ``chi2_contingency``; Yates for 2 x 2 if ``correction``)."""
    import scipy.stats as st

    t = _table(table)
    if (t.sum(axis=0) == 0).any() or (t.sum(axis=1) == 0).any():
        raise ValueError("table has an empty row or column: expected counts would be zero")
    res = st.chi2_contingency(t, correction=correction)
    expected = np.asarray(res.expected_freq)
    return Chi2Result(
        statistic=float(res.statistic),
        df=int(res.dof),
        p_value=float(res.pvalue),
        correction=bool(correction and res.dof == 1),
        min_expected=float(expected.min()),
        low_expected_fraction=float((expected < 5).mean()),
        expected=expected,
    )
