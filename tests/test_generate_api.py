"""The generation API over HTTP (real uvicorn server, real SQLite catalog, a tiny real diffusion run):
jobs (queued, running, done, failed, cancelled, restart), uploads refused for size / type / corruption,
the API key on write routes, and generated clips stored and served by the clip / motion / audio routes.
"""
from __future__ import annotations

import io
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import soundfile as sf
import torch
from pydantic import SecretStr

from encoders.errors import InputError
from encoders.motion.bvh import parse_bvh
from encoders.motion.record import MotionRecord
from indexer.catalog import Catalog, ClipRow, SequenceRow
from indexer.index.builder import build_index
from indexer.index.service import SearchEngine
from search_api.app import create_app
from search_api.auth import is_loopback
from search_api.jobs import DiffusionBackend, GenerationRequest, JobCancelled
from search_api.settings import ApiSettings
from search_support import ServerThread, WordEmbedder, make_workspace, wait_for
from tiny_denoiser import tiny_denoiser_config

SR = 22050
KEY = "gen-s3cret"


def tiny_run(root: Path) -> Path:
    """A tiny untrained GCDance run (16-frame windows), as tests/test_generation_diffusion.py makes it."""
    from generation.diffusion.denoiser import GCDanceDenoiser
    from generation.diffusion.run_dir import save_run
    from generation.representation import FEATURE_DIM, Normalizer

    torch.manual_seed(0)
    model = GCDanceDenoiser(tiny_denoiser_config())
    norm = Normalizer(np.zeros(FEATURE_DIM), np.full(FEATURE_DIM, 0.2), 1)
    emb = np.random.default_rng(0).normal(size=(2, 8)).astype(np.float32)
    return save_run(root / "run", model, model.state_dict(), norm, ["popping", "waltz"], emb, {"steps": 0}, "test",
                    [], {})


def clicks(seconds: float, sr: int = SR) -> np.ndarray:
    y = np.zeros(int(seconds * sr), dtype=np.float32)
    for k in range(int(seconds * 2)):
        y[int(k * 0.5 * sr):int(k * 0.5 * sr) + 400] = np.sin(np.arange(400) * 0.3) * 0.8
    return y


def wav_bytes(y: np.ndarray, sr: int = SR) -> bytes:
    buf = io.BytesIO()
    sf.write(buf, y, sr, format="WAV")
    return buf.getvalue()


def add_long_clip(ws: Any, name: str = "long_00", seconds: float = 12.0, audio: bool = True) -> int:
    """A catalog clip with `seconds` of music features (and a wav) to generate from."""
    from search_support import _motion

    d = ws.sequence_media_dir("demo", name)
    d.mkdir(parents=True, exist_ok=True)
    rec = _motion(0, True, seed=7, rotations=True)
    rec.save(d / "0.motion.npz")
    frames = int(seconds * 30)
    np.save(d / "0.music.npy", np.random.default_rng(3).normal(size=(frames, 35)).astype(np.float32))
    if audio:
        sf.write(d / "0.wav", clicks(seconds, 16000), 16000)
    cat = ws.catalog()
    try:
        [cid] = cat.replace_sequence(
            SequenceRow("demo", name, None, "waltz", "d0", 30.0, len(rec.trans), 120.0, audio, "train"),
            [ClipRow(0, 0, len(rec.trans), len(rec.trans) / 30.0, ws.relative(d / "0.motion.npz"),
                     ws.relative(d / "0.music.npy"), ws.relative(d / "0.wav") if audio else None, {}, [("x", "file")])],
            content_changed=False)
    finally:
        cat.close()
    return cid


class Gate:
    """A back-end that runs the tiny diffusion run, but can hold a job in `running` until released, and fails
    on request (genre `popping` with seed 666: RuntimeError; seed 667: InputError)."""

    def __init__(self, inner: DiffusionBackend) -> None:
        self.inner = inner
        self.hold = threading.Event()      # set: jobs wait in running
        self.release = threading.Event()
        self.entered = threading.Event()

    def genres(self) -> list[str]:
        return self.inner.genres()

    def __call__(self, req: GenerationRequest, progress: Any, cancelled: Any) -> Any:
        if req.seed == 666:
            raise RuntimeError("boom")
        if req.seed == 667:
            raise InputError(None, "this music cannot be danced", field="music")
        if self.hold.is_set():
            self.entered.set()
            i = 0
            while not self.release.is_set():
                if cancelled():
                    raise JobCancelled()
                progress(min(0.9, i / 100), "waiting at the gate")
                i += 1
                time.sleep(0.02)
        return self.inner(req, progress, cancelled)


def make_server(home: Path, run: Path, gate: Gate | None = None, **settings: Any) -> tuple[ServerThread, Gate]:
    loader = lambda: SearchEngine.open(_ws(home), WordEmbedder())  # noqa: E731
    gate = gate or Gate(DiffusionBackend(run))
    s = ApiSettings(home=home, reload_check_s=0, **settings)
    app = create_app(s, engine=loader(), loader=loader, generator=gate, genre_fn=lambda text: ("waltz", 0.75))
    return ServerThread(app), gate


def _ws(home: Path) -> Any:
    from indexer.workspace import Workspace
    return Workspace(home)


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    root = tmp_path_factory.mktemp("gen_api")
    home = root / "home"
    ws = make_workspace(home, clips_per_genre=2)
    clip = add_long_clip(ws)
    silent_clip = add_long_clip(ws, "short_00", seconds=3.0, audio=False)
    build_index(ws, WordEmbedder())
    return {"home": home, "ws": ws, "run": tiny_run(root), "clip": clip, "short_clip": silent_clip, "root": root}


@pytest.fixture(scope="module")
def served(base):
    srv, gate = make_server(base["home"], base["run"], max_upload_bytes=512 * 1024, generate_queue_limit=2)
    with srv, httpx.Client(base_url=srv.url, timeout=30) as client:
        yield client, gate


