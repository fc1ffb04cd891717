"""``dancesearch eval generation``: FID_k / FID_g / Div / BAS of generated dances against ground truth.

``--pred DIR`` reads a folder of generated dances (:mod:`generation.metrics.npz_io`); the ground truth is
a folder (``--gt DIR``) or the catalog's 4-s windows of a split (``--home H --split test``,
:mod:`generation.metrics.catalog_source`). ``--pred-split train`` measures real windows of another split
instead of generated ones: the real-data floor (:mod:`generation.metrics.floor`), repeated over
``--draws`` random draws of as many windows as the ground truth has. ``--protocol`` picks the conventions
(:mod:`generation.metrics.protocols`; ``all`` runs each); ``--out FILE.json`` writes the JSON result and a
markdown table beside it (``FILE.md``), atomically. Human output goes to stderr, ``--json`` prints one
JSON object on stdout; exit 0 ok, 1 bad input, 2 usage error.

Ground-truth sources: :data:`GT_SOURCES` maps a source name to a function ``(args) -> list[DanceSample]``.
"""
from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path
from typing import Callable

from encoders.cliutil import EXIT_OK, EXIT_USAGE, add_common_options, bounded_number, emit, info, positive_int
from encoders.errors import DanceSearchError

from .protocols import DEFAULT_PROTOCOL, PROTOCOLS
from .sample import DanceSample


def register_generation(actions: argparse._SubParsersAction) -> None:
    """Add ``generation`` to the ``eval`` action group (called from ``eval.cli.register``)."""
    p = actions.add_parser(
        "generation", help="FID_k / FID_g / Div / BAS of generated dances against ground truth",
        description="Score generated dances against ground-truth dances with the reference implementations' "
                    "conventions (docs/GENERATION_METRICS.md). Files: motion-record npz, plain npz with "
                    "'positions' (T, J, 3) [+ joint_names, fps, music_beats], or .npy (T, J, 3).")
    pred = p.add_mutually_exclusive_group()
    pred.add_argument("--pred", type=Path, default=None, metavar="DIR", help="folder of generated dances")
    pred.add_argument("--pred-split", choices=("train", "val", "test"), default=None,
                      help="real windows of this catalog split as predictions: the real-data floor (needs --split)")
    add_gt_source_options(p)
    p.add_argument("--draws", type=positive_int, default=5,
                   help="with --pred-split: random draws of as many windows as the ground truth has (default 5)")
    p.add_argument("--seed", type=int, default=0, help="with --pred-split: seed of the draws (default 0)")
    p.add_argument("--protocol", choices=tuple(PROTOCOLS) + ("all",), default=DEFAULT_PROTOCOL,
                   help=f"metric conventions, or all of them (default {DEFAULT_PROTOCOL})")
    p.add_argument("--fps", type=float, default=30.0,
                   help="frame rate of files that do not store one (default 30)")
    p.add_argument("--up-axis", choices=("y", "z"), default="y", help="up axis of plain position files (default y)")
    p.add_argument("--out", type=Path, default=None, metavar="FILE.json",
                   help="also write the result as JSON and a markdown table (FILE.md)")
    p.add_argument("--per-sample", action="store_true", help="include per-sequence BAS in the JSON")
    add_common_options(p)
    p.set_defaults(handler=cmd_generation)


def add_gt_source_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--gt", type=Path, default=None, metavar="DIR", help="folder of ground-truth dances")
    p.add_argument("--split", choices=("train", "val", "test"), default=None,
                   help="ground truth = the --home catalog's windows of this split (clips with SMPL-X rotations)")
    p.add_argument("--db", metavar="URL", default=None, help="SQLAlchemy catalog URL (default: HOME/catalog.sqlite)")
    p.add_argument("--window-seconds", type=bounded_number(float, 0.5, 60.0, "--window-seconds"), default=4.0,
                   help="catalog window length in seconds (default 4)")
    p.add_argument("--stride-seconds", type=bounded_number(float, 1 / 30, 60.0, "--stride-seconds"), default=None,
                   help="catalog window stride in seconds (default: the window length, no overlap)")


def gt_source_name(args: argparse.Namespace) -> str | None:
    """Which ground-truth source the arguments select (None: none given)."""
    if getattr(args, "gt", None) is not None:
        return "folder"
    return "catalog" if getattr(args, "split", None) is not None else None


