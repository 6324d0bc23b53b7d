"""fit_efa, rotations, factor scores and congruence against R psych 2.2.9 and other software.

Expected values come from ``tests/reference/holzinger_swineford_reference.json`` (R 4.2.2, psych 2.2.9,
GPArotation 2022.10-2; the R calls are in ``make_reference.R`` and quoted beside each test), from
statsmodels 0.15 / factor-analyzer 0.5.1 computations on the same inputs, or from hand computations.
"""

from __future__ import annotations

import types
import warnings

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose

from research import efa
from research.efa import rotation as rot
from research.errors import AnalysisError

ITEMS = [f"x{i}" for i in range(1, 10)]
TOL = 1e-3  # iterative estimates (house rule)


def _ref_loadings(fit: dict) -> np.ndarray:
    raw = fit["loadings"]
    rows = [raw[str(i)] for i in range(1, 10)] if isinstance(raw, dict) else raw
    return np.asarray(rows, dtype=float)


def _ref_communality(fit: dict) -> np.ndarray:
    raw = fit.get("communality")
    return np.asarray(list(raw.values()) if isinstance(raw, dict) else raw, dtype=float)


CASES = [
    # psych::fa(x, nfactors=3, rotate='oblimin', fm='minres')   (R 4.2.2, psych 2.2.9, GPArotation 2022.10-2)
    ("fa_minres_oblimin", "minres", "oblimin"),
    # psych::fa(x, nfactors=3, rotate='varimax', fm='ml')
    ("fa_ml_varimax", "ml", "varimax"),
    # psych::fa(x, nfactors=3, rotate='promax', fm='pa')
    ("fa_pa_promax", "pa", "promax"),
]


@pytest.fixture(scope="module")
def hs_fits(hs_items):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # none of the reference fits should warn
        return {key: efa.fit_efa(hs_items, 3, method=m, rotation=r) for key, m, r in CASES}


@pytest.mark.parametrize("key,method,rotation", CASES)
def test_reference_fit_matches_psych(hs_fits, hs_reference, key, method, rotation):
    ref = hs_reference[key]
    res = hs_fits[key]
    assert list(res.loadings.columns) == ref["loadings_colnames"]  # psych names and order
    assert list(res.loadings.index) == ref["loadings_rownames"]
    assert_allclose(res.loadings.to_numpy(), _ref_loadings(ref), atol=TOL, rtol=0)
    assert_allclose(res.communalities.to_numpy(), _ref_communality(ref), atol=TOL, rtol=0)
    assert_allclose(res.variance.to_numpy(), np.asarray(ref["Vaccounted"]), atol=TOL, rtol=0)
    assert list(res.variance.index) == ref["Vaccounted_rownames"]
    if ref["Phi"] is None:  # orthogonal: psych returns no Phi
        assert_allclose(res.phi.to_numpy(), np.eye(3), atol=1e-12)
    else:
        assert_allclose(res.phi.to_numpy(), np.asarray(ref["Phi"]), atol=TOL, rtol=0)
    assert res.converged and res.rotation_converged
    assert res.n_obs == 301 and res.method == method and res.rotation == rotation
    assert res.heywood == () and res.ultra_heywood == ()


def test_structure_uniquenesses_and_aliases(hs_fits):
    res = hs_fits["fa_minres_oblimin"]
    P, phi = res.loadings.to_numpy(), res.phi.to_numpy()
    assert_allclose(res.structure.to_numpy(), P @ phi, atol=1e-12)
    # communalities of an oblique solution are diag(L Phi L'), not row sums of squared pattern loadings
    assert_allclose(res.communalities.to_numpy(), np.diag(P @ phi @ P.T), atol=1e-10)
    assert_allclose(res.uniquenesses.to_numpy(), 1 - res.communalities.to_numpy(), atol=1e-12)
    assert res.factor_ids == ("F1", "F2", "F3")
    assert res.alias == {"MR1": "F1", "MR3": "F2", "MR2": "F3"}
    assert list(res.aliased("loadings").columns) == ["F1", "F2", "F3"]
    assert list(res.aliased("phi").index) == ["F1", "F2", "F3"]


