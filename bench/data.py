"""Synthetic benchmark data, generated in chunks (int8 answers) so that even 1e6 x 50 stays small.

Items: ``k`` correlated factors (correlation .3) behind ``p`` five-point items (loadings .55-.80, items
assigned to factors in blocks), latent responses cut at (-1.5, -0.6, 0.2, 1.0), 2 % of the answers missing
completely at random (NaN), and a two-level group column (45 % / 55 %) with a 0.2 SD shift on every third
item. Expert panels: ``m`` experts rank ``k`` objects by a common true importance plus noise.
Everything is seeded (``numpy.random.default_rng``), so every run and R see the same numbers.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

THRESHOLDS = np.array([-1.5, -0.6, 0.2, 1.0])
MISSING_SHARE = 0.02
CHUNK_ROWS = 100_000


def n_factors_for(p: int) -> int:
    """The number of planted factors for ``p`` items (3 for the demo's 18, one per 10 items beyond)."""
    return 3 if p <= 18 else max(3, p // 10)


def loadings_for(p: int) -> np.ndarray:
    """Planted pattern (p x k): item j loads on factor ``j * k // p`` with .55-.80."""
    k = n_factors_for(p)
    L = np.zeros((p, k))
    for j in range(p):
        L[j, j * k // p] = 0.55 + 0.25 * ((j * 7) % 11) / 10
    return L


def item_names(p: int) -> list[str]:
    return [f"item{j + 1:02d}" for j in range(p)]


def make_items(n: int, p: int, *, seed: int = 1, missing: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """``(answers, group)``: answers int8 (n, p) in 1..5 with 0 = missing, group int8 (0/1), in chunks."""
    rng = np.random.default_rng([seed, n, p])
    L = loadings_for(p)
    k = L.shape[1]
    phi = np.full((k, k), 0.3) + 0.7 * np.eye(k)
    chol = np.linalg.cholesky(phi)
    unique = np.sqrt(1.0 - (L**2).sum(axis=1))
    shift = np.where(np.arange(p) % 3 == 0, 0.2, 0.0)
    answers = np.empty((n, p), dtype=np.int8)
    group = np.empty(n, dtype=np.int8)
    for start in range(0, n, CHUNK_ROWS):
        size = min(CHUNK_ROWS, n - start)
        g = (rng.random(size) < 0.45).astype(np.int8)
        eta = rng.standard_normal((size, k)) @ chol.T
        latent = eta @ L.T + rng.standard_normal((size, p)) * unique + g[:, None] * shift
        cat = (np.searchsorted(THRESHOLDS, latent.ravel()).reshape(size, p) + 1).astype(np.int8)
        if missing:
            cat[rng.random((size, p)) < MISSING_SHARE] = 0
        answers[start:start + size] = cat
        group[start:start + size] = g
    return answers, group


def items_frame(answers: np.ndarray) -> pd.DataFrame:
    """Answers as the kernels take them: float64 columns, NaN = missing."""
    values = answers.astype(np.float64)
    values[answers == 0] = np.nan
    return pd.DataFrame(values, columns=item_names(answers.shape[1]))


def survey_frame(answers: np.ndarray, group: np.ndarray) -> pd.DataFrame:
    """Items plus the group column ``origin`` (``foreign`` / ``lithuanian``) for group comparisons."""
    frame = items_frame(answers)
    frame.insert(0, "origin", pd.Categorical.from_codes(group.astype(np.int64), ["lithuanian", "foreign"]))
    return frame


def make_panel(m: int, k: int, *, seed: int = 1) -> pd.DataFrame:
    """Ranks (1 = most important, no ties) of ``k`` objects by ``m`` experts: a k x m table (irr layout)."""
    rng = np.random.default_rng([seed, m, k])
    importance = np.linspace(1.0, 0.0, k)
    perceived = importance[:, None] + 0.6 * rng.standard_normal((k, m))
    ranks = (-perceived).argsort(axis=0).argsort(axis=0) + 1
    return pd.DataFrame(ranks.astype(float), index=[f"F{i + 1:02d}" for i in range(k)],
                        columns=[f"E{j + 1:04d}" for j in range(m)])


def items_path(cache: Path, n: int, p: int, *, seed: int = 1) -> Path:
    return cache / f"items_n{n}_p{p}_s{seed}.npz"


def cached_items(cache: Path, n: int, p: int, *, seed: int = 1) -> Path:
    """Write (once) the answers and group of ``make_items(n, p)`` to ``cache`` as ``.npz``; return the path."""
    path = items_path(cache, n, p, seed=seed)
    if not path.exists():
        answers, group = make_items(n, p, seed=seed)
        tmp = path.with_suffix(".tmp.npz")
        np.savez(tmp, answers=answers, group=group)
        tmp.replace(path)
    return path


def load_items(path: Path) -> tuple[np.ndarray, np.ndarray]:
    with np.load(path) as z:
        return z["answers"], z["group"]


def items_csv(cache: Path, n: int, p: int, *, seed: int = 1) -> Path:
    """The same answers as a CSV for R (``NA`` = missing), written once."""
    path = cache / f"items_n{n}_p{p}_s{seed}.csv"
    if not path.exists():
        answers, _ = load_items(cached_items(cache, n, p, seed=seed))
        tmp = path.with_suffix(".tmp.csv")
        items_frame(answers).to_csv(tmp, index=False, na_rep="NA", float_format="%.0f")
        tmp.replace(path)
    return path
