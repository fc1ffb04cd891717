"""Candidate 4-s segments for GCRM: diffusion samples (one per seed) and catalog windows (retrieval).

Both sources give (W, 319) windows in their own canonical frame, so GCRM treats them alike and each
keeps where it came from (``Candidate.source`` and ``info``):

- ``DiffusionCandidates``: the generator's independent windows for every segment's music and seed, all
  sampled in one batch (the noise of seed s is ``DancePipeline.sample_windows``'s); ``info = {"seed": s}``.
- ``CatalogCandidates``: windows of one catalog split (``train`` by default, so a test piece never gets its
  own dance back) ranked for each segment by the query text and the music:
  ``z(text . clip vector) + z(F_m(segment mel) . F_d(window))`` with z-scores over the split's windows. The
  text side is the retrieval index (the clip vectors of ``HOME/indexes/<name>`` and the model's text
  encoder); the music side is the GS network's music and dance encoders. At most one window per clip per
  segment; ``info = {"clip_id", "clip_key", "window_start_s", "split"}``.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from ..representation.codec import decode
from ..representation.layout import FPS


@dataclass
class Candidate:
    features: np.ndarray                     # (W, 319) canonical frame
    source: str                              # "diffusion" | "catalog"
    info: dict = field(default_factory=dict)
    embedding: np.ndarray | None = None      # GS dance embedding when already known (catalog windows: cached)
    _positions: np.ndarray | None = None

    @property
    def positions(self) -> np.ndarray:
        """(W, 52, 3) joint positions of the canonical window (forward kinematics, computed once)."""
        if self._positions is None:
            self._positions = decode(self.features).positions
        return self._positions


class DiffusionCandidates:
    """All segments x seeds in ONE batched DDIM run (one model call per step for every candidate).

    Candidate (segment t, seed s) starts from the same noise as ``pipe.sample_windows(music_segments,
    seed=s)[t]`` (one generator seeded with s draws the (N, W, 319) noise of all segments) and DDIM is
    deterministic after that, so ``info["seed"]`` reproduces it (to float rounding of the larger batch),
    while the whole set costs one sampling loop instead of one per seed."""

    def __init__(self, pipe, steps: int = 20, guidance: float = 2.0) -> None:
        self.pipe = pipe
        self.steps = steps
        self.guidance = guidance

    def generate(self, music_segments: np.ndarray, genre: str, seeds: Sequence[int],
                 step: Callable[[int, int], None] | None = None) -> list[list[Candidate]]:
        """(N, W, 35) segment music -> per segment, one candidate per seed. ``step(i, steps)`` runs once DDIM step i
        has predicted the clean motion (progress and cancellation: it may raise)."""
        import torch

        from ..diffusion.sampling import ddim_sample
        from ..representation.layout import LAYOUT

        pipe = self.pipe
        n = len(music_segments)
        seeds = [int(s) for s in seeds]
        if not seeds:
            return [[] for _ in range(n)]
        music = torch.as_tensor(np.asarray(music_segments, dtype=np.float32))
        w = music.shape[1]
        x_T = torch.cat([torch.randn((n, w, LAYOUT.dim), generator=torch.Generator().manual_seed(s))
                         for s in seeds])                                       # (S * N, W, D), seed-major
        g = pipe.genre_embeddings[pipe.genre_index(genre)].expand(len(seeds) * n, -1)

        total = len(pipe.scheduler.set_timesteps(self.steps))

        def after_prediction(i: int, x0: torch.Tensor) -> torch.Tensor:
            if step is not None:
                step(i, total)
            return x0

        x = ddim_sample(pipe.model, pipe.scheduler, music.repeat(len(seeds), 1, 1), g, steps=self.steps,
                        guidance=self.guidance, on_x0=after_prediction, x_T=x_T)
        feats = pipe.normalizer.denormalise(x.numpy())
        out: list[list[Candidate]] = [[] for _ in range(n)]
        for k, s in enumerate(seeds):
            for t in range(n):
                out[t].append(Candidate(np.asarray(feats[k * n + t], dtype=np.float32), "diffusion", {"seed": s}))
        return out


class CatalogCandidates:
    """Retrieval over one split's 4-s windows (see module doc)."""

    def __init__(self, store, scorer, split: str = "train", text_vectors: dict | None = None,
                 text_encoder: Callable[[list[str]], np.ndarray] | None = None, cache_dir: Path | None = None,
                 progress: bool = False) -> None:
        self.store = store
        self.scorer = scorer
        self.split = split
        self.text_encoder = text_encoder
        n = store.num_windows(split)
        self._where = [store._split(split)["index"][i] for i in range(n)]
        clips = store.clips(split)
        self.window_clip = np.array([clips[ci]["id"] for ci, _ in self._where])
        self.window_start = np.array([s for _, s in self._where])
        self.window_genre = [clips[ci]["genre"] for ci, _ in self._where]
        self._keys = {c["id"]: c["key"] for c in clips}
        self.dance_emb = self._dance_embeddings(cache_dir, progress)
        self.text_matrix = None
        if text_vectors:
            dim = len(next(iter(text_vectors.values())))
            self.text_matrix = np.stack([np.asarray(text_vectors.get(c, np.zeros(dim)), dtype=np.float32)
                                         for c in self.window_clip])

    def _dance_embeddings(self, cache_dir: Path | None, progress: bool) -> np.ndarray:
        key = hashlib.sha256(f"{self.store.content_hash}|{self.split}|{self.store.config.window_frames}|"
                             f"{self.store.config.stride_frames}|{self.scorer.model_digest}".encode()).hexdigest()[:16]
        path = None if cache_dir is None else Path(cache_dir) / f"catalog-gs-{key}.npy"
        if path is not None and path.is_file():
            emb = np.load(path)
            if len(emb) == len(self._where):
                return emb
        from tqdm import tqdm

        pos = [decode(self.store.window(self.split, i).motion).positions
               for i in tqdm(range(len(self._where)), desc="catalog windows", unit="win", disable=not progress)]
        emb = self.scorer.model.dance_embeddings(pos)
        if path is not None:
            from encoders.atomic_io import atomic_save_npy

            path.parent.mkdir(parents=True, exist_ok=True)
            atomic_save_npy(path, emb.astype(np.float32))
        return emb

    @classmethod
    def from_workspace(cls, home: Path | str, scorer, split: str = "train", embedder_run: Path | str | None = None,
                       index_name: str | None = None, db_url: str | None = None, stride_seconds: float = 2.0,
                       progress: bool = False) -> "CatalogCandidates":
        """Windows of ``split`` from the workspace's window cache; text side from the index (when one exists)."""
        from indexer.workspace import Workspace

        from ..metrics.catalog_source import window_store

        ws = Workspace(Path(home), db_url)
        store = window_store(home, db_url, stride_seconds=stride_seconds, progress=progress)
        text_vectors, encoder = None, None
        try:
            from encoders.api import DanceEmbedder
            from indexer.index import DEFAULT_INDEX_NAME, load_index

            embedder = DanceEmbedder.from_run(embedder_run)
            loaded = load_index(ws.index_dir(index_name or DEFAULT_INDEX_NAME), embedder.model_id)
            ids = np.array(sorted({int(c["id"]) for c in store.clips(split)} & set(int(i) for i in loaded.index.ids())))
            if len(ids):
                vecs = loaded.index.vectors_for(ids)
                text_vectors = {int(i): v for i, v in zip(ids, vecs)}
                encoder = embedder.encode_query   # as search encodes it: dance jargon expanded
        except Exception as exc:  # no index or no model: music-only retrieval, said in the provenance
            if progress:
                print(f"catalog retrieval without text side: {exc}", flush=True)
        return cls(store, scorer, split, text_vectors, encoder, ws.cache_dir / "generation" / "stitching", progress)

    @staticmethod
    def _z(x: np.ndarray) -> np.ndarray:
        sd = float(x.std())
        return (x - float(x.mean())) / sd if sd > 1e-9 else np.zeros_like(x)

    def retrieve(self, mel_segments: np.ndarray, text: str | None, k: int, text_weight: float = 1.0,
                 music_weight: float = 1.0, exclude_clips: Sequence = ()) -> list[list[Candidate]]:
        """(N, W, n_mels) segment mels -> per segment, the top ``k`` windows (one per clip)."""
        if k <= 0:
            return [[] for _ in range(len(mel_segments))]
        music = self.scorer.model.music_embeddings(np.asarray(mel_segments, dtype=np.float32))
        text_score = np.zeros(len(self.window_clip))
        if text and self.text_matrix is not None and self.text_encoder is not None:
            q = np.asarray(self.text_encoder([text]), dtype=np.float32)[0]
            text_score = self._z(self.text_matrix @ q)
        banned = np.isin(self.window_clip, np.asarray(list(exclude_clips)))
        out = []
        for t in range(len(music)):
            music_score = self._z(self.dance_emb @ music[t])
            total = np.where(banned, -np.inf, text_weight * text_score + music_weight * music_score)
            chosen, seen = [], set()
            for i in np.argsort(-total, kind="stable"):
                if not np.isfinite(total[i]) or len(chosen) == k:
                    break
                c = int(self.window_clip[i])
                if c in seen:
                    continue
                seen.add(c)
                chosen.append(int(i))
            segs = []
            for i in chosen:
                w = self.store.window(self.split, i)
                segs.append(Candidate(np.asarray(w.motion, dtype=np.float32), "catalog", {
                    "clip_id": int(w.clip_id), "clip_key": self._keys.get(w.clip_id), "window_start_s":
                    round(w.start / FPS, 3), "split": self.split, "genre": w.genre,
                    "retrieval_score": float(total[i]), "text_side": self.text_matrix is not None and bool(text)},
                    embedding=np.asarray(self.dance_emb[i], dtype=np.float32)))
            out.append(segs)
        return out
