"""The "Watch as video" control of a result card: the clip rendered by the API as an MP4 with its music.

The video comes from ``GET /v1/clips/{id}/video`` (side-by-side view: the shaded capsule body next to the
DWPose skeleton, 256 px per panel). Like the player's audio (``ui.app.cached_player``) it reaches the
browser in one of two ways: with a public API URL (``--public-api-url``) the browser streams it from the
API (Range requests, so it can seek), after the UI has had it rendered with a one-byte request; without one
the UI fetches the bytes and Streamlit serves them, so the page works wherever the UI does.

A server without the video extra answers 503 ``video_unavailable``: the card shows :func:`video_problem`'s
friendly text naming the install, never a traceback.
"""
from __future__ import annotations

import time
from typing import Callable

from ui.api_client import ApiClient, ApiError, ApiRequestError, ApiServerError, ApiUnreachable, video_path

VIDEO_VIEW = "side-by-side"
VIDEO_SIZE = 256
VIDEO_LABEL = "Watch as video"
VIDEO_HELP = ("Render this clip as a video with its music on the server (a few seconds the first time, "
              "then instant).")
VIDEO_CAPTION = ("A rendered body preview, not a real dancer: the clip's motion drawn as a shaded capsule body "
                 "(left) and its pose skeleton (right), with the clip's music.")
INSTALL_HINT = 'pip install -e ".[video]"'
DANCER_VIEW = "dancer-side-by-side"
DANCER_SECONDS = 10.0
PHOTO_LABEL = "Your dancer (photo)"
PHOTO_HELP = ("A photo of one person, whole body, facing the camera (jpg, png, webp). With it, \"Watch as video\" "
              "shows that person performing the clip, next to the pose skeleton. The person is textured onto a 3D "
              "body on the server's CPU: a preview, not a photoreal video.")
DANCER_CAPTION = ("A preview made on the server's CPU, not a photoreal video: the person of your photo textured onto "
                  "a 3D body performing the clip (left; unseen sides are filled in) and the pose skeleton (right), "
                  "with the clip's music, first {seconds:g} s.")


def video_source(client: ApiClient, clip_id: int, public_api_url: str | None, view: str = VIDEO_VIEW,
                 size: int = VIDEO_SIZE) -> str | bytes:
    """What ``st.video`` gets: the video's public URL when the browser reaches the API (the video is rendered
    first, so the browser never waits on a render), else the MP4 bytes fetched through ``client``."""
    if public_api_url:
        client.prepare_video(clip_id, view, size)
        return f"{public_api_url.rstrip('/')}{video_path(clip_id, view, size)}"
    return client.video(clip_id, view, size).content


def dancer_video_source(client: ApiClient, clip_id: int, photo: bytes, photo_name: str, public_api_url: str | None,
                        on_progress: Callable[[float, str], None] | None = None, size: int = VIDEO_SIZE,
                        seconds: float = DANCER_SECONDS, timeout_s: float | None = None,
                        poll_s: float = 0.5) -> str | bytes:
    """The person of ``photo`` performing clip ``clip_id``: a ``POST /v1/videos`` job, polled to its end
    (``on_progress(fraction, stage)`` each poll), then the video's URL (browser reaches the API) or bytes.
    A failed job raises :class:`ApiServerError` with the job's error code and message."""
    job = client.create_video(clip_id, view=DANCER_VIEW, size=size, seconds=seconds, photo=photo,
                              photo_name=photo_name)
    deadline = time.monotonic() + (timeout_s if timeout_s is not None else client.settings.video_timeout_s)
    while job["state"] in ("queued", "running"):
        if on_progress is not None:
            on_progress(float(job.get("progress") or 0.0), str(job.get("stage") or job["state"]))
        if time.monotonic() > deadline:
            raise ApiServerError(f"the video was not ready in time (job {job['id']} is {job['state']})",
                                 code="video_timeout")
        time.sleep(poll_s)
        job = client.video_job(job["id"])
    if job["state"] != "done":
        err = job.get("error") or {}
        raise ApiServerError(err.get("message") or f"the video job ended {job['state']}",
                             code=err.get("code") or job["state"])
    path = f"/v1/videos/{job['id']}/file"
    if public_api_url:
        return f"{public_api_url.rstrip('/')}{path}"
    return client.video_job_file(job["id"]).content


def video_problem(exc: ApiError) -> tuple[str, str]:
    """(level, Markdown text) to show instead of the video: ``"info"`` when the server cannot render videos
    (503 ``video_unavailable``: the text names the install), ``"warning"`` for any other failure."""
    if isinstance(exc, ApiServerError) and exc.code == "video_unavailable":
        return "info", ("**Videos are not available on this server**: it cannot render them. Its operator can "
                        f"enable them with `{INSTALL_HINT}` (and EGL: on Debian / Ubuntu `libegl1` and "
                        "`libgl1-mesa-dri`). The skeleton player above works without it.")
    if isinstance(exc, ApiRequestError) and getattr(exc, "code", None) == "invalid_photo":
        return "warning", (f"**This photo cannot be used**: {exc.message}. Try a photo of one person, whole body in "
                           "view, at least 128 pixels on its short side.")
    if isinstance(exc, ApiRequestError) and exc.status == 429:
        return "warning", "**The server is busy rendering other videos**: try again in a few seconds."
    if isinstance(exc, ApiUnreachable):
        return "warning", f"**Could not load the video**: the search API is unreachable ({exc.reason})."
    return "warning", f"**Could not load the video**: {exc}"


def show_video(container: object, load: Callable[[], str | bytes], caption: str = VIDEO_CAPTION) -> bool:
    """Fill ``container`` (a Streamlit container) with the video ``load`` returns and the caption saying it is
    a rendered preview, or with :func:`video_problem`'s message; True when a video is shown."""
    try:
        source = load()
    except ApiError as exc:
        level, text = video_problem(exc)
        getattr(container, level)(text, icon="🎬" if level == "info" else "⚠️")
        return False
    container.video(source, format="video/mp4")
    container.caption(caption)
    return True


__all__ = ["DANCER_CAPTION", "DANCER_SECONDS", "DANCER_VIEW", "PHOTO_HELP", "PHOTO_LABEL", "dancer_video_source",
           "INSTALL_HINT", "VIDEO_CAPTION", "VIDEO_HELP", "VIDEO_LABEL", "VIDEO_SIZE", "VIDEO_VIEW", "show_video",
           "video_problem", "video_source"]