def test_polychoric_matrix_input_matches_psych(hs_reference):
    # psych::fa(xo, nfactors=3, rotate='oblimin', fm='minres', cor='poly'); input: the reference
    # polychoric matrix (psych::polychoric(xo)$rho) with n.obs = 301
    ordinal = hs_reference["ordinal"]
    R = pd.DataFrame(np.asarray(ordinal["polychoric_rho"]), index=ITEMS, columns=ITEMS)
    res = efa.fit_efa(R, 3, n_obs=301)
    ref = ordinal["fa_poly_minres_oblimin"]
    assert list(res.loadings.columns) == ref["colnames"]
    assert_allclose(res.loadings.to_numpy(), _ref_loadings(ref), atol=TOL, rtol=0)
    assert_allclose(res.communalities.to_numpy(), _ref_communality(ref), atol=TOL, rtol=0)
    assert res.corr_method == "given" and res.n_obs == 301


def test_polychoric_end_to_end_matches_psych(hs_ordinal, hs_reference):
    if not hasattr(efa, "polychoric"):
        pytest.skip("efa.polychoric has not landed yet")
    # psych::fa(xo, nfactors=3, rotate='oblimin', fm='minres', cor='poly')
    ref = hs_reference["ordinal"]["fa_poly_minres_oblimin"]
    res = efa.fit_efa(hs_ordinal[ITEMS], 3, corr="polychoric")
    assert_allclose(res.loadings.to_numpy(), _ref_loadings(ref), atol=TOL, rtol=0)
    assert_allclose(res.communalities.to_numpy(), _ref_communality(ref), atol=TOL, rtol=0)


def test_correlation_matrix_input_equals_raw_data(hs_items, hs_fits):
    res = efa.fit_efa(hs_items.corr(), 3, n_obs=301)
    assert_allclose(res.loadings.to_numpy(), hs_fits["fa_minres_oblimin"].loadings.to_numpy(), atol=1e-8)
    no_n = efa.fit_efa(hs_items.corr(), 3)
    assert no_n.n_obs is None and np.isnan(no_n.fit.chi2) and no_n.fit.rmsr > 0


# --- rotations against other implementations ----------------------------------------------------------
def test_rotations_agree_with_statsmodels(hs_fits):
    """statsmodels 0.15 ``rotate_factors`` (verified there against R GPArotation / stats::varimax)."""
    from statsmodels.multivariate.factor_rotation import rotate_factors

    A = efa.fit_efa(hs_fits["fa_ml_varimax"].corr, 3, method="ml", rotation="none", n_obs=301).loadings
    A = A.to_numpy()
    ours = rot.oblimin(A)
    theirs, T = rotate_factors(A, "quartimin")
    assert_allclose(ours.loadings, theirs, atol=TOL)
    assert_allclose(ours.phi, T.T @ T, atol=TOL)
    # stats::varimax normalises rows (Kaiser); statsmodels does not, so compare without normalisation
    ours_raw = rot.varimax(A, normalize=False, eps=1e-10)
    theirs_v, _ = rotate_factors(A, "varimax")
    assert_allclose(np.abs(ours_raw.loadings), np.abs(theirs_v), atol=TOL)


# --- fit indices -----------------------------------------------------------------------------------
def test_ml_objective_matches_statsmodels_likelihood(hs_fits):
    """F = tr(S^-1 R) - log|S^-1 R| - p equals -2p * statsmodels ``Factor.loglike`` - log|R| - p."""
    from statsmodels.multivariate.factor import Factor

    res = hs_fits["fa_ml_varimax"]
    R = res.corr.to_numpy()
    model = Factor(corr=R, n_factor=3, method="ml", nobs=301)
    loglike = model.loglike((res.loadings.to_numpy(), res.uniquenesses.to_numpy()))
    expected = -2 * 9 * loglike - np.linalg.slogdet(R)[1] - 9
    assert_allclose(res.fit.objective, expected, rtol=1e-10)


