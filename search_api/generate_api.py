"""The generation routes: ``POST /v1/generate``, ``GET`` / ``DELETE /v1/jobs/{id}``, ``GET /v1/clips/{id}/provenance``.

``POST /v1/generate`` takes JSON (music = a catalog clip's, ``clip_id``) or multipart/form-data (the same
fields as form fields, plus the file ``audio`` instead of ``clip_id``). It checks everything it can before
queueing (music exists and is long enough, genre known, limits), then answers 202 with the job and a
``Location`` header; the dance is made by a worker (``search_api.jobs``). Write routes need the API key
when one is configured (``search_api.auth``).
"""
from __future__ import annotations

import logging
import secrets
from typing import Annotated, Any, Callable, Literal

import numpy as np
from fastapi import Depends, FastAPI, Path, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from encoders.errors import DanceSearchError
from indexer.catalog import CatalogError

from .auth import AuthError, require_api_key
from .jobs import MIN_MUSIC_SECONDS, JobConflict, JobManager, JobNotFound, QueueFull, genre_key
from .schemas import ErrorResponse
from .settings import ApiSettings
from .uploads import FILE_FIELD, Upload, UploadError, check_audio, read_request_fields

log = logging.getLogger("dancesearch.api")

MAX_TEXT = 500
MAX_CLIP_ID = 2**62
JOB_ID_PATTERN = "^[0-9a-f]{32}$"
JobId = Annotated[str, Path(pattern=JOB_ID_PATTERN, description="job id (32 hex digits)")]


class GenerateRequest(BaseModel):
    """``POST /v1/generate`` fields (JSON body, or form fields of a multipart body)."""

    model_config = ConfigDict(extra="forbid")

    text: str | None = Field(None, max_length=MAX_TEXT, description="what the dance should look like: its genre "
                                                                     "comes from the text genre classifier unless "
                                                                     "`genre` is given; stored as the clips' caption")
    genre: str | None = Field(None, max_length=64, description="the genre to dance (wins over the text's)")
    clip_id: int | None = Field(None, ge=0, le=MAX_CLIP_ID, description="dance to this catalog clip's music "
                                                                        "(or upload `audio`, multipart only)")
    seconds: float | None = Field(None, ge=MIN_MUSIC_SECONDS, le=300.0,
                                  description="length of the dance (default: the whole music, capped by the server's "
                                              "DANCESEARCH_GENERATE_MAX_SECONDS)")
    seed: int | None = Field(None, ge=0, le=2**31 - 1, description="random seed (default: drawn; diffusion: candidate "
                                                                   "i uses seed + i; gcrm: every dance comes from "
                                                                   "this seed's candidate pool)")
    candidates: int = Field(1, ge=1, le=32, description="dances to make (each stored as a clip); at most "
                                                        "DANCESEARCH_GENERATE_MAX_CANDIDATES")
    steps: int = Field(20, ge=1, le=200, description="denoising steps")
    guidance: float = Field(2.0, ge=0.0, le=20.0, description="classifier-free guidance weight (1 = none)")


class GenerateForm(GenerateRequest):
    """The multipart form: the JSON fields plus the audio file."""

    audio: bytes | None = Field(None, description="the music: wav, ogg, mp3, flac (at least 4 s, at most "
                                                  "DANCESEARCH_MAX_UPLOAD_BYTES with the form)")


class JobError(BaseModel):
    code: str
    message: str


class GeneratedClip(BaseModel):
    id: int
    key: str
    candidate: int
    seed: int = Field(description="the seed that, with the job's parameters, reproduces this dance: the request's "
                                  "seed + candidate for diffusion, the request's seed for gcrm (with `first_rank`)")
    first_rank: int | None = Field(None, description="gcrm: rank of the dance's first-segment choice among the "
                                                     "candidates (0 = best); None for diffusion")
    genre: str
    duration_s: float
    media: dict[str, str | None] = Field(description="motion_npz, motion_json, motion_bvh, audio (None without audio)")
    provenance: str = Field(description="URL of the clip's provenance")


class JobResult(BaseModel):
    clips: list[GeneratedClip]
    genre: str
    genre_source: Literal["request", "text"]
    genre_confidence: float | None
    model_id: str
    seconds: float
    backend: str | None = Field(None, description="what made the dances: `gcrm` (stitched from diffusion and "
                                                  "catalog candidates) or `diffusion` (long-term sampling)")
    timing: dict[str, float] | None = Field(
        None, description="seconds per part: queue_s (waiting for a worker), music_s, genre_s, generate_s (the "
                          "back-end: candidates_s = diffusion_s + retrieval_s, mel_s, scoring_s for GS + coherence, "
                          "stitch_s), store_s (files + catalog), run_s, total_s = queue_s + run_s")
    candidates_requested: int | None = Field(None, description="dances the request asked for")
    candidates_made: int | None = Field(None, description="dances made (gcrm makes at most one per distinct "
                                                          "first-segment candidate, so it can be fewer; `notes` "
                                                          "says why)")
    notes: list[str] = Field(default_factory=list, description="what the back-end reports about this job (fewer "
                                                               "dances than asked, no audio for GCRM, ...)")


