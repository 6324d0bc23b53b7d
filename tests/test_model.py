"""The supervision model (research.model): formulas on hand-made inputs, Kendall's tau, export, demo study.

Every formula of the model is a closed form (weights, gap, priority index, quadrant, rescaled weighted
means): the expected values below are computed by hand from the small inputs written in each test and
are checked to 1e-12 / 1e-6. Kendall's tau-b is checked against the scipy documentation example and the
equivalent R call. The percentile bootstrap is checked on inputs whose bootstrap distribution is known
exactly (constant scores; two respondents).
"""

from __future__ import annotations

import dataclasses
import json
import math

import numpy as np
import openpyxl
import pandas as pd
import pytest
from numpy.testing import assert_allclose

from research import model as M
from research import paths
from research.errors import AnalysisError, DataError

# --------------------------------------------------------------------------------------------------
# A tiny hand-made study: stages X (f1, f2) and Y (f3, f4); groups A, B and all; scales 1..5.
# --------------------------------------------------------------------------------------------------
CATALOGUE = pd.DataFrame({"stage": ["X", "X", "Y", "Y"], "factor": ["f1", "f2", "f3", "f4"]})
RAW_WEIGHTS = [4.0, 3.0, 2.0, 1.0]  # -> w = 0.4, 0.3, 0.2, 0.1; within X 4/7, 3/7; within Y 2/3, 1/3

IPA = pd.DataFrame({
    "stage": ["X", "X", "Y", "Y"] * 3,
    "factor": ["f1", "f2", "f3", "f4"] * 3,
    "group": ["A"] * 4 + ["B"] * 4 + ["all"] * 4,
    "n": [10] * 4 + [12] * 4 + [22] * 4,
    "importance": [4.0, 4.0, 4.0, 2.0, 4.8, 4.3, 2.5, 3.3, 4.6, 4.2, 3.0, 3.4],
    "performance": [4.5, 3.0, 3.0, 3.0, 2.8, 4.6, 2.5, 4.2, 3.0, 4.4, 2.6, 4.0],
})


def _expert_weights(variants: dict[tuple[str, bool], list[float]]) -> pd.DataFrame:
    rows = []
    for (method, comp), w in variants.items():
        for (stage, factor), wi in zip(CATALOGUE.itertuples(index=False), w, strict=True):
            rows.append({"stage": stage, "factor": factor, "method": method, "competence_weighted": comp,
                         "weight": wi, "ci_low": wi / 2, "ci_high": wi * 2, "mean_rank": 1.0})
    return pd.DataFrame(rows)


@pytest.fixture
def weights() -> pd.DataFrame:
    ew = _expert_weights({("rank_sum", False): RAW_WEIGHTS})
    return M.model_weights(expert_weights=ew, factors=CATALOGUE, method="rank_sum", competence_weighted=False)


@pytest.fixture
def factor_table(weights) -> pd.DataFrame:
    return M.factor_priorities(weights=weights, ipa=IPA, groups=["A", "B", "all"], crosshair="mean",
                               importance_scale=(1, 5), performance_scale=(1, 5))


def _rows(table: pd.DataFrame, group: str) -> pd.DataFrame:
    return table[table["group"] == group].set_index("factor").loc[["f1", "f2", "f3", "f4"]]


# --------------------------------------------------------------------------------------------------
# Weights
# --------------------------------------------------------------------------------------------------
def test_model_weights_renormalise_overall_and_within_stage(weights):
    # closed form: w = (4, 3, 2, 1) / 10; within X: 4/7, 3/7; within Y: 2/3, 1/3; CI scaled by the same 1/10
    assert_allclose(weights["weight"], [0.4, 0.3, 0.2, 0.1], rtol=0, atol=1e-12)
    assert_allclose(weights["weight_stage"], [4 / 7, 3 / 7, 2 / 3, 1 / 3], rtol=0, atol=1e-12)
    assert_allclose(weights["ci_low"], [0.2, 0.15, 0.1, 0.05], rtol=0, atol=1e-12)
    assert weights["factor"].tolist() == ["f1", "f2", "f3", "f4"]


def test_model_weights_pick_the_requested_variant():
    ew = _expert_weights({("rank_sum", False): RAW_WEIGHTS, ("rank_sum", True): [1.0, 1.0, 1.0, 1.0]})
    w = M.model_weights(expert_weights=ew, factors=CATALOGUE, method="rank_sum", competence_weighted=True)
    assert_allclose(w["weight"], [0.25] * 4, rtol=0, atol=1e-12)


