"""Expert evaluation: Kendall's coefficient of concordance W, factor weights and panel diagnostics.

Layout of ``ratings`` everywhere in this module (as R ``irr::kendall``): one row per rated factor (the
index holds the factor codes) and one column per expert (the columns hold the expert ids). Values are
either *ranks* (``scores=False``, 1 = most important, ties as average ranks) or *scores*
(``scores=True``, larger = more important). Either way the values are ranked within each expert (average
ranks for ties) into *importance ranks*, where 1 is the most important factor. The ranking direction does
not change W, but it decides which factors get the large weights.

Notation: n factors (objects), m experts (judges), R_i = sum of the importance ranks of factor i,
S = sum_i (R_i - m(n+1)/2)^2, T_j = sum over the tie groups of expert j of (t^3 - t).

* :func:`kendall_w` -- W with tie correction, chi-square, F approximation, minimal significant W.
* :func:`kendall_w_permutation` -- permutation p-value (vectorised).
* :func:`factor_weights` -- rank-sum, rank-order-centroid or mean-score weights with bootstrap CIs.
* :func:`expert_competence`, :func:`leave_one_out`, :func:`compare_rounds`,
  :func:`concordance_by_stage` -- the panel diagnostics of the study design (section 4).
* :func:`evaluate_panel` -- everything the ``01_expert_evaluation`` notebook shows, from the processed
  ``expert_ratings`` and ``expert_panel`` tables.

References
----------
Kendall, M. G., & Babington Smith, B. (1939). The problem of m rankings. *Annals of Mathematical
Statistics*, 10, 275-287.
Siegel, S., & Castellan, N. J. (1988). *Nonparametric statistics for the behavioral sciences* (2nd ed.),
section 9.4. McGraw-Hill.
Legendre, P. (2005). Species associations: the Kendall coefficient of concordance revisited. *Journal of
Agricultural, Biological and Environmental Statistics*, 10, 226-245.
Gamer, M., Lemon, J., Fellows, I., & Singh, P. (2019). irr: Various coefficients of interrater
reliability and agreement (R package), function ``kendall``.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd
from scipy import stats

from .errors import AnalysisError

__all__ = [
    "AGREEMENT_LABELS",
    "WEIGHT_METHODS",
    "ExpertEvaluation",
    "KendallW",
    "KendallPermutation",
    "RoundComparison",
    "compare_rounds",
    "concordance_by_stage",
    "evaluate_panel",
    "evaluate_study",
    "for_display",
    "key_numbers",
    "labels",
    "reading",
    "weights_wide",
    "write_tables",
    "expert_competence",
    "expert_weights_table",
    "factor_weights",
    "importance_ranks",
    "interpret_kendalls_w",
    "kendall_w",
    "kendall_w_permutation",
    "leave_one_out",
    "ratings_matrix",
]

WEIGHT_METHODS = ("rank_sum", "rank_order_centroid", "mean_score")
AGREEMENT_LABELS = ("slight agreement", "fair agreement", "moderate agreement", "substantial agreement",
                    "almost perfect agreement")
AGREEMENT_CUTS = (0.2, 0.4, 0.6, 0.8)
MissingPolicy = Literal["error", "drop_experts"]
# Cells (permutations or bootstrap samples x factors x experts) held in memory at once.
_CHUNK_CELLS = 2_000_000


# --- input checks -----------------------------------------------------------------------------------

def _show(value: Any) -> str:
    """A cell value for an error message: numbers as typed (no numpy repr), text quoted."""
    if isinstance(value, bool | np.bool_):
        return str(bool(value))
    if isinstance(value, int | float | np.integer | np.floating):
        return f"{float(value):g}"
    return repr(value)


def _as_frame(ratings: Any) -> pd.DataFrame:
    if isinstance(ratings, pd.DataFrame):
        return ratings
    try:
        arr = np.asarray(ratings, dtype=object)
    except Exception:  # pragma: no cover - exotic input
        raise AnalysisError("ratings: expected a table (DataFrame or 2-D array) with one row per factor "
                            "and one column per expert") from None
    if arr.ndim != 2:
        raise AnalysisError(f"ratings: expected a 2-D table (factors x experts), got {arr.ndim} dimension(s)")
    return pd.DataFrame(arr, index=[f"factor {i + 1}" for i in range(arr.shape[0])],
                        columns=[f"expert {j + 1}" for j in range(arr.shape[1])])


def _numeric(frame: pd.DataFrame) -> np.ndarray:
    """Float matrix of ``frame``; non-numeric cells raise (never silently coerced to NaN)."""
    out = np.empty(frame.shape, dtype=float)
    for j, expert in enumerate(frame.columns):
        col = frame[expert]
        if pd.api.types.is_bool_dtype(col):
            raise AnalysisError(f"ratings: expert {expert!r} has true/false values; expected numbers "
                                "(ranks or scores)")
        converted = pd.to_numeric(col, errors="coerce")
        bad = converted.isna() & col.notna()
        if bad.any():
            factor = col.index[bad.to_numpy().argmax()]
            raise AnalysisError(f"ratings: expert {expert!r}, factor {factor!r}: value {_show(col[factor])} is "
                                "not a number (expected a rank or a score)")
        out[:, j] = converted.to_numpy(dtype=float, na_value=np.nan)
    return out


def _check_ratings(ratings: Any, *, scores: bool, missing: MissingPolicy,
                   what: str = "ratings") -> tuple[np.ndarray, list, list]:
    """Validate a factors x experts table; return (values, factors, experts) with complete data."""
    if missing not in ("error", "drop_experts"):
        raise AnalysisError(f"missing={missing!r} is not supported; use 'error' or 'drop_experts'")
    frame = _as_frame(ratings)
    if frame.index.has_duplicates:
        dup = frame.index[frame.index.duplicated()][0]
        raise AnalysisError(f"{what}: factor {dup!r} appears in more than one row; expected one row per factor")
    if frame.columns.has_duplicates:
        dup = frame.columns[frame.columns.duplicated()][0]
        raise AnalysisError(f"{what}: expert {dup!r} appears in more than one column; expected one column "
                            "per expert")
    values = _numeric(frame)
    factors, experts = list(frame.index), list(frame.columns)
    if np.isinf(values).any():
        i, j = np.argwhere(np.isinf(values))[0]
        raise AnalysisError(f"{what}: expert {experts[j]!r}, factor {factors[i]!r}: value {values[i, j]} is "
                            "not finite")
    holes = np.isnan(values)
    if holes.any():
        if missing == "error":
            i, j = np.argwhere(holes)[0]
            raise AnalysisError(
                f"{what}: expert {experts[j]!r} has no rating for factor {factors[i]!r} ({int(holes.sum())} "
                "missing rating(s) in all); complete the ratings or pass missing='drop_experts'")
        keep = ~holes.any(axis=0)
        dropped = [e for e, k in zip(experts, keep, strict=True) if not k]
        warnings.warn(f"{what}: {len(dropped)} expert(s) with missing ratings left out of the analysis: "
                      f"{', '.join(map(str, dropped))}", UserWarning, stacklevel=3)
        values = values[:, keep]
        experts = [e for e, k in zip(experts, keep, strict=True) if k]
    n, m = values.shape
    if n < 3 or m < 2:
        raise AnalysisError(f"{what}: Kendall's W needs at least 3 factors (rows) and 2 experts (columns); "
                            f"got {n} factor(s) x {m} expert(s)")
    flat = np.ptp(values, axis=0) == 0
    if flat.any():
        expert = experts[int(flat.argmax())]
        raise AnalysisError(f"{what}: expert {expert!r} gives every factor the same value (all tied), so "
                            "the ranking carries no information; correct or remove this expert")
    if not scores:
        outside = (values < 1) | (values > n)
        if outside.any():
            i, j = np.argwhere(outside)[0]
            raise AnalysisError(
                f"{what}: expert {experts[j]!r}, factor {factors[i]!r}: rank {values[i, j]:g} is outside "
                f"1..{n} (values are ranks, 1 = most important; pass scores=True for scores)")
    return values, factors, experts


def _rank_columns(values: np.ndarray, *, scores: bool) -> np.ndarray:
    """Importance ranks within each column (1 = most important, average ranks for ties)."""
    return stats.rankdata(-values if scores else values, method="average", axis=0)


def _tie_sums(ranks: np.ndarray) -> np.ndarray:
    """T_j = sum over tie groups of (t^3 - t) for each column.

    Each member of a tie group of size t sees t equal values, so sum_i (c_i^2 - 1) over the members gives
    t * (t^2 - 1) = t^3 - t per group.
    """
    equal = (ranks[:, None, :] == ranks[None, :, :]).sum(axis=1)
    return (equal.astype(float) ** 2 - 1).sum(axis=0)


# --- Kendall's W ------------------------------------------------------------------------------------

def interpret_kendalls_w(w: float) -> str:
    """Verbal label of W on the Landis & Koch (1977) scale, exactly as R ``effectsize``.

    ``effectsize::interpret_kendalls_w(w, rules = "landis1977")`` (effectsize 0.8.x) uses the cut points
    0.2, 0.4, 0.6, 0.8 with ``right = FALSE``: a value equal to a cut point belongs to the higher
    category (W = 0.4 is "moderate agreement").

    ========================  ==========================
    range                     label
    ========================  ==========================
    W < 0.2                   slight agreement
    0.2 <= W < 0.4            fair agreement
    0.4 <= W < 0.6            moderate agreement
    0.6 <= W < 0.8            substantial agreement
    W >= 0.8                  almost perfect agreement
    ========================  ==========================

    Returns ``"undefined"`` for NaN (effectsize returns NA).
    """
    if w is None or not np.isfinite(w):
        return "undefined"
    return AGREEMENT_LABELS[int(np.searchsorted(AGREEMENT_CUTS, w, side="right"))]


@dataclass(frozen=True)
class KendallW:
    """Kendall's coefficient of concordance and its tests (see :func:`kendall_w`)."""

    W: float
    chi2: float
    df: int
    p: float
    F: float
    df1: float
    df2: float
    p_F: float
    W_min: float
    compatibility: float
    n_objects: int
    n_experts: int
    agreement: str
    tie_correction: bool
    alpha: float
    S: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _w_from_ranks(ranks: np.ndarray, *, tie_correction: bool, alpha: float) -> KendallW:
    n, m = ranks.shape
    rank_sums = ranks.sum(axis=1)
    s = float(((rank_sums - m * (n + 1) / 2.0) ** 2).sum())
    denominator = m**2 * (n**3 - n)
    if tie_correction:
        denominator = denominator - m * _tie_sums(ranks).sum()
    w = float(12.0 * s / denominator)
    w = min(max(w, 0.0), 1.0)  # rounding guard only: 0 <= W <= 1 holds exactly (Cauchy-Schwarz)
    df = n - 1
    chi2 = m * df * w
    df1 = df - 2.0 / m
    df2 = (m - 1) * df1
    f_stat = (m - 1) * w / (1 - w) if w < 1 else np.inf
    p_f = float(stats.f.sf(f_stat, df1, df2)) if np.isfinite(f_stat) else 0.0
    w_min = float(stats.chi2.ppf(1 - alpha, df)) / (m * df)
    return KendallW(W=w, chi2=float(chi2), df=df, p=float(stats.chi2.sf(chi2, df)), F=float(f_stat), df1=df1,
                    df2=df2, p_F=p_f, W_min=w_min, compatibility=w / w_min, n_objects=n, n_experts=m,
                    agreement=interpret_kendalls_w(w), tie_correction=tie_correction, alpha=alpha, S=s)


