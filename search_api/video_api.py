"""The video job routes: ``POST /v1/videos``, ``GET`` / ``DELETE /v1/videos/{id}``, ``GET /v1/videos/{id}/file``.

``POST /v1/videos`` takes JSON (guidance views of a catalog clip) or multipart/form-data (the same fields as
form fields, plus the reference photo in the file field ``photo`` for the dancer views). Everything that can
be checked before queueing is (the clip exists, view / size / seconds / body in range, the photo decodes and
shows a person: 422 naming the problem), then it answers 202 with the job and a ``Location`` header; the
render thread makes the video (``search_api.video_jobs``). Write routes need the API key when one is set.
"""
from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import Depends, FastAPI, Path, Request
from fastapi.responses import FileResponse, JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from encoders.errors import InputError

from .auth import require_api_key
from .generate_api import AUTH_ERRORS, JOB_ID_PATTERN, MAX_CLIP_ID, _err, _error
from .settings import ApiSettings
from .uploads import PHOTO_FILE, Upload, UploadError, read_request_fields
from .video import VideoService, VideoSize, VideoUnavailable, video_available
from .video_jobs import (MAX_JOB_SECONDS, PHOTO_VIEWS, VideoJobConflict, VideoJobManager,
                         VideoJobNotFound, VideoJobRequest, VideoQueueFull)

VideoJobId = Annotated[str, Path(pattern=JOB_ID_PATTERN, description="video job id (32 hex digits)")]
BODIES = ("capsule", "anny")
PHOTO_MIN_SIDE = 128


class VideoRequest(BaseModel):
    """``POST /v1/videos`` fields (JSON body, or form fields of a multipart body with the ``photo`` file)."""

    model_config = ConfigDict(extra="forbid")

    clip_id: int = Field(ge=0, le=MAX_CLIP_ID, description="the catalog clip to render (its motion and its music)")
    view: Literal["body", "pose", "grid", "side-by-side", "dancer", "dancer-side-by-side"] = Field(
        "dancer-side-by-side", description="what the video shows: `dancer` = the person of the uploaded `photo` "
                                           "dancing (a CPU preview, not photoreal), `dancer-side-by-side` = that next "
                                           "to the pose skeleton; the guidance views need no photo")
    size: VideoSize = Field(VideoSize.medium, description="pixels per panel (square)")
    seconds: float = Field(10.0, gt=0.0, le=MAX_JOB_SECONDS, description="length, from the clip's start")
    body: Literal["capsule", "anny"] = Field("capsule", description="body model of the guidance maps (anny: a "
                                                                    "skinned mesh; its first use builds it, ~1-3 min)")


class VideoForm(VideoRequest):
    photo: bytes | None = Field(None, description="the reference photo (jpeg, png, webp): one person, whole body, "
                                                  f"at least {PHOTO_MIN_SIDE} px on the short side")


class VideoJobResult(BaseModel):
    frames: int
    fps: float
    seconds: float
    width: int
    height: int
    bytes: int
    audio: bool
    render_s: float
    encode_s: float
    run_s: float | None = None
    notes: list[str] = Field(default_factory=list, description="e.g. several people were in the photo")


class VideoJobInfo(BaseModel):
    id: str
    state: Literal["queued", "running", "done", "failed", "cancelled"]
    progress: float = Field(description="0..1")
    stage: str | None
    cancel_requested: bool
    created_at: float
    started_at: float | None
    finished_at: float | None
    params: dict[str, Any]
    result: VideoJobResult | None
    error: dict[str, Any] | None = Field(description="state failed: {code, message} (`interrupted` when the "
                                                     "server stopped under it)")
    links: dict[str, str] = Field(description="self, and file once the video is done")


def video_job_payload(job: dict[str, Any]) -> dict[str, Any]:
    out = dict(job)
    out["links"] = {"self": f"/v1/videos/{job['id']}"}
    if job["state"] == "done":
        out["links"]["file"] = f"/v1/videos/{job['id']}/file"
    return out


def read_photo(upload: Upload) -> Any:
    """The uploaded photo, read and its person fitted (``ReferencePerson``); UploadError 422 naming the problem."""
    from generation.video.appearance import load_reference

    if upload.size == 0:
        raise UploadError(422, "invalid_photo", f"the uploaded photo {upload.filename!r} is empty", "photo")
    try:
        person = load_reference(upload.path, min_size=PHOTO_MIN_SIDE)
    except InputError as exc:
        detail = exc.reason + (f" (expected {exc.expected}, got {exc.got})" if exc.expected or exc.got else "")
        raise UploadError(422, "invalid_photo", f"the photo {upload.filename!r} cannot be used: {detail}",
                          "photo") from exc
    return person


