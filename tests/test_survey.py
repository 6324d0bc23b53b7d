"""research.survey against R (stats 4.2.2, effectsize 0.8.3, MASS polr) and published worked examples.

Every expected value names its source beside it. Where no published number exists the expected value
comes from an independent implementation written here (stated at the test) or from scipy.
"""

from __future__ import annotations

import itertools
import statistics

import matplotlib
import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose
from scipy import stats

from research import survey
from research.errors import AnalysisError

matplotlib.use("Agg")

HS_VARS = ["x1", "x4", "x7"]


# ----------------------------------------------------------------------------------------------------
# Two-group comparison: Holzinger-Swineford sex 1 vs 2 (tests/reference/make_reference.R)
# ----------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def hs_comparison(hs_data):
    return survey.compare_groups(hs_data, "sex", HS_VARS, levels=[1, 2])


def test_compare_groups_matches_r_reference(hs_comparison, hs_reference):
    ref = hs_reference["group_sex_1_vs_2"]  # R 4.2.2 wilcox.test/t.test, effectsize 0.8.3
    t = hs_comparison
    assert list(t["variable"]) == [r["var"] for r in ref]
    assert_allclose(t["U"], [r["wilcox_W"] for r in ref], rtol=1e-12)  # wilcox.test(...)$statistic
    assert_allclose(t["p"], [r["wilcox_p"] for r in ref], rtol=1e-6)  # exact=FALSE, correct=TRUE
    assert (t["u_method"] == "normal").all()
    assert_allclose(t["r_rb"], [r["rank_biserial"] for r in ref], rtol=1e-6)  # rank_biserial()
    assert_allclose(t[["r_rb_ci_low", "r_rb_ci_high"]].to_numpy(), [r["rb_ci"] for r in ref], rtol=1e-6)
    assert_allclose(t["t"], [r["welch_t"] for r in ref], rtol=1e-6)  # t.test(var.equal=FALSE)
    assert_allclose(t["df"], [r["welch_df"] for r in ref], rtol=1e-6)
    assert_allclose(t["p_t"], [r["welch_p"] for r in ref], rtol=1e-6)
    assert_allclose(t["g"], [r["hedges_g_unpooled"] for r in ref], rtol=1e-6)  # hedges_g(pooled_sd=FALSE)
    assert_allclose(t["p_holm"], hs_reference["p_holm"], rtol=1e-6)  # p.adjust(ps, "holm")
    assert_allclose(t["p_bh"], hs_reference["p_bh"], rtol=1e-6)  # p.adjust(ps, "BH")
    assert_allclose(t["p_adj"], hs_reference["p_holm"], rtol=1e-6)  # correction="holm" (default)
    assert t["note"].isna().all()


def test_correction_choice_fills_p_adj(hs_data, hs_reference):
    bh = survey.compare_groups(hs_data, "sex", HS_VARS, levels=[1, 2], correction="fdr_bh")
    assert_allclose(bh["p_adj"], hs_reference["p_bh"], rtol=1e-6)  # R p.adjust(ps, "BH")
    none = survey.compare_groups(hs_data, "sex", HS_VARS, levels=[1, 2], correction="none")
    assert_allclose(none["p_adj"], [r["wilcox_p"] for r in hs_reference["group_sex_1_vs_2"]], rtol=1e-6)
    with pytest.raises(AnalysisError, match="correction"):
        survey.compare_groups(hs_data, "sex", HS_VARS, levels=[1, 2], correction="sidak")


def test_any_two_level_group_column_works(hs_data, hs_reference):
    renamed = hs_data.rename(columns={"sex": "client_origin"})
    renamed["client_origin"] = renamed["client_origin"].map({1: "foreign", 2: "lithuanian"})
    t = survey.compare_groups(renamed, "client_origin", HS_VARS, levels=["foreign", "lithuanian"])
    ref = hs_reference["group_sex_1_vs_2"]  # R wilcox.test, same groups under other names
    assert list(t["group_1"]) == ["foreign"] * 3
    assert_allclose(t["U"], [r["wilcox_W"] for r in ref], rtol=1e-12)
    assert_allclose(t["p"], [r["wilcox_p"] for r in ref], rtol=1e-6)
    # default levels = sorted distinct values ("foreign" < "lithuanian")
    t2 = survey.compare_groups(renamed, "client_origin", HS_VARS)
    assert_allclose(t2["r_rb"], [r["rank_biserial"] for r in ref], rtol=1e-6)


def test_swapping_levels_mirrors_the_statistics(hs_data, hs_comparison):
    rev = survey.compare_groups(hs_data, "sex", HS_VARS, levels=["2", "1"])
    n1n2 = hs_comparison["n_1"] * hs_comparison["n_2"]
    assert_allclose(rev["U"], n1n2 - hs_comparison["U"], rtol=1e-12)  # U_y = n_x n_y - U_x
    assert_allclose(rev["p"], hs_comparison["p"], rtol=1e-12)
    assert_allclose(rev["r_rb"], -hs_comparison["r_rb"], rtol=1e-12)
    assert_allclose(rev["g"], -hs_comparison["g"], rtol=1e-12)


