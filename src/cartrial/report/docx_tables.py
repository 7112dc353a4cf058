"""Word (.docx) rendering of the report's tables in journal style (python-docx).

Manuscripts are written in Word: ``tables.docx`` holds every table of the document model
as an editable Word table — numbered title above, three horizontal rules (above and below
the header, below the last row; no vertical lines, as journals typeset them), grouped
Table 1 rows with bold headings and indented levels, and the footnote (population,
methods) below. A synthetic cohort's label is in the page header and above each table.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from cartrial.report.document import SYNTHETIC_LABEL, display_rows

if TYPE_CHECKING:  # pragma: no cover
    from cartrial.report.document import Report

#: per-patient listings longer than this are left to the CSV
DOCX_MAX_ROWS = 200


def _borders(cell, top: int = 0, bottom: int = 0) -> None:
    """Set a cell's top/bottom border widths (eighths of a point; 0 = none)."""
    from docx.oxml import OxmlElement
    from docx.oxml.ns import qn

    tc_pr = cell._tc.get_or_add_tcPr()
    borders = tc_pr.find(qn("w:tcBorders"))
    if borders is None:
        borders = OxmlElement("w:tcBorders")
        tc_pr.append(borders)
    for side, size in (("top", top), ("bottom", bottom)):
        if size:
            el = OxmlElement(f"w:{side}")
            el.set(qn("w:val"), "single")
            el.set(qn("w:sz"), str(size))
            el.set(qn("w:color"), "000000")
            borders.append(el)


def write_docx(report: Report, path: str | os.PathLike[str]) -> Path:
    """Write every table of ``report`` to ``path`` (.docx); returns the path."""
    from docx import Document
    from docx.enum.section import WD_ORIENT
    from docx.shared import Cm, Pt, RGBColor

    doc = Document()
    sec = doc.sections[0]
    sec.orientation = WD_ORIENT.LANDSCAPE
    sec.page_width, sec.page_height = sec.page_height, sec.page_width
    for side in ("left_margin", "right_margin", "top_margin", "bottom_margin"):
        setattr(sec, side, Cm(1.8))
    normal = doc.styles["Normal"]
    normal.font.name = "Arial"
    normal.font.size = Pt(9)
    if report.synthetic:
        head = sec.header.paragraphs[0]
        run = head.add_run(SYNTHETIC_LABEL)
        run.bold = True
        run.font.color.rgb = RGBColor(0xB3, 0x26, 0x1E)
    doc.core_properties.title = report.settings.title
    doc.core_properties.author = "cartrial"
    doc.add_heading(report.settings.title, level=1)
    number = 0
    for section in report.sections():
        for item in section["tables"]:
            number += 1
            p = doc.add_paragraph()
            r = p.add_run(f"Table {number}. {item.title}")
            r.bold = True
            if report.synthetic:
                s = p.add_run(f"  [{SYNTHETIC_LABEL}]")
                s.font.size = Pt(8)
                s.font.color.rgb = RGBColor(0xB3, 0x26, 0x1E)
            if len(item.df) > DOCX_MAX_ROWS:
                doc.add_paragraph(
                    f"{len(item.df)} rows: a per-patient listing; see tables/{item.name}.csv."
                )
                continue
            header, rows = display_rows(item)
            table = doc.add_table(rows=len(rows) + 1, cols=len(header))
            table.autofit = True
            all_rows = table.rows
            for j, cell in enumerate(all_rows[0].cells):
                cell.text = ""
                run = cell.paragraphs[0].add_run(header[j])
                run.bold = True
                _borders(cell, top=12, bottom=6)
            last = len(rows)
            for i, (kind, values) in enumerate(rows, start=1):
                cells = all_rows[i].cells
                for j, cell in enumerate(cells):
                    para = cell.paragraphs[0]
                    run = para.add_run(values[j])
                    if j == 0 and kind == "group":
                        run.bold = True
                    if j == 0 and kind == "level":
                        para.paragraph_format.left_indent = Cm(0.4)
                    if i == last:
                        _borders(cell, bottom=12)
            if item.caption:
                foot = doc.add_paragraph(item.caption)
                for run in foot.runs:
                    run.font.size = Pt(7.5)
    doc.save(str(path))
    return Path(path)
