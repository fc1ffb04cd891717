"""Issue 18 item 6: `dancesearch ingest`'s feature workers never outlive it.

Real processes: a small real demo corpus, `dancesearch ingest --workers 2` in a subprocess, SIGKILL (or
SIGTERM) once its workers are analysing music, then the workers and the multiprocessing resource tracker
must be gone within seconds (before the fix they waited for work forever, ~340 MB each). Processes are found through
/proc (psutil is not a dependency).
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs Linux /proc")


def _stat(pid: int) -> tuple[str, int] | None:
    """(state, parent pid) of a process, None when it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2:].split()
    return fields[0], int(fields[1])


def _descendants(root: int) -> set[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            st = _stat(int(entry.name))
            if st is not None:
                children.setdefault(st[1], []).append(int(entry.name))
    out: set[int] = set()
    todo = [root]
    while todo:
        for c in children.get(todo.pop(), []):
            if c not in out:
                out.add(c)
                todo.append(c)
    return out


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def _alive(pid: int) -> bool:
    st = _stat(pid)
    return st is not None and st[0] not in ("Z", "X")     # a zombie has exited; only its parent must reap it


@pytest.mark.parametrize("sig", [signal.SIGKILL, pytest.param(signal.SIGTERM, marks=pytest.mark.slow)])
def test_workers_exit_when_the_ingest_is_killed(tmp_path: Path, sig: signal.Signals) -> None:
    """SIGKILL: the workers notice their parent is gone. SIGTERM: the ingest stops like Ctrl-C and shuts
    its pool down (exit 130) instead of vanishing without cleanup."""
    from generation.procedural.corpus import write_demo_corpus

    corpus = tmp_path / "corpus"
    write_demo_corpus(corpus, clips=16, workers=1, progress=False, datasheet=False)
    home = tmp_path / "home"
    cache = home / "cache" / "features"
    proc = subprocess.Popen([sys.executable, "-m", "ui.cli", "ingest", "npz", str(corpus), "--home", str(home),
                             "--workers", "2", "--json"], cwd=ROOT, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, start_new_session=True)
    family: set[int] = set()
    try:
        deadline = time.monotonic() + 240
        workers: set[int] = set()
        # wait until the workers have done some tasks (the ingest analyses the first sequence itself, then
        # starts them), so they are past their start-up and wait for or run work
        while time.monotonic() < deadline and proc.poll() is None:
            workers = {p for p in _descendants(proc.pid) if "spawn_main" in _cmdline(p)}
            if len(workers) >= 2 and cache.is_dir() and len(list(cache.iterdir())) >= 4:
                break
            time.sleep(0.05)
        if proc.poll() is not None:
            pytest.fail("the ingest finished before its workers could be seen; make the corpus larger:\n"
                        + proc.stderr.read().decode(errors="replace")[-2000:])
        family = _descendants(proc.pid)
        assert len([p for p in family if "spawn_main" in _cmdline(p)]) >= 2, [_cmdline(p) for p in family]
        assert any("resource_tracker" in _cmdline(p) for p in family), [_cmdline(p) for p in family]
        os.kill(proc.pid, sig)
        rc = proc.wait(timeout=60)
        assert rc == (-signal.SIGKILL if sig == signal.SIGKILL else 130), proc.stderr.read().decode()[-2000:]
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and any(_alive(p) for p in family):
            time.sleep(0.1)
        left = {p: _cmdline(p) for p in family if _alive(p)}
        assert not left, f"processes outlived the killed ingest: {left}"
    finally:
        for p in family | ({proc.pid} if proc.poll() is None else set()):
            if _alive(p):
                os.kill(p, signal.SIGKILL)
        if proc.poll() is None:
            proc.wait()

