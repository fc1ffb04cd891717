"""Retarget any skeleton's motion onto one canonical body, so the encoder sees the dance, not the rig.

Why: the same CMU take converted to two skeleton conventions (DAZ 43 joints, MotionBuilder 31) put
its 22 SMPL joints in different places: the DAZ pelvis sits 3 cm above the hip joints and the MB
one 10 cm; the MB neck lies at shoulder height and the DAZ one 5 cm above; the spine joints of
either are interpolated guesses; bone lengths differ by 10-30 %. Fed as they are, the two
conversions embedded at cosine -0.16 (``docs/results/real_data.md``). Joints that every convention
places anatomically are the hip joints (femur heads), knees, ankles, toes, shoulder joints,
elbows, wrists and the head; the pelvis, spine, neck and collar joints are where conventions
disagree. So the canonical body is rebuilt from the reliable joints only:

1. two trunk frames per frame: a pelvis frame (lateral axis from right to left hip, up axis
   from the hip midpoint to the shoulder midpoint) and a chest frame (lateral axis from the
   shoulders, the same up axis), so trunk lean and twist survive;
2. pelvis, hips and spine1 are placed rigidly in the pelvis frame, spine3, neck, collars and
   shoulders in the chest frame, spine2 halfway, all at the canonical rest offsets;
3. every limb bone (hip-knee-ankle-toe, shoulder-elbow-wrist) keeps its direction from the
   source and takes the canonical length; the head rides rigidly on the chest frame (the head
   joints of the DAZ and MB conversions of one take point 30 degrees apart: a convention, not the dance);
4. the hip midpoint's trajectory is scaled by canonical / source leg length (a longer-legged
   dancer covers more floor per step) and its height measured from the source's floor.

The canonical body is the SMPL-X neutral rest skeleton (``encoders/assets/skeletons.json``) made
left-right symmetric, so a mirrored take is exactly the mirror image of the original on it.
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np

from ..errors import InputError
from .skeleton import FOOT_JOINTS, SMPL_BODY_22, smplx52

_J = {name: i for i, name in enumerate(SMPL_BODY_22)}
MIRROR_PERMUTATION: tuple[int, ...] = tuple(
    _J[n.replace("left_", "@").replace("right_", "left_").replace("@", "right_")] for n in SMPL_BODY_22)
"""Index of each joint's left/right counterpart in :data:`SMPL_BODY_22` (itself for centre joints)."""

PELVIS_FRAME_JOINTS = ("pelvis", "left_hip", "right_hip", "spine1")
CHEST_FRAME_JOINTS = ("spine3", "neck", "head", "left_collar", "right_collar", "left_shoulder", "right_shoulder")
LIMB_CHAINS: tuple[tuple[str, ...], ...] = (
    ("left_hip", "left_knee", "left_ankle", "left_foot"),
    ("right_hip", "right_knee", "right_ankle", "right_foot"),
    ("left_shoulder", "left_elbow", "left_wrist"),
    ("right_shoulder", "right_elbow", "right_wrist"),
)
_EPS = 1e-8


@lru_cache(maxsize=1)
def canonical_rest() -> np.ndarray:
    """(22, 3) rest joint positions of the canonical body: SMPL-X neutral, symmetrised, hip midpoint at 0."""
    rest = smplx52().rest_positions()[: len(SMPL_BODY_22)]
    mirrored = rest[list(MIRROR_PERMUTATION)] * np.array([-1.0, 1.0, 1.0])
    sym = 0.5 * (rest + mirrored)
    hip_mid = 0.5 * (sym[_J["left_hip"]] + sym[_J["right_hip"]])
    out = sym - hip_mid
    out.setflags(write=False)
    return out


def _unit(v: np.ndarray, fallback: np.ndarray) -> np.ndarray:
    """Normalise the last axis; rows shorter than eps take ``fallback`` (broadcast) instead."""
    n = np.linalg.norm(v, axis=-1, keepdims=True)
    fb = np.broadcast_to(fallback, v.shape)
    return np.where(n > _EPS, v / np.maximum(n, _EPS), fb)


def frames_from_axes(lateral: np.ndarray, up: np.ndarray) -> np.ndarray:
    """(T, 3, 3) rotation matrices with columns (lateral, up, forward), up orthogonalised to lateral."""
    x = _unit(lateral, np.array([1.0, 0.0, 0.0]))
    y = up - (up * x).sum(-1, keepdims=True) * x
    y = _unit(y, np.array([0.0, 1.0, 0.0]))
    z = np.cross(x, y)
    return np.stack([x, y, z], axis=-1)


