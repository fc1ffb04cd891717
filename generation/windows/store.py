"""Window datasets cached as one memory-mapped array per split, rebuilt when the catalog changes.

Layout (``HOME/cache/generation/windows-<hash>/``)::

    manifest.json            format, content hash, config, genres, per-split counts, clips left out and why
    <split>.motion.npy       (frames, 319) float16: every usable clip of the split, end to end, world frame
    <split>.root.npy         (frames, 3) float32 root translation (float16 would jitter it by mm at metres)
    <split>.music.npy        (frames, 35) float16 music features aligned to the motion frames
    <split>.clips.json       per clip: id, key, genre, dancer, captions, bpm, offset, frames, has_music

Why clips and not windows: windows overlap (stride < length), so storing clips keeps the cache small
and lets any window length and stride be served from one build (training reads overlapping windows,
evaluation non-overlapping ones); each window is cut and moved to its canonical frame when read. Splits
are the catalog's, per clip, so no window of a test clip is ever in the train arrays. The hash covers
the catalog rows (ids change when content changes; captions, genres, splits), the representation and the
contact labelling, so a changed catalog gets a new cache; ``manifest.json`` is written last, so a build
that was interrupted is never mistaken for a finished one.
"""
from __future__ import annotations

import hashlib
import json
import shutil
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np
from tqdm import tqdm

from encoders.atomic_io import atomic_write_json
from encoders.errors import DanceSearchError, InputError
from encoders.model.features import align_music
from encoders.motion.record import MotionRecord
from encoders.music.features import COL_BEAT
from encoders.training.data import ClipExample, load_music

from ..representation.codec import canonicalise_features, encode
from ..representation.layout import FEATURE_DIM, FPS, LAYOUT, REPRESENTATION_ID
from ..representation.normalizer import Normalizer
from .config import WindowConfig

CACHE_FORMAT = 1
SPLITS: tuple[str, ...] = ("train", "val", "test")
MUSIC_DIM = 35


@dataclass
class Window:
    """One 4-s window, in its canonical frame (first root at the origin facing +z)."""

    motion: np.ndarray          # (W, 319) float32
    music: np.ndarray           # (W, 35) float32
    beat_times: np.ndarray      # seconds from the window start (music beats inside the window)
    clip_id: int | str
    start: int                  # first frame within the clip
    genre: str
    dancer: str | None
    split: str
    captions: list[str]
    has_music: bool


def content_hash(examples: Sequence[ClipExample], config: WindowConfig) -> str:
    """sha1 of the representation, the config and every catalog row a cache is built from."""
    h = hashlib.sha1()
    h.update(json.dumps({"format": CACHE_FORMAT, "representation": REPRESENTATION_ID,
                         "contacts": config.contacts.to_dict()}, sort_keys=True).encode())
    for ex in sorted(examples, key=lambda e: (str(type(e.clip_id)), e.clip_id)):
        row = [ex.clip_id, ex.split, ex.genre, ex.dancer, str(ex.motion_path), str(ex.music_path),
               list(ex.captions), ex.meta.get("key"), ex.meta.get("bpm")]
        h.update(json.dumps(row, default=str).encode())
    return h.hexdigest()


def _window_starts(frames: int, config: WindowConfig) -> list[int]:
    last = frames - config.window_frames
    if last < 0:
        return []
    starts = list(range(0, last + 1, config.stride_frames))
    if starts[-1] != last:
        starts.append(last)
    return starts


