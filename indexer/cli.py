"""``dancesearch ingest KIND PATH`` and ``dancesearch corpus stats``.

``corpus`` is a command group other layers add actions to (``generation.cli`` adds ``corpus demo``):
they call :func:`get_corpus_subparsers`, which creates the group on first use and returns it afterwards.
"""
from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path
from typing import Any

from encoders.cliutil import (EXIT_FAILED, EXIT_OK, EXIT_USAGE, add_common_options, emit, progress_enabled,
                              sigterm_as_interrupt)
from encoders.errors import DanceSearchError

from .sources import KINDS

_CORPUS_ATTR = "_dancesearch_corpus_actions"


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not (value > 0 and math.isfinite(value)):
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text!r}")
    return value


def add_db_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--db", metavar="URL", default=None,
                        help="catalog database URL (default: sqlite:///HOME/catalog.sqlite; "
                             "e.g. postgresql+psycopg://user@host/db)")


def get_corpus_subparsers(subparsers: argparse._SubParsersAction) -> argparse._SubParsersAction:
    """The ``corpus`` command's action group, created on first call (shared by every layer)."""
    parser = subparsers.choices.get("corpus")
    if parser is None:
        parser = subparsers.add_parser("corpus", help="inspect or build the clip corpus",
                                       description="Corpus actions: statistics of the catalog, demo corpus, ...")
        actions = parser.add_subparsers(dest="corpus_action", metavar="ACTION")
        actions.required = True
        setattr(parser, _CORPUS_ATTR, actions)
    return getattr(parser, _CORPUS_ATTR)


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "ingest", help="ingest a dataset folder into the clip catalog",
        description="Cut every sequence of PATH into clips, write their motion / music / audio files under "
                    "HOME/media and record them in the catalog. Re-running is idempotent.")
    p.add_argument("kind", metavar="KIND", choices=KINDS, help=f"source format: {', '.join(KINDS)}")
    p.add_argument("path", metavar="PATH", type=Path, help="dataset folder (or a single file for bvh / npz)")
    p.add_argument("--captions", type=Path, default=None, metavar="FILE", help="captions JSON Lines file")
    p.add_argument("--clip-seconds", type=_positive_float, default=12.0, metavar="S", help="clip length in seconds (default 12)")
    p.add_argument("--stride-seconds", type=_positive_float, default=None, metavar="S",
                   help="seconds between clip starts (default: the clip length, no overlap)")
    p.add_argument("--source", default=None, metavar="NAME", help="corpus name used in clip keys and media paths (default: KIND)")
    p.add_argument("--workers", type=int, default=None, metavar="N",
                   help="processes for music analysis (default: CPU count, at most 4; 1 = sequential)")
    add_db_option(p)
    add_common_options(p)
    p.set_defaults(handler=cmd_ingest)

    corpus = get_corpus_subparsers(subparsers)
    s = corpus.add_parser("stats", help="counts of clips per genre, split, source and tag",
                          description="Counts of the catalog's clips per genre, split, source and tag value.")
    add_db_option(s)
    add_common_options(s)
    s.set_defaults(handler=cmd_corpus_stats)

    from .media_check import register as register_check  # `dancesearch check`: broken clip media

    register_check(subparsers)


def _err(msg: str) -> None:
    print(f"error: {msg}", file=sys.stderr)


def cmd_ingest(args: argparse.Namespace) -> int:
    from .ingest import ingest
    from .workspace import Workspace


    if not args.path.exists():
        _err(f"PATH {args.path} does not exist")
        return EXIT_USAGE
    if args.captions is not None and not args.captions.is_file():
        _err(f"--captions {args.captions} is not a file")
        return EXIT_USAGE
    if args.workers is None:
        from .ingest import default_workers

        args.workers = default_workers()
    if args.workers < 1:
        _err(f"--workers must be at least 1, got {args.workers}")
        return EXIT_USAGE
    ws = Workspace.from_args(args)
    with sigterm_as_interrupt():   # `kill` / demo stopping a step: the worker pool is shut down, temp files removed
        report = ingest(ws, args.kind, args.path, captions_file=args.captions, clip_seconds=args.clip_seconds,
                        stride_seconds=args.stride_seconds, progress=progress_enabled(args), source=args.source,
                        workers=args.workers)
    for w in report.warnings:
        print(f"warning: {w}", file=sys.stderr)

    def human() -> None:
        from rich.console import Console
        from rich.table import Table

        console = Console(stderr=True)
        table = Table(title=f"ingest {args.kind} {args.path}")
        table.add_column("sequences", justify="right")
        table.add_column("clips", justify="right")
        table.add_column("unchanged", justify="right")
        table.add_column("failed", justify="right")
        table.add_row(str(report.sequences), str(report.clips), str(report.unchanged), str(len(report.failed)))
        console.print(table)
        # failures as plain lines (not a table) so long paths stay whole and copyable
        for f in report.failed:
            print(f"failed: {f['path']}: {f['reason']}", file=sys.stderr)
        print(f"catalog: {ws.db_url}", file=sys.stderr)

    emit(args, report.as_dict(), human)
    return EXIT_FAILED if report.failed else EXIT_OK


