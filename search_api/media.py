"""Clip media for the API: path containment, audio types, and the motion record as npz / JSON / BVH.

The BVH text comes from :mod:`encoders.motion.bvh_write` (its docstring describes the two layouts);
the player JSON uses the same parent list (:func:`encoders.motion.bvh_write.parents_for`).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from encoders.errors import DanceSearchError
from encoders.motion.bvh_write import parents_for
from encoders.motion.record import MotionRecord

AUDIO_TYPES = {".ogg": "audio/ogg", ".wav": "audio/wav", ".mp3": "audio/mpeg", ".flac": "audio/flac",
               ".m4a": "audio/mp4", ".opus": "audio/ogg"}
MOTION_FORMATS = ("npz", "json", "bvh")


class MediaError(DanceSearchError):
    """A clip's media file is missing or would lie outside the workspace (API: 404)."""


def contained_path(home: Path, relative: str | None, what: str) -> Path:
    """Absolute path of a catalog media path, refusing anything that resolves outside ``home``."""
    if not relative:
        raise MediaError(f"this clip has no {what}")
    root = Path(home).resolve()
    path = (root / relative).resolve()
    if not path.is_relative_to(root):
        raise MediaError(f"the {what} path of this clip lies outside the workspace")
    if not path.is_file():
        raise MediaError(f"the {what} file of this clip is missing from the workspace")
    return path


def audio_media_type(path: Path) -> str:
    return AUDIO_TYPES.get(path.suffix.lower(), "application/octet-stream")


def motion_json(record: MotionRecord, decimals: int = 4) -> dict[str, Any]:
    """The player format of ARCHITECTURE.md: fps, joint names, parents, positions (T x J x 3, metres)."""
    return {"fps": float(record.fps), "joint_names": list(record.joint_names),
            "parents": parents_for(list(record.joint_names)),
            "positions": np.round(record.positions.astype(np.float64), decimals).tolist()}


def motion_json_bytes(record: MotionRecord) -> bytes:
    return json.dumps(motion_json(record), separators=(",", ":")).encode()
