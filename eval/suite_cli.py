"""The command line of the research evaluation suite (``dancesearch eval ...``): options, reports, output.

``eval/cli.py`` owns ``eval retrieval``; it adds :func:`add_protocol_options` to that parser and calls
:func:`run_retrieval_suite`, and calls :func:`register_extra` for the other actions (``ablations``,
``seeds``, ``breakdown``, ``qualitative``, ``real-data``). The computations live in library modules
(``eval.suite``: embedding a split and the protocols; ``eval.ablations``, ``eval.seeds``, ...); this module
only reads arguments, calls them, writes ``--out`` and prints.
"""
from __future__ import annotations

import argparse
import re
from pathlib import Path
from typing import Any

from encoders.atomic_io import atomic_write_json, atomic_write_text
from encoders.cliutil import EXIT_FAILED, EXIT_OK, UsageError, add_common_options, emit, info, progress_enabled
from encoders.errors import DanceSearchError, InputError

from .bootstrap import DEFAULT_REPLICATES, paired_difference_ci
from .protocols import DEFAULT_TIES, PROTOCOLS, THRESHOLD, TIE_MODES, summarize_ranks
from .suite import (METRICS, TIES_DOC, collect_suite_data, evaluate_protocol, load_suite_data, metric_cell,
                    protocols_markdown)


def add_protocol_options(parser: argparse.ArgumentParser) -> None:
    """Options of ``eval retrieval`` beyond ``--run/--split/--json/--home`` (which eval/cli.py adds)."""
    parser.add_argument("--protocol", choices=(*PROTOCOLS, "all"), default="full",
                        help="full: whole test gallery (CustomDancer); batch32: shuffled batches of 32 (Guo et al.); "
                             f"threshold: TMR, captions with MiniLM cosine >= {THRESHOLD} also correct; all: the three")
    parser.add_argument("--out", type=Path, default=None, metavar="FILE",
                        help="also write the results to FILE (.md: a markdown report, otherwise JSON)")
    parser.add_argument("--bootstrap", type=int, default=DEFAULT_REPLICATES, metavar="N",
                        help=f"bootstrap replicates for the 95%% intervals (default {DEFAULT_REPLICATES}; 0: none)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the batch shuffles and the bootstrap (default 0)")
    parser.add_argument("--ties", choices=TIE_MODES, default=DEFAULT_TIES, help=argparse.SUPPRESS)
    parser.add_argument("--threshold", type=float, default=THRESHOLD,
                        help=f"caption similarity threshold of the threshold protocol (default {THRESHOLD})")
    parser.add_argument("--baseline-run", type=Path, default=None, metavar="DIR",
                        help="also evaluate this run on the same queries and report the paired differences "
                             "(run minus baseline, paired bootstrap over queries)")
    parser.add_argument("--expand", action="store_true",
                        help="encode the captions as the search engine encodes queries (dance jargon expanded) "
                             "instead of the model's plain text encoder (for --baseline-run too)")


def is_run_dir(path: Path) -> bool:
    """``encoders.training.run_dir.is_run_dir``, imported when used: the run module pulls torch, and this module
    is imported by every ``dancesearch`` command line."""
    from encoders.training.run_dir import is_run_dir as check

    return check(path)


def _write_out(path: Path | None, payload: dict[str, Any], markdown: str) -> None:
    if path is None:
        return
    if path.suffix.lower() == ".md":
        atomic_write_text(path, markdown)
    else:
        atomic_write_json(path, payload)
    info(f"wrote {path}")


