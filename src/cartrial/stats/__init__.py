"""Statistics core: survival curves, tests, competing risks, proportions, Cox models.

NumPy kernels inside, pandas at the boundary (``.table`` / ``.summary`` DataFrames).
Each function's docstring names its formula and source; the module docstrings of
``survival``, ``logrank``, ``competing``, ``proportions`` and ``cox`` give the details.
Importing this package loads NumPy only; pandas, SciPy and statsmodels are imported
inside the functions that need them.
"""

from __future__ import annotations

from cartrial.stats.competing import (
    CumulativeIncidence,
    GrayTest,
    cumulative_incidence,
    gray_test,
)
from cartrial.stats.cox import CoxResult, cox_ph
from cartrial.stats.logrank import LogRankTest, logrank_test
from cartrial.stats.proportions import (
    Chi2Result,
    FisherResult,
    binomial_ci,
    chi2_test,
    fisher_exact,
)
from cartrial.stats.survival import Estimate, KaplanMeier, kaplan_meier, median_followup

__all__ = [
    "Chi2Result",
    "CoxResult",
    "CumulativeIncidence",
    "Estimate",
    "FisherResult",
    "GrayTest",
    "KaplanMeier",
    "LogRankTest",
    "binomial_ci",
    "chi2_test",
    "cox_ph",
    "cumulative_incidence",
    "fisher_exact",
    "gray_test",
    "kaplan_meier",
    "logrank_test",
    "median_followup",
]
