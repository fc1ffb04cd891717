"""Bootstrap 95% confidence intervals for retrieval metrics, resampling queries.

Why: test galleries in dance retrieval are small (hundreds of clips), so a one-point difference in
R@1 between two variants is often noise. Resampling the *queries* with replacement (the gallery stays
fixed, ranks are not recomputed) gives a percentile interval for each metric at the cost of a few
milliseconds: ranks are computed once, every replicate only re-aggregates them.

Grouped metrics (the batch-of-32 protocol averages per batch) are resampled by *group*, so the
interval reflects the same averaging as the point estimate.
"""
from __future__ import annotations

from typing import Callable, Mapping

import numpy as np

DEFAULT_REPLICATES = 1000
DEFAULT_SEED = 0
CONFIDENCE = 0.95


def bootstrap_ci(ranks: np.ndarray, summarize: Callable[[np.ndarray], Mapping[str, float]],
                 n_boot: int = DEFAULT_REPLICATES, seed: int = DEFAULT_SEED,
                 groups: np.ndarray | None = None,
                 confidence: float = CONFIDENCE) -> dict[str, list[float]]:
    """Percentile bootstrap interval ``{metric: [lo, hi]}`` of ``summarize(ranks)``.

    ``ranks`` holds one rank per query. ``summarize`` maps a rank vector to metrics (the same
    function that produced the point estimate). With ``groups`` (one label per query), whole groups are
    resampled and each replicate's metrics are the mean of the per-group metrics. ``n_boot <= 0``
    returns ``{}`` (intervals switched off). Deterministic for a given ``seed``.
    """
    ranks = np.asarray(ranks, dtype=np.float64)
    if n_boot <= 0 or ranks.size == 0:
        return {}
    rng = np.random.default_rng(seed)
    alpha = (1.0 - confidence) / 2.0
    if groups is None:
        n = ranks.size
        samples: dict[str, list[float]] = {}
        for _ in range(n_boot):
            idx = rng.integers(0, n, size=n)
            for key, value in summarize(ranks[idx]).items():
                samples.setdefault(key, []).append(float(value))
    else:
        groups = np.asarray(groups)
        labels = np.unique(groups)
        per_group = [summarize(ranks[groups == g]) for g in labels]
        keys = list(per_group[0].keys())
        table = np.array([[float(m[k]) for k in keys] for m in per_group])  # (n_groups, n_metrics)
        samples = {k: [] for k in keys}
        for _ in range(n_boot):
            idx = rng.integers(0, len(labels), size=len(labels))
            means = table[idx].mean(axis=0)
            for k, v in zip(keys, means):
                samples[k].append(float(v))
    out: dict[str, list[float]] = {}
    for key, values in samples.items():
        arr = np.asarray(values)
        out[key] = [float(np.quantile(arr, alpha)), float(np.quantile(arr, 1.0 - alpha))]
    return out


def paired_difference_ci(ranks_a: np.ndarray, ranks_b: np.ndarray,
                         summarize: Callable[[np.ndarray], Mapping[str, float]],
                         n_boot: int = DEFAULT_REPLICATES, seed: int = DEFAULT_SEED,
                         confidence: float = CONFIDENCE) -> dict[str, dict[str, float]]:
    """``{metric: {"diff": a - b, "lo": .., "hi": ..}}``: paired percentile bootstrap of a metric difference.

    Why paired: two models answer the *same* queries, so the question "is A better than B?" is about
    the per-query differences, whose spread is far smaller than either model's own interval (two
    overlapping per-model intervals do not mean "no difference"). Each replicate draws one set of
    query indices and applies it to both rank vectors (same order, same queries required). An
    interval that excludes 0 says the difference is not query-sampling noise at this confidence; it
    says nothing about training-seed noise.

    Ranks may also be (seeds, queries) arrays (``eval.seeds``): the queries (last axis) are resampled,
    one draw for every seed, and ``summarize`` receives the whole resampled array.
    """
    a = np.asarray(ranks_a, dtype=np.float64)
    b = np.asarray(ranks_b, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"paired ranks must cover the same queries: {a.shape} vs {b.shape}")
    point_a, point_b = summarize(a), summarize(b)
    out = {k: {"diff": float(point_a[k]) - float(point_b[k])} for k in point_a}
    n = a.shape[-1] if a.ndim else 0
    if n_boot <= 0 or a.size == 0:
        return out
    rng = np.random.default_rng(seed)
    alpha = (1.0 - confidence) / 2.0
    samples: dict[str, list[float]] = {k: [] for k in point_a}
    for _ in range(n_boot):
        idx = rng.integers(0, n, size=n)
        ma, mb = summarize(a[..., idx]), summarize(b[..., idx])
        for k in samples:
            samples[k].append(float(ma[k]) - float(mb[k]))
    for k, values in samples.items():
        arr = np.asarray(values)
        out[k]["lo"] = float(np.quantile(arr, alpha))
        out[k]["hi"] = float(np.quantile(arr, 1.0 - alpha))
    return out
