"""Batched rotation conversions (axis-angle, matrix, 6D, Euler, quaternions), for numpy arrays and torch tensors.

Every function takes ``(..., k)`` inputs and works on numpy arrays or torch tensors alike, returning
the same kind it was given (except :func:`matrix_to_euler_zyx`, numpy only). The matrix, 6D and Euler
to matrix conversions compute in torch (one code path). The quaternion functions instead run in the
library they are given (one source through :func:`_native`): numpy's and torch's sin / cos / atan2
differ in the last bit, and the procedural demo corpus, whose stored arrays must not change between
releases, is computed in numpy.

Quaternions are ``(w, x, y, z)``; Euler orders are intrinsic, ``"YZX"`` meaning ``R = Ry @ Rz @ Rx``
(as BVH channel lists), for :func:`euler_to_matrix`, :func:`euler_to_quaternion` and
:func:`matrix_to_euler_zyx` alike.

6D convention: as FineDance / EDGE / pytorch3d, the 6D vector is the first two ROWS of the
3x3 matrix flattened (``R[..., :2, :]``), not the first two columns (Zhou et al. use columns;
reading FineDance files with the column convention silently transposes every rotation).
"""
from __future__ import annotations

import math
from types import ModuleType
from typing import Any, TypeVar

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


def _native(x: Any) -> tuple[ModuleType, Any]:
    """The array library of ``x`` (torch for tensors, else numpy) and ``x`` as that library's array.

    For the quaternion functions, whose arithmetic is written once against ``xp.sin``, ``xp.stack``, ...
    """
    if isinstance(x, torch.Tensor):
        return torch, x
    return np, np.asarray(x)


def _norm_last(xp: ModuleType, v: Any) -> Any:
    """Euclidean norm over the last axis, kept as a length-1 axis."""
    if xp is torch:
        return torch.linalg.norm(v, dim=-1, keepdim=True)
    return np.linalg.norm(v, axis=-1, keepdims=True)


def _clamp_min(xp: ModuleType, x: Any, lo: float) -> Any:
    return x.clamp_min(lo) if xp is torch else np.maximum(x, lo)


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


def quaternion_to_axis_angle(q: ArrayT) -> ArrayT:
    """(..., 4) unit quaternions (w, x, y, z) -> (..., 3) axis-angle, angle in [0, pi] (q and -q agree)."""
    xp, q = _native(q)
    q = xp.where(q[..., :1] < 0, -q, q)
    v = q[..., 1:]
    n = _norm_last(xp, v)
    angle = 2 * xp.arctan2(n, q[..., :1])
    # near 0, angle / n -> 2 (a unit quaternion's w is 1 to second order): no 0 / 0
    scale = xp.where(n < 1e-8, 2.0, angle / _clamp_min(xp, n, 1e-12))
    return v * scale


def quaternion_to_matrix(q: ArrayT) -> ArrayT:
    """(..., 4) unit quaternions (w, x, y, z) -> (..., 3, 3) rotation matrices."""
    xp, q = _native(q)
    w, x, y, z = q[..., 0], q[..., 1], q[..., 2], q[..., 3]
    return xp.stack([1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y),
                     2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x),
                     2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)], -1).reshape(
        tuple(q.shape[:-1]) + (3, 3))


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


def _euler_order(order: str) -> str:
    order = order.upper()
    if len(order) != 3 or set(order) - set("XYZ"):
        raise ValueError(f"Euler order must be three of X, Y, Z, got '{order}'")
    return order


def euler_to_matrix(angles: ArrayT, order: str, degrees: bool = True) -> ArrayT:
    """(..., 3) Euler angles -> (..., 3, 3) for intrinsic rotations in ``order`` (e.g. "ZXY").

    BVH lists rotation channels in the order they apply as intrinsic rotations:
    ``R = R_first @ R_second @ R_third``, angle ``i`` belonging to axis ``order[i]``.
    """
    t, np_in = _to_torch(angles)
    order = _euler_order(order)
    if degrees:
        t = torch.deg2rad(t)
    r = _single_axis(t[..., 0], order[0]) @ _single_axis(t[..., 1], order[1]) @ _single_axis(t[..., 2], order[2])
    return _back(r, np_in)


_AXIS_INDEX = {"X": 0, "Y": 1, "Z": 2}


def euler_to_quaternion(angles: ArrayT, order: str, degrees: bool = True) -> ArrayT:
    """(..., 3) Euler angles -> (..., 4) unit quaternions (w, x, y, z) of :func:`euler_to_matrix`'s rotation.

    ``q = q_first * q_second * q_third`` in closed form (Hamilton products with single-axis quaternions,
    no term that is known to be zero): cheaper than building matrices when only axis-angle is stored,
    which is why the procedural corpus poses its rig this way.
    """
    xp, a = _native(angles)
    order = _euler_order(order)
    if degrees:
        a = xp.deg2rad(a)
    (c0, s0), (c1, s1), (c2, s2) = ((xp.cos(h), xp.sin(h)) for h in (a[..., k] / 2 for k in range(3)))
    i, j, m = (_AXIS_INDEX[ax] for ax in order)
    v: list[Any] = [None, None, None]
    if i == j:
        w = c0 * c1 - s0 * s1
        v[i] = s0 * c1 + c0 * s1
        v[(i + 1) % 3] = v[(i + 2) % 3] = xp.zeros_like(w)
    else:
        # (c0, s0 e_i) * (c1, s1 e_j) = (c0 c1, s0 c1 e_i + c0 s1 e_j + s0 s1 e_i x e_j), e_i x e_j = +-e_k
        k = 3 - i - j
        w = c0 * c1
        v[i], v[j] = s0 * c1, c0 * s1
        v[k] = s0 * s1 if (j - i) % 3 == 1 else -(s0 * s1)
    # q * (c2, s2 e_m), with (m, p, n) cyclic: v x e_m = v_n e_p - v_p e_n
    p, n = (m + 1) % 3, (m + 2) % 3
    out: list[Any] = [None] * 4
    out[0] = w * c2 - v[m] * s2
    out[1 + m] = w * s2 + v[m] * c2
    out[1 + p] = v[p] * c2 + v[n] * s2
    out[1 + n] = v[n] * c2 - v[p] * s2
    return xp.stack(out, -1)


def matrix_to_euler_zyx(m: np.ndarray) -> np.ndarray:
    """(..., 3, 3) -> (..., 3) degrees (z, y, x) with ``R = Rz(z) @ Ry(y) @ Rx(x)``; exact at gimbal lock.

    The inverse of ``euler_to_matrix(angles, "ZYX")`` (y in [-90, 90]). Numpy only: it serves file
    export (BVH rotation channels, :mod:`encoders.motion.bvh_write`), never a gradient.
    """
    m = np.asarray(m, dtype=np.float64)
    sy = np.clip(-m[..., 2, 0], -1.0, 1.0)
    y = np.arcsin(sy)
    cy = np.sqrt(m[..., 2, 1] ** 2 + m[..., 2, 2] ** 2)
    regular = cy > 1e-6
    z = np.where(regular, np.arctan2(m[..., 1, 0], m[..., 0, 0]), 0.0)
    x = np.where(regular, np.arctan2(m[..., 2, 1], m[..., 2, 2]),
                 np.where(sy > 0, np.arctan2(m[..., 0, 1], m[..., 1, 1]), np.arctan2(-m[..., 0, 1], m[..., 1, 1])))
    y = np.where(regular, y, np.sign(sy) * (math.pi / 2))
    return np.degrees(np.stack([z, y, x], axis=-1))