def wait_state(client: httpx.Client, job_id: str, states: tuple[str, ...], timeout: float = 20.0) -> dict:
    def done() -> dict | None:
        body = client.get(f"/v1/jobs/{job_id}").json()
        return body if body["state"] in states else None
    return wait_for(done, timeout=timeout)


def err(resp: httpx.Response, status: int, code: str, field: str | None = "__any__") -> dict:
    assert resp.status_code == status, resp.text
    body = resp.json()["error"]
    assert body["code"] == code and body["message"], body
    if field != "__any__":
        assert body["field"] == field, body
    return body


# --- done: stored and served ---------------------------------------------------------------------------
def test_generate_from_a_catalog_clip_stores_and_serves_the_clips(served, base):
    client, _ = served
    r = client.post("/v1/generate", json={"clip_id": base["clip"], "text": "a slow waltz", "genre": "Waltz",
                                          "seconds": 6, "seed": 5, "candidates": 2, "steps": 3})
    assert r.status_code == 202, r.text
    job = r.json()
    assert r.headers["location"] == f"/v1/jobs/{job['id']}" == job["links"]["self"]
    assert job["state"] in ("queued", "running", "done") and job["params"]["seed"] == 5
    assert job["params"]["music"] == {"kind": "clip", "clip_id": base["clip"], "clip_key": "demo/long_00#0"}
    done = wait_state(client, job["id"], ("done", "failed"))
    assert done["state"] == "done", done
    assert done["progress"] == 1.0 and done["error"] is None and done["finished_at"] >= done["started_at"]
    res = done["result"]
    assert res["genre"] == "waltz" and res["genre_source"] == "request" and res["seconds"] == 6.0
    assert [c["candidate"] for c in res["clips"]] == [0, 1] and [c["seed"] for c in res["clips"]] == [5, 6]
    c0 = res["clips"][0]
    clip = client.get(f"/v1/clips/{c0['id']}").json()
    assert clip["source"] == "generated" and clip["key"] == f"generated/{job['id']}#0" and clip["split"] == "gen"
    assert clip["captions"] == ["a slow waltz"] and clip["genre"] == "waltz" and clip["duration_s"] == 6.0
    assert clip["media"] == c0["media"] and clip["media"]["audio"] == f"/v1/clips/{c0['id']}/audio"
    npz = client.get(f"/v1/clips/{c0['id']}/motion", params={"format": "npz"})
    assert npz.status_code == 200
    path = base["root"] / "got.npz"
    path.write_bytes(npz.content)
    rec = MotionRecord.load(path)
    assert rec.num_frames == 180 and rec.rotations_6d is not None
    js = client.get(f"/v1/clips/{c0['id']}/motion").json()
    assert len(js["positions"]) == 180
    assert parse_bvh(client.get(f"/v1/clips/{c0['id']}/motion", params={"format": "bvh"}).text).num_frames == 180
    audio = client.get(f"/v1/clips/{c0['id']}/audio")
    assert audio.status_code == 200 and audio.headers["content-type"] == "audio/ogg"
    y, sr = sf.read(io.BytesIO(audio.content))
    assert abs(len(y) / sr - 6.0) < 0.05
    prov = client.get(f"/v1/clips/{c0['id']}/provenance").json()
    assert prov["job_id"] == job["id"] and prov["model_id"].startswith("gcdance-")
    assert prov["data"]["seed"] == 5 and prov["data"]["parameters"]["steps"] == 3
    assert prov["data"]["music"]["clip_id"] == base["clip"]
    assert prov["data"]["segments"] == [{"start_frame": 0, "end_frame": 180, "origin": "generated",
                                         "method": "diffusion", "clip_id": None}]
    # the two candidates differ (seed + i), files laid out like ingested clips
    media = base["home"] / "media" / "generated" / job["id"]
    assert sorted(p.name for p in media.iterdir()) == ["0.motion.npz", "0.music.npy", "0.ogg", "1.motion.npz",
                                                       "1.music.npy", "1.ogg"]
    a, b = (MotionRecord.load(media / f"{i}.motion.npz") for i in (0, 1))
    assert not np.allclose(a.positions, b.positions)
    err(client.get(f"/v1/clips/{base['clip']}/provenance"), 404, "not_found")


def test_text_only_takes_the_genre_from_the_text(served, base):
    client, _ = served
    job = client.post("/v1/generate", json={"clip_id": base["clip"], "text": "a slow waltz",
                                            "seconds": 4, "steps": 2}).json()   # a dance text (the gate passes it)
    done = wait_state(client, job["id"], ("done", "failed"))
    assert done["state"] == "done", done
    assert done["result"]["genre"] == "waltz" and done["result"]["genre_source"] == "text"
    assert done["result"]["genre_confidence"] == 0.75


@pytest.mark.slow   # the first music analysis of a process compiles librosa's numba code (~15 s)
def test_uploaded_music_is_generated_from_and_served(served, base):
    client, _ = served
    files = {"audio": ("song.wav", wav_bytes(clicks(5.0)), "audio/wav")}
    r = client.post("/v1/generate", data={"genre": "popping", "steps": "2", "seed": "1"}, files=files)
    assert r.status_code == 202, r.text
    job = r.json()
    assert job["params"]["music"]["kind"] == "upload" and job["params"]["music"]["filename"] == "song.wav"
    assert job["params"]["seconds"] == 5.0 and "_upload_path" not in job["params"]
    done = wait_state(client, job["id"], ("done", "failed"), timeout=90)
    assert done["state"] == "done", done
    cid = done["result"]["clips"][0]["id"]
    audio = client.get(f"/v1/clips/{cid}/audio")
    assert audio.status_code == 200 and abs(sf.info(io.BytesIO(audio.content)).duration - 5.0) < 0.05
    assert client.get(f"/v1/clips/{cid}/provenance").json()["data"]["music"]["kind"] == "upload"
    assert not (base["home"] / "uploads" / job["id"]).exists()           # the upload is gone once the job ended


