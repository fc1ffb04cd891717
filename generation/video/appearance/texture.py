"""Projective texturing: colour each pixel of the posed target body from the photo, where the photo saw it.

Per target frame: every body pixel is unprojected with the target depth and camera to a 3D point; its part
label picks the part's rigid frame (:mod:`.frames`), which carries the point into the reference pose; the
photo camera projects it into the photo. The photo's colour is used only where the photo *saw* that
point: the reference body rendered from the photo camera has that part's surface at the same depth there
(within :data:`DEPTH_TOLERANCE`), and the person mask covers the pixel. Points the photo did not see
(the back, an arm's inner side, a hidden hand) are filled: first from the mirror point on the part's side
facing the photo camera (the front of the shirt stands in for its back; points on the side move onto the
face the photo saw), then from the part's mean colour in the photo. The head is not mirrored (a face on
the back of the head is worse than no face): its unseen points take the colour of its crown (hair).
Where the reference body's surface is visible in the photo but the photo shows no person (the capsule
head is bigger than a small head, a capsule arm wider than a thin one), the body is trimmed: those target
pixels are not drawn, so the dancer keeps the person's silhouette rather than the body model's.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..camera import Camera
from ..compose import lambert
from ..parts import NUM_PARTS, BodyPart
from .detect import cv2_module
from .frames import MIRROR_PART

#: A projected point counts as seen by the photo when its depth is within this of the reference body's (m).
DEPTH_TOLERANCE = 0.04
#: Points the photo did not see are moved round their bone to at most this angle (degrees) from the
#: direction towards the photo camera (:func:`_mirror`).
MAX_FILL_ANGLE = 55.0
#: Head points this far above the head joint (m) are the crown: its colour fills the unseen head.
CROWN_HEIGHT = 0.06
#: Brightness assumed for a part's mean colour when relighting (the mean over a lit half-capsule).
MEAN_SHADE = 0.75
#: Samples are looked up in blocks this wide (one cv2.remap call).
SAMPLE_COLUMNS = 1024
#: Photo pixels with a person mask below this are not the person (the body is trimmed there).
NOT_PERSON = 0.5
#: Where a target pixel's colour came from (:attr:`TexturedFrame.source`); ``NOT_BODY``: nowhere, the
#: pixel is not drawn (the photo shows no person where the reference body has its surface).
NOT_BODY, FROM_PHOTO, FROM_MIRROR, FROM_MEAN = 0, 1, 2, 3


@dataclass
class ReferenceView:
    """The photo and what the reference body looks like from the photo camera (rendered once).

    ``image`` float32 (H, W, 3) in [0, 255]; ``person`` bool (H, W): usable person pixels (mask eroded by
    one pixel so the background does not bleed in); ``depth`` float32 (H, W) and ``labels`` uint8 (H, W):
    the reference body's view depth and parts; ``frames``: :func:`.frames.part_frames` of the reference
    pose (T = 1); ``part_colours`` float32 (P, 3): mean photo colour of each part; ``shade`` float32
    (H, W) or None: the reference body's brightness under the body view's light (for relighting);
    ``outside`` bool (H, W) or None: pixels that are not the person (mask < :data:`NOT_PERSON`).
    """

    image: np.ndarray
    person: np.ndarray
    depth: np.ndarray
    labels: np.ndarray
    camera: Camera
    frames: tuple[np.ndarray, np.ndarray, np.ndarray]
    part_colours: np.ndarray
    shade: np.ndarray | None = None
    outside: np.ndarray | None = None

    @classmethod
    def build(cls, image: np.ndarray, mask: np.ndarray, depth: np.ndarray, labels: np.ndarray, camera: Camera,
              frames: tuple[np.ndarray, np.ndarray, np.ndarray],
              normal: np.ndarray | None = None) -> "ReferenceView":
        cv2 = cv2_module()
        person = cv2.erode((mask > 0.5).astype(np.uint8), np.ones((3, 3), np.uint8)) > 0
        img = image.astype(np.float32)
        colours = np.zeros((NUM_PARTS, 3), np.float32)
        seen = np.zeros(NUM_PARTS, bool)
        lab = np.where(person, labels, 0)
        for k in range(1, NUM_PARTS):
            sel = lab == k
            if sel.sum() >= 4:
                colours[k], seen[k] = img[sel].mean(0), True
        overall = img[person].mean(0) if person.any() else img.reshape(-1, 3).mean(0)
        crown = _crown(lab, depth, camera, frames)
        if crown is not None and crown.sum() >= 4:
            colours[BodyPart.HEAD], seen[BodyPart.HEAD] = img[crown].mean(0), True
        for k in range(1, NUM_PARTS):
            if not seen[k]:
                colours[k] = colours[MIRROR_PART[k]] if seen[MIRROR_PART[k]] else overall
        shade = None if normal is None else np.where(labels > 0, lambert(normal), 1.0).astype(np.float32)
        return cls(img, person, depth.astype(np.float32), labels.astype(np.uint8), camera, frames, colours, shade,
                   mask < NOT_PERSON)


def _crown(labels: np.ndarray, depth: np.ndarray, camera: Camera,
           frames: tuple[np.ndarray, np.ndarray, np.ndarray]) -> np.ndarray | None:
    """bool (H, W): the photo's head pixels in the upper part of the head (above the eyes: mostly hair)."""
    ys, xs = np.nonzero(labels == BodyPart.HEAD)
    if len(ys) == 0:
        return None
    world = unproject(camera, xs + 0.0, ys + 0.0, depth[ys, xs].astype(np.float64))
    o, r, _ = frames
    up = (world - o[0][BodyPart.HEAD]) @ r[0][BodyPart.HEAD][:, 1]
    out = np.zeros(labels.shape, bool)
    out[ys[up > CROWN_HEIGHT], xs[up > CROWN_HEIGHT]] = True
    return out


