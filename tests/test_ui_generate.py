"""Generating from a gap (issue 15, section 4): the API client's generation methods against a real HTTP server
(tests/ui_testserver.py), the gap panel's pure helpers, and the Streamlit page driven by AppTest
(search -> gap panel -> Generate -> progress -> the generated dance; not-a-dance; failures; the API key)."""
from __future__ import annotations

import io
import time
from typing import Iterator

import httpx
import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

import ui_testserver  # tests/ is on sys.path (rootdir-relative test modules)
from ui_apptest_support import open_app as _app, search as _search
from ui.api_client import (ApiClient, ApiClientSettings, ApiRequestError, ApiServerError, ApiUnreachable,
                           GenerateRequest, Job, MusicSuggestion, Proposal, SearchRequest, SearchResponse)
from ui.generate_panel import (UPLOAD, api_error_text, genre_options, job_error_text, music_label, progress_text,
                               query_key)

GAP_QUERY = "a fiery flamenco with stamping heels"
NOT_DANCE_QUERY = "how do I bake sourdough bread"
KEY = "s3cret-key"


@pytest.fixture(scope="module")
def api() -> Iterator[ui_testserver.RunningApi]:
    yield from ui_testserver.serve(seconds=4.0, job_seconds=1.0)


@pytest.fixture(scope="module")
def slow_api() -> Iterator[ui_testserver.RunningApi]:
    """Jobs that take long enough to be cancelled from the page."""
    yield from ui_testserver.serve(seconds=4.0, job_seconds=60.0)


@pytest.fixture(scope="module")
def keyed_api() -> Iterator[ui_testserver.RunningApi]:
    yield from ui_testserver.serve(seconds=4.0, job_seconds=0.5, api_key=KEY)


def _wait_job(client: ApiClient, job_id: str, timeout_s: float = 15.0) -> Job:
    deadline = time.monotonic() + timeout_s
    seen = []
    while time.monotonic() < deadline:
        job = client.job(job_id)
        seen.append(job.state)
        if job.finished:
            return job
        time.sleep(0.1)
    raise AssertionError(f"job {job_id} did not finish: {seen[-5:]}")


def _ogg(seconds: float = 5.0) -> bytes:
    return ui_testserver.make_audio(seconds, 100.0)


# --- search outcomes ---------------------------------------------------------------------------------
def test_client_parses_search_outcomes(api: ui_testserver.RunningApi) -> None:
    with ApiClient(api.url) as client:
        gap = client.search(SearchRequest(q=GAP_QUERY))
        not_dance = client.search(SearchRequest(q=NOT_DANCE_QUERY))
        match = client.search(SearchRequest(q="slow lyrical waltz"))
    assert gap.outcome == "gap" and gap.no_match and "fits it well" in (gap.outcome_reason or "")
    assert gap.proposal is not None and gap.proposal.genre == ui_testserver.GAP_GENRE
    assert gap.proposal.confidence == pytest.approx(0.41) and gap.proposal.genre_source == "genre_text"
    first = gap.proposal.music[0]
    assert first.clip_id == 6 and first.genre == "jazz" and first.audio == "/v1/clips/6/audio" and first.bpm == 132
    assert not_dance.outcome == "not_dance" and not_dance.proposal is None and not_dance.no_match
    assert match.outcome == "match" and not match.no_match and match.outcome_scores["match"] == pytest.approx(0.8)
    assert SearchRequest(q="x", include_generated=True).to_params()[-1] == ("include_generated", "true")


def test_search_response_without_outcome_reads_as_match_and_bad_shapes_are_refused() -> None:
    legacy = SearchResponse.from_json({"results": [], "no_match": True})
    assert legacy.outcome == "match" and legacy.no_match and legacy.proposal is None
    with pytest.raises(ApiServerError, match="unknown outcome"):
        SearchResponse.from_json({"results": [], "outcome": "maybe"})
    with pytest.raises(ApiServerError, match="malformed proposal"):
        SearchResponse.from_json({"results": [], "outcome": "gap", "proposal": {"music": []}})
    with pytest.raises(ApiServerError, match="malformed job"):
        Job.from_json({"id": "x", "state": "exploded"})


