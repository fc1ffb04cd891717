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
closes first; and every request here is an idempotent GET, so one dropped on a connection is sent
once more (on a fresh connection) before anything is reported.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import httpx

from encoders.errors import DanceSearchError

DEFAULT_API_URL = "http://127.0.0.1:8000"


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

    def __init__(self, status: int, code: str, message: str, field: str | None = None) -> None:
        self.status = status
        self.code = code
        self.field = field
        self.message = message
        where = f" (field '{field}')" if field else ""
        super().__init__(f"the search API rejected the request: {message}{where} [HTTP {status}, {code}]")


class ApiServerError(ApiError):
    """The API failed (HTTP 5xx) or its answer does not follow the documented shape."""


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
class SearchResponse:
    """The search shape shared by ``/v1/search`` and ``/v1/clips/{id}/similar``."""

    results: tuple[ClipResult, ...]
    query: Mapping[str, Any] = field(default_factory=dict)
    mode: str = "text"
    no_match: bool = False
    threshold: float | None = None
    model: str | None = None
    took_ms: float | None = None

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> "SearchResponse":
        if not isinstance(d, Mapping) or not isinstance(d.get("results"), list):
            raise ApiServerError("the search API answer has no 'results' list")
        return cls(
            results=tuple(ClipResult.from_json(r) for r in d["results"]),
            query=dict(d.get("query") or {}), mode=str(d.get("mode") or "text"),
            no_match=bool(d.get("no_match", False)), threshold=_opt_float(d.get("threshold")),
            model=d.get("model"), took_ms=_opt_float(d.get("took_ms")),
        )


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
                 timeout: float | None = None) -> httpx.Response:
        kwargs: dict[str, Any] = {"params": list(params or [])}
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
            raise ApiServerError(f"the search API failed on {path} (HTTP {resp.status_code})")
        return resp

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
    return ApiRequestError(resp.status_code, code, message, field_name)


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else f"{x:g}"


def _opt_float(x: Any) -> float | None:
    return None if x is None else float(x)


def _opt_int(x: Any) -> int | None:
    return None if x is None else int(x)
