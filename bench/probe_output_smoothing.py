"""Diagnosis: would smoothing the generator's output over time help its quality figures?

The generated windows' mean jerk is 2.7x real dance's (docs/results/generation.md), which suggests frame-level
jitter; a Gaussian low-pass over time is the obvious post-process. This probe generates one window per real
test window (as ``bench/eval_generator.py``: same music, genre and seed), smooths the joint positions with a
Gaussian of each ``--sigmas`` value (frames; 0 = as generated) and scores every version with the metric suite
against the same real windows. It smooths positions, not the model's rotations, so it bounds what a
rotation-space filter could do rather than being one.

    python bench/probe_output_smoothing.py --home .dancesearch --run models/generator --json out.json
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch
from scipy.ndimage import gaussian_filter1d

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from encoders.atomic_io import atomic_write_json  # noqa: E402
from generation.diffusion.evaluate import generate_for_split  # noqa: E402
from generation.diffusion.pipeline import DancePipeline  # noqa: E402
from generation.metrics.catalog_source import window_samples, window_store  # noqa: E402
from generation.metrics.sample import DanceSample  # noqa: E402
from generation.metrics.suite import evaluate_generation  # noqa: E402

REPORTED = ("fid_k", "fid_g", "fid_hand", "div_k", "div_g", "bas")


def smoothed(sample: DanceSample, sigma: float) -> DanceSample:
    """The sample with its positions low-passed over time (sigma in frames; 0: unchanged)."""
    if sigma == 0:
        return sample
    return DanceSample(sample.name, gaussian_filter1d(sample.positions, sigma, axis=0, mode="nearest"), sample.fps,
                       sample.joint_names, sample.music_beats, sample.meta)


def probe(home: str, run: str, sigmas: list[float], seed: int) -> dict:
    start = time.perf_counter()
    store = window_store(home)
    real = window_samples(store, "test")
    generated, _ = generate_for_split(DancePipeline.from_pretrained(run), store, "test", 20, 2.0, seed)
    rows, ground_truth = {}, None
    for sigma in sigmas:
        scored = evaluate_generation([smoothed(s, sigma) for s in generated], real, "dancesearch", per_sample=False)
        rows[str(sigma)] = {**{k: scored["metrics"].get(k) for k in REPORTED},
                            **{k: v.get("pred") for k, v in scored["physical"].items()}}
        ground_truth = {**scored["gt_reference"], **{k: v.get("gt") for k, v in scored["physical"].items()}}
    return {"run": run, "home": home, "windows": len(real), "seed": seed, "steps": 20, "guidance": 2.0,
            "by_sigma_frames": rows, "ground_truth": ground_truth, "seconds": round(time.perf_counter() - start, 1)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--home", required=True, help="workspace whose window cache holds the demo catalog")
    ap.add_argument("--run", required=True, help="generator run directory (e.g. models/generator)")
    ap.add_argument("--sigmas", default="0,0.5,1", help="Gaussian sigmas in frames, comma-separated (0: none)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json", metavar="FILE", help="write the result here as well")
    args = ap.parse_args()
    try:
        sigmas = [float(x) for x in args.sigmas.split(",")]
    except ValueError:
        ap.error(f"--sigmas: comma-separated numbers expected, got {args.sigmas!r}")
    if any(s < 0 for s in sigmas):
        ap.error("--sigmas must be >= 0")
    torch.set_num_threads(max(1, args.threads))
    out = probe(args.home, args.run, sigmas, args.seed)
    for sigma, row in out["by_sigma_frames"].items():
        print(f"sigma {sigma}: " + ", ".join(f"{k} {v:.4g}" for k, v in row.items() if v is not None))
    print("real test windows: " + ", ".join(f"{k} {v:.4g}" for k, v in out["ground_truth"].items() if v is not None))
    if args.json:
        atomic_write_json(Path(args.json), out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
