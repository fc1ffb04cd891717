"""`dancesearch demo --once` and `dancesearch ui` as real processes.

The demo test builds a tiny demo workspace (32 clips) through every layer's CLI, starts the real API and
runs one search; it is skipped with the reason when a layer it needs is not in this checkout yet.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

import ui_testserver  # tests/ is on sys.path (rootdir-relative test modules)
from ui.commands import DemoSettings, catalog_clip_count, dancesearch_cmd, missing_commands, port_is_free

ROOT = Path(__file__).resolve().parents[1]
MODEL_DIR = ROOT / "models" / "demo"
# Optional: a model run folder to use instead of models/demo (e.g. a quick `dancesearch train --epochs 1`)
TEST_RUN = os.environ.get("DANCESEARCH_TEST_RUN") or None


def demo_prerequisites() -> str | None:
    """Why the real stack cannot run here, or None when it can."""
    missing = missing_commands()
    if missing:
        return "demo needs layers not in this checkout yet: " + ", ".join(f"`{c}` ({w})" for c, w in missing.items())
    if TEST_RUN is None and not MODEL_DIR.is_dir():
        return f"no demo model at {MODEL_DIR} (or set DANCESEARCH_TEST_RUN to a run folder)"
    return None


def run_args() -> list[str]:
    return ["--run", TEST_RUN] if TEST_RUN else []


@pytest.mark.parametrize("stop", ["ctrl-c", "sigterm"])
def test_ui_command_serves_and_stops_on_ctrl_c(tmp_path: Path, stop: str) -> None:
    gen = ui_testserver.serve(seconds=1.0)
    api = next(gen)
    port = ui_testserver.free_port()
    proc = subprocess.Popen(dancesearch_cmd("ui", "--port", str(port), "--api-url", api.url), cwd=ROOT,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(iter(proc.stderr.readline, "")), daemon=True)
    reader.start()
    try:
        # ready = the command itself says so (it prints once streamlit answers its health check)
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and not any("DanceSearch UI on" in line for line in lines):
            if proc.poll() is not None:
                pytest.fail("`dancesearch ui` exited early:\n" + "".join(lines))
            time.sleep(0.2)
        if not any("DanceSearch UI on" in line for line in lines):
            pytest.fail("`dancesearch ui` did not come up")
        assert httpx.get(f"http://127.0.0.1:{port}/_stcore/health", timeout=5).status_code == 200
        if stop == "ctrl-c":
            os.killpg(proc.pid, signal.SIGINT)      # what Ctrl-C in a terminal does: the whole group
        else:
            proc.send_signal(signal.SIGTERM)        # a process manager stops the command alone
        proc.wait(timeout=30)
        reader.join(timeout=5)
        err = "".join(lines)
        assert proc.returncode in (0, 130), err
        assert f"DanceSearch UI on http://127.0.0.1:{port}" in err and api.url in err
        assert port_is_free("127.0.0.1", port)       # streamlit is gone too
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        next(gen, None)


def test_ui_command_refuses_a_busy_port() -> None:
    gen = ui_testserver.serve(seconds=1.0)
    api = next(gen)
    try:
        busy = int(api.url.rsplit(":", 1)[1])
        r = subprocess.run(dancesearch_cmd("ui", "--port", str(busy)), cwd=ROOT, capture_output=True, text=True,
                           timeout=60)
        assert r.returncode == 1 and f"port {busy} is in use" in r.stderr
    finally:
        next(gen, None)


@pytest.mark.slow
def test_demo_once_on_a_tiny_corpus(tmp_path: Path) -> None:
    reason = demo_prerequisites()
    if reason:
        pytest.skip(reason)
    home = tmp_path / "home"
    port = ui_testserver.free_port()
    r = subprocess.run(dancesearch_cmd("demo", "--once", "--json", "--home", str(home), "--port", str(port),
                                       "--clips", "32", "--query", "a slow waltz turning in circles", *run_args()),
                       cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stderr[-3000:]
    payload = json.loads(r.stdout)
    assert payload["query"] == "a slow waltz turning in circles" and payload["results"]
    assert [x["rank"] for x in payload["results"]] == list(range(1, len(payload["results"]) + 1))
    assert all(x["caption"] for x in payload["results"])
    assert catalog_clip_count(DemoSettings(home=home)) >= 1
    assert (home / "indexes" / "default").is_dir()
    assert port_is_free("127.0.0.1", port)          # the API was shut down
    # a second run reuses the workspace: no corpus, ingest or index step
    r2 = subprocess.run(dancesearch_cmd("demo", "--once", "--home", str(home), "--port", str(port), *run_args()),
                        cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert r2.returncode == 0, r2.stderr[-3000:]
    assert "demo: ingest" not in r2.stderr and "demo: index" not in r2.stderr
    assert "#1" in r2.stdout
