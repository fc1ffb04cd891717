"""The one embedding API the indexer, the search service and evaluation use.

>>> emb = DanceEmbedder.from_run("models/demo")
>>> q = emb.encode_text(["a fast salsa with quick turns"])      # (1, D) float32, L2-normalised
>>> q = emb.encode_query(["toprock and windmills"])             # search queries: jargon expanded first
>>> g = emb.encode_dances([DanceInput(record, music)])          # (N, D) float32, L2-normalised

Batched, deterministic (eval mode, no dropout, centred input windows), CPU or GPU. ``model_id``
is a stable hash of the checkpoint and its configuration: an index records it and refuses to be
queried with another model (``ModelMismatchError``).
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from .errors import DanceSearchError
from .model.customdancer import CustomDancer
from .model.fast_text import FastTextEncoder, load_fast_text
from .model.features import NormStats, prepare_dance
from .motion.record import MotionRecord
from .text_vocabulary import QueryExpansion, expand_query
from .training.run_dir import RunConfig, load_run, resolve_device

DEFAULT_RUN_DIR = Path(__file__).resolve().parents[1] / "models" / "demo"
"""The shipped demo model (``models/demo`` in the repository): the default ``--run`` everywhere."""


@dataclass
class DanceInput:
    """One candidate dance: its motion record and (T, 35) music features at 30 fps (None: no music)."""

    motion: MotionRecord
    music: np.ndarray | None = None


PreparedDance = tuple[np.ndarray, np.ndarray, bool]

TEXT_ENCODERS: tuple[str, ...] = ("full", "fast")
"""``full``: the trained text encoder; ``fast``: its distilled stand-in for CPU serving (``RUN/fast_text``)."""


class DanceEmbedder:
    """Text and dance embeddings of one trained CustomDancer model."""

    def __init__(self, model: CustomDancer, stats: NormStats, config: RunConfig, model_id: str,
                 batch_size: int = 64, fast_text: FastTextEncoder | None = None, query_expansion: bool = True) -> None:
        self.model = model.eval()
        self.query_expansion = bool(query_expansion)
        self.stats = stats
        self.config = config
        self.model_id = model_id
        self.batch_size = batch_size
        self.device = next(model.parameters()).device
        self.fast_text = fast_text.to(self.device).eval() if fast_text is not None else None

    @classmethod
    def from_run(cls, run_dir: str | Path | None = None, device: str | torch.device | None = None,
                 batch_size: int = 64, text_encoder: str = "full", query_expansion: bool = True) -> "DanceEmbedder":
        """The run's model; ``text_encoder="fast"`` answers queries with the run's distilled fast
        encoder (``RUN/fast_text``, see ``encoders.model.fast_text``) instead of the full one;
        ``query_expansion`` False makes :meth:`encode_query` encode texts exactly as typed."""
        if text_encoder not in TEXT_ENCODERS:
            raise DanceSearchError(f"unknown text encoder {text_encoder!r}; choose one of {', '.join(TEXT_ENCODERS)}")
        run_dir = run_dir or DEFAULT_RUN_DIR
        run = load_run(run_dir, resolve_device(device or "auto"))
        model_id = compute_model_id(run.checkpoint_sha256, run.config, run.model.backbone_identity)
        fast = load_fast_text(run_dir, model_id)[0] if text_encoder == "fast" else None
        return cls(run.model, run.stats, run.config, model_id, batch_size, fast, query_expansion)

    def limit_text_memo(self, entries: int) -> None:
        """Bound the frozen-backbone feature memo of the full text encoder (LRU, default 100k entries).

        Training and evaluation re-encode the same captions, so a large memo pays; a search server
        sees an endless stream of new queries and keeps its own cache of final query vectors
        (``TextEmbeddingCache``), so it sets this small: otherwise the memo grows with every distinct
        query (1.5 KB each) up to ~150 MB."""
        text = getattr(self.model, "text", None)
        if text is not None and hasattr(text, "cache_limit"):
            text.cache_limit = max(0, int(entries))

    @property
    def text_encoder(self) -> str:
        """``full`` or ``fast``: which encoder answers :meth:`encode_text`."""
        return "fast" if self.fast_text is not None else "full"

    @property
    def query_encoder_id(self) -> str:
        """Identity of the query vectors (a cache key): the two text encoders give different vectors
        for the same text, although both answer against the same index (``model_id``)."""
        key = self.model_id if self.fast_text is None else f"{self.model_id}:fast"
        return key + ":qx" if self.query_expansion else key

    @property
    def dim(self) -> int:
        return int(self.config.model.embed_dim)

    @torch.no_grad()
    def encode_text(self, texts: Sequence[str]) -> np.ndarray:
        """(N, D) float32 unit vectors from the selected text encoder (frozen full-backbone features
        are memoised in memory)."""
        texts = [str(t) for t in texts]
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        encode = self.fast_text if self.fast_text is not None else self.model.encode_text
        for i in range(0, len(texts), self.batch_size):
            out[i:i + self.batch_size] = encode(texts[i:i + self.batch_size]).float().cpu().numpy()
        return out

    @property
    def query_encoding(self) -> dict[str, object]:
        """How :meth:`encode_query` turns text into vectors beyond the model: recorded in an index's manifest
        (the score threshold and the query gate are fitted on such vectors) and checked when a server opens it."""
        if not self.query_expansion:
            return {"expansion": False, "vocabulary": None}
        return {"expansion": True, "vocabulary": _vocabulary_sha()}

    def expand_queries(self, texts: Sequence[str]) -> list[QueryExpansion]:
        """What :meth:`encode_query` encodes for each text: the text plus the catalog genre its dance
        jargon, step names, moods or typos point to (:mod:`encoders.text_vocabulary`), unchanged when
        expansion is off or nothing in it is recognised."""
        if not self.query_expansion:
            return [QueryExpansion(str(t), str(t), {}, [], ()) for t in texts]
        return [_expansion(str(t)) for t in texts]

    def encode_query(self, texts: Sequence[str], expand: bool | None = None) -> np.ndarray:
        """(N, D) unit vectors of search queries: :meth:`encode_text` of the expanded texts.

        Why: the model learned the catalog's words; people type "toprock and windmills" or "brakedance".
        ``expand`` None follows the embedder's ``query_expansion`` setting; False encodes the texts as typed.
        """
        if expand is None:
            expand = self.query_expansion
        if not expand:
            return self.encode_text(texts)
        return self.encode_text([_expansion(str(t)).text for t in texts])

    def prepare(self, dance: DanceInput) -> PreparedDance:
        """Normalised features of one dance (exposed so callers can cache them)."""
        mc = self.config.model
        return prepare_dance(dance.motion, dance.music, self.stats, mc.motion_input, mc.input_smoothing)

    def encode_dances(self, dances: Sequence[DanceInput]) -> np.ndarray:
        """(N, D) float32 unit vectors of the dances (centred window of ``seq_len`` model frames)."""
        out = np.zeros((len(dances), self.dim), dtype=np.float32)
        for i in range(0, len(dances), self.batch_size):
            chunk = [self.prepare(d) for d in dances[i:i + self.batch_size]]
            out[i:i + len(chunk)] = self.encode_prepared(chunk)
        return out

    @torch.no_grad()
    def encode_prepared(self, items: Sequence[PreparedDance]) -> np.ndarray:
        """Embeddings of already prepared (normalised) dances, batched."""
        out = np.zeros((len(items), self.dim), dtype=np.float32)
        for i in range(0, len(items), self.batch_size):
            batch = self.model.collate(items[i:i + self.batch_size])
            batch = {k: v.to(self.device) for k, v in batch.items()}
            emb = self.model.encode_dance(batch["motion"], batch["music"], batch["mask"], batch["music_present"])
            out[i:i + len(emb)] = emb.float().cpu().numpy()
        return out


@lru_cache(maxsize=1)
def _vocabulary_sha() -> str:
    from importlib import resources

    return hashlib.sha256(resources.files("encoders").joinpath("assets", "genre_vocabulary.json").read_bytes()).hexdigest()[:12]


@lru_cache(maxsize=4096)
def _expansion(text: str) -> QueryExpansion:
    """:func:`expand_query` memoised: a search computes a query's expansion for the vector and again for the
    response's ``expanded_query``, and popular queries repeat (a long text costs ~10 ms of fuzzy matching)."""
    return expand_query(text)


def compute_model_id(checkpoint_sha256: str, config: RunConfig, backbone_identity: str = "") -> str:
    """``cd-`` + 16 hex of sha256(checkpoint, canonical config JSON, frozen backbone identity): same files, same id.

    The config enters as ``RunConfig.identity_dict`` so options added in later releases leave old ids alone.
    """
    blob = checkpoint_sha256 + json.dumps(config.identity_dict(), sort_keys=True) + backbone_identity
    return "cd-" + hashlib.sha256(blob.encode()).hexdigest()[:16]
