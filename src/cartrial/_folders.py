"""Moving a freshly written output folder into place (shared by the report and the example
cohort writers): the folder is built beside the target, then swapped in by renames so a
reader never sees a half-written target."""

from __future__ import annotations

import os
import shutil
from pathlib import Path


def swap_into_place(built: Path, target: Path) -> None:
    """Replace ``target`` by ``built`` (both on the same file system).

    An existing ``target`` is first renamed aside and restored if the move fails, then
    removed (a folder, or a file)."""
    if target.exists():
        old = target.with_name(f".{target.name}.old-{os.getpid()}")
        target.rename(old)
        try:
            built.rename(target)
        except BaseException:
            old.rename(target)
            raise
        shutil.rmtree(old, ignore_errors=True) if old.is_dir() else old.unlink()
    else:
        built.rename(target)
