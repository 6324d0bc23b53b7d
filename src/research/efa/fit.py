"""Exploratory factor analysis that reproduces R ``psych::fa`` (psych 2.2.9, GPArotation 2022.10-2).

Extraction
    * ``minres``: psych's ``fit.residuals`` (sum of squared lower-triangle residuals of
      ``S - diag(psi)`` against its rank-k eigen reconstruction) minimised over the uniquenesses
      ``psi`` by L-BFGS-B on ``[0.005, 1]`` from ``psi = 1 - SMC``; loadings ``FAout.wls``.
    * ``ml``: the factanal/psych likelihood ``FAfn`` with its analytic gradient ``FAgr``; loadings
      ``FAout``.
    * ``pa``: iterated principal axes from SMC communalities; stops when the sum of communalities
      changes by less than ``min_err = 0.001`` or after ``max_iter = 50`` iterations (psych's rule).

    factor-analyzer 0.5.1 is not used for extraction: its "minres" objective also sums the diagonal
    residuals (psych's older "uls"), and its "principal" method is a principal-components solution, not
    principal axes. Both differ from psych 2.2.9 by more than 1e-3 in loadings.

Post-processing, in psych's order
    signs of the unrotated factors so that column sums are positive; rotation (see
    :mod:`research.efa.rotation`); signs again (Phi flipped consistently); names ``MR1..``/``ML1..``/
    ``PA1..`` in that (rotated, unsorted) order; columns sorted by the pattern sums of squares
    ``diag(L'L)`` (psych does *not* use Phi for the order); Phi permuted the same way.

Reported quantities
    communalities ``diag(L Phi L')``; uniquenesses ``1 - h2``; psych's ``Vaccounted`` with
    ``SS loadings = diag(Phi L'L)`` for oblique solutions; fit indices as ``psych::fa.stats``.

Raw data: ``missing="pairwise"`` (psych's default ``use = "pairwise"``) or ``"listwise"``; with pairwise
deletion ``n_obs`` is the number of respondents with at least one answer (psych uses the number of rows).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pandas as pd
from scipy import optimize, stats

from ..errors import AnalysisError
from .rotation import rotate_loadings

__all__ = ["FitIndices", "EFAResult", "CongruenceResult", "fit_efa", "factor_scores", "score_weights",
           "congruence", "factor_degrees_of_freedom", "max_factors", "item_descriptives", "low_msa_items",
           "sorted_loadings", "cross_loading_items", "loading_display", "loadings_long", "hypothesised_target",
           "true_loadings", "factor_map", "scores_table", "FactorNumberChoice", "choose_n_factors", "msa_label", "weak_items",
           "ceiling_items", "variance_table", "item_correlations", "MsaDecision", "msa_decision", "load_truth",
           "alias_note", "reliability_by_factor", "p_phrase", "label_items",
           "missing_answers"]

Method = Literal["minres", "ml", "pa"]
RotationName = Literal["oblimin", "varimax", "promax", "none"]
LOWER_BOUND = 0.005  # psych/factanal lower bound of the uniquenesses in minres and ml
HEYWOOD_COMMUNALITY = 1.0 - LOWER_BOUND
_PREFIX = {"minres": "MR", "ml": "ML", "pa": "PA"}
_EPS = np.finfo(float).eps


# --- small helpers -----------------------------------------------------------------------------------
def factor_degrees_of_freedom(n_items: int, n_factors: int) -> float:
    """Degrees of freedom of an exploratory factor model: ``((p - k)^2 - (p + k)) / 2``."""
    return ((n_items - n_factors) ** 2 - (n_items + n_factors)) / 2


def max_factors(n_items: int) -> int:
    """The largest number of factors with non-negative degrees of freedom for ``n_items`` items."""
    k = 0
    while k + 1 <= n_items and factor_degrees_of_freedom(n_items, k + 1) >= 0:
        k += 1
    return k


def _smc(R: np.ndarray) -> np.ndarray:
    """Squared multiple correlations ``1 - 1/diag(R^-1)`` (psych ``smc``), clipped to [0, 1]."""
    inv = np.linalg.inv(R)
    return np.clip(1.0 - 1.0 / np.diag(inv), 0.0, 1.0)


def _top_eigen(S: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    values, vectors = np.linalg.eigh(S)
    return values[::-1][:k], vectors[:, ::-1][:, :k]


def _is_positive_definite(R: np.ndarray) -> bool:
    return bool(np.linalg.eigvalsh(R).min() > _EPS)


def _smooth(R: pd.DataFrame, why: str) -> pd.DataFrame:
    """Smooth a non-positive-definite correlation matrix with psych ``cor.smooth`` and warn."""
    from . import correlation

    smooth_corr = getattr(correlation, "smooth_corr", None)
    if smooth_corr is None:  # pragma: no cover - only until correlation.smooth_corr lands
        raise AnalysisError(f"the correlation matrix is not positive definite ({why}) and smoothing "
                            "(efa.smooth_corr) is not available yet")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # the warning below says more
        smoothed, changed = smooth_corr(R)
    if changed:
        warnings.warn(f"the correlation matrix is not positive definite ({why}); it was smoothed "
                      "(psych cor.smooth: eigenvalues below machine epsilon raised and the matrix rescaled)",
                      stacklevel=3)
    smoothed = pd.DataFrame(np.asarray(smoothed, dtype=float), index=R.index, columns=R.columns)
    return smoothed


# --- input ----------------------------------------------------------------------------------------------
def _looks_like_correlation(df: pd.DataFrame) -> bool:
    if df.shape[0] != df.shape[1] or list(df.index) != list(df.columns):
        return False
    values = df.to_numpy(dtype=float)
    return bool(np.all(np.isfinite(values)) and np.allclose(values, values.T, atol=1e-10)
                and np.allclose(np.diag(values), 1.0, atol=1e-10) and np.all(np.abs(values) <= 1 + 1e-10))


def _numeric_items(data: pd.DataFrame) -> pd.DataFrame:
    bad = [c for c in data.columns if not (pd.api.types.is_numeric_dtype(data[c])
                                           or pd.api.types.is_bool_dtype(data[c]))]
    if bad:
        raise AnalysisError(f"item column(s) {', '.join(map(str, bad))} are not numeric "
                            "(expected item responses coded as numbers)")
    return data.astype("float64")


def _check_items(items: pd.DataFrame) -> None:
    counts = items.notna().sum()
    too_few = counts[counts < 2]
    if len(too_few):
        raise AnalysisError(f"item {too_few.index[0]!r} has {int(too_few.iloc[0])} answer(s); "
                            "at least 2 are needed to correlate it (drop the item)")
    sd = items.std(ddof=1)
    constant = sd[~(sd > 0)]
    if len(constant):
        name = constant.index[0]
        value = items[name].dropna().iloc[0]
        raise AnalysisError(f"item {name!r} is constant (every answer is {value:g}); it cannot be "
                            "correlated - drop it before the factor analysis")


def _correlation_from_data(items: pd.DataFrame, corr: str, missing: str) -> tuple[pd.DataFrame, int]:
    items = items.dropna(how="all")
    if missing == "listwise":
        items = items.dropna()
    n_obs = len(items)
    _check_items(items)
    if corr == "polychoric":
        from . import correlation

        polychoric = getattr(correlation, "polychoric", None)
        if polychoric is None:  # pragma: no cover - only until correlation.polychoric lands
            raise AnalysisError("corr='polychoric' needs efa.polychoric, which is not available yet; "
                                "use corr='pearson' or pass a polychoric correlation matrix")
        R = polychoric(items).rho
        R = pd.DataFrame(np.asarray(R, dtype=float), index=items.columns, columns=items.columns)
    else:
        R = items.corr(method="pearson", min_periods=2)
    nan_pairs = np.argwhere(~np.isfinite(R.to_numpy()))
    if len(nan_pairs):
        i, j = nan_pairs[0]
        raise AnalysisError(f"items {R.index[i]!r} and {R.columns[j]!r} cannot be correlated "
                            "(too few joint answers or no variation among them)")
    _warn_collinear(R, n_obs)
    return R, n_obs


def _warn_collinear(R: pd.DataFrame, n_obs: int) -> None:
    """Warn when items are perfectly collinear: a pair with |r| = 1 (to 1e-6), else (with at least as many
    respondents as items, where singularity is not already explained) a correlation matrix whose smallest
    eigenvalue is below 1e-8, i.e. some item is a linear combination of others."""
    A = R.to_numpy()
    off = np.abs(A - np.eye(len(A)))
    pairs = np.argwhere(np.triu(off >= 1 - 1e-6, k=1))
    if len(pairs):
        i, j = pairs[0]
        more = f" (and {len(pairs) - 1} more pair(s))" if len(pairs) > 1 else ""
        warnings.warn(f"items {R.index[i]!r} and {R.columns[j]!r} are perfectly correlated (r = {A[i, j]:.3f})"
                      f"{more}: they carry the same information, so the correlation matrix is singular and the "
                      "factor solution for them is unstable; keep one of them", stacklevel=3)
    elif n_obs >= len(A) and np.linalg.eigvalsh(A).min() < 1e-8:
        warnings.warn("the items are linearly dependent (the correlation matrix is singular, smallest "
                      f"eigenvalue {np.linalg.eigvalsh(A).min():.2g}): some item is a combination of others, "
                      "so the factor solution is unstable", stacklevel=3)


# --- extraction -----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Extraction:
    loadings: np.ndarray
    criterion: float
    iterations: int
    converged: bool


def _minres_objective(psi: np.ndarray, S: np.ndarray, k: int) -> tuple[float, np.ndarray]:
    """psych ``fit.residuals`` (fm = "minres") and its gradient ``FAgr.minres``."""
    Sstar = S.copy()
    np.fill_diagonal(Sstar, 1.0 - psi)
    values, vectors = _top_eigen(Sstar, k)
    values = np.where(values < _EPS, 100 * _EPS, values)
    L = vectors * np.sqrt(values)
    model = L @ L.T
    residual = (Sstar - model)[np.tril_indices_from(S, -1)]
    # psych's gradient: the diagonal misfit of the model with psi (zero at the minres solution)
    grad = np.diag(model) + psi - np.diag(S)
    return float(np.sum(residual ** 2)), grad


def _fit_minres(S: np.ndarray, k: int, max_iter: int, tol: float) -> _Extraction:
    start = 1.0 - _smc(S)
    p = S.shape[0]
    res = optimize.minimize(_minres_objective, start, args=(S, k), jac=True, method="L-BFGS-B",
                            bounds=[(LOWER_BOUND, 1.0)] * p,
                            options={"maxiter": max_iter, "ftol": tol, "gtol": tol * 1e-2})
    psi = res.x
    # psych's gradient is not the exact gradient of the objective, so L-BFGS-B can stop early; the
    # minres solution is the fixed point psi = 1 - diag(L L'), which a few polishing steps reach.
    iterations = int(res.nit)
    for _ in range(max_iter):
        _, grad = _minres_objective(psi, S, k)
        new = np.clip(psi - grad, LOWER_BOUND, 1.0)
        iterations += 1
        if np.max(np.abs(new - psi)) < tol:
            psi = new
            break
        psi = new
    Sstar = S.copy()
    np.fill_diagonal(Sstar, 1.0 - psi)
    values, vectors = _top_eigen(Sstar, k)
    L = vectors * np.sqrt(np.maximum(values, 0.0))
    value, grad = _minres_objective(psi, S, k)
    interior = (psi > LOWER_BOUND) & (psi < 1.0)
    converged = bool(np.all(np.abs(grad[interior]) < math.sqrt(tol)))
    return _Extraction(L, value, iterations, converged)


def _ml_objective(psi: np.ndarray, S: np.ndarray, k: int) -> tuple[float, np.ndarray]:
    """factanal/psych ``FAfn`` and ``FAgr``."""
    sc = 1.0 / np.sqrt(psi)
    Sstar = S * np.outer(sc, sc)
    values, vectors = np.linalg.eigh(Sstar)
    values, vectors = values[::-1], vectors[:, ::-1]
    e = values[k:]
    value = -(np.sum(np.log(e) - e) - k + S.shape[0])
    load = vectors[:, :k] * np.sqrt(np.maximum(values[:k] - 1.0, 0.0))
    load = load * np.sqrt(psi)[:, None]
    g = load @ load.T + np.diag(psi) - S
    return float(value), np.diag(g) / psi ** 2


def _fit_ml(S: np.ndarray, k: int, max_iter: int, tol: float) -> _Extraction:
    start = 1.0 - _smc(S)
    p = S.shape[0]
    res = optimize.minimize(_ml_objective, start, args=(S, k), jac=True, method="L-BFGS-B",
                            bounds=[(LOWER_BOUND, 1.0)] * p,
                            options={"maxiter": max_iter, "ftol": tol, "gtol": tol * 1e-2})
    psi = res.x
    sc = 1.0 / np.sqrt(psi)
    values, vectors = _top_eigen(S * np.outer(sc, sc), k)
    L = vectors * np.sqrt(np.maximum(values - 1.0, 0.0)) * np.sqrt(psi)[:, None]
    return _Extraction(L, float(res.fun), int(res.nit), bool(res.success))


def _fit_pa(S: np.ndarray, k: int, max_iter: int, min_err: float) -> _Extraction:
    """psych's principal-axis loop (``fm = "pa"``), including its stopping rule and final loadings."""
    Sstar = S.copy()
    np.fill_diagonal(Sstar, _smc(S))
    comm = float(np.trace(Sstar))
    err = comm
    iteration = 0
    converged = True
    L = np.zeros((S.shape[0], k))
    while err > min_err:
        values, vectors = _top_eigen(Sstar, k)
        if np.any(values < 0):
            raise AnalysisError(f"principal axis factoring met a negative eigenvalue at iteration "
                                f"{iteration + 1}; use method='minres' or fewer factors")
        L = vectors * np.sqrt(values)
        new = np.sum(L ** 2, axis=1)
        comm_new = float(new.sum())
        np.fill_diagonal(Sstar, new)
        err = abs(comm - comm_new)
        comm = comm_new
        iteration += 1
        if iteration >= max_iter and err > min_err:
            converged = False
            warnings.warn(f"principal axis factoring stopped after the maximum of {max_iter} iterations "
                          f"(last change in the sum of communalities {err:.2g} > {min_err})", stacklevel=3)
            break
    return _Extraction(L, err, iteration, converged)


