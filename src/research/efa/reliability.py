"""Scale reliability: Cronbach's alpha (with Feldt's interval and item diagnostics) and omega total."""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from ..errors import AnalysisError
from .correlation import _item_matrix, _pairwise_cov, _pearson_array
from .nfactors import _minres_one_factor

__all__ = ["CronbachAlpha", "OmegaTotal", "cronbach_alpha", "omega_total"]


@dataclass(frozen=True)
class CronbachAlpha:
    """Cronbach's alpha of a scale.

    Attributes
    ----------
    raw_alpha : float
        Alpha from the item covariances.
    std_alpha : float
        Standardised alpha (from the item correlations; alpha of z-scored items).
    ci_low, ci_high : float
        Feldt confidence interval for ``raw_alpha``.
    ci_level : float
        Confidence level of the interval (e.g. 0.95).
    n_obs, n_items : int
        Respondents (rows) and items.
    items : pandas.DataFrame
        One row per item: ``item``, ``alpha_if_deleted`` (raw alpha of the other items) and ``r_drop``
        (corrected item-total correlation: the item with the sum of the other items).
    """

    raw_alpha: float
    std_alpha: float
    ci_low: float
    ci_high: float
    ci_level: float
    n_obs: int
    n_items: int
    items: pd.DataFrame


def _raw_alpha(C: np.ndarray) -> float:
    k = C.shape[0]
    return float((1.0 - np.trace(C) / C.sum()) * k / (k - 1))


def _warn_negative_items(R: np.ndarray, names: list[str], what: str) -> None:
    _, vectors = np.linalg.eigh(R)
    first = vectors[:, -1] * np.sign(vectors[:, -1].sum() or 1.0)
    negative = [n for n, v in zip(names, first, strict=True) if v < 0]
    if negative:
        warnings.warn(f"{what}: item(s) {', '.join(negative)} correlate negatively with the first principal "
                      "component; reverse-key them before computing reliability", UserWarning, stacklevel=3)


def cronbach_alpha(data, *, ci: float = 0.95) -> CronbachAlpha:
    """Cronbach's alpha, standardised alpha, Feldt's interval, alpha if item deleted and r.drop.

    With C the k x k item covariance matrix (pairwise complete, as psych) and R the correlations,

    .. math:: \\alpha = \\frac{k}{k-1}\\Big(1 - \\frac{\\operatorname{tr} C}{\\mathbf 1' C \\mathbf 1}\\Big),\\qquad
              \\alpha_{std} = \\frac{k}{k-1}\\Big(1 - \\frac{k}{\\mathbf 1' R \\mathbf 1}\\Big).

    Feldt's (1965) interval, as psych ``alpha.ci`` (psych 2.2.9 prints it as "Feldt"), with n rows:

    .. math:: \\big[1 - (1-\\alpha) F_{1-a/2}(n-1, (n-1)(k-1)),\\; 1 - (1-\\alpha) F_{a/2}(n-1, (n-1)(k-1))\\big],
              \\quad a = 1 - \\text{ci}.

    ``alpha_if_deleted`` is the raw alpha of the other k - 1 items; ``r_drop`` the correlation of an item
    with the sum of the others, :math:`(\\mathbf 1' C_{\\cdot i} - C_{ii}) / \\sqrt{C_{ii}\\, \\mathbf 1' C_{-i,-i} \\mathbf 1}`.

    Parameters
    ----------
    data : pandas.DataFrame
        One row per respondent, one column per item (all keyed in the same direction; missing as NaN).
    ci : float
        Confidence level of the interval, strictly between 0 and 1.

    Returns
    -------
    CronbachAlpha

    Raises
    ------
    AnalysisError
        Fewer than 2 items, fewer than 3 rows, non-numeric data, an item without variance, a bad ``ci``.

    Warns
    -----
    UserWarning
        If some items correlate negatively with the first principal component (psych warns too).

    Notes
    -----
    Validated against R 4.2.2 psych 2.2.9 ``alpha(x[, c("x1", "x2", "x3")])`` on the
    Holzinger-Swineford data: raw and standardised alpha, ``alpha.drop$raw_alpha`` and
    ``item.stats$r.drop`` to 1e-6; the Feldt interval against pingouin 0.7 ``cronbach_alpha`` (which
    rounds it to 3 decimals). With two items alpha if deleted is undefined (one item left) and is NaN.

    References
    ----------
    Feldt, L. S. (1965). The approximate sampling distribution of Kuder-Richardson reliability
    coefficient twenty. *Psychometrika*, 30, 357-370.
    """
    what = "cronbach_alpha"
    if not 0.0 < ci < 1.0:
        raise AnalysisError(f"{what}: ci must lie strictly between 0 and 1, got {ci}")
    X, names = _item_matrix(data, what=what)
    n, k = X.shape
    C, N = _pairwise_cov(X)
    if (N < 2).any() or not np.isfinite(C).all():
        i, j = (int(v) for v in np.argwhere((N < 2) | ~np.isfinite(C))[0])
        raise AnalysisError(f"{what}: items {names[i]!r} and {names[j]!r} are answered together by too few "
                            "respondents to estimate their covariance")
    R = _pearson_array(X, names, what=what)
    _warn_negative_items(R, names, what)
    # psych alpha() standardises the pairwise covariances (cov2cor), not the pairwise correlations
    scale = 1.0 / np.sqrt(np.diag(C))
    Rc = C * np.outer(scale, scale)
    raw = _raw_alpha(C)
    std = float((1.0 - k / Rc.sum()) * k / (k - 1))
    level = 1.0 - ci
    df1, df2 = n - 1, (n - 1) * (k - 1)
    ci_low = 1.0 - (1.0 - raw) * stats.f.ppf(1.0 - level / 2.0, df1, df2)
    ci_high = 1.0 - (1.0 - raw) * stats.f.ppf(level / 2.0, df1, df2)
    alpha_drop = np.full(k, np.nan)
    r_drop = np.empty(k)
    for i in range(k):  # k is the number of items (small); every step is a matrix expression
        keep = np.arange(k) != i
        rest = C[np.ix_(keep, keep)]
        if k > 2:
            alpha_drop[i] = _raw_alpha(rest)
        r_drop[i] = (C[:, i].sum() - C[i, i]) / np.sqrt(C[i, i] * rest.sum())
    items = pd.DataFrame({"item": names, "alpha_if_deleted": alpha_drop, "r_drop": r_drop})
    return CronbachAlpha(raw_alpha=raw, std_alpha=std, ci_low=float(ci_low), ci_high=float(ci_high),
                         ci_level=float(ci), n_obs=int(n), n_items=int(k), items=items)


