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

The model reads :func:`model_input`: the music, the tokens when the run has a tower, and with
``DataConfig.beat_phase`` (run 3) four columns of beat / bar phase derived from the beat column
(:func:`beat_phase_features`), computed on load, never cached, so the same cache serves both kinds of run.

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
    beat_phase: bool = False      # append :func:`beat_phase_features` (4 columns) to the model's input (run 3);
                                  # computed from the music alone, so not part of the cache key

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
    beat_phase: bool = False      # set from DataConfig.beat_phase by load_pairs / build_cache

    def __len__(self) -> int:
        return int(self.guidance.shape[0])

    def music_input(self) -> np.ndarray:
        """(T, 35 [+ d] [+ 4]) what the model reads per frame (:func:`model_input`)."""
        return model_input(self.music, self.tokens, self.beat_phase)


BEAT_PHASE_COLUMNS = 4            # sin, cos of 2 pi x beat phase, then of 2 pi x bar phase
BEATS_PER_BAR = 4
DEFAULT_BEAT_SECONDS = 0.5        # period assumed when the music has fewer than two beats (120 bpm)


def model_input(music: np.ndarray, tokens: np.ndarray | None = None, beat_phase: bool = False) -> np.ndarray:
    """(T, 35) features [+ (T, d) tower tokens] [+ (T, 4) :func:`beat_phase_features`], in that order.

    One function for training, evaluation and the pipeline, so the three can never build different inputs.
    """
    parts = [np.asarray(music, dtype=np.float32)]
    if tokens is not None:
        parts.append(np.asarray(tokens, dtype=np.float32)[: len(music)])
    if beat_phase:
        parts.append(beat_phase_features(music))
    return parts[0] if len(parts) == 1 else np.concatenate(parts, axis=1)


def beat_frames(music: np.ndarray) -> np.ndarray:
    """Frames where the beat one-hot (column 34) starts a run of ones (adjacent ones are one beat: pooling
    30 -> 15 fps by max can only widen a beat, never split it)."""
    beat = np.asarray(music)[:, EVENT_COLUMNS[1]] > 0.5
    starts = beat & ~np.concatenate([[False], beat[:-1]])
    return np.flatnonzero(starts)


def beat_phase(music: np.ndarray, fps: float = 15.0) -> tuple[np.ndarray, np.ndarray]:
    """Per frame of ``music`` (T, 35): (beat phase, bar phase), each in [0, 1).

    Why: the beat column is a one-hot spike; a per-frame linear layer sees it on 1 frame in ~7 and nothing in
    between, so "how far into the beat" is invisible to it. The phase is ``(t - b_k) / (b_{k+1} - b_k)`` for
    the beats ``b_k <= t < b_{k+1}``: 0 on each beat, rising linearly to the next one (the period is
    interpolated beat to beat). Before the first beat the first period is extrapolated backwards, after the
    last beat the last period forwards (wrapping at each extrapolated beat); with fewer than two beats a
    period of :data:`DEFAULT_BEAT_SECONDS` is assumed (and frame 0 is the beat when there is none). The bar
    phase is ``(k + beat phase) / 4`` mod 1 counting beats from the first one: the features carry no
    downbeat, so the first beat is taken as one (a guess; the beat phase itself needs none).
    """
    t = np.arange(len(music), dtype=np.float64)
    beats = beat_frames(music).astype(np.float64)
    if len(beats) == 0:
        beats = np.array([0.0])
    if len(beats) == 1:
        beats = np.array([beats[0], beats[0] + DEFAULT_BEAT_SECONDS * fps])
    periods = np.diff(beats)
    k = np.clip(np.searchsorted(beats, t, side="right") - 1, 0, len(periods) - 1)
    # k: the interval [b_k, b_k+1) holding t; frames before b_0 use interval 0, after the last beat the last one
    index = (t - beats[k]) / periods[k] + k                  # fractional beat count since the first beat
    beat = np.mod(index, 1.0)
    bar = np.mod(index, BEATS_PER_BAR) / BEATS_PER_BAR
    return beat.astype(np.float32), bar.astype(np.float32)


def beat_phase_features(music: np.ndarray, fps: float = 15.0) -> np.ndarray:
    """(T, 4) float32: sin / cos of 2 pi x beat phase and of 2 pi x bar phase (:func:`beat_phase`); the circle
    keeps the wrap from 1 back to 0 continuous."""
    beat, bar = beat_phase(music, fps)
    out = np.stack([np.sin(2 * np.pi * beat), np.cos(2 * np.pi * beat), np.sin(2 * np.pi * bar),
                    np.cos(2 * np.pi * bar)], axis=1)
    return out.astype(np.float32)


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
                             z["tokens"] if "tokens" in z.files else None, json.loads(str(z["meta"])),
                             bool(config is not None and config.beat_phase))
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
        pairs.beat_phase = config.beat_phase
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

