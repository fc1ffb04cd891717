"""The genre code the denoiser's FiLM adapter reads: the prompt embeddings as they are, or whitened over the genre set.

GCDance feeds the text embedding of "This is a {genre} type of music." through an adapter into FiLM (eq. 3-4).
The prompts differ in one word, so their embeddings share most of their direction: with MiniLM the 18 demo
genres' prompts sit at cosine 0.49-0.80 of each other (each one's nearest other at 0.67-0.80), and the shared
mean (norm 0.80) outweighs each genre's own part (mean norm 0.60). On v3, trained on those embeddings
(``bench/probe_genre_code.py``, ``bench/results/genre_code_probe.json``), the genres the control test misses are
the ones whose trained adapter output carries little of its own: per-genre control rises with the norm of the
output about the genres' mean (Spearman 0.60, p 0.008; Dai and Han-Tang, 1.6-1.7, are read as their genre in
22-28% of items, krump and tango, 6.1-6.6, in 94-100%), and some misses follow the closest pairs of outputs: Miao
beside hip-hop (cosine 0.94; Miao windows are labelled hip-hop or breaking, ``bench/results/control_gap_v3.json``),
K-pop beside urban and popping (0.88, 0.85; K-pop windows are labelled popping), though the nearest-pair cosine
alone does not predict control across genres (Spearman -0.20). v7, the same recipe with this code, is the
shipped model: control 54.6% against v3's 49.1% (docs/results/generation.md).

``whitened`` removes that handicap before training: the embeddings are centred on their mean and whitened in the
span of the genre set, then scaled to unit norm, so with G distinct prompts they form a regular simplex (every
pair at cosine -1/(G-1)) expressed in the backbone's own E dimensions. It is a fixed linear map of the prompt
embeddings (nothing is learned, nothing depends on the motion), so the adapter keeps its shape and the run keeps
the table it samples with (``RUN/genre_embeddings.npy`` holds the coded table). Only the generator's own genres
reach this table: free text goes through the genre classifier to one of them (``generation.genre``), so no
unseen prompt needs the text geometry the whitening discards.
"""
from __future__ import annotations

import numpy as np

from encoders.errors import DanceSearchError

GENRE_CODES = ("prompt", "whitened")


def check_genre_code(code: str) -> None:
    """Refuses a ``code`` outside ``GENRE_CODES`` (``TrainConfig`` checks it before any data is read)."""
    if code not in GENRE_CODES:
        raise DanceSearchError(f"unknown genre_code {code!r}: one of {', '.join(GENRE_CODES)}")


def whiten_genre_embeddings(embeddings: np.ndarray, rank_tolerance: float = 1e-6) -> np.ndarray:
    """(G, E) -> (G, E): centred, whitened in the span of the distinct embeddings, every row of unit norm.

    With k distinct embeddings spanning k-1 dimensions (k <= E + 1) the distinct codes form a regular simplex:
    every pair at cosine -1/(k-1). Genres that share a prompt share a code. Directions whose singular value is
    below ``rank_tolerance`` times the largest are dropped; a set whose spread is below ``rank_tolerance`` of the
    embeddings' own scale is refused (its prompts cannot tell the genres apart).
    """
    emb = np.asarray(embeddings, dtype=np.float64)
    if emb.ndim != 2 or emb.shape[0] < 2:
        raise DanceSearchError(f"genre embeddings: expected (G >= 2, E), got shape {emb.shape}")
    if not np.all(np.isfinite(emb)):
        raise DanceSearchError("genre embeddings contain NaN or infinite values")
    distinct, which = np.unique(emb, axis=0, return_inverse=True)
    centred = distinct - distinct.mean(axis=0, keepdims=True)
    u, s, vt = np.linalg.svd(centred, full_matrices=False)
    if len(distinct) < 2 or s[0] <= rank_tolerance * np.abs(emb).max():
        raise DanceSearchError("genre embeddings are all identical: the prompts cannot tell the genres apart")
    keep = s > rank_tolerance * s[0]
    whitened = u[:, keep] @ vt[keep]
    whitened /= np.linalg.norm(whitened, axis=1, keepdims=True)
    return whitened[np.ravel(which)].astype(np.float32)


def genre_code(embeddings: np.ndarray, code: str) -> np.ndarray:
    """The (G, E) table the denoiser is conditioned on, for ``code`` in ``GENRE_CODES``."""
    check_genre_code(code)
    if code == "whitened":
        return whiten_genre_embeddings(embeddings)
    return np.asarray(embeddings, dtype=np.float32)
