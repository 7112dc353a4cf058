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

from cartrial.cohort.units import DAYS_PER_MONTH
from cartrial.report.document import SYNTHETIC_LABEL, time_axis_label
from cartrial.report.labels import fmt_p, value_label
from cartrial.report.palette import (
    BLUE,
    GREEN,
    GREY,
    NEUTRAL,
    ORANGE,
    PALETTE,
    PURPLE,
    SKY_BLUE,
    SYNTHETIC_RED,
    VERMILION,
    YELLOW,
)
from cartrial.report.settings import ReportSettings
from cartrial.report.tables import _level_order, _vocab_order
from cartrial.stats import cumulative_incidence, gray_test, kaplan_meier

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.figure import Figure

RC: dict[str, Any] = {
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


def _style() -> None:
    """The report's text sizes and spines (``RC``) for the figures made from here on; no
    pyplot (figures are ``Figure`` objects drawn by the Agg canvas directly)."""
    import matplotlib

    matplotlib.rcParams.update(RC)  # type: ignore[arg-type]  # keys checked by matplotlib


def _new_figure(width: float, height: float) -> Figure:
    from matplotlib.figure import Figure

    _style()
    return Figure(figsize=(width, height), layout=None)


def risk_times(max_time: float, step: float) -> np.ndarray:
    """Tick times 0, step, 2·step, … up to the last follow-up time."""
    n = int(np.floor(max_time / step + 1e-9))
    return np.arange(n + 1, dtype=float) * step


# ------------------------------------------------------------------------------ KM
RISK_TOP = 0.62  # inches from the axis bottom to the "Number at risk" line
RISK_ROW = 0.21  # inches per row of the numbers-at-risk table


def _risk_layout(
    k: int, ax_h: float = 3.0, top: float = 0.38, labels: Sequence[str] = (), width: float = 6.4
) -> tuple[float, tuple]:
    """Figure height and main-axes rectangle leaving room for ``k`` at-risk rows below
    and for the row labels on the left (7.5 pt text: ~0.062 in per character)."""
    bottom = RISK_TOP + RISK_ROW * k + 0.12
    total = top + ax_h + bottom
    longest = max((min(len(lab), 24) for lab in labels), default=10)
    left = min(0.32, max(0.15, (0.062 * longest + 0.2) / width))
    return total, (left, bottom / total, 0.96 - left, ax_h / total)


def _risk_rows(ax, ax_h: float, labels: list[str], ticks, counts: list, colours: list) -> None:
    """The numbers-at-risk table under ``ax``: text in data x / axes y coordinates, no
    second axes (an extra axes costs ~40 ms per figure to build and draw)."""
    from matplotlib.transforms import blended_transform_factory

    tr = blended_transform_factory(ax.transData, ax.transAxes)
    ax.text(
        0.0,
        -RISK_TOP / ax_h,
        "Number at risk",
        transform=ax.transAxes,
        ha="left",
        va="center",
        fontsize=7.5,
    )
    for i, (lab, row, colour) in enumerate(zip(labels, counts, colours, strict=True)):
        y = -(RISK_TOP + RISK_ROW * (i + 1)) / ax_h
        ax.text(
            -0.02,
            y,
            lab if len(lab) <= 24 else lab[:23] + "…",
            transform=ax.transAxes,
            ha="right",
            va="center",
            fontsize=7.5,
        )
        for tt, nr in zip(ticks, row, strict=True):
            ax.text(
                tt,
                y,
                str(int(nr)),
                transform=tr,
                ha="center",
                va="center",
                fontsize=7.5,
                color=colour,
                clip_on=False,
            )


def _p_text(ax, name: str, p_value: float | None) -> None:
    if p_value is not None and np.isfinite(p_value):
        ptxt = fmt_p(p_value)
        rel = f"< {ptxt[1:]}" if ptxt.startswith("<") else f"= {ptxt}"
        ax.text(0.98, 0.96, f"{name} p {rel}", transform=ax.transAxes, ha="right", va="top")


def km_figure(
    curves: Sequence[tuple[str, np.ndarray, np.ndarray]],
    settings: ReportSettings,
    name: str,
    title: str,
    ylabel: str,
    p_value: float | None = None,
    endpoint: str | None = None,
    bands: bool | None = None,
    xlabel: str | None = None,
    colours: Sequence[str] | None = None,
) -> Drawn:
    """Kaplan–Meier curves with censor marks, numbers at risk, median and landmarks marked.

    ``curves``: (label, time in days, event 0/1) per group. ``endpoint`` sets the x-axis
    origin (DOR: first response). CI bands are drawn for one or two curves (``bands``
    overrides): with 3–4 groups overlapping bands are unreadable. The median (dashed
    guide at 50% down to the time axis) and the landmark estimates (dots labelled with
    the %) are marked per curve. ``data`` has one row per (group, time) of the
    numbers-at-risk table; ``info["medians"]``/``info["landmarks"]`` what was marked.
    ``colours``: one per curve (``level_colours`` keeps a level's colour between reports).
    """

    scale = settings.time_scale
    step = settings.risk_table_step_months * (
        1.0 if settings.time_unit == "months" else DAYS_PER_MONTH
    )
    fits = [
        (
            lab,
            kaplan_meier(
                np.asarray(t, float) / scale,
                np.asarray(e, int),
                conf_type=settings.km_conf_type,
                conf_level=settings.conf_level,
            ),
            np.asarray(t, float) / scale,
            np.asarray(e, int),
        )
        for lab, t, e in curves
        if len(t)
    ]
    t_max = max((float(t.max()) for _, _, t, _ in fits if t.size), default=1.0)
    ticks = risk_times(max(t_max, step), step)
    k = len(fits)
    show_bands = (k <= 2) if bands is None else bands
    total_h, rect = _risk_layout(k, labels=[lab for lab, *_ in fits])
    fig = _new_figure(6.4, total_h)
    ax = fig.add_axes(rect)
    at_risk_rows, medians, marks = [], [], []
    risk_counts, colours = [], []
    lm_times = [tt for tt, _ in _landmark_times(settings) if tt <= t_max]
    for i, (lab, fit, t, e) in enumerate(fits):
        colour = (
            colours[i]
            if colours is not None and i < len(colours)
            else PALETTE[i % len(PALETTE)]
            if k > 1
            else BLUE
        )
        tab = fit.table
        xs = np.concatenate([[0.0], tab["time"].to_numpy()])
        ys = np.concatenate([[1.0], tab["survival"].to_numpy()])
        med = float(fit.median(ci_method=settings.km_ci_method).estimate)
        med_txt = f", median {med:.1f}" if np.isfinite(med) else ", median NR"
        ax.step(
            xs,
            ys,
            where="post",
            color=colour,
            lw=1.4,
            label=f"{lab} (n={len(t)}{med_txt if k > 2 else ''})",
        )
        if show_bands:
            lo = np.concatenate([[1.0], tab["lower"].to_numpy()])
            hi = np.concatenate([[1.0], tab["upper"].to_numpy()])
            ax.fill_between(xs, lo, hi, step="post", color=colour, alpha=0.15, lw=0)
        cens = t[e == 0]
        if cens.size:
            s_c = fit.survival_at(cens).estimate
            ax.plot(cens, s_c, ls="none", marker="|", ms=7, mew=1.1, color=colour)
        medians.append({"group": lab, "median": med})
        if np.isfinite(med):  # guides for every curve; the value in text (or the legend)
            ax.plot([0, med, med], [0.5, 0.5, 0.0], ls=(0, (3, 2)), lw=0.8, color=colour)
            if k <= 2:
                ax.annotate(
                    f"median {med:.1f}",
                    (med, 0.0),
                    xytext=(3, 4 + 9 * i),
                    textcoords="offset points",
                    fontsize=6.8,
                    color=colour,
                )
        if k <= 2:
            for tt in lm_times:
                est = float(fit.survival_at(tt).estimate)
                if np.isfinite(est):
                    ax.plot([tt], [est], marker="o", ms=3.2, color=colour)
                    ax.annotate(
                        f"{100 * est:.0f}%",
                        (tt, est),
                        xytext=(2, 4 if i == 0 else -9),
                        textcoords="offset points",
                        fontsize=6.8,
                        color=colour,
                    )
                    marks.append({"group": lab, "time": tt, "estimate": est})
        n_risk = np.asarray(fit.n_at_risk(ticks), dtype=float)
        risk_counts.append(n_risk)
        colours.append(colour)
        for tt, nr in zip(ticks, n_risk, strict=True):
            at_risk_rows.append({"group": lab, "time": float(tt), "n_at_risk": int(nr)})
    ax.set_ylim(-0.02, 1.02)
    x_end = max(t_max, ticks[-1])
    ax.set_xlim(-0.02 * x_end, x_end * 1.02 + 1e-9)
    ax.set_xticks(ticks)
    ax.set_ylabel(ylabel)
    ax.yaxis.set_major_formatter(_percent())
    ax.set_title(title, loc="left")
    ax.tick_params(labelbottom=True)
    ax.set_xlabel(xlabel or time_axis_label(endpoint, settings.time_unit, settings))
    handles = ax.get_legend_handles_labels()
    ax.legend(*handles, loc="lower left", frameon=False)
    _p_text(ax, "log-rank", p_value)
    _risk_rows(ax, 3.0, [lab for lab, *_ in fits], ticks, risk_counts, colours)
    data = pd.DataFrame(at_risk_rows, columns=["group", "time", "n_at_risk"])
    ci = f"{100 * settings.conf_level:g}% CI ({settings.km_conf_type} transform)"
    band_text = f"shaded: {ci}; " if show_bands else ""
    return Drawn(
        name,
        title,
        fig,
        data,
        {
            "ticks": ticks.tolist(),
            "p_value": p_value,
            "medians": medians,
            "landmarks": marks,
            "xlabel": ax.get_xlabel(),
            "bands": show_bands,
        },
        caption=f"Kaplan–Meier estimate; {band_text}| marks censored patients; "
        "dashed guides mark the median, dots the landmark estimates; "
        "numbers at risk below the axis.",
    )


def _landmark_times(settings: ReportSettings) -> list[tuple[float, str]]:
    unit = settings.time_unit
    return [
        (t if unit == "months" else t * DAYS_PER_MONTH, f"{t:g}") for t in settings.landmarks_months
    ]


def level_colours(levels: Sequence[str]) -> list[str]:
    """Colours fixed by the vocabulary: a level known to ``cohort.vocab`` (sexes, product
    sources, responses, yes/no, low/high) always gets the same palette colour, whatever
    other levels a report has; other levels take the remaining colours in order."""

    vocab = ["yes", "no", *_vocab_order()]
    out, used = [], set()
    for lv in levels:
        if lv in vocab:
            idx = vocab.index(lv) % len(PALETTE)
            out.append(PALETTE[idx])
            used.add(idx)
        else:
            out.append("")
    free = [c for j, c in enumerate(PALETTE) if j not in used] or list(PALETTE)
    for i, c in enumerate(out):
        if not c:
            out[i] = free[0]
            free = free[1:] or list(PALETTE)
    return out


def _percent():
    from matplotlib.ticker import FuncFormatter

    return FuncFormatter(lambda v, _pos: f"{100 * v:.0f}%")


# ------------------------------------------------------------------------------ CIF
def cif_figure(
    time_days: np.ndarray,
    cause: np.ndarray,
    settings: ReportSettings,
    name: str = "cif_relapse_nrm",
    groups: np.ndarray | None = None,
    group_title: str = "",
) -> Drawn:
    """Cumulative incidence of relapse (cause 1) and non-relapse mortality (cause 2),
    Aalen–Johansen with the other as competing risk, with numbers at risk below.

    Without ``groups``: both causes with pointwise CI bands. With ``groups``: relapse
    (solid) and NRM (dashed) per group, Gray's test for relapse (cmprsk ``cuminc``) in the
    corner; ``info["gray_p"]``.
    """

    t = np.asarray(time_days, float) / settings.time_scale
    c = np.asarray(cause, int)
    step = settings.risk_table_step_months * (
        1.0 if settings.time_unit == "months" else DAYS_PER_MONTH
    )
    t_max = float(t.max()) if t.size else 1.0
    ticks = risk_times(max(t_max, step), step)
    if groups is None:
        series = [("All patients", np.ones(t.size, dtype=bool))]
    else:
        g = pd.Series(groups, dtype=object)
        series = [(value_label(lv), (g == lv).to_numpy()) for lv in _level_order(g)]
    k = len(series)
    total_h, rect = _risk_layout(k, ax_h=2.9, labels=[lab for lab, _ in series])
    fig = _new_figure(6.4, total_h)
    ax = fig.add_axes(rect)
    rows, at_risk = [], []
    risk_counts, colours = [], []
    for gi, (glab, mask) in enumerate(series):
        ci = cumulative_incidence(t[mask], c[mask], conf_level=settings.conf_level)
        tab = ci.table
        for j, (code, lab) in enumerate(
            ((1, "Relapse / progression"), (2, "Non-relapse mortality"))
        ):
            sub = tab[tab["cause"] == code]
            if sub.empty:
                continue
            xs = np.concatenate([[0.0], sub["time"].to_numpy()])
            ys = np.concatenate([[0.0], sub["cif"].to_numpy()])
            colour = PALETTE[j + 1] if groups is None else PALETTE[gi % len(PALETTE)]
            ls = "-" if (groups is None or code == 1) else "--"
            text = lab if groups is None else f"{group_title} {glab.lower()}: {lab.lower()}"
            ax.step(
                xs,
                ys,
                where="post",
                color=colour,
                lw=1.4,
                ls=ls,
                label=f"{text} ({int(sub['n_event'].sum())} events)",
            )
            if groups is None:
                lo = np.concatenate([[0.0], sub["lower"].to_numpy()])
                hi = np.concatenate([[0.0], sub["upper"].to_numpy()])
                ax.fill_between(xs, lo, hi, step="post", color=colour, alpha=0.15, lw=0)
            rows.append(pd.DataFrame({"group": glab, "cause": code, "time": xs, "cif": ys}))
        colour = GREY if groups is None else PALETTE[gi % len(PALETTE)]
        tm = t[mask]
        counts = [int((tm >= tt).sum()) for tt in ticks]
        risk_counts.append(counts)
        colours.append(colour)
        at_risk += [
            {"group": glab, "time": float(tt), "n_at_risk": nr}
            for tt, nr in zip(ticks, counts, strict=True)
        ]
    gray_p = None
    if groups is not None and k >= 2 and (c == 1).any():
        keep = np.zeros(t.size, dtype=bool)
        for _, m in series:
            keep |= m
        gray_p = float(
            gray_test(
                t[keep],
                c[keep],
                np.asarray(groups, dtype=object)[keep].astype(str),
                cause_of_interest=1,
            ).p_value
        )
        _p_text(ax, "Gray's test (relapse)", gray_p)
    ax.set_ylim(0, 1)
    ax.set_xlim(-0.02 * ticks[-1], ticks[-1] * 1.02 + 1e-9)
    ax.set_xticks(ticks)
    ax.tick_params(labelbottom=True)
    ax.yaxis.set_major_formatter(_percent())
    ax.set_xlabel(time_axis_label(None, settings.time_unit))
    ax.set_ylabel("Cumulative incidence")
    title = (
        "Cumulative incidence of relapse and non-relapse mortality"
        if groups is None
        else f"Relapse and non-relapse mortality by {group_title[:1].lower() + group_title[1:]}"
    )
    ax.set_title(title, loc="left")
    ax.legend(loc="upper left", frameon=False, fontsize=6.8, bbox_to_anchor=(0.01, 0.93))
    _risk_rows(ax, 2.9, [lab for lab, _ in series], ticks, risk_counts, colours)
    data = pd.concat(rows, ignore_index=True) if rows else pd.DataFrame()
    return Drawn(
        name,
        title,
        fig,
        data,
        {
            "n": int(len(t)),
            "gray_p": gray_p,
            "at_risk": pd.DataFrame(at_risk),
            "xlabel": ax.get_xlabel(),
        },
        caption="Aalen–Johansen cumulative incidence, relapse/progression and death "
        "without relapse as competing risks"
        + (
            "; log(−log) pointwise bands"
            if groups is None
            else "; Gray's test compares relapse incidence between the groups"
        )
        + "; numbers at risk below the axis.",
    )


# ------------------------------------------------------------------------------ forest
def forest_figure(cox: pd.DataFrame, settings: ReportSettings, name: str, title: str) -> Drawn:
    """Forest plot of ``tables.cox_subgroup_table`` rows: HR and CI on a log axis, one
    row per level (reference levels marked), subgroup headings, N/events and the HR text."""
    ci_col = next(c for c in cox.columns if c.startswith("HR ("))
    lines: list[tuple[str, str, dict | None]] = []
    for sub, block in cox.groupby("Subgroup", sort=False):
        lines.append(("head", str(sub), None))
        for r in block.to_dict("records"):
            lines.append(("level", str(r["Level"]), r))
    n = len(lines)
    height = max(2.4, 0.24 * n + 1.0)
    fig = _new_figure(7.0, height)
    ax = fig.add_axes((0.36, 0.55 / height, 0.34, 1 - 0.95 / height))
    finite = cox[np.isfinite(cox["lower"].astype(float)) & np.isfinite(cox["upper"].astype(float))]
    lo = float(min(0.25, finite["lower"].min())) if len(finite) else 0.25
    hi = float(max(4.0, finite["upper"].max())) if len(finite) else 4.0
    lo, hi = max(lo, 1e-2), min(hi, 1e2)
    ax.set_xscale("log")
    ax.set_xlim(lo / 1.2, hi * 1.2)
    ax.axvline(1.0, color="#777777", lw=0.8)
    ax.set_ylim(n - 0.4, -0.6)
    ax.set_yticks([])
    ax.spines["left"].set_visible(False)
    for y, (kind, text, r) in enumerate(lines):
        if kind == "head":
            ax.text(
                -0.02,
                y,
                text,
                transform=ax.get_yaxis_transform(),
                ha="right",
                va="center",
                fontsize=7.8,
                weight="bold",
            )
            continue
        assert r is not None
        ax.text(
            -0.02,
            y,
            f"   {text}  ({r['N']}; {r['Events']} ev.)",
            transform=ax.get_yaxis_transform(),
            ha="right",
            va="center",
            fontsize=7.3,
        )
        ax.text(
            1.03,
            y,
            str(r[ci_col]) + (f"  p {r['p']}" if r["p"] else ""),
            transform=ax.get_yaxis_transform(),
            ha="left",
            va="center",
            fontsize=7.3,
        )
        hr = float(r["hr"])
        if str(r[ci_col]).startswith("1 (reference)"):
            ax.plot([1.0], [y], marker="D", ms=3.5, color="#777777", mfc="white")
        elif np.isfinite(hr):
            l_, u_ = float(r["lower"]), float(r["upper"])
            ax.plot([max(l_, lo / 1.2), min(u_, hi * 1.2)], [y, y], color=BLUE, lw=1.2)
            ax.plot([hr], [y], marker="s", ms=4.5, color=BLUE)
    ax.set_xlabel(f"Hazard ratio ({100 * settings.conf_level:g}% CI), log scale")
    from matplotlib.ticker import FixedLocator, FuncFormatter, NullFormatter

    ticks = [v for v in (0.1, 0.25, 0.5, 1, 2, 4, 10, 25) if lo / 1.2 <= v <= hi * 1.2]
    ax.xaxis.set_major_locator(FixedLocator(ticks))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _p: f"{v:g}"))
    ax.xaxis.set_minor_formatter(NullFormatter())
    fig.text(0.02, 1 - 0.12 / height, title, ha="left", va="top", fontsize=9.5)
    per_doubling = (cox["Level"] == "per doubling").any()
    return Drawn(
        name,
        title,
        fig,
        cox.reset_index(drop=True),
        {"rows": n},
        caption="Univariable Cox hazard ratio of each level against the reference "
        "(◇); squares: HR, lines: confidence interval; (N; events). HR > 1: "
        "higher hazard than the reference."
        + (" EASIX/m-EASIX: HR per doubling of the pre-infusion value." if per_doubling else ""),
    )


