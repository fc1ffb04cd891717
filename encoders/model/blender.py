"""Music-motion blender (paper eq. 9-10) and its ablation variants.

``blend`` (eq. 9):  z_t = GELU(W (m_t + a_t + m_t * a_t))  — the additive path keeps cues present in only
one modality, the Hadamard path stresses agreement (e.g. body accents on percussion hits).
``add``: GELU(W (m_t + a_t)); ``mul``: GELU(W (m_t * a_t)); ``motion`` / ``music``: one modality only.
Eq. 10: temporal average pooling over the real (unpadded) tokens.

A clip without music has a = 0 (its music tokens are zeroed by the model), so ``blend`` and ``add``
fall back to the motion path for it; ``mul`` and ``music`` cannot use such a clip (documented limit).
"""
from __future__ import annotations

import torch
from torch import nn

from .variants import FUSIONS  # noqa: E402  (re-exported)


class MusicMotionBlender(nn.Module):
    def __init__(self, d: int, fusion: str = "blend") -> None:
        super().__init__()
        if fusion not in FUSIONS:
            raise ValueError(f"fusion must be one of {FUSIONS}, got {fusion!r}")
        self.fusion = fusion
        self.proj = nn.Linear(d, d)

    def combine(self, motion: torch.Tensor, music: torch.Tensor) -> torch.Tensor:
        if self.fusion == "blend":
            return motion + music + motion * music
        if self.fusion == "add":
            return motion + music
        if self.fusion == "mul":
            return motion * music
        return motion if self.fusion == "motion" else music

    def forward(self, motion: torch.Tensor, music: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """(B, N, d) motion and music tokens, (B, N) real-token mask -> (B, d) pooled dance feature."""
        z = torch.nn.functional.gelu(self.proj(self.combine(motion, music)))
        w = mask.to(z.dtype).unsqueeze(-1)
        return (z * w).sum(1) / w.sum(1).clamp_min(1.0)
