"""Expert evaluation: Kendall's W, its tests, weights and panel diagnostics (research.experts).

Expected values come from other software or published examples, named beside each value:
R 4.2.2 irr::kendall (tests/reference/kendall_w_reference.json), R stats::friedman.test's documented
example (Hollander & Wolfe 1973), R wilcox.test values quoted in Apache Commons Math's test suite,
effectsize's source for the agreement labels, Barron & Barrett (1996) for ROC weights, and closed forms
from SciPy distributions computed independently here.
"""

from __future__ import annotations

import itertools
import json
from collections import defaultdict

import numpy as np
import pandas as pd
import pytest
import yaml
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from numpy.testing import assert_allclose
from scipy import stats

from conftest import DEMO_STUDY, REFERENCE
from research import experts
from research.errors import AnalysisError

# R stats::friedman.test example "RoundingTimes": Hollander & Wolfe (1973), Nonparametric Statistical
# Methods, p. 140ff -- 22 players (rows) x 3 methods of rounding first base (columns), times in seconds.
ROUNDING_TIMES = np.array([
    [5.40, 5.50, 5.55], [5.85, 5.70, 5.75], [5.20, 5.60, 5.50], [5.55, 5.50, 5.40], [5.90, 5.85, 5.70],
    [5.45, 5.55, 5.60], [5.40, 5.40, 5.35], [5.45, 5.50, 5.35], [5.25, 5.15, 5.00], [5.85, 5.80, 5.70],
    [5.25, 5.20, 5.10], [5.65, 5.55, 5.45], [5.60, 5.35, 5.45], [5.05, 5.00, 4.95], [5.50, 5.50, 5.40],
    [5.45, 5.55, 5.50], [5.55, 5.55, 5.35], [5.45, 5.50, 5.55], [5.50, 5.45, 5.25], [5.65, 5.60, 5.40],
    [5.70, 5.65, 5.55], [6.30, 6.30, 6.25]])


@pytest.fixture(scope="module")
def anxiety(kendall_reference) -> tuple[pd.DataFrame, dict]:
    ref = kendall_reference["anxiety"]
    return pd.DataFrame(ref["ratings"], columns=ref["columns"]), ref


def rounding_times() -> pd.DataFrame:
    """Kendall layout: the 3 methods are the rated objects (rows), the 22 players the judges (columns)."""
    return pd.DataFrame(ROUNDING_TIMES.T, index=["round_out", "narrow_angle", "wide_angle"],
                        columns=[f"player{i + 1}" for i in range(22)])


# --- Kendall's W against R ------------------------------------------------------------------------

@pytest.mark.parametrize("scores", [True, False])
@pytest.mark.parametrize("corrected", [True, False])
def test_kendall_w_matches_irr_anxiety(anxiety, corrected, scores):
    # R 4.2.2: irr::kendall(anxiety, correct = TRUE/FALSE) (tests/reference/kendall_w_reference.json).
    # The anxiety ratings (1..6) are valid both as scores and as ranks within 1..20; W does not depend on
    # the ranking direction.
    data, ref = anxiety
    expected = ref["tie_corrected" if corrected else "uncorrected"]
    res = experts.kendall_w(data, tie_correction=corrected, scores=scores)
    assert_allclose(res.W, expected["W"], rtol=0, atol=1e-6)
    assert_allclose(res.chi2, expected["chi2"], rtol=0, atol=1e-6)
    assert res.df == expected["df"]
    assert_allclose(res.p, expected["p"], rtol=0, atol=1e-6)
    assert (res.n_objects, res.n_experts) == (20, 3)


def test_kendall_w_matches_r_friedman_rounding_times():
    # R stats::friedman.test(RoundingTimes) (documented example; Hollander & Wolfe 1973, p. 140ff):
    # "Friedman chi-squared = 11.143, df = 2, p-value = 0.003805". The tie-corrected Friedman statistic
    # is Kendall's chi2 = m(n-1)W with the players as judges. Tolerances: half a unit of the last
    # printed digit.
    res = experts.kendall_w(rounding_times(), scores=True)
    assert_allclose(res.chi2, 11.143, rtol=0, atol=5e-4)
    assert res.df == 2
    assert_allclose(res.p, 0.003805, rtol=0, atol=5e-7)
    # The data contain ties (players 7, 15, 17, 22), so the uncorrected W must differ.
    assert experts.kendall_w(rounding_times(), scores=True, tie_correction=False).W < res.W


def test_direction_of_scores_does_not_change_w(anxiety):
    data, _ = anxiety
    assert_allclose(experts.kendall_w(data, scores=True).W, experts.kendall_w(-data + 10, scores=True).W,
                    rtol=0, atol=1e-12)


def test_f_approximation_and_w_min_closed_forms(anxiety):
    # Closed forms (Legendre 2005, eq. 5; Siegel & Castellan 1988) with SciPy distributions, computed
    # here from irr's W, not from the module.
    data, ref = anxiety
    w, n, m = ref["tie_corrected"]["W"], 20, 3
    df1 = (n - 1) - 2 / m
    df2 = (m - 1) * df1
    f_expected = (m - 1) * w / (1 - w)
    w_min = stats.chi2.ppf(0.95, n - 1) / (m * (n - 1))
    res = experts.kendall_w(data, scores=True, alpha=0.05)
    assert_allclose([res.df1, res.df2], [df1, df2], rtol=1e-12)
    assert_allclose(res.F, f_expected, rtol=1e-6)
    assert_allclose(res.p_F, stats.f.sf(f_expected, df1, df2), rtol=1e-6)
    assert_allclose(res.W_min, w_min, rtol=1e-9)
    assert_allclose(res.compatibility, w / w_min, rtol=1e-6)
    w_min_01 = stats.chi2.ppf(0.99, n - 1) / (m * (n - 1))
    assert_allclose(experts.kendall_w(data, scores=True, alpha=0.01).W_min, w_min_01, rtol=1e-9)


