"""Helpers for the statistics tests: R reference values and random datasets.

(Not a conftest: the tests folders have no __init__.py, so this module has a unique name.)
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

import numpy as np

DATA = Path(__file__).resolve().parent / "data"


@cache
def r_reference() -> dict:
    """Values computed by R survival 3.5-3 / cmprsk 2.2-11 (see data/make_r_reference.py)."""
    return json.loads((DATA / "r_reference.json").read_text())


def r_values(key: str) -> np.ndarray:
    """One R result vector (NA -> NaN)."""
    vals = r_reference()["r"][key]
    return np.array([np.nan if v is None else v for v in vals], dtype=float)


def r_dataset(name: str, ident: int | None = None) -> dict[str, np.ndarray]:
    """A dataset stored with the R reference values (``id`` selects one of several)."""
    data = {k: np.asarray(v) for k, v in r_reference()["data"][name].items()}
    if ident is None:
        return data
    keep = data["id"] == ident
    return {k: v[keep] for k, v in data.items() if k != "id"}


def random_survival(seed: int, n: int | None = None, tied: bool | None = None):
    """(time, event) with a mix of sizes, ties and censoring; deterministic per seed."""
    rng = np.random.default_rng(seed)
    n = int(rng.integers(5, 60)) if n is None else n
    tied = bool(seed % 2) if tied is None else tied
    t = rng.exponential(10.0, n)
    t = np.floor(t) if tied else np.round(t, 6)
    e = rng.random(n) < rng.uniform(0.3, 0.9)
    return t, e
