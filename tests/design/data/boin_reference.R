# Reference BOIN boundaries computed in base R (R's pbeta), independently of cartrial.
# R package BOIN is not packaged for Debian (apt-cache policy r-cran-boin: none), so this
# script re-derives the published definitions (Liu & Yuan, JRSS-C 2015, eq. 2-3 and the
# Beta(1,1) elimination rule; layout of BOIN::get.boundary: b.e = floor(lambda_e n),
# b.d = ceiling(lambda_d n) capped at the elimination count, elimination only for n >= 3).
#   Rscript tests/design/data/boin_reference.R > tests/design/data/boin_reference.csv
targets <- c(0.20, 0.25, 0.30, 0.33)
rows <- list()
for (phi in targets) {
  p1 <- 0.6 * phi; p2 <- 1.4 * phi
  le <- log((1 - p1) / (1 - phi)) / log(phi * (1 - p1) / (p1 * (1 - phi)))
  ld <- log((1 - phi) / (1 - p2)) / log(p2 * (1 - phi) / (phi * (1 - p2)))
  for (n in 1:30) {
    elim <- NA
    if (n >= 3) {
      hit <- which(1 - pbeta(phi, (0:n) + 1, n - (0:n) + 1) > 0.95)
      if (length(hit)) elim <- hit[1] - 1
    }
    bd <- ceiling(ld * n)
    if (!is.na(elim) && bd > elim) bd <- elim
    rows[[length(rows) + 1]] <- data.frame(target = phi, lambda_e = sprintf("%.10f", le),
      lambda_d = sprintf("%.10f", ld), n = n, escalate_if_dlt_le = floor(le * n),
      deescalate_if_dlt_ge = bd, eliminate_if_dlt_ge = elim)
  }
}
write.csv(do.call(rbind, rows), stdout(), row.names = FALSE, na = "")
