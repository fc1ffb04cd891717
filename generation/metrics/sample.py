"""The one input type of every generation metric: a named joint-position sequence with its music beats.

Why one type: FID / Div / BAS / PFC / PBC, foot skating and jerk all read the same things (positions in
metres, +y up, a frame rate, joint names to find the feet, hands and root, the music's beat times), and
input checks (NaN, too few frames, mismatched joints) must name the sequence the same way everywhere.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from encoders.errors import InputError


@dataclass
class DanceSample:
    """One dance to measure.

    ``positions``: (T, J, 3) global joint positions, metres, +y up (the project's frame), at ``fps``.
    ``joint_names``: J names in the project's naming (``encoders.motion.skeleton``: SMPL-X 52 order for
    generated and rotation-based motion, the 22 SMPL body joints at least).
    ``music_beats``: beat times of the music in seconds (None when the sample has no music).
    ``name``: how errors and per-sample reports refer to it (file name or clip key).
    """

    name: str
    positions: np.ndarray
    fps: float
    joint_names: Sequence[str]
    music_beats: np.ndarray | None = None
    meta: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.positions = np.asarray(self.positions, dtype=np.float64)
        self.joint_names = tuple(str(n) for n in self.joint_names)
        if self.positions.ndim != 3 or self.positions.shape[-1] != 3:
            raise InputError(self.name, "bad joint positions", field="positions", expected="(T, J, 3)",
                             got=str(self.positions.shape))
        if self.positions.shape[1] != len(self.joint_names):
            raise InputError(self.name, "joint names and positions disagree", field="joint_names",
                             expected=f"{self.positions.shape[1]} names", got=str(len(self.joint_names)))
        if not np.isfinite(self.positions).all():
            bad = int((~np.isfinite(self.positions)).any(axis=(1, 2)).sum())
            raise InputError(self.name, f"joint positions contain NaN or infinite values in {bad} frame(s)",
                             field="positions")
        if not (np.isfinite(self.fps) and self.fps > 0):
            raise InputError(self.name, "frame rate must be positive", field="fps", expected="> 0", got=str(self.fps))
        if self.music_beats is not None:
            self.music_beats = np.asarray(self.music_beats, dtype=np.float64).reshape(-1)

    @property
    def num_frames(self) -> int:
        return int(self.positions.shape[0])

    def joints(self, names: Sequence[str]) -> np.ndarray:
        """(T, len(names), 3) positions of the named joints; an error naming the sample lists what is missing."""
        where = {n: i for i, n in enumerate(self.joint_names)}
        missing = [n for n in names if n not in where]
        if missing:
            raise InputError(self.name, "sample lacks joints a metric needs", field="joint_names",
                             expected=f"{len(names)} named joints", got=f"missing {missing[:5]}")
        return self.positions[:, [where[n] for n in names]]

    def require_frames(self, minimum: int, metric: str) -> None:
        if self.num_frames < minimum:
            raise InputError(self.name, f"too few frames for {metric}", field="positions",
                             expected=f">= {minimum} frames", got=str(self.num_frames))

    def has_joints(self, names: Sequence[str]) -> bool:
        """Whether every named joint is present."""
        have = set(self.joint_names)
        return all(n in have for n in names)

    def joints_with_stand_ins(self, names: Sequence[str], stand_ins: dict[str, str] | None = None) -> np.ndarray:
        """Like :meth:`joints`, but a missing joint listed in ``stand_ins`` is read from its stand-in joint
        (e.g. SMPL's palm joint from SMPL-X's middle-finger base); the error names the sample otherwise."""
        stand_ins = stand_ins or {}
        have = set(self.joint_names)
        resolved = [n if n in have or n not in stand_ins else stand_ins[n] for n in names]
        return self.joints(resolved)

    def with_positions(self, positions: np.ndarray, fps: float | None = None,
                       joint_names: Sequence[str] | None = None) -> "DanceSample":
        """A copy with other positions (and optionally frame rate and joint names), same name / beats / meta."""
        return DanceSample(self.name, positions, self.fps if fps is None else fps,
                           self.joint_names if joint_names is None else joint_names,
                           None if self.music_beats is None else self.music_beats.copy(), dict(self.meta))
