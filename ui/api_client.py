"""HTTP client for the DanceSearch search API, as the UI (or any platform) uses it.

The UI talks to the API only over HTTP, exactly as a third-party platform would, so the API's
documented contract (docs/ARCHITECTURE.md, "Search API response") is the only coupling between
the two. This module turns transport problems into three error types the UI can show plainly:

- :class:`ApiUnreachable`: nothing answers at the URL (connection refused, DNS, timeout);
- :class:`ApiRequestError`: the API rejected the request (4xx, with the API's error code and field);
- :class:`ApiServerError`: the API failed (5xx) or answered something that is not the contract.

Connections are kept alive between requests (Streamlit reruns reuse this client).  A server closes
an idle connection after its keep-alive timeout; if it does so just as a request goes out on that
connection, the request is lost (``httpx.RemoteProtocolError`` / ``ReadError``).  Two defences:
this client lets idle connections expire after ``keepalive_expiry_s`` (30 s), below the server's
keep-alive (``dancesearch serve --keep-alive``, 75 s by default), so it is normally the client that
closes first; and an idempotent request (every GET, and ``DELETE /v1/jobs/{id}``) dropped on a connection
is sent once more (on a fresh connection) before anything is reported.  ``POST /v1/generate`` is not
idempotent (the server may have queued the job before the connection died), so it is never resent: the
failure is reported and the user decides.

Videos (issue 16): :meth:`ApiClient.video` fetches a clip's rendered MP4 (``GET /v1/clips/{id}/video``, the
first request waits for the render, hence its own ``video_timeout_s``) and :meth:`ApiClient.prepare_video`
has it rendered and returns its URL for a browser that reaches the API; a server without the video extra
answers :class:`ApiServerError` with ``code == "video_unavailable"``.

Generation (issue 15): :meth:`ApiClient.generate` (JSON, music = a catalog clip) and
:meth:`ApiClient.generate_upload` (multipart/form-data with the ``audio`` file) start a job;
:meth:`ApiClient.job` polls it and :meth:`ApiClient.cancel_job` cancels it.  Write routes need the API
key when the server has one: the client sends ``ApiClientSettings.api_key`` as ``X-API-Key`` on POST and
DELETE only (never on reads, never to another host).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import httpx

from encoders.errors import DanceSearchError

DEFAULT_API_URL = "http://127.0.0.1:8000"
API_KEY_HEADER = "X-API-Key"
JOB_STATES = ("queued", "running", "done", "failed", "cancelled")
JOB_FINAL_STATES = ("done", "failed", "cancelled")
VIDEO_VIEWS = ("body", "pose", "grid", "side-by-side")   # GET /v1/clips/{id}/video?view=
VIDEO_SIZES = (128, 256, 512)                            # ... &size= (pixels per panel)


# --- errors -----------------------------------------------------------------------------------------
class ApiError(DanceSearchError):
    """Any failure to get a usable answer from the search API."""


class ApiUnreachable(ApiError):
    """No server answers at the API URL (it is down, the URL is wrong, or it timed out)."""

    def __init__(self, base_url: str, reason: str) -> None:
        self.base_url = base_url
        self.reason = reason
        super().__init__(f"search API at {base_url} is unreachable: {reason}")


class ApiRequestError(ApiError):
    """The API rejected the request (HTTP 4xx); ``code`` / ``field`` come from its error body."""

    def __init__(self, status: int, code: str, message: str, field: str | None = None,
                 retry_after: float | None = None) -> None:
        self.status = status
        self.code = code
        self.field = field
        self.message = message
        self.retry_after = retry_after   # 429 (generation queue full): the server's Retry-After, in seconds
        where = f" (field '{field}')" if field else ""
        super().__init__(f"the search API rejected the request: {message}{where} [HTTP {status}, {code}]")


class ApiServerError(ApiError):
    """The API failed (HTTP 5xx) or its answer does not follow the documented shape; ``status`` and ``code``
    (the error body's, e.g. 503 ``video_unavailable``) are set when the API answered with an error status."""

    def __init__(self, message: str, status: int | None = None, code: str | None = None) -> None:
        self.status = status
        self.code = code
        super().__init__(message)


# --- settings and response types --------------------------------------------------------------------
@dataclass(frozen=True)
class ApiClientSettings:
    """Where the API is and how long to wait: searches must feel instant, media may take longer."""

    base_url: str = DEFAULT_API_URL
    search_timeout_s: float = 10.0
    media_timeout_s: float = 30.0
    connect_timeout_s: float = 2.0
    keepalive_expiry_s: float = 30.0  # below the server's keep-alive (75 s by default): the client closes first
    retries_on_dropped_connection: int = 1  # GETs are idempotent: resend one the server dropped unanswered
    generate_timeout_s: float = 120.0   # POST /v1/generate: an upload of up to 20 MiB, checked before queueing
    video_timeout_s: float = 180.0      # GET /v1/clips/{id}/video: the first request renders it (seconds to a minute)
    api_key: str | None = field(default=None, repr=False)   # sent as X-API-Key on write routes (generate, cancel)


@dataclass(frozen=True)
class SearchRequest:
    """The fields of ``GET /v1/search``; ``genres`` is repeatable, bpm bounds are optional."""

    q: str = ""
    k: int = 10
    offset: int = 0
    genres: tuple[str, ...] = ()
    bpm_min: float | None = None
    bpm_max: float | None = None
    split: str | None = None
    include_generated: bool = False

    def to_params(self) -> list[tuple[str, str]]:
        """Query parameters as a list of pairs so ``genre`` can repeat."""
        params: list[tuple[str, str]] = [("q", self.q), ("k", str(self.k)), ("offset", str(self.offset))]
        params += [("genre", g) for g in self.genres]
        if self.bpm_min is not None:
            params.append(("bpm_min", _num(self.bpm_min)))
        if self.bpm_max is not None:
            params.append(("bpm_max", _num(self.bpm_max)))
        if self.split:
            params.append(("split", self.split))
        if self.include_generated:
            params.append(("include_generated", "true"))
        return params


@dataclass(frozen=True)
class ClipResult:
    """One clip as the API describes it (a search hit, or ``GET /v1/clips/{id}`` without rank/score)."""

    id: int
    key: str
    rank: int | None = None
    score: float | None = None
    genre: str | None = None
    bpm: float | None = None
    duration_s: float | None = None
    dancer: str | None = None
    split: str | None = None
    caption: str = ""
    captions: tuple[str, ...] = ()
    tags: Mapping[str, Any] = field(default_factory=dict)
    media: Mapping[str, str] = field(default_factory=dict)
    explanation: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> "ClipResult":
        try:
            return cls(
                id=int(d["id"]), key=str(d.get("key", d["id"])),
                rank=_opt_int(d.get("rank")), score=_opt_float(d.get("score")),
                genre=d.get("genre"), bpm=_opt_float(d.get("bpm")), duration_s=_opt_float(d.get("duration_s")),
                dancer=d.get("dancer"), split=d.get("split"), caption=str(d.get("caption") or ""),
                captions=tuple(str(c) for c in (d.get("captions") or ())),
                tags=dict(d.get("tags") or {}), media=dict(d.get("media") or {}),
                explanation=dict(d.get("explanation") or {}),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ApiServerError(f"the search API returned a malformed clip: {exc!r}") from exc


@dataclass(frozen=True)
class MusicSuggestion:
    """A catalog clip whose music fits a gap query (``proposal.music[i]``)."""

    clip_id: int
    score: float | None = None
    key: str | None = None
    genre: str | None = None
    bpm: float | None = None
    audio: str | None = None      # the clip's audio path (relative to the API URL)

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> "MusicSuggestion":
        return cls(clip_id=int(d["clip_id"]), score=_opt_float(d.get("score")), key=_opt_str(d.get("key")),
                   genre=_opt_str(d.get("genre")), bpm=_opt_float(d.get("bpm")), audio=_opt_str(d.get("audio")))


@dataclass(frozen=True)
class Proposal:
    """What to generate for a gap query: the genre the text maps to and music that fits it."""

    genre: str
    confidence: float | None = None
    genre_source: str | None = None
    music: tuple[MusicSuggestion, ...] = ()

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> "Proposal":
        try:
            return cls(genre=str(d["genre"]), confidence=_opt_float(d.get("confidence")),
                       genre_source=_opt_str(d.get("genre_source")),
                       music=tuple(MusicSuggestion.from_json(m) for m in (d.get("music") or ())))
        except (KeyError, TypeError, ValueError) as exc:
            raise ApiServerError(f"the search API returned a malformed proposal: {exc!r}") from exc


OUTCOMES = ("match", "gap", "not_dance")


@dataclass(frozen=True)
class SearchResponse:
    """The search shape shared by ``/v1/search`` and ``/v1/clips/{id}/similar``.

    ``outcome`` (issue 15): ``match`` (the catalog has clips that fit), ``gap`` (a dance the catalog cannot
    serve well; ``proposal`` says what to generate) or ``not_dance``; an API without the field reads as
    ``match`` with the old ``no_match`` flag."""

    results: tuple[ClipResult, ...]
    query: Mapping[str, Any] = field(default_factory=dict)
    mode: str = "text"
    no_match: bool = False
    threshold: float | None = None
    model: str | None = None
    took_ms: float | None = None
    outcome: str = "match"
    outcome_reason: str | None = None
    outcome_scores: Mapping[str, float] | None = None
    proposal: Proposal | None = None
    expanded_query: str | None = None    # what the model searched for when the query's jargon was recognised

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> "SearchResponse":
        if not isinstance(d, Mapping) or not isinstance(d.get("results"), list):
            raise ApiServerError("the search API answer has no 'results' list")
        outcome = str(d.get("outcome") or "match")
        if outcome not in OUTCOMES:
            raise ApiServerError(f"the search API returned an unknown outcome {outcome!r}")
        scores = d.get("outcome_scores")
        try:
            scores = None if scores is None else {str(k): float(v) for k, v in dict(scores).items()}
        except (TypeError, ValueError) as exc:
            raise ApiServerError(f"the search API returned malformed outcome scores: {exc!r}") from exc
        proposal = d.get("proposal")
        if proposal is not None and not isinstance(proposal, Mapping):
            raise ApiServerError("the search API returned a proposal that is not an object")
        return cls(
            results=tuple(ClipResult.from_json(r) for r in d["results"]),
            query=dict(d.get("query") or {}), mode=str(d.get("mode") or "text"),
            no_match=bool(d.get("no_match", False)), threshold=_opt_float(d.get("threshold")),
            model=d.get("model"), took_ms=_opt_float(d.get("took_ms")),
            outcome=outcome, outcome_reason=_opt_str(d.get("outcome_reason")), outcome_scores=scores,
            proposal=None if proposal is None else Proposal.from_json(proposal),
            expanded_query=_opt_str(d.get("expanded_query")),
        )


# --- generation -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class GenerateRequest:
    """The fields of ``POST /v1/generate`` (the music is a catalog ``clip_id`` or an uploaded file)."""

    text: str | None = None
    genre: str | None = None
    clip_id: int | None = None
    seconds: float | None = None
    seed: int | None = None
    candidates: int = 1
    steps: int | None = None
    guidance: float | None = None

    def fields(self) -> dict[str, Any]:
        """The fields that are set (the server fills in its defaults for the others)."""
        out: dict[str, Any] = {}
        for name in ("text", "genre", "clip_id", "seconds", "seed", "candidates", "steps", "guidance"):
            value = getattr(self, name)
            if value is not None and value != "":
                out[name] = value
        return out


@dataclass(frozen=True)
class GeneratedClip:
    """One generated dance of a finished job (``result.clips[i]``): a catalog clip of source ``generated``."""

    id: int
    key: str
    candidate: int = 0
    seed: int | None = None
    genre: str | None = None
    duration_s: float | None = None
    media: Mapping[str, str | None] = field(default_factory=dict)
    provenance: str | None = None

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> "GeneratedClip":
        return cls(id=int(d["id"]), key=str(d.get("key", d["id"])), candidate=int(d.get("candidate") or 0),
                   seed=_opt_int(d.get("seed")), genre=_opt_str(d.get("genre")),
                   duration_s=_opt_float(d.get("duration_s")), media=dict(d.get("media") or {}),
                   provenance=_opt_str(d.get("provenance")))

    def as_clip(self) -> ClipResult:
        """The clip in the search-result shape, for the player and the download buttons."""
        return ClipResult(id=self.id, key=self.key, genre=self.genre, duration_s=self.duration_s,
                          media={k: v for k, v in self.media.items() if v}, split="gen")


@dataclass(frozen=True)
class JobResult:
    clips: tuple[GeneratedClip, ...]
    genre: str | None = None
    genre_source: str | None = None
    genre_confidence: float | None = None
    model_id: str | None = None
    seconds: float | None = None


@dataclass(frozen=True)
class Job:
    """``GET /v1/jobs/{id}``: a generation job's state, progress (0..1), stage, result or error."""

    id: str
    state: str
    progress: float = 0.0
    stage: str | None = None
    result: JobResult | None = None
    error_code: str | None = None
    error_message: str | None = None
    cancel_requested: bool = False
    params: Mapping[str, Any] = field(default_factory=dict)

    @property
    def finished(self) -> bool:
        return self.state in JOB_FINAL_STATES

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> "Job":
        try:
            state = str(d["state"])
            if state not in JOB_STATES:
                raise ValueError(f"unknown state {state!r}")
            res = d.get("result")
            result = None
            if res:
                result = JobResult(clips=tuple(GeneratedClip.from_json(c) for c in res.get("clips") or ()),
                                   genre=_opt_str(res.get("genre")), genre_source=_opt_str(res.get("genre_source")),
                                   genre_confidence=_opt_float(res.get("genre_confidence")),
                                   model_id=_opt_str(res.get("model_id")), seconds=_opt_float(res.get("seconds")))
            err = d.get("error") or {}
            return cls(id=str(d["id"]), state=state, progress=min(1.0, max(0.0, float(d.get("progress") or 0.0))),
                       stage=_opt_str(d.get("stage")), result=result,
                       error_code=_opt_str(err.get("code")), error_message=_opt_str(err.get("message")),
                       cancel_requested=bool(d.get("cancel_requested", False)), params=dict(d.get("params") or {}))
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ApiServerError(f"the search API returned a malformed job: {exc!r}") from exc


@dataclass(frozen=True)
class Media:
    """Bytes of one media file and its content type (for data: URLs and downloads)."""

    content: bytes
    content_type: str


# --- client -----------------------------------------------------------------------------------------
class ApiClient:
    """Synchronous httpx client; one per API URL, reused across Streamlit reruns (keeps connections)."""

    def __init__(self, settings: ApiClientSettings | str = ApiClientSettings(),
                 transport: httpx.BaseTransport | None = None) -> None:
        if isinstance(settings, str):
            settings = ApiClientSettings(base_url=settings)
        self.settings = settings
        self.base_url = settings.base_url.rstrip("/")
        self._http = httpx.Client(base_url=self.base_url, transport=transport,
                                  timeout=httpx.Timeout(settings.search_timeout_s, connect=settings.connect_timeout_s),
                                  limits=httpx.Limits(keepalive_expiry=settings.keepalive_expiry_s))

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> "ApiClient":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- endpoints ---
    def search(self, request: SearchRequest) -> SearchResponse:
        return SearchResponse.from_json(self._get_json("/v1/search", params=request.to_params()))

    def similar(self, clip_id: int, k: int = 10) -> SearchResponse:
        return SearchResponse.from_json(self._get_json(f"/v1/clips/{int(clip_id)}/similar", params=[("k", str(k))]))

    def clip(self, clip_id: int) -> ClipResult:
        return ClipResult.from_json(self._get_json(f"/v1/clips/{int(clip_id)}"))

    def genres(self) -> list[tuple[str, int]]:
        """``(name, count)`` pairs, most frequent first as the API sends them."""
        body = self._get_json("/v1/genres")
        try:
            return [(str(g["name"]), int(g.get("count", 0))) for g in body["genres"]]
        except (KeyError, TypeError, ValueError) as exc:
            raise ApiServerError(f"the search API returned malformed genres: {exc!r}") from exc

    def motion_json(self, clip_id: int) -> dict[str, Any]:
        """``{"fps", "joint_names", "parents", "positions"}`` of one clip, for the player."""
        body = self._get_json(f"/v1/clips/{int(clip_id)}/motion", params=[("format", "json")],
                              timeout=self.settings.media_timeout_s)
        for key in ("fps", "joint_names", "parents", "positions"):
            if key not in body:
                raise ApiServerError(f"motion of clip {clip_id} lacks '{key}'")
        return body

    def media(self, path: str) -> Media:
        """Fetch a media path from a result's ``media`` dict (relative to the API URL, or absolute)."""
        resp = self._request(path, timeout=self.settings.media_timeout_s)
        return Media(resp.content, resp.headers.get("content-type", "application/octet-stream").split(";")[0])

    def video(self, clip_id: int, view: str = "side-by-side", size: int = 256) -> Media:
        """The clip's rendered MP4 (``GET /v1/clips/{id}/video``); the first request for a video waits for the
        server to render it. A server without the video extra answers :class:`ApiServerError` with ``code``
        ``video_unavailable`` (its message names the install)."""
        resp = self._request(video_path(clip_id, view, size), timeout=self.settings.video_timeout_s)
        return Media(resp.content, resp.headers.get("content-type", "application/octet-stream").split(";")[0])

    def prepare_video(self, clip_id: int, view: str = "side-by-side", size: int = 256) -> str:
        """Have the server render (or find) the clip's video, reading one byte of it; its absolute URL, for a
        browser that reaches the API itself. Errors as :meth:`video`."""
        path = video_path(clip_id, view, size)
        self._request(path, timeout=self.settings.video_timeout_s, headers={"Range": "bytes=0-0"})
        return self.absolute(path)

    def create_video(self, clip_id: int, *, view: str = "dancer-side-by-side", size: int = 256, seconds: float = 10.0,
                     photo: bytes | None = None, photo_name: str = "photo.jpg",
                     content_type: str | None = None) -> dict[str, Any]:
        """``POST /v1/videos``: a video job for a clip (multipart with the reference ``photo`` for the dancer
        views); the queued job record (poll :meth:`video_job`). A photo without a person is
        :class:`ApiRequestError` 422 with ``code`` ``invalid_photo``."""
        fields = {"clip_id": int(clip_id), "view": view, "size": int(size), "seconds": float(seconds)}
        if photo is None:
            return self._write_json("POST", "/v1/videos", json=fields)
        files = {"photo": (photo_name or "photo", photo, content_type or "application/octet-stream")}
        return self._write_json("POST", "/v1/videos", data={k: str(v) for k, v in fields.items()}, files=files)

    def video_job(self, job_id: str) -> dict[str, Any]:
        """``GET /v1/videos/{id}``: state, progress, stage, result or error of a video job."""
        body = self._get_json(f"/v1/videos/{_job_id(job_id)}")
        if not isinstance(body, dict) or body.get("state") not in JOB_STATES:
            raise ApiServerError(f"the search API returned a malformed video job {job_id}")
        return body

    def video_job_file(self, job_id: str) -> Media:
        """The finished video job's MP4 (``GET /v1/videos/{id}/file``)."""
        resp = self._request(f"/v1/videos/{_job_id(job_id)}/file", timeout=self.settings.video_timeout_s)
        return Media(resp.content, resp.headers.get("content-type", "application/octet-stream").split(";")[0])

    def generate(self, request: GenerateRequest) -> Job:
        """``POST /v1/generate`` (JSON; the music is ``request.clip_id``): the queued job."""
        return Job.from_json(self._write_json("POST", "/v1/generate", json=request.fields()))

    def generate_upload(self, request: GenerateRequest, audio: bytes, filename: str,
                        content_type: str | None = None) -> Job:
        """``POST /v1/generate`` as multipart/form-data with the music as the ``audio`` file."""
        data = {k: str(v) for k, v in request.fields().items() if k != "clip_id"}
        files = {"audio": (filename or "music", audio, content_type or "application/octet-stream")}
        return Job.from_json(self._write_json("POST", "/v1/generate", data=data, files=files))

    def job(self, job_id: str) -> Job:
        """``GET /v1/jobs/{id}`` (poll it until :attr:`Job.finished`)."""
        return Job.from_json(self._get_json(f"/v1/jobs/{_job_id(job_id)}"))

    def cancel_job(self, job_id: str) -> Job:
        """``DELETE /v1/jobs/{id}``: a queued job is cancelled at once, a running one at its next step."""
        return Job.from_json(self._write_json("DELETE", f"/v1/jobs/{_job_id(job_id)}", idempotent=True))

    def provenance(self, clip_id: int) -> dict[str, Any]:
        """``GET /v1/clips/{id}/provenance`` of a generated clip (model id, seed, parameters, music origin)."""
        body = self._get_json(f"/v1/clips/{int(clip_id)}/provenance")
        if not isinstance(body, dict):
            raise ApiServerError(f"the search API returned a malformed provenance for clip {clip_id}")
        return body

    def absolute(self, path: str) -> str:
        """The full URL of an API path (what a browser would open)."""
        return path if path.startswith(("http://", "https://")) else f"{self.base_url}{path}"

    # --- transport ---
    def _get_json(self, path: str, params: Sequence[tuple[str, str]] | None = None,
                  timeout: float | None = None) -> Any:
        resp = self._request(path, params=params, timeout=timeout)
        try:
            return resp.json()
        except ValueError as exc:
            raise ApiServerError(f"the search API answered {path} with something that is not JSON") from exc

    def _request(self, path: str, params: Sequence[tuple[str, str]] | None = None,
                 timeout: float | None = None, headers: Mapping[str, str] | None = None) -> httpx.Response:
        # no ``params`` at all when there are none: httpx would replace the query string of a media path
        # (``/v1/clips/3/motion?format=bvh``) with an empty one, and the download would be the JSON default
        kwargs: dict[str, Any] = {"params": list(params)} if params else {}
        if headers:
            kwargs["headers"] = dict(headers)
        if timeout is not None:
            kwargs["timeout"] = httpx.Timeout(timeout, connect=self.settings.connect_timeout_s)
        try:
            resp = self._get(path, kwargs)
        except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
            raise ApiUnreachable(self.base_url, "connection refused or host not found") from exc
        except httpx.TimeoutException as exc:
            raise ApiUnreachable(self.base_url, f"no answer within the timeout ({type(exc).__name__})") from exc
        except httpx.TransportError as exc:
            raise ApiUnreachable(self.base_url, str(exc) or type(exc).__name__) from exc
        if 400 <= resp.status_code < 500:
            raise _request_error(resp)
        if resp.status_code >= 500:
            raise ApiServerError(f"the search API failed on {path} (HTTP {resp.status_code})" + _server_message(resp),
                                 status=resp.status_code, code=_error_code(resp))
        return resp

    def _write_json(self, method: str, path: str, idempotent: bool = False, **kwargs: Any) -> Any:
        """POST / DELETE with the API key; only an ``idempotent`` one is resent after a dropped connection."""
        headers = {API_KEY_HEADER: self.settings.api_key} if self.settings.api_key else {}
        timeout = httpx.Timeout(self.settings.generate_timeout_s, connect=self.settings.connect_timeout_s)
        attempts = 1 + (max(0, self.settings.retries_on_dropped_connection) if idempotent else 0)
        try:
            for attempt in range(attempts):
                try:
                    resp = self._http.request(method, path, headers=headers, timeout=timeout, **kwargs)
                    break
                except httpx.TransportError as exc:
                    if attempt + 1 >= attempts or not _dropped(exc):
                        raise
        except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
            raise ApiUnreachable(self.base_url, "connection refused or host not found") from exc
        except httpx.TimeoutException as exc:
            raise ApiUnreachable(self.base_url, f"no answer within the timeout ({type(exc).__name__})") from exc
        except httpx.TransportError as exc:
            raise ApiUnreachable(self.base_url, str(exc) or type(exc).__name__) from exc
        if 400 <= resp.status_code < 500:
            raise _request_error(resp)
        if resp.status_code >= 500:
            raise ApiServerError(f"the search API failed on {method} {path} (HTTP {resp.status_code})"
                                 + _server_message(resp), status=resp.status_code, code=_error_code(resp))
        try:
            return resp.json()
        except ValueError as exc:
            raise ApiServerError(f"the search API answered {method} {path} with something that is not JSON") from exc

    def _get(self, path: str, kwargs: dict[str, Any]) -> httpx.Response:
        """GET, resent when the connection dropped without an answer (see the module docstring)."""
        attempts = 1 + max(0, self.settings.retries_on_dropped_connection)
        for attempt in range(attempts):
            try:
                return self._http.get(path, **kwargs)
            except httpx.TransportError as exc:
                if attempt + 1 >= attempts or not _dropped(exc):
                    raise
        raise AssertionError("unreachable")


def _dropped(exc: httpx.TransportError) -> bool:
    """Whether ``exc`` means the connection died under a request that was sent (not a timeout, not a refusal)."""
    return isinstance(exc, (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError))


def _request_error(resp: httpx.Response) -> ApiRequestError:
    """Read the documented ``{"error": {code, field, message}}`` body, tolerating FastAPI's default one."""
    code, field_name, message = "http_error", None, resp.reason_phrase or f"HTTP {resp.status_code}"
    try:
        body = resp.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        err = body["error"]
        code = str(err.get("code") or code)
        field_name = err.get("field")
        message = str(err.get("message") or message)
    elif isinstance(body, dict) and "detail" in body:
        message = str(body["detail"])
    retry_after = None
    if resp.headers.get("retry-after"):
        try:
            retry_after = float(resp.headers["retry-after"])
        except ValueError:
            retry_after = None
    return ApiRequestError(resp.status_code, code, message, field_name, retry_after=retry_after)


def _server_message(resp: httpx.Response) -> str:
    """": message" of a 5xx's documented error body (e.g. 503 generation_unavailable), or nothing."""
    try:
        err = resp.json().get("error")
    except (ValueError, AttributeError):
        return ""
    return f": {err['message']}" if isinstance(err, dict) and err.get("message") else ""


def _error_code(resp: httpx.Response) -> str | None:
    """The ``code`` of a documented error body, or None."""
    try:
        err = resp.json().get("error")
    except (ValueError, AttributeError):
        return None
    return str(err["code"]) if isinstance(err, dict) and err.get("code") else None


def video_path(clip_id: int, view: str = "side-by-side", size: int = 256) -> str:
    """``/v1/clips/{id}/video?view=..&size=..`` (relative to the API URL); ``ApiRequestError`` (422, naming the
    field) for a view or size the API does not offer, before anything is sent."""
    if view not in VIDEO_VIEWS:
        raise ApiRequestError(422, "invalid_parameter", f"unknown view {view!r} (one of {', '.join(VIDEO_VIEWS)})",
                              "view")
    if int(size) not in VIDEO_SIZES:
        raise ApiRequestError(422, "invalid_parameter", f"size must be one of {VIDEO_SIZES}, got {size}", "size")
    return f"/v1/clips/{int(clip_id)}/video?view={view}&size={int(size)}"


_JOB_ID = re.compile(r"^[0-9a-f]{32}$")


def _job_id(job_id: str) -> str:
    """A job id as the API makes them (32 hex digits): anything else never goes into a URL path."""
    if not _JOB_ID.match(str(job_id)):
        raise ApiRequestError(422, "invalid_parameter", f"not a job id: {job_id!r}", "job_id")
    return str(job_id)


def _opt_str(x: Any) -> str | None:
    return None if x is None else str(x)


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else f"{x:g}"


def _opt_float(x: Any) -> float | None:
    return None if x is None else float(x)


def _opt_int(x: Any) -> int | None:
    return None if x is None else int(x)
