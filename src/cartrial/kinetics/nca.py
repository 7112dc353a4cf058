"""Non-compartmental analysis (NCA) of CAR-T transgene / CAR+ cell profiles.

Conventions (see ``docs/domain/KINETICS.md`` and the regulatory reviews it summarises):

* Time is days since infusion. Samples before day 0 are not part of the profile; the
  pre-infusion value is 0, so a profile without a day-0 sample gets ``(0, 0)`` prepended and
  AUC starts at 0.
* Cmax is the maximum quantifiable value; Tmax its first time. Clast/Tlast are the last
  quantifiable value and its time; ``t_last_detectable`` is the last time with any value > 0
  (a reading below the LLOQ but above zero counts as *detected, not quantifiable*), and
  ``persistence_days`` equals it.
* Below-LLOQ (BLQ) rule, made explicit because it moves AUC by several per cent:
  a sample is BLQ when ``value < lloq`` or ``value <= 0`` (below-LLOQ text such as ``<50`` or
  ``BLQ`` is read as BLQ by ``_obs.BLQ_TEXT_RULE``). BLQ samples **before the first
  quantifiable** sample count as 0. BLQ samples **after** it are, by ``blq_after``:
  ``"pknca"`` (**default**, PKNCA's documented default ``conc.blq = list(first = "keep",
  middle = "drop", last = "keep")`` with BLQ coded 0: first kept as 0, BLQ between
  quantifiable samples dropped, BLQ after the last quantifiable sample kept as 0; PKNCA
  ``clean.conc.blq`` and ``PKNCA.options``), ``"exclude"`` (every BLQ after the first
  quantifiable sample dropped) or ``"half_lloq"`` (set to LLOQ/2, or 0 where no LLOQ is
  known).
* AUC, ``auc_method="linear-up/log-down"`` (default): linear trapezoid while rising or flat,
  log trapezoid ``(c1 - c2)·Δt / ln(c1/c2)`` while falling, only when both values are > 0,
  otherwise linear (so a fall into 0 adds the linear triangle, never zero area).
  ``"linear"``: linear trapezoids throughout. (PKNCA ``pk.calc.auc``, methods "lin up/log
  down" and "linear".)
* Partial AUC to day T (28 and 84 by default) without a sample on day T: the value at T is
  interpolated inside its interval (linear while rising, log-linear while falling when both
  values are > 0, linear under ``auc_method="linear"``; PKNCA ``interp.extrap.conc``) and the
  area integrated to T. When the last quantifiable value is before T but the profile was
  sampled to T or later (the later samples being BLQ), the area after Tlast is 0 (AUClast
  convention). When the last sample of any kind is before T, the partial AUC is NaN: it is
  never extrapolated.
* λz (terminal slope), PKNCA ``pk.calc.half.life`` defaults: log-linear regression over the
  last k quantifiable points after Tmax (Tmax excluded), k >= 3; the best fit is the one with
  λz > 0 and adjusted R² within 1e-4 of the best adjusted R² of all candidate fits, the one with
  the most points among those. Half-life = ln 2 / λz. A multiphasic CAR-T decline means the
  automatic window lands on either the fast or the slow phase: the window used is reported
  (``lambda_z_start``, ``lambda_z_end``, ``lambda_z_n_points``). Quality, as PKNCA's options
  ``min.hl.r.squared`` (0.9) and ``min.span.ratio`` (2) judge it: ``span_ratio`` = (window
  end − start) / half-life; ``lambda_z_poor`` is True and ``lambda_z_flag`` says why when the
  adjusted R² < ``MIN_ADJ_R2`` (0.9) or the span ratio < ``MIN_SPAN_RATIO`` (2). The estimate
  is kept (flagged, not deleted) so the reader can judge it.
* All-BLQ profile: Cmax = 0 and AUC = 0 (measured, not missing); Tmax, Tlast, Clast NaN
  (as PKNCA). A profile with no non-missing sample: everything NaN.

The kernel works on many profiles at once on sorted arrays (NumPy group reductions, no
Python loop over patients); ``nca`` runs it on one profile, ``nca_table`` on a long table.
"""

