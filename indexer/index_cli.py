"""``dancesearch index build`` and ``dancesearch search``: the vector index from the shell.

``index build`` updates the live index incrementally (new clips only) when it was built with the
same model, backend and kind, and builds a fresh one otherwise (or with ``--rebuild``).
"""
from __future__ import annotations

import argparse
import sys
from typing import Any

from encoders.cliutil import (EXIT_OK, UsageError, add_common_options, bounded_number, emit, info, positive_int,
                              progress_enabled, sigterm_as_interrupt)
from encoders.errors import InputError

from .index.base import BACKENDS, KINDS
from .index.store import DEFAULT_INDEX_NAME


def _add_model_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--db", metavar="URL", default=None, help="catalog SQLAlchemy URL (default: HOME/catalog.sqlite)")
    p.add_argument("--run", metavar="DIR", default=None, help="trained model run folder (default: models/demo)")
    p.add_argument("--name", default=DEFAULT_INDEX_NAME, help="index name under HOME/indexes/ (default: default)")
    p.add_argument("--query-expansion", action=argparse.BooleanOptionalAction, default=True,
                   help="expand dance jargon, step names and typos in queries with the genre they point to before "
                        "encoding (default on; the index's threshold and gate are fitted the same way)")


_BPM = bounded_number(float, 0, 400, "tempo (BPM)")
_K = bounded_number(int, 1, 100, "k")
_OFFSET = bounded_number(int, 0, 1_000, "offset")   # indexer.index.service.MAX_OFFSET (not imported: it pulls numpy)
_MAX_QUERY_CHARS = 500                               # indexer.index.service.MAX_QUERY_CHARS


