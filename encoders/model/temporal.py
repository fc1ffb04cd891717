"""Temporal encoders for music (35-d features) and motion (motion features): one structure, three backbones.

input -> linear (d) -> learned positional embedding -> L x [temporal block -> Conv1d(k=3, s=2)] -> tokens

The temporal block is a Transformer encoder layer (the paper's choice: every frame can attend to
distant preparation / repetition), or an LSTM / Elman RNN layer for the ablation table. Sequences
are right-padded; ``mask`` (B, T) marks real frames, is used as the attention key-padding mask,
zeroes padded positions before each convolution so they do not leak into real ones, and is
downsampled with the tokens (a token is real when the frame at its centre is).
"""
from __future__ import annotations

from typing import Literal

import torch
from torch import nn

TemporalKind = Literal["transformer", "lstm", "rnn"]
from .variants import TEMPORAL_KINDS  # noqa: E402  (re-exported)


class _RecurrentBlock(nn.Module):
    """A unidirectional LSTM / RNN layer with a residual connection and layer norm.

    Unidirectional so that right-padding never influences real frames (no packing needed).
    """

    def __init__(self, kind: str, d: int, dropout: float) -> None:
        super().__init__()
        cls = nn.LSTM if kind == "lstm" else nn.RNN
        self.rnn = cls(d, d, batch_first=True)
        self.norm = nn.LayerNorm(d)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        out, _ = self.rnn(x)
        return self.norm(x + self.drop(out))


class _TransformerBlock(nn.Module):
    def __init__(self, d: int, heads: int, ff_mult: int, dropout: float) -> None:
        super().__init__()
        self.layer = nn.TransformerEncoderLayer(d, heads, d * ff_mult, dropout, activation="gelu",
                                                batch_first=True, norm_first=True)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        # Every sequence keeps at least one real frame, so no attention row is fully masked.
        return self.layer(x, src_key_padding_mask=~mask)


class TemporalEncoder(nn.Module):
    """Maps (B, T, in_dim) frame features to (B, ~T / 2^L, d) temporal tokens and their mask."""

    def __init__(self, in_dim: int, d: int, max_len: int, layers: int = 2, kind: str = "transformer",
                 heads: int = 4, ff_mult: int = 2, dropout: float = 0.1) -> None:
        super().__init__()
        if kind not in TEMPORAL_KINDS:
            raise ValueError(f"temporal backbone must be one of {TEMPORAL_KINDS}, got {kind!r}")
        self.input = nn.Linear(in_dim, d)
        self.pos = nn.Parameter(torch.zeros(1, max_len, d))
        nn.init.normal_(self.pos, std=0.02)
        self.max_len = max_len
        self.drop = nn.Dropout(dropout)
        self.blocks = nn.ModuleList(
            _TransformerBlock(d, heads, ff_mult, dropout) if kind == "transformer" else _RecurrentBlock(kind, d, dropout)
            for _ in range(layers))
        self.downs = nn.ModuleList(nn.Conv1d(d, d, kernel_size=3, stride=2, padding=1) for _ in range(layers))
        self.out_norm = nn.LayerNorm(d)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if x.shape[1] > self.max_len:
            raise ValueError(f"sequence of {x.shape[1]} frames exceeds the encoder's max_len {self.max_len}")
        h = self.drop(self.input(x) + self.pos[:, : x.shape[1]])
        m = mask
        for block, down in zip(self.blocks, self.downs):
            h = block(h, m) * m.unsqueeze(-1)
            h = torch.nn.functional.gelu(down(h.transpose(1, 2)).transpose(1, 2))
            m = m[:, ::2]
        return self.out_norm(h), m