def test_ml_estimates_match_statsmodels(hs_fits):
    """The ML uniquenesses are the same optimum as statsmodels 0.15 ``Factor(method='ml')``."""
    from statsmodels.multivariate.factor import Factor

    res = hs_fits["fa_ml_varimax"]
    fitted = Factor(corr=res.corr.to_numpy(), n_factor=3, method="ml", nobs=301).fit()
    assert_allclose(res.uniquenesses.to_numpy(), fitted.uniqueness, atol=TOL)


def test_fit_index_formulas(hs_fits):
    """Fit indices follow psych fa.stats formulas (computed here by hand from the objective)."""
    from scipy import stats

    fit = hs_fits["fa_ml_varimax"].fit
    n, p, k = 301, 9, 3
    assert fit.df == 12
    multiplier = n - 1 - (2 * p + 5) / 6 - 2 * k / 3
    assert_allclose(fit.chi2, fit.objective * multiplier, rtol=1e-12)
    assert_allclose(fit.p, stats.chi2.sf(fit.chi2, 12), rtol=1e-10)
    # psych fa.stats: sqrt(max(STATISTIC / (dof * n.obs) - 1 / (n.obs - 1), 0)); psych's value itself is
    # checked in tests/test_r_crosscheck.py
    assert_allclose(fit.rmsea, np.sqrt(fit.chi2 / (12 * n) - 1 / (n - 1)), rtol=1e-12)
    assert_allclose(fit.bic, fit.chi2 - 12 * np.log(n), rtol=1e-12)
    # the 90% limits invert the non-central chi-square at the observed statistic
    lam_low, lam_high = fit.rmsea_lower ** 2 * (n - 1) * 12, fit.rmsea_upper ** 2 * (n - 1) * 12
    assert_allclose(stats.ncx2.cdf(fit.chi2, 12, lam_low), 0.95, atol=1e-6)
    assert_allclose(stats.ncx2.cdf(fit.chi2, 12, lam_high), 0.05, atol=1e-6)
    residual = hs_fits["fa_ml_varimax"].corr.to_numpy() - (lambda L: L @ L.T)(
        hs_fits["fa_ml_varimax"].loadings.to_numpy())
    off = residual[~np.eye(p, dtype=bool)]
    assert_allclose(fit.rmsr, np.sqrt(np.sum(off ** 2) / (p * (p - 1))), rtol=1e-10)


# --- factor scores --------------------------------------------------------------------------------
def _statsmodels_results(res):
    from statsmodels.multivariate.factor import FactorResults

    fake = types.SimpleNamespace(endog_names=list(res.loadings.index), loadings=res.loadings.to_numpy(),
                                 eigenvals=None, communality=res.communalities.to_numpy(),
                                 uniqueness=res.uniquenesses.to_numpy(), method="ml", nobs=301,
                                 mle_retvals=None, corr=res.corr.to_numpy())
    out = FactorResults(fake)
    out.rotation_matrix = np.linalg.cholesky(res.phi.to_numpy()).T  # T'T = Phi
    return out


@pytest.mark.parametrize("key", ["fa_ml_varimax", "fa_minres_oblimin"])
def test_score_weights_match_statsmodels(hs_fits, key):
    """statsmodels 0.15 ``factor_score_params`` ('regression' and 'bartlett', verified there vs Stata)."""
    res = hs_fits[key]
    sm = _statsmodels_results(res)
    assert_allclose(efa.score_weights(res, "regression").to_numpy(), sm.factor_score_params("regression"),
                    atol=1e-10)
    assert_allclose(efa.score_weights(res, "bartlett").to_numpy(), sm.factor_score_params("bartlett"),
                    atol=1e-10)


