"""The report's methods text: endpoint definitions (from the objects the derivation
evaluates), analysis methods stated from the settings, software versions and the data
cut-off date."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pandas as pd

from cartrial import __version__
from cartrial.endpoints import last_known_alive
from cartrial.endpoints.definitions import ENDPOINTS
from cartrial.endpoints.populations import POPULATIONS
from cartrial.report import tables as T

if TYPE_CHECKING:  # pragma: no cover
    from cartrial.cohort import Cohort
    from cartrial.report.settings import ReportSettings


def endpoint_definitions(settings: ReportSettings | None = None) -> list[tuple[str, str]]:
    """(name, definition) from ``cartrial.endpoints.definitions.ENDPOINTS`` and the user's
    ``endpoint_definitions`` (the objects ``derive_endpoints`` evaluates), so the report
    states exactly what the code does."""

    user = settings.user_endpoints() if settings is not None else {}
    return [
        (f"{d.label} ({name})", d.definition_text()) for name, d in {**ENDPOINTS, **user}.items()
    ]


def software_versions() -> str:
    """'cartrial 0.x, Python 3.12.1, NumPy …' for the methods."""
    import platform
    from importlib.metadata import PackageNotFoundError, version

    parts = [f"cartrial {__version__}", f"Python {platform.python_version()}"]
    for dist, name in (
        ("numpy", "NumPy"),
        ("pandas", "pandas"),
        ("scipy", "SciPy"),
        ("statsmodels", "statsmodels"),
        ("matplotlib", "Matplotlib"),
        ("reportlab", "ReportLab"),
        ("python-docx", "python-docx"),
    ):
        try:
            parts.append(f"{name} {version(dist)}")
        except PackageNotFoundError:  # pragma: no cover - declared dependencies
            continue
    return ", ".join(parts)


def data_cutoff(cohort: Cohort) -> str:
    """The latest calendar date the data reach (infusion date + last day known), or a
    statement that the cohort records days only."""
    p = cohort.patients
    if "infusion_date" not in p.columns or not p["infusion_date"].notna().any():
        return "not recorded (the cohort gives days since infusion, no calendar dates)"

    last = last_known_alive(cohort)["day"]
    inf = pd.to_datetime(p.set_index(p["patient_id"].astype(str))["infusion_date"])
    days = last.reindex(inf.index).fillna(0.0)
    dates = inf + pd.to_timedelta(days.to_numpy(dtype=float), unit="D")
    return pd.Timestamp(dates.max()).strftime("%Y-%m-%d")


def methods_text(
    settings: ReportSettings, layout: str, ae_notes: list[str], cohort: Cohort | None = None
) -> list[str]:
    ci = f"{100 * settings.conf_level:g}%"
    w0, w1 = settings.response_window
    opts = []
    if settings.censor_at_sct:
        opts.append(
            "PFS, EFS, DFS, DOR, CIR and NRM censored at consolidation SCT (sensitivity "
            "analysis, ELN 2022)"
        )
    if settings.censor_at_new_therapy:
        opts.append("censored at new therapy")
    if not settings.efs_nonresponse_event:
        opts.append("EFS does not count non-response as an event")
    median_ci = (
        "where the pointwise band curves cross 50% (R survfit's rule)"
        if settings.km_ci_method == "bands"
        else "by Brookmeyer–Crowley (the times whose band contains 50%)"
    )

    pops = "; ".join(f"{p.label}: {p.rule}" for p in POPULATIONS.values())
    paras = [
        "Time origin is the CAR-T infusion (day 0; duration of response starts at the first "
        "response); months are days / 30.4375. Analysis populations, decided in one place "
        f"(cartrial.endpoints.populations): {pops} Every table and figure states its "
        "population and denominator.",
        f"Response is the best response assessed on days {T._sig(w0)}–{T._sig(w1)} after "
        "infusion (NCCN ALL / ELN 2022 categories). ORR = CR + CRi + CRh + MLFS + PR (and "
        "objective responses not further specified); CR/CRi rate = CR + CRi + CRh; MRD-negative "
        "= flow MRD below 10⁻⁴. Denominator: every infused patient (not assessed counts as "
        f"non-response). {ci} confidence intervals by the {settings.proportion_ci} method.",
        "Time-to-event endpoints: Kaplan–Meier estimates with Greenwood variance and "
        f"{ci} pointwise confidence intervals on the {settings.km_conf_type} scale; median "
        f"intervals {median_ci} (NR = not reached); median follow-up by the "
        "reverse Kaplan–Meier method (Schemper & Smith 1996); groups compared by the "
        "log-rank test; hazard ratios by univariable Cox regression (Efron ties; Wald "
        "intervals and p). Relapse and non-relapse mortality as competing risks by the "
        "Aalen–Johansen estimator with log(−log) intervals, groups compared by Gray's test. "
        "Landmarks at " + ", ".join(T._sig(t) for t in settings.landmarks_months) + " months.",
        "Adverse events are counted once per patient and term at the worst grade (CTCAE v5; "
        f"CRS and ICANS by ASTCT 2019), in windows: onset before day "
        f"{T._sig(settings.ae_window_days)}; onset on or after day "
        f"{T._sig(settings.ae_window_days)} among patients still under observation on that "
        "day (alive and followed at least that long), whose number is the stated "
        "denominator; and any time.",
        "Consolidation SCT is an allogeneic SCT given in remission before any relapse "
        "(cartrial.endpoints.sct); comparisons by it are among patients in CR/CRi. Comparing "
        "groups defined by an event after infusion from day 0 gives the transplanted group "
        "immortal time (they had to survive relapse-free until their SCT), which biases the "
        "comparison in their favour; the report therefore shows landmark and time-dependent "
        "analyses where available and labels the comparison from infusion as naive.",
    ]
    if opts:
        paras.append("Endpoint options: " + "; ".join(opts) + ".")
    if layout == "wide":
        paras.append(
            "The input is a wide per-patient table: only the endpoints it states "
            "(e.g. OS from follow-up and vital status) are analysed; relapse dates and "
            "AE grades below 3 are not in such tables."
        )
    paras += ae_notes
    cut = data_cutoff(cohort) if cohort is not None else "not stated"
    paras.append(f"Data cut-off: {cut}. Software: {software_versions()}.")
    return paras
