"""Report settings: every choice the report makes, loadable from YAML/TOML and written back.

The report writes the full effective settings to ``settings.yaml`` in its output, so
``cartrial report COHORT --config OUTDIR/settings.yaml`` re-runs it identically.

Kaplan–Meier interval transform: the default is ``log-log`` (Kalbfleisch & Prentice 2002
sec. 1.4; SAS PROC LIFETEST, lifelines and scikit-survival default), which keeps the
limits inside [0, 1] and behaves well in small samples. The bundled ``tan2023`` example
uses ``plain`` (linear Greenwood) because that is the interval its publication reports
(Tan et al., J Hematol Oncol 2023;16:34: 2-year OS 42.3%, 95% CI 18.8–65.8); see
``EXAMPLE_DEFAULTS``. Whatever is used is stated in the report's footnotes and methods.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Literal, get_args

from cartrial.cohort.units import DAYS_PER_MONTH
from cartrial.design.dlt import parse_dose
from cartrial.endpoints import EndpointOptions
from cartrial.endpoints.definitions import DefinitionError, load_definitions
from cartrial.endpoints.response import RESPONSE_RANK
from cartrial.stats.proportions import BinomialMethod
from cartrial.stats.survival import CIMethod, ConfType

#: the choices are the statistics' own types (one declaration each)
KM_CONF_TYPES: tuple[str, ...] = get_args(ConfType)
PROPORTION_METHODS: tuple[str, ...] = get_args(BinomialMethod)
KM_CI_METHODS: tuple[str, ...] = get_args(CIMethod)
Continuous = Literal["median_range", "median_iqr", "mean_sd"]
TimeUnit = Literal["months", "days"]
ENDPOINTS = ("OS", "PFS", "EFS", "DFS", "DOR", "CIR", "NRM")
#: subgroups compared when ``subgroups`` is not set (those present with ≥ 2 levels)
AUTO_SUBGROUPS = (
    "sct_consolidation",
    "product_source",
    "dose_level",
    "age_group",
    "car_hematotox_risk",
)


class SettingsError(ValueError):
    """A settings file or value that cannot be used; the message names key and value."""


@dataclass(frozen=True)
class ReportSettings:
    """Everything the report computes depends on these (and the cohort) only.

    title: report heading.
    group: patients column that splits Table 1 and the adverse-event table (None = overall
        only). Derived columns ``sct_consolidation``, ``age_group`` and ``best_response``
        can be used as well.
    subgroups: columns compared by log-rank for ``subgroup_endpoints`` (None = automatic:
        those of ``AUTO_SUBGROUPS`` present with at least two levels).
    subgroup_endpoints: endpoints compared by subgroup in the subgroup table.
    subgroup_figure_endpoints: endpoints drawn by subgroup (one KM figure per subgroup).
    table1_variables: Table 1 rows (None = automatic: baseline columns present).
    continuous: ``median_range``, ``median_iqr`` or ``mean_sd`` for continuous Table 1
        variables (gtsummary's choices).
    table1_p_values: add a p-value column to a grouped Table 1 (off: gtsummary's default).
    proportion_ci: binomial interval for response rates (``cartrial.stats.binomial_ci``).
    km_conf_type: Kaplan–Meier pointwise interval transform (log-log, log, plain).
    km_ci_method: interval of the median: ``bands`` (R ``survfit``: where the band curves
        cross 50%; the default, so a statistician re-running in R gets the same limits) or
        ``brookmeyer-crowley`` (the set of times whose band contains 50%, SAS LIFETEST).
    conf_level: confidence level of every interval.
    landmarks_months: landmark times for survival / cumulative incidence rates.
    risk_table_step_months: spacing of the numbers-at-risk ticks under KM plots.
    ae_window_days: short-term AEs have onset < this day; long-term ≥ this day among
        patients still under observation on this day (alive and followed that long).
    response_window: days (inclusive) in which an assessment counts as day-28–30 response.
    time_unit: ``months`` or ``days`` for tables and figures.
    endpoints: time-to-event endpoints reported (OS PFS EFS DFS DOR CIR NRM).
    censor_at_sct / censor_at_new_therapy / efs_nonresponse_event: endpoint options
        (``cartrial.endpoints.EndpointOptions``).
    age_cutoffs_years: cut points of the derived ``age_group`` column.
    derive_bedside_aes: derive CRS/ICANS episodes from daily bedside observations
        (``cartrial.grading``) for patients without a recorded episode of that term.
    forest_endpoints: endpoints with a Cox hazard-ratio table and forest plot by subgroup.
    landmark_day: day of the landmark analysis of comparisons by consolidation SCT (None:
        the median day of SCT among those transplanted, issue 10's default).
    figure_formats: files written per figure: ``png`` (always; the HTML and PDF use it),
        plus ``svg`` and/or ``pdf`` (vector, for journals; each is one more drawing).
    kinetics_model_fit: also fit the Stein 2019 multiphasic model per patient in the
        kinetics section (off by default: ~0.2 s CPU per profile; NCA is always shown).
    kinetics_population_model: also fit the population (NLME) kinetic model
        (``cartrial.kinetics.population``; needs the ``popkin`` extra; about a minute for
        60 patients) and show its typical values, variability, covariate effects and
        diagnostics (observed vs predicted, VPC) in the kinetics section.
    efs_required_response / efs_failure_day: EFS success and the day treatment failure is
        dated (``cartrial.endpoints.EndpointOptions``; leukaemia default CR/CRh/CRi, day 0).
    endpoint_definitions: user-defined endpoints, name → definition, as in
        ``cartrial.endpoints.definitions`` (e.g. GRFS); name them in ``endpoints``.
    design: the dose-escalation design for the optional "Trial design and safety
        monitoring" section (empty = no section); keys in ``DESIGN_DEFAULTS``, checked by
        :func:`design_settings`; built by ``cartrial.report.design_section``.
    """

    title: str = "CAR-T cell therapy trial report"
    group: str | None = None
    subgroups: tuple[str, ...] | None = None
    subgroup_endpoints: tuple[str, ...] = ("OS", "PFS")
    subgroup_figure_endpoints: tuple[str, ...] = ("OS",)
    table1_variables: tuple[str, ...] | None = None
    continuous: Continuous = "median_range"
    table1_p_values: bool = False
    proportion_ci: BinomialMethod = "wilson"
    km_conf_type: ConfType = "log-log"
    km_ci_method: CIMethod = "bands"
    conf_level: float = 0.95
    landmarks_months: tuple[float, ...] = (6.0, 12.0, 24.0)
    risk_table_step_months: float = 6.0
    ae_window_days: float = 30.0
    response_window: tuple[float, float] = (0.0, 35.0)
    time_unit: TimeUnit = "months"
    endpoints: tuple[str, ...] = ENDPOINTS
    censor_at_sct: bool = False
    censor_at_new_therapy: bool = False
    efs_nonresponse_event: bool = True
    age_cutoffs_years: tuple[float, ...] = (18.0,)
    derive_bedside_aes: bool = True
    forest_endpoints: tuple[str, ...] = ("OS", "PFS")
    landmark_day: float | None = None
    kinetics_model_fit: bool = False
    kinetics_population_model: bool = False
    efs_required_response: tuple[str, ...] = ("CR", "CRh", "CRi")
    efs_failure_day: float = 0.0
    endpoint_definitions: dict[str, Any] = field(default_factory=dict)
    figure_formats: tuple[str, ...] = ("png",)
    design: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        # normalised (types, defaults filled) so settings.yaml shows the effective design
        object.__setattr__(self, "design", design_settings(self.design))
        _check(self)

    # ------------------------------------------------------------------ conversions
    @property
    def time_scale(self) -> float:
        """Days per reported time unit."""
        return DAYS_PER_MONTH if self.time_unit == "months" else 1.0

    def endpoint_options(self):

        return EndpointOptions(
            response_window=tuple(self.response_window),
            efs_nonresponse_event=self.efs_nonresponse_event,
            required_response=tuple(self.efs_required_response),
            efs_failure_day=self.efs_failure_day,
            censor_at_sct=self.censor_at_sct,
            censor_at_new_therapy=self.censor_at_new_therapy,
            definitions=self.user_endpoints(),
        )

    def user_endpoints(self) -> dict[str, Any]:
        """``endpoint_definitions`` as ``EndpointDefinition`` objects (checked)."""
        if not self.endpoint_definitions:
            return {}

        try:
            return load_definitions({"endpoints": self.endpoint_definitions})
        except DefinitionError as exc:
            raise SettingsError(f"setting 'endpoint_definitions': {exc}") from None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for f in fields(self):
            if f.name == "extra":
                continue
            v = getattr(self, f.name)
            out[f.name] = list(v) if isinstance(v, tuple) else v
        if self.design:  # plain lists, so yaml.safe_dump writes them
            out["design"] = {
                k: [list(x) for x in v]
                if k == "scenarios"
                else (list(v) if isinstance(v, tuple) else v)
                for k, v in self.design.items()
            }
        return out

    def to_yaml(self) -> str:
        import yaml

        head = (
            "# cartrial report settings: the full effective settings of this report.\n"
            "# Re-run identically with: cartrial report COHORT -o OUTDIR --config settings.yaml\n"
        )
        return head + yaml.safe_dump(self.to_dict(), sort_keys=False, allow_unicode=True)

    def replace(self, **changes: Any) -> ReportSettings:
        return dataclasses.replace(self, **changes)


_TUPLE_FIELDS = {
    "subgroups",
    "subgroup_endpoints",
    "subgroup_figure_endpoints",
    "table1_variables",
    "landmarks_months",
    "response_window",
    "endpoints",
    "age_cutoffs_years",
    "forest_endpoints",
    "figure_formats",
    "efs_required_response",
}
_FLOAT_TUPLES = {"landmarks_months", "response_window", "age_cutoffs_years"}


def _check(s: ReportSettings) -> None:
    def bad(key: str, value: Any, expected: str) -> SettingsError:
        return SettingsError(f"setting '{key}': found {value!r}; expected {expected}")

    if s.km_conf_type not in KM_CONF_TYPES:
        raise bad("km_conf_type", s.km_conf_type, "one of " + ", ".join(KM_CONF_TYPES))
    if s.proportion_ci not in PROPORTION_METHODS:
        raise bad("proportion_ci", s.proportion_ci, "one of " + ", ".join(PROPORTION_METHODS))
    if s.continuous not in get_args(Continuous):
        raise bad("continuous", s.continuous, "median_range, median_iqr or mean_sd")
    if s.km_ci_method not in KM_CI_METHODS:
        raise bad("km_ci_method", s.km_ci_method, "one of " + ", ".join(KM_CI_METHODS))
    if "png" not in s.figure_formats or set(s.figure_formats) - {"png", "svg", "pdf"}:
        raise bad("figure_formats", list(s.figure_formats), "png, optionally with svg and pdf")
    if s.landmark_day is not None and not s.landmark_day > 0:
        raise bad(
            "landmark_day", s.landmark_day, "a positive day, or null for the median day of SCT"
        )
    if s.time_unit not in get_args(TimeUnit):
        raise bad("time_unit", s.time_unit, "months or days")
    if not 0 < s.conf_level < 1:
        raise bad("conf_level", s.conf_level, "a number between 0 and 1, e.g. 0.95")
    if not s.ae_window_days > 0:
        raise bad("ae_window_days", s.ae_window_days, "a positive number of days")
    if not s.risk_table_step_months > 0:
        raise bad("risk_table_step_months", s.risk_table_step_months, "a positive number")
    if len(s.response_window) != 2 or s.response_window[0] > s.response_window[1]:
        raise bad("response_window", list(s.response_window), "[first day, last day]")
    if any(t <= 0 for t in s.landmarks_months):
        raise bad("landmarks_months", list(s.landmarks_months), "positive times in months")
    if not isinstance(s.endpoint_definitions, dict):
        raise bad("endpoint_definitions", s.endpoint_definitions, "a mapping name → definition")
    known = (*ENDPOINTS, *s.user_endpoints())
    for key in ("endpoints", "subgroup_endpoints", "subgroup_figure_endpoints", "forest_endpoints"):
        unknown = [e for e in getattr(s, key) if e not in known]
        if unknown:
            raise bad(key, unknown, "endpoints among " + ", ".join(known))
    if s.efs_failure_day not in (0.0, 1.0):
        raise bad("efs_failure_day", s.efs_failure_day, "0 or 1")

    if not s.efs_required_response or set(s.efs_required_response) - set(RESPONSE_RANK):
        raise bad(
            "efs_required_response",
            list(s.efs_required_response),
            "responses among " + ", ".join(RESPONSE_RANK),
        )


DESIGN_METHODS = ("BOIN", "CRM", "3+3")
#: keys of the ``design`` setting and their defaults (doses and scenarios are required)
DESIGN_DEFAULTS: dict[str, Any] = {
    "method": "BOIN",  # BOIN | CRM | 3+3
    "target": 0.30,  # target DLT rate (BOIN, CRM; defines the true MTD for 3+3)
    "cohort_size": 3,  # BOIN, CRM (3+3 always treats cohorts of 3)
    "n_cohorts": 10,  # BOIN, CRM: maximum number of cohorts
    "doses": None,  # cells/kg, lowest first; matched to patients.dose_level
    "scenarios": None,  # true DLT rates per dose, one list per scenario
    "trials": 2000,  # simulated trials per scenario
    "seed": 1,  # random seed of the simulation (the same for every scenario)
    "skeleton": None,  # CRM prior DLT rates per dose (None: Lee & Cheung 2009 skeleton)
    "dsmb_threshold": 0.30,  # DSMB boundary: unacceptable toxicity rate
    "dsmb_cutoff": 0.90,  # DSMB boundary: posterior probability that signals a stop
}
MAX_TRIALS = 100_000


def design_settings(value: Any) -> dict[str, Any]:
    """The ``design`` setting checked and completed with ``DESIGN_DEFAULTS`` ({} = off).

    Raises SettingsError naming the key (``design.target`` …), the value and what is
    expected.
    """
    if value is None or (isinstance(value, dict) and not value):
        return {}

    def bad(key: str, found: Any, expected: str) -> SettingsError:
        return SettingsError(f"setting 'design.{key}': found {found!r}; expected {expected}")

    if not isinstance(value, dict):
        raise SettingsError(
            f"setting 'design': found {value!r}; expected a mapping "
            "(method, target, doses, scenarios, ...)"
        )
    unknown = sorted(set(map(str, value)) - set(DESIGN_DEFAULTS))
    if unknown:
        raise SettingsError(
            f"setting 'design': unknown key(s) {', '.join(unknown)}; "
            f"expected some of {', '.join(DESIGN_DEFAULTS)}"
        )
    d = {**DESIGN_DEFAULTS, **{str(k): v for k, v in value.items()}}

    def number(key: str, x: Any, where: str | None = None) -> float:
        if isinstance(x, bool):
            raise bad(where or key, x, "a number")
        try:
            return float(x)
        except (TypeError, ValueError):
            raise bad(where or key, x, "a number") from None

    def integer(key: str, lo: int, hi: int | None = None) -> int:
        x = d[key]
        if isinstance(x, bool) or not isinstance(x, int) or x < lo or (hi and x > hi):
            raise bad(key, x, f"a whole number >= {lo}" + (f" and <= {hi}" if hi else ""))
        return int(x)

    method = str(d["method"]).strip().upper().replace(" ", "")
    method = {"3PLUS3": "3+3", "THREEPLUSTHREE": "3+3"}.get(method, method)
    if method not in DESIGN_METHODS:
        raise bad("method", d["method"], "one of " + ", ".join(DESIGN_METHODS))
    target = number("target", d["target"])
    if not 0 < target < 1:
        raise bad("target", d["target"], "a DLT rate between 0 and 1, e.g. 0.30")
    doses_in = d["doses"]
    if not isinstance(doses_in, list | tuple) or len(doses_in) < 2:
        raise bad("doses", doses_in, "a list of at least 2 doses in cells/kg, lowest first")
    doses = []
    for x in doses_in:
        try:
            v = float(x)  # YAML reads 5e5 (no dot) as text
        except (TypeError, ValueError):
            parsed = parse_dose(x) if isinstance(x, str) else None
            if parsed is None:
                raise bad("doses", x, "a dose in cells/kg such as 5e5 or 1e6") from None
            v = parsed
        doses.append(v)
    if any(v <= 0 for v in doses) or any(b <= a for a, b in zip(doses, doses[1:], strict=False)):
        raise bad("doses", list(doses_in), "positive doses in cells/kg, lowest first")
    scen_in = d["scenarios"]
    if not isinstance(scen_in, list | tuple) or not scen_in:
        raise bad(
            "scenarios",
            scen_in,
            f"a list of scenarios, each a list of true DLT rates for the {len(doses)} doses",
        )
    scenarios = []
    for i, sc in enumerate(scen_in, 1):
        key = f"scenarios[{i}]"
        if not isinstance(sc, list | tuple) or len(sc) != len(doses):
            raise bad(key, sc, f"{len(doses)} true DLT rates, one per dose")
        rates = tuple(number(key, x, key) for x in sc)
        if any(not 0 <= r <= 1 for r in rates):
            raise bad(key, list(sc), "true DLT rates between 0 and 1")
        scenarios.append(rates)
    skeleton = d["skeleton"]
    if skeleton is not None:
        if not isinstance(skeleton, list | tuple) or len(skeleton) != len(doses):
            raise bad("skeleton", skeleton, f"{len(doses)} prior DLT rates, one per dose")
        skeleton = tuple(number("skeleton", x) for x in skeleton)
        if any(not 0 < r < 1 for r in skeleton) or any(
            b <= a for a, b in zip(skeleton, skeleton[1:], strict=False)
        ):
            raise bad("skeleton", list(skeleton), "increasing prior DLT rates in (0, 1)")
    dsmb = {}
    for key in ("dsmb_threshold", "dsmb_cutoff"):
        dsmb[key] = number(key, d[key])
        if not 0 < dsmb[key] < 1:
            raise bad(key, d[key], "a probability between 0 and 1")
    seed = d["seed"]
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise bad("seed", seed, "a whole number >= 0")
    return {
        "method": method,
        "target": target,
        "cohort_size": integer("cohort_size", 1, 12),
        "n_cohorts": integer("n_cohorts", 1, 100),
        "doses": tuple(doses),
        "scenarios": tuple(scenarios),
        "trials": integer("trials", 1, MAX_TRIALS),
        "seed": int(seed),
        "skeleton": skeleton,
        **dsmb,
    }


def settings_from_mapping(data: dict[str, Any], where: str = "settings") -> ReportSettings:
    """Build settings from a mapping (YAML/TOML content); unknown keys are errors."""
    if not isinstance(data, dict):
        raise SettingsError(
            f"{where}: expected a mapping of setting names to values, found {type(data).__name__}"
        )
    known = {f.name: f for f in fields(ReportSettings) if f.name != "extra"}
    unknown = sorted(set(data) - set(known))
    if unknown:
        raise SettingsError(
            f"{where}: unknown setting(s) {', '.join(unknown)}; expected some of {', '.join(known)}"
        )
    kwargs: dict[str, Any] = {}
    for key, value in data.items():
        kwargs[key] = _coerce(key, value, where)
    try:
        return ReportSettings(**kwargs)
    except SettingsError as exc:
        raise SettingsError(f"{where}: {exc}") from None


def _coerce(key: str, value: Any, where: str) -> Any:
    def fail(expected: str) -> SettingsError:
        return SettingsError(f"{where}: setting '{key}': found {value!r}; expected {expected}")

    if key in _TUPLE_FIELDS:
        if value is None and key in ("subgroups", "table1_variables"):
            return None
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list | tuple):
            raise fail("a list")
        if key in _FLOAT_TUPLES:
            try:
                return tuple(float(v) for v in value)
            except (TypeError, ValueError):
                raise fail("a list of numbers") from None
        if key in (
            "endpoints",
            "subgroup_endpoints",
            "subgroup_figure_endpoints",
            "forest_endpoints",
        ):
            return tuple(str(v).upper() for v in value)
        return tuple(str(v) for v in value)
    if key == "landmark_day":
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise fail("a number of days, or null")
        return float(value)
    if key in ("conf_level", "ae_window_days", "risk_table_step_months"):
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise fail("a number")
        return float(value)
    if key == "design":
        return {} if value is None else value  # checked by design_settings
    if key == "endpoint_definitions":
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise fail("a mapping of endpoint name to definition")
        return value
    if key == "efs_failure_day":
        if isinstance(value, bool) or value not in (0, 1):
            raise fail("0 or 1")
        return float(value)
    if key in (
        "censor_at_sct",
        "censor_at_new_therapy",
        "efs_nonresponse_event",
        "derive_bedside_aes",
        "kinetics_model_fit",
        "kinetics_population_model",
        "table1_p_values",
    ):
        if not isinstance(value, bool):
            raise fail("true or false")
        return value
    if key == "group":
        return None if value in (None, "") else str(value)
    if not isinstance(value, str):
        raise fail("text")
    return value


def load_settings(path: str | os.PathLike[str]) -> ReportSettings:
    """Read settings from a ``.yaml``/``.yml`` or ``.toml`` file."""
    p = Path(path)
    if not p.is_file():
        raise SettingsError(f"settings file {p}: not found")
    text = p.read_text(encoding="utf-8")
    if p.suffix.lower() == ".toml":
        import tomllib

        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise SettingsError(f"settings file {p}: not valid TOML ({exc})") from None
    else:
        import yaml

        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise SettingsError(f"settings file {p}: not valid YAML ({exc})") from None
        data = {} if data is None else data
    return settings_from_mapping(data, where=f"settings file {p}")


#: defaults for bundled examples (applied when the report runs on the example by name
#: and no --config is given). tan2023 reports the linear ("plain") Greenwood interval.
EXAMPLE_DEFAULTS: dict[str, dict[str, Any]] = {
    "tan2023": {
        "title": "Donor-derived CD7 CAR-T for r/r T-ALL (Tan et al., J Hematol Oncol 2023;16:34)",
        "km_conf_type": "plain",
        "group": "sct_consolidation",
        "subgroups": ("sct_consolidation",),
    },
}


def default_settings(cohort_arg: str | None = None) -> ReportSettings:
    """Defaults, with a bundled example's own defaults when ``cohort_arg`` names one."""
    overrides = EXAMPLE_DEFAULTS.get(str(cohort_arg), {}) if cohort_arg else {}
    if overrides and Path(str(cohort_arg)).exists():
        overrides = {}  # a real path of the same name is not the bundled example
    return ReportSettings(**overrides)
