"""Cross-checks against R for the statistics the module tests did not yet compare with other software.

Every expected value comes from ``tests/reference/extra_reference.json``, written by
``tests/reference/make_extra_reference.R`` (R 4.2.2, psych 2.2.9, GPArotation 2022.10-2, MASS 7.3-58.2,
effectsize 0.8.3) from the Holzinger-Swineford files in ``tests/reference`` and small tables written in
that script. The R call is quoted beside each test. R is not needed to run these tests.

Tolerances: 1e-6 (relative) for closed forms; iterative fits are held to 1e-4 where our optimiser and R's
agree that closely and never looser than the house rule of 1e-3. Deliberate differences from R are
documented in ``docs/validation.md`` and tested against R's value transformed accordingly.
"""

from __future__ import annotations

import json
import math
import warnings

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose

from conftest import REFERENCE, ROOT
from research import efa, survey

ITEMS = [f"x{i}" for i in range(1, 10)]
CLOSED = 1e-6  # closed-form statistics (relative)


@pytest.fixture(scope="module")
def extra() -> dict:
    """R values of make_extra_reference.R."""
    return json.loads((REFERENCE / "extra_reference.json").read_text())


def test_reference_software_versions(extra):
    assert extra["software"] == ("R 4.2.2 psych 2.2.9 GPArotation 2022.10-2 MASS 7.3-58.2 effectsize 0.8.3")


# --- 1. psych::fa fit indices ---------------------------------------------------------------------------
FIT_CASES = [
    # key, method, rotation, corr, relative tolerance
    # psych::fa(x, nfactors=3, rotate='oblimin', fm='minres')
    ("fa_minres_oblimin", "minres", "oblimin", "pearson", 1e-4),
    # psych::fa(x, nfactors=3, rotate='varimax', fm='ml')
    ("fa_ml_varimax", "ml", "varimax", "pearson", 1e-4),
    # psych::fa(x, nfactors=3, rotate='promax', fm='pa')
    ("fa_pa_promax", "pa", "promax", "pearson", 1e-4),
    # psych::fa(xo, nfactors=3, rotate='oblimin', fm='minres', cor='poly'): psych's polychoric optimiser
    # stops about 1e-5 from the likelihood maximum, so the input matrices differ by that much
    ("fa_poly_minres_oblimin", "minres", "oblimin", "polychoric", 1e-3),
]


@pytest.fixture(scope="module")
def fits(hs_items, hs_ordinal):
    out = {}
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # none of the reference fits should warn
        for key, method, rotation, corr, _ in FIT_CASES:
            data = hs_ordinal[ITEMS] if corr == "polychoric" else hs_items
            out[key] = efa.fit_efa(data, 3, method=method, rotation=rotation, corr=corr)
    return out


@pytest.mark.parametrize(("key", "method", "rotation", "corr", "rtol"), FIT_CASES)
def test_fit_indices_match_psych(fits, extra, key, method, rotation, corr, rtol):
    """psych 2.2.9 fa(...)$STATISTIC, $dof, $PVAL, $TLI, $RMSEA, $BIC, $rms, $crms, $objective, $chi."""
    ref = extra["fit_indices"][key]
    fit = fits[key].fit
    assert fit.n_obs == ref["n_obs"] == 301
    assert fit.df == ref["dof"] == 12
    assert ref["RMSEA_confidence"] == 0.9  # psych reports 90% limits, as FitIndices
    ours = [fit.chi2, fit.p, fit.tli, fit.rmsea, fit.rmsea_lower, fit.rmsea_upper, fit.bic, fit.rmsr,
            fit.crmsr, fit.objective, fit.chi2_empirical]
    theirs = [ref["STATISTIC"], ref["PVAL"], ref["TLI"], *ref["RMSEA"], ref["BIC"], ref["rms"], ref["crms"],
              ref["objective"], ref["chi"]]
    assert_allclose(ours, theirs, rtol=rtol, atol=0)


# --- 2. psych::factor.scores ----------------------------------------------------------------------------
@pytest.mark.parametrize(("r_method", "method"), [("regression", "regression"), ("Bartlett", "bartlett"),
                                                  ("tenBerge", "tenberge")])
