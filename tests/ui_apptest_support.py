"""The UI page under Streamlit's AppTest, for the page-level tests (tests/ is on sys.path)."""
from __future__ import annotations

from pathlib import Path

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

APP = str(Path(__file__).resolve().parents[1] / "ui" / "app.py")


def open_app(monkeypatch: pytest.MonkeyPatch, url: str, key: str | None = None) -> AppTest:
    """The page pointed at the API at ``url`` (with API key ``key``, or none), caches cleared, first run done."""
    monkeypatch.setenv("DANCESEARCH_API_URL", url)
    if key:
        monkeypatch.setenv("DANCESEARCH_API_KEY", key)
    else:
        monkeypatch.delenv("DANCESEARCH_API_KEY", raising=False)
    st.cache_data.clear()
    st.cache_resource.clear()
    at = AppTest.from_file(APP, default_timeout=60)
    at.run()
    assert not at.exception, at.exception
    return at


def search(at: AppTest, text: str) -> AppTest:
    """Type ``text`` into the search box and press Search."""
    at.text_input(key="q_input").set_value(text)
    next(b for b in at.button if b.label == "Search").click().run()
    assert not at.exception, at.exception
    return at
