"""Every project document the code cites ships with it: a ``NAME.md`` named in a
docstring, comment or shipped data file of ``src/cartrial`` exists under ``docs/`` (or at
the repository root), a ``docs/...`` path exists as written, and nothing points at a folder
outside the repository."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src" / "cartrial"
DOC = re.compile(r"(?P<path>[\w./-]*?(?P<name>[A-Z][A-Z_]*\.md))\b")
CITING = [p for p in SRC.rglob("*") if p.suffix in {".py", ".csv", ".yaml", ".html"}]


def _citations() -> list[tuple[str, int, str, str]]:
    found = []
    for path in CITING:
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            for m in DOC.finditer(line):
                found.append((str(path.relative_to(ROOT)), n, m["path"], m["name"]))
    return found


CITATIONS = _citations()
SHIPPED = {p.name for p in (ROOT / "docs").rglob("*.md")} | {p.name for p in ROOT.glob("*.md")}


def test_the_code_cites_project_documents():
    # the check below is not vacuous: the kinetics and endpoint docstrings cite the notes
    names = {name for *_, name in CITATIONS}
    assert {"DESIGN.md", "KINETICS.md", "PATHWAY.md"} <= names


@pytest.mark.parametrize(("where", "line", "path", "name"), CITATIONS)
def test_every_cited_document_ships(where, line, path, name):
    assert name in SHIPPED, f"{where}:{line} cites {path}, which is not in docs/"
    assert "shared/" not in path, f"{where}:{line} points outside the repository: {path}"
    if path.startswith("docs/"):
        assert (ROOT / path).is_file(), f"{where}:{line}: {path} does not exist"
