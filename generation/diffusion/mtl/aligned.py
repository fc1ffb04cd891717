"""Aligned-MTL task weights (GCDance Algorithm 2, eq. 12-13; Senushkin et al. 2023).

The aligned gradient matrix G_hat = sqrt(lambda_R) G V Sigma^-1 V^T has orthogonal columns of equal
norm sqrt(lambda_R) (the smallest kept eigenvalue of M = G^T G): the system's condition number
becomes 1, so no task dominates or cancels another. The update is G_hat w = G (B w), so the method
reduces to task weights alpha = B w with B = sqrt(lambda_R) V Sigma^-1 V^T, computed from the K x K
matrix M alone. Eigenvalues below ``rel_tol`` of the largest are dropped (a pseudo-inverse), so linearly
dependent task gradients do not blow up B (R is then the rank).
"""
from __future__ import annotations

import numpy as np

from encoders.errors import DanceSearchError

from .gram import checked_gram


def aligned_weights(gram: np.ndarray, importance: np.ndarray | None = None, rel_tol: float = 1e-10) -> np.ndarray:
    """alpha = B w for a (K, K) Gram matrix G^T G and task importance ``w`` (default all ones)."""
    m = checked_gram(gram, "Aligned-MTL")
    k = len(m)
    w = np.ones(k) if importance is None else np.asarray(importance, dtype=np.float64)
    if w.shape != (k,):
        raise DanceSearchError(f"Aligned-MTL: {k} tasks but {w.shape} importance weights")
    lam, v = np.linalg.eigh(m)
    if lam.max() <= 0:
        return w.copy()                        # every gradient is zero
    keep = lam > rel_tol * lam.max()
    lam, v = lam[keep], v[:, keep]
    b = np.sqrt(lam.min()) * (v / np.sqrt(lam)) @ v.T
    return b @ w
