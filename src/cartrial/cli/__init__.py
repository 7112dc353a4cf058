"""The ``cartrial`` command line (Typer).

Every sub-command module keeps its heavy imports (pandas, matplotlib, SQLAlchemy …)
inside the command functions so that ``cartrial --help`` starts fast.
"""

from __future__ import annotations

import logging
import sys
from enum import StrEnum
from typing import Annotated

import typer

from cartrial.cli import core, db, design, grade, interop, kinetics, report


class LogLevel(StrEnum):
    debug = "debug"
    info = "info"
    warning = "warning"
    error = "error"


LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"

app = typer.Typer(
    name="cartrial",
    help="Run and analyse CAR-T cell therapy trials: validate a cohort, derive endpoints, "
    "grade toxicities, build the report, serve the web app.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


class _StderrHandler(logging.StreamHandler):
    """Writes to the ``sys.stderr`` of the moment (test runners swap it per command)."""

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, value) -> None:  # the base class assigns it once; ignored
        pass


def configure_logging(level: str) -> None:
    """Messages of cartrial's loggers (``cartrial.*``) at ``level`` and above to stderr.

    The root logger gets one stderr handler unless logging is configured already (as
    ``logging.basicConfig``: the same format as ``cartrial serve``'s, so a later
    ``basicConfig`` there changes nothing); only the ``cartrial`` logger's level is set."""
    handler = _StderrHandler()
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    logging.basicConfig(handlers=[handler])
    logging.getLogger("cartrial").setLevel(level.upper())


def _version(value: bool) -> None:
    if value:
        from cartrial import __version__

        typer.echo(f"cartrial {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    log_level: Annotated[
        LogLevel,
        typer.Option(
            "--log-level",
            case_sensitive=False,
            help="Messages shown on stderr: kinetic fits that did not converge or ended at a "
            "bound (warning), progress (info).",
        ),
    ] = LogLevel.warning,
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version."),
    ] = False,
) -> None:
    """Run and analyse CAR-T cell therapy trials."""
    configure_logging(log_level.value)


for _module in (core, report, grade, kinetics, interop, db, design):
    _module.register(app)


def main() -> None:  # console-script entry point
    app()
