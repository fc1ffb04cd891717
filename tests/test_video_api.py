"""``GET /v1/clips/{id}/video`` over HTTP against a real uvicorn server, and the UI's "Watch as video" control.

Real renders (moderngl on EGL, the ffmpeg of imageio-ffmpeg) of the fixture clips of
``search_support.make_workspace`` (45 frames, 1.5 s, some with a 0.1-s wav, some without audio) at 128 px;
the tests that render skip with the reason when the video extra or EGL is missing. The tests of errors and
of the 503 without a renderer run everywhere.
"""
from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from indexer.index.builder import build_index
from indexer.index.service import SearchEngine
from search_api import video as video_mod
from search_api.app import create_app
from search_api.settings import ApiSettings
from search_support import ServerThread, WordEmbedder, make_workspace

FRAMES, FPS = 45, 30.0    # every fixture clip


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    home = tmp_path_factory.mktemp("ws")
    ws = make_workspace(home, clips_per_genre=3)       # s = 0, 1 with audio; s = 2 without
    emb = WordEmbedder()
    with pytest.MonkeyPatch.context() as mp:   # no query gate: its text space costs seconds to load, videos need none
        mp.setattr("indexer.index.builder.missing_gate_data", lambda: ["(not needed by the video tests)"])
        build_index(ws, emb)
    app = create_app(ApiSettings(home=home), engine=SearchEngine.open(ws, emb))
    with ServerThread(app) as server, httpx.Client(base_url=server.url, timeout=60) as client:
        yield client, ws, app


@pytest.fixture(scope="module")
def renderer() -> str:
    ok, why = video_mod.video_available()
    if not ok:
        pytest.skip(f"video rendering unavailable here: {why}")
    return why


def clips(ws, audio: bool) -> list:
    cat = ws.catalog(create=False)
    try:
        rows = cat.clips()
    finally:
        cat.close()
    return [c for c in rows if bool(c.audio_path) == audio]


def err(resp: httpx.Response, status: int, field: str | None, code: str | None = None) -> dict:
    assert resp.status_code == status, resp.text
    body = resp.json()["error"]
    assert body["field"] == field and body["message"], body
    if code is not None:
        assert body["code"] == code, body
    return body


def probe(content: bytes, tmp_path: Path, name: str = "v.mp4"):
    from generation.video import probe_mp4

    path = tmp_path / name
    path.write_bytes(content)
    return probe_mp4(path)


def cached_files(ws) -> list[Path]:
    return sorted((ws.cache_dir / "video").glob("*.mp4"))


def test_views_agree_with_the_renderer():
    from generation.video.compose import VIEWS

    assert video_mod.VIDEO_VIEWS == VIEWS
    from ui.api_client import VIDEO_SIZES, VIDEO_VIEWS

    assert VIDEO_VIEWS == VIEWS and VIDEO_SIZES == tuple(int(s) for s in video_mod.VideoSize)


def test_render_once_then_served_from_the_cache(served, renderer, tmp_path):
    client, ws, app = served
    clip = clips(ws, audio=True)[0]
    before = app.state.videos.renders
    r = client.get(f"/v1/clips/{clip.id}/video", params={"view": "side-by-side", "size": 128})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "video/mp4" and r.headers["accept-ranges"] == "bytes"
    info = probe(r.content, tmp_path)
    assert info.video_codec == "h264" and info.frames == FRAMES and info.fps == FPS
    assert info.duration_s == pytest.approx(FRAMES / FPS, abs=0.05)
    assert (info.width, info.height) == (256, 128)                  # body | pose, 128 px each
    assert info.has_audio and info.audio_codec == "aac"             # the clip's music, padded to the video
    assert app.state.videos.renders == before + 1
    [cached] = [p for p in cached_files(ws) if p.name.startswith(f"{clip.id}-side-by-side-128-")]
    assert cached.read_bytes() == r.content
    mtime = cached.stat().st_mtime_ns

    again = client.get(f"/v1/clips/{clip.id}/video", params={"view": "side-by-side", "size": 128})
    assert again.status_code == 200 and again.content == r.content
    assert app.state.videos.renders == before + 1 and cached.stat().st_mtime_ns == mtime   # no re-render
    part = client.get(f"/v1/clips/{clip.id}/video", params={"view": "side-by-side", "size": 128},
                      headers={"Range": "bytes=0-99"})
    assert part.status_code == 206 and part.content == r.content[:100]
    assert part.headers["content-range"] == f"bytes 0-99/{len(r.content)}"