def test_equal_weights():
    w = M.equal_weights(factors=CATALOGUE)
    assert_allclose(w["weight"], [0.25] * 4, rtol=0, atol=1e-12)
    assert_allclose(w["weight_stage"], [0.5] * 4, rtol=0, atol=1e-12)


def test_model_weights_errors_are_one_line():
    ew = _expert_weights({("rank_sum", False): RAW_WEIGHTS})
    with pytest.raises(AnalysisError, match=r"no weights for method 'mean_score'") as e:
        M.model_weights(expert_weights=ew, factors=CATALOGUE, method="mean_score", competence_weighted=False)
    assert "\n" not in str(e.value)
    with pytest.raises(AnalysisError, match=r"factor\(s\) f4"):
        M.model_weights(expert_weights=ew[ew["factor"] != "f4"], factors=CATALOGUE, method="rank_sum",
                        competence_weighted=False)
    bad = ew.copy()
    bad.loc[0, "weight"] = -1.0
    with pytest.raises(AnalysisError, match="non-negative"):
        M.model_weights(expert_weights=bad, factors=CATALOGUE, method="rank_sum", competence_weighted=False)
    with pytest.raises(AnalysisError, match="missing column"):
        M.model_weights(expert_weights=ew.drop(columns="method"), factors=CATALOGUE, method="rank_sum",
                        competence_weighted=False)


# --------------------------------------------------------------------------------------------------
# Gap, priority index, quadrant
# --------------------------------------------------------------------------------------------------
def test_priority_index_closed_form():
    # PI = w * max(d, 0): 0.5 * 0.4, 0.3 * 0, 0.2 * 1.0; missing stays missing
    got = M.priority_index(weight=[0.5, 0.3, 0.2, 0.1], deficit=[0.4, -0.2, 1.0, np.nan])
    assert_allclose(got, [0.2, 0.0, 0.2, np.nan], rtol=0, atol=1e-12)


def test_factor_priorities_hand_computed(factor_table):
    overall = _rows(factor_table, "all")
    # gap = I - P: 4.6-3.0, 4.2-4.4, 3.0-2.6, 3.4-4.0
    assert_allclose(overall["gap"], [1.6, -0.2, 0.4, -0.6], rtol=0, atol=1e-12)
    # PI_raw = w * max(gap, 0) = 0.4*1.6, 0, 0.2*0.4, 0 ; normalised by 0.64
    assert_allclose(overall["priority_raw"], [0.64, 0.0, 0.08, 0.0], rtol=0, atol=1e-12)
    assert_allclose(overall["priority"], [1.0, 0.0, 0.125, 0.0], rtol=0, atol=1e-12)
    # ties at 0 broken by the larger deficit: f2 (-0.2) before f4 (-0.6)
    assert overall["rank"].tolist() == [1, 3, 2, 4]
    # crosshairs at the grand means: I = 15.2/4 = 3.8, P = 14.0/4 = 3.5
    assert_allclose(overall["importance_crosshair"], [3.8] * 4, rtol=0, atol=1e-12)
    assert_allclose(overall["performance_crosshair"], [3.5] * 4, rtol=0, atol=1e-12)
    assert overall["quadrant"].tolist() == ["concentrate_here", "keep_up_good_work", "low_priority",
                                            "possible_overkill"]
    group_a = _rows(factor_table, "A")
    # A: gaps -0.5, 1.0, 1.0, -1.0 -> PI_raw 0, 0.3, 0.2, 0 -> normalised by 0.3
    assert_allclose(group_a["priority_raw"], [0.0, 0.3, 0.2, 0.0], rtol=0, atol=1e-12)
    assert_allclose(group_a["priority"], [0.0, 1.0, 2 / 3, 0.0], rtol=0, atol=1e-12)
    assert (factor_table["priority_basis"] == "gap").all()
    assert factor_table["group"].tolist() == ["A"] * 4 + ["B"] * 4 + ["all"] * 4


def test_quadrants_at_the_scale_midpoint(weights):
    table = M.factor_priorities(weights=weights, ipa=IPA, groups=["A", "B", "all"], crosshair="midpoint",
                                importance_scale=(1, 5), performance_scale=(1, 5))
    overall = _rows(table, "all")
    # midpoint (1 + 5) / 2 = 3; a value on the crosshair counts as high (f1 P = 3.0, f3 I = 3.0)
    assert_allclose(overall["importance_crosshair"], [3.0] * 4, rtol=0, atol=1e-12)
    assert overall["quadrant"].tolist() == ["keep_up_good_work", "keep_up_good_work", "concentrate_here",
                                            "keep_up_good_work"]