# ------------------------------------------------------------------------------ swimmer
MARKERS = {
    "CR/CRi": dict(marker="o", color=GREEN, mfc=GREEN),
    "PR": dict(marker="o", color=SKY_BLUE, mfc="white"),
    "NR": dict(marker="s", color=NEUTRAL, mfc="white"),
    "SCT": dict(marker="^", color=BLUE, mfc=BLUE),
    "relapse CD7−": dict(marker="v", color=VERMILION, mfc="white"),
    "relapse CD7+": dict(marker="v", color=VERMILION, mfc=VERMILION),
    "relapse CD7 unknown": dict(marker="D", color=VERMILION, mfc=ORANGE),
    "relapse, day not reported": dict(marker="v", color=VERMILION, mfc=YELLOW),
    "new therapy": dict(marker="P", color=PURPLE, mfc=PURPLE),
    "death": dict(marker="X", color="black", mfc="black"),
}


#: most lanes on one swimmer page; more patients are split over several pages
SWIMMER_PAGE = 80
#: most swimmer pages drawn; a larger cohort gets only the aggregated view
SWIMMER_MAX_PAGES = 3
#: states of the aggregated swimmer view, bottom to top, and their colours
COURSE_STATES = (
    ("Alive, no relapse recorded", "#d5eadf"),
    ("Alive after relapse", ORANGE),
    ("Dead", "#4d4d4d"),
    ("Follow-up ended (alive)", "#cfd8e3"),
)
#: event kinds of the aggregated view's histogram: (label, marker kinds, colour)
COURSE_EVENTS = (
    ("CR/CRi", ("CR/CRi",), GREEN),
    ("SCT", ("SCT",), BLUE),
    ("Relapse", tuple(k for k in MARKERS if k.startswith("relapse")), VERMILION),
    ("New therapy", ("new therapy",), PURPLE),
    ("Death", ("death",), "black"),
)


