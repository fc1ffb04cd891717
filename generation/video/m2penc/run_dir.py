"""The M2PEnc run directory: one ``save_pretrained`` / ``from_pretrained`` path, like diffusers.

::

    RUN/config.json    {"format": 1, "kind": "m2penc", "model": M2PEncConfig, "data": DataConfig (+ "beat_phase": true),
                        "train": TrainConfig, "tower": {"run", "identity"} | null, "info": {...}}
    RUN/model.pt       state_dict of the checkpoint chosen on the validation split (music statistics included)
    RUN/state.pt       the last training state (model, optimiser, step, seconds, history): resuming reads it
    RUN/history.json   one object per evaluation (step, losses, seconds)
    RUN/README.md      model card

``tower`` names the retrieval run whose music-tower tokens the model reads (None: 35-d features only); the
pipeline rebuilds the tower from it, so a model trained on tokens is never fed features without them.
"""
from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import torch

from encoders.atomic_io import atomic_write_bytes, atomic_write_json, atomic_write_text
from encoders.errors import InputError
from encoders.versioned_json import read_versioned_json

from .data import DataConfig
from .model import M2PEnc, M2PEncConfig, describe

RUN_FORMAT = 1
KIND = "m2penc"
REQUIRED_FILES = ("config.json", "model.pt")


def is_run_dir(path: str | Path) -> bool:
    return all((Path(path) / f).is_file() for f in REQUIRED_FILES)


def save_pretrained(run_dir: str | Path, model: M2PEnc, data: DataConfig, train: dict[str, Any] | None = None,
                    tower: dict[str, str] | None = None, info: dict[str, Any] | None = None,
                    state: dict[str, torch.Tensor] | None = None) -> Path:
    """Write ``config.json``, ``model.pt`` (``state`` or the model's own weights) and ``README.md`` atomically."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    buf = io.BytesIO()
    torch.save({k: v.detach().cpu() for k, v in (state if state is not None else model.state_dict()).items()}, buf)
    atomic_write_bytes(run_dir / "model.pt", buf.getvalue())
    config = {"format": RUN_FORMAT, "kind": KIND, "model": model.config.to_dict(),
              "data": _data_dict(data), "train": train or {},
              "tower": tower, "info": info or {}}
    atomic_write_text(run_dir / "README.md", model_card(model, config))
    atomic_write_json(run_dir / "config.json", config)
    return run_dir


def _data_dict(data: DataConfig) -> dict[str, Any]:
    """The data config as written; ``beat_phase`` only when on, so runs made before it existed read back as is."""
    out: dict[str, Any] = {"size": data.size, "fps": data.fps, "heat_sigma": data.heat_sigma}
    if data.beat_phase:
        out["beat_phase"] = True
    return out


def model_card(model: M2PEnc, config: dict[str, Any]) -> str:
    info, train = config.get("info", {}), config.get("train", {})
    tower = config.get("tower")
    return "\n".join([
        "# M2PEnc: music -> pose guidance (SDGPip-trained)", "",
        describe(model), "",
        f"- input: 35-d FineDance/EDGE music features at {config['data']['fps']} fps"
        + (f" + music-tower tokens of `{tower['run']}` ({tower['identity']})" if tower else "")
        + (" + beat / bar phase (sin, cos; from the beat column)" if config["data"].get("beat_phase") else ""),
        f"- outputs: {model.config.guidance_channels} guidance channels (depth, normal, semantic, DWPose, mask) and "
        f"{model.config.heatmap_channels} keypoint heatmaps at {model.config.size}x{model.config.size}",
        f"- training: {info.get('steps', '?')} steps, {info.get('windows_seen', '?')} windows of "
        f"{train.get('window', '?')} frames in {info.get('train_seconds', '?')} s; loss "
        f"L1(guidance, body weight {train.get('body_weight', 0)}) + {train.get('heat_weight', '?')} x MSE(heatmaps) + "
        f"{train.get('temporal_weight', 0)} x temporal + {train.get('energy_weight', 0)} x energy; "
        f"best validation step {info.get('best_step', '?')} "
        f"(val loss {info.get('best_val', float('nan')):.4f})",
        f"- data: {info.get('clips_train', '?')} train / {info.get('clips_val', '?')} val clips "
        f"({info.get('corpus', '')})",
        "", "Load with `generation.video.m2penc.M2PEncPipeline.from_pretrained(DIR)`.", ""])


def read_config(run_dir: str | Path) -> dict[str, Any]:
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise InputError(run_dir, "M2PEnc run directory not found", field="run",
                         expected="a folder written by `dancesearch m2penc train`")
    missing = [f for f in REQUIRED_FILES if not (run_dir / f).is_file()]
    if missing:
        raise InputError(run_dir, "not an M2PEnc run directory", field="run",
                         expected=f"{', '.join(REQUIRED_FILES)}", got=f"missing {', '.join(missing)}")
    raw = read_versioned_json(run_dir / "config.json", RUN_FORMAT, "M2PEnc config", "M2PEnc run")
    if raw.get("kind") != KIND:
        raise InputError(run_dir / "config.json", "not an M2PEnc run", field="kind", expected=KIND,
                         got=str(raw.get("kind")))
    return raw


def load_model(run_dir: str | Path) -> tuple[M2PEnc, DataConfig, dict[str, Any]]:
    """The model (eval mode), its data config and the raw config of ``run_dir``; InputError naming what is wrong."""
    run_dir = Path(run_dir)
    raw = read_config(run_dir)
    try:
        model = M2PEnc(M2PEncConfig.from_dict(dict(raw["model"])))
        data = DataConfig(**raw["data"]).validate()
    except InputError as exc:
        raise InputError(run_dir / "config.json", exc.reason, field=exc.field, expected=exc.expected,
                         got=exc.got) from exc
    except (KeyError, TypeError) as exc:
        raise InputError(run_dir / "config.json", f"bad M2PEnc config: {exc}") from exc
    try:
        state = torch.load(run_dir / "model.pt", map_location="cpu", weights_only=True)
        model.load_state_dict(state)
    except Exception as exc:  # torch raises many types for a corrupt or mismatched checkpoint
        raise InputError(run_dir / "model.pt", f"cannot read the M2PEnc checkpoint: {exc}") from exc
    return model.eval(), data, raw
