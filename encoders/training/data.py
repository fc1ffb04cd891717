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
from ..model.features import MUSIC_DIM, NormStats, align_music, augmented_motion_features, motion_features
from ..motion.augment import RealismAugment
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
    mirrored: bool = False       # an augmented variant of a mirrored take (its captions' left / right swap)


class FeatureBank:
    """Examples plus their features; ``normalised(stats)`` gives what the encoders consume.

    With ``augment`` and ``variants`` > 0 every example also gets that many randomly perturbed
    versions (:class:`encoders.motion.augment.RealismAugment`, canonical input), computed once here so
    an epoch still costs only the model's passes; the trainer picks one per clip and epoch
    (:meth:`variant`). Normalisation statistics come from the unperturbed clips only.
    """

    def __init__(self, examples: Sequence[ClipExample], progress: bool = True, desc: str = "features",
                 motion_input: str = "source", augment: RealismAugment | None = None, variants: int = 0,
                 seed: int = 0, smoothing: float = 0.0) -> None:
        if variants and motion_input != "canonical":
            raise ValueError("realism augmentation needs the canonical motion input")
        self.examples = list(examples)
        self.raw: list[ClipFeatures] = []
        self.augmented: list[list[ClipFeatures]] = []
        rng = np.random.default_rng(seed)
        for ex in tqdm(self.examples, desc=desc, disable=not progress, leave=False):
            record = MotionRecord.load(ex.motion_path)
            try:
                motion = motion_features(record, motion_input, smoothing)
                extra = ([augmented_motion_features(record, augment, rng, smoothing) for _ in range(variants)]
                         if augment else [])
            except InputError as exc:
                raise InputError(ex.motion_path, exc.reason, field=exc.field, expected=exc.expected, got=exc.got) from exc
            music, present = align_music(load_music(ex.music_path), len(motion))
            self.raw.append(ClipFeatures(motion, music, present))
            self.augmented.append([ClipFeatures(m, music[: len(m)], present, mirrored) for m, mirrored in extra])
        self._norm: list[tuple[np.ndarray, np.ndarray, bool]] | None = None
        self._norm_aug: list[list[tuple[np.ndarray, np.ndarray, bool]]] = []

    def __len__(self) -> int:
        return len(self.examples)

    def fit_stats(self) -> NormStats:
        return NormStats.fit([r.motion for r in self.raw], [r.music if r.music_present else None for r in self.raw])

    def normalise(self, stats: NormStats) -> list[tuple[np.ndarray, np.ndarray, bool]]:
        def norm(r: ClipFeatures) -> tuple[np.ndarray, np.ndarray, bool]:
            return stats.normalise_motion(r.motion), stats.normalise_music(r.music, r.music_present), r.music_present

        self._norm = [norm(r) for r in self.raw]
        self._norm_aug = [[norm(v) for v in variants] for variants in self.augmented]
        return self._norm

    @property
    def normalised(self) -> list[tuple[np.ndarray, np.ndarray, bool]]:
        if self._norm is None:
            raise RuntimeError("call normalise(stats) first")
        return self._norm

    def variant(self, index: int, rng: np.random.Generator, prob: float) -> tuple[tuple[np.ndarray, np.ndarray, bool], bool]:
        """Normalised features of example ``index``: with probability ``prob`` a random augmented variant
        (when it has any), else the original; and whether that variant is mirrored."""
        if self._norm is None:
            raise RuntimeError("call normalise(stats) first")
        variants = self._norm_aug[index] if self._norm_aug else []
        if variants and rng.random() < prob:
            k = int(rng.integers(len(variants)))
            return variants[k], self.augmented[index][k].mirrored
        return self._norm[index], False


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


def caption_paraphrases(examples: Sequence[ClipExample], per_clip: int, seed: int) -> list[list[str]]:
    """``per_clip`` people's-words variants of each example's captions (:mod:`encoders.text_vocabulary`).

    Why: the corpus captions come from one grammar, users type step names, moods and typos; the text
    adapter only learns words it is trained on. Drawn once (a fixed pool), so a frozen text backbone
    encodes each variant once.
    """
    from ..text_vocabulary import GenreVocabulary

    vocab = GenreVocabulary.load()
    rng = np.random.default_rng(seed)
    out: list[list[str]] = []
    for ex in examples:
        pool: list[str] = []
        if ex.captions and ex.genre in vocab.genres:
            for _ in range(per_clip):
                base = ex.captions[int(rng.integers(len(ex.captions)))]
                pool.append(vocab.paraphrase_caption(base, ex.genre, rng))
        out.append(pool)
    return out