def unproject(camera: Camera, xs: np.ndarray, ys: np.ndarray, depth: np.ndarray) -> np.ndarray:
    """World points (N, 3) of pixel centres (``xs``, ``ys``) at view depth ``depth`` (N,) metres."""
    l, r, b, t = camera.frustum
    tx = l + (r - l) * (xs + 0.5) / camera.width
    ty = t - (t - b) * (ys + 0.5) / camera.height
    if camera.projection == "perspective":
        view = np.stack([tx * depth, ty * depth, -depth], axis=-1)
    else:
        view = np.stack([tx, ty, -depth], axis=-1)
    return view @ camera.rotation + camera.eye


@dataclass
class TexturedFrame:
    """Body pixels of one target frame: rows ``ys``, columns ``xs``, RGB ``colour`` float32 (N, 3) and
    ``source`` uint8 (N,) (:data:`FROM_PHOTO`, :data:`FROM_MIRROR`, :data:`FROM_MEAN`; :data:`NOT_BODY`:
    trimmed, not to be drawn)."""

    ys: np.ndarray
    xs: np.ndarray
    colour: np.ndarray
    source: np.ndarray


def _lookup(ref: ReferenceView, points: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Photo pixel positions (N, 2) of world points in the reference pose, whether the photo saw them, and
    whether the photo shows *no person* where the reference body's surface is (the body is too big there)."""
    px, d = ref.camera.project(points)
    h, w = ref.depth.shape
    iu = np.floor(px[:, 0]).astype(np.int64)
    iv = np.floor(px[:, 1]).astype(np.int64)
    inside = (iu >= 0) & (iu < w) & (iv >= 0) & (iv < h)
    iu_c, iv_c = np.clip(iu, 0, w - 1), np.clip(iv, 0, h - 1)
    ref_d = ref.depth[iv_c, iu_c]
    surface = inside & (ref_d > 0) & (np.abs(d - ref_d) < DEPTH_TOLERANCE)
    seen = surface & ref.person[iv_c, iu_c]
    empty = surface & ref.outside[iv_c, iu_c] if ref.outside is not None else np.zeros_like(seen)
    return px, seen, empty


def _sample(image: np.ndarray, px: np.ndarray) -> np.ndarray:
    """Bilinear colours (N, 3) at photo pixel positions ``px`` (N, 2) (pixel centres at +0.5)."""
    cv2 = cv2_module()
    n = len(px)
    rows = -(-n // SAMPLE_COLUMNS)                  # OpenCV maps must stay under 32767 rows: fold into a block
    maps = np.zeros((2, rows * SAMPLE_COLUMNS), np.float32)
    maps[:, :n] = (px - 0.5).T
    maps = maps.reshape(2, rows, SAMPLE_COLUMNS)
    out = cv2.remap(image, maps[0], maps[1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return out.reshape(-1, 3)[:n]


def texture_frame(ref: ReferenceView, depth: np.ndarray, labels: np.ndarray, camera: Camera,
                  transforms: np.ndarray, normal: np.ndarray | None = None, relight: float = 0.0) -> TexturedFrame:
    """Colour the body pixels of one target frame.

    ``depth`` (H, W) float32 and ``labels`` (H, W) uint8 of the target body (from ``GuidanceRenderer``);
    ``camera``: the target camera; ``transforms`` (P, 3, 4): target pose -> reference pose per part
    (:func:`.frames.part_transforms`). ``relight`` in [0, 1] (with ``normal`` (H, W, 3), the target's
    camera-space normals and the reference's ``shade``): move the photo's shading that far towards the
    target's under the body view's light (colour x target brightness / photo brightness), so a limb
    turned from the light darkens; 0 keeps the photo's shading as it is.
    """
    ys, xs = np.nonzero(labels)
    part = labels[ys, xs].astype(np.intp)
    if len(ys) == 0:
        return TexturedFrame(ys, xs, np.zeros((0, 3), np.float32), np.zeros(0, np.uint8))
    world = unproject(camera, xs.astype(np.float64), ys.astype(np.float64), depth[ys, xs].astype(np.float64))
    m = transforms[part]                                                  # (N, 3, 4)
    p_ref = np.einsum("nij,nj->ni", m[:, :, :3], world) + m[:, :, 3]
    px, seen, empty = _lookup(ref, p_ref)
    source = np.where(seen, FROM_PHOTO, 0).astype(np.uint8)
    hidden = ~seen & ~empty & (part != BodyPart.HEAD)
    if hidden.any():
        px_m, seen_m, empty_m = _lookup(ref, _mirror(ref, p_ref[hidden], part[hidden]))
        idx = np.nonzero(hidden)[0]
        px[idx[seen_m]] = px_m[seen_m]
        source[idx[seen_m]] = FROM_MIRROR
        empty[idx[empty_m & ~seen_m]] = True
    colour = np.zeros((len(ys), 3), np.float32)
    use = source > 0
    if use.any():
        colour[use] = _sample(ref.image, px[use])
    fill = ~use & ~empty
    colour[fill] = ref.part_colours[part[fill]]
    source[fill] = FROM_MEAN
    source[empty] = NOT_BODY
    if relight > 0 and normal is not None and ref.shade is not None:
        h, w = ref.shade.shape
        photo_shade = np.full(len(ys), MEAN_SHADE, np.float32)
        iu = np.clip(np.floor(px[use, 0]).astype(np.int64), 0, w - 1)
        iv = np.clip(np.floor(px[use, 1]).astype(np.int64), 0, h - 1)
        photo_shade[use] = ref.shade[iv, iu]
        ratio = lambert(normal[ys, xs]) / np.maximum(photo_shade, 0.2)
        colour *= (1.0 + relight * (np.clip(ratio, 0.5, 2.0) - 1.0))[:, None]
    return TexturedFrame(ys, xs, colour, source)


def _mirror(ref: ReferenceView, points: np.ndarray, part: np.ndarray) -> np.ndarray:
    """Move points the photo did not see round their bone to the side it did see.

    Around the bone axis, the angle from the direction towards the photo camera is mirrored when the
    point faces away (back -> front) and then clipped to :data:`MAX_FILL_ANGLE` (a point on the side,
    which mirroring leaves on the side, moves onto the visible face; so does a front point that failed
    the depth test at the silhouette edge). The axial position and the distance from the axis are kept.
    """
    o, r, _ = ref.frames
    origin, rot = o[0][part], r[0][part]                                  # (N, 3), (N, 3, 3)
    local = np.einsum("nji,nj->ni", rot, points - origin)                  # R^T (p - o)
    e1 = np.einsum("nji,nj->ni", rot, ref.camera.eye - origin)
    e1[:, 1] = 0.0                                                         # perpendicular to the bone
    e1 /= np.maximum(np.linalg.norm(e1, axis=-1, keepdims=True), 1e-9)
    e2 = np.stack([e1[:, 2], np.zeros(len(e1)), -e1[:, 0]], axis=-1)        # (0, 1, 0) x e1
    a, b = (local * e1).sum(-1), (local * e2).sum(-1)
    radius, theta = np.hypot(a, b), np.arctan2(b, a)
    folded = np.where(np.abs(theta) > np.pi / 2, np.pi - np.abs(theta), np.abs(theta))
    theta = np.sign(theta) * np.minimum(folded, np.radians(MAX_FILL_ANGLE))
    moved = local[:, 1:2] * np.array([0.0, 1.0, 0.0]) + radius[:, None] * (
        np.cos(theta)[:, None] * e1 + np.sin(theta)[:, None] * e2)
    return origin + np.einsum("nij,nj->ni", rot, moved)
