"""Skeleton definitions (names, parents, rest offsets) for SMPL-X 52 and SMPL 24.

The numbers live in ``encoders/assets/skeletons.json`` (transcribed once from the reference
rest poses) so the package never reads anything outside itself at run time.
Coordinate frame: metres, +y up, the body faces +z, its left side is +x.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

import numpy as np

SMPL_BODY_22: tuple[str, ...] = (
    "pelvis", "left_hip", "right_hip", "spine1", "left_knee", "right_knee", "spine2",
    "left_ankle", "right_ankle", "spine3", "left_foot", "right_foot", "neck",
    "left_collar", "right_collar", "head", "left_shoulder", "right_shoulder",
    "left_elbow", "right_elbow", "left_wrist", "right_wrist",
)
"""The 22 SMPL body joints every position-based feature is computed on, in SMPL order."""

FOOT_JOINTS: tuple[str, ...] = ("left_ankle", "right_ankle", "left_foot", "right_foot")


@dataclass(frozen=True)
class Skeleton:
    """A kinematic tree: joint ``names``, ``parents`` (-1 for the root) and rest ``offsets`` (J, 3)."""

    name: str
    names: tuple[str, ...]
    parents: tuple[int, ...]
    offsets: np.ndarray

    def __post_init__(self) -> None:
        if len(self.names) != len(self.parents) or self.offsets.shape != (len(self.names), 3):
            raise ValueError(f"skeleton {self.name}: names, parents and offsets disagree in length")
        for j, p in enumerate(self.parents):
            if p >= j:
                raise ValueError(f"skeleton {self.name}: parent of joint {j} must come before it")

    @property
    def num_joints(self) -> int:
        return len(self.names)

    def index(self, joint: str) -> int:
        return self.names.index(joint)

    def rest_positions(self) -> np.ndarray:
        """Global rest-pose joint positions with the root at the origin, (J, 3)."""
        pos = np.zeros((self.num_joints, 3), dtype=np.float64)
        for j, p in enumerate(self.parents):
            pos[j] = self.offsets[j] if p < 0 else pos[p] + self.offsets[j]
        return pos

    def foot_indices(self) -> list[int]:
        """Indices of the :data:`FOOT_JOINTS` this skeleton has, in that order (contacts, skating, grounding)."""
        return [self.index(n) for n in FOOT_JOINTS if n in self.names]

    def root_standing_height(self) -> float:
        """Height of the root above the lowest foot joint in the rest pose (for standing)."""
        rest = self.rest_positions()
        feet = self.foot_indices()
        return float(rest[0, 1] - rest[feet, 1].min()) if feet else float(-rest[:, 1].min())


@lru_cache(maxsize=None)
def _asset() -> dict:
    text = resources.files("encoders.assets").joinpath("skeletons.json").read_text()
    return json.loads(text)


@lru_cache(maxsize=None)
def smplx52() -> Skeleton:
    """SMPL-X as FineDance uses it: 22 body joints, 15 left-hand, 15 right-hand joints."""
    d = _asset()["smplx52"]
    return Skeleton("smplx52", tuple(d["names"]), tuple(d["parents"]), np.asarray(d["offsets"], dtype=np.float64))


@lru_cache(maxsize=None)
def smpl24() -> Skeleton:
    """SMPL: the 22 body joints plus two palm joints (AIST++, EDGE)."""
    d = _asset()["smpl24"]
    return Skeleton("smpl24", tuple(d["names"]), tuple(d["parents"]), np.asarray(d["offsets"], dtype=np.float64))


def skeleton_by_name(name: str) -> Skeleton:
    table = {"smplx52": smplx52, "smpl24": smpl24}
    if name not in table:
        raise KeyError(f"unknown skeleton '{name}' (known: {', '.join(table)})")
    return table[name]()
