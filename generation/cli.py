"""`dancesearch corpus demo`: generate the embedded demo corpus (npz folder + audio + captions).

Registered under the ``corpus`` command group that ``indexer.cli.get_corpus_subparsers`` owns, so
``corpus stats`` (indexer) and ``corpus demo`` (generation) live side by side.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from encoders.cliutil import positive_int, EXIT_OK, EXIT_USAGE, add_common_options, emit, info, progress_enabled


def register(subparsers: argparse._SubParsersAction) -> None:
    from indexer.cli import get_corpus_subparsers
    from .procedural.defaults import DEFAULT_CLIPS, DEFAULT_SEED

    actions = get_corpus_subparsers(subparsers)
    p = actions.add_parser(
        "demo", help="generate the procedural demo corpus (npz + audio + captions)",
        description="Write a procedural dance corpus (SMPL-X 52 motion at 30 fps, synthesised music, TD-Data style "
                    "tags and captions, train/val/test splits, DATASHEET.md) to DIR, ready for `dancesearch ingest npz DIR`.")
    p.add_argument("--out", type=Path, required=True, metavar="DIR", help="output folder")
    p.add_argument("--clips", type=positive_int, default=DEFAULT_CLIPS, help=f"number of 12-s clips (default {DEFAULT_CLIPS})")
    p.add_argument("--seed", type=int, default=DEFAULT_SEED, help=f"random seed (default {DEFAULT_SEED})")
    p.add_argument("--workers", type=positive_int, default=2, help="worker processes (default 2)")
    p.add_argument("--only-split", choices=("train", "val", "test"), default=None,
                   help="write only this split's clips of the --clips plan (e.g. a larger held-out test set)")
    add_common_options(p)
    p.set_defaults(handler=run_demo)
    from .windows.cli import register as register_windows

    register_windows(actions)
    from .genre.cli import register as register_genre

    register_genre(subparsers)
    from .diffusion.cli import register as register_generate

    register_generate(subparsers)
    from .genre_match.cli import register as register_gs

    register_gs(subparsers)
    from .video.cli import register as register_render

    register_render(subparsers)
    from .video.m2penc.cli import register as register_m2penc

    register_m2penc(subparsers)


def run_demo(args: argparse.Namespace) -> int:
    from .procedural.corpus import write_demo_corpus

    out: Path = args.out
    if out.exists() and not out.is_dir():
        info(f"error: --out {out} exists and is not a folder")
        return EXIT_USAGE
    manifest = write_demo_corpus(out, clips=args.clips, seed=args.seed, workers=args.workers,
                                 progress=progress_enabled(args), only_split=args.only_split)
    payload = {"out": str(out.resolve()), "clips": manifest["num_clips"], "seed": manifest["seed"],
               "splits": manifest["counts"]["split"], "genres": len(manifest["counts"]["genre"]),
               "bytes": manifest["bytes"], "seconds": manifest["timing"]["total_s"],
               "per_clip_generate_median_ms": manifest["timing"]["per_clip_generate_median_ms"]}

    def human() -> None:
        print(f"demo corpus: {payload['clips']} clips, {payload['genres']} genres, splits {payload['splits']}, "
              f"{payload['bytes'] / 1e6:.1f} MB in {payload['seconds']:.1f} s -> {payload['out']}")
        print(f"next: dancesearch ingest npz {out}")

    emit(args, payload, human)
    return EXIT_OK
