"""Shared fixtures: reference values from ../shared/reference (R outputs) and the demo study."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[1]
# The R reference values live in the workspace's shared folder; a copy is vendored in tests/reference so
# a clone without ../shared still tests (the two are compared in test_reference_copy.py).
SHARED_REFERENCE = ROOT.parent / "shared" / "reference"
REFERENCE = ROOT / "tests" / "reference"
DEMO_STUDY = ROOT / "studies" / "demo" / "study.yaml"


@pytest.fixture(scope="session")
def hs_reference() -> dict:
    """psych/effectsize values for Holzinger-Swineford (R 4.2.2, psych 2.2.9; see make_reference.R)."""
    return json.loads((REFERENCE / "holzinger_swineford_reference.json").read_text())


@pytest.fixture(scope="session")
def kendall_reference() -> dict:
    return json.loads((REFERENCE / "kendall_w_reference.json").read_text())


@pytest.fixture(scope="session")
def hs_data() -> pd.DataFrame:
    """lavaan::HolzingerSwineford1939, n = 301 (all columns)."""
    return pd.read_csv(REFERENCE / "holzinger_swineford_1939.csv")


@pytest.fixture(scope="session")
def hs_items(hs_data) -> pd.DataFrame:
    return hs_data[[f"x{i}" for i in range(1, 10)]]


@pytest.fixture(scope="session")
def hs_ordinal() -> pd.DataFrame:
    """x1..x9 cut into 5 categories at sample quintiles (make_reference.R)."""
    return pd.read_csv(REFERENCE / "holzinger_swineford_ordinal.csv")


@pytest.fixture(scope="session")
def demo_cfg():
    from research.config import load_study

    return load_study(DEMO_STUDY)
