"""Kinetics figures (matplotlib, Agg): each function takes DataFrames, returns a Figure.

The report layer saves them (``fig.savefig``). Figures are built with
``matplotlib.figure.Figure`` (no pyplot global state, nothing to close). Conventions:

* CAR-T levels on a log axis; values below the LLOQ cannot sit on a log axis at 0, so they
  are drawn as open down-triangles at the LLOQ (never joined to the lines), and the LLOQ is a
  dashed horizontal line.
* Median/IQR summaries by nominal day use BLQ values as LLOQ/2 (display only; stated in the
  axis label), medians over the patients sampled that day; the number of patients behind
  each day's median is printed in a row under the x-axis (texts with ``gid`` ``n:<group>``).
* Every axis names its unit: analyte labels and units come from the one label registry
  (``cartrial.cohort.labels``), the unit of the data when it states one.
* Immune-reconstitution panels draw the reference range of the patients' age group as a
  band (adults; children by the age bands of the shipped paediatric table, Shearer 2003
  J Allergy Clin Immunol 112:973; see ``cartrial.kinetics.reconstitution``): the adult
  lower limit of normal is wrong for a child.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from cartrial.cohort.labels import label as _label
from cartrial.cohort.labels import unit_of, value_label
from cartrial.kinetics._obs import canonical_analytes
from cartrial.kinetics.population import _mask
from cartrial.kinetics.reconstitution import load_reference_ranges

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd
    from matplotlib.figure import Figure

UNIT_LABELS = {
    "copies/ug": "copies/µg DNA",
    "cells/uL": "cells/µL",
    "10^9/L": "× 10⁹/L",
    "ratio": "ratio",
}
#: x-axis label of every time axis (days since the CAR-T infusion, day 0)
DAY_AXIS = "Days since infusion"


def analyte_label(analyte: str) -> str:
    """The registry's display label of an analyte, without unit ("CD3+ T cells")."""
    return _label(analyte, unit=False)


KINETICS_PANEL_ANALYTES = ("cd3", "cd7_t", "cd7neg_t", "nk", "cd7_nk", "cd19_b")


def _figure(
    nrows: int = 1, ncols: int = 1, size: tuple[float, float] = (6.4, 4.2)
) -> tuple[Figure, Any]:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    fig = Figure(figsize=size, layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False)
    return fig, axes


def _rows(
    observations: pd.DataFrame, analyte: str, group: str | None, patients: pd.DataFrame | None
) -> pd.DataFrame:
    """The analyte's rows (canonical names), with the group column merged from patients."""
    import pandas as pd

    names = (
        canonical_analytes(observations["analyte"])
        if len(observations)
        else pd.Series(dtype=object)
    )
    df = observations.loc[(names == analyte).to_numpy()].copy()
    for col in ("day", "value", "lloq"):
        df[col] = pd.to_numeric(df[col], errors="coerce") if col in df.columns else np.nan
    df = df.dropna(subset=["day", "value"])
    if group and group not in df.columns:
        if patients is None or group not in patients.columns:
            raise ValueError(f"group column {group!r} is in neither observations nor patients")
        df = df.merge(patients[["patient_id", group]], on="patient_id", how="left")
    if group:
        df[group] = df[group].astype("object").where(df[group].notna(), "missing")
    return df.sort_values(["patient_id", "day"], kind="stable")


def _unit_label(df: pd.DataFrame, analyte: str | None = None) -> str:
    """The data's unit (one unit stated) in print form; else the registry's unit."""

    units = df["unit"].dropna().unique() if "unit" in df.columns else []
    if len(units) == 1:
        return UNIT_LABELS.get(str(units[0]), str(units[0]))
    return unit_of(analyte) if analyte else ""


def axis_label(analyte: str, df: pd.DataFrame, note: str = "") -> str:
    """'CAR transgene (qPCR), copies/µg DNA' (+ a second line, the note); 'unit not stated' when none."""
    unit = _unit_label(df, analyte) or "unit not stated"
    return f"{analyte_label(analyte)}, {unit}" + (f"\n{note}" if note else "")


def _lloq_of(df: pd.DataFrame) -> float:
    """The LLOQ the observations give (median over rows when sites differ); NaN if none."""
    if "lloq" not in df.columns or not df["lloq"].notna().any():
        return float("nan")
    return float(np.nanmedian(df["lloq"].to_numpy(dtype=float)))


