"""Distil a run's full text encoder into its fast query encoder (``encoders.model.fast_text``).

The student never sees a dance: it learns to put each query where the full (teacher) encoder puts
it, with a cosine loss on the teacher's unit vectors.  Because the dance side is untouched, any
index built with the teacher answers the student's queries.

Training texts: the caller's captions (the catalog's train and val captions for ``dancesearch
distill-text``) plus :func:`augment_queries` variants, which look like what people type into a
search box (fragments, recombinations, "show me ..." prefixes, dropped words), so the student
learns the teacher's behaviour off the caption templates too.  A held-out share of the texts (never
trained on) measures agreement; test-split retrieval is ``dancesearch eval retrieval
--text-encoder fast``.
"""
from __future__ import annotations

import random
import time
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np
import torch
from tqdm import tqdm

from ..errors import DanceSearchError
from ..model.fast_text import FastTextConfig, FastTextEncoder

QUERY_PREFIXES: tuple[str, ...] = ("show me ", "find ", "a clip of ", "search for ", "i want ", "looking for ",
                                   "dance with ", "something like ")


@dataclass
class DistillSettings:
    """How the student is trained (defaults: what made the shipped ``models/demo/fast_text``)."""

    augment: int = 20_000        # extra query-like texts made from the captions
    epochs: int = 60
    batch_size: int = 256
    lr: float = 1e-3
    weight_decay: float = 0.01
    holdout: float = 0.08        # share of texts kept out of training to measure agreement
    seed: int = 0


def augment_queries(texts: Sequence[str], count: int, seed: int = 0) -> list[str]:
    """``count`` query-like variants of ``texts``: a head of one text joined to a tail of another,
    a text with a quarter of its words dropped, a bag of words from the whole vocabulary, or a
    text behind a search-box prefix.  Deterministic for a seed."""
    pool = [t for t in texts if t.strip()]
    if not pool or count <= 0:
        return []
    rng = random.Random(seed)
    vocab = [w for t in pool for w in t.split()]
    out: list[str] = []
    for _ in range(count):
        a = rng.choice(pool).split()
        r = rng.random()
        if r < 0.3:
            b = rng.choice(pool).split()
            words = a[:rng.randint(1, len(a))] + b[rng.randint(0, len(b) - 1):]
        elif r < 0.5:
            words = [w for w in a if rng.random() > 0.25] or a
        elif r < 0.7:
            words = [rng.choice(vocab) for _ in range(rng.randint(2, 10))]
        else:
            words = (rng.choice(QUERY_PREFIXES) + " ".join(a)).split()
        out.append(" ".join(words))
    return out


def _batched(fn: Callable[[list[str]], torch.Tensor], texts: Sequence[str], batch: int, desc: str,
             progress: bool) -> torch.Tensor:
    parts = []
    for i in tqdm(range(0, len(texts), batch), desc=desc, disable=not progress, leave=False):
        parts.append(fn(list(texts[i:i + batch])).float().cpu())
    return torch.cat(parts) if parts else torch.zeros(0)


def distill_fast_text(teacher_encode: Callable[[list[str]], np.ndarray], teacher_model_id: str, out_dim: int,
                      captions: Sequence[str], settings: DistillSettings | None = None, progress: bool = True,
                      ) -> tuple[FastTextEncoder, dict[str, Any]]:
    """Train a :class:`FastTextEncoder` on ``captions`` (+ augmentations) against ``teacher_encode``.

    Returns the student (eval mode) and its card: teacher id, data sizes, settings, held-out
    cosine agreement (median, 5th percentile, mean) and timings.
    """
    s = settings or DistillSettings()
    texts = list(dict.fromkeys([t for t in captions if t.strip()] + augment_queries(captions, s.augment, s.seed)))
    if len(texts) < 20:
        raise DanceSearchError(f"distillation needs at least 20 distinct texts, got {len(texts)}: ingest captions "
                               f"first (dancesearch ingest ... --captions FILE)")
    torch.manual_seed(s.seed)
    t0 = time.perf_counter()
    targets = _batched(lambda b: torch.from_numpy(np.asarray(teacher_encode(b), dtype=np.float32)), texts, 128,
                       "teacher", progress)
    targets = torch.nn.functional.normalize(targets, dim=-1)
    teacher_s = time.perf_counter() - t0
    student = FastTextEncoder(FastTextConfig(out_dim=out_dim))
    t0 = time.perf_counter()
    feats = _batched(student.features, texts, 256, "student features", progress)
    gen = torch.Generator().manual_seed(s.seed)
    order = torch.randperm(len(texts), generator=gen)
    n_hold = max(1, int(round(len(texts) * s.holdout)))
    held, train_idx = order[:n_hold], order[n_hold:]
    opt = torch.optim.AdamW(student.adapter.parameters(), lr=s.lr, weight_decay=s.weight_decay)
    steps = s.epochs * ((len(train_idx) + s.batch_size - 1) // s.batch_size)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=s.lr, total_steps=max(steps, 1), pct_start=0.05)
    student.train()
    for _ in tqdm(range(s.epochs), desc="distil", disable=not progress, leave=False):
        perm = train_idx[torch.randperm(len(train_idx), generator=gen)]
        for i in range(0, len(perm), s.batch_size):
            b = perm[i:i + s.batch_size]
            loss = (1 - (student.project(feats[b]) * targets[b]).sum(-1)).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
    student.eval()
    with torch.no_grad():
        cos = (student.project(feats[held]) * targets[held]).sum(-1).numpy()
    card = {"teacher_model_id": teacher_model_id, "texts": len(texts), "captions": len(set(captions)),
            "augmented": len(texts) - len(set(captions)), "heldout_texts": int(n_hold), "settings": s.__dict__,
            "heldout_cosine": {"median": round(float(np.median(cos)), 4), "p05": round(float(np.quantile(cos, 0.05)), 4),
                               "mean": round(float(cos.mean()), 4)},
            "seconds": {"teacher": round(teacher_s, 1), "student": round(time.perf_counter() - t0, 1)}}
    return student, card
