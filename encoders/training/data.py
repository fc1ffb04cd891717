"""Training examples, their in-memory feature bank and the genre / dancer balanced batch order.

``encoders`` never reads the catalog: ``indexer.datasets`` turns catalog rows into ``ClipExample``.
Features are computed once per clip and kept in memory (a 12 s clip is ~360 x 264 floats), so an
epoch costs only the model's forward and backward passes.
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
from tqdm import tqdm

from ..errors import InputError
from ..model.features import MUSIC_DIM, NormStats, align_music, motion_features
from ..motion.record import MotionRecord


@dataclass
class ClipExample:
    """One clip to train or evaluate on; ``music_path`` None means the source has no music."""

    clip_id: int | str
    motion_path: Path
    music_path: Path | None
    captions: list[str]
    genre: str = "unknown"
    dancer: str | None = None
    split: str = "train"
    meta: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.motion_path = Path(self.motion_path)
        self.music_path = None if self.music_path is None else Path(self.music_path)
        self.captions = [str(c) for c in self.captions if str(c).strip()]


def load_music(path: Path | None) -> np.ndarray | None:
    """(T, 35) float32 music features, or None when the clip has none."""
    if path is None:
        return None
    try:
        music = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise InputError(path, f"cannot read music features: {exc}") from exc
    if music.ndim != 2 or music.shape[1] != MUSIC_DIM:
        raise InputError(path, "bad music features", expected=f"(T, {MUSIC_DIM})", got=str(music.shape))
    return music.astype(np.float32)


@dataclass
class ClipFeatures:
    """Raw (unnormalised) features of one example, aligned frame by frame."""

    motion: np.ndarray           # (T, MOTION_FEATURE_DIM)
    music: np.ndarray            # (T, 35), zeros when absent
    music_present: bool


class FeatureBank:
    """Examples plus their features; ``normalised(stats)`` gives what the encoders consume."""

    def __init__(self, examples: Sequence[ClipExample], progress: bool = True, desc: str = "features") -> None:
        self.examples = list(examples)
        self.raw: list[ClipFeatures] = []
        for ex in tqdm(self.examples, desc=desc, disable=not progress, leave=False):
            record = MotionRecord.load(ex.motion_path)
            try:
                motion = motion_features(record)
            except InputError as exc:
                raise InputError(ex.motion_path, exc.reason, field=exc.field, expected=exc.expected, got=exc.got) from exc
            music, present = align_music(load_music(ex.music_path), len(motion))
            self.raw.append(ClipFeatures(motion, music, present))
        self._norm: list[tuple[np.ndarray, np.ndarray, bool]] | None = None

    def __len__(self) -> int:
        return len(self.examples)

    def fit_stats(self) -> NormStats:
        return NormStats.fit([r.motion for r in self.raw], [r.music if r.music_present else None for r in self.raw])

    def normalise(self, stats: NormStats) -> list[tuple[np.ndarray, np.ndarray, bool]]:
        self._norm = [(stats.normalise_motion(r.motion), stats.normalise_music(r.music, r.music_present), r.music_present)
                      for r in self.raw]
        return self._norm

    @property
    def normalised(self) -> list[tuple[np.ndarray, np.ndarray, bool]]:
        if self._norm is None:
            raise RuntimeError("call normalise(stats) first")
        return self._norm


def _stratified_order(groups: dict[str, list[int]], rng: np.random.Generator) -> list[int]:
    """Interleave groups so each is spread evenly over the sequence (item r of a group of n sits near r/n)."""
    keyed: list[tuple[float, int]] = []
    for members in groups.values():
        n = len(members)
        for rank, idx in enumerate(members):
            keyed.append(((rank + rng.random()) / n, idx))
    keyed.sort()
    return [idx for _, idx in keyed]


def balanced_batches(genres: Sequence[str], dancers: Sequence[str | None], batch_size: int,
                     rng: np.random.Generator, drop_last_below: int = 2) -> list[list[int]]:
    """One epoch of batches in which genres, and dancers within a genre, are spread as evenly as possible.

    Homogeneous batches make weak negatives (the paper's 4.8); stratifying every genre over the whole
    epoch gives each batch genre proportions close to the corpus's and, within a genre, a mix of
    dancers. Every clip appears once per epoch, so a batch never holds the same clip twice.
    A final batch smaller than ``drop_last_below`` is dropped (InfoNCE needs a negative).
    """
    if len(genres) != len(dancers):
        raise ValueError("genres and dancers differ in length")
    by_genre: dict[str, dict[str, list[int]]] = defaultdict(lambda: defaultdict(list))
    for i, (g, d) in enumerate(zip(genres, dancers)):
        by_genre[str(g)][str(d)].append(i)
    genre_lists: dict[str, list[int]] = {}
    for g in sorted(by_genre):
        dancer_groups = {d: list(rng.permutation(v)) for d, v in sorted(by_genre[g].items())}
        genre_lists[g] = _stratified_order(dancer_groups, rng)
    order = _stratified_order(genre_lists, rng)
    batches = [order[i:i + batch_size] for i in range(0, len(order), batch_size)]
    if batches and len(batches[-1]) < drop_last_below:
        batches.pop()
    return [[int(i) for i in b] for b in batches]


def caption_queries(examples: Iterable[ClipExample]) -> tuple[list[str], list[int]]:
    """Every caption of every example as a query, with the index of its clip (the positive)."""
    texts: list[str] = []
    positives: list[int] = []
    for i, ex in enumerate(examples):
        for c in ex.captions:
            texts.append(c)
            positives.append(i)
    return texts, positives