# --- fit statistics (psych fa.stats) -----------------------------------------------------------------
@dataclass(frozen=True)
class FitIndices:
    """Fit of the factor model, computed as ``psych::fa.stats`` (psych 2.2.9).

    Attributes
    ----------
    rmsr
        Root mean square of the off-diagonal residuals, ``sqrt(sum(res^2) / (p (p - 1)))``.
    crmsr
        RMSR corrected for degrees of freedom, ``sqrt(sum(res^2) / (2 df))``.
    objective
        ML discrepancy ``F = tr(Sigma^-1 R) - log|Sigma^-1 R| - p`` with ``Sigma = L Phi L' + diag(u2)``.
    df
        Degrees of freedom ``p(p-1)/2 - pk + k(k-1)/2``.
    chi2, p
        Likelihood chi-square ``F (n - 1 - (2p + 5)/6 - 2k/3)`` (Bartlett's correction, as factanal and
        psych) and its upper-tail p-value.
    chi2_empirical
        psych's empirical chi-square ``n * sum(off-diagonal residual^2)``.
    tli
        Tucker-Lewis index ``(M0 - Mm) / (M0 - 1/nm)`` with ``M0 = 2 F0 / (p (p - 1))``, ``Mm = F/df``.
    rmsea, rmsea_lower, rmsea_upper
        psych's ``sqrt(max(chi2 / (df n) - 1/(n - 1), 0))`` with the Bartlett-corrected ``chi2`` (note
        ``n``, not ``n - 1``, in the first term, as psych 2.2.9 ``fa.stats``; the textbook
        ``sqrt(max((chi2 - df) / (df (n - 1)), 0))`` is slightly larger, 0.0541 instead of 0.0540 for
        Holzinger-Swineford) and its 90% confidence limits ``sqrt(lambda / ((n - 1) df))`` from the
        non-central chi-square inversion (psych's ``alpha = .1``). Validated against psych
        (``tests/test_r_crosscheck.py``).
    bic
        ``chi2 - df log(n)``.
    n_obs
        Number of observations used (None when a correlation matrix was given without ``n_obs``).
    """

    rmsr: float
    crmsr: float
    objective: float
    df: float
    chi2: float
    p: float
    chi2_empirical: float
    tli: float
    rmsea: float
    rmsea_lower: float
    rmsea_upper: float
    bic: float
    n_obs: int | None

    def as_series(self) -> pd.Series:
        return pd.Series({k: getattr(self, k) for k in self.__dataclass_fields__})


