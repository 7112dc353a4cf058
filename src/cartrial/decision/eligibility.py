"""Eligibility screens (REFERENCE ONLY): the CD7 CAR-T trial inclusion criteria and the
"all-in-one" consolidative transplant, each as a checklist that names every item and its
source (see ``cartrial.decision``)."""

from __future__ import annotations

import math

from cartrial.cohort.vocab import RESPONSES, canonical
from cartrial.decision._common import PATHWAY, Advice, _checklist, _num, _opt_bool
from cartrial.grading.core import GradingInputError, fmt


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
