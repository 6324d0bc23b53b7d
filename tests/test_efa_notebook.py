"""The factor-analysis notebook (02_factor_analysis): structure (fast) and the demo study end to end (slow).

The end-to-end test prepares the demo data into a temporary ``RESEARCH_OUTPUT_ROOT``, runs the notebook and
checks that the analysis recovers the generating structure written in ``data/raw/demo/truth.json``
(Tucker congruence >= 0.95 with the true loadings; Lorenzo-Seva & ten Berge, 2006), finds the planted
cross-loading item, and writes the tables of the data contract (docs/architecture.md).
"""

from __future__ import annotations

import ast
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pandas as pd
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "notebooks" / "02_factor_analysis.ipynb"
LOCALE = ROOT / "src" / "research" / "locales" / "efa.yaml"
PARAMETERS = ["study", "language", "item_type", "corr", "n_factors", "factor_rule", "method", "rotation",
              "loading_cutoff", "seed"]


@pytest.fixture(scope="module")
def notebook():
    return nbformat.read(NOTEBOOK, as_version=4)


def test_notebook_is_thin_and_clean(notebook):
    assert notebook.metadata["kernelspec"] == {"name": "research-study", "display_name": "Python (research study)",
                                               "language": "python"}
    first = notebook.cells[0]
    assert first.metadata.get("tags") == ["parameters"]
    assignments = [line for line in first.source.splitlines() if ":" in line and "=" in line]
    assert [line.split(":")[0] for line in assignments] == PARAMETERS
    assert all("#" in line for line in assignments)  # every parameter is explained
    assert assignments[0] == ('study: str = "studies/demo/study.yaml"  # study configuration, '
                              "relative to the project root")
    for cell in notebook.cells:
        assert cell.cell_type == "code"
        assert cell.get("outputs") == [] and cell.get("execution_count") is None
        tree = ast.parse(cell.source)
        assert not any(isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef | ast.For | ast.While
                                  | ast.Lambda) for n in ast.walk(tree)), cell.source[:80]
    assert 'Reporter(cfg, "efa")' in notebook.cells[1].source


def test_every_text_key_exists_in_both_languages(notebook):
    catalogue = yaml.safe_load(LOCALE.read_text(encoding="utf-8"))
    common = yaml.safe_load((LOCALE.parent / "common.yaml").read_text(encoding="utf-8"))
    assert all(v.get("en") and v.get("lt") for v in catalogue.values())
    source = "\n".join(c.source for c in notebook.cells)
    used = set(re.findall(r'rep\.(?:heading|paragraph|label|t)\("([a-z_0-9]+)"', source))
    used |= set(re.findall(r'caption="([a-z_0-9]+)"', source))
    missing = sorted(k for k in used if k not in catalogue and k not in common)
    assert not missing
    # keys built at run time: rule/method/rotation/score labels and the reasons for the number of factors
    for prefix, values in {"why_": ["fixed", "parallel", "kaiser", "map", "hypothesised"],
                           "rule_": ["parallel", "kaiser", "map", "hypothesised"],
                           "corr_": ["pearson", "polychoric"], "method_": ["minres", "ml", "pa"],
                           "rotation_": ["oblimin", "varimax", "promax", "none"],
                           "score_": ["regression", "bartlett", "tenberge"],
                           "item_type_": ["performance", "importance"],
                           "kmo_": ["marvelous", "meritorious", "middling", "mediocre", "miserable", "unacceptable"],
                           "p_msa_": ["ok", "low_kept", "low_dropped"]}.items():
        assert all(prefix + v in catalogue for v in values), prefix


# --- demo study end to end (slow) ------------------------------------------------------------------------
@pytest.fixture(scope="module")
def demo_output(tmp_path_factory):
    if not (ROOT / "src" / "research" / "data.py").is_file() or not (ROOT / "data" / "raw" / "demo").is_dir():
        pytest.skip("research.data or the demo data are not there yet")
    out = tmp_path_factory.mktemp("efa_out")
    env = {**os.environ, "RESEARCH_OUTPUT_ROOT": str(out)}
    subprocess.run([sys.executable, "-m", "research.cli", "prepare", "--study", "studies/demo/study.yaml"],
                   cwd=ROOT, env=env, check=True, capture_output=True)
    return out


