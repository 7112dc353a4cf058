"""HTML rendering of the document model (Jinja2): one self-contained index.html.

Reads only ``cartrial.report.document`` (the same model the PDF and Word renderings
read); figures are the PNG files drawn once by ``write_report``, inlined as base64.
"""

from __future__ import annotations

import base64
import html
from pathlib import Path
from typing import TYPE_CHECKING

from cartrial.report.document import SYNTHETIC_LABEL, TableItem, display_rows

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

    from cartrial.report.document import Report, TableItem

TEMPLATES = Path(__file__).resolve().parent / "templates"
#: longer tables (per-patient listings) are folded in the HTML and not typeset in the PDF
PDF_MAX_ROWS = 60


def table_html(item: TableItem | pd.DataFrame) -> str:
    """An escaped HTML table (no index); grouped tables get heading rows and indented
    levels (class ``grp`` / ``lvl``)."""

    if not isinstance(item, TableItem):
        item = TableItem("t", "", item, "")
    header, rows = display_rows(item)
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in header)
    body = []
    for kind, cells in rows:
        cls = {"group": ' class="grp"', "level": ' class="lvl"'}.get(kind, "")
        tds = "".join(f"<td>{html.escape(v)}</td>" for v in cells)
        body.append(f"<tr{cls}>{tds}</tr>")
    return (
        f'<table class="tbl"><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table>'
    )


def render_html(report: Report, figure_dir: Path) -> str:
    """index.html with every figure inlined as a base64 PNG image."""
    from jinja2 import Environment, FileSystemLoader, select_autoescape
    from markupsafe import Markup

    env = Environment(
        loader=FileSystemLoader(str(TEMPLATES)), autoescape=select_autoescape(["html", "j2"])
    )
    sections = []
    t_no, f_no = 0, 0
    for sec in report.sections():
        tables = []
        for t in sec["tables"]:
            t_no += 1
            tables.append(
                {
                    "name": t.name,
                    "title": f"Table {t_no}. {t.title}",
                    "html": Markup(table_html(t)),
                    "footnote": t.caption,
                    "long": len(t.df) > PDF_MAX_ROWS,
                    "rows": len(t.df),
                }
            )
        figures = []
        for drawn in sec["figures"]:
            f_no += 1
            png = (figure_dir / f"{drawn.name}.png").read_bytes()
            figures.append(
                {
                    "name": drawn.name,
                    "title": f"Figure {f_no}. {drawn.title}",
                    "caption": drawn.caption,
                    "src": "data:image/png;base64," + base64.b64encode(png).decode(),
                }
            )
        sections.append(
            {
                "key": sec["key"],
                "title": sec["title"],
                "tables": tables,
                "figures": figures,
                "notes": sec["notes"],
            }
        )
    template = env.get_template("report.html.j2")
    return template.render(
        title=report.settings.title,
        synthetic=report.synthetic,
        sections=sections,
        synthetic_label=SYNTHETIC_LABEL,
        methods=report.methods,
        definitions=report.definitions,
        provenance=report.provenance,
        settings_yaml=report.settings.to_yaml(),
        notes=report.notes,
    )
