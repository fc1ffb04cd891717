"""Editing masks for inpainting (GCDance eq. 15): which values of a window are kept, which are generated.

A mask is (T, 319) booleans, True = keep the user's value. It is the union of
- joint groups kept over the whole window ("body" keeps contacts, root and the 22 body joints so only the
  fingers are generated; "legs" keeps the root, contacts and the leg chain so the upper body is new; ...),
- time ranges kept in full (keep the first second and continue it; keep the first and last frames and
  in-between them).
The sampler (``sampling.ddim_sample``) re-imposes the kept values after every DDIM step, so they come back
exactly; everything else is generated to fit them and the music.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from encoders.errors import InputError
from encoders.motion.skeleton import smplx52

from ..representation.layout import FEATURE_DIM, FPS, LAYOUT, NUM_BODY_JOINTS

_LEG_JOINTS = ("pelvis", "left_hip", "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle",
               "left_foot", "right_foot")
_ARM_JOINTS = ("left_collar", "right_collar", "left_shoulder", "right_shoulder", "left_elbow", "right_elbow",
               "left_wrist", "right_wrist")
_TORSO_JOINTS = ("spine1", "spine2", "spine3", "neck", "head")


def _joint_columns(names: tuple[str, ...]) -> np.ndarray:
    return np.concatenate([np.arange(LAYOUT.joint_rotation(n).start, LAYOUT.joint_rotation(n).stop) for n in names])


def _group_columns() -> dict[str, np.ndarray]:
    """Feature columns of each named group. Groups that include the pelvis also hold the root and contacts."""
    base = np.concatenate([np.arange(LAYOUT.contacts.start, LAYOUT.contacts.stop),
                           np.arange(LAYOUT.root.start, LAYOUT.root.stop)])
    body_names = tuple(list(smplx52().names)[:NUM_BODY_JOINTS])
    return {
        "body": np.concatenate([base, _joint_columns(body_names)]),
        "hands": LAYOUT.hand_dims,
        "legs": np.concatenate([base, _joint_columns(_LEG_JOINTS)]),
        "arms": np.concatenate([_joint_columns(_ARM_JOINTS), LAYOUT.hand_dims]),
        "torso": _joint_columns(_TORSO_JOINTS),
    }


JOINT_GROUPS: tuple[str, ...] = ("body", "hands", "legs", "arms", "torso")


@dataclass(frozen=True)
class EditSpec:
    """What to keep from the user's motion: joint groups (whole window) and time ranges in seconds."""

    keep_groups: tuple[str, ...] = ()
    keep_seconds: tuple[tuple[float, float], ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        for g in self.keep_groups:
            if g not in JOINT_GROUPS:
                raise InputError(None, f"unknown joint group {g!r}", field="keep", expected=" | ".join(JOINT_GROUPS),
                                 got=g)
        for a, b in self.keep_seconds:
            if not (0.0 <= a < b):
                raise InputError(None, "a kept time range must satisfy 0 <= start < end", field="keep",
                                 expected="START:END seconds", got=f"{a}:{b}")
        if not self.keep_groups and not self.keep_seconds:
            raise InputError(None, "nothing to keep: name joint groups or time ranges", field="keep",
                             expected=f"{' | '.join(JOINT_GROUPS)} or START:END seconds", got="nothing")

    def mask(self, frames: int, known_frames: int) -> np.ndarray:
        """(frames, 319) booleans; values beyond the user's motion (``known_frames``) are never kept."""
        if known_frames < 1:
            raise InputError(None, "the motion to edit is empty", field="motion", expected=">= 1 frame", got="0")
        m = np.zeros((frames, FEATURE_DIM), dtype=bool)
        groups = _group_columns()
        for g in self.keep_groups:
            m[:, groups[g]] = True
        for a, b in self.keep_seconds:
            start, stop = int(round(a * FPS)), int(round(b * FPS))
            if start >= known_frames:
                raise InputError(None, "a kept time range starts after the motion ends", field="keep",
                                 expected=f"start < {known_frames / FPS:g} s", got=f"{a:g} s")
            m[start:min(stop, frames)] = True
        m[known_frames:] = False
        return m

    @classmethod
    def parse(cls, items: list[str]) -> "EditSpec":
        """CLI form: each item a group name or ``START:END`` seconds, e.g. ``body`` or ``0:1`` or ``3.9:4``."""
        groups, ranges = [], []
        for item in items:
            item = item.strip().lower()
            if ":" in item:
                a, _, b = item.partition(":")
                try:
                    ranges.append((float(a), float(b)))
                except ValueError:
                    raise InputError(None, "bad time range", field="keep", expected="START:END seconds",
                                     got=item) from None
            else:
                groups.append(item)
        return cls(tuple(groups), tuple(ranges))
