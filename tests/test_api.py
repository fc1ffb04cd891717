"""The v1 API over HTTP against a real uvicorn server, a real SQLite catalog and a real FAISS index.

The model here is ``search_support.WordEmbedder`` (deterministic, no training needed);
tests/test_api_e2e.py runs the same server with the shipped model on an ingested demo corpus.
"""
from __future__ import annotations

import io
import json
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np
import pytest
from pydantic import SecretStr

from encoders.motion.bvh import parse_bvh
from encoders.motion.record import MotionRecord
from indexer.index.builder import build_index
from indexer.index.service import SearchEngine
from search_api.app import create_app
from search_api.settings import ApiSettings
from search_support import GENRES, ServerThread, WordEmbedder, free_port, make_workspace

RESULT_KEYS = {"rank", "id", "key", "score", "genre", "bpm", "duration_s", "dancer", "split", "source", "caption",
               "captions", "tags", "media", "explanation"}


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    home = tmp_path_factory.mktemp("ws")
    ws = make_workspace(home)
    emb = WordEmbedder()
    build_index(ws, emb)
    loader = lambda: SearchEngine.open(ws, emb)  # noqa: E731
    app = create_app(ApiSettings(home=home, api_key=SecretStr("s3cret")), engine=loader(), loader=loader)
    with ServerThread(app) as server, httpx.Client(base_url=server.url, timeout=30) as client:
        yield client, ws


def err(resp: httpx.Response, status: int, field: str | None) -> dict:
    assert resp.status_code == status, resp.text
    body = resp.json()["error"]
    assert body["field"] == field and body["message"] and body["code"]
    return body


def test_text_search_contract(served):
    client, _ = served
    r = client.get("/v1/search", params={"q": "a fast salsa dance", "k": 5})
    assert r.status_code == 200
    body = r.json()
    assert set(body) == {"query", "mode", "no_match", "threshold", "model", "took_ms", "total", "results",
                         "outcome", "outcome_reason", "outcome_scores", "proposal", "expanded_query"}
    assert body["expanded_query"] is None     # this test embedder has no jargon expansion
    assert body["mode"] == "text" and body["no_match"] is False and body["model"] == "test-words-v1"
    assert body["query"]["q"] == "a fast salsa dance" and body["query"]["genres"] == []
    assert isinstance(body["threshold"], float) and body["took_ms"] > 0 and body["total"] == 24
    res = body["results"]
    assert [x["rank"] for x in res] == [1, 2, 3, 4, 5]
    assert all(set(x) == RESULT_KEYS for x in res)
    assert [x["genre"] for x in res[:3]] == ["salsa"] * 3 and all(x["bpm"] >= 130 for x in res[:3])
    assert all(a["score"] >= b["score"] for a, b in zip(res, res[1:]))
    top = res[0]
    assert top["explanation"]["matched"][:2] == ["genre", "tempo"] and "salsa" in top["explanation"]["text"]
    assert top["media"]["motion_bvh"] == f"/v1/clips/{top['id']}/motion?format=bvh"
    assert top["caption"] == top["captions"][0] and "salsa" in top["caption"]


def test_post_equals_get_and_pagination(served):
    client, _ = served
    get = client.get("/v1/search", params={"q": "slow waltz", "k": 6}).json()
    post = client.post("/v1/search", json={"q": "slow waltz", "k": 6}).json()
    assert [x["id"] for x in get["results"]] == [x["id"] for x in post["results"]]
    page = client.post("/v1/search", json={"q": "slow waltz", "k": 3, "offset": 3}).json()
    assert [x["id"] for x in page["results"]] == [x["id"] for x in get["results"][3:6]]
    assert [x["rank"] for x in page["results"]] == [4, 5, 6]


def test_filters_never_lose_results(served):
    client, _ = served
    r = client.get("/v1/search", params=[("q", "dance"), ("genre", "ballet"), ("genre", "tango"), ("k", 10)])
    err(r, 422, "genre")  # tango is not in the corpus: named, not silently ignored
    r = client.get("/v1/search", params=[("q", "dance"), ("genre", "ballet"), ("genre", "hiphop"), ("k", 20),
                                         ("bpm_min", 120)]).json()
    assert len(r["results"]) == r["total"] == 6  # 3 fast clips per genre
    assert all(x["genre"] in ("ballet", "hiphop") and x["bpm"] >= 120 for x in r["results"])
    assert all("tempo" in x["explanation"]["matched"] for x in r["results"])
    r = client.post("/v1/search", json={"q": "dance", "genre": "waltz", "split": "val", "k": 10}).json()
    assert r["total"] == 2 and len(r["results"]) == 2 and all(x["split"] == "val" for x in r["results"])


