"""Response, relapse and engraftment.

* ``classify_response(obs, criteria="NCCN_ALL" | "ELN2022_AML")`` -> ``Response``
* ``classify_relapse(obs, ...)`` -> ``Relapse`` (marrow/blood/CNS/extramedullary, CD7 type)
* ``neutrophil_engraftment``, ``platelet_engraftment``, ``primary_graft_failure``,
  ``chimerism_status``

Reference-only decision support (eligibility, dosing, CRS/ICANS management) is
``cartrial.decision``.
"""

from __future__ import annotations

from cartrial.response.criteria import Response, classify_response
from cartrial.response.relapse import Relapse, classify_relapse
from cartrial.response.transplant import (
    Engraftment,
    chimerism_status,
    neutrophil_engraftment,
    platelet_engraftment,
    primary_graft_failure,
)

__all__ = [
    "Engraftment",
    "Relapse",
    "Response",
    "chimerism_status",
    "classify_relapse",
    "classify_response",
    "neutrophil_engraftment",
    "platelet_engraftment",
    "primary_graft_failure",
]
