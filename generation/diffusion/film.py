"""FiLM conditioned on the diffusion step and the genre (GCDance eq. 3-4).

gamma = theta_w(alpha(C)), beta = theta_b(alpha(C)), FiLM(Y) = gamma * Y + beta, with C the genre
embedding plus the step embedding (the genre is "conditioned on the current diffusion timestep") and
alpha a small adapter. theta_w starts at zero with gamma = 1 + theta_w(.), so an untrained FiLM layer is the
identity (it passes its sub-layer's output through unchanged) and conditioning is learned as a correction.
"""
from __future__ import annotations

import torch
from torch import nn


class FiLM(nn.Module):
    def __init__(self, cond_dim: int, channels: int) -> None:
        super().__init__()
        self.adapter = nn.Sequential(nn.SiLU(), nn.Linear(cond_dim, cond_dim))
        self.to_gamma = nn.Linear(cond_dim, channels)
        self.to_beta = nn.Linear(cond_dim, channels)
        for layer in (self.to_gamma, self.to_beta):
            nn.init.zeros_(layer.weight)
            nn.init.zeros_(layer.bias)

    def forward(self, y: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        """y (B, N, C), cond (B, cond_dim)."""
        h = self.adapter(cond)
        return (1 + self.to_gamma(h)).unsqueeze(1) * y + self.to_beta(h).unsqueeze(1)