def swimmer_figures(
    lanes: pd.DataFrame, markers: pd.DataFrame, settings: ReportSettings, name: str = "swimmer"
) -> list[Drawn]:
    """The swimmer plot at any cohort size (issue 13: never a 51-inch page).

    Up to ``SWIMMER_PAGE`` (80) patients: one figure (``swimmer``). More: the aggregated
    view first (``swimmer_summary``: status over time and event-time histogram), then the
    lanes paginated at 80 (groups kept in order, sorted by follow-up; ``swimmer_p1`` …)
    up to ``SWIMMER_MAX_PAGES`` pages; above that only the aggregated view is drawn and
    its caption says so.
    """
    if len(lanes) <= SWIMMER_PAGE:
        return [swimmer_figure(lanes, markers, settings, name)]
    summary = course_summary_figure(lanes, markers, settings, f"{name}_summary")
    order = _swimmer_order(lanes, settings)
    pages = [order.iloc[i : i + SWIMMER_PAGE] for i in range(0, len(order), SWIMMER_PAGE)]
    if len(pages) > SWIMMER_MAX_PAGES:
        summary.caption += (
            f" Individual lanes are not drawn for {len(lanes)} patients "
            f"(more than {SWIMMER_PAGE * SWIMMER_MAX_PAGES}, i.e. "
            f"{SWIMMER_MAX_PAGES} pages of {SWIMMER_PAGE})."
        )
        return [summary]
    summary.caption += (
        f" The individual lanes follow on {len(pages)} pages of at most {SWIMMER_PAGE} patients."
    )
    out = [summary]
    for k, page in enumerate(pages, 1):
        d = swimmer_figure(
            lanes[lanes["patient_id"].isin(page["patient_id"])], markers, settings, f"{name}_p{k}"
        )
        d.title = f"Swimmer plot, page {k} of {len(pages)}"
        out.append(d)
    return out


