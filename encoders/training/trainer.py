"""Contrastive training loop: balanced batches, one sampled caption per clip, validation every epoch.

Deterministic for a seed on a given device and thread count: all randomness (model init, dropout,
batch order, caption choice, crop position) comes from ``torch.manual_seed(seed)`` and one
``numpy.random.Generator(seed)``, data are in memory and nothing runs in parallel workers.
"""
from __future__ import annotations

import copy
import math
import random
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch
from tqdm import tqdm

from ..errors import DanceSearchError
from ..model.customdancer import CustomDancer
from ..model.features import block_slice
from ..motion.augment import RealismAugment, mirror_caption
from .data import ClipExample, FeatureBank, balanced_batches, caption_paraphrases, caption_queries
from .ranking import retrieval_metrics
from .run_dir import RunConfig, resolve_device, save_run


@dataclass
class TrainResult:
    run_dir: Path
    best_epoch: int
    best_val: dict[str, float] | None
    history: list[dict[str, Any]]
    seconds_per_epoch: float


def selection_score(metrics: dict[str, float]) -> tuple[float, float]:
    """Model selection on validation: larger R@1 + R@5 + R@10, then smaller mean rank."""
    return (metrics["R@1"] + metrics["R@5"] + metrics["R@10"], -metrics["MnR"])


def short_crop(item: tuple[np.ndarray, np.ndarray, bool], rng: np.random.Generator,
               min_frames: int) -> tuple[np.ndarray, np.ndarray, bool]:
    """A random stretch of ``min_frames`` .. all frames of a prepared clip (30 fps), music cut alike.

    Why: real takes are often shorter than the model's 12-s window (the AIST++ slices are 5 s, a CMU take
    can be 5-10 s); the model pads and masks them, but a model that only ever saw full windows embeds a
    short clip off its training distribution."""
    motion, music, present = item
    n = len(motion)
    if n <= min_frames:
        return item
    length = int(rng.integers(min_frames, n + 1))
    start = int(rng.integers(0, n - length + 1))
    return motion[start:start + length], music[start:start + length], present


def hide_rotations(motion: torch.Tensor, rng: np.random.Generator, share: float) -> None:
    """Zero the rotation block and its presence flag of a random ``share`` of the clips, in place.

    After normalisation a source without rotations feeds exactly these zeros (features.py), so the model
    sees position-only clips during training instead of meeting them first at search time.
    """
    hide = torch.as_tensor(rng.random(motion.shape[0]) < share)
    if hide.any():
        motion[hide, :, block_slice("rotations_6d")] = 0.0
        motion[hide, :, block_slice("rotation_flag")] = 0.0


def unimodal_loss(model: CustomDancer, text: torch.Tensor, tokens: tuple[torch.Tensor, torch.Tensor, torch.Tensor],
                  music_present: torch.Tensor) -> torch.Tensor:
    """Sum of the text->dance InfoNCE of the motion-only and the music-only embeddings.

    Clips without music are left out of the music term (their music-only embedding is one constant
    vector); with fewer than two such clips in the batch the term is skipped.
    """
    motion_only, music_only = model.unimodal_embeddings(*tokens)
    loss = model.loss(text, motion_only)
    present = music_present.bool()
    if int(present.sum()) >= 2:
        loss = loss + model.loss(text[present], music_only[present])
    return loss


def _log(msg: str) -> None:
    print(msg, file=sys.stderr)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)


@torch.no_grad()
def evaluate_model(model: CustomDancer, items: Sequence[tuple[np.ndarray, np.ndarray, bool]],
                   examples: Sequence[ClipExample], device: torch.device, batch_size: int = 128) -> dict[str, float] | None:
    """Full-gallery text->dance metrics of a split held in memory (None when it has no captions)."""
    texts, positives = caption_queries(examples)
    if not texts or not items:
        return None
    was_training = model.training
    model.eval()
    dance = []
    for i in range(0, len(items), batch_size):
        batch = {k: v.to(device) for k, v in model.collate(items[i:i + batch_size]).items()}
        dance.append(model.encode_dance(batch["motion"], batch["music"], batch["mask"], batch["music_present"]).cpu())
    text = torch.cat([model.encode_text(texts[i:i + batch_size]).cpu() for i in range(0, len(texts), batch_size)])
    model.train(was_training)
    sim = (text @ torch.cat(dance).t()).numpy()
    return retrieval_metrics(sim, np.asarray(positives))


