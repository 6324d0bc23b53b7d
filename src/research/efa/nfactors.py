"""How many factors? Parallel analysis (psych ``fa.parallel``), Kaiser, scree data, Velicer's MAP.

The observed "factor" eigenvalues of parallel analysis follow psych 2.2.9: they are the eigenvalues of
the correlation matrix whose diagonal holds the communalities of a ONE-factor minres solution
(``fa(x, 1)$values``), found here by the same optimiser psych uses. The simulated part is vectorised
over iterations: the null correlation matrices are drawn directly from their Wishart distribution
(Bartlett decomposition, O(p^2) random numbers per matrix whatever the number of respondents), and the
one-factor minres equations of all matrices are solved at once by a damped Newton method on the loadings
(with the eigenvalue-based solver as the fallback for the matrices it cannot certify).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd
from scipy.optimize import minimize
from threadpoolctl import ThreadpoolController

from ..errors import AnalysisError
from .correlation import _correlation_input, _item_matrix, _pearson_array, _smc, polychoric

__all__ = ["ParallelAnalysisResult", "VelicerMapResult", "kaiser", "parallel_analysis",
           "reduced_eigenvalues", "scree_data", "velicer_map"]

_EPS = np.finfo(float).eps
# psych fac(): uniquenesses are bounded to [.005, 1] in the L-BFGS-B search
_PSI_LOWER, _PSI_UPPER = 0.005, 1.0
# memory budget (number of float64 values) for one block of simulated data sets
_BLOCK_VALUES = 4_000_000
# simulated correlation matrices handled at once (each p x p; several work arrays of that size)
_BLOCK_MATRICES = 500


# --------------------------------------------------------------------------------------------------
# one-factor minres (psych fa(r, nfactors = 1, fm = "minres"))
# --------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _OneFactor:
    loadings: np.ndarray
    uniquenesses: np.ndarray
    values: np.ndarray  # eigenvalues of R with the communalities on the diagonal, descending


def _minres_one_factor(R: np.ndarray) -> _OneFactor:
    """One-factor minres solution exactly as psych 2.2.9 ``fa(R, 1, fm = "minres")`` finds it.

    psych minimises ``fit.residuals`` - the sum of squared lower-triangle residuals of
    :math:`R^* - \\lambda\\lambda'`, where :math:`R^*` is R with :math:`1 - \\psi` on the diagonal and
    :math:`\\lambda` its first eigenvector scaled by the root of its eigenvalue - over the uniquenesses
    :math:`\\psi` with ``optim(method = "L-BFGS-B")`` from :math:`\\psi_0 = 1 - \\mathrm{SMC}`, bounds
    [.005, 1], ``parscale = .01``, its default ``factr = 1e7``, ``lmm = 5``, ``maxit = 100`` and the
    gradient ``FAgr.minres`` (:math:`\\lambda_i^2 + \\psi_i - 1`). scipy's L-BFGS-B is the same
    algorithm; with the same settings it stops at the same point (agreement 1e-14 on the
    Holzinger-Swineford data), which matters because the tolerance leaves the solution about 1e-6
    away from the exact stationary point.
    """
    p = R.shape[0]
    lower = np.tril_indices(p, -1)
    scale = 0.01  # optim's parscale: the optimiser works on psi / parscale

    def leading(psi):
        S = R.copy()
        S[np.diag_indices(p)] = 1.0 - psi
        values, vectors = np.linalg.eigh(S)
        return values[-1], vectors[:, -1], S

    def objective(z):
        psi = z * scale
        value, vector, S = leading(psi)
        value = value if value >= _EPS else 100.0 * _EPS
        loadings = vector * np.sqrt(value)
        residual = (S - np.outer(loadings, loadings))[lower]
        return float(residual @ residual)

    def gradient(z):
        psi = z * scale
        value, vector, _ = leading(psi)
        loadings = vector * np.sqrt(max(value, 0.0))
        return (loadings**2 + psi - 1.0) * scale

    start = 1.0 - _smc(R)
    result = minimize(objective, start / scale, jac=gradient, method="L-BFGS-B",
                      bounds=[(_PSI_LOWER / scale, _PSI_UPPER / scale)] * p,
                      options={"maxcor": 5, "ftol": 1e7 * _EPS, "gtol": 0.0, "maxiter": 100})
    psi = result.x * scale
    value, vector, _ = leading(psi)
    loadings = vector * np.sqrt(max(value, 0.0))
    if loadings.sum() < 0:
        loadings = -loadings
    reduced = R.copy()
    reduced[np.diag_indices(p)] = loadings**2
    values = np.linalg.eigvalsh(reduced)[::-1]
    return _OneFactor(loadings=loadings, uniquenesses=1.0 - loadings**2, values=values)


def _one_factor_values_batched(R: np.ndarray, *, tol: float = 1e-10, max_iter: int = 100,
                               return_communalities: bool = False):
    """Eigenvalues of ``fa(R_b, 1)`` for a batch of correlation matrices ``R`` (B, p, p), vectorised.

    psych minimises the minres criterion (see :func:`_minres_one_factor`) from the SMC start. Its
    stationary points are the fixed points :math:`h = \\theta\\,v \\circ v` of the communalities h,
    with :math:`(\\theta, v)` the leading eigenpair of :math:`R - I + \\operatorname{diag}(h)` (psych's
    gradient ``FAgr.minres`` is exactly :math:`\\theta v_i^2 - h_i`). We solve these equations for all
    matrices at once by a damped Newton method from the same SMC start, with the analytic Jacobian from
    eigenvector perturbation theory,

    .. math:: \\frac{\\partial (\\theta v_i^2)}{\\partial h_j} = v_i^2 v_j^2 + 2\\theta v_i v_j
              \\sum_{m \\ge 2} \\frac{u_{mi} u_{mj}}{\\theta - \\theta_m},

    accepting a (halved, up to three times) Newton step only if it lowers the minres criterion and
    otherwise taking a fixed-point (iterated principal axis) step, which always lowers it - so, like
    psych's optimiser, the method descends from the SMC start. Communalities stay within psych's
    bounds [0, .995]. Matrices not converged after ``max_iter`` steps are solved one by one with the
    psych-faithful L-BFGS-B of :func:`_minres_one_factor`.

    The minres criterion of random data is very flat: psych's L-BFGS-B stops where its relative
    decrease falls below ``factr`` (communalities typically 1e-5 from the stationary point, now and then
    at a different local minimum), so single simulated eigenvalues can differ from psych's; the mean
    and quantiles over iterations agree within Monte Carlo error (tested against the per-matrix
    psych-faithful optimiser).
    """
    B, p, _ = R.shape
    diag = np.arange(p)
    lower = np.tril_indices(p, -1)
    upper_h = 1.0 - _PSI_LOWER

    def evaluate(h, rows):
        M = R[rows].copy()
        M[:, diag, diag] = h
        w, V = np.linalg.eigh(M)
        loadings = V[:, :, -1] * np.sqrt(np.maximum(w[:, -1], 100.0 * _EPS))[:, None]
        residual = M - loadings[:, :, None] * loadings[:, None, :]
        criterion = (residual[:, lower[0], lower[1]] ** 2).sum(axis=1)
        return w, V, criterion

    h = _batched_smc(R)
    w, V, crit = evaluate(h, slice(None))
    converged = np.zeros(B, dtype=bool)
    for _ in range(max_iter):
        theta, v = w[:, -1], V[:, :, -1]
        F = np.clip(np.maximum(theta, 0.0)[:, None] * v**2, 0.0, upper_h) - h
        converged = np.abs(F).max(axis=1) < tol
        if converged.all():
            break
        act = np.nonzero(~converged)[0]  # only the matrices still moving are worked on
        hA, wA, VA, FA, critA = h[act], w[act], V[act], F[act], crit[act]
        thetaA, vA = wA[:, -1], VA[:, :, -1]
        gaps = thetaA[:, None] - wA[:, :-1]
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            C = np.einsum("bim,bjm,bm->bij", VA[:, :, :-1], VA[:, :, :-1], 1.0 / gaps)
            v2 = vA**2
            J = v2[:, :, None] * v2[:, None, :] + 2.0 * thetaA[:, None, None] * vA[:, :, None] * vA[:, None, :] * C
            try:
                direction = np.linalg.solve(J - np.eye(p), -FA[:, :, None])[:, :, 0]
            except np.linalg.LinAlgError:
                direction = np.zeros_like(FA)
        direction = np.where(np.isfinite(direction).all(axis=1)[:, None], direction, 0.0)
        # default: the fixed-point step, which always lowers the criterion
        new_h = hA + FA
        new_w, new_V, new_crit = evaluate(new_h, act)
        pending = np.ones(len(act), dtype=bool)
        for fraction in (1.0, 0.5, 0.25):
            trial_h = np.clip(hA + fraction * direction, 0.0, upper_h)
            trial_w, trial_V, trial_crit = evaluate(trial_h, act)
            accept = pending & (trial_crit <= np.minimum(critA, new_crit) * (1.0 + 1e-12) + 1e-15)
            new_h[accept], new_w[accept], new_V[accept] = trial_h[accept], trial_w[accept], trial_V[accept]
            new_crit[accept] = trial_crit[accept]
            pending &= ~accept
            if not pending.any():
                break
        h[act], w[act], V[act], crit[act] = new_h, new_w, new_V, new_crit
    communalities = np.maximum(w[:, -1], 0.0)[:, None] * V[:, :, -1] ** 2
    for b in np.nonzero(~converged)[0]:
        communalities[b] = _minres_one_factor(R[b]).loadings ** 2
    reduced = R.copy()
    reduced[:, diag, diag] = communalities
    values = np.linalg.eigvalsh(reduced)[:, ::-1]
    if return_communalities:
        return values, communalities
    return values


def _one_factor_values_fast(R: np.ndarray, *, tol: float = 1e-10, max_iter: int = 100) -> np.ndarray:
    """Eigenvalues of ``fa(R_b, 1)`` for a batch ``R`` (B, p, p): Levenberg-Marquardt on the loadings.

    The minres criterion of one factor, :math:`f(\\lambda) = \\sum_{i<j} (r_{ij} - \\lambda_i\\lambda_j)^2`,
    is minimised over the loadings directly. Its gradient and Hessian are closed forms (with
    :math:`s = \\lambda'\\lambda` and :math:`R_0` = R with a zero diagonal),

    .. math:: g = -2\\,(R_0\\lambda - s\\lambda + \\lambda^{3}),\\qquad
              H = 4\\lambda\\lambda' - 2R_0 \\text{ off the diagonal},\\quad H_{ii} = 2(s - \\lambda_i^2),

    so a step costs one batched linear solve instead of the eigen decompositions of
    :func:`_one_factor_values_batched`. The damping starts at :math:`2s` (a short, gradient-like first
    step from the same SMC start as psych) and shrinks by 4 after every step that lowers f, so the method
    descends into the basin psych's L-BFGS-B reaches and ends with quadratic Newton convergence.

    At :math:`g = 0`, :math:`(R_0 + \\operatorname{diag}(\\lambda^2))\\lambda = s\\lambda`: the communalities
    :math:`h = \\lambda^2` are a fixed point of psych's equations exactly when s is the LARGEST eigenvalue of
    R with h on its diagonal. A matrix is accepted only when its gradient is below ``tol``, s equals that
    largest eigenvalue (1e-8) and every communality is within psych's bound .995; the others - mostly
    Heywood cases, where psych's solution sits on the bound - are solved by
    :func:`_one_factor_values_batched`. Tested against the psych-faithful optimiser
    (:func:`_minres_one_factor`) like the batched solver.
    """
    B, p, _ = R.shape
    diag = np.arange(p)
    upper_h = 1.0 - _PSI_LOWER
    R0 = R.copy()
    R0[:, diag, diag] = 0.0
    start = R0.copy()
    start[:, diag, diag] = _batched_smc(R)
    w, V = np.linalg.eigh(start)
    del start
    loadings = V[:, :, -1] * np.sqrt(np.maximum(w[:, -1], 0.0))[:, None]
    del w, V

    # f(t) = sum_{i<j} r_ij^2 - t'R0 t + ((t't)^2 - sum t^4) / 2: one matrix-vector product per matrix
    constant = np.einsum("bij,bij->b", R0, R0) / 2.0

    def criterion(lam: np.ndarray, R0_rows: np.ndarray, c: np.ndarray) -> np.ndarray:
        squares = lam**2
        quad = np.einsum("bi,bij,bj->b", lam, R0_rows, lam)
        return c - quad + (squares.sum(axis=1) ** 2 - (squares**2).sum(axis=1)) / 2.0

    f = criterion(loadings, R0, constant)
    damping = 2.0 * (loadings**2).sum(axis=1) + 1e-3
    active = np.ones(B, dtype=bool)
    converged = np.zeros(B, dtype=bool)
    for _ in range(max_iter):
        rows = np.nonzero(active)[0]
        if rows.size == 0:
            break
        R0_rows = R0 if rows.size == B else R0[rows]  # a view while every matrix is still moving
        lam = loadings[rows]
        s = (lam**2).sum(axis=1)
        g = -2.0 * (np.einsum("bij,bj->bi", R0_rows, lam) - s[:, None] * lam + lam**3)
        done = np.abs(g).max(axis=1) < tol
        converged[rows[done]] = True
        # past psych's bound the solution is psych's bounded one, left to the fallback
        stop = done | ((lam**2).max(axis=1) > upper_h)
        if stop.any():
            active[rows[stop]] = False
            keep = ~stop
            rows, lam, g, s, R0_rows = rows[keep], lam[keep], g[keep], s[keep], R0_rows[keep]
            if rows.size == 0:
                break
        H = lam[:, :, None] * lam[:, None, :]
        H *= 4.0
        H -= 2.0 * R0_rows
        mu = damping[rows]
        H[:, diag, diag] = 2.0 * (s[:, None] - lam**2) + mu[:, None]
        with np.errstate(all="ignore"):
            try:
                step = np.linalg.solve(H, -g[:, :, None])[:, :, 0]
            except np.linalg.LinAlgError:
                step = np.full_like(g, np.nan)
            trial = lam + step
            trial_f = criterion(trial, R0_rows, constant[rows])
        accept = np.isfinite(trial_f) & (trial_f <= f[rows] * (1.0 + 1e-12) + 1e-15)
        loadings[rows[accept]], f[rows[accept]] = trial[accept], trial_f[accept]
        scale = 2.0 * s + 1e-3
        damping[rows] = np.where(accept, np.where(mu < 1e-6 * scale, 0.0, mu / 4.0), np.maximum(4.0 * mu, 1e-3 * scale))
    communalities = loadings**2
    reduced = R0
    reduced[:, diag, diag] = communalities
    values = np.linalg.eigvalsh(reduced)[:, ::-1]
    certified = (converged & (communalities.max(axis=1) <= upper_h)
                 & (np.abs(values[:, 0] - communalities.sum(axis=1)) < 1e-8))
    if not certified.all():
        # 30 iterations: the few matrices still moving by then (slow on psych's bound) go to the
        # psych-faithful L-BFGS-B sooner than after the batched solver's default 100 (1e-6 apart)
        values[~certified] = _one_factor_values_batched(R[~certified], max_iter=30)
    return values


def _batched_smc(R: np.ndarray) -> np.ndarray:
    """Squared multiple correlations of a batch of positive definite correlation matrices (B, p, p)."""
    try:
        inverse_diag = np.diagonal(np.linalg.inv(R), axis1=1, axis2=2)
    except np.linalg.LinAlgError:
        return np.stack([_smc(Rb) for Rb in R])
    return np.clip(1.0 - 1.0 / inverse_diag, 0.0, 1.0)


# --------------------------------------------------------------------------------------------------
# simple rules
# --------------------------------------------------------------------------------------------------
def _components(p: int) -> np.ndarray:
    return np.arange(1, p + 1)


def reduced_eigenvalues(data_or_corr, *, kind: Literal["smc", "fa"] = "smc") -> pd.DataFrame:
    """Eigenvalues of the reduced correlation matrix (communality estimates on the diagonal).

    ``kind="smc"``: diagonal = squared multiple correlations :math:`1 - 1/(R^{-1})_{ii}`
    (psych ``fa.parallel(SMC = TRUE)``); ``kind="fa"``: diagonal = communalities
    :math:`\\lambda_i^2` of a one-factor minres solution (psych ``fa(x, 1)$values``, the observed
    "factor" eigenvalues of ``fa.parallel`` with its default ``SMC = FALSE``).

    Parameters
    ----------
    data_or_corr : pandas.DataFrame
        Item data (Pearson, pairwise complete) or a correlation matrix.
    kind : {"smc", "fa"}
        Communality estimate on the diagonal.

    Returns
    -------
    pandas.DataFrame
        Columns ``component`` (1..p) and ``eigenvalue`` (descending; may be negative).

    Notes
    -----
    Validated against R 4.2.2 psych 2.2.9 on the Holzinger-Swineford items x1..x9: ``kind="smc"``
    against ``eigen(R with smc(R) on the diagonal)`` (6 decimals as stored), ``kind="fa"`` against
    ``fa.parallel(x, fa = "fa")$fa.values`` (= ``fa(x, 1)$values``) to 1e-6.
    """
    R, _, _ = _correlation_input(data_or_corr, what="reduced_eigenvalues")
    if kind == "smc":
        reduced = R.copy()
        reduced[np.diag_indices_from(reduced)] = _smc(R)
        values = np.linalg.eigvalsh(reduced)[::-1]
    elif kind == "fa":
        values = _minres_one_factor(R).values
    else:
        raise AnalysisError(f"reduced_eigenvalues: kind must be 'smc' or 'fa', got {kind!r}")
    return pd.DataFrame({"component": _components(len(values)), "eigenvalue": values})


def scree_data(data_or_corr) -> pd.DataFrame:
    """Eigenvalues of the correlation matrix for a scree plot.

    Returns
    -------
    pandas.DataFrame
        ``component`` (1..p), ``eigenvalue`` (descending), ``proportion`` (eigenvalue / p, the share
        of the total standardised variance) and ``cumulative`` (running sum of ``proportion``).

    Notes
    -----
    Validated against R 4.2.2 ``eigen(cor(x))$values`` on the Holzinger-Swineford items (1e-10).
    """
    R, _, _ = _correlation_input(data_or_corr, what="scree_data")
    values = np.linalg.eigvalsh(R)[::-1]
    p = len(values)
    return pd.DataFrame({"component": _components(p), "eigenvalue": values,
                         "proportion": values / p, "cumulative": np.cumsum(values) / p})


def kaiser(data_or_corr) -> int:
    """Kaiser-Guttman rule: the number of eigenvalues of the correlation matrix greater than 1.

    Notes
    -----
    Counts R 4.2.2 ``eigen(cor(x))$values > 1`` (3 for the Holzinger-Swineford items x1..x9).
    Known to over-extract with many items; prefer :func:`parallel_analysis`.
    """
    R, _, _ = _correlation_input(data_or_corr, what="kaiser")
    return int((np.linalg.eigvalsh(R) > 1.0).sum())


@dataclass(frozen=True)
class VelicerMapResult:
    """Velicer's minimum average partial (MAP) test.

    Attributes
    ----------
    table : pandas.DataFrame
        ``components`` (m = 0..p-1 components partialled out), ``map_squared`` (average squared
        partial correlation, Velicer 1976) and ``map_fourth`` (average fourth power, Velicer, Eaton &
        Fava 2000).
    n_suggested : int
        m with the smallest ``map_squared`` (0 = no component).
    n_suggested_fourth : int
        m with the smallest ``map_fourth``.
    """

    table: pd.DataFrame
    n_suggested: int
    n_suggested_fourth: int


def velicer_map(data_or_corr) -> VelicerMapResult:
    """Velicer's (1976) minimum average partial test, with the fourth-power variant.

    With :math:`A_m` the loadings of the first m principal components (eigenvectors scaled by the roots
    of their eigenvalues), the partial covariance is :math:`C_m = R - A_m A_m'` and the partial
    correlations :math:`R^*_m = D_m^{-1/2} C_m D_m^{-1/2}`, :math:`D_m = \\operatorname{diag}(C_m)`.
    Then

    .. math:: \\mathrm{MAP}_k(m) = \\frac{1}{p(p-1)} \\sum_{i \\ne j} (r^*_{m,ij})^k,\\qquad k = 2, 4,

    for m = 0 (the correlations themselves) .. p-1, and the suggested number of components is the m with
    the smallest value (O'Connor, 2000). psych ``VSS()``'s ``map`` column is ``map_squared`` for
    m = 1..min(8, p-1) (it omits m = 0 and the fourth power).

    Parameters
    ----------
    data_or_corr : pandas.DataFrame
        Item data (Pearson, pairwise complete) or a correlation matrix.

    Returns
    -------
    VelicerMapResult

    Notes
    -----
    Tested against an independent computation from the raw data (regressing every item on the first m
    principal component scores and correlating the residuals) and Velicer's properties
    (``map_squared`` at m = 0 is the mean squared correlation; m = p-1 leaves rank-one residuals whose
    partial correlations are all +/-1). No published psych MAP values for these data were found.

    References
    ----------
    Velicer, W. F. (1976). Determining the number of components from the matrix of partial
    correlations. *Psychometrika*, 41, 321-327.
    Velicer, W. F., Eaton, C. A. & Fava, J. L. (2000). Construct explication through factor or component
    analysis. In R. D. Goffin & E. Helmes (Eds.), *Problems and solutions in human assessment*.
    O'Connor, B. P. (2000). SPSS and SAS programs for determining the number of components using
    parallel analysis and Velicer's MAP test. *Behavior Research Methods*, 32, 396-402.
    """
    R, _, _ = _correlation_input(data_or_corr, what="velicer_map")
    p = R.shape[0]
    values, vectors = np.linalg.eigh(R)
    values, vectors = values[::-1], vectors[:, ::-1]
    A = vectors * np.sqrt(np.clip(values, 0.0, None))
    # C[m] = R - (sum of the first m components' outer products), m = 0..p-1, all at once
    outer = np.einsum("im,jm->mij", A, A)
    explained = np.concatenate([np.zeros((1, p, p)), np.cumsum(outer, axis=0)[:-1]])
    C = R[None] - explained
    d = np.diagonal(C, axis1=1, axis2=2)
    with np.errstate(divide="ignore", invalid="ignore"):
        scale = 1.0 / np.sqrt(d)
        partial = C * scale[:, :, None] * scale[:, None, :]
    off = ~np.eye(p, dtype=bool)
    squared = (partial[:, off] ** 2).sum(axis=1) / (p * (p - 1))
    fourth = (partial[:, off] ** 4).sum(axis=1) / (p * (p - 1))
    # a (near) singular R leaves no residual variance for the last components: undefined there
    undefined = (d <= 1e-12).any(axis=1)
    squared[undefined] = np.nan
    fourth[undefined] = np.nan
    table = pd.DataFrame({"components": np.arange(p), "map_squared": squared, "map_fourth": fourth})
    return VelicerMapResult(table=table, n_suggested=int(np.nanargmin(squared)),
                            n_suggested_fourth=int(np.nanargmin(fourth)))


# --------------------------------------------------------------------------------------------------
# parallel analysis
# --------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ParallelAnalysisResult:
    """Horn's parallel analysis.

    Attributes
    ----------
    eigenvalues : pandas.DataFrame
        One row per component: ``component`` (1..p), ``observed``, ``simulated_mean``,
        ``simulated_quantile`` (the ``quantile`` of the simulated eigenvalues; equals the mean when
        ``quantile`` is None).
    n_suggested : int
        Number of leading observed eigenvalues above the simulated reference (psych ``nfact`` /
        ``ncomp``).
    kind : str
        ``"fa"`` (one-factor minres reduced eigenvalues) or ``"pca"`` (eigenvalues of R).
    corr : str
        ``"pearson"`` or ``"polychoric"`` (observed matrix only; simulated data are always normal and
        Pearson-correlated, as in psych).
    n_iter, n_obs : int
        Simulated data sets; rows of each (= rows of the data).
    quantile : float or None
        Quantile used as the reference (None = the mean).
    seed : int
        Seed of ``numpy.random.default_rng``.
    """

    eigenvalues: pd.DataFrame
    n_suggested: int
    kind: str
    corr: str
    n_iter: int
    n_obs: int
    quantile: float | None
    seed: int


def _null_scatter(n: int, p: int, size: int, rng: np.random.Generator) -> np.ndarray:
    """``size`` scatter matrices (size, p, p) of n x p standard normal data, centred (Wishart, n - 1 df).

    With n - 1 >= p they are drawn by the Bartlett decomposition: :math:`W = AA'` with A lower
    triangular, :math:`A_{ii} = \\sqrt{\\chi^2_{n-i}}` (i = 1..p) and :math:`A_{ij} \\sim N(0, 1)` below
    the diagonal, which is exactly the distribution of :math:`\\sum_t (z_t - \\bar z)(z_t - \\bar z)'`
    (Bartlett 1933; Anderson 2003, Theorem 7.2.1) at O(p^2) random numbers per matrix instead of n p.
    With fewer rows the data are simulated.
    """
    if n - 1 >= p:
        A = np.zeros((size, p, p))
        below = np.tril_indices(p, -1)
        A[:, below[0], below[1]] = rng.standard_normal((size, below[0].size))
        A[:, np.arange(p), np.arange(p)] = np.sqrt(rng.chisquare(n - 1 - np.arange(p), size=(size, p)))
        return A @ A.transpose(0, 2, 1)
    Z = rng.standard_normal((size, n, p))
    Z -= Z.mean(axis=1, keepdims=True)
    return np.einsum("bni,bnj->bij", Z, Z)


_CONTROLLER: list[ThreadpoolController] = []


def _blas_controller() -> ThreadpoolController:
    """The process's thread-pool controller, found once (scanning the loaded libraries takes ~10 ms)."""
    if not _CONTROLLER:
        _CONTROLLER.append(ThreadpoolController())
    return _CONTROLLER[0]


def _simulated_eigenvalues(n: int, p: int, n_iter: int, kind: str, rng: np.random.Generator) -> np.ndarray:
    """Eigenvalues (n_iter, p) of the correlation matrices of standard normal n x p data sets."""
    if n - 1 >= p:
        block = max(1, min(n_iter, _BLOCK_MATRICES))
    else:
        block = max(1, min(n_iter, _BLOCK_VALUES // (n * p)))
    out = np.empty((n_iter, p))
    # Thousands of small decompositions: BLAS threads only add synchronisation (on a busy 2-core machine a
    # batched 50 x 50 eigh took 40 times longer with two OpenBLAS threads than with one).
    with _blas_controller().limit(limits=1, user_api="blas"):
        for start in range(0, n_iter, block):
            size = min(block, n_iter - start)
            cross = _null_scatter(n, p, size, rng)
            scale = 1.0 / np.sqrt(np.diagonal(cross, axis1=1, axis2=2))
            Rb = cross * scale[:, :, None] * scale[:, None, :]
            Rb[:, np.arange(p), np.arange(p)] = 1.0
            if kind == "pca":
                out[start:start + size] = np.linalg.eigvalsh(Rb)[:, ::-1]
            else:
                out[start:start + size] = _one_factor_values_fast(Rb)
    return out


def parallel_analysis(data, *, n_iter: int = 20, quantile: float | None = 0.95,
                      kind: Literal["fa", "pca"] = "fa", corr: Literal["pearson", "polychoric"] = "pearson",
                      seed: int) -> ParallelAnalysisResult:
    """Horn's (1965) parallel analysis as R psych 2.2.9 ``fa.parallel`` (simulated normal data).

    Observed eigenvalues: for ``kind="pca"`` those of the correlation matrix R; for ``kind="fa"`` those
    of R with the communalities of a one-factor minres solution on the diagonal (psych's default
    ``SMC = FALSE``: ``fa(R, 1)$values``, see :func:`reduced_eigenvalues`). Reference eigenvalues:
    ``n_iter`` data sets of n x p independent standard normal values (n = number of rows of ``data``)
    are Pearson-correlated and treated the same way (for ``"fa"``, a one-factor minres solution of each
    simulated matrix, as psych). The suggested number is how many leading observed eigenvalues exceed
    the reference, counting from the first until the first that does not (psych:
    ``which(!(observed > reference))[1] - 1``).

    Parameters
    ----------
    data : pandas.DataFrame
        Item data (one column per item; missing as NaN, correlations pairwise complete).
    n_iter : int
        Number of simulated data sets (psych default 20; use 200-1000 for a stable reference).
    quantile : float or None
        Reference quantile of the simulated eigenvalues (R quantile type 7). None compares with the
        simulated means - which is what psych does unless ``quant`` is passed explicitly (its
        ``values.ci`` is the mean when ``missing(quant)``).
    kind : {"fa", "pca"}
        Factor (reduced) or component eigenvalues.
    corr : {"pearson", "polychoric"}
        Correlations of the observed data (:func:`pearson` or :func:`polychoric`).
    seed : int
        Seed for ``numpy.random.default_rng``; the same seed gives the same result.

    Returns
    -------
    ParallelAnalysisResult

    Raises
    ------
    AnalysisError
        Bad data (see :func:`pearson`, :func:`polychoric`), fewer than 3 items, bad options.

    Notes
    -----
    Validated against R 4.2.2 psych 2.2.9 on the Holzinger-Swineford items x1..x9: the observed
    "fa" eigenvalues equal ``fa.parallel(x, fa = "fa")$fa.values`` to 1e-6 and the suggested number of
    factors is psych's 3 (``fa.parallel(x, fa = "fa", quant = .95)``). Simulated eigenvalues depend on
    the random numbers and are compared with their known distribution in tests instead.
    Differences from psych: no resampling of the observed data (psych also does it for raw data, but
    with ``sim = TRUE`` bases ``nfact`` on the simulated data only); the simulated one-factor solutions
    are solved to the exact stationary point (psych's optimiser stops about 1e-6 short of it).
    Vectorised: the null correlation matrices are drawn from their exact (Wishart) distribution by
    the Bartlett decomposition, so the cost does not grow with the number of respondents, and are
    decomposed in batches (``numpy.linalg.eigvalsh``; for ``"fa"`` the batched Levenberg-Marquardt
    solve of :func:`_one_factor_values_fast`). The random stream differs from simulating data row by row,
    so simulated values of a given seed differ from versions before that change (same distribution).
    """
    what = "parallel_analysis"
    if kind not in ("fa", "pca"):
        raise AnalysisError(f"{what}: kind must be 'fa' or 'pca', got {kind!r}")
    if corr not in ("pearson", "polychoric"):
        raise AnalysisError(f"{what}: corr must be 'pearson' or 'polychoric', got {corr!r}")
    if int(n_iter) != n_iter or n_iter < 1:
        raise AnalysisError(f"{what}: n_iter must be a positive whole number, got {n_iter}")
    if quantile is not None and not 0.0 < quantile < 1.0:
        raise AnalysisError(f"{what}: quantile must lie strictly between 0 and 1 (or be None), got {quantile}")
    X, names = _item_matrix(data, what=what, min_items=3)
    n, p = X.shape
    if corr == "polychoric":
        R = polychoric(pd.DataFrame(X, columns=names)).rho.to_numpy()
    else:
        R = _pearson_array(X, names, what=what)  # X is already validated: no second copy of the data
    observed = np.linalg.eigvalsh(R)[::-1] if kind == "pca" else _minres_one_factor(R).values

    rng = np.random.default_rng(seed)
    simulated = _simulated_eigenvalues(n, p, int(n_iter), kind, rng)
    mean = simulated.mean(axis=0)
    reference = mean if quantile is None else np.quantile(simulated, quantile, axis=0)
    below = np.nonzero(~(observed > reference))[0]
    n_suggested = int(below[0]) if below.size else p
    if not below.size:
        warnings.warn(f"{what}: every observed eigenvalue exceeds the simulated reference; "
                      f"n_suggested set to the number of items ({p})", UserWarning, stacklevel=2)
    table = pd.DataFrame({"component": _components(p), "observed": observed, "simulated_mean": mean,
                          "simulated_quantile": reference})
    return ParallelAnalysisResult(eigenvalues=table, n_suggested=n_suggested, kind=kind, corr=corr,
                                  n_iter=int(n_iter), n_obs=int(n), quantile=quantile, seed=int(seed))
