"""Benchmark: the demo pipeline as `make demo` runs it, generation + ingestion (+ feature extraction).

Runs the real commands in subprocesses on a fresh temporary workspace and times each step:
``dancesearch corpus demo --out DIR [--clips N]`` then ``dancesearch ingest npz DIR --home HOME``.
The issue's budget: at most 3 minutes for the default size on this 2-core machine.

    python bench/bench_demo_pipeline.py [--clips N] [--out bench/results/demo_pipeline.json]
"""
from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.machine import machine_info  # noqa: E402
from encoders.atomic_io import atomic_write_json  # noqa: E402
from generation.procedural.defaults import DEFAULT_CLIPS  # noqa: E402


def timed(cmd: list[str]) -> float:
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, cwd=ROOT)
    return time.perf_counter() - t0


def disk_mb(path: Path) -> float:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) / 2**20


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clips", type=int, default=DEFAULT_CLIPS)
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "demo_pipeline.json")
    args = ap.parse_args()
    exe = [sys.executable, "-m", "ui.cli"]
    work = Path(tempfile.mkdtemp(prefix="dancesearch-bench-"))
    try:
        corpus, home = work / "corpus", work / "home"
        gen_s = timed([*exe, "corpus", "demo", "--out", str(corpus), "--clips", str(args.clips), "--json"])
        ingest_s = timed([*exe, "ingest", "npz", str(corpus), "--home", str(home), "--source", "demo", "--json"])
        result = {"benchmark": "demo pipeline (corpus demo + ingest npz)", "date": datetime.now(timezone.utc).isoformat(),
                  "machine": machine_info(), "clips": args.clips, "generate_s": round(gen_s, 1),
                  "ingest_s": round(ingest_s, 1), "total_s": round(gen_s + ingest_s, 1),
                  "ingest_clips_per_s": round(args.clips / ingest_s, 2), "corpus_mb": round(disk_mb(corpus), 1),
                  "workspace_mb": round(disk_mb(home), 1), "budget_s": 180}
    finally:
        shutil.rmtree(work, ignore_errors=True)
    atomic_write_json(args.out, result)
    print("| clips | generate s | ingest s | total s | budget s | corpus MB | workspace MB |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    print(f"| {result['clips']} | {result['generate_s']} | {result['ingest_s']} | {result['total_s']} | 180 | "
          f"{result['corpus_mb']} | {result['workspace_mb']} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