def _lloq_line(ax: Any, df: pd.DataFrame) -> None:
    lq = _lloq_of(df)
    if np.isfinite(lq) and lq > 0:
        ax.axhline(lq, color="0.4", linestyle="--", lw=0.8, label="LLOQ", gid="lloq")


def _n_row(ax: Any, days: Any, counts: Any, label: str, row: int, color: Any) -> None:
    """A row of patient counts under the x-axis (one text per day, ``gid`` ``n:<label>``),
    as numbers at risk under a survival curve."""
    from matplotlib.transforms import blended_transform_factory, offset_copy

    # below the tick labels and the axis label (points, so independent of the figure size)
    down = -(32 + 8 * row)
    fig = ax.get_figure()
    tr = offset_copy(
        blended_transform_factory(ax.transData, ax.transAxes), fig=fig, y=down, units="points"
    )
    head = offset_copy(ax.transAxes, fig=fig, x=-4, y=down, units="points")
    ax.text(0.0, 0.0, "n", transform=head, ha="right", va="top",
            fontsize=6, color=color)  # fmt: skip
    for d, k in zip(days, counts, strict=True):
        ax.text(float(d), 0.0, str(int(k)), transform=tr, ha="center", va="top", fontsize=6,
                color=color, gid=f"n:{label}")  # fmt: skip


def _colors(n: int) -> list:
    import matplotlib

    cmap = matplotlib.colormaps["tab10"]
    return [cmap(i % 10) for i in range(n)]


def spaghetti_plot(
    observations: pd.DataFrame,
    analyte: str = "cart_qpcr",
    group: str | None = None,
    patients: pd.DataFrame | None = None,
    title: str | None = None,
) -> Figure:
    """One line per patient over time on a log axis, coloured by ``group``, LLOQ dashed.

    Lines join the quantifiable values (value >= LLOQ and > 0); BLQ samples are open
    triangles at the LLOQ. Each group is one ``LineCollection`` (``gid`` = group label) with
    one segment per patient, in patient order.
    """
    from matplotlib.collections import LineCollection

    df = _rows(observations, analyte, group, patients)
    fig, axes = _figure()
    ax = axes[0, 0]
    lloq = df["lloq"].to_numpy(dtype=float)
    val = df["value"].to_numpy(dtype=float)
    with np.errstate(invalid="ignore"):
        quant = (val > 0) & ~(val < lloq)
    df = df.assign(_quant=quant)
    labels = sorted(df[group].unique(), key=str) if group else ["all"]
    colors = _colors(len(labels))
    for label, color in zip(labels, colors, strict=True):
        sub = df if not group else df.loc[df[group] == label]
        q = sub.loc[sub["_quant"]]
        pid = q["patient_id"].astype(str).to_numpy()
        order = np.argsort(pid, kind="stable")  # rows already sorted by day within patient
        xy = np.column_stack((q["day"].to_numpy(float), q["value"].to_numpy(float)))[order]
        cuts = np.flatnonzero(pid[order][1:] != pid[order][:-1]) + 1
        segs = np.split(xy, cuts) if len(xy) else []
        lc = LineCollection(
            segs, colors=[color], linewidths=1.0, alpha=0.8, label=str(label) if group else None
        )
        lc.set_gid(str(label))
        ax.add_collection(lc)
        blq = sub.loc[~sub["_quant"] & sub["lloq"].notna()]
        if len(blq):
            ax.scatter(
                blq["day"],
                blq["lloq"],
                marker="v",
                facecolors="none",
                edgecolors=[color],
                s=18,
                gid=f"blq:{label}",
            )
    _lloq_line(ax, df)
    ax.set_yscale("log")
    ax.autoscale_view()
    if len(df.loc[df["_quant"]]):
        vals = df.loc[df["_quant"], "value"]
        low = min(vals.min(), df["lloq"].min() if df["lloq"].notna().any() else vals.min())
        ax.set_ylim(low / 3, vals.max() * 3)
        ax.set_xlim(min(0.0, df["day"].min()), df["day"].max() * 1.02 + 1)
    ax.set_xlabel(DAY_AXIS)
    ax.set_ylabel(axis_label(analyte, df))
    ax.set_title(title or f"{analyte_label(analyte)} by patient")
    if group or df["lloq"].notna().any():
        ax.legend(fontsize="small", frameon=False)
    return fig


