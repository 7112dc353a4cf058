"""Sample size and power for the questions early CAR-T trials end on.

- Single-arm response rate vs a historical rate, exact binomial single stage (A'Hern,
  Stat Med 2001;20:859): smallest n with a critical count r such that
  P(X >= r | p0) <= α and P(X >= r | p1) >= 1 - β.
- Simon two-stage optimal and minimax designs (Simon, Control Clin Trials 1989;10:1):
  stop after stage 1 if <= r1 responses of n1; reject the drug if <= r of n.
- Log-rank events by Schoenfeld (Biometrika 1981;68:316): d = (z_{1-α/2} + z_{1-β})² /
  (π(1-π) log²HR); patients from the event probability by Simpson's rule (Schoenfeld,
  Biometrics 1983;39:499) under exponential survival, uniform accrual.
- Log-rank power by simulation, two arms or the landmark comparison of consolidation
  SCT (Anderson, Cain & Gelber, J Clin Oncol 1983;1:710): patients progression-free at
  the landmark, grouped by SCT before it, followed from the landmark.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class SingleStage:
    n: int
    r: int  # declare activity if responses >= r
    alpha: float  # exact P(X >= r | p0)
    power: float  # exact P(X >= r | p1)


def exact_single_stage(
    p0: float, p1: float, alpha: float = 0.05, beta: float = 0.2, n_max: int = 500
) -> SingleStage:
    """Smallest single-stage exact binomial design (A'Hern 2001), one-sided α."""
    from scipy.stats import binom

    _check_rates(p0, p1)
    for n in range(1, n_max + 1):
        x = np.arange(n + 2)
        tail0 = binom.sf(x - 1, n, p0)
        r = int(np.flatnonzero(tail0 <= alpha)[0])
        pw = float(binom.sf(r - 1, n, p1))
        if pw >= 1 - beta:
            return SingleStage(n, r, float(tail0[r]), pw)
    raise ValueError(f"no design with n <= {n_max}")


@dataclass(frozen=True)
class SimonDesign:
    kind: str
    r1: int
    n1: int
    r: int
    n: int
    en0: float  # expected sample size under p0
    pet0: float  # probability of early termination under p0
    alpha: float
    power: float


def simon_two_stage(
    p0: float, p1: float, alpha: float = 0.05, beta: float = 0.2, n_max: int = 80
) -> dict[str, SimonDesign]:
    """Simon (1989) optimal (min E[N | p0]) and minimax (min n, then E[N | p0]) designs
    by exhaustive search over n <= ``n_max``; vectorised over (r1, r) per (n, n1)."""
    from scipy.stats import binom

    _check_rates(p0, p1)
    best_opt: SimonDesign | None = None
    best_mm: SimonDesign | None = None
    for n in range(2, n_max + 1):
        for n1 in range(1, n):
            n2 = n - n1
            x1 = np.arange(n1 + 1)
            rr = np.arange(n + 1)
            diff = rr[None, :] - x1[:, None]  # need X2 > r - x1
            res = []
            for p in (p0, p1):
                m = binom.pmf(x1, n1, p)[:, None] * binom.sf(diff, n2, p)
                tail = np.vstack([np.cumsum(m[::-1], axis=0)[::-1], np.zeros((1, n + 1))])
                res.append(tail[1:])  # [r1, r]: sum over x1 > r1
            a_mat, pw_mat = res
            r1g, rg = np.meshgrid(np.arange(n1 + 1), rr, indexing="ij")
            ok = (a_mat <= alpha) & (pw_mat >= 1 - beta) & (rg >= r1g) & (r1g < n1) & (rg < n)
            if not ok.any():
                continue
            pet = binom.cdf(np.arange(n1 + 1), n1, p0)
            en = np.broadcast_to(n1 + (1 - pet[:, None]) * n2, ok.shape)
            en_ok = np.where(ok, en, np.inf)
            i, j = np.unravel_index(int(np.argmin(en_ok)), en_ok.shape)
            cand = SimonDesign(
                "", int(i), n1, int(j), n, float(en[i, j]), float(pet[i]),
                float(a_mat[i, j]), float(pw_mat[i, j]),
            )  # fmt: skip
            if best_opt is None or cand.en0 < best_opt.en0 - 1e-12:
                best_opt = cand
            if best_mm is None or (cand.n == best_mm.n and cand.en0 < best_mm.en0 - 1e-12):
                best_mm = cand
    if best_opt is None or best_mm is None:
        raise ValueError(f"no two-stage design with n <= {n_max}")
    return {
        "optimal": _with_kind(best_opt, "optimal"),
        "minimax": _with_kind(best_mm, "minimax"),
    }


def _with_kind(d: SimonDesign, kind: str) -> SimonDesign:
    return SimonDesign(kind, d.r1, d.n1, d.r, d.n, d.en0, d.pet0, d.alpha, d.power)


def _check_rates(p0: float, p1: float) -> None:
    if not 0 < p0 < p1 < 1:
        raise ValueError(f"need 0 < p0 < p1 < 1, got p0={p0}, p1={p1}")


def schoenfeld_events(
    hr: float, alpha: float = 0.05, power: float = 0.8, allocation: float = 0.5
) -> float:
    """Events for a two-sided log-rank test of hazard ratio ``hr`` (Schoenfeld 1981)."""
    from scipy.stats import norm

    if hr <= 0 or hr == 1:
        raise ValueError(f"hazard ratio must be > 0 and != 1, got {hr}")
    z = norm.ppf(1 - alpha / 2) + norm.ppf(power)
    return z**2 / (allocation * (1 - allocation) * math.log(hr) ** 2)


def schoenfeld_sample_size(
    hr: float,
    median_control: float,
    accrual: float,
    follow_up: float,
    alpha: float = 0.05,
    power: float = 0.8,
    allocation: float = 0.5,
) -> dict[str, float]:
    """Events and patients: P(event) = 1 - (S(f) + 4 S(f + a/2) + S(f + a))/6 averaged
    over arms (Schoenfeld 1983), exponential survival with control median given."""
    d = schoenfeld_events(hr, alpha, power, allocation)
    lam0 = math.log(2) / median_control
    pe = 0.0
    for lam, w in ((lam0, 1 - allocation), (lam0 * hr, allocation)):
        s = [math.exp(-lam * t) for t in (follow_up, follow_up + accrual / 2, follow_up + accrual)]
        pe += w * (1 - (s[0] + 4 * s[1] + s[2]) / 6)
    return {"events": d, "p_event": pe, "patients": d / pe}


def logrank_z(time: Any, event: Any, group: Any, include: Any = None) -> np.ndarray:
    """Two-group log-rank z statistic (observed - expected in group 1, over its SD),
    vectorised over rows (simulated trials).  Continuous times assumed (no ties)."""
    t = np.atleast_2d(np.asarray(time, dtype=float))
    e = np.atleast_2d(np.asarray(event, dtype=bool))
    g = np.atleast_2d(np.asarray(group, dtype=bool))
    inc = np.ones_like(e) if include is None else np.atleast_2d(np.asarray(include, dtype=bool))
    t = np.where(inc, t, np.inf)
    order = np.argsort(t, axis=1, kind="stable")
    e, g, inc = (np.take_along_axis(a, order, axis=1) for a in (e, g, inc))
    at_risk = np.cumsum(inc[:, ::-1], axis=1)[:, ::-1].astype(float)
    at_risk1 = np.cumsum((inc & g)[:, ::-1], axis=1)[:, ::-1].astype(float)
    ev = e & inc
    with np.errstate(invalid="ignore", divide="ignore"):
        frac = np.where(ev, at_risk1 / at_risk, 0.0)
        o_e = (ev & g).sum(axis=1) - frac.sum(axis=1)
        v = np.where(ev, frac * (1 - frac), 0.0).sum(axis=1)
        return np.where(v > 0, o_e / np.sqrt(v), 0.0)


def simulate_logrank_power(
    n: int,
    hr: float,
    median_control: float,
    accrual: float,
    follow_up: float,
    alpha: float = 0.05,
    allocation: float = 0.5,
    n_sims: int = 2000,
    seed: int | None = 1,
) -> dict[str, float]:
    """Two-arm log-rank power by simulation: exponential times, uniform accrual over
    ``accrual``, analysis ``follow_up`` after the last patient; MC SE reported."""
    from scipy.stats import norm

    rng = np.random.default_rng(seed)
    lam0 = math.log(2) / median_control
    g = rng.random((n_sims, n)) < allocation
    t = rng.exponential(1.0, (n_sims, n)) / np.where(g, lam0 * hr, lam0)
    cens = follow_up + accrual * rng.random((n_sims, n))
    z = logrank_z(np.minimum(t, cens), t <= cens, g)
    pw = float((np.abs(z) > norm.ppf(1 - alpha / 2)).mean())
    return {"power": pw, "mc_se": math.sqrt(pw * (1 - pw) / n_sims), "n_sims": n_sims}


def simulate_landmark_power(
    n: int,
    hr_sct: float,
    median_pfs: float,
    p_sct: float,
    sct_window: tuple[float, float] = (30.0, 90.0),
    landmark: float | None = None,
    follow_up: float = 730.0,
    alpha: float = 0.05,
    n_sims: int = 2000,
    seed: int | None = 1,
    return_data: bool = False,
) -> dict[str, Any]:
    """Power of the landmark comparison of PFS by consolidation SCT in a single-arm
    cohort of ``n`` infused patients (days).  PFS hazard λ = log 2 / ``median_pfs``;
    a patient still progression-free at their SCT day s ~ U(sct_window) receives SCT
    with probability ``p_sct`` and has hazard λ·``hr_sct`` afterwards.  Landmark L
    (default the window end): patients with PFS > L, SCT by L vs not, followed from L
    to ``follow_up``.  Reports power, MC SE and mean numbers analysed."""
    from scipy.stats import norm

    rng = np.random.default_rng(seed)
    lam = math.log(2) / median_pfs
    lm = sct_window[1] if landmark is None else landmark
    s = rng.uniform(sct_window[0], sct_window[1], (n_sims, n))
    t0 = rng.exponential(1.0, (n_sims, n)) / lam
    wants = rng.random((n_sims, n)) < p_sct
    sct = wants & (t0 > s)
    # memoryless: residual time after SCT drawn afresh with the SCT hazard
    t_after = s + rng.exponential(1.0, (n_sims, n)) / (lam * hr_sct)
    t = np.where(sct, t_after, t0)
    sct_day = np.where(sct, s, np.nan)
    event = t <= follow_up
    time = np.minimum(t, follow_up)
    include = time > lm
    group = sct & (s <= lm)
    z = logrank_z(time - lm, event, group, include)
    pw = float((np.abs(z) > norm.ppf(1 - alpha / 2)).mean())
    out: dict[str, Any] = {
        "power": pw,
        "mc_se": math.sqrt(pw * (1 - pw) / n_sims),
        "landmark": lm,
        "mean_at_landmark": float(include.sum(axis=1).mean()),
        "mean_sct_at_landmark": float((include & group).sum(axis=1).mean()),
        "n_sims": n_sims,
    }
    if return_data:
        out["data"] = {"time": time, "event": event, "sct_day": sct_day, "z": z}
    return out
