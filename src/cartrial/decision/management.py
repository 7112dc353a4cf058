"""CRS/ICANS management reference (REFERENCE ONLY): Neelapu SS et al., Nat Rev Clin
Oncol 2018;15:47 (CARTOX); Santomasso BD et al., J Clin Oncol 2021;39:3978 (ASCO
guideline); practice reported by the CD7 CAR-T trials."""

from __future__ import annotations

from cartrial.cohort.vocab import AE_TERMS, canonical
from cartrial.decision._common import MANAGEMENT_SOURCES, Advice
from cartrial.grading.core import GradingInputError

_CRS = {
    1: (
        "supportive care (antipyretics, fluids, infection work-up)",
        "tocilizumab considered for persistent fever or high-risk patients",
    ),
    2: (
        "tocilizumab",
        "corticosteroids (e.g. dexamethasone) if no response, or together with "
        "tocilizumab in high-risk patients",
        "fluid boluses, oxygen as needed",
    ),
    3: (
        "tocilizumab",
        "corticosteroids (e.g. dexamethasone)",
        "vasopressor and oxygen support, intensive-care monitoring",
    ),
    4: (
        "tocilizumab",
        "high-dose corticosteroids (e.g. methylprednisolone)",
        "intensive care with vasopressors and ventilatory support",
    ),
}
_ICANS = {
    1: (
        "supportive care, neurological monitoring, seizure prophylaxis per centre",
        "tocilizumab only for concurrent CRS",
    ),
    2: ("corticosteroids (e.g. dexamethasone)", "tocilizumab only for concurrent CRS"),
    3: (
        "corticosteroids (e.g. dexamethasone)",
        "intensive-care monitoring",
        "seizure management with levetiracetam/benzodiazepines",
    ),
    4: (
        "high-dose corticosteroids (e.g. methylprednisolone)",
        "intensive care",
        "management of seizures and raised intracranial pressure",
    ),
}


def management_reference(term: str, grade: int, *, steroid_refractory: bool = False) -> Advice:
    """What consensus guidance lists for CRS or ICANS at ``grade`` (reference only).

    ``steroid_refractory`` adds the reported options: ruxolitinib for steroid-refractory
    CRS; intrathecal steroids / Ommaya reservoir for refractory CNS toxicity in some
    centres (as reported by the CD7 CAR-T trials)."""

    t = canonical(term, AE_TERMS)
    if t not in ("CRS", "ICANS"):
        raise GradingInputError("term", term, "CRS or ICANS")
    if isinstance(grade, bool) or grade not in range(6):
        raise GradingInputError("grade", grade, "a grade 0-5")
    table = _CRS if t == "CRS" else _ICANS
    if grade == 0:
        options: tuple[str, ...] = ("no CRS/ICANS-directed therapy listed; continue monitoring",)
    elif grade == 5:
        options = ("grade 5 is death: no management reference",)
    else:
        options = table[grade]
    if steroid_refractory and grade >= 2:
        options = (
            *options,
            "ruxolitinib (reported for steroid-refractory CRS)"
            if t == "CRS"
            else "intrathecal steroids or an Ommaya reservoir (reported in some centres "
            "for refractory CNS toxicity)",
        )
    reasons = tuple(f"consensus guidance lists: {o}" for o in options)
    return Advice(
        f"{t.lower()}_grade_{grade}_management",
        MANAGEMENT_SOURCES,
        {"term": t, "grade": grade, "listed_options": options},
        (*reasons, "reference only: the treating team and protocol decide"),
    )