from __future__ import annotations

import sys
import types
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from cartrial.cohort.units import DAYS_PER_MONTH
from cartrial.kinetics._groups import (
    first_in_group,
    group_reduce,
    group_starts,
    group_sum,
    last_in_group,
    within_group_cumsum,
)
from cartrial.kinetics._obs import profile_arrays, select_analyte

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

AUC_METHODS = ("linear-up/log-down", "linear")
BLQ_RULES = ("exclude", "half_lloq", "pknca")
#: PKNCA defaults for the λz selection
MIN_HL_POINTS = 3
ADJ_R2_FACTOR = 1e-4
#: PKNCA quality limits for λz (options min.hl.r.squared, min.span.ratio)
MIN_ADJ_R2 = 0.9
MIN_SPAN_RATIO = 2.0

NCA_COLUMNS = (
    "n_samples",
    "n_quantifiable",
    "n_blq",
    "cmax",
    "tmax",
    "clast",
    "tlast",
    "t_last_detectable",
    "persistence_days",
    "last_sample_day",
    "auc_last",
    "auc_all",
)
LAMBDA_COLUMNS = (
    "lambda_z",
    "half_life",
    "lambda_z_start",
    "lambda_z_end",
    "lambda_z_n_points",
    "r_squared",
    "adj_r_squared",
    "span_ratio",
)


def auc_label(day: float) -> str:
    """Column name of the partial AUC to ``day`` (``auc_0_28``)."""
    return f"auc_0_{day:g}".replace(".", "_")


def _interval_area(c1: np.ndarray, c2: np.ndarray, dt: np.ndarray, log_down: bool) -> np.ndarray:
    """Area of each interval: linear trapezoid, or log trapezoid while falling with both > 0."""
    area = 0.5 * (c1 + c2) * dt
    if log_down:
        use_log = (c2 < c1) & (c2 > 0) & (c1 > 0)
        if use_log.any():
            a, b = c1[use_log], c2[use_log]
            area[use_log] = (a - b) * dt[use_log] / np.log(a / b)
    return area


def _interpolate(c1: np.ndarray, c2: np.ndarray, frac: np.ndarray, log_down: bool) -> np.ndarray:
    """Value at fraction ``frac`` of an interval: linear, or log-linear while falling."""
    out = c1 + frac * (c2 - c1)
    if log_down:
        use_log = (c2 < c1) & (c2 > 0) & (c1 > 0)
        if use_log.any():
            a, b, f = c1[use_log], c2[use_log], frac[use_log]
            out[use_log] = np.exp(np.log(a) + f * (np.log(b) - np.log(a)))
    return out