def test_regression_scores_match_factor_analyzer_transform(hs_items, hs_fits):
    """factor-analyzer 0.5.1 ``transform`` with the same loadings (orthogonal solution).

    factor-analyzer standardises with the population SD (ddof = 0), psych's ``scale()`` with ddof = 1,
    so its scores are ours times sqrt(n / (n - 1)).
    """
    from factor_analyzer import FactorAnalyzer

    res = hs_fits["fa_ml_varimax"]
    fa = FactorAnalyzer(n_factors=3, rotation=None, method="ml")
    fa.fit(hs_items.to_numpy())
    fa.loadings_ = res.loadings.to_numpy()
    fa.structure_ = None
    theirs = fa.transform(hs_items.to_numpy())
    ours = efa.factor_scores(res, hs_items, method="regression").to_numpy()
    n = len(hs_items)
    assert_allclose(ours * np.sqrt(n / (n - 1)), theirs, atol=1e-10)


def test_tenberge_scores_reproduce_phi(hs_items, hs_fits):
    res = hs_fits["fa_minres_oblimin"]
    scores = efa.factor_scores(res, hs_items, method="tenberge")
    assert_allclose(np.corrcoef(scores.to_numpy(), rowvar=False), res.phi.to_numpy(), atol=1e-10)
    W = efa.score_weights(res, "tenberge").to_numpy()
    assert_allclose(W.T @ res.corr.to_numpy() @ W, res.phi.to_numpy(), atol=1e-10)


def test_scores_with_missing_answers_use_item_means(hs_items, hs_fits):
    res = hs_fits["fa_ml_varimax"]
    data = hs_items.copy()
    data.iloc[0, 0] = np.nan
    with pytest.warns(UserWarning, match="1 missing answer"):
        scores = efa.factor_scores(res, data)
    assert scores.notna().all().all() and scores.index.equals(data.index)
    Z = (data - data.mean()) / data.std(ddof=1)
    expected = Z.fillna(0).to_numpy()[0] @ efa.score_weights(res, "regression").to_numpy()
    assert_allclose(scores.iloc[0].to_numpy(), expected, atol=1e-12)


# --- congruence ----------------------------------------------------------------------------------
def test_congruence_hand_example():
    # Tucker (1951): phi = sum(x y) / sqrt(sum(x^2) sum(y^2)); x = (1, 2, 3), y = (2, 1, 0):
    # sum xy = 4, sum x^2 = 14, sum y^2 = 5 -> 4 / sqrt(70) = 0.4780914437337575
    x = pd.DataFrame({"a": [1.0, 2.0, 3.0]}, index=["i1", "i2", "i3"])
    y = pd.DataFrame({"t": [2.0, 1.0, 0.0], "u": [1.0, 2.0, 3.0]}, index=["i1", "i2", "i3"])
    out = efa.congruence(x, y)
    assert_allclose(out.matrix.loc["a", "t"], 0.4780914437337575, rtol=1e-12)
    assert_allclose(out.matrix.loc["a", "u"], 1.0, rtol=1e-12)
    assert out.best_match.to_dict("records") == [{"factor": "a", "target": "u", "congruence": 1.0}]


def test_congruence_psych_formula_on_reference_loadings(hs_reference):
    """psych ``factor.congruence(x, y)`` = diag(1/||x||) x'y diag(1/||y||), applied to the R loadings of
    the minres/oblimin and ml/varimax solutions (both from psych 2.2.9)."""
    a = _ref_loadings(hs_reference["fa_minres_oblimin"])
    b = _ref_loadings(hs_reference["fa_ml_varimax"])
    expected = (a.T @ b) / np.outer(np.linalg.norm(a, axis=0), np.linalg.norm(b, axis=0))
    out = efa.congruence(pd.DataFrame(a, index=ITEMS, columns=["MR1", "MR3", "MR2"]),
                         pd.DataFrame(b, index=ITEMS, columns=["ML1", "ML3", "ML2"]))
    assert_allclose(out.matrix.to_numpy(), expected, rtol=1e-12)
    assert list(out.best_match["target"]) == ["ML1", "ML3", "ML2"]
    assert (out.best_match["congruence"] > 0.95).all()