def register(subparsers: argparse._SubParsersAction) -> None:
    idx = subparsers.add_parser("index", help="build or update the vector index of the catalog's clips",
                                description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    actions = idx.add_subparsers(dest="index_action", metavar="ACTION")
    actions.required = True
    b = actions.add_parser("build", help="embed the catalog's clips and build / update the index")
    add_common_options(b)
    _add_model_options(b)
    b.add_argument("--kind", choices=("auto", *KINDS), default="auto",
                   help="flat (exact), hnsw (graph), ivfpq (compressed + exact re-rank); auto: flat below 100k clips, "
                        "hnsw below 500k, ivfpq above")
    b.add_argument("--backend", choices=BACKENDS, default="faiss", help="faiss (in-process) or milvus (pymilvus)")
    b.add_argument("--uri", default=None,
                   help="Milvus URI: http://host:19530, or a local file for Milvus Lite (default HOME/indexes/NAME/milvus.db)")
    b.add_argument("--rebuild", action="store_true", help="build from scratch instead of adding new clips")
    b.add_argument("--batch-size", type=positive_int, default=64, help="clips embedded per batch (default 64)")
    b.set_defaults(handler=cmd_index_build)

    s = subparsers.add_parser("search", help="search the indexed clips by text (or rank a genre by typicality)")
    add_common_options(s)
    _add_model_options(s)
    s.add_argument("query", nargs="?", default=None, metavar="TEXT", help="what the dance looks like")
    s.add_argument("--genre", action="append", default=[], metavar="G", help="restrict to a genre (repeatable)")
    s.add_argument("--bpm-min", type=_BPM, default=None, help="minimum tempo (BPM)")
    s.add_argument("--bpm-max", type=_BPM, default=None, help="maximum tempo (BPM)")
    s.add_argument("--split", choices=("train", "val", "test"), default=None, help="restrict to a split")
    s.add_argument("--source", default=None, help="restrict to a source corpus")
    s.add_argument("--k", type=_K, default=10, help="number of results (1..100, default 10)")
    s.add_argument("--offset", type=_OFFSET, default=0, help="skip this many results (paging, 0..1000)")
    s.add_argument("--uri", default=None, help="Milvus URI override for a milvus index")
    s.add_argument("--text-encoder", choices=("full", "fast"), default="full",
                   help="query encoder: full (default) or the run's distilled fast one (RUN/fast_text)")
    s.set_defaults(handler=cmd_search)


def cmd_index_build(args: argparse.Namespace) -> int:
    from .index.builder import build_or_update, stderr_progress
    from .index.embedder import load_embedder
    from .workspace import Workspace

    ws = Workspace.from_args(args)
    embedder = load_embedder(args.run, query_expansion=args.query_expansion)
    uri = args.uri
    if args.backend == "milvus" and not uri:
        uri = str(ws.index_dir(args.name) / "milvus.db")
    progress = stderr_progress("embedding") if progress_enabled(args) else None
    with sigterm_as_interrupt():   # `kill` / demo stopping a step: the half-written generation's temp files go
        report = build_or_update(ws, embedder, kind=args.kind, backend=args.backend, uri=uri, name=args.name,
                                 rebuild=args.rebuild, batch_size=args.batch_size, progress=progress)
    payload = report.to_dict()

    def human() -> None:
        t = "none (no captioned clips)" if report.threshold is None else f"{report.threshold:.3f}"
        print(f"{report.action}: {report.backend}/{report.kind} index of {report.count} clips "
              f"({report.embedded} embedded, {report.reused} reused, {report.removed} removed) in {report.seconds:.1f} s; "
              f"no-match threshold {t}; {report.directory}")

    emit(args, payload, human)
    return EXIT_OK


def _print_results(body: dict[str, Any]) -> None:
    if body.get("expanded_query"):
        info(f"searched as: {body['expanded_query']}")
    if body["no_match"]:
        info(f"no good match (best score below the calibrated threshold {body['threshold']})")
    for r in body["results"]:
        bpm = "-" if r["bpm"] is None else f"{r['bpm']:.0f}"
        print(f"{r['rank']:>3}. {r['score']:.3f}  #{r['id']:<6} {r['genre']:<10} {bpm:>4} BPM  {r['key']}")
        if r.get("caption"):
            print(f"       {r['caption']}")
        print(f"       ({r['explanation']['text']})")
    if not body["results"]:
        print("no clips match the filters", file=sys.stderr)


def check_search_args(args: argparse.Namespace) -> None:
    """What argparse cannot check alone, before the model is loaded: raises :class:`UsageError` (exit 2)."""
    q = args.query.strip() if args.query is not None else None
    if not q and not args.genre:
        raise UsageError("give a query TEXT (not empty), or --genre G to rank a genre's clips by typicality")
    if q and len(q) > _MAX_QUERY_CHARS:
        raise UsageError(f"the query is {len(q)} characters long; at most {_MAX_QUERY_CHARS}")
    if args.bpm_min is not None and args.bpm_max is not None and args.bpm_min > args.bpm_max:
        raise UsageError(f"--bpm-min {args.bpm_min:g} is above --bpm-max {args.bpm_max:g}")


def cmd_search(args: argparse.Namespace) -> int:
    from .index.embedder import load_embedder
    from .index.service import SearchEngine
    from .workspace import Workspace

    check_search_args(args)
    ws = Workspace.from_args(args)
    embedder = load_embedder(args.run, text_encoder=args.text_encoder, query_expansion=args.query_expansion)
    engine = SearchEngine.open(ws, embedder, args.name, milvus_uri=args.uri)
    try:   # what needs the index (e.g. an unknown --genre) is a usage error too
        req = engine.validate(args.query, args.k, args.offset, args.genre, args.bpm_min, args.bpm_max, args.split,
                              args.source)
    except InputError as exc:
        field = {"q": "TEXT", "genre": "--genre", "bpm_min": "--bpm-min", "bpm_max": "--bpm-max",
                 "k": "--k", "offset": "--offset"}.get(exc.field or "", exc.field)
        detail = f" (expected {exc.expected})" if exc.expected else ""
        raise UsageError(f"{field + ': ' if field else ''}{exc.reason}{detail}") from None
    body = engine.search(req)
    emit(args, body, lambda: _print_results(body))
    return EXIT_OK
