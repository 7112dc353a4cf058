"""The report's document model: what the HTML, PDF and Word renderings all show.

``build_report`` fills a ``Report`` (sections of tables, figures and notes, methods,
provenance); ``render.render_html``, ``pdf.write_pdf`` and ``docx_tables.write_docx``
read it and nothing else, so the three renderings cannot disagree. Tables are the CSV
frames themselves; ``display_rows`` turns a grouped table (``Characteristic`` /
``Level`` columns, as gtsummary prints Table 1) into header rows and indented levels for
the typeset renderings, leaving the CSV in its long, machine-readable form.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from cartrial.endpoints.definitions import ENDPOINTS
from cartrial.endpoints.populations import POPULATIONS

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

    from cartrial.endpoints.definitions import EndpointDefinition
    from cartrial.report.figures import Drawn
    from cartrial.report.settings import ReportSettings

#: a progress callback: one message per report step
Progress = Callable[[str], None]

SECTIONS = (
    ("flow", "Patient flow and analysis populations"),
    ("baseline", "Baseline characteristics"),
    ("risk", "Pre-infusion risk scores"),
    ("efficacy", "Efficacy: response"),
    ("survival", "Efficacy: time-to-event endpoints"),
    ("subgroups", "Subgroup comparisons"),
    ("postinfusion", "Comparisons by an event after infusion"),
    ("safety", "Adverse events"),
    ("design", "Trial design and safety monitoring"),
    ("course", "Individual courses"),
    ("kinetics", "CAR-T kinetics and immune reconstitution"),
)
SYNTHETIC_LABEL = "SYNTHETIC DATA — not real patients"


def _definition(endpoint: str, settings: ReportSettings | None = None) -> EndpointDefinition | None:

    if endpoint in ENDPOINTS:
        return ENDPOINTS[endpoint]
    return settings.user_endpoints().get(endpoint) if settings is not None else None


def endpoint_title(endpoint: str, settings: ReportSettings | None = None) -> str:
    """Display title of an endpoint from its definition (``cartrial.endpoints.definitions``
    or the settings' ``endpoint_definitions``): the label, with the population when it is
    not every infused patient — 'Disease-free survival (in complete remission,
    CR/CRh/CRi)'; the code itself when no definition has it."""

    d = _definition(endpoint, settings)
    if d is None:
        return endpoint
    if d.population in ("SAF", "ITT") or d.population not in POPULATIONS:
        return d.label
    pop = POPULATIONS[d.population].label
    pop = (pop[:1].lower() + pop[1:]).replace(" (", ", ").rstrip(")")
    return f"{d.label} ({pop})"


def time_axis_label(endpoint: str | None, unit: str, settings: ReportSettings | None = None) -> str:
    """x-axis text from the endpoint's time origin: 'Time since CAR-T infusion (months)';
    'Time since first response (months)' for DOR."""
    d = _definition(endpoint, settings) if endpoint else None
    origin = (
        "first response" if d is not None and d.origin == "first_response" else "CAR-T infusion"
    )
    return f"Time since {origin} ({unit})"


@dataclass
class TableItem:
    """One table: its CSV frame, title, section, footnote and population statement.

    ``group_col``/``level_col`` name the columns a typeset rendering folds into a
    heading row with indented levels (Table 1); ``None`` prints the frame as it is.
    """

    name: str
    title: str
    df: pd.DataFrame
    section: str
    footnote: str = ""
    population: str = ""
    group_col: str | None = None
    level_col: str | None = None
    #: CSV-only columns (numbers kept for machines, e.g. a forest plot's HR) not typeset
    hide: tuple[str, ...] = ()
    #: what the typeset renderings print instead of ``df`` (e.g. ``labels.humanize(df)``)
    display: pd.DataFrame | None = None

    @property
    def caption(self) -> str:
        """Footnote text printed under the table (population first)."""
        return " ".join(x for x in (self.population, self.footnote) if x).strip()


@dataclass
class SectionOutput:
    """What one section builder adds to the report, in print order."""

    tables: list[TableItem] = field(default_factory=list)
    #: (section key, figure)
    figures: list[tuple[str, Drawn]] = field(default_factory=list)
    #: (section key, paragraph) printed at the top of a section (skipped analyses …)
    section_notes: list[tuple[str, str]] = field(default_factory=list)
    #: report-level notes
    notes: list[str] = field(default_factory=list)
    #: paragraphs appended to the methods
    methods: list[str] = field(default_factory=list)


@dataclass
class Report:
    """Everything the report shows, before it is written."""

    settings: ReportSettings
    tables: list[TableItem] = field(default_factory=list)
    figures: list[tuple[str, Drawn]] = field(default_factory=list)  # (section, figure)
    methods: list[str] = field(default_factory=list)
    definitions: list[tuple[str, str]] = field(default_factory=list)
    provenance: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    #: (section, paragraph) texts printed at the top of a section (skipped analyses …)
    section_notes: list[tuple[str, str]] = field(default_factory=list)
    synthetic: bool = False
    endpoints: pd.DataFrame | None = None
    patients: pd.DataFrame | None = None
    populations: pd.DataFrame | None = None

    def table(self, name: str) -> pd.DataFrame:
        return next(t.df for t in self.tables if t.name == name)

    def table_item(self, name: str) -> TableItem:
        return next(t for t in self.tables if t.name == name)

    def figure(self, name: str) -> Drawn:
        return next(f for _, f in self.figures if f.name == name)

    def sections(self) -> list[dict[str, Any]]:
        """Sections in print order, each with its tables, figures and notes (non-empty only)."""
        out = []
        for key, title in SECTIONS:
            tables = [t for t in self.tables if t.section == key]
            figures = [d for s, d in self.figures if s == key]
            notes = [n for s, n in self.section_notes if s == key]
            if tables or figures or notes:
                out.append(
                    {
                        "key": key,
                        "title": title,
                        "tables": tables,
                        "figures": figures,
                        "notes": notes,
                    }
                )
        return out


def display_rows(item: TableItem) -> tuple[list[str], list[tuple[str, list[str]]]]:
    """(header, rows) for a typeset table; each row is (kind, cells).

    kind: ``"group"`` (a heading row: the characteristic, other cells empty unless it has
    a single statistic), ``"level"`` (indented level under a group) or ``"row"``.
    """
    src = item.display if item.display is not None else item.df
    df = src.drop(columns=[c for c in item.hide if c in src.columns])
    df = df.astype(object).where(df.notna(), "")
    if item.group_col is None or item.level_col is None or item.group_col not in df:
        header = [str(c) for c in df.columns]
        return header, [("row", [str(v) for v in r]) for r in df.itertuples(index=False)]
    g, lv = item.group_col, item.level_col
    rest = [c for c in df.columns if c not in (g, lv)]
    header = [str(g), *[str(c) for c in rest]]
    rows: list[tuple[str, list[str]]] = []
    sizes = df.groupby(g, sort=False).size()
    for name, sub in df.groupby(g, sort=False):
        if sizes[name] == 1:  # one statistic: a single row "Age, years — median (range)"
            r = sub.iloc[0]
            level = str(r[lv])
            text = f"{name}, {level}" if level and level != "n" else str(name)
            rows.append(("row", [text, *[str(r[c]) for c in rest]]))
            continue
        rows.append(("group", [str(name), *[""] * len(rest)]))
        for _, r in sub.iterrows():
            rows.append(("level", [str(r[lv]), *[str(r[c]) for c in rest]]))
    return header, rows
