"""Decision support is reference-only, names its rule and source, and is never prescriptive."""

from __future__ import annotations

import math

import pytest

from cartrial.decision import (
    all_in_one_sct_eligibility,
    bsa_dubois,
    bsa_mosteller,
    cell_dose,
    lymphodepletion_doses,
    management_reference,
    trial_eligibility,
)
from cartrial.grading import GradingInputError


def _is_reference(a):
    assert a.reference_only is True and a.rule and a.source
    assert a.to_dict()["reference_only"] is True


def test_bsa_against_published_values():
    # Mosteller 1987: 170 cm, 70 kg -> sqrt(11900/3600) = 1.818 m²
    assert bsa_mosteller(170, 70) == pytest.approx(1.818, abs=0.001)
    # Du Bois: 170 cm, 70 kg -> 1.81 m² (standard nomogram value)
    assert bsa_dubois(170, 70) == pytest.approx(1.81, abs=0.01)
    # a child: 110 cm, 18 kg -> Mosteller 0.74 m²
    assert bsa_mosteller(110, 18) == pytest.approx(math.sqrt(110 * 18 / 3600), rel=1e-12)
    with pytest.raises(GradingInputError):
        bsa_mosteller(-170, 70)


def test_cell_dose_levels():
    a = cell_dose(7.0e7, 70)
    _is_reference(a)
    assert a.result["dose_per_kg"] == pytest.approx(1e6) and a.result["level"] == "target"
    assert cell_dose(0.70e6 * 70, 70).result["level"] == "target"  # -30 % edge
    assert cell_dose(0.69e6 * 70, 70).result["level"] == "low_dose"
    assert cell_dose(0.4e6 * 70, 70).result["level"] == "below_low_dose"
    assert cell_dose(1.31e6 * 70, 70).result["level"] == "above_target"
    lo, hi = a.result["target_range_cells"]
    assert (lo, hi) == pytest.approx((0.7e6 * 70, 1.3e6 * 70))


def test_lymphodepletion_doses():
    a = lymphodepletion_doses(170, 70)
    _is_reference(a)
    bsa = math.sqrt(170 * 70 / 3600)
    assert a.result["fludarabine_mg_per_day"] == pytest.approx(30 * bsa)
    assert a.result["cyclophosphamide_mg_per_day"] == pytest.approx(250 * bsa)
    assert a.result["days"] == (-5, -4, -3)
    b = lymphodepletion_doses(170, 70, regimen="cy_mg_kg")
    assert b.result["cyclophosphamide_mg_per_day"] == pytest.approx(30 * 70)
    with pytest.raises(GradingInputError):
        lymphodepletion_doses(170, 70, cyclophosphamide_mg_m2=500)


def test_trial_eligibility():
    ok = trial_eligibility(
        cd7_blasts_pct=95, age_years=30, ecog=1, uncontrolled_infection=False, organ_failure=False
    )
    _is_reference(ok)
    assert ok.result is True
    bad = trial_eligibility(
        cd7_blasts_pct=95, age_years=30, ecog=3, uncontrolled_infection=False, organ_failure=False
    )
    assert bad.result is False and any("NOT met: ECOG 3" in r for r in bad.reasons)
    unknown = trial_eligibility(cd7_blasts_pct=95, age_years=30)
    assert unknown.result is None and "ecog" in unknown.missing
    assert (
        trial_eligibility(
            cd7_blasts_pct=60,
            age_years=71,
            ecog=0,
            uncontrolled_infection=False,
            organ_failure=False,
        ).result
        is False
    )


def test_all_in_one_sct_eligibility():
    a = all_in_one_sct_eligibility(
        response="CRi",
        pancytopenia=True,
        hypocellular_marrow=None,
        cart_detectable=True,
        prior_allo_sct=False,
    )
    _is_reference(a)
    assert a.result is True
    assert (
        all_in_one_sct_eligibility(
            response="CR", pancytopenia=True, cart_detectable=True, prior_allo_sct=False
        ).result
        is False
    )
    assert (
        all_in_one_sct_eligibility(
            response="CRi", pancytopenia=True, cart_detectable=True, prior_allo_sct=True
        ).result
        is False
    )


@pytest.mark.parametrize(
    "term,grade", [("CRS", g) for g in range(6)] + [("ICANS", g) for g in range(6)]
)
def test_management_reference_wording(term, grade):
    a = management_reference(term, grade)
    _is_reference(a)
    text = " ".join(a.reasons).lower()
    assert "consensus guidance lists" in text
    for word in ("must", "should", "administer", "give "):
        assert word not in text


def test_management_reference_content():
    assert "tocilizumab" in management_reference("CRS", 2).result["listed_options"][0]
    assert any(
        "corticosteroid" in o for o in management_reference("ICANS", 2).result["listed_options"]
    )
    assert any(
        "ruxolitinib" in o
        for o in management_reference("CRS", 3, steroid_refractory=True).result["listed_options"]
    )
    with pytest.raises(GradingInputError):
        management_reference("GVHD", 2)
