"""Clip attributes stored beside the vectors, and the filters evaluated on them.

Every index keeps, aligned with its vectors, the four attributes users filter on (genre, tempo,
split, source).  Keeping them inside the index (instead of asking the catalog for the ids that
match) lets a filtered search run in one step on both backends: FAISS turns a filter into a
boolean mask over these arrays (a few milliseconds at a million clips, thanks to categorical
codes), Milvus turns it into a boolean expression over its scalar fields.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable, Sequence

import numpy as np

from encoders.tempo import tempo_class

from encoders.errors import InputError

_CATEGORICAL = ("genre", "split", "source")


def _encode(values: Sequence[str | None], vocab: list[str]) -> np.ndarray:
    """Categorical codes of ``values`` against ``vocab`` (extended in place); ``None`` / "" -> -1."""
    lookup = {v: i for i, v in enumerate(vocab)}
    out = np.empty(len(values), dtype=np.int32)
    for i, v in enumerate(values):
        if v is None or v == "":
            out[i] = -1
            continue
        code = lookup.get(v)
        if code is None:
            code = len(vocab)
            vocab.append(v)
            lookup[v] = code
        out[i] = code
    return out


@dataclass
class ClipAttributes:
    """Per-vector attributes, aligned with the index's internal positions.

    ``ids`` are catalog clip ids; ``bpm`` is NaN where unknown; genre / split / source are
    categorical codes into the ``*_vocab`` lists (-1 where unknown).
    """

    ids: np.ndarray
    bpm: np.ndarray
    genre: np.ndarray
    split: np.ndarray
    source: np.ndarray
    genre_vocab: list[str] = field(default_factory=list)
    split_vocab: list[str] = field(default_factory=list)
    source_vocab: list[str] = field(default_factory=list)

    @classmethod
    def empty(cls) -> "ClipAttributes":
        z = np.zeros(0, dtype=np.int32)
        return cls(np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32), z, z.copy(), z.copy())

    @classmethod
    def from_rows(cls, ids: Sequence[int], genres: Sequence[str | None], bpms: Sequence[float | None],
                  splits: Sequence[str | None], sources: Sequence[str | None]) -> "ClipAttributes":
        out = cls.empty()
        out.extend(ids, genres, bpms, splits, sources)
        return out

    def __len__(self) -> int:
        return int(len(self.ids))

    def extend(self, ids: Sequence[int], genres: Sequence[str | None], bpms: Sequence[float | None],
               splits: Sequence[str | None], sources: Sequence[str | None]) -> None:
        n = len(ids)
        if not (len(genres) == len(bpms) == len(splits) == len(sources) == n):
            raise ValueError("clip attribute columns differ in length")
        self.ids = np.concatenate([self.ids, np.asarray(ids, dtype=np.int64)])
        bpm = np.array([np.nan if b is None else float(b) for b in bpms], dtype=np.float32)
        self.bpm = np.concatenate([self.bpm, bpm])
        self.genre = np.concatenate([self.genre, _encode(genres, self.genre_vocab)])
        self.split = np.concatenate([self.split, _encode(splits, self.split_vocab)])
        self.source = np.concatenate([self.source, _encode(sources, self.source_vocab)])

    def take(self, positions: np.ndarray) -> "ClipAttributes":
        """A copy restricted to ``positions`` (same vocabularies)."""
        return ClipAttributes(self.ids[positions], self.bpm[positions], self.genre[positions],
                              self.split[positions], self.source[positions], list(self.genre_vocab),
                              list(self.split_vocab), list(self.source_vocab))

    def values(self, column: str) -> list[str | None]:
        """Decoded values of a categorical column (for exporting to another backend)."""
        codes = getattr(self, column)
        vocab = getattr(self, f"{column}_vocab")
        return [vocab[c] if c >= 0 else None for c in codes.tolist()]

    # --- persistence ------------------------------------------------------------------------------
    def to_arrays(self) -> dict[str, np.ndarray]:
        arrays: dict[str, np.ndarray] = {"ids": self.ids, "bpm": self.bpm}
        for col in _CATEGORICAL:
            arrays[col] = getattr(self, col)
            arrays[f"{col}_vocab"] = np.asarray(getattr(self, f"{col}_vocab"), dtype=str)
        return arrays

    @classmethod
    def from_arrays(cls, z) -> "ClipAttributes":
        return cls(np.asarray(z["ids"], dtype=np.int64), np.asarray(z["bpm"], dtype=np.float32),
                   np.asarray(z["genre"], dtype=np.int32), np.asarray(z["split"], dtype=np.int32),
                   np.asarray(z["source"], dtype=np.int32),
                   [str(v) for v in z["genre_vocab"]], [str(v) for v in z["split_vocab"]],
                   [str(v) for v in z["source_vocab"]])


def _quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


@dataclass(frozen=True)
class ClipFilter:
    """What a search is restricted to; an empty filter matches every clip.

    Several genres are OR-ed; the tempo range is inclusive and excludes clips without a tempo;
    ``exclude_sources`` leaves out clips of those catalog sources (the search leaves out
    ``generated`` clips unless a request asks for them); all conditions are AND-ed.
    """

    genres: tuple[str, ...] = ()
    bpm_min: float | None = None
    bpm_max: float | None = None
    split: str | None = None
    source: str | None = None
    exclude_sources: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "genres", tuple(dict.fromkeys(g for g in self.genres if g)))
        object.__setattr__(self, "exclude_sources", tuple(sorted(set(s for s in self.exclude_sources if s))))
        if self.bpm_min is not None and self.bpm_max is not None and self.bpm_min > self.bpm_max:
            raise InputError(None, "the tempo range is empty", field="bpm_min",
                             expected=f"bpm_min <= bpm_max ({self.bpm_max})", got=str(self.bpm_min))

    @classmethod
    def build(cls, genres: Iterable[str] | None = None, bpm_min: float | None = None,
              bpm_max: float | None = None, split: str | None = None, source: str | None = None) -> "ClipFilter":
        return cls(tuple(genres or ()), bpm_min, bpm_max, split or None, source or None)

    def with_genres(self, genres: Iterable[str]) -> "ClipFilter":
        """The same filter restricted to ``genres`` instead of its own."""
        return ClipFilter(tuple(genres), self.bpm_min, self.bpm_max, self.split, self.source, self.exclude_sources)

    @property
    def is_empty(self) -> bool:
        return (not self.genres and self.bpm_min is None and self.bpm_max is None and not self.split
                and not self.source and not self.exclude_sources)

    def mask(self, attrs: ClipAttributes) -> np.ndarray:
        """Boolean mask over the index positions that satisfy the filter."""
        m = np.ones(len(attrs), dtype=bool)
        for column, wanted in (("genre", self.genres), ("split", (self.split,) if self.split else ()),
                               ("source", (self.source,) if self.source else ())):
            if not wanted:
                continue
            vocab = getattr(attrs, f"{column}_vocab")
            codes = [vocab.index(w) for w in wanted if w in vocab]
            if not codes:
                return np.zeros(len(attrs), dtype=bool)
            col = getattr(attrs, column)
            m &= (col == codes[0]) if len(codes) == 1 else np.isin(col, np.asarray(codes, dtype=col.dtype))
        dropped = [attrs.source_vocab.index(s) for s in self.exclude_sources if s in attrs.source_vocab]
        if dropped:
            m &= ~np.isin(attrs.source, np.asarray(dropped, dtype=attrs.source.dtype))
        if self.bpm_min is not None:
            m &= attrs.bpm >= self.bpm_min  # NaN compares False: clips without tempo drop out
        if self.bpm_max is not None:
            m &= attrs.bpm <= self.bpm_max
        return m

    def milvus_expr(self) -> str:
        """The same filter as a Milvus boolean expression over the collection's scalar fields."""
        parts: list[str] = []
        if self.genres:
            parts.append("genre in [" + ", ".join(_quote(g) for g in self.genres) + "]")
        if self.split:
            parts.append(f"split == {_quote(self.split)}")
        if self.source:
            parts.append(f"source == {_quote(self.source)}")
        if self.exclude_sources:
            parts.append("source not in [" + ", ".join(_quote(s) for s in self.exclude_sources) + "]")
        if self.bpm_min is not None:
            parts.append(f"bpm >= {float(self.bpm_min)!r}")
        if self.bpm_max is not None:
            parts.append(f"bpm <= {float(self.bpm_max)!r}")
        if self.bpm_min is not None or self.bpm_max is not None:
            parts.append("bpm >= 0")  # unknown tempo is stored as -1
        return " and ".join(parts)

    def matches(self, genre: str | None, bpm: float | None, split: str | None = None,
                source: str | None = None) -> bool:
        """Whether one clip satisfies the filter (for results from outside an index)."""
        if self.genres and genre not in self.genres:
            return False
        if self.split and split != self.split:
            return False
        if self.source and source != self.source:
            return False
        if source in self.exclude_sources:
            return False
        if self.bpm_min is not None and (bpm is None or bpm < self.bpm_min):
            return False
        if self.bpm_max is not None and (bpm is None or bpm > self.bpm_max):
            return False
        return True


def tempo_word(bpm: float | None) -> str | None:
    """The tempo class of a BPM value, in the vocabulary the corpus tags and captions use (encoders.tempo)."""
    return tempo_class(bpm)
