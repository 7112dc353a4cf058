"""Trial design: dose escalation (3+3, BOIN, CRM), operating characteristics by
simulation, DLT evaluation from a cohort, safety monitoring and sample size/power.

Submodules: :mod:`~cartrial.design.escalation`, :mod:`~cartrial.design.simulate`,
:mod:`~cartrial.design.dlt`, :mod:`~cartrial.design.monitor`,
:mod:`~cartrial.design.power`.  Decisions are recommendations naming the rule that
fired; nothing here acts on a trial.
"""

from __future__ import annotations

from cartrial.design.escalation import BOIN, CRM, Decision, ThreePlusThree, boin_boundaries

__all__ = ["BOIN", "CRM", "Decision", "ThreePlusThree", "boin_boundaries"]
