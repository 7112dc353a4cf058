"""Decision support - REFERENCE ONLY.

Every function here restates what a published protocol or consensus text lists, names
the rule that fired and its source, and sets ``reference_only=True``. Nothing here is
a prescription: treatment decisions belong to the treating team and the trial protocol.

Sources: the CD7 CAR-T trial protocols (eligibility, product dose, lymphodepletion and the "all-in-one"
sequence as the CD7 CAR-T reports describe them: Tan 2023 J Hematol Oncol 16:34; Hu
2024 N Engl J Med 390:1467; Pan 2023; Zhang 2023 Am J Hematol 98:1898); Mosteller RD,
N Engl J Med 1987;317:1098; Du Bois D, Du Bois EF, Arch Intern Med 1916;17:863;
Neelapu SS et al., Nat Rev Clin Oncol 2018;15:47 (CARTOX management); Santomasso BD et
al., J Clin Oncol 2021;39:3978 (ASCO guideline); practice reported by the CD7 CAR-T trials.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from cartrial.grading.core import GradingInputError, fmt

PATHWAY = "CD7 CAR-T trial protocols (Tan 2023; Hu 2024; Pan 2023; Zhang 2023)"
MANAGEMENT_SOURCES = (
    "Neelapu SS et al., Nat Rev Clin Oncol 2018;15:47 (CARTOX); Santomasso "
    "BD et al., J Clin Oncol 2021;39:3978 (ASCO); practice reported by the "
    "CD7 CAR-T trials"
)


@dataclass(frozen=True)
class Advice:
    """A reference-only decision-support output: the rule, its source, the result."""

    rule: str
    source: str
    result: Any
    reasons: tuple[str, ...]
    missing: tuple[str, ...] = ()
    reference_only: bool = True

    def to_dict(self) -> dict[str, Any]:
        return {
            "rule": self.rule,
            "source": self.source,
            "result": self.result,
            "reasons": list(self.reasons),
            "missing": list(self.missing),
            "reference_only": self.reference_only,
        }


def _num(name: str, v: Any, lo: float, hi: float, required: bool = True) -> float:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        if required:
            raise GradingInputError(name, v, f"a number from {lo:g} to {hi:g}")
        return math.nan
    if isinstance(v, bool) or not isinstance(v, int | float):
        raise GradingInputError(name, v, f"a number from {lo:g} to {hi:g}")
    if not lo <= v <= hi:
        raise GradingInputError(name, v, f"a number from {lo:g} to {hi:g}")
    return float(v)


def _opt_bool(name: str, v: Any) -> bool | None:
    if v is None:
        return None
    if not isinstance(v, bool):
        raise GradingInputError(name, v, "True, False or None")
    return v


def _checklist(rule: str, source: str, checks: list[tuple[str, bool | None, str]]) -> Advice:
    """Advice from a list of (item, met, text) checks: False when any item is not met,
    None when none failed but some are unknown (those are ``missing``), else True."""
    reasons = tuple(
        f"{'met' if ok else 'NOT met' if ok is False else 'unknown'}: {txt}"
        for _, ok, txt in checks
    )
    missing = tuple(n for n, ok, _ in checks if ok is None)
    failed = any(ok is False for _, ok, _ in checks)
    result = False if failed else (None if missing else True)
    return Advice(rule, source, result, reasons, () if failed else missing)


# -- eligibility -----------------------------------------------------------------------


def trial_eligibility(
    *,
    cd7_blasts_pct: float | None = None,
    age_years: float | None = None,
    ecog: int | None = None,
    uncontrolled_infection: bool | None = None,
    organ_failure: bool | None = None,
    cd7_min_pct: float = 80.0,
    age_window: tuple[float, float] = (0.0, 70.0),
    ecog_max: int = 2,
) -> Advice:
    """CD7 CAR-T trial eligibility screen as the protocols describe it (the CD7 CAR-T trial protocols):
    CD7 on >= ``cd7_min_pct`` % of blasts (trials use 50-95 %), age within
    ``age_window``, ECOG <= ``ecog_max`` (i.e. < 3), no uncontrolled infection, no organ
    failure. ``result``: True (all met), False (one failed), None (unknown items)."""
    checks: list[tuple[str, bool | None, str]] = []
    cd7 = _num("cd7_blasts_pct", cd7_blasts_pct, 0, 100, required=False)
    age = _num("age_years", age_years, 0, 120, required=False)
    if ecog is not None and (isinstance(ecog, bool) or ecog not in range(6)):
        raise GradingInputError("ecog", ecog, "an ECOG performance status 0-5")
    checks.append(
        (
            "cd7_blasts_pct",
            None if math.isnan(cd7) else cd7 >= cd7_min_pct,
            f"CD7+ blasts {fmt(cd7)} % (needs >= {fmt(cd7_min_pct)} %)",
        )
    )
    checks.append(
        (
            "age_years",
            None if math.isnan(age) else age_window[0] <= age <= age_window[1],
            f"age {fmt(age)} (window {fmt(age_window[0])}-{fmt(age_window[1])})",
        )
    )
    checks.append(
        ("ecog", None if ecog is None else ecog <= ecog_max, f"ECOG {ecog} (needs <= {ecog_max})")
    )
    inf = _opt_bool("uncontrolled_infection", uncontrolled_infection)
    org = _opt_bool("organ_failure", organ_failure)
    checks.append(
        (
            "uncontrolled_infection",
            None if inf is None else not inf,
            "uncontrolled infection" if inf else "no uncontrolled infection",
        )
    )
    checks.append(
        (
            "organ_failure",
            None if org is None else not org,
            "organ failure" if org else "no organ failure",
        )
    )
    return _checklist("cd7_cart_trial_eligibility", PATHWAY, checks)


def all_in_one_sct_eligibility(
    *,
    response: str | None = None,
    pancytopenia: bool | None = None,
    hypocellular_marrow: bool | None = None,
    cart_detectable: bool | None = None,
    prior_allo_sct: bool | None = None,
) -> Advice:
    """Sequential "all-in-one" CAR-T + haploidentical SCT (Hu 2024 NEJM):
    the report describes it for patients in CRi with severe pancytopenia or a
    hypocellular marrow, with detectable CAR-T cells and no prior allo-SCT."""
    from cartrial.cohort.vocab import RESPONSES, canonical

    resp = None if response is None else canonical(response, RESPONSES)
    if response is not None and resp is None:
        raise GradingInputError("response", response, "a response category (CR, CRi, ...)")
    pan = _opt_bool("pancytopenia", pancytopenia)
    hypo = _opt_bool("hypocellular_marrow", hypocellular_marrow)
    cart = _opt_bool("cart_detectable", cart_detectable)
    prior = _opt_bool("prior_allo_sct", prior_allo_sct)
    marrow = True if (pan or hypo) else (None if pan is None or hypo is None else False)
    checks = [
        ("response", None if resp is None else resp == "CRi", f"response {resp} (CRi)"),
        ("pancytopenia", marrow, "severe pancytopenia or hypocellular marrow"),
        ("cart_detectable", cart, "CAR-T cells detectable"),
        ("prior_allo_sct", None if prior is None else not prior, "no prior allo-SCT"),
    ]
    return _checklist(
        "all_in_one_sct_candidate", "Hu 2024 N Engl J Med 390:1467; " + PATHWAY, checks
    )


# -- body size, dose ------------------------------------------------------------------


def bsa_mosteller(height_cm: float, weight_kg: float) -> float:
    """Body-surface area (m²) = sqrt(height cm x weight kg / 3600) (Mosteller 1987)."""
    h = _num("height_cm", height_cm, 30, 250)
    w = _num("weight_kg", weight_kg, 0.5, 400)
    return math.sqrt(h * w / 3600.0)


def bsa_dubois(height_cm: float, weight_kg: float) -> float:
    """Body-surface area (m²) = 0.007184 x weight^0.425 x height^0.725 (Du Bois 1916)."""
    h = _num("height_cm", height_cm, 30, 250)
    w = _num("weight_kg", weight_kg, 0.5, 400)
    return 0.007184 * w**0.425 * h**0.725


def cell_dose(
    total_car_t_cells: float,
    weight_kg: float,
    *,
    target_per_kg: float = 1e6,
    tolerance: float = 0.30,
    low_dose_per_kg: float = 5e5,
) -> Advice:
    """Infused CAR-T dose per kg against the protocol target (CD7 CAR-T protocols: 1x10^6/kg
    +-30 %, 5x10^5/kg allowed when the product falls short). ``result``: dose_per_kg,
    level (target, low_dose, below_low_dose, above_target) and the cell range the
    target means for this weight."""
    cells = _num("total_car_t_cells", total_car_t_cells, 0, 1e12)
    w = _num("weight_kg", weight_kg, 0.5, 400)
    tol = _num("tolerance", tolerance, 0, 1)
    per_kg = cells / w
    lo, hi = target_per_kg * (1 - tol), target_per_kg * (1 + tol)
    if per_kg > hi:
        level = "above_target"
    elif per_kg >= lo:
        level = "target"
    elif per_kg >= low_dose_per_kg:
        level = "low_dose"
    else:
        level = "below_low_dose"
    result = {
        "dose_per_kg": per_kg,
        "level": level,
        "target_range_cells": (lo * w, hi * w),
        "low_dose_cells": low_dose_per_kg * w,
    }
    reasons = (
        f"{cells:.3g} cells / {fmt(w)} kg = {per_kg:.3g} cells/kg",
        f"protocol target {target_per_kg:.3g}/kg +-{fmt(tol * 100)} % "
        f"({lo:.3g}-{hi:.3g}/kg); low-dose level {low_dose_per_kg:.3g}/kg",
        f"level: {level}",
    )
    return Advice("car_t_dose_per_kg", PATHWAY, result, reasons)


def lymphodepletion_doses(
    height_cm: float,
    weight_kg: float,
    *,
    regimen: str = "flu_cy",
    fludarabine_mg_m2: float = 30.0,
    cyclophosphamide_mg_m2: float = 250.0,
    cyclophosphamide_mg_kg: float = 30.0,
    bsa_method: str = "mosteller",
) -> Advice:
    """Daily lymphodepletion doses on days -5 to -3 as the protocols list them
    (the CD7 CAR-T trial protocols): fludarabine 30 mg/m²/day with cyclophosphamide 250-300 mg/m²/day
    ("flu_cy"), or cyclophosphamide 30 mg/kg/day ("cy_mg_kg", new-donor cells)."""
    if bsa_method not in ("mosteller", "dubois"):
        raise GradingInputError("bsa_method", bsa_method, "mosteller or dubois")
    bsa = (bsa_mosteller if bsa_method == "mosteller" else bsa_dubois)(height_cm, weight_kg)
    if regimen == "flu_cy":
        _num("cyclophosphamide_mg_m2", cyclophosphamide_mg_m2, 250, 300)
        flu = fludarabine_mg_m2 * bsa
        cy = cyclophosphamide_mg_m2 * bsa
        result = {
            "bsa_m2": bsa,
            "fludarabine_mg_per_day": flu,
            "cyclophosphamide_mg_per_day": cy,
            "days": (-5, -4, -3),
        }
        reasons = (
            f"BSA {bsa:.3f} m² ({bsa_method})",
            f"fludarabine {fmt(fludarabine_mg_m2)} mg/m²/day = {flu:.1f} mg/day",
            f"cyclophosphamide {fmt(cyclophosphamide_mg_m2)} mg/m²/day = {cy:.1f} mg/day",
            "protocols list days -5 to -3",
        )
    elif regimen == "cy_mg_kg":
        w = _num("weight_kg", weight_kg, 0.5, 400)
        cy = cyclophosphamide_mg_kg * w
        result = {"bsa_m2": bsa, "cyclophosphamide_mg_per_day": cy, "days": (-5, -4, -3)}
        reasons = (
            f"cyclophosphamide {fmt(cyclophosphamide_mg_kg)} mg/kg/day x {fmt(w)} kg "
            f"= {cy:.1f} mg/day",
            "protocols list days -5 to -3",
        )
    else:
        raise GradingInputError("regimen", regimen, "flu_cy or cy_mg_kg")
    return Advice(f"lymphodepletion_{regimen}", PATHWAY, result, reasons)


# -- toxicity management reference ---------------------------------------------------

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
    from cartrial.cohort.vocab import AE_TERMS, canonical

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
