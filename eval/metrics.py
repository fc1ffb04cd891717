"""Retrieval metrics of DanceSearch: R@1, R@5, R@10 (percent), MedR, MnR, and chance level.

Protocol ("full gallery", the paper's 5.2): every caption of every clip in the split is one query;
its only positive is the clip it was written for; the gallery is *every* clip of the split (clips
without captions included, as distractors), ranked by cosine similarity.

Tie handling is **pessimistic**: rank = 1 + number of other gallery clips scored >= the positive,
so ties count against the model (a constant scorer gets rank N, not 1), and R@K is a lower bound.
This matches ``eval.protocols`` (its default ``ties="pessimistic"``).
Edge cases: K >= gallery size makes R@K 100 % (every rank is <= N); a gallery of one clip gives
rank 1 for every query; MedR of an even number of queries may be x.5.

The computation itself lives in ``encoders.training.ranking`` because the trainer validates with it
every epoch and ``encoders`` may not import ``eval``; this module is its public face.
"""
from __future__ import annotations

from encoders.training.ranking import (DEFAULT_KS, chance_metrics, metrics_from_ranks, positive_ranks,
                                       retrieval_metrics)

FULL_GALLERY_PROTOCOL = ("full gallery: every caption of the split is a query, its clip the only positive, "
                         "all clips of the split the gallery; cosine similarity; pessimistic ties")

METRIC_KEYS: tuple[str, ...] = ("R@1", "R@5", "R@10", "MedR", "MnR")

__all__ = ["DEFAULT_KS", "FULL_GALLERY_PROTOCOL", "METRIC_KEYS", "chance_metrics", "metrics_from_ranks",
           "positive_ranks", "retrieval_metrics", "markdown_row"]


def markdown_row(name: str, metrics: dict[str, float]) -> str:
    """``| name | R@1 | R@5 | R@10 | MedR | MnR |``: R@K (percent) and MnR with two decimals, MedR with one."""
    cells = [f"{metrics[k]:.1f}" if k == "MedR" else f"{metrics[k]:.2f}" for k in METRIC_KEYS]
    return "| " + " | ".join([name, *cells]) + " |"