def test_clip_without_music_renders_a_silent_video(served, renderer, tmp_path):
    client, ws, _ = served
    clip = clips(ws, audio=False)[0]
    r = client.get(f"/v1/clips/{clip.id}/video", params={"view": "body", "size": 128})
    assert r.status_code == 200, r.text
    info = probe(r.content, tmp_path)
    assert info.frames == FRAMES and (info.width, info.height) == (128, 128) and not info.has_audio


def test_concurrent_requests_render_the_video_once(served, renderer):
    client, ws, app = served
    clip = clips(ws, audio=True)[1]
    before = app.state.videos.renders
    url = f"{client.base_url}/v1/clips/{clip.id}/video?view=pose&size=128"
    with ThreadPoolExecutor(4) as pool:
        answers = list(pool.map(lambda _: httpx.get(url, timeout=60), range(4)))
    assert [a.status_code for a in answers] == [200] * 4
    assert len({a.content for a in answers}) == 1
    assert app.state.videos.renders == before + 1
    assert len([p for p in cached_files(ws) if p.name.startswith(f"{clip.id}-pose-128-")]) == 1


def test_only_the_first_seconds_are_rendered(served, renderer, tmp_path, monkeypatch):
    client, ws, app = served
    monkeypatch.setattr(app.state.videos, "seconds", 1.0)    # the 30-s limit, scaled to the 1.5-s fixture clips
    clip = clips(ws, audio=True)[0]
    r = client.get(f"/v1/clips/{clip.id}/video", params={"view": "body", "size": 128})
    assert r.status_code == 200, r.text
    info = probe(r.content, tmp_path)
    assert info.frames == 30 and info.duration_s == pytest.approx(1.0, abs=0.05) and info.has_audio


@pytest.mark.parametrize("params,field", [
    ({"size": 100}, "size"), ({"size": "big"}, "size"), ({"size": 1024}, "size"),
    ({"view": "front"}, "view"), ({"view": ""}, "view"),
])
def test_bad_parameters_are_422_naming_the_field(served, params, field):
    client, ws, _ = served
    clip = clips(ws, audio=True)[0]
    err(client.get(f"/v1/clips/{clip.id}/video", params=params), 422, field, "invalid_parameter")


def test_unknown_clip_is_404_and_a_bad_id_422(served):
    client, _, _ = served
    err(client.get("/v1/clips/999999/video"), 404, "id", "not_found")
    err(client.get("/v1/clips/-1/video"), 422, "clip_id", "invalid_parameter")


def test_without_the_renderer_503_names_the_install(served, monkeypatch):
    client, ws, app = served
    calls = []

    def unavailable() -> tuple[bool, str]:
        calls.append(threading.current_thread().name)
        return False, "cannot create a headless OpenGL 3.3 context with the 'egl' backend: no EGL"

    monkeypatch.setattr(video_mod, "video_available", unavailable)
    clip = clips(ws, audio=False)[1]
    before = app.state.videos.renders
    body = err(client.get(f"/v1/clips/{clip.id}/video", params={"view": "grid", "size": 512}), 503, None,
               "video_unavailable")
    assert 'pip install -e ".[video]"' in body["message"] and "EGL" in body["message"]
    assert body["install"] == 'pip install -e ".[video]"'
    assert calls and all(name.startswith("dancesearch-video") for name in calls)   # checked on the render thread
    assert app.state.videos.renders == before
    assert not [p for p in cached_files(ws) if p.name.startswith(f"{clip.id}-grid-512-")]


def test_a_render_does_not_block_other_requests(served, monkeypatch):
    """The render runs on its own thread: the server answers other requests meanwhile."""
    client, ws, _ = served
    started, release = threading.Event(), threading.Event()

    def slow() -> tuple[bool, str]:
        started.set()
        release.wait(10)
        return False, "moderngl is not installed"

    monkeypatch.setattr(video_mod, "video_available", slow)
    clip = clips(ws, audio=True)[-1]
    with ThreadPoolExecutor(1) as pool:
        pending = pool.submit(httpx.get, f"{client.base_url}/v1/clips/{clip.id}/video?view=grid&size=128", timeout=30)
        try:
            assert started.wait(10)
            assert client.get("/healthz", timeout=2).status_code == 200
            assert client.get(f"/v1/clips/{clip.id}").status_code == 200
        finally:
            release.set()
        assert pending.result().status_code == 503


