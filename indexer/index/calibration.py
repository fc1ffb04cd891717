"""The no-match threshold, calibrated on the val split.

How: every caption of a val clip that is in the index is encoded as a query; its score against
its own clip is a *matched* score, its scores against every other val clip are *mismatched*.
The threshold is the ``percentile``-th percentile (default 10) of the matched scores: 90% of real
descriptions score at least that much on the clip they describe, so a query whose best result
scores lower than that is unlike anything in the corpus (``no_match: true``).  The manifest also
records the mismatched distribution and the rate at which mismatched pairs clear the threshold
(``false_match_rate``) so the choice can be judged.  With fewer than 2 captioned val clips the
test split is used, then all captioned clips; with none, there is no threshold (``no_match`` is
then true only for empty results).
"""
from __future__ import annotations

from typing import Any

import numpy as np

from .base import VectorIndex
from .embedder import Embedder, encode_queries

DEFAULT_PERCENTILE = 10.0
MAX_PAIRS = 4_000  # captions used (randomly sampled beyond this) so calibration stays seconds


def calibrate(embedder: Embedder, index: VectorIndex, captions_by_clip: dict[str, dict[int, list[str]]],
              percentile: float = DEFAULT_PERCENTILE, seed: int = 0) -> dict[str, Any]:
    """Threshold and statistics; ``captions_by_clip`` maps split name -> clip id -> caption texts."""
    indexed = set(index.ids().tolist())
    chosen, pairs = None, []
    for split in ("val", "test", "all"):
        caps = captions_by_clip.get(split, {})
        clips = [cid for cid, texts in caps.items() if texts and cid in indexed]
        if len(clips) >= 2:
            chosen = split
            pairs = [(t, cid) for cid in clips for t in caps[cid]]
            break
    if chosen is None:
        return {"threshold": None, "method": "none: fewer than 2 captioned clips", "percentile": percentile}
    rng = np.random.default_rng(seed)
    if len(pairs) > MAX_PAIRS:
        pairs = [pairs[i] for i in sorted(rng.choice(len(pairs), MAX_PAIRS, replace=False))]
    clip_ids = np.asarray(sorted({cid for _, cid in pairs}), dtype=np.int64)
    col = {int(c): i for i, c in enumerate(clip_ids)}
    clip_vecs = index.vectors_for(clip_ids)
    texts = [t for t, _ in pairs]
    text_vecs = np.concatenate([encode_queries(embedder, texts[s:s + 256]) for s in range(0, len(texts), 256)])
    scores = text_vecs @ clip_vecs.T
    own = np.asarray([col[cid] for _, cid in pairs])
    matched = scores[np.arange(len(pairs)), own]
    mask = np.ones_like(scores, dtype=bool)
    mask[np.arange(len(pairs)), own] = False
    mismatched = scores[mask]
    threshold = float(np.percentile(matched, percentile))
    q = lambda a, p: float(np.percentile(a, p)) if len(a) else None  # noqa: E731
    return {
        "threshold": round(threshold, 6),
        "method": f"p{percentile:g} of matched (caption, own clip) scores on the {chosen} split",
        "percentile": percentile,
        "split": chosen,
        "pairs": len(pairs),
        "clips": int(len(clip_ids)),
        "matched": {"p10": q(matched, 10), "p50": q(matched, 50), "p90": q(matched, 90)},
        "mismatched": {"p50": q(mismatched, 50), "p90": q(mismatched, 90), "p99": q(mismatched, 99)},
        "false_match_rate": float((mismatched >= threshold).mean()) if len(mismatched) else None,
    }
