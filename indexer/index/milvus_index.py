"""Milvus backend (pymilvus ``MilvusClient``): the same interface on a distributed engine.

For users who outgrow one machine: point ``--uri`` at a Milvus server or cluster
(``http://host:19530``); a local file path (``HOME/indexes/<name>/milvus.db``) runs Milvus Lite
in-process, which is what the tests use.  Filters are pushed down to Milvus as a boolean
expression over scalar fields (genre, bpm, split, source), so filtering happens inside the engine.
When an approximate Milvus index still returns fewer than ``min(k, matching)`` hits, the search
falls back to an exact scan of the matching rows (fetched by the same expression), so no result
is lost.

Kinds: ``flat`` -> FLAT, ``hnsw`` -> HNSW, ``ivfpq`` -> IVF_PQ on a server; Milvus Lite has no
IVF_PQ, so there ``ivfpq`` maps to IVF_SQ8 (also a compressed IVF index) and ``describe`` says so.
"""
from __future__ import annotations

import uuid
from typing import Any

import numpy as np

from encoders.errors import DanceSearchError

from .base import KINDS, Hits, VectorIndex, normalise
from .filters import ClipAttributes, ClipFilter

MAX_LIMIT = 16_384  # Milvus's top-k ceiling


class MilvusUnavailableError(DanceSearchError):
    """pymilvus is not installed or the Milvus endpoint cannot be reached."""


def _client(uri: str):
    try:
        from pymilvus import MilvusClient
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise MilvusUnavailableError("the milvus backend needs pymilvus (pip install 'dancesearch[milvus]')") from exc
    try:
        return MilvusClient(uri)
    except Exception as exc:  # pymilvus raises many types (MilvusException, ConnectionError, ...)
        raise MilvusUnavailableError(f"cannot connect to Milvus at {uri!r}: {exc}") from exc


def is_lite(uri: str) -> bool:
    """A local file URI means Milvus Lite (in-process)."""
    return not uri.startswith(("http://", "https://", "tcp://", "unix:"))