def test_small_group_and_constant_column_give_notes_not_crashes():
    data = pd.DataFrame({"grp": ["a"] * 6 + ["b"],
                         "ok": [1, 2, 3, 4, 5, 3, 2],
                         "constant": [3.0] * 7,
                         "within_constant": [1.0] * 6 + [5.0]})
    t = survey.compare_groups(data, "grp", ["ok", "constant"], levels=["a", "b"])
    assert t["note"].str.contains("group 'b' has 1 answer").all()
    assert t[["U", "p", "r_rb", "t", "g", "p_adj"]].isna().all().all()
    data2 = pd.DataFrame({"grp": ["a"] * 4 + ["b"] * 4, "constant": [3] * 8,
                          "split": [1, 1, 1, 1, 5, 5, 5, 5], "ok": [1, 2, 3, 4, 2, 3, 4, 5]})
    t2 = survey.compare_groups(data2, "grp", ["constant", "split", "ok"])
    assert "no variance: every answer is 3" in t2.loc[0, "note"]
    assert np.isnan(t2.loc[0, "p"]) and np.isnan(t2.loc[0, "p_holm"])
    # constant within each group but different between them: U defined, t and g are not
    assert t2.loc[1, "U"] == 0 and "Welch t and Hedges' g undefined" in t2.loc[1, "note"]
    assert np.isnan(t2.loc[1, "t"]) and np.isnan(t2.loc[1, "g"])
    assert pd.isna(t2.loc[2, "note"])
    # the NaN row stays out of the Holm family: two valid p-values, m = 2 (R p.adjust ignores NA)
    assert_allclose(t2["p_holm"].iloc[1:], survey.adjust_pvalues(t2["p"].iloc[1:], "holm"))


def test_bad_requests_raise_one_line_errors():
    data = pd.DataFrame({"grp": ["a", "b", "a", "b"], "x": [1, 2, 3, 4], "txt": ["1", "two", "3", "4"]})
    with pytest.raises(AnalysisError, match="column.*nope"):
        survey.compare_groups(data, "grp", ["nope"])
    with pytest.raises(AnalysisError, match="group.*missing_group|missing_group"):
        survey.compare_groups(data, "missing_group", ["x"])
    with pytest.raises(AnalysisError, match="non-numeric value 'two'"):
        survey.compare_groups(data, "grp", ["txt"])
    with pytest.raises(AnalysisError, match="at least two levels"):
        survey.compare_groups(data, "grp", ["x"], levels=["a"])


# ----------------------------------------------------------------------------------------------------
# Building blocks against published examples
# ----------------------------------------------------------------------------------------------------
def test_hedges_g_unpooled_matches_effectsize_mtcars():
    # mtcars (R datasets): mpg by am; effectsize 0.8.3 hedges_g(mpg ~ am, data = mtcars, pooled_sd = FALSE)
    # = -1.352384 [-2.166064, -0.512016] (recorded by tidystats tests/data/effectsize.json, 6 decimals)
    mpg = np.array([21.0, 21.0, 22.8, 21.4, 18.7, 18.1, 14.3, 24.4, 22.8, 19.2, 17.8, 16.4, 17.3, 15.2, 10.4,
                    10.4, 14.7, 32.4, 30.4, 33.9, 21.5, 15.5, 15.2, 13.3, 19.2, 27.3, 26.0, 30.4, 15.8, 19.7,
                    15.0, 21.4])
    am = np.array([1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1,
                   1, 1])
    g = survey.hedges_g_unpooled(mpg[am == 0], mpg[am == 1])
    assert_allclose([g.g, g.ci_low, g.ci_high], [-1.352384, -2.166064, -0.512016], atol=1e-6)


def test_mann_whitney_exact_matches_r_help_example():
    # ?wilcox.test (Hollander & Wolfe 1973, p. 69): wilcox.test(x, y, alternative = "g") gives W = 35,
    # p-value = 0.1272, so the two-sided exact p is 2 * 0.1272 (printed to 4 digits).
    x = [0.80, 0.83, 1.89, 1.04, 1.45, 1.38, 1.91, 1.64, 0.73, 1.46]
    y = [1.15, 0.88, 0.90, 0.74, 1.21]
    res = survey.mann_whitney(x, y)
    assert res.method == "exact" and res.U == 35
    assert_allclose(res.p, 2 * 0.1272, atol=1e-4)
    # independent check: enumerate all C(15, 10) placements of x's ranks (no ties), R's two-sided rule
    n_x, n = len(x), len(x) + len(y)
    u_null = np.array([sum(c) - n_x * (n_x + 1) / 2 for c in itertools.combinations(range(1, n + 1), n_x)])
    p_exact = min(1.0, 2 * min(np.mean(u_null <= res.U), np.mean(u_null >= res.U)))
    assert_allclose(res.p, p_exact, rtol=1e-12)


def test_mann_whitney_switches_like_r():
    rng = np.random.default_rng(1)
    untied_small = survey.mann_whitney(rng.normal(size=12), rng.normal(size=15))
    assert untied_small.method == "exact"
    tied_small = survey.mann_whitney([1, 2, 2, 3, 4], [2, 3, 4, 5, 5])
    assert tied_small.method == "normal"  # R: "cannot compute exact p-value with ties"
    large = survey.mann_whitney(rng.normal(size=50), rng.normal(size=10))
    assert large.method == "normal"  # R: exact only when both n < 50
    forced = survey.mann_whitney(rng.normal(size=12), rng.normal(size=15), exact=False)
    assert forced.method == "normal"