def _open_existing_catalog(ws: Any):
    """The workspace's catalog, refusing a workspace that does not exist (as training and search do).

    Why: opening creates the SQLite file, so a mistyped ``--home`` used to leave a new folder with an
    empty catalog behind and report 0 clips as if that were the answer.
    """
    from sqlalchemy.exc import DBAPIError

    if ws.db_url == f"sqlite:///{ws.catalog_path}" and not ws.catalog_path.is_file():
        raise DanceSearchError(f"no catalog at {ws.catalog_path}: ingest data first "
                               f"(dancesearch ingest npz DIR --home {ws.home})")
    catalog = ws.catalog(create=False)
    try:
        catalog.count()
    except DBAPIError as exc:
        catalog.close()
        raise DanceSearchError(f"{ws.db_url} is not a DanceSearch catalog ({getattr(exc, 'orig', exc)}); "
                               "ingest data first") from None
    return catalog


#: Tags with numeric values that `corpus stats` shows in bins (one row per distinct value would be
#: hundreds of rows): BPM in 10-BPM bins labelled with encoders.tempo's classes.
BPM_BIN = 10


def _tag_rows(tag: str, values: dict[str, int]) -> list[tuple[str, int]]:
    """(value label, clips) rows of one tag for the human table; a BPM tag is binned."""
    from encoders.tempo import tempo_class

    numbers: dict[float, int] = {}
    for v, n in values.items():
        try:
            numbers[float(v)] = n
        except ValueError:
            return sorted(values.items(), key=lambda kv: (-kv[1], kv[0]))
    if "bpm" not in tag.lower() or not numbers:
        return sorted(values.items(), key=lambda kv: (-kv[1], kv[0]))
    bins: dict[int, int] = {}
    for bpm, n in numbers.items():
        if math.isfinite(bpm):
            lo = int(bpm // BPM_BIN) * BPM_BIN
            bins[lo] = bins.get(lo, 0) + n
    rows = []
    for lo in sorted(bins):
        classes = dict.fromkeys(c for c in (tempo_class(lo), tempo_class(lo + BPM_BIN - 1e-9)) if c)
        rows.append((f"{lo}-{lo + BPM_BIN - 1} ({'/'.join(classes)})", bins[lo]))
    return rows


def cmd_corpus_stats(args: argparse.Namespace) -> int:
    from .workspace import Workspace

    ws = Workspace.from_args(args)
    catalog = _open_existing_catalog(ws)
    try:
        stats: dict[str, Any] = catalog.stats()
    finally:
        catalog.close()

    def human() -> None:
        from rich.console import Console
        from rich.table import Table

        console = Console()
        console.print(f"{stats['clips']} clips in {stats['sequences']} sequences "
                      f"({stats['captioned_clips']} with captions) - {ws.db_url}")
        for title, key in (("genres", "genres"), ("splits", "splits"), ("sources", "sources")):
            t = Table(title=title)
            t.add_column(title[:-1])
            t.add_column("clips", justify="right")
            for k, v in stats[key].items():
                t.add_row(str(k), str(v))
            console.print(t)
        if stats["tags"]:
            t = Table(title="tags")
            t.add_column("tag")
            t.add_column("value")
            t.add_column("clips", justify="right")
            for tag, values in stats["tags"].items():
                for v, n in _tag_rows(tag, values):
                    t.add_row(tag, v, str(n))
            console.print(t)

    emit(args, stats, human)
    return EXIT_OK
