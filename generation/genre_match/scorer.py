"""``GSScorer``: the trained GS network behind a diffusers-like ``from_pretrained`` (eq. 3 on raw inputs).

It scores music given as audio (the mel is computed here) against dances given as joint positions or
319-d generative features, one 4-s segment at a time.
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from ..representation.codec import decode
from .mel import MelConfig, fit_frames, log_mel
from .model import GenreMatcher
from .train import load_gs_run

DEFAULT_GS_DIR = Path(__file__).resolve().parents[2] / "models" / "gs"


class GSScorer:
    def __init__(self, model: GenreMatcher, mel: MelConfig, raw: dict | None = None) -> None:
        self.model = model.eval()
        self.mel_config = mel
        self.raw = raw or {}
        import hashlib

        h = hashlib.sha256()
        for k, v in sorted(model.state_dict().items()):
            h.update(k.encode())
            h.update(v.detach().cpu().numpy().tobytes())
        self.model_digest = "gs-" + h.hexdigest()[:16]

    @classmethod
    def from_pretrained(cls, run_dir: str | Path | None = None) -> "GSScorer":
        return cls(*load_gs_run(run_dir or DEFAULT_GS_DIR))

    @property
    def reference(self) -> dict:
        """The run's measured GS of real test pairs (and val), as saved at training time."""
        return dict(self.raw.get("metrics", {}))

    def mel(self, y: np.ndarray, sr: int, frames: int | None = None) -> np.ndarray:
        return log_mel(y, sr, self.mel_config, frames)

    def music_embeddings(self, mel: np.ndarray, segments: Sequence[tuple[int, int]]) -> np.ndarray:
        """(T, n_mels) mel of a whole piece + frame spans -> (S, E) music embeddings (spans padded to equal length)."""
        w = max(b - a for a, b in segments)
        return self.model.music_embeddings(np.stack([fit_frames(mel[a:b], w) for a, b in segments]))

    def dance_embeddings(self, dances: Sequence[np.ndarray]) -> np.ndarray:
        """Each dance: (T, J, 3) positions or (T, 319) generative features -> (N, E)."""
        pos = [decode(d).positions if d.ndim == 2 else d for d in dances]
        return self.model.dance_embeddings(pos)

    def gs(self, mel_windows: Sequence[np.ndarray], dances: Sequence[np.ndarray]) -> np.ndarray:
        """Eq. 3 per (mel window, dance) pair."""
        m = self.model.music_embeddings(np.stack(mel_windows))
        return np.sum(m * self.dance_embeddings(dances), axis=1)

    def dance_gs(self, mel: np.ndarray, positions: np.ndarray, segment_frames: int = 120) -> float:
        """GS of a whole dance and its music: the mean of eq. 3 over its consecutive segments."""
        n = max(1, len(positions) // segment_frames)
        spans = [(i * segment_frames, (i + 1) * segment_frames) for i in range(n)]
        m = self.music_embeddings(mel, spans)
        d = self.model.dance_embeddings([positions[a:b] for a, b in spans])
        return float(np.mean(np.sum(m * d, axis=1)))
