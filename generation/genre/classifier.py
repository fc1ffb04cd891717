"""The text genre classifier (GCDance eq. 1: g_hat = sigma(MLP(E_text(prompt)))) and its run directory.

::

    RUN/config.json   {"format": 1, "kind": "genre-text", "genres": [...], "backbone_identity", "config", "data"}
    RUN/head.pt       state_dict of the head (the frozen backbone is rebuilt from its package)
    RUN/metrics.json  validation / test accuracy
    RUN/README.md     model card

Why sigmoid outputs (eq. 2's BCE) and not a softmax: a description can fit several genres (hip-hop and
urban share moves), and each output is then the model's belief that *this* genre fits; the confidence
reported is the top genre's sigmoid, and ``distribution`` the outputs normalised to sum to 1.
"""
from __future__ import annotations

import io
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from torch import nn

from encoders.atomic_io import atomic_write_bytes, atomic_write_json, atomic_write_text
from encoders.errors import DanceSearchError, InputError
from encoders.model.text import build_backbone
from encoders.versioned_json import read_versioned_json

RUN_FORMAT = 1
KIND = "genre-text"
DEFAULT_RUN_DIR = Path(__file__).resolve().parents[2] / "models" / "genre_text"


@dataclass
class GenreClassifierConfig:
    backbone: str = "minilm"
    hidden: int = 256
    dropout: float = 0.1
    epochs: int = 80
    lr: float = 2e-3
    weight_decay: float = 1e-2
    batch_size: int = 64
    seed: int = 0

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "GenreClassifierConfig":
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(data) - known)
        if unknown:
            raise DanceSearchError(f"unknown genre classifier config keys {unknown}; known: {sorted(known)}")
        return cls(**data)


@dataclass
class GenrePrediction:
    text: str
    genre: str
    confidence: float                              # the top genre's sigmoid output
    top: list[tuple[str, float]] = field(default_factory=list)   # best three, normalised outputs

    def as_dict(self) -> dict[str, Any]:
        return {"text": self.text, "genre": self.genre, "confidence": round(self.confidence, 4),
                "top": [{"genre": g, "p": round(p, 4)} for g, p in self.top]}


class GenreHead(nn.Module):
    """Backbone features -> Linear -> GELU -> Dropout -> Linear -> one logit per genre."""

    def __init__(self, in_dim: int, num_genres: int, hidden: int, dropout: float) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(in_dim, hidden), nn.GELU(), nn.Dropout(dropout), nn.Linear(hidden, num_genres))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.net(features)


