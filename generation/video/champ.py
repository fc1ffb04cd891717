"""Guidance written as image sequences in Champ's folder layout, atomically.

Champ (``configs/inference/inference.yaml``: ``guidance_data_folder``, ``guidance_types``) reads
``<folder>/<type>/*.png`` for the types ``depth``, ``normal``, ``semantic_map`` and ``dwpose``, sorted by
file name, and masks the semantic map with ``<folder>/mask/<same name>``. So the layout is::

    <out>/depth/0000.png         grey RGB, near bright (fixed range for the dance), background black
    <out>/normal/0000.png        RGB = (n + 1) / 2, camera space (x right, y up, z towards the camera)
    <out>/semantic_map/0000.png  RGB part colours (generation.video.parts.PART_PALETTE), background black
    <out>/mask/0000.png          greyscale, 255 body / 0 background
    <out>/dwpose/0000.png        RGB OpenPose/DWPose skeleton map
    <out>/guidance.json          camera, depth range, keypoint layout, frame count (Champ ignores it)

File names are zero-padded to at least 4 digits (more for 10,000+ frames) so name order is frame order.
Why atomic: a half-written folder would be read by Champ as a shorter dance; everything is written into
a hidden temporary folder beside ``out`` and renamed into place only when complete.
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterable

import numpy as np

from encoders.atomic_io import atomic_folder, atomic_write_json
from encoders.errors import InputError
from encoders.motion.record import MotionRecord

from .guidance import DEPTH_FAR_GREY, GuidanceFrames, GuidanceRenderer
from .openpose import BODY_KEYPOINTS, NUM_HAND

CHAMP_FOLDERS: tuple[str, ...] = ("depth", "normal", "semantic_map", "mask", "dwpose")
#: zlib level of the PNGs: 1 is several times faster than the default 6 and ~15 % larger on these flat maps.
PNG_COMPRESS_LEVEL = 1


def _save_png(path: Path, image: np.ndarray) -> None:
    from PIL import Image   # pillow: the `video` extra (and a dependency of matplotlib)

    Image.fromarray(np.ascontiguousarray(image)).save(path, format="PNG", compress_level=PNG_COMPRESS_LEVEL)


def _write_chunk(tmp: Path, frames: GuidanceFrames, digits: int) -> None:
    images = {"depth": frames.depth_image(), "normal": frames.normal_image(), "semantic_map": frames.semantic_image(),
              "mask": frames.mask_image(), "dwpose": frames.pose}
    for name, stack in images.items():
        for i in range(len(frames)):
            _save_png(tmp / name / f"{frames.start + i:0{digits}d}.png", stack[i])


def write_champ_layout(source: GuidanceFrames | GuidanceRenderer | Iterable[GuidanceFrames], out_dir: str | Path, *,
                       overwrite: bool = False, chunk: int = 32) -> Path:
    """Write guidance as Champ's image folders under ``out_dir``; returns ``out_dir``.

    ``source``: rendered frames, a :class:`GuidanceRenderer` (rendered ``chunk`` frames at a time, so memory
    stays bounded), or an iterable of consecutive chunks (collected first: the frame count sets the width of
    the file names). An existing ``out_dir`` raises ``InputError``
    unless ``overwrite``; it is then replaced only after the new folder is complete.
    """
    out = Path(out_dir)
    if out.exists() and not overwrite:
        raise InputError(out, "output folder exists", expected="a new folder, or overwrite=True", got="existing")
    if isinstance(source, GuidanceRenderer):
        total, chunks, camera, meta = source.num_frames, source.chunks(chunk), source.camera, source.meta
        fps, k = source.joints.fps, int(source.keypoints.shape[1])
    elif isinstance(source, GuidanceFrames):
        total, chunks, camera, meta, fps = len(source), [source], source.camera, source.meta, source.fps
        k = int(source.keypoints.shape[1])
    else:
        chunks = list(source)
        if not chunks:
            raise InputError(None, "no frames to write", field="source", expected="at least one chunk", got="none")
        total, camera, meta, fps = sum(len(c) for c in chunks), chunks[0].camera, chunks[0].meta, chunks[0].fps
        k = int(chunks[0].keypoints.shape[1])
    if total == 0:
        raise InputError(None, "no frames to write", field="source", expected="T >= 1", got="T = 0")
    digits = max(4, len(str(total - 1)))
    with atomic_folder(out, overwrite=overwrite) as tmp:
        for name in CHAMP_FOLDERS:
            (tmp / name).mkdir()
        written = 0
        for frames in chunks:
            if frames.start != written:
                raise InputError(None, "chunks are not consecutive", field="source",
                                 expected=f"a chunk starting at frame {written}", got=f"frame {frames.start}")
            _write_chunk(tmp, frames, digits)
            written += len(frames)
        atomic_write_json(tmp / "guidance.json", {
            "frames": written, "fps": fps, "folders": list(CHAMP_FOLDERS), "file_digits": digits,
            "camera": camera.to_dict(),
            "keypoints": list(BODY_KEYPOINTS) + ([f"{s}_hand_{i}" for s in ("left", "right") for i in range(NUM_HAND)]
                                                 if k > len(BODY_KEYPOINTS) else []),
            "depth_png": f"grey = {DEPTH_FAR_GREY} + {255 - DEPTH_FAR_GREY} * (far - d) / (far - near) on the body, "
                         "0 off it; near, far = camera.depth_range",
            "normal_png": "RGB = (n + 1) / 2, camera space: x right, y up, z towards the camera",
            **{f"meta_{key}": v for key, v in meta.items()},
        })
    return out


def render_to_champ(record: MotionRecord, out_dir: str | Path, size: int | tuple[int, int] = 256, *,
                    overwrite: bool = False, chunk: int = 32, body: str = "anny", **options) -> Path:
    """Render ``record``'s guidance and write it in Champ's layout, streaming (``options``: see render_guidance).

    ``body`` defaults to the skinned anny mesh here (SDGPip renders its guidance from a skinned body, and a
    model trained on these maps should see one), where on-screen previews default to the faster capsules."""
    with GuidanceRenderer(record, size, body=body, **options) as renderer:
        return write_champ_layout(renderer, out_dir, overwrite=overwrite, chunk=chunk)
