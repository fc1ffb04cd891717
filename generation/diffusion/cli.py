"""``dancesearch generate``: a dance for a piece of music, in a genre named or described; ``generate train``.

    dancesearch generate --music FILE | --clip ID  [--genre G | --text "..."] [--seconds S] [--seed N]
                         [--steps K] [--guidance W] [--genre-guidance W] [--stochastic] [--foot-lock] [--run DIR]
                         --out FILE.npz|.bvh [--json]
    dancesearch generate --edit MOTION.npz --keep body|hands|legs|arms|torso|START:END [--keep ...] ... (inpainting)
    dancesearch generate train --out RUN [--config RECIPE.json] [--minutes M] [--train-steps N] [--seed S] [--home H]
                               [--overlap-upsampling]

The npz is the project's motion record (playable by the API / UI player, scored by ``eval generation``);
the BVH opens in Blender. ``--text`` maps a description to a genre with the text genre classifier and
reports its confidence. Bad input (unreadable or silent music, music shorter than one window, seconds
out of range, an unknown genre, a clip without music, a run of another representation) is an error
naming it, exit 1; bad option values exit 2.
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from encoders.cliutil import (EXIT_OK, UsageError, add_common_options, bounded_number, emit, info, positive_int,
                              progress_enabled, resolve_home)
from encoders.errors import DanceSearchError, InputError

DEFAULT_RUN = Path(__file__).resolve().parents[2] / "models" / "generator"
MAX_SECONDS = 300.0


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "generate", help="make a dance for a piece of music (genre-controlled diffusion)",
        description="Generate a dance for --music FILE or a catalog --clip's music, in --genre G or the genre a "
                    "--text description asks for; `generate train --out RUN` trains a generator on the catalog.")
    p.add_argument("action", nargs="?", choices=("train",), help="train a generator instead of sampling")
    src = p.add_mutually_exclusive_group()
    src.add_argument("--music", type=Path, metavar="FILE", help="audio file (wav, ogg, mp3, flac)")
    src.add_argument("--clip", type=int, metavar="ID", help="a catalog clip whose music to use")
    cond = p.add_mutually_exclusive_group()
    cond.add_argument("--genre", metavar="G", help="genre (see `dancesearch generate --help` of the run: its genres)")
    cond.add_argument("--text", metavar="TEXT", help="a description; its genre comes from the text genre classifier")
    p.add_argument("--seconds", type=bounded_number(float, 4.0, MAX_SECONDS, "--seconds"), default=None,
                   help="length of the dance (default: the whole music, at most 300 s)")
    p.add_argument("--seed", type=int, default=None, help="sampling seed (default 0); train: the recipe's seed")
    p.add_argument("--steps", type=bounded_number(int, 1, 1000, "--steps"), default=20, help="DDIM steps (default 20)")
    p.add_argument("--guidance", type=bounded_number(float, 0.0, 20.0, "--guidance"), default=2.0,
                   help="classifier-free guidance weight (1 = none; default 2)")
    p.add_argument("--stochastic", action="store_true",
                   help="sample with noise between steps (the model's learned variance when it has one, POPDG / iDDPM; "
                        "else the posterior variance) instead of deterministic DDIM; still reproducible by --seed")
    p.add_argument("--foot-lock", action="store_true",
                   help="hold the feet the model marks as planted in place (moves the root back by their slide): "
                        "far less foot sliding; sliding footwork (house) suffers (not with --edit)")
    p.add_argument("--genre-guidance", type=bounded_number(float, 0.0, 20.0, "--genre-guidance"), default=None,
                   metavar="W", help="a separate guidance weight on the genre (compositional guidance; default: the "
                                     "same as --guidance)")
    p.add_argument("--edit", type=Path, default=None, metavar="MOTION.npz",
                   help="inpainting: a motion (npz with rotations, at most one 4-s window) to keep parts of")
    p.add_argument("--keep", action="append", default=None, metavar="WHAT",
                   help="with --edit: a joint group (body, hands, legs, arms, torso) or a time range START:END in "
                        "seconds to keep; repeat to combine (e.g. --keep body; --keep 0:1; --keep 0:0.1 --keep 3.9:4)")
    p.add_argument("--run", type=Path, default=None, metavar="DIR", help="generator run (default: models/generator)")
    p.add_argument("--out", type=Path, default=None, metavar="FILE", help="output .npz or .bvh (train: run directory)")
    p.add_argument("--db", metavar="URL", default=None, help="SQLAlchemy catalog URL (default: HOME/catalog.sqlite)")
    p.add_argument("--config", type=Path, default=None, metavar="RECIPE.json",
                   help="train: a recipe file {\"denoiser\": {...}, \"train\": {...}} (the shipped model's: "
                        "generation/diffusion/recipes/cpu.json); flags given on the command line override it")
    p.add_argument("--minutes", type=bounded_number(float, 0.1, 10000.0, "--minutes"), default=None,
                   help="train: wall-clock budget (default: the recipe's, else 80)")
    p.add_argument("--train-steps", type=positive_int, default=None,
                   help="train: at most this many steps (default: the recipe's, else 20000)")
    p.add_argument("--overlap-upsampling", action="store_true", default=None,
                   help="train: upsample tokens with overlapping kernels, so each frame hears two neighbouring tokens "
                        "(without it every 4th frame boundary carries a jerk spike)")
    add_common_options(p)
    p.set_defaults(handler=cmd_generate)


def _music_from_file(path: Path) -> tuple[np.ndarray, np.ndarray]:
    from encoders.music.features import extract_file

    if not path.is_file():
        raise InputError(path, "music file not found")
    analysis = extract_file(path)
    if float(np.abs(analysis.features[:, 0]).max(initial=0.0)) < 1e-6 or analysis.bpm <= 0:
        raise InputError(path, "the music is silent or has no pulse to dance to", field="audio",
                         expected="audible music with a beat", got=f"tempo {analysis.bpm:g} BPM")
    return analysis.features, np.asarray(analysis.beat_times)


def _music_from_clip(args: argparse.Namespace, clip_id: int) -> tuple[np.ndarray, np.ndarray]:
    from encoders.music.features import beat_times
    from encoders.training.data import load_music
    from indexer.workspace import Workspace

    home = resolve_home(args.home)
    if args.db is None and not (home / "catalog.sqlite").is_file():
        raise DanceSearchError(f"no catalog at {home / 'catalog.sqlite'} to take clip {clip_id}'s music from")
    ws = Workspace(home, args.db)
    catalog = ws.catalog(create=False)
    try:
        clip = catalog.clip(clip_id)
    finally:
        catalog.close()
    if clip is None:
        raise InputError(None, f"no clip with id {clip_id} in the catalog", field="clip")
    if not clip.music_path:
        raise InputError(None, f"clip {clip_id} ({clip.key}) has no music", field="clip",
                         expected="a clip with music", got="none")
    music = load_music(ws.resolve(clip.music_path))
    return music, beat_times(music)


def _motion_to_edit(path: Path):
    from encoders.motion.record import MotionRecord

    if not path.is_file():
        raise InputError(path, "motion file not found")
    return MotionRecord.load(path)


def cmd_generate(args: argparse.Namespace) -> int:
    if args.action == "train":
        return _train(args)
    from encoders.motion.bvh_write import write_bvh

    from ..representation.layout import FPS
    from .editing import EditSpec
    from .pipeline import DancePipeline

    if args.seed is None:
        args.seed = 0
    if args.music is None and args.clip is None:
        raise UsageError("give the music with --music FILE or --clip ID")
    if args.out is None or args.out.suffix.lower() not in (".npz", ".bvh"):
        raise UsageError(f"--out must name a .npz or .bvh file, got {args.out}")
    if args.genre is None and args.text is None:
        raise UsageError("give --genre G or --text \"a description\"")
    if (args.edit is None) != (args.keep is None):
        raise UsageError("--edit MOTION.npz and --keep WHAT go together")
    if args.edit is not None and args.seconds is not None:
        raise UsageError("--seconds does not apply to --edit (the edited dance is one 4-s window)")
    if args.edit is not None and args.foot_lock:
        raise UsageError("--foot-lock does not apply to --edit (it would move the kept frames)")
    pipe = DancePipeline.from_pretrained(args.run or DEFAULT_RUN)
    confidence = None
    if args.text is not None:
        from ..genre import GenreClassifier

        if not args.text.strip():
            raise UsageError("--text must not be empty")
        pred = GenreClassifier.from_pretrained().predict_query([args.text])[0]
        genre, confidence = pred.genre, pred.confidence
    else:
        genre = args.genre
    pipe.genre_index(genre)                                       # unknown genre: fail before analysing music
    music, beats = _music_from_file(args.music) if args.music is not None else _music_from_clip(args, args.clip)
    if args.seconds is not None:
        frames = int(round(args.seconds * FPS))
        if frames > len(music):
            raise InputError(args.music or f"clip {args.clip}", "the music is shorter than --seconds",
                             field="seconds", expected=f"<= {len(music) / FPS:.1f}", got=f"{args.seconds:g}")
        music, beats = music[:frames], beats[beats < frames / FPS]
    t0 = time.perf_counter()
    if args.edit is not None:
        result = pipe.edit(_motion_to_edit(args.edit), music, genre, EditSpec.parse(args.keep), seed=args.seed,
                           steps=args.steps, guidance=args.guidance, genre_guidance=args.genre_guidance,
                           stochastic=args.stochastic)
    else:
        result = pipe(music, genre, seed=args.seed, steps=args.steps, guidance=args.guidance,
                      genre_guidance=args.genre_guidance, stochastic=args.stochastic, foot_lock=args.foot_lock)
    seconds = time.perf_counter() - t0
    args.out.parent.mkdir(parents=True, exist_ok=True)
    if args.out.suffix.lower() == ".bvh":
        write_bvh(result.record, args.out)
    else:
        result.record.save(args.out)
    payload = {"out": str(args.out), "genre": result.genre, "genre_confidence": confidence, "model_id": pipe.model_id,
               "seconds_of_dance": round(result.seconds, 2), "windows": result.windows, "steps": args.steps,
               "guidance": args.guidance, "genre_guidance": args.genre_guidance, "seed": args.seed,
               "stochastic": args.stochastic, "sampler": pipe.variance(args.stochastic), "foot_lock": args.foot_lock,
               "edit": None if args.edit is None else {"motion": str(args.edit), "keep": args.keep}, "seconds_taken": round(seconds, 2),
               "music_beats": len(beats)}

    def human() -> None:
        via = f" (from the text, confidence {confidence:.2f})" if confidence is not None else ""
        info(f"{result.seconds:.1f} s of {result.genre}{via} in {seconds:.1f} s -> {args.out}")

    emit(args, payload, human)
    return EXIT_OK


def _train(args: argparse.Namespace) -> int:
    from indexer.workspace import Workspace

    from ..windows import open_windows
    from .recipe import build_configs, load_recipe
    from .train import train_denoiser

    if args.out is None:
        raise UsageError("generate train needs --out RUN (the run directory to write)")
    home = resolve_home(args.home)
    if args.db is None and not (home / "catalog.sqlite").is_file():
        raise DanceSearchError(f"no catalog at {home / 'catalog.sqlite'}: ingest data first")
    # the recipe is checked before the window cache is built, so a typo fails at once
    recipe = load_recipe(args.config) if args.config is not None else {}
    if args.overlap_upsampling:
        recipe = {**recipe, "denoiser": {**recipe.get("denoiser", {}), "overlap_upsampling": True}}
    denoiser, train = build_configs(recipe, args.config or "command line", minutes=args.minutes,
                                    steps=args.train_steps, seed=args.seed)
    store = open_windows(Workspace(home, args.db), progress=progress_enabled(args))
    result = train_denoiser(store, args.out, denoiser, train, progress=progress_enabled(args))
    payload = {k: v for k, v in result.items() if k != "history"} | {"out": str(args.out)}
    emit(args, payload, lambda: info(f"trained {result['steps']} steps ({result['windows']} windows) in "
                                     f"{result['seconds']:.0f} s; best val {result['best_val_simple']:.4f} at step "
                                     f"{result['best_step']} -> {args.out}"))
    return EXIT_OK