def test_performance_only_uses_the_shortfall(weights):
    ipa = IPA.assign(importance=np.nan, gap=np.nan)
    table = M.factor_priorities(weights=weights, ipa=ipa, groups=["A", "B", "all"], crosshair="mean",
                                importance_scale=(1, 5), performance_scale=(1, 5))
    overall = _rows(table, "all")
    # shortfall = 5 - P = 2.0, 0.6, 2.4, 1.0; PI_raw = 0.8, 0.18, 0.48, 0.1; normalised by 0.8
    assert_allclose(overall["deficit"], [2.0, 0.6, 2.4, 1.0], rtol=0, atol=1e-12)
    assert_allclose(overall["priority"], [1.0, 0.225, 0.6, 0.125], rtol=0, atol=1e-12)
    assert (table["priority_basis"] == "shortfall").all()
    assert table["quadrant"].isna().all()


def test_factor_priorities_reject_bad_input(weights):
    with pytest.raises(AnalysisError, match=r"no rows for group\(s\) C"):
        M.factor_priorities(weights=weights, ipa=IPA, groups=["A", "C", "all"], crosshair="mean",
                            importance_scale=(1, 5), performance_scale=(1, 5))
    with pytest.raises(AnalysisError, match="crosshair must be"):
        M.factor_priorities(weights=weights, ipa=IPA, groups=["A", "B", "all"], crosshair="median",
                            importance_scale=(1, 5), performance_scale=(1, 5))
    with pytest.raises(AnalysisError, match="performance of factor f2 is missing in group A"):
        M.factor_priorities(weights=weights, ipa=IPA.assign(performance=[4.5, np.nan] + [3.0] * 10),
                            groups=["A", "B", "all"], crosshair="mean", importance_scale=(1, 5),
                            performance_scale=(1, 5))


def test_improvement_areas_hand_computed(factor_table):
    areas = M.improvement_areas(factors=factor_table, levels=["A", "B"])
    # f4 has no positive gap anywhere -> excluded; f2 has a positive gap only in A (1.0) -> included last
    assert areas["factor"].tolist() == ["f1", "f3", "f2"]
    assert areas["rank"].tolist() == [1, 2, 3]
    # the group most affected = the level with the largest positive gap: f1 B (2.0 vs -0.5), f3 A (1.0 vs 0.0)
    assert areas["group"].tolist() == ["B", "A", "A"]
    assert_allclose(areas["group_gap"], [2.0, 1.0, 1.0], rtol=0, atol=1e-12)
    # B: PI_raw f1 = 0.4 * 2.0 = 0.8 (the only positive one -> 1.0); A: f3 0.2 / 0.3, f2 0.3 / 0.3
    assert_allclose(areas["group_priority_raw"], [0.8, 0.2, 0.3], rtol=0, atol=1e-12)
    assert_allclose(areas["group_priority"], [1.0, 2 / 3, 1.0], rtol=0, atol=1e-12)
    # B crosshairs: I = 14.9/4 = 3.725, P = 14.1/4 = 3.525 -> f1 (4.8, 2.8) concentrate here
    assert areas["group_quadrant"].tolist()[0] == "concentrate_here"
    assert_allclose(areas["priority_raw"], [0.64, 0.08, 0.0], rtol=0, atol=1e-12)
    assert areas["group_n"].tolist() == [12, 10, 10]
    assert areas["group_difference_p_adj"].isna().all()
    comparison = pd.DataFrame({"variable": ["I1", "P1", "P3"], "type": ["importance", "performance", "performance"],
                               "factor": ["f1", "f1", "f3"], "p_adj": [0.9, 0.01, 0.5]})
    with_p = M.improvement_areas(factors=factor_table, levels=["A", "B"], item_comparison=comparison)
    assert_allclose(with_p["group_difference_p_adj"], [0.01, 0.5, np.nan], rtol=0, atol=1e-12)


# --------------------------------------------------------------------------------------------------
# Stage quality index
# --------------------------------------------------------------------------------------------------
def _codebook(scale_max_f4: int = 5) -> pd.DataFrame:
    return pd.DataFrame({
        "variable": ["P1", "P2", "P3", "P4"], "type": ["performance"] * 4, "stage": ["X", "X", "Y", "Y"],
        "factor": ["f1", "f2", "f3", "f4"], "scale_min": pd.array([1, 1, 1, 1], dtype="Int64"),
        "scale_max": pd.array([5, 5, 5, scale_max_f4], dtype="Int64")})


SURVEY = pd.DataFrame({
    "grp": pd.array(["A", "A", "B", "B"], dtype="string"),
    "P1": pd.array([5, 4, 2, 1], dtype="Float64"),
    "P2": pd.array([3, None, 2, 5], dtype="Float64"),
    "P3": pd.array([1, 3, None, 5], dtype="Float64"),
    "P4": pd.array([5, 3, None, 1], dtype="Float64"),
})