def run_retrieval_suite(args: argparse.Namespace) -> dict[str, Any]:
    """``eval retrieval`` with protocols: returns the JSON payload (and writes ``--out``).

    One protocol: ``{R@1, R@5, R@10, MedR, MnR, gallery_size, protocol, ci95, dance_to_text, queries, ...}``;
    ``--protocol all``: ``{"protocols": {name: payload}, ...}``.
    """
    baseline = getattr(args, "baseline_run", None)
    if baseline is not None and not is_run_dir(baseline):   # before the minutes the candidate takes
        raise UsageError(f"--baseline-run {baseline} is not a run directory (config.json, best.pt, norm_stats.npz)")
    data = load_suite_data(args)
    names = list(PROTOCOLS) if args.protocol == "all" else [args.protocol]
    evaluated = [evaluate_protocol(data, n, seed=args.seed, n_boot=args.bootstrap, ties=args.ties,
                                   threshold=args.threshold) for n in names]
    payloads = [p for p, _ in evaluated]
    run = str(getattr(args, "run", None) or "models/demo")
    for p in payloads:
        p["run"] = run
        p["text_encoder"] = getattr(args, "text_encoder", None) or "full"
        p["expanded_queries"] = bool(getattr(args, "expand", False))
    if baseline is not None:
        base = load_suite_data(args, run=baseline)
        if base.query_texts != data.query_texts or [c["id"] for c in base.clips] != [c["id"] for c in data.clips]:
            raise DanceSearchError("the baseline run saw other queries or clips: compare runs on one workspace and split")
        for (p, res), name in zip(evaluated, names):
            _, base_res = evaluate_protocol(base, name, seed=args.seed, n_boot=0, ties=args.ties, threshold=args.threshold)
            base_payload = {k: base_res.metrics[k] for k in METRICS}
            p["paired_vs_baseline"] = {
                "baseline_run": str(baseline), "baseline_model": base.model_id, "baseline": base_payload,
                "diff": paired_difference_ci(res.ranks, base_res.ranks, summarize_ranks, n_boot=args.bootstrap,
                                             seed=args.seed)}
    out: dict[str, Any] = payloads[0] if len(payloads) == 1 else {
        "protocols": {p["protocol"]: p for p in payloads}, "split": data.split, "model": data.model_id, "run": run}
    _write_out(getattr(args, "out", None), out,
               protocols_markdown(payloads, f"Retrieval on the {data.split} split", _command_line(args))
               + paired_markdown(payloads))
    return out


def paired_markdown(payloads: list[dict[str, Any]]) -> str:
    """The paired comparison section of the report ('' without ``--baseline-run``)."""
    rows = [p for p in payloads if "paired_vs_baseline" in p]
    if not rows:
        return ""
    pv = rows[0]["paired_vs_baseline"]
    lines = ["", f"## Paired comparison with `{pv['baseline_run']}` (model `{pv['baseline_model']}`)", "",
             "Run minus baseline on the same queries; brackets: paired bootstrap 95% interval over queries "
             "(an interval excluding 0: not query-sampling noise; training-seed noise is not in it).", "",
             "| protocol | " + " | ".join(f"baseline {k}" for k in ("R@1", "R@5", "R@10")) + " | "
             + " | ".join(f"{k} diff" for k in ("R@1", "R@5", "R@10", "MedR")) + " |",
             "|---|" + "---:|" * 3 + "---|" * 4]
    for p in rows:
        d, b = p["paired_vs_baseline"]["diff"], p["paired_vs_baseline"]["baseline"]
        cell = lambda k: (f"{d[k]['diff']:+.2f} [{d[k]['lo']:+.2f}, {d[k]['hi']:+.2f}]" if "lo" in d[k]  # noqa: E731
                          else f"{d[k]['diff']:+.2f}")
        lines.append(f"| {p['protocol']} | " + " | ".join(f"{b[k]:.2f}" for k in ("R@1", "R@5", "R@10")) + " | "
                     + " | ".join(cell(k) for k in ("R@1", "R@5", "R@10", "MedR")) + " |")
    return "\n".join(lines) + "\n"


