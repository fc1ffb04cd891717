"""Micro-batched search: batched answers equal unbatched ones, errors stay with their request, the
batch-size metric is exported, and the batcher itself (no needless wait, shutdown, handler bugs).

Batches are made deterministic with a gate: the embedder blocks on a text containing ``HOLD``
until the test releases it, so every request sent meanwhile queues up and forms the next batch.
"""
from __future__ import annotations

import asyncio
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import faiss
import httpx
import numpy as np
import pytest

from encoders.errors import InputError
from indexer.index import FaissIndex
from indexer.index.builder import build_index
from indexer.index.embedder import TextEmbeddingCache, query_key
from indexer.index.filters import ClipAttributes
from indexer.index.service import SearchEngine
from search_api.app import create_app
from search_api.batching import BatcherClosedError, MicroBatcher
from search_api.settings import ApiSettings
from search_support import ServerThread, WordEmbedder, make_workspace


class GatedEmbedder(WordEmbedder):
    """WordEmbedder that records its calls, waits at a gate on ``HOLD`` and refuses ``POISON`` texts."""

    def __init__(self) -> None:
        self.gate = threading.Event()
        self.gate.set()
        self.holding = threading.Event()
        self.calls: list[list[str]] = []

    def encode_text(self, texts: list[str]) -> np.ndarray:
        self.calls.append(list(texts))
        if any("HOLD" in t for t in texts):
            self.holding.set()
            assert self.gate.wait(20), "the test never opened the gate"
        if any("POISON" in t for t in texts):
            raise InputError(None, "this text cannot be encoded", field="q", got="POISON")
        return super().encode_text(texts)


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    home = tmp_path_factory.mktemp("batching")
    ws = make_workspace(home, with_audio=False)
    build_index(ws, WordEmbedder())
    return home, ws


def serve(workspace, embedder, **settings: Any) -> tuple[ServerThread, Any]:
    home, ws = workspace
    app = create_app(ApiSettings(home=home, **settings), engine=SearchEngine.open(ws, embedder))
    return ServerThread(app), app


# Mixed requests: text, text + filters, pages, genre-only, POST; every one a distinct query.
MIXED: list[tuple[str, dict[str, Any]]] = [
    ("GET", {"q": "a fast salsa dance", "k": 5}),
    ("GET", {"q": "slow waltz", "k": 3, "offset": 2}),
    ("POST", {"q": "slow waltz turning", "k": 10}),
    ("GET", {"q": "hiphop", "k": 4, "genre": "hiphop"}),
    ("POST", {"q": "dance", "genre": ["ballet", "salsa"], "bpm_min": 120, "k": 20}),
    ("GET", {"genre": "ballet", "k": 3}),
    ("POST", {"genre": ["waltz", "hiphop"], "k": 5, "offset": 1}),
    ("GET", {"q": "fast dance", "split": "val", "k": 6}),
    ("POST", {"q": "ballet slow", "k": 1, "offset": 7}),
    ("GET", {"q": "salsa", "bpm_max": 100, "k": 8}),
]


def call(client: httpx.Client, method: str, params: dict[str, Any]) -> httpx.Response:
    return client.post("/v1/search", json=params) if method == "POST" else client.get("/v1/search", params=params)


def comparable(body: dict[str, Any]) -> tuple[dict[str, Any], list[int], np.ndarray]:
    """(body without timing and scores, ids, scores)."""
    rest = {k: v for k, v in body.items() if k != "took_ms"}
    rest["results"] = [{k: v for k, v in r.items() if k != "score"} for r in body["results"]]
    return rest, [r["id"] for r in body["results"]], np.array([r["score"] for r in body["results"]])


def assert_same(batched: dict[str, Any], alone: dict[str, Any]) -> None:
    b_rest, b_ids, b_scores = comparable(batched)
    a_rest, a_ids, a_scores = comparable(alone)
    assert b_ids == a_ids
    np.testing.assert_allclose(b_scores, a_scores, atol=1e-5)
    assert b_rest == a_rest


def batch_counts(client: httpx.Client) -> tuple[float, float]:
    """(sum, count) of the batch-size histogram."""
    values = {}
    for line in client.get("/metrics").text.splitlines():
        for name in ("dancesearch_search_batch_size_sum", "dancesearch_search_batch_size_count"):
            if line.startswith(name + " "):
                values[name] = float(line.split()[-1])
    return values["dancesearch_search_batch_size_sum"], values["dancesearch_search_batch_size_count"]