def test_genre_search_ranks_by_typicality(served):
    client, _ = served
    body = client.get("/v1/search", params={"genre": "hiphop", "k": 10}).json()
    assert body["mode"] == "genre" and body["query"]["q"] is None and body["no_match"] is False
    assert len(body["results"]) == 6 and all(x["genre"] == "hiphop" for x in body["results"])
    assert all(a["score"] >= b["score"] for a, b in zip(body["results"], body["results"][1:]))
    assert body["results"][0]["explanation"]["text"].startswith("typical of genre 'hiphop'")


def test_no_match_flag(served):
    client, _ = served
    body = client.get("/v1/search", params={"q": "quantum chromodynamics lecture"}).json()
    assert body["no_match"] is True and body["results"][0]["score"] < body["threshold"]
    assert client.get("/v1/search", params={"q": "fast hiphop dance"}).json()["no_match"] is False


@pytest.mark.parametrize("params,status,field", [
    ({"q": ""}, 422, "q"),
    ({"q": "   "}, 422, "q"),
    ({"q": "x" * 501}, 422, "q"),
    ({"q": "waltz", "k": 0}, 422, "k"),
    ({"q": "waltz", "k": 101}, 422, "k"),
    ({"q": "waltz", "k": "ten"}, 422, "k"),
    ({"q": "waltz", "offset": -1}, 422, "offset"),
    ({"q": "waltz", "offset": 5000}, 422, "offset"),
    ({"q": "waltz", "genre": "polka"}, 422, "genre"),
    ({"q": "waltz", "bpm_min": 140, "bpm_max": 100}, 422, "bpm_min"),
    ({"q": "waltz", "bpm_min": "nan"}, 422, "bpm_min"),
    ({"q": "waltz", "split": "holdout"}, 422, "split"),
    ({}, 422, "q"),
])
def test_bad_search_parameters_name_the_field(served, params, status, field):
    client, _ = served
    err(client.get("/v1/search", params=params), status, field)


def test_bad_post_bodies(served):
    client, _ = served
    body = err(client.post("/v1/search", content=b'{"q": "waltz", ', headers={"content-type": "application/json"}),
               400, "body")
    assert body["code"] == "malformed_json"
    err(client.post("/v1/search", json={"q": "waltz", "kk": 3}), 422, "kk")
    err(client.post("/v1/search", json={"q": "waltz", "k": 1000}), 422, "k")
    err(client.post("/v1/search", json=["waltz"]), 422, "body")
    err(client.post("/v1/search", json={"q": "waltz", "genre": ["waltz", 3]}), 422, "genre")


def test_clip_routes(served):
    client, ws = served
    first = client.get("/v1/search", params={"q": "slow ballet dance", "k": 1}).json()["results"][0]
    info = client.get(f"/v1/clips/{first['id']}").json()
    assert info["key"] == first["key"] and info["genre"] == "ballet" and "rank" not in info and "score" not in info
    sim = client.get(f"/v1/clips/{first['id']}/similar", params={"k": 4}).json()
    assert sim["mode"] == "similar" and sim["query"]["similar_to"] == first["id"]
    assert len(sim["results"]) == 4 and first["id"] not in [x["id"] for x in sim["results"]]
    assert sim["results"][0]["genre"] == "ballet"
    err(client.get("/v1/clips/999999"), 404, "id")
    err(client.get("/v1/clips/999999/similar"), 404, "id")
    err(client.get("/v1/clips/-3"), 422, "clip_id")
    err(client.get(f"/v1/clips/{2**70}"), 422, "clip_id")
    err(client.get(f"/v1/clips/{first['id']}/similar", params={"k": 0}), 422, "k")
    assert client.get("/v1/nothing-here").json()["error"]["code"] == "not_found"


def _clips(ws):
    cat = ws.catalog(create=False)
    try:
        return cat.clips()
    finally:
        cat.close()