def test_perfect_agreement_has_infinite_f_and_zero_p_f():
    ranks = pd.DataFrame({"a": [1, 2, 3, 4], "b": [1, 2, 3, 4]})
    res = experts.kendall_w(ranks)
    assert res.W == 1.0 and np.isinf(res.F) and res.p_F == 0.0


@pytest.mark.parametrize(("w", "label"), [
    # effectsize 0.8.x source: rules(c(0.2, 0.4, 0.6, 0.8), labels, right = FALSE) -- a value equal to a
    # cut point falls in the higher class (.interpret: check <- x < rules$values).
    (0.0, "slight agreement"), (0.19999, "slight agreement"), (0.2, "fair agreement"),
    (0.39999, "fair agreement"), (0.4, "moderate agreement"), (0.6, "substantial agreement"),
    (0.79999, "substantial agreement"), (0.8, "almost perfect agreement"), (1.0, "almost perfect agreement"),
])
def test_agreement_labels_follow_effectsize(w, label):
    assert experts.interpret_kendalls_w(w) == label


def test_agreement_label_of_nan_is_undefined():
    assert experts.interpret_kendalls_w(float("nan")) == "undefined"


# --- permutation test ------------------------------------------------------------------------------

def _exact_permutation_p(values: np.ndarray) -> float:
    """Exact P(S* >= S) by convolving each judge's equally likely orderings (independent of the module)."""
    ranks = stats.rankdata(values, axis=0)
    doubled = np.rint(2 * ranks).astype(int)
    n, m = doubled.shape
    centre = m * (n + 1)
    dist: dict[tuple, float] = {tuple([0] * n): 1.0}
    for j in range(m):
        orders = set(itertools.permutations(doubled[:, j]))
        new: dict[tuple, float] = defaultdict(float)
        for sums, prob in dist.items():
            for order in orders:
                new[tuple(a + b for a, b in zip(sums, order, strict=True))] += prob / len(orders)
        dist = new

    def s(v):
        return sum((x - centre) ** 2 for x in v)

    s_obs = s(doubled.sum(axis=1))
    return sum(prob for sums, prob in dist.items() if s(sums) >= s_obs)


def test_permutation_p_matches_exact_distribution():
    # RoundingTimes (n = 3 objects, m = 22 judges, with ties): the exact permutation p-value is computed
    # above by full convolution of the 22 judges' orderings (0.00315). With n_perm = 100000 the Monte
    # Carlo SE is sqrt(p(1-p)/n_perm) ~ 0.00018; tolerance 4 SE.
    exact = _exact_permutation_p(ROUNDING_TIMES.T)
    res = experts.kendall_w_permutation(rounding_times(), n_perm=100_000, seed=20261204, scores=True)
    se = np.sqrt(exact * (1 - exact) / 100_000)
    assert abs(res.p_perm - exact) < 4 * se


def test_permutation_p_small_panel_exact():
    # 5 objects x 3 judges, no ties: exact p by convolution; n_perm = 50000, tolerance 4 SE.
    values = np.array([[1, 2, 1], [2, 1, 3], [3, 4, 2], [4, 3, 5], [5, 5, 4]], dtype=float)
    exact = _exact_permutation_p(values)
    res = experts.kendall_w_permutation(values, n_perm=50_000, seed=1)
    assert abs(res.p_perm - exact) < 4 * np.sqrt(exact * (1 - exact) / 50_000)


def test_permutation_p_versus_chi_square_on_anxiety(anxiety):
    # The brief expected the permutation p to approach the chi-square p for a large n_perm. With only
    # m = 3 judges it does not: the chi-square approximation is conservative for few judges (Legendre
    # 2005, simulation study), and the F approximation is the accurate one. Asserted instead:
    # (1) p_perm < p_chi2 by far more than Monte-Carlo error (n_perm = 200000: SE ~ 0.00027, the gap is
    #     ~ 0.028, > 100 SE);
    # (2) |p_perm - p_F| < 0.003 = 4 SE (0.0011) plus 0.002 for the F approximation's own error (a
    #     two-moment approximation, not exact).
    data, ref = anxiety
    res = experts.kendall_w_permutation(data, n_perm=200_000, seed=20261204, scores=True)
    p_chi2 = ref["tie_corrected"]["p"]
    w, n, m = ref["tie_corrected"]["W"], 20, 3
    p_f = stats.f.sf((m - 1) * w / (1 - w), n - 1 - 2 / m, (m - 1) * (n - 1 - 2 / m))
    assert p_chi2 - res.p_perm > 0.02
    assert abs(res.p_perm - p_f) < 0.003


