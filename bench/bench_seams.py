"""Benchmark: are the seams of long-term sampling visible? (issue 14, "no visible seam")

For the first ``--dances`` test clips of a catalog, a dance as long as the clip's music (at most
``--seconds``) is generated with long-term sampling (4-s windows every 2 s, chained and cross-faded), in
the clip's own genre. The seams are the frames where a window's cross-fade starts or ends (multiples of
the 2-s hop). At each seam the body joints' jerk is compared with the jerk at every interior boundary of
the same dance (``generation.metrics.jerk.seam_jerk_summary``): its percentile among them, its ratio to
their median, and whether it exceeds their 99th percentile ("visible"). The same frames of the real test
clips are the control: a real dance has no seams there, so its percentiles spread around 0.5. A model
that upsamples tokens of ``time_stride`` frames has a jerk pattern with that period and the seams fall on
token boundaries, so the seams are also compared with the interior token boundaries alone. Each overlap
blend of ``--chains`` (``DancePipeline.chain``: smootherstep, linear, replace) runs on the same music, genre
and seed, so the blends are compared pair for pair.

    python bench/bench_seams.py --home .dancesearch --run models/generator [--dances 12] [--seconds 12]
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.machine import machine_info  # noqa: E402
import numpy as np  # noqa: E402

from encoders.atomic_io import atomic_write_json  # noqa: E402


def _summaries(samples, seams_for, period=None):
    from encoders.motion.skeleton import SMPL_BODY_22
    from generation.metrics.jerk import seam_jerk_summary

    return [seam_jerk_summary(s, seams_for(s), list(SMPL_BODY_22), period=period) for s in samples]


def _phase_profile(samples, stride: int) -> list[float]:
    """Median over dances of the mean body jerk at boundaries b with b % stride == phase, over its median."""
    from encoders.motion.skeleton import SMPL_BODY_22
    from generation.metrics.jerk import jerk

    rows = []
    for s in samples:
        per_boundary = jerk(s, list(SMPL_BODY_22)).mean(axis=1)
        b = np.arange(len(per_boundary)) + 2
        med = float(np.median(per_boundary))
        rows.append([float(per_boundary[b % stride == ph].mean() / med) for ph in range(stride)])
    return [round(float(v), 3) for v in np.median(np.asarray(rows), axis=0)]


def _aggregate(summaries) -> dict:
    pct = [p for s in summaries for p in s.seam_percentile]
    ratio = [r for s in summaries for r in s.ratio_to_median]
    visible = [v for s in summaries for v in s.visible]
    return {"seams": len(pct), "median_percentile": statistics.median(pct), "median_ratio_to_interior_median":
            statistics.median(ratio), "p90_ratio_to_interior_median": sorted(ratio)[int(0.9 * (len(ratio) - 1))],
            "visible_share": sum(visible) / len(visible)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--home", type=Path, required=True)
    ap.add_argument("--run", type=Path, default=ROOT / "models" / "generator")
    ap.add_argument("--dances", type=int, default=12)
    ap.add_argument("--seconds", type=float, default=12.0)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--guidance", type=float, default=2.0)
    ap.add_argument("--chains", default="smootherstep,linear,replace",
                    help="overlap blends to compare on the same dances (DancePipeline.chain)")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "generation_seams.json")
    args = ap.parse_args()

    import torch

    from encoders.motion.record import MotionRecord
    from encoders.training.data import load_music
    from generation.diffusion.pipeline import DancePipeline
    from generation.metrics.sample import DanceSample
    from indexer.datasets import examples_for_split
    from indexer.workspace import Workspace

    torch.set_num_threads(2)
    pipe = DancePipeline.from_pretrained(args.run)
    ws = Workspace(args.home)
    examples = [e for e in examples_for_split(ws, "test") if e.music_path][:args.dances]
    hop = pipe.window_frames // 2
    frames = int(args.seconds * 30)
    stride = pipe.model.config.time_stride
    pieces = []
    for e in examples:
        music = load_music(e.music_path)[:frames]
        if len(music) >= 2 * pipe.window_frames:
            motion = MotionRecord.load(e.motion_path).slice(0, len(music))
            pieces.append((e, music, DanceSample(f"real-{e.clip_id}", motion.positions, 30.0, motion.joint_names)))

    def seams_for(sample: DanceSample) -> list[int]:
        return list(range(hop, sample.num_frames - 2, hop))

    real = [p[2] for p in pieces]
    result = {"date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "machine": machine_info(),
              "run": str(args.run), "model_id": pipe.model_id, "home": str(args.home), "dances": len(pieces),
              "seconds_each": args.seconds, "steps": args.steps, "guidance": args.guidance, "hop_frames": hop,
              "time_stride": stride, "joints": "22 SMPL body joints, mean over joints per boundary",
              "real_same_frames": _aggregate(_summaries(real, seams_for)),
              "real_same_frames_same_token_phase": _aggregate(_summaries(real, seams_for, period=stride)),
              "jerk_by_token_phase": {"note": "mean body jerk at boundaries b with b % time_stride == phase, over "
                                      "the dance's median boundary jerk; median over dances",
                                      "real": _phase_profile(real, stride)},
              "chains": {}}
    for chain in args.chains.split(","):
        pipe.chain = chain
        generated, seconds = [], []
        for e, music, _ in pieces:
            t0 = time.perf_counter()
            rec = pipe(music, e.genre, seed=0, steps=args.steps, guidance=args.guidance).record
            seconds.append(time.perf_counter() - t0)
            generated.append(DanceSample(f"gen-{e.clip_id}", rec.positions, 30.0, rec.joint_names))
            print(f"{chain} {e.clip_id} {e.genre}: {len(music) / 30:.1f} s in {seconds[-1]:.2f} s", file=sys.stderr)
        result["chains"][chain] = {
            "vs_all_interior": _aggregate(_summaries(generated, seams_for)),
            "vs_same_token_phase": _aggregate(_summaries(generated, seams_for, period=stride)),
            "median_generation_s": statistics.median(seconds)}
        result["jerk_by_token_phase"][f"generated_{chain}"] = _phase_profile(generated, stride)
    atomic_write_json(args.out, result)
    print(json.dumps({k: result[k] for k in ("chains", "real_same_frames_same_token_phase", "jerk_by_token_phase")},
                     indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
