"""Text-to-dance retrieval evaluation of one trained model on one split (full-gallery protocol).

Embeds every clip of the split with ``DanceEmbedder.encode_dances`` and every caption with
``encode_text`` (the same API the index and the search service use, so the numbers describe the
deployed model), then ranks the whole gallery per caption (``eval.metrics``).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
from tqdm import tqdm

from encoders.api import DanceEmbedder, DanceInput
from encoders.errors import DanceSearchError
from encoders.motion.record import MotionRecord
from encoders.training.data import ClipExample, caption_queries, load_music

from .metrics import FULL_GALLERY_PROTOCOL, chance_metrics, positive_ranks, metrics_from_ranks


@dataclass
class RetrievalResult:
    metrics: dict[str, Any]
    ranks: np.ndarray           # (Q,) 1-based rank of each query's clip
    similarity: np.ndarray      # (Q, N) caption x clip cosine similarity
    queries: list[str]
    positives: np.ndarray       # (Q,) gallery index of each query's clip


def embed_gallery(embedder: DanceEmbedder, examples: Sequence[ClipExample], progress: bool = True,
                  batch_size: int = 64) -> np.ndarray:
    """(N, D) embeddings of the examples' dances, read from their motion / music files in batches."""
    out = np.zeros((len(examples), embedder.dim), dtype=np.float32)
    for i in tqdm(range(0, len(examples), batch_size), desc="embed clips", disable=not progress, leave=False):
        chunk = examples[i:i + batch_size]
        dances = [DanceInput(MotionRecord.load(e.motion_path), load_music(e.music_path)) for e in chunk]
        out[i:i + len(chunk)] = embedder.encode_dances(dances)
    return out


def evaluate_retrieval(embedder: DanceEmbedder, examples: Sequence[ClipExample], split: str = "test",
                       progress: bool = True) -> RetrievalResult:
    """Full-gallery text->dance metrics; raises when the split has no clips or no captions."""
    if not examples:
        raise DanceSearchError(f"the {split} split has no clips: ingest data (dancesearch ingest ...) first")
    texts, positives = caption_queries(examples)
    if not texts:
        raise DanceSearchError(f"no clip of the {split} split has a caption: nothing to query with")
    gallery = embed_gallery(embedder, examples, progress)
    queries = embedder.encode_text(texts)
    sim = queries @ gallery.T
    pos = np.asarray(positives)
    ranks = positive_ranks(sim, pos)
    metrics: dict[str, Any] = metrics_from_ranks(ranks, len(examples))
    metrics.update({"protocol": FULL_GALLERY_PROTOCOL, "split": split, "model": embedder.model_id,
                    "chance": chance_metrics(len(examples))})
    return RetrievalResult(metrics, ranks, sim, texts, pos)
