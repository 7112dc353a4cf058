"""``cartrial grade …``: bedside toxicity grading from the command line (reference only).

Flags are named like the observations (``--temperature-c 38.5 --vasopressors 1
--oxygen high_flow --o2-flow-l-min 8``); an omitted flag is unknown, never normal.
``--json`` prints ``{"system", "grade", "reasons", "missing", ...}``. Input the engine
rejects (negative flow, ICE 11, unknown device …) exits with code 2 and a message on
stderr. Heavy imports stay inside the commands.
"""

from __future__ import annotations

from typing import Annotated

import typer

grade_app = typer.Typer(
    name="grade",
    help="Grade CRS, ICANS, GVHD, CTCAE cytopenias/infections and ICAHT from observations "
    "(reference only; an omitted observation is unknown, never normal).",
    no_args_is_help=True,
)

Num = float | None
Int = int | None
Flag = bool | None
Text = str | None
JSON = Annotated[bool, typer.Option("--json", help="Print the result as JSON.")]


def _opt(help_text: str, *names: str):
    return typer.Option(*names, help=help_text)


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
    _print_grade(d["system"], d)


def _print_grade(title: str, d: dict) -> None:
    label = f" ({d['label']})" if d.get("label") and d.get("label") not in ("early", "late") else ""
    grade = "unknown" if d["grade"] is None else d["grade"]
    typer.echo(f"{title}: grade {grade}{label}")
    for r in d["reasons"]:
        typer.echo(f"  - {r}")
    if d["missing"]:
        typer.echo(
            f"  missing (could raise the grade to {d['grade_max']}): " + ", ".join(d["missing"])
        )
    typer.echo("  reference only: decision support, not a substitute for clinical judgement")


def _run(fn, as_json: bool) -> None:
    from cartrial.grading.core import GradingInputError

    try:
        result = fn()
    except GradingInputError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    _emit(result, as_json)


def _given(obs: dict) -> dict:
    """The observations whose flag was given: an omitted flag (None) is unknown, never
    normal, so it is left out rather than passed on."""
    return {k: v for k, v in obs.items() if v is not None}


def _grade(engine, obs: dict, as_json: bool, **options) -> None:
    """Grade the given observations with ``engine`` (a ``cartrial.grading.grade_*``
    function) and print the result; rejected input exits with code 2 (``_run``)."""
    _run(lambda: engine(_given(obs), **options), as_json)


