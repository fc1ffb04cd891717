"""``/docs`` (Swagger UI) and ``/redoc`` work offline: their HTML references only this server's own assets,
the assets are served, and a real browser with every non-loopback request blocked renders the
operations list (before the fix the page loaded Swagger UI from a CDN and stayed blank offline).
"""
from __future__ import annotations

import os
import re
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from indexer.index.builder import build_index
from indexer.index.service import SearchEngine
from search_api.app import create_app
from search_api.settings import ApiSettings
from search_support import ServerThread, WordEmbedder, make_workspace

CHROMIUM = Path(os.environ.get("DANCESEARCH_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    home = tmp_path_factory.mktemp("docs")
    ws = make_workspace(home, clips_per_genre=1, with_audio=False)
    build_index(ws, WordEmbedder())
    app = create_app(ApiSettings(home=home, reload_check_s=0), engine=SearchEngine.open(ws, WordEmbedder()))
    with ServerThread(app) as srv:
        yield srv


def _asset_urls(html: str) -> list[str]:
    return re.findall(r"""(?:src|href)\s*=\s*["']([^"']+)["']""", html) + \
        re.findall(r"""url\s*:\s*["']([^"']+)["']""", html)


@pytest.mark.parametrize("page,kinds", [("/docs", {".js": "javascript", ".css": "text/css", ".png": "image/png"}),
                                        ("/redoc", {".js": "javascript", ".png": "image/png"})])
def test_docs_pages_reference_only_local_assets(server, page, kinds):
    with httpx.Client(base_url=server.url, timeout=30) as c:
        r = c.get(page)
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
        urls = _asset_urls(r.text)
        assert urls, r.text
        external = [u for u in urls if urlsplit(u).scheme or u.startswith("//")]
        assert external == [], f"{page} loads {external}"
        assert "fonts.googleapis" not in r.text and "cdn." not in r.text
        assets = [u for u in urls if Path(urlsplit(u).path).suffix in kinds]
        assert {Path(u).suffix for u in assets} == set(kinds)
        for url in assets:
            a = c.get(url)
            assert a.status_code == 200 and kinds[Path(url).suffix] in a.headers["content-type"], url
            assert len(a.content) > 1000
        assert c.get("/openapi.json").status_code == 200


def test_swagger_ui_renders_with_the_network_blocked(server):
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright (python package) is not installed")
    if not CHROMIUM.exists():
        pytest.skip(f"no chromium at {CHROMIUM} (apt-get install chromium, or set DANCESEARCH_CHROMIUM)")
    blocked: list[str] = []
    requested: list[str] = []

    def route(r) -> None:
        url = r.request.url
        requested.append(url)
        if urlsplit(url).hostname in ("127.0.0.1", "localhost"):
            r.continue_()
        else:
            blocked.append(url)
            r.abort()

    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            page.route("**/*", route)
            page.goto(f"{server.url}/docs", wait_until="load", timeout=60_000)
            page.wait_for_selector(".opblock-summary-path", timeout=30_000)
            paths = [t.strip().replace("\u200b", "") for t in page.locator(".opblock-summary-path").all_inner_texts()]
            title = page.locator(".info .title").inner_text()
        finally:
            browser.close()
    assert "/v1/search" in paths and "/v1/clips/{clip_id}/similar" in paths and len(paths) >= 8
    assert "DanceSearch API" in title
    assert blocked == [], f"the docs page tried to reach {blocked}"
    assert any(u.endswith("/openapi.json") for u in requested)
