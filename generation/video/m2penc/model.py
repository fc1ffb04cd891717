"""M2PEnc (paper 3.2.1): per-frame music features -> pose guidance maps and keypoint heatmaps.

::

    music (B, T, F)  --normalise--> FC F->4096 --reshape--> (B, 1, T, 64, 64)
      -> stem Inf-Conv3D 1->C
      -> L x [Inf-Conv3D residual block, 3D attention block]
      -> Inf-Conv3D head C->C_guid  : pose guidance (B, T, C_guid, 64, 64)
      -> Inf-Conv3D head C->C_heat  : keypoint heatmaps (B, T, C_heat, 64, 64)

Choices (and why):

- One channel after the FC, as in the paper ((N, 4096) -> (N, 64, 64)); a stem convolution then lifts it to C
  channels. A C-channel reshape would multiply the FC by C (35 x 4096 x C weights) for maps whose spatial
  layout the FC invents anyway; the convolutions are what give the maps spatial structure.
- Inf-Conv3D: a 2D k x k kernel inflated over ``kernel_t`` frames (Conv3d with (kt, k, k)); :meth:`InflatedConv3d.
  inflate` builds one from a 2D convolution (I3D: the 2D weights spread evenly over time), so a pretrained 2D
  encoder can seed it. The spatial resolution stays 64 x 64 throughout, as in the paper.
- 3D attention, made CPU-trainable by factorising it and running it on a pooled grid: each frame's maps are
  average-pooled to ``attn_grid`` x ``attn_grid`` tokens, attended spatially (within a frame), then temporally
  (each grid cell over the T frames, sinusoidal frame positions), projected back and upsampled onto the 64 x 64
  maps as a residual. Full attention over 16 x 16 x 30 = 7680 tokens would cost ~60 M scores per head and
  layer; factorised it is 30 x 256^2 + 256 x 30^2 ~ 2.2 M; the default 8 x 8 grid, 30 x 64^2 + 64 x 30^2 ~ 0.18 M.
- CPU budget: on the shared 2-core machine a training step (batch 4 x 30 frames) cost ~14 s with C=16 and a
  16 x 16 grid, almost all of it the full-resolution Inf-Conv3D backward passes (profiled); C=8 and an 8 x 8
  grid roughly halve that. A GPU run can raise both (they are config fields). The output projection starts at zero (as
  AnimateDiff's temporal modules do), so each attention block starts as the identity.
- Music normalisation (train-split mean / std) lives in buffers, so a saved model takes raw features.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from encoders.errors import InputError


@dataclass
class M2PEncConfig:
    """Architecture; ``config.json["model"]`` of a run."""

    music_dim: int = 35               # 35-d features, + the music tower's d_model when tokens are used
    size: int = 64                    # the fixed spatial resolution (FC width = size * size)
    channels: int = 8                 # C: feature channels after the stem (8: see the module docstring)
    layers: int = 2                   # L: alternating Inf-Conv3D / 3D attention pairs
    kernel_t: int = 3                 # temporal extent of the inflated kernels
    kernel: int = 3                   # spatial extent
    attn_grid: int = 8                # attention tokens per frame: attn_grid x attn_grid (8 px cells)
    attn_dim: int = 32
    heads: int = 4
    guidance_channels: int = 11       # C_guid (data.GUIDANCE_CHANNELS)
    heatmap_channels: int = 18        # C_heat (OpenPose body keypoints)

    def validate(self) -> "M2PEncConfig":
        checks = [("music_dim", self.music_dim >= 1, ">= 1"), ("size", 8 <= self.size <= 256, "8 to 256"),
                  ("channels", self.channels >= 1, ">= 1"), ("layers", self.layers >= 0, ">= 0"),
                  ("kernel_t", self.kernel_t >= 1 and self.kernel_t % 2 == 1, "an odd number >= 1"),
                  ("kernel", self.kernel >= 1 and self.kernel % 2 == 1, "an odd number >= 1"),
                  ("attn_grid", 1 <= self.attn_grid <= self.size and self.size % self.attn_grid == 0,
                   "a divisor of size"),
                  ("heads", self.heads >= 1 and self.attn_dim % self.heads == 0, "a divisor of attn_dim"),
                  ("guidance_channels", self.guidance_channels >= 1, ">= 1"),
                  ("heatmap_channels", self.heatmap_channels >= 1, ">= 1")]
        for name, ok, expected in checks:
            if not ok:
                raise InputError(None, "bad M2PEnc config", field=name, expected=expected, got=str(getattr(self, name)))
        return self

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "M2PEncConfig":
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise InputError(None, "unknown M2PEnc config keys", field="model", expected=f"keys of {sorted(known)}",
                             got=str(unknown))
        return cls(**data).validate()


class InflatedConv3d(nn.Conv3d):
    """A (kt, k, k) Conv3d with 'same' padding: a 2D convolution inflated over time."""

    def __init__(self, cin: int, cout: int, kernel: int = 3, kernel_t: int = 3) -> None:
        super().__init__(cin, cout, (kernel_t, kernel, kernel), padding=(kernel_t // 2, kernel // 2, kernel // 2))

    @classmethod
    def inflate(cls, conv2d: nn.Conv2d, kernel_t: int = 3) -> "InflatedConv3d":
        """I3D inflation: the 2D kernel repeated over ``kernel_t`` frames and divided by ``kernel_t``, so a video
        of identical frames gives the 2D convolution's output on every frame."""
        k = conv2d.kernel_size[0]
        out = cls(conv2d.in_channels, conv2d.out_channels, k, kernel_t)
        with torch.no_grad():
            out.weight.copy_(conv2d.weight.unsqueeze(2).repeat(1, 1, kernel_t, 1, 1) / kernel_t)
            if conv2d.bias is not None:
                out.bias.copy_(conv2d.bias)
        return out