# --- generation through the client -----------------------------------------------------------------------
def test_client_generates_from_a_catalog_clip_and_polls_to_done(api: ui_testserver.RunningApi) -> None:
    with ApiClient(api.url) as client:
        job = client.generate(GenerateRequest(text=GAP_QUERY, genre="jazz", clip_id=6, seconds=4))
        assert job.state == "queued" and not job.finished and job.progress == 0.0
        sent = api.generate_requests[-1]
        assert sent["content_type"] == "application/json"
        assert sent["fields"] == {"text": GAP_QUERY, "genre": "jazz", "clip_id": 6, "seconds": 4, "candidates": 1}
        states = set()
        deadline = time.monotonic() + 15
        while not job.finished and time.monotonic() < deadline:
            job = client.job(job.id)
            states.add(job.state)
            time.sleep(0.05)
        assert job.state == "done" and {"running", "done"} <= states and job.progress == 1.0
        assert job.result is not None and job.result.model_id == "test-generator" and job.result.genre == "jazz"
        gc = job.result.clips[0]
        clip = gc.as_clip()
        assert clip.id >= ui_testserver.GENERATED_ID_BASE and clip.split == "gen"
        assert clip.media["motion_bvh"] == f"/v1/clips/{gc.id}/motion?format=bvh" and "audio" in clip.media
        motion = client.motion_json(gc.id)              # served by the usual clip routes
        assert np.asarray(motion["positions"]).shape == (120, 52, 3)
        assert client.media(clip.media["audio"]).content == api.clips[5].audio   # danced to clip 6's music
        prov = client.provenance(gc.id)
        assert prov["job_id"] == job.id and prov["data"]["music"]["clip_id"] == 6
        # generated clips stay out of searches
        assert gc.id not in [r.id for r in client.search(SearchRequest(q=GAP_QUERY, k=50)).results]


def test_client_uploads_music_as_multipart(api: ui_testserver.RunningApi) -> None:
    with ApiClient(api.url) as client:
        job = client.generate_upload(GenerateRequest(text="my song", genre="house", seconds=5, seed=3,
                                                     clip_id=99), _ogg(), "song.ogg", "audio/ogg")
        sent = api.generate_requests[-1]
        assert sent["content_type"] == "multipart/form-data" and sent["upload"]["filename"] == "song.ogg"
        # form fields travel as strings; clip_id is never sent with an upload
        assert sent["fields"] == {"text": "my song", "genre": "house", "seconds": "5", "seed": "3", "candidates": "1"}
        job = _wait_job(client, job.id)
        assert job.state == "done" and job.result.clips[0].genre == "house" and job.result.clips[0].seed == 3
        audio = client.media(job.result.clips[0].media["audio"])
        assert audio.content_type == "audio/ogg"
        with pytest.raises(ApiRequestError) as err:
            client.generate_upload(GenerateRequest(genre="house"), b"not audio at all", "notes.txt", "text/plain")
        assert (err.value.status, err.value.code, err.value.field) == (415, "unsupported_media_type", "audio")


def test_client_generation_errors_are_typed(api: ui_testserver.RunningApi) -> None:
    with ApiClient(api.url) as client:
        with pytest.raises(ApiRequestError) as err:
            client.generate(GenerateRequest(text="x", genre="polka", clip_id=1))
        assert (err.value.status, err.value.field) == (422, "genre") and "polka" in err.value.message
        with pytest.raises(ApiRequestError) as err:
            client.generate(GenerateRequest(text="x", genre="jazz"))          # no music
        assert err.value.field == "clip_id"
        with pytest.raises(ApiRequestError) as err:
            client.job("0" * 32)
        assert (err.value.status, err.value.code) == (404, "not_found")
        with pytest.raises(ApiRequestError, match="not a job id"):
            client.job("../admin/reload")                                  # never put into a URL
        failed = _wait_job(client, client.generate(GenerateRequest(genre="jazz", clip_id=6,
                                                                   seed=ui_testserver.FAILING_SEED)).id)
        assert failed.state == "failed" and failed.error_code == "generation_failed"
        assert job_error_text(failed) == "Generation failed: the generator failed on this music"
    with ApiClient(ApiClientSettings(base_url=f"http://127.0.0.1:{ui_testserver.free_port()}")) as client:
        with pytest.raises(ApiUnreachable):
            client.generate(GenerateRequest(genre="jazz", clip_id=6))