# --- uploads refused -----------------------------------------------------------------------------------
def test_uploads_are_refused_for_size_type_and_corruption(served, base):
    client, _ = served
    ok = wav_bytes(clicks(5.0))

    def post(data: bytes, ctype: str = "audio/wav", name: str = "a.wav", **form: str) -> httpx.Response:
        return client.post("/v1/generate", data={"genre": "waltz", **form}, files={"audio": (name, data, ctype)})

    body = err(post(b"\0" * (600 * 1024)), 413, "body_too_large", "body")
    assert "DANCESEARCH_MAX_UPLOAD_BYTES" in body["message"]
    assert "text/plain" in err(post(ok, "text/plain", "a.txt"), 415, "unsupported_media_type", "audio")["message"]
    err(client.post("/v1/generate", content=b"genre=waltz", headers={"content-type": "text/plain"}), 415,
        "unsupported_media_type", "body")
    assert "not readable audio" in err(post(b"RIFF" + b"junk" * 500), 422, "invalid_audio", "audio")["message"]
    err(post(b""), 422, "invalid_audio", "audio")
    err(post(wav_bytes(np.zeros(5 * SR, np.float32))), 422, "silent_audio", "audio")
    assert "at least 4 s" in err(post(wav_bytes(clicks(2.0))), 422, "audio_too_short", "audio")["message"]
    err(post(ok, seconds="9"), 422, "invalid_parameter", "seconds")
    err(post(ok, colour="red"), 422, "invalid_parameter", "colour")
    err(client.post("/v1/generate", data={"genre": "waltz"}, files={"music": ("a.wav", ok, "audio/wav")}), 422,
        "invalid_parameter", "music")
    err(client.post("/v1/generate", content=b"--x\r\nnonsense", headers={"content-type": "multipart/form-data"}),
        400, "malformed_multipart", "body")
    incoming = base["home"] / "uploads" / ".incoming"
    assert not incoming.exists() or not any(incoming.iterdir())          # nothing left behind


def test_requests_are_checked_before_queueing(served, base):
    client, _ = served
    clip = base["clip"]
    err(client.post("/v1/generate", json={"clip_id": clip}), 422, "invalid_parameter", "genre")
    assert "popping, waltz" in err(client.post("/v1/generate", json={"clip_id": clip, "genre": "tap"}), 422,
                                   "invalid_parameter", "genre")["message"]
    err(client.post("/v1/generate", json={"genre": "waltz"}), 422, "invalid_parameter", "clip_id")
    err(client.post("/v1/generate", json={"clip_id": 999999, "genre": "waltz"}), 404, "not_found")
    err(client.post("/v1/generate", json={"clip_id": clip, "genre": "waltz", "candidates": 5}), 422,
        "invalid_parameter", "candidates")
    err(client.post("/v1/generate", json={"clip_id": clip, "genre": "waltz", "seconds": 13}), 422,
        "invalid_parameter", "seconds")
    err(client.post("/v1/generate", json={"clip_id": clip, "genre": "waltz", "steps": 0}), 422,
        "invalid_parameter", "steps")
    err(client.post("/v1/generate", json={"clip_id": base["short_clip"], "genre": "waltz"}), 422, "audio_too_short")
    err(client.post("/v1/generate", json={"clip_id": clip, "genre": "waltz", "text": "  "}), 422,
        "invalid_parameter", "text")
    err(client.post("/v1/generate", content=b"{nope", headers={"content-type": "application/json"}), 400,
        "malformed_json", "body")
    err(client.get("/v1/jobs/0123456789abcdef0123456789abcdef"), 404, "not_found", "job_id")
    err(client.get("/v1/jobs/nope"), 422, "invalid_parameter")


# --- lifecycle -----------------------------------------------------------------------------------------
def test_running_queued_cancelled_and_a_full_queue(served, base):
    client, gate = served
    body = {"clip_id": base["clip"], "genre": "waltz", "seconds": 4, "steps": 2}
    gate.release.clear()
    gate.entered.clear()
    gate.hold.set()
    try:
        a = client.post("/v1/generate", json=body).json()
        assert gate.entered.wait(10)
        running = wait_for(lambda: (j := client.get(f"/v1/jobs/{a['id']}").json())["progress"] > 0.1 and j)
        assert running["state"] == "running" and running["stage"].startswith("candidate 1/1")
        b = client.post("/v1/generate", json=body).json()
        c = client.post("/v1/generate", json=body).json()
        assert client.get(f"/v1/jobs/{b['id']}").json()["state"] == "queued"
        full = client.post("/v1/generate", json=body)                   # 1 worker + queue limit 2
        err(full, 429, "queue_full")
        assert int(full.headers["retry-after"]) >= 1
        r = client.delete(f"/v1/jobs/{b['id']}")                       # queued: cancelled at once
        assert r.status_code == 200 and r.json()["state"] == "cancelled"
        files = {"audio": ("song.wav", wav_bytes(clicks(5.0)), "audio/wav")}   # an upload waits in the workspace
        u = client.post("/v1/generate", data={"genre": "waltz", "steps": "2"}, files=files).json()
        assert u["state"] == "queued" and (base["home"] / "uploads" / u["id"] / "music.wav").is_file()
        assert client.delete(f"/v1/jobs/{u['id']}").json()["state"] == "cancelled"
        assert not (base["home"] / "uploads" / u["id"]).exists()
        r = client.delete(f"/v1/jobs/{a['id']}")                       # running: at its next step
        assert r.status_code == 202 and r.json()["cancel_requested"] is True
        assert wait_state(client, a["id"], ("cancelled", "done", "failed"))["state"] == "cancelled"
        assert client.delete(f"/v1/jobs/{a['id']}").status_code == 200   # cancelling again: the same job
    finally:
        gate.hold.clear()
        gate.release.set()
    done = wait_state(client, c["id"], ("done", "failed"))
    assert done["state"] == "done", done
    err(client.delete(f"/v1/jobs/{c['id']}"), 409, "job_finished", "job_id")
    assert client.get(f"/v1/jobs/{b['id']}").json()["state"] == "cancelled"
    assert not (base["home"] / "media" / "generated" / a["id"]).exists()


