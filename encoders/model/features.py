"""Per-frame motion features that every source can provide, plus music alignment and normalisation.

Why these features: sources differ (FineDance has SMPL-X rotations, BVH / CSV only positions,
AIST++ a scaled SMPL body), so the encoder must see a representation that (1) exists for all of them,
(2) does not depend on where the dancer stands, which way they face or how tall they are, and
(3) keeps the dynamics dance captions talk about (speed, footwork, jumps, turns).

Per frame (all lengths divided by the dancer's body scale, velocities per second):

===================  =====  ====================================================================
block                dims   meaning
===================  =====  ====================================================================
local positions      63     21 non-root body joints relative to the pelvis, in the heading frame
root velocity         3     planar root velocity (heading frame, x / z) and yaw rate (rad/s)
root height           1     pelvis height above the clip's floor (lowest foot joint)
joint velocities     66     22 body-joint velocities, heading frame
foot contacts         4     left / right ankle and toe contact (0 / 1)
6D rotations        126     local 6D rotations of the 21 non-root body joints (zeros when absent)
rotation flag         1     1 when the source has rotations, else 0
===================  =====  ====================================================================

The heading frame turns the body about +y so its facing (from the hip axis) is +z.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..atomic_io import atomic_save_npz
from ..errors import InputError
from ..motion.canonical import canonical_body
from ..motion.kinematics import foot_contacts, resample_linear, smooth_gaussian
from ..motion.record import MotionRecord
from ..motion.skeleton import FOOT_JOINTS, SMPL_BODY_22
from ..music import MUSIC_FEATURE_DIM

if TYPE_CHECKING:
    import torch

    from ..motion.augment import RealismAugment

MUSIC_DIM = MUSIC_FEATURE_DIM            # one home: encoders.music
N_BODY = len(SMPL_BODY_22)
_J = {name: i for i, name in enumerate(SMPL_BODY_22)}

BLOCKS: dict[str, int] = {
    "local_positions": (N_BODY - 1) * 3,
    "root_velocity": 3,
    "root_height": 1,
    "joint_velocities": N_BODY * 3,
    "foot_contacts": 4,
    "rotations_6d": (N_BODY - 1) * 6,
    "rotation_flag": 1,
}
MOTION_FEATURE_DIM = sum(BLOCKS.values())


def block_slice(name: str) -> slice:
    """Column range of one feature block (see the table in the module docstring)."""
    start = 0
    for key, width in BLOCKS.items():
        if key == name:
            return slice(start, start + width)
        start += width
    raise KeyError(name)


# Bone chains whose summed lengths give a pose-independent body size (pelvis -> head plus one leg).
_SCALE_CHAINS = (("pelvis", "spine1", "spine2", "spine3", "neck", "head"),
                 ("left_hip", "left_knee", "left_ankle"), ("right_hip", "right_knee", "right_ankle"))
REFERENCE_SCALE = 1.42  # body_scale() of the SMPL-X rest skeleton, so features stay close to metres


def body_scale(body: np.ndarray) -> float:
    """Trunk + mean leg length (metres): bone lengths do not change with pose, unlike height."""
    def chain(names: tuple[str, ...]) -> np.ndarray:
        idx = [_J[n] for n in names]
        return np.linalg.norm(np.diff(body[:, idx], axis=1), axis=-1).sum(axis=1)

    per_frame = chain(_SCALE_CHAINS[0]) + 0.5 * (chain(_SCALE_CHAINS[1]) + chain(_SCALE_CHAINS[2]))
    scale = float(np.median(per_frame))
    if not np.isfinite(scale) or scale < 1e-3:
        raise InputError(None, "degenerate skeleton: body joints collapse to a point", field="positions")
    return scale


def _heading(body: np.ndarray) -> np.ndarray:
    """Facing angle about +y per frame (0 when the body faces +z), from the right-to-left hip axis."""
    across = body[:, _J["left_hip"]] - body[:, _J["right_hip"]]
    across = across + (body[:, _J["left_shoulder"]] - body[:, _J["right_shoulder"]])
    # forward = across x up = (-across_z, 0, across_x)... for across = +x that is +z.
    fx, fz = -across[:, 2], across[:, 0]
    return np.unwrap(np.arctan2(fx, fz))


def _rotate_y(vectors: np.ndarray, angle: np.ndarray) -> np.ndarray:
    """Rotate (T, ..., 3) vectors by -angle about +y (undo the heading)."""
    c = np.cos(angle).reshape((-1,) + (1,) * (vectors.ndim - 2))
    s = np.sin(angle).reshape((-1,) + (1,) * (vectors.ndim - 2))
    x, y, z = vectors[..., 0], vectors[..., 1], vectors[..., 2]
    return np.stack([c * x - s * z, y, s * x + c * z], axis=-1)


MOTION_INPUTS: tuple[str, ...] = ("source", "canonical")
"""How a record's joints reach the features: ``source`` as the source placed them (with its SMPL-X
rotations when it has them: the models trained before canonical retargeting existed), ``canonical``
retargeted onto one canonical body (:mod:`encoders.motion.canonical`) with the rotation block left
empty, so a BVH take, an AIST++ SMPL body and a FineDance SMPL-X body of the same dance look alike."""


def motion_features(record: MotionRecord, motion_input: str = "source", smoothing: float = 0.0) -> np.ndarray:
    """(T, MOTION_FEATURE_DIM) float32 features of a record (resampled to 30 fps when it is not);
    ``smoothing`` > 0 low-passes the joint positions first (Gaussian sigma in 30-fps frames)."""
    if motion_input not in MOTION_INPUTS:
        raise ValueError(f"motion_input must be one of {MOTION_INPUTS}, got {motion_input!r}")
    body = _at_30fps(record, record.body22().astype(np.float64))
    rot = _at_30fps(record, record.rotations_6d) if motion_input == "source" else None
    return body_features(smooth_gaussian(body, smoothing), rot, canonical=motion_input == "canonical")


def augmented_motion_features(record: MotionRecord, augment: "RealismAugment", rng: np.random.Generator,
                              smoothing: float = 0.0) -> tuple[np.ndarray, bool]:
    """Canonical-input features of one random realistic perturbation of a record; (features, mirrored)."""
    body, mirrored = augment.apply(_at_30fps(record, record.body22().astype(np.float64)), 30.0, rng)
    return body_features(smooth_gaussian(body, smoothing), None, canonical=True), mirrored


def _at_30fps(record: MotionRecord, frames: np.ndarray | None) -> np.ndarray | None:
    """Per-frame arrays of ``record`` resampled to the features' 30 fps (unchanged when already 30)."""
    if frames is None or abs(record.fps - 30.0) <= 1e-6:
        return frames
    return resample_linear(frames, record.fps, 30.0)


