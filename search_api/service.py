"""The HTTP-facing service: the shared SearchEngine plus media URLs, media rendering, reloads and
the query-embedding cache shared across reloads.

Ranking, filtering and explanations live in ``indexer.index.service`` (also used by the CLI);
this module only adds what is specific to serving over HTTP.  Searches arrive either one at a
time (:meth:`ApiService.search`) or as a micro-batch from ``batching.MicroBatcher``
(:meth:`ApiService.search_many`).

State changes (see ``search_api.live``): :meth:`ApiService.refresh` (called about once a second by
the app's change watcher) notices a new index generation or a catalog change and swaps in a new
engine; :meth:`ApiService.reload` (``POST /v1/admin/reload``) also reloads the model.  Either builds
the new engine completely, then replaces ONE reference: a request reads ``self.engine`` once and is
answered from that state alone.
"""
from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from encoders.motion.bvh_write import motion_bvh
from encoders.motion.record import MotionRecord
from indexer.index.embedder import TextEmbeddingCache
from indexer.index.filters import ClipFilter
from indexer.index.service import SearchEngine, SearchRequest

from .live import Consistency, Signature, consistent_engine
from .media import (MOTION_FORMATS, MediaChecker, MediaError, MediaUnavailable, audio_media_type, contained_path,
                    motion_json_bytes)

log = logging.getLogger("dancesearch.api")


def media_urls(clip_id: int, has_audio: bool) -> dict[str, str | None]:
    base = f"/v1/clips/{clip_id}"
    return {"motion_npz": f"{base}/motion?format=npz", "motion_json": f"{base}/motion?format=json",
            "motion_bvh": f"{base}/motion?format=bvh", "audio": f"{base}/audio" if has_audio else None}


def _with_media(item: dict[str, Any]) -> dict[str, Any]:
    item = dict(item)
    item["media"] = media_urls(item["id"], bool(item.pop("has_audio", False)))
    return item


MUSIC_SUGGESTIONS = 5


