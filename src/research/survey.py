"""Client survey: item descriptives, group comparisons, importance-performance gaps, ordinal regression.

Every test reproduces the R function named in its docstring (R 4.2.2 ``stats``, effectsize 0.8.3, MASS
``polr``) and is validated in ``tests/test_survey.py`` against R output or a published worked example.

Conventions
-----------
* Group levels are compared as strings (a column holding ``1``/``2`` and one holding ``"1"``/``"2"`` behave
  alike); ``levels`` fixes their order, the first level is "group 1" (R's ``x`` in ``wilcox.test(x, y)``).
* Missing answers (NA) are dropped per variable, as R's ``wilcox.test``/``t.test`` do.
* Problems that make one statistic undefined (a group with fewer than two answers, no variance) give NaN
  statistics and a sentence in the ``note`` column; problems with the request itself (unknown column,
  non-numeric data, fewer than two levels) raise :class:`~research.errors.AnalysisError`.
"""

from __future__ import annotations

import itertools
import math
import re
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy import optimize, special, stats
from statsmodels.stats.multitest import multipletests

from .errors import AnalysisError

__all__ = [
    "CORRECTIONS", "GroupSpec", "GroupComparison", "MannWhitney", "SignedRank", "KruskalWallis", "HedgesG",
    "OrdinalRegression", "ContingencyTest",
    "mann_whitney", "signed_rank", "kruskal_wallis", "rank_biserial", "hedges_g_unpooled",
    "adjust_pvalues", "group_spec", "describe_items", "compare_groups", "compare_many_groups", "compare",
    "compare_factor_scores", "ipa_gaps", "ipa_stage_gaps", "stage_means", "ordinal_regression",
    "contingency_test", "profile_by_group", "profile_table", "likert_percentages", "comment_counts",
    "comment_table", "key_results", "rating_items", "pairwise_mann_whitney", "Labels", "display_labels",
    "variables_of", "n_by_group", "group_sizes", "compare_items", "stage_scores", "compare_stages",
    "comparison_view", "ipa_view", "load_factor_scores", "satisfaction_model", "odds_ratio_record",
    "profile_counts", "gap_record", "profile_view", "profile_tests_view", "describe_view", "pairwise_view", "SurveyAnalysis", "analyse_study", "has_gaps",
    "ordinal_view", "reading", "key_numbers", "write_tables",
]

RATING_TYPES = ("importance", "performance", "outcome")
#: names of ``correction`` -> statsmodels ``multipletests`` method (always passed explicitly)
CORRECTIONS = {"holm": "holm", "fdr_bh": "fdr_bh", "bonferroni": "bonferroni", "none": None}
EXACT_LIMIT = 50  # R wilcox.test: exact p when both samples have fewer than 50 values and no ties


# --------------------------------------------------------------------------------------------------
# Small result types
# --------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class MannWhitney:
    """Wilcoxon rank-sum / Mann-Whitney test of ``x`` against ``y`` with the rank-biserial correlation."""

    U: float  # = R's W: rank sum of x minus n_x (n_x + 1) / 2
    p: float
    method: str  # "exact" or "normal"
    r_rb: float
    ci_low: float
    ci_high: float
    n_x: int
    n_y: int


@dataclass(frozen=True)
class SignedRank:
    """Paired Wilcoxon signed-rank test (normal approximation) with the matched-pairs rank-biserial r."""

    V: float  # R's V: sum of the ranks of the positive differences
    p: float
    r_rb: float
    ci_low: float
    ci_high: float
    n: int  # pairs
    n_nonzero: int  # pairs with a non-zero difference (the ones ranked)


@dataclass(frozen=True)
class KruskalWallis:
    """Kruskal-Wallis rank-sum test with the rank epsilon-squared effect size."""

    H: float
    df: int
    p: float
    epsilon_squared: float
    n: int


@dataclass(frozen=True)
class HedgesG:
    """Hedges' g with the unpooled (average-variance) standardiser and its noncentral-t CI."""

    g: float
    ci_low: float
    ci_high: float
    df: float


@dataclass(frozen=True)
class ContingencyTest:
    """Association of two categorical variables."""

    test: str  # "chi2", "chi2_yates", "fisher", "chi2_monte_carlo"
    chi2: float
    df: int
    p: float
    cramers_v: float
    n: int
    min_expected: float


@dataclass(frozen=True)
class GroupSpec:
    """The respondent grouping used by the comparisons: column, levels in display order, their labels."""

    column: str
    levels: tuple[str, ...]
    labels: Mapping[str, str] = field(default_factory=dict)

    @property
    def many(self) -> bool:
        """True when there are more than two levels (Kruskal-Wallis instead of Mann-Whitney)."""
        return len(self.levels) > 2


@dataclass(frozen=True)
class GroupComparison:
    """Output of :func:`compare`: the per-variable table and, for more than two groups, pairwise tests."""

    table: pd.DataFrame
    pairwise: pd.DataFrame | None
    test: str  # "mann_whitney" or "kruskal_wallis"


@dataclass(frozen=True)
class OrdinalRegression:
    """Proportional-odds (cumulative logit) model, parameterised as R ``MASS::polr``."""

    table: pd.DataFrame  # term, kind, estimate, se, z, p, odds_ratio, ci_low, ci_high
    outcome: str
    categories: tuple
    n: int
    n_dropped: int
    log_likelihood: float
    converged: bool


# --------------------------------------------------------------------------------------------------
# Building blocks (each reproduces one R function)
# --------------------------------------------------------------------------------------------------
def _clean(values: Any, what: str = "values") -> np.ndarray:
    """1-D float array without NaN; raises on non-numeric data instead of coercing it silently."""
    s = pd.Series(values)
    if not (pd.api.types.is_numeric_dtype(s) or pd.api.types.is_bool_dtype(s)):
        converted = pd.to_numeric(s, errors="coerce")
        bad = s.notna() & converted.isna()
        if bad.any():
            raise AnalysisError(f"{what}: non-numeric value {s[bad].iloc[0]!r} (expected numbers or missing)")
        s = converted
    arr = s.astype("float64").to_numpy()
    return arr[~np.isnan(arr)]


def _tie_term(values: np.ndarray) -> float:
    """sum(t^3 - t) over groups of tied values."""
    _, counts = np.unique(values, return_counts=True)
    counts = counts.astype(float)
    return float(np.sum(counts**3 - counts))


def _fisher_z_ci(r: float, se: float, level: float) -> tuple[float, float]:
    z = stats.norm.ppf(1 - (1 - level) / 2)
    with np.errstate(divide="ignore", invalid="ignore"):
        lo, hi = np.tanh(np.arctanh(r) + np.array([-1.0, 1.0]) * z * se)
    return float(lo), float(hi)


def rank_biserial(x: Sequence[float], y: Sequence[float] | None = None, *, paired: bool = False,
                  ci: float = 0.95) -> tuple[float, float, float]:
    """Rank-biserial correlation with its normal-approximation (Fisher z) CI, as effectsize 0.8.3.

    Two samples (Glass's r_rb): ``r = U_x / (n_x n_y) - U_y / (n_x n_y) = 2 U_x / (n_x n_y) - 1``; SE of
    ``atanh(r)`` taken as ``sqrt((n_x + n_y + 1) / (3 n_x n_y))``. Paired / one sample (matched-pairs r_rb)
    on ``d = x - y`` without zero differences: ``r = (R+ - R-) / (n_d (n_d + 1) / 2)``, SE
    ``sqrt((2 n_d^3 + 3 n_d^2 + n_d) / 6) / (n_d (n_d + 1) / 2)``. CI = ``tanh(atanh(r) +- z SE)``.

    Returns
    -------
    (r_rb, ci_low, ci_high)

    Notes
    -----
    Validated against R effectsize 0.8.3 ``rank_biserial`` (Holzinger-Swineford reference values and the
    package's own worked examples), see ``tests/test_survey.py``. Source: effectsize ``R/rank_diff.R``.
    """
    if paired or y is None:
        if y is None:
            d = _clean(x, "x")
        else:
            if len(x) != len(y):
                raise AnalysisError(f"rank_biserial: paired samples differ in length ({len(x)} and {len(y)})")
            xa, ya = _numeric(pd.Series(x), "x"), _numeric(pd.Series(y), "y")
            d = (xa - ya)[~(np.isnan(xa) | np.isnan(ya))]
        d = d[d != 0]
        n = d.size
        if n == 0:
            return math.nan, math.nan, math.nan
        ranks = stats.rankdata(np.abs(d))
        total = n * (n + 1) / 2
        r = float((ranks[d > 0].sum() - ranks[d < 0].sum()) / total)
        se = math.sqrt((2 * n**3 + 3 * n**2 + n) / 6) / total
        return (r, *_fisher_z_ci(r, se, ci))
    x, y = _clean(x, "x"), _clean(y, "y")
    n1, n2 = x.size, y.size
    if n1 == 0 or n2 == 0:
        return math.nan, math.nan, math.nan
    ranks = stats.rankdata(np.concatenate([x, y]))
    u1 = ranks[:n1].sum() - n1 * (n1 + 1) / 2
    r = float(2 * u1 / (n1 * n2) - 1)
    se = math.sqrt((n1 + n2 + 1) / (3 * n1 * n2))
    return (r, *_fisher_z_ci(r, se, ci))


def mann_whitney(x: Sequence[float], y: Sequence[float], *, exact: bool | None = None, correct: bool = True,
                 ci: float = 0.95) -> MannWhitney:
    """Two-sided Wilcoxon rank-sum (Mann-Whitney) test of ``x`` vs ``y``, as R ``wilcox.test(x, y)``.

    ``U = R_x - n_x (n_x + 1) / 2`` (R's ``W``). With ``exact=None`` the p-value is exact when both samples
    have fewer than 50 values and there are no ties (R's default), otherwise the normal approximation with
    tie correction ``sigma^2 = n_x n_y / 12 * ((N + 1) - sum(t^3 - t) / (N (N - 1)))`` and, when ``correct``,
    the continuity correction ``z = (U - n_x n_y / 2 - sign * 0.5) / sigma``. ``exact=False`` is
    ``wilcox.test(exact = FALSE)``.

    Notes
    -----
    Validated against R 4.2.2 ``wilcox.test(exact = FALSE, correct = TRUE)`` (Holzinger-Swineford, 1e-6)
    and the exact example in R's ``?wilcox.test`` (Hollander & Wolfe, 1973, p. 69).
    """
    x, y = _clean(x, "x"), _clean(y, "y")
    n1, n2 = x.size, y.size
    if n1 == 0 or n2 == 0:
        raise AnalysisError(f"mann_whitney: both samples need values (got {n1} and {n2})")
    combined = np.concatenate([x, y])
    ranks = stats.rankdata(combined)
    u = float(ranks[:n1].sum() - n1 * (n1 + 1) / 2)
    ties = np.unique(combined).size < combined.size
    use_exact = (n1 < EXACT_LIMIT and n2 < EXACT_LIMIT) if exact is None else exact
    if use_exact and not ties:
        # scipy's exact null distribution of U; R: 2 * min(P(U <= u), P(U >= u)), capped at 1
        p = float(stats.mannwhitneyu(x, y, alternative="two-sided", method="exact").pvalue)
        method = "exact"
    else:
        n = n1 + n2
        sigma = math.sqrt(n1 * n2 / 12 * ((n + 1) - _tie_term(combined) / (n * (n - 1))))
        z = u - n1 * n2 / 2
        z = (z - (np.sign(z) * 0.5 if correct else 0.0)) / sigma if sigma > 0 else math.nan
        p = float(2 * stats.norm.sf(abs(z))) if not math.isnan(z) else math.nan
        method = "normal"
    r, lo, hi = rank_biserial(x, y, ci=ci)
    return MannWhitney(U=u, p=p, method=method, r_rb=r, ci_low=lo, ci_high=hi, n_x=n1, n_y=n2)


