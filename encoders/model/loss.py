"""Unidirectional text-to-dance InfoNCE (paper eq. 11-12) with a learnable temperature.

Each caption is scored against every dance of the mini-batch; only the text->dance direction is
trained because that is the search direction (a user types, the engine ranks dances).
"""
from __future__ import annotations

import math

import torch
from torch import nn


class TextToDanceInfoNCE(nn.Module):
    """-mean_i log softmax_j(<t_i, d_j> / tau)[i], tau = exp(-logit_scale), learnable.

    ``init_temperature`` 0.1 is "moderate" (CLIP starts at 0.07): a sharper start over-commits to the
    first random alignments on a small corpus. The scale is clamped at 100 (tau >= 0.01) as in CLIP.
    """

    def __init__(self, init_temperature: float = 0.1, max_scale: float = 100.0) -> None:
        super().__init__()
        if not 0 < init_temperature < 10:
            raise ValueError(f"init_temperature must be in (0, 10), got {init_temperature}")
        self.logit_scale = nn.Parameter(torch.tensor(math.log(1.0 / init_temperature)))
        self.max_log = math.log(max_scale)

    @property
    def temperature(self) -> float:
        return float(torch.exp(-self.logit_scale.detach().clamp(max=self.max_log)))

    def forward(self, text: torch.Tensor, dance: torch.Tensor) -> torch.Tensor:
        """``text`` (B, D) and ``dance`` (B, D), L2-normalised, row i matched with row i."""
        if text.shape != dance.shape:
            raise ValueError(f"text {tuple(text.shape)} and dance {tuple(dance.shape)} batches differ")
        scale = self.logit_scale.clamp(max=self.max_log).exp()
        logits = scale * text @ dance.t()
        target = torch.arange(len(text), device=text.device)
        return nn.functional.cross_entropy(logits, target)
