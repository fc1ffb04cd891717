"""The part of ``encoders.api.DanceEmbedder`` the index layer relies on, as a typing Protocol.

Written down here so the index, the builder and the search engine state exactly what they need
from a model (and tests can check a second implementation against the same contract).
"""
from __future__ import annotations

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


def load_embedder(run_dir: str | None = None) -> Embedder:
    """``DanceEmbedder.from_run(run_dir)``; ``None`` loads the shipped demo model (``models/demo``)."""
    from encoders.api import DEFAULT_RUN_DIR, DanceEmbedder
    from encoders.errors import InputError

    path = run_dir or DEFAULT_RUN_DIR
    from pathlib import Path

    if not Path(path).exists():
        raise InputError(str(path), "no trained model here", field="--run",
                         expected="a run folder written by `dancesearch train` (or the shipped models/demo)",
                         got="missing folder")
    return DanceEmbedder.from_run(path)
