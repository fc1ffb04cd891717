"""Unit tests of the UI's pure logic (refinement, player packing) and of the API client against a real
HTTP server (tests/ui_testserver.py: FastAPI + uvicorn on a free local port)."""
from __future__ import annotations

import base64
import io
import json
import re
import socket
from typing import Iterator

import numpy as np
import pytest

from encoders.tempo import tempo_range
import soundfile as sf

from encoders.errors import InputError
from encoders.motion.skeleton import smplx52
import ui_testserver  # tests/ is on sys.path (rootdir-relative test modules)
from ui.api_client import (ApiClient, ApiClientSettings, ApiRequestError, ApiServerError, ApiUnreachable, ClipResult,
                           SearchRequest, SearchResponse)
from ui.player import PlayerSettings, audio_data_url, encode_motion, player_html
from ui.refine import (Refinement, apply_refinement, filter_results, intersect_bpm, refined_text, slider_to_bpm,
                       tempo_class)


# --- refine ----------------------------------------------------------------------------------------
def test_refined_text_appends_phrases_once() -> None:
    r = Refinement(tempo="fast", body_part="arms", energy="high")
    assert refined_text("hip-hop", r) == "hip-hop, focused on the arms, with high energy, at a fast tempo"
    # phrases already in the text are not repeated
    assert refined_text("hip-hop focused on the arms", Refinement(body_part="arms")) == "hip-hop focused on the arms"
    assert refined_text("  waltz ", Refinement()) == "waltz"
    assert refined_text("   ", r) == ""          # a genre-only browse stays a genre browse


def test_refinement_validates_and_dedups() -> None:
    with pytest.raises(ValueError, match="unknown tempo"):
        Refinement(tempo="very fast")
    with pytest.raises(ValueError, match="unknown body part"):
        Refinement(body_part="tail")
    r = Refinement(genres=("waltz", "waltz", "jazz"))
    assert r.genres == ("waltz", "jazz")
    assert r.chips() == ["genre: waltz", "genre: jazz"]
    assert Refinement().is_empty and not r.is_empty


def test_apply_refinement_merges_filters_and_resets_offset() -> None:
    base = SearchRequest(q="waltz", k=7, offset=20, genres=("waltz",), bpm_min=80.0, bpm_max=None)
    out = apply_refinement(base, Refinement(tempo="slow", genres=("jazz", "waltz"), energy="low"))
    assert out.q == "waltz, with low energy, at a slow tempo"
    assert out.genres == ("waltz", "jazz")
    assert (out.bpm_min, out.bpm_max) == (80.0, tempo_range("slow")[1])   # filter and tempo class intersect
    assert out.k == 7 and out.offset == 0
    assert apply_refinement(base, Refinement()) == SearchRequest(q="waltz", k=7, offset=0, genres=("waltz",),
                                                                 bpm_min=80.0)


def test_conflicting_tempo_ranges_let_the_new_constraint_win() -> None:
    assert intersect_bpm((130.0, 180.0), (None, 90.0)) == (None, 90.0)
    assert intersect_bpm((100.0, None), (90.0, 120.0)) == (100.0, 120.0)
    assert intersect_bpm((None, None), (120.0, None)) == (120.0, None)
    assert intersect_bpm((60.0, 90.0), (90.0, 120.0)) == (90.0, 90.0)      # inclusive bounds touch


def test_slider_ends_mean_unbounded_and_tempo_classes() -> None:
    assert slider_to_bpm((40, 200), (40, 200)) == (None, None)
    assert slider_to_bpm((60, 200), (40, 200)) == (60.0, None)
    assert [tempo_class(b) for b in (None, 60, 99.9, 100, 123.9, 124, 180)] == [
        None, "slow", "slow", "medium", "medium", "fast", "fast"]


def test_filter_results_by_genre_and_bpm() -> None:
    clips = [ClipResult(id=i, key=str(i), genre=g, bpm=b) for i, (g, b) in
             enumerate([("waltz", 90.0), ("jazz", 130.0), ("waltz", None), ("house", 124.0)])]
    assert [c.id for c in filter_results(clips, ["waltz"])] == [0, 2]
    assert [c.id for c in filter_results(clips, bpm_min=100.0)] == [1, 3]      # unknown BPM is excluded
    assert [c.id for c in filter_results(clips, bpm_max=124.0)] == [0, 3]   # inclusive, as the API
    assert [c.id for c in filter_results(clips)] == [0, 1, 2, 3]


# --- player ----------------------------------------------------------------------------------------
def _motion(frames: int = 45) -> dict:
    sk = smplx52()
    pos = ui_testserver.make_positions(0, frames / 30.0, 100.0)
    return {"fps": 30, "joint_names": list(sk.names), "parents": list(sk.parents), "positions": pos.tolist()}


def test_encode_motion_round_trips_to_the_millimetre() -> None:
    m = _motion()
    enc = encode_motion(m)
    pos = np.asarray(m["positions"])
    assert (enc.num_frames, enc.num_joints, enc.fps) == (45, 52, 30.0)
    assert np.abs(enc.decode() - pos).max() <= 0.0006
    assert enc.origin[1] == pytest.approx(pos[..., 1].min(), abs=1e-6)   # floor = lowest joint of the clip
    assert len(base64.b64decode(enc.data)) == 45 * 52 * 3 * 2


def test_encode_motion_strides_long_clips_and_keeps_time() -> None:
    enc = encode_motion(_motion(90), PlayerSettings(max_frames=40))
    assert enc.num_frames == 30 and enc.fps == pytest.approx(10.0)       # stride 3: same 3 s duration


