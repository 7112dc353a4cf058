"""Server-side inline SVG for the patient page: a course timeline and kinetics curves.

Plain SVG strings (no JavaScript, no matplotlib) so a page renders in milliseconds.
Every text is XML-escaped.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from html import escape
from typing import Any

from cartrial.cohort.labels import ANALYTE_VALUES, ae_term_label, value_label
from cartrial.report.palette import EVENT_COLOURS, GRADE_COLOURS, NEUTRAL

#: event marker (colour, label): colours from the report's palette (one palette)
EVENT_STYLE = {
    kind: (EVENT_COLOURS[kind], label)
    for kind, label in (
        ("infusion", "Infusion"),
        ("response", "Response"),
        ("sct", "SCT"),
        ("relapse", "Relapse"),
        ("progression", "Progression"),
        ("death", "Death"),
        ("new_therapy", "New therapy"),
        ("last_contact", "Last contact"),
        ("lost_to_followup", "Lost to follow-up"),
        ("withdrawal", "Withdrawal"),
    )
}
_INFUSION = EVENT_COLOURS["infusion"]
AE_ROWS = ("CRS", "ICANS", "aGVHD", "cGVHD")


def timeline_svg(events: Sequence[Any], adverse_events: Sequence[Any], width: int = 860) -> str:
    """The course from infusion (day 0): events as labelled markers, AE episodes as bars.

    ``events`` have ``day``, ``event``, ``response``; ``adverse_events`` have ``term``,
    ``onset_day``, ``resolution_day``, ``grade`` (bars coloured by grade).
    """
    days = [0.0] + [e.day for e in events if e.day is not None]
    days += [a.onset_day for a in adverse_events if a.onset_day is not None]
    days += [a.resolution_day for a in adverse_events if a.resolution_day is not None]
    lo, hi = min(days), max(days)
    hi = max(hi, lo + 30)
    left, right = 110, 20
    rows = ["Events", *AE_ROWS, "Other AEs"]
    row_h = 30

    def x(day: float) -> float:
        return left + (day - lo) / (hi - lo) * (width - left - right)

    placed = _label_levels(events, x)
    extra = 12 * max((lvl for *_r, lvl in placed), default=0)
    height = 40 + extra + row_h * len(rows)

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="timeline" role="img" '
        f'aria-label="Patient timeline" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}"><g transform="translate(0 {extra})">'
    ]
    for i, label in enumerate(rows):
        y = 20 + i * row_h
        parts.append(f'<text x="4" y="{y + 15}" font-size="12">{escape(label)}</text>')
        parts.append(
            f'<line x1="{left}" x2="{width - right}" y1="{y + 11}" y2="{y + 11}" stroke="#eee"/>'
        )
    axis_y = 20 + row_h * len(rows)
    for tick in _ticks(lo, hi):
        parts.append(
            f'<text x="{x(tick):.1f}" y="{axis_y + 14}" font-size="10" '
            f'text-anchor="middle">{tick:g}</text>'
        )
        parts.append(
            f'<line x1="{x(tick):.1f}" x2="{x(tick):.1f}" y1="16" y2="{axis_y}" stroke="#f3f3f3"/>'
        )
    parts.append(
        f'<line x1="{x(0):.1f}" x2="{x(0):.1f}" y1="16" y2="{axis_y}" '
        f'stroke="{_INFUSION}" stroke-dasharray="4 3"/>'
    )
    parts.append(
        f'<text x="{x(0) + 3:.1f}" y="14" font-size="10" fill="{_INFUSION}">day 0 infusion</text>'
    )
    for e, label, colour, level in placed:
        cx = x(e.day)
        parts.append(
            f'<g class="event event-{escape(e.event)}"><title>{escape(label)} day {e.day:g}'
            f'</title><circle cx="{cx:.1f}" cy="31" r="6" fill="{colour}"/>'
            f'<text x="{cx:.1f}" y="{22 - 12 * level}" font-size="10" text-anchor="middle">'
            f"{escape(label)}</text></g>"
        )
    for a in adverse_events:
        if a.onset_day is None:
            continue
        row = AE_ROWS.index(a.term) + 1 if a.term in AE_ROWS else len(rows) - 1
        y = 20 + row * row_h + 4
        end = a.resolution_day if a.resolution_day is not None else a.onset_day + 1
        x0, x1 = x(a.onset_day), max(x(end), x(a.onset_day) + 4)
        grade = a.grade if a.grade is not None else 0
        colour = GRADE_COLOURS[min(max(grade, 0), 5)]
        grade_text = "?" if a.grade is None else str(a.grade)
        label = f"{ae_term_label(a.term)} grade {grade_text}"
        short = a.term if a.term in AE_ROWS else ae_term_label(a.term)  # CRS, ICANS: as is
        parts.append(
            f'<g class="ae"><title>{escape(label)}, day {a.onset_day:g}–'
            f"{'' if a.resolution_day is None else f'{a.resolution_day:g}'}</title>"
            f'<rect x="{x0:.1f}" y="{y}" width="{x1 - x0:.1f}" height="14" rx="3" '
            f'fill="{colour}" opacity="0.85"/>'
            f'<text x="{x0 + 2:.1f}" y="{y + 11}" font-size="10">'
            f"{escape(short)} G{escape(grade_text)}</text></g>"
        )
    parts.append(
        f'<text x="{width - right}" y="{axis_y + 28}" font-size="10" '
        'text-anchor="end">days since CAR-T infusion</text>'
    )
    parts.append("</g></svg>")
    return "".join(parts)


#: approximate width of one character of the 10 px labels, for the overlap check
CHAR_PX = 6.2


def _label_levels(events: Sequence[Any], x) -> list[tuple[Any, str, str, int]]:
    """Events in day order with label, colour and the lowest label level (0 = just above
    the marker, 1 = a line higher …) where the label does not overlap another."""
    out = []
    ends: list[float] = []  # right edge of the last label on each level
    for e in sorted((e for e in events if e.day is not None), key=lambda e: e.day):
        colour, label = EVENT_STYLE.get(e.event, (NEUTRAL, value_label(e.event)))
        if e.event == "response" and e.response:
            label = value_label(e.response)
        half = len(label) * CHAR_PX / 2 + 3
        cx = x(e.day)
        level = next((i for i, end in enumerate(ends) if cx - half >= end), len(ends))
        if level == len(ends):
            ends.append(0.0)
        ends[level] = cx + half
        out.append((e, label, colour, level))
    return out


def _ticks(lo: float, hi: float, n: int = 8) -> list[float]:
    span = hi - lo
    step = 10 ** math.floor(math.log10(span / n))
    for m in (1, 2, 5, 10):
        if span / (step * m) <= n:
            step *= m
            break
    start = math.ceil(lo / step) * step
    return [start + i * step for i in range(int((hi - start) / step) + 1)]


def curves_svg(
    series: dict[str, list[tuple[float, float]]],
    title: str,
    unit: str,
    width: int = 860,
    height: int = 240,
) -> str:
    """Polylines of values over days on a log10 axis (zeros/below-LLOQ drawn at the floor)."""
    pts = [(d, v) for s in series.values() for d, v in s]
    if not pts:
        return f'<p class="muted">No {escape(title)} measurements.</p>'
    left, right, top, bottom = 60, 130, 20, 30
    days = [d for d, _ in pts]
    lo_d, hi_d = min(days + [0.0]), max(days + [1.0])
    positives = [v for _, v in pts if v > 0]
    lo_v = math.floor(math.log10(min(positives))) if positives else 0
    hi_v = math.ceil(math.log10(max(positives))) if positives else 1
    hi_v = max(hi_v, lo_v + 1)

    def x(d: float) -> float:
        return left + (d - lo_d) / (hi_d - lo_d or 1) * (width - left - right)

    def y(v: float) -> float:
        lv = math.log10(v) if v > 0 else lo_v
        return top + (hi_v - lv) / (hi_v - lo_v) * (height - top - bottom)

    colours = ("#1e88e5", "#e53935", "#43a047", "#8e24aa", "#fb8c00", "#00897b")
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="curves" role="img" '
        f'aria-label="{escape(title)}" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}">',
        f'<text x="{left}" y="12" font-size="12">{escape(title)} ({escape(unit)}, log '
        "scale)</text>",
    ]
    for e in range(lo_v, hi_v + 1):
        yy = y(10.0**e)
        parts.append(
            f'<line x1="{left}" x2="{width - right}" y1="{yy:.1f}" y2="{yy:.1f}" '
            'stroke="#eee"/><text x="4" y="{:.1f}" font-size="10">1e{}</text>'.format(yy + 3, e)
        )
    for t in _ticks(lo_d, hi_d):
        parts.append(
            f'<text x="{x(t):.1f}" y="{height - 10}" font-size="10" '
            f'text-anchor="middle">{t:g}</text>'
        )
    for i, (name, s) in enumerate(series.items()):
        if not s:
            continue
        colour = colours[i % len(colours)]
        shown = ANALYTE_VALUES.get(name) or value_label(name)
        coords = " ".join(f"{x(d):.1f},{y(v):.1f}" for d, v in sorted(s))
        parts.append(
            f'<polyline fill="none" stroke="{colour}" stroke-width="2" '
            f'points="{coords}"><title>{escape(shown)}</title></polyline>'
        )
        parts.append(
            f'<text x="{width - right + 6}" y="{top + 14 * i + 10}" font-size="11" '
            f'fill="{colour}">{escape(shown)}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)