@pytest.mark.parametrize("with_rotations", [True, False])
def test_motion_formats_round_trip(served, with_rotations):
    client, ws = served
    clip = next(c for c in _clips(ws) if (MotionRecord.load(ws.resolve(c.motion_path)).rotations_6d is not None)
                == with_rotations)
    record = MotionRecord.load(ws.resolve(clip.motion_path))
    r = client.get(f"/v1/clips/{clip.id}/motion", params={"format": "npz"})
    assert r.status_code == 200 and "attachment" in r.headers["content-disposition"]
    with np.load(io.BytesIO(r.content)) as z:
        np.testing.assert_array_equal(z["positions"].astype(np.float32), record.positions)
    js = client.get(f"/v1/clips/{clip.id}/motion", params={"format": "json"}).json()
    assert js["fps"] == 30 and js["joint_names"] == record.joint_names and js["parents"][0] == -1
    np.testing.assert_allclose(np.asarray(js["positions"]), record.positions, atol=1e-4)
    bvh = client.get(f"/v1/clips/{clip.id}/motion", params={"format": "bvh"})
    assert bvh.status_code == 200 and bvh.text.startswith("HIERARCHY")
    parsed = parse_bvh(bvh.text)  # the project's own BVH reader
    pos = parsed.positions(1.0)
    idx = [parsed.names.index(n) for n in record.joint_names]
    np.testing.assert_allclose(pos[:, idx], record.positions, atol=2e-3 if with_rotations else 1e-5)
    assert parsed.fps == 30.0 and parsed.num_frames == record.num_frames
    err(client.get(f"/v1/clips/{clip.id}/motion", params={"format": "fbx"}), 422, "format")


def test_audio_and_media_containment(served, tmp_path):
    client, ws = served
    clips = _clips(ws)
    with_audio = next(c for c in clips if c.audio_path)
    r = client.get(f"/v1/clips/{with_audio.id}/audio")
    assert r.status_code == 200 and r.headers["content-type"] == "audio/wav"
    assert r.content == ws.resolve(with_audio.audio_path).read_bytes()
    without = next(c for c in clips if not c.audio_path)
    assert client.get(f"/v1/clips/{without.id}").json()["media"]["audio"] is None
    err(client.get(f"/v1/clips/{without.id}/audio"), 404, "id")
    # a catalog path that points outside the workspace is never served
    secret = ws.home.parent / "outside-secret.wav"
    secret.write_bytes(b"RIFF-not-for-you")
    from indexer.catalog import Clip

    cat = ws.catalog(create=False)
    with cat.session() as s:
        row = s.get(Clip, with_audio.id)
        old = row.audio_path
        row.audio_path = "../outside-secret.wav"
    try:
        r = client.get(f"/v1/clips/{with_audio.id}/audio")
        assert r.status_code == 404 and b"not-for-you" not in r.content
        assert "outside the workspace" in r.json()["error"]["message"]
    finally:
        with cat.session() as s:
            s.get(Clip, with_audio.id).audio_path = old
        cat.close()


def test_genres_health_ready_metrics_docs(served):
    client, _ = served
    g = client.get("/v1/genres").json()["genres"]
    assert sorted(x["name"] for x in g) == sorted(GENRES) and all(x["count"] == 6 for x in g)
    assert client.get("/healthz").json()["status"] == "ok"
    ready = client.get("/readyz").json()
    assert ready["status"] == "ready" and ready["index"]["count"] == 24
    client.get("/v1/search", params={"q": "waltz"})
    m = client.get("/metrics").text
    assert 'dancesearch_http_request_duration_seconds_bucket{le="0.01",method="GET",route="/v1/search",status="200"}' in m
    assert "dancesearch_search_duration_seconds_count" in m
    spec = client.get("/openapi.json").json()
    assert spec["info"]["version"] == "1.0.0" and "/v1/search" in spec["paths"] and "/v1/clips/{clip_id}/motion" in spec["paths"]
    assert client.get("/docs").status_code == 200


