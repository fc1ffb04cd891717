"""Physical Body Consistency (PBC), as POPDG's ``eval/eval_pbc.py`` computes it (Luke-Luo1/POPDG).

PBC extends EDGE's PFC (:mod:`generation.metrics.pfc`) to the upper body: it adds, per frame, the product
of a hand's (or the head's) speed with the normalised acceleration of the joint that carries it (collar,
neck), and *subtracts* the PFC term:

    term(t) = 0.01 * min(v_left_wrist, v_left_hand)   * a_left_collar(t)
            + 0.01 * min(v_right_wrist, v_right_hand) * a_right_collar(t)
            + 0.1  * v_head                           * a_neck(t)
            - min_left_foot * min_right_foot * a_root(t)          (EDGE's PFC term)

- speeds ``v``: 3-D displacement per frame in metres between frames t+1 and t+2 (not divided by DT);
- ``a_collar``, ``a_neck``: norm of the joint's second difference (DT = 1/30 s) divided by its maximum
  over the sequence (left as zeros when the joint never accelerates, as the reference does);
- ``a_root`` and the foot terms exactly as in PFC (z-up, upward root acceleration clamped at 0);
- per sequence the mean over the T-2 frames, over a set the mean over sequences, times 1e4.

SMPL joints used: 13 / 14 left / right collar, 12 neck, 20 / 21 wrists, 22 / 23 "hand" (our SMPL-24 names
``left_palm`` / ``right_palm``), 15 head, plus PFC's 0, 7, 8, 10, 11. SMPL-X has no palm joint: for a
SMPL-X sample the hand joint defaults to ``left_middle1`` / ``right_middle1`` (the base of the middle finger:
11 cm from the wrist at rest, SMPL's palm joint is 9 cm from it); pass ``hand_joints`` to choose.

How to read it: PBC is not "lower is better". It mixes positive upper-body terms with a subtracted
contact penalty, so a frozen body scores 0 and a body sliding its feet scores negative. POPDG compares a
generator's PBC with the ground truth's: **the closer to the ground-truth value, the better.**

Deviation: when the root never accelerates the reference divides 0 by 0 (NaN); here the root term is 0.
The frame rate and clip-length dependence are PFC's (see :mod:`generation.metrics.pfc`): by default a
sample is resampled to 30 fps, and ``window_frames`` scores fixed-length windows.
"""
from __future__ import annotations

from typing import Iterable, Sequence

import numpy as np

from encoders.errors import InputError

from .pfc import (LEFT_FOOT, PFC_SCALE, REFERENCE_FPS, RIGHT_FOOT, ROOT_JOINT, foot_min_speeds, windowed_mean,
                  joint_index, positions_at, root_acceleration, yup_to_zup)
from .sample import DanceSample

PBC_WEIGHTS = (0.01, 0.01, 0.1)
"""Weights of the left-hand, right-hand and head terms in POPDG."""
SMPL_HAND_JOINTS = ("left_palm", "right_palm")
SMPLX_HAND_JOINTS = ("left_middle1", "right_middle1")


def _hand_joints(sample: DanceSample, hand_joints: Sequence[str] | None) -> tuple[str, str]:
    if hand_joints is not None:
        if len(hand_joints) != 2:
            raise InputError(sample.name, "PBC needs two hand joints (left, right)", field="hand_joints",
                             expected="2 names", got=str(list(hand_joints)))
        return (str(hand_joints[0]), str(hand_joints[1]))
    names = set(sample.joint_names)
    for pair in (SMPL_HAND_JOINTS, SMPLX_HAND_JOINTS):
        if all(n in names for n in pair):
            return pair
    return SMPL_HAND_JOINTS  # lets sample.joints() name what is missing


def normalised_acceleration(x: np.ndarray, dt: float) -> np.ndarray:
    """(T-2,) norm of the second difference of (T, 3) positions, over its max (zeros stay zeros)."""
    vel = (x[1:] - x[:-1]) / dt
    acc = np.linalg.norm((vel[1:] - vel[:-1]) / dt, axis=-1)
    peak = acc.max()
    return acc / peak if peak != 0 else acc


def pbc_frames(sample: DanceSample, *, fps: float | None = REFERENCE_FPS,
               hand_joints: Sequence[str] | None = None) -> np.ndarray:
    """(T-2,) per-frame PBC terms (not yet scaled by 1e4)."""
    pos, rate = positions_at(sample, fps, "PBC", 3)
    left_hand, right_hand = _hand_joints(sample, hand_joints)
    names = ((ROOT_JOINT,) + LEFT_FOOT + RIGHT_FOOT
             + ("left_collar", "right_collar", "neck", "left_wrist", left_hand, "right_wrist", right_hand, "head"))
    z = yup_to_zup(pos[:, joint_index(sample, names)])
    dt = 1.0 / rate
    a_root = root_acceleration(z[:, 0], dt)
    feet = foot_min_speeds(z[:, 1:3], z[:, 3:5])
    a_carriers = [normalised_acceleration(z[:, k], dt) for k in (5, 6, 7)]  # left collar, right collar, neck
    upper = z[:, 8:13]  # left wrist, left hand, right wrist, right hand, head
    speed = np.linalg.norm(upper[2:] - upper[1:-1], axis=-1)  # (T-2, 5) m/frame, 3-D
    left = np.minimum(speed[:, 0], speed[:, 1])
    right = np.minimum(speed[:, 2], speed[:, 3])
    w_l, w_r, w_h = PBC_WEIGHTS
    return (w_l * left * a_carriers[0] + w_r * right * a_carriers[1] + w_h * speed[:, 4] * a_carriers[2]
            - feet[:, 0] * feet[:, 1] * a_root)


def pbc_raw(sample: DanceSample, *, fps: float | None = REFERENCE_FPS, hand_joints: Sequence[str] | None = None,
            window_frames: int | None = None) -> float:
    """The unscaled per-sequence score (POPDG's ``body_loss.mean()``); windows averaged when given."""
    return windowed_mean(sample, lambda s, rate: pbc_frames(s, fps=rate, hand_joints=hand_joints), "PBC", fps,
                         window_frames)


def pbc(sample: DanceSample, *, fps: float | None = REFERENCE_FPS, hand_joints: Sequence[str] | None = None,
        window_frames: int | None = None) -> float:
    """POPDG's Physical Body Consistency of one dance (x 1e4). Closer to the ground truth's value is better."""
    return pbc_raw(sample, fps=fps, hand_joints=hand_joints, window_frames=window_frames) * PFC_SCALE


def pbc_set(samples: Iterable[DanceSample], *, fps: float | None = REFERENCE_FPS,
            hand_joints: Sequence[str] | None = None, window_frames: int | None = None) -> float:
    """The set-level PBC as POPDG reports it: mean of the per-sequence scores, times 1e4."""
    raw = [pbc_raw(s, fps=fps, hand_joints=hand_joints, window_frames=window_frames) for s in samples]
    if not raw:
        raise InputError(None, "no samples to score", field="samples", expected=">= 1 sample", got="0")
    return float(np.mean(raw) * PFC_SCALE)
