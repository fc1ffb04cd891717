"""End to end in a real browser: Debian's headless chromium (playwright) -> `streamlit run ui/app.py`
(a real subprocess) -> a running search API over HTTP.

Two back ends, same checks:
- ``real`` (marked slow): the real `dancesearch serve` on a tiny demo workspace built through every
  layer's CLI (`corpus demo` -> `ingest npz` -> `index build`, as `dancesearch demo` does); skipped with
  the reason while a layer is missing from the checkout. This is the test that counts.
- ``testserver`` (default run): the small real FastAPI server of tests/ui_testserver.py.

The test submits a query, checks that result cards and skeleton players render (bone pixels on the
canvas), that the player follows the audio clock, that a tempo refinement updates the list, saves
a screenshot (the real back end refreshes docs/ui_screenshot.png for the README; the test server's goes to a
temporary folder, so the default run never changes a tracked file), and finally
stops the API to check that the running UI explains an unreachable API.

Generating from a gap (issue 15): a description the catalog cannot serve shows the gap panel with the proposed
genre and music; picking music and pressing Generate shows progress, then the generated dance plays in the
same skeleton player with its music, a "generated" badge and working npz / BVH downloads; a text that is not
about dance gets a friendly message and no Generate button.
"""
from __future__ import annotations

import os
import re
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import httpx
import pytest

from encoders.tempo import tempo_range

