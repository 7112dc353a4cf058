"""The ``cartrial`` root options: ``--version`` (from the package metadata, declared once
in pyproject.toml) and ``--log-level`` (the level of cartrial's loggers on stderr)."""

from __future__ import annotations

import logging
import tomllib
from pathlib import Path

import pytest
from typer.testing import CliRunner

import cartrial
from cartrial.cli import app

PYPROJECT = Path(__file__).resolve().parents[2] / "pyproject.toml"


def test_version_is_the_one_declared_in_pyproject():
    declared = tomllib.loads(PYPROJECT.read_text(encoding="utf-8"))["project"]["version"]
    assert cartrial.__version__ == declared
    res = CliRunner().invoke(app, ["--version"])
    assert res.exit_code == 0 and res.output.strip() == f"cartrial {declared}"


@pytest.fixture
def restore_cartrial_level():
    logger = logging.getLogger("cartrial")
    level = logger.level
    yield logger
    logger.setLevel(level)


@pytest.mark.parametrize(("given", "level"), [("debug", logging.DEBUG), ("ERROR", logging.ERROR)])
def test_log_level_sets_the_cartrial_loggers(restore_cartrial_level, given, level):
    res = CliRunner().invoke(app, ["--log-level", given, "validate", "tan2023"])
    assert res.exit_code == 0, res.output
    assert restore_cartrial_level.level == level


def test_log_level_default_is_warning(restore_cartrial_level):
    restore_cartrial_level.setLevel(logging.DEBUG)
    res = CliRunner().invoke(app, ["validate", "tan2023"])
    assert res.exit_code == 0, res.output
    assert restore_cartrial_level.level == logging.WARNING


def test_an_unknown_log_level_is_refused_with_the_choices(restore_cartrial_level):
    res = CliRunner().invoke(app, ["--log-level", "loud", "validate", "tan2023"])
    assert res.exit_code == 2
    assert "loud" in res.output and "warning" in res.output