def test_a_failing_job_fails_alone(served, base):
    client, _ = served
    body = {"clip_id": base["clip"], "genre": "waltz", "seconds": 4, "steps": 2}
    boom = client.post("/v1/generate", json={**body, "seed": 666}).json()
    bad = client.post("/v1/generate", json={**body, "seed": 667}).json()
    fine = client.post("/v1/generate", json=body).json()
    failed = wait_state(client, boom["id"], ("done", "failed"))
    assert failed["state"] == "failed" and failed["error"]["code"] == "internal_error"
    assert "RuntimeError: boom" in failed["error"]["message"] and failed["result"] is None
    invalid = wait_state(client, bad["id"], ("done", "failed"))
    assert invalid["error"] == {"code": "invalid_input", "message": "this music cannot be danced"}
    assert wait_state(client, fine["id"], ("done", "failed"))["state"] == "done"
    assert client.get("/healthz").json()["status"] == "ok"
    assert not (base["home"] / "media" / "generated" / boom["id"]).exists()


def test_restart_marks_running_jobs_interrupted_and_runs_queued_ones(tmp_path, base):
    home = tmp_path / "home"
    ws = make_workspace(home, clips_per_genre=1, with_audio=False)
    clip = add_long_clip(ws, audio=False)
    build_index(ws, WordEmbedder())
    body = {"clip_id": clip, "genre": "waltz", "seconds": 4, "steps": 2}
    srv, gate = make_server(home, base["run"])
    gate.hold.set()
    with srv, httpx.Client(base_url=srv.url, timeout=30) as client:
        a = client.post("/v1/generate", json=body).json()
        assert gate.entered.wait(10)
        b = client.post("/v1/generate", json=body).json()
    # graceful stop: the running job is interrupted (failed), the queued one stays queued
    cat = Catalog(f"sqlite:///{home / 'catalog.sqlite'}")
    assert cat.job(a["id"])["state"] == "failed" and cat.job(a["id"])["error"]["code"] == "interrupted"
    assert cat.job(b["id"])["state"] == "queued"
    # a crash: a job left `running` in the database
    cat.add_job("f" * 32, {**body, "music": {"kind": "clip", "clip_id": clip}, "candidates": 1, "seed": 0,
                           "guidance": 2.0, "text": None}, time.time())
    cat.update_job("f" * 32, state="running", started_at=time.time())
    cat.close()
    srv2, _ = make_server(home, base["run"])
    with srv2, httpx.Client(base_url=srv2.url, timeout=30) as client:
        crashed = client.get(f"/v1/jobs/{'f' * 32}").json()
        assert crashed["state"] == "failed" and crashed["error"]["code"] == "interrupted"
        assert "submit the request again" in crashed["error"]["message"]
        assert wait_state(client, b["id"], ("done", "failed"))["state"] == "done"
        assert client.get(f"/v1/jobs/{a['id']}").json()["state"] == "failed"


def test_an_existing_catalog_without_the_new_tables_keeps_opening(tmp_path, base):
    home = tmp_path / "home"
    ws = make_workspace(home, clips_per_genre=1, with_audio=False)
    clip = add_long_clip(ws, audio=False)
    build_index(ws, WordEmbedder())
    con = sqlite3.connect(home / "catalog.sqlite")
    con.execute("DROP TABLE generation_jobs")
    con.execute("DROP TABLE clip_provenance")
    con.commit()
    con.close()
    assert Catalog(f"sqlite:///{home / 'catalog.sqlite'}", create=False).provenance(clip) is None
    srv, _ = make_server(home, base["run"])
    with srv, httpx.Client(base_url=srv.url, timeout=30) as client:
        assert client.get(f"/v1/clips/{clip}").status_code == 200
        job = client.post("/v1/generate", json={"clip_id": clip, "genre": "waltz", "seconds": 4, "steps": 2}).json()
        done = wait_state(client, job["id"], ("done", "failed"))
        assert done["state"] == "done" and done["result"]["clips"][0]["media"]["audio"] is None


# --- API key -------------------------------------------------------------------------------------------
def test_write_routes_need_the_api_key_when_one_is_configured(tmp_path, base):
    srv, _ = make_server(base["home"], base["run"], api_key=SecretStr(KEY))
    body = {"clip_id": base["clip"], "genre": "waltz", "seconds": 4, "steps": 2}
    with srv, httpx.Client(base_url=srv.url, timeout=30) as client:
        r = client.post("/v1/generate", json=body)
        err(r, 401, "unauthorized", "x-api-key")
        assert r.headers["www-authenticate"] == "Bearer"
        err(client.post("/v1/generate", json=body, headers={"X-API-Key": "wrong"}), 401, "unauthorized")
        err(client.post("/v1/generate", json=body, headers={"Authorization": "Bearer wrong"}), 401, "unauthorized")
        files = {"audio": ("a.wav", wav_bytes(clicks(5.0)), "audio/wav")}
        err(client.post("/v1/generate", data={"genre": "waltz"}, files=files), 401, "unauthorized")
        job = client.post("/v1/generate", json=body, headers={"X-API-Key": KEY})
        assert job.status_code == 202
        jid = job.json()["id"]
        assert client.get(f"/v1/jobs/{jid}").status_code == 200                  # reading needs no key
        err(client.delete(f"/v1/jobs/{jid}"), 401, "unauthorized")
        job2 = client.post("/v1/generate", json=body, headers={"Authorization": f"Bearer {KEY}"})
        assert job2.status_code == 202
        assert client.delete(f"/v1/jobs/{job2.json()['id']}", headers={"X-API-Key": KEY}).status_code in (200, 202, 409)
        err(client.post("/v1/admin/reload", headers={"Authorization": "Bearer wrong"}), 401, "unauthorized")
        assert client.post("/v1/admin/reload", headers={"Authorization": f"Bearer {KEY}"}).status_code == 200
        wait_state(client, jid, ("done", "failed", "cancelled"))
        schema = client.get("/openapi.json").json()
        assert {"ApiKey", "Bearer"} <= set(schema["components"]["securitySchemes"])
        assert schema["paths"]["/v1/generate"]["post"]["security"]
        assert "multipart/form-data" in schema["paths"]["/v1/generate"]["post"]["requestBody"]["content"]