class JobInfo(BaseModel):
    id: str
    state: Literal["queued", "running", "done", "failed", "cancelled"]
    progress: float = Field(description="0..1")
    stage: str | None = Field(description="what the job is doing (or how it ended)")
    cancel_requested: bool
    created_at: float = Field(description="Unix time")
    started_at: float | None
    finished_at: float | None
    params: dict[str, Any] = Field(description="the request as accepted (seed and seconds filled in)")
    result: JobResult | None = Field(description="state done: the generated clips")
    error: JobError | None = Field(description="state failed: why (`interrupted` when the server stopped under it)")
    links: dict[str, str]


class Provenance(BaseModel):
    clip_id: int
    job_id: str | None
    model_id: str | None
    data: dict[str, Any] = Field(description="backend, seed, parameters, music origin, segments (origin of each "
                                             "span of frames)")


def _err(description: str) -> dict[str, Any]:
    return {"model": ErrorResponse, "description": description}


AUTH_ERRORS = {401: _err("missing or wrong API key (X-API-Key or Authorization: Bearer) when the server has one")}


def job_payload(job: dict[str, Any]) -> dict[str, Any]:
    out = dict(job)
    out["params"] = {k: v for k, v in (job.get("params") or {}).items() if not k.startswith("_")}
    out["links"] = {"self": f"/v1/jobs/{job['id']}"}
    return out