@grade_app.command("crs")
def crs(
    temperature_c: Annotated[Num, _opt("Highest temperature, °C (25-45).")] = None,
    fever_masked: Annotated[
        Flag,
        _opt(
            "Antipyretic/anti-cytokine therapy given after CRS onset (fever then not required).",
            "--fever-masked/--no-fever-masked",
        ),
    ] = None,
    hypotension: Annotated[
        Flag,
        _opt("Hypotension not attributable to another cause.", "--hypotension/--no-hypotension"),
    ] = None,
    vasopressors: Annotated[Int, _opt("Number of vasopressors, excluding vasopressin.")] = None,
    vasopressin: Annotated[
        Flag, _opt("Vasopressin given.", "--vasopressin/--no-vasopressin")
    ] = None,
    oxygen: Annotated[
        Text,
        _opt(
            "Oxygen device: none, blow_by, low_flow, high_flow, facemask, "
            "nonrebreather, venturi, cpap, bipap, mechanical_ventilation."
        ),
    ] = None,
    o2_flow_l_min: Annotated[Num, _opt("Oxygen flow, L/min.")] = None,
    fio2: Annotated[Num, _opt("FiO2 fraction 0.21-1.0 (CARTOX, Lee 2014).")] = None,
    vasopressor_high_dose: Annotated[
        Flag,
        _opt(
            "High-dose vasopressor (CARTOX, Lee 2014).",
            "--vasopressor-high-dose/--no-vasopressor-high-dose",
        ),
    ] = None,
    hypotension_life_threatening: Annotated[
        Flag,
        _opt(
            "Life-threatening hypotension (CARTOX).",
            "--hypotension-life-threatening/--no-hypotension-life-threatening",
        ),
    ] = None,
    organ_toxicity_grade: Annotated[
        Int, _opt("Worst CRS organ toxicity, CTCAE grade (CARTOX, Lee 2014).")
    ] = None,
    transaminitis_grade: Annotated[
        Int, _opt("Transaminitis CTCAE grade (CARTOX, Lee 2014).")
    ] = None,
    constitutional_symptoms: Annotated[
        Flag,
        _opt(
            "Constitutional symptoms needing symptomatic treatment only (Lee 2014).",
            "--constitutional-symptoms/--no-constitutional-symptoms",
        ),
    ] = None,
    crs_death: Annotated[Flag, _opt("Death due to CRS.", "--crs-death/--no-crs-death")] = None,
    system: Annotated[str, _opt("ASTCT2019, CARTOX or Lee2014.")] = "ASTCT2019",
    as_json: JSON = False,
) -> None:
    """Cytokine release syndrome grade (ASTCT 2019 by default)."""
    obs = dict(
        temperature_c=temperature_c,
        fever_masked=fever_masked,
        hypotension=hypotension,
        vasopressors=vasopressors,
        vasopressin=vasopressin,
        oxygen=oxygen,
        o2_flow_l_min=o2_flow_l_min,
        fio2=fio2,
        vasopressor_high_dose=vasopressor_high_dose,
        hypotension_life_threatening=hypotension_life_threatening,
        organ_toxicity_grade=organ_toxicity_grade,
        transaminitis_grade=transaminitis_grade,
        constitutional_symptoms=constitutional_symptoms,
        crs_death=crs_death,
    )

    from cartrial.grading import grade_crs

    _grade(grade_crs, obs, as_json, system=system)


@grade_app.command("icans")
def icans(
    ice_score: Annotated[Int, _opt("ICE score 0-10.")] = None,
    capd_score: Annotated[Int, _opt("CAPD score 0-32 (children below the age cut-off).")] = None,
    cartox10_score: Annotated[Int, _opt("CARTOX-10 score 0-10 (CARTOX system).")] = None,
    consciousness: Annotated[
        Text, _opt("alert, awakens_spontaneously, awakens_to_voice, awakens_to_touch, unarousable.")
    ] = None,
    seizure: Annotated[
        Text,
        _opt(
            "none, rapid_resolving, nonconvulsive_resolving, prolonged, "
            "repetitive, focal, generalized, status_epilepticus."
        ),
    ] = None,
    motor_weakness: Annotated[
        Flag, _opt("Deep focal motor weakness.", "--motor-weakness/--no-motor-weakness")
    ] = None,
    cerebral_edema: Annotated[
        Text,
        _opt(
            "none, focal, diffuse, posturing, cranial_nerve_vi_palsy, papilledema, cushings_triad."
        ),
    ] = None,
    age_years: Annotated[Num, _opt("Age in years (chooses ICE or CAPD).")] = None,
    papilledema_stage: Annotated[Int, _opt("Papilloedema stage 0-5 (CARTOX).")] = None,
    csf_opening_pressure_mmhg: Annotated[Num, _opt("CSF opening pressure, mmHg (CARTOX).")] = None,
    icans_death: Annotated[
        Flag, _opt("Death due to ICANS.", "--icans-death/--no-icans-death")
    ] = None,
    capd_age_cutoff: Annotated[float, _opt("CAPD below this age (years).")] = 12,
    system: Annotated[str, _opt("ASTCT2019 or CARTOX.")] = "ASTCT2019",
    as_json: JSON = False,
) -> None:
    """Neurotoxicity (ICANS) grade (ASTCT 2019 by default)."""
    obs = dict(
        ice_score=ice_score,
        capd_score=capd_score,
        cartox10_score=cartox10_score,
        consciousness=consciousness,
        seizure=seizure,
        motor_weakness=motor_weakness,
        cerebral_edema=cerebral_edema,
        age_years=age_years,
        papilledema_stage=papilledema_stage,
        csf_opening_pressure_mmhg=csf_opening_pressure_mmhg,
        icans_death=icans_death,
    )

    from cartrial.grading import grade_icans

    _grade(grade_icans, obs, as_json, system=system, capd_age_cutoff=capd_age_cutoff)