def test_serve_refuses_a_public_bind_without_a_key(tmp_path, capsys, monkeypatch):
    from ui.cli import main

    monkeypatch.delenv("DANCESEARCH_API_KEY", raising=False)
    assert main(["serve", "--host", "0.0.0.0", "--port", "0", "--home", str(tmp_path)]) == 2
    err_text = capsys.readouterr().err
    assert "DANCESEARCH_API_KEY" in err_text and "--allow-no-key" in err_text and "Traceback" not in err_text
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.168.1.4") and not is_loopback("example.com")


def test_the_diffusion_backend_reports_each_step_and_stops_when_cancelled(base):
    backend = DiffusionBackend(base["run"])
    music = np.random.default_rng(0).normal(size=(60, 35)).astype(np.float32)
    seen: list[tuple[float, str]] = []
    out = backend(GenerationRequest(music, "waltz", None, seed=1, steps=4), lambda f, s: seen.append((f, s)),
                  lambda: False)
    assert out.record.num_frames == 60 and out.model_id.startswith("gcdance-") and out.genre == "waltz"
    assert [f for f, _ in seen] == [0.25, 0.5, 0.75, 1.0] and seen[-1][1] == "denoising step 4/4"
    assert out.provenance["segments"][0]["end_frame"] == 60
    steps = []
    with pytest.raises(JobCancelled):
        backend(GenerationRequest(music, "waltz", None, seed=1, steps=4), lambda f, s: steps.append(f),
                lambda: len(steps) >= 2)
    assert steps == [0.25, 0.5]
    again = backend(GenerationRequest(music, "waltz", None, seed=1, steps=4), lambda f, s: None, lambda: False)
    np.testing.assert_allclose(again.record.positions, out.record.positions)   # the hook left nothing behind


# --- search <-> generation (issue 15) --------------------------------------------------------------------
def test_generated_clips_are_left_out_of_searches_unless_asked_for(tmp_path):
    """A generated clip (inserted like a job stores one, then indexed) is excluded by default and returned with
    include_generated, on GET (query parameter) and POST (body field)."""
    import shutil

    from indexer.catalog import GENERATED_SOURCE, GENERATED_SPLIT

    home = tmp_path / "home"
    ws = make_workspace(home, clips_per_genre=1)
    cat = ws.catalog()
    try:
        src = cat.clips()[0]
        d = ws.sequence_media_dir(GENERATED_SOURCE, "job0")
        d.mkdir(parents=True)
        shutil.copy(ws.resolve(src.motion_path), d / "0.motion.npz")
        shutil.copy(ws.resolve(src.music_path), d / "0.music.npy")
        [gid] = cat.add_generated(
            SequenceRow(GENERATED_SOURCE, "job0", None, src.genre, None, 30.0, src.end_frame - src.start_frame,
                        src.bpm, False, GENERATED_SPLIT, {}),
            [ClipRow(0, 0, src.end_frame - src.start_frame, src.duration_s, ws.relative(d / "0.motion.npz"),
                     ws.relative(d / "0.music.npy"), None, {"generated": True}, [(src.caption_texts[0], "request")])],
            [{"model_id": "test", "segments": []}], job_id="job0")
        query = src.caption_texts[0]
    finally:
        cat.close()
    build_index(ws, WordEmbedder())
    engine = SearchEngine.open(_ws(home), WordEmbedder())
    app = create_app(ApiSettings(home=home, reload_check_s=0), engine=engine, loader=lambda: engine,
                     generator=Gate(DiffusionBackend(tmp_path / "none")), genre_fn=lambda text: ("waltz", 0.75))
    with ServerThread(app) as srv, httpx.Client(base_url=srv.url, timeout=30) as client:
        def ids(resp: httpx.Response) -> list[int]:
            assert resp.status_code == 200, resp.text
            return [r["id"] for r in resp.json()["results"]]
        assert gid not in ids(client.get("/v1/search", params={"q": query, "k": 100}))
        assert gid not in ids(client.post("/v1/search", json={"q": query, "k": 100}))
        assert gid in ids(client.get("/v1/search", params={"q": query, "k": 100, "include_generated": "true"}))
        assert gid in ids(client.post("/v1/search", json={"q": query, "k": 100, "include_generated": True}))
        assert client.post("/v1/search", json={"q": query, "include_generated": "maybe"}).status_code == 422


NOT_DANCE = "recipe for chocolate cake"


def test_generation_declines_text_that_is_not_about_dance(base):
    """Declined when the gate's not_dance probability reaches DANCESEARCH_GENERATE_NOT_DANCE_THRESHOLD (set here
    just under what the test index's gate gives the text: a gate fitted on this tiny catalog is not as sure as
    the 0.9 default asks)."""
    [decision] = SearchEngine.open(_ws(base["home"]), WordEmbedder()).classify([NOT_DANCE])
    p = float(decision.scores["not_dance"])
    assert decision.outcome == "not_dance", decision
    srv, _ = make_server(base["home"], base["run"], generate_not_dance_threshold=max(0.0, round(p - 0.05, 2)))
    cat = Catalog(f"sqlite:///{base['home'] / 'catalog.sqlite'}")
    try:
        with srv, httpx.Client(base_url=srv.url, timeout=30) as client:
            before = cat.count_jobs(["queued", "running", "done", "failed", "cancelled"])
            r = client.post("/v1/generate", json={"clip_id": base["clip"], "text": NOT_DANCE, "seconds": 4,
                                                  "steps": 2})
            body = err(r, 422, "not_a_dance_query", "text")
            assert "chocolate cake" in body["message"] and "genre" in body["message"]
            assert f"{p:.0%}" in body["message"]
            files = {"audio": ("song.wav", wav_bytes(clicks(5.0)), "audio/wav")}
            r = client.post("/v1/generate", data={"text": NOT_DANCE}, files=files)
            err(r, 422, "not_a_dance_query", "text")
            assert cat.count_jobs(["queued", "running", "done", "failed", "cancelled"]) == before   # nothing queued
            assert not list((base["home"] / "uploads" / ".incoming").glob("*"))                   # upload discarded
            # an explicit genre says what to dance: the text is then only the caption
            r = client.post("/v1/generate", json={"clip_id": base["clip"], "text": NOT_DANCE, "genre": "waltz",
                                                  "seconds": 4, "steps": 2})
            assert r.status_code == 202, r.text
            assert wait_state(client, r.json()["id"], ("done", "failed"))["state"] == "done"
    finally:
        cat.close()


