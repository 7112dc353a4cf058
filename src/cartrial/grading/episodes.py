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
    * Fever masking (ASTCT 2019, Lee et al. BBMT 2019;25:625, Table 3 footnote: "in
      patients who have CRS then receive antipyretic or anticytokine therapy such as
      tocilizumab or steroids, fever is no longer required to grade subsequent CRS
      severity"). ASTCT states no duration, so the waiver is a protocol parameter:
      from a day tocilizumab, steroids or an antipyretic is given after a fever (same
      CRS stretch), fever is not required for ``fever_mask_days`` days (default 14;
      None = until the stretch ends). The stretch ends only at a day that is CRS grade
      0 *even with masking and every unknown item at its worst* (grade_max 0). A day
      that was not charted, or a day whose grade is only a lower bound, does not end
      it: a missing day keeps the masking state. Therapy given with no fever seen yet
      while some temperature of the stretch is unknown leaves masking unknown. A
      patient without any therapy record has masking unknown (never assumed absent),
      unless ``fever_masked`` rows are given.
    * CTCAE laboratory terms (ALT/AST/bilirubin/creatinine increased, fibrinogen
      decreased): the baseline is each patient's latest value from day -30 to day 0
      (``baseline_window``); without one the baseline is unknown (bounded, missing).
    * Units: a ``unit`` column is honoured (cells/uL, g/L, F, umol/L ... converted to
      the canonical unit of ``grading.fields``); a blank unit with a value that only
      makes sense in another unit is an error naming the row, never a grade.
    * Weight is carried forward (and taken from ``patients.weight_kg``); age from
      ``patients.age_years``.
    * Stool volume is the mean of the available daily volumes of the last
      ``stool_average_days`` (default 3) days, as MAGIC asks for 3-day averages.

Episodes (``derive_episodes``)
    A gap is unknown, never resolution. An episode starts at a day with grade >= 1 (the
    grade the known observations establish) and runs, across days that were not
    charted (up to ``max_gap_days`` in a row) and days whose grade is only a lower
    bound (grade 0, grade_max >= 1), until a day whose grade_max is 0 (resolved: even
    the unknown items could not make it an event). ``resolution_day`` is that day (NaN
    when it was not observed before a longer gap or the end of the data). ``grade`` is
    the highest established grade, ``grade_max`` the highest any day of the episode -
    charted or not - could have had, and ``missing`` lists the days that could raise it
    ("day 4: not charted; day 6: temperature_c"). ``grade_by_day`` lists "day:grade"
    ("day:grade-grade_max" where uncertain); ``source_rows`` names the observation rows
    ("file:row") that were graded.
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
    # CTCAE v5.0 laboratory terms graded against a per-patient baseline
    "alt_increased",
    "ast_increased",
    "bilirubin_increased",
    "creatinine_increased",
    "fibrinogen_decreased",
)
#: days whose latest value is the baseline of the CTCAE laboratory terms (day 0 =
#: infusion): the last value before or on the infusion day, at most 30 days before
BASELINE_WINDOW = (-30.0, 0.0)
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
    "creatinine": "creatinine_mg_dl",
    "alt": "alt_u_l",
    "ast": "ast_u_l",
    "fibrinogen": "fibrinogen_mg_dl",
    "ferritin": "ferritin_ng_ml",
    "crp": "crp_mg_l",
    "ldh": "ldh_u_l",
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
    "alt_increased": ("alt_u_l",),
    "ast_increased": ("ast_u_l",),
    "bilirubin_increased": ("bilirubin_mg_dl",),
    "creatinine_increased": ("creatinine_mg_dl",),
    "fibrinogen_decreased": ("fibrinogen_mg_dl",),
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
    lookup = _lookup_analyte()
    # the grading field of each row, decided once per distinct analyte spelling; then only
    # the graded rows and the columns used are copied (10⁷ rows: no whole-frame copies)
    a_codes, a_uniq = pd.factorize(observations["analyte"].astype(object).to_numpy())
    names = [None if a is None or a is pd.NA else lookup.get(_norm(a)) for a in a_uniq]
    fields = np.array(
        [
            "_therapy" if n in THERAPY_ANALYTES else ANALYTE_FIELDS.get(n) if n else None
            for n in names
        ]
        + [None],
        dtype=object,
    )
    field = fields[a_codes]  # code -1 (missing analyte) -> the trailing None
    keep = np.not_equal(field, None)
    used = [
        c
        for c in ("patient_id", "day", "analyte", "value", "value_text", "unit")
        + ("source_file", "source_row")
        if c in observations.columns
    ]
    rows_kept = np.flatnonzero(keep)  # positions in ``observations`` (named in messages)
    obs = observations[used].iloc[rows_kept].set_axis(rows_kept)
    obs["_field"] = field[keep]
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
    field_codes, field_names = pd.factorize(obs["_field"].to_numpy(dtype=object))
    for k, f in enumerate(field_names):
        m = field_codes == k
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
        unit_col = obs.loc[m, "unit"].to_numpy(dtype=object) if "unit" in obs.columns else None
        # parse each distinct (value, unit) pair once and broadcast (10⁷ rows, few pairs)
        pair, first = _distinct_pairs(src_vals, unit_col)
        try:
            parsed = parse_column(
                f,
                np.asarray(src_vals)[first],
                where="observation",
                units=None if unit_col is None else unit_col[first],
            )
            values[m] = np.asarray(parsed, dtype=float)[pair]
        except GradingInputError as exc:
            i = int(exc.where.split()[-1]) if exc.where else 0
            r = rows[first[i]]
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


