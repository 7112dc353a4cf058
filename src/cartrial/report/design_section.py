"""The optional "Trial design and safety monitoring" section (setting ``design``).

Every number comes from :mod:`cartrial.design`: the decision table of the design
(BOIN: Liu & Yuan, J R Stat Soc C 2015;64:507, boundaries as tabulated by Yuan et al.,
Clin Cancer Res 2016;22:4291, Table 1; 3+3: Storer, Biometrics 1989;45:925; CRM:
O'Quigley et al., Biometrics 1990;46:33 with the Lee & Cheung 2009 skeleton), its
operating characteristics by simulation (``cartrial.design.simulate``, one seed for every
scenario), the DLT table and next-dose recommendation from the cohort
(``cartrial.design.monitor.next_dose_recommendation``: a recommendation naming the rule
that fired, never an action) and the DSMB boundary status (``dsmb_summary``, Thall,
Simon & Estey, Stat Med 1995;14:357).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from cartrial.design import simulate as S
from cartrial.design.escalation import BOIN, CRM, ThreePlusThree, crm_skeleton
from cartrial.design.monitor import dose_label, dsmb_summary, next_dose_recommendation
from cartrial.design.simulate import plot_operating_characteristics
from cartrial.report.document import TableItem
from cartrial.report.figures import Drawn

if TYPE_CHECKING:  # pragma: no cover
    from cartrial.cohort import Cohort

SECTION = "design"
NOT_AN_ACTION = "recommendation, not an action"


def make_design(d: dict[str, Any]):
    """The design object of the (checked) ``design`` setting."""

    nd = len(d["doses"])
    if d["method"] == "BOIN":
        return BOIN(d["target"], nd, d["cohort_size"], d["n_cohorts"])
    if d["method"] == "CRM":
        skel = d["skeleton"] or tuple(
            crm_skeleton(
                min(0.05, d["target"] / 2, (1 - d["target"]) / 2), d["target"], nd // 2, nd
            )
        )
        return CRM(tuple(float(s) for s in skel), d["target"], d["cohort_size"], d["n_cohorts"])
    return ThreePlusThree(nd)


def simulate(design: Any, d: dict[str, Any], p_true: Any):
    """Operating characteristics of ``design`` for one scenario (seed ``d['seed']``)."""

    n, seed = d["trials"], d["seed"]
    if d["method"] == "BOIN":
        return S.simulate_boin(design, p_true, n, seed)
    if d["method"] == "CRM":
        return S.simulate_crm(design, p_true, n, seed)
    return S.simulate_3plus3(design, p_true, n, seed, target=d["target"])


def dose_labels(doses: Any) -> list[str]:

    return [dose_label(x) for x in doses]


def decision_table(design: Any, d: dict[str, Any]) -> tuple[pd.DataFrame, str]:
    """(table, footnote) of the design's rules for the target and cohort size."""
    if d["method"] == "BOIN":
        lam_e, lam_d = design.boundaries
        note = (
            f"BOIN (Liu & Yuan 2015) for target {d['target']:g}: λe = {lam_e:.3f}, "
            f"λd = {lam_d:.3f} (φ1 = 0.6φ, φ2 = 1.4φ). With n patients at the current "
            "dose: escalate if DLTs ≤ the escalation count, de-escalate if ≥ the "
            "de-escalation count, eliminate that dose and all higher doses if ≥ the "
            f"elimination count (P(rate > {d['target']:g} | data) > 0.95, Beta(1, 1) "
            "prior; n ≥ 3); otherwise stay. Blank: no elimination possible."
        )
        return design.decision_table(), note
    if d["method"] == "CRM":
        df = pd.DataFrame(
            {
                "dose": np.arange(1, len(d["doses"]) + 1),
                "label": dose_labels(d["doses"]),
                "cells_per_kg": list(d["doses"]),
                "skeleton": list(design.skeleton),
            }
        )
        note = (
            f"CRM (O'Quigley et al. 1990), power model p = skeleton^exp(a), "
            f"a ~ N(0, {design.prior_var:g}); next dose: posterior DLT rate closest to "
            f"{d['target']:g}, at most one level up; stop if P(p1 > {d['target']:g} | "
            f"data) > {design.stop_cutoff:g}. Skeleton: "
            + (
                "as set."
                if d["skeleton"]
                else f"Lee & Cheung 2009, prior MTD at dose {len(d['doses']) // 2 + 1}."
            )
        )
        return df, note
    rows = [
        (3, "0", "escalate (stop at the highest dose: MTD = highest)"),
        (3, "1", "treat 3 more at this dose"),
        (3, "≥ 2", "stop: MTD = the dose below"),
        (6, "≤ 1", "escalate (stop at the highest dose: MTD = highest)"),
        (6, "≥ 2", "stop: MTD = the dose below"),
    ]
    df = pd.DataFrame(rows, columns=["n_at_dose", "dlt", "decision"])
    return df, "3+3 design A (Storer 1989; Le Tourneau et al. 2009), cohorts of 3."


