"""``dancesearch genre classify TEXT...`` and ``dancesearch genre train``: free-form text -> genre.

``train`` fits the classifier on the ``--home`` catalog's train-split captions, keeps the epoch with the
best validation accuracy, measures the test split (held-out caption phrasings in the demo corpus) and,
with ``--queries FILE``, a hand-written query set (JSON Lines ``{"text", "genre"}``), and writes a run
directory. ``classify`` prints the genre, its confidence and the next two.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from encoders.cliutil import (EXIT_OK, UsageError, add_common_options, emit, info, positive_int, progress_enabled,
                              resolve_home)
from encoders.errors import DanceSearchError


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("genre", help="map free-form text to a genre (the generator's genre condition)",
                              description="Text genre classifier (GCDance eq. 1-2).")
    actions = p.add_subparsers(dest="genre_action", metavar="ACTION")
    actions.required = True
    c = actions.add_parser("classify", help="genre and confidence of each TEXT",
                           description="Print the genre each description asks for, its confidence and the next two.")
    c.add_argument("texts", nargs="+", metavar="TEXT")
    c.add_argument("--run", type=Path, default=None, metavar="DIR", help="classifier run (default: models/genre_text)")
    add_common_options(c)
    c.set_defaults(handler=cmd_classify)
    t = actions.add_parser("train", help="train the classifier on the catalog's captions",
                           description="Train on the --home catalog's train-split captions, select on val, "
                                       "measure test (and --queries), write a run directory.")
    t.add_argument("--out", type=Path, required=True, metavar="DIR", help="run directory to write")
    t.add_argument("--db", metavar="URL", default=None, help="SQLAlchemy catalog URL (default: HOME/catalog.sqlite)")
    t.add_argument("--epochs", type=positive_int, default=None, help="training epochs (default 80)")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--queries", type=Path, default=None, metavar="FILE",
                   help="JSON Lines {text, genre} measured after training (not used for training)")
    add_common_options(t)
    t.set_defaults(handler=cmd_train)


def cmd_classify(args: argparse.Namespace) -> int:
    from .classifier import GenreClassifier

    if any(not t.strip() for t in args.texts):
        raise UsageError("TEXT must not be empty")
    model = GenreClassifier.from_pretrained(args.run)
    preds = [p.as_dict() for p in model.predict(args.texts)]
    payload = {"predictions": preds, "genres": model.genres}

    def human() -> None:
        for p in preds:
            rest = ", ".join(f"{t['genre']} {t['p']:.2f}" for t in p["top"][1:])
            print(f"{p['genre']:10s} {p['confidence']:.2f}  (next: {rest})  {p['text']}")

    emit(args, payload, human)
    return EXIT_OK


def _pairs(workspace, split: str) -> list[tuple[str, str]]:
    from indexer.datasets import examples_for_split

    return [(c, ex.genre) for ex in examples_for_split(workspace, split) for c in ex.captions]


def cmd_train(args: argparse.Namespace) -> int:
    from indexer.workspace import Workspace

    from .classifier import GenreClassifierConfig, accuracy, labelled_json
    from .train import train_genre_classifier

    home = resolve_home(args.home)
    if args.db is None and not (home / "catalog.sqlite").is_file():
        raise DanceSearchError(f"no catalog at {home / 'catalog.sqlite'}: ingest data first "
                               f"(dancesearch ingest npz DIR --home {home})")
    ws = Workspace(home, args.db)
    queries = labelled_json(args.queries) if args.queries is not None else []
    config = GenreClassifierConfig(seed=args.seed, **({"epochs": args.epochs} if args.epochs else {}))
    train, val, test = _pairs(ws, "train"), _pairs(ws, "val"), _pairs(ws, "test")
    model, metrics = train_genre_classifier(train, val, config, progress=progress_enabled(args))
    metrics["test"] = accuracy(model, [t for t, _ in test], [g for _, g in test]) if test else None
    unknown = sorted({q["genre"] for q in queries} - set(model.genres))
    if unknown:
        raise DanceSearchError(f"{args.queries}: genres not in the catalog: {unknown[:5]}")
    if queries:
        metrics["queries"] = {**accuracy(model, [q["text"] for q in queries], [q["genre"] for q in queries]),
                              "file": str(args.queries)}
    data = {"description": f"captions of catalog {ws.db_url}: {len(train)} train / {len(val)} val / "
                           f"{len(test)} test", "train_captions": len(train)}
    model.save(args.out, metrics, data)
    payload = {k: v for k, v in metrics.items() if k != "history"} | {"out": str(args.out)}

    def human() -> None:
        for split in ("val", "test", "queries"):
            m = metrics.get(split)
            if m and m.get("n"):
                info(f"{split:7s} top-1 {100 * m['top1']:.1f}%  top-3 {100 * m['top3']:.1f}%  ({m['n']} texts)")
        info(f"wrote {args.out}")

    emit(args, payload, human)
    return EXIT_OK


