"""Dose-escalation rules: 3+3, BOIN and the Bayesian power-model CRM.

Each design gives (a) its decision table for a target and cohort size and (b) a
decision for the current dose from the DLT counts seen so far.  A decision is a
recommendation naming the rule that fired; nothing here acts on its own.

Sources
- 3+3: Storer, Biometrics 1989;45:925 (design "A"); Le Tourneau et al., JNCI 2009;101:708.
- BOIN: Liu & Yuan, J R Stat Soc C 2015;64:507 (boundaries, eq. 2-3; elimination and
  isotonic MTD selection, Section 2.3); Yuan et al., Clin Cancer Res 2016;22:4291
  (Table 1: the published boundaries); R package BOIN ``get.boundary``/``select.mtd``.
- CRM: O'Quigley, Pepe & Fisher, Biometrics 1990;46:33; power ("empiric") model
  p_d = s_d^exp(a), a ~ N(0, 1.34) as in R dfcrm (Cheung 2011, *Dose Finding by the
  Continual Reassessment Method*); skeleton by Lee & Cheung, Clin Trials 2009;6:227.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

_EPS = 1e-10


@dataclass(frozen=True)
class Decision:
    """A recommendation for the next cohort: ``action`` and ``next_dose`` (0-based index,
    None when the trial should stop), ``rule`` (the rule that fired, in words) and
    ``eliminated`` (0-based indices of doses eliminated for toxicity)."""

    action: str  # escalate | stay | de-escalate | stop
    next_dose: int | None
    rule: str
    eliminated: tuple[int, ...] = ()
    details: dict[str, Any] = field(default_factory=dict)


# ----------------------------------------------------------------------------- BOIN
def boin_boundaries(
    target: float, phi1: float | None = None, phi2: float | None = None
) -> tuple[float, float]:
    """BOIN escalation/de-escalation boundaries (λe, λd) (Liu & Yuan 2015, eq. 2-3).

    λe = log((1-φ1)/(1-φ)) / log(φ(1-φ1) / (φ1(1-φ)));
    λd = log((1-φ)/(1-φ2)) / log(φ2(1-φ) / (φ(1-φ2))); defaults φ1 = 0.6φ, φ2 = 1.4φ.
    """
    if not 0.0 < target < 1.0:
        raise ValueError(f"target DLT rate must be in (0, 1), got {target!r}")
    phi1 = 0.6 * target if phi1 is None else phi1
    phi2 = 1.4 * target if phi2 is None else phi2
    if not 0.0 < phi1 < target < phi2 < 1.0:
        raise ValueError(f"need 0 < phi1 < target < phi2 < 1, got {phi1}, {target}, {phi2}")
    lam_e = math.log((1 - phi1) / (1 - target)) / math.log(
        target * (1 - phi1) / (phi1 * (1 - target))
    )
    lam_d = math.log((1 - target) / (1 - phi2)) / math.log(
        phi2 * (1 - target) / (target * (1 - phi2))
    )
    return lam_e, lam_d


def elimination_boundary(
    n: np.ndarray | int, target: float, cutoff: float = 0.95, a: float = 1.0, b: float = 1.0
) -> np.ndarray:
    """Smallest DLT count y with P(p > target | y of n, Beta(a, b) prior) > ``cutoff``.

    BOIN's safety rule (Liu & Yuan 2015, Section 2.3): eliminate the dose and all higher
    doses once y reaches this count, applied only with n >= 3.  Returns n + 1 (never)
    where no count qualifies and for n < 3.
    """
    from scipy.stats import beta

    n_arr = np.atleast_1d(np.asarray(n, dtype=int))
    out = np.empty(n_arr.shape, dtype=int)
    for i, ni in enumerate(n_arr):
        ys = np.arange(ni + 1)
        post = beta.sf(target, a + ys, b + ni - ys)
        ok = np.flatnonzero(post > cutoff)
        out[i] = ok[0] if (ni >= 3 and ok.size) else ni + 1
    return out


@dataclass(frozen=True)
class BOIN:
    """The BOIN design (Liu & Yuan 2015) for ``n_doses`` doses.

    ``n_earlystop``: stop and select the MTD once this many patients are at the current
    dose and the decision is to stay there (R BOIN ``get.oc``; default 100 = off).  ``cutoff_eli``: posterior cut-off of the elimination rule.
    """

    target: float
    n_doses: int
    cohort_size: int = 3
    n_cohorts: int = 10
    phi1: float | None = None
    phi2: float | None = None
    cutoff_eli: float = 0.95
    n_earlystop: int = 100
    start_dose: int = 0

    @property
    def boundaries(self) -> tuple[float, float]:
        return boin_boundaries(self.target, self.phi1, self.phi2)

    def decision_table(self, max_n: int | None = None):
        """Per number treated n: escalate if y <= b_e, de-escalate if y >= b_d, eliminate
        if y >= b_elim (the layout of Yuan et al. 2016, Table 1 / R ``get.boundary``)."""
        import pandas as pd

        lam_e, lam_d = self.boundaries
        n = np.arange(1, (max_n or self.cohort_size * self.n_cohorts) + 1)
        elim = elimination_boundary(n, self.target, self.cutoff_eli)
        return pd.DataFrame(
            {
                "n": n,
                "escalate_if_dlt_le": np.floor(lam_e * n + _EPS).astype(int),
                # R get.boundary: the de-escalation count never exceeds the elimination count
                "deescalate_if_dlt_ge": np.minimum(np.ceil(lam_d * n - _EPS).astype(int), elim),
                "eliminate_if_dlt_ge": pd.array(
                    [None if e > k else int(e) for e, k in zip(elim, n, strict=True)],
                    dtype="Int64",
                ),
            }
        )

    def decide(self, n: Any, y: Any, current: int) -> Decision:
        """Next dose after a cohort at ``current``; ``n``/``y``: patients/DLTs per dose."""
        dec = self._decide(n, y, current)
        nd = int(np.asarray(n)[current])
        if dec.action == "stay" and nd >= self.n_earlystop:
            return Decision(
                "stop",
                current,
                f"BOIN early stop: {nd} >= n_earlystop={self.n_earlystop} at a dose the "
                f"rule keeps ({dec.rule}); select the MTD",
                dec.eliminated,
                dec.details,
            )
        return dec

    def _decide(self, n: Any, y: Any, current: int) -> Decision:
        n_arr, y_arr = _counts(n, y, self.n_doses)
        lam_e, lam_d = self.boundaries
        elim_at = elimination_boundary(n_arr, self.target, self.cutoff_eli)
        toxic = np.flatnonzero((n_arr >= 3) & (y_arr >= elim_at))
        eliminated = tuple(range(int(toxic.min()), self.n_doses)) if toxic.size else ()
        nd, yd = int(n_arr[current]), int(y_arr[current])
        rate = yd / nd if nd else float("nan")
        post = f"P(p > {self.target:g} | {yd}/{nd}) > {self.cutoff_eli:g}"
        details = {"lambda_e": lam_e, "lambda_d": lam_d, "n": nd, "dlt": yd}
        if eliminated and eliminated[0] == 0:
            return Decision(
                "stop",
                None,
                f"BOIN elimination: lowest dose too toxic ({post}); stop, no MTD",
                eliminated,
                details,
            )
        if current in eliminated:
            return Decision(
                "de-escalate",
                current - 1,
                f"BOIN elimination: {post}; this and higher doses eliminated",
                eliminated,
                details,
            )
        if rate <= lam_e + _EPS:
            if current + 1 < self.n_doses and current + 1 not in eliminated:
                return Decision(
                    "escalate",
                    current + 1,
                    f"BOIN: DLT rate {yd}/{nd} <= lambda_e {lam_e:.3f}",
                    eliminated,
                    details,
                )
            why = "highest dose" if current + 1 >= self.n_doses else "next dose eliminated"
            return Decision(
                "stay",
                current,
                f"BOIN: DLT rate {yd}/{nd} <= lambda_e {lam_e:.3f} but {why}",
                eliminated,
                details,
            )
        if rate >= lam_d - _EPS:
            if current > 0:
                return Decision(
                    "de-escalate",
                    current - 1,
                    f"BOIN: DLT rate {yd}/{nd} >= lambda_d {lam_d:.3f}",
                    eliminated,
                    details,
                )
            return Decision(
                "stay",
                current,
                f"BOIN: DLT rate {yd}/{nd} >= lambda_d {lam_d:.3f} at the lowest dose",
                eliminated,
                details,
            )
        return Decision(
            "stay",
            current,
            f"BOIN: lambda_e {lam_e:.3f} < DLT rate {yd}/{nd} < lambda_d {lam_d:.3f}",
            eliminated,
            details,
        )

    def select_mtd(self, n: Any, y: Any) -> int | None:
        """MTD by isotonic regression (Liu & Yuan 2015, Section 2.3; R ``select.mtd``).

        Admissible: treated, non-eliminated doses.  p̂ = (y+0.05)/(n+0.1), PAVA weighted by
        1/var of Beta(y+0.05, n-y+0.05); dose with p̂ closest to target (ties: lower dose
        if p̂ > target, else higher — R's 1e-10·i offset).  None if dose 1 is eliminated.
        """
        n_arr, y_arr = _counts(n, y, self.n_doses)
        elim_at = elimination_boundary(n_arr, self.target, self.cutoff_eli)
        toxic = np.flatnonzero((n_arr >= 3) & (y_arr >= elim_at))
        top = int(toxic.min()) if toxic.size else self.n_doses
        adm = [d for d in range(top) if n_arr[d] > 0]
        if not adm:
            return None
        yy, nn = y_arr[adm].astype(float), n_arr[adm].astype(float)
        phat = (yy + 0.05) / (nn + 0.1)
        var = (yy + 0.05) * (nn - yy + 0.05) / ((nn + 0.1) ** 2 * (nn + 0.1 + 1))
        iso = pava(phat, 1.0 / var) + np.arange(1, len(adm) + 1) * 1e-10
        return adm[int(np.argmin(np.abs(iso - self.target)))]


def pava(values: Any, weights: Any = None) -> np.ndarray:
    """Weighted isotonic (non-decreasing) regression by pool-adjacent-violators."""
    v = np.asarray(values, dtype=float)
    w = np.ones_like(v) if weights is None else np.asarray(weights, dtype=float)
    blocks: list[list[float]] = []  # [mean, weight, size]
    for vi, wi in zip(v, w, strict=True):
        blocks.append([vi, wi, 1])
        while len(blocks) > 1 and blocks[-2][0] > blocks[-1][0]:
            m2, w2, s2 = blocks.pop()
            m1, w1, s1 = blocks.pop()
            blocks.append([(m1 * w1 + m2 * w2) / (w1 + w2), w1 + w2, s1 + s2])
    return np.concatenate([np.full(int(s), m) for m, _, s in blocks]) if blocks else v


def _counts(n: Any, y: Any, n_doses: int) -> tuple[np.ndarray, np.ndarray]:
    n_arr = np.asarray(n, dtype=int)
    y_arr = np.asarray(y, dtype=int)
    if n_arr.shape != (n_doses,) or y_arr.shape != (n_doses,):
        raise ValueError(f"need {n_doses} counts per dose, got n={n!r}, y={y!r}")
    if (y_arr < 0).any() or (y_arr > n_arr).any():
        raise ValueError(f"DLT counts must be within 0..n per dose, got n={n!r}, y={y!r}")
    return n_arr, y_arr


# ----------------------------------------------------------------------------- 3+3
@dataclass(frozen=True)
class ThreePlusThree:
    """The 3+3 design (Storer 1989, design A; Le Tourneau et al. 2009).

    At the current dose: 0/3 DLT -> escalate; 1/3 -> 3 more at the same dose; 1/6 ->
    escalate; >= 2 DLTs (of 3 or 6) -> stop, MTD = the next lower dose.  Escalating past
    the highest dose stops with the highest dose as MTD.  (The variant that expands the
    lower dose to 6 before declaring it the MTD is not applied.)
    """

    n_doses: int
    start_dose: int = 0

    def decide(self, n: Any, y: Any, current: int) -> Decision:
        n_arr, y_arr = _counts(n, y, self.n_doses)
        nd, yd = int(n_arr[current]), int(y_arr[current])
        det = {"n": nd, "dlt": yd}
        if yd >= 2:
            return Decision("stop", None, f"3+3: {yd}/{nd} DLTs (>= 2); MTD = dose below", (), det)
        if nd < 3:
            return Decision("stay", current, f"3+3: cohort incomplete ({nd}/3)", (), det)
        if nd == 3 and yd == 1:
            return Decision("stay", current, "3+3: 1/3 DLT; treat 3 more at this dose", (), det)
        if 3 < nd < 6 and yd == 1:
            return Decision("stay", current, f"3+3: 1/{nd} DLT; complete 6 at this dose", (), det)
        # 0/3 or 0-1 of >= 6 (more than 6 evaluable: the rule is read on all of them)
        if current + 1 < self.n_doses:
            return Decision("escalate", current + 1, f"3+3: {yd}/{nd} DLT; escalate", (), det)
        return Decision(
            "stop", None, f"3+3: {yd}/{nd} DLT at the highest dose; MTD = highest", (), det
        )


# ----------------------------------------------------------------------------- CRM
def crm_skeleton(halfwidth: float, target: float, prior_mtd: int, n_doses: int) -> np.ndarray:
    """Skeleton by indifference intervals (Lee & Cheung 2009; R dfcrm ``getprior``,
    empiric model); ``prior_mtd`` is 0-based."""
    if not 0 < halfwidth < min(target, 1 - target):
        raise ValueError(f"halfwidth must be in (0, min(target, 1-target)), got {halfwidth}")
    s = np.empty(n_doses)
    s[prior_mtd] = target
    lo, hi = math.log(target - halfwidth), math.log(target + halfwidth)
    for k in range(prior_mtd + 1, n_doses):
        s[k] = math.exp(hi * math.log(s[k - 1]) / lo)
    for k in range(prior_mtd - 1, -1, -1):
        s[k] = math.exp(lo * math.log(s[k + 1]) / hi)
    return s


@dataclass(frozen=True)
class CRM:
    """Bayesian CRM, power model p_d = s_d^exp(a), a ~ N(0, ``prior_var``) (O'Quigley et al.
    1990; dfcrm defaults).  Decision: dose with plug-in p_d(E[a|data]) closest to target,
    escalating at most one level; stop if P(p_1 > target | data) > ``stop_cutoff``
    (safety rule as in Cheung 2011, ch. 9)."""

    skeleton: tuple[float, ...]
    target: float
    cohort_size: int = 3
    n_cohorts: int = 10
    prior_var: float = 1.34
    stop_cutoff: float = 0.90
    start_dose: int = 0
    grid_size: int = 801

    @property
    def n_doses(self) -> int:
        return len(self.skeleton)

    def _grid(self) -> tuple[np.ndarray, np.ndarray]:
        sd = math.sqrt(self.prior_var)
        a = np.linspace(-8 * sd, 8 * sd, self.grid_size)
        logprior = -0.5 * a**2 / self.prior_var
        return a, logprior

    def posterior(self, n: Any, y: Any) -> dict[str, np.ndarray]:
        """Vectorised posterior: ``n``, ``y`` of shape (..., n_doses).  Returns the
        posterior mean of a, plug-in p per dose and P(p_d > target | data)."""
        n_arr = np.asarray(n, dtype=float)
        y_arr = np.asarray(y, dtype=float)
        a, logprior = self._grid()
        s = np.asarray(self.skeleton, dtype=float)
        logp = np.exp(a)[:, None] * np.log(s)[None, :]  # (G, D) log p_d(a)
        log1m = np.log1p(-np.exp(logp))
        ll = y_arr @ logp.T + (n_arr - y_arr) @ log1m.T + logprior  # (..., G)
        ll -= ll.max(axis=-1, keepdims=True)
        w = np.exp(ll)
        w /= w.sum(axis=-1, keepdims=True)
        a_hat = w @ a
        p_hat = s ** np.exp(a_hat)[..., None]
        # P(p_d > target) = P(a < a*_d), a*_d = log(log target / log s_d): the posterior
        # CDF (point masses at grid nodes, i.e. steps at the midpoints) interpolated at a*_d
        cdf = np.cumsum(w, axis=-1)
        h = a[1] - a[0]
        a_star = np.log(np.log(self.target) / np.log(s))
        pos = np.clip((a_star - a[0] - h / 2) / h, 0, len(a) - 1)
        i0 = np.floor(pos).astype(int)
        i1 = np.minimum(i0 + 1, len(a) - 1)
        f = pos - i0
        over = cdf[..., i0] * (1 - f) + cdf[..., i1] * f
        return {"a_hat": a_hat, "p_hat": p_hat, "p_over": over}

    def decide(self, n: Any, y: Any, current: int) -> Decision:
        n_arr, y_arr = _counts(n, y, self.n_doses)
        post = self.posterior(n_arr, y_arr)
        p_hat, p_over = post["p_hat"], post["p_over"]
        det = {"a_hat": float(post["a_hat"]), "p_hat": p_hat.tolist()}
        if p_over[0] > self.stop_cutoff and n_arr[0] > 0:
            return Decision(
                "stop",
                None,
                f"CRM safety: P(p_1 > {self.target:g} | data) = {p_over[0]:.3f} > "
                f"{self.stop_cutoff:g}; stop, no MTD",
                (),
                det,
            )
        best = int(np.argmin(np.abs(p_hat - self.target)))
        nxt = min(best, current + 1)
        action = "escalate" if nxt > current else "de-escalate" if nxt < current else "stay"
        rule = f"CRM: posterior p closest to {self.target:g} at dose {best + 1}"
        if best > current + 1:
            rule += " (no skipping: one level up)"
        return Decision(action, nxt, rule, (), det)

    def select_mtd(self, n: Any, y: Any) -> int | None:
        n_arr, y_arr = _counts(n, y, self.n_doses)
        post = self.posterior(n_arr, y_arr)
        if post["p_over"][0] > self.stop_cutoff:
            return None
        return int(np.argmin(np.abs(post["p_hat"] - self.target)))
