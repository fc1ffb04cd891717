"""Window datasets cached as one memory-mapped array per split, rebuilt when the catalog changes.

Layout (``HOME/cache/generation/windows-<hash>/``)::

    manifest.json            format, content hash, config, genres, per-split counts, clips left out and why
    <split>.motion.npy       (frames, 319) float16: every usable clip of the split, end to end, world frame
    <split>.root.npy         (frames, 3) float32 root translation (float16 would jitter it by mm at metres)
    <split>.music.npy        (frames, 35) float16 music features aligned to the motion frames
    <split>.clips.json       per clip: id, key, genre, dancer, captions, bpm, offset, frames, has_music,
                             floor (the height removed to ground the clip)

Why clips and not windows: windows overlap (stride < length), so storing clips keeps the cache small
and lets any window length and stride be served from one build (training reads overlapping windows,
evaluation non-overlapping ones); each window is cut and moved to its canonical frame when read. Splits
are the catalog's, per clip, so no window of a test clip is ever in the train arrays. The hash covers
the catalog rows (captions, genres, splits), the size and modification time of every motion and music
file (ingest rewrites media in place when its media format changes, keeping clip ids), the representation
and the contact labelling, so a changed catalog or media file gets a new cache. Each build writes into a
folder of its own and renames it into place; ``manifest.json`` is written last, so a build that was
interrupted, or a second build running at the same time, is never mistaken for a finished one. Caches of
older catalog versions (same contact labels) are removed after a successful build.

Grounding: each clip is shifted vertically so its floor (the lowest foot joint per frame, 5th percentile:
``encoders.motion.bvh.floor_height``) is at y = 0. Why: sources disagree about where the floor is (FineDance's
SMPL-X rest pose puts the feet ~0.35 m below its root's origin), and a generator, floor penetration and foot
contact metrics all need one floor.
"""
from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
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
from encoders.music import MUSIC_FEATURE_DIM
from encoders.music.features import beat_times
from encoders.training.data import ClipExample, load_music

from encoders.motion.bvh import floor_height
from encoders.motion.kinematics import forward_kinematics
from encoders.motion.rotations import rot6d_to_matrix
from encoders.motion.skeleton import smplx52

from ..representation.codec import NotGenerativeError, canonicalise_features, encode
from ..representation.layout import FEATURE_DIM, FPS, LAYOUT, REPRESENTATION_ID
from ..representation.normalizer import Normalizer
from .config import WindowConfig

CACHE_FORMAT = 2
SPLITS: tuple[str, ...] = ("train", "val", "test")
MUSIC_DIM = MUSIC_FEATURE_DIM            # one home: encoders.music
_FOOT_INDEX = smplx52().foot_indices()


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
               list(ex.captions), ex.meta.get("key"), ex.meta.get("bpm"),
               _file_stamp(ex.motion_path), _file_stamp(ex.music_path)]
        h.update(json.dumps(row, default=str).encode())
    return h.hexdigest()


def _file_stamp(path: Path | None) -> list[int] | None:
    """(size, mtime_ns) of a media file; None for no file or one that cannot be read (its clip then fails)."""
    if path is None:
        return None
    try:
        st = Path(path).stat()
    except OSError:
        return None
    return [st.st_size, st.st_mtime_ns]


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
        self._open()

    def _open(self) -> None:
        # every split's arrays are mapped now, not lazily: a mapped file stays readable after a newer build
        # prunes this cache (POSIX keeps unlinked inodes alive), so a running training is never cut short
        self._splits = {}
        for split in SPLITS:
            self._split(split)
        self.genres: list[str] = list(self.manifest["genres"])

    @property
    def content_hash(self) -> str:
        return str(self.manifest["hash"])

    def _split(self, split: str) -> dict[str, Any]:
        if split not in SPLITS:
            raise DanceSearchError(f"unknown split {split!r}; choose one of {', '.join(SPLITS)}")
        if split not in self.__dict__.setdefault("_splits", {}):
            clips = json.loads((self.root / f"{split}.clips.json").read_text(encoding="utf-8"))
            arrays = {}
            if clips:
                for k in ("motion", "root", "music"):
                    path = self.root / f"{split}.{k}.npy"
                    try:
                        arrays[k] = np.load(path, mmap_mode="r")
                    except (OSError, ValueError) as exc:
                        raise InputError(path, f"window cache file cannot be read ({exc}); delete {self.root} "
                                               f"and it is rebuilt") from exc
            index = [(i, s) for i, c in enumerate(clips) for s in _window_starts(int(c["frames"]), self.config)]
            self._splits[split] = {"clips": clips, "index": index, **arrays}
        return self._splits[split]

    def clips(self, split: str) -> list[dict[str, Any]]:
        return list(self._split(split)["clips"])

    def __getstate__(self) -> dict[str, Any]:
        # memory maps pickle as full in-memory copies: DataLoader workers reopen them instead
        state = dict(self.__dict__)
        state["_splits"] = {}
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._open()

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
            raise IndexError(f"window {i} outside the {len(s['index'])} windows of split {split}")
        ci, start = s["index"][i]
        clip = s["clips"][ci]
        a = int(clip["offset"]) + start
        b = a + self.config.window_frames
        raw = np.asarray(s["motion"][a:b], dtype=np.float32)
        raw[:, LAYOUT.root] = s["root"][a:b]
        motion, _ = canonicalise_features(raw, name=f"{clip['key']}@{start}")
        music = np.asarray(s["music"][a:b], dtype=np.float32)
        beats = beat_times(music)
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


