"""High-level music features for the generator: the retrieval model's own music tower, frozen (GCDance's "FM").

GCDance conditions its denoiser on Wav2CLIP features next to the low-level music features because a music
encoder trained against language knows what the music *is* (its genre, its mood), which the 35-d onset /
MFCC / chroma frames say only implicitly. DanceSearch has such an encoder already: the CustomDancer music
tower (``encoders.model.temporal.TemporalEncoder``), trained with the text tower so that dances and their
descriptions meet. Here it is copied, frozen, into the generator: its tokens for a 4-s window (8 tokens of 64
dims for the shipped retrieval model) go through a light adapter into the denoiser's width and join the 35-d
music tokens as extra keys of every cross-attention (``GCDanceDenoiser``).

The tower's weights and the retrieval run's music normalisation travel inside the generator checkpoint, so a
generator trained with them samples without the retrieval run; ``MusicTowerSpec`` (saved in the denoiser's
config) is what rebuilds the architecture. ``from_retrieval_run`` is the one path that reads a retrieval run.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from encoders.errors import DanceSearchError
from encoders.model.features import MUSIC_DIM, summarise_music_frames
from encoders.model.temporal import TemporalEncoder



@dataclass(frozen=True)
class MusicTowerSpec:
    """The frozen tower's architecture and input rate, copied from the retrieval run it came from."""

    d_model: int
    max_len: int
    layers: int
    temporal: str
    heads: int
    ff_mult: int
    frame_stride: int                 # the tower sees every ``frame_stride``-th 30-fps frame
    music_pool: str                   # "subsample" (every stride-th row) or "window" (rows summarised)
    source: str = ""                  # the retrieval run's directory name and checkpoint hash, for the model card

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "MusicTowerSpec":
        try:
            return cls(**data)
        except TypeError as exc:
            raise DanceSearchError(f"generator config: bad music_tower entry {data!r}: {exc}") from exc

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class MusicTowerFeatures(nn.Module):
    """(B, T, 35) raw music features at 30 fps -> (B, N, d_model) adapted music-tower tokens.

    The tower and its normalisation are frozen buffers / parameters without gradients, kept in eval mode
    whatever mode the generator is in (dropout in a frozen feature extractor would only add noise); the
    adapter (Linear -> GELU -> Linear, plus a learned position per token) is what trains.
    """

    def __init__(self, spec: MusicTowerSpec, d_model: int, window_frames: int) -> None:
        super().__init__()
        if window_frames % spec.frame_stride:
            raise DanceSearchError(f"window of {window_frames} frames is not a multiple of the music tower's frame "
                                   f"stride {spec.frame_stride}")
        frames = window_frames // spec.frame_stride
        if frames > spec.max_len:
            raise DanceSearchError(f"a {window_frames}-frame window gives the music tower {frames} frames; it "
                                   f"takes at most {spec.max_len}")
        self.spec = spec
        self.tower = TemporalEncoder(MUSIC_DIM, spec.d_model, spec.max_len, spec.layers, spec.temporal, spec.heads,
                                     spec.ff_mult, dropout=0.0)
        self.register_buffer("music_mean", torch.zeros(MUSIC_DIM))
        self.register_buffer("music_std", torch.ones(MUSIC_DIM))
        for p in self.tower.parameters():
            p.requires_grad_(False)
        tokens = self._token_count(frames)
        self.adapter = nn.Sequential(nn.Linear(spec.d_model, d_model), nn.GELU(), nn.Linear(d_model, d_model))
        self.pos = nn.Parameter(torch.zeros(1, tokens, d_model))
        nn.init.normal_(self.pos, std=0.02)

    def _token_count(self, frames: int) -> int:
        for _ in range(self.spec.layers):
            frames = (frames + 1) // 2          # each tower layer halves the sequence (Conv1d k=3, s=2, p=1)
        return frames

    def train(self, mode: bool = True) -> "MusicTowerFeatures":
        super().train(mode)
        self.tower.eval()
        return self

    def _tower_input(self, music: torch.Tensor) -> torch.Tensor:
        """The rows the tower was trained on: normalised, at its frame rate (as ``collate_dances`` builds them)."""
        b, t, _ = music.shape
        s = self.spec.frame_stride
        x = (music - self.music_mean) / self.music_std
        if self.spec.music_pool == "window":
            return summarise_music_frames(x.reshape(b, t // s, s, MUSIC_DIM))
        return x[:, ::s]

    def forward(self, music: torch.Tensor) -> torch.Tensor:
        x = self._tower_input(music)
        with torch.no_grad():
            tokens, _ = self.tower(x, torch.ones(x.shape[:2], dtype=torch.bool, device=x.device))
        return self.adapter(tokens) + self.pos

    @classmethod
    def from_retrieval_run(cls, run_dir: str | Path, d_model: int, window_frames: int) -> "MusicTowerFeatures":
        """Copy the music tower and music normalisation of a trained CustomDancer run (e.g. ``models/demo``)."""
        from encoders.training.run_dir import load_run

        run = load_run(run_dir, device="cpu")
        c = run.config.model
        if run.model.music is None:
            raise DanceSearchError(f"retrieval run {run_dir} has no music tower (fusion {c.fusion!r}); the generator's "
                                   f"music-tower features need one")
        spec = MusicTowerSpec(d_model=c.d_model, max_len=c.seq_len, layers=c.layers, temporal=c.temporal,
                              heads=c.heads, ff_mult=c.ff_mult, frame_stride=c.frame_stride, music_pool=c.music_pool,
                              source=f"{Path(run_dir).name}@{run.checkpoint_sha256[:12]}")
        module = cls(spec, d_model, window_frames)
        module.tower.load_state_dict(run.model.music.state_dict())
        module.music_mean.copy_(torch.as_tensor(run.stats.music_mean))
        module.music_std.copy_(torch.as_tensor(run.stats.music_std))
        return module
