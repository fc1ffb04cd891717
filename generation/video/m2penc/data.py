"""SDGPip synthetic pairs (paper 3.1): per clip, music features and the pose guidance rendered from its dance.

Why a per-clip cache: rendering a 12-s clip's guidance costs ~1-2 s on a CPU and training reads every clip
hundreds of times, so each clip is rendered once, at the training resolution (64x64) and frame rate (15 fps,
the paper's), and stored as ``CACHE/<clip>.npz`` (atomic write). A clip's file records the parameters it was
made with; a clip made with other parameters is rendered again, never silently mixed in.

Per clip (T = frames at 15 fps):

- ``guidance`` uint8 (T, 11, H, W): :data:`GUIDANCE_CHANNELS` (depth 1 + normal 3 + semantic 3 + DWPose 3 +
  mask 1), each 0..255, i.e. Champ's guidance images stacked as channels;
- ``keypoints`` float32 (T, 18, 2) pixel positions of the OpenPose body keypoints, ``valid`` bool (T, 18);
  heatmaps are made from them on demand (:func:`heatmaps_from_keypoints`), 18 float maps per frame would
  be 5x the rest of the file;
- ``music`` float32 (T, 35): the 30-fps FineDance/EDGE features pooled to 15 fps (:func:`music_at_15fps`);
- ``tokens`` float32 (T, d), optional: the retrieval model's music-tower tokens (:mod:`.tokens`) held per frame.

Alignment: 15-fps frame ``j`` is the dance's 30-fps frame ``2j``; its music row summarises feature rows ``2j``
and ``2j + 1`` (the beat / onset one-hots by max, so no beat is dropped), so music and guidance share one index.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from encoders.atomic_io import atomic_save_npz
from encoders.errors import InputError
from encoders.motion.record import MotionRecord

DATA_VERSION = 1
SOURCE_FPS = 30
GUIDANCE_CHANNELS: tuple[str, ...] = ("depth", "normal_x", "normal_y", "normal_z", "semantic_r", "semantic_g",
                                      "semantic_b", "dwpose_r", "dwpose_g", "dwpose_b", "mask")
GUIDANCE_GROUPS: dict[str, slice] = {"depth": slice(0, 1), "normal": slice(1, 4), "semantic": slice(4, 7),
                                     "dwpose": slice(7, 10), "mask": slice(10, 11)}
NUM_BODY_KEYPOINTS = 18
EVENT_COLUMNS = (33, 34)          # onset-peak and beat one-hots (encoders/music/features.py)


@dataclass(frozen=True)
class DataConfig:
    """How the synthetic pairs are made; part of every cached clip and of the run's config."""

    size: int = 64                # guidance images are size x size (the paper's 64x64)
    fps: int = 15                 # the paper's 15 fps; must divide 30
    heat_sigma: float = 1.5       # heatmap Gaussian sigma in pixels at ``size`` (drawing's default, 0.5 px at
                                  # 64, leaves a one-pixel target no regression can find)

    def validate(self) -> "DataConfig":
        if not 16 <= self.size <= 512:
            raise InputError(None, "bad guidance size", field="size", expected="16 to 512", got=str(self.size))
        if self.fps <= 0 or SOURCE_FPS % self.fps:
            raise InputError(None, "bad frame rate", field="fps", expected="a divisor of 30", got=str(self.fps))
        if self.heat_sigma <= 0:
            raise InputError(None, "bad heatmap sigma", field="heat_sigma", expected="> 0", got=str(self.heat_sigma))
        return self

    @property
    def step(self) -> int:
        return SOURCE_FPS // self.fps

    def key(self) -> str:
        """What a cached clip must have been made with (the sigma is not in it: heatmaps are made on demand)."""
        return json.dumps({"version": DATA_VERSION, "size": self.size, "fps": self.fps}, sort_keys=True)


@dataclass
class ClipPairs:
    """One clip's aligned arrays (see the module docstring)."""

    name: str
    guidance: np.ndarray          # uint8 (T, 11, H, W)
    keypoints: np.ndarray         # float32 (T, 18, 2)
    valid: np.ndarray             # bool (T, 18)
    music: np.ndarray             # float32 (T, 35)
    tokens: np.ndarray | None = None
    meta: dict | None = None

    def __len__(self) -> int:
        return int(self.guidance.shape[0])

    def music_input(self) -> np.ndarray:
        """(T, 35 [+ d]) what the model reads per frame."""
        return self.music if self.tokens is None else np.concatenate([self.music, self.tokens], axis=1)


