"""Kernel cases and the child process that times one case (``python -m bench.kernels '<spec json>'``).

Every case runs in a fresh Python process so that its peak RSS (``VmHWM``, see :func:`_peak_mb`) belongs
to that case alone. The child loads the cached data (int8 answers, ``bench.data``), notes
its RSS high-water mark before the kernel (``baseline_rss_mb``: interpreter, imports and the data), runs the
kernel ``repeats`` times with ``time.perf_counter`` around each call, and prints one JSON line: the times,
their median, ``peak_rss_mb`` (the whole process), ``kernel_extra_rss_mb`` (the kernel's peak above the
RSS it started from: the high-water mark is reset after the set-up) and a small summary of the answer. Data set up
(reading, building the DataFrame, the Pearson matrix for the fit-only EFA case) is outside the timed calls.
"""

from __future__ import annotations

import json
import resource
import statistics
import sys
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

SIZES_FULL = (300, 10_000, 100_000, 1_000_000)
ITEMS_FULL = (18, 50)
KENDALL_PANELS = ((10, 18), (100, 18), (1000, 18), (1000, 50))
KENDALL_PERMUTATIONS = 5000
REPEATS = 5
REPEATS_LARGEST = 3  # n = 1e6 only (said in the results and docs/benchmarks.md)


@dataclass(frozen=True)
class Case:
    """One timed kernel call: ``kernel`` on n respondents x p items (or an m x k expert panel)."""

    kernel: str
    n: int
    p: int
    repeats: int
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def id(self) -> str:
        extra = "".join(f"_{k}{v}" for k, v in sorted(self.params.items()))
        return f"{self.kernel}_n{self.n}_p{self.p}{extra}"

    def spec(self, cache: Path) -> dict[str, Any]:
        return {"kernel": self.kernel, "n": self.n, "p": self.p, "repeats": self.repeats,
                "params": self.params, "cache": str(cache), "id": self.id}


def kernel_cases(*, quick: bool = False, smoke: bool = False) -> list[Case]:
    """The case grid: full (``make bench``), quick (``--quick``) or smoke (the test: one tiny case each)."""
    if smoke:
        sizes, items, repeats, iters = (300,), (18,), 1, (20,)
        panels, n_perm = ((10, 18),), 200
    elif quick:
        sizes, items, repeats, iters = (300, 10_000), (18,), 3, (200,)
        panels, n_perm = ((10, 18), (100, 18)), 2000
    else:
        sizes, items, repeats, iters = SIZES_FULL, ITEMS_FULL, REPEATS, (200, 1000)
        panels, n_perm = KENDALL_PANELS, KENDALL_PERMUTATIONS

    def reps(n: int) -> int:
        return REPEATS_LARGEST if n >= 1_000_000 and not (quick or smoke) else repeats

    cases: list[Case] = []
    for p in items:
        for n in sizes:
            for n_iter in iters:
                # with Wishart draws the simulated part does not depend on n: 1000 iterations only up to 1e4
                if n_iter <= 200 or n <= 10_000:
                    cases.append(Case("parallel_analysis", n, p, reps(n), {"iter": n_iter}))
            cases.append(Case("polychoric", n, p, reps(n)))
            cases.append(Case("efa_fit", n, p, reps(n)))
            cases.append(Case("alpha", n, p, reps(n)))
            cases.append(Case("omega", n, p, reps(n)))
            cases.append(Case("compare_groups", n, p, reps(n)))
    for m, k in panels:
        cases.append(Case("kendall_w", m, k, repeats, {"perm": n_perm}))
    return cases


# --------------------------------------------------------------------------------------------------
# the child
# --------------------------------------------------------------------------------------------------
def _rss_now_mb() -> float:
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
        return pages * resource.getpagesize() / 2**20
    except OSError:
        return float("nan")


