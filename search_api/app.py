"""The FastAPI application: ``create_app(settings)`` loads the model and the index once, then serves v1.

Searches (``/v1/search`` GET and POST, ``/v1/clips/{id}/similar``) are ``async`` handlers that
validate on the event loop and then await the micro-batcher (``batching.MicroBatcher``): one
worker thread encodes every text query of a batch in one pass and searches the index once per
filter, because that is several times cheaper per query than one request at a time.  With
``max_batch=1`` batching is off and each search runs alone in FastAPI's thread pool (torch and
FAISS release the GIL, so those run in parallel).  Other handlers are plain ``def`` functions in
the thread pool.  Shared state is read-only while serving (the engine).  A change watcher thread
(``search_api.live``) notices a rebuilt index or a changed catalog within ``reload_check_s`` and
swaps in a new engine with a single reference assignment; ``POST /v1/admin/reload`` (API key
required) does the same on demand and also reloads the model.  The batch worker and the watcher
stop with the app (lifespan shutdown).

Generation (``search_api.generate_api``, ``search_api.jobs``): ``POST /v1/generate`` queues a job for a bounded
pool of worker threads (``generate_workers``, queue limit ``generate_queue_limit``, 429 + Retry-After when
full); ``GET`` / ``DELETE /v1/jobs/{id}`` read and cancel it. Job records and the generated clips live in the
catalog; the workers start with the app (jobs a previous process left running are marked failed) and stop
with it. The generator loads on first use. Routes that change state need the API key when one is
configured (``search_api.auth``).

In front of the routes: a request-body limit (``search_api.limits``, 413 before the body is read),
the metrics middleware and, when configured, CORS.  ``/docs`` and ``/redoc`` use local copies of
Swagger UI and ReDoc (``search_api.docs``), so they work offline.

Videos (``search_api.video``): ``GET /v1/clips/{id}/video`` renders a clip's MP4 once, on one dedicated render
thread (concurrent requests for the same video share that render), caches it under ``HOME/cache/video`` and
serves the file (Range requests included); the render thread stops with the app.
"""
from __future__ import annotations

import asyncio
import logging
from contextlib import asynccontextmanager
from typing import Annotated, Any, AsyncIterator, Callable

from fastapi import Depends, FastAPI, Path, Query, Request
from fastapi.security import HTTPAuthorizationCredentials
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import FileResponse, JSONResponse, RedirectResponse, Response
from sqlalchemy.exc import SQLAlchemyError
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from encoders.errors import DanceSearchError, InputError, ModelMismatchError
from indexer.catalog import CatalogError
from indexer.index.embedder import TextEmbeddingCache
from indexer.index.service import NotFoundError, SearchEngine, SearchRequest

from .auth import API_KEY_HEADER, BEARER, key_matches, presented_key
from .batching import MicroBatcher
from .docs import mount_offline_docs
from .generate_api import mount_generation
from .jobs import GenerationBackend, JobManager, TextGenre, make_backend
from .limits import BodyLimitMiddleware
from .live import ChangeWatcher
from .media import MediaError, MediaUnavailable
from .metrics import Metrics, MetricsMiddleware
from .runtime import ThreadSettings, configure_process
from .schemas import (ERRORS, MAX_K, MAX_OFFSET, MAX_QUERY, MEDIA_ERRORS, VIDEO_RESPONSES, ClipInfo, ErrorResponse,
                      GenresResponse, Health, MotionJson, SearchBody, SearchResponse, Split)
from .service import ApiService
from .settings import ApiSettings
from .video import INSTALL_HINT as VIDEO_INSTALL_HINT
from .video import (MAX_PENDING_RENDERS, MAX_VIDEO_SECONDS, RenderQueueFull, VideoService, VideoSize, VideoUnavailable,
                    VideoView)
from .video_api import mount_video_jobs
from .video_jobs import JOBS_DIR, VideoJobManager

log = logging.getLogger("dancesearch.api")

