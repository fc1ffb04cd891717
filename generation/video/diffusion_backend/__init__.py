"""The diffusion back-end: reference photo + pose guidance maps -> video, Champ / AnimateAnyone style, on diffusers.

For users with a GPU and weights; the CPU preview back-end is elsewhere. Parts, one job each:

- ``guidance_encoder``: :class:`GuidanceEncoder` (one conv net per guidance type, image -> latent-resolution
  features) and :class:`GuidanceFusion` (their weighted sum, added to the UNet's ``conv_in`` output);
- ``reference``: the reference UNet's bank and the reference-attention processors (:func:`install_reference_attention`);
- ``denoiser``: the UNet with temporal attention (diffusers' UNetMotionModel from a UNet2DConditionModel + a
  MotionAdapter), :class:`GuidedDenoiser` and :class:`ImageContext` (CLIP image embedding, or zeros);
- ``pipeline``: :class:`PoseGuidedVideoPipeline` (DDIM, overlapping windows blended linearly for long videos);
- ``weights``: the weights folder layout, :func:`check_weights_dir`, :func:`tiny_config`, :func:`build_tiny_pipeline`.

Weights come **only from a local folder** (``PoseGuidedVideoPipeline.from_pretrained(DIR)``); nothing is
downloaded. Champ's released ``.pth`` checkpoints are not loaded as they are: its UNets are its own diffusers-0.24
copies with other key names, and its guidance encoders carry an attention block this encoder lacks; a converter
would map them into this layout.

Importing this package is light: torch and diffusers are imported on first use of a name that needs them
(:class:`BackendUnavailable`, naming ``pip install -e ".[video]"``, when they are missing). ``weights``'s
check runs without them.
"""
from __future__ import annotations

import importlib
from typing import Any

from encoders.errors import DanceSearchError

from .weights import (GUIDANCE_TYPES, PIPELINE_FILE, REQUIRED_PARTS, TinyConfig, WeightsLayout, check_weights_dir,
                      tiny_config)


class BackendUnavailable(DanceSearchError):
    """The diffusion back-end cannot run here: torch or diffusers is missing."""


_LAZY = {
    "GuidanceEncoder": "guidance_encoder", "GuidanceFusion": "guidance_encoder",
    "GUIDANCE_CHANNELS": "guidance_encoder", "CHAMP_GUIDANCE_TYPES": "guidance_encoder",
    "ReferenceBank": "reference", "install_reference_attention": "reference", "write_reference_bank": "reference",
    "self_attention_layers": "reference",
    "GuidedDenoiser": "denoiser", "ImageContext": "denoiser", "build_denoising_unet": "denoiser",
    "PoseGuidedVideoPipeline": "pipeline", "context_windows": "pipeline", "window_weights": "pipeline",
    "default_device_dtype": "pipeline",
    "build_tiny_pipeline": "weights",
}


def backend_available() -> tuple[bool, str]:
    """(True, versions) when torch and diffusers import, else (False, what to install)."""
    try:
        import diffusers
        import torch
    except ImportError as exc:
        return False, f"{exc.name or exc} is not installed: pip install -e \".[video]\""
    return True, f"torch {torch.__version__}, diffusers {diffusers.__version__}"


def __getattr__(name: str) -> Any:
    mod = _LAZY.get(name)
    if mod is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    try:
        value = getattr(importlib.import_module(f"{__name__}.{mod}"), name)
    except ImportError as exc:
        if exc.name and exc.name.split(".")[0] in ("torch", "diffusers"):
            raise BackendUnavailable(f"the diffusion back-end needs {exc.name.split('.')[0]}: "
                                     "pip install -e \".[video]\"") from exc
        raise
    globals()[name] = value
    return value


__all__ = ["BackendUnavailable", "backend_available", "GUIDANCE_TYPES", "PIPELINE_FILE", "REQUIRED_PARTS",
           "TinyConfig", "WeightsLayout", "check_weights_dir", "tiny_config", *_LAZY]
