"""Body-surface area, CAR-T cell dose and lymphodepletion doses (REFERENCE ONLY):
Mosteller RD, N Engl J Med 1987;317:1098; Du Bois D, Du Bois EF, Arch Intern Med
1916;17:863; the CD7 CAR-T trial protocols (see ``cartrial.decision``)."""

from __future__ import annotations

import math

from cartrial.decision._common import PATHWAY, Advice, _num
from cartrial.grading.core import GradingInputError, fmt


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
        reasons: tuple[str, ...] = (
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