def test_a_full_render_queue_is_429_with_retry_after(served, monkeypatch):
    from ui.api_client import ApiClient, ApiRequestError
    from ui.video import video_problem

    client, ws, app = served
    monkeypatch.setattr(app.state.videos, "max_pending", 0)
    clip = clips(ws, audio=True)[-1]
    r = client.get(f"/v1/clips/{clip.id}/video", params={"view": "grid", "size": 256})
    err(r, 429, None, "too_many_renders")
    assert r.headers["retry-after"] == "5"
    with ApiClient(str(client.base_url)) as api, pytest.raises(ApiRequestError) as exc:
        api.video(clip.id, "grid", 256)
    assert video_problem(exc.value) == ("warning", "**The server is busy rendering other videos**: try again in a "
                                                   "few seconds.")


def test_a_broken_motion_file_is_503_media_unavailable(served):
    client, ws, _ = served
    clip = clips(ws, audio=False)[-1]
    path = ws.resolve(clip.motion_path)
    original = path.read_bytes()
    try:
        path.write_bytes(original[:100])
        body = err(client.get(f"/v1/clips/{clip.id}/video"), 503, "id", "media_unavailable")
        assert body["clip_id"] == clip.id and body["file"] == clip.motion_path
    finally:
        path.write_bytes(original)


def test_openapi_documents_the_route(served):
    client, _, _ = served
    spec = client.get("/openapi.json").json()
    op = spec["paths"]["/v1/clips/{clip_id}/video"]["get"]
    assert "MP4" in op["summary"] and "not a real dancer" in op["description"]
    assert {"200", "404", "422", "429", "503"} <= set(op["responses"])
    assert "video/mp4" in op["responses"]["200"]["content"]
    assert 'pip install -e \\".[video]\\"' in op["description"] or 'pip install -e ".[video]"' in op["description"]
    params = {p["name"]: p for p in op["parameters"]}
    assert set(params) == {"clip_id", "view", "size"}

    def enum(p: dict) -> list:
        schema = p["schema"]
        if "$ref" in schema:
            schema = spec["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
        return schema["enum"]

    assert enum(params["view"]) == list(video_mod.VIDEO_VIEWS) and enum(params["size"]) == [128, 256, 512]


# --- the UI ------------------------------------------------------------------------------------------
def test_ui_video_source_fetches_bytes_or_gives_the_public_url(served, renderer):
    from ui.api_client import ApiClient, ApiRequestError, video_path
    from ui.video import video_source

    client, ws, _ = served
    clip = clips(ws, audio=True)[0]
    with ApiClient(str(client.base_url)) as api:
        data = video_source(api, clip.id, None, size=128)
        assert isinstance(data, bytes) and data == client.get(video_path(clip.id, "side-by-side", 128)).content
        url = video_source(api, clip.id, "https://dance.example/api/", size=128)
        assert url == f"https://dance.example/api/v1/clips/{clip.id}/video?view=side-by-side&size=128"
        with pytest.raises(ApiRequestError) as exc:
            api.video(clip.id, size=100)
        assert exc.value.field == "size"


def test_ui_turns_a_503_into_the_install_hint(served, monkeypatch):
    from ui.api_client import ApiClient, ApiServerError
    from ui.video import show_video, video_problem

    monkeypatch.setattr(video_mod, "video_available", lambda: (False, "moderngl is not installed"))
    client, ws, _ = served
    clip = clips(ws, audio=False)[1]
    with ApiClient(str(client.base_url)) as api:
        with pytest.raises(ApiServerError) as exc:
            api.video(clip.id, "grid", 512)
    assert exc.value.status == 503 and exc.value.code == "video_unavailable"
    level, text = video_problem(exc.value)
    assert level == "info" and 'pip install -e ".[video]"' in text and "Traceback" not in text

    shown: list[tuple[str, str]] = []

    class Box:
        def __getattr__(self, name):
            return lambda *args, **kwargs: shown.append((name, args[0] if args else None))

    def fail() -> bytes:
        raise exc.value

    assert show_video(Box(), fail) is False and shown[0][0] == "info" and "pip install" in shown[0][1]
    shown.clear()
    assert show_video(Box(), lambda: b"\x00mp4") is True
    assert [name for name, _ in shown] == ["video", "caption"] and "not a real dancer" in shown[1][1]


def test_ui_watch_as_video_toggle_shows_the_video(served, renderer, monkeypatch):
    pytest.importorskip("streamlit")
    from ui_apptest_support import open_app, search

    client, _, _ = served
    at = search(open_app(monkeypatch, str(client.base_url)), "a fast salsa dance")
    toggles = [t for t in at.toggle if t.label == "Watch as video"]
    assert toggles, "every result card has the control"
    assert not at.get("video")
    toggles[0].set_value(True).run()
    assert not at.exception, at.exception
    videos = at.get("video")
    assert len(videos) == 1
    assert any("rendered body preview, not a real dancer" in c.value for c in at.caption)
