"""Training the text genre classifier on catalog captions (GCDance eq. 2: BCE against one-hot genres).

Backbone features are computed once per caption (the backbone is frozen), so an epoch is a few
matrix products: 80 epochs over ~1,500 captions take seconds after a ~30-s MiniLM pass on 2 cores.
The epoch kept is the one with the best validation top-1 accuracy (ties: the later one).
"""
from __future__ import annotations

import copy
import time
from typing import Any, Sequence

import numpy as np
import torch
from tqdm import tqdm

from encoders.errors import DanceSearchError

from .classifier import GenreClassifier, GenreClassifierConfig, accuracy


def train_genre_classifier(train: Sequence[tuple[str, str]], val: Sequence[tuple[str, str]],
                           config: GenreClassifierConfig = GenreClassifierConfig(), genres: Sequence[str] | None = None,
                           backbone: torch.nn.Module | None = None, progress: bool = True
                           ) -> tuple[GenreClassifier, dict[str, Any]]:
    """(text, genre) pairs -> a trained classifier and its history / metrics."""
    if not train:
        raise DanceSearchError("no training captions: the catalog's train split has no captioned clips")
    genres = sorted({g for _, g in train}) if genres is None else list(genres)
    unknown = sorted({g for _, g in list(train) + list(val)} - set(genres))
    if unknown:
        raise DanceSearchError(f"captions labelled with genres outside the classifier's list: {unknown[:5]}")
    torch.manual_seed(config.seed)
    model = GenreClassifier(genres, config, backbone=backbone)
    t0 = time.perf_counter()
    x = model.features([t for t, _ in train])
    index = {g: i for i, g in enumerate(genres)}
    y = torch.zeros(len(train), len(genres))
    y[torch.arange(len(train)), torch.tensor([index[g] for _, g in train])] = 1.0
    feature_s = time.perf_counter() - t0
    opt = torch.optim.AdamW(model.head.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    loss_fn = torch.nn.BCEWithLogitsLoss()
    gen = torch.Generator().manual_seed(config.seed)
    val_texts, val_genres = [t for t, _ in val], [g for _, g in val]
    val_x = model.features(val_texts) if val else None
    history: list[dict[str, Any]] = []
    best = (-1.0, 0, copy.deepcopy(model.head.state_dict()))
    for epoch in tqdm(range(1, config.epochs + 1), desc="genre classifier", unit="epoch", disable=not progress):
        model.head.train()
        order = torch.randperm(len(x), generator=gen)
        total = 0.0
        for i in range(0, len(x), config.batch_size):
            idx = order[i:i + config.batch_size]
            loss = loss_fn(model.head(x[idx]), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += loss.item() * len(idx)
        row: dict[str, Any] = {"epoch": epoch, "loss": total / len(x)}
        if val_x is not None:
            model.head.eval()
            with torch.no_grad():
                pred = model.head(val_x).argmax(1).numpy()
            row["val_top1"] = float(np.mean(np.array([genres[j] for j in pred]) == np.array(val_genres)))
            if row["val_top1"] >= best[0]:
                best = (row["val_top1"], epoch, copy.deepcopy(model.head.state_dict()))
        history.append(row)
    if val_x is not None:
        model.head.load_state_dict(best[2])
    model.head.eval()
    metrics = {"best_epoch": best[1] if val_x is not None else config.epochs,
               "val": accuracy(model, val_texts, val_genres) if val else None,
               "train_captions": len(train), "val_captions": len(val),
               "feature_seconds": round(feature_s, 1), "train_seconds": round(time.perf_counter() - t0, 1),
               "history": history}
    return model, metrics
