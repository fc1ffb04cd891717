"""Forward kinematics without any SMPL model file, foot contacts, and resampling to 30 fps."""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from .rotations import ArrayT, _back, _to_torch, rot6d_to_matrix, matrix_to_rot6d
from .skeleton import FOOT_JOINTS, Skeleton

TARGET_FPS = 30.0


def forward_kinematics(local_rotations: ArrayT, root_translation: ArrayT, skeleton: Skeleton,
                       offsets: ArrayT | None = None) -> ArrayT:
    """Global joint positions (T, J, 3) from local rotation matrices (T, J, 3, 3) and root translation (T, 3).

    ``offsets`` overrides the skeleton's rest offsets (e.g. a BVH's own bone lengths, or a scaled body).
    The root joint is placed at ``root_translation``; joint j sits at parent + G_parent @ offset_j.
    """
    rot, np_in = _to_torch(local_rotations)
    trans, _ = _to_torch(root_translation)
    trans = trans.to(rot.dtype)
    off = torch.as_tensor(np.asarray(skeleton.offsets if offsets is None else offsets), dtype=rot.dtype)
    if rot.shape[-3] != skeleton.num_joints:
        raise ValueError(f"rotations have {rot.shape[-3]} joints, skeleton {skeleton.name} has {skeleton.num_joints}")
    glob: list[torch.Tensor] = []
    pos: list[torch.Tensor] = []
    for j, p in enumerate(skeleton.parents):
        if p < 0:
            glob.append(rot[..., j, :, :])
            pos.append(trans + off[j])
        else:
            glob.append(glob[p] @ rot[..., j, :, :])
            pos.append(pos[p] + (glob[p] @ off[j].unsqueeze(-1)).squeeze(-1))
    return _back(torch.stack(pos, dim=-2), np_in)


def foot_contacts(positions: np.ndarray, joint_names: Sequence[str], fps: float,
                  speed_threshold: float = 0.3, height_threshold: float | None = None,
                  floor_percentile: float = 2.0) -> np.ndarray:
    """(T, 4) booleans for left ankle, right ankle, left foot (toe), right foot: joint speed below threshold.

    As FineDance and EDGE do (their 0.01 m per frame at 30 fps is ``speed_threshold`` 0.3 m/s),
    so the value is comparable across frame rates. The last frame repeats the one before.

    ``height_threshold`` (metres, None = EDGE's speed-only rule) also requires the joint to be near the
    floor: at most this high above its own ``floor_percentile`` height over the sequence. Why: a foot
    held still in the air (a développé, a raised heel while the toe carries the weight) is slow but not in
    contact, and a generator trained with a contact loss would pin it. Each joint gets its own floor
    because an ankle rests ~8 cm higher than a toe, and a percentile because mocap floors are not at 0.
    """
    idx = [list(joint_names).index(n) for n in FOOT_JOINTS]
    feet = np.asarray(positions)[:, idx, :]
    if len(feet) < 2:
        return np.ones((len(feet), 4), dtype=bool)
    speed = np.linalg.norm(np.diff(feet, axis=0), axis=-1) * fps
    speed = np.concatenate([speed, speed[-1:]], axis=0)
    contact = speed < speed_threshold
    if height_threshold is not None:
        height = feet[..., 1]
        floor = np.percentile(height, floor_percentile, axis=0)
        contact &= (height - floor) <= height_threshold
    return contact


def _resample_times(n: int, src_fps: float, dst_fps: float) -> np.ndarray:
    duration = (n - 1) / src_fps
    m = int(np.floor(duration * dst_fps + 1e-6)) + 1
    return np.arange(m) / dst_fps * src_fps  # positions in source-frame units


def resample_linear(x: np.ndarray, src_fps: float, dst_fps: float = TARGET_FPS) -> np.ndarray:
    """Resample along axis 0 by linear interpolation (positions, translations, features)."""
    x = np.asarray(x)
    if abs(src_fps - dst_fps) < 1e-9 or len(x) < 2:
        return x.copy()
    t = _resample_times(len(x), src_fps, dst_fps)
    i0 = np.clip(np.floor(t).astype(int), 0, len(x) - 1)
    i1 = np.clip(i0 + 1, 0, len(x) - 1)
    w = (t - i0).reshape((-1,) + (1,) * (x.ndim - 1))
    return (x[i0] * (1 - w) + x[i1] * w).astype(x.dtype, copy=False)


def resample_rotations(rot: np.ndarray, src_fps: float, dst_fps: float = TARGET_FPS) -> np.ndarray:
    """Resample (T, J, 3, 3) rotation matrices: interpolate the 6D form, re-orthonormalise."""
    if abs(src_fps - dst_fps) < 1e-9:
        return np.asarray(rot).copy()
    d6 = resample_linear(matrix_to_rot6d(np.asarray(rot)), src_fps, dst_fps)
    return rot6d_to_matrix(d6)


def motion_activity(body: np.ndarray, fps: float) -> dict[str, float]:
    """How much a clip moves: mean speed of the joints relative to the root, and of the root on the ground.

    ``body`` (T, J, 3) positions in metres, +y up, joint 0 the root (pelvis). Why two figures: a dancer can
    travel across a stage with still arms, or dance in place; a real clip that does neither (a 5-s pause in a
    take) carries no genre at all, and a retrieval figure on it says nothing about the model.
    """
    body = np.asarray(body, dtype=np.float64)
    if len(body) < 2:
        return {"joint_speed": 0.0, "root_speed": 0.0}
    local = body[:, 1:] - body[:, :1]
    joint = np.linalg.norm(np.diff(local, axis=0), axis=-1).mean() * fps
    root = np.linalg.norm(np.diff(body[:, 0, [0, 2]], axis=0), axis=-1).mean() * fps
    return {"joint_speed": float(joint), "root_speed": float(root)}


def smooth_gaussian(x: np.ndarray, sigma_frames: float) -> np.ndarray:
    """Gaussian low-pass along axis 0 (edges padded by reflection); ``sigma_frames`` <= 0 returns a copy.

    Why: motion capture carries marker and solver noise, white at the frame rate; differentiated into
    joint velocities it swamps a slow dance (8 mm of noise at 30 fps is about 0.3 m/s). A sigma of one
    frame at 30 fps halves the amplitude at about 5.6 Hz and leaves the beat-rate motion (1-4 Hz) of a dance.
    """
    x = np.asarray(x, dtype=np.float64)
    if sigma_frames <= 0 or len(x) < 2:
        return x.copy()
    radius = max(1, int(np.ceil(3 * sigma_frames)))
    k = np.exp(-0.5 * (np.arange(-radius, radius + 1) / sigma_frames) ** 2)
    k /= k.sum()
    padded = np.pad(x, [(radius, radius)] + [(0, 0)] * (x.ndim - 1), mode="reflect")
    return sum(w * padded[j:j + len(x)] for j, w in enumerate(k))
