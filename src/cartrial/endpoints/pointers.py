"""Human-readable pointers to the source rows that decided a derived value.

``file row N (what)``: every derived row names the file and row it came from (DESIGN.md,
"traceable to source rows"); built vectorised, once per distinct file and description.
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def _display(file, row, what) -> np.ndarray:
    """``file row N (what)`` pointers ("?" for a missing row number: None, or -1 in an
    integer array), vectorised: the file and description texts are made once per
    distinct value, the row numbers and the joining in Arrow."""
    import pyarrow as pa
    import pyarrow.compute as pc

    def text(values) -> pa.Array:
        values = np.asarray(values, dtype=object)
        codes, uniques = pd.factorize(values)
        words = [str(u) for u in uniques]
        missing = np.flatnonzero(codes < 0)  # None, NaN, <NA>: each as ``str`` writes it
        codes[missing] = len(words) + np.arange(len(missing))
        words += [str(v) for v in values[missing]]
        return pa.array(words, type=pa.string()).take(pa.array(codes))

    rows = np.asarray(row)
    if rows.dtype.kind in "iu":
        missing = rows < 0
        number = rows.astype(np.int64)
    else:
        rows = rows.astype(object)
        missing = pd.isna(rows)
        number = np.zeros(len(rows), dtype=np.int64)
        number[~missing] = rows[~missing].astype(np.int64)
    r = pa.array(number, mask=missing).cast(pa.string()).fill_null("?")
    joined = pc.binary_join_element_wise(text(file), " row ", r, " (", text(what), ")", "")
    return joined.to_numpy(zero_copy_only=False).astype(object)


def _src(df: pd.DataFrame) -> pd.Series:
    """Human-readable pointer to a source row: ``file row N (what)``."""
    what = df["event"] if "event" in df.columns else df.get("term", pd.Series("", index=df.index))
    return pd.Series(_display(df["source_file"], df["source_row"], what), index=df.index)
