"""Decision support - REFERENCE ONLY: eligibility, dosing, toxicity management.

Every function here restates what a published protocol or consensus text lists, names
the rule that fired and its source, and sets ``reference_only=True``. Nothing here is
a prescription: treatment decisions belong to the treating team and the trial protocol.

* ``eligibility``: ``trial_eligibility``, ``all_in_one_sct_eligibility``
* ``dosing``: ``bsa_mosteller``, ``bsa_dubois``, ``cell_dose``, ``lymphodepletion_doses``
* ``management``: ``management_reference`` (CRS/ICANS)

Sources: the CD7 CAR-T trial protocols (eligibility, product dose, lymphodepletion and the
"all-in-one" sequence as the CD7 CAR-T reports describe them: Tan 2023 J Hematol Oncol
16:34; Hu 2024 N Engl J Med 390:1467; Pan 2023; Zhang 2023 Am J Hematol 98:1898);
Mosteller RD, N Engl J Med 1987;317:1098; Du Bois D, Du Bois EF, Arch Intern Med
1916;17:863; Neelapu SS et al., Nat Rev Clin Oncol 2018;15:47 (CARTOX management);
Santomasso BD et al., J Clin Oncol 2021;39:3978 (ASCO guideline); practice reported by
the CD7 CAR-T trials.
"""

from __future__ import annotations

from cartrial.decision._common import MANAGEMENT_SOURCES, PATHWAY, Advice
from cartrial.decision.dosing import bsa_dubois, bsa_mosteller, cell_dose, lymphodepletion_doses
from cartrial.decision.eligibility import all_in_one_sct_eligibility, trial_eligibility
from cartrial.decision.management import management_reference

__all__ = [
    "MANAGEMENT_SOURCES",
    "PATHWAY",
    "Advice",
    "all_in_one_sct_eligibility",
    "bsa_dubois",
    "bsa_mosteller",
    "cell_dose",
    "lymphodepletion_doses",
    "management_reference",
    "trial_eligibility",
]
