"""The kinetics section of the trial report: tables and figures from one ``Cohort``.

``kinetics_section(cohort)`` returns a ``KineticsSection`` the report layer renders:

* ``nca_table`` — NCA per patient and CAR-T analyte (qPCR copies/µg and flow cells/µL are
  analysed separately, never pooled);
* ``nca_summary`` — median (range), IQR, geometric mean and CV% per analyte (and group);
* ``persistence`` — share still detectable at months 3/6/12;
* ``model_table`` — Stein et al. 2019 multiphasic model fit per patient;
* ``reconstitution_table`` and ``recovery_incidence`` — depletion/recovery per patient and
  analyte, cumulative incidence of recovery with competing events;
* ``population_typical``, ``population_variability``, ``population_covariates``,
  ``population_individual`` — the population model, when ``population_model=True``;
* ``figures`` — {name: matplotlib Figure} (with the population model: observed vs predicted
  and a VPC, ``<analyte>_population_obs_vs_pred`` and ``<analyte>_population_vpc``);
* ``notes`` — how the numbers were made (BLQ rule, AUC method, reference-range version) and
  what was missing.

A cohort without kinetics observations gives empty tables, no figures and a note.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any, ClassVar

from cartrial.kinetics import figures as F
from cartrial.kinetics._obs import BLQ_TEXT_RULE, canonical_analytes
from cartrial.kinetics.model import fit_table
from cartrial.kinetics.nca import (
    PERSISTENCE_WINDOWS,
    nca_table,
    persistence_footnote,
    persistence_rates,
    summarise_nca,
)
from cartrial.kinetics.population import fit_population_cohort, settings_text
from cartrial.kinetics.reconstitution import (
    RECONSTITUTION_ANALYTES,
    reconstitution_table,
    recovery_incidence,
)

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd
    from matplotlib.figure import Figure

    from cartrial.cohort.model import Cohort

CART_ANALYTES = ("cart_qpcr", "cart_flow")


@dataclass
class KineticsSection:
    """The kinetics part of the report, typed (the tables listed in the module docstring;
    a population-model table is None unless that model was fitted)."""

    nca_table: pd.DataFrame
    nca_summary: pd.DataFrame
    persistence: pd.DataFrame
    model_table: pd.DataFrame
    reconstitution_table: pd.DataFrame
    recovery_incidence: pd.DataFrame
    figures: dict[str, Figure] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    population_typical: pd.DataFrame | None = None
    population_variability: pd.DataFrame | None = None
    population_covariates: pd.DataFrame | None = None
    population_individual: pd.DataFrame | None = None
    #: the population fit itself (``population.PopulationFit``), for diagnostics
    population_fit: Any = None

    #: the tables in report order
    TABLES: ClassVar[tuple[str, ...]] = (
        "nca_summary",
        "nca_table",
        "persistence",
        "model_table",
        "population_typical",
        "population_variability",
        "population_covariates",
        "population_individual",
        "recovery_incidence",
        "reconstitution_table",
    )

    @classmethod
    def of(cls, parts: Mapping[str, Any]) -> KineticsSection:
        """From the named parts built by ``kinetics_section`` (unknown names refused)."""
        names = {f.name for f in fields(cls)}
        unknown = set(parts) - names - {"population_figures"}
        if unknown:
            raise ValueError(f"not parts of the kinetics section: {sorted(unknown)}")
        return cls(**{k: v for k, v in parts.items() if k in names})

    def tables(self) -> dict[str, pd.DataFrame]:
        """The tables that were made (population-model ones only when fitted), in order."""
        out = {}
        for name in self.TABLES:
            table = getattr(self, name)
            if table is not None:
                out[name] = table
        return out


def kinetics_section(
    cohort: Cohort,
    group: str | None = None,
    fit_model: bool = True,
    n_jobs: int = 1,
    auc_method: str = "linear-up/log-down",
    blq_after: str = "pknca",
    population: str = "auto",
    figures: bool = True,
    persistence_windows: Mapping[float, float] | None = None,
    population_model: bool = False,
    population_options: Mapping[str, Any] | None = None,
) -> KineticsSection:
    """Tables and figures of CAR-T kinetics and immune reconstitution for ``cohort``.

    ``group``: a patients column (e.g. ``dose_level``) to summarise and plot by.
    ``blq_after``: BLQ rule of the NCA (default PKNCA's; see ``nca``).
    ``persistence_windows``: landmark day -> visit-window half-width (default ± 14 d at months
    3 and 6, ± 30 d at month 12); the footnote stating them is added to ``notes``.
    ``population_model``: also fit the population model (``population.fit_population_cohort``
    on the qPCR, else flow, profiles; about a minute for 60 patients) and add its tables
    (``population_typical``, ``population_variability``, ``population_covariates``,
    ``population_individual``) and diagnostic figures (observed vs predicted, VPC);
    ``population_options`` are passed to it (e.g. ``{"seed": 1, "num_samples": 1000}``).
    """
    import pandas as pd

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
        return KineticsSection.of(out)
    if group and group not in patients.columns:
        notes.append(f"group column {group!r} not in patients: not grouped")
        group = None

    if cart:
        parts = [nca_table(obs, a, auc_method=auc_method, blq_after=blq_after) for a in cart]
        n_text = sum(p.attrs["nca_options"]["n_blq_text"] for p in parts)
        nca = pd.concat(parts, ignore_index=True)
        if n_text:
            notes.append(f"{n_text} value(s) given as text were read as BLQ; rule: {BLQ_TEXT_RULE}")
        if group:
            nca = nca.merge(patients[["patient_id", group]], on="patient_id", how="left")
        out["nca_table"] = nca
        keys = ["analyte", group] if group else ["analyte"]
        out["nca_summary"] = summarise_nca(nca, group=keys)
        landmarks = tuple(persistence_windows or PERSISTENCE_WINDOWS)
        out["persistence"] = pd.concat(
            [
                persistence_rates(
                    nca.loc[nca["analyte"] == a], landmarks, windows=persistence_windows
                ).assign(analyte=a)
                for a in cart
            ],
            ignore_index=True,
        )
        blq_text = (
            "PKNCA's default (first BLQ kept as 0, BLQ between quantifiable values dropped, "
            "BLQ after the last quantifiable value kept as 0)"
            if blq_after == "pknca"
            else f"BLQ before the first quantifiable value = 0, after it: {blq_after}"
        )
        notes.append(
            f"NCA: AUC {auc_method}; BLQ rule: {blq_text}; partial AUCs not extrapolated "
            "past the last sample; λz flagged when adjusted R² < 0.9 or span < 2 half-lives "
            "(PKNCA limits)"
        )
        notes.append(persistence_footnote(landmarks, persistence_windows))
        if fit_model:
            out["model_table"] = pd.concat(
                [fit_table(obs, a, n_jobs=n_jobs) for a in cart], ignore_index=True
            )
            n_ne = int((~out["model_table"]["estimable"].astype(bool)).sum())
            notes.append(
                "multiphasic model: Stein et al., CPT Pharmacometrics Syst Pharmacol "
                f"2019;8:285; {n_ne} profile(s) not estimable (reason per patient)"
            )
        if population_model:
            _population_part(cohort, cart[0], out, dict(population_options or {}), figures)
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
        out["figures"].update(out.pop("population_figures", {}))
    return KineticsSection.of(out)


def _population_part(
    cohort: Cohort, analyte: str, out: dict[str, Any], options: dict[str, Any], figures: bool
) -> None:
    """Population-model tables, notes and figures into ``out`` (a note when it cannot run)."""

    options.setdefault("progress", False)
    try:
        fit = fit_population_cohort(cohort, analyte, **options)
    except ValueError as exc:
        out["notes"].append(f"population model not fitted: {exc}")
        return
    out["population_typical"] = fit.typical
    out["population_variability"] = fit.variability
    out["population_covariates"] = fit.covariates
    out["population_individual"] = fit.individual
    out["population_fit"] = fit
    out["notes"].extend(fit.notes)
    out["notes"].append(f"population model settings: {settings_text(fit)}")
    if figures:
        from cartrial.kinetics import figures as F

        out["population_figures"] = {
            f"{analyte}_population_obs_vs_pred": F.population_obs_pred(fit),
            f"{analyte}_population_vpc": F.population_vpc(fit, seed=fit.diagnostics["seed"]),
        }


def _figures(obs, patients, cart, recon_analytes, nca, group) -> dict[str, Any]:

    figs: dict[str, Any] = {}
    for a in cart:
        figs[f"{a}_spaghetti"] = F.spaghetti_plot(obs, a, group=group, patients=patients)
        figs[f"{a}_median_iqr"] = F.median_iqr_plot(obs, a, group=group, patients=patients)
        if group and len(nca):
            figs[f"{a}_cmax_by_{group}"] = F.peak_boxplot(nca.loc[nca["analyte"] == a], group)
    if recon_analytes:
        panel = [a for a in F.KINETICS_PANEL_ANALYTES if a in recon_analytes] or recon_analytes
        figs["reconstitution_panels"] = F.reconstitution_panels(obs, panel, patients=patients)
    return figs
