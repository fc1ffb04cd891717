"""End-to-end API benchmark: latency (text encoding included) and throughput of ``dancesearch serve``
over loopback, with micro-batching on and off in the same run, at a given corpus size.

What is built (in a temporary workspace, in one run):
- a catalog of N clips (rows bulk-inserted; no media files: search never reads them) and an index of
  N vectors of the model's dimension: the demo model's own clip embeddings (``--seed-home``, a
  workspace where the demo corpus was ingested and indexed) grown to N by same-genre mixtures plus
  noise inside the embeddings' own principal subspace (``--growth subspace``, scale 0.125: the scale
  calibrated against the real nearest-neighbour cosines in bench_index.py), index kind ``--kind``
  (auto: flat < 100k <= hnsw < 500k <= ivfpq), ANN kinds tuned to recall@10 0.98 as ``dancesearch
  index build`` does (on the served model's embeddings of 500 seed-corpus captions);
- the real server, ``python -m ui.cli serve`` in a subprocess (model + index loaded at start-up),
  once per mode: ``batched`` (the server's defaults, or ``--max-batch`` / ``--batch-window-ms``),
  ``unbatched`` (``--max-batch 1``: every search alone in the thread pool, the behaviour before
  micro-batching), ``two-workers`` and ``fast`` (batched, with ``--text-encoder fast``: the run's
  distilled query encoder);
- queries: DISTINCT texts, never repeated in the whole run (corpus captions combined with a prefix and
  a modifier, e.g. "show me a relaxed sharp krump dance with lots of spins"), so neither the server's
  query-embedding cache nor the model's backbone memo can serve them: the real text encoder runs on
  every request.  The cache hit rate read from the server's /metrics is reported per load level
  (it should be ~0).

Measured per mode: sequential latency p50 / p99 (one client, ``--latency-requests``) with the server's
own ``took_ms``, then closed-loop throughput at each ``--concurrency`` level for ``--seconds`` after a
short warm-up (requests completed inside the window are counted): qps, latency p50 / p99, errors, mean
batch size (from the server's batch-size histogram), cache hit rate, the CPU used by the load
generator and by the server (percent of one core, and milliseconds per request), and
``qps_bound_2_cores`` = 2 cores / CPU per request, the throughput two otherwise idle cores could
reach at that cost (a figure less distorted than qps by other jobs on the machine).

The load generator is cheap on purpose (raw HTTP/1.1 keep-alive connections on asyncio (uvloop
when installed), no HTTP library, response bodies not parsed), because it shares the 2 cores with
the server: throughput is a lower bound for a server with the machine to itself.  When the seed
index was built with another model than the served one, the seed clips are re-embedded first.

Usage: python bench/bench_api.py --seed-home DIR --sizes 100000 --kind flat [--modes batched unbatched two-workers]
       [--run models/demo] [--out bench/results/api.json]
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Iterator
from urllib.parse import urlencode

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from bench_index import grow, grown_from_model, principal_subspace  # noqa: E402
from machine import machine_info  # noqa: E402

from indexer.index import FaissIndex, GenreCentroids, auto_kind, load_index, save_index  # noqa: E402
from indexer.index.filters import ClipAttributes  # noqa: E402

MODES = ("batched", "unbatched", "two-workers", "fast")
"""batched: the server's defaults (one batch thread, torch on every core); unbatched: --max-batch 1;
two-workers: --batch-workers 2 --workers-threads 1 (two batch threads, single-threaded torch each);
fast: batched with --text-encoder fast (the run's distilled query encoder, RUN/fast_text)."""
SUBSPACE_SCALE = 0.125
"""Growth noise scale calibrated by bench_index.py (KS distance of nearest-neighbour cosines, grown vs
real; bench/results/index_model_v2_*_subspace.json)."""
PREFIXES = ("", "show me ", "find ", "looking for ", "i want ", "search for ", "something like ", "give me ")
MODIFIERS = ("", " with lots of spins", " with big jumps", " with sharp arm hits", " with smooth footwork",
             " for beginners", " for a wedding", " on a small stage", " with a partner", " in a circle",
             " with fast turns", " that travels a lot", " mostly in place", " with floor work", " with kicks",
             " with hip movement", " with head nods", " with a lot of bounce", " with long pauses",
             " ending with a pose", " with arm waves", " with clapping", " with a slide", " in unison",
             " with isolations", " with a spin at the end", " full of energy", " that feels elegant",
             " with a strong groove", " with graceful arms", " with heavy stomps", " with quick steps",
             " with a low stance", " on the beat", " with freezes", " with leaps", " with shoulder shimmies",
             " with wrist flicks", " with a walking pattern", " with lifts")


# --- data -----------------------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def seed_embeddings(seed_home: Path, run: str | None) -> tuple[Any, np.ndarray, str, dict[str, Any]]:
    """(seed index, its clip vectors under the SERVED model, that model's id, provenance).

    When the seed index was built with another model (the shipped model was retrained since), the
    seed clips are re-embedded with the served one (read-only use of the seed workspace), so the
    server accepts the grown index and queries land in the right space.
    """
    from indexer.index.builder import embed_clips
    from indexer.index.embedder import load_embedder
    from indexer.workspace import Workspace

    seed = load_index(seed_home / "indexes" / "default")
    emb = load_embedder(run)
    if seed.model_id == emb.model_id:
        return seed, np.asarray(seed.index.vectors(), dtype=np.float32), emb.model_id, {"seed_vectors": "seed index"}
    t = time.perf_counter()
    ws = Workspace(seed_home)
    cat = ws.catalog(create=False)
    by_id = {c.id: c for c in cat.clips()}
    clips = [by_id[int(i)] for i in seed.index.attributes().ids]
    cat.close()
    vecs = embed_clips(ws, emb, clips)
    took = round(time.perf_counter() - t, 1)
    print(f"seed index built with {seed.model_id}, served model is {emb.model_id}: re-embedded {len(clips)} "
          f"seed clips in {took}s", file=sys.stderr, flush=True)
    return seed, vecs, emb.model_id, {"seed_vectors": f"re-embedded with the served model ({took} s); the seed "
                                                      f"index was built with {seed.model_id}"}


def build_workspace(home: Path, seed_home: Path, n: int, kind: str,
                    run: str | None, growth: str = "subspace") -> tuple[str, list[str], dict]:
    """Catalog rows + grown index in ``home``; returns (model id, seed captions, index build info)."""
    from sqlalchemy import insert

    from indexer.catalog import Caption, Catalog, Clip, Sequence

    seed, base, model_id, provenance = seed_embeddings(seed_home, run)
    seed_attrs = seed.index.attributes()
    genres_codes = np.asarray(seed_attrs.genre)
    vocab = seed_attrs.genre_vocab
    seed_cat = Catalog(f"sqlite:///{seed_home / 'catalog.sqlite'}", create=False)
    caps = [t for texts in seed_cat.captions_for(seed_attrs.ids.tolist()).values() for t in texts]
    seed_cat.close()
    if n <= len(base):
        x = base[:n]
    elif growth == "subspace":
        x = grow(base, genres_codes, n, seed=1, growth="subspace", scale=SUBSPACE_SCALE, sub=principal_subspace(base))
    else:
        x = grown_from_model(base, genres_codes, n, seed=1)
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
    tuned = idx.tune(tune_queries(caps, run), k=10) if kind != "flat" else None
    cents = GenreCentroids()
    cents.add(x, genre_of)
    save_index(idx, home / "indexes" / "default", model_id=model_id, centroids=cents,
               calibration=seed.manifest.get("calibration"))
    return model_id, caps, {"kind": kind, "build_s": round(build_s, 1), "params": idx.describe()["params"],
                            "growth": growth if n > len(base) else "none (seed vectors)",
                            "tuned": {k: v for k, v in (tuned or {}).items() if k != "tried"} or None,
                            "seed_clips": int(len(base)), "seed_captions": len(caps), **provenance}


def tune_queries(captions: list[str], run: str | None, count: int = 500) -> np.ndarray:
    """The served model's (full encoder) embeddings of the texts ``dancesearch index build`` would tune
    on (``builder.tuning_texts``: seed captions and query-like variants of them)."""
    from indexer.index.builder import tuning_texts
    from indexer.index.embedder import load_embedder

    return np.asarray(load_embedder(run).encode_text(tuning_texts(captions, count, seed=11)), dtype=np.float32)


class DistinctQueries:
    """An endless stream of query texts, none repeated: [prefix] + corpus caption + [modifier], drawn
    without replacement (8 x 7k x 40 ~ 2M combinations for the demo corpus).

    Most queries get no prefix and half no modifier, so lengths stay close to the captions' (which
    is how people describe dances: ~10 words); ``PREFIXES[0]`` / ``MODIFIERS[0]`` are empty.  Draws
    come in vectorised chunks so the load generator spends microseconds per query.
    """

    def __init__(self, captions: list[str], seed: int = 7) -> None:
        self.captions = sorted(set(captions))
        self.rng = np.random.default_rng(seed)
        self.seen: set[str] = set()
        self.combos = len(PREFIXES) * len(self.captions) * len(MODIFIERS)
        self.p_prefix = np.array([0.7] + [0.3 / (len(PREFIXES) - 1)] * (len(PREFIXES) - 1))
        self.p_modifier = np.array([0.5] + [0.5 / (len(MODIFIERS) - 1)] * (len(MODIFIERS) - 1))
        self._pending: list[str] = []
        self.sent: list[str] = []

    def __iter__(self) -> Iterator[str]:
        return self

    def __next__(self) -> str:
        while not self._pending:
            if len(self.seen) >= self.combos // 2:  # rejection sampling slows down long before exhaustion
                raise StopIteration
            n = 4096
            ps = self.rng.choice(len(PREFIXES), n, p=self.p_prefix)
            ms = self.rng.choice(len(MODIFIERS), n, p=self.p_modifier)
            cs = self.rng.integers(len(self.captions), size=n)
            for p, c, m in zip(ps.tolist(), cs.tolist(), ms.tolist()):
                q = f"{PREFIXES[p]}{self.captions[c]}{MODIFIERS[m]}"
                if q not in self.seen:
                    self.seen.add(q)
                    self._pending.append(q)
            self._pending.reverse()
        q = self._pending.pop()
        self.sent.append(q)
        return q

    def take(self, n: int) -> list[str]:
        return [next(self) for _ in range(n)]


# --- a cheap HTTP/1.1 keep-alive client ------------------------------------------------------------------
class RawConnection:
    """One keep-alive HTTP/1.1 connection: GET, read status + Content-Length body (no parsing beyond)."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def open(self) -> "RawConnection":
        self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        sock = self.writer.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return self

    async def get(self, target: str) -> tuple[int, bytes]:
        assert self.reader is not None and self.writer is not None
        self.writer.write(f"GET {target} HTTP/1.1\r\nHost: {self.host}\r\n\r\n".encode())
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        m = re.search(rb"(?i)\r\ncontent-length:\s*(\d+)", head)
        if m is None:
            raise RuntimeError(f"response without Content-Length: {head[:200]!r}")
        return status, await self.reader.readexactly(int(m.group(1)))

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            try:
                await self.writer.wait_closed()
            except OSError:
                pass


def search_target(q: str, k: int = 10) -> str:
    return "/v1/search?" + urlencode({"q": q, "k": k})


async def sequential(host: str, port: int, queries: list[str]) -> dict[str, Any]:
    """One client, one request at a time: client latency and the server's own took_ms."""
    conn = await RawConnection(host, port).open()
    lat, took, errors = [], [], 0
    try:
        for q in queries:
            t = time.perf_counter()
            status, body = await conn.get(search_target(q))
            lat.append((time.perf_counter() - t) * 1000)
            if status != 200:
                errors += 1
                continue
            took.append(json.loads(body)["took_ms"])
    finally:
        await conn.close()
    a = np.asarray(lat)
    return {"requests": len(a), "errors": errors, "qps": round(float(len(a) / (a.sum() / 1000)), 1),
            "p50_ms": round(float(np.percentile(a, 50)), 2), "p99_ms": round(float(np.percentile(a, 99)), 2),
            "server_took_ms_p50": round(float(np.percentile(took, 50)), 2) if took else None}


async def closed_loop(host: str, port: int, queries: Iterator[str], concurrency: int, seconds: float,
                      warmup_s: float) -> dict[str, Any]:
    """``concurrency`` clients, each sending its next request as soon as the previous one is answered;
    counts the requests completed between the end of the warm-up and the end of the window."""
    conns = [await RawConnection(host, port).open() for _ in range(concurrency)]
    lat: list[float] = []
    errors = {"n": 0}
    completed = {"n": 0}  # warm-up included: the CPU figures cover the whole run
    t_start = time.perf_counter()
    t_measure, t_end = t_start + warmup_s, t_start + warmup_s + seconds

    async def client(conn: RawConnection) -> None:
        while True:
            t = time.perf_counter()
            if t >= t_end:
                return
            status, body = await conn.get(search_target(next(queries)))
            done = time.perf_counter()
            completed["n"] += 1
            if t_measure <= done <= t_end:  # completions inside the window (slow requests count too)
                lat.append((done - t) * 1000)
                if status != 200 or not body.startswith(b'{"query"'):
                    errors["n"] += 1

    cpu0 = time.process_time()
    try:
        await asyncio.gather(*(client(c) for c in conns))
    finally:
        for c in conns:
            await c.close()
    client_cpu = time.process_time() - cpu0
    a = np.asarray(lat) if lat else np.zeros(1)
    return {"concurrency": concurrency, "requests": len(lat), "errors": errors["n"], "seconds": seconds,
            "qps": round(len(lat) / seconds, 1), "p50_ms": round(float(np.percentile(a, 50)), 2),
            "p99_ms": round(float(np.percentile(a, 99)), 2),
            "client_cpu_pct": round(100 * client_cpu / (time.perf_counter() - t_start), 1),
            "client_cpu_ms_per_request": round(1000 * client_cpu / max(completed["n"], 1), 3),
            "completed_incl_warmup": completed["n"]}


def new_event_loop() -> asyncio.AbstractEventLoop:
    try:
        import uvloop

        return uvloop.new_event_loop()
    except ImportError:
        return asyncio.new_event_loop()


# --- the server ------------------------------------------------------------------------------------------
def process_cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process (Linux /proc; 0 elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return 0.0


def scrape(host: str, port: int) -> dict[str, float]:
    """The counters this benchmark reads from /metrics: cache hits / misses, batch-size sum / count."""
    import urllib.request

    text = urllib.request.urlopen(f"http://{host}:{port}/metrics", timeout=30).read().decode()
    out = {"hit": 0.0, "miss": 0.0, "batch_sum": 0.0, "batch_count": 0.0}
    for line in text.splitlines():
        if line.startswith("dancesearch_text_embedding_cache_lookups_total"):
            out["hit" if 'result="hit"' in line else "miss"] = float(line.rsplit(" ", 1)[1])
        elif line.startswith("dancesearch_search_batch_size_sum"):
            out["batch_sum"] = float(line.rsplit(" ", 1)[1])
        elif line.startswith("dancesearch_search_batch_size_count"):
            out["batch_count"] = float(line.rsplit(" ", 1)[1])
    return out


def with_server_counters(row: dict[str, Any], before: dict[str, float], after: dict[str, float],
                         server_cpu_s: float, wall_s: float) -> dict[str, Any]:
    lookups = (after["hit"] - before["hit"]) + (after["miss"] - before["miss"])
    batches = after["batch_count"] - before["batch_count"]
    row["cache_hit_rate"] = round((after["hit"] - before["hit"]) / lookups, 4) if lookups else None
    row["mean_batch"] = round((after["batch_sum"] - before["batch_sum"]) / batches, 2) if batches else None
    row["server_cpu_pct"] = round(100 * server_cpu_s / wall_s, 1)
    per_request = 1000 * server_cpu_s / max(row["completed_incl_warmup"], 1)
    row["server_cpu_ms_per_request"] = round(per_request, 2)
    # what 2 otherwise idle cores could serve at this CPU cost (client included): less sensitive to other
    # jobs on the machine than qps, though contention inflates CPU time too
    row["qps_bound_2_cores"] = round(2000 / (per_request + row["client_cpu_ms_per_request"]), 1)
    return row


def start_server(home: Path, port: int, run: str | None, extra: list[str]) -> subprocess.Popen:
    import urllib.error
    import urllib.request

    cmd = [sys.executable, "-m", "ui.cli", "serve", "--home", str(home), "--port", str(port), *extra]
    if run:
        cmd += ["--run", run]
    server = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 300
    while True:
        if server.poll() is not None:
            raise SystemExit(f"server exited: {server.stderr.read() if server.stderr else ''}")
        try:
            if urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2).status == 200:
                return server
        except (urllib.error.URLError, OSError):
            pass
        if time.monotonic() > deadline:
            server.kill()
            raise SystemExit("server did not become ready")
        time.sleep(0.5)


def stop_server(server: subprocess.Popen) -> None:
    server.terminate()
    try:
        server.wait(timeout=30)
    except subprocess.TimeoutExpired:
        server.kill()


def server_flags(mode: str, args: argparse.Namespace) -> list[str]:
    """``dancesearch serve`` flags of a mode (see MODES)."""
    flags = ["--embedding-cache", str(args.embedding_cache)] if args.embedding_cache is not None else []
    threads = ["--workers-threads", str(args.torch_threads)] if args.torch_threads else []
    if mode == "unbatched":
        return flags + threads + ["--max-batch", "1"]
    if mode == "fast":
        flags += ["--text-encoder", "fast"]
    if mode == "two-workers":
        flags += ["--batch-workers", "2", "--workers-threads", "1"]
    else:
        flags += threads
        if args.batch_workers is not None:
            flags += ["--batch-workers", str(args.batch_workers)]
    if args.max_batch is not None:
        flags += ["--max-batch", str(args.max_batch)]
    if args.batch_window_ms is not None:
        flags += ["--batch-window-ms", str(args.batch_window_ms)]
    return flags


def effective_settings(flags: list[str]) -> dict[str, Any]:
    """The ApiSettings the server runs with (flags over $DANCESEARCH_* over defaults), secrets left out."""
    from search_api.settings import ApiSettings

    named = {"--workers-threads": "torch_threads", "--max-batch": "max_batch", "--batch-window-ms": "batch_window_ms",
             "--batch-workers": "batch_workers", "--embedding-cache": "embedding_cache_size",
             "--text-encoder": "text_encoder"}
    given = {named[f]: v for f, v in zip(flags[::2], flags[1::2])}
    s = ApiSettings(**given)
    out = {k: v for k, v in s.model_dump(mode="json").items()
           if k in ("faiss_threads", "faiss_blas_threshold", "max_batch", "batch_window_ms", "batch_workers",
                    "embedding_cache_size", "text_encoder")}
    return {"torch_threads": s.encoder_threads(), **out}


def bench_mode(mode: str, home: Path, queries: DistinctQueries, args: argparse.Namespace) -> dict[str, Any]:
    host, port = "127.0.0.1", free_port()
    flags = server_flags(mode, args)
    server = start_server(home, port, args.run, flags)
    loop = new_event_loop()
    try:
        loop.run_until_complete(sequential(host, port, queries.take(args.warmup_requests)))
        seq = loop.run_until_complete(sequential(host, port, queries.take(args.latency_requests)))
        print(f"  {mode} sequential: {seq}", file=sys.stderr, flush=True)
        loads = []
        for conc in args.concurrency:
            before, cpu0, t0 = scrape(host, port), process_cpu_s(server.pid), time.perf_counter()
            row = loop.run_until_complete(closed_loop(host, port, queries, conc, args.seconds, args.warmup_seconds))
            row = with_server_counters(row, before, scrape(host, port), process_cpu_s(server.pid) - cpu0,
                                       time.perf_counter() - t0)
            row["load_average_1m"] = round(os.getloadavg()[0], 2)  # other jobs on the machine meanwhile
            print(f"  {mode} load: {row}", file=sys.stderr, flush=True)
            loads.append(row)
    finally:
        loop.close()
        stop_server(server)
    return {"server_flags": flags, "settings": effective_settings(flags), "sequential": seq, "load": loads}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seed-home", type=Path, required=True, help="workspace with the ingested + indexed demo corpus")
    ap.add_argument("--sizes", type=int, nargs="+", default=[100_000])
    ap.add_argument("--kind", default="auto")
    ap.add_argument("--growth", choices=("subspace", "isotropic"), default="subspace",
                    help="how the seed embeddings are grown to N (see bench_index.py)")
    ap.add_argument("--run", default=None, help="model run (default models/demo)")
    ap.add_argument("--modes", nargs="+", choices=MODES, default=["batched", "unbatched"],
                    help="server configurations, one after the other on the same workspace (see MODES)")
    ap.add_argument("--latency-requests", type=int, default=200, help="sequential requests per mode")
    ap.add_argument("--warmup-requests", type=int, default=20, help="sequential requests before measuring")
    ap.add_argument("--concurrency", type=int, nargs="+", default=[1, 8, 32, 64])
    ap.add_argument("--seconds", type=float, default=20.0, help="measured seconds per concurrency level")
    ap.add_argument("--warmup-seconds", type=float, default=2.0, help="unmeasured seconds before each level")
    ap.add_argument("--torch-threads", type=int, default=None,
                    help="server --workers-threads (default: the server's own, per mode)")
    ap.add_argument("--max-batch", type=int, default=None, help="server --max-batch in batched mode (default: its own)")
    ap.add_argument("--batch-window-ms", type=float, default=None, help="server --batch-window-ms in batched mode")
    ap.add_argument("--batch-workers", type=int, default=None, help="server --batch-workers in batched mode")
    ap.add_argument("--embedding-cache", type=int, default=None, help="server --embedding-cache (default: its own)")
    ap.add_argument("--out", type=Path, default=Path("bench/results/api.json"))
    args = ap.parse_args()

    machine_start = machine_info()
    rows = []
    queries: DistinctQueries | None = None
    for n in args.sizes:
        kind = auto_kind(n) if args.kind == "auto" else args.kind
        with tempfile.TemporaryDirectory(prefix="dsbench-") as tmp:
            home = Path(tmp) / "ws"
            t = time.perf_counter()
            model_id, caps, info = build_workspace(home, args.seed_home, n, kind, args.run, args.growth)
            print(f"n={n}: workspace ready in {time.perf_counter() - t:.0f}s ({info})", file=sys.stderr, flush=True)
            queries = queries or DistinctQueries(caps)  # one stream for the whole run: no text is sent twice
            row: dict[str, Any] = {"n": n, "index": info, "model": model_id, "modes": {}}
            for mode in args.modes:
                row["modes"][mode] = bench_mode(mode, home, queries, args)
            best = {m: max(r["load"], key=lambda x: x["qps"]) for m, r in row["modes"].items() if r["load"]}
            row["best_qps"] = {m: {"qps": b["qps"], "concurrency": b["concurrency"], "p99_ms": b["p99_ms"]}
                               for m, b in best.items()}
            print(json.dumps(row["best_qps"]), file=sys.stderr, flush=True)
            rows.append(row)
    out = {"benchmark": "api", "date": time.strftime("%Y-%m-%d %H:%M:%S"),
           "command": "python bench/bench_api.py " + " ".join(sys.argv[1:]),
           "data": {"vectors": (f"demo model clip embeddings (--seed-home) grown by same-genre mixtures + noise in "
                                f"their principal subspace, scale {SUBSPACE_SCALE} (bench_index.grow)")
                               if args.growth == "subspace" else
                               "demo model clip embeddings (--seed-home) grown by same-genre mixtures + "
                               "N(0, 0.03^2) noise (bench_index.grown_from_model)",
                    "seed_home": str(args.seed_home),
                    "queries": "distinct texts, none sent twice in the run: prefix + seed-corpus caption + modifier "
                               "(k=10, no filter); the real text encoder runs on every request",
                    "distinct_queries_sent": len(queries.sent) if queries else 0,
                    "query_chars_mean": round(float(np.mean([len(q) for q in queries.sent])), 1) if queries else None,
                    "query_examples": queries.sent[:5] if queries else []},
           "load_generator": "closed loop, raw HTTP/1.1 keep-alive connections on asyncio/uvloop in the bench "
                             "process (client_cpu_pct), server in its own process (server_cpu_pct); "
                             "both on the same machine",
           "machine": {"start": machine_start, "end": machine_info(),
                       "note": "client and server share the machine; other jobs may have run meanwhile "
                               "(see the load averages)"},
           "results": rows}
    prev = json.loads(args.out.read_text()) if args.out.exists() else None
    if prev and all("modes" in r for r in prev.get("results", [])):
        keep = [r for r in prev.get("results", []) if r["n"] not in {r2["n"] for r2 in rows}]
        out["results"] = sorted(keep + rows, key=lambda r: r["n"])
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
