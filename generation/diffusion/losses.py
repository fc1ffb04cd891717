"""The training objectives of GCDance III-B: simple (eq. 5), joint positions (6), velocity (7), foot contact (8).

The model predicts normalised features; eq. 6 and 8 need joint positions, so predictions and targets are
de-normalised and posed by forward kinematics on the project's SMPL-X skeleton (``encoders.motion``, the
same FK the representation decodes with). Eq. 8 uses the *predicted* contact labels: where the model says
a foot (ankle / toe) touches the floor, that joint's predicted velocity is pushed to zero.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from encoders.motion.kinematics import forward_kinematics
from encoders.motion.rotations import rot6d_to_matrix
from encoders.motion.skeleton import smplx52

from ..representation.foot_lock import CONTACT_THRESHOLD
from ..representation.layout import LAYOUT, NUM_JOINTS, ROT_DIM
from ..representation.normalizer import Normalizer

_FOOT = smplx52().foot_indices()
LOSS_NAMES = ("simple", "joints", "velocity", "foot")
"""The losses ``diffusion_losses`` returns (eq. 5-8), in the order the multi-task combiner weights them."""


def joint_positions(features: torch.Tensor) -> torch.Tensor:
    """(B, T, 319) de-normalised features -> (B, T, 52, 3) joint positions (differentiable)."""
    b, t, _ = features.shape
    rot = rot6d_to_matrix(features[..., LAYOUT.rotations].reshape(b, t, NUM_JOINTS, ROT_DIM))
    return forward_kinematics(rot, features[..., LAYOUT.root], smplx52())


@dataclass(frozen=True)
class Posed:
    """Predictions and targets de-normalised and posed once per step, shared by eq. 6-8 and any loss added
    outside them (``kinetic_loss``), so forward kinematics runs once."""

    pred_features: torch.Tensor     # (B, T, 319) de-normalised
    pred_positions: torch.Tensor    # (B, T, 52, 3)
    target_positions: torch.Tensor  # (B, T, 52, 3)


def pose(pred: torch.Tensor, target: torch.Tensor, normalizer: Normalizer) -> Posed:
    """De-normalise normalised predictions and targets (B, T, 319) and pose both by forward kinematics."""
    p_feat = normalizer.denormalise(pred)
    return Posed(p_feat, joint_positions(p_feat), joint_positions(normalizer.denormalise(target)))


def diffusion_losses(pred: torch.Tensor, target: torch.Tensor, normalizer: Normalizer,
                     posed: Posed | None = None) -> dict[str, torch.Tensor]:
    """The four losses (scalars) for normalised predictions and targets (B, T, 319); ``posed``: their
    :func:`pose`, when the caller has it already."""
    simple = torch.mean((pred - target) ** 2)                                         # eq. 5
    velocity = torch.mean(((pred[:, 1:] - pred[:, :-1]) - (target[:, 1:] - target[:, :-1])) ** 2)   # eq. 7
    posed = posed if posed is not None else pose(pred, target, normalizer)
    p_pos, t_pos = posed.pred_positions, posed.target_positions
    joints = torch.mean(((p_pos - t_pos) ** 2).sum(-1))                                # eq. 6
    foot_vel = p_pos[:, 1:, _FOOT] - p_pos[:, :-1, _FOOT]                              # (B, T-1, 4, 3)
    contact = (posed.pred_features[:, :-1, LAYOUT.contacts] > CONTACT_THRESHOLD).to(pred.dtype).unsqueeze(-1)
    foot = torch.mean(((foot_vel * contact) ** 2).sum(-1))                             # eq. 8, predicted labels
    return {"simple": simple, "joints": joints, "velocity": velocity, "foot": foot}
