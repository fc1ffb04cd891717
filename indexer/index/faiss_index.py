"""FAISS backend: exact (``flat``), graph (``hnsw``) and compressed (``ivfpq`` + exact re-ranking).

Design:
- FAISS's internal ids are positions 0..N-1; :class:`ClipAttributes` maps them to clip ids and
  holds the filter columns.  Incremental adds append positions, so no ``IndexIDMap`` is needed.
- Cosine = inner product on L2-normalised vectors (``METRIC_INNER_PRODUCT`` everywhere).
- ``ivfpq`` keeps only compressed codes in memory (``ivf_codec``: 8- or 4-bit scalar quantisation,
  or the earlier 4-bit fast-scan PQ); the full vectors live in ``vectors.npy`` which is
  memory-mapped and read only for the few candidates that are re-ranked exactly.  For ``flat`` and
  ``hnsw`` the full vectors are the index's own storage (no second copy).
- Search effort is tuned to a recall target (:meth:`FaissIndex.tune`): the builder passes the
  model's text embeddings of sample captions, and the cheapest ``ef_search`` (hnsw) or ``nprobe`` /
  re-rank depth (ivfpq) whose recall@10 against exact search reaches ``tune_target`` is kept.
  Fixed defaults cannot do this: the effort needed depends on the data and grows with N (on the
  model's embeddings grown to 1M, see bench/bench_index.py).
- Filtered search never loses results: small filtered sets are searched exactly over their
  vectors; larger ones go through the ANN with a FAISS ``IDSelectorBitmap`` (search-time filtering,
  not post-filtering) and, should the ANN still return fewer than ``min(k, matching)`` hits
  (HNSW can when the filter is selective), the search is redone exactly over the matching set.
- A GPU copy (flat / ivfpq) serves unfiltered searches when faiss was built with GPU support and a
  GPU is present; filtered searches stay on the CPU (selectors are CPU-only in FAISS).
"""
from __future__ import annotations

import math
import threading
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import faiss
import numpy as np

from .base import KINDS, Hits, VectorIndex, normalise
from .filters import ClipAttributes, ClipFilter


@dataclass
class FaissParams:
    """Tuning knobs (defaults measured in bench/bench_index.py on the model's embeddings).

    ``ef_search`` / ``nprobe`` / ``rerank_factor`` are starting points: :meth:`FaissIndex.tune` (run
    by the builder when ``tune_target`` is set) replaces them with the cheapest values meeting the
    recall target on sample queries.
    """

    hnsw_m: int = 32
    ef_construction: int = 200       # 80 -> 200: +4-5 points recall@10 at equal efSearch at 100k (bench)
    ef_search: int = 96
    nlist: int | None = None         # ivf lists; None: sqrt(N) at training time, in [1, 4096]
    ivf_codec: str = "sq8"           # ivfpq codes: "sq8" | "sq4" (scalar quantiser) | "pq4" (PQ{pq_m}x4 fast-scan)
    pq_m: int | None = None          # pq4: PQ sub-quantisers; None: D/4 (rounded to a divisor of D)
    pq_nbits: int = 4                # bits per code element (set at training time from ivf_codec)
    nprobe: int = 32
    rerank_factor: int = 50          # ivfpq: re-rank max(rerank_factor * k, 100) candidates exactly
    exact_filter_max: int = 20_000   # filtered sets up to this size are searched exactly
    use_gpu: bool = True
    trained_on: int = 0              # ivfpq: vectors the quantisers were trained on
    tune_target: float | None = 0.98  # recall@10 the builder tunes search effort to; None: keep the values above
    tuned_recall: float | None = None  # recall@10 on the tuning queries after the last tune()
    tune_queries: int = 0            # how many queries the last tune() used

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any] | None) -> "FaissParams":
        known = set(cls.__dataclass_fields__)
        d = dict(d or {})
        if "ivf_codec" not in d and d.get("pq_m"):  # written before ivf_codec existed: a PQ index
            d["ivf_codec"] = "pq4"
        return cls(**{k: v for k, v in d.items() if k in known})


def gpu_available() -> bool:
    """True when this faiss build has GPU support and sees a GPU."""
    return hasattr(faiss, "StandardGpuResources") and faiss.get_num_gpus() > 0