def test_congruence_needs_all_items():
    x = pd.DataFrame({"a": [1.0, 2.0]}, index=["i1", "i2"])
    with pytest.raises(AnalysisError, match="lack the item"):
        efa.congruence(x, pd.DataFrame({"t": [1.0]}, index=["i1"]))


# --- edge inputs ------------------------------------------------------------------------------------
def test_too_many_factors_is_a_clear_error(hs_items):
    with pytest.raises(AnalysisError, match=r"6 factors are too many for 9 items.*at most 5"):
        efa.fit_efa(hs_items, 6)
    assert efa.max_factors(9) == 5 and efa.factor_degrees_of_freedom(9, 5) == 1


def test_constant_item_is_named(hs_items):
    data = hs_items.assign(x4=3.0)
    with pytest.raises(AnalysisError, match="item 'x4' is constant"):
        efa.fit_efa(data, 2)


def test_non_numeric_item_is_named(hs_items):
    with pytest.raises(AnalysisError, match="x2"):
        efa.fit_efa(hs_items.assign(x2="a"), 2)


def test_fewer_respondents_than_items_warns_and_smooths(hs_items):
    if not hasattr(efa, "smooth_corr"):
        pytest.skip("efa.smooth_corr has not landed yet")
    few = hs_items.iloc[:7]
    with pytest.warns(UserWarning) as record:
        res = efa.fit_efa(few, 1)
    messages = " ".join(str(w.message) for w in record)
    assert "fewer respondents (7) than items (9)" in messages
    assert "not positive definite" in messages
    assert res.smoothed and np.linalg.eigvalsh(res.corr.to_numpy()).min() > 0


def test_non_positive_definite_matrix_is_smoothed_with_warning():
    if not hasattr(efa, "smooth_corr"):
        pytest.skip("efa.smooth_corr has not landed yet")
    R = np.full((6, 6), 0.5)
    np.fill_diagonal(R, 1.0)
    R[0, 1] = R[1, 0] = -0.6  # makes the matrix indefinite
    R = pd.DataFrame(R, index=list("abcdef"), columns=list("abcdef"))
    assert np.linalg.eigvalsh(R.to_numpy()).min() < 0
    with pytest.warns(UserWarning, match="not positive definite"):
        res = efa.fit_efa(R, 1, n_obs=200)
    assert res.smoothed


def test_heywood_case_is_flagged_not_clipped():
    # two nearly identical items force a communality to the bound: a Heywood case
    rng = np.random.default_rng(1)
    f = rng.normal(size=(400, 1))
    X = f @ np.array([[0.6, 0.6, 0.6, 0.6, 0.6]]) + rng.normal(scale=0.8, size=(400, 5))
    X[:, 1] = X[:, 0] + rng.normal(scale=0.01, size=400)
    data = pd.DataFrame(X, columns=list("abcde"))
    with pytest.warns(UserWarning, match="Heywood"):
        res = efa.fit_efa(data, 1, method="ml")
    assert set(res.heywood) >= {"a"} or set(res.heywood) >= {"b"}
    assert res.communalities.max() >= efa.fit.HEYWOOD_COMMUNALITY


def test_bad_arguments_are_clear(hs_items):
    with pytest.raises(AnalysisError, match="method 'foo'"):
        efa.fit_efa(hs_items, 2, method="foo")
    with pytest.raises(AnalysisError, match="n_factors must be"):
        efa.fit_efa(hs_items, 0)
    with pytest.raises(AnalysisError, match="score method"):
        efa.score_weights(efa.fit_efa(hs_items, 2), "foo")


