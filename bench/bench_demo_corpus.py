"""Bench: demo corpus generation time (per clip, median, and total) and disk size.

Usage: python bench/bench_demo_corpus.py [--clips N] [--workers W] [--out DIR]
Writes bench/results/demo_corpus.json and prints a markdown table. The corpus goes to a temporary
folder unless --out is given.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from encoders.atomic_io import atomic_write_json  # noqa: E402
from generation.procedural.corpus import DEFAULT_CLIPS, write_demo_corpus  # noqa: E402


def folder_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.iterdir() if p.is_file())


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clips", type=int, default=DEFAULT_CLIPS)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="demo_corpus_") as tmp:
        out = args.out or Path(tmp)
        t = time.perf_counter()
        manifest = write_demo_corpus(out, clips=args.clips, seed=0, workers=args.workers, progress=True)
        total = time.perf_counter() - t
        size = folder_bytes(out)
    try:
        load = os.getloadavg()[0]
    except OSError:
        load = None
    result = {
        "clips": manifest["num_clips"], "workers": manifest["workers"], "total_s": round(total, 2),
        "per_clip_generate_median_ms": manifest["timing"]["per_clip_generate_median_ms"],
        "per_clip_write_median_ms": manifest["timing"]["per_clip_write_median_ms"],
        "wall_per_clip_ms": round(1000 * total / manifest["num_clips"], 1),
        "disk_mb": round(size / 1e6, 1), "cpu_count": os.cpu_count(), "load_avg_1min_at_end": load,
        "python": platform.python_version(),
    }
    atomic_write_json(ROOT / "bench" / "results" / "demo_corpus.json", result)
    print("| clips | workers | total (s) | wall / clip (ms) | generate median (ms) | write median (ms) | disk (MB) |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    print(f"| {result['clips']} | {result['workers']} | {result['total_s']} | {result['wall_per_clip_ms']} | "
          f"{result['per_clip_generate_median_ms']} | {result['per_clip_write_median_ms']} | {result['disk_mb']} |")
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
