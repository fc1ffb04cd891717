"""Cutting sequences into fixed-length clips, and the deterministic train/val/test split.

Policy (ARCHITECTURE.md, indexer):
- clips of ``clip_seconds`` (default 12 s, the TD-Data clip length) every ``stride_seconds``
  (default: the clip length, i.e. no overlap);
- what is left after the last full clip (the tail) is dropped when shorter than half a clip; otherwise
  it becomes one more full-length clip that ends at the sequence's last frame (overlapping the previous
  clip), so every clip of a sequence at least one clip long has exactly the clip length;
- a sequence shorter than a clip but at least half a clip long becomes one (shorter) clip;
- a sequence shorter than half a clip gives no clip.

``min_seconds`` moves that last threshold: a sequence shorter than a clip becomes one clip when it is at
least ``min_seconds`` long (default None: half a clip, the policy above). It is for evaluations on short
real recordings (e.g. ``eval real-data`` takes 4 s, so the 5-s AIST++ slices and CMU 05_11 count); the
model's input pads shorter clips and masks the padding. It leaves the tail rule of longer sequences alone.

The split hashes the source and sequence name (or a caller-given group, so e.g. the two partners of a
couple take stay together), so it is stable across runs, machines and ingestion order.
"""
from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass

DEFAULT_CLIP_SECONDS = 12.0
SPLIT_RATIOS: tuple[tuple[str, int], ...] = (("train", 80), ("val", 10), ("test", 10))


@dataclass(frozen=True)
class ClipSpan:
    """Frames ``[start_frame, end_frame)`` of a sequence, the ``index``-th clip of it."""

    index: int
    start_frame: int
    end_frame: int
    fps: float

    @property
    def num_frames(self) -> int:
        return self.end_frame - self.start_frame

    @property
    def start_s(self) -> float:
        return self.start_frame / self.fps

    @property
    def end_s(self) -> float:
        return self.end_frame / self.fps

    @property
    def duration_s(self) -> float:
        return self.num_frames / self.fps


def check_min_seconds(min_seconds: float | None, clip_seconds: float = DEFAULT_CLIP_SECONDS) -> None:
    """ValueError unless ``min_seconds`` is None or a number in (0, ``clip_seconds``]."""
    if min_seconds is None:
        return
    try:
        value = float(min_seconds)
    except (TypeError, ValueError):
        value = float("nan")
    if not (math.isfinite(value) and 0 < value <= clip_seconds):
        raise ValueError(f"minimum sequence length must be a number of seconds in (0, {clip_seconds:g}] "
                         f"(the clip length), got {min_seconds!r}")


def min_frames(fps: float = 30.0, clip_seconds: float = DEFAULT_CLIP_SECONDS, min_seconds: float | None = None) -> float:
    """Frames a sequence shorter than a clip needs to give a clip: half a clip, or ``min_seconds``."""
    clip_len = max(1, int(round(clip_seconds * fps)))
    return clip_len / 2.0 if min_seconds is None else min_seconds * fps


def clip_spans(num_frames: int, fps: float = 30.0, clip_seconds: float = DEFAULT_CLIP_SECONDS,
               stride_seconds: float | None = None, min_seconds: float | None = None) -> list[ClipSpan]:
    """The clips of a sequence of ``num_frames`` frames (see the module docstring for the policy).

    ``min_seconds``: the shortest sequence that still gives one (shorter) clip; None = half a clip.
    """
    if clip_seconds <= 0:
        raise ValueError(f"clip length must be positive, got {clip_seconds}")
    if stride_seconds is not None and stride_seconds <= 0:
        raise ValueError(f"stride must be positive, got {stride_seconds}")
    check_min_seconds(min_seconds, clip_seconds)
    clip_len = max(1, int(round(clip_seconds * fps)))
    stride = clip_len if stride_seconds is None else max(1, int(round(stride_seconds * fps)))
    half = clip_len / 2.0
    if num_frames < clip_len:
        least = min_frames(fps, clip_seconds, min_seconds)
        return [ClipSpan(0, 0, num_frames, fps)] if num_frames >= least and num_frames > 0 else []
    spans: list[ClipSpan] = []
    start = 0
    while start + clip_len <= num_frames:
        spans.append(ClipSpan(len(spans), start, start + clip_len, fps))
        start += stride
    covered = spans[-1].end_frame
    tail = num_frames - covered
    if tail >= half and tail > 0:
        spans.append(ClipSpan(len(spans), num_frames - clip_len, num_frames, fps))
    return spans


def expected_clip_count(num_frames: int, fps: float = 30.0, clip_seconds: float = DEFAULT_CLIP_SECONDS,
                        stride_seconds: float | None = None, min_seconds: float | None = None) -> int:
    """Closed-form count of :func:`clip_spans` (used by tests and reports to cross-check)."""
    clip_len = max(1, int(round(clip_seconds * fps)))
    stride = clip_len if stride_seconds is None else max(1, int(round(stride_seconds * fps)))
    if num_frames < clip_len:
        return 1 if num_frames >= min_frames(fps, clip_seconds, min_seconds) and num_frames > 0 else 0
    full = (num_frames - clip_len) // stride + 1
    tail = num_frames - ((full - 1) * stride + clip_len)
    return full + (1 if tail >= clip_len / 2 and tail > 0 else 0)


def assign_split(source: str, name: str, group: str | None = None) -> str:
    """Deterministic 80/10/10 train/val/test split from a hash of ``source/(group or name)``."""
    digest = hashlib.sha1(f"{source}/{group or name}".encode("utf-8")).digest()
    bucket = int.from_bytes(digest[:8], "big") % 100
    acc = 0
    for split, share in SPLIT_RATIOS:
        acc += share
        if bucket < acc:
            return split
    return SPLIT_RATIOS[-1][0]
