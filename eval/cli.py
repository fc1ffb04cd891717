"""``dancesearch eval retrieval``: R@1/5/10, MedR, MnR of a trained run on a split (full gallery)."""
from __future__ import annotations

import argparse
from pathlib import Path

from encoders.cliutil import EXIT_OK, add_common_options, emit


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
    r.add_argument("--text-encoder", choices=("full", "fast"), default="full",
                   help="query encoder: the trained one (default) or its distilled fast stand-in (RUN/fast_text)")
    from .suite_cli import add_protocol_options, register_extra

    add_protocol_options(r)
    r.set_defaults(handler=cmd_retrieval)
    register_extra(actions)
    from generation.metrics.cli import register_generation; register_generation(actions)  # noqa: E702


def cmd_retrieval(args: argparse.Namespace) -> int:
    from .suite_cli import print_suite, run_retrieval_suite

    payload = run_retrieval_suite(args)
    emit(args, payload, lambda: print_suite(payload))
    return EXIT_OK
