"""GCRM selection (FineNet eq. 5-6): for each segment, the candidate maximising alpha * GS + beta * CS.

Pure functions on score arrays, so the rule can be tested on constructed cases and reused by any
candidate source:

- ``gs``: (N, M) genre-matching scores of M candidates for each of N segments (eq. 3);
- ``starts`` / ``ends``: (N, M, D) pose descriptors of each candidate's first / last kept frame
  (``junction.pose_descriptor``);
- CS of segment 1 is 0; CS of candidate i at segment t is -|| end(chosen at t-1) - start(i at t) || (eq. 5);
- ``idx_t = argmax_i alpha GS_i^t + beta CS_i^t`` (eq. 6), greedily, segment by segment.

Several dances come from different first choices (FineNet: "by choosing different Y^1 at step 1"): dance
k starts with the k-th best first-segment candidate by alpha * GS, then follows eq. 6.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

ALPHA = 1.0
BETA = 0.5


@dataclass
class Selection:
    indices: list[int]                     # chosen candidate per segment
    gs: list[float]                        # its GS
    cs: list[float]                        # its CS (0 for the first segment)
    score: list[float]                     # alpha * GS + beta * CS
    first_rank: int = 0                    # rank of the first choice among the first segment's candidates
    per_segment: list[dict] = field(default_factory=list)


def coherence_matrix(prev_end: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """(D,) end of the previous choice, (M, D) candidate starts -> (M,) CS (eq. 5)."""
    return -np.linalg.norm(np.asarray(starts, dtype=np.float64) - np.asarray(prev_end, dtype=np.float64)[None], axis=1)


def select(gs: np.ndarray, starts: np.ndarray, ends: np.ndarray, alpha: float = ALPHA, beta: float = BETA,
           first: int | None = None, valid: np.ndarray | None = None) -> Selection:
    """Greedy eq. 6 over N segments. ``first``: force the first segment's choice (index); ``valid``: (N, M)
    mask of candidates that exist (segments may have fewer)."""
    gs = np.asarray(gs, dtype=np.float64)
    n, m = gs.shape
    valid = np.ones((n, m), dtype=bool) if valid is None else np.asarray(valid, dtype=bool)
    if not valid.any(axis=1).all():
        raise ValueError("every segment needs at least one candidate")
    out = Selection([], [], [], [])
    prev = None
    for t in range(n):
        cs = np.zeros(m) if prev is None else coherence_matrix(ends[t - 1][prev], starts[t])
        total = alpha * gs[t] + beta * cs
        total = np.where(valid[t], total, -np.inf)
        if t == 0 and first is not None:
            if not valid[0, first]:
                raise ValueError(f"first choice {first} is not a valid candidate")
            i = int(first)
        else:
            i = int(np.argmax(total))
        out.indices.append(i)
        out.gs.append(float(gs[t, i]))
        out.cs.append(float(cs[i]))
        out.score.append(float(total[i]))
        out.per_segment.append({"gs": gs[t].tolist(), "cs": cs.tolist(), "total": np.where(valid[t], total, np.nan).tolist()})
        prev = i
    return out


def select_many(gs: np.ndarray, starts: np.ndarray, ends: np.ndarray, dances: int = 1, alpha: float = ALPHA,
                beta: float = BETA, valid: np.ndarray | None = None) -> list[Selection]:
    """``dances`` selections with distinct first choices: the best, second best, ... first segment by alpha * GS."""
    gs = np.asarray(gs, dtype=np.float64)
    valid0 = np.ones(gs.shape[1], bool) if valid is None else np.asarray(valid, bool)[0]
    order = [int(i) for i in np.argsort(-np.where(valid0, alpha * gs[0], -np.inf), kind="stable") if valid0[i]]
    out = []
    for rank, first in enumerate(order[:max(1, dances)]):
        sel = select(gs, starts, ends, alpha, beta, first=first, valid=valid)
        sel.first_rank = rank
        out.append(sel)
    return out