def print_suite(payload: dict[str, Any]) -> None:
    """Human output of :func:`run_retrieval_suite`: every figure with its interval and gallery size."""
    items = list(payload["protocols"].values()) if "protocols" in payload else [payload]
    for p in items:
        print(f"[{p['protocol']}] {p['split']}: {p['queries']} queries, gallery of {p['gallery_size']}")
        print("  text->dance  " + "  ".join(f"{k} {metric_cell(p, k)}" for k in METRICS))
    d = items[0]["dance_to_text"]
    print(f"  dance->text (diagnostic, gallery of {d['gallery_size']} captions)  "
          + "  ".join(f"{k} {metric_cell(d, k)}" for k in METRICS))
    for p in items:
        pv = p.get("paired_vs_baseline")
        if pv:
            diffs = "  ".join(f"{k} {v['diff']:+.2f}" + (f" [{v['lo']:+.2f}, {v['hi']:+.2f}]" if "lo" in v else "")
                              for k, v in pv["diff"].items() if k in ("R@1", "R@5", "R@10", "MedR"))
            print(f"  [{p['protocol']}] minus baseline {pv['baseline_run']}: {diffs}")


def _command_line(args: argparse.Namespace) -> str:
    import shlex
    import sys

    argv = getattr(args, "_argv", None) or sys.argv[1:]
    return "dancesearch " + " ".join(shlex.quote(a) for a in argv)


# --- extra sub-commands --------------------------------------------------------------------------------
def _model_options(p: argparse.ArgumentParser) -> None:
    add_common_options(p)
    p.add_argument("--db", metavar="URL", default=None, help="SQLAlchemy catalog URL (default: HOME/catalog.sqlite)")
    p.add_argument("--run", type=Path, default=None, metavar="DIR", help="run directory (default: models/demo)")
    p.add_argument("--split", choices=("train", "val", "test"), default="test")
    p.add_argument("--device", default=None, help="auto (default) | cpu | cuda")


