"""Operational hardening of the API server (issue 18), each over HTTP against a real uvicorn server:

- the server follows its workspace: a catalog change or a rebuilt index is picked up without a
  restart, and ``total`` / results / ``/similar`` agree with the catalog (no answer counts or returns
  a clip that is gone); the reload route's 403 names ``DANCESEARCH_API_KEY`` and the header;
- keep-alive: idle connections outlive uvicorn's old 5-s timeout, a burst of keep-alive clients
  that idle across it loses no request, and the UI's client resends a GET the server dropped;
- broken stored media give one JSON 503 naming the clip and the file, logged once, and
  ``dancesearch check`` lists them;
- request bodies over the limit are refused with 413 before they are read (declared or chunked);
- 405 answers carry an ``Allow`` header with every method of the path.
"""
from __future__ import annotations

import json
import logging
import os
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from encoders.atomic_io import atomic_write_text
from indexer.catalog import ClipRow, SequenceRow
from indexer.index import FaissIndex
from indexer.index.builder import build_index
from indexer.index.filters import ClipAttributes, ClipFilter
from indexer.index.service import SearchEngine
from search_api.app import create_app
from search_api.live import LiveIndexView
from search_api.settings import ApiSettings
from search_support import ConfiguredServerThread, WordEmbedder, make_workspace, wait_for
from ui.api_client import ApiClient, ApiClientSettings

ROOT = Path(__file__).resolve().parents[1]


def serve(home: Path, ws: Any, **settings: Any) -> ConfiguredServerThread:
    s = ApiSettings(home=home, **settings)
    return ConfiguredServerThread(create_app(s, engine=SearchEngine.open(ws, WordEmbedder())), s)


def err(resp: httpx.Response, status: int, field: str | None) -> dict[str, Any]:
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"].startswith("application/json")
    body = resp.json()["error"]
    assert body["field"] == field and body["message"] and body["code"]
    return body


@pytest.fixture(scope="module")
def shared(tmp_path_factory):
    """A read-only served workspace for the tests that change nothing."""
    home = tmp_path_factory.mktemp("hardening")
    ws = make_workspace(home)
    build_index(ws, WordEmbedder())
    with serve(home, ws) as server, httpx.Client(base_url=server.url, timeout=30) as client:
        yield client, ws


# --- 2. the server follows catalog and index changes ----------------------------------------------------
def _reingest_changed(ws: Any, genre: str) -> list[int]:
    """Re-ingest every sequence of ``genre`` as changed content (new clip ids, as `ingest` does); returns
    the old ids."""
    cat = ws.catalog(create=False)
    try:
        old = [c for c in cat.clips(genres=[genre])]
        for c in old:
            seq = c.sequence
            cat.replace_sequence(
                SequenceRow(seq.source, seq.name, seq.path, seq.genre, seq.dancer, seq.fps, seq.num_frames, seq.bpm,
                            seq.has_audio, seq.split, dict(seq.meta or {})),
                [ClipRow(c.clip_index, c.start_frame, c.end_frame, c.duration_s, c.motion_path, c.music_path,
                         c.audio_path, dict(c.tags or {}), [(t, "file") for t in c.caption_texts])],
                content_changed=True)
        return [c.id for c in old]
    finally:
        cat.close()


