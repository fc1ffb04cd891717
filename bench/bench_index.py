"""Index benchmark: search latency p50 / p99, recall@10 against exact search, memory and build time
for FAISS flat / hnsw / ivfflat / ivfpq at several corpus sizes, in one run on this machine.

Data (reported with every figure, in the result file's ``data`` and ``growth`` fields):
- ``clustered``: a clustered mixture model standing in for clip embeddings: 256 mixture components in
  a 32-d latent space, mapped to D dimensions by a fixed random linear map, plus isotropic noise
  carrying ~10% of the variance, L2-normalised.  Queries are fresh draws from the same mixture.
- ``model``: the model's own clip embeddings grown to N; queries are the model's text embeddings of
  the corpus captions.  The clip embeddings come from ``--from-index HOME/indexes/NAME``; when that
  index was built by another model than ``--run``, the catalog's clips are re-embedded with ``--run``
  (text queries and clip vectors always come from the same model).  Growth (``--growth``):

  - ``subspace`` (default): ``normalise(a*e_i + (1-a)*e_j + s * sum_c sigma_c z_c v_c)``, a same-genre
    mixture of two real embeddings (a ~ U(0, 1)) plus Gaussian noise inside the real embeddings'
    principal subspace (the components v_c holding 99.99% of their variance), each component's noise
    proportional to that component's standard deviation sigma_c (noise ~ N(0, s^2 Cov) restricted to
    the subspace).  ``--noise-scale auto`` calibrates s: the grid value whose grown set, in samples of
    the real corpus's size, has the nearest-neighbour cosine distribution closest (Kolmogorov-Smirnov)
    to the real corpus's own.
  - ``isotropic`` (the earlier growth, kept for comparison): the same mixtures plus N(0, s^2) in all
    D dimensions (s = 0.03 by default: noise norm ~0.48 against unit signal, noise-dominated).

  The PCA of the real embeddings, the calibration grid and the nearest-neighbour cosine statistics of
  the real and the grown data are written to the result file.
iid Gaussian noise is NOT used: nearest neighbours of noise are nearly equidistant and no ANN
index reaches useful recall on it, which says nothing about real embeddings.

Kinds: ``flat``, ``hnsw``, ``ivfpq`` are the product's index kinds (indexer/index/faiss_index.py);
``ivfflat`` is a bench-only FAISS IVF-Flat for comparison.  Search-time knobs are swept on one build
(``--ef-search``, ``--nprobe``, ``--rerank`` take several values); build-time knobs (``--hnsw-m``,
``--ef-construction``, ``--nlist``) give one build per combination.

Usage: python bench/bench_index.py --sizes 10000 100000 [--kinds flat hnsw ivfpq] [--out bench/results/index.json]
       python bench/bench_index.py --table bench/results/index.json
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import faiss
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from indexer.index import ClipAttributes, ClipFilter, FaissIndex, FaissParams, normalise  # noqa: E402

KIND_ORDER = ["flat", "hnsw", "ivfflat", "ivfpq"]
CALIBRATION_SCALES = [0.0, 0.025, 0.05, 0.075, 0.1, 0.125, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5]


def rss_bytes() -> int:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def load_average() -> list[float]:
    """``uptime``'s 1 / 5 / 15 minute load averages."""
    return [round(v, 2) for v in os.getloadavg()]


# --- data ----------------------------------------------------------------------------------------
def clustered(n: int, d: int, seed: int, components: int = 256, latent: int = 32, noise_share: float = 0.1,
              chunk: int = 100_000) -> np.ndarray:
    rng = np.random.default_rng(1234)  # the mixture itself is fixed; ``seed`` picks the samples
    means = rng.normal(size=(components, latent)) * 2.0
    scales = rng.uniform(0.3, 1.0, size=components)
    proj = rng.normal(size=(latent, d)) / np.sqrt(latent)
    signal_var = float(np.mean((means @ proj) ** 2)) + 1.0
    sigma = np.sqrt(noise_share / (1 - noise_share) * signal_var / d) * np.sqrt(d) / np.sqrt(d)
    draw = np.random.default_rng(seed)
    out = np.empty((n, d), dtype=np.float32)
    for s in range(0, n, chunk):
        m = min(chunk, n - s)
        comp = draw.integers(0, components, m)
        z = means[comp] + draw.normal(size=(m, latent)) * scales[comp, None]
        x = z @ proj + draw.normal(size=(m, d)) * sigma
        out[s:s + m] = normalise(x)
    return out


