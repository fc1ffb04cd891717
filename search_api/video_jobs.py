"""Video jobs (``POST /v1/videos``): a clip rendered as an MP4, optionally as the dancer of a reference photo.

Why jobs and not the plain ``GET /v1/clips/{id}/video``: a video of the person in an uploaded photo is
rendered once for that photo (nothing to cache across users), takes longer (detection, the preview back-end,
up to :data:`MAX_JOB_SECONDS` of dance) and needs an upload; like ``POST /v1/generate`` it answers 202 with a
job to poll, shows progress, can be cancelled, and keeps the finished file until it is deleted or expires.

Where things live: ``HOME/cache/video/jobs/<id>/`` holds ``job.json`` (the record, written atomically),
``photo.<ext>`` (the upload, deleted when the job ends) and ``video.mp4`` (the result). Jobs run on the
:class:`search_api.video.VideoService` render thread (one EGL context per process; renders never take more
than that thread from the searches); at most ``queue_limit`` wait (one more: 429). On start, a job that was
``queued`` or ``running`` when the previous process stopped is marked ``failed`` / ``interrupted`` (its
upload is gone with it), and finished jobs older than ``keep_s`` are deleted with their files.
"""
from __future__ import annotations

import json
import logging
import shutil
import threading
import time
import uuid
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from encoders.atomic_io import atomic_write_text
from encoders.errors import DanceSearchError, InputError

log = logging.getLogger("dancesearch.api")

JOBS_DIR = "jobs"
FINAL_STATES = ("done", "failed", "cancelled")
#: Longest stretch of a clip a video job renders (seconds, from the start or ``start_s``).
MAX_JOB_SECONDS = 30.0
#: Finished jobs (and their videos) are kept this long, then deleted on the next start or sweep.
KEEP_SECONDS = 24 * 3600.0
#: Views a job can render: the guidance views of ``GET /v1/clips/{id}/video`` and the dancer of a photo.
JOB_VIEWS: tuple[str, ...] = ("body", "pose", "grid", "side-by-side", "dancer", "dancer-side-by-side")
PHOTO_VIEWS: tuple[str, ...] = ("dancer", "dancer-side-by-side")


class VideoJobCancelled(Exception):
    """Raised inside a render when its job was cancelled or the server is stopping."""


class VideoQueueFull(DanceSearchError):
    def __init__(self, waiting: int, limit: int) -> None:
        super().__init__(f"the video queue is full ({waiting} jobs waiting, limit {limit}); retry in a few seconds")


class VideoJobNotFound(DanceSearchError):
    pass


class VideoJobConflict(DanceSearchError):
    pass


@dataclass(frozen=True)
class VideoJobRequest:
    """What a job renders (checked by the route before it is queued)."""

    clip_id: int
    view: str
    size: int
    seconds: float
    body: str = "capsule"
    photo: Path | None = None          # the uploaded reference photo (dancer views)
    photo_name: str | None = None      # its name as uploaded (in the job's params)
    person: Any = None                 # the photo already read (``ReferencePerson``): not read twice; not stored


#: ``render(request, job_dir, progress(fraction, stage), cancelled()) -> result dict`` (runs on the render thread).
Renderer = Callable[[VideoJobRequest, Path, Callable[[float, str], None], Callable[[], bool]], dict[str, Any]]


