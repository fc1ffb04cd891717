"""``dancesearch eval retrieval``: R@1/5/10, MedR, MnR of a trained run on a split (full gallery)."""
from __future__ import annotations

import argparse
from pathlib import Path

from encoders.cliutil import EXIT_OK, add_common_options, emit, progress_enabled


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.choices.get("eval")
    if p is None:
        p = subparsers.add_parser("eval", help="evaluate a trained model", description="Evaluation commands.")
        actions = p.add_subparsers(dest="eval_action", metavar="ACTION")
        actions.required = True
        p.set_defaults(_eval_actions=actions)
    actions = p.get_default("_eval_actions")
    r = actions.add_parser("retrieval", help="text->dance retrieval metrics on a split (full gallery)",
                           description="Each caption of the split is a query, its clip the positive, every clip of "
                                       "the split the gallery. R@K in percent; ties count against the model.")
    add_common_options(r)
    r.add_argument("--db", metavar="URL", default=None, help="SQLAlchemy catalog URL (default: HOME/catalog.sqlite)")
    r.add_argument("--run", type=Path, default=None, metavar="DIR", help="run directory (default: models/demo)")
    r.add_argument("--split", choices=("train", "val", "test"), default="test")
    r.add_argument("--device", default=None, help="auto (default) | cpu | cuda")
    r.set_defaults(handler=cmd_retrieval)


def cmd_retrieval(args: argparse.Namespace) -> int:
    from encoders.api import DEFAULT_RUN_DIR, DanceEmbedder
    from indexer.datasets import examples_for_split
    from indexer.workspace import Workspace

    from .retrieval import evaluate_retrieval

    ws = Workspace.from_args(args)
    run_dir = args.run or DEFAULT_RUN_DIR
    embedder = DanceEmbedder.from_run(run_dir, device=args.device)
    examples = examples_for_split(ws, args.split)
    result = evaluate_retrieval(embedder, examples, args.split, progress=progress_enabled(args))
    m = result.metrics
    payload = {**m, "run": str(run_dir)}

    def human() -> None:
        print(f"{args.split}: {m['num_queries']} queries, gallery of {m['gallery_size']} clips ({m['protocol']})")
        print(f"R@1 {m['R@1']:.2f}  R@5 {m['R@5']:.2f}  R@10 {m['R@10']:.2f}  MedR {m['MedR']:.1f}  MnR {m['MnR']:.2f}")
        c = m["chance"]
        print(f"chance: R@1 {c['R@1']:.2f}  R@5 {c['R@5']:.2f}  R@10 {c['R@10']:.2f}  MedR {c['MedR']:.1f}  MnR {c['MnR']:.2f}")

    emit(args, payload, human)
    return EXIT_OK
