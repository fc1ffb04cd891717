"""Champ's guidance encoder: one small conv net per guidance type, summed into the UNet's first features.

Why one encoder per type (and not one encoder over stacked channels): that is how Champ trains them, so each
type can be dropped, re-weighted or added without retraining the others, and Champ's per-type checkpoints map
one to one. Each encoder halves the resolution three times (image -> latent resolution, /8) and ends in a
zero-initialised conv, so a fresh encoder adds nothing to the UNet until it is trained.

The layer names (``conv_in``, ``blocks.{i}``, ``conv_out``) are those of Champ's ``GuidanceEncoder`` convs;
Champ's released encoders also carry one spatial self-attention block (``attentions.*``) that this module does
not have, so their checkpoints are not loadable here as they are (see the package docstring).
"""
from __future__ import annotations

from typing import Mapping

import torch
import torch.nn.functional as F
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.modeling_utils import ModelMixin
from torch import nn

from encoders.errors import InputError

#: Guidance types the renderer produces (:meth:`generation.video.GuidanceFrames.as_tensors`) and their channels.
GUIDANCE_CHANNELS: dict[str, int] = {"depth": 1, "normal": 3, "semantic_map": 3, "dwpose": 3, "mask": 1}
#: The four types Champ conditions on (the mask only cleans its semantic map).
CHAMP_GUIDANCE_TYPES: tuple[str, ...] = ("depth", "normal", "semantic_map", "dwpose")


class GuidanceEncoder(ModelMixin, ConfigMixin):
    """Guidance image (N, C_in, H, W) in [0, 1] -> features (N, E, H/8, W/8) to add to the UNet's conv_in output.

    ``guidance_embedding_channels`` (E) must equal the denoising UNet's ``block_out_channels[0]``.
    ``guidance_input_channels`` is 3 for Champ's encoders (they read every map as RGB); a 1-channel map
    (depth, mask) given to a 3-channel encoder is repeated to grey RGB, as Champ's loader does.
    """

    @register_to_config
    def __init__(self, guidance_embedding_channels: int = 320, guidance_input_channels: int = 3,
                 block_out_channels: tuple[int, ...] = (16, 32, 96, 256)) -> None:
        super().__init__()
        if len(block_out_channels) != 4:
            raise ValueError("block_out_channels needs 4 entries: three stride-2 stages make the /8 of the VAE")
        self.conv_in = nn.Conv2d(guidance_input_channels, block_out_channels[0], kernel_size=3, padding=1)
        self.blocks = nn.ModuleList()
        for c_in, c_out in zip(block_out_channels[:-1], block_out_channels[1:]):
            self.blocks.append(nn.Conv2d(c_in, c_in, kernel_size=3, padding=1))
            self.blocks.append(nn.Conv2d(c_in, c_out, kernel_size=3, padding=1, stride=2))
        self.conv_out = nn.Conv2d(block_out_channels[-1], guidance_embedding_channels, kernel_size=3, padding=1)
        nn.init.zeros_(self.conv_out.weight)   # Champ's zero_module: untrained guidance is a no-op
        nn.init.zeros_(self.conv_out.bias)

    def forward(self, condition: torch.Tensor) -> torch.Tensor:
        want = self.config.guidance_input_channels
        if condition.shape[1] == 1 and want == 3:
            condition = condition.expand(-1, 3, -1, -1)
        x = F.silu(self.conv_in(condition.to(self.conv_in.weight.dtype)))
        for block in self.blocks:
            x = F.silu(block(x))
        return self.conv_out(x)


class GuidanceFusion(nn.Module):
    """The encoders of several guidance types; their features are summed, each times its weight (default 1).

    Weights are inference-time knobs (e.g. 0 drops a type), not learned parameters: Champ sums unweighted,
    and a learned weight would not load from its checkpoints.
    """

    def __init__(self, encoders: Mapping[str, GuidanceEncoder]) -> None:
        super().__init__()
        if not encoders:
            raise ValueError("at least one guidance encoder is needed")
        self.encoders = nn.ModuleDict(dict(encoders))

    @property
    def types(self) -> tuple[str, ...]:
        return tuple(self.encoders.keys())

    def input_channels(self, name: str) -> int:
        return int(self.encoders[name].config.guidance_input_channels)

    def forward(self, guidance: Mapping[str, torch.Tensor],
                weights: Mapping[str, float] | None = None) -> torch.Tensor:
        """``guidance[type]`` (N, C, H, W) for every type of this fusion -> summed features (N, E, H/8, W/8)."""
        missing = [t for t in self.types if t not in guidance]
        if missing:
            raise InputError(None, "guidance type missing", field="guidance", expected=", ".join(self.types),
                             got=", ".join(sorted(guidance)) or "none")
        total: torch.Tensor | None = None
        for name, enc in self.encoders.items():
            w = 1.0 if weights is None else float(weights.get(name, 1.0))
            if w == 0.0:
                continue
            feat = enc(guidance[name]) * w
            total = feat if total is None else total + feat
        if total is None:   # every weight 0: zero features of the right shape
            any_enc = next(iter(self.encoders.values()))
            total = any_enc(guidance[self.types[0]]) * 0.0
        return total
