"""Rhythm metrics of dance motion: kinematic beats and the Beat Alignment Score (BAS).

As in AIST++ / Bailando: kinematic beats are local minima of the (smoothed) mean joint speed, the
instants a dancer's movement "lands"; BAS is the mean over music beats of
``exp(-d^2 / (2 sigma^2))`` with ``d`` the distance to the nearest kinematic beat. Times are in
seconds here (sigma 0.1 s = the usual 3 frames at 30 fps), so the score does not depend on the frame rate.
"""
from __future__ import annotations

import numpy as np
from scipy.ndimage import gaussian_filter1d
from scipy.signal import argrelextrema

DEFAULT_SIGMA_S = 0.1


def joint_speed(positions: np.ndarray, fps: float) -> np.ndarray:
    """(T,) mean joint speed in m/s of (T, J, 3) positions (central differences, so a minimum sits on its frame)."""
    pos = np.asarray(positions, dtype=np.float64)
    if len(pos) < 2:
        return np.zeros(len(pos))
    return np.linalg.norm(np.gradient(pos, axis=0), axis=-1).mean(axis=1) * fps


def kinematic_beats(positions: np.ndarray, fps: float, smooth_frames: float = 2.0) -> np.ndarray:
    """Times (s) of the local minima of the Gaussian-smoothed mean joint speed of (T, J, 3) positions."""
    speed = joint_speed(positions, fps)
    if len(speed) < 3:
        return np.zeros(0)
    if smooth_frames > 0:
        speed = gaussian_filter1d(speed, smooth_frames, mode="nearest")
    idx = argrelextrema(speed, np.less)[0]
    return idx / float(fps)


def beat_alignment_score(motion_beats: np.ndarray, music_beats: np.ndarray, sigma: float = DEFAULT_SIGMA_S) -> float:
    """Mean over music beats of exp(-min_dist^2 / (2 sigma^2)); 0 when either side has no beats."""
    mb = np.asarray(motion_beats, dtype=np.float64).reshape(-1)
    ub = np.asarray(music_beats, dtype=np.float64).reshape(-1)
    if len(mb) == 0 or len(ub) == 0:
        return 0.0
    d = np.abs(ub[:, None] - mb[None, :]).min(axis=1)
    return float(np.mean(np.exp(-(d ** 2) / (2 * sigma ** 2))))
