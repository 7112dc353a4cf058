"""Reference ranges (LLN/ULN) for the CTCAE laboratory terms, IEC-HS and the scores.

The shipped table is ``grading/data/reference_ranges.csv``: one row per field (and sex
where it matters) with ``lln``, ``uln``, the canonical ``unit`` and the ``source`` of the
numbers. A site passes its own laboratory's ranges as a CSV of the same columns
(``site_file``; its rows replace the shipped ones field by field) or as a mapping
(``lln=`` / ``uln=`` of the grading functions, which win over both). A limit that no
table gives is never guessed: grading that needs it raises and says how to pass it.
Ranges in another unit are converted with the field's declared units
(``grading.fields``).
"""

from __future__ import annotations

import csv
import math
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path

from cartrial.grading.core import GradingInputError
from cartrial.grading.fields import FIELDS, resolve_unit, to_canonical

SHIPPED = "reference_ranges.csv"


@dataclass(frozen=True)
class Limit:
    """One reference limit in the field's canonical unit, with where it came from."""

    value: float
    source: str


def _read(text: str, where: str) -> dict[tuple[str, str], dict[str, Limit]]:
    rows = list(csv.DictReader(text.splitlines()))
    out: dict[tuple[str, str], dict[str, Limit]] = {}
    for i, row in enumerate(rows, start=2):
        field = (row.get("field") or "").strip()
        if field not in FIELDS:
            raise GradingInputError("field", field, "a grading field name", f"{where} row {i}")
        unit = resolve_unit(field, (row.get("unit") or "").strip() or FIELDS[field].unit)
        if unit is None:
            raise GradingInputError(
                "unit",
                row.get("unit"),
                f"a unit of {field}: {', '.join(FIELDS[field].accepted_units)}",
                f"{where} row {i}",
            )
        sex = (row.get("sex") or "").strip().upper()
        if sex not in ("", "M", "F"):
            raise GradingInputError("sex", sex, "M, F or blank", f"{where} row {i}")
        source = (row.get("source") or "").strip() or where
        limits: dict[str, Limit] = {}
        for kind in ("lln", "uln"):
            text_value = (row.get(kind) or "").strip()
            if not text_value:
                continue
            try:
                number = float(text_value)
            except ValueError:
                raise GradingInputError(kind, text_value, "a number", f"{where} row {i}") from None
            if math.isnan(number) or number < 0:
                raise GradingInputError(kind, text_value, "a number >= 0", f"{where} row {i}")
            limits[kind] = Limit(to_canonical(field, number, unit), source)
        out[(field, sex)] = limits
    return out


@lru_cache(maxsize=1)
def shipped() -> dict[tuple[str, str], dict[str, Limit]]:
    text = resources.files("cartrial.grading").joinpath("data", SHIPPED).read_text("utf-8")
    return _read(text, f"cartrial/grading/data/{SHIPPED}")


def load_site(path: str | Path) -> dict[tuple[str, str], dict[str, Limit]]:
    """A site's reference-range CSV (columns field, sex, lln, uln, unit, source)."""
    p = Path(path)
    return _read(p.read_text("utf-8"), str(p))


class ReferenceRanges:
    """Shipped ranges, overridden by a site file, overridden by explicit values."""

    def __init__(
        self,
        site_file: str | Path | None = None,
        lln: Mapping[str, float] | None = None,
        uln: Mapping[str, float] | None = None,
    ):
        self.table = dict(shipped())
        if site_file is not None:
            site = load_site(site_file)
            for field in {f for f, _ in site}:  # a site row replaces every shipped row
                for key in [k for k in self.table if k[0] == field]:
                    del self.table[key]
            self.table.update(site)
        self.explicit = {"lln": dict(lln or {}), "uln": dict(uln or {})}

    def get(self, kind: str, field: str, sex: str | None = None) -> Limit | None:
        """The ``kind`` ("lln"/"uln") limit of ``field`` for ``sex`` (M/F/None)."""
        value = self.explicit[kind].get(field)
        if value is not None:
            return Limit(float(value), f"{kind.upper()} given by the caller")
        for key in ((field, (sex or "").upper()), (field, "")):
            limit = self.table.get(key, {}).get(kind)
            if limit is not None:
                return limit
        return None

    def need(self, kind: str, field: str, sex: str | None = None) -> Limit:
        limit = self.get(kind, field, sex)
        if limit is None:
            raise GradingInputError(
                kind,
                field,
                f"the site's {kind.upper()} of {field} ({FIELDS[field].unit}): pass "
                f"{kind}={{'{field}': ...}} or a reference-range file "
                "(cartrial.grading.ranges; no default is shipped for it)",
            )
        return limit
