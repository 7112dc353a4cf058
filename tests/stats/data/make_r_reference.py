"""Regenerate ``r_reference.json``: reference values from R survival and cmprsk.

Not a test.  Needs R with the survival and cmprsk packages (Debian: ``apt-get install
r-base-core r-cran-survival r-cran-cmprsk``).  Run from the repository root:

    .venv/bin/python tests/stats/data/make_r_reference.py

The datasets are drawn here with fixed seeds and stored in the JSON next to what R
computed from them, so the tests need neither R nor this script.  Values produced with
R 4.2.2, survival 3.5-3, cmprsk 2.2-11.
"""

from __future__ import annotations

import json
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent

R_CODE = r"""
suppressMessages({library(survival); library(cmprsk)})
args <- commandArgs(trailingOnly = TRUE)
dir <- args[1]
fmt <- function(x) ifelse(is.na(x), "NA", formatC(x, digits = 17, format = "g"))
out <- file(file.path(dir, "r_out.txt"), "w")
emit <- function(key, x) writeLines(paste(key, paste(fmt(as.numeric(x)), collapse = " ")), out)

km <- read.csv(file.path(dir, "km.csv"))
for (id in unique(km$id)) {
  d <- km[km$id == id, ]
  for (ct in c("plain", "log", "log-log")) {
    f <- survfit(Surv(time, event) ~ 1, data = d, conf.type = ct)
    k <- paste0("km/", id, "/", ct, "/")
    emit(paste0(k, "time"), f$time); emit(paste0(k, "n_risk"), f$n.risk)
    emit(paste0(k, "n_event"), f$n.event); emit(paste0(k, "n_censor"), f$n.censor)
    emit(paste0(k, "surv"), f$surv); emit(paste0(k, "std_err_log"), f$std.err)
    emit(paste0(k, "lower"), f$lower); emit(paste0(k, "upper"), f$upper)
    q <- quantile(f, probs = c(0.25, 0.5, 0.75))
    emit(paste0(k, "q"), q$quantile); emit(paste0(k, "q_lower"), q$lower)
    emit(paste0(k, "q_upper"), q$upper)
    r <- survfit(Surv(time, 1 - event) ~ 1, data = d, conf.type = ct)
    qr <- quantile(r, probs = 0.5)
    emit(paste0(k, "followup"), c(qr$quantile, qr$lower, qr$upper))
  }
}

lr <- read.csv(file.path(dir, "lr.csv"))
for (id in unique(lr$id)) {
  d <- lr[lr$id == id, ]
  for (rho in c(0, 1)) {
    a <- survdiff(Surv(time, event) ~ group, data = d, rho = rho)
    b <- survdiff(Surv(time, event) ~ group + strata(stratum), data = d, rho = rho)
    k <- paste0("lr/", id, "/", rho, "/")
    emit(paste0(k, "chisq"), a$chisq); emit(paste0(k, "obs"), a$obs); emit(paste0(k, "exp"), a$exp)
    emit(paste0(k, "strat_chisq"), b$chisq)
  }
}

cr <- read.csv(file.path(dir, "cr.csv"))
for (id in unique(cr$id)) {
  d <- cr[cr$id == id, ]
  x <- cuminc(d$time, d$cause)
  tt <- sort(unique(d$time))
  tp <- timepoints(x, tt)
  k <- paste0("cr/", id, "/")
  emit(paste0(k, "times"), tt)
  for (j in rownames(tp$est)) {
    cause <- strsplit(j, " ")[[1]][2]
    emit(paste0(k, "est/", cause), tp$est[j, ]); emit(paste0(k, "var/", cause), tp$var[j, ])
  }
  for (rho in c(0, 1)) {
    g <- cuminc(d$time, d$cause, d$group, rho = rho)$Tests
    s <- cuminc(d$time, d$cause, d$group, d$stratum, rho = rho)$Tests
    for (j in rownames(g)) {
      emit(paste0(k, "gray/", rho, "/", j), g[j, c("stat", "pv", "df")])
      emit(paste0(k, "gray_strata/", rho, "/", j), s[j, c("stat", "pv", "df")])
    }
  }
}

ft <- read.csv(file.path(dir, "fisher.csv"))
for (id in unique(ft$id)) {
  m <- as.matrix(ft[ft$id == id, c("a", "b", "c", "d", "e")])
  m <- m[, colSums(!is.na(m)) > 0, drop = FALSE]
  emit(paste0("fisher/", id), fisher.test(m)$p.value)
}

cx <- read.csv(file.path(dir, "cox.csv"))
for (ties in c("efron", "breslow")) {
  f <- coxph(Surv(time, event) ~ x1 + x2, data = cx, ties = ties)
  emit(paste0("cox/", ties, "/coef"), coef(f)); emit(paste0("cox/", ties, "/se"), sqrt(diag(vcov(f))))
  s <- coxph(Surv(time, event) ~ x1 + x2 + strata(stratum), data = cx, ties = ties)
  emit(paste0("cox/", ties, "/strata_coef"), coef(s))
}
close(out)
"""


