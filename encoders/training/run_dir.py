"""The run directory: everything needed to use or audit one trained model, and loading it back.

::

    RUN/config.json      {"format": 1, "model": ModelConfig, "train": TrainConfig, "backbone_identity", "data"}
    RUN/history.json     one object per epoch (train loss, temperature, validation metrics, seconds)
    RUN/best.pt          state_dict of the epoch chosen on validation, WITHOUT a frozen text backbone
    RUN/norm_stats.npz   motion / music feature normalisation (fitted on the training split)
    RUN/metrics.json     best epoch and its validation metrics (eval adds "test" results)
    RUN/README.md        model card

A frozen backbone is rebuilt from its package on load (``backbone_identity`` says which), which
keeps the demo model a few MB instead of ~90 MB.
"""
from __future__ import annotations

import io
import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import torch

from ..atomic_io import atomic_write_bytes, atomic_write_json, atomic_write_text
from ..errors import DanceSearchError, InputError
from ..model.customdancer import LEGACY_DEFAULTS as MODEL_LEGACY_DEFAULTS, CustomDancer, ModelConfig
from ..model.features import NormStats
from ..versioned_json import read_versioned_json

RUN_FORMAT = 1
TRAIN_LEGACY_DEFAULTS: dict[str, Any] = {"unimodal_loss_weight": 0.0, "augment_variants": 0, "augment_prob": 0.5,
                                         "paraphrase_prob": 0.0, "paraphrases_per_clip": 4, "short_crop_prob": 0.0,
                                         "short_crop_min_seconds": 4.0, "augment_ground_sigma": 0.0}
"""Train-config keys added after the first release, with the value a config without them implies."""
FILES = ("config.json", "history.json", "best.pt", "norm_stats.npz", "metrics.json", "README.md")
REQUIRED_FILES = ("config.json", "best.pt", "norm_stats.npz")
"""What :func:`load_run` reads: a folder with these is a trained run."""


def is_run_dir(path: str | Path) -> bool:
    """Whether ``path`` holds a trained retrieval run (checked before minutes of work that would end in load_run)."""
    return all((Path(path) / f).is_file() for f in REQUIRED_FILES)


@dataclass
class TrainConfig:
    """Optimisation settings; ``config.json["train"]``."""

    epochs: int = 30          # the shipped demo model: best val epoch 29 of 30 on 1152 clips
    batch_size: int = 64
    lr: float = 1e-3
    backbone_lr: float = 1e-5          # when the text backbone is fine-tuned (freeze_backbone false)
    weight_decay: float = 0.01
    warmup_frac: float = 0.05
    grad_clip: float = 1.0
    # share of training clips whose rotation block is hidden (as for BVH / position-only sources), so the
    # model also learns to embed clips without SMPL-X rotations; 0 disables it
    rotation_dropout: float = 0.0
    # weight of two auxiliary InfoNCE losses on the motion-only and music-only paths of the blender
    # (blend / add fusion only; see CustomDancer.unimodal_embeddings); 0 trains the fused embedding alone
    unimodal_loss_weight: float = 0.0
    # realism augmentation (encoders.motion.augment; canonical motion input only): this many perturbed
    # versions of each training clip (body proportions, rig differences, marker noise and jitter, mirrored
    # takes, low frame rates, root drift), each batch draws one for a clip with probability augment_prob
    augment_variants: int = 0
    augment_prob: float = 0.5
    # log-normal sigma of a factor on the ground-plane extent (travel and step width) of those variants: real
    # takes cover more or less ground than the procedural ones (encoders.motion.augment.scale_ground_extent)
    augment_ground_sigma: float = 0.0
    # share of training captions replaced by a people's-words paraphrase (genre jargon, step names, moods,
    # typos: encoders.text_vocabulary), paraphrases_per_clip of them drawn once per clip
    paraphrase_prob: float = 0.0
    paraphrases_per_clip: int = 4
    # share of training clips cut to a random stretch of short_crop_min_seconds .. the whole clip, so takes
    # shorter than the 12-s window (padded and masked at inference) are in the training distribution
    short_crop_prob: float = 0.0
    short_crop_min_seconds: float = 4.0
    seed: int = 0
    device: str = "auto"               # auto | cpu | cuda | cuda:N
    num_threads: int = 1               # CPU threads for torch; measured on 2 busy shared cores, 1 thread
                                       # ran a step 3-5x faster than 2 (no spin-waiting); 0 = torch default
    patience: int = 0                  # stop after this many epochs without a better val score (0: never)
    eval_batch_size: int = 128

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "TrainConfig":
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise DanceSearchError(f"unknown train config keys {unknown}; known: {sorted(known)}")
        cfg = cls(**data)
        if cfg.epochs < 1 or cfg.batch_size < 2:
            raise DanceSearchError("train config: epochs must be >= 1 and batch_size >= 2")
        if not 0.0 <= cfg.rotation_dropout < 1.0:
            raise DanceSearchError(f"train config: rotation_dropout must be in [0, 1), got {cfg.rotation_dropout}")
        if cfg.augment_variants < 0 or cfg.paraphrases_per_clip < 0:
            raise DanceSearchError("train config: augment_variants and paraphrases_per_clip must be >= 0")
        if cfg.short_crop_min_seconds <= 0:
            raise DanceSearchError(f"train config: short_crop_min_seconds must be > 0, got {cfg.short_crop_min_seconds}")
        for name in ("augment_prob", "paraphrase_prob", "short_crop_prob"):
            if not 0.0 <= getattr(cfg, name) <= 1.0:
                raise DanceSearchError(f"train config: {name} must be in [0, 1], got {getattr(cfg, name)}")
        if cfg.augment_ground_sigma < 0:
            raise DanceSearchError(f"train config: augment_ground_sigma must be >= 0, got {cfg.augment_ground_sigma}")
        if cfg.augment_ground_sigma > 0 and cfg.augment_variants == 0:
            raise DanceSearchError("train config: augment_ground_sigma acts on the augmented variants; "
                                   "set augment_variants > 0 as well")
        if cfg.unimodal_loss_weight < 0:
            raise DanceSearchError(f"train config: unimodal_loss_weight must be >= 0, got {cfg.unimodal_loss_weight}")
        return cfg


