"""``dancesearch train``: train the CustomDancer encoders on the catalog's train split, select on val."""
from __future__ import annotations

import argparse
from pathlib import Path

from encoders.cliutil import EXIT_OK, add_common_options, bounded_number, emit, info, progress_enabled
from encoders.model.variants import FUSIONS, TEMPORAL_KINDS

from .workspace import Workspace


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "train", help="train the CustomDancer text / music / motion encoders",
        description="Train on the train split of the catalog, validate each epoch on val (R@K), keep the best "
                    "epoch, and write a run directory (config, history, best checkpoint, normalisation stats).")
    add_common_options(p)
    p.add_argument("--db", metavar="URL", default=None, help="SQLAlchemy catalog URL (default: HOME/catalog.sqlite)")
    p.add_argument("--config", type=Path, default=None, metavar="FILE",
                   help="JSON or TOML file with 'model' and 'train' sections (flags below override it)")
    p.add_argument("--out", type=Path, default=None, metavar="DIR",
                   help="run directory (default: HOME/runs/<temporal>-<fusion>-seed<seed>)")
    p.add_argument("--epochs", type=int, default=None)
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--batch-size", type=int, default=None)
    p.add_argument("--device", default=None, help="auto (default: GPU when present) | cpu | cuda")
    p.add_argument("--backbone", choices=("minilm", "clip", "bow"), default=None,
                   help="text backbone (default minilm; clip needs open_clip and --clip-weights)")
    p.add_argument("--clip-weights", default=None, metavar="PATH_OR_TAG",
                   help="open_clip checkpoint file or pretrained tag for --backbone clip")
    p.add_argument("--clip-model", default=None, help="open_clip model name (default ViT-B-32)")
    p.add_argument("--finetune-backbone", action="store_true",
                   help="fine-tune the text backbone with the smaller backbone_lr instead of freezing it")
    p.add_argument("--temporal", choices=TEMPORAL_KINDS, default=None, help="temporal backbone (default transformer)")
    p.add_argument("--fusion", choices=FUSIONS, default=None, help="music-motion fusion (default blend)")
    p.add_argument("--rotation-dropout", type=float, default=None, metavar="P",
                   help="share of training clips shown without their SMPL-X rotations, so position-only sources "
                        "(BVH) embed well (default 0; the shipped demo model used 0.3)")
    p.add_argument("--unimodal-loss-weight", type=float, default=None, metavar="W",
                   help="weight of the auxiliary motion-only and music-only InfoNCE losses (blend/add fusion; "
                        "default 0)")
    p.set_defaults(handler=cmd_train)

    d = subparsers.add_parser(
        "distill-text", help="distil a run's text encoder into its fast query encoder (for CPU serving)",
        description="Train RUN/fast_text: a word-piece-embedding mean + MLP that reproduces the run's text encoder "
                    "on the catalog's train and val captions plus query-like variants of them (test captions are "
                    "never used). Serve it with `dancesearch serve --text-encoder fast`; compare with "
                    "`dancesearch eval retrieval --text-encoder fast`.")
    add_common_options(d)
    d.add_argument("--db", metavar="URL", default=None, help="SQLAlchemy catalog URL (default: HOME/catalog.sqlite)")
    d.add_argument("--run", type=Path, default=None, metavar="DIR", help="run directory (default: models/demo)")
    d.add_argument("--augment", type=bounded_number(int, 0, 10_000_000, "--augment"), default=None, metavar="N",
                   help="query-like variants made from the captions (default 20000)")
    d.add_argument("--epochs", type=bounded_number(int, 1, 10_000, "--epochs"), default=None)
    d.add_argument("--seed", type=int, default=None)
    d.set_defaults(handler=cmd_distill_text)