def _log_det(M: np.ndarray) -> float:
    sign, logdet = np.linalg.slogdet(M)
    return logdet if sign > 0 else -np.inf


def _fit_indices(R: np.ndarray, pattern: np.ndarray, phi: np.ndarray, n_obs: int | None,
                 alpha: float = 0.1) -> FitIndices:
    p, k = pattern.shape
    model = pattern @ phi @ pattern.T
    residual = R - model
    np.fill_diagonal(residual, 0.0)
    off = float(np.sum(residual ** 2))
    dof = factor_degrees_of_freedom(p, k)
    rmsr = math.sqrt(off / (p * (p - 1)))
    crmsr = math.sqrt(off / (2 * dof)) if dof > 0 else math.nan
    np.fill_diagonal(model, np.diag(R))
    m_inv_r = np.linalg.solve(model, R)
    objective = float(np.trace(m_inv_r) - _log_det(m_inv_r) - p)
    nan = math.nan
    if n_obs is None:
        return FitIndices(rmsr, crmsr, objective, dof, nan, nan, nan, nan, nan, nan, nan, nan, None)
    n = float(n_obs)
    multiplier = (n - 1) - (2 * p + 5) / 6 - (2 * k) / 3
    chi2 = max(objective * multiplier, 0.0)
    pval = float(stats.chi2.sf(chi2, dof)) if dof > 0 else nan
    f0 = float(np.trace(R) - _log_det(R) - p)
    m0 = f0 * 2 / (p * (p - 1))
    mm = objective / dof if dof > 0 else nan
    tli = (m0 - mm) / (m0 - 1 / multiplier) if dof > 0 else nan
    if dof > 0:
        # psych fa.stats: RMSEA <- sqrt(max(chisq / (dof * n.obs) - 1 / (n.obs - 1), 0))
        rmsea = math.sqrt(max(chi2 / (dof * n) - 1 / (n - 1), 0.0))
        tail = alpha / 2
        upper_end = max(n, chi2) + 2 * n

        def bound(level: float) -> float:
            if stats.chi2.cdf(chi2, dof) <= level:
                return 0.0
            try:
                lam = optimize.brentq(lambda x: stats.ncx2.cdf(chi2, dof, x) - level, 0.0, upper_end)
            except ValueError:
                return nan
            return math.sqrt(lam / (n - 1) / dof)

        upper = bound(tail)
        lower = bound(1 - tail)
        if not math.isnan(upper) and upper < rmsea:
            upper = nan
        if not math.isnan(lower) and lower > rmsea:
            lower = nan
        bic = chi2 - dof * math.log(n)
    else:
        rmsea = lower = upper = bic = nan
    return FitIndices(rmsr, crmsr, objective, dof, chi2, pval, off * n, tli, rmsea, lower, upper, bic,
                      int(n_obs))


# --- result ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class EFAResult:
    """A fitted exploratory factor model (see :func:`fit_efa`).

    Factor columns carry psych's names (``MR1``, ``MR3``, ``MR2`` ...: numbered in rotated order before
    sorting, columns sorted by explained variance); ``factor_ids`` gives the stable aliases ``F1..Fk`` in
    column order, used by the processed tables (:meth:`aliased`).
    """

    loadings: pd.DataFrame
    structure: pd.DataFrame
    phi: pd.DataFrame
    communalities: pd.Series
    uniquenesses: pd.Series
    variance: pd.DataFrame
    heywood: tuple[str, ...]
    ultra_heywood: tuple[str, ...]
    fit: FitIndices
    corr: pd.DataFrame
    n_obs: int | None
    method: str
    rotation: str
    corr_method: str
    n_factors: int
    converged: bool
    iterations: int
    criterion: float
    rotation_converged: bool
    smoothed: bool
    factor_ids: tuple[str, ...] = field(default=())

    @property
    def oblique(self) -> bool:
        return self.rotation in ("oblimin", "promax") and self.n_factors > 1

    @property
    def alias(self) -> dict[str, str]:
        """psych name -> stable alias (``{"MR1": "F1", "MR3": "F2", ...}``)."""
        return dict(zip(self.loadings.columns, self.factor_ids, strict=True))

    def aliased(self, name: str) -> pd.DataFrame:
        """``loadings``, ``structure``, ``phi`` or ``variance`` with factors renamed ``F1..Fk``."""
        frame = getattr(self, name)
        out = frame.rename(columns=self.alias)
        if name == "phi":
            out = out.rename(index=self.alias)
        return out


