"""Every vocabulary word and column the web app shows comes from the label registry
(``cartrial.cohort.labels``): rendered pages carry no raw codes such as ``new_donor``,
``prior_sct_donor``, ``febrile_neutropenia``, ``cart_flow`` or ``data_entry``.

The pages are rendered with records using many snake_case vocabulary words; their visible
text (element content, not attribute values such as form values or CSS classes) is
scanned for any snake_case token and for each raw code used.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser

from fastapi.testclient import TestClient
from webhelpers import add_patient, basic, login

from cartrial.cohort import labels

SNAKE = re.compile(r"\b[a-z0-9]+(?:_[a-z0-9]+)+\b")


class _Visible(HTMLParser):
    """The text a reader sees: element content outside <script>/<style>; <option> text
    included (attribute values, e.g. ``value="new_donor"``, are not shown)."""

    def __init__(self) -> None:
        super().__init__()
        self.parts: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag, attrs):
        if tag in ("script", "style"):
            self._skip += 1

    def handle_endtag(self, tag):
        if tag in ("script", "style"):
            self._skip -= 1

    def handle_data(self, data):
        if not self._skip:
            self.parts.append(data)


def visible(html: str) -> str:
    p = _Visible()
    p.feed(html)
    return " ".join(p.parts)


RAW = (
    "new_donor",
    "prior_sct_donor",
    "febrile_neutropenia",
    "cart_flow",
    "data_entry",
    "lost_to_followup",
    "product_source",
    "onset_day",
    "age_years",
    "low_flow",
)


def _scan(page: str, where: str) -> None:
    text = visible(page)
    found = sorted(set(SNAKE.findall(text)))
    assert not found, f"{where}: raw codes shown: {found}"
    for code in RAW:
        assert code not in text, f"{where}: {code}"


def test_pages_show_labels_not_raw_codes(env):
    engine, app = env
    with TestClient(app) as c:
        add_patient(c, "entryA", "A1", "A", product_source="new_donor")
        add_patient(c, "entryA", "A2", "A", product_source="prior_sct_donor")
        h = basic("entryA")
        for path, body in [
            ("events", {"day": 0, "event": "infusion"}),
            ("events", {"day": 28, "event": "response", "response": "CR"}),
            ("events", {"day": 200, "event": "lost_to_followup"}),
            ("adverse_events", {"term": "febrile_neutropenia", "onset_day": 4, "grade": 3}),
            ("adverse_events", {"term": "CRS", "onset_day": 2, "grade": 2}),
            ("observations", {"day": 7, "analyte": "cart_flow", "value": 55, "unit": "cells/uL"}),
            ("observations", {"day": 14, "analyte": "cart_flow", "value": 120, "unit": "cells/uL"}),
        ]:
            r = c.post(f"/api/patients/A1/{path}", json=body, headers=h)
            assert r.status_code == 201, r.text
        eid = c.get("/api/patients/A1/events", headers=h).json()[0]["id"]
        r = c.patch(
            f"/api/events/{eid}",
            headers=h,
            json={"day": 0, "version": 1, "reason": "source document"},
        )
        assert r.status_code in (200, 409), r.text

        login(c, "entryA")
        pages = {
            "patient list": c.get("/patients"),
            "patient page": c.get("/patients/A1"),
            "event edit form": c.get(f"/records/events/{eid}/edit"),
            "patient edit form": c.get("/patients/A1/edit"),
            "queries": c.get("/queries"),
        }
        for where, r in pages.items():
            assert r.status_code == 200, (where, r.status_code)
            _scan(r.text, where)
        page = visible(pages["patient page"].text)
        assert labels.VALUES["febrile_neutropenia"] in page
        assert labels.ANALYTE_VALUES["cart_flow"] in page  # table and the curve's legend
        assert "Lost to follow-up" in page and "Data entry" in page
        patients = visible(pages["patient list"].text)
        assert labels.VALUES["new_donor"] in patients
        assert labels.VALUES["prior_sct_donor"] in patients
        form = visible(pages["patient edit form"].text)
        assert labels.label("age_years") in form and labels.VALUES["new_donor"] in form

    with TestClient(app) as c:
        login(c, "mon")
        for where, path in [
            ("audit trail", "/patients/A1/audit"),
            ("monitor's patient page", "/patients/A1"),
        ]:
            r = c.get(path)
            assert r.status_code == 200, (where, r.status_code)
            _scan(r.text, where)
        audit = visible(c.get("/patients/A1/audit").text)
        assert labels.VALUES["febrile_neutropenia"] in audit
        assert "Adverse event" in audit and labels.label("onset_day") in audit
