# Reference values for the time-dependent / landmark / Fine-Gray tests.
# Run by make_timedep_reference.py (Rscript timedep_reference.R DIR): reads DIR/td.csv and
# DIR/fg.csv, writes DIR/r_out.txt ("key v1 v2 ..." lines).  R 4.2.2, survival 3.5-3,
# cmprsk 2.2-11.
suppressMessages({library(survival); library(cmprsk)})
args <- commandArgs(trailingOnly = TRUE)
dir <- args[1]
fmt <- function(x) ifelse(is.na(x), "NA", formatC(x, digits = 17, format = "g"))
out <- file(file.path(dir, "r_out.txt"), "w")
emit <- function(key, x) writeLines(paste(key, paste(fmt(as.numeric(x)), collapse = " ")), out)

td <- read.csv(file.path(dir, "td.csv"))
for (ds in unique(td$dataset)) {
  d <- td[td$dataset == ds, ]
  k <- paste0("td/", ds, "/")
  # survival's timedep vignette conventions (jasa): futime 0 -> 0.5; an exposure on the
  # last day of follow-up happens half a day earlier
  d$futime <- pmax(0.5, d$time)
  tx <- d$txtime
  same <- !is.na(tx) & tx == d$futime
  tx[same] <- d$futime[same] - 0.5
  d$tx <- tx
  base <- tmerge(d[, c("id", "futime", "status", "age")], d[, c("id", "futime", "status")],
                 id = id, death = event(futime, status))
  cp <- tmerge(base, d[!is.na(d$tx), c("id", "tx")], id = id, sct = tdc(tx))
  cp$sct[is.na(cp$sct)] <- 0
  cp <- cp[order(cp$id, cp$tstart), ]
  emit(paste0(k, "cp/id"), cp$id); emit(paste0(k, "cp/start"), cp$tstart)
  emit(paste0(k, "cp/stop"), cp$tstop); emit(paste0(k, "cp/event"), cp$death)
  emit(paste0(k, "cp/sct"), cp$sct)
  for (ties in c("efron", "breslow")) {
    f <- coxph(Surv(tstart, tstop, death) ~ sct, data = cp, ties = ties)
    emit(paste0(k, ties, "/coef"), coef(f)); emit(paste0(k, ties, "/se"), sqrt(diag(vcov(f))))
    emit(paste0(k, ties, "/loglik"), f$loglik)
    g <- coxph(Surv(tstart, tstop, death) ~ sct + age, data = cp, ties = ties)
    emit(paste0(k, ties, "/coef2"), coef(g)); emit(paste0(k, ties, "/se2"), sqrt(diag(vcov(g))))
    emit(paste0(k, ties, "/loglik2"), g$loglik)
  }
  # the exact partial likelihood costs choose(n_risk, d) per tied time: only where few tie
  if (max(table(cp$tstop[cp$death == 1])) <= 3) {
    ex <- coxph(Surv(tstart, tstop, death) ~ sct, data = cp, ties = "exact", iter.max = 0)
    emit(paste0(k, "mb/score"), ex$score)
  }
  for (ct in c("plain", "log", "log-log")) {
    for (L in c(0, d$L[1])) {
      s <- if (L > 0) survfit(Surv(tstart, tstop, death) ~ sct, data = cp, conf.type = ct,
                              start.time = L)
           else survfit(Surv(tstart, tstop, death) ~ sct, data = cp, conf.type = ct)
      for (st in 0:1) {
        ss <- s[st + 1]
        kk <- paste0(k, "sm/", ct, "/", L > 0, "/", st, "/")
        emit(paste0(kk, "time"), ss$time); emit(paste0(kk, "n_risk"), ss$n.risk)
        emit(paste0(kk, "n_event"), ss$n.event); emit(paste0(kk, "n_censor"), ss$n.censor)
        emit(paste0(kk, "surv"), ss$surv); emit(paste0(kk, "std_err_log"), ss$std.err)
        emit(paste0(kk, "lower"), ss$lower); emit(paste0(kk, "upper"), ss$upper)
      }
    }
  }
  # landmark: default L = median exposure day among those exposed during follow-up
  seen <- !is.na(d$txtime) & d$txtime <= d$time
  L <- median(d$txtime[seen])
  emit(paste0(k, "lm/L"), L)
  lm <- d[d$time > L, ]
  lm$t <- lm$time - L
  lm$grp <- as.integer(!is.na(lm$txtime) & lm$txtime <= L)
  emit(paste0(k, "lm/n"), c(nrow(lm), sum(d$time <= L & d$status == 1),
                            sum(d$time <= L & d$status == 0), sum(lm$grp)))
  sd <- survdiff(Surv(t, status) ~ grp, data = lm)
  emit(paste0(k, "lm/chisq"), sd$chisq)
  cf <- coxph(Surv(t, status) ~ grp, data = lm)
  emit(paste0(k, "lm/coef"), coef(cf)); emit(paste0(k, "lm/se"), sqrt(diag(vcov(cf))))
  for (st in 0:1) {
    s <- survfit(Surv(t, status) ~ 1, data = lm[lm$grp == st, ], conf.type = "log-log")
    kk <- paste0(k, "lm/km/", st, "/")
    emit(paste0(kk, "time"), s$time); emit(paste0(kk, "surv"), s$surv)
    emit(paste0(kk, "lower"), s$lower); emit(paste0(kk, "upper"), s$upper)
  }
  # delayed entry at L gives the same Cox coefficient (STATISTICS.md)
  lm$L <- L
  cf2 <- coxph(Surv(L, time, status) ~ grp, data = lm)
  emit(paste0(k, "lm/coef_delayed"), coef(cf2))
}

fg <- read.csv(file.path(dir, "fg.csv"))
for (ds in unique(fg$dataset)) {
  d <- fg[fg$dataset == ds, ]
  k <- paste0("fg/", ds, "/")
  cov <- as.matrix(d[, c("z1", "z2", "z3")])
  f <- crr(d$time, d$cause, cov, failcode = 1, cencode = 0)
  emit(paste0(k, "coef"), f$coef); emit(paste0(k, "var"), f$var)
  emit(paste0(k, "loglik"), f$loglik); emit(paste0(k, "loglik_null"), f$loglik.null)
  emit(paste0(k, "converged"), f$converged)
  emit(paste0(k, "uftime"), f$uftime); emit(paste0(k, "bfitj"), f$bfitj)
  emit(paste0(k, "inf"), f$inf)
  p <- predict(f, rbind(c(0, 0, 0), c(1, 1, -0.5)))
  emit(paste0(k, "pred1"), p[, 2]); emit(paste0(k, "pred2"), p[, 3])
  f2 <- crr(d$time, d$cause, cov[, 1, drop = FALSE], failcode = 2, cencode = 0)
  emit(paste0(k, "c2/coef"), f2$coef); emit(paste0(k, "c2/var"), f2$var)
}
close(out)