def test_permutation_p_formula_and_reproducibility(anxiety):
    data, _ = anxiety
    a = experts.kendall_w_permutation(data, n_perm=999, seed=7, scores=True)
    b = experts.kendall_w_permutation(data, n_perm=999, seed=7, scores=True)
    assert a == b
    assert a.p_perm == (1 + a.n_as_extreme) / (1 + 999)
    assert 0 < a.p_perm <= 1


def test_permutation_in_small_chunks_gives_the_same_distribution(monkeypatch, anxiety):
    # Chunking changes how the random stream is split, not the null distribution: two runs of 20000
    # permutations (whole vs chunks of 7) agree within 4 SE of their difference.
    data, _ = anxiety
    whole = experts.kendall_w_permutation(data, n_perm=20_000, seed=3, scores=True)
    monkeypatch.setattr(experts, "_CHUNK_CELLS", 60 * 7)
    chunked = experts.kendall_w_permutation(data, n_perm=20_000, seed=4, scores=True)
    p = (whole.p_perm + chunked.p_perm) / 2
    assert abs(whole.p_perm - chunked.p_perm) < 4 * np.sqrt(2 * p * (1 - p) / 20_000)


# --- properties -------------------------------------------------------------------------------------

@st.composite
def rating_tables(draw):
    n = draw(st.integers(3, 9))
    m = draw(st.integers(2, 7))
    values = draw(st.lists(st.lists(st.integers(1, 5), min_size=n, max_size=n), min_size=m, max_size=m))
    arr = np.array(values, dtype=float).T
    assume((np.ptp(arr, axis=0) > 0).all())
    return pd.DataFrame(arr, index=[f"f{i}" for i in range(n)], columns=[f"e{j}" for j in range(m)])


@settings(max_examples=60, deadline=None)
@given(rating_tables(), st.booleans())
def test_w_bounds_and_chi2_identity(table, corrected):
    res = experts.kendall_w(table, scores=True, tie_correction=corrected)
    assert 0.0 <= res.W <= 1.0
    assert_allclose(res.chi2, res.n_experts * (res.n_objects - 1) * res.W, rtol=1e-12)


@settings(max_examples=60, deadline=None)
@given(rating_tables(), st.randoms(use_true_random=False))
def test_w_invariant_to_relabelling_factors_and_experts(table, rnd):
    rows = list(table.index)
    cols = list(table.columns)
    rnd.shuffle(rows)
    rnd.shuffle(cols)
    base = experts.kendall_w(table, scores=True)
    shuffled = experts.kendall_w(table.loc[rows, cols], scores=True)
    assert_allclose(shuffled.W, base.W, rtol=1e-12, atol=1e-15)


@settings(max_examples=40, deadline=None)
@given(st.integers(3, 12), st.integers(2, 8), st.randoms(use_true_random=False), st.booleans())
def test_identical_rankings_give_w_one(n, m, rnd, with_ties):
    order = list(range(1, n + 1))
    rnd.shuffle(order)
    column = np.array(order, dtype=float)
    if with_ties:  # the same tie structure for everybody still means perfect agreement
        column = np.minimum(column, n - 1)
    table = pd.DataFrame(np.repeat(column[:, None], m, axis=1))
    assert_allclose(experts.kendall_w(table, scores=True).W, 1.0, rtol=0, atol=1e-12)


# --- bad input ----------------------------------------------------------------------------------

def _one_line(excinfo) -> str:
    message = str(excinfo.value)
    assert "\n" not in message
    return message


def test_fewer_than_two_experts():
    with pytest.raises(AnalysisError, match="at least 3 factors .* and 2 experts") as e:
        experts.kendall_w(pd.DataFrame({"e1": [1, 2, 3]}))
    assert "got 3 factor(s) x 1 expert(s)" in _one_line(e)


def test_fewer_than_three_factors():
    with pytest.raises(AnalysisError, match="got 2 factor") as e:
        experts.kendall_w(pd.DataFrame({"e1": [1, 2], "e2": [2, 1]}))
    _one_line(e)


def test_all_tied_expert_is_named():
    table = pd.DataFrame({"E1": [1, 2, 3], "E2": [2, 2, 2]}, index=["a", "b", "c"])
    with pytest.raises(AnalysisError, match="expert 'E2' gives every factor the same value") as e:
        experts.kendall_w(table)
    _one_line(e)


def test_rank_outside_range_is_named():
    table = pd.DataFrame({"E1": [1, 2, 3], "E2": [1, 2, 4]}, index=["a", "b", "c"])
    with pytest.raises(AnalysisError, match=r"expert 'E2', factor 'c': rank 4 is outside 1..3") as e:
        experts.kendall_w(table)
    _one_line(e)
    # the same values are fine as scores
    assert experts.kendall_w(table, scores=True).W > 0.9


def test_non_numeric_value_is_named():
    table = pd.DataFrame({"E1": [1, 2, 3], "E2": ["1", "two", "3"]}, index=["a", "b", "c"])
    with pytest.raises(AnalysisError, match=r"expert 'E2', factor 'b': value 'two' is not a number") as e:
        experts.kendall_w(table)
    _one_line(e)


def test_boolean_values_are_refused():
    table = pd.DataFrame({"E1": [1, 2, 3], "E2": [True, False, True]}, index=["a", "b", "c"])
    with pytest.raises(AnalysisError, match="true/false"):
        experts.kendall_w(table)


