#!/usr/bin/env python3
"""Two-command bootstrap for cartrial, standard library only.

    python3 dev.py demo   # make .venv, install cartrial, build the report on the bundled examples
    python3 dev.py test   # make .venv, install cartrial with its test extras, run lint and tests
                          # (extra arguments go to pytest, e.g. -m "not slow")

Works on a fresh machine with only Python 3.11+ (Linux, macOS, Windows).
"""

from __future__ import annotations

import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")


def run(*cmd: str | os.PathLike[str]) -> None:
    print("+", " ".join(str(c) for c in cmd), flush=True)
    subprocess.run([str(c) for c in cmd], check=True, cwd=ROOT)


def ensure_venv(extras: str = "") -> None:
    if sys.version_info < (3, 11):  # noqa: UP036 - dev.py may be run by an older python3
        sys.exit(f"cartrial needs Python 3.11 or newer; this is {sys.version.split()[0]}")
    if not (BIN / "python").exists() and not (BIN / "python.exe").exists():
        print(f"creating virtual environment {VENV}", flush=True)
        venv.EnvBuilder(with_pip=True).create(VENV)
        run(BIN / "python", "-m", "pip", "install", "--quiet", "--upgrade", "pip")
    spec = f".[{extras}]" if extras else "."
    run(BIN / "python", "-m", "pip", "install", "--quiet", "-e", spec)


def demo() -> None:
    ensure_venv()
    out = ROOT / "report"
    run(BIN / "cartrial", "report", "tan2023", "-o", out / "tan2023", "--overwrite")
    run(
        BIN / "cartrial",
        "simulate",
        "--patients",
        "60",
        "--seed",
        "1",
        "-o",
        out / "synthetic-cohort",
        "--overwrite",
    )
    run(
        BIN / "cartrial", "report", out / "synthetic-cohort", "-o", out / "synthetic", "--overwrite"
    )
    print(f"\nopen {out / 'tan2023' / 'index.html'} and {out / 'synthetic' / 'index.html'}")


def test() -> None:
    ensure_venv("test")
    run(BIN / "ruff", "check", "src", "tests", "benchmarks", "dev.py")
    run(BIN / "ruff", "format", "--check", "src", "tests", "benchmarks", "dev.py")
    run(BIN / "mypy")  # types of src/ ([tool.mypy] in pyproject.toml)
    run(BIN / "lint-imports")  # the import-layer contract ([tool.importlinter])
    # the default run leaves out tests marked slow (``python3 dev.py test -m slow`` runs
    # them) and spreads the tests over the cores (pytest-xdist; ``-n 0`` for one process);
    # --durations=15 prints the slowest tests, and tests/conftest.py the time budget
    run(
        BIN / "python",
        "-m",
        "pytest",
        "-q",
        "-n",
        "auto",
        "--maxprocesses",
        "4",
        "--durations=15",
        *sys.argv[2:],
    )


if __name__ == "__main__":
    commands = {"demo": demo, "test": test}
    if len(sys.argv) < 2 or sys.argv[1] not in commands:
        sys.exit("usage: python3 dev.py demo | test [pytest args]")
    commands[sys.argv[1]]()