class VideoJobManager:
    """Job records on disk + the render thread of a :class:`search_api.video.VideoService`."""

    def __init__(self, root: Path, submit: Callable[[Callable[[], Any]], Future], render: Renderer,
                 queue_limit: int = 8, keep_s: float = KEEP_SECONDS, progress_interval_s: float = 0.25) -> None:
        self.root = Path(root)
        self._submit = submit
        self._render = render
        self.queue_limit = max(0, int(queue_limit))
        self.keep_s = float(keep_s)
        self.progress_interval_s = progress_interval_s
        self._lock = threading.Lock()
        self._jobs: dict[str, dict[str, Any]] = {}
        self._cancel: set[str] = set()
        self._stopping = threading.Event()

    # --- records ---------------------------------------------------------------------------------------
    def job_dir(self, job_id: str) -> Path:
        return self.root / job_id

    def _save(self, job: dict[str, Any]) -> None:
        d = self.job_dir(job["id"])
        d.mkdir(parents=True, exist_ok=True)
        atomic_write_text(d / "job.json", json.dumps(job, sort_keys=True))

    def _update(self, job_id: str, **changes: Any) -> dict[str, Any]:
        with self._lock:
            job = self._jobs[job_id]
            job.update(changes)
            snapshot = json.loads(json.dumps(job))
        self._save(snapshot)
        return snapshot

    def start(self) -> dict[str, int]:
        """Load the records of previous processes: unfinished ones -> failed (interrupted); old ones deleted."""
        self._stopping.clear()
        interrupted = expired = 0
        now = time.time()
        if not self.root.is_dir():
            return {"interrupted": 0, "expired": 0}
        for d in sorted(p for p in self.root.iterdir() if p.is_dir()):
            try:
                job = json.loads((d / "job.json").read_text())
                if job.get("id") != d.name:
                    raise ValueError("id does not match its folder")
            except (OSError, ValueError):
                shutil.rmtree(d, ignore_errors=True)     # a folder without a readable record: a half-made job
                continue
            if job["state"] not in FINAL_STATES:
                job.update(state="failed", stage="interrupted", finished_at=now,
                           error={"code": "interrupted", "message": "the server stopped while this video was being "
                                                                    "made; submit it again"})
                self._save(job)
                interrupted += 1
            if now - float(job.get("finished_at") or now) > self.keep_s:
                shutil.rmtree(d, ignore_errors=True)
                expired += 1
                continue
            for p in d.glob("photo.*"):
                p.unlink(missing_ok=True)
            with self._lock:
                self._jobs[job["id"]] = job
        if interrupted or expired:
            log.warning("video jobs after restart: %d interrupted (marked failed), %d expired and deleted",
                        interrupted, expired)
        return {"interrupted": interrupted, "expired": expired}

    def stop(self) -> None:
        """Running jobs stop at their next frame chunk (failed / interrupted); queued ones are cancelled by the
        render thread's shutdown and marked interrupted on the next start."""
        self._stopping.set()

    # --- requests --------------------------------------------------------------------------------------
    def submit(self, req: VideoJobRequest) -> dict[str, Any]:
        """Record the job (moving the photo into its folder) and queue it; VideoQueueFull when too many wait."""
        with self._lock:
            waiting = sum(1 for j in self._jobs.values() if j["state"] in ("queued", "running"))
            if waiting >= self.queue_limit + 1:
                raise VideoQueueFull(waiting, self.queue_limit)
            job_id = uuid.uuid4().hex
        d = self.job_dir(job_id)
        d.mkdir(parents=True, exist_ok=True)
        photo = None
        if req.photo is not None:
            photo = d / f"photo{req.photo.suffix.lower() or '.img'}"
            shutil.move(str(req.photo), photo)
        params = {"clip_id": req.clip_id, "view": req.view, "size": req.size, "seconds": req.seconds,
                  "body": req.body, "photo": req.photo_name}
        job = {"id": job_id, "state": "queued", "stage": "queued", "progress": 0.0, "cancel_requested": False,
               "created_at": time.time(), "started_at": None, "finished_at": None, "params": params,
               "result": None, "error": None}
        with self._lock:
            self._jobs[job_id] = job
        self._save(job)
        run_req = VideoJobRequest(req.clip_id, req.view, req.size, req.seconds, req.body, photo, req.photo_name,
                                  req.person)
        try:
            self._submit(lambda: self._run(job_id, run_req))
        except RuntimeError as exc:     # the render thread was shut down (server stopping)
            self._finish(job_id, "failed", "interrupted", error={"code": "interrupted", "message": str(exc)})
        return self.job(job_id)

    def job(self, job_id: str) -> dict[str, Any]:
        with self._lock:
            job = self._jobs.get(job_id)
            if job is None:
                raise VideoJobNotFound(f"no video job with id {job_id}")
            return json.loads(json.dumps(job))

    def video_file(self, job_id: str) -> Path:
        """The finished job's MP4; VideoJobConflict while it is not done."""
        job = self.job(job_id)
        if job["state"] != "done":
            raise VideoJobConflict(f"video job {job_id} is {job['state']}: its video is not available"
                                   + (" yet" if job["state"] in ("queued", "running") else ""))
        path = self.job_dir(job_id) / "video.mp4"
        if not path.is_file():
            raise VideoJobNotFound(f"the video of job {job_id} was deleted")
        return path

    def cancel(self, job_id: str) -> dict[str, Any]:
        """Queued: cancelled at once; running: at its next chunk of frames; finished: VideoJobConflict
        (a cancelled job is returned as it is)."""
        job = self.job(job_id)
        if job["state"] == "cancelled":
            return job
        if job["state"] in FINAL_STATES:
            raise VideoJobConflict(f"video job {job_id} already finished ({job['state']}); there is nothing to "
                                   "cancel")
        with self._lock:
            self._cancel.add(job_id)
        if job["state"] == "queued":
            return self._finish(job_id, "cancelled", "cancelled", cancel_requested=True)
        return self._update(job_id, cancel_requested=True)

    def delete(self, job_id: str) -> None:
        """Forget a finished job and delete its files."""
        job = self.job(job_id)
        if job["state"] not in FINAL_STATES:
            raise VideoJobConflict(f"video job {job_id} is {job['state']}: cancel it first")
        with self._lock:
            self._jobs.pop(job_id, None)
        shutil.rmtree(self.job_dir(job_id), ignore_errors=True)

    # --- the worker ------------------------------------------------------------------------------------
    def _finish(self, job_id: str, state: str, stage: str, **changes: Any) -> dict[str, Any]:
        with self._lock:
            self._cancel.discard(job_id)
        for p in self.job_dir(job_id).glob("photo.*"):
            p.unlink(missing_ok=True)
        return self._update(job_id, state=state, stage=stage, finished_at=time.time(), **changes)

    def _run(self, job_id: str, req: VideoJobRequest) -> None:
        """On the render thread."""
        with self._lock:
            if self._jobs.get(job_id, {}).get("state") != "queued":
                return                          # cancelled while it waited
        t0 = time.time()
        self._update(job_id, state="running", stage="starting", started_at=t0)
        last = [0.0]

        def cancelled() -> bool:
            with self._lock:
                return job_id in self._cancel or self._stopping.is_set()

        def progress(fraction: float, stage: str) -> None:
            if cancelled():
                raise VideoJobCancelled()
            now = time.monotonic()
            if now - last[0] >= self.progress_interval_s or fraction >= 1.0:
                last[0] = now
                self._update(job_id, progress=round(min(max(fraction, 0.0), 1.0), 4), stage=stage)

        try:
            result = self._render(req, self.job_dir(job_id), progress, cancelled)
        except VideoJobCancelled:
            if self._stopping.is_set() and job_id not in self._cancel:
                self._finish(job_id, "failed", "interrupted", error={
                    "code": "interrupted", "message": "the server stopped while this video was being made"})
            else:
                self._finish(job_id, "cancelled", "cancelled")
            return
        except InputError as exc:
            detail = exc.reason + (f" (expected {exc.expected}, got {exc.got})" if exc.expected or exc.got else "")
            self._finish(job_id, "failed", "failed", error={"code": "invalid_input", "message": detail,
                                                             "field": exc.field})
            return
        except DanceSearchError as exc:
            self._finish(job_id, "failed", "failed", error={"code": "render_failed", "message": str(exc)})
            return
        except Exception as exc:  # noqa: BLE001 - one failing job never stops the render thread
            log.exception("video job %s failed", job_id)
            self._finish(job_id, "failed", "failed", error={"code": "internal_error",
                                                             "message": f"{type(exc).__name__}: {exc}"})
            return
        result["run_s"] = round(time.time() - t0, 3)
        self._finish(job_id, "done", "done", progress=1.0, result=result)


__all__ = ["FINAL_STATES", "JOB_VIEWS", "KEEP_SECONDS", "MAX_JOB_SECONDS", "PHOTO_VIEWS", "VideoJobCancelled",
           "VideoJobConflict", "VideoJobManager", "VideoJobNotFound", "VideoJobRequest", "VideoQueueFull"]
