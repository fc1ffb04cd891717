"""What a frame of the dance video shows: guidance maps -> RGB video frames.

Views (:data:`VIEWS`):

- ``"body"``: the capsule body, each part in its semantic colour, Lambert-shaded by the normal map under one
  light from the upper front, on a neutral grey background: a readable "mannequin" of the dance;
- ``"pose"``: the DWPose/OpenPose skeleton map (what pose-guided video models are conditioned on);
- ``"grid"``: 2 x 2 panels, depth | normal over semantic | pose (twice the width and height);
- ``"side-by-side"``: body | pose (twice the width).

Pure numpy on :class:`generation.video.guidance.GuidanceFrames`, chunk by chunk; no GL, no files.
"""
from __future__ import annotations

import numpy as np

from encoders.errors import InputError

from .guidance import GuidanceFrames
from .parts import PART_PALETTE

VIEWS: tuple[str, ...] = ("body", "pose", "grid", "side-by-side")
#: Background of the body view (RGB): a neutral mid-light grey, on which every part colour stands out.
BACKGROUND_GREY = (150, 150, 150)
#: Camera-space direction towards the light (x right, y up, z towards the camera): upper right, in front.
LIGHT_DIRECTION = (0.35, 0.55, 1.0)
#: Share of the light that reaches surfaces facing away from it (no black silhouettes).
AMBIENT = 0.35


def view_name(view: str) -> str:
    """Canonical view name (``side_by_side`` is accepted for ``side-by-side``); ``InputError`` if unknown."""
    name = str(view).strip().lower().replace("_", "-")
    if name not in VIEWS:
        raise InputError(None, "unknown view", field="view", expected=" | ".join(VIEWS), got=repr(view))
    return name


def view_shape(view: str, height: int, width: int) -> tuple[int, int]:
    """(height, width) of a ``view`` frame composed from guidance maps of ``height`` x ``width``."""
    name = view_name(view)
    if name == "grid":
        return 2 * height, 2 * width
    if name == "side-by-side":
        return height, 2 * width
    return height, width


def lambert(normal: np.ndarray, light: tuple[float, float, float] = LIGHT_DIRECTION,
            ambient: float = AMBIENT) -> np.ndarray:
    """float32 (...) brightness in [ambient, 1]: ``ambient + (1 - ambient) * max(n . l, 0)`` per pixel."""
    direction = np.asarray(light, dtype=np.float32)
    direction = direction / np.linalg.norm(direction)
    shade = np.asarray(normal, dtype=np.float32) @ direction
    np.clip(shade, 0.0, 1.0, out=shade)
    shade *= 1.0 - ambient
    shade += ambient
    return shade


def body_image(frames: GuidanceFrames, background: tuple[int, int, int] = BACKGROUND_GREY) -> np.ndarray:
    """uint8 (T, H, W, 3): the shaded capsule body in its part colours on a grey background.

    Only body pixels are shaded (about a tenth of the image), in integer arithmetic (colour x brightness
    / 256): about 2 ms a 256 x 256 frame on one core.
    """
    labels = frames.labels.reshape(-1)
    on = np.flatnonzero(labels)
    shade = lambert(frames.normal.reshape(-1, 3)[on])
    shade *= 256.0
    rgb = PART_PALETTE.astype(np.uint16)[labels[on]]
    rgb *= shade.astype(np.uint16)[:, None]
    rgb >>= 8
    out = np.empty((labels.size, 3), dtype=np.uint8)
    out[:] = np.asarray(background, dtype=np.uint8)
    out[on] = rgb
    return out.reshape(*frames.labels.shape[:3], 3)


def side_by_side(left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """uint8 (T, H, W1 + W2, 3): two frame stacks of the same height, left beside right."""
    if left.shape[:2] != right.shape[:2] or left.shape[-1] != right.shape[-1]:
        raise InputError(None, "frame stacks of different sizes", field="frames", expected=str(left.shape[:2]),
                         got=str(right.shape[:2]))
    return np.concatenate([left, right], axis=2)


def grid_image(frames: GuidanceFrames) -> np.ndarray:
    """uint8 (T, 2H, 2W, 3): depth | normal over semantic | pose."""
    top = side_by_side(frames.depth_image(), frames.normal_image())
    bottom = side_by_side(frames.semantic_image(), frames.pose)
    return np.concatenate([top, bottom], axis=1)


def compose(frames: GuidanceFrames, view: str = "body") -> np.ndarray:
    """uint8 (T, H', W', 3) RGB video frames of ``view`` (see :data:`VIEWS` and :func:`view_shape`)."""
    name = view_name(view)
    if name == "body":
        return body_image(frames)
    if name == "pose":
        return np.ascontiguousarray(frames.pose)
    if name == "grid":
        return grid_image(frames)
    return side_by_side(body_image(frames), frames.pose)


__all__ = ["AMBIENT", "BACKGROUND_GREY", "LIGHT_DIRECTION", "VIEWS", "body_image", "compose", "grid_image", "lambert",
           "side_by_side", "view_name", "view_shape"]
