"""Keeping a running server in step with its workspace: change detection and the catalog-consistent index.

A server loads the index once, but the workspace changes under it: ``dancesearch ingest`` rewrites the
catalog (a re-ingest that changed a sequence deletes its old clip ids), ``dancesearch index build``
switches the index to a new generation.  Before this module a server kept answering from its start-up
state: results silently dropped clips that were gone from the catalog while ``total`` still counted
them (``q=hiphop&k=5`` gave 1 result with ``total: 2520``), ``/similar`` of a removed clip answered
200, and a rebuilt index was used only after a restart.

- :class:`Signature` is what identifies the workspace state cheaply: the index manifest's
  (inode, mtime, size) - the manifest is replaced atomically, last, by every index save - and the
  catalog's change counter (:meth:`indexer.catalog.Catalog.version`).  One check is a ``stat`` and
  one single-row query (tens of microseconds; see docs/OPERATIONS.md for the measurement).
- :class:`LiveIndexView` hides index entries whose clip is no longer in the catalog, so ranking,
  pagination and ``total`` agree with what can actually be returned; a search over-fetches by the
  number of hidden entries that match its filter, so pages stay full.
- :func:`consistent_engine` builds a complete new :class:`SearchEngine` (new index generation when
  the manifest changed, the view over the current catalog) before anyone sees it; the API swaps it
  in with one reference assignment (``search_api.service.ApiService``), so a request is answered
  from one state, never a mix.
- :class:`ChangeWatcher` runs the check in a background thread, so requests never pay for it.
"""
from __future__ import annotations

import dataclasses
import logging
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from indexer.index.base import Hits, VectorIndex
from indexer.index.filters import ClipAttributes, ClipFilter
from indexer.index.service import SearchEngine
from indexer.index.store import MANIFEST, load_index

log = logging.getLogger("dancesearch.api")


@dataclass(frozen=True)
class Signature:
    """Identity of the workspace state a server answers from (equal signatures: nothing to reload)."""

    index: tuple[int, int, int] | None  # (inode, mtime_ns, size) of the index manifest; None: no manifest
    catalog: int | None  # the catalog's change counter; None: a catalog older than the counter

    @classmethod
    def read(cls, index_dir: Path, catalog: Any) -> "Signature":
        try:
            st = os.stat(Path(index_dir) / MANIFEST)
            index: tuple[int, int, int] | None = (st.st_ino, st.st_mtime_ns, st.st_size)
        except OSError:
            index = None
        version = catalog.version() if hasattr(catalog, "version") else None
        return cls(index, version)


def catalog_clip_ids(catalog: Any) -> np.ndarray:
    """Every clip id in the catalog (one narrow query; the API needs no rows here)."""
    from sqlalchemy import select

    from indexer.catalog import Clip

    with catalog.session() as s:
        return np.fromiter(s.scalars(select(Clip.id)), dtype=np.int64)


class LiveIndexView(VectorIndex):
    """A read-only index that leaves out ``hidden`` ids (clips the catalog no longer has).

    Everything else is the wrapped index's: scores, filters, ANN parameters.  ``search`` asks the
    wrapped index for ``k`` plus the number of hidden entries that match the filter, which is exactly
    enough to fill ``k`` live results whenever that many exist.
    """

    def __init__(self, base: VectorIndex, hidden: np.ndarray) -> None:
        self.base = base
        self.backend, self.kind, self.dim = base.backend, base.kind, base.dim
        attrs = base.attributes()
        is_hidden = np.isin(np.asarray(attrs.ids, dtype=np.int64), np.asarray(hidden, dtype=np.int64))
        self._hidden_ids = np.asarray(attrs.ids[is_hidden], dtype=np.int64)
        self._hidden = frozenset(self._hidden_ids.tolist())
        self._hidden_attrs: ClipAttributes = attrs.take(np.flatnonzero(is_hidden))
        self._live_attrs: ClipAttributes = attrs.take(np.flatnonzero(~is_hidden))

    @property
    def hidden(self) -> int:
        return len(self._hidden)

    def _hidden_matching(self, flt: ClipFilter | None) -> int:
        if flt is None or flt.is_empty:
            return len(self._hidden)
        return int(flt.mask(self._hidden_attrs).sum())

    def __len__(self) -> int:
        return len(self._live_attrs)

    def add(self, vectors: np.ndarray, attrs: ClipAttributes) -> None:
        raise TypeError("LiveIndexView is read-only: build the index with `dancesearch index build`")

    def search(self, queries: np.ndarray, k: int, flt: ClipFilter | None = None) -> Hits:
        extra = self._hidden_matching(flt)
        if extra == 0:
            return self.base.search(queries, k, flt)
        deep = self.base.search(queries, k + extra, flt)
        keep = (deep.ids >= 0) & ~np.isin(deep.ids, self._hidden_ids)
        out = Hits.empty(len(deep.ids), k)
        for q in range(len(deep.ids)):
            at = np.flatnonzero(keep[q])[:k]
            out.ids[q, :len(at)] = deep.ids[q, at]
            out.scores[q, :len(at)] = deep.scores[q, at]
        return out

    def count(self, flt: ClipFilter | None = None) -> int:
        return max(self.base.count(flt) - self._hidden_matching(flt), 0)

    def vectors_for(self, ids: np.ndarray) -> np.ndarray:
        gone = [int(i) for i in np.asarray(ids).ravel() if int(i) in self._hidden]
        if gone:
            raise KeyError(gone[0])
        return self.base.vectors_for(ids)

    def ids(self) -> np.ndarray:
        return self._live_attrs.ids

    def attributes(self) -> ClipAttributes:
        return self._live_attrs

    def contains(self, clip_id: int) -> bool:
        return int(clip_id) not in self._hidden and self.base.contains(clip_id)

    def describe(self) -> dict[str, Any]:
        return {**self.base.describe(), "count": len(self)}

    def close(self) -> None:
        self.base.close()