def oc_tables(results: list[Any], d: dict[str, Any]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(per dose, per scenario) operating characteristics of the simulated scenarios."""
    labels = [*dose_labels(d["doses"]), "none"]
    per_dose, per_scen = [], []
    for i, oc in enumerate(results, 1):
        s = oc.summary()
        s.insert(0, "scenario", i)
        s.insert(2, "label", labels)
        per_dose.append(s)
        m = oc.metrics()
        per_scen.append(
            {
                "scenario": i,
                "p_true": ", ".join(f"{p:g}" for p in oc.p_true),
                "true_mtd": oc.true_mtd + 1,
                **{k: v for k, v in m.items() if k != "n_trials"},
                "n_trials": int(m["n_trials"]),
                "max_mc_se": float(oc.selection_se.max()),
            }
        )
    return pd.concat(per_dose, ignore_index=True), pd.DataFrame(per_scen)


def dsmb_table(summary: dict[str, Any]) -> pd.DataFrame:
    """The DSMB summary as rows (item, value)."""
    rows: list[tuple[str, Any]] = [
        ("enrolled", summary["enrolled"]),
        ("infused", summary["infused"]),
        ("DLT-evaluable", summary["dlt_evaluable"]),
        ("DLTs", summary["dlt"]),
    ]
    rows += [(f"DLTs: {k}", v) for k, v in summary["dlt_by_rule"].items()]
    rows += [
        ("patients with grade ≥ 3 CRS", summary["crs_grade3plus"]),
        ("patients with grade ≥ 3 ICANS", summary["icans_grade3plus"]),
        ("deaths", summary["deaths"]),
    ]
    rows += [(f"deaths: {k}", v) for k, v in summary["deaths_by_cause"].items()]
    b = summary["boundary"]
    rows += [
        ("DLT boundary: rule", b["rule"]),
        ("DLT boundary: posterior probability", round(b["posterior_prob"], 4)),
        ("DLT boundary: stop signal at DLT count", b["stop_at_dlt_count"]),
        (
            "DLT boundary: status",
            "STOP SIGNAL (for DSMB review)" if b["stop_signal"] else "not crossed",
        ),
    ]
    t = summary["crs3_or_nrm_day100"]
    rows += [
        ("CRS ≥ 3 or NRM by day 100: rule", t["rule"]),
        ("CRS ≥ 3 or NRM by day 100: events / evaluable", f"{t['events']}/{t['evaluable']}"),
        ("CRS ≥ 3 or NRM by day 100: posterior probability", round(t["posterior_prob"], 4)),
        (
            "CRS ≥ 3 or NRM by day 100: status",
            "STOP SIGNAL (for DSMB review)" if t["stop_signal"] else "not crossed",
        ),
    ]
    return pd.DataFrame({"item": [r[0] for r in rows], "value": [str(r[1]) for r in rows]})


def design_section(
    cohort: Cohort, d: dict[str, Any], saf_text: str
) -> tuple[list[TableItem], list[Drawn], list[str], str]:
    """(tables, figures, section notes, methods paragraph) of the section."""

    design = make_design(d)
    tables: list[TableItem] = []
    figures: list[Drawn] = []
    notes: list[str] = []
    rules, rules_note = decision_table(design, d)
    tables.append(
        TableItem(
            "design_decision_table",
            f"{d['method']} decision table",
            rules,
            SECTION,
            rules_note,
            population=f"Design: {len(d['doses'])} doses, target DLT rate {d['target']:g}.",
        )
    )
    results = [simulate(design, d, sc) for sc in d["scenarios"]]
    per_dose, per_scen = oc_tables(results, d)
    n = d["trials"]
    sim_pop = (
        f"Population: simulated trials, N = {n} per scenario (seed {d['seed']}, the "
        "same random numbers for every scenario)."
    )
    se_note = (
        f"Monte-Carlo SE of a probability P: sqrt(P(1 − P)/{n}); at most "
        f"{per_scen['max_mc_se'].max():.4f} here."
    )
    tables.append(
        TableItem(
            "design_oc",
            "Operating characteristics by dose",
            per_dose,
            SECTION,
            "p_select: probability the dose is selected as MTD ('none': no MTD, stopped for "
            "toxicity); mc_se: its Monte-Carlo SE; mean_patients / mean_dlt: per simulated "
            f"trial. {se_note}",
            population=sim_pop,
        )
    )
    tables.append(
        TableItem(
            "design_oc_summary",
            "Operating characteristics by scenario",
            per_scen,
            SECTION,
            "true_mtd: dose with true DLT rate closest to the target; p_correct: P(select the "
            "true MTD); p_select_above_mtd: P(select a dose above it); p_stop_early: P(stop for "
            "toxicity, no MTD); mean_trial_size: mean patients per trial; "
            f"pct_patients_above_mtd: % of patients treated above the true MTD. {se_note}",
            population=sim_pop,
        )
    )
    for i, oc in enumerate(results, 1):
        fig = plot_operating_characteristics([oc], [d["method"]])
        figures.append(
            Drawn(
                f"design_oc_scenario{i}",
                f"Operating characteristics, scenario {i}",
                fig,
                data=per_dose[per_dose["scenario"] == i].reset_index(drop=True),
                info={"scenario": i, "p_true": list(map(float, oc.p_true))},
                caption=f"{sim_pop} True DLT rates {', '.join(f'{p:g}' for p in oc.p_true)}; "
                "bars: P(selected as MTD) with 95% Monte-Carlo intervals (±1.96 SE), and mean "
                "patients treated per dose.",
            )
        )
    try:
        rec = next_dose_recommendation(cohort, design, list(d["doses"]))
    except ValueError as exc:
        notes.append(f"No next-dose recommendation from the cohort: {exc}.")
        rec = None
    if rec is not None:
        dec = rec.decision
        labels = rec.dlt_table["label"].tolist()
        tables.append(
            TableItem(
                "design_dlt",
                "Dose-limiting toxicities by dose",
                rec.dlt_table,
                SECTION,
                "DLT from graded AEs in the day 0–28 window (cartrial.design.dlt default rules); "
                "evaluable: infused and followed through the window, or had a DLT; "
                "dlt_unknown: evaluable with an AE grade missing (not counted). Patients at "
                "other doses than the design's are left out.",
                population=saf_text,
            )
        )
        rec_df = pd.DataFrame(
            [
                {
                    "current_dose": labels[rec.current_dose],
                    "action": dec.action,
                    "next_dose": "none (stop)" if dec.next_dose is None else labels[dec.next_dose],
                    "rule": dec.rule,
                    "eliminated": ", ".join(labels[i] for i in dec.eliminated),
                    "mtd_if_stopped_now": ""
                    if rec.mtd_if_stopped_now is None
                    else labels[rec.mtd_if_stopped_now],
                    "status": NOT_AN_ACTION,
                }
            ]
        )
        tables.append(
            TableItem(
                "design_recommendation",
                "Next-dose recommendation",
                rec_df,
                SECTION,
                f"A {NOT_AN_ACTION}: the {d['method']} rule applied to the DLT table above at "
                "the current dose (the dose of the last infused patient); the trial team and "
                "DSMB decide.",
                population=saf_text,
            )
        )
        notes.append(
            rec.text.replace("Recommendation (not an action)", f"Next-dose {NOT_AN_ACTION}")
        )
    summary = dsmb_summary(cohort, d["dsmb_threshold"], d["dsmb_cutoff"])
    tables.append(
        TableItem(
            "design_dsmb",
            "DSMB safety summary and boundary status",
            dsmb_table(summary),
            SECTION,
            "Bayesian beta-binomial boundaries (Thall, Simon & Estey 1995): a stop "
            "signal is for the DSMB to review, never an automatic stop.",
            population=saf_text,
        )
    )
    methods = (
        f"Trial design: {d['method']} with target DLT rate {d['target']:g}, "
        + (
            f"cohorts of {d['cohort_size']}, at most {d['n_cohorts']} cohorts, "
            if d["method"] != "3+3"
            else ""
        )
        + f"{len(d['doses'])} doses ({', '.join(dose_labels(d['doses']))}); operating "
        f"characteristics from {n} simulated trials per scenario (cartrial.design.simulate, "
        f"seed {d['seed']}). The next-dose recommendation applies the design's rule to the "
        "cohort's DLTs; it names the rule that fired and is not an action."
    )
    return tables, figures, notes, methods
