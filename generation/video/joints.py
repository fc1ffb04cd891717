"""The joints guidance is drawn from: the 22 SMPL body joints, and SMPL-X finger chains when the record has them.

Why a separate step: every map (capsule body, OpenPose skeleton, camera fit) must see the *same* joints,
low-passed the same way, or the skeleton map and the depth map of one frame disagree. Joint names and
order come from :mod:`encoders.motion.skeleton` (SMPL-X 52 as FineDance stores it); nothing is re-defined
here except the OpenPose finger order (thumb, index, middle, ring, pinky) the hand maps need.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from encoders.errors import InputError
from encoders.motion.canonical import frames_from_axes
from encoders.motion.kinematics import smooth_gaussian
from encoders.motion.record import MotionRecord
from encoders.motion.skeleton import SMPL_BODY_22

#: Index of each body joint name in :data:`SMPL_BODY_22` (the order of :attr:`GuidanceJoints.body`).
BODY_INDEX: dict[str, int] = {n: i for i, n in enumerate(SMPL_BODY_22)}

#: Fingers in OpenPose hand order; SMPL-X stores them index, middle, pinky, ring, thumb.
FINGERS_OPENPOSE: tuple[str, ...] = ("thumb", "index", "middle", "ring", "pinky")
SIDES: tuple[str, ...] = ("left", "right")

#: Length of the extrapolated distal segment as a fraction of the last SMPL-X phalanx (joint 2 -> joint 3).
#: SMPL-X has no fingertip joints; its joint 3 is the DIP (the thumb's IP), and a distal phalanx plus the pad
#: is about as long as the middle phalanx.
FINGERTIP_RATIO = 0.9


def finger_joint_names(side: str) -> list[str]:
    """SMPL-X names of one hand's 15 finger joints, in OpenPose finger order, 3 per finger (base to DIP)."""
    return [f"{side}_{finger}{k}" for finger in FINGERS_OPENPOSE for k in (1, 2, 3)]


@dataclass(frozen=True)
class GuidanceJoints:
    """World joint positions (metres, +y up) for every frame, ready to be rendered.

    ``body``: (T, 22, 3) in :data:`SMPL_BODY_22` order. ``fingers``: (T, 2, 5, 4, 3) or None: per side
    (left, right), per finger in OpenPose order (thumb, index, middle, ring, pinky), the three SMPL-X joints
    plus the extrapolated tip. ``palms``: (T, 2, 3) or None: SMPL's palm joints when the record has them
    instead of fingers (AIST++), which give the hands a direction.
    """

    fps: float
    body: np.ndarray
    fingers: np.ndarray | None = None
    palms: np.ndarray | None = None

    @property
    def num_frames(self) -> int:
        return int(self.body.shape[0])

    @property
    def has_fingers(self) -> bool:
        return self.fingers is not None

    def joint(self, name: str) -> np.ndarray:
        """(T, 3) positions of one body joint."""
        return self.body[:, BODY_INDEX[name]]

    def all_points(self) -> np.ndarray:
        """(T, N, 3): every body and finger point (camera fitting, tests)."""
        parts = [self.body]
        if self.fingers is not None:
            parts.append(self.fingers.reshape(self.num_frames, -1, 3))
        if self.palms is not None:
            parts.append(self.palms)
        return np.concatenate(parts, axis=1)

    def trunk_frames(self) -> np.ndarray:
        """(T, 3, 3) rotations with columns (left, up, forward) of the trunk.

        The lateral axis averages the hip and shoulder lines (a twisting dancer faces between the two);
        up is the hip-midpoint-to-shoulder-midpoint line. Forward = left x up, +z at rest.
        """
        lateral = (self.joint("left_hip") - self.joint("right_hip")) \
            + (self.joint("left_shoulder") - self.joint("right_shoulder"))
        hips = 0.5 * (self.joint("left_hip") + self.joint("right_hip"))
        shoulders = 0.5 * (self.joint("left_shoulder") + self.joint("right_shoulder"))
        return frames_from_axes(lateral, shoulders - hips)


def fingertips(chains: np.ndarray, ratio: float = FINGERTIP_RATIO) -> np.ndarray:
    """(..., 3, 3) base/middle/DIP joints -> (..., 4, 3) with the tip extrapolated along the last phalanx."""
    tip = chains[..., 2, :] + ratio * (chains[..., 2, :] - chains[..., 1, :])
    return np.concatenate([chains, tip[..., None, :]], axis=-2)


def guidance_joints(record: MotionRecord, *, hands: bool | None = None,
                    smooth_sigma: float = 0.0) -> GuidanceJoints:
    """The joints of ``record`` to render, optionally low-passed.

    ``hands``: None uses the SMPL-X finger joints when all 30 are present; True requires them (InputError
    otherwise); False ignores them. ``smooth_sigma``: Gaussian low-pass in frames (0 = off) applied to
    every joint before anything is derived from it, so guidance that flickers with mocap noise (a known
    complaint about Champ's SMPL guidance) can be steadied; 1 frame keeps the beat-rate motion.
    """
    if not isinstance(record, MotionRecord):
        raise InputError(None, "not a motion record", field="record", expected="encoders.motion.record.MotionRecord",
                         got=type(record).__name__)
    if record.num_frames == 0:
        raise InputError(None, "the dance has no frames", field="positions", expected="T >= 1", got="T = 0")
    if not np.isfinite(smooth_sigma) or smooth_sigma < 0:
        raise InputError(None, "bad smoothing", field="smooth_sigma", expected="a finite value >= 0 (frames)",
                         got=str(smooth_sigma))
    body = record.body22().astype(np.float64)     # raises InputError naming the missing joints
    names = {n: i for i, n in enumerate(record.joint_names)}
    finger_names = [finger_joint_names(side) for side in SIDES]
    have_fingers = all(n in names for side in finger_names for n in side)
    if hands and not have_fingers:
        missing = [n for side in finger_names for n in side if n not in names]
        raise InputError(None, "hands requested but the record has no SMPL-X finger joints", field="joint_names",
                         expected="the 30 SMPL-X finger joints (52-joint record)", got=f"missing {missing[:3]}")
    fingers = None
    if have_fingers and hands is not False:
        idx = [[names[n] for n in side] for side in finger_names]
        fingers = record.positions[:, np.asarray(idx)].astype(np.float64).reshape(record.num_frames, 2, 5, 3, 3)
    palms = None
    if fingers is None and hands is not False and all(f"{s}_palm" in names for s in SIDES):
        palms = record.positions[:, [names[f"{s}_palm"] for s in SIDES]].astype(np.float64)
    if smooth_sigma > 0:
        body = smooth_gaussian(body, smooth_sigma)
        fingers = None if fingers is None else smooth_gaussian(fingers, smooth_sigma)
        palms = None if palms is None else smooth_gaussian(palms, smooth_sigma)
    if fingers is not None:
        fingers = fingertips(fingers)
    return GuidanceJoints(float(record.fps), body, fingers, palms)
