"""Statistics core: survival curves, tests, competing risks, proportions, Cox models,
time-dependent comparisons (landmark, time-dependent Cox, Mantel–Byar, Simon–Makuch) and
Fine–Gray regression.

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
from cartrial.stats.finegray import FineGrayResult, fine_gray
from cartrial.stats.logrank import LogRankTest, logrank_test
from cartrial.stats.proportions import (
    Chi2Result,
    FisherResult,
    binomial_ci,
    chi2_test,
    fisher_exact,
)
from cartrial.stats.survival import Estimate, KaplanMeier, kaplan_meier, median_followup
from cartrial.stats.timedep import (
    CountingKaplanMeier,
    LandmarkResult,
    MantelByarTest,
    SimonMakuch,
    counting_process,
    default_landmark,
    landmark_analysis,
    mantel_byar,
    simon_makuch,
    timedep_cox,
)

__all__ = [
    "Chi2Result",
    "CountingKaplanMeier",
    "CoxResult",
    "CumulativeIncidence",
    "Estimate",
    "FineGrayResult",
    "FisherResult",
    "GrayTest",
    "KaplanMeier",
    "LandmarkResult",
    "LogRankTest",
    "MantelByarTest",
    "SimonMakuch",
    "binomial_ci",
    "chi2_test",
    "counting_process",
    "cox_ph",
    "cumulative_incidence",
    "default_landmark",
    "fine_gray",
    "fisher_exact",
    "gray_test",
    "kaplan_meier",
    "landmark_analysis",
    "logrank_test",
    "mantel_byar",
    "median_followup",
    "simon_makuch",
    "timedep_cox",
]