def body_features(body: np.ndarray, rot: np.ndarray | None, canonical: bool) -> np.ndarray:
    """Features of (T, 22, 3) body positions at 30 fps and optional (T, 52, 6) rotations (see the module table)."""
    fps = 30.0
    t = len(body)
    if t < 2:
        raise InputError(None, "motion too short for features", field="positions", expected=">= 2 frames", got=str(t))
    if canonical:
        body = canonical_body(body)
    body = body / body_scale(body) * REFERENCE_SCALE
    heading = _heading(body)
    root = body[:, 0]
    local = _rotate_y(body - root[:, None], heading)[:, 1:].reshape(t, -1)

    def deriv(x: np.ndarray) -> np.ndarray:
        d = np.diff(x, axis=0) * fps
        return np.concatenate([d, d[-1:]], axis=0)

    root_vel = _rotate_y(deriv(root)[:, None], heading)[:, 0]
    yaw_rate = deriv(heading)
    floor = body[:, [_J[n] for n in FOOT_JOINTS]][..., 1].min()
    height = root[:, 1] - floor
    joint_vel = _rotate_y(deriv(body), heading).reshape(t, -1)
    contacts = foot_contacts(body, list(SMPL_BODY_22), fps).astype(np.float64)
    rot_block = np.zeros((t, BLOCKS["rotations_6d"]))
    flag = np.zeros((t, 1))
    if rot is not None:
        rot_block = np.asarray(rot, dtype=np.float64)[:t, 1:N_BODY].reshape(t, -1)
        flag[:] = 1.0
    feats = np.concatenate([local, root_vel[:, [0, 2]], yaw_rate[:, None], height[:, None], joint_vel,
                            contacts, rot_block, flag], axis=1)
    return feats.astype(np.float32)


