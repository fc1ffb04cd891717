"""Rank-based retrieval metrics (R@K, MedR, MnR), shared by training validation and ``eval``.

Lives in ``encoders`` because the trainer validates every epoch and may not import ``eval`` (a
higher layer); ``eval.metrics`` re-exports it with the evaluation protocol around it.

Conventions (each query has exactly one positive in the gallery):
- rank = 1 + number of *other* gallery items scored >= the positive ("pessimistic" tie handling:
  a tie is resolved against the model, so a constant scorer gets rank N, never a lucky rank 1);
- R@K = percentage of queries with rank <= K; when K >= gallery size every query counts (100 %);
- MedR = median rank (may be x.5 for an even number of queries); MnR = mean rank; both 1-based.
"""
from __future__ import annotations

import numpy as np

DEFAULT_KS: tuple[int, ...] = (1, 5, 10)


def positive_ranks(similarity: np.ndarray, positives: np.ndarray) -> np.ndarray:
    """1-based pessimistic rank of each query's positive; ``similarity`` (Q, N), ``positives`` (Q,) ints."""
    sim = np.asarray(similarity, dtype=np.float64)
    pos = np.asarray(positives, dtype=np.int64)
    if sim.ndim != 2 or pos.shape != (sim.shape[0],):
        raise ValueError(f"similarity must be (Q, N) and positives (Q,), got {sim.shape} and {pos.shape}")
    if sim.shape[1] == 0:
        raise ValueError("empty gallery")
    if len(pos) and (pos.min() < 0 or pos.max() >= sim.shape[1]):
        raise ValueError("positive index outside the gallery")
    if not np.isfinite(sim).all():
        raise ValueError("similarity contains NaN or infinite values")
    pos_score = sim[np.arange(len(pos)), pos][:, None]
    return (sim >= pos_score).sum(axis=1).astype(np.int64)  # counts the positive itself: 1 + others >=


def metrics_from_ranks(ranks: np.ndarray, gallery_size: int, ks: tuple[int, ...] = DEFAULT_KS) -> dict[str, float]:
    """R@K (percent), MedR, MnR and the counts behind them."""
    ranks = np.asarray(ranks, dtype=np.float64)
    if len(ranks) == 0:
        raise ValueError("no queries")
    out: dict[str, float] = {f"R@{k}": float(100.0 * np.mean(ranks <= k)) for k in ks}
    out["MedR"] = float(np.median(ranks))
    out["MnR"] = float(np.mean(ranks))
    out["gallery_size"] = int(gallery_size)
    out["num_queries"] = int(len(ranks))
    return out


def retrieval_metrics(similarity: np.ndarray, positives: np.ndarray, ks: tuple[int, ...] = DEFAULT_KS) -> dict[str, float]:
    return metrics_from_ranks(positive_ranks(similarity, positives), np.asarray(similarity).shape[1], ks)


def chance_metrics(gallery_size: int, ks: tuple[int, ...] = DEFAULT_KS) -> dict[str, float]:
    """Expected metrics of a random ranking (uniform rank in 1..N): R@K = min(K, N) / N, MedR = MnR = (N + 1) / 2."""
    n = int(gallery_size)
    if n < 1:
        raise ValueError("gallery_size must be >= 1")
    out: dict[str, float] = {f"R@{k}": 100.0 * min(k, n) / n for k in ks}
    out["MedR"] = (n + 1) / 2
    out["MnR"] = (n + 1) / 2
    out["gallery_size"] = n
    return out