def test_server_follows_catalog_and_index_changes(tmp_path):
    ws = make_workspace(tmp_path, clips_per_genre=6)
    emb = WordEmbedder()
    build_index(ws, emb)
    with serve(tmp_path, ws, reload_check_s=0.05) as server, httpx.Client(base_url=server.url, timeout=30) as c:
        before = c.get("/readyz").json()["index"]
        assert before["hidden"] == 0 and before["unindexed"] == 0
        assert c.get("/v1/search", params={"genre": "hiphop", "k": 10}).json()["total"] == 6

        old_ids = _reingest_changed(ws, "hiphop")  # new ids in the catalog; the index still has the old ones
        cat = ws.catalog(create=False)
        version = cat.version()
        cat.close()
        assert version == before["catalog_version"] + 6  # one per re-ingested sequence
        info = wait_for(lambda: (lambda i: i if i["catalog_version"] == version else None)(
            c.get("/readyz").json()["index"]), timeout=10)
        assert info["hidden"] == 6 and info["unindexed"] == 6 and info["generation"] == before["generation"]

        # total counts only clips the catalog still has, and pages stay full
        body = c.get("/v1/search", params={"q": "fast hiphop dance", "k": 5}).json()
        assert body["total"] == 18 and len(body["results"]) == 5
        assert not set(old_ids) & {r["id"] for r in body["results"]}
        every = c.get("/v1/search", params={"q": "dance", "k": 100}).json()
        assert every["total"] == len(every["results"]) == 18
        gone = c.get("/v1/search", params={"genre": "hiphop", "k": 10}).json()
        assert gone["total"] == 0 and gone["results"] == [] and gone["no_match"] is True
        err(c.get(f"/v1/clips/{old_ids[0]}/similar", params={"k": 3}), 404, "id")
        sim = c.get(f"/v1/clips/{every['results'][0]['id']}/similar", params={"k": 100}).json()
        assert sim["total"] == 17 and len(sim["results"]) == 17 and not set(old_ids) & {r["id"] for r in sim["results"]}
        metrics = c.get("/metrics").text
        assert "dancesearch_index_hidden_vectors 6.0" in metrics
        assert 'dancesearch_reloads_total{result="ok",trigger="automatic"}' in metrics

        # a rebuilt index is used without a restart
        build_index(ws, emb)
        info = wait_for(lambda: (lambda i: i if i["generation"] != before["generation"] else None)(
            c.get("/readyz").json()["index"]), timeout=10)
        assert info["hidden"] == 0 and info["unindexed"] == 0 and info["count"] == 24
        back = c.get("/v1/search", params={"genre": "hiphop", "k": 10}).json()
        assert back["total"] == 6 and len(back["results"]) == 6
        assert not set(old_ids) & {r["id"] for r in back["results"]}


def test_a_failed_automatic_reload_keeps_serving_the_previous_state(tmp_path, caplog):
    ws = make_workspace(tmp_path, clips_per_genre=3)
    build_index(ws, WordEmbedder())
    with serve(tmp_path, ws, reload_check_s=0.05) as server, httpx.Client(base_url=server.url, timeout=30) as c:
        gen = c.get("/readyz").json()["index"]["generation"]
        manifest = ws.index_dir("default") / "manifest.json"
        m = json.loads(manifest.read_text())
        # as if rebuilt with another model; atomically, as index builds write it (a plain write_text let the
        # watcher read a half-written file under load: a second, different failure line)
        atomic_write_text(manifest, json.dumps({**m, "model_id": "another-model"}))
        with caplog.at_level(logging.WARNING, logger="dancesearch.api"):
            wait_for(lambda: any("automatic reload failed" in r.getMessage() for r in caplog.records), timeout=10)
            time.sleep(0.3)  # several more checks: no retry storm, no more log lines
        failures = [r for r in caplog.records if "automatic reload failed" in r.getMessage()]
        assert len(failures) == 1 and "another-model" in failures[0].getMessage() and failures[0].exc_info is None
        r = c.get("/v1/search", params={"q": "waltz", "k": 3})
        assert r.status_code == 200 and len(r.json()["results"]) == 3
        assert c.get("/readyz").json()["index"]["generation"] == gen
        assert 'dancesearch_reloads_total{result="error",trigger="automatic"} 1.0' in c.get("/metrics").text


