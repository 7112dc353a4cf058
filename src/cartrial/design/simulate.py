"""Operating characteristics of dose-escalation designs by simulation.

Vectorised across simulated trials: every trial advances one cohort per step, the
state (patients and DLTs per dose, current dose, elimination, stopped) is a NumPy
array over trials.  Outcomes come from pre-drawn uniforms ``u[trial, dose, k]`` (the
k-th patient ever treated at that dose has a DLT if u < p_true[dose]), so the
vectorised engine and the per-trial loop (``*_loop``, the reference) give identical
trials from the same seed.

Metrics follow R BOIN ``get.oc`` (Liu & Yuan 2015, Section 4): selection probability
per dose (and of no selection), patients and DLTs per dose, early stopping, trial size;
overdosing = share of patients treated above the true MTD (the dose with p_true
closest to target, ties to the lower dose) and P(selecting a dose above it).
Monte-Carlo SE of a selection probability P is sqrt(P(1-P)/n_trials).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from cartrial.design.escalation import (
    BOIN,
    CRM,
    ThreePlusThree,
    boin_boundaries,
    elimination_boundary,
    pava,
)

_EPS = 1e-10


@dataclass(frozen=True)
class OperatingCharacteristics:
    """Per-trial outcomes and their summaries; ``selected`` is -1 for no MTD."""

    design: str
    p_true: np.ndarray
    target: float
    selected: np.ndarray  # (T,)
    n_per_dose: np.ndarray  # (T, D)
    dlt_per_dose: np.ndarray  # (T, D)
    stopped_early: np.ndarray  # (T,) bool: stopped for toxicity, no MTD
    seed: int | None

    @property
    def n_trials(self) -> int:
        return len(self.selected)

    @property
    def true_mtd(self) -> int:
        return int(np.argmin(np.abs(self.p_true - self.target)))

    @property
    def selection(self) -> np.ndarray:
        """P(select dose d) for d = 1..D, then P(no MTD) last."""
        d = len(self.p_true)
        counts = np.bincount(np.where(self.selected < 0, d, self.selected), minlength=d + 1)
        return counts / self.n_trials

    @property
    def selection_se(self) -> np.ndarray:
        p = self.selection
        return np.sqrt(p * (1 - p) / self.n_trials)

    def summary(self):
        """One row per dose (plus 'none'): true p, P(select), its MC SE, mean patients, DLTs."""
        import pandas as pd

        d = len(self.p_true)
        return pd.DataFrame(
            {
                "dose": [str(i + 1) for i in range(d)] + ["none"],
                "p_true": np.append(self.p_true, np.nan),
                "p_select": self.selection,
                "mc_se": self.selection_se,
                "mean_patients": np.append(self.n_per_dose.mean(axis=0), np.nan),
                "mean_dlt": np.append(self.dlt_per_dose.mean(axis=0), np.nan),
            }
        )

    def metrics(self) -> dict[str, float]:
        n_tot = self.n_per_dose.sum(axis=1)
        above = self.n_per_dose[:, self.true_mtd + 1 :].sum(axis=1)
        return {
            "n_trials": float(self.n_trials),
            "p_correct": float(self.selection[self.true_mtd]),
            "p_select_above_mtd": float(self.selection[self.true_mtd + 1 : -1].sum()),
            "p_stop_early": float(self.stopped_early.mean()),
            "mean_trial_size": float(n_tot.mean()),
            "mean_dlt": float(self.dlt_per_dose.sum(axis=1).mean()),
            "pct_patients_above_mtd": float(100 * above.sum() / max(n_tot.sum(), 1)),
        }


def draw_uniforms(n_trials: int, n_doses: int, max_n: int, seed: int | None) -> np.ndarray:
    """The shared outcome source: uniforms (trial, dose, k-th patient at that dose)."""
    return np.random.default_rng(seed).random((n_trials, n_doses, max_n))


def _cohort_dlt(u, rows, dose, start, size, p_true) -> np.ndarray:
    k = start[:, None] + np.arange(size)[None, :]
    return (u[rows[:, None], dose[:, None], k] < p_true[dose][:, None]).sum(axis=1)


# ----------------------------------------------------------------------------- BOIN
def simulate_boin(
    design: BOIN, p_true: Any, n_trials: int = 10_000, seed: int | None = 1, u=None
) -> OperatingCharacteristics:
    """BOIN trials, vectorised (rules as in R BOIN ``get.oc``, extrasafe off)."""
    p = _p_true(p_true, design.n_doses)
    cs, nc, nd = design.cohort_size, design.n_cohorts, design.n_doses
    if u is None:
        u = draw_uniforms(n_trials, nd, cs * nc, seed)
    t = u.shape[0]
    lam_e, lam_d = boin_boundaries(design.target, design.phi1, design.phi2)
    elim_at = elimination_boundary(np.arange(cs * nc + 1), design.target, design.cutoff_eli)
    n = np.zeros((t, nd), dtype=int)
    y = np.zeros((t, nd), dtype=int)
    elim = np.zeros((t, nd), dtype=bool)
    d = np.full(t, design.start_dose)
    active = np.ones(t, dtype=bool)
    tox_stop = np.zeros(t, dtype=bool)
    rows = np.arange(t)
    for _ in range(nc):
        r = rows[active]
        if r.size == 0:
            break
        dr = d[r]
        y[r, dr] += _cohort_dlt(u, r, dr, n[r, dr], cs, p)
        n[r, dr] += cs
        nn, yy = n[r, dr], y[r, dr]
        kill = (nn >= 3) & (yy >= elim_at[nn])
        dose_idx = np.arange(nd)[None, :]
        elim[r] |= kill[:, None] & (dose_idx >= dr[:, None])
        low = kill & (dr == 0)
        tox_stop[r[low]] = True
        rate = yy / nn
        up_ok = (dr + 1 < nd) & ~elim[r, np.minimum(dr + 1, nd - 1)]
        new = np.where(
            rate <= lam_e + _EPS,
            np.where(up_ok, dr + 1, dr),
            np.where(((rate >= lam_d - _EPS) | kill) & (dr > 0), dr - 1, dr),
        )
        full = (nn >= design.n_earlystop) & (new == dr)
        d[r] = new
        active[r[full | low]] = False
    sel = _boin_select_vec(n, y, elim, design.target)
    sel[tox_stop] = -1
    return OperatingCharacteristics("BOIN", p, design.target, sel, n, y, tox_stop, seed)


def _boin_select_vec(n, y, elim, target) -> np.ndarray:
    """Isotonic MTD selection for all trials at once.  Treated doses form a contiguous
    run (one-level moves), so the admissible set is [lo, hi]; the isotonic fit is the
    min-max formula iso_i = max_{j<=i} min_{k>=i} M[j,k] (Robertson et al. 1988, 1.4)."""
    t, nd = n.shape
    tried = n > 0
    adm = tried & ~np.logical_or.accumulate(elim, axis=1)
    any_adm = adm.any(axis=1)
    lo = np.where(any_adm, adm.argmax(axis=1), 0)
    hi = np.where(any_adm, nd - 1 - adm[:, ::-1].argmax(axis=1), -1)
    yy, nn = y.astype(float), n.astype(float)
    phat = (yy + 0.05) / (nn + 0.1)
    var = (yy + 0.05) * (nn - yy + 0.05) / ((nn + 0.1) ** 2 * (nn + 0.1 + 1))
    w = np.where(adm, 1.0 / var, 0.0)
    cw = np.concatenate([np.zeros((t, 1)), np.cumsum(w, axis=1)], axis=1)
    cwp = np.concatenate([np.zeros((t, 1)), np.cumsum(w * phat, axis=1)], axis=1)
    j = np.arange(nd)[:, None]
    k = np.arange(nd)[None, :]
    wsum = cw[:, None, 1:] - cw[:, :nd, None]  # (t, j, k): sum over j..k
    with np.errstate(invalid="ignore", divide="ignore"):
        m = (cwp[:, None, 1:] - cwp[:, :nd, None]) / wsum
    ok = (j <= k)[None] & (j[None] >= lo[:, None, None]) & (k[None] <= hi[:, None, None])
    iso = np.full((t, nd), np.inf)
    for i in range(nd):
        inner = np.where(ok & (k[None] >= i), m, np.inf).min(axis=2)  # (t, j)
        inner = np.where((np.arange(nd)[None] <= i) & ok[:, :, i], inner, -np.inf)
        iso[:, i] = inner.max(axis=1)
    iso = iso + (np.arange(nd) - lo[:, None] + 1) * 1e-10
    dist = np.where(adm, np.abs(iso - target), np.inf)
    return np.where(any_adm, dist.argmin(axis=1), -1)


def simulate_boin_loop(
    design: BOIN, p_true: Any, n_trials: int = 10_000, seed: int | None = 1, u=None
) -> OperatingCharacteristics:
    """Reference: one trial at a time through :meth:`BOIN.decide`/``select_mtd``."""
    p = _p_true(p_true, design.n_doses)
    cs, nd = design.cohort_size, design.n_doses
    if u is None:
        u = draw_uniforms(n_trials, nd, cs * design.n_cohorts, seed)
    t = u.shape[0]
    n_all = np.zeros((t, nd), dtype=int)
    y_all = np.zeros((t, nd), dtype=int)
    sel = np.full(t, -1)
    stop = np.zeros(t, dtype=bool)
    for i in range(t):
        n, y, d = n_all[i], y_all[i], design.start_dose
        early = False
        for _ in range(design.n_cohorts):
            y[d] += int((u[i, d, n[d] : n[d] + cs] < p[d]).sum())
            n[d] += cs
            dec = design.decide(n, y, d)
            if dec.action == "stop":
                early = dec.next_dose is None
                break
            assert dec.next_dose is not None  # only "stop" leaves the next dose open
            d = dec.next_dose
        stop[i] = early
        chosen = None if early else design.select_mtd(n, y)
        sel[i] = -1 if chosen is None else chosen
    return OperatingCharacteristics("BOIN", p, design.target, sel, n_all, y_all, stop, seed)


# ----------------------------------------------------------------------------- 3+3
def simulate_3plus3(
    design: ThreePlusThree,
    p_true: Any,
    n_trials: int = 10_000,
    seed: int | None = 1,
    u=None,
    target: float = 0.3,
) -> OperatingCharacteristics:
    """3+3 trials, vectorised (rules of :class:`ThreePlusThree`); ``target`` only defines
    the true MTD for the overdosing and correct-selection metrics."""
    p = _p_true(p_true, design.n_doses)
    nd = design.n_doses
    if u is None:
        u = draw_uniforms(n_trials, nd, 6, seed)
    t = u.shape[0]
    n = np.zeros((t, nd), dtype=int)
    y = np.zeros((t, nd), dtype=int)
    d = np.full(t, design.start_dose)
    active = np.ones(t, dtype=bool)
    sel = np.full(t, -1)
    rows = np.arange(t)
    for _ in range(2 * nd):
        r = rows[active]
        if r.size == 0:
            break
        dr = d[r]
        y[r, dr] += _cohort_dlt(u, r, dr, n[r, dr], 3, p)
        n[r, dr] += 3
        nn, yy = n[r, dr], y[r, dr]
        bad = yy >= 2
        more = (nn == 3) & (yy == 1)
        up = ~bad & ~more
        top = up & (dr == nd - 1)
        sel[r[bad]] = dr[bad] - 1
        sel[r[top]] = nd - 1
        d[r] = np.where(up & ~top, dr + 1, dr)
        active[r[bad | top]] = False
    stop = sel < 0
    return OperatingCharacteristics("3+3", p, target, sel, n, y, stop, seed)


def three_plus_three_exact(p_true: Any) -> np.ndarray:
    """Exact P(select dose d), d = 1..D, then P(none), for :class:`ThreePlusThree`:
    passing a dose has probability e(p) = (1-p)^3 + 3p(1-p)^2 (1-p)^3 (Storer 1989)."""
    p = np.asarray(p_true, dtype=float)
    e = (1 - p) ** 3 + 3 * p * (1 - p) ** 2 * (1 - p) ** 3
    reach = np.concatenate([[1.0], np.cumprod(e)])  # P(pass doses 1..k)
    out = np.empty(len(p) + 1)
    out[-1] = 1 - e[0]
    out[:-1] = reach[1:] * np.append(1 - e[1:], 1.0)
    return out


# ----------------------------------------------------------------------------- CRM
def simulate_crm(
    design: CRM, p_true: Any, n_trials: int = 10_000, seed: int | None = 1, u=None
) -> OperatingCharacteristics:
    """CRM trials, vectorised: the posterior on a grid for all active trials at once."""
    p = _p_true(p_true, design.n_doses)
    cs, nc, nd = design.cohort_size, design.n_cohorts, design.n_doses
    if u is None:
        u = draw_uniforms(n_trials, nd, cs * nc, seed)
    t = u.shape[0]
    n = np.zeros((t, nd), dtype=int)
    y = np.zeros((t, nd), dtype=int)
    d = np.full(t, design.start_dose)
    active = np.ones(t, dtype=bool)
    stop = np.zeros(t, dtype=bool)
    rows = np.arange(t)
    for _ in range(nc):
        r = rows[active]
        if r.size == 0:
            break
        dr = d[r]
        y[r, dr] += _cohort_dlt(u, r, dr, n[r, dr], cs, p)
        n[r, dr] += cs
        post = _crm_posterior_unique(design, n[r], y[r])
        halt = post["p_over"][:, 0] > design.stop_cutoff
        best = np.abs(post["p_hat"] - design.target).argmin(axis=1)
        d[r] = np.minimum(best, dr + 1)
        stop[r[halt]] = True
        active[r[halt]] = False
    post = _crm_posterior_unique(design, n, y)
    sel = np.where(stop, -1, np.abs(post["p_hat"] - design.target).argmin(axis=1))
    return OperatingCharacteristics("CRM", p, design.target, sel, n, y, stop, seed)


def _crm_posterior_unique(design: CRM, n: np.ndarray, y: np.ndarray) -> dict[str, np.ndarray]:
    """The posterior depends on the trial only through its counts: compute it once per
    distinct (n, y) state (far fewer than trials) and scatter back."""
    states, inverse = np.unique(np.concatenate([n, y], axis=1), axis=0, return_inverse=True)
    nd = n.shape[1]
    post = design.posterior(states[:, :nd], states[:, nd:])
    inverse = inverse.reshape(-1)
    return {k: v[inverse] for k, v in post.items()}


def _p_true(p_true: Any, n_doses: int) -> np.ndarray:
    p = np.asarray(p_true, dtype=float)
    if p.shape != (n_doses,) or ((p < 0) | (p > 1)).any():
        raise ValueError(f"p_true must be {n_doses} probabilities in [0, 1], got {p_true!r}")
    return p


def boin_exact_selection(design: BOIN, p_true: Any) -> np.ndarray:
    """Exact P(select d) / P(none) of a small BOIN design by enumerating every sequence
    of cohort outcomes (cohort_size+1)^n_cohorts paths — the check on the simulator."""
    from scipy.stats import binom

    p = _p_true(p_true, design.n_doses)
    out = np.zeros(design.n_doses + 1)
    cs = design.cohort_size

    def walk(n, y, d, k, prob):
        if k == design.n_cohorts:
            s = design.select_mtd(n, y)
            out[-1 if s is None else s] += prob
            return
        for x in range(cs + 1):
            n2, y2 = n.copy(), y.copy()
            n2[d] += cs
            y2[d] += x
            pr = prob * binom.pmf(x, cs, p[d])
            dec = design.decide(n2, y2, d)
            if dec.action == "stop":
                if dec.next_dose is None:
                    out[-1] += pr
                else:
                    s = design.select_mtd(n2, y2)
                    out[-1 if s is None else s] += pr
                continue
            walk(n2, y2, dec.next_dose, k + 1, pr)

    z = np.zeros(design.n_doses, dtype=int)
    walk(z, z.copy(), design.start_dose, 0, 1.0)
    return out


__all__ = [
    "OperatingCharacteristics",
    "boin_exact_selection",
    "draw_uniforms",
    "pava",
    "simulate_3plus3",
    "simulate_boin",
    "simulate_boin_loop",
    "simulate_crm",
    "three_plus_three_exact",
]


def plot_operating_characteristics(results: list[OperatingCharacteristics], labels=None):
    """Figure: P(select each dose as MTD) with 95% MC intervals, and mean patients per
    dose, side by side for designs run on the same scenario.  Returns the matplotlib
    Figure (Agg; no display needed)."""
    from matplotlib.figure import Figure

    labels = labels or [r.design for r in results]
    nd = len(results[0].p_true)
    fig = Figure(figsize=(9, 3.6), layout="constrained")
    ax1, ax2 = fig.subplots(1, 2)
    width = 0.8 / len(results)
    x = np.arange(nd + 1)
    for i, (r, lab) in enumerate(zip(results, labels, strict=True)):
        off = (i - (len(results) - 1) / 2) * width
        ax1.bar(x + off, r.selection, width, yerr=1.96 * r.selection_se, label=lab, capsize=2)
        ax2.bar(x[:-1] + off, r.n_per_dose.mean(axis=0), width, label=lab)
    names = [f"{i + 1}\n({p:.2f})" for i, p in enumerate(results[0].p_true)]
    ax1.set_xticks(x, [*names, "none"])
    ax2.set_xticks(x[:-1], names)
    ax1.set_ylabel("P(selected as MTD)")
    ax2.set_ylabel("mean patients treated")
    for ax in (ax1, ax2):
        ax.set_xlabel("dose (true DLT rate)")
        ax.spines[["top", "right"]].set_visible(False)
    ax1.legend(frameon=False)
    fig.suptitle(f"Operating characteristics, {results[0].n_trials} simulated trials each")
    return fig
