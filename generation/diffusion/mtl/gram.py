"""The Gram matrix G^T G of the task gradients, checked and symmetrised once for both MTL methods.

Why one place: Nash-MTL (``nash.py``) and Aligned-MTL (``aligned.py``) both start from the K x K Gram matrix of
the K task gradients over the shared parameters (``combine.shared_gradients``); both need it finite and
square, and both treat it as symmetric (float round-off can make G^T G very slightly asymmetric).
"""
from __future__ import annotations

import numpy as np

from encoders.errors import DanceSearchError


def checked_gram(gram: np.ndarray, method: str) -> np.ndarray:
    """(K, K) float64, symmetrised; a non-square or non-finite matrix is refused naming ``method``."""
    m = np.asarray(gram, dtype=np.float64)
    if m.ndim != 2 or m.shape[0] != m.shape[1] or not np.isfinite(m).all():
        raise DanceSearchError(f"{method} needs a finite square Gram matrix, got shape {m.shape}")
    return 0.5 * (m + m.T)


__all__ = ["checked_gram"]
