"""The tiny GCDance denoiser the generation tests share: fast on the CPU, one place to change its size."""
from __future__ import annotations

from types import MappingProxyType
from typing import Any, Mapping

from generation.diffusion.denoiser import DenoiserConfig

TINY_DENOISER: Mapping[str, Any] = MappingProxyType(dict(window_frames=16, d_model=32, heads=2, body_layers=1,
                                                        hand_layers=1, genre_dim=8, dropout=0.0))
"""16-frame windows, width 32, one block per expert branch, 8-d genre embeddings, no dropout (deterministic);
read-only, so no test changes it for the others."""


def tiny_denoiser_config(**overrides: Any) -> DenoiserConfig:
    """``TINY_DENOISER`` with ``overrides`` (e.g. ``window_frames=120``, POPDG options)."""
    return DenoiserConfig(**{**TINY_DENOISER, **overrides})


def train_tiny_on_catalog(home, out, **train: Any):
    """A tiny denoiser trained for a few steps on the windows of the catalog at ``home`` (``train`` overrides the
    training settings, e.g. ``snapshot_every``), for the benchmark scripts' end-to-end tests; returns ``out``."""
    import numpy as np

    from generation.diffusion.recipe import build_configs
    from generation.diffusion.train import train_denoiser
    from generation.metrics.catalog_source import window_store

    store = window_store(home)
    denoiser, config = build_configs({
        "denoiser": {**TINY_DENOISER, "window_frames": store.config.window_frames, "time_stride": 4},
        "train": {"steps": 4, "batch_size": 4, "eval_every": 4, "val_windows": 4, "num_threads": 1,
                  "warmup_steps": 1, **train}})
    emb = np.random.default_rng(0).normal(size=(len(store.genres), denoiser.genre_dim)).astype(np.float32)
    train_denoiser(store, out, denoiser, config, progress=False, embeddings=(emb, "test"))
    return out
