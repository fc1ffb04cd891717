"""Conventions every `dancesearch` sub-command follows, shared by all layers.

- ``--home DIR`` (or ``DANCESEARCH_HOME``, default ``./.dancesearch``) on every sub-command;
- ``--json`` prints exactly one JSON object on stdout; human text and progress go to stderr;
- exit codes: 0 ok, 1 partial or failed work, 2 usage error (argparse's own convention). A value that
  argparse cannot check (it needs the index, or two options together) raises :class:`UsageError` from
  the handler; ``ui/cli.py`` prints it like argparse's own errors and exits 2.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import signal
import socket
import sys
from pathlib import Path
from contextlib import contextmanager
from typing import Any, Callable, Iterator

from .errors import DanceSearchError

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2

DEFAULT_HOME = ".dancesearch"


class UsageError(DanceSearchError):
    """A bad argument value found after parsing (exit code 2, like argparse's own usage errors)."""


def add_common_options(parser: argparse.ArgumentParser) -> None:
    """Options every sub-command accepts."""
    parser.add_argument("--home", type=Path, default=None,
                        help=f"workspace directory (default: $DANCESEARCH_HOME or ./{DEFAULT_HOME})")
    parser.add_argument("--json", action="store_true", help="print one JSON object on stdout")


def resolve_home(home: Path | str | None) -> Path:
    if home is not None:
        return Path(home).expanduser().resolve()
    return Path(os.environ.get("DANCESEARCH_HOME", DEFAULT_HOME)).expanduser().resolve()


def emit(args: argparse.Namespace, payload: dict[str, Any], human: Callable[[], None] | None = None) -> None:
    """Print ``payload`` as JSON when ``--json`` was given, else run ``human`` (which prints to stderr/stdout)."""
    if getattr(args, "json", False):
        sys.stdout.write(json.dumps(payload, default=str) + "\n")
        sys.stdout.flush()
    elif human is not None:
        human()
    else:
        sys.stdout.write(json.dumps(payload, indent=2, default=str) + "\n")


def progress_enabled(args: argparse.Namespace) -> bool:
    """Progress bars go to stderr; they are hidden with --json only when stderr is not a terminal."""
    return not getattr(args, "json", False) or sys.stderr.isatty()


def info(msg: str) -> None:
    print(msg, file=sys.stderr)



def bounded_number(kind: type, low: float | None, high: float | None, what: str) -> Callable[[str], Any]:
    """argparse type: a number of ``kind`` (int or float) within [low, high], with a message naming ``what``."""
    def parse(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{what}: not {'an integer' if kind is int else 'a number'}: "
                                             f"{text!r}") from None
        if isinstance(value, float) and not math.isfinite(value):   # nan passes every comparison below
            raise argparse.ArgumentTypeError(f"{what} must be a finite number, got {text!r}")
        if (low is not None and value < low) or (high is not None and value > high):
            bounds = f"at least {low}" if high is None else f"within {low}..{high}"
            raise argparse.ArgumentTypeError(f"{what} must be {bounds}, got {value}")
        return value

    return parse


positive_int = bounded_number(int, 1, None, "value")
port_number = bounded_number(int, 0, 65535, "port")
non_negative_int = bounded_number(int, 0, None, "value")


def port_available(host: str, port: int) -> bool:
    """True when a server could bind ``host:port`` now.

    SO_REUSEADDR is set as uvicorn and Streamlit set it, so a port whose old connections linger in
    TIME_WAIT counts as free (the server would bind it) while one with a listening socket does not.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        if os.name != "nt":
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def _raise_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _can_set_signals() -> bool:
    import threading

    return hasattr(signal, "SIGTERM") and threading.current_thread() is threading.main_thread()


def terminate_like_ctrl_c() -> None:
    """Make SIGTERM (``kill``, process managers) stop this process the way Ctrl-C does, for good: for the
    long-running commands (``demo``, ``ui``) whose ``finally`` blocks stop their child processes.

    Also gives SIGINT back its Ctrl-C meaning when the process inherited it ignored: a shell starts
    background jobs (``cmd &`` in a script) with SIGINT ignored, and Python then installs no
    KeyboardInterrupt handler, so neither this command nor the steps it stops with SIGINT (which inherit an
    ignored SIGINT through exec, but not a handler) would ever stop cleanly.
    """
    if _can_set_signals():
        signal.signal(signal.SIGTERM, _raise_interrupt)
        if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
            signal.signal(signal.SIGINT, signal.default_int_handler)


@contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """Within the block, SIGTERM (``kill``, ``demo`` stopping a step) raises ``KeyboardInterrupt`` like Ctrl-C.

    Why: Python's default SIGTERM action ends the process without running ``finally`` blocks, so a worker
    pool is never shut down and a temporary file never removed. The previous handler is restored after
    the block (the command may run inside a longer-lived process, e.g. a test).
    """
    if not _can_set_signals():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
