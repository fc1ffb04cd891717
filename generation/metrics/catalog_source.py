"""Ground-truth dances from the catalog: 4-s windows of a split, as metric samples.

Why windows: generators are trained and sampled on 4-s windows (issue 13's window datasets), so the
real dances they are measured against are windows of the same length, non-overlapping by default (an
overlapping stride would count the same frames several times in FID's covariance). Each window is
decoded from the 319-d representation with forward kinematics, exactly as a generated window is, so
real and generated samples differ only in the dance.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..representation.codec import decode
from ..representation.layout import FPS
from ..windows import WindowConfig, WindowStore, open_windows
from .sample import DanceSample


def window_store(home: Path | str, db_url: str | None = None, window_seconds: float = 4.0,
                 stride_seconds: float | None = None, progress: bool = False) -> WindowStore:
    """The catalog's window cache (built when missing or stale) viewed at the given length and stride."""
    from indexer.workspace import Workspace

    frames = int(round(window_seconds * FPS))
    stride = frames if stride_seconds is None else max(1, int(round(stride_seconds * FPS)))
    return open_windows(Workspace(Path(home), db_url), WindowConfig(window_frames=frames, stride_frames=stride),
                        progress=progress)


def window_samples(store: WindowStore, split: str, limit: int | None = None, seed: int = 0) -> list[DanceSample]:
    """Every window of ``split`` (or ``limit`` of them drawn without replacement with ``seed``) as samples."""
    n = store.num_windows(split)
    order = np.arange(n)
    if limit is not None and limit < n:
        order = np.sort(np.random.default_rng(seed).choice(n, size=limit, replace=False))
    out = []
    for i in order:
        w = store.window(split, int(i))
        rec = decode(w.motion, name=f"{split} window {i}")
        out.append(DanceSample(f"{w.clip_id}@{w.start}", rec.positions, FPS, rec.joint_names,
                               w.beat_times if w.has_music else None,
                               {"genre": w.genre, "split": split, "clip_id": w.clip_id, "start": w.start}))
    return out
