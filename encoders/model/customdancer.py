"""The full CustomDancer model (paper section 4) and its configuration.

score(text, dance) = cos(E_text(text), E_dance(music, motion)), with
E_dance = L2norm(head(pool(blend(E_motion(motion), E_music(music))))).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any, Sequence

import torch
from torch import nn

from ..errors import DanceSearchError
from .blender import FUSIONS, MusicMotionBlender
from .features import MOTION_FEATURE_DIM, MOTION_INPUTS, MUSIC_DIM, MUSIC_POOLS, collate_dances
from .loss import TextToDanceInfoNCE
from .temporal import TEMPORAL_KINDS, TemporalEncoder
from .text import TEXT_BACKBONES, TextEncoder, build_backbone


LEGACY_DEFAULTS: dict[str, Any] = {"music_pool": "subsample", "motion_input": "source", "input_smoothing": 0.0}
"""Values that config files written before a field existed imply (the dataclass default may differ)."""


@dataclass
class ModelConfig:
    """Architecture of one CustomDancer model; saved as ``config.json["model"]`` in the run directory.

    Defaults are sized for 2 shared CPU cores (d_model 64, 2 layers, 90 input frames at 7.5 fps = 12 s;
    measured: d_model 128 at 180 frames costs ~4x more per step) — the paper's scale would not train
    in minutes; every size is a field so a GPU run can grow it.
    """

    backbone: str = "minilm"            # minilm | clip | bow
    clip_model: str = "ViT-B-32"
    clip_weights: str | None = None     # path or open_clip tag (clip backbone only)
    freeze_backbone: bool = True
    bow_dim: int = 128
    text_hidden: int = 512
    adapter_dropout: float = 0.1
    temporal: str = "transformer"       # transformer | lstm | rnn
    fusion: str = "blend"               # blend | add | mul | motion | music
    d_model: int = 64
    layers: int = 2
    heads: int = 4
    ff_mult: int = 2
    dropout: float = 0.1
    embed_dim: int = 256
    seq_len: int = 90                   # model frames per clip (after frame_stride)
    frame_stride: int = 4               # 30 fps -> 7.5 fps
    # how the 30-fps music reaches the 7.5-fps model frames (features.pool_music): "window" keeps every
    # onset and beat; "subsample" drops most of them. A config without this key predates it: "subsample".
    music_pool: str = "subsample"
    # "canonical": every clip is retargeted onto one canonical body and featurised from joint positions
    # only (features.MOTION_INPUTS), so real mocap on any rig embeds like the training corpus; a config
    # without this key predates it: "source" (the source's own joints and SMPL-X rotations)
    motion_input: str = "canonical"
    # Gaussian low-pass of the joint positions before featurising (sigma in 30-fps frames): motion-capture
    # marker noise, differentiated into velocities, would otherwise dominate slow dances; 0 = none
    input_smoothing: float = 1.0
    init_temperature: float = 0.1

    def validate(self) -> "ModelConfig":
        problems = []
        if self.backbone not in TEXT_BACKBONES:
            problems.append(f"backbone must be one of {TEXT_BACKBONES}, got {self.backbone!r}")
        if self.backbone == "bow" and self.freeze_backbone:
            problems.append("the bow backbone has no pretrained weights: set freeze_backbone to false")
        if self.temporal not in TEMPORAL_KINDS:
            problems.append(f"temporal must be one of {TEMPORAL_KINDS}, got {self.temporal!r}")
        if self.fusion not in FUSIONS:
            problems.append(f"fusion must be one of {FUSIONS}, got {self.fusion!r}")
        if self.motion_input not in MOTION_INPUTS:
            problems.append(f"motion_input must be one of {MOTION_INPUTS}, got {self.motion_input!r}")
        if not 0.0 <= self.input_smoothing <= 10.0:
            problems.append(f"input_smoothing must be in [0, 10] frames, got {self.input_smoothing}")
        if self.music_pool not in MUSIC_POOLS:
            problems.append(f"music_pool must be one of {MUSIC_POOLS}, got {self.music_pool!r}")
        if self.temporal == "transformer" and self.d_model % self.heads:
            problems.append(f"d_model {self.d_model} is not divisible by heads {self.heads}")
        for name in ("d_model", "layers", "embed_dim", "seq_len", "frame_stride", "text_hidden"):
            if getattr(self, name) < 1:
                problems.append(f"{name} must be >= 1")
        if problems:
            raise DanceSearchError("invalid model config: " + "; ".join(problems))
        return self

    @classmethod
    def from_dict(cls, data: dict[str, Any], saved: bool = True) -> "ModelConfig":
        """``saved``: ``data`` describes a trained run (its config.json), so a key added after that run was
        written takes the value it was trained with (:data:`LEGACY_DEFAULTS`); a new config a user writes
        (``saved=False``) takes today's defaults for the keys it leaves out."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise DanceSearchError(f"unknown model config keys {unknown}; known: {sorted(known)}")
        return cls(**({**LEGACY_DEFAULTS, **data} if saved else data)).validate()

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def uses_music(self) -> bool:
        return self.fusion != "motion"

    @property
    def uses_motion(self) -> bool:
        return self.fusion != "music"


