"""``M2PEncPipeline``: music -> predicted pose guidance and keypoint heatmaps, from a run directory.

Borrowed interface: diffusers' pipelines (``from_pretrained(dir)``, ``save_pretrained(dir)``, ``__call__``).
Music of any length is cut into the training window length (``train.window`` frames at 15 fps) and predicted
window by window; the last, partial window is predicted as the last full window and only its new frames kept,
so every frame is predicted with a full window of context.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from encoders.errors import InputError

from .data import DataConfig, model_input, music_at_fps
from .model import M2PEnc
from .run_dir import load_model, save_pretrained


@dataclass
class Prediction:
    """``guidance`` float32 (T, 11, S, S) in [0, 1] (:data:`.data.GUIDANCE_CHANNELS`), ``heatmaps`` float32
    (T, 18, S, S), at ``fps``."""

    guidance: np.ndarray
    heatmaps: np.ndarray
    fps: float

    def __len__(self) -> int:
        return int(self.guidance.shape[0])

    def keypoints(self) -> np.ndarray:
        """(T, 18, 2) pixel positions (x, y) of each heatmap's maximum (pixel centres)."""
        return heatmap_argmax(self.heatmaps)


def heatmap_argmax(heatmaps: np.ndarray) -> np.ndarray:
    """(..., K, H, W) -> (..., K, 2) the (x + 0.5, y + 0.5) of each map's largest value."""
    h, w = heatmaps.shape[-2:]
    flat = heatmaps.reshape(*heatmaps.shape[:-2], h * w).argmax(axis=-1)
    return np.stack([flat % w + 0.5, flat // w + 0.5], axis=-1).astype(np.float32)


class M2PEncPipeline:
    def __init__(self, model: M2PEnc, data: DataConfig = DataConfig(), tower=None,
                 run_config: dict[str, Any] | None = None, model_id: str = "") -> None:
        self.model = model.eval()
        self.data = data
        self.tower = tower
        self.run_config = run_config or {}
        self.model_id = model_id
        self.window = int(self.run_config.get("train", {}).get("window", 30))

    @classmethod
    def from_pretrained(cls, run_dir: str | Path) -> "M2PEncPipeline":
        """Load ``run_dir`` (and the music tower it was trained with); InputError naming the folder when it is not
        an M2PEnc run or the tower's run is gone."""
        import hashlib

        model, data, raw = load_model(run_dir)
        tower = None
        if raw.get("tower"):
            from .tokens import MusicTower

            tower_run = Path(raw["tower"]["run"])
            if not tower_run.is_dir():
                raise InputError(run_dir, "the music-tower run this model reads is missing", field="tower.run",
                                 expected="an existing retrieval run folder", got=str(tower_run))
            tower = MusicTower(tower_run)
            if tower.identity != raw["tower"]["identity"]:
                raise InputError(run_dir, "the music-tower run changed since training", field="tower.identity",
                                 expected=raw["tower"]["identity"], got=tower.identity)
        digest = hashlib.sha256((Path(run_dir) / "model.pt").read_bytes()).hexdigest()[:16]
        return cls(model, data, tower, raw, f"m2penc-{digest}")

    def save_pretrained(self, run_dir: str | Path) -> Path:
        return save_pretrained(run_dir, self.model, self.data, self.run_config.get("train"),
                               self.run_config.get("tower"), self.run_config.get("info"))

    def features(self, music30: np.ndarray) -> np.ndarray:
        """(T30, 35) features at 30 fps -> the model's per-frame input at ``data.fps`` (+ tower tokens, + the
        beat-phase columns when ``data.beat_phase``; :func:`.data.model_input`)."""
        feats = music_at_fps(music30, self.data.step)
        tokens = self.tower.tokens_at(music30, self.data.step) if self.tower is not None else None
        return model_input(feats, tokens, self.data.beat_phase).astype(np.float32)

    def __call__(self, music30: np.ndarray) -> Prediction:
        """Predict the guidance of music features at 30 fps (``encoders.music.features``)."""
        music30 = np.asarray(music30, dtype=np.float32)
        if music30.ndim != 2 or music30.shape[1] != 35 or len(music30) < self.data.step:
            raise InputError(None, "bad music features", field="music", expected="(T, 35) at 30 fps, T >= 2",
                             got=str(music30.shape))
        return self.predict_features(self.features(music30))

    @torch.no_grad()
    def predict_features(self, feats: np.ndarray) -> Prediction:
        """Per-frame model input (T, F) -> :class:`Prediction` of T frames."""
        feats = np.asarray(feats, dtype=np.float32)
        if feats.ndim != 2 or feats.shape[1] != self.model.config.music_dim:
            raise InputError(None, "bad music input", field="music",
                             expected=f"(T, {self.model.config.music_dim})", got=str(feats.shape))
        t, w = len(feats), self.window
        c = self.model.config
        guid = np.zeros((t, c.guidance_channels, c.size, c.size), dtype=np.float32)
        heat = np.zeros((t, c.heatmap_channels, c.size, c.size), dtype=np.float32)
        starts = list(range(0, max(t - w, 0) + 1, w)) if t >= w else [0]
        if t > w and starts[-1] + w < t:
            starts.append(t - w)
        done = 0
        for s in starts:
            x = torch.from_numpy(feats[s:s + w])[None]
            g, h = self.model(x)
            keep = slice(done - s, None)
            guid[done:s + x.shape[1]] = g[0, keep].clamp(0.0, 1.0).numpy()
            heat[done:s + x.shape[1]] = h[0, keep].numpy()
            done = s + x.shape[1]
        return Prediction(guid, heat, float(self.data.fps))