def align_music(music: np.ndarray | None, num_frames: int) -> tuple[np.ndarray, bool]:
    """Music features cropped / zero-padded to the motion's frame count; (features, present)."""
    if music is None:
        return np.zeros((num_frames, MUSIC_DIM), dtype=np.float32), False
    music = np.asarray(music, dtype=np.float32)
    if music.ndim != 2 or music.shape[1] != MUSIC_DIM:
        raise InputError(None, "bad music features", field="music", expected=f"(T, {MUSIC_DIM})", got=str(music.shape))
    if not np.isfinite(music).all():
        raise InputError(None, "music features contain NaN or infinite values", field="music")
    out = np.zeros((num_frames, MUSIC_DIM), dtype=np.float32)
    n = min(num_frames, len(music))
    out[:n] = music[:n]
    return out, True


@dataclass
class NormStats:
    """Per-dimension mean / std of motion and music features, from the training split.

    Saved with the model (``norm_stats.npz``) because the encoders only make sense on inputs scaled
    the way they were trained. The rotation block's statistics come only from clips that have
    rotations, and after normalisation that block is multiplied by the presence flag, so a source
    without rotations always feeds exact zeros there.
    """

    motion_mean: np.ndarray
    motion_std: np.ndarray
    music_mean: np.ndarray
    music_std: np.ndarray

    @classmethod
    def identity(cls) -> "NormStats":
        return cls(np.zeros(MOTION_FEATURE_DIM, np.float32), np.ones(MOTION_FEATURE_DIM, np.float32),
                   np.zeros(MUSIC_DIM, np.float32), np.ones(MUSIC_DIM, np.float32))

    @classmethod
    def fit(cls, motions: list[np.ndarray], musics: list[np.ndarray | None], min_std: float = 1e-2) -> "NormStats":
        """Statistics over all frames of ``motions`` and of the clips whose music is present."""
        if not motions:
            raise ValueError("no motion features to fit normalisation statistics on")
        allm = np.concatenate(motions, axis=0).astype(np.float64)
        mean, std = allm.mean(0), allm.std(0)
        rs, fl = block_slice("rotations_6d"), block_slice("rotation_flag")
        with_rot = allm[allm[:, fl.start] > 0.5]
        if len(with_rot):
            mean[rs], std[rs] = with_rot[:, rs].mean(0), with_rot[:, rs].std(0)
        else:
            mean[rs], std[rs] = 0.0, 1.0
        for keep in ("foot_contacts", "rotation_flag"):  # binary inputs stay 0 / 1
            mean[block_slice(keep)], std[block_slice(keep)] = 0.0, 1.0
        present = [m for m in musics if m is not None]
        if present:
            allu = np.concatenate(present, axis=0).astype(np.float64)
            umean, ustd = allu.mean(0), allu.std(0)
        else:
            umean, ustd = np.zeros(MUSIC_DIM), np.ones(MUSIC_DIM)
        return cls(mean.astype(np.float32), np.maximum(std, min_std).astype(np.float32),
                   umean.astype(np.float32), np.maximum(ustd, min_std).astype(np.float32))

    def normalise_motion(self, feats: np.ndarray) -> np.ndarray:
        out = (feats - self.motion_mean) / self.motion_std
        out[:, block_slice("rotations_6d")] *= feats[:, block_slice("rotation_flag")]
        return out.astype(np.float32)

    def normalise_music(self, music: np.ndarray, present: bool) -> np.ndarray:
        if not present:
            return np.zeros_like(music, dtype=np.float32)
        return ((music - self.music_mean) / self.music_std).astype(np.float32)

    def save(self, path: str | Path) -> None:
        atomic_save_npz(path, compressed=False, motion_mean=self.motion_mean, motion_std=self.motion_std,
                        music_mean=self.music_mean, music_std=self.music_std)

    @classmethod
    def load(cls, path: str | Path) -> "NormStats":
        try:
            with np.load(path, allow_pickle=False) as z:
                stats = cls(z["motion_mean"], z["motion_std"], z["music_mean"], z["music_std"])
        except (OSError, KeyError, ValueError) as exc:
            raise InputError(path, f"cannot read normalisation statistics: {exc}") from exc
        if stats.motion_mean.shape != (MOTION_FEATURE_DIM,) or stats.music_mean.shape != (MUSIC_DIM,):
            raise InputError(path, "normalisation statistics have the wrong size", field="motion_mean",
                             expected=f"({MOTION_FEATURE_DIM},)", got=str(stats.motion_mean.shape))
        return stats