def nca_kernel(
    codes: np.ndarray,
    day: np.ndarray,
    value: np.ndarray,
    lloq: np.ndarray,
    n_groups: int,
    *,
    auc_method: str = "linear-up/log-down",
    blq_after: str = "pknca",
    partial_days: Sequence[float] = (28.0, 84.0),
) -> dict[str, np.ndarray]:
    """NCA of many profiles at once.

    Inputs are sorted by (code, day), with no missing values, no negative days and at most
    one sample per group and day (``_obs.select_analyte`` guarantees this). Returns a dict
    of arrays of length ``n_groups`` (see the module docstring for every definition).
    """
    if auc_method not in AUC_METHODS:
        raise ValueError(f"auc_method {auc_method!r}; expected one of {', '.join(AUC_METHODS)}")
    if blq_after not in BLQ_RULES:
        raise ValueError(f"blq_after {blq_after!r}; expected one of {', '.join(BLQ_RULES)}")
    log_down = auc_method == "linear-up/log-down"
    G = int(n_groups)
    starts = group_starts(codes, G)
    n_samples = np.diff(starts).astype(float)
    has = n_samples > 0

    with np.errstate(invalid="ignore"):
        blq = (value < lloq) | (value <= 0)
    quant = ~blq
    detect = value > 0
    q_seen = within_group_cumsum(quant.astype(float), codes, starts)
    n_quant = group_sum(quant.astype(float), codes, G)
    before_first = q_seen == 0
    after_last = (q_seen == n_quant[codes]) & ~before_first & blq

    # --- cleaned profile for AUC -------------------------------------------------------
    conc = np.where(blq & before_first, 0.0, value)
    keep = np.ones(len(value), dtype=bool)
    late_blq = blq & ~before_first
    if blq_after == "exclude":
        keep &= ~late_blq
    elif blq_after == "half_lloq":
        conc = np.where(late_blq, np.where(np.isfinite(lloq), lloq / 2.0, 0.0), conc)
    else:  # pknca: middle dropped, trailing kept as 0
        keep &= ~(late_blq & ~after_last)
        conc = np.where(late_blq & after_last, 0.0, conc)
    k_codes, k_day, k_conc = codes[keep], day[keep], conc[keep]
    k_starts = group_starts(k_codes, G)
    first_day = group_reduce(np.minimum, k_day, k_starts, np.inf)
    need_zero = np.flatnonzero(has & (first_day > 0))
    if len(need_zero):
        k_codes = np.concatenate((k_codes, need_zero))
        k_day = np.concatenate((k_day, np.zeros(len(need_zero))))
        k_conc = np.concatenate((k_conc, np.zeros(len(need_zero))))
        order = np.lexsort((k_day, k_codes))
        k_codes, k_day, k_conc = k_codes[order], k_day[order], k_conc[order]

    same = k_codes[1:] == k_codes[:-1]
    ig = k_codes[:-1][same]
    t1, t2 = k_day[:-1][same], k_day[1:][same]
    c1, c2 = k_conc[:-1][same], k_conc[1:][same]
    dt = t2 - t1
    area = _interval_area(c1, c2, dt, log_down)

    # --- observed quantities -------------------------------------------------------------
    qval = np.where(quant, value, -np.inf)
    cmax = group_reduce(np.maximum, qval, starts, -np.inf)
    cmax = np.where(np.isfinite(cmax), cmax, np.where(has, 0.0, np.nan))
    tmax = first_in_group(quant & (value == cmax[codes]), day, starts)
    tlast = last_in_group(quant, day, starts)
    clast = last_in_group(quant, value, starts)
    t_det = last_in_group(detect, day, starts)
    last_day = group_reduce(np.maximum, day, starts, np.nan)

    out: dict[str, np.ndarray] = {
        "n_samples": n_samples,
        "n_quantifiable": n_quant,
        "n_blq": n_samples - n_quant,
        "cmax": cmax,
        "tmax": tmax,
        "clast": clast,
        "tlast": tlast,
        "t_last_detectable": t_det,
        "persistence_days": t_det.copy(),
        "last_sample_day": last_day,
    }
    auc_all = group_sum(area, ig, G)
    # AUClast: intervals ending at or before Tlast (Tlast NaN → no quantifiable → 0 area)
    upto = np.where(np.isnan(tlast), -np.inf, tlast)[ig]
    auc_last = group_sum(np.where(t2 <= upto, area, 0.0), ig, G)
    out["auc_last"] = np.where(has, auc_last, np.nan)
    out["auc_all"] = np.where(has, auc_all, np.nan)
    for T in partial_days:
        T = float(T)
        full = np.where(t2 <= T, area, 0.0)
        part = (t1 < T) & (t2 > T)
        if part.any():
            frac = (T - t1[part]) / dt[part]
            cT = _interpolate(c1[part], c2[part], frac, log_down)
            full[part] = _interval_area(c1[part], cT, T - t1[part], log_down)
        auc_T = group_sum(full, ig, G)
        out[auc_label(T)] = np.where(has & (last_day >= T), auc_T, np.nan)

    out.update(_lambda_z(codes, day, value, quant, tmax, starts, G))
    return out


