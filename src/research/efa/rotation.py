"""Factor rotations that reproduce R: ``stats::varimax``, ``GPArotation::oblimin`` and ``psych::Promax``.

The algorithms are re-implemented from the R sources (R 4.2.2 ``stats::varimax``; GPArotation 2022.10-2
``GPFoblq`` with ``vgQ.oblimin``; psych 2.2.9 ``Promax`` and ``kaiser``) because factor-analyzer's rotator
uses different defaults and stopping rules (e.g. its oblimin normalises rows and its promax is
``stats::promax`` without psych's Kaiser step), which moves loadings by more than 1e-3.

Every function takes an unrotated loading matrix ``A`` (items x factors, numpy array) and returns a
:class:`Rotation` with the rotated pattern, the factor correlations ``phi`` (identity for orthogonal
rotations) and convergence information.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["Rotation", "rotate_loadings", "varimax", "oblimin", "promax"]


@dataclass(frozen=True)
class Rotation:
    """Result of a rotation.

    Attributes
    ----------
    loadings
        Rotated pattern matrix (items x factors).
    phi
        Factor correlation matrix (identity for orthogonal rotations).
    rotmat
        The transformation ``T`` with ``loadings = A @ T`` (orthogonal) or ``A @ inv(T).T`` (oblique,
        GPArotation's ``Th``); for promax the matrix ``U`` with ``loadings = A @ U``.
    converged
        Whether the rotation criterion met its tolerance.
    iterations
        Number of iterations used.
    orthogonal
        True for varimax and no rotation.
    """

    loadings: np.ndarray
    phi: np.ndarray
    rotmat: np.ndarray
    converged: bool
    iterations: int
    orthogonal: bool


def varimax(A: np.ndarray, *, normalize: bool = True, eps: float = 1e-5, max_iter: int = 1000) -> Rotation:
    """Varimax rotation exactly as R's ``stats::varimax`` (Kaiser normalisation, ``eps = 1e-5``).

    Rows are scaled to unit length (Kaiser, 1958), then the rotation ``T`` is found by the SVD
    iteration ``B = X'(Z^3 - Z diag(colSums(Z^2))/p)``, ``T = U V'`` until the sum of singular values
    grows by less than a factor ``1 + eps``.

    References
    ----------
    Kaiser, H. F. (1958). The varimax criterion for analytic rotation in factor analysis.
    *Psychometrika*, 23, 187-200. R source: ``src/library/stats/R/factanal.R``.
    """
    x = np.asarray(A, dtype=float)
    p, k = x.shape
    if k < 2:
        return Rotation(x.copy(), np.eye(k), np.eye(k), True, 0, True)
    scale = np.sqrt((x ** 2).sum(axis=1)) if normalize else np.ones(p)
    x = x / scale[:, None]
    T = np.eye(k)
    d = 0.0
    converged = False
    iteration = 0
    while iteration < max_iter:
        iteration += 1
        z = x @ T
        B = x.T @ (z ** 3 - z * (z ** 2).sum(axis=0) / p)
        u, s, vt = np.linalg.svd(B)
        T = u @ vt
        d_past, d = d, s.sum()
        if d < d_past * (1 + eps):
            converged = True
            break
    loadings = (x @ T) * scale[:, None]
    return Rotation(loadings, np.eye(k), T, converged, iteration, True)


def _oblimin_criterion(L: np.ndarray, gamma: float) -> tuple[float, np.ndarray]:
    """GPArotation ``vgQ.oblimin``: value ``f`` and gradient ``Gq`` of the oblimin criterion."""
    k = L.shape[1]
    X = (L ** 2) @ (1.0 - np.eye(k))
    if gamma != 0:
        p = L.shape[0]
        X = (np.eye(p) - gamma / p) @ X
    return float(np.sum(L ** 2 * X) / 4.0), L * X


def oblimin(A: np.ndarray, *, gamma: float = 0.0, eps: float = 1e-5, max_iter: int = 1000) -> Rotation:
    """Direct oblimin rotation by gradient projection, as ``GPArotation::oblimin`` (``GPFoblq``).

    Defaults are GPArotation's, which psych's ``fa(rotate = "oblimin")`` uses: ``gam = 0`` (quartimin),
    ``normalize = FALSE``, ``eps = 1e-5``, ``maxit = 1000``, start ``Tmat = I``.
    ``loadings = A inv(T)'`` and ``phi = T'T``.

    References
    ----------
    Bernaards, C. A., & Jennrich, R. I. (2005). Gradient projection algorithms and software for
    arbitrary rotation criteria in factor analysis. *Educational and Psychological Measurement*, 65,
    676-696. Jennrich, R. I. (2002). A simple general method for oblique rotation. *Psychometrika*, 67, 7-19.
    """
    A = np.asarray(A, dtype=float)
    k = A.shape[1]
    if k < 2:
        return Rotation(A.copy(), np.eye(k), np.eye(k), True, 0, False)
    T = np.eye(k)
    alpha = 1.0
    L = A @ np.linalg.inv(T).T
    f, Gq = _oblimin_criterion(L, gamma)
    G = -(L.T @ Gq @ np.linalg.inv(T)).T
    converged = False
    iteration = -1
    while iteration < max_iter:
        iteration += 1
        Gp = G - T @ np.diag(np.sum(T * G, axis=0))
        s = np.sqrt(np.sum(Gp ** 2))
        if s < eps:
            converged = True
            break
        alpha *= 2
        for _ in range(11):
            X = T - alpha * Gp
            T_new = X / np.sqrt(np.sum(X ** 2, axis=0))
            L = A @ np.linalg.inv(T_new).T
            f_new, Gq = _oblimin_criterion(L, gamma)
            if f - f_new > 0.5 * s ** 2 * alpha:
                break
            alpha /= 2
        T = T_new
        f = f_new
        G = -(L.T @ Gq @ np.linalg.inv(T_new)).T
    L = A @ np.linalg.inv(T).T
    return Rotation(L, T.T @ T, T, converged, iteration, False)


def promax(A: np.ndarray, *, m: float = 4.0, eps: float = 1e-5) -> Rotation:
    """Promax as psych 2.2.9 ``fa(rotate = "promax")``: ``kaiser(A, rotate = "Promax")``.

    Rows of ``A`` are divided by ``sqrt(h2)``, psych's ``Promax`` is applied (varimax, target
    ``Q = X |X|^(m-1)``, least-squares ``U``, columns rescaled by ``sqrt(diag(inv(U'U)))``,
    ``phi = inv(U) inv(U)'`` with ``U`` including the varimax rotation), and the rows are scaled back.

    References
    ----------
    Hendrickson, A. E., & White, P. O. (1964). Promax: a quick method for rotation to oblique simple
    structure. *British Journal of Statistical Psychology*, 17, 65-70. psych source ``R/Promax.R``,
    ``R/kaiser.R``.
    """
    A = np.asarray(A, dtype=float)
    k = A.shape[1]
    if k < 2:
        return Rotation(A.copy(), np.eye(k), np.eye(k), True, 0, False)
    h = np.sqrt((A ** 2).sum(axis=1))
    x0 = A / h[:, None]
    vm = varimax(x0, eps=eps)
    x = vm.loadings
    Q = x * np.abs(x) ** (m - 1)
    U = np.linalg.lstsq(x, Q, rcond=None)[0]
    d = np.diag(np.linalg.inv(U.T @ U))
    U = U * np.sqrt(d)[None, :]
    z = x @ U
    U_total = vm.rotmat @ U
    ui = np.linalg.inv(U_total)
    phi = ui @ ui.T
    return Rotation(z * h[:, None], phi, U_total, vm.converged, vm.iterations, False)


def rotate_loadings(A: np.ndarray, rotation: str) -> Rotation:
    """Dispatch to :func:`varimax`, :func:`oblimin`, :func:`promax` or no rotation (``"none"``)."""
    if rotation == "varimax":
        return varimax(A)
    if rotation == "oblimin":
        return oblimin(A)
    if rotation == "promax":
        return promax(A)
    k = np.asarray(A).shape[1]
    return Rotation(np.asarray(A, dtype=float).copy(), np.eye(k), np.eye(k), True, 0, True)