def test_mann_whitney_normal_matches_scipy_with_ties():
    rng = np.random.default_rng(7)
    x, y = rng.integers(1, 6, size=83), rng.integers(1, 6, size=61)
    res = survey.mann_whitney(x, y)
    ref = stats.mannwhitneyu(x, y, method="asymptotic", use_continuity=True, alternative="two-sided")
    assert_allclose([res.U, res.p], [ref.statistic, ref.pvalue], rtol=1e-10)


def test_rank_biserial_matches_effectsize_examples():
    # effectsize tests/testthat/test-rankES.R (effectsize output recorded there):
    # rank_biserial(x, y, paired = TRUE) on the ?wilcox.test depression data = 0.777..., CI
    # [0.2953631, 0.9441559]; rank_biserial(A, B) = 0.6071429.
    x = [1.83, 0.50, 1.62, 2.48, 1.68, 1.88, 1.55, 3.06, 1.30]
    y = [0.878, 0.647, 0.598, 2.05, 1.06, 1.29, 1.06, 3.14, 1.29]
    r, lo, hi = survey.rank_biserial(x, y, paired=True)
    assert_allclose([r, lo, hi], [7 / 9, 0.2953631, 0.9441559], atol=1e-7)
    assert_allclose(survey.rank_biserial(np.subtract(x, y))[0], 7 / 9, rtol=1e-12)
    assert_allclose(survey.rank_biserial([48, 48, 77, 86, 85, 85, 16], [14, 34, 34, 77])[0], 0.6071429,
                    atol=1e-7)


def _r_signed_rank_p(d):
    """R wilcox.test(d, exact=FALSE, correct=TRUE), written out from R's source (independent of the
    package): zeros dropped, tie-corrected variance, continuity correction towards the mean."""
    d = np.asarray(d, float)
    d = d[d != 0]
    n = d.size
    r = stats.rankdata(np.abs(d))
    v = r[d > 0].sum()
    _, nties = np.unique(r, return_counts=True)
    sigma = np.sqrt(n * (n + 1) * (2 * n + 1) / 24 - np.sum(nties**3 - nties) / 48)
    z = v - n * (n + 1) / 4
    z = (z - np.sign(z) * 0.5) / sigma
    return v, 2 * min(stats.norm.cdf(z), stats.norm.sf(z))


def test_signed_rank_matches_r_formula_and_scipy():
    rng = np.random.default_rng(3)
    d = rng.integers(-2, 4, size=140).astype(float)  # ties and zero differences
    res = survey.signed_rank(d)
    v, p = _r_signed_rank_p(d)
    assert_allclose([res.V, res.p], [v, p], rtol=1e-12)
    ref = stats.wilcoxon(d, zero_method="wilcox", correction=True, method="approx")
    assert_allclose(res.p, ref.pvalue, rtol=1e-10)
    assert res.n == 140 and res.n_nonzero == int(np.sum(d != 0))
    # depression data of ?wilcox.test: V = 40 (R prints "V = 40")
    x = [1.83, 0.50, 1.62, 2.48, 1.68, 1.88, 1.55, 3.06, 1.30]
    y = [0.878, 0.647, 0.598, 2.05, 1.06, 1.29, 1.06, 3.14, 1.29]
    assert survey.signed_rank(np.subtract(x, y)).V == 40


def test_kruskal_wallis_matches_r_help_example_and_effectsize():
    # ?kruskal.test (Hollander & Wolfe 1973, p. 116): Kruskal-Wallis chi-squared = 0.77143, df = 2,
    # p-value = 0.68; effectsize 0.8.3 rank_epsilon_squared on the same data = 0.05934066
    # (effectsize tests/testthat/test-rankES.R).
    x = [2.9, 3.0, 2.5, 2.6, 3.2]
    y = [3.8, 2.7, 4.0, 2.4]
    z = [2.8, 3.4, 3.7, 2.2, 2.0]
    kw = survey.kruskal_wallis([x, y, z])
    assert kw.df == 2
    assert_allclose(kw.H, 0.77143, atol=5e-6)
    assert_allclose(kw.p, 0.68, atol=5e-3)
    assert_allclose(kw.epsilon_squared, 0.05934066, atol=1e-8)


def test_kruskal_wallis_with_ties_matches_scipy_and_r_formula():
    rng = np.random.default_rng(11)
    groups = [rng.integers(1, 6, size=n) for n in (40, 55, 31)]
    kw = survey.kruskal_wallis(groups)
    ref = stats.kruskal(*groups)
    assert_allclose([kw.H, kw.p], [ref.statistic, ref.pvalue], rtol=1e-10)
    # R kruskal.test, written out independently: STATISTIC <- sum(tapply(r, g, sum)^2 / tapply(r, g,
    # length)); STATISTIC <- ((12 * STATISTIC / (n * (n + 1)) - 3 * (n + 1)) / (1 - sum(TIES^3 - TIES) /
    # (n^3 - n)))
    allv = np.concatenate(groups)
    r = stats.rankdata(allv)
    n = allv.size
    idx = np.repeat(np.arange(3), [g.size for g in groups])
    s = sum(r[idx == k].sum() ** 2 / (idx == k).sum() for k in range(3))
    ties = np.unique(allv, return_counts=True)[1]
    h = (12 * s / (n * (n + 1)) - 3 * (n + 1)) / (1 - np.sum(ties**3 - ties) / (n**3 - n))
    assert_allclose(kw.H, h, rtol=1e-12)
    assert_allclose(kw.epsilon_squared, h / ((n**2 - 1) / (n + 1)), rtol=1e-12)


