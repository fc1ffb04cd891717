"""Joining 4-s segments (FineNet sec. 4.4): pose descriptors for the coherence score, placing a segment
after the previous one, and the 5-frame cut with linear interpolation at each junction.

Every candidate segment is a (W, 319) window in its own canonical frame (first root at the origin facing
+z), as diffusion samples and catalog windows both are. A stitched dance is built in one world frame:

- ``place_after(prev, cand, cut)``: the candidate is turned about +y and moved on the floor so that its
  first kept frame (index ``cut``) faces where the previous segment's last kept frame (index ``-cut-1``)
  faces, and its root is where the previous root would be after the ``2 cut + 1`` frames of the gap at
  the mean of the two segments' horizontal root speeds there. Height and every joint rotation below the
  root are untouched.
- ``join(prev, cand, cut)``: drops the previous segment's last ``cut`` frames and the candidate's first
  ``cut``, and fills those ``2 cut`` frames by linear interpolation between the two kept frames (all 319
  values; interpolated 6D rotations are projected back to rotations when decoded), so the dance keeps its
  length and passes through both kept poses.
- ``pose_descriptor``: the coherence score (eq. 5) compares poses, not placements: the 22 body joints
  relative to the root's ground projection, with the heading removed (invariant to where a segment sits).
"""
from __future__ import annotations

import numpy as np

from encoders.motion.rotations import matrix_to_rot6d, rot6d_to_matrix
from encoders.motion.skeleton import smplx52

from ..representation.canonical import CanonicalFrame, decanonicalise, heading_yaw, yaw_matrix
from ..representation.layout import LAYOUT

CUT = 5
"""Frames cut on each side of a junction (FineNet: 5)."""

_ROOT_OFFSET = np.asarray(smplx52().offsets[0], dtype=np.float64)


def _root_rotation(features: np.ndarray, frames) -> np.ndarray:
    return rot6d_to_matrix(np.asarray(features[frames, LAYOUT.joint_rotation(0)], dtype=np.float64))


def pose_descriptor(positions: np.ndarray, features: np.ndarray, frame: int) -> np.ndarray:
    """(22 * 3,) body pose at ``frame``: joints minus the root's (x, z), turned to face +z."""
    from ..genre_match.model import BODY_INDEX

    p = np.asarray(positions[frame], dtype=np.float64)
    p = p[BODY_INDEX] if p.shape[0] != 22 else p
    yaw = heading_yaw(_root_rotation(features, frame))
    rel = p - np.array([p[0, 0], 0.0, p[0, 2]])
    return (rel @ yaw_matrix(-yaw).T).reshape(-1)


def coherence(prev_end: np.ndarray, cand_start: np.ndarray) -> float:
    """Eq. 5: CS = -|| pose(prev end) - pose(candidate start) ||_2."""
    return -float(np.linalg.norm(np.asarray(prev_end) - np.asarray(cand_start)))


def _root_joint(features: np.ndarray, frame: int) -> np.ndarray:
    return np.asarray(features[frame, LAYOUT.root], dtype=np.float64) + _ROOT_OFFSET


def place_after(prev: np.ndarray, cand: np.ndarray, cut: int = CUT) -> np.ndarray:
    """The (W, 319) canonical candidate moved into ``prev``'s world frame so it continues ``prev`` (see module doc)."""
    prev = np.asarray(prev, dtype=np.float64)
    cand = np.asarray(cand, dtype=np.float64)
    a, b = len(prev) - cut - 1, cut
    gap = 2 * cut + 1
    yaw_a = heading_yaw(_root_rotation(prev, a))
    yaw_b = heading_yaw(_root_rotation(cand, b))
    dyaw = yaw_a - yaw_b
    rot = yaw_matrix(dyaw)
    # horizontal root velocity (per frame) on both sides, in the world frame
    va = _root_joint(prev, a) - _root_joint(prev, max(a - 1, 0))
    vb = rot @ (_root_joint(cand, min(b + 1, len(cand) - 1)) - _root_joint(cand, b))
    v = 0.5 * (va + vb)
    target = _root_joint(prev, a) + v * gap
    moved_b = rot @ _root_joint(cand, b)
    origin = (float(target[0] - moved_b[0]), 0.0, float(target[2] - moved_b[2]))
    root_rot = rot6d_to_matrix(cand[:, LAYOUT.joint_rotation(0)])
    new_rot, trans = decanonicalise(root_rot, cand[:, LAYOUT.root], _ROOT_OFFSET, CanonicalFrame(dyaw, origin))
    out = cand.astype(np.float32, copy=True)
    out[:, LAYOUT.joint_rotation(0)] = matrix_to_rot6d(new_rot)
    out[:, LAYOUT.root] = trans
    return out


def interpolate(a: np.ndarray, b: np.ndarray, frames: int) -> np.ndarray:
    """``frames`` rows strictly between rows ``a`` and ``b``, evenly spaced on the line from a to b."""
    w = (np.arange(1, frames + 1) / (frames + 1))[:, None]
    return ((1 - w) * np.asarray(a, dtype=np.float64)[None] + w * np.asarray(b, dtype=np.float64)[None]).astype(np.float32)


def join(prev: np.ndarray, cand_world: np.ndarray, cut: int = CUT) -> np.ndarray:
    """``prev`` (L, 319) + ``cand_world`` (W, 319, already placed) -> (L + W, 319) with the junction interpolated.

    Rows ``L - cut .. L + cut - 1`` are replaced by the linear interpolation between row ``L - cut - 1``
    (the previous segment's last kept frame) and row ``L + cut`` (the candidate's first kept frame)."""
    prev = np.asarray(prev, dtype=np.float32)
    cand_world = np.asarray(cand_world, dtype=np.float32)
    if cut <= 0:
        return np.concatenate([prev, cand_world])
    if len(prev) < cut + 1 or len(cand_world) < cut + 1:
        raise ValueError(f"segments must be longer than the {cut}-frame cut")
    bridge = interpolate(prev[-cut - 1], cand_world[cut], 2 * cut)
    return np.concatenate([prev[:-cut], bridge, cand_world[cut:]])
