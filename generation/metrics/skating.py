"""Foot skating ratio: the share of floor-contact frames in which a foot slides horizontally. Lower is better.

Two modes.

``mode="project"`` (default), per foot joint (``left_ankle``, ``left_foot`` (toe), ``right_ankle``,
``right_foot``):

- floor: ``floor="estimate"`` (default) is the project's floor estimate (``encoders.motion.bvh.floor_height``:
  the lowest foot joint per frame, 5th percentile over frames, robust to a glitch frame and to a dance that
  starts in the air); a number is used as the floor height (``0.0`` = the project's grounded frame, where
  the lowest foot joint stands at y = 0).
- contact: a joint is in contact in frame t when its height above the floor is at most ``ankle_height``
  (0.08 m) for an ankle, ``toe_height`` (0.05 m) for a toe joint: LODGE's thresholds (joint centres, not
  the sole: an ankle rests ~6 cm above the toe joint).
- contact step: frames t -> t+1 with the joint in contact at both (a foot swinging low through the
  contact zone for one frame is not a contact).
- sliding: a contact step whose horizontal (x, z) displacement, in m/s, exceeds ``speed_threshold``
  (0.5 m/s = 1.7 cm per frame at 30 fps: above EDGE / FineDance's 0.3 m/s "static foot" rule, so the
  tracking jitter of a planted foot does not count, and within LODGE's effective 0.42-0.6 m/s). In m/s,
  so the value does not depend on the frame rate.
- ratio: sliding joint-steps / contact joint-steps (``left`` / ``right`` per side); NaN when no joint
  ever stays on the floor. Over a set: pooled (sum of sliding over sum of contact steps).

``mode="lodge"`` reproduces LODGE's ``metric/foot_skating.py`` (``calc_foot_skating_ratio``; LODGE reports
about 5 % on FineDance this way) on the joint positions its SMPL-X forward kinematics would give:

- floor: the toe joints' height in frame 0 (their mean when they differ by less than 2 cm, else the lower
  one); the sequence is shifted so it is 0.
- contact per *foot*: ankle height <= 0.08 m and toe height <= 0.05 m in that frame.
- velocity: forward difference ``x[t+1] - x[t]`` in metres per frame (the last frame's is 0), so it
  assumes 30 fps (a sample at another rate is resampled to 30 fps first, ``fps``).
- sliding per foot: in a contact frame, |mean(v_x, v_z)| > 0.01 m/frame for the ankle *or* the toe.
  Note the signed mean, not the norm: a slide along the diagonal x = -z is never detected, one along
  x alone must exceed 0.02 m/frame (0.6 m/s).
- ratio per foot: sliding frames / contact frames, computed by torch as float32 (reproduced); NaN when
  the foot never touches the floor. Over a set: mean per foot over sequences, then
  ``ratio = (mean_right + mean_left) / 2``.
"""
from __future__ import annotations

from dataclasses import dataclass, asdict
from typing import Iterable

import numpy as np

from encoders.errors import InputError
from encoders.motion.bvh import floor_height

from .pfc import REFERENCE_FPS, joint_index, positions_at
from .sample import DanceSample

FOOT_ORDER = ("left_ankle", "left_foot", "right_ankle", "right_foot")
ANKLE_HEIGHT = 0.08
TOE_HEIGHT = 0.05
SPEED_THRESHOLD = 0.5
"""Project mode: horizontal speed (m/s) above which a contact joint slides."""
LODGE_SPEED_THRESHOLD = 0.01
"""LODGE: |mean(v_x, v_z)| in metres per frame."""
LODGE_TOE_TIE = 0.02


@dataclass
class SkatingResult:
    """Foot skating of one dance (or a set). ``ratio``, ``left``, ``right`` in [0, 1], NaN without contact.

    Counts are joint-steps (frame t -> t+1, each foot joint counts) in the project mode and foot-frames in the
    LODGE mode.
    ``floor`` is the floor height used (NaN for a set).
    """

    ratio: float
    left: float
    right: float
    left_contact: int
    left_sliding: int
    right_contact: int
    right_sliding: int
    floor: float
    mode: str

    @property
    def contact_frames(self) -> int:
        return self.left_contact + self.right_contact

    @property
    def sliding_frames(self) -> int:
        return self.left_sliding + self.right_sliding

    def as_dict(self) -> dict:
        d = asdict(self)
        d.update(contact_frames=self.contact_frames, sliding_frames=self.sliding_frames)
        return d


def _ratio(num: float, den: float) -> float:
    return float(num / den) if den > 0 else float("nan")


def lodge_floor(left_toe_y: float, right_toe_y: float) -> float:
    """LODGE's floor: mean of the frame-0 toe heights when within 2 cm of each other, else the lower one."""
    if abs(left_toe_y - right_toe_y) < LODGE_TOE_TIE:
        return (left_toe_y + right_toe_y) / 2
    return min(left_toe_y, right_toe_y)


