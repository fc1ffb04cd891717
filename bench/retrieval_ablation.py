"""Train the full CustomDancer model and each ablation variant on a workspace; evaluate them on its test split.

Writes each run to ``--runs DIR/<variant>``, the full model additionally to ``--demo-out`` (the shipped
``models/demo``, with its test metrics added to ``metrics.json`` / README), and the table (full model,
variants, chance level; full-gallery protocol) to ``--results`` (markdown) and ``.json`` beside it.

    python bench/retrieval_ablation.py --home /tmp/ds_home --epochs 30
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from encoders.api import DanceEmbedder  # noqa: E402
from encoders.atomic_io import atomic_write_json, atomic_write_text  # noqa: E402
from encoders.training.run_dir import RunConfig, load_run, model_card  # noqa: E402
from encoders.training.trainer import train  # noqa: E402
from eval.metrics import FULL_GALLERY_PROTOCOL, chance_metrics, markdown_row  # noqa: E402
from eval.retrieval import evaluate_retrieval  # noqa: E402
from indexer.datasets import examples_for_split  # noqa: E402
from indexer.workspace import Workspace  # noqa: E402

VARIANTS: dict[str, tuple[str, str]] = {  # name: (temporal, fusion)
    "full": ("transformer", "blend"),
    "lstm": ("lstm", "blend"),
    "rnn": ("rnn", "blend"),
    "add": ("transformer", "add"),
    "mul": ("transformer", "mul"),
    "motion-only": ("transformer", "motion"),
    "music-only": ("transformer", "music"),
}
LABELS = {"full": "CustomDancer (transformer, blend)", "lstm": "LSTM backbone (blend)", "rnn": "RNN backbone (blend)",
          "add": "ADD fusion (transformer)", "mul": "MUL fusion (transformer)", "motion-only": "motion only",
          "music-only": "music only"}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--home", type=Path, nargs="+", required=True,
                    help="workspace(s); several are merged (e.g. a corpus ingested in parallel parts)")
    ap.add_argument("--config", type=Path, default=None)
    ap.add_argument("--epochs", type=int, default=None)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--variants", nargs="*", default=list(VARIANTS), choices=list(VARIANTS))
    ap.add_argument("--runs", type=Path, default=Path("/tmp/ds_runs"))
    ap.add_argument("--demo-out", type=Path, default=ROOT / "models" / "demo")
    ap.add_argument("--results", type=Path, default=ROOT / "docs" / "results" / "retrieval_demo.md")
    ap.add_argument("--merge", type=Path, nargs="*", default=[],
                    help="result JSON files of other runs of this script (e.g. run in parallel) to fold into the table")
    args = ap.parse_args()

    workspaces = [Workspace(h) for h in args.home]

    def split_examples(split: str) -> list:
        out = []
        for k, ws in enumerate(workspaces):
            for ex in examples_for_split(ws, split):
                ex.clip_id = f"{k}:{ex.clip_id}" if len(workspaces) > 1 else ex.clip_id
                out.append(ex)
        return out

    train_ex, val_ex, test_ex = (split_examples(s) for s in ("train", "val", "test"))
    homes = " ".join(str(h) for h in args.home)
    print(f"train {len(train_ex)}  val {len(val_ex)}  test {len(test_ex)} clips", file=sys.stderr)
    json_path = args.results.with_suffix(".json")
    rows: dict[str, dict] = json.loads(json_path.read_text())["rows"] if json_path.exists() else {}
    for extra in args.merge:
        rows.update(json.loads(extra.read_text())["rows"])
    base = RunConfig.from_file(args.config) if args.config else RunConfig()
    for name in args.variants:
        cfg = RunConfig.from_dict(base.to_dict())
        cfg.model.temporal, cfg.model.fusion = VARIANTS[name]
        cfg.train.seed = args.seed
        if args.epochs:
            cfg.train.epochs = args.epochs
        out = args.runs / name
        t0 = time.perf_counter()
        result = train(cfg, train_ex, val_ex, out, progress=True, data_description=f"demo corpus, workspace(s) {homes}")
        seconds = time.perf_counter() - t0
        emb = DanceEmbedder.from_run(out, device="cpu")
        test = evaluate_retrieval(emb, test_ex, "test").metrics
        rows[name] = {"label": LABELS[name], "temporal": cfg.model.temporal, "fusion": cfg.model.fusion,
                      "best_epoch": result.best_epoch, "epochs_run": len(result.history), "train_seconds": seconds,
                      "seconds_per_epoch": result.seconds_per_epoch, "val": result.best_val,
                      "test": {k: test[k] for k in ("R@1", "R@5", "R@10", "MedR", "MnR", "gallery_size", "num_queries")},
                      "model_id": emb.model_id}
        print(f"{name}: test {markdown_row(name, test)}", file=sys.stderr)
        if name == "full":
            if args.demo_out.exists():
                shutil.rmtree(args.demo_out)
            shutil.copytree(out, args.demo_out)
            metrics = json.loads((args.demo_out / "metrics.json").read_text())
            metrics["test"] = {**rows[name]["test"], "protocol": FULL_GALLERY_PROTOCOL}
            atomic_write_json(args.demo_out / "metrics.json", metrics)
            run = load_run(args.demo_out, "cpu")
            history = json.loads((args.demo_out / "history.json").read_text())
            data_info = json.loads((args.demo_out / "config.json").read_text())["data"]
            card = model_card(run.config, run.model, history, metrics, data_info)
            card += ("\n## Reproduce\n\n```bash\n"
                     "dancesearch corpus demo --out /tmp/train_corpus --clips 1440 --seed 1\n"
                     "dancesearch ingest npz /tmp/train_corpus --home /tmp/train_home --source demo\n"
                     f"python bench/retrieval_ablation.py --home /tmp/train_home --config models/demo/config.json --seed {args.seed}"
                     + (f" --epochs {args.epochs}" if args.epochs else "") + "   # full model -> models/demo, plus the ablations\n"
                     "dancesearch eval retrieval --home /tmp/train_home --run models/demo --split test\n```\n"
                     "\nTable with the ablation variants and chance: `docs/results/retrieval_demo.md`.\n")
            atomic_write_text(args.demo_out / "README.md", card)
        atomic_write_json(json_path, {"rows": rows, "protocol": FULL_GALLERY_PROTOCOL,
                                      "chance": chance_metrics(len(test_ex)), "threads": torch.get_num_threads()})
    atomic_write_json(json_path, {"rows": rows, "protocol": FULL_GALLERY_PROTOCOL,
                                  "chance": chance_metrics(len(test_ex)), "threads": torch.get_num_threads()})
    chance = chance_metrics(len(test_ex))
    n_q = next(iter(rows.values()))["test"]["num_queries"] if rows else 0
    lines = ["# Text-to-dance retrieval on the demo corpus (test split)", "",
             f"Protocol: {FULL_GALLERY_PROTOCOL}. Gallery {len(test_ex)} clips, {n_q} caption queries. "
             "R@K in percent (higher is better); MedR / MnR are ranks (lower is better). "
             f"Trained on {len(train_ex)} train clips, model selected on {len(val_ex)} val clips, seed {args.seed}, CPU.", "",
             "| model | R@1 | R@5 | R@10 | MedR | MnR | best epoch | s/epoch |", "|---|---|---|---|---|---|---|---|"]
    for name in VARIANTS:
        if name in rows:
            r = rows[name]
            lines.append(markdown_row(r["label"], r["test"]) + f" {r['best_epoch']}/{r['epochs_run']} | {r['seconds_per_epoch']:.1f} |")
    lines.append(markdown_row("chance (random ranking, expected)", chance) + " - | - |")
    lines.append("")
    atomic_write_text(args.results, "\n".join(lines))
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