def fit_efa(data_or_corr: pd.DataFrame, n_factors: int, *, method: Method = "minres",
            rotation: RotationName = "oblimin", corr: Literal["pearson", "polychoric"] = "pearson",
            n_obs: int | None = None, missing: Literal["pairwise", "listwise"] = "pairwise",
            max_iter: int | None = None, tol: float = 1e-10) -> EFAResult:
    """Fit an exploratory factor model the way ``psych::fa`` does.

    Parameters
    ----------
    data_or_corr
        Either item responses (respondents x items, numeric, NaN = missing) or a correlation matrix
        (square DataFrame with identical index and columns, unit diagonal).
    n_factors
        Number of factors ``k`` (at least 1; the model needs ``df = ((p-k)^2 - (p+k))/2 >= 0``).
    method
        ``"minres"`` (psych default), ``"ml"`` or ``"pa"``.
    rotation
        ``"oblimin"`` (GPArotation, quartimin), ``"varimax"`` (stats::varimax), ``"promax"``
        (psych: Kaiser-normalised Promax, m = 4) or ``"none"``.
    corr
        For raw data: ``"pearson"`` or ``"polychoric"`` (:func:`research.efa.polychoric`).
    n_obs
        Number of respondents behind a correlation matrix (needed for chi-square based indices);
        ignored for raw data.
    missing
        Raw data only: ``"pairwise"`` (psych's default; each correlation from the respondents who
        answered both items) or ``"listwise"`` (complete cases only).
    max_iter
        Iteration limit of the extraction (default 50 for ``pa`` as psych, 1000 otherwise).
    tol
        Convergence tolerance of minres/ml (relative change of the objective); ``pa`` uses psych's
        ``min.err = 0.001`` on the sum of communalities.

    Returns
    -------
    EFAResult
        Pattern ``loadings``, ``structure = L Phi``, ``phi``, ``communalities = diag(L Phi L')``,
        ``uniquenesses``, ``variance`` (psych ``Vaccounted``), ``heywood`` and ``ultra_heywood`` items,
        ``fit`` (:class:`FitIndices`), the correlation matrix used, convergence information.

    Raises
    ------
    AnalysisError
        Too many factors for the number of items (negative degrees of freedom), a constant or empty
        item, non-numeric items, or correlations that cannot be computed.

    Warns
    -----
    UserWarning
        Fewer respondents than items (the correlation matrix is then singular and is smoothed);
        a non-positive-definite matrix (smoothed with psych ``cor.smooth``); Heywood cases
        (communality >= 0.995, i.e. uniqueness at psych's lower bound 0.005) and ultra-Heywood cases
        (communality > 1); non-convergence. Values are never clipped silently.

    Notes
    -----
    Validated against R 4.2.2, psych 2.2.9, GPArotation 2022.10-2 (``psych::fa`` on
    Holzinger-Swineford x1..x9: minres/oblimin, ml/varimax, pa/promax, and minres/oblimin on the
    polychoric matrix of the ordinal version): pattern, communalities, Phi and ``Vaccounted`` agree to
    1e-3 (``tests/test_efa_fit.py``).

    References
    ----------
    Revelle, W. (2022). psych: Procedures for Psychological, Psychometric, and Personality Research
    (2.2.9). Harman, H. H., & Jones, W. H. (1966). Factor analysis by minimizing residuals (minres).
    *Psychometrika*, 31, 351-368.
    """
    if method not in _PREFIX:
        raise AnalysisError(f"method {method!r} is not one of minres, ml, pa")
    if rotation not in ("oblimin", "varimax", "promax", "none"):
        raise AnalysisError(f"rotation {rotation!r} is not one of oblimin, varimax, promax, none")
    if corr not in ("pearson", "polychoric"):
        raise AnalysisError(f"corr {corr!r} is not one of pearson, polychoric")
    if missing not in ("pairwise", "listwise"):
        raise AnalysisError(f"missing {missing!r} is not one of pairwise, listwise")
    if not isinstance(data_or_corr, pd.DataFrame):
        raise AnalysisError("fit_efa expects a pandas DataFrame of item responses or a correlation matrix")
    if isinstance(n_factors, bool) or not isinstance(n_factors, int | np.integer) or n_factors < 1:
        raise AnalysisError(f"n_factors must be a whole number >= 1, got {n_factors!r}")
    n_factors = int(n_factors)
    p = data_or_corr.shape[1]
    if p < 3:
        raise AnalysisError(f"a factor analysis needs at least 3 items, got {p}")
    dof = factor_degrees_of_freedom(p, n_factors)
    if dof < 0:
        raise AnalysisError(f"{n_factors} factors are too many for {p} items: the model would have "
                            f"{dof:g} degrees of freedom ((p-k)^2 - (p+k))/2 < 0; at most "
                            f"{max_factors(p)} factors can be fitted")

    if _looks_like_correlation(data_or_corr):
        R = data_or_corr.astype("float64")
        used_corr = "given"
        if n_obs is not None and (not isinstance(n_obs, int | np.integer) or n_obs < 2):
            raise AnalysisError(f"n_obs must be a whole number >= 2, got {n_obs!r}")
    else:
        items = _numeric_items(data_or_corr)
        R, n_obs = _correlation_from_data(items, corr, missing)
        used_corr = corr
    if n_obs is not None and n_obs < p:
        warnings.warn(f"fewer respondents ({n_obs}) than items ({p}): the correlation matrix is singular, "
                      "so it is smoothed before factoring; treat the solution as unstable", stacklevel=2)

    smoothed = False
    if not _is_positive_definite(R.to_numpy()):
        R = _smooth(R, f"smallest eigenvalue {np.linalg.eigvalsh(R.to_numpy()).min():.3g}")
        smoothed = True
    S = R.to_numpy()

    if method == "minres":
        ext = _fit_minres(S, n_factors, max_iter or 1000, tol)
    elif method == "ml":
        ext = _fit_ml(S, n_factors, max_iter or 1000, tol)
    else:
        ext = _fit_pa(S, n_factors, max_iter or 50, 0.001)
    if not ext.converged:
        warnings.warn(f"{method} extraction did not converge in {ext.iterations} iterations", stacklevel=2)

    L = ext.loadings
    signs = np.sign(L.sum(axis=0))
    signs[signs == 0] = 1
    L = L * signs
    L = np.where(L == 0.0, 1e-15, L)  # psych: exact zeros upset varimax
    unrotated = L.copy()

    if n_factors > 1 and rotation != "none":
        rot = rotate_loadings(L, rotation)
        L, phi, rotation_converged = rot.loadings, rot.phi, rot.converged
        if not rotation_converged:
            warnings.warn(f"{rotation} rotation did not converge in {rot.iterations} iterations",
                          stacklevel=2)
    else:
        phi, rotation_converged = np.eye(n_factors), True
    signs = np.sign(L.sum(axis=0))
    signs[signs == 0] = 1
    L = L * signs
    phi = phi * np.outer(signs, signs)
    names = [f"{_PREFIX[method]}{i + 1}" for i in range(n_factors)]
    if n_factors > 1:
        order = np.argsort(-np.sum(L ** 2, axis=0), kind="stable")
        L, phi = L[:, order], phi[np.ix_(order, order)]
        names = [names[i] for i in order]

    items_index = R.index
    communality = np.sum(unrotated ** 2, axis=1)  # = diag(L Phi L') of any rotation
    oblique = rotation in ("oblimin", "promax") and n_factors > 1
    ss = np.diag(phi @ L.T @ L) if oblique else np.sum(L ** 2, axis=0)
    total = float(np.sum(communality + (1.0 - communality)))
    variance = pd.DataFrame([ss, ss / total, np.cumsum(ss / total), ss / ss.sum(), np.cumsum(ss / ss.sum())],
                            index=["SS loadings", "Proportion Var", "Cumulative Var", "Proportion Explained",
                                   "Cumulative Proportion"], columns=names)

    heywood = tuple(str(v) for v, h in zip(items_index, communality, strict=True) if h >= HEYWOOD_COMMUNALITY)
    ultra = tuple(str(v) for v, h in zip(items_index, communality, strict=True) if h > 1.0)
    if ultra:
        warnings.warn(f"ultra-Heywood case: communality > 1 for {', '.join(ultra)}; the solution is "
                      "improper (try fewer factors or another method)", stacklevel=2)
    elif heywood:
        warnings.warn(f"Heywood case: communality >= {HEYWOOD_COMMUNALITY} (uniqueness at the lower bound "
                      f"{LOWER_BOUND}) for {', '.join(heywood)}; interpret these items with care",
                      stacklevel=2)

    fit = _fit_indices(S, L, phi, n_obs)
    loadings = pd.DataFrame(L, index=items_index, columns=names)
    phi_df = pd.DataFrame(phi, index=names, columns=names)
    return EFAResult(
        loadings=loadings,
        structure=pd.DataFrame(L @ phi, index=items_index, columns=names),
        phi=phi_df,
        communalities=pd.Series(communality, index=items_index, name="communality"),
        uniquenesses=pd.Series(1.0 - communality, index=items_index, name="uniqueness"),
        variance=variance,
        heywood=heywood,
        ultra_heywood=ultra,
        fit=fit,
        corr=R,
        n_obs=None if n_obs is None else int(n_obs),
        method=method,
        rotation=rotation if n_factors > 1 else "none",
        corr_method=used_corr,
        n_factors=n_factors,
        converged=ext.converged,
        iterations=ext.iterations,
        criterion=ext.criterion,
        rotation_converged=rotation_converged,
        smoothed=smoothed,
        factor_ids=tuple(f"F{i + 1}" for i in range(n_factors)),
    )


