"""``dancesearch gs train --out RUN`` and ``dancesearch gs reference``: the Genre-matching Score network.

``train`` fits the music style / dance genre encoders on the ``--home`` catalog's train-split windows
(cosine loss, eq. 4), keeps the best validation epoch, measures val and test and writes a run directory.
``reference`` prints the GS of real test pairs (each test window's own music and dance) for a run.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from encoders.cliutil import (EXIT_OK, add_common_options, bounded_number, emit, info, positive_int, progress_enabled,
                              resolve_home)
from encoders.errors import DanceSearchError


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("gs", help="Genre-matching Score network (train it, or print its real-pair reference)",
                              description="FineNet's GS (eq. 3-4): music style encoder on log-mel + AGCN-like dance "
                                          "genre encoder, cosine similarity of the two embeddings.")
    actions = p.add_subparsers(dest="gs_action", metavar="ACTION")
    actions.required = True
    t = actions.add_parser("train", help="train on the catalog's train split, select on val, measure test")
    t.add_argument("--out", type=Path, required=True, metavar="DIR", help="run directory to write")
    t.add_argument("--db", metavar="URL", default=None, help="SQLAlchemy catalog URL (default: HOME/catalog.sqlite)")
    t.add_argument("--epochs", type=positive_int, default=12)
    t.add_argument("--minutes", type=bounded_number(float, 0.05, 1000.0, "--minutes"), default=6.0,
                   help="wall-clock budget (default 6)")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--threads", type=positive_int, default=2)
    add_common_options(t)
    t.set_defaults(handler=cmd_train)
    r = actions.add_parser("reference", help="GS of real test pairs of the catalog for a run")
    r.add_argument("--run", type=Path, default=None, metavar="DIR", help="GS run (default: models/gs)")
    r.add_argument("--db", metavar="URL", default=None)
    r.add_argument("--split", choices=("train", "val", "test"), default="test")
    add_common_options(r)
    r.set_defaults(handler=cmd_reference)


def _home(args: argparse.Namespace) -> Path:
    home = resolve_home(args.home)
    if args.db is None and not (home / "catalog.sqlite").is_file():
        raise DanceSearchError(f"no catalog at {home / 'catalog.sqlite'}: ingest data first "
                               f"(dancesearch ingest npz DIR --home {home})")
    return home


def cmd_train(args: argparse.Namespace) -> int:
    from .train import GSTrainConfig, train_gs_on_catalog

    config = GSTrainConfig(epochs=args.epochs, minutes=args.minutes, seed=args.seed, threads=args.threads)
    result = train_gs_on_catalog(_home(args), args.out, config, db_url=args.db, progress=progress_enabled(args))

    def human() -> None:
        for split, m in result["metrics"].items():
            if "gs_real" in m:
                print(f"{split}: GS real pairs {m['gs_real']:.3f}, mismatched {m['gs_mismatched']:.3f}, "
                      f"top-1 genre {m['top1_genre']:.3f} ({m['windows']} windows)")
        print(f"trained in {result['data']['train_seconds']} s -> {result['out']}")

    emit(args, result, human)
    return EXIT_OK


def cmd_reference(args: argparse.Namespace) -> int:
    from ..metrics.catalog_source import window_store
    from .data import build_gs_data, clip_mels
    from .scorer import GSScorer
    from .train import evaluate_pairs

    home = _home(args)
    scorer = GSScorer.from_pretrained(args.run)
    store = window_store(home, args.db)
    ids = {c["id"] for c in store.clips(args.split)}
    mels = clip_mels(home, ids, scorer.mel_config, args.db)
    data = build_gs_data(store, args.split, mels, sorted(store.genres), scorer.model.config.frame_step)
    m = evaluate_pairs(scorer.model, data) | {"split": args.split}
    emit(args, m, lambda: info(f"{args.split}: GS of real pairs {m.get('gs_real', float('nan')):.3f} "
                               f"(mismatched {m.get('gs_mismatched', float('nan')):.3f}, {m['windows']} windows)")
         or print(f"{m.get('gs_real', float('nan')):.4f}"))
    return EXIT_OK