def gated_concurrently(client: httpx.Client, emb: GatedEmbedder, requests: list[tuple[str, dict[str, Any]]]
                       ) -> list[httpx.Response]:
    """Hold the worker on one request, send ``requests`` concurrently, then release: they form one batch."""
    emb.gate.clear()
    emb.holding.clear()
    with ThreadPoolExecutor(len(requests) + 1) as pool:
        holder = pool.submit(call, client, "GET", {"q": f"HOLD the worker {time.monotonic_ns()}", "k": 2})
        assert emb.holding.wait(10)
        futures = [pool.submit(call, client, m, p) for m, p in requests]
        time.sleep(0.4)  # let every request reach the queue
        emb.gate.set()
        assert holder.result().status_code == 200
        return [f.result() for f in futures]


def test_batched_answers_equal_unbatched_answers(workspace):
    emb = GatedEmbedder()
    server, _ = serve(workspace, emb, batch_window_ms=0)
    unbatched_server, _ = serve(workspace, WordEmbedder(), max_batch=1)
    with server, unbatched_server, httpx.Client(base_url=server.url, timeout=30) as client, \
            httpx.Client(base_url=unbatched_server.url, timeout=30) as plain:
        alone = [call(plain, m, p) for m, p in MIXED]
        assert all(r.status_code == 200 for r in alone), [r.text for r in alone]
        sum0, count0 = batch_counts(client)
        emb.calls.clear()
        batched = gated_concurrently(client, emb, MIXED)
        assert all(r.status_code == 200 for r in batched), [r.text for r in batched]
        for b, a in zip(batched, alone):
            assert_same(b.json(), a.json())
        # the text queries were encoded by ONE call, and all requests were served as one batch
        text_calls = [c for c in emb.calls if not any("HOLD" in t for t in c)]
        assert len(text_calls) == 1 and len(text_calls[0]) == sum(1 for _, p in MIXED if p.get("q"))
        sum1, count1 = batch_counts(client)
        assert count1 - count0 == 2 and sum1 - sum0 == 1 + len(MIXED)
        metrics = client.get("/metrics").text
        assert 'dancesearch_search_batch_size_bucket{le="16.0"}' in metrics
        assert "dancesearch_search_queue_seconds_count" in metrics
        assert 'dancesearch_text_embedding_cache_lookups_total{result="miss"}' in metrics


def test_one_bad_request_does_not_fail_its_batch(workspace):
    emb = GatedEmbedder()
    server, _ = serve(workspace, emb, batch_window_ms=0)
    good = [("GET", {"q": "a fast salsa dance", "k": 5}), ("POST", {"genre": "waltz", "k": 2}),
            ("GET", {"q": "slow ballet", "k": 3})]
    bad = [("GET", {"q": "POISON pill", "k": 5}),                     # fails inside the batch (encoder)
           ("POST", {"q": "dance", "genre": "polka"}),                # fails validation, before the queue
           ("GET", {"q": "dance", "bpm_min": 150, "bpm_max": 90})]
    with server, httpx.Client(base_url=server.url, timeout=30) as client:
        expected = [call(client, m, p).json() for m, p in good]
        out = gated_concurrently(client, emb, good[:2] + bad + good[2:])
        statuses = [r.status_code for r in out]
        assert statuses == [200, 200, 422, 422, 422, 200], [r.text for r in out]
        assert [r.json()["error"]["field"] for r in out[2:5]] == ["q", "genre", "bpm_min"]
        for r, e in zip(out[:2] + out[5:], expected):
            assert_same(r.json(), e)
        assert client.get("/v1/search", params={"q": "fast salsa"}).status_code == 200  # the worker lives on


def test_batching_off_and_similar_and_shutdown(workspace):
    server, app = serve(workspace, WordEmbedder(), max_batch=1)
    with server, httpx.Client(base_url=server.url, timeout=30) as client:
        assert app.state.batcher is None
        body = client.get("/v1/search", params={"q": "fast hiphop", "k": 3}).json()
        assert len(body["results"]) == 3
        assert client.get(f"/v1/clips/{body['results'][0]['id']}/similar", params={"k": 2}).status_code == 200
    server, app = serve(workspace, WordEmbedder())
    with server, httpx.Client(base_url=server.url, timeout=30) as client:
        r = client.get(f"/v1/clips/{body['results'][0]['id']}/similar", params={"k": 2})
        assert r.status_code == 200 and r.json()["mode"] == "similar"
        assert client.get("/v1/clips/999999/similar").status_code == 404  # errors of plain calls come through
    assert app.state.batcher.closed  # the lifespan stopped the worker


def test_engine_search_many_groups_and_isolates(workspace):
    home, ws = workspace
    emb = GatedEmbedder()
    engine = SearchEngine.open(ws, emb, text_cache=TextEmbeddingCache(16))
    reqs = [engine.validate(p.get("q"), p.get("k", 10), p.get("offset", 0),
                            [p["genre"]] if isinstance(p.get("genre"), str) else p.get("genre", []),
                            p.get("bpm_min"), p.get("bpm_max"), p.get("split"), None) for _, p in MIXED]
    alone = [engine.search(r) for r in reqs]
    emb.calls.clear()
    again = engine.search_many(reqs + [engine.validate("POISON", 5, 0)])
    assert emb.calls == [["POISON"], ["POISON"]]  # cached texts are not encoded again; the failure is retried alone
    assert isinstance(again[-1], InputError)
    for b, a in zip(again[:-1], alone):
        assert_same(b, a)
    assert engine.text_cache is not None and engine.text_cache.stats()["hits"] >= 7


