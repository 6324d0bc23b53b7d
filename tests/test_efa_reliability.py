"""Cronbach's alpha and omega total against R psych 2.2.9 and pingouin."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pingouin
import pytest
from numpy.testing import assert_allclose
from scipy import stats

from research.efa import cronbach_alpha, omega_total
from research.errors import AnalysisError

SCALE = ["x1", "x2", "x3"]


def test_alpha_matches_psych(hs_items, hs_reference):
    # R 4.2.2 psych 2.2.9: a <- alpha(x[, c("x1", "x2", "x3")]); a$total, a$alpha.drop, a$item.stats
    expected = hs_reference["alpha_x1_x3"]
    result = cronbach_alpha(hs_items[SCALE])
    assert_allclose(result.raw_alpha, expected["raw_alpha"], rtol=0, atol=1e-6)
    assert_allclose(result.std_alpha, expected["std_alpha"], rtol=0, atol=1e-6)
    assert list(result.items["item"]) == SCALE
    assert_allclose(result.items["alpha_if_deleted"], [expected["alpha_if_deleted"][c] for c in SCALE], atol=1e-6)
    assert_allclose(result.items["r_drop"], [expected["r_drop"][c] for c in SCALE], atol=1e-6)
    assert (result.n_obs, result.n_items) == (301, 3)


def test_alpha_feldt_interval(hs_items):
    result = cronbach_alpha(hs_items[SCALE], ci=0.95)
    # pingouin 0.7 cronbach_alpha: Feldt interval with F(n-1, (n-1)(k-1)), rounded to 3 decimals
    alpha, interval = pingouin.cronbach_alpha(data=hs_items[SCALE], ci=0.95)
    assert_allclose(result.raw_alpha, alpha, atol=1e-12)
    assert_allclose([result.ci_low, result.ci_high], interval, atol=5e-4)
    # Feldt (1965) written out with scipy's F quantiles (psych alpha.ci, n = 301, k = 3)
    low = 1 - (1 - alpha) * stats.f.ppf(0.975, 300, 600)
    high = 1 - (1 - alpha) * stats.f.ppf(0.025, 300, 600)
    assert_allclose([result.ci_low, result.ci_high], [low, high], atol=1e-12)
    assert result.ci_level == 0.95
    wider = cronbach_alpha(hs_items[SCALE], ci=0.99)
    assert wider.ci_low < result.ci_low < result.raw_alpha < result.ci_high < wider.ci_high


def test_standardised_alpha_is_alpha_of_z_scores(hs_items):
    # pingouin on z-scored items (covariance = correlation) gives the standardised alpha
    z = (hs_items[SCALE] - hs_items[SCALE].mean()) / hs_items[SCALE].std()
    assert_allclose(cronbach_alpha(hs_items[SCALE]).std_alpha, pingouin.cronbach_alpha(data=z)[0], atol=1e-12)


def test_alpha_two_items_has_no_alpha_if_deleted(hs_items):
    result = cronbach_alpha(hs_items[["x1", "x2"]])
    assert result.items["alpha_if_deleted"].isna().all()
    assert_allclose(result.items["r_drop"], hs_items["x1"].corr(hs_items["x2"]), atol=1e-12)


def test_alpha_warns_about_negative_items(hs_items):
    data = hs_items[SCALE].copy()
    data["x2"] = -data["x2"]
    with pytest.warns(UserWarning, match="x2"):
        cronbach_alpha(data)


def test_omega_total_matches_psych(hs_items, hs_reference):
    # R 4.2.2 psych 2.2.9: omega(x[, c("x1", "x2", "x3")], nfactors = 1)$omega.tot
    result = omega_total(hs_items[SCALE])
    assert_allclose(result.omega_total, hs_reference["omega_total_x1_x3_one_factor"], rtol=0, atol=1e-6)
    # three items: the one-factor model is exactly identified, lambda_1^2 = r12 r13 / r23
    r = hs_items[SCALE].corr().to_numpy()
    closed = np.sqrt([r[0, 1] * r[0, 2] / r[1, 2], r[0, 1] * r[1, 2] / r[0, 2], r[0, 2] * r[1, 2] / r[0, 1]])
    assert_allclose(result.loadings.to_numpy(), closed, atol=1e-5)
    assert list(result.loadings.index) == SCALE


def test_omega_flips_negative_items_like_psych(hs_items, hs_reference):
    data = hs_items[SCALE].copy()
    data["x3"] = 10 - data["x3"]
    with pytest.warns(UserWarning, match="x3"):
        result = omega_total(data)
    assert_allclose(result.omega_total, hs_reference["omega_total_x1_x3_one_factor"], atol=1e-6)


@pytest.mark.parametrize(("func", "frame", "message"), [
    (cronbach_alpha, pd.DataFrame({"a": [1.0, 2.0, 3.0, 4.0]}), "expected at least 2"),
    (cronbach_alpha, pd.DataFrame({"a": [1.0, 2.0, 3.0, 4.0], "b": [1.0, 1.0, 1.0, 1.0]}), "zero variance"),
    (cronbach_alpha, pd.DataFrame({"a": [1.0, 2.0], "b": [2.0, 1.0]}), "expected at least 3"),
    (omega_total, pd.DataFrame({"a": [1.0, 2.0, 3.0, 4.0], "b": [2.0, 1.0, 4.0, 3.0]}), "expected at least 3"),
    (omega_total, pd.DataFrame({"a": [1, 2, 3, 4], "b": [2, 1, 4, 3], "c": list("abcd")}), "not numeric"),
])
def test_reliability_bad_input(func, frame, message):
    with pytest.raises(AnalysisError, match=message):
        func(frame)


def test_alpha_bad_ci(hs_items):
    with pytest.raises(AnalysisError, match="ci"):
        cronbach_alpha(hs_items[SCALE], ci=95)