@dataclass
class RunConfig:
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    @classmethod
    def from_dict(cls, data: dict[str, Any], saved: bool | None = None) -> "RunConfig":
        """``saved`` None: a config with ``format`` or ``backbone_identity`` is a run's own config.json (keys it
        lacks take the values its model was trained with); anything else is a new config (today's defaults)."""
        unknown = sorted(set(data) - {"model", "train", "format", "backbone_identity", "data"})
        if unknown:
            raise DanceSearchError(f"unknown config sections {unknown}; expected 'model' and 'train'")
        if saved is None:
            saved = "format" in data or "backbone_identity" in data
        return cls(ModelConfig.from_dict(dict(data.get("model") or {}), saved=saved),
                   TrainConfig.from_dict(dict(data.get("train") or {})))

    @classmethod
    def from_file(cls, path: str | Path) -> "RunConfig":
        """A JSON (``.json``) or TOML (``.toml``) file with optional ``model`` and ``train`` tables."""
        path = Path(path)
        try:
            if path.suffix.lower() == ".toml":
                import tomllib
                data = tomllib.loads(path.read_text(encoding="utf-8"))
            else:
                data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise InputError(path, f"cannot read config: {exc}") from exc
        if not isinstance(data, dict):
            raise InputError(path, "config must be an object with 'model' and 'train'")
        return cls.from_dict(data)

    def to_dict(self) -> dict[str, Any]:
        return {"model": self.model.to_dict(), "train": asdict(self.train)}

    def identity_dict(self) -> dict[str, Any]:
        """``to_dict`` without the keys added after the first release that hold the value their absence implies.

        Why: the model id (``encoders.api.compute_model_id``) hashes the config; a release that adds an
        option must not change the id of a model trained before it, or every index and fast query encoder
        built with that model would be refused as stale.
        """
        out = self.to_dict()
        for section, legacy in (("model", MODEL_LEGACY_DEFAULTS), ("train", TRAIN_LEGACY_DEFAULTS)):
            for key, value in legacy.items():
                if out[section].get(key) == value:
                    del out[section][key]
        return out


@dataclass
class LoadedRun:
    run_dir: Path
    config: RunConfig
    model: CustomDancer
    stats: NormStats
    checkpoint_sha256: str
    metrics: dict[str, Any]