def test_missing_rating_raises_by_default_and_names_expert_and_factor():
    table = pd.DataFrame({"E1": [1, 2, 3], "E2": [1, np.nan, 3], "E3": [1, 3, 2]}, index=["a", "b", "c"])
    with pytest.raises(AnalysisError, match=r"expert 'E2' has no rating for factor 'b'.*drop_experts") as e:
        experts.kendall_w(table)
    _one_line(e)
    with pytest.warns(UserWarning, match="E2"):
        res = experts.kendall_w(table, missing="drop_experts")
    assert res.n_experts == 2
    assert res.W == experts.kendall_w(table[["E1", "E3"]]).W


def test_dropping_experts_can_leave_too_few():
    table = pd.DataFrame({"E1": [1, 2, 3], "E2": [1, np.nan, 3]})
    with pytest.warns(UserWarning), pytest.raises(AnalysisError, match="1 expert"):
        experts.kendall_w(table, missing="drop_experts")


def test_unknown_missing_policy():
    with pytest.raises(AnalysisError, match="missing='zero'"):
        experts.kendall_w(pd.DataFrame({"a": [1, 2, 3], "b": [1, 2, 3]}), missing="zero")


def test_duplicate_expert_column():
    table = pd.DataFrame([[1, 2], [2, 1], [3, 3]], columns=["E1", "E1"])
    with pytest.raises(AnalysisError, match="expert 'E1' appears in more than one column"):
        experts.kendall_w(table)


# --- weights ------------------------------------------------------------------------------------

def test_single_ranking_gives_published_rank_sum_and_roc_weights():
    # n = 4, one ranking 1..4. Rank sum (Stillwell et al. 1981; Roszkowska 2013, table): 0.4, 0.3, 0.2,
    # 0.1. ROC (Barron & Barrett 1996, n = 4): 0.5208, 0.2708, 0.1458, 0.0625 (4 decimals as published).
    table = pd.DataFrame({"E1": [1, 2, 3, 4], "E2": [1, 2, 3, 4]}, index=list("abcd"))
    rs = experts.factor_weights(table, method="rank_sum", n_boot=0)
    roc = experts.factor_weights(table, method="rank_order_centroid", n_boot=0)
    assert_allclose(rs["weight"], [0.4, 0.3, 0.2, 0.1], rtol=0, atol=1e-12)
    assert_allclose(roc["weight"], [0.5208, 0.2708, 0.1458, 0.0625], rtol=0, atol=5e-5)
    assert rs["rank"].tolist() == [1, 2, 3, 4]
    assert rs["ci_low"].isna().all() and rs["ci_high"].isna().all()


def test_rank_sum_weights_closed_form(anxiety):
    # w_i = 2(m(n+1) - R_i) / (m n (n+1)) with R_i the rank sums (equal competence), scores ranked
    # high = 1 here by hand with SciPy.
    data, _ = anxiety
    ranks = stats.rankdata(-data.to_numpy(), axis=0)
    n, m = ranks.shape
    expected = 2 * (m * (n + 1) - ranks.sum(axis=1)) / (m * n * (n + 1))
    got = experts.factor_weights(data, scores=True, n_boot=0)
    assert_allclose(got["weight"], expected, rtol=1e-12)
    assert_allclose(got["mean_rank"], ranks.mean(axis=1), rtol=1e-12)


def test_mean_score_weights_for_scores_and_for_ranks(anxiety):
    data, _ = anxiety
    got = experts.factor_weights(data, method="mean_score", scores=True, n_boot=0)
    means = data.to_numpy().mean(axis=1)
    assert_allclose(got["weight"], means / means.sum(), rtol=1e-12)
    ranks = pd.DataFrame({"E1": [1, 2, 3, 4], "E2": [2, 1, 3, 4], "E3": [1, 3, 2, 4]})
    assert_allclose(experts.factor_weights(ranks, method="mean_score", n_boot=0)["weight"],
                    experts.factor_weights(ranks, method="rank_sum", n_boot=0)["weight"], rtol=1e-12)


def test_roc_ties_share_the_mean_weight():
    table = pd.DataFrame({"E1": [1, 2, 3, 4], "E2": [2, 1, 3, 4]}, index=list("abcd"))
    w = experts.factor_weights(table, method="rank_order_centroid", n_boot=0)["weight"].to_numpy()
    roc = np.array([sum(1 / k for k in range(r, 5)) / 4 for r in range(1, 5)])
    assert_allclose(w, [(roc[0] + roc[1]) / 2, (roc[0] + roc[1]) / 2, roc[2], roc[3]], rtol=1e-12)
    assert_allclose(w.sum(), 1.0, rtol=1e-12)


def test_competence_weighting_equals_replicating_experts():
    # Integer competence ratios: weighting expert j by c_j is the same as counting j c_j times.
    table = pd.DataFrame({"E1": [1, 2, 3, 4, 5], "E2": [3, 1, 2, 5, 4], "E3": [5, 4, 3, 2, 1]})
    competence = pd.Series({"E1": 0.9, "E2": 0.6, "E3": 0.3})
    replicated = pd.concat([table["E1"]] * 3 + [table["E2"]] * 2 + [table["E3"]], axis=1)
    replicated.columns = [f"r{j}" for j in range(6)]
    for method in experts.WEIGHT_METHODS:
        weighted = experts.factor_weights(table, method=method, competence=competence, n_boot=0)
        plain = experts.factor_weights(replicated, method=method, n_boot=0)
        assert_allclose(weighted["weight"], plain["weight"], rtol=1e-12)
        assert_allclose(weighted["mean_rank"], plain["mean_rank"], rtol=1e-12)