def _holm(p):
    """R p.adjust(p, "holm") written out: pmin(1, cummax((n - i + 1) * p[o]))[order(o)]."""
    p = np.asarray(p, float)
    o = np.argsort(p, kind="stable")
    adj = np.minimum(1, np.maximum.accumulate((len(p) - np.arange(len(p))) * p[o]))
    out = np.empty_like(adj)
    out[o] = adj
    return out


def test_many_groups_kruskal_wallis_and_pairwise_holm(hs_data):
    data = hs_data.assign(agegroup=pd.cut(hs_data["ageyr"], [0, 12, 13, 99], labels=["le12", "13", "ge14"]))
    data["agegroup"] = data["agegroup"].astype(str)
    res = survey.compare_many_groups(data, "agegroup", HS_VARS, levels=["le12", "13", "ge14"])
    assert res.test == "kruskal_wallis"
    for row in res.table.itertuples(index=False):
        samples = [data.loc[data["agegroup"] == lv, row.variable].to_numpy() for lv in ("le12", "13", "ge14")]
        ref = stats.kruskal(*samples)  # scipy; equals R kruskal.test (formula checked above)
        assert_allclose([row.H, row.p], [ref.statistic, ref.pvalue], rtol=1e-10)
        assert row.n == sum(len(s) for s in samples)
    assert_allclose(res.table["p_holm"], _holm(res.table["p"]), rtol=1e-12)
    pw = res.pairwise
    assert len(pw) == 3 * 3
    for var, block in pw.groupby("variable"):
        assert_allclose(block["p_holm"], _holm(block["p"]), rtol=1e-12)  # R pairwise.wilcox.test(holm)
        first = block.iloc[0]
        x = data.loc[data["agegroup"] == first["group_1"], var]
        y = data.loc[data["agegroup"] == first["group_2"], var]
        assert_allclose(first["p"], survey.mann_whitney(x, y).p, rtol=1e-12)
    # compare_groups switches to the Kruskal-Wallis table with more than two levels
    switched = survey.compare_groups(data, "agegroup", HS_VARS, levels=["le12", "13", "ge14"])
    assert (switched["test"] == "kruskal_wallis").all()


def test_adjust_pvalues_keeps_nan_out_of_the_family(hs_reference):
    p = [r["wilcox_p"] for r in hs_reference["group_sex_1_vs_2"]]
    out = survey.adjust_pvalues([p[0], np.nan, p[1], p[2]], "holm")
    assert np.isnan(out[1])
    assert_allclose(out[[0, 2, 3]], hs_reference["p_holm"], rtol=1e-6)  # R p.adjust(ps, "holm")


# ----------------------------------------------------------------------------------------------------
# Contingency tables
# ----------------------------------------------------------------------------------------------------
def test_chisq_larger_table_matches_r_example():
    # effectsize ?chisq_to_phi: chisq.test(contingency_table) -> X-squared = 41.234, df = 4,
    # p-value = 2.405e-08 (R output quoted in the help page, printed digits)
    table = np.array([[762, 327, 468], [484, 239, 477], [484, 239, 477]])
    res = survey.contingency_test(table)
    assert res.test == "chi2" and res.df == 4
    assert_allclose(res.chi2, 41.234, atol=5e-4)
    assert_allclose(res.p, 2.405e-08, rtol=5e-4)
    assert_allclose(res.cramers_v, stats.contingency.association(table, method="cramer"), rtol=1e-12)
    # effectsize chisq_to_cramers_v: V = sqrt(X2 / (n (min(r, c) - 1)))
    assert_allclose(res.cramers_v, np.sqrt(41.234 / (table.sum() * 2)), atol=1e-5)


def test_chisq_two_by_two_uses_yates_like_r():
    table = np.array([[25, 15], [12, 30]])
    res = survey.contingency_test(table)
    ref = stats.chi2_contingency(table, correction=True)  # R chisq.test(x) on 2 x 2: Yates
    assert res.test == "chi2_yates"
    assert_allclose([res.chi2, res.p], [ref.statistic, ref.pvalue], rtol=1e-12)
    # V from the uncorrected statistic (effectsize cramers_v(adjust = FALSE))
    assert_allclose(res.cramers_v, stats.contingency.association(table, method="cramer", correction=False),
                    rtol=1e-12)


def test_fisher_for_sparse_two_by_two_matches_r_tea_tasting():
    # R ?fisher.test, TeaTasting <- matrix(c(3, 1, 1, 3), nrow = 2): p-value = 0.4857
    res = survey.contingency_test(np.array([[3, 1], [1, 3]]))
    assert res.test == "fisher"
    assert_allclose(res.p, 0.4857, atol=5e-5)
    assert_allclose(res.p, 34 / 70, rtol=1e-12)  # hypergeometric: (1 + 16 + 16 + 1) / C(8, 4)


def test_monte_carlo_p_for_sparse_larger_tables():
    table = np.array([[3, 1, 0], [0, 2, 2]])
    res = survey.contingency_test(table, n_sim=20000, seed=5)
    again = survey.contingency_test(table, n_sim=20000, seed=5)
    assert res.test == "chi2_monte_carlo" and res.p == again.p
    # exact conditional p by enumerating every assignment of the column labels (fixed margins), the
    # quantity R's simulate.p.value estimates
    rows = np.repeat([0, 1], [4, 4])
    cols = np.repeat([0, 1, 2], [3, 3, 2])
    stats_all = []
    for perm in itertools.permutations(range(8)):
        t = np.zeros((2, 3))
        np.add.at(t, (rows, cols[list(perm)]), 1)
        e = np.outer(t.sum(1), t.sum(0)) / 8
        stats_all.append(((t - e) ** 2 / e).sum())
    stats_all = np.array(stats_all)
    p_exact = np.mean(stats_all >= res.chi2 * (1 - 64 * np.finfo(float).eps))
    assert abs(res.p - p_exact) < 4 * np.sqrt(p_exact * (1 - p_exact) / 20000) + 1 / 20001


