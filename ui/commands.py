"""``dancesearch ui`` (the Streamlit web UI) and ``dancesearch demo`` (the main job behind ``make demo``).

``demo`` makes a fresh clone useful in one command: it writes the procedural demo corpus
(``dancesearch corpus demo``) into HOME/demo_corpus unless a complete one is there, ingests it
(``dancesearch ingest npz``, idempotent: seconds when nothing changed), builds or updates the vector
index when the catalog changed or the index is missing (``dancesearch index build``), then starts the
API (``dancesearch serve``) and the UI as child processes, prints their URLs and waits for Ctrl-C,
after which both are shut down. ``--once`` stops after one example search (CI smoke).
Each step runs as its own ``dancesearch`` process, so every layer is used exactly as a user would.

Setup is resumable: the corpus counts as complete only when the generator's manifest (written after
every clip) is there and names files that all exist, and the ingest always runs, so a setup stopped
half-way (Ctrl-C, SIGTERM, a crash) is finished by the next ``demo`` instead of serving partial data.
Stopping ``demo`` while a step runs stops that step cleanly (it gets SIGINT, the stop every dancesearch
command cleans up after) and waits for it, so no worker process outlives it.
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import httpx

from encoders.atomic_io import ensure_dir
from encoders.cliutil import (EXIT_FAILED, EXIT_OK, add_common_options, bounded_number, emit, info, port_available,
                              positive_int, resolve_home, terminate_like_ctrl_c)
from encoders.errors import DanceSearchError

from .api_client import ApiClient, ApiError, SearchRequest
from .refine import EXAMPLE_QUERIES

APP_PATH = Path(__file__).resolve().with_name("app.py")
DEFAULT_API_PORT = 8000
DEFAULT_UI_PORT = 8501


_PORT = bounded_number(int, 1, 65535, "port")   # the demo and UI need a real port (no 0)


def register(subparsers: argparse._SubParsersAction) -> None:
    u = subparsers.add_parser("ui", help="run the Streamlit web UI against a search API",
                              description="Run the Streamlit web UI. It talks to the search API over HTTP only.")
    add_common_options(u)
    u.add_argument("--host", default="127.0.0.1", help="interface to bind (default 127.0.0.1)")
    u.add_argument("--port", type=_PORT, default=DEFAULT_UI_PORT, help=f"UI port (default {DEFAULT_UI_PORT})")
    u.add_argument("--api-url", default=None,
                   help=f"search API base URL (default $DANCESEARCH_API_URL or http://127.0.0.1:{DEFAULT_API_PORT})")
    u.add_argument("--public-api-url", default=None,
                   help="API URL as the browser sees it: audio then streams from there instead of being embedded")
    u.set_defaults(handler=cmd_ui)

    d = subparsers.add_parser("demo", help="build the demo corpus + index if needed, then serve the API and the UI",
                              description=__doc__.split("\n\n", 1)[1],
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    add_common_options(d)
    d.add_argument("--host", default="127.0.0.1", help="interface both servers bind (default 127.0.0.1)")
    d.add_argument("--port", type=_PORT, default=DEFAULT_API_PORT, help=f"API port (default {DEFAULT_API_PORT})")
    d.add_argument("--ui-port", type=_PORT, default=DEFAULT_UI_PORT, help=f"UI port (default {DEFAULT_UI_PORT})")
    d.add_argument("--no-ui", action="store_true", help="serve only the API")
    d.add_argument("--once", action="store_true",
                   help="build everything, run one example search, print the results and exit (CI smoke test)")
    d.add_argument("--query", default=EXAMPLE_QUERIES[0], help="the example search of --once")
    d.add_argument("--clips", type=positive_int, default=None, help="demo corpus size (default: the generator's)")
    d.add_argument("--run", type=Path, default=None, metavar="DIR", help="model run folder (default: models/demo)")
    d.add_argument("--startup-timeout", type=float, default=300.0, help="seconds to wait for each server (default 300)")
    d.set_defaults(handler=cmd_demo)


# --- settings and child processes -------------------------------------------------------------------
@dataclass(frozen=True)
class DemoSettings:
    """What ``demo`` builds and serves; one place for the ports, paths and timeouts."""

    home: Path
    host: str = "127.0.0.1"
    api_port: int = DEFAULT_API_PORT
    ui_port: int = DEFAULT_UI_PORT
    with_ui: bool = True
    clips: int | None = None
    run: Path | None = None
    startup_timeout_s: float = 300.0
    generate_warm_up: bool = True
    """Let the API load the generation models at start (off for ``--once``: one search, then shut down)."""

    @property
    def corpus_dir(self) -> Path:
        return self.home / "demo_corpus"

    @property
    def api_url(self) -> str:
        return f"http://{_client_host(self.host)}:{self.api_port}"

    @property
    def ui_url(self) -> str:
        return f"http://{_client_host(self.host)}:{self.ui_port}"


def _client_host(host: str) -> str:
    """Where a local client connects when a server binds ``host`` (0.0.0.0 / :: mean every interface)."""
    return "127.0.0.1" if host in ("0.0.0.0", "::", "") else host


def dancesearch_cmd(*args: str) -> list[str]:
    """A ``dancesearch`` command line using this interpreter (works without the console script on PATH)."""
    return [sys.executable, "-m", "ui.cli", *args]


def streamlit_cmd(host: str, port: int, api_url: str, public_api_url: str | None = None) -> list[str]:
    cmd = [sys.executable, "-m", "streamlit", "run", str(APP_PATH), "--server.address", host, "--server.port",
           str(port), "--server.headless", "true", "--browser.gatherUsageStats", "false",
           "--server.fileWatcherType", "none", "--client.toolbarMode", "viewer", "--", "--api-url", api_url]
    if public_api_url:
        cmd += ["--public-api-url", public_api_url]
    return cmd


def port_is_free(host: str, port: int) -> bool:
    """True when a server could bind ``host:port`` now (the one check serve, ui and demo share)."""
    return port_available(host, port)


def _repo_root() -> Path:
    return APP_PATH.parents[1]


def _child_env() -> dict[str, str]:
    """Children import this checkout even when it is not installed (the repository root goes on PYTHONPATH)."""
    env = dict(os.environ)
    root = str(_repo_root())
    env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return env


class Child:
    """A server child process with a readiness URL; stopping it is always safe to call twice."""

    def __init__(self, name: str, cmd: Sequence[str], ready_url: str, stop_signal: int | None = None) -> None:
        """``stop_signal``: what :meth:`stop` sends first; None is SIGINT (SIGTERM on Windows), the graceful stop
        of uvicorn and streamlit."""
        self.name = name
        self.ready_url = ready_url
        self.stop_signal = stop_signal if stop_signal is not None else (
            signal.SIGINT if os.name != "nt" else signal.SIGTERM)
        self.proc = subprocess.Popen(list(cmd), cwd=_repo_root(), env=_child_env(), stdin=subprocess.DEVNULL,
                                     stdout=sys.stderr)  # stdout is reserved for --json

    def wait_ready(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise DanceSearchError(f"the {self.name} exited during start-up (exit code {self.proc.returncode}); "
                                       "its message is above")
            try:
                if httpx.get(self.ready_url, timeout=2.0).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.25)
        raise DanceSearchError(f"the {self.name} did not become ready at {self.ready_url} within {timeout_s:.0f} s")

    def stop(self, timeout_s: float = 10.0) -> None:
        if self.proc.poll() is not None:
            return
        self.proc.send_signal(self.stop_signal)
        try:
            self.proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


# --- demo steps ------------------------------------------------------------------------------------
STEP_STOP_GRACE_S = 60.0      # a stopped step's time to clean up after SIGINT before SIGTERM, then SIGKILL
STEP_ESCALATE_S = 10.0


def run_step_process(cmd: Sequence[str], capture_stdout: bool = False) -> tuple[int, str]:
    """Run one setup step to completion; returns (exit code, its stdout when ``capture_stdout``).

    The step gets its own session, so a terminal's Ctrl-C reaches only ``demo``, which then stops the step
    exactly once. ``subprocess.run`` would SIGKILL the step 0.25 s after an interrupt, leaving the step's
    worker processes behind; instead the step gets SIGINT and the time to shut its workers down
    (:func:`stop_step`), and only then is the interrupt passed on.
    """
    proc = subprocess.Popen(list(cmd), cwd=_repo_root(), env=_child_env(), stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE if capture_stdout else sys.stderr, text=capture_stdout,
                            start_new_session=True)
    try:
        out, _ = proc.communicate()
    except BaseException:
        stop_step(proc)
        raise
    return proc.returncode, out or ""


def stop_step(proc: subprocess.Popen, grace_s: float = STEP_STOP_GRACE_S) -> None:
    """Stop a running step and wait for it: SIGINT (the clean stop: KeyboardInterrupt runs its cleanup),
    then SIGTERM and finally SIGKILL to its whole process group if it does not exit in time (or if
    ``demo`` is interrupted again while waiting).

    SIGINT rather than the SIGTERM ``demo`` may have received: Python's default SIGTERM action ends a
    process without any cleanup, and the corpus generator's pool workers would then outlive it.
    """
    for sig, wait_s in ((signal.SIGINT, grace_s), (signal.SIGTERM, STEP_ESCALATE_S), (signal.SIGKILL, STEP_ESCALATE_S)):
        if proc.poll() is not None:
            return
        try:
            if sig == signal.SIGINT:
                proc.send_signal(sig)
            else:
                os.killpg(proc.pid, sig)    # the step and whatever it started (it leads its own group)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            proc.wait(timeout=wait_s)
            return
        except subprocess.TimeoutExpired:
            continue
        except KeyboardInterrupt:   # asked to stop again: escalate now
            continue
    proc.poll()


def _run_step(what: str, args: Sequence[str], capture_json: bool = False) -> dict | None:
    info(f"demo: {what}: dancesearch {' '.join(args)}")
    # the steps' own output goes to stderr: stdout stays one JSON object under --json
    rc, out = run_step_process(dancesearch_cmd(*args), capture_stdout=capture_json)
    if rc != 0:
        raise DanceSearchError(f"demo step '{what}' failed (exit code {rc}); its message is above")
    if not capture_json:
        return None
    try:
        return json.loads(out)
    except ValueError:
        return None


def available_commands() -> set[str]:
    """Sub-command paths the installed layers provide, e.g. {"serve", "corpus demo", "index build"}."""
    from ui.cli import build_parser

    found: set[str] = set()

    def walk(parser: argparse.ArgumentParser, prefix: str) -> None:
        for action in parser._actions:  # argparse offers no public way to list sub-commands
            if isinstance(action, argparse._SubParsersAction):
                for name, sub in action.choices.items():
                    path = f"{prefix} {name}".strip()
                    found.add(path)
                    walk(sub, path)

    walk(build_parser(), "")
    return found


REQUIRED_COMMANDS = {"corpus demo": "the demo corpus generator (generation layer)",
                     "ingest": "ingestion (indexer layer)", "index build": "the index builder (indexer layer)",
                     "serve": "the search API (search_api layer)"}


def missing_commands() -> dict[str, str]:
    have = available_commands()
    return {cmd: who for cmd, who in REQUIRED_COMMANDS.items() if cmd not in have}


def catalog_clip_count(settings: DemoSettings) -> int:
    from indexer.catalog import Catalog
    from indexer.workspace import Workspace

    ws = Workspace(settings.home)
    if not ws.catalog_path.exists():
        return 0
    with Catalog(ws.db_url, create=False) as catalog:
        try:
            return catalog.count()
        except Exception:   # noqa: BLE001 - a catalog file without tables counts as empty
            return 0


@dataclass(frozen=True)
class CorpusState:
    """How much of the demo corpus is on disk."""

    complete: bool
    files: int                   # clip .npz files present
    expected: int | None         # clips the generator's manifest lists (None: no usable manifest)
    planned: int | None          # the --clips it was generated for
    reason: str                  # why it is incomplete ("" when complete)


def corpus_state(corpus_dir: Path) -> CorpusState:
    """Complete = the manifest ``corpus demo`` writes after the last clip is there and every clip it lists
    has its .npz and .ogg. Why not "any .npz exists": an interrupted generator leaves some clips and no
    manifest, and serving those means whole genres missing."""
    from generation.procedural.corpus import MANIFEST

    files = sum(1 for _ in corpus_dir.glob("*.npz")) if corpus_dir.is_dir() else 0
    path = corpus_dir / MANIFEST
    if not path.is_file():
        return CorpusState(False, files, None, None, f"{files} clip files and no manifest: generation did not finish"
                           if files else "not generated yet")
    try:
        manifest = json.loads(path.read_text())
        names = [str(n) for n in manifest["clips"]]
        planned = manifest.get("parameters", {}).get("planned_clips")
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        return CorpusState(False, files, None, None, f"unreadable manifest {path} ({exc})")
    missing = [n for n in names if not (corpus_dir / f"{n}.npz").is_file() or not (corpus_dir / f"{n}.ogg").is_file()]
    if missing or manifest.get("num_clips") != len(names):
        return CorpusState(False, files, len(names), planned,
                           f"{len(missing)} of the {len(names)} clips its manifest lists are missing")
    return CorpusState(True, files, len(names), planned, "")


def index_is_current(settings: DemoSettings, clips_in_catalog: int) -> bool:
    """The live index (its manifest is written last) exists and holds every catalog clip."""
    manifest = settings.home / "indexes" / "default" / "manifest.json"
    try:
        return int(json.loads(manifest.read_text()).get("count", -1)) == clips_in_catalog
    except (OSError, ValueError, TypeError, AttributeError):
        return False


def ensure_demo_workspace(settings: DemoSettings) -> None:
    """Demo corpus -> catalog -> index; resumes a setup that was stopped half-way.

    The corpus is generated unless a complete one is there (:func:`corpus_state`); the ingest always runs
    (idempotent; a second run only checks fingerprints, see README for the time it takes); the index is
    built or updated when the ingest changed something or the index does not hold every catalog clip.
    """
    missing = missing_commands()
    if missing:
        raise DanceSearchError("demo needs " + ", ".join(f"`dancesearch {c}` ({w})" for c, w in missing.items())
                               + ", which this installation lacks")
    home = str(settings.home)
    run_opt = ["--run", str(settings.run)] if settings.run else []
    state = corpus_state(settings.corpus_dir)
    in_catalog = catalog_clip_count(settings)
    if not state.complete:
        if state.files or in_catalog:
            info(f"demo: the workspace {home} is incomplete ({state.reason}; {in_catalog} clips in the catalog), "
                 "probably from an interrupted setup: finishing it")
        clips = ["--clips", str(settings.clips)] if settings.clips else []
        _run_step("demo corpus", ["corpus", "demo", "--out", str(settings.corpus_dir), *clips])
        state = corpus_state(settings.corpus_dir)
        if not state.complete:
            raise DanceSearchError(f"the demo corpus at {settings.corpus_dir} is still incomplete after generating "
                                   f"it ({state.reason}); delete that folder and run demo again")
    elif settings.clips and state.planned is not None and settings.clips != state.planned:
        info(f"demo: --clips {settings.clips} ignored: {settings.corpus_dir} already holds a complete "
             f"{state.planned}-clip corpus (use another --home, or delete {home}, for a new one)")
    report = _run_step("ingest", ["ingest", "npz", str(settings.corpus_dir), "--home", home, "--json"],
                       capture_json=True) or {}
    done = int(report.get("sequences", 0))
    info(f"demo: ingest: {done} sequences, {report.get('clips', 0)} clips ({report.get('unchanged', 0)} unchanged)")
    if state.expected is not None and done < state.expected:
        raise DanceSearchError(f"the demo workspace {home} is incomplete: {done} of the corpus' {state.expected} "
                               "clips were ingested; run demo again, or delete the workspace to start over")
    changed = report.get("unchanged") != done
    in_catalog = catalog_clip_count(settings)
    if changed or not index_is_current(settings, in_catalog):
        _run_step("index", ["index", "build", "--home", home, *run_opt])


def start_api(settings: DemoSettings) -> Child:
    if not port_is_free(settings.host, settings.api_port):
        raise DanceSearchError(f"port {settings.api_port} is in use: pass --port to choose another for the API")
    run_opt = ["--run", str(settings.run)] if settings.run else []
    if not settings.generate_warm_up:
        run_opt.append("--no-generate-warm-up")
    # SIGTERM, not SIGINT: uvicorn shuts down just as gracefully on either, then re-raises the signal; a re-raised
    # SIGINT reaches `dancesearch serve` as a Ctrl-C and prints "interrupted" to the demo's user, who pressed
    # nothing, while SIGTERM ends the finished server quietly.
    child = Child("search API", dancesearch_cmd("serve", "--home", str(settings.home), "--host", settings.host,
                                                "--port", str(settings.api_port), *run_opt),
                  f"{settings.api_url}/readyz", stop_signal=signal.SIGTERM)
    return _ready_or_stopped(child, settings.startup_timeout_s)


def start_ui(settings: DemoSettings) -> Child:
    if not port_is_free(settings.host, settings.ui_port):
        raise DanceSearchError(f"port {settings.ui_port} is in use: pass --ui-port to choose another for the UI")
    child = Child("web UI", streamlit_cmd(settings.host, settings.ui_port, settings.api_url),
                  f"{settings.ui_url}/_stcore/health")
    return _ready_or_stopped(child, settings.startup_timeout_s)


def _ready_or_stopped(child: Child, timeout_s: float) -> Child:
    """Wait until ``child`` answers its health URL; stop it if it never does (or on Ctrl-C)."""
    try:
        child.wait_ready(timeout_s)
    except BaseException:
        child.stop()
        raise
    return child


def example_search(api_url: str, query: str, k: int = 5) -> dict:
    """One search through the API client (what the UI does); the payload ``--once`` prints."""
    with ApiClient(api_url) as client:
        resp = client.search(SearchRequest(q=query, k=k))
    return {"api_url": api_url, "query": query, "no_match": resp.no_match, "model": resp.model,
            "took_ms": resp.took_ms,
            "results": [{"rank": r.rank, "id": r.id, "key": r.key, "score": r.score, "genre": r.genre, "bpm": r.bpm,
                         "caption": r.caption} for r in resp.results]}


def _print_search(payload: dict) -> None:
    print(f"search \"{payload['query']}\" ({payload['model']}, {payload['took_ms'] or 0:.0f} ms"
          + (", low confidence" if payload["no_match"] else "") + "):")
    for r in payload["results"]:
        bpm = f"{r['bpm']:.0f} BPM" if r["bpm"] is not None else "- BPM"
        print(f"  #{r['rank']}  {r['score']:.3f}  {r['genre'] or '-':<10} {bpm:>8}  {r['caption']}")


# --- handlers --------------------------------------------------------------------------------------
def _terminate_like_ctrl_c() -> None:
    """Make SIGTERM (process managers, `kill`) stop the command the way Ctrl-C does: children shut down too."""
    terminate_like_ctrl_c()


def cmd_ui(args: argparse.Namespace) -> int:
    _terminate_like_ctrl_c()
    api_url = args.api_url or os.environ.get("DANCESEARCH_API_URL") or f"http://127.0.0.1:{DEFAULT_API_PORT}"
    if not port_is_free(args.host, args.port):
        raise DanceSearchError(f"port {args.port} is in use: pass --port to choose another")
    child = Child("web UI", streamlit_cmd(args.host, args.port, api_url, args.public_api_url),
                  f"http://{_client_host(args.host)}:{args.port}/_stcore/health")
    try:
        child.wait_ready(120.0)
        info(f"DanceSearch UI on http://{_client_host(args.host)}:{args.port} (search API: {api_url}); Ctrl-C stops it")
        return child.proc.wait()
    except KeyboardInterrupt:
        return EXIT_OK
    finally:
        child.stop()


def cmd_demo(args: argparse.Namespace) -> int:
    _terminate_like_ctrl_c()
    settings = DemoSettings(home=resolve_home(args.home), host=args.host, api_port=args.port, ui_port=args.ui_port,
                            with_ui=not (args.no_ui or args.once), clips=args.clips, run=args.run,
                            startup_timeout_s=args.startup_timeout, generate_warm_up=not args.once)
    ensure_dir(settings.home)
    ensure_demo_workspace(settings)
    children: list[Child] = []
    try:
        children.append(start_api(settings))
        if args.once:
            try:
                payload = example_search(settings.api_url, args.query)
            except ApiError as exc:
                raise DanceSearchError(f"the example search failed: {exc}") from exc
            emit(args, payload, lambda: _print_search(payload))
            return EXIT_OK if payload["results"] else EXIT_FAILED
        if settings.with_ui:
            children.append(start_ui(settings))
        print(f"DanceSearch API: {settings.api_url}  (OpenAPI docs: {settings.api_url}/docs)", flush=True)
        if settings.with_ui:
            print(f"DanceSearch UI:  {settings.ui_url}", flush=True)
        print("Press Ctrl-C to stop.", flush=True)
        while all(c.proc.poll() is None for c in children):
            time.sleep(0.5)
        dead = next(c for c in children if c.proc.poll() is not None)
        info(f"demo: the {dead.name} stopped (exit code {dead.proc.returncode}); shutting down")
        return EXIT_FAILED
    except KeyboardInterrupt:
        info("demo: stopping")
        return EXIT_OK
    finally:
        for child in reversed(children):
            child.stop()
