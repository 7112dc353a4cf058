"""Kinetics figures (matplotlib, Agg): each function takes DataFrames, returns a Figure.

The report layer saves them (``fig.savefig``). Figures are built with
``matplotlib.figure.Figure`` (no pyplot global state, nothing to close). Conventions:

* CAR-T levels on a log axis; values below the LLOQ cannot sit on a log axis at 0, so they
  are drawn as open down-triangles at the LLOQ (never joined to the lines), and the LLOQ is a
  dashed horizontal line.
* Median/IQR summaries by nominal day use BLQ values as LLOQ/2 (display only; stated in the
  axis label), medians over the patients sampled that day.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd
    from matplotlib.figure import Figure

UNIT_LABELS = {"copies/ug": "copies/µg DNA", "cells/uL": "cells/µL", "10^9/L": "×10⁹/L"}
ANALYTE_LABELS = {
    "cart_qpcr": "CAR transgene (qPCR)",
    "cart_flow": "CAR-T cells (flow)",
    "cd3": "CD3+ T",
    "cd4": "CD4+ T",
    "cd8": "CD8+ T",
    "cd4_cd8_ratio": "CD4/CD8 ratio",
    "cd7_t": "CD3+CD7+ T",
    "cd7neg_t": "CD3+CD7− T",
    "nk": "NK",
    "cd7_nk": "CD7+ NK",
    "cd7neg_nk": "CD7− NK",
    "cd19_b": "CD19+ B",
    "b_pct_lymph": "B cells (% lymphocytes)",
}
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

    from cartrial.kinetics._obs import canonical_analytes

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


def _unit_label(df: pd.DataFrame) -> str:
    units = df["unit"].dropna().unique() if "unit" in df.columns else []
    return UNIT_LABELS.get(str(units[0]), str(units[0])) if len(units) == 1 else ""


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
    if df["lloq"].notna().any():
        ax.axhline(
            float(np.nanmedian(df["lloq"])),
            color="0.4",
            linestyle="--",
            lw=0.8,
            label="LLOQ",
            gid="lloq",
        )
    ax.set_yscale("log")
    ax.autoscale_view()
    if len(df.loc[df["_quant"]]):
        vals = df.loc[df["_quant"], "value"]
        low = min(vals.min(), df["lloq"].min() if df["lloq"].notna().any() else vals.min())
        ax.set_ylim(low / 3, vals.max() * 3)
        ax.set_xlim(min(0.0, df["day"].min()), df["day"].max() * 1.02 + 1)
    ax.set_xlabel("Days since infusion")
    ax.set_ylabel(f"{ANALYTE_LABELS.get(analyte, analyte)} ({_unit_label(df)})")
    ax.set_title(title or f"{ANALYTE_LABELS.get(analyte, analyte)} by patient")
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
    """Median (line, ``gid`` = group label) with the interquartile range (band) by day."""
    s = summary_by_day(observations, analyte, group, patients)
    fig, axes = _figure()
    ax = axes[0, 0]
    labels = sorted(s[group].unique(), key=str) if group else ["all"]
    for label, color in zip(labels, _colors(len(labels)), strict=True):
        sub = s if not group else s.loc[s[group] == label]
        ax.plot(
            sub["day"],
            sub["median"],
            color=color,
            marker="o",
            ms=3,
            lw=1.4,
            label=str(label) if group else "median",
            gid=str(label),
        )
        ax.fill_between(sub["day"], sub["q1"], sub["q3"], color=color, alpha=0.2, lw=0)
    if log:
        ax.set_yscale("log")
    ax.set_xlabel("Days since infusion")
    rows = _rows(observations, analyte, None, None)
    ax.set_ylabel(f"{ANALYTE_LABELS.get(analyte, analyte)} ({_unit_label(rows)}); BLQ as LLOQ/2")
    ax.set_title(title or f"{ANALYTE_LABELS.get(analyte, analyte)}: median and IQR")
    ax.legend(fontsize="small", frameon=False)
    return fig


def reconstitution_panels(
    observations: pd.DataFrame,
    analytes: Sequence[str] = KINETICS_PANEL_ANALYTES,
    ranges: pd.DataFrame | None = None,
    population: str = "adult",
    ncols: int = 3,
) -> Figure:
    """Median and IQR over time for several T/NK/B analytes, one panel each, with the lower
    limit of normal (adults; none for ``population="pediatric"``) as a dotted line. Analytes with no
    data get an empty panel saying so."""
    from cartrial.kinetics.reconstitution import load_reference_ranges, lower_normal

    if ranges is None:
        ranges = load_reference_ranges()
    n = len(analytes)
    nrows = int(np.ceil(n / ncols))
    fig, axes = _figure(nrows, ncols, size=(3.4 * ncols, 2.8 * nrows))
    for i, analyte in enumerate(analytes):
        ax = axes[i // ncols, i % ncols]
        s = summary_by_day(observations, analyte, blq_as_half_lloq=False)
        ax.set_title(ANALYTE_LABELS.get(analyte, analyte), fontsize="medium")
        if not len(s):
            ax.text(0.5, 0.5, "no data", ha="center", va="center", transform=ax.transAxes)
            continue
        ax.plot(s["day"], s["median"], color="C0", marker="o", ms=2.5, lw=1.2, gid=analyte)
        ax.fill_between(s["day"], s["q1"], s["q3"], color="C0", alpha=0.2, lw=0)
        # the lower limit of normal is drawn for adults only (children's is age-dependent)
        low = lower_normal(ranges, analyte, "adult")[0] if population != "pediatric" else np.nan
        if np.isfinite(low):
            ax.axhline(low, color="0.3", linestyle=":", lw=0.9, gid="lower_normal")
        ax.set_xlabel("Days since infusion", fontsize="small")
    for j in range(n, nrows * ncols):
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
    ax.set_ylabel(f"{value}{note}")
    ax.set_xlabel(group)
    ax.set_title(title or f"{value} by {group}")
    return fig