def kendall_w(ratings: Any, *, tie_correction: bool = True, alpha: float = 0.05, scores: bool = False,
              missing: MissingPolicy = "error") -> KendallW:
    r"""Kendall's coefficient of concordance W with chi-square and F tests.

    Parameters
    ----------
    ratings
        Factors x experts table (R ``irr::kendall`` layout): index = factor codes, columns = expert ids.
    tie_correction
        Correct the denominator for ties within experts (``irr::kendall(correct = TRUE)``).
    alpha
        Significance level for the minimal significant W (``W_min``).
    scores
        ``False``: values are ranks, 1 = most important, each within 1..n. ``True``: values are scores,
        larger = more important. The direction does not change W.
    missing
        ``"error"`` (default): a missing rating raises, naming the expert and factor.
        ``"drop_experts"``: experts with any missing rating are left out, with a ``UserWarning`` naming
        them.

    Returns
    -------
    KendallW
        ``W``; ``chi2`` = m(n-1)W with ``df`` = n-1 and its upper-tail ``p``; the F approximation
        ``F`` = (m-1)W/(1-W) with ``df1`` = n-1-2/m, ``df2`` = (m-1) df1 and ``p_F``; ``W_min`` =
        chi2_{1-alpha, n-1} / (m(n-1)), the smallest W significant at ``alpha`` by the chi-square test, and
        ``compatibility`` = W / W_min (> 1: significant); ``agreement`` (:func:`interpret_kendalls_w`);
        ``S`` = sum of squared deviations of the rank sums from their mean (rank units squared).

    Notes
    -----
    .. math::

        W = \frac{12 S}{m^2 (n^3 - n) - m \sum_j T_j}, \qquad T_j = \sum_{\text{ties of } j} (t^3 - t)

    (without tie correction the term :math:`m \sum T_j` is dropped). The chi-square statistic equals the
    tie-corrected Friedman statistic (R ``friedman.test(t(ratings))``). The F approximation is eq. (5) of
    Legendre (2005); it is better than the chi-square test when there are few experts.

    Validated against R 4.2.2 ``irr::kendall(anxiety, correct = TRUE/FALSE)`` (tests/reference) and the
    ``friedman.test`` example of R ``stats`` (Hollander & Wolfe 1973, RoundingTimes).

    Raises
    ------
    AnalysisError
        Fewer than 2 experts or 3 factors, an expert whose values are all tied, a rank outside 1..n,
        non-numeric or missing values (unless ``missing="drop_experts"``).
    """
    if not 0 < alpha < 1:
        raise AnalysisError(f"alpha must lie strictly between 0 and 1, got {alpha!r}")
    values, _, _ = _check_ratings(ratings, scores=scores, missing=missing)
    return _w_from_ranks(_rank_columns(values, scores=scores), tie_correction=tie_correction, alpha=alpha)


def importance_ranks(ratings: Any, *, scores: bool = False, missing: MissingPolicy = "error") -> pd.DataFrame:
    """Within-expert importance ranks (1 = most important, average ranks for ties) as a factors x experts
    table, after the same checks as :func:`kendall_w`."""
    values, factors, experts = _check_ratings(ratings, scores=scores, missing=missing)
    return pd.DataFrame(_rank_columns(values, scores=scores), index=pd.Index(factors, name="factor"),
                        columns=pd.Index(experts, name="expert_id"))


@dataclass(frozen=True)
class KendallPermutation:
    """Permutation test of W (see :func:`kendall_w_permutation`)."""

    W: float
    p_perm: float
    n_perm: int
    n_as_extreme: int
    seed: int | None


