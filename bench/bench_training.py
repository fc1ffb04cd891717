"""Training and embedding cost of CustomDancer on this machine (default: 2 CPU threads).

Measures, on a workspace's catalog (``--home``, ingested first) or on synthetic clips (no ``--home``):
- training seconds per epoch (forward + backward over the train split; features already in memory);
- dance embedding throughput (clips/s) through ``DanceEmbedder.encode_dances`` from in-memory records
  (feature extraction + model), batch 64;
- text encoding latency of one query (median over distinct, uncached queries, and cached).

Writes ``bench/results/training.json`` and ``bench/results/training.md``.

    python bench/bench_training.py --home /tmp/ds_home --config models/demo/config.json --epochs 2
"""
from __future__ import annotations

import argparse
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from encoders.api import DanceEmbedder, DanceInput  # noqa: E402
from encoders.atomic_io import atomic_write_json, atomic_write_text  # noqa: E402
from encoders.motion.record import MotionRecord  # noqa: E402
from encoders.training.data import load_music  # noqa: E402
from encoders.training.run_dir import RunConfig  # noqa: E402
from encoders.training.trainer import train  # noqa: E402


def _examples(home: Path | None, tmp: Path):
    if home is None:
        sys.path.insert(0, str(ROOT / "tests"))
        from synthetic_clips import write_clips
        return (write_clips(tmp / "train", per_genre=50, frames=360), write_clips(tmp / "val", per_genre=10, seed=1,
                                                                               frames=360, split="val"), "synthetic 4 genres")
    from indexer.datasets import examples_for_split
    from indexer.workspace import Workspace
    ws = Workspace(home)
    return examples_for_split(ws, "train"), examples_for_split(ws, "val"), f"workspace {home}"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--home", type=Path, default=None, help="workspace with an ingested corpus (default: synthetic)")
    ap.add_argument("--config", type=Path, default=None, help="run config (JSON/TOML); default: ModelConfig defaults")
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    cfg = RunConfig.from_file(args.config) if args.config else RunConfig()
    cfg.train.epochs, cfg.train.num_threads, cfg.train.device = args.epochs, args.threads, "cpu"
    with tempfile.TemporaryDirectory() as tmpd:
        tmp = Path(tmpd)
        train_ex, val_ex, desc = _examples(args.home, tmp)
        result = train(cfg, train_ex, val_ex, tmp / "run", progress=True)
        emb = DanceEmbedder.from_run(tmp / "run", device="cpu")
        gallery = (val_ex or train_ex)[:256]
        dances = [DanceInput(MotionRecord.load(e.motion_path), load_music(e.music_path)) for e in gallery]
        emb.encode_dances(dances[:8])  # warm-up
        t0 = time.perf_counter()
        emb.encode_dances(dances)
        throughput = len(dances) / (time.perf_counter() - t0)
        emb.encode_text(["warm up query"])
        uncached = []
        for i in range(20):
            t0 = time.perf_counter()
            emb.encode_text([f"a fast salsa with quick turns number {i}"])
            uncached.append(time.perf_counter() - t0)
        cached = []
        for i in range(20):
            t0 = time.perf_counter()
            emb.encode_text(["a fast salsa with quick turns number 3"])
            cached.append(time.perf_counter() - t0)
    report = {
        "data": desc, "train_clips": len(train_ex), "val_clips": len(val_ex), "epochs": len(result.history),
        "threads": args.threads, "device": "cpu", "torch": torch.__version__, "cpu": platform.processor() or platform.machine(),
        "model": cfg.model.to_dict(), "batch_size": cfg.train.batch_size,
        "train_seconds_per_epoch": round(result.seconds_per_epoch, 3),
        "train_seconds_per_epoch_each": [round(h["train_seconds"], 3) for h in result.history],
        "embed_clips_per_s": round(throughput, 2), "embed_gallery_clips": len(dances),
        "text_latency_ms_uncached_median": round(1000 * statistics.median(uncached), 2),
        "text_latency_ms_cached_median": round(1000 * statistics.median(cached), 3),
    }
    args.out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(args.out / "training.json", report)
    md = "\n".join([
        "# Training and embedding bench", "",
        f"{desc}; {report['train_clips']} train / {report['val_clips']} val clips; CPU, {args.threads} threads; "
        f"torch {torch.__version__}; backbone {cfg.model.backbone} (frozen: {cfg.model.freeze_backbone}), "
        f"{cfg.model.temporal}/{cfg.model.fusion}, d_model {cfg.model.d_model}, {cfg.model.layers} layers, "
        f"batch {cfg.train.batch_size}.", "",
        "| measure | value |", "|---|---|",
        f"| training seconds per epoch (mean of {report['epochs']}) | {report['train_seconds_per_epoch']:.2f} |",
        f"| dance embedding throughput (clips/s, {len(dances)} clips, features + model) | {throughput:.1f} |",
        f"| text query latency, uncached (ms, median of 20) | {report['text_latency_ms_uncached_median']:.1f} |",
        f"| text query latency, cached backbone features (ms, median of 20) | {report['text_latency_ms_cached_median']:.2f} |",
        "",
    ])
    atomic_write_text(args.out / "training.md", md)
    print(md)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
