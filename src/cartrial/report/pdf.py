"""Typeset PDF rendering of the document model (ReportLab).

Why ReportLab: pure-pip (no system libraries, unlike WeasyPrint's Pango/Cairo), mature,
embeds TrueType fonts (DejaVu Sans, shipped with Matplotlib, so ≥, ×, 10⁶ and "–" print
on every machine), and writes a 30-page report in well under a second. Typst (via its
PyPI package) typesets beautifully but needs the whole document translated into Typst
markup and escapes for every cell; measured on the 60-patient report, ReportLab's
layout took ≈ 0.3 s CPU.

The PDF has A4 pages with the title and (for synthetic cohorts) "SYNTHETIC DATA" in the
header of every page, "page n of N" in the footer, bookmarks for every section, table and
figure, real tables (repeated header rows across page breaks, grouped Table 1 rows with
indented levels), numbered captions above and footnotes (population, methods) below every
table and figure. Figures are the PNGs drawn once by ``write_report``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cartrial.report.document import SYNTHETIC_LABEL, display_rows
from cartrial.report.palette import GREY, SYNTHETIC_RED

if TYPE_CHECKING:  # pragma: no cover
    from cartrial.report.document import Report, TableItem

PDF_MAX_ROWS = 60
FONT = "DejaVuSans"
FONT_BOLD = "DejaVuSans-Bold"
FONT_ITALIC = "DejaVuSans-Oblique"


def _register_fonts() -> None:
    import matplotlib
    from reportlab.lib.fonts import addMapping
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.ttfonts import TTFont

    if FONT in pdfmetrics.getRegisteredFontNames():
        return
    folder = Path(matplotlib.get_data_path()) / "fonts" / "ttf"
    for name in (FONT, FONT_BOLD, FONT_ITALIC, "DejaVuSans-BoldOblique"):
        pdfmetrics.registerFont(TTFont(name, str(folder / f"{name}.ttf")))
    addMapping(FONT, 0, 0, FONT)
    addMapping(FONT, 1, 0, FONT_BOLD)
    addMapping(FONT, 0, 1, FONT_ITALIC)
    addMapping(FONT, 1, 1, "DejaVuSans-BoldOblique")


def _styles() -> dict[str, Any]:
    from reportlab.lib.colors import HexColor
    from reportlab.lib.styles import ParagraphStyle

    base = ParagraphStyle("body", fontName=FONT, fontSize=9, leading=12.2)
    return {
        "title": ParagraphStyle(
            "title", parent=base, fontName=FONT_BOLD, fontSize=15, leading=19, spaceAfter=6
        ),
        "banner": ParagraphStyle(
            "banner",
            parent=base,
            fontName=FONT_BOLD,
            fontSize=10.5,
            textColor=HexColor(SYNTHETIC_RED),
            spaceAfter=6,
        ),
        "h1": ParagraphStyle(
            "h1",
            parent=base,
            fontName=FONT_BOLD,
            fontSize=12.5,
            leading=16,
            spaceBefore=10,
            spaceAfter=5,
            textColor=HexColor("#1d3557"),
            keepWithNext=1,
        ),
        "caption": ParagraphStyle(
            "caption",
            parent=base,
            fontName=FONT_BOLD,
            fontSize=9,
            leading=11.5,
            spaceBefore=8,
            spaceAfter=3,
            keepWithNext=1,
        ),
        "foot": ParagraphStyle(
            "foot",
            parent=base,
            fontSize=7.2,
            leading=9.2,
            textColor=HexColor(GREY),
            spaceBefore=2,
            spaceAfter=6,
        ),
        "body": base,
        "note": ParagraphStyle(
            "note",
            parent=base,
            backColor=HexColor("#fff6e5"),
            borderPadding=4,
            spaceBefore=4,
            spaceAfter=8,
        ),
        "cell": ParagraphStyle("cell", parent=base, fontSize=7.4, leading=9),
        "cellh": ParagraphStyle("cellh", parent=base, fontName=FONT_BOLD, fontSize=7.4, leading=9),
        "small": ParagraphStyle("small", parent=base, fontSize=7.5, leading=9.5),
    }


def _esc(text: str) -> str:
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def column_widths(
    header: list[str],
    rows: list[list[str]],
    width: float,
    char_pt: float = 4.3,
    pad_pt: float = 6.0,
) -> list[float]:
    """Column widths (points) summing to ``width``: every column at least as wide as its
    longest word (no word is broken), the rest shared in proportion to the text each
    column would need on one line (capped at 40 characters)."""
    cols = list(zip(header, *rows, strict=True)) if rows else [(h,) for h in header]
    natural = [min(40, max(len(v) for v in col)) * char_pt + pad_pt for col in cols]
    words = [
        min(22, max(len(w) for v in col for w in (v.split() or [""]))) * char_pt + pad_pt
        for col in cols
    ]
    if sum(natural) <= width:
        extra = width - sum(natural)
        return [n + extra * n / sum(natural) for n in natural]
    if sum(words) >= width:
        return [width * w / sum(words) for w in words]
    room = width - sum(words)
    need = [max(n - w, 0.0) for n, w in zip(natural, words, strict=True)]
    total = sum(need) or 1.0
    return [w + room * k / total for w, k in zip(words, need, strict=True)]


def _table_flowables(item: TableItem, number: int, st: dict[str, Any], width: float) -> list:
    from reportlab.lib.colors import HexColor, black
    from reportlab.platypus import KeepTogether, Paragraph, Spacer, Table, TableStyle

    cap = Paragraph(f"Table {number}. {_esc(item.title)}", st["caption"])
    cap._bookmark = (f"Table {number}. {item.title}", 1)
    foot = Paragraph(_esc(item.caption), st["foot"]) if item.caption else Spacer(1, 4)
    if len(item.df) > PDF_MAX_ROWS:
        return [
            cap,
            Paragraph(
                f"{len(item.df)} rows: a per-patient listing, not typeset here; see "
                f"tables/{_esc(item.name)}.csv, tables.docx and index.html.",
                st["small"],
            ),
            foot,
        ]
    header, rows = display_rows(item)
    col_w = column_widths(header, [c for _, c in rows], width)
    data = [[Paragraph(_esc(h), st["cellh"]) for h in header]]
    style = [
        ("LINEABOVE", (0, 0), (-1, 0), 0.9, black),
        ("LINEBELOW", (0, 0), (-1, 0), 0.6, black),
        ("LINEBELOW", (0, -1), (-1, -1), 0.9, black),
        ("VALIGN", (0, 0), (-1, -1), "TOP"),
        ("TOPPADDING", (0, 0), (-1, -1), 1.2),
        ("BOTTOMPADDING", (0, 0), (-1, -1), 1.2),
        ("LEFTPADDING", (0, 0), (-1, -1), 2.5),
        ("RIGHTPADDING", (0, 0), (-1, -1), 2.5),
    ]
    for i, (kind, cells) in enumerate(rows, start=1):
        first = _esc(cells[0])
        if kind == "group":
            first = f"<b>{first}</b>"
        elif kind == "level":
            first = f"&nbsp;&nbsp;&nbsp;&nbsp;{first}"
        data.append(
            [Paragraph(first, st["cell"])] + [Paragraph(_esc(c), st["cell"]) for c in cells[1:]]
        )
        if kind == "group" and i > 1:
            style.append(("LINEABOVE", (0, i), (-1, i), 0.25, HexColor("#bbbbbb")))
    table = Table(data, colWidths=col_w, repeatRows=1, hAlign="LEFT")
    table.setStyle(TableStyle(style))
    if len(rows) <= 25:
        return [KeepTogether([cap, table, foot])]
    return [cap, table, foot]


def png_stream(path: Path) -> tuple[int, int, bytes] | None:
    """(width, height, zlib data) of an 8-bit RGB non-interlaced PNG, else None.

    The PNG's IDAT data is a zlib stream of predictor-filtered rows, which a PDF image
    reads directly with ``/FlateDecode`` and ``/DecodeParms << /Predictor 15 >>`` (PDF
    32000-1 §7.4.4.4): no decoding and re-compressing (what ReportLab's ``Image`` does,
    ~50 ms per figure).
    """
    import struct

    data = path.read_bytes()
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        return None
    pos, width, height, idat = 8, 0, 0, []
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind = data[pos + 4 : pos + 8]
        body = data[pos + 8 : pos + 8 + length]
        if kind == b"IHDR":
            width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", body)
            if depth != 8 or colour != 2 or interlace != 0:
                return None
        elif kind == b"IDAT":
            idat.append(body)
        elif kind == b"IEND":
            break
        pos += 12 + length
    return (width, height, b"".join(idat)) if idat and width else None


def _png_flowable(path: Path, width: float, height: float):
    """A flowable drawing the PNG as a PDF image XObject straight from its IDAT stream;
    ReportLab's own ``Image`` where the PNG is not plain 8-bit RGB."""
    from reportlab.pdfbase import pdfdoc
    from reportlab.platypus import Flowable, Image

    parsed = png_stream(path)
    if parsed is None:
        return Image(str(path), width=width, height=height)
    px_w, px_h, stream = parsed

    class PngXObject(pdfdoc.PDFImageXObject):
        def __init__(self, name: str) -> None:
            self.name = name
            self.width, self.height = px_w, px_h
            self.mask = None

        def format(self, document: Any) -> bytes:
            d = pdfdoc.PDFDictionary(
                {
                    "Type": pdfdoc.PDFName("XObject"),
                    "Subtype": pdfdoc.PDFName("Image"),
                    "Width": px_w,
                    "Height": px_h,
                    "BitsPerComponent": 8,
                    "ColorSpace": pdfdoc.PDFName("DeviceRGB"),
                    "Filter": pdfdoc.PDFName("FlateDecode"),  # a name: DecodeParms is a dict
                    "DecodeParms": pdfdoc.PDFDictionary(
                        {"Predictor": 15, "Colors": 3, "BitsPerComponent": 8, "Columns": px_w}
                    ),
                    "Length": len(stream),
                }
            )
            return pdfdoc.PDFStream(d, stream).format(document)

    class PngImage(Flowable):
        def __init__(self) -> None:
            super().__init__()
            self.width, self.height = width, height
            self.hAlign = "LEFT"

        def wrap(self, *_args: Any) -> tuple[float, float]:
            return self.width, self.height

        def draw(self) -> None:
            canv = self.canv
            name = f"png-{path.name}"
            reg = canv._doc.getXObjectName(name)
            if canv._doc.idToObject.get(reg) is None:
                obj = PngXObject(name)
                canv._setXObjects(obj)
                canv._doc.Reference(obj, reg)
                canv._doc.addForm(name, obj)
            canv.saveState()
            canv.scale(self.width, self.height)
            canv._code.append(f"/{reg} Do")
            canv.restoreState()
            canv._formsinuse.append(name)

    return PngImage()


