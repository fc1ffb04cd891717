"""Per-limb 2D warps: the parts of the photo's silhouette the 3D body does not cover (hair, loose clothes).

Why a second layer: the body the preview textures is an approximation (capsules, or a mesh of average
shape); the person in the photo is wider in places. Those photo pixels outside the reference body are
cut into one layer per part (each pixel goes to the part whose projected bone is nearest), and each layer
follows its bone in 2D: the bone's start lands on the target bone's start, its direction turns with the
bone, it stretches along the bone as the projected bone does, and across it by the change of image scale
(pixels per metre at the bone's depth). That is what breaks under foreshortening, which is why these
layers only fill the margin around the 3D-textured body (:mod:`.texture`), drawn beneath it, far parts first.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..camera import Camera
from ..parts import NUM_PARTS, BodyPart
from .detect import cv2_module

#: Axial stretch of a layer is clipped to this range (times the image-scale change).
STRETCH_RANGE = (0.3, 3.0)
#: Mask slack (fraction of the photo's longer side): person pixels this close to the reference body, and
#: margin regions thinner than this, are the segmentation's soft edge, not hair or clothes, and are dropped
#: (warping them drags strips of the wall along with the limbs).
MARGIN_SLACK = 0.012
#: Parts warped as similarities (no stretch along a bone): their bone is a direction, not a length.
RIGID_PARTS = (BodyPart.HEAD, BodyPart.LEFT_HAND, BodyPart.RIGHT_HAND, BodyPart.NECK)


@dataclass
class PartLayer:
    """One part's share of the silhouette margin: a crop at (``x0``, ``y0``) of the photo, premultiplied
    RGB + alpha float32 (h, w, 4)."""

    part: int
    x0: int
    y0: int
    rgba: np.ndarray


def bone_points_2d(camera: Camera, origins: np.ndarray, rots: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """(T, P, 2, 2) projected start and end of each part's bone (frames of :func:`.frames.part_frames`)."""
    ends = origins + rots[..., :, 1] * lengths[..., None]
    px, _ = camera.project(np.stack([origins, ends], axis=-2))
    return px


def pixels_per_metre(camera: Camera, points: np.ndarray) -> np.ndarray:
    """Image scale (pixels per metre, vertical) at world ``points`` (..., 3)."""
    l, r, b, t = camera.frustum
    f = camera.height / (t - b)
    if camera.projection != "perspective":
        return np.full(points.shape[:-1], f)
    return f / np.maximum(camera.to_view(points)[..., 2] * -1.0, 1e-3)


def margin_layers(image: np.ndarray, person: np.ndarray, body_labels: np.ndarray,
                  bones: np.ndarray) -> list[PartLayer]:
    """Cut the photo's person pixels outside the reference body into per-part layers.

    ``image`` (H, W, 3) uint8/float; ``person`` (H, W) float mask in [0, 1]; ``body_labels`` (H, W) the
    reference body's parts; ``bones`` (P, 2, 2) projected reference bones (row 0 unused).
    """
    cv2 = cv2_module()
    alpha = np.clip(person.astype(np.float32), 0.0, 1.0)
    grow = max(2, int(round(MARGIN_SLACK * max(alpha.shape))))
    disc = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * grow + 1, 2 * grow + 1))
    body = cv2.dilate((body_labels > 0).astype(np.uint8), disc)
    margin = cv2.morphologyEx(((alpha > 0.5) & (body == 0)).astype(np.uint8), cv2.MORPH_OPEN, disc) > 0
    ys, xs = np.nonzero(margin)
    if len(ys) == 0:
        return []
    pts = np.stack([xs + 0.5, ys + 0.5], axis=-1)
    a, b = bones[1:, 0], bones[1:, 1]                         # (P-1, 2)
    ab = b - a
    tpar = np.clip(((pts[:, None] - a[None]) * ab[None]).sum(-1) / np.maximum((ab * ab).sum(-1), 1e-6), 0.0, 1.0)
    dist = np.linalg.norm(pts[:, None] - (a[None] + tpar[..., None] * ab[None]), axis=-1)
    owner = np.argmin(dist, axis=1) + 1
    layers = []
    img = image.astype(np.float32)
    for k in range(1, NUM_PARTS):
        sel = owner == k
        if sel.sum() < 4:
            continue
        y0, y1, x0, x1 = ys[sel].min(), ys[sel].max() + 1, xs[sel].min(), xs[sel].max() + 1
        a_k = np.zeros((y1 - y0, x1 - x0), np.float32)
        a_k[ys[sel] - y0, xs[sel] - x0] = alpha[ys[sel], xs[sel]]
        rgba = np.concatenate([img[y0:y1, x0:x1] * a_k[..., None], a_k[..., None]], axis=-1)
        layers.append(PartLayer(k, int(x0), int(y0), np.ascontiguousarray(rgba)))
    return layers