def test_flat_search_as_one_matrix_product_matches_one_query_at_a_time():
    """`dancesearch serve` lowers FAISS' BLAS threshold so a batch is one GEMM: same ids, scores within 1e-5."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3000, 64)).astype(np.float32)
    idx = FaissIndex("flat", 64)
    idx.add(x, ClipAttributes.from_rows(list(range(3000)), ["g"] * 3000, [100.0] * 3000, ["train"] * 3000,
                                        ["s"] * 3000))
    q = rng.standard_normal((24, 64)).astype(np.float32)
    one = [idx.search(q[i:i + 1], 10) for i in range(len(q))]
    old = faiss.cvar.distance_compute_blas_threshold
    faiss.cvar.distance_compute_blas_threshold = 2
    try:
        many = idx.search(q, 10)
    finally:
        faiss.cvar.distance_compute_blas_threshold = old
    assert [[p[0] for p in many.row(i)] for i in range(len(q))] == [[p[0] for p in h.row(0)] for h in one]
    np.testing.assert_allclose(many.scores, np.concatenate([h.scores for h in one]), atol=1e-5)


def test_text_cache_keys_and_bounds():
    cache = TextEmbeddingCache(2)
    v = np.eye(3, dtype=np.float32)
    cache.put_many("m1", ["a  waltz ", "salsa"], v[:2])
    assert query_key("  a \t waltz\n") == "a waltz"
    got = cache.get_many("m1", ["a waltz", "salsa", "tango"])
    assert np.array_equal(got[0], v[0]) and np.array_equal(got[1], v[1]) and got[2] is None
    assert cache.get_many("m2", ["a waltz"]) == [None]  # another model never gets these vectors
    cache.put_many("m1", ["tango"], v[2:])
    assert cache.get_many("m1", ["a waltz"]) == [None] and len(cache) == 2  # least recently used went
    assert cache.stats() == {"hits": 2, "misses": 3, "entries": 2}
    with pytest.raises(ValueError):
        got[1][0] = 5.0  # cached vectors are read-only


# --- the batcher on its own ------------------------------------------------------------------------------
def test_lone_request_does_not_wait_for_the_window():
    sizes: list[int] = []
    batcher: MicroBatcher[int, int] = MicroBatcher(lambda items: [i * 2 for i in items], max_batch=8, window_s=0.3,
                                                   on_batch=lambda n, _: sizes.append(n))

    async def main() -> tuple[list[float], list[int]]:
        times = []
        for i in range(3):
            t = time.perf_counter()
            assert await batcher.submit(i) == 2 * i
            times.append(time.perf_counter() - t)
        return times, list(await asyncio.gather(*(batcher.submit(i) for i in range(20))))

    try:
        times, doubled = asyncio.run(main())
    finally:
        batcher.close()
    assert max(times) < 0.15 and sizes[:3] == [1, 1, 1]
    assert doubled == [2 * i for i in range(20)] and all(s <= 8 for s in sizes) and sum(sizes) == 23


def test_batcher_survives_handler_bugs_and_closes():
    def handler(items: list[int]) -> list[Any]:
        if 13 in items:
            raise RuntimeError("handler bug")
        return [ValueError(i) if i < 0 else i for i in items]

    batcher: MicroBatcher[int, int] = MicroBatcher(handler, max_batch=4, window_s=0)

    async def main() -> list[Any]:
        return await asyncio.gather(batcher.submit(-1), batcher.submit(13), batcher.submit(5),
                                    batcher.call(lambda: "called"), return_exceptions=True)

    out = asyncio.run(main())
    assert isinstance(out[0], (ValueError, RuntimeError)) and isinstance(out[1], RuntimeError)
    assert out[3] == "called"
    assert asyncio.run(batcher.submit(7)) == 7
    batcher.close()
    with pytest.raises(BatcherClosedError):
        asyncio.run(batcher.submit(1))


def test_several_batch_workers_share_one_queue():
    seen: set[str] = set()

    def handler(items: list[int]) -> list[int]:
        seen.add(threading.current_thread().name)
        time.sleep(0.01)
        return [i + 1 for i in items]

    batcher: MicroBatcher[int, int] = MicroBatcher(handler, max_batch=4, window_s=0, workers=2)

    async def main() -> list[int]:
        return list(await asyncio.gather(*(batcher.submit(i) for i in range(40))))

    try:
        assert asyncio.run(main()) == [i + 1 for i in range(40)]
    finally:
        batcher.close()
    assert len(seen) == 2