def _run_notebook(out: Path, executed_dir: Path, **parameters) -> Path:
    code = ("from pathlib import Path; from notebook_runner import execute_notebook; "
            f"execute_notebook('02_factor_analysis', Path({str(executed_dir)!r}), **{parameters!r})")
    env = {**os.environ, "RESEARCH_OUTPUT_ROOT": str(out),
           "PYTHONPATH": os.pathsep.join([str(ROOT / "tests"), os.environ.get("PYTHONPATH", "")])}
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, check=True, capture_output=True)
    return executed_dir / "02_factor_analysis.ipynb"


@pytest.mark.slow
def test_notebook_recovers_the_demo_structure(demo_output, tmp_path):
    _run_notebook(demo_output, tmp_path, study="studies/demo/study.yaml")
    payload = json.loads((demo_output / "reports" / "demo" / "results" / "efa.json").read_text(encoding="utf-8"))
    results = payload["results"]
    assert payload["notebook"] == "efa" and payload["synthetic"] is True
    assert set(results) >= {"n_factors", "kmo", "bartlett_p", "variance_explained", "congruence_true",
                            "congruence_hypothesised", "alpha_by_factor", "heywood_items", "cross_loading_items"}
    truth = json.loads((ROOT / "data" / "raw" / "demo" / "truth.json").read_text(encoding="utf-8"))["survey"]
    # three stages generate the data; parallel analysis finds three factors
    assert results["n_factors"] == len(truth["factor_correlations"]) == 3
    # recovered loadings reproduce the true ones (Tucker congruence >= 0.95 for every factor)
    assert len(results["congruence_true"]) == 3
    assert min(results["congruence_true"].values()) >= 0.95, results["congruence_true"]
    assert truth["cross_loading_item"] in results["cross_loading_items"]
    assert results["heywood_items"] == []
    assert 0 < results["kmo"] <= 1 and results["bartlett_p"] < 0.001

    processed = demo_output / "data" / "processed" / "demo"
    scores = pd.read_parquet(processed / "factor_scores.parquet")
    assert list(scores.columns) == ["respondent_id", "origin", "F1", "F2", "F3"]
    assert scores[["F1", "F2", "F3"]].notna().all().all()
    loadings = pd.read_parquet(processed / "efa_loadings.parquet")
    assert list(loadings.columns) == ["variable", "factor", "loading", "communality"]
    factor_map = pd.read_parquet(processed / "factor_map.parquet")
    assert list(factor_map.columns) == ["factor", "latent", "congruence"]
    assert sorted(factor_map["latent"]) == ["S1", "S2", "S3"]  # one factor per hypothesised stage


@pytest.mark.slow
def test_notebook_runs_in_lithuanian_with_other_options(demo_output, tmp_path):
    executed = _run_notebook(demo_output, tmp_path, study="studies/demo/study.yaml", language="lt",
                             corr="pearson", method="ml", rotation="promax", n_factors=3)
    payload = json.loads((demo_output / "reports" / "demo" / "results" / "efa.json").read_text(encoding="utf-8"))
    assert payload["language"] == "lt" and payload["results"]["n_factors_rule"] == "fixed"
    html = "\n".join(o.get("data", {}).get("text/html", "") for c in nbformat.read(executed, as_version=4).cells
                     for o in c.get("outputs", []))
    assert "Faktorių svoriai" in html and "Pearsono" in html
    # an oblique rotation of the ML solution recovers the (correlated) true factors as well; an orthogonal
    # varimax solution would not reach 0.95 here, because the true factors correlate .35-.50
    assert min(payload["results"]["congruence_true"].values()) >= 0.95