def register_extra(eval_subparsers: argparse._SubParsersAction) -> None:
    """Add ``ablations``, ``seeds``, ``breakdown``, ``qualitative``, ``real-data`` and ``people-queries`` to
    ``dancesearch eval``."""
    a = eval_subparsers.add_parser(
        "ablations", help="train and evaluate the temporal-backbone and fusion variants (paper Tables 2, 3)",
        description="Trains every variant with `dancesearch train` (one subprocess each, the exact commands are "
                    "recorded), evaluates it on the test split (full protocol), and writes ablations.md, "
                    "ablations.json and ablations.png to --out.")
    add_common_options(a)
    a.add_argument("--db", metavar="URL", default=None, help="SQLAlchemy catalog URL (default: HOME/catalog.sqlite)")
    a.add_argument("--epochs", type=int, default=None, help="epochs per variant (default: the trainer's)")
    a.add_argument("--config", type=Path, default=None, metavar="FILE",
                   help="run config every variant starts from (e.g. models/demo/config.json); the variant sets "
                        "only --temporal and --fusion")
    a.add_argument("--out", type=Path, default=Path("docs/results"), metavar="DIR")
    a.add_argument("--runs", type=Path, default=None, metavar="DIR",
                   help="where variant run directories go (default: HOME/runs/ablations)")
    a.add_argument("--demo-out", type=Path, default=None, metavar="DIR",
                   help="also export the full model (transformer-blend) here with its test figures and model card, "
                        "e.g. models/demo (replaced atomically)")
    a.add_argument("--variants", default=None, metavar="LIST",
                   help="comma-separated subset of variant names (default: all; see eval/ablations.py)")
    a.add_argument("--seed", type=int, default=0)
    a.add_argument("--bootstrap", type=int, default=DEFAULT_REPLICATES, metavar="N")
    a.add_argument("--device", default=None, help="auto (default) | cpu | cuda")
    a.add_argument("--reuse", action="store_true", help="skip training a variant whose run directory exists")
    a.set_defaults(handler=cmd_ablations)

    sd = eval_subparsers.add_parser(
        "seeds", help="the ablation variants over several training seeds (mean, sd, seed-paired differences)",
        description="Evaluates every run ROOT/seed<S>/<variant>/ on the test split (full protocol) and writes "
                    "STEM.md and STEM.json (--name, default seeds) to --out: per-variant mean and sd over seeds, and the full model minus "
                    "each variant paired over seeds and queries. Make the runs with `dancesearch eval ablations "
                    "--seed S --runs ROOT/seed<S>` (or `dancesearch train --seed S --out ROOT/seed<S>/<variant>`).")
    add_common_options(sd)
    sd.add_argument("--db", metavar="URL", default=None, help="SQLAlchemy catalog URL (default: HOME/catalog.sqlite)")
    sd.add_argument("--runs", type=Path, required=True, metavar="ROOT", help="folder holding seed<S>/<variant>/ runs")
    sd.add_argument("--variants", default=None, metavar="LIST", help="comma-separated subset of variant names")
    sd.add_argument("--out", type=Path, default=Path("docs/results"), metavar="DIR")
    sd.add_argument("--name", type=report_name, default="seeds", metavar="STEM",
                    help="report file names: DIR/STEM.md and DIR/STEM.json (default seeds); e.g. one per test catalog")
    sd.add_argument("--bootstrap", type=int, default=DEFAULT_REPLICATES, metavar="N")
    sd.add_argument("--device", default=None, help="auto (default) | cpu | cuda")
    sd.set_defaults(handler=cmd_seeds)

    b = eval_subparsers.add_parser("breakdown", help="metrics per genre and per caption attribute",
                                   description="Per-genre and per-attribute (genre words, body part, tempo, energy, "
                                               "spatial pattern; keyword lexicon of eval/breakdown.py) metrics.")
    _model_options(b)
    b.add_argument("--protocol", choices=PROTOCOLS, default="full")
    b.add_argument("--seed", type=int, default=0)
    b.add_argument("--out", type=Path, default=None, metavar="FILE", help="write the report (.md) or JSON")
    b.set_defaults(handler=cmd_breakdown)

    q = eval_subparsers.add_parser("qualitative", help="top 5 of sample queries with captions and tags",
                                   description="The paper's failure-case analysis: the top results of sample queries.")
    _model_options(q)
    q.add_argument("--queries", type=Path, default=None, metavar="FILE", help="one query per line (default: built-in set "
                   "plus one seeded test caption per genre)")
    q.add_argument("--per-genre", type=int, default=1, help="test captions per genre in the default set")
    q.add_argument("--seed", type=int, default=0)
    q.add_argument("--top", type=int, default=5)
    q.add_argument("--out", type=Path, default=None, metavar="FILE", help="write the report (.md) or JSON")
    q.set_defaults(handler=cmd_qualitative)

    r = eval_subparsers.add_parser("real-data", help="ingest ../shared/data BVH + AIST++ slices + music into a separate "
                                   "workspace and run genre-level sanity checks (optionally paired with a baseline run)",
                                   description="Skips (exit 0) when the shared data folder is absent.")
    add_common_options(r)
    r.add_argument("--shared", type=Path, default=None, metavar="DIR",
                   help="the real data fixtures (default: $DANCESEARCH_SHARED_DATA or ../shared/data)")
    r.add_argument("--work", type=Path, default=None, metavar="DIR",
                   help="workspace to ingest into (default: a temporary folder, removed afterwards)")
    r.add_argument("--run", type=Path, default=None, metavar="DIR", help="run directory (default: models/demo)")
    r.add_argument("--baseline-run", type=Path, default=None, metavar="DIR",
                   help="also embed the same clips with this run and report both models and the differences "
                        "(--run minus baseline) per query, per genre and for the skeleton check")
    r.add_argument("--min-seconds", type=float, default=None, metavar="S",
                   help="shortest real sequence ingested as a clip (default: eval/real_data.py REAL_MIN_SECONDS, 4; "
                        "the ingest default is half a clip, 6 s, which would drop the 5-s AIST++ slices)")
    r.add_argument("--device", default=None)
    r.add_argument("--out", type=Path, default=None, metavar="FILE", help="write the report (.md) or JSON")
    r.set_defaults(handler=cmd_real_data)

    from .people_queries import DEFAULT_SUBSET, SUBSETS, cmd_people_queries
    pq = eval_subparsers.add_parser(
        "people-queries", help="genre and family P@5 of hand-written queries in people's words (issue 17)",
        description="Scores the queries of eval/queries/people_words.jsonl (jargon, moods, comparisons, viewer "
                    "descriptions, misspellings; see eval/queries/README.md) against the clips of one split: genre "
                    "P@5 and family P@5 with bootstrap intervals over queries, per genre and per kind, and with "
                    "--baseline-run a paired difference. The held-out half is for measuring only.")
    _model_options(pq)
    pq.add_argument("--baseline-run", type=Path, default=None, metavar="DIR",
                    help="also score this run (plain encode_text) and report candidate minus baseline, paired")
    pq.add_argument("--queries", type=Path, default=None, metavar="FILE",
                    help="query set (default: eval/queries/people_words.jsonl)")
    pq.add_argument("--subset", choices=SUBSETS, default=DEFAULT_SUBSET,
                    help=f"which half of the set (default {DEFAULT_SUBSET}; heldout: for measuring only)")
    pq.add_argument("--expand", action=argparse.BooleanOptionalAction, default=None,
                    help="encode the --run queries with encode_query(expand=...) when the model has it "
                         "(default: plain encode_text; the baseline always uses encode_text)")
    pq.add_argument("--bootstrap", type=int, default=DEFAULT_REPLICATES, metavar="N",
                    help=f"bootstrap replicates for the 95%% intervals (default {DEFAULT_REPLICATES}; 0: none)")
    pq.add_argument("--seed", type=int, default=0, help="seed of the bootstrap (default 0)")
    pq.add_argument("--out", type=Path, default=None, metavar="FILE", help="write the report (.md) or JSON")
    pq.set_defaults(handler=cmd_people_queries)