def _gt_from_folder(args: argparse.Namespace) -> list[DanceSample]:
    from .npz_io import load_folder

    return load_folder(args.gt, default_fps=args.fps, up_axis=args.up_axis, role="ground-truth")


def _catalog_store(args: argparse.Namespace):
    from encoders.cliutil import progress_enabled, resolve_home

    from .catalog_source import window_store

    home = resolve_home(args.home)
    if args.db is None and not (home / "catalog.sqlite").is_file():
        raise DanceSearchError(f"no catalog at {home / 'catalog.sqlite'}: ingest data first "
                               f"(dancesearch ingest npz DIR --home {home}) or give --db URL")
    return window_store(home, args.db, args.window_seconds, args.stride_seconds, progress=progress_enabled(args))


def _gt_from_catalog(args: argparse.Namespace) -> list[DanceSample]:
    from .catalog_source import window_samples

    samples = window_samples(_catalog_store(args), args.split)
    if not samples:
        raise DanceSearchError(f"the catalog's {args.split} split has no window of {args.window_seconds:g} s "
                               f"with SMPL-X rotations")
    return samples


GT_SOURCES: dict[str, Callable[[argparse.Namespace], list[DanceSample]]] = {
    "folder": _gt_from_folder, "catalog": _gt_from_catalog}


def cmd_generation(args: argparse.Namespace) -> int:
    from encoders.atomic_io import atomic_write_json, atomic_write_text

    from .npz_io import load_folder
    from .suite import evaluate_generation, markdown_table

    source = gt_source_name(args)
    if args.gt is not None and args.split is not None:
        info("error: give the ground truth either as --gt DIR or as --split of the --home catalog, not both")
        return EXIT_USAGE
    if source is None:
        info("error: give the ground truth with --gt DIR or --split SPLIT (windows of the --home catalog)")
        return EXIT_USAGE
    if args.pred is None and args.pred_split is None:
        info("error: give the predictions with --pred DIR (or --pred-split SPLIT for the real-data floor)")
        return EXIT_USAGE
    if args.pred_split is not None and (source != "catalog" or args.pred_split == args.split):
        info("error: --pred-split needs --split of the same catalog, and another split than it")
        return EXIT_USAGE
    if not (math.isfinite(args.fps) and args.fps > 0):
        info(f"error: --fps must be a positive number, got {args.fps}")
        return EXIT_USAGE
    if args.out is not None and args.out.suffix.lower() != ".json":
        info(f"error: --out must name a .json file, got {args.out}")
        return EXIT_USAGE
    protocols = list(PROTOCOLS) if args.protocol == "all" else [args.protocol]
    gt = GT_SOURCES[source](args)
    if args.pred_split is not None:
        from .catalog_source import window_samples
        from .floor import floor_markdown, floor_over_draws

        store = _catalog_store(args)
        pool = store.num_windows(args.pred_split)
        n_draws = args.draws if pool > len(gt) else 1       # a pool no larger than the GT gives one set only
        draws = [window_samples(store, args.pred_split, limit=len(gt), seed=args.seed + d) for d in range(n_draws)]
        runs = [floor_over_draws(draws, gt, name) for name in protocols]
        if n_draws < args.draws:
            for r in runs:
                r["notes"].append(f"the {args.pred_split} split has {pool} windows, no more than the {len(gt)} of the "
                                  f"ground truth: one draw of all of them instead of {args.draws}")
        title = (f"Real-data floor: {len(draws[0])} {args.pred_split} windows against {len(gt)} {args.split} windows "
                 f"({args.window_seconds:g} s), {n_draws} draw{'s' if n_draws > 1 else ''}")
        table = floor_markdown(runs, title)
    else:
        pred = load_folder(args.pred, default_fps=args.fps, up_axis=args.up_axis, role="prediction")
        runs = [evaluate_generation(pred, gt, name, per_sample=args.per_sample) for name in protocols]
        table = "\n".join(markdown_table(r) for r in runs)
    result = runs[0] if len(runs) == 1 else {"protocols": {r["protocol"]: r for r in runs}}
    if args.out is not None:
        atomic_write_json(args.out, result)
        atomic_write_text(args.out.with_suffix(".md"), table)
        result["written"] = {"json": str(args.out), "markdown": str(args.out.with_suffix(".md"))}

    def human() -> None:
        sys.stderr.write(table)
        if args.out is not None:
            info(f"wrote {args.out} and {args.out.with_suffix('.md')}")

    emit(args, result, human)
    return EXIT_OK
