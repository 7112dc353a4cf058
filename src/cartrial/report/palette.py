"""The report's one colour palette, importable without matplotlib (the web app's SVG
figures use it too).

Okabe & Ito (2008), "Color Universal Design": eight colours distinguishable with every
common colour-vision deficiency. ``PALETTE`` is the order groups take (a vocabulary level
keeps its colour between reports, ``figures.level_colours``); the named colours are the
fixed roles the figures give them.
"""

from __future__ import annotations

BLUE = "#0072B2"
VERMILION = "#D55E00"
GREEN = "#009E73"
PURPLE = "#CC79A7"
ORANGE = "#E69F00"
SKY_BLUE = "#56B4E9"
YELLOW = "#F0E442"
BLACK = "#000000"

#: group colours in order (first group blue, second vermilion, …)
PALETTE = (BLUE, VERMILION, GREEN, PURPLE, ORANGE, SKY_BLUE, YELLOW, BLACK)
#: the synthetic-data mark and warnings
SYNTHETIC_RED = "#b3261e"
#: neutral text and guide lines
GREY = "#333333"
#: neutral marks: no response, last contact, a grade-0 bar
NEUTRAL = "#7f7f7f"

#: the course events, as the swimmer plot (report) and the patient timeline (web) draw them
EVENT_COLOURS = {
    "infusion": SKY_BLUE,
    "response": GREEN,
    "sct": BLUE,
    "relapse": VERMILION,
    "progression": VERMILION,
    "death": BLACK,
    "new_therapy": PURPLE,
    "last_contact": NEUTRAL,
    "lost_to_followup": NEUTRAL,
    "withdrawal": NEUTRAL,
}
#: adverse-event bars by grade 0-5 (neutral, then yellow → orange → vermilion → purple → black)
GRADE_COLOURS = (NEUTRAL, YELLOW, ORANGE, VERMILION, PURPLE, BLACK)

__all__ = [
    "BLACK",
    "BLUE",
    "EVENT_COLOURS",
    "GRADE_COLOURS",
    "GREEN",
    "GREY",
    "NEUTRAL",
    "ORANGE",
    "PALETTE",
    "PURPLE",
    "SKY_BLUE",
    "SYNTHETIC_RED",
    "VERMILION",
    "YELLOW",
]
