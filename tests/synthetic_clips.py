"""Synthetic dance clips written as real MotionRecord / music .npy files (shared by training tests).

Each "genre" moves a different limb at its own tempo and has music pulsing at that tempo, and its
captions name the genre, limb and speed: a text->dance model can learn it in a few epochs.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from encoders.motion.record import MotionRecord
from encoders.motion.skeleton import SMPL_BODY_22, smplx52
from encoders.training.data import ClipExample

GENRES = {  # genre: (joint that moves, frequency Hz, speed word, limb word)
    "waltz": ("left_wrist", 0.8, "slow", "left arm"),
    "popping": ("right_wrist", 2.5, "fast", "right arm"),
    "salsa": ("left_ankle", 1.6, "lively", "left leg"),
    "krump": ("head", 3.0, "explosive", "head"),
}


def make_record(genre: str, rng: np.random.Generator, frames: int = 120, with_rotations: bool = False) -> MotionRecord:
    sk = smplx52()
    rest = sk.rest_positions()[[sk.index(n) for n in SMPL_BODY_22]].astype(np.float64)
    rest[:, 1] += 0.95
    joint, freq, _, _ = GENRES[genre]
    t = np.arange(frames) / 30.0
    phase = rng.uniform(0, 2 * np.pi)
    pos = np.repeat(rest[None], frames, axis=0)
    amp = rng.uniform(0.15, 0.3)
    j = SMPL_BODY_22.index(joint)
    pos[:, j, 1] += amp * np.sin(2 * np.pi * freq * t + phase)
    pos[:, j, 0] += 0.5 * amp * np.cos(2 * np.pi * freq * t + phase)
    pos += rng.normal(0, 0.005, pos.shape)
    drift = np.stack([rng.uniform(-0.3, 0.3) * t, np.zeros_like(t), rng.uniform(-0.3, 0.3) * t], axis=1)
    pos += drift[:, None]
    rot = None
    if with_rotations:
        rot = np.tile(np.array([1, 0, 0, 0, 1, 0], np.float32), (frames, 52, 1))
        rot[:, j, 1] = 0.3 * np.sin(2 * np.pi * freq * t)
    return MotionRecord(30.0, pos[:, 0], pos, list(SMPL_BODY_22), rot)


def make_music(genre: str, rng: np.random.Generator, frames: int = 120) -> np.ndarray:
    _, freq, _, _ = GENRES[genre]
    t = np.arange(frames) / 30.0
    music = rng.normal(0, 0.3, (frames, 35)).astype(np.float32)
    music[:, :5] += np.sin(2 * np.pi * freq * t)[:, None]
    music[:, 5 + list(GENRES).index(genre)] += 1.0
    return music


def write_clips(root: Path, per_genre: int = 8, seed: int = 0, frames: int = 120, split: str = "train",
                music_missing_every: int = 0, rotations_every: int = 2) -> list[ClipExample]:
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    out: list[ClipExample] = []
    for g, (_, _, speed, limb) in GENRES.items():
        for i in range(per_genre):
            cid = f"{split}-{g}-{i}"
            rec = make_record(g, rng, frames, with_rotations=bool(rotations_every) and i % rotations_every == 0)
            rec.save(root / f"{cid}.motion.npz")
            music_path = None
            if not (music_missing_every and i % music_missing_every == 0):
                music_path = root / f"{cid}.music.npy"
                np.save(music_path, make_music(g, rng, frames))
            caps = [f"a {speed} {g} dance", f"{g} moves with the {limb}", f"{speed} {limb} motion"]
            out.append(ClipExample(cid, root / f"{cid}.motion.npz", music_path, caps, g, f"d{i % 3}", split))
    return out
