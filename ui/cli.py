"""The `dancesearch` command: one entry point whose sub-commands come from every layer.

Each layer owns its sub-commands in a ``cli`` module with ``register(subparsers)``; this
module only assembles them and turns errors into messages and exit codes.
"""
from __future__ import annotations

import argparse
import importlib
import sys
from typing import Sequence

from encoders.atomic_io import storage_error
from encoders.cliutil import EXIT_FAILED, EXIT_USAGE, UsageError
from encoders.errors import DanceSearchError

# Modules that contribute sub-commands, in the order their commands appear in --help.
COMMAND_MODULES: tuple[str, ...] = (
    "indexer.cli",
    "generation.cli",
    "indexer.index_cli",
    "indexer.train_cli",
    "eval.cli",
    "search_api.cli",
    "ui.commands",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dancesearch",
        description="DanceSearch: search 3D dance clips (with their music) by text description or genre.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    handler = getattr(args, "handler", None)
    if handler is None:
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    try:
        return int(handler(args) or 0)
    except UsageError as exc:   # a bad value argparse could not check: same exit code as its own errors
        print(f"{parser.prog} {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except DanceSearchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except OSError as exc:
        # a full / read-only / forbidden disk reached by a write outside encoders.atomic_io (a library
        # writing its own files): one message, no traceback. Any other OSError is a bug worth its traceback.
        err = storage_error(exc)
        if err is None:
            raise
        print(f"error: {err}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