def _distinct_pairs(values, units) -> tuple[np.ndarray, np.ndarray]:
    """``(codes, first)``: the distinct (value, unit) pair of each row, numbered by first
    appearance, and the first row holding each pair."""
    import pandas as pd

    v_codes, v_uniq = pd.factorize(np.asarray(values), use_na_sentinel=False)
    key = v_codes.astype(np.int64)
    if units is not None:
        u_codes, _ = pd.factorize(np.asarray(units, dtype=object), use_na_sentinel=False)
        key = key * (int(u_codes.max(initial=0)) + 1) + u_codes
    codes, _ = pd.factorize(key)
    first = np.full(int(codes.max(initial=-1)) + 1, len(codes), dtype=np.intp)
    np.minimum.at(first, codes, np.arange(len(codes)))
    return codes, first


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


def _segments(pid: np.ndarray, brk: np.ndarray) -> np.ndarray:
    """Segment ids: a new segment starts at a new patient or at a row where ``brk`` is
    True (that row starts the segment). Gaps between days never start one."""
    new = np.ones(len(pid), dtype=bool)
    if len(pid):
        new[1:] = (pid[1:] != pid[:-1]) | brk[1:]
    return np.cumsum(new)


def _group_cummax(seg: np.ndarray, x: np.ndarray) -> np.ndarray:
    import pandas as pd

    return pd.Series(x.astype(float)).groupby(seg).cummax().to_numpy()


DEFAULT_FEVER_MASK_DAYS = 14.0


def _window_any(pid: np.ndarray, day: np.ndarray, flag: np.ndarray, back: float) -> np.ndarray:
    """Per row: does ``flag`` hold on some row of the same patient with a day in
    [day - back, day]? (``day`` sorted within patient; vectorised by searchsorted on
    the running count of flagged rows.)"""
    n = len(day)
    if n == 0:
        return np.zeros(0, dtype=bool)
    key = np.cumsum(np.r_[True, pid[1:] != pid[:-1]]).astype(float)
    # one sortable axis: patient block offset + day (blocks spaced wider than any window)
    span = (np.nanmax(day) - np.nanmin(day)) + (0 if math.isinf(back) else back) + 2
    axis = key * span + (day - np.nanmin(day))
    lo_axis = np.where(math.isinf(back), key * span, axis - back)
    count = np.cumsum(flag.astype(int))
    start = np.searchsorted(axis, lo_axis, side="left")
    before = np.where(start > 0, count[np.maximum(start - 1, 0)], 0)
    return (count - before) > 0


