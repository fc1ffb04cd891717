"""One denoiser block (GCDance Fig. 3): self-attention, cross-attention on a condition sequence, MLP, each
pre-normed, residual, and modulated by FiLM (eq. 4) from the step + genre condition; optionally preceded by a
spatial sub-layer (POPDG's DS-Attention in the body expert, ``popdg/ds_attention.py``)."""
from __future__ import annotations

import torch
from torch import nn

from .film import FiLM


class DenoiserBlock(nn.Module):
    def __init__(self, d_model: int, heads: int, ff_mult: int, dropout: float, cond_dim: int) -> None:
        super().__init__()
        self.norm1, self.norm2, self.norm3 = nn.LayerNorm(d_model), nn.LayerNorm(d_model), nn.LayerNorm(d_model)
        self.self_attn = nn.MultiheadAttention(d_model, heads, dropout=dropout, batch_first=True)
        self.cross_attn = nn.MultiheadAttention(d_model, heads, dropout=dropout, batch_first=True)
        self.mlp = nn.Sequential(nn.Linear(d_model, ff_mult * d_model), nn.GELU(), nn.Dropout(dropout),
                                 nn.Linear(ff_mult * d_model, d_model))
        self.film1, self.film2, self.film3 = (FiLM(cond_dim, d_model) for _ in range(3))
        self.drop = nn.Dropout(dropout)
        self.spatial: nn.Module | None = None
        """An optional residual sub-layer run first, per token (POPDG's DS-Attention over the body joints,
        ``popdg.DSAttention``, pre-normed and dropped out itself); None adds no parameters."""

    def forward(self, x: torch.Tensor, memory: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        if self.spatial is not None:
            x = x + self.spatial(x)
        h = self.norm1(x)
        x = x + self.drop(self.film1(self.self_attn(h, h, h, need_weights=False)[0], cond))
        h = self.norm2(x)
        x = x + self.drop(self.film2(self.cross_attn(h, memory, memory, need_weights=False)[0], cond))
        return x + self.drop(self.film3(self.mlp(self.norm3(x)), cond))