def test_profile_by_group_handles_categorical_numeric_and_multiselect():
    rng = np.random.default_rng(2)
    n = 200
    data = pd.DataFrame({
        "grp": np.where(rng.random(n) < 0.5, "a", "b"),
        "size": rng.choice(["small", "medium", "large"], size=n),
        "years": rng.integers(1, 15, size=n),
        "services": rng.choice(["audit", "audit; support", "support; training", "training"], size=n),
    })
    out = survey.profile_by_group(data, "grp", ["size", "years", "services"], levels=["a", "b"])
    by = out.set_index("variable")
    assert by.loc["size", "test"] == "chi2"
    ct = pd.crosstab(data["size"], data["grp"]).to_numpy()
    ref = stats.chi2_contingency(ct, correction=False)
    assert_allclose([by.loc["size", "statistic"], by.loc["size", "p"]], [ref.statistic, ref.pvalue], rtol=1e-12)
    assert by.loc["years", "test"] == "mann_whitney"
    mw = stats.mannwhitneyu(data.loc[data.grp == "a", "years"], data.loc[data.grp == "b", "years"],
                            method="asymptotic")
    assert_allclose(by.loc["years", "p"], mw.pvalue, rtol=1e-10)
    assert {"services: audit", "services: support", "services: training"} <= set(by.index)
    used = data["services"].str.contains("support").map({True: "yes", False: "no"})
    ref2 = stats.chi2_contingency(pd.crosstab(used, data["grp"]).to_numpy(), correction=True)
    assert_allclose(by.loc["services: support", "statistic"], ref2.statistic, rtol=1e-12)
    counts = survey.profile_table(data, "grp", "services", levels=["a", "b"])
    sub = counts[(counts.category == "support") & (counts.group == "a")]
    assert int(sub["count"].iloc[0]) == int((used[data.grp == "a"] == "yes").sum())


# ----------------------------------------------------------------------------------------------------
# Ordinal regression: MASS::polr, housing data (Venables & Ripley 2002, MASS ?polr example)
# ----------------------------------------------------------------------------------------------------
# Freq of MASS::housing in its row order (Sat fastest, then Infl, Type, Cont), 72 cells, 1681 households
HOUSING_FREQ = [21, 21, 28, 34, 22, 36, 10, 11, 36, 61, 23, 17, 43, 35, 40, 26, 18, 54, 13, 9, 10, 8, 8, 12, 6,
                7, 9, 18, 6, 7, 15, 13, 13, 7, 5, 11, 14, 19, 37, 17, 23, 40, 3, 5, 23, 78, 46, 43, 48, 45, 86,
                15, 25, 62, 20, 23, 20, 10, 22, 24, 7, 10, 21, 57, 23, 13, 31, 21, 13, 5, 6, 13]


@pytest.fixture(scope="module")
def housing():
    levels = {"Sat": ["Low", "Medium", "High"], "Infl": ["Low", "Medium", "High"],
              "Type": ["Tower", "Apartment", "Atrium", "Terrace"], "Cont": ["Low", "High"]}
    cells = [(s, i, t, c) for c in levels["Cont"] for t in levels["Type"] for i in levels["Infl"]
             for s in levels["Sat"]]
    grid = pd.DataFrame(cells, columns=["Sat", "Infl", "Type", "Cont"]).assign(Freq=HOUSING_FREQ)
    long = grid.loc[grid.index.repeat(grid["Freq"])].reset_index(drop=True)  # weights = Freq
    long["Sat"] = long["Sat"].map({"Low": 1, "Medium": 2, "High": 3})
    for col in ("Infl", "Type", "Cont"):
        long[col] = pd.Categorical(long[col], categories=levels[col])
    return long


def test_ordinal_regression_matches_mass_polr(housing):
    res = survey.ordinal_regression(housing, "Sat", ["Infl", "Type", "Cont"])
    # polr(Sat ~ Infl + Type + Cont, weights = Freq, data = housing, Hess = TRUE): coef() and
    # sqrt(diag(vcov())) at full precision as recorded in easystats/insight's polr tests and arm's coefplot
    # example; printed: InflMedium 0.5663937 ... Residual Deviance: 3479.149
    terms = ["InflMedium", "InflHigh", "TypeApartment", "TypeAtrium", "TypeTerrace", "ContHigh", "1|2", "2|3"]
    est = [0.566393738890106, 1.28881906381232, -0.572350146429611, -0.366186566153346, -1.09101490767244,
           0.360284149947385, -0.4961353438375, 0.690708290379271]
    se = [0.104652784933519, 0.127156148851928, 0.119238013698556, 0.155173338051194, 0.151486024299045,
          0.0955357985611663, 0.124847246308485, 0.125471940342996]
    assert list(res.table["term"]) == terms
    assert_allclose(res.table["estimate"], est, atol=1e-5)
    assert_allclose(res.table["se"], se, rtol=1e-4)
    assert_allclose(-2 * res.log_likelihood, 3479.149, atol=1e-3)
    assert res.n == 1681 and res.n_dropped == 0 and res.converged
    coef = res.table[res.table["kind"] == "coefficient"]
    # Wald intervals, R confint.default(): exp(b +- qnorm(0.975) * se)
    z = stats.norm.ppf(0.975)
    assert_allclose(coef["odds_ratio"], np.exp(est[:6]), rtol=1e-4)
    assert_allclose(coef["ci_low"], np.exp(np.array(est[:6]) - z * np.array(se[:6])), rtol=1e-4)
    assert_allclose(coef["ci_high"], np.exp(np.array(est[:6]) + z * np.array(se[:6])), rtol=1e-4)