def _error(status: int, code: str, message: str, field: str | None = None,
           headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(status_code=status, content={"error": {"code": code, "field": field, "message": message}},
                        headers=headers)


def mount_generation(app: FastAPI, settings: ApiSettings, manager: JobManager | None, clip_row: Any,
                     classify: Callable[[list[str]], Any] | None = None, unavailable: str | None = None,
                     catalog_fn: Callable[[], Any] | None = None) -> None:
    """Add the routes to ``app``; ``clip_row(id)`` is the served engine's catalog lookup (404 when absent);
    ``classify(texts)`` is the served query gate (``SearchEngine.classify``: decisions or None without a gate),
    used to decline a text that is not about dance before anything is generated.

    ``manager`` None: generation is off on this server (``unavailable`` says why, e.g. a catalog it cannot write);
    the generate and job routes then answer 503 ``generation_unavailable`` and provenance is read from
    ``catalog_fn()`` (the served catalog)."""
    auth = require_api_key(lambda: settings.api_key)
    off_reason = unavailable or "generation is not available on this server"

    def off() -> JSONResponse:
        return _error(503, "generation_unavailable", f"generation is disabled on this server: {off_reason}")

    @app.exception_handler(AuthError)
    async def _auth(_: Request, exc: AuthError) -> JSONResponse:
        return _error(401, "unauthorized", str(exc), "x-api-key", headers={"WWW-Authenticate": "Bearer"})

    @app.exception_handler(UploadError)
    async def _upload(_: Request, exc: UploadError) -> JSONResponse:
        return _error(exc.status, exc.code, str(exc), exc.field)

    def prepare(req: GenerateRequest, upload: Upload | None) -> dict[str, Any]:
        """Checks that need the catalog, the audio or the model; then queue (sync: runs in the thread pool)."""
        if (req.clip_id is None) == (upload is None):
            raise UploadError(422, "invalid_parameter", "give the music: `clip_id` (a catalog clip) or an uploaded "
                                                        f"`{FILE_FIELD}` file (multipart/form-data), not both",
                              "clip_id" if upload is None else FILE_FIELD)
        text = req.text.strip() if req.text is not None else None
        if req.text is not None and not text:
            raise UploadError(422, "invalid_parameter", "text is empty", "text")
        if not req.genre and not text:
            raise UploadError(422, "invalid_parameter", "give `genre` or a `text` description to take the genre from",
                              "genre")
        if text and not req.genre and classify is not None:
            decline_non_dance(text, classify, settings.generate_not_dance_threshold)
        if req.candidates > settings.generate_max_candidates:
            raise UploadError(422, "invalid_parameter", f"candidates: at most {settings.generate_max_candidates} "
                                                        "(DANCESEARCH_GENERATE_MAX_CANDIDATES)", "candidates")
        if req.seconds is not None and req.seconds > settings.generate_max_seconds:
            raise UploadError(422, "invalid_parameter", f"seconds: at most {settings.generate_max_seconds:g} "
                                                        "(DANCESEARCH_GENERATE_MAX_SECONDS)", "seconds")
        genre = None
        if req.genre:
            try:
                known = manager.backend.genres()
            except DanceSearchError as exc:
                raise UploadError(503, "generation_unavailable", f"the generator cannot be loaded: {exc}",
                                  None) from exc
            match = [g for g in known if genre_key(g) == genre_key(req.genre)]
            if not match:
                raise UploadError(422, "invalid_parameter", f"unknown genre {req.genre!r}; the generator knows: "
                                                            f"{', '.join(known)}", "genre")
            genre = match[0]
        if upload is not None:
            check_audio(upload, MIN_MUSIC_SECONDS)
            available = upload.duration_s
            music: dict[str, Any] = {"kind": "upload", **upload.describe()}
        else:
            clip = clip_row(req.clip_id)
            if not clip.music_path:
                raise UploadError(422, "invalid_parameter", f"clip {req.clip_id} ({clip.key}) has no music",
                                  "clip_id")
            from .media import contained_path
            try:
                frames = int(np.load(contained_path(manager.ws.home, clip.music_path, "music"), mmap_mode="r",
                                     allow_pickle=False).shape[0])
            except (OSError, ValueError, DanceSearchError) as exc:
                raise UploadError(503, "media_unavailable", f"clip {req.clip_id}: its music file cannot be read "
                                                            f"({exc})", "clip_id") from exc
            available = frames / 30.0
            music = {"kind": "clip", "clip_id": int(clip.id), "clip_key": clip.key}
        if available + 1e-6 < MIN_MUSIC_SECONDS:
            raise UploadError(422, "audio_too_short", f"the music is {available:.2f} s long; the generator needs at "
                                                      f"least {MIN_MUSIC_SECONDS:g} s",
                              FILE_FIELD if upload is not None else "clip_id")
        seconds = req.seconds if req.seconds is not None else min(available, settings.generate_max_seconds)
        if seconds > available + 1e-6:
            raise UploadError(422, "invalid_parameter", f"seconds: the music is only {available:.2f} s long",
                              "seconds")
        params = {"text": text, "genre": genre, "music": music, "seconds": round(float(seconds), 4),
                  "seed": req.seed if req.seed is not None else secrets.randbelow(2**31),
                  "candidates": req.candidates, "steps": req.steps, "guidance": req.guidance}
        try:
            return manager.submit(params, upload.path if upload is not None else None)
        except QueueFull as exc:
            raise _QueueFullResponse(exc) from exc
        except CatalogError as exc:     # a catalog this server cannot write
            raise UploadError(503, "generation_unavailable", f"generation is unavailable: {exc}", None) from exc

    generate_body = {"required": True, "content": {
        "application/json": {"schema": GenerateRequest.model_json_schema()},
        "multipart/form-data": {"schema": {**GenerateForm.model_json_schema(), "properties": {
            **GenerateForm.model_json_schema()["properties"],
            FILE_FIELD: {"type": "string", "format": "binary",
                         "description": GenerateForm.model_fields["audio"].description}}},
            "encoding": {FILE_FIELD: {"contentType": "audio/*, application/octet-stream"}}}}}

    @app.post("/v1/generate", status_code=202, response_model=JobInfo, tags=["generate"],
              dependencies=[Depends(auth)], summary="Generate dances for a piece of music (a job)",
              description="Music: a catalog clip's (`clip_id`) or an uploaded file (`audio`, multipart/form-data). "
                          "Genre: `genre`, or taken from `text` by the text genre classifier. Answers 202 with the "
                          "queued job (poll `GET /v1/jobs/{id}`, `Location` header). Each result is stored as a clip "
                          "of source `generated` (left out of searches unless `include_generated=true`). Needs the "
                          "API key when the server has one.",
              openapi_extra={"requestBody": generate_body},
              responses={202: {"description": "the job, queued",
                               "headers": {"Location": {"schema": {"type": "string"}, "description": "the job's URL"}}},
                         400: _err("malformed JSON or multipart body"), **AUTH_ERRORS,
                         404: _err("`clip_id` is not in the catalog"),
                         413: _err("the body is over DANCESEARCH_MAX_UPLOAD_BYTES"),
                         415: _err("the body is neither JSON nor multipart/form-data, or the file is not audio"),
                         422: _err("a field is out of range, unknown or missing, or the audio is undecodable, "
                                   "silent or shorter than 4 s; `field` names it. Code `not_a_dance_query` "
                                   "(field `text`): the text, given without a `genre`, is not about dance (the "
                                   "search's query gate gives it a not_dance probability of at least "
                                   "DANCESEARCH_GENERATE_NOT_DANCE_THRESHOLD, 0.9), so nothing was generated"),
                         429: {"model": ErrorResponse, "description": "the queue is full; retry after `Retry-After` s",
                               "headers": {"Retry-After": {"schema": {"type": "integer"}, "description": "seconds"}}},
                         503: _err("the generator or the clip's music cannot be loaded; code "
                                   "`generation_unavailable`: generation is off on this server (e.g. a catalog "
                                   "it cannot write), the message says why")})
    async def generate(request: Request) -> Any:
        if manager is None:
            return off()
        req, upload = await read_request_fields(request, GenerateRequest, "POST /v1/generate", manager.incoming_dir)
        try:
            job = await run_in_threadpool(prepare, req, upload)
            upload = None   # the job owns the file now
        except _QueueFullResponse as full:
            return _error(429, "queue_full", str(full.exc), None, headers={"Retry-After": str(full.exc.retry_after)})
        finally:
            if upload is not None:
                upload.discard()
        return JSONResponse(job_payload(job), status_code=202, headers={"Location": f"/v1/jobs/{job['id']}"})

    job_errors = {404: _err("no such job"), 422: _err("the id is not 32 hex digits"),
                  503: _err("generation is off on this server (`generation_unavailable`)")}

    @app.get("/v1/jobs/{job_id}", response_model=JobInfo, tags=["generate"], responses=job_errors,
             summary="A generation job: state, progress, result, error")
    def get_job(job_id: JobId) -> Any:
        if manager is None:
            return off()
        try:
            return job_payload(manager.job(job_id))
        except JobNotFound as exc:
            return _error(404, "not_found", str(exc), "job_id")

    @app.delete("/v1/jobs/{job_id}", response_model=JobInfo, tags=["generate"], dependencies=[Depends(auth)],
                summary="Cancel a generation job",
                description="A queued job is cancelled at once (200, state `cancelled`); a running one stops at its "
                            "next denoising step (202, `cancel_requested: true`, then state `cancelled`). Cancelling a "
                            "cancelled job returns it (200); a job that is done or failed is 409. Needs the API key "
                            "when the server has one.",
                responses={**job_errors, **AUTH_ERRORS,
                           202: {"model": JobInfo, "description": "the job is running; it stops at its next step"},
                           409: _err("the job already finished (done or failed)")})
    def cancel_job(job_id: JobId) -> Any:
        if manager is None:
            return off()
        try:
            job = manager.cancel(job_id)
        except JobNotFound as exc:
            return _error(404, "not_found", str(exc), "job_id")
        except JobConflict as exc:
            return _error(409, "job_finished", str(exc), "job_id")
        return JSONResponse(job_payload(job), status_code=202 if job["state"] == "running" else 200)

    @app.get("/v1/clips/{clip_id}/provenance", response_model=Provenance, tags=["clips"],
             summary="How a generated clip was made (model, seed, parameters, segment origins)",
             responses={404: _err("no such clip, or the clip was not generated"), 422: _err("bad clip id")})
    def provenance(clip_id: Annotated[int, Path(ge=0, le=MAX_CLIP_ID, description="catalog clip id")]) -> Any:
        clip_row(clip_id)   # 404 not_found for an unknown clip
        catalog = manager.catalog if manager is not None else (catalog_fn() if catalog_fn is not None else None)
        data = catalog.provenance(clip_id) if catalog is not None else None
        if data is None:
            return _error(404, "not_found", f"clip {clip_id} was not generated: it has no provenance", "clip_id")
        return {"clip_id": clip_id, "job_id": data.pop("job_id", None), "model_id": data.pop("model_id", None),
                "data": data}


def decline_non_dance(text: str, classify: Callable[[list[str]], Any], threshold: float = 0.9) -> None:
    """422 ``not_a_dance_query`` when the query gate is sure ``text`` is not about dance: its ``not_dance``
    probability is at least ``threshold`` (only asked when the genre would come from the text: an explicit genre
    says what to dance). The gate errs on some genuine dance texts with middling probabilities, so anything less
    sure goes through; so does every request when the gate fails (the check is skipped, with a warning)."""
    try:
        decisions = classify([text])
    except Exception as exc:  # noqa: BLE001 - a broken gate must not block generation
        log.warning("the query gate failed on a generation request, the not-a-dance check is skipped: %s: %s",
                    type(exc).__name__, exc)
        return
    decision = decisions[0] if decisions else None
    scores = getattr(decision, "scores", None) or {}
    try:
        p = float(scores["not_dance"])
    except (KeyError, TypeError, ValueError):
        return
    if p >= threshold:
        raise UploadError(422, "not_a_dance_query",
                          f"\"{text[:80]}\" does not read like a description of a dance (the query gate is "
                          f"{p:.0%} sure), so no dance was generated. Describe the dance you want (for example "
                          "\"an energetic hip-hop routine with fast footwork\") or choose a `genre`.", "text")


class _QueueFullResponse(Exception):
    def __init__(self, exc: QueueFull) -> None:
        self.exc = exc
