"""Pearson, polychoric and smoothing against R psych 2.2.9, scipy and pandas."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose
from scipy import optimize, stats

from research.efa import PolychoricResult, bivariate_normal_cdf, pearson, polychoric, smooth_corr
from research.errors import AnalysisError

ORDINAL_ITEMS = [f"x{i}" for i in range(1, 10)]


# --- bivariate normal ------------------------------------------------------------------------------
def _scipy_bvn(h, k, r):
    return stats.multivariate_normal.cdf([h, k], mean=[0.0, 0.0], cov=[[1.0, r], [r, 1.0]])


def test_bivariate_normal_cdf_matches_scipy():
    # scipy 1.17 multivariate_normal.cdf: Genz's MVNDST, deterministic bivariate routine in 2-D
    rng = np.random.default_rng(11)
    h = rng.normal(scale=2.0, size=400)
    k = rng.normal(scale=2.0, size=400)
    r = rng.uniform(-0.999, 0.999, size=400)
    r[:80] = np.sign(r[:80]) * rng.uniform(0.925, 0.99999, size=80)  # Genz's high-|rho| branch
    r[80:100] = 0.0
    expected = np.array([_scipy_bvn(a, b, c) for a, b, c in zip(h, k, r, strict=True)])
    assert_allclose(bivariate_normal_cdf(h, k, r), expected, rtol=0, atol=1e-12)


def test_bivariate_normal_cdf_limits():
    k = np.array([-1.3, 0.0, 0.7])
    # P(X <= inf, Y <= k) = Phi(k) (scipy.stats.norm); a -inf limit gives 0; r = +/-1 are the Frechet bounds
    assert_allclose(bivariate_normal_cdf(np.inf, k, 0.4), stats.norm.cdf(k), atol=1e-15)
    assert_allclose(bivariate_normal_cdf(k, np.inf, -0.4), stats.norm.cdf(k), atol=1e-15)
    assert_allclose(bivariate_normal_cdf(-np.inf, k, 0.4), 0.0)
    assert_allclose(bivariate_normal_cdf(np.inf, np.inf, 0.4), 1.0)
    assert_allclose(bivariate_normal_cdf(k, 0.2, 1.0), stats.norm.cdf(np.minimum(k, 0.2)), atol=1e-15)
    assert_allclose(bivariate_normal_cdf(k, 0.2, -1.0),
                    np.maximum(0.0, stats.norm.cdf(k) + stats.norm.cdf(0.2) - 1.0), atol=1e-15)
    with pytest.raises(AnalysisError, match="rho"):
        bivariate_normal_cdf(0.0, 0.0, 1.5)


# --- Pearson ---------------------------------------------------------------------------------------
def test_pearson_eigenvalues_match_r(hs_items, hs_reference):
    # R 4.2.2: eigen(cor(x))$values, x = Holzinger-Swineford x1..x9
    R = pearson(hs_items)
    assert list(R.columns) == list(hs_items.columns) == list(R.index)
    assert_allclose(np.linalg.eigvalsh(R.to_numpy())[::-1], hs_reference["eigen_observed_cor"], rtol=0, atol=1e-10)


def test_pearson_pairwise_matches_pandas(hs_items):
    # pandas 3.1 DataFrame.corr() uses pairwise-complete observations with the pair's own means (= R's
    # cor(use = "pairwise")); knock out 15% of the answers at random
    rng = np.random.default_rng(5)
    data = hs_items.mask(rng.random(hs_items.shape) < 0.15)
    assert_allclose(pearson(data).to_numpy(), data.corr().to_numpy(), rtol=0, atol=1e-12)


def test_pearson_accepts_nullable_dtypes(hs_items):
    data = hs_items.astype("Float64")
    data.iloc[3, 2] = pd.NA
    expected = hs_items.mask(data.isna()).corr()
    assert_allclose(pearson(data).to_numpy(), expected.to_numpy(), atol=1e-12)


@pytest.mark.parametrize(("frame", "message"), [
    (pd.DataFrame({"a": [1.0, 2.0, 3.0, 4.0], "b": ["x", "y", "z", "w"]}), "column 'b' is not numeric"),
    (pd.DataFrame({"a": [1.0, 2.0, 3.0, 4.0], "b": [2.0, 2.0, 2.0, 2.0]}), "'b' has zero variance"),
    (pd.DataFrame({"a": [1.0, 2.0], "b": [2.0, 1.0]}), "2 rows; expected at least 3"),
    (pd.DataFrame({"a": [1.0, 2.0, 3.0, 4.0]}), "expected at least 2"),
    (pd.DataFrame({"a": [1.0, 2.0, np.inf, 4.0], "b": [1.0, 3.0, 2.0, 4.0]}), "infinite"),
    (pd.DataFrame({"a": [1.0, 2.0, 3.0, np.nan, np.nan, np.nan], "b": [np.nan, np.nan, np.nan, 1.0, 2.0, 3.0]}),
     "answered by only 0"),
])
def test_pearson_bad_input(frame, message):
    with pytest.raises(AnalysisError, match=message):
        pearson(frame)


# --- polychoric ------------------------------------------------------------------------------------
def test_polychoric_matches_psych(hs_ordinal, hs_reference):
    # R 4.2.2 psych 2.2.9: pc <- polychoric(xo[, paste0("x", 1:9)]); pc$rho, pc$tau
    result = polychoric(hs_ordinal[ORDINAL_ITEMS])
    assert isinstance(result, PolychoricResult)
    expected_rho = np.array(hs_reference["ordinal"]["polychoric_rho"])
    expected_tau = np.array(hs_reference["ordinal"]["polychoric_tau"])
    # psych's optimize() stops at about 1e-4 and its cells come from mnormt::sadmvn: agreement 2e-5
    assert_allclose(result.rho.to_numpy(), expected_rho, rtol=0, atol=1e-4)
    assert_allclose(result.tau.to_numpy(), expected_tau, rtol=0, atol=1e-10)  # closed form qnorm(cumsum)
    assert list(result.tau.columns) == ["t1", "t2", "t3", "t4"]
    assert result.n_obs == 301
    assert result.smoothed is False


def test_polychoric_continuity_correction_is_inert_in_psych_2_2_9(hs_ordinal, hs_reference):
    # psych 2.2.9 accepts correct = .5 but, with global thresholds, never applies it: the reference
    # values (made with the default correct = .5) are matched only without the correction. The pairs
    # x4-x5, x4-x6, x5-x6 have empty cells.
    expected = np.array(hs_reference["ordinal"]["polychoric_rho"])
    corrected = polychoric(hs_ordinal[ORDINAL_ITEMS], correct=0.5).rho.to_numpy()
    assert np.abs(corrected - expected)[3, 4] > 0.005
    others = np.ones((9, 9), dtype=bool)
    others[[3, 3, 4, 4, 5, 5], [4, 5, 3, 5, 3, 4]] = False
    assert_allclose(corrected[others], expected[others], atol=1e-4)


def test_polychoric_binary_items_are_saturated():
    # For two dichotomous items the 2 x 2 model is saturated: the ML rho solves
    # Phi2(tau1, tau2; rho) = n00 / n exactly (root found independently with scipy brentq + scipy cdf).
    a = np.array([0] * 40 + [0] * 25 + [1] * 15 + [1] * 70)
    b = np.array([0] * 40 + [1] * 25 + [0] * 15 + [1] * 70)
    result = polychoric(pd.DataFrame({"a": a, "b": b}))
    tau_a = stats.norm.ppf(65 / 150)
    tau_b = stats.norm.ppf(55 / 150)
    expected = optimize.brentq(lambda r: _scipy_bvn(tau_a, tau_b, r) - 40 / 150, -0.99, 0.99, xtol=1e-13)
    assert_allclose(result.rho.loc["a", "b"], expected, atol=1e-7)
    assert_allclose(result.tau.to_numpy().ravel(), [tau_a, tau_b], atol=1e-12)


def test_polychoric_empty_category_drops_out(hs_ordinal):
    # nobody answers 3 on x1 (3 -> 4): on the common 1..5 scale x1 has two equal thresholds and the
    # empty row has probability 0, so the likelihood is that of x1 recoded to four categories
    data = hs_ordinal[["x1", "x2", "x3"]].copy()
    data.loc[data["x1"] == 3, "x1"] = 4
    result = polychoric(data)
    assert_allclose(result.tau.loc["x1", "t2"], result.tau.loc["x1", "t3"])
    recoded = data.copy()
    recoded["x1"] = recoded["x1"].replace({4: 3, 5: 4})
    assert_allclose(polychoric(recoded).rho.loc["x1", ["x2", "x3"]].to_numpy(),
                    result.rho.loc["x1", ["x2", "x3"]].to_numpy(), atol=1e-9)


def test_polychoric_unidentified_threshold_is_nan():
    rng = np.random.default_rng(2)
    data = pd.DataFrame({"a": rng.integers(1, 6, 200), "b": rng.integers(1, 5, 200)})  # b never 5
    result = polychoric(data)
    assert np.isnan(result.tau.loc["b", "t4"])
    assert np.isfinite(result.tau.loc["a"]).all()
    assert np.isfinite(result.rho.to_numpy()).all()


def test_polychoric_recovers_latent_correlation_at_scale():
    # 100 000 respondents: latent bivariate normal with rho = .6 cut into 5 categories
    rng = np.random.default_rng(3)
    latent = rng.multivariate_normal([0, 0, 0], [[1, .6, .3], [.6, 1, .45], [.3, .45, 1]], size=100_000)
    cuts = np.array([-1.2, -0.4, 0.3, 1.1])
    data = pd.DataFrame(np.searchsorted(cuts, latent) + 1, columns=["a", "b", "c"])
    result = polychoric(data)
    assert_allclose(result.rho.to_numpy()[np.triu_indices(3, 1)], [.6, .3, .45], atol=0.01)
    assert_allclose(result.tau.to_numpy(), np.tile(cuts, (3, 1)), atol=0.02)


def test_polychoric_pairwise_missing(hs_ordinal):
    rng = np.random.default_rng(8)
    complete = hs_ordinal[ORDINAL_ITEMS]
    data = complete.mask(rng.random(complete.shape) < 0.1).astype("Float64")
    result = polychoric(data)
    assert result.n_obs == len(data)
    assert np.isfinite(result.rho.to_numpy()).all()
    assert np.abs(result.rho.to_numpy() - polychoric(complete).rho.to_numpy()).max() < 0.15


def test_polychoric_smooths_non_positive_definite():
    # pairwise missing data from three disjoint groups of respondents: a-b and b-c strongly positive,
    # a-c strongly negative - an impossible pattern that psych smooths with cor.smooth
    rng = np.random.default_rng(4)
    cuts = np.array([-0.8, 0.0, 0.8])

    def pair(r):
        z = rng.multivariate_normal([0, 0], [[1, r], [r, 1]], size=300)
        return np.searchsorted(cuts, z) + 1.0

    ab, bc, ac = pair(0.9), pair(0.9), pair(-0.9)
    nan = np.full(300, np.nan)
    data = pd.DataFrame({"a": np.concatenate([ab[:, 0], nan, ac[:, 0]]),
                         "b": np.concatenate([ab[:, 1], bc[:, 0], nan]),
                         "c": np.concatenate([nan, bc[:, 1], ac[:, 1]])})
    with pytest.warns(UserWarning, match="not positive definite"):
        result = polychoric(data)
    assert result.smoothed is True
    assert np.linalg.eigvalsh(result.rho.to_numpy()).min() > 0
    assert_allclose(np.diag(result.rho.to_numpy()), 1.0)
    raw = polychoric(data, smooth=False)
    assert raw.smoothed is False
    assert np.linalg.eigvalsh(raw.rho.to_numpy()).min() < 0


@pytest.mark.parametrize(("frame", "message"), [
    (pd.DataFrame({"a": [1, 2, 3, 2.5], "b": [1, 2, 3, 1]}), "non-integer"),
    (pd.DataFrame({"a": [1, 2, 3, 12], "b": [1, 2, 3, 1]}), "12 categories"),
    (pd.DataFrame({"a": [1, 2, 3, 2], "b": [3, 3, 3, 3]}), "zero variance"),
    (pd.DataFrame({"a": ["1", "2", "3"], "b": [1, 2, 3]}), "not numeric"),
    (pd.DataFrame({"a": [1, 2, 1, np.nan, np.nan, np.nan], "b": [np.nan, np.nan, np.nan, 1, 2, 2]}),
     "never answered by the same respondent"),
])
def test_polychoric_bad_input(frame, message):
    with pytest.raises(AnalysisError, match=message):
        polychoric(frame)


# --- smoothing -------------------------------------------------------------------------------------
def test_smooth_corr_repairs_non_positive_definite_matrix():
    bad = np.array([[1.0, 0.9, -0.9], [0.9, 1.0, 0.9], [-0.9, 0.9, 1.0]])
    assert np.linalg.eigvalsh(bad).min() < 0
    frame = pd.DataFrame(bad, index=list("abc"), columns=list("abc"))
    with pytest.warns(UserWarning, match="not positive definite"):
        smoothed, changed = smooth_corr(frame)
    assert changed
    assert list(smoothed.columns) == list("abc")
    S = smoothed.to_numpy()
    assert_allclose(np.diag(S), 1.0)
    assert_allclose(S, S.T)
    assert np.linalg.eigvalsh(S).min() > 0
    # psych cor.smooth, written out: eigenvalues < 1e-12 -> 1e-10, rescaled to sum to p, then cov2cor
    w, V = np.linalg.eigh(bad)
    w = np.where(w < 1e-12, 1e-10, w)
    w = w * 3 / w.sum()
    M = V @ np.diag(w) @ V.T
    d = np.sqrt(np.diag(M))
    assert_allclose(S, M / np.outer(d, d), atol=1e-12)


def test_smooth_corr_leaves_positive_definite_matrix(hs_items):
    R = pearson(hs_items)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        same, changed = smooth_corr(R)
    assert changed is False
    assert same is R
