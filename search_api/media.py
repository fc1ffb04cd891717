"""Clip media for the API: path containment, validity checks before serving, audio types, and the
motion record as npz / JSON / BVH.

The BVH text comes from :mod:`encoders.motion.bvh_write` (its docstring describes the two layouts);
the player JSON uses the same parent list (:func:`encoders.motion.bvh_write.parents_for`).

Stored files are checked with :mod:`indexer.media_check` (the checks `dancesearch check` runs) before
they are streamed or parsed, so a truncated, empty or foreign file gives ONE JSON error naming the
clip and the file (503 ``media_unavailable``) and one log line, instead of a 200 with garbage, a
plain-text 500 or a 422 blaming the client.  Verdicts are cached per file version (inode, mtime,
size), so a healthy file is read once per version, not per request.
"""
from __future__ import annotations

import json
import logging
import os
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Any

import numpy as np

from encoders.errors import DanceSearchError
from encoders.motion.bvh_write import parents_for
from encoders.motion.record import MotionRecord
from indexer.media_check import CHECKS

log = logging.getLogger("dancesearch.api")

AUDIO_TYPES = {".ogg": "audio/ogg", ".wav": "audio/wav", ".mp3": "audio/mpeg", ".flac": "audio/flac",
               ".m4a": "audio/mp4", ".opus": "audio/ogg"}
MOTION_FORMATS = ("npz", "json", "bvh")


class MediaError(DanceSearchError):
    """A clip has no such media, or its path would lie outside the workspace (API: 404)."""


class MediaUnavailable(DanceSearchError):
    """A clip's stored media file is missing or broken: the server's fault, not the client's (API: 503)."""

    def __init__(self, clip_id: int, kind: str, file: str, problem: str) -> None:
        self.clip_id, self.kind, self.file, self.problem = int(clip_id), kind, file, problem
        super().__init__(f"clip {clip_id}: its {kind} file {file} cannot be served: {problem} "
                         f"(the operator can list broken files with `dancesearch check`)")


def contained_path(home: Path, relative: str | None, what: str) -> Path:
    """Absolute path of a catalog media path, refusing anything that resolves outside ``home``."""
    if not relative:
        raise MediaError(f"this clip has no {what}")
    root = Path(home).resolve()
    path = (root / relative).resolve()
    if not path.is_relative_to(root):
        raise MediaError(f"the {what} path of this clip lies outside the workspace")
    return path


class MediaChecker:
    """Checks a media file before it is served; caches the verdict per file version and logs each
    broken file version once (one line, no traceback)."""

    def __init__(self, max_entries: int = 4096) -> None:
        self.max_entries = max_entries
        self._verdicts: OrderedDict[tuple[Any, ...], str | None] = OrderedDict()
        self._lock = threading.Lock()

    def unavailable(self, clip_id: int, kind: str, file: str, problem: str) -> MediaUnavailable:
        """The error for a broken file, logged the first time this (clip, file, problem) is seen."""
        key = ("logged", int(clip_id), kind, file, problem)
        with self._lock:
            first = key not in self._verdicts
            self._remember(key, problem)
        if first:
            log.warning("media unavailable: clip %s %s file %s: %s", clip_id, kind, file, problem)
        return MediaUnavailable(clip_id, kind, file, problem)

    def _remember(self, key: tuple[Any, ...], verdict: str | None) -> None:
        self._verdicts[key] = verdict
        self._verdicts.move_to_end(key)
        while len(self._verdicts) > self.max_entries:
            self._verdicts.popitem(last=False)

    def problem(self, kind: str, path: Path) -> str | None:
        """The cached or fresh verdict of :data:`indexer.media_check.CHECKS` for ``path``."""
        try:
            st = os.stat(path)
            version: tuple[Any, ...] = (str(path), st.st_ino, st.st_mtime_ns, st.st_size)
        except OSError:
            version = (str(path), None)
        with self._lock:
            if version in self._verdicts:
                self._verdicts.move_to_end(version)
                return self._verdicts[version]
        verdict = CHECKS[kind](path)
        if version[1] is not None:  # a missing file is looked at again next time
            with self._lock:
                self._remember(version, verdict)
        return verdict

    def require(self, clip_id: int, kind: str, path: Path, file: str) -> None:
        """Raise :class:`MediaUnavailable` unless ``path`` passes its check."""
        problem = self.problem(kind, path)
        if problem:
            raise self.unavailable(clip_id, kind, file, problem)


def audio_media_type(path: Path) -> str:
    return AUDIO_TYPES.get(path.suffix.lower(), "application/octet-stream")


def motion_json(record: MotionRecord, decimals: int = 4) -> dict[str, Any]:
    """The player format of ARCHITECTURE.md: fps, joint names, parents, positions (T x J x 3, metres)."""
    return {"fps": float(record.fps), "joint_names": list(record.joint_names),
            "parents": parents_for(list(record.joint_names)),
            "positions": np.round(record.positions.astype(np.float64), decimals).tolist()}


def motion_json_bytes(record: MotionRecord) -> bytes:
    return json.dumps(motion_json(record), separators=(",", ":")).encode()
