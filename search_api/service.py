"""The HTTP-facing service: the shared SearchEngine plus media URLs, media rendering, hot reload and
the query-embedding cache shared across reloads.

Ranking, filtering and explanations live in ``indexer.index.service`` (also used by the CLI);
this module only adds what is specific to serving over HTTP.  Searches arrive either one at a
time (:meth:`ApiService.search`) or as a micro-batch from ``batching.MicroBatcher``
(:meth:`ApiService.search_many`).
"""
from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from encoders.motion.bvh_write import motion_bvh
from encoders.motion.record import MotionRecord
from indexer.index.embedder import TextEmbeddingCache
from indexer.index.service import SearchEngine, SearchRequest

from .media import MOTION_FORMATS, MediaError, audio_media_type, contained_path, motion_json_bytes


def media_urls(clip_id: int, has_audio: bool) -> dict[str, str | None]:
    base = f"/v1/clips/{clip_id}"
    return {"motion_npz": f"{base}/motion?format=npz", "motion_json": f"{base}/motion?format=json",
            "motion_bvh": f"{base}/motion?format=bvh", "audio": f"{base}/audio" if has_audio else None}


def _with_media(item: dict[str, Any]) -> dict[str, Any]:
    item = dict(item)
    item["media"] = media_urls(item["id"], bool(item.pop("has_audio", False)))
    return item


class ApiService:
    """Holds the live engine; ``reload`` swaps in a freshly loaded one without blocking readers."""

    def __init__(self, engine: SearchEngine, loader: Any = None, text_cache: TextEmbeddingCache | None = None) -> None:
        self.text_cache = text_cache
        self._engine = self._with_cache(engine)
        self._loader = loader
        self._reload_lock = threading.Lock()

    def _with_cache(self, engine: SearchEngine) -> SearchEngine:
        """The engine, using this service's embedding cache unless it was given its own."""
        if self.text_cache is not None and getattr(engine, "text_cache", None) is None:
            engine.text_cache = self.text_cache
        return engine

    @property
    def engine(self) -> SearchEngine:
        return self._engine

    def reload(self) -> dict[str, Any]:
        if self._loader is None:
            raise RuntimeError("this server was started without a loader; restart it instead")
        with self._reload_lock:
            fresh = self._with_cache(self._loader())
            self._engine = fresh  # one reference assignment: requests in flight keep the old engine
        return self.index_info()

    def index_info(self) -> dict[str, Any]:
        m = self._engine.loaded.manifest
        return {"backend": m.get("backend"), "kind": m.get("kind"), "count": m.get("count"),
                "generation": m.get("generation"), "updated_at": m.get("updated_at"),
                "threshold": self._engine.threshold,
                "text_encoder": getattr(self._engine.embedder, "text_encoder", "full")}

    # --- search ------------------------------------------------------------------------------------
    def validate(self, q: str | None, k: int, offset: int, genres: list[str], bpm_min: float | None,
                 bpm_max: float | None, split: str | None, source: str | None) -> SearchRequest:
        """A validated request (raises InputError naming the field): cheap, done before queueing."""
        return self._engine.validate(q, k, offset, genres, bpm_min, bpm_max, split, source)

    def search(self, q: str | None, k: int, offset: int, genres: list[str], bpm_min: float | None,
               bpm_max: float | None, split: str | None, source: str | None) -> dict[str, Any]:
        return self.search_one(self.validate(q, k, offset, genres, bpm_min, bpm_max, split, source))

    def search_one(self, req: SearchRequest) -> dict[str, Any]:
        body = self._engine.search(req)
        body["results"] = [_with_media(r) for r in body["results"]]
        return body

    def search_many(self, requests: list[SearchRequest]) -> list[dict[str, Any] | Exception]:
        """Bodies (with media URLs) of a batch, or per request the exception it raised alone."""
        out = self._engine.search_many(requests)  # one engine for the whole batch, even during a reload
        for body in out:
            if isinstance(body, dict):
                body["results"] = [_with_media(r) for r in body["results"]]
        return out

    def similar(self, clip_id: int, k: int, offset: int) -> dict[str, Any]:
        body = self._engine.similar(clip_id, k, offset)
        body["results"] = [_with_media(r) for r in body["results"]]
        return body

    def clip(self, clip_id: int) -> dict[str, Any]:
        return _with_media(self._engine.clip(clip_id))

    def genres(self) -> list[dict[str, Any]]:
        return self._engine.genres()

    # --- media -------------------------------------------------------------------------------------
    def motion(self, clip_id: int, fmt: str) -> tuple[Path | bytes, str, str]:
        """(file path or bytes, media type, download file name) of a clip's motion in ``fmt``."""
        if fmt not in MOTION_FORMATS:
            raise ValueError(fmt)
        clip = self._engine.clip_row(clip_id)
        path = contained_path(self._engine.workspace.home, clip.motion_path, "motion")
        stem = clip.key.replace("/", "_").replace("#", "_")
        if fmt == "npz":
            return path, "application/octet-stream", f"{stem}.npz"
        record = MotionRecord.load(path)
        if fmt == "json":
            return motion_json_bytes(record), "application/json", f"{stem}.json"
        return motion_bvh(record).encode(), "text/plain; charset=utf-8", f"{stem}.bvh"

    def audio(self, clip_id: int) -> tuple[Path, str]:
        clip = self._engine.clip_row(clip_id)
        if not clip.audio_path:
            raise MediaError(f"clip {clip_id} has no audio (its source has none)")
        path = contained_path(self._engine.workspace.home, clip.audio_path, "audio")
        return path, audio_media_type(path)
