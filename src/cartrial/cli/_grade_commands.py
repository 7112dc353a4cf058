"""The ``cartrial grade`` commands, built from the field registry when a grade command
is first asked for (``cli.grade`` keeps ``cartrial --help`` free of NumPy and pandas)."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Annotated, Any

import typer
from typer.core import TyperCommand

from cartrial.grading import iechs
from cartrial.grading.fields import FIELDS, cli_option

grade_app = typer.Typer(name="grade")

JSON = Annotated[bool, typer.Option("--json", help="Print the result (and errors) as JSON.")]
UNITS = Annotated[
    list[str] | None,
    typer.Option("--unit", help="Unit of an observation, FIELD=UNIT (e.g. anc=cells/uL)."),
]

CRS_FIELDS = (
    "temperature_c",
    "fever_masked",
    "hypotension",
    "vasopressors",
    "vasopressin",
    "oxygen",
    "o2_flow_l_min",
    "fio2",
    "vasopressor_high_dose",
    "hypotension_life_threatening",
    "organ_toxicity_grade",
    "transaminitis_grade",
    "constitutional_symptoms",
    "crs_death",
)
ICANS_FIELDS = (
    "ice_score",
    "capd_score",
    "cartox10_score",
    "consciousness",
    "seizure",
    "motor_weakness",
    "cerebral_edema",
    "age_years",
    "papilledema_stage",
    "csf_opening_pressure_mmhg",
    "icans_death",
)
AGVHD_FIELDS = (
    "skin_bsa_pct",
    "bullae",
    "bilirubin_mg_dl",
    "upper_gi",
    "stool_ml_day",
    "stool_episodes",
    "weight_kg",
    "severe_abdominal_pain",
    "bloody_stool",
    "liver_other_cause",
    "diarrhea_other_cause",
)
CTCAE_FIELDS = (
    "anc",
    "platelets",
    "lymphocytes",
    "wbc",
    "hemoglobin_g_dl",
    "sex",
    "temperature_c",
    "fever_sustained_1h",
    "fever_over_24h",
    "life_threatening",
    "intervention",
    "death",
    "alt_u_l",
    "alt_baseline_u_l",
    "ast_u_l",
    "ast_baseline_u_l",
    "bilirubin_mg_dl",
    "bilirubin_baseline_mg_dl",
    "creatinine_mg_dl",
    "creatinine_baseline_mg_dl",
    "fibrinogen_mg_dl",
    "fibrinogen_baseline_mg_dl",
    "hypotension",
    "hypotension_treatment",
    "hypoxia_treatment",
    "blood_culture_positive",
    "sepsis_signs",
    "stools_over_baseline",
    "incontinence",
    "hospitalization_indicated",
    "adl_limitation",
    "nausea",
    "vomiting",
    "headache",
    "rash_bsa_pct",
    "rash_symptoms",
    "sodium_mmol_l",
    "potassium_mmol_l",
    "calcium_corrected_mg_dl",
    "calcium_ionized_mmol_l",
    "magnesium_mg_dl",
    "glucose_mmol_l",
    "symptomatic",
    "intervention_indicated",
    "phosphate_replacement",
    "seizure_ctcae",
    "encephalopathy",
)
IECHS_FIELDS = iechs.INPUTS  # declared with the engine
HEMATOTOX_FIELDS = ("anc", "hemoglobin_g_dl", "platelets", "crp_mg_l", "ferritin_ng_ml")
EASIX_FIELDS = ("ldh_u_l", "creatinine_mg_dl", "crp_mg_l", "platelets")


class JsonErrorsCommand(TyperCommand):
    """A command whose usage errors (unknown flag, bad number) are JSON with --json."""

    def parse_args(self, ctx, args):
        self._json = "--json" in args
        try:
            return super().parse_args(ctx, args)
        except Exception as exc:  # click's UsageError (Typer may vendor its own click)
            self._json_error(ctx, exc)
            raise

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except Exception as exc:  # a flag value of the wrong type
            self._json_error(ctx, exc)
            raise

    def _json_error(self, ctx, exc: Exception) -> None:
        if not getattr(self, "_json", False) or not hasattr(exc, "format_message"):
            return
        if getattr(exc, "exit_code", 2) != 2:
            return
        import json

        typer.echo(json.dumps({"error": {"kind": "usage", "message": exc.format_message()}}))
        ctx.exit(2)


def _cli_type(name: str) -> Any:
    spec = FIELDS[name]
    if spec.kind == "bool":
        return bool | None
    if spec.kind == "int":
        return int | None
    if spec.kind == "number" and not spec.units:
        return float | None
    return str | None  # categories, and numbers that may carry a unit ("101.3 F")


def _field_params(fields: tuple[str, ...]) -> list[inspect.Parameter]:
    return [
        inspect.Parameter(
            f,
            inspect.Parameter.KEYWORD_ONLY,
            default=None,
            annotation=Annotated[_cli_type(f), cli_option(f)],
        )
        for f in fields
    ]


def _param(name: str, annotation: Any, default: Any) -> inspect.Parameter:
    return inspect.Parameter(
        name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=annotation
    )


def _parse_pairs(items: list[str] | None, what: str, number: bool) -> dict[str, Any]:
    from cartrial.grading.core import GradingInputError

    out: dict[str, Any] = {}
    for item in items or []:
        name, sep, value = item.partition("=")
        if not sep or not name.strip() or not value.strip():
            raise GradingInputError(what, item, f"FIELD={'NUMBER' if number else 'UNIT'}")
        if number:
            try:
                out[name.strip()] = float(value)
            except ValueError:
                raise GradingInputError(what, item, "FIELD=NUMBER, e.g. anc=1.5") from None
        else:
            out[name.strip()] = value.strip()
    return out


def _emit(result, as_json: bool) -> None:
    if as_json:
        import json

        typer.echo(json.dumps(result.to_dict(), default=str))
        return
    d = result.to_dict()
    if "early" in d:  # ICAHT
        for phase in ("early", "late"):
            _print_grade(f"ICAHT {phase}", d[phase])
        return
    if "score" in d and "system" not in d:  # a risk score
        _print_score(d)
        return
    _print_grade(d["system"], d)


def _print_grade(title: str, d: dict) -> None:
    skip = ("early", "late", "identified", "excluded", "possible")
    label = f" ({d['label']})" if d.get("label") and d.get("label") not in skip else ""
    grade = "unknown" if d["grade"] is None else d["grade"]
    status = d.get("details", {}).get("status")
    typer.echo(f"{title}: grade {grade}{label}" + (f" - {status}" if status else ""))
    for r in d["reasons"]:
        typer.echo(f"  - {r}")
    if d["missing"]:
        typer.echo(
            f"  missing (could raise the grade to {d['grade_max']}): " + ", ".join(d["missing"])
        )
    typer.echo("  reference only: decision support, not a substitute for clinical judgement")


def _print_score(d: dict) -> None:
    typer.echo(f"{d['name']}: {d['score_text']}")
    for r in d["reasons"]:
        typer.echo(f"  - {r}")
    typer.echo("  reference only: a risk score, not a prediction for this patient")


def _error(exc, as_json: bool) -> None:
    if as_json:
        import json

        typer.echo(
            json.dumps(
                {
                    "error": {
                        "kind": "input",
                        "field": exc.field,
                        "value": exc.value,
                        "expected": exc.expected,
                        "where": exc.where,
                        "message": str(exc),
                    }
                },
                default=str,
            )
        )
    else:
        typer.echo(f"error: {exc}", err=True)
    raise typer.Exit(2)


def _run(fn: Callable[[], Any], as_json: bool) -> None:
    from cartrial.grading.core import GradingInputError

    try:
        result = fn()
    except GradingInputError as exc:
        _error(exc, as_json)
        return
    _emit(result, as_json)


def _given(obs: dict) -> dict:
    """The observations whose flag was given: an omitted flag (None) is unknown, never
    normal, so it is left out rather than passed on."""
    return {k: v for k, v in obs.items() if v is not None}


def _register(
    name: str,
    fields: tuple[str, ...],
    doc: str,
    call: Callable[[dict[str, Any], dict[str, Any]], Any],
    extra: list[inspect.Parameter],
    head: list[inspect.Parameter] | None = None,
) -> None:
    """A command whose observation options come from the registry; ``call(obs,
    options)`` grades (``options``: the ``extra`` parameters and ``units``)."""

    def command(**kwargs: Any) -> None:
        as_json = kwargs.pop("as_json")
        obs = {f: kwargs.pop(f) for f in fields}

        def go():
            options = dict(kwargs)
            options["units"] = _parse_pairs(options.pop("unit", None), "unit", False) or None
            return call(_given(obs), options)

        _run(go, as_json)

    params = [
        *(head or []),
        *_field_params(fields),
        *extra,
        _param("unit", UNITS, None),
        _param("as_json", JSON, False),
    ]
    command.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
    command.__doc__ = doc
    command.__name__ = name
    grade_app.command(name, cls=JsonErrorsCommand)(command)


def _crs(obs, o):
    from cartrial.grading import grade_crs

    return grade_crs(obs, system=o["system"], units=o["units"])


def _icans(obs, o):
    from cartrial.grading import grade_icans

    return grade_icans(
        obs, system=o["system"], capd_age_cutoff=o["capd_age_cutoff"], units=o["units"]
    )


def _agvhd(obs, o):
    from cartrial.grading import grade_agvhd

    return grade_agvhd(obs, system=o["system"], units=o["units"])


def _ctcae(obs, o):
    from cartrial.grading import grade_ctcae

    return grade_ctcae(
        o["term"],
        obs,
        version=o["version"],
        lln=_parse_pairs(o["lln"], "lln", True) or None,
        uln=_parse_pairs(o["uln"], "uln", True) or None,
        ranges=o["ranges"],
        units=o["units"],
    )


def _iechs(obs, o):
    from cartrial.grading import grade_iechs

    return grade_iechs(
        obs, uln=_parse_pairs(o["uln"], "uln", True) or None, ranges=o["ranges"], units=o["units"]
    )


class _Score:
    """A risk score result for ``_emit``."""

    def __init__(self, d: dict[str, Any]):
        self.d = d

    def to_dict(self) -> dict[str, Any]:
        return self.d


def _hematotox(obs, o):
    import math

    from cartrial.grading.core import parse_observations
    from cartrial.grading.risk import HEMATOTOX_SOURCE, hematotox_score

    v = parse_observations(obs, o["units"])
    v["crp_mg_dl"] = v.pop("crp_mg_l", math.nan) / 10.0
    r = hematotox_score(v)
    text = f"score {r['score']}" + (
        f" (up to {r['score_max']})" if r["score_max"] != r["score"] else ""
    )
    reasons = [
        f"{f}: {'not given' if r['points_' + f] is None else str(r['points_' + f]) + ' point(s)'}"
        for f in ("anc", "hemoglobin_g_dl", "platelets", "crp_mg_dl", "ferritin_ng_ml")
    ]
    reasons += [
        "low risk 0-1, high risk >= 2 (before lymphodepletion)",
        f"source: {HEMATOTOX_SOURCE}",
    ]
    return _Score(
        {
            "name": "CAR-HEMATOTOX",
            **r,
            "score_text": f"{text}: {r['risk']} risk",
            "reasons": reasons,
        }
    )


def _easix(obs, o):
    import math

    from cartrial.grading.core import parse_observations
    from cartrial.grading.risk import EASIX_SOURCE, easix_value

    v = parse_observations(obs, o["units"])
    ldh, cr = v.get("ldh_u_l", math.nan), v.get("creatinine_mg_dl", math.nan)
    crp, plt = v.get("crp_mg_l", math.nan) / 10.0, v.get("platelets", math.nan)
    e, m = easix_value(ldh, cr, plt), easix_value(ldh, crp, plt)
    log2 = {k: (math.log2(x) if x > 0 else None) for k, x in (("easix", e), ("m_easix", m))}

    def show(x):
        return "not computable (a value is missing)" if math.isnan(x) else f"{x:.3g}"

    return _Score(
        {
            "name": "EASIX",
            "score": None if math.isnan(e) else e,
            "m_easix": None if math.isnan(m) else m,
            "log2_easix": log2["easix"],
            "log2_m_easix": log2["m_easix"],
            "score_text": f"EASIX {show(e)}; m-EASIX {show(m)}",
            "reasons": [
                "EASIX = LDH (U/L) x creatinine (mg/dL) / platelets (10^9/L); m-EASIX uses "
                "CRP (mg/dL) instead of creatinine",
                f"source: {EASIX_SOURCE}",
            ],
        }
    )


_register(
    "crs",
    CRS_FIELDS,
    "Cytokine release syndrome grade (ASTCT 2019 by default).",
    _crs,
    [
        _param(
            "system",
            Annotated[str, typer.Option(help="ASTCT2019, CARTOX or Lee2014.")],
            "ASTCT2019",
        )
    ],
)
_register(
    "icans",
    ICANS_FIELDS,
    "Neurotoxicity (ICANS) grade (ASTCT 2019 by default).",
    _icans,
    [
        _param(
            "capd_age_cutoff",
            Annotated[float, typer.Option(help="CAPD below this age (years).")],
            12,
        ),
        _param("system", Annotated[str, typer.Option(help="ASTCT2019 or CARTOX.")], "ASTCT2019"),
    ],
)
_register(
    "agvhd",
    AGVHD_FIELDS,
    "Acute GVHD organ stages and overall grade (MAGIC by default).",
    _agvhd,
    [_param("system", Annotated[str, typer.Option(help="MAGIC or Keystone1994.")], "MAGIC")],
)
_LIMITS = Annotated[
    list[str] | None, typer.Option(help="Reference limit FIELD=VALUE (canonical unit); repeatable.")
]
_RANGES = Annotated[
    str | None, typer.Option(help="Site reference-range CSV (field,sex,lln,uln,unit,source).")
]
_register(
    "ctcae",
    CTCAE_FIELDS,
    "CTCAE v5.0 grade of a term (cytopenias, anaemia, febrile neutropenia, infection, "
    "sepsis, lung infection, ALT/AST/bilirubin/creatinine increased, fibrinogen "
    "decreased, fever, hypotension, hypoxia, diarrhoea, nausea, vomiting, headache, rash "
    "maculo-papular, hypo/hypernatraemia, hypo/hyperkalaemia, hypocalcaemia, "
    "hypophosphataemia, hypomagnesaemia, hypoglycaemia, seizure, encephalopathy).",
    _ctcae,
    [
        _param("lln", _LIMITS, None),
        _param("uln", _LIMITS, None),
        _param("ranges", _RANGES, None),
        _param("version", Annotated[str, typer.Option(help="CTCAE version (5.0).")], "5.0"),
    ],
    head=[
        inspect.Parameter(
            "term",
            inspect.Parameter.POSITIONAL_OR_KEYWORD,
            annotation=Annotated[
                str, typer.Argument(help="CTCAE v5.0 term name or cartrial name (see --help).")
            ],
        )
    ],
)
_register(
    "iechs",
    IECHS_FIELDS,
    "IEC-HS identification and grade from the interventions and consequences of the ASTCT "
    "consensus grading table (Hines 2023); also 'cartrial grade iec-hs'.",
    _iechs,
    [_param("uln", _LIMITS, None), _param("ranges", _RANGES, None)],
)
_register(
    "hematotox",
    HEMATOTOX_FIELDS,
    "CAR-HEMATOTOX score from values before lymphodepletion (Rejeski 2021).",
    _hematotox,
    [],
)
_register(
    "easix",
    EASIX_FIELDS,
    "EASIX and m-EASIX from one time point (LDH, creatinine, CRP, platelets).",
    _easix,
    [],
)


@grade_app.command("cgvhd", cls=JsonErrorsCommand)
def cgvhd(
    skin: Annotated[int | None, typer.Option(help="NIH skin score 0-3.")] = None,
    mouth: Annotated[int | None, typer.Option(help="NIH mouth score 0-3.")] = None,
    eyes: Annotated[int | None, typer.Option(help="NIH eyes score 0-3.")] = None,
    gi: Annotated[int | None, typer.Option(help="NIH GI tract score 0-3.")] = None,
    liver: Annotated[int | None, typer.Option(help="NIH liver score 0-3.")] = None,
    lungs: Annotated[int | None, typer.Option(help="NIH lung score 0-3.")] = None,
    joints_fascia: Annotated[int | None, typer.Option(help="NIH joints and fascia 0-3.")] = None,
    genital: Annotated[int | None, typer.Option(help="NIH genital tract score 0-3.")] = None,
    as_json: JSON = False,
) -> None:
    """Chronic GVHD global severity (NIH 2014) from organ scores."""
    scores = dict(
        skin=skin,
        mouth=mouth,
        eyes=eyes,
        gi=gi,
        liver=liver,
        lungs=lungs,
        joints_fascia=joints_fascia,
        genital=genital,
    )

    from cartrial.grading import grade_cgvhd

    _run(lambda: grade_cgvhd(_given(scores)), as_json)


@grade_app.command("icaht", cls=JsonErrorsCommand)
def icaht(
    day: Annotated[
        list[float] | None, typer.Option(help="Day since infusion (repeat, one per --anc).")
    ] = None,
    anc: Annotated[
        list[float] | None, typer.Option(help="ANC count (repeat, one per --day).")
    ] = None,
    unit: Annotated[str, typer.Option(help="10^9/L, cells/uL or auto.")] = "auto",
    censor_day: Annotated[
        float | None, typer.Option(help="Censor at this day (SCT conditioning, re-infusion).")
    ] = None,
    late_min_tests: Annotated[int, typer.Option(help="Counts needed to confirm a late grade.")] = 2,
    max_gap_days: Annotated[
        int, typer.Option(help="Longest run of days without a count that is bridged.")
    ] = 7,
    as_json: JSON = False,
) -> None:
    """Early and late ICAHT (Rejeski 2023) from an ANC series."""

    def go():
        from cartrial.grading import grade_icaht

        return grade_icaht(
            day or [],
            anc or [],
            unit=unit,
            censor_day=censor_day,
            late_min_tests=late_min_tests,
            max_gap_days=max_gap_days,
        )

    _run(go, as_json)


@grade_app.command("risk", cls=JsonErrorsCommand)
def risk(
    cohort: Annotated[str, typer.Argument(help="A cohort folder or workbook.")],
    by: Annotated[str | None, typer.Option(help="Summarise by this patients column.")] = None,
    output: Annotated[
        str | None, typer.Option("--output", "-o", help="Write the per-patient table (CSV).")
    ] = None,
    as_json: JSON = False,
) -> None:
    """CAR-HEMATOTOX and EASIX/m-EASIX per patient (latest value from day -10 to -1)."""
    import json

    from cartrial.grading.core import GradingInputError

    try:
        import cartrial
        from cartrial.grading.risk import car_hematotox, easix, risk_by_group

        c = cartrial.load_cohort(cohort)
        ht = car_hematotox(c)
        ex = easix(c)
        cols = ["easix", "log2_easix", "m_easix", "log2_m_easix"]
        table = ht[["score", "score_max", "risk", "missing", "rule"]].join(ex[cols])
        summary = risk_by_group(table, c.patients, by) if by else None
    except GradingInputError as exc:
        _error(exc, as_json)
        return
    if output:
        table.to_csv(output)
    if as_json:
        payload = {
            "patients": json.loads(table.reset_index().to_json(orient="records")),
            "by": None if summary is None else json.loads(summary.to_json(orient="records")),
        }
        typer.echo(json.dumps(payload))
        return
    typer.echo(table.to_string())
    if summary is not None:
        typer.echo("")
        typer.echo(summary.to_string(index=False))
    typer.echo("reference only: risk scores, not predictions for a patient")
