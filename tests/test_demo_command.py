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


@pytest.mark.parametrize("stop", ["ctrl-c", pytest.param("sigterm", marks=pytest.mark.slow)])
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
    assert "interrupted" not in r.stderr             # the demo stopped its own server: nobody pressed Ctrl-C
    # a second run reuses the workspace: no corpus, ingest or index step
    r2 = subprocess.run(dancesearch_cmd("demo", "--once", "--home", str(home), "--port", str(port), *run_args()),
                        cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert r2.returncode == 0, r2.stderr[-3000:]
    # (the idempotent ingest always runs: it is what finishes an interrupted setup)
    assert "demo: demo corpus" not in r2.stderr and "demo: index" not in r2.stderr
    assert "demo: ingest: 32 sequences, 32 clips (32 unchanged)" in r2.stderr
    assert "#1" in r2.stdout


def test_a_child_is_stopped_with_its_own_signal(tmp_path: Path) -> None:
    """The API child is stopped with SIGTERM (uvicorn re-raises the signal it shut down on; a SIGINT would print
    "interrupted"); other children keep the Ctrl-C stop."""
    import signal
    import sys
    import time

    from ui.commands import Child

    script = ("import signal, sys, time, pathlib\n"
              "signal.signal(signal.SIGTERM, lambda *a: sys.exit(15))\n"
              "signal.signal(signal.SIGINT, lambda *a: sys.exit(2))\n"
              f"pathlib.Path({str(tmp_path)!r}, sys.argv[1]).touch()\n"
              "time.sleep(60)\n")
    for name, stop_signal, code in (("term", signal.SIGTERM, 15), ("int", None, 2)):
        child = Child(name, [sys.executable, "-c", script, name], "http://127.0.0.1:9/unused", stop_signal=stop_signal)
        deadline = time.monotonic() + 30
        while not (tmp_path / name).exists() and time.monotonic() < deadline:   # its handlers are installed
            time.sleep(0.05)
        child.stop()
        assert child.proc.returncode == code


# --- issue 18 item 1: an interrupted setup is finished, never served -------------------------------------
def _fake_steps(monkeypatch: pytest.MonkeyPatch, settings: DemoSettings, ingest_report: dict) -> list[str]:
    """Record the steps ensure_demo_workspace runs; the corpus step really writes the (tiny) corpus."""
    from generation.procedural.corpus import write_demo_corpus
    from ui import commands

    calls: list[str] = []

    def run_step(what: str, args: list[str], capture_json: bool = False) -> dict | None:
        calls.append(what)
        if what == "demo corpus":
            write_demo_corpus(settings.corpus_dir, clips=4, workers=1, progress=False, datasheet=False)
        return dict(ingest_report) if what == "ingest" else None

    monkeypatch.setattr(commands, "_run_step", run_step)
    monkeypatch.setattr(commands, "missing_commands", lambda: {})
    return calls


def _catalog_with_clips(home: Path, n: int) -> None:
    from indexer.catalog import ClipRow, SequenceRow
    from indexer.workspace import Workspace

    cat = Workspace(home).ensure().catalog()
    for i in range(n):
        cat.replace_sequence(SequenceRow("npz", f"s{i}", None, "waltz", None, 30.0, 360, 90.0, True, "train"),
                             [ClipRow(0, 0, 360, 12.0, f"media/npz/s{i}/0.motion.npz", None, None)],
                             content_changed=False)
    cat.close()


def test_interrupted_corpus_generation_is_finished_not_served(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                             capsys: pytest.CaptureFixture) -> None:
    from generation.procedural.corpus import write_demo_corpus
    from ui.commands import corpus_state, ensure_demo_workspace

    settings = DemoSettings(home=tmp_path / "home", clips=4)
    # what Ctrl-C during `corpus demo` + ingest left: some clip files, no manifest, some clips in the catalog
    write_demo_corpus(settings.corpus_dir, clips=4, workers=1, progress=False, datasheet=False)
    (settings.corpus_dir / "manifest.json").unlink()
    for f in settings.corpus_dir.glob("breaking_*"):
        f.unlink()
    _catalog_with_clips(settings.home, 2)
    assert not corpus_state(settings.corpus_dir).complete
    calls = _fake_steps(monkeypatch, settings, {"sequences": 4, "clips": 4, "unchanged": 2, "failed": []})
    ensure_demo_workspace(settings)
    assert calls == ["demo corpus", "ingest", "index"]
    assert "is incomplete" in capsys.readouterr().err
    assert corpus_state(settings.corpus_dir).complete


def test_interrupted_ingest_is_finished(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from generation.procedural.corpus import write_demo_corpus
    from ui.commands import ensure_demo_workspace

    settings = DemoSettings(home=tmp_path / "home")
    write_demo_corpus(settings.corpus_dir, clips=4, workers=1, progress=False, datasheet=False)
    _catalog_with_clips(settings.home, 2)           # the ingest was stopped after 2 of 4 sequences
    calls = _fake_steps(monkeypatch, settings, {"sequences": 4, "clips": 4, "unchanged": 2, "failed": []})
    ensure_demo_workspace(settings)
    assert calls == ["ingest", "index"]


def test_complete_workspace_only_rechecks_the_catalog(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from generation.procedural.corpus import write_demo_corpus
    from ui.commands import ensure_demo_workspace

    settings = DemoSettings(home=tmp_path / "home")
    write_demo_corpus(settings.corpus_dir, clips=4, workers=1, progress=False, datasheet=False)
    _catalog_with_clips(settings.home, 4)
    index_dir = settings.home / "indexes" / "default"
    index_dir.mkdir(parents=True)
    (index_dir / "manifest.json").write_text(json.dumps({"count": 4}))
    calls = _fake_steps(monkeypatch, settings, {"sequences": 4, "clips": 4, "unchanged": 4, "failed": []})
    ensure_demo_workspace(settings)
    assert calls == ["ingest"]
    # an index that misses catalog clips (its build was interrupted, or it is from before) is brought up to date
    (index_dir / "manifest.json").write_text(json.dumps({"count": 3}))
    calls.clear()
    ensure_demo_workspace(settings)
    assert calls == ["ingest", "index"]


def test_an_ingest_that_misses_clips_is_not_served(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from generation.procedural.corpus import write_demo_corpus
    from encoders.errors import DanceSearchError
    from ui.commands import ensure_demo_workspace

    settings = DemoSettings(home=tmp_path / "home")
    write_demo_corpus(settings.corpus_dir, clips=4, workers=1, progress=False, datasheet=False)
    calls = _fake_steps(monkeypatch, settings, {"sequences": 3, "clips": 3, "unchanged": 0, "failed": []})
    with pytest.raises(DanceSearchError, match="3 of the corpus' 4 clips"):
        ensure_demo_workspace(settings)
    assert "index" not in calls


# --- issue 18 item 6: stopping demo stops its running step cleanly -----------------------------------------
STEP_CHILD = """
import signal, sys, time
from pathlib import Path
marker = Path(sys.argv[1])
marker.with_suffix(".started").write_text("1")
try:
    time.sleep(60)
except KeyboardInterrupt:          # SIGINT: clean up (slowly), then leave
    time.sleep(1.0)
    marker.write_text("cleaned up")
    sys.exit(130)
"""

STEP_PARENT = """
import sys
from ui.commands import _terminate_like_ctrl_c, run_step_process
_terminate_like_ctrl_c()
try:
    run_step_process([sys.executable, "-c", sys.argv[1], sys.argv[2]])
except KeyboardInterrupt:
    print("parent: interrupted after the step exited", flush=True)
    sys.exit(130)
"""


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_stopping_demo_stops_the_step_and_waits_for_it(tmp_path: Path, sig: signal.Signals) -> None:
    marker = tmp_path / "step.done"
    # Output goes to files, not pipes: a process forked elsewhere in the test session while this one starts
    # would inherit a pipe's write end and keep communicate() waiting for an EOF that never comes (CI saw a
    # 60-s timeout after the parent had printed its last line). wait() only waits for the parent itself.
    out_path, err_path = tmp_path / "parent.out", tmp_path / "parent.err"
    with open(out_path, "w") as out_f, open(err_path, "w") as err_f:
        proc = subprocess.Popen([sys.executable, "-c", STEP_PARENT, STEP_CHILD, str(marker)], cwd=ROOT,
                                stdout=out_f, stderr=err_f, text=True)
    try:
        deadline = time.monotonic() + 60
        while not marker.with_suffix(".started").exists():
            assert proc.poll() is None and time.monotonic() < deadline, err_path.read_text()
            time.sleep(0.05)
        proc.send_signal(sig)
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    out, err = out_path.read_text(), err_path.read_text()
    assert proc.returncode == 130, err
    # the step got the stop, cleaned up, and demo returned only after that (subprocess.run would SIGKILL it)
    assert marker.read_text() == "cleaned up"
    assert "interrupted after the step exited" in out