def test_stage_quality_index_hand_computed(weights):
    out = M.stage_quality_index(survey=SURVEY, codebook=_codebook(), weights=weights, group_column="grp",
                                levels=["A", "B"], n_boot=0, seed=1)
    got = out.set_index(["stage", "group"])["index"]
    # rescaled y = (x - 1) / 4 * 100; respondents: r1 (100, 50, 0, 100), r2 (75, -, 50, 50),
    # r3 (25, 25, -, -), r4 (0, 100, 100, 0).
    # X (weights 4/7, 3/7): r1 550/7, r2 75 (only f1 answered: 1 of 2 >= 50 %), r3 25, r4 300/7
    # Y (weights 2/3, 1/3): r1 100/3, r2 50, r3 none, r4 200/3
    # all (0.4, 0.3, 0.2, 0.1): r1 65, r2 45/0.7 = 450/7, r3 17.5/0.7 = 25, r4 50
    expected = {
        ("X", "A"): (550 / 7 + 75) / 2, ("X", "B"): (25 + 300 / 7) / 2, ("X", "all"): 1550 / 28,
        ("Y", "A"): (100 / 3 + 50) / 2, ("Y", "B"): 200 / 3, ("Y", "all"): 50.0,
        ("all", "A"): 905 / 14, ("all", "B"): 37.5, ("all", "all"): 1430 / 28,
    }
    for key, value in expected.items():
        assert_allclose(got[key], value, rtol=0, atol=1e-9, err_msg=str(key))
    n = out.set_index(["stage", "group"])["n"]
    assert (n[("Y", "B")], n[("Y", "all")], n[("all", "all")]) == (1, 3, 4)
    assert out["ci_low"].isna().all()  # n_boot = 0: no interval
    assert out["stage"].tolist()[:3] == ["X", "X", "X"] and out["stage"].tolist()[-1] == "all"


def test_stage_quality_index_min_answered_and_item_scales(weights):
    out = M.stage_quality_index(survey=SURVEY, codebook=_codebook(), weights=weights, group_column="grp",
                                levels=["A", "B"], n_boot=0, seed=1, min_answered=1.0)
    got = out.set_index(["stage", "group"])["index"]
    # everyone must answer every factor of the stage: X keeps r1, r3, r4; all keeps r1 and r4
    assert_allclose(got[("X", "all")], (550 / 7 + 25 + 300 / 7) / 3, rtol=0, atol=1e-9)
    assert_allclose(got[("all", "all")], (65 + 50) / 2, rtol=0, atol=1e-9)
    # an item on 1..9 is rescaled on its own scale: P4 = 5 on 1..9 -> 50, 3 -> 25, 1 -> 0
    out9 = M.stage_quality_index(survey=SURVEY, codebook=_codebook(9), weights=weights, group_column="grp",
                                 levels=["A", "B"], n_boot=0, seed=1)
    y = out9.set_index(["stage", "group"])["index"]
    # Y: r1 (2/3*0 + 1/3*50) = 50/3, r2 (2/3*50 + 1/3*25) = 125/3, r4 (2/3*100 + 0) = 200/3
    assert_allclose(y[("Y", "all")], (50 / 3 + 125 / 3 + 200 / 3) / 3, rtol=0, atol=1e-9)


def test_respondent_stage_scores_available_item_rule():
    scores = np.array([[100.0, np.nan, 50.0], [np.nan, np.nan, 20.0]])
    out = M.respondent_stage_scores(scores=scores, weights=np.array([1.0, 3.0, 1.0]),
                                    stage_of=np.array(["X", "X", "Y"]), stages=["X", "Y"], min_answered=0.5)
    # r1 X: only f1 answered (1 of 2) -> 100; r2 X: none -> NaN; all: r1 (100 + 50) / 2, r2 20 (1 of 3 < 50 %)
    assert_allclose(out, [[100.0, 50.0, 75.0], [np.nan, 20.0, np.nan]], rtol=0, atol=1e-12)
    with pytest.raises(AnalysisError, match="min_answered"):
        M.respondent_stage_scores(scores=scores, weights=np.ones(3), stage_of=np.array(["X", "X", "Y"]),
                                  stages=["X", "Y"], min_answered=0)


