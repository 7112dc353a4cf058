"""A synthetic four-table cohort, for tests and benchmarks of the store and web app.

Not clinical data: values are drawn to exercise every column type (floats, integers,
booleans, dates, vocabulary words, categorical observations, extra columns) and the
sizes a registry reaches. Deterministic for a given seed.
"""

from __future__ import annotations

from pathlib import Path


def write_synthetic_cohort(
    directory: str | Path,
    n_patients: int = 20,
    obs_per_patient: int = 12,
    sites: tuple[str, ...] = ("SITE-A", "SITE-B"),
    seed: int = 7,
) -> Path:
    """Write patients/events/adverse_events/observations CSVs into ``directory``."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    n = n_patients
    ids = np.array([f"P{i:05d}" for i in range(1, n + 1)])
    patients = pd.DataFrame(
        {
            "patient_id": ids,
            "age_years": np.round(rng.uniform(3, 70, n), 1),
            "sex": rng.choice(["M", "F"], n),
            "diagnosis": rng.choice(["T-ALL", "T-LBL", "AML"], n),
            "cd7_blasts_pct": np.round(rng.uniform(50, 100, n), 2),
            "prior_lines": rng.integers(1, 6, n),
            "prior_allo_sct": rng.choice(["yes", "no"], n),
            "product_source": rng.choice(["prior_sct_donor", "new_donor", "universal"], n),
            "weight_kg": np.round(rng.uniform(15, 95, n), 1),
            "site": rng.choice(list(sites), n),
            "infusion_date": (
                pd.Timestamp("2022-01-01") + pd.to_timedelta(rng.integers(0, 700, n), unit="D")
            ).strftime("%Y-%m-%d"),
            "cohort_arm": rng.choice(["A", "B"], n),  # an extra column (subgroup)
        }
    )
    patients.to_csv(out / "patients.csv", index=False)
    relapse_day = rng.integers(60, 400, n)
    relapsed = rng.random(n) < 0.4
    events = pd.concat(
        [
            pd.DataFrame(
                {
                    "patient_id": ids,
                    "day": 28,
                    "event": "response",
                    "response": rng.choice(["CR", "CRi", "NR"], n),
                    "mrd": "negative",
                }
            ),
            pd.DataFrame(
                {
                    "patient_id": ids[relapsed],
                    "day": relapse_day[relapsed],
                    "event": "relapse",
                    "site": "marrow",
                }
            ),
            pd.DataFrame({"patient_id": ids, "day": 500, "event": "last_contact"}),
        ]
    )
    events.to_csv(out / "events.csv", index=False)
    aes = pd.DataFrame(
        {
            "patient_id": ids,
            "term": "CRS",
            "onset_day": rng.integers(1, 8, n),
            "resolution_day": rng.integers(9, 15, n),
            "grade": rng.integers(0, 4, n),
            "system": "ASTCT2019",
        }
    )
    aes.to_csv(out / "adverse_events.csv", index=False)
    k = obs_per_patient
    pid = np.repeat(ids, k)
    day = np.tile(np.arange(k, dtype=float) * 3, n)
    obs = pd.DataFrame(
        {
            "patient_id": pid,
            "day": day,
            "analyte": "cart_flow",
            "value": np.round(rng.lognormal(3, 1.5, n * k), 3),
            "unit": "cells/uL",
        }
    )
    oxy = pd.DataFrame(
        {
            "patient_id": ids,
            "day": 5.0,
            "analyte": "oxygen",
            "value": rng.choice(["low_flow", "high_flow", "facemask"], n),
            "unit": "",
        }
    )
    pd.concat([obs, oxy]).to_csv(out / "observations.csv", index=False)
    return out
