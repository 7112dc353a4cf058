"""The report's figures (matplotlib, Agg): KM curves with numbers at risk, cumulative
incidence, swimmer plot, patient flow.

Each function returns a ``Drawn`` holding the figure and the numbers it drew (at-risk
counts, curve points, lanes and markers, flow counts) so tests can check the picture
against the tables it came from. Nothing here reads files or the cohort directly.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from cartrial.report.settings import ReportSettings

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.figure import Figure

#: colour-blind-safe palette (Okabe & Ito 2008)
PALETTE = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#F0E442",
           "#000000")
RC = {
    "font.size": 8.5,
    "axes.titlesize": 9.5,
    "axes.labelsize": 8.5,
    "legend.fontsize": 7.5,
    "xtick.labelsize": 7.5,
    "ytick.labelsize": 7.5,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "svg.hashsalt": "cartrial",  # deterministic SVG ids
    "svg.fonttype": "none",  # text stays text (smaller, searchable, faster to write)
    "figure.dpi": 100,
    "savefig.dpi": 150,
}


@dataclass
class Drawn:
    """A figure and what it shows (``data``: tidy frame; ``info``: scalars)."""

    name: str
    title: str
    fig: Figure
    data: pd.DataFrame = field(default_factory=pd.DataFrame)
    info: dict[str, Any] = field(default_factory=dict)
    caption: str = ""


def _plt():
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    plt.rcParams.update(RC)
    return plt


def _new_figure(width: float, height: float) -> Figure:
    from matplotlib.figure import Figure

    _plt()
    return Figure(figsize=(width, height), layout=None)


def risk_times(max_time: float, step: float) -> np.ndarray:
    """Tick times 0, step, 2·step, … up to the last follow-up time."""
    n = int(np.floor(max_time / step + 1e-9))
    return np.arange(n + 1, dtype=float) * step


# ------------------------------------------------------------------------------ KM
def km_figure(curves: Sequence[tuple[str, np.ndarray, np.ndarray]], settings: ReportSettings,
              name: str, title: str, ylabel: str, p_value: float | None = None) -> Drawn:
    """Kaplan–Meier curves with CI bands, censor marks and numbers at risk below the axis.

    ``curves``: (label, time in days, event 0/1) per group. ``data`` has one row per
    (group, time) of the numbers-at-risk table: what is printed under the axis.
    """
    from cartrial.stats import kaplan_meier

    scale = settings.time_scale
    step = settings.risk_table_step_months * (1.0 if settings.time_unit == "months"
                                              else 30.4375)
    fits = [(lab, kaplan_meier(np.asarray(t, float) / scale, np.asarray(e, int),
                               conf_type=settings.km_conf_type, conf_level=settings.conf_level),
             np.asarray(t, float) / scale, np.asarray(e, int)) for lab, t, e in curves]
    t_max = max((float(t.max()) for _, _, t, _ in fits if t.size), default=1.0)
    ticks = risk_times(max(t_max, step), step)
    k = len(fits)
    fig = _new_figure(6.4, 4.45 + 0.22 * k)
    risk_h = 0.22 * k + 0.45
    total_h = 4.45 + 0.22 * k
    ax = fig.add_axes((0.17, (risk_h + 0.55) / total_h, 0.78, (3.2 - 0.2) / total_h))
    rax = fig.add_axes((0.17, 0.12 / total_h, 0.78, (risk_h - 0.15) / total_h), sharex=ax)
    at_risk_rows = []
    for i, (lab, fit, t, e) in enumerate(fits):
        colour = PALETTE[i % len(PALETTE)] if k > 1 else "#0072B2"
        tab = fit.table
        xs = np.concatenate([[0.0], tab["time"].to_numpy()])
        ys = np.concatenate([[1.0], tab["survival"].to_numpy()])
        lo = np.concatenate([[1.0], tab["lower"].to_numpy()])
        hi = np.concatenate([[1.0], tab["upper"].to_numpy()])
        ax.step(xs, ys, where="post", color=colour, lw=1.4, label=f"{lab} (n={len(t)})")
        ax.fill_between(xs, lo, hi, step="post", color=colour, alpha=0.15, lw=0)
        cens = t[e == 0]
        if cens.size:
            s_c = fit.survival_at(cens).estimate
            ax.plot(cens, s_c, ls="none", marker="|", ms=7, mew=1.1, color=colour)
        n_risk = np.asarray(fit.n_at_risk(ticks), dtype=float)
        for tt, nr in zip(ticks, n_risk, strict=True):
            rax.text(tt, k - 1 - i, f"{int(nr)}", ha="center", va="center", fontsize=7.5,
                     color=colour)
            at_risk_rows.append({"group": lab, "time": float(tt), "n_at_risk": int(nr)})
    ax.set_ylim(-0.02, 1.02)
    x_end = max(t_max, ticks[-1])
    ax.set_xlim(-0.02 * x_end, x_end * 1.02 + 1e-9)
    ax.set_xticks(ticks)
    ax.set_ylabel(ylabel)
    ax.yaxis.set_major_formatter(_percent())
    ax.set_title(title, loc="left")
    ax.tick_params(labelbottom=True)
    ax.set_xlabel(f"Time since CAR-T infusion ({settings.time_unit})")
    handles = ax.get_legend_handles_labels()
    ax.legend(*handles, loc="lower left", frameon=False)
    if p_value is not None and np.isfinite(p_value):
        from cartrial.report.tables import fmt_p

        ptxt = fmt_p(p_value)
        ax.text(0.98, 0.96, f"log-rank p {'= ' if not ptxt.startswith('<') else ''}{ptxt}",
                transform=ax.transAxes, ha="right", va="top")
    rax.set_ylim(-0.6, k - 0.4)
    rax.set_yticks(range(k))
    rax.set_yticklabels([lab if len(lab) <= 22 else lab[:21] + "…" for lab, *_ in fits][::-1],
                        fontsize=7.5)
    for sp in ("top", "right", "bottom", "left"):
        rax.spines[sp].set_visible(False)
    rax.tick_params(axis="x", bottom=False, labelbottom=False)
    rax.tick_params(axis="y", left=False)
    rax.set_title("Number at risk", loc="left", fontsize=7.5)
    data = pd.DataFrame(at_risk_rows, columns=["group", "time", "n_at_risk"])
    ci = f"{100 * settings.conf_level:g}% CI ({settings.km_conf_type} transform)"
    return Drawn(name, title, fig, data, {"ticks": ticks.tolist(), "p_value": p_value},
                 caption=f"Kaplan–Meier estimate with {ci} bands; | marks censored patients; "
                         "numbers at risk below the axis.")


def _percent():
    from matplotlib.ticker import FuncFormatter

    return FuncFormatter(lambda v, _pos: f"{100 * v:.0f}%")


# ------------------------------------------------------------------------------ CIF
def cif_figure(time_days: np.ndarray, cause: np.ndarray, settings: ReportSettings,
               name: str = "cif_relapse_nrm") -> Drawn:
    """Cumulative incidence of relapse (cause 1) and non-relapse mortality (cause 2),
    Aalen–Johansen with the other as competing risk, pointwise CI bands."""
    from cartrial.stats import cumulative_incidence

    t = np.asarray(time_days, float) / settings.time_scale
    c = np.asarray(cause, int)
    ci = cumulative_incidence(t, c, conf_level=settings.conf_level)
    tab = ci.table
    fig = _new_figure(6.4, 3.8)
    ax = fig.add_axes((0.12, 0.15, 0.84, 0.74))
    rows = []
    for i, (code, lab) in enumerate(((1, "Relapse / progression"), (2, "Non-relapse mortality"))):
        sub = tab[tab["cause"] == code]
        if sub.empty:
            continue
        xs = np.concatenate([[0.0], sub["time"].to_numpy()])
        ys = np.concatenate([[0.0], sub["cif"].to_numpy()])
        lo = np.concatenate([[0.0], sub["lower"].to_numpy()])
        hi = np.concatenate([[0.0], sub["upper"].to_numpy()])
        colour = PALETTE[i + 1]
        ax.step(xs, ys, where="post", color=colour, lw=1.4,
                label=f"{lab} ({int(sub['n_event'].sum())} events)")
        ax.fill_between(xs, lo, hi, step="post", color=colour, alpha=0.15, lw=0)
        rows.append(pd.DataFrame({"cause": code, "time": xs, "cif": ys}))
    ax.set_ylim(0, 1)
    ax.yaxis.set_major_formatter(_percent())
    ax.set_xlabel(f"Time since CAR-T infusion ({settings.time_unit})")
    ax.set_ylabel("Cumulative incidence")
    ax.set_title("Cumulative incidence of relapse and non-relapse mortality", loc="left")
    ax.legend(loc="upper left", frameon=False)
    data = pd.concat(rows, ignore_index=True) if rows else pd.DataFrame()
    return Drawn(name, "Cumulative incidence of relapse and NRM", fig, data,
                 {"n": int(len(t))},
                 caption="Aalen–Johansen cumulative incidence, relapse/progression and death "
                         "without relapse as competing risks; log(−log) pointwise bands.")


# ------------------------------------------------------------------------------ swimmer
MARKERS = {
    "CR/CRi": dict(marker="o", color="#009E73", mfc="#009E73"),
    "PR": dict(marker="o", color="#56B4E9", mfc="white"),
    "NR": dict(marker="s", color="#7f7f7f", mfc="white"),
    "SCT": dict(marker="^", color="#0072B2", mfc="#0072B2"),
    "relapse CD7−": dict(marker="v", color="#D55E00", mfc="white"),
    "relapse CD7+": dict(marker="v", color="#D55E00", mfc="#D55E00"),
    "relapse CD7 unknown": dict(marker="D", color="#D55E00", mfc="#E69F00"),
    "death": dict(marker="X", color="black", mfc="black"),
}


def swimmer_figure(lanes: pd.DataFrame, markers: pd.DataFrame, settings: ReportSettings,
                   name: str = "swimmer") -> Drawn:
    """One lane per patient from infusion to last follow-up, grouped and sorted.

    ``lanes``: patient_id, group, end_days, ongoing (arrow), lost (no arrow, open end).
    ``markers``: patient_id, kind (a key of ``MARKERS``), day.
    Lanes are grouped by ``group`` and sorted by follow-up (longest first) within group.
    """
    scale = settings.time_scale
    lanes = lanes.copy()
    lanes["end"] = lanes["end_days"].astype(float) / scale
    order = ["Consolidation SCT", "No SCT", "SCT unknown"]
    groups = sorted(pd.unique(lanes["group"]),
                    key=lambda g: (order.index(g) if g in order else len(order), str(g)))
    lanes["_g"] = lanes["group"].map({g: i for i, g in enumerate(groups)})
    lanes = lanes.sort_values(["_g", "end", "patient_id"], ascending=[True, False, True])
    gap = 1.0
    y, ys, g_prev = 0.0, [], None
    for g in lanes["_g"]:
        if g_prev is not None and g != g_prev:
            y += gap
        ys.append(y)
        y += 1.0
        g_prev = g
    lanes["lane"] = ys
    n = len(lanes)
    height = max(3.0, 0.13 * (n + gap * len(groups)) + 1.3)
    fig = _new_figure(7.0, height)
    ax = fig.add_axes((0.16, 0.9 / height, 0.62, 1 - 1.3 / height))
    t_max = float(lanes["end"].max()) if n else 1.0
    for i, g in enumerate(groups):
        sub = lanes[lanes["group"] == g]
        colour = ("#cfd8e3", "#f1dccc", "#d5eadf", "#eddbe6")[i % 4]
        ax.barh(sub["lane"], sub["end"], height=0.7, color=colour, edgecolor="none")
        mid = (sub["lane"].min() + sub["lane"].max()) / 2
        ax.text(-0.02 * t_max, mid, f"{g}\n(n={len(sub)})", ha="right", va="center",
                fontsize=7.5, transform=ax.transData)
    ongoing = lanes[lanes["ongoing"].astype(bool)]
    ax.plot(ongoing["end"] + 0.012 * t_max, ongoing["lane"], ls="none", marker=">", ms=4,
            color="#333333", label="ongoing follow-up")
    lost = lanes[lanes["lost"].astype(bool)]
    if len(lost):
        ax.plot(lost["end"], lost["lane"], ls="none", marker="|", ms=7, mew=1.4,
                color="#333333", label="lost to follow-up")
    lane_of = lanes.set_index("patient_id")["lane"]
    mk = markers[markers["patient_id"].isin(lane_of.index)].copy()
    mk["time"] = mk["day"].astype(float) / scale
    mk["lane"] = mk["patient_id"].map(lane_of)
    for kind, style in MARKERS.items():
        sub = mk[mk["kind"] == kind]
        if sub.empty:
            continue
        ax.plot(sub["time"], sub["lane"], ls="none", ms=4.5, mew=0.9, label=kind,
                marker=style["marker"], color=style["color"], mfc=style["mfc"])
    ax.set_ylim(-1, y)
    ax.invert_yaxis()
    ax.set_yticks([])
    ax.spines["left"].set_visible(False)
    ax.set_xlim(0, t_max * 1.05 + 1e-9)
    ax.set_xlabel(f"Time since CAR-T infusion ({settings.time_unit})")
    ax.set_title("Swimmer plot: each lane is one patient", loc="left")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False, fontsize=7)
    data = lanes.drop(columns=["_g"]).reset_index(drop=True)
    return Drawn(name, "Swimmer plot", fig, data, {"markers": mk.reset_index(drop=True)},
                 caption="Lanes from infusion to last follow-up (arrow: alive, follow-up "
                         "ongoing; bar: lost to follow-up or withdrawn); grouped by consolidation SCT and sorted by follow-up. "
                         "Response markers at the day-28–30 assessment; relapse open "
                         "triangle = CD7-negative, filled = CD7-positive.")


# ------------------------------------------------------------------------------ flow
def flow_figure(flow: dict[str, Any], name: str = "patient_flow") -> Drawn:
    """CONSORT-style patient flow from the counts in ``flow`` (see ``report.flow``)."""
    fig = _new_figure(7.0, 6.0)
    ax = fig.add_axes((0.01, 0.01, 0.98, 0.98))
    ax.set_xlim(0, 100)
    ax.set_ylim(0, 100)
    ax.axis("off")

    def box(x: float, y: float, text: str, w: float = 30, h: float = 9, fc: str = "#eef3f8"):
        from matplotlib.patches import FancyBboxPatch

        ax.add_patch(FancyBboxPatch((x - w / 2, y - h / 2), w, h,
                                    boxstyle="round,pad=0.4,rounding_size=1.2", fc=fc,
                                    ec="#4a6a8a", lw=0.9))
        ax.text(x, y, text, ha="center", va="center", fontsize=7.5)

    def arrow(x0: float, y0: float, x1: float, y1: float) -> None:
        ax.annotate("", xy=(x1, y1), xytext=(x0, y0),
                    arrowprops=dict(arrowstyle="-|>", color="#4a6a8a", lw=0.9))

    box(50, 93, f"Enrolled\nn = {flow['enrolled']}")
    if flow["not_infused"]:
        box(84, 84, f"Not infused\nn = {flow['not_infused']}", w=22, h=7, fc="#f7efe6")
        arrow(50, 88, 73, 84)
    box(50, 77, f"Infused (analysed)\nn = {flow['infused']}")
    arrow(50, 88.5, 50, 81.5)
    r = flow["response"]
    resp_text = (f"Best response, days {flow['window']} after infusion\n"
                 f"CR/CRi {r['complete']} · other response {r['partial']} · "
                 f"no response {r['none']} · not assessed {r['not_assessed']}")
    box(50, 60, resp_text, w=62, h=10)
    arrow(50, 72.5, 50, 65)
    xs = (18, 50, 82)
    branches = flow["branches"]
    for x, br in zip(xs, branches, strict=True):
        box(x, 40, f"{br['label']}\nn = {br['n']}", w=29, h=9)
        arrow(50, 55, x, 44.5)
        lines = "\n".join(f"{k}: {v}" for k, v in br["outcome"].items())
        box(x, 17, f"Outcome at last follow-up\n{lines}", w=29, h=16, fc="#f4f7f1")
        arrow(x, 35.5, x, 25)
    rows = [{"node": "enrolled", "n": flow["enrolled"]},
            {"node": "not infused", "n": flow["not_infused"]},
            {"node": "infused", "n": flow["infused"]}]
    rows += [{"node": f"response: {k}", "n": v} for k, v in r.items()]
    for br in branches:
        rows.append({"node": br["label"], "n": br["n"]})
        rows += [{"node": f"{br['label']} / {k}", "n": v} for k, v in br["outcome"].items()]
    return Drawn(name, "Patient flow", fig, pd.DataFrame(rows), {"flow": flow},
                 caption="Patient flow (CONSORT style), counts derived from the cohort.")


def save(drawn: Drawn, folder, pdf=None, formats: tuple[str, ...] = ("svg", "png")) -> list[str]:
    """Write ``<name>.svg`` and/or ``<name>.png`` (and a PDF page); return the file names.

    Metadata dates are left out so the same input gives the same files.
    """
    from pathlib import Path

    folder = Path(folder)
    names = []
    for ext in formats:
        path = folder / f"{drawn.name}.{ext}"
        meta = {"Date": None} if ext == "svg" else {"Software": None}
        drawn.fig.savefig(path, format=ext, metadata=meta)
        names.append(path.name)
    if pdf is not None:
        pdf.savefig(drawn.fig)
    return names
