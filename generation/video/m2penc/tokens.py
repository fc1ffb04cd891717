"""The trained retrieval model's music tower as an extra per-frame input (its token sequence before pooling).

Why tokens and not the pooled embedding: M2PEnc needs one input row per video frame; the music tower
(``CustomDancer.music``, a :class:`encoders.model.temporal.TemporalEncoder`) maps music at 30 / ``frame_stride``
fps to a sequence of ``d_model`` tokens, each downsampled 2^layers times, before the blender pools them. Each
token is held for the frames it covers (the demo model: one token per 16 frames at 30 fps, ~0.53 s), so the
tokens add slow context (genre, energy) to the fast 35-d features. Music longer than the tower's window
(``seq_len * frame_stride`` frames, 12 s for the demo model) is encoded window by window.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np


class MusicTower:
    """Per-frame music-tower tokens of a trained retrieval run (``models/demo`` by default)."""

    def __init__(self, run_dir: str | Path) -> None:
        import torch

        from encoders.training.run_dir import load_run

        loaded = load_run(run_dir, device="cpu")
        model = loaded.model
        if model.music is None:
            from encoders.errors import InputError

            raise InputError(run_dir, "this retrieval run has no music tower", field="model.fusion",
                             expected="a variant that uses music", got=str(model.config.fusion))
        self.tower = model.music.eval()
        self.stats = loaded.stats
        c = model.config
        self.stride = int(c.frame_stride)
        self.span = int(c.seq_len) * self.stride                     # 30-fps frames per tower window
        self.per_token = self.stride * 2 ** int(c.layers)            # 30-fps frames per token
        self.dim = int(c.d_model)
        self.identity = f"music-tower:{loaded.checkpoint_sha256[:16]}"
        self._torch = torch

    def tokens30(self, music30: np.ndarray) -> np.ndarray:
        """(T, 35) raw features at 30 fps -> (T, d) float32: each frame gets the token that covers it."""
        torch = self._torch
        music30 = np.asarray(music30, dtype=np.float32)
        out = np.zeros((len(music30), self.dim), dtype=np.float32)
        norm = self.stats.normalise_music(music30, True)
        with torch.no_grad():
            for s in range(0, len(music30), self.span):
                chunk = norm[s:s + self.span:self.stride]
                x = torch.from_numpy(np.ascontiguousarray(chunk))[None]
                tok, _ = self.tower(x, torch.ones(1, len(chunk), dtype=torch.bool))
                tok = tok[0].numpy()
                n = min(self.span, len(music30) - s)
                idx = np.minimum(np.arange(n) // self.per_token, len(tok) - 1)
                out[s:s + n] = tok[idx]
        return out

    def tokens_at(self, music30: np.ndarray, step: int) -> np.ndarray:
        """Tokens at 30 / ``step`` fps (frame j = 30-fps frame step * j)."""
        return self.tokens30(music30)[::step][: len(music30) // step]
