"""Correlation matrices for factor analysis: Pearson (pairwise complete), two-step polychoric, smoothing.

The polychoric estimator follows R psych 2.2.9 ``polychoric()`` with its defaults (``global=TRUE``,
``smooth=TRUE``; see :func:`polychoric` on ``correct``): thresholds come from each item's own margin, and each correlation is
the maximum-likelihood value of the bivariate-normal model for the pair's contingency table given those
thresholds. Everything is vectorised: tables are counted by one indicator-matrix product, the bivariate
normal rectangle probabilities of all cells of all item pairs are evaluated at once, and the 1-D
likelihood maximisation runs over all pairs simultaneously.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import special

from ..errors import AnalysisError

__all__ = ["PolychoricResult", "bivariate_normal_cdf", "pearson", "polychoric", "smooth_corr"]

#: minimum number of respondents (rows) for any correlation
MIN_ROWS = 3

# Gauss-Legendre nodes and weights of the 20-point rule on [-1, 1] (half of the symmetric set), as used by
# Genz (2004) for the bivariate normal integral.
_GL_X = np.array([0.9931285991850949, 0.9639719272779138, 0.9122344282513259, 0.8391169718222188,
                  0.7463319064601508, 0.6360536807265150, 0.5108670019508271, 0.3737060887154196,
                  0.2277858511416451, 0.07652652113349733])
_GL_W = np.array([0.01761400713915212, 0.04060142980038694, 0.06267204833410906, 0.08327674157670475,
                  0.1019301198172404, 0.1181945319615184, 0.1316886384491766, 0.1420961093183821,
                  0.1491729864726037, 0.1527533871307259])
# nodes mapped to [0, 2] (both halves of the symmetric rule) and their weights
_NODES = np.concatenate([1.0 - _GL_X, 1.0 + _GL_X])
_WEIGHTS = np.concatenate([_GL_W, _GL_W])
_TWO_PI = 2.0 * np.pi


# --------------------------------------------------------------------------------------------------
# input handling shared by the efa modules
# --------------------------------------------------------------------------------------------------
def _item_matrix(data, *, what: str, min_rows: int = MIN_ROWS, min_items: int = 2,
                 check_variance: bool = True) -> tuple[np.ndarray, list[str]]:
    """Validate item data and return ``(X, names)`` with ``X`` a float array (NaN = missing).

    Raises :class:`AnalysisError` (one line naming the function and the column) for non-numeric columns,
    infinite values, too few rows or items, empty columns and items without variance.
    """
    if isinstance(data, pd.DataFrame):
        frame = data
    elif isinstance(data, np.ndarray) and data.ndim == 2:
        frame = pd.DataFrame(data, columns=[f"V{i + 1}" for i in range(data.shape[1])])
    else:
        raise AnalysisError(f"{what}: expected a DataFrame of item scores (one column per item), "
                            f"got {type(data).__name__}")
    names = [str(c) for c in frame.columns]
    if len(set(names)) != len(names):
        dup = sorted({c for c in names if names.count(c) > 1})
        raise AnalysisError(f"{what}: duplicated column names {dup}; expected unique item names")
    if frame.shape[1] < min_items:
        raise AnalysisError(f"{what}: {frame.shape[1]} item column(s); expected at least {min_items}")
    for name, col in zip(names, frame.columns, strict=True):
        dtype = frame[col].dtype
        if pd.api.types.is_bool_dtype(dtype) or not pd.api.types.is_numeric_dtype(dtype):
            raise AnalysisError(f"{what}: column {name!r} is not numeric (dtype {dtype}); "
                                "expected numeric item scores")
    X = np.column_stack([frame[c].to_numpy(dtype=float, na_value=np.nan) for c in frame.columns])
    if np.isinf(X).any():
        name = names[int(np.nonzero(np.isinf(X).any(axis=0))[0][0])]
        raise AnalysisError(f"{what}: column {name!r} holds infinite values; expected finite scores or NaN")
    if X.shape[0] < min_rows:
        raise AnalysisError(f"{what}: {X.shape[0]} rows; expected at least {min_rows} respondents")
    observed = (~np.isnan(X)).sum(axis=0)
    for name, count in zip(names, observed, strict=True):
        if count < min_rows:
            raise AnalysisError(f"{what}: column {name!r} has {count} non-missing values; "
                                f"expected at least {min_rows}")
    if check_variance:
        spread = np.nanmax(X, axis=0) - np.nanmin(X, axis=0)
        for name, s in zip(names, spread, strict=True):
            if s == 0:
                raise AnalysisError(f"{what}: item {name!r} has zero variance (every answer is the same); "
                                    "drop it before the analysis")
    return X, names


def _pairwise_moments(X: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Pairwise-complete cross-products: counts ``N``, co-deviations and the two pairwise variances.

    For every pair (i, j) only rows where both items are observed count, with the pair's own means
    (as R ``cov(x, use = "pairwise")``). Returns ``N``, ``cross`` (sum of products of deviations) and
    ``ss_i``, ``ss_j`` (sums of squared deviations of item i, resp. j, over the pair's rows), all p x p.
    """
    mask = ~np.isnan(X)
    # centring by the overall column means first keeps the one-pass formulas below accurate
    centred = np.where(mask, X - np.nanmean(X, axis=0), 0.0)
    M = mask.astype(float)
    N = M.T @ M
    sum_i = centred.T @ M  # [i, j]: sum of item i over rows where i and j are observed
    sum_sq_i = (centred**2).T @ M
    cross = centred.T @ centred
    with np.errstate(invalid="ignore", divide="ignore"):
        cross = cross - sum_i * sum_i.T / N
        ss_i = sum_sq_i - sum_i**2 / N
    return N, cross, ss_i, ss_i.T


