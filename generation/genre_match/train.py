"""Train the GS network on a catalog (eq. 4), select on validation, measure the test split; a versioned run dir.

::

    RUN/config.json   {"format": 1, "kind": "genre-match", "model": GSModelConfig, "mel": MelConfig,
                       "train": GSTrainConfig, "genres", "data", "metrics"}
    RUN/model.pt      state_dict of GenreMatcher (best validation checkpoint)
    RUN/history.json  loss and validation metrics per epoch
    RUN/README.md     model card

``metrics[split]``: ``gs_real`` (mean GS of each real window's own music and dance: the reference a
generator is compared with), ``gs_mismatched`` (music against dances of other genres), ``gap``, and
``top1_genre`` (share of music windows whose nearest dance window has their genre).
"""
from __future__ import annotations

import io
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from encoders.atomic_io import atomic_write_bytes, atomic_write_json, atomic_write_text
from encoders.errors import DanceSearchError, InputError
from encoders.versioned_json import read_versioned_json

from .data import GSData
from .mel import MelConfig
from .model import GenreMatcher, GSModelConfig, cosine_pair_loss

RUN_FORMAT = 1
KIND = "genre-match"


@dataclass(frozen=True)
class GSTrainConfig:
    epochs: int = 12
    minutes: float = 6.0         # wall-clock budget; training stops after the epoch that passes it
    batch_size: int = 64
    lr: float = 2e-3
    weight_decay: float = 1e-4
    seed: int = 0
    threads: int = 2

    def to_dict(self) -> dict:
        return asdict(self)


def evaluate_pairs(model: GenreMatcher, data: GSData) -> dict[str, float]:
    """GS of real pairs vs mismatched-genre pairs, and music -> dance top-1 genre retrieval."""
    if len(data) < 2:
        return {"windows": len(data)}
    m = model.music_embeddings(data.mel)
    with torch.no_grad():
        model.eval()
        d = torch.cat([model.embed_dance(torch.as_tensor(data.dance[i:i + 128]))
                       for i in range(0, len(data), 128)]).numpy()
    s = m @ d.T
    same = data.genre[:, None] == data.genre[None, :]
    real = float(np.mean(np.diag(s)))
    mism = float(s[~same].mean()) if (~same).any() else float("nan")
    top1 = float(np.mean(data.genre[np.argmax(s, axis=1)] == data.genre))
    return {"windows": len(data), "gs_real": real, "gs_mismatched": mism, "gap": real - mism, "top1_genre": top1}


