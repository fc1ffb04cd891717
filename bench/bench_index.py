"""Index benchmark: search latency p50 / p99, recall@10 against exact search, memory and build time
for FAISS flat / hnsw / ivfpq at several corpus sizes, in one run on this machine.

Data (reported with every figure):
- ``clustered``: a clustered mixture model standing in for clip embeddings: 256 mixture components in
  a 32-d latent space, mapped to D dimensions by a fixed random linear map, plus isotropic noise
  carrying ~10% of the variance, L2-normalised.  Queries are fresh draws from the same mixture.
- ``model``: the demo model's own clip embeddings (``--from-index HOME/indexes/default``) grown to N by
  perturbed mixtures of two real embeddings of the same genre ``normalise(a*e_i + (1-a)*e_j + s*noise)``;
  queries are the model's text embeddings of the corpus captions.
iid Gaussian noise is NOT used: nearest neighbours of noise are nearly equidistant and no ANN
index reaches useful recall on it, which says nothing about real embeddings.

Usage: python bench/bench_index.py --sizes 10000 100000 [--kinds flat hnsw ivfpq] [--out bench/results/index.json]
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import faiss
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from indexer.index import ClipAttributes, ClipFilter, FaissIndex, FaissParams, normalise  # noqa: E402


def rss_bytes() -> int:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


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


def exact_topk(x: np.ndarray, q: np.ndarray, k: int) -> np.ndarray:
    best = np.full((len(q), k), -1, dtype=np.int64)
    best_s = np.full((len(q), k), -np.inf, dtype=np.float32)
    for s in range(0, len(x), 200_000):
        sc = q @ x[s:s + 200_000].T
        idx = np.argpartition(-sc, k - 1, axis=1)[:, :k] + s
        cand = np.concatenate([best, idx], 1)
        cand_s = np.concatenate([best_s, np.take_along_axis(sc, idx - s, 1)], 1)
        o = np.argsort(-cand_s, 1)[:, :k]
        best, best_s = np.take_along_axis(cand, o, 1), np.take_along_axis(cand_s, o, 1)
    return best


def measure(idx: FaissIndex, q: np.ndarray, k: int, flt: ClipFilter | None = None) -> tuple[np.ndarray, list[float]]:
    ids = np.empty((len(q), k), dtype=np.int64)
    lat = []
    for i in range(len(q)):
        t = time.perf_counter()
        h = idx.search(q[i:i + 1], k, flt)
        lat.append((time.perf_counter() - t) * 1000)
        ids[i] = h.ids[0]
    return ids, lat


def markdown_table(path: Path) -> str:
    """The README table of a results file."""
    d = json.loads(path.read_text())
    lines = [f"Data: {d['data']}. {d['queries']} queries, k = {d['k']}; {d['machine']['note']}; {d['date']}.", "",
             "| vectors | kind | build s | p50 ms | p99 ms | recall@10 | filtered p50 ms | filtered recall@10 | index MB | bytes / vector |",
             "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in d["results"]:
        lines.append(f"| {r['n']:,} | {r['kind']} | {r['build_s']} | {r['p50_ms']} | {r['p99_ms']} | {r['recall_at_10']} | "
                     f"{r['filtered_p50_ms']} | {r['filtered_recall_at_10']} | {r['index_mb']} | {r['bytes_per_vector']} |")
    return "\n".join(lines)


def main() -> int:
    if len(sys.argv) == 3 and sys.argv[1] == "--table":
        print(markdown_table(Path(sys.argv[2])))
        return 0
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    ap.add_argument("--kinds", nargs="+", default=["flat", "hnsw", "ivfpq"])
    ap.add_argument("--dim", type=int, default=256)
    ap.add_argument("--queries", type=int, default=300)
    ap.add_argument("--data", choices=("clustered", "model"), default="clustered")
    ap.add_argument("--from-index", type=Path, default=None, help="index folder whose vectors seed --data model")
    ap.add_argument("--run", default=None, help="model run for text queries (--data model)")
    ap.add_argument("--ef-search", type=int, default=None)
    ap.add_argument("--nprobe", type=int, default=None)
    ap.add_argument("--rerank", type=int, default=None, help="ivfpq: candidates re-ranked = rerank * k")
    ap.add_argument("--threads", type=int, default=1, help="FAISS OpenMP threads per search (server default 1)")
    ap.add_argument("--out", type=Path, default=Path("bench/results/index.json"))
    args = ap.parse_args()

    faiss.omp_set_num_threads(args.threads)  # the server's per-request setting (search_api ApiSettings.faiss_threads)
    k = 10
    data_note: str
    if args.data == "model":
        from indexer.index.store import load_index

        loaded = load_index(args.from_index)
        base = np.asarray(loaded.index.vectors(), dtype=np.float32)
        genres = np.asarray(loaded.index.attributes().genre)
        dim = base.shape[1]
        from indexer.index.embedder import load_embedder

        emb = load_embedder(args.run)
        from indexer.catalog import Catalog

        home = args.from_index.resolve().parents[1]   # HOME/indexes/<name> -> HOME
        with Catalog(f"sqlite:///{home / 'catalog.sqlite'}", create=False) as cat:
            caps = [t for texts in cat.captions_for(loaded.index.ids().tolist()).values() for t in texts]
        if not caps:
            raise SystemExit(f"--data model needs the captions of the index's clips in {home / 'catalog.sqlite'}")
        q_all = emb.encode_text(caps)
        rng = np.random.default_rng(7)
        q = q_all[rng.choice(len(q_all), min(args.queries, len(q_all)), replace=len(q_all) < args.queries)]
        data_note = (f"demo model clip embeddings ({len(base)} real, dim {dim}, model {loaded.model_id}) grown by "
                     f"same-genre mixtures + N(0, 0.03^2) noise; queries: model text embeddings of corpus captions")
        make = lambda n: grown_from_model(base, genres, n, seed=1)  # noqa: E731
    else:
        dim = args.dim
        q = clustered(args.queries, dim, seed=99)
        data_note = (f"clustered mixture (256 components in a 32-d latent space, linear map to {dim}-d, 10% isotropic "
                     f"noise variance, L2-normalised); queries: fresh draws from the same mixture")
        make = lambda n: clustered(n, dim, seed=1)  # noqa: E731

    results = []
    for n in args.sizes:
        x = make(n)
        at = attrs(n)
        t = time.perf_counter()
        truth = exact_topk(x, q, k)
        truth_s = time.perf_counter() - t
        flt = ClipFilter.build(["g3"], bpm_min=90, bpm_max=150)  # ~1/8 x 1/2 of the corpus
        mask = flt.mask(at)
        qf = q[: min(100, len(q))]
        truth_f = []
        allowed = np.flatnonzero(mask)
        for i in range(len(qf)):
            sc = x[allowed] @ qf[i]
            truth_f.append(set(allowed[np.argsort(-sc)[:k]].tolist()))
        print(f"n={n}: data ready, exact ground truth {truth_s:.1f}s", file=sys.stderr, flush=True)
        for kind in args.kinds:
            params = FaissParams()
            if args.ef_search:
                params.ef_search = args.ef_search
            if args.nprobe:
                params.nprobe = args.nprobe
            if args.rerank:
                params.rerank_factor = args.rerank
            rss0 = rss_bytes()
            t = time.perf_counter()
            idx = FaissIndex(kind, dim, params)
            idx.add(x, at)
            build_s = time.perf_counter() - t
            rss1 = rss_bytes()
            idx.search(q[:5], k)  # warm-up
            ids, lat = measure(idx, q, k)
            recall = float(np.mean([len(set(ids[i]) & set(truth[i])) / k for i in range(len(q))]))
            ids_f, lat_f = measure(idx, qf, k, flt)
            recall_f = float(np.mean([len(set(ids_f[i]) & truth_f[i]) / k for i in range(len(qf))]))
            full_k = bool(((ids_f >= 0).sum(1) == min(k, len(allowed))).all())
            index_bytes = len(faiss.serialize_index(idx._index))
            extra = "vectors.npy memory-mapped for re-ranking (on disk, %d MB)" % (x.nbytes // 2**20) if kind == "ivfpq" else ""
            row = {"n": n, "kind": kind, "dim": dim, "build_s": round(build_s, 2),
                   "p50_ms": round(float(np.percentile(lat, 50)), 3), "p99_ms": round(float(np.percentile(lat, 99)), 3),
                   "recall_at_10": round(recall, 4),
                   "filtered_p50_ms": round(float(np.percentile(lat_f, 50)), 3),
                   "filtered_recall_at_10": round(recall_f, 4), "filtered_always_k": full_k,
                   "filter_selectivity": round(float(mask.mean()), 4),
                   "index_mb": round(index_bytes / 2**20, 1), "rss_delta_mb": round((rss1 - rss0) / 2**20, 1),
                   "bytes_per_vector": round(index_bytes / n, 1), "note": extra, "params": idx.describe()["params"]}
            results.append(row)
            print(json.dumps(row), file=sys.stderr, flush=True)
            del idx
        del x
    out = {"benchmark": "index", "data": data_note, "queries": len(q), "k": k,
           "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "faiss": faiss.__version__,
                       "note": f"shared with other jobs while measured (load average {os.getloadavg()[0]:.1f}); single-query latency, {args.threads} FAISS thread(s)"},
           "date": time.strftime("%Y-%m-%d %H:%M:%S"), "results": results}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    prev = json.loads(args.out.read_text()) if args.out.exists() else None
    if prev and prev.get("data") == data_note:
        keep = [r for r in prev["results"] if (r["n"], r["kind"]) not in {(r2["n"], r2["kind"]) for r2 in results}]
        out["results"] = sorted(keep + results, key=lambda r: (r["n"], ["flat", "hnsw", "ivfpq"].index(r["kind"])))
    args.out.write_text(json.dumps(out, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
