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
"""
from __future__ import annotations

import os
import re
import subprocess
import sys
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

sync_api = pytest.importorskip("playwright.sync_api", reason="playwright (python package) is not installed")
if not CHROMIUM.exists():
    pytest.skip(f"no chromium at {CHROMIUM} (apt-get install chromium, or set DANCESEARCH_CHROMIUM)",
                allow_module_level=True)


@dataclass
class Backend:
    kind: str
    url: str
    stop: Callable[[], None]


@pytest.fixture(scope="module", params=["testserver", pytest.param("real", marks=pytest.mark.slow)])
def backend(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Backend]:
    if request.param == "testserver":
        gen = ui_testserver.serve(seconds=4.0)
        api = next(gen)
        yield Backend("testserver", api.url, lambda: next(gen, None))
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
            assert page.get_by_text(QUERY, exact=True).count() >= 2   # the example button and the top card

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