import ui_testserver  # tests/ is on sys.path (rootdir-relative test modules)
from test_demo_command import TEST_RUN, demo_prerequisites

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = Path(os.environ.get("DANCESEARCH_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--autoplay-policy=no-user-gesture-required"]
SCREENSHOT = ROOT / "docs" / "ui_screenshot.png"
QUERY = "a slow lyrical waltz that travels in circles"
GAP_QUERY = "flamenco with stamping heels and hand clapping"    # indexer/assets/gate_queries/gate_gap.jsonl; test server: "flamenco"
NOT_DANCE_QUERY = "how to bake sourdough bread"                 # indexer/assets/gate_queries/gate_not_dance.jsonl

sync_api = pytest.importorskip("playwright.sync_api", reason="playwright (python package) is not installed")
if not CHROMIUM.exists():
    pytest.skip(f"no chromium at {CHROMIUM} (apt-get install chromium, or set DANCESEARCH_CHROMIUM)",
                allow_module_level=True)


@dataclass
class Backend:
    kind: str
    url: str
    stop: Callable[[], None]
    jobs: Callable[[], dict] | None = None     # the test server's generation jobs (what the UI asked for)


@pytest.fixture(scope="module", params=["testserver", pytest.param("real", marks=pytest.mark.slow)])
def backend(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Backend]:
    if request.param == "testserver":
        gen = ui_testserver.serve(seconds=4.0)
        api = next(gen)
        yield Backend("testserver", api.url, lambda: next(gen, None), jobs=lambda: api.jobs)
        next(gen, None)
        return
    reason = demo_prerequisites()
    if reason:
        pytest.skip(reason)
    from ui.commands import DemoSettings, ensure_demo_workspace, start_api

    # DANCESEARCH_TEST_HOME: reuse a workspace built earlier (the steps skip what exists)
    home = Path(os.environ["DANCESEARCH_TEST_HOME"]) if os.environ.get("DANCESEARCH_TEST_HOME") \
        else tmp_path_factory.mktemp("demo_home")
    settings = DemoSettings(home=home, api_port=ui_testserver.free_port(), clips=32, startup_timeout_s=300,
                            run=Path(TEST_RUN) if TEST_RUN else None)
    ensure_demo_workspace(settings)
    child = start_api(settings)
    try:
        yield Backend("real", settings.api_url, child.stop)
    finally:
        child.stop()


def wait_http(url: str, proc: subprocess.Popen, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args[:4]} exited with {proc.returncode}")
        try:
            if httpx.get(url, timeout=1.0).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{url} did not come up within {timeout_s} s")


@pytest.fixture(scope="module")
def ui_url(backend: Backend, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`streamlit run ui/app.py` as a subprocess on a free port, pointed at the API; always stopped."""
    from ui.commands import streamlit_cmd

    port = ui_testserver.free_port()
    log = (tmp_path_factory.mktemp("streamlit") / "streamlit.log").open("w")
    proc = subprocess.Popen(streamlit_cmd("127.0.0.1", port, backend.url), cwd=ROOT, stdout=log,
                            stderr=subprocess.STDOUT)
    try:
        wait_http(f"http://127.0.0.1:{port}/_stcore/health", proc)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


@pytest.fixture(scope="module")
def browser() -> Iterator["sync_api.Browser"]:
    with sync_api.sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


FRAME_JS = "() => Number(document.querySelector('canvas').dataset.frame)"
# canvas pixels painted in the left / right bone colours: the skeleton really is drawn, both sides
BONE_PIXELS_JS = """() => {
  const c = document.querySelector('canvas'), d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
  let left = 0, right = 0;
  for (let i = 0; i < d.length; i += 4) {
    if (d[i] < 130 && d[i + 2] > 200) left++;          // #60a5fa
    if (d[i] > 200 && d[i + 2] < 100) right++;         // #fb923c
  }
  return [left, right, c.width * c.height];
}"""


def _shown_count(page: "sync_api.Page") -> int:
    text = page.get_by_text(re.compile(r"results? (for|by)")).first.inner_text()
    return int(re.match(r"\s*(\d+)", text).group(1))


def _check_player_follows_the_clock(frame: "sync_api.Frame") -> None:
    has_audio = frame.evaluate("() => !!document.querySelector('audio')")
    if has_audio:   # the frame shown is audio.currentTime x fps: seek, then play
        frame.evaluate("() => { document.querySelector('audio').currentTime = 1.0; }")
        frame.wait_for_function(f"({FRAME_JS})() === 30", timeout=5_000)
        frame.evaluate("() => { document.querySelector('audio').currentTime = 0; }")
        frame.wait_for_function(f"({FRAME_JS})() === 0", timeout=5_000)
        frame.evaluate("() => { const a = document.querySelector('audio'); a.muted = true; return a.play(); }")
        frame.wait_for_function(f"({FRAME_JS})() > 5", timeout=10_000)
        t, f = frame.evaluate("() => [document.querySelector('audio').currentTime, "
                              "Number(document.querySelector('canvas').dataset.frame)]")
        assert abs(f - t * 30) <= 6, (t, f)        # within 0.2 s of the audio clock
        frame.evaluate("() => document.querySelector('audio').pause()")
    else:           # no audio: the play button runs a wall clock
        frame.locator(".ds-play").click()
        frame.wait_for_function(f"({FRAME_JS})() > 5", timeout=10_000)
        frame.locator(".ds-play").click()


def test_search_renders_results_and_players(backend: Backend, ui_url: str, browser: "sync_api.Browser",
                                            tmp_path: Path) -> None:
    page = browser.new_page(viewport={"width": 1400, "height": 1350})
    try:
        page.goto(ui_url, wait_until="domcontentloaded")
        box = page.get_by_label("Describe a dance", exact=True)
        box.wait_for(timeout=30_000)
        page.get_by_text("Type a description of a dance").wait_for(timeout=10_000)   # empty state first

        box.fill(QUERY)
        t0 = time.monotonic()
        page.get_by_role("button", name="Search", exact=True).click()
        page.get_by_role("button", name="More like this").first.wait_for(timeout=15_000)
        first_result_s = time.monotonic() - t0
        n = _shown_count(page)
        assert n >= 1
        page.wait_for_function(f"document.querySelectorAll('iframe').length === {n}", timeout=30_000)
        assert page.get_by_role("button", name="More like this").count() == n
        if backend.kind == "testserver":
            from ui.refine import EXAMPLE_QUERIES

            assert page.get_by_text(QUERY, exact=True).count() >= 1                # the top card's caption
            assert page.get_by_text(EXAMPLE_QUERIES[0], exact=True).count() >= 1   # the example button

        frame = page.frames[1]
        frame.wait_for_function("document.querySelector('canvas') && "
                                "Number(document.querySelector('canvas').dataset.drawn) > 0", timeout=15_000)
        left, right, total = frame.evaluate(BONE_PIXELS_JS)
        assert left > 200 and right > 200, (left, right, total)
        _check_player_follows_the_clock(frame)

        for f in page.frames[1:]:   # pose every player mid-clip for the screenshot
            f.evaluate("() => { const a = document.querySelector('audio'); if (a) a.currentTime = 1.3; }")
        page.wait_for_timeout(300)
        # only the real back end refreshes the README's screenshot; the test server's goes to tmp
        shot = SCREENSHOT if backend.kind == "real" else tmp_path / "ui_screenshot.png"
        shot.parent.mkdir(exist_ok=True)
        page.screenshot(path=str(shot), full_page=False)

        # refinement: the "fast" tempo rewrites the query, filters by BPM, and the list updates
        fast_from = tempo_range("fast")[0]
        page.get_by_role("radio", name=f"fast (≥ {fast_from:.0f} BPM)", exact=True).click()
        page.get_by_text("Refined by:").wait_for(timeout=15_000)
        page.get_by_text("at a fast tempo", exact=False).first.wait_for()
        page.wait_for_function("!document.body.innerText.includes('BPM (slow)')", timeout=15_000)
        bpms = [int(b) for b in re.findall(r"(\d+) BPM \((?:slow|medium|fast)\)", page.inner_text("body"))]
        assert all(b >= fast_from for b in bpms), bpms
        if not bpms:
            assert page.get_by_text("No results.").count() == 1
        if backend.kind == "testserver":
            assert sorted(bpms) == [124, 132]

        assert first_result_s < 5.0, f"first results took {first_result_s:.1f} s"
        print(f"[{backend.kind}] first results visible {first_result_s:.2f} s after clicking Search")
    finally:
        page.close()


def _outcome(backend: Backend, q: str) -> str | None:
    body = httpx.get(f"{backend.url}/v1/search", params={"q": q, "k": 5}, timeout=60).json()
    return body.get("outcome") if body.get("outcome") != "gap" or body.get("proposal") else "gap-without-proposal"


def _player_frame(page: "sync_api.Page", element_id: str, timeout_s: float = 30.0) -> "sync_api.Frame":
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for f in page.frames[1:]:
            try:
                if f.evaluate(f"() => !!document.getElementById('{element_id}')"):
                    return f
            except sync_api.Error:      # a frame that went away while we looked
                continue
        page.wait_for_timeout(200)
    raise AssertionError(f"no player frame with #{element_id}")


def test_gap_generate_play_and_not_dance(backend: Backend, ui_url: str, browser: "sync_api.Browser",
                                         tmp_path: Path) -> None:
    """search -> gap (proposal shown) -> pick music -> Generate -> progress -> the generated dance plays."""
    if backend.kind == "real":
        got = _outcome(backend, GAP_QUERY)
        if got != "gap":
            pytest.skip(f"the real index's query gate answers {got!r} for {GAP_QUERY!r} (needs gap + proposal)")
    page = browser.new_page(viewport={"width": 1400, "height": 1350}, accept_downloads=True)
    try:
        t_start = time.monotonic()
        page.goto(ui_url, wait_until="domcontentloaded")
        box = page.get_by_label("Describe a dance", exact=True)
        box.wait_for(timeout=30_000)
        box.fill(GAP_QUERY)
        page.get_by_role("button", name="Search", exact=True).click()
        page.get_by_text("Nothing in the catalog fits this description").wait_for(timeout=30_000)
        panel = page.locator("[class*='st-key-gap_panel_']")
        generate = panel.get_by_role("button", name="Generate", exact=True)
        generate.wait_for(timeout=15_000)
        # the proposal: a genre (editable select) and suggested music (radio), the closest clips below
        panel.get_by_text("Genre to dance").wait_for()
        music = panel.get_by_role("radiogroup")
        music.wait_for()
        options = music.get_by_role("radio")
        labels = [music.locator("label").nth(i).inner_text() for i in range(options.count())]
        assert len(labels) >= 2 and labels[-1].startswith("Upload my own music"), labels
        assert all(lab.startswith("Suggested: #") for lab in labels[:-1]), labels
        if backend.kind == "testserver":
            select = panel.locator("[data-testid='stSelectbox']")
            assert "jazz" in (select.inner_text() + str(select.locator("input").first.input_value())), \
                select.inner_text()                                         # the proposed genre, preselected
            assert labels[0].startswith("Suggested: #6 · jazz · 132 BPM")
        page.get_by_role("button", name="More like this").first.wait_for(timeout=15_000)
        # pick the second suggestion (or keep the first when there is only one): its music is playable
        pick = 1 if len(labels) > 2 else 0
        music.locator("label").nth(pick).click()
        picked_id = int(re.match(r"Suggested: #(\d+)", labels[pick]).group(1))
        panel.locator("audio").first.wait_for(state="attached", timeout=15_000)
        generate.click()
        t_generate = time.monotonic()

        # progress while it runs (queued or a percentage), with a Cancel button
        page.get_by_text(re.compile(r"Waiting for the generator|Generating… \d+%")).first.wait_for(timeout=30_000)
        assert page.get_by_role("button", name="Cancel").count() == 1
        page.get_by_text(re.compile(r"Generated \d+ dance")).wait_for(timeout=180_000)
        gen_s = time.monotonic() - t_generate
        badge = page.get_by_text("generated", exact=True).first
        badge.wait_for(timeout=15_000)
        head = page.locator("[class*='st-key-gen_clip_']").first
        gen_id = int(re.search(r"st-key-gen_clip_(\d+)", head.get_attribute("class")).group(1))

        # the generated dance in the same player as search results, with its music
        frame = _player_frame(page, f"clip{gen_id}")
        frame.wait_for_function("document.querySelector('canvas') && "
                                "Number(document.querySelector('canvas').dataset.drawn) > 0", timeout=15_000)
        left, right, total = frame.evaluate(BONE_PIXELS_JS)
        assert left > 200 and right > 200, (left, right, total)
        assert frame.evaluate("() => !!document.querySelector('audio')")
        _check_player_follows_the_clock(frame)

        # downloads: npz and BVH of the generated clip, real files
        with page.expect_download(timeout=30_000) as dl:
            head.get_by_role("button", name="Download motion (.bvh)").click()
        bvh = Path(dl.value.path()).read_text()
        assert bvh.startswith("HIERARCHY"), bvh[:80]
        with page.expect_download(timeout=30_000) as dl:
            head.get_by_role("button", name="Download motion (.npz)").click()
        assert Path(dl.value.path()).read_bytes()[:2] == b"PK"            # a zip: numpy's npz
        if backend.kind == "testserver":
            job = next(iter(j for j in backend_jobs(backend).values() if j.clip and j.clip.id == gen_id))
            assert job.params["music"] == {"kind": "clip", "clip_id": picked_id, "clip_key": job.params["music"]["clip_key"]}
            assert job.params["genre"] == "jazz" and job.params["text"] == GAP_QUERY
        page.screenshot(path=str(tmp_path / "ui_generated.png"), full_page=False)

        # a text that is not about dance: a friendly message, nothing to generate
        not_dance = backend.kind == "testserver" or _outcome(backend, NOT_DANCE_QUERY) == "not_dance"
        if not_dance:
            box.fill(NOT_DANCE_QUERY)
            page.get_by_role("button", name="Search", exact=True).click()
            page.get_by_text("doesn't look like a dance description").wait_for(timeout=30_000)
            page.wait_for_timeout(500)      # let Streamlit finish streaming the page
            assert page.get_by_role("button", name="Generate", exact=True).count() == 0
        print(f"[{backend.kind}] gap -> generated clip #{gen_id} in {gen_s:.1f} s; not-dance message checked: "
              f"{'yes' if not_dance else 'no (the gate does not call it not_dance)'}; "
              f"whole flow {time.monotonic() - t_start:.1f} s")
    finally:
        page.close()


def backend_jobs(backend: Backend) -> dict:
    return backend.jobs() if backend.jobs else {}


def test_running_ui_explains_an_api_that_went_down(backend: Backend, ui_url: str,
                                                  browser: "sync_api.Browser") -> None:
    """Last test of the module: it stops the API."""
    backend.stop()
    page = browser.new_page()
    try:
        page.goto(ui_url, wait_until="domcontentloaded")
        box = page.get_by_label("Describe a dance", exact=True)
        box.wait_for(timeout=30_000)
        box.fill("a query nobody has sent before")   # not in the UI's search cache
        page.get_by_role("button", name="Search", exact=True).click()
        page.get_by_text("The search API is unreachable").wait_for(timeout=30_000)
        assert page.get_by_text(backend.url).count() >= 1
        # Streamlit streams elements one by one: the button can land a moment after the error text.
        retry = page.get_by_role("button", name="Retry")
        retry.wait_for(timeout=15_000)
        assert retry.count() == 1
    finally:
        page.close()