def test_factor_scores_match_psych(fits, hs_items, extra, r_method, method):
    """psych::factor.scores(x, fa(x, 3, rotate='oblimin', fm='minres'), method=...)$weights and $scores."""
    ref = extra["factor_scores"]
    result = fits["fa_minres_oblimin"]
    weights = efa.score_weights(result, method)
    scores = efa.factor_scores(result, hs_items, method=method)
    assert list(weights.columns) == list(scores.columns) == ref["colnames"]
    assert list(weights.index) == ref["rownames"]
    # weights rest on the iterative loadings (agreement 1e-5), scores = scale(x) %*% weights
    assert_allclose(weights.to_numpy(), np.asarray(ref[r_method]["weights"]), atol=1e-4, rtol=0)
    assert_allclose(scores.to_numpy()[:10], np.asarray(ref[r_method]["scores_first_10"]), atol=1e-4, rtol=0)


# --- 3. Velicer's MAP -----------------------------------------------------------------------------------
def test_velicer_map_matches_psych_vss(hs_items, extra):
    """psych::VSS(x, n=8, plot=FALSE)$map = our map_squared for m = 1..8 components (closed form)."""
    psych_map = np.asarray(extra["vss_map"]["map"])
    result = efa.velicer_map(hs_items)
    table = result.table.set_index("components")
    assert_allclose(table.loc[1:8, "map_squared"].to_numpy(), psych_map, rtol=CLOSED, atol=1e-12)
    # psych's minimum (over m >= 1) is our suggestion; m = 0 is larger here
    assert int(np.argmin(psych_map)) + 1 == result.n_suggested == 2


# --- 4. parallel analysis (sanity only: the simulated parts use different random numbers) ----------------
def test_parallel_analysis_suggestions_agree_with_psych(hs_items, extra):
    """set.seed(20261204); psych::fa.parallel(x, fa='both', n.iter=20)$nfact / $ncomp (both 3)."""
    ref = extra["parallel"]
    # psych compares with the simulated means when quant is not given
    fa = efa.parallel_analysis(hs_items, kind="fa", n_iter=20, quantile=None, seed=20261204)
    pc = efa.parallel_analysis(hs_items, kind="pca", n_iter=20, quantile=None, seed=20261204)
    assert (fa.n_suggested, pc.n_suggested) == (ref["nfact"], ref["ncomp"]) == (3, 3)
    # the observed component eigenvalues are deterministic: fa.parallel(...)$pc.values
    assert_allclose(pc.eigenvalues["observed"], ref["pc_values_observed"], rtol=CLOSED)


# --- 5. MASS::polr --------------------------------------------------------------------------------------
def test_ordinal_regression_matches_polr(hs_data, hs_ordinal, extra):
    """MASS::polr(factor(xo$x1, ordered=TRUE) ~ factor(sex) + x4, method='logistic', Hess=TRUE)."""
    ref = extra["polr"]
    data = pd.DataFrame({"y": hs_ordinal["x1"], "sex": hs_data["sex"].astype(str), "x4": hs_data["x4"]})
    model = survey.ordinal_regression(data, "y", ["sex", "x4"])
    table = model.table.set_index("term")
    assert model.converged and model.n == ref["n"] and model.n_dropped == 0
    coef, zeta = table.loc[ref["coef_names"]], table.loc[ref["zeta_names"]]  # R's names: sex2, x4, 1|2 ...
    assert (coef["kind"] == "coefficient").all() and (zeta["kind"] == "threshold").all()
    # same sign convention as polr: logit P(Y <= k) = zeta_k - x'beta (BFGS vs polr's optim: 1e-5)
    assert_allclose(coef["estimate"], ref["coef"], rtol=1e-4)
    assert_allclose(coef["se"], ref["coef_se"], rtol=1e-4)
    assert_allclose(zeta["estimate"], ref["zeta"], rtol=1e-4)
    assert_allclose(zeta["se"], ref["zeta_se"], rtol=1e-4)
    assert_allclose(coef["odds_ratio"], ref["odds_ratio"], rtol=1e-4)
    # exp(confint.default(polr)): Wald limits
    assert_allclose(coef[["ci_low", "ci_high"]].to_numpy(), np.asarray(ref["odds_ratio_wald_ci"]), rtol=1e-4)
    assert_allclose(model.log_likelihood, ref["loglik"], rtol=1e-8)


# --- 6. Kruskal-Wallis, rank epsilon-squared, pairwise Wilcoxon with Holm ------------------------------------
@pytest.fixture(scope="module")
def three_groups(hs_data) -> pd.DataFrame:
    """g3 of make_extra_reference.R: 'GW' = Grant-White, 'P1' / 'P2' = Pasteur boys / girls."""
    g3 = np.where(hs_data["school"] == "Grant-White", "GW", np.where(hs_data["sex"] == 1, "P1", "P2"))
    return pd.DataFrame({"g3": g3, "x1": hs_data["x1"]})