def bone_affine(src: np.ndarray, dst: np.ndarray, across: float, rigid: bool) -> np.ndarray:
    """(2, 3) affine taking the 2D bone ``src`` (2, 2) onto ``dst`` (2, 2): start to start, direction to
    direction, stretched along the bone by the length ratio (``across`` when ``rigid``) and across it by ``across``."""
    def frame(bone: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
        d = bone[1] - bone[0]
        n = float(np.linalg.norm(d))
        u = d / n if n > 1e-6 else np.array([0.0, 1.0])
        return u, np.array([-u[1], u[0]]), n

    u_s, n_s, len_s = frame(src)
    u_d, n_d, len_d = frame(dst)
    along = across if rigid or len_s < 1e-3 else float(np.clip(len_d / len_s, across * STRETCH_RANGE[0],
                                                                across * STRETCH_RANGE[1]))
    lin = along * np.outer(u_d, u_s) + across * np.outer(n_d, n_s)
    return np.concatenate([lin, (dst[0] - lin @ src[0])[:, None]], axis=1)


def warp_layers(layers: list[PartLayer], affines: np.ndarray, order: np.ndarray, height: int,
                width: int) -> tuple[np.ndarray, np.ndarray]:
    """Composite warped layers, far parts first: (RGB premultiplied float32 (H, W, 3), alpha (H, W)).

    ``affines`` (P, 2, 3) photo pixels -> output pixels; ``order`` part ids from far to near.
    """
    cv2 = cv2_module()
    rgb = np.zeros((height, width, 3), np.float32)
    alpha = np.zeros((height, width), np.float32)
    by_part = {layer.part: layer for layer in layers}
    for k in order:
        layer = by_part.get(int(k))
        if layer is None:
            continue
        m = affines[k].copy()
        # pixel-centre convention: OpenCV maps integer coordinates, our affines map pixel centres (+0.5)
        m[:, 2] = m[:, :2] @ np.array([layer.x0 + 0.5, layer.y0 + 0.5]) + m[:, 2] - 0.5
        lh, lw = layer.rgba.shape[:2]
        corners = np.array([[0, 0], [lw, 0], [0, lh], [lw, lh]], np.float64) @ m[:, :2].T + m[:, 2]
        x0, y0 = np.maximum(np.floor(corners.min(0)).astype(int) - 1, 0)
        x1, y1 = np.minimum(np.ceil(corners.max(0)).astype(int) + 2, [width, height])
        if x1 <= x0 or y1 <= y0:
            continue
        m[:, 2] -= (x0, y0)                     # warp straight into the destination box only
        warped = cv2.warpAffine(layer.rgba, m, (int(x1 - x0), int(y1 - y0)), flags=cv2.INTER_LINEAR,
                                borderMode=cv2.BORDER_CONSTANT, borderValue=0)
        a = warped[..., 3]
        box_rgb, box_a = rgb[y0:y1, x0:x1], alpha[y0:y1, x0:x1]
        box_rgb *= (1.0 - a)[..., None]
        box_rgb += warped[..., :3]
        box_a *= 1.0 - a
        box_a += a
    return rgb, alpha
