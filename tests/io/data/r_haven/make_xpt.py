"""Write adtte.xpt and adsl.xpt of the hand-written site export for the R reference.

.venv/bin/python tests/io/data/r_haven/make_xpt.py
Rscript tests/io/data/r_haven/make_r_reference.R tests/io/data/r_haven
"""

import shutil
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent.parent))  # tests/io, for the site-export reader

from test_site_export import _read  # noqa: E402

from cartrial.io.writers import export_adam  # noqa: E402

with tempfile.TemporaryDirectory() as tmp:
    path, _ = export_adam(_read(), Path(tmp) / "adam", ("xpt",), study_id="CD7CART02")
    for name in ("adtte.xpt", "adsl.xpt"):
        shutil.copy(path / name, HERE / name)
print(f"wrote {HERE / 'adtte.xpt'} and {HERE / 'adsl.xpt'}; now run the R script")