def _groups(c: int) -> int:
    for g in (8, 4, 2, 1):
        if c % g == 0:
            return g
    return 1


class ConvBlock(nn.Module):
    """GroupNorm -> SiLU -> Inf-Conv3D, residual."""

    def __init__(self, c: int, kernel: int, kernel_t: int) -> None:
        super().__init__()
        self.norm = nn.GroupNorm(_groups(c), c)
        self.conv = InflatedConv3d(c, c, kernel, kernel_t)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return h + self.conv(F.silu(self.norm(h)))


def sinusoid(n: int, d: int, device: torch.device) -> torch.Tensor:
    pos = torch.arange(n, device=device, dtype=torch.float32)[:, None]
    i = torch.arange(0, d, 2, device=device, dtype=torch.float32)
    ang = pos / (10000.0 ** (i / d))
    out = torch.zeros(n, d, device=device)
    out[:, 0::2] = torch.sin(ang)
    out[:, 1::2] = torch.cos(ang[:, : d // 2])
    return out


class Attention3D(nn.Module):
    """Factorised spatio-temporal self-attention on a pooled grid, added back to the full-resolution maps."""

    def __init__(self, c: int, grid: int, dim: int, heads: int) -> None:
        super().__init__()
        self.grid = grid
        self.norm = nn.GroupNorm(_groups(c), c)
        self.proj_in = nn.Linear(c, dim)
        self.pos = nn.Parameter(torch.zeros(1, grid * grid, dim))
        nn.init.normal_(self.pos, std=0.02)
        self.spatial_norm = nn.LayerNorm(dim)
        self.spatial = nn.MultiheadAttention(dim, heads, batch_first=True)
        self.temporal_norm = nn.LayerNorm(dim)
        self.temporal = nn.MultiheadAttention(dim, heads, batch_first=True)
        self.ff_norm = nn.LayerNorm(dim)
        self.ff = nn.Sequential(nn.Linear(dim, 2 * dim), nn.GELU(), nn.Linear(2 * dim, dim))
        self.proj_out = nn.Linear(dim, c)
        nn.init.zeros_(self.proj_out.weight)
        nn.init.zeros_(self.proj_out.bias)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        b, c, t, hh, ww = h.shape
        g = self.grid
        x = F.adaptive_avg_pool3d(self.norm(h), (t, g, g))                       # (B, C, T, g, g)
        x = self.proj_in(x.permute(0, 2, 3, 4, 1).reshape(b * t, g * g, c)) + self.pos
        y = self.spatial_norm(x)
        x = x + self.spatial(y, y, y, need_weights=False)[0]                      # within each frame
        d = x.shape[-1]
        x = x.reshape(b, t, g * g, d).transpose(1, 2).reshape(b * g * g, t, d) + sinusoid(t, d, h.device)
        y = self.temporal_norm(x)
        x = x + self.temporal(y, y, y, need_weights=False)[0]                     # each cell over time
        x = x + self.ff(self.ff_norm(x))
        x = self.proj_out(x).reshape(b, g, g, t, c).permute(0, 4, 3, 1, 2)       # (B, C, T, g, g)
        if g != hh or g != ww:
            x = F.interpolate(x, size=(t, hh, ww), mode="trilinear", align_corners=False)
        return h + x


class M2PEnc(nn.Module):
    """Music (B, T, music_dim) raw features -> (guidance (B, T, C_guid, S, S), heatmaps (B, T, C_heat, S, S))."""

    def __init__(self, config: M2PEncConfig = M2PEncConfig()) -> None:
        super().__init__()
        self.config = c = config.validate()
        self.register_buffer("music_mean", torch.zeros(c.music_dim))
        self.register_buffer("music_std", torch.ones(c.music_dim))
        self.fc = nn.Linear(c.music_dim, c.size * c.size)
        self.stem = InflatedConv3d(1, c.channels, c.kernel, c.kernel_t)
        blocks: list[nn.Module] = []
        for _ in range(c.layers):
            blocks += [ConvBlock(c.channels, c.kernel, c.kernel_t), Attention3D(c.channels, c.attn_grid, c.attn_dim,
                                                                               c.heads)]
        self.blocks = nn.ModuleList(blocks)
        self.out_norm = nn.GroupNorm(_groups(c.channels), c.channels)
        self.guidance_head = InflatedConv3d(c.channels, c.guidance_channels, c.kernel, c.kernel_t)
        self.heatmap_head = InflatedConv3d(c.channels, c.heatmap_channels, c.kernel, c.kernel_t)

    def set_normalisation(self, mean: torch.Tensor, std: torch.Tensor) -> None:
        """Music statistics of the training split (std floored, so a constant column does not blow up)."""
        self.music_mean.copy_(torch.as_tensor(mean, dtype=torch.float32))
        self.music_std.copy_(torch.as_tensor(std, dtype=torch.float32).clamp_min(1e-3))

    def forward(self, music: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        c = self.config
        if music.ndim != 3 or music.shape[-1] != c.music_dim:
            raise InputError(None, "bad music input", field="music", expected=f"(B, T, {c.music_dim})",
                             got=str(tuple(music.shape)))
        b, t, _ = music.shape
        x = (music - self.music_mean) / self.music_std
        h = self.fc(x).reshape(b, t, 1, c.size, c.size).transpose(1, 2)          # (B, 1, T, S, S)
        h = self.stem(h)
        for block in self.blocks:
            h = block(h)
        h = F.silu(self.out_norm(h))
        guidance = self.guidance_head(h).transpose(1, 2)                         # (B, T, C_guid, S, S)
        heatmaps = self.heatmap_head(h).transpose(1, 2)
        return guidance, heatmaps

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())


def fc_parameters(config: M2PEncConfig) -> int:
    return (config.music_dim + 1) * config.size * config.size


def describe(model: M2PEnc) -> str:
    c = model.config
    return (f"M2PEnc: {model.num_parameters():,} parameters (FC {fc_parameters(c):,}); {c.music_dim}-d music -> "
            f"{c.size}x{c.size}, C={c.channels}, L={c.layers}, kernels ({c.kernel_t}, {c.kernel}, {c.kernel}), "
            f"attention on {c.attn_grid}x{c.attn_grid} tokens x T (dim {c.attn_dim}, {c.heads} heads)")


