# Reference values for tests/io/test_r_haven.py, made once with R (never at test time):
#   Rscript tests/io/data/r_haven/make_r_reference.R tests/io/data/r_haven
# Reads adtte.xpt and adsl.xpt (written by cartrial from tests/io/data/site_export) with
# haven, records how R sees each variable, and fits Kaplan-Meier for every PARAMCD with
# survival::survfit (event = CNSR == 0), as a SAS/R programmer would.
suppressPackageStartupMessages({library(haven); library(survival)})
args <- commandArgs(trailingOnly = TRUE)
dir <- if (length(args)) args[1] else "."
adtte <- read_xpt(file.path(dir, "adtte.xpt"))
adsl <- read_xpt(file.path(dir, "adsl.xpt"))
cls <- function(d, ds) data.frame(dataset = ds, variable = names(d),
  class = vapply(d, function(x) class(x)[1], ""),
  format = vapply(d, function(x) { f <- attr(x, "format.sas"); if (is.null(f)) "" else f }, ""),
  n_missing = vapply(d, function(x) sum(is.na(x)), 0L))
write.csv(rbind(cls(adtte, "ADTTE"), cls(adsl, "ADSL")), file.path(dir, "r_variables.csv"),
          row.names = FALSE)
out <- NULL
for (p in unique(adtte$PARAMCD)) {
  d <- adtte[adtte$PARAMCD == p, ]
  fit <- survfit(Surv(AVAL, CNSR == 0) ~ 1, data = d, conf.type = "log-log")
  out <- rbind(out, data.frame(PARAMCD = p, time = fit$time, n_risk = fit$n.risk,
                               n_event = fit$n.event, surv = fit$surv,
                               lower = fit$lower, upper = fit$upper))
}
write.csv(out, file.path(dir, "r_km.csv"), row.names = FALSE)
# dates as R sees them: the first subject's infusion and last-alive dates
s <- adsl[adsl$SUBJID == "01-001", ]
write.csv(data.frame(TRTSDT = format(s$TRTSDT), LSTALVDT = format(s$LSTALVDT),
                     n_itt = sum(adsl$ITTFL == "Y"), n_saf = sum(adsl$SAFFL == "Y"),
                     deaths_itt = sum(adsl$ITTFL == "Y" & adsl$DTHFL %in% "Y")),
          file.path(dir, "r_adsl.csv"), row.names = FALSE)