def _topk(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Row-wise top-k of a (Q, n) score matrix: (positions into n, scores), best first."""
    n = scores.shape[1]
    k = min(k, n)
    if k == 0:
        return np.zeros((len(scores), 0), dtype=np.int64), np.zeros((len(scores), 0), dtype=np.float32)
    part = np.argpartition(-scores, k - 1, axis=1)[:, :k] if k < n else np.tile(np.arange(n), (len(scores), 1))
    part_scores = np.take_along_axis(scores, part, axis=1)
    order = np.argsort(-part_scores, axis=1, kind="stable")
    return np.take_along_axis(part, order, axis=1), np.take_along_axis(part_scores, order, axis=1)


EF_LADDER = (16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512, 768, 1024, 1536, 2048, 3072, 4096)
"""hnsw ``ef_search`` values :meth:`FaissIndex.tune` tries, in order."""
NPROBE_LADDER = (1, 2, 4, 6, 8, 12, 16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512, 768, 1024, 1536, 2048, 3072)
"""ivfpq ``nprobe`` values :meth:`FaissIndex.tune` considers (then ``nlist`` itself: every list)."""
RERANK_LADDER = (10, 20, 50, 100, 200)
"""ivfpq ``rerank_factor`` values :meth:`FaissIndex.tune` tries (re-ranks max(factor * k, 100) candidates)."""


TUNE_Z = 1.645
"""tune() accepts a setting when mean recall - TUNE_Z * its standard error reaches the target (one-sided
95%): the sample queries only estimate the recall of the queries to come."""


def _recall(found: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """Per query: |found row & truth row| / |truth row| (padding -1 ignored; 1.0 for an empty truth row)."""
    out = np.ones(len(truth))
    for i, (f, t) in enumerate(zip(found, truth)):
        tset = set(t[t >= 0].tolist())
        if tset:
            out[i] = len(tset & set(f[f >= 0].tolist())) / len(tset)
    return out


def _lower_bound(per_query: np.ndarray) -> float:
    """Mean recall minus TUNE_Z standard errors."""
    if len(per_query) < 2:
        return float(per_query.mean()) if len(per_query) else 1.0
    return float(per_query.mean() - TUNE_Z * per_query.std(ddof=1) / np.sqrt(len(per_query)))


def _pq_m(dim: int, wanted: int | None) -> int:
    target = wanted or max(1, dim // 4)
    for m in range(min(target, dim), 0, -1):
        if dim % m == 0:
            return m
    return 1


class FaissIndex(VectorIndex):
    """A FAISS index of one kind over clip embeddings."""

    backend = "faiss"

    def __init__(self, kind: str, dim: int, params: FaissParams | None = None,
                 index: "faiss.Index | None" = None, attrs: ClipAttributes | None = None,
                 vectors: np.ndarray | None = None) -> None:
        if kind not in KINDS:
            raise ValueError(f"unknown index kind '{kind}' (expected one of {', '.join(KINDS)})")
        self.kind = kind
        self.dim = int(dim)
        self.params = params or FaissParams()
        self._attrs = attrs or ClipAttributes.empty()
        self._index = index if index is not None else self._new_index()
        self._ivf_vectors = vectors  # ivfpq only: full vectors (possibly a read-only memmap)
        self._lock = threading.Lock()
        self._gpu_index = None
        self._gpu_res = None
        self._id_order: np.ndarray | None = None

    # --- construction -----------------------------------------------------------------------------
    def _new_index(self) -> "faiss.Index | None":
        if self.kind == "flat":
            return faiss.IndexFlatIP(self.dim)
        if self.kind == "hnsw":
            idx = faiss.IndexHNSWFlat(self.dim, self.params.hnsw_m, faiss.METRIC_INNER_PRODUCT)
            idx.hnsw.efConstruction = self.params.ef_construction
            idx.hnsw.efSearch = self.params.ef_search
            return idx
        return None  # ivfpq: created on first add, sized from the training data

    def _train_ivfpq(self, x: np.ndarray) -> "faiss.Index":
        """IVF + compressed codes, re-ranked exactly from the full vectors.

        ``ivf_codec``:
        - ``sq8`` (default, D bytes per vector) / ``sq4`` (D/2 bytes): per-dimension scalar
          quantisation (``IVF{nlist},SQ8``).  On the model's embeddings the top-10 neighbours of a text
          query lie within ~0.01 cosine of each other, and scalar-quantised scores keep them apart:
          re-ranking 100 candidates gives the recall of an uncompressed IVF (bench/bench_index.py).
        - ``pq4``: 4-bit fast-scan PQ (``IVF{nlist},PQ{m}x4fs``, m/2 bytes per vector), the earlier
          default: 8x smaller, but its score error exceeds those gaps, so recall@10 stayed below 0.95
          even re-ranking 2,000 candidates.
        """
        n = len(x)
        nlist = self.params.nlist or int(max(1, min(4096, round(math.sqrt(n)))))
        nlist = max(1, min(nlist, n))
        codec = self.params.ivf_codec
        if codec == "pq4":
            m = _pq_m(self.dim, self.params.pq_m)
            spec, nbits = f"IVF{nlist},PQ{m}x4fs", 4
        elif codec in ("sq8", "sq4"):
            m, nbits = None, int(codec[2:])
            spec = f"IVF{nlist},SQ{nbits}"
        else:
            raise ValueError(f"unknown ivf_codec {codec!r} (expected sq8, sq4 or pq4)")
        idx = faiss.index_factory(self.dim, spec, faiss.METRIC_INNER_PRODUCT)
        rng = np.random.default_rng(0)
        want = max(64 * nlist, 40 * 16)
        sample = x if n <= want else x[np.sort(rng.choice(n, want, replace=False))]
        if len(sample) < 64:  # k-means needs at least as many points as centroids (16 per sub-quantiser)
            sample = np.tile(sample, (int(math.ceil(64 / len(sample))), 1))
        idx.train(np.ascontiguousarray(sample))
        faiss.extract_index_ivf(idx).nprobe = min(self.params.nprobe, nlist)
        self.params.nlist, self.params.pq_m, self.params.pq_nbits, self.params.trained_on = nlist, m, nbits, n
        return idx

    # --- VectorIndex ------------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self._attrs)

    def add(self, vectors: np.ndarray, attrs: ClipAttributes) -> None:
        x = normalise(vectors)
        if len(x) != len(attrs):
            raise ValueError(f"{len(x)} vectors but {len(attrs)} attribute rows")
        if x.shape[1] != self.dim:
            raise ValueError(f"vectors have dimension {x.shape[1]}, the index {self.dim}")
        if len(x) == 0:
            return
        clash = np.intersect1d(self._attrs.ids, attrs.ids)
        if len(clash) or len(np.unique(attrs.ids)) != len(attrs.ids):
            raise ValueError(f"clip ids already in the index or repeated: {clash[:5].tolist()}")
        with self._lock:
            if self.kind == "ivfpq":
                if self._index is None:
                    self._index = self._train_ivfpq(x)
                self._index.add(x)
                old = self._ivf_vectors if self._ivf_vectors is not None else np.zeros((0, self.dim), np.float32)
                self._ivf_vectors = np.concatenate([np.asarray(old), x])
            else:
                self._index.add(x)
            self._attrs.extend(attrs.ids.tolist(), attrs.values("genre"), [None if np.isnan(b) else float(b) for b in attrs.bpm],
                               attrs.values("split"), attrs.values("source"))
            self._gpu_index = None
            self._id_order = None

    def vectors(self) -> np.ndarray:
        """All vectors (N, D) in position order, without copying where FAISS allows."""
        n = len(self)
        if n == 0:
            return np.zeros((0, self.dim), dtype=np.float32)
        if self.kind == "ivfpq":
            return self._ivf_vectors
        flat = self._index if self.kind == "flat" else faiss.downcast_index(self._index.storage)
        return faiss.rev_swig_ptr(flat.get_xb(), n * self.dim).reshape(n, self.dim)

    def ids(self) -> np.ndarray:
        return self._attrs.ids

    def attributes(self) -> ClipAttributes:
        return self._attrs

    def positions_of(self, ids: np.ndarray) -> np.ndarray:
        """Index positions of clip ``ids``; KeyError for an id that is not indexed."""
        if self._id_order is None:
            self._id_order = np.argsort(self._attrs.ids, kind="stable")
        ids = np.asarray(ids, dtype=np.int64).reshape(-1)
        sorted_ids = self._attrs.ids[self._id_order]
        where = np.searchsorted(sorted_ids, ids)
        where = np.clip(where, 0, max(len(sorted_ids) - 1, 0))
        if len(sorted_ids) == 0 or not np.array_equal(sorted_ids[where], ids):
            missing = ids if len(sorted_ids) == 0 else ids[sorted_ids[where] != ids]
            raise KeyError(f"clip ids not in the index: {missing[:5].tolist()}")
        return self._id_order[where]

    def contains(self, clip_id: int) -> bool:
        try:
            self.positions_of(np.asarray([clip_id]))
            return True
        except KeyError:
            return False

    def vectors_for(self, ids: np.ndarray) -> np.ndarray:
        pos = self.positions_of(ids)
        return np.asarray(self.vectors()[pos], dtype=np.float32)

    def count(self, flt: ClipFilter | None = None) -> int:
        if flt is None or flt.is_empty:
            return len(self)
        return int(flt.mask(self._attrs).sum())

    def describe(self) -> dict[str, Any]:
        d = super().describe()
        d["params"] = self.params.to_dict()
        d["gpu"] = bool(self.params.use_gpu and gpu_available() and self.kind != "hnsw")
        return d

    # --- tuning -----------------------------------------------------------------------------------
    def tune(self, queries: np.ndarray, k: int = 10, target: float | None = None) -> dict[str, Any]:
        """Set the search effort to the cheapest setting whose recall@k on ``queries`` reaches ``target``.

        Recall is measured against exact search over this index's own vectors; a setting qualifies
        when its mean recall minus :data:`TUNE_Z` standard errors (over the queries) reaches ``target``.
        ``hnsw``: the smallest ``ef_search`` on :data:`EF_LADDER`.  ``ivfpq``: first the smallest
        ``nprobe`` whose probed lists hold ``target`` of the true neighbours (read off the coarse
        quantiser, no list is scanned), then the smallest re-rank depth on :data:`RERANK_LADDER`
        reaching ``target`` at that nprobe (nprobe steps up while even the deepest re-ranking falls
        short).  When no setting reaches the target, the most thorough one tried is kept and
        ``reached`` is False.  ``flat`` is exact.  Tuned on the CPU index, unfiltered (filtered search
        widens the effort by the filter's selectivity).  Returns what was chosen;
        ``params.tuned_recall`` / ``tune_queries`` record it.
        """
        target = self.params.tune_target if target is None else target
        target = 0.98 if target is None else float(target)
        q = normalise(queries)
        n = len(self)
        out: dict[str, Any] = {"kind": self.kind, "target": target, "queries": len(q), "count": n}
        if self.kind == "flat" or n == 0 or len(q) == 0:
            out.update(recall=1.0 if n else None, reached=True, tried=[])
            return out
        k = min(int(k), n)
        use_gpu, self.params.use_gpu = self.params.use_gpu, False  # the GPU copy would keep its own nprobe
        try:
            out.update(self._tune(q, k, target))
        finally:
            self.params.use_gpu = use_gpu
            self._gpu_index = None  # a new GPU copy picks up the tuned nprobe
        return out

    def _tune(self, q: np.ndarray, k: int, target: float) -> dict[str, Any]:
        out: dict[str, Any] = {}
        truth, _ = self._exact(q, np.arange(len(self), dtype=np.int64), k)

        tried: list[dict[str, Any]] = []
        r = lb = 0.0

        def meets(setting: dict[str, Any]) -> bool:
            nonlocal r, lb
            pos, _ = self._search_ann(q, k, None)
            per_query = _recall(pos[:, :k], truth)
            r, lb = float(per_query.mean()), _lower_bound(per_query)
            tried.append({**setting, "recall": round(r, 4), "lower_bound": round(lb, 4)})
            return lb >= target

        if self.kind == "hnsw":
            for ef in EF_LADDER:
                self.params.ef_search = ef
                if meets({"ef_search": ef}):
                    break
            self._index.hnsw.efSearch = self.params.ef_search
            out["ef_search"] = self.params.ef_search
        else:
            ivf = faiss.extract_index_ivf(self._index)
            nlist = int(ivf.nlist)
            probes = [p for p in NPROBE_LADDER if p < nlist] + [nlist]
            # which list each true neighbour is in, and the lists each query probes, best first
            wanted = np.unique(truth[truth >= 0])  # sorted
            wanted_vecs = np.ascontiguousarray(np.asarray(self.vectors())[wanted], dtype=np.float32)
            _, where = ivf.quantizer.search(wanted_vecs, 1)
            list_of = dict(zip(wanted.tolist(), where[:, 0].tolist()))
            _, probed = ivf.quantizer.search(q, nlist)
            rank = np.empty_like(probed)
            np.put_along_axis(rank, probed, np.arange(nlist)[None, :].repeat(len(q), 0), axis=1)
            need = np.array([[rank[i, list_of[p]] if p >= 0 else -1 for p in row] for i, row in enumerate(truth)])
            valid = (truth >= 0).sum(1)
            start = 0
            for start, p in enumerate(probes):
                in_probed = ((need >= 0) & (need < p)).sum(1) / np.maximum(valid, 1)
                if _lower_bound(np.where(valid > 0, in_probed, 1.0)) >= target:
                    break
            done = False
            for p in probes[start:]:
                self.params.nprobe = p
                for rf in RERANK_LADDER:
                    self.params.rerank_factor = rf
                    if meets({"nprobe": p, "rerank_factor": rf}):
                        done = True
                        break
                if done:
                    break
            ivf.nprobe = self.params.nprobe
            out.update(nprobe=self.params.nprobe, rerank_factor=self.params.rerank_factor)
        self.params.tuned_recall, self.params.tune_queries = round(r, 4), len(q)
        self.params.tune_target = target
        out.update(recall=round(r, 4), recall_lower_bound=round(lb, 4), reached=lb >= target, tried=tried)
        return out

    # --- search -----------------------------------------------------------------------------------
    def search(self, queries: np.ndarray, k: int, flt: ClipFilter | None = None) -> Hits:
        q = normalise(queries)
        k = int(k)
        n = len(self)
        if n == 0 or k <= 0:
            return Hits.empty(len(q), max(k, 0))
        if flt is None or flt.is_empty:
            pos, scores = self._search_ann(q, min(k, n), None)
            return self._to_hits(pos, scores, k)
        mask = flt.mask(self._attrs)
        allowed = np.flatnonzero(mask)
        want = min(k, len(allowed))
        if want == 0:
            return Hits.empty(len(q), k)
        if self.kind == "flat" and len(allowed) > self.params.exact_filter_max:
            pos, scores = self._search_ann(q, want, mask)
        elif len(allowed) <= self.params.exact_filter_max:
            pos, scores = self._exact(q, allowed, want)
        else:
            pos, scores = self._search_ann(q, want, mask)
            if (pos[:, :want] < 0).any():  # the ANN lost some: redo exactly over the matching set
                pos, scores = self._exact(q, allowed, want)
        return self._to_hits(pos, scores, k)

    def _to_hits(self, pos: np.ndarray, scores: np.ndarray, k: int) -> Hits:
        out = Hits.empty(len(pos), k)
        kk = min(k, pos.shape[1])
        valid = pos[:, :kk] >= 0
        out.ids[:, :kk] = np.where(valid, self._attrs.ids[np.clip(pos[:, :kk], 0, None)], -1)
        out.scores[:, :kk] = np.where(valid, scores[:, :kk], -np.inf)
        return out

    def _exact(self, q: np.ndarray, positions: np.ndarray, k: int, chunk: int = 65_536) -> tuple[np.ndarray, np.ndarray]:
        """Exact top-k over ``positions`` (sorted), in chunks so memory stays bounded.

        Inner products go through ``faiss.knn`` (FAISS's own kernels and thread setting), not numpy's
        BLAS: a multi-threaded OpenBLAS spinning on a busy 2-core machine made a 6k x 256 product take
        30-50 ms instead of 0.6 ms.
        """
        vecs = self.vectors()
        best_pos = np.full((len(q), 0), -1, dtype=np.int64)
        best_sc = np.zeros((len(q), 0), dtype=np.float32)
        for start in range(0, len(positions), chunk):
            p = positions[start:start + chunk]
            sub = np.ascontiguousarray(vecs[p], dtype=np.float32)
            kk = min(k, len(p))
            sc, top = faiss.knn(q, sub, kk, metric=faiss.METRIC_INNER_PRODUCT)
            cand_pos = np.concatenate([best_pos, p[top]], axis=1)
            cand_sc = np.concatenate([best_sc, sc], axis=1)
            sel, best_sc = _topk(cand_sc, k)
            best_pos = np.take_along_axis(cand_pos, sel, axis=1)
        return best_pos, best_sc

    def _selector_params(self, mask: np.ndarray | None, k: int, selectivity: float):
        sel = None
        keep: list[Any] = []
        if mask is not None:
            bitmap = np.packbits(mask, bitorder="little")
            keep.append(bitmap)
            sel = faiss.IDSelectorBitmap(len(mask), faiss.swig_ptr(bitmap))
            keep.append(sel)
        if self.kind == "flat":
            params = faiss.SearchParameters()
        elif self.kind == "hnsw":
            params = faiss.SearchParametersHNSW()
            ef = max(self.params.ef_search, 2 * k)
            if mask is not None:  # fewer neighbours pass the filter: widen the beam accordingly
                ef = int(min(max(ef, ef / max(selectivity, 1e-3)), 4096))
            params.efSearch = ef
        else:
            params = faiss.SearchParametersIVF()
            nprobe = self.params.nprobe
            if mask is not None:
                nprobe = int(min(self.params.nlist or 1, max(nprobe, nprobe / max(selectivity, 1e-3))))
            params.nprobe = nprobe
        if sel is not None:
            params.sel = sel
        return params, keep

    def _search_ann(self, q: np.ndarray, k: int, mask: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        """(positions, scores) from the FAISS index, re-ranked exactly for ivfpq."""
        n = len(self)
        fetch = min(n, max(self.params.rerank_factor * k, 100)) if self.kind == "ivfpq" else k
        selectivity = 1.0 if mask is None else float(mask.sum()) / n
        gpu = self._gpu() if mask is None else None
        if gpu is not None:
            scores, pos = gpu.search(q, fetch)
        else:
            params, _keep = self._selector_params(mask, fetch, selectivity)
            scores, pos = self._index.search(q, fetch, params=params)
        if self.kind != "ivfpq":
            return pos, scores
        return self._rerank(q, pos, k)

    def _rerank(self, q: np.ndarray, cand: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Exact scores for the PQ candidates, read from the (memory-mapped) full vectors."""
        vecs = self.vectors()
        out_pos = np.full((len(q), k), -1, dtype=np.int64)
        out_sc = np.full((len(q), k), -np.inf, dtype=np.float32)
        for i in range(len(q)):
            c = cand[i][cand[i] >= 0]
            if len(c) == 0:
                continue
            c = np.unique(c)  # sorted: sequential reads from the memmap
            sub = np.ascontiguousarray(vecs[c], dtype=np.float32)
            top_sc, top = faiss.knn(q[i:i + 1], sub, min(k, len(c)), metric=faiss.METRIC_INNER_PRODUCT)
            out_pos[i, :top.shape[1]] = c[top[0]]
            out_sc[i, :top.shape[1]] = top_sc[0]
        return out_pos, out_sc

    def _gpu(self):
        if self.kind == "hnsw" or not self.params.use_gpu or not gpu_available():
            return None
        with self._lock:
            if self._gpu_index is None:
                if self._gpu_res is None:
                    self._gpu_res = faiss.StandardGpuResources()
                self._gpu_index = faiss.index_cpu_to_gpu(self._gpu_res, 0, self._index)
            return self._gpu_index

    # --- persistence (used by store.py) ---------------------------------------------------------
    def write_index_file(self, path: Path) -> None:
        """Serialise the index to ``path`` through a Python file.

        Why not ``faiss.write_index(index, str(path))``: FAISS' own file writer only prints a close error
        (e.g. "No space left on device") and returns, leaving a truncated file that looks written.
        Through a Python file every failed write raises ``OSError`` with its errno.
        """
        with open(path, "wb") as fh:
            faiss.write_index(self._index, faiss.PyCallbackIOWriter(fh.write))

    @classmethod
    def from_parts(cls, kind: str, dim: int, params: FaissParams, index_path: Path | None,
                   attrs: ClipAttributes, vectors_path: Path | None) -> "FaissIndex":
        index = faiss.read_index(str(index_path)) if index_path is not None else None
        vectors = None
        if kind == "ivfpq" and vectors_path is not None:
            vectors = np.load(vectors_path, mmap_mode="r")
        if index is not None and index.ntotal != len(attrs):
            raise ValueError(f"index holds {index.ntotal} vectors but the attributes {len(attrs)}")
        out = cls(kind, dim, params, index, attrs, vectors)
        if kind == "hnsw" and index is not None:
            index.hnsw.efSearch = params.ef_search
        if kind == "ivfpq" and index is not None:
            faiss.extract_index_ivf(index).nprobe = min(params.nprobe, params.nlist or 1)
        return out
