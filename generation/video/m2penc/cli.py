"""``dancesearch m2penc``: train, evaluate and use the music-to-pose-guidance encoder.

    dancesearch m2penc train --corpus DIR --out RUN [--minutes 20] [--cache DIR] [--tower-run DIR | --no-tower]
                             [--window 24] [--batch-size 4] [--lr 2e-3] [--warmup 50] [--heat-weight 100]
                             [--body-weight 5] [--temporal-weight 1] [--energy-weight 0.1] [--channels 8]
                             [--layers 2] [--seed 0] [--threads 1] [--beat-phase]
    dancesearch m2penc eval RUN [--corpus DIR] [--cache DIR] [--split test] [--generator-run DIR]
                            [--generator-steps 20] [--bootstrap 1000] [--out FILE.json] [--json]
    dancesearch m2penc render RUN --music FILE --out guidance.mp4 [--seconds S] [--scale 4]
    dancesearch m2penc compare RUN [--corpus DIR] [--clip NAME] --out compare.mp4

``train`` renders the SDGPip pairs of the corpus's train and val clips once (``--cache``, default
``RUN/pairs``) and trains within ``--minutes`` (again into the same RUN continues from its last state).
``eval`` compares against the mean training guidance and the shipped generator's rendered dance on the
test split. ``render`` writes the predicted guidance of a music file as a video with that music;
``compare`` writes M2PEnc | generator | ground truth for one test clip. Heavy imports happen in the handlers.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from encoders.cliutil import EXIT_OK, UsageError, add_common_options, bounded_number, emit, info, progress_enabled



def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("m2penc", help="music-to-pose-guidance encoder (M2PEnc): train, eval, render",
                              description="M2PEnc: music features -> SDGPip pose guidance maps and keypoint heatmaps "
                                          "(64x64, 15 fps), trained on guidance rendered from the corpus's dances.")
    sub = p.add_subparsers(dest="m2penc_action", metavar="ACTION")
    sub.required = True

    t = sub.add_parser("train", help="train M2PEnc on a demo corpus's train split (val split selects)")
    t.add_argument("--corpus", type=Path, required=True, metavar="DIR", help="a `dancesearch corpus demo` folder")
    t.add_argument("--out", type=Path, required=True, metavar="RUN", help="run directory (continued when it exists)")
    t.add_argument("--cache", type=Path, default=None, metavar="DIR", help="rendered pairs cache (default RUN/pairs)")
    tower = t.add_mutually_exclusive_group()
    tower.add_argument("--tower-run", type=Path, default=None, metavar="DIR",
                       help="retrieval run whose music-tower tokens join the input (default models/demo)")
    tower.add_argument("--no-tower", action="store_true", help="35-d music features only")
    t.add_argument("--minutes", type=bounded_number(float, 0.01, 10_000, "--minutes"), default=20.0,
                   help="wall-clock budget (default 20)")
    t.add_argument("--window", type=bounded_number(int, 2, 600, "--window"), default=24,
                   help="frames per training window at 15 fps (default 24 = 1.6 s)")
    t.add_argument("--batch-size", type=bounded_number(int, 1, 4096, "--batch-size"), default=4)
    t.add_argument("--lr", type=bounded_number(float, 1e-8, 1.0, "--lr"), default=2e-3,
                   help="peak learning rate after the warm-up (cosine decay over the budget; default 2e-3)")
    t.add_argument("--warmup", type=bounded_number(int, 0, 10**7, "--warmup"), default=50, help="warm-up steps")
    t.add_argument("--heat-weight", type=bounded_number(float, 0.0, 1e6, "--heat-weight"), default=100.0,
                   help="weight of the heatmap MSE against the guidance L1 (default 100)")
    t.add_argument("--body-weight", type=bounded_number(float, 0.0, 1e6, "--body-weight"), default=5.0,
                   help="lambda of the L1 weight 1 + lambda * dilated body mask (default 5; 0 = plain L1)")
    t.add_argument("--temporal-weight", type=bounded_number(float, 0.0, 1e6, "--temporal-weight"), default=1.0,
                   help="weight of the frame-difference L1 (default 1; 0 = off)")
    t.add_argument("--energy-weight", type=bounded_number(float, 0.0, 1e6, "--energy-weight"), default=0.1,
                   help="weight of the per-frame motion-energy match (default 0.1; 0 = off)")
    t.add_argument("--threads", type=bounded_number(int, 1, 256, "--threads"), default=1,
                   help="torch threads (default 1: shared CPUs)")
    t.add_argument("--channels", type=bounded_number(int, 1, 512, "--channels"), default=8)
    t.add_argument("--layers", type=bounded_number(int, 0, 64, "--layers"), default=2)
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--beat-phase", action="store_true",
                   help="append sin/cos of the beat and bar phase (from the beat column) to the music input")
    add_common_options(t)
    t.set_defaults(handler=cmd_train)

    e = sub.add_parser("eval", help="guidance L1, heatmap and keypoint error on held-out music vs baselines")
    e.add_argument("run", type=Path, metavar="RUN")
    e.add_argument("--corpus", type=Path, default=None, metavar="DIR",
                   help="default: the corpus the run was trained on")
    e.add_argument("--cache", type=Path, default=None, metavar="DIR", help="test pairs cache (default RUN/eval_pairs)")
    e.add_argument("--split", choices=("test", "val"), default="test")
    e.add_argument("--generator-run", type=Path, default=None, metavar="DIR", help="default: models/generator")
    e.add_argument("--generator-steps", type=bounded_number(int, 1, 1000, "--generator-steps"), default=20)
    e.add_argument("--bootstrap", type=bounded_number(int, 0, 100_000, "--bootstrap"), default=1000,
                   help="bootstrap replicates (0: no intervals)")
    e.add_argument("--seed", type=int, default=0, help="generator and bootstrap seed")
    e.add_argument("--out", type=Path, default=None, metavar="FILE.json", help="also write the report here")
    add_common_options(e)
    e.set_defaults(handler=cmd_eval)

    r = sub.add_parser("render", help="the predicted guidance of a music file as an MP4 with the music")
    r.add_argument("run", type=Path, metavar="RUN")
    r.add_argument("--music", type=Path, required=True, metavar="FILE")
    r.add_argument("--out", type=Path, required=True, metavar="FILE.mp4")
    r.add_argument("--seconds", type=bounded_number(float, 0.2, 3600.0, "--seconds"), default=None)
    r.add_argument("--scale", type=bounded_number(int, 1, 16, "--scale"), default=4,
                   help="pixels per guidance pixel (default 4: 64 px maps -> 256 px cells)")
    add_common_options(r)
    r.set_defaults(handler=cmd_render)

    c = sub.add_parser("compare", help="M2PEnc | generator | ground-truth guidance of one test clip, as an MP4")
    c.add_argument("run", type=Path, metavar="RUN")
    c.add_argument("--corpus", type=Path, default=None, metavar="DIR")
    c.add_argument("--cache", type=Path, default=None, metavar="DIR")
    c.add_argument("--clip", default=None, metavar="NAME", help="a test clip name (default: the first)")
    c.add_argument("--generator-run", type=Path, default=None, metavar="DIR")
    c.add_argument("--out", type=Path, required=True, metavar="FILE.mp4")
    add_common_options(c)
    c.set_defaults(handler=cmd_compare)


def _mp4(path: Path) -> None:
    if path.suffix.lower() != ".mp4":
        raise UsageError(f"--out must name an .mp4 file, got {path}")


def _run_corpus(run: Path, corpus: Path | None) -> Path:
    from .run_dir import read_config

    raw = read_config(run)
    if corpus is not None:
        return corpus
    recorded = raw.get("info", {}).get("corpus")
    if not recorded:
        raise UsageError("give --corpus DIR (the run does not record its corpus)")
    return Path(recorded)


def cmd_train(args: argparse.Namespace) -> int:
    from .data import DataConfig
    from .train import TrainConfig, train_from_corpus

    from encoders.api import DEFAULT_RUN_DIR

    tower = None if args.no_tower else (args.tower_run or DEFAULT_RUN_DIR)
    cfg = TrainConfig(window=args.window, batch_size=args.batch_size, lr=args.lr, heat_weight=args.heat_weight,
                      body_weight=args.body_weight, temporal_weight=args.temporal_weight,
                      energy_weight=args.energy_weight, warmup_steps=args.warmup, minutes=args.minutes,
                      seed=args.seed, num_threads=args.threads)
    summary = train_from_corpus(args.corpus, args.out, args.cache, tower,
                                {"channels": args.channels, "layers": args.layers},
                                DataConfig(beat_phase=args.beat_phase), cfg,
                                progress=progress_enabled(args))
    emit(args, {"out": str(args.out), **summary},
         lambda: info(f"{summary['steps']} steps in {summary['train_seconds']} s; best val loss "
                      f"{summary['best_val']:.4f} at step {summary['best_step']} -> {args.out}"))
    return EXIT_OK


def cmd_eval(args: argparse.Namespace) -> int:
    from .evaluate import evaluate

    corpus = _run_corpus(args.run, args.corpus)
    report = evaluate(args.run, corpus, args.cache or args.run / "eval_pairs", generator_run=args.generator_run,
                      split=args.split, n_boot=args.bootstrap, seed=args.seed, generator_steps=args.generator_steps,
                      out=args.out, progress=progress_enabled(args))

    def human() -> None:
        from .evaluate import SYSTEMS

        m = report["metrics"]
        print(f"{report['clips']} {report['split']} clips, {report['frames_per_clip']} frames each at "
              f"{report['fps']} fps")
        shown = ("guidance_l1", "heatmap_mse", "keypoint_px", "motion_ratio", "motion_corr", "beat_corr")
        for metric in shown:
            cells = "  ".join(f"{s} {m[s][metric]['mean']:.4f}" for s in SYSTEMS)
            print(f"{metric:12s} {cells}")
        print(f"truth beat_corr {m['truth']['beat_corr']['mean']:.4f}")
        for name, diffs in report["differences"].items():
            for metric in (k for k in shown if k in diffs):
                d = diffs[metric]
                ci = f" [{d['lo']:.4f}, {d['hi']:.4f}]" if "lo" in d else ""
                print(f"{name} {metric}: {d['diff']:+.4f}{ci}")

    emit(args, report, human)
    return EXIT_OK


def cmd_render(args: argparse.Namespace) -> int:
    import numpy as np

    from encoders.errors import InputError
    from encoders.music.features import analyse_file

    from ..mp4 import write_mp4
    from .pipeline import M2PEncPipeline
    from .video import guidance_grid

    _mp4(args.out)
    pipe = M2PEncPipeline.from_pretrained(args.run)
    if not args.music.is_file():
        raise InputError(args.music, "music file not found", field="music")
    music = analyse_file(args.music).features
    if args.seconds is not None:
        frames = int(round(args.seconds * 30))
        if frames > len(music):
            raise InputError(args.music, "the music is shorter than --seconds", field="seconds",
                             expected=f"<= {len(music) / 30:.1f}", got=f"{args.seconds:g}")
        music = music[:frames]
    pred = pipe(music)
    grid = guidance_grid(pred.guidance, np.asarray(pred.heatmaps), args.scale)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    mp4 = write_mp4(list(grid), pred.fps, args.out, audio=args.music)
    payload = {"out": str(args.out), "frames": len(pred), "fps": pred.fps, "seconds": round(len(pred) / pred.fps, 2),
               "model_id": pipe.model_id, "size": [int(grid.shape[1]), int(grid.shape[2])],
               "bytes": getattr(mp4, "bytes", None)}
    emit(args, payload, lambda: info(f"{payload['seconds']} s of predicted guidance -> {args.out}"))
    return EXIT_OK


def cmd_compare(args: argparse.Namespace) -> int:
    from .evaluate import comparison_video

    _mp4(args.out)
    corpus = _run_corpus(args.run, args.corpus)
    payload = comparison_video(args.run, corpus, args.cache or args.run / "eval_pairs", args.clip, args.out,
                               args.generator_run)
    emit(args, payload, lambda: info(f"{payload['clip']}: m2penc | generator | ground truth -> {args.out}"))
    return EXIT_OK