def music_at_fps(music30: np.ndarray, step: int) -> np.ndarray:
    """(T30, 35) features at 30 fps -> (T30 // step, 35): rows ``step*j .. step*j + step - 1`` pooled.

    Continuous columns are averaged; the onset-peak and beat one-hots take the max, so every beat survives.
    """
    music30 = np.asarray(music30, dtype=np.float32)
    if music30.ndim != 2 or music30.shape[1] != 35:
        raise InputError(None, "bad music features", field="music", expected="(T, 35)", got=str(music30.shape))
    t = len(music30) // step
    blocks = music30[: t * step].reshape(t, step, 35)
    out = blocks.mean(axis=1)
    for c in EVENT_COLUMNS:
        out[:, c] = blocks[:, :, c].max(axis=1)
    return out.astype(np.float32)


def music_at_15fps(music30: np.ndarray) -> np.ndarray:
    return music_at_fps(music30, 2)


def subsample_record(record: MotionRecord, step: int) -> MotionRecord:
    """Every ``step``-th frame of ``record`` (frame ``j`` of the result is frame ``step * j``)."""
    if step == 1:
        return record
    rot = None if record.rotations_6d is None else record.rotations_6d[::step]
    return MotionRecord(record.fps / step, record.trans[::step], record.positions[::step], list(record.joint_names),
                        rot, dict(record.meta))


def render_pairs(record: MotionRecord, music30: np.ndarray, config: DataConfig = DataConfig(), name: str = "clip",
                 camera=None) -> ClipPairs:
    """Render one dance's guidance at ``config.size`` / ``config.fps`` and pair it with its music, frame by frame.

    ``record`` at 30 fps and ``music30`` (T, 35) on the same 30-fps grid (feature row i = motion frame i);
    the shorter one sets the length. ``camera``: a :class:`generation.video.camera.Camera` to use instead of
    fitting one to this dance (the default, as SDGPip renders every dance).
    """
    from ..guidance import render_guidance

    config = config.validate()
    if abs(record.fps - SOURCE_FPS) > 1e-3:
        raise InputError(None, "motion must be at 30 fps", field="fps", expected="30", got=f"{record.fps:g}")
    music = music_at_fps(music30, config.step)
    rec = subsample_record(record, config.step)
    t = min(len(music), rec.num_frames)
    if t < 1:
        raise InputError(None, "no frames to pair", field="music", expected=">= 1 frame at 15 fps", got="0")
    frames = render_guidance(rec.slice(0, t), config.size, hands=False, camera=camera)
    return ClipPairs(name, guidance_channels(frames), frames.keypoints[:, :NUM_BODY_KEYPOINTS].astype(np.float32),
                     frames.keypoint_valid[:, :NUM_BODY_KEYPOINTS].copy(), music[:t])


def guidance_channels(frames) -> np.ndarray:
    """uint8 (T, 11, H, W) of a :class:`generation.video.guidance.GuidanceFrames` in :data:`GUIDANCE_CHANNELS` order."""
    stack = np.concatenate([frames.depth_image()[..., :1], frames.normal_image(), frames.semantic_image(),
                            frames.pose, frames.mask], axis=-1)
    return np.ascontiguousarray(stack.transpose(0, 3, 1, 2))


def heatmaps_from_keypoints(keypoints: np.ndarray, valid: np.ndarray, size: int, sigma: float) -> np.ndarray:
    """float32 (T, K, size, size) Gaussian heatmaps (peak 1) of (T, K, 2) pixel keypoints; zeros where invalid."""
    from ..draw import keypoint_heatmaps

    return np.ascontiguousarray(keypoint_heatmaps(keypoints, valid, size, size, sigma).transpose(0, 3, 1, 2))


# --- the corpus ---------------------------------------------------------------------------------------------

@dataclass
class CorpusClip:
    name: str
    motion: Path
    audio: Path
    split: str
    genre: str
    bpm: float


def corpus_clips(corpus: str | Path) -> list[CorpusClip]:
    """The clips of a ``dancesearch corpus demo`` folder (npz + ogg), sorted by name."""
    corpus = Path(corpus)
    if not corpus.is_dir():
        raise InputError(corpus, "corpus folder not found", field="corpus",
                         expected="a `dancesearch corpus demo` folder")
    out = []
    for npz in sorted(corpus.glob("*.npz")):
        try:
            with np.load(npz, allow_pickle=False) as z:
                meta = json.loads(str(z["metadata"]))
                audio = str(z["audio"])
        except Exception as exc:  # noqa: BLE001 - a corrupt npz fails in many ways
            raise InputError(npz, f"cannot read corpus clip ({type(exc).__name__}: {exc})") from exc
        out.append(CorpusClip(npz.stem, npz, npz.parent / audio, str(meta.get("split", "train")),
                              str(meta.get("genre", "")), float(meta.get("bpm", 0.0))))
    if not out:
        raise InputError(corpus, "no clips (*.npz) in the corpus folder", field="corpus",
                         expected="a `dancesearch corpus demo` folder", got="no npz files")
    return out


