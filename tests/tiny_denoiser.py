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
