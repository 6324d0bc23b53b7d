"""Fast paths of parallel analysis (issue 9, benchmarks): Wishart draws and the loading-space solver.

The simulated correlation matrices are drawn by the Bartlett decomposition and the one-factor minres
solutions of the simulated matrices come from :func:`_one_factor_values_fast`. Both are checked against
other software: scipy's Wishart distribution (moments) and the psych-faithful L-BFGS-B optimiser, which
itself reproduces R psych 2.2.9 ``fa(x, 1)$values`` (tests/test_efa_nfactors.py).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose
from scipy import stats

from research.efa import parallel_analysis, pearson
from research.efa.nfactors import _minres_one_factor, _null_scatter, _one_factor_values_fast


def _null_correlations(n_sets, n, p, seed):
    rng = np.random.default_rng(seed)
    Z = rng.standard_normal((n_sets, n, p))
    Z -= Z.mean(axis=1, keepdims=True)
    C = np.einsum("bni,bnj->bij", Z, Z)
    d = 1 / np.sqrt(np.diagonal(C, axis1=1, axis2=2))
    return C * d[:, :, None] * d[:, None, :]


def test_null_scatter_has_the_wishart_moments():
    # scipy 1.17 stats.wishart(df = n - 1, scale = I): the mean and variances of the Bartlett draws
    n, p = 40, 6
    draws = _null_scatter(n, p, 20000, np.random.default_rng(5))
    reference = stats.wishart(df=n - 1, scale=np.eye(p))
    mean, var = reference.mean(), reference.var()
    assert_allclose(draws.mean(axis=0), mean, atol=4 * np.sqrt(var.max() / len(draws)))
    # the variance of a sample variance needs the fourth moment; 5 % is ~5 standard errors at 20000 draws
    assert_allclose(draws.var(axis=0), var, rtol=0.05)
    assert_allclose(draws, draws.transpose(0, 2, 1))
    # second moments against scipy's own sampler as well (same distribution, independent draws)
    scipy_draws = reference.rvs(size=20000, random_state=np.random.default_rng(6))
    assert_allclose(draws.var(axis=0), scipy_draws.var(axis=0), rtol=0.07)


def test_null_scatter_with_fewer_rows_than_items():
    # singular Wishart (n - 1 < p): simulated data; E W = (n - 1) I and Var W_ij = (n - 1)(1 + delta_ij)
    # (Muirhead 1982, Aspects of Multivariate Statistical Theory, Theorem 3.2.8; also for n - 1 < p)
    n, p = 5, 6
    draws = _null_scatter(n, p, 20000, np.random.default_rng(5))
    var = (n - 1) * (1 + np.eye(p))
    assert_allclose(draws.mean(axis=0), (n - 1) * np.eye(p), atol=4 * np.sqrt(var.max() / len(draws)))
    assert_allclose(draws.var(axis=0), var, rtol=0.05)
    assert np.linalg.matrix_rank(draws[0]) == n - 1


def test_fast_solver_agrees_with_psych_optimiser():
    # the same bar as the eigenvalue-based batched solver (test_efa_nfactors.py): against the per-matrix
    # L-BFGS-B that reproduces psych 2.2.9, most matrices agree closely and the distribution agrees
    R = _null_correlations(300, 301, 9, seed=12)
    fast = _one_factor_values_fast(R)
    scalar = np.array([_minres_one_factor(r).values for r in R])
    close = np.abs(fast - scalar).max(axis=1) < 1e-3
    assert close.mean() > 0.95
    standard_error = scalar.std(axis=0) / np.sqrt(len(R))
    assert (np.abs(fast.mean(axis=0) - scalar.mean(axis=0)) < 2 * standard_error).all()
    assert_allclose(np.quantile(fast, 0.95, axis=0), np.quantile(scalar, 0.95, axis=0), atol=0.02)


@pytest.mark.parametrize("p", [18, 50])
def test_fast_solver_on_larger_null_matrices(p):
    R = _null_correlations(20, 300, p, seed=p)
    fast = _one_factor_values_fast(R)
    scalar = np.array([_minres_one_factor(r).values for r in R])
    assert (np.abs(fast - scalar).max(axis=1) < 1e-3).mean() >= 0.95


def test_fast_solver_on_a_real_structure(hs_items, hs_reference):
    R = pearson(hs_items).to_numpy()
    values = _one_factor_values_fast(np.stack([R, R]))
    # R 4.2.2 psych 2.2.9 fa.parallel(x, fa = "fa")$fa.values (= fa(x, 1)$values), psych's optimiser tolerance
    expected = hs_reference["parallel_analysis"]["fa_values_observed"]
    assert_allclose(values, np.tile(expected, (2, 1)), atol=1e-5)


def test_parallel_analysis_cost_does_not_grow_with_respondents():
    # a million rows: only the observed matrix depends on n (the simulated ones are Wishart draws)
    rng = np.random.default_rng(3)
    data = pd.DataFrame(rng.standard_normal((1_000_000, 6)), columns=[f"v{i}" for i in range(6)])
    result = parallel_analysis(data, n_iter=50, kind="pca", quantile=None, seed=1)
    # null eigenvalues of a correlation matrix of 1e6 rows: 1 +/- about 2 sqrt(p / n) (Marchenko-Pastur edge)
    assert_allclose(result.eigenvalues["simulated_mean"], 1.0, atol=2 * np.sqrt(6 / 1e6) + 1e-3)
    assert result.n_obs == 1_000_000