class GenreProposer:
    """Genre and music for a gap query (the ``proposal`` of a search whose outcome is ``gap``).

    Genre: ``generation.genre.GenreClassifier`` (models/genre_text, the frozen text backbone + head trained
    on the corpus captions), loaded on the first gap and kept; when it cannot load, or names a genre this
    index does not hold, the genre whose clip centroid is closest to the query vector (softmax of the
    centroid scores as confidence).  Only gap searches pay for it (one backbone pass, a few ms).

    Music: the catalog clips *of the proposed genre* (with audio, generated clips left out) ranked by the
    query's score against each clip, i.e. by the trained encoders.  Why this and not a music-only score:
    the clip embedding blends motion and music, and the demo model's music-only path was never trained to
    align with text on its own (``TrainConfig.unimodal_loss_weight`` is off: no measured gain,
    docs/results/retrieval_demo.md), so its scores are not a reliable "music fits" signal; restricting
    to the proposed genre keeps the music's genre traits (drum pattern, scale, tempo range) consistent with
    the genre the generator is conditioned on, and within it the blended score prefers the clips whose
    tempo, energy, mood and instrument (music-realised attributes) fit the words of the description.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._classifier: Any = None
        self._failed = False

    def _genre_classifier(self) -> Any:
        with self._lock:
            if self._classifier is None and not self._failed:
                try:
                    from generation.genre import GenreClassifier

                    self._classifier = GenreClassifier.from_pretrained()
                except Exception as exc:  # noqa: BLE001 - fall back to the centroids
                    self._failed = True
                    log.warning("genre classifier unavailable for gap proposals (%s); using centroids", exc)
            return self._classifier

    def genre(self, engine: SearchEngine, text: str, qvec: np.ndarray) -> tuple[str, float, str] | None:
        known = engine.known_genres()  # served genres only: never one that only generated clips have
        clf = self._genre_classifier()
        if clf is not None:
            try:
                pred = clf.predict_query([text])[0]
                if pred.genre in known:
                    return pred.genre, float(pred.confidence), "genre_text"
            except Exception as exc:  # noqa: BLE001
                log.warning("genre classifier failed (%s); using centroids", exc)
        names, scores = [], []
        for g in sorted(known):
            c = engine.loaded.centroids.centroid(g)
            if c is not None:
                names.append(g)
                scores.append(float(np.dot(c, qvec)))
        if not names:
            return None
        z = np.asarray(scores) / 0.1
        p = np.exp(z - z.max())
        p /= p.sum()
        k = int(np.argmax(p))
        return names[k], float(p[k]), "centroids"

    def propose(self, engine: SearchEngine, req: SearchRequest) -> dict[str, Any] | None:
        if not req.q:
            return None
        qvec = engine.encode(req.q)[0]  # the text cache answers: the search encoded it a moment ago
        found = self.genre(engine, req.q, qvec)
        if found is None:
            return None
        genre, confidence, source = found
        flt = ClipFilter((genre,), exclude_sources=("generated",))
        hits = engine.index.search(qvec[None, :], MUSIC_SUGGESTIONS * 3, flt).row(0)
        rows = engine._clip_rows({cid for cid, _ in hits})
        music = []
        for cid, score in hits:
            clip = rows.get(cid)
            if clip is None or not clip.audio_path:
                continue
            music.append({"clip_id": int(cid), "key": clip.key, "score": round(float(score), 6), "genre": clip.genre,
                          "bpm": None if clip.bpm is None else float(clip.bpm),
                          "audio": media_urls(int(cid), True)["audio"]})
            if len(music) >= MUSIC_SUGGESTIONS:
                break
        return {"genre": genre, "confidence": round(confidence, 4), "genre_source": source, "music": music}


@dataclass(frozen=True)
class ServedState:
    """What the server answers from, swapped as ONE reference: the engine, how its index relates to the
    catalog, and the workspace signature it was built from."""

    engine: SearchEngine
    consistency: Consistency
    signature: Signature


class ApiService:
    """Holds the live engine; ``refresh`` / ``reload`` swap in a new one without blocking readers."""

    def __init__(self, engine: SearchEngine, loader: Any = None, text_cache: TextEmbeddingCache | None = None,
                 milvus_uri: str | None = None,
                 on_change: Callable[[str, dict[str, Any]], None] | None = None) -> None:
        self.text_cache = text_cache
        self.milvus_uri = milvus_uri
        self.on_change = on_change
        self.media = MediaChecker()
        self._loader = loader
        self._reload_lock = threading.Lock()
        self._failed: Signature | None = None
        self.proposer = GenreProposer()
        self._install(self._with_cache(engine), reload_index=False, trigger="start")

    def _with_cache(self, engine: SearchEngine) -> SearchEngine:
        """The engine, using this service's embedding cache unless it was given its own."""
        if self.text_cache is not None and getattr(engine, "text_cache", None) is None:
            engine.text_cache = self.text_cache
        return engine

    @property
    def _engine(self) -> SearchEngine:
        return self._state.engine

    @property
    def engine(self) -> SearchEngine:
        return self._state.engine

    @property
    def consistency(self) -> Consistency:
        return self._state.consistency

    def _signature(self, engine: SearchEngine) -> Signature:
        return Signature.read(engine.loaded.directory, engine.catalog)

    def _install(self, engine: SearchEngine, reload_index: bool, trigger: str) -> None:
        """Build the catalog-consistent engine from ``engine`` and make it THE engine (one assignment).

        The signature is read before the state is, so a change made while building is seen by the
        next check instead of being lost."""
        sig = self._signature(engine)
        fresh, consistency = consistent_engine(engine, sig.catalog, reload_index=reload_index,
                                               milvus_uri=self.milvus_uri)
        self._state = ServedState(fresh, consistency, sig)  # one assignment: readers see old or new, never a mix
        if trigger != "start":
            log.info("%s reload: index generation %s (%d vectors), catalog version %s, %d hidden, %d unindexed",
                     trigger, fresh.loaded.manifest.get("generation"), len(fresh.index), sig.catalog,
                     consistency.hidden, consistency.unindexed)
        if self.on_change is not None:
            self.on_change(trigger, self.index_info())

    def refresh(self) -> bool:
        """Switch to the workspace's current index generation / catalog state if either changed since
        the last look; True when it switched.  A state that failed to load is not retried until the
        workspace changes again (one log line per failure, no reload storm)."""
        state = self._state
        sig = self._signature(state.engine)
        if sig == state.signature or sig == self._failed:
            return False
        with self._reload_lock:
            if self._state is not state:  # an admin reload got there first
                return False
            try:
                self._install(state.engine, reload_index=sig.index != state.signature.index, trigger="automatic")
            except Exception:
                self._failed = sig
                if self.on_change is not None:
                    self.on_change("automatic-failed", {})
                raise
            self._failed = None
        return True

    def reload(self) -> dict[str, Any]:
        """Load model, index and catalog state again (``POST /v1/admin/reload``)."""
        if self._loader is None:
            raise RuntimeError("this server was started without a loader; restart it instead")
        with self._reload_lock:
            self._install(self._with_cache(self._loader()), reload_index=False, trigger="admin")
            self._failed = None
        return self.index_info()

    def index_info(self) -> dict[str, Any]:
        state = self._state
        engine = state.engine
        m = engine.loaded.manifest
        return {"backend": m.get("backend"), "kind": m.get("kind"), "count": m.get("count"),
                "generation": m.get("generation"), "updated_at": m.get("updated_at"),
                "threshold": engine.threshold,
                "text_encoder": getattr(engine.embedder, "text_encoder", "full"),
                "query_expansion": bool(getattr(engine.embedder, "query_expansion", False)),
                "searchable": len(engine.index), **state.consistency.as_dict()}

    # --- search ------------------------------------------------------------------------------------
    def validate(self, q: str | None, k: int, offset: int, genres: list[str], bpm_min: float | None,
                 bpm_max: float | None, split: str | None, source: str | None,
                 include_generated: bool = False) -> SearchRequest:
        """A validated request (raises InputError naming the field): cheap, done before queueing."""
        return self._engine.validate(q, k, offset, genres, bpm_min, bpm_max, split, source, include_generated)

    def search(self, q: str | None, k: int, offset: int, genres: list[str], bpm_min: float | None,
               bpm_max: float | None, split: str | None, source: str | None,
               include_generated: bool = False) -> dict[str, Any]:
        return self.search_one(self.validate(q, k, offset, genres, bpm_min, bpm_max, split, source, include_generated))

    def _finish(self, engine: SearchEngine, req: SearchRequest, body: dict[str, Any]) -> dict[str, Any]:
        body["results"] = [_with_media(r) for r in body["results"]]
        if body.get("outcome") == "gap" and body.get("mode") == "text" and body.get("results"):
            try:
                body["proposal"] = self.proposer.propose(engine, req)
            except Exception:  # noqa: BLE001 - a proposal is a bonus: the search answer stands without it
                log.exception("gap proposal failed")
        return body

    def search_one(self, req: SearchRequest) -> dict[str, Any]:
        engine = self._engine
        return self._finish(engine, req, engine.search(req))

    def search_many(self, requests: list[SearchRequest]) -> list[dict[str, Any] | Exception]:
        """Bodies (with media URLs) of a batch, or per request the exception it raised alone."""
        engine = self._engine
        out = engine.search_many(requests)  # one engine for the whole batch, even during a reload
        return [self._finish(engine, req, body) if isinstance(body, dict) else body
                for req, body in zip(requests, out)]

    def similar(self, clip_id: int, k: int, offset: int) -> dict[str, Any]:
        engine = self._engine
        engine.clip_row(clip_id)  # 404 for a clip gone from the catalog, even before the next refresh
        body = engine.similar(clip_id, k, offset)
        body["results"] = [_with_media(r) for r in body["results"]]
        return body

    def clip(self, clip_id: int) -> dict[str, Any]:
        return _with_media(self._engine.clip(clip_id))

    def genres(self) -> list[dict[str, Any]]:
        return self._engine.genres()

    # --- media -------------------------------------------------------------------------------------
    def _media_file(self, clip: Any, relative: str | None, kind: str) -> Path:
        """The checked absolute path of one of ``clip``'s files (MediaError / MediaUnavailable if not)."""
        path = contained_path(self._engine.workspace.home, relative, kind)
        self.media.require(clip.id, kind, path, relative or "")
        return path

    def motion(self, clip_id: int, fmt: str) -> tuple[Path | bytes, str, str]:
        """(file path or bytes, media type, download file name) of a clip's motion in ``fmt``."""
        if fmt not in MOTION_FORMATS:
            raise ValueError(fmt)
        clip = self._engine.clip_row(clip_id)
        path = self._media_file(clip, clip.motion_path, "motion")
        stem = clip.key.replace("/", "_").replace("#", "_")
        if fmt == "npz":
            return path, "application/octet-stream", f"{stem}.npz"
        try:
            record = MotionRecord.load(path)
        except Exception as exc:  # noqa: BLE001 - checked a moment ago: the file changed under us
            raise self.media.unavailable(clip.id, "motion", clip.motion_path, f"it does not load ({exc})") from exc
        if fmt == "json":
            return motion_json_bytes(record), "application/json", f"{stem}.json"
        return motion_bvh(record).encode(), "text/plain; charset=utf-8", f"{stem}.bvh"

    def audio(self, clip_id: int) -> tuple[Path, str]:
        clip = self._engine.clip_row(clip_id)
        if not clip.audio_path:
            raise MediaError(f"clip {clip_id} has no audio (its source has none)")
        path = self._media_file(clip, clip.audio_path, "audio")
        return path, audio_media_type(path)


__all__ = ["ApiService", "MediaUnavailable", "media_urls"]
