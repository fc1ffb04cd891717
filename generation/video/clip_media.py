"""A catalog clip as a video, shared by ``dancesearch render --clip`` and ``GET /v1/clips/{id}/video``.

- :func:`clip_files`: the checked motion file and audio file (or none) of a catalog clip, the files
  ``/v1/clips/{id}/motion`` and ``/v1/clips/{id}/audio`` serve; each caller passes its own checker (the CLI
  raises one ``DanceSearchError`` naming the file, the API its ``media_unavailable`` 503);
- :func:`require_video_extra`: fails naming the install when imageio-ffmpeg or the headless renderer is
  missing here;
- :func:`render_mp4`: a dance (+ music) -> an MP4 file, rendered in chunks and piped to ffmpeg as they come
  (bounded memory, encoding overlaps rendering), written atomically by :func:`generation.video.mp4.write_mp4`.

moderngl and imageio-ffmpeg are imported by the functions that need them, not by this module.
"""
from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

from encoders.errors import DanceSearchError, InputError

#: Pixels of guidance maps rendered per chunk (about 20 bytes each): ~80 MB whatever the size.
CHUNK_PIXELS = 1 << 22

#: (kind, catalog-relative path) -> the checked absolute path of that file of the clip.
MediaResolver = Callable[[str, str], Path]


@dataclass(frozen=True)
class ClipFiles:
    """A clip's motion file, its audio file (None: the video is silent) and a note saying why it is silent."""

    motion: Path
    audio: Path | None
    note: str = ""


@dataclass(frozen=True)
class RenderedVideo:
    """What :func:`render_mp4` wrote (``info``: :class:`generation.video.mp4.Mp4Info` probed from the file)
    and where the time went: ``render_s`` rendering and composing frames, ``encode_s`` waiting for ffmpeg."""

    info: Any
    render_s: float
    encode_s: float
    timing: dict[str, float] = field(default_factory=dict)


def checked_media(home: Path, clip: Any, kind: str, relative: str) -> Path:
    """The checked absolute path of a clip's ``kind`` file (the containment and the checks of
    ``dancesearch check``); one ``DanceSearchError`` naming the file otherwise."""
    from indexer.media_check import CHECKS, contained

    path = contained(home, relative)
    if path is None:
        raise DanceSearchError(f"clip {clip.id}: its {kind} path {relative} lies outside the workspace")
    problem = CHECKS[kind](path)
    if problem:
        raise DanceSearchError(f"clip {clip.id}: its {kind} file {relative} cannot be used: {problem} "
                               f"(list broken files with `dancesearch check`)")
    return path


def clip_files(home: Path, clip: Any, *, resolve: MediaResolver | None = None, music: bool = True) -> ClipFiles:
    """The motion and audio files of catalog ``clip`` (a ``ClipRow``); ``music=False`` leaves the audio out.

    ``resolve(kind, relative)`` checks one file and returns its path (default :func:`checked_media`).
    A clip without audio gives ``audio=None`` and a ``note`` saying the video is silent.
    """
    check = resolve or (lambda kind, relative: checked_media(home, clip, kind, relative))
    motion = check("motion", clip.motion_path)
    if not music:
        return ClipFiles(motion, None)
    if not clip.audio_path:
        return ClipFiles(motion, None, f"clip {clip.id} ({clip.key}) has no audio: the video is silent")
    return ClipFiles(motion, check("audio", clip.audio_path))


def require_video_extra() -> None:
    """Raise ``EncoderUnavailable`` / ``RendererUnavailable`` (naming the install) unless imageio-ffmpeg's
    ffmpeg and a headless GL context are available in this thread."""
    from .gl import RendererUnavailable, renderer_available
    from .mp4 import ffmpeg_exe

    ffmpeg_exe()
    ok, why = renderer_available()
    if not ok:
        raise RendererUnavailable(why)


def first_seconds(record: Any, seconds: float | None) -> Any:
    """The first ``seconds`` of ``record`` (at least one frame); the whole record for None."""
    if seconds is None:
        return record
    return record.slice(0, min(record.num_frames, max(1, int(round(seconds * record.fps)))))


def render_mp4(record: Any, out: str | Path, *, view: str = "body", size: int = 256, audio: str | Path | None = None,
               seconds: float | None = None, progress: bool = False, source: Any = None,
               **mp4_options: Any) -> RenderedVideo:
    """Render ``record`` (a ``MotionRecord``; its first ``seconds`` when given) in ``view`` at ``size`` pixels
    per panel and write it with ``audio`` (cut to the video's length) as the MP4 ``out``, atomically.

    ``mp4_options`` go to :func:`generation.video.mp4.write_mp4` (``crf``, ``preset``, ``threads``). The
    renderer is built and used in the calling thread (its EGL context is that thread's). Raises
    ``InputError`` for a dance without frames (naming ``source``) or an unreadable audio file, before any
    rendering.
    """
    from .compose import view_shape
    from .guidance import GuidanceRenderer
    from .mp4 import audio_duration, probe_mp4, write_mp4

    if audio is not None:
        audio_duration(audio)                  # an unreadable audio file fails before any rendering
    record = first_seconds(record, seconds)
    if record.num_frames < 1:
        raise InputError(source, "the dance has no frames")
    timing = {"render": 0.0}                  # seconds spent rendering and composing chunks (in render_frames)
    t0 = time.perf_counter()
    renderer = GuidanceRenderer(record, size)
    setup_s = time.perf_counter() - t0
    try:
        h, w = view_shape(view, renderer.height, renderer.width)
        chunk = max(1, min(32, CHUNK_PIXELS // (h * w)))
        frames = render_frames(renderer, view, chunk, timing, progress)
        t0 = time.perf_counter()
        write_mp4(frames, record.fps, out, audio, num_frames=renderer.num_frames, **mp4_options)
        write_s = time.perf_counter() - t0
    finally:
        renderer.close()
    # rendering happens inside write_mp4's loop (frames are pulled as ffmpeg takes them): what is not
    # rendering there is waiting for ffmpeg (pipe writes, muxing, finishing the file)
    return RenderedVideo(probe_mp4(out), setup_s + timing["render"], max(write_s - timing["render"], 0.0), timing)


def render_frames(renderer: Any, view: str, chunk: int, timing: dict[str, float] | None = None,
                  progress: bool = False) -> Iterator[Any]:
    """The composed video frames of ``renderer``'s dance, rendered ``chunk`` at a time; time spent here
    accumulates in ``timing["render"]``; ``progress`` shows a bar on stderr."""
    from tqdm import tqdm

    from .compose import compose

    timing = {"render": 0.0} if timing is None else timing
    bar = tqdm(total=renderer.num_frames, unit="frame", desc="render", file=sys.stderr, disable=not progress,
               leave=False)
    try:
        for start in range(0, renderer.num_frames, chunk):
            t0 = time.perf_counter()
            images = compose(renderer.render(start, start + chunk), view)
            timing["render"] = timing.get("render", 0.0) + time.perf_counter() - t0
            yield from images
            bar.update(len(images))
    finally:
        bar.close()


__all__ = ["CHUNK_PIXELS", "ClipFiles", "MediaResolver", "RenderedVideo", "checked_media", "clip_files",
           "first_seconds", "render_mp4", "render_frames", "require_video_extra"]