def test_bootstrap_constant_scores_give_a_degenerate_interval(weights):
    survey = SURVEY.assign(P1=pd.array([4] * 4, dtype="Float64"), P2=pd.array([4] * 4, dtype="Float64"))
    out = M.stage_quality_index(survey=survey, codebook=_codebook(), weights=weights, group_column="grp",
                                levels=["A", "B"], n_boot=500, seed=3)
    x = out[out["stage"] == "X"]
    assert_allclose(x["index"], [75.0] * 3, rtol=0, atol=1e-12)
    assert_allclose(x["ci_low"], [75.0] * 3, rtol=0, atol=1e-9)
    assert_allclose(x["ci_high"], [75.0] * 3, rtol=0, atol=1e-9)


def test_bootstrap_two_respondents_known_distribution():
    # Two respondents scoring 0 and 100: a resampled mean is 0, 50 or 100 with probabilities 1/4, 1/2, 1/4
    # (exact), so the 2.5 % and 97.5 % quantiles are 0 and 100, and the bootstrap SD is sqrt(2500 / 2) =
    # 35.355 (population variance 2500 of {0, 100}, divided by the resample size 2). The SD is a Monte
    # Carlo estimate: checked to 5 % (its relative MC error at B = 4000 is about 1 %).
    survey = pd.DataFrame({"P1": pd.array([1, 5], dtype="Float64")})
    cb = _codebook().iloc[[0]]
    w = M.equal_weights(factors=CATALOGUE.iloc[[0]])
    out = M.stage_quality_index(survey=survey, codebook=cb, weights=w, group_column=None, levels=[],
                                n_boot=4000, seed=11)
    row = out[(out["stage"] == "X")].iloc[0]
    assert row["index"] == 50.0
    assert (row["ci_low"], row["ci_high"]) == (0.0, 100.0)
    assert_allclose(row["se_boot"], math.sqrt(1250), rtol=0.05)


def test_bootstrap_is_seeded(weights):
    kw = dict(survey=SURVEY, codebook=_codebook(), weights=weights, group_column="grp", levels=["A", "B"],
              n_boot=300)
    a = M.stage_quality_index(seed=5, **kw)
    b = M.stage_quality_index(seed=5, **kw)
    c = M.stage_quality_index(seed=6, **kw)
    pd.testing.assert_frame_equal(a, b)
    assert not np.allclose(a["se_boot"].to_numpy(float), c["se_boot"].to_numpy(float), equal_nan=True)


def test_stage_quality_index_rejects_out_of_scale_values(weights):
    bad = SURVEY.assign(P2=pd.array([3, 7, 2, 5], dtype="Float64"))
    with pytest.raises(DataError, match=r"row 2, column P2: rating outside its scale \(value 7.0; expected 1..5\)"):
        M.stage_quality_index(survey=bad, codebook=_codebook(), weights=weights, group_column="grp",
                              levels=["A", "B"], n_boot=0, seed=1)


# --------------------------------------------------------------------------------------------------
# Kendall's tau and the sensitivity analysis
# --------------------------------------------------------------------------------------------------
def test_kendall_tau_matches_scipy_doc_example_and_r():
    # scipy.stats.kendalltau documentation example (SciPy 1.17, "Examples"):
    #   x1 = [12, 2, 1, 12, 2]; x2 = [1, 4, 7, 1, 0] -> statistic -0.47140452079103173, pvalue 0.2827454599327748
    # R 4.2.2: cor(c(12, 2, 1, 12, 2), c(1, 4, 7, 1, 0), method = "kendall") = -0.4714045 (tau-b).
    # By hand: P = 2 concordant, Q = 6 discordant, T = 1 pair tied in x only, U = 0, one pair tied in both:
    #   tau_b = (2 - 6) / sqrt((2 + 6 + 1) * (2 + 6 + 0)) = -4 / sqrt(72)
    tau, p = M.kendall_tau(x=[12, 2, 1, 12, 2], y=[1, 4, 7, 1, 0])
    assert_allclose(tau, -0.47140452079103173, rtol=1e-12)
    assert_allclose(tau, -4 / math.sqrt(72), rtol=1e-12)
    assert_allclose(p, 0.2827454599327748, rtol=1e-9)
    assert all(math.isnan(v) for v in M.kendall_tau(x=[0, 0, 0], y=[1, 2, 3]))


def test_top_n_overlap():
    a, b = ["f1", "f2", "f3", "f4"], ["f2", "f1", "f4", "f3"]
    assert M.top_n_overlap(a=a, b=b, n=2) == 1.0
    assert_allclose(M.top_n_overlap(a=a, b=b, n=3), 2 / 3, rtol=0, atol=1e-12)
    with pytest.raises(AnalysisError, match="top_n"):
        M.top_n_overlap(a=a, b=b, n=0)