def test_kruskal_wallis_matches_r(three_groups, extra):
    """kruskal.test(x1, factor(g3)); effectsize::rank_epsilon_squared(x1 ~ factor(g3), ci=NULL)."""
    ref = extra["kruskal"]
    result = survey.compare_many_groups(three_groups, "g3", ["x1"], levels=ref["levels"])
    row = result.table.iloc[0]
    assert [row[f"n_{lv}"] for lv in ref["levels"]] == [ref["n"][lv] for lv in ref["levels"]]
    assert row["df"] == ref["df"] == 2
    assert_allclose([row["H"], row["p"], row["epsilon_squared"]],
                    [ref["H"], ref["p"], ref["rank_epsilon_squared"]], rtol=CLOSED)


def test_pairwise_wilcoxon_matches_r(three_groups, extra):
    """wilcox.test(a, b, exact=FALSE, correct=TRUE), effectsize::rank_biserial(a, b) for each pair;
    pairwise.wilcox.test(x1, g3, p.adjust.method='holm')."""
    ref = extra["kruskal"]
    pairwise = survey.compare_many_groups(three_groups, "g3", ["x1"], levels=ref["levels"]).pairwise
    expected = pd.DataFrame(ref["pairwise"])
    assert list(pairwise["group_1"]) == list(expected["group_1"])
    assert list(pairwise["group_2"]) == list(expected["group_2"])
    assert_allclose(pairwise["U"], expected["W"], rtol=CLOSED)
    assert_allclose(pairwise["p"], expected["p"], rtol=CLOSED)
    assert_allclose(pairwise["r_rb"], expected["r_rank_biserial"], rtol=CLOSED)
    assert_allclose(pairwise[["r_rb_ci_low", "r_rb_ci_high"]].to_numpy(), np.vstack(expected["rb_ci"]),
                    rtol=CLOSED)
    assert_allclose(pairwise["p_holm"], ref["pairwise_holm"], rtol=CLOSED)


# --- 7. effect-size intervals of the two-group comparison ---------------------------------------------
def test_effect_size_intervals_match_effectsize(hs_data, extra):
    """effectsize::rank_biserial(x[g==1], x[g==2]) and hedges_g(..., pooled_sd=FALSE) with 95% CIs."""
    table = survey.compare_groups(hs_data.assign(sex=hs_data["sex"].astype(str)), "sex", ["x1", "x4", "x7"],
                                  levels=["1", "2"]).set_index("variable")
    for ref in extra["sex_effect_ci"]:
        row = table.loc[ref["var"]]
        assert_allclose([row["r_rb"], row["r_rb_ci_low"], row["r_rb_ci_high"]],
                        [ref["r_rank_biserial"], *ref["rb_ci"]], rtol=CLOSED)
        assert_allclose(row["g"], ref["hedges_g"], rtol=CLOSED)
        # the limits solve P(T_df(ncp) <= t) = .975 / .025 for ncp, an iterative step: effectsize's optim
        # stops within about 2e-8 of the root (ours: brentq to 1e-13), so absolute 1e-6 here
        assert_allclose([row["g_ci_low"], row["g_ci_high"]], ref["g_ci"], rtol=0, atol=1e-6)


# --- 8. contingency tables ----------------------------------------------------------------------------
def test_two_by_two_chi_square_matches_r(extra):
    """chisq.test(table(sex, school)) with and without correct; cramers_v(adjust=FALSE)."""
    ref = extra["contingency"]["sex_by_school"]
    result = survey.contingency_test(np.asarray(ref["table"]))
    assert result.test == "chi2_yates" and result.df == ref["df"] == 1 and result.n == 301
    assert_allclose([result.chi2, result.p], [ref["chisq_correct"], ref["p_correct"]], rtol=CLOSED)
    assert_allclose(result.cramers_v, ref["cramers_v"], rtol=CLOSED)
    # V is built on the uncorrected statistic: n V^2 = chisq.test(correct = FALSE)$statistic
    assert_allclose(result.n * result.cramers_v**2, ref["chisq"], rtol=CLOSED)
    assert_allclose(result.min_expected, ref["min_expected"], rtol=CLOSED)