# --- report tables ------------------------------------------------------------------------------------
def test_sorted_loadings_follow_psych_fa_sort(hs_fits):
    # psych::fa.sort on the R minres/oblimin pattern (reference JSON): items grouped by the factor of their
    # largest |loading| (MR1, MR3, MR2 order), then by that |loading| descending
    table = efa.sorted_loadings(hs_fits["fa_minres_oblimin"], cutoff=0.3)
    assert list(table.index) == ["x5", "x4", "x6", "x3", "x1", "x2", "x7", "x8", "x9"]
    assert list(table.columns[:3]) == ["F1", "F2", "F3"]
    assert list(table["primary"]) == ["F1"] * 3 + ["F2"] * 3 + ["F3"] * 3
    # x9 loads .38 on MR3 and .46 on MR2 in psych's solution: the only cross-loading at .30
    assert list(table.index[table["cross_loading"]]) == ["x9"]
    assert efa.cross_loading_items(hs_fits["fa_minres_oblimin"], cutoff=0.3) == ["x9"]
    row = table.loc["x9", ["F1", "F2", "F3"]].to_numpy(dtype=float)
    assert_allclose(table.loc["x9", "complexity"], (row @ row) ** 2 / np.sum(row ** 4), rtol=1e-12)


def test_loading_display_blanks_small_loadings(hs_fits):
    table = efa.sorted_loadings(hs_fits["fa_minres_oblimin"], cutoff=0.3)
    shown = efa.loading_display(table, cutoff=0.3, lang="lt", item_labels={"x5": "Sakiniai"})
    first = shown.iloc[0]
    assert first["variable"] == "x5" and first["item"] == "Sakiniai"
    assert first["F1"] == "0,89" and first["F2"] == "" and first["F3"] == ""  # decimal comma in Lithuanian
    assert shown.set_index("variable").loc["x9", "cross_loading"] == "×"


def test_loadings_long_table(hs_fits):
    res = hs_fits["fa_minres_oblimin"]
    long = efa.loadings_long(res)
    assert list(long.columns) == ["variable", "factor", "loading", "communality"]
    assert len(long) == 27 and set(long["factor"]) == {"F1", "F2", "F3"}
    row = long[(long["variable"] == "x9") & (long["factor"] == "F3")].iloc[0]
    assert_allclose(row["loading"], res.loadings.loc["x9", "MR2"], rtol=1e-12)
    assert_allclose(row["communality"], res.communalities["x9"], rtol=1e-12)


def test_item_descriptives_hand_example():
    data = pd.DataFrame({"a": [1, 1, 3, 5, np.nan], "b": [5, 5, 5, 4, 2]}, dtype="Float64")
    cb = pd.DataFrame({"variable": ["a", "b"], "scale_min": [1, 1], "scale_max": [5, 5]})
    missing = pd.DataFrame({"respondent_id": ["r5"], "variable": ["a"], "kind": ["dont_know"]})
    out = efa.item_descriptives(data, cb, missing_table=missing).set_index("variable")
    # a: answers 1, 1, 3, 5 -> n 4, mean 2.5, sd sqrt(((1.5^2)*2 + 0.5^2 + 2.5^2)/3) = sqrt(11/3)
    assert out.loc["a", "n"] == 4 and out.loc["a", "missing"] == 1
    assert_allclose(out.loc["a", ["missing_pct", "mean", "sd", "floor_pct", "ceiling_pct"]].to_numpy(dtype=float),
                    [20.0, 2.5, np.sqrt(11 / 3), 50.0, 25.0], rtol=1e-12)
    assert_allclose(out.loc["b", ["floor_pct", "ceiling_pct"]].to_numpy(dtype=float), [0.0, 60.0], rtol=1e-12)
    assert out.loc["a", "dont_know"] == 1 and out.loc["a", "skipped"] == 0 and out.loc["b", "dont_know"] == 0


