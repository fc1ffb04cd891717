"""The Genre-matching Score network (FineNet sec. 4.4, eq. 3-4): music style encoder + dance genre encoder.

``GS(music, dance) = cos(F_m(mel), F_d(skeleton))`` (eq. 3). FineNet uses AST for F_m and AGCN for F_d;
here, sized for two CPU cores:

- ``MusicStyleEncoder``: a 3-block 2-D CNN over the (T, 64) log-mel window (bands standardised with
  training statistics), global average pooling, a linear projection.
- ``DanceGenreEncoder``: AGCN-like spatial-temporal graph convolution over the 22 SMPL body joints: each
  block mixes joints with the skeleton's normalised adjacency plus a learned adjacency (AGCN's B matrix,
  initialised at zero), then a temporal convolution; input per joint and frame is the position relative
  to the root's ground projection (height kept) and its velocity, taken in the window's canonical frame,
  at 7.5 frames/s.

``GenreMatcher`` holds both and scores pairs; trained with the cosine loss of eq. 4 (``train.py``).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Sequence

import numpy as np
import torch
from torch import nn

from encoders.motion.skeleton import SMPL_BODY_22, smplx52


@dataclass(frozen=True)
class GSModelConfig:
    embed_dim: int = 64
    n_mels: int = 64
    music_channels: tuple[int, ...] = (8, 16, 32)
    dance_channels: tuple[int, ...] = (16, 32, 32)
    dance_strides: tuple[int, ...] = (1, 2, 1)
    temporal_kernel: int = 3
    frame_step: int = 4          # dance input at 30 / frame_step fps (7.5): sized for 2 shared CPU cores
    dropout: float = 0.1

    def to_dict(self) -> dict:
        d = asdict(self)
        return {k: list(v) if isinstance(v, tuple) else v for k, v in d.items()}

    @classmethod
    def from_dict(cls, d: dict) -> "GSModelConfig":
        known = {k: tuple(v) if isinstance(v, list) else v for k, v in d.items() if k in cls.__dataclass_fields__}
        return cls(**known)


def body_adjacency() -> np.ndarray:
    """(22, 22) D^-1/2 (A + I) D^-1/2 of the SMPL body tree."""
    skel = smplx52()
    idx = {n: i for i, n in enumerate(SMPL_BODY_22)}
    a = np.eye(len(SMPL_BODY_22))
    for n in SMPL_BODY_22:
        p = skel.parents[skel.names.index(n)]
        if p >= 0 and skel.names[p] in idx:
            a[idx[n], idx[skel.names[p]]] = a[idx[skel.names[p]], idx[n]] = 1.0
    d = 1.0 / np.sqrt(a.sum(axis=1))
    return (a * d[:, None] * d[None, :]).astype(np.float32)


BODY_INDEX = [smplx52().names.index(n) for n in SMPL_BODY_22]


def dance_input(positions: np.ndarray, frame_step: int = 4) -> np.ndarray:
    """(T, J>=22 SMPL-X order or 22 body, 3) positions (metres, 30 fps) -> (6, T', 22) float32 network input."""
    p = np.asarray(positions, dtype=np.float32)
    if p.shape[1] != 22:
        p = p[:, BODY_INDEX]
    rel = p.copy()
    rel[:, :, [0, 2]] -= p[:, :1, [0, 2]]
    vel = np.diff(p, axis=0, prepend=p[:1]) * 30.0 * 0.1     # m/s, scaled to ~unit range
    x = np.concatenate([rel, vel], axis=-1)[::frame_step]     # (T', 22, 6)
    return np.ascontiguousarray(x.transpose(2, 0, 1))


class _GraphBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int, adjacency: torch.Tensor, kernel: int, stride: int, dropout: float):
        super().__init__()
        self.register_buffer("A", adjacency)
        self.B = nn.Parameter(torch.zeros_like(adjacency))
        self.spatial = nn.Conv2d(c_in, c_out, 1)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.temporal = nn.Conv2d(c_out, c_out, (kernel, 1), (stride, 1), (kernel // 2, 0))
        self.bn2 = nn.BatchNorm2d(c_out)
        self.drop = nn.Dropout(dropout)
        self.res = (nn.Identity() if c_in == c_out and stride == 1
                    else nn.Sequential(nn.Conv2d(c_in, c_out, 1, (stride, 1)), nn.BatchNorm2d(c_out)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:   # (N, C, T, V)
        y = torch.einsum("nctv,vw->nctw", self.spatial(x), self.A + self.B)
        y = torch.relu(self.bn1(y))
        y = self.bn2(self.temporal(self.drop(y)))
        return torch.relu(y + self.res(x))


class DanceGenreEncoder(nn.Module):
    def __init__(self, config: GSModelConfig) -> None:
        super().__init__()
        adj = torch.as_tensor(body_adjacency())
        self.data_bn = nn.BatchNorm1d(6 * 22)
        blocks, c = [], 6
        for c_out, s in zip(config.dance_channels, config.dance_strides):
            blocks.append(_GraphBlock(c, c_out, adj, config.temporal_kernel, s, config.dropout))
            c = c_out
        self.blocks = nn.Sequential(*blocks)
        self.head = nn.Linear(c, config.embed_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:    # (N, 6, T, 22) -> (N, E)
        n, c, t, v = x.shape
        x = self.data_bn(x.permute(0, 1, 3, 2).reshape(n, c * v, t)).reshape(n, c, v, t).permute(0, 1, 3, 2)
        return self.head(self.blocks(x).mean(dim=(2, 3)))


class MusicStyleEncoder(nn.Module):
    def __init__(self, config: GSModelConfig) -> None:
        super().__init__()
        self.register_buffer("mel_mean", torch.zeros(config.n_mels))
        self.register_buffer("mel_std", torch.ones(config.n_mels))
        layers, c = [], 1
        for c_out in config.music_channels:
            layers += [nn.Conv2d(c, c_out, 3, padding=1), nn.BatchNorm2d(c_out), nn.ReLU(), nn.MaxPool2d(2)]
            c = c_out
        self.conv = nn.Sequential(*layers)
        self.drop = nn.Dropout(config.dropout)
        self.head = nn.Linear(c, config.embed_dim)

    def forward(self, mel: torch.Tensor) -> torch.Tensor:   # (N, T, n_mels) -> (N, E)
        x = ((mel - self.mel_mean) / self.mel_std).transpose(1, 2).unsqueeze(1)   # (N, 1, mels, T)
        return self.head(self.drop(self.conv(x).mean(dim=(2, 3))))


class GenreMatcher(nn.Module):
    """Both encoders; ``score`` is eq. 3 (cosine similarity) for paired inputs."""

    def __init__(self, config: GSModelConfig = GSModelConfig()) -> None:
        super().__init__()
        self.config = config
        self.music = MusicStyleEncoder(config)
        self.dance = DanceGenreEncoder(config)

    def embed_music(self, mel: torch.Tensor) -> torch.Tensor:
        return nn.functional.normalize(self.music(mel), dim=-1)

    def embed_dance(self, x: torch.Tensor) -> torch.Tensor:
        return nn.functional.normalize(self.dance(x), dim=-1)

    # -- numpy conveniences (eval mode, no grad) ---------------------------------------------------
    @torch.no_grad()
    def music_embeddings(self, mels: Sequence[np.ndarray] | np.ndarray, batch: int = 128) -> np.ndarray:
        self.eval()
        mels = np.asarray(mels, dtype=np.float32)
        out = [self.embed_music(torch.as_tensor(mels[i:i + batch])).numpy() for i in range(0, len(mels), batch)]
        return np.concatenate(out) if out else np.zeros((0, self.config.embed_dim), np.float32)

    @torch.no_grad()
    def dance_embeddings(self, positions: Sequence[np.ndarray], batch: int = 128) -> np.ndarray:
        """Each (T, J, 3) positions array (30 fps, canonical or world frame) -> (N, E) unit vectors."""
        self.eval()
        xs = np.stack([dance_input(p, self.config.frame_step) for p in positions]) if len(positions) else None
        if xs is None:
            return np.zeros((0, self.config.embed_dim), np.float32)
        out = [self.embed_dance(torch.as_tensor(xs[i:i + batch])).numpy() for i in range(0, len(xs), batch)]
        return np.concatenate(out)

    def gs(self, mels: Sequence[np.ndarray], positions: Sequence[np.ndarray]) -> np.ndarray:
        """GS (eq. 3) of each (mel window, dance window) pair: (N,) cosine similarities."""
        return np.sum(self.music_embeddings(mels) * self.dance_embeddings(positions), axis=1)


def cosine_pair_loss(music: torch.Tensor, dance: torch.Tensor, music_genre: torch.Tensor,
                     dance_genre: torch.Tensor) -> torch.Tensor:
    """Eq. 4 over every (music i, dance j) pair of a batch: y (1 - s) + (1 - y) max(0, s), y = same genre.

    Matched and mismatched pairs are averaged separately and added (with 18 genres, 1 pair in 18 is a
    match; a plain mean would let the mismatched term dominate)."""
    s = music @ dance.T
    y = (music_genre[:, None] == dance_genre[None, :]).to(s.dtype)
    pos = (y * (1 - s)).sum() / y.sum().clamp(min=1)
    neg = ((1 - y) * s.clamp(min=0)).sum() / (1 - y).sum().clamp(min=1)
    return pos + neg
