"""End-to-end API benchmark: latency (text encoding included) and throughput of ``dancesearch serve``
under a bounded asyncio + httpx load generator on loopback, at a given corpus size.

What is built (in a temporary workspace, in one run):
- a catalog of N clips (rows bulk-inserted; no media files: search never reads them) and an index of
  N vectors of the model's dimension: the demo model's own clip embeddings (``--seed-home``, a
  workspace where the demo corpus was ingested and indexed) grown to N by same-genre mixtures plus
  N(0, 0.03^2) noise (see bench_index.py), index kind ``--kind`` (auto: flat < 100k <= hnsw);
- the real server, ``python -m ui.cli serve`` in a subprocess (model + index loaded at start-up);
- queries: the corpus captions (the model's real text encoder runs on every request).

Measured: sequential latency p50 / p99 (one client, ``--latency-requests``), then throughput at
``--concurrency`` clients for ``--seconds`` (bounded in count and time). The client shares the 2 cores
with the server, so throughput is a lower bound for a server with the machine to itself.

Usage: python bench/bench_api.py --seed-home DIR --sizes 100000 [--run models/demo] [--out bench/results/api.json]
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from bench_index import grown_from_model  # noqa: E402
from indexer.index import FaissIndex, GenreCentroids, auto_kind, load_index, save_index  # noqa: E402
from indexer.index.filters import ClipAttributes  # noqa: E402


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def build_workspace(home: Path, seed_home: Path, n: int, kind: str) -> tuple[str, list[str], dict]:
    """Catalog rows + grown index in ``home``; returns (model id, captions, index build info)."""
    from sqlalchemy import insert

    from indexer.catalog import Caption, Catalog, Clip, Sequence

    seed = load_index(seed_home / "indexes" / "default")
    base = np.asarray(seed.index.vectors(), dtype=np.float32)
    seed_attrs = seed.index.attributes()
    genres_codes = np.asarray(seed_attrs.genre)
    vocab = seed_attrs.genre_vocab
    seed_cat = Catalog(f"sqlite:///{seed_home / 'catalog.sqlite'}", create=False)
    caps = [t for texts in seed_cat.captions_for(seed_attrs.ids.tolist()).values() for t in texts]
    seed_cat.close()
    x = base if n <= len(base) else grown_from_model(base, genres_codes, n, seed=1)
    x = x[:n]
    rng = np.random.default_rng(3)
    genre_of = [vocab[c] for c in rng.choice(genres_codes, n)]
    bpm = (60 + rng.random(n) * 120).round(1)
    split = np.where(rng.random(n) < 0.1, "val", "train")
    home.mkdir(parents=True, exist_ok=True)
    cat = Catalog(f"sqlite:///{home / 'catalog.sqlite'}")
    per_seq = 1000
    with cat.engine.begin() as conn:
        conn.execute(insert(Sequence.__table__), [
            {"id": s + 1, "source": "bench", "name": f"seq{s}", "genre": genre_of[s * per_seq], "fps": 30.0,
             "num_frames": 360 * per_seq, "has_audio": False, "split": "train", "meta": {}}
            for s in range((n + per_seq - 1) // per_seq)])
        for start in range(0, n, 50_000):
            conn.execute(insert(Clip.__table__), [
                {"id": i + 1, "key": f"bench/seq{i // per_seq}#{i % per_seq}", "sequence_id": i // per_seq + 1,
                 "clip_index": i % per_seq, "start_frame": 0, "end_frame": 360, "duration_s": 12.0,
                 "genre": genre_of[i], "dancer": None, "split": str(split[i]), "bpm": float(bpm[i]),
                 "motion_path": f"media/bench/{i}.motion.npz", "music_path": None, "audio_path": None,
                 "tags": {}, "source": "bench"} for i in range(start, min(n, start + 50_000))])
        conn.execute(insert(Caption.__table__), [
            {"clip_id": i + 1, "text": caps[i % len(caps)], "origin": "file"} for i in range(min(n, 20_000))])
    cat.close()
    t = time.perf_counter()
    idx = FaissIndex(kind, x.shape[1])
    idx.add(x, ClipAttributes.from_rows(list(range(1, n + 1)), genre_of, bpm.tolist(), split.tolist(), ["bench"] * n))
    build_s = time.perf_counter() - t
    cents = GenreCentroids()
    cents.add(x, genre_of)
    save_index(idx, home / "indexes" / "default", model_id=seed.model_id, centroids=cents,
               calibration=seed.manifest.get("calibration"))
    return seed.model_id, caps, {"kind": kind, "build_s": round(build_s, 1), "params": idx.describe()["params"]}


async def run_load(url: str, queries: list[str], concurrency: int, seconds: float, max_requests: int) -> dict:
    lat: list[float] = []
    errors = 0
    stop = time.perf_counter() + seconds
    counter = {"n": 0}

    async def worker(client: httpx.AsyncClient, wid: int) -> None:
        nonlocal errors
        i = wid
        while time.perf_counter() < stop and counter["n"] < max_requests:
            counter["n"] += 1
            q = queries[i % len(queries)]
            i += concurrency
            t = time.perf_counter()
            r = await client.get("/v1/search", params={"q": q, "k": 10})
            lat.append((time.perf_counter() - t) * 1000)
            if r.status_code != 200:
                errors += 1

    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, timeout=30, limits=limits) as client:
        t0 = time.perf_counter()
        await asyncio.gather(*(worker(client, w) for w in range(concurrency)))
        wall = time.perf_counter() - t0
    a = np.asarray(lat)
    return {"concurrency": concurrency, "requests": int(len(a)), "errors": errors, "seconds": round(wall, 2),
            "qps": round(len(a) / wall, 1), "p50_ms": round(float(np.percentile(a, 50)), 2),
            "p99_ms": round(float(np.percentile(a, 99)), 2)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seed-home", type=Path, required=True, help="workspace with the ingested + indexed demo corpus")
    ap.add_argument("--sizes", type=int, nargs="+", default=[100_000])
    ap.add_argument("--kind", default="auto")
    ap.add_argument("--run", default=None, help="model run (default models/demo)")
    ap.add_argument("--latency-requests", type=int, default=300)
    ap.add_argument("--concurrency", type=int, nargs="+", default=[4, 16])
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--max-requests", type=int, default=20_000)
    ap.add_argument("--out", type=Path, default=Path("bench/results/api.json"))
    args = ap.parse_args()

    rows = []
    for n in args.sizes:
        kind = auto_kind(n) if args.kind == "auto" else args.kind
        with tempfile.TemporaryDirectory(prefix="dsbench-") as tmp:
            home = Path(tmp) / "ws"
            t = time.perf_counter()
            model_id, caps, info = build_workspace(home, args.seed_home, n, kind)
            print(f"n={n}: workspace ready in {time.perf_counter() - t:.0f}s ({info})", file=sys.stderr, flush=True)
            port = free_port()
            cmd = [sys.executable, "-m", "ui.cli", "serve", "--home", str(home), "--port", str(port)]
            if args.run:
                cmd += ["--run", args.run]
            server = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
            url = f"http://127.0.0.1:{port}"
            try:
                deadline = time.monotonic() + 300
                while True:
                    if server.poll() is not None:
                        raise SystemExit(f"server exited: {server.stderr.read()}")
                    try:
                        if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                            break
                    except httpx.HTTPError:
                        pass
                    if time.monotonic() > deadline:
                        raise SystemExit("server did not become ready")
                    time.sleep(0.5)
                with httpx.Client(base_url=url, timeout=30) as c:  # warm-up, then sequential latency
                    for q in caps[:20]:
                        c.get("/v1/search", params={"q": q})
                seq = asyncio.run(run_load(url, caps, 1, 60.0, args.latency_requests))
                server_side = []
                with httpx.Client(base_url=url, timeout=30) as c:
                    for q in caps[:100]:
                        server_side.append(c.get("/v1/search", params={"q": q, "k": 10}).json()["took_ms"])
                loads = [asyncio.run(run_load(url, caps, conc, args.seconds, args.max_requests))
                         for conc in args.concurrency]
            finally:
                server.terminate()
                try:
                    server.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    server.kill()
            row = {"n": n, "index": info, "model": model_id, "sequential": seq,
                   "server_took_ms_p50": round(float(np.percentile(server_side, 50)), 2), "load": loads}
            print(json.dumps(row), file=sys.stderr, flush=True)
            rows.append(row)
    out = {"benchmark": "api", "date": time.strftime("%Y-%m-%d %H:%M:%S"),
           "data": "demo model clip embeddings grown by same-genre mixtures + N(0, 0.03^2) noise; queries: corpus captions "
                   "encoded by the real text encoder on every request",
           "machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                       "load_average_at_end": round(os.getloadavg()[0], 1),
                       "note": "client and server share the machine (and other jobs ran meanwhile)"},
           "results": rows}
    prev = json.loads(args.out.read_text()) if args.out.exists() else None
    if prev:
        keep = [r for r in prev.get("results", []) if r["n"] not in {r2["n"] for r2 in rows}]
        out["results"] = sorted(keep + rows, key=lambda r: r["n"])
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