def _lodge(sample: DanceSample, fps: float | None) -> SkatingResult:
    pos, _ = positions_at(sample, fps, "foot skating", 2)
    feet = pos[:, joint_index(sample, FOOT_ORDER)]  # (T, 4, 3): l ankle, l toe, r ankle, r toe
    floor = lodge_floor(feet[0, 1, 1], feet[0, 3, 1])
    height = feet[..., 1] - floor
    vel = np.zeros_like(feet)
    vel[:-1] = feet[1:] - feet[:-1]
    tangent = np.abs((vel[..., 0] + vel[..., 2]) / 2)  # (T, 4)
    ratios, counts = [], []
    for ankle, toe in ((0, 1), (2, 3)):
        contact = (height[:, ankle] <= ANKLE_HEIGHT) & (height[:, toe] <= TOE_HEIGHT)
        fast = (tangent[:, ankle] > LODGE_SPEED_THRESHOLD) | (tangent[:, toe] > LODGE_SPEED_THRESHOLD)
        n_contact, n_slide = int(contact.sum()), int((contact & fast).sum())
        counts += [n_contact, n_slide]
        # torch divides two int64 counts in float32 (its default dtype); .item() widens the float32
        ratios.append(float(np.float32(n_slide) / np.float32(n_contact)) if n_contact else float("nan"))
    left, right = ratios
    return SkatingResult((right + left) / 2, left, right, *counts, float(floor), "lodge")


def _project(sample: DanceSample, *, speed_threshold: float, ankle_height: float, toe_height: float,
             floor: str | float) -> SkatingResult:
    sample.require_frames(2, "foot skating")
    feet = sample.positions[:, joint_index(sample, FOOT_ORDER)]
    if isinstance(floor, str):
        if floor != "estimate":
            raise InputError(sample.name, "unknown floor for foot skating", field="floor",
                             expected="'estimate' or a height in metres", got=repr(floor))
        level = floor_height(feet[..., 1])
    else:
        level = float(floor)
    limits = np.array([ankle_height, toe_height, ankle_height, toe_height])
    low = (feet[..., 1] - level) <= limits  # (T, 4)
    contact = low[1:] & low[:-1]  # (T-1, 4): the joint is on the floor at both ends of the step
    speed = np.linalg.norm(feet[1:][..., [0, 2]] - feet[:-1][..., [0, 2]], axis=-1) * sample.fps  # m/s
    slide = contact & (speed > speed_threshold)
    c_side = contact.reshape(len(contact), 2, 2).sum(axis=(0, 2))
    s_side = slide.reshape(len(contact), 2, 2).sum(axis=(0, 2))
    return SkatingResult(_ratio(s_side.sum(), c_side.sum()), _ratio(s_side[0], c_side[0]), _ratio(s_side[1], c_side[1]),
                         int(c_side[0]), int(s_side[0]), int(c_side[1]), int(s_side[1]), float(level), "project")


def foot_skating(sample: DanceSample, *, mode: str = "project", speed_threshold: float = SPEED_THRESHOLD,
                 ankle_height: float = ANKLE_HEIGHT, toe_height: float = TOE_HEIGHT,
                 floor: str | float = "estimate", fps: float | None = REFERENCE_FPS) -> SkatingResult:
    """Foot skating ratio of one dance (see the module docstring for both modes).

    ``speed_threshold`` (m/s), ``ankle_height`` / ``toe_height`` (m above the floor) and ``floor``
    apply to the project mode; ``fps`` (the rate LODGE's per-frame thresholds assume) to the LODGE mode,
    which uses LODGE's constants.
    """
    if mode == "lodge":
        return _lodge(sample, fps)
    if mode != "project":
        raise InputError(sample.name, "unknown foot skating mode", field="mode", expected="'project' or 'lodge'",
                         got=repr(mode))
    return _project(sample, speed_threshold=speed_threshold, ankle_height=ankle_height, toe_height=toe_height,
                    floor=floor)


def foot_skating_set(samples: Iterable[DanceSample], *, mode: str = "project", **kwargs) -> SkatingResult:
    """Set-level skating: pooled frames (project mode) or LODGE's mean of per-sequence ratios (lodge mode)."""
    results = [foot_skating(s, mode=mode, **kwargs) for s in samples]
    if not results:
        raise InputError(None, "no samples to score", field="samples", expected=">= 1 sample", got="0")
    counts = [sum(getattr(r, k) for r in results)
              for k in ("left_contact", "left_sliding", "right_contact", "right_sliding")]
    if mode == "lodge":
        left = float(np.mean([r.left for r in results]))
        right = float(np.mean([r.right for r in results]))
        return SkatingResult((right + left) / 2, left, right, *counts, float("nan"), "lodge")
    lc, ls, rc, rs = counts
    return SkatingResult(_ratio(ls + rs, lc + rc), _ratio(ls, lc), _ratio(rs, rc), *counts, float("nan"), "project")
