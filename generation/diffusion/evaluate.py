"""Scoring a generator on a catalog split: one generated 4-s window per real window, same music and genre.

The real windows of the split (non-overlapping) are the ground truth; for each, the generator makes a
window from that window's music and genre, and the generated set is scored against the real one with
``generation.metrics.evaluate_generation`` (the generated windows carry the real window's music beats, so
BAS measures the generated motion against the music it was made for). The real-data floor
(``docs/results/generation_floor.md``) is what the numbers are read against.
"""
from __future__ import annotations

import time
from typing import Any, Callable, Sequence

import numpy as np
from tqdm import tqdm

from ..metrics.catalog_source import window_samples
from ..metrics.sample import DanceSample
from ..metrics.suite import evaluate_generation
from ..representation.codec import decode
from ..representation.layout import FPS
from ..windows import WindowStore
from .pipeline import DancePipeline


def generate_for_split(pipe: DancePipeline, store: WindowStore, split: str, steps: int = 20, guidance: float = 2.0,
                       seed: int = 0, batch: int = 36, indices: Sequence[int] | None = None,
                       progress: bool = False, desc: str = "generate", genre_guidance: float | None = None,
                       stochastic: bool = False, postprocess: Callable[[np.ndarray], np.ndarray] | None = None
                       ) -> tuple[list[DanceSample], float]:
    """Generated samples (one per real window of ``split``, or of its windows ``indices``) and the seconds it took.
    ``postprocess`` maps each window's (T, 319) features before decoding (e.g. ``representation.foot_lock``).

    Batch ``k`` (of ``batch`` windows, in order) is sampled with seed ``seed + k * batch``, so two generators
    asked for the same windows get the same noise and can be compared window by window.
    """
    t0 = time.perf_counter()
    out: list[DanceSample] = []
    indices = list(range(store.num_windows(split))) if indices is None else list(indices)
    for start in tqdm(range(0, len(indices), batch), desc=desc, unit="batch", disable=not progress, leave=False):
        wins = [store.window(split, i) for i in indices[start:start + batch]]
        x = pipe.sample_windows(np.stack([w.music for w in wins]), [w.genre for w in wins], seed=seed + start,
                                steps=steps, guidance=guidance, genre_guidance=genre_guidance,
                                stochastic=stochastic)
        for w, feats in zip(wins, x):
            rec = decode(feats if postprocess is None else postprocess(feats))
            out.append(DanceSample(f"gen-{w.clip_id}@{w.start}", rec.positions, FPS, rec.joint_names,
                                   w.beat_times if w.has_music else None, {"genre": w.genre}))
    return out, time.perf_counter() - t0


def evaluate_generator(pipe: DancePipeline, store: WindowStore, split: str = "test", protocols=("dancesearch",),
                       steps: int = 20, guidance: float = 2.0, seed: int = 0) -> dict[str, Any]:
    real = window_samples(store, split)
    generated, seconds = generate_for_split(pipe, store, split, steps, guidance, seed)
    return {"split": split, "windows": len(real), "steps": steps, "guidance": guidance, "seed": seed,
            "generation_seconds": round(seconds, 1), "model_id": pipe.model_id,
            "protocols": {p: evaluate_generation(generated, real, p, per_sample=False) for p in protocols}}