def test_live_view_counts_and_pages_only_live_clips():
    rng = np.random.default_rng(0)
    n, dim = 60, 16
    index = FaissIndex("flat", dim)
    genres = [("waltz", "salsa")[i % 2] for i in range(n)]
    index.add(rng.normal(size=(n, dim)).astype(np.float32),
              ClipAttributes.from_rows(list(range(100, 100 + n)), genres, [100.0 + i for i in range(n)],
                                       ["test"] * n, ["demo"] * n))
    hidden = np.arange(100, 100 + n, 3)  # every third clip left the catalog
    view = LiveIndexView(index, hidden)
    q = rng.normal(size=(2, dim)).astype(np.float32)
    salsa = ClipFilter(("salsa",))
    for flt in (None, salsa, ClipFilter(bpm_min=130.0)):
        live = [i for i, (g, b) in enumerate(zip(genres, range(n))) if (100 + i) not in set(hidden.tolist())
                and (flt is None or flt.matches(g, 100.0 + i))]
        assert view.count(flt) == len(live)
        hits = view.search(q, 10, flt)
        exact = index.search(q, n, flt)
        for row in range(2):
            want = [p for p in exact.row(row) if p[0] not in set(hidden.tolist())][:10]
            assert hits.row(row) == want and len(want) == min(10, len(live))
    assert len(view) == n - len(hidden) and not view.contains(100) and view.contains(101)
    with pytest.raises(KeyError):
        view.vectors_for(np.array([101, 103]))
    assert view.vectors_for(np.array([101])).shape == (1, dim)


def test_reload_403_names_the_variable_and_the_header(shared):
    client, _ = shared
    body = err(client.post("/v1/admin/reload"), 403, "x-api-key")
    assert "DANCESEARCH_API_KEY" in body["message"] and "X-API-Key" in body["message"]
    assert "by itself" in body["message"]


# --- 3. keep-alive ---------------------------------------------------------------------------------------
def _http_get(sock: socket.socket, path: str) -> bytes:
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
    data = b""
    while b"\r\n\r\n" not in data or len(data.split(b"\r\n\r\n", 1)[1]) < _length(data):
        chunk = sock.recv(65536)
        if not chunk:
            return data
        data += chunk
    return data


def _length(data: bytes) -> int:
    for line in data.split(b"\r\n\r\n", 1)[0].split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            return int(line.split(b":", 1)[1])
    return 0


def test_idle_connection_outlives_uvicorns_old_keep_alive(shared):
    client, _ = shared
    port = int(str(client.base_url).rsplit(":", 1)[1].strip("/"))
    assert ApiSettings().keep_alive_s > 60 > ApiClientSettings().keepalive_expiry_s
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        assert _http_get(sock, "/healthz").startswith(b"HTTP/1.1 200")
        time.sleep(5.6)  # past uvicorn's default timeout_keep_alive (5 s), which raced httpx's 5-s pool expiry
        assert _http_get(sock, "/healthz").startswith(b"HTTP/1.1 200"), "the server closed an idle connection"


def test_keep_alive_flag_and_variable_reach_uvicorn(monkeypatch):
    import argparse

    from search_api.cli import register
    from search_api.serving import uvicorn_config

    parser = argparse.ArgumentParser()
    register(parser.add_subparsers())
    args = parser.parse_args(["serve", "--keep-alive", "30", "--reload-check", "0"])
    assert args.keep_alive_s == 30.0 and args.reload_check_s == 0.0
    assert uvicorn_config(None, ApiSettings(keep_alive_s=args.keep_alive_s)).timeout_keep_alive == 30.0
    monkeypatch.setenv("DANCESEARCH_KEEP_ALIVE_S", "90")
    assert uvicorn_config(None, ApiSettings()).timeout_keep_alive == 90.0


def _load(url: str, clients: int, seconds: float, idle: tuple[float, float] | None,
          expiry: float | None = 5.0) -> tuple[int, list[str], list[int]]:
    """``clients`` keep-alive httpx clients (pool expiry ``expiry``: httpx's default 5 s, None for a client
    that never expires idle connections, like urllib3 / requests) sending searches for ``seconds``; with
    ``idle`` = (lo, hi) each also pauses once for a random time in that range.  Returns (requests answered
    200, failures, per client the requests answered 200 after its idle). The counts depend on how busy the
    machine is; what a client relies on is that nothing fails and every client is served after its idle."""
    done = [0] * clients
    after = [0] * clients           # answered after the client's idle: what keep-alive reuse must not lose
    failures: list[str] = []
    start = threading.Barrier(clients)

    def one(i: int) -> None:
        rng = np.random.default_rng(i)
        with httpx.Client(base_url=url, timeout=30, limits=httpx.Limits(keepalive_expiry=expiry)) as c:
            start.wait()
            t_end = time.monotonic() + seconds
            paused = idle is None
            t_pause = time.monotonic() + 1.0
            while time.monotonic() < t_end:
                if not paused and time.monotonic() >= t_pause:
                    time.sleep(float(rng.uniform(*idle)))
                    paused = True
                try:
                    r = c.get("/v1/search", params={"q": f"a fast salsa dance {i % 8}", "k": 3})
                    if r.status_code == 200:
                        done[i] += 1
                        after[i] += paused and idle is not None
                    else:
                        failures.append(f"HTTP {r.status_code}")
                except httpx.HTTPError as exc:
                    failures.append(f"{type(exc).__name__}: {exc}")
                time.sleep(float(rng.uniform(0.0, 0.3)))

    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(one, range(clients)))
    return sum(done), failures, after