def test_the_not_a_dance_check_declines_only_when_the_gate_is_sure_and_survives_a_gate_error(base, monkeypatch):
    """The gate misreads some dance texts with middling probabilities ("a ballerina doing pirouettes": not_dance
    0.64 on the demo index): under the 0.9 default such a text goes through; a gate that fails skips the check
    (no 500). The served engine's classify is replaced by one that answers given probabilities."""
    from indexer.index.query_gate import GateDecision

    answer: dict[str, Any] = {}

    def classify(texts: list[str]) -> Any:
        if "error" in answer:
            raise answer["error"]
        p = answer["not_dance"]
        return [GateDecision("not_dance", "not dance", {"match": round(1 - p, 4), "gap": 0.0, "not_dance": p})]

    srv, _ = make_server(base["home"], base["run"])     # the default threshold, 0.9
    body = {"clip_id": base["clip"], "text": "a ballerina doing pirouettes", "seconds": 4, "steps": 2}
    with srv, httpx.Client(base_url=srv.url, timeout=30) as client:
        monkeypatch.setattr(srv.server.config.app.state.service.engine, "classify", classify)
        answer["not_dance"] = 0.95
        err(client.post("/v1/generate", json=body), 422, "not_a_dance_query", "text")
        answer["not_dance"] = 0.6352
        r = client.post("/v1/generate", json=body)
        assert r.status_code == 202, r.text
        assert wait_state(client, r.json()["id"], ("done", "failed"))["state"] == "done"
        answer["error"] = RuntimeError("gate vectors are missing")
        r = client.post("/v1/generate", json=body)
        assert r.status_code == 202, r.text
        assert wait_state(client, r.json()["id"], ("done", "failed"))["state"] == "done"


def _tiny_gs(n_mels: int = 8) -> Any:
    from generation.genre_match import GenreMatcher, GSModelConfig, GSScorer, MelConfig

    torch.manual_seed(0)
    cfg = GSModelConfig(embed_dim=16, n_mels=n_mels, music_channels=(4,), dance_channels=(8,), dance_strides=(1,))
    return GSScorer(GenreMatcher(cfg).eval(), MelConfig(n_mels=n_mels))


def test_gcrm_jobs_store_segment_provenance_and_their_timing(tmp_path, base):
    """The GCRM back-end through the job runner: dances stitched from batched diffusion candidates, per-segment
    provenance (origin, seed), the job's timing parts, progress, and cancellation through GCRM's hooks."""
    from search_api.jobs import GCRMBackend

    backend = GCRMBackend(DiffusionBackend(base["run"]), tmp_path / "gs", None, diffusion_candidates=3,
                          catalog_candidates=0)
    backend._scorer = _tiny_gs()                    # a GS network without training (models/gs is 64 mels)
    srv, _ = make_server(base["home"], base["run"], gate=backend)  # type: ignore[arg-type]
    with srv, httpx.Client(base_url=srv.url, timeout=30) as client:
        r = client.post("/v1/generate", json={"clip_id": base["clip"], "text": "a slow waltz", "genre": "waltz",
                                              "seconds": 4, "seed": 4, "candidates": 2, "steps": 3})
        assert r.status_code == 202, r.text
        done = wait_state(client, r.json()["id"], ("done", "failed"))
        assert done["state"] == "done", done
        res = done["result"]
        assert res["backend"] == "gcrm" and len(res["clips"]) == 2
        t = res["timing"]
        for key in ("queue_s", "music_s", "generate_s", "candidates_s", "diffusion_s", "scoring_s", "stitch_s",
                    "store_s", "total_s"):
            assert t[key] >= 0.0, (key, t)
        provs = [client.get(c["provenance"]).json()["data"] for c in res["clips"]]
        for prov in provs:
            assert prov["backend"] == "gcrm" and prov["gcrm"]["diffusion_candidates"] == 3
            segs = prov["segments"]
            assert [s["start_frame"] for s in segs] == list(range(0, 120, 16)) and segs[-1]["end_frame"] == 120
            assert all(s["origin"] == "diffusion" and s["method"] == "gcrm" and s["seed"] in (4, 5, 6) for s in segs)
        assert provs[0]["segments"][0]["seed"] != provs[1]["segments"][0]["seed"]   # distinct first choices
    music = np.random.default_rng(0).normal(size=(40, 35)).astype(np.float32)
    audio = (clicks(2.0, 16000), 16000)
    seen: list[float] = []
    with pytest.raises(JobCancelled):
        backend(GenerationRequest(music, "waltz", None, seed=1, steps=4, audio=audio),
                lambda f, s: seen.append(f), lambda: len(seen) >= 3)
    assert len(seen) == 3 and seen == sorted(seen)
    no_audio = backend(GenerationRequest(music, "waltz", None, seed=1, steps=2), lambda f, s: None, lambda: False)
    assert no_audio.provenance["backend"] == "diffusion" and "no audio" in no_audio.provenance["note"]


