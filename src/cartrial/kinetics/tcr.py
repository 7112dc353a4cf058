"""TCR repertoire diversity from clone counts (docs/domain/KINETICS.md; Hill 1973 Ecology 54:427).

With clone frequencies p_i = n_i / n (n reads, S observed clones):

* Shannon entropy H = −Σ p_i ln p_i (natural log; ``exp(H)`` is the Hill number of order 1,
  which one widely used tool calls the "Shannon–Wiener index" — it is not H);
* Pielou evenness J = H / ln S (NaN when S = 1); clonality = 1 − J;
* Simpson D = Σ p_i² (probability two reads come from one clone); Gini–Simpson 1 − D;
  inverse Simpson 1/D;
* Hill numbers ^qD = (Σ p_i^q)^(1/(1−q)), ^1D = exp(H) (limit), ^0D = S, ^2D = 1/D;
* top-N fraction: share of reads in the N largest clones;
* Chao1 = S + f1²/(2·f2)·(n−1)/n (f1 singletons, f2 doubletons); bias-corrected
  S + f1(f1−1)/2·(n−1)/n when f2 = 0 (Chao 1987 Biometrics 43:783; Chao et al. 2005).

Entropy grows with sequencing depth: compare samples after down-sampling to a common depth
(``rarefy``, random draws without replacement, seeded).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from cartrial.kinetics._groups import group_starts

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

DEFAULT_HILL_ORDERS = (0.0, 1.0, 2.0)


def _counts(counts: Any) -> np.ndarray:
    c = np.asarray(counts, dtype=float).ravel()
    if np.isnan(c).any():
        raise ValueError("clone counts contain missing values; expected whole numbers >= 0")
    if (c < 0).any() or (c != np.round(c)).any():
        bad = c[(c < 0) | (c != np.round(c))][0]
        raise ValueError(f"clone count {bad!r}; expected whole numbers >= 0")
    return c[c > 0]


def rarefy(counts: Any, depth: int, seed: int | np.random.Generator | None = 0) -> np.ndarray:
    """Down-sample clone counts to ``depth`` reads without replacement (multivariate
    hypergeometric draw, seeded). Raises ValueError when the sample has fewer reads."""
    c = np.asarray(counts, dtype=np.int64).ravel()
    total = int(c.sum())
    if depth > total:
        raise ValueError(f"cannot down-sample {total} reads to {depth}; expected depth <= reads")
    rng = np.random.default_rng(seed)
    return rng.multivariate_hypergeometric(c, int(depth))


def hill_number(p: np.ndarray, q: float) -> float:
    """Hill number of order ``q`` from frequencies ``p`` (q = 1: exp of Shannon entropy)."""
    p = p[p > 0]
    if len(p) == 0:
        return float("nan")
    if q == 1.0:
        return float(np.exp(-(p * np.log(p)).sum()))
    return float((p**q).sum() ** (1.0 / (1.0 - q)))


def diversity(
    counts: Any,
    top_n: int = 10,
    hill_orders: Sequence[float] = DEFAULT_HILL_ORDERS,
    rarefy_to: int | None = None,
    seed: int | None = 0,
) -> dict[str, float]:
    """All diversity indices of one sample (clone counts; see the module docstring)."""
    c = np.asarray(counts, dtype=float).ravel()
    if rarefy_to is not None:
        c = rarefy(_counts(c), rarefy_to, seed).astype(float)
    c = _counts(c)
    n = float(c.sum())
    S = len(c)
    out: dict[str, float] = {"n_reads": n, "n_clones": float(S)}
    if S == 0:
        nan = float("nan")
        out.update(
            shannon=nan,
            evenness=nan,
            clonality=nan,
            simpson=nan,
            gini_simpson=nan,
            inverse_simpson=nan,
            chao1=nan,
            **{f"top{top_n}_fraction": nan},
            **{f"hill_{q:g}": nan for q in hill_orders},
        )
        return out
    p = c / n
    H = float(-(p * np.log(p)).sum())
    D = float((p * p).sum())
    J = H / np.log(S) if S > 1 else float("nan")
    out.update(
        shannon=H,
        evenness=J,
        clonality=1.0 - J,
        simpson=D,
        gini_simpson=1.0 - D,
        inverse_simpson=1.0 / D,
        chao1=_chao1(c),
    )
    out[f"top{top_n}_fraction"] = float(np.sort(c)[::-1][:top_n].sum() / n)
    for q in hill_orders:
        out[f"hill_{q:g}"] = hill_number(p, float(q))
    return out


def _chao1(c: np.ndarray) -> float:
    n = c.sum()
    f1 = float((c == 1).sum())
    f2 = float((c == 2).sum())
    k = (n - 1.0) / n
    if f2 > 0:
        return float(len(c) + f1 * f1 / (2.0 * f2) * k)
    return float(len(c) + f1 * (f1 - 1.0) / 2.0 * k)


def diversity_table(
    clones: pd.DataFrame,
    sample: str = "sample",
    count: str = "count",
    top_n: int = 10,
    hill_orders: Sequence[float] = DEFAULT_HILL_ORDERS,
    rarefy_to: int | None = None,
    seed: int = 0,
) -> pd.DataFrame:
    """Diversity indices per sample of a long table (one row per sample and clone).

    Vectorised across samples (sorted arrays, ``np.add.reduceat``). With ``rarefy_to``, each
    sample is first down-sampled to that many reads (seeded; samples with fewer reads are
    dropped with a note in ``attrs["notes"]``).
    """
    import pandas as pd

    for col in (sample, count):
        if col not in clones.columns:
            raise ValueError(f"clone table lacks column {col!r}")
    codes, keys = pd.factorize(clones[sample], sort=True)
    cnt = pd.to_numeric(clones[count], errors="coerce").to_numpy(dtype=float)
    _counts(cnt)  # validation (NaN, negative, fractional)
    notes: list[str] = []
    if rarefy_to is not None:
        cnt, keep_sample = _rarefy_table(codes, cnt, len(keys), rarefy_to, seed)
        if not keep_sample.all():
            notes.append(
                f"{int((~keep_sample).sum())} sample(s) with fewer than {rarefy_to} reads left out"
            )
    else:
        keep_sample = np.ones(len(keys), dtype=bool)
    pos = cnt > 0
    codes, cnt = codes[pos], cnt[pos]
    # sort by sample, then count descending (for top-N)
    order = np.lexsort((-cnt, codes))
    codes, cnt = codes[order], cnt[order]
    G = len(keys)
    starts = group_starts(codes, G)
    S = np.diff(starts).astype(float)
    nonempty = S > 0

    def gsum(a: np.ndarray) -> np.ndarray:
        out = np.zeros(G)
        if nonempty.any():
            out[nonempty] = np.add.reduceat(a, starts[:-1][nonempty])
        return out

    n = gsum(cnt)
    with np.errstate(divide="ignore", invalid="ignore"):
        p = cnt / n[codes]
        H = -gsum(p * np.log(p))
        D = gsum(p * p)
        J = np.where(S > 1, H / np.log(np.where(S > 1, S, 2.0)), np.nan)
        rank = np.arange(len(cnt)) - starts[:-1][codes]
        top = gsum(np.where(rank < top_n, cnt, 0.0)) / n
        f1 = gsum((cnt == 1).astype(float))
        f2 = gsum((cnt == 2).astype(float))
        k = (n - 1.0) / n
        chao1 = np.where(
            f2 > 0,
            S + f1 * f1 / (2.0 * np.where(f2 > 0, f2, 1.0)) * k,
            S + f1 * (f1 - 1.0) / 2.0 * k,
        )
        table = pd.DataFrame(
            {
                sample: keys,
                "n_reads": n,
                "n_clones": S,
                "shannon": H,
                "evenness": J,
                "clonality": 1.0 - J,
                "simpson": D,
                "gini_simpson": 1.0 - D,
                "inverse_simpson": 1.0 / D,
                "chao1": chao1,
                f"top{top_n}_fraction": top,
            }
        )
        for q in hill_orders:
            q = float(q)
            table[f"hill_{q:g}"] = np.exp(H) if q == 1.0 else gsum(p**q) ** (1.0 / (1.0 - q))
    empty = ~nonempty
    table.loc[empty, table.columns[3:]] = np.nan
    table = table.loc[keep_sample].reset_index(drop=True)
    table.attrs["notes"] = notes
    return table


def _rarefy_table(
    codes: np.ndarray, cnt: np.ndarray, G: int, depth: int, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Down-sample every sample to ``depth`` reads (one seeded generator, samples in order)."""
    rng = np.random.default_rng(seed)
    totals = np.bincount(codes, weights=cnt, minlength=G)
    keep = totals >= depth
    out = np.zeros_like(cnt)
    order = np.argsort(codes, kind="stable")
    starts = group_starts(codes[order], G)
    for g in np.flatnonzero(keep):  # one draw per sample: the draw itself is the work
        idx = order[starts[g] : starts[g + 1]]
        out[idx] = rng.multivariate_hypergeometric(cnt[idx].astype(np.int64), int(depth))
    return out, keep
