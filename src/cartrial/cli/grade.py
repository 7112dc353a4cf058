"""``cartrial grade …``: bedside toxicity grading from the command line (reference only).

The observation options are generated from the one field registry
(``cartrial.grading.fields``): name, type, range, unit and help are declared there once
and shared with the Python API, the JSON API model and the web form. Flags are named
like the observations (``--temperature-c 38.5 --vasopressors 1 --oxygen high_flow
--o2-flow-l-min 8``); a number may carry its unit (``--temperature-c "101.3 F"``,
``--anc "150 cells/uL"``) or take it from ``--unit anc=cells/uL``. An omitted flag is
unknown, never normal. ``--json`` prints ``{"system", "grade", "reasons", "missing",
...}``, and errors as ``{"error": {...}}`` (exit code 2); without it, errors go to stderr
with exit code 2. A misspelt flag gets click's "Possible options: --temperature-c".

The commands live in ``cli._grade_commands`` and are built on first use (a lazy group),
so ``cartrial --help`` does not import NumPy or pandas.
"""

from __future__ import annotations

from typing import Any

import typer
from typer.core import TyperGroup

#: other names of the grade commands (the names the criteria go by)
COMMAND_ALIASES = {"iec-hs": "iechs", "iec_hs": "iechs", "car-hematotox": "hematotox"}


class LazyGradeGroup(TyperGroup):
    """The ``grade`` group: its commands are built from the registry when first needed."""

    _built = None

    def _inner(self):
        if LazyGradeGroup._built is None:
            from cartrial.cli import _grade_commands

            LazyGradeGroup._built = typer.main.get_command(_grade_commands.grade_app)
        return LazyGradeGroup._built

    def list_commands(self, ctx):
        return self._inner().list_commands(ctx)

    def get_command(self, ctx, cmd_name):
        return self._inner().get_command(ctx, COMMAND_ALIASES.get(cmd_name, cmd_name))


grade_app = typer.Typer(
    name="grade",
    help="Grade CRS, ICANS, GVHD, CTCAE terms, ICAHT and IEC-HS, and compute the "
    "pre-infusion risk scores (reference only; an omitted observation is unknown, never "
    "normal).",
    no_args_is_help=True,
    cls=LazyGradeGroup,
)


def __getattr__(name: str) -> Any:  # the field lists and helpers, for callers and tests
    from cartrial.cli import _grade_commands

    try:
        return getattr(_grade_commands, name)
    except AttributeError:
        raise AttributeError(f"module 'cartrial.cli.grade' has no attribute {name!r}") from None


def register(app: typer.Typer) -> None:
    """Attach ``cartrial grade …`` to the main app."""
    app.add_typer(grade_app, name="grade")
