"""Rendering: the self-contained HTML page (Jinja2) and the PDF's text and table pages."""

from __future__ import annotations

import base64
import html
import textwrap
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

if TYPE_CHECKING:  # pragma: no cover
    from cartrial.report.build import Report, TableItem

TEMPLATES = Path(__file__).resolve().parent / "templates"
A4_LANDSCAPE = (11.69, 8.27)
ROWS_PER_PAGE = 28
#: longer tables (per-patient listings) are not typeset in the PDF: the CSV holds them
PDF_MAX_ROWS = 60


def table_html(df: pd.DataFrame) -> str:
    """An escaped HTML table (no index)."""
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in df.columns)
    body = []
    for row in df.itertuples(index=False):
        cells = "".join(f"<td>{'' if pd.isna(v) else html.escape(str(v))}</td>" for v in row)
        body.append(f"<tr>{cells}</tr>")
    return (f'<table class="tbl"><thead><tr>{head}</tr></thead><tbody>{"".join(body)}'
            "</tbody></table>")


def render_html(report: Report, figure_dir: Path) -> str:
    """index.html with every figure inlined as a base64 SVG image."""
    from jinja2 import Environment, FileSystemLoader, select_autoescape
    from markupsafe import Markup

    from cartrial.report.build import SECTIONS, endpoint_definitions

    env = Environment(loader=FileSystemLoader(str(TEMPLATES)),
                      autoescape=select_autoescape(["html", "j2"]))
    sections = []
    for key, title in SECTIONS:
        tables = [{"name": t.name, "title": t.title, "html": Markup(table_html(t.df)),
                   "footnote": t.footnote, "long": len(t.df) > PDF_MAX_ROWS, "rows": len(t.df)}
                  for t in report.tables if t.section == key]
        figures = []
        for sec, drawn in report.figures:
            if sec != key:
                continue
            svg = (figure_dir / f"{drawn.name}.svg").read_bytes()
            figures.append({"name": drawn.name, "title": drawn.title, "caption": drawn.caption,
                            "src": "data:image/svg+xml;base64," + base64.b64encode(svg).decode()})
        if tables or figures:
            sections.append({"key": key, "title": title, "tables": tables, "figures": figures})
    template = env.get_template("report.html.j2")
    return template.render(
        title=report.settings.title, synthetic=report.synthetic, sections=sections,
        methods=report.methods, definitions=endpoint_definitions(),
        provenance=report.provenance, settings_yaml=report.settings.to_yaml(),
        notes=report.notes,
    )


def pdf_text_page(pdf, report: Report) -> None:
    """Title page(s): title, provenance, methods and endpoint definitions (wrapped)."""
    from matplotlib.figure import Figure

    from cartrial.report.build import endpoint_definitions

    lines: list[tuple[str, float, str]] = [(report.settings.title, 13, "bold")]
    if report.synthetic:
        lines.append(("SYNTHETIC DATA — not real patients", 11, "bold"))
    prov = report.provenance
    for key in ("source", "input_sha256", "cartrial_version", "date", "patients"):
        lines.append((f"{key.replace('_', ' ')}: {prov.get(key, '')}", 8, "normal"))
    lines.append(("Methods", 10, "bold"))
    for para in report.methods:
        lines += [(w, 7.5, "normal") for w in textwrap.wrap(para, 170)]
    lines.append(("Endpoint definitions", 10, "bold"))
    for name, text in endpoint_definitions():
        lines += [(w, 7.5, "normal") for w in textwrap.wrap(f"{name}: {text}", 170)]
    fig = Figure(figsize=A4_LANDSCAPE)
    y = 0.96
    for text, size, weight in lines:
        if y < 0.05:
            pdf.savefig(fig)
            fig = Figure(figsize=A4_LANDSCAPE)
            y = 0.96
        fig.text(0.04, y, text, fontsize=size, weight=weight, va="top")
        y -= (size + 4) / 72 / A4_LANDSCAPE[1]
    pdf.savefig(fig)


def _fit(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def pdf_table_pages(pdf, item: TableItem) -> None:
    """A table as landscape pages of monospaced rows (``ROWS_PER_PAGE`` rows each).

    One text object per row keeps the PDF small and fast to write (a cell-per-text
    ``matplotlib.table`` costs ~10× more); columns are padded to their widest cell and
    very long cells are shortened with "…" (the CSV holds the full text).
    """
    from matplotlib.figure import Figure

    if len(item.df) > PDF_MAX_ROWS:
        fig = Figure(figsize=A4_LANDSCAPE)
        fig.text(0.03, 0.96, item.title, fontsize=11, weight="bold", va="top")
        fig.text(0.03, 0.90, f"{len(item.df)} rows: a per-patient listing, not typeset here; "
                 f"see tables/{item.name}.csv and index.html.", fontsize=9, va="top")
        pdf.savefig(fig)
        return
    df = item.df.astype(object).where(item.df.notna(), "").astype(str)
    cols = [str(c) for c in df.columns]
    limit = 46
    widths = [min(limit, max([len(c)] + [len(v) for v in df[c0]])) for c, c0 in
              zip(cols, df.columns, strict=True)]
    total = sum(widths) + 2 * (len(widths) - 1)
    size = 7.5 if total <= 170 else max(4.0, 7.5 * 170 / total)
    sep = "  "
    header = sep.join(_fit(c, w).ljust(w) for c, w in zip(cols, widths, strict=True))
    rule = "─" * len(header)
    rows = [sep.join(_fit(v, w).ljust(w) for v, w in zip(r, widths, strict=True))
            for r in df.itertuples(index=False)]
    per_page = max(1, int(ROWS_PER_PAGE * 7.5 / size * 1.3))
    n_pages = max(1, -(-len(rows) // per_page))
    for page in range(n_pages):
        chunk = rows[page * per_page:(page + 1) * per_page]
        fig = Figure(figsize=A4_LANDSCAPE)
        suffix = f" (page {page + 1} of {n_pages})" if n_pages > 1 else ""
        fig.text(0.03, 0.96, item.title + suffix, fontsize=11, weight="bold", va="top")
        body = "\n".join([header, rule, *chunk])
        fig.text(0.03, 0.91, body, fontsize=size, family="DejaVu Sans Mono", va="top",
                 linespacing=1.35)
        if item.footnote:
            fig.text(0.03, 0.03, "\n".join(textwrap.wrap(item.footnote, 190)), fontsize=6.5,
                     va="bottom")
        pdf.savefig(fig)

