"""``derive_episodes`` is vectorised over rows (issue 16); it must give exactly what the
scalar, row-by-row algorithm it replaced gave. That algorithm is kept below, verbatim in
its logic, as the independent reference, and both are run on random daily grades with
gaps, unproven onsets, lower-bound days and resolved days."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from cartrial.grading.episodes import TERM_MAX_GRADE, derive_episodes


def _day_text(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else f"{x:g}"


def reference_episodes(d: pd.DataFrame, max_gap_days: int) -> list[dict]:
    """The scalar episode builder (one pass over sorted rows, an open episode at a time)."""
    d = d[d["grade"].notna()].sort_values(["patient_id", "term", "system", "day"], kind="stable")
    records: list[dict] = []
    cur = None
    prev = None
    for r in d.itertuples(index=False):
        g, gmax = int(r.grade), max(int(r.grade_max), int(r.grade))
        same = prev is not None and (r.patient_id, r.term, r.system) == prev[:3]
        gap = r.day - prev[3] - 1 if same else 0.0
        if cur is not None and not (same and gap <= max_gap_days):
            cur["resolution_day"] = math.nan
            records.append(cur)
            cur = None
        if gmax == 0:
            if cur is not None:
                cur["resolution_day"] = r.day
                records.append(cur)
                cur = None
        elif cur is None and g < 1:
            pass
        else:
            if cur is None:
                cur = dict(
                    patient_id=r.patient_id,
                    term=r.term,
                    system=r.system,
                    onset_day=r.day,
                    grade=0,
                    grade_max=0,
                    by_day=[],
                    missing=[],
                    rows=[],
                )
            elif gap >= 1:
                days = np.arange(prev[3] + 1, r.day)
                whole = days[days == np.floor(days)]
                cur["grade_max"] = max(cur["grade_max"], TERM_MAX_GRADE.get(r.term, 4))
                cur["missing"].append(
                    "day"
                    + ("s " if len(whole) > 1 else " ")
                    + ",".join(_day_text(x) for x in whole)
                    + ": not charted"
                )
            cur["grade"] = max(cur["grade"], g)
            cur["grade_max"] = max(cur["grade_max"], gmax)
            cur["by_day"].append(f"{_day_text(r.day)}:{g}" + (f"-{gmax}" if gmax > g else ""))
            if gmax > g and r.missing:
                cur["missing"].append(f"day {_day_text(r.day)}: {r.missing}")
            if r.source_rows:
                cur["rows"].append(r.source_rows)
        prev = (r.patient_id, r.term, r.system, r.day)
    if cur is not None:
        cur["resolution_day"] = math.nan
        records.append(cur)
    for rec in records:
        if not math.isnan(rec["resolution_day"]):
            last = float(rec["by_day"][-1].split(":")[0])
            if rec["resolution_day"] - last > 1:
                days = np.arange(last + 1, rec["resolution_day"])
                rec["grade_max"] = max(rec["grade_max"], TERM_MAX_GRADE.get(rec["term"], 4))
                rec["missing"].append(
                    "day"
                    + ("s " if len(days) > 1 else " ")
                    + ",".join(_day_text(x) for x in days)
                    + ": not charted"
                )
    out = [
        dict(
            patient_id=r["patient_id"],
            term=r["term"],
            onset_day=r["onset_day"],
            resolution_day=r["resolution_day"],
            grade=r["grade"],
            grade_max=r["grade_max"],
            missing="; ".join(r["missing"]),
            grade_by_day=",".join(r["by_day"]),
            source_rows=";".join(r["rows"]),
        )
        for r in records
    ]
    return sorted(out, key=lambda r: (r["patient_id"], r["term"], r["onset_day"]))


day_rows = st.tuples(
    st.sampled_from(["P1", "P2", "P10"]),
    st.sampled_from(["CRS", "anemia"]),
    st.integers(-2, 30),
    st.integers(0, 4),
    st.integers(0, 2),
    st.sampled_from(["", "fever", "oxygen; ice"]),
    st.booleans(),
)


@settings(max_examples=200, deadline=None)
@given(rows=st.lists(day_rows, max_size=40), max_gap=st.integers(0, 3), half=st.booleans())
def test_vectorised_episodes_equal_the_scalar_reference(rows, max_gap, half):
    seen = set()
    recs = []
    for i, (pid, term, day, g, extra, missing, src) in enumerate(rows):
        day = day + (0.5 if half and i % 3 == 0 else 0.0)
        if (pid, term, day) in seen:
            continue
        seen.add((pid, term, day))
        recs.append(
            dict(
                patient_id=pid,
                day=float(day),
                term=term,
                system="S",
                grade=g,
                grade_max=min(g + extra, 4),
                missing=missing if extra else "",
                source_rows=f"{i + 2}" if src else "",
            )
        )
    daily = pd.DataFrame(
        recs,
        columns=[
            "patient_id",
            "day",
            "term",
            "system",
            "grade",
            "grade_max",
            "missing",
            "source_rows",
        ],
    )
    daily["grade"] = daily["grade"].astype("Int64")
    daily["grade_max"] = daily["grade_max"].astype("Int64")
    got = derive_episodes(daily, max_gap_days=max_gap)
    want = reference_episodes(daily, max_gap)
    keys = list(want[0]) if want else []
    got_rows = (
        [
            {
                k: (v if not isinstance(v, float) or not math.isnan(v) else "nan")
                for k, v in r.items()
            }
            for r in got[keys].astype(object).to_dict("records")
        ]
        if want
        else []
    )
    want_rows = [
        {k: (v if not isinstance(v, float) or not math.isnan(v) else "nan") for k, v in r.items()}
        for r in want
    ]
    assert len(got) == len(want)
    assert got_rows == want_rows