def test_ordinal_regression_drops_incomplete_rows_and_checks_input(housing):
    data = housing.copy()
    data["Sat"] = data["Sat"].astype("float64")
    data.loc[:9, "Sat"] = np.nan
    res = survey.ordinal_regression(data, "Sat", ["Infl", "Cont"])
    assert res.n == len(data) - 10 and res.n_dropped == 10
    with pytest.raises(AnalysisError, match="at least 3 needed"):
        survey.ordinal_regression(data.assign(y=(data["Sat"] > 2).astype(float)), "y", ["Infl"])
    with pytest.raises(AnalysisError, match="not in the data"):
        survey.ordinal_regression(data, "Sat", ["nope"])


# ----------------------------------------------------------------------------------------------------
# Descriptives and gaps on a small synthetic survey
# ----------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def toy():
    rng = np.random.default_rng(42)
    n = 150
    codebook = pd.DataFrame({
        "variable": ["rid", "grp", "IMP_A", "IMP_B", "PERF_A", "PERF_B", "SAT", "NPS"],
        "type": ["id", "group", "importance", "importance", "performance", "performance", "outcome",
                 "outcome"],
        "stage": [None, None, "S1", "S2", "S1", "S2", None, None],
        "factor": [None, None, "A", "B", "A", "B", None, None],
        "scale_min": pd.array([pd.NA, pd.NA, 1, 1, 1, 1, 1, 0], "Int64"),
        "scale_max": pd.array([pd.NA, pd.NA, 5, 5, 5, 5, 5, 10], "Int64"),
    })
    data = pd.DataFrame({
        "rid": [f"R{i:03d}" for i in range(n)],
        "grp": np.where(rng.random(n) < 0.4, "x", "y"),
        "IMP_A": rng.integers(3, 6, n).astype(float), "IMP_B": rng.integers(1, 6, n).astype(float),
        "PERF_A": rng.integers(1, 6, n).astype(float), "PERF_B": rng.integers(2, 6, n).astype(float),
        "SAT": rng.integers(1, 6, n).astype(float), "NPS": rng.integers(0, 11, n).astype(float),
    })
    for col in ("IMP_A", "PERF_A", "PERF_B", "NPS"):
        data.loc[rng.random(n) < 0.1, col] = np.nan
    missing = pd.DataFrame({"respondent_id": data.loc[data["PERF_A"].isna(), "rid"], "variable": "PERF_A"})
    missing["kind"] = np.where(np.arange(len(missing)) % 3 == 0, "dont_know", "skipped")
    return data, codebook, missing


def test_describe_items_matches_python_statistics(toy):
    data, codebook, missing = toy
    d = survey.describe_items(data, codebook, by="grp", missing=missing, levels=["x", "y"])
    assert list(d["group"].iloc[:3]) == ["x", "y", "all"]
    assert len(d) == 6 * 3
    for row in d.itertuples(index=False):
        mask = np.ones(len(data), bool) if row.group == "all" else (data["grp"] == row.group).to_numpy()
        vals = data.loc[mask, row.variable].dropna().tolist()
        q1, _, q3 = statistics.quantiles(vals, n=4, method="inclusive")  # = R quantile(type = 7)
        top = 9 if row.variable == "NPS" else 4
        assert row.n == len(vals) and row.missing == int(mask.sum() - len(vals))
        assert_allclose([row.mean, row.sd, row.median, row.q1, row.q3, row.iqr, row.top2_pct],
                        [statistics.fmean(vals), statistics.stdev(vals), statistics.median(vals), q1, q3,
                         q3 - q1, 100 * np.mean(np.array(vals) >= top)], rtol=1e-12)
    perf_all = d[(d.variable == "PERF_A") & (d.group == "all")].iloc[0]
    assert perf_all.dont_know + perf_all.skipped == perf_all.missing
    assert perf_all.dont_know == int((missing["kind"] == "dont_know").sum())
    plain = survey.describe_items(data, codebook)
    assert set(plain["group"]) == {"all"} and plain["dont_know"].isna().all()