def save_run(run_dir: str | Path, config: RunConfig, model: CustomDancer, state: dict[str, torch.Tensor],
             stats: NormStats, history: list[dict[str, Any]], metrics: dict[str, Any], data_info: dict[str, Any]) -> Path:
    """Write every file of a run directory atomically; ``state`` is the chosen (best) trainable state."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    buf = io.BytesIO()
    torch.save({k: v.detach().cpu() for k, v in state.items()}, buf)
    atomic_write_bytes(run_dir / "best.pt", buf.getvalue())
    stats.save(run_dir / "norm_stats.npz")
    cfg = {"format": RUN_FORMAT, **config.to_dict(), "backbone_identity": model.backbone_identity, "data": data_info}
    atomic_write_json(run_dir / "config.json", cfg)
    atomic_write_json(run_dir / "history.json", history)
    atomic_write_json(run_dir / "metrics.json", metrics)
    atomic_write_text(run_dir / "README.md", model_card(config, model, history, metrics, data_info))
    return run_dir


def _fmt(m: dict[str, Any] | None) -> str:
    if not m:
        return "n/a"
    return ", ".join(f"{k} {m[k]:.2f}" for k in ("R@1", "R@5", "R@10", "MedR", "MnR") if k in m)


def model_card(config: RunConfig, model: CustomDancer, history: list[dict[str, Any]], metrics: dict[str, Any],
               data_info: dict[str, Any]) -> str:
    c = config.model
    n_params = sum(p.numel() for k, p in model.state_dict().items()
                   if not (c.freeze_backbone and k.startswith("text.backbone.")))
    lines = [
        "# CustomDancer run", "",
        "Text-to-dance retrieval model (CustomDancer, unidirectional text->dance InfoNCE).", "",
        f"- text backbone: `{model.backbone_identity}` ({'frozen, not stored here' if c.freeze_backbone else 'fine-tuned, stored'})",
        f"- temporal backbone: `{c.temporal}`, {c.layers} layers, d_model {c.d_model}; fusion: `{c.fusion}`",
        f"- embedding dimension: {c.embed_dim}; input: {c.seq_len} frames at 30/{c.frame_stride} fps",
        f"- stored parameters: {n_params:,}",
        f"- training data: {data_info.get('train_clips', '?')} train clips, {data_info.get('val_clips', '?')} val clips"
        f" ({data_info.get('description', '')})",
        f"- epochs run: {len(history)}, best epoch (validation R@1+R@5+R@10): {metrics.get('best_epoch')}",
        f"- validation at best epoch: {_fmt(metrics.get('val'))}",
        f"- seed: {config.train.seed}; train seconds: {metrics.get('train_seconds', 0):.1f}", "",
        "Load with `encoders.api.DanceEmbedder.from_run(PATH)`; evaluate with "
        "`dancesearch eval retrieval --run PATH --split test`.", "",
    ]
    if metrics.get("test"):
        lines += [f"Test ({metrics['test'].get('protocol', '')}): {_fmt(metrics['test'])}", ""]
    return "\n".join(lines)


def load_run(run_dir: str | Path, device: str | torch.device | None = None) -> LoadedRun:
    """Rebuild the model of a run directory (frozen backbone from its package) in eval mode."""
    import hashlib

    run_dir = Path(run_dir)
    missing = [f for f in REQUIRED_FILES if not (run_dir / f).is_file()]
    if missing:
        raise DanceSearchError(f"{run_dir} is not a trained run directory (missing {', '.join(missing)}); "
                               f"train one with `dancesearch train --out DIR` or use the shipped models/demo")
    raw = read_versioned_json(run_dir / "config.json", RUN_FORMAT, "run config", "run")
    config = RunConfig.from_dict(raw)
    blob = (run_dir / "best.pt").read_bytes()
    try:
        state = torch.load(io.BytesIO(blob), map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for a corrupt file
        raise InputError(run_dir / "best.pt", f"cannot read checkpoint: {exc}") from exc
    stats = NormStats.load(run_dir / "norm_stats.npz")
    model = CustomDancer(config.model)
    model.load_trainable_state_dict(state)
    dev = resolve_device(device if device is not None else "auto")
    model.to(dev).eval()
    metrics: dict[str, Any] = {}
    if (run_dir / "metrics.json").is_file():
        metrics = json.loads((run_dir / "metrics.json").read_text(encoding="utf-8"))
    return LoadedRun(run_dir, config, model, stats, hashlib.sha256(blob).hexdigest(), metrics)


def resolve_device(device: str | torch.device) -> torch.device:
    """``auto`` picks CUDA when present (the trainer and embedder use a GPU without being told)."""
    if isinstance(device, torch.device):
        return device
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except RuntimeError as exc:
        raise DanceSearchError(f"unknown device {device!r}: {exc}") from exc
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise DanceSearchError(f"device {device!r} requested but CUDA is not available")
    return dev
