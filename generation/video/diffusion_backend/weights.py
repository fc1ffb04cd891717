"""The weights folder: its layout, a check that names what is missing, and a tiny random-weight folder for tests.

Real weights are loaded **only from a local folder the user names**; nothing is fetched from a hub. Layout
(each part a diffusers / transformers ``save_pretrained`` folder)::

    DIR/
      pipeline.json                 optional: {"guidance_types": [...]} (default: the guidance_encoder_* folders)
      vae/                          AutoencoderKL            config.json + diffusion_pytorch_model.safetensors|.bin
      reference_unet/               UNet2DConditionModel     (Champ's reference UNet)
      denoising_unet/               UNet2DConditionModel     (the spatial layers of Champ's denoising UNet)
      motion_module/                MotionAdapter            (the temporal layers; an AnimateDiff adapter fits)
      guidance_encoder_<type>/      GuidanceEncoder          one per guidance type (depth, normal, semantic_map,
                                                             dwpose, mask)
      image_encoder/                optional: transformers CLIPVisionModelWithProjection
                                    config.json + model.safetensors|pytorch_model.bin
      scheduler/                    DDIMScheduler            scheduler_config.json

Why check before loading: a diffusers ``from_pretrained`` on a half-copied folder fails deep inside with a
message about a config key or a hub lookup; :func:`check_weights_dir` names the folder, the missing file and
what was expected, and catches parts that do not fit together (latent channels, widths) from configs alone.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from encoders.atomic_io import atomic_folder, atomic_write_json
from encoders.errors import InputError

PIPELINE_FILE = "pipeline.json"
REQUIRED_PARTS: tuple[str, ...] = ("vae", "reference_unet", "denoising_unet", "motion_module", "scheduler")
GUIDANCE_PREFIX = "guidance_encoder_"
IMAGE_ENCODER = "image_encoder"
#: Known guidance types and their channels (kept here, torch-free, so the check needs no torch).
GUIDANCE_TYPES: tuple[str, ...] = ("depth", "normal", "semantic_map", "dwpose", "mask")

_DIFFUSERS_WEIGHTS = ("diffusion_pytorch_model.safetensors", "diffusion_pytorch_model.bin",
                      "diffusion_pytorch_model.safetensors.index.json", "diffusion_pytorch_model.bin.index.json")
_TRANSFORMERS_WEIGHTS = ("model.safetensors", "pytorch_model.bin", "model.safetensors.index.json",
                         "pytorch_model.bin.index.json")


@dataclass(frozen=True)
class WeightsLayout:
    """A checked weights folder: where each part is, which guidance types, whether CLIP conditions it.

    ``variants`` maps a part to the diffusers weight variant its files carry (e.g. "fp16" for
    ``diffusion_pytorch_model.fp16.safetensors``), for the parts that only have a variant.
    """

    root: Path
    guidance_types: tuple[str, ...]
    image_encoder: bool
    configs: dict[str, dict] = field(default_factory=dict, compare=False, repr=False)
    variants: dict[str, str] = field(default_factory=dict)

    def folder(self, part: str) -> Path:
        return self.root / part

    def guidance_folder(self, kind: str) -> Path:
        return self.root / f"{GUIDANCE_PREFIX}{kind}"


def _read_json(path: Path) -> dict:
    try:
        obj = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(path, "cannot read the JSON file", expected="a JSON object", got=type(exc).__name__) from exc
    if not isinstance(obj, dict):
        raise InputError(path, "not a JSON object", expected="a JSON object", got=type(obj).__name__)
    return obj


def _weights_variant(folder: Path, names: tuple[str, ...]) -> str | None:
    """None when a plain weights file is there, a variant name when only ``name.<variant>.ext`` is; else raise."""
    if any((folder / n).is_file() for n in names):
        return None
    for n in names:
        stem, _, ext = n.partition(".")
        for p in sorted(folder.glob(f"{stem}.*.{ext}")):
            variant = p.name[len(stem) + 1:-(len(ext) + 1)]
            if variant and "." not in variant:
                return variant
    raise InputError(folder, "weights file missing", expected=" or ".join(names[:2]),
                     got=", ".join(sorted(p.name for p in folder.iterdir())) or "an empty folder")


def _part(root: Path, name: str, config_name: str = "config.json",
          weights: tuple[str, ...] | None = _DIFFUSERS_WEIGHTS) -> tuple[dict, str | None]:
    folder = root / name
    if not folder.is_dir():
        raise InputError(root, f"part '{name}' missing", field=name, expected=f"a folder {folder}", got="none")
    cfg_path = folder / config_name
    if not cfg_path.is_file():
        raise InputError(folder, f"part '{name}' incomplete", field=config_name, expected=f"{cfg_path}",
                         got="no such file")
    cfg = _read_json(cfg_path)
    variant = _weights_variant(folder, weights) if weights else None
    return cfg, variant


def _same(a: Any, b: Any) -> bool:
    return (list(a) if isinstance(a, (list, tuple)) else a) == (list(b) if isinstance(b, (list, tuple)) else b)


def _agree(root: Path, what: str, where: str, expected: Any, got: Any) -> None:
    if not _same(expected, got):
        raise InputError(root / where, f"parts do not fit: {what}", expected=str(expected), got=str(got))


def check_weights_dir(path: str | Path) -> WeightsLayout:
    """Check a weights folder (files and config consistency, no weights read) and return its layout.

    Raises :class:`InputError` naming the folder, the missing or bad file, and expected vs got. A name that
    is not a local folder (e.g. a hub id) is refused: this back-end never downloads.
    """
    root = Path(path).expanduser()
    if not root.is_dir():
        raise InputError(root, "weights folder not found", field="weights",
                         expected="a local folder laid out as generation/video/diffusion_backend/weights.py says "
                                  "(nothing is downloaded)", got="no such folder")
    configs: dict[str, dict] = {}
    variants: dict[str, str] = {}
    for name in REQUIRED_PARTS:
        if name == "scheduler":
            configs[name], _ = _part(root, name, "scheduler_config.json", None)
        else:
            configs[name], variant = _part(root, name)
            if variant:
                variants[name] = variant

    found = sorted(p.name[len(GUIDANCE_PREFIX):] for p in root.glob(f"{GUIDANCE_PREFIX}*") if p.is_dir())
    spec = root / PIPELINE_FILE
    if spec.is_file():
        listed = _read_json(spec).get("guidance_types")
        if not isinstance(listed, list) or not listed or not all(isinstance(t, str) for t in listed):
            raise InputError(spec, "bad guidance types", field="guidance_types",
                             expected="a non-empty list of names", got=repr(listed))
        types = tuple(listed)
    else:
        types = tuple(t for t in GUIDANCE_TYPES if t in found) + tuple(t for t in found if t not in GUIDANCE_TYPES)
    if not types:
        raise InputError(root, "no guidance encoder", field=f"{GUIDANCE_PREFIX}<type>",
                         expected=f"at least one of {', '.join(GUIDANCE_PREFIX + t for t in GUIDANCE_TYPES)}",
                         got="none")
    for kind in types:
        if kind not in GUIDANCE_TYPES:
            raise InputError(root / f"{GUIDANCE_PREFIX}{kind}", "unknown guidance type", field="guidance_types",
                             expected=", ".join(GUIDANCE_TYPES), got=kind)
        key = GUIDANCE_PREFIX + kind
        configs[key], variant = _part(root, key)
        if variant:
            variants[key] = variant

    image_encoder = (root / IMAGE_ENCODER).exists()
    if image_encoder:
        configs[IMAGE_ENCODER], _ = _part(root, IMAGE_ENCODER, weights=_TRANSFORMERS_WEIGHTS)

    vae, ref, den, mm = (configs[k] for k in ("vae", "reference_unet", "denoising_unet", "motion_module"))
    _agree(root, "VAE latent channels vs denoising UNet input channels", "denoising_unet/config.json",
           vae.get("latent_channels", 4), den.get("in_channels", 4))
    for key in ("in_channels", "block_out_channels", "down_block_types", "up_block_types", "layers_per_block",
                "cross_attention_dim", "transformer_layers_per_block"):
        _agree(root, f"reference vs denoising UNet {key}", "reference_unet/config.json", den.get(key), ref.get(key))
    _agree(root, "motion module vs denoising UNet block_out_channels", "motion_module/config.json",
           den.get("block_out_channels"), mm.get("block_out_channels"))
    want_layers = den.get("layers_per_block", 2)
    got_layers = mm.get("motion_layers_per_block", 2)
    if isinstance(want_layers, int) and isinstance(got_layers, int):
        _agree(root, "motion module layers vs denoising UNet layers_per_block", "motion_module/config.json",
               want_layers, got_layers)
    width0 = (den.get("block_out_channels") or [320])[0]
    for kind in types:
        key = GUIDANCE_PREFIX + kind
        _agree(root, "guidance embedding channels vs denoising UNet block_out_channels[0]", f"{key}/config.json",
               width0, configs[key].get("guidance_embedding_channels"))
    if image_encoder:
        _agree(root, "image encoder projection_dim vs UNet cross_attention_dim", f"{IMAGE_ENCODER}/config.json",
               den.get("cross_attention_dim"), configs[IMAGE_ENCODER].get("projection_dim"))
    return WeightsLayout(root=root, guidance_types=types, image_encoder=image_encoder, configs=configs,
                         variants=variants)


@dataclass(frozen=True)
class TinyConfig:
    """Configs of a tiny random-weight pipeline (tests, CLI smoke runs): same architecture family, ~1/1000 size.

    The UNets have two blocks (one cross-attention block), widths 32/64; the VAE four blocks of 8-16 channels
    (so the /8 latent scale of SD holds); the scheduler is DDIM with Champ's inference settings
    (linear betas 0.00085-0.012, v-prediction, zero terminal SNR, trailing timesteps).
    """

    unet: dict = field(default_factory=lambda: {
        "sample_size": 8, "in_channels": 4, "out_channels": 4, "layers_per_block": 1,
        "block_out_channels": [32, 64], "down_block_types": ["CrossAttnDownBlock2D", "DownBlock2D"],
        "up_block_types": ["UpBlock2D", "CrossAttnUpBlock2D"], "cross_attention_dim": 32,
        "attention_head_dim": 8, "norm_num_groups": 16})
    motion: dict = field(default_factory=lambda: {
        "block_out_channels": [32, 64], "motion_layers_per_block": 1, "motion_num_attention_heads": 2,
        "motion_norm_num_groups": 16, "motion_max_seq_length": 32, "use_motion_mid_block": True})
    vae: dict = field(default_factory=lambda: {
        "in_channels": 3, "out_channels": 3, "latent_channels": 4, "layers_per_block": 1, "norm_num_groups": 8,
        "block_out_channels": [8, 16, 16, 16], "sample_size": 64,
        "down_block_types": ["DownEncoderBlock2D"] * 4, "up_block_types": ["UpDecoderBlock2D"] * 4})
    guidance: dict = field(default_factory=lambda: {"guidance_embedding_channels": 32,
                                                    "block_out_channels": [4, 8, 16, 32]})
    guidance_types: tuple[str, ...] = ("depth", "normal", "semantic_map", "dwpose")
    image_encoder: dict = field(default_factory=lambda: {
        "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4,
        "image_size": 32, "patch_size": 8, "projection_dim": 32})
    scheduler: dict = field(default_factory=lambda: {
        "num_train_timesteps": 1000, "beta_start": 0.00085, "beta_end": 0.012, "beta_schedule": "linear",
        "clip_sample": False, "steps_offset": 1, "prediction_type": "v_prediction",
        "rescale_betas_zero_snr": True, "timestep_spacing": "trailing", "set_alpha_to_one": False})


def tiny_config() -> TinyConfig:
    """The tiny configuration :func:`build_tiny_pipeline` writes."""
    return TinyConfig()


def build_tiny_pipeline(out_dir: str | Path, *, seed: int = 0, image_encoder: bool = False,
                        config: TinyConfig | None = None, overwrite: bool = False) -> Path:
    """Write a complete weights folder of tiny random weights to ``out_dir`` (atomically) and return it.

    Deterministic for a seed. The guidance encoders get He-initialised convs with zero biases, their last
    conv included (Champ zeros it for training), so an untrained model's output depends on what the maps
    show, not only on their presence. ``image_encoder``
    adds a tiny CLIP vision encoder (needs ``transformers``).
    """
    import torch
    from diffusers import AutoencoderKL, DDIMScheduler, MotionAdapter, UNet2DConditionModel

    from .guidance_encoder import GUIDANCE_CHANNELS, GuidanceEncoder

    cfg = config or tiny_config()
    with atomic_folder(out_dir, overwrite=overwrite) as tmp:
        gen_state = torch.random.get_rng_state()
        try:
            torch.manual_seed(seed)
            AutoencoderKL(**cfg.vae).save_pretrained(tmp / "vae")
            UNet2DConditionModel(**cfg.unet).save_pretrained(tmp / "reference_unet")
            UNet2DConditionModel(**cfg.unet).save_pretrained(tmp / "denoising_unet")
            MotionAdapter(**cfg.motion).save_pretrained(tmp / "motion_module")
            for kind in cfg.guidance_types:
                enc = GuidanceEncoder(guidance_input_channels=GUIDANCE_CHANNELS[kind], **cfg.guidance)
                with torch.no_grad():   # variance-preserving, zero bias: the maps' content, not biases, comes out
                    for conv in (enc.conv_in, *enc.blocks, enc.conv_out):
                        torch.nn.init.kaiming_normal_(conv.weight, nonlinearity="relu")
                        conv.bias.zero_()
                enc.save_pretrained(tmp / f"{GUIDANCE_PREFIX}{kind}")
            if image_encoder:
                from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection

                CLIPVisionModelWithProjection(CLIPVisionConfig(**cfg.image_encoder)).save_pretrained(
                    tmp / IMAGE_ENCODER)
            DDIMScheduler(**cfg.scheduler).save_pretrained(tmp / "scheduler")
        finally:
            torch.random.set_rng_state(gen_state)
        atomic_write_json(tmp / PIPELINE_FILE, {"guidance_types": list(cfg.guidance_types)})
    return Path(out_dir)
