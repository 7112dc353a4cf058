"""Comparisons by an event after infusion (consolidation SCT) without immortal-time bias.

Comparing PFS by consolidation SCT from day 0 credits the transplanted group with the
time they had to survive relapse-free to reach their SCT (immortal-time bias; Suissa,
Am J Epidemiol 2008;167:492). The report shows, among patients in CR/CRi:

- the **naive** comparison from infusion (log-rank), labelled as such;
- a **landmark** analysis at ``settings.landmark_day`` (default: median day of SCT among
  those transplanted), patients who failed or were censored before it excluded and counted
  (Anderson, Cain & Gelber, J Clin Oncol 1983;1:710);
- a **time-dependent Cox** model with SCT as a time-varying covariate (counting-process
  data, R ``survival::tmerge`` + ``coxph``) and the **Mantel–Byar** test (Mantel & Byar,
  JASA 1974;69:81);
- a **Simon–Makuch** plot (Simon & Makuch, Stat Med 1984;3:35);
- the **Fine–Gray** subdistribution hazard ratio for relapse with NRM as the competing
  risk (Fine & Gray, JASA 1999;94:496; R ``cmprsk::crr``).

The statistics are ``cartrial.stats`` functions (checked against R there); this module
only arranges them. Without them (an older ``cartrial.stats``) the section says so.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from cartrial.cohort.units import DAYS_PER_MONTH
from cartrial.report import figures as F
from cartrial.report import labels as L
from cartrial.report.document import TableItem, time_axis_label
from cartrial.report.palette import PALETTE
from cartrial.report.tables import cox_fit
from cartrial.stats import logrank_test
from cartrial.stats.finegray import fine_gray, meaning_text
from cartrial.stats.timedep import (
    counting_process,
    landmark_analysis,
    mantel_byar,
    simon_makuch,
    timedep_cox,
)

if TYPE_CHECKING:  # pragma: no cover
    from cartrial.cohort import Cohort
    from cartrial.report.figures import Drawn
    from cartrial.report.settings import ReportSettings

ENDPOINT = "PFS"


def _stats() -> dict[str, Any]:
    """The post-infusion methods of ``cartrial.stats``."""

    return {
        "landmark_analysis": landmark_analysis,
        "timedep_cox": timedep_cox,
        "mantel_byar": mantel_byar,
        "simon_makuch": simon_makuch,
        "fine_gray": fine_gray,
        "counting_process": counting_process,
        "meaning_text": meaning_text,
    }


def cr_frame(
    endpoints: pd.DataFrame, patients: pd.DataFrame, pops: pd.DataFrame, endpoint: str = ENDPOINT
) -> pd.DataFrame:
    """CR/CRi patients with the endpoint's time/event and their consolidation SCT day
    (NaN without consolidation SCT)."""
    cr = set(pops.loc[pops["complete_remission"].to_numpy(dtype=bool), "patient_id"].astype(str))
    d = endpoints[
        (endpoints["endpoint"] == endpoint) & endpoints["patient_id"].astype(str).isin(cr)
    ]
    d = d.assign(patient_id=d["patient_id"].astype(str)).set_index("patient_id")
    pt = patients.assign(patient_id=patients["patient_id"].astype(str)).set_index("patient_id")
    out = pd.DataFrame({"time_days": d["time_days"].astype(float), "event": d["event"].astype(int)})
    out["consolidation"] = pt["sct_consolidation"].reindex(out.index).eq("yes").fillna(False)
    out["sct_day"] = pt["sct_day"].reindex(out.index) if "sct_day" in pt.columns else np.nan
    return out


def section(
    cohort: Cohort,
    endpoints: pd.DataFrame,
    patients: pd.DataFrame,
    pops: pd.DataFrame,
    settings: ReportSettings,
) -> tuple[list[TableItem], list[Drawn], list[str]]:
    """Tables, figures and notes of the "comparisons by an event after infusion" section."""
    if "sct_consolidation" not in patients.columns:
        return (
            [],
            [],
            [
                "Consolidation SCT is not recorded or derivable for this cohort: no "
                "comparison by it."
            ],
        )
    if cohort.layout != "tables" or "sct_day" not in patients.columns:
        return (
            [],
            [],
            [
                "The day of consolidation SCT is not in the data (a wide per-patient table): "
                "only the naive comparison from infusion can be shown, and it is biased in "
                "favour of SCT (immortal time). Landmark and time-dependent analyses need the "
                "SCT day."
            ],
        )
    return _full_section(cohort, endpoints, patients, pops, settings, _stats())


IMMORTAL_TIME = (
    "Comparing groups defined by an event after infusion from day 0 credits the "
    "transplanted group with the time they had to survive relapse-free until their SCT "
    "(immortal-time bias), so the naive comparison favours SCT; the landmark and "
    "time-dependent analyses do not."
)


def _full_section(
    cohort: Cohort,
    endpoints: pd.DataFrame,
    patients: pd.DataFrame,
    pops: pd.DataFrame,
    settings: ReportSettings,
    fns: dict[str, Any],
) -> tuple[list[TableItem], list[Drawn], list[str]]:
    """PFS by consolidation SCT among CR/CRi patients, five ways (see the module doc)."""

    d = cr_frame(endpoints, patients, pops, ENDPOINT)
    notes: list[str] = []
    if d.empty or d["consolidation"].sum() == 0 or (~d["consolidation"]).sum() == 0:
        return (
            [],
            [],
            [
                "No comparison by consolidation SCT: among the patients in CR/CRi, "
                "one group (with or without consolidation SCT) is empty."
            ],
        )
    t = d["time_days"].to_numpy(dtype=float)
    e = d["event"].to_numpy(dtype=int)
    x = d["sct_day"].to_numpy(dtype=float)
    grp = d["consolidation"].to_numpy(dtype=bool)
    ids = d.index.to_numpy()
    n, n_sct = len(d), int(grp.sum())
    rows: list[dict[str, str]] = []
    cols = (
        "Method",
        "Patients (events)",
        f"HR ({100 * settings.conf_level:g}% CI)",
        "p",
        "What it compares",
    )

    def add(method: str, who: str, hr: str, p: str, what: str) -> None:
        rows.append(dict(zip(cols, (method, who, hr, p, what), strict=True)))

    # naive: groups fixed at day 0
    naive = cox_fit(t, e, pd.DataFrame({"x": grp.astype(float)}), settings.conf_level).summary.iloc[
        0
    ]
    lr = logrank_test(t, e, np.where(grp, "yes", "no")).p_value
    add(
        "Naive, from infusion (immortal-time bias)",
        f"{n} ({int(e.sum())}); SCT {n_sct}",
        fmt_hr(naive["hr"], naive["lower"], naive["upper"]),
        L.fmt_p(lr),
        "groups fixed at day 0 by a later event: biased in favour of SCT",
    )
    # landmark
    figs: list[Drawn] = []
    try:
        lm = fns["landmark_analysis"](
            t,
            e,
            x,
            landmark=settings.landmark_day,
            id=ids,
            conf_type=settings.km_conf_type,
            conf_level=settings.conf_level,
        )
    except ValueError as exc:
        notes.append(f"Landmark analysis not possible: {exc}.")
        lm = None
    if lm is not None:
        hr = lm.hr
        add(
            f"Landmark at day {lm.landmark:g}",
            f"{lm.n_included} ({int(lm.data['event'].sum())}); SCT {lm.n_exposed}; excluded "
            f"{lm.n_excluded_event} with an event, {lm.n_excluded_censored} censored by then",
            fmt_hr(*hr),
            L.fmt_p(lm.logrank.p_value),
            f"event-free on day {lm.landmark:g}: SCT by then vs not ({lm.landmark_source})",
        )
        dd = lm.data
        curves = [
            (
                lab,
                dd["time"].to_numpy()[dd["exposed"].to_numpy() == g],
                dd["event"].to_numpy()[dd["exposed"].to_numpy() == g],
            )
            for g, lab in ((1, "SCT by the landmark"), (0, "No SCT by the landmark"))
        ]
        drawn = F.km_figure(
            curves,
            settings,
            "landmark_pfs_by_sct",
            f"PFS from the day-{lm.landmark:g} landmark by consolidation SCT",
            "Progression-free survival",
            lm.logrank.p_value,
            xlabel=f"Time since the landmark, day {lm.landmark:g} ({settings.time_unit})",
        )
        drawn.caption = (
            f"Population: patients in CR/CRi event-free and followed on day "
            f"{lm.landmark:g}, N = {lm.n_included}. Landmark analysis: "
            f"{lm.rule}. " + drawn.caption
        )
        figs.append(drawn)
    # time-dependent Cox and Mantel–Byar on counting-process rows
    cp = fns["counting_process"](t, e, x, id=ids)
    td = fns["timedep_cox"](
        cp["start"],
        cp["stop"],
        cp["event"],
        cp[["exposure"]],
        conf_level=settings.conf_level,
        id=cp["id"],
    )
    r = td.summary.iloc[0]
    flag = getattr(td, "warning", None)
    add(
        "Time-dependent Cox (SCT as a time-varying covariate)",
        f"{n} ({int(e.sum())}); {len(cp)} intervals",
        "NE" if getattr(td, "monotone", False) else fmt_hr(r["hr"], r["lower"], r["upper"]),
        L.fmt_p(float(r["p"])),
        "hazard after SCT vs before/without SCT, at each time" + (f" ({flag})" if flag else ""),
    )
    mb = fns["mantel_byar"](cp["start"], cp["stop"], cp["event"], cp["exposure"])
    add(
        "Mantel–Byar test",
        f"{n} ({int(e.sum())})",
        "",
        L.fmt_p(mb.p_value),
        f"observed {mb.observed:g} vs expected {mb.expected:.1f} events after SCT",
    )
    try:
        sm = fns["simon_makuch"](
            cp["start"],
            cp["stop"],
            cp["event"],
            cp["exposure"],
            conf_type=settings.km_conf_type,
            conf_level=settings.conf_level,
        )
        figs.append(simon_makuch_figure(sm, cp, settings, mb.p_value))
    except ValueError as exc:
        notes.append(f"Simon–Makuch plot not possible: {exc}.")
    # Fine–Gray: relapse with NRM competing, among CR patients event-free at the landmark
    fg_note = _fine_gray_row(endpoints, d, lm, fns, settings, add)
    if fg_note:
        notes.append(fg_note)
    table = pd.DataFrame(rows, columns=list(cols))
    item = TableItem(
        "pfs_by_consolidation_sct",
        "Progression-free survival by consolidation SCT: naive, "
        "landmark and time-dependent analyses",
        table,
        "postinfusion",
        IMMORTAL_TIME + " HR > 1: higher hazard with SCT.",
        population=f"Population: patients in CR/CRi, N = {n} ({n_sct} with consolidation SCT).",
    )
    return [item], figs, notes


def _fine_gray_row(
    endpoints: pd.DataFrame,
    d: pd.DataFrame,
    lm: Any,
    fns: dict[str, Any],
    settings: ReportSettings,
    add,
) -> str:
    """Add the Fine–Gray row (relapse, NRM competing) at the landmark; return a note."""
    if lm is None:
        return "Fine–Gray regression not shown: it is fitted at the landmark, which failed."
    cir = (
        endpoints[endpoints["endpoint"] == "CIR"]
        .assign(patient_id=lambda f: f["patient_id"].astype(str))
        .set_index("patient_id")
    )
    L_day = float(lm.landmark)
    sub = cir.reindex(d.index)
    keep = (sub["time_days"] > L_day).to_numpy()
    if keep.sum() < 4:
        return "Fine–Gray regression not shown: too few patients after the landmark."
    tt = sub["time_days"].to_numpy(dtype=float)[keep] - L_day
    cc = sub["cause"].to_numpy(dtype=int)[keep]
    xx = (d["sct_day"].to_numpy(dtype=float)[keep] <= L_day).astype(float)
    if not (cc == 1).any() or xx.min() == xx.max():
        return "Fine–Gray regression not shown: no relapse, or one group, after the landmark."
    try:
        fg = fns["fine_gray"](tt, cc, xx, conf_level=settings.conf_level, event_name="relapse")
    except ValueError as exc:
        return f"Fine–Gray regression not possible: {exc}."
    r = fg.summary.iloc[0]
    add(
        f"Fine–Gray, relapse with NRM competing (landmark day {L_day:g})",
        f"{int(keep.sum())} ({fg.n_events} relapses, {fg.n_competing} NRM)",
        fmt_hr(r["hr"], r["lower"], r["upper"]),
        L.fmt_p(float(r["p"])),
        "subdistribution HR: " + fns["meaning_text"]("relapse"),
    )
    return ""


def simon_makuch_figure(
    sm: Any, cp: pd.DataFrame, settings: ReportSettings, p_value: float
) -> Drawn:
    """Simon–Makuch curves (not exposed / after SCT) with numbers at risk per state."""

    scale = settings.time_scale
    step = settings.risk_table_step_months * (
        1.0 if settings.time_unit == "months" else DAYS_PER_MONTH
    )
    t_max = float(cp["stop"].max()) / scale
    ticks = F.risk_times(max(t_max, step), step)
    total_h, rect = F._risk_layout(2, labels=["After consolidation SCT"])
    fig = F._new_figure(6.4, total_h)
    ax = fig.add_axes(rect)
    labels = {0: "No SCT (yet)", 1: "After consolidation SCT"}
    rows = []
    risk_counts, colours = [], []
    for i, state in enumerate((0, 1)):
        tab = sm.fits[state].table
        colour = PALETTE[i]
        xs = np.concatenate(
            [[0.0 if state == 0 else tab["time"].iloc[0] / scale], tab["time"].to_numpy() / scale]
        )
        ys = np.concatenate([[1.0], tab["survival"].to_numpy()])
        ax.step(xs, ys, where="post", color=colour, lw=1.4, label=labels[state])
        z = cp["exposure"].to_numpy() == state
        a = cp["start"].to_numpy()[z] / scale
        b = cp["stop"].to_numpy()[z] / scale
        counts = [
            int(((a < tt) & (tt <= b)).sum()) if tt > 0 else int(((a <= 0) & (b > 0)).sum())
            for tt in ticks
        ]
        risk_counts.append(counts)
        colours.append(colour)
        rows += [
            {"state": labels[state], "time": float(tt), "n_at_risk": nr}
            for tt, nr in zip(ticks, counts, strict=True)
        ]
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlim(-0.02 * ticks[-1], ticks[-1] * 1.02 + 1e-9)
    ax.set_xticks(ticks)
    ax.tick_params(labelbottom=True)
    ax.yaxis.set_major_formatter(F._percent())
    ax.set_ylabel("Progression-free survival")
    ax.set_xlabel(time_axis_label(None, settings.time_unit))
    title = "Simon–Makuch plot: PFS by consolidation SCT as it happens (CR/CRi patients)"
    ax.set_title(title, loc="left")
    ax.legend(loc="lower left", frameon=False)
    F._p_text(ax, "Mantel–Byar", p_value)
    F._risk_rows(ax, 3.0, [labels[0], labels[1]], ticks, risk_counts, colours)
    return F.Drawn(
        "simon_makuch_pfs_by_sct",
        "Simon–Makuch plot of PFS by consolidation SCT",
        fig,
        pd.DataFrame(rows),
        {"p_value": p_value},
        caption=f"Population: patients in CR/CRi, N = {cp['id'].nunique()}. "
        + sm.caption
        + " Numbers at risk per state below the axis.",
    )


def fmt_hr(hr: float, lo: float, hi: float) -> str:
    if not (np.isfinite(hr) and np.isfinite(lo) and np.isfinite(hi)):
        return "NE"
    return f"{hr:.2f} ({lo:.2f}–{hi:.2f})"
