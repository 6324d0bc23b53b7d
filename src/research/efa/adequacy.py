"""Is the correlation matrix worth factoring? Kaiser-Meyer-Olkin MSA and Bartlett's test of sphericity."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from ..errors import AnalysisError
from .correlation import _correlation_input

__all__ = ["BartlettSphericity", "SamplingAdequacy", "bartlett_sphericity", "sampling_adequacy"]


@dataclass(frozen=True)
class SamplingAdequacy:
    """Kaiser-Meyer-Olkin measure of sampling adequacy.

    Attributes
    ----------
    overall : float
        Overall MSA (0-1; Kaiser's labels: .9 marvelous, .8 meritorious, .7 middling, .6 mediocre,
        .5 miserable, below .5 unacceptable).
    per_item : pandas.Series
        MSA of each item (index: item names, name ``msa``).
    """

    overall: float
    per_item: pd.Series


@dataclass(frozen=True)
class BartlettSphericity:
    """Bartlett's test that the population correlation matrix is the identity.

    Attributes
    ----------
    chi2 : float
        Test statistic.
    df : int
        Degrees of freedom, p(p - 1)/2.
    p : float
        Upper-tail chi-square p value.
    n_obs : int
        Number of observations used in the statistic.
    """

    chi2: float
    df: int
    p: float
    n_obs: int


def sampling_adequacy(data_or_corr) -> SamplingAdequacy:
    """Kaiser-Meyer-Olkin measure of sampling adequacy (MSA), overall and per item, as psych ``KMO``.

    With :math:`r_{ij}` the correlations and :math:`q_{ij}` the partial correlations (anti-image,
    :math:`q_{ij} = -(R^{-1})_{ij}/\\sqrt{(R^{-1})_{ii}(R^{-1})_{jj}}`), over off-diagonal entries

    .. math:: \\mathrm{MSA} = \\frac{\\sum_{i \\ne j} r_{ij}^2}{\\sum_{i \\ne j} r_{ij}^2 + \\sum_{i \\ne j} q_{ij}^2},
              \\qquad
              \\mathrm{MSA}_i = \\frac{\\sum_{j \\ne i} r_{ij}^2}{\\sum_{j \\ne i} r_{ij}^2 + \\sum_{j \\ne i} q_{ij}^2}

    (Kaiser, 1970; Kaiser & Rice, 1974).

    Parameters
    ----------
    data_or_corr : pandas.DataFrame
        Item data (one column per item; Pearson correlations with pairwise-complete observations are
        computed, as psych) or a correlation matrix (square, item names as index and columns).

    Returns
    -------
    SamplingAdequacy
        ``overall`` and ``per_item``.

    Raises
    ------
    AnalysisError
        Bad item data (see :func:`pearson`) or a singular correlation matrix (psych would fall back to
        the correlation matrix itself and report a meaningless value).

    Notes
    -----
    Validated against R 4.2.2 psych 2.2.9 ``KMO(x)`` on the Holzinger-Swineford items x1..x9
    (overall and per item, 1e-6).

    References
    ----------
    Kaiser, H. F. & Rice, J. (1974). Little Jiffy, Mark IV. *Educational and Psychological
    Measurement*, 34, 111-117.
    """
    R, names, _ = _correlation_input(data_or_corr, what="sampling_adequacy")
    try:
        inverse = np.linalg.inv(R)
    except np.linalg.LinAlgError:
        raise AnalysisError("sampling_adequacy: the correlation matrix is singular (an item is a linear "
                            "combination of others); drop redundant items") from None
    if not np.isfinite(inverse).all() or np.any(np.diag(inverse) <= 0):
        raise AnalysisError("sampling_adequacy: the correlation matrix is not positive definite; "
                            "smooth it first (smooth_corr) or drop redundant items")
    scale = 1.0 / np.sqrt(np.diag(inverse))
    partial = inverse * np.outer(scale, scale)
    r2 = R**2
    q2 = partial**2
    np.fill_diagonal(r2, 0.0)
    np.fill_diagonal(q2, 0.0)
    overall = r2.sum() / (r2.sum() + q2.sum())
    per_item = r2.sum(axis=0) / (r2.sum(axis=0) + q2.sum(axis=0))
    return SamplingAdequacy(overall=float(overall), per_item=pd.Series(per_item, index=names, name="msa"))


def bartlett_sphericity(data_or_corr, *, n_obs: int | None = None) -> BartlettSphericity:
    """Bartlett's (1951) test of sphericity, as psych ``cortest.bartlett``.

    .. math:: \\chi^2 = -\\Big(n - 1 - \\frac{2p + 5}{6}\\Big) \\ln |R|,\\qquad df = \\frac{p(p-1)}{2}

    Parameters
    ----------
    data_or_corr : pandas.DataFrame
        Item data (Pearson correlations, pairwise complete; n = number of rows, as psych) or a
        correlation matrix.
    n_obs : int, optional
        Number of observations; required with a correlation matrix (psych silently assumes 100),
        overrides the number of rows with data.

    Returns
    -------
    BartlettSphericity
        ``chi2``, ``df``, ``p`` and ``n_obs``.

    Raises
    ------
    AnalysisError
        Missing ``n_obs`` for a correlation matrix, n_obs too small, or a matrix that is not positive
        definite (its log-determinant is undefined).

    Notes
    -----
    Validated against R 4.2.2 psych 2.2.9 ``cortest.bartlett(cor(x), n = 301)`` on the
    Holzinger-Swineford items x1..x9 (chi2 and p, 1e-6 relative).
    """
    what = "bartlett_sphericity"
    R, names, n_rows = _correlation_input(data_or_corr, what=what)
    n = n_obs if n_obs is not None else n_rows
    if n is None:
        raise AnalysisError(f"{what}: n_obs is required when a correlation matrix is given")
    p = R.shape[0]
    if int(n) != n or n <= 1 + (2 * p + 5) / 6:
        raise AnalysisError(f"{what}: n_obs = {n} is too small for {p} items; expected a whole number "
                            f"above {1 + (2 * p + 5) / 6:.1f}")
    sign, logdet = np.linalg.slogdet(R)
    if sign <= 0:
        raise AnalysisError(f"{what}: the correlation matrix is not positive definite (determinant <= 0); "
                            "smooth it first (smooth_corr) or drop redundant items")
    chi2 = -logdet * (n - 1 - (2 * p + 5) / 6)
    df = p * (p - 1) // 2
    return BartlettSphericity(chi2=float(chi2), df=int(df), p=float(stats.chi2.sf(chi2, df)), n_obs=int(n))