def summary_by_day(
    observations: pd.DataFrame,
    analyte: str,
    group: str | None = None,
    patients: pd.DataFrame | None = None,
    blq_as_half_lloq: bool = True,
) -> pd.DataFrame:
    """Median, first and third quartile and n by nominal day (and group) — the data behind
    ``median_iqr_plot``. BLQ values count as LLOQ/2 when ``blq_as_half_lloq``."""
    df = _rows(observations, analyte, group, patients)
    val = df["value"].to_numpy(dtype=float)
    lloq = df["lloq"].to_numpy(dtype=float)
    if blq_as_half_lloq:
        with np.errstate(invalid="ignore"):
            blq = (val < lloq) | ((val <= 0) & ~np.isnan(lloq))
        val = np.where(blq, lloq / 2.0, val)
    df = df.assign(_v=val)
    keys = [group, "day"] if group else ["day"]
    g = df.groupby(keys, sort=True)["_v"]
    out = g.median().rename("median").to_frame()
    out["q1"] = g.quantile(0.25)
    out["q3"] = g.quantile(0.75)
    out["n"] = g.size()
    return out.reset_index()


def median_iqr_plot(
    observations: pd.DataFrame,
    analyte: str = "cart_qpcr",
    group: str | None = None,
    patients: pd.DataFrame | None = None,
    log: bool = True,
    title: str | None = None,
) -> Figure:
    """Median (line, ``gid`` = group label) with the interquartile range (band) by day,
    the number of patients sampled each day in a row under the x-axis (one row per group)
    and the LLOQ dashed where the observations give one."""

    s = summary_by_day(observations, analyte, group, patients)
    fig, axes = _figure()
    ax = axes[0, 0]
    labels = sorted(s[group].unique(), key=str) if group else ["all"]
    for row, (label, color) in enumerate(zip(labels, _colors(len(labels)), strict=True)):
        sub = s if not group else s.loc[s[group] == label]
        _n_row(ax, sub["day"], sub["n"], str(label) if group else "", row, color)
        ax.plot(
            sub["day"],
            sub["median"],
            color=color,
            marker="o",
            ms=3,
            lw=1.4,
            label=value_label(label) if group else "median",
            gid=str(label),
        )
        ax.fill_between(sub["day"], sub["q1"], sub["q3"], color=color, alpha=0.2, lw=0)
    rows = _rows(observations, analyte, None, None)
    _lloq_line(ax, rows)
    if log:
        ax.set_yscale("log")
    # symlog days: the expansion (days 0-28) spread out, so the n row stays readable
    ax.set_xscale("symlog", linthresh=30, linscale=1.5)
    top = float(s["day"].max()) if len(s) else 28.0
    ticks = [t for t in (0, 7, 14, 21, 28, 60, 90, 180, 365, 730) if t <= max(top, 28)]
    ax.set_xticks(ticks, [str(t) for t in ticks])
    ax.set_xlim(-1.0, max(top, 28.0) * 1.08)
    ax.set_xlabel(DAY_AXIS)
    ax.set_ylabel(axis_label(analyte, rows, "BLQ as LLOQ/2"))
    ax.set_title(title or f"{analyte_label(analyte)}: median and IQR")
    ax.legend(fontsize="small", frameon=False)
    return fig


def age_groups(patients: pd.DataFrame | None, ranges: pd.DataFrame) -> pd.DataFrame:
    """Each patient's reference age group: adults (>= 18 years) or the paediatric age band
    of the reference table (``[age_min, age_max)`` years) holding the child's age, as in
    ``reconstitution.lower_normal(population="auto")``; unknown age stays unknown (no band).
    Columns: patient_id, group (label), population, age_min, age_max, order."""
    import pandas as pd

    cols = ["patient_id", "group", "population", "age_min", "age_max", "order"]
    if patients is None or "age_years" not in patients.columns:
        return pd.DataFrame(columns=cols)
    age = pd.to_numeric(patients["age_years"], errors="coerce").to_numpy(dtype=float)
    ped = ranges.loc[ranges["population"] == "pediatric", ["age_min_years", "age_max_years"]]
    bands = sorted({(float(a), float(b)) for a, b in ped.itertuples(index=False)})
    out = pd.DataFrame({"patient_id": patients["patient_id"].astype(str).to_numpy()})
    out["group"], out["population"] = "Age unknown", ""
    out["age_min"], out["age_max"], out["order"] = np.nan, np.nan, 10_000
    adult = age >= 18
    out.loc[adult, ["group", "population", "order"]] = ["Adults (≥ 18 y)", "adult", 0]
    child = age < 18
    out.loc[child, ["group", "population", "order"]] = ["Children, no reference band",
                                                       "pediatric", 9_999]  # fmt: skip
    for i, (lo, hi) in enumerate(bands, start=1):
        inband = child & (age >= lo) & (age < hi)
        out.loc[inband, ["group", "age_min", "age_max", "order"]] = [
            f"Children {lo:g}–{hi:g} y",
            lo,
            hi,
            i,
        ]
    return out[cols]


