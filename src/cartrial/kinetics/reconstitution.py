"""Immune reconstitution after CD7 CAR-T: depletion, recovery, B-cell recovery, chimerism.

Definitions (``docs/domain/KINETICS.md``, ``docs/domain/PATHWAY.md`` item 9):

* **Depletion day**: the first sample on or after day 0 whose value is below the depletion
  threshold (by default the lower limit of normal; e.g. CD7+ T/NK cells vanish within ~1–2
  weeks of CD7 CAR-T).
* **Recovery day**: infusion to the first of ``consecutive`` (default 2) consecutive samples
  at or above the threshold (lower limit of normal, or an explicit threshold such as
  CD4 >= 200/µL). Counted after the depletion day when the patient was depleted; a patient
  never below the threshold "recovers" at the first qualifying run (flagged
  ``depleted=False``).
* **B-cell recovery**: B cells > 5 % of lymphocytes (as one CD7 CAR-T trial used it;
  docs/domain/KINETICS.md), strict ``>``, threshold a parameter; the first qualifying sample by default.
* **Cumulative incidence of recovery** by landmark with death, relapse/progression, SCT and
  new therapy as competing events (Aalen–Johansen; plain Kaplan–Meier overestimates
  recovery when patients die or are transplanted first — docs/domain/KINETICS.md).
* Reference ranges are versioned data (``data/reference_ranges.csv``, with source per row):
  adults from Clin Diagn Lab Immunol 2004;11:168, children by age band from Shearer et al.,
  J Allergy Clin Immunol 2003;112:973; a site file overrides rows.
* CD7-specific: CD3+CD7+, CD3+CD7−, CD7+ NK and CD7− NK are separate analytes (total CD3
  can normalise while CD7+ aplasia persists).

Engraftment and chimerism are owned by ``cartrial.response.transplant`` (CIBMTR rules); the
two helpers here only adapt them to the SCT clock and to arrays.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from cartrial.cohort.vocab import EVENTS, canonical
from cartrial.kinetics._groups import (
    first_in_group,
    group_reduce,
    group_starts,
    last_in_group,
    runs_start,
)
from cartrial.kinetics._obs import canonical_analytes, select_analyte
from cartrial.response import transplant
from cartrial.stats import cumulative_incidence

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

DATA_DIR = Path(__file__).with_name("data")
REFERENCE_FILE = DATA_DIR / "reference_ranges.csv"
RANGE_COLUMNS = (
    "version",
    "analyte",
    "population",
    "age_min_years",
    "age_max_years",
    "lower",
    "upper",
    "unit",
    "source",
    "note",
)

#: analytes reported in the reconstitution table, in report order
RECONSTITUTION_ANALYTES = (
    "cd3",
    "cd4",
    "cd8",
    "cd4_cd8_ratio",
    "cd7_t",
    "cd7neg_t",
    "nk",
    "cd7_nk",
    "cd7neg_nk",
    "cd19_b",
    "b_pct_lymph",
)
#: B cells > 5 % of lymphocytes (docs/domain/KINETICS.md; the CD7 trial definition)
B_CELL_RECOVERY_PCT = 5.0
#: events competing with recovery (the patient leaves the state in which recovery is observed)
COMPETING_EVENTS = ("death", "relapse", "progression", "sct", "new_therapy")


# ---------------------------------------------------------------------------------------
# reference ranges
# ---------------------------------------------------------------------------------------
def load_reference_ranges(
    path: str | Path | None = None, override: str | Path | pd.DataFrame | None = None
) -> pd.DataFrame:
    """Reference ranges (shipped file, or ``path``), with a site ``override`` applied.

    The override (CSV path or DataFrame, same columns; ``version``/``source``/``note``
    optional) replaces rows with the same (analyte, population, age band) and adds the others.
    Raises ValueError naming file, row and column for a bad override.
    """
    import pandas as pd

    base = _read_ranges(Path(path) if path else REFERENCE_FILE)
    if override is None:
        return base
    site = _read_ranges(override)
    key = ["analyte", "population", "age_min_years", "age_max_years"]
    merged = base.merge(site[key], on=key, how="left", indicator=True)
    kept = base.loc[(merged["_merge"] == "left_only").to_numpy()]
    out = pd.concat([kept, site], ignore_index=True)
    return out.sort_values(key, kind="stable").reset_index(drop=True)


def _read_ranges(source: str | Path | pd.DataFrame) -> pd.DataFrame:
    import pandas as pd

    if isinstance(source, pd.DataFrame):
        df, name = source.copy(), "reference ranges (DataFrame)"
    else:
        df, name = pd.read_csv(source), str(source)
    missing = [c for c in ("analyte", "population", "lower") if c not in df.columns]
    if missing:
        raise ValueError(
            f"{name}: missing column(s) {', '.join(missing)}; expected {', '.join(RANGE_COLUMNS)}"
        )
    for col, default in (("age_min_years", 0.0), ("age_max_years", 120.0), ("upper", np.nan)):
        if col not in df.columns:
            df[col] = default
    for col in ("version", "unit", "source", "note"):
        if col not in df.columns:
            df[col] = "site override" if col in ("version", "source") else ""
    for col in ("lower", "upper", "age_min_years", "age_max_years"):
        num = pd.to_numeric(df[col], errors="coerce")
        bad = num.isna() & df[col].notna() & (df[col].astype(str).str.strip() != "")
        if bad.any():
            i = int(np.flatnonzero(bad.to_numpy())[0])
            raise ValueError(
                f"{name}, row {i + 2}, column '{col}': found {df[col].iloc[i]!r}; expected a number"
            )
        df[col] = num.astype(float)
    pops = ~df["population"].isin(["adult", "pediatric"])
    if pops.any():
        i = int(np.flatnonzero(pops.to_numpy())[0])
        raise ValueError(
            f"{name}, row {i + 2}, column 'population': found "
            f"{df['population'].iloc[i]!r}; expected adult or pediatric"
        )
    return df[list(RANGE_COLUMNS)].reset_index(drop=True)


def lower_normal(
    ranges: pd.DataFrame,
    analyte: str,
    population: str = "adult",
    age_years: float | None = None,
) -> tuple[float, str]:
    """Lower limit of normal for ``analyte`` and its source (NaN and "" when none).

    ``population``: "adult", "pediatric" (needs ``age_years``) or "auto" (pediatric band
    under 18 years when the age is known, adult otherwise).
    """
    lows, srcs = _lower_normal_vec(
        ranges, analyte, population, np.array([np.nan if age_years is None else age_years])
    )
    return float(lows[0]), str(srcs[0])


def _lower_normal_vec(
    ranges: pd.DataFrame, analyte: str, population: str, ages: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    if population not in ("adult", "pediatric", "auto"):
        raise ValueError(f"population {population!r}; expected adult, pediatric or auto")
    rows = ranges.loc[ranges["analyte"] == analyte]
    low = np.full(len(ages), np.nan)
    src = np.full(len(ages), "", dtype=object)
    use_ped = np.zeros(len(ages), dtype=bool)
    if population == "pediatric":
        if np.isnan(ages).any():
            raise ValueError("pediatric reference ranges need every patient's age_years")
        use_ped[:] = True
    elif population == "auto":
        use_ped = ~np.isnan(ages) & (ages < 18)
    adult = rows.loc[rows["population"] == "adult"]
    if len(adult):
        low[~use_ped] = float(adult["lower"].iloc[0])
        src[~use_ped] = f"{adult['source'].iloc[0]} [v{adult['version'].iloc[0]}]"
    ped = rows.loc[rows["population"] == "pediatric"]
    for _, r in ped.iterrows():  # a handful of age bands, not a loop over patients
        inband = use_ped & (ages >= r["age_min_years"]) & (ages < r["age_max_years"])
        low[inband] = float(r["lower"])
        src[inband] = f"{r['source']} [v{r['version']}]"
    return low, src


# ---------------------------------------------------------------------------------------
# per-profile rules (all run on the vectorised core below)
# ---------------------------------------------------------------------------------------
def _profile(days: Any, values: Any, start: float) -> tuple[np.ndarray, np.ndarray]:
    d = np.asarray(days, dtype=float).ravel()
    v = np.asarray(values, dtype=float).ravel()
    if d.shape != v.shape:
        raise ValueError(f"days ({d.size}) and values ({v.size}) differ in length")
    keep = ~np.isnan(d) & ~np.isnan(v) & (d >= start)
    d, v = d[keep], v[keep]
    order = np.argsort(d, kind="stable")
    return d[order], v[order]


def time_to_depletion(days: Any, values: Any, threshold: float, start: float = 0.0) -> float:
    """Day of the first sample (on/after ``start``) with value < ``threshold``; NaN if none."""
    d, v = _profile(days, values, start)
    hit = np.flatnonzero(v < threshold)
    return float(d[hit[0]]) if len(hit) else float("nan")


def time_to_recovery(
    days: Any,
    values: Any,
    lower_normal: float,
    consecutive: int = 2,
    start: float = 0.0,
    strict: bool = False,
    after: float | None = None,
) -> float:
    """First day of ``consecutive`` consecutive samples >= ``lower_normal`` (> when
    ``strict``), among samples on/after ``start`` and strictly after ``after`` (e.g. the
    depletion day) when given; NaN when no such run (yet)."""
    d, v = _profile(days, values, start)
    if after is not None and np.isfinite(after):
        keep = d > after
        d, v = d[keep], v[keep]
    ok = v > lower_normal if strict else v >= lower_normal
    runs = runs_start(ok, np.zeros(len(ok), dtype=np.int64), max(1, int(consecutive)))
    hit = np.flatnonzero(runs)
    return float(d[hit[0]]) if len(hit) else float("nan")


def b_cell_recovery(
    days: Any,
    pct_lymphocytes: Any,
    threshold: float = B_CELL_RECOVERY_PCT,
    consecutive: int = 1,
    start: float = 0.0,
) -> float:
    """Day B cells first exceed ``threshold`` % of lymphocytes (strict >; docs/domain/KINETICS.md)."""
    return time_to_recovery(days, pct_lymphocytes, threshold, consecutive, start, strict=True)


# ---------------------------------------------------------------------------------------
# the per-patient table
# ---------------------------------------------------------------------------------------
def reconstitution_table(
    observations: pd.DataFrame,
    ranges: pd.DataFrame | str | Path | None = None,
    population: str = "adult",
    patients: pd.DataFrame | None = None,
    analytes: Sequence[str] | None = None,
    thresholds: Mapping[str, float] | None = None,
    depletion_thresholds: Mapping[str, float] | None = None,
    consecutive: int = 2,
    b_cell_threshold: float = B_CELL_RECOVERY_PCT,
    b_cell_consecutive: int = 1,
) -> pd.DataFrame:
    """One row per patient and analyte: baseline, nadir, depletion and recovery days.

    Threshold per analyte: ``thresholds[analyte]`` if given, else the lower limit of normal
    from ``ranges`` (shipped file by default; population adult/pediatric/auto, ages from
    ``patients.age_years``); ``b_pct_lymph`` uses ``b_cell_threshold`` (> 5 %). Analytes with
    no threshold get status "no reference range". Vectorised across patients.
    """
    import pandas as pd

    ref = (
        load_reference_ranges(ranges)
        if ranges is None or isinstance(ranges, str | Path)
        else ranges
    )
    thresholds = dict(thresholds or {})
    depletion_thresholds = dict(depletion_thresholds or {})
    present = (
        set(canonical_analytes(observations["analyte"]).dropna()) if len(observations) else set()
    )
    wanted = [a for a in (analytes or RECONSTITUTION_ANALYTES) if a in present]
    ages_by_patient = pd.Series(dtype=float)
    if patients is not None and "age_years" in patients.columns:
        ages_by_patient = pd.Series(
            pd.to_numeric(patients["age_years"], errors="coerce").to_numpy(dtype=float),
            index=patients["patient_id"].astype(str).to_numpy(),
        )
        ages_by_patient = ages_by_patient[~ages_by_patient.index.duplicated()]
    version = ",".join(sorted({str(v) for v in ref["version"].dropna()}))
    frames = []
    for analyte in wanted:  # a few analytes; patients are vectorised inside
        arr = select_analyte(observations, analyte, "patient_id", drop_negative_days=False)
        G = arr.n_groups
        pid = arr.keys["patient_id"].astype(str)
        ages = pid.map(ages_by_patient).to_numpy(dtype=float)
        strict = analyte == "b_pct_lymph"
        if analyte in thresholds:
            thr = np.full(G, float(thresholds[analyte]))
            src = np.full(G, "threshold given", dtype=object)
        elif strict:
            thr = np.full(G, float(b_cell_threshold))
            src = np.full(G, "B cells > 5% of lymphocytes (KINETICS.md)", dtype=object)
        else:
            thr, src = _lower_normal_vec(ref, analyte, population, ages)
        dep = (
            np.full(G, float(depletion_thresholds[analyte]))
            if analyte in depletion_thresholds
            else thr
        )
        cons = b_cell_consecutive if strict else consecutive
        res = _reconstitution_kernel(arr.codes, arr.day, arr.value, G, thr, dep, cons, strict)
        table = pd.DataFrame(
            {
                "patient_id": arr.keys["patient_id"].to_numpy(),
                "analyte": analyte,
                "unit": arr.unit,
                "threshold": thr,
                "threshold_source": src,
                "strict": strict,
                "depletion_threshold": dep,
                **res,
            }
        )
        table["status"] = np.where(
            np.isnan(thr),
            "no reference range",
            np.where(
                table["n_samples"] == 0,
                "no samples",
                np.where(table["recovered"], "recovered", "not recovered"),
            ),
        )
        frames.append(table)
    cols = [
        "patient_id",
        "analyte",
        "unit",
        "threshold",
        "threshold_source",
        "strict",
        "depletion_threshold",
        "n_samples",
        "baseline",
        "nadir",
        "nadir_day",
        "depleted",
        "depletion_day",
        "recovered",
        "recovery_day",
        "last_sample_day",
        "last_value",
        "status",
    ]
    out = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=cols)
    out.attrs["reference_version"] = version
    return out[cols]


def _reconstitution_kernel(
    codes: np.ndarray,
    day: np.ndarray,
    value: np.ndarray,
    G: int,
    thr: np.ndarray,
    dep_thr: np.ndarray,
    consecutive: int,
    strict: bool,
) -> dict[str, np.ndarray]:
    """Depletion/recovery for all patients at once (rows sorted by patient, day)."""
    starts = group_starts(codes, G)
    post = day >= 0
    pre_mask = ~post
    baseline = last_in_group(pre_mask, value, starts)  # last value on or before infusion...
    at0 = day == 0
    base0 = last_in_group(at0, value, starts)
    baseline = np.where(np.isnan(base0), baseline, base0)  # ...the day-0 value if present
    p_codes, p_day, p_val = codes[post], day[post], value[post]
    p_starts = group_starts(p_codes, G)
    n_samples = np.diff(p_starts)
    nadir = group_reduce(np.minimum, p_val, p_starts, np.nan)
    nadir_day = first_in_group(p_val == nadir[p_codes], p_day, p_starts)
    below = p_val < dep_thr[p_codes]
    depletion_day = first_in_group(below, p_day, p_starts)
    after = np.where(np.isnan(depletion_day), -np.inf, depletion_day)
    with np.errstate(invalid="ignore"):
        ok = (p_val > thr[p_codes]) if strict else (p_val >= thr[p_codes])
    ok &= p_day > after[p_codes]
    runs = runs_start(ok, p_codes, max(1, int(consecutive)))
    recovery_day = first_in_group(runs, p_day, p_starts)
    return {
        "n_samples": n_samples.astype(np.int64),
        "baseline": baseline,
        "nadir": nadir,
        "nadir_day": nadir_day,
        "depleted": ~np.isnan(depletion_day),
        "depletion_day": depletion_day,
        "recovered": ~np.isnan(recovery_day),
        "recovery_day": recovery_day,
        "last_sample_day": group_reduce(np.maximum, p_day, p_starts, np.nan),
        "last_value": last_in_group(np.ones(len(p_val), bool), p_val, p_starts),
    }


# ---------------------------------------------------------------------------------------
# cumulative incidence of recovery with competing events
# ---------------------------------------------------------------------------------------
def recovery_times(
    recon: pd.DataFrame,
    events: pd.DataFrame | None,
    analyte: str,
    competing: Iterable[str] = COMPETING_EVENTS,
) -> pd.DataFrame:
    """Per patient: time and cause (1 recovery, 2 competing event, 0 censored) for ``analyte``.

    Recovery counts when it comes before (or on the day of) the first competing event on or
    after day 0. Otherwise a competing event is the outcome (assumption: no unobserved
    recovery between the last sample and the event); otherwise censored at the last sample.
    """
    import pandas as pd

    sub = recon.loc[(recon["analyte"] == analyte) & (recon["n_samples"] > 0)]
    sub = sub.loc[sub["status"] != "no reference range"]
    pid = sub["patient_id"].astype(str)
    comp_day = np.full(len(sub), np.nan)
    comp_kind = np.full(len(sub), "", dtype=object)
    if events is not None and len(events):
        names = {e: canonical(e, EVENTS) for e in events["event"].dropna().unique()}
        ev = pd.DataFrame(
            {
                "patient_id": events["patient_id"].astype(str),
                "event": events["event"].map(names),
                "day": pd.to_numeric(events["day"], errors="coerce"),
            }
        )
        ev = ev.loc[ev["event"].isin(list(competing)) & (ev["day"] >= 0)]
        first = ev.sort_values("day", kind="stable").drop_duplicates("patient_id")
        hit = pd.DataFrame({"patient_id": pid.to_numpy()}).merge(first, on="patient_id", how="left")
        comp_day = hit["day"].to_numpy(dtype=float)
        comp_kind = hit["event"].fillna("").to_numpy(dtype=object)
    rec = sub["recovery_day"].to_numpy(dtype=float)
    last = sub["last_sample_day"].to_numpy(dtype=float)
    recovered = ~np.isnan(rec) & (np.isnan(comp_day) | (rec <= comp_day))
    competing_hit = ~recovered & ~np.isnan(comp_day)
    time = np.where(recovered, rec, np.where(competing_hit, comp_day, last))
    cause = np.where(recovered, 1, np.where(competing_hit, 2, 0))
    return pd.DataFrame(
        {
            "patient_id": sub["patient_id"].to_numpy(),
            "time": time,
            "cause": cause,
            "competing_event": np.where(competing_hit, comp_kind, ""),
        }
    )


def recovery_incidence(
    recon: pd.DataFrame,
    events: pd.DataFrame | None,
    analyte: str,
    landmarks: Sequence[float] = (30.0, 90.0, 180.0, 365.0),
    competing: Iterable[str] = COMPETING_EVENTS,
) -> pd.DataFrame:
    """Cumulative incidence of recovery of ``analyte`` at each landmark (Aalen–Johansen,
    competing events: death, relapse/progression, SCT, new therapy), with 95% CI when
    ``cartrial.stats`` provides it."""
    import pandas as pd

    rt = recovery_times(recon, events, analyte, competing)
    rows = []
    n, n_rec = len(rt), int((rt["cause"] == 1).sum())
    n_comp = int((rt["cause"] == 2).sum())
    if n == 0:
        return pd.DataFrame(
            columns=[
                "analyte",
                "landmark_days",
                "cumulative_incidence",
                "lower",
                "upper",
                "n",
                "n_recovered",
                "n_competing",
            ]
        )
    t = rt["time"].to_numpy(dtype=float)
    c = rt["cause"].to_numpy(dtype=np.int64)
    est, lo, hi = _cif_at(t, c, np.asarray(landmarks, dtype=float))
    for i, lm in enumerate(landmarks):
        rows.append(
            {
                "analyte": analyte,
                "landmark_days": lm,
                "cumulative_incidence": est[i],
                "lower": lo[i],
                "upper": hi[i],
                "n": n,
                "n_recovered": n_rec,
                "n_competing": n_comp,
            }
        )
    return pd.DataFrame(rows)


def _cif_at(
    time: np.ndarray, cause: np.ndarray, at: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    if not (cause == 1).any():
        zeros = np.zeros(len(at))
        return zeros, np.full(len(at), np.nan), np.full(len(at), np.nan)
    ci = cumulative_incidence(time, cause)
    e = ci.at(at, 1)
    return (
        np.asarray(e.estimate, dtype=float),
        np.asarray(e.lower, dtype=float),
        np.asarray(e.upper, dtype=float),
    )


# ---------------------------------------------------------------------------------------
# chimerism and engraftment (owned by cartrial.response.transplant)
# ---------------------------------------------------------------------------------------
def chimerism_status(
    donor_pct: Any, full_threshold: float = 95.0, inclusive: bool = True
) -> np.ndarray:
    """Array form of ``cartrial.response.transplant.chimerism_status``: "full" when donor
    chimerism >= ``full_threshold`` % (``inclusive``, CIBMTR; > when not, ASTCT), "mixed"
    below, None when missing. Raises ValueError outside 0–100 %."""
    v = np.asarray(donor_pct, dtype=float)
    bad = ~np.isnan(v) & ((v < 0) | (v > 100))
    if bad.any():
        raise ValueError(f"donor chimerism {v[bad].ravel()[0]!r}%; expected 0 to 100")
    full = v >= full_threshold if inclusive else v > full_threshold
    out = np.where(full, "full", "mixed").astype(object)
    out[np.isnan(v)] = None
    return out


def engraftment_after_sct(
    days: Any,
    values: Any,
    sct_day: float,
    kind: str = "neutrophil",
    transfusion_days: Iterable[float] = (),
) -> float:
    """Engraftment day counted from the SCT (days since infusion in, days after SCT out).

    Delegates to ``cartrial.response.transplant`` (CIBMTR: neutrophils first of 3
    consecutive values >= 0.5 x10^9/L after the nadir; platelets first of 3 consecutive
    values >= 20 x10^9/L without a platelet transfusion in the 7 days before). NaN when not
    engrafted (or never below the threshold). Samples before the SCT are ignored.
    """

    d = np.asarray(days, dtype=float) - float(sct_day)
    v = np.asarray(values, dtype=float)
    keep = d >= 0
    if kind == "neutrophil":
        res = transplant.neutrophil_engraftment(d[keep], v[keep])
    elif kind == "platelet":
        tx = np.asarray(list(transfusion_days), dtype=float) - float(sct_day)
        res = transplant.platelet_engraftment(d[keep], v[keep], transfusion_days=tx)
    else:
        raise ValueError(f"kind {kind!r}; expected neutrophil or platelet")
    return float(res.day) if res.status == "engrafted" and res.day is not None else float("nan")