def build_config(args: argparse.Namespace) -> "RunConfig":
    from encoders.training.run_dir import RunConfig

    cfg = RunConfig.from_file(args.config) if args.config else RunConfig()
    m, t = cfg.model, cfg.train
    for attr, value in (("epochs", args.epochs), ("seed", args.seed), ("batch_size", args.batch_size),
                        ("device", args.device), ("rotation_dropout", args.rotation_dropout),
                        ("unimodal_loss_weight", args.unimodal_loss_weight)):
        if value is not None:
            setattr(t, attr, value)
    for attr, value in (("backbone", args.backbone), ("clip_weights", args.clip_weights),
                        ("clip_model", args.clip_model), ("temporal", args.temporal), ("fusion", args.fusion)):
        if value is not None:
            setattr(m, attr, value)
    if args.finetune_backbone or m.backbone == "bow":
        m.freeze_backbone = False
    return RunConfig.from_dict(cfg.to_dict())  # re-validate after the overrides


def cmd_train(args: argparse.Namespace) -> int:
    from encoders.training.trainer import train  # torch import only when the command runs

    from .datasets import describe, examples_for_split

    ws = Workspace.from_args(args)
    cfg = build_config(args)
    out = args.out or ws.home / "runs" / f"{cfg.model.temporal}-{cfg.model.fusion}-seed{cfg.train.seed}"
    train_ex = examples_for_split(ws, "train")
    val_ex = examples_for_split(ws, "val")
    info(f"training on {len(train_ex)} clips, validating on {len(val_ex)} -> {out}")
    result = train(cfg, train_ex, val_ex, out, progress=progress_enabled(args), data_description=describe(ws))
    payload = {"run_dir": str(result.run_dir), "best_epoch": result.best_epoch, "val": result.best_val,
               "epochs_run": len(result.history), "seconds_per_epoch": result.seconds_per_epoch,
               "config": cfg.to_dict()}

    def human() -> None:
        v = result.best_val
        val_txt = (f"R@1 {v['R@1']:.2f}  R@5 {v['R@5']:.2f}  R@10 {v['R@10']:.2f}  MedR {v['MedR']:.1f}  "
                   f"MnR {v['MnR']:.2f}") if v else "no validation split"
        print(f"run directory: {result.run_dir}\nbest epoch {result.best_epoch} of {len(result.history)}: {val_txt}")

    emit(args, payload, human)
    return EXIT_OK


def cmd_distill_text(args: argparse.Namespace) -> int:
    from encoders.api import DEFAULT_RUN_DIR, DanceEmbedder
    from encoders.model.fast_text import save_fast_text
    from encoders.training.distill import DistillSettings, distill_fast_text

    from .datasets import examples_for_split

    ws = Workspace.from_args(args)
    run_dir = args.run or DEFAULT_RUN_DIR
    embedder = DanceEmbedder.from_run(run_dir)
    captions = [c for split in ("train", "val") for e in examples_for_split(ws, split) for c in e.captions]
    settings = DistillSettings()
    for attr, value in (("augment", args.augment), ("epochs", args.epochs), ("seed", args.seed)):
        if value is not None:
            setattr(settings, attr, value)
    info(f"distilling the text encoder of {run_dir} ({embedder.model_id}) on {len(captions)} captions "
         f"+ {settings.augment} variants")
    student, card = distill_fast_text(embedder.encode_text, embedder.model_id, embedder.dim, captions, settings,
                                      progress=progress_enabled(args))
    card["data"] = f"train + val captions of {ws.db_url}"
    folder = save_fast_text(run_dir, student, card)
    payload = {"fast_text": str(folder), **card}

    def human() -> None:
        c = card["heldout_cosine"]
        print(f"fast text encoder: {folder}\nagreement with the full encoder on {card['heldout_texts']} held-out "
              f"texts: cosine median {c['median']:.3f}, 5th percentile {c['p05']:.3f}\n"
              f"compare retrieval: dancesearch eval retrieval --run {run_dir} --text-encoder fast")

    emit(args, payload, human)
    return EXIT_OK
