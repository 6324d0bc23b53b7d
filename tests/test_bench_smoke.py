"""The benchmark harness runs at its smallest size (issue 9). Not a timing test: numbers are not checked."""

from __future__ import annotations

import json
import subprocess
import sys

from bench import kernels as bk
from bench import report
from bench.run import main

from research import paths


def test_bench_smoke_run_writes_results_and_summary(tmp_path):
    doc = tmp_path / "benchmarks.md"
    assert main(["--smoke", "--out", str(tmp_path), "--doc", str(doc)]) == 0
    kernels = json.loads((tmp_path / "kernels.json").read_text())
    assert kernels["mode"] == "smoke"
    assert {c["kernel"] for c in kernels["cases"]} == {"parallel_analysis", "polychoric", "efa_fit", "alpha",
                                                        "omega", "compare_groups", "kendall_w"}
    for case in kernels["cases"]:
        assert "error" not in case, case
        assert len(case["seconds"]) == case["repeats"] and case["median_seconds"] > 0
        assert case["peak_rss_mb"] > 0
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert [t["status"] for t in summary["targets"]] == ["not measured"] * 5  # no R, no pipeline in a smoke run
    text = doc.read_text()
    assert text.startswith("# Benchmarks") and "| kernel |" in text


def test_bench_child_process_reports_one_case(tmp_path):
    case = bk.Case("kendall_w", 10, 18, 1, {"perm": 100})
    done = subprocess.run([sys.executable, "-m", "bench.kernels", json.dumps(case.spec(tmp_path))],
                          capture_output=True, text=True, cwd=paths.PROJECT_ROOT, timeout=120, check=True)
    record = json.loads(done.stdout.strip().splitlines()[-1])
    assert record["id"] == case.id and record["peak_rss_mb"] >= record["setup_peak_rss_mb"] > 0
    assert 0 < record["answer"]["W"] <= 1


def test_bench_targets_from_recorded_numbers(tmp_path):
    # the target logic on hand-made records: 25x with the same count is met, 12x is not
    comparison = {"kernel": "parallel_analysis", "n": 300, "p": 18, "n_iter": 200, "same_suggested": True,
                  "ratio_r_over_ours": 25.0, "r_median_seconds": 2.5, "ours_median_seconds": 0.1}
    (tmp_path / "r_comparison.json").write_text(json.dumps({"available": True, "comparisons": [comparison]}))
    assert report.summarise(tmp_path)["targets"][0]["status"] == "met"
    comparison["ratio_r_over_ours"] = 12.0
    (tmp_path / "r_comparison.json").write_text(json.dumps({"available": True, "comparisons": [comparison]}))
    assert report.summarise(tmp_path)["targets"][0]["status"] == "NOT met"