def grown_from_model(base: np.ndarray, genres: np.ndarray, n: int, seed: int, noise: float = 0.03,
                     chunk: int = 100_000) -> np.ndarray:
    """The earlier isotropic growth, unchanged (bench_api.py uses it)."""
    draw = np.random.default_rng(seed)
    by_genre = [np.flatnonzero(genres == g) for g in np.unique(genres)]
    out = np.empty((n, base.shape[1]), dtype=np.float32)
    for s in range(0, n, chunk):
        m = min(chunk, n - s)
        g = draw.integers(0, len(by_genre), m)
        i = np.array([by_genre[k][draw.integers(0, len(by_genre[k]))] for k in g])
        j = np.array([by_genre[k][draw.integers(0, len(by_genre[k]))] for k in g])
        a = draw.uniform(0, 1, size=(m, 1)).astype(np.float32)
        x = a * base[i] + (1 - a) * base[j] + noise * draw.normal(size=(m, base.shape[1])).astype(np.float32)
        out[s:s + m] = normalise(x)
    return out


@dataclass
class Subspace:
    """The principal subspace of the real embeddings: mean, components (r, D), per-component std (r,)."""

    mean: np.ndarray
    components: np.ndarray
    std: np.ndarray
    keep: float

    @property
    def rank(self) -> int:
        return len(self.std)


def principal_subspace(base: np.ndarray, keep: float = 0.9999) -> Subspace:
    x = np.asarray(base, dtype=np.float64)
    mu = x.mean(0)
    _, s, vt = np.linalg.svd(x - mu, full_matrices=False)
    var = s ** 2 / max(len(x) - 1, 1)
    r = int(np.searchsorted(np.cumsum(var) / var.sum(), keep)) + 1
    return Subspace(mu.astype(np.float32), vt[:r].astype(np.float32), np.sqrt(var[:r]).astype(np.float32), keep)


def pca_summary(base: np.ndarray) -> dict[str, Any]:
    """How low-dimensional the real embeddings are: components for a share of the variance, effective rank."""
    x = np.asarray(base, dtype=np.float64)
    s = np.linalg.svd(x - x.mean(0), compute_uv=False)
    frac = s ** 2 / np.sum(s ** 2)
    cum = np.cumsum(frac)
    nz = frac[frac > 0]
    return {"vectors": int(len(x)), "dim": int(x.shape[1]),
            "components_for_variance": {str(t): int(np.searchsorted(cum, t)) + 1
                                        for t in (0.5, 0.8, 0.9, 0.95, 0.99, 0.999, 0.9999)},
            "participation_ratio": round(float(1 / np.sum(frac ** 2)), 2),
            "entropy_effective_rank": round(float(np.exp(-np.sum(nz * np.log(nz)))), 2),
            "top10_variance_share": [round(float(f), 4) for f in frac[:10]],
            "mean_norm": round(float(np.linalg.norm(x.mean(0))), 4)}


def grow(base: np.ndarray, genres: np.ndarray, n: int, seed: int, growth: str, scale: float,
         sub: Subspace | None = None, chunk: int = 100_000) -> np.ndarray:
    """``n`` vectors grown from ``base``: same-genre mixtures plus ``growth`` noise of size ``scale``."""
    draw = np.random.default_rng(seed)
    order = np.argsort(genres, kind="stable")
    _, starts, counts = np.unique(genres[order], return_index=True, return_counts=True)
    d = base.shape[1]
    out = np.empty((n, d), dtype=np.float32)
    for s in range(0, n, chunk):
        m = min(chunk, n - s)
        g = draw.integers(0, len(starts), m)
        i = order[starts[g] + (draw.random(m) * counts[g]).astype(np.int64)]
        j = order[starts[g] + (draw.random(m) * counts[g]).astype(np.int64)]
        a = draw.uniform(0, 1, size=(m, 1)).astype(np.float32)
        x = a * base[i] + (1 - a) * base[j]
        if growth == "isotropic":
            x += scale * draw.standard_normal(size=(m, d), dtype=np.float32)
        elif growth == "subspace":
            assert sub is not None
            z = draw.standard_normal(size=(m, sub.rank), dtype=np.float32) * (scale * sub.std)
            x += z @ sub.components
        else:
            raise ValueError(f"unknown growth {growth!r}")
        out[s:s + m] = normalise(x)
    return out