def _peak_mb() -> float:
    """This process's peak RSS: ``VmHWM`` of /proc/self/status (Linux), else ``ru_maxrss``.

    ``getrusage(RUSAGE_SELF).ru_maxrss`` is not used on Linux because it carries over the PARENT's peak
    across fork and exec (a child of a 1 GB parent reports at least 1 GB); ``VmHWM`` belongs to the
    address space created at exec, so it is this case's own peak.
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux, bytes on macOS


def _setup(spec: dict[str, Any]):
    """Return ``(call, summarise)``: the timed call and a function turning its result into JSON."""
    from bench import data as bd

    kernel, n, p, params = spec["kernel"], spec["n"], spec["p"], spec["params"]
    cache = Path(spec["cache"])
    if kernel == "kendall_w":
        from research.experts import kendall_w, kendall_w_permutation

        ratings = bd.make_panel(n, p)

        def call():
            return kendall_w(ratings), kendall_w_permutation(ratings, n_perm=params["perm"], seed=1)

        def summarise(result):
            w, perm = result
            return {"W": w.W, "p_chi2": w.p, "p_perm": perm.p_perm}

        return call, summarise

    answers, group = bd.load_items(bd.cached_items(cache, n, p))
    from research import efa

    if kernel == "compare_groups":
        from research.survey import compare_groups

        frame = bd.survey_frame(answers, group)
        columns = bd.item_names(p)
        del answers

        def call():
            return compare_groups(frame, "origin", columns, levels=["foreign", "lithuanian"])

        def summarise(result):
            return {"max_abs_r_rb": float(result["r_rb"].abs().max()),
                    "n_significant_holm": int((result["p_holm"] < 0.05).sum())}

        return call, summarise

    items = bd.items_frame(answers)
    del answers, group
    k = bd.n_factors_for(p)
    if kernel == "parallel_analysis":
        def call():
            return efa.parallel_analysis(items, n_iter=params["iter"], kind="fa", quantile=None, seed=1)

        def summarise(result):
            table = result.eigenvalues
            return {"n_suggested": result.n_suggested, "observed": table["observed"].round(6).tolist(),
                    "simulated_mean": table["simulated_mean"].round(6).tolist()}

        return call, summarise
    if kernel == "polychoric":
        def call():
            return efa.polychoric(items)

        def summarise(result):
            out = Path(spec["cache"]) / f"rho_{spec['id']}.npy"
            np.save(out, result.rho.to_numpy())
            return {"rho_file": str(out), "smoothed": result.smoothed}

        return call, summarise
    if kernel == "efa_fit":
        # the fit alone, on the Pearson matrix (R: fa(r, nfactors, n.obs, fm = "minres", rotate = "oblimin"))
        corr = efa.pearson(items)
        n_obs = len(items)
        del items

        def call():
            return efa.fit_efa(corr, k, n_obs=n_obs, method="minres", rotation="oblimin")

        def summarise(result):
            out = Path(spec["cache"]) / f"loadings_{spec['id']}.npy"
            np.save(out, result.loadings.to_numpy())
            return {"loadings_file": str(out), "n_factors": k}

        return call, summarise
    if kernel == "alpha":
        def call():
            return efa.cronbach_alpha(items)

        return call, lambda r: {"raw_alpha": r.raw_alpha, "std_alpha": r.std_alpha}
    if kernel == "omega":
        def call():
            return efa.omega_total(items)

        return call, lambda r: {"omega_total": r.omega_total}
    raise SystemExit(f"bench.kernels: unknown kernel {kernel!r}")


def run_case(spec: dict[str, Any]) -> dict[str, Any]:
    """Time one case in this process and return its record (see the module docstring)."""
    warnings.simplefilter("ignore")  # e.g. smoothing or Heywood warnings of random data; not timed content
    started = time.perf_counter()
    call, summarise = _setup(spec)
    setup_seconds = time.perf_counter() - started
    setup_peak = _peak_mb()
    reset = _reset_peak()  # so that the kernel's own peak is seen, not the set-up's (e.g. a Pearson matrix)
    baseline_now = _rss_now_mb()
    times, result = [], None
    for _ in range(spec["repeats"]):
        t0 = time.perf_counter()
        result = call()
        times.append(time.perf_counter() - t0)
    kernel_peak = _peak_mb()
    record = {"id": spec["id"], "kernel": spec["kernel"], "n": spec["n"], "p": spec["p"],
              "params": spec["params"], "repeats": spec["repeats"], "seconds": times,
              "median_seconds": statistics.median(times), "setup_seconds": setup_seconds,
              "baseline_rss_mb": baseline_now, "setup_peak_rss_mb": setup_peak,
              "peak_rss_mb": max(setup_peak, kernel_peak), "answer": summarise(result)}
    record["kernel_extra_rss_mb"] = max(0.0, kernel_peak - baseline_now) if reset else None
    return record


def _reset_peak() -> bool:
    """Reset this process's VmHWM to its current RSS (Linux >= 4.0: ``5 > /proc/self/clear_refs``)."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


if __name__ == "__main__":
    print(json.dumps(run_case(json.loads(sys.argv[1]))))
