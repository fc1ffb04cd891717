"""Request and response models of the v1 API (the OpenAPI schema at /openapi.json is generated from these).

The response shape is the contract in docs/ARCHITECTURE.md ("Search API response"), shared with the UI.
"""
from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

MAX_K = 100
MAX_OFFSET = 1000
MAX_QUERY = 500
Split = Literal["train", "val", "test"]


class SearchBody(BaseModel):
    """``POST /v1/search``: the same fields as the GET query string; ``genre`` may be a string or a list."""

    model_config = ConfigDict(extra="forbid")

    q: str | None = Field(None, max_length=MAX_QUERY, description="what the dance looks like; omit to rank a genre")
    k: int = Field(10, ge=1, le=MAX_K)
    offset: int = Field(0, ge=0, le=MAX_OFFSET)
    genre: list[str] | str | None = Field(None, description="one genre or a list (OR-ed)")
    bpm_min: float | None = Field(None, ge=0, le=400)
    bpm_max: float | None = Field(None, ge=0, le=400)
    split: Split | None = None
    source: str | None = Field(None, max_length=64)
    include_generated: bool = Field(False, description="also return clips the generator made (catalog source "
                                                       "'generated'); left out by default")

    @field_validator("genre")
    @classmethod
    def _as_list(cls, v: list[str] | str | None) -> list[str]:
        if v is None:
            return []
        return [v] if isinstance(v, str) else list(v)


class Media(BaseModel):
    motion_npz: str
    motion_json: str
    motion_bvh: str
    audio: str | None


class Explanation(BaseModel):
    matched: list[str]
    text: str


class ClipInfo(BaseModel):
    """A clip as ``GET /v1/clips/{id}`` returns it."""

    id: int
    key: str
    genre: str | None
    bpm: float | None
    duration_s: float
    dancer: str | None
    split: str | None
    source: str | None
    caption: str | None
    captions: list[str]
    tags: dict[str, Any]
    media: Media


class SearchResult(ClipInfo):
    rank: int
    score: float
    explanation: Explanation


class QueryEcho(BaseModel):
    q: str | None
    k: int
    offset: int
    genres: list[str]
    bpm_min: float | None
    bpm_max: float | None
    split: str | None = None
    source: str | None = None
    include_generated: bool = False
    similar_to: int | None = None


class MusicSuggestion(BaseModel):
    clip_id: int
    key: str | None = None
    score: float = Field(description="the query's score against the clip (text-dance cosine)")
    genre: str | None = None
    bpm: float | None = None
    audio: str | None = Field(None, description="URL of the clip's audio")


class Proposal(BaseModel):
    """What to generate for a query the catalog cannot serve (outcome ``gap``)."""

    genre: str = Field(description="the catalog genre the text maps to (the generator's condition)")
    confidence: float = Field(description="0..1, the genre classifier's probability of that genre")
    genre_source: str = Field(description="'genre_text' (the text genre classifier) or 'centroids' (fallback)")
    music: list[MusicSuggestion] = Field(description="catalog clips whose music fits the description, best first")


class SearchResponse(BaseModel):
    query: QueryEcho
    mode: Literal["text", "genre", "similar"]
    no_match: bool = Field(description="true unless outcome is 'match' (a gap or a non-dance text, no result, "
                                       "or a best score below the threshold calibrated on the val split)")
    threshold: float | None
    outcome: Literal["match", "gap", "not_dance"] = Field(
        "match", description="match: the catalog has clips that fit; gap: a dance the catalog cannot serve well; "
                             "not_dance: the text is not about dance or movement (generation is declined)")
    outcome_reason: str | None = Field(None, description="a sentence for the user explaining the outcome")
    outcome_scores: dict[str, float] | None = Field(None, description="the query gate's probability of each outcome")
    proposal: Proposal | None = Field(None, description="for a gap: the genre and music to generate a dance with")
    expanded_query: str | None = Field(None, description="the text the model was given when dance jargon, step "
                                       "names or typos in the query were recognised (the query plus the catalog "
                                       "genre they point to); null when the query was encoded as typed")
    model: str
    took_ms: float
    total: int = Field(description="clips that satisfy the filters")
    results: list[SearchResult]


class Genre(BaseModel):
    name: str
    count: int


class GenresResponse(BaseModel):
    genres: list[Genre]


class MotionJson(BaseModel):
    fps: float
    joint_names: list[str]
    parents: list[int]
    positions: list[list[list[float]]] = Field(description="T x J x 3, metres, +y up")


class ErrorDetail(BaseModel):
    code: str
    field: str | None = None
    message: str
    clip_id: int | None = Field(None, description="media_unavailable (503): the clip whose stored file is broken")
    file: str | None = Field(None, description="media_unavailable (503): that file, relative to the workspace")
    install: str | None = Field(None, description="video_unavailable (503): what the server's operator installs")


class ErrorResponse(BaseModel):
    error: ErrorDetail


class Health(BaseModel):
    status: str
    model: str | None = None
    index: dict[str, Any] | None = None


ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorResponse, "description": "malformed request (e.g. invalid JSON)"},
    404: {"model": ErrorResponse, "description": "unknown clip id or missing media"},
    413: {"model": ErrorResponse, "description": "the request body is over the route's limit"},
    422: {"model": ErrorResponse, "description": "a parameter is out of range or unknown; `field` names it"},
}
MEDIA_ERRORS: dict[int | str, dict[str, Any]] = {
    **ERRORS,
    503: {"model": ErrorResponse, "description": "the clip's stored file is missing or broken (`clip_id`, `file`)"},
}
VIDEO_RESPONSES: dict[int | str, dict[str, Any]] = {
    **ERRORS,
    200: {"description": "the MP4 (H.264 video, AAC audio when the clip has music); Range requests get 206",
          "content": {"video/mp4": {"schema": {"type": "string", "format": "binary"}}}},
    404: {"model": ErrorResponse, "description": "unknown clip id"},
    422: {"model": ErrorResponse, "description": "`view` or `size` is not one of the listed values; `field` names it"},
    429: {"model": ErrorResponse, "description": "too many different videos are being rendered; retry after "
                                                 "`Retry-After` seconds"},
    503: {"model": ErrorResponse, "description": "`video_unavailable`: the server cannot render videos (the video "
                                                 "extra or EGL is missing; `install` says what to install); or "
                                                 "`media_unavailable`: the clip's stored file is broken (`clip_id`, "
                                                 "`file`)"},
}