class MilvusIndex(VectorIndex):
    """A Milvus collection holding (id, vector, genre, bpm, split, source)."""

    backend = "milvus"

    def __init__(self, client: Any, uri: str, collection: str, dim: int, kind: str, attrs: ClipAttributes) -> None:
        if kind not in KINDS:
            raise ValueError(f"unknown index kind '{kind}' (expected one of {', '.join(KINDS)})")
        self._client = client
        self.uri = uri
        self.collection = collection
        self.dim = int(dim)
        self.kind = kind
        self._attrs = attrs

    # --- lifecycle ----------------------------------------------------------------------------------
    @staticmethod
    def index_type(kind: str, uri: str) -> tuple[str, dict[str, Any]]:
        if kind == "flat":
            return "FLAT", {}
        if kind == "hnsw":
            return "HNSW", {"M": 32, "efConstruction": 80}
        if is_lite(uri):
            return "IVF_SQ8", {"nlist": 128}
        return "IVF_PQ", {"nlist": 1024, "m": 16, "nbits": 8}

    @classmethod
    def create(cls, uri: str, dim: int, kind: str, collection: str | None = None) -> "MilvusIndex":
        """A new, empty collection (a fresh name, so the live one stays usable until the switch)."""
        from pymilvus import DataType

        client = _client(uri)
        name = collection or f"dancesearch_{uuid.uuid4().hex[:12]}"
        schema = client.create_schema(auto_id=False, enable_dynamic_field=False)
        schema.add_field("id", DataType.INT64, is_primary=True)
        schema.add_field("vector", DataType.FLOAT_VECTOR, dim=int(dim))
        schema.add_field("genre", DataType.VARCHAR, max_length=64)
        schema.add_field("bpm", DataType.FLOAT)
        schema.add_field("split", DataType.VARCHAR, max_length=16)
        schema.add_field("source", DataType.VARCHAR, max_length=64)
        itype, params = cls.index_type(kind, uri)
        index_params = client.prepare_index_params()
        index_params.add_index(field_name="vector", index_type=itype, metric_type="IP", params=params)
        if client.has_collection(name):
            client.drop_collection(name)
        client.create_collection(name, schema=schema, index_params=index_params)
        return cls(client, uri, name, dim, kind, ClipAttributes.empty())

    @classmethod
    def open(cls, uri: str, collection: str, dim: int, kind: str, attrs: ClipAttributes) -> "MilvusIndex":
        client = _client(uri)
        if not client.has_collection(collection):
            raise MilvusUnavailableError(f"Milvus at {uri!r} has no collection '{collection}'; rebuild the index")
        client.load_collection(collection)
        return cls(client, uri, collection, dim, kind, attrs)

    def drop(self) -> None:
        if self._client.has_collection(self.collection):
            self._client.drop_collection(self.collection)

    def close(self) -> None:
        try:
            self._client.close()
        except Exception:  # noqa: BLE001 - closing is best effort
            pass

    # --- VectorIndex ----------------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self._attrs)

    def ids(self) -> np.ndarray:
        return self._attrs.ids

    def attributes(self) -> ClipAttributes:
        return self._attrs

    def add(self, vectors: np.ndarray, attrs: ClipAttributes, batch: int = 2_000) -> None:
        x = normalise(vectors)
        if len(x) != len(attrs):
            raise ValueError(f"{len(x)} vectors but {len(attrs)} attribute rows")
        if len(x) and x.shape[1] != self.dim:
            raise ValueError(f"vectors have dimension {x.shape[1]}, the index {self.dim}")
        clash = np.intersect1d(self._attrs.ids, attrs.ids)
        if len(clash):
            raise ValueError(f"clip ids already in the index: {clash[:5].tolist()}")
        genres, splits, sources = attrs.values("genre"), attrs.values("split"), attrs.values("source")
        rows = [{"id": int(i), "vector": v.tolist(), "genre": g or "", "bpm": -1.0 if np.isnan(b) else float(b),
                 "split": s or "", "source": src or ""}
                for i, v, g, b, s, src in zip(attrs.ids.tolist(), x, genres, attrs.bpm.tolist(), splits, sources)]
        for start in range(0, len(rows), batch):
            self._client.insert(self.collection, rows[start:start + batch])
        if rows:
            self._client.flush(self.collection)
        self._attrs.extend(attrs.ids.tolist(), genres, [None if np.isnan(b) else float(b) for b in attrs.bpm],
                           splits, sources)

    def count(self, flt: ClipFilter | None = None) -> int:
        if flt is None or flt.is_empty:
            return len(self)
        return int(flt.mask(self._attrs).sum())

    def _search_params(self, k: int) -> dict[str, Any]:
        if self.kind == "hnsw":
            return {"metric_type": "IP", "params": {"ef": max(96, 2 * k)}}
        if self.kind == "ivfpq":
            return {"metric_type": "IP", "params": {"nprobe": 32}}
        return {"metric_type": "IP", "params": {}}

    def search(self, queries: np.ndarray, k: int, flt: ClipFilter | None = None) -> Hits:
        q = normalise(queries)
        k = int(k)
        out = Hits.empty(len(q), max(k, 0))
        if k <= 0 or len(self) == 0:
            return out
        want = min(k, self.count(flt))
        if want == 0:
            return out
        expr = "" if flt is None else flt.milvus_expr()
        limit = min(want, MAX_LIMIT)
        res = self._client.search(self.collection, data=q.tolist(), limit=limit, filter=expr,
                                  search_params=self._search_params(limit), output_fields=["id"])
        for i, hits in enumerate(res):
            pairs = [(int(h["id"]), float(h["distance"])) for h in hits]
            if len(pairs) < want:  # the ANN lost some: exact scan over the matching rows
                pairs = self._exact(q[i], want, expr)
            for j, (cid, sc) in enumerate(pairs[:k]):
                out.ids[i, j], out.scores[i, j] = cid, sc
        return out

    def _exact(self, q: np.ndarray, k: int, expr: str, page: int = 2_000) -> list[tuple[int, float]]:
        ids: list[int] = []
        vecs: list[list[float]] = []
        it = self._client.query_iterator(self.collection, batch_size=page, filter=expr, output_fields=["id", "vector"])
        try:
            while True:
                rows = it.next()
                if not rows:
                    break
                ids.extend(int(r["id"]) for r in rows)
                vecs.extend(r["vector"] for r in rows)
        finally:
            it.close()
        if not ids:
            return []
        sc = np.asarray(vecs, dtype=np.float32) @ q
        order = np.argsort(-sc, kind="stable")[:k]
        return [(ids[o], float(sc[o])) for o in order]

    def vectors_for(self, ids: np.ndarray) -> np.ndarray:
        ids = [int(i) for i in np.asarray(ids).reshape(-1)]
        if not ids:
            return np.zeros((0, self.dim), dtype=np.float32)
        rows = self._client.get(self.collection, ids=ids, output_fields=["vector"])
        by_id = {int(r["id"]): r["vector"] for r in rows}
        missing = [i for i in ids if i not in by_id]
        if missing:
            raise KeyError(f"clip ids not in the index: {missing[:5]}")
        return np.asarray([by_id[i] for i in ids], dtype=np.float32)

    def all_vectors(self, page: int = 2_000) -> tuple[np.ndarray, np.ndarray]:
        """(ids, vectors) of every row, for rebuilding and centroids."""
        ids = self.ids()
        if len(ids) == 0:
            return ids, np.zeros((0, self.dim), dtype=np.float32)
        chunks = [self.vectors_for(ids[s:s + page]) for s in range(0, len(ids), page)]
        return ids, np.concatenate(chunks)

    def describe(self) -> dict[str, Any]:
        d = super().describe()
        itype, params = self.index_type(self.kind, self.uri)
        d["milvus"] = {"uri": self.uri, "collection": self.collection, "index_type": itype, "index_params": params,
                       "lite": is_lite(self.uri)}
        return d
