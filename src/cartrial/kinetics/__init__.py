"""CAR-T cellular kinetics and immune reconstitution.

Modules (each formula cites its source in its docstring):

* ``nca`` — non-compartmental analysis (Cmax, Tmax, AUC0–28/0–84, Clast/Tlast, persistence,
  λz/half-life with PKNCA's point selection), vectorised across patients;
* ``model`` — the multiphasic model of Stein et al. 2019, fitted per patient (Tobit, SciPy);
* ``population`` — the same model as a Bayesian population (NLME) model, NumPyro NUTS
  (optional extra ``cartrial[popkin]``, imported only when used);
* ``reconstitution`` — depletion/recovery of T/NK/B subsets against versioned reference ranges,
  cumulative incidence of recovery with competing events;
* ``tcr`` — repertoire diversity (Shannon, Simpson, Hill numbers, Chao1, rarefaction);
* ``associations`` — kinetics vs outcome tests (Mann–Whitney, Welch, chi-square, Fisher);
* ``figures`` — matplotlib figures; ``checks`` — validation of observations;
* ``report`` — ``kinetics_section(cohort)`` for the report layer.

Names are imported lazily so that ``import cartrial.kinetics`` stays cheap.

``cartrial.kinetics.nca`` is both the submodule and the one-profile NCA function: Python's
import system sets the package attribute ``nca`` to the submodule once it is imported, so the
attribute is always the submodule, made callable (``nca(days, values, lloq)`` runs
``cartrial.kinetics.nca.nca``); ``from cartrial.kinetics import nca`` gives the same object.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_EXPORTS = {
    "nca": "nca",
    "nca_table": "nca",
    "summarise_nca": "nca",
    "persistence_rates": "nca",
    "fit_multiphasic": "model",
    "fit_table": "model",
    "simulate_profile": "model",
    "multiphasic_curve": "model",
    "multiphasic_auc": "model",
    "MultiphasicFit": "model",
    "TYPICAL_TISAGENLECLEUCEL": "model",
    "fit_population": "population",
    "PopulationFit": "population",
    "time_to_depletion": "reconstitution",
    "time_to_recovery": "reconstitution",
    "b_cell_recovery": "reconstitution",
    "reconstitution_table": "reconstitution",
    "recovery_incidence": "reconstitution",
    "load_reference_ranges": "reconstitution",
    "chimerism_status": "reconstitution",
    "engraftment_after_sct": "reconstitution",
    "diversity": "tcr",
    "diversity_table": "tcr",
    "rarefy": "tcr",
    "compare_groups": "associations",
    "association_2x2": "associations",
    "recovery_vs_infection": "associations",
    "check_observations": "checks",
    "kinetics_section": "report",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name == "nca":  # the callable submodule (see the module docstring)
        return import_module("cartrial.kinetics.nca")
    if name in _EXPORTS:
        return getattr(import_module(f"cartrial.kinetics.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module 'cartrial.kinetics' has no attribute {name!r}")
