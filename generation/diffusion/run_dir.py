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
    RUN/snapshots/step_NNNNN.pt  optional: the weights every ``snapshot_every`` steps, for choosing a checkpoint
                             by its samples afterwards (``load_run(RUN, snapshot=N)``)
    RUN/README.md            model card

A run made for another motion representation is refused when loaded.
"""
from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from encoders.atomic_io import (atomic_folder, atomic_save_npy, atomic_write_bytes, atomic_write_json,
                                atomic_write_text)
from encoders.errors import DanceSearchError, InputError
from encoders.versioned_json import read_versioned_json

from ..representation.layout import REPRESENTATION_ID
from ..representation.normalizer import Normalizer
from .denoiser import DenoiserConfig, GCDanceDenoiser

RUN_FORMAT = 1
KIND = "gcdance"
GENRE_PROMPT = "This is a {genre} type of music."


SNAPSHOT_DIR = "snapshots"


def snapshot_path(run_dir: str | Path, step: int) -> Path:
    """Where the weights of training step ``step`` are kept (``TrainConfig.snapshot_every``)."""
    return Path(run_dir) / SNAPSHOT_DIR / f"step_{int(step):05d}.pt"


def weights_path(run_dir: str | Path, snapshot: int | None = None) -> Path:
    """The run's selected checkpoint ``model.pt``, or the snapshot of step ``snapshot``."""
    return Path(run_dir) / "model.pt" if snapshot is None else snapshot_path(run_dir, snapshot)


def val_error_at(history: Sequence[dict[str, Any]], step: int) -> float | None:
    """The validation x0 error logged at ``step`` (None when no evaluation fell on it)."""
    return next((row.get("val_simple") for row in history if row.get("step") == int(step)), None)


def read_history(run_dir: str | Path) -> list[dict[str, Any]]:
    """The run's ``history.json`` (an empty list for a run written without one)."""
    path = Path(run_dir) / "history.json"
    if not path.is_file():
        return []
    try:
        return list(json.loads(path.read_text()))
    except (OSError, ValueError, TypeError) as exc:
        raise InputError(path, f"not a readable training history: {exc}") from exc


def _state_bytes(state: dict[str, torch.Tensor]) -> bytes:
    """A state dict serialised as ``model.pt`` holds it (CPU tensors)."""
    buf = io.BytesIO()
    torch.save({k: v.detach().cpu() for k, v in state.items()}, buf)
    return buf.getvalue()


def save_snapshot(run_dir: str | Path, step: int, state: dict[str, torch.Tensor]) -> Path:
    """Keep the weights of one training step beside the run (``TrainConfig.snapshot_every``)."""
    path = snapshot_path(run_dir, step)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, _state_bytes(state))
    return path


def clear_snapshots(run_dir: str | Path) -> int:
    """Remove the snapshots a previous training into ``run_dir`` left (they belong to the run being replaced, and
    would otherwise be scored as this one's); returns how many went."""
    steps = list_snapshots(run_dir)
    for step in steps:
        snapshot_path(run_dir, step).unlink()
    return len(steps)


def list_snapshots(run_dir: str | Path) -> list[int]:
    """Steps with a kept snapshot, ascending (empty for a run trained without ``snapshot_every``). Only files
    named as ``snapshot_path`` names them count: a stray file is not a snapshot."""
    folder = Path(run_dir) / SNAPSHOT_DIR
    steps = []
    for f in folder.glob("step_*.pt") if folder.is_dir() else []:
        digits = f.stem.removeprefix("step_")
        if digits.isdigit() and snapshot_path(run_dir, int(digits)).name == f.name:
            steps.append(int(digits))
    return sorted(steps)


