"""Source arrays -> :class:`MotionRecord` at 30 fps (metres, +y up).

One function per kind of source the ingest adapters meet:

- :func:`from_smplx_rot6d`: FineDance, root translation + 52 SMPL-X local rotations in 6D
  (first two ROWS of each matrix, see :mod:`encoders.motion.rotations`);
- :func:`from_smplx_axis_angle`: our generic npz format, 52 SMPL-X local axis-angle rotations;
- :func:`from_smpl_axis_angle`: AIST++, 24 SMPL axis-angle rotations, translation / scaling;
- :func:`from_positions`: global joint positions under any naming the joint map knows (BVH, CSV).

Rotation sources keep their rotations (``rotations_6d``, 52 SMPL-X joints, hands at rest when
the source has none) and get positions by forward kinematics on the model-free rest skeletons
of :mod:`encoders.motion.skeleton`, with the root joint placed at ``trans`` (the kinematics
contract; the official SMPL-X model would add the rest pelvis offset, see
:mod:`encoders.motion.smplx_body` for that path). Everything is resampled to 30 fps
(rotations through their 6D form, positions linearly) BEFORE forward kinematics, so bone
lengths stay exact. Bad input raises :class:`InputError` naming the field.
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from ..errors import InputError
from .joint_map import apply_mapping, detect_convention, map_to_smpl22
from .kinematics import TARGET_FPS, forward_kinematics, resample_linear, resample_rotations
from .record import MotionRecord
from .rotations import axis_angle_to_matrix, matrix_to_rot6d, rot6d_to_matrix
from .skeleton import SMPL_BODY_22, smpl24, smplx52

NUM_SMPLX_JOINTS = 52
NUM_SMPL_JOINTS = 24

# z-up (x, y, z) -> y-up (x, z, -y): a -90 degree rotation about x (determinant +1, so a
# right-handed frame stays right-handed and a left side stays left; swapping y and z instead
# would mirror the body).
Z_UP_TO_Y_UP = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, -1.0, 0.0]])


def _check_fps(fps: float) -> float:
    try:
        value = float(fps)
    except (TypeError, ValueError):
        raise InputError(None, "frame rate is not a number", field="fps", expected="a positive number",
                         got=repr(fps)) from None
    if not (math.isfinite(value) and value > 0):
        raise InputError(None, "bad frame rate", field="fps", expected="a positive number", got=repr(fps))
    return value


def _array(x: object, field: str, expected: str) -> np.ndarray:
    try:
        arr = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError):
        raise InputError(None, "not a numeric array", field=field, expected=expected,
                         got=type(x).__name__) from None
    if arr.size and not np.isfinite(arr).all():
        bad = int(np.argwhere(~np.isfinite(arr.reshape(len(arr), -1)))[0, 0]) if arr.ndim else 0
        raise InputError(None, f"contains NaN or infinite values (first at frame {bad})", field=field)
    return arr


def _frames(arr: np.ndarray, field: str, joints: int | Sequence[int], width: int) -> np.ndarray:
    """Reshape (T, J, width) or (T, J * width) to (T, J, width); ``joints`` lists accepted J values."""
    accepted = (joints,) if isinstance(joints, int) else tuple(joints)
    shapes = " or ".join([f"(T, {j}, {width})" for j in accepted] + [f"(T, {j * width})" for j in accepted])
    if arr.ndim == 2 and arr.shape[1] in [j * width for j in accepted]:
        arr = arr.reshape(len(arr), -1, width)
    if arr.ndim != 3 or arr.shape[1] not in accepted or arr.shape[2] != width:
        raise InputError(None, "bad array shape", field=field, expected=shapes, got=str(arr.shape))
    if len(arr) == 0:
        raise InputError(None, "no frames", field=field, expected="at least one frame", got="0")
    return arr


def _trans(trans: object, n: int) -> np.ndarray:
    arr = _array(trans, "trans", f"({n}, 3)")
    if arr.shape != (n, 3):
        raise InputError(None, "bad root translation", field="trans", expected=f"({n}, 3)", got=str(arr.shape))
    return arr


def _from_smplx_matrices(rot: np.ndarray, trans: np.ndarray, fps: float, source: str) -> MotionRecord:
    """Shared tail: resample (T, 52, 3, 3) + (T, 3) to 30 fps, FK on SMPL-X 52, build the record."""
    rot = resample_rotations(rot, fps, TARGET_FPS)
    trans = resample_linear(trans, fps, TARGET_FPS)
    skel = smplx52()
    pos = forward_kinematics(rot, trans, skel)
    return MotionRecord(TARGET_FPS, trans, pos, list(skel.names), matrix_to_rot6d(rot),
                        {"source_format": source, "source_fps": fps})


def from_smplx_rot6d(trans: np.ndarray, rot6d: np.ndarray, fps: float) -> MotionRecord:
    """FineDance motion: ``trans`` (T, 3) metres, ``rot6d`` (T, 52, 6) or (T, 312), row-convention 6D.

    The 6D vectors are the first two ROWS of the local rotation matrices (pytorch3d's
    ``matrix_to_rotation_6d``, which FineDance uses); they are re-orthonormalised on reading.
    """
    fps = _check_fps(fps)
    d6 = _frames(_array(rot6d, "rot6d", "(T, 52, 6)"), "rot6d", NUM_SMPLX_JOINTS, 6)
    a1 = np.linalg.norm(d6[..., :3], axis=-1)
    a2 = d6[..., 3:] - (d6[..., 3:] * d6[..., :3]).sum(-1, keepdims=True) * d6[..., :3] / np.maximum(a1, 1e-12)[..., None] ** 2
    if (a1 < 1e-6).any() or (np.linalg.norm(a2, axis=-1) < 1e-6).any():
        raise InputError(None, "degenerate 6D rotation (zero or parallel rows)", field="rot6d",
                         expected="two independent 3-vectors per joint", got="a zero or parallel pair")
    tr = _trans(trans, len(d6))
    return _from_smplx_matrices(rot6d_to_matrix(d6), tr, fps, "smplx_rot6d")


def from_smplx_axis_angle(trans: np.ndarray, poses: np.ndarray, fps: float) -> MotionRecord:
    """SMPL-X motion: ``trans`` (T, 3) metres, ``poses`` (T, 52, 3) or (T, 156) local axis-angle (radians).

    Joint order is FineDance's: the 22 body joints, 15 left-hand, 15 right-hand joints.
    """
    fps = _check_fps(fps)
    aa = _frames(_array(poses, "poses", "(T, 52, 3)"), "poses", NUM_SMPLX_JOINTS, 3)
    tr = _trans(trans, len(aa))
    return _from_smplx_matrices(axis_angle_to_matrix(aa), tr, fps, "smplx_axis_angle")


def smpl24_to_smplx52_rotations(rot24: np.ndarray) -> np.ndarray:
    """(T, 24, 3, 3) SMPL local rotations -> (T, 52, 3, 3) SMPL-X: the 22 body joints, fingers at rest.

    SMPL's joints 22/23 (palms) have no SMPL-X counterpart (SMPL-X hands are finger chains
    hanging from the wrists); their rotations are dropped, as EDGE and FineDance do.
    """
    out = np.broadcast_to(np.eye(3, dtype=rot24.dtype), rot24.shape[:1] + (NUM_SMPLX_JOINTS, 3, 3)).copy()
    out[:, :22] = rot24[:, :22]
    return out


def from_smpl_axis_angle(poses: np.ndarray, trans: np.ndarray, scaling: float, fps: float) -> MotionRecord:
    """AIST++ motion: ``poses`` (T, 72) or (T, 24, 3) axis-angle, ``trans`` (T, 3), ``smpl_scaling``.

    AIST++ stores the translation of a body scaled by ``scaling`` (about 90 to 100); dividing
    gives metres. Positions come from FK on the SMPL 24 skeleton (22 body joints plus the two
    palms, named as :func:`encoders.motion.skeleton.smpl24`); ``rotations_6d`` holds the 52
    SMPL-X rotations with the 22 body joints from the file and the fingers at rest.
    """
    fps = _check_fps(fps)
    aa = _frames(_array(poses, "poses", "(T, 72)"), "poses", NUM_SMPL_JOINTS, 3)
    sc = _array(scaling, "scaling", "a positive number").reshape(-1)
    if sc.size != 1 or not sc[0] > 0:
        raise InputError(None, "bad scaling", field="scaling", expected="one positive number",
                         got=str(sc.tolist()[:3]))
    tr = _trans(trans, len(aa)) / float(sc[0])
    rot = resample_rotations(axis_angle_to_matrix(aa), fps, TARGET_FPS)
    tr = resample_linear(tr, fps, TARGET_FPS)
    skel = smpl24()
    pos = forward_kinematics(rot, tr, skel)
    rot52 = smpl24_to_smplx52_rotations(rot)
    return MotionRecord(TARGET_FPS, tr, pos, list(skel.names), matrix_to_rot6d(rot52),
                        {"source_format": "smpl_axis_angle", "source_fps": fps, "smpl_scaling": float(sc[0])})


def from_positions(positions: np.ndarray, joint_names: Sequence[str], fps: float, trans: np.ndarray | None = None,
                   up_axis: str = "y", keep_all_joints: bool = False) -> MotionRecord:
    """Global joint positions (T, J, 3) in metres -> record with the 22 SMPL body joints.

    ``joint_names`` may follow any convention of :mod:`encoders.motion.joint_map` (SMPL, EDGE,
    CMU, Mixamo); an unknown naming raises InputError. The record holds the 22 SMPL body joints
    in SMPL order; with ``keep_all_joints`` the source joints not used as-is follow under their
    original names. ``up_axis='z'`` converts z-up data (e.g. the AIST++ joint CSVs EDGE writes)
    to +y up by a rotation (x, y, z) -> (x, z, -y), which keeps the frame right-handed.
    ``trans`` (T, 3) defaults to the pelvis position.
    """
    fps = _check_fps(fps)
    names = [str(n) for n in joint_names]
    pos = _array(positions, "positions", "(T, J, 3)")
    if pos.ndim != 3 or pos.shape[-1] != 3 or len(pos) == 0:
        raise InputError(None, "bad joint positions", field="positions", expected="(T, J, 3) with T >= 1",
                         got=str(pos.shape))
    if pos.shape[1] != len(names):
        raise InputError(None, "joint names and positions disagree", field="joint_names",
                         expected=f"{pos.shape[1]} names", got=str(len(names)))
    tr = None if trans is None else _trans(trans, len(pos))
    axis = str(up_axis).lower()
    if axis == "z":
        pos = pos @ Z_UP_TO_Y_UP.T
        tr = None if tr is None else tr @ Z_UP_TO_Y_UP.T
    elif axis != "y":
        raise InputError(None, "unknown up axis", field="up_axis", expected="'y' or 'z'", got=repr(up_axis))
    convention = detect_convention(names)
    mapping = map_to_smpl22(names)
    body = apply_mapping(pos, mapping)
    out_names = list(SMPL_BODY_22)
    if keep_all_joints:
        used = {v for v in mapping.values() if isinstance(v, int)}
        extra = [k for k in range(len(names)) if k not in used]
        body = np.concatenate([body, pos[:, extra]], axis=1)
        out_names += [names[k] if names[k] not in SMPL_BODY_22 else f"src:{names[k]}" for k in extra]
    body = resample_linear(body, fps, TARGET_FPS)
    tr = body[:, 0].copy() if tr is None else resample_linear(tr, fps, TARGET_FPS)
    return MotionRecord(TARGET_FPS, tr, body, out_names, None,
                        {"source_format": "positions", "source_fps": fps, "joint_convention": convention,
                         "up_axis": axis})
