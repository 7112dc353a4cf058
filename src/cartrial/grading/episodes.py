"""From daily bedside observations to graded adverse-event episodes.

``grade_daily`` grades every patient-day of the long cohort ``observations`` table
(vectorised: one kernel evaluation per term over all patient-days);
``derive_episodes`` merges consecutive graded days into episodes shaped like the
cohort ``adverse_events`` table; ``compare_episodes`` lists where recorded and derived
maximum grades disagree.

Observations
    Analytes are the canonical names of ``cartrial.cohort.vocab.ANALYTES`` (aliases
    accepted) plus a few grading-only names (hypotension, fever_masked, antipyretics,
    bullae, upper_gi, stool_episodes, severe_abdominal_pain, bloody_stool, crs_death).
    ``value`` is a float: categorical analytes (oxygen, consciousness, seizure,
    cerebral_edema) use the integer codes of ``cartrial.grading.codes``; yes/no
    analytes use 1/0. An optional ``value_text`` column holding the word (e.g.
    "high_flow", "yes") is used where present. Day = days since infusion, floored to
    the calendar day; several values of one analyte on one day keep the worst.

State across days (documented choices)
    * Fever masking (ASTCT 2019): from the first day tocilizumab, steroids or an
      antipyretic is given after a fever (same CRS stretch), fever is no longer
      required, until a day that would be CRS grade 0 even with masking, or a gap in
      the observations longer than ``gap_days``. A patient without any therapy record
      has masking unknown (never assumed absent), unless ``fever_masked`` rows are given.
    * Weight is carried forward (and taken from ``patients.weight_kg``); age from
      ``patients.age_years``.
    * Stool volume is the mean of the available daily volumes of the last
      ``stool_average_days`` (default 3) days, as MAGIC asks for 3-day averages.

Episodes
    Days with grade >= 1 (the grade the known observations establish) separated by at
    most ``gap_days`` days and by no day graded 0 form one episode. ``onset_day`` is the
    first graded day; ``resolution_day`` the first later day graded 0 (NaN when no such
    day was observed before the next episode or the end of the data); ``grade`` the
    maximum; ``grade_by_day`` lists "day:grade"; ``source_rows`` names the observation
    rows ("file:row") that were graded.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from cartrial.grading import codes, crs, ctcae, gvhd, icans
from cartrial.grading.core import FIELDS, Fill, GradingInputError, bound, parse_column

TERMS = (
    "CRS",
    "ICANS",
    "aGVHD",
    "neutropenia",
    "thrombocytopenia",
    "lymphopenia",
    "leukopenia",
    "anemia",
)
#: analyte (canonical or extra) -> grading field
ANALYTE_FIELDS: dict[str, str] = {
    "temperature": "temperature_c",
    "hypotension": "hypotension",
    "vasopressors": "vasopressors",
    "vasopressin": "vasopressin",
    "oxygen": "oxygen",
    "o2_flow": "o2_flow_l_min",
    "fio2": "fio2",
    "crs_death": "crs_death",
    "ice_score": "ice_score",
    "capd_score": "capd_score",
    "cartox10_score": "cartox10_score",
    "consciousness": "consciousness",
    "seizure": "seizure",
    "motor_weakness": "motor_weakness",
    "cerebral_edema": "cerebral_edema",
    "skin_bsa_pct": "skin_bsa_pct",
    "bullae": "bullae",
    "bilirubin": "bilirubin_mg_dl",
    "upper_gi": "upper_gi",
    "stool_ml_day": "stool_ml_day",
    "stool_episodes": "stool_episodes",
    "severe_abdominal_pain": "severe_abdominal_pain",
    "bloody_stool": "bloody_stool",
    "weight": "weight_kg",
    "anc": "anc",
    "platelets": "platelets",
    "lymphocytes": "lymphocytes",
    "wbc": "wbc",
    "hemoglobin": "hemoglobin_g_dl",
    "fever_masked": "fever_masked",
}
THERAPY_ANALYTES = ("tocilizumab", "steroids", "antipyretics")
TERM_FIELDS: dict[str, tuple[str, ...]] = {
    "CRS": (
        "temperature_c",
        "hypotension",
        "vasopressors",
        "vasopressin",
        "oxygen",
        "o2_flow_l_min",
        "fio2",
        "crs_death",
    ),
    "ICANS": (
        "ice_score",
        "capd_score",
        "cartox10_score",
        "consciousness",
        "seizure",
        "motor_weakness",
        "cerebral_edema",
    ),
    "aGVHD": (
        "skin_bsa_pct",
        "bullae",
        "bilirubin_mg_dl",
        "upper_gi",
        "stool_ml_day",
        "stool_episodes",
        "severe_abdominal_pain",
        "bloody_stool",
    ),
    "neutropenia": ("anc",),
    "thrombocytopenia": ("platelets",),
    "lymphopenia": ("lymphocytes",),
    "leukopenia": ("wbc",),
    "anemia": ("hemoglobin_g_dl",),
}
#: how several values of one field on one day are reduced: "max", "min" or a severity
#: rank table for categories (ASTCT grade of each code)
WORST_LOW = {
    "ice_score",
    "cartox10_score",
    "anc",
    "platelets",
    "lymphocytes",
    "wbc",
    "hemoglobin_g_dl",
}
CATEGORY_RANK = {
    "oxygen": crs.ASTCT_DEVICE_GRADE,
    "consciousness": np.arange(5),
    "seizure": icans.ASTCT_SEIZURE_GRADE,
    "cerebral_edema": icans.ASTCT_EDEMA_GRADE,
}
DAILY_COLUMNS = (
    "patient_id",
    "day",
    "term",
    "system",
    "grade",
    "grade_max",
    "missing",
    "source_rows",
)


def _lookup_analyte() -> dict[str, str]:
    from cartrial.cohort.vocab import analyte_lookup

    table = analyte_lookup()
    out = {}
    for spelling, name in table.items():
        out[spelling] = name
    for extra in (*ANALYTE_FIELDS, *THERAPY_ANALYTES, "antipyretic"):
        out.setdefault(extra.replace("_", " "), extra)
    out["antipyretic"] = "antipyretics"
    return out


def _norm(text: str) -> str:
    import re

    return re.sub(r"[\s_\-]+", " ", str(text).strip().lower())


def _long_values(observations):
    """Canonical analyte, grading field and parsed float value per observation row."""
    import pandas as pd

    need = ("patient_id", "day", "analyte", "value")
    miss = [c for c in need if c not in observations.columns]
    if miss:
        raise GradingInputError(
            "observations",
            list(observations.columns),
            f"columns {', '.join(need)} (missing: {', '.join(miss)})",
        )
    obs = observations.reset_index(drop=True)
    lookup = _lookup_analyte()
    uniq = pd.Series(obs["analyte"].astype("string").unique())
    mapping = {a: lookup.get(_norm(a)) for a in uniq if a is not pd.NA}
    analyte = obs["analyte"].astype("string").map(mapping)
    is_therapy = analyte.isin(THERAPY_ANALYTES).to_numpy(dtype=bool)
    field = analyte.map(ANALYTE_FIELDS)
    field = field.where(~is_therapy, "_therapy")
    keep = field.notna().to_numpy(dtype=bool)
    obs = obs.loc[keep].copy()
    obs["_field"] = field[keep].to_numpy()
    if "source_file" in obs.columns and "source_row" in obs.columns:
        src = (
            obs["source_file"].astype("string").fillna("?")
            + ":"
            + obs["source_row"].astype("string").fillna("?")
        )
    else:
        src = "row " + pd.Series(obs.index, index=obs.index).astype(str)
    obs["_src"] = src.to_numpy()
    day = pd.to_numeric(obs["day"], errors="coerce").to_numpy(dtype=float)
    values = np.full(len(obs), np.nan)
    has_text = "value_text" in obs.columns
    raw_num = pd.to_numeric(obs["value"], errors="coerce").to_numpy(dtype=float)
    for f in obs["_field"].unique():
        m = (obs["_field"] == f).to_numpy()
        rows = obs.index[m]
        if f == "_therapy":
            text = obs.loc[m, "value_text"] if has_text else None
            given = raw_num[m] > 0
            if text is not None:
                t = text.astype("string").str.strip().str.lower()
                given = np.where(
                    t.notna().to_numpy(dtype=bool),
                    t.isin(["yes", "true", "1", "given", "y"]).to_numpy(dtype=bool),
                    given,
                )
                unknown = t.isna().to_numpy(dtype=bool) & np.isnan(raw_num[m])
            else:
                unknown = np.isnan(raw_num[m])
            values[m] = np.where(unknown, np.nan, given.astype(float))
            continue
        src_vals: Any = raw_num[m]
        if has_text:
            text = obs.loc[m, "value_text"]
            if text.notna().any():
                merged = text.astype(object).where(
                    text.notna(), pd.Series(raw_num[m], index=text.index)
                )
                src_vals = merged.to_numpy(dtype=object)
        try:
            values[m] = parse_column(f, src_vals, where="observation")
        except GradingInputError as exc:
            i = int(exc.where.split()[-1]) if exc.where else 0
            r = rows[i]
            raise GradingInputError(
                f,
                exc.value,
                exc.expected,
                f"observations {obs.loc[r, '_src']} (patient {obs.loc[r, 'patient_id']}, "
                f"day {obs.loc[r, 'day']}, analyte {obs.loc[r, 'analyte']})",
            ) from None
    bad_day = np.isnan(day) & ~np.isnan(values)
    if bad_day.any():
        r = obs.index[np.flatnonzero(bad_day)[0]]
        raise GradingInputError(
            "day", obs.loc[r, "day"], "a day since infusion", f"observations {obs.loc[r, '_src']}"
        )
    obs["_v"] = values
    obs["_day"] = np.floor(day)
    return obs[~np.isnan(values)]


def _daily_wide(long):
    """One row per patient-day with the worst value of each field (vectorised)."""
    import pandas as pd

    rank = long["_v"].to_numpy(dtype=float).copy()
    fields = long["_field"].to_numpy(dtype=object)
    for f in WORST_LOW:
        m = fields == f
        rank[m] = -rank[m]
    for f, table in CATEGORY_RANK.items():
        m = fields == f
        if m.any():
            code = long["_v"].to_numpy()[m].astype(int)
            rank[m] = table[code] * 100 + code
    long = long.assign(_rank=rank).sort_values(["patient_id", "_day", "_field", "_rank"])
    worst = long.drop_duplicates(["patient_id", "_day", "_field"], keep="last")
    wide = worst.pivot(index=["patient_id", "_day"], columns="_field", values="_v")
    # provenance: all rows of each patient-day-field, "file:row;file:row"
    multi = long.duplicated(["patient_id", "_day", "_field"], keep=False).to_numpy()
    single = long.loc[~multi].set_index(["patient_id", "_day", "_field"])["_src"]
    if multi.any():
        many = (
            (long.loc[multi, "_src"] + ";")
            .groupby(
                [long.loc[multi, "patient_id"], long.loc[multi, "_day"], long.loc[multi, "_field"]],
                sort=False,
            )
            .sum()
            .str.rstrip(";")
        )
        single = pd.concat([single, many])
    src = single.unstack("_field").reindex(wide.index)
    return wide, src, pd


def _stool_average(wide, days_back: int):
    """Trailing mean of the daily stool volumes of the last ``days_back`` days."""
    import pandas as pd

    if "stool_ml_day" not in wide.columns or days_back <= 1:
        return wide
    s = wide["stool_ml_day"].dropna().reset_index()
    if s.empty:
        return wide
    s["_td"] = pd.to_timedelta(s["_day"], unit="D")
    avg = (
        s.set_index("_td")
        .groupby("patient_id")["stool_ml_day"]
        .rolling(f"{days_back}D")
        .mean()
        .reset_index()
    )
    avg["_day"] = avg["_td"].dt.days.astype(float)
    avg = avg.set_index(["patient_id", "_day"])["stool_ml_day"]
    wide = wide.copy()
    wide.loc[avg.index, "stool_ml_day"] = avg.to_numpy()
    return wide


def _col(wide, name: str) -> np.ndarray:
    if name in wide.columns:
        return wide[name].to_numpy(dtype=float)
    return np.full(len(wide), np.nan)


def _segments(pid: np.ndarray, day: np.ndarray, brk: np.ndarray, gap_days: int) -> np.ndarray:
    """Segment ids: a new segment starts at a new patient, after a gap > gap_days, or
    at a row where ``brk`` is True (that row starts the segment)."""
    new = np.ones(len(pid), dtype=bool)
    if len(pid):
        new[1:] = (pid[1:] != pid[:-1]) | (np.diff(day) > gap_days) | brk[1:]
    return np.cumsum(new)


def _group_cummax(seg: np.ndarray, x: np.ndarray) -> np.ndarray:
    import pandas as pd

    return pd.Series(x.astype(float)).groupby(seg).cummax().to_numpy()


def _fever_masked(wide, data: dict[str, np.ndarray], gap_days: int) -> np.ndarray:
    """ASTCT fever masking per patient-day (see module doc)."""
    pid = wide.index.get_level_values(0).to_numpy(dtype=object)
    day = wide.index.get_level_values(1).to_numpy(dtype=float)
    therapy = _col(wide, "_therapy")
    direct = _col(wide, "fever_masked")
    masked_all = {**data, "fever_masked": np.ones(len(day))}
    b = bound(crs.astct_kernel, masked_all, crs.ASTCT_FILLS)
    brk = b.hi == 0  # no CRS sign even if fever were masked: the stretch ended
    seg = _segments(pid, day, brk, gap_days)
    fever = np.nan_to_num(data["temperature_c"], nan=0) >= crs.FEVER_C
    fever_seen = _group_cummax(seg, fever)
    trig = (np.nan_to_num(therapy, nan=0) >= 1) & (fever_seen >= 1)
    masked = _group_cummax(seg, trig)
    # patients with no therapy information at all: masking unknown (NaN)
    import pandas as pd

    has_info = pd.Series(~np.isnan(therapy)).groupby(pid).transform("any").to_numpy(dtype=bool)
    masked = np.where(has_info, masked, np.nan)
    masked = np.where(~np.isnan(direct), direct, masked)
    return masked


def grade_daily(
    observations,
    terms: Sequence[str] = ("CRS", "ICANS", "aGVHD", "neutropenia", "thrombocytopenia"),
    *,
    patients=None,
    crs_system: str = "ASTCT2019",
    icans_system: str = "ASTCT2019",
    gvhd_system: str = "MAGIC",
    capd_age_cutoff: float = 12,
    lln: Mapping[str, float] | None = None,
    gap_days: int = 1,
    stool_average_days: int = 3,
):
    """Grade every patient-day of ``observations`` for ``terms``.

    Returns a DataFrame with columns ``patient_id, day, term, system, grade,
    grade_max, missing, source_rows`` (one row per patient, day and term with at least
    one relevant observation; ``grade`` is the established lower bound, ``missing``
    a comma-separated list of unknown items that could raise it).
    """
    import pandas as pd

    from cartrial.grading import _system as system_name

    unknown_terms = [t for t in terms if t not in TERMS]
    if unknown_terms:
        raise GradingInputError("terms", unknown_terms, "terms among " + ", ".join(TERMS))
    crs_sys = system_name(crs_system, ("ASTCT2019", "CARTOX", "Lee2014"), "CRS")
    icans_sys = system_name(icans_system, ("ASTCT2019", "CARTOX"), "ICANS")
    gvhd_sys = system_name(gvhd_system, ("MAGIC", "Keystone1994"), "acute GVHD")
    long = _long_values(observations)
    if long.empty:
        return pd.DataFrame({c: pd.Series(dtype="object") for c in DAILY_COLUMNS})
    wide, src, _ = _daily_wide(long)
    pid = wide.index.get_level_values(0).to_numpy(dtype=object)
    day = wide.index.get_level_values(1).to_numpy(dtype=float)
    # patient-level covariates
    if patients is not None and "patient_id" in patients.columns:
        p = patients.drop_duplicates("patient_id").set_index(
            patients["patient_id"].drop_duplicates().astype(str)
        )
        ids = pd.Series(pid).astype(str)
        for col, field in (("age_years", "age_years"), ("weight_kg", "weight_base")):
            if col in p.columns:
                wide[field] = ids.map(pd.to_numeric(p[col], errors="coerce")).to_numpy(float)
    weight = _col(wide, "weight_kg")
    weight = pd.Series(weight).groupby(pid).ffill().to_numpy(dtype=float)
    weight = np.where(np.isnan(weight), _col(wide, "weight_base"), weight)
    wide = _stool_average(wide, stool_average_days)
    out = []
    for term in terms:
        fields = TERM_FIELDS[term]
        data = {f: _col(wide, f) for f in FIELDS if f in wide.columns or f in fields}
        observed = np.zeros(len(wide), dtype=bool)
        for f in fields:
            observed |= ~np.isnan(_col(wide, f))
        if not observed.any():
            continue
        if term == "CRS":
            data = crs.imply(
                {
                    **{f: _col(wide, f) for f in crs._legacy_fills("CARTOX")},
                    **{f: _col(wide, f) for f in crs.ASTCT_FILLS},
                }
            )
            _check_crs(data, pid, day)
            data["fever_masked"] = _fever_masked(wide, data, gap_days)
            if crs_sys == "ASTCT2019":
                b = bound(crs.astct_kernel, data, crs.ASTCT_FILLS, TERM_FIELDS["CRS"])
            else:
                fills = crs._legacy_fills(crs_sys)
                data.setdefault("constitutional_symptoms", np.full(len(day), np.nan))
                data["fio2"] = np.where(data["oxygen"] == codes.OXYGEN["none"], 0.21, data["fio2"])
                b = bound(lambda d: crs.legacy_kernel(d, crs_sys), data, fills, TERM_FIELDS["CRS"])
            system = crs_sys
        elif term == "ICANS":
            data["age_years"] = _col(wide, "age_years")
            if icans_sys == "ASTCT2019":
                b = icans.bound_astct(data, capd_age_cutoff)
            else:
                b = bound(icans.cartox_kernel, data, icans.CARTOX_FILLS)
            system = icans_sys
        elif term == "aGVHD":
            data["weight_kg"] = weight
            b, _ = gvhd.bound_agvhd(data, gvhd_sys)
            system = gvhd_sys
        elif term == "anemia":
            limits = {**ctcae.LLN_DEFAULTS, **(lln or {})}
            fills = {
                "hemoglobin_g_dl": Fill(16.0, 3.0),
                "sex": Fill(0, None),
                "life_threatening": Fill(math.nan, None),
                "death": Fill(math.nan, None),
            }
            lf, lm = limits["hemoglobin_g_dl_F"], limits["hemoglobin_g_dl_M"]
            b = bound(
                lambda d, lf=lf, lm=lm: ctcae.anemia_kernel(d, lf, lm),
                data,
                fills,
                ("hemoglobin_g_dl",),
            )
            system = ctcae.VERSION
        else:
            field, t2, t3, t4, _name = ctcae.COUNT_TERMS[term]
            low = {**ctcae.LLN_DEFAULTS, **(lln or {})}[field]
            fills = {field: Fill(1e6, 0.0)}
            b = bound(
                lambda d, f=field, lo_=low, a=t2, c=t3, e=t4: ctcae.count_grade(d[f], lo_, a, c, e),
                data,
                fills,
            )
            system = ctcae.VERSION
        rows = np.flatnonzero(observed)
        miss_names = np.array([""] * len(wide), dtype=object)
        for f, m in b.missing.items():
            labels = gvhd.LABELS.get(f, (f,)) if term == "aGVHD" else (f,)
            tag = ",".join(labels)
            miss_names = np.where(
                m, np.where(miss_names == "", tag, miss_names + "," + tag), miss_names
            )
        srcs = _join_sources(
            src,
            [f for f in fields if f in src.columns]
            + (["_therapy"] if term == "CRS" and "_therapy" in src.columns else []),
        )
        out.append(
            pd.DataFrame(
                {
                    "patient_id": pid[rows],
                    "day": day[rows],
                    "term": term,
                    "system": system,
                    "grade": pd.array(b.lo[rows], dtype="Int64"),
                    "grade_max": pd.array(b.hi[rows], dtype="Int64"),
                    "missing": miss_names[rows],
                    "source_rows": srcs[rows],
                }
            )
        )
    if not out:
        return pd.DataFrame({c: pd.Series(dtype="object") for c in DAILY_COLUMNS})
    res = pd.concat(out, ignore_index=True)
    return res.sort_values(["patient_id", "term", "day"], kind="stable").reset_index(drop=True)


def _join_sources(src, cols: Iterable[str]) -> np.ndarray:
    cols = list(cols)
    if not cols:
        return np.array([""] * len(src), dtype=object)
    part = src[cols].fillna("").astype(str)
    joined = (
        part[cols[0]].str.cat([part[c] for c in cols[1:]], sep=";")
        if len(cols) > 1
        else part[cols[0]]
    )
    joined = joined.str.replace(r";{2,}", ";", regex=True).str.strip(";")
    return joined.to_numpy(dtype=object)


def _check_crs(d: Mapping[str, np.ndarray], pid: np.ndarray, day: np.ndarray) -> None:
    hyp, vp, vpn = d["hypotension"], d["vasopressors"], d["vasopressin"]
    bad = (hyp == 0) & ((vp >= 1) | (vpn >= 1))
    dev, flow = d["oxygen"], d["o2_flow_l_min"]
    bad_flow = (dev == codes.OXYGEN["none"]) & (flow > 0)
    for mask, field, expected in (
        (bad, "hypotension", "hypotension = yes when vasopressors are given the same day"),
        (bad_flow, "o2_flow", "no oxygen flow on a day with oxygen = none"),
    ):
        if mask.any():
            i = int(np.flatnonzero(mask)[0])
            raise GradingInputError(
                field, "conflict", expected, f"patient {pid[i]}, day {day[i]:g}"
            )


# --------------------------------------------------------------------------------------


def derive_episodes(daily_grades, gap_days: int = 1):
    """Merge consecutive graded days (grade >= 1) of ``grade_daily`` into AE episodes.

    Returns the cohort ``adverse_events`` columns (``derived`` = True, ``serious`` and
    ``organ`` missing) plus ``grade_max``, ``grade_by_day``, ``source_rows`` and the
    provenance columns (``source_file`` = "derived:observations", ``source_row`` <NA>).
    """
    import pandas as pd

    from cartrial.cohort.model import COLUMNS

    cols = [
        *COLUMNS["adverse_events"],
        "grade_max",
        "grade_by_day",
        "source_rows",
        "source_file",
        "source_row",
    ]
    if gap_days < 1:
        raise GradingInputError("gap_days", gap_days, "an integer >= 1")
    need = ("patient_id", "day", "term", "system", "grade")
    miss = [c for c in need if c not in daily_grades.columns]
    if miss:
        raise GradingInputError(
            "daily_grades",
            list(daily_grades.columns),
            "the columns of grade_daily: " + ", ".join(need),
        )
    d = daily_grades[daily_grades["grade"].notna()].copy()
    d = d.sort_values(["patient_id", "term", "system", "day"], kind="stable")
    if d.empty:
        return _empty_ae(cols)
    g = d["grade"].astype(int).to_numpy()
    gmax = (d["grade_max"] if "grade_max" in d.columns else d["grade"]).astype("Int64")
    d["_gmax"] = gmax.fillna(pd.Series(g, index=d.index)).astype(int).to_numpy()
    key = (
        d["patient_id"].astype(str)
        + "\x00"
        + d["term"].astype(str)
        + "\x00"
        + d["system"].astype(str)
    ).to_numpy()
    day = d["day"].to_numpy(dtype=float)
    pos = g >= 1
    # episode ids over positive days: new when key changes, the previous positive day
    # of the same key is > gap_days back, or a grade-0 day came in between
    idx = np.arange(len(d))
    last_zero = pd.Series(np.where(~pos, idx, -1)).groupby(key).cummax().to_numpy()
    pos_idx = idx[pos]
    new = np.ones(pos_idx.size, dtype=bool)
    if pos_idx.size > 1:
        prev = pos_idx[:-1]
        cur = pos_idx[1:]
        same = key[cur] == key[prev]
        new[1:] = ~same | (day[cur] - day[prev] > gap_days) | (last_zero[cur] > prev)
    ep = np.cumsum(new)
    if not pos_idx.size:
        return _empty_ae(cols)
    sub = d.iloc[pos_idx].assign(_ep=ep, _g=g[pos_idx])
    dd = sub["day"].to_numpy(dtype=float)
    whole = dd == np.floor(dd)
    day_txt = np.where(
        whole,
        pd.Series(dd).round().astype("int64").astype(str).to_numpy(),
        pd.Series(dd).astype(str).to_numpy(),
    )
    sub["_gbd"] = pd.Series(day_txt, index=sub.index) + ":" + sub["_g"].astype(str) + ","
    grouped = sub.groupby("_ep", sort=True)
    agg = grouped.agg(
        patient_id=("patient_id", "first"),
        term=("term", "first"),
        system=("system", "first"),
        onset_day=("day", "min"),
        grade=("_g", "max"),
        grade_max=("_gmax", "max"),
    )
    agg["grade_by_day"] = grouped["_gbd"].sum().str.rstrip(",")
    # resolution: the first grade-0 day after the episode, before the next positive day
    last_pos_idx = pd.Series(pos_idx).groupby(ep).max().to_numpy()
    next_idx = last_pos_idx + 1
    res = np.full(len(agg), np.nan)
    ok = next_idx < len(d)
    ni = next_idx[ok]
    resolved = (key[ni] == key[last_pos_idx[ok]]) & (g[ni] == 0)
    tmp = res[ok]
    tmp[resolved] = day[ni[resolved]]
    res[ok] = tmp
    agg["resolution_day"] = res
    if "source_rows" in sub.columns:
        rows_txt = sub["source_rows"].fillna("").astype(str)
        rows_txt = rows_txt.where(rows_txt == "", rows_txt + ";")
        agg["source_rows"] = rows_txt.groupby(sub["_ep"]).sum().str.rstrip(";")
    else:
        agg["source_rows"] = ""
    out = pd.DataFrame(
        {
            "patient_id": agg["patient_id"].astype("string").to_numpy(),
            "term": agg["term"].astype("string").to_numpy(),
            "onset_day": agg["onset_day"].astype(float).to_numpy(),
            "resolution_day": agg["resolution_day"].to_numpy(dtype=float),
            "grade": pd.array(agg["grade"].to_numpy(), dtype="Int64"),
            "system": agg["system"].astype("string").to_numpy(),
            "serious": pd.array([pd.NA] * len(agg), dtype="boolean"),
            "organ": pd.array([pd.NA] * len(agg), dtype="string"),
            "derived": pd.array([True] * len(agg), dtype="boolean"),
            "grade_max": pd.array(agg["grade_max"].to_numpy(), dtype="Int64"),
            "grade_by_day": agg["grade_by_day"].astype("string").to_numpy(),
            "source_rows": agg["source_rows"].astype("string").to_numpy(),
            "source_file": "derived:observations",
            "source_row": pd.array([pd.NA] * len(agg), dtype="Int64"),
        }
    )
    out["source_file"] = out["source_file"].astype("string")
    return out[cols].sort_values(["patient_id", "term", "onset_day"]).reset_index(drop=True)


def _empty_ae(cols):
    import pandas as pd

    from cartrial.cohort.model import empty_table

    base = empty_table("adverse_events")
    for c in ("grade_max",):
        base[c] = pd.Series(dtype="Int64")
    for c in ("grade_by_day", "source_rows"):
        base[c] = pd.Series(dtype="string")
    return base[cols]


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
        observed = set(
            zip(
                daily_grades["patient_id"].astype(str),
                daily_grades["term"].astype(str),
                strict=True,
            )
        )
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
        else:
            out.append(
                {
                    **item,
                    "kind": "derived_only",
                    "note": f"derived max grade {dv[0]} has no recorded episode",
                }
            )
    return out


def _max_by(ae) -> dict[tuple[str, str], tuple[int, str | None]]:
    import pandas as pd

    from cartrial.cohort.vocab import AE_TERMS, GRADING_SYSTEMS, canonical

    if ae is None or len(ae) == 0:
        return {}
    df = ae[ae["grade"].notna()]
    out: dict[tuple[str, str], tuple[int, str | None]] = {}
    systems = df["system"] if "system" in df.columns else pd.Series([None] * len(df))
    for pid, term, grade, system in zip(
        df["patient_id"].astype(str),
        df["term"].astype(str),
        df["grade"].astype(int),
        systems,
        strict=True,
    ):
        t = canonical(term, AE_TERMS) or term
        s = (
            None
            if system is None
            or system is pd.NA
            or (isinstance(system, float) and math.isnan(system))
            else (canonical(system, GRADING_SYSTEMS) or str(system))
        )
        cur = out.get((pid, t))
        if cur is None or grade > cur[0]:
            out[(pid, t)] = (int(grade), s if cur is None or s else cur[1])
    return out