class CustomDancer(nn.Module):
    """Text tower, motion and music towers, blender, dance head and the InfoNCE temperature."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config.validate()
        c = config
        backbone = build_backbone(c.backbone, c.clip_model, c.clip_weights, c.bow_dim)
        self.backbone_identity: str = getattr(backbone, "identity", c.backbone)
        self.text = TextEncoder(backbone, c.embed_dim, c.text_hidden, c.adapter_dropout, c.freeze_backbone)

        def tower(in_dim: int) -> TemporalEncoder:
            return TemporalEncoder(in_dim, c.d_model, c.seq_len, c.layers, c.temporal, c.heads, c.ff_mult, c.dropout)

        self.motion = tower(MOTION_FEATURE_DIM) if c.uses_motion else None
        self.music = tower(MUSIC_DIM) if c.uses_music else None
        self.blender = MusicMotionBlender(c.d_model, c.fusion)
        self.head = nn.Linear(c.d_model, c.embed_dim)
        self.loss = TextToDanceInfoNCE(c.init_temperature)

    # --- text -------------------------------------------------------------------------------------
    def encode_text(self, texts: Sequence[str]) -> torch.Tensor:
        return nn.functional.normalize(self.text(texts), dim=-1)

    def project_text_features(self, features: torch.Tensor) -> torch.Tensor:
        """Adapter + normalisation on precomputed (frozen) backbone features."""
        return nn.functional.normalize(self.text.adapter(features), dim=-1)

    # --- dance ------------------------------------------------------------------------------------
    def collate(self, items: Sequence[tuple], starts: list[int | None] | None = None) -> dict[str, torch.Tensor]:
        """Batch prepared dances the way this model's config reads them (window length, frame stride,
        music pooling): the one place the trainer, validation and the embedder build model inputs."""
        c = self.config
        return collate_dances(list(items), c.seq_len, c.frame_stride, starts, c.music_pool)

    def encode_dance(self, motion: torch.Tensor, music: torch.Tensor, mask: torch.Tensor,
                     music_present: torch.Tensor) -> torch.Tensor:
        """(B, T, F) normalised motion features, (B, T, 35) music, (B, T) bool mask, (B,) music flag -> (B, D)."""
        return self.embed_tokens(*self.dance_tokens(motion, music, mask, music_present))

    def dance_tokens(self, motion: torch.Tensor, music: torch.Tensor, mask: torch.Tensor,
                     music_present: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Temporal tokens of both towers and their mask: (B, N, d), (B, N, d), (B, N).

        A modality the variant does not use, and the music of a clip without music, are zeros, which the
        blender's additive path passes through unchanged.
        """
        mask = mask.bool()
        motion_tokens = music_tokens = None
        token_mask = None
        if self.motion is not None:
            motion_tokens, token_mask = self.motion(motion, mask)
        if self.music is not None:
            music_tokens, token_mask = self.music(music, mask)
            music_tokens = music_tokens * music_present.to(music_tokens.dtype).view(-1, 1, 1)
        if motion_tokens is None:
            motion_tokens = torch.zeros_like(music_tokens)
        if music_tokens is None:
            music_tokens = torch.zeros_like(motion_tokens)
        return motion_tokens, music_tokens, token_mask

    def embed_tokens(self, motion_tokens: torch.Tensor, music_tokens: torch.Tensor,
                     token_mask: torch.Tensor) -> torch.Tensor:
        """Blend, pool, project and normalise tower tokens into the shared space (B, D)."""
        pooled = self.blender(motion_tokens, music_tokens, token_mask)
        return nn.functional.normalize(self.head(pooled), dim=-1)

    @property
    def has_unimodal_paths(self) -> bool:
        """True when zeroing one modality leaves a working single-modality path (blend, add).

        For ``blend`` and ``add`` a zero music input reduces the blender to the motion tokens alone
        (and vice versa), through the same projection and head; ``mul`` has no such path and the
        single-modality variants are that path already.
        """
        return self.config.fusion in ("blend", "add")

    def unimodal_embeddings(self, motion_tokens: torch.Tensor, music_tokens: torch.Tensor,
                            token_mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The dance embedding from the motion tokens alone and from the music tokens alone (B, D) each.

        Used by the auxiliary unimodal losses (trainer.py): they make each tower align with text on its
        own, so the fused embedding cannot lean on the stronger motion tower and leave the music tower
        under-trained (the "greedy" learning of multi-modal networks described by Wu et al., ICML 2022,
        "Characterizing and overcoming the greedy nature of learning in multi-modal deep neural networks").
        """
        zeros = torch.zeros_like(motion_tokens)
        return (self.embed_tokens(motion_tokens, zeros, token_mask),
                self.embed_tokens(zeros, music_tokens, token_mask))

    def trainable_state_dict(self) -> dict[str, torch.Tensor]:
        """State dict without a frozen backbone (it is rebuilt from its package, never copied)."""
        sd = self.state_dict()
        if self.config.freeze_backbone:
            sd = {k: v for k, v in sd.items() if not k.startswith("text.backbone.")}
        return sd

    def load_trainable_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        result = self.load_state_dict(state, strict=False)
        missing = [k for k in result.missing_keys
                   if not (self.config.freeze_backbone and k.startswith("text.backbone."))]
        if missing or result.unexpected_keys:
            raise DanceSearchError(f"checkpoint does not match the model config: missing {missing[:5]}, "
                                   f"unexpected {list(result.unexpected_keys)[:5]}")
