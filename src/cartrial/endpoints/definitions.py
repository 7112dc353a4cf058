"""Endpoint definitions as data, in the spirit of admiral's ``event_source()``/``censor_source()``.

An endpoint is an :class:`EndpointDefinition`: which event kinds end it, which compete
with it, what censors it, its population, its time origin, one sentence of text and its
source. ``derive_endpoints`` evaluates these objects; the report's methods text and the
ADaM metadata read the same objects (nothing parses docstrings or provenance strings).

Event kinds (each one a "source" of dated rows, see ``cartrial.endpoints.derive``):

- ``death``: any death (events table).
- ``progression``: evidence of relapse or progression — a ``relapse`` or ``progression``
  event; a response assessment of PD (progressive disease) or REL (relapse recorded on a
  response row); or a death whose recorded cause is the disease with no earlier relapse
  row (dated at the death; ``cartrial validate`` warns about it). DESIGN.md; CIBMTR usage.
- ``treatment_failure``: no required response (default CR/CRh/CRi for leukaemia) in the
  response window, dated day 0 (or day 1, a setting). ELN 2022 (Döhner, Blood
  2022;140:1345) and NCCN ALL; the pivotal CAR-T ALL trials (Maude, NEJM 2018) count
  failure to reach CR/CRi as an EFS event.
- any event word of the cohort vocabulary (``sct``, ``new_therapy``, ``relapse``, …).
- ``{"ae": TERM, "min_grade": G}``: the onset of an adverse event of that term with grade
  ≥ G (e.g. GRFS: grade III–IV aGVHD).

Users add endpoints in a settings file (YAML or JSON) without writing Python, e.g.::

    endpoints:
      GRFS:
        label: GVHD-free, relapse-free survival
        text: Infusion to grade III-IV aGVHD, cGVHD requiring systemic therapy, relapse or death.
        events: [progression, death, {ae: aGVHD, min_grade: 3}, {ae: cGVHD, min_grade: 2}]
        population: SAF
        source: Holtan et al., Blood 2015;125:1333
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from cartrial.cohort import vocab
from cartrial.endpoints.populations import POPULATIONS

Origin = Literal["infusion", "first_response"]
#: built-in event kinds besides the cohort's event words (see the module docstring)
BUILTIN_KINDS = ("death", "progression", "treatment_failure")


@dataclass(frozen=True)
class AdverseEventKind:
    """An adverse event of ``term`` with grade ≥ ``min_grade``, dated at its onset."""

    term: str
    min_grade: int = 1

    @property
    def key(self) -> str:
        return f"ae:{self.term}>={self.min_grade}"

    def describe(self) -> str:
        return f"{self.term} grade ≥ {self.min_grade}"


EventKind = str | AdverseEventKind


def _describe(kind: EventKind) -> str:
    if isinstance(kind, AdverseEventKind):
        return kind.describe()
    return {
        "progression": "relapse or progression",
        "treatment_failure": "no required response in the response window",
        "sct": "stem-cell transplant",
        "new_therapy": "new anti-leukaemic therapy",
    }.get(kind, kind.replace("_", " "))


@dataclass(frozen=True)
class EndpointDefinition:
    """A time-to-event endpoint, declared.

    ``events``: kinds that are the event (the earliest counts). ``competing``: kinds that,
    when first, end follow-up as a competing event (cause 2). ``censors``: kinds that
    always censor when they come first; ``censor_on_sct`` lets the derivation options
    (``censor_at_sct``/``censor_at_new_therapy``) add SCT / new therapy for this endpoint.
    ``population``: the analysis population code (``POPULATIONS``). ``origin``: day 0 is
    the infusion, or the first objective response (DOR). ``event_cause``/``competing_cause``
    are the codes written in the ``cause`` column (CIR and NRM share one coding).
    """

    name: str
    label: str
    text: str
    events: tuple[EventKind, ...]
    population: str = "SAF"
    origin: Origin = "infusion"
    competing: tuple[EventKind, ...] = ()
    censors: tuple[EventKind, ...] = ()
    censor_on_sct: bool = True
    source: str = ""
    event_cause: int = 1
    competing_cause: int = 2
    builtin: bool = field(default=False, compare=False)

    def definition_text(self) -> str:
        """The derivation text and the population, for methods and metadata."""
        label = POPULATIONS[self.population].label
        return f"{self.text} Population: {label[0].lower()}{label[1:]}."

    def methods_text(self) -> str:
        """One sentence for the methods section: label, text, population."""
        return f"{self.label} ({self.name}): {self.definition_text()}"


_PFS_TEXT = (
    "Time from infusion to relapse or progression (a relapse/progression event, a response "
    "assessment of PD, or a death from the disease) or death of any cause, whichever first; "
    "patients without one are censored at the last day known alive."
)

ENDPOINTS: dict[str, EndpointDefinition] = {
    d.name: d
    for d in (
        EndpointDefinition(
            "OS",
            "Overall survival",
            "Time from infusion to death of any cause; patients alive are censored at the "
            "last day known alive.",
            events=("death",),
            censor_on_sct=False,
            source="PATHWAY.md; Tan et al., J Hematol Oncol 2023;16:34",
            builtin=True,
        ),
        EndpointDefinition(
            "PFS",
            "Progression-free survival",
            _PFS_TEXT,
            events=("progression", "death"),
            source="Cheson et al., J Clin Oncol 2007;25:579; PATHWAY.md",
            builtin=True,
        ),
        EndpointDefinition(
            "EFS",
            "Event-free survival",
            "As PFS, and failure to reach the required response (CR/CRh/CRi by default) in "
            "the response window is an event at day 0 (or day 1, a setting); patients not "
            "assessed or not evaluable in the window are not counted as failures.",
            events=("treatment_failure", "progression", "death"),
            source="ELN 2022, Döhner et al., Blood 2022;140:1345; NCCN ALL; "
            "Maude et al., N Engl J Med 2018;378:439",
            builtin=True,
        ),
        EndpointDefinition(
            "DFS",
            "Disease-free survival",
            "Among patients in CR/CRh/CRi in the response window: time from infusion to "
            "relapse or progression or death of any cause.",
            events=("progression", "death"),
            population="CR",
            source="ELN 2022 (RFS), Döhner et al., Blood 2022;140:1345",
            builtin=True,
        ),
        EndpointDefinition(
            "DOR",
            "Duration of response",
            "Among responders: time from the first objective response to relapse or "
            "progression or death of any cause.",
            events=("progression", "death"),
            population="RESP",
            origin="first_response",
            source="Cheson et al., J Clin Oncol 2007;25:579",
            builtin=True,
        ),
        EndpointDefinition(
            "CIR",
            "Cumulative incidence of relapse",
            "Among patients in CR/CRh/CRi: time from infusion to relapse or progression, "
            "with death without evidence of relapse or progression as the competing event.",
            events=("progression",),
            competing=("death",),
            population="CR",
            source="Gooley et al., Stat Med 1999;18:695; CIBMTR usage",
            builtin=True,
        ),
        EndpointDefinition(
            "NRM",
            "Non-relapse mortality",
            "Among patients in CR/CRh/CRi: time from infusion to death without evidence of "
            "relapse or progression, with relapse or progression as the competing event.",
            events=("death",),
            competing=("progression",),
            population="CR",
            source="Gooley et al., Stat Med 1999;18:695; CIBMTR usage",
            event_cause=2,
            competing_cause=1,
            builtin=True,
        ),
    )
}


class DefinitionError(ValueError):
    """A user-defined endpoint that cannot be used; the message names file and key."""


def _parse_kind(value: Any, where: str, event_words: Iterable[str]) -> EventKind:
    if isinstance(value, Mapping):
        extra = set(value) - {"ae", "min_grade"}
        if "ae" not in value or extra:
            raise DefinitionError(
                f"{where}: expected {{ae: TERM, min_grade: G}}, found keys {sorted(value)}"
            )

        term = vocab.canonical(value["ae"], vocab.AE_TERMS)
        if term is None:
            raise DefinitionError(
                f"{where}: unknown adverse-event term {value['ae']!r}; expected a term of the "
                "cohort vocabulary (e.g. CRS, ICANS, aGVHD, cGVHD, infection)"
            )
        grade = value.get("min_grade", 1)
        if not isinstance(grade, int) or isinstance(grade, bool) or not 1 <= grade <= 5:
            raise DefinitionError(f"{where}.min_grade: found {grade!r}; expected an integer 1–5")
        return AdverseEventKind(term, grade)
    if isinstance(value, str):
        word = value.strip().lower()
        if word in BUILTIN_KINDS:
            return word

        kind = vocab.canonical(word, vocab.EVENTS)
        if kind is None or kind not in set(event_words):
            raise DefinitionError(
                f"{where}: unknown event kind {value!r}; expected one of "
                f"{', '.join([*BUILTIN_KINDS, *sorted(set(event_words) - {'death'})])} "
                "or {ae: TERM, min_grade: G}"
            )
        return kind
    raise DefinitionError(f"{where}: found {value!r}; expected an event kind")


def definition_from_mapping(
    name: str, spec: Mapping[str, Any], where: str = ""
) -> EndpointDefinition:
    """Build a user endpoint from a mapping (a settings file's ``endpoints:`` entry)."""

    where = where or f"endpoints.{name}"
    allowed = {
        "label",
        "text",
        "events",
        "competing",
        "censors",
        "population",
        "origin",
        "source",
        "censor_on_sct",
    }
    if not isinstance(spec, Mapping):
        raise DefinitionError(f"{where}: expected a mapping of {', '.join(sorted(allowed))}")
    unknown = set(spec) - allowed
    if unknown:
        raise DefinitionError(
            f"{where}: unknown key(s) {', '.join(sorted(map(str, unknown)))}; expected "
            f"{', '.join(sorted(allowed))}"
        )
    if not str(name).replace("_", "").isalnum():
        raise DefinitionError(f"{where}: endpoint name {name!r} must be letters, digits or _")
    words = tuple(vocab.EVENTS)

    def kinds(key: str) -> tuple[EventKind, ...]:
        raw = spec.get(key, [])
        if isinstance(raw, str | Mapping):
            raw = [raw]
        return tuple(_parse_kind(v, f"{where}.{key}[{i}]", words) for i, v in enumerate(raw))

    events = kinds("events")
    if not events:
        raise DefinitionError(f"{where}.events: expected at least one event kind")
    population = str(spec.get("population", "SAF")).upper()
    if population not in POPULATIONS:
        raise DefinitionError(
            f"{where}.population: found {population!r}; expected one of {', '.join(POPULATIONS)}"
        )
    origin = str(spec.get("origin", "infusion"))
    if origin not in ("infusion", "first_response"):
        raise DefinitionError(
            f"{where}.origin: found {origin!r}; expected 'infusion' or 'first_response'"
        )
    label = str(spec.get("label", name))
    text = spec.get("text") or (
        "Time from "
        + ("infusion" if origin == "infusion" else "the first response")
        + " to "
        + " or ".join(_describe(k) for k in events)
        + ", whichever first."
    )
    return EndpointDefinition(
        name=str(name).upper(),
        label=label,
        text=str(text),
        events=events,
        competing=kinds("competing"),
        censors=kinds("censors"),
        population=population,
        origin=origin,  # type: ignore[arg-type]
        source=str(spec.get("source", "user-defined")),
        censor_on_sct=bool(spec.get("censor_on_sct", True)),
    )


def load_definitions(source: str | Path | Mapping[str, Any]) -> dict[str, EndpointDefinition]:
    """User endpoints from a YAML/JSON file or mapping with an ``endpoints:`` section.

    Names must not shadow a built-in endpoint; errors name the file and the key.
    """
    where = ""
    if isinstance(source, str | Path):
        import yaml

        path = Path(source)
        where = f"{path}: "
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except OSError as exc:
            raise DefinitionError(f"{path}: cannot read ({exc.strerror})") from None
        except yaml.YAMLError as exc:
            raise DefinitionError(f"{path}: not valid YAML ({exc})") from None
    else:
        data = source
    if not isinstance(data, Mapping):
        raise DefinitionError(f"{where}expected a mapping with an 'endpoints' section")
    section = data.get("endpoints", data)
    if not isinstance(section, Mapping):
        raise DefinitionError(f"{where}endpoints: expected a mapping of name → definition")
    out: dict[str, EndpointDefinition] = {}
    for name, spec in section.items():
        key = str(name).upper()
        if key in ENDPOINTS:
            raise DefinitionError(
                f"{where}endpoints.{name}: {key} is a built-in endpoint; choose another name"
            )
        out[key] = definition_from_mapping(key, spec, f"{where}endpoints.{name}")
    return out


def all_definitions(
    extra: Mapping[str, EndpointDefinition] | None = None,
) -> dict[str, EndpointDefinition]:
    """The built-in endpoints followed by user-defined ones."""
    return {**ENDPOINTS, **(dict(extra) if extra else {})}
