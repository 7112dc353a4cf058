"""cartrial: running and analysing CAR-T cell therapy trials.

The public entry points are imported lazily so that ``import cartrial`` (and the
``cartrial`` command's ``--help``) stays fast.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING, Any

try:  # declared once, in pyproject.toml; read from the installed package's metadata
    __version__ = version("cartrial")
except PackageNotFoundError:  # pragma: no cover - a source tree that was never installed
    __version__ = "0+unknown"

__all__ = ["Cohort", "CohortError", "__version__", "load_cohort"]

if TYPE_CHECKING:  # pragma: no cover
    from cartrial.cohort import Cohort, CohortError, load_cohort


def __getattr__(name: str) -> Any:
    if name in {"Cohort", "CohortError", "load_cohort"}:
        from cartrial import cohort

        return getattr(cohort, name)
    raise AttributeError(f"module 'cartrial' has no attribute {name!r}")