# --- factor scores --------------------------------------------------------------------------------------
def _mat_sqrt(M: np.ndarray) -> np.ndarray:
    """psych ``matSqrt``: symmetric square root, negative eigenvalues set to machine epsilon."""
    values, vectors = np.linalg.eigh(M)
    values = np.where(values < 0, _EPS, values)
    return (vectors * np.sqrt(values)) @ vectors.T


def _inv_mat_sqrt(M: np.ndarray) -> np.ndarray:
    """psych ``invMatSqrt``: inverse symmetric square root, eigenvalues below epsilon set to 100 eps."""
    values, vectors = np.linalg.eigh(M)
    values = np.where(values < _EPS, 100 * _EPS, values)
    return (vectors / np.sqrt(values)) @ vectors.T


def score_weights(result: EFAResult, method: Literal["regression", "bartlett", "tenberge"]) -> pd.DataFrame:
    """Factor score weights ``W`` (items x factors) such that scores = standardised items @ W.

    * regression (Thurstone): ``W = R^-1 L Phi`` (``R^-1`` times the structure matrix);
    * bartlett: ``W = U^-2 L (L' U^-2 L)^-1`` with ``U^2 = 1 - diag(L Phi L')``;
    * tenberge: ``W = R^-1/2 C Phi^1/2`` with ``C = R^-1/2 L* (L*' R^-1 L*)^-1/2``, ``L* = L Phi^1/2``
      (ten Berge et al., 1999; Grice, 2001, eq. 8): the scores' correlations reproduce Phi.

    Formulas as psych 2.2.9 ``factor.scores``.
    """
    R = result.corr.to_numpy()
    P = result.loadings.to_numpy()
    phi = result.phi.to_numpy()
    if method == "regression":
        W = np.linalg.solve(R, P @ phi)
    elif method == "bartlett":
        u2 = 1.0 - np.diag(P @ phi @ P.T)
        if np.any(u2 <= 0):
            raise AnalysisError("Bartlett scores need uniquenesses > 0; the solution has Heywood cases "
                                f"({', '.join(result.ultra_heywood or result.heywood)})")
        PU = P / u2[:, None]
        W = PU @ np.linalg.inv(P.T @ PU)
    elif method == "tenberge":
        phi_half = _mat_sqrt(phi)
        L_star = P @ phi_half
        r_half_inv = _inv_mat_sqrt(R)
        C = r_half_inv @ L_star @ _inv_mat_sqrt(L_star.T @ np.linalg.solve(R, L_star))
        W = r_half_inv @ C @ phi_half
    else:
        raise AnalysisError(f"score method {method!r} is not one of regression, bartlett, tenberge")
    return pd.DataFrame(W, index=result.loadings.index, columns=result.loadings.columns)


def factor_scores(result: EFAResult, data: pd.DataFrame, *,
                  method: Literal["regression", "bartlett", "tenberge"] = "regression",
                  warn_missing: bool = True) -> pd.DataFrame:
    """Factor score estimates for respondents, as psych ``factor.scores``.

    Items are standardised with their sample mean and standard deviation (``scale()`` in R, ddof = 1)
    and multiplied by :func:`score_weights`. A missing answer is replaced by the item mean (a
    standardised value of 0), so the respondent's score rests on the items they answered; the number of
    imputed answers is reported in a warning.

    Parameters
    ----------
    result
        A fitted model from :func:`fit_efa`.
    data
        Item responses with (at least) the columns of ``result.loadings.index``; the row index is kept.
    method
        ``"regression"`` (Thurstone), ``"bartlett"`` or ``"tenberge"``.
    warn_missing
        Warn with the number of imputed answers (turn off only when the caller reports
        :func:`missing_answers` itself).

    Returns
    -------
    DataFrame
        One row per respondent, one column per factor (psych names, as ``result.loadings``).

    Notes
    -----
    Validated: regression weights against factor-analyzer 0.5.1 ``FactorAnalyzer.transform`` (orthogonal
    solution) and statsmodels 0.15 ``FactorResults.factor_score_params`` (regression and Bartlett, Stata
    definitions); ten Berge scores reproduce Phi (``tests/test_efa_fit.py``).
    """
    items = list(result.loadings.index)
    missing_cols = [c for c in items if c not in data.columns]
    if missing_cols:
        raise AnalysisError(f"data lack the item column(s) {', '.join(map(str, missing_cols))} of the model")
    X = _numeric_items(data[items])
    mean = X.mean()
    sd = X.std(ddof=1)
    Z = (X - mean) / sd
    n_missing = int(Z.isna().to_numpy().sum())
    if n_missing and warn_missing:
        warnings.warn(f"{n_missing} missing answer(s) were replaced by the item mean for the factor scores",
                      stacklevel=2)
    W = score_weights(result, method)
    scores = Z.fillna(0.0).to_numpy() @ W.to_numpy()
    return pd.DataFrame(scores, index=data.index, columns=result.loadings.columns)


# --- congruence -----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class CongruenceResult:
    """Tucker's congruence coefficients between two loading matrices.

    Attributes
    ----------
    matrix
        Factors of ``loadings`` (rows) x factors of ``target`` (columns).
    best_match
        One row per factor of ``loadings``: ``factor``, ``target`` (matched one-to-one by the largest
        absolute congruence, Hungarian assignment), ``congruence`` (signed).
    """

    matrix: pd.DataFrame
    best_match: pd.DataFrame