def test_gcrm_backend_records_catalog_windows_in_the_provenance(tmp_path, base, demo_workspace):
    from generation.metrics.catalog_source import window_store
    from generation.stitching import CatalogCandidates
    from search_api.jobs import GCRMBackend

    scorer = _tiny_gs()
    store = window_store(demo_workspace.home).with_windows(16, 16)
    backend = GCRMBackend(DiffusionBackend(base["run"]), tmp_path / "gs", demo_workspace, diffusion_candidates=0,
                          catalog_candidates=2)
    backend._scorer = scorer
    backend._catalog = CatalogCandidates(store, scorer, "train", cache_dir=tmp_path / "cache")
    music = np.random.default_rng(1).normal(size=(40, 35)).astype(np.float32)
    [out] = backend.generate_many(GenerationRequest(music, "waltz", "a waltz", seed=0, steps=2,
                                                    audio=(clicks(2.0, 16000), 16000)), 1, lambda f, s: None,
                                  lambda: False)
    train = {c["id"]: c["key"] for c in store.clips("train")}
    assert out.record.num_frames == 40
    for s in out.provenance["segments"]:
        assert s["origin"] == "catalog" and s["seed"] is None and train[s["clip_id"]] == s["clip_key"]
        assert s["window_end_s"] == pytest.approx(s["window_start_s"] + 16 / 30, abs=1e-3)


def test_gcrm_jobs_say_when_they_make_fewer_dances_and_record_reproducible_seeds(tmp_path, base):
    """GCRM makes one dance per distinct first-segment candidate, all from one seed's candidate pool: a request
    for more dances than the pool allows says so (notes, candidates_made), and each clip records the request's
    seed and its first choice's rank (not seed + i)."""
    from search_api.jobs import GCRMBackend

    backend = GCRMBackend(DiffusionBackend(base["run"]), tmp_path / "gs", None, diffusion_candidates=2,
                          catalog_candidates=0)
    backend._scorer = _tiny_gs()
    srv, _ = make_server(base["home"], base["run"], gate=backend)  # type: ignore[arg-type]
    with srv, httpx.Client(base_url=srv.url, timeout=30) as client:
        r = client.post("/v1/generate", json={"clip_id": base["clip"], "genre": "waltz", "seconds": 4, "seed": 9,
                                              "candidates": 3, "steps": 2})
        assert r.status_code == 202, r.text
        done = wait_state(client, r.json()["id"], ("done", "failed"))
        assert done["state"] == "done", done
        res = done["result"]
        assert done["params"]["candidates"] == 3
        assert res["candidates_requested"] == 3 and res["candidates_made"] == 2 and len(res["clips"]) == 2
        assert any("3 dances were asked for" in n and "2 made" in n for n in res["notes"]), res["notes"]
        assert [c["seed"] for c in res["clips"]] == [9, 9] and [c["first_rank"] for c in res["clips"]] == [0, 1]
        provs = [client.get(c["provenance"]).json()["data"] for c in res["clips"]]
        assert [(p["seed"], p["first_rank"]) for p in provs] == [(9, 0), (9, 1)]
        assert [p["gcrm"]["first_rank"] for p in provs] == [0, 1]
        assert any("2 made" in n for n in provs[0]["notes"])


def _lifecycle_workspace(home: Path) -> tuple[Any, int]:
    ws = make_workspace(home, clips_per_genre=1, with_audio=False)
    return ws, add_long_clip(ws, audio=False)


def _job_params(clip: int, seed: int = 0) -> dict[str, Any]:
    return {"music": {"kind": "clip", "clip_id": clip}, "genre": "waltz", "text": None, "seconds": 4, "seed": seed,
            "candidates": 1, "steps": 2, "guidance": 2.0}


def test_a_restarted_job_manager_has_workers_and_runs_the_queued_jobs(tmp_path, base):
    """stop() with workers holding jobs used to leave stop markers in the queue; the next start()'s workers read
    them and exited, so queued jobs never ran."""
    from search_api.jobs import JobManager

    ws, clip = _lifecycle_workspace(tmp_path / "home")
    gate = Gate(DiffusionBackend(base["run"]))
    gate.hold.set()
    m = JobManager(ws, gate, lambda text: ("waltz", 1.0), workers=2, queue_limit=8)
    m.start()
    try:
        jobs = [m.submit(_job_params(clip, i)) for i in range(4)]
        wait_for(lambda: [m.job(j["id"])["state"] for j in jobs].count("running") == 2)
        m.stop(10)
        states = [m.job(j["id"])["state"] for j in jobs]
        assert sorted(states) == ["failed", "failed", "queued", "queued"], states
        gate.hold.clear()
        gate.release.set()
        m.start()
        assert sum(t.is_alive() for t in m._threads) == 2
        queued = [j["id"] for j, s in zip(jobs, states) if s == "queued"]
        wait_for(lambda: all(m.job(j)["state"] == "done" for j in queued), timeout=20)
        later = m.submit(_job_params(clip, 9))                   # and new jobs run too
        assert wait_for(lambda: m.job(later["id"])["state"] in ("done", "failed"), timeout=20)
        assert m.job(later["id"])["state"] == "done"
    finally:
        gate.release.set()
        m.stop(10)


def test_recover_deletes_the_uploads_of_interrupted_and_ended_jobs(tmp_path):
    from indexer.workspace import Workspace
    from search_api.jobs import JobManager

    ws = Workspace(tmp_path / "home")
    ws.ensure()
    m = JobManager(ws, object(), lambda text: ("waltz", 1.0))  # type: ignore[arg-type]  # never started

    def upload(name: str) -> Path:
        path = tmp_path / f"{name}.wav"
        path.write_bytes(b"RIFF" + b"x" * 64)
        return path
    params = {"music": {"kind": "upload"}, "genre": "waltz", "seconds": 4, "seed": 0, "candidates": 1, "steps": 1,
              "guidance": 1.0}
    crashed, ended, waiting = (m.submit(params, upload(n)) for n in ("a", "b", "c"))
    m.catalog.update_job(crashed["id"], state="running", started_at=time.time())   # the process died under it
    m.catalog.update_job(ended["id"], state="done", finished_at=time.time())      # died before its clean-up
    for job in (crashed, ended, waiting):
        assert (m.job_upload_dir(job["id"]) / "music.wav").is_file()
    m.catalog.close()
    m2 = JobManager(ws, object(), lambda text: ("waltz", 1.0))  # type: ignore[arg-type]
    try:
        assert m2.recover() == {"interrupted": 1, "requeued": 1}
        assert m2.job(crashed["id"])["state"] == "failed"
        assert not m2.job_upload_dir(crashed["id"]).exists()
        assert not m2.job_upload_dir(ended["id"]).exists()
        assert (m2.job_upload_dir(waiting["id"]) / "music.wav").is_file()     # a queued job still needs its music
    finally:
        m2.catalog.close()


