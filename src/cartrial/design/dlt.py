"""Dose-limiting toxicity (DLT) from a cohort's graded adverse events, declaratively.

A DLT definition is a list of :class:`DLTRule` and a window (default day 0-28 after
infusion).  :func:`evaluate_dlt` applies it to ``Cohort.adverse_events`` and says, per
infused patient, whether they are DLT-evaluable, whether they had a DLT, and which
rule and source row decided it.

The default rules follow the CD7 CAR-T phase I protocols of docs/domain/PATHWAY.md and the
consensus grading they use:
- CRS grade >= 3 not resolving to grade <= 2 within 72 h (ASTCT, Lee et al., Biol Blood
  Marrow Transplant 2019;25:625).  The AE table records an episode's maximum grade and
  its resolution day, not the day it fell to grade 2, so an episode lasting > 3 days (or
  with no resolution day) counts — the conservative reading.
- ICANS grade >= 3 (Lee et al. 2019).
- Grade 4 neutropenia or thrombocytopenia starting in the window and not resolved by
  day 28 (prolonged cytopenia / ICAHT, Rejeski et al., Blood 2023;142:865; CTCAE v5).
- Acute GVHD grade >= 3 (MAGIC, Harris et al., BBMT 2016;22:4) for donor-derived
  products (product_source prior_sct_donor, new_donor, universal).
Missing is missing: a qualifying AE with a blank grade makes the patient's DLT status
unknown (``dlt`` <NA>) unless another rule fired.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from cartrial.endpoints.populations import analysis_populations

if TYPE_CHECKING:
    import pandas as pd

    from cartrial.cohort.model import Cohort

DONOR_DERIVED = ("prior_sct_donor", "new_donor", "universal")


@dataclass(frozen=True)
class DLTRule:
    """One DLT criterion: an AE of ``terms`` with grade >= ``min_grade`` starting in the
    window; optionally lasting more than ``min_duration_days`` (resolution - onset, or no
    resolution), ongoing after ``ongoing_after_day``, only for ``product_sources``."""

    name: str
    terms: tuple[str, ...]
    min_grade: int
    min_duration_days: float | None = None
    ongoing_after_day: float | None = None
    product_sources: tuple[str, ...] | None = None
    source: str = ""


DEFAULT_DLT_RULES: tuple[DLTRule, ...] = (
    DLTRule(
        "CRS grade >=3 not resolving to <=2 within 72 h",
        ("CRS",),
        3,
        min_duration_days=3.0,
        source="ASTCT consensus, Lee et al. BBMT 2019",
    ),
    DLTRule("ICANS grade >=3", ("ICANS",), 3, source="ASTCT consensus, Lee et al. BBMT 2019"),
    DLTRule(
        "grade 4 cytopenia beyond day 28",
        ("neutropenia", "thrombocytopenia"),
        4,
        ongoing_after_day=28.0,
        source="CTCAE v5; ICAHT, Rejeski et al. Blood 2023",
    ),
    DLTRule(
        "aGVHD grade >=3 (donor-derived product)",
        ("aGVHD",),
        3,
        product_sources=DONOR_DERIVED,
        source="MAGIC, Harris et al. BBMT 2016",
    ),
)


@dataclass(frozen=True)
class DLTDefinition:
    """Rules plus the DLT window [start, end] in days after infusion."""

    rules: tuple[DLTRule, ...] = DEFAULT_DLT_RULES
    window: tuple[float, float] = (0.0, 28.0)


def _last_known_day(cohort: Cohort) -> pd.Series:
    """Latest day each patient is known to have been followed (any dated record)."""
    import pandas as pd

    parts = []
    for table, cols in (
        ("events", ("day",)),
        ("adverse_events", ("onset_day", "resolution_day")),
        ("observations", ("day",)),
    ):
        df = cohort.table(table)
        for c in cols:
            if c in df and len(df):
                parts.append(pd.DataFrame({"pid": df["patient_id"].astype(str), "day": df[c]}))
    if not parts:
        return pd.Series(dtype=float)
    allp = pd.concat(parts, ignore_index=True).dropna()
    return allp.groupby("pid")["day"].max()


def evaluate_dlt(cohort: Cohort, definition: DLTDefinition | None = None) -> pd.DataFrame:
    """Per patient of ``cohort.patients``: infused, DLT-evaluable, DLT and why.

    Evaluable (Le Tourneau et al., JNCI 2009): in the safety population (infused, from
    :func:`cartrial.endpoints.populations.analysis_populations`) and followed through
    the window end, or had a DLT.  Columns: ``patient_id``, ``dose_level``,
    ``product_source``, ``infused``, ``followed_to_day``, ``evaluable``, ``dlt``
    (boolean, <NA> when unknown), ``dlt_rules``, ``dlt_source_rows``, ``dlt_day``,
    ``not_evaluable_reason``.
    """
    import pandas as pd

    d = definition or DLTDefinition()
    lo, hi = d.window
    p = cohort.patients
    ids = p["patient_id"].astype(str).to_numpy()
    pops = analysis_populations(cohort)
    safety = pops["safety"].to_numpy(dtype=bool)
    source = (
        p["product_source"].astype("string").str.strip().str.lower()
        if "product_source" in p
        else pd.Series(pd.NA, index=p.index, dtype="string")
    )
    src_by_id = dict(zip(ids, source.to_numpy(), strict=True))
    ae = cohort.adverse_events
    term = ae["term"].astype("string").str.strip().str.lower()
    onset = pd.to_numeric(ae["onset_day"], errors="coerce")
    resol = pd.to_numeric(ae["resolution_day"], errors="coerce")
    grade = ae["grade"].astype("Int64")
    in_window = onset.between(lo, hi).fillna(False).to_numpy(dtype=bool)
    pid = ae["patient_id"].astype(str).to_numpy()
    row = ae["source_row"].to_numpy() if "source_row" in ae else np.arange(len(ae)) + 2
    hits: dict[str, list[tuple[float, str, Any]]] = {}
    unknown: set[str] = set()
    for rule in d.rules:
        m = in_window & term.isin([t.lower() for t in rule.terms]).fillna(False).to_numpy(bool)
        if rule.product_sources is not None:
            allowed = {s.lower() for s in rule.product_sources}
            m &= np.array([src_by_id.get(x) in allowed for x in pid], dtype=bool)
        blank = m & grade.isna().to_numpy()
        unknown.update(pid[blank])
        ok = m & grade.ge(rule.min_grade).fillna(False).to_numpy(dtype=bool)
        if rule.min_duration_days is not None:
            dur = (resol - onset).to_numpy(dtype=float)
            ok &= np.isnan(dur) | (dur > rule.min_duration_days)
        if rule.ongoing_after_day is not None:
            r = resol.to_numpy(dtype=float)
            ok &= np.isnan(r) | (r > rule.ongoing_after_day)
        for i in np.flatnonzero(ok):
            hits.setdefault(pid[i], []).append((float(onset.iloc[i]), rule.name, row[i]))
    last = _last_known_day(cohort)
    followed = np.array([last.get(x, np.nan) for x in ids], dtype=float)
    has_dlt = np.array([x in hits for x in ids], dtype=bool)
    unk = np.array([(x in unknown) and (x not in hits) for x in ids], dtype=bool)
    through = np.nan_to_num(followed, nan=-np.inf) >= hi
    evaluable = safety & (has_dlt | through)
    reason = np.where(
        ~safety,
        pops["exclusion_reason"].astype("string").fillna("not in safety population"),
        np.where(
            evaluable, "", [f"followed only to day {f:g} (< {hi:g}), no DLT" for f in followed]
        ),
    )
    dlt = pd.array(has_dlt, dtype="boolean")
    dlt[unk | ~safety] = pd.NA
    out = pd.DataFrame(
        {
            "patient_id": ids,
            "dose_level": p["dose_level"].astype("string").to_numpy()
            if "dose_level" in p
            else pd.NA,
            "product_source": source.to_numpy(),
            "infused": pops["infused"].to_numpy(),
            "followed_to_day": followed,
            "evaluable": evaluable,
            "dlt": dlt,
            "dlt_rules": ["; ".join(sorted({h[1] for h in hits.get(x, [])})) for x in ids],
            "dlt_source_rows": [", ".join(str(h[2]) for h in sorted(hits.get(x, []))) for x in ids],
            "dlt_day": [min((h[0] for h in hits.get(x, [])), default=np.nan) for x in ids],
            "not_evaluable_reason": pd.array(reason, dtype="string"),
        }
    )
    out.loc[out["not_evaluable_reason"] == "", "not_evaluable_reason"] = pd.NA
    out.loc[unk & evaluable, "not_evaluable_reason"] = "DLT status unknown: AE grade missing"
    out.attrs["window"] = d.window
    out.attrs["rules"] = [r.name for r in d.rules]
    return out


_DOSE_RE = re.compile(
    r"^\s*(\d+(?:\.\d+)?)\s*(?:e\s*\+?(\d+)|[x×\*]\s*10\s*\^?\s*(\d+))?", re.IGNORECASE
)


def parse_dose(text: Any) -> float | None:
    """Cells/kg from a dose label such as '5e5/kg', '1 x 10^6', '2×10^6 cells/kg'."""
    if text is None or (isinstance(text, float) and np.isnan(text)):
        return None
    m = _DOSE_RE.match(str(text).replace("⁶", "6").replace("⁵", "5").replace("⁷", "7"))
    if not m:
        return None
    mant = float(m.group(1))
    exp = m.group(2) or m.group(3)
    return mant * 10 ** int(exp) if exp else mant


def dose_index(patients: pd.DataFrame, doses: Any, tolerance: float = 0.25) -> np.ndarray:
    """0-based index into ``doses`` (cells/kg) for each patient, from ``dose_level``
    (or ``dose_per_kg`` when the label is blank); -1 where it matches none of them
    within ``tolerance`` on the log10 scale (e.g. another arm's dose)."""
    levels = np.log10(np.asarray(doses, dtype=float))
    labels = patients["dose_level"] if "dose_level" in patients else [None] * len(patients)
    per_kg = patients["dose_per_kg"] if "dose_per_kg" in patients else [np.nan] * len(patients)
    out = np.full(len(patients), -1)
    for i, (lab, val) in enumerate(zip(labels, per_kg, strict=True)):
        from_label = parse_dose(lab) if isinstance(lab, str) else None
        from_kg = float(val) if val is not None and not pd_isna(val) else None
        for x in (from_label, from_kg):  # the label first, else the recorded dose
            if x is None or x <= 0:
                continue
            dist = np.abs(levels - np.log10(x))
            j = int(dist.argmin())
            if dist[j] <= tolerance:
                out[i] = j
                break
    return out


def pd_isna(value: Any) -> bool:
    import pandas as pd

    return bool(pd.isna(value))
