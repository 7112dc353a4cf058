"""Benchmark: endpoint derivation (populations, OS/PFS/EFS/DFS/DOR/CIR/NRM) at registry size.

    .venv/bin/python benchmarks/bench_endpoints.py --patients 1000 10000 100000 --repeat 3

Builds a typed ``Cohort`` directly (vectorised draws; loading is benchmarked by
``bench_scale``), with per patient: a day-28 response, for some an SCT, relapse or PD
assessment, death with a cause, last contact, three adverse events and
``--obs-per-patient`` laboratory rows. Times ``derive_endpoints`` (all seven endpoints,
populations included), best of ``--repeat`` rounds, CPU and wall seconds, and checks the
rows against a per-patient count. SYNTHETIC DATA.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd

from cartrial.cohort.model import Cohort, empty_table


def synthetic_cohort(n: int, obs_per_patient: int, seed: int = 1) -> Cohort:
    rng = np.random.default_rng(seed)
    ids = np.char.add("P", np.char.zfill(np.arange(n).astype(str), 6)).astype(object)
    infused = rng.random(n) < 0.95
    patients = empty_table("patients").reindex(range(n))
    patients["patient_id"] = pd.array(ids, dtype="string")
    patients["infused"] = pd.array(infused, dtype="boolean")
    patients["enrolled"] = pd.array(np.ones(n, dtype=bool), dtype="boolean")
    patients["source_file"] = "patients.csv"
    patients["source_row"] = pd.array(np.arange(n) + 2, dtype="Int64")

    resp = rng.choice(["CR", "CRi", "PR", "NR", "PD"], size=n, p=[0.6, 0.2, 0.08, 0.08, 0.04])
    rel_day = np.where(rng.random(n) < 0.4, rng.integers(40, 700, n), -1)
    sct_day = np.where(rng.random(n) < 0.35, rng.integers(30, 120, n), -1)
    death_day = np.where(rng.random(n) < 0.45, rng.integers(20, 900, n), -1)
    death_day = np.where(
        (death_day >= 0) & (rel_day >= 0), np.maximum(death_day, rel_day), death_day
    )
    cause = rng.choice(["relapse", "infection", "gvhd", "other"], size=n)
    last = np.where(death_day >= 0, death_day, rng.integers(100, 1000, n))
    parts = [
        (ids, np.full(n, 28.0), "response", resp, ""),
        (ids, last.astype(float), "last_contact", "", ""),
    ]
    for day, kind, c in (
        (rel_day, "relapse", ""),
        (sct_day, "sct", ""),
        (death_day, "death", cause),
    ):
        m = day >= 0
        parts.append((ids[m], day[m].astype(float), kind, "", c[m] if np.ndim(c) else c))
    ev = pd.concat(
        [
            pd.DataFrame({"patient_id": p, "day": d, "event": k, "response": r, "cause": c})
            for p, d, k, r, c in parts
        ],
        ignore_index=True,
    )
    ev = ev.sort_values(["patient_id", "day"], kind="stable").reset_index(drop=True)
    events = empty_table("events").reindex(range(len(ev)))
    for col in ("patient_id", "event", "response", "cause"):
        vals = ev[col].replace("", pd.NA)
        events[col] = pd.array(vals, dtype="string")
    events["day"] = ev["day"].to_numpy()
    events["source_file"] = "events.csv"
    events["source_row"] = pd.array(np.arange(len(ev)) + 2, dtype="Int64")

    k = 3
    ae = empty_table("adverse_events").reindex(range(n * k))
    ae["patient_id"] = pd.array(np.repeat(ids, k), dtype="string")
    ae["term"] = pd.array(rng.choice(["CRS", "ICANS", "aGVHD"], n * k), dtype="string")
    onset = rng.integers(0, 60, n * k).astype(float)
    ae["onset_day"] = onset
    ae["resolution_day"] = onset + rng.integers(1, 20, n * k)
    ae["grade"] = pd.array(rng.integers(1, 5, n * k), dtype="Int64")
    ae["source_file"] = "adverse_events.csv"
    ae["source_row"] = pd.array(np.arange(n * k) + 2, dtype="Int64")

    m = obs_per_patient
    ob = empty_table("observations").reindex(range(n * m))
    ob["patient_id"] = pd.array(np.repeat(ids, m), dtype="string")
    ob["analyte"] = pd.array(np.full(n * m, "crp", dtype=object), dtype="string")
    ob["day"] = (np.tile(np.arange(m), n) * 7).astype(float)
    ob["value"] = rng.gamma(2.0, 10.0, n * m)
    ob["unit"] = pd.array(np.full(n * m, "mg/L", dtype=object), dtype="string")
    ob["source_file"] = "observations.csv"
    ob["source_row"] = pd.array(np.arange(n * m) + 2, dtype="Int64")
    return Cohort(patients=patients, events=events, adverse_events=ae, observations=ob)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--patients", type=float, nargs="+", default=[1e3, 1e4, 1e5])
    ap.add_argument("--obs-per-patient", type=int, default=20)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    from cartrial.endpoints import analysis_populations, derive_endpoints

    print("| patients | event rows | observation rows | derive_endpoints wall s | CPU s | rows |")
    print("|---|---|---|---|---|---|")
    for n in (int(x) for x in args.patients):
        cohort = synthetic_cohort(n, args.obs_per_patient)
        walls, cpus = [], []
        out = None
        for _ in range(args.repeat):
            t0, c0 = time.perf_counter(), time.process_time()
            out = derive_endpoints(cohort)
            walls.append(time.perf_counter() - t0)
            cpus.append(time.process_time() - c0)
        pops = analysis_populations(cohort)
        expected = 3 * int(pops["safety"].sum()) + 3 * int(pops["complete_remission"].sum())
        expected += int(pops["responder"].sum())
        assert out is not None and len(out) == expected, (len(out), expected)
        print(
            f"| {n:,} | {len(cohort.events):,} | {len(cohort.observations):,} | "
            f"{min(walls):.2f} | {min(cpus):.2f} | {len(out):,} |"
        )


if __name__ == "__main__":
    main()