def test_targets_and_factor_map(hs_fits):
    cb = pd.DataFrame({"variable": ITEMS, "latent": ["visual"] * 3 + ["textual"] * 3 + ["speed"] * 3})
    target = efa.hypothesised_target(cb, ITEMS)
    assert list(target.columns) == ["visual", "textual", "speed"] and target.to_numpy().sum() == 9
    fmap = efa.factor_map(hs_fits["fa_minres_oblimin"], target)
    assert list(fmap.columns) == ["factor", "latent", "congruence"]
    assert list(fmap["latent"]) == ["textual", "visual", "speed"]
    truth = {"survey": {"loadings": {i: {"A": 1.0 if i in ("x1", "x2") else 0.0, "B": 0.5} for i in ITEMS}}}
    tl = efa.true_loadings(truth, ["x2", "x1"])
    assert list(tl.index) == ["x2", "x1"] and list(tl.columns) == ["A", "B"]
    with pytest.raises(AnalysisError, match="no loadings for x10"):
        efa.true_loadings(truth, ["x10"])
    with pytest.raises(AnalysisError, match="no hypothesised factor"):
        efa.hypothesised_target(cb.assign(latent=None), ITEMS)


def test_scores_table(hs_data, hs_fits):
    res = hs_fits["fa_minres_oblimin"]
    table = efa.scores_table(res, hs_data, id_column="id", group_column="school", method="tenberge")
    assert list(table.columns) == ["respondent_id", "school", "F1", "F2", "F3"]
    assert len(table) == 301 and table["respondent_id"].tolist() == hs_data["id"].tolist()


def test_choose_n_factors():
    sugg = {"parallel": 3, "kaiser": 4, "map": 2, "hypothesised": 3}
    assert efa.choose_n_factors("auto", rule="kaiser", n_items=9, suggestions=sugg).n_factors == 4
    fixed = efa.choose_n_factors(2, rule="parallel", n_items=9, suggestions=sugg)
    assert fixed.n_factors == 2 and fixed.rule == "fixed" and not fixed.capped
    capped = efa.choose_n_factors("auto", rule="parallel", n_items=9, suggestions={"parallel": 7})
    assert capped.n_factors == 5 and capped.capped
    assert efa.choose_n_factors("auto", rule="map", n_items=9, suggestions={"map": 0}).n_factors == 1
    with pytest.raises(AnalysisError, match="gave no suggestion"):
        efa.choose_n_factors("auto", rule="map", n_items=9, suggestions={"map": None, "parallel": 3})


def test_small_report_helpers(hs_fits, hs_reference):
    # Kaiser (1974) labels; the Holzinger-Swineford KMO from psych::KMO(x) is 0.752 -> "middling"
    assert efa.msa_label(hs_reference["kmo_overall"]) == "kmo_middling"
    assert [efa.msa_label(v) for v in (0.95, 0.85, 0.65, 0.55, 0.3)] == [
        "kmo_marvelous", "kmo_meritorious", "kmo_mediocre", "kmo_miserable", "kmo_unacceptable"]
    res = hs_fits["fa_minres_oblimin"]
    assert efa.weak_items(res, cutoff=0.3) == [] and efa.weak_items(res, cutoff=0.6) == ["x1", "x2", "x9"]
    desc = pd.DataFrame({"variable": ["a", "b"], "ceiling_pct": [50.0, 50.1]})
    assert efa.ceiling_items(desc, share=50) == ["b"]
    table = efa.variance_table(res)
    assert list(table["statistic"]) == ["ss_loadings", "proportion_var", "cumulative_var",
                                        "proportion_explained", "cumulative_proportion"]
    # psych::fa(x, 3, rotate='oblimin', fm='minres')$Vaccounted
    assert_allclose(table[["F1", "F2", "F3"]].to_numpy(), hs_reference["fa_minres_oblimin"]["Vaccounted"],
                    atol=TOL)


def test_figures_render(hs_fits):
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    from research.plots import efa as plots

    res = hs_fits["fa_minres_oblimin"]
    table = efa.sorted_loadings(res)[["F1", "F2", "F3"]]
    figures = [plots.correlation_heatmap(res.corr, lang="lt"),
               plots.scree_plot([2.6, 0.9, 0.5, -0.1], simulated=[0.6, 0.2, 0.1, 0.0],
                                simulated_upper=[1.0, 0.3, 0.2, 0.1], n_factors=3, lang="en"),
               plots.loading_heatmap(table, cutoff=0.3, lang="lt"),
               plots.factor_diagram(table, cutoff=0.3, phi=res.aliased("phi"), item_labels={"x1": "$x_1$"})]
    assert all(isinstance(f, Figure) for f in figures)
    texts = [t.get_text() for t in figures[3].axes[0].texts]
    assert r"\$x_1\$" in texts  # data labels are escaped, never mathtext