class GenreClassifier:
    """A frozen text backbone + :class:`GenreHead`; ``predict(texts)`` gives a genre and a confidence each."""

    def __init__(self, genres: Sequence[str], config: GenreClassifierConfig, backbone: nn.Module | None = None,
                 head: GenreHead | None = None) -> None:
        if len(genres) < 2:
            raise DanceSearchError(f"a genre classifier needs at least two genres, got {list(genres)}")
        self.genres = list(genres)
        self.config = config
        self.backbone = backbone if backbone is not None else build_backbone(config.backbone)
        self.backbone.eval()
        for p in self.backbone.parameters():
            p.requires_grad_(False)
        dim = int(getattr(self.backbone, "dim", 384))
        self.head = head if head is not None else GenreHead(dim, len(self.genres), config.hidden, config.dropout)
        self.backbone_identity = str(getattr(self.backbone, "identity", config.backbone))

    @torch.no_grad()
    def features(self, texts: Sequence[str], batch_size: int = 128) -> torch.Tensor:
        """(N, D) frozen backbone features (the expensive part; the trainer computes them once)."""
        out = [self.backbone(list(texts[i:i + batch_size])) for i in range(0, len(texts), batch_size)]
        return torch.cat(out) if out else torch.zeros(0, int(getattr(self.backbone, "dim", 384)))

    @torch.no_grad()
    def probabilities(self, texts: Sequence[str]) -> np.ndarray:
        """(N, G) sigmoid outputs."""
        self.head.eval()
        return torch.sigmoid(self.head(self.features(texts))).numpy()

    def predict_query(self, texts: Sequence[str]) -> list[GenrePrediction]:
        """:meth:`predict` of what a user typed: dance jargon, step names and typos are expanded first
        (``encoders.text_vocabulary.expand_query``, as search does), so "toprock and windmills" reads as
        breaking although the captions the head was trained on never say "toprock"."""
        from encoders.text_vocabulary import expand_query

        preds = self.predict([expand_query(str(t)).text for t in texts])
        return [GenrePrediction(str(t), p.genre, p.confidence, p.top) for t, p in zip(texts, preds)]

    def predict(self, texts: Sequence[str]) -> list[GenrePrediction]:
        texts = [str(t) for t in texts]
        empty = [i for i, t in enumerate(texts) if not t.strip()]
        if empty:
            raise InputError(None, "empty text cannot be classified", field="text", expected="a description",
                             got=f"empty text at position {empty[0]}")
        probs = self.probabilities(texts)
        out = []
        for text, p in zip(texts, probs):
            order = np.argsort(-p)
            norm = p / max(float(p.sum()), 1e-12)
            out.append(GenrePrediction(text, self.genres[order[0]], float(p[order[0]]),
                                       [(self.genres[j], float(norm[j])) for j in order[:3]]))
        return out

    # --- run directory ------------------------------------------------------------------------------
    def save(self, run_dir: str | Path, metrics: dict[str, Any], data_info: dict[str, Any]) -> Path:
        run_dir = Path(run_dir)
        run_dir.mkdir(parents=True, exist_ok=True)
        buf = io.BytesIO()
        torch.save({k: v.detach().cpu() for k, v in self.head.state_dict().items()}, buf)
        atomic_write_bytes(run_dir / "head.pt", buf.getvalue())
        atomic_write_json(run_dir / "metrics.json", metrics)
        atomic_write_text(run_dir / "README.md", _model_card(self, metrics, data_info))
        atomic_write_json(run_dir / "config.json", {"format": RUN_FORMAT, "kind": KIND, "genres": self.genres,
                                                    "backbone_identity": self.backbone_identity,
                                                    "config": asdict(self.config), "data": data_info})
        return run_dir

    @classmethod
    def from_pretrained(cls, run_dir: str | Path | None = None) -> "GenreClassifier":
        """Load a run directory (default: the shipped ``models/genre_text``); the backbone comes from its package."""
        run_dir = Path(run_dir) if run_dir is not None else DEFAULT_RUN_DIR
        if not (run_dir / "config.json").is_file() or not (run_dir / "head.pt").is_file():
            raise DanceSearchError(f"{run_dir} is not a genre classifier run (needs config.json and head.pt); "
                                   f"train one with `dancesearch genre train --out DIR`")
        raw = read_versioned_json(run_dir / "config.json", RUN_FORMAT, "genre classifier config", "genre classifier")
        if raw.get("kind") != KIND:
            raise InputError(run_dir / "config.json", "not a genre classifier run", field="kind", expected=KIND,
                             got=str(raw.get("kind")))
        model = cls(raw["genres"], GenreClassifierConfig.from_dict(raw["config"]))
        if model.backbone_identity != raw["backbone_identity"]:
            raise InputError(run_dir / "config.json", "trained with another text backbone",
                             field="backbone_identity", expected=raw["backbone_identity"], got=model.backbone_identity)
        try:
            state = torch.load(run_dir / "head.pt", map_location="cpu", weights_only=True)
            model.head.load_state_dict(state)
        except Exception as exc:  # torch raises many types for a corrupt or mismatched file
            raise InputError(run_dir / "head.pt", f"cannot read the classifier head: {exc}") from exc
        model.head.eval()
        return model


def _model_card(model: GenreClassifier, metrics: dict[str, Any], data_info: dict[str, Any]) -> str:
    def acc(split: str) -> str:
        m = metrics.get(split) or {}
        return (f"top-1 {100 * m['top1']:.1f}%, top-3 {100 * m['top3']:.1f}% on {m['n']} texts"
                if m else "not measured")

    return "\n".join([
        "# Text genre classifier", "",
        "GCDance eq. 1-2: a frozen sentence backbone and a two-layer head trained with BCE on one-hot genres.", "",
        f"- backbone: `{model.backbone_identity}` (frozen, not stored here)",
        f"- genres ({len(model.genres)}): {', '.join(model.genres)}",
        f"- training data: {data_info.get('description', '')}",
        f"- validation: {acc('val')}", f"- test: {acc('test')}",
        f"- best epoch: {metrics.get('best_epoch')} of {model.config.epochs}", "",
        "Load with `generation.genre.GenreClassifier.from_pretrained(PATH)`; "
        "`dancesearch genre classify \"TEXT\" --run PATH`.", ""]) + "\n"


def accuracy(model: GenreClassifier, texts: Sequence[str], genres: Sequence[str]) -> dict[str, Any]:
    """Top-1 / top-3 accuracy of ``model`` on labelled texts."""
    if not texts:
        return {"n": 0, "top1": None, "top3": None}
    probs = model.probabilities(texts)
    index = {g: i for i, g in enumerate(model.genres)}
    target = np.array([index[g] for g in genres])
    order = np.argsort(-probs, axis=1)
    return {"n": len(texts), "top1": float(np.mean(order[:, 0] == target)),
            "top3": float(np.mean((order[:, :3] == target[:, None]).any(axis=1)))}


def labelled_json(path: str | Path) -> list[dict[str, str]]:
    """A JSON Lines file of {"text": ..., "genre": ...} (a query set), with errors naming the line."""
    path = Path(path)
    rows = []
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise InputError(path, f"cannot read query set: {exc}") from exc
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except ValueError as exc:
            raise InputError(f"{path}:{n}", f"not JSON: {exc}") from exc
        if not isinstance(row, dict) or not isinstance(row.get("text"), str) or not isinstance(row.get("genre"), str):
            raise InputError(f"{path}:{n}", "each line needs string fields", field="text/genre",
                             expected='{"text": "...", "genre": "..."}', got=line[:80])
        rows.append(row)
    return rows