def congruence(loadings: pd.DataFrame, target: pd.DataFrame) -> CongruenceResult:
    """Tucker's coefficient of congruence ``phi(x, y) = sum(x y) / sqrt(sum(x^2) sum(y^2))``.

    Rows are matched by item name; every item of ``loadings`` must appear in ``target`` (target rows
    not in ``loadings`` are ignored). Values >= 0.95 mean the factors can be considered equal,
    0.85-0.94 fair similarity (Lorenzo-Seva & ten Berge, 2006).

    Notes
    -----
    Same formula as psych ``factor.congruence``; validated against a hand-computed example and psych's
    formula applied to the R reference loadings (``tests/test_efa_fit.py``).

    References
    ----------
    Tucker, L. R. (1951). *A method for synthesis of factor analysis studies* (Personnel Research
    Section Report No. 984). Department of the Army. Lorenzo-Seva, U., & ten Berge, J. M. F. (2006).
    Tucker's congruence coefficient as a meaningful index of factor similarity. *Methodology*, 2, 57-64.
    """
    absent = [i for i in loadings.index if i not in target.index]
    if absent:
        raise AnalysisError(f"target loadings lack the item(s) {', '.join(map(str, absent))}")
    X = loadings.to_numpy(dtype=float)
    Y = target.loc[loadings.index].to_numpy(dtype=float)
    denom = np.sqrt(np.outer((X ** 2).sum(axis=0), (Y ** 2).sum(axis=0)))
    with np.errstate(invalid="ignore", divide="ignore"):
        phi = np.where(denom > 0, (X.T @ Y) / denom, np.nan)
    matrix = pd.DataFrame(phi, index=loadings.columns, columns=target.columns)
    from scipy.optimize import linear_sum_assignment

    rows, cols = linear_sum_assignment(-np.nan_to_num(np.abs(phi)))
    match = {r: c for r, c in zip(rows, cols, strict=True)}
    records = []
    for i, name in enumerate(loadings.columns):
        j = match.get(i)
        if j is None:  # more factors than targets: best target for the leftover factor
            j = int(np.nanargmax(np.abs(phi[i]))) if np.any(np.isfinite(phi[i])) else None
        records.append({"factor": name, "target": None if j is None else target.columns[j],
                        "congruence": math.nan if j is None else float(phi[i, j])})
    return CongruenceResult(matrix=matrix, best_match=pd.DataFrame(records))


# --- tables for the factor-analysis report --------------------------------------------------------------
def item_descriptives(data: pd.DataFrame, codebook: pd.DataFrame, *,
                      missing_table: pd.DataFrame | None = None) -> pd.DataFrame:
    """Per-item descriptives for the EFA report: answers, missing, mean, SD, floor and ceiling shares.

    Parameters
    ----------
    data
        Item responses (respondents x items; missing answers are NA).
    codebook
        The study codebook (``variable``, ``scale_min``, ``scale_max``) giving each item's scale ends.
    missing_table
        Optional ``survey_missing`` table (``respondent_id``, ``variable``, ``kind``) to split the
        missing answers into ``dont_know`` and ``skipped``.

    Returns
    -------
    DataFrame
        ``variable``, ``n`` (answers), ``missing``, ``missing_pct``, ``mean``, ``sd`` (ddof = 1),
        ``floor_pct`` and ``ceiling_pct`` (percent of the answers at the scale minimum / maximum), and
        ``dont_know``, ``skipped`` when ``missing_table`` is given. Percentages are 0-100.
    """
    scales = codebook.set_index("variable")
    unknown = [c for c in data.columns if c not in scales.index]
    if unknown:
        raise AnalysisError(f"item(s) {', '.join(map(str, unknown))} are not in the codebook")
    X = _numeric_items(data)
    answered = X.notna().sum()
    lo = scales.loc[X.columns, "scale_min"].astype(float).to_numpy()
    hi = scales.loc[X.columns, "scale_max"].astype(float).to_numpy()
    with np.errstate(invalid="ignore", divide="ignore"):
        floor = (X.to_numpy() == lo).sum(axis=0) / answered.to_numpy() * 100
        ceiling = (X.to_numpy() == hi).sum(axis=0) / answered.to_numpy() * 100
    out = pd.DataFrame({"variable": list(X.columns), "n": answered.to_numpy().astype(int),
                        "missing": X.isna().sum().to_numpy().astype(int),
                        "missing_pct": X.isna().mean().to_numpy() * 100, "mean": X.mean().to_numpy(),
                        "sd": X.std(ddof=1).to_numpy(), "floor_pct": floor, "ceiling_pct": ceiling})
    if missing_table is not None:
        counts = (missing_table[missing_table["variable"].isin(X.columns)]
                  .groupby(["variable", "kind"]).size().unstack(fill_value=0))
        for kind in ("dont_know", "skipped"):
            col = counts[kind] if kind in counts.columns else pd.Series(dtype=int)
            out[kind] = out["variable"].map(col).fillna(0).astype(int).to_numpy()
    return out


def low_msa_items(msa: pd.Series, min_msa: float) -> list[str]:
    """Items whose Kaiser-Meyer-Olkin MSA is below ``min_msa`` (in item order)."""
    return [str(i) for i, v in msa.items() if v < min_msa]


def sorted_loadings(result: EFAResult, *, cutoff: float = 0.3, aliased: bool = True) -> pd.DataFrame:
    """Pattern matrix sorted as psych ``fa.sort``, with primary factor, cross-loadings and complexity.

    Items are grouped by the factor with their largest absolute loading (in factor order) and sorted by
    that absolute loading, largest first.

    Returns
    -------
    DataFrame
        Index ``variable``; one column per factor (``F1..`` when ``aliased``, else psych names),
        ``h2`` (communality), ``primary`` (factor of the largest absolute loading), ``cross_loading``
        (True when two or more absolute loadings reach ``cutoff``), ``complexity`` (Hofmann's index
        ``(sum l^2)^2 / sum l^4``, as psych).
    """
    L = result.aliased("loadings") if aliased else result.loadings
    A = np.abs(L.to_numpy())
    primary = A.argmax(axis=1)
    order = sorted(range(len(L)), key=lambda i: (primary[i], -A[i, primary[i]]))
    sq = L.to_numpy() ** 2
    out = L.copy()
    out["h2"] = result.communalities.to_numpy()
    out["primary"] = [L.columns[j] for j in primary]
    out["cross_loading"] = (A >= cutoff).sum(axis=1) >= 2
    out["complexity"] = sq.sum(axis=1) ** 2 / (sq ** 2).sum(axis=1)
    out = out.iloc[order]
    out.index.name = "variable"
    return out


def cross_loading_items(result: EFAResult, *, cutoff: float = 0.3) -> list[str]:
    """Items with an absolute pattern loading of at least ``cutoff`` on two or more factors."""
    A = np.abs(result.loadings.to_numpy())
    return [str(v) for v, n in zip(result.loadings.index, (A >= cutoff).sum(axis=1), strict=True) if n >= 2]


