"""The generator's run directory: everything needed to sample from, or audit, one trained denoiser.

::

    RUN/config.json          {"format": 1, "kind": "gcdance", "representation", "denoiser", "train", "genres",
                              "genre_prompt", "text_backbone", "data"}
    RUN/model.pt             denoiser state_dict (the best validation checkpoint)
    RUN/normalizer.npz       feature statistics of the training windows (generation.representation)
    RUN/genre_embeddings.npy (G, E) the genre code the denoiser reads: text embeddings of "This is a {genre}
                             type of music." as they are, or whitened over the genre set (train config
                             ``genre_code``, ``genre_code.py``); no backbone is needed to sample a named genre.
                             ``genre_prompt`` and ``text_backbone`` in config.json say where the embeddings came
                             from; a whitened table also depends on the whole genre set, so a new genre means
                             retraining
    RUN/history.json         losses per evaluation
    RUN/README.md            model card

A run made for another motion representation is refused when loaded.
"""
from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np
import torch

from encoders.atomic_io import atomic_save_npy, atomic_write_bytes, atomic_write_json, atomic_write_text
from encoders.errors import DanceSearchError, InputError
from encoders.versioned_json import read_versioned_json

from ..representation.layout import REPRESENTATION_ID
from ..representation.normalizer import Normalizer
from .denoiser import DenoiserConfig, GCDanceDenoiser

RUN_FORMAT = 1
KIND = "gcdance"
GENRE_PROMPT = "This is a {genre} type of music."


def save_run(run_dir: str | Path, model: GCDanceDenoiser, state: dict[str, torch.Tensor], normalizer: Normalizer,
             genres: list[str], genre_embeddings: np.ndarray, train_config: dict[str, Any], text_backbone: str,
             history: list[dict[str, Any]], data: dict[str, Any]) -> Path:
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    buf = io.BytesIO()
    torch.save({k: v.detach().cpu() for k, v in state.items()}, buf)
    atomic_write_bytes(run_dir / "model.pt", buf.getvalue())
    normalizer.save(run_dir / "normalizer.npz")
    atomic_save_npy(run_dir / "genre_embeddings.npy", np.asarray(genre_embeddings, dtype=np.float32))
    atomic_write_json(run_dir / "history.json", history)
    atomic_write_text(run_dir / "README.md", model_card(model, genres, train_config, text_backbone, data))
    atomic_write_json(run_dir / "config.json", {
        "format": RUN_FORMAT, "kind": KIND, "representation": REPRESENTATION_ID, "denoiser": model.config.to_dict(),
        "train": train_config, "genres": genres, "genre_prompt": GENRE_PROMPT, "text_backbone": text_backbone,
        "data": data})
    return run_dir


def model_card(model: GCDanceDenoiser, genres: list[str], train_config: dict[str, Any], text_backbone: str,
               data: dict[str, Any]) -> str:
    c = model.config
    params = sum(p.numel() for p in model.parameters())
    return "\n".join([
        "# GCDance-style genre-controlled dance generator", "",
        "Body / hand Transformer experts, music cross-attention, genre + step FiLM, x0 prediction, cosine DDIM.", "",
        f"- parameters: {params:,}; d_model {c.d_model}, body {c.body_layers} + hand {c.hand_layers} layers, "
        f"{c.window_frames}-frame windows downsampled x{c.time_stride}",
        f"- genres ({len(genres)}): {', '.join(genres)}; prompt \"{GENRE_PROMPT}\" embedded by `{text_backbone}`"
        f" (genre code: {train_config.get('genre_code', 'prompt')})",
        f"- training: {data.get('windows_seen', '?')} windows seen in {data.get('train_seconds', '?')} s "
        f"(budget {train_config.get('minutes')} min, at most {train_config.get('steps')} steps, batch "
        f"{train_config.get('batch_size')}, loss combination `{train_config.get('loss_combination')}`)",
        f"- data: {data.get('windows_train', '?')} train / {data.get('windows_val', '?')} val windows "
        f"(cache {data.get('cache_hash', '')[:16]})",
        f"- music: 35-d features{_tower_note(c)}; genre-swapped music share {train_config.get('music_swap', 0.0)}",
        f"- options: {_options_note(c)}",
        f"- genre critic loss: {_critic_note(train_config, data)}",
        f"- checkpoint: step {data.get('best_step')} (validation x0 MSE {data.get('best_val_simple', float('nan')):.4f})",
        "", "Sample with `dancesearch generate --run DIR ...` or "
        "`generation.diffusion.pipeline.DancePipeline.from_pretrained(DIR)`.", ""])


def _critic_note(train_config: dict[str, Any], data: dict[str, Any]) -> str:
    weight = train_config.get("genre_loss_weight", 0.0) or 0.0
    if not weight:
        return "none"
    report = data.get("genre_critic") or {}
    acc = (f", critic accuracy {report['train_accuracy']:.3f} train / {report['val_accuracy']:.3f} val"
           if report.get("train_accuracy") is not None and report.get("val_accuracy") is not None else "")
    members = report.get("members") or {}
    epochs = (", ".join(f"{kind} {m.get('epochs_run', m.get('epochs', '?'))} epochs" for kind, m in members.items())
              if members else f"{train_config.get('critic_epochs', '?')} critic epochs")
    return f"weight {weight} ({train_config.get('critic_kind', 'features')} critic: {epochs}{acc})"


def _tower_note(c: DenoiserConfig) -> str:
    return f" + frozen music-tower tokens ({c.music_tower.get('source', '?')})" if c.music_tower else ""


def _options_note(c: DenoiserConfig) -> str:
    on = [name for name in ("overlap_upsampling", "learned_variance", "ds_attention", "alignment_module")
          if getattr(c, name)]
    return ", ".join(on) if on else "none (GCDance base)"


def load_run(run_dir: str | Path) -> tuple[GCDanceDenoiser, Normalizer, list[str], np.ndarray, dict[str, Any]]:
    run_dir = Path(run_dir)
    missing = [f for f in ("config.json", "model.pt", "normalizer.npz", "genre_embeddings.npy")
               if not (run_dir / f).is_file()]
    if missing:
        raise DanceSearchError(f"{run_dir} is not a generator run directory (missing {', '.join(missing)}); "
                               f"train one with `dancesearch generate train --out DIR`")
    raw = read_versioned_json(run_dir / "config.json", RUN_FORMAT, "generator config", "generator run")
    if raw.get("kind") != KIND:
        raise InputError(run_dir / "config.json", "not a generator run", field="kind", expected=KIND,
                         got=str(raw.get("kind")))
    if raw.get("representation") != REPRESENTATION_ID:
        raise InputError(run_dir / "config.json", "made for another motion representation", field="representation",
                         expected=REPRESENTATION_ID, got=str(raw.get("representation")))
    model = GCDanceDenoiser(DenoiserConfig(**raw["denoiser"]))
    try:
        model.load_state_dict(torch.load(run_dir / "model.pt", map_location="cpu", weights_only=True))
    except Exception as exc:  # torch raises many types for a corrupt or mismatched checkpoint
        raise InputError(run_dir / "model.pt", f"cannot read the generator checkpoint: {exc}") from exc
    model.eval()
    normalizer = Normalizer.load(run_dir / "normalizer.npz")
    emb = np.load(run_dir / "genre_embeddings.npy")
    genres = list(raw["genres"])
    if emb.shape != (len(genres), model.config.genre_dim):
        raise InputError(run_dir / "genre_embeddings.npy", "genre embeddings do not match the genres",
                         expected=f"({len(genres)}, {model.config.genre_dim})", got=str(emb.shape))
    return model, normalizer, genres, emb, raw