def signed_rank(differences: Sequence[float], *, correct: bool = True, ci: float = 0.95) -> SignedRank:
    """Paired Wilcoxon signed-rank test on ``differences``, as R ``wilcox.test(d, exact=FALSE, correct=TRUE)``.

    Zero differences are dropped (R's default); ``V = sum(rank(|d|)[d > 0])``;
    ``sigma^2 = n (n + 1) (2n + 1) / 24 - sum(t^3 - t) / 48``; ``z = (V - n (n + 1) / 4 - sign * 0.5) / sigma``.
    The effect size is the matched-pairs rank-biserial correlation (:func:`rank_biserial`, paired).

    Notes
    -----
    Validated against scipy ``wilcoxon(zero_method="wilcox", correction=True, method="approx")`` and an
    independent implementation of R's formula in ``tests/test_survey.py``.
    """
    d = _clean(differences, "differences")
    n_pairs = d.size
    nz = d[d != 0]
    n = nz.size
    if n == 0:
        return SignedRank(V=math.nan, p=math.nan, r_rb=math.nan, ci_low=math.nan, ci_high=math.nan,
                          n=n_pairs, n_nonzero=0)
    ranks = stats.rankdata(np.abs(nz))
    v = float(ranks[nz > 0].sum())
    sigma = math.sqrt(n * (n + 1) * (2 * n + 1) / 24 - _tie_term(np.abs(nz)) / 48)
    z = v - n * (n + 1) / 4
    z = (z - (np.sign(z) * 0.5 if correct else 0.0)) / sigma if sigma > 0 else math.nan
    p = float(2 * stats.norm.sf(abs(z))) if not math.isnan(z) else math.nan
    r, lo, hi = rank_biserial(nz, paired=True, ci=ci)
    return SignedRank(V=v, p=p, r_rb=r, ci_low=lo, ci_high=hi, n=n_pairs, n_nonzero=n)


def kruskal_wallis(samples: Sequence[Sequence[float]]) -> KruskalWallis:
    """Kruskal-Wallis rank-sum test with tie correction, as R ``kruskal.test``, and rank epsilon-squared.

    ``H = (12 / (N (N + 1)) sum(R_i^2 / n_i) - 3 (N + 1)) / (1 - sum(t^3 - t) / (N^3 - N))``, ``df = k - 1``,
    ``p = P(chi2_df > H)``. Effect size as R effectsize 0.8.3 ``rank_epsilon_squared``:
    ``E^2_R = H / ((N^2 - 1) / (N + 1)) = H / (N - 1)`` (Tomczak & Tomczak, 2014; effectsize
    ``R/rank_ANOVA.R``, ``.repsilon``). effectsize's percentile-bootstrap CI is not reproduced.

    Notes
    -----
    Validated against the example in R's ``?kruskal.test`` (Hollander & Wolfe, 1973, p. 116: H = 0.7714,
    p = 0.68), effectsize's own test value for it (E^2 = 0.05934066) and ``scipy.stats.kruskal``.
    """
    groups = [_clean(s, f"group {i + 1}") for i, s in enumerate(samples)]
    if len(groups) < 2 or any(g.size == 0 for g in groups):
        raise AnalysisError("kruskal_wallis: needs at least two non-empty groups")
    combined = np.concatenate(groups)
    n = combined.size
    ranks = stats.rankdata(combined)
    bounds = np.cumsum([0] + [g.size for g in groups])
    rank_sums = np.add.reduceat(ranks, bounds[:-1])
    sizes = np.diff(bounds)
    h = 12 / (n * (n + 1)) * np.sum(rank_sums**2 / sizes) - 3 * (n + 1)
    denom = 1 - _tie_term(combined) / (n**3 - n)
    h = float(h / denom) if denom > 0 else math.nan
    df = len(groups) - 1
    p = float(stats.chi2.sf(h, df)) if not math.isnan(h) else math.nan
    eps = h / ((n**2 - 1) / (n + 1)) if not math.isnan(h) else math.nan
    return KruskalWallis(H=h, df=df, p=p, epsilon_squared=float(eps), n=n)


def _ncp_t(t: float, df: float, prob: float) -> float:
    """Noncentrality parameter ``ncp`` with ``P(T_df(ncp) <= t) = prob`` (monotone decreasing in ncp)."""
    def f(ncp: float) -> float:
        value = float(stats.nct.cdf(t, df, ncp))
        if math.isnan(value):  # far tails, where scipy's algorithm gives up: the value is 0 or 1
            value = 0.0 if ncp > t else 1.0
        return value - prob

    # the root lies within a few standard errors of t (sd of T is about sqrt(1 + t^2 / (2 df)))
    width = 3.0 * math.sqrt(1 + t * t / (2 * df)) + 1.0
    lo, hi = t - width, t + width
    while f(lo) < 0:
        lo -= width
    while f(hi) > 0:
        hi += width
    return float(optimize.brentq(f, lo, hi, xtol=1e-12, rtol=4 * np.finfo(float).eps, maxiter=500))


def hedges_g_unpooled(x: Sequence[float], y: Sequence[float], *, ci: float = 0.95) -> HedgesG:
    """Hedges' g of ``x - y`` with the unpooled standardiser, as effectsize 0.8.3 ``hedges_g(pooled_sd=FALSE)``.

    ``s = sqrt((s_x^2 + s_y^2) / 2)``; ``d = (mean_x - mean_y) / s``; Welch degrees of freedom
    ``df = se^4 / (se_x^4 / (n_x - 1) + se_y^4 / (n_y - 1))`` with ``se_i^2 = s_i^2 / n_i``; exact bias
    correction ``J = Gamma(df / 2) / (sqrt(df / 2) Gamma((df - 1) / 2))``; ``g = J d``.
    CI: the noncentral-t interval for the Welch ``t = (mean_x - mean_y) / se`` (solve
    ``P(T_df(ncp) <= t) = 0.975 / 0.025`` for ``ncp``) scaled by ``sqrt(hn)`` with
    ``hn = 2 (n_y s_x^2 + n_x s_y^2) / (n_x n_y (s_x^2 + s_y^2))`` and by ``J`` (effectsize ``R/cohens_d.R``,
    ``.effect_size_difference`` and ``.get_ncp_t``). effectsize locates ``ncp`` with ``optim``; here a
    bracketing root finder solves the same equations to 1e-13.

    Notes
    -----
    Validated against effectsize 0.8.3 (Holzinger-Swineford reference values; ``hedges_g(mpg ~ am, mtcars,
    pooled_sd = FALSE)`` = -1.352384 [-2.166064, -0.512016] as recorded by tidystats' test fixtures).
    """
    x, y = _clean(x, "x"), _clean(y, "y")
    n1, n2 = x.size, y.size
    if n1 < 2 or n2 < 2:
        return HedgesG(math.nan, math.nan, math.nan, math.nan)
    v1, v2 = x.var(ddof=1), y.var(ddof=1)
    if v1 + v2 == 0:
        return HedgesG(math.nan, math.nan, math.nan, math.nan)
    diff = x.mean() - y.mean()
    s = math.sqrt((v1 + v2) / 2)
    se1, se2 = v1 / n1, v2 / n2
    se = math.sqrt(se1 + se2)
    df = (se1 + se2) ** 2 / (se1**2 / (n1 - 1) + se2**2 / (n2 - 1))
    j = math.exp(special.gammaln(df / 2) - math.log(math.sqrt(df / 2)) - special.gammaln((df - 1) / 2))
    hn = 2 * (n2 * v1 + n1 * v2) / (n1 * n2 * (v1 + v2))
    t = diff / se
    alpha = 1 - ci
    lo = _ncp_t(t, df, 1 - alpha / 2) * math.sqrt(hn) * j
    hi = _ncp_t(t, df, alpha / 2) * math.sqrt(hn) * j
    return HedgesG(g=float(diff / s * j), ci_low=float(lo), ci_high=float(hi), df=float(df))


def adjust_pvalues(p: Sequence[float], method: str) -> np.ndarray:
    """Adjusted p-values with statsmodels ``multipletests(p, method=<method>)``; NaN entries stay NaN.

    ``method``: ``holm`` (R ``p.adjust(p, "holm")``), ``fdr_bh`` (R ``"BH"``), ``bonferroni``, ``none``.
    Validated against R 4.2.2 ``p.adjust`` (Holzinger-Swineford reference values).
    """
    if method not in CORRECTIONS:
        raise AnalysisError(f"correction {method!r} is not one of {', '.join(CORRECTIONS)}")
    p = np.asarray(p, dtype=float)
    out = np.full(p.shape, np.nan)
    ok = ~np.isnan(p)
    if not ok.any():
        return out
    sm_method = CORRECTIONS[method]
    out[ok] = p[ok] if sm_method is None else multipletests(p[ok], method=sm_method)[1]
    return out


# --------------------------------------------------------------------------------------------------
# Groups
# --------------------------------------------------------------------------------------------------
def _as_str_groups(series: pd.Series) -> pd.Series:
    """Group values as strings (NaN stays missing); integers stored as floats lose their ``.0``."""
    def conv(v: Any) -> Any:
        if v is None or (isinstance(v, float) and math.isnan(v)) or v is pd.NA:
            return pd.NA
        if isinstance(v, float | np.floating) and float(v).is_integer():
            return str(int(v))
        return str(v)
    return series.map(conv).astype("string")


def _need_columns(data: pd.DataFrame, columns: Sequence[str], what: str) -> None:
    missing = [c for c in columns if c not in data.columns]
    if missing:
        raise AnalysisError(f"{what}: column(s) {', '.join(missing)} not in the data "
                            f"(available: {', '.join(map(str, data.columns[:12]))}{' ...' if data.shape[1] > 12 else ''})")


def _resolve_levels(data: pd.DataFrame, group: str, levels: Sequence[Any] | None) -> tuple[pd.Series, list[str]]:
    _need_columns(data, [group], "group")
    g = _as_str_groups(data[group])
    if levels is None:
        levels = sorted(g.dropna().unique().tolist())
    levels = [str(v) for v in levels]
    if len(set(levels)) != len(levels):
        raise AnalysisError(f"group {group!r}: levels {levels} are repeated")
    if len(levels) < 2:
        raise AnalysisError(f"group {group!r}: needs at least two levels to compare, got {levels}")
    return g, levels


def group_spec(cfg: Any, data: pd.DataFrame | None = None, *, column: str | None = None,
               levels: Sequence[Any] | None = None) -> GroupSpec | None:
    """The grouping for a study: ``column``/``levels`` when given, else the config's ``group``.

    Returns ``None`` when neither names a group column (the notebook then skips the comparisons). Labels
    come from the config when its levels are used, otherwise the level itself.

    Raises
    ------
    AnalysisError
        When the column is not in ``data``, fewer than two levels result, or a level has no respondents.
    """
    cfg_group = getattr(cfg, "group", None)
    column = column or (cfg_group.column if cfg_group else None)
    if column is None:
        return None
    labels: dict[str, str] = {}
    if cfg_group is not None and column == cfg_group.column:
        labels = dict(cfg.group_labels())
        if levels is None:
            levels = list(cfg_group.levels)
    if data is not None:
        g, levels = _resolve_levels(data, column, levels)
        empty = [lv for lv in levels if not (g == lv).any()]
        if empty:
            raise AnalysisError(f"group {column!r}: level {empty[0]!r} has no respondents in the survey, so the "
                                "groups cannot be compared; remove the level from group.levels in the study "
                                "config or add its respondents")
    elif levels is None:
        raise AnalysisError(f"group {column!r}: levels are unknown (pass levels or data)")
    levels = [str(v) for v in levels]
    return GroupSpec(column=column, levels=tuple(levels), labels={lv: labels.get(lv, lv) for lv in levels})


def _split(values: pd.Series, g: pd.Series, levels: Sequence[str], what: str) -> list[np.ndarray]:
    x = pd.Series(_numeric(values, what), index=values.index)
    return [x[(g == lv).fillna(False).to_numpy()].dropna().to_numpy() for lv in levels]


def _numeric(values: pd.Series, what: str) -> np.ndarray:
    s = values
    if not pd.api.types.is_numeric_dtype(s):
        converted = pd.to_numeric(s, errors="coerce")
        bad = s.notna() & converted.isna()
        if bad.any():
            raise AnalysisError(f"column {what}: non-numeric value {s[bad].iloc[0]!r} (expected numbers or missing)")
        s = converted
    return s.astype("float64").to_numpy()


def _group_notes(samples: Sequence[np.ndarray], levels: Sequence[str]) -> list[str]:
    notes = []
    for lv, s in zip(levels, samples, strict=True):
        if s.size < 2:
            notes.append(f"group '{lv}' has {s.size} answer{'s' if s.size != 1 else ''} (at least 2 needed)")
    if not notes:
        pooled = np.concatenate(samples)
        if np.unique(pooled).size == 1:
            notes.append(f"no variance: every answer is {pooled[0]:g}")
    return notes


# --------------------------------------------------------------------------------------------------
# Tables
# --------------------------------------------------------------------------------------------------
def rating_items(codebook: pd.DataFrame, types: Sequence[str] = RATING_TYPES) -> list[str]:
    """Rating variables of the given types in codebook order."""
    return codebook.loc[codebook["type"].isin(types), "variable"].tolist()