def _permutation_count(ranks: np.ndarray, n_perm: int, rng: np.random.Generator) -> int:
    """Number of permutations with S* >= S.

    W* is proportional to S* (the tie sums T_j do not change when an expert's ranks are permuted), so S is
    compared instead of W. Average ranks are multiples of 1/2, so doubled ranks are integers and the
    comparison is exact (no floating-point ties lost at S* == S).
    """
    n, m = ranks.shape
    doubled = np.rint(2 * ranks).astype(np.int64).T  # m x n
    centre = m * (n + 1)  # doubled mean rank sum
    s_obs = int(((doubled.sum(axis=0) - centre) ** 2).sum())
    chunk = max(1, _CHUNK_CELLS // (n * m))
    count = 0
    for start in range(0, n_perm, chunk):
        size = min(chunk, n_perm - start)
        shuffled = rng.permuted(np.broadcast_to(doubled, (size, m, n)), axis=-1)
        s_star = ((shuffled.sum(axis=1) - centre) ** 2).sum(axis=1)
        count += int((s_star >= s_obs).sum())
    return count


def kendall_w_permutation(ratings: Any, *, n_perm: int = 2000, seed: int | None = None,
                          tie_correction: bool = True, scores: bool = False,
                          missing: MissingPolicy = "error") -> KendallPermutation:
    """Permutation p-value of Kendall's W.

    Under H0 (no agreement) every expert's ranking is an independent random order, so each expert's
    ranks are permuted independently over the factors (Legendre 2005, section 2.3; as
    ``vegan::kendall.global``). The p-value counts the observed value among the permutations:
    ``p = (1 + #{W* >= W}) / (1 + n_perm)``.

    Parameters
    ----------
    ratings, tie_correction, scores, missing
        As in :func:`kendall_w` (tie correction changes W but not p).
    n_perm
        Number of random permutations (>= 1). The Monte-Carlo standard error of p is about
        sqrt(p(1-p)/n_perm).
    seed
        Seed of ``numpy.random.default_rng`` (``None``: not reproducible).

    Notes
    -----
    Vectorised: permutations are drawn in chunks of about two million cells with
    ``Generator.permuted`` and reduced with array sums; there is no Python loop over permutations beyond
    the chunks.
    """
    if int(n_perm) < 1:
        raise AnalysisError(f"n_perm must be at least 1, got {n_perm!r}")
    values, _, _ = _check_ratings(ratings, scores=scores, missing=missing)
    ranks = _rank_columns(values, scores=scores)
    w = _w_from_ranks(ranks, tie_correction=tie_correction, alpha=0.05).W
    count = _permutation_count(ranks, int(n_perm), np.random.default_rng(seed))
    return KendallPermutation(W=w, p_perm=(1 + count) / (1 + int(n_perm)), n_perm=int(n_perm),
                              n_as_extreme=count, seed=seed)


# --- competence and weights -----------------------------------------------------------------------

def expert_competence(argumentation: Any, familiarity: Any) -> pd.Series:
    """Competence coefficient of each expert, K = (Ka + Kf) / 2.

    Parameters
    ----------
    argumentation, familiarity
        The argumentation (Ka) and familiarity (Kf) self-assessment coefficients, each in 0..1 (Series
        indexed by expert id, or array-like in the same order). The Delphi "competence coefficient"
        of Russian/Lithuanian expert-evaluation practice (e.g. Podvezko 2005).

    Returns
    -------
    pandas.Series
        ``competence`` in 0..1, indexed like ``argumentation``.
    """
    ka = argumentation if isinstance(argumentation, pd.Series) else pd.Series(argumentation)
    kf = familiarity if isinstance(familiarity, pd.Series) else pd.Series(familiarity, index=ka.index)
    if len(ka) != len(kf):
        raise AnalysisError(f"expert_competence: {len(ka)} argumentation values but {len(kf)} familiarity "
                            "values; expected one of each per expert")
    if not ka.index.equals(kf.index):
        kf = kf.reindex(ka.index)
    out = {}
    for name, s in (("argumentation", ka), ("familiarity", kf)):
        num = pd.to_numeric(s, errors="coerce")
        bad = num.isna() | (num < 0) | (num > 1)
        if bad.any():
            who = s.index[bad.to_numpy().argmax()]
            raise AnalysisError(f"expert_competence: expert {who!r}: {name} {_show(s[who])} is not a number "
                                "in 0..1")
        out[name] = num.astype(float)
    return ((out["argumentation"] + out["familiarity"]) / 2).rename("competence")


def _competence_vector(competence: Any, experts: list) -> np.ndarray:
    if competence is None:
        return np.ones(len(experts))
    if isinstance(competence, Mapping | pd.Series):
        series = pd.Series(competence)
        absent = [e for e in experts if e not in series.index]
        if absent:
            raise AnalysisError(f"competence: no value for expert {absent[0]!r}; expected one competence "
                                "coefficient per expert")
        c = pd.to_numeric(series.reindex(experts), errors="coerce").to_numpy(dtype=float)
    else:
        c = np.asarray(competence, dtype=float)
        if c.shape != (len(experts),):
            raise AnalysisError(f"competence: got {c.size} values for {len(experts)} experts")
    bad = ~np.isfinite(c) | (c <= 0) | (c > 1)
    if bad.any():
        raise AnalysisError(f"competence: expert {experts[int(bad.argmax())]!r} has competence "
                            f"{_show(c[bad.argmax()])}; expected a number in (0, 1] for weighting")
    return c


def _roc_table(n: int) -> np.ndarray:
    """Cumulative rank-order-centroid weights: C[k] = sum_{r=1}^{k} roc(r), C[0] = 0."""
    roc = np.cumsum(1.0 / np.arange(n, 0, -1))[::-1] / n  # roc(r) = (1/n) sum_{k=r}^{n} 1/k
    return np.concatenate([[0.0], np.cumsum(roc)])


def _roc_weights(mean_ranks: np.ndarray) -> np.ndarray:
    """ROC weights of the consensus order of ``mean_ranks`` (last axis = factors); tied factors share the
    average ROC weight of the positions they occupy, so the weights still sum to 1."""
    n = mean_ranks.shape[-1]
    cum = _roc_table(n)
    # Weighted means that are equal in exact arithmetic may differ in the last bits; round so they tie.
    consensus = np.round(mean_ranks, 10)
    lo = stats.rankdata(consensus, method="min", axis=-1).astype(int)
    hi = stats.rankdata(consensus, method="max", axis=-1).astype(int)
    return (cum[hi] - cum[lo - 1]) / (hi - lo + 1)


def _weights_from(method: str, ranks: np.ndarray, points: np.ndarray, c: np.ndarray) -> tuple[np.ndarray,
                                                                                                np.ndarray]:
    """Mean ranks and weights; ``ranks``/``points`` are (..., n, m) and ``c`` is (..., m)."""
    c_norm = c / c.sum(axis=-1, keepdims=True)
    mean_rank = (ranks * c_norm[..., None, :]).sum(axis=-1)
    n = ranks.shape[-2]
    if method == "rank_sum":
        raw = n + 1 - mean_rank
    elif method == "rank_order_centroid":
        return mean_rank, _roc_weights(mean_rank)
    else:  # mean_score
        raw = (points * c_norm[..., None, :]).sum(axis=-1)
    return mean_rank, raw / raw.sum(axis=-1, keepdims=True)


def factor_weights(ratings: Any, *, method: str = "rank_sum", competence: Any = None, n_boot: int = 2000,
                   seed: int | None = None, ci: float = 0.95, scores: bool = False,
                   missing: MissingPolicy = "error") -> pd.DataFrame:
    r"""Factor weights from an expert panel, normalised to sum to 1, with bootstrap CIs over experts.

    Let :math:`r_{ij}` be expert j's importance rank of factor i (1 = most important, average ranks for
    ties), :math:`c_j` the expert weights (competence, or 1), and
    :math:`\bar r_i = \sum_j c_j r_{ij} / \sum_j c_j` the (competence-weighted) mean rank.

    ``method``

    * ``"rank_sum"`` -- rank-sum weights (Stillwell, Seaver & Edwards 1981) on the mean ranks:
      :math:`w_i = (n + 1 - \bar r_i) / \sum_k (n + 1 - \bar r_k)`. Equivalently each expert awards
      n + 1 - r_ij points and w_i is factor i's share of all points; with equal competence
      :math:`w_i = 2 (m(n+1) - R_i) / (m n (n+1))`, R_i the rank sum.
    * ``"rank_order_centroid"`` -- ROC weights (Barron & Barrett 1996) of the consensus order
      :math:`\rho_i` (rank of :math:`\bar r_i`): :math:`w_i = \frac1n \sum_{k=\rho_i}^{n} 1/k`. Factors
      tied in the consensus share the mean ROC weight of their positions.
    * ``"mean_score"`` -- for scores (``scores=True``, larger = more important, all >= 0): the share of
      the (competence-weighted) mean score, :math:`w_i = \bar x_i / \sum_k \bar x_k`. For rank data the
      scores are the points n + 1 - r_ij, which makes it identical to ``rank_sum``.

    Parameters
    ----------
    ratings, scores, missing
        As in :func:`kendall_w`.
    method
        One of :data:`WEIGHT_METHODS`.
    competence
        ``None`` (equal experts) or one coefficient in (0, 1] per expert (Series/mapping keyed by expert
        id, or array in column order); experts then count in proportion to their competence.
    n_boot
        Bootstrap samples (experts drawn with replacement, weights recomputed); 0 = no CIs (``ci_low``
        and ``ci_high`` are NaN).
    seed
        Seed of ``numpy.random.default_rng``.
    ci
        Coverage of the percentile interval.

    Returns
    -------
    pandas.DataFrame
        One row per factor in input order: ``factor``, ``mean_rank`` (rank units, 1 = most important),
        ``weight`` (share, sums to 1), ``ci_low``, ``ci_high`` (percentile bootstrap), ``rank`` (1 = largest
        weight; ties share the smallest rank).

    References
    ----------
    Stillwell, W. G., Seaver, D. A., & Edwards, W. (1981). A comparison of weight approximation techniques
    in multiattribute utility decision making. *Organizational Behavior and Human Performance*, 28, 62-77.
    Barron, F. H., & Barrett, B. E. (1996). Decision quality using ranked attribute weights. *Management
    Science*, 42, 1515-1523.
    Roszkowska, E. (2013). Rank ordering criteria weighting methods - a comparative overview. *Optimum.
    Studia Ekonomiczne*, 5(65), 14-33.
    """
    if method not in WEIGHT_METHODS:
        raise AnalysisError(f"method={method!r} is not one of {', '.join(WEIGHT_METHODS)}")
    if not 0 < ci < 1:
        raise AnalysisError(f"ci must lie strictly between 0 and 1, got {ci!r}")
    if int(n_boot) < 0:
        raise AnalysisError(f"n_boot must be 0 or more, got {n_boot!r}")
    values, factors, experts = _check_ratings(ratings, scores=scores, missing=missing)
    n, m = values.shape
    ranks = _rank_columns(values, scores=scores)
    if method == "mean_score" and scores:
        if (values < 0).any():
            i, j = np.argwhere(values < 0)[0]
            raise AnalysisError(f"mean_score weights need non-negative scores; expert {experts[j]!r}, factor "
                                f"{factors[i]!r} has {values[i, j]:g}")
        points = values
    else:
        points = n + 1 - ranks
    c = _competence_vector(competence, experts)
    mean_rank, weight = _weights_from(method, ranks, points, c)

    low = high = np.full(n, np.nan)
    if int(n_boot) > 0:
        rng = np.random.default_rng(seed)
        boot = np.empty((int(n_boot), n))
        chunk = max(1, _CHUNK_CELLS // (n * m))
        for start in range(0, int(n_boot), chunk):
            size = min(chunk, int(n_boot) - start)
            idx = rng.integers(0, m, size=(size, m))
            boot[start:start + size] = _weights_from(method, np.moveaxis(ranks[:, idx], 1, 0),
                                                     np.moveaxis(points[:, idx], 1, 0), c[idx])[1]
        tail = (1 - ci) / 2
        low, high = np.quantile(boot, [tail, 1 - tail], axis=0)
    return pd.DataFrame({
        "factor": factors,
        "mean_rank": mean_rank,
        "weight": weight,
        "ci_low": low,
        "ci_high": high,
        "rank": stats.rankdata(-np.round(weight, 12), method="min").astype(int),
    })


# --- panel diagnostics --------------------------------------------------------------------------------

def _spearman_greater(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Column-wise Spearman rho of x[:, j] with y[:, j] and its one-sided (rho > 0) p-value.

    rho is Pearson's r of the (average) ranks; p uses t = rho sqrt((n-2)/(1-rho^2)) on n-2 df, as R
    ``cor.test(method = "spearman", exact = FALSE, alternative = "greater")`` and SciPy ``spearmanr``.
    """
    n = x.shape[0]
    rx = stats.rankdata(x, axis=0)
    ry = stats.rankdata(y, axis=0)
    rx = rx - rx.mean(axis=0)
    ry = ry - ry.mean(axis=0)
    rho = (rx * ry).sum(axis=0) / np.sqrt((rx**2).sum(axis=0) * (ry**2).sum(axis=0))
    rho = np.clip(rho, -1.0, 1.0)
    with np.errstate(divide="ignore"):
        t = rho * np.sqrt((n - 2) / np.maximum(1 - rho**2, 0.0))
    return rho, stats.t.sf(t, n - 2)


def leave_one_out(ratings: Any, *, tie_correction: bool = True, alpha: float = 0.05, scores: bool = False,
                  missing: MissingPolicy = "error") -> pd.DataFrame:
    """Leave-one-expert-out concordance and each expert's agreement with the rest of the panel.

    For each expert j: ``W_without`` (W of the other m-1 experts), ``W_change`` = W_without - W (positive:
    the panel agrees more without j), ``rho`` = Spearman correlation of j's ranks with the mean ranks of
    the others (Legendre's 2005 a-posteriori statistic), ``p_rho`` = one-sided p of rho > 0 (t
    approximation, as R ``cor.test(method = "spearman", exact = FALSE, alternative = "greater")``),
    ``low_rho`` and ``dissenting``.

    Rule: an expert is **dissenting** when leaving them out raises W (``W_change > 0``) *and* their
    ranking either is not significantly positively related to the others' consensus (``p_rho >= alpha``)
    or agrees clearly less with it than the rest of the panel does (``low_rho``: rho below Tukey's lower
    fence Q1 - 1.5 IQR of all experts' rho, quartiles as R ``quantile(type = 7)``). The first part says
    the expert lowers the panel's agreement; the second that they do not share, or share much less, the
    panel's view. The fence matters for panels that agree strongly: an expert with rho = 0.5 among
    colleagues at 0.9 is still "significant" but plainly out of line.

    Needs at least 3 experts (so that W of the others is defined).
    """
    values, _, experts = _check_ratings(ratings, scores=scores, missing=missing)
    n, m = values.shape
    if m < 3:
        raise AnalysisError(f"leave_one_out needs at least 3 experts (W of the others needs 2); got {m}")
    ranks = _rank_columns(values, scores=scores)
    w_all = _w_from_ranks(ranks, tie_correction=tie_correction, alpha=alpha).W
    keep = ~np.eye(m, dtype=bool)
    w_without = np.array([_w_from_ranks(ranks[:, keep[j]], tie_correction=tie_correction, alpha=alpha).W
                          for j in range(m)])
    others_mean = (ranks.sum(axis=1, keepdims=True) - ranks) / (m - 1)
    rho, p_rho = _spearman_greater(ranks, others_mean)
    change = w_without - w_all
    q1, q3 = np.quantile(rho, [0.25, 0.75])
    low_rho = rho < q1 - 1.5 * (q3 - q1)
    return pd.DataFrame({"expert_id": experts, "W_without": w_without, "W_change": change, "rho": rho,
                         "p_rho": p_rho, "low_rho": low_rho,
                         "dissenting": (change > 0) & ((p_rho >= alpha) | low_rho)})


def _paired_wilcoxon(diff: np.ndarray, *, exact: bool | None = None) -> tuple[float, float]:
    """Two-sided Wilcoxon signed-rank test of paired differences, as R ``wilcox.test(paired = TRUE)``.

    Zero differences are dropped; the exact null distribution is used when fewer than 50 pairs remain
    and none of the absolute differences are tied, otherwise the normal approximation with tie-corrected
    variance and continuity correction (R's defaults ``exact = NULL, correct = TRUE``); ``exact`` forces
    either branch as R's argument of that name. Returns (V, p) with V the sum of the positive ranks; no
    non-zero difference gives (0, 1).
    """
    d = diff[diff != 0]
    if d.size == 0:
        return 0.0, 1.0
    abs_ranks = stats.rankdata(np.abs(d))
    v = float(abs_ranks[d > 0].sum())
    ties = np.unique(np.abs(d)).size < d.size
    if exact if exact is not None else (d.size < 50 and not ties):
        p = float(stats.wilcoxon(d, zero_method="wilcox", method="exact").pvalue)
        return v, min(p, 1.0)
    n = d.size
    mean = n * (n + 1) / 4
    _, counts = np.unique(abs_ranks, return_counts=True)
    sd = np.sqrt(n * (n + 1) * (2 * n + 1) / 24 - (counts**3 - counts).sum() / 48)
    z = v - mean
    z = (z - np.sign(z) * 0.5) / sd
    return v, float(min(2 * stats.norm.sf(abs(z)), 1.0))


@dataclass(frozen=True)
class RoundComparison:
    """Delphi round 1 vs round 2 (see :func:`compare_rounds`)."""

    round1: KendallW
    round2: KendallW
    W_change: float
    n_common_experts: int
    rank_correlation: float
    factors: pd.DataFrame = field(repr=False)


def compare_rounds(round1: Any, round2: Any, *, tie_correction: bool = True, alpha: float = 0.05,
                   scores: bool = False, missing: MissingPolicy = "error") -> RoundComparison:
    """Compare two Delphi rounds: concordance, consensus ranks and the stability of each factor.

    Parameters
    ----------
    round1, round2
        Factors x experts tables of the two rounds (same factors; the experts may differ -- W is computed
        on each round's own panel, the per-expert comparisons on the experts present in both).

    Returns
    -------
    RoundComparison
        ``round1``/``round2`` (:class:`KendallW` of each round), ``W_change`` = W2 - W1,
        ``n_common_experts``, ``rank_correlation`` (Spearman rho between the two rounds' mean ranks) and
        ``factors``: one row per factor with ``mean_rank_round1``, ``mean_rank_round2``,
        ``mean_rank_change``, ``cv_round1``, ``cv_round2`` (coefficient of variation of the experts' ranks,
        SD (n-1) / mean), ``cv_change``, and the stability test: ``wilcoxon_V`` and ``p`` of the two-sided
        Wilcoxon signed-rank test of the common experts' rank changes (as R ``wilcox.test(paired =
        TRUE)``), ``p_holm`` (Holm-adjusted over factors) and ``stable`` = ``p_holm >= alpha`` (no
        systematic shift of the factor's ranks between rounds; Kalaian & Kasim 2012 recommend this test
        for Delphi stability).
    """
    v1, f1, e1 = _check_ratings(round1, scores=scores, missing=missing, what="round 1")
    v2, f2, e2 = _check_ratings(round2, scores=scores, missing=missing, what="round 2")
    if set(f1) != set(f2):
        only = sorted(map(str, set(f1) ^ set(f2)))
        raise AnalysisError(f"compare_rounds: the rounds rate different factors ({', '.join(only)}); "
                            "expected the same factors in both rounds")
    order2 = [f2.index(f) for f in f1]
    r1 = _rank_columns(v1, scores=scores)
    r2 = _rank_columns(v2, scores=scores)[order2]
    k1 = _w_from_ranks(r1, tie_correction=tie_correction, alpha=alpha)
    k2 = _w_from_ranks(r2, tie_correction=tie_correction, alpha=alpha)
    common = [e for e in e1 if e in set(e2)]
    if len(common) < 2:
        raise AnalysisError(f"compare_rounds: {len(common)} expert(s) took part in both rounds; at least 2 "
                            "are needed to compare the rounds")
    d = r2[:, [e2.index(e) for e in common]] - r1[:, [e1.index(e) for e in common]]
    tests = [_paired_wilcoxon(row) for row in d]
    p = np.array([t[1] for t in tests])
    from statsmodels.stats.multitest import multipletests

    p_holm = multipletests(p, method="holm")[1]
    mean1, mean2 = r1.mean(axis=1), r2.mean(axis=1)
    cv1 = r1.std(axis=1, ddof=1) / mean1
    cv2 = r2.std(axis=1, ddof=1) / mean2
    table = pd.DataFrame({"factor": f1, "mean_rank_round1": mean1, "mean_rank_round2": mean2,
                          "mean_rank_change": mean2 - mean1, "cv_round1": cv1, "cv_round2": cv2,
                          "cv_change": cv2 - cv1, "wilcoxon_V": [t[0] for t in tests], "p": p,
                          "p_holm": p_holm, "stable": p_holm >= alpha})
    rho = float(stats.spearmanr(mean1, mean2).statistic)
    return RoundComparison(round1=k1, round2=k2, W_change=k2.W - k1.W, n_common_experts=len(common),
                           rank_correlation=rho, factors=table)


AGREEMENT_COLUMNS = ["scope", "W", "chi2", "df", "p", "F", "p_F", "p_perm", "W_min", "compatibility",
                     "n_objects", "n_experts", "df1", "df2", "agreement"]


def concordance_by_stage(ratings: Any, stages: Mapping | pd.Series, *, alpha: float = 0.05,
                         tie_correction: bool = True, n_perm: int = 2000, seed: int | None = None,
                         scores: bool = False, missing: MissingPolicy = "error") -> pd.DataFrame:
    """Kendall's W over all factors and within each stage (the ``expert_agreement`` table).

    Parameters
    ----------
    ratings, alpha, tie_correction, scores, missing
        As in :func:`kendall_w`. Within a stage each expert's values are re-ranked among that stage's
        factors (ranking is order-preserving, so global ranks and within-stage ranks give the same
        within-stage W).
    stages
        Stage code of every factor (mapping or Series factor -> stage); stages appear in the order of
        their first factor.
    n_perm, seed
        Permutation test (:func:`kendall_w_permutation`) per scope; ``n_perm = 0`` skips it (``p_perm``
        NaN). Scope k uses the seed ``SeedSequence([seed, k])``, so scopes are independent and reproducible.

    Returns
    -------
    pandas.DataFrame
        One row per scope (``"overall"`` first, then the stage codes): ``scope``, ``W``, ``chi2``, ``df``,
        ``p``, ``F``, ``p_F``, ``p_perm``, ``W_min``, ``compatibility``, ``n_objects``, ``n_experts``,
        then ``df1``, ``df2``, ``agreement``.
    """
    values, factors, experts = _check_ratings(ratings, scores=scores, missing=missing)
    stage_of = pd.Series(stages) if not isinstance(stages, pd.Series) else stages
    absent = [f for f in factors if f not in stage_of.index]
    if absent:
        raise AnalysisError(f"concordance_by_stage: factor {absent[0]!r} has no stage; expected a stage "
                            "code for every factor")
    ranks = _rank_columns(values, scores=scores)
    labels = [stage_of[f] for f in factors]
    scopes = [("overall", np.ones(len(factors), dtype=bool))]
    scopes += [(s, np.array([lab == s for lab in labels])) for s in dict.fromkeys(labels)]
    rows = []
    for k, (scope, mask) in enumerate(scopes):
        if mask.sum() < 3:
            raise AnalysisError(f"concordance_by_stage: stage {scope!r} has {int(mask.sum())} factor(s); "
                                "Kendall's W needs at least 3")
        sub = stats.rankdata(ranks[mask], method="average", axis=0)
        flat = np.ptp(sub, axis=0) == 0
        if flat.any():
            raise AnalysisError(f"concordance_by_stage: stage {scope!r}: expert {experts[int(flat.argmax())]!r} "
                                "gives every factor of the stage the same value (all tied)")
        res = _w_from_ranks(sub, tie_correction=tie_correction, alpha=alpha)
        p_perm = np.nan
        if int(n_perm) > 0:
            rng = np.random.default_rng(np.random.SeedSequence([seed if seed is not None else 0, k]))
            p_perm = (1 + _permutation_count(sub, int(n_perm), rng)) / (1 + int(n_perm))
        row = res.to_dict()
        row.update(scope=scope, p_perm=p_perm)
        rows.append(row)
    return pd.DataFrame(rows)[AGREEMENT_COLUMNS]


# --- from the processed tables to everything the notebook shows ---------------------------------------

def ratings_matrix(expert_ratings: pd.DataFrame, *, round: int = 1,
                   factor_order: Sequence[str] | None = None) -> pd.DataFrame:
    """Factors x experts table of one round from the long ``expert_ratings`` table.

    ``expert_ratings`` has the columns ``round``, ``expert_id``, ``factor``, ``value`` (data contract in
    docs/architecture.md). Rows follow ``factor_order`` (default: order of first appearance), columns
    the order of first appearance of the experts. A repeated (round, expert, factor) raises.
    """
    need = {"round", "expert_id", "factor", "value"}
    lacking = sorted(need - set(expert_ratings.columns))
    if lacking:
        raise AnalysisError(f"expert_ratings: missing column(s) {', '.join(lacking)}")
    one = expert_ratings[expert_ratings["round"] == round]
    if one.empty:
        raise AnalysisError(f"expert_ratings: no ratings for round {round}")
    dup = one.duplicated(["expert_id", "factor"])
    if dup.any():
        r = one[dup].iloc[0]
        raise AnalysisError(f"expert_ratings: round {round}, expert {r['expert_id']!r} rates factor "
                            f"{r['factor']!r} more than once")
    wide = one.pivot(index="factor", columns="expert_id", values="value")
    order = list(factor_order) if factor_order is not None else list(dict.fromkeys(one["factor"]))
    order = [f for f in order if f in wide.index] + [f for f in wide.index if f not in set(order)]
    wide = wide.loc[order, list(dict.fromkeys(one["expert_id"]))]
    wide.columns.name = "expert_id"
    return wide.astype("float64")


def expert_weights_table(ratings: Any, stages: Mapping | pd.Series, *, competence: Any = None,
                         n_boot: int = 2000, seed: int | None = None, ci: float = 0.95, scores: bool = False,
                         missing: MissingPolicy = "error") -> pd.DataFrame:
    """All weighting methods, with and without competence weighting, as one long table.

    The ``expert_weights`` table of docs/architecture.md: ``stage``, ``factor``, ``method``,
    ``competence_weighted``, ``weight``, ``ci_low``, ``ci_high``, ``mean_rank``, ``rank``. Weights are
    computed over all factors (they sum to 1 over the whole catalogue for each method and competence
    setting); ``stage`` labels the factor. Every combination uses the same bootstrap resamples (same
    ``seed``), so differences between methods are not resampling noise. Competence-weighted rows are
    present only when ``competence`` is given.
    """
    stage_of = pd.Series(stages) if not isinstance(stages, pd.Series) else stages
    parts = []
    for weighted in ([False, True] if competence is not None else [False]):
        for method in WEIGHT_METHODS:
            w = factor_weights(ratings, method=method, competence=competence if weighted else None,
                               n_boot=n_boot, seed=seed, ci=ci, scores=scores, missing=missing)
            w.insert(0, "stage", [stage_of.get(f) for f in w["factor"]])
            w.insert(2, "method", method)
            w.insert(3, "competence_weighted", weighted)
            parts.append(w)
    out = pd.concat(parts, ignore_index=True)
    return out[["stage", "factor", "method", "competence_weighted", "weight", "ci_low", "ci_high",
                "mean_rank", "rank"]]


@dataclass(frozen=True)
class ExpertEvaluation:
    """Everything the expert-evaluation notebook shows (see :func:`evaluate_panel`)."""

    ratings: pd.DataFrame = field(repr=False)
    ranks: pd.DataFrame = field(repr=False)
    panel: pd.DataFrame = field(repr=False)
    overall: KendallW
    agreement: pd.DataFrame = field(repr=False)
    weights: pd.DataFrame = field(repr=False)
    chosen_weights: pd.DataFrame = field(repr=False)
    leave_one_out: pd.DataFrame = field(repr=False)
    rounds: RoundComparison | None
    weight_method: str
    competence_weighted: bool
    top_factors: list[str]
    dissenting_experts: list[str]

    @property
    def W_by_stage(self) -> dict[str, float]:
        rows = self.agreement[self.agreement["scope"] != "overall"]
        return dict(zip(rows["scope"], rows["W"].astype(float), strict=True))

    @property
    def overall_row(self) -> pd.Series:
        return self.agreement.iloc[0]


def evaluate_panel(expert_ratings: pd.DataFrame, expert_panel: pd.DataFrame | None, *,
                   factor_order: Sequence[str] | None = None, alpha: float = 0.05, n_perm: int = 2000,
                   n_boot: int = 2000, seed: int | None = None, scores: bool = False,
                   weight_method: str = "rank_sum", competence_weighted: bool = False, top_n: int = 5,
                   tie_correction: bool = True, missing: MissingPolicy = "drop_experts") -> ExpertEvaluation:
    """Run the whole expert evaluation of a study on its processed tables.

    Parameters
    ----------
    expert_ratings
        Long table ``round``, ``expert_id``, ``stage``, ``factor``, ``value``; round 1 is the main
        round, round 2 (when present) is compared with it.
    expert_panel
        ``expert_id``, ``role``, ``argumentation``, ``familiarity`` (``competence`` is recomputed as their
        mean and checked); ``None``: no competence weighting.
    factor_order
        Display order of the factors (default: as in ``expert_ratings``).
    alpha, n_perm, n_boot, seed, scores, tie_correction
        As in :func:`kendall_w`, :func:`kendall_w_permutation`, :func:`factor_weights`.
    weight_method, competence_weighted
        The study's choice of weights (``chosen_weights``, ``top_factors``); ``weights`` holds all.
    top_n
        Number of factors in ``top_factors`` (largest chosen weights).
    missing
        Default ``"drop_experts"``: experts with incomplete ratings are left out with a warning.

    Warns
    -----
    UserWarning
        A panel of two experts (the dissent check needs three and is skipped; the bootstrap resamples only
        two experts), and a panel whose rankings are all identical (W = 1: the F approximation is degenerate,
        F infinite and p_F = 0, and the weights' bootstrap intervals have zero width).
    """
    if weight_method not in WEIGHT_METHODS:
        raise AnalysisError(f"weight_method={weight_method!r} is not one of {', '.join(WEIGHT_METHODS)}")
    ratings = ratings_matrix(expert_ratings, round=1, factor_order=factor_order)
    ranks = importance_ranks(ratings, scores=scores, missing=missing)
    ratings = ratings[ranks.columns]  # experts left out for missing ratings are out everywhere
    n_experts = ranks.shape[1]
    if n_experts < 3:
        warnings.warn(f"expert_ratings: only {n_experts} experts rated the factors; the dissent check "
                      "(leave-one-out) needs at least 3 and is skipped, and the weights' bootstrap intervals "
                      f"resample only {n_experts} experts, so treat the weights as indicative", UserWarning,
                      stacklevel=2)
    if n_experts >= 2 and bool((ranks.nunique(axis=1) == 1).all()):
        warnings.warn(f"expert_ratings: all {n_experts} experts gave identical rankings (Kendall's W = 1); "
                      "the F approximation is degenerate (F infinite, p_F = 0) and the weights' bootstrap "
                      "intervals have zero width - check that the ratings were not copied", UserWarning,
                      stacklevel=2)
    first = expert_ratings[expert_ratings["round"] == 1]
    stages = first.drop_duplicates("factor").set_index("factor")["stage"]
    competence = None
    panel = pd.DataFrame({"expert_id": list(ranks.columns)})
    if expert_panel is not None:
        lacking = [e for e in ranks.columns if e not in set(expert_panel["expert_id"])]
        if lacking:
            raise AnalysisError(f"expert_panel: expert {lacking[0]!r} rated the factors but is not in the "
                                "panel table")
        panel = expert_panel.set_index("expert_id").loc[list(ranks.columns)].reset_index()
        k = expert_competence(panel.set_index("expert_id")["argumentation"],
                              panel.set_index("expert_id")["familiarity"])
        if "competence" in panel and not np.allclose(panel["competence"].astype(float), k.to_numpy(),
                                                     atol=1e-9):
            raise AnalysisError("expert_panel: column competence differs from (argumentation + "
                                "familiarity) / 2")
        panel["competence"] = k.to_numpy()
        competence = k
    overall = kendall_w(ratings, tie_correction=tie_correction, alpha=alpha, scores=scores)
    agreement = concordance_by_stage(ratings, stages, alpha=alpha, tie_correction=tie_correction,
                                     n_perm=n_perm, seed=seed, scores=scores)
    weights = expert_weights_table(ratings, stages, competence=competence, n_boot=n_boot, seed=seed,
                                   scores=scores)
    use_competence = bool(competence_weighted and competence is not None)
    chosen = weights[(weights["method"] == weight_method)
                     & (weights["competence_weighted"] == use_competence)].reset_index(drop=True)
    top = chosen.sort_values(["rank", "mean_rank"], kind="stable")["factor"].head(top_n).tolist()
    loo = (leave_one_out(ratings, tie_correction=tie_correction, alpha=alpha, scores=scores)
           if ratings.shape[1] >= 3 else pd.DataFrame(columns=["expert_id", "W_without", "W_change", "rho",
                                                               "p_rho", "low_rho", "dissenting"]))
    rounds = None
    if (expert_ratings["round"] == 2).any():
        second = ratings_matrix(expert_ratings, round=2, factor_order=list(ratings.index))
        if set(second.index) == set(ratings.index):
            rounds = compare_rounds(ratings, second, tie_correction=tie_correction, alpha=alpha, scores=scores,
                                    missing=missing)
        else:
            warnings.warn("expert_ratings: round 2 rates other factors than round 1, so the rounds are not "
                          "compared", UserWarning, stacklevel=2)
    return ExpertEvaluation(ratings=ratings, ranks=ranks, panel=panel, overall=overall, agreement=agreement,
                            weights=weights, chosen_weights=chosen, leave_one_out=loo, rounds=rounds,
                            weight_method=weight_method, competence_weighted=use_competence,
                            top_factors=top,
                            dissenting_experts=[str(e) for e in loo.loc[loo["dissenting"].astype(bool),
                                                                        "expert_id"]])


# --- study level: config in, notebook-ready tables out ------------------------------------------------

def evaluate_study(cfg: Any, data: Any = None) -> ExpertEvaluation | None:
    """:func:`evaluate_panel` with the study's settings; ``None`` when the study has no expert panel.

    Settings come from the config: ``analysis.alpha``, ``analysis.seed`` and ``analysis.experts``
    (``n_perm``, ``n_boot``, ``scores``, ``weight_method``, ``competence_weighted``); the number of top
    factors is ``analysis.model.top_n``. ``data`` is the study's :class:`research.data.StudyData`
    (default: ``research.data.load_processed(cfg)``).
    """
    if cfg.data.experts is None:
        return None
    if data is None:
        from .data import load_processed

        data = load_processed(cfg)
    ratings = getattr(data, "expert_ratings", None)
    if ratings is None or len(ratings) == 0:
        raise AnalysisError(f"study {cfg.study.id!r} names an expert ratings file but the processed table "
                            "expert_ratings is empty; run `research prepare` first")
    a = cfg.analysis
    return evaluate_panel(ratings, getattr(data, "expert_panel", None),
                          factor_order=list(cfg.factors["factor"]), alpha=a.alpha, n_perm=a.experts.n_perm,
                          n_boot=a.experts.n_boot, seed=a.seed, scores=a.experts.scores,
                          weight_method=a.experts.weight_method,
                          competence_weighted=a.experts.competence_weighted, top_n=a.model.top_n)


WEIGHT_COLUMNS = ["stage", "factor", "method", "competence_weighted", "weight", "ci_low", "ci_high",
                  "mean_rank", "rank"]


def write_tables(cfg: Any, evaluation: ExpertEvaluation | None) -> list:
    """Write ``expert_weights`` and ``expert_agreement`` to ``data/processed/<study>/``.

    Without an expert panel (``evaluation`` is None) both tables are written empty, with their columns,
    so that a table left over from an earlier run can never be mistaken for this run's result.
    """
    from .io import write_table

    if evaluation is None:
        weights = pd.DataFrame({c: pd.Series(dtype="float64") for c in WEIGHT_COLUMNS})
        agreement = pd.DataFrame({c: pd.Series(dtype="float64") for c in AGREEMENT_COLUMNS})
        weights = weights.astype({"stage": "string", "factor": "string", "method": "string",
                                  "competence_weighted": "bool", "rank": "int64"})
        agreement = agreement.astype({"scope": "string", "agreement": "string", "df": "int64",
                                      "n_objects": "int64", "n_experts": "int64"})
    else:
        weights, agreement = evaluation.weights, evaluation.agreement
    return [write_table(weights, cfg.paths.processed_table("expert_weights")),
            write_table(agreement, cfg.paths.processed_table("expert_agreement"))]


def key_numbers(evaluation: ExpertEvaluation | None) -> dict[str, Any]:
    """Key numbers for ``reports/<study>/results/experts.json`` (stable keys, see docs/results.md);
    empty without an expert panel (``evaluation`` is None).

    ``W_overall``, ``chi2_overall``, ``p_overall`` (chi-square), ``p_F_overall``, ``p_perm_overall``,
    ``W_min_overall``, ``compatibility_overall``, ``agreement_overall`` (effectsize label),
    ``n_experts``, ``n_factors``, ``W_by_stage``, ``p_by_stage``, ``p_perm_by_stage`` (stage -> value),
    ``dissenting_experts`` (ids), ``top_factors`` (codes, largest chosen weight first),
    ``weight_method``, ``competence_weighted``, ``weights`` (factor -> chosen weight) and, with a
    second round, ``W_round1``, ``W_round2``, ``W_change_rounds``, ``rank_correlation_rounds``,
    ``unstable_factors``.
    """
    if evaluation is None:
        return {}
    row = evaluation.overall_row
    stages = evaluation.agreement[evaluation.agreement["scope"] != "overall"]
    out: dict[str, Any] = {
        "W_overall": float(row["W"]), "chi2_overall": float(row["chi2"]), "p_overall": float(row["p"]),
        "p_F_overall": float(row["p_F"]), "p_perm_overall": float(row["p_perm"]),
        "W_min_overall": float(row["W_min"]), "compatibility_overall": float(row["compatibility"]),
        "agreement_overall": str(row["agreement"]), "n_experts": int(row["n_experts"]),
        "n_factors": int(row["n_objects"]),
        "W_by_stage": dict(zip(stages["scope"], stages["W"].astype(float), strict=True)),
        "p_by_stage": dict(zip(stages["scope"], stages["p"].astype(float), strict=True)),
        "p_perm_by_stage": dict(zip(stages["scope"], stages["p_perm"].astype(float), strict=True)),
        "dissenting_experts": list(evaluation.dissenting_experts),
        "top_factors": list(evaluation.top_factors),
        "weight_method": evaluation.weight_method,
        "competence_weighted": evaluation.competence_weighted,
        "weights": dict(zip(evaluation.chosen_weights["factor"],
                            evaluation.chosen_weights["weight"].astype(float), strict=True)),
    }
    if evaluation.rounds is not None:
        r = evaluation.rounds
        out.update(W_round1=r.round1.W, W_round2=r.round2.W, W_change_rounds=r.W_change,
                   rank_correlation_rounds=r.rank_correlation,
                   unstable_factors=r.factors.loc[~r.factors["stable"], "factor"].tolist())
    return out


def _text(key: str, lang: str) -> str:
    from . import i18n

    return i18n.label("experts", key, lang)


def for_display(table: pd.DataFrame, cfg: Any, *, lang: str | None = None) -> pd.DataFrame:
    """A copy of an experts table ready for ``Reporter.table``: a factor ``label`` column after
    ``factor``, stage codes in ``scope`` replaced by stage names, the effectsize agreement labels and
    true/false flags in the report language."""
    lang = lang or cfg.language
    out = table.copy()
    if "factor" in out.columns:
        names = dict(zip(cfg.factors["factor"], cfg.factors[f"label_{lang}"], strict=True))
        out.insert(out.columns.get_loc("factor") + 1, "label", [names.get(f, f) for f in out["factor"]])
    if "scope" in out.columns:
        stage_names = {s.code: s.label(lang) for s in cfg.stages}
        stage_names["overall"] = _text("overall", lang)
        out["scope"] = [stage_names.get(s, s) for s in out["scope"]]
    if "agreement" in out.columns:
        out["agreement"] = [_text(a, lang) for a in out["agreement"]]
    for col in out.columns:
        if pd.api.types.is_bool_dtype(out[col]):
            out[col] = [_text("yes" if v else "no", lang) for v in out[col]]
    return out


def weights_wide(weights: pd.DataFrame) -> pd.DataFrame:
    """All methods side by side: one row per factor, one column per method (``+K`` = competence
    weighted), values = weights."""
    key = weights["method"] + np.where(weights["competence_weighted"].astype(bool), "+K", "")
    wide = weights.assign(variant=key).pivot(index="factor", columns="variant", values="weight")
    order = list(dict.fromkeys(weights["factor"]))
    wide = wide.loc[order, list(dict.fromkeys(key))].reset_index()
    wide.columns.name = None
    return wide


def labels(cfg: Any, lang: str | None = None) -> tuple[dict[str, str], dict[str, str]]:
    """(factor code -> name, stage code -> name) in the report language, for figures."""
    lang = lang or cfg.language
    factors = dict(zip(cfg.factors["factor"], cfg.factors[f"label_{lang}"], strict=True))
    return factors, {s.code: s.label(lang) for s in cfg.stages}


def _p_phrase(p: float, lang: str) -> str:
    from . import i18n

    text = i18n.fmt_p(p, lang)
    return text if text.startswith("<") or text == "–" else "= " + text


def reading(evaluation: ExpertEvaluation, cfg: Any, *, lang: str | None = None) -> dict[str, str]:
    """Formatted values for the plain-language paragraphs of the notebook (catalogue keys
    ``kendall_reading``, ``stage_reading``, ``weights_reading``, ``dissent_reading``, ``rounds_reading``).

    p-values come as phrases (``"= 0.043"``, ``"< 0.001"``) so templates read ``p {p}``; the verdict
    sentence follows the chi-square test, or says that only the small-panel tests (F, permutation) are
    significant.
    """
    from . import i18n

    lang = lang or cfg.language
    alpha = cfg.analysis.alpha
    row = evaluation.overall_row
    stages = evaluation.agreement[evaluation.agreement["scope"] != "overall"].reset_index(drop=True)
    factor_names, stage_names = labels(cfg, lang)
    lo, hi = stages["W"].idxmin(), stages["W"].idxmax()
    if row["p"] < alpha:
        verdict = "verdict_significant"
    elif row["p_F"] < alpha or row["p_perm"] < alpha:
        verdict = "verdict_small_panel"
    else:
        verdict = "verdict_not_significant"

    def num(x: float, digits: int = 3) -> str:
        return i18n.fmt_number(float(x), digits, lang)

    out = {
        "W": num(row["W"]), "chi2": num(row["chi2"], 2), "df": str(int(row["df"])),
        "p": _p_phrase(row["p"], lang), "p_F": _p_phrase(row["p_F"], lang),
        "p_perm": _p_phrase(row["p_perm"], lang), "W_min": num(row["W_min"]),
        "compatibility": num(row["compatibility"], 2), "n_factors": str(int(row["n_objects"])),
        "n_experts": str(int(row["n_experts"])), "alpha": num(alpha, 2),
        "agreement": _text(str(row["agreement"]), lang), "verdict": _text(verdict, lang),
        "W_low": num(stages.loc[lo, "W"]), "stage_low": stage_names.get(stages.loc[lo, "scope"], ""),
        "W_high": num(stages.loc[hi, "W"]), "stage_high": stage_names.get(stages.loc[hi, "scope"], ""),
        "top": ", ".join(factor_names.get(f, f) for f in evaluation.top_factors),
        "method": _text(f"method_{evaluation.weight_method}", lang),
        "competence": _text("competence_yes" if evaluation.competence_weighted else "competence_no", lang),
        "dissenters": ", ".join(evaluation.dissenting_experts) or _text("none", lang),
        "n_dissenters": str(len(evaluation.dissenting_experts)),
        "mean_competence": (num(evaluation.panel["competence"].mean(), 2)
                            if "competence" in evaluation.panel else "–"),
    }
    if evaluation.rounds is not None:
        r = evaluation.rounds
        unstable = r.factors.loc[~r.factors["stable"], "factor"]
        out.update(W1=num(r.round1.W), W2=num(r.round2.W), W_change=num(r.W_change),
                   p1=_p_phrase(r.round1.p, lang), p2=_p_phrase(r.round2.p, lang),
                   rho=num(r.rank_correlation), n_common=str(r.n_common_experts),
                   unstable=", ".join(factor_names.get(f, f) for f in unstable) or _text("none", lang))
    return out
