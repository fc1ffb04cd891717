"""The canonical frame of a generative window: the first frame's root at the origin, facing +z.

Why: generative dance models (EDGE, FineNet, GCDance) learn motion relative to where the dancer
starts; without it a model spends capacity on absolute position and heading, which carry no meaning.
The removed heading (yaw about +y) and horizontal origin are kept, so decoding puts the dance back.
Height is not touched: the floor stays at the data's floor.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def yaw_matrix(yaw: float) -> np.ndarray:
    """Rotation by ``yaw`` radians about +y (right-handed: +z turns towards +x)."""
    c, s = np.cos(yaw), np.sin(yaw)
    return np.array([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]])


def heading_yaw(root_rotation: np.ndarray) -> float:
    """Yaw (radians) of the body's forward direction (+z at rest) under a (3, 3) root rotation."""
    forward = np.asarray(root_rotation, dtype=np.float64) @ np.array([0.0, 0.0, 1.0])
    if np.hypot(forward[0], forward[2]) < 1e-8:
        # facing straight up or down (a handstand seen from above): use the body's left axis instead
        left = np.asarray(root_rotation, dtype=np.float64) @ np.array([1.0, 0.0, 0.0])
        return float(np.arctan2(left[0], left[2]) - np.pi / 2)
    return float(np.arctan2(forward[0], forward[2]))


@dataclass(frozen=True)
class CanonicalFrame:
    """World = R_y(yaw) @ canonical + origin; ``origin`` is (x, 0, z) of the first frame's root joint."""

    yaw: float
    origin: tuple[float, float, float]

    @classmethod
    def identity(cls) -> "CanonicalFrame":
        return cls(0.0, (0.0, 0.0, 0.0))

    def to_dict(self) -> dict[str, float | list[float]]:
        return {"yaw": self.yaw, "origin": list(self.origin)}


def canonicalise(root_rot: np.ndarray, trans: np.ndarray, root_offset: np.ndarray
                 ) -> tuple[np.ndarray, np.ndarray, CanonicalFrame]:
    """(T, 3, 3) root rotations, (T, 3) translations -> the same in the canonical frame, and the frame.

    ``root_offset`` is the skeleton's rest offset of the root joint: FK puts the root joint at
    ``trans + root_offset``, so the rotation is about the root joint, not about ``trans``.
    """
    root_offset = np.asarray(root_offset, dtype=np.float64)
    joint0 = trans[0] + root_offset
    frame = CanonicalFrame(heading_yaw(root_rot[0]), (float(joint0[0]), 0.0, float(joint0[2])))
    inv = yaw_matrix(-frame.yaw)
    new_rot = np.einsum("ij,tjk->tik", inv, root_rot)
    root_joint = (trans + root_offset - np.asarray(frame.origin)) @ inv.T
    return new_rot, root_joint - root_offset, frame


def decanonicalise(root_rot: np.ndarray, trans: np.ndarray, root_offset: np.ndarray, frame: CanonicalFrame
                   ) -> tuple[np.ndarray, np.ndarray]:
    """Inverse of :func:`canonicalise` for the same ``root_offset``."""
    root_offset = np.asarray(root_offset, dtype=np.float64)
    rot = yaw_matrix(frame.yaw)
    new_rot = np.einsum("ij,...jk->...ik", rot, root_rot)
    root_joint = (trans + root_offset) @ rot.T + np.asarray(frame.origin)
    return new_rot, root_joint - root_offset
