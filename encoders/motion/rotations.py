"""Batched rotation conversions (axis-angle, matrix, 6D, Euler), for numpy arrays and torch tensors.

Every function takes ``(..., k)`` inputs and works on numpy arrays or torch tensors alike,
returning the same kind it was given. The computations are done in torch (one code path).

6D convention: as FineDance / EDGE / pytorch3d, the 6D vector is the first two ROWS of the
3x3 matrix flattened (``R[..., :2, :]``), not the first two columns (Zhou et al. use columns;
reading FineDance files with the column convention silently transposes every rotation).
"""
from __future__ import annotations

from typing import TypeVar

import numpy as np
import torch

ArrayT = TypeVar("ArrayT", np.ndarray, torch.Tensor)


def _to_torch(x: ArrayT) -> tuple[torch.Tensor, bool]:
    if isinstance(x, torch.Tensor):
        return x, False
    arr = np.asarray(x)
    if not arr.flags.writeable:
        arr = arr.copy()  # torch.as_tensor warns on read-only views (e.g. np.broadcast_to)
    dtype = torch.float64 if arr.dtype == np.float64 else torch.float32
    return torch.as_tensor(arr, dtype=dtype), True


def _back(x: torch.Tensor, was_numpy: bool):
    return x.detach().cpu().numpy() if was_numpy else x


def axis_angle_to_matrix(aa: ArrayT) -> ArrayT:
    """(..., 3) axis-angle (angle = vector norm, radians) -> (..., 3, 3) rotation matrices (Rodrigues)."""
    t, np_in = _to_torch(aa)
    angle = torch.linalg.norm(t, dim=-1, keepdim=True)
    axis = t / angle.clamp_min(1e-12)
    x, y, z = axis.unbind(-1)
    zero = torch.zeros_like(x)
    k = torch.stack([zero, -z, y, z, zero, -x, -y, x, zero], dim=-1).reshape(t.shape[:-1] + (3, 3))
    s = torch.sin(angle)[..., None]
    c = torch.cos(angle)[..., None]
    eye = torch.eye(3, dtype=t.dtype, device=t.device).expand(k.shape)
    r = eye + s * k + (1 - c) * (k @ k)
    return _back(r, np_in)


def matrix_to_axis_angle(m: ArrayT) -> ArrayT:
    """(..., 3, 3) rotation matrices -> (..., 3) axis-angle; stable near 0 and pi."""
    t, np_in = _to_torch(m)
    return _back(quaternion_to_axis_angle(_matrix_to_quaternion(t)), np_in)


def _matrix_to_quaternion(m: torch.Tensor) -> torch.Tensor:
    """(..., 3, 3) -> (..., 4) unit quaternions (w, x, y, z), choosing the best-conditioned branch."""
    m00, m01, m02 = m[..., 0, 0], m[..., 0, 1], m[..., 0, 2]
    m10, m11, m12 = m[..., 1, 0], m[..., 1, 1], m[..., 1, 2]
    m20, m21, m22 = m[..., 2, 0], m[..., 2, 1], m[..., 2, 2]
    cands = torch.stack([
        torch.stack([1 + m00 + m11 + m22, m21 - m12, m02 - m20, m10 - m01], -1),
        torch.stack([m21 - m12, 1 + m00 - m11 - m22, m01 + m10, m02 + m20], -1),
        torch.stack([m02 - m20, m01 + m10, 1 - m00 + m11 - m22, m12 + m21], -1),
        torch.stack([m10 - m01, m02 + m20, m12 + m21, 1 - m00 - m11 + m22], -1),
    ], dim=-2)
    diag = torch.stack([1 + m00 + m11 + m22, 1 + m00 - m11 - m22, 1 - m00 + m11 - m22, 1 - m00 - m11 + m22], -1)
    best = diag.argmax(dim=-1)
    q = torch.gather(cands, -2, best[..., None, None].expand(best.shape + (1, 4))).squeeze(-2)
    q = q / torch.linalg.norm(q, dim=-1, keepdim=True).clamp_min(1e-12)
    return torch.where(q[..., :1] < 0, -q, q)


def quaternion_to_axis_angle(q: torch.Tensor) -> torch.Tensor:
    """(..., 4) quaternions (w, x, y, z) -> (..., 3) axis-angle."""
    norm_v = torch.linalg.norm(q[..., 1:], dim=-1, keepdim=True)
    half = torch.atan2(norm_v, q[..., :1])
    angle = 2 * half
    small = norm_v < 1e-8
    scale = torch.where(small, 2.0 / q[..., :1].clamp_min(1e-8), angle / norm_v.clamp_min(1e-12))
    return q[..., 1:] * scale


def matrix_to_rot6d(m: ArrayT) -> ArrayT:
    """(..., 3, 3) -> (..., 6): first two rows, flattened (FineDance / pytorch3d convention)."""
    t, np_in = _to_torch(m)
    return _back(t[..., :2, :].reshape(t.shape[:-2] + (6,)), np_in)


def rot6d_to_matrix(d6: ArrayT) -> ArrayT:
    """(..., 6) -> (..., 3, 3) by Gram-Schmidt on the two rows (inverse of :func:`matrix_to_rot6d`)."""
    t, np_in = _to_torch(d6)
    a1, a2 = t[..., :3], t[..., 3:]
    b1 = a1 / torch.linalg.norm(a1, dim=-1, keepdim=True).clamp_min(1e-12)
    b2 = a2 - (b1 * a2).sum(-1, keepdim=True) * b1
    b2 = b2 / torch.linalg.norm(b2, dim=-1, keepdim=True).clamp_min(1e-12)
    b3 = torch.cross(b1, b2, dim=-1)
    return _back(torch.stack([b1, b2, b3], dim=-2), np_in)


def axis_angle_to_rot6d(aa: ArrayT) -> ArrayT:
    return matrix_to_rot6d(axis_angle_to_matrix(aa))


def rot6d_to_axis_angle(d6: ArrayT) -> ArrayT:
    return matrix_to_axis_angle(rot6d_to_matrix(d6))


def _single_axis(angle: torch.Tensor, axis: str) -> torch.Tensor:
    c, s = torch.cos(angle), torch.sin(angle)
    one, zero = torch.ones_like(angle), torch.zeros_like(angle)
    if axis == "X":
        flat = (one, zero, zero, zero, c, -s, zero, s, c)
    elif axis == "Y":
        flat = (c, zero, s, zero, one, zero, -s, zero, c)
    elif axis == "Z":
        flat = (c, -s, zero, s, c, zero, zero, zero, one)
    else:
        raise ValueError(f"unknown rotation axis '{axis}' (expected X, Y or Z)")
    return torch.stack(flat, -1).reshape(angle.shape + (3, 3))


def euler_to_matrix(angles: ArrayT, order: str, degrees: bool = True) -> ArrayT:
    """(..., 3) Euler angles -> (..., 3, 3) for intrinsic rotations in ``order`` (e.g. "ZXY").

    BVH lists rotation channels in the order they apply as intrinsic rotations:
    ``R = R_first @ R_second @ R_third``, angle ``i`` belonging to axis ``order[i]``.
    """
    t, np_in = _to_torch(angles)
    order = order.upper()
    if len(order) != 3 or set(order) - set("XYZ"):
        raise ValueError(f"Euler order must be three of X, Y, Z, got '{order}'")
    if degrees:
        t = torch.deg2rad(t)
    r = _single_axis(t[..., 0], order[0]) @ _single_axis(t[..., 1], order[1]) @ _single_axis(t[..., 2], order[2])
    return _back(r, np_in)
