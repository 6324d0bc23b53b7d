"""Side by side with R psych: the same data (a CSV of the cached answers), timed inside R.

For each comparison case the R script ``bench/psych_bench.R`` reads the CSV, times ``repeats`` calls with
``system.time`` (data loading excluded) and writes the answer; here it is compared with ours:

* parallel analysis: the suggested number of factors (psych ``nfact`` vs ``n_suggested``) and the largest
  difference of the mean simulated eigenvalues (both Monte Carlo, different random numbers);
* polychoric: max |rho difference|;
* EFA fit: max |loading difference| after matching factors (Hungarian assignment on |Tucker congruence|)
  and signs.

Where ``Rscript`` or psych is missing every comparison is skipped with a message.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.optimize import linear_sum_assignment

from bench import data as bd

SCRIPT = Path(__file__).with_name("psych_bench.R")
R_KERNEL = {"parallel_analysis": "fa_parallel", "polychoric": "polychoric", "efa_fit": "fa"}


@dataclass(frozen=True)
class RCase:
    kernel: str  # ours: parallel_analysis | polychoric | efa_fit
    n: int
    p: int
    repeats: int
    n_iter: int | None = None

    @property
    def ours_id(self) -> str:
        extra = f"_iter{self.n_iter}" if self.n_iter else ""
        return f"{self.kernel}_n{self.n}_p{self.p}{extra}"


def r_cases(*, quick: bool = False, smoke: bool = False, repeats: int = 5) -> list[RCase]:
    """Comparisons run in R (sizes where psych finishes in reasonable time; see docs/benchmarks.md)."""
    if smoke:
        return []
    if quick:
        return [RCase("parallel_analysis", 300, 18, 3, 200), RCase("polychoric", 300, 18, 3),
                RCase("polychoric", 10_000, 18, 3), RCase("efa_fit", 300, 18, 3), RCase("efa_fit", 10_000, 18, 3)]
    cases = [RCase("parallel_analysis", n, p, repeats, 200) for p in (18, 50) for n in (300, 10_000)]
    cases.append(RCase("parallel_analysis", 300, 18, repeats, 1000))
    cases += [RCase("polychoric", n, 18, repeats) for n in (300, 10_000, 100_000)]
    cases.append(RCase("polychoric", 100_000, 50, repeats))
    cases += [RCase("efa_fit", n, p, repeats) for p in (18, 50) for n in (300, 10_000, 100_000)]
    return cases


def r_available() -> tuple[bool, str]:
    """Whether ``Rscript`` with psych, GPArotation and jsonlite is here, and the versions (or why not)."""
    if shutil.which("Rscript") is None:
        return False, "Rscript not found (make bench-r installs R with psych and GPArotation)"
    probe = ("cat(R.version.string, '|', as.character(packageVersion('psych')), '|', "
             "as.character(packageVersion('GPArotation')), '|', as.character(packageVersion('jsonlite')))")
    try:
        done = subprocess.run(["Rscript", "-e", probe], capture_output=True, text=True, timeout=120)
    except (OSError, subprocess.TimeoutExpired) as e:
        return False, f"Rscript failed to start ({e})"
    if done.returncode != 0:
        return False, "R packages psych, GPArotation and jsonlite are needed: " + done.stderr.strip().splitlines()[-1]
    return True, done.stdout.strip()


def run_r(case: RCase, cache: Path, *, timeout: float = 1800) -> dict:
    """Run one R case; returns R's record (times, median, answer) or ``{"error": ...}``."""
    csv = bd.items_csv(cache, case.n, case.p)
    extra = case.n_iter if case.kernel == "parallel_analysis" else bd.n_factors_for(case.p)
    with tempfile.TemporaryDirectory(dir=cache) as tmp:
        out = Path(tmp) / "r.json"
        cmd = ["Rscript", str(SCRIPT), R_KERNEL[case.kernel], str(csv), str(case.repeats), str(out)]
        if extra is not None:
            cmd.append(str(extra))
        try:
            done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            return {"error": f"R timed out after {timeout:.0f} s"}
        if done.returncode != 0 or not out.exists():
            tail = (done.stderr.strip().splitlines() or ["(no message)"])[-1]
            return {"error": f"Rscript failed: {tail}"}
        return json.loads(out.read_text())


def _matched_loading_difference(ours: np.ndarray, theirs: np.ndarray) -> float:
    """Max |loading difference| after matching columns by |Tucker congruence| and flipping signs."""
    def unit(a: np.ndarray) -> np.ndarray:
        return a / np.sqrt((a**2).sum(axis=0, keepdims=True))

    congruence = unit(ours).T @ unit(theirs)
    rows, cols = linear_sum_assignment(-np.abs(congruence))
    matched = theirs[:, cols] * np.sign(congruence[rows, cols])
    return float(np.abs(ours[:, rows] - matched).max())


def compare(case: RCase, ours: dict, theirs: dict) -> dict:
    """Ratio R time / our time and the agreement of the answers (see the module docstring)."""
    out = {"id": case.ours_id, "kernel": case.kernel, "n": case.n, "p": case.p, "n_iter": case.n_iter,
           "repeats": case.repeats}
    if "error" in theirs:
        return {**out, "error": theirs["error"]}
    out.update(r_seconds=theirs["seconds"], r_median_seconds=theirs["median_seconds"],
               ours_median_seconds=ours["median_seconds"],
               ratio_r_over_ours=theirs["median_seconds"] / ours["median_seconds"])
    a, b = ours["answer"], theirs["answer"]
    if case.kernel == "parallel_analysis":
        out.update(ours_n_suggested=a["n_suggested"], r_n_suggested=b["n_suggested"],
                   same_suggested=a["n_suggested"] == b["n_suggested"],
                   max_abs_observed_diff=float(np.abs(np.subtract(a["observed"], b["observed"])).max()),
                   max_abs_simulated_mean_diff=float(np.abs(np.subtract(a["simulated_mean"],
                                                                        b["simulated_mean"])).max()))
    elif case.kernel == "polychoric":
        rho = np.load(a["rho_file"])
        out["max_abs_rho_diff"] = float(np.abs(rho - np.asarray(b["rho"], dtype=float)).max())
    else:
        loadings = np.load(a["loadings_file"])
        out["max_abs_loading_diff"] = _matched_loading_difference(loadings, np.asarray(b["loadings"], dtype=float))
    return out
