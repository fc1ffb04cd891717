"""Gallery embedding for text-to-dance retrieval evaluation.

Embeds clips with ``DanceEmbedder.encode_dances`` (the same API the index and the search service use,
so the numbers describe the deployed model); ``eval.suite`` ranks the gallery per caption.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
from tqdm import tqdm

from encoders.api import DanceEmbedder, DanceInput
from encoders.motion.record import MotionRecord
from encoders.training.data import ClipExample, load_music


def embed_gallery(embedder: DanceEmbedder, examples: Sequence[ClipExample], progress: bool = True,
                  batch_size: int = 64) -> np.ndarray:
    """(N, D) embeddings of the examples' dances, read from their motion / music files in batches."""
    out = np.zeros((len(examples), embedder.dim), dtype=np.float32)
    for i in tqdm(range(0, len(examples), batch_size), desc="embed clips", disable=not progress, leave=False):
        chunk = examples[i:i + batch_size]
        dances = [DanceInput(MotionRecord.load(e.motion_path), load_music(e.music_path)) for e in chunk]
        out[i:i + len(chunk)] = embedder.encode_dances(dances)
    return out