def nn_cos(a: np.ndarray, b: np.ndarray | None = None) -> np.ndarray:
    """Cosine of each row of ``a`` to its nearest neighbour in ``b`` (in ``a`` itself, excluding itself, when None)."""
    if b is None:
        sc, ix = faiss.knn(a, a, 2, metric=faiss.METRIC_INNER_PRODUCT)
        own = ix[:, 0] == np.arange(len(a))
        return np.where(own, sc[:, 1], sc[:, 0])
    sc, _ = faiss.knn(a, b, 1, metric=faiss.METRIC_INNER_PRODUCT)
    return sc[:, 0]


def ks_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Two-sample Kolmogorov-Smirnov statistic (max CDF difference)."""
    a, b = np.sort(a), np.sort(b)
    v = np.concatenate([a, b])
    return float(np.max(np.abs(np.searchsorted(a, v, "right") / len(a) - np.searchsorted(b, v, "right") / len(b))))


def pct(v: np.ndarray) -> dict[str, float]:
    return {f"p{p}": round(float(np.percentile(v, p)), 4) for p in (5, 25, 50, 75, 95)}


def growth_statistics(base: np.ndarray, genres: np.ndarray, growth: str, scale: float | None, sub: Subspace,
                      samples: int = 3) -> tuple[float, dict[str, Any]]:
    """Calibrate (``scale`` None) or check the growth noise against the real nearest-neighbour cosines.

    Statistic: the cosine of every clip to its nearest other clip, in the real corpus and in grown
    samples of the real corpus's size (``samples`` draws); two-sample KS distance between them
    ("within").  Also reported: the cosine of grown vectors to their nearest real clip ("to_real",
    which should look like a real clip's cosine to its nearest other real clip).
    """
    real = nn_cos(base)

    def stats(s: float) -> dict[str, Any]:
        within, to_real = [], []
        for k in range(samples):
            y = grow(base, genres, len(base), seed=1000 + k, growth=growth, scale=s, sub=sub)
            within.append(nn_cos(y))
            to_real.append(nn_cos(y, base))
        w, t = np.concatenate(within), np.concatenate(to_real)
        return {"scale": s, "ks_within": round(ks_distance(w, real), 4), "ks_to_real": round(ks_distance(t, real), 4),
                "nn_cos_within": pct(w), "nn_cos_to_real": pct(t)}

    grid = [stats(s) for s in CALIBRATION_SCALES] if growth == "subspace" else []
    if scale is None:
        best = min(grid, key=lambda r: r["ks_within"])
        scale, source = best["scale"], "calibrated: minimum ks_within over the grid"
    else:
        source = "given (--noise-scale)"
    chosen = stats(scale)
    return scale, {"mode": growth, "scale": scale, "scale_source": source,
                   "statistic": ("nearest-neighbour cosine of each clip to the rest of its set: real corpus vs grown "
                                 f"samples of the same size ({samples} draws); KS = two-sample Kolmogorov-Smirnov"),
                   "nn_cos_real": pct(real), "chosen": chosen, "calibration_grid": grid,
                   "subspace_rank": sub.rank if growth == "subspace" else None,
                   "subspace_variance_kept": sub.keep if growth == "subspace" else None}


def attrs(n: int) -> ClipAttributes:
    genres = np.array(["g%d" % (i % 8) for i in range(n)])
    a = ClipAttributes.empty()
    a.ids = np.arange(n, dtype=np.int64)
    a.bpm = (60 + (np.arange(n) * 7919) % 120).astype(np.float32)
    a.genre_vocab = sorted(set(genres.tolist()))
    a.genre = np.searchsorted(a.genre_vocab, genres).astype(np.int32)
    a.split = np.zeros(n, dtype=np.int32)
    a.split_vocab = ["train"]
    a.source = np.zeros(n, dtype=np.int32)
    a.source_vocab = ["bench"]
    return a


def exact_topk(x: np.ndarray, q: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Exact (ids, cosines) of the top ``k`` (FAISS's blocked brute force)."""
    sc, ix = faiss.knn(np.ascontiguousarray(q), x, k, metric=faiss.METRIC_INNER_PRODUCT)
    return ix, sc


def measure(idx: Any, q: np.ndarray, k: int, flt: ClipFilter | None = None) -> tuple[np.ndarray, list[float]]:
    ids = np.empty((len(q), k), dtype=np.int64)
    lat = []
    for i in range(len(q)):
        t = time.perf_counter()
        h = idx.search(q[i:i + 1], k, flt)
        lat.append((time.perf_counter() - t) * 1000)
        ids[i] = h.ids[0]
    return ids, lat


# --- model data ----------------------------------------------------------------------------------
def model_data(from_index: Path, run: str | None, queries: int, tune_queries: int = 500,
               cache: Path | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, str]:
    """(clip embeddings, clip genres, text query embeddings, disjoint tuning query embeddings, provenance)
    of ``run`` over the index's catalog; kept in ``cache`` (a folder) keyed by both model ids and sizes."""
    from indexer.index.embedder import load_embedder
    from indexer.index.store import load_index

    loaded = load_index(from_index)
    emb = load_embedder(run)
    home = from_index.resolve().parents[1]   # HOME/indexes/<name> -> HOME
    key = f"{emb.model_id}_{loaded.model_id}_{len(loaded.index)}_{queries}_{tune_queries}.npz"
    if cache is not None and (cache / key).exists():
        z = np.load(cache / key, allow_pickle=False)
        return z["base"], z["genres"], z["q"], z["q_tune"], str(z["provenance"])
    out = _model_data(loaded, emb, home, run, queries, tune_queries)
    if cache is not None:
        cache.mkdir(parents=True, exist_ok=True)
        np.savez(cache / key, base=out[0], genres=out[1], q=out[2], q_tune=out[3], provenance=np.str_(out[4]))
    return out


def _model_data(loaded: Any, emb: Any, home: Path, run: str | None, queries: int,
                tune_queries: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, str]:
    from indexer.catalog import Catalog

    if loaded.model_id == emb.model_id:
        base = np.asarray(loaded.index.vectors(), dtype=np.float32)
        genres = np.asarray(loaded.index.attributes().values("genre"))
        ids = loaded.index.ids().tolist()
        how = f"the index's {len(base)} stored clip vectors"
    else:
        from indexer.index.builder import embed_clips
        from indexer.workspace import Workspace

        ws = Workspace(home)
        with Catalog(ws.db_url, create=False) as cat:
            clips = cat.clips()
        print(f"index model {loaded.model_id} != run model {emb.model_id}: re-embedding {len(clips)} clips",
              file=sys.stderr, flush=True)
        base = embed_clips(ws, emb, clips)
        genres = np.asarray([c.genre for c in clips])
        ids = [c.id for c in clips]
        how = f"the catalog's {len(base)} clips re-embedded (the index was built by model {loaded.model_id})"
    with Catalog(f"sqlite:///{home / 'catalog.sqlite'}", create=False) as cat:
        caps = [t for texts in cat.captions_for(ids).values() for t in texts]
    if not caps:
        raise SystemExit(f"--data model needs the captions of the index's clips in {home / 'catalog.sqlite'}")
    rng = np.random.default_rng(7)
    pick = rng.choice(len(caps), min(queries, len(caps)), replace=len(caps) < queries)
    q = normalise(emb.encode_text([caps[i] for i in pick]))
    rest = np.setdiff1d(np.arange(len(caps)), pick)  # tuning queries never measure
    tpick = np.random.default_rng(8).choice(rest, min(tune_queries, len(rest)), replace=False) if len(rest) else pick
    q_tune = normalise(emb.encode_text([caps[i] for i in tpick]))
    return normalise(base), genres, q, q_tune, f"model {emb.model_id} ({run or 'models/demo'}), {how}"


# --- index configurations ------------------------------------------------------------------------
class IvfFlat:
    """Bench-only IVF-Flat (FAISS ``IndexIVFFlat``, inner product) with the product's filtered-search rules."""

    kind = "ivfflat"

    def __init__(self, dim: int, nlist: int, nprobe: int = 32, exact_filter_max: int = 20_000) -> None:
        self.dim, self.nlist, self.nprobe, self.exact_filter_max = dim, nlist, nprobe, exact_filter_max
        self._quantiser = faiss.IndexFlatIP(dim)
        self._index = faiss.IndexIVFFlat(self._quantiser, dim, nlist, faiss.METRIC_INNER_PRODUCT)
        self._x: np.ndarray | None = None
        self._attrs: ClipAttributes | None = None

    def add(self, x: np.ndarray, at: ClipAttributes) -> None:
        rng = np.random.default_rng(0)
        want = 64 * self.nlist
        sample = x if len(x) <= want else x[np.sort(rng.choice(len(x), want, replace=False))]
        self._index.train(np.ascontiguousarray(sample))
        self._index.add(x)
        self._x, self._attrs = x, at

    def search(self, q: np.ndarray, k: int, flt: ClipFilter | None = None) -> SimpleNamespace:
        params = faiss.SearchParametersIVF()
        params.nprobe = min(self.nprobe, self.nlist)
        keep: list[Any] = []
        if flt is not None and not flt.is_empty:
            mask = flt.mask(self._attrs)
            allowed = np.flatnonzero(mask)
            if len(allowed) <= self.exact_filter_max:
                sc, ix = faiss.knn(q, np.ascontiguousarray(self._x[allowed]), min(k, len(allowed)),
                                   metric=faiss.METRIC_INNER_PRODUCT)
                return SimpleNamespace(ids=allowed[ix])
            bitmap = np.packbits(mask, bitorder="little")
            sel = faiss.IDSelectorBitmap(len(mask), faiss.swig_ptr(bitmap))
            keep += [bitmap, sel]
            params.sel = sel
            params.nprobe = int(min(self.nlist, max(self.nprobe, self.nprobe / max(mask.mean(), 1e-3))))
        _, ix = self._index.search(q, k, params=params)
        return SimpleNamespace(ids=ix)

    def write_index_file(self, path: Path) -> None:
        faiss.write_index(self._index, str(path))


def build_configs(kind: str, n: int, args: argparse.Namespace) -> list[dict[str, Any]]:
    """One dict per build; each carries the list of search settings swept on it."""
    nlist_default = int(max(1, min(4096, round(np.sqrt(n)))))
    if kind == "flat":
        return [{"build": {}, "search": [{}]}]
    if kind == "hnsw":
        efs = args.ef_search or [FaissParams().ef_search]
        return [{"build": {"hnsw_m": m, "ef_construction": efc}, "search": [{"ef_search": e} for e in efs]}
                for m in (args.hnsw_m or [FaissParams().hnsw_m])
                for efc in (args.ef_construction or [FaissParams().ef_construction])]
    probes = args.nprobe or [FaissParams().nprobe]
    if kind == "ivfflat":
        return [{"build": {"nlist": nl}, "search": [{"nprobe": p} for p in probes]}
                for nl in (args.nlist or [nlist_default])]
    reranks = args.rerank or [FaissParams().rerank_factor]
    return [{"build": {"nlist": nl, "ivf_codec": c}, "search": [{"nprobe": p, "rerank_factor": r} for p in probes for r in reranks]}
            for nl in (args.nlist or [None]) for c in (args.ivf_codec or [FaissParams().ivf_codec])]


def make_index(kind: str, dim: int, build: dict[str, Any]) -> Any:
    if kind == "ivfflat":
        return IvfFlat(dim, build["nlist"])
    params = FaissParams(**{k: v for k, v in build.items() if v is not None})
    return FaissIndex(kind, dim, params)


def apply_search(idx: Any, setting: dict[str, Any]) -> None:
    for key, value in setting.items():
        if isinstance(idx, IvfFlat):
            setattr(idx, key, value)
        else:
            setattr(idx.params, key, value)


def label(kind: str, build: dict[str, Any], setting: dict[str, Any], idx: Any) -> str:
    if kind == "flat":
        return "flat"
    if kind == "hnsw":
        return f"hnsw M{build['hnsw_m']} efC{build['ef_construction']} efSearch {setting['ef_search']}"
    nlist = idx.nlist if isinstance(idx, IvfFlat) else idx.params.nlist
    if kind == "ivfflat":
        return f"ivfflat nlist {nlist} nprobe {setting['nprobe']}"
    p = idx.params
    codec = f"PQ{p.pq_m}x4fs" if p.ivf_codec == "pq4" else p.ivf_codec.upper()
    return f"ivfpq {codec} nlist {nlist} nprobe {setting['nprobe']} re-rank {max(setting['rerank_factor'] * 10, 100)}"


def index_file_bytes(idx: Any, tmp_dir: str) -> int:
    with tempfile.TemporaryDirectory(dir=tmp_dir) as d:
        p = Path(d) / "index.faiss"
        idx.write_index_file(p)
        return p.stat().st_size


# --- output --------------------------------------------------------------------------------------
def markdown_table(path: Path) -> str:
    """The README table of a results file."""
    d = json.loads(path.read_text())
    la = d["machine"].get("load_average_start"), d["machine"].get("load_average_end")
    head = f"Data: {d['data']}. {d['queries']} queries, k = {d['k']}; {d['machine']['note']}; {d['date']}."
    if la[0]:
        head += f" Load average (1/5/15 min) at start {la[0]}, at end {la[1]}."
    lines = [head, "",
             "| vectors | config | build s | p50 ms | p99 ms | recall@10 | filtered p50 ms | filtered recall@10 | index MB | bytes / vector | RSS MB |",
             "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in d["results"]:
        lines.append(f"| {r['n']:,} | {r.get('label', r['kind'])} | {r['build_s']} | {r['p50_ms']} | {r['p99_ms']} | "
                     f"{r['recall_at_10']} | {r['filtered_p50_ms']} | {r['filtered_recall_at_10']} | {r['index_mb']} | "
                     f"{r['bytes_per_vector']} | {r.get('rss_mb', '')} |")
    return "\n".join(lines)


def _row_key(r: dict[str, Any]) -> tuple:
    return (r["n"], KIND_ORDER.index(r["kind"]) if r["kind"] in KIND_ORDER else 99)  # stable: run order within


def main() -> int:
    if len(sys.argv) == 3 and sys.argv[1] == "--table":
        print(markdown_table(Path(sys.argv[2])))
        return 0
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    ap.add_argument("--kinds", nargs="+", default=["flat", "hnsw", "ivfpq"], choices=KIND_ORDER)
    ap.add_argument("--dim", type=int, default=256)
    ap.add_argument("--queries", type=int, default=300)
    ap.add_argument("--data", choices=("clustered", "model"), default="clustered")
    ap.add_argument("--from-index", type=Path, default=None, help="index folder whose clips seed --data model")
    ap.add_argument("--run", default=None, help="model run for clip and text embeddings (--data model)")
    ap.add_argument("--growth", choices=("subspace", "isotropic"), default="subspace",
                    help="--data model: how the real embeddings are grown to N (see above)")
    ap.add_argument("--noise-scale", default="auto",
                    help="growth noise: 'auto' (subspace: calibrated; isotropic: 0.03) or a number")
    ap.add_argument("--hnsw-m", type=int, nargs="+", default=None)
    ap.add_argument("--ef-construction", type=int, nargs="+", default=None)
    ap.add_argument("--ef-search", type=int, nargs="+", default=None)
    ap.add_argument("--nlist", type=int, nargs="+", default=None, help="ivf lists (default sqrt(N))")
    ap.add_argument("--nprobe", type=int, nargs="+", default=None)
    ap.add_argument("--rerank", type=int, nargs="+", default=None, help="ivfpq: candidates re-ranked = rerank * k")
    ap.add_argument("--ivf-codec", nargs="+", default=None, choices=("sq8", "sq4", "pq4"), help="ivfpq codes")
    ap.add_argument("--tune-target", type=float, default=None,
                    help="hnsw / ivfpq: instead of the sweep, FaissIndex.tune() to this recall@10 on separate "
                         "tuning queries (model: 500 other captions), then measure on the benchmark queries")
    ap.add_argument("--threads", type=int, default=1, help="FAISS OpenMP threads per search (server default 1)")
    ap.add_argument("--build-threads", type=int, default=1, help="FAISS OpenMP threads while building")
    ap.add_argument("--cache", type=Path, default=None,
                    help="--data model: folder keeping the embedded clips and queries between runs")
    ap.add_argument("--tmp", default=None, help="folder for the temporary index file that measures index size")
    ap.add_argument("--out", type=Path, default=Path("bench/results/index.json"),
                    help="results file; rows of the same data are merged into it (same label: replaced)")
    ap.add_argument("--replace", action="store_true", help="overwrite --out even if it holds other data")
    args = ap.parse_args()

    load_start = load_average()
    faiss.omp_set_num_threads(args.threads)  # the server's per-request setting (search_api ApiSettings.faiss_threads)
    k = 10
    data_note: str
    growth_info: dict[str, Any] | None = None
    if args.data == "model":
        if args.from_index is None:
            raise SystemExit("--data model needs --from-index HOME/indexes/NAME")
        base, genres, q, q_tune, provenance = model_data(args.from_index, args.run, args.queries, cache=args.cache)
        dim = base.shape[1]
        sub = principal_subspace(base)
        scale = None if args.noise_scale == "auto" else float(args.noise_scale)
        if scale is None and args.growth == "isotropic":
            scale = 0.03
        scale, growth_info = growth_statistics(base, genres, args.growth, scale, sub)
        growth_info["pca"] = pca_summary(base)
        if args.growth == "subspace":
            noise = (f"+ N(0, ({scale:g} sigma_c)^2) noise in each of the top {sub.rank} principal components "
                     f"(99.99% of the variance)")
        else:
            noise = f"+ isotropic N(0, {scale:g}^2) noise in all {dim} dims"
        c = growth_info["chosen"]
        data_note = (f"{provenance}; dim {dim}; grown by same-genre mixtures a*e_i+(1-a)*e_j {noise}, L2-normalised "
                     f"(growth '{args.growth}'; nearest-neighbour cosine p50 real {growth_info['nn_cos_real']['p50']} vs "
                     f"grown {c['nn_cos_within']['p50']} at {len(base)}-vector samples, KS {c['ks_within']}); "
                     f"queries: the model's text embeddings of corpus captions")
        make = lambda n: grow(base, genres, n, seed=1, growth=args.growth, scale=scale, sub=sub)  # noqa: E731
        print(json.dumps({k2: v for k2, v in growth_info.items() if k2 != "calibration_grid"}), file=sys.stderr, flush=True)
    else:
        dim = args.dim
        q = clustered(args.queries, dim, seed=99)
        q_tune = clustered(500, dim, seed=98)
        data_note = (f"clustered mixture (256 components in a 32-d latent space, linear map to {dim}-d, 10% isotropic "
                     f"noise variance, L2-normalised); queries: fresh draws from the same mixture")
        make = lambda n: clustered(n, dim, seed=1)  # noqa: E731

    if args.out.exists() and not args.replace:
        prev_data = json.loads(args.out.read_text()).get("data")
        if prev_data != data_note:  # e.g. the model was retrained: never mix, never silently overwrite
            raise SystemExit(f"{args.out} holds results for other data:\n  {prev_data}\nthis run:\n  {data_note}\n"
                             "pass another --out, or --replace to overwrite it")
    results = []
    data_stats = []
    for n in args.sizes:
        x = make(n)
        at = attrs(n)
        t = time.perf_counter()
        truth, truth_sc = exact_topk(x, q, k)
        truth_s = time.perf_counter() - t
        flt = ClipFilter.build(["g3"], bpm_min=90, bpm_max=150)  # ~1/8 x 1/2 of the corpus
        mask = flt.mask(at)
        qf = q[: min(100, len(q))]
        allowed = np.flatnonzero(mask)
        _, fix = faiss.knn(qf, np.ascontiguousarray(x[allowed]), k, metric=faiss.METRIC_INNER_PRODUCT)
        truth_f = [set(allowed[row].tolist()) for row in fix]
        rand_sc = q @ x[np.random.default_rng(3).choice(n, min(n, 2000), replace=False)].T
        data_stats.append({"n": n, "query_top1_cos": pct(truth_sc[:, 0]), "query_top10_cos": pct(truth_sc[:, -1]),
                           "query_random_cos_mean": round(float(rand_sc.mean()), 4),
                           "query_top1_minus_top10_p50": round(float(np.median(truth_sc[:, 0] - truth_sc[:, -1])), 4)})
        print(f"n={n}: data ready, exact ground truth {truth_s:.1f}s; {json.dumps(data_stats[-1])}",
              file=sys.stderr, flush=True)
        for kind in args.kinds:
            for cfg in build_configs(kind, n, args):
                rss0 = rss_bytes()
                faiss.omp_set_num_threads(args.build_threads)
                t = time.perf_counter()
                idx = make_index(kind, dim, cfg["build"])
                idx.add(x, at)
                build_s = time.perf_counter() - t
                faiss.omp_set_num_threads(args.threads)
                rss1 = rss_bytes()
                index_bytes = index_file_bytes(idx, args.tmp)
                settings = [(s_, False) for s_ in cfg["search"]]
                if args.tune_target is not None and kind in ("hnsw", "ivfpq"):
                    settings.append(({}, True))  # after the sweep: FaissIndex.tune() picks the setting
                for setting, tuned in settings:
                    tuning = None
                    if tuned:
                        t = time.perf_counter()
                        tuning = idx.tune(q_tune, k=k, target=args.tune_target)
                        tuning["seconds"] = round(time.perf_counter() - t, 2)
                        setting = {key: tuning[key] for key in ("ef_search", "nprobe", "rerank_factor") if key in tuning}
                    apply_search(idx, setting)
                    idx.search(q[:5], k)  # warm-up
                    ids, lat = measure(idx, q, k)
                    recall = float(np.mean([len(set(ids[i]) & set(truth[i])) / k for i in range(len(q))]))
                    ids_f, lat_f = measure(idx, qf, k, flt)
                    recall_f = float(np.mean([len(set(ids_f[i]) & truth_f[i]) / k for i in range(len(qf))]))
                    full_k = bool(((ids_f >= 0).sum(1) == min(k, len(allowed))).all())
                    extra = ("vectors.npy memory-mapped for re-ranking (on disk, %d MB)" % (x.nbytes // 2**20)
                             if kind == "ivfpq" else "bench-only kind (not in the product)" if kind == "ivfflat" else "")
                    params = ({"nlist": idx.nlist, "nprobe": idx.nprobe} if isinstance(idx, IvfFlat)
                              else idx.describe()["params"])
                    name = label(kind, cfg["build"], setting, idx)
                    if tuning is not None:
                        name += f" (tuned to {args.tune_target:g} on {tuning['queries']} other queries)"
                    row = {"n": n, "kind": kind, "label": name, "dim": dim,
                           "build_s": round(build_s, 2), "build_threads": args.build_threads,
                           "p50_ms": round(float(np.percentile(lat, 50)), 3),
                           "p99_ms": round(float(np.percentile(lat, 99)), 3),
                           "recall_at_10": round(recall, 4),
                           "filtered_p50_ms": round(float(np.percentile(lat_f, 50)), 3),
                           "filtered_p99_ms": round(float(np.percentile(lat_f, 99)), 3),
                           "filtered_recall_at_10": round(recall_f, 4), "filtered_always_k": full_k,
                           "filter_selectivity": round(float(mask.mean()), 4),
                           "index_mb": round(index_bytes / 2**20, 1), "bytes_per_vector": round(index_bytes / n, 1),
                           "rss_mb": round(rss_bytes() / 2**20, 1), "rss_delta_mb": round((rss1 - rss0) / 2**20, 1),
                           "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
                           "load_average": load_average(), "note": extra, "params": params}
                    if tuning is not None:
                        row["tuning"] = tuning
                    results.append(row)
                    print(json.dumps({k2: v for k2, v in row.items() if k2 not in ("params", "tuning")}), file=sys.stderr,
                          flush=True)
                del idx
                write_results(args, data_note, growth_info, data_stats, q, k, load_start, results)  # after every build
        del x
    write_results(args, data_note, growth_info, data_stats, q, k, load_start, results)
    return 0


def write_results(args: argparse.Namespace, data_note: str, growth_info: dict[str, Any] | None,
                  data_stats: list[dict[str, Any]], q: np.ndarray, k: int, load_start: list[float],
                  results: list[dict[str, Any]]) -> None:
    """Write (merge into) ``args.out``: rows of the same data and label are replaced, others kept."""
    out = {"benchmark": "index", "data": data_note, "growth": growth_info, "data_stats": data_stats,
           "queries": len(q), "k": k,
           "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "faiss": faiss.__version__,
                       "load_average_start": load_start, "load_average_end": load_average(),
                       "note": f"shared with other jobs while measured (load average {os.getloadavg()[0]:.1f}); "
                               f"single-query latency, {args.threads} FAISS thread(s); builds with "
                               f"{args.build_threads} thread(s)"},
           "command": "python " + " ".join(sys.argv),
           "date": time.strftime("%Y-%m-%d %H:%M:%S"), "results": results}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    prev = getattr(args, "_prev", None)
    if prev is None:  # the file as it was before this run (read once: this run rewrites it after every build)
        prev = args._prev = json.loads(args.out.read_text()) if args.out.exists() else {}
    if prev and prev.get("data") == data_note:
        new = {(r["n"], r["kind"], r.get("label", r["kind"])) for r in results}
        keep = [r for r in prev["results"] if (r["n"], r["kind"], r.get("label", r["kind"])) not in new]
        out["results"] = sorted(keep + results, key=_row_key)
        out["data_stats"] = sorted({d["n"]: d for d in prev.get("data_stats", []) + data_stats}.values(),
                                   key=lambda d: d["n"])
        out["machine"]["load_average_start"] = prev["machine"].get("load_average_start", load_start)
        out["commands"] = prev.get("commands", [prev.get("command")]) + [out["command"]]
    tmp = args.out.with_suffix(".tmp")
    tmp.write_text(json.dumps(out, indent=2) + "\n")
    tmp.replace(args.out)


if __name__ == "__main__":
    sys.exit(main())