def cmd_breakdown(args: argparse.Namespace) -> int:
    from .breakdown import breakdown, breakdown_markdown

    data = load_suite_data(args)
    payload, res = evaluate_protocol(data, args.protocol, seed=args.seed, n_boot=0)
    texts = [data.query_texts[int(i)] for i in res.query_index]
    genres = [data.query_genres[int(i)] for i in res.query_index]
    tables = breakdown(res.ranks, texts, genres)
    md = breakdown_markdown(tables, res.gallery_size, args.protocol)
    out = {"protocol": args.protocol, "gallery_size": res.gallery_size, "split": data.split, "model": data.model_id,
           "overall": {k: payload[k] for k in METRICS}, "queries": res.n_queries,
           "groups": {fam: [r.as_dict() for r in rows] for fam, rows in tables.items()}}
    head = (f"# Breakdown on the {data.split} split\n\nProduced by:\n\n```\n{_command_line(args)}\n```\n\n"
            f"Model `{data.model_id}`; overall ({args.protocol}, gallery of {res.gallery_size}, {res.n_queries} queries): "
            + ", ".join(f"{k} {payload[k]:.2f}" for k in METRICS) + f". {TIES_DOC}.\n\n")
    _write_out(args.out, out, head + md)
    emit(args, out, lambda: print(head + md))
    return EXIT_OK


def cmd_qualitative(args: argparse.Namespace) -> int:
    from encoders.api import DEFAULT_RUN_DIR, DanceEmbedder
    from indexer.workspace import Workspace

    from .qualitative import default_queries, qualitative_markdown, read_queries, results_as_dict, top_k

    embedder = DanceEmbedder.from_run(args.run or DEFAULT_RUN_DIR, device=args.device)
    data = collect_suite_data(embedder, Workspace.from_args(args), args.split, progress_enabled(args))
    if args.queries is not None:
        queries = read_queries(args.queries)
    else:
        queries = default_queries(data.query_texts, data.query_clip, data.query_genres, args.per_genre, args.seed)
    q_emb = embedder.encode_text([q.text for q in queries])
    results = top_k(q_emb, data.gallery_emb, data.clips, queries, k=args.top)
    md = (f"# Qualitative results\n\nProduced by:\n\n```\n{_command_line(args)}\n```\n\n"
          + qualitative_markdown(results, data.gallery_size, data.model_id, data.split))
    out = {"split": data.split, "model": data.model_id, "gallery_size": data.gallery_size,
           "queries": results_as_dict(results)}
    _write_out(args.out, out, md)
    emit(args, out, lambda: print(md))
    return EXIT_OK


