"""Validation problems and the error that carries them."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, order=True)
class Problem:
    """One problem in the input: where it is, what was found, what was expected.

    ``row`` is the 1-based line number in the CSV file counting the header as line 1
    (so it is the line a spreadsheet or text editor shows), or the sheet row in Excel;
    None for problems of a whole file or column.
    """

    file: str
    row: int | None
    column: str | None
    value: str | None
    expected: str

    def __str__(self) -> str:
        where = self.file
        if self.row is not None:
            where += f", row {self.row}"
        if self.column:
            where += f", column '{self.column}'"
        found = "" if self.value is None else f": found {self.value!r}"
        return f"{where}{found}; expected {self.expected}"


class CohortError(ValueError):
    """Raised when a cohort cannot be loaded; ``.problems`` lists every problem found."""

    def __init__(self, problems: list[Problem], source: str = "") -> None:
        self.problems = sorted(problems, key=lambda p: (p.file, p.row or 0, p.column or ""))
        self.source = source
        head = f"{len(self.problems)} problem(s) in cohort {source}".rstrip()
        lines = "\n".join(f"  - {p}" for p in self.problems[:200])
        more = "" if len(self.problems) <= 200 else f"\n  … and {len(self.problems) - 200} more"
        super().__init__(f"{head}:\n{lines}{more}")