def course_states(
    lanes: pd.DataFrame, markers: pd.DataFrame, times: np.ndarray, scale: float = 1.0
) -> pd.DataFrame:
    """Patients in each ``COURSE_STATES`` state at each of ``times`` (in days / ``scale``).

    A patient is dead from the death marker on; follow-up ended (alive at last contact)
    after the lane's end when not dead; alive after relapse from the first relapse marker
    (any CD7 status; an undated relapse sits at the lane's end); otherwise alive without
    a recorded relapse. The counts add up to the number of lanes at every time.
    """
    ids = lanes["patient_id"].to_numpy()
    end = lanes["end_days"].to_numpy(dtype=float) / scale

    def first(kinds: tuple[str, ...]) -> np.ndarray:
        mk = markers[markers["kind"].isin(list(kinds)) & markers["day"].notna()]
        day = mk.groupby("patient_id")["day"].min()
        return pd.Series(ids).map(day).to_numpy(dtype=float) / scale

    death = np.nan_to_num(first(("death",)), nan=np.inf)
    relapse = np.nan_to_num(first(COURSE_EVENTS[2][1]), nan=np.inf)
    t = np.asarray(times, dtype=float)[None, :]
    dead = death[:, None] <= t
    ended = ~dead & (t > end[:, None])
    relapsed = ~dead & ~ended & (relapse[:, None] <= t)
    alive = ~dead & ~ended & ~relapsed
    counts = [alive.sum(0), relapsed.sum(0), dead.sum(0), ended.sum(0)]
    out = pd.DataFrame({"time": np.asarray(times, dtype=float)})
    for (state, _), c in zip(COURSE_STATES, counts, strict=True):
        out[state] = c.astype(int)
    return out


