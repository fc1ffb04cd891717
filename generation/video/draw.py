"""Pose maps and keypoint heatmaps rasterised with numpy (no OpenCV: it is not a dependency here).

Why numpy: the shapes are few and small (17 limb ellipses, 18 dots, 40 hand bones, 42 dots per frame);
testing every shape's bounding-box pixels in one vectorised pass costs ~2 ms a frame at 256 px where drawing them
one call at a time cost 5-7 ms, and which pixel a keypoint lands in stays exactly defined. Pixels are
sampled at their centres (col + 0.5, row + 0.5), like OpenGL.
Sizes follow DWPose's drawing at 512 px (limb half-width 4, dot radius 4, hand bones 2 px wide) and
scale with the image, so a 256 px map looks like a downscaled 512 px one.
"""
from __future__ import annotations

import numpy as np

from .openpose import (BODY_COLOURS, BODY_LIMBS, DRAWN_LIMBS, HAND_EDGE_COLOURS, HAND_EDGES, HAND_POINT_COLOUR,
                       NUM_BODY, NUM_HAND)

#: DWPose dims the limbs to 60 % before drawing the keypoints over them.
LIMB_DIM = 0.6
REFERENCE_SIZE = 512.0


def rasterise_shapes(p: np.ndarray, q: np.ndarray, radius: np.ndarray, ellipse: np.ndarray, height: int,
                     width: int) -> np.ndarray:
    """(H, W) int32: index of the last shape covering each pixel centre, -1 where none does (painter's order).

    Shape i is the ellipse with major axis p_i-q_i and minor semi-axis ``radius_i`` when ``ellipse_i``, else
    the round-capped segment p_i-q_i of half-width ``radius_i`` (a disc when p_i == q_i). All shapes are
    tested in one vectorised pass over their bounding boxes; the highest index wins a pixel, which is what
    drawing them one after another would leave.
    """
    p = np.asarray(p, dtype=np.float64).reshape(-1, 2)
    q = np.asarray(q, dtype=np.float64).reshape(-1, 2)
    r = np.asarray(radius, dtype=np.float64).reshape(-1)
    ell = np.asarray(ellipse, dtype=bool).reshape(-1)
    out = np.full(height * width, -1, dtype=np.int32)
    if len(p) == 0:
        return out.reshape(height, width)
    centre = 0.5 * (p + q)
    d = q - p
    length = np.linalg.norm(d, axis=1)
    u = np.where(length[:, None] > 1e-9, d / np.maximum(length, 1e-9)[:, None], [1.0, 0.0])
    semi_major = np.maximum(0.5 * length, r)
    # axis-aligned half extents of the rotated ellipse
    half = np.stack([np.hypot(semi_major * u[:, 0], r * u[:, 1]), np.hypot(semi_major * u[:, 1], r * u[:, 0])], 1)
    lo = np.where(ell[:, None], centre - half, np.minimum(p, q) - r[:, None])
    hi = np.where(ell[:, None], centre + half, np.maximum(p, q) + r[:, None])
    x0 = np.clip(np.floor(lo[:, 0]), 0, width).astype(np.int64)
    y0 = np.clip(np.floor(lo[:, 1]), 0, height).astype(np.int64)
    x1 = np.clip(np.ceil(hi[:, 0]) + 1, 0, width).astype(np.int64)
    y1 = np.clip(np.ceil(hi[:, 1]) + 1, 0, height).astype(np.int64)
    bw, bh = np.maximum(x1 - x0, 0), np.maximum(y1 - y0, 0)
    sizes = bw * bh
    total = int(sizes.sum())
    if total == 0:
        return out.reshape(height, width)
    ids = np.repeat(np.arange(len(p)), sizes)
    off = np.arange(total) - np.repeat(np.cumsum(sizes) - sizes, sizes)
    w_ids = bw[ids]
    x = x0[ids] + off % w_ids
    y = y0[ids] + off // w_ids
    dx = x + 0.5 - p[ids, 0]
    dy = y + 0.5 - p[ids, 1]
    # segment: distance to p + t d, t clipped to [0, 1]
    dd = d[ids]
    ll = np.maximum(length[ids] ** 2, 1e-12)
    t = np.clip((dx * dd[:, 0] + dy * dd[:, 1]) / ll, 0.0, 1.0)
    rr = r[ids]
    in_seg = (dx - t * dd[:, 0]) ** 2 + (dy - t * dd[:, 1]) ** 2 <= rr * rr
    # ellipse: coordinates along / across the major axis, from the centre
    ex = x + 0.5 - centre[ids, 0]
    ey = y + 0.5 - centre[ids, 1]
    uu = u[ids]
    along = (ex * uu[:, 0] + ey * uu[:, 1]) / semi_major[ids]
    across = (-ex * uu[:, 1] + ey * uu[:, 0]) / rr
    in_ell = along * along + across * across <= 1.0
    inside = np.where(ell[ids], in_ell, in_seg)
    np.maximum.at(out, (y * width + x)[inside], ids[inside].astype(np.int32))
    return out.reshape(height, width)


