"""Source adapters: one per ``dancesearch ingest KIND``, each turning a folder into per-sequence items.

An adapter lists its candidate files (so progress has a total), then loads one candidate at a time
into a :class:`SequenceItem` (a 30 fps :class:`MotionRecord` plus audio path and labels) or raises
:class:`InputError` naming the file and the reason; :meth:`SourceAdapter.iter_items` turns those into
:class:`SourceFailure` entries so one bad file never stops a batch.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Iterator

import numpy as np

from encoders.errors import InputError
from encoders.motion.record import MotionRecord

from ..captions import CaptionEntry

AUDIO_EXTENSIONS: tuple[str, ...] = (".wav", ".ogg", ".flac", ".mp3")
SPLIT_NAMES = ("train", "val", "test")


@dataclass
class SequenceItem:
    """One loaded source sequence, ready to be clipped."""

    name: str
    path: Path                                   # the main source file (motion)
    motion: MotionRecord                         # 30 fps
    audio: Path | None = None
    genre: str = "unknown"
    dancer: str | None = None
    split: str | None = None                     # None: the ingester hashes one
    bpm: float | None = None                     # None: the music analysis tempo
    captions: list[str] = field(default_factory=list)   # sequence-level captions (origin "metadata")
    tags: dict = field(default_factory=dict)
    meta: dict = field(default_factory=dict)
    split_group: str | None = None               # hash this instead of the name (keeps takes together)
    files: list[Path] = field(default_factory=list)     # every file the item was read from (fingerprint)


@dataclass(frozen=True)
class SourceFailure:
    path: str
    reason: str

    def as_dict(self) -> dict[str, str]:
        return {"path": self.path, "reason": self.reason}


def normalize_genre(genre: Any) -> str:
    """Genres are compared lower-case; empty or missing means ``unknown``."""
    text = str(genre).strip().lower() if genre is not None else ""
    return text or "unknown"


def check_finite(arr: np.ndarray, path: Path, name: str) -> None:
    if not np.issubdtype(arr.dtype, np.number):
        raise InputError(path, "array is not numeric", field=name, expected="float array", got=str(arr.dtype))
    if not np.isfinite(arr).all():
        bad = int((~np.isfinite(arr)).sum())
        raise InputError(path, f"contains {bad} NaN or infinite values", field=name)


def find_sidecar_audio(base: Path) -> Path | None:
    """``base`` + one of the audio extensions, if such a file exists (first match in extension order)."""
    for ext in AUDIO_EXTENSIONS:
        cand = base.with_name(base.name + ext)
        if cand.is_file():
            return cand
    return None


def read_json(path: Path, what: str = "file") -> Any:
    """Parse a JSON file; an unreadable file or bad JSON is an InputError naming the file and line."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(path, f"cannot read {what}: {exc}") from exc
    except json.JSONDecodeError as exc:
        raise InputError(path, f"invalid JSON: {exc.msg} (line {exc.lineno})") from None


def read_json_object(path: Path) -> dict:
    obj = read_json(path)
    if not isinstance(obj, dict):
        raise InputError(path, "expected a JSON object", got=type(obj).__name__)
    return obj


def labels_from_metadata(meta: dict, path: Path, field_prefix: str = "metadata") -> dict[str, Any]:
    """Validate the common label fields (genre, dancer, bpm, split, captions, tags, group) of a JSON object."""
    out: dict[str, Any] = {}
    if meta.get("genre") is not None:
        out["genre"] = normalize_genre(meta["genre"])
    if meta.get("dancer") is not None:
        out["dancer"] = str(meta["dancer"])
    if meta.get("bpm") is not None:
        try:
            bpm = float(meta["bpm"])
        except (TypeError, ValueError):
            raise InputError(path, "bpm is not a number", field=f"{field_prefix}.bpm", got=repr(meta["bpm"])) from None
        if not (np.isfinite(bpm) and 20.0 <= bpm <= 400.0):
            raise InputError(path, "implausible bpm", field=f"{field_prefix}.bpm", expected="20..400", got=str(bpm))
        out["bpm"] = bpm
    if meta.get("split") is not None:
        split = str(meta["split"]).strip().lower()
        if split not in SPLIT_NAMES:
            raise InputError(path, "unknown split", field=f"{field_prefix}.split", expected="train, val or test",
                             got=repr(meta["split"]))
        out["split"] = split
    caps = meta.get("captions", [])
    if isinstance(caps, str):
        caps = [caps]
    if not isinstance(caps, list) or not all(isinstance(c, str) for c in caps):
        raise InputError(path, "captions must be a list of strings", field=f"{field_prefix}.captions")
    out["captions"] = [c.strip() for c in caps if c.strip()]
    tags = meta.get("tags", {}) or {}
    if not isinstance(tags, dict):
        raise InputError(path, "tags must be an object", field=f"{field_prefix}.tags")
    out["tags"] = dict(tags)
    if meta.get("group") is not None:
        out["split_group"] = str(meta["group"])
    return out


class SourceAdapter:
    """Base class: ``candidates()`` then ``load(candidate)`` per sequence."""

    kind: ClassVar[str] = ""
    requires_audio: ClassVar[bool] = False

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root).expanduser().resolve()
        if not self.root.exists():
            raise InputError(self.root, "no such file or folder")
        self.failures: list[SourceFailure] = []   # problems found while setting up (e.g. a bad label file)

    def candidates(self) -> list[Path]:
        raise NotImplementedError

    def load(self, candidate: Path) -> SequenceItem:
        raise NotImplementedError

    def extra_captions(self) -> list[CaptionEntry]:
        """Captions that come with the folder itself (the npz folder's ``captions.jsonl``)."""
        return []

    def iter_items(self) -> Iterator[SequenceItem | SourceFailure]:
        """Every sequence as an item, or a failure with the file and the reason."""
        yield from self.failures
        for cand in self.candidates():
            try:
                yield self.load(cand)
            except InputError as exc:
                yield SourceFailure(exc.path or str(cand), failure_reason(exc))


def failure_reason(exc: BaseException) -> str:
    """The reason text for a failed file (without repeating the path an InputError already names)."""
    if isinstance(exc, InputError):
        text = exc.reason
        if exc.field:
            text = f"field '{exc.field}': {text}"
        if exc.expected is not None or exc.got is not None:
            text += f" (expected {exc.expected}, got {exc.got})"
        return text
    return f"{type(exc).__name__}: {exc}"


def get_adapter(kind: str, root: str | Path) -> SourceAdapter:
    """The adapter for ``kind`` over ``root`` (KeyError for an unknown kind)."""
    from .aistpp import AistppAdapter
    from .bvh import BvhAdapter
    from .finedance import FineDanceAdapter
    from .npz import NpzAdapter

    table: dict[str, type[SourceAdapter]] = {a.kind: a for a in (FineDanceAdapter, AistppAdapter, BvhAdapter, NpzAdapter)}
    if kind not in table:
        raise KeyError(f"unknown source kind {kind!r} (known: {', '.join(sorted(table))})")
    return table[kind](root)


KINDS: tuple[str, ...] = ("aistpp", "bvh", "finedance", "npz")