def loading_display(table: pd.DataFrame, *, cutoff: float, lang: str = "en",
                    item_labels: dict[str, str] | None = None, cross_mark: str = "×") -> pd.DataFrame:
    """Text version of :func:`sorted_loadings` for a report table: loadings below ``cutoff`` blank.

    Numbers are formatted for the report language (2 decimals); ``cross_loading`` becomes
    ``cross_mark`` or blank; an ``item`` column with the labels is put first when ``item_labels`` is given.
    """
    from ..i18n import fmt_number

    factors = [c for c in table.columns if c not in ("h2", "primary", "cross_loading", "complexity")]
    out = pd.DataFrame(index=table.index)
    if item_labels is not None:
        out["item"] = [item_labels.get(v, v) for v in table.index]
    for f in factors:
        out[f] = ["" if abs(v) < cutoff else fmt_number(float(v), 2, lang) for v in table[f]]
    out["h2"] = [fmt_number(float(v), 2, lang) for v in table["h2"]]
    out["complexity"] = [fmt_number(float(v), 2, lang) for v in table["complexity"]]
    out["cross_loading"] = [cross_mark if v else "" for v in table["cross_loading"]]
    return out.reset_index()


def loadings_long(result: EFAResult) -> pd.DataFrame:
    """The ``efa_loadings`` table: ``variable``, ``factor`` (F1..), ``loading`` (pattern), ``communality``."""
    L = result.aliased("loadings")
    out = L.rename_axis("variable").reset_index().melt(id_vars="variable", var_name="factor",
                                                       value_name="loading")
    out["communality"] = out["variable"].map(result.communalities)
    return out.sort_values(["factor", "variable"], kind="stable").reset_index(drop=True)


def hypothesised_target(codebook: pd.DataFrame, variables: list[str], *,
                        missing_ok: bool = False) -> pd.DataFrame | None:
    """0/1 target matrix (items x hypothesised factors) from the codebook column ``latent``.

    Items without a hypothesised factor get a row of zeros. With ``missing_ok`` a codebook that gives
    no hypothesis for any of ``variables`` returns None instead of raising.

    Raises
    ------
    AnalysisError
        When none of ``variables`` has a hypothesised factor in the codebook (and not ``missing_ok``).
    """
    cb = codebook.set_index("variable").reindex(variables)
    latent = cb["latent"]
    levels = [x for x in dict.fromkeys(latent.dropna()) if x]
    if not levels:
        if missing_ok:
            return None
        raise AnalysisError("the codebook gives no hypothesised factor (column 'latent') for the EFA items")
    return pd.DataFrame({lv: (latent == lv).astype(float).to_numpy() for lv in levels}, index=variables)


def true_loadings(truth: dict, variables: list[str], *, missing_ok: bool = False) -> pd.DataFrame | None:
    """Generating loadings of a synthetic study (``truth.json`` -> ``survey.loadings``) as items x factors.

    With ``missing_ok``, a truth file without loadings for any of ``variables`` (e.g. importance items,
    which the demo generator does not factor) returns None.

    Raises
    ------
    AnalysisError
        When the truth file has no loadings for some of ``variables`` (or for all, without ``missing_ok``).
    """
    raw = truth.get("survey", {}).get("loadings") or {}
    if missing_ok and not any(v in raw for v in variables):
        return None
    if not raw:
        raise AnalysisError("the truth file has no 'survey.loadings'")
    frame = pd.DataFrame(raw).T
    absent = [v for v in variables if v not in frame.index]
    if absent:
        raise AnalysisError(f"the truth file has no loadings for {', '.join(absent)}")
    return frame.loc[variables].astype(float)


def factor_map(result: EFAResult, target: pd.DataFrame | None) -> pd.DataFrame:
    """The ``factor_map`` table: each factor (F1..), its best-matching target factor and the congruence.

    Without a target (no hypothesis in the codebook) ``latent`` is empty and ``congruence`` NaN.
    """
    if target is None:
        return pd.DataFrame({"factor": list(result.factor_ids), "latent": pd.array([None] * result.n_factors,
                                                                                   dtype="string"),
                             "congruence": np.full(result.n_factors, np.nan)})
    match = congruence(result.aliased("loadings"), target).best_match
    return match.rename(columns={"target": "latent"})[["factor", "latent", "congruence"]]


def missing_answers(data: pd.DataFrame, variables: list[str]) -> int:
    """Number of missing answers (NA cells) among ``variables``."""
    return int(data[variables].isna().to_numpy().sum())


def scores_table(result: EFAResult, survey: pd.DataFrame, *, id_column: str, group_column: str | None,
                 method: Literal["regression", "bartlett", "tenberge"] = "tenberge",
                 warn_missing: bool = True) -> pd.DataFrame:
    """The ``factor_scores`` table: ``respondent_id`` (the id column), the group column, ``F1..Fk``.

    Missing answers are replaced by the item mean (see :func:`factor_scores`).
    """
    scores = factor_scores(result, survey, method=method, warn_missing=warn_missing).rename(columns=result.alias)
    keep = [id_column] + ([group_column] if group_column else [])
    out = pd.concat([survey[keep].reset_index(drop=True), scores.reset_index(drop=True)], axis=1)
    return out.rename(columns={id_column: "respondent_id"})


@dataclass(frozen=True)
class FactorNumberChoice:
    """The number of factors to extract and why.

    Attributes
    ----------
    n_factors
        The number used.
    rule
        ``"fixed"`` (a number was configured) or the rule applied: ``"parallel"``, ``"kaiser"``,
        ``"map"``, ``"hypothesised"``.
    suggestions
        ``rule`` and ``suggested`` for every rule that was evaluated (None = not available).
    capped
        True when the suggestion was lowered to the largest number the items allow (non-negative df)
        or raised to 1.
    """

    n_factors: int
    rule: str
    suggestions: pd.DataFrame
    capped: bool


def choose_n_factors(setting: int | str, *, rule: str, n_items: int,
                     suggestions: dict[str, int | None]) -> FactorNumberChoice:
    """Apply the configured choice (``analysis.efa.n_factors`` and ``factor_rule``).

    Parameters
    ----------
    setting
        A whole number (used as is, after the degrees-of-freedom check of :func:`fit_efa`) or
        ``"auto"`` (take the suggestion of ``rule``).
    rule
        One of ``parallel``, ``kaiser``, ``map``, ``hypothesised``.
    n_items
        Number of items, for the upper limit :func:`max_factors`.
    suggestions
        Suggested numbers by rule, e.g. ``{"parallel": 3, "kaiser": 4, "map": 3, "hypothesised": 3}``.

    Raises
    ------
    AnalysisError
        ``"auto"`` with a rule that has no suggestion, or an unknown setting.
    """
    table = pd.DataFrame({"rule": list(suggestions), "suggested": pd.array(list(suggestions.values()),
                                                                            dtype="Int64")})
    if isinstance(setting, int | np.integer) and not isinstance(setting, bool):
        return FactorNumberChoice(int(setting), "fixed", table, False)
    if setting != "auto":
        raise AnalysisError(f"n_factors must be a whole number or 'auto', got {setting!r}")
    suggested = suggestions.get(rule)
    if suggested is None:
        raise AnalysisError(f"factor_rule {rule!r} gave no suggestion (available: "
                            f"{', '.join(k for k, v in suggestions.items() if v is not None)})")
    k = min(max(int(suggested), 1), max_factors(n_items))
    return FactorNumberChoice(k, rule, table, k != int(suggested))