def test_client_cancels_a_job(api: ui_testserver.RunningApi) -> None:
    with ApiClient(api.url) as client:
        job = client.generate(GenerateRequest(genre="jazz", clip_id=6))
        cancelled = client.cancel_job(job.id)
        assert cancelled.state == "cancelled" and cancelled.cancel_requested and cancelled.finished
        assert job_error_text(cancelled) == "Generation was cancelled."
        done = _wait_job(client, client.generate(GenerateRequest(genre="jazz", clip_id=6)).id)
        with pytest.raises(ApiRequestError) as err:
            client.cancel_job(done.id)
        assert (err.value.status, err.value.code) == (409, "job_finished")


def test_client_sends_the_api_key_on_write_routes_only(keyed_api: ui_testserver.RunningApi) -> None:
    with ApiClient(keyed_api.url) as client:
        with pytest.raises(ApiRequestError) as err:
            client.generate(GenerateRequest(genre="jazz", clip_id=6))
        assert err.value.status == 401 and "DANCESEARCH_API_KEY" in api_error_text(err.value)
    seen: list[httpx.Request] = []
    with ApiClient(ApiClientSettings(base_url=keyed_api.url, api_key=KEY)) as client:
        client._http.event_hooks["request"].append(seen.append)
        job = client.generate(GenerateRequest(genre="jazz", clip_id=6))
        client.job(job.id)
        client.cancel_job(job.id)
    assert [(r.method, "x-api-key" in r.headers) for r in seen] == [("POST", True), ("GET", False), ("DELETE", True)]


def test_queue_full_and_server_failures_read_plainly() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.method == "POST":
            return httpx.Response(429, headers={"Retry-After": "30"}, json={"error": {
                "code": "queue_full", "field": None, "message": "the generation queue is full (8 jobs waiting, limit 8)"}})
        return httpx.Response(503, json={"error": {"code": "generation_unavailable", "message": "no generator"}})

    with ApiClient(ApiClientSettings(base_url="http://api.invalid"), transport=httpx.MockTransport(handler)) as client:
        with pytest.raises(ApiRequestError) as err:
            client.generate(GenerateRequest(genre="jazz", clip_id=1))
        assert err.value.status == 429 and err.value.retry_after == 30
        assert api_error_text(err.value) == ("The generator is busy: the generation queue is full (8 jobs waiting, "
                                             "limit 8). Try again in about 30 s.")
        with pytest.raises(ApiServerError, match="HTTP 503.*no generator"):
            client.cancel_job("a" * 32)


def test_post_generate_is_not_resent_after_a_dropped_connection() -> None:
    calls = {"POST": 0, "DELETE": 0}

    def handler(request: httpx.Request) -> httpx.Response:
        calls[request.method] += 1
        raise httpx.RemoteProtocolError("Server disconnected without sending a response.", request=request)

    with ApiClient(ApiClientSettings(base_url="http://api.invalid"), transport=httpx.MockTransport(handler)) as client:
        with pytest.raises(ApiUnreachable):
            client.generate(GenerateRequest(genre="jazz", clip_id=1))
        with pytest.raises(ApiUnreachable):
            client.cancel_job("b" * 32)
    assert calls == {"POST": 1, "DELETE": 2}      # the job may exist: never POSTed twice; DELETE is idempotent