def test_concurrent_requests_give_the_sequential_answers(served):
    client, _ = served
    queries = [f"a {s} {g} dance" for g in GENRES for s in ("fast", "slow")] * 4
    base = client.base_url

    def one(q: str) -> list[int]:
        with httpx.Client(base_url=base, timeout=30) as c:
            r = c.get("/v1/search", params={"q": q, "k": 5})
            assert r.status_code == 200
            return [x["id"] for x in r.json()["results"]]

    expected = {q: one(q) for q in set(queries)}
    with ThreadPoolExecutor(16) as pool:
        got = list(pool.map(one, queries))
    assert all(ids == expected[q] for q, ids in zip(queries, got))


def test_reload_requires_the_api_key(served):
    client, _ = served
    err(client.post("/v1/admin/reload"), 401, "x-api-key")
    err(client.post("/v1/admin/reload", headers={"X-API-Key": "wrong"}), 401, "x-api-key")
    r = client.post("/v1/admin/reload", headers={"X-API-Key": "s3cret"})
    assert r.status_code == 200 and r.json()["status"] == "reloaded"
    assert client.get("/v1/search", params={"q": "waltz"}).status_code == 200


# --- end to end with the shipped model: corpus demo -> ingest npz -> index build -> search / serve ------------
DEMO_MODEL = Path(__file__).resolve().parents[1] / "models" / "demo"


def _cli(*argv: str, home: Path, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ui.cli", *argv, "--home", str(home)], cwd=DEMO_MODEL.parents[1],
                          capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def demo_home(tmp_path_factory):
    if not DEMO_MODEL.is_dir() or not any(DEMO_MODEL.iterdir()):
        pytest.skip(f"the shipped model is not at {DEMO_MODEL} yet")
    home = tmp_path_factory.mktemp("e2e") / "ws"
    corpus = home.parent / "corpus"
    r = subprocess.run([sys.executable, "-m", "ui.cli", "corpus", "demo", "--out", str(corpus), "--clips", "32"],
                       cwd=DEMO_MODEL.parents[1], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    r = _cli("ingest", "npz", str(corpus), home=home)
    assert r.returncode == 0, r.stderr
    return home


@pytest.mark.slow
def test_end_to_end_with_the_real_model(demo_home):
    build = _cli("index", "build", "--json", home=demo_home)
    assert build.returncode == 0, build.stderr
    report = json.loads(build.stdout)
    assert report["action"] == "build" and report["kind"] == "flat" and report["count"] >= 32
    again = json.loads(_cli("index", "build", "--json", home=demo_home).stdout)
    assert again["action"] == "unchanged" and again["count"] == report["count"]
    found = _cli("search", "a fast energetic dance with jumps", "--k", "5", "--json", home=demo_home)
    assert found.returncode == 0, found.stderr
    body = json.loads(found.stdout)
    assert body["mode"] == "text" and len(body["results"]) == 5 and body["model"].startswith("cd-")
    genre = body["results"][0]["genre"]
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "ui.cli", "serve", "--home", str(demo_home), "--port", str(port)],
                              cwd=DEMO_MODEL.parents[1], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 180
        while True:
            assert server.poll() is None, server.stderr.read()
            try:
                if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "server did not become ready"
            time.sleep(0.3)
        with httpx.Client(base_url=url, timeout=60) as c:
            http = c.get("/v1/search", params={"q": "a fast energetic dance with jumps", "k": 5}).json()
            assert [x["id"] for x in http["results"]] == [x["id"] for x in body["results"]]
            assert all(set(x) == RESULT_KEYS for x in http["results"])
            g = c.get("/v1/search", params={"genre": genre, "k": 3}).json()
            assert g["mode"] == "genre" and all(x["genre"] == genre for x in g["results"])
            clip_id = http["results"][0]["id"]
            bvh = c.get(f"/v1/clips/{clip_id}/motion", params={"format": "bvh"})
            js = c.get(f"/v1/clips/{clip_id}/motion", params={"format": "json"}).json()
            parsed = parse_bvh(bvh.text)
            idx = [parsed.names.index(n) for n in js["joint_names"]]
            np.testing.assert_allclose(parsed.positions(1.0)[:, idx], np.asarray(js["positions"]), atol=5e-3)
            if http["results"][0]["media"]["audio"]:
                assert c.get(http["results"][0]["media"]["audio"]).status_code == 200
            assert c.get(f"/v1/clips/{clip_id}/similar", params={"k": 3}).status_code == 200
    finally:
        server.terminate()
        server.wait(timeout=30)
