# Reference values for tests/test_r_crosscheck.py: the statistics that make_reference.R does not cover.
# R 4.2.2, psych 2.2.9, GPArotation 2022.10-2, MASS 7.3-58.2, effectsize 0.8.3 (Debian bookworm
# r-cran-* packages). Run from this folder:  Rscript make_extra_reference.R
# Reads holzinger_swineford_1939.csv and holzinger_swineford_ordinal.csv (written by make_reference.R) and
# writes extra_reference.json. Small profile-like tables are written inline below and stored in the JSON,
# so the Python tests rebuild exactly the same data. R is not needed to run the tests.
suppressMessages({library(psych); library(GPArotation); library(MASS); library(effectsize); library(jsonlite)})
hs <- read.csv("holzinger_swineford_1939.csv")
x <- hs[, paste0("x", 1:9)]
ordinal <- read.csv("holzinger_swineford_ordinal.csv")
stopifnot(all(ordinal$id == hs$id))
xo <- ordinal[, paste0("x", 1:9)]
rows <- function(m) unname(split(unname(m), row(m)))  # a matrix as a list of rows (JSON arrays)

out <- list()
out$dataset <- "holzinger_swineford_1939.csv (lavaan::HolzingerSwineford1939, n=301) and holzinger_swineford_ordinal.csv"
out$software <- paste("R", paste(R.version$major, R.version$minor, sep = "."), "psych", packageVersion("psych"),
                      "GPArotation", packageDescription("GPArotation")$Version, "MASS", packageDescription("MASS")$Version,
                      "effectsize", packageVersion("effectsize"))

# 1. psych::fa fit indices (psych fa.stats) -----------------------------------------------------------
fit_indices <- function(f, call) list(
  call = call, STATISTIC = unname(f$STATISTIC), dof = f$dof, PVAL = unname(f$PVAL), TLI = f$TLI,
  RMSEA = unname(f$RMSEA[c("RMSEA", "lower", "upper")]), RMSEA_confidence = unname(f$RMSEA["confidence"]),
  BIC = unname(f$BIC), rms = f$rms, crms = f$crms, objective = f$objective, chi = f$chi, n_obs = f$n.obs,
  null_chisq = f$null.chisq, null_dof = f$null.dof)
f_minres <- fa(x, nfactors = 3, rotate = "oblimin", fm = "minres")
out$fit_indices <- list(
  fa_minres_oblimin = fit_indices(f_minres, "psych::fa(x, nfactors=3, rotate='oblimin', fm='minres')"),
  fa_ml_varimax = fit_indices(fa(x, nfactors = 3, rotate = "varimax", fm = "ml"),
                              "psych::fa(x, nfactors=3, rotate='varimax', fm='ml')"),
  fa_pa_promax = fit_indices(fa(x, nfactors = 3, rotate = "promax", fm = "pa"),
                             "psych::fa(x, nfactors=3, rotate='promax', fm='pa')"),
  fa_poly_minres_oblimin = fit_indices(fa(xo, nfactors = 3, rotate = "oblimin", fm = "minres", cor = "poly"),
                                       "psych::fa(xo, nfactors=3, rotate='oblimin', fm='minres', cor='poly')"))

# 2. psych::factor.scores on the minres/oblimin fit ------------------------------------------------------
out$factor_scores <- list(colnames = colnames(f_minres$loadings), rownames = rownames(f_minres$loadings))
for (m in c("regression", "Bartlett", "tenBerge")) {
  fs <- factor.scores(x, f_minres, method = m)
  out$factor_scores[[m]] <- list(call = sprintf("psych::factor.scores(x, f, method='%s')$scores[1:10, ] and $weights", m),
                                 scores_first_10 = rows(fs$scores[1:10, ]), weights = rows(fs$weights))
}

# 3. Velicer's MAP as psych::VSS reports it ---------------------------------------------------------------
out$vss_map <- list(call = "psych::VSS(x, n=8, plot=FALSE)$map", map = VSS(x, n = 8, plot = FALSE)$map)

# 4. parallel analysis: suggested numbers only (the simulated part depends on R's random numbers) ---------
set.seed(20261204)
pa <- fa.parallel(x, fa = "both", n.iter = 20, plot = FALSE)
out$parallel <- list(call = "set.seed(20261204); psych::fa.parallel(x, fa='both', n.iter=20, plot=FALSE)",
                     nfact = pa$nfact, ncomp = pa$ncomp, pc_values_observed = pa$pc.values)