def msa_label(value: float) -> str:
    """Kaiser's (1974) verbal label of an MSA value, as a catalogue key (``kmo_marvelous`` ...)."""
    for bound, name in ((0.9, "marvelous"), (0.8, "meritorious"), (0.7, "middling"), (0.6, "mediocre"),
                        (0.5, "miserable")):
        if value >= bound:
            return f"kmo_{name}"
    return "kmo_unacceptable"


def weak_items(result: EFAResult, *, cutoff: float = 0.3) -> list[str]:
    """Items whose largest absolute pattern loading is below ``cutoff``."""
    A = np.abs(result.loadings.to_numpy())
    return [str(v) for v, m in zip(result.loadings.index, A.max(axis=1), strict=True) if m < cutoff]


def ceiling_items(descriptives: pd.DataFrame, *, share: float = 50.0) -> list[str]:
    """Items of :func:`item_descriptives` with more than ``share`` percent of answers at the ceiling."""
    return descriptives.loc[descriptives["ceiling_pct"] > share, "variable"].astype(str).tolist()


def variance_table(result: EFAResult) -> pd.DataFrame:
    """psych ``Vaccounted`` as a tidy table: ``statistic`` (catalogue key) and one column per factor (F1..)."""
    keys = {"SS loadings": "ss_loadings", "Proportion Var": "proportion_var", "Cumulative Var": "cumulative_var",
            "Proportion Explained": "proportion_explained", "Cumulative Proportion": "cumulative_proportion"}
    out = result.aliased("variance").rename(index=keys)
    out.index.name = "statistic"
    return out.reset_index()


def item_correlations(data: pd.DataFrame, *, corr: Literal["pearson", "polychoric"] = "pearson",
                      missing: Literal["pairwise", "listwise"] = "pairwise") -> tuple[pd.DataFrame, int]:
    """The correlation matrix :func:`fit_efa` would use for raw ``data``, and the number of respondents.

    Same checks as :func:`fit_efa` (numeric, non-constant items); ``n_obs`` counts respondents with at
    least one answer (complete cases with ``missing="listwise"``).
    """
    if corr not in ("pearson", "polychoric"):
        raise AnalysisError(f"corr {corr!r} is not one of pearson, polychoric")
    if missing not in ("pairwise", "listwise"):
        raise AnalysisError(f"missing {missing!r} is not one of pairwise, listwise")
    return _correlation_from_data(_numeric_items(data), corr, missing)


@dataclass(frozen=True)
class MsaDecision:
    """Which items enter the factor analysis after the MSA check.

    Attributes
    ----------
    kept
        Items analysed (all items unless low-MSA items are dropped).
    low
        Items with MSA below the threshold.
    dropped
        Items removed (``low`` when dropping is configured, else empty).
    text_key
        Catalogue key of the sentence that reports the decision.
    """

    kept: list[str]
    low: list[str]
    dropped: list[str]
    text_key: str


def msa_decision(msa: pd.Series, *, min_msa: float, drop: bool) -> MsaDecision:
    """Apply ``analysis.efa.min_msa`` / ``drop_low_msa``: report low-MSA items and drop them only if asked.

    Raises
    ------
    AnalysisError
        When dropping would leave fewer than 3 items.
    """
    low = low_msa_items(msa, min_msa)
    dropped = low if drop else []
    kept = [str(i) for i in msa.index if str(i) not in dropped]
    if len(kept) < 3:
        raise AnalysisError(f"dropping the items with MSA below {min_msa} ({', '.join(low)}) leaves "
                            f"{len(kept)} item(s); a factor analysis needs at least 3")
    key = "p_msa_ok" if not low else ("p_msa_low_dropped" if drop else "p_msa_low_kept")
    return MsaDecision(kept, low, dropped, key)


def load_truth(cfg) -> dict | None:
    """The true generating parameters of a synthetic study (``data.truth``), or None for real studies.

    Raises
    ------
    ConfigError
        When the configuration names a truth file that does not exist or is not valid JSON.
    """
    import json

    from ..errors import ConfigError

    if not cfg.data.truth:
        return None
    path = cfg.resolve(cfg.data.truth, what="truth file")
    if not path.is_file():
        raise ConfigError(f"{cfg.source}: key data.truth: file {cfg.data.truth!r} not found")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise ConfigError(f"{path}: line {e.lineno}: not valid JSON ({e.msg})") from None


def alias_note(result: EFAResult) -> str:
    """``"F1 = MR1, F2 = MR3, F3 = MR2"``: the stable aliases and psych's names."""
    return ", ".join(f"{alias} = {name}" for name, alias in result.alias.items())


def reliability_by_factor(result: EFAResult, data: pd.DataFrame, *, cutoff: float = 0.3,
                          ci: float = 0.95) -> pd.DataFrame:
    """Cronbach's alpha and omega total of the items of each factor.

    Each item goes to the factor of its largest absolute pattern loading if that loading reaches
    ``cutoff``; items loading negatively on their factor are reversed (multiplied by -1, which leaves
    alpha and omega otherwise unchanged). Uses :func:`research.efa.cronbach_alpha` (psych ``alpha``)
    and :func:`research.efa.omega_total` (psych ``omega(x, nfactors = 1)``).

    Returns
    -------
    DataFrame
        ``factor`` (F1..), ``n_items``, ``items`` (comma-separated), ``reversed``, ``alpha``, ``ci_low``,
        ``ci_high`` (Feldt interval at ``ci``), ``omega`` (NaN with fewer than 3 items; alpha NaN with
        fewer than 2).
    """
    from .reliability import cronbach_alpha, omega_total

    table = sorted_loadings(result, cutoff=cutoff)
    X = _numeric_items(data[list(result.loadings.index)])
    rows = []
    for factor in result.factor_ids:
        assigned = table[(table["primary"] == factor) & (table[factor].abs() >= cutoff)]
        names = list(assigned.index)
        negative = [v for v in names if assigned.loc[v, factor] < 0]
        keyed = X[names].copy()
        keyed[negative] = -keyed[negative]
        alpha = omega = low = high = math.nan
        if len(names) >= 2:
            a = cronbach_alpha(keyed, ci=ci)
            alpha, low, high = a.raw_alpha, a.ci_low, a.ci_high
        if len(names) >= 3:
            omega = omega_total(keyed).omega_total
        rows.append({"factor": factor, "n_items": len(names), "items": ", ".join(names),
                     "reversed": ", ".join(negative), "alpha": alpha, "ci_low": low, "ci_high": high,
                     "omega": omega})
    return pd.DataFrame(rows)


def p_phrase(p: float, lang: str = "en") -> str:
    """``"= 0.012"`` or ``"< 0.001"`` (APA style, decimal comma in Lithuanian) for "p {pval}" sentences."""
    from ..i18n import fmt_p

    text = fmt_p(p, lang)
    return text if text.startswith("<") or text == "–" else "= " + text


def label_items(table: pd.DataFrame, labels: dict[str, str], *, column: str = "variable") -> pd.DataFrame:
    """A copy of ``table`` with an ``item`` column (the label of ``column``) right after ``column``."""
    out = table.copy()
    out.insert(out.columns.get_loc(column) + 1, "item", out[column].map(labels))
    return out