def cmd_ablations(args: argparse.Namespace) -> int:
    from indexer.workspace import Workspace

    from .ablations import VARIANTS, run_ablations

    ws = Workspace.from_args(args)
    if args.config is not None and not args.config.is_file():
        raise InputError(str(args.config), "no such run config", field="--config",
                         expected="a JSON/TOML file with 'model' and 'train' sections", got="missing file")
    names = [v.strip() for v in args.variants.split(",")] if args.variants else None
    unknown = sorted(set(names or []) - {v.name for v in VARIANTS})
    if unknown:
        raise DanceSearchError(f"unknown variants {unknown}; known: {', '.join(v.name for v in VARIANTS)}")
    result = run_ablations(ws, args.out, runs_dir=args.runs, epochs=args.epochs, seed=args.seed, names=names,
                           n_boot=args.bootstrap, device=args.device, reuse=args.reuse,
                           progress=progress_enabled(args), command=_command_line(args), config=args.config,
                           demo_out=args.demo_out)
    emit(args, result, lambda: print((Path(args.out) / "ablations.md").read_text(encoding="utf-8")))
    return EXIT_OK if not result.get("failed") else EXIT_FAILED


def cmd_real_data(args: argparse.Namespace) -> int:
    import sys

    from encoders.cliutil import EXIT_USAGE
    from indexer.clipping import check_min_seconds

    from .real_data import REAL_MIN_SECONDS, default_shared_dir, real_data_markdown, run_real_data

    min_seconds = REAL_MIN_SECONDS if args.min_seconds is None else args.min_seconds
    try:
        check_min_seconds(min_seconds)
    except ValueError as exc:
        print(f"error: --min-seconds: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if args.baseline_run is not None and not is_run_dir(args.baseline_run):
        print(f"error: --baseline-run {args.baseline_run} is not a run directory (config.json, best.pt, "
              "norm_stats.npz)", file=sys.stderr)
        return EXIT_USAGE
    shared = args.shared or default_shared_dir()
    if not shared.is_dir():
        payload = {"skipped": True, "reason": f"real data fixtures not found at {shared}"}
        emit(args, payload, lambda: info(f"skipped: {payload['reason']}"))
        return EXIT_OK
    result = run_real_data(shared, work=args.work, run_dir=args.run, device=args.device,
                           progress=progress_enabled(args), baseline_run=args.baseline_run,
                           min_seconds=min_seconds)
    md = real_data_markdown(result, _command_line(args))
    _write_out(args.out, result, md)
    emit(args, result, lambda: print(md))
    return EXIT_OK


def report_name(value: str) -> str:
    """A file stem for --name: letters, digits, '-', '_' and '.', not starting with '.' (no paths)."""
    if not re.fullmatch(r"[A-Za-z0-9_-][A-Za-z0-9_.-]*", value):
        raise argparse.ArgumentTypeError(f"--name must be a plain file stem (letters, digits, - _ .), got {value!r}")
    return value


def cmd_seeds(args: argparse.Namespace) -> int:
    from indexer.workspace import Workspace

    from .seeds import evaluate_seed_runs, find_seed_runs, seeds_markdown

    ws = Workspace.from_args(args)
    names = [v.strip() for v in args.variants.split(",")] if args.variants else None
    result = evaluate_seed_runs(find_seed_runs(args.runs, names), ws, n_boot=args.bootstrap, device=args.device,
                                progress=progress_enabled(args))
    result.update({"root": str(args.runs), "catalog": ws.db_url, "command": _command_line(args)})
    args.out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(args.out / f"{args.name}.json", result)
    atomic_write_text(args.out / f"{args.name}.md", seeds_markdown(result))
    emit(args, result, lambda: print(seeds_markdown(result)))
    return EXIT_OK