# --- pure helpers of the panel -----------------------------------------------------------------------
def test_panel_helpers() -> None:
    prop = Proposal(genre="jazz", confidence=0.4, music=(MusicSuggestion(6, 0.3, "demo/jazz_0001#2", "jazz", 131.6),))
    assert genre_options(["waltz", "jazz", "house"], prop) == ["jazz", "waltz", "house"]
    assert music_label(prop.music[0]) == "#6 · jazz · 132 BPM · demo/jazz_0001#2"
    assert music_label(MusicSuggestion(7)) == "#7"
    assert progress_text(Job("a" * 32, "queued")) == "Waiting for the generator (queued)…"
    assert progress_text(Job("a" * 32, "running", 0.5, "denoising step 10/20")) == "Generating… 50% · denoising step 10/20"
    assert progress_text(Job("a" * 32, "running", 0.5, cancel_requested=True)).startswith("Cancelling")
    assert job_error_text(Job("a" * 32, "failed", error_code="interrupted", error_message="server stopped")
                          ).startswith("Generation was interrupted")
    assert query_key("a") == query_key("a") != query_key("b") and UPLOAD == "upload"
    assert "unreachable" in api_error_text(ApiUnreachable("http://x", "connection refused"))
    assert api_error_text(ApiRequestError(422, "invalid_parameter", "seconds: at most 60", "seconds")) == \
        "The API refused to generate: seconds: at most 60 (field 'seconds')."


