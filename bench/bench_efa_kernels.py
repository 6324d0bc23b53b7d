"""Time the EFA kernels: parallel analysis and polychoric correlations (median of 5 runs).

Run from the project root: ``.venv/bin/python bench/bench_efa_kernels.py``. The data are synthetic
(three correlated factors behind 18 five-point items), made with a fixed seed.
"""

from __future__ import annotations

import statistics
import time

import numpy as np
import pandas as pd

from research.efa import parallel_analysis, polychoric

N_ITEMS = 18
REPEATS = 5


def make_items(n_respondents: int, seed: int = 1) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    factors = rng.multivariate_normal(np.zeros(3), [[1, .3, .2], [.3, 1, .3], [.2, .3, 1]], size=n_respondents)
    loadings = np.zeros((N_ITEMS, 3))
    for f in range(3):
        loadings[f * 6:(f + 1) * 6, f] = 0.7
    latent = factors @ loadings.T + rng.normal(scale=0.7, size=(n_respondents, N_ITEMS))
    answers = np.searchsorted([-1.5, -0.6, 0.2, 1.0], latent) + 1
    return pd.DataFrame(answers, columns=[f"item{i + 1:02d}" for i in range(N_ITEMS)])


def median_seconds(run) -> float:
    times = []
    for _ in range(REPEATS):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    data_300 = make_items(300)
    print(f"median of {REPEATS} runs, {N_ITEMS} items")
    for n_iter in (200, 1000):
        for kind in ("fa", "pca"):
            seconds = median_seconds(lambda n_iter=n_iter, kind=kind:
                                     parallel_analysis(data_300, n_iter=n_iter, kind=kind, seed=1))
            print(f"parallel_analysis  n=300     n_iter={n_iter:<5d} kind={kind:<4s} {seconds:8.3f} s")
    for n in (300, 10_000, 100_000):
        data = make_items(n)
        seconds = median_seconds(lambda data=data: polychoric(data))
        print(f"polychoric         n={n:<8d}                     {seconds:8.3f} s")


if __name__ == "__main__":
    main()