def describe_items(data: pd.DataFrame, codebook: pd.DataFrame, *, by: str | None = None,
                   missing: pd.DataFrame | None = None, levels: Sequence[Any] | None = None,
                   items: Sequence[str] | None = None) -> pd.DataFrame:
    """Descriptive statistics of the rating items, overall and per group.

    Parameters
    ----------
    data
        One row per respondent (the processed ``survey`` table).
    codebook
        The study codebook (``cfg.codebook_table``); rating items are its importance, performance and
        outcome variables (or ``items``).
    by
        Optional group column; rows are given for every level (in ``levels`` order) and for ``all``.
    missing
        Optional ``survey_missing`` table (``respondent_id``, ``variable``, ``kind``) to split the missing
        answers into ``dont_know`` and ``skipped``; without it those columns are NA.

    Returns
    -------
    DataFrame
        ``variable, type, stage, factor, group, n, missing, dont_know, skipped, mean, sd, median, q1, q3,
        iqr, top2_pct``: ``n`` answers, ``missing`` respondents without an answer, sample SD (n - 1),
        quartiles and IQR as R's ``quantile(type = 7)`` / ``IQR``, ``top2_pct`` = percentage of answers in
        the two highest scale points (``>= scale_max - 1``).
    """
    items = list(items) if items is not None else rating_items(codebook)
    _need_columns(data, items, "describe_items")
    meta = codebook.set_index("variable")
    frame = pd.DataFrame({v: _numeric(data[v], v) for v in items}, index=data.index)
    groups: list[tuple[str, np.ndarray]] = []
    if by is not None:
        g, lvls = _resolve_levels(data, by, levels)
        groups = [(lv, (g == lv).fillna(False).to_numpy()) for lv in lvls]
    groups.append(("all", np.ones(len(data), dtype=bool)))
    kinds = None
    if missing is not None:
        _need_columns(missing, ["respondent_id", "variable", "kind"], "survey_missing")
        id_col = _id_column(codebook, data)
        kinds = missing.merge(pd.DataFrame({"respondent_id": data[id_col].to_numpy(),
                                            "_row": np.arange(len(data))}), on="respondent_id", how="inner")
    rows = []
    for label, mask in groups:
        sub = frame[mask]
        q = sub.quantile([0.25, 0.5, 0.75], interpolation="linear")
        top = meta.loc[items, "scale_max"].astype("float64").to_numpy() - 1
        n = sub.notna().sum()
        part = pd.DataFrame({
            "variable": items, "group": label, "n": n.to_numpy(), "missing": sub.isna().sum().to_numpy(),
            "mean": sub.mean().to_numpy(), "sd": sub.std(ddof=1).to_numpy(), "median": q.loc[0.5].to_numpy(),
            "q1": q.loc[0.25].to_numpy(), "q3": q.loc[0.75].to_numpy(),
            "top2_pct": (sub.ge(top, axis=1).sum().astype("float64") / n.replace(0, np.nan) * 100).to_numpy(dtype=float),
        })
        if kinds is not None:
            k = kinds[mask[kinds["_row"].to_numpy()]]
            counts = k.groupby(["variable", "kind"]).size().unstack(fill_value=0)
            for kind in ("dont_know", "skipped"):
                col = counts[kind] if kind in counts.columns else pd.Series(dtype="int64")
                part[kind] = col.reindex(items, fill_value=0).to_numpy()
        rows.append(part)
    out = pd.concat(rows, ignore_index=True)
    out["iqr"] = out["q3"] - out["q1"]
    for kind in ("dont_know", "skipped"):
        out[kind] = out[kind].astype("Int64") if kind in out.columns else pd.array([pd.NA] * len(out), "Int64")
    out["n"] = out["n"].astype("int64")
    out["missing"] = out["missing"].astype("int64")
    out = out.merge(codebook[["variable", "type", "stage", "factor"]], on="variable", how="left")
    order = {v: i for i, v in enumerate(items)}
    glev = {lv: i for i, (lv, _) in enumerate(groups)}
    out = out.sort_values(["variable", "group"], key=lambda s: s.map(order if s.name == "variable" else glev))
    return out[["variable", "type", "stage", "factor", "group", "n", "missing", "dont_know", "skipped", "mean",
                "sd", "median", "q1", "q3", "iqr", "top2_pct"]].reset_index(drop=True)


def _id_column(codebook: pd.DataFrame, data: pd.DataFrame) -> str:
    ids = codebook.loc[codebook["type"] == "id", "variable"].tolist()
    if ids and ids[0] in data.columns:
        return ids[0]
    if "respondent_id" in data.columns:
        return "respondent_id"
    raise AnalysisError("no respondent id column (codebook type 'id') in the data")


def compare_groups(data: pd.DataFrame, group: str, columns: Sequence[str], *,
                   levels: Sequence[Any] | None = None, correction: str = "holm",
                   ci: float = 0.95) -> pd.DataFrame:
    """Compare two respondent groups on each column (Mann-Whitney, Welch t, effect sizes, adjusted p).

    With more than two ``levels`` this returns the Kruskal-Wallis table of :func:`compare_many_groups`.

    Parameters
    ----------
    data
        One row per respondent.
    group
        Group column; values are compared as strings.
    columns
        Numeric columns to compare (e.g. the rating items).
    levels
        Group levels in order (default: sorted distinct values). ``levels[0]`` is group 1.
    correction
        Which adjusted p-value goes into ``p_adj``: ``holm``, ``fdr_bh``, ``bonferroni`` or ``none``.
        ``p_holm`` and ``p_bh`` are always given (statsmodels ``multipletests`` with ``method="holm"`` and
        ``method="fdr_bh"``, over the columns of this call).

    Returns
    -------
    DataFrame
        One row per column: ``variable, test, group_1, group_2, n_1, n_2, median_1, median_2, mean_1,
        mean_2, U, p, u_method, r_rb, r_rb_ci_low, r_rb_ci_high, t, df, p_t, g, g_ci_low, g_ci_high, p_holm,
        p_bh, p_adj, note``. ``U`` is the Mann-Whitney statistic of group 1 (R ``wilcox.test`` ``W``), ``p``
        its two-sided p (:func:`mann_whitney`), ``r_rb`` the rank-biserial correlation (positive = group 1
        higher), ``t``/``df``/``p_t`` Welch's t-test (R ``t.test(var.equal = FALSE)``), ``g`` Hedges' g
        unpooled (:func:`hedges_g_unpooled`).

    Notes
    -----
    Validated against R 4.2.2 ``wilcox.test``, ``t.test``, ``p.adjust`` and effectsize 0.8.3
    ``rank_biserial``/``hedges_g`` on Holzinger-Swineford (sex 1 vs 2 on x1, x4, x7) to 1e-6.
    """
    g, levels = _resolve_levels(data, group, levels)
    if len(levels) > 2:
        return compare_many_groups(data, group, columns, levels=levels, correction=correction).table
    _need_columns(data, columns, "compare_groups")
    rows = []
    for col in columns:
        x, y = _split(data[col], g, levels, col)
        notes = _group_notes([x, y], levels)
        row: dict[str, Any] = {"variable": col, "test": "mann_whitney", "group_1": levels[0],
                               "group_2": levels[1], "n_1": x.size, "n_2": y.size,
                               "median_1": float(np.median(x)) if x.size else math.nan,
                               "median_2": float(np.median(y)) if y.size else math.nan,
                               "mean_1": float(x.mean()) if x.size else math.nan,
                               "mean_2": float(y.mean()) if y.size else math.nan}
        nan_stats = dict.fromkeys(["U", "p", "r_rb", "r_rb_ci_low", "r_rb_ci_high", "t", "df", "p_t", "g",
                                   "g_ci_low", "g_ci_high"], math.nan)
        row.update(nan_stats, u_method=pd.NA)
        if not notes:
            mw = mann_whitney(x, y, ci=ci)
            row.update(U=mw.U, p=mw.p, u_method=mw.method, r_rb=mw.r_rb, r_rb_ci_low=mw.ci_low,
                       r_rb_ci_high=mw.ci_high)
            if x.var(ddof=1) + y.var(ddof=1) > 0:
                tt = stats.ttest_ind(x, y, equal_var=False)
                hg = hedges_g_unpooled(x, y, ci=ci)
                row.update(t=float(tt.statistic), df=float(tt.df), p_t=float(tt.pvalue), g=hg.g,
                           g_ci_low=hg.ci_low, g_ci_high=hg.ci_high)
            else:
                notes.append("no variance within the groups: Welch t and Hedges' g undefined")
        row["note"] = "; ".join(notes) if notes else pd.NA
        rows.append(row)
    out = pd.DataFrame(rows)
    out = _add_adjusted(out, correction)
    cols = ["variable", "test", "group_1", "group_2", "n_1", "n_2", "median_1", "median_2", "mean_1", "mean_2",
            "U", "p", "u_method", "r_rb", "r_rb_ci_low", "r_rb_ci_high", "t", "df", "p_t", "g", "g_ci_low",
            "g_ci_high", "p_holm", "p_bh", "p_adj", "note"]
    out = out[cols]
    return _typed(out)


def _typed(out: pd.DataFrame) -> pd.DataFrame:
    for c in out.columns:
        if c in ("note", "u_method", "variable", "test", "group_1", "group_2", "group"):
            out[c] = out[c].astype("string")
        elif c.startswith("n_") or c in ("n", "df_kw"):
            out[c] = out[c].astype("int64")
    return out


def _add_adjusted(out: pd.DataFrame, correction: str) -> pd.DataFrame:
    if correction not in CORRECTIONS:
        raise AnalysisError(f"correction {correction!r} is not one of {', '.join(CORRECTIONS)}")
    out = out.copy()
    p = out["p"].to_numpy(dtype=float) if len(out) else np.array([])
    out["p_holm"] = adjust_pvalues(p, "holm")
    out["p_bh"] = adjust_pvalues(p, "fdr_bh")
    out["p_adj"] = adjust_pvalues(p, correction)
    return out


def pairwise_mann_whitney(data: pd.DataFrame, group: str, columns: Sequence[str], *,
                          levels: Sequence[Any] | None = None, ci: float = 0.95) -> pd.DataFrame:
    """All pairs of levels per column: Mann-Whitney U, p, rank-biserial r, Holm-adjusted within the column.

    Equivalent to R ``pairwise.wilcox.test(x, g, p.adjust.method = "holm")`` (same exact/normal rule,
    continuity correction). Columns: ``variable, group_1, group_2, n_1, n_2, U, p, r_rb, r_rb_ci_low,
    r_rb_ci_high, p_holm, note``.
    """
    g, levels = _resolve_levels(data, group, levels)
    _need_columns(data, columns, "pairwise_mann_whitney")
    rows = []
    for col in columns:
        samples = dict(zip(levels, _split(data[col], g, levels, col), strict=True))
        block = []
        for a, b in itertools.combinations(levels, 2):
            x, y = samples[a], samples[b]
            notes = _group_notes([x, y], [a, b])
            row = {"variable": col, "group_1": a, "group_2": b, "n_1": x.size, "n_2": y.size, "U": math.nan,
                   "p": math.nan, "r_rb": math.nan, "r_rb_ci_low": math.nan, "r_rb_ci_high": math.nan}
            if not notes:
                mw = mann_whitney(x, y, ci=ci)
                row.update(U=mw.U, p=mw.p, r_rb=mw.r_rb, r_rb_ci_low=mw.ci_low, r_rb_ci_high=mw.ci_high)
            row["note"] = "; ".join(notes) if notes else pd.NA
            block.append(row)
        block_df = pd.DataFrame(block)
        block_df["p_holm"] = adjust_pvalues(block_df["p"].to_numpy(dtype=float), "holm")
        rows.append(block_df)
    out = pd.concat(rows, ignore_index=True)
    return _typed(out[["variable", "group_1", "group_2", "n_1", "n_2", "U", "p", "r_rb", "r_rb_ci_low",
                       "r_rb_ci_high", "p_holm", "note"]])


def compare_many_groups(data: pd.DataFrame, group: str, columns: Sequence[str], *,
                        levels: Sequence[Any] | None = None, correction: str = "holm") -> GroupComparison:
    """Kruskal-Wallis per column (with rank epsilon-squared) and pairwise Mann-Whitney tests with Holm.

    ``table`` columns: ``variable, test, groups, n, H, df, p, epsilon_squared, p_holm, p_bh, p_adj, note``
    plus ``n_<level>`` and ``median_<level>`` per level (level names in the column names). ``pairwise``:
    see :func:`pairwise_mann_whitney`. A group with fewer than two answers or a constant column gives NaN
    statistics and a note. Validated as :func:`kruskal_wallis`.
    """
    g, levels = _resolve_levels(data, group, levels)
    _need_columns(data, columns, "compare_many_groups")
    rows = []
    for col in columns:
        samples = _split(data[col], g, levels, col)
        notes = _group_notes(samples, levels)
        row: dict[str, Any] = {"variable": col, "test": "kruskal_wallis", "groups": len(levels),
                               "n": int(sum(s.size for s in samples)), "H": math.nan, "df": len(levels) - 1,
                               "p": math.nan, "epsilon_squared": math.nan}
        for lv, s in zip(levels, samples, strict=True):
            row[f"n_{lv}"] = s.size
            row[f"median_{lv}"] = float(np.median(s)) if s.size else math.nan
        if not notes:
            kw = kruskal_wallis(samples)
            row.update(H=kw.H, p=kw.p, epsilon_squared=kw.epsilon_squared)
        row["note"] = "; ".join(notes) if notes else pd.NA
        rows.append(row)
    table = _add_adjusted(pd.DataFrame(rows), correction)
    front = ["variable", "test", "groups", "n", "H", "df", "p", "epsilon_squared", "p_holm", "p_bh", "p_adj"]
    per_level = [c for lv in levels for c in (f"n_{lv}", f"median_{lv}")]
    table = table[front + per_level + ["note"]]
    table["df"] = table["df"].astype("int64")
    table["groups"] = table["groups"].astype("int64")
    table = _typed(table)
    pairwise = pairwise_mann_whitney(data, group, columns, levels=levels)
    return GroupComparison(table=table, pairwise=pairwise, test="kruskal_wallis")


