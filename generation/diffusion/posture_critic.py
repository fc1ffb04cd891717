"""A genre critic that reads the dance's posture statistics: where each joint is and how far it travels.

Why: v3's feature critic (``genre_critic.GenreCritic``, convolutions on the normalised 319-d features) reads
the requested genre in 74% of v3's control samples while the control test's classifier on real-motion
descriptors reads it in 43% (``bench/probe_control_gap.py``). Splitting that classifier's logits by
descriptor group (``bench/results/control_gap_v3.json``: ``misses_logit_gap_by_group`` and each genre's
``descriptor_z``) puts most of the miss on posture: the generated windows' root-relative joint positions
spread less over time than real dances of the requested genre, and the mean posture is off too. The feature
critic can be satisfied by cues that leave posture unchanged (hand shapes, small joint-angle patterns); this
one cannot: it sees only the forward-kinematics joint positions, summarised per window as

- the mean and the spread over time of every joint's position relative to the root (posture and its range),
- every joint's mean speed (how much it moves),

standardised by their train-set statistics and read by a two-layer MLP. It is another model than the
evaluation's classifier (an MLP on FK statistics computed differentiably from the denoiser's prediction,
fitted with noise on its inputs, against a logistic regression on the evaluation protocol's kinetic,
geometric, hand and posture features), but it shares the idea that posture statistics carry the genre. So a
generator trained against it is also judged by a control classifier without the posture groups
(``control_no_posture`` in ``bench/ablate_generator.py``) and by the feature critic alone (the probe).
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from ..representation.layout import FPS
from ..representation.normalizer import Normalizer
from .losses import joint_positions


def posture_statistics(positions: torch.Tensor) -> torch.Tensor:
    """(B, T, J, 3) joint positions -> (B, 7 J): root-relative mean and std over time (3 J each), mean speed (J,
    metres per second at the representation's frame rate)."""
    rel = positions - positions[:, :, :1]
    speed = (positions[:, 1:] - positions[:, :-1]).norm(dim=-1).mean(1) * FPS
    return torch.cat([rel.mean(1).flatten(1), rel.std(1).flatten(1), speed], dim=1)


class PostureCritic(nn.Module):
    """(B, T, 319) normalised motion -> (B, G) genre logits from posture statistics of its FK joint positions."""

    def __init__(self, normalizer: Normalizer, stat_mean: torch.Tensor, stat_std: torch.Tensor, genres: int,
                 width: int = 256) -> None:
        super().__init__()
        self.register_buffer("feature_mean", torch.as_tensor(normalizer.mean, dtype=torch.float32))
        self.register_buffer("feature_std", torch.as_tensor(normalizer.std, dtype=torch.float32))
        self.register_buffer("stat_mean", stat_mean.float())
        self.register_buffer("stat_std", stat_std.float())
        self.head = nn.Sequential(nn.Linear(len(stat_mean), width), nn.GELU(), nn.Dropout(0.2),
                                  nn.Linear(width, genres))

    def statistics(self, motion: torch.Tensor) -> torch.Tensor:
        """Standardised posture statistics of normalised motion (differentiable)."""
        positions = joint_positions(motion * self.feature_std + self.feature_mean)
        return (posture_statistics(positions) - self.stat_mean) / self.stat_std

    def forward(self, motion: torch.Tensor) -> torch.Tensor:
        return self.head(self.statistics(motion))


@torch.no_grad()
def statistics_scale(windows: torch.utils.data.Dataset, normalizer: Normalizer,
                     batch_size: int = 256) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and std (floored at 1e-4) of the posture statistics over a dataset of normalised windows."""
    stats = [posture_statistics(joint_positions(normalizer.denormalise(batch["motion"])))
             for batch in torch.utils.data.DataLoader(windows, batch_size=batch_size, generator=torch.Generator())]
    s = torch.cat(stats).double().numpy()
    return torch.as_tensor(s.mean(0)), torch.as_tensor(np.maximum(s.std(0), 1e-4))


__all__ = ["PostureCritic", "posture_statistics", "statistics_scale"]