API_VERSION = "1.0.0"
MAX_CLIP_ID = 2**62  # keeps ids inside SQLite's 64-bit integers
ClipId = Annotated[int, Path(ge=0, le=MAX_CLIP_ID, description="catalog clip id")]


def error(status: int, code: str, message: str, field: str | None = None, headers: dict[str, str] | None = None,
          **extra: Any) -> JSONResponse:
    return JSONResponse(status_code=status, content={"error": {"code": code, "field": field, "message": message,
                                                               **extra}}, headers=headers)


def allowed_methods(app: FastAPI, scope: dict[str, Any]) -> list[str]:
    """Every method some route accepts at ``scope``'s path (for the ``Allow`` header of a 405): Starlette's
    own 405 names only the first route that matched the path, e.g. GET but not POST for /v1/search."""
    methods: set[str] = set()
    for route in app.router.routes:
        route_methods = getattr(route, "methods", None)
        if route_methods and route.matches(scope)[0] != Match.NONE:
            methods |= set(route_methods)
    return sorted(methods)


def _field_of(loc: tuple[Any, ...]) -> str:
    """The request field an error is about: the top-level name after the location ("query", "body", ...)."""
    rest = loc[1:] if loc and loc[0] in ("query", "body", "path", "header", "cookie") else loc
    names = [str(p) for p in rest if isinstance(p, str)]
    return names[0] if names else (str(loc[0]) if loc else "request")


def load_engine(settings: ApiSettings) -> SearchEngine:
    """Model + index + catalog from the settings (raises DanceSearchError with a user-facing message)."""
    from encoders.cliutil import resolve_home
    from indexer.index.embedder import load_embedder
    from indexer.workspace import Workspace

    configure_process(settings)
    ws = Workspace(resolve_home(settings.home), settings.db)
    embedder = load_embedder(str(settings.run) if settings.run else None, text_encoder=settings.text_encoder,
                             query_expansion=settings.query_expansion)
    if hasattr(embedder, "limit_text_memo"):
        embedder.limit_text_memo(settings.backbone_memo_size)
    return SearchEngine.open(ws, embedder, settings.index_name, milvus_uri=settings.milvus_uri)