def compare(data: pd.DataFrame, spec: GroupSpec, columns: Sequence[str], *, correction: str = "holm",
            codebook: pd.DataFrame | None = None) -> GroupComparison:
    """Two groups: :func:`compare_groups`; more: :func:`compare_many_groups`. Adds codebook metadata.

    With a ``codebook`` the table gains ``type``, ``stage`` and ``factor`` columns after ``variable``.
    """
    if spec.many:
        res = compare_many_groups(data, spec.column, columns, levels=spec.levels, correction=correction)
    else:
        res = GroupComparison(table=compare_groups(data, spec.column, columns, levels=spec.levels,
                                                   correction=correction), pairwise=None, test="mann_whitney")
    if codebook is not None:
        meta = codebook[["variable", "type", "stage", "factor"]]
        table = res.table.merge(meta, on="variable", how="left")
        cols = ["variable", "type", "stage", "factor"] + [c for c in res.table.columns if c != "variable"]
        res = GroupComparison(table=table[cols], pairwise=res.pairwise, test=res.test)
    return res


def compare_factor_scores(scores: pd.DataFrame, group: str, *, columns: Sequence[str] | None = None,
                          levels: Sequence[Any] | None = None, correction: str = "holm") -> pd.DataFrame:
    """:func:`compare_groups` on the factor scores written by the efa notebook (``factor_scores`` table).

    ``columns`` default to the factor columns ``F1``, ``F2``, ... of the table.
    """
    if columns is None:
        columns = [c for c in scores.columns if re.fullmatch(r"F\d+", str(c))]
    if not columns:
        raise AnalysisError("factor_scores: no factor columns (F1, F2, ...) to compare")
    return compare_groups(scores, group, columns, levels=levels, correction=correction)


# --------------------------------------------------------------------------------------------------
# Importance-performance gaps
# --------------------------------------------------------------------------------------------------
def _factor_pairs(codebook: pd.DataFrame) -> pd.DataFrame:
    imp = codebook.loc[codebook["type"] == "importance", ["variable", "stage", "factor"]]
    perf = codebook.loc[codebook["type"] == "performance", ["variable", "factor"]]
    pairs = imp.merge(perf, on="factor", suffixes=("_imp", "_perf"))
    if pairs.empty:
        raise AnalysisError("codebook: no factor has both an importance and a performance item")
    return pairs


def _gap_rows(imp: pd.DataFrame, perf: pd.DataFrame, keys: pd.DataFrame, masks: list[tuple[str, np.ndarray]],
              key_cols: list[str]) -> pd.DataFrame:
    rows = []
    for label, mask in masks:
        for j in range(imp.shape[1]):
            i_val, p_val = imp.iloc[:, j].to_numpy()[mask], perf.iloc[:, j].to_numpy()[mask]
            ok = ~(np.isnan(i_val) | np.isnan(p_val))
            d = i_val[ok] - p_val[ok]
            row = {k: keys.iloc[j][k] for k in key_cols}
            row.update(group=label, n=int(ok.sum()),
                       importance=float(i_val[ok].mean()) if ok.any() else math.nan,
                       performance=float(p_val[ok].mean()) if ok.any() else math.nan)
            row["gap"] = row["importance"] - row["performance"]
            note = pd.NA
            if ok.sum() < 2:
                note = f"{int(ok.sum())} respondent(s) answered both items (at least 2 needed)"
                sr = None
            else:
                sr = signed_rank(d)
                if sr.n_nonzero == 0:
                    note = "importance equals performance for every respondent"
            row.update(gap_p=sr.p if sr else math.nan, gap_effect=sr.r_rb if sr else math.nan,
                       gap_effect_ci_low=sr.ci_low if sr else math.nan,
                       gap_effect_ci_high=sr.ci_high if sr else math.nan,
                       V=sr.V if sr else math.nan, n_nonzero=sr.n_nonzero if sr else 0, note=note)
            rows.append(row)
    return pd.DataFrame(rows)


def _group_masks(data: pd.DataFrame, group: str | None, levels: Sequence[Any] | None) -> list[tuple[str, np.ndarray]]:
    masks: list[tuple[str, np.ndarray]] = []
    if group is not None:
        g, lvls = _resolve_levels(data, group, levels)
        masks = [(lv, (g == lv).fillna(False).to_numpy()) for lv in lvls]
    masks.append(("all", np.ones(len(data), dtype=bool)))
    return masks


def _finish_gaps(out: pd.DataFrame, correction: str, key_cols: list[str]) -> pd.DataFrame:
    out["gap_p_adj"] = np.nan
    for label in out["group"].unique():
        m = (out["group"] == label).to_numpy()
        out.loc[m, "gap_p_adj"] = adjust_pvalues(out.loc[m, "gap_p"].to_numpy(dtype=float), correction)
    cols = key_cols + ["group", "n", "importance", "performance", "gap", "gap_p", "gap_effect",
                       "gap_effect_ci_low", "gap_effect_ci_high", "gap_p_adj", "V", "n_nonzero", "note"]
    out = out[cols].copy()
    out["n"] = out["n"].astype("int64")
    out["n_nonzero"] = out["n_nonzero"].astype("int64")
    for c in ("group", "note", *key_cols):
        out[c] = out[c].astype("string")
    return out.reset_index(drop=True)


def ipa_gaps(data: pd.DataFrame, codebook: pd.DataFrame, *, group: str | None = None,
             levels: Sequence[Any] | None = None, correction: str = "holm") -> pd.DataFrame:
    """Importance-performance gap per factor, per group level and ``all`` (the ``ipa_items`` table).

    For each factor with an importance and a performance item, respondents answering both give
    ``d = importance - performance``. ``importance``/``performance`` are the means over those respondents
    (``n``), ``gap`` = mean of ``d``; ``gap_p`` = paired Wilcoxon signed-rank p (R
    ``wilcox.test(imp, perf, paired = TRUE, exact = FALSE, correct = TRUE)``, zero differences dropped);
    ``gap_effect`` = matched-pairs rank-biserial r (effectsize ``rank_biserial(paired = TRUE)``; positive =
    importance above performance) with ``gap_effect_ci_low/high``; ``gap_p_adj`` = ``correction`` over the
    factors within each group; ``V`` and ``n_nonzero`` as in :func:`signed_rank`.

    Columns: ``stage, factor, group, n, importance, performance, gap, gap_p, gap_effect, gap_effect_ci_low,
    gap_effect_ci_high, gap_p_adj, V, n_nonzero, note``.
    """
    pairs = _factor_pairs(codebook)
    _need_columns(data, pairs["variable_imp"].tolist() + pairs["variable_perf"].tolist(), "ipa_gaps")
    imp = pd.DataFrame({v: _numeric(data[v], v) for v in pairs["variable_imp"]})
    perf = pd.DataFrame({v: _numeric(data[v], v) for v in pairs["variable_perf"]})
    masks = _group_masks(data, group, levels)
    out = _gap_rows(imp, perf, pairs, masks, ["stage", "factor"])
    return _finish_gaps(out, correction, ["stage", "factor"])


def stage_means(data: pd.DataFrame, codebook: pd.DataFrame, *, item_type: str = "performance",
                min_items: int = 1) -> pd.DataFrame:
    """Per respondent, the mean of each stage's items of ``item_type`` (available-item mean).

    A respondent needs at least ``min_items`` answered items of a stage, else NaN. Returns one column per
    stage code (codebook order), index aligned with ``data``.
    """
    items = codebook.loc[(codebook["type"] == item_type) & codebook["stage"].notna(), ["variable", "stage"]]
    if items.empty:
        raise AnalysisError(f"codebook: no {item_type} items with a stage")
    _need_columns(data, items["variable"].tolist(), "stage_means")
    out = {}
    for stage, block in items.groupby("stage", sort=False):
        vals = np.column_stack([_numeric(data[v], v) for v in block["variable"]])
        count = (~np.isnan(vals)).sum(axis=1)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            mean = np.nanmean(vals, axis=1)
        out[stage] = np.where(count >= min_items, mean, np.nan)
    return pd.DataFrame(out, index=data.index)


def ipa_stage_gaps(data: pd.DataFrame, codebook: pd.DataFrame, *, group: str | None = None,
                   levels: Sequence[Any] | None = None, correction: str = "holm") -> pd.DataFrame:
    """Stage-level importance-performance gaps (the ``ipa_stages`` table).

    Each respondent's stage importance and performance are the means of the stage's answered items
    (:func:`stage_means`); the gap test and effect size are as in :func:`ipa_gaps`. Columns: ``stage,
    group, n, importance, performance, gap, gap_p, gap_effect, gap_effect_ci_low, gap_effect_ci_high,
    gap_p_adj, V, n_nonzero, note``.
    """
    imp = stage_means(data, codebook, item_type="importance").reset_index(drop=True)
    perf = stage_means(data, codebook, item_type="performance").reset_index(drop=True)
    common = [s for s in imp.columns if s in perf.columns]
    keys = pd.DataFrame({"stage": common})
    masks = _group_masks(data, group, levels)
    out = _gap_rows(imp[common], perf[common], keys, masks, ["stage"])
    return _finish_gaps(out, correction, ["stage"])


# --------------------------------------------------------------------------------------------------
# Ordinal regression
# --------------------------------------------------------------------------------------------------
def _design(frame: pd.DataFrame, predictors: Sequence[str]) -> pd.DataFrame:
    """Numeric predictors as they are; categorical ones as treatment dummies (first level = reference)."""
    parts = []
    for p in predictors:
        s = frame[p]
        if isinstance(s.dtype, pd.CategoricalDtype) or not pd.api.types.is_numeric_dtype(s):
            cats = (list(s.cat.categories) if isinstance(s.dtype, pd.CategoricalDtype)
                    else sorted(s.dropna().astype(str).unique()))
            values = s.astype(str) if not isinstance(s.dtype, pd.CategoricalDtype) else s
            present = [c for c in cats if (values == c).any()]
            if len(present) < 2:
                raise AnalysisError(f"ordinal_regression: predictor {p!r} has fewer than two levels in the data")
            for c in present[1:]:
                parts.append(pd.Series((values == c).astype(float).to_numpy(), index=frame.index, name=f"{p}{c}"))
        else:
            parts.append(s.astype("float64").rename(p))
    return pd.concat(parts, axis=1)


