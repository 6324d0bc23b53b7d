"""KMO and Bartlett's test against R psych 2.2.9 (Holzinger-Swineford x1..x9, n = 301)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose

from research.efa import bartlett_sphericity, pearson, sampling_adequacy
from research.errors import AnalysisError


def test_kmo_matches_psych(hs_items, hs_reference):
    # R 4.2.2 psych 2.2.9: k <- KMO(x); k$MSA, k$MSAi
    result = sampling_adequacy(hs_items)
    assert_allclose(result.overall, hs_reference["kmo_overall"], rtol=0, atol=1e-6)
    expected = pd.Series(hs_reference["kmo_items"])
    assert list(result.per_item.index) == list(expected.index)
    assert_allclose(result.per_item.to_numpy(), expected.to_numpy(), rtol=0, atol=1e-6)


def test_kmo_from_correlation_matrix(hs_items, hs_reference):
    result = sampling_adequacy(pearson(hs_items))
    assert_allclose(result.overall, hs_reference["kmo_overall"], rtol=0, atol=1e-6)
    unnamed = sampling_adequacy(pearson(hs_items).to_numpy())
    assert list(unnamed.per_item.index) == [f"V{i}" for i in range(1, 10)]
    assert_allclose(unnamed.per_item.to_numpy(), list(hs_reference["kmo_items"].values()), atol=1e-6)


def test_bartlett_matches_psych(hs_items, hs_reference):
    # R 4.2.2 psych 2.2.9: cortest.bartlett(cor(x), n = nrow(x))
    expected = hs_reference["bartlett"]
    for result in (bartlett_sphericity(hs_items), bartlett_sphericity(pearson(hs_items), n_obs=301)):
        assert_allclose(result.chi2, expected["chisq"], rtol=1e-6)
        assert result.df == expected["df"] == 36
        assert_allclose(result.p, expected["p"], rtol=1e-6)
        assert result.n_obs == 301


def test_bartlett_needs_n_for_a_matrix(hs_items):
    with pytest.raises(AnalysisError, match="n_obs is required"):
        bartlett_sphericity(pearson(hs_items))
    with pytest.raises(AnalysisError, match="too small"):
        bartlett_sphericity(pearson(hs_items), n_obs=4)


def test_singular_matrix_is_rejected(hs_items):
    data = hs_items[["x1", "x2", "x3"]].copy()
    data["sum"] = data.sum(axis=1)
    with pytest.raises(AnalysisError, match="singular|not positive definite"):
        sampling_adequacy(data)
    with pytest.raises(AnalysisError, match="not positive definite"):
        bartlett_sphericity(data)


def test_not_a_correlation_matrix():
    bad = pd.DataFrame(np.array([[1.0, 0.5], [0.4, 1.0]]), index=["a", "b"], columns=["a", "b"])
    with pytest.raises(AnalysisError, match="not a correlation matrix"):
        sampling_adequacy(bad)


def test_bad_item_data():
    with pytest.raises(AnalysisError, match="not numeric"):
        sampling_adequacy(pd.DataFrame({"a": [1.0, 2.0, 3.0], "b": ["x", "y", "z"], "c": [1.0, 0.0, 2.0]}))