# 5. MASS::polr proportional odds model ------------------------------------------------------------------
d <- data.frame(y = factor(ordinal$x1, ordered = TRUE), sex = factor(hs$sex), x4 = hs$x4)
pm <- polr(y ~ sex + x4, data = d, method = "logistic", Hess = TRUE)
se <- sqrt(diag(vcov(pm)))
wald <- confint.default(pm)
out$polr <- list(call = "MASS::polr(factor(xo$x1, ordered=TRUE) ~ factor(sex) + x4, method='logistic', Hess=TRUE)",
                 note = "outcome: ordinal x1 (1..5); sex: factor with levels 1, 2; x4: the continuous HS score",
                 coef_names = names(coef(pm)), coef = unname(coef(pm)), coef_se = unname(se[names(coef(pm))]),
                 zeta_names = names(pm$zeta), zeta = unname(pm$zeta), zeta_se = unname(se[names(pm$zeta)]),
                 odds_ratio = unname(exp(coef(pm))), odds_ratio_wald_ci = rows(exp(wald[names(coef(pm)), , drop = FALSE])),
                 loglik = as.numeric(logLik(pm)), n = nrow(d))

# 6. Kruskal-Wallis, rank epsilon-squared and pairwise Wilcoxon tests on a three-level grouping ------------
g3 <- ifelse(hs$school == "Grant-White", "GW", ifelse(hs$sex == 1, "P1", "P2"))
kw <- kruskal.test(hs$x1, factor(g3))
eps <- rank_epsilon_squared(hs$x1 ~ factor(g3), ci = NULL)
lv <- c("GW", "P1", "P2")
pairs <- combn(lv, 2)
pw <- lapply(seq_len(ncol(pairs)), function(i) {
  a <- pairs[1, i]; b <- pairs[2, i]
  w <- suppressWarnings(wilcox.test(hs$x1[g3 == a], hs$x1[g3 == b], exact = FALSE, correct = TRUE))
  rb <- rank_biserial(hs$x1[g3 == a], hs$x1[g3 == b])
  list(group_1 = a, group_2 = b, W = unname(w$statistic), p = w$p.value, r_rank_biserial = rb$r_rank_biserial,
       rb_ci = c(rb$CI_low, rb$CI_high))
})
pp <- suppressWarnings(pairwise.wilcox.test(hs$x1, g3, p.adjust.method = "holm"))$p.value
out$kruskal <- list(grouping = "g3 = 'GW' for school Grant-White, else 'P1' / 'P2' for Pasteur sex 1 / 2",
                    call = "kruskal.test(x1, factor(g3)); effectsize::rank_epsilon_squared(x1 ~ factor(g3), ci=NULL)",
                    levels = lv, n = as.list(table(g3)[lv]), H = unname(kw$statistic), df = unname(kw$parameter),
                    p = kw$p.value, rank_epsilon_squared = eps$rank_epsilon_squared,
                    pairwise = pw, pairwise_holm = c(pp["P1", "GW"], pp["P2", "GW"], pp["P2", "P1"]),
                    pairwise_holm_call = "pairwise.wilcox.test(x1, g3, p.adjust.method='holm') (pairs GW-P1, GW-P2, P1-P2)")

# 7. effect-size confidence intervals of the sex comparison ----------------------------------------------
g <- hs$sex
out$sex_effect_ci <- lapply(c("x1", "x4", "x7"), function(v) {
  rb <- rank_biserial(x[g == 1, v], x[g == 2, v], ci = 0.95)
  hg <- hedges_g(x[g == 1, v], x[g == 2, v], pooled_sd = FALSE, ci = 0.95)
  list(var = v, r_rank_biserial = rb$r_rank_biserial, rb_ci = c(rb$CI_low, rb$CI_high),
       hedges_g = hg$Hedges_g, g_ci = c(hg$CI_low, hg$CI_high))
})
names(out$sex_effect_ci) <- NULL

