"""Benchmark: the generator's speed on this machine (issue 14).

Median of ``--repeats`` runs of: one 4-s window at the default settings (20 DDIM steps, guidance 2, so two
model passes per step) and at 50 steps; a 12-s dance with long-term sampling (5 overlapping windows as one
batch); training windows/s (a few optimiser steps at batch 32). Also parameters and checkpoint size.
Records the machine and its load: numbers taken while other jobs run are slower, say so when you quote them.

    python bench/bench_generation.py --run models/generator [--repeats 3] [--out bench/results/generation.json]
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.machine import machine_info  # noqa: E402
from encoders.atomic_io import atomic_write_json, atomic_write_text  # noqa: E402


def _median(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run", type=Path, default=ROOT / "models" / "generator")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "generation.json")
    args = ap.parse_args()

    import numpy as np
    import torch

    from generation.diffusion.denoiser import GCDanceDenoiser
    from generation.diffusion.losses import diffusion_losses
    from generation.diffusion.pipeline import DancePipeline

    torch.set_num_threads(args.threads)
    pipe = DancePipeline.from_pretrained(args.run)
    w = pipe.window_frames
    rng = np.random.default_rng(0)
    music4 = rng.normal(size=(w, 35)).astype(np.float32)
    music12 = rng.normal(size=(3 * w, 35)).astype(np.float32)
    genre = pipe.genres[0]
    pipe(music4, genre, steps=2)                                       # warm-up
    r = {
        "window_default_s": _median(lambda: pipe(music4, genre, steps=20, guidance=2.0), args.repeats),
        "window_50_steps_s": _median(lambda: pipe(music4, genre, steps=50, guidance=2.0), args.repeats),
        "window_no_guidance_s": _median(lambda: pipe(music4, genre, steps=20, guidance=1.0), args.repeats),
        "dance_12s_default_s": _median(lambda: pipe(music12, genre, steps=20, guidance=2.0), args.repeats),
    }
    model: GCDanceDenoiser = GCDanceDenoiser(pipe.model.config)
    opt = torch.optim.AdamW(model.parameters())
    x = torch.randn(32, w, 319)
    music = torch.randn(32, w, 35)
    g = torch.randn(32, model.config.genre_dim)

    def train_step() -> None:
        t = torch.randint(0, 1000, (32,))
        loss = sum(diffusion_losses(model(x, t, music, g), x, pipe.normalizer).values())
        opt.zero_grad()
        loss.backward()
        opt.step()

    train_step()
    step_s = _median(train_step, args.repeats)
    r["train_windows_per_s"] = round(32 / step_s, 1)
    r["parameters"] = sum(p.numel() for p in pipe.model.parameters())
    r["checkpoint_mb"] = round((args.run / "model.pt").stat().st_size / 2**20, 2)
    r = {k: (round(v, 3) if isinstance(v, float) else v) for k, v in r.items()}
    result = {"benchmark": "generator speed", "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
              "machine": machine_info(), "run": str(args.run), "threads": args.threads, "repeats": args.repeats, **r}
    atomic_write_json(args.out, result)
    md = ["# Generator speed", "",
          f"{result['date']}, {result['machine']['cpu']} ({result['machine']['cpu_count']} cores, load "
          f"{result['machine']['load_average_1m']:.1f}), {args.threads} torch threads, median of {args.repeats}.", "",
          "| what | value |", "|---|---:|",
          f"| one 4-s window, 20 DDIM steps, guidance 2 | {r['window_default_s']} s |",
          f"| one 4-s window, 50 steps, guidance 2 | {r['window_50_steps_s']} s |",
          f"| one 4-s window, 20 steps, no guidance | {r['window_no_guidance_s']} s |",
          f"| a 12-s dance (5 overlapping windows, one batch), 20 steps, guidance 2 | {r['dance_12s_default_s']} s |",
          f"| training, batch 32 | {r['train_windows_per_s']} windows/s |",
          f"| parameters | {r['parameters']:,} |", f"| checkpoint | {r['checkpoint_mb']} MB |", ""]
    atomic_write_text(args.out.with_suffix(".md"), "\n".join(md))
    print("\n".join(md))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