class WindowStore:
    """A finished window cache: arrays memory-mapped on open, windows cut on demand.

    ``config`` sets the window length and stride of this view (default: the one the cache was built
    with); its contact labelling must be the cache's.
    """

    def __init__(self, root: Path, config: WindowConfig | None = None) -> None:
        self.root = Path(root)
        manifest = self.root / "manifest.json"
        try:
            self.manifest: dict[str, Any] = json.loads(manifest.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise InputError(manifest, f"not a finished window cache: {exc}") from exc
        if self.manifest.get("format") != CACHE_FORMAT or self.manifest.get("representation") != REPRESENTATION_ID:
            raise InputError(manifest, "window cache of another format or representation", field="format",
                             expected=f"{CACHE_FORMAT} / {REPRESENTATION_ID}",
                             got=f"{self.manifest.get('format')} / {self.manifest.get('representation')}")
        built = WindowConfig.from_dict(self.manifest["config"])
        if config is not None and config.contacts != built.contacts:
            raise DanceSearchError(f"{self.root}: built with other contact labels ({built.contacts}); rebuild it")
        self.config = config or built
        self.genres: list[str] = list(self.manifest["genres"])
        self._splits: dict[str, dict[str, Any]] = {}

    @property
    def content_hash(self) -> str:
        return str(self.manifest["hash"])

    def _split(self, split: str) -> dict[str, Any]:
        if split not in SPLITS:
            raise DanceSearchError(f"unknown split {split!r}; choose one of {', '.join(SPLITS)}")
        if split not in self._splits:
            clips = json.loads((self.root / f"{split}.clips.json").read_text(encoding="utf-8"))
            arrays = {}
            if clips:
                arrays = {k: np.load(self.root / f"{split}.{k}.npy", mmap_mode="r") for k in ("motion", "root", "music")}
            index = [(i, s) for i, c in enumerate(clips) for s in _window_starts(int(c["frames"]), self.config)]
            self._splits[split] = {"clips": clips, "index": index, **arrays}
        return self._splits[split]

    def clips(self, split: str) -> list[dict[str, Any]]:
        return list(self._split(split)["clips"])

    def with_windows(self, window_frames: int | None = None, stride_frames: int | None = None) -> "WindowStore":
        """The same cache seen with another window length or stride (no rebuild, shares nothing mutable)."""
        cfg = WindowConfig(window_frames or self.config.window_frames, stride_frames or self.config.stride_frames,
                           self.config.contacts)
        return WindowStore(self.root, cfg)

    def num_windows(self, split: str) -> int:
        return len(self._split(split)["index"])

    def window(self, split: str, i: int) -> Window:
        s = self._split(split)
        if not 0 <= i < len(s["index"]):
            raise IndexError(f"window {i} outside 0..{len(s['index']) - 1} of split {split}")
        ci, start = s["index"][i]
        clip = s["clips"][ci]
        a = int(clip["offset"]) + start
        b = a + self.config.window_frames
        raw = np.asarray(s["motion"][a:b], dtype=np.float32)
        raw[:, LAYOUT.root] = s["root"][a:b]
        motion, _ = canonicalise_features(raw, name=f"{clip['key']}@{start}")
        music = np.asarray(s["music"][a:b], dtype=np.float32)
        beats = np.nonzero(music[:, COL_BEAT] > 0.5)[0] / FPS
        return Window(motion, music, beats, clip["id"], start, clip["genre"], clip.get("dancer"), split,
                      list(clip["captions"]), bool(clip["has_music"]))

    def windows(self, split: str) -> Iterator[Window]:
        for i in range(self.num_windows(split)):
            yield self.window(split, i)

    def fit_normalizer(self, split: str = "train", progress: bool = False) -> Normalizer:
        """Statistics of the split's canonical windows (what a model trained on them sees)."""
        it = tqdm(self.windows(split), total=self.num_windows(split), desc="normaliser", unit="win",
                  disable=not progress)
        return Normalizer.fit(w.motion for w in it)


def _clip_arrays(ex: ClipExample, config: WindowConfig) -> tuple[np.ndarray, np.ndarray, bool]:
    record = MotionRecord.load(ex.motion_path)
    feats, _ = encode(record, config.contacts, canonical=False, name=str(ex.meta.get("key", ex.motion_path)))
    music, present = align_music(load_music(ex.music_path), len(feats))
    return feats, music, present


def build_store(examples: Sequence[ClipExample], cache_root: Path, config: WindowConfig = WindowConfig(),
                progress: bool = True) -> WindowStore:
    """The finished cache for ``examples`` under ``cache_root``: reused when its hash matches, else built.

    Clips that cannot be used (no rotations, unreadable) are left out and listed in the manifest with
    their reason; a catalog with no usable clip at all is an error naming the reasons. A clip shorter
    than a window is kept but yields no window at that length.
    """
    digest = content_hash(examples, config)
    root = Path(cache_root) / f"windows-{digest[:16]}"
    if (root / "manifest.json").is_file():
        store = WindowStore(root, config)
        if store.content_hash == digest:
            return store
    tmp = root.with_name(root.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    left_out: list[dict[str, Any]] = []
    counts: dict[str, dict[str, int]] = {}
    by_split: dict[str, list[ClipExample]] = {s: [] for s in SPLITS}
    for ex in examples:
        by_split.setdefault(ex.split, []).append(ex)
    bar = tqdm(total=len(examples), desc="window cache", unit="clip", disable=not progress)
    for split in SPLITS:
        motion_parts, music_parts, meta = [], [], []
        offset = 0
        for ex in by_split.get(split, []):
            key = str(ex.meta.get("key", ex.clip_id))
            try:
                feats, music, present = _clip_arrays(ex, config)
            except InputError as exc:
                left_out.append({"clip_id": ex.clip_id, "key": key, "reason": str(exc)})
                bar.update(1)
                continue
            motion_parts.append(feats)
            music_parts.append(music)
            meta.append({"id": ex.clip_id, "key": key, "genre": ex.genre, "dancer": ex.dancer,
                         "captions": list(ex.captions), "bpm": ex.meta.get("bpm"), "offset": offset,
                         "frames": len(feats), "has_music": bool(present)})
            offset += len(feats)
            bar.update(1)
        if motion_parts:
            motion = np.concatenate(motion_parts)
            np.save(tmp / f"{split}.motion.npy", motion.astype(np.float16))
            np.save(tmp / f"{split}.root.npy", motion[:, LAYOUT.root].astype(np.float32))
            np.save(tmp / f"{split}.music.npy", np.concatenate(music_parts).astype(np.float16))
        atomic_write_json(tmp / f"{split}.clips.json", meta)
        counts[split] = {"clips": len(meta), "frames": offset}
    bar.close()
    if not any(c["clips"] for c in counts.values()):
        reasons = Counter(d["reason"].split(": ", 1)[-1] for d in left_out)
        raise DanceSearchError("no clip of the catalog can be used for generation: "
                               + "; ".join(f"{n} x {r}" for r, n in reasons.most_common(3)))
    genres = sorted({m["genre"] for split in SPLITS
                     for m in json.loads((tmp / f"{split}.clips.json").read_text(encoding="utf-8"))})
    atomic_write_json(tmp / "manifest.json", {
        "format": CACHE_FORMAT, "representation": REPRESENTATION_ID, "hash": digest, "config": config.to_dict(),
        "genres": genres, "feature_dim": FEATURE_DIM, "music_dim": MUSIC_DIM, "fps": FPS,
        "splits": counts, "left_out": left_out})
    shutil.rmtree(root, ignore_errors=True)
    tmp.rename(root)
    return WindowStore(root, config)