def train_gs(train: GSData, val: GSData, config: GSTrainConfig = GSTrainConfig(),
             model_config: GSModelConfig = GSModelConfig(), progress: bool = False
             ) -> tuple[GenreMatcher, list[dict[str, Any]], dict[str, Any]]:
    """Returns the best-validation model (by ``gap``), the history and a summary."""
    if len(train) < 2:
        raise DanceSearchError("GS training needs at least 2 training windows with audio")
    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    old_threads = torch.get_num_threads()
    torch.set_num_threads(max(1, config.threads))
    model = GenreMatcher(model_config)
    mean = train.mel.reshape(-1, train.mel.shape[-1]).mean(axis=0)
    std = train.mel.reshape(-1, train.mel.shape[-1]).std(axis=0) + 1e-3
    model.music.mel_mean.copy_(torch.as_tensor(mean))
    model.music.mel_std.copy_(torch.as_tensor(std))
    opt = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    steps_per_epoch = max(1, len(train) // config.batch_size)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, config.lr, total_steps=config.epochs * steps_per_epoch)
    history: list[dict[str, Any]] = []
    best, best_state, best_epoch = -np.inf, None, -1
    t0 = time.perf_counter()
    mel_t, dance_t, genre_t = (torch.as_tensor(train.mel), torch.as_tensor(train.dance), torch.as_tensor(train.genre))
    try:
        for epoch in range(config.epochs):
            model.train()
            order = rng.permutation(len(train))
            losses = []
            for b in range(steps_per_epoch):
                idx = torch.as_tensor(order[b * config.batch_size:(b + 1) * config.batch_size])
                # a music window and the dance of another random window: pairs of every genre combination
                jdx = torch.as_tensor(rng.permutation(len(train))[:len(idx)])
                mus = model.embed_music(mel_t[idx])
                dan = model.embed_dance(dance_t[torch.cat([idx, jdx])])
                loss = cosine_pair_loss(mus, dan, genre_t[idx], genre_t[torch.cat([idx, jdx])])
                opt.zero_grad()
                loss.backward()
                opt.step()
                sched.step()
                losses.append(float(loss.detach()))
            row = {"epoch": epoch, "loss": float(np.mean(losses)), "seconds": round(time.perf_counter() - t0, 1),
                   "val": evaluate_pairs(model, val)}
            history.append(row)
            if progress:
                v = row["val"]
                print(f"gs epoch {epoch}: loss {row['loss']:.4f} val gs_real {v.get('gs_real', float('nan')):.3f} "
                      f"gap {v.get('gap', float('nan')):.3f} top1 {v.get('top1_genre', float('nan')):.3f} "
                      f"({row['seconds']} s)", flush=True)
            score = row["val"].get("gap", float("nan"))
            score = score if np.isfinite(score) else -row["loss"]     # a val split of one genre has no gap
            if best_state is None or score > best:
                best, best_epoch = score, epoch
                best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
            if time.perf_counter() - t0 > config.minutes * 60:
                break
    finally:
        torch.set_num_threads(old_threads)
    model.load_state_dict(best_state)
    model.eval()
    summary = {"best_epoch": best_epoch, "epochs_run": len(history), "train_seconds": round(time.perf_counter() - t0, 1),
               "train_windows": len(train), "val_windows": len(val)}
    return model, history, summary


def save_gs_run(run_dir: str | Path, model: GenreMatcher, mel: MelConfig, train_config: GSTrainConfig,
                genres: list[str], data: dict[str, Any], metrics: dict[str, Any],
                history: list[dict[str, Any]]) -> Path:
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    buf = io.BytesIO()
    torch.save({k: v.detach().cpu() for k, v in model.state_dict().items()}, buf)
    atomic_write_bytes(run_dir / "model.pt", buf.getvalue())
    atomic_write_json(run_dir / "history.json", history)
    params = sum(p.numel() for p in model.parameters())
    card = ["# GS network (FineNet eq. 3-4): music style encoder + dance genre encoder", "",
            f"- parameters: {params:,}; embedding {model.config.embed_dim}-d; music: CNN over {mel.n_mels}-band "
            f"log-mel at 30 frames/s; dance: AGCN-like graph convolution over 22 body joints at "
            f"{30 // model.config.frame_step} fps",
            f"- genres ({len(genres)}): {', '.join(genres)}",
            f"- training: cosine loss (eq. 4) on genre-matched / mismatched pairs, {data.get('train_windows')} train "
            f"windows, {data.get('epochs_run')} epochs in {data.get('train_seconds')} s "
            f"(best epoch {data.get('best_epoch')})"]
    for split, m in metrics.items():
        if "gs_real" in m:
            card.append(f"- {split}: GS of real pairs {m['gs_real']:.3f}, mismatched-genre pairs "
                        f"{m['gs_mismatched']:.3f}, music->dance top-1 genre {m['top1_genre']:.3f} "
                        f"({m['windows']} windows)")
    card += ["", "Load with `generation.genre_match.GSScorer.from_pretrained(DIR)`.", ""]
    atomic_write_text(run_dir / "README.md", "\n".join(card))
    atomic_write_json(run_dir / "config.json", {
        "format": RUN_FORMAT, "kind": KIND, "model": model.config.to_dict(), "mel": mel.to_dict(),
        "train": train_config.to_dict(), "genres": list(genres), "data": data, "metrics": metrics})
    return run_dir


def load_gs_run(run_dir: str | Path) -> tuple[GenreMatcher, MelConfig, dict[str, Any]]:
    run_dir = Path(run_dir)
    missing = [f for f in ("config.json", "model.pt") if not (run_dir / f).is_file()]
    if missing:
        raise DanceSearchError(f"{run_dir} is not a GS run directory (missing {', '.join(missing)}); "
                               f"train one with `dancesearch gs train --out DIR`")
    raw = read_versioned_json(run_dir / "config.json", RUN_FORMAT, "GS config", "GS run")
    if raw.get("kind") != KIND:
        raise InputError(run_dir / "config.json", "not a GS run", field="kind", expected=KIND, got=str(raw.get("kind")))
    model = GenreMatcher(GSModelConfig.from_dict(raw["model"]))
    try:
        model.load_state_dict(torch.load(run_dir / "model.pt", map_location="cpu", weights_only=True))
    except Exception as exc:  # torch raises many types for a corrupt or mismatched checkpoint
        raise InputError(run_dir / "model.pt", f"cannot read the GS checkpoint: {exc}") from exc
    model.eval()
    mel = MelConfig(**{k: v for k, v in raw["mel"].items() if k in MelConfig.__dataclass_fields__})
    return model, mel, raw


def train_gs_on_catalog(home: Path | str, out: Path | str, config: GSTrainConfig = GSTrainConfig(),
                        model_config: GSModelConfig = GSModelConfig(), db_url: str | None = None,
                        stride_seconds: float = 2.0, progress: bool = False) -> dict[str, Any]:
    """The whole recipe: windows + mels of the catalog, train, measure val and test, save the run."""
    from ..metrics.catalog_source import window_store
    from .data import build_gs_data, clip_mels

    t0 = time.perf_counter()
    store = window_store(home, db_url, stride_seconds=stride_seconds, progress=progress)
    test_store = store.with_windows(stride_frames=store.config.window_frames)   # non-overlapping for the reference
    ids = {c["id"] for s in ("train", "val", "test") for c in store.clips(s)}
    mel_config = MelConfig(n_mels=model_config.n_mels)
    mels = clip_mels(home, ids, mel_config, db_url, progress)
    genres = sorted(store.genres)
    data = {s: build_gs_data(store if s == "train" else test_store, s, mels, genres, model_config.frame_step, progress)
            for s in ("train", "val", "test")}
    prep = time.perf_counter() - t0
    model, history, summary = train_gs(data["train"], data["val"], config, model_config, progress)
    metrics = {s: evaluate_pairs(model, data[s]) for s in ("val", "test")}
    summary.update({"prepare_seconds": round(prep, 1), "cache_hash": store.content_hash,
                    "stride_seconds": stride_seconds, "test_windows": len(data["test"])})
    save_gs_run(out, model, mel_config, config, genres, summary, metrics, history)
    return {"out": str(Path(out).resolve()), "data": summary, "metrics": metrics}