def ordinal_regression(data: pd.DataFrame, outcome: str, predictors: Sequence[str], *, ci: float = 0.95,
                       maxiter: int = 2000) -> OrdinalRegression:
    """Proportional-odds logistic regression, statsmodels ``OrderedModel(..., distr="logit")``.

    The model is ``logit P(Y <= k) = zeta_k - x'beta`` as R ``MASS::polr(method = "logistic")``: positive
    coefficients mean higher outcome categories; ``odds_ratio = exp(beta)`` with Wald CIs
    ``exp(beta +- z SE)`` (R ``confint.default``; ``confint(polr)`` profiles the likelihood instead).
    Categorical predictors enter as treatment dummies against their first level (categorical order, else
    sorted); terms are named ``<predictor><level>`` as in R. Outcome categories are the sorted distinct
    values. Rows with a missing outcome or predictor are dropped (``n_dropped``). Cutpoints (``kind =
    "threshold"``, named ``<k>|<k+1>``) are reported on R's scale with delta-method SEs (statsmodels
    estimates the first cutpoint and log increments).

    Notes
    -----
    Validated against R ``MASS::polr(Sat ~ Infl + Type + Cont, weights = Freq, data = housing)`` (Venables
    & Ripley, 2002, ch. 7.3) to 1e-4 for estimates and standard errors.
    """
    from statsmodels.miscmodels.ordinal_model import OrderedModel

    _need_columns(data, [outcome, *predictors], "ordinal_regression")
    if not predictors:
        raise AnalysisError("ordinal_regression: needs at least one predictor")
    frame = data[[outcome, *predictors]].copy()
    frame[outcome] = _numeric(frame[outcome], outcome)
    keep = frame.notna().all(axis=1)
    n_dropped = int((~keep).sum())
    frame = frame[keep]
    categories = tuple(sorted(frame[outcome].unique().tolist()))
    if len(categories) < 3:
        raise AnalysisError(f"ordinal_regression: outcome {outcome!r} has {len(categories)} categories "
                            "(at least 3 needed for an ordinal model)")
    exog = _design(frame, predictors)
    constant = [c for c in exog.columns if exog[c].nunique() < 2]
    if constant:
        raise AnalysisError(f"ordinal_regression: predictor(s) {', '.join(constant)} are constant in the "
                            f"{len(frame)} complete rows")
    endog = pd.Series(pd.Categorical(frame[outcome], categories=list(categories), ordered=True),
                      index=frame.index, name=outcome)
    model = OrderedModel(endog, exog, distr="logit")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = model.fit(method="bfgs", disp=False, maxiter=maxiter, gtol=1e-8)
    converged = bool(res.mle_retvals.get("converged", False))
    if not converged:
        warnings.warn(f"ordinal regression of {outcome}: the optimiser did not converge; treat the odds "
                      "ratios with caution", RuntimeWarning, stacklevel=2)
    params = np.asarray(res.params, float)
    try:
        cov = np.asarray(res.cov_params(), float)
    except (ValueError, np.linalg.LinAlgError):  # statsmodels: no covariance when the Hessian is singular
        cov = np.full((params.size, params.size), np.nan)
    if not (np.all(np.isfinite(np.diag(cov))) and np.all(np.diag(cov) > 0)):
        raise AnalysisError(f"ordinal_regression of {outcome!r}: the information matrix is singular "
                            f"({len(frame)} complete rows for {params.size} parameters, or categories perfectly "
                            "separated by a predictor), so no standard errors can be computed")
    k = exog.shape[1]
    beta, beta_cov = params[:k], cov[:k, :k]
    raw = params[k:]
    # cutpoints zeta_j = raw_0 + sum_{i<=j, i>=1} exp(raw_i); Jacobian for the delta method
    zeta = np.cumsum(np.concatenate([[raw[0]], np.exp(raw[1:])]))
    jac = np.zeros((raw.size, raw.size))
    jac[:, 0] = 1.0
    for j in range(1, raw.size):
        jac[j:, j] = np.exp(raw[j])
    zeta_cov = jac @ cov[k:, k:] @ jac.T
    est = np.concatenate([beta, zeta])
    se = np.sqrt(np.concatenate([np.diag(beta_cov), np.diag(zeta_cov)]))
    z = est / se
    p = 2 * stats.norm.sf(np.abs(z))
    crit = stats.norm.ppf(1 - (1 - ci) / 2)
    names = list(exog.columns) + [f"{_fmt_cat(a)}|{_fmt_cat(b)}" for a, b in zip(categories[:-1], categories[1:], strict=True)]
    kinds = ["coefficient"] * k + ["threshold"] * raw.size
    table = pd.DataFrame({"term": names, "kind": kinds, "estimate": est, "se": se, "z": z, "p": p})
    is_coef = table["kind"] == "coefficient"
    table["odds_ratio"] = np.where(is_coef, np.exp(est), np.nan)
    table["ci_low"] = np.where(is_coef, np.exp(est - crit * se), np.nan)
    table["ci_high"] = np.where(is_coef, np.exp(est + crit * se), np.nan)
    table["term"] = table["term"].astype("string")
    table["kind"] = table["kind"].astype("string")
    return OrdinalRegression(table=table, outcome=outcome, categories=categories, n=int(len(frame)),
                             n_dropped=n_dropped, log_likelihood=float(res.llf), converged=converged)


def _fmt_cat(v: Any) -> str:
    return str(int(v)) if isinstance(v, float) and float(v).is_integer() else str(v)


# --------------------------------------------------------------------------------------------------
# Profile (categorical) variables
# --------------------------------------------------------------------------------------------------
def _chi2_stat(table: np.ndarray) -> tuple[float, np.ndarray]:
    n = table.sum()
    expected = np.outer(table.sum(axis=1), table.sum(axis=0)) / n
    return float(((table - expected) ** 2 / expected).sum()), expected


def contingency_test(table: np.ndarray | pd.DataFrame, *, n_sim: int = 2000, seed: int = 0,
                     fisher_below: float = 5.0) -> ContingencyTest:
    """Association test for an r x c table of counts, with Cramér's V.

    * 2 x 2, every expected count >= ``fisher_below``: Pearson chi-square with Yates' continuity correction
      (R ``chisq.test(x)``, ``correct = TRUE`` only applies to 2 x 2; ``|O - E|`` reduced by
      ``min(0.5, |O - E|)``).
    * 2 x 2 with an expected count below ``fisher_below``: Fisher's exact test (R ``fisher.test``).
    * larger tables: Pearson chi-square without correction (R ``chisq.test(x, correct = FALSE)``); when an
      expected count is below ``fisher_below`` the asymptotic p is unreliable and the p-value is the
      Monte-Carlo one of R ``chisq.test(x, simulate.p.value = TRUE, B = n_sim)``: tables with the observed
      margins are simulated (here by permuting the column labels, seeded), ``p = (1 + #{X2* >= X2}) /
      (B + 1)``. Chosen over an r x c Fisher test, which R computes by network algorithm but scipy lacks;
      the Monte-Carlo p differs from R's by simulation error only.

    Cramér's V is always computed from the uncorrected chi-square: ``V = sqrt(X2 / (n (min(r, c) - 1)))``
    (effectsize ``cramers_v(adjust = FALSE)``). Rows/columns summing to zero are dropped first.

    Notes
    -----
    Validated against R ``chisq.test`` (the worked example in effectsize's ``chisq_to_phi`` help: X2 =
    41.234, df = 4, p = 2.405e-08), R ``fisher.test`` on Fisher's tea-tasting table (p = 0.4857) and
    scipy ``chi2_contingency``/``fisher_exact``/``contingency.association``.
    """
    t = np.asarray(table, dtype=float)
    t = t[t.sum(axis=1) > 0][:, t.sum(axis=0) > 0]
    if t.ndim != 2 or min(t.shape) < 2:
        raise AnalysisError(f"contingency_test: needs at least a 2 x 2 table with non-empty margins, got {t.shape}")
    n = int(t.sum())
    chi2, expected = _chi2_stat(t)
    df = (t.shape[0] - 1) * (t.shape[1] - 1)
    v = math.sqrt(chi2 / (n * (min(t.shape) - 1)))
    min_exp = float(expected.min())
    if t.shape == (2, 2):
        if min_exp < fisher_below:
            p = float(stats.fisher_exact(t.astype(int), alternative="two-sided").pvalue)
            return ContingencyTest("fisher", chi2, df, p, v, n, min_exp)
        yates = np.minimum(0.5, np.abs(t - expected))
        chi2_y = float(((np.abs(t - expected) - yates) ** 2 / expected).sum())
        return ContingencyTest("chi2_yates", chi2_y, df, float(stats.chi2.sf(chi2_y, df)), v, n, min_exp)
    if min_exp >= fisher_below or n_sim <= 0:
        return ContingencyTest("chi2", chi2, df, float(stats.chi2.sf(chi2, df)), v, n, min_exp)
    rows = np.repeat(np.arange(t.shape[0]), t.sum(axis=1).astype(int))
    cols = np.concatenate([np.repeat(np.arange(t.shape[1]), t[i].astype(int)) for i in range(t.shape[0])])
    rng = np.random.default_rng(seed)
    perm = rng.permuted(np.tile(cols, (n_sim, 1)), axis=1)
    cells = (np.arange(n_sim)[:, None] * t.size + rows[None, :] * t.shape[1] + perm).ravel()
    sims = np.bincount(cells, minlength=n_sim * t.size).reshape(n_sim, *t.shape)
    sim_chi2 = ((sims - expected) ** 2 / expected).sum(axis=(1, 2))
    almost_one = 1 - 64 * np.finfo(float).eps  # as R, so ties with the observed statistic count
    p = float((1 + np.sum(sim_chi2 >= almost_one * chi2)) / (n_sim + 1))
    return ContingencyTest("chi2_monte_carlo", chi2, df, p, v, n, min_exp)


MULTI_SELECT_SEPARATOR = ";"
NUMERIC_PROFILE_MIN_VALUES = 8  # numeric profile variables with at least this many values are rank-tested


def _profile_kind(values: pd.Series) -> str:
    """``numeric`` (many numeric values), ``multi`` (";"-separated choices) or ``categorical``."""
    if pd.api.types.is_numeric_dtype(values) and values.nunique() >= NUMERIC_PROFILE_MIN_VALUES:
        return "numeric"
    if not pd.api.types.is_numeric_dtype(values):
        text = values.dropna().astype(str)
        if text.str.contains(MULTI_SELECT_SEPARATOR, regex=False).any():
            return "multi"
    return "categorical"


def _multi_indicators(values: pd.Series, column: str) -> dict[str, pd.Series]:
    """One 0/1 column per choice of a multi-select answer (missing answers stay missing)."""
    parts = values.astype("string").str.split(MULTI_SELECT_SEPARATOR)
    choices = sorted({c.strip() for lst in parts.dropna() for c in lst if c.strip()})
    out = {}
    for choice in choices:
        flag = parts.map(lambda lst, c=choice: pd.NA if lst is pd.NA or lst is None
                         else ("yes" if c in [x.strip() for x in lst] else "no"))
        out[f"{column}: {choice}"] = flag.astype("string")
    return out


def profile_table(data: pd.DataFrame, group: str, column: str, *, levels: Sequence[Any] | None = None) -> pd.DataFrame:
    """Counts and column percentages of ``column`` by group: ``variable, category, group, count, percent``.

    A multi-select column (choices separated by ``;``) is counted per choice (a respondent may count in
    several categories; percentages are of the group's respondents who answered).
    """
    g, levels = _resolve_levels(data, group, levels)
    _need_columns(data, [column], "profile_table")
    raw = data[column]
    kind = _profile_kind(raw)
    if kind == "multi":
        ind = _multi_indicators(raw, column)
        frames = []
        answered = raw.notna() & g.isin(levels).fillna(False)
        for name, flag in ind.items():
            counts = flag[answered].eq("yes").groupby(g[answered].rename("group")).sum().reindex(levels, fill_value=0)
            frames.append(pd.DataFrame({"category": name.split(": ", 1)[1], "group": levels,
                                        "count": counts.to_numpy()}))
        long = pd.concat(frames, ignore_index=True)
        totals = long["group"].map(answered.groupby(g[answered].rename("group")).sum().reindex(levels, fill_value=0))
    else:
        values = _as_str_groups(raw)
        keep = g.isin(levels).fillna(False) & values.notna()
        ct = pd.crosstab(values[keep].rename("category"), g[keep].rename("group")).reindex(columns=levels,
                                                                                            fill_value=0)
        if kind == "numeric" or pd.api.types.is_numeric_dtype(raw):
            ct = ct.loc[sorted(ct.index, key=lambda v: float(v))]
        long = ct.stack().rename("count").reset_index()
        long.columns = ["category", "group", "count"]
        totals = long.groupby("group")["count"].transform("sum")
    long["percent"] = np.where(totals > 0, long["count"] / totals.replace(0, np.nan) * 100, np.nan)
    long.insert(0, "variable", column)
    long["count"] = long["count"].astype("int64")
    for c in ("variable", "category", "group"):
        long[c] = long[c].astype("string")
    return long[["variable", "category", "group", "count", "percent"]]