def _km_sets() -> pd.DataFrame:
    rng = np.random.default_rng(20240601)
    frames = []
    specs = [
        (8, "ties"), (12, "cont"), (20, "ties"), (30, "cont"), (40, "ties"),
        (60, "cont"), (25, "zero"), (15, "death_last"), (50, "heavy_ties"),
    ]  # fmt: skip
    for i, (n, kind) in enumerate(specs):
        t = rng.exponential(12.0, n)
        if kind in ("ties", "zero"):
            t = np.floor(t)
        if kind == "heavy_ties":
            t = np.floor(t / 4.0) * 4.0
        if kind == "cont":
            t = np.round(t, 3)
        e = (rng.random(n) < 0.65).astype(int)
        if kind == "death_last":
            e[np.argmax(t)] = 1
        frames.append(pd.DataFrame({"id": i, "time": t, "event": e}))
    return pd.concat(frames, ignore_index=True)


def _lr_sets() -> pd.DataFrame:
    rng = np.random.default_rng(20240602)
    frames = []
    for i, (n, k) in enumerate([(20, 2), (45, 3), (80, 2), (120, 4), (60, 3)]):
        g = rng.integers(0, k, n)
        t = np.floor(rng.exponential(10.0 * (1.0 + 0.3 * g), n)) + (i % 2) * 0.5
        e = (rng.random(n) < 0.7).astype(int)
        frames.append(
            pd.DataFrame(
                {"id": i, "time": t, "event": e, "group": g, "stratum": rng.integers(0, 2, n)}
            )
        )
    return pd.concat(frames, ignore_index=True)


def _cr_sets() -> pd.DataFrame:
    rng = np.random.default_rng(20240603)
    frames = []
    for i, (n, tied) in enumerate([(30, True), (60, False), (90, True), (150, True)]):
        g = rng.integers(0, 2 + i % 2, n)
        t = rng.exponential(8.0 * (1.0 + 0.4 * g), n)
        t = np.floor(t) + 1.0 if tied else np.round(t, 4)
        cause = rng.choice([0, 1, 2], n, p=[0.3, 0.4, 0.3])
        frames.append(
            pd.DataFrame(
                {"id": i, "time": t, "cause": cause, "group": g, "stratum": rng.integers(0, 2, n)}
            )
        )
    return pd.concat(frames, ignore_index=True)


FISHER_TABLES = [
    [[3, 1, 2], [1, 5, 2]],
    [[8, 2, 0], [1, 5, 4]],
    [[12, 7, 3, 1], [2, 6, 9, 11]],
    [[5, 5, 5, 5, 5], [1, 2, 3, 4, 9]],
    [[30, 10, 20, 15, 12], [10, 50, 20, 15, 30]],
    [[0, 3, 1], [4, 0, 2]],
]


def _cox_set() -> pd.DataFrame:
    rng = np.random.default_rng(20240604)
    n = 150
    x1 = rng.normal(size=n)
    x2 = rng.integers(0, 2, n)
    t = np.floor(rng.exponential(15.0 * np.exp(-0.5 * x1 + 0.3 * x2))) + 1.0
    e = (rng.random(n) < 0.75).astype(int)
    return pd.DataFrame(
        {"time": t, "event": e, "x1": np.round(x1, 6), "x2": x2, "stratum": rng.integers(0, 2, n)}
    )


def main() -> None:
    km, lr, cr, cx = _km_sets(), _lr_sets(), _cr_sets(), _cox_set()
    fisher_rows = []
    for i, tab in enumerate(FISHER_TABLES):
        for row in tab:
            fisher_rows.append({"id": i, **dict(zip("abcde", row, strict=False))})
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        km.to_csv(d / "km.csv", index=False)
        lr.to_csv(d / "lr.csv", index=False)
        cr.to_csv(d / "cr.csv", index=False)
        cx.to_csv(d / "cox.csv", index=False)
        pd.DataFrame(fisher_rows).to_csv(d / "fisher.csv", index=False)
        (d / "ref.R").write_text(R_CODE)
        subprocess.run(["Rscript", str(d / "ref.R"), str(d)], check=True)
        r_out = {}
        for line in (d / "r_out.txt").read_text().splitlines():
            key, *vals = line.split()
            r_out[key] = [None if v == "NA" else float(v) for v in vals]
    payload = {
        "source": "R 4.2.2, survival 3.5-3, cmprsk 2.2-11 (see make_r_reference.py)",
        "data": {
            "km": km.to_dict(orient="list"),
            "lr": lr.to_dict(orient="list"),
            "cr": cr.to_dict(orient="list"),
            "cox": cx.to_dict(orient="list"),
            "fisher": FISHER_TABLES,
        },
        "r": r_out,
    }
    (HERE / "r_reference.json").write_text(json.dumps(payload, separators=(",", ":")))


if __name__ == "__main__":
    main()