def _figure_flowables(
    drawn: Any, number: int, folder: Path, st: dict[str, Any], width: float, height: float
) -> list:
    from reportlab.platypus import KeepTogether, Paragraph

    path = folder / f"{drawn.name}.png"
    w_in, h_in = drawn.fig.get_size_inches()
    w = min(width, w_in * 72 * 0.84)  # two KM figures per A4 page; 8.5 pt text → 7 pt
    h = w * h_in / w_in
    limit = height - 90
    if h > limit:
        w, h = w * limit / h, limit
    cap = Paragraph(f"Figure {number}. {_esc(drawn.title)}", st["caption"])
    cap._bookmark = (f"Figure {number}. {drawn.title}", 1)
    img = _png_flowable(path, w, h)
    return [KeepTogether([cap, img, Paragraph(_esc(drawn.caption), st["foot"])])]


def write_pdf(report: Report, path: str | os.PathLike[str], figure_dir: Path) -> Path:
    """Typeset ``report`` into ``path`` (figures read from ``figure_dir``/<name>.png)."""
    from reportlab import rl_config
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.units import mm
    from reportlab.pdfgen.canvas import Canvas
    from reportlab.platypus import BaseDocTemplate, CondPageBreak, Frame, PageTemplate, Paragraph

    rl_config.useA85 = 0  # binary streams: ASCII85 costs ~0.2 s per figure in pure Python
    _register_fonts()
    st = _styles()
    title = report.settings.title
    synthetic = report.synthetic

    class NumberedCanvas(Canvas):
        """Defers page decoration until the page count is known ("page n of N")."""

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self._pages: list[dict[str, Any]] = []

        def showPage(self) -> None:
            self._pages.append(dict(self.__dict__))
            self._startPage()

        def save(self) -> None:
            n = len(self._pages)
            for state in self._pages:
                self.__dict__.update(state)
                self._decorate(n)
                super().showPage()
            super().save()

        def _decorate(self, n: int) -> None:
            w, h = A4
            self.setFont(FONT, 7.5)
            self.setFillGray(0.35)
            self.drawString(18 * mm, h - 11 * mm, title[:110])
            self.drawRightString(w - 18 * mm, 9 * mm, f"page {self._pageNumber} of {n}")
            self.drawString(
                18 * mm, 9 * mm, "cartrial " + str(report.provenance.get("cartrial_version", ""))
            )
            if synthetic:
                self.setFont(FONT_BOLD, 8.5)
                self.setFillColorRGB(0.70, 0.15, 0.12)
                self.drawRightString(w - 18 * mm, h - 11 * mm, SYNTHETIC_LABEL)
                self.drawCentredString(w / 2, 9 * mm, SYNTHETIC_LABEL)

    class Doc(BaseDocTemplate):
        def afterFlowable(self, flowable: Any) -> None:
            mark = getattr(flowable, "_bookmark", None)
            if mark:
                text, level = mark
                key = f"bm{id(flowable)}"
                self.canv.bookmarkPage(key)
                self.canv.addOutlineEntry(text, key, level=level, closed=level > 0)

    margin = 18 * mm
    doc = Doc(
        str(path),
        pagesize=A4,
        leftMargin=margin,
        rightMargin=margin,
        topMargin=17 * mm,
        bottomMargin=16 * mm,
        title=title,
        author="cartrial",
        creator="cartrial",
        subject="CAR-T trial report",
        invariant=1,
    )
    frame = Frame(doc.leftMargin, doc.bottomMargin, doc.width, doc.height, id="body")
    doc.addPageTemplates([PageTemplate(id="page", frames=[frame])])
    story: list[Any] = [Paragraph(_esc(title), st["title"])]
    if synthetic:
        story.append(Paragraph(SYNTHETIC_LABEL + " (generated by cartrial simulate)", st["banner"]))
    prov = report.provenance
    story.append(
        Paragraph(
            f"Generated by cartrial {_esc(prov.get('cartrial_version', ''))} on "
            f"{_esc(prov.get('date', ''))}. Data cut-off: {_esc(prov.get('data_cutoff', ''))}. "
            f"Patients: {_esc(prov.get('patients', ''))}. Input SHA-256: "
            f"{_esc(prov.get('input_sha256', ''))}.",
            st["small"],
        )
    )
    t_no = f_no = 0
    for sec in report.sections():
        story.append(CondPageBreak(doc.height * 0.22))  # no heading alone at a page foot
        h = Paragraph(_esc(sec["title"]), st["h1"])
        h._bookmark = (sec["title"], 0)
        story.append(h)
        for note in sec["notes"]:
            story.append(Paragraph(_esc(note), st["note"]))
        for t in sec["tables"]:
            t_no += 1
            story += _table_flowables(t, t_no, st, doc.width)
        for drawn in sec["figures"]:
            f_no += 1
            story += _figure_flowables(drawn, f_no, figure_dir, st, doc.width, doc.height)
    h = Paragraph("Methods", st["h1"])
    h._bookmark = ("Methods", 0)
    story.append(h)
    story += [Paragraph(_esc(p), st["body"]) for p in report.methods]
    h = Paragraph("Endpoint definitions", st["h1"])
    h._bookmark = ("Endpoint definitions", 0)
    story.append(h)
    story += [Paragraph(f"<b>{_esc(n)}</b>: {_esc(t)}", st["body"]) for n, t in report.definitions]
    if report.notes:
        h = Paragraph("Notes", st["h1"])
        h._bookmark = ("Notes", 0)
        story.append(h)
        story += [Paragraph(_esc(n), st["small"]) for n in report.notes]
    doc.build(story, canvasmaker=NumberedCanvas)
    return Path(path)