def course_summary_figure(
    lanes: pd.DataFrame,
    markers: pd.DataFrame,
    settings: ReportSettings,
    name: str = "swimmer_summary",
) -> Drawn:
    """The aggregated swimmer view for a large cohort: a stacked area of the patients in
    each state over time (``course_states``) above histograms of the event times (first
    CR/CRi, SCT, relapse, new therapy, death per patient). ``data``: the state counts;
    ``info["events"]``: the event times drawn."""

    scale = settings.time_scale
    n = len(lanes)
    t_max = max(float(lanes["end_days"].astype(float).max()) / scale if n else 1.0, 1e-9)
    times = np.linspace(0.0, t_max, 241)
    states = course_states(lanes, markers, times, scale)
    fig = _new_figure(7.0, 5.6)
    ax = fig.add_axes((0.1, 0.47, 0.6, 0.46))
    ax.stackplot(
        times,
        *[states[s].to_numpy() for s, _ in COURSE_STATES],
        labels=[s for s, _ in COURSE_STATES],
        colors=[c for _, c in COURSE_STATES],
        linewidth=0,
    )
    ax.set_xlim(0, t_max)
    ax.set_ylim(0, n)
    ax.set_ylabel("Patients")
    ax.set_title(f"Course of all {n} patients: status over time", loc="left")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False, fontsize=7)
    ax.tick_params(labelbottom=False)
    hx = fig.add_axes((0.1, 0.1, 0.6, 0.3), sharex=ax)
    bins = np.linspace(0.0, t_max, 31)
    events = []
    for label_, kinds, colour in COURSE_EVENTS:
        mk = markers[
            markers["kind"].isin(list(kinds))
            & markers["day"].notna()
            & markers["patient_id"].isin(lanes["patient_id"])
        ]
        first = mk.groupby("patient_id")["day"].min().to_numpy(dtype=float) / scale
        events.append(pd.DataFrame({"event": label_, "time": first}))
        if first.size:
            hx.hist(
                first,
                bins=list(bins),
                histtype="step",
                color=colour,
                linewidth=1.3,
                label=f"{label_} (n={first.size})",
            )
    hx.set_ylabel("Patients per interval")
    hx.set_xlabel(time_axis_label(None, settings.time_unit))
    hx.set_title("First event of each kind per patient", loc="left")
    hx.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False, fontsize=7)
    width = t_max / 30
    return Drawn(
        name,
        "Course of all patients (aggregated swimmer plot)",
        fig,
        states,
        {"events": pd.concat(events, ignore_index=True), "bin_width": width},
        caption=f"Aggregated view for {n} patients (more than {SWIMMER_PAGE}: one "
        "lane per patient would not be readable). Top: patients in each state "
        "at each time since infusion (dead from the day of death; follow-up "
        "ended after the last contact of a patient alive then; alive after "
        "relapse from the first relapse, any CD7 status, a relapse without "
        "its day at last follow-up). Bottom: histogram of the first "
        "CR/CRi, consolidation SCT, relapse, new therapy and death per "
        f"patient, in intervals of {width:.2g} {settings.time_unit}.",
    )