def test_bootstrap_ci_matches_a_plain_loop(anxiety):
    data, _ = anxiety
    got = experts.factor_weights(data, scores=True, n_boot=300, seed=11, ci=0.9)
    ranks = stats.rankdata(-data.to_numpy(), axis=0)
    n, m = ranks.shape
    idx = np.random.default_rng(11).integers(0, m, size=(300, m))
    boot = np.array([(n + 1 - ranks[:, i].mean(axis=1)) / (n + 1 - ranks[:, i].mean(axis=1)).sum()
                     for i in idx])
    assert_allclose(got["ci_low"], np.quantile(boot, 0.05, axis=0), rtol=1e-12)
    assert_allclose(got["ci_high"], np.quantile(boot, 0.95, axis=0), rtol=1e-12)
    assert (got["ci_low"] <= got["ci_high"]).all()


def test_weights_bad_input():
    table = pd.DataFrame({"E1": [1, 2, 3], "E2": [2, 1, 3]})
    with pytest.raises(AnalysisError, match="method='ahp'"):
        experts.factor_weights(table, method="ahp")
    with pytest.raises(AnalysisError, match="no value for expert 'E2'"):
        experts.factor_weights(table, competence={"E1": 0.5})
    with pytest.raises(AnalysisError, match=r"expert 'E1' has competence 0;"):
        experts.factor_weights(table, competence={"E1": 0.0, "E2": 0.5})
    with pytest.raises(AnalysisError, match="non-negative scores"):
        experts.factor_weights(pd.DataFrame({"E1": [-1, 2, 3], "E2": [2, 1, 3]}), method="mean_score",
                               scores=True)


def test_expert_competence():
    ka = pd.Series({"E1": 0.8, "E2": 0.5})
    kf = pd.Series({"E1": 0.6, "E2": 1.0})
    assert_allclose(experts.expert_competence(ka, kf).to_numpy(), [0.7, 0.75], rtol=1e-12)
    with pytest.raises(AnalysisError, match=r"expert 'E2': familiarity 1.2 is not a number in 0..1"):
        experts.expert_competence(ka, pd.Series({"E1": 0.6, "E2": 1.2}))
    with pytest.raises(AnalysisError, match="argumentation"):
        experts.expert_competence(pd.Series({"E1": "high", "E2": 0.4}), kf)


# --- panel diagnostics --------------------------------------------------------------------------

def test_leave_one_out_against_direct_computation_and_scipy():
    table = pd.DataFrame({"E1": [1, 2, 3, 4, 5, 6], "E2": [2, 1, 3, 4, 6, 5], "E3": [1, 3, 2, 5, 4, 6],
                          "E4": [6, 5, 4, 3, 2, 1]}, index=list("abcdef"))
    loo = experts.leave_one_out(table)
    w_all = experts.kendall_w(table).W
    for j, expert in enumerate(table.columns):
        rest = table.drop(columns=expert)
        assert_allclose(loo.loc[j, "W_without"], experts.kendall_w(rest).W, rtol=1e-12)
        assert_allclose(loo.loc[j, "W_change"], experts.kendall_w(rest).W - w_all, rtol=1e-12)
        # SciPy spearmanr (t approximation, alternative="greater"), as R cor.test(exact = FALSE)
        ref = stats.spearmanr(table[expert], rest.mean(axis=1), alternative="greater")
        assert_allclose(loo.loc[j, "rho"], ref.statistic, rtol=1e-12)
        assert_allclose(loo.loc[j, "p_rho"], ref.pvalue, rtol=1e-9)
    assert loo["dissenting"].tolist() == [False, False, False, True]


def test_dissent_rule_catches_an_expert_far_below_a_strongly_agreeing_panel():
    # Nine experts rank 18 factors as truth + N(0, 1.5); the tenth as truth + N(0, 4). The tenth
    # still correlates significantly with the others (rho ~ 0.63, p < 0.01), but far below their
    # rho ~ 0.93-0.98: below Tukey's lower fence, and W rises without them -> dissenting.
    rng = np.random.default_rng(0)
    truth = np.arange(18.0)
    table = pd.DataFrame({f"E{j + 1}": stats.rankdata(truth + rng.normal(0, 1.5, 18)) for j in range(9)})
    table["E10"] = stats.rankdata(truth + rng.normal(0, 4, 18))
    loo = experts.leave_one_out(table).set_index("expert_id")
    q1, q3 = np.quantile(loo["rho"], [0.25, 0.75])  # R quantile(type = 7)
    assert loo.loc["E10", "p_rho"] < 0.05
    assert loo.loc["E10", "rho"] < q1 - 1.5 * (q3 - q1)
    assert loo.loc["E10", "W_change"] > 0
    assert loo["dissenting"].tolist() == [False] * 9 + [True]


def test_leave_one_out_needs_three_experts():
    with pytest.raises(AnalysisError, match="at least 3 experts"):
        experts.leave_one_out(pd.DataFrame({"E1": [1, 2, 3], "E2": [2, 1, 3]}))