@pytest.mark.parametrize("bad, match", [
    ({"fps": 30, "joint_names": ["a"], "parents": [-1], "positions": [[1, 2, 3]]}, "bad joint positions"),
    ({"fps": 30, "joint_names": ["a", "b"], "parents": [-1], "positions": [[[0, 0, 0], [1, 1, 1]]]}, "disagree"),
    ({"fps": 30, "joint_names": ["a"], "parents": [3], "positions": [[[0, 0, 0]]]}, "bad parents"),
    ({"fps": 30, "joint_names": ["a"], "parents": [-1]}, "malformed"),
])
def test_encode_motion_rejects_bad_input(bad: dict, match: str) -> None:
    with pytest.raises(InputError, match=match):
        encode_motion(bad)


def test_player_html_is_self_contained_and_carries_the_skeleton() -> None:
    enc = encode_motion(_motion())
    page = player_html(enc, audio_data_url(b"OggS-fake", "audio/ogg"), title="#1 <waltz>", player_id="clip7")
    assert "<script src" not in page and not re.search(r"https?://", page)   # nothing from the network
    assert 'src="data:audio/ogg;base64,' + base64.b64encode(b"OggS-fake").decode() + '"' in page
    assert "#1 &lt;waltz&gt;" in page and 'id="clip7"' in page
    config = json.loads(re.search(r"var C = (\{.*?\});\n", page).group(1))
    assert config["parents"] == list(smplx52().parents)
    names = smplx52().names
    assert config["side"][names.index("left_wrist")] == 1 and config["side"][names.index("right_wrist")] == -1
    assert config["hand"][names.index("left_index3")] and not config["hand"][names.index("left_elbow")]
    assert config["data"] == enc.data
    # without audio the player gets its own play button (a wall clock drives the frames)
    silent = player_html(enc, None)
    assert "<audio" not in silent and 'class="ds-play"' in silent


# --- api client against a real HTTP server ---------------------------------------------------------
@pytest.fixture(scope="module")
def api() -> Iterator[ui_testserver.RunningApi]:
    yield from ui_testserver.serve(seconds=2.0)


def test_client_search_parses_the_documented_shape(api: ui_testserver.RunningApi) -> None:
    with ApiClient(api.url) as client:
        resp = client.search(SearchRequest(q="slow lyrical waltz", k=3, genres=("waltz", "jazz"), bpm_min=80))
    assert isinstance(resp, SearchResponse) and not resp.no_match and resp.model == "test-word-overlap"
    assert [r.rank for r in resp.results] == [1, 2, 3]   # two waltzes and the jazz clip pass the filters
    top = resp.results[0]
    assert top.caption == "a slow lyrical waltz that travels in circles" and top.genre == "waltz"
    assert top.media["audio"] == f"/v1/clips/{top.id}/audio" and top.tags["energy"] == "low"
    params = api.searches()[-1]
    assert params["genre"] == ["waltz", "jazz"] and params["bpm_min"] == ["80"] and "bpm_max" not in params


def test_client_reports_no_match_and_similar(api: ui_testserver.RunningApi) -> None:
    with ApiClient(api.url) as client:
        assert client.search(SearchRequest(q="underwater basket weaving")).no_match
        sim = client.similar(1, k=2)
    assert len(sim.results) == 2 and 1 not in [r.id for r in sim.results]
    assert sim.results[0].genre == "waltz"      # shares the most words with clip 1


def test_client_errors_are_typed(api: ui_testserver.RunningApi) -> None:
    with ApiClient(api.url) as client:
        with pytest.raises(ApiRequestError) as err:
            client.search(SearchRequest(q="waltz", k=500))
        assert (err.value.status, err.value.code, err.value.field) == (422, "invalid_parameter", "k")
        with pytest.raises(ApiRequestError) as err:
            client.clip(999)
        assert err.value.status == 404 and err.value.code == "not_found"
    with ApiClient(ApiClientSettings(base_url=f"http://127.0.0.1:{ui_testserver.free_port()}")) as client:
        with pytest.raises(ApiUnreachable, match="unreachable"):
            client.genres()


def test_client_times_out_as_unreachable() -> None:
    """A server that accepts connections but never answers must not hang the UI."""
    with socket.socket() as srv:
        srv.bind(("127.0.0.1", 0))
        srv.listen(8)
        settings = ApiClientSettings(base_url=f"http://127.0.0.1:{srv.getsockname()[1]}", search_timeout_s=0.3)
        with ApiClient(settings) as client, pytest.raises(ApiUnreachable, match="timeout"):
            client.search(SearchRequest(q="waltz"))


def test_client_rejects_answers_outside_the_contract() -> None:
    import httpx

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/v1/search":
            return httpx.Response(200, json={"hits": []})
        return httpx.Response(503, text="down")

    # httpx's MockTransport is a real httpx transport; it only stands in for a broken server here
    with ApiClient(ApiClientSettings(base_url="http://api.invalid"), transport=httpx.MockTransport(handler)) as client:
        with pytest.raises(ApiServerError, match="no 'results' list"):
            client.search(SearchRequest(q="x"))
        with pytest.raises(ApiServerError, match="HTTP 503"):
            client.genres()


def test_client_media_genres_and_motion(api: ui_testserver.RunningApi) -> None:
    with ApiClient(api.url) as client:
        genres = dict(client.genres())
        motion = client.motion_json(3)
        audio = client.media("/v1/clips/3/audio")
        clip = client.clip(3)
    assert genres["waltz"] == 2 and sum(genres.values()) == len(api.clips)
    assert np.asarray(motion["positions"]).shape == (60, 52, 3) and motion["parents"][0] == -1
    assert audio.content_type == "audio/ogg"
    y, sr = sf.read(io.BytesIO(audio.content))
    assert abs(len(y) / sr - 2.0) < 0.05
    assert clip.rank is None and clip.score is None and clip.genre == "popping"
