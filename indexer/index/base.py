"""The vector index interface every backend (FAISS, Milvus) implements.

Vectors are L2-normalised embeddings, so the inner product is the cosine similarity; ids are
catalog clip ids.  A search returns, per query, up to ``k`` (id, score) pairs best first; with a
filter it returns ``min(k, number of clips matching the filter)`` results (backends must not
lose results to post-filtering).
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from .filters import ClipAttributes, ClipFilter

IndexKind = Literal["flat", "hnsw", "ivfpq"]
KINDS: tuple[str, ...] = ("flat", "hnsw", "ivfpq")
BACKENDS: tuple[str, ...] = ("faiss", "milvus")

AUTO_HNSW_THRESHOLD = 100_000
"""Below this many clips ``auto`` picks exact search (flat): it is fast enough and exact."""
AUTO_IVF_THRESHOLD = 500_000
"""From this many clips ``auto`` picks ``ivfpq`` (SQ8 codes, exact re-ranking) instead of HNSW.

Measured on the model's own embeddings grown to 1M (bench/README.md, index_model_v2_1m_*.json): HNSW
M32 reached only recall@10 0.948 even at efSearch 4096 (p50 ~20 ms), while IVF-SQ8 tuned to 0.98 gave
0.993-0.995 at ~1.5 ms in a quarter of the memory. At 100k both pass, so HNSW stays the choice there."""


def auto_kind(n: int) -> str:
    """The index kind ``--kind auto`` picks for ``n`` clips: flat, then hnsw, then ivfpq (see thresholds)."""
    if n < AUTO_HNSW_THRESHOLD:
        return "flat"
    return "hnsw" if n < AUTO_IVF_THRESHOLD else "ivfpq"


@dataclass
class Hits:
    """Search results for a batch of queries: ``ids`` / ``scores`` of shape (Q, k), padded with -1 / -inf."""

    ids: np.ndarray
    scores: np.ndarray

    def row(self, q: int) -> list[tuple[int, float]]:
        """The valid (id, score) pairs of query ``q``, best first."""
        keep = self.ids[q] >= 0
        return list(zip(self.ids[q][keep].tolist(), self.scores[q][keep].tolist()))

    @staticmethod
    def empty(nq: int, k: int) -> "Hits":
        return Hits(np.full((nq, k), -1, dtype=np.int64), np.full((nq, k), -np.inf, dtype=np.float32))


def normalise(x: np.ndarray) -> np.ndarray:
    """Row-wise L2 normalisation (float32, contiguous), so inner product = cosine."""
    x = np.ascontiguousarray(np.asarray(x, dtype=np.float32))
    if x.ndim == 1:
        x = x[None, :]
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return np.ascontiguousarray(x / np.maximum(norms, 1e-12), dtype=np.float32)


class VectorIndex(ABC):
    """A searchable set of (clip id, vector, attributes)."""

    backend: str
    kind: str
    dim: int

    @abstractmethod
    def __len__(self) -> int:
        """Number of vectors."""

    @abstractmethod
    def add(self, vectors: np.ndarray, attrs: ClipAttributes) -> None:
        """Add vectors (N, D) with their attributes (whose ``ids`` are the clip ids); ids must be new."""

    @abstractmethod
    def search(self, queries: np.ndarray, k: int, flt: ClipFilter | None = None) -> Hits:
        """Top-``k`` clips by cosine for each query (Q, D), restricted to ``flt``."""

    @abstractmethod
    def count(self, flt: ClipFilter | None = None) -> int:
        """How many clips match ``flt`` (all clips when None)."""

    @abstractmethod
    def vectors_for(self, ids: np.ndarray) -> np.ndarray:
        """The stored vectors of ``ids`` (N, D); raises KeyError for an unknown id."""

    @abstractmethod
    def ids(self) -> np.ndarray:
        """All clip ids in the index."""

    @abstractmethod
    def attributes(self) -> ClipAttributes:
        """All attributes (aligned with :meth:`ids`)."""

    def contains(self, clip_id: int) -> bool:
        return bool(np.any(self.ids() == clip_id))

    def describe(self) -> dict[str, Any]:
        """Backend parameters for the manifest and ``index build --json``."""
        return {"backend": self.backend, "kind": self.kind, "dim": self.dim, "count": len(self)}

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections (Milvus); FAISS has nothing to release."""
