"""The photo without the person (inpainted once) and the crop of it that fills an output frame.

Why once: the dancer moves over a background that does not; inpainting per frame would cost ~10 ms and
flicker. The hole is the person mask grown a little (mediapipe's mask edge is soft, and a halo of the
person left in the background is what the eye catches first) plus thick lines along the limbs. OpenCV's
inpainting runs on a copy at most :data:`INPAINT_SIDE` pixels wide (its cost grows with the hole's area),
and the result is pasted back into the hole only, so the rest of the photo keeps its full resolution.
Navier-Stokes is the default: on the synthetic walls and tiled floors it came out closer to the true
background than Telea at the same cost; shift-map is much closer still and costs seconds.
"""
from __future__ import annotations

import numpy as np

from encoders.errors import InputError

from ..camera import Camera
from .detect import cv2_module

#: Longest side of the image inpainting runs on.
INPAINT_SIDE = 384
#: OpenCV inpainting methods: Navier-Stokes and Telea (fast diffusion, ~0.1 s), or xphoto's shift-map
#: (copies texture patches: far better on patterned walls and floors, but seconds per photo on a CPU).
INPAINT_METHODS: tuple[str, ...] = ("ns", "telea", "shiftmap")
#: Growth of the person mask before inpainting, as a fraction of the image's longer side (at least 2 px).
GROW = 0.015
#: Limb lines painted out with the mask, thickness as a fraction of the person's height.
SKELETON_WIDTH = 0.05
#: mediapipe landmark pairs painted out (arms, hands, legs, feet).
SKELETON_LINES: tuple[tuple[int, int], ...] = (
    (11, 13), (13, 15), (15, 17), (15, 19), (15, 21), (17, 19), (12, 14), (14, 16), (16, 18), (16, 20), (16, 22),
    (18, 20), (23, 25), (25, 27), (27, 29), (29, 31), (27, 31), (24, 26), (26, 28), (28, 30), (30, 32), (28, 32))


def person_hole(mask: np.ndarray) -> np.ndarray:
    """uint8 (H, W) 0/1: the person mask (> 0.5, or > 0.2 near it) grown by :data:`GROW`."""
    cv2 = cv2_module()
    grow = max(2, int(round(GROW * max(mask.shape))))
    hole = (mask > 0.2).astype(np.uint8)
    return cv2.dilate(hole, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * grow + 1, 2 * grow + 1)))


def skeleton_hole(shape: tuple[int, int], landmarks: np.ndarray, width: float) -> np.ndarray:
    """uint8 (H, W) 0/1: thick lines along the limbs, hands and feet of mediapipe's 33 ``landmarks`` (pixels).

    Why: the segmentation misses thin or dark extremities (fingers, shoes) often enough that their
    remains would otherwise stay in the background and be seen beside the dancing body.
    """
    cv2 = cv2_module()
    hole = np.zeros(shape, np.uint8)
    pts = np.rint(np.asarray(landmarks)).astype(np.int64)
    for a, b in SKELETON_LINES:
        cv2.line(hole, tuple(int(v) for v in pts[a]), tuple(int(v) for v in pts[b]), 1,
                 thickness=max(2, int(round(width))))
    return hole


def inpaint_person(image: np.ndarray, mask: np.ndarray, landmarks: np.ndarray | None = None, *,
                   method: str = "ns") -> np.ndarray:
    """uint8 (H, W, 3): ``image`` with the person (``mask`` (H, W) in [0, 1], and thick lines along
    ``landmarks`` (33, 2) when given) painted out with ``method`` (:data:`INPAINT_METHODS`)."""
    if method not in INPAINT_METHODS:
        raise InputError(None, "unknown inpainting method", field="inpaint", expected=" | ".join(INPAINT_METHODS),
                         got=repr(method))
    cv2 = cv2_module()
    hole = person_hole(mask)
    if landmarks is not None and (mask > 0.5).any():
        ys = np.nonzero((mask > 0.5).any(1))[0]
        hole |= skeleton_hole(hole.shape, landmarks, SKELETON_WIDTH * (ys.max() - ys.min() + 1))
    if not hole.any():
        return image.copy()
    h, w = hole.shape
    scale = min(1.0, INPAINT_SIDE / max(h, w))
    small, small_hole = np.ascontiguousarray(image), hole
    if scale < 1:
        size = (max(1, round(w * scale)), max(1, round(h * scale)))
        small = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
        small_hole = cv2.dilate(cv2.resize(hole, size, interpolation=cv2.INTER_NEAREST), np.ones((3, 3), np.uint8))
    if method == "shiftmap":
        filled = np.zeros_like(small)
        cv2.xphoto.inpaint(small, (1 - small_hole).astype(np.uint8), filled, cv2.xphoto.INPAINT_SHIFTMAP)
    else:
        flag = cv2.INPAINT_NS if method == "ns" else cv2.INPAINT_TELEA
        filled = cv2.inpaint(small, small_hole, 5, flag)
    if scale < 1:
        filled = cv2.resize(filled, (w, h), interpolation=cv2.INTER_LINEAR)
    return np.where(hole[..., None] > 0, filled, image).astype(np.uint8)


def cover_rect(width: int, height: int, out_width: int, out_height: int) -> tuple[int, int, int, int]:
    """(x0, y0, w, h) pixels: the largest centred region of a ``width`` x ``height`` image with the output's
    aspect ratio (to the pixel), so the output is covered and nothing is letterboxed."""
    aspect = out_width / out_height
    if width / height > aspect:
        cw, ch = min(width, max(1, round(height * aspect))), height
    else:
        cw, ch = width, min(height, max(1, round(width / aspect)))
    return (width - cw) // 2, (height - ch) // 2, int(cw), int(ch)


def cover_image(image: np.ndarray, out_height: int, out_width: int) -> np.ndarray:
    """``image`` cropped to :func:`cover_rect` and resized to (``out_height``, ``out_width``)."""
    cv2 = cv2_module()
    h, w = image.shape[:2]
    x0, y0, cw, ch = cover_rect(w, h, out_width, out_height)
    crop = np.ascontiguousarray(image[y0:y0 + ch, x0:x0 + cw])
    if (cw, ch) == (out_width, out_height):
        return crop.copy()
    interp = cv2.INTER_AREA if cw > out_width else cv2.INTER_LINEAR
    return cv2.resize(crop, (out_width, out_height), interpolation=interp)


def cover_camera(camera: Camera, out_height: int, out_width: int) -> Camera:
    """The photo ``camera`` re-framed for an output of (``out_height``, ``out_width``): the same
    :func:`cover_rect` crop as :func:`cover_image`, so a body rendered with it lands on the cropped photo."""
    x0, y0, cw, ch = cover_rect(camera.width, camera.height, out_width, out_height)
    l, r, b, t = camera.frustum
    fx, fy = (r - l) / camera.width, (t - b) / camera.height
    frustum = (l + fx * x0, l + fx * (x0 + cw), t - fy * (y0 + ch), t - fy * y0)
    return Camera(width=int(out_width), height=int(out_height), projection=camera.projection, eye=camera.eye,
                  rotation=camera.rotation, frustum=tuple(float(v) for v in frustum), near=camera.near,
                  far=camera.far, depth_range=camera.depth_range)