@pytest.mark.slow   # 10 s of idling; test_idle_connection_outlives_uvicorns_old_keep_alive covers it fast
def test_keep_alive_clients_idling_past_five_seconds_lose_nothing(shared):
    """32 clients: one second of searches, an idle of 4.9-5.3 s (where uvicorn's old 5-s keep-alive closed
    connections that httpx, whose pool also expires after 5 s, was about to reuse), then searches again."""
    client, _ = shared
    answered, failures, after = _load(str(client.base_url).rstrip("/"), clients=32, seconds=8.0, idle=(4.9, 5.3))
    assert failures == [] and min(after) >= 1, (failures[:5], after)


@pytest.mark.slow
def test_sixty_four_keep_alive_clients_for_twenty_seconds(shared):
    client, _ = shared
    answered, failures, after = _load(str(client.base_url).rstrip("/"), clients=64, seconds=20.0, idle=(4.8, 5.4))
    assert failures == [] and min(after) >= 3, (failures[:5], after)


class _DroppingServer:
    """A loopback HTTP server that answers the first request on a connection, then reads the second and
    closes without answering: what a client sees when the server's keep-alive fires as it sends."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.requests = 0
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        body = json.dumps({"genres": [{"name": "waltz", "count": 3}]}).encode()
        answer = (b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: "
                  + str(len(body)).encode() + b"\r\n\r\n" + body)
        try:
            while True:
                conn, _ = self.sock.accept()
                with conn:
                    for n in range(2):
                        data = b""
                        while b"\r\n\r\n" not in data:
                            chunk = conn.recv(4096)
                            if not chunk:
                                break
                            data += chunk
                        if not data:
                            break
                        self.requests += 1
                        if n == 0:
                            conn.sendall(answer)
        except OSError:
            return

    def close(self) -> None:
        self.sock.close()


def test_ui_client_resends_a_get_the_server_dropped():
    server = _DroppingServer()
    try:
        with ApiClient(server.url) as api:
            assert api.genres() == [("waltz", 3)]
            assert api.genres() == [("waltz", 3)]  # first sent on the pooled connection, dropped, sent again
        assert server.requests == 3
    finally:
        server.close()


# --- 4. broken stored media ------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def broken(tmp_path_factory):
    """A served workspace whose first clips' motion / audio files are damaged in different ways."""
    home = tmp_path_factory.mktemp("broken")
    ws = make_workspace(home, clips_per_genre=3)
    build_index(ws, WordEmbedder())
    cat = ws.catalog(create=False)
    clips = cat.clips()
    cat.close()
    damage = {"truncated": lambda b: b[: len(b) // 2], "empty": lambda b: b"", "random": lambda b: os.urandom(4000)}
    motion = {}
    for (name, fn), clip in zip(damage.items(), clips):
        path = ws.resolve(clip.motion_path)
        path.write_bytes(fn(path.read_bytes()))
        motion[name] = clip
    with_audio = [c for c in clips if c.audio_path and c not in motion.values()]
    audio = {}
    for (name, fn), clip in zip(damage.items(), with_audio):
        path = ws.resolve(clip.audio_path)
        path.write_bytes(fn(path.read_bytes()))
        audio[name] = clip
    healthy = next(c for c in clips if c.audio_path and c not in motion.values() and c not in audio.values())
    with serve(home, ws) as server, httpx.Client(base_url=server.url, timeout=30) as client:
        yield client, ws, motion, audio, healthy


@pytest.mark.parametrize("damage", ["truncated", "empty", "random"])
@pytest.mark.parametrize("fmt", ["npz", "json", "bvh"])
def test_broken_motion_gives_one_json_error_naming_the_clip(broken, damage, fmt):
    client, _, motion, _, _ = broken
    clip = motion[damage]
    body = err(client.get(f"/v1/clips/{clip.id}/motion", params={"format": fmt}), 503, "id")
    assert body["code"] == "media_unavailable" and body["clip_id"] == clip.id and body["file"] == clip.motion_path
    assert f"clip {clip.id}" in body["message"] and clip.motion_path in body["message"]
    assert "unsafely" not in body["message"] and "dancesearch check" in body["message"]


@pytest.mark.parametrize("damage", ["truncated", "empty", "random"])
def test_broken_audio_is_not_streamed(broken, damage):
    client, _, _, audio, _ = broken
    clip = audio[damage]
    body = err(client.get(f"/v1/clips/{clip.id}/audio"), 503, "id")
    assert body["clip_id"] == clip.id and body["file"] == clip.audio_path


def test_healthy_and_repaired_media_are_served(broken):
    client, ws, _, audio, healthy = broken
    clip = audio["random"]
    assert client.get(f"/v1/clips/{clip.id}/audio").status_code == 503
    assert client.get(f"/v1/clips/{healthy.id}/audio").status_code == 200
    assert client.get(f"/v1/clips/{healthy.id}/motion", params={"format": "npz"}).status_code == 200
    ws.resolve(clip.audio_path).write_bytes(ws.resolve(healthy.audio_path).read_bytes())  # repaired: new version
    assert client.get(f"/v1/clips/{clip.id}/audio").status_code == 200


def test_broken_media_log_line(tmp_path, caplog):
    ws = make_workspace(tmp_path, clips_per_genre=1)
    build_index(ws, WordEmbedder())
    cat = ws.catalog(create=False)
    clip = cat.clips()[0]
    cat.close()
    ws.resolve(clip.motion_path).write_bytes(b"PK\x03\x04 truncated")
    with caplog.at_level(logging.INFO), serve(tmp_path, ws) as server, httpx.Client(base_url=server.url) as c:
        for fmt in ("npz", "json", "npz"):
            assert c.get(f"/v1/clips/{clip.id}/motion", params={"format": fmt}).status_code == 503
    ours = [r for r in caplog.records if "media unavailable" in r.getMessage()]
    assert len(ours) == 1 and ours[0].exc_info is None and clip.motion_path in ours[0].getMessage()
    assert not [r for r in caplog.records if r.exc_info], "a traceback was logged"


def _cli(*argv: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ui.cli", *argv], cwd=ROOT, capture_output=True, text=True,
                          timeout=120)


def test_check_command_lists_broken_media(broken, tmp_path, capsys):
    import argparse

    from indexer.media_check import cmd_check

    _, ws, motion, audio, _ = broken
    r = _cli("check", "--home", str(ws.home), "--json")  # the real command line: registration, exit code
    assert r.returncode == 1, r.stderr
    report = json.loads(r.stdout)
    found = {(p["clip_id"], p["kind"]) for p in report["problems"]}
    assert {(c.id, "motion") for c in motion.values()} <= found
    assert all(p["file"] and p["problem"] and p["key"] for p in report["problems"])
    assert cmd_check(argparse.Namespace(home=ws.home, db=None, json=False)) == 1
    out = capsys.readouterr().out
    assert f"clip {motion['empty'].id} ({motion['empty'].key}): motion {motion['empty'].motion_path}: the file is empty" in out
    fine = make_workspace(tmp_path / "fine", clips_per_genre=1)
    assert cmd_check(argparse.Namespace(home=fine.home, db=None, json=True)) == 0
    assert json.loads(capsys.readouterr().out)["ok"] is True
    from indexer.catalog import CatalogError

    with pytest.raises(CatalogError, match="no catalog at"):  # main() prints it as `error: ...`, exit 1
        cmd_check(argparse.Namespace(home=tmp_path / "typo", db=None, json=False))
    assert not (tmp_path / "typo").exists()


def test_media_checks_on_the_formats_ingest_writes(tmp_path):
    """.motion.npz and .ogg as `dancesearch ingest` writes them, then damaged."""
    import soundfile as sf

    from indexer.media_check import audio_problem, motion_problem, music_problem
    from search_support import _motion

    motion = tmp_path / "0.motion.npz"
    _motion(0, True, 1, True).save(motion)
    ogg = tmp_path / "0.ogg"
    sf.write(ogg, np.sin(np.linspace(0, 3000, 15360 * 2)).astype(np.float32), 15360, format="OGG", subtype="VORBIS")
    music = tmp_path / "0.music.npy"
    np.save(music, np.zeros((60, 35), dtype=np.float32))
    assert motion_problem(motion) is None and audio_problem(ogg) is None and music_problem(music) is None
    for path, check in ((motion, motion_problem), (ogg, audio_problem), (music, music_problem)):
        data = path.read_bytes()
        for damaged in (data[: len(data) // 2], b"", os.urandom(3000)):
            path.write_bytes(damaged)
            assert check(path), (path.name, len(damaged))
        path.write_bytes(data)
    import zipfile

    with zipfile.ZipFile(motion, "a") as z:  # a pickled member: refused, in words an operator can use
        z.writestr("extra.npy", b"\x93NUMPY\x01\x00v\x00{'descr': '|O', 'fortran_order': False, 'shape': (1,), }"
                                .ljust(128, b" ")[:127] + b"\n" + b"\x80\x04N.")
    assert "pickled" in motion_problem(motion)
    assert motion_problem(tmp_path / "nope.motion.npz") == "the file is missing"


# --- 7. request-body limits ------------------------------------------------------------------------------
def test_search_body_over_the_limit_is_refused_with_413(shared):
    client, _ = shared
    limit = ApiSettings().max_search_body_bytes
    base = b'{"q": "slow waltz", "k": 2}'
    fits = base + b" " * (limit - len(base))
    assert client.post("/v1/search", content=fits, headers={"content-type": "application/json"}).status_code == 200
    body = err(client.post("/v1/search", content=fits + b" ", headers={"content-type": "application/json"}),
               413, "body")
    assert body["code"] == "body_too_large" and str(limit) in body["message"]
    assert "DANCESEARCH_MAX_SEARCH_BODY_BYTES" in body["message"]

    def chunks():
        yield base[:-1] + b', "pad": "'
        for _ in range(64):
            yield b"x" * 16384  # 1 MiB in all, no Content-Length: chunked transfer encoding
        yield b'"}'

    r = client.post("/v1/search", content=chunks(), headers={"content-type": "application/json"})
    assert "content-length" not in r.request.headers and r.request.headers["transfer-encoding"] == "chunked"
    err(r, 413, "body")
    assert client.get("/v1/search", params={"q": "waltz"}).status_code == 200  # the server is fine


def test_declared_oversized_body_is_refused_before_it_is_read(shared):
    client, _ = shared
    port = int(str(client.base_url).rsplit(":", 1)[1].strip("/"))
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(b"POST /v1/search HTTP/1.1\r\nHost: 127.0.0.1\r\ncontent-type: application/json\r\n"
                     b"content-length: 209715200\r\n\r\n{\"q\": ")
        t0 = time.monotonic()
        reply = b""
        while chunk := sock.recv(65536):  # the 200 MB never come: an answer now means nothing waited for them
            reply += chunk
        assert reply.startswith(b"HTTP/1.1 413"), reply[:200]
        assert time.monotonic() - t0 < 3 and b"body_too_large" in reply


# --- 11. 405 with Allow ----------------------------------------------------------------------------------
@pytest.mark.parametrize("method,path,allow", [
    ("PUT", "/v1/search", "GET, POST"),  # two routes share the path: both methods, not the first route's
    ("DELETE", "/v1/clips/1", "GET"),
    ("GET", "/v1/admin/reload", "POST"),
    ("POST", "/healthz", "GET"),
])
def test_405_names_the_allowed_methods(shared, method, path, allow):
    client, _ = shared
    r = client.request(method, path)
    body = err(r, 405, None)
    assert r.headers["allow"] == allow and body["code"] == "method_not_allowed" and allow in body["message"]