def load_corpus_record(path: str | Path) -> MotionRecord:
    """A corpus npz (SMPL-X axis-angle ``poses`` + ``trans``) as a :class:`MotionRecord`."""
    from encoders.motion.convert import from_smplx_axis_angle

    try:
        with np.load(path, allow_pickle=False) as z:
            poses, trans, fps = z["poses"].astype(np.float32), z["trans"].astype(np.float32), float(z["fps"])
    except Exception as exc:  # noqa: BLE001
        raise InputError(path, f"cannot read corpus motion ({type(exc).__name__}: {exc})") from exc
    return from_smplx_axis_angle(trans, poses, fps)


def clip_music30(clip: CorpusClip, music_cache: Path | None) -> np.ndarray:
    from encoders.music.features import analyse_file

    return analyse_file(clip.audio, music_cache).features


def cache_path(cache: Path, name: str) -> Path:
    return Path(cache) / f"{name}.npz"


def save_pairs(path: Path, pairs: ClipPairs, config: DataConfig, token_id: str = "") -> None:
    arrays = {"guidance": pairs.guidance, "keypoints": pairs.keypoints, "valid": pairs.valid, "music": pairs.music,
              "key": np.asarray(config.key()), "token_id": np.asarray(token_id),
              "meta": np.asarray(json.dumps(pairs.meta or {}, sort_keys=True))}
    if pairs.tokens is not None:
        arrays["tokens"] = pairs.tokens.astype(np.float32)
    atomic_save_npz(path, **arrays)


def load_pairs(path: Path, config: DataConfig | None = None, token_id: str | None = None) -> ClipPairs | None:
    """A cached clip, or None when it is missing, unreadable or made with other parameters / tokens."""
    try:
        with np.load(path, allow_pickle=False) as z:
            if config is not None and str(z["key"]) != config.key():
                return None
            if token_id is not None and str(z["token_id"]) != token_id:
                return None
            return ClipPairs(Path(path).stem, z["guidance"], z["keypoints"], z["valid"].astype(bool), z["music"],
                             z["tokens"] if "tokens" in z.files else None, json.loads(str(z["meta"])))
    except Exception:  # noqa: BLE001 - an unreadable entry is re-rendered
        return None


def build_cache(corpus: str | Path, cache: str | Path, config: DataConfig = DataConfig(),
                splits: Sequence[str] = ("train", "val", "test"), tower=None, progress: bool = True) -> list[ClipPairs]:
    """Render (or read back) every clip of ``splits``; returns them in name order.

    ``tower``: a :class:`generation.video.m2penc.tokens.MusicTower` whose tokens are stored with each clip.
    """
    from tqdm import tqdm

    cache = Path(cache)
    cache.mkdir(parents=True, exist_ok=True)
    clips = [c for c in corpus_clips(corpus) if c.split in splits]
    token_id = tower.identity if tower is not None else ""
    out = []
    for clip in tqdm(clips, desc="m2penc pairs", unit="clip", disable=not progress):
        path = cache_path(cache, clip.name)
        pairs = load_pairs(path, config, token_id)
        if pairs is None:
            music30 = clip_music30(clip, cache / "music")
            pairs = render_pairs(load_corpus_record(clip.motion), music30, config, clip.name)
            if tower is not None:
                pairs.tokens = tower.tokens_at(music30, config.step)[: len(pairs)]
            pairs.meta = {"split": clip.split, "genre": clip.genre, "bpm": clip.bpm, "motion": str(clip.motion),
                          "audio": str(clip.audio)}
            save_pairs(path, pairs, config, token_id)
        out.append(pairs)
    return out


def window_starts(length: int, window: int, stride: int | None = None) -> list[int]:
    """Starts of the ``window``-frame windows over ``length`` frames, every ``stride`` (default: no overlap)."""
    stride = window if stride is None else stride
    if length < window:
        return []
    return list(range(0, length - window + 1, stride))


def window_arrays(pairs: ClipPairs, start: int, window: int, sigma: float) -> dict[str, np.ndarray]:
    """Music input (W, F), guidance float (W, 11, H, W) in [0, 1] and heatmaps (W, 18, H, W) of one window."""
    sl = slice(start, start + window)
    size = pairs.guidance.shape[-1]
    return {"music": pairs.music_input()[sl].astype(np.float32),
            "guidance": pairs.guidance[sl].astype(np.float32) / 255.0,
            "heatmaps": heatmaps_from_keypoints(pairs.keypoints[sl], pairs.valid[sl], size, sigma),
            "keypoints": pairs.keypoints[sl], "valid": pairs.valid[sl]}


def split_of(pairs: ClipPairs) -> str:
    return str((pairs.meta or {}).get("split", "train"))

