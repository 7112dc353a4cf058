"""Response, relapse, engraftment and reference-only decision support.

* ``classify_response(obs, criteria="NCCN_ALL" | "ELN2022_AML")`` -> ``Response``
* ``classify_relapse(obs, ...)`` -> ``Relapse`` (marrow/blood/CNS/extramedullary, CD7 type)
* ``neutrophil_engraftment``, ``platelet_engraftment``, ``primary_graft_failure``,
  ``chimerism_status``
* ``decision``: eligibility screens, BSA, cell dose, lymphodepletion doses and the
  CRS/ICANS management reference - every output ``reference_only=True``.
"""

from __future__ import annotations

from cartrial.response.criteria import Response, classify_response
from cartrial.response.decision import (
    Advice,
    all_in_one_sct_eligibility,
    bsa_dubois,
    bsa_mosteller,
    cell_dose,
    lymphodepletion_doses,
    management_reference,
    trial_eligibility,
)
from cartrial.response.relapse import Relapse, classify_relapse
from cartrial.response.transplant import (
    Engraftment,
    chimerism_status,
    neutrophil_engraftment,
    platelet_engraftment,
    primary_graft_failure,
)

__all__ = [
    "Advice",
    "Engraftment",
    "Relapse",
    "Response",
    "all_in_one_sct_eligibility",
    "bsa_dubois",
    "bsa_mosteller",
    "cell_dose",
    "chimerism_status",
    "classify_relapse",
    "classify_response",
    "lymphodepletion_doses",
    "management_reference",
    "neutrophil_engraftment",
    "platelet_engraftment",
    "primary_graft_failure",
    "trial_eligibility",
]