def test_weight_sensitivity_hand_computed(factor_table):
    ew = _expert_weights({("rank_sum", False): RAW_WEIGHTS, ("mean_score", False): [0.1, 0.2, 0.3, 0.4],
                          ("rank_order_centroid", False): [0.05, 0.05, 0.8, 0.1]})
    summary, ranks = M.weight_sensitivity(expert_weights=ew, factors=factor_table, catalogue=CATALOGUE,
                                          baseline=("rank_sum", False), top_n=1)
    s = summary.set_index("method")
    # deficits (all): 1.6, -0.2, 0.4, -0.6.
    # rank_sum PI = (0.64, 0, 0.08, 0); mean_score PI = (0.16, 0, 0.12, 0): same order, the only tie (f2, f4)
    # is tied in both -> tau_b = 1. ROC PI = (0.08, 0, 0.32, 0): P = 4, Q = 1 (f1 vs f3), tie in both
    # excluded -> tau_b = (4 - 1) / sqrt(5 * 5) = 0.6.
    assert_allclose(s.loc["rank_sum", "tau_b"], 1.0, rtol=0, atol=1e-12)
    assert_allclose(s.loc["mean_score", "tau_b"], 1.0, rtol=0, atol=1e-12)
    assert_allclose(s.loc["rank_order_centroid", "tau_b"], 0.6, rtol=0, atol=1e-12)
    assert s.loc["rank_order_centroid", "top_n_overlap"] == 0.0  # top 1: f1 vs f3
    assert s.loc["rank_order_centroid", "top_factors"] == "f3"
    assert summary["baseline"].tolist() == [True, False, False]
    roc = ranks[ranks["method"] == "rank_order_centroid"].set_index("factor")
    assert roc.loc[["f1", "f2", "f3", "f4"], "rank"].tolist() == [2, 3, 1, 4]
    summary2, _ = M.weight_sensitivity(expert_weights=ew, factors=factor_table, catalogue=CATALOGUE,
                                       baseline=("rank_sum", False), top_n=2)
    assert summary2.set_index("method").loc["rank_order_centroid", "top_n_overlap"] == 1.0


# --------------------------------------------------------------------------------------------------
# The whole model on the demo configuration with hand-made tables; export
# --------------------------------------------------------------------------------------------------
@pytest.fixture
def output_root(tmp_path, monkeypatch):
    monkeypatch.setattr(paths, "OUTPUT_ROOT", tmp_path)
    monkeypatch.setattr(paths, "DATA_PROCESSED", tmp_path / "data" / "processed")
    monkeypatch.setattr(paths, "REPORTS", tmp_path / "reports")
    return tmp_path


def _demo_inputs(cfg, *, with_experts: bool = True, with_importance: bool = True) -> M.ModelInputs:
    cb = cfg.codebook_table
    rng = np.random.default_rng(7)
    n = 60
    survey = pd.DataFrame({"respondent_id": np.arange(n),
                           "origin": pd.array(rng.choice(["foreign", "lithuanian"], n), dtype="string")})
    kinds = ["performance", "importance"] if with_importance else ["performance"]
    for v in cb.loc[cb["type"].isin(kinds), "variable"]:
        x = rng.integers(1, 6, n).astype(float)
        x[rng.random(n) < 0.1] = np.nan
        survey[v] = pd.array(x, dtype="Float64")
    levels = list(cfg.group.levels)
    ipa = M.performance_means(survey=survey, codebook=cb, group_column="origin", levels=levels)
    ew = None
    if with_experts:
        cat = cfg.factors
        variants = {(m, c): list(rng.random(len(cat))) for m in M.WEIGHT_METHODS for c in (False, True)}
        rows = [{"stage": s, "factor": f, "method": m, "competence_weighted": c, "weight": w}
                for (m, c), ws in variants.items() for s, f, w in zip(cat["stage"], cat["factor"], ws, strict=True)]
        ew = pd.DataFrame(rows)
    return M.ModelInputs(survey=survey, expert_weights=ew, ipa_items=ipa if with_importance else None)


