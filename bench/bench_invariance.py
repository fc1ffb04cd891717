"""Benchmark: does a model embed the dance or the rig? (issue 17, "skeleton-invariant motion input")

Procedural dances of every genre (built in memory from the corpus plan, the same clips for every model)
are perturbed the way real captures differ from them (``encoders.motion.augment.RealismAugment``, one
perturbation at a time and all together, mirror excluded: a mirrored take is another dance for a
caption that says "left"), converted to joint positions as a BVH would deliver them, and embedded again.
Figure per perturbation: the cosine between a clip's embedding before and after (median, 5th percentile,
minimum), next to the median cosine between different clips (what "unrelated" looks like). With
``../shared/data``, the two skeleton conversions of CMU 05_20 (DAZ, MotionBuilder) are compared too.

    python bench/bench_invariance.py --run models/demo --baseline-run OLD_RUN --out docs/results/invariance
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from bench.machine import machine_info  # noqa: E402
from encoders.atomic_io import atomic_write_json, atomic_write_text  # noqa: E402

PERTURBATIONS = {   # RealismAugment fields: proportion, bone angle, marker noise, jitter, mirror, low fps, drift
    "body proportions (sigma 10%)": dict(proportion_sigma=0.1),
    "rig bone angles (sigma 12 deg)": dict(bone_angle_deg=12.0),
    "marker noise 8 mm + jitter 15 mm": dict(marker_noise_m=0.008, jitter_m=0.015),
    "captured at 20-25 fps": dict(low_fps_prob=1.0),
    "root drift (sigma 3 cm/s)": dict(drift_m_per_s=0.03),
    "all of the above": dict(proportion_sigma=0.1, bone_angle_deg=12.0, marker_noise_m=0.008, jitter_m=0.015,
                             low_fps_prob=0.3, drift_m_per_s=0.03),
}


def procedural_clips(count: int, seed: int):
    from generation.procedural.choreographer import choreograph
    from generation.procedural.plan import plan_corpus

    specs = plan_corpus(max(count, 18) * 2, seed)[:count]
    return [(s.genre, choreograph(s).record()) for s in specs]


def measure(run: str | None, clips, seed: int, shared: Path) -> dict:
    from encoders.api import DanceEmbedder, DanceInput
    from encoders.motion.augment import RealismAugment
    from encoders.motion.convert import from_positions
    from encoders.motion.skeleton import SMPL_BODY_22

    emb = DanceEmbedder.from_run(run)
    records = [r for _, r in clips]
    # the reference is the clip as a position-only source (BVH-like) delivers it, so a model reading SMPL-X
    # rotations is not charged for losing them: only the perturbation differs
    plain = [from_positions(r.body22(), SMPL_BODY_22, 30.0) for r in records]
    base = emb.encode_dances([DanceInput(r, None) for r in plain])
    sims = base @ base.T
    out = {"model": emb.model_id, "run": run or "models/demo", "clips": len(records),
           "other_clip_cosine_median": float(np.median(sims[~np.eye(len(records), dtype=bool)])), "perturbations": {}}
    zero = dict(proportion_sigma=0.0, bone_angle_deg=0.0, marker_noise_m=0.0, jitter_m=0.0, mirror_prob=0.0,
                low_fps_prob=0.0, drift_m_per_s=0.0)
    for name, fields in PERTURBATIONS.items():
        aug = RealismAugment(**{**zero, **fields})
        rng = np.random.default_rng(seed)
        moved = [from_positions(aug.apply(r.body22(), 30.0, rng)[0], SMPL_BODY_22, 30.0) for r in records]
        cos = (emb.encode_dances([DanceInput(r, None) for r in moved]) * base).sum(axis=1)
        out["perturbations"][name] = {"median": float(np.median(cos)), "p5": float(np.percentile(cos, 5)),
                                      "min": float(cos.min())}
    daz, mb = shared / "bvh" / "cmu_misc" / "05_20-daz.bvh", shared / "bvh" / "cmu_misc" / "05_20-mb.bvh"
    if daz.is_file() and mb.is_file():
        from encoders.motion.bvh import read_bvh

        e = emb.encode_dances([DanceInput(read_bvh(p).to_record(), None) for p in (daz, mb)] +
                              [DanceInput(r, None) for r in plain])
        out["cmu_05_20_daz_vs_mb"] = {"cosine": float(e[0] @ e[1]),
                                      "best_other": float(max((e[:2] @ e[2:].T).max(axis=1).min(), -1.0))}
    return out


def markdown(results: list[dict], command: str, machine: dict) -> str:
    lines = ["# Invariance: the same dance on other bodies, rigs and capture conditions", "",
             "Produced by:", "", "```", command, "```", "",
             f"{results[0]['clips']} procedural dances (every genre), each perturbed once per row "
             "(`encoders.motion.augment.RealismAugment`, one random draw per clip, seeded) and delivered as joint "
             "positions; cosine between the clip's embedding before and after. `other clips`: median cosine "
             f"between different clips. Machine: {machine.get('cpu', '?')}.", "",
             "| perturbation | " + " | ".join(f"`{r['model']}` median / p5 / min" for r in results) + " |",
             "|---|" + "---|" * len(results)]
    for name in PERTURBATIONS:
        cells = [f"{r['perturbations'][name]['median']:.3f} / {r['perturbations'][name]['p5']:.3f} / "
                 f"{r['perturbations'][name]['min']:.3f}" for r in results]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines.append("| other clips (median) | " + " | ".join(f"{r['other_clip_cosine_median']:.3f}" for r in results) + " |")
    if all("cmu_05_20_daz_vs_mb" in r for r in results):
        lines.append("| CMU 05_20 DAZ vs MB rig (real take) | " + " | ".join(
            f"{r['cmu_05_20_daz_vs_mb']['cosine']:.3f} (nearest other {r['cmu_05_20_daz_vs_mb']['best_other']:.3f})"
            for r in results) + " |")
    lines += ["", "Runs: " + "; ".join(f"`{r['model']}` = `{r['run']}`" for r in results), ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--run", default=None, help="run directory (default: models/demo)")
    ap.add_argument("--baseline-run", default=None, help="a second run measured on the same clips")
    ap.add_argument("--clips", type=int, default=36)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--shared", type=Path, default=ROOT.parent / "shared" / "data")
    ap.add_argument("--out", type=Path, default=None, help="write OUT.json and OUT.md")
    args = ap.parse_args(argv)
    clips = procedural_clips(args.clips, args.seed)
    results = [measure(args.run, clips, args.seed, args.shared)]
    if args.baseline_run:
        results.append(measure(args.baseline_run, clips, args.seed, args.shared))
    command = "python bench/bench_invariance.py " + " ".join(argv if argv is not None else sys.argv[1:])
    machine = machine_info()
    payload = {"command": command, "machine": machine, "results": results}
    if args.out:
        atomic_write_json(args.out.with_suffix(".json"), payload)
        atomic_write_text(args.out.with_suffix(".md"), markdown(results, command, machine))
    print(json.dumps(payload, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
