# Time one R psych kernel on a CSV of item answers; called by bench/rside.py, one case per Rscript run.
#   Rscript bench/psych_bench.R <kernel> <csv> <repeats> <out.json> [n_iter | n_factors]
# kernel: fa_parallel | polychoric | fa. Data loading (read.csv) is outside the timing; each repeat is
# timed with system.time(...)[["elapsed"]] and the answer of the last repeat is written with jsonlite.
# One core: options(mc.cores = 1) (psych's fa.parallel and polychoric would otherwise fork 2 workers);
# R's reference BLAS is single-threaded.
suppressPackageStartupMessages({
  library(psych)
  library(GPArotation)
  library(jsonlite)
})
options(mc.cores = 1, warn = -1)
args <- commandArgs(trailingOnly = TRUE)
kernel <- args[1]
x <- read.csv(args[2])
repeats <- as.integer(args[3])
out <- args[4]
extra <- if (length(args) >= 5) as.integer(args[5]) else NA
times <- numeric(repeats)
answer <- list()

if (kernel == "fa_parallel") {
  # same work as research.efa.parallel_analysis(kind = "fa", quantile = None): the Pearson matrix
  # (pairwise) and n.iter simulated normal data sets; no resampling (a correlation matrix is given)
  for (i in seq_len(repeats)) {
    times[i] <- system.time({
      r <- cor(x, use = "pairwise")
      invisible(capture.output(fp <- fa.parallel(r, n.obs = nrow(x), fa = "fa", n.iter = extra, plot = FALSE)))
    })[["elapsed"]]
  }
  answer <- list(n_suggested = fp$nfact, observed = as.numeric(fp$fa.values),
                 simulated_mean = as.numeric(fp$fa.sim))
} else if (kernel == "polychoric") {
  for (i in seq_len(repeats)) {
    times[i] <- system.time(invisible(capture.output(pc <- polychoric(x))))[["elapsed"]]
  }
  answer <- list(rho = unname(pc$rho))
} else if (kernel == "fa") {
  r <- cor(x, use = "pairwise")  # outside the timing, as research.efa.pearson is in bench/kernels.py
  for (i in seq_len(repeats)) {
    times[i] <- system.time(f <- fa(r, nfactors = extra, n.obs = nrow(x), fm = "minres",
                                    rotate = "oblimin"))[["elapsed"]]
  }
  answer <- list(loadings = unname(unclass(f$loadings)))
} else {
  stop(paste("unknown kernel", kernel))
}
info <- list(kernel = kernel, repeats = repeats, seconds = times, median_seconds = median(times),
             r_version = R.version.string, psych = as.character(packageVersion("psych")),
             gparotation = as.character(packageVersion("GPArotation")), answer = answer)
writeLines(toJSON(info, digits = NA, auto_unbox = TRUE, matrix = "rowmajor"), out)