def _leg_length(body: np.ndarray) -> float:
    """Median hip-knee-ankle length over frames and both legs (pose-independent)."""
    total = []
    for side in ("left", "right"):
        idx = [_J[f"{side}_hip"], _J[f"{side}_knee"], _J[f"{side}_ankle"]]
        total.append(np.linalg.norm(np.diff(body[:, idx], axis=1), axis=-1).sum(axis=1))
    length = float(np.median(np.concatenate(total)))
    if not np.isfinite(length) or length < 1e-3:
        raise InputError(None, "degenerate skeleton: the legs have no length", field="positions")
    return length


def canonical_body(body: np.ndarray, rest: np.ndarray | None = None) -> np.ndarray:
    """(T, 22, 3) SMPL-ordered joint positions (metres, +y up) -> the same motion on the canonical body.

    Deterministic and per-frame except for two clip-level constants (the source's median leg length
    and its floor height). Centre joints and trunk offsets come from :func:`canonical_rest`; see the
    module docstring for what is kept from the source. ``rest``: another (22, 3) standing skeleton to
    retarget onto instead (e.g. the proportions of the person in a reference photo, for video): its trunk
    offsets and limb lengths are used the same way, and the root path is scaled by its leg length.
    """
    body = np.asarray(body, dtype=np.float64)
    if body.ndim != 3 or body.shape[1:] != (len(SMPL_BODY_22), 3):
        raise InputError(None, "bad body joint positions", field="positions",
                         expected=f"(T, {len(SMPL_BODY_22)}, 3)", got=str(body.shape))
    if len(body) == 0:
        raise InputError(None, "no frames", field="positions", expected="at least one frame", got="0")
    if rest is None:
        rest = canonical_rest()
    else:
        rest = np.asarray(rest, dtype=np.float64)
        if rest.shape != (len(SMPL_BODY_22), 3) or not np.isfinite(rest).all():
            raise InputError(None, "bad rest skeleton", field="rest", expected=f"({len(SMPL_BODY_22)}, 3) finite",
                             got=str(rest.shape))
    hip_mid = 0.5 * (body[:, _J["left_hip"]] + body[:, _J["right_hip"]])
    sho_mid = 0.5 * (body[:, _J["left_shoulder"]] + body[:, _J["right_shoulder"]])
    up = sho_mid - hip_mid
    pelvis_frame = frames_from_axes(body[:, _J["left_hip"]] - body[:, _J["right_hip"]], up)
    chest_frame = frames_from_axes(body[:, _J["left_shoulder"]] - body[:, _J["right_shoulder"]], up)
    rest_hip = 0.5 * (rest[_J["left_hip"]] + rest[_J["right_hip"]])      # 0 for the canonical rest
    rest_sho_mid = 0.5 * (rest[_J["left_shoulder"]] + rest[_J["right_shoulder"]])
    rest_pelvis = frames_from_axes((rest[_J["left_hip"]] - rest[_J["right_hip"]])[None],
                                   (rest_sho_mid - rest_hip)[None])[0]
    # rest offsets expressed in the rest pelvis frame (the rest chest frame is the same: the rest body is symmetric)
    local = (rest - rest_hip) @ rest_pelvis          # (22, 3): coordinates along (lateral, up, forward)

    ratio = _leg_length(rest[None]) / _leg_length(body)
    floor = float(body[:, [_J[n] for n in FOOT_JOINTS], 1].min())
    root = hip_mid.copy()
    root[:, 1] -= floor          # y = 0 is the floor the source dances on
    root *= ratio

    out = np.empty_like(body)
    for name in PELVIS_FRAME_JOINTS:
        out[:, _J[name]] = root + pelvis_frame @ local[_J[name]]
    for name in CHEST_FRAME_JOINTS:
        out[:, _J[name]] = root + chest_frame @ local[_J[name]]
    out[:, _J["spine2"]] = root + 0.5 * (pelvis_frame + chest_frame) @ local[_J["spine2"]]
    for chain in LIMB_CHAINS:
        for parent, child in zip(chain[:-1], chain[1:]):
            p, c = _J[parent], _J[child]
            length = float(np.linalg.norm(rest[c] - rest[p]))
            direction = _unit(body[:, c] - body[:, p], (rest[c] - rest[p]) / max(length, _EPS))
            out[:, c] = out[:, p] + length * direction
    out[..., 1] -= out[:, [_J[n] for n in FOOT_JOINTS], 1].min()   # the canonical body's own floor at y = 0
    return out


def mirror_body(body: np.ndarray) -> np.ndarray:
    """The mirror image of a (T, 22, 3) motion: x negated, left and right joints swapped."""
    out = np.asarray(body)[:, list(MIRROR_PERMUTATION)].copy()
    out[..., 0] *= -1.0
    return out
