"""How much a generator's dances move, against the real windows they stand for (issue 14, Div_k).

Every model of the GCDance family here samples windows with about half of real dance's kinetic variety (Div_k).
Before training a loss against that (``generation/diffusion/kinetic_loss.py``), this probe measures on the **val**
split whether the samples are under-energetic and how the training terms compare in size:

- ``sampled``: per window and SMPL body joint, the RMS speed of the generated window (DDIM ``--steps``,
  ``--guidance``, its real window's music and genre) over the real window's; the median ratio over joints and
  windows, its quartiles, and the share of windows whose median joint moves slower than in the real window;
  the same ratio's spread across windows (std of log ratio) says whether the energy is regressed to one level;
- ``x0``: at several diffusion steps, the training terms (eq. 5-8 and the kinetic loss, unweighted) of the
  denoiser's clean-motion prediction from the real window noised, with the same median speed ratio.

    python bench/probe_kinetic_energy.py --home .dancesearch --run models/generator \\
        --out bench/results/kinetic_energy_v7.json
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, Sequence

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

LAGS = (1, 8)
"""Frames over which speeds are measured: frame to frame (what FID_k's features see, jitter included) and 8 frames
(0.27 s, about half a beat at 110 BPM: the strokes of the dance, not the frame-rate jitter)."""
PROBE_STEPS = (50, 200, 400, 600, 800, 950)
"""Diffusion steps (of 1,000) at which the x0 prediction is probed: from nearly clean to nearly pure noise."""


def body_rms_speed(positions: np.ndarray, fps: float, lag: int = 1) -> np.ndarray:
    """(N, T, J, 3) positions of the 52 SMPL-X joints -> (N, 22) RMS speed of the SMPL body joints (m/s), with the
    training loss's own function, so probe and loss measure the same thing."""
    import torch

    from generation.diffusion.kinetic_loss import rms_joint_speed

    return rms_joint_speed(torch.as_tensor(positions), fps, lag).numpy()


def ratio_summary(generated: np.ndarray, real: np.ndarray) -> dict[str, float]:
    """Speed ratios (N, 22) generated / real: median, quartiles, share of windows slower than real, and the
    spread of the windows' own (median-joint) log ratio and log speed, generated and real."""
    ratio = generated / np.maximum(real, 1e-6)
    per_window = np.median(ratio, axis=1)
    return {"median_ratio": float(np.median(ratio)), "q25_ratio": float(np.quantile(ratio, 0.25)),
            "q75_ratio": float(np.quantile(ratio, 0.75)), "share_windows_slower": float(np.mean(per_window < 1)),
            "std_log_window_speed_generated": float(np.std(np.log(np.median(generated, axis=1) + 1e-6))),
            "std_log_window_speed_real": float(np.std(np.log(np.median(real, axis=1) + 1e-6)))}


def probe(home: Path, run: Path, steps: int, guidance: float, seed: int, windows: int | None) -> dict[str, Any]:
    import torch

    from bench.ablate_generator import spread_indices
    from generation.diffusion.evaluate import generate_for_split
    from generation.diffusion.kinetic_loss import kinetic_energy_loss
    from generation.diffusion.losses import diffusion_losses, pose
    from generation.diffusion.pipeline import DancePipeline
    from generation.diffusion.schedule import DDIMScheduler
    from generation.metrics.catalog_source import window_store
    from generation.representation.layout import FPS

    store = window_store(home)
    pipe = DancePipeline.from_pretrained(run)
    indices = spread_indices(store.num_windows("val"), windows)
    wins = [store.window("val", i) for i in indices]
    norm = pipe.normalizer
    x0 = torch.as_tensor(np.stack([norm.normalise(w.motion) for w in wins]), dtype=torch.float32)
    with torch.no_grad():
        real_pos = pose(x0, x0, norm).target_positions
    real_speed = {lag: body_rms_speed(real_pos.numpy(), FPS, lag) for lag in LAGS}
    gen, gen_s = generate_for_split(pipe, store, "val", steps, guidance, seed, indices=indices)
    gen_pos = np.stack([s.positions for s in gen])
    sampled = {f"lag_{lag}": ratio_summary(body_rms_speed(gen_pos, FPS, lag), real_speed[lag]) for lag in LAGS}
    sched = DDIMScheduler()
    music = torch.as_tensor(np.stack([w.music for w in wins]))
    genre = pipe.genre_embeddings[torch.tensor([pipe.genre_index(w.genre) for w in wins])]
    gen_noise = torch.Generator().manual_seed(seed)
    x0_rows = []
    for t_value in PROBE_STEPS:
        t = torch.full((len(wins),), t_value)
        xt = sched.add_noise(x0, torch.randn(x0.shape, generator=gen_noise), t)
        with torch.no_grad():
            pred = pipe.model(xt, t, music, genre)
            posed = pose(pred, x0, norm)
            terms = {k: float(v) for k, v in diffusion_losses(pred, x0, norm, posed).items()}
            terms["kinetic"] = float(kinetic_energy_loss(posed.pred_positions, posed.target_positions))
        pred_pos = posed.pred_positions.numpy()
        x0_rows.append({"t": t_value, **terms,
                        **{f"lag_{lag}": ratio_summary(body_rms_speed(pred_pos, FPS, lag), real_speed[lag])
                           for lag in LAGS}})
    return {"home": str(home), "run": str(run), "model_id": pipe.model_id, "split": "val", "windows": len(wins),
            "steps": steps, "guidance": guidance, "seed": seed, "sample_seconds": round(gen_s, 1),
            "lags": list(LAGS), "sampled": sampled, "x0": x0_rows}


def markdown(result: dict[str, Any]) -> str:
    lags = result["lags"]
    lines = [f"# Kinetic energy of `{result['model_id']}` on val ({result['windows']} windows)", "",
             f"Sampled (DDIM {result['steps']}, guidance {result['guidance']}), generated / real RMS body-joint speed:", ""]
    for lag in lags:
        s = result["sampled"][f"lag_{lag}"]
        lines.append(f"- over {lag} frame(s): median {s['median_ratio']:.2f} [IQR {s['q25_ratio']:.2f}-"
                     f"{s['q75_ratio']:.2f}], {s['share_windows_slower']:.0%} of windows slower than real; spread "
                     f"of log window speed {s['std_log_window_speed_generated']:.2f} (real "
                     f"{s['std_log_window_speed_real']:.2f})")
    lines += ["", "x0 predictions from the real window noised to step t (terms unweighted):", "",
              "| t | simple | joints | velocity | foot | kinetic | "
              + " | ".join(f"speed ratio, {lag} fr | slower, {lag} fr" for lag in lags) + " |",
              "|---:|---:|---:|---:|---:|---:|" + "---:|---:|" * len(lags)]
    for r in result["x0"]:
        lines.append(f"| {r['t']} | {r['simple']:.4f} | {r['joints']:.4f} | {r['velocity']:.5f} | {r['foot']:.6f} | "
                     f"{r['kinetic']:.4f} | " + " | ".join(
                         f"{r[f'lag_{lag}']['median_ratio']:.2f} | {r[f'lag_{lag}']['share_windows_slower']:.0%}"
                         for lag in lags) + " |")
    return "\n".join(lines) + "\n"


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--home", type=Path, required=True, help="workspace whose catalog gives the val windows")
    p.add_argument("--run", type=Path, required=True, help="generator run directory")
    p.add_argument("--steps", type=int, default=20, help="DDIM steps of the samples (default 20)")
    p.add_argument("--guidance", type=float, default=2.0, help="guidance weight (default 2)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--windows", type=int, default=None, help="at most this many val windows, spread (default all)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--out", type=Path, required=True, help="JSON result (a .md table is written beside it)")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    import torch

    from bench.machine import machine_info
    from encoders.atomic_io import atomic_write_json
    from encoders.errors import DanceSearchError

    args = build_parser().parse_args(argv)
    torch.set_num_threads(max(1, args.threads))
    try:
        result = probe(args.home, args.run, args.steps, args.guidance, args.seed, args.windows)
    except DanceSearchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    result["machine"] = machine_info()
    atomic_write_json(args.out, result)
    args.out.with_suffix(".md").write_text(markdown(result))
    print(markdown(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
