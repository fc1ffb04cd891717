"""The GCDance denoiser sized for a CPU: body and hand experts, music cross-attention, genre FiLM (Fig. 3).

x_t (B, T, 319) -> predicted clean motion (B, T, 319) in the normaliser's units. The body expert sees the
layout's body dims (contacts, root, 22 joints) and attends to the music; the hand expert sees the 30 finger
joints and attends to the music *and the body expert's features* (body features injected into the hand
branch's cross-attention, FineNet's FDGN). Tokens are the frames downsampled ``time_stride`` times by a
strided convolution and upsampled back by a transposed one: fewer tokens is what makes CPU training
feasible (``../shared/notes/generation.md``). Classifier-free guidance: ``drop_music`` / ``drop_genre``
replace a condition by a learned null embedding (training drops them at random; sampling runs both).
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import nn

from encoders.errors import DanceSearchError
from encoders.music import MUSIC_FEATURE_DIM

from ..representation.layout import FEATURE_DIM, LAYOUT
from .blocks import DenoiserBlock
from .music_tower import MusicTowerFeatures, MusicTowerSpec
from .popdg import AlignmentModule, DSAttention, VarianceHead

MUSIC_DIM = MUSIC_FEATURE_DIM            # one home: encoders.music


@dataclass
class DenoiserConfig:
    window_frames: int = 120
    d_model: int = 192
    heads: int = 4
    body_layers: int = 4
    hand_layers: int = 2
    ff_mult: int = 2
    dropout: float = 0.1
    time_stride: int = 2
    genre_dim: int = 384            # the text backbone's embedding of "This is a {genre} type of music."
    overlap_upsampling: bool = False
    """Upsample tokens to frames with overlapping kernels (2 x time_stride wide, half a token each side). Off:
    each token writes its own ``time_stride`` frames alone, which leaves a jerk spike at every token boundary
    (measured on the first shipped model: jerk 2-3x its median at every 4th frame boundary). Runs saved
    before this option load with it off."""
    music_dim: int = MUSIC_DIM
    music_tower: dict | None = None
    """GCDance's "FM" condition: the ``MusicTowerSpec`` (as a dict) of a frozen CustomDancer music tower whose
    tokens join the music tokens in every cross-attention (``music_tower.py``); None: the 35-d features alone."""
    learned_variance: bool = False
    """POPDG 4.1 / iDDPM: also output the reverse variance's interpolation v (``forward(..., return_variance=True)``),
    trained by ``TrainConfig.vlb_weight`` * L_vlb (``popdg/learned_variance.py``). Off: as before."""
    ds_attention: bool = False
    """POPDG 4.2.1: attention across the 22 body joints, Space Augmentation Algorithm, first in every body block
    (``popdg/ds_attention.py``). Off: as before."""
    alignment_module: bool = False
    """POPDG 4.3: convolved dance and music tokens added to the FiLM condition through an MLP
    (``popdg/alignment.py``). Off: as before."""
    genre_token: bool = False
    """Also give the genre to every cross-attention as one memory token (its adapter output through a linear map,
    the null genre's when dropped), beside the FiLM path. FiLM scales and shifts whole sub-layer outputs, the same
    for every frame; a token lets each frame's attention read the genre against the music (MDM conditions through
    a token). Off: as before (runs saved before it load with it off)."""

    def __post_init__(self) -> None:
        if self.window_frames % self.time_stride:
            raise DanceSearchError(f"window_frames {self.window_frames} must be a multiple of time_stride "
                                   f"{self.time_stride}")
        if self.d_model % self.heads:
            raise DanceSearchError(f"d_model {self.d_model} must be a multiple of heads {self.heads}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def step_embedding(t: torch.Tensor, dim: int) -> torch.Tensor:
    """Sinusoidal embedding of diffusion steps (B,) -> (B, dim)."""
    half = dim // 2
    freqs = torch.exp(-math.log(10000.0) * torch.arange(half, device=t.device, dtype=torch.float32) / half)
    args = t.float()[:, None] * freqs[None]
    return torch.cat([torch.sin(args), torch.cos(args)], dim=-1)


class _Expert(nn.Module):
    """Input projection + temporal downsampling + blocks + upsampling + output projection of one part."""

    def __init__(self, in_dim: int, layers: int, c: DenoiserConfig) -> None:
        super().__init__()
        self.inp = nn.Linear(in_dim, c.d_model)
        self.down = nn.Conv1d(c.d_model, c.d_model, kernel_size=c.time_stride, stride=c.time_stride)
        self.pos = nn.Parameter(torch.zeros(1, c.window_frames // c.time_stride, c.d_model))
        self.blocks = nn.ModuleList(DenoiserBlock(c.d_model, c.heads, c.ff_mult, c.dropout, c.d_model)
                                    for _ in range(layers))
        self.frames = c.window_frames
        self.crop = c.time_stride // 2 if c.overlap_upsampling else 0
        self.up = nn.ConvTranspose1d(c.d_model, c.d_model, stride=c.time_stride,
                                     kernel_size=2 * c.time_stride if c.overlap_upsampling else c.time_stride)
        self.out = nn.Sequential(nn.LayerNorm(c.d_model), nn.Linear(c.d_model, in_dim))
        nn.init.normal_(self.pos, std=0.02)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        h = self.down(self.inp(x).transpose(1, 2)).transpose(1, 2)
        return h + self.pos[:, :h.shape[1]]

    def decode(self, h: torch.Tensor) -> torch.Tensor:
        up = self.up(h.transpose(1, 2))[..., self.crop:self.crop + self.frames]
        return self.out(up.transpose(1, 2))


class GCDanceDenoiser(nn.Module):
    def __init__(self, config: DenoiserConfig = DenoiserConfig()) -> None:
        super().__init__()
        c = self.config = config
        self.body_dims = int(LAYOUT.body_rotations.stop)          # [0, 139): contacts, root, body joints
        self.body = _Expert(self.body_dims, c.body_layers, c)
        self.hand = _Expert(FEATURE_DIM - self.body_dims, c.hand_layers, c)
        self.music_in = nn.Linear(c.music_dim, c.d_model)
        self.music_down = nn.Conv1d(c.d_model, c.d_model, kernel_size=c.time_stride, stride=c.time_stride)
        self.music_pos = nn.Parameter(torch.zeros(1, c.window_frames // c.time_stride, c.d_model))
        self.null_music = nn.Parameter(torch.zeros(1, 1, c.d_model))
        self.music_tower = (MusicTowerFeatures(MusicTowerSpec.from_dict(c.music_tower), c.d_model, c.window_frames)
                            if c.music_tower else None)
        self.null_music_tower = nn.Parameter(torch.zeros(1, 1, c.d_model)) if c.music_tower else None
        self.genre_adapter = nn.Sequential(nn.Linear(c.genre_dim, c.d_model), nn.GELU(), nn.Linear(c.d_model, c.d_model))
        self.null_genre = nn.Parameter(torch.zeros(1, c.d_model))
        self.genre_token = nn.Linear(c.d_model, c.d_model) if c.genre_token else None
        self.step_mlp = nn.Sequential(nn.Linear(c.d_model, c.d_model), nn.SiLU(), nn.Linear(c.d_model, c.d_model))
        nn.init.normal_(self.music_pos, std=0.02)
        # POPDG options (popdg/): each off by default, and off it adds no parameter and draws no random number
        if c.ds_attention:
            for block in self.body.blocks:
                block.spatial = DSAttention(c.d_model, dropout=c.dropout)
        self.alignment = AlignmentModule(c.d_model) if c.alignment_module else None
        self.variance_head = (VarianceHead(c.d_model, self.body_dims, FEATURE_DIM - self.body_dims, c.time_stride)
                              if c.learned_variance else None)

    def forward(self, x_t: torch.Tensor, t: torch.Tensor, music: torch.Tensor, genre: torch.Tensor,
                drop_music: torch.Tensor | None = None, drop_genre: torch.Tensor | None = None,
                return_variance: bool = False) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """Predicted x0 (B, T, 319); with ``return_variance`` (a ``learned_variance`` model) also v (B, T, 319)."""
        c = self.config
        b, frames, dim = x_t.shape
        if dim != FEATURE_DIM or frames != c.window_frames or music.shape != (b, frames, c.music_dim):
            raise DanceSearchError(f"denoiser input: motion {tuple(x_t.shape)} (expected (B, {c.window_frames}, "
                                   f"{FEATURE_DIM})), music {tuple(music.shape)} (expected ({b}, "
                                   f"{c.window_frames}, {c.music_dim}))")
        m = self.music_down(self.music_in(music).transpose(1, 2)).transpose(1, 2) + self.music_pos
        if drop_music is not None:
            m = torch.where(drop_music.view(b, 1, 1), self.null_music.expand_as(m), m)
        if self.music_tower is not None:                       # FM tokens: dropped with the music they come from
            fm = self.music_tower(music)
            if drop_music is not None:
                fm = torch.where(drop_music.view(b, 1, 1), self.null_music_tower.expand_as(fm), fm)
            m = torch.cat([m, fm], dim=1)
        g = self.genre_adapter(genre)
        if drop_genre is not None:
            g = torch.where(drop_genre.view(b, 1), self.null_genre.expand_as(g), g)
        cond = self.step_mlp(step_embedding(t, c.d_model)) + g
        if self.genre_token is not None:                       # the genre as a memory token, dropped with it
            m = torch.cat([m, self.genre_token(g)[:, None]], dim=1)
        hb = self.body.encode(x_t[..., :self.body_dims])
        if self.alignment is not None:                         # POPDG 4.3: the 35-d music tokens, not the FM ones
            cond = cond + self.alignment(hb, m[:, :hb.shape[1]], cond)
        for block in self.body.blocks:
            hb = block(hb, m, cond)
        hh = self.hand.encode(x_t[..., self.body_dims:])
        memory = torch.cat([m, hb], dim=1)                     # body features injected into the hand branch
        for block in self.hand.blocks:
            hh = block(hh, memory, cond)
        x0 = torch.cat([self.body.decode(hb), self.hand.decode(hh)], dim=-1)
        if return_variance:                                    # POPDG 4.1
            if self.variance_head is None:
                raise DanceSearchError("return_variance needs a denoiser built with learned_variance=True")
            return x0, self.variance_head(hb, hh)
        return x0
