"""``GET /v1/clips/{id}/video``: a clip rendered as an MP4 with its music, once, then served from a cache.

What is rendered: the clip's motion (the file ``/v1/clips/{id}/motion`` serves) as the capsule body and / or
the DWPose skeleton (``generation.video``: views body, pose, grid, side-by-side), ``size`` pixels per panel,
at most :data:`MAX_VIDEO_SECONDS` of it, with the clip's audio (the file ``/v1/clips/{id}/audio`` serves) cut
to the same length; a clip without audio gives a silent video. Both files are found and checked by
:func:`generation.video.clip_media.clip_files` with the API's own media checks, so a broken file is the same
503 ``media_unavailable`` as on the media routes.

The cache: ``HOME/cache/video/<clip id>-<view>-<size>-<key>.mp4``, where ``key`` hashes the *contents* of
the motion and audio files with the view, size, length limit and :data:`RENDER_VERSION`, never the catalog
version or the model: a re-index, a reload or a new model keep every video, and a clip whose files change
gets a new one. ``write_mp4`` writes the file atomically, so a file that exists is complete. Nothing removes
old files: the folder can be deleted at any time (videos are rendered again on demand).

Threads: rendering takes seconds of CPU (and EGL contexts belong to the thread that made them), so every
render runs on ONE dedicated worker thread: one EGL context for the process, and renders never take more
than that thread from the searches. Requests for a video that is being rendered or queued wait for that
same render (one future per cache key, the per-key lock), so a video is rendered once however many ask for
it. At most :data:`MAX_PENDING_RENDERS` different videos wait at a time; one more is answered 429.

Without the ``video`` extra (moderngl, imageio-ffmpeg) or without EGL, a video that is not cached yet is
answered 503 ``video_unavailable`` naming ``pip install -e ".[video]"``; cached videos are still served.
"""
from __future__ import annotations

import hashlib
import logging
import os
import threading
from collections import OrderedDict
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from enum import IntEnum
from pathlib import Path
from typing import Any, Literal

from encoders.errors import DanceSearchError

log = logging.getLogger("dancesearch.api")

#: The views of ``generation.video.compose.VIEWS`` (a test checks they agree).
VideoView = Literal["body", "pose", "grid", "side-by-side"]
VIDEO_VIEWS: tuple[str, ...] = ("body", "pose", "grid", "side-by-side")
#: Longest stretch of a clip that is rendered, from its start (seconds).
MAX_VIDEO_SECONDS = 30.0
#: Different videos that may wait for the render thread at once (more: 429 with Retry-After).
MAX_PENDING_RENDERS = 8
#: Part of every cache key: bump it when rendering changes what a video looks like.
RENDER_VERSION = "1"
INSTALL_HINT = 'pip install -e ".[video]"'
#: x264 preset of the served videos: "veryfast" encodes several times faster than "medium" at crf 20, and
#: flat guidance images stay clean (a preview in a browser, not an archive copy).
ENCODE_OPTIONS: dict[str, Any] = {"crf": 20, "preset": "veryfast", "threads": 2}


class VideoSize(IntEnum):
    """Pixels per panel (side-by-side is twice as wide, grid twice as wide and high)."""

    small = 128
    medium = 256
    large = 512


class VideoUnavailable(DanceSearchError):
    """This server cannot render videos: the video extra or EGL is missing (API: 503 ``video_unavailable``)."""

    def __init__(self, why: str) -> None:
        self.why = why
        hint = "" if INSTALL_HINT in why else f" Install the video extra: {INSTALL_HINT}."
        super().__init__(f"videos cannot be rendered on this server: {why.rstrip('.')}.{hint} (Videos already "
                         f"rendered are still served.)")


class RenderQueueFull(DanceSearchError):
    """Too many different videos are waiting to be rendered (API: 429 with Retry-After)."""


def video_available() -> tuple[bool, str]:
    """(True, renderer) when this thread can render and encode videos, else (False, why).

    Called in the render thread before each render (cheap after the first: the import and the EGL context
    are kept); the tests replace it to simulate a server without the extra."""
    from generation.video.gl import renderer_available
    from generation.video.mp4 import encoder_available

    ok, why = encoder_available()
    if not ok:
        return False, why
    return renderer_available()


@dataclass(frozen=True)
class VideoJob:
    """One requested video: where it is cached and what it is rendered from."""

    clip_id: int
    view: str
    size: int
    motion: Path
    audio: Path | None
    path: Path
    motion_file: str = ""     # the motion path as the catalog stores it (named in errors)

    @property
    def key(self) -> str:
        return self.path.name