def test_cancelling_a_job_that_finishes_meanwhile_is_a_conflict(tmp_path):
    """cancel() read the job running, the job finished before the cancel landed: 409 (JobConflict), not the done
    job with a stale id left in the cancel set."""
    from indexer.workspace import Workspace
    from search_api.jobs import JobConflict, JobManager

    ws = Workspace(tmp_path / "home")
    ws.ensure()
    m = JobManager(ws, object(), lambda text: ("waltz", 1.0))  # type: ignore[arg-type]
    try:
        job = m.submit({"music": {"kind": "clip", "clip_id": 1}, "genre": "waltz", "seconds": 4, "seed": 0,
                        "candidates": 1, "steps": 1, "guidance": 1.0})
        m.catalog.update_job(job["id"], state="running", started_at=time.time())
        read = m.job

        def read_then_finish(job_id: str) -> dict[str, Any]:
            seen = read(job_id)                                  # cancel() sees it running ...
            m.catalog.update_job(job_id, state="done", finished_at=time.time())   # ... and the worker finishes
            m.job = read  # type: ignore[method-assign]
            return seen
        m.job = read_then_finish  # type: ignore[method-assign]
        with pytest.raises(JobConflict, match="already finished"):
            m.cancel(job["id"])
        assert m._cancel == set()
        after = m.job(job["id"])
        assert after["state"] == "done" and after["cancel_requested"] is False
    finally:
        m.catalog.close()


# --- a catalog the server cannot write ---------------------------------------------------------------------
@pytest.mark.parametrize("how", ["uri", "chmod"])
def test_a_read_only_catalog_serves_search_with_generation_off(tmp_path, base, how):
    """A catalog without the job tables that the server may not write (a `mode=ro` URL, a read-only file): the
    server starts, search works, the generation routes answer 503 generation_unavailable naming the reason. With
    the tables already there, a job that cannot be recorded is 503 too (not 500)."""
    import os

    home = tmp_path / "home"
    ws, clip = _lifecycle_workspace(home)
    build_index(ws, WordEmbedder())
    db = home / "catalog.sqlite"
    con = sqlite3.connect(db)
    con.execute("DROP TABLE generation_jobs")
    con.execute("DROP TABLE clip_provenance")
    con.commit()
    con.close()
    if how == "uri":
        url = f"sqlite:///file:{db}?mode=ro&uri=true"
    else:
        url = f"sqlite:///{db}"
        os.chmod(db, 0o444)
        if os.access(db, os.W_OK):
            os.chmod(db, 0o644)
            pytest.skip("chmod does not make the file read-only for this user (root)")
    from indexer.workspace import Workspace

    def serve() -> ServerThread:
        engine = SearchEngine.open(Workspace(home, url), WordEmbedder())
        app = create_app(ApiSettings(home=home, db=url, reload_check_s=0), engine=engine, loader=lambda: engine,
                         generator=Gate(DiffusionBackend(base["run"])), genre_fn=lambda text: ("waltz", 0.75))
        return ServerThread(app)

    body = {"clip_id": clip, "genre": "waltz", "seconds": 4, "steps": 2}
    try:
        with serve() as srv, httpx.Client(base_url=srv.url, timeout=30) as client:
            found = client.get("/v1/search", params={"q": "waltz"})
            assert found.status_code == 200 and found.json()["results"], found.text
            assert client.get(f"/v1/clips/{clip}").status_code == 200
            msg = err(client.post("/v1/generate", json=body), 503, "generation_unavailable")["message"]
            assert "generation is disabled" in msg and "readonly database" in msg and "sqlite:" not in msg
            files = {"audio": ("song.wav", wav_bytes(clicks(5.0)), "audio/wav")}
            err(client.post("/v1/generate", data={"genre": "waltz"}, files=files), 503, "generation_unavailable")
            err(client.get(f"/v1/jobs/{'a' * 32}"), 503, "generation_unavailable")
            err(client.delete(f"/v1/jobs/{'a' * 32}"), 503, "generation_unavailable")
            err(client.get(f"/v1/clips/{clip}/provenance"), 404, "not_found")   # not generated
        # the tables exist (made by a writer), the server still may not write: a job cannot be recorded
        if how == "chmod":
            os.chmod(db, 0o644)
        Catalog(f"sqlite:///{db}").close()
        if how == "chmod":
            os.chmod(db, 0o444)
        with serve() as srv, httpx.Client(base_url=srv.url, timeout=30) as client:
            msg = err(client.post("/v1/generate", json=body), 503, "generation_unavailable")["message"]
            assert "cannot record the job" in msg
            assert not any(p.name != ".incoming" for p in (home / "uploads").glob("*"))
    finally:
        os.chmod(db, 0o644)


def test_stop_waits_for_a_warm_up_still_loading_models(tmp_path):
    """A warm-up thread still inside torch / numba when the interpreter exits aborts the server ("terminate
    called without an active exception", seen when `demo --once` stopped the API during warm-up)."""
    from search_api.jobs import JobManager

    class SlowWarm:
        def __init__(self) -> None:
            self.started, self.finished = threading.Event(), threading.Event()

        def __call__(self, *args, **kwargs):          # never called: no job is submitted
            raise AssertionError("no job expected")

        def genres(self) -> list[str]:
            return ["waltz"]

        def warm(self) -> None:
            self.started.set()
            time.sleep(1.0)
            self.finished.set()

    ws, _ = _lifecycle_workspace(tmp_path / "home")
    backend = SlowWarm()
    m = JobManager(ws, backend, lambda text: ("waltz", 1.0), workers=1, queue_limit=2, warm_up=True)
    m.start()
    assert backend.started.wait(10)
    m.stop(10)
    assert backend.finished.is_set()
