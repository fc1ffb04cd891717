"""The Alignment Module (POPDG 4.3, Fig. 5): dance and music, convolved in time, join the step condition.

Why: POPDG modulates the dance by a condition that sees the temporal features of both the music and the
(noisy) dance, not the step alone, and reports better beat alignment and quality for it (its Table 3).

How, kept light for a CPU: a 1-D convolution over the body expert's tokens (the dance) and one over the
music tokens, each depthwise (kernel 5, i.e. +-2 tokens, +-0.27 s at stride 4) then pointwise, a GELU, and
the mean over time; both are added to the condition the FiLM layers already use (the step embedding plus
the genre: GCDance conditions the genre on the step) and go through an MLP, DenseFiLM-like (Mittal et al.),
whose output is *added* to that condition. The last layer starts at zero, so a model with the module
enabled starts as the model without it and the module is learned as a correction (as the FiLM gates are).
The nonlinearity before the mean is what lets the pooled vector carry more than an average (e.g. how much
the dance and the music move within the window); a mean of a linear convolution would only be a reweighted
average of the tokens. With the music dropped (classifier-free guidance), the music tokens are the null
embedding and so is this module's music input.
"""
from __future__ import annotations

import torch
from torch import nn


class _TemporalPool(nn.Module):
    """(B, N, C) tokens -> (B, C): depthwise + pointwise 1-D convolution, GELU, mean over time."""

    def __init__(self, channels: int, kernel: int) -> None:
        super().__init__()
        self.depthwise = nn.Conv1d(channels, channels, kernel, padding=kernel // 2, groups=channels)
        self.pointwise = nn.Conv1d(channels, channels, 1)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        h = self.pointwise(self.depthwise(tokens.transpose(1, 2)))
        return nn.functional.gelu(h).mean(dim=-1)


class AlignmentModule(nn.Module):
    """dance tokens (B, N, d), music tokens (B, M, d), condition (B, d) -> a correction to the condition (B, d)."""

    def __init__(self, d_model: int, kernel: int = 5) -> None:
        super().__init__()
        self.dance = _TemporalPool(d_model, kernel)
        self.music = _TemporalPool(d_model, kernel)
        self.mlp = nn.Sequential(nn.LayerNorm(d_model), nn.Linear(d_model, d_model), nn.SiLU())
        self.to_cond = nn.Linear(d_model, d_model)
        nn.init.zeros_(self.to_cond.weight)
        nn.init.zeros_(self.to_cond.bias)

    def forward(self, dance: torch.Tensor, music: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        return self.to_cond(self.mlp(cond + self.dance(dance) + self.music(music)))