def read_weights(run_dir: str | Path, snapshot: int | None = None) -> dict[str, torch.Tensor]:
    """The state dict of ``model.pt`` or of a snapshot, refused by name when missing or unreadable."""
    weights = weights_path(run_dir, snapshot)
    if not weights.is_file():
        kept = list_snapshots(run_dir)
        raise InputError(weights, "no snapshot at this step", field="snapshot",
                         expected=", ".join(map(str, kept)) or "none kept (train with snapshot_every)",
                         got=str(snapshot))
    try:
        return torch.load(weights, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for a corrupt checkpoint
        raise InputError(weights, f"cannot read the generator checkpoint: {exc}") from exc


def average_snapshots(run_dir: str | Path, steps: Sequence[int]) -> dict[str, torch.Tensor]:
    """The uniform (box) mean of the raw weights kept at ``steps``: checkpoint averaging, a cheap post-hoc
    stand-in for the exponential moving average of the weights that diffusion models usually sample from and
    that the recipes do not keep (Karras et al. 2024 go further: they rebuild EMA profiles from stored EMA
    snapshots). Non-float entries come from the last step."""
    if not steps:
        raise DanceSearchError(f"{run_dir}: averaging snapshots needs at least one step")
    states = [read_weights(run_dir, int(s)) for s in steps]     # a missing one is named; no model built each
    return {k: (torch.stack([st[k] for st in states]).mean(0) if v.is_floating_point() else v)
            for k, v in states[-1].items()}


def export_checkpoint(run_dir: str | Path, steps: Sequence[int], out_dir: str | Path,
                      selection: dict[str, Any]) -> Path:
    """A new run directory whose checkpoint is the snapshot of one step, the mean of several
    (``average_snapshots``), or with no steps the run's own ``model.pt``: the run's config, normaliser, genre code
    and history with ``model.pt`` replaced, and ``data.best_step`` / ``data.checkpoint_selection`` saying how it
    was chosen (``selection``), so it loads, samples and compares like any run. Written as a whole or not at
    all (``atomic_folder``); an existing ``out_dir`` is refused."""
    run_dir, out_dir = Path(run_dir), Path(out_dir)
    steps = [int(s) for s in steps]
    model, _, genres, _, raw = load_run(run_dir, snapshot=steps[-1] if steps else None)   # refuses a missing one
    if out_dir.resolve() == run_dir.resolve():
        raise InputError(out_dir, "the export would overwrite the run it comes from", field="out",
                         expected="another directory", got=str(out_dir))
    if len(steps) <= 1:
        weights = weights_path(run_dir, steps[0] if steps else None).read_bytes()
    else:
        mean = average_snapshots(run_dir, steps)
        model.load_state_dict(mean)              # the mean must load into the run's denoiser before it is written
        weights = _state_bytes(mean)
    data = raw.get("data", {})
    if steps:
        val = val_error_at(read_history(run_dir), steps[0]) if len(steps) == 1 else None
        data = {**data, "best_step": steps[-1], "best_val_simple": val}
    raw["data"] = {**data, "checkpoint_selection": {**selection, "source_run": str(run_dir), "steps": steps}}
    with atomic_folder(out_dir) as tmp:
        for name in ("normalizer.npz", "genre_embeddings.npy", "history.json"):
            if (run_dir / name).is_file():
                (tmp / name).write_bytes((run_dir / name).read_bytes())
        (tmp / "README.md").write_text(model_card(model, genres, raw.get("train", {}),
                                                  raw.get("text_backbone", "?"), raw["data"]))
        (tmp / "model.pt").write_bytes(weights)
        (tmp / "config.json").write_text(json.dumps(raw, indent=2, sort_keys=True, default=str) + "\n")
    return out_dir


def save_run(run_dir: str | Path, model: GCDanceDenoiser, state: dict[str, torch.Tensor], normalizer: Normalizer,
             genres: list[str], genre_embeddings: np.ndarray, train_config: dict[str, Any], text_backbone: str,
             history: list[dict[str, Any]], data: dict[str, Any]) -> Path:
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(run_dir / "model.pt", _state_bytes(state))
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
        f"- checkpoint: step {data.get('best_step')} ({_selection_note(data)})",
        "", "Sample with `dancesearch generate --run DIR ...` or "
        "`generation.diffusion.pipeline.DancePipeline.from_pretrained(DIR)`.", ""])


def _selection_note(data: dict[str, Any]) -> str:
    val = data.get("best_val_simple")
    val_note = f"validation x0 MSE {val:.4f}" if isinstance(val, (int, float)) else "validation x0 MSE not logged"
    chosen = data.get("checkpoint_selection")
    if not chosen:
        return val_note
    steps = chosen.get("steps") or []
    averaged = f"the mean of the snapshots of steps {', '.join(map(str, steps))}; " if len(steps) > 1 else ""
    return f"{averaged}{val_note}; chosen by {chosen.get('by', 'samples')}"


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
    on = [name for name in ("overlap_upsampling", "learned_variance", "ds_attention", "alignment_module",
                            "genre_token")
          if getattr(c, name)]
    return ", ".join(on) if on else "none (GCDance base)"


def load_run(run_dir: str | Path, snapshot: int | None = None
             ) -> tuple[GCDanceDenoiser, Normalizer, list[str], np.ndarray, dict[str, Any]]:
    """The run's denoiser (its selected checkpoint ``model.pt``, or with ``snapshot`` the weights kept at that
    step), normaliser, genres, genre code and raw config."""
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
    state = read_weights(run_dir, snapshot)
    try:
        model.load_state_dict(state)
    except Exception as exc:  # torch raises many types for a mismatched checkpoint
        raise InputError(weights_path(run_dir, snapshot), f"cannot read the generator checkpoint: {exc}") from exc
    model.eval()
    normalizer = Normalizer.load(run_dir / "normalizer.npz")
    emb = np.load(run_dir / "genre_embeddings.npy")
    genres = list(raw["genres"])
    if emb.shape != (len(genres), model.config.genre_dim):
        raise InputError(run_dir / "genre_embeddings.npy", "genre embeddings do not match the genres",
                         expected=f"({len(genres)}, {model.config.genre_dim})", got=str(emb.shape))
    return model, normalizer, genres, emb, raw