def profile_by_group(data: pd.DataFrame, group: str, columns: Sequence[str], *,
                     levels: Sequence[Any] | None = None, n_sim: int = 2000, seed: int = 0) -> pd.DataFrame:
    """Each profile variable against the group.

    * categorical variables: :func:`contingency_test` (chi-square, Yates for 2 x 2, Fisher for sparse
      2 x 2, Monte-Carlo p for sparse larger tables) with Cramér's V as ``effect``;
    * multi-select variables (choices separated by ``;``): one yes/no row per choice
      (``<variable>: <choice>``), tested as above;
    * numeric variables with at least 8 distinct values: Mann-Whitney (two groups; ``effect`` = rank-biserial
      r) or Kruskal-Wallis (``effect`` = rank epsilon-squared).

    Columns: ``variable, test, statistic, df, p, effect, effect_name, n, min_expected, note``; a variable
    with fewer than two observed categories or groups gets NaN statistics and a note. The Monte-Carlo seed
    is ``seed`` plus the row number, so the table is reproducible.
    """
    g, levels = _resolve_levels(data, group, levels)
    _need_columns(data, columns, "profile_by_group")
    tests: list[tuple[str, pd.Series, str]] = []
    for col in columns:
        kind = _profile_kind(data[col])
        if kind == "multi":
            tests.extend((name, flag, "categorical") for name, flag in _multi_indicators(data[col], col).items())
        else:
            tests.append((col, data[col], kind))
    rows = []
    for i, (name, raw, kind) in enumerate(tests):
        row: dict[str, Any] = {"variable": name, "test": pd.NA, "statistic": math.nan, "df": pd.NA, "p": math.nan,
                               "effect": math.nan, "effect_name": pd.NA, "n": 0, "min_expected": math.nan,
                               "note": pd.NA}
        if kind == "numeric":
            samples = _split(raw, g, levels, name)
            row["n"] = int(sum(s.size for s in samples))
            notes = _group_notes(samples, levels)
            if notes:
                row["note"] = "; ".join(notes)
            elif len(levels) == 2:
                mw = mann_whitney(samples[0], samples[1])
                row.update(test="mann_whitney", statistic=mw.U, p=mw.p, effect=mw.r_rb, effect_name="r_rb")
            else:
                kw = kruskal_wallis(samples)
                row.update(test="kruskal_wallis", statistic=kw.H, df=kw.df, p=kw.p, effect=kw.epsilon_squared,
                           effect_name="epsilon_squared")
            rows.append(row)
            continue
        values = _as_str_groups(raw)
        keep = g.isin(levels).fillna(False) & values.notna()
        ct = pd.crosstab(values[keep].rename("category"), g[keep].rename("group")).reindex(columns=levels,
                                                                                            fill_value=0)
        row["n"] = int(keep.sum())
        if ct.shape[0] < 2 or (ct.sum(axis=0) > 0).sum() < 2:
            row["note"] = f"{ct.shape[0]} observed categor{'y' if ct.shape[0] == 1 else 'ies'}; at least two categories in two groups needed"
        else:
            res = contingency_test(ct.to_numpy(), n_sim=n_sim, seed=seed + i)
            row.update(test=res.test, statistic=res.chi2, df=res.df, p=res.p, effect=res.cramers_v,
                       effect_name="cramers_v", n=res.n, min_expected=res.min_expected)
            if res.test == "chi2_monte_carlo":
                row["note"] = f"expected counts below 5: Monte-Carlo p from {n_sim} tables with the observed margins"
            elif res.test == "fisher":
                row["note"] = "expected counts below 5: Fisher's exact test"
        rows.append(row)
    out = pd.DataFrame(rows)
    out["df"] = out["df"].astype("Int64")
    out["n"] = out["n"].astype("int64")
    for c in ("variable", "test", "effect_name", "note"):
        out[c] = out[c].astype("string")
    return out


# --------------------------------------------------------------------------------------------------
# Likert percentages, comments, key results
# --------------------------------------------------------------------------------------------------
def likert_percentages(data: pd.DataFrame, codebook: pd.DataFrame, items: Sequence[str], *,
                       group: str | None = None, levels: Sequence[Any] | None = None) -> pd.DataFrame:
    """Share of each scale point per item and group (aggregates for the diverging bar chart).

    Columns: ``variable, group, value, count, percent`` (percent of the group's answers to the item; every
    scale point from ``scale_min`` to ``scale_max`` is listed, with 0 when unused).
    """
    _need_columns(data, items, "likert_percentages")
    meta = codebook.set_index("variable")
    masks = _group_masks(data, group, levels)
    rows = []
    for item in items:
        lo, hi = int(meta.loc[item, "scale_min"]), int(meta.loc[item, "scale_max"])
        x = _numeric(data[item], item)
        points = np.arange(lo, hi + 1)
        for label, mask in masks:
            v = x[mask]
            v = v[~np.isnan(v)]
            counts = (v[:, None] == points[None, :]).sum(axis=0)
            total = counts.sum()
            rows.append(pd.DataFrame({"variable": item, "group": label, "value": points, "count": counts,
                                      "percent": counts / total * 100 if total else np.nan}))
    out = pd.concat(rows, ignore_index=True)
    out["variable"] = out["variable"].astype("string")
    out["group"] = out["group"].astype("string")
    return out


def comment_counts(data: pd.DataFrame, comment: str, *, group: str | None = None,
                   levels: Sequence[Any] | None = None) -> pd.DataFrame:
    """How many respondents left a non-empty comment, per group and ``all``: ``group, respondents,
    comments, percent``."""
    _need_columns(data, [comment], "comment_counts")
    has = _as_str_groups(data[comment]).fillna("").str.strip().str.len().gt(0).to_numpy()
    rows = []
    for label, mask in _group_masks(data, group, levels):
        total, with_comment = int(mask.sum()), int((has & mask).sum())
        rows.append({"group": label, "respondents": total, "comments": with_comment,
                     "percent": with_comment / total * 100 if total else math.nan})
    out = pd.DataFrame(rows)
    out["group"] = out["group"].astype("string")
    return out


def comment_table(data: pd.DataFrame, comment: str, *, group: str | None = None,
                  id_column: str | None = None) -> pd.DataFrame:
    """The non-empty comments (text unchanged; the report escapes it): ``respondent_id, group, comment``."""
    cols = [c for c in (id_column, group, comment) if c]
    _need_columns(data, cols, "comment_table")
    text = _as_str_groups(data[comment]).fillna("").str.strip()
    keep = (text.str.len() > 0).to_numpy()
    out = pd.DataFrame({
        "respondent_id": data[id_column].astype("string").to_numpy()[keep] if id_column else np.flatnonzero(keep) + 1,
        "group": _as_str_groups(data[group]).to_numpy()[keep] if group else "all",
        "comment": text.to_numpy()[keep],
    })
    for c in ("respondent_id", "group", "comment"):
        out[c] = out[c].astype("string")
    return out


def key_results(comparison: GroupComparison, *, alpha: float, top_n: int = 5) -> dict[str, Any]:
    """Key numbers of a comparison for the results JSON.

    ``significant_items``: variables with ``p_adj < alpha`` (table order); ``largest_effects``: the
    ``top_n`` largest absolute effects (``r_rb`` for two groups, ``epsilon_squared`` otherwise) as
    ``{variable, effect, p_adj}``.
    """
    t = comparison.table
    sig = t.loc[t["p_adj"].lt(alpha).fillna(False), "variable"].astype(str).tolist()
    effect = "r_rb" if comparison.test == "mann_whitney" else "epsilon_squared"
    ranked = t.assign(_abs=t[effect].abs()).dropna(subset=["_abs"])
    ranked = ranked.sort_values(["_abs", "variable"], ascending=[False, True], kind="mergesort").head(top_n)
    largest = [{"variable": str(r.variable), "effect": float(getattr(r, effect)), "p_adj": float(r.p_adj)}
               for r in ranked.itertuples(index=False)]
    return {"test": comparison.test, "effect_size": effect, "significant_items": sig, "largest_effects": largest}


# --------------------------------------------------------------------------------------------------
# Study-level helpers used by the survey notebook (so the notebook holds no logic)
# --------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Labels:
    """Display names in the report language: items, factors, stages, groups (``all`` included)."""

    items: Mapping[str, str]
    factors: Mapping[str, str]
    stages: Mapping[str, str]
    groups: Mapping[str, str]


def display_labels(cfg: Any, spec: GroupSpec | None = None, *, all_label: str = "all") -> Labels:
    """Labels of the codebook items, factors, stages and groups in ``cfg.language``."""
    lang = cfg.language
    cb = cfg.codebook_table
    fac = cfg.factors
    groups = dict(spec.labels) if spec else {}
    groups["all"] = all_label
    return Labels(items=dict(zip(cb["variable"], cb[f"label_{lang}"], strict=True)),
                  factors=dict(zip(fac["factor"], fac[f"label_{lang}"], strict=True)),
                  stages=dict(zip(fac["stage"], fac[f"stage_label_{lang}"], strict=True)),
                  groups=groups)


def variables_of(codebook: pd.DataFrame, kind: str) -> list[str]:
    """Codebook variables of one ``type`` (``profile``, ``comment``, ``importance``, ...), codebook order."""
    return codebook.loc[codebook["type"] == kind, "variable"].tolist()


def n_by_group(data: pd.DataFrame, spec: GroupSpec | None) -> dict[str, int]:
    """Respondents per group level (config order) and ``all``; without a grouping only ``all``."""
    out: dict[str, int] = {}
    if spec is not None:
        g = _as_str_groups(data[spec.column])
        out = {lv: int((g == lv).fillna(False).sum()) for lv in spec.levels}
    out["all"] = int(len(data))
    return out


def group_sizes(data: pd.DataFrame, spec: GroupSpec | None, labels: Labels) -> pd.DataFrame:
    """``group`` (display label), ``n``, ``percent`` per level and ``all`` (respondents outside the levels
    count in ``all`` only)."""
    counts = n_by_group(data, spec)
    total = counts["all"]
    out = pd.DataFrame({"group": [labels.groups.get(k, k) for k in counts], "n": list(counts.values())})
    out["percent"] = out["n"] / total * 100 if total else np.nan
    out["group"] = out["group"].astype("string")
    return out


def compare_items(data: pd.DataFrame, spec: GroupSpec, codebook: pd.DataFrame, *,
                  correction: str = "holm") -> GroupComparison:
    """:func:`compare` on every rating item, one multiple-testing family per item type.

    The adjusted p-values (``p_holm``, ``p_bh``, ``p_adj``) are computed within the importance items, within
    the performance items and within the outcomes, because each type answers its own question (do the
    groups value the factors differently / rate the service differently / differ in outcomes). Rows keep
    the codebook order; the table is the ``item_comparison`` table of the data contract.
    """
    tables, pairwise = [], []
    test = "mann_whitney"
    for kind in RATING_TYPES:
        cols = [v for v in variables_of(codebook, kind) if v in data.columns]
        if not cols:
            continue
        res = compare(data, spec, cols, correction=correction, codebook=codebook)
        tables.append(res.table)
        test = res.test
        if res.pairwise is not None:
            pairwise.append(res.pairwise)
    if not tables:
        raise AnalysisError("compare_items: the data hold none of the codebook's rating items")
    return GroupComparison(table=pd.concat(tables, ignore_index=True),
                           pairwise=pd.concat(pairwise, ignore_index=True) if pairwise else None, test=test)


def stage_scores(data: pd.DataFrame, codebook: pd.DataFrame, spec: GroupSpec | None = None) -> pd.DataFrame:
    """Per respondent the stage means of the importance and the performance items (:func:`stage_means`).

    Columns ``<type>_<stage>`` (e.g. ``performance_S1``) plus the group column when ``spec`` is given.
    """
    parts = []
    for kind in ("importance", "performance"):
        if (codebook["type"] == kind).any():
            parts.append(stage_means(data, codebook, item_type=kind).add_prefix(f"{kind}_"))
    if not parts:
        raise AnalysisError("stage_scores: the codebook has no importance or performance items")
    out = pd.concat(parts, axis=1)
    if spec is not None:
        out.insert(0, spec.column, data[spec.column].to_numpy())
    return out


def compare_stages(data: pd.DataFrame, spec: GroupSpec, codebook: pd.DataFrame, *,
                   correction: str = "holm") -> GroupComparison:
    """Group comparison of the stage means (:func:`stage_scores`), one family per item type."""
    scores = stage_scores(data, codebook, spec)
    tables, pairwise, test = [], [], "mann_whitney"
    for kind in ("importance", "performance"):
        cols = [c for c in scores.columns if c.startswith(f"{kind}_")]
        if cols:
            res = compare(scores, spec, cols, correction=correction)
            tables.append(res.table)
            test = res.test
            if res.pairwise is not None:
                pairwise.append(res.pairwise)
    return GroupComparison(table=pd.concat(tables, ignore_index=True),
                           pairwise=pd.concat(pairwise, ignore_index=True) if pairwise else None, test=test)