def test_paired_wilcoxon_matches_r():
    # R 3.4.4 values quoted in apache/commons-math WilcoxonSignedRankTestTest.java (Hollander & Wolfe
    # depression data): wilcox.test(x, y, paired = TRUE, exact = TRUE) V = 40, p = 0.03906;
    # exact = FALSE, correct = TRUE: p = 0.044010984013.
    x = np.array([1.83, 0.50, 1.62, 2.48, 1.68, 1.88, 1.55, 3.06, 1.30])
    y = np.array([0.878, 0.647, 0.598, 2.05, 1.06, 1.29, 1.06, 3.14, 1.29])
    v, p = experts._paired_wilcoxon(x - y)
    assert v == 40 and abs(p - 0.03906) < 5e-6
    assert_allclose(experts._paired_wilcoxon(x - y, exact=False)[1], 0.044010984013, rtol=0, atol=1e-11)
    # Same source: x2/y2 -> V = 16, exact p = 0.8125, asymptotic p = 0.79984610566.
    x2 = np.array([0.80, 0.83, 1.89, 1.04, 1.45, 1.38, 1.91])
    y2 = np.array([1.15, 0.88, 0.90, 0.74, 1.21, 2.0, 1.72])
    v2, p2 = experts._paired_wilcoxon(x2 - y2)
    assert v2 == 16 and abs(p2 - 0.8125) < 1e-10
    assert_allclose(experts._paired_wilcoxon(x2 - y2, exact=False)[1], 0.79984610566, rtol=0, atol=1e-10)


def test_paired_wilcoxon_with_ties_and_zeros_matches_scipy():
    # Tied |d| and zeros: R uses the normal approximation with tie-corrected variance and continuity
    # correction after dropping zeros; SciPy's wilcoxon(zero_method="wilcox", correction=True,
    # method="asymptotic") implements the same.
    d = np.array([1, 1, 2, -1, 3, 3, 0, 2, 2, -2, 1.5])
    ref = stats.wilcoxon(d, zero_method="wilcox", correction=True, method="asymptotic")
    assert_allclose(experts._paired_wilcoxon(d)[1], ref.pvalue, rtol=1e-12)
    assert experts._paired_wilcoxon(np.zeros(5)) == (0.0, 1.0)


def test_compare_rounds():
    r1 = pd.DataFrame({"E1": [1, 2, 3, 4, 5], "E2": [2, 1, 3, 5, 4], "E3": [5, 1, 2, 3, 4]},
                      index=list("abcde"))
    r2 = pd.DataFrame({"E1": [1, 2, 3, 4, 5], "E2": [1, 2, 3, 5, 4], "E3": [2, 1, 3, 4, 5],
                       "E4": [1, 2, 3, 4, 5]}, index=list("abcde"))
    cmp_ = experts.compare_rounds(r1, r2)
    assert_allclose(cmp_.round1.W, experts.kendall_w(r1).W, rtol=1e-12)
    assert_allclose(cmp_.round2.W, experts.kendall_w(r2).W, rtol=1e-12)
    assert_allclose(cmp_.W_change, cmp_.round2.W - cmp_.round1.W, rtol=1e-12)
    assert cmp_.n_common_experts == 3
    f = cmp_.factors.set_index("factor")
    assert_allclose(f.loc["a", "mean_rank_round1"], (1 + 2 + 5) / 3, rtol=1e-12)
    assert_allclose(f.loc["a", "cv_round1"], np.std([1, 2, 5], ddof=1) / (8 / 3), rtol=1e-12)
    assert f["stable"].all()
    same = experts.compare_rounds(r1, r1)
    assert same.W_change == 0 and (same.factors["p"] == 1).all()


def test_compare_rounds_needs_same_factors():
    r1 = pd.DataFrame({"E1": [1, 2, 3], "E2": [2, 1, 3]}, index=list("abc"))
    r2 = pd.DataFrame({"E1": [1, 2, 3], "E2": [2, 1, 3]}, index=list("abd"))
    with pytest.raises(AnalysisError, match="different factors"):
        experts.compare_rounds(r1, r2)


def test_concordance_by_stage():
    rng = np.random.default_rng(5)
    factors = [f"S{s}_{k}" for s in (1, 2) for k in range(4)]
    table = pd.DataFrame({f"E{j}": rng.permutation(8) + 1 for j in range(6)}, index=factors)
    stages = {f: f[:2] for f in factors}
    out = experts.concordance_by_stage(table, stages, n_perm=199, seed=3)
    assert out["scope"].tolist() == ["overall", "S1", "S2"]
    assert list(out.columns[:12]) == ["scope", "W", "chi2", "df", "p", "F", "p_F", "p_perm", "W_min",
                                      "compatibility", "n_objects", "n_experts"]
    assert_allclose(out.loc[0, "W"], experts.kendall_w(table).W, rtol=1e-12)
    # within a stage, the global ranks are re-ranked among the stage's factors
    s1 = table.loc[[f for f in factors if f.startswith("S1")]]
    assert_allclose(out.loc[1, "W"], experts.kendall_w(s1, scores=True).W, rtol=1e-12)
    assert out["p_perm"].between(1 / 200, 1).all()
    again = experts.concordance_by_stage(table, stages, n_perm=199, seed=3)
    pd.testing.assert_frame_equal(out, again)
    with pytest.raises(AnalysisError, match="factor 'S2_3' has no stage"):
        experts.concordance_by_stage(table, {f: f[:2] for f in factors[:-1]})