class VideoService:
    """Finds a clip's video in the cache, or renders it once on the render thread."""

    def __init__(self, api: Any, max_pending: int = MAX_PENDING_RENDERS, seconds: float = MAX_VIDEO_SECONDS) -> None:
        self.api = api            # search_api.service.ApiService: its engine, workspace and media checks
        self.max_pending = int(max_pending)
        self.seconds = float(seconds)
        self.renders = 0          # videos this process rendered (not counting cache hits)
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="dancesearch-video")
        self._lock = threading.Lock()
        self._pending: dict[str, Future[Path]] = {}
        self._digests: OrderedDict[tuple[Any, ...], str] = OrderedDict()

    # --- which video --------------------------------------------------------------------------------
    def locate(self, clip_id: int, view: str, size: int) -> VideoJob:
        """The cache entry of a clip's video (404 unknown clip, 503 broken media file); blocking file I/O."""
        from generation.video.clip_media import clip_files

        engine = self.api.engine
        clip = engine.clip_row(clip_id)
        files = clip_files(engine.workspace.home, clip,
                           resolve=lambda kind, relative: self.api._media_file(clip, relative, kind))
        h = hashlib.sha256()
        for part in (RENDER_VERSION, view, str(size), f"{self.seconds:g}", self._digest(files.motion),
                     self._digest(files.audio) if files.audio is not None else "silent"):
            h.update(part.encode())
            h.update(b"\0")
        name = f"{int(clip.id)}-{view}-{int(size)}-{h.hexdigest()[:20]}.mp4"
        return VideoJob(int(clip.id), view, int(size), files.motion, files.audio, self.cache_dir / name,
                        clip.motion_path)

    @property
    def cache_dir(self) -> Path:
        return Path(self.api.engine.workspace.cache_dir) / "video"

    def _digest(self, path: Path) -> str:
        """sha256 of a file's contents, remembered per file version (inode, mtime, size)."""
        st = os.stat(path)
        version = (str(path), st.st_ino, st.st_mtime_ns, st.st_size)
        with self._lock:
            if version in self._digests:
                self._digests.move_to_end(version)
                return self._digests[version]
        h = hashlib.sha256()
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
        with self._lock:
            self._digests[version] = h.hexdigest()
            while len(self._digests) > 4096:
                self._digests.popitem(last=False)
        return h.hexdigest()

    # --- rendering ----------------------------------------------------------------------------------
    def submit(self, job: VideoJob) -> Future[Path]:
        """The render of ``job`` (the one already pending for its key, or a new one on the render thread)."""
        with self._lock:
            fut = self._pending.get(job.key)
            if fut is not None:
                return fut
            if len(self._pending) >= self.max_pending:
                raise RenderQueueFull(f"{len(self._pending)} videos are being rendered or waiting; try again in "
                                      "a few seconds")
            fut = self._pool.submit(self._render, job)
            self._pending[job.key] = fut
        fut.add_done_callback(lambda _f, key=job.key: self._forget(key))
        return fut

    def _forget(self, key: str) -> None:
        with self._lock:
            self._pending.pop(key, None)

    def _render(self, job: VideoJob) -> Path:
        """On the render thread: the cached file, rendering it first unless a previous render made it."""
        if job.path.is_file():
            return job.path
        ok, why = video_available()
        if not ok:
            raise VideoUnavailable(why)
        from encoders.motion.record import MotionRecord
        from generation.video.clip_media import render_mp4

        try:
            record = MotionRecord.load(job.motion)
        except Exception as exc:  # noqa: BLE001 - checked a moment ago: the file changed under us
            raise self.api.media.unavailable(job.clip_id, "motion", job.motion_file,
                                             f"it does not load ({exc})") from exc
        job.path.parent.mkdir(parents=True, exist_ok=True)
        done = render_mp4(record, job.path, view=job.view, size=job.size, audio=job.audio, seconds=self.seconds,
                          source=f"clip {job.clip_id}", **ENCODE_OPTIONS)
        with self._lock:
            self.renders += 1
        log.info("video of clip %s (%s, %d px): %d frames, %.1f s, rendered in %.1f s + %.1f s encoding -> %s",
                 job.clip_id, job.view, job.size, done.info.frames, done.info.duration_s, done.render_s,
                 done.encode_s, job.path.name)
        return job.path

    # --- video jobs (POST /v1/videos: search_api.video_jobs) ------------------------------------------
    def run(self, fn: Any) -> Future:
        """Run ``fn`` on the render thread (a video job; its queue is bounded by the job manager)."""
        return self._pool.submit(fn)

    def render_job(self, req: Any, job_dir: Path, progress: Any, cancelled: Any) -> dict[str, Any]:
        """On the render thread: one video job (``search_api.video_jobs.VideoJobRequest``) -> ``job_dir /
        video.mp4``; the job's result record."""
        ok, why = video_available()
        if not ok:
            raise VideoUnavailable(why)
        from encoders.motion.record import MotionRecord
        from generation.video.clip_media import clip_files, render_mp4

        progress(0.0, "loading the clip")
        engine = self.api.engine
        clip = engine.clip_row(req.clip_id)
        files = clip_files(engine.workspace.home, clip,
                           resolve=lambda kind, relative: self.api._media_file(clip, relative, kind))
        try:
            record = MotionRecord.load(files.motion)
        except Exception as exc:  # noqa: BLE001 - checked a moment ago: the file changed under us
            raise self.api.media.unavailable(req.clip_id, "motion", clip.motion_path,
                                             f"it does not load ({exc})") from exc
        reference = req.person if req.person is not None else req.photo
        if reference is not None:
            progress(0.0, "reading the photo")
        done = render_mp4(record, job_dir / "video.mp4", view=req.view, size=req.size, audio=files.audio,
                          seconds=req.seconds, source=f"clip {req.clip_id}", body=req.body, reference=reference,
                          on_progress=progress, **ENCODE_OPTIONS)
        with self._lock:
            self.renders += 1
        info = done.info
        notes = list(done.notes) + ([files.note] if files.note else [])
        return {"frames": info.frames, "fps": info.fps, "seconds": round(info.duration_s, 3), "width": info.width,
                "height": info.height, "bytes": info.bytes, "audio": info.has_audio,
                "render_s": round(done.render_s, 3), "encode_s": round(done.encode_s, 3), "notes": notes}

    def close(self) -> None:
        """Stop the render thread after the render in progress; queued renders are cancelled."""
        self._pool.shutdown(wait=True, cancel_futures=True)


__all__ = ["INSTALL_HINT", "MAX_PENDING_RENDERS", "MAX_VIDEO_SECONDS", "RENDER_VERSION", "RenderQueueFull",
           "VIDEO_VIEWS", "VideoJob", "VideoService", "VideoSize", "VideoUnavailable", "VideoView",
           "video_available"]
