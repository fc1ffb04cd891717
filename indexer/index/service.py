"""Search logic shared by ``dancesearch search`` and the HTTP API: ranking, filters, pagination,
genre typicality, similar clips, the no-match flag and the per-result explanation.

The HTTP layer (search_api) only adds media URLs and error mapping on top of these plain dicts.

Batches: :meth:`SearchEngine.search_many` answers many requests with one text-encoder call, one
index search per distinct (filter, depth) and one catalog read, because on a CPU each of these
costs far less per query for dozens than for one (a transformer forward pass over short
sentences, a scan of the whole vector matrix, a database round trip).  Each request still gets
the answer it would get alone (scores equal up to float rounding: a batch may be scored as one
matrix product); :meth:`SearchEngine.search` is the batch of one.

Genre search (no query text): clips of the requested genre(s) are ranked by cosine to their
genre's centroid (the normalised mean of that genre's clip embeddings, kept in the index folder
and updated incrementally) - i.e. by how typical they are of the genre.  The text embedding of
the genre name is not blended in: with the demo model the centroid alone ranks the clips that
the genre's captions describe best, and it does not depend on how a genre happens to be spelled.

Outcome of a text query (issue 15): ``outcome`` is ``match``, ``gap`` or ``not_dance`` with a readable
``outcome_reason``, from the index's query gate (query_gate.py, fitted at index build; a few ms a
batch); ``no_match`` is true for gap and not_dance (and, as before, below the score threshold or with
no results).  An index built before the gate existed answers ``match`` / ``gap`` from the threshold.
Clips of source ``generated`` are left out unless the request sets ``include_generated``.
"""
from __future__ import annotations

import logging
import re
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

from encoders.errors import InputError

from .base import Hits
from .embedder import Embedder, TextEmbeddingCache, encode_queries
from .filters import ClipFilter, tempo_word
from .query_gate import GENERATED_SOURCE, GateDecision, QueryGate, served_genres
from .store import DEFAULT_INDEX_NAME, LoadedIndex, load_index

MAX_K = 100
MAX_OFFSET = 1_000
MAX_QUERY_CHARS = 500


class NotFoundError(InputError):
    """An id (clip) that does not exist; the API maps it to 404."""


@dataclass(frozen=True)
class SearchRequest:
    """A validated search: text ``q`` (or None for genre search), page (``k``, ``offset``) and filter."""

    q: str | None
    k: int = 10
    offset: int = 0
    flt: ClipFilter = field(default_factory=ClipFilter)
    include_generated: bool = False

    def echo(self) -> dict[str, Any]:
        return {"q": self.q, "k": self.k, "offset": self.offset, "genres": list(self.flt.genres),
                "bpm_min": self.flt.bpm_min, "bpm_max": self.flt.bpm_max, "split": self.flt.split,
                "source": self.flt.source, "include_generated": self.include_generated}


def _words(text: str) -> set[str]:
    return set(re.findall(r"[a-z0-9]+", text.lower()))


_EXPLAINED_ABOVE = frozenset({"genre", "tempo", "bpm"})   # tags the genre / tempo checks already report


def explain(clip: dict[str, Any], req: SearchRequest) -> dict[str, Any]:
    """Which requested attributes a result matches: filters given, and words of the query."""
    matched: list[str] = []
    parts: list[str] = []
    words = _words(req.q or "")
    genre = clip.get("genre")
    if genre and (genre in req.flt.genres or (_words(genre) and _words(genre) <= words)):
        matched.append("genre")
        parts.append(f"genre '{genre}'")
    bpm = clip.get("bpm")
    tw = tempo_word(bpm)
    in_range = ((req.flt.bpm_min is not None or req.flt.bpm_max is not None) and bpm is not None
                and (req.flt.bpm_min is None or bpm >= req.flt.bpm_min) and (req.flt.bpm_max is None or bpm <= req.flt.bpm_max))
    if in_range or (tw and tw in words):
        matched.append("tempo")
        parts.append(f"tempo {bpm:.0f} BPM ({tw})")
    if req.flt.split and clip.get("split") == req.flt.split:
        matched.append("split")
        parts.append(f"split '{req.flt.split}'")
    if req.flt.source and clip.get("source") == req.flt.source:
        matched.append("source")
        parts.append(f"source '{req.flt.source}'")
    for key, value in sorted((clip.get("tags") or {}).items()):
        if key in _EXPLAINED_ABOVE:
            continue
        values = value if isinstance(value, list) else [value]
        hit = [str(v) for v in values if isinstance(v, (str, int, float)) and _words(str(v)) and _words(str(v)) <= words]
        if hit:
            matched.append(f"tag:{key}")
            parts.append(f"{key} {', '.join(hit)}")
    if not req.q and req.flt.genres:
        text = f"typical of genre '{genre}'"
        if len(parts) > 1:
            text += "; matches " + " and ".join(parts[1:])
    else:
        text = ("matches " + " and ".join(parts)) if parts else "similar in meaning to the query"
    return {"matched": matched, "text": text}