def window(num_frames: int, length: int, stride: int, start: int | None = None) -> np.ndarray:
    """Frame indices of one model input: every ``stride``-th frame, at most ``length`` of them.

    ``start=None`` centres the window (inference: deterministic); training passes a random start.
    """
    span = length * stride
    if num_frames <= span:
        return np.arange(0, num_frames, stride)
    if start is None:
        start = (num_frames - span) // 2
    start = int(np.clip(start, 0, num_frames - span))
    return np.arange(start, start + span, stride)


MUSIC_POOLS: tuple[str, ...] = ("subsample", "window")
MUSIC_EVENT_COLUMNS = slice(33, 35)   # onset-peak and beat one-hots (encoders/music/features.py)


def pool_music(music: np.ndarray, idx: np.ndarray, stride: int) -> np.ndarray:
    """Music rows for the model frames ``idx``, each summarising the ``stride`` feature frames it stands for.

    Why: the model sees every ``stride``-th frame (7.5 fps), and the onset-peak and beat columns are
    one-frame events at 30 fps, so plain subsampling keeps only the events that happen to fall on a
    kept frame (about one in ``stride``) and the music tower loses most of the rhythm. Here continuous
    columns (onset envelope, MFCC, chroma) are averaged over the frames ``idx[j] .. idx[j] + stride - 1``
    and the event columns take their maximum, so every onset and beat survives.
    """
    if stride <= 1 or len(music) == 0:
        return music[idx]
    frames = np.minimum(idx[:, None] + np.arange(stride)[None, :], len(music) - 1)   # (L, stride)
    return summarise_music_frames(music[frames]).astype(music.dtype, copy=False)     # from (L, stride, 35)


def summarise_music_frames(block):
    """(..., n, 35) runs of music feature frames (numpy or torch) -> (..., 35): the continuous columns averaged,
    the one-frame event columns (onset peak, beat) their maximum. The one rule :func:`pool_music` and the
    generator's frozen music tower (``generation.diffusion.music_tower``) share."""
    out = block.mean(-2)
    events = block[..., MUSIC_EVENT_COLUMNS]
    out[..., MUSIC_EVENT_COLUMNS] = events.max(-2) if isinstance(block, np.ndarray) else events.amax(-2)
    return out


def collate_dances(items: list[tuple[np.ndarray, np.ndarray, bool]], seq_len: int, stride: int,
                   starts: list[int | None] | None = None, music_pool: str = "subsample") -> dict[str, "torch.Tensor"]:
    """Batch normalised (motion (T, F), music (T, 35), music_present) clips into right-padded tensors.

    Each clip contributes the frames of :func:`window` (centred unless ``starts`` gives a start frame);
    ``music_pool`` "window" summarises the music between kept frames (:func:`pool_music`), "subsample"
    takes the kept frames' rows as they are (the models trained before the option existed).
    Returns ``motion`` (B, L, F), ``music`` (B, L, 35), ``mask`` (B, L) bool, ``music_present`` (B,).
    """
    import torch

    if not items:
        raise ValueError("empty batch")
    if music_pool not in MUSIC_POOLS:
        raise ValueError(f"music_pool must be one of {MUSIC_POOLS}, got {music_pool!r}")
    idxs = [window(len(m), seq_len, stride, None if starts is None else starts[i]) for i, (m, _, _) in enumerate(items)]
    length = max(len(i) for i in idxs)
    b = len(items)
    motion = np.zeros((b, length, items[0][0].shape[1]), dtype=np.float32)
    music = np.zeros((b, length, MUSIC_DIM), dtype=np.float32)
    mask = np.zeros((b, length), dtype=bool)
    for row, ((m, u, _), idx) in enumerate(zip(items, idxs)):
        motion[row, : len(idx)] = m[idx]
        music[row, : len(idx)] = pool_music(u, idx, stride) if music_pool == "window" else u[idx]
        mask[row, : len(idx)] = True
    present = np.array([p for _, _, p in items], dtype=np.float32)
    return {"motion": torch.from_numpy(motion), "music": torch.from_numpy(music), "mask": torch.from_numpy(mask),
            "music_present": torch.from_numpy(present)}


def prepare_dance(record: MotionRecord, music: np.ndarray | None, stats: NormStats,
                  motion_input: str = "source", smoothing: float = 0.0) -> tuple[np.ndarray, np.ndarray, bool]:
    """One clip as the encoders see it: normalised motion features and aligned, normalised music."""
    feats = motion_features(record, motion_input, smoothing)
    aligned, present = align_music(music, len(feats))
    return stats.normalise_motion(feats), stats.normalise_music(aligned, present), present