def comparison_view(table: pd.DataFrame, spec: GroupSpec, labels: Labels, *, lang: str = "en",
                    types: Sequence[str] | None = None) -> pd.DataFrame:
    """The columns of a comparison table worth reading, with item labels and group names in the headers.

    Two groups: ``label, n, median, mean`` per group, ``U, p, r_rb [CI], g, p_adj, note``. More groups:
    ``label, n, H, p, epsilon_squared, p_adj, note`` and the medians per group. With a ``type`` column
    (:func:`compare_items`) the item type comes first, named in the report language. p-value columns keep their
    names (``p``, ``p_adj``) so the reporter formats them as p-values.
    """
    from . import i18n

    t = table if types is None or "type" not in table.columns else table[table["type"].isin(types)]
    t = t.reset_index(drop=True)

    def head(key: str, level: str) -> str:
        return i18n.text("survey", key, lang, group=spec.labels.get(level, level))

    out = pd.DataFrame({"label": [labels.items.get(v, v) for v in t["variable"]]}, index=t.index)
    if "type" in t.columns and t["type"].notna().any():
        out.insert(0, "type", [pd.NA if pd.isna(k) else i18n.label("survey", f"type_{k}", lang) for k in t["type"]])
    if spec.many:
        out["n"] = t["n"]
        for lv in spec.levels:
            out[head("col_median_of", lv)] = t[f"median_{lv}"]
        for c in ("H", "p", "epsilon_squared", "p_adj"):
            out[c] = t[c]
    else:
        for i, lv in enumerate(spec.levels[:2], start=1):
            out[head("col_n_of", lv)] = t[f"n_{i}"]
        for i, lv in enumerate(spec.levels[:2], start=1):
            out[head("col_median_of", lv)] = t[f"median_{i}"]
        for i, lv in enumerate(spec.levels[:2], start=1):
            out[head("col_mean_of", lv)] = t[f"mean_{i}"]
        for c in ("U", "p", "r_rb", "r_rb_ci_low", "r_rb_ci_high", "g", "p_adj"):
            if c in t.columns:
                out[c] = t[c]
    out["note"] = pd.array([localise_note(v, lang, group_labels=spec.labels) for v in t["note"]], dtype="string")
    return out


def pairwise_view(pairwise: pd.DataFrame, spec: GroupSpec, labels: Labels) -> pd.DataFrame:
    """:func:`pairwise_mann_whitney` for reading: item and group labels instead of codes."""
    out = pairwise.copy()
    out.insert(0, "label", [labels.items.get(v, v) for v in out["variable"]])
    for col in ("group_1", "group_2"):
        out[col] = [spec.labels.get(g, g) for g in out[col]]
    return out.drop(columns=["variable"])


def ipa_view(table: pd.DataFrame, labels: Labels, *, stage_level: bool = False) -> pd.DataFrame:
    """Gap table for reading: label, group label, n, importance, performance, gap, gap_p, gap_effect, gap_p_adj."""
    key = "stage" if stage_level else "factor"
    names = labels.stages if stage_level else labels.factors
    out = pd.DataFrame({"label": [names.get(k, k) for k in table[key]],
                        "group": [labels.groups.get(g, g) for g in table["group"]]})
    for c in ("n", "importance", "performance", "gap", "gap_effect", "gap_p", "gap_p_adj", "note"):
        out[c] = table[c].to_numpy()
    return out


def _factor_score_labels(cfg: Any, labels: Labels) -> dict[str, str]:
    """``F1 – <stage name>`` for factors the efa's ``factor_map`` matched to a hypothesised stage factor."""
    from .io import read_table

    path = cfg.paths.processed_table("factor_map")
    if not path.exists():
        return {}
    fmap = read_table(path)
    if not {"factor", "latent"} <= set(fmap.columns):
        return {}
    return {str(r.factor): f"{r.factor} – {labels.stages.get(r.latent, r.latent)}" if pd.notna(r.latent)
            else str(r.factor) for r in fmap.itertuples(index=False)}


def load_factor_scores(cfg: Any) -> pd.DataFrame | None:
    """The efa notebook's ``factor_scores`` table, or ``None`` when it has not been written."""
    from .io import read_table

    path = cfg.paths.processed_table("factor_scores")
    return read_table(path) if path.exists() else None


def satisfaction_model(data: pd.DataFrame, codebook: pd.DataFrame, spec: GroupSpec | None, *,
                       outcome: str | None = None) -> OrdinalRegression:
    """:func:`ordinal_regression` of an outcome on the group and the stage performance means.

    ``outcome`` defaults to the first outcome variable of the codebook (the demo: ``SAT_OVERALL``). The
    group enters as dummies against its first level; each stage's performance mean (:func:`stage_means`)
    enters as a numeric predictor named after the stage code.
    """
    outcomes = variables_of(codebook, "outcome")
    outcome = outcome or (outcomes[0] if outcomes else None)
    if outcome is None:
        raise AnalysisError("satisfaction_model: the codebook has no outcome variable")
    stages = stage_means(data, codebook, item_type="performance")
    frame = pd.concat([data[[outcome]].reset_index(drop=True), stages.reset_index(drop=True)], axis=1)
    predictors = list(stages.columns)
    if spec is not None:
        g = _as_str_groups(data[spec.column]).reset_index(drop=True)
        frame.insert(1, spec.column, pd.Categorical(g.where(g.isin(spec.levels)), categories=list(spec.levels)))
        predictors = [spec.column, *predictors]
    return ordinal_regression(frame, outcome, predictors)


def odds_ratio_record(model: OrdinalRegression) -> dict[str, dict[str, float]]:
    """``{term: {odds_ratio, ci_low, ci_high, p}}`` of the model's coefficients (results JSON)."""
    coef = model.table[model.table["kind"] == "coefficient"]
    return {str(r.term): {"odds_ratio": float(r.odds_ratio), "ci_low": float(r.ci_low),
                          "ci_high": float(r.ci_high), "p": float(r.p)} for r in coef.itertuples(index=False)}


def profile_counts(data: pd.DataFrame, spec: GroupSpec, columns: Sequence[str], *,
                   max_categories: int = 15) -> pd.DataFrame:
    """Wide counts of the categorical and multi-select profile variables: ``variable, category`` and
    ``n_<level>``/``percent_<level>`` per level. Numeric variables (:func:`profile_by_group` rank-tests
    them) and variables with more than ``max_categories`` categories are left out."""
    frames = []
    for col in columns:
        if _profile_kind(data[col]) == "numeric":
            continue
        long = profile_table(data, spec.column, col, levels=spec.levels)
        if long["category"].nunique() > max_categories:
            continue
        wide = long.pivot_table(index=["variable", "category"], columns="group", values=["count", "percent"],
                                sort=False, observed=True)
        wide.columns = [f"{'n' if a == 'count' else 'percent'}_{b}" for a, b in wide.columns]
        frames.append(wide.reset_index())
    if not frames:
        return pd.DataFrame(columns=["variable", "category"])
    out = pd.concat(frames, ignore_index=True)
    ordered = ["variable", "category"] + [f"{k}_{lv}" for lv in spec.levels for k in ("n", "percent")]
    out = out.reindex(columns=ordered)
    for lv in spec.levels:
        out[f"n_{lv}"] = out[f"n_{lv}"].fillna(0).astype("int64")
    return out


def gap_record(ipa: pd.DataFrame, *, alpha: float, top_n: int = 5) -> dict[str, Any]:
    """Key numbers of the gap table for the results JSON (``all`` rows): the ``top_n`` largest gaps and
    the factors whose gap is significant after adjustment."""
    rows = ipa[ipa["group"] == "all"].dropna(subset=["gap"])
    top = rows.sort_values(["gap", "factor"], ascending=[False, True], kind="mergesort").head(top_n)
    return {"largest_gaps": [{"factor": str(r.factor), "gap": float(r.gap), "gap_p_adj": float(r.gap_p_adj)}
                             for r in top.itertuples(index=False)],
            "significant_gaps": rows.loc[rows["gap_p_adj"].lt(alpha).fillna(False), "factor"].astype(str).tolist()}


# The notes the analyses write into their tables (in English, as stored in the processed tables) and the
# catalogue key that says the same in the report language; the groups of each pattern fill the placeholders.
_NOTE_PATTERNS = (
    (re.compile(r"group '(?P<group>.+)' has (?P<n>\d+) answers? \(at least 2 needed\)"), "note_group_too_small"),
    (re.compile(r"no variance: every answer is (?P<value>.+)"), "note_no_variance"),
    (re.compile(r"no variance within the groups: Welch t and Hedges' g undefined"), "note_no_variance_welch"),
    (re.compile(r"(?P<n>\d+) observed categor(?:y|ies); at least two categories in two groups needed"),
     "note_few_categories"),
    (re.compile(r"expected counts below 5: Monte-Carlo p from (?P<n_sim>\d+) tables with the observed margins"),
     "note_monte_carlo"),
    (re.compile(r"expected counts below 5: Fisher's exact test"), "note_fisher"),
)


def localise_note(note: Any, lang: str = "en", *, group_labels: Mapping[str, str] | None = None) -> Any:
    """A table note (``"; "``-separated parts, as the analyses write them) in the report language.

    Parts the catalogue knows (``note_*`` keys of ``locales/survey.yaml``) are translated, group codes
    becoming their labels; any other part is kept as written. Missing notes stay missing.
    """
    from . import i18n

    if note is None or note is pd.NA or (isinstance(note, float) and math.isnan(note)):
        return note
    parts = []
    for part in str(note).split("; "):
        for pattern, key in _NOTE_PATTERNS:
            m = pattern.fullmatch(part)
            if m:
                values = m.groupdict()
                if "group" in values and group_labels:
                    values["group"] = group_labels.get(values["group"], values["group"])
                part = i18n.text("survey", key, lang, **values)
                break
        parts.append(part)
    return "; ".join(parts)


def _variable_label(name: str, labels: Labels | None) -> str:
    """Codebook wording of a profile variable; ``variable: choice`` (multiple choice) keeps the choice."""
    if labels is None:
        return name
    head, sep, choice = name.partition(": ")
    return f"{labels.items.get(head, head)}{sep}{choice}" if sep else labels.items.get(name, name)


def profile_view(counts: pd.DataFrame, spec: GroupSpec, *, lang: str = "en",
                 labels: Labels | None = None) -> pd.DataFrame:
    """:func:`profile_counts` with group names in the headers (``n, <group>`` and ``%, <group>``) and, given
    ``labels``, the variables' codebook wording instead of their names."""
    from . import i18n

    names = {"variable": "variable", "category": "category"}
    for lv in spec.levels:
        names[f"n_{lv}"] = i18n.text("survey", "col_n_of", lang, group=spec.labels.get(lv, lv))
        names[f"percent_{lv}"] = i18n.text("survey", "col_percent_of", lang, group=spec.labels.get(lv, lv))
    out = counts.rename(columns=names)
    if labels is not None:
        out["variable"] = [_variable_label(v, labels) for v in out["variable"]]
    return out


def profile_tests_view(tests: pd.DataFrame, *, lang: str = "en", labels: Labels | None = None) -> pd.DataFrame:
    """:func:`profile_by_group` with the test and effect-measure codes and the notes in the report language
    and, given ``labels``, the variables' codebook wording instead of their names."""
    from . import i18n

    out = tests.copy()
    for col in ("test", "effect_name"):
        out[col] = [pd.NA if pd.isna(v) else i18n.label("survey", f"name_{v}", lang) for v in out[col]]
    groups = labels.groups if labels is not None else None
    out["note"] = pd.array([localise_note(v, lang, group_labels=groups) for v in out["note"]], dtype="string")
    if labels is not None:
        out["variable"] = [_variable_label(v, labels) for v in out["variable"]]
    return out


def describe_view(described: pd.DataFrame, labels: Labels, *, group: str | None = "all") -> pd.DataFrame:
    """:func:`describe_items` rows of one ``group`` (default ``all``) for reading: item label first, the
    quartiles left out."""
    rows = described if group is None else described[described["group"] == group]
    out = rows.drop(columns=["q1", "q3"] + (["group"] if group is not None else [])).reset_index(drop=True)
    out.insert(0, "label", [labels.items.get(v, v) for v in out["variable"]])
    return out.drop(columns=["variable", "type", "stage", "factor"])


# --------------------------------------------------------------------------------------------------
# Study level: config in, notebook-ready tables out
# --------------------------------------------------------------------------------------------------
ITEM_COMPARISON_COLUMNS = ["variable", "type", "stage", "factor", "test", "group_1", "group_2", "n_1", "n_2",
                           "median_1", "median_2", "mean_1", "mean_2", "U", "p", "u_method", "r_rb",
                           "r_rb_ci_low", "r_rb_ci_high", "t", "df", "p_t", "g", "g_ci_low", "g_ci_high",
                           "p_holm", "p_bh", "p_adj", "note"]