@dataclass(frozen=True)
class OmegaTotal:
    """McDonald's omega total of a one-factor scale, as psych ``omega(x, nfactors = 1)``.

    Attributes
    ----------
    omega_total : float
        Omega total.
    loadings : pandas.Series
        One-factor minres loadings (signs as used: items with negative loadings are reversed).
    n_obs, n_items : int
        Respondents (rows) and items.
    """

    omega_total: float
    loadings: pd.Series
    n_obs: int
    n_items: int


def omega_total(data) -> OmegaTotal:
    """Omega total of a one-factor scale, as R psych 2.2.9 ``omega(x, nfactors = 1)$omega.tot``.

    psych fits one factor by minres to the Pearson correlations R (pairwise complete), reverses items
    with negative loadings, and divides the modelled common variance by the total variance of the
    standardised sum score:

    .. math:: \\omega_t = \\frac{\\mathbf 1' R \\mathbf 1 - \\sum_i (1 - \\lambda_i^2)}{\\mathbf 1' R \\mathbf 1}.

    (With a perfectly fitting one-factor model this equals McDonald's
    :math:`(\\sum\\lambda_i)^2 / [(\\sum\\lambda_i)^2 + \\sum(1-\\lambda_i^2)]`; psych's version uses the
    observed total variance.)

    Parameters
    ----------
    data : pandas.DataFrame
        One row per respondent, one column per item (at least 3 items).

    Returns
    -------
    OmegaTotal

    Raises
    ------
    AnalysisError
        Fewer than 3 items or 3 rows, non-numeric data, an item without variance.

    Warns
    -----
    UserWarning
        When items had negative loadings and were reversed (as psych's ``flip = TRUE``).

    Notes
    -----
    Validated against R 4.2.2 psych 2.2.9 ``omega(x[, c("x1", "x2", "x3")], nfactors = 1)$omega.tot``
    on the Holzinger-Swineford data (1e-3; iterative). For three items the one-factor model is exactly
    identified and the loadings are tested against the closed form
    :math:`\\lambda_1^2 = r_{12} r_{13} / r_{23}`.

    References
    ----------
    McDonald, R. P. (1999). *Test theory: A unified treatment*. Mahwah, NJ: Erlbaum.
    """
    what = "omega_total"
    X, names = _item_matrix(data, what=what, min_items=3)
    R = _pearson_array(X, names, what=what)
    solution = _minres_one_factor(R)
    loadings = solution.loadings.copy()
    key = np.where(loadings < 0, -1.0, 1.0)
    if (key < 0).any():
        reversed_items = [n for n, s in zip(names, key, strict=True) if s < 0]
        warnings.warn(f"{what}: item(s) {', '.join(reversed_items)} load negatively on the factor and were "
                      "reversed (as psych omega, flip = TRUE)", UserWarning, stacklevel=2)
        R = R * np.outer(key, key)
        loadings = loadings * key
    total = R.sum()
    omega = (total - np.sum(1.0 - loadings**2)) / total
    return OmegaTotal(omega_total=float(omega), loadings=pd.Series(loadings, index=names, name="loading"),
                      n_obs=int(X.shape[0]), n_items=len(names))