def lambda_z_quality(adj_r2: np.ndarray, span: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(poor, flag)`` per profile: poor when adjusted R² < ``MIN_ADJ_R2`` or span ratio <
    ``MIN_SPAN_RATIO`` (PKNCA ``min.hl.r.squared``, ``min.span.ratio``); the flag names the
    rule(s) that fired ("" when fine or when no λz was estimated)."""
    adj_r2, span = np.asarray(adj_r2, float), np.asarray(span, float)
    with np.errstate(invalid="ignore"):
        low_r2 = adj_r2 < MIN_ADJ_R2
        short = span < MIN_SPAN_RATIO
    flags = np.full(adj_r2.shape, "", dtype=object)
    for i in np.flatnonzero(low_r2 | short):
        parts = []
        if low_r2[i]:
            parts.append(f"adjusted R² {adj_r2[i]:.3f} < {MIN_ADJ_R2:g}")
        if short[i]:
            parts.append(f"span {span[i]:.2f} < {MIN_SPAN_RATIO:g} half-lives")
        flags[i] = "; ".join(parts)
    return low_r2 | short, flags


def _lambda_z(
    codes: np.ndarray,
    day: np.ndarray,
    value: np.ndarray,
    quant: np.ndarray,
    tmax: np.ndarray,
    starts: np.ndarray,
    G: int,
) -> dict[str, np.ndarray]:
    """Terminal slope by PKNCA's automatic point selection, for all groups at once.

    Candidate windows are the last k eligible points (quantifiable, after Tmax), k >= 3.
    Regression sums come from within-group prefix sums (x and y centred per group), so every
    candidate of every group is evaluated in one vectorised pass.
    """
    nan = np.full(G, np.nan)
    res = {k: nan.copy() for k in LAMBDA_COLUMNS}
    with np.errstate(invalid="ignore"):
        elig = quant & (day > tmax[codes])
    e_codes = codes[elig]
    if len(e_codes) == 0:
        return res
    x = day[elig]
    y = np.log(value[elig])
    e_starts = group_starts(e_codes, G)
    m = np.diff(e_starts)
    # centre per group for numerical stability of the sums
    xc = x - group_reduce(np.add, x, e_starts, 0.0)[e_codes] / np.maximum(m, 1)[e_codes]
    yc = y - group_reduce(np.add, y, e_starts, 0.0)[e_codes] / np.maximum(m, 1)[e_codes]

    def prefix(a: np.ndarray) -> np.ndarray:
        return np.concatenate(([0.0], np.cumsum(a)))

    P = {
        k: prefix(v)
        for k, v in {"x": xc, "y": yc, "xx": xc * xc, "yy": yc * yc, "xy": xc * yc}.items()
    }
    pos = np.arange(len(e_codes))
    end = e_starts[1:][e_codes]  # one past the group's last eligible point
    n = (end - pos).astype(float)
    cand = n >= MIN_HL_POINTS
    if not cand.any():
        return res
    k, ke, n, cg = pos[cand], end[cand], n[cand], e_codes[cand]

    def window(key: str) -> np.ndarray:
        return P[key][ke] - P[key][k]

    sx, sy, sxx, syy, sxy = (window(key) for key in ("x", "y", "xx", "yy", "xy"))
    Sxx = sxx - sx * sx / n
    Syy = syy - sy * sy / n
    Sxy = sxy - sx * sy / n
    with np.errstate(divide="ignore", invalid="ignore"):
        slope = Sxy / Sxx
        flat = Syy <= 1e-12 * np.maximum(1.0, syy)
        r2 = np.where(flat, np.nan, Sxy * Sxy / (Sxx * Syy))
        adj = 1.0 - (1.0 - r2) * (n - 1.0) / (n - 2.0)
    lam = -slope
    c_starts = group_starts(cg, G)
    best_adj = group_reduce(np.fmax, np.where(np.isnan(adj), -np.inf, adj), c_starts, -np.inf)
    with np.errstate(invalid="ignore"):
        ok = (lam > 0) & (adj > best_adj[cg] - ADJ_R2_FACTOR)
    best_n = group_reduce(np.maximum, np.where(ok, n, -1.0), c_starts, -1.0)
    chosen = ok & (n == best_n[cg])
    g = cg[chosen]
    res["lambda_z"][g] = lam[chosen]
    res["half_life"][g] = np.log(2.0) / lam[chosen]
    res["lambda_z_start"][g] = x[k[chosen]]
    res["lambda_z_end"][g] = x[ke[chosen] - 1]
    res["lambda_z_n_points"][g] = n[chosen]
    res["r_squared"][g] = r2[chosen]
    res["adj_r_squared"][g] = adj[chosen]
    res["span_ratio"][g] = (x[ke[chosen] - 1] - x[k[chosen]]) * lam[chosen] / np.log(2.0)
    return res


def nca(
    days: Sequence[float] | np.ndarray,
    values: Sequence[float] | np.ndarray,
    lloq: float | Sequence[float] | np.ndarray | None = None,
    auc_method: str = "linear-up/log-down",
    blq_after: str = "pknca",
    partial_days: Sequence[float] = (28.0, 84.0),
    patient: str | None = None,
) -> dict[str, Any]:
    """NCA of one profile (days since infusion, values, LLOQ scalar or per sample).

    Missing values (NaN) are dropped, samples before day 0 ignored; two samples on one day or
    a negative value raise ValueError. Returns a dict with ``cmax, tmax, clast, tlast,
    t_last_detectable, persistence_days, auc_0_28, auc_0_84, auc_last, auc_all, n_samples,
    n_quantifiable, n_blq, last_sample_day, lambda_z, half_life, lambda_z_start, lambda_z_end,
    lambda_z_n_points, r_squared, adj_r_squared, span_ratio, lambda_z_poor, lambda_z_flag``
    (definitions in the module docstring). ``patient`` (optional) is named in input errors.
    """
    t, c, lq = profile_arrays(days, values, lloq, patient=patient)
    if (np.diff(t) == 0).any():
        d = t[1:][np.diff(t) == 0][0]
        raise ValueError(f"two samples on day {d:g}; expected one value per day")
    out = nca_kernel(
        np.zeros(len(t), dtype=np.int64),
        t,
        c,
        lq,
        1,
        auc_method=auc_method,
        blq_after=blq_after,
        partial_days=partial_days,
    )
    res: dict[str, Any] = {k: float(v[0]) for k, v in out.items()}
    poor, flag = lambda_z_quality(out["adj_r_squared"], out["span_ratio"])
    res["lambda_z_poor"] = bool(poor[0])
    res["lambda_z_flag"] = str(flag[0])
    return res


def nca_table(
    observations: pd.DataFrame,
    analyte: str = "cart_qpcr",
    by: str | Sequence[str] = "patient_id",
    auc_method: str = "linear-up/log-down",
    blq_after: str = "pknca",
    partial_days: Sequence[float] = (28.0, 84.0),
) -> pd.DataFrame:
    """NCA of every profile of ``analyte`` in the long observations table.

    ``observations`` has columns ``patient_id, day, analyte, value`` and optionally ``unit``
    and ``lloq`` (per sample). One row per group of ``by`` (default: patient), vectorised
    across patients. Raises ValueError on mixed units, negative values or duplicate days.
    """
    import pandas as pd

    arr = select_analyte(observations, analyte, by)
    res = nca_kernel(
        arr.codes,
        arr.day,
        arr.value,
        arr.lloq,
        arr.n_groups,
        auc_method=auc_method,
        blq_after=blq_after,
        partial_days=partial_days,
    )
    table = arr.keys.copy()
    table["analyte"] = analyte
    table["unit"] = arr.unit
    for key, val in res.items():
        table[key] = val
    int_cols = ["n_samples", "n_quantifiable", "n_blq"]
    table[int_cols] = table[int_cols].astype("int64")
    table["lambda_z_poor"], table["lambda_z_flag"] = lambda_z_quality(
        res["adj_r_squared"], res["span_ratio"]
    )
    table["lambda_z_n_points"] = pd.array(
        np.where(np.isnan(res["lambda_z_n_points"]), np.nan, res["lambda_z_n_points"]),
        dtype="Int64",
    )
    table.attrs["nca_options"] = {
        "auc_method": auc_method,
        "blq_after": blq_after,
        "partial_days": list(partial_days),
        "n_blq_text": arr.n_blq_text,
    }
    return table


#: parameters summarised by default, in report order
SUMMARY_PARAMETERS = (
    "cmax",
    "tmax",
    "auc_0_28",
    "auc_0_84",
    "clast",
    "tlast",
    "persistence_days",
    "half_life",
)


def _geo(values: np.ndarray) -> tuple[float, float, int]:
    """Geometric mean and geometric CV% = 100·sqrt(exp(s²) − 1), s = SD of ln values.

    Only positive values enter (a log of 0 does not exist); their count is returned.
    Source: the geometric CV of a log-normal variable (Kirkwood 1979, Biometrics 35:908).
    """
    pos = values[values > 0]
    if len(pos) == 0:
        return np.nan, np.nan, 0
    logs = np.log(pos)
    gm = float(np.exp(logs.mean()))
    if len(pos) < 2:
        return gm, np.nan, len(pos)
    s2 = float(logs.var(ddof=1))
    return gm, float(100.0 * np.sqrt(np.expm1(s2))), len(pos)


def summarise_nca(
    table: pd.DataFrame,
    group: str | Sequence[str] | None = None,
    parameters: Sequence[str] = SUMMARY_PARAMETERS,
) -> pd.DataFrame:
    """Summary of NCA parameters: n, median (range), IQR, geometric mean and geometric CV%.

    One row per (group, parameter). ``text`` is "median (min–max)". Geometric statistics use
    the positive values only (``n_geo`` of them): an all-BLQ Cmax of 0 has no logarithm.
    """
    import pandas as pd

    groups = [] if group is None else ([group] if isinstance(group, str) else list(group))
    params = [p for p in parameters if p in table.columns]
    rows: list[dict[str, Any]] = []
    grouped = table.groupby(groups, sort=True, dropna=False) if groups else [((), table)]
    for key, sub in grouped:
        key = key if isinstance(key, tuple) else (key,)
        for p in params:
            v = pd.to_numeric(sub[p], errors="coerce").to_numpy(dtype=float)
            v = v[~np.isnan(v)]
            row: dict[str, Any] = dict(zip(groups, key, strict=False))
            row["parameter"] = p
            row["n"] = len(v)
            row["n_missing"] = int(len(sub) - len(v))
            if len(v):
                q1, med, q3 = np.percentile(v, [25, 50, 75])
                row.update(
                    median=med,
                    min=v.min(),
                    max=v.max(),
                    q1=q1,
                    q3=q3,
                    text=f"{med:.4g} ({v.min():.4g}–{v.max():.4g})",
                )
            else:
                row.update(median=np.nan, min=np.nan, max=np.nan, q1=np.nan, q3=np.nan, text="NA")
            gm, gcv, n_geo = _geo(v)
            row.update(geo_mean=gm, geo_cv_pct=gcv, n_geo=n_geo)
            rows.append(row)
    cols = [
        *groups,
        "parameter",
        "n",
        "n_missing",
        "median",
        "min",
        "max",
        "q1",
        "q3",
        "geo_mean",
        "geo_cv_pct",
        "n_geo",
        "text",
    ]
    return pd.DataFrame(rows, columns=cols)


#: default persistence landmarks (days) and visit windows (± days): month 3 ± 14, month 6 ± 14,
#: month 12 ± 30 — typical protocol visit windows; set them from the trial's schedule of
#: assessments (``windows=`` / the report's ``persistence_windows``)
PERSISTENCE_WINDOWS: dict[float, float] = {91.3: 14.0, 182.6: 14.0, 365.25: 30.0}


def _windows(
    landmarks: Sequence[float], windows: Mapping[float, float] | Sequence[float] | float | None
) -> list[float]:
    """Half-width (days) of the visit window of each landmark."""
    if windows is None:
        return [float(PERSISTENCE_WINDOWS.get(float(lm), 0.0)) for lm in landmarks]
    if isinstance(windows, Mapping):
        missing = [lm for lm in landmarks if float(lm) not in {float(k) for k in windows}]
        if missing:
            raise ValueError(f"no visit window given for landmark(s) {missing}")
        w = {float(k): float(v) for k, v in windows.items()}
        out = [w[float(lm)] for lm in landmarks]
    elif np.ndim(windows) == 0:
        out = [float(windows)] * len(landmarks)  # type: ignore[arg-type]
    else:
        out = [float(x) for x in windows]  # type: ignore[union-attr]
        if len(out) != len(landmarks):
            raise ValueError(f"{len(out)} visit windows for {len(landmarks)} landmarks")
    if any(not np.isfinite(x) or x < 0 for x in out):
        raise ValueError(f"visit windows {out}; expected finite half-widths >= 0 days")
    return out


def persistence_footnote(
    landmarks: Sequence[float] = tuple(PERSISTENCE_WINDOWS),
    windows: Mapping[float, float] | Sequence[float] | float | None = None,
) -> str:
    """The report's footnote stating the landmarks and visit windows used."""
    widths = _windows(landmarks, windows)
    parts = [
        f"month {lm / DAYS_PER_MONTH:.0f} = day {lm:g} ± {w:g} (from day {lm - w:g})"
        for lm, w in zip(landmarks, widths, strict=True)
    ]
    return (
        "Persistence: " + "; ".join(parts) + ". A patient is evaluable at a landmark when "
        "sampled on or after the start of its visit window, and still detectable when CAR-T "
        "was detected (value > 0) at a sample on or after that day; patients not followed "
        "that long are not evaluable (not counted as negative)."
    )


def persistence_rates(
    table: pd.DataFrame,
    landmarks: Sequence[float] = tuple(PERSISTENCE_WINDOWS),
    group: str | None = None,
    windows: Mapping[float, float] | Sequence[float] | float | None = None,
) -> pd.DataFrame:
    """Share of patients still detectable at month 3/6/12 (landmarks in days since infusion).

    Landmarks are protocol visits with a window (``windows``: a mapping landmark -> half-width
    in days, one half-width per landmark, or one for all; default ``PERSISTENCE_WINDOWS``:
    ± 14 d at months 3 and 6, ± 30 d at month 12; 0 for a landmark not listed there). A
    patient is evaluable at a landmark when sampled on or after the window's start (or
    detected on or after it); detectable when ``t_last_detectable >= landmark − window``. So
    a month-6 visit on day 180 counts, as protocols intend. The frame's
    ``attrs["footnote"]`` states the rule and windows for the report.
    """
    import pandas as pd

    widths = _windows(landmarks, windows)
    rows = []
    grouped = table.groupby(group, sort=True, dropna=False) if group else [(None, table)]
    for key, sub in grouped:
        det = sub["t_last_detectable"].to_numpy(dtype=float)
        last = sub["last_sample_day"].to_numpy(dtype=float)
        for lm, w in zip(landmarks, widths, strict=True):
            start = lm - w
            with np.errstate(invalid="ignore"):
                evaluable = (last >= start) | (det >= start)
                k = int((det[evaluable] >= start).sum())
            n = int(evaluable.sum())
            row: dict[str, Any] = {
                "landmark_days": lm,
                "window_days": w,
                "window_start_day": start,
                "n_evaluable": n,
                "n_detectable": k,
                "fraction": k / n if n else np.nan,
            }
            if group:
                row = {group: key, **row}
            rows.append(row)
    out = pd.DataFrame(rows)
    out.attrs["footnote"] = persistence_footnote(landmarks, widths)
    return out


class _CallableModule(types.ModuleType):
    """This module, callable as its ``nca`` function.

    The package attribute ``cartrial.kinetics.nca`` is this submodule as soon as it has been
    imported (the import system sets it), so a function of the same name exported from the
    package would be shadowed after first use. Making the module callable keeps both
    ``cartrial.kinetics.nca(days, values)`` and ``cartrial.kinetics.nca.nca_table`` working.
    """

    def __call__(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        return nca(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
