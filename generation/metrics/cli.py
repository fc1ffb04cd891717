"""``dancesearch eval generation``: FID_k / FID_g / Div / BAS of generated dances against ground truth.

``--pred DIR --gt DIR`` read folders of dances (:mod:`generation.metrics.npz_io`); ``--protocol`` picks
the conventions (:mod:`generation.metrics.protocols`); ``--out FILE.json`` writes the JSON result and a
markdown table beside it (``FILE.md``), atomically. Human output goes to stderr, ``--json`` prints one
JSON object on stdout; exit 0 ok, 1 bad input, 2 usage error.

Ground-truth sources: :data:`GT_SOURCES` maps a source name to a function ``(args) -> list[DanceSample]``;
``folder`` (``--gt DIR``) is the only one now. A catalog source (``--home H --split test``: GT windows of
the catalog's clips) plugs in by adding its options in :func:`add_gt_source_options` and an entry in
:data:`GT_SOURCES` chosen by :func:`gt_source_name`.
"""
from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path
from typing import Callable

from encoders.cliutil import EXIT_OK, EXIT_USAGE, add_common_options, emit, info

from .protocols import DEFAULT_PROTOCOL, PROTOCOLS
from .sample import DanceSample


def register_generation(actions: argparse._SubParsersAction) -> None:
    """Add ``generation`` to the ``eval`` action group (called from ``eval.cli.register``)."""
    p = actions.add_parser(
        "generation", help="FID_k / FID_g / Div / BAS of generated dances against ground truth",
        description="Score generated dances against ground-truth dances with the reference implementations' "
                    "conventions (docs/GENERATION_METRICS.md). Files: motion-record npz, plain npz with "
                    "'positions' (T, J, 3) [+ joint_names, fps, music_beats], or .npy (T, J, 3).")
    p.add_argument("--pred", type=Path, required=True, metavar="DIR", help="folder of generated dances")
    add_gt_source_options(p)
    p.add_argument("--protocol", choices=tuple(PROTOCOLS), default=DEFAULT_PROTOCOL,
                   help=f"metric conventions (default {DEFAULT_PROTOCOL})")
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


def gt_source_name(args: argparse.Namespace) -> str | None:
    """Which ground-truth source the arguments select (None: none given)."""
    return "folder" if getattr(args, "gt", None) is not None else None


def _gt_from_folder(args: argparse.Namespace) -> list[DanceSample]:
    from .npz_io import load_folder

    return load_folder(args.gt, default_fps=args.fps, up_axis=args.up_axis, role="ground-truth")


GT_SOURCES: dict[str, Callable[[argparse.Namespace], list[DanceSample]]] = {"folder": _gt_from_folder}


def cmd_generation(args: argparse.Namespace) -> int:
    from encoders.atomic_io import atomic_write_json, atomic_write_text

    from .npz_io import load_folder
    from .suite import evaluate_generation, markdown_table

    source = gt_source_name(args)
    if source is None:
        info("error: give the ground truth with --gt DIR")
        return EXIT_USAGE
    if not (math.isfinite(args.fps) and args.fps > 0):
        info(f"error: --fps must be a positive number, got {args.fps}")
        return EXIT_USAGE
    if args.out is not None and args.out.suffix.lower() != ".json":
        info(f"error: --out must name a .json file, got {args.out}")
        return EXIT_USAGE
    pred = load_folder(args.pred, default_fps=args.fps, up_axis=args.up_axis, role="prediction")
    gt = GT_SOURCES[source](args)
    result = evaluate_generation(pred, gt, args.protocol, per_sample=args.per_sample)
    table = markdown_table(result)
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
