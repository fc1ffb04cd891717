"""Diagnosis: how far apart the denoiser's genre conditions are, genre by genre, and whether that tracks control.

The genre reaches the GCDance denoiser only through one vector per window: the adapter's output for the run's
genre table (``RUN/genre_embeddings.npy``), added to the step embedding and turned into FiLM parameters. If two
genres' adapter outputs point the same way, the denoiser is asked for nearly the same thing and cannot make them
differently. This probe reads a trained run (no sampling, a second of CPU) and reports, per genre, the cosine of
its table row and of its adapter output to the nearest other genre's, and the norm of the adapter output about
the genres' mean (how much of it is genre-specific). Given a paired comparison JSON
(``bench/ablate_generator.py compare --out``), it puts each run's per-genre control rate beside those figures
with their Spearman rank correlation.

    python bench/probe_genre_code.py --runs v3=RUN_V3 v7=models/generator \
        --compare docs/results/generator_v7_vs_v3.json --json bench/results/genre_code_probe.json
"""
from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch
from scipy.stats import spearmanr

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from encoders.atomic_io import atomic_write_json  # noqa: E402
from encoders.machine import machine_info  # noqa: E402
from encoders.errors import DanceSearchError  # noqa: E402
from generation.diffusion.pipeline import DancePipeline  # noqa: E402


def _nearest(vectors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per row: the highest cosine to another row, and that row's index."""
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    cos = unit @ unit.T
    np.fill_diagonal(cos, -np.inf)
    return cos.max(axis=1), cos.argmax(axis=1)


def condition_geometry(run: str) -> dict:
    """Per-genre geometry of a run's genre table and of its trained adapter's outputs."""
    pipe = DancePipeline.from_pretrained(run)
    table = pipe.genre_embeddings
    with torch.no_grad():
        adapted = pipe.model.genre_adapter(table).numpy()
    table = table.numpy()
    table_cos, _ = _nearest(table)
    adapted_cos, adapted_idx = _nearest(adapted)
    specific = np.linalg.norm(adapted - adapted.mean(axis=0), axis=1)
    genres = list(pipe.genres)
    code = pipe.run_config.get("train", {}).get("genre_code", "prompt")     # runs from before the option: prompt
    return {"run": run, "model_id": pipe.model_id, "genre_code": code,
            "adapter_output_norm_mean": round(float(np.linalg.norm(adapted, axis=1).mean()), 3),
            "per_genre": {g: {"table_nearest_cosine": round(float(table_cos[i]), 3),
                              "adapter_nearest_cosine": round(float(adapted_cos[i]), 3),
                              "adapter_nearest_genre": genres[int(adapted_idx[i])],
                              "adapter_genre_specific_norm": round(float(specific[i]), 3)}
                          for i, g in enumerate(genres)}}


def with_control(geometry: dict, control: dict[str, float]) -> dict:
    """Adds each genre's control rate and the rank correlations of control with the geometry."""
    per = geometry["per_genre"]
    genres = [g for g in per if g in control]
    if len(genres) < 3:
        raise DanceSearchError(f"the comparison's control rates name {len(genres)} of the run's genres: need 3")
    for g in genres:
        per[g]["control"] = round(float(control[g]), 3)
    rates = [control[g] for g in genres]
    for key in ("adapter_nearest_cosine", "adapter_genre_specific_norm"):
        rho, p = spearmanr([per[g][key] for g in genres], rates)
        finite = math.isfinite(rho) and math.isfinite(p)              # constant inputs give NaN: no correlation
        geometry[f"spearman_control_vs_{key}"] = ({"rho": round(float(rho), 3), "p": round(float(p), 4)} if finite
                                                 else None)
    return geometry


def run(args: argparse.Namespace) -> None:
    compare = json.loads(Path(args.compare).read_text()) if args.compare else None
    report = {"date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "machine": machine_info(),
              "compare": args.compare, "runs": {}}
    for spec in args.runs:
        name, sep, run_dir = spec.partition("=")
        if not sep or not name or not run_dir:
            raise DanceSearchError(f"--runs takes NAME=RUN, got {spec!r}")
        geometry = condition_geometry(run_dir)
        if compare is not None:
            runs = compare.get("runs", {})
            if name not in runs:
                raise DanceSearchError(f"{args.compare}: no run named {name!r} (has {', '.join(runs) or 'none'})")
            control = runs[name].get("per_genre_control")
            if not isinstance(control, dict):
                raise DanceSearchError(f"{args.compare}: run {name!r} has no per-genre control rates (compared "
                                       "without --control-music?)")
            geometry = with_control(geometry, control)
        report["runs"][name] = geometry
        print(f"{name} ({geometry['genre_code']}):")
        for g, row in geometry["per_genre"].items():
            print(f"  {g:10s} table {row['table_nearest_cosine']:+.2f}  adapter {row['adapter_nearest_cosine']:+.2f} "
                  f"({row['adapter_nearest_genre']})  specific {row['adapter_genre_specific_norm']:.2f}"
                  + (f"  control {row['control']:.2f}" if "control" in row else ""))
        for key in [k for k in geometry if k.startswith("spearman")]:
            corr = geometry[key]
            print(f"  {key}: " + (f"rho {corr['rho']:+.2f} (p {corr['p']:.3f})" if corr else "undefined"))
    if args.json:
        atomic_write_json(Path(args.json), report)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", nargs="+", required=True, metavar="NAME=RUN", help="generator run directories")
    ap.add_argument("--compare", help="a bench/ablate_generator.py compare JSON holding the same NAMEs' control")
    ap.add_argument("--json", help="write the report here")
    args = ap.parse_args()
    torch.set_num_threads(1)
    try:
        run(args)
    except (DanceSearchError, OSError, json.JSONDecodeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