def _fever_masked(wide, data: dict[str, np.ndarray], mask_days: float | None) -> np.ndarray:
    """ASTCT fever masking per patient-day (see module doc): 1 masked, 0 not, NaN
    unknown.

    Masked for sure when tocilizumab/steroids/an antipyretic was given within the last
    ``mask_days`` days, with a known fever (>= 38.0 °C) in the ``mask_days`` before that
    dose. Possibly masked when such a dose *could* have been given: on a day that was
    not charted, or with the fever before it unknown (temperature not recorded, or a
    day not charted). A charted day without a therapy row means no therapy that day,
    as medication records list doses given, except for a patient with no therapy record
    at all (masking unknown throughout).
    """
    import pandas as pd

    pid = wide.index.get_level_values(0).to_numpy(dtype=object)
    day = wide.index.get_level_values(1).to_numpy(dtype=float)
    therapy = _col(wide, "_therapy")
    direct = _col(wide, "fever_masked")
    has_info = pd.Series(~np.isnan(therapy)).groupby(pid).transform("any").to_numpy(dtype=bool)
    window = math.inf if mask_days is None else float(mask_days)
    temp = data["temperature_c"]
    # days not charted between two charted days: a dose and a fever could have been
    # on any of them; the latest such day before (or at) each row
    gap_before = np.zeros(len(day), dtype=bool)
    if len(day) > 1:
        gap_before[1:] = (pid[1:] == pid[:-1]) & (np.diff(day) > 1)
    last_uncharted = (
        pd.Series(np.where(gap_before, day - 1, np.nan)).groupby(pid).ffill().to_numpy(float)
    )
    gap_recent = (day - last_uncharted) <= window
    fever_sure = np.nan_to_num(temp, nan=0) >= crs.FEVER_C
    fever_maybe = fever_sure | np.isnan(temp)
    given_sure = np.nan_to_num(therapy, nan=0) >= 1
    given_maybe = given_sure
    trig_sure = given_sure & _window_any(pid, day, fever_sure, window)
    sure = _window_any(pid, day, trig_sure, window)
    trig_maybe = given_maybe & (_window_any(pid, day, fever_maybe, window) | gap_recent)
    maybe = _window_any(pid, day, trig_maybe, window) | gap_recent | ~has_info
    masked = np.where(sure, 1.0, np.where(maybe, np.nan, 0.0))
    return np.where(~np.isnan(direct), direct, masked)


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
    fever_mask_days: float | None = DEFAULT_FEVER_MASK_DAYS,
    stool_average_days: int = 3,
    uln: Mapping[str, float] | None = None,
    ranges: str | None = None,
    baseline_window: tuple[float, float] = BASELINE_WINDOW,
):
    """Grade every patient-day of ``observations`` for ``terms``.

    Returns a DataFrame with columns ``patient_id, day, term, system, grade,
    grade_max, missing, source_rows`` (one row per patient, day and term with at least
    one relevant observation; ``grade`` is the established lower bound, ``missing``
    a comma-separated list of unknown items that could raise it).
    ``fever_mask_days``: how long after antipyretic/anti-cytokine therapy fever is not
    required for CRS (ASTCT 2019 states no duration; see module doc; None = no limit).
    The CTCAE laboratory terms (ALT/AST/bilirubin/creatinine increased, fibrinogen
    decreased) use ULN/LLN from ``lln``/``uln``/``ranges`` (``grading.ranges``) and, as
    baseline, each patient's latest value from ``baseline_window`` (default day -30 to
    day 0); no value there = baseline unknown (bounded, listed missing).
    """
    if fever_mask_days is not None and (
        isinstance(fever_mask_days, bool)
        or not isinstance(fever_mask_days, int | float)
        or not fever_mask_days >= 0
    ):
        raise GradingInputError("fever_mask_days", fever_mask_days, "a number of days >= 0 or None")
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
            data["fever_masked"] = _fever_masked(wide, data, fever_mask_days)
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
        elif term in ctcae.LAB_TERMS:
            field, base_field, kind = ctcae.LAB_TERMS[term]
            limit = ctcae._ranges(lln, uln, ranges).need(kind, field).value
            kernel, fills = ctcae.lab_kernel(term, limit)
            data[base_field] = _baseline(wide, field, baseline_window)
            b = bound(kernel, data, fills, (field,))
            system = ctcae.VERSION
        elif term == "anemia":
            rr = ctcae._ranges(lln, None, None)
            fills = {
                "hemoglobin_g_dl": Fill(16.0, 3.0),
                "sex": Fill(0, None),
                "life_threatening": Fill(math.nan, None),
                "death": Fill(math.nan, None),
            }
            lf, lm = ctcae._hb_lln(lln, rr, "F"), ctcae._hb_lln(lln, rr, "M")
            b = bound(
                lambda d, lf=lf, lm=lm: ctcae.anemia_kernel(d, lf, lm),
                data,
                fills,
                ("hemoglobin_g_dl",),
            )
            system = ctcae.VERSION
        else:
            field, t2, t3, t4, _name = ctcae.COUNT_TERMS[term]
            low = ctcae._ranges(lln, None, None).need("lln", field).value
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


