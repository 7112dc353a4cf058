"""Seeded random bedside cohorts for the ``grade_daily``/``derive_episodes`` golden test.

Each cohort has patients in a non-sorted id order, charted days with gaps (and a few
fractional days that floor onto a charted day), items left out at random (unknown),
several values of one item on one day (worst kept, every source row listed), words in
``value_text``, other units (°F, cells/uL, umol/L), therapy rows (tocilizumab, steroids,
antipyretics, given or not), direct ``fever_masked`` rows, stool volumes, weights,
laboratory baselines, rows of analytes that are not graded and rows without a value.
SYNTHETIC DATA.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

OXYGEN = ["none", "none", "none", "low_flow", "high_flow", "facemask", "cpap", "bipap"]
CONSCIOUSNESS = ["alert", "alert", "awakens_to_voice", "awakens_to_touch", "unarousable"]
SEIZURE = ["none", "none", "rapid_resolving", "focal", "status_epilepticus"]
EDEMA = ["none", "none", "focal", "diffuse"]
IDS = ["P10", "P2", "b-7", "A1", "P1", "z"]

#: grading parameters of cohort ``seed`` (cycled)
PARAMS = [
    dict(),
    dict(fever_mask_days=None, crs_system="CARTOX", icans_system="CARTOX"),
    dict(fever_mask_days=0, crs_system="Lee2014", gvhd_system="Keystone1994"),
    dict(fever_mask_days=3, stool_average_days=1),
    dict(fever_mask_days=7.5, baseline_window=(-10.0, 1.0)),
]
LIMITS = dict(
    uln={"alt_u_l": 40, "ast_u_l": 40, "creatinine_mg_dl": 1.1, "bilirubin_mg_dl": 1.2},
    lln={"fibrinogen_mg_dl": 200},
)
MAX_GAPS = (0, 2, 7)


def cohort(seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``(observations, patients)`` of cohort ``seed``."""
    rng = np.random.default_rng(seed)
    n_pat = int(rng.integers(1, 5))
    ids = list(rng.choice(IDS, size=n_pat, replace=False))
    rows: list[dict] = []

    def add(pid, day, analyte, value=np.nan, text=None, unit=None):
        rows.append(
            dict(patient_id=pid, day=day, analyte=analyte, value=value, value_text=text, unit=unit)
        )

    p_item = rng.uniform(0.5, 0.95)
    for pid in ids:
        days = np.sort(rng.choice(np.arange(-6, 24), size=int(rng.integers(3, 18)), replace=False))
        fever_days = rng.random(len(days)) < 0.5
        for day, hot in zip(days, fever_days, strict=True):
            day = float(day) + (0.5 if rng.random() < 0.08 else 0.0)

            def maybe(p=p_item):
                return rng.random() < p

            if maybe():
                t = rng.uniform(38.0, 40.5) if hot else rng.uniform(36.0, 37.9)
                if rng.random() < 0.15:
                    add(pid, day, "temperature", round(t * 9 / 5 + 32, 1), unit="F")
                else:
                    add(pid, day, "temperature", round(t, 1), unit="C")
                if rng.random() < 0.2:  # a second reading the same day
                    add(pid, day, "temperature", round(rng.uniform(36.0, 40.0), 1))
            vaso = int(rng.random() < 0.15)
            if maybe():
                add(pid, day, "vasopressors", vaso + int(rng.random() < 0.3) * vaso)
            if maybe():
                add(pid, day, "hypotension", 1 if vaso or rng.random() < 0.2 else 0)
            if maybe():
                add(pid, day, "vasopressin", 0)
            dev = str(rng.choice(OXYGEN))
            if maybe():
                add(pid, day, "oxygen", text=dev)
            if dev != "none" and maybe():
                add(pid, day, "o2_flow", float(rng.integers(1, 12)))
            if dev in ("facemask", "cpap", "bipap") and maybe(0.5):
                add(pid, day, "fio2", round(rng.uniform(0.25, 0.8), 2))
            if rng.random() < 0.12:
                drug = str(rng.choice(["tocilizumab", "steroids", "antipyretics", "antipyretic"]))
                if rng.random() < 0.5:
                    add(pid, day, drug, 1.0)
                else:
                    add(pid, day, drug, text=str(rng.choice(["yes", "no", "given"])))
            if rng.random() < 0.03:
                add(pid, day, "fever_masked", float(rng.integers(0, 2)))
            # ICANS
            if maybe():
                add(pid, day, "ice_score", float(rng.integers(0, 11)))
                if rng.random() < 0.2:
                    add(pid, day, "ice_score", float(rng.integers(0, 11)))
            if rng.random() < 0.2:
                add(pid, day, "capd_score", float(rng.integers(0, 20)))
            if maybe():
                add(pid, day, "consciousness", text=str(rng.choice(CONSCIOUSNESS)))
            if maybe(0.4):
                add(pid, day, "seizure", text=str(rng.choice(SEIZURE)))
            if maybe(0.3):
                add(pid, day, "motor_weakness", float(rng.random() < 0.1))
            if maybe(0.3):
                add(pid, day, "cerebral_edema", text=str(rng.choice(EDEMA)))
            # aGVHD
            if maybe(0.4):
                add(pid, day, "skin_bsa_pct", float(rng.choice([0, 10, 30, 60, 80])))
            if maybe(0.2):
                add(pid, day, "bullae", float(rng.random() < 0.2))
            if maybe(0.4):
                add(pid, day, "stool_ml_day", float(rng.choice([0, 300, 600, 1200, 1700])))
            if maybe(0.2):
                add(pid, day, "stool_episodes", float(rng.integers(0, 9)))
            if maybe(0.2):
                add(pid, day, "upper_gi", float(rng.random() < 0.3))
            if maybe(0.2):
                add(pid, day, "severe_abdominal_pain", float(rng.random() < 0.2))
            if maybe(0.3):
                if rng.random() < 0.3:
                    add(pid, day, "bilirubin", round(rng.uniform(5, 200), 0), unit="umol/L")
                else:
                    add(pid, day, "bilirubin", round(rng.uniform(0.3, 12), 1))
            if maybe(0.15):
                add(pid, day, "weight", round(rng.uniform(15, 90), 1))
            # counts and laboratory terms
            if maybe():
                if rng.random() < 0.3:
                    add(pid, day, "anc", float(rng.integers(50, 3000)), unit="cells/uL")
                else:
                    add(pid, day, "anc", round(rng.uniform(0.05, 3.0), 2))
                if rng.random() < 0.2:
                    add(pid, day, "anc", round(rng.uniform(0.05, 3.0), 2))
            for analyte, lo, hi in (
                ("platelets", 5, 300),
                ("lymphocytes", 0.05, 3),
                ("wbc", 0.2, 12),
                ("hemoglobin", 5, 15),
                ("alt", 10, 600),
                ("ast", 10, 600),
                ("creatinine", 0.4, 5),
                ("fibrinogen", 40, 400),
            ):
                if maybe(0.5):
                    add(pid, day, analyte, round(rng.uniform(lo, hi), 2))
            if rng.random() < 0.3:  # not graded, or no value
                add(pid, day, "cd3", float(rng.integers(0, 900)), unit="cells/uL")
            if rng.random() < 0.1:
                add(pid, day, "ice_score")
    obs = pd.DataFrame(
        rows, columns=["patient_id", "day", "analyte", "value", "value_text", "unit"]
    )
    order = rng.permutation(len(obs)) if rng.random() < 0.3 else np.arange(len(obs))
    obs = obs.iloc[order].reset_index(drop=True)
    if rng.random() < 0.8:
        obs["source_file"] = np.where(rng.random(len(obs)) < 0.9, "observations.csv", "late.csv")
        obs["source_row"] = pd.array(np.arange(len(obs)) + 2, dtype="Int64")
    age = rng.choice([np.nan, 6.0, 11.0, 35.0, 70.0], size=n_pat)
    weight = rng.choice([np.nan, 18.0, 70.0], size=n_pat)
    patients = pd.DataFrame({"patient_id": ids, "age_years": age, "weight_kg": weight})
    return obs, patients


def params(seed: int) -> dict:
    return {**PARAMS[seed % len(PARAMS)], **LIMITS}