def _clip_arrays(ex: ClipExample, config: WindowConfig) -> tuple[np.ndarray, np.ndarray, bool, float]:
    """World-frame features of a clip, grounded (floor at y = 0), its aligned music, and the floor removed."""
    record = MotionRecord.load(ex.motion_path)
    feats, _ = encode(record, config.contacts, canonical=False, name=str(ex.meta.get("key", ex.motion_path)))
    feet = forward_kinematics(rot6d_to_matrix(feats[:, LAYOUT.rotations].reshape(len(feats), 52, 6).astype(np.float64)),
                              feats[:, LAYOUT.root].astype(np.float64), smplx52())[:, _FOOT_INDEX, 1]
    floor = floor_height(feet)
    feats[:, LAYOUT.root.start + 1] -= floor
    music, present = align_music(load_music(ex.music_path), len(feats))
    return feats, music, present, floor


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
    Path(cache_root).mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=cache_root, prefix=f"{root.name}.partial-"))
    try:
        _build_into(tmp, examples, config, digest, progress)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if (root / "manifest.json").is_file() and WindowStore(root).content_hash == digest:
        shutil.rmtree(tmp, ignore_errors=True)            # another build of the same catalog finished first
    else:
        if root.exists():
            (root / "manifest.json").unlink(missing_ok=True)
            shutil.rmtree(root, ignore_errors=True)
        try:
            tmp.rename(root)
        except OSError:                                    # lost a race with a concurrent identical build
            shutil.rmtree(tmp, ignore_errors=True)
    _prune_older(Path(cache_root), root, config)
    return WindowStore(root, config)


def _prune_older(cache_root: Path, keep: Path, config: WindowConfig) -> None:
    """Remove finished caches of other catalog versions built with the same contact labels."""
    for other in cache_root.glob("windows-*"):
        if other == keep or ".partial-" in other.name:
            continue
        try:
            manifest = json.loads((other / "manifest.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue                                        # not finished (or not ours): leave it
        if manifest.get("config", {}).get("contacts") == config.contacts.to_dict():
            (other / "manifest.json").unlink(missing_ok=True)
            shutil.rmtree(other, ignore_errors=True)


def _build_into(tmp: Path, examples: Sequence[ClipExample], config: WindowConfig, digest: str, progress: bool) -> None:
    left_out: list[dict[str, Any]] = []
    counts: dict[str, dict[str, int]] = {}
    by_split: dict[str, list[ClipExample]] = {s: [] for s in SPLITS}
    for ex in examples:
        if ex.split in by_split:
            by_split[ex.split].append(ex)
        else:
            left_out.append({"clip_id": ex.clip_id, "key": str(ex.meta.get("key", ex.clip_id)),
                             "reason": f"split {ex.split!r} is not one of {', '.join(SPLITS)}"})
    bar = tqdm(total=len(examples), desc="window cache", unit="clip", disable=not progress)
    for split in SPLITS:
        motion_parts, music_parts, meta = [], [], []
        offset = 0
        for ex in by_split.get(split, []):
            key = str(ex.meta.get("key", ex.clip_id))
            try:
                feats, music, present, floor = _clip_arrays(ex, config)
            except NotGenerativeError as exc:              # permanent: this clip can never be used
                left_out.append({"clip_id": ex.clip_id, "key": key, "reason": str(exc)})
                bar.update(1)
                continue
            except InputError as exc:                      # unreadable now: a cache must not remember that
                raise DanceSearchError(f"cannot build the window cache: clip {key}: {exc} (fix or re-ingest it, "
                                       f"then run again)") from exc
            motion_parts.append(feats)
            music_parts.append(music)
            meta.append({"id": ex.clip_id, "key": key, "genre": ex.genre, "dancer": ex.dancer,
                         "captions": list(ex.captions), "bpm": ex.meta.get("bpm"), "offset": offset,
                         "frames": len(feats), "has_music": bool(present), "floor": round(float(floor), 5)})
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
