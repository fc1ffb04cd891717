"""Genre control against the genre guidance weight (compositional classifier-free guidance, issue 14).

The music guidance weight stays at ``--guidance``; the genre term's weight takes each value of ``--weights``
(``generation.diffusion.sampling.guided_prediction``: x0 = x0(0,0) + w (x0(m,0) - x0(0,0)) + w_g (x0(m,g) - x0(m,0))).
For ``--music`` fixed test music windows (every third test window), every genre is requested in turn and a
motion genre classifier trained on real training windows labels the results (``generation.metrics.genre_control``);
the share labelled with the requested genre is the control rate (chance 1/18).

    python bench/sweep_genre_guidance.py --home .dancesearch --run models/generator --weights 2,4,7 --music 9
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.machine import machine_info  # noqa: E402
from encoders.atomic_io import atomic_write_json  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--home", type=Path, required=True)
    ap.add_argument("--run", type=Path, default=ROOT / "models" / "generator")
    ap.add_argument("--weights", default="2,4,7")
    ap.add_argument("--guidance", type=float, default=2.0)
    ap.add_argument("--music", type=int, default=9)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "genre_guidance.json")
    args = ap.parse_args()

    import numpy as np
    import torch

    from generation.diffusion.pipeline import DancePipeline
    from generation.metrics.catalog_source import window_samples, window_store
    from generation.metrics.genre_control import MotionGenreClassifier, control_rate

    torch.set_num_threads(2)
    pipe = DancePipeline.from_pretrained(args.run)
    store = window_store(args.home)
    train = window_samples(store, "train")
    clf = MotionGenreClassifier.fit(train, [s.meta["genre"] for s in train])
    wins = [store.window("test", i) for i in list(range(0, store.num_windows("test"), 3))[:args.music]]
    music = np.stack([w.music for w in wins])
    rows = []
    for wg in [float(w) for w in args.weights.split(",")]:
        t0 = time.perf_counter()
        rate, per = control_rate(pipe, clf, music, seed=args.seed, steps=args.steps, guidance=args.guidance,
                                 genre_guidance=wg)
        rows.append({"genre_guidance": wg, "control_rate": rate, "per_genre": per,
                     "seconds": round(time.perf_counter() - t0, 1)})
        print(json.dumps({k: rows[-1][k] for k in ("genre_guidance", "control_rate", "seconds")}), file=sys.stderr)
    result = {"date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "machine": machine_info(),
              "run": str(args.run), "model_id": pipe.model_id, "music_guidance": args.guidance, "steps": args.steps,
              "music_windows": len(wins), "genres": len(pipe.genres), "chance": 1 / len(pipe.genres), "rows": rows}
    atomic_write_json(args.out, result)
    print(json.dumps([{k: r[k] for k in ("genre_guidance", "control_rate")} for r in rows], indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
