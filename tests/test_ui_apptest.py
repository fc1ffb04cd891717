"""The Streamlit app's logic with Streamlit's own AppTest, against a real HTTP API (tests/ui_testserver.py).

Each test drives the script like a user (type, click, select) and checks what the page shows and what
the app asked the API for.
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterator

import pytest

from encoders.tempo import tempo_range
from streamlit.testing.v1 import AppTest

import ui_testserver  # tests/ is on sys.path (rootdir-relative test modules)
from ui_apptest_support import APP, open_app as _app, search as _search


@pytest.fixture(scope="module")
def api() -> Iterator[ui_testserver.RunningApi]:
    yield from ui_testserver.serve(seconds=2.0)


def _markdown(at: AppTest) -> list[str]:
    return [m.value for m in at.markdown]


def _texts(at: AppTest) -> list[str]:
    return [t.value for t in at.text]


def _captions_shown(at: AppTest, api: ui_testserver.RunningApi) -> list[str]:
    """Captions of the result cards, in page (rank) order (plain ``st.text``: dataset text is never Markdown)."""
    captions = {c.caption for c in api.clips}
    return [m for m in _texts(at) if m in captions]


def test_empty_input_shows_guidance_and_no_search(api: ui_testserver.RunningApi, monkeypatch: pytest.MonkeyPatch) -> None:
    at = _app(monkeypatch, api.url)
    assert any("Type a description" in i.value for i in at.info)
    assert not at.error and not at.get("iframe")
    genres = at.multiselect(key="genres")
    assert set(genres.options) == {"waltz (2)", "popping (1)", "hiphop (1)", "house (1)", "jazz (1)"}
    # submitting blank text keeps the empty state instead of calling the API
    before = len(api.searches())
    _search(at, "   ")
    assert any("Type a description" in i.value for i in at.info) and len(api.searches()) == before


def test_search_renders_ranked_results_with_players(api: ui_testserver.RunningApi,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    at = _app(monkeypatch, api.url)
    at.slider(key="k").set_value(4)
    _search(at, "slow lyrical waltz")
    md = _markdown(at)
    assert md[0].startswith("**4** results for “slow lyrical waltz”")
    assert "**#1** · score 1.000 · **waltz** · 88 BPM (slow) · 2.0 s" in md
    assert _captions_shown(at, api)[0] == "a slow lyrical waltz that travels in circles"
    assert ":gray-badge[energy: low] :gray-badge[body_part: whole body]" in md   # curated tags as badges
    assert len(at.get("iframe")) == 4 and not at.warning and not at.error
    assert [b.key for b in at.button if b.label == "More like this"] == ["more_1", "more_2", "more_3", "more_4"]
    assert {d.label for d in at.get("download_button")} == {"Download motion (.npz)", "Download motion (.bvh)",
                                                           "Download audio"}
    assert api.searches()[-1]["k"] == ["4"]
    page = _player_pages(at)[0]      # the player of the top result, audio embedded as a data: URL
    assert 'id="clip1"' in page and 'src="data:audio/ogg;base64,' in page and "<canvas" in page


def _player_pages(at: AppTest) -> list[str]:
    return [el.proto.srcdoc for el in at.get("iframe")]


def test_public_api_url_streams_audio_from_the_api(api: ui_testserver.RunningApi,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DANCESEARCH_PUBLIC_API_URL", "http://dance.example:8000")
    at = _app(monkeypatch, api.url)
    _search(at, "waltz")
    pages = _player_pages(at)
    assert pages and all("data:audio" not in p for p in pages)
    assert 'src="http://dance.example:8000/v1/clips/1/audio"' in pages[0]


def test_example_query_runs_a_search(api: ui_testserver.RunningApi, monkeypatch: pytest.MonkeyPatch) -> None:
    at = _app(monkeypatch, api.url)
    next(b for b in at.button if b.label == "energetic hip-hop with fast footwork").click().run()
    assert at.text_input(key="q_input").value == "energetic hip-hop with fast footwork"
    assert _captions_shown(at, api)[0] == "energetic hip-hop with fast footwork"


def test_refinement_rewrites_the_query_and_filters(api: ui_testserver.RunningApi,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    at = _app(monkeypatch, api.url)
    _search(at, "dance with arms")
    assert len(at.get("iframe")) == 6
    at.button_group(key="ref_tempo").set_value("slow").run()
    at.button_group(key="ref_body").set_value("arms").run()
    sent = api.searches()[-1]
    assert sent["q"] == ["dance with arms, focused on the arms, at a slow tempo"] and float(sent["bpm_max"][0]) == tempo_range("slow")[1]
    md = _markdown(at)
    assert "Refined by: :blue-badge[tempo: slow] :blue-badge[body part: arms]" in md
    shown = _captions_shown(at, api)
    assert shown and all(c.bpm <= tempo_range("slow")[1] for c in api.clips if c.caption in shown)
    # a genre constraint from the refinement bar narrows further; Clear restores the plain query
    at.multiselect(key="ref_genres").set_value(["waltz"]).run()
    assert api.searches()[-1]["genre"] == ["waltz"]
    assert {c.genre for c in api.clips if c.caption in _captions_shown(at, api)} == {"waltz"}
    at.button(key="ref_clear").click().run()   # (answered from the UI's search cache: same request as before)
    assert _markdown(at)[0].startswith("**6** results for “dance with arms”")
    assert not any(m.startswith("Refined by") for m in _markdown(at))
    assert len(at.get("iframe")) == 6


def test_more_like_this_lists_similar_clips(api: ui_testserver.RunningApi, monkeypatch: pytest.MonkeyPatch) -> None:
    at = _app(monkeypatch, api.url)
    _search(at, "waltz")
    at.button(key="more_1").click().run()
    assert any(r["path"] == "/v1/clips/1/similar" for r in api.requests)
    md = _markdown(at)
    assert any(m.startswith("Clips similar to **#1 waltz: a slow lyrical waltz") for m in md)
    shown = _captions_shown(at, api)
    assert shown[0] == "a gentle waltz turning with raised arms" and api.clips[0].caption not in shown
    # refinement applies to the similar list too (client-side filter), then back to the search
    at.button_group(key="ref_tempo").set_value("fast").run()
    assert {c.genre for c in api.clips if c.caption in _captions_shown(at, api)} == {"house", "jazz"}
    at.button(key="back").click().run()
    assert _markdown(at)[0].startswith("**2** results for “waltz, at a fast tempo”")
    assert not any(m.startswith("Clips similar to") for m in _markdown(at))


def test_low_confidence_and_no_results_states(api: ui_testserver.RunningApi, monkeypatch: pytest.MonkeyPatch) -> None:
    at = _app(monkeypatch, api.url)
    _search(at, "underwater basket weaving")
    assert any("Low confidence" in w.value and "0.20" in w.value for w in at.warning)
    assert at.get("iframe")                      # the closest clips are still shown under the warning
    at.multiselect(key="genres").set_value(["house"]).run()
    at.button_group(key="ref_tempo").set_value("slow").run()
    assert any("No results" in w.value for w in at.warning) and not at.get("iframe")
    assert at.button(key="ref_clear")            # the way out is on the page


def test_genre_only_browse(api: ui_testserver.RunningApi, monkeypatch: pytest.MonkeyPatch) -> None:
    at = _app(monkeypatch, api.url)
    at.multiselect(key="genres").set_value(["waltz"]).run()
    assert _markdown(at)[0].startswith("**2** results by genre")
    assert api.searches()[-1]["q"] == [""] and api.searches()[-1]["genre"] == ["waltz"]


def test_unreachable_api_is_explained(monkeypatch: pytest.MonkeyPatch) -> None:
    url = f"http://127.0.0.1:{ui_testserver.free_port()}"
    at = _app(monkeypatch, url)
    assert len(at.error) == 1 and "unreachable" in at.error[0].value and url in at.error[0].value
    assert "dancesearch serve" in at.error[0].value
    assert at.button(key="retry") and not at.get("iframe")


# --- dataset text is plain text (issue 18 item 9) and the query box has the API's limit (item 11) ---------
EVIL_CAPTION = "![x](http://example.invalid/a.png)"


@pytest.fixture
def evil_api(monkeypatch: pytest.MonkeyPatch) -> Iterator[ui_testserver.RunningApi]:
    """The test API with one clip whose caption, tag and (through the explanation) API text carry a Markdown image."""
    specs = (("waltz", 88.0, EVIL_CAPTION, {"energy": "![e](http://example.invalid/e.png)", "body_part": "arms"}),
             *ui_testserver.CLIP_SPECS[1:])
    monkeypatch.setattr(ui_testserver, "CLIP_SPECS", specs)
    yield from ui_testserver.serve(seconds=1.0)


def test_dataset_captions_render_as_plain_text(evil_api: ui_testserver.RunningApi,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    at = _app(monkeypatch, evil_api.url)
    _search(at, "waltz")
    assert EVIL_CAPTION in _texts(at)                      # shown literally, as text
    assert any(EVIL_CAPTION in t for t in _texts(at) if t.startswith("- "))   # the Details caption list too
    markdown_like = [*(m.value for m in at.markdown), *(c.value for c in at.caption),
                     *(w.value for w in at.warning), *(i.value for i in at.info)]
    assert not [m for m in markdown_like if "![" in m]     # no Markdown image anywhere on the page
    assert not at.get("image") and not at.get("imgs")
    why = next(c.value for c in at.caption if c.value.startswith("Why:") and "example.invalid/a.png" in c.value)
    assert "\\!\\[x\\]\\(http://example.invalid/a.png\\)" in why    # API text quoting the caption is escaped
    at.button(key="more_1").click().run()                  # the "similar to" line quotes the caption too
    line = next(m.value for m in at.markdown if m.value.startswith("Clips similar to"))
    assert "![" not in line and "example.invalid/a.png" in line


def test_md_escape_makes_markdown_inert() -> None:
    import re

    src = Path(APP).read_text()
    start, end = src.index("_MD_SPECIAL = "), src.index("def sidebar")
    ns: dict = {"re": re}
    exec(src[start:end], ns)          # the helper alone: importing app.py would run the page
    esc = ns["md_escape"]
    assert esc("![x](http://e/a.png)") == "\\!\\[x\\]\\(http://e/a.png\\)"
    assert esc("a *b* `c` <img src=x> $x$ :red[y]\n# h") == "a \\*b\\* \\`c\\` \\<img src=x\\> \\$x\\$ :red\\[y\\] # h"


def test_query_box_limit_matches_the_api(api: ui_testserver.RunningApi, monkeypatch: pytest.MonkeyPatch) -> None:
    from search_api.schemas import MAX_QUERY
    from ui.refine import MAX_REFINEMENT_CHARS, Refinement, refined_text

    at = _app(monkeypatch, api.url)
    box = at.text_input(key="q_input")
    assert box.proto.max_chars == MAX_QUERY - MAX_REFINEMENT_CHARS > 0
    longest = refined_text("w" * box.proto.max_chars, Refinement(tempo="medium", body_part="hands", energy="medium"))
    assert len(longest) <= MAX_QUERY                       # a refined query of a full box is still accepted