def _reference_row(ranges: pd.DataFrame, analyte: str, grp: Any) -> tuple[float, float]:
    """(lower, upper) of the reference range for one analyte and age group; NaN when none."""
    rows = ranges.loc[(ranges["analyte"] == analyte) & (ranges["population"] == grp.population)]
    if grp.population == "pediatric":
        rows = rows.loc[
            (rows["age_min_years"] == grp.age_min) & (rows["age_max_years"] == grp.age_max)
        ]
    if not len(rows):
        return float("nan"), float("nan")
    return float(rows["lower"].iloc[0]), float(rows["upper"].iloc[0])


def reconstitution_panels(
    observations: pd.DataFrame,
    analytes: Sequence[str] = KINETICS_PANEL_ANALYTES,
    ranges: pd.DataFrame | None = None,
    population: str = "adult",
    ncols: int = 3,
    patients: pd.DataFrame | None = None,
) -> Figure:
    """Median and IQR over time for several T/NK/B analytes, one panel each, with the
    reference range of the age group as a grey band (``gid`` ``reference:<group>``).

    With ``patients`` holding ``age_years``, one row of panels per age group present
    (adults; children by the reference table's paediatric age bands, Shearer 2003 J Allergy
    Clin Immunol 112:973), each from its own patients and with its own band: the adult lower
    limit of normal is wrong for a child. Without ages, one set of panels with the adult
    band (none for ``population="pediatric"``: a child's range depends on the age). Analytes
    with no data get an empty panel saying so; the LLOQ is dashed where the data give one.
    """
    import pandas as pd

    if ranges is None:
        ranges = load_reference_ranges()
    groups = age_groups(patients, ranges)
    if len(groups):
        obs_ids = observations["patient_id"].astype(str)
        groups = groups.loc[groups["patient_id"].isin(set(obs_ids))]
        spec = (
            groups.drop_duplicates("group").sort_values(["order", "group"]).reset_index(drop=True)
        )
        members = {g: set(d["patient_id"]) for g, d in groups.groupby("group")}
    else:
        pop = "" if population == "pediatric" else "adult"
        spec = pd.DataFrame(
            {"group": [""], "population": [pop], "age_min": [np.nan], "age_max": [np.nan]}
        )
        members = {}
    n = len(analytes)
    if len(spec) > 1 or members:
        nrows, ncols = len(spec), n
    else:
        nrows = int(np.ceil(n / ncols))
    fig, axes = _figure(nrows, ncols, size=(3.2 * ncols, 2.7 * nrows))
    for gi, grp in enumerate(spec.itertuples(index=False)):
        if grp.group:
            obs = observations.loc[observations["patient_id"].astype(str).isin(members[grp.group])]
        else:
            obs = observations
        for i, analyte in enumerate(analytes):
            k = gi * ncols + i if grp.group else i
            ax = axes[k // ncols, k % ncols]
            s = summary_by_day(obs, analyte, blq_as_half_lloq=False)
            rows = _rows(obs, analyte, None, None)
            title = analyte_label(analyte)
            if grp.group:
                title += f"\n{grp.group}, n = {rows['patient_id'].nunique()}"
            ax.set_title(title, fontsize="small")
            if not len(s):
                ax.text(0.5, 0.5, "no data", ha="center", va="center", transform=ax.transAxes)
                continue
            ax.plot(s["day"], s["median"], color="C0", marker="o", ms=2.5, lw=1.2, gid=analyte)
            ax.fill_between(s["day"], s["q1"], s["q3"], color="C0", alpha=0.2, lw=0)
            low, high = _reference_row(ranges, analyte, grp) if grp.population else (np.nan,) * 2
            if np.isfinite(low) and np.isfinite(high):
                ax.axhspan(low, high, color="0.5", alpha=0.15, lw=0, gid=f"reference:{grp.group}")
            _lloq_line(ax, rows)
            ax.set_xlabel(DAY_AXIS, fontsize="small")
            ax.set_ylabel(_unit_label(rows, analyte) or "unit not stated", fontsize="small")
    used = len(spec) * ncols if (len(spec) > 1 or members) else n
    for j in range(used, nrows * ncols):
        axes[j // ncols, j % ncols].set_visible(False)
    return fig


def peak_boxplot(
    table: pd.DataFrame,
    group: str,
    value: str = "cmax",
    log: bool = True,
    title: str | None = None,
    seed: int = 0,
) -> Figure:
    """Box plot of an NCA parameter by outcome group, every patient a jittered point
    (``gid`` = group label; jitter on x only, y = the value). Missing values left out; on a
    log axis non-positive values cannot be drawn and are left out too (noted in the label)."""
    import pandas as pd

    df = table[[group, value]].copy()
    df[value] = pd.to_numeric(df[value], errors="coerce")
    df = df.dropna()
    dropped = 0
    if log:
        dropped = int((df[value] <= 0).sum())
        df = df.loc[df[value] > 0]
    labels = sorted(df[group].unique(), key=str)
    data = [df.loc[df[group] == lv, value].to_numpy(dtype=float) for lv in labels]
    fig, axes = _figure()
    ax = axes[0, 0]
    if labels:
        ax.boxplot(data, tick_labels=[str(lv) for lv in labels], showfliers=False)
        rng = np.random.default_rng(seed)
        for i, (lv, d) in enumerate(zip(labels, data, strict=True), start=1):
            ax.scatter(
                i + rng.uniform(-0.12, 0.12, len(d)), d, s=12, alpha=0.7, color="C0", gid=str(lv)
            )
    if log:
        ax.set_yscale("log")

    note = f" ({dropped} non-positive left out)" if dropped else ""
    # a concentration parameter (Cmax, AUC) carries the analyte's unit (the table's column)
    unit = unit_of(value) or _unit_label(table)
    if unit and value.startswith("auc"):
        unit = f"{unit} × day"
    name = _label(value, unit=False)
    ax.set_ylabel(f"{name}, {unit or 'unit not stated'}{note}")
    ax.set_xlabel(_label(group, unit=False))
    ax.set_title(title or f"{name} by {_label(group, unit=False).lower()}")
    return fig


# ------------------------------------------------------------------ population model
def _log_curve_np(phi: np.ndarray, t: np.ndarray) -> np.ndarray:
    """ln C(t) of the multiphasic model for parameter rows ``phi`` (..., 6) on the fitting
    scale (ln foldx, ln Tmax, ln Cmax, ln alpha, logit FB, ln beta) at matching ``t``."""
    lf, lt, lc, la, lg, lb = (phi[..., k] for k in range(6))
    T = np.exp(lt)
    s = np.maximum(t - T, 0.0)
    log_fb = -np.logaddexp(0.0, -lg)
    log_1mfb = -np.logaddexp(0.0, lg)
    post = lc + np.logaddexp(log_1mfb - np.exp(la) * s, log_fb - np.exp(lb) * s)
    pre = lc + lf * (t / T - 1.0)
    return np.where(t < T, pre, post)


def population_obs_pred(fit: Any) -> Figure:
    """Observed vs population-predicted (typical values and covariates, eta = 0) and vs
    individual-predicted (shrunken estimates) values, log–log, identity dashed; BLQ samples
    (censored, M3) are left out of these panels and counted in the title."""
    d = fit.data
    mu = np.median(fit.samples["mu"], axis=0)
    phi_pop = np.repeat(mu[None, :], d.n_patients, axis=0)
    if d.X.shape[1] and "b" in fit.samples:
        b = np.median(fit.samples["b"], axis=0) * _mask(fit.covariate_params)
        phi_pop = phi_pop + d.X @ b
    phi_ind = np.median(fit.samples["phi"], axis=0)
    q = ~d.cens
    obs = np.exp(d.y[q])
    pred = {
        "population prediction": np.exp(_log_curve_np(phi_pop[d.pid[q]], d.t[q])),
        "individual prediction": np.exp(_log_curve_np(phi_ind[d.pid[q]], d.t[q])),
    }
    unit = UNIT_LABELS.get(d.unit or "", d.unit or "") or "unit not stated"
    fig, axes = _figure(1, 2, size=(9.0, 4.2))
    lo = float(min(obs.min(), *(p.min() for p in pred.values()))) * 0.7
    hi = float(max(obs.max(), *(p.max() for p in pred.values()))) * 1.4
    for ax, (label, p) in zip(axes[0], pred.items(), strict=True):
        ax.scatter(p, obs, s=9, alpha=0.5, color="#1f77b4", linewidths=0)
        ax.plot([lo, hi], [lo, hi], ls="--", color="0.3", lw=1)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlim(lo, hi)
        ax.set_ylim(lo, hi)
        ax.set_xlabel(f"{label[:1].upper()}{label[1:]}, {unit}")
        ax.set_ylabel(f"Observed, {unit}")
    fig.suptitle(
        f"Population model: observed vs predicted ({unit}); {int(d.cens.sum())} BLQ "
        "samples censored (not shown)"
    )
    return fig


def population_vpc(
    fit: Any, n_sim: int = 200, seed: int = 0, percentiles: tuple[float, ...] = (10, 50, 90)
) -> Figure:
    """Visual predictive check: observed 10th/50th/90th percentiles by sampling day (BLQ as
    LLOQ/2, display only) against the 90% intervals of the same percentiles over ``n_sim``
    cohorts simulated from the posterior (new patients: eta drawn from N(0, omega²), the
    observed covariates, residual error, values below the LLOQ set to LLOQ/2 the same way).
    Days with fewer than 5 patients sampled are skipped."""
    d = fit.data
    rng = np.random.default_rng(seed)
    S = fit.samples
    draws = rng.choice(len(S["mu"]), size=min(n_sim, len(S["mu"])), replace=False)
    mu, omega, sigma = S["mu"][draws], S["omega"][draws], S["sigma"][draws]
    phi = mu[:, None, :] + omega[:, None, :] * rng.normal(size=(len(draws), d.n_patients, 6))
    if d.X.shape[1] and "b" in S:
        b = S["b"][draws] * _mask(fit.covariate_params)[None]
        phi = phi + np.einsum("nc,scp->snp", d.X, b)
    logc = _log_curve_np(phi[:, d.pid, :], d.t[None, :])
    logc = logc + rng.normal(size=logc.shape) * sigma[:, None]
    lloq = np.where(d.cens, np.exp(d.y), np.nan)  # the LLOQ is known on censored rows
    lq = np.nanmedian(lloq) if np.isfinite(lloq).any() else 0.0
    half = np.log(lq / 2.0) if lq > 0 else -np.inf
    sim = np.where(logc < np.log(lq) if lq > 0 else False, half, logc)
    obs = np.where(d.cens, half, d.y)
    days = np.unique(d.t)
    keep_days = [t for t in days if (d.t == t).sum() >= 5]
    fig, axes = _figure()
    ax = axes[0, 0]
    colors = {10: "#1f77b4", 50: "#d62728", 90: "#1f77b4"}
    for pc in percentiles:
        o, band_lo, band_hi = [], [], []
        for t in keep_days:
            m = d.t == t
            o.append(np.percentile(obs[m], pc))
            sp = np.percentile(sim[:, m], pc, axis=1)
            band_lo.append(np.percentile(sp, 5))
            band_hi.append(np.percentile(sp, 95))
        x = np.asarray(keep_days)
        col = colors.get(int(pc), "#7f7f7f")
        ax.fill_between(x, np.exp(band_lo), np.exp(band_hi), color=col, alpha=0.2, lw=0)
        ax.plot(x, np.exp(o), "o-", color=col, ms=3, lw=1.2, label=f"observed P{pc:g}")
    if lq > 0:
        ax.axhline(lq, ls="--", color="0.4", lw=1, label="LLOQ")
    ax.set_yscale("log")
    ax.set_xscale("symlog", linthresh=30)
    ticks = [t for t in (0, 7, 14, 28, 90, 180, 365) if t <= max(days.max(), 1)]
    ax.set_xticks(ticks, [str(t) for t in ticks])
    ax.set_xlim(left=0)
    ax.set_xlabel(DAY_AXIS)
    unit = UNIT_LABELS.get(d.unit or "", d.unit or "") or "unit not stated"
    ax.set_ylabel(f"Concentration, {unit}; BLQ as LLOQ/2")
    ax.set_title(
        f"VPC: observed percentiles and 90% intervals of {len(draws)} simulated cohorts",
        fontsize=9,
    )
    ax.legend(fontsize=7, loc="upper right")
    return fig
