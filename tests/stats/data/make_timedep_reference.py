"""Regenerate ``timedep_reference.json``: R survival/cmprsk values for the tests of
``cartrial.stats.timedep`` and ``cartrial.stats.finegray``.

Not a test.  Needs R with survival and cmprsk (Debian: ``apt-get install r-base-core
r-cran-survival r-cran-cmprsk``).  From the repository root:

    .venv/bin/python tests/stats/data/make_timedep_reference.py

Draws the random datasets (fixed seeds, whole days with heavy ties, exposures on day 0,
on the day of the event and after the end of follow-up), runs ``timedep_reference.R``
on them and stores data and R output together, so the tests need neither R nor this
script.
"""

from __future__ import annotations

import json
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
N_SETS = 12


def timedep_sets() -> pd.DataFrame:
    rng = np.random.default_rng(20261202)
    frames = []
    for i in range(N_SETS):
        n = int(rng.integers(25, 160))
        time = np.floor(rng.exponential(rng.uniform(20, 60), n))
        if i % 3 == 0:
            time = np.floor(time / 3) * 3  # heavy ties
        status = (rng.random(n) < rng.uniform(0.4, 0.85)).astype(int)
        tx = np.floor(rng.uniform(0, 50, n))
        kind = rng.random(n)
        tx[kind < 0.35] = np.nan  # never exposed
        tx[(kind >= 0.35) & (kind < 0.42)] = 0  # exposed from day 0
        same = (kind >= 0.42) & (kind < 0.5)
        tx[same] = time[same]  # exposure on the day of the event / censoring
        age = np.round(rng.normal(50, 12, n), 1)
        seen = ~np.isnan(tx) & (tx <= time)
        frames.append(
            pd.DataFrame(
                {
                    "dataset": i,
                    "id": np.arange(1, n + 1),
                    "time": time,
                    "status": status,
                    "txtime": tx,
                    "age": age,
                    "L": float(np.median(tx[seen])),
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


def finegray_sets() -> pd.DataFrame:
    rng = np.random.default_rng(20261203)
    frames = []
    for i in range(N_SETS):
        n = int(rng.integers(30, 220))
        z1 = np.round(rng.normal(0, 1, n), 2)
        z2 = rng.integers(0, 2, n)
        z3 = np.round(rng.uniform(-1, 1, n), 1)
        scale = np.exp(-0.4 * z1 + 0.5 * z2)
        time = rng.exponential(20 * scale)
        time = np.floor(time) + 1 if i % 2 == 0 else np.round(time, 2)
        cause = rng.choice([0, 1, 2], n, p=[0.3, 0.4, 0.3])
        frames.append(
            pd.DataFrame({"dataset": i, "time": time, "cause": cause, "z1": z1, "z2": z2, "z3": z3})
        )
    return pd.concat(frames, ignore_index=True)


def main() -> None:
    td, fg = timedep_sets(), finegray_sets()
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        td.to_csv(d / "td.csv", index=False, na_rep="NA")
        fg.to_csv(d / "fg.csv", index=False)
        subprocess.run(["Rscript", str(HERE / "timedep_reference.R"), str(d)], check=True)
        r_out = {}
        for line in (d / "r_out.txt").read_text().splitlines():
            key, *vals = line.split()
            r_out[key] = [None if v == "NA" else float(v) for v in vals]
    versions = subprocess.run(
        ["Rscript", "-e", 'cat(R.version.string, "survival", format(packageVersion("survival")),'
         ' "cmprsk", format(packageVersion("cmprsk")))'],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    payload = {
        "source": versions.strip() + " (see make_timedep_reference.py, timedep_reference.R)",
        "data": {
            "td": {c: [None if pd.isna(v) else v for v in td[c].tolist()] for c in td.columns},
            "fg": fg.to_dict(orient="list"),
        },
        "r": r_out,
    }
    (HERE / "timedep_reference.json").write_text(json.dumps(payload, separators=(",", ":")))


if __name__ == "__main__":
    main()