def _swimmer_order(lanes: pd.DataFrame, settings: ReportSettings) -> pd.DataFrame:
    order = ["Consolidation SCT", "No consolidation SCT", "SCT unknown"]
    groups = sorted(
        pd.unique(lanes["group"]),
        key=lambda g: (order.index(g) if g in order else len(order), str(g)),
    )
    x = lanes.assign(
        _g=lanes["group"].map({g: i for i, g in enumerate(groups)}),
        end=lanes["end_days"].astype(float),
    )
    return x.sort_values(["_g", "end", "patient_id"], ascending=[True, False, True])


def swimmer_figure(
    lanes: pd.DataFrame, markers: pd.DataFrame, settings: ReportSettings, name: str = "swimmer"
) -> Drawn:
    """One lane per patient from infusion to last follow-up, grouped and sorted.

    ``lanes``: patient_id, group, end_days, ongoing (arrow), lost (no arrow, open end).
    ``markers``: patient_id, kind (a key of ``MARKERS``), day.
    Lanes are grouped by ``group`` and sorted by follow-up (longest first) within group.
    """
    scale = settings.time_scale
    lanes = lanes.copy()
    lanes["end"] = lanes["end_days"].astype(float) / scale
    order = ["Consolidation SCT", "No consolidation SCT", "SCT unknown"]
    groups = sorted(
        pd.unique(lanes["group"]),
        key=lambda g: (order.index(g) if g in order else len(order), str(g)),
    )
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
        ax.text(
            -0.02 * t_max,
            mid,
            f"{g}\n(n={len(sub)})",
            ha="right",
            va="center",
            fontsize=7.5,
            transform=ax.transData,
        )
    ongoing = lanes[lanes["ongoing"].astype(bool)]
    ax.plot(
        ongoing["end"] + 0.012 * t_max,
        ongoing["lane"],
        ls="none",
        marker=">",
        ms=4,
        color=GREY,
        label="ongoing follow-up",
    )
    lost = lanes[lanes["lost"].astype(bool)]
    if len(lost):
        ax.plot(
            lost["end"],
            lost["lane"],
            ls="none",
            marker="|",
            ms=7,
            mew=1.4,
            color=GREY,
            label="lost to follow-up",
        )
    lane_of = lanes.set_index("patient_id")["lane"]
    mk = markers[markers["patient_id"].isin(lane_of.index)].copy()
    mk["time"] = mk["day"].astype(float) / scale
    mk["lane"] = mk["patient_id"].map(lane_of)
    for kind, style in MARKERS.items():
        sub = mk[mk["kind"] == kind]
        if sub.empty:
            continue
        ax.plot(
            sub["time"],
            sub["lane"],
            ls="none",
            ms=4.5,
            mew=0.9,
            label=kind,
            marker=style["marker"],
            color=style["color"],
            mfc=style["mfc"],
        )
    ax.set_ylim(-1, y)
    ax.invert_yaxis()
    ax.set_yticks([])
    ax.spines["left"].set_visible(False)
    ax.set_xlim(0, t_max * 1.05 + 1e-9)

    ax.set_xlabel(time_axis_label(None, settings.time_unit))
    ax.set_title("Swimmer plot: each lane is one patient", loc="left")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False, fontsize=7)
    data = lanes.drop(columns=["_g"]).reset_index(drop=True)
    return Drawn(
        name,
        "Swimmer plot",
        fig,
        data,
        {"markers": mk.reset_index(drop=True)},
        caption="Lanes from infusion to last follow-up (arrow: alive, follow-up "
        "ongoing; bar: lost to follow-up or withdrawn); grouped by "
        "consolidation SCT and sorted by follow-up. Response markers at the "
        "best assessment in the response window; relapse open triangle = "
        "CD7-negative, filled = CD7-positive, yellow = relapse whose day is "
        "not reported (drawn at last follow-up); + = new therapy.",
    )


