"""The ``cartrial`` command line (Typer).

Every sub-command module keeps its heavy imports (pandas, matplotlib, SQLAlchemy …)
inside the command functions so that ``cartrial --help`` starts fast.
"""

from __future__ import annotations

import typer

from cartrial.cli import core

app = typer.Typer(
    name="cartrial",
    help="Run and analyse CAR-T cell therapy trials: validate a cohort, derive endpoints, "
    "grade toxicities, build the report, serve the web app.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
core.register(app)


def _register_optional() -> None:
    """Attach the command groups contributed by the other layers.

    Each module exposes ``register(app)``; a module that is not there yet is simply
    not offered (the package is built layer by layer).
    """
    import importlib

    for name in ("report", "grade", "kinetics", "interop", "db", "design"):
        try:
            module = importlib.import_module(f"cartrial.cli.{name}")
        except ModuleNotFoundError as exc:  # pragma: no cover - only while a layer is missing
            if exc.name != f"cartrial.cli.{name}":
                raise
            continue
        module.register(app)


_register_optional()


def main() -> None:  # console-script entry point
    app()
