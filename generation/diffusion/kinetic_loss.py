"""Kinetic-energy matching: the predicted clean motion should move each body joint as much as the real window does.

Why: eq. 5-7 are squared errors, so the x0 prediction they train is the conditional mean of the clean motion.
Where the music and genre leave the phase or direction of a movement open, that mean is slower than any of the
dances it averages, and every model of this family samples windows with about half of real dance's kinetic
variety (Div_k 4.2-5.5 against the real test windows' 10.3, ``docs/results/generation.md``). FID_k and Div_k are
built from per-joint mean squared speeds (``generation.metrics.kinetic``). This loss compares only those: each
body joint's root-mean-square speed over the window, predicted against real, as a log ratio. It is blind to
phase and direction (two different movements of the same energy cost nothing), and it weighs a window that moves
half as much as it should the same for a ballet adagio as for breaking, which is what the diversity of the
kinetic features across windows depends on.

Not a GCDance equation: a project addition (``TrainConfig.kinetic_loss_weight``), in the family of the
velocity-statistics terms motion generators add beside eq. 7.
"""
from __future__ import annotations

import torch

from encoders.motion.skeleton import SMPL_BODY_22, smplx52

from ..representation.layout import FPS

SPEED_FLOOR = 0.05
"""m/s added to every RMS speed before the log: joints that barely move (the pelvis of a standing pose, about
0.01-0.03 m/s of drift in real windows) should not weigh as much as a limb's stroke, and the log stays finite."""

KINETIC_LAGS = (1, 8)
"""Frames over which the speeds are compared, averaged: 1, frame to frame, what FID_k's features see (the denoiser's
mid-noise predictions move 1.3-1.5x faster than real at this lag: frame-rate jitter); 8 (0.27 s, about half a beat
at 110 BPM), the strokes of the dance (v7's samples move at 0.59x real at this lag; ``bench/probe_kinetic_energy.py``,
``bench/results/kinetic_energy_v7.md``)."""

_BODY = [smplx52().index(j) for j in SMPL_BODY_22]


def rms_joint_speed(positions: torch.Tensor, fps: float = FPS, lag: int = 1) -> torch.Tensor:
    """(B, T, J, 3) joint positions (m) -> (B, 22) RMS speed (m/s) of each SMPL body joint over the window,
    measured over ``lag`` frames (1: frame to frame; a longer lag sees the strokes, not the frame-rate jitter)."""
    velocity = (positions[:, lag:, _BODY] - positions[:, :-lag, _BODY]) * (fps / lag)
    return torch.sqrt((velocity ** 2).sum(-1).mean(1) + 1e-12)


def kinetic_energy_loss(pred_positions: torch.Tensor, target_positions: torch.Tensor, fps: float = FPS,
                        lags: tuple[int, ...] = KINETIC_LAGS) -> torch.Tensor:
    """Mean squared log ratio of predicted to real per-joint RMS speed, averaged over ``lags`` (a scalar; 0 when
    every joint of every window moves as fast on average as in the real window, at every lag)."""
    terms = []
    for lag in lags:
        pred = torch.log(rms_joint_speed(pred_positions, fps, lag) + SPEED_FLOOR)
        real = torch.log(rms_joint_speed(target_positions, fps, lag) + SPEED_FLOOR)
        terms.append(torch.mean((pred - real) ** 2))
    return torch.stack(terms).mean()