def test_build_and_export_model(demo_cfg, output_root):
    model = M.build_model(demo_cfg, inputs=_demo_inputs(demo_cfg),
                          settings=dataclasses.replace(M._settings(demo_cfg), n_boot=200))
    assert not model.equal_weights and not model.performance_only
    assert "note_no_kpi_status" in model.notes
    assert len(model.factors) == 18 * 3 and len(model.stage_index) == 4 * 3
    assert len(model.sensitivity) == 6 and model.sensitivity["baseline"].sum() == 1
    # a label a spreadsheet would run as a formula must arrive as text
    evil = "=HYPERLINK(\"http://x\",\"y\")"
    areas = model.improvement_areas.copy()
    areas.loc[0, "label"] = evil
    model = dataclasses.replace(model, improvement_areas=areas)
    written = M.export_model(model, demo_cfg)
    xlsx = output_root / "reports" / "demo" / "supervision_model.xlsx"
    assert xlsx in written
    wb = openpyxl.load_workbook(xlsx)
    assert wb.sheetnames == list(M.WORKBOOK_SHEETS)
    readme = [[c.value for c in row] for row in wb["README"].iter_rows(min_row=2)]
    described = {r[0] for r in readme}
    assert set(M.WORKBOOK_SHEETS) <= described
    assert "SYNTHETIC" in str(readme[0][1])
    ws = wb["improvement_areas"]
    header = [c.value for c in ws[1]]
    cell = ws.cell(row=2, column=header.index("label") + 1)
    assert cell.value == "'" + evil and cell.data_type == "s"
    assert all(c.data_type != "f" for sheet in wb.worksheets for row in sheet.iter_rows() for c in row)
    assert ws.max_row - 1 == len(model.improvement_areas)
    payload = json.loads((output_root / "reports" / "demo" / "supervision_model.json").read_text())
    assert {"factors", "stage_index", "improvement_areas", "kpis", "sensitivity", "ipa", "settings"} <= set(payload)
    for name in ("model_factors", "model_stage_index", "improvement_areas"):
        assert (output_root / "data" / "processed" / "demo" / f"{name}.parquet").is_file()
    results = M.model_results(model)
    assert {"top_priorities", "stage_index", "quadrants", "sensitivity_tau"} <= set(results)
    assert len(results["top_priorities"]) == demo_cfg.analysis.model.top_n
    json.dumps(results, default=str)


def test_study_without_experts_or_importance(demo_cfg):
    inputs = _demo_inputs(demo_cfg, with_experts=False, with_importance=False)
    model = M.build_model(demo_cfg, inputs=inputs, settings=dataclasses.replace(M._settings(demo_cfg), n_boot=50))
    assert model.equal_weights and model.performance_only
    assert {"note_equal_weights", "note_performance_only", "note_ipa_from_survey"} <= set(model.notes)
    assert_allclose(model.weights["weight"], 1 / 18, rtol=0, atol=1e-12)
    assert model.sensitivity.empty and model.factors["quadrant"].isna().all()
    assert (model.factors["priority_basis"] == "shortfall").all()
    assert M.model_results(model)["quadrants"] == {}


def test_kpi_catalogue_links_factors_and_status(demo_cfg, factor_table):
    factors = pd.DataFrame({"group": "all", "factor": demo_cfg.factors["factor"],
                            "priority": np.linspace(0, 1, 18)})
    kpis = M.kpi_catalogue(cfg=demo_cfg, factors=factors)
    first = kpis.set_index("kpi").loc["inquiry_response_time"]
    # linked factors S1_RESP (position 0 -> 0) and S1_ACCESS (position 5 -> 5/17): the maximum
    assert_allclose(first["linked_priority"], 5 / 17, rtol=0, atol=1e-12)
    assert first["source_columns"] == "inquiry_at, response_at" and first["target"] == 24
    assert kpis["status"].isna().all()
    status = pd.DataFrame({"stage": ["S1"], "kpi": ["inquiry_response_time"], "status": ["warning"],
                           "mean": [30.5], "target": [24.0], "capability": [0.8]})
    with_status = M.kpi_catalogue(cfg=demo_cfg, factors=factors, kpi_status=status).set_index("kpi")
    assert with_status.loc["inquiry_response_time", "status"] == "warning"
    assert with_status.loc["inquiry_response_time", "current_mean"] == 30.5
    assert pd.isna(with_status.loc["complaint_rate", "status"])


def test_figures_render(demo_cfg):
    import matplotlib

    matplotlib.use("Agg")
    from research.plots import model as P

    model = M.build_model(demo_cfg, inputs=_demo_inputs(demo_cfg),
                          settings=dataclasses.replace(M._settings(demo_cfg), n_boot=20))
    stages = {s.code: s.label("lt") for s in demo_cfg.stages}
    groups = {**demo_cfg.group_labels("lt"), "all": "Visi"}
    figs = [P.model_diagram(weights=model.weights, kpis=model.kpis, stage_labels=stages,
                            highlight=["S1_RESP"], lang="lt"),
            P.ipa_scatter(factors=model.factors, group_labels=groups, lang="lt"),
            P.stage_index_plot(stage_index=model.stage_index, stage_labels={**stages, "all": "Visi etapai"},
                               group_labels=groups, lang="lt"),
            P.priority_heatmap(factors=model.factors, stage_labels=stages, lang="lt")]
    for fig in figs:
        fig.canvas.draw()
        assert fig.axes
    import matplotlib.pyplot as plt

    plt.close("all")


