"""The reference network and reference attention (AnimateAnyone / Champ): how the photo's appearance gets in.

A second UNet (the *reference UNet*, same architecture as the denoising UNet's spatial part) runs once over the
reference image's VAE latent at timestep 0. Every spatial self-attention layer of it *writes* its input tokens
to a bank; the same-named self-attention layer of the denoising UNet *reads* the bank: its queries are the
frame's own tokens, its keys and values the frame's tokens concatenated with the reference tokens
(``attn1(x, encoder_hidden_states=cat([x, ref], dim=1))``, as in Moore-AnimateAnyone's and Champ's
``ReferenceAttentionControl``). Layers pair by module name, which for two UNets of one architecture is the
pairing Champ's sort-by-width gives.

Why attention processors (not monkey-patched transformer blocks, as Champ does): processors are diffusers'
public extension point, so the UNets stay stock diffusers models and load and save as such.

Classifier-free guidance: the unconditional half of the batch does plain self-attention (no reference), as
the AnimateAnyone/Champ reader does with its ``uc_mask``; the bank is therefore written for the conditional
branch only (batch 1 per reference image).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch
from diffusers.models.attention_processor import Attention, AttnProcessor2_0
from torch import nn


@dataclass
class ReferenceBank:
    """Reference tokens per self-attention layer name, and how the denoising UNet should read them.

    ``mode``: "write" (the reference UNet stores), "read" (the denoising UNet uses), "off" (plain attention).
    ``uncond``: how many leading batch items of the denoising UNet's (batch x frames) batch are the
    unconditional branch (they ignore the bank).
    """

    tokens: dict[str, torch.Tensor] = field(default_factory=dict)
    mode: str = "off"
    uncond: int = 0

    def clear(self) -> None:
        self.tokens.clear()
        self.mode, self.uncond = "off", 0


class _BankProcessor(AttnProcessor2_0):
    """Self-attention that writes to or reads from a :class:`ReferenceBank` under one layer name."""

    def __init__(self, bank: ReferenceBank, name: str, role: str) -> None:
        super().__init__()
        self.bank, self.name, self.role = bank, name, role

    def __call__(self, attn: Attention, hidden_states: torch.Tensor, encoder_hidden_states: torch.Tensor | None = None,
                 attention_mask: torch.Tensor | None = None, temb: torch.Tensor | None = None, *args, **kwargs):
        bank = self.bank
        if self.role == "writer" and bank.mode == "write":
            bank.tokens[self.name] = hidden_states.detach()
        ref = bank.tokens.get(self.name) if (self.role == "reader" and bank.mode == "read") else None
        if ref is None or encoder_hidden_states is not None:
            return super().__call__(attn, hidden_states, encoder_hidden_states, attention_mask, temb)
        u = bank.uncond
        cond = hidden_states[u:]
        if cond.shape[0] % ref.shape[0]:
            raise RuntimeError(f"reference bank batch {ref.shape[0]} does not divide the frame batch {cond.shape[0]}")
        ref = ref.to(cond.dtype).repeat_interleave(cond.shape[0] // ref.shape[0], dim=0)  # (b f) order
        out_c = super().__call__(attn, cond, torch.cat([cond, ref], dim=1), attention_mask, temb)
        if u == 0:
            return out_c
        out_u = super().__call__(attn, hidden_states[:u], None, attention_mask, temb)
        return torch.cat([out_u, out_c], dim=0)


def self_attention_layers(unet: nn.Module) -> dict[str, Attention]:
    """The spatial self-attention layers (``...transformer_blocks.N.attn1``) of a UNet, temporal ones excluded."""
    return {name: mod for name, mod in unet.named_modules()
            if isinstance(mod, Attention) and name.endswith(".attn1") and "motion_modules" not in name}


def install_reference_attention(reference_unet: nn.Module, denoising_unet: nn.Module) -> ReferenceBank:
    """Put writer processors on ``reference_unet``'s and reader processors on ``denoising_unet``'s self-attention.

    Raises ``ValueError`` when the two UNets' self-attention layers do not pair by name (different
    architectures), since reading a bank of the wrong width would fail mid-denoising.
    """
    writers, readers = self_attention_layers(reference_unet), self_attention_layers(denoising_unet)
    if set(writers) != set(readers) or not writers:
        raise ValueError(f"reference and denoising UNets do not match: {len(writers)} vs {len(readers)} "
                         f"self-attention layers, {len(set(writers) ^ set(readers))} unpaired")
    bank = ReferenceBank()
    for name, mod in writers.items():
        mod.set_processor(_BankProcessor(bank, name, "writer"))
    for name, mod in readers.items():
        if mod.to_k.in_features != writers[name].to_k.in_features:
            raise ValueError(f"self-attention {name}: widths differ")
        mod.set_processor(_BankProcessor(bank, name, "reader"))
    return bank


@torch.no_grad()
def write_reference_bank(reference_unet: nn.Module, bank: ReferenceBank, reference_latents: torch.Tensor,
                         encoder_hidden_states: torch.Tensor) -> None:
    """Run the reference UNet once at timestep 0 over ``reference_latents`` (B, C, h, w) and fill ``bank``.

    Champ does the same once per video (not per step): the reference does not change while denoising.
    """
    bank.tokens.clear()
    bank.mode = "write"
    try:
        t = torch.zeros(reference_latents.shape[0], dtype=torch.long, device=reference_latents.device)
        reference_unet(reference_latents, t, encoder_hidden_states=encoder_hidden_states, return_dict=False)
    finally:
        bank.mode = "off"
