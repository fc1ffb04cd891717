"""Quality of a trained generator on a catalog's test split, against the real-data floor (issue 14).

1. Quality: one generated 4-s window per real test window (same music and genre), scored against the real
   test windows under each protocol (``generation.diffusion.evaluate``).
2. Genre control: a motion genre classifier trained on real train windows (its test accuracy reported)
   labels windows generated for a fixed set of test music windows with each genre requested in turn.
Writes JSON (and the numbers for docs/results/generation.md).

    python bench/eval_generator.py --home .dancesearch --run models/generator [--control-music 36]
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
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--guidance", type=float, default=2.0)
    ap.add_argument("--control-music", type=int, default=36, help="test music windows used for the control test")
    ap.add_argument("--protocols", default="dancesearch,bailando-aist,lodge-finedance")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "generation_quality.json")
    args = ap.parse_args()

    import numpy as np
    import torch

    from generation.diffusion.evaluate import evaluate_generator
    from generation.diffusion.pipeline import DancePipeline
    from generation.metrics.catalog_source import window_samples, window_store
    from generation.metrics.genre_control import MotionGenreClassifier, control_rate

    torch.set_num_threads(2)
    pipe = DancePipeline.from_pretrained(args.run)
    store = window_store(args.home)
    t0 = time.perf_counter()
    quality = evaluate_generator(pipe, store, "test", tuple(args.protocols.split(",")), args.steps, args.guidance)
    print(json.dumps({p: r["metrics"] for p, r in quality["protocols"].items()}, indent=1), file=sys.stderr)

    train = window_samples(store, "train")
    test = window_samples(store, "test")
    clf = MotionGenreClassifier.fit(train, [s.meta["genre"] for s in train])
    clf_test = clf.accuracy(test, [s.meta["genre"] for s in test])
    clf_train = clf.accuracy(train, [s.meta["genre"] for s in train])
    # control: fixed music (every third test window: one per clip), every genre in turn
    idx = list(range(0, store.num_windows("test"), 3))[:args.control_music]
    wins = [store.window("test", i) for i in idx]
    music = np.stack([w.music for w in wins])
    control, per_genre = control_rate(pipe, clf, music, seed=1, steps=args.steps, guidance=args.guidance)
    print("control: " + ", ".join(f"{g} {v:.2f}" for g, v in per_genre.items()), file=sys.stderr)
    result = {"date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "machine": machine_info(),
              "run": str(args.run), "model_id": pipe.model_id, "home": str(args.home), "steps": args.steps,
              "guidance": args.guidance, "quality": quality,
              "genre_control": {"classifier_train_accuracy": clf_train, "classifier_test_accuracy": clf_test,
                                "music_windows": len(wins), "genres": len(pipe.genres), "control_rate": control,
                                "chance": 1 / len(pipe.genres), "per_genre": per_genre},
              "seconds": round(time.perf_counter() - t0, 1)}
    atomic_write_json(args.out, result)
    print(json.dumps(result["genre_control"], indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
