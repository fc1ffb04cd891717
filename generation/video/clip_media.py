"""A catalog clip as a video, shared by ``dancesearch render --clip`` and ``GET /v1/clips/{id}/video``.

- :func:`clip_files`: the checked motion file and audio file (or none) of a catalog clip, the files
  ``/v1/clips/{id}/motion`` and ``/v1/clips/{id}/audio`` serve; each caller passes its own checker (the CLI
  raises one ``DanceSearchError`` naming the file, the API its ``media_unavailable`` 503);
- :func:`require_video_extra`: fails naming the install when imageio-ffmpeg or the headless renderer is
  missing here;
- :func:`render_mp4`: a dance (+ music) -> an MP4 file, rendered in chunks and piped to ffmpeg as they come
  (bounded memory, encoding overlaps rendering), written atomically by :func:`generation.video.mp4.write_mp4`.
  Views: the guidance views of :mod:`.compose` (body, pose, grid, side-by-side) and, with a reference photo,
  :data:`DANCER_VIEWS`: the person of the photo dancing (``dancer``), or that next to the skeleton
  (``dancer-side-by-side``), made by a back-end: ``preview`` (CPU, :mod:`.appearance`) or ``diffusion``
  (:mod:`.diffusion_backend`, weights from a local folder).

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
#: Views showing the person of a reference photo (need ``reference``).
DANCER_VIEWS: tuple[str, ...] = ("dancer", "dancer-side-by-side")
#: Back-ends that make the dancer from a reference photo.
BACKENDS: tuple[str, ...] = ("preview", "diffusion")
#: (fraction done in [0, 1], stage) -> None; may raise to stop the render (a cancelled job).
ProgressFn = Callable[[float, str], None]


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
    notes: list[str] = field(default_factory=list)     # what the back-end says (e.g. several people in the photo)


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


def all_views() -> tuple[str, ...]:
    """Every view :func:`render_mp4` knows: the guidance views, then the dancer views."""
    from .compose import VIEWS

    return tuple(VIEWS) + DANCER_VIEWS


def render_mp4(record: Any, out: str | Path, *, view: str = "body", size: int = 256, audio: str | Path | None = None,
               seconds: float | None = None, progress: bool = False, source: Any = None, body: str = "capsule",
               body_model: str | Path | None = None, reference: Any = None, backend: str = "preview",
               weights: str | Path | None = None, on_progress: ProgressFn | None = None,
               **mp4_options: Any) -> RenderedVideo:
    """Render ``record`` (a ``MotionRecord``; its first ``seconds`` when given) in ``view`` at ``size`` pixels
    per panel and write it with ``audio`` (cut to the video's length) as the MP4 ``out``, atomically.

    ``body``: the body of the guidance maps (``capsule``, ``anny``, ``smplx`` with the user's model file
    ``body_model``: see :class:`generation.video.guidance.GuidanceRenderer`). Dancer views need
    ``reference``: a photo path or a ``generation.video.appearance.ReferencePerson``; ``backend`` ``preview`` (CPU) or ``diffusion`` (the
    network in the local folder ``weights``). ``on_progress(fraction, stage)`` is called after each chunk of
    frames; an exception it raises stops the render (nothing is written). ``mp4_options`` go to
    :func:`generation.video.mp4.write_mp4` (``crf``, ``preset``, ``threads``). The renderer is built and used
    in the calling thread (its EGL context is that thread's). Raises ``InputError`` for a dance without frames
    (naming ``source``), an unreadable audio file, a bad photo or a dancer view without one, before any
    rendering.
    """
    from .compose import view_name, view_shape
    from .mp4 import audio_duration, probe_mp4, write_mp4

    view = _check_view(view)
    dancer = view in DANCER_VIEWS
    if dancer and reference is None:
        raise InputError(None, f"the {view} view needs a reference photo of the dancer", field="reference",
                         expected="a photo (--reference photo.jpg)", got="none")
    if backend not in BACKENDS:
        raise InputError(None, "unknown back-end", field="backend", expected=" | ".join(BACKENDS), got=repr(backend))
    if audio is not None:
        audio_duration(audio)                  # an unreadable audio file fails before any rendering
    record = first_seconds(record, seconds)
    if record.num_frames < 1:
        raise InputError(source, "the dance has no frames")
    timing = {"render": 0.0}                  # seconds spent rendering and composing chunks (in render_frames)
    t0 = time.perf_counter()
    person = None
    if dancer:
        person = _reference_person(reference)
        timing["reference"] = time.perf_counter() - t0
    renderer = _renderer(record, size, body, body_model, person)
    setup_s = time.perf_counter() - t0
    try:
        if dancer:
            h, w = renderer.height, renderer.width * (2 if view == "dancer-side-by-side" else 1)
            frames = _dancer_frames(renderer, person, view, backend, weights, timing, progress, on_progress)
        else:
            h, w = view_shape(view_name(view), renderer.height, renderer.width)
            chunk = max(1, min(32, CHUNK_PIXELS // (h * w)))
            frames = render_frames(renderer, view, chunk, timing, progress, on_progress)
        t0 = time.perf_counter()
        write_mp4(frames, record.fps, out, audio, num_frames=renderer.num_frames, **mp4_options)
        write_s = time.perf_counter() - t0
    finally:
        renderer.close()
    # rendering happens inside write_mp4's loop (frames are pulled as ffmpeg takes them): what is not
    # rendering there is waiting for ffmpeg (pipe writes, muxing, finishing the file)
    notes = list(getattr(person, "notes", []) or [])
    return RenderedVideo(probe_mp4(out), setup_s + timing["render"], max(write_s - timing["render"], 0.0), timing,
                         notes)


def _check_view(view: str) -> str:
    name = str(view).strip().lower().replace("_", "-")
    if name in DANCER_VIEWS:
        return name
    from .compose import VIEWS, view_name

    if name not in VIEWS:
        raise InputError(None, "unknown view", field="view", expected=" | ".join(all_views()), got=repr(view))
    return view_name(name)


def _reference_person(reference: Any) -> Any:
    """A ``ReferencePerson`` from a photo path / array (detected and fitted here) or as given."""
    from .appearance import ReferencePerson, load_reference

    return reference if isinstance(reference, ReferencePerson) else load_reference(reference)


def _renderer(record: Any, size: int, body: str, body_model: str | Path | None, person: Any) -> Any:
    """The guidance renderer of the dance: the plain fitted camera, or the photo's (the dance on the person's
    proportions, framed like the photo) for dancer views."""
    from .guidance import GuidanceRenderer

    kwargs: dict[str, Any] = {} if body == "capsule" else {"body": body}
    if body_model is not None:
        kwargs["body_model"] = body_model
    if person is None:
        return GuidanceRenderer(record, size, **kwargs)
    from .appearance import preview_renderer

    return preview_renderer(record, person, size, **kwargs)


def _dancer_frames(renderer: Any, person: Any, view: str, backend: str, weights: str | Path | None,
                   timing: dict[str, float], progress: bool, on_progress: ProgressFn | None) -> Iterator[Any]:
    """The dancer's frames (next to the skeleton map for ``dancer-side-by-side``), chunk by chunk."""
    import numpy as np
    from tqdm import tqdm

    from .compose import side_by_side
    from .draw import draw_pose_map

    if backend == "preview":
        from .appearance import PreviewAnimator

        t0 = time.perf_counter()
        animator = PreviewAnimator(person, renderer)
        timing["render"] = timing.get("render", 0.0) + time.perf_counter() - t0
        make = animator.render
    else:
        make = _diffusion_frames(renderer, person, weights, timing, on_progress)
    n = renderer.num_frames
    chunk = max(1, min(16, CHUNK_PIXELS // (renderer.height * renderer.width * 4)))
    bar = tqdm(total=n, unit="frame", desc=f"render ({backend})", file=sys.stderr, disable=not progress, leave=False)
    try:
        for start in range(0, n, chunk):
            t0 = time.perf_counter()
            images = make(start, min(n, start + chunk))
            if view == "dancer-side-by-side":
                poses = np.stack([draw_pose_map(renderer.keypoints[t], renderer.keypoint_valid[t], renderer.height,
                                                renderer.width) for t in range(start, start + len(images))])
                images = side_by_side(images, poses)
            timing["render"] = timing.get("render", 0.0) + time.perf_counter() - t0
            yield from images
            bar.update(len(images))
            if on_progress is not None:
                on_progress((start + len(images)) / n, f"rendering frame {start + len(images)}/{n}")
    finally:
        bar.close()


def _diffusion_frames(renderer: Any, person: Any, weights: str | Path | None, timing: dict[str, float],
                      on_progress: ProgressFn | None) -> Callable[[int, int], Any]:
    """``(start, stop) -> frames`` of the diffusion back-end: the whole dance is made at once (its segments
    are blended over their overlaps), then served chunk by chunk."""
    if weights is None:
        raise InputError(None, "the diffusion back-end needs its weights", field="weights",
                         expected="a local folder with the network (--weights DIR)", got="none")
    from .diffusion_backend import PoseGuidedVideoPipeline

    from .appearance.background import cover_image

    t0 = time.perf_counter()
    pipe = PoseGuidedVideoPipeline.from_pretrained(weights)
    guidance = renderer.render().as_tensors()
    # the reference as the guidance frames it (the photo's crop at the output size), 5-s denoising windows
    reference = cover_image(person.image, renderer.height, renderer.width)
    frames = pipe(reference, guidance, fps=renderer.joints.fps)
    timing["render"] = timing.get("render", 0.0) + time.perf_counter() - t0
    if on_progress is not None:
        on_progress(0.0, "denoised; encoding")
    return lambda start, stop: frames[start:stop]


def render_frames(renderer: Any, view: str, chunk: int, timing: dict[str, float] | None = None,
                  progress: bool = False, on_progress: ProgressFn | None = None) -> Iterator[Any]:
    """The composed video frames of ``renderer``'s dance, rendered ``chunk`` at a time; time spent here
    accumulates in ``timing["render"]``; ``progress`` shows a bar on stderr; ``on_progress(fraction, stage)``
    is called after each chunk."""
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
            if on_progress is not None:
                done = start + len(images)
                on_progress(done / renderer.num_frames, f"rendering frame {done}/{renderer.num_frames}")
    finally:
        bar.close()


__all__ = ["BACKENDS", "CHUNK_PIXELS", "DANCER_VIEWS", "all_views", "ClipFiles", "MediaResolver", "RenderedVideo", "checked_media", "clip_files",
           "first_seconds", "render_mp4", "render_frames", "require_video_extra"]
