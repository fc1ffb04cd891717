"""DS-Attention: attention across the body's joints inside the body expert, with the Space Augmentation
Algorithm (POPDG 4.2.1, Fig. 4, Algorithm 1).

Why: the denoiser's attention runs over time only; POPDG adds, per frame, an attention whose tokens are the
joints, and observed that errors grow with a joint's distance from the root (its Fig. 3), so it strengthens
each joint's connection with the root by its parent's.

How it sits here: as in POPDG's released decoder, the joints live in the hidden features. Per token, the
pre-normed hidden vector is projected to queries, keys and values for J = 22 body joints (``joint_dim``
features each, per head); the joints attend to each other (softmax over joints), the Space Augmentation
Algorithm edits the attention map, and the joints' outputs are projected back to the model width as a
residual update. Nothing mixes tokens in time, so it adds no sequence-length cost; it sits first in every
body block (DS-Attention then temporal attention, as POPDG's decoder block). The hand expert has none.
Sized for a CPU: one head of 8 features per joint (the q/k/v projections, d_model -> 3 x 22 x 8, are nearly
all of its cost); measured on the 192-wide recipe, two heads cost +25 % FLOPs per training step, one +13 %.

Space Augmentation Algorithm (Algorithm 1, as released): from the root outward by skeleton level, for every
joint c whose parent p is not the root, A[0, c] <- (A[0, c] + A[0, p]) / 2 and A[c, 0] <- (A[c, 0] + A[p, 0]) / 2,
with the parent already updated, on the post-softmax map. The paper says it works "with or without dividing
by 2" (``halve``). Because each update is linear in the root's row (column), the whole pass is one fixed
J x J matrix S: row_0 <- row_0 S, col_0 <- S^T col_0 (:func:`saa_matrix`), i.e. two small matrix products
instead of a Python loop per level. POPDG's code applies it to the spine, neck, head, collars and shoulders
only; here every body joint two or more levels below the root (legs and arms too), as the issue asks.
"""
from __future__ import annotations

import math
from typing import Sequence

import torch
from torch import nn

from encoders.motion.skeleton import smplx52

from ...representation.layout import NUM_BODY_JOINTS


def body_parents() -> tuple[int, ...]:
    """Parents of the 22 SMPL-X body joints (pelvis = root, -1)."""
    return tuple(smplx52().parents[:NUM_BODY_JOINTS])


def joint_levels(parents: Sequence[int]) -> list[int]:
    """Each joint's distance from the root (root 0)."""
    level: list[int] = []
    for j, p in enumerate(parents):
        if p >= j:
            raise ValueError(f"parents must be topologically ordered (joint {j} has parent {p})")
        level.append(0 if p < 0 else level[p] + 1)
    return level


def saa_matrix(parents: Sequence[int], halve: bool = True) -> torch.Tensor:
    """S (J, J): the Space Augmentation Algorithm on the root's row, row_0' = row_0 @ S.

    Built by running Algorithm 1 on the identity (each update is linear), level by level from the root.
    """
    if not parents or parents[0] >= 0:
        raise ValueError("the root must be joint 0")
    level = joint_levels(parents)
    j = len(parents)
    s = torch.eye(j, dtype=torch.float64)
    scale = 0.5 if halve else 1.0
    for lv in range(2, max(level, default=0) + 1):
        for c in (i for i in range(j) if level[i] == lv):
            s[:, c] = (s[:, c] + s[:, parents[c]]) * scale
    return s.float()


def space_augment(attn: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
    """Apply S to the root's row and column of attention maps (..., J, J) (differentiable, out of place)."""
    row = attn[..., 0, :] @ s                                  # (..., J): the root's connection to every joint
    col = attn[..., :, 0] @ s                                  # (..., J): every joint's connection to the root
    j = attn.shape[-1]
    e0 = torch.zeros(j, dtype=attn.dtype, device=attn.device)
    e0[0] = 1.0
    out = attn + e0[:, None] * (row - attn[..., 0, :]).unsqueeze(-2)
    return out + (col - out[..., :, 0]).unsqueeze(-1) * e0


class DSAttention(nn.Module):
    """Pre-normed joint attention per token: (B, N, d_model) -> residual update (B, N, d_model)."""

    def __init__(self, d_model: int, parents: Sequence[int] | None = None, heads: int = 1, joint_dim: int = 8,
                 dropout: float = 0.0, halve: bool = True) -> None:
        super().__init__()
        parents = body_parents() if parents is None else tuple(parents)
        self.joints, self.heads, self.joint_dim = len(parents), heads, joint_dim
        width = heads * self.joints * joint_dim
        self.norm = nn.LayerNorm(d_model)
        self.qkv = nn.Linear(d_model, 3 * width)
        self.out = nn.Linear(width, d_model)
        self.drop = nn.Dropout(dropout)
        self.register_buffer("saa", saa_matrix(parents, halve), persistent=False)

    def attention(self, x: torch.Tensor) -> torch.Tensor:
        """The augmented joint-attention maps (B, N, heads, J, J) of pre-normed input (for inspection)."""
        q, k, _ = self._qkv(x)
        return self._augmented_map(q, k)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, _ = x.shape
        q, k, v = self._qkv(x)
        y = self._augmented_map(q, k) @ v                      # (B, N, heads, J, joint_dim)
        return self.drop(self.out(y.reshape(b, n, -1)))

    def _augmented_map(self, q: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
        """Softmax over the joints, then the Space Augmentation Algorithm on the root's row and column."""
        return space_augment(torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(self.joint_dim), dim=-1), self.saa)

    def _qkv(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        b, n, _ = x.shape
        qkv = self.qkv(self.norm(x)).view(b, n, 3, self.heads, self.joints, self.joint_dim)
        return qkv.unbind(2)