def test_larger_table_chi_square_matches_r(extra):
    """chisq.test(table(age band, school)) (no continuity correction beyond 2 x 2); cramers_v(adjust=FALSE)."""
    ref = extra["contingency"]["age_band_by_school"]
    result = survey.contingency_test(np.asarray(ref["table"]))
    assert result.test == "chi2" and result.df == ref["df"] == 3
    assert ref["chisq"] == ref["chisq_correct"]  # R ignores correct = TRUE here
    assert_allclose([result.chi2, result.p, result.cramers_v, result.min_expected],
                    [ref["chisq"], ref["p"], ref["cramers_v"], ref["min_expected"]], rtol=CLOSED)


def test_sparse_two_by_two_uses_fisher_like_r(extra):
    """fisher.test(matrix(c(7, 2, 1, 6), 2, byrow=TRUE)) (expected counts 3.5 < 5)."""
    ref = extra["contingency"]["fisher_contract"]
    result = survey.contingency_test(np.asarray(ref["table"]))
    assert result.test == "fisher"
    assert_allclose(result.p, ref["fisher_p"], rtol=CLOSED)
    assert_allclose([result.chi2, result.cramers_v], [ref["chisq"], ref["cramers_v"]], rtol=CLOSED)


def _respondents(table: list[list[int]], rows: list[str], cols: list[str], row_name: str,
                 col_name: str) -> pd.DataFrame:
    """One row per respondent from a table of counts."""
    records = [(r, c) for i, r in enumerate(rows) for j, c in enumerate(cols) for _ in range(table[i][j])]
    return pd.DataFrame(records, columns=[row_name, col_name])


def test_profile_by_group_matches_r(hs_data, extra):
    """The survey profile table: chisq.test / fisher.test and cramers_v(adjust=FALSE) as above."""
    ref = extra["contingency"]
    band = pd.cut(hs_data["ageyr"], [-np.inf, 12, 13, 14, np.inf],
                  labels=ref["age_band_by_school"]["rownames"]).astype(str)
    profile = pd.DataFrame({"school": hs_data["school"], "sex": hs_data["sex"], "age_band": band})
    table = survey.profile_by_group(profile, "school", ["sex", "age_band"]).set_index("variable")
    for variable, key, test in [("sex", "sex_by_school", "chi2_yates"), ("age_band", "age_band_by_school", "chi2")]:
        row = table.loc[variable]
        assert row["test"] == test and row["effect_name"] == "cramers_v" and row["n"] == 301
        assert_allclose([row["statistic"], row["p"], row["effect"]],
                        [ref[key]["chisq_correct"], ref[key]["p_correct"], ref[key]["cramers_v"]], rtol=CLOSED)
    fisher = ref["fisher_contract"]
    clients = _respondents(fisher["table"], fisher["rownames"], fisher["colnames"], "origin", "contract")
    row = survey.profile_by_group(clients, "origin", ["contract"], levels=fisher["rownames"]).iloc[0]
    assert row["test"] == "fisher"
    # rows and columns swapped relative to R's table: both tests are symmetric
    assert_allclose([row["p"], row["effect"]], [fisher["fisher_p"], fisher["cramers_v"]], rtol=CLOSED)


# --- 9. paired signed-rank test (importance vs performance) --------------------------------------------
def _paired_case(hs_data, hs_ordinal, key):
    if key == "ordinal":
        return hs_ordinal.assign(sex=hs_ordinal["sex"].astype(str)), "all"
    group = {"all": "all", "sex_1": "1", "sex_2": "2"}[key]
    return hs_data.assign(sex=hs_data["sex"].astype(str)), group


@pytest.mark.parametrize("key", ["all", "sex_1", "sex_2", "ordinal"])
def test_ipa_gap_test_matches_r(hs_data, hs_ordinal, extra, key):
    """wilcox.test(x1, x2, paired=TRUE, exact=FALSE, correct=TRUE); effectsize::rank_biserial(x1 - x2).

    x1 stands for importance and x2 for performance. The ``ordinal`` case uses the 1..5 codes (many ties
    and zero differences). The interval is effectsize's for the differences: see test below for
    ``rank_biserial(x1, x2, paired = TRUE)``.
    """
    ref = extra["paired_x1_x2"][key]
    data, group = _paired_case(hs_data, hs_ordinal, key)
    codebook = pd.DataFrame({"variable": ["x1", "x2"], "type": ["importance", "performance"],
                             "stage": ["S1", "S1"], "factor": ["F", "F"]})
    gaps = survey.ipa_gaps(data, codebook, group="sex", levels=["1", "2"]).set_index("group")
    row = gaps.loc[group]
    assert row["n"] == ref["n"] and row["n_nonzero"] == ref["n_nonzero"]
    assert_allclose([row["importance"], row["performance"]], [ref["mean_x1"], ref["mean_x2"]], rtol=1e-12)
    assert_allclose([row["V"], row["gap_p"]], [ref["V"], ref["p"]], rtol=CLOSED)
    assert ref["r_rank_biserial_differences"] == pytest.approx(ref["r_rank_biserial"], rel=1e-12)
    assert_allclose([row["gap_effect"], row["gap_effect_ci_low"], row["gap_effect_ci_high"]],
                    [ref["r_rank_biserial"], *ref["rb_ci_differences"]], rtol=CLOSED)


