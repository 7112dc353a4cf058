"""Recorded versus derived adverse events: where the maximum grades disagree
(``compare_episodes``)."""

from __future__ import annotations

from typing import Any

import numpy as np

from cartrial.cohort.vocab import AE_TERMS, GRADING_SYSTEMS, canonical


def compare_episodes(recorded_ae, derived_ae, daily_grades=None) -> list[dict[str, Any]]:
    """Disagreements between recorded and derived maximum grades per patient and term.

    Each item: ``patient_id, term, recorded_grade, derived_grade, recorded_system,
    derived_system, kind, note`` with ``kind`` one of ``grade_differs`` (same system,
    different maximum), ``system_differs`` (different grading systems: never mapped,
    only reported), ``recorded_only`` (no derived episode; derived grade 0 when
    ``daily_grades`` shows the term was observed, else None) and ``derived_only``.
    """
    rec = _max_by(recorded_ae)
    der = _max_by(derived_ae)
    observed: set[tuple[str, str]] = set()
    if daily_grades is not None and len(daily_grades):
        pairs = daily_grades[["patient_id", "term"]].astype(str).drop_duplicates()
        observed = set(zip(pairs["patient_id"], pairs["term"], strict=True))
    out: list[dict[str, Any]] = []
    for key in sorted(set(rec) | set(der)):
        r, dv = rec.get(key), der.get(key)
        item = {
            "patient_id": key[0],
            "term": key[1],
            "recorded_grade": None if r is None else r[0],
            "derived_grade": None if dv is None else dv[0],
            "recorded_system": None if r is None else r[1],
            "derived_system": None if dv is None else dv[1],
        }
        if r is not None and dv is not None:
            if r[1] and dv[1] and r[1] != dv[1]:
                out.append(
                    {
                        **item,
                        "kind": "system_differs",
                        "note": f"recorded by {r[1]}, derived by {dv[1]}: not comparable",
                    }
                )
            elif r[0] != dv[0]:
                out.append(
                    {
                        **item,
                        "kind": "grade_differs",
                        "note": f"recorded max grade {r[0]}, derived {dv[0]}",
                    }
                )
        elif r is not None:
            seen = key in observed
            out.append(
                {
                    **item,
                    "derived_grade": 0 if seen else None,
                    "kind": "recorded_only",
                    "note": "observations show no episode"
                    if seen
                    else "no observations to derive this term from",
                }
            )
        elif dv is not None:
            out.append(
                {
                    **item,
                    "kind": "derived_only",
                    "note": f"derived max grade {dv[0]} has no recorded episode",
                }
            )
    return out


def _max_by(ae) -> dict[tuple[str, str], tuple[int, str | None]]:
    """(patient, canonical term) -> (maximum grade, its system). Rows are read in table
    order; a row raising the maximum sets the system when it names one (the first row
    always does), so the system is that of the last row raising the maximum that names
    one.

    Terms and systems are canonicalised once per distinct spelling; the maxima are found
    on integer codes (no per-row Python)."""
    import pandas as pd

    if ae is None or len(ae) == 0:
        return {}
    df = ae[ae["grade"].notna()]
    if df.empty:
        return {}
    pid = df["patient_id"].astype(str).to_numpy(dtype=object)
    t_codes, t_uniq = pd.factorize(df["term"].astype(str).to_numpy(dtype=object))
    terms = np.asarray([canonical(t, AE_TERMS) or t for t in t_uniq], dtype=object)[t_codes]
    if "system" in df.columns:
        s_codes, s_uniq = pd.factorize(df["system"].to_numpy(dtype=object))
        canon = [None if pd.isna(s) else (canonical(s, GRADING_SYSTEMS) or str(s)) for s in s_uniq]
        systems = np.asarray([*canon, None], dtype=object)[s_codes]  # -1 (missing) -> None
    else:
        systems = np.full(len(df), None, dtype=object)
    grade = df["grade"].astype(int).to_numpy()
    keys, uniq = pd.factorize(pd.MultiIndex.from_arrays([pid, terms]))
    running = pd.Series(grade).groupby(keys).cummax()
    before = running.groupby(keys).shift(1).to_numpy(dtype=float)  # NaN at a key's first row
    raises = np.isnan(before) | (grade > before)
    named = np.flatnonzero(raises & pd.notna(systems))
    last_named = np.full(len(uniq), -1, dtype=np.intp)
    np.maximum.at(last_named, keys[named], named)
    best = running.groupby(keys).max().reindex(range(len(uniq))).to_numpy()
    return {
        (p, t): (int(best[j]), None if last_named[j] < 0 else systems[last_named[j]])
        for j, (p, t) in enumerate(uniq)
    }
