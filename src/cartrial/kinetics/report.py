"""The kinetics section of the trial report: tables and figures from one ``Cohort``.

``kinetics_section(cohort)`` returns a dict the report layer renders:

* ``nca_table`` — NCA per patient and CAR-T analyte (qPCR copies/µg and flow cells/µL are
  analysed separately, never pooled);
* ``nca_summary`` — median (range), IQR, geometric mean and CV% per analyte (and group);
* ``persistence`` — share still detectable at months 3/6/12;
* ``model_table`` — Stein et al. 2019 multiphasic model fit per patient;
* ``reconstitution_table`` and ``recovery_incidence`` — depletion/recovery per patient and
  analyte, cumulative incidence of recovery with competing events;
* ``figures`` — {name: matplotlib Figure};
* ``notes`` — how the numbers were made (BLQ rule, AUC method, reference-range version) and
  what was missing.

A cohort without kinetics observations gives empty tables, no figures and a note.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from cartrial.cohort.model import Cohort

CART_ANALYTES = ("cart_qpcr", "cart_flow")


def kinetics_section(
    cohort: Cohort,
    group: str | None = None,
    fit_model: bool = True,
    n_jobs: int = 1,
    auc_method: str = "linear-up/log-down",
    blq_after: str = "exclude",
    population: str = "auto",
    figures: bool = True,
) -> dict[str, Any]:
    """Tables and figures of CAR-T kinetics and immune reconstitution for ``cohort``.

    ``group``: a patients column (e.g. ``dose_level``) to summarise and plot by.
    """
    import pandas as pd

    from cartrial.kinetics._obs import canonical_analytes
    from cartrial.kinetics.model import fit_table
    from cartrial.kinetics.nca import nca_table, persistence_rates, summarise_nca
    from cartrial.kinetics.reconstitution import (
        RECONSTITUTION_ANALYTES,
        reconstitution_table,
        recovery_incidence,
    )

    obs = cohort.observations
    patients = cohort.patients
    notes: list[str] = []
    out: dict[str, Any] = {
        "nca_table": pd.DataFrame(),
        "nca_summary": pd.DataFrame(),
        "persistence": pd.DataFrame(),
        "model_table": pd.DataFrame(),
        "reconstitution_table": pd.DataFrame(),
        "recovery_incidence": pd.DataFrame(),
        "figures": {},
        "notes": notes,
    }
    present = set(canonical_analytes(obs["analyte"]).dropna()) if len(obs) else set()
    cart = [a for a in CART_ANALYTES if a in present]
    recon_analytes = [a for a in RECONSTITUTION_ANALYTES if a in present]
    if not cart and not recon_analytes:
        notes.append("no CAR-T kinetics or lymphocyte-subset observations in this cohort")
        return out
    if group and group not in patients.columns:
        notes.append(f"group column {group!r} not in patients: not grouped")
        group = None

    if cart:
        nca = pd.concat(
            [nca_table(obs, a, auc_method=auc_method, blq_after=blq_after) for a in cart],
            ignore_index=True,
        )
        if group:
            nca = nca.merge(patients[["patient_id", group]], on="patient_id", how="left")
        out["nca_table"] = nca
        keys = ["analyte", group] if group else ["analyte"]
        out["nca_summary"] = summarise_nca(nca, group=keys)
        out["persistence"] = pd.concat(
            [persistence_rates(nca.loc[nca["analyte"] == a]).assign(analyte=a) for a in cart],
            ignore_index=True,
        )
        notes.append(
            f"NCA: AUC {auc_method}; BLQ before the first quantifiable value = 0, "
            f"after it: {blq_after}; partial AUCs not extrapolated past the last "
            "sample"
        )
        if fit_model:
            out["model_table"] = pd.concat(
                [fit_table(obs, a, n_jobs=n_jobs) for a in cart], ignore_index=True
            )
            n_ne = int((~out["model_table"]["estimable"].astype(bool)).sum())
            notes.append(
                "multiphasic model: Stein et al., CPT Pharmacometrics Syst Pharmacol "
                f"2019;8:285; {n_ne} profile(s) not estimable (reason per patient)"
            )
    else:
        notes.append("no CAR-T (qPCR or flow) observations: NCA and model fits skipped")

    if recon_analytes:
        recon = reconstitution_table(obs, population=population, patients=patients)
        out["reconstitution_table"] = recon
        version = recon.attrs.get("reference_version")
        notes.append(
            f"reconstitution: reference ranges version {version}, population "
            f"{population}; recovery = first of 2 consecutive values at or above the "
            "lower limit of normal; B cells > 5% of lymphocytes"
        )
        inc = [recovery_incidence(recon, cohort.events, a) for a in recon_analytes]
        inc = [x for x in inc if len(x)]
        if inc:
            out["recovery_incidence"] = pd.concat(inc, ignore_index=True)

    if figures:
        out["figures"] = _figures(obs, patients, cart, recon_analytes, out["nca_table"], group)
    return out


def _figures(obs, patients, cart, recon_analytes, nca, group) -> dict[str, Any]:
    from cartrial.kinetics import figures as F

    figs: dict[str, Any] = {}
    for a in cart:
        figs[f"{a}_spaghetti"] = F.spaghetti_plot(obs, a, group=group, patients=patients)
        figs[f"{a}_median_iqr"] = F.median_iqr_plot(obs, a, group=group, patients=patients)
        if group and len(nca):
            figs[f"{a}_cmax_by_{group}"] = F.peak_boxplot(nca.loc[nca["analyte"] == a], group)
    if recon_analytes:
        panel = [a for a in F.KINETICS_PANEL_ANALYTES if a in recon_analytes] or recon_analytes
        figs["reconstitution_panels"] = F.reconstitution_panels(obs, panel)
    return figs