# --- the page (AppTest) ----------------------------------------------------------------------------
def _run_until(at: AppTest, done: callable, timeout_s: float = 15.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not done(at):
        assert time.monotonic() < deadline, "the page did not get there in time"
        time.sleep(0.3)
        at.run()
        assert not at.exception, at.exception


def _iframe_ids(at: AppTest) -> list[str]:
    import re

    return [re.search(r'id="(clip\d+)"', el.proto.srcdoc).group(1) for el in at.get("iframe")]


def test_gap_panel_generates_and_shows_the_dance(api: ui_testserver.RunningApi, monkeypatch: pytest.MonkeyPatch) -> None:
    at = _app(monkeypatch, api.url)
    _search(at, GAP_QUERY)
    md = [m.value for m in at.markdown]
    assert "#### Nothing in the catalog fits this description" in md
    assert any("fits it well" in m and "generate a new dance" in m for m in md)
    qk = query_key(GAP_QUERY)
    genre = at.selectbox(key=f"gen_genre_{qk}")
    assert genre.value == "jazz" and set(genre.options) >= {"jazz", "waltz", "house"}
    music = at.radio(key=f"gen_music_{qk}")
    assert music.value == 6 and music.options[-1].startswith("Upload my own music")
    assert at.get("audio")                                  # the chosen suggestion is playable
    assert len(at.get("iframe")) == 6                        # the closest clips are still listed below
    music.set_value(2).run()
    genre.set_value("waltz").run()
    at.number_input(key=f"gen_seconds_{qk}").set_value(4.0).run()
    at.button(key=f"gen_go_{qk}").click().run()
    assert not at.exception, at.exception
    sent = api.generate_requests[-1]["fields"]
    assert sent == {"text": GAP_QUERY, "genre": "waltz", "clip_id": 2, "seconds": 4.0, "candidates": 1}
    assert at.get("progress") and at.button(key="gen_cancel")       # progress while it runs
    _run_until(at, lambda a: bool(a.success))
    assert at.success[0].value == "Generated 1 dance (waltz, 4 s)."
    assert not at.get("progress")
    head = next(m.value for m in at.markdown if m.value.startswith(":violet-badge[generated]"))
    gen_id = int(head.split("**#")[1].split("**")[0])
    assert "**waltz**" in head and gen_id >= ui_testserver.GENERATED_ID_BASE
    assert _iframe_ids(at)[0] == f"clip{gen_id}" and len(at.get("iframe")) == 7   # same player, first on the page
    assert 'src="data:audio/ogg;base64,' in at.get("iframe")[0].proto.srcdoc
    keys = {d.key for d in at.get("download_button")}
    assert {f"dl_gen_motion_npz_{gen_id}", f"dl_gen_motion_bvh_{gen_id}"} <= keys
    # "Generate another" returns to the choices; a new search leaves the job behind
    at.button(key="gen_again").click().run()
    assert at.button(key=f"gen_go_{qk}") and not at.success


def test_not_dance_gets_a_friendly_message_without_generate(api: ui_testserver.RunningApi,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    at = _app(monkeypatch, api.url)
    _search(at, NOT_DANCE_QUERY)
    assert any("doesn't look like a dance description" in i.value for i in at.info)
    assert not [b for b in at.button if b.label == "Generate"]
    assert not at.error and not at.warning
    # the gate can be wrong about a real dance text, so the closest clips stay reachable below the message
    assert any("If you did mean a dance" in m.value for m in at.markdown)
    assert [b for b in at.button if b.label == "More like this"]


def test_cancelled_jobs_are_explained(slow_api: ui_testserver.RunningApi, monkeypatch: pytest.MonkeyPatch) -> None:
    at = _app(monkeypatch, slow_api.url)
    _search(at, "a sword dance on a rooftop")
    qk = query_key("a sword dance on a rooftop")
    at.button(key=f"gen_go_{qk}").click().run()
    assert "Generating" in at.get("progress")[0].proto.text or "queued" in at.get("progress")[0].proto.text
    at.button(key="gen_cancel").click().run()
    _run_until(at, lambda a: any("cancelled" in i.value for i in a.info))
    assert at.button(key=f"gen_go_{qk}") and not at.get("progress")     # the form is back


def test_failed_jobs_are_explained(api: ui_testserver.RunningApi, monkeypatch: pytest.MonkeyPatch) -> None:
    at = _app(monkeypatch, api.url)
    _search(at, "a sword dance on a rooftop")
    qk = query_key("a sword dance on a rooftop")
    with ApiClient(api.url) as client:   # (the page has no seed field: start the failing job as the page would)
        failing = client.generate(GenerateRequest(genre="jazz", clip_id=6, seed=ui_testserver.FAILING_SEED))
    at.session_state["gen"] = {"query": "a sword dance on a rooftop", "job_id": failing.id, "job": None}
    at.run()
    _run_until(at, lambda a: bool(a.error))
    assert at.error[0].value == "Generation failed: the generator failed on this music"
    assert at.button(key=f"gen_go_{qk}")


def test_generate_needs_the_api_key_and_the_ui_sends_it(keyed_api: ui_testserver.RunningApi,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    qk = query_key(GAP_QUERY)
    at = _app(monkeypatch, keyed_api.url)                     # no key: a plain message, no traceback
    _search(at, GAP_QUERY)
    at.button(key=f"gen_go_{qk}").click().run()
    assert not at.exception and "needs a key" in at.error[0].value
    at = _app(monkeypatch, keyed_api.url, key=KEY)
    _search(at, GAP_QUERY)
    at.button(key=f"gen_go_{qk}").click().run()
    assert not at.error
    _run_until(at, lambda a: bool(a.success))


def test_media_paths_keep_their_query_string(api: ui_testserver.RunningApi) -> None:
    """The download buttons fetch ``media`` paths such as ``/v1/clips/3/motion?format=bvh``: the format must reach
    the server (an empty ``params`` list made httpx drop the query, and every download was the JSON default)."""
    with ApiClient(api.url) as client:
        bvh = client.media("/v1/clips/3/motion?format=bvh")
        npz = client.media("/v1/clips/3/motion?format=npz")
    assert bvh.content.startswith(b"HIERARCHY") and bvh.content_type == "text/plain"
    assert npz.content[:2] == b"PK" and np.load(io.BytesIO(npz.content))["positions"].shape[1:] == (52, 3)