@dataclass(frozen=True)
class Consistency:
    """How the loaded index relates to the catalog (reported by /readyz and /metrics)."""

    catalog_version: int | None
    hidden: int      # index entries whose clip is gone from the catalog (left out of every answer)
    unindexed: int   # catalog clips the index does not have yet (`dancesearch index build` adds them)

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def raw_index(engine: SearchEngine) -> VectorIndex:
    index = engine.loaded.index
    return index.base if isinstance(index, LiveIndexView) else index


def consistent_engine(engine: SearchEngine, catalog_version: int | None, *, reload_index: bool = False,
                      milvus_uri: str | None = None) -> tuple[SearchEngine, Consistency]:
    """A new engine over the current catalog: the index's live generation when ``reload_index``
    (else the one ``engine`` has), viewed without the clips the catalog no longer has.

    Shares the embedder, catalog connection and text cache with ``engine``; ``engine`` is unchanged,
    so requests holding it finish undisturbed.
    """
    loaded = engine.loaded
    if reload_index:
        loaded = load_index(loaded.directory, engine.model_id, milvus_uri=milvus_uri)
    base = loaded.index.base if isinstance(loaded.index, LiveIndexView) else loaded.index
    index_ids = np.asarray(base.ids(), dtype=np.int64)
    catalog_ids = catalog_clip_ids(engine.catalog)
    hidden = index_ids[~np.isin(index_ids, catalog_ids)]
    unindexed = int(len(catalog_ids) - (len(index_ids) - len(hidden)))
    index: VectorIndex = LiveIndexView(base, hidden) if len(hidden) else base
    fresh = SearchEngine(engine.workspace, engine.embedder, dataclasses.replace(loaded, index=index),
                         engine.catalog, engine.text_cache)
    if hasattr(engine, "_encode_lock"):  # a thread-unsafe embedder keeps ONE lock across engines
        fresh._encode_lock = engine._encode_lock
    return fresh, Consistency(catalog_version, len(hidden), unindexed)


class ChangeWatcher:
    """Calls ``check`` every ``interval_s`` seconds in a daemon thread until :meth:`stop`.

    ``check`` does the work (compare signatures, rebuild, swap); an exception it raises is logged as
    one line - repeated identical failures once - and the next tick tries again.
    """

    def __init__(self, check: Callable[[], Any], interval_s: float) -> None:
        self.check = check
        self.interval_s = float(interval_s)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_error: str | None = None

    def start(self) -> None:
        if self.interval_s <= 0 or self._thread is not None:
            return
        self._thread = threading.Thread(target=self._run, name="dancesearch-change-watcher", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                self.check()
                self._last_error = None
            except Exception as exc:  # noqa: BLE001 - keep watching; the old state keeps serving
                text = f"{type(exc).__name__}: {exc}"
                if text != self._last_error:
                    log.warning("automatic reload failed, still serving the previous state: %s", text)
                self._last_error = text