def mount_video_jobs(app: FastAPI, settings: ApiSettings, videos: VideoService, manager: VideoJobManager,
                     clip_row: Any) -> None:
    """Add the routes; ``clip_row(id)`` is the served engine's catalog lookup (404 when absent)."""
    auth = require_api_key(lambda: settings.api_key)

    def prepare(req: VideoRequest, upload: Upload | None) -> dict[str, Any]:
        clip_row(req.clip_id)                                  # 404 for an unknown clip, before anything else
        if req.view in PHOTO_VIEWS and upload is None:
            raise UploadError(422, "invalid_parameter", f"the {req.view} view needs a reference `photo` (send the "
                                                        "request as multipart/form-data with the file)", "photo")
        if req.view not in PHOTO_VIEWS and upload is not None:
            raise UploadError(422, "invalid_parameter", f"the {req.view} view shows no photo: use view `dancer` or "
                                                        "`dancer-side-by-side`, or leave the photo out", "photo")
        person = read_photo(upload) if upload is not None else None
        try:
            return manager.submit(VideoJobRequest(req.clip_id, req.view, int(req.size), float(req.seconds), req.body,
                                                  upload.path if upload is not None else None,
                                                  upload.filename if upload is not None else None, person))
        except VideoQueueFull as exc:
            raise UploadError(429, "queue_full", str(exc), None) from exc

    video_body = {"required": True, "content": {
        "application/json": {"schema": VideoRequest.model_json_schema()},
        "multipart/form-data": {"schema": {**VideoForm.model_json_schema(), "properties": {
            **VideoForm.model_json_schema()["properties"],
            "photo": {"type": "string", "format": "binary", "description": VideoForm.model_fields["photo"].description}}},
            "encoding": {"photo": {"contentType": "image/*, application/octet-stream"}}}}}

    @app.post("/v1/videos", status_code=202, response_model=VideoJobInfo, tags=["videos"],
              dependencies=[Depends(auth)], summary="Render a clip as a video, optionally danced by the person of a photo",
              description="A job (poll `GET /v1/videos/{id}`, `Location` header; the MP4 is at "
                          "`GET /v1/videos/{id}/file` once done). The dancer views need a reference `photo` "
                          "(multipart/form-data): the person is detected, fitted and textured onto the dancing "
                          "body on the server's CPU (a preview, not photoreal). Needs the video extra.",
              openapi_extra={"requestBody": video_body},
              responses={202: {"description": "the job, queued",
                               "headers": {"Location": {"schema": {"type": "string"}, "description": "the job's URL"}}},
                         400: _err("malformed JSON or multipart body"), **AUTH_ERRORS,
                         404: _err("`clip_id` is not in the catalog"),
                         413: _err("the body is over DANCESEARCH_MAX_UPLOAD_BYTES"),
                         415: _err("the body is neither JSON nor multipart/form-data, or the file is not an image"),
                         422: _err("a field is out of range or missing, or the photo cannot be used (code "
                                   "`invalid_photo`: not an image, too small, no person found); `field` names it"),
                         429: _err("too many videos are waiting; retry after `Retry-After` s"),
                         503: _err("the server cannot render videos (`video_unavailable`)")})
    async def create_video(request: Request) -> Any:
        req, upload = await read_request_fields(request, VideoRequest, "POST /v1/videos", manager.root / ".incoming",
                                                PHOTO_FILE)
        try:
            ok, why = await run_in_threadpool(video_available)
            if not ok:
                raise VideoUnavailable(why)
            job = await run_in_threadpool(prepare, req, upload)
            upload = None   # the job owns the file now
        except UploadError as exc:
            headers = {"Retry-After": "5"} if exc.status == 429 else None
            return _error(exc.status, exc.code, str(exc), exc.field, headers=headers)
        finally:
            if upload is not None:
                upload.discard()
        return JSONResponse(video_job_payload(job), status_code=202, headers={"Location": f"/v1/videos/{job['id']}"})

    job_errors = {404: _err("no such video job"), 422: _err("the id is not 32 hex digits")}

    @app.get("/v1/videos/{job_id}", response_model=VideoJobInfo, tags=["videos"], responses=job_errors,
             summary="A video job: state, progress, result, error")
    def get_video_job(job_id: VideoJobId) -> Any:
        try:
            return video_job_payload(manager.job(job_id))
        except VideoJobNotFound as exc:
            return _error(404, "not_found", str(exc), "job_id")

    @app.get("/v1/videos/{job_id}/file", response_class=FileResponse, tags=["videos"],
             responses={**job_errors, 409: _err("the job is not done (yet)"),
                        200: {"description": "the MP4 (H.264 + AAC)", "content": {"video/mp4": {}}}},
             summary="The finished video (Range requests supported)")
    def get_video_file(job_id: VideoJobId) -> Any:
        try:
            path = manager.video_file(job_id)
        except VideoJobNotFound as exc:
            return _error(404, "not_found", str(exc), "job_id")
        except VideoJobConflict as exc:
            return _error(409, "not_ready", str(exc), "job_id")
        return FileResponse(path, media_type="video/mp4", filename=f"dance-{job_id[:8]}.mp4",
                            content_disposition_type="inline")

    @app.delete("/v1/videos/{job_id}", response_model=VideoJobInfo, tags=["videos"], dependencies=[Depends(auth)],
                responses={**job_errors, **AUTH_ERRORS},
                summary="Cancel a video job, or delete a finished one with its file",
                description="Queued: cancelled at once (200); running: stops at its next chunk of frames (202, "
                            "`cancel_requested`); finished: the job and its video are deleted (200, the last record).")
    def delete_video_job(job_id: VideoJobId) -> Any:
        try:
            job = manager.job(job_id)
            if job["state"] in ("done", "failed", "cancelled"):
                manager.delete(job_id)
                return video_job_payload(job)
            job = manager.cancel(job_id)
        except VideoJobNotFound as exc:
            return _error(404, "not_found", str(exc), "job_id")
        except VideoJobConflict as exc:
            return _error(409, "conflict", str(exc), "job_id")
        return JSONResponse(video_job_payload(job), status_code=202 if job["state"] == "running" else 200)


__all__ = ["BODIES", "VideoJobInfo", "VideoRequest", "mount_video_jobs", "read_photo", "video_job_payload"]