def test_ipa_gaps_match_r_paired_wilcoxon(toy):
    data, codebook, _ = toy
    gaps = survey.ipa_gaps(data, codebook, group="grp", levels=["x", "y"])
    assert list(gaps.columns[:9]) == ["stage", "factor", "group", "n", "importance", "performance", "gap",
                                      "gap_p", "gap_effect"]  # ipa_items contract (docs/architecture.md)
    assert len(gaps) == 2 * 3
    for row in gaps.itertuples(index=False):
        mask = np.ones(len(data), bool) if row.group == "all" else (data["grp"] == row.group).to_numpy()
        pair = data.loc[mask, [f"IMP_{row.factor}", f"PERF_{row.factor}"]].dropna()
        d = pair.iloc[:, 0] - pair.iloc[:, 1]
        v, p = _r_signed_rank_p(d)  # R wilcox.test(imp, perf, paired=TRUE, exact=FALSE, correct=TRUE)
        assert row.n == len(pair)
        assert_allclose([row.importance, row.performance, row.gap], [pair.iloc[:, 0].mean(),
                        pair.iloc[:, 1].mean(), d.mean()], rtol=1e-12)
        assert_allclose([row.V, row.gap_p], [v, p], rtol=1e-12)
        nz = d[d != 0]
        r = stats.rankdata(nz.abs())
        assert_allclose(row.gap_effect, (r[nz > 0].sum() - r[nz < 0].sum()) / r.sum(), rtol=1e-12)
    for _, block in gaps.groupby("group"):
        assert_allclose(block["gap_p_adj"], _holm(block["gap_p"]), rtol=1e-12)
    stages = survey.ipa_stage_gaps(data, codebook, group="grp", levels=["x", "y"])
    assert set(stages["stage"]) == {"S1", "S2"} and len(stages) == 6


def test_likert_percentages_and_comments(toy):
    data, codebook, _ = toy
    lp = survey.likert_percentages(data, codebook, ["PERF_A", "NPS"], group="grp", levels=["x", "y"])
    assert set(lp.loc[lp.variable == "NPS", "value"]) == set(range(11))
    sums = lp.groupby(["variable", "group"])["percent"].sum()
    assert_allclose(sums, 100.0, rtol=1e-12)
    c = pd.DataFrame({"g": ["a", "a", "b", "b"], "id": ["1", "2", "3", "4"],
                      "comment": ["<script>x</script>", "", None, "  fine  "]})
    counts = survey.comment_counts(c, "comment", group="g", levels=["a", "b"])
    assert counts["comments"].tolist() == [1, 1, 2]
    table = survey.comment_table(c, "comment", group="g", id_column="id")
    assert table["comment"].tolist() == ["<script>x</script>", "fine"]  # unchanged; rep.table escapes


def test_compare_factor_scores_uses_factor_columns(toy):
    data, _, _ = toy
    rng = np.random.default_rng(0)
    scores = pd.DataFrame({"respondent_id": data["rid"], "grp": data["grp"],
                           "F1": rng.normal(size=len(data)), "F2": rng.normal(size=len(data))})
    out = survey.compare_factor_scores(scores, "grp", levels=["x", "y"])
    assert out["variable"].tolist() == ["F1", "F2"]
    x, y = scores.loc[scores.grp == "x", "F1"], scores.loc[scores.grp == "y", "F1"]
    ref = stats.mannwhitneyu(x, y, method="asymptotic")  # n >= 50: R uses the normal approximation
    assert_allclose(out.loc[0, "p"], ref.pvalue, rtol=1e-10)
    with pytest.raises(AnalysisError, match="no factor columns"):
        survey.compare_factor_scores(scores[["respondent_id", "grp"]], "grp")


def test_figures_are_returned(toy, hs_comparison):
    from matplotlib.figure import Figure

    from research.plots import survey as plots

    data, codebook, _ = toy
    lp = survey.likert_percentages(data, codebook, ["PERF_A", "PERF_B"], group="grp", levels=["x", "y"])
    gaps = survey.ipa_gaps(data, codebook, group="grp", levels=["x", "y"])
    for fig in (plots.likert_bars(lp, item_labels={"PERF_A": "A $1"}, lang="lt"),
                plots.importance_performance(gaps, lang="en"),
                plots.effect_forest(hs_comparison, lang="lt")):
        assert isinstance(fig, Figure)
        matplotlib.pyplot.close(fig)


# ----------------------------------------------------------------------------------------------------
# Demo study: recovery of the planted group differences and the notebook (slow)
# ----------------------------------------------------------------------------------------------------
def _output_root(tmp_path, monkeypatch):
    """Send every derived file to a temporary root, in this process and in notebook kernels."""
    from research import paths

    out = (tmp_path / "output").resolve()
    monkeypatch.setenv("RESEARCH_OUTPUT_ROOT", str(out))
    monkeypatch.setattr(paths, "OUTPUT_ROOT", out)
    monkeypatch.setattr(paths, "DATA_PROCESSED", out / "data" / "processed")
    monkeypatch.setattr(paths, "REPORTS", out / "reports")
    return out


def _prepared_demo(tmp_path, monkeypatch):
    from conftest import DEMO_STUDY
    from research import paths
    from research.config import load_study

    if not (paths.DATA_RAW / "demo").is_dir():
        pytest.skip("demo raw data not generated yet (research synth)")
    from research.data import prepare_study

    _output_root(tmp_path, monkeypatch)
    cfg = load_study(DEMO_STUDY)
    prepare_study(cfg)
    return cfg