# ------------------------------------------------------------------------------ flow
def flow_figure(flow: dict[str, Any], name: str = "patient_flow") -> Drawn:
    """CONSORT-style patient flow from ``build.patient_flow``: enrolled → infused →
    response-evaluable with the reasons for each exclusion beside the arrow, the best
    response, then three branches (CR/CRi with consolidation SCT, other responders, no
    response) and their outcome at last follow-up."""
    import textwrap

    fig = _new_figure(7.0, 7.2)
    ax = fig.add_axes((0.01, 0.01, 0.98, 0.98))
    ax.set_xlim(0, 100)
    ax.set_ylim(0, 100)
    ax.axis("off")

    def box(x: float, y: float, text: str, w: float = 30, h: float = 7, fc: str = "#eef3f8"):
        from matplotlib.patches import FancyBboxPatch

        ax.add_patch(
            FancyBboxPatch(
                (x - w / 2, y - h / 2),
                w,
                h,
                boxstyle="round,pad=0.4,rounding_size=1.2",
                fc=fc,
                ec="#4a6a8a",
                lw=0.9,
            )
        )
        ax.text(x, y, text, ha="center", va="center", fontsize=7.3)

    def arrow(x0: float, y0: float, x1: float, y1: float) -> None:
        ax.annotate(
            "",
            xy=(x1, y1),
            xytext=(x0, y0),
            arrowprops=dict(arrowstyle="-|>", color="#4a6a8a", lw=0.9),
        )

    pops = {p["code"]: p for p in flow.get("populations", [])}
    chain = [c for c in ("ITT", "SAF", "EFF") if c in pops]
    y = 95.0
    prev_y = None
    rows = []
    for code in chain:
        p = pops[code]
        box(38, y, f"{p['label']}\nn = {p['n']}", w=40)
        rows.append({"node": p["label"], "n": p["n"]})
        if prev_y is not None:
            arrow(38, prev_y - 3.8, 38, y + 3.8)
            if p["excluded"]:
                reasons = "\n".join(textwrap.wrap(p["reasons"] or "excluded", 34))
                box(
                    82,
                    (prev_y + y) / 2,
                    f"Excluded n = {p['excluded']}\n{reasons}",
                    w=30,
                    h=4 + 2.6 * (reasons.count("\n") + 1),
                    fc="#f7efe6",
                )
                arrow(38, (prev_y + y) / 2, 66.5, (prev_y + y) / 2)
                rows.append({"node": f"excluded before {p['label']}", "n": p["excluded"]})
        prev_y = y
        y -= 13.0
    r = flow["response"]
    resp_text = (
        f"Best response, days {flow['window']} after infusion\n"
        f"CR/CRi {r['complete']} · other response {r['partial']} · "
        f"no response {r['none']} · not assessed {r['not_assessed']}"
    )
    y_resp = y - 1
    box(50, y_resp, resp_text, w=66, h=8)
    arrow(38, (prev_y or 95) - 3.8, 50, y_resp + 4.4)
    rows += [{"node": f"response: {k}", "n": v} for k, v in r.items()]
    xs = (18, 50, 82)
    y_br = y_resp - 16
    for x, br in zip(xs, flow["branches"], strict=True):
        box(x, y_br, f"{br['label']}\nn = {br['n']}", w=29, h=7)
        arrow(50, y_resp - 4.4, x, y_br + 3.8)
        lines = "\n".join(f"{k}: {v}" for k, v in br["outcome"].items())
        box(x, y_br - 20, f"At last follow-up\n{lines}", w=29, h=16, fc="#f4f7f1")
        arrow(x, y_br - 3.8, x, y_br - 11.8)
        rows.append({"node": br["label"], "n": br["n"]})
        rows += [{"node": f"{br['label']} / {k}", "n": v} for k, v in br["outcome"].items()]
    return Drawn(
        name,
        "Patient flow",
        fig,
        pd.DataFrame(rows),
        {"flow": flow},
        caption="Patient flow (CONSORT style): each analysis population with the "
        "reasons for exclusion, counts derived from the cohort.",
    )


