"""Probe: the same 12-s dance sampled in the main thread and in a worker thread of one process (issue 15 area).

Why: the generation API's job worker (a thread of the server process) took 2.4-2.9 s of candidate generation for
a 12-s dance (docs/results/generate_api.md), while ``DancePipeline`` in a script's main thread takes about 1 s.
This measures the thread alone, with nothing else running: ``repeats`` dances after a warm-up, in the main
thread, then in a fresh ``threading.Thread``, then in the main thread again. Run it once as is and once with
``OMP_WAIT_POLICY=PASSIVE`` in the environment to see whether OpenMP's waiting policy is what differs.

    python bench/probe_sampler_threads.py [--run models/generator] [--repeats 3] [--out bench/results/sampler_threads.json]
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.machine import machine_info  # noqa: E402
from encoders.atomic_io import atomic_write_json  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run", type=Path, default=ROOT / "models" / "generator")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=12.0)
    ap.add_argument("--out", type=Path, default=None, help="JSON to write (default: print only)")
    args = ap.parse_args()

    import numpy as np
    import torch

    from generation.diffusion.pipeline import DancePipeline

    pipe = DancePipeline.from_pretrained(args.run)
    music = np.random.default_rng(0).normal(size=(int(args.seconds * 30), 35)).astype(np.float32)
    pipe(music, pipe.genres[0], seed=0)                                   # warm-up
    results: dict[str, list[float]] = {}

    def timed(tag: str) -> None:
        times = []
        for i in range(args.repeats):
            t = time.perf_counter()
            pipe(music, pipe.genres[0], seed=i + 1)
            times.append(round(time.perf_counter() - t, 3))
        results[tag] = times

    timed("main thread")
    worker = threading.Thread(target=timed, args=("worker thread",))
    worker.start()
    worker.join()
    timed("main thread again")
    report = {"run": str(args.run), "seconds_of_dance": args.seconds, "repeats": args.repeats,
              "torch_threads": torch.get_num_threads(), "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"),
              "machine": machine_info(), "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
              "seconds": results, "median_s": {k: statistics.median(v) for k, v in results.items()}}
    print(json.dumps({k: report[k] for k in ("omp_wait_policy", "median_s", "seconds")}, indent=1))
    if args.out is not None:
        atomic_write_json(args.out, report)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