@dataclass(frozen=True)
class SurveyAnalysis:
    """Everything the survey notebook shows; ``None`` parts are skipped (no grouping, no importance items,
    no factor scores, no outcome or comment variable).

    ``tables`` holds the processed tables of the data contract (``item_comparison``, ``ipa_items``,
    ``ipa_stages``). They always use the study config's grouping, so the model notebook can rely on them
    even when this run compared another group column (the ``group_column``/``levels`` overrides).
    """

    spec: GroupSpec | None
    labels: Labels
    alpha: float
    correction: str
    n_by_group: dict[str, int]
    group_sizes: pd.DataFrame
    descriptives: pd.DataFrame
    likert: pd.DataFrame
    tables: Mapping[str, pd.DataFrame | None]
    ipa_items: pd.DataFrame | None = None
    ipa_stages: pd.DataFrame | None = None
    profile_tests: pd.DataFrame | None = None
    profile_counts: pd.DataFrame | None = None
    items: GroupComparison | None = None
    stages: GroupComparison | None = None
    factor_scores: pd.DataFrame | None = None
    ordinal: OrdinalRegression | None = None
    comment_counts: pd.DataFrame | None = None
    comments: pd.DataFrame | None = None
    n_comments: int | None = None


def has_gaps(codebook: pd.DataFrame) -> bool:
    """True when some factor has both an importance and a performance item (gaps can be computed)."""
    imp = set(codebook.loc[codebook["type"] == "importance", "factor"].dropna())
    perf = set(codebook.loc[codebook["type"] == "performance", "factor"].dropna())
    return bool(imp & perf)


def _contract_tables(responses: pd.DataFrame, codebook: pd.DataFrame, spec: GroupSpec | None,
                     correction: str) -> dict[str, pd.DataFrame | None]:
    column, lv = (spec.column, spec.levels) if spec else (None, None)
    out: dict[str, pd.DataFrame | None] = {
        "item_comparison": compare_items(responses, spec, codebook, correction=correction).table if spec else None,
        "ipa_items": None, "ipa_stages": None}
    if has_gaps(codebook):
        out["ipa_items"] = ipa_gaps(responses, codebook, group=column, levels=lv, correction=correction)
        out["ipa_stages"] = ipa_stage_gaps(responses, codebook, group=column, levels=lv, correction=correction)
    return out


def analyse_study(cfg: Any, data: Any = None, *, group_column: str | None = None,
                  levels: Sequence[Any] | None = None) -> SurveyAnalysis:
    """Run every survey analysis of a study with its configured settings.

    Parameters
    ----------
    cfg
        The study configuration: ``analysis.alpha``, ``analysis.survey.correction``, ``analysis.seed``
        (Monte-Carlo p of sparse profile tables), the group and the codebook.
    data
        The study's processed data (default ``research.data.load_processed(cfg)``); uses its ``survey``
        and, when present, ``survey_missing`` tables.
    group_column, levels
        Override the config's group column and levels (see :func:`group_spec`) for what is shown; without
        any group column the comparisons are left out and descriptives and gaps are given for all
        respondents.
    """
    from . import i18n

    if data is None:
        from .data import load_processed

        data = load_processed(cfg)
    responses = getattr(data, "survey", None)
    if responses is None or len(responses) == 0:
        raise AnalysisError(f"study {cfg.study.id!r}: the processed survey table is empty or missing; "
                            "run `research prepare` first")
    missing = getattr(data, "survey_missing", None)
    codebook = cfg.codebook_table
    spec = group_spec(cfg, responses, column=group_column, levels=levels)
    config_spec = group_spec(cfg, responses)
    lang = cfg.language
    labels = display_labels(cfg, spec, all_label=i18n.label("survey", "all_respondents", lang))
    type_names = {k: i18n.label("common", k, lang) for k in ("importance", "performance")}
    stage_items = {f"{k}_{s}": f"{type_names[k]}: {name}" for k in type_names for s, name in labels.stages.items()}
    labels = Labels(items={**labels.items, **stage_items}, factors=labels.factors, stages=labels.stages,
                    groups=labels.groups)
    a = cfg.analysis
    correction = a.survey.correction
    column = spec.column if spec else None
    lv = spec.levels if spec else None
    perf_items = [v for v in variables_of(codebook, "performance") if v in responses.columns]
    parts: dict[str, Any] = {
        "descriptives": describe_items(responses, codebook, by=column, levels=lv,
                                       missing=missing if missing is not None and len(missing) else None),
        "likert": likert_percentages(responses, codebook, perf_items or rating_items(codebook), group=column,
                                     levels=lv),
    }
    if has_gaps(codebook):
        parts["ipa_items"] = ipa_gaps(responses, codebook, group=column, levels=lv, correction=correction)
        parts["ipa_stages"] = ipa_stage_gaps(responses, codebook, group=column, levels=lv, correction=correction)
    profile = [v for v in variables_of(codebook, "profile") if v in responses.columns and v != column]
    if spec is not None:
        parts["items"] = compare_items(responses, spec, codebook, correction=correction)
        parts["stages"] = compare_stages(responses, spec, codebook, correction=correction)
        if profile:
            parts["profile_tests"] = profile_by_group(responses, spec.column, profile, levels=spec.levels,
                                                      seed=a.seed)
            parts["profile_counts"] = profile_counts(responses, spec, profile)
        scores = load_factor_scores(cfg)
        labels = Labels(items={**labels.items, **_factor_score_labels(cfg, labels)}, factors=labels.factors,
                        stages=labels.stages, groups=labels.groups)
        if scores is not None and spec.column in scores.columns:
            parts["factor_scores"] = compare_factor_scores(scores, spec.column, levels=spec.levels,
                                                           correction=correction)
    staged_perf = codebook[(codebook["type"] == "performance") & codebook["stage"].notna()]
    if variables_of(codebook, "outcome") and len(staged_perf):
        try:
            parts["ordinal"] = satisfaction_model(responses, codebook, spec)
        except AnalysisError as e:  # an auxiliary model: the comparisons above still stand
            warnings.warn(f"the ordinal model of satisfaction is left out: {e}", UserWarning, stacklevel=2)
    comment_vars = [v for v in variables_of(codebook, "comment") if v in responses.columns]
    if comment_vars:
        counts = comment_counts(responses, comment_vars[0], group=column, levels=lv)
        comments = comment_table(responses, comment_vars[0], group=column, id_column=_id_column(codebook, responses))
        parts["n_comments"] = int(counts["comments"].iloc[-1])  # the last row is "all"
        parts["comment_counts"] = counts.assign(group=counts["group"].map(lambda v: labels.groups.get(v, v)))
        parts["comments"] = comments.assign(group=comments["group"].map(lambda v: labels.groups.get(v, v)))
    if spec == config_spec or (spec is not None and config_spec is not None
                               and (spec.column, spec.levels) == (config_spec.column, config_spec.levels)):
        tables = {"item_comparison": parts["items"].table if spec else None,
                  "ipa_items": parts.get("ipa_items"), "ipa_stages": parts.get("ipa_stages")}
    else:
        tables = _contract_tables(responses, codebook, config_spec, correction)
    return SurveyAnalysis(spec=spec, labels=labels, alpha=a.alpha, correction=correction,
                          n_by_group=n_by_group(responses, spec), group_sizes=group_sizes(responses, spec, labels),
                          tables=tables, **parts)


def ordinal_view(model: OrdinalRegression, labels: Labels, spec: GroupSpec | None = None) -> pd.DataFrame:
    """The coefficients of :func:`satisfaction_model` for reading: stage codes replaced by the stage names
    and group dummies (``<column><level>``) by the group labels."""
    names = dict(labels.stages)
    if spec is not None:
        names.update({f"{spec.column}{lv}": labels.groups.get(lv, lv) for lv in spec.levels})
    coef = model.table[model.table["kind"] == "coefficient"].copy()
    coef["term"] = [names.get(t, t) for t in coef["term"]]
    return coef[["term", "estimate", "se", "p", "odds_ratio", "ci_low", "ci_high"]].reset_index(drop=True)


def reading(analysis: SurveyAnalysis, lang: str = "en") -> dict[str, Any]:
    """Values for the notebook's narrative (``rep.paragraph(key, **values)``)."""
    from . import i18n

    out: dict[str, Any] = {"n": analysis.n_by_group["all"], "alpha": analysis.alpha,
                           "correction": i18n.label("survey", f"corr_{analysis.correction}", lang),
                           "column": analysis.spec.column if analysis.spec else ""}
    if analysis.items is not None:
        t = analysis.items.table
        sig = t.loc[t["p_adj"].lt(analysis.alpha).fillna(False), "variable"]
        out.update(n_sig=int(sig.size), n_items=int(len(t)),
                   items=", ".join(analysis.labels.items.get(v, v) for v in sig) or "–")
    gaps = (analysis.ipa_items[analysis.ipa_items["group"] == "all"].dropna(subset=["gap"])
            if analysis.ipa_items is not None else pd.DataFrame())
    if len(gaps):
        top = gaps.sort_values("gap", ascending=False, kind="mergesort").iloc[0]
        out.update(factor=analysis.labels.factors.get(top["factor"], top["factor"]), gap=float(top["gap"]),
                   n_sig_gaps=int(gaps["gap_p_adj"].lt(analysis.alpha).sum()), n_factors=int(len(gaps)))
    if analysis.ordinal is not None:
        out.update(outcome=analysis.ordinal.outcome, n_model=analysis.ordinal.n,
                   n_dropped=analysis.ordinal.n_dropped)
    if analysis.spec is not None:
        out["reference"] = analysis.labels.groups.get(analysis.spec.levels[0], analysis.spec.levels[0])
    if analysis.n_comments is not None:
        out["n_comments"] = analysis.n_comments
    return out


def key_numbers(analysis: SurveyAnalysis, *, top_n: int = 5) -> dict[str, Any]:
    """The survey notebook's results JSON (stable keys; group-dependent values are None without a group).

    ``n_respondents``, ``n_by_group``, ``group_column``, ``group_levels``, ``test``, ``correction``,
    ``alpha``, ``significant_items``, ``largest_effects`` (``top_n`` by absolute effect), ``significant_stages``,
    ``factor_score_differences`` (factors with ``p_adj < alpha``; None without factor scores),
    ``largest_gaps``, ``significant_gaps`` (all respondents), ``ordinal_odds_ratios`` (``{term: {odds_ratio,
    ci_low, ci_high, p}}``), ``ordinal_n``, ``n_comments``.
    """
    spec = analysis.spec
    out: dict[str, Any] = {"n_respondents": analysis.n_by_group["all"], "n_by_group": analysis.n_by_group,
                           "group_column": spec.column if spec else None,
                           "group_levels": list(spec.levels) if spec else None,
                           "correction": analysis.correction, "alpha": analysis.alpha,
                           "test": None, "significant_items": None, "largest_effects": None,
                           "significant_stages": None, "factor_score_differences": None}
    if analysis.items is not None:
        out.update({k: v for k, v in key_results(analysis.items, alpha=analysis.alpha, top_n=top_n).items()
                    if k in ("test", "significant_items", "largest_effects")})
    if analysis.stages is not None:
        st = analysis.stages.table
        out["significant_stages"] = st.loc[st["p_adj"].lt(analysis.alpha).fillna(False), "variable"].astype(str).tolist()
    if analysis.factor_scores is not None:
        fs = analysis.factor_scores
        out["factor_score_differences"] = fs.loc[fs["p_adj"].lt(analysis.alpha).fillna(False), "variable"].astype(str).tolist()
    out.update(gap_record(analysis.ipa_items, alpha=analysis.alpha, top_n=top_n) if analysis.ipa_items is not None
               else {"largest_gaps": None, "significant_gaps": None})
    out["ordinal_odds_ratios"] = odds_ratio_record(analysis.ordinal) if analysis.ordinal else None
    out["ordinal_n"] = analysis.ordinal.n if analysis.ordinal else None
    out["n_comments"] = analysis.n_comments
    return out


def write_tables(cfg: Any, analysis: SurveyAnalysis) -> list:
    """Write ``item_comparison``, ``ipa_items`` and ``ipa_stages`` to ``data/processed/<study>/``.

    The tables use the config's grouping (:class:`SurveyAnalysis`). Without a configured group
    ``item_comparison`` is written empty (with its columns) so that a table left over from an earlier run is
    never mistaken for this run's result; a study without importance items has no gap tables, and stale
    ones are removed (the model notebook then ranks factors by performance alone).
    """
    from .io import write_table

    items = analysis.tables.get("item_comparison")
    if items is None:
        items = pd.DataFrame({c: pd.Series(dtype="float64") for c in ITEM_COMPARISON_COLUMNS})
        items = items.astype({c: "string" for c in ("variable", "type", "stage", "factor", "test", "group_1",
                                                     "group_2", "u_method", "note")})
        items = items.astype({"n_1": "int64", "n_2": "int64"})
    written = [write_table(items, cfg.paths.processed_table("item_comparison"))]
    for name in ("ipa_items", "ipa_stages"):
        path = cfg.paths.processed_table(name)
        table = analysis.tables.get(name)
        if table is not None:
            written.append(write_table(table, path))
        else:
            path.unlink(missing_ok=True)
            path.with_suffix(".csv").unlink(missing_ok=True)
    return written