def test_msa_decision(hs_reference):
    # psych::KMO(x)$MSAi: x7 has 0.593, the only item below 0.60
    msa = pd.Series(hs_reference["kmo_items"])
    kept = efa.msa_decision(msa, min_msa=0.6, drop=False)
    assert kept.low == ["x7"] and kept.dropped == [] and kept.kept == ITEMS and kept.text_key == "p_msa_low_kept"
    dropped = efa.msa_decision(msa, min_msa=0.6, drop=True)
    assert dropped.dropped == ["x7"] and "x7" not in dropped.kept and dropped.text_key == "p_msa_low_dropped"
    assert efa.msa_decision(msa, min_msa=0.5, drop=True).text_key == "p_msa_ok"
    with pytest.raises(AnalysisError, match="leaves 0 item"):
        efa.msa_decision(msa, min_msa=0.9, drop=True)


def test_load_truth(demo_cfg):
    from research.errors import ConfigError

    no_truth = demo_cfg.model_copy(update={"data": demo_cfg.data.model_copy(update={"truth": None})})
    assert efa.load_truth(no_truth) is None
    missing = demo_cfg.model_copy(update={"data": demo_cfg.data.model_copy(update={"truth": "data/raw/none.json"})})
    with pytest.raises(ConfigError, match="not found"):
        efa.load_truth(missing)


def test_item_correlations_and_alias_note(hs_items, hs_fits):
    R, n = efa.item_correlations(hs_items)
    assert n == 301
    assert_allclose(R.to_numpy(), np.corrcoef(hs_items.to_numpy(), rowvar=False), atol=1e-12)
    assert efa.alias_note(hs_fits["fa_minres_oblimin"]) == "F1 = MR1, F2 = MR3, F3 = MR2"
    assert efa.factor_map(hs_fits["fa_minres_oblimin"], None)["latent"].isna().all()


def test_reliability_by_factor_matches_psych(hs_items, hs_fits, hs_reference):
    if not hasattr(efa, "cronbach_alpha"):
        pytest.skip("efa.reliability has not landed yet")
    # F2 of the minres/oblimin solution holds x1, x2, x3 (x9's largest loading is on F3)
    table = efa.reliability_by_factor(hs_fits["fa_minres_oblimin"], hs_items, cutoff=0.3).set_index("factor")
    assert table.loc["F2", "items"] == "x3, x1, x2" and table.loc["F2", "n_items"] == 3
    # psych::alpha(x[, c("x1","x2","x3")])$total$raw_alpha (R 4.2.2, psych 2.2.9)
    assert_allclose(table.loc["F2", "alpha"], hs_reference["alpha_x1_x3"]["raw_alpha"], atol=1e-6)
    # psych::omega(x[, c("x1","x2","x3")], nfactors=1)$omega.tot
    assert_allclose(table.loc["F2", "omega"], hs_reference["omega_total_x1_x3_one_factor"], atol=TOL)
    assert table.loc["F2", "ci_low"] < table.loc["F2", "alpha"] < table.loc["F2", "ci_high"]
    assert table.loc["F1", "items"] == "x5, x4, x6" and table.loc["F1", "reversed"] == ""


def test_true_loadings_missing_ok():
    truth = {"survey": {"loadings": {"x1": {"A": 0.7}}}}
    assert efa.true_loadings(truth, ["IMP_1"], missing_ok=True) is None
    with pytest.raises(AnalysisError, match="no loadings for IMP_1"):
        efa.true_loadings(truth, ["x1", "IMP_1"], missing_ok=True)