def _baseline(wide, field: str, window: tuple[float, float]) -> np.ndarray:
    """Each row's patient baseline of ``field``: the latest value in ``window``."""
    import pandas as pd

    if field not in wide.columns:
        return np.full(len(wide), np.nan)
    pid = wide.index.get_level_values(0)
    day = wide.index.get_level_values(1).to_numpy(dtype=float)
    v = wide[field].to_numpy(dtype=float)
    ok = ~np.isnan(v) & (day >= window[0]) & (day <= window[1])
    last = pd.Series(v[ok], index=pid[ok]).groupby(level=0).last()
    return pd.Series(pid).map(last).to_numpy(dtype=float)


def _join_sources(src, cols: Iterable[str]) -> np.ndarray:
    cols = list(cols)
    if not cols:
        return np.array([""] * len(src), dtype=object)
    # the non-empty "file:row;…" parts joined by ";" (element-wise, no per-row regex)
    joined = np.full(len(src), "", dtype=object)
    for c in cols:
        part = src[c].fillna("").to_numpy(dtype=object)  # "file:row;…", never ";"-edged
        empty, has = joined == "", part != ""
        joined = np.where(has, np.where(empty, part, joined + ";" + part), joined)
    return joined


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


#: the highest grade a day that was not charted could have had, per term (death is a
#: recorded event, so grade 5 is not assumed for an uncharted day; CTCAE anaemia grade 4
#: needs a life-threatening record that daily grading does not use)
TERM_MAX_GRADE: dict[str, int] = {"anemia": 3}
DEFAULT_MAX_GAP_DAYS = 7