def _pairwise_cov(X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pairwise-complete covariance matrix (denominator n - 1) and the pairwise counts."""
    N, cross, _, _ = _pairwise_moments(X)
    with np.errstate(invalid="ignore", divide="ignore"):
        return cross / (N - 1.0), N


def _pearson_array(X: np.ndarray, names: list[str], *, what: str) -> np.ndarray:
    N, cross, ss_i, ss_j = _pairwise_moments(X)
    with np.errstate(invalid="ignore", divide="ignore"):
        R = cross / np.sqrt(ss_i * ss_j)
    p = len(names)
    bad = (N < MIN_ROWS) | ~np.isfinite(R) | (ss_i <= 0) | (ss_j <= 0)
    if bad.any():
        i, j = (int(v) for v in np.argwhere(bad)[0])
        if N[i, j] < MIN_ROWS:
            raise AnalysisError(f"{what}: items {names[i]!r} and {names[j]!r} are both answered by only "
                                f"{int(N[i, j])} respondents; expected at least {MIN_ROWS}")
        raise AnalysisError(f"{what}: items {names[i]!r} and {names[j]!r} have no variance among the "
                            "respondents who answered both; their correlation is undefined")
    R = np.clip(R, -1.0, 1.0)
    R[np.arange(p), np.arange(p)] = 1.0
    return (R + R.T) / 2.0


def _looks_like_correlation(A: np.ndarray) -> bool:
    return (A.ndim == 2 and A.shape[0] == A.shape[1] and A.shape[0] >= 2 and np.isfinite(A).all()
            and np.allclose(A, A.T, atol=1e-8) and np.allclose(np.diag(A), 1.0, atol=1e-8)
            and np.abs(A).max() <= 1.0 + 1e-8)


def _correlation_input(data_or_corr, *, what: str) -> tuple[np.ndarray, list[str], int | None]:
    """Return ``(R, names, n_rows)`` from item data (Pearson, pairwise) or from a correlation matrix.

    A square DataFrame whose index equals its columns, symmetric with unit diagonal, is taken as a
    correlation matrix (``n_rows`` None); so is a square symmetric ndarray with unit diagonal. Anything
    else is item data.
    """
    if isinstance(data_or_corr, pd.DataFrame):
        frame = data_or_corr
        square = frame.shape[0] == frame.shape[1] and list(map(str, frame.index)) == list(map(str, frame.columns))
        if square and all(pd.api.types.is_numeric_dtype(t) for t in frame.dtypes):
            A = frame.to_numpy(dtype=float, na_value=np.nan)
            if _looks_like_correlation(A):
                return (A + A.T) / 2.0, [str(c) for c in frame.columns], None
            raise AnalysisError(f"{what}: the square matrix given is not a correlation matrix (expected "
                                "symmetric, unit diagonal, entries in [-1, 1], no missing values)")
    elif isinstance(data_or_corr, np.ndarray) and data_or_corr.ndim == 2:
        A = np.asarray(data_or_corr, dtype=float)
        if _looks_like_correlation(A):
            return (A + A.T) / 2.0, [f"V{i + 1}" for i in range(A.shape[0])], None
    X, names = _item_matrix(data_or_corr, what=what)
    return _pearson_array(X, names, what=what), names, int(X.shape[0])


def _smc(R: np.ndarray) -> np.ndarray:
    """Squared multiple correlations :math:`1 - 1/(R^{-1})_{ii}` as psych ``smc`` (clipped to [0, 1]).

    A singular matrix falls back to the pseudo-inverse (psych 2.2.9 uses its ``Pinv`` there).
    """
    try:
        inverse = np.linalg.inv(R)
    except np.linalg.LinAlgError:
        inverse = np.linalg.pinv(R)
    with np.errstate(divide="ignore"):
        values = 1.0 - 1.0 / np.diag(inverse)
    return np.clip(np.nan_to_num(values, nan=1.0), 0.0, 1.0)


def pearson(data) -> pd.DataFrame:
    """Pearson correlation matrix with pairwise-complete observations.

    For each pair of items only the respondents who answered both are used, with that pair's own means
    and standard deviations, exactly as R ``cor(x, use = "pairwise.complete.obs")``:

    .. math:: r_{ij} = \\frac{\\sum_{t \\in T_{ij}} (x_{ti} - \\bar x_i^{(ij)})(x_{tj} - \\bar x_j^{(ij)})}
              {\\sqrt{\\sum_{t \\in T_{ij}} (x_{ti} - \\bar x_i^{(ij)})^2
                      \\sum_{t \\in T_{ij}} (x_{tj} - \\bar x_j^{(ij)})^2}}

    where :math:`T_{ij}` is the set of rows with both items observed. A pairwise matrix need not be
    positive definite when data are missing; see :func:`smooth_corr`.

    Parameters
    ----------
    data : pandas.DataFrame
        One row per respondent, one numeric column per item; missing answers as NaN / ``pd.NA``.

    Returns
    -------
    pandas.DataFrame
        p x p correlation matrix with the item names as index and columns.

    Raises
    ------
    AnalysisError
        Non-numeric columns, fewer than 3 rows, an item without variance, or a pair of items answered
        together by fewer than 3 respondents.

    Notes
    -----
    Validated against R 4.2.2 ``cor()`` (through ``eigen(cor(x))`` of the Holzinger-Swineford data,
    psych 2.2.9 reference values) and against pandas ``DataFrame.corr()`` with missing values.
    """
    X, names = _item_matrix(data, what="pearson")
    R = _pearson_array(X, names, what="pearson")
    return pd.DataFrame(R, index=names, columns=names)


# --------------------------------------------------------------------------------------------------
# bivariate normal distribution
# --------------------------------------------------------------------------------------------------
def _norm_cdf(z):
    return special.ndtr(z)


def _upper_bvn_finite(dh: np.ndarray, dk: np.ndarray, r: np.ndarray) -> np.ndarray:
    """P(X > dh, Y > dk) for finite limits and |r| <= 1 (Genz 2004, 20-point Gauss-Legendre everywhere)."""
    out = np.empty(np.broadcast_shapes(dh.shape, dk.shape, r.shape))
    dh, dk, r = np.broadcast_to(dh, out.shape), np.broadcast_to(dk, out.shape), np.broadcast_to(r, out.shape)
    hk = dh * dk
    moderate = np.abs(r) < 0.925
    with np.errstate(all="ignore"):
        if moderate.any():
            h, k, rr, hkm = dh[moderate], dk[moderate], r[moderate], hk[moderate]
            hs = (h * h + k * k) / 2.0
            asr = np.arcsin(rr) / 2.0
            sn = np.sin(asr[:, None] * _NODES)
            integral = np.exp((sn * hkm[:, None] - hs[:, None]) / (1.0 - sn * sn)) @ _WEIGHTS
            out[moderate] = integral * asr / _TWO_PI + _norm_cdf(-h) * _norm_cdf(-k)
        high = ~moderate
        if high.any():
            h, k, rr, hkh = dh[high], dk[high].copy(), r[high], hk[high].copy()
            negative = rr < 0
            k[negative] = -k[negative]
            hkh[negative] = -hkh[negative]
            bvn = np.zeros_like(h)
            inside = np.abs(rr) < 1.0
            if inside.any():
                hi, ki, ri, hki = h[inside], k[inside], rr[inside], hkh[inside]
                as_ = (1.0 - ri) * (1.0 + ri)
                a = np.sqrt(as_)
                bs = (hi - ki) ** 2
                asr = -(bs / as_ + hki) / 2.0
                c = (4.0 - hki) / 8.0
                d = (12.0 - hki) / 80.0
                term = np.where(asr > -100.0,
                                a * np.exp(asr) * (1.0 - c * (bs - as_) * (1.0 - d * bs) / 3.0
                                                   + c * d * as_ * as_), 0.0)
                b = np.sqrt(bs)
                sp = np.sqrt(_TWO_PI) * _norm_cdf(-b / a)
                term = np.where(hki > -100.0,
                                term - np.exp(-hki / 2.0) * sp * b * (1.0 - c * bs * (1.0 - d * bs) / 3.0),
                                term)
                half_a = a / 2.0
                xs = (half_a[:, None] * _NODES) ** 2
                asr_n = -(bs[:, None] / xs + hki[:, None]) / 2.0
                use = asr_n > -100.0
                sp_n = 1.0 + c[:, None] * xs * (1.0 + 5.0 * d[:, None] * xs)
                rs = np.sqrt(1.0 - xs)
                ep = np.exp(-(hki[:, None] / 2.0) * xs / (1.0 + rs) ** 2) / rs
                summand = np.where(use, np.exp(asr_n) * (sp_n - ep), 0.0)
                bvn[inside] = (half_a * (summand @ _WEIGHTS) - term) / _TWO_PI
            positive = ~negative
            result = np.empty_like(h)
            result[positive] = bvn[positive] + _norm_cdf(-np.maximum(h[positive], k[positive]))
            hn, kn, bn = h[negative], k[negative], bvn[negative]
            lower = np.where(hn < 0, _norm_cdf(kn) - _norm_cdf(hn), _norm_cdf(-hn) - _norm_cdf(-kn))
            result[negative] = np.where(hn >= kn, -bn, lower - bn)
            out[high] = result
    return np.clip(out, 0.0, 1.0)


def bivariate_normal_cdf(h, k, rho) -> np.ndarray:
    """Standard bivariate normal distribution function :math:`\\Phi_2(h, k; \\rho) = P(X \\le h, Y \\le k)`.

    Vectorised over broadcastable arrays ``h``, ``k`` (may be +/-inf) and ``rho`` in [-1, 1].
    The algorithm is Drezner & Wesolowsky (1990) as refined for double precision by Genz (2004):
    for :math:`|\\rho| < 0.925`

    .. math:: \\Phi_2 = \\Phi(h)\\Phi(k) + \\frac{1}{2\\pi}\\int_0^{\\arcsin\\rho}
              \\exp\\Big(-\\frac{h^2 + k^2 - 2hk\\sin\\theta}{2\\cos^2\\theta}\\Big)\\,d\\theta,

    integrated with a 20-point Gauss-Legendre rule (Genz uses 6/12/20 points by :math:`|\\rho|`; we use
    20 throughout), and for :math:`|\\rho| \\ge 0.925` Genz's asymptotic expansion of the integrand
    near :math:`|\\rho| = 1` plus a Gauss-Legendre correction. Absolute error about 1e-15.

    Parameters
    ----------
    h, k : array_like
        Upper integration limits (z scores).
    rho : array_like
        Correlation coefficients.

    Returns
    -------
    numpy.ndarray
        Probabilities, broadcast shape of the inputs.

    References
    ----------
    Drezner, Z. & Wesolowsky, G. O. (1990). On the computation of the bivariate normal integral.
    *Journal of Statistical Computation and Simulation*, 35, 101-107.
    Genz, A. (2004). Numerical computation of rectangular bivariate and trivariate normal and t
    probabilities. *Statistics and Computing*, 14, 251-260.

    Notes
    -----
    Validated against scipy 1.17 ``scipy.stats.multivariate_normal.cdf`` (Genz's Fortran MVNDST, which
    is deterministic in two dimensions) to 1e-12 on a grid of limits and correlations.
    """
    h, k, rho = np.broadcast_arrays(np.asarray(h, dtype=float), np.asarray(k, dtype=float),
                                    np.asarray(rho, dtype=float))
    if np.any(np.abs(rho) > 1.0) or np.isnan(rho).any():
        raise AnalysisError("bivariate_normal_cdf: rho must lie in [-1, 1]")
    out = np.zeros(h.shape)
    finite = np.isfinite(h) & np.isfinite(k)
    if finite.any():
        out[finite] = _upper_bvn_finite(-h[finite], -k[finite], rho[finite])
    # infinite limits: one dimension drops out (or the whole probability is 0 or 1)
    h_top, k_top = h == np.inf, k == np.inf
    h_bottom, k_bottom = h == -np.inf, k == -np.inf
    only_k = h_top & ~k_top & ~k_bottom & ~h_bottom
    only_h = k_top & ~h_top & ~h_bottom & ~k_bottom
    out[only_k] = _norm_cdf(k[only_k])
    out[only_h] = _norm_cdf(h[only_h])
    out[h_top & k_top] = 1.0
    out[h_bottom | k_bottom] = 0.0
    if np.isnan(h).any() or np.isnan(k).any():
        out[np.isnan(h) | np.isnan(k)] = np.nan
    return out


# --------------------------------------------------------------------------------------------------
# smoothing
# --------------------------------------------------------------------------------------------------
def smooth_corr(R, *, eig_tol: float = 1e-12):
    """Make a correlation matrix positive definite as psych ``cor.smooth`` (R psych 2.2.9).

    If the smallest eigenvalue is below machine epsilon, the matrix is rebuilt from its eigen
    decomposition :math:`R = V \\Lambda V'` with eigenvalues below ``eig_tol`` replaced by
    ``100 * eig_tol``, all eigenvalues rescaled to sum to p, and the result rescaled to unit diagonal:

    .. math:: \\tilde\\lambda_k = \\frac{p\\,\\lambda_k^*}{\\sum_m \\lambda_m^*},\\qquad
              \\tilde R = D^{-1/2}\\, V \\tilde\\Lambda V'\\, D^{-1/2},\\quad D = \\operatorname{diag}(V\\tilde\\Lambda V').

    A ``UserWarning`` says when the matrix was changed.

    Parameters
    ----------
    R : pandas.DataFrame or numpy.ndarray
        Symmetric correlation matrix.
    eig_tol : float
        Eigenvalues below this are replaced by ``100 * eig_tol`` (psych's ``eig.tol``).

    Returns
    -------
    (R_smoothed, changed) : tuple
        The (possibly) smoothed matrix, of the same type and labels as ``R``, and whether it changed.

    Notes
    -----
    Follows psych 2.2.9 ``cor.smooth`` line by line (checked against its source); the smoothing itself
    is tested on a non-positive-definite matrix for positive definiteness, unit diagonal and
    agreement with the construction above.
    """
    is_frame = isinstance(R, pd.DataFrame)
    A = np.asarray(R, dtype=float)
    if A.ndim != 2 or A.shape[0] != A.shape[1]:
        raise AnalysisError(f"smooth_corr: expected a square correlation matrix, got shape {A.shape}")
    if not np.isfinite(A).all():
        raise AnalysisError("smooth_corr: the correlation matrix holds missing or infinite values")
    A = (A + A.T) / 2.0
    values, vectors = np.linalg.eigh(A)
    if values.min() >= np.finfo(float).eps:
        return R, False
    warnings.warn("correlation matrix was not positive definite; smoothed as psych::cor.smooth "
                  f"(eigenvalues below {eig_tol:g} raised, smallest was {values.min():.3g})",
                  UserWarning, stacklevel=2)
    values = np.where(values < eig_tol, 100.0 * eig_tol, values)
    values = values * A.shape[0] / values.sum()
    S = (vectors * values) @ vectors.T
    scale = 1.0 / np.sqrt(np.diag(S))
    S = S * np.outer(scale, scale)
    S = (S + S.T) / 2.0
    np.fill_diagonal(S, 1.0)
    if is_frame:
        return pd.DataFrame(S, index=R.index, columns=R.columns), True
    return S, True


# --------------------------------------------------------------------------------------------------
# polychoric correlations
# --------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class PolychoricResult:
    """Polychoric correlations (two-step ML) and the item thresholds.

    Attributes
    ----------
    rho : pandas.DataFrame
        p x p polychoric correlation matrix (smoothed when ``smoothed``).
    tau : pandas.DataFrame
        Items x thresholds (z scale); column ``t1`` separates the lowest category from the rest, and so
        on up to ``t{K-1}`` for K categories of the common scale. Thresholds that are not identified
        because no respondent lies below (or above) them - a category that nobody chose at the end of
        the scale - are NaN (psych reports -Inf / Inf there).
    n_obs : int
        Number of respondents (rows), as psych's ``n.obs``.
    smoothed : bool
        True if ``rho`` was not positive definite and was smoothed by :func:`smooth_corr`.
    """

    rho: pd.DataFrame
    tau: pd.DataFrame
    n_obs: int
    smoothed: bool


def _cell_log_probabilities(cuts_i: np.ndarray, cuts_j: np.ndarray, rho: np.ndarray,
                            structural: np.ndarray) -> np.ndarray:
    """log P(cell) for every cell of every pair: cuts (pairs, K+1) with +/-inf ends, rho (pairs,)."""
    F = bivariate_normal_cdf(cuts_i[:, :, None], cuts_j[:, None, :], rho[:, None, None])
    P = F[:, 1:, 1:] - F[:, :-1, 1:] - F[:, 1:, :-1] + F[:, :-1, :-1]
    # a cell between two identical cuts has probability exactly 0 (a category nobody chose); psych drops
    # such cells from the likelihood. Rounding can push a tiny but real cell probability to <= 0 near
    # |rho| = 1: floor it instead of dropping it so the likelihood cannot gain by emptying cells.
    P = np.maximum(P, 1e-300)
    with np.errstate(divide="ignore"):
        return np.where(structural, 0.0, np.log(P))


def _golden_section_max(objective, lower: np.ndarray, upper: np.ndarray, iterations: int = 64) -> np.ndarray:
    """Maximise a vectorised 1-D objective on [lower, upper] elementwise (golden-section search)."""
    ratio = (np.sqrt(5.0) - 1.0) / 2.0
    a, b = lower.copy(), upper.copy()
    c = b - ratio * (b - a)
    d = a + ratio * (b - a)
    fc, fd = objective(c), objective(d)
    for _ in range(iterations):
        left = fc >= fd  # the maximum lies in [a, d]
        b = np.where(left, d, b)
        a = np.where(left, a, c)
        new_c = b - ratio * (b - a)
        new_d = a + ratio * (b - a)
        c_next = np.where(left, new_c, d)
        d_next = np.where(left, c, new_d)
        f_eval = objective(np.where(left, new_c, new_d))
        fc, fd = np.where(left, f_eval, fd), np.where(left, fc, f_eval)
        c, d = c_next, d_next
    return np.where(fc >= fd, c, d)


def _pair_tables(codes: np.ndarray, observed: np.ndarray, K: int, *, chunk_rows: int = 65_536) -> np.ndarray:
    """Joint answer counts of every item pair: ``T[i, j, a, b]`` = rows answering a to item i and b to j.

    With the answers one-hot coded (an n x pK indicator matrix O, all zeros for a missing answer), every
    table is a block of :math:`O'O`, so all p(p-1)/2 tables come from one matrix product per chunk of rows
    - no n x p work array per item pair. Counts are exact: a chunk adds at most ``chunk_rows`` < 2^24 ones
    per cell, which float32 represents exactly, and the chunks are summed in float64.
    """
    n, p = codes.shape
    offsets = np.arange(p) * K
    total = np.zeros((p * K, p * K))
    for start in range(0, n, chunk_rows):
        part_codes, part_observed = codes[start:start + chunk_rows], observed[start:start + chunk_rows]
        rows, items = np.nonzero(part_observed)
        onehot = np.zeros((len(part_codes), p * K), dtype=np.float32)
        onehot[rows, offsets[items] + part_codes[rows, items]] = 1.0
        total += onehot.T @ onehot
    return total.reshape(p, K, p, K).transpose(0, 2, 1, 3)


def polychoric(data, *, correct: float = 0.0, smooth: bool = True, max_categories: int = 8) -> PolychoricResult:
    """Polychoric correlation matrix by two-step maximum likelihood (as R psych 2.2.9 ``polychoric``).

    Step 1 (thresholds, psych ``global=TRUE``): with the items' answers coded on the common range of
    categories 1..K, item i's thresholds are the normal quantiles of its cumulative proportions
    :math:`\\tau_{ic} = \\Phi^{-1}\\big(\\sum_{m \\le c} n_{im} / n_i\\big)`, c = 1..K-1, over all its answers.

    Step 2 (correlations): for each pair (i, j), with the table of joint answers :math:`n_{ab}` (rows
    with both answers),

    .. math:: \\hat\\rho_{ij} = \\arg\\max_{\\rho} \\sum_{a,b} n_{ab} \\log \\pi_{ab}(\\rho),\\qquad
              \\pi_{ab} = \\Phi_2(\\tau_{ia}, \\tau_{jb}; \\rho) - \\Phi_2(\\tau_{i,a-1}, \\tau_{jb}; \\rho)
                        - \\Phi_2(\\tau_{ia}, \\tau_{j,b-1}; \\rho) + \\Phi_2(\\tau_{i,a-1}, \\tau_{j,b-1}; \\rho)

    with :math:`\\tau_{i0} = -\\infty`, :math:`\\tau_{iK} = \\infty`, maximised over (-1, 1) by a
    golden-section search run for all pairs at once (to about 1e-12; psych's ``optimize`` stops at about
    1e-4). Finally the matrix is smoothed with :func:`smooth_corr` when it is not positive definite
    (``smooth=True``, psych's default).

    Parameters
    ----------
    data : pandas.DataFrame
        One row per respondent, one column per ordinal item with whole-number codes (e.g. 1..5); missing
        answers as NaN / ``pd.NA`` (each pair uses the respondents who answered both).
    correct : float
        Continuity correction: when a pair's table has empty cells, they count as ``correct`` answers.
        The default 0 reproduces psych 2.2.9: its ``polychoric(correct = .5)`` codes the correction
        only in the branch for pair-specific thresholds (``global = FALSE``), so with its default global
        thresholds the correction is never applied. (Checked: the psych 2.2.9 reference values are
        reproduced to 2e-5 without the correction and differ by up to 0.013 with it on the pairs whose
        tables have empty cells.) A positive value applies the correction to every table with an empty
        cell, as the later psych source (2.3.x) does with its ``correct = .5``.
    smooth : bool
        Smooth a non-positive-definite result (with a warning).
    max_categories : int
        Largest number of categories K accepted (psych stops above 8).

    Returns
    -------
    PolychoricResult
        ``rho``, ``tau``, ``n_obs`` and ``smoothed``.

    Raises
    ------
    AnalysisError
        Non-numeric or non-integer answers, more than ``max_categories`` categories, an item without
        variance, fewer than 3 rows, or a pair of items that nobody answered together.

    Notes
    -----
    Validated against R 4.2.2 psych 2.2.9 ``polychoric(xo)`` on the Holzinger-Swineford items cut into
    quintiles (``tests/reference``): rho and tau agree to 1e-3 (psych's own optimiser tolerance and its
    ``mnormt::sadmvn`` cell probabilities limit the agreement; our likelihood maximum is exact to about
    1e-9). Scales linearly in the number of respondents: the tables of all pairs are counted with one
    indicator-matrix product per chunk of rows (:func:`_pair_tables`).
    """
    what = "polychoric"
    X, names = _item_matrix(data, what=what)
    if correct < 0:
        raise AnalysisError(f"{what}: correct must be >= 0, got {correct}")
    observed = ~np.isnan(X)
    values = X[observed]
    if not np.all(values == np.round(values)):
        col = names[int(np.nonzero((observed & (X != np.round(X))).any(axis=0))[0][0])]
        raise AnalysisError(f"{what}: column {col!r} holds non-integer values; expected whole-number "
                            "category codes of ordinal items")
    low, high = int(values.min()), int(values.max())
    K = high - low + 1
    if K > max_categories:
        raise AnalysisError(f"{what}: answers span {K} categories ({low}..{high}); expected at most "
                            f"{max_categories} (treat such items as continuous and use pearson)")
    n, p = X.shape
    codes = np.where(observed, X - low, -1).astype(np.int64)

    # step 1: thresholds from each item's margin
    freq = np.stack([np.bincount(codes[observed[:, i], i], minlength=K) for i in range(p)])
    cum = np.cumsum(freq, axis=1)[:, :-1] / freq.sum(axis=1, keepdims=True)
    tau = special.ndtri(cum)  # -inf / inf where nobody is below / above the cut
    cuts = np.concatenate([np.full((p, 1), -np.inf), tau, np.full((p, 1), np.inf)], axis=1)

    # step 2: all pairwise tables at once (pairs i < j)
    pair_i, pair_j = np.triu_indices(p, 1)
    tables = _pair_tables(codes, observed, K)[pair_i, pair_j]
    totals = tables.sum(axis=(1, 2))
    if (totals == 0).any():
        k = int(np.nonzero(totals == 0)[0][0])
        raise AnalysisError(f"{what}: items {names[pair_i[k]]!r} and {names[pair_j[k]]!r} were never "
                            "answered by the same respondent; their correlation is undefined")
    proportions = tables / totals[:, None, None]
    if correct > 0:
        has_zero = (tables == 0).any(axis=(1, 2))
        fill = (tables == 0) & has_zero[:, None, None]
        proportions = np.where(fill, correct / totals[:, None, None], proportions)

    cuts_i, cuts_j = cuts[pair_i], cuts[pair_j]
    empty = cuts[:, 1:] == cuts[:, :-1]  # a category nobody chose (also -inf == -inf, inf == inf)
    structural = empty[pair_i][:, :, None] | empty[pair_j][:, None, :]

    def loglik(rho):
        return (proportions * _cell_log_probabilities(cuts_i, cuts_j, rho, structural)).sum(axis=(1, 2))

    bound = np.full(len(pair_i), 1.0 - 1e-9)
    rho_hat = _golden_section_max(loglik, -bound, bound)

    R = np.eye(p)
    R[pair_i, pair_j] = rho_hat
    R[pair_j, pair_i] = rho_hat
    smoothed = False
    if smooth:
        R, smoothed = smooth_corr(R)
    tau_out = np.where(np.isfinite(tau), tau, np.nan)
    return PolychoricResult(
        rho=pd.DataFrame(R, index=names, columns=names),
        tau=pd.DataFrame(tau_out, index=names, columns=[f"t{c + 1}" for c in range(K - 1)]),
        n_obs=int(n),
        smoothed=bool(smoothed),
    )