def test_locale_has_both_languages():
    from importlib import resources

    import yaml

    text = (resources.files("research") / "locales" / "model.yaml").read_text(encoding="utf-8")
    catalogue = yaml.safe_load(text)
    missing = [k for k, v in catalogue.items() if not (isinstance(v, dict) and v.get("en") and v.get("lt"))]
    assert missing == []


def test_generic_study_four_stages_three_groups_no_experts_no_importance():
    """The second example study (4 stages, 1-7 scale, 3 groups, no importance, no experts, no KPIs)."""
    from conftest import ROOT
    from research.config import load_study

    cfg = load_study(ROOT / "studies" / "example-it" / "study.yaml")
    cb = cfg.codebook_table
    rng = np.random.default_rng(3)
    n = 90
    levels = list(cfg.group.levels)
    survey = pd.DataFrame({"respondent_id": np.arange(n),
                           cfg.group.column: pd.array(rng.choice(levels, n), dtype="string")})
    for v in cb.loc[cb["type"] == "performance", "variable"]:
        survey[v] = pd.array(rng.integers(1, 8, n).astype(float), dtype="Float64")
    model = M.build_model(cfg, inputs=M.ModelInputs(survey=survey),
                          settings=dataclasses.replace(M._settings(cfg), n_boot=50))
    assert model.equal_weights and model.performance_only
    assert "note_no_kpis" in model.notes and "note_no_kpi_status" not in model.notes
    assert model.groups == (*levels, "all")
    assert len(model.stage_index) == (len(cfg.stages) + 1) * (len(levels) + 1)
    assert model.stage_index["index"].between(0, 100).all()
    # 1-7 scale: shortfall = 7 - P
    overall = model.factors[model.factors["group"] == "all"]
    assert_allclose(overall["deficit"], 7 - overall["performance"], rtol=0, atol=1e-12)
    import matplotlib

    matplotlib.use("Agg")
    from research.plots import model as P

    fig = P.model_diagram(weights=model.weights, kpis=model.kpis, stage_labels=model.stage_labels)
    fig.canvas.draw()
    import matplotlib.pyplot as plt

    plt.close("all")


# --------------------------------------------------------------------------------------------------
# End to end on the demo study (prepare -> experts, efa -> survey -> model through the pipeline)
# --------------------------------------------------------------------------------------------------
@pytest.mark.slow
def test_demo_model_puts_the_planted_weak_factors_first(tmp_path, demo_cfg):
    import os
    import subprocess
    import sys

    from conftest import DEMO_STUDY, ROOT

    env = {**os.environ, "RESEARCH_OUTPUT_ROOT": str(tmp_path)}
    proc = subprocess.run([sys.executable, "-m", "research.cli", "run", "--study", str(DEMO_STUDY), "--only", "model",
                           "-j", "1", "-q"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=3600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    truth = json.loads((ROOT / demo_cfg.data.truth).read_text(encoding="utf-8"))["survey"]
    weak = truth["weak_factors"]  # planted: low performance on highly important factors
    processed = tmp_path / "data" / "processed" / "demo"
    areas = pd.read_parquet(processed / "improvement_areas.parquet")
    assert sorted(areas["factor"].head(len(weak))) == sorted(weak)
    factors = pd.read_parquet(processed / "model_factors.parquet")
    overall = factors[factors["group"] == "all"].set_index("factor")
    assert (overall.loc[weak, "quadrant"] == "concentrate_here").all()
    assert (overall.loc[weak, "rank"] <= len(weak)).all()
    # planted group effects (foreign minus the other group, latent SD units) on performance: where foreign
    # clients rate a factor clearly lower (effect <= -0.5) they are the group most affected, and vice versa
    effects = {k.removeprefix("PERF_"): v for k, v in truth["group_effects"].items() if k.startswith("PERF_")}
    by_factor = areas.set_index("factor")
    for factor, effect in effects.items():
        if abs(effect) >= 0.5 and factor in by_factor.index:
            assert by_factor.loc[factor, "group"] == ("foreign" if effect < 0 else "lithuanian"), factor
    results = json.loads((tmp_path / "reports" / "demo" / "results" / "model.json").read_text(encoding="utf-8"))
    top = results["results"]["top_priorities"]
    assert sorted(p["factor"] for p in top[:len(weak)]) == sorted(weak)
    assert {"stage_index", "quadrants", "sensitivity_tau"} <= set(results["results"])
    wb = openpyxl.load_workbook(tmp_path / "reports" / "demo" / "supervision_model.xlsx", read_only=True)
    assert wb.sheetnames == list(M.WORKBOOK_SHEETS)
    wb.close()