def _day_text(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else f"{x:g}"


def derive_episodes(daily_grades, max_gap_days: int = DEFAULT_MAX_GAP_DAYS):
    """Merge the graded days of ``grade_daily`` into AE episodes (see module doc).

    A day not charted or a lower-bound day never ends an episode; only a day with
    grade_max 0 does (``resolution_day``), or more than ``max_gap_days`` uncharted days
    in a row (resolution unknown, NaN). Returns the cohort ``adverse_events`` columns
    (``derived`` = True, ``serious`` and ``organ`` missing) plus ``grade_max``,
    ``missing`` (days and items that could raise the grade), ``grade_by_day``,
    ``source_rows`` and the provenance columns (``source_file`` =
    "derived:observations", ``source_row`` <NA>).
    """
    import pandas as pd

    from cartrial.cohort.model import COLUMNS

    cols = [
        *COLUMNS["adverse_events"],
        "grade_max",
        "missing",
        "grade_by_day",
        "source_rows",
        "source_file",
        "source_row",
    ]
    if (
        isinstance(max_gap_days, bool)
        or not isinstance(max_gap_days, int | np.integer)
        or max_gap_days < 0
    ):
        raise GradingInputError("max_gap_days", max_gap_days, "a whole number of days >= 0")
    need = ("patient_id", "day", "term", "system", "grade")
    miss = [c for c in need if c not in daily_grades.columns]
    if miss:
        raise GradingInputError(
            "daily_grades",
            list(daily_grades.columns),
            "the columns of grade_daily: " + ", ".join(need),
        )
    d = daily_grades[daily_grades["grade"].notna()]
    d = d.sort_values(["patient_id", "term", "system", "day"], kind="stable")
    if d.empty:
        return _empty_ae(cols)
    g = d["grade"].astype(int).to_numpy()
    gmax_col = d["grade_max"] if "grade_max" in d.columns else d["grade"]
    gmax = gmax_col.astype("Int64").fillna(pd.Series(g, index=d.index)).to_numpy(dtype=int)
    gmax = np.maximum(gmax, g)
    items = (
        d["missing"].fillna("").astype(str).to_numpy(dtype=object)
        if "missing" in d.columns
        else np.full(len(d), "", dtype=object)
    )
    srcs = (
        d["source_rows"].fillna("").astype(str).to_numpy(dtype=object)
        if "source_rows" in d.columns
        else np.full(len(d), "", dtype=object)
    )
    pid = d["patient_id"].astype(str).to_numpy(dtype=object)
    term = d["term"].astype(str).to_numpy(dtype=object)
    system = d["system"].astype(str).to_numpy(dtype=object)
    day = d["day"].to_numpy(dtype=float)
    n = len(d)
    same_key = np.zeros(n, dtype=bool)
    same_key[1:] = (pid[1:] == pid[:-1]) & (term[1:] == term[:-1]) & (system[1:] == system[:-1])
    gap = np.zeros(n)
    gap[1:] = day[1:] - day[:-1] - 1  # uncharted whole days in between
    # Vectorised over rows (no per-patient loop). A block of rows runs until a new key, a
    # too-long gap, or a resolved day (grade_max 0, which ends the block and the episode
    # in it). The episode of a block starts at its first day with grade >= 1 (earlier
    # days are possible but unproven onsets) and holds every later unresolved day.
    resolved = gmax == 0
    start_block = np.ones(n, dtype=bool)
    start_block[1:] = ~(same_key[1:] & (gap[1:] <= max_gap_days)) | resolved[:-1]
    block = np.cumsum(start_block) - 1
    proven = pd.Series(g >= 1).groupby(block).cummax().to_numpy(dtype=bool)
    member = proven & ~resolved
    if not member.any():
        return _empty_ae(cols)
    first = member.copy()
    first[1:] &= ~(member[:-1] & (block[1:] == block[:-1]))
    episode = np.cumsum(first) - 1  # episode number of each member row
    rows_in = np.flatnonzero(member)
    ep_of = episode[rows_in]
    k = int(ep_of[-1]) + 1
    starts = np.flatnonzero(first)
    last_pos = np.append(np.flatnonzero(np.diff(ep_of)), len(rows_in) - 1)
    lasts = rows_in[last_pos]
    # the resolved day closing an episode is the row right after its last day, same block
    after = lasts + 1
    closes = after < n
    closes[closes] = resolved[after[closes]] & (block[after[closes]] == block[lasts[closes]])
    resolution = np.where(closes, day[np.minimum(after, n - 1)], np.nan)
    top = np.array([TERM_MAX_GRADE.get(t, 4) for t in term[starts]], dtype=int)
    inner_gap = member & ~first & (gap >= 1)
    grade = np.maximum.reduceat(g[rows_in], np.flatnonzero(np.diff(np.r_[-1, ep_of])))
    gmax_ep = np.maximum.reduceat(gmax[rows_in], np.flatnonzero(np.diff(np.r_[-1, ep_of])))
    has_gap = np.bincount(episode[inner_gap], minlength=k) > 0
    tail_gap = closes & (resolution - day[lasts] > 1)
    gmax_ep = np.where(has_gap | tail_gap, np.maximum(gmax_ep, top), gmax_ep)

    # text columns: one string per member row, joined per episode
    day_txt = pd.Series(day[rows_in]).map({x: _day_text(x) for x in np.unique(day[rows_in])})
    g_in, gmax_in = g[rows_in], gmax[rows_in]
    by_day = day_txt + ":" + pd.Series(g_in.astype(str))
    by_day = by_day.where(gmax_in <= g_in, by_day + "-" + pd.Series(gmax_in.astype(str)))
    notes = np.full(len(rows_in), "", dtype=object)
    for j in np.flatnonzero(inner_gap[rows_in]):  # only rows that follow uncharted days
        i = rows_in[j]
        notes[j] = _not_charted(np.arange(day[i - 1] + 1, day[i]))
    item = (gmax_in > g_in) & (items[rows_in] != "")
    item_txt = "day " + day_txt + ": " + pd.Series(items[rows_in], dtype=object)
    notes = np.where(item, np.where(notes == "", item_txt, notes + "; " + item_txt), notes).astype(
        object
    )
    for e in np.flatnonzero(tail_gap):  # uncharted days between last day and resolution
        tail = _not_charted(np.arange(day[lasts[e]] + 1, resolution[e]), whole_only=False)
        j = last_pos[e]
        notes[j] = f"{notes[j]}; {tail}" if notes[j] else tail

    def per_episode(text: np.ndarray | pd.Series, sep: str) -> list[str]:
        ser = pd.Series(np.asarray(text, dtype=object))
        keep = ser != ""
        joined = ser[keep].groupby(ep_of[keep.to_numpy()]).agg(sep.join)
        return joined.reindex(range(k), fill_value="").tolist()

    out = pd.DataFrame(
        {
            "patient_id": pd.array(pid[starts], dtype="string"),
            "term": pd.array(term[starts], dtype="string"),
            "onset_day": day[starts].astype(float),
            "resolution_day": resolution.astype(float),
            "grade": pd.array(grade, dtype="Int64"),
            "system": pd.array(system[starts], dtype="string"),
            "serious": pd.array([pd.NA] * k, dtype="boolean"),
            "organ": pd.array([pd.NA] * k, dtype="string"),
            "derived": pd.array([True] * k, dtype="boolean"),
            "grade_max": pd.array(gmax_ep, dtype="Int64"),
            "missing": pd.array(per_episode(notes, "; "), dtype="string"),
            "grade_by_day": pd.array(per_episode(by_day, ","), dtype="string"),
            "source_rows": pd.array(per_episode(srcs[rows_in], ";"), dtype="string"),
            "source_file": pd.array(["derived:observations"] * k, dtype="string"),
            "source_row": pd.array([pd.NA] * k, dtype="Int64"),
        }
    )
    return out[cols].sort_values(["patient_id", "term", "onset_day"]).reset_index(drop=True)


def _not_charted(days: np.ndarray, whole_only: bool = True) -> str:
    """ "day(s) 3,4: not charted" for the (whole) days in ``days``."""
    whole = days[days == np.floor(days)] if whole_only else days
    return (
        "day"
        + ("s " if len(whole) > 1 else " ")
        + ",".join(_day_text(x) for x in whole)
        + ": not charted"
    )


def _empty_ae(cols):
    import pandas as pd

    from cartrial.cohort.model import empty_table

    base = empty_table("adverse_events")
    for c in ("grade_max",):
        base[c] = pd.Series(dtype="Int64")
    for c in ("missing", "grade_by_day", "source_rows"):
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
