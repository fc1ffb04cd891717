"""The part of ``encoders.api.DanceEmbedder`` the index layer relies on, as a typing Protocol, and a
bounded cache of query embeddings.

Written down here so the index, the builder and the search engine state exactly what they need
from a model (and tests can check a second implementation against the same contract).
"""
from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any, Protocol, Sequence, runtime_checkable

import numpy as np


@runtime_checkable
class Embedder(Protocol):
    """Text and dance encoders into one L2-normalised space of dimension ``dim``."""

    model_id: str
    dim: int

    def encode_text(self, texts: list[str]) -> np.ndarray:
        """(N, dim) float32, L2-normalised."""

    def encode_dances(self, items: Sequence[Any]) -> np.ndarray:
        """(N, dim) float32, L2-normalised, for ``encoders.api.DanceInput`` items."""


def encode_queries(embedder: Any, texts: Sequence[str]) -> np.ndarray:
    """Query vectors as the search engine computes them: ``encode_query`` (jargon expansion, see
    ``encoders.api.DanceEmbedder.encode_query``) when the embedder has it, else ``encode_text``.

    Everything fitted on query vectors (the score threshold, the query gate) goes through here too,
    so it is fitted on the vectors it will judge."""
    encode = getattr(embedder, "encode_query", None) or embedder.encode_text
    return np.asarray(encode(list(texts)), dtype=np.float32)


def load_embedder(run_dir: str | None = None, text_encoder: str = "full", query_expansion: bool = True) -> Embedder:
    """``DanceEmbedder.from_run(run_dir)``; ``None`` loads the shipped demo model (``models/demo``);
    ``text_encoder="fast"`` answers queries with the run's distilled fast encoder; ``query_expansion``
    False encodes queries exactly as typed."""
    from encoders.api import DEFAULT_RUN_DIR, DanceEmbedder
    from encoders.errors import InputError

    path = run_dir or DEFAULT_RUN_DIR
    from pathlib import Path

    if not Path(path).exists():
        raise InputError(str(path), "no trained model here", field="--run",
                         expected="a run folder written by `dancesearch train` (or the shipped models/demo)",
                         got="missing folder")
    return DanceEmbedder.from_run(path, text_encoder=text_encoder, query_expansion=query_expansion)


def query_key(text: str) -> str:
    """The cache key of a query text: surrounding and repeated whitespace removed.

    Only whitespace is folded: every supported backbone's tokenizer splits on it, so the folded
    text encodes to the very same tokens.  Case is kept, because whether a backbone lower-cases
    is its own business (MiniLM and CLIP do, a future one may not).
    """
    return " ".join(text.split())


class TextEmbeddingCache:
    """A bounded, thread-safe LRU of query embeddings keyed by (model id, :func:`query_key`).

    Real search traffic repeats itself (popular queries, UI refinements re-sending the same text),
    and a cached vector skips the text encoder, the most expensive step of a search on a CPU.  The
    model id in the key means a cache can outlive a model reload without ever answering with a
    vector from another model.  ``hits`` / ``misses`` count lookups since creation (for metrics).
    """

    def __init__(self, max_entries: int = 1024) -> None:
        self.max_entries = int(max_entries)
        self._items: OrderedDict[tuple[str, str], np.ndarray] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._items)

    def get_many(self, model_id: str, texts: Sequence[str]) -> list[np.ndarray | None]:
        """The cached vector of each text, or None; counts one hit or miss per text."""
        out: list[np.ndarray | None] = []
        with self._lock:
            for t in texts:
                key = (model_id, query_key(t))
                vec = self._items.get(key)
                if vec is None:
                    self.misses += 1
                else:
                    self.hits += 1
                    self._items.move_to_end(key)
                out.append(vec)
        return out

    def put_many(self, model_id: str, texts: Sequence[str], vectors: np.ndarray) -> None:
        """Remember ``vectors[i]`` for ``texts[i]`` (read-only copies), evicting the least recently used."""
        if self.max_entries <= 0:
            return
        with self._lock:
            for t, v in zip(texts, vectors):
                vec = np.array(v, dtype=np.float32, copy=True)
                vec.setflags(write=False)
                key = (model_id, query_key(t))
                self._items[key] = vec
                self._items.move_to_end(key)
            while len(self._items) > self.max_entries:
                self._items.popitem(last=False)

    def stats(self) -> dict[str, int]:
        with self._lock:
            return {"hits": self.hits, "misses": self.misses, "entries": len(self._items)}