def clip_payload(clip: Any, captions: list[str] | None = None) -> dict[str, Any]:
    """The result object of a clip (without rank / score / media, which callers add)."""
    caps = list(captions if captions is not None else clip.caption_texts)
    return {
        "id": int(clip.id), "key": clip.key, "genre": clip.genre,
        "bpm": None if clip.bpm is None else float(clip.bpm), "duration_s": float(clip.duration_s),
        "dancer": clip.dancer, "split": clip.split, "source": clip.source,
        "caption": caps[0] if caps else None, "captions": caps, "tags": dict(clip.tags or {}),
        "has_audio": bool(clip.audio_path),
    }


class SearchEngine:
    """Model + index + catalog, loaded once; every method is safe to call from many threads."""

    def __init__(self, workspace: Any, embedder: Embedder, loaded: LoadedIndex, catalog: Any,
                 text_cache: TextEmbeddingCache | None = None) -> None:
        self.workspace = workspace
        self.embedder = embedder
        self.loaded = loaded
        self.index = loaded.index
        self.catalog = catalog
        self.text_cache = text_cache  # shared with the owner (the API keeps one across reloads)
        self._encode_lock = threading.Lock() if getattr(embedder, "thread_safe", True) is False else None
        self.gate: QueryGate | None = QueryGate.from_manifest(loaded.manifest, getattr(loaded, "gate_arrays", None))
        built, serving = loaded.manifest.get("query_encoding"), getattr(embedder, "query_encoding", None)
        if built is not None and serving is not None and built != serving:
            logging.getLogger("dancesearch.index").warning(
                "the index's score threshold and query gate were fitted on queries encoded with %s, this server "
                "encodes them with %s: run `dancesearch index build` again (or match the server's "
                "--query-expansion setting) for calibrated outcomes", built, serving)

    @classmethod
    def open(cls, workspace: Any, embedder: Embedder, name: str = DEFAULT_INDEX_NAME,
             milvus_uri: str | None = None, text_cache: TextEmbeddingCache | None = None) -> "SearchEngine":
        loaded = load_index(workspace.index_dir(name), embedder.model_id, milvus_uri=milvus_uri)
        return cls(workspace, embedder, loaded, workspace.catalog(create=False), text_cache)

    @property
    def threshold(self) -> float | None:
        return self.loaded.threshold

    @property
    def model_id(self) -> str:
        return self.embedder.model_id

    def known_genres(self) -> set[str]:
        """The genres this index *serves*: those with a clip whose source is not ``generated`` (searches
        leave generated clips out by default, and the query gate is fitted on the same list), e.g. the
        genres a gap proposal may name.  A genre only generated clips have is not one of them."""
        return set(served_genres(self.index.attributes()))

    def indexed_genres(self) -> set[str]:
        """Every genre of the index's clips, generated ones included (what a genre filter may name)."""
        return {g for g in self.index.attributes().genre_vocab if g}

    # --- validation ---------------------------------------------------------------------------------
    def validate(self, q: str | None, k: int, offset: int, genres: Sequence[str] = (), bpm_min: float | None = None,
                 bpm_max: float | None = None, split: str | None = None, source: str | None = None,
                 include_generated: bool = False) -> SearchRequest:
        """Turn raw parameters into a :class:`SearchRequest`, raising InputError naming the bad field.

        Generated clips (source ``generated``) are filtered out unless ``include_generated`` or the
        request asks for that source by name; the exclusion is only added when the index holds such
        clips, so other searches keep the unfiltered fast path."""
        if q is not None:
            q = q.strip()
            if not q:
                q = None
                if not genres:
                    raise InputError(None, "the query is empty", field="q", expected="1 to 500 characters", got="''")
            elif len(q) > MAX_QUERY_CHARS:
                raise InputError(None, "the query is too long", field="q", expected=f"at most {MAX_QUERY_CHARS} characters",
                                 got=f"{len(q)}")
        if q is None and not genres:
            raise InputError(None, "give a query text, or a genre to rank clips by typicality", field="q",
                             expected="q or genre", got="neither")
        if not 1 <= int(k) <= MAX_K:
            raise InputError(None, "k out of range", field="k", expected=f"1..{MAX_K}", got=str(k))
        if not 0 <= int(offset) <= MAX_OFFSET:
            raise InputError(None, "offset out of range", field="offset", expected=f"0..{MAX_OFFSET}", got=str(offset))
        known = self.indexed_genres()  # a filter may name a generated clip's genre (with include_generated)
        for g in genres:
            if g not in known:
                raise InputError(None, f"unknown genre '{g}'", field="genre",
                                 expected="one of " + ", ".join(sorted(known)), got=g)
        for name, v in (("bpm_min", bpm_min), ("bpm_max", bpm_max)):
            if v is not None and not (0 <= v <= 400 and np.isfinite(v)):
                raise InputError(None, "tempo out of range", field=name, expected="0..400 BPM", got=str(v))
        flt = ClipFilter.build(genres, bpm_min, bpm_max, split, source)
        if (not include_generated and source != GENERATED_SOURCE
                and GENERATED_SOURCE in self.index.attributes().source_vocab):
            flt = ClipFilter(flt.genres, flt.bpm_min, flt.bpm_max, flt.split, flt.source, (GENERATED_SOURCE,))
        return SearchRequest(q, int(k), int(offset), flt, bool(include_generated))

    # --- search -------------------------------------------------------------------------------------
    def encode(self, text: str) -> np.ndarray:
        """(1, D) embedding of one query text."""
        return self.encode_many([text])

    def encode_many(self, texts: Sequence[str]) -> np.ndarray:
        """(N, D) embeddings of query texts: cached ones from the cache, the rest in ONE encoder call.

        Duplicates inside the batch are encoded once.  The encoder sees the texts as given (only
        the cache key folds whitespace, see ``embedder.query_key``).
        """
        texts = list(texts)
        out = np.zeros((len(texts), self.embedder.dim), dtype=np.float32)
        cache_key = getattr(self.embedder, "query_encoder_id", self.model_id)  # full and fast vectors differ
        cached = (self.text_cache.get_many(cache_key, texts) if self.text_cache is not None
                  else [None] * len(texts))
        todo: dict[str, list[int]] = {}
        for i, (t, vec) in enumerate(zip(texts, cached)):
            if vec is not None:
                out[i] = vec
            else:
                todo.setdefault(t, []).append(i)
        if todo:
            unique = list(todo)
            if self._encode_lock is not None:
                with self._encode_lock:
                    fresh = encode_queries(self.embedder, unique)
            else:
                fresh = encode_queries(self.embedder, unique)
            fresh = np.asarray(fresh, dtype=np.float32)
            for t, vec in zip(unique, fresh):
                out[todo[t]] = vec
            if self.text_cache is not None:
                self.text_cache.put_many(cache_key, unique, fresh)
        return out

    def search(self, req: SearchRequest) -> dict[str, Any]:
        """The search response body (without media URLs) as ARCHITECTURE.md specifies."""
        result = self.search_many([req])[0]
        if isinstance(result, BaseException):
            raise result
        return result

    def search_many(self, requests: Sequence[SearchRequest]) -> list[dict[str, Any] | Exception]:
        """Answer a batch of validated requests: per request its response body, or the exception
        that request alone raised (one failing request never fails the others).

        Text queries are encoded in one call; requests with the same filter and the same depth
        (``k + offset``) share one index search, whose parameters are then exactly those of each
        request alone (a deeper search is not reused for a shallower one: approximate indexes tune
        their beam to ``k``, and even exact search may order tied scores differently); the clips
        of every page are read from the catalog at once.  ``took_ms`` of each body is the time of
        the whole batch up to that body.
        """
        t0 = time.perf_counter()
        out: list[dict[str, Any] | Exception | None] = [None] * len(requests)
        ranked: dict[int, list[tuple[int, float]]] = {}  # request position -> (id, score) best first
        decisions: dict[int, GateDecision] = {}
        self._rank_texts(requests, ranked, out, decisions)
        for i, r in enumerate(requests):
            if not r.q:
                try:
                    ranked[i] = self._genre_ranking(r.flt, r.k + r.offset)
                except Exception as exc:  # noqa: BLE001 - this request's own failure
                    out[i] = exc
        pages = {i: pairs[requests[i].offset:requests[i].offset + requests[i].k] for i, pairs in ranked.items()}
        try:
            clips: dict[int, Any] | Exception = self._clip_rows({cid for page in pages.values() for cid, _ in page})
        except Exception as exc:  # noqa: BLE001 - the catalog failed: every request with results fails
            clips = exc
        totals: dict[ClipFilter, int] = {}
        for i, page in pages.items():
            try:
                if isinstance(clips, Exception) and page:
                    raise clips
                rows = clips if isinstance(clips, dict) else {}
                out[i] = self._body(requests[i], ranked[i], page, rows, totals, t0, decisions.get(i))
            except Exception as exc:  # noqa: BLE001
                out[i] = exc
        return [o if o is not None else RuntimeError("request was not answered") for o in out]

    def _rank_texts(self, requests: Sequence[SearchRequest], ranked: dict[int, list[tuple[int, float]]],
                    out: list[Any], decisions: dict[int, GateDecision] | None = None) -> None:
        """Rank every text request: one encoder call, then one index search per (filter, depth); the
        query gate classifies the batch's texts in one call (``decisions``)."""
        text_at = [i for i, r in enumerate(requests) if r.q]
        vectors = self._encode_batch(requests, text_at, out)
        if self.gate is not None and decisions is not None and vectors:
            at = [i for i in text_at if i in vectors]
            try:
                found = self.gate.classify([requests[i].q or "" for i in at], np.stack([vectors[i] for i in at]))
                decisions.update(zip(at, found))
            except Exception:  # noqa: BLE001 - a gate failure must not fail the search: old behaviour then
                logging.getLogger("dancesearch.index").exception("query gate failed; answering without it")
        groups: dict[tuple[ClipFilter, int], list[int]] = {}
        for i in text_at:
            if out[i] is None:
                groups.setdefault((requests[i].flt, requests[i].k + requests[i].offset), []).append(i)
        for (flt, need), members in groups.items():
            try:
                hits = self.index.search(np.stack([vectors[i] for i in members]), need, flt)
                for row, i in enumerate(members):
                    ranked[i] = hits.row(row)
            except Exception as exc:  # noqa: BLE001 - handed to each request of the group
                for i in members:
                    out[i] = exc

    def _encode_batch(self, requests: Sequence[SearchRequest], at: list[int],
                      out: list[Any]) -> dict[int, np.ndarray]:
        """Query vectors of ``requests[at]`` in one call; if that call fails, one call per text, so
        only the texts that fail by themselves fail (their exception goes to ``out``)."""
        if not at:
            return {}
        try:
            vecs = self.encode_many([requests[i].q or "" for i in at])
            return dict(zip(at, vecs))
        except Exception:  # noqa: BLE001 - isolate the culprit below
            found: dict[int, np.ndarray] = {}
            for i in at:
                try:
                    found[i] = self.encode_many([requests[i].q or ""])[0]
                except Exception as exc:  # noqa: BLE001
                    out[i] = exc
            return found

    def _clip_rows(self, ids: set[int]) -> dict[int, Any]:
        return {c.id: c for c in self.catalog.clips(ids=sorted(ids))} if ids else {}

    def classify(self, texts: Sequence[str]) -> list[GateDecision] | None:
        """The gate's decision for each text (None when this index has no gate): for callers outside a
        search, e.g. a generation request that must be declined for a non-dance text."""
        if self.gate is None or not texts:
            return None
        return self.gate.classify(list(texts), self.encode_many(texts))

    def _outcome(self, req: SearchRequest, best: float | None,
                 decision: GateDecision | None) -> tuple[str, str, dict[str, float] | None]:
        """(outcome, reason, gate scores) of one request."""
        if best is None:
            return "gap", "no clip satisfies the filters", None
        if not req.q:
            return "match", "clips ranked by how typical they are of the genre", None
        if decision is not None and decision.outcome != "match":
            return decision.outcome, decision.reason, decision.scores
        if self.threshold is not None and best < self.threshold:
            return ("gap", f"the best result scores {best:.2f}, below the calibrated threshold {self.threshold:.2f}",
                    decision.scores if decision else None)
        return ("match", decision.reason if decision else "the catalog has clips that fit this description",
                decision.scores if decision else None)

    def _body(self, req: SearchRequest, pairs: list[tuple[int, float]], page: list[tuple[int, float]],
              clips: dict[int, Any], totals: dict[ClipFilter, int], t0: float,
              decision: GateDecision | None = None) -> dict[str, Any]:
        mode = "text" if req.q else "genre"
        best = pairs[0][1] if pairs else None
        outcome, reason, scores = self._outcome(req, best, decision)
        no_match = outcome != "match"
        results = self._results(page, req, start_rank=req.offset + 1, clips=clips)
        if req.flt not in totals:
            totals[req.flt] = self.index.count(req.flt)
        body = {"query": req.echo(), "mode": mode, "no_match": bool(no_match), "threshold": self.threshold,
                "outcome": outcome, "outcome_reason": reason, "outcome_scores": scores, "proposal": None,
                "expanded_query": self._expanded(req.q), "model": self.model_id, "took_ms": round((time.perf_counter() - t0) * 1000, 3),
                "total": totals[req.flt], "results": results}
        return body

    def _expanded(self, text: str | None) -> str | None:
        """The expanded text :func:`encode_queries` encoded for ``text``, or None when it was encoded as typed."""
        expand = getattr(self.embedder, "expand_queries", None)
        if not text or expand is None:
            return None
        found = expand([text])[0].text
        return found if found != text else None

    def _genre_ranking(self, flt: ClipFilter, need: int) -> list[tuple[int, float]]:
        merged: list[tuple[int, float]] = []
        for g in flt.genres:
            c = self.loaded.centroids.centroid(g)
            if c is None:
                continue
            sub = flt.with_genres((g,))
            merged.extend(self.index.search(c[None, :], need, sub).row(0))
        merged.sort(key=lambda p: -p[1])
        return merged[:need]

    def similar(self, clip_id: int, k: int, offset: int = 0, flt: ClipFilter | None = None) -> dict[str, Any]:
        """Clips closest to clip ``clip_id`` (itself excluded), in the search response shape."""
        t0 = time.perf_counter()
        if not 1 <= int(k) <= MAX_K:
            raise InputError(None, "k out of range", field="k", expected=f"1..{MAX_K}", got=str(k))
        if not 0 <= int(offset) <= MAX_OFFSET:
            raise InputError(None, "offset out of range", field="offset", expected=f"0..{MAX_OFFSET}", got=str(offset))
        try:
            vec = self.index.vectors_for(np.asarray([clip_id]))
        except KeyError:
            if self.catalog.clip(clip_id) is None:
                raise NotFoundError(None, f"no clip with id {clip_id}", field="id", expected="a clip id", got=str(clip_id))
            raise InputError(None, f"clip {clip_id} is not in the index yet; run `dancesearch index build`",
                             field="id", expected="an indexed clip", got=str(clip_id))
        flt = flt or ClipFilter()
        hits: Hits = self.index.search(vec, k + offset + 1, flt)
        pairs = [p for p in hits.row(0) if p[0] != clip_id][offset:offset + k]
        req = SearchRequest(None, int(k), int(offset), flt)
        results = self._results(pairs, req, start_rank=offset + 1)
        echo = req.echo()
        echo["similar_to"] = int(clip_id)
        return {"query": echo, "mode": "similar", "no_match": not results, "threshold": self.threshold,
                "outcome": "match" if results else "gap",
                "outcome_reason": "clips closest to this one" if results else "no other clip satisfies the filters",
                "outcome_scores": None, "proposal": None, "expanded_query": None,
                "model": self.model_id, "took_ms": round((time.perf_counter() - t0) * 1000, 3),
                "total": max(self.index.count(flt) - 1, 0), "results": results}

    def _results(self, pairs: list[tuple[int, float]], req: SearchRequest, start_rank: int,
                 clips: dict[int, Any] | None = None) -> list[dict[str, Any]]:
        """Result objects of ``pairs``; ``clips`` (id -> catalog row) when the caller read them already."""
        if not pairs:
            return []
        if clips is None:
            clips = self._clip_rows({cid for cid, _ in pairs})
        out = []
        for rank, (cid, score) in enumerate(pairs, start=start_rank):
            clip = clips.get(cid)
            if clip is None:  # removed from the catalog since the index was built
                continue
            item = {"rank": rank, **clip_payload(clip), "score": round(float(score), 6)}
            item["explanation"] = explain(item, req)
            out.append(item)
        return out

    def clip(self, clip_id: int) -> dict[str, Any]:
        clip = self.catalog.clip(clip_id)
        if clip is None:
            raise NotFoundError(None, f"no clip with id {clip_id}", field="id", expected="a clip id", got=str(clip_id))
        return clip_payload(clip)

    def clip_row(self, clip_id: int) -> Any:
        clip = self.catalog.clip(clip_id)
        if clip is None:
            raise NotFoundError(None, f"no clip with id {clip_id}", field="id", expected="a clip id", got=str(clip_id))
        return clip

    def genres(self) -> list[dict[str, Any]]:
        return [{"name": g, "count": n} for g, n in self.catalog.genre_counts().items()]