# 8. contingency tables ------------------------------------------------------------------------------------
age_band <- cut(hs$ageyr, breaks = c(-Inf, 12, 13, 14, Inf), labels = c("12 or less", "13", "14", "15 or more"))
contingency <- function(tab, what) {
  yes <- suppressWarnings(chisq.test(tab, correct = TRUE)); no <- suppressWarnings(chisq.test(tab, correct = FALSE))
  list(what = what, table = rows(unclass(tab)), rownames = rownames(tab), colnames = colnames(tab),
       chisq_correct = unname(yes$statistic), p_correct = yes$p.value,
       chisq = unname(no$statistic), df = unname(no$parameter), p = no$p.value,
       min_expected = min(no$expected), cramers_v = cramers_v(tab, adjust = FALSE, ci = NULL)$Cramers_v)
}
out$contingency <- list(
  sex_by_school = contingency(table(hs$sex, hs$school), "table(hs$sex, hs$school): 2 x 2"),
  age_band_by_school = contingency(table(age_band, hs$school),
                                   "table(cut(ageyr, c(-Inf, 12, 13, 14, Inf)), school): 4 x 2"))
# a small profile-like 2 x 2 table (written here): foreign vs Lithuanian clients, framework contract yes/no
contract <- matrix(c(7, 2, 1, 6), nrow = 2, byrow = TRUE,
                   dimnames = list(origin = c("foreign", "lithuanian"), contract = c("yes", "no")))
ft <- fisher.test(contract)
out$contingency$fisher_contract <- list(what = "inline 2 x 2: origin (foreign, lithuanian) x framework contract (yes, no)",
                                        table = rows(contract), rownames = rownames(contract),
                                        colnames = colnames(contract), fisher_p = ft$p.value,
                                        odds_ratio_conditional_mle = unname(ft$estimate),
                                        chisq = unname(suppressWarnings(chisq.test(contract, correct = FALSE))$statistic),
                                        cramers_v = cramers_v(contract, adjust = FALSE, ci = NULL)$Cramers_v)

# 9. paired Wilcoxon signed-rank (stand-in for importance vs performance) ---------------------------------
paired <- function(a, b) {
  w <- wilcox.test(a, b, paired = TRUE, exact = FALSE, correct = TRUE)
  rb <- rank_biserial(a, b, paired = TRUE, ci = 0.95)
  # effectsize 0.8.3 sizes the paired CI with nd = sum(a != 0) (the pairs whose FIRST value is non-zero),
  # not with the number of non-zero differences; its one-sample form on the differences uses the latter
  rd <- rank_biserial(a - b, ci = 0.95)
  list(n = length(a), n_nonzero = sum(a != b), n_first_nonzero = sum(a != 0), mean_x1 = mean(a), mean_x2 = mean(b),
       V = unname(w$statistic), p = w$p.value, r_rank_biserial = rb$r_rank_biserial, rb_ci = c(rb$CI_low, rb$CI_high),
       r_rank_biserial_differences = rd$r_rank_biserial, rb_ci_differences = c(rd$CI_low, rd$CI_high))
}
out$paired_x1_x2 <- list(call = "wilcox.test(x1, x2, paired=TRUE, exact=FALSE, correct=TRUE); effectsize::rank_biserial(x1, x2, paired=TRUE); effectsize::rank_biserial(x1 - x2)",
                         all = paired(x$x1, x$x2), sex_1 = paired(x$x1[g == 1], x$x2[g == 1]),
                         sex_2 = paired(x$x1[g == 2], x$x2[g == 2]),
                         ordinal = paired(xo$x1, xo$x2))  # 1..5 codes: many ties and zero differences

# 10. reliability: psych::alpha with its Feldt and Duhachek intervals, one-factor omega ---------------------
reliability <- function(cols) {
  a <- suppressWarnings(psych::alpha(x[, cols]))
  om <- suppressWarnings(suppressMessages(omega(x[, cols], nfactors = 1, plot = FALSE)))
  list(items = cols, raw_alpha = a$total$raw_alpha, std_alpha = a$total$std.alpha,
       feldt = c(a$feldt$lower.ci$raw_alpha, a$feldt$upper.ci$raw_alpha), ase = a$total$ase,
       duhachek = a$total$raw_alpha + c(-1, 1) * qnorm(0.975) * a$total$ase,
       alpha_if_deleted = unname(a$alpha.drop$raw_alpha), r_drop = unname(a$item.stats$r.drop),
       omega_total_one_factor = om$omega.tot)
}
out$reliability <- list(call = "psych::alpha(x[, items]); psych::omega(x[, items], nfactors=1, plot=FALSE)$omega.tot",
                        x1_x3 = reliability(c("x1", "x2", "x3")), x4_x6 = reliability(c("x4", "x5", "x6")),
                        x7_x9 = reliability(c("x7", "x8", "x9")))

write(toJSON(out, auto_unbox = TRUE, digits = NA, pretty = TRUE, null = "null"), "extra_reference.json")