def draw_pose_map(keypoints: np.ndarray, valid: np.ndarray, height: int, width: int,
                  scale: float | None = None) -> np.ndarray:
    """(H, W, 3) uint8 DWPose-style map of one frame: body limbs (dimmed), body dots, then hands.

    ``keypoints`` (K, 2) pixels and ``valid`` (K,) as from :func:`project_keypoints` (K = 18 or 60).
    ``scale``: line and dot size relative to DWPose's 512 px drawing (default: min(H, W) / 512). A dot always
    covers the pixel its keypoint falls in (radius at least 0.75 px).
    """
    s = min(height, width) / REFERENCE_SIZE if scale is None else float(scale)
    kp = np.asarray(keypoints, dtype=np.float64)
    ok = np.asarray(valid, dtype=bool)
    dot = max(4 * s, 0.75)
    p, q, r, ell, colours = [], [], [], [], []

    def add(a: int, b: int, radius: float, is_ellipse: bool, colour: np.ndarray) -> None:
        p.append(kp[a]), q.append(kp[b]), r.append(radius), ell.append(is_ellipse), colours.append(colour)

    for i in range(DRAWN_LIMBS):
        a, b = BODY_LIMBS[i]
        if ok[a] and ok[b]:
            add(a, b, max(4 * s, 0.75), True, (BODY_COLOURS[i] * LIMB_DIM).astype(np.uint8))
    for k in range(NUM_BODY):
        if ok[k]:
            add(k, k, dot, False, BODY_COLOURS[k])
    for hand in range((len(kp) - NUM_BODY) // NUM_HAND):
        base = NUM_BODY + hand * NUM_HAND
        for e, (a, b) in enumerate(HAND_EDGES):
            if ok[base + a] and ok[base + b]:
                add(base + a, base + b, max(s, 0.6), False, HAND_EDGE_COLOURS[e])
        for k in range(NUM_HAND):
            if ok[base + k]:
                add(base + k, base + k, dot, False, HAND_POINT_COLOUR)
    idx = rasterise_shapes(np.array(p).reshape(-1, 2), np.array(q).reshape(-1, 2), np.array(r), np.array(ell),
                           height, width)
    canvas = np.zeros((height * width, 3), dtype=np.uint8)
    flat = idx.reshape(-1)
    hit = np.flatnonzero(flat >= 0)                     # most pixels are background: gather only the drawn ones
    canvas[hit] = np.array(colours, dtype=np.uint8).reshape(-1, 3)[flat[hit]]
    return canvas.reshape(height, width, 3)


def keypoint_heatmaps(keypoints: np.ndarray, valid: np.ndarray, height: int, width: int,
                      sigma: float | None = None) -> np.ndarray:
    """(N, H, W, K) float32 Gaussian heatmaps, peak 1 at each valid keypoint, 0 for invalid ones.

    ``keypoints`` (N, K, 2) pixels, ``valid`` (N, K). ``sigma`` in pixels (default: 2 px at 256 px,
    scaling with the image). Separable: the outer product of two 1-D Gaussians per keypoint.
    """
    kp = np.asarray(keypoints, dtype=np.float32)
    sig = (min(height, width) / 128.0) if sigma is None else float(sigma)
    if sig <= 0:
        raise ValueError("sigma must be positive")
    xs = np.arange(width, dtype=np.float32) + 0.5
    ys = np.arange(height, dtype=np.float32) + 0.5
    gx = np.exp(-0.5 * ((xs[None, None, :] - kp[..., 0:1]) / sig) ** 2)          # (N, K, W)
    gy = np.exp(-0.5 * ((ys[None, None, :] - kp[..., 1:2]) / sig) ** 2)          # (N, K, H)
    gy = gy * np.asarray(valid, dtype=np.float32)[..., None]
    return np.einsum("nkh,nkw->nhwk", gy, gx).astype(np.float32, copy=False)
