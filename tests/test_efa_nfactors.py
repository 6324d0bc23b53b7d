"""Number-of-factors rules against R psych 2.2.9 and independent computations."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose
from scipy import stats

from research.efa import (
    ParallelAnalysisResult,
    kaiser,
    parallel_analysis,
    pearson,
    reduced_eigenvalues,
    scree_data,
    velicer_map,
)
from research.efa.nfactors import _minres_one_factor, _one_factor_values_batched
from research.errors import AnalysisError

ORDINAL_ITEMS = [f"x{i}" for i in range(1, 10)]


def test_fa_reduced_eigenvalues_match_psych(hs_items, hs_reference):
    # R 4.2.2 psych 2.2.9: fa.parallel(x, fa = "fa")$fa.values (= fa(x, 1)$values, one-factor minres)
    result = reduced_eigenvalues(hs_items, kind="fa")
    assert list(result.columns) == ["component", "eigenvalue"]
    assert_allclose(result["eigenvalue"], hs_reference["parallel_analysis"]["fa_values_observed"], rtol=0, atol=1e-6)


def test_smc_reduced_eigenvalues_match_psych(hs_items, hs_reference):
    # R 4.2.2 psych 2.2.9: R <- cor(x); diag(R) <- smc(R); eigen(R)$values (stored with 6 decimals)
    result = reduced_eigenvalues(pearson(hs_items), kind="smc")
    assert_allclose(result["eigenvalue"], hs_reference["parallel_analysis"]["smc_reduced_eigenvalues"],
                    rtol=0, atol=1e-6)
    with pytest.raises(AnalysisError, match="kind"):
        reduced_eigenvalues(hs_items, kind="pc")


def test_scree_and_kaiser_match_r(hs_items, hs_reference):
    # R 4.2.2: eigen(cor(x))$values
    expected = np.array(hs_reference["eigen_observed_cor"])
    scree = scree_data(hs_items)
    assert_allclose(scree["eigenvalue"], expected, rtol=0, atol=1e-10)
    assert_allclose(scree["proportion"], expected / 9, atol=1e-10)
    assert_allclose(scree["cumulative"].iloc[-1], 1.0, atol=1e-12)
    assert list(scree["component"]) == list(range(1, 10))
    assert kaiser(hs_items) == int((expected > 1).sum()) == 3


def test_parallel_analysis_matches_psych(hs_items, hs_reference):
    # R 4.2.2 psych 2.2.9: fa.parallel(x, fa = "fa", quant = .95): fa.values and nfact = 3
    reference = hs_reference["parallel_analysis"]
    result = parallel_analysis(hs_items, n_iter=100, quantile=0.95, kind="fa", seed=20261204)
    assert isinstance(result, ParallelAnalysisResult)
    table = result.eigenvalues
    assert list(table.columns) == ["component", "observed", "simulated_mean", "simulated_quantile"]
    assert_allclose(table["observed"], reference["fa_values_observed"], rtol=0, atol=1e-6)
    assert result.n_suggested == reference["suggested_n_factors"] == 3
    assert (result.n_iter, result.n_obs, result.kind, result.corr) == (100, 301, "fa", "pearson")
    # psych's default (quant not passed) compares with the simulated means
    assert parallel_analysis(hs_items, n_iter=100, quantile=None, seed=1).n_suggested == 3


def test_parallel_analysis_is_deterministic(hs_items):
    first = parallel_analysis(hs_items, n_iter=30, kind="pca", seed=7)
    again = parallel_analysis(hs_items, n_iter=30, kind="pca", seed=7)
    other = parallel_analysis(hs_items, n_iter=30, kind="pca", seed=8)
    pd.testing.assert_frame_equal(first.eigenvalues, again.eigenvalues)
    assert not np.allclose(first.eigenvalues["simulated_mean"], other.eigenvalues["simulated_mean"])


def test_parallel_analysis_pca_simulation(hs_items, hs_reference):
    result = parallel_analysis(hs_items, n_iter=400, kind="pca", seed=3)
    table = result.eigenvalues
    assert_allclose(table["observed"], hs_reference["eigen_observed_cor"], atol=1e-10)
    # every simulated correlation matrix has trace p, so the mean eigenvalues sum to p = 9
    assert_allclose(table["simulated_mean"].sum(), 9.0, atol=1e-10)
    assert (np.diff(table["simulated_mean"]) < 0).all()
    assert (table["simulated_quantile"] > table["simulated_mean"]).iloc[:3].all()
    assert result.n_suggested == 3
    # the same null distribution drawn another way: scipy's Wishart sampler gives the scatter matrix of
    # n = 301 normal observations (df = n - 1); its correlation eigenvalues must have the same means
    W = stats.wishart(df=300, scale=np.eye(9)).rvs(size=2000, random_state=np.random.default_rng(9))
    d = 1 / np.sqrt(np.diagonal(W, axis1=1, axis2=2))
    wishart_values = np.linalg.eigvalsh(W * d[:, :, None] * d[:, None, :])[:, ::-1]
    simulated_se = np.sqrt(wishart_values.var(axis=0) / 400 + wishart_values.var(axis=0) / 2000)
    assert (np.abs(table["simulated_mean"] - wishart_values.mean(axis=0)) < 4 * simulated_se).all()


def test_parallel_analysis_polychoric(hs_ordinal, hs_reference):
    result = parallel_analysis(hs_ordinal[ORDINAL_ITEMS], n_iter=50, corr="polychoric", kind="pca", seed=1)
    expected = np.linalg.eigvalsh(np.array(hs_reference["ordinal"]["polychoric_rho"]))[::-1]
    assert_allclose(result.eigenvalues["observed"], expected, atol=1e-3)
    assert result.corr == "polychoric"


def _null_correlations(n_sets, n, p, seed):
    rng = np.random.default_rng(seed)
    Z = rng.standard_normal((n_sets, n, p))
    Z -= Z.mean(axis=1, keepdims=True)
    C = np.einsum("bni,bnj->bij", Z, Z)
    d = 1 / np.sqrt(np.diagonal(C, axis1=1, axis2=2))
    return C * d[:, :, None] * d[:, None, :]


def test_batched_one_factor_solver_agrees_with_psych_optimiser():
    # the vectorised solver against the per-matrix L-BFGS-B that reproduces psych (test above):
    # most matrices agree closely; the distribution that parallel analysis uses agrees within MC error
    R = _null_correlations(300, 301, 9, seed=12)
    batched = _one_factor_values_batched(R)
    scalar = np.array([_minres_one_factor(r).values for r in R])
    close = np.abs(batched - scalar).max(axis=1) < 1e-3
    assert close.mean() > 0.95
    standard_error = scalar.std(axis=0) / np.sqrt(len(R))
    assert (np.abs(batched.mean(axis=0) - scalar.mean(axis=0)) < 2 * standard_error).all()
    assert_allclose(np.quantile(batched, 0.95, axis=0), np.quantile(scalar, 0.95, axis=0), atol=0.02)


def test_batched_one_factor_solver_on_a_real_structure(hs_items, hs_reference):
    R = pearson(hs_items).to_numpy()
    values = _one_factor_values_batched(np.stack([R, R]))
    # exact stationary point: within psych's optimiser tolerance of fa(x, 1)$values
    assert_allclose(values, np.tile(hs_reference["parallel_analysis"]["fa_values_observed"], (2, 1)), atol=1e-5)


def test_velicer_map_against_data_level_partialling(hs_items):
    # independent computation: partial the first m principal component scores out of the standardised
    # data by least squares, correlate the residuals, average the squared (4th power) off-diagonals
    Z = ((hs_items - hs_items.mean()) / hs_items.std()).to_numpy()
    p = Z.shape[1]
    _, vectors = np.linalg.eigh(np.corrcoef(Z, rowvar=False))
    scores = Z @ vectors[:, ::-1]
    expected_sq, expected_4 = [], []
    for m in range(p - 1):
        if m == 0:
            residual = Z
        else:
            beta, *_ = np.linalg.lstsq(scores[:, :m], Z, rcond=None)
            residual = Z - scores[:, :m] @ beta
        partial = np.corrcoef(residual, rowvar=False)
        off = partial[~np.eye(p, dtype=bool)]
        expected_sq.append(np.mean(off**2))
        expected_4.append(np.mean(off**4))
    result = velicer_map(hs_items)
    table = result.table
    assert list(table["components"]) == list(range(p))
    assert_allclose(table["map_squared"].iloc[: p - 1], expected_sq, atol=1e-10)
    assert_allclose(table["map_fourth"].iloc[: p - 1], expected_4, atol=1e-10)
    # m = p - 1 leaves rank-one residuals: all partial correlations are +/-1
    assert_allclose(table[["map_squared", "map_fourth"]].iloc[-1], [1.0, 1.0], atol=1e-8)
    assert result.n_suggested == int(np.argmin(expected_sq)) == 2
    assert result.n_suggested_fourth == int(np.argmin(expected_4))


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"kind": "pc"}, "kind"),
    ({"corr": "spearman"}, "corr"),
    ({"quantile": 1.5}, "quantile"),
    ({"n_iter": 0}, "n_iter"),
])
def test_parallel_analysis_bad_options(hs_items, kwargs, message):
    with pytest.raises(AnalysisError, match=message):
        parallel_analysis(hs_items, seed=1, **kwargs)


def test_parallel_analysis_bad_data(hs_items):
    with pytest.raises(AnalysisError, match="expected at least 3"):
        parallel_analysis(hs_items[["x1", "x2"]], seed=1)
    data = hs_items.copy()
    data["x5"] = 1.0
    with pytest.raises(AnalysisError, match="zero variance"):
        parallel_analysis(data, seed=1)