# --- long table to results ----------------------------------------------------------------------

def _long_table(rounds: int = 2) -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(42)
    factors = [f"S{s}_F{k}" for s in (1, 2, 3) for k in range(4)]
    truth = np.arange(12, dtype=float)
    rows = []
    for r in range(1, rounds + 1):
        for j in range(7):
            noise = truth + rng.normal(0, 3 if r == 1 else 2, size=12)
            ranks = stats.rankdata(noise)
            if j == 6:
                ranks = 13 - ranks  # one expert ranks the other way round
            rows += [{"round": r, "expert_id": f"E{j + 1:02d}", "stage": f[:2], "factor": f, "value": v}
                     for f, v in zip(factors, ranks, strict=True)]
    panel = pd.DataFrame({"expert_id": [f"E{j + 1:02d}" for j in range(7)], "role": "manager",
                          "argumentation": np.linspace(0.5, 0.9, 7), "familiarity": np.linspace(0.9, 0.6, 7)})
    panel["competence"] = (panel["argumentation"] + panel["familiarity"]) / 2
    return pd.DataFrame(rows), panel


def test_ratings_matrix_and_duplicates():
    long, _ = _long_table(1)
    wide = experts.ratings_matrix(long)
    assert wide.shape == (12, 7) and wide.index[0] == "S1_F0" and wide.columns[0] == "E01"
    with pytest.raises(AnalysisError, match="rates factor 'S1_F0' more than once"):
        experts.ratings_matrix(pd.concat([long, long.iloc[:1]]))
    with pytest.raises(AnalysisError, match="no ratings for round 2"):
        experts.ratings_matrix(long, round=2)


def test_evaluate_panel_end_to_end():
    long, panel = _long_table(2)
    ev = experts.evaluate_panel(long, panel, n_perm=199, n_boot=199, seed=1, weight_method="rank_sum",
                                competence_weighted=True, top_n=3)
    assert ev.agreement["scope"].tolist() == ["overall", "S1", "S2", "S3"]
    assert set(ev.weights["method"]) == set(experts.WEIGHT_METHODS)
    assert set(ev.weights["competence_weighted"]) == {False, True}
    sums = ev.weights.groupby(["method", "competence_weighted"])["weight"].sum()
    assert_allclose(sums.to_numpy(), 1.0, rtol=1e-12)
    assert ev.competence_weighted and len(ev.chosen_weights) == 12
    first = long[long["round"] == 1].merge(panel[["expert_id", "competence"]], on="expert_id")
    weighted_mean = (first["value"] * first["competence"]).groupby(first["factor"]).sum() / panel["competence"].sum()
    assert ev.top_factors == weighted_mean.sort_values().index[:3].tolist()
    assert "E07" in ev.dissenting_experts
    assert ev.rounds is not None and ev.rounds.n_common_experts == 7
    numbers = experts.key_numbers(ev)
    assert numbers["W_overall"] == ev.overall.W
    assert set(numbers["W_by_stage"]) == {"S1", "S2", "S3"}
    assert numbers["top_factors"] == ev.top_factors and "W_round2" in numbers
    wide = experts.weights_wide(ev.weights)
    assert wide.shape == (12, 7) and "rank_sum+K" in wide.columns


def test_evaluate_panel_rejects_inconsistent_competence():
    long, panel = _long_table(1)
    panel.loc[0, "competence"] = 0.1
    with pytest.raises(AnalysisError, match="competence differs"):
        experts.evaluate_panel(long, panel, n_perm=0, n_boot=0)


def test_study_helpers(demo_cfg, tmp_path, monkeypatch):
    long, panel = _long_table(1)
    catalogue = demo_cfg.factors
    codes = catalogue["factor"].tolist()[:12]
    mapping = dict(zip(sorted(long["factor"].unique()), codes, strict=True))
    long = long.assign(factor=long["factor"].map(mapping),
                       stage=long["factor"].map(mapping).map(dict(zip(catalogue["factor"], catalogue["stage"], strict=True))))
    ev = experts.evaluate_panel(long, panel, factor_order=codes, n_perm=99, n_boot=99, seed=2)
    shown = experts.for_display(ev.agreement, demo_cfg, lang="lt")
    assert shown.loc[0, "scope"] == "Visi veiksniai"
    assert shown.loc[0, "agreement"] in {"labai silpnas sutarimas", "silpnas sutarimas", "vidutinis sutarimas",
                                         "stiprus sutarimas", "beveik visiškas sutarimas"}
    loo = experts.for_display(ev.leave_one_out, demo_cfg, lang="en")
    assert set(loo["dissenting"]) <= {"yes", "no"}
    text = experts.reading(ev, demo_cfg, lang="lt")
    assert text["p"].startswith(("= ", "< ")) and "," in text["W"]

    from research import paths

    monkeypatch.setattr(paths, "DATA_PROCESSED", tmp_path)
    written = experts.write_tables(demo_cfg, None)
    assert pd.read_parquet(written[0]).empty and list(pd.read_parquet(written[1]).columns) == \
        experts.AGREEMENT_COLUMNS
    assert experts.key_numbers(None) == {}


