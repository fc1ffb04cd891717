"""The denoising network: a UNet with temporal attention, conditioned by the photo and the guidance features.

- Temporal attention: diffusers' :class:`UNetMotionModel`, built from a 2D :class:`UNet2DConditionModel` (the
  spatial weights, Champ's ``denoising_unet``) and a :class:`MotionAdapter` (the temporal layers, Champ's
  ``motion_module`` / AnimateDiff's). Kept as two folders on disk so either can be swapped alone (an
  AnimateDiff motion adapter in diffusers format drops in when its block widths match).
- Cross-attention context: the reference photo's CLIP image embedding (one token, ``image_embeds``) when the
  weights folder has an ``image_encoder``; without one, the context is a zero token, which is exactly the
  unconditional context Champ trains with, so such a model runs on its reference attention alone.
- Guidance: the summed guidance-encoder features are added to the output of the UNet's ``conv_in`` (Champ's
  ``sample = conv_in(sample) + guidance_fea``), through a forward hook, so the UNet stays a stock model.
"""
from __future__ import annotations

import logging
from contextlib import contextmanager
from typing import Iterator

import torch
import torch.nn.functional as F
from diffusers import MotionAdapter, UNet2DConditionModel, UNetMotionModel
from torch import nn

#: CLIP's pixel normalisation (the values in every CLIPImageProcessor config of OpenAI's CLIP).
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


def build_denoising_unet(unet: UNet2DConditionModel, motion_adapter: MotionAdapter) -> UNetMotionModel:
    """Spatial UNet + motion adapter -> a UNet with temporal attention (weights copied from both).

    diffusers' ``from_unet2d`` ends with a dtype cast that logs a warning about fp32-pinned modules (there
    are none here); it is silenced for that call only.
    """
    log = logging.getLogger("diffusers.models.modeling_utils")
    level = log.level
    log.setLevel(logging.ERROR)
    try:
        return UNetMotionModel.from_unet2d(unet, motion_adapter)
    finally:
        log.setLevel(level)


class GuidedDenoiser(nn.Module):
    """The motion UNet with a slot for guidance features added after its ``conv_in``.

    ``forward(latents (B, C, F, h, w), t, context (B, S, D), guidance_features (B*F, E, h, w) or None)``
    -> predicted noise (or v) of the latents' shape. Frames are ordered batch-major, as the UNet flattens them.
    """

    def __init__(self, unet: UNetMotionModel) -> None:
        super().__init__()
        self.unet = unet
        self._features: torch.Tensor | None = None
        unet.conv_in.register_forward_hook(self._add_guidance)

    def _add_guidance(self, module: nn.Module, inputs: tuple, output: torch.Tensor) -> torch.Tensor:
        feats = self._features
        if feats is None:
            return output
        if feats.shape != output.shape:
            raise ValueError(f"guidance features {tuple(feats.shape)} do not match the conv_in output "
                             f"{tuple(output.shape)}")
        return output + feats.to(output.dtype)

    @contextmanager
    def _guided(self, features: torch.Tensor | None) -> Iterator[None]:
        self._features = features
        try:
            yield
        finally:
            self._features = None

    def forward(self, latents: torch.Tensor, t: torch.Tensor | int, context: torch.Tensor,
                guidance_features: torch.Tensor | None = None) -> torch.Tensor:
        frames = latents.shape[2]
        ctx = context.repeat_interleave(frames, dim=0)     # one context per frame, (b f) order
        with self._guided(guidance_features):
            return self.unet(latents, t, encoder_hidden_states=ctx, return_dict=False)[0]


class ImageContext(nn.Module):
    """Reference image (B, 3, H, W) in [0, 1] -> cross-attention context (B, 1, D).

    With a CLIP vision encoder (``transformers.CLIPVisionModelWithProjection``): its projected image embedding,
    after CLIP's own preprocessing (shortest side to the encoder's size, centre crop, CLIP normalisation).
    Without one: zeros, Champ's unconditional context.
    """

    def __init__(self, cross_attention_dim: int, image_encoder: nn.Module | None = None) -> None:
        super().__init__()
        self.dim = int(cross_attention_dim)
        self.image_encoder = image_encoder

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        enc = self.image_encoder
        if enc is None:
            return image.new_zeros(image.shape[0], 1, self.dim)
        size = int(enc.config.image_size)
        h, w = image.shape[-2:]
        s = size / min(h, w)
        x = F.interpolate(image, size=(max(size, round(h * s)), max(size, round(w * s))), mode="bicubic",
                          align_corners=False, antialias=True)
        top, left = (x.shape[-2] - size) // 2, (x.shape[-1] - size) // 2
        x = x[..., top:top + size, left:left + size].clamp(0, 1)
        mean = x.new_tensor(CLIP_MEAN).view(1, 3, 1, 1)
        std = x.new_tensor(CLIP_STD).view(1, 3, 1, 1)
        p = next(enc.parameters())
        embeds = enc(pixel_values=((x - mean) / std).to(p.dtype)).image_embeds
        return embeds.unsqueeze(1)

    def uncond(self, like: torch.Tensor) -> torch.Tensor:
        """The unconditional context: zeros of ``like``'s shape."""
        return torch.zeros_like(like)