def _optimizer(model: CustomDancer, cfg: RunConfig) -> torch.optim.Optimizer:
    backbone, rest = [], []
    for name, p in model.named_parameters():
        if p.requires_grad:
            (backbone if name.startswith("text.backbone.") and cfg.model.backbone != "bow" else rest).append(p)
    groups = [{"params": rest, "lr": cfg.train.lr}]
    if backbone:
        groups.append({"params": backbone, "lr": cfg.train.backbone_lr})
    return torch.optim.AdamW(groups, weight_decay=cfg.train.weight_decay)


def train(config: RunConfig, train_examples: Sequence[ClipExample], val_examples: Sequence[ClipExample],
          out_dir: str | Path, progress: bool = True, data_description: str = "",
          log: Callable[[str], None] = _log) -> TrainResult:
    """Train, validate each epoch, keep the best epoch, and write the run directory ``out_dir``."""
    mc, tc = config.model.validate(), config.train
    if tc.num_threads > 0:
        torch.set_num_threads(tc.num_threads)
    device = resolve_device(tc.device)
    train_examples = [e for e in train_examples if e.captions]
    if len(train_examples) < 2:
        raise DanceSearchError(f"need at least 2 captioned training clips, got {len(train_examples)}; "
                               "ingest data with captions (dancesearch ingest ...)")
    seed_everything(tc.seed)
    rng = np.random.default_rng(tc.seed)

    # the model first: a backbone that cannot load (no CLIP weights, no open_clip) fails in seconds,
    # not after a minute of feature loading; feature loading draws no random numbers, so runs are unchanged
    model = CustomDancer(mc).to(device)
    augment = RealismAugment(ground_scale_sigma=tc.augment_ground_sigma) if tc.augment_variants > 0 else None
    if augment is not None and mc.motion_input != "canonical":
        raise DanceSearchError("train config: augment_variants needs the model's motion_input 'canonical'")
    train_bank = FeatureBank(train_examples, progress, "train features", mc.motion_input, augment,
                             tc.augment_variants, seed=tc.seed + 1, smoothing=mc.input_smoothing)
    val_bank = FeatureBank(list(val_examples), progress, "val features", mc.motion_input,
                           smoothing=mc.input_smoothing)
    paraphrases = caption_paraphrases(train_examples, tc.paraphrases_per_clip, tc.seed + 2) \
        if tc.paraphrase_prob > 0 else None
    stats = train_bank.fit_stats()
    train_items = train_bank.normalise(stats)
    val_items = val_bank.normalise(stats)

    if mc.freeze_backbone:  # frozen features are a function of the text: compute each caption once
        captions = {c for e in [*train_examples, *val_bank.examples] for c in e.captions}
        captions |= {c for pool in (paraphrases or []) for c in pool}
        if augment is not None:
            captions |= {mirror_caption(c) for c in captions}
        captions = sorted(captions)
        for i in tqdm(range(0, len(captions), 256), desc="caption features", disable=not progress, leave=False):
            model.text.backbone_features(captions[i:i + 256])
    opt = _optimizer(model, config)
    steps_per_epoch = max(1, math.ceil(len(train_examples) / tc.batch_size))
    total = steps_per_epoch * tc.epochs
    warm = max(1, int(tc.warmup_frac * total))
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: (s + 1) / warm if s < warm else 0.5 * (1 + math.cos(math.pi * (s - warm) / max(1, total - warm))))

    genres = [e.genre for e in train_examples]
    dancers = [e.dancer for e in train_examples]
    span = mc.seq_len * mc.frame_stride
    history: list[dict[str, Any]] = []
    best_state: dict[str, torch.Tensor] | None = None
    best_val: dict[str, float] | None = None
    best_epoch, since_best = 0, 0
    t_start = time.perf_counter()
    bar = tqdm(range(1, tc.epochs + 1), desc="epochs", disable=not progress, file=sys.stderr)
    for epoch in bar:
        t0 = time.perf_counter()
        model.train()
        losses = []
        for batch_idx in balanced_batches(genres, dancers, tc.batch_size, rng):
            caps = [train_examples[i].captions[int(rng.integers(len(train_examples[i].captions)))] for i in batch_idx]
            if augment is None and paraphrases is None and tc.short_crop_prob == 0:
                items = [train_items[i] for i in batch_idx]
            else:
                items = []
                for row, i in enumerate(batch_idx):
                    if paraphrases is not None and paraphrases[i] and rng.random() < tc.paraphrase_prob:
                        caps[row] = paraphrases[i][int(rng.integers(len(paraphrases[i])))]
                    item, mirrored = train_bank.variant(i, rng, tc.augment_prob)
                    if tc.short_crop_prob > 0 and rng.random() < tc.short_crop_prob:
                        item = short_crop(item, rng, int(tc.short_crop_min_seconds * 30))
                    items.append(item)
                    if mirrored:
                        caps[row] = mirror_caption(caps[row])
            starts = [int(rng.integers(0, max(1, len(m) - span + 1))) for m, _, _ in items]
            batch = model.collate(items, starts)
            if tc.rotation_dropout > 0:
                hide_rotations(batch["motion"], rng, tc.rotation_dropout)
            batch = {k: v.to(device) for k, v in batch.items()}
            text = model.encode_text(caps)
            tokens = model.dance_tokens(batch["motion"], batch["music"], batch["mask"], batch["music_present"])
            loss = model.loss(text, model.embed_tokens(*tokens))
            if tc.unimodal_loss_weight > 0 and model.has_unimodal_paths:
                loss = loss + tc.unimodal_loss_weight * unimodal_loss(model, text, tokens, batch["music_present"])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if tc.grad_clip > 0:
                torch.nn.utils.clip_grad_norm_(model.parameters(), tc.grad_clip)
            opt.step()
            sched.step()
            losses.append(float(loss.detach()))
        train_seconds = time.perf_counter() - t0
        val = evaluate_model(model, val_items, val_bank.examples, device, tc.eval_batch_size)
        row: dict[str, Any] = {"epoch": epoch, "train_loss": float(np.mean(losses)) if losses else float("nan"),
                               "temperature": model.loss.temperature, "train_seconds": train_seconds,
                               "val": val}
        history.append(row)
        improved = best_state is None or (val is not None and (best_val is None or selection_score(val) > selection_score(best_val)))
        if val is None:
            improved = True  # no validation data: the last epoch is kept (said in metrics.json)
        if improved:
            best_state = copy.deepcopy({k: v.detach().cpu() for k, v in model.trainable_state_dict().items()})
            best_val, best_epoch, since_best = val, epoch, 0
        else:
            since_best += 1
        bar.set_postfix(loss=f"{row['train_loss']:.3f}", val_r1=f"{val['R@1']:.1f}" if val else "-",
                        best=best_epoch)
        if tc.patience and since_best >= tc.patience:
            log(f"early stop at epoch {epoch}: no better validation score for {tc.patience} epochs")
            break
    total_seconds = time.perf_counter() - t_start
    assert best_state is not None
    seconds_per_epoch = float(np.mean([h["train_seconds"] for h in history]))
    metrics = {"best_epoch": best_epoch, "val": best_val,
               "selection": "max validation R@1+R@5+R@10, ties by lower MnR" if val_items else "last epoch (no validation clips)",
               "train_seconds": total_seconds, "seconds_per_epoch": seconds_per_epoch, "device": str(device)}
    data_info = {"train_clips": len(train_examples), "val_clips": len(val_bank.examples),
                 "train_captions": sum(len(e.captions) for e in train_examples), "description": data_description}
    model.load_trainable_state_dict(best_state)
    run_dir = save_run(out_dir, config, model, best_state, stats, history, metrics, data_info)
    return TrainResult(run_dir, best_epoch, best_val, history, seconds_per_epoch)