@pytest.mark.parametrize("key", ["all", "sex_1", "sex_2", "ordinal"])
def test_paired_rank_biserial_interval_differs_from_effectsize_only_in_n(hs_data, hs_ordinal, extra, key):
    """effectsize 0.8.3 rank_biserial(x1, x2, paired=TRUE) sizes its CI with n = sum(x1 != 0).

    We use the number of non-zero differences (King et al., 2011, eq. 6.38; effectsize's own one-sample
    form on the differences). R's paired interval is reproduced from our r with effectsize's n.
    """
    ref = extra["paired_x1_x2"][key]
    data, group = _paired_case(hs_data, hs_ordinal, key)
    if group != "all":
        data = data[data["sex"] == group]
    r, _, _ = survey.rank_biserial(data["x1"], data["x2"], paired=True)
    n = ref["n_first_nonzero"]
    assert n == int((data["x1"] != 0).sum()) != ref["n_nonzero"]
    se = math.sqrt((2 * n**3 + 3 * n**2 + n) / 6) / (n * (n + 1) / 2)
    z = 1.959963984540054  # qnorm(0.975)
    assert_allclose(np.tanh(np.arctanh(r) + np.array([-z, z]) * se), ref["rb_ci"], rtol=CLOSED)


# --- 10. reliability ------------------------------------------------------------------------------------
@pytest.mark.parametrize("key", ["x1_x3", "x4_x6", "x7_x9"])
def test_alpha_and_omega_match_psych(hs_items, extra, key):
    """psych::alpha(x[, items]) (total, Feldt limits of $feldt, alpha.drop, r.drop) and
    psych::omega(x[, items], nfactors=1)$omega.tot."""
    ref = extra["reliability"][key]
    alpha = efa.cronbach_alpha(hs_items[ref["items"]], ci=0.95)
    assert_allclose([alpha.raw_alpha, alpha.std_alpha], [ref["raw_alpha"], ref["std_alpha"]], rtol=CLOSED)
    assert_allclose([alpha.ci_low, alpha.ci_high], ref["feldt"], rtol=CLOSED)
    assert_allclose(alpha.items["alpha_if_deleted"], ref["alpha_if_deleted"], rtol=CLOSED)
    assert_allclose(alpha.items["r_drop"], ref["r_drop"], rtol=CLOSED)
    # same optimiser settings as psych's L-BFGS-B (agreement ~1e-15), so 1e-6 holds for this fit
    assert_allclose(efa.omega_total(hs_items[ref["items"]]).omega_total, ref["omega_total_one_factor"],
                    rtol=CLOSED)


# --- regression guard: polychoric without RuntimeWarnings (empty end categories, demo items) ----------------
def test_polychoric_is_silent_on_unidentified_thresholds_and_demo_items():
    """Infinite thresholds (a category nobody chose at either end) must not leak inf - inf warnings."""
    rng = np.random.default_rng(7)
    latent = rng.standard_normal((200, 1)) + rng.standard_normal((200, 4))
    items = pd.DataFrame(np.digitize(latent, [-1.0, -0.3, 0.3, 1.0]) + 1.0, columns=list("abcd"))
    items.loc[items["a"] == 1, "a"] = 2  # nobody in category 1: t1 = -inf
    items.loc[items["b"] == 5, "b"] = 4  # nobody in category 5: t4 = +inf
    items.iloc[::7, 2] = np.nan
    demo = pd.read_csv(ROOT / "data" / "raw" / "demo" / "survey.csv")
    codebook = pd.read_csv(ROOT / "studies" / "demo" / "codebook.csv")
    performance = codebook.loc[codebook["type"] == "performance", "variable"]
    demo_items = demo[performance].astype(float)
    demo_items = demo_items.where(demo_items > 0)  # missing codes (-1 don't know, -9 skipped)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        result = efa.polychoric(items)
        efa.polychoric(demo_items)
    assert np.isnan(result.tau.loc["a", "t1"]) and np.isnan(result.tau.loc["b", "t4"])
    assert np.isfinite(result.rho.to_numpy()).all()