def mark_synthetic(drawn: Drawn) -> None:
    """Stamp "SYNTHETIC DATA" in the figure's top-right corner (once)."""

    if drawn.info.get("synthetic_mark"):
        return
    drawn.fig.text(
        0.995,
        0.995,
        SYNTHETIC_LABEL,
        ha="right",
        va="top",
        fontsize=6.5,
        color=SYNTHETIC_RED,
        weight="bold",
    )
    drawn.info["synthetic_mark"] = True


def fixed_layout(
    fig: Figure,
    left: float,
    right: float,
    top: float,
    bottom: float,
    wspace: float = 0.0,
    hspace: float = 0.0,
) -> None:
    """Replace a figure's constrained layout by fixed margins, in inches (``wspace`` /
    ``hspace``: gaps between the panels of a subplot grid).

    Constrained layout measures every tick label and text twice before the figure is
    drawn (about half the drawing time of a panel figure); a figure whose content is known
    (the kinetics figures) does as well with margins sized for its text.
    """
    w, h = fig.get_size_inches()
    from matplotlib.gridspec import GridSpec

    specs = [ax.get_subplotspec() for ax in fig.axes]
    grid = next((sp.get_gridspec() for sp in specs if sp is not None), None)
    if not isinstance(grid, GridSpec):  # axes placed by hand: nothing to arrange
        grid = None
    nrows, ncols = grid.get_geometry() if grid is not None else (1, 1)
    fig.set_layout_engine("none")
    cell_w = (w - left - right - wspace * (ncols - 1)) / ncols
    cell_h = (h - top - bottom - hspace * (nrows - 1)) / nrows
    params = {
        "left": left / w,
        "right": 1 - right / w,
        "bottom": bottom / h,
        "top": 1 - top / h,
        "wspace": wspace / cell_w,
        "hspace": hspace / cell_h,
    }
    if grid is None:
        return
    grid.update(**params)
    for ax in fig.axes:
        spec = ax.get_subplotspec()
        if spec is not None and spec.get_gridspec() is grid:
            ax.set_position(spec.get_position(fig))


#: raster resolution of the figure files (and of the images in the PDF and HTML)
PNG_DPI = 200
#: widest figure file in pixels: a wide panel figure (the 19-inch reconstitution panels)
#: gets a lower resolution — it is printed page-wide, so 2560 px are still ~390 dpi in the
#: PDF — instead of 3840 px that cost twice the time to draw and compress
MAX_PNG_PX = 2560


def png_dpi(fig: Figure) -> float:
    """The resolution a figure is rasterised at: ``PNG_DPI``, less for figures wider than
    ``MAX_PNG_PX`` pixels at that resolution."""
    return min(float(PNG_DPI), MAX_PNG_PX / float(fig.get_size_inches()[0]))


def png_bytes(rgb: np.ndarray, dpi: float = 0.0) -> bytes:
    """An 8-bit RGB PNG of ``rgb`` (h × w × 3 uint8): rows unfiltered (filter 0), one
    zlib stream (level 3), a pHYs chunk for the resolution (PNG 1.2, RFC 2083).

    Figures are mostly flat colour: without per-row filters zlib compresses them about as
    small as Pillow's adaptive filtering (~70 vs ~64 kB for a 1280 × 934 figure) about ten
    times faster (~10 ms vs ~100 ms), and the PDF embeds the same stream as it is.
    """
    import struct
    import zlib

    h, w, _ = rgb.shape
    rows = np.empty((h, w * 3 + 1), dtype=np.uint8)
    rows[:, 0] = 0
    rows[:, 1:] = rgb.reshape(h, w * 3)

    def chunk(kind: bytes, body: bytes) -> bytes:
        return (
            struct.pack(">I", len(body))
            + kind
            + body
            + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)
        )

    out = [b"\x89PNG\r\n\x1a\n", chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))]
    if dpi:
        ppm = int(round(dpi / 0.0254))
        out.append(chunk(b"pHYs", struct.pack(">IIB", ppm, ppm, 1)))
    out.append(chunk(b"IDAT", zlib.compress(rows.tobytes(), 3)))
    out.append(chunk(b"IEND", b""))
    return b"".join(out)


def _save_png_rgb(fig: Figure, path) -> None:
    """Rasterise once with Agg and write an RGB PNG (``png_bytes``; no alpha channel, so
    the PDF embeds the image data directly, without a soft mask)."""
    from pathlib import Path

    from matplotlib.backends.backend_agg import FigureCanvasAgg

    dpi = png_dpi(fig)
    fig.set_dpi(dpi)
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    rgba = np.asarray(canvas.buffer_rgba())
    Path(path).write_bytes(png_bytes(rgba[..., :3], dpi))


def save(drawn: Drawn, folder, formats: tuple[str, ...] = ("png",)) -> list[str]:
    """Draw the figure once per format into ``<name>.<ext>``; return the file names.

    Metadata dates are left out so the same input gives the same files.
    """
    from pathlib import Path

    folder = Path(folder)
    names = []
    for ext in formats:
        path = folder / f"{drawn.name}.{ext}"
        if ext == "png":
            _save_png_rgb(drawn.fig, path)
            names.append(path.name)
            continue
        meta = (
            {"Date": None}
            if ext == "svg"
            else {"Software": None}
            if ext == "png"
            else {"CreationDate": None}
        )
        drawn.fig.savefig(path, format=ext, metadata=meta, dpi=png_dpi(drawn.fig))
        names.append(path.name)
    return names
