"""``dancesearch corpus windows``: build (or check) the generation window cache and say what it holds.

Why a command: which clips a generator can train on is not obvious from the catalog (BVH and
joint-position sources have no SMPL-X rotations); this prints the per-split counts and every clip left
out with its reason, and leaves a ready cache behind for training and ``eval generation``.
"""
from __future__ import annotations

import argparse
from collections import Counter

from encoders.cliutil import EXIT_OK, add_common_options, bounded_number, emit, progress_enabled, resolve_home
from encoders.errors import DanceSearchError


def register(actions: argparse._SubParsersAction) -> None:
    p = actions.add_parser(
        "windows", help="build the 4-s window cache for generation and report usable clips",
        description="Build or reuse HOME/cache/generation/windows-<hash>/ from every catalog clip with SMPL-X "
                    "rotations (the 319-d representation), and list the clips left out with their reason.")
    p.add_argument("--db", metavar="URL", default=None, help="SQLAlchemy catalog URL (default: HOME/catalog.sqlite)")
    p.add_argument("--window-seconds", type=bounded_number(float, 0.5, 60.0, "--window-seconds"), default=4.0)
    p.add_argument("--stride-seconds", type=bounded_number(float, 1 / 30, 60.0, "--stride-seconds"), default=1.0)
    add_common_options(p)
    p.set_defaults(handler=cmd_windows)


def cmd_windows(args: argparse.Namespace) -> int:
    from indexer.workspace import Workspace

    from . import WindowConfig, open_windows
    from ..representation.layout import FPS

    home = resolve_home(args.home)
    if args.db is None and not (home / "catalog.sqlite").is_file():
        raise DanceSearchError(f"no catalog at {home / 'catalog.sqlite'}: ingest data first "
                               f"(dancesearch ingest npz DIR --home {home})")
    config = WindowConfig(int(round(args.window_seconds * FPS)), max(1, int(round(args.stride_seconds * FPS))))
    store = open_windows(Workspace(home, args.db), config, progress=progress_enabled(args))
    left = store.manifest["left_out"]
    payload = {"cache": str(store.root), "hash": store.content_hash, "genres": store.genres,
               "window_frames": config.window_frames, "stride_frames": config.stride_frames,
               "splits": {s: {**store.manifest["splits"][s], "windows": store.num_windows(s)}
                          for s in ("train", "val", "test")},
               "left_out": left}

    def human() -> None:
        print(f"window cache {store.root}")
        for s, c in payload["splits"].items():
            print(f"  {s:5s} {c['clips']:6d} clips  {c['windows']:7d} windows "
                  f"({args.window_seconds:g} s every {args.stride_seconds:g} s)")
        if left:
            print(f"  left out: {len(left)} clips")
            for reason, n in Counter(d["reason"].split(": ", 1)[-1] for d in left).most_common(5):
                print(f"    {n} x {reason}")

    emit(args, payload, human)
    return EXIT_OK