@grade_app.command("agvhd")
def agvhd(
    skin_bsa_pct: Annotated[Num, _opt("Active erythematous rash, % BSA.")] = None,
    bullae: Annotated[
        Flag, _opt("Bullae and desquamation > 5 % BSA.", "--bullae/--no-bullae")
    ] = None,
    bilirubin_mg_dl: Annotated[Num, _opt("Total bilirubin, mg/dL.")] = None,
    upper_gi: Annotated[
        Flag, _opt("Persistent nausea, vomiting or anorexia.", "--upper-gi/--no-upper-gi")
    ] = None,
    stool_ml_day: Annotated[Num, _opt("Stool volume, mL/day (3-day average).")] = None,
    stool_episodes: Annotated[Int, _opt("Stool episodes per day (when volume unknown).")] = None,
    weight_kg: Annotated[Num, _opt("Weight, kg (adult stool thresholds above 50 kg).")] = None,
    severe_abdominal_pain: Annotated[
        Flag,
        _opt(
            "Severe abdominal pain with or without ileus.",
            "--severe-abdominal-pain/--no-severe-abdominal-pain",
        ),
    ] = None,
    bloody_stool: Annotated[
        Flag, _opt("Grossly bloody stool.", "--bloody-stool/--no-bloody-stool")
    ] = None,
    liver_other_cause: Annotated[
        Flag,
        _opt(
            "Other documented cause of hyperbilirubinaemia (Keystone only).",
            "--liver-other-cause/--no-liver-other-cause",
        ),
    ] = None,
    diarrhea_other_cause: Annotated[
        Flag,
        _opt(
            "Other documented cause of diarrhoea (Keystone only).",
            "--diarrhea-other-cause/--no-diarrhea-other-cause",
        ),
    ] = None,
    system: Annotated[str, _opt("MAGIC or Keystone1994.")] = "MAGIC",
    as_json: JSON = False,
) -> None:
    """Acute GVHD organ stages and overall grade (MAGIC by default)."""
    obs = dict(
        skin_bsa_pct=skin_bsa_pct,
        bullae=bullae,
        bilirubin_mg_dl=bilirubin_mg_dl,
        upper_gi=upper_gi,
        stool_ml_day=stool_ml_day,
        stool_episodes=stool_episodes,
        weight_kg=weight_kg,
        severe_abdominal_pain=severe_abdominal_pain,
        bloody_stool=bloody_stool,
        liver_other_cause=liver_other_cause,
        diarrhea_other_cause=diarrhea_other_cause,
    )

    from cartrial.grading import grade_agvhd

    _grade(grade_agvhd, obs, as_json, system=system)