def create_app(settings: ApiSettings | None = None, engine: SearchEngine | None = None,
               loader: Callable[[], SearchEngine] | None = None, generator: GenerationBackend | None = None,
               genre_fn: Callable[[str], tuple[str, Any]] | None = None) -> FastAPI:
    """The app; ``engine`` (already loaded) or else ``loader`` / the settings provide model and index.

    ``generator`` runs generation jobs (default: ``search_api.jobs.make_backend``: GCRM when a GS network is
    available, else :class:`search_api.jobs.DiffusionBackend` on ``settings.generator_run``, loaded on first use); ``genre_fn`` maps a request's text to a genre (default:
    the shipped text genre classifier, loaded on first use)."""
    settings = settings or ApiSettings()
    loader = loader or (lambda: load_engine(settings))
    cache = TextEmbeddingCache(settings.embedding_cache_size) if settings.embedding_cache_size > 0 else None
    metrics = Metrics()
    service = ApiService(engine if engine is not None else loader(), loader, text_cache=cache,
                         milvus_uri=settings.milvus_uri, on_change=metrics.observe_state)
    watcher = ChangeWatcher(service.refresh, settings.reload_check_s)
    videos = VideoService(service)
    video_jobs = VideoJobManager(videos.cache_dir / JOBS_DIR, videos.run, videos.render_job,
                                 queue_limit=MAX_PENDING_RENDERS)
    if cache is not None:
        metrics.watch_cache(cache.stats)
    if generator is None:
        generator = make_backend(settings, service.engine.workspace, lambda: service.engine)
    jobs: JobManager | None = None
    generation_off: str | None = None
    try:
        jobs = JobManager(service.engine.workspace, generator, genre_fn or TextGenre(),
                          workers=settings.generate_workers, queue_limit=settings.generate_queue_limit,
                          warm_up=settings.generate_warm_up)
    except (CatalogError, SQLAlchemyError) as exc:  # a read-only catalog without the job tables (a file, a role
        # without CREATE: SQLite says OperationalError -> CatalogError, PostgreSQL ProgrammingError): search still works
        # the driver's words, not the catalog URL (it may hold a password): "attempt to write a readonly database"
        reason = getattr(exc, "orig", None) or getattr(exc.__cause__, "orig", None) or exc
        generation_off = (f"the catalog cannot be prepared for generation jobs ({reason}); let the server write it "
                          "(or open it once with write access, which adds the job tables), then restart")
        log.warning("generation is disabled: %s", generation_off)
    in_worker = ThreadSettings.capture().wrap  # searching threads run with this thread's torch / FAISS threads

    batcher: MicroBatcher[SearchRequest, dict[str, Any]] | None = None
    if settings.max_batch > 1:
        batcher = MicroBatcher(in_worker(service.search_many), max_batch=settings.max_batch,
                               window_s=settings.batch_window_ms / 1000.0, on_batch=metrics.observe_batch,
                               workers=settings.batch_workers)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        watcher.start()
        if jobs is not None:
            jobs.start()
        await run_in_threadpool(video_jobs.start)
        yield
        video_jobs.stop()                       # a running video job stops at its next chunk
        if jobs is not None:    # running jobs end failed / interrupted; queued ones wait for the next start
            await run_in_threadpool(jobs.stop)
        await run_in_threadpool(watcher.stop)
        await run_in_threadpool(videos.close)   # lets a render in progress finish; queued ones are cancelled
        if batcher is not None:
            await run_in_threadpool(batcher.close)  # lets the batch in progress finish, fails the queued ones

    app = FastAPI(title="DanceSearch API", version=API_VERSION, lifespan=lifespan, docs_url=None, redoc_url=None,
                  description="Search 3D dance clips by text description or genre. Errors are "
                              "`{\"error\": {\"code\", \"field\", \"message\"}}`.")
    mount_offline_docs(app)
    app.state.service = service
    app.state.metrics = metrics
    app.state.settings = settings
    app.state.batcher = batcher
    app.state.watcher = watcher
    app.state.jobs = jobs
    app.state.videos = videos
    app.state.video_jobs = video_jobs
    app.state.generation_unavailable = generation_off   # why generation is off (None: it is on)

    async def run_search(q: str | None, k: int, offset: int, genres: list[str], bpm_min: float | None,
                         bpm_max: float | None, split: str | None, source: str | None,
                         include_generated: bool = False) -> dict[str, Any]:
        req = service.validate(q, k, offset, genres, bpm_min, bpm_max, split, source,
                               include_generated)  # 4xx before queueing
        if batcher is None:
            body = await run_in_threadpool(in_worker(service.search_one), req)
        else:
            body = await batcher.submit(req)
        metrics.observe_search(body)
        return body
    app.add_middleware(BodyLimitMiddleware, default=(settings.max_body_bytes, "DANCESEARCH_MAX_BODY_BYTES"),
                       limits={"/v1/search": (settings.max_search_body_bytes, "DANCESEARCH_MAX_SEARCH_BODY_BYTES"),
                               "/v1/generate": (settings.max_upload_bytes, "DANCESEARCH_MAX_UPLOAD_BYTES"),
                               "/v1/videos": (settings.max_upload_bytes, "DANCESEARCH_MAX_UPLOAD_BYTES")})
    if settings.cors_origins:
        app.add_middleware(CORSMiddleware, allow_origins=settings.cors_origins, allow_methods=["GET", "POST", "DELETE"],
                           allow_headers=["*"])
    app.add_middleware(MetricsMiddleware, metrics=metrics)

    # --- errors --------------------------------------------------------------------------------------
    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        errs = exc.errors()
        first = errs[0] if errs else {"loc": ("request",), "msg": "invalid request", "type": ""}
        if first.get("type") == "json_invalid":
            return error(400, "malformed_json", f"the request body is not valid JSON: {first.get('msg')}", "body")
        field = _field_of(tuple(first.get("loc", ())))
        return error(422, "invalid_parameter", f"{field}: {first.get('msg')}", field)

    @app.exception_handler(NotFoundError)
    async def _not_found(_: Request, exc: NotFoundError) -> JSONResponse:
        return error(404, "not_found", exc.reason, exc.field)

    @app.exception_handler(InputError)
    async def _input(_: Request, exc: InputError) -> JSONResponse:
        msg = exc.reason + (f" (expected {exc.expected}, got {exc.got})" if exc.expected or exc.got else "")
        return error(422, "invalid_parameter", msg, exc.field)

    @app.exception_handler(MediaError)
    async def _media(_: Request, exc: MediaError) -> JSONResponse:
        return error(404, "media_unavailable", str(exc), "id")

    @app.exception_handler(MediaUnavailable)
    async def _media_broken(_: Request, exc: MediaUnavailable) -> JSONResponse:
        return error(503, "media_unavailable", str(exc), "id", clip_id=exc.clip_id, file=exc.file)

    @app.exception_handler(VideoUnavailable)
    async def _no_video(_: Request, exc: VideoUnavailable) -> JSONResponse:
        return error(503, "video_unavailable", str(exc), install=VIDEO_INSTALL_HINT)

    @app.exception_handler(RenderQueueFull)
    async def _render_busy(_: Request, exc: RenderQueueFull) -> JSONResponse:
        return error(429, "too_many_renders", str(exc), headers={"Retry-After": "5"})

    @app.exception_handler(ModelMismatchError)
    async def _mismatch(_: Request, exc: ModelMismatchError) -> JSONResponse:
        return error(503, "model_mismatch", str(exc))

    @app.exception_handler(DanceSearchError)
    async def _ds(_: Request, exc: DanceSearchError) -> JSONResponse:
        return error(503, "unavailable", str(exc))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed", 401: "unauthorized", 403: "forbidden"}.get(
            exc.status_code, "http_error")
        headers = dict(exc.headers or {})
        message = str(exc.detail)
        if exc.status_code == 405:
            allowed = allowed_methods(app, request.scope)
            if allowed:
                headers["Allow"] = ", ".join(allowed)
            message = f"{request.method} is not allowed on {request.url.path}; allowed: {headers.get('Allow', '')}"
        return error(exc.status_code, code, message, headers=headers or None)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        # a bug: JSON like every other error (Starlette re-raises it afterwards, so it is logged with its traceback)
        return error(500, "internal_error", f"the server failed on {request.method} {request.url.path}; "
                                            "the operator's log has the details")

    # --- search ------------------------------------------------------------------------------------
    @app.get("/v1/search", response_model=SearchResponse, responses=ERRORS, tags=["search"],
             summary="Search clips by text, or rank a genre's clips by typicality")
    async def search_get(
        q: Annotated[str | None, Query(max_length=MAX_QUERY, description="what the dance looks like")] = None,
        k: Annotated[int, Query(ge=1, le=MAX_K)] = 10,
        offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
        genre: Annotated[list[str], Query(description="genre filter (repeatable, OR-ed); alone: genre search")] = [],  # noqa: B006
        bpm_min: Annotated[float | None, Query(ge=0, le=400)] = None,
        bpm_max: Annotated[float | None, Query(ge=0, le=400)] = None,
        split: Annotated[Split | None, Query()] = None,
        source: Annotated[str | None, Query(max_length=64)] = None,
        include_generated: Annotated[bool, Query(description="also return clips the generator made (catalog "
                                                             "source `generated`)")] = False,
    ) -> dict[str, Any]:
        return await run_search(q, k, offset, list(genre), bpm_min, bpm_max, split, source, include_generated)

    @app.post("/v1/search", response_model=SearchResponse, responses=ERRORS, tags=["search"],
              summary="Search clips (JSON body with the same fields as GET)")
    async def search_post(body: SearchBody) -> dict[str, Any]:
        return await run_search(body.q, body.k, body.offset, body.genre or [], body.bpm_min, body.bpm_max, body.split,
                                body.source, body.include_generated)

    # --- clips ---------------------------------------------------------------------------------------
    @app.get("/v1/clips/{clip_id}", response_model=ClipInfo, responses=ERRORS, tags=["clips"])
    def get_clip(clip_id: ClipId) -> dict[str, Any]:
        return service.clip(clip_id)

    @app.get("/v1/clips/{clip_id}/similar", response_model=SearchResponse, responses=ERRORS, tags=["clips"],
             summary="Clips closest to this one")
    async def similar(clip_id: ClipId, k: Annotated[int, Query(ge=1, le=MAX_K)] = 10,
                      offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0) -> dict[str, Any]:
        if batcher is None:
            body = await run_in_threadpool(in_worker(service.similar), clip_id, k, offset)
        else:  # on the search worker, between batches: every index search of the process on one thread
            body = await batcher.call(lambda: in_worker(service.similar)(clip_id, k, offset))
        metrics.observe_search(body)
        return body

    motion_responses: dict[int | str, dict[str, Any]] = {
        **MEDIA_ERRORS,
        200: {"description": "npz: the MotionRecord file; json: player format; bvh: BVH text (metres, y up)",
              "content": {"application/octet-stream": {}, "application/json": {"schema": MotionJson.model_json_schema()},
                          "text/plain": {}}},
    }

    @app.get("/v1/clips/{clip_id}/motion", response_class=Response, responses=motion_responses, tags=["clips"],
             summary="The clip's motion as npz, JSON (for players) or BVH (Blender, Unity)")
    def motion(clip_id: ClipId, format: Annotated[str, Query(pattern="^(npz|json|bvh)$")] = "json") -> Response:  # noqa: A002
        payload, media_type, filename = service.motion(clip_id, format)
        headers = {"Content-Disposition": f'attachment; filename="{filename}"'} if format != "json" else None
        if isinstance(payload, bytes):
            return Response(payload, media_type=media_type, headers=headers)
        return FileResponse(payload, media_type=media_type, filename=filename)

    @app.get("/v1/clips/{clip_id}/audio", response_class=Response, tags=["clips"],
             responses={**MEDIA_ERRORS, 200: {"description": "the clip's audio segment",
                                        "content": {t: {} for t in ("audio/ogg", "audio/wav", "audio/mpeg", "audio/flac",
                                                                    "audio/mp4", "application/octet-stream")}}})
    def audio(clip_id: ClipId) -> FileResponse:
        path, media_type = service.audio(clip_id)
        return FileResponse(path, media_type=media_type)

    @app.get("/v1/clips/{clip_id}/video", response_class=FileResponse, tags=["clips"], responses=VIDEO_RESPONSES,
             summary="The clip rendered as an MP4 video (capsule body and / or pose skeleton) with its music",
             description=f"A rendered preview of the dance, not a real dancer: the clip's motion drawn as a shaded "
                         f"capsule body (`body`), the DWPose skeleton map (`pose`), both side by side "
                         f"(`side-by-side`) or a 2x2 grid of guidance maps (`grid`), `size` pixels per panel, "
                         f"H.264 with the clip's music as AAC (silent when the clip has none), at most the first "
                         f"{MAX_VIDEO_SECONDS:g} s. The first request renders it (seconds); the file is cached in "
                         f"the workspace and served from there afterwards, Range requests included. Needs the "
                         f"server's optional video extra (`{VIDEO_INSTALL_HINT}`) and EGL; without them the answer "
                         f"is 503 `video_unavailable`.")
    async def video(clip_id: ClipId,
                    view: Annotated[VideoView, Query(description="what the video shows")] = "body",
                    size: Annotated[VideoSize, Query(description="pixels per panel (square)")] = VideoSize.medium,
                    ) -> FileResponse:
        job = await run_in_threadpool(videos.locate, clip_id, view, int(size))
        if not job.path.is_file():
            # the render thread; shielded: a client that goes away does not cancel a render others may wait for
            await asyncio.shield(asyncio.wrap_future(videos.submit(job)))
        return FileResponse(job.path, media_type="video/mp4", filename=f"clip{job.clip_id}-{job.view}-{job.size}.mp4",
                            content_disposition_type="inline")

    @app.get("/v1/genres", response_model=GenresResponse, tags=["clips"], summary="Genres with clip counts")
    def genres() -> dict[str, Any]:
        return {"genres": service.genres()}

    # --- operations ----------------------------------------------------------------------------------
    @app.get("/healthz", response_model=Health, tags=["ops"], summary="Liveness")
    def healthz() -> dict[str, Any]:
        return {"status": "ok"}

    @app.get("/readyz", response_model=Health, tags=["ops"], summary="Readiness: model and index loaded",
             responses={503: {"model": ErrorResponse, "description": "the index is empty"}})
    def readyz() -> Any:
        if len(service.engine.index) == 0:
            return error(503, "not_ready", "the index is empty: ingest clips and run `dancesearch index build`")
        return {"status": "ready", "model": service.engine.model_id, "index": service.index_info()}

    @app.get("/metrics", include_in_schema=False)
    def prometheus() -> Response:
        data, content_type = metrics.render()
        return Response(data, media_type=content_type)

    @app.post("/v1/admin/reload", response_model=Health, tags=["ops"],
              summary="Reload model, index and catalog state now (needs X-API-Key)",
              description="The server already switches to a rebuilt index or a changed catalog by itself within "
                          "`DANCESEARCH_RELOAD_CHECK_S` seconds (default 1). This route also reloads the model "
                          "(e.g. after replacing the run folder's weights). It is enabled only when the server was "
                          "started with `DANCESEARCH_API_KEY` set; send that key in the `X-API-Key` header (or as "
                          "`Authorization: Bearer KEY`).",
              responses={401: {"model": ErrorResponse, "description": "missing or wrong API key"},
                         403: {"model": ErrorResponse, "description": "no API key configured on this server"},
                         503: {"model": ErrorResponse, "description": "the new index could not be loaded"}})
    def reload(x_api_key: Annotated[str | None, Depends(API_KEY_HEADER)] = None,
               bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(BEARER)] = None) -> Any:
        if settings.api_key is None:
            auto = (f" (No reload is needed after `dancesearch ingest` or `dancesearch index build`: this server "
                    f"checks every {settings.reload_check_s:g} s and switches by itself.)"
                    if settings.reload_check_s > 0 else " (Automatic reload is off: DANCESEARCH_RELOAD_CHECK_S=0.)")
            return error(403, "forbidden", "manual reload is disabled on this server: start it with the environment "
                                           "variable DANCESEARCH_API_KEY set, then send that key in the X-API-Key "
                                           "header." + auto, "x-api-key")
        if not key_matches(presented_key(x_api_key, bearer), settings.api_key):
            return error(401, "unauthorized", "missing or wrong X-API-Key header (it must equal the server's "
                                              "DANCESEARCH_API_KEY)", "x-api-key")
        info = service.reload()
        return {"status": "reloaded", "model": service.engine.model_id, "index": info}

    def classify(texts: list[str]) -> Any:
        return in_worker(service.engine.classify)(texts)

    mount_generation(app, settings, jobs, lambda clip_id: service.engine.clip_row(clip_id), classify,
                     unavailable=generation_off, catalog_fn=lambda: service.engine.catalog)
    mount_video_jobs(app, settings, videos, video_jobs, lambda clip_id: service.engine.clip_row(clip_id))

    @app.get("/", include_in_schema=False)
    def root() -> RedirectResponse:
        return RedirectResponse("/docs")

    return app
