"""Conventions every `dancesearch` sub-command follows, shared by all layers.

- ``--home DIR`` (or ``DANCESEARCH_HOME``, default ``./.dancesearch``) on every sub-command;
- ``--json`` prints exactly one JSON object on stdout; human text and progress go to stderr;
- exit codes: 0 ok, 1 partial or failed work, 2 usage error (argparse's own convention).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any, Callable

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2

DEFAULT_HOME = ".dancesearch"


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
        if (low is not None and value < low) or (high is not None and value > high):
            bounds = f"at least {low}" if high is None else f"within {low}..{high}"
            raise argparse.ArgumentTypeError(f"{what} must be {bounds}, got {value}")
        return value

    return parse


positive_int = bounded_number(int, 1, None, "value")
port_number = bounded_number(int, 0, 65535, "port")