def test_locale_has_both_languages_for_every_key():
    from research import i18n

    path = REFERENCE.parents[1] / "src" / "research" / "locales" / "experts.yaml"
    catalogue = yaml.safe_load(path.read_text(encoding="utf-8"))
    for key, entry in catalogue.items():
        assert isinstance(key, str) and set(entry) == {"en", "lt"} and all(entry.values()), key
    for label in experts.AGREEMENT_LABELS:
        assert i18n.label("experts", label, "lt") != label


def test_figures():
    from matplotlib.figure import Figure

    from research.plots import experts as plots

    long, panel = _long_table(1)
    ev = experts.evaluate_panel(long, panel, n_perm=0, n_boot=99, seed=1)
    fig = plots.rank_heatmap(ev.ranks, lang="lt")
    assert isinstance(fig, Figure)
    fig2 = plots.weights_by_stage(ev.chosen_weights, factor_labels={"S1_F0": "Price $ transparency"},
                                  stage_labels={"S1": "Stage one"}, lang="en")
    assert isinstance(fig2, Figure)
    import matplotlib.pyplot as plt

    plt.close("all")


def test_reference_json_is_the_one_in_the_repository():
    data = json.loads((REFERENCE / "kendall_w_reference.json").read_text())
    assert data["anxiety"]["tie_corrected"]["df"] == 19


# --- notebook ---------------------------------------------------------------------------------------

@pytest.mark.slow
def test_notebook_runs_on_demo_study(tmp_path, monkeypatch):
    from notebook_runner import execute_notebook
    from research import paths
    from research.config import load_study

    if not (paths.DATA_RAW / "demo").is_dir():
        pytest.skip("demo raw data not generated yet (research synth)")
    from research.data import prepare_study

    # Outputs go to a temporary root, in this process and in the notebook's kernel.
    out = tmp_path / "output"
    monkeypatch.setenv("RESEARCH_OUTPUT_ROOT", str(out))
    monkeypatch.setattr(paths, "OUTPUT_ROOT", out.resolve())
    monkeypatch.setattr(paths, "DATA_PROCESSED", out.resolve() / "data" / "processed")
    monkeypatch.setattr(paths, "REPORTS", out.resolve() / "reports")
    cfg = load_study(DEMO_STUDY)
    prepare_study(cfg)
    executed = execute_notebook("01_expert_evaluation", tmp_path, study="studies/demo/study.yaml")
    assert executed.is_file()
    results = json.loads(cfg.paths.results_json("experts").read_text())
    r = results["results"]
    assert results["notebook"] == "experts" and results["synthetic"] is True
    for key in ("W_overall", "p_overall", "p_perm_overall", "W_by_stage", "dissenting_experts", "top_factors"):
        assert key in r
    assert 0 <= r["W_overall"] <= 1
    weights = pd.read_parquet(cfg.paths.processed_table("expert_weights"))
    assert set(weights["method"]) == set(experts.WEIGHT_METHODS)
    assert set(weights["competence_weighted"]) == {False, True}
    agreement = pd.read_parquet(cfg.paths.processed_table("expert_agreement"))
    assert agreement["scope"].iloc[0] == "overall"
    assert agreement["scope"].tolist()[1:] == [s.code for s in cfg.stages]
    # the demo data plant one dissenting expert (truth.json); the analysis finds them and only them
    truth = json.loads((paths.DATA_RAW / "demo" / "truth.json").read_text())["experts"]
    assert r["dissenting_experts"] == [truth["dissenting_expert"]]


def test_evaluate_study_without_panel_returns_none(demo_cfg):
    cfg = demo_cfg.model_copy(update={"data": demo_cfg.data.model_copy(update={"experts": None})})
    assert experts.evaluate_study(cfg) is None


@pytest.mark.slow
def test_notebook_skips_without_expert_panel(tmp_path, monkeypatch):
    from notebook_runner import execute_notebook
    from research import paths
    from research.config import load_study

    out = (tmp_path / "output").resolve()
    monkeypatch.setenv("RESEARCH_OUTPUT_ROOT", str(out))
    monkeypatch.setattr(paths, "OUTPUT_ROOT", out)
    monkeypatch.setattr(paths, "DATA_PROCESSED", out / "data" / "processed")
    monkeypatch.setattr(paths, "REPORTS", out / "reports")
    study_dir = out / "studies" / "no-panel"
    study_dir.mkdir(parents=True)
    raw = yaml.safe_load(DEMO_STUDY.read_text(encoding="utf-8"))
    raw["study"]["id"] = "no-panel"
    del raw["data"]["experts"], raw["data"]["expert_panel"]
    (study_dir / "study.yaml").write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    (study_dir / "codebook.csv").write_bytes((DEMO_STUDY.parent / "codebook.csv").read_bytes())
    cfg = load_study(study_dir / "study.yaml")
    assert cfg.data.experts is None
    execute_notebook("01_expert_evaluation", tmp_path, study=str(study_dir / "study.yaml"))
    results = json.loads(cfg.paths.results_json("experts").read_text())
    assert results["results"] == {} and results["study"] == "no-panel"
    assert pd.read_parquet(cfg.paths.processed_table("expert_weights")).empty
    executed = (tmp_path / "01_expert_evaluation.ipynb").read_text(encoding="utf-8")
    assert "This part is skipped" in executed