@pytest.mark.slow
def test_planted_group_differences_are_recovered(tmp_path, monkeypatch):
    import json

    cfg = _prepared_demo(tmp_path, monkeypatch)
    truth = json.loads(cfg.resolve(cfg.data.truth).read_text(encoding="utf-8"))["survey"]
    planted = {k: v for k, v in truth["group_effects"].items() if v != 0}  # foreign minus lithuanian, latent d
    assert planted, "the demo truth plants no group difference"
    analysis = survey.analyse_study(cfg)
    table = analysis.items.table.set_index("variable")
    assert analysis.spec.levels[0] == "foreign"  # r_rb > 0 means foreign higher, as d > 0
    alpha = cfg.analysis.alpha
    for item, d in planted.items():
        assert table.loc[item, "p_adj"] < alpha, f"planted difference on {item} (d = {d}) not detected"
        assert np.sign(table.loc[item, "r_rb"]) == np.sign(d), item
    null_items = [v for v in truth["group_effects"] if truth["group_effects"][v] == 0 and v in table.index]
    false_positives = [v for v in null_items if table.loc[v, "p_adj"] < alpha]
    # Holm controls the family-wise error rate at alpha per item type, so with no planted effect a false
    # positive is rare; allow at most one in ten null items.
    assert len(false_positives) <= len(null_items) // 10, false_positives


@pytest.mark.slow
def test_notebook_runs_on_demo_study(tmp_path, monkeypatch):
    import json

    from notebook_runner import execute_notebook
    from research.io import read_table

    cfg = _prepared_demo(tmp_path, monkeypatch)
    executed = execute_notebook("03_survey_comparison", tmp_path, study="studies/demo/study.yaml")
    assert executed.is_file()
    results = json.loads(cfg.paths.results_json("survey").read_text(encoding="utf-8"))
    assert results["notebook"] == "survey" and results["synthetic"] is True
    r = results["results"]
    for key in ("n_by_group", "significant_items", "largest_effects", "ordinal_odds_ratios", "largest_gaps",
                "significant_gaps", "significant_stages", "n_respondents", "test"):
        assert key in r, key
    assert r["test"] == "mann_whitney"
    assert sum(r["n_by_group"][lv] for lv in cfg.group.levels) == r["n_respondents"] == r["n_by_group"]["all"]
    assert set(r["ordinal_odds_ratios"]) >= {f"{cfg.group.column}lithuanian", "S1", "S2", "S3"}
    items = read_table(cfg.paths.processed_table("item_comparison"))
    assert set(items["variable"]) == set(survey.rating_items(cfg.codebook_table))
    assert list(items.columns) == survey.ITEM_COMPARISON_COLUMNS
    ipa = read_table(cfg.paths.processed_table("ipa_items"))
    assert list(ipa.columns[:9]) == ["stage", "factor", "group", "n", "importance", "performance", "gap", "gap_p",
                                     "gap_effect"]
    assert list(dict.fromkeys(ipa["group"])) == [*cfg.group.levels, "all"]
    assert read_table(cfg.paths.processed_table("ipa_stages"))["stage"].nunique() == len(cfg.stages)
    text = executed.read_text(encoding="utf-8")
    assert "&lt;b&gt;Labai&lt;/b&gt;" in text  # the demo's markup comment is shown escaped


@pytest.mark.slow
def test_notebook_with_many_groups_keeps_the_contract_tables(tmp_path, monkeypatch):
    import json

    from notebook_runner import execute_notebook
    from research.io import read_table

    cfg = _prepared_demo(tmp_path, monkeypatch)
    execute_notebook("03_survey_comparison", tmp_path, study="studies/demo/study.yaml",
                     group_column="company_size", language="lt", correction="fdr_bh")
    results = json.loads(cfg.paths.results_json("survey").read_text(encoding="utf-8"))
    r = results["results"]
    assert results["language"] == "lt"
    assert r["test"] == "kruskal_wallis" and r["group_column"] == "company_size" and r["correction"] == "fdr_bh"
    # the processed tables stay on the config's grouping for the model notebook
    ipa = read_table(cfg.paths.processed_table("ipa_items"))
    assert list(dict.fromkeys(ipa["group"])) == [*cfg.group.levels, "all"]
    assert (read_table(cfg.paths.processed_table("item_comparison"))["test"] == "mann_whitney").all()


@pytest.mark.slow
def test_notebook_without_group_skips_comparisons(tmp_path, monkeypatch):
    import json

    import yaml

    from conftest import DEMO_STUDY
    from notebook_runner import execute_notebook
    from research import paths
    from research.config import load_study
    from research.io import read_table

    if not (paths.DATA_RAW / "demo").is_dir():
        pytest.skip("demo raw data not generated yet (research synth)")
    from research.data import prepare_study

    out = _output_root(tmp_path, monkeypatch)
    study_dir = out / "studies" / "no-group"
    study_dir.mkdir(parents=True)
    raw = yaml.safe_load(DEMO_STUDY.read_text(encoding="utf-8"))
    raw["study"]["id"] = "no-group"
    del raw["group"]
    (study_dir / "study.yaml").write_text(yaml.safe_dump(raw, allow_unicode=True, sort_keys=False), encoding="utf-8")
    (study_dir / "codebook.csv").write_bytes((DEMO_STUDY.parent / "codebook.csv").read_bytes())
    cfg = load_study(study_dir / "study.yaml")
    prepare_study(cfg)
    executed = execute_notebook("03_survey_comparison", tmp_path, study=str(study_dir / "study.yaml"))
    r = json.loads(cfg.paths.results_json("survey").read_text(encoding="utf-8"))["results"]
    assert r["n_by_group"] == {"all": r["n_respondents"]}
    assert r["significant_items"] is None and r["largest_gaps"]
    assert read_table(cfg.paths.processed_table("item_comparison")).empty
    assert set(read_table(cfg.paths.processed_table("ipa_items"))["group"]) == {"all"}
    assert "This part is skipped: no group column" in executed.read_text(encoding="utf-8")