@grade_app.command("cgvhd")
def cgvhd(
    skin: Annotated[Int, _opt("NIH skin score 0-3.")] = None,
    mouth: Annotated[Int, _opt("NIH mouth score 0-3.")] = None,
    eyes: Annotated[Int, _opt("NIH eyes score 0-3.")] = None,
    gi: Annotated[Int, _opt("NIH GI tract score 0-3.")] = None,
    liver: Annotated[Int, _opt("NIH liver score 0-3.")] = None,
    lungs: Annotated[Int, _opt("NIH lung score 0-3.")] = None,
    joints_fascia: Annotated[Int, _opt("NIH joints and fascia score 0-3.")] = None,
    genital: Annotated[Int, _opt("NIH genital tract score 0-3.")] = None,
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

    _grade(grade_cgvhd, scores, as_json)


@grade_app.command("ctcae")
def ctcae(
    term: Annotated[
        str,
        typer.Argument(
            help="neutropenia, thrombocytopenia, lymphopenia, "
            "leukopenia, anemia, febrile_neutropenia or infection."
        ),
    ],
    anc: Annotated[Num, _opt("ANC, x10^9/L.")] = None,
    platelets: Annotated[Num, _opt("Platelets, x10^9/L.")] = None,
    lymphocytes: Annotated[Num, _opt("Lymphocytes, x10^9/L.")] = None,
    wbc: Annotated[Num, _opt("White blood cells, x10^9/L.")] = None,
    hemoglobin_g_dl: Annotated[Num, _opt("Haemoglobin, g/dL.")] = None,
    sex: Annotated[Text, _opt("M or F (default haemoglobin LLN).")] = None,
    temperature_c: Annotated[Num, _opt("Temperature, °C (febrile neutropenia).")] = None,
    fever_sustained_1h: Annotated[
        Flag, _opt(">= 38 °C sustained > 1 hour.", "--fever-sustained-1h/--no-fever-sustained-1h")
    ] = None,
    life_threatening: Annotated[
        Flag, _opt("Life-threatening consequences.", "--life-threatening/--no-life-threatening")
    ] = None,
    intervention: Annotated[
        Text, _opt("Infection: local, oral, iv, invasive, life_threatening, death.")
    ] = None,
    death: Annotated[Flag, _opt("Death due to the event.", "--death/--no-death")] = None,
    lln: Annotated[
        list[str] | None, _opt("Lower limit of normal, FIELD=VALUE (e.g. anc=1.5); repeatable.")
    ] = None,
    version: Annotated[str, _opt("CTCAE version (5.0).")] = "5.0",
    as_json: JSON = False,
) -> None:
    """CTCAE v5.0 grade of a haematological term, febrile neutropenia or infection."""
    obs = dict(
        anc=anc,
        platelets=platelets,
        lymphocytes=lymphocytes,
        wbc=wbc,
        hemoglobin_g_dl=hemoglobin_g_dl,
        sex=sex,
        temperature_c=temperature_c,
        fever_sustained_1h=fever_sustained_1h,
        life_threatening=life_threatening,
        intervention=intervention,
        death=death,
    )

    def go():
        from cartrial.grading import grade_ctcae
        from cartrial.grading.core import GradingInputError

        limits = {}
        for item in lln or []:
            name, _, value = item.partition("=")
            try:
                limits[name.strip()] = float(value)
            except ValueError:
                raise GradingInputError("lln", item, "FIELD=NUMBER, e.g. anc=1.5") from None
        return grade_ctcae(
            term,
            _given(obs),
            version=version,
            lln=limits or None,
        )

    _run(go, as_json)


@grade_app.command("icaht")
def icaht(
    day: Annotated[list[float] | None, _opt("Day since infusion (repeat, one per --anc).")] = None,
    anc: Annotated[list[float] | None, _opt("ANC count (repeat, one per --day).")] = None,
    unit: Annotated[str, _opt("10^9/L, cells/uL or auto.")] = "auto",
    censor_day: Annotated[Num, _opt("Censor at this day (SCT conditioning, re-infusion).")] = None,
    late_min_tests: Annotated[int, _opt("Counts needed to confirm a late grade.")] = 2,
    as_json: JSON = False,
) -> None:
    """Early and late ICAHT (Rejeski 2023) from an ANC series."""

    def go():
        from cartrial.grading import grade_icaht

        return grade_icaht(
            day or [], anc or [], unit=unit, censor_day=censor_day, late_min_tests=late_min_tests
        )

    _run(go, as_json)


def register(app: typer.Typer) -> None:
    """Attach ``cartrial grade …`` to the main app."""
    app.add_typer(grade_app, name="grade")
